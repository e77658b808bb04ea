/* SPDX-License-Identifier: MIT */
/*
 * check_fake_runpod: drives a running fake-runpod over loopback with
 * libcurl.  main() starts $top_builddir/tests/fake-runpod/fake-runpod on
 * port 0 with temporary key files, reads "PORT=", runs the tests (each
 * begins with POST /_fake/reset) and stops the server with SIGTERM,
 * checking that it exits 0 within a bounded wait.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/strbuf.h"
#include "unit/testutil.h"

#define KEY "fake-key-0123456789abcdef"
#define RO_KEY "fake-ro-key-fedcba9876543210"
#define SECRET_PUBKEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDoNotLogMe"
#define SSH_PORT 2222
#define STATE_DELAY_MS 100
#define A100 "NVIDIA A100 80GB PCIe"
#define RTX4090 "NVIDIA GeForce RTX 4090"

static pid_t server_pid = -1;
static int server_port;
static char tmpdir[64];
static char log_path[128];

/* ------------------------------------------------------------ helpers ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct resp {
	long status;
	char *body;
	size_t len;
	char *headers;
	size_t hlen;
	json_object *json;
	long long ms;		/* time the request took */
	long connects;		/* new connections made */
};


static CURL *shared_curl;

/* Checked teardown: each forked test frees its easy handle. */
static void
curl_teardown(void)
{
	if (shared_curl != NULL)
		curl_easy_cleanup(shared_curl);
	shared_curl = NULL;
}

static void
resp_free(struct resp *r)
{
	free(r->body);
	free(r->headers);
	if (r->json != NULL)
		json_object_put(r->json);
	memset(r, 0, sizeof(*r));
}

/*
 * One request to the fake.  key NULL: no Authorization.  body NULL: none.
 * The easy handle is reused so connections are kept alive.
 */
static void
req(const char *method, const char *path, const char *key,
    const char *body, struct resp *out)
{
	struct tu_sink b = { NULL, 0 }, h = { NULL, 0 };
	struct curl_slist *hdrs = NULL;
	char url[512], auth[256];
	long long t0;
	CURLcode rc;
	CURL *c;

	memset(out, 0, sizeof(*out));
	if (shared_curl == NULL)
		shared_curl = curl_easy_init();
	c = shared_curl;
	ck_assert_ptr_nonnull(c);
	curl_easy_reset(c);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", server_port,
	    path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (key != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body != NULL) {
		hdrs = curl_slist_append(hdrs,
		    "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(body));
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tu_sink_write);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	t0 = now_ms();
	rc = curl_easy_perform(c);
	out->ms = now_ms() - t0;
	curl_slist_free_all(hdrs);
	ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path,
	    curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &out->connects);
	out->body = b.buf ? b.buf : strdup("");
	out->len = b.len;
	out->headers = h.buf ? h.buf : strdup("");
	out->hlen = h.len;
	if (out->len > 0)
		out->json = json_tokener_parse(out->body);
}

/* The value of header name in r (static buffer), or NULL. */
static const char *
header(const struct resp *r, const char *name)
{
	static char val[1024];
	const char *p = r->headers;
	size_t nl = strlen(name);

	while (p != NULL && *p != '\0') {
		const char *eol = strstr(p, "\r\n");
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);

		if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t vl;

			while (*v == ' ')
				v++;
			vl = ll - (size_t)(v - p);
			if (vl >= sizeof(val))
				vl = sizeof(val) - 1;
			memcpy(val, v, vl);
			val[vl] = '\0';
			return val;
		}
		p = eol ? eol + 2 : NULL;
	}
	return NULL;
}

static json_object *
jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static const char *
jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
}

static bool
jhas(json_object *o, const char *key)
{
	return o != NULL && json_object_object_get_ex(o, key, NULL);
}

/* Check a problem+json answer of the given status. */
static void
assert_problem(const struct resp *r, long status)
{
	ck_assert_msg(r->status == status, "status %ld, want %ld: %s",
	    r->status, status, r->body);
	ck_assert_ptr_nonnull(header(r, "Content-Type"));
	ck_assert_str_eq(header(r, "Content-Type"),
	    "application/problem+json");
	ck_assert_ptr_nonnull(r->json);
	ck_assert_ptr_nonnull(jstr(r->json, "title"));
	ck_assert_ptr_nonnull(jstr(r->json, "detail"));
	ck_assert_int_eq(json_object_get_int(jget(r->json, "status")),
	    status);
}

static void
reset_fake(void)
{
	struct resp r;

	req("POST", "/_fake/reset", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
}

static void
set_faults(const char *json)
{
	struct resp r;

	req("POST", "/_fake/faults", NULL, json, &r);
	ck_assert_msg(r.status == 200, "faults %s: %ld %s", json, r.status,
	    r.body);
	resp_free(&r);
}

/* Create a pod; returns its id (caller frees) and checks 201. */
static char *
create_pod(const char *name, const char *gpu, bool ssh_port)
{
	struct resp r;
	char body[1024];
	char *id;

	snprintf(body, sizeof(body),
	    "{\"name\":\"%s\",\"image\":\"runpod/pytorch:2.4\","
	    "\"gpu\":{\"id\":\"%s\",\"count\":2},\"cloud\":\"SECURE\","
	    "\"disk\":20,\"env\":{\"PUBLIC_KEY\":\"%s\"},"
	    "\"ports\":[%s\"8888/http\"],\"startSsh\":true}",
	    name, gpu, SECRET_PUBKEY, ssh_port ? "\"22/tcp\"," : "");
	req("POST", "/v2/pods", KEY, body, &r);
	ck_assert_msg(r.status == 201, "create: %ld %s", r.status, r.body);
	ck_assert_ptr_nonnull(jstr(r.json, "id"));
	id = strdup(jstr(r.json, "id"));
	resp_free(&r);
	return id;
}

/* GET the pod into r; status 200 required. */
static void
get_pod(const char *id, struct resp *r)
{
	char path[128];

	snprintf(path, sizeof(path), "/v2/pods/%s", id);
	req("GET", path, KEY, NULL, r);
	ck_assert_msg(r->status == 200, "get %s: %ld", id, r->status);
}

/* Poll until the pod has status want: at most 200 tries / TU_HANG_MS. */
static void
wait_status(const char *id, const char *want, struct resp *r)
{
	long long deadline = now_ms() + TU_HANG_MS;
	int i;

	for (i = 0; i < 200; i++) {
		get_pod(id, r);
		if (strcmp(jstr(r->json, "status"), want) == 0)
			return;
		resp_free(r);
		if (now_ms() > deadline)
			break;
		sleep_ms(50);
	}
	ck_abort_msg("pod %s never reached %s", id, want);
}

static void
pod_action(const char *id, const char *action, struct resp *r)
{
	char path[128], body[64];

	snprintf(path, sizeof(path), "/v2/pods/%s/action", id);
	snprintf(body, sizeof(body), "{\"action\":\"%s\"}", action);
	req("POST", path, KEY, body, r);
}

static bool
list_has(const char *name)
{
	struct resp r;
	json_object *pods;
	size_t i, n;
	bool found = false;

	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	pods = jget(r.json, "pods");
	ck_assert_ptr_nonnull(pods);
	ck_assert(json_object_is_type(pods, json_type_array));
	n = json_object_array_length(pods);
	for (i = 0; i < n; i++)
		if (strcmp(jstr(json_object_array_get_idx(pods, i), "name"),
		    name) == 0)
			found = true;
	resp_free(&r);
	return found;
}

static bool
errors_mention(json_object *problem, const char *needle)
{
	json_object *errs = jget(problem, "errors");
	size_t i, n;

	if (errs == NULL || !json_object_is_type(errs, json_type_array))
		return false;
	n = json_object_array_length(errs);
	for (i = 0; i < n; i++)
		if (strstr(json_object_get_string(
		    json_object_array_get_idx(errs, i)), needle) != NULL)
			return true;
	return false;
}

/* A raw request over a fresh socket; returns the first answer line. */
static void
raw_request(const char *text, char *line, size_t len)
{
	struct sockaddr_in sa;
	struct timeval tv = { 5, 0 };
	char buf[4096];
	size_t got = 0;
	int fd, i;
	char *eol;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)server_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(fd, text, strlen(text), MSG_NOSIGNAL),
	    (ssize_t)strlen(text));
	for (i = 0; i < 50 && got < sizeof(buf) - 1; i++) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	close(fd);
	buf[got] = '\0';
	eol = strstr(buf, "\r\n");
	if (eol != NULL)
		*eol = '\0';
	got = strlen(buf);
	if (got >= len)
		got = len - 1;
	memcpy(line, buf, got);
	line[got] = '\0';
}

/* An open log stream: a socket with the request sent. */
static int
stream_open(const char *path, const char *extra)
{
	struct sockaddr_in sa;
	char text[1024];
	int fd;

	snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer " KEY "\r\nAccept: text/event-stream\r\n"
	    "%s\r\n", path, extra ? extra : "");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)server_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(fd, text, strlen(text), MSG_NOSIGNAL),
	    (ssize_t)strlen(text));
	return fd;
}

/* Read from fd into sb until needle is in it or ms pass (bounded);
 * whether it came. */
static bool
stream_until(int fd, struct strbuf *sb, const char *needle, int ms)
{
	long long end = now_ms() + ms;
	char buf[4096];

	while (strstr(sb_str(sb), needle) == NULL) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = end - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return false;
		sb_addn(sb, buf, (size_t)n);
	}
	return true;
}

/* How many times needle occurs in s. */
static int
count_of(const char *s, const char *needle)
{
	int n = 0;

	for (; (s = strstr(s, needle)) != NULL; s += strlen(needle))
		n++;
	return n;
}

/* -------------------------------------------------------------- tests ---- */

START_TEST(test_auth_and_headers)
{
	struct resp r;

	reset_fake();
	req("GET", "/v2/pods", NULL, NULL, &r);
	assert_problem(&r, 401);
	ck_assert_str_eq(jstr(r.json, "title"), "Unauthorized");
	ck_assert_ptr_nonnull(header(&r, "RateLimit"));
	resp_free(&r);

	req("GET", "/v2/pods", "wrong-key", NULL, &r);
	assert_problem(&r, 401);
	resp_free(&r);

	req("GET", "/v2/pods", RO_KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	req("POST", "/v2/pods", RO_KEY,
	    "{\"name\":\"ro\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"}}", &r);
	assert_problem(&r, 403);
	resp_free(&r);

	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(header(&r, "Content-Type"), "application/json");
	ck_assert_ptr_nonnull(header(&r, "RateLimit"));
	ck_assert_ptr_nonnull(strstr(header(&r, "RateLimit"),
	    "\"minute\";r="));
	ck_assert_ptr_nonnull(header(&r, "RateLimit-Policy"));
	ck_assert_ptr_nonnull(strstr(header(&r, "RateLimit-Policy"),
	    "\"minute\";q="));
	ck_assert_ptr_null(header(&r, "Retry-After"));
	/* wrapped list, not a bare array */
	ck_assert(json_object_is_type(jget(r.json, "pods"),
	    json_type_array));
	resp_free(&r);
}
END_TEST

START_TEST(test_create_and_walk)
{
	struct resp r;
	json_object *ssh, *direct, *env;
	char *id;
	int saw_starting = 0, i;
	long long deadline;

	reset_fake();
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"walk\",\"image\":\"runpod/pytorch:2.4\","
	    "\"gpu\":{\"id\":\"" RTX4090 "\",\"count\":2},"
	    "\"env\":{\"PUBLIC_KEY\":\"" SECRET_PUBKEY "\"},"
	    "\"ports\":[\"22/tcp\"],\"startSsh\":true}", &r);
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	ck_assert_str_eq(jstr(r.json, "status"), "PROVISIONING");
	ck_assert_str_eq(jstr(r.json, "name"), "walk");
	ck_assert_str_eq(json_object_to_json_string(jget(r.json, "actions")),
	    "[ \"stop\", \"terminate\" ]");
	ssh = jget(r.json, "ssh");
	ck_assert_ptr_nonnull(ssh);
	ck_assert(jhas(ssh, "direct") && jget(ssh, "direct") == NULL);
	ck_assert(jhas(r.json, "runtime") && jget(r.json, "runtime") == NULL);
	ck_assert(jhas(r.json, "startedAt") &&
	    jget(r.json, "startedAt") == NULL);
	ck_assert(jhas(r.json, "dataCenterId") &&
	    jget(r.json, "dataCenterId") == NULL);
	ck_assert_ptr_nonnull(jstr(r.json, "createdAt"));
	ck_assert_ptr_nonnull(strchr(jstr(r.json, "createdAt"), 'T'));
	ck_assert_str_eq(jstr(r.json, "cloud"), "SECURE");
	ck_assert_double_eq_tol(json_object_get_double(jget(r.json, "cost")),
	    0.88, 1e-9);
	env = jget(r.json, "env");
	ck_assert_str_eq(jstr(env, "PUBLIC_KEY"), SECRET_PUBKEY);
	ck_assert_int_eq(json_object_get_int(jget(jget(r.json, "gpu"),
	    "count")), 2);
	id = strdup(jstr(r.json, "id"));
	resp_free(&r);

	/* bounded walk to RUNNING */
	deadline = now_ms() + TU_HANG_MS;
	for (i = 0; i < 1000 && now_ms() < deadline; i++) {
		get_pod(id, &r);
		/* never backwards: once STARTING, not PROVISIONING again */
		ck_assert(saw_starting == 0 || strcmp(jstr(r.json, "status"),
		    "PROVISIONING") != 0);
		if (strcmp(jstr(r.json, "status"), "STARTING") == 0) {
			saw_starting++;
			ck_assert_ptr_null(jget(jget(r.json, "ssh"),
			    "direct"));
			ck_assert_ptr_nonnull(jstr(r.json, "dataCenterId"));
		}
		if (strcmp(jstr(r.json, "status"), "RUNNING") == 0)
			break;
		resp_free(&r);
		sleep_ms(10);
	}
	ck_assert_msg(r.json != NULL &&
	    strcmp(jstr(r.json, "status"), "RUNNING") == 0,
	    "pod never reached RUNNING");
	/* STARTING lasts STATE_DELAY_MS; a loaded machine may poll past it */
	if (saw_starting == 0)
		fprintf(stderr, "note: STARTING was not observed\n");
	direct = jget(jget(r.json, "ssh"), "direct");
	ck_assert_ptr_nonnull(direct);
	ck_assert_str_eq(jstr(direct, "host"), "127.0.0.1");
	ck_assert_int_eq(json_object_get_int(jget(direct, "port")), SSH_PORT);
	ck_assert_str_eq(jstr(direct, "username"), "root");
	ck_assert_str_eq(jstr(direct, "command"), "ssh root@127.0.0.1 -p 2222");
	ck_assert_ptr_nonnull(jget(r.json, "runtime"));
	ck_assert(jhas(jget(r.json, "runtime"), "uptime"));
	ck_assert_ptr_nonnull(jstr(r.json, "startedAt"));
	ck_assert_str_eq(json_object_to_json_string(jget(r.json, "actions")),
	    "[ \"stop\", \"restart\", \"terminate\" ]");
	ck_assert_double_eq_tol(json_object_get_double(jget(r.json, "cost")),
	    0.88, 1e-9);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(test_no_ssh_port_no_direct)
{
	struct resp r;
	char *id;

	reset_fake();
	id = create_pod("noport", RTX4090, false);
	wait_status(id, "RUNNING", &r);
	ck_assert_ptr_null(jget(jget(r.json, "ssh"), "direct"));
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(test_validation)
{
	struct resp r;

	reset_fake();
	/* unknown field */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"v\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"},\"bogus\":1}", &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "'bogus'"));
	resp_free(&r);
	/* unknown field inside gpu (v1's gpuTypeIds is gone) */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"v\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\",\"gpuTypeIds\":[]}}", &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "'gpuTypeIds'"));
	resp_free(&r);
	/* wrong type */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"v\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\",\"count\":\"2\"}}", &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "$.gpu.count"));
	resp_free(&r);
	/* several violations, each listed */
	req("POST", "/v2/pods", KEY,
	    "{\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090 "\",\"count\":0},"
	    "\"disk\":0,\"cloud\":\"ALL\",\"env\":{\"A\":1},"
	    "\"ports\":[22]}", &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "'name'"));
	ck_assert(errors_mention(r.json, "$.gpu.count"));
	ck_assert(errors_mention(r.json, "$.disk"));
	ck_assert(errors_mention(r.json, "$.cloud"));
	ck_assert(errors_mention(r.json, "$.env.A"));
	ck_assert(errors_mention(r.json, "$.ports[0]"));
	ck_assert_int_ge(json_object_array_length(jget(r.json, "errors")), 6);
	resp_free(&r);
	/* empty name; image missing without templateId */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"\",\"gpu\":{\"id\":\"" RTX4090 "\"}}", &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "$.name"));
	ck_assert(errors_mention(r.json, "'image'"));
	resp_free(&r);
	/* both gpu and cpu; neither: a handler rule (400) */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"v\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"},\"cpu\":{\"id\":\"cpu3c\",\"vcpuCount\":2}}", &r);
	assert_problem(&r, 400);
	resp_free(&r);
	req("POST", "/v2/pods", KEY, "{\"name\":\"v\",\"image\":\"x\"}", &r);
	assert_problem(&r, 400);
	resp_free(&r);
	/* malformed JSON */
	req("POST", "/v2/pods", KEY, "{\"name\":", &r);
	assert_problem(&r, 400);
	resp_free(&r);
	/* JSON, but not an object */
	req("POST", "/v2/pods", KEY, "null", &r);
	assert_problem(&r, 422);
	resp_free(&r);
	req("POST", "/v2/pods", KEY, "[]", &r);
	assert_problem(&r, 422);
	resp_free(&r);
	/* a bad port spec */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"v\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"},\"ports\":[\"22\"]}", &r);
	assert_problem(&r, 400);
	resp_free(&r);
	/* templateId stands in for image; an unknown one is 404 */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"t\",\"templateId\":\"nope\",\"gpu\":{\"id\":\""
	    RTX4090 "\"}}", &r);
	assert_problem(&r, 404);
	resp_free(&r);
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"t\",\"templateId\":\"fake-template\",\"gpu\":"
	    "{\"id\":\"" RTX4090 "\"}}", &r);
	ck_assert_int_eq(r.status, 201);
	resp_free(&r);
	/* a CPU pod */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"c\",\"image\":\"x\",\"cpu\":{\"id\":\"cpu3c\","
	    "\"vcpuCount\":4}}", &r);
	ck_assert_msg(r.status == 201, "%s", r.body);
	ck_assert_ptr_null(jget(r.json, "gpu"));
	ck_assert_int_eq(json_object_get_int(jget(jget(r.json, "cpu"),
	    "vcpuCount")), 4);
	resp_free(&r);
	/* nothing created by the refused calls */
	ck_assert(!list_has("v"));
}
END_TEST

START_TEST(test_list_get_404)
{
	struct resp r;
	char *a, *b;

	reset_fake();
	a = create_pod("pod-a", RTX4090, true);
	b = create_pod("pod-b", RTX4090, true);
	ck_assert(list_has("pod-a"));
	ck_assert(list_has("pod-b"));
	get_pod(a, &r);
	ck_assert_str_eq(jstr(r.json, "id"), a);
	ck_assert_str_eq(jstr(r.json, "name"), "pod-a");
	resp_free(&r);
	req("GET", "/v2/pods/doesnotexist", KEY, NULL, &r);
	assert_problem(&r, 404);
	resp_free(&r);
	req("POST", "/v2/pods/doesnotexist/action", KEY,
	    "{\"action\":\"stop\"}", &r);
	assert_problem(&r, 404);
	resp_free(&r);
	req("GET", "/v2/nothing", KEY, NULL, &r);
	assert_problem(&r, 404);
	resp_free(&r);
	req("PUT", "/v2/pods", KEY, "{}", &r);
	assert_problem(&r, 405);
	ck_assert_str_eq(header(&r, "Allow"), "GET, POST");
	resp_free(&r);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_actions)
{
	struct resp r;
	char *id, *other, path[128];

	reset_fake();
	id = create_pod("act", RTX4090, true);
	/* restart is not valid while provisioning */
	pod_action(id, "restart", &r);
	assert_problem(&r, 409);
	resp_free(&r);
	wait_status(id, "RUNNING", &r);
	resp_free(&r);

	pod_action(id, "stop", &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert_str_eq(jstr(r.json, "status"), "EXITED");
	ck_assert_double_eq(json_object_get_double(jget(r.json, "cost")), 0);
	ck_assert_ptr_null(jget(jget(r.json, "ssh"), "direct"));
	ck_assert_ptr_null(jget(r.json, "runtime"));
	ck_assert_str_eq(json_object_to_json_string(jget(r.json, "actions")),
	    "[ \"start\", \"terminate\" ]");
	resp_free(&r);
	/* stop again: not in actions */
	pod_action(id, "stop", &r);
	assert_problem(&r, 409);
	resp_free(&r);
	/* not an action at all: schema violation */
	pod_action(id, "reset", &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "$.action"));
	resp_free(&r);

	pod_action(id, "start", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(jstr(r.json, "status"), "STARTING");
	resp_free(&r);
	wait_status(id, "RUNNING", &r);
	ck_assert_ptr_nonnull(jget(jget(r.json, "ssh"), "direct"));
	resp_free(&r);
	pod_action(id, "restart", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	pod_action(id, "terminate", &r);
	ck_assert_int_eq(r.status, 204);
	ck_assert_uint_eq(r.len, 0);
	resp_free(&r);
	ck_assert(!list_has("act"));
	get_pod(id, &r);
	ck_assert_str_eq(jstr(r.json, "status"), "TERMINATED");
	ck_assert_double_eq(json_object_get_double(jget(r.json, "cost")), 0);
	ck_assert_int_eq(json_object_array_length(jget(r.json, "actions")),
	    0);
	resp_free(&r);
	pod_action(id, "start", &r);
	assert_problem(&r, 409);
	resp_free(&r);

	other = create_pod("del", RTX4090, true);
	snprintf(path, sizeof(path), "/v2/pods/%s", other);
	req("DELETE", path, KEY, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
	ck_assert(!list_has("del"));
	free(other);
	free(id);
}
END_TEST

/*
 * GET /v2/billing/pods as RunPod's v2 reference defines it: records per
 * pod per bucket from what the pod ran (compute while not stopped, disk
 * storage also while stopped), metadata, the query rules, and the same
 * auth and fault handling as the other routes.
 */
START_TEST(test_billing_pods)
{
	struct resp r, r2;
	json_object *recs, *rec, *meta, *tot;
	char path[256], body[1024], *id;
	double rate, gpu, disk, total;
	long long t0, t1;
	size_t i, n;

	reset_fake();
	snprintf(body, sizeof(body),
	    "{\"name\":\"bill\",\"image\":\"runpod/pytorch:2.4\","
	    "\"gpu\":{\"id\":\"%s\",\"count\":1},\"disk\":50,"
	    "\"mounts\":{\"persistent\":{\"size\":20,\"path\":"
	    "\"/workspace\"}},\"ports\":[\"22/tcp\"]}", RTX4090);
	t0 = now_ms();
	req("POST", "/v2/pods", KEY, body, &r);
	ck_assert_msg(r.status == 201, "create: %ld %s", r.status, r.body);
	id = strdup(jstr(r.json, "id"));
	rate = json_object_get_double(jget(r.json, "cost"));
	ck_assert(rate > 0);
	resp_free(&r);
	wait_status(id, "RUNNING", &r);
	resp_free(&r);
	pod_action(id, "stop", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	sleep_ms(300);
	pod_action(id, "terminate", &r);
	ck_assert_int_eq(r.status, 204);
	resp_free(&r);
	t1 = now_ms();

	snprintf(path, sizeof(path), "/v2/billing/pods?podId=%s", id);
	req("GET", path, KEY, NULL, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	ck_assert_str_eq(header(&r, "Content-Type"), "application/json");
	ck_assert_ptr_nonnull(header(&r, "RateLimit"));
	recs = jget(r.json, "records");
	ck_assert(json_object_is_type(recs, json_type_array));
	n = json_object_array_length(recs);
	ck_assert_uint_ge(n, 1);	/* 2 when the run crossed midnight */
	gpu = disk = total = 0;
	for (i = 0; i < n; i++) {
		rec = json_object_array_get_idx(recs, i);
		ck_assert_str_eq(jstr(rec, "podId"), id);
		ck_assert_ptr_nonnull(jstr(rec, "startTime"));
		ck_assert_ptr_nonnull(strstr(jstr(rec, "endTime"),
		    "T00:00:00Z"));
		ck_assert(json_object_get_double(jget(rec, "cpuAmount")) == 0);
		gpu += json_object_get_double(jget(rec, "gpuAmount"));
		disk += json_object_get_double(jget(rec, "diskAmount"));
		total += json_object_get_double(jget(rec, "totalAmount"));
	}
	/* Compute for at most the time it existed at its rate; storage
	 * while running (70 GB at 0.10) and stopped (20 GB at 0.20, 300+
	 * ms of it). */
	ck_assert(gpu > 0 && gpu <= rate * (double)(t1 - t0) / 3600000.0);
	ck_assert(disk >= 20 * 0.20 / 730 * 0.3 / 3600);
	ck_assert(disk <= 70 * 0.20 / 730 * (double)(t1 - t0) / 3600000.0);
	ck_assert(total - (gpu + disk) < 1e-12 &&
	    (gpu + disk) - total < 1e-12);
	meta = jget(r.json, "metadata");
	ck_assert_int_eq(json_object_get_int(jget(meta, "recordCount")),
	    (int)n);
	ck_assert_int_eq(json_object_get_int(jget(meta, "uniquePodCount")),
	    1);
	ck_assert_str_eq(jstr(jget(meta, "query"), "bucketSize"), "day");
	ck_assert_str_eq(jstr(jget(meta, "query"), "podId"), id);
	ck_assert_ptr_nonnull(strstr(jstr(jget(meta, "query"), "startTime"),
	    "T00:00:00Z"));
	tot = jget(meta, "totals");
	ck_assert(json_object_get_double(jget(tot, "totalAmount")) == total);
	ck_assert(jhas(tot, "gpuAmount") && jhas(tot, "cpuAmount") &&
	    jhas(tot, "diskAmount"));
	/* Terminated: the figures are final. */
	req("GET", path, RO_KEY, NULL, &r2);
	ck_assert_int_eq(r2.status, 200);
	ck_assert_str_eq(json_object_to_json_string(jget(r2.json, "records")),
	    json_object_to_json_string(recs));
	resp_free(&r2);
	resp_free(&r);

	/* lastN hourly buckets; another pod id filters everything out. */
	req("GET", "/v2/billing/pods?bucketSize=hour&lastN=2", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	meta = jget(jget(r.json, "metadata"), "query");
	ck_assert_str_eq(jstr(meta, "bucketSize"), "hour");
	ck_assert_ptr_nonnull(strstr(jstr(meta, "endTime"), ":00:00Z"));
	ck_assert(jhas(meta, "podId") && jget(meta, "podId") == NULL);
	resp_free(&r);
	req("GET", "/v2/billing/pods?podId=nope&startTime=2026-01-01T00:00:00Z"
	    "&endTime=2026-01-02T00:00:00Z", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(json_object_array_length(jget(r.json, "records")),
	    0);
	ck_assert_str_eq(jstr(jget(jget(r.json, "metadata"), "query"),
	    "startTime"), "2026-01-01T00:00:00Z");
	resp_free(&r);

	/* Bad values: 422 with errors; lastN with a range: 400. */
	req("GET", "/v2/billing/pods?bucketSize=minute", KEY, NULL, &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "query.bucketSize"));
	resp_free(&r);
	req("GET", "/v2/billing/pods?startTime=yesterday", KEY, NULL, &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "query.startTime"));
	resp_free(&r);
	req("GET", "/v2/billing/pods?lastN=0", KEY, NULL, &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "query.lastN"));
	resp_free(&r);
	req("GET", "/v2/billing/pods?lastN=3&startTime=2026-01-01T00:00:00Z",
	    KEY, NULL, &r);
	assert_problem(&r, 400);
	resp_free(&r);
	req("GET", "/v2/billing/pods?startTime=2026-01-02T00:00:00Z"
	    "&endTime=2026-01-01T00:00:00Z", KEY, NULL, &r);
	assert_problem(&r, 400);
	resp_free(&r);

	/* Auth, method and faults as on every route. */
	req("GET", "/v2/billing/pods", NULL, NULL, &r);
	assert_problem(&r, 401);
	resp_free(&r);
	req("POST", "/v2/billing/pods", KEY, "{}", &r);
	assert_problem(&r, 405);
	ck_assert_str_eq(header(&r, "Allow"), "GET");
	resp_free(&r);
	set_faults("{\"server_error\":{\"count\":1,\"status\":503,"
	    "\"route\":\"GET /v2/billing/pods\"}}");
	req("GET", "/v2/billing/pods", KEY, NULL, &r);
	assert_problem(&r, 503);
	resp_free(&r);
	set_faults("{\"rate_limit\":{\"count\":1,\"retry_after\":2,"
	    "\"route\":\"GET /v2/billing/pods\"}}");
	req("GET", "/v2/billing/pods", KEY, NULL, &r);
	assert_problem(&r, 429);
	ck_assert_str_eq(header(&r, "Retry-After"), "2");
	resp_free(&r);
	req("GET", "/v2/billing/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(test_catalog)
{
	struct resp r;
	json_object *gpus, *g;
	size_t i, n;

	reset_fake();
	req("GET", "/v2/catalog/gpus", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	gpus = jget(r.json, "gpus");
	n = json_object_array_length(gpus);
	ck_assert_uint_ge(n, 4);
	for (i = 0; i < n; i++) {
		g = json_object_array_get_idx(gpus, i);
		ck_assert_ptr_nonnull(jstr(g, "id"));
		ck_assert_ptr_nonnull(jstr(g, "name"));
		ck_assert(jhas(g, "pool"));
		ck_assert_ptr_nonnull(jstr(g, "manufacturer"));
		ck_assert(jhas(g, "memory"));
		ck_assert(jhas(g, "secure") && jhas(g, "community"));
		ck_assert(jhas(jget(g, "price"), "secure"));
		ck_assert(jhas(jget(g, "price"), "community"));
		ck_assert(jhas(jget(g, "maxCount"), "secure"));
		ck_assert(!jhas(g, "availability"));
	}
	resp_free(&r);

	req("GET", "/v2/catalog/gpus?include=AVAILABILITY&product=POD", KEY,
	    NULL, &r);
	ck_assert_int_eq(r.status, 200);
	gpus = jget(r.json, "gpus");
	for (i = 0; i < json_object_array_length(gpus); i++)
		ck_assert_ptr_nonnull(jstr(json_object_array_get_idx(gpus, i),
		    "availability"));
	resp_free(&r);

	req("GET", "/v2/catalog/gpus?include=AVAILABILITY", KEY, NULL, &r);
	assert_problem(&r, 400);
	resp_free(&r);
	req("GET", "/v2/catalog/gpus?product=POD", KEY, NULL, &r);
	assert_problem(&r, 400);
	resp_free(&r);

	req("GET", "/v2/catalog/gpus/NVIDIA%20GeForce%20RTX%204090", KEY,
	    NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(jstr(r.json, "id"), RTX4090);
	ck_assert_double_eq_tol(json_object_get_double(jget(jget(r.json,
	    "price"), "secure")), 0.44, 1e-9);
	resp_free(&r);
	req("GET", "/v2/catalog/gpus/NVIDIA%20Nothing", KEY, NULL, &r);
	assert_problem(&r, 404);
	resp_free(&r);
}
END_TEST

START_TEST(test_fault_rate_limit)
{
	struct resp r;
	int i;

	reset_fake();
	set_faults("{\"rate_limit\":{\"count\":2,\"retry_after\":1}}");
	for (i = 0; i < 2; i++) {
		req("GET", "/v2/pods", KEY, NULL, &r);
		assert_problem(&r, 429);
		ck_assert_ptr_nonnull(header(&r, "Retry-After"));
		ck_assert_str_eq(header(&r, "Retry-After"), "1");
		ck_assert_ptr_nonnull(strstr(header(&r, "RateLimit"),
		    "\"minute\";r=0;t=1"));
		resp_free(&r);
	}
	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(header(&r, "Retry-After"));
	resp_free(&r);
}
END_TEST

START_TEST(test_fault_server_error)
{
	struct resp r;

	reset_fake();
	set_faults("{\"server_error\":{\"count\":1,\"status\":503}}");
	req("GET", "/v2/pods", KEY, NULL, &r);
	assert_problem(&r, 503);
	resp_free(&r);
	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	set_faults("{\"server_error\":{\"count\":1}}");
	req("GET", "/v2/catalog/gpus", KEY, NULL, &r);
	assert_problem(&r, 500);
	resp_free(&r);
	/* a bad fault spec is refused */
	req("POST", "/_fake/faults", NULL,
	    "{\"server_error\":{\"status\":404}}", &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	req("POST", "/_fake/faults", NULL, "{\"nonsense\":true}", &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
}
END_TEST

START_TEST(test_fault_no_capacity)
{
	struct resp r;
	json_object *gpus;
	size_t i;
	char *id;

	reset_fake();
	set_faults("{\"no_capacity\":{\"gpu_ids\":[\"" A100 "\"]}}");
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"cap\",\"image\":\"x\",\"gpu\":{\"id\":\"" A100
	    "\"}}", &r);
	assert_problem(&r, 400);
	ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"),
	    "no longer any instances available"));
	resp_free(&r);
	ck_assert(!list_has("cap"));
	id = create_pod("cap", RTX4090, true);
	ck_assert(list_has("cap"));
	free(id);
	req("GET", "/v2/catalog/gpus?include=AVAILABILITY&product=POD", KEY,
	    NULL, &r);
	gpus = jget(r.json, "gpus");
	for (i = 0; i < json_object_array_length(gpus); i++) {
		json_object *g = json_object_array_get_idx(gpus, i);

		if (strcmp(jstr(g, "id"), A100) == 0)
			ck_assert_str_eq(jstr(g, "availability"), "NONE");
		else
			ck_assert_str_ne(jstr(g, "availability"), "NONE");
	}
	resp_free(&r);
	/* community cloud for a secure-only type is no capacity too */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"h\",\"image\":\"x\",\"cloud\":\"COMMUNITY\","
	    "\"gpu\":{\"id\":\"NVIDIA H100 80GB HBM3\"}}", &r);
	assert_problem(&r, 400);
	resp_free(&r);
}
END_TEST

/* A per-GPU 403 (this account cannot use the pool) and a 400 for a rule
 * the request breaks, as RFC 9457 problems; both cleared. */
START_TEST(test_fault_forbidden_and_rule)
{
	struct resp r;
	char *id;

	reset_fake();
	set_faults("{\"forbidden\":{\"gpu_ids\":[\"" A100 "\"]}}");
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"fb\",\"image\":\"x\",\"gpu\":{\"id\":\"" A100
	    "\"}}", &r);
	assert_problem(&r, 403);
	ck_assert_str_eq(jstr(r.json, "title"), "Forbidden");
	ck_assert_str_eq(jstr(r.json, "detail"), "access denied: your account "
	    "cannot access the requested pool");
	resp_free(&r);
	ck_assert(!list_has("fb"));
	id = create_pod("fb", RTX4090, true);
	free(id);
	/* a schema violation is still 422 first */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"fb\",\"image\":\"x\",\"bogus\":1,\"gpu\":{"
	    "\"id\":\"" A100 "\"}}", &r);
	assert_problem(&r, 422);
	resp_free(&r);

	set_faults("{\"forbidden\":{\"gpu_ids\":[]},\"rule_violation\":"
	    "{\"detail\":\"dataCenterIds: no listed data center offers "
	    "this GPU type\"}}");
	req("GET", "/_fake/faults", NULL, NULL, &r);
	ck_assert_str_eq(jstr(jget(r.json, "rule_violation"), "detail"),
	    "dataCenterIds: no listed data center offers this GPU type");
	resp_free(&r);
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"rv\",\"image\":\"x\",\"gpu\":{\"id\":\""
	    RTX4090 "\"}}", &r);
	assert_problem(&r, 400);
	ck_assert_str_eq(jstr(r.json, "detail"), "dataCenterIds: no listed "
	    "data center offers this GPU type");
	resp_free(&r);
	ck_assert(!list_has("rv"));
	req("POST", "/_fake/faults", NULL, "{\"rule_violation\":{}}", &r);
	ck_assert_int_eq(r.status, 400);
	resp_free(&r);
	set_faults("{\"rule_violation\":null}");
	id = create_pod("rv", A100, true);
	free(id);
}
END_TEST

/*
 * GET /v2/pods/{id}/logs as getPodLogs defines it: SSE headers, events
 * with an id and {"ts","source","line"} data, tail (default 100), source,
 * since, Last-Event-ID, 422 for bad values, 404 for an unknown pod; the
 * stream stays open and carries a line injected afterwards.
 */
START_TEST(test_pod_logs)
{
	struct strbuf sb = SB_INIT;
	struct resp r;
	char path[128], body[256], *id, *cut;
	const char *first_id;
	int fd;

	reset_fake();
	id = create_pod("logs", RTX4090, true);
	wait_status(id, "RUNNING", &r);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v2/pods/%s/logs", id);

	fd = stream_open(path, NULL);
	ck_assert(stream_until(fd, &sb, "pod is ready to use", 5000));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "HTTP/1.1 200 OK\r\n"));
	ck_assert_ptr_nonnull(strcasestr(sb_str(&sb),
	    "Content-Type: text/event-stream\r\n"));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "Cache-Control: no-cache"));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "X-Accel-Buffering: no"));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb),
	    "Transfer-Encoding: chunked"));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "RateLimit: "));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "\"source\":\"system\","
	    "\"line\":\"pod "));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "status PROVISIONING"));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "\"source\":\"container\","
	    "\"line\":\"Pod Started\""));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "\nid: "));
	/* a line injected now comes down the open stream */
	snprintf(body, sizeof(body), "{\"line\":\"RUNPOD_API_KEY=" KEY "\"}");
	snprintf(path, sizeof(path), "/_fake/pods/%s/logs", id);
	req("POST", path, NULL, body, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(jstr(r.json, "id"), "/"));
	resp_free(&r);
	ck_assert(stream_until(fd, &sb, "RUNPOD_API_KEY=", 5000));
	/* ... and a status change (stop) too */
	pod_action(id, "stop", &r);
	resp_free(&r);
	ck_assert(stream_until(fd, &sb, "status EXITED", 5000));
	close(fd);
	sb_reset(&sb);

	/* tail and source */
	snprintf(path, sizeof(path), "/v2/pods/%s/logs?tail=2&source=system",
	    id);
	fd = stream_open(path, NULL);
	ck_assert(stream_until(fd, &sb, "status EXITED", 5000));
	ck_assert_int_eq(count_of(sb_str(&sb), "data: "), 2);
	ck_assert_ptr_null(strstr(sb_str(&sb), "\"container\""));
	close(fd);
	sb_reset(&sb);

	/* Last-Event-ID: everything after that event */
	snprintf(path, sizeof(path), "/v2/pods/%s/logs?tail=100", id);
	fd = stream_open(path, NULL);
	ck_assert(stream_until(fd, &sb, "status EXITED", 5000));
	close(fd);
	first_id = strstr(sb_str(&sb), "id: ");
	ck_assert_ptr_nonnull(first_id);
	cut = strndup(first_id + 4, strcspn(first_id + 4, "\n"));
	snprintf(body, sizeof(body), "Last-Event-ID: %s\r\n", cut);
	free(cut);
	sb_reset(&sb);
	fd = stream_open(path, body);
	ck_assert(stream_until(fd, &sb, "status EXITED", 5000));
	ck_assert_ptr_null(strstr(sb_str(&sb), "status PROVISIONING"));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb), "status STARTING"));
	close(fd);
	sb_reset(&sb);

	/* since: from that time on; a future time gives nothing yet */
	snprintf(path, sizeof(path), "/v2/pods/%s/logs?since="
	    "2999-01-01T00:00:00Z", id);
	fd = stream_open(path, NULL);
	ck_assert(stream_until(fd, &sb, "\r\n\r\n", 5000));
	ck_assert(!stream_until(fd, &sb, "data: ", 300));
	close(fd);
	sb_free(&sb);

	snprintf(path, sizeof(path), "/v2/pods/%s/logs?tail=5001&source=x&"
	    "since=soon", id);
	req("GET", path, KEY, NULL, &r);
	assert_problem(&r, 422);
	ck_assert(errors_mention(r.json, "tail"));
	ck_assert(errors_mention(r.json, "source"));
	ck_assert(errors_mention(r.json, "since"));
	resp_free(&r);
	req("GET", "/v2/pods/nope/logs", KEY, NULL, &r);
	assert_problem(&r, 404);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v2/pods/%s/logs", id);
	req("GET", path, NULL, NULL, &r);
	assert_problem(&r, 401);
	resp_free(&r);
	req("POST", path, KEY, "{}", &r);
	ck_assert_int_eq(r.status, 405);
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(test_fault_slow)
{
	struct resp r;

	/* A delay long enough that only the delay, not a busy machine,
	 * makes a request take that long: "not slowed" means under it. */
	enum { SLOW_MS = 3000 };

	reset_fake();
	set_faults("{\"slow_ms\":3000}");
	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_ge(r.ms, SLOW_MS - 50);
	resp_free(&r);
	/* the control API itself is never slowed */
	req("DELETE", "/_fake/faults", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_lt(r.ms, SLOW_MS);
	resp_free(&r);
	/* and once cleared, nothing is */
	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_lt(r.ms, SLOW_MS);
	resp_free(&r);
}
END_TEST

START_TEST(test_fault_never_ssh)
{
	struct resp r;
	char *id;

	reset_fake();
	set_faults("{\"never_ssh\":true}");
	id = create_pod("nossh", RTX4090, true);
	wait_status(id, "RUNNING", &r);
	ck_assert_ptr_null(jget(jget(r.json, "ssh"), "direct"));
	resp_free(&r);
	sleep_ms(3 * STATE_DELAY_MS);
	get_pod(id, &r);
	ck_assert_str_eq(jstr(r.json, "status"), "RUNNING");
	ck_assert_ptr_null(jget(jget(r.json, "ssh"), "direct"));
	resp_free(&r);
	free(id);
}
END_TEST

START_TEST(test_fault_create_500)
{
	struct resp r;

	reset_fake();
	set_faults("{\"create_500_after_create\":true}");
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"ghost\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"}}", &r);
	assert_problem(&r, 500);
	resp_free(&r);
	ck_assert(list_has("ghost"));
	/* one-shot */
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"ghost2\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"}}", &r);
	ck_assert_int_eq(r.status, 201);
	resp_free(&r);
}
END_TEST

START_TEST(test_fault_balance)
{
	struct resp r;

	reset_fake();
	set_faults("{\"insufficient_balance\":true}");
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"poor\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"}}", &r);
	assert_problem(&r, 402);
	resp_free(&r);
	ck_assert(!list_has("poor"));
	req("DELETE", "/_fake/faults", NULL, NULL, &r);
	resp_free(&r);
	req("POST", "/v2/pods", KEY,
	    "{\"name\":\"poor\",\"image\":\"x\",\"gpu\":{\"id\":\"" RTX4090
	    "\"}}", &r);
	ck_assert_int_eq(r.status, 201);
	resp_free(&r);
}
END_TEST

/* revoke_keys: the key answers 401 until the fault is cleared; the
 * control API still answers. */
START_TEST(test_fault_revoke_keys)
{
	struct resp r;

	reset_fake();
	set_faults("{\"revoke_keys\":true}");
	req("GET", "/v2/pods", KEY, NULL, &r);
	assert_problem(&r, 401);
	resp_free(&r);
	req("GET", "/_fake/faults", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	{
		json_object *v = NULL;

		ck_assert(json_object_object_get_ex(r.json, "revoke_keys", &v));
		ck_assert(json_object_get_boolean(v));
	}
	resp_free(&r);
	req("DELETE", "/_fake/faults", NULL, NULL, &r);
	resp_free(&r);
	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

START_TEST(test_stats)
{
	struct resp r;
	json_object *calls;
	char *id, path[128];

	reset_fake();
	req("GET", "/_fake/stats", NULL, NULL, &r);
	ck_assert_int_eq(json_object_get_int(jget(r.json, "total")), 0);
	resp_free(&r);
	id = create_pod("s", RTX4090, true);
	get_pod(id, &r);
	resp_free(&r);
	get_pod(id, &r);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v2/pods/%s/action", id);
	req("POST", path, KEY, "{\"action\":\"stop\"}", &r);
	resp_free(&r);
	req("GET", "/v2/pods", NULL, NULL, &r);	/* 401 still counts */
	resp_free(&r);
	req("GET", "/_fake/stats", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	calls = jget(r.json, "calls");
	ck_assert_int_eq(json_object_get_int(jget(calls, "POST /v2/pods")),
	    1);
	ck_assert_int_eq(json_object_get_int(jget(calls,
	    "GET /v2/pods/{id}")), 2);
	ck_assert_int_eq(json_object_get_int(jget(calls,
	    "POST /v2/pods/{id}/action")), 1);
	ck_assert_int_eq(json_object_get_int(jget(calls, "GET /v2/pods")),
	    1);
	ck_assert_int_eq(json_object_get_int(jget(r.json, "total")), 5);
	resp_free(&r);
	reset_fake();
	req("GET", "/_fake/stats", NULL, NULL, &r);
	ck_assert_int_eq(json_object_get_int(jget(r.json, "total")), 0);
	resp_free(&r);
	ck_assert(!list_has("s"));
	free(id);
}
END_TEST

START_TEST(test_http_edges)
{
	struct resp r;
	char line[256];

	reset_fake();
	raw_request("POST /v2/pods HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer " KEY "\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", line, sizeof(line));
	ck_assert_str_eq(line, "HTTP/1.1 411 Length Required");
	raw_request("POST /v2/pods HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer " KEY "\r\n"
	    "Content-Length: 2000000\r\n\r\n", line, sizeof(line));
	ck_assert_str_eq(line, "HTTP/1.1 413 Content Too Large");
	raw_request("BROKEN\r\n\r\n", line, sizeof(line));
	ck_assert_str_eq(line, "HTTP/1.1 400 Bad Request");
	/* pipelined requests on one connection are both answered */
	raw_request("GET /_fake/stats HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /_fake/stats HTTP/1.1\r\nHost: x\r\n\r\n", line,
	    sizeof(line));
	ck_assert_str_eq(line, "HTTP/1.1 200 OK");
	/* keep-alive: the second request reuses the connection */
	req("GET", "/v2/pods", KEY, NULL, &r);
	resp_free(&r);
	req("GET", "/v2/pods", KEY, NULL, &r);
	ck_assert_int_eq(r.connects, 0);
	resp_free(&r);
	/* a body up to 1 MiB is read (then refused as JSON) */
	{
		size_t n = 1024 * 1024;
		char *big = malloc(n + 1);

		ck_assert_ptr_nonnull(big);
		memset(big, ' ', n);
		big[0] = '{';
		big[n - 1] = '}';
		big[n] = '\0';
		req("POST", "/v2/pods", KEY, big, &r);
		assert_problem(&r, 422);
		resp_free(&r);
		free(big);
	}
}
END_TEST

START_TEST(test_env_not_logged)
{
	FILE *f;
	char buf[8192];
	size_t n;
	char *id;
	int tries;

	reset_fake();
	id = create_pod("secret", RTX4090, true);
	free(id);
	/* the log is written synchronously; read all of it (bounded) */
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	for (tries = 0; tries < 10000 &&
	    (n = fread(buf, 1, sizeof(buf) - 1, f)) > 0; tries++) {
		buf[n] = '\0';
		ck_assert_ptr_null(strstr(buf, "DoNotLogMe"));
		ck_assert_ptr_null(strstr(buf, KEY));
	}
	fclose(f);
}
END_TEST

/* ------------------------------------------------------------- server ---- */

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(EXIT_FAILURE);
	}
}

static void
remove_tmpdir(void)
{
	char p[256];
	const char *files[] = { "key", "rokey", "log" };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
		unlink(p);
	}
	rmdir(tmpdir);
}

static void
start_server(void)
{
	const char *top = getenv("top_builddir");
	char bin[1024], keyf[128], rof[128], port_s[16], delay_s[16];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fake-runpod-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(EXIT_FAILURE);
	}
	snprintf(keyf, sizeof(keyf), "%s/key", tmpdir);
	snprintf(rof, sizeof(rof), "%s/rokey", tmpdir);
	snprintf(log_path, sizeof(log_path), "%s/log", tmpdir);
	write_file(keyf, KEY "\n");
	write_file(rof, RO_KEY "\n");
	snprintf(bin, sizeof(bin), "%s/tests/fake-runpod/fake-runpod",
	    top ? top : ".");
	snprintf(port_s, sizeof(port_s), "%d", SSH_PORT);
	snprintf(delay_s, sizeof(delay_s), "%d", STATE_DELAY_MS);
	{
		const char *argv[] = { bin, "--port", "0",
		    "--api-key-file", keyf, "--read-only-key-file", rof,
		    "--ssh-host", "127.0.0.1", "--ssh-port", port_s,
		    "--state-delay-ms", delay_s, "--log", log_path, NULL };
		server_pid = tu_spawn_port(argv, &server_port, 10000);
	}
	if (server_pid < 0) {
		remove_tmpdir();
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

/* The stand-in must have exited cleanly, too. */
static bool
program_teardown(void)
{
	bool clean = stop_server();

	remove_tmpdir();
	curl_teardown();
	curl_global_cleanup();
	return clean;
}

static Suite *
fake_runpod_suite(void)
{
	Suite *s = suite_create("fake_runpod");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, NULL, curl_teardown);
	tcase_add_test(tc, test_auth_and_headers);
	tcase_add_test(tc, test_create_and_walk);
	tcase_add_test(tc, test_no_ssh_port_no_direct);
	tcase_add_test(tc, test_validation);
	tcase_add_test(tc, test_list_get_404);
	tcase_add_test(tc, test_actions);
	tcase_add_test(tc, test_catalog);
	tcase_add_test(tc, test_billing_pods);
	tcase_add_test(tc, test_fault_rate_limit);
	tcase_add_test(tc, test_fault_server_error);
	tcase_add_test(tc, test_fault_no_capacity);
	tcase_add_test(tc, test_fault_forbidden_and_rule);
	tcase_add_test(tc, test_pod_logs);
	tcase_add_test(tc, test_fault_slow);
	tcase_add_test(tc, test_fault_never_ssh);
	tcase_add_test(tc, test_fault_revoke_keys);
	tcase_add_test(tc, test_fault_create_500);
	tcase_add_test(tc, test_fault_balance);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_http_edges);
	tcase_add_test(tc, test_env_not_logged);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { fake_runpod_suite }, .setup = program_setup,
    .teardown = program_teardown)
