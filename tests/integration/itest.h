/* SPDX-License-Identifier: MIT */
/*
 * itest: helpers for the integration tests.  They drive the real agent
 * behind the real nginx started by tests/harness/start, over TLS on
 * loopback, with libcurl.
 */
#ifndef IA_ITEST_H
#define IA_ITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <json-c/json.h>

struct itest_resp {
	long status;
	char *body;		/* owned, NUL-terminated */
	size_t len;
	char *headers;		/* owned, raw header block */
	json_object *json;	/* parsed body or NULL */
};

/* Start the harness once (tu_require: exits 77 = skip when nginx or sshd
 * is missing, unless IA_REQUIRE_INTEGRATION=1); exports AGENT_* into the
 * environment.  Fit for TU_MAIN's .setup. */
void itest_harness_up(void);
/* Stop it (tests/harness/stop; its status is in the log, not judged):
 * TU_MAIN's .teardown; true. */
bool itest_harness_down(void);

/* One HTTPS request to $AGENT_URL + path.  token NULL = no Authorization. */
void itest_request(const char *method, const char *path, const char *token,
    const char *content_type, const char *body, size_t len,
    struct itest_resp *out);
/* The same to any loopback URL (ca: NULL for plain http, or the CA file
 * for https). */
void itest_request_url(const char *method, const char *url, const char *ca,
    const char *token, const char *content_type, const char *body,
    size_t len, struct itest_resp *out);
void itest_resp_free(struct itest_resp *r);
/* The bound of every request from now on (seconds; <= 0: the default,
 * 60), e.g. for a stream that lasts as long as its task. */
void itest_set_timeout(long seconds);
/* POST a JSON text to /a2a or /api/a2a with the admin token. */
void itest_post(const char *path, const char *token, const char *json,
    struct itest_resp *out);

/* Mint a token with the agent's CLI; caller frees. */
char *itest_token(const char *sub, const char *scopes, long ttl);
/* Sign arbitrary header/payload JSON with the harness HS256 secret (or
 * with key/keylen when given); caller frees. */
char *itest_sign(const char *alg, const char *header_json,
    const char *payload_json, const unsigned char *key, size_t keylen);
/* The harness secret (static buffer) and its length. */
const unsigned char *itest_secret(size_t *len);

/* Run a shell command; returns its exit status. */
int itest_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same as the pod user ($POD_SSH_USER; as root a user of its own, see
 * tests/harness/pod), as if on the pod: what it writes under $POD_ROOT is
 * the pod's, and git there trusts the repositories the pod owns. */
int itest_pod_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like `pgrep -f pattern` (0: one runs, 1: none), but only processes of
 * this harness's pod: those whose working directory is under $POD_ROOT,
 * or whose own or process group leader's command line names it.  Other
 * suites' pods run the same fakes on this machine at the same time. */
int itest_pod_pgrep(const char *pattern);
/* Milliseconds, monotonic. */
long long itest_ms(void);
/* Poll GetTask until the task reaches a terminal state or timeout_ms;
 * returns the final state name (static) or "timeout". */
const char *itest_wait_task(const char *token, const char *task_id,
    long timeout_ms);

/* An envelope task_request (POST /api/a2a) as token. */
void itest_envelope(const char *token, const char *operation,
    const char *params, struct itest_resp *r);
/* Start a task operation through the envelope (asserts it was accepted);
 * its id (caller frees). */
char *itest_start_task(const char *token, const char *operation,
    const char *params);
/* tasks.get through the envelope. */
void itest_get_task(const char *token, const char *id, struct itest_resp *r);
/* make-media ARGS into $HARNESS_DIR/name, then PUT /uploads/name as token;
 * the upload id (caller frees). */
char *itest_upload_media(const char *token, const char *name,
    const char *make_media_args);
/* How many times the pod's fake tool or script name ran (calls.log). */
int itest_fake_calls(const char *name);
/* Pods the RunPod stand-in holds that are not terminated. */
int itest_runpod_live_pods(void);
/* Wait (bounded: 120 s) until the fake tool name has run more than n
 * times; fails the test otherwise. */
void itest_wait_fake_calls(const char *name, int n);
/*
 * Pipeline task_id's pod lost mid-train, as when it is terminated in
 * RunPod's console: the one pod the stand-in lists is deleted there, and
 * the task's running training job of stage ("face", "mouth", "fuse")
 * killed with it (its process group).  The pod's id (caller frees).
 */
char *itest_lose_pod_in_train(const char *task_id, const char *stage);

/* Pods the RunPod stand-in has created since it started (its log). */
int itest_runpod_created(void);
/* Merge faults into the stand-in's (JSON object), or clear them (NULL). */
void itest_runpod_faults(const char *json);
/* SIGKILL the agent and start it again (tests/harness/agent). */
void itest_agent_crash(void);

/* Start the HTTPS push receiver (tests/integration/push_receiver.py, the
 * harness certificate) for lifetime_s seconds; returns its port, *out_file
 * its record file (JSON lines), *proc the process (pclose waits for it to
 * end). */
int itest_push_receiver(char *out_file, size_t len, long lifetime_s,
    FILE **proc);
/* Stop it (POST /_quit) and wait for it to end. */
void itest_push_receiver_stop(int port, FILE *proc);
/* Wait (bounded) for a record whose line contains needle; the parsed
 * record (caller puts) or NULL. */
json_object *itest_wait_record(const char *file, const char *needle,
    long timeout_ms);

/* The value at a dotted path ("result.status.state", array indexes as
 * numbers: "pods.0.id") in o, borrowed; NULL when absent. */
json_object *itest_jget(json_object *o, const char *path);
/* The string there, or NULL when absent or not a string. */
const char *itest_jstr(json_object *o, const char *path);
/* The integer there, or -999999 when absent. */
int itest_jint(json_object *o, const char *path);
/* The value of an unlabelled metric in the agent's /metrics (fails the
 * test when it is missing). */
unsigned long long itest_metric(const char *name);

#endif
