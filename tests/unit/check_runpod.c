/* SPDX-License-Identifier: MIT */
/*
 * check_runpod: the RunPod REST v2 client (src/runpod.c).
 *
 * Pure tests (request body, pod parsing, error answers, client options)
 * need nothing; the others drive the local stand-in: main() starts
 * $top_builddir/tests/fake-runpod/fake-runpod on port 0 with a temporary
 * key file, reads "PORT=", runs the tests (each fake test begins with
 * POST /_fake/reset) and stops it with SIGTERM and a bounded wait.
 */
#include "auto-config.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "core/errcode.h"
#include "lib/redact.h"
#include "providers/runpod/candidates.h"
#include "providers/runpod/podlogs.h"
#include "providers/runpod/runpod.h"
#include "testutil.h"

#define KEY "rp-test-key-S3cr3t-0123456789"
#define WRONG_KEY "rp-wrong-key-Zz9-876543210"
#define PUBKEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRunpodTestKey"
#define SSH_PORT 2222
#define STATE_DELAY_MS 50
#define A100 "NVIDIA A100 80GB PCIe"
#define RTX4090 "NVIDIA GeForce RTX 4090"
#define H100 "NVIDIA H100 80GB HBM3"

static pid_t server_pid = -1;
static int server_port;
static char tmpdir[128];

/* ---- the fake's control API ------------------------------------------- */


/* One control request (no auth); the parsed answer (caller puts) or NULL
 * for an empty body.  Asserts the status. */
static json_object *
fake(const char *method, const char *path, const char *body, long want)
{
	struct tu_sink b = { NULL, 0 };
	json_object *j = NULL;
	char url[256];
	long status = 0;
	CURLcode rc;
	CURL *c = curl_easy_init();

	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", server_port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(c);
	ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path,
	    curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	ck_assert_msg(status == want, "%s %s: %ld, want %ld: %s", method,
	    path, status, want, b.buf ? b.buf : "");
	if (b.len > 0)
		j = json_tokener_parse(b.buf);
	free(b.buf);
	return j;
}

static void
fake_reset(void)
{
	fake("POST", "/_fake/reset", NULL, 204);
}

static void
fake_faults(const char *json)
{
	json_object *j = fake("POST", "/_fake/faults", json, 200);

	if (j != NULL)
		json_object_put(j);
}

static void
fake_clear(void)
{
	json_object *j = fake("DELETE", "/_fake/faults", NULL, 200);

	if (j != NULL)
		json_object_put(j);
}

/* The fake's counter for "METHOD route" (0 when absent). */
static int
fake_calls(const char *route)
{
	json_object *j = fake("GET", "/_fake/stats", NULL, 200), *calls, *v;
	int n = 0;

	ck_assert_ptr_nonnull(j);
	calls = ju_obj(j, "calls");
	if (calls != NULL && json_object_object_get_ex(calls, route, &v))
		n = json_object_get_int(v);
	json_object_put(j);
	return n;
}

/* ---- helpers ------------------------------------------------------------ */

static struct runpod_client *
client_with(const char *key, int attempts, long backoff_ms)
{
	struct runpod_opts o;
	struct runpod_client *c = NULL;
	char url[64], *err = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", server_port);
	memset(&o, 0, sizeof(o));
	o.base_url = url;
	o.api_key = key;
	o.connect_timeout_s = 5;
	o.timeout_s = 10;
	o.max_attempts = attempts;
	o.backoff_base_ms = backoff_ms;
	ck_assert_msg(runpod_client_new(&o, &c, &err) == 0, "client: %s",
	    err ? err : "?");
	ck_assert_ptr_nonnull(c);
	return c;
}

static struct runpod_client *
client(void)
{
	return client_with(KEY, 3, 20);
}

static void
req_init(struct runpod_create *r, const char *name, const char *gpu)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->image = "runpod/base:0.6.2-cuda12.4.1";
	r->gpu_id = gpu;
	r->gpu_count = 1;
	r->cloud = "SECURE";
	r->disk_gb = 20;
	r->public_key = PUBKEY;
}

static struct runpod_pod *
create_ok(struct runpod_client *c, const char *name)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod *p = NULL;

	req_init(&r, name, RTX4090);
	ck_assert_msg(runpod_create_pod(c, &r, &p, &e) == 0, "create: %s %s",
	    runpod_error_kind_name(e.kind), e.detail ? e.detail : "");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(p->id);
	runpod_error_clear(&e);
	return p;
}

/* Poll the pod until its status is want (and, for RUNNING, ssh.direct is
 * there) for at most timeout_ms; the last read pod (caller frees). */
static struct runpod_pod *
wait_status(struct runpod_client *c, const char *id, const char *want,
    long timeout_ms)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_pod *p = NULL;
	int64_t end = tu_now_ms() + timeout_ms;
	int i;

	for (i = 0; i < 1000; i++) {
		runpod_pod_free(p);
		p = NULL;
		ck_assert_msg(runpod_get_pod(c, id, &p, &e) == 0, "get: %s",
		    runpod_error_kind_name(e.kind));
		if (strcmp(p->status, want) == 0 &&
		    (strcmp(want, "RUNNING") != 0 || p->public_ip != NULL))
			break;
		if (tu_now_ms() >= end)
			break;
		tu_sleep_ms(20);
	}
	runpod_error_clear(&e);
	ck_assert_msg(strcmp(p->status, want) == 0, "status %s, want %s",
	    p->status, want);
	return p;
}

static bool
file_has(const char *path, const char *needle)
{
	char *text = tu_read_file(path);
	bool has = strstr(text, needle) != NULL;

	free(text);
	return has;
}

/* ---- pure tests ------------------------------------------------------- */

START_TEST(test_create_body)
{
	static const char *const ports[] = { "8888/http", "22/tcp" };
	struct runpod_create r;
	json_object *b, *x, *env;
	char *err = NULL;

	req_init(&r, "ia-task-1", A100);
	r.gpu_count = 2;
	r.cloud = "COMMUNITY";
	r.volume_gb = 40;
	r.ports = ports;
	r.nports = 2;
	r.env = json_tokener_parse("{\"FOO\":\"bar\",\"PUBLIC_KEY\":\"old\"}");
	b = runpod_create_body(&r, &err);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(err);
	ck_assert_str_eq(ju_str(b, "name"), "ia-task-1");
	ck_assert_str_eq(ju_str(b, "image"), r.image);
	x = ju_obj(b, "gpu");
	ck_assert_str_eq(ju_str(x, "id"), A100);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(x,
	    "count")), 2);
	ck_assert_int_eq(json_object_object_length(x), 2);
	ck_assert_str_eq(ju_str(b, "cloud"), "COMMUNITY");
	ck_assert_int_eq(json_object_get_int(json_object_object_get(b,
	    "disk")), 20);
	env = ju_obj(b, "env");
	ck_assert_str_eq(ju_str(env, "FOO"), "bar");
	ck_assert_str_eq(ju_str(env, "PUBLIC_KEY"), PUBKEY);
	x = ju_arr(b, "ports");
	ck_assert_int_eq(json_object_array_length(x), 2);
	ck_assert_str_eq(json_object_get_string(
	    json_object_array_get_idx(x, 0)), "22/tcp");
	ck_assert_str_eq(json_object_get_string(
	    json_object_array_get_idx(x, 1)), "8888/http");
	x = ju_obj(ju_obj(b, "mounts"), "persistent");
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(x,
	    "size")), 40);
	ck_assert_str_eq(ju_str(x, "path"), "/workspace");
	/* Only fields of CreatePodRequest. */
	json_object_object_foreach(b, k, v) {
		(void)v;
		ck_assert_msg(strstr(" name image gpu cloud disk env ports "
		    "mounts ", k) != NULL, "unexpected field %s", k);
	}
	json_object_put(b);
	json_object_put(r.env);

	/* Defaults: no volume, no cloud, no disk, no env given. */
	req_init(&r, "ia-task-2", RTX4090);
	r.cloud = NULL;
	r.disk_gb = 0;
	r.gpu_count = 0;
	r.public_key = NULL;
	b = runpod_create_body(&r, &err);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(ju_obj(b, "mounts"));
	ck_assert_ptr_null(ju_str(b, "cloud"));
	ck_assert(!json_object_object_get_ex(b, "disk", NULL));
	ck_assert_int_eq(json_object_get_int(json_object_object_get(
	    ju_obj(b, "gpu"), "count")), 1);
	ck_assert_int_eq(json_object_array_length(ju_arr(b, "ports")), 1);
	json_object_put(b);

	/* Refusals. */
	req_init(&r, "", RTX4090);
	ck_assert_ptr_null(runpod_create_body(&r, &err));
	ck_assert_ptr_nonnull(err);
	free(err);
	req_init(&r, "n", NULL);
	ck_assert_ptr_null(runpod_create_body(&r, &err));
	free(err);
	req_init(&r, "n", RTX4090);
	r.cloud = "ALL";
	ck_assert_ptr_null(runpod_create_body(&r, &err));
	free(err);
	req_init(&r, "n", RTX4090);
	r.volume_gb = 5;
	ck_assert_ptr_null(runpod_create_body(&r, &err));
	free(err);
	req_init(&r, "n", RTX4090);
	r.env = json_tokener_parse("{\"N\":1}");
	ck_assert_ptr_null(runpod_create_body(&r, &err));
	ck_assert_ptr_nonnull(strstr(err, "N"));
	free(err);
	json_object_put(r.env);
}
END_TEST

START_TEST(test_pod_parse)
{
	struct runpod_pod *p;

	p = runpod_pod_parse("{\"id\":\"abc\",\"name\":\"ia-1\","
	    "\"status\":\"RUNNING\",\"gpu\":{\"id\":\"" RTX4090 "\","
	    "\"count\":2,\"future\":1},\"cost\":0.88,"
	    "\"actions\":[\"stop\",7,\"restart\",\"terminate\"],"
	    "\"runtime\":{\"uptime\":42,\"gpus\":[]},"
	    "\"ssh\":{\"proxy\":{\"host\":\"ssh.runpod.io\",\"port\":22,"
	    "\"username\":\"abc-xyz\"},\"direct\":{\"host\":\"203.0.113.7\","
	    "\"port\":40022,\"username\":\"root\"}},"
	    "\"brandNew\":{\"nested\":[1,2,3]},\"locked\":false}");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->id, "abc");
	ck_assert_str_eq(p->name, "ia-1");
	ck_assert_str_eq(p->status, "RUNNING");
	ck_assert_str_eq(p->gpu_id, RTX4090);
	ck_assert_int_eq(p->gpu_count, 2);
	ck_assert_double_eq_tol(p->cost_per_hr, 0.88, 1e-9);
	ck_assert_uint_eq(p->nactions, 3);
	ck_assert_str_eq(p->actions[1], "restart");
	ck_assert(runpod_pod_can(p, "stop"));
	ck_assert(!runpod_pod_can(p, "start"));
	ck_assert_int_eq(p->uptime_s, 42);
	ck_assert_str_eq(p->public_ip, "203.0.113.7");
	ck_assert_int_eq(p->ssh_port, 40022);
	ck_assert_ptr_nonnull(p->raw);
	ck_assert_ptr_nonnull(ju_obj(p->raw, "brandNew"));
	runpod_pod_free(p);

	/* Proxy only: never used. Missing and mistyped fields: NULL/0. */
	p = runpod_pod_parse("{\"id\":\"d\",\"status\":7,\"cost\":\"1\","
	    "\"gpu\":null,\"runtime\":null,\"actions\":\"stop\","
	    "\"ssh\":{\"proxy\":{\"host\":\"ssh.runpod.io\",\"port\":22},"
	    "\"direct\":null}}");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->id, "d");
	ck_assert_ptr_null(p->name);
	ck_assert_ptr_null(p->status);
	ck_assert_ptr_null(p->gpu_id);
	ck_assert_int_eq(p->gpu_count, 0);
	ck_assert_double_eq(p->cost_per_hr, 0);
	ck_assert_uint_eq(p->nactions, 0);
	ck_assert_int_eq(p->uptime_s, 0);
	ck_assert_ptr_null(p->public_ip);
	ck_assert_int_eq(p->ssh_port, 0);
	runpod_pod_free(p);

	/* A direct endpoint without a valid port is not half-used. */
	p = runpod_pod_parse("{\"ssh\":{\"direct\":{\"host\":\"h\","
	    "\"port\":0}},\"cost\":1}");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(p->id);
	ck_assert_ptr_null(p->public_ip);
	ck_assert_int_eq(p->ssh_port, 0);
	ck_assert_double_eq_tol(p->cost_per_hr, 1.0, 1e-9);
	runpod_pod_free(p);

	p = runpod_pod_parse("{}");
	ck_assert_ptr_nonnull(p);
	runpod_pod_free(p);
	ck_assert_ptr_null(runpod_pod_parse("[]"));
	ck_assert_ptr_null(runpod_pod_parse("{\"id\":"));
	ck_assert_ptr_null(runpod_pod_parse(""));
	ck_assert_ptr_null(runpod_pod_parse(NULL));
}
END_TEST

START_TEST(test_error_answers)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;

	runpod_error_from_answer(400, "{\"title\":\"Bad Request\","
	    "\"status\":400,\"detail\":\"key " KEY " was\\nbad " KEY "\"}",
	    false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_int_eq(e.http_status, 400);
	ck_assert_str_eq(e.title, "Bad Request");
	ck_assert_str_eq(e.detail, "key [redacted] was bad [redacted]");

	runpod_error_from_answer(400, "{\"title\":\"Bad Request\","
	    "\"detail\":\"no capacity\"}", true, KEY, &e);
	ck_assert_int_eq(e.kind, RP_NO_CAPACITY);
	ck_assert_str_eq(e.detail, "no capacity");

	runpod_error_from_answer(422, "{\"title\":\"Unprocessable\","
	    "\"detail\":\"invalid\",\"errors\":[\"$.a: x\",\"$.b: y\"]}",
	    true, KEY, &e);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_str_eq(e.detail, "invalid: $.a: x; $.b: y");

	runpod_error_from_answer(502, "<html>bad gateway</html>", false, KEY,
	    &e);
	ck_assert_int_eq(e.kind, RP_SERVER);
	ck_assert_str_eq(e.title, "HTTP 502");
	ck_assert_ptr_null(e.detail);

	runpod_error_from_answer(401, NULL, false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_AUTH);
	runpod_error_from_answer(402, "", true, KEY, &e);
	ck_assert_int_eq(e.kind, RP_PAYMENT);
	runpod_error_from_answer(403, "{}", false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_FORBIDDEN);
	/* on a create, a 403 is a pool this account cannot use */
	runpod_error_from_answer(403, "{\"title\":\"Forbidden\",\"status\":"
	    "403,\"detail\":\"access denied\"}", true, KEY, &e);
	ck_assert_int_eq(e.kind, RP_POOL_FORBIDDEN);
	ck_assert_str_eq(e.detail, "access denied");
	ck_assert_str_eq(runpod_error_kind_name(RP_POOL_FORBIDDEN),
	    "pool_forbidden");
	runpod_error_from_answer(404, "{}", false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_NOT_FOUND);
	runpod_error_from_answer(409, "{}", false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_CONFLICT);
	runpod_error_from_answer(429, "{}", false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_RATE_LIMITED);
	runpod_error_from_answer(418, "{}", false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	runpod_error_from_answer(302, "{}", false, KEY, &e);
	ck_assert_int_eq(e.kind, RP_PROTOCOL);
	runpod_error_clear(&e);
	ck_assert_int_eq(e.kind, RP_OK);
	ck_assert_ptr_null(e.title);
	ck_assert_str_eq(runpod_error_kind_name(RP_NO_CAPACITY),
	    "no_capacity");
}
END_TEST

static void
assert_url(const char *url, const char *key, bool ok)
{
	struct runpod_opts o;
	struct runpod_client *c = NULL;
	char *err = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.base_url = url;
	o.api_key = key;
	rc = runpod_client_new(&o, &c, &err);
	ck_assert_msg((rc == 0) == ok, "%s: rc %d (%s)", url, rc,
	    err ? err : "");
	if (ok) {
		ck_assert_ptr_nonnull(c);
		ck_assert_ptr_null(err);
	} else {
		ck_assert_ptr_null(c);
		ck_assert_ptr_nonnull(err);
		if (key != NULL && key[0] != '\0')
			ck_assert_ptr_null(strstr(err, key));
	}
	runpod_client_free(c);
	free(err);
}

START_TEST(test_client_options)
{
	assert_url("https://api.runpod.io", KEY, true);
	assert_url("https://api.runpod.io/", KEY, true);
	assert_url("http://127.0.0.1:8080", KEY, true);
	assert_url("http://127.0.0.1", KEY, true);
	assert_url("http://[::1]:9/", KEY, true);
	assert_url("http://127.0.0.1.example.com", KEY, false);
	assert_url("http://127.0.0.10:80", KEY, false);
	assert_url("http://127.0.0.1:1\\x.example.com", KEY, false);
	assert_url("http://api.runpod.io", KEY, false);
	assert_url("ftp://api.runpod.io", KEY, false);
	assert_url("https://", KEY, false);
	assert_url("https://user@api.runpod.io", KEY, false);
	assert_url("https://api.runpod.io/?k=" KEY, KEY, false);
	assert_url("https://api.runpod.io/" KEY, KEY, false);
	assert_url("", KEY, false);
	assert_url(NULL, KEY, false);
	assert_url("https://api.runpod.io", "", false);
	assert_url("https://api.runpod.io", NULL, false);
	assert_url("https://api.runpod.io", "abc\r\nX-Evil: 1", false);
	assert_url("https://api.runpod.io", "a b", false);
}
END_TEST

/* ---- against the fake -------------------------------------------------- */

START_TEST(test_lifecycle)
{
	static const char *const ports[] = { "8888/http" };
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod *p = NULL, *q = NULL, **pods = NULL;
	json_object *env, *x;
	size_t n = 0, m = 0;
	char *id;

	fake_reset();
	c = client();
	req_init(&r, "ia-life-1", RTX4090);
	r.volume_gb = 20;
	r.ports = ports;
	r.nports = 1;
	r.env = json_tokener_parse("{\"FOO\":\"bar\"}");
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), 0);
	json_object_put(r.env);
	ck_assert_int_eq(e.kind, RP_OK);
	ck_assert_str_eq(p->name, "ia-life-1");
	ck_assert_str_eq(p->status, "PROVISIONING");
	ck_assert_str_eq(p->gpu_id, RTX4090);
	ck_assert_int_eq(p->gpu_count, 1);
	ck_assert_ptr_null(p->public_ip);
	ck_assert_int_eq(p->ssh_port, 0);
	ck_assert_double_eq_tol(p->cost_per_hr, 0.44, 1e-6);
	/* The fake echoes what was sent: the body matched the schema. */
	env = ju_obj(p->raw, "env");
	ck_assert_str_eq(ju_str(env, "PUBLIC_KEY"), PUBKEY);
	ck_assert_str_eq(ju_str(env, "FOO"), "bar");
	x = ju_arr(p->raw, "ports");
	ck_assert_int_eq(json_object_array_length(x), 2);
	ck_assert_str_eq(json_object_get_string(
	    json_object_array_get_idx(x, 0)), "22/tcp");
	x = ju_obj(ju_obj(p->raw, "mounts"), "persistent");
	ck_assert_int_eq(json_object_get_int(json_object_object_get(x,
	    "size")), 20);
	ck_assert_str_eq(ju_str(p->raw, "cloud"), "SECURE");
	ck_assert_int_eq(json_object_get_int(json_object_object_get(p->raw,
	    "disk")), 20);
	id = strdup(p->id);
	runpod_pod_free(p);

	p = wait_status(c, id, "RUNNING", TU_HANG_MS);
	ck_assert_str_eq(p->public_ip, "127.0.0.1");
	ck_assert_int_eq(p->ssh_port, SSH_PORT);
	ck_assert(runpod_pod_can(p, "stop"));
	runpod_pod_free(p);

	/* List and find. */
	q = create_ok(c, "ia-life-2");
	ck_assert_int_eq(runpod_list_pods(c, &pods, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(pods[0]->id, id);
	ck_assert_str_eq(pods[1]->name, "ia-life-2");
	runpod_pods_free(pods, n);
	ck_assert_int_eq(runpod_find_pod_by_name(c, "ia-life-2", &p, &m, &e),
	    0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(m, 1);
	ck_assert_str_eq(p->id, q->id);
	runpod_pod_free(p);
	ck_assert_int_eq(runpod_find_pod_by_name(c, "ia-life", &p, &m, &e),
	    0);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(m, 0);
	/* A second pod with the same name is reported. */
	runpod_pod_free(create_ok(c, "ia-life-2"));
	ck_assert_int_eq(runpod_find_pod_by_name(c, "ia-life-2", &p, &m, &e),
	    0);
	ck_assert_uint_eq(m, 2);
	ck_assert_str_eq(p->id, q->id);
	runpod_pod_free(p);

	/* stop -> EXITED, start -> RUNNING, invalid action -> 409. */
	ck_assert_int_eq(runpod_pod_action(c, id, "stop", &p, &e), 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->status, "EXITED");
	ck_assert_ptr_null(p->public_ip);
	ck_assert_double_eq(p->cost_per_hr, 0);
	ck_assert(runpod_pod_can(p, "start"));
	runpod_pod_free(p);
	ck_assert_int_eq(runpod_pod_action(c, id, "stop", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_CONFLICT);
	ck_assert_int_eq(e.http_status, 409);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(runpod_pod_action(c, id, "restart", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_CONFLICT);
	ck_assert_int_eq(runpod_pod_action(c, id, "start", &p, &e), 0);
	ck_assert_int_eq(e.kind, RP_OK);
	ck_assert_ptr_nonnull(p);
	ck_assert(strcmp(p->status, "STARTING") == 0 ||
	    strcmp(p->status, "RUNNING") == 0);
	runpod_pod_free(p);
	p = wait_status(c, id, "RUNNING", TU_HANG_MS);
	ck_assert_int_eq(p->ssh_port, SSH_PORT);
	runpod_pod_free(p);

	/* Not an action: refused without a request. */
	ck_assert_int_eq(runpod_pod_action(c, id, "reset", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_int_eq(e.http_status, 0);

	/* terminate: 204, no pod. */
	p = (struct runpod_pod *)1;
	ck_assert_int_eq(runpod_pod_action(c, id, "terminate", &p, &e), 0);
	ck_assert_ptr_null(p);
	p = wait_status(c, id, "TERMINATED", TU_HANG_MS);
	runpod_pod_free(p);
	ck_assert_int_eq(runpod_delete_pod(c, q->id, &e), 0);
	ck_assert_int_eq(runpod_find_pod_by_name(c, "ia-life-1", &p, &m, &e),
	    0);
	ck_assert_ptr_null(p);

	/* 404. */
	ck_assert_int_eq(runpod_get_pod(c, "no-such-pod", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NOT_FOUND);
	ck_assert_int_eq(e.http_status, 404);
	ck_assert_ptr_nonnull(e.title);
	ck_assert_int_eq(runpod_pod_action(c, "no/such", "stop", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NOT_FOUND);
	ck_assert_int_eq(runpod_delete_pod(c, "nope", &e), -1);
	ck_assert_int_eq(e.kind, RP_NOT_FOUND);
	ck_assert_int_eq(runpod_get_pod(c, "", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 3);

	runpod_pod_free(q);
	free(id);
	runpod_error_clear(&e);
	runpod_client_free(c);
}
END_TEST

START_TEST(test_auth_not_logged)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_pod *p = NULL, **pods = NULL;
	char logf[300];
	size_t n = 0;
	int fd;

	fake_reset();
	snprintf(logf, sizeof(logf), "%s/log-XXXXXX", tmpdir);
	fd = mkstemp(logf);
	ck_assert_int_ge(fd, 0);
	log_set_fd(fd);
	log_set_level(LOG_DEBUG);

	c = client_with(WRONG_KEY, 3, 10);
	ck_assert_int_eq(runpod_list_pods(c, &pods, &n, &e), -1);
	ck_assert_int_eq(e.kind, RP_AUTH);
	ck_assert_int_eq(e.http_status, 401);
	ck_assert_ptr_nonnull(e.title);
	ck_assert_ptr_null(strstr(e.title, WRONG_KEY));
	ck_assert_ptr_nonnull(e.detail);
	ck_assert_ptr_null(strstr(e.detail, WRONG_KEY));
	ck_assert_int_eq(fake_calls("GET /v2/pods"), 1);	/* no retry */
	ck_assert_int_eq(runpod_create_pod(c, &(struct runpod_create){
	    .name = "x", .image = "i", .gpu_id = RTX4090 }, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_AUTH);
	runpod_client_free(c);

	/* A good key through a retry and a failure: never in the log. */
	c = client();
	p = create_ok(c, "ia-log-1");
	runpod_pod_free(p);
	p = NULL;
	fake_faults("{\"server_error\":{\"count\":1,\"status\":503}}");
	ck_assert_int_eq(runpod_list_pods(c, &pods, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	runpod_pods_free(pods, n);
	ck_assert_int_eq(runpod_get_pod(c, "nope", &p, &e), -1);
	runpod_client_free(c);

	log_set_fd(2);
	close(fd);
	ck_assert(file_has(logf, "runpod_request"));	/* logging worked */
	ck_assert(file_has(logf, "runpod_retry"));
	ck_assert(!file_has(logf, WRONG_KEY));
	ck_assert(!file_has(logf, KEY));
	ck_assert(!file_has(logf, "Bearer"));
	ck_assert(!file_has(logf, PUBKEY));
	unlink(logf);
	runpod_error_clear(&e);
}
END_TEST

START_TEST(test_rate_limit)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_pod **pods = NULL, *p = NULL;
	size_t n = 9;
	int64_t t0;
	int calls;

	fake_reset();
	c = client();
	fake_faults("{\"rate_limit\":{\"count\":1,\"retry_after\":1}}");
	/* Retry-After: 1 is honoured (the lower bound), then retried. */
	t0 = tu_now_ms();
	ck_assert_int_eq(runpod_list_pods(c, &pods, &n, &e), 0);
	ck_assert_int_ge(tu_now_ms() - t0, 950);
	ck_assert_int_lt(tu_now_ms() - t0, TU_HANG_MS);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(pods);
	ck_assert_int_eq(fake_calls("GET /v2/pods"), 2);

	/* A 429 on create is safe to retry (nothing was done). */
	fake_faults("{\"rate_limit\":{\"count\":1,\"retry_after\":1}}");
	p = create_ok(c, "ia-rl-1");
	runpod_pod_free(p);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 2);
	runpod_client_free(c);

	/* Out of attempts: RP_RATE_LIMITED with Retry-After. */
	c = client_with(KEY, 1, 10);
	fake_faults("{\"rate_limit\":{\"count\":1,\"retry_after\":7}}");
	/* No attempt left: one call, and back without sleeping the 7 s. */
	calls = fake_calls("GET /v2/pods");
	t0 = tu_now_ms();
	ck_assert_int_eq(runpod_list_pods(c, &pods, &n, &e), -1);
	ck_assert_int_lt(tu_now_ms() - t0, 7000);
	ck_assert_int_eq(fake_calls("GET /v2/pods"), calls + 1);
	ck_assert_int_eq(e.kind, RP_RATE_LIMITED);
	ck_assert_int_eq(e.http_status, 429);
	ck_assert_int_eq(e.retry_after_s, 7);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

START_TEST(test_server_error)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod **pods = NULL, *p = NULL;
	size_t n = 0;

	fake_reset();
	c = client();
	fake_faults("{\"server_error\":{\"count\":2,\"status\":503}}");
	ck_assert_int_eq(runpod_list_pods(c, &pods, &n, &e), 0);
	ck_assert_int_eq(fake_calls("GET /v2/pods"), 3);
	runpod_pods_free(pods, n);

	/* More failures than attempts: RP_SERVER. */
	fake_faults("{\"server_error\":{\"count\":5,\"status\":502}}");
	ck_assert_int_eq(runpod_get_pod(c, "x", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_SERVER);
	ck_assert_int_eq(e.http_status, 502);
	ck_assert_int_eq(fake_calls("GET /v2/pods/{id}"), 3);
	fake_clear();

	/* A create is never retried after a 5xx. */
	fake_faults("{\"server_error\":{\"count\":1,\"status\":500}}");
	req_init(&r, "ia-5xx-1", RTX4090);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_SERVER);
	ck_assert_int_eq(e.http_status, 500);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 1);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

START_TEST(test_create_500_after_create)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod *p = NULL;
	size_t m = 0;

	fake_reset();
	c = client();
	fake_faults("{\"create_500_after_create\":true}");
	req_init(&r, "ia-orphan-1", RTX4090);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_SERVER);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(runpod_find_pod_by_name(c, "ia-orphan-1", &p, &m,
	    &e), 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(m, 1);
	ck_assert_str_eq(p->name, "ia-orphan-1");
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 1);
	runpod_pod_free(p);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

START_TEST(test_create_refusals)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod *p = NULL;

	fake_reset();
	c = client();
	fake_faults("{\"no_capacity\":{\"gpu_ids\":[\"" A100 "\"]}}");
	req_init(&r, "ia-cap-1", A100);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NO_CAPACITY);
	ck_assert_int_eq(e.http_status, 400);
	ck_assert_ptr_nonnull(e.detail);
	ck_assert_ptr_nonnull(strstr(e.detail, "no longer any instances"));
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 1);

	/* Secure-only type on community: also 400. */
	req_init(&r, "ia-cap-2", H100);
	r.cloud = "COMMUNITY";
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NO_CAPACITY);

	fake_faults("{\"insufficient_balance\":true}");
	req_init(&r, "ia-pay-1", RTX4090);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_PAYMENT);
	ck_assert_int_eq(e.http_status, 402);
	ck_assert_ptr_null(p);

	/* Invalid request: nothing sent. */
	req_init(&r, "ia-bad", RTX4090);
	r.volume_gb = 3;
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_int_eq(e.http_status, 0);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 3);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

/* The stand-in's per-GPU 403 (a pool this account cannot use) and its
 * 400 for a broken rule, as RunPod's problem bodies; the key is scrubbed
 * from a detail that holds it. */
START_TEST(test_create_pool_and_rule)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod *p = NULL;

	fake_reset();
	c = client();
	fake_faults("{\"forbidden\":{\"gpu_ids\":[\"" A100 "\"]}}");
	req_init(&r, "ia-pool-1", A100);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_POOL_FORBIDDEN);
	ck_assert_int_eq(e.http_status, 403);
	ck_assert_str_eq(e.title, "Forbidden");
	ck_assert_ptr_nonnull(strstr(e.detail, "cannot access the requested "
	    "pool"));
	ck_assert_ptr_null(p);
	/* another GPU type is not affected */
	req_init(&r, "ia-pool-2", RTX4090);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), 0);
	ck_assert_ptr_nonnull(p);
	runpod_pod_free(p);
	p = NULL;

	fake_faults("{\"rule_violation\":{\"detail\":\"dataCenterIds: "
	    "no data center of the list offers this GPU type (key " KEY
	    ")\"}}");
	req_init(&r, "ia-rule-1", RTX4090);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NO_CAPACITY);
	ck_assert_int_eq(e.http_status, 400);
	ck_assert_str_eq(e.detail, "dataCenterIds: no data center of the "
	    "list offers this GPU type (key [redacted])");
	/* cleared with null */
	fake_faults("{\"rule_violation\":null,\"forbidden\":{\"gpu_ids\":"
	    "[]}}");
	req_init(&r, "ia-rule-2", A100);
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), 0);
	runpod_pod_free(p);
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 4);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

/* A provision's candidates all used up: every 400 is the request's
 * problem, every 403 the account's, a mix is no capacity. */
static json_object *
attempt(const char *gpu, const char *cloud, const char *outcome, int st,
    const char *detail)
{
	json_object *a = json_object_new_object();

	json_object_object_add(a, "gpu_type_id", json_object_new_string(gpu));
	json_object_object_add(a, "cloud_type", json_object_new_string(cloud));
	json_object_object_add(a, "outcome", json_object_new_string(outcome));
	if (st > 0)
		json_object_object_add(a, "http_status",
		    json_object_new_int(st));
	if (detail != NULL)
		json_object_object_add(a, "detail",
		    json_object_new_string(detail));
	return a;
}

START_TEST(test_candidates_verdict)
{
	json_object *arr = json_object_new_array();
	const char *code = NULL;
	char *msg = NULL;

	json_object_array_add(arr, attempt(A100, "SECURE", "rejected", 400,
	    "rule one"));
	json_object_array_add(arr, attempt(RTX4090, "SECURE", "rejected", 400,
	    "rule two"));
	candidates_verdict(arr, &code, &msg);
	ck_assert_str_eq(code, ERRC_CREATE_REJECTED);
	ck_assert_int_eq(errcode_category(code), ERRCAT_CLIENT);
	ck_assert_ptr_nonnull(strstr(msg, "last detail: rule two;"));
	ck_assert_ptr_nonnull(strstr(msg, A100 "/SECURE: rejected (HTTP 400); "
	    RTX4090 "/SECURE: rejected (HTTP 400)"));
	free(msg);

	/* an unanswered create of the same candidate before its 400 does
	 * not count on its own */
	json_object_put(arr);
	arr = json_object_new_array();
	json_object_array_add(arr, attempt(A100, "SECURE",
	    "unanswered (will look it up)", 503, NULL));
	json_object_array_add(arr, attempt(A100, "SECURE", "forbidden", 403,
	    "access denied"));
	json_object_array_add(arr, attempt(A100, "COMMUNITY", "forbidden",
	    403, "access denied: pool"));
	candidates_verdict(arr, &code, &msg);
	ck_assert_str_eq(code, ERRC_POOL_FORBIDDEN);
	ck_assert_ptr_nonnull(strstr(msg, "cannot use any of the GPU pools"));
	ck_assert_ptr_nonnull(strstr(msg, "last detail: access denied: pool;"));
	free(msg);

	/* mixed 400 and 403: no capacity, every attempt listed */
	json_object_array_add(arr, attempt(RTX4090, "SECURE", "rejected", 400,
	    "no instances"));
	candidates_verdict(arr, &code, &msg);
	ck_assert_str_eq(code, ERRC_NO_CAPACITY);
	ck_assert_str_eq(msg, "no GPU type and cloud could be rented: "
	    A100 "/SECURE: unanswered (will look it up) (HTTP 503); "
	    A100 "/SECURE: forbidden (HTTP 403); "
	    A100 "/COMMUNITY: forbidden (HTTP 403); "
	    RTX4090 "/SECURE: rejected (HTTP 400)");
	free(msg);
	json_object_put(arr);

	/* nothing recorded: no capacity */
	candidates_verdict(NULL, &code, &msg);
	ck_assert_str_eq(code, ERRC_NO_CAPACITY);
	free(msg);
}
END_TEST

/* ---- pod logs ------------------------------------------------------------ */

static char *
scrub_key(const char *text, size_t len, void *arg)
{
	return redact_text(text, len, arg);
}

/* The SSE reader: events split anywhere, CRLF and CR line ends,
 * comments, multi-line data, ids kept across events, the key and a
 * bearer token redacted, a line cut to PODLOGS_LINE_MAX, limits. */
START_TEST(test_sse_reader)
{
	static const char text[] =
	    ": a comment\r\n"
	    "id: 2026-06-01T12:02:03Z/000000000001\r\n"
	    "data: {\"ts\":\"2026-06-01T12:02:03Z\",\"source\":\"container\","
	    "\"line\":\"Model loaded.\"}\r\n\r\n"
	    "id: 2026-06-01T12:02:04Z/000000000002\r"
	    "data: {\"ts\":\"2026-06-01T12:02:04Z\",\"source\":\"system\","
	    "\"line\":\"key " KEY " and Bearer abc.def\"}\r\r"
	    "event: ping\ndata: not json\ndata: two\n\n"
	    "retry: 10\n\n";
	struct podlogs_reader r;
	json_object *ev;
	char big[PODLOGS_LINE_MAX + 100], *msg;
	size_t i;

	/* fed one byte at a time */
	podlogs_reader_init(&r, 10, 1 << 20, scrub_key, (void *)KEY);
	for (i = 0; i < sizeof(text) - 1; i++)
		ck_assert(podlogs_reader_feed(&r, text + i, 1));
	ck_assert_int_eq(json_object_array_length(r.lines), 3);
	ev = json_object_array_get_idx(r.lines, 0);
	ck_assert_str_eq(ju_str(ev, "line"), "Model loaded.");
	ck_assert_str_eq(ju_str(ev, "source"), "container");
	ck_assert_str_eq(ju_str(ev, "ts"), "2026-06-01T12:02:03Z");
	ck_assert_str_eq(ju_str(ev, "id"),
	    "2026-06-01T12:02:03Z/000000000001");
	ev = json_object_array_get_idx(r.lines, 1);
	ck_assert_str_eq(ju_str(ev, "line"), "key " REDACT_MARK " and Bearer "
	    REDACT_MARK);
	ck_assert_str_eq(ju_str(ev, "source"), "system");
	/* data that is not the documented JSON is kept as text; the last
	 * id is still the stream's (SSE lastEventId) */
	ev = json_object_array_get_idx(r.lines, 2);
	ck_assert_str_eq(ju_str(ev, "line"), "not json\ntwo");
	ck_assert_ptr_null(ju_str(ev, "source"));
	ck_assert_str_eq(ju_str(ev, "id"),
	    "2026-06-01T12:02:04Z/000000000002");
	ck_assert_str_eq(r.last_id, "2026-06-01T12:02:04Z/000000000002");
	ck_assert(!r.full_lines && !r.full_bytes);
	podlogs_reader_free(&r);

	/* the line limit stops the reader at once */
	podlogs_reader_init(&r, 2, 1 << 20, scrub_key, (void *)KEY);
	ck_assert(!podlogs_reader_feed(&r, text, sizeof(text) - 1));
	ck_assert(r.full_lines);
	ck_assert_int_eq(json_object_array_length(r.lines), 2);
	podlogs_reader_free(&r);

	/* the byte limit too; a long line is cut */
	memset(big, 'x', sizeof(big));
	memcpy(big, "data: ", 6);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\n';
	podlogs_reader_init(&r, 10, 64, scrub_key, NULL);
	ck_assert(!podlogs_reader_feed(&r, big, sizeof(big)));
	ck_assert(r.full_bytes);
	ck_assert_int_eq(json_object_array_length(r.lines), 1);
	ck_assert_int_eq(strlen(ju_str(json_object_array_get_idx(r.lines, 0),
	    "line")), PODLOGS_LINE_MAX);
	podlogs_reader_free(&r);

	/* params: since and last_event_id */
	ev = json_tokener_parse("{\"since\":\"2026-06-01T12:02:03.5+02:00\","
	    "\"last_event_id\":\"2026-06-01T12:02:03Z/000000000001\"}");
	msg = NULL;
	ck_assert_int_eq(podlogs_validate(ev, NULL, &msg), 0);
	json_object_put(ev);
	ev = json_tokener_parse("{\"since\":\"yesterday\"}");
	ck_assert_int_eq(podlogs_validate(ev, NULL, &msg), -1);
	ck_assert_ptr_nonnull(strstr(msg, "RFC 3339"));
	free(msg);
	json_object_put(ev);
	ev = json_tokener_parse("{\"last_event_id\":\"a b\"}");
	ck_assert_int_eq(podlogs_validate(ev, NULL, &msg), -1);
	free(msg);
	json_object_put(ev);
}
END_TEST

struct collect {
	struct strbuf sb;
	size_t stop_after;	/* 0: never stop */
};

static bool
collect(const char *buf, size_t len, void *arg)
{
	struct collect *c = arg;

	sb_addn(&c->sb, buf, len);
	return c->stop_after == 0 || c->sb.len < c->stop_after;
}

/* GET /v2/pods/{id}/logs against the stand-in: the stream never ends, so
 * the call ends when it goes quiet, when the reader has enough, or at
 * its time bound; errors are problems as usual. */
START_TEST(test_stream_logs)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_pod *p, *q;
	struct collect col = { SB_INIT, 0 };
	enum runpod_stream_end end;
	char *path, *esc;

	fake_reset();
	c = client();
	p = create_ok(c, "ia-logs-1");
	q = wait_status(c, p->id, "RUNNING", 10000);
	runpod_pod_free(q);
	path = runpod_pod_path(c, p->id, "/logs?tail=100", &e);
	ck_assert_ptr_nonnull(path);

	/* quiet: the whole backfill, then it stops by itself */
	ck_assert_int_eq(runpod_stream_get(c, path, NULL, 20000, 300,
	    collect, &col, &end, &e), 0);
	ck_assert_int_eq(end, RP_STREAM_QUIET);
	ck_assert_ptr_nonnull(strstr(sb_str(&col.sb), "status RUNNING"));
	ck_assert_ptr_nonnull(strstr(sb_str(&col.sb), "Pod Started"));
	ck_assert_ptr_nonnull(strstr(sb_str(&col.sb), "\"source\":\"system\""));

	/* enough: the reader stops it */
	sb_reset(&col.sb);
	col.stop_after = 10;
	ck_assert_int_eq(runpod_stream_get(c, path, NULL, 20000, 5000,
	    collect, &col, &end, &e), 0);
	ck_assert_int_eq(end, RP_STREAM_LIMIT);

	/* the time bound, when the quiet bound is longer */
	sb_reset(&col.sb);
	col.stop_after = 0;
	ck_assert_int_eq(runpod_stream_get(c, path, NULL, 400, 60000,
	    collect, &col, &end, &e), 0);
	ck_assert_int_eq(end, RP_STREAM_TIME);
	free(path);

	/* a Last-Event-ID header; a bad query value is 422 */
	path = runpod_pod_path(c, p->id, "/logs?tail=x", &e);
	ck_assert_int_eq(runpod_stream_get(c, path, NULL, 5000, 300,
	    collect, &col, &end, &e), -1);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_int_eq(e.http_status, 422);
	ck_assert_ptr_nonnull(strstr(e.detail, "tail"));
	free(path);
	esc = runpod_escape(c, "2026-01-01T00:00:00Z");
	ck_assert_str_eq(esc, "2026-01-01T00%3A00%3A00Z");
	free(esc);
	ck_assert_int_eq(runpod_stream_get(c, "/v2/pods/nope/logs", NULL,
	    5000, 300, collect, &col, &end, &e), -1);
	ck_assert_int_eq(e.kind, RP_NOT_FOUND);
	ck_assert_int_eq(runpod_stream_get(c, "/v2/pods/x/logs",
	    "Last-Event-ID: a\r\nX: y", 5000, 300, collect, &col, &end, &e),
	    -1);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_int_eq(e.http_status, 0);
	ck_assert_int_eq(fake_calls("GET /v2/pods/{id}/logs"), 5);

	sb_free(&col.sb);
	runpod_pod_free(p);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

START_TEST(test_gpu_types)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	json_object *g = NULL, *x;
	size_t i;

	fake_reset();
	c = client();
	ck_assert_int_eq(runpod_list_gpu_types(c, false, &g, &e), 0);
	ck_assert(json_object_is_type(g, json_type_array));
	ck_assert_uint_eq(json_object_array_length(g), 4);
	for (i = 0; i < 4; i++) {
		x = json_object_array_get_idx(g, i);
		ck_assert_ptr_nonnull(ju_str(x, "id"));
		ck_assert_ptr_nonnull(ju_obj(x, "price"));
		ck_assert(!json_object_object_get_ex(x, "availability",
		    NULL));
	}
	json_object_put(g);

	fake_faults("{\"no_capacity\":{\"gpu_ids\":[\"" A100 "\"]}}");
	ck_assert_int_eq(runpod_list_gpu_types(c, true, &g, &e), 0);
	ck_assert_uint_eq(json_object_array_length(g), 4);
	for (i = 0; i < 4; i++) {
		const char *av;

		x = json_object_array_get_idx(g, i);
		av = ju_str(x, "availability");
		ck_assert_ptr_nonnull(av);
		if (strcmp(ju_str(x, "id"), A100) == 0)
			ck_assert_str_eq(av, "NONE");
		else
			ck_assert_str_ne(av, "NONE");
	}
	json_object_put(g);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

START_TEST(test_network_error)
{
	struct runpod_opts o;
	struct runpod_client *c = NULL;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_pod *p = NULL;
	char *err = NULL;
	int s, port;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[64];

	/* A port nobody listens on: bind one, read it, close it. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	memset(&o, 0, sizeof(o));
	o.base_url = url;
	o.api_key = KEY;
	o.connect_timeout_s = 2;
	o.timeout_s = 2;
	o.max_attempts = 3;
	o.backoff_base_ms = 10;
	ck_assert_int_eq(runpod_client_new(&o, &c, &err), 0);
	ck_assert_int_eq(runpod_get_pod(c, "x", &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NETWORK);
	ck_assert_int_eq(e.http_status, 0);
	ck_assert_ptr_nonnull(e.detail);
	/* Refused, not timed out ("Timeout was reached"). */
	ck_assert_str_eq(e.detail, "Couldn't connect to server");
	ck_assert_ptr_null(strstr(e.detail, KEY));
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

START_TEST(test_slow_timeout_create)
{
	struct runpod_opts o;
	struct runpod_client *c = NULL;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod *p = NULL;
	char url[64], *err = NULL;
	size_t m = 0;

	fake_reset();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", server_port);
	memset(&o, 0, sizeof(o));
	o.base_url = url;
	o.api_key = KEY;
	o.timeout_s = 1;
	o.max_attempts = 3;
	o.backoff_base_ms = 10;
	ck_assert_int_eq(runpod_client_new(&o, &c, &err), 0);
	fake_faults("{\"slow_ms\":1500}");
	req_init(&r, "ia-slow-1", RTX4090);
	/* A timed-out create is not retried: the pod may exist. */
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NETWORK);
	fake_clear();
	ck_assert_int_eq(fake_calls("POST /v2/pods"), 1);
	ck_assert_int_eq(runpod_find_pod_by_name(c, "ia-slow-1", &p, &m, &e),
	    0);
	ck_assert_ptr_nonnull(p);
	runpod_pod_free(p);
	runpod_client_free(c);
	runpod_error_clear(&e);
}
END_TEST

/* ---- the fake's process ------------------------------------------------- */

static void
start_server(void)
{
	const char *top = getenv("top_builddir");
	char bin[1024], keyf[256], port_s[16], delay_s[16], logf[256];
	int fd;

	tu_tmpdir_make(tmpdir, sizeof(tmpdir), "runpod");
	snprintf(keyf, sizeof(keyf), "%s/key", tmpdir);
	snprintf(logf, sizeof(logf), "%s/fake.log", tmpdir);
	fd = open(keyf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, KEY "\n", strlen(KEY) + 1) !=
	    (ssize_t)strlen(KEY) + 1) {
		perror("key file");
		exit(EXIT_FAILURE);
	}
	close(fd);
	snprintf(bin, sizeof(bin), "%s/tests/fake-runpod/fake-runpod",
	    top ? top : ".");
	snprintf(port_s, sizeof(port_s), "%d", SSH_PORT);
	snprintf(delay_s, sizeof(delay_s), "%d", STATE_DELAY_MS);
	{
		const char *argv[] = { bin, "--port", "0",
		    "--api-key-file", keyf, "--ssh-host", "127.0.0.1",
		    "--ssh-port", port_s, "--state-delay-ms", delay_s,
		    "--log", logf, NULL };
		server_pid = tu_spawn_port(argv, &server_port, 10000);
	}
	if (server_pid < 0) {
		tu_tmpdir_remove(tmpdir);
		exit(EXIT_FAILURE);
	}
}

/* SIGTERM, then wait at most TU_HANG_MS (SIGKILL after); true on a clean
 * exit. */
static bool
stop_server(void)
{
	bool clean = tu_stop_child(server_pid, TU_HANG_MS);

	server_pid = -1;
	return clean;
}

static void
program_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	start_server();
}

/* The fake must have exited cleanly, too. */
static bool
program_teardown(void)
{
	bool clean = stop_server();

	tu_tmpdir_remove(tmpdir);
	curl_global_cleanup();
	return clean;
}

/* Network volumes through runpod_call, against the stand-in: create,
 * refusals, a pod mounting one (its data center), delete while mounted. */
START_TEST(test_network_volumes)
{
	struct runpod_client *c;
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create r;
	struct runpod_pod *p = NULL;
	json_object *j = NULL, *x;
	char vid[32], path[96], pid[32];
	long st;

	fake_reset();
	c = client();
	ck_assert_int_eq(runpod_call(c, "POST", "/v2/network-volumes",
	    "{\"name\":\"v1\",\"size\":20,\"dataCenter\":\"US-KS-2\"}",
	    true, &st, &j, &e), 0);
	ck_assert_int_eq(st, 201);
	ck_assert_str_eq(ju_str(j, "dataCenter"), "US-KS-2");
	ck_assert_str_eq(ju_str(j, "type"), "STANDARD");
	snprintf(vid, sizeof(vid), "%s", ju_str(j, "id"));
	json_object_put(j);
	/* 422: unknown field, size out of range; 400: unknown data center */
	ck_assert_int_eq(runpod_call(c, "POST", "/v2/network-volumes",
	    "{\"name\":\"v\",\"size\":5,\"dataCenter\":\"US-KS-2\","
	    "\"bogus\":1}", true, &st, &j, &e), -1);
	ck_assert_int_eq(e.http_status, 422);
	ck_assert_ptr_nonnull(strstr(e.detail, "bogus"));
	ck_assert_ptr_nonnull(strstr(e.detail, "size"));
	ck_assert_int_eq(runpod_call(c, "POST", "/v2/network-volumes",
	    "{\"name\":\"v\",\"size\":10,\"dataCenter\":\"XX-1\"}", true,
	    &st, &j, &e), -1);
	ck_assert_int_eq(e.http_status, 400);
	ck_assert_int_eq(runpod_call(c, "GET", "/v2/network-volumes/nope",
	    NULL, false, &st, &j, &e), -1);
	ck_assert_int_eq(e.kind, RP_NOT_FOUND);
	snprintf(path, sizeof(path), "/v2/network-volumes/%s", vid);
	ck_assert_int_eq(runpod_call(c, "PATCH", path, "{\"size\":10}",
	    false, &st, &j, &e), -1);
	ck_assert_int_eq(e.http_status, 400);

	/* a pod with it: outside its data center refused, else placed there */
	req_init(&r, "ia-vol-1", A100);
	r.network_volume_id = vid;
	r.volume_path = "/runpod-volume";
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.kind, RP_NO_CAPACITY);
	r.data_center_id = "EU-RO-1";
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), -1);
	ck_assert_int_eq(e.http_status, 400);
	req_init(&r, "ia-vol-1", RTX4090);
	r.network_volume_id = vid;
	r.data_center_id = "US-KS-2";
	r.volume_path = "/runpod-volume";
	ck_assert_int_eq(runpod_create_pod(c, &r, &p, &e), 0);
	x = json_object_array_get_idx(ju_arr(ju_obj(p->raw, "mounts"),
	    "network"), 0);
	ck_assert_str_eq(ju_str(x, "volumeId"), vid);
	ck_assert_str_eq(ju_str(x, "path"), "/runpod-volume");
	snprintf(pid, sizeof(pid), "%s", p->id);
	runpod_pod_free(p);
	p = wait_status(c, pid, "RUNNING", TU_HANG_MS);
	ck_assert_str_eq(ju_str(p->raw, "dataCenterId"), "US-KS-2");
	ck_assert_int_eq(runpod_call(c, "DELETE", path, NULL, false, &st, &j,
	    &e), -1);
	ck_assert_int_eq(e.kind, RP_CONFLICT);
	ck_assert_int_eq(runpod_delete_pod(c, p->id, &e), 0);
	runpod_pod_free(p);
	ck_assert_int_eq(runpod_call(c, "DELETE", path, NULL, false, &st, &j,
	    &e), 0);
	ck_assert_int_eq(st, 204);
	ck_assert_ptr_null(j);
	runpod_error_clear(&e);
	runpod_client_free(c);
}
END_TEST

static Suite *
runpod_suite(void)
{
	Suite *s = suite_create("runpod");
	TCase *pure = tcase_create("pure");
	TCase *tc = tcase_create("fake");

	tcase_add_test(pure, test_create_body);
	tcase_add_test(pure, test_pod_parse);
	tcase_add_test(pure, test_error_answers);
	tcase_add_test(pure, test_client_options);
	tcase_add_test(pure, test_candidates_verdict);
	tcase_add_test(pure, test_sse_reader);
	suite_add_tcase(s, pure);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_auth_not_logged);
	tcase_add_test(tc, test_rate_limit);
	tcase_add_test(tc, test_server_error);
	tcase_add_test(tc, test_create_500_after_create);
	tcase_add_test(tc, test_create_refusals);
	tcase_add_test(tc, test_create_pool_and_rule);
	tcase_add_test(tc, test_stream_logs);
	tcase_add_test(tc, test_gpu_types);
	tcase_add_test(tc, test_network_error);
	tcase_add_test(tc, test_slow_timeout_create);
	tcase_add_test(tc, test_network_volumes);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { runpod_suite }, .setup = program_setup,
    .teardown = program_teardown)
