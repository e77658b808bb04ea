/* SPDX-License-Identifier: MIT */
/*
 * fake-runpod: a local stand-in for RunPod's REST API v2, for tests.
 *
 * fake_runpod.c is the HTTP/1.1 server (one thread, poll(2)); fake_api.c
 * holds the state (pods, faults, counters) and answers one parsed request
 * at a time.  See tests/fake-runpod/README.md for the routes and the
 * control API.
 */
#ifndef IA_FAKE_RUNPOD_H
#define IA_FAKE_RUNPOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "lib/strbuf.h"

struct json_object;

struct fake_options {
	char *api_key;		/* the one key with full access */
	char *ro_key;		/* read-only key, or NULL */
	char *ssh_host;		/* ssh.direct host of RUNNING pods */
	int ssh_port;		/* ssh.direct port of RUNNING pods */
	long state_delay_ms;	/* time in PROVISIONING and in STARTING */
	char *volume_dir;	/* --volume-dir: where volumes live and are
				   linked from a pod's mount path; NULL */
};

struct fake_req {
	const char *method;
	const char *path;		/* without the query, still %-encoded */
	const char *query;		/* after '?', or "" */
	const char *authorization;	/* header value, or NULL */
	const char *last_event_id;	/* header value, or NULL */
	const char *body;		/* NUL-terminated copy of the body */
	size_t body_len;
};

struct fake_resp {
	int status;
	const char *content_type;	/* NULL: no body */
	char *body;			/* owned; NULL when none */
	struct strbuf headers;		/* extra "Name: value\r\n" lines */
	long delay_ms;			/* hold the answer this long */
	struct fake_stream *stream;	/* non-NULL: a 200 event stream;
					   body is its first events; the
					   server owns it then */
};

void fake_api_init(const struct fake_options *opt);
void fake_api_free(void);
/* Answer req into resp (which the caller zeroed). */
void fake_api_handle(const struct fake_req *req, struct fake_resp *resp);
/* The reason phrase of an HTTP status. */
const char *fake_reason(int status);
/* An RFC 9457 problem answer (errors: NULL or an array it takes). */
void fake_set_problem(struct fake_resp *resp, int status, const char *detail,
    json_object *errors);
/* The decoded value of query parameter name, or NULL.  Caller frees. */
char *fake_query_get(const char *query, const char *name);
/* Walk a pod's status forward to now (its log gets the changes). */
void fake_api_tick(const char *pod_id);

/* fake_logs.c: the pods' logs and GET /v2/pods/{id}/logs. */
struct fake_stream;
/* Append a line to a pod's log (system: source "system", else
 * "container"). */
void fake_logs_add(const char *pod_id, int64_t wall_ms, bool system,
    const char *text);
/* The lines a status change writes (where: NULL or more words). */
void fake_logs_status(const char *pod_id, const char *status,
    int64_t wall_ms, const char *where);
void fake_logs_clear(void);
/* GET /v2/pods/{id}/logs of an existing pod: a 422 problem, or a 200
 * with resp->stream set. */
void fake_logs_get(const struct fake_req *req, const char *pod_id,
    struct fake_resp *resp);
/* POST /_fake/pods/{id}/logs with body {"line", "source"?}. */
void fake_logs_inject(const char *pod_id, json_object *body,
    struct fake_resp *resp);
/* The events of s that are new since the last call, as SSE text added
 * to sb; false when there were none. */
bool fake_logs_stream_more(struct fake_stream *s, struct strbuf *sb);
void fake_logs_stream_free(struct fake_stream *s);

/* fake_api.c helpers for fake_volumes.c: a problem+json answer (errors:
 * NULL or an array, taken), a JSON answer (o taken), an empty one, the
 * parsed body (NULL after answering 400/422 itself; caller puts), a
 * random number, and whether a pod that is not terminated mounts the
 * network volume id. */
void fake_problem(struct fake_resp *resp, int status, const char *detail,
    struct json_object *errors);
void fake_json(struct fake_resp *resp, int status, struct json_object *o);
void fake_empty(struct fake_resp *resp, int status);
struct json_object *fake_body(const struct fake_req *req,
    struct fake_resp *resp);
uint64_t fake_rand(void);
bool fake_api_volume_in_use(const char *id);

/* fake_volumes.c: /v2/network-volumes (see there). */
void fake_volumes_init(const char *dir);
void fake_volumes_clear(void);
void fake_volumes_free(void);
void fake_volumes_list(struct fake_resp *resp);
void fake_volumes_create(const struct fake_req *req, struct fake_resp *resp);
void fake_volumes_get(const char *id, struct fake_resp *resp);
void fake_volumes_patch(const struct fake_req *req, const char *id,
    struct fake_resp *resp);
void fake_volumes_delete(const char *id, struct fake_resp *resp);
/* The data center of volume id, NULL when there is none. */
const char *fake_volume_dc(const char *id);
/* Link (on) or unlink path to volume id's directory (with --volume-dir). */
void fake_volume_mount(const char *id, const char *path, bool on);

/* ---- fake_billing.c: the pod billing ledger, GET /v2/billing/pods ---- */

/*
 * From wall_ms on, pod_id is billed compute_hr (USD/h, as gpuAmount, or
 * cpuAmount when cpu) and disk_hr (USD/h, diskAmount); both 0: nothing.
 * Closes the pod's previous rate at wall_ms.
 */
void fake_billing_mark(const char *pod_id, bool cpu, int64_t wall_ms,
    double compute_hr, double disk_hr);
/*
 * Answer GET /v2/billing/pods for query (after '?'): the HTTP status,
 * with *out (200: the ListPodBillingResponse, new reference), or *detail
 * (400, 422: a new string) and for 422 *errors (an array of strings, new
 * reference).
 */
int fake_billing_answer(const char *query, json_object **out, char **detail,
    json_object **errors);
void fake_billing_clear(void);

#endif
