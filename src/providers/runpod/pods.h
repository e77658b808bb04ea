/* SPDX-License-Identifier: MIT */
/*
 * pods: the RunPod provider's shared state and the pod registry.  Prefix
 * pods_.
 *
 * - The API key (runpod_api_key_file, else RUNPOD_API_KEY) and the agent's
 *   SSH public key are read once by pods_init(); the key lives only in
 *   memory here and in each thread's client, and is wiped at shutdown.
 * - Every thread that talks to RunPod gets its own client (pods_client):
 *   libcurl easy handles are not shared.  Clients make ONE attempt per
 *   call: a task step that meets 429/5xx/a network error goes back on the
 *   timer queue (pods_retry_delay_ms) instead of sleeping in a thread.
 * - The registry (store_pod_*) records every pod the agent created; the
 *   read-modify-write of a row is serialised here (pods_update).
 * - The synchronous operations runpod.list_gpu_types, runpod.get_pod and
 *   runpod.list_pods, and the admission check of the pod lifecycle
 *   operations (the pod must be the caller's).
 */
#ifndef IA_PODS_H
#define IA_PODS_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "lib/attrs.h"
#include "core/config.h"
#include "core/op.h"
#include "providers/runpod/runpod.h"
#include "store/store.h"
#include "core/task.h"
#include "lib/strbuf.h"

/* Operation error codes of the provider (static strings). */
#define ERRC_POD_NOT_FOUND	"pod_not_found"
#define ERRC_RUNPOD		"runpod_error"
#define ERRC_RATE_LIMITED	"rate_limited"
#define ERRC_RUNPOD_UNAVAILABLE	"runpod_unavailable"

/*
 * Read the RunPod key and the SSH public key named by cfg (both optional:
 * without a key RunPod operations answer not_configured).  Keeps cfg and
 * st (borrowed) for the life of the process.  0, or -1 with *err (caller
 * frees) when a configured file is unreadable, too open or malformed.
 */
WARN_UNUSED_RESULT
int pods_init(const struct config *cfg, struct store *st, char **err);
/* Wipe the key, free the calling thread's client.  Safe to call twice. */
void pods_shutdown(void);

/* Whether RunPod operations can run (need_ssh: also provisioning, which
 * needs the SSH key); when not, *why (static) says what is missing. */
bool pods_ready(bool need_ssh, const char **why);

const struct config *pods_config(void);
struct store *pods_store(void);
/* The agent's SSH public key line ("ssh-ed25519 AAAA... comment"). */
const char *pods_public_key(void);

/*
 * The calling thread's client (made on first use, freed when the thread
 * exits).  NULL with *e filled (RP_BAD_REQUEST) when RunPod is not
 * configured.  Borrowed: never free it.
 */
struct runpod_client *pods_client(struct runpod_error *e);
/* Count a call's outcome in the metrics (rc 0 = ok), and note what it
 * says of the API key (see pods_key_status). */
void pods_count(int rc, const struct runpod_error *e);

/*
 * What RunPod last said of the API key, from the outcome of the last call
 * the agent made (every call goes through pods_count):
 *   accepted     an answer past authentication: 2xx, or 400/402/404/409/422
 *   rejected     401 (invalid key) or 403 (the key lacks a permission)
 *   unreachable  no answer, 5xx or an unexpected answer: nothing known
 *                of the key
 * A 429 or a call that never left the agent changes nothing.
 */
enum pods_key_state {
	PODS_KEY_UNKNOWN = 0,	/* no call has answered yet */
	PODS_KEY_ACCEPTED,
	PODS_KEY_REJECTED,
	PODS_KEY_UNREACHABLE
};
struct pods_key_status {
	enum pods_key_state state;
	int http_status;	/* of that answer; 0 when none */
	int kind;		/* its enum runpod_error_kind */
	int64_t at_ms;		/* monotonic ms of that answer; 0 unknown */
};
void pods_key_status(struct pods_key_status *out);
/*
 * Ask RunPod once whether it accepts the key: GET /v2/pods on a client of
 * its own with timeout_s for the whole exchange, one attempt.  The
 * outcome is counted and noted as any call's.  0, or -1 with *e (cleared
 * first; RP_BAD_REQUEST with http_status 0 when RunPod is not
 * configured).
 */
WARN_UNUSED_RESULT
int pods_probe_key(long timeout_s, struct runpod_error *e);
/* Those counts as Prometheus text (a metrics collector). */
void pods_metrics(struct strbuf *sb);

/* How long to wait before retrying after e (Retry-After for a 429, else
 * jittered exponential backoff over the retry count n >= 1), in ms. */
int64_t pods_retry_delay_ms(const struct runpod_error *e, int n);
/* Whether e is worth retrying later (429, 5xx, network). */
bool pods_transient(const struct runpod_error *e);

/* "<prefix>-<task id>": a new string, caller frees. */
char *pods_name_for(const char *task_id);

/* The idle limit params ask for (idle_minutes, a number, may be
 * fractional), else pod_idle_minutes, in ms; 0: none. */
int64_t pods_idle_ms(json_object *params);

/*
 * Record a pod a task just created: active, limits from the task's params
 * (max_runtime_minutes, max_cost_usd, idle_minutes) or the config, cost
 * rate and GPU from p, cloud as asked, last used now.  0, or -1 with *err
 * (caller frees).
 */
WARN_UNUSED_RESULT
int pods_register(const struct task *t, const struct runpod_pod *p,
    const char *cloud, char **err);

/*
 * Read-modify-write one registry row under the registry lock: fn changes
 * *r in place (strings it replaces must be freed/xstrdup'ed).  updated_ms
 * is set.  0 done, 1 no such pod, -1 store error.
 */
WARN_UNUSED_RESULT
int pods_update(const char *pod_id, void (*fn)(struct pod_rec *r, void *arg),
    void *arg);

/*
 * Terminate a pod at RunPod (DELETE; 404 counts as done) and mark it
 * terminated in the registry with reason (who: "cost_guard", "reaper",
 * "timeout", "cancel" or "owner", for the log and metrics).  0, or -1 with
 * *e (then the registry is unchanged; retry later).
 */
WARN_UNUSED_RESULT
int pods_terminate(struct runpod_client *c, const char *pod_id,
    const char *who, const char *reason, struct runpod_error *e);

/* Mark a pod RunPod no longer knows (404, or left out of the list) as
 * terminated outside the agent, with reason PODS_REASON_GONE. */
void pods_mark_gone(const char *pod_id);
#define PODS_REASON_GONE "terminated outside the agent (RunPod no longer " \
	"lists it)"

/*
 * Probe SSH on a pod: connect, handshake, host key (pinned: must equal;
 * NULL: accepted), login with the agent's key, all within ssh_timeout.
 * 0 and *fp (the host key's SHA256 fingerprint, caller frees); -1 (not
 * reachable or login refused) or -2 (the host key is not the pinned one)
 * with *why (caller frees; never key material).
 */
WARN_UNUSED_RESULT
int pods_probe_ssh(const char *host, int port, const char *pinned, char **fp,
    char **why);

/* The agent's view of a pod, from the registry row and (may be NULL) what
 * RunPod says now.  New reference. */
json_object *pods_describe(const struct pod_rec *r,
    const struct runpod_pod *live);

/* Set *oe from a failed RunPod call (codes above; message without
 * secrets). */
void pods_op_error(struct op_error *oe, const char *what,
    const struct runpod_error *e);

/* Synchronous operations (see ops.h). */
int pods_op_list_gpu_types(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
int pods_op_get(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
int pods_op_list(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);
/* Admission of stop/resume/terminate: params.pod_id must be a pod of the
 * caller that is not terminated.  0, or -1 with *e. */
int pods_admit_owned(const struct op_ctx *c, json_object *params,
    struct op_error *e);

#endif
