/* SPDX-License-Identifier: MIT */
/*
 * podcost: what a pod costs, compute and disk storage.  Prefix podcost_.
 *
 * RunPod bills a pod by the second: compute at the pod's hourly rate
 * (the Pod's "cost", 0 while EXITED) and disk storage per GB per month,
 * also while the pod is stopped.  The storage rates are RunPod's
 * published ones (docs/internals.md, "What a pod costs"):
 *   running pod:  container disk and volume disk   0.10 USD/GB/month
 *   stopped pod:  volume disk only                  0.20 USD/GB/month
 * with a month of 730 hours.  Network volumes are billed apart from the
 * pod (GET /v2/billing/network-volumes) and are not counted here.
 *
 * The registry row (struct pod_rec) holds the running sums: running_ms
 * and cost_usd (compute), stopped_ms, storage_usd; last_check_ms says
 * up to when they are accrued.  The cost guard accrues every round; a
 * stop, a resume and a termination accrue up to that moment first, so
 * each interval is counted once, in the state the pod was in.
 */
#ifndef IA_PODCOST_H
#define IA_PODCOST_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "store/store.h"

#define PODCOST_RUNNING_GB_MONTH 0.10	/* USD per GB per month */
#define PODCOST_STOPPED_GB_MONTH 0.20	/* USD per GB per month */
#define PODCOST_HOURS_PER_MONTH 730.0
/* A STANDARD network volume: the first 1 TB (1000 GB), then the rest. */
#define PODCOST_NETVOL_GB_MONTH 0.07	/* USD per GB per month */
#define PODCOST_NETVOL_BIG_GB_MONTH 0.05
#define PODCOST_NETVOL_TIER_GB 1000

/*
 * What a network volume of size_gb and type ("STANDARD",
 * "HIGH_PERFORMANCE" or NULL) costs per month in USD, at RunPod's
 * published rates, billed whether a pod mounts it or not; -1 when RunPod
 * publishes no rate for the type (HIGH_PERFORMANCE).
 */
double podcost_netvol_month(int64_t size_gb, const char *type);

/* The disk storage rate of r in USD/h, running or stopped. */
double podcost_storage_rate(const struct pod_rec *r, bool stopped);

/* Add dt_ms (clamped at 0) of disk storage to r: storage_usd at the
 * running or stopped rate, and stopped_ms when stopped. */
void podcost_storage(struct pod_rec *r, int64_t dt_ms, bool stopped);

/*
 * Accrue r from last_check_ms up to now in one state: stopped (storage
 * at the stopped rate) or running (running_ms, compute at cost_per_hr,
 * storage at the running rate); last_check_ms = now.  A terminated row,
 * or one never checked (last_check_ms 0), is only stamped.
 */
void podcost_accrue(struct pod_rec *r, int64_t now, bool stopped);

/* compute + storage, USD. */
double podcost_total(const struct pod_rec *r);

/* Round to unit for answers (1e-6 for money, 1e-4 for minutes). */
double podcost_round(double v, double unit);

/*
 * The cost object of r (new reference): minutes (running + stopped),
 * running_minutes, stopped_minutes, usd_per_hr (compute, last known),
 * storage_usd_per_hr (now, for its state), disk_gb, volume_gb,
 * compute_usd, storage_usd, usd (their sum) and basis (a sentence).
 */
json_object *podcost_json(const struct pod_rec *r);

#endif
