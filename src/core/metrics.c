/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdatomic.h>
#include <string.h>

#include "core/metrics.h"

static const char *const route_names[MR__COUNT] = {
	"agent_card", "a2a", "envelope", "umbrella_card", "health", "metrics",
	"artifact", "upload", "other"
};
static const int classes[] = { 2, 3, 4, 5 };

static atomic_ulong requests[MR__COUNT][4];
static atomic_ulong req_usec[MR__COUNT];
static atomic_ulong auth_fail;
static atomic_ulong rpc_calls;
static atomic_ulong rpc_errors;
static metrics_collector_fn collectors[METRICS_MAX_COLLECTORS];
static atomic_size_t ncollectors;

void
metrics_request(enum metrics_route route, int status, double seconds)
{
	int c = status / 100 - 2;

	if (c < 0 || c > 3)
		c = 3;
	atomic_fetch_add(&requests[route][c], 1);
	atomic_fetch_add(&req_usec[route], (unsigned long)(seconds * 1e6));
}

void
metrics_auth_failure(const char *reason)
{
	(void)reason;
	atomic_fetch_add(&auth_fail, 1);
}

void
metrics_rpc_method(const char *method)
{
	(void)method;
	atomic_fetch_add(&rpc_calls, 1);
}

void
metrics_rpc_error(int code)
{
	(void)code;
	atomic_fetch_add(&rpc_errors, 1);
}

static atomic_ulong orphan_pods;
static const char *const reap_names[] = { "cost_guard", "reaper", "timeout",
    "failed", "cancel", "idle" };
#define NREAP (sizeof(reap_names) / sizeof(reap_names[0]))
static atomic_ulong reaped[NREAP];
static atomic_ulong idle_stopped, idle_terminated;

void
metrics_set_orphan_pods(unsigned long n)
{
	atomic_store(&orphan_pods, n);
}

void
metrics_pod_reaped(const char *why)
{
	size_t i;

	for (i = 0; i < NREAP; i++)
		if (strcmp(why, reap_names[i]) == 0)
			atomic_fetch_add(&reaped[i], 1);
}

void
metrics_pod_idle(const char *action)
{
	atomic_fetch_add(strcmp(action, "stop") == 0 ? &idle_stopped :
	    &idle_terminated, 1);
}

static void
render_pods(struct strbuf *sb)
{
	size_t i;

	sb_addf(sb, "# HELP instag_agent_orphan_pods Pods with the agent's "
	    "prefix that no task owns (last reaper round).\n"
	    "# TYPE instag_agent_orphan_pods gauge\n"
	    "instag_agent_orphan_pods %lu\n", atomic_load(&orphan_pods));
	sb_adds(sb, "# HELP instag_agent_pods_terminated_total Pods the agent "
	    "terminated by itself: cost guard, reaper, provision timeout, "
	    "failed provision, canceled provision, idle limit.\n"
	    "# TYPE instag_agent_pods_terminated_total counter\n");
	for (i = 0; i < NREAP; i++)
		sb_addf(sb, "instag_agent_pods_terminated_total{by=\"%s\"} "
		    "%lu\n", reap_names[i], atomic_load(&reaped[i]));
	sb_addf(sb, "# HELP instag_agent_pods_idle_total Pods the idle limit "
	    "stopped or terminated (no task used them for idle_minutes).\n"
	    "# TYPE instag_agent_pods_idle_total counter\n"
	    "instag_agent_pods_idle_total{action=\"stop\"} %lu\n"
	    "instag_agent_pods_idle_total{action=\"terminate\"} %lu\n",
	    atomic_load(&idle_stopped), atomic_load(&idle_terminated));
}

void
metrics_render(struct strbuf *sb)
{
	size_t i, n;
	int r, c;

	sb_adds(sb, "# HELP instag_agent_requests_total HTTP requests by route "
	    "and status class.\n# TYPE instag_agent_requests_total counter\n");
	for (r = 0; r < MR__COUNT; r++)
		for (c = 0; c < 4; c++)
			sb_addf(sb, "instag_agent_requests_total{route=\"%s\","
			    "code=\"%dxx\"} %lu\n", route_names[r], classes[c],
			    atomic_load(&requests[r][c]));
	sb_adds(sb,
	    "# HELP instag_agent_request_seconds_total Time spent handling "
	    "requests.\n# TYPE instag_agent_request_seconds_total counter\n");
	for (r = 0; r < MR__COUNT; r++)
		sb_addf(sb, "instag_agent_request_seconds_total{route=\"%s\"} "
		    "%.6f\n", route_names[r], atomic_load(&req_usec[r]) / 1e6);
	sb_addf(sb, "# TYPE instag_agent_auth_failures_total counter\n"
	    "instag_agent_auth_failures_total %lu\n", atomic_load(&auth_fail));
	sb_addf(sb, "# TYPE instag_agent_rpc_calls_total counter\n"
	    "instag_agent_rpc_calls_total %lu\n", atomic_load(&rpc_calls));
	sb_addf(sb, "# TYPE instag_agent_rpc_errors_total counter\n"
	    "instag_agent_rpc_errors_total %lu\n", atomic_load(&rpc_errors));
	render_pods(sb);
	n = atomic_load(&ncollectors);
	for (i = 0; i < n; i++)
		collectors[i](sb);
}

void
metrics_add_collector(metrics_collector_fn fn)
{
	size_t n = atomic_load(&ncollectors);

	if (n < METRICS_MAX_COLLECTORS) {
		collectors[n] = fn;
		atomic_store(&ncollectors, n + 1);
	}
}
