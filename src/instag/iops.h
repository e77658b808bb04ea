/* SPDX-License-Identifier: MIT */
/*
 * iops: the InsTaG operations as task steps.  Prefix iops_.
 *
 * Every operation is a plan of short actions kept in the task's
 * checkpoint, one action per step at most, so no thread waits long:
 *   job   a detached remote job (remote.h): started once (idempotent, so
 *         an agent restart re-attaches instead of starting it twice),
 *         then polled on the timer queue; its log is read from the last
 *         offset and InsTaG's progress parsed from it (instag.h)
 *   put   an upload id's file sent to the pod by SFTP (xfer.h), in
 *         chunks, resumable, SHA-256 verified
 *   get   a file of the pod downloaded into the artifact store, in chunks,
 *         then offered as an artifact (GET /artifacts/{task}/{file})
 *   asset one of the owner's registered assets (store/assets.h) sent
 *         like a put, skipped when the pod has it with the same SHA-256
 *         (instag.place_assets; the plan holds one per asset)
 * The target is params.pod_id (a pod of the caller's, its host key pinned
 * at provisioning) or params.host (one of ssh_hosts, checked against
 * ssh_known_hosts).  SSH sessions come from one pool; a dropped
 * connection is reconnected with backoff, a changed host key fails the
 * task.
 */
#ifndef IA_IOPS_H
#define IA_IOPS_H

#include <json-c/json.h>

#include "lib/attrs.h"
#include "core/config.h"
#include "core/op.h"
#include "lib/strbuf.h"

WARN_UNUSED_RESULT
int iops_init(const struct config *cfg, char **err);
/* The SSH pool's counters (zeros before iops_init). */
struct ssh_pool_stats;
void iops_pool_stats(struct ssh_pool_stats *st);
/* The pool's counters as Prometheus text (a metrics collector). */
void iops_metrics(struct strbuf *sb);
void iops_shutdown(void);
/* Whether InsTaG operations can run; *why (static) when not. */
bool iops_ready(const struct config *cfg, const char **why);

/* Admission: the target exists and is the caller's; upload ids are the
 * caller's.  0, or -1 with *e. */
int iops_admit(const struct op_ctx *c, json_object *params,
    struct op_error *e);
/* Admission of the sources alone (params "video", "audio": a string or an
 * array): "part:N" replaced by the message's N-th file part, each one an
 * upload of the caller's or an https URL.  0, or -1 with *e. */
int iops_admit_sources(const struct op_ctx *c, json_object *params,
    struct op_error *e);
/* Admission of instag.place_assets: iops_admit, and a static host only
 * when ssh_host_owners keeps it for the caller (the files go to the
 * shared checkout, where another user's training would load them).  0,
 * or -1 with *e. */
int iops_admit_place(const struct op_ctx *c, json_object *params,
    struct op_error *e);
/*
 * instag.logs for t, an InsTaG task of iops (or a part of a pipeline:
 * its checkpoint and params as iops_step sees them): bytes [offset,
 * offset + limit) of the log of its current remote job (or the failed or
 * canceled one it ended on), cut back to the last whole line when more
 * follows.  One pooled SSH session, two short execs (poll, read).  On
 * success *result (caller puts) is {task_id, job, offset, next_offset,
 * size, eof, text}: text made fit to relay (instag_log_text: secrets
 * redacted, UTF-8).  -1 with *e: no_log (no job started yet), log_gone
 * (the last job succeeded and its directory was removed; the task's
 * progress.log_tail keeps its last lines), or the target's and SSH's
 * errors.
 */
WARN_UNUSED_RESULT
int iops_read_log(const struct config *cfg, const struct task *t,
    int64_t offset, int64_t limit, json_object **result,
    struct op_error *e);
enum step_result iops_step(struct task *t, const struct step_env *env);
enum step_result iops_cancel(struct task *t, const struct step_env *env);

#endif
