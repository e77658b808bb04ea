/* SPDX-License-Identifier: MIT */
/*
 * ready: what GET /readyz answers, and the instag_agent_ready gauges.
 * Prefix ready_.
 *
 * The checks, each ok or not with a reason (docs/api.md "GET /readyz"):
 *   serving       the agent is not shutting down
 *   store         a write to the task store commits (store_probe_write:
 *                 BEGIN IMMEDIATE, one row rewritten, COMMIT), waiting at
 *                 most READY_STORE_WAIT_MS for each lock
 *   artifact_dir  a file can be created and written in artifact_dir
 *   uploads_dir   the same in <artifact_dir>/uploads
 *   runpod        when RunPod is configured: RunPod accepted the API key
 *                 the last time the agent called it (pods_key_status).
 *                 When that is older than READY_RUNPOD_TTL_MS, or no call
 *                 has been made yet, /readyz itself asks RunPod (one GET
 *                 /v2/pods, READY_RUNPOD_PROBE_S at most), no more than
 *                 once per READY_RUNPOD_TTL_MS.  A rejected key (401/403)
 *                 is not ready; RunPod unreachable (network, 5xx) is ready
 *                 but "degraded": everything but RunPod calls still works,
 *                 and those retry on their own.
 * The store and directory results are kept READY_LOCAL_TTL_MS, so that
 * /readyz under load does not write more often than that.  Nothing here
 * runs in a thread of its own.  Reasons never hold the key or a path
 * (/readyz is public); a check that starts or stops failing is logged.
 */
#ifndef IA_READY_H
#define IA_READY_H

#include <stdbool.h>
#include <json-c/json.h>

#include "core/config.h"
#include "lib/strbuf.h"
#include "store/store.h"

#define READY_LOCAL_TTL_MS	2000
#define READY_STORE_WAIT_MS	250
#define READY_RUNPOD_TTL_MS	60000
#define READY_RUNPOD_PROBE_S	5

/* Keep cfg and st (borrowed for the life of the process). */
void ready_init(const struct config *cfg, struct store *st);
/* From now on the "serving" check fails. */
void ready_set_stopping(void);

/*
 * Run the checks (cached as above).  may_probe: /readyz may ask RunPod
 * (false for the metrics).  Returns whether every check is ok; *body is a
 * new object (caller puts): {"status":"ready"|"not ready","degraded":
 * bool,"checks":{"store":{"ok":true},...}}.
 */
bool ready_eval(bool may_probe, json_object **body);

/* The gauges instag_agent_ready{check} (a metrics collector; it never
 * asks RunPod). */
void ready_metrics(struct strbuf *sb);

/* ---- visible for tests --------------------------------------------------- */

/* Forget the cached results and when RunPod was last asked. */
void ready_forget(void);

#endif
