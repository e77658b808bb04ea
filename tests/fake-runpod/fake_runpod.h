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

struct fake_options {
	char *api_key;		/* the one key with full access */
	char *ro_key;		/* read-only key, or NULL */
	char *ssh_host;		/* ssh.direct host of RUNNING pods */
	int ssh_port;		/* ssh.direct port of RUNNING pods */
	long state_delay_ms;	/* time in PROVISIONING and in STARTING */
};

struct fake_req {
	const char *method;
	const char *path;		/* without the query, still %-encoded */
	const char *query;		/* after '?', or "" */
	const char *authorization;	/* header value, or NULL */
	const char *body;		/* NUL-terminated copy of the body */
	size_t body_len;
};

struct fake_resp {
	int status;
	const char *content_type;	/* NULL: no body */
	char *body;			/* owned; NULL when none */
	struct strbuf headers;		/* extra "Name: value\r\n" lines */
	long delay_ms;			/* hold the answer this long */
};

void fake_api_init(const struct fake_options *opt);
void fake_api_free(void);
/* Answer req into resp (which the caller zeroed). */
void fake_api_handle(const struct fake_req *req, struct fake_resp *resp);
/* The reason phrase of an HTTP status. */
const char *fake_reason(int status);

/* The decoded value of query parameter name, or NULL.  Caller frees. */
char *fake_query_get(const char *query, const char *name);

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
