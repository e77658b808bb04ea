/* SPDX-License-Identifier: MIT */
/*
 * assetops: the operations on an owner's registry of licensed InsTaG
 * files (store/assets.h).  Prefix assetops_.
 *
 *   instag.register_asset  a task: params.upload_id (an upload of the
 *       caller's, hard-linked or copied in one step) or params.url (an
 *       https URL the agent downloads itself, through the SSRF filter of
 *       http/outbound.h, in steps of at most ASSETOPS_STEP_MS or
 *       ASSETOPS_STEP_BYTES each, resumed with an HTTP range request from
 *       what the temporary file holds, so that neither a long download
 *       nor an agent restart holds a thread or starts over)
 *   instag.list_assets     synchronous: the caller's assets
 *   instag.delete_asset    synchronous: one of them
 *
 * instag.place_assets (iops.h) copies them onto a pod.  A URL is never
 * logged nor recorded (it may carry a signed query); the record keeps
 * "url:<host>".
 */
#ifndef IA_ASSETOPS_H
#define IA_ASSETOPS_H

#include <json-c/json.h>

#include "core/config.h"
#include "core/op.h"
#include "lib/attrs.h"

#define ASSETOPS_STEP_MS 30000			/* one download step */
#define ASSETOPS_STEP_BYTES (256LL << 20)	/* ditto */

/* Params checks of instag.register_asset (exactly one of upload_id and
 * url; kind and extractor agree; sha256 is 64 hex digits).  0, or -1
 * with *err (caller frees). */
WARN_UNUSED_RESULT
int assetops_validate_register(json_object *params, const struct config *cfg,
    char **err);
/* Of instag.delete_asset: kind and extractor agree. */
WARN_UNUSED_RESULT
int assetops_validate_kind(json_object *params, const struct config *cfg,
    char **err);
/* Admission of instag.register_asset: the upload is the caller's. */
WARN_UNUSED_RESULT
int assetops_admit_register(const struct op_ctx *c, json_object *params,
    struct op_error *e);

enum step_result assetops_register_step(struct task *t,
    const struct step_env *env);
enum step_result assetops_register_cancel(struct task *t,
    const struct step_env *env);

/* instag.list_assets and instag.delete_asset. */
WARN_UNUSED_RESULT
int assetops_list(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
WARN_UNUSED_RESULT
int assetops_delete(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);

#endif
