/* SPDX-License-Identifier: MIT */
/*
 * billing: what RunPod itself billed for the agent's pods, next to the
 * agent's own estimate (podcost).  Prefix billing_.
 *
 * One GET /v2/billing/pods per reconciliation (a task's end, or one
 * runpod.list_pods), on the calling thread's client: no wait beyond that
 * client's timeouts and attempts.  When RunPod does not answer (404,
 * 5xx, 429, a network error, an answer without "records"), the figures
 * are null with a reason and nothing fails.
 */
#ifndef IA_BILLING_H
#define IA_BILLING_H

#include <stdint.h>
#include <json-c/json.h>

#include "core/op.h"
#include "store/store.h"

/*
 * Ask RunPod for the billing records of pod_id (NULL: every pod) from the
 * day of since_ms on.  0 and *answer (new reference, caller puts), or -1
 * and *why (a new string, caller frees; no secret).
 */
int billing_fetch(const char *pod_id, int64_t since_ms, json_object **answer,
    char **why);

/*
 * Add to cost (a podcost_json object of pod r) what answer (may be NULL)
 * says RunPod billed for r: "billed" {usd, compute_usd, storage_usd,
 * records, source} and "difference_usd" (the estimate's usd minus the
 * billed usd), or "billed": null with "billed_note" why (why_not when
 * answer is NULL).
 */
void billing_attach(json_object *cost, const struct pod_rec *r,
    json_object *answer, const char *why_not);

/*
 * The usual end of a task that held pod r: one billing_fetch for r and
 * billing_attach into cost.
 */
void billing_reconcile(json_object *cost, const struct pod_rec *r);

/*
 * The cost of pod r at a task's end (new reference): the registry's sums
 * accrued up to now in the pod's state (on a copy: the cost guard keeps
 * the row), reconciled with RunPod's billing (one call).
 */
json_object *billing_task_cost(const struct pod_rec *r);

/*
 * runpod.list_pods with the reconciliation: pods_op_list, then one
 * billing_fetch for all the listed pods (from the oldest one's day) and
 * billing_attach into each pod's "cost".
 */
int billing_op_list_pods(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);

#endif
