/* SPDX-License-Identifier: MIT */
/*
 * volumes: RunPod network volumes (REST v2 /v2/network-volumes), each
 * kept for one owner.  Prefix volumes_.
 *
 * A network volume outlives its pods: mounted on a new pod (the v2
 * NetworkMount, mounts.network[{volumeId, path}]), it brings back what an
 * earlier pod left on it (InsTaG's checkout, its conda environments, the
 * placed assets, trained models; see docs/instag.md, "Network volumes").
 *
 * Ownership without a table of our own: the volume's RunPod name is
 * "<pod_name_prefix>-vol-<owner dir>-<name>", owner dir as
 * hash_owner_dir() (lib/hash.h) of the caller's sub, name the caller's
 * own (an identifier).  Only the caller's volumes are listed, deleted or
 * mounted; any other id is volume_not_found, whoever holds it.
 *
 * A volume lives in one data center, so a pod that mounts it must be
 * created there (dataCenterIds), whatever GPU it asks for.
 */
#ifndef IA_VOLUMES_H
#define IA_VOLUMES_H

#include <json-c/json.h>

#include "lib/attrs.h"
#include "core/op.h"
#include "providers/runpod/runpod.h"

/* The synchronous operations (see ops.h): runpod.list_volumes,
 * runpod.create_volume, runpod.delete_volume. */
int volumes_op_list(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
int volumes_op_create(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
int volumes_op_delete(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);

/*
 * The RunPod name of owner's volume name: a new string, caller frees.
 */
char *volumes_name_for(const char *owner, const char *name);

/*
 * For a pod of owner's that mounts volume id: GET the volume and check it
 * is owner's.  0 and *dc (its data center; caller frees); 1 when RunPod
 * answered something to retry later (429, 5xx, network: *e filled, see
 * pods_retry_delay_ms); -1 with *oe (volume_not_found when it is not
 * there or not owner's, else the RunPod error).
 */
WARN_UNUSED_RESULT
int volumes_resolve(struct runpod_client *c, const char *owner,
    const char *id, char **dc, struct runpod_error *e,
    struct op_error *oe);

#endif
