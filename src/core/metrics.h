/* SPDX-License-Identifier: MIT */
/*
 * metrics: process-wide counters rendered in the Prometheus text format
 * for GET /metrics.  Counters are atomic; any thread may bump them.  The
 * modules above keep their own statistics and lend a collector, so this
 * module depends on none of them.
 */
#ifndef IA_METRICS_H
#define IA_METRICS_H

#include "lib/strbuf.h"

enum metrics_route {
	MR_CARD, MR_A2A, MR_ENVELOPE, MR_UMBRELLA_CARD, MR_HEALTH, MR_METRICS,
	MR_ARTIFACT, MR_UPLOAD, MR_OTHER, MR__COUNT
};

void metrics_request(enum metrics_route route, int status, double seconds);
void metrics_auth_failure(const char *reason);
void metrics_rpc_method(const char *method);
void metrics_rpc_error(int code);
/* Pods the last reaper round found without an owner. */
void metrics_set_orphan_pods(unsigned long n);
/* A pod terminated by the agent itself: "cost_guard", "reaper",
 * "timeout", "failed" (a provision that failed otherwise), "cancel" or
 * "idle". */
void metrics_pod_reaped(const char *why);
/* A pod the idle limit acted on: action "stop" or "terminate". */
void metrics_pod_idle(const char *action);
/* Append the whole exposition to sb: the counters above, then what each
 * collector adds. */
void metrics_render(struct strbuf *sb);

/* A module that keeps its own counters renders them here (Prometheus text,
 * with its own # TYPE lines).  Called from the thread serving /metrics. */
typedef void (*metrics_collector_fn)(struct strbuf *sb);
#define METRICS_MAX_COLLECTORS 16
/* Add a collector (at start-up, before any thread renders; beyond
 * METRICS_MAX_COLLECTORS it is ignored). */
void metrics_add_collector(metrics_collector_fn fn);

#endif
