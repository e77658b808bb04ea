/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/xalloc.h"
#include "providers/runpod/billing.h"
#include "providers/runpod/podcost.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/runpod.h"

int
billing_fetch(const char *pod_id, int64_t since_ms, json_object **answer,
    char **why)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	int rc = -1;

	*answer = NULL;
	*why = NULL;
	if ((c = pods_client(&e)) == NULL) {
		*why = xstrdup("RunPod is not configured");
		goto cleanup;
	}
	rc = runpod_pod_billing(c, pod_id, since_ms, answer, &e);
	pods_count(rc, &e);
	if (rc == 0)
		goto cleanup;
	if (e.http_status != 0)
		*why = xasprintf("RunPod's billing endpoint (GET "
		    "/v2/billing/pods) answered HTTP %d (%s)", e.http_status,
		    runpod_error_kind_name(e.kind));
	else
		*why = xasprintf("RunPod's billing endpoint (GET "
		    "/v2/billing/pods) did not answer (%s)",
		    runpod_error_kind_name(e.kind));
cleanup:
	runpod_error_clear(&e);
	return rc;
}

/* A number member of o: 0 and *v, or -1 when absent or not a number. */
static int
num(json_object *o, const char *key, double *v)
{
	json_object *x;

	if (!json_object_object_get_ex(o, key, &x) ||
	    (!json_object_is_type(x, json_type_double) &&
	    !json_object_is_type(x, json_type_int)))
		return -1;
	*v = json_object_get_double(x);
	return 0;
}

void
billing_attach(json_object *cost, const struct pod_rec *r,
    json_object *answer, const char *why_not)
{
	json_object *recs = ju_arr(answer, "records"), *b;
	double total = 0, gpu = 0, cpu = 0, disk = 0, v, est;
	size_t i, n = recs ? json_object_array_length(recs) : 0, k = 0;
	bool bad = false;

	for (i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(recs, i);
		const char *id = ju_str(x, "podId");

		if (id == NULL || strcmp(id, r->pod_id) != 0)
			continue;
		if (num(x, "totalAmount", &v) < 0) {
			bad = true;
			break;
		}
		total += v;
		if (num(x, "gpuAmount", &v) == 0)
			gpu += v;
		if (num(x, "cpuAmount", &v) == 0)
			cpu += v;
		if (num(x, "diskAmount", &v) == 0)
			disk += v;
		k++;
	}
	if (recs == NULL || bad) {
		json_object_object_add(cost, "billed", NULL);
		json_object_object_add(cost, "billed_note",
		    json_object_new_string(recs == NULL ? (why_not ? why_not :
		    "no billing answer") : "RunPod's billing answer has a "
		    "record without a totalAmount"));
		return;
	}
	b = json_object_new_object();
	json_object_object_add(b, "usd", json_object_new_double(
	    podcost_round(total, 1e-6)));
	json_object_object_add(b, "compute_usd", json_object_new_double(
	    podcost_round(gpu + cpu, 1e-6)));
	json_object_object_add(b, "storage_usd", json_object_new_double(
	    podcost_round(disk, 1e-6)));
	json_object_object_add(b, "records", json_object_new_int64(
	    (int64_t)k));
	json_object_object_add(b, "source", json_object_new_string(
	    "RunPod GET /v2/billing/pods"));
	json_object_object_add(cost, "billed", b);
	est = podcost_total(r);
	json_object_object_add(cost, "difference_usd", json_object_new_double(
	    podcost_round(est - total, 1e-6)));
	if (k == 0)
		json_object_object_add(cost, "billed_note",
		    json_object_new_string("RunPod has no billing record for "
		    "this pod yet (its records can trail the usage)"));
}

void
billing_reconcile(json_object *cost, const struct pod_rec *r)
{
	json_object *answer = NULL;
	char *why = NULL;

	if (billing_fetch(r->pod_id, r->created_ms, &answer, &why) < 0)
		billing_attach(cost, r, NULL, why);
	else
		billing_attach(cost, r, answer, NULL);
	if (answer != NULL)
		json_object_put(answer);
	free(why);
}

json_object *
billing_task_cost(const struct pod_rec *r)
{
	struct pod_rec *d = store_pod_dup(r);
	json_object *o;

	podcost_accrue(d, clock_wall_ms(), strcmp(d->state, "stopped") == 0);
	o = podcost_json(d);
	billing_reconcile(o, d);
	store_pod_free(d);
	return o;
}

int
billing_op_list_pods(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	json_object *pods, *answer = NULL, *cost;
	struct pod_rec **recs;
	size_t i, n;
	int64_t since = 0;
	char *why = NULL;

	if (pods_op_list(c, params, result, e) < 0)
		return -1;
	pods = ju_arr(*result, "pods");
	n = pods ? json_object_array_length(pods) : 0;
	if (n == 0)
		return 0;
	recs = xcalloc(n, sizeof(*recs));
	for (i = 0; i < n; i++) {
		const char *id = ju_str(json_object_array_get_idx(pods, i),
		    "pod_id");
		if (id == NULL || store_pod_get(pods_store(), id, &recs[i])
		    != 0)
			recs[i] = NULL;
		else if (since == 0 || recs[i]->created_ms < since)
			since = recs[i]->created_ms;
	}
	if (billing_fetch(NULL, since, &answer, &why) < 0)
		answer = NULL;
	for (i = 0; i < n; i++)
		if (recs[i] != NULL && json_object_object_get_ex(
		    json_object_array_get_idx(pods, i), "cost", &cost))
			billing_attach(cost, recs[i], answer, why);
	store_pod_list_free(recs, n);
	if (answer != NULL)
		json_object_put(answer);
	free(why);
	return 0;
}
