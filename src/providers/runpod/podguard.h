/* SPDX-License-Identifier: MIT */
/*
 * podguard: one background thread that watches money.  Prefix guard_.
 *
 * - Cost guard, every cost_guard_interval seconds while the registry holds
 *   live pods (none: no API call): one GET /v2/pods, then for each live
 *   pod add the time since the last round to running_ms and
 *   rate x time to cost_usd (the rate RunPod reported last round: its
 *   "cost" is 0 while a pod is stopped), disk storage to storage_usd
 *   (podcost_storage: running or stopped), and terminate pods past
 *   max_runtime_ms or max_cost_usd (compared with compute + storage).  A
 *   pod RunPod no longer lists is marked terminated.
 * - Idle limit, in the same round and with no RunPod call of its own: a
 *   pod is in use while an unfinished task targets it (guard_task_uses:
 *   one read of the store's active tasks per round); a pod in use gets
 *   last_used_ms = now.  An active, RUNNING pod with an idle limit
 *   (idle_ms) that no task used for that long is stopped (POST action
 *   stop) or terminated, as pod_idle_action says; the row says why
 *   (reason) and so do the log (pod_idle) and the metrics.  A pod a
 *   running task uses is never stopped: the store is read again just
 *   before the action.
 * - Reaper, at start and every reaper_interval seconds (0: only at
 *   start): pods named "<pod_name_prefix>-..." that no live task and no
 *   live registry row owns are orphans: logged and counted
 *   (reaper_mode=report) or terminated (reaper_mode=terminate).
 * The thread holds no request or executor thread and sleeps on a condition
 * variable between rounds, so guard_stop() returns at once.
 */
#ifndef IA_PODGUARD_H
#define IA_PODGUARD_H

#include <stdint.h>

#include "lib/attrs.h"
#include "lib/strbuf.h"
#include "core/config.h"
#include "store/store.h"
#include "core/task.h"

/* Start the thread (does nothing when RunPod is not configured).  0, or
 * -1 with *err. */
WARN_UNUSED_RESULT
int guard_start(const struct config *cfg, struct store *st, char **err);
/* Stop and join it.  Safe without a start. */
void guard_stop(void);
/* Prometheus text (a metrics collector): instag_agent_podguard_leader,
 * 1 while this agent runs the cost guard and the reaper (always, with
 * one agent), 0 while another agent on the shared store does. */
void guard_metrics(struct strbuf *sb);

/* ---- visible for tests --------------------------------------------------- */

/*
 * Account one round for a pod: dt_ms elapsed since the last round at the
 * rate it had (USD/h).  Returns NULL when within limits, else a new string
 * (caller frees) saying which limit was passed.
 */
char *guard_account(struct pod_rec *r, int64_t dt_ms, double rate,
    bool billed);

/* Whether t (unfinished) uses the pod r: it made it, or targets it with
 * params.pod_id or its checkpoint's pod_id (a pipeline). */
bool guard_task_uses(const struct task *t, const struct pod_rec *r);

/*
 * The idle decision for r at now: NULL (keep it), or a new string (caller
 * frees) saying why to stop it: it has an idle limit, is active and
 * RUNNING (running), no task uses it (in_use false), and the time since
 * its last use (last_used_ms, else created_ms) reached idle_ms.
 */
char *guard_idle(const struct pod_rec *r, int64_t now, bool in_use,
    bool running);

/* Whether name is "<prefix>-<task id>"; *task_id points into name. */
bool guard_parse_name(const char *prefix, const char *name,
    const char **task_id);

#endif
