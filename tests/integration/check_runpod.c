/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the RunPod provider: the real agent behind the real
 * nginx, the RunPod stand-in (tests/fake-runpod) on loopback, and its pods'
 * SSH pointing at the harness's real sshd.  Every wait is bounded.
 */
#include "auto-config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/itest.h"
#include "unit/testutil.h"

#define GPU_4090 "NVIDIA GeForce RTX 4090"
#define GPU_A100 "NVIDIA A100 80GB PCIe"
#define GPU_H100 "NVIDIA H100 80GB HBM3"
#define GPU_A5000 "NVIDIA RTX A5000"

static const char *admin(void) { return getenv("AGENT_TOKEN"); }

/* ---- the stand-in's own API (plain HTTP on loopback) -------------------- */

/* method path [body] against $RUNPOD_URL; with_key: send the API key. */
static void
fake(const char *method, const char *path, const char *body, int with_key,
    struct itest_resp *out)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", getenv("RUNPOD_URL"), path);
	itest_request_url(method, url, NULL, with_key ?
	    getenv("RUNPOD_API_KEY") : NULL, "application/json", body,
	    body ? strlen(body) : 0, out);
	ck_assert_msg(out->status != 0, "no answer from %s", url);
}

static void
fake_faults(const char *json)
{
	struct itest_resp r;

	fake(json ? "POST" : "DELETE", "/_fake/faults", json, 0, &r);
	ck_assert_msg(r.status == 200, "faults %s: %ld %s", json ? json : "",
	    r.status, r.body ? r.body : "");
	itest_resp_free(&r);
}

/* Calls the stand-in counted for a route, e.g. "POST /v2/pods". */
static int
fake_calls(const char *route)
{
	struct itest_resp r;
	json_object *calls, *v;
	int n = 0;

	fake("GET", "/_fake/stats", NULL, 0, &r);
	if (json_object_object_get_ex(r.json, "calls", &calls) &&
	    json_object_object_get_ex(calls, route, &v))
		n = json_object_get_int(v);
	itest_resp_free(&r);
	return n;
}

/* How many pods the stand-in lists (not terminated) named name. */
static int
fake_pods_named(const char *name)
{
	struct itest_resp r;
	json_object *pods;
	size_t i;
	int n = 0;

	fake("GET", "/v2/pods", NULL, 1, &r);
	ck_assert_int_eq(r.status, 200);
	pods = itest_jget(r.json, "pods");
	for (i = 0; pods && i < json_object_array_length(pods); i++)
		if (strcmp(itest_jstr(json_object_array_get_idx(pods, i),
		    "name"), name) == 0)
			n++;
	itest_resp_free(&r);
	return n;
}

static char *
pod_status(const char *id)
{
	struct itest_resp r;
	char path[128], *s;

	snprintf(path, sizeof(path), "/v2/pods/%s", id);
	fake("GET", path, NULL, 1, &r);
	s = strdup(r.status == 200 ? itest_jstr(r.json, "status") : "absent");
	itest_resp_free(&r);
	return s;
}

/* ---- the agent ---------------------------------------------------------- */

/* An envelope task_request; returns the response (caller frees). */
static void
op(const char *token, const char *operation, const char *params,
    struct itest_resp *r)
{
	char *body = NULL;
	size_t n = strlen(params) + strlen(operation) + 128;

	body = malloc(n);
	snprintf(body, n, "{\"type\":\"task_request\",\"sender\":\"xcs\","
	    "\"payload\":{\"operation\":\"%s\",\"params\":%s}}", operation,
	    params);
	itest_post("/api/a2a", token, body, r);
	free(body);
}

/* Start a task operation; returns its id (caller frees). */
static char *
start(const char *token, const char *operation, const char *params)
{
	struct itest_resp r;
	char *id;

	op(token, operation, params, &r);
	ck_assert_msg(r.status == 200 && itest_jstr(r.json, "task_id") &&
	    itest_jstr(r.json, "status") && strcmp(itest_jstr(r.json,
	    "status"), "error") != 0, "%s: %ld %s", operation, r.status,
	    r.body);
	id = strdup(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);
	return id;
}

/* tasks.get through the envelope: r->json's "result" is the task. */
static void
get_task(const char *id, struct itest_resp *r)
{
	char params[128];

	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	op(admin(), "tasks.get", params, r);
	ck_assert_int_eq(r->status, 200);
}

/* Run a task operation to its end; r holds tasks.get's answer. */
static void
run(const char *operation, const char *params, const char *want,
    long timeout_ms, struct itest_resp *r)
{
	char *id = start(admin(), operation, params);
	const char *st = itest_wait_task(admin(), id, timeout_ms);

	get_task(id, r);
	ck_assert_msg(strcmp(st, want) == 0, "%s ended %s, wanted %s: %s",
	    operation, st, want, r->body);
	free(id);
}

static void
setup(void)
{
	fake_faults(NULL);
}

/* ---- every operation and alias ------------------------------------------ */

/* The value of the /metrics sample named exactly name (with its labels),
 * or -1 when there is none. */
static double
metric(const char *name)
{
	struct itest_resp r;
	char needle[256];
	const char *p;
	double v = -1;

	itest_request("GET", "/metrics", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	snprintf(needle, sizeof(needle), "\n%s ", name);
	p = strstr(r.body, needle);
	if (p != NULL)
		v = strtod(p + strlen(needle), NULL);
	itest_resp_free(&r);
	return v;
}

START_TEST(test_lifecycle)
{
	struct itest_resp r;
	char *pod, params[128], name[128], *st;

	/* provision_pod (alias), through the envelope, with the seed
	 * agent's pod_name as the pod's label */
	run("provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
	    "\"pod_name\":\"may-talk_1\"}", "completed", 30000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.label"),
	    "may-talk_1");
	ck_assert_str_eq(itest_jstr(r.json, "result.operation"),
	    "runpod.provision_pod");
	pod = strdup(itest_jstr(r.json, "result.result.pod_id"));
	ck_assert_str_eq(itest_jstr(r.json, "result.result.public_ip"),
	    "127.0.0.1");
	ck_assert_int_eq(itest_jint(r.json, "result.result.ssh_port"),
	    atoi(getenv("POD_SSH_PORT")));
	ck_assert_str_eq(itest_jstr(r.json,
	    "result.result.host_key_fingerprint"), getenv("POD_HOST_FP"));
	ck_assert_str_eq(itest_jstr(r.json, "result.result.gpu_type_id"),
	    GPU_4090);
	ck_assert_str_eq(itest_jstr(r.json, "result.progress.message"),
	    "ssh ready");
	snprintf(name, sizeof(name), "ia-harness-%s",
	    itest_jstr(r.json, "result.task_id"));
	ck_assert_str_eq(itest_jstr(r.json, "result.result.name"), name);
	itest_resp_free(&r);
	ck_assert_int_eq(fake_pods_named(name), 1);
	/* /metrics counts it as held, at a rate above nothing (other tests
	 * may hold pods too: at least). */
	ck_assert(metric("instag_agent_pods{state=\"active\"}") >= 1);
	ck_assert(metric("instag_agent_pods_cost_per_hour_usd") > 0);

	/* get_pod_status (alias) and runpod.get_pod */
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod);
	op(admin(), "get_pod_status", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	ck_assert_str_eq(itest_jstr(r.json, "result.status"), "RUNNING");
	ck_assert_str_eq(itest_jstr(r.json, "result.label"), "may-talk_1");
	ck_assert(itest_jget(r.json, "result.cost_per_hr") != NULL);
	itest_resp_free(&r);

	/* list_pods, list_gpu_types */
	op(admin(), "runpod.list_pods", "{}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	ck_assert_str_eq(itest_jstr(r.json, "result.pods.0.pod_id"), pod);
	ck_assert_str_eq(itest_jstr(r.json, "result.pods.0.label"),
	    "may-talk_1");
	itest_resp_free(&r);
	op(admin(), "runpod.list_gpu_types", "{}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.gpu_types")), 4);
	ck_assert_ptr_nonnull(itest_jstr(r.json,
	    "result.gpu_types.0.availability"));
	itest_resp_free(&r);

	/* stop, resume */
	run("runpod.stop_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
	st = pod_status(pod);
	ck_assert_str_eq(st, "EXITED");
	free(st);
	ck_assert(metric("instag_agent_pods{state=\"stopped\"}") >= 1);
	run("runpod.resume_pod", params, "completed", 20000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.public_ip"),
	    "127.0.0.1");
	itest_resp_free(&r);
	st = pod_status(pod);
	ck_assert_str_eq(st, "RUNNING");
	free(st);

	/* runpod_terminate (alias) */
	run("runpod_terminate", params, "completed", 20000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.status"),
	    "TERMINATED");
	itest_resp_free(&r);
	st = pod_status(pod);
	ck_assert_str_eq(st, "TERMINATED");
	free(st);
	ck_assert_int_eq(fake_pods_named(name), 0);
	op(admin(), "runpod.get_pod", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.status"), "TERMINATED");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.reason"),
	    "owner"));
	itest_resp_free(&r);
	/* A terminated pod cannot be stopped or terminated again. */
	op(admin(), "terminate_pod", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "pod_not_found");
	itest_resp_free(&r);
	free(pod);
}
END_TEST

/* The other provision alias, through A2A JSON-RPC, and terminate_pod. */
START_TEST(test_a2a_alias)
{
	struct itest_resp r;
	char params[128], *id, *pod;

	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"p1\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"runpod_provision\",\"params\":"
	    "{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"cloud_type\":\"COMMUNITY\"}"
	    "}}]},\"configuration\":{\"blocking\":false}}}", &r);
	ck_assert_int_eq(r.status, 200);
	id = strdup(itest_jstr(r.json, "result.id"));
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 30000), "completed");
	get_task(id, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.cloud_type"),
	    "COMMUNITY");
	pod = strdup(itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod);
	run("terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
	free(pod);
	free(id);
}
END_TEST

/* ---- faults ------------------------------------------------------------- */

START_TEST(test_rate_limit_and_5xx)
{
	struct itest_resp r;
	char params[128];
	int before = fake_calls("POST /v2/pods");
	long long t0;

	/* Two 429s with Retry-After: 1, then the create goes through. */
	fake_faults("{\"rate_limit\":{\"count\":2,\"retry_after\":1,"
	    "\"route\":\"POST /v2/pods\"}}");
	t0 = itest_ms();
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}",
	    "completed", 30000, &r);
	ck_assert_msg(itest_ms() - t0 >= 1900, "Retry-After not honoured: "
	    "%lld ms", itest_ms() - t0);
	ck_assert_int_eq(fake_calls("POST /v2/pods") - before, 3);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);

	/* A 503 on the create (maybe acted on): the agent looks the pod up
	 * by name before creating again; one pod in the end. */
	before = fake_calls("POST /v2/pods");
	fake_faults("{\"server_error\":{\"count\":1,\"status\":503,"
	    "\"route\":\"POST /v2/pods\"}}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}",
	    "completed", 30000, &r);
	ck_assert_int_eq(fake_calls("POST /v2/pods") - before, 2);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.attempts.0.outcome"),
	    "unanswered (will look it up)");
	ck_assert_int_eq(fake_pods_named(itest_jstr(r.json,
	    "result.result.name")), 1);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
}
END_TEST

START_TEST(test_capacity)
{
	struct itest_resp r;
	char params[128];

	/* The first GPU type has no capacity: the second is used, and both
	 * attempts are in the result. */
	fake_faults("{\"no_capacity\":{\"gpu_ids\":[\"" GPU_A100 "\"]}}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_A100 "\",\""
	    GPU_4090 "\"]}", "completed", 30000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.gpu_type_id"),
	    GPU_4090);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.attempts.0.outcome"),
	    "rejected");
	ck_assert_int_eq(itest_jint(r.json,
	    "result.result.attempts.0.http_status"), 400);
	ck_assert_str_eq(itest_jstr(r.json,
	    "result.result.attempts.0.gpu_type_id"), GPU_A100);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.attempts.1.outcome"),
	    "created");
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);

	/* cloud_type ALL: every GPU type on SECURE, then on COMMUNITY; every
	 * attempt is named in the error.  Every candidate answered 400, so
	 * (RunPod's createPod rule) it is create_rejected, with RunPod's
	 * last detail: here the capacity text. */
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_A100 "\"],"
	    "\"cloud_type\":\"ALL\"}", "failed", 30000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "create_rejected");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    "no longer any instances available"));
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    GPU_A100 "/SECURE: rejected (HTTP 400)"));
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    GPU_A100 "/COMMUNITY: rejected (HTTP 400)"));
	itest_resp_free(&r);

	/* The H100 is not offered on COMMUNITY: "no capacity" there, and
	 * a 403 for the A5000's pool: mixed, so no_capacity. */
	fake_faults("{\"no_capacity\":{\"gpu_ids\":[]},\"forbidden\":{"
	    "\"gpu_ids\":[\"" GPU_A5000 "\"]}}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_H100 "\",\""
	    GPU_A5000 "\"],\"cloud_type\":\"COMMUNITY\"}", "failed", 30000,
	    &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "no_capacity");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    GPU_H100 "/COMMUNITY: rejected (HTTP 400); " GPU_A5000
	    "/COMMUNITY: forbidden (HTTP 403)"));
	itest_resp_free(&r);
	fake_faults("{\"forbidden\":{\"gpu_ids\":[]}}");

	fake_faults("{\"insufficient_balance\":true}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}",
	    "failed", 30000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "insufficient_balance");
	itest_resp_free(&r);
}
END_TEST

/*
 * createPod's 403 and 400 as RunPod documents them: a 403 (this account
 * cannot use the pool) skips to the next candidate; a 400 on every
 * candidate is a problem with the request (create_rejected, client
 * category, RunPod's detail without the key); a 403 on every candidate
 * is pool_forbidden.  No pod is left behind.
 */
START_TEST(test_create_403_400)
{
	const char *key = getenv("RUNPOD_API_KEY");
	struct itest_resp r;
	char params[128], faults[512];
	int before = fake_calls("POST /v2/pods");

	fake_faults("{\"forbidden\":{\"gpu_ids\":[\"" GPU_A100 "\"]}}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_A100 "\",\""
	    GPU_4090 "\"]}", "completed", 30000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.gpu_type_id"),
	    GPU_4090);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.attempts.0.outcome"),
	    "forbidden");
	ck_assert_int_eq(itest_jint(r.json,
	    "result.result.attempts.0.http_status"), 403);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json,
	    "result.result.attempts.0.detail"), "cannot access the requested "
	    "pool"));
	ck_assert_str_eq(itest_jstr(r.json, "result.result.attempts.1.outcome"),
	    "created");
	ck_assert_int_eq(fake_calls("POST /v2/pods") - before, 2);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);

	/* Every candidate: 403. */
	fake_faults("{\"forbidden\":{\"gpu_ids\":[\"" GPU_A100 "\",\""
	    GPU_4090 "\"]}}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_A100 "\",\""
	    GPU_4090 "\"]}", "failed", 30000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "pool_forbidden");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    "cannot use any of the GPU pools"));
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    GPU_4090 "/SECURE: forbidden (HTTP 403)"));
	itest_resp_free(&r);

	/* Every candidate: 400 for a broken rule, whose detail happens to
	 * hold the key: the error has the detail, never the key. */
	snprintf(faults, sizeof(faults), "{\"forbidden\":{\"gpu_ids\":[]},"
	    "\"rule_violation\":{\"detail\":\"env: PUBLIC_KEY and "
	    "RUNPOD_KEY=%s may not both be set\"}}", key);
	fake_faults(faults);
	before = fake_calls("POST /v2/pods");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_A100 "\",\""
	    GPU_4090 "\"],\"cloud_type\":\"ALL\"}", "failed", 30000, &r);
	ck_assert_int_eq(fake_calls("POST /v2/pods") - before, 4);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "create_rejected");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    "last detail: env: PUBLIC_KEY and RUNPOD_KEY=[redacted] may not "
	    "both be set"));
	ck_assert_ptr_null(strstr(r.body, key));
	itest_resp_free(&r);
	fake_faults(NULL);

	/* Nothing is left running at the stand-in. */
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
}
END_TEST

/* A line in the stand-in's log of pod id, as if its container printed
 * it. */
static void
fake_log_line(const char *id, const char *line)
{
	struct itest_resp r;
	char path[128], body[512];

	snprintf(path, sizeof(path), "/_fake/pods/%s/logs", id);
	snprintf(body, sizeof(body), "{\"line\":\"%s\"}", line);
	fake("POST", path, body, 0, &r);
	ck_assert_msg(r.status == 200, "inject: %ld %s", r.status, r.body);
	itest_resp_free(&r);
}

/*
 * runpod.pod_logs through nginx and the agent, from the stand-in's
 * never-ending SSE stream: the call comes back (bounded), secrets in a
 * line are redacted, tail, source, last_event_id and since work, bad
 * params and another user's pod are refused, a 429 is rate_limited.
 */
START_TEST(test_pod_logs)
{
	const char *key = getenv("RUNPOD_API_KEY");
	struct itest_resp r;
	char params[512], line[256], *pod, *bob, *cursor;
	json_object *lines;
	size_t i, n;
	bool seen_key = false, seen_bearer = false, seen_rpa = false;

	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}",
	    "completed", 30000, &r);
	pod = strdup(itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	snprintf(line, sizeof(line), "export RUNPOD_API_KEY=%s", key);
	fake_log_line(pod, line);
	fake_log_line(pod, "curl -H 'Authorization: Bearer abc.DEF-123'");
	fake_log_line(pod, "key rpa_ABCDEFGHIJKLMNOPQRSTUV0123 in a line");

	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"tail\":50}",
	    pod);
	op(admin(), "runpod.pod_logs", params, &r);
	ck_assert_msg(strcmp(itest_jstr(r.json, "status"), "completed") == 0,
	    "%s", r.body);
	ck_assert_ptr_null(strstr(r.body, key));
	ck_assert_ptr_null(strstr(r.body, "abc.DEF-123"));
	ck_assert_ptr_null(strstr(r.body, "rpa_ABCDEFGHIJKLMNOPQRSTUV0123"));
	ck_assert_str_eq(itest_jstr(r.json, "result.pod_id"), pod);
	ck_assert_str_eq(itest_jstr(r.json, "result.source"), "all");
	/* fewer lines than asked for: the stream went quiet (it never
	 * ends by itself) */
	ck_assert_str_eq(itest_jstr(r.json, "result.stopped"), "quiet");
	ck_assert(!json_object_get_boolean(itest_jget(r.json,
	    "result.more")));
	lines = itest_jget(r.json, "result.lines");
	n = json_object_array_length(lines);
	ck_assert_int_eq(itest_jint(r.json, "result.count"), (int)n);
	ck_assert_int_ge(n, 8);
	for (i = 0; i < n; i++) {
		json_object *l = json_object_array_get_idx(lines, i);
		const char *t = itest_jstr(l, "line");

		ck_assert_ptr_nonnull(itest_jstr(l, "id"));
		ck_assert_ptr_nonnull(itest_jstr(l, "ts"));
		ck_assert_ptr_nonnull(itest_jstr(l, "source"));
		if (strcmp(t, "export RUNPOD_API_KEY=[redacted]") == 0)
			seen_key = true;
		if (strstr(t, "Bearer [redacted]'") != NULL)
			seen_bearer = true;
		if (strcmp(t, "key [redacted] in a line") == 0)
			seen_rpa = true;
	}
	ck_assert(seen_key && seen_bearer && seen_rpa);
	ck_assert_ptr_nonnull(strstr(r.body, "Pod Started"));
	ck_assert_ptr_nonnull(strstr(r.body, "status RUNNING"));
	itest_resp_free(&r);

	/* tail 2: the last two lines; more may follow */
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"tail\":2}",
	    pod);
	op(admin(), "runpod.pod_logs", params, &r);
	ck_assert_int_eq(itest_jint(r.json, "result.count"), 2);
	ck_assert_str_eq(itest_jstr(r.json, "result.stopped"), "lines");
	ck_assert_str_eq(itest_jstr(r.json, "result.lines.1.line"),
	    "key [redacted] in a line");
	cursor = strdup(itest_jstr(r.json, "result.last_event_id"));
	ck_assert_str_eq(cursor, itest_jstr(r.json, "result.lines.1.id"));
	itest_resp_free(&r);

	/* last_event_id: only what came after */
	fake_log_line(pod, "after the cursor");
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\","
	    "\"last_event_id\":\"%s\"}", pod, cursor);
	op(admin(), "runpod.pod_logs", params, &r);
	ck_assert_int_eq(itest_jint(r.json, "result.count"), 1);
	ck_assert_str_eq(itest_jstr(r.json, "result.lines.0.line"),
	    "after the cursor");
	ck_assert_str_ne(itest_jstr(r.json, "result.last_event_id"), cursor);
	itest_resp_free(&r);
	free(cursor);

	/* source system; since in the future */
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\","
	    "\"source\":\"system\"}", pod);
	op(admin(), "runpod.pod_logs", params, &r);
	lines = itest_jget(r.json, "result.lines");
	ck_assert_int_ge(json_object_array_length(lines), 3);
	for (i = 0; i < json_object_array_length(lines); i++)
		ck_assert_str_eq(itest_jstr(json_object_array_get_idx(lines,
		    i), "source"), "system");
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\","
	    "\"since\":\"2999-01-01T00:00:00Z\"}", pod);
	op(admin(), "runpod.pod_logs", params, &r);
	ck_assert_int_eq(itest_jint(r.json, "result.count"), 0);
	ck_assert(itest_jget(r.json, "result.last_event_id") == NULL);
	itest_resp_free(&r);

	/* bad params: refused before RunPod is asked */
	{
		static const char *const bad[] = {
			"\"tail\":1001", "\"tail\":-1", "\"source\":\"x\"",
			"\"since\":\"yesterday\"",
			"\"last_event_id\":\"a\\nb\"",
			"\"last_event_id\":\"a b\"", "\"bogus\":1", NULL
		};
		int before = fake_calls("GET /v2/pods/{id}/logs");

		for (i = 0; bad[i] != NULL; i++) {
			snprintf(params, sizeof(params), "{\"pod_id\":\"%s\","
			    "%s}", pod, bad[i]);
			op(admin(), "runpod.pod_logs", params, &r);
			ck_assert_msg(itest_jstr(r.json, "error.code") &&
			    strcmp(itest_jstr(r.json, "error.code"),
			    "invalid_params") == 0, "%s: %s", bad[i], r.body);
			itest_resp_free(&r);
		}
		ck_assert_int_eq(fake_calls("GET /v2/pods/{id}/logs"),
		    before);
	}

	/* someone else's pod is not found; no scope, no logs */
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod);
	bob = itest_token("bob", "pods:read tasks:read", 600);
	op(bob, "runpod.pod_logs", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "pod_not_found");
	itest_resp_free(&r);
	free(bob);
	bob = itest_token("admin", "tasks:read", 600);
	op(bob, "runpod.pod_logs", params, &r);
	ck_assert_int_eq(r.status, 403);
	itest_resp_free(&r);
	free(bob);

	/* RunPod rate limiting the route */
	fake_faults("{\"rate_limit\":{\"count\":1,\"retry_after\":7,"
	    "\"route\":\"GET /v2/pods/{id}/logs\"}}");
	op(admin(), "runpod.pod_logs", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "rate_limited");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "retry after 7 s"));
	itest_resp_free(&r);

	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
	free(pod);
}
END_TEST

START_TEST(test_never_ssh_timeout)
{
	struct itest_resp r;
	char name[128];

	fake_faults("{\"never_ssh\":true}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
	    "\"ready_timeout_s\":2}", "failed", 30000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "provision_timeout");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    "no public IP"));
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    "was terminated"));
	snprintf(name, sizeof(name), "ia-harness-%s",
	    itest_jstr(r.json, "result.task_id"));
	ck_assert_int_eq(fake_pods_named(name), 0);
	itest_resp_free(&r);
}
END_TEST

/* Slow answers: every call held 400 ms, the provision still completes. */
START_TEST(test_slow_api)
{
	struct itest_resp r;
	char params[128];

	fake_faults("{\"slow_ms\":400}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}",
	    "completed", 30000, &r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	fake_faults(NULL);
	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
}
END_TEST

/* Canceling a provision that waits for SSH terminates its pod. */
START_TEST(test_cancel_provision)
{
	struct itest_resp r;
	char params[128], name[128], *id;
	int i;

	fake_faults("{\"never_ssh\":true}");
	id = start(admin(), "runpod.provision_pod",
	    "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}");
	snprintf(name, sizeof(name), "ia-harness-%s", id);
	for (i = 0; i < 100 && fake_pods_named(name) == 0; i++)
		usleep(50000);
	ck_assert_int_eq(fake_pods_named(name), 1);
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	op(admin(), "tasks.cancel", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "canceled");
	ck_assert_int_eq(fake_pods_named(name), 0);
	free(id);
}
END_TEST

/* The agent dies after sending a create and before its answer. */
START_TEST(test_crash_during_create)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char name[128], params[128], *id;
	int before = fake_calls("POST /v2/pods"), i;
	const char *st;

	fake_faults("{\"slow_ms\":3000}");
	id = start(admin(), "runpod.provision_pod",
	    "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}");
	for (i = 0; i < 100 && fake_calls("POST /v2/pods") == before; i++)
		usleep(50000);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), before + 1);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' kill >&2", top,
	    dir), 0);
	fake_faults(NULL);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' start >&2", top,
	    dir), 0);
	st = itest_wait_task(admin(), id, 30000);
	get_task(id, &r);
	ck_assert_msg(strcmp(st, "completed") == 0, "%s", r.body);
	/* One create only: the restarted agent found the pod by its name. */
	ck_assert_int_eq(fake_calls("POST /v2/pods"), before + 1);
	snprintf(name, sizeof(name), "ia-harness-%s", id);
	ck_assert_int_eq(fake_pods_named(name), 1);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json,
	    "result.result.attempts.0.outcome"), "found by name"));
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
	free(id);

	/* The stand-in makes the pod, then answers 500. */
	before = fake_calls("POST /v2/pods");
	fake_faults("{\"create_500_after_create\":true}");
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}",
	    "completed", 30000, &r);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), before + 1);
	ck_assert_int_eq(fake_pods_named(itest_jstr(r.json,
	    "result.result.name")), 1);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
}
END_TEST

/* ---- money -------------------------------------------------------------- */

START_TEST(test_cost_guard)
{
	struct itest_resp r;
	char params[128];
	int i;

	/* 8 x H100 at 2.99 USD/h: 0.01 USD in about 1.5 s. */
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_H100 "\"],"
	    "\"gpu_count\":8,\"max_cost_usd\":0.01}", "completed", 30000, &r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	ck_assert(itest_jget(r.json, "result.result.cost_per_hr") != NULL);
	itest_resp_free(&r);
	for (i = 0; i < 300; i++) {	/* a hang guard: 30 s */
		op(admin(), "runpod.get_pod", params, &r);
		/* Terminated and recorded (the registry row carries the
		 * reason a moment after RunPod's DELETE answered). */
		if (itest_jstr(r.json, "result.status") &&
		    strcmp(itest_jstr(r.json, "result.status"),
		    "TERMINATED") == 0 &&
		    itest_jstr(r.json, "result.reason") != NULL)
			break;
		itest_resp_free(&r);
		usleep(100000);
	}
	ck_assert_msg(i < 300, "the cost guard did not terminate the pod");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.reason"),
	    "max_cost_usd"));
	ck_assert_msg(json_object_get_double(itest_jget(r.json,
	    "result.cost_usd")) >= 0.01, "%s", r.body);
	itest_resp_free(&r);
}
END_TEST

/* What the stand-in bills pod id in all (GET /v2/billing/pods?podId=),
 * into *total and *disk. */
static void
fake_billed(const char *id, double *total, double *disk)
{
	struct itest_resp r;
	json_object *recs;
	char path[160];
	size_t i;

	snprintf(path, sizeof(path), "/v2/billing/pods?podId=%s"
	    "&bucketSize=year&lastN=2", id);
	fake("GET", path, NULL, 1, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	recs = itest_jget(r.json, "records");
	*total = *disk = 0;
	for (i = 0; recs && i < json_object_array_length(recs); i++) {
		json_object *x = json_object_array_get_idx(recs, i);
		*total += json_object_get_double(itest_jget(x, "totalAmount"));
		*disk += json_object_get_double(itest_jget(x, "diskAmount"));
	}
	itest_resp_free(&r);
}

static double
dnum(json_object *o, const char *path)
{
	json_object *v = itest_jget(o, path);

	ck_assert_msg(v != NULL, "no %s", path);
	return json_object_get_double(v);
}

/*
 * Cost you can trust, through the real path: a pod with a container disk
 * and a volume is provisioned, stopped for a while, and terminated.  Each
 * task reports its cost (compute and disk storage apart, and the total),
 * the stopped time accrues volume storage, runpod.list_pods shows the
 * running total with RunPod's billed figures, and at the end the billed
 * figures are exactly what the stand-in's GET /v2/billing/pods says.
 * When the billing endpoint fails, the figures say why and the task
 * still completes.
 */
START_TEST(test_cost_storage)
{
	struct itest_resp r;
	char pp[128], *pod;
	double total, disk, stopped_before;
	json_object *pods, *c = NULL;
	size_t k;
	int i;

	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
	    "\"container_disk_gb\":50,\"volume_gb\":500}", "completed", 30000,
	    &r);
	pod = strdup(itest_jstr(r.json, "result.result.pod_id"));
	ck_assert_int_eq(itest_jint(r.json, "result.result.cost.disk_gb"), 50);
	ck_assert_int_eq(itest_jint(r.json, "result.result.cost.volume_gb"),
	    500);
	ck_assert_msg(itest_jget(r.json, "result.result.cost.billed") != NULL,
	    "%s", r.body);
	itest_resp_free(&r);
	snprintf(pp, sizeof(pp), "{\"pod_id\":\"%s\"}", pod);

	run("runpod.stop_pod", pp, "completed", 20000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.agent_state"),
	    "stopped");
	ck_assert(dnum(r.json, "result.result.cost.compute_usd") > 0);
	/* stopped: the volume alone, at 0.20 USD/GB/month */
	ck_assert(dnum(r.json, "result.result.cost.storage_usd_per_hr") ==
	    (double)(int64_t)(500 * 0.20 / 730 * 1e6 + 0.5) / 1e6);
	stopped_before = dnum(r.json, "result.result.cost.stopped_minutes");
	itest_resp_free(&r);
	/* Stopped for at least 3 cost guard rounds (1 s each: one GET
	 * /v2/pods a round). */
	i = fake_calls("GET /v2/pods");
	for (k = 0; k < 600 && fake_calls("GET /v2/pods") < i + 3; k++)
		usleep(100000);	/* a hang guard: 60 s */

	/* list_pods: the running total, RunPod's billed figures beside it */
	op(admin(), "runpod.list_pods", "{}", &r);
	pods = itest_jget(r.json, "result.pods");
	for (k = 0; pods && k < json_object_array_length(pods); k++)
		if (strcmp(itest_jstr(json_object_array_get_idx(pods, k),
		    "pod_id"), pod) == 0)
			c = json_object_array_get_idx(pods, k);
	ck_assert_msg(c != NULL, "%s", r.body);
	ck_assert(dnum(c, "stopped_minutes") > stopped_before);
	ck_assert(dnum(c, "storage_usd") > 0);
	ck_assert(dnum(c, "total_usd") == dnum(c, "cost_usd") +
	    dnum(c, "storage_usd"));
	ck_assert(dnum(c, "cost.billed.usd") > 0);
	ck_assert(dnum(c, "cost.billed.storage_usd") > 0);
	ck_assert_ptr_nonnull(itest_jget(c, "cost.difference_usd"));
	itest_resp_free(&r);

	/* The billing endpoint fails: null with the reason, the operation
	 * answers all the same. */
	fake_faults("{\"server_error\":{\"count\":1,\"status\":503,"
	    "\"route\":\"GET /v2/billing/pods\"}}");
	op(admin(), "runpod.list_pods", "{}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	pods = itest_jget(r.json, "result.pods");
	for (k = 0, c = NULL; pods && k < json_object_array_length(pods); k++)
		if (strcmp(itest_jstr(json_object_array_get_idx(pods, k),
		    "pod_id"), pod) == 0)
			c = json_object_array_get_idx(pods, k);
	ck_assert_msg(c != NULL && json_object_object_get_ex(
	    itest_jget(c, "cost"), "billed", NULL) &&
	    itest_jget(c, "cost.billed") == NULL, "%s", r.body);
	ck_assert_ptr_nonnull(strstr(itest_jstr(c, "cost.billed_note"),
	    "HTTP 503"));
	itest_resp_free(&r);
	fake_faults(NULL);

	run("runpod.terminate_pod", pp, "completed", 20000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.status"),
	    "TERMINATED");
	c = itest_jget(r.json, "result.result.cost");
	ck_assert_msg(c != NULL, "%s", r.body);
	ck_assert(dnum(c, "storage_usd") > 0);
	ck_assert(dnum(c, "compute_usd") > 0);
	ck_assert(dnum(c, "stopped_minutes") > 0);
	ck_assert(dnum(c, "running_minutes") > 0);
	ck_assert(dnum(c, "minutes") > 0);
	ck_assert(dnum(c, "usd") - (dnum(c, "compute_usd") +
	    dnum(c, "storage_usd")) < 2e-6 && (dnum(c, "compute_usd") +
	    dnum(c, "storage_usd")) - dnum(c, "usd") < 2e-6);
	ck_assert(dnum(c, "storage_usd_per_hr") == 0);
	/* billed: what the stand-in billed, to the micro-dollar */
	fake_billed(pod, &total, &disk);
	ck_assert(disk > 0);
	ck_assert_msg(dnum(c, "billed.usd") - total < 1e-6 &&
	    total - dnum(c, "billed.usd") < 1e-6, "billed %f, stand-in %f",
	    dnum(c, "billed.usd"), total);
	ck_assert(dnum(c, "billed.storage_usd") - disk < 1e-6 &&
	    disk - dnum(c, "billed.storage_usd") < 1e-6);
	ck_assert(dnum(c, "difference_usd") - (dnum(c, "usd") -
	    dnum(c, "billed.usd")) < 2e-6 && (dnum(c, "usd") -
	    dnum(c, "billed.usd")) - dnum(c, "difference_usd") < 2e-6);
	itest_resp_free(&r);
	free(pod);
}
END_TEST

START_TEST(test_reaper)
{
	struct itest_resp r;
	char body[512], *orphan, *other, *st = NULL;
	int i;

	/* A pod with the agent's prefix and a task id nobody owns, and one
	 * that is not the agent's at all. */
	snprintf(body, sizeof(body), "{\"name\":\"ia-harness-"
	    "0b5e7a46-4c1e-4a9e-9a53-2f1f9c3b7d10\","
	    "\"image\":\"runpod/base:1\",\"gpu\":{\"id\":\"%s\",\"count\":1}}",
	    GPU_4090);
	fake("POST", "/v2/pods", body, 1, &r);
	ck_assert_int_eq(r.status, 201);
	orphan = strdup(itest_jstr(r.json, "id"));
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"name\":\"someone-else\",\"image\":"
	    "\"runpod/base:1\",\"gpu\":{\"id\":\"%s\",\"count\":1}}", GPU_4090);
	fake("POST", "/v2/pods", body, 1, &r);
	ck_assert_int_eq(r.status, 201);
	other = strdup(itest_jstr(r.json, "id"));
	itest_resp_free(&r);
	for (i = 0; i < 300; i++) {	/* a hang guard: 30 s */
		free(st);
		st = pod_status(orphan);
		if (strcmp(st, "TERMINATED") == 0)
			break;
		usleep(100000);
	}
	ck_assert_msg(i < 300, "the reaper left the orphan %s", st);
	free(st);
	st = pod_status(other);
	ck_assert_str_eq(st, "RUNNING");
	free(st);
	itest_request("GET", "/metrics", NULL, NULL, NULL, 0, &r);
	ck_assert_ptr_nonnull(strstr(r.body,
	    "instag_agent_pods_terminated_total{by=\"reaper\"} "));
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "/v2/pods/%s", other);
	fake("DELETE", body, NULL, 1, &r);
	itest_resp_free(&r);
	free(orphan);
	free(other);
}
END_TEST

/* Calls of the fake InsTaG's tool script on the pods (-1: unreadable). */
static int
calls_of(const char *script)
{
	char cmd[512], buf[32];
	FILE *fp;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "grep -c '^%s\t' '%s/.fake-state/calls.log'"
	    " 2>/dev/null || true", script, getenv("POD_ROOT"));
	fp = popen(cmd, "r");
	if (fp != NULL && fgets(buf, sizeof(buf), fp))
		n = atoi(buf);
	if (fp)
		pclose(fp);
	return n;
}

/* runpod.get_pod of pod until its agent_state is want (a hang guard of
 * 60 s); r holds the last answer. */
static void
wait_agent_state(const char *params, const char *want, struct itest_resp *r)
{
	const char *st = NULL;
	int i;

	for (i = 0; i < 600; i++) {
		op(admin(), "runpod.get_pod", params, r);
		st = itest_jstr(r->json, "result.agent_state");
		if (st != NULL && strcmp(st, want) == 0)
			return;
		itest_resp_free(r);
		usleep(100000);
	}
	op(admin(), "runpod.get_pod", params, r);
	ck_abort_msg("the pod never became %s: %s", want, r->body);
}

#define IDLE_STOPPED "instag_agent_pods_idle_total{action=\"stop\"}"

/*
 * The idle limit, through the real path: a pod provisioned with
 * idle_minutes 0.1 (6 s) is kept while a task uses it (an upload whose
 * fetch the fake's curl holds), for several guard rounds past the limit;
 * once the task ends and the limit passes, the cost guard stops it
 * (RunPod says EXITED), its record says why, the metrics count it, and
 * list_pods shows its running total.
 */
START_TEST(test_idle_stop)
{
	const char *root = getenv("POD_ROOT"), *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char params[512], pp[128], *pod, *id, *st;
	double stopped = metric(IDLE_STOPPED);
	int before, lists, i;
	json_object *pods;
	size_t k;

	ck_assert(stopped >= 0);
	/* The upload's media first: made after the pod, on a loaded
	 * machine it took longer than the idle limit, and the guard
	 * rightly stopped the pod before the upload could use it. */
	ck_assert_int_eq(itest_sh("'%s/tests/fake-instag/make-media' video "
	    "--seconds 2.4 '%s/www/idle.mp4'", getenv("top_srcdir"), dir), 0);
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
	    "\"idle_minutes\":0.1}", "completed", 30000, &r);
	pod = strdup(itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	snprintf(pp, sizeof(pp), "{\"pod_id\":\"%s\"}", pod);

	/* in use: an upload held in its fetch */
	ck_assert_int_eq(itest_pod_sh("echo hold > '%s/fake-control/curl'",
	    root), 0);
	before = calls_of("curl");
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"idle\",\"video\":\"%s/www/idle.mp4\"}", pod,
	    getenv("NGINX_ROOT_URL"));
	id = start(admin(), "instag.upload_data", params);
	for (i = 0; i < 1200 && calls_of("curl") == before; i++)
		usleep(50000);	/* a hang guard: 60 s */
	ck_assert_msg(calls_of("curl") > before, "the upload never fetched");
	/* past the limit (at least 7 s), and at least 5 guard rounds (each
	 * lists the pods once) while the task holds the pod */
	lists = fake_calls("GET /v2/pods");
	sleep(7);
	for (i = 0; i < 600 && fake_calls("GET /v2/pods") < lists + 5; i++)
		usleep(100000);	/* a hang guard: 60 s */
	op(admin(), "runpod.get_pod", pp, &r);
	ck_assert_msg(strcmp(itest_jstr(r.json, "result.agent_state"),
	    "active") == 0 && strcmp(itest_jstr(r.json, "result.status"),
	    "RUNNING") == 0, "a pod in use was stopped: %s", r.body);
	ck_assert_ptr_nonnull(itest_jstr(r.json, "result.last_used_at"));
	itest_resp_free(&r);
	st = pod_status(pod);
	ck_assert_str_eq(st, "RUNNING");
	free(st);

	/* the task ends; the pod is idle from then on */
	ck_assert_int_eq(itest_pod_sh("rm -f '%s/fake-control/curl'", root),
	    0);
	itest_wait_task(admin(), id, 60000);
	wait_agent_state(pp, "stopped", &r);
	ck_assert_msg(itest_jstr(r.json, "result.reason") != NULL &&
	    strncmp(itest_jstr(r.json, "result.reason"), "idle: ", 6) == 0,
	    "%s", r.body);
	ck_assert(json_object_get_double(itest_jget(r.json,
	    "result.idle_minutes")) == 0.1);
	itest_resp_free(&r);
	st = pod_status(pod);
	ck_assert_str_eq(st, "EXITED");
	free(st);
	ck_assert(metric(IDLE_STOPPED) >= stopped + 1);

	/* list_pods: the running total, with the reason */
	op(admin(), "runpod.list_pods", "{}", &r);
	pods = itest_jget(r.json, "result.pods");
	for (k = 0; pods && k < json_object_array_length(pods); k++) {
		json_object *p = json_object_array_get_idx(pods, k);
		if (strcmp(itest_jstr(p, "pod_id"), pod) != 0)
			continue;
		ck_assert_str_eq(itest_jstr(p, "agent_state"), "stopped");
		ck_assert(json_object_get_double(itest_jget(p,
		    "running_minutes")) > 0);
		ck_assert(json_object_get_double(itest_jget(p,
		    "cost_usd")) > 0);
		break;
	}
	ck_assert_msg(pods && k < json_object_array_length(pods), "%s",
	    r.body);
	itest_resp_free(&r);
	run("runpod.terminate_pod", pp, "completed", 20000, &r);
	itest_resp_free(&r);
	free(id);
	free(pod);
}
END_TEST

/* With pod_idle_action = terminate the idle limit terminates the pod. */
START_TEST(test_idle_terminate)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char pp[128];

	ck_assert_int_eq(itest_sh("INSTAG_AGENT_POD_IDLE_ACTION=terminate "
	    "'%s/tests/harness/agent' '%s' restart >&2", top, dir), 0);
	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
	    "\"idle_minutes\":0.02}", "completed", 30000, &r);
	snprintf(pp, sizeof(pp), "{\"pod_id\":\"%s\"}",
	    itest_jstr(r.json, "result.result.pod_id"));
	ck_assert(json_object_get_double(itest_jget(r.json,
	    "result.result.idle_minutes")) == 0.02);
	itest_resp_free(&r);
	wait_agent_state(pp, "terminated", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.status"), "TERMINATED");
	ck_assert_msg(strncmp(itest_jstr(r.json, "result.reason"), "idle: ",
	    6) == 0, "%s", r.body);
	itest_resp_free(&r);
	ck_assert(metric("instag_agent_pods_idle_total{action=\"terminate\"}")
	    >= 1);
	ck_assert(metric("instag_agent_pods_terminated_total{by=\"idle\"}") >=
	    1);
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' restart >&2",
	    top, dir), 0);
}
END_TEST

/* ---- who may do what, bad params, secrets ------------------------------- */

START_TEST(test_owners_and_params)
{
	struct itest_resp r;
	char params[128], *bob, *reader, *pod;
	static const char *const bad[] = {
		"{}",
		"{\"gpu_type_ids\":[]}",
		"{\"gpu_type_ids\":\"" GPU_4090 "\"}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"gpu_count\":9}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"gpu_count\":\"1\"}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\",\"" GPU_4090 "\"]}",
		"{\"gpu_type_ids\":[\"$(reboot)\"]}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
		    "\"image\":\"x;rm -rf /\"}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
		    "\"env\":{\"1BAD\":\"x\"}}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"env\":{\"A\":1}}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"volume_gb\":5}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"max_cost_usd\":\"5\"}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
		    "\"cloud_type\":\"CHEAP\"}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"bogus\":1}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
		    "\"pod_name\":\"a b;$(reboot)\"}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"pod_name\":\"\"}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],\"pod_name\":7}",
		"{\"gpu_type_ids\":[\"" GPU_4090 "\"],"
		    "\"pod_name\":\"../../etc\"}",
		NULL
	};
	int i, before = fake_calls("POST /v2/pods");

	for (i = 0; bad[i]; i++) {
		op(admin(), "runpod.provision_pod", bad[i], &r);
		ck_assert_msg(itest_jstr(r.json, "error.code") &&
		    strcmp(itest_jstr(r.json, "error.code"),
		    "invalid_params") == 0, "%s: %s", bad[i], r.body);
		itest_resp_free(&r);
	}
	op(admin(), "runpod.get_pod", "{\"pod_id\":\"../etc\"}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), before);

	run("runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090 "\"]}",
	    "completed", 30000, &r);
	pod = strdup(itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod);

	/* Someone else sees no such pod and cannot touch it. */
	bob = itest_token("bob", "pods:read pods:write tasks:read", 600);
	op(bob, "runpod.get_pod", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "pod_not_found");
	itest_resp_free(&r);
	op(bob, "runpod.terminate_pod", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "pod_not_found");
	itest_resp_free(&r);
	{
		/* Through A2A: invalid params, the agent's code in data. */
		char body[512];
		snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":7,"
		    "\"method\":\"message/send\",\"params\":{\"message\":{"
		    "\"kind\":\"message\",\"messageId\":\"g1\",\"role\":"
		    "\"user\",\"parts\":[{\"kind\":\"data\",\"data\":{"
		    "\"operation\":\"runpod.get_pod\",\"params\":%s}}]}}}",
		    params);
		itest_post("/a2a", bob, body, &r);
		ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
		ck_assert_str_eq(itest_jstr(r.json, "error.data.agent_code"),
		    "pod_not_found");
		itest_resp_free(&r);
	}
	op(bob, "runpod.list_pods", "{}", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.pods")), 0);
	itest_resp_free(&r);
	/* Reading is not writing. */
	reader = itest_token("admin", "pods:read tasks:read", 600);
	op(reader, "runpod.provision_pod", "{\"gpu_type_ids\":[\"" GPU_4090
	    "\"]}", &r);
	ck_assert_int_eq(r.status, 403);
	itest_resp_free(&r);
	op(reader, "runpod.get_pod", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	itest_resp_free(&r);

	run("runpod.terminate_pod", params, "completed", 20000, &r);
	itest_resp_free(&r);
	free(bob);
	free(reader);
	free(pod);
}
END_TEST

/*
 * /readyz follows what RunPod said of the key at the agent's last call: the
 * stand-in refuses every key (as if revoked at RunPod), a RunPod call of
 * the agent's gets 401, and /readyz answers 503 naming RunPod (never the
 * key) and the gauge drops to 0; once RunPod accepts the key again, the
 * next call brings readiness back.
 */
START_TEST(test_readyz_key_rejected)
{
	const char *key = getenv("RUNPOD_API_KEY");
	struct itest_resp r;
	const char *why;

	itest_request("GET", "/readyz", NULL, NULL, NULL, 0, &r);
	ck_assert_msg(r.status == 200, "readyz: %ld %s", r.status, r.body);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "checks.runpod.ok")));
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "checks.runpod.configured")));
	itest_resp_free(&r);
	ck_assert(metric("instag_agent_ready{check=\"runpod\"}") == 1);

	fake_faults("{\"revoke_keys\":true}");
	op(admin(), "runpod.list_gpu_types", "{}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "error");
	itest_resp_free(&r);
	itest_request("GET", "/readyz", NULL, NULL, NULL, 0, &r);
	ck_assert_msg(r.status == 503, "readyz: %ld %s", r.status, r.body);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "not ready");
	ck_assert(!json_object_get_boolean(itest_jget(r.json,
	    "checks.runpod.ok")));
	why = itest_jstr(r.json, "checks.runpod.reason");
	ck_assert_msg(why != NULL && strstr(why, "401") != NULL,
	    "reason %s", why ? why : "(none)");
	/* the rest is still fine */
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "checks.store.ok")));
	ck_assert_ptr_null(strstr(r.body, key));
	itest_resp_free(&r);
	ck_assert(metric("instag_agent_ready{check=\"runpod\"}") == 0);

	fake_faults(NULL);
	op(admin(), "runpod.list_gpu_types", "{}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	itest_resp_free(&r);
	itest_request("GET", "/readyz", NULL, NULL, NULL, 0, &r);
	ck_assert_msg(r.status == 200, "readyz: %ld %s", r.status, r.body);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "ready");
	itest_resp_free(&r);
	ck_assert(metric("instag_agent_ready{check=\"runpod\"}") == 1);
}
END_TEST

START_TEST(test_key_never_leaks)
{
	const char *key = getenv("RUNPOD_API_KEY"),
	    *dir = getenv("HARNESS_DIR");
	struct itest_resp r;

	ck_assert_ptr_nonnull(key);
	ck_assert_int_ne(itest_sh("grep -r -F -q -e '%s' '%s/agent.log' "
	    "'%s/state' '%s/nginx-access.log' '%s/nginx-error.log'", key, dir,
	    dir, dir, dir), 0);
	op(admin(), "tasks.list", "{\"page_size\":100}", &r);
	ck_assert_ptr_null(strstr(r.body, key));
	itest_resp_free(&r);
	itest_request("GET", "/metrics", NULL, NULL, NULL, 0, &r);
	ck_assert_ptr_null(strstr(r.body, key));
	itest_resp_free(&r);
	/* ... and the stand-in saw it on every call (it is the real key). */
	ck_assert_int_gt(fake_calls("GET /v2/pods/{id}"), 0);
}
END_TEST

/* Last: a clean SIGTERM exit (status 0: under the sanitizers, no leak)
 * and no sanitizer report in the agent's log. */
START_TEST(test_clean_shutdown)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");

	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' stop >&2", top,
	    dir), 0);
	ck_assert_int_ne(itest_sh("grep -E -q 'AddressSanitizer|"
	    "LeakSanitizer|runtime error' '%s/agent.log'", dir), 0);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' start >&2", top,
	    dir), 0);
}
END_TEST

static Suite *
runpod_integration_suite(void)
{
	Suite *s = suite_create("runpod-integration");
	TCase *tc = tcase_create("runpod");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_a2a_alias);
	tcase_add_test(tc, test_rate_limit_and_5xx);
	tcase_add_test(tc, test_capacity);
	tcase_add_test(tc, test_create_403_400);
	tcase_add_test(tc, test_pod_logs);
	tcase_add_test(tc, test_never_ssh_timeout);
	tcase_add_test(tc, test_slow_api);
	tcase_add_test(tc, test_cancel_provision);
	tcase_add_test(tc, test_crash_during_create);
	tcase_add_test(tc, test_cost_guard);
	tcase_add_test(tc, test_cost_storage);
	tcase_add_test(tc, test_reaper);
	tcase_add_test(tc, test_idle_stop);
	tcase_add_test(tc, test_idle_terminate);
	tcase_add_test(tc, test_owners_and_params);
	tcase_add_test(tc, test_readyz_key_rejected);
	tcase_add_test(tc, test_key_never_leaks);
	tcase_add_test(tc, test_clean_shutdown);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { runpod_integration_suite }, .setup = itest_harness_up,
    .teardown = itest_harness_down)
