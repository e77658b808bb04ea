/* SPDX-License-Identifier: MIT */
/*
 * runpod: a blocking client for RunPod's REST API v2 (pods and the GPU
 * catalog).  Prefix runpod_.
 *
 * One struct runpod_client per thread: it owns one curl easy handle (kept
 * connections, CURLOPT_NOSIGNAL) and is not safe for concurrent use.  Every
 * call blocks for the whole exchange, retries included (see "Retries").
 * The program calls curl_global_init() once before any thread starts
 * (main() does; so do tests that make clients).
 *
 * Transport: https only, TLS peer and host verification on (TLS >= 1.2),
 * CA bundle opts->ca_file or the system's, no redirects followed, no proxy.
 * Test hook: a base_url of exactly http://127.0.0.1[:port][/...] or
 * http://[::1][:port][/...] may use plain http (for the local stand-in,
 * tests/fake-runpod); any other http:// URL is refused by
 * runpod_client_new().
 *
 * Secrets: the API key is sent only in the Authorization header.  It is
 * never logged, never put in a URL, never put in an error string, and is
 * scrubbed ("[redacted]") from any title or detail the server sends back.
 * The client wipes its copy when freed.
 *
 * Errors: every call returns 0, or -1 with *e filled.  e must be
 * zero-initialised (RUNPOD_ERROR_INIT) before its first use; each call
 * clears it first (freeing what a previous failure left), so one struct can
 * be reused; release it with runpod_error_clear() when done.  e->title and
 * e->detail come from the server's problem+json (RFC 9457) when there is
 * one; for 422 the "errors" list is appended to detail.
 *
 * Retries, inside each call, up to opts->max_attempts attempts in total:
 *  - 429: wait Retry-After seconds (capped at RUNPOD_RETRY_AFTER_MAX_S;
 *    the backoff below when absent), then try again.  Also for a create:
 *    a 429 is answered before the request is acted on.
 *  - 5xx and network errors: wait a jittered exponential backoff
 *    (backoff_base_ms * 2^(n-1), a random point in its upper half, at most
 *    RUNPOD_BACKOFF_MAX_MS) and try again.
 *  - A CREATE is NEVER retried after a 5xx or a network error other than
 *    "could not resolve / could not connect" (the request may have been
 *    acted on and the pod may exist, billed): runpod_create_pod() returns
 *    RP_SERVER or RP_NETWORK at once, and the caller must look the pod up
 *    by the name it sent with runpod_find_pod_by_name() - the name is the
 *    idempotency key - before creating again or giving up.
 *  - Actions retried after a 5xx may answer 409 when the first attempt did
 *    take effect (e.g. stop, then stop again on an EXITED pod); callers
 *    should re-read the pod on RP_CONFLICT.
 *  - Everything else (4xx other than 429) is final at once.
 * When attempts run out, the last answer's kind is returned (RP_RATE_LIMITED,
 * RP_SERVER or RP_NETWORK).
 */
#ifndef IA_RUNPOD_H
#define IA_RUNPOD_H

#include "lib/attrs.h"

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#define RUNPOD_RETRY_AFTER_MAX_S 60
#define RUNPOD_BACKOFF_MAX_MS 30000
#define RUNPOD_BODY_MAX (8 * 1024 * 1024)	/* larger: RP_PROTOCOL */
#define RUNPOD_VOLUME_PATH "/workspace"

struct runpod_opts {
	const char *base_url;	/* origin without version, e.g.
				   https://api.runpod.io; /v2/... is appended */
	const char *api_key;	/* bearer key; never logged, never in a URL
				   or an error string */
	const char *ca_file;	/* NULL = system CAs */
	long connect_timeout_s;	/* <= 0: 10 */
	long timeout_s;		/* whole transfer; <= 0: 60 */
	int max_attempts;	/* for 429/5xx/network errors; <= 0: 1 */
	long backoff_base_ms;	/* <= 0: 500 */
};

struct runpod_client;

enum runpod_error_kind {
	RP_OK = 0,
	RP_NETWORK,		/* no HTTP answer: connect, TLS, timeout */
	RP_RATE_LIMITED,	/* 429 after every attempt */
	RP_SERVER,		/* 5xx */
	RP_NO_CAPACITY,		/* 400 on create: no capacity for this
				   GPU, cloud or data center, or another
				   rule broken (RunPod gives no code; see
				   detail) */
	RP_BAD_REQUEST,		/* 422, 400 elsewhere, other 4xx, or bad
				   arguments (http_status 0) */
	RP_PAYMENT,		/* 402 insufficient balance */
	RP_FORBIDDEN,		/* 403 (on create: RP_POOL_FORBIDDEN) */
	RP_NOT_FOUND,		/* 404 */
	RP_CONFLICT,		/* 409: action not valid in this status */
	RP_AUTH,		/* 401 */
	RP_PROTOCOL,		/* unexpected answer: bad JSON, wrong shape,
				   unexpected status, too large */
	RP_POOL_FORBIDDEN	/* 403 on create: this account cannot use
				   the pool asked for (or the key may not
				   create pods; RunPod does not say which) */
};
#define RUNPOD_ERROR_KINDS (RP_POOL_FORBIDDEN + 1)

struct runpod_error {
	int http_status;	/* 0 when there was no HTTP answer */
	char *title;		/* secret-free; NULL or owned by e */
	char *detail;		/* secret-free; NULL or owned by e */
	long retry_after_s;	/* last Retry-After seen, 0 if none */
	int kind;		/* enum runpod_error_kind */
};

#define RUNPOD_ERROR_INIT { 0, NULL, NULL, 0, RP_OK }

/* Free title and detail and zero *e (kind RP_OK).  NULL is fine. */
void runpod_error_clear(struct runpod_error *e);
/* A constant name for a kind, e.g. "no_capacity". */
const char *runpod_error_kind_name(int kind);

struct runpod_pod {
	char *id, *name, *status, *gpu_id;
	char *public_ip;	/* ssh.direct.host, NULL unless present */
	int gpu_count;
	int ssh_port;		/* ssh.direct.port, 0 unless present */
	double cost_per_hr;	/* "cost", USD/h */
	char **actions;		/* valid actions now */
	size_t nactions;
	long uptime_s;		/* runtime.uptime, 0 unless RUNNING */
	json_object *raw;	/* the whole Pod object (a reference) */
};

/* Free p and everything it holds.  NULL is fine. */
void runpod_pod_free(struct runpod_pod *p);
/* Free an array of n pods from runpod_list_pods().  NULL is fine. */
void runpod_pods_free(struct runpod_pod **pods, size_t n);
/* True if action is in p->actions. */
bool runpod_pod_can(const struct runpod_pod *p, const char *action);

struct runpod_create {
	const char *name;	/* required; the idempotency key */
	const char *image;	/* required */
	const char *gpu_id;	/* required: one GPU type id */
	int gpu_count;		/* <= 0: 1 */
	const char *cloud;	/* "SECURE", "COMMUNITY" or NULL (SECURE) */
	int disk_gb;		/* container disk GB; <= 0: default */
	int volume_gb;		/* 0: none; else mounts.persistent (>= 10)
				   at volume_path */
	const char *network_volume_id;	/* NULL: none; else mounts.network
				   [{volumeId, path: volume_path}] (not
				   with volume_gb) */
	const char *data_center_id;	/* NULL: any; else dataCenterIds
				   [it] (a network volume's data center) */
	const char *volume_path;	/* NULL: RUNPOD_VOLUME_PATH */
	json_object *env;	/* NULL or an object of string values;
				   borrowed (copied into the body) */
	const char *const *ports;	/* extra ports ("8888/http"); "22/tcp"
				   is always added */
	size_t nports;
	const char *public_key;	/* NULL or sent as env PUBLIC_KEY (wins
				   over env) */
};

/*
 * Make a client.  opts and its strings are copied.  0, or -1 with *err
 * (caller frees; never contains the key): missing or malformed base_url,
 * http:// other than the loopback test hook, empty key or one with
 * control characters or spaces, curl failure.  Free with
 * runpod_client_free().
 */
WARN_UNUSED_RESULT
int runpod_client_new(const struct runpod_opts *opts,
    struct runpod_client **out, char **err);
/* Close connections, wipe the key, free.  NULL is fine. */
void runpod_client_free(struct runpod_client *c);

/*
 * POST /v2/pods.  On success *out is the new pod (caller frees with
 * runpod_pod_free).  See "Retries": after RP_SERVER or RP_NETWORK the pod
 * may exist; call runpod_find_pod_by_name(req->name) before anything else.
 * 400 answers give RP_NO_CAPACITY (try the next candidate; when every
 * candidate gives 400 it is a rule the request breaks); 402 RP_PAYMENT
 * (stop: nothing will succeed); 403 RP_POOL_FORBIDDEN (this account
 * cannot use that pool: skip to the next candidate); 422 RP_BAD_REQUEST
 * (fix the request).
 */
WARN_UNUSED_RESULT
int runpod_create_pod(struct runpod_client *c, const struct runpod_create *req,
    struct runpod_pod **out, struct runpod_error *e);

/* GET /v2/pods/{id}.  *out: caller frees.  Unknown id: RP_NOT_FOUND. */
WARN_UNUSED_RESULT
int runpod_get_pod(struct runpod_client *c, const char *id,
    struct runpod_pod **out, struct runpod_error *e);

/*
 * GET /v2/pods: every pod of the account (TERMINATED ones are left out by
 * the API).  *out is an array of *n pods (NULL when none); caller frees
 * with runpod_pods_free(*out, *n).
 */
WARN_UNUSED_RESULT
int runpod_list_pods(struct runpod_client *c, struct runpod_pod ***out,
    size_t *n, struct runpod_error *e);

/*
 * The idempotency lookup: list the pods and keep those named name
 * (exactly).  *out is the first (oldest) match, NULL when none (still a
 * success); caller frees.  *nmatch (may be NULL) gets how many matched: more
 * than one means duplicates that cost money.
 */
WARN_UNUSED_RESULT
int runpod_find_pod_by_name(struct runpod_client *c, const char *name,
    struct runpod_pod **out, size_t *nmatch, struct runpod_error *e);

/*
 * POST /v2/pods/{id}/action with action "start", "stop", "restart" or
 * "terminate" (anything else: RP_BAD_REQUEST, nothing sent).  *out is the
 * updated pod (caller frees), or NULL after a 204 (terminate).  An action
 * not valid in the pod's status: RP_CONFLICT.
 */
WARN_UNUSED_RESULT
int runpod_pod_action(struct runpod_client *c, const char *id,
    const char *action, struct runpod_pod **out, struct runpod_error *e);

/* DELETE /v2/pods/{id} (terminate; 204).  Cluster pods: RP_CONFLICT. */
WARN_UNUSED_RESULT
int runpod_delete_pod(struct runpod_client *c, const char *id,
    struct runpod_error *e);

/*
 * GET /v2/billing/pods?bucketSize=day&startTime=<start_ms, RFC 3339>, and
 * &podId=<pod_id> unless pod_id is NULL: RunPod's pod billing records
 * from that day on.  *out is the whole answer ({"records": [...],
 * "metadata": {...}}; a new reference, caller puts); it must have a
 * "records" array.
 */
WARN_UNUSED_RESULT
int runpod_pod_billing(struct runpod_client *c, const char *pod_id,
    int64_t start_ms, json_object **out, struct runpod_error *e);

/*
 * GET /v2/catalog/gpus, with ?include=AVAILABILITY&product=POD when
 * with_availability (each type then has "availability": NONE, LOW, MEDIUM
 * or HIGH).  *out is the "gpus" array (a new reference; caller puts).
 */
WARN_UNUSED_RESULT
int runpod_list_gpu_types(struct runpod_client *c, bool with_availability,
    json_object **out, struct runpod_error *e);

/*
 * A streamed GET (RunPod's Server-Sent Events routes, such as
 * GET /v2/pods/{id}/logs): ONE attempt, no retry.  path starts with
 * "/v2/" and holds its query, already escaped; header is NULL or one
 * extra request header line ("Last-Event-ID: ...", no CR or LF).
 *
 * On a 200 the body is handed to on_data as it arrives, until on_data
 * returns false (enough was read), the server ends it, max_ms have passed
 * since the call began, or no byte arrived for idle_ms once the 200 came
 * (checked by libcurl's progress callback, so up to about a second
 * later).  Any of these is a success: 0, and *end says which.  A stream
 * that never ends therefore holds the calling thread at most max_ms
 * (plus the connect bound).  Another status is read whole (bounded) and
 * gives -1 with *e as any call's (RP_RATE_LIMITED with retry_after_s for
 * a 429); no answer at all gives RP_NETWORK.
 */
enum runpod_stream_end {
	RP_STREAM_LIMIT,	/* on_data had enough */
	RP_STREAM_QUIET,	/* nothing for idle_ms */
	RP_STREAM_TIME,		/* max_ms passed */
	RP_STREAM_CLOSED	/* the server ended the stream */
};
WARN_UNUSED_RESULT
int runpod_stream_get(struct runpod_client *c, const char *path,
    const char *header, long max_ms, long idle_ms,
    bool (*on_data)(const char *buf, size_t len, void *arg), void *arg,
    enum runpod_stream_end *end, struct runpod_error *e);

/* "/v2/pods/<escaped id><suffix>" (caller frees), or NULL with *e
 * (RP_BAD_REQUEST: empty or over-long id). */
char *runpod_pod_path(struct runpod_client *c, const char *id,
    const char *suffix, struct runpod_error *e);
/* s with every byte outside [A-Za-z0-9._~-] %-escaped, for a URL query or
 * path: a new string (caller frees). */
char *runpod_escape(struct runpod_client *c, const char *s);

/*
 * len bytes of text from RunPod (a log line) made fit to relay: the
 * client's API key and other secrets replaced as redact_text() does
 * (lib/redact.h).  A new string, caller frees.
 */
char *runpod_scrub_text(const struct runpod_client *c, const char *text,
    size_t len);

/*
 * Any other v2 call (the network volumes of volumes.h): method and path
 * (starting with "/v2/"; the caller escapes ids in it), body NULL or JSON
 * text, create set for a POST that makes something billable (never
 * retried after a 5xx or a network error, as a pod create).  On a 2xx: 0,
 * *status and *json (the parsed body, NULL when empty; caller puts).
 * Otherwise -1 with *e, kinds as above (with create, a 400 is
 * RP_NO_CAPACITY, as for a pod).
 */
WARN_UNUSED_RESULT
int runpod_call(struct runpod_client *c, const char *method,
    const char *path, const char *body, bool create, long *status,
    json_object **json, struct runpod_error *e);

/* ---- visible for tests ------------------------------------------------ */

/* The limits every answer is parsed with (ju_parse). */
#define RUNPOD_JSON_DEPTH 64
#define RUNPOD_JSON_STR_MAX (1024 * 1024)

/*
 * A pod from a parsed Pod object (an answer's body, or an element of
 * GET /v2/pods' "pods"), as runpod_pod_parse reads it: a new pod holding a
 * new reference to o (caller frees with runpod_pod_free), or NULL when o
 * is not an object.
 */
struct runpod_pod *runpod_pod_from_json(json_object *o);

/*
 * Parse one Pod object from JSON text, tolerantly: unknown fields ignored,
 * missing or mistyped ones left NULL/0.  NULL when json is not a JSON
 * object.  Caller frees with runpod_pod_free().
 */
struct runpod_pod *runpod_pod_parse(const char *json);

/*
 * The CreatePodRequest body for req: a new object (caller puts), or NULL
 * with *err (caller frees) when req is incomplete or invalid.
 */
json_object *runpod_create_body(const struct runpod_create *req, char **err);

/*
 * Fill *e (cleared first) from an HTTP error answer: status, body (a
 * problem+json text or anything else, may be NULL), whether it answered a
 * create, and the secret to scrub from title and detail (may be NULL).
 */
void runpod_error_from_answer(long status, const char *body, bool create,
    const char *secret, struct runpod_error *e);

#endif
