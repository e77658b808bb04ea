/* SPDX-License-Identifier: MIT */
/*
 * podguard: one background thread that watches money.  Prefix guard_.
 *
 * - Cost guard, every cost_guard_interval seconds while the registry holds
 *   live pods (none: no API call): one GET /v2/pods, then for each live
 *   pod add the time since the last round to running_ms and
 *   rate x time to cost_usd (the rate RunPod reported last round: its
 *   "cost" is 0 while a pod is stopped), and terminate pods past
 *   max_runtime_ms or max_cost_usd.  A pod RunPod no longer lists is
 *   marked terminated.
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
#include "core/config.h"
#include "store/store.h"

/* Start the thread (does nothing when RunPod is not configured).  0, or
 * -1 with *err. */
WARN_UNUSED_RESULT
int guard_start(const struct config *cfg, struct store *st, char **err);
/* Stop and join it.  Safe without a start. */
void guard_stop(void);

/* ---- visible for tests --------------------------------------------------- */

/*
 * Account one round for a pod: dt_ms elapsed since the last round at the
 * rate it had (USD/h).  Returns NULL when within limits, else a new string
 * (caller frees) saying which limit was passed.
 */
char *guard_account(struct pod_rec *r, int64_t dt_ms, double rate,
    bool billed);

/* Whether name is "<prefix>-<task id>"; *task_id points into name. */
bool guard_parse_name(const char *prefix, const char *name,
    const char **task_id);

#endif
