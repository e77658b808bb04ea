/* SPDX-License-Identifier: MIT */
/*
 * Integration tests: the real agent behind the real nginx (the files in
 * nginx/), over TLS on loopback, started by tests/harness/start.
 */
#include "auto-config.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "integration/itest.h"
#include "unit/testutil.h"

static const char *admin(void) { return getenv("AGENT_TOKEN"); }

#define DIAG_SEND(method, steps, interval, extra) \
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"" method "\",\"params\":{" \
	"\"message\":{\"kind\":\"message\",\"messageId\":\"m1\",\"role\":" \
	"\"user\",\"parts\":[{\"kind\":\"data\",\"data\":{\"operation\":" \
	"\"diag.timer\",\"params\":{\"steps\":" #steps ",\"interval_ms\":" \
	#interval "}}}]}" extra "}}"

/* Start a diag task without waiting; returns its id (caller frees). */
static char *
start_diag(const char *token, int steps, int interval)
{
	char body[1024];
	struct itest_resp r;
	char *id;

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"m1\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"diag.timer\",\"params\":{"
	    "\"steps\":%d,\"interval_ms\":%d}}}]},\"configuration\":"
	    "{\"blocking\":false}}}", steps, interval);
	itest_post("/a2a", token, body, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(itest_jstr(r.json, "result.id") != NULL, "no task: %s",
	    r.body);
	id = strdup(itest_jstr(r.json, "result.id"));
	itest_resp_free(&r);
	return id;
}

/* ---- public routes ------------------------------------------------------ */

START_TEST(test_cards)
{
	struct itest_resp r, r2;
	char etag[64] = "", hdr[128];
	const char *p;
	json_object *card;
	int nkeys = 0;

	itest_request("GET", "/.well-known/agent-card.json", NULL, NULL, NULL,
	    0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(itest_jstr(r.json, "protocolVersion"), "0.3.0");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "url"),
	    "/agents/instag/a2a"));
	ck_assert_str_eq(itest_jstr(r.json,
	    "supportedInterfaces.0.protocolVersion"), "1.0");
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "capabilities.streaming")));
	ck_assert_ptr_nonnull(itest_jget(r.json, "skills.0.id"));
	p = strcasestr(r.headers, "ETag: ");
	ck_assert_ptr_nonnull(p);
	sscanf(p + 6, "%63s", etag);
	itest_request("GET", "/.well-known/agent.json", NULL, NULL, NULL, 0,
	    &r2);
	ck_assert_int_eq(r2.status, 200);
	ck_assert_str_eq(r.body, r2.body);
	itest_resp_free(&r2);
	/* conditional GET */
	{
		CURL *h = curl_easy_init();
		struct curl_slist *l = NULL;
		char url[512];
		long code = 0;
		snprintf(url, sizeof(url), "%s/.well-known/agent-card.json",
		    getenv("AGENT_URL"));
		snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
		l = curl_slist_append(l, hdr);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_CAINFO, getenv("AGENT_CA"));
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		ck_assert_int_eq(code, 304);
		curl_slist_free_all(l);
		curl_easy_cleanup(h);
	}
	ck_assert_ptr_nonnull(strcasestr(r.headers, "Vary: A2A-Version"));
	itest_resp_free(&r);

	/* A2A-Version: 1.0 gets the v1.0 card: no v0.3 keys, one key per
	 * security scheme, its own ETag */
	ck_assert_int_eq(itest_sh("curl -sf --cacert '%s' -H 'A2A-Version: "
	    "1.0' '%s/.well-known/agent-card.json' > '%s/card-v1.json'",
	    getenv("AGENT_CA"), getenv("AGENT_URL"), getenv("HARNESS_DIR")),
	    0);
	{
		char path[600];
		json_object *v1;

		snprintf(path, sizeof(path), "%s/card-v1.json",
		    getenv("HARNESS_DIR"));
		v1 = json_object_from_file(path);
		ck_assert_ptr_nonnull(v1);
		ck_assert_ptr_null(itest_jget(v1, "protocolVersion"));
		ck_assert_ptr_null(itest_jget(v1, "url"));
		ck_assert_ptr_null(itest_jget(v1, "security"));
		ck_assert_str_eq(itest_jstr(v1,
		    "supportedInterfaces.0.protocolVersion"), "1.0");
		ck_assert_int_eq(json_object_object_length(itest_jget(v1,
		    "securitySchemes.bearer")), 1);
		ck_assert_str_eq(itest_jstr(v1, "securitySchemes.bearer."
		    "httpAuthSecurityScheme.bearerFormat"), "JWT");
		json_object_put(v1);
	}

	itest_request("GET", "/api/agent_card", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	card = r.json;
	{
		static const char *const keys[] = { "id", "name", "version",
		    "description", "capabilities", "endpoints",
		    "authentication", NULL };
		int i;
		json_object_object_foreach(card, k, v) {
			(void)v;
			for (i = 0; keys[i]; i++)
				if (!strcmp(keys[i], k))
					break;
			ck_assert_msg(keys[i] != NULL, "extra key %s", k);
			nkeys++;
		}
	}
	ck_assert_int_eq(nkeys, 7);
	ck_assert_str_eq(itest_jstr(card, "endpoints.a2a"),
	    "/agents/instag/api/a2a");
	itest_resp_free(&r);
}
END_TEST

START_TEST(test_health_and_metrics)
{
	struct itest_resp r;

	itest_request("GET", "/healthz", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "ok");
	itest_resp_free(&r);
	itest_request("GET", "/readyz", NULL, NULL, NULL, 0, &r);
	ck_assert_msg(r.status == 200, "readyz: %ld %s", r.status, r.body);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "ready");
	ck_assert(!json_object_get_boolean(itest_jget(r.json, "degraded")));
	{
		static const char *const checks[] = { "serving", "store",
		    "artifact_dir", "uploads_dir", "runpod" };
		char path[64];
		size_t i;

		for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
			snprintf(path, sizeof(path), "checks.%s.ok",
			    checks[i]);
			ck_assert_msg(itest_jget(r.json, path) != NULL &&
			    json_object_get_boolean(itest_jget(r.json, path)),
			    "%s: %s", path, r.body);
		}
	}
	/* The harness configures RunPod (the stand-in) for every agent. */
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "checks.runpod.configured")));
	ck_assert_ptr_nonnull(strstr(r.headers, "no-store"));
	itest_resp_free(&r);
	itest_request("GET", "/metrics", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "instag_agent_requests_total"));
	ck_assert_ptr_nonnull(strstr(r.body,
	    "\ninstag_agent_ready{check=\"store\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
	    "\ninstag_agent_ready{check=\"runpod\"} 1\n"));
	itest_resp_free(&r);
	itest_request("GET", "/no/such/route", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 404);
	itest_resp_free(&r);
	itest_request("GET", "/a2a", admin(), NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 405);
	itest_resp_free(&r);
}
END_TEST

/* ---- authentication ------------------------------------------------------ */

static void
expect_401(const char *token, const char *why)
{
	struct itest_resp r;

	itest_post("/a2a", token, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"ListTasks\",\"params\":{}}", &r);
	ck_assert_msg(r.status == 401, "%s: got %ld %s", why, r.status, r.body);
	ck_assert_ptr_nonnull(strcasestr(r.headers,
	    "WWW-Authenticate: Bearer"));
	ck_assert_str_eq(itest_jstr(r.json, "error"), "unauthorized");
	itest_resp_free(&r);
	itest_post("/api/a2a", token, "{\"type\":\"agent_discovery_request\"}",
	    &r);
	ck_assert_msg(r.status == 401, "%s (envelope): got %ld", why, r.status);
	itest_resp_free(&r);
}

static char *
claims(long exp_off, long nbf_off, const char *iss, const char *aud)
{
	char *s;
	long now = (long)time(NULL);

	if (asprintf(&s, "{\"sub\":\"admin\",\"scope\":\"tasks:read\","
	    "\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,\"nbf\":%ld,"
	    "\"iat\":%ld}", iss, aud, now + exp_off, now + nbf_off, now) < 0)
		abort();
	return s;
}

START_TEST(test_bad_tokens)
{
	const char *iss = "instag-agent-harness", *aud = "instag-agent";
	const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char *c, *t, *good;
	unsigned char other[48];

	expect_401(NULL, "missing");
	expect_401("not.a.jwt", "garbage");
	expect_401("abc", "one segment");

	c = claims(-3600, -7200, iss, aud);
	t = itest_sign("HS256", hs, c, NULL, 0);
	expect_401(t, "expired");
	free(t); free(c);

	c = claims(7200, 3600, iss, aud);
	t = itest_sign("HS256", hs, c, NULL, 0);
	expect_401(t, "not yet valid");
	free(t); free(c);

	c = claims(3600, 0, "someone-else", aud);
	t = itest_sign("HS256", hs, c, NULL, 0);
	expect_401(t, "wrong issuer");
	free(t); free(c);

	c = claims(3600, 0, iss, "other-audience");
	t = itest_sign("HS256", hs, c, NULL, 0);
	expect_401(t, "wrong audience");
	free(t); free(c);

	memset(other, 'k', sizeof(other));
	c = claims(3600, 0, iss, aud);
	t = itest_sign("HS256", hs, c, other, sizeof(other));
	expect_401(t, "wrong key");
	free(t);

	t = itest_sign(NULL, "{\"alg\":\"none\",\"typ\":\"JWT\"}", c, NULL, 0);
	expect_401(t, "alg none");
	free(t);

	/* HS/RS confusion: an RS256 header over an HMAC made with our key */
	t = itest_sign("HS256", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", c,
	    NULL, 0);
	expect_401(t, "RS256 header");
	free(t);

	t = itest_sign("HS512", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", c,
	    NULL, 0);
	expect_401(t, "HS512 when HS256 is configured");
	free(t);

	/* tampered payload: the signature of one payload on another */
	good = itest_sign("HS256", hs, c, NULL, 0);
	{
		char *c2 = claims(3600, 0, iss, aud), *t2, *dot1, *dot2, *mix;
		c2[strlen(c2) - 1] = '\0';
		if (asprintf(&mix, "%s,\"scp\":[\"pods:write\"]}", c2) < 0)
			abort();
		t2 = itest_sign("HS256", hs, mix, NULL, 0);
		dot1 = strrchr(good, '.');
		dot2 = strrchr(t2, '.');
		strcpy(dot2, dot1);	/* same length base64 of 32 bytes */
		expect_401(t2, "tampered payload");
		free(t2); free(c2); free(mix);
	}
	/* and the untampered one works */
	{
		struct itest_resp r;
		itest_post("/a2a", good, "{\"jsonrpc\":\"2.0\",\"id\":1,"
		    "\"method\":\"ListTasks\",\"params\":{}}", &r);
		ck_assert_int_eq(r.status, 200);
		itest_resp_free(&r);
	}
	free(good);
	free(c);
}
END_TEST

START_TEST(test_scopes_and_owners)
{
	char *reader = itest_token("reader", "tasks:read", 600);
	char *bob = itest_token("bob", "tasks:read tasks:write diag:run", 600);
	char *id = start_diag(admin(), 1, 10);
	char body[512];
	struct itest_resp r;

	/* missing scope: 403 on both routes */
	itest_post("/a2a", reader, DIAG_SEND("message/send", 1, 10, ""), &r);
	ck_assert_int_eq(r.status, 403);
	ck_assert_ptr_nonnull(strcasestr(r.headers, "insufficient_scope"));
	itest_resp_free(&r);
	itest_post("/api/a2a", reader, "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"diag.timer\"}}", &r);
	ck_assert_int_eq(r.status, 403);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "forbidden");
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"tasks/cancel\",\"params\":{\"id\":\"%s\"}}", id);
	itest_post("/a2a", reader, body, &r);
	ck_assert_int_eq(r.status, 403);
	itest_resp_free(&r);

	/* someone else's task looks like no task */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"GetTask\",\"params\":{\"id\":\"%s\"}}", id);
	itest_post("/a2a", bob, body, &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32001);
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"tasks/cancel\",\"params\":{\"id\":\"%s\"}}", id);
	itest_post("/a2a", bob, body, &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32001);
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"tasks.get\",\"params\":{\"task_id\":\"%s\"}}}",
	    id);
	itest_post("/api/a2a", bob, body, &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "error");
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "task_not_found");
	itest_resp_free(&r);
	/* ListTasks shows bob none of admin's */
	itest_post("/a2a", bob, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"ListTasks\",\"params\":{}}", &r);
	ck_assert_ptr_null(strstr(r.body, id));
	itest_resp_free(&r);
	free(id);
	free(reader);
	free(bob);
}
END_TEST

/* ---- bad input ---------------------------------------------------------- */

START_TEST(test_bad_input)
{
	struct itest_resp r;
	char *deep;
	size_t i, n = 10000;

	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32700);
	itest_resp_free(&r);

	deep = malloc(2 * n + 1);
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[2 * n - 1 - i] = ']';
	}
	deep[2 * n] = '\0';
	itest_post("/a2a", admin(), deep, &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32700);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "deeper"));
	itest_resp_free(&r);
	itest_post("/api/a2a", admin(), deep, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_json");
	itest_resp_free(&r);
	free(deep);

	itest_post("/a2a", admin(), "[{\"jsonrpc\":\"2.0\"}]", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32600);
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":"
	    "\"GetTask\"}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32600);
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":"
	    "\"tasks/teleport\",\"params\":{}}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32601);
	ck_assert_int_eq(itest_jint(r.json, "id"), 7);
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"m\",\"role\":\"user\",\"parts\":[{"
	    "\"kind\":\"data\",\"data\":{\"operation\":\"no.such.op\"}}]}}}",
	    &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "unknown operation"));
	itest_resp_free(&r);
	itest_post("/a2a", admin(), DIAG_SEND("message/send", "three", 10, ""),
	    &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "params.steps"));
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"role\":\"user\"}}}",
	    &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	itest_resp_free(&r);

	/* hostile strings in an identifier param: rejected, never run */
	itest_post("/api/a2a", admin(),
	    "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"instag.preprocess\",\"params\":{\"host\":\"h\","
	    "\"subject\":\"$(touch /tmp/ia-pwned)`id`;rm -rf /\"}}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	ck_assert_int_ne(access("/tmp/ia-pwned", F_OK), 0);
	itest_resp_free(&r);
	itest_post("/api/a2a", admin(),
	    "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"instag.preprocess\",\"params\":{\"host\":\"h\","
	    "\"subject\":\"../../etc\"}}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);

	/* a pipeline both on a pod of its own and a new one: refused
	 * before any task, with what to give */
	itest_post("/api/a2a", admin(),
	    "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"instag.pipeline\",\"params\":{\"subject\":"
	    "\"may\",\"video\":\"https://x.example/v.mp4\",\"audio\":"
	    "[\"https://x.example/a.wav\"],\"gpu_type_ids\":[\"A\"],"
	    "\"pod_id\":\"p1\"}}}", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "either pod_id"));
	ck_assert_ptr_null(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);

	/* wrong content type; the media type is parsed, not prefix-matched */
	itest_request("POST", "/a2a", admin(), "text/plain", "{}", 2, &r);
	ck_assert_int_eq(r.status, 415);
	itest_resp_free(&r);
	{
		static const char *const bad[] = {
			"application/jsonfoo", "application/json+x",
			"application/a2a+jsonx", "application/json,text/plain"
		};
		static const char *const good[] = {
			"Application/JSON; charset=utf-8",
			"application/a2a+json", "application/json ;x=y"
		};
		static const char ping[] = "{\"jsonrpc\":\"2.0\",\"id\":3,"
		    "\"method\":\"tasks/teleport\"}";
		size_t k;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			itest_request("POST", "/a2a", admin(), bad[k], ping,
			    strlen(ping), &r);
			ck_assert_int_eq(r.status, 415);
			ck_assert_str_eq(itest_jstr(r.json, "error"),
			    "unsupported_media_type");
			itest_resp_free(&r);
		}
		for (k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
			itest_request("POST", "/a2a", admin(), good[k], ping,
			    strlen(ping), &r);
			ck_assert_int_eq(r.status, 200);
			ck_assert_int_eq(itest_jint(r.json, "error.code"),
			    -32601);
			itest_resp_free(&r);
		}
	}

	/* an integer id json-c cannot keep exactly: refused, not changed */
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":"
	    "123456789012345678901234567890,\"method\":\"tasks/get\","
	    "\"params\":{\"id\":\"x\"}}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32600);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "out of range"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"id\":null"));
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":"
	    "-123456789012345678901234567890,\"method\":\"GetTask\","
	    "\"params\":{\"id\":\"x\"}}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32600);
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":"
	    "18446744073709551614,\"method\":\"tasks/teleport\"}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32601);
	ck_assert_ptr_nonnull(strstr(r.body,
	    "\"id\":18446744073709551614"));
	itest_resp_free(&r);

	/* overlong UTF-8 and U+0000 in a string: refused, never echoed */
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":"
	    "\"\xc0\xaf\",\"method\":\"tasks/teleport\"}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32700);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "UTF-8"));
	ck_assert_ptr_null(memchr(r.body, 0xc0, r.len));
	itest_resp_free(&r);
	itest_post("/api/a2a", admin(), "{\"type\":\"task_request\","
	    "\"payload\":{\"operation\":\"agent.diag\",\"params\":{"
	    "\"note\":\"a\\u0000b\"}}}", &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_json");
	itest_resp_free(&r);

	/* historyLength: a negative or non-integer value is -32602 */
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":4,"
	    "\"method\":\"tasks/get\",\"params\":{\"id\":\"x\","
	    "\"historyLength\":-1}}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "historyLength"));
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":4,"
	    "\"method\":\"ListTasks\",\"params\":{"
	    "\"historyLength\":\"2\"}}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":4,"
	    "\"method\":\"message/send\",\"params\":{\"message\":{"
	    "\"kind\":\"message\",\"messageId\":\"m\",\"role\":"
	    "\"user\",\"parts\":[{\"kind\":\"text\",\"text\":\"hi\"}]},"
	    "\"configuration\":{\"historyLength\":-5}}}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	itest_resp_free(&r);

	/* no extended card is declared: v1.0 -32004, v0.3 -32007 */
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":5,"
	    "\"method\":\"GetExtendedAgentCard\",\"params\":{}}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32004);
	itest_resp_free(&r);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":5,"
	    "\"method\":\"agent/getAuthenticatedExtendedCard\"}", &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32007);
	itest_resp_free(&r);
}
END_TEST

/* A 100 MiB body is refused by nginx's client_max_body_size (413). */
static size_t
zeros(char *buf, size_t sz, size_t n, void *ud)
{
	size_t *left = ud, k = sz * n < *left ? sz * n : *left;

	memset(buf, ' ', k);
	*left -= k;
	return k;
}

static size_t
discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

START_TEST(test_huge_body)
{
	CURL *h = curl_easy_init();
	struct curl_slist *l = NULL;
	char url[512], auth[4200];
	size_t left = 100u << 20;
	long code = 0;

	snprintf(url, sizeof(url), "%s/a2a", getenv("AGENT_URL"));
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", admin());
	l = curl_slist_append(l, auth);
	l = curl_slist_append(l, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, getenv("AGENT_CA"));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, zeros);
	curl_easy_setopt(h, CURLOPT_READDATA, &left);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)left);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	ck_assert_int_eq(code, 413);
	curl_slist_free_all(l);
	curl_easy_cleanup(h);
	/* the agent is still fine */
	{
		struct itest_resp r;
		itest_request("GET", "/healthz", NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		itest_resp_free(&r);
	}
}
END_TEST

/* ---- A2A flows ---------------------------------------------------------- */

START_TEST(test_send_both_dialects)
{
	struct itest_resp r;
	char body[1024];
	const char *id;

	/* a plain text message answers a Task waiting for input, its
	 * status message the catalogue; blocking does not wait for it */
	itest_post("/a2a", admin(),
	    "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"t1\",\"role\":\"user\",\"parts\":[{"
	    "\"kind\":\"text\",\"text\":\"hello\"}]}}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.kind"), "task");
	ck_assert_str_eq(itest_jstr(r.json, "result.status.state"),
	    "input-required");
	ck_assert_str_eq(itest_jstr(r.json, "id"), "a");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json,
	    "result.status.message.parts.0.text"), "operation"));
	ck_assert_ptr_nonnull(itest_jget(r.json,
	    "result.status.message.parts.1.data.operations"));
	id = itest_jstr(r.json, "result.id");
	ck_assert_ptr_nonnull(id);
	/* the follow-up naming an operation runs it on the same task */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":\"b\","
	    "\"method\":\"message/send\",\"params\":{\"message\":{"
	    "\"kind\":\"message\",\"messageId\":\"t2\",\"role\":\"user\","
	    "\"taskId\":\"%s\",\"parts\":[{\"kind\":\"data\",\"data\":{"
	    "\"operation\":\"diag.timer\",\"params\":{\"steps\":2,"
	    "\"interval_ms\":100}}}]}}}", id);
	{
		struct itest_resp r2;

		itest_post("/a2a", admin(), body, &r2);
		ck_assert_str_eq(itest_jstr(r2.json, "result.id"), id);
		ck_assert_str_eq(itest_jstr(r2.json, "result.status.state"),
		    "completed");
		ck_assert_str_eq(itest_jstr(r2.json,
		    "result.metadata.operation"), "diag.timer");
		ck_assert_int_eq(itest_jint(r2.json,
		    "result.artifacts.0.parts.0.data.steps"), 2);
		itest_resp_free(&r2);
		/* it no longer waits: the same message again only joins
		 * its history */
		itest_post("/a2a", admin(), body, &r2);
		ck_assert_str_eq(itest_jstr(r2.json, "result.status.state"),
		    "completed");
		itest_resp_free(&r2);
	}
	itest_resp_free(&r);

	/* v1.0: TASK_STATE_INPUT_REQUIRED; cancel works on it */
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"SendMessage\",\"params\":{\"message\":{"
	    "\"messageId\":\"t3\",\"role\":\"ROLE_USER\",\"parts\":[{"
	    "\"text\":\"what can you do?\"}]}}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.task.status.state"),
	    "TASK_STATE_INPUT_REQUIRED");
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":2,"
	    "\"method\":\"CancelTask\",\"params\":{\"id\":\"%s\"}}",
	    itest_jstr(r.json, "result.task.id"));
	itest_resp_free(&r);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.status.state"),
	    "TASK_STATE_CANCELED");
	itest_resp_free(&r);

	/* v1.0 blocking SendMessage waits in the hub and answers completed */
	itest_post("/a2a", admin(), DIAG_SEND("SendMessage", 2, 200, ""), &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.task.status.state"),
	    "TASK_STATE_COMPLETED");
	ck_assert_int_eq(itest_jint(r.json,
	    "result.task.artifacts.0.parts.0.data.steps"), 2);
	ck_assert_ptr_null(itest_jget(r.json, "result.task.kind"));
	itest_resp_free(&r);

	/* non-blocking answers working; GetTask follows it to completion */
	itest_post("/a2a", admin(), DIAG_SEND("SendMessage", 2, 300,
	    ",\"configuration\":{\"returnImmediately\":true}"), &r);
	id = itest_jstr(r.json, "result.task.id");
	ck_assert_ptr_nonnull(id);
	ck_assert_str_ne(itest_jstr(r.json, "result.task.status.state"),
	    "TASK_STATE_COMPLETED");
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"GetTask\",\"params\":{\"id\":\"%s\"}}", id);
	itest_resp_free(&r);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.status.state"),
	    "TASK_STATE_COMPLETED");
	itest_resp_free(&r);

	/* follow-up message to an existing task lands in its history */
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"ListTasks\",\"params\":{\"pageSize\":1}}", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.tasks")), 1);
	ck_assert_ptr_nonnull(itest_jstr(r.json, "result.nextPageToken"));
	itest_resp_free(&r);
}
END_TEST

/* Blocking sends of tasks that end at once, from 6 threads: the event
 * hub starts each wait either from the sender's snapshot (when no newer
 * version was published) or from a store read (when one was: the task may
 * already be over), and answers every one with the completed task; none
 * may be answered at its deadline (a missed update would wait there). */
struct instant {
	int completed, other;
};

static void *
instant_main(void *arg)
{
	struct instant *in = arg;
	int i;

	for (i = 0; i < 8; i++) {
		struct itest_resp r;
		const char *st;
		itest_post("/a2a", admin(), i % 2 ?
		    DIAG_SEND("message/send", 1, 0, ",\"configuration\":"
		    "{\"blocking\":true}") :
		    DIAG_SEND("SendMessage", 2, 0, ""), &r);
		st = itest_jstr(r.json, i % 2 ? "result.status.state" :
		    "result.task.status.state");
		if (r.status == 200 && st != NULL && (!strcmp(st, "completed")
		    || !strcmp(st, "TASK_STATE_COMPLETED")))
			in->completed++;
		else
			in->other++;
		itest_resp_free(&r);
	}
	return NULL;
}

START_TEST(test_blocking_instant)
{
	unsigned long long snap0, read0, exp0, snap1, read1, exp1;
	struct instant in[6];
	pthread_t th[6];
	int i, completed = 0, other = 0;

	snap0 = itest_metric("instag_agent_blocking_waits_snapshot_total");
	read0 = itest_metric("instag_agent_blocking_waits_read_total");
	exp0 = itest_metric("instag_agent_blocking_waits_expired_total");
	memset(in, 0, sizeof(in));
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, instant_main,
		    &in[i]), 0);
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		completed += in[i].completed;
		other += in[i].other;
	}
	ck_assert_int_eq(other, 0);
	ck_assert_int_eq(completed, 48);
	snap1 = itest_metric("instag_agent_blocking_waits_snapshot_total");
	read1 = itest_metric("instag_agent_blocking_waits_read_total");
	exp1 = itest_metric("instag_agent_blocking_waits_expired_total");
	/* Every send was handed to the hub, by one path or the other. */
	ck_assert_uint_eq((snap1 - snap0) + (read1 - read0), 48);
	ck_assert_uint_eq(exp1, exp0);
}
END_TEST

/* Answers larger than one FastCGI record (65535 bytes) and than
 * libfcgi's 8 KiB buffer arrive whole and parse: a page of twelve tasks
 * that wait for input (each carries the operation catalogue), then one
 * of them, on kept connections, twice. */
START_TEST(test_large_answers)
{
	char *tok = itest_token("big-lister", "tasks:read tasks:write", 600);
	char body[512], id[64] = "";
	struct itest_resp r;
	json_object *tasks;
	int i, round;

	for (i = 0; i < 12; i++) {
		itest_post("/a2a", tok, "{\"jsonrpc\":\"2.0\",\"id\":1,"
		    "\"method\":\"SendMessage\",\"params\":{\"message\":{"
		    "\"messageId\":\"big\",\"role\":\"ROLE_USER\",\"parts\":"
		    "[{\"text\":\"what can you do?\"}]}}}", &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(itest_jstr(r.json, "result.task.status.state"),
		    "TASK_STATE_INPUT_REQUIRED");
		snprintf(id, sizeof(id), "%s",
		    itest_jstr(r.json, "result.task.id"));
		itest_resp_free(&r);
	}
	for (round = 0; round < 2; round++) {
		itest_post("/a2a", tok, "{\"jsonrpc\":\"2.0\",\"id\":2,"
		    "\"method\":\"ListTasks\",\"params\":{\"pageSize\":20}}",
		    &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_gt(r.len, 65535);
		ck_assert_ptr_nonnull(r.json);
		tasks = itest_jget(r.json, "result.tasks");
		ck_assert_ptr_nonnull(tasks);
		ck_assert_uint_eq(json_object_array_length(tasks), 12);
		ck_assert_int_eq(itest_jint(r.json, "result.totalSize"), 12);
		itest_resp_free(&r);
		snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":3,"
		    "\"method\":\"GetTask\",\"params\":{\"id\":\"%s\"}}", id);
		itest_post("/a2a", tok, body, &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_gt(r.len, 8192);
		ck_assert_str_eq(itest_jstr(r.json, "result.id"), id);
		itest_resp_free(&r);
	}
	free(tok);
}
END_TEST

START_TEST(test_envelope)
{
	struct itest_resp r;
	char body[512], *id;

	itest_post("/api/a2a", admin(),
	    "{\"type\":\"agent_discovery_request\","
	    "\"payload\":{\"task_id\":\"d1\"}}", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(itest_jstr(r.json, "type"),
	    "agent_discovery_response");
	ck_assert_str_eq(itest_jstr(r.json, "task_id"), "d1");
	ck_assert_str_eq(itest_jstr(r.json, "agent_card.id"),
	    "instag_runpod_agent");
	itest_resp_free(&r);
	itest_post("/api/a2a", admin(), "{\"type\":\"agent_discovery\","
	    "\"sender\":\"xcs\",\"recipient\":\"instag\",\"payload\":{}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "agents.0.id"),
	    "instag_runpod_agent");
	itest_resp_free(&r);

	itest_post("/api/a2a", admin(),
	    "{\"type\":\"task_request\",\"sender\":"
	    "\"xcs\",\"recipient\":\"instag\",\"task_id\":\"x1\",\"payload\":"
	    "{\"operation\":\"diag.timer\",\"params\":{\"steps\":1,"
	    "\"interval_ms\":10}}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "type"), "task_response");
	ck_assert_str_eq(itest_jstr(r.json, "status"), "working");
	id = strdup(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	snprintf(body, sizeof(body), "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"tasks.get\",\"params\":{\"task_id\":\"%s\"}}}",
	    id);
	itest_post("/api/a2a", admin(), body, &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "completed");
	ck_assert_str_eq(itest_jstr(r.json, "result.state"), "completed");
	ck_assert_int_eq(itest_jint(r.json, "result.result.steps"), 1);
	itest_resp_free(&r);
	free(id);

	itest_post("/api/a2a", admin(),
	    "{\"type\":\"task_request\",\"payload\":{}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "status"), "error");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "error.message"),
	    "operation"));
	itest_resp_free(&r);
	itest_post("/api/a2a", admin(), "{\"type\":\"negotiation\"}", &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "unsupported_type");
	itest_resp_free(&r);
	itest_post("/api/a2a", admin(), "{\"payload\":{}}", &r);
	ck_assert_int_eq(r.status, 400);
	itest_resp_free(&r);
	itest_post("/api/a2a", admin(),
	    "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"tasks.list\",\"params\":{\"page_size\":\"9\"}}}",
	    &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);
}
END_TEST

START_TEST(test_cancel)
{
	char *id = start_diag(admin(), 50, 500);
	char body[512];
	struct itest_resp r;

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"tasks/cancel\",\"params\":{\"id\":\"%s\"}}", id);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.status.state"), "canceled");
	itest_resp_free(&r);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32002);
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 30000), "canceled");
	free(id);
}
END_TEST

/* ---- SSE through nginx -------------------------------------------------- */

struct sse {
	char *buf;
	size_t len;
	long long t[64];	/* arrival time of each event */
	int n;
};

static size_t
sse_write(char *p, size_t sz, size_t nm, void *ud)
{
	struct sse *s = ud;
	size_t k = sz * nm, i;

	s->buf = realloc(s->buf, s->len + k + 1);
	memcpy(s->buf + s->len, p, k);
	s->len += k;
	s->buf[s->len] = '\0';
	for (i = 0; i + 5 < k; i++)
		if (!memcmp(p + i, "data:", 5) && s->n < 64)
			s->t[s->n++] = itest_ms();
	return k;
}

static void
sse_run(const char *body, struct sse *s)
{
	CURL *h = curl_easy_init();
	struct curl_slist *l = NULL;
	char url[512], auth[4200];

	memset(s, 0, sizeof(*s));
	snprintf(url, sizeof(url), "%s/a2a", getenv("AGENT_URL"));
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", admin());
	l = curl_slist_append(l, auth);
	l = curl_slist_append(l, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, getenv("AGENT_CA"));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sse_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_perform(h);
	curl_slist_free_all(l);
	curl_easy_cleanup(h);
}

START_TEST(test_sse_unbuffered)
{
	struct sse s;
	long long t0 = itest_ms();
	char *last;

	sse_run(DIAG_SEND("message/stream", 3, 700, ""), &s);
	/* task, 3 status updates, result artifact, final status */
	ck_assert_msg(s.n >= 5, "only %d events: %s", s.n, s.buf);
	ck_assert_ptr_nonnull(strstr(s.buf, "\"kind\":\"task\""));
	last = strstr(s.buf, "\"final\":true");
	ck_assert_ptr_nonnull(last);
	ck_assert_ptr_nonnull(strstr(s.buf, "artifact-update"));
	/* Unbuffered: events arrive as the task moves (3 x 700 ms), not all
	 * at the end.  Buffering would bunch them within a few ms. */
	ck_assert_msg(s.t[s.n - 1] - s.t[0] >= 1200, "events bunched: %lld ms "
	    "(first after %lld ms)", s.t[s.n - 1] - s.t[0], s.t[0] - t0);
	free(s.buf);

	/* v1.0 streaming wraps events */
	sse_run(DIAG_SEND("SendStreamingMessage", 1, 100, ""), &s);
	ck_assert_ptr_nonnull(strstr(s.buf, "{\"task\":"));
	ck_assert_ptr_nonnull(strstr(s.buf, "\"statusUpdate\""));
	ck_assert_ptr_nonnull(strstr(s.buf, "TASK_STATE_COMPLETED"));
	free(s.buf);
}
END_TEST

START_TEST(test_resubscribe)
{
	char *id = start_diag(admin(), 3, 400);
	char body[512];
	struct sse s;

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":"
	    "\"SubscribeToTask\",\"params\":{\"id\":\"%s\"}}", id);
	sse_run(body, &s);
	ck_assert_msg(strncmp(s.buf, "data: {\"jsonrpc\":\"2.0\",\"id\":9,"
	    "\"result\":{\"task\":", 44) == 0, "first event: %.120s", s.buf);
	ck_assert_ptr_nonnull(strstr(s.buf, "TASK_STATE_COMPLETED"));
	free(s.buf);
	/* Errors of streaming methods come as the stream's one event
	 * (SSE-only clients read nothing else): a finished task, an
	 * unknown one, bad params, in both dialects. */
	{
		static const char *const req[][2] = {
			{ NULL, "-32004" },
			{ "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":"
			  "\"tasks/resubscribe\",\"params\":{\"id\":"
			  "\"00000000-0000-4000-8000-000000000000\"}}",
			  "-32001" },
			{ "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":"
			  "\"SubscribeToTask\",\"params\":{}}", "-32602" },
			{ "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":"
			  "\"message/stream\",\"params\":{\"message\":"
			  "{\"role\":\"user\"}}}", "-32602" },
		};
		struct itest_resp r;
		char want[64];
		size_t k;

		for (k = 0; k < sizeof(req) / sizeof(req[0]); k++) {
			itest_post("/a2a", admin(), req[k][0] ? req[k][0] :
			    body, &r);
			ck_assert_int_eq(r.status, 200);
			ck_assert_msg(strstr(r.headers, "text/event-stream")
			    != NULL, "%zu: %s", k, r.headers);
			snprintf(want, sizeof(want), "\"code\":%s",
			    req[k][1]);
			ck_assert_msg(strncmp(r.body, "data: {\"jsonrpc\":"
			    "\"2.0\",\"id\":9,\"error\":", 36) == 0 &&
			    strstr(r.body, want) != NULL &&
			    strcmp(r.body + strlen(r.body) - 2, "\n\n") == 0,
			    "%zu: %s", k, r.body);
			itest_resp_free(&r);
		}
	}
	free(id);
}
END_TEST

/*
 * An open stream gets a ':' heartbeat comment every sse_heartbeat
 * seconds while its task is quiet (here 1 s, a task that moves once in
 * 6 s): at least two before the task ends.  The stream is the one that
 * starts the task (message/stream), so a slow client cannot shorten it;
 * the first beat is due 1 to 2 s in, the task ends 6 s in.
 */
START_TEST(test_sse_heartbeats)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	char *p;
	struct sse s;
	int beats = 0;

	ck_assert_int_eq(itest_sh("INSTAG_AGENT_SSE_HEARTBEAT=1 "
	    "'%s/tests/harness/agent' '%s' restart >&2", top, dir), 0);
	sse_run("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
	    "\"message/stream\",\"params\":{\"message\":{\"kind\":"
	    "\"message\",\"messageId\":\"hb1\",\"role\":\"user\","
	    "\"parts\":[{\"kind\":\"data\",\"data\":{\"operation\":"
	    "\"diag.timer\",\"params\":{\"steps\":1,\"interval_ms\":"
	    "6000}}}]}}}", &s);
	ck_assert_ptr_nonnull(s.buf);
	for (p = s.buf; (p = strstr(p, "\n:")) != NULL; p += 2)
		beats++;
	ck_assert_msg(beats >= 2, "%d heartbeats: %s", beats, s.buf);
	ck_assert_ptr_nonnull(strstr(s.buf, "\"final\":true"));
	free(s.buf);
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' restart >&2",
	    top, dir), 0);
}
END_TEST

/* ---- FastCGI keep-alive -------------------------------------------------- */

/* Descriptors the agent holds now. */
static int
agent_fds(void)
{
	char path[512], buf[32];
	FILE *f;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/agent.pid", getenv("HARNESS_DIR"));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", atoi(buf));
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 2;
}

/*
 * nginx keeps FastCGI connections open (fastcgi_keep_conn + upstream
 * keepalive): 2,000 requests of every kind (public GETs, authenticated
 * POSTs, refusals whose body the agent never reads, a blocking wait and
 * a stream handed to the hub) travel on a few connections, and no
 * descriptor is left behind.
 */
START_TEST(test_fastcgi_keepalive)
{
	unsigned long long acc0, req0, reu0, acc1, req1, reu1, open1;
	char *big = malloc(200 * 1024 + 1), body[512], *id;
	struct itest_resp r;
	struct sse s;
	int fd0, fd1, i;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 200 * 1024);
	big[200 * 1024] = '\0';
	/* Warm up: the pool fills, the agent opens what it keeps open. */
	for (i = 0; i < 20; i++) {
		itest_request("GET", "/healthz", NULL, NULL, NULL, 0, &r);
		itest_resp_free(&r);
	}
	fd0 = agent_fds();
	acc0 = itest_metric("instag_agent_fastcgi_connections_total");
	req0 = itest_metric("instag_agent_fastcgi_requests_total");
	reu0 = itest_metric("instag_agent_fastcgi_requests_reused_total");
	for (i = 0; i < 2000; i++) {
		if (i % 200 == 7) {
			/* A refusal before the body is read: the agent
			 * drains it or closes the connection, never reads
			 * it as the next request. */
			itest_post("/a2a", NULL, big, &r);
			ck_assert_int_eq(r.status, 401);
		} else if (i % 200 == 11) {
			itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\","
			    "\"id\":1,\"method\":\"tasks/get\",\"params\":"
			    "{\"id\":\"no-such-task\"}}", &r);
			ck_assert_int_eq(r.status, 200);
			ck_assert_ptr_nonnull(itest_jget(r.json, "error"));
		} else {
			itest_request("GET", i % 2 ? "/healthz" :
			    "/.well-known/agent-card.json", NULL, NULL, NULL,
			    0, &r);
			ck_assert_msg(r.status == 200, "request %d: %ld", i,
			    r.status);
		}
		itest_resp_free(&r);
	}
	/* A blocking send (the hub answers it) and a stream. */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"message/send\",\"params\":{\"message\":{"
	    "\"kind\":\"message\",\"messageId\":\"ka1\",\"role\":"
	    "\"user\",\"parts\":[{\"kind\":\"data\",\"data\":{"
	    "\"operation\":\"diag.timer\",\"params\":{\"steps\":1,"
	    "\"interval_ms\":100}}}]},\"configuration\":{\"blocking\":"
	    "true}}}");
	itest_post("/a2a", admin(), body, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(itest_jstr(r.json, "result.status.state"),
	    "completed");
	itest_resp_free(&r);
	id = start_diag(admin(), 2, 200);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":3,"
	    "\"method\":\"tasks/resubscribe\",\"params\":{\"id\":"
	    "\"%s\"}}", id);
	sse_run(body, &s);
	ck_assert_ptr_nonnull(s.buf);
	ck_assert_ptr_nonnull(strstr(s.buf, "\"final\":true"));
	free(s.buf);
	free(id);
	for (i = 0; i < 20; i++) {
		itest_request("GET", "/healthz", NULL, NULL, NULL, 0, &r);
		ck_assert_int_eq(r.status, 200);
		itest_resp_free(&r);
	}

	acc1 = itest_metric("instag_agent_fastcgi_connections_total");
	req1 = itest_metric("instag_agent_fastcgi_requests_total");
	reu1 = itest_metric("instag_agent_fastcgi_requests_reused_total");
	open1 = itest_metric("instag_agent_fastcgi_connections");
	fd1 = agent_fds();
	fprintf(stderr, "keepalive: %llu requests on %llu new connections, "
	    "%llu reused; %llu open; agent fds %d -> %d\n", req1 - req0,
	    acc1 - acc0, reu1 - reu0, open1, fd0, fd1);
	ck_assert_uint_ge(req1 - req0, 2020);
	/* nginx (one worker) keeps at most 32 idle connections; the
	 * refusals, the stream and the blocking wait may each cost one. */
	ck_assert_msg(acc1 - acc0 <= 64, "%llu new connections for %llu "
	    "requests", acc1 - acc0, req1 - req0);
	ck_assert_uint_ge(reu1 - reu0, req1 - req0 - (acc1 - acc0));
	ck_assert_uint_le(open1, 40);
	/* Not one descriptor per request: what is open is the pool. */
	ck_assert_msg(fd1 <= fd0 + 40, "agent fds %d -> %d", fd0, fd1);
	free(big);
}
END_TEST

/* ---- crash and restart -------------------------------------------------- */

START_TEST(test_sigkill_restart)
{
	const char *top = getenv("top_srcdir");
	char *id = start_diag(admin(), 4, 500);
	struct itest_resp r;

	usleep(700000);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' kill >&2",
	    top, getenv("HARNESS_DIR")), 0);
	itest_request("GET", "/healthz", NULL, NULL, NULL, 0, &r);
	ck_assert_int_ne(r.status, 200);
	itest_resp_free(&r);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' start >&2",
	    top, getenv("HARNESS_DIR")), 0);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	free(id);
}
END_TEST

START_TEST(test_sigterm_clean)
{
	const char *top = getenv("top_srcdir");
	char *id = start_diag(admin(), 3, 400);

	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' stop >&2",
	    top, getenv("HARNESS_DIR")), 0);
	ck_assert_int_eq(itest_sh("grep -q '\"event\":\"stopped\"' "
	    "'%s/agent.log'", getenv("HARNESS_DIR")), 0);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' start >&2",
	    top, getenv("HARNESS_DIR")), 0);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	free(id);
}
END_TEST

/* ---- push notifications ------------------------------------------------- */

START_TEST(test_push_notifications)
{
	char file[1024], body[2048], *id;
	FILE *proc;
	int port = itest_push_receiver(file, sizeof(file), 30,
	    &proc);
	struct itest_resp r;
	json_object *rec, *task;

	/* inline config on a v0.3 send: both auth headers arrive */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"p1\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"diag.timer\",\"params\":{"
	    "\"steps\":2,\"interval_ms\":200}}}]},\"configuration\":{"
	    "\"blocking\":false,\"pushNotificationConfig\":{\"url\":"
	    "\"https://127.0.0.1:%d/hook\",\"token\":\"tok-123\","
	    "\"authentication\":{\"schemes\":[\"Bearer\"],\"credentials\":"
	    "\"cred-456\"}}}}}", port);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_msg(itest_jstr(r.json, "result.id") != NULL, "%s", r.body);
	id = strdup(itest_jstr(r.json, "result.id"));
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	rec = itest_wait_record(file, "\\\"state\\\":\\\"completed\\\"", 60000);
	ck_assert_msg(rec != NULL, "no completed notification in %s", file);
	ck_assert_str_eq(itest_jstr(rec, "path"), "/hook");
	ck_assert_str_eq(itest_jstr(rec, "headers.x-a2a-notification-token"),
	    "tok-123");
	ck_assert_str_eq(itest_jstr(rec, "headers.authorization"),
	    "Bearer cred-456");
	ck_assert_str_eq(itest_jstr(rec, "headers.content-type"),
	    "application/json");
	task = json_tokener_parse(itest_jstr(rec, "body"));
	ck_assert_str_eq(itest_jstr(task, "kind"), "task");
	ck_assert_str_eq(itest_jstr(task, "id"), id);
	json_object_put(task);
	json_object_put(rec);

	/* v1.0 config methods: create, get (no credentials echoed), list,
	 * delete (idempotent) */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":"
	    "\"CreateTaskPushNotificationConfig\",\"params\":{"
	    "\"taskId\":\"%s\",\"id\":\"c1\","
	    "\"url\":\"https://127.0.0.1:%d/v1\",\"authentication\":"
	    "{\"scheme\":\"Bearer\",\"credentials\":\"secret-cred\"}}}",
	    id, port);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.id"), "c1");
	ck_assert_ptr_null(strstr(r.body, "secret-cred"));
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
	    "\"ListTaskPushNotificationConfigs\",\"params\":{"
	    "\"taskId\":\"%s\"}}", id);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.configs")), 2);
	ck_assert_ptr_null(strstr(r.body, "secret-cred"));
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":"
	    "\"DeleteTaskPushNotificationConfig\",\"params\":{"
	    "\"taskId\":\"%s\",\"id\":\"c1\"}}", id);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_ptr_nonnull(itest_jget(r.json, "result"));
	itest_resp_free(&r);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_ptr_nonnull(itest_jget(r.json, "result"));
	itest_resp_free(&r);

	/* SSRF filter and https only */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":"
	    "\"tasks/pushNotificationConfig/set\",\"params\":{"
	    "\"taskId\":\"%s\",\"pushNotificationConfig\":{"
	    "\"url\":\"https://169.254.169.254/x\"}}}", id);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":"
	    "\"tasks/pushNotificationConfig/set\",\"params\":{"
	    "\"taskId\":\"%s\",\"pushNotificationConfig\":{"
	    "\"url\":\"http://127.0.0.1:%d/\"}}}", id, port);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":"
	    "\"tasks/pushNotificationConfig/set\",\"params\":{"
	    "\"taskId\":\"%s\",\"pushNotificationConfig\":{"
	    "\"url\":\"https://127.0.0.1:%d/\","
	    "\"token\":\"a\\r\\nX-Evil: 1\"}}}", id, port);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_int_eq(itest_jint(r.json, "error.code"), -32602);
	itest_resp_free(&r);
	free(id);
	itest_sh("pkill -f '%s' >/dev/null 2>&1", file);
	pclose(proc);
}
END_TEST

/*
 * A config set before a restart still gets the task's later updates: the
 * agent looks up push configs only for tasks it knows to have one, and
 * after a restart it knows them from the store.
 */
START_TEST(test_push_after_restart)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	char file[1024], body[2048], *id;
	FILE *proc;
	int port = itest_push_receiver(file, sizeof(file), 90, &proc);
	struct itest_resp r;
	json_object *rec;

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"pr1\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"diag.timer\",\"params\":{"
	    "\"steps\":3,\"interval_ms\":1500}}}]},\"configuration\":{"
	    "\"blocking\":false,\"pushNotificationConfig\":{\"url\":"
	    "\"https://127.0.0.1:%d/restart\"}}}}", port);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_msg(itest_jstr(r.json, "result.id") != NULL, "%s", r.body);
	id = strdup(itest_jstr(r.json, "result.id"));
	itest_resp_free(&r);
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' restart >&2",
	    top, dir), 0);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	rec = itest_wait_record(file, "\\\"state\\\":\\\"completed\\\"",
	    60000);
	ck_assert_msg(rec != NULL, "no completed notification after the "
	    "restart in %s", file);
	ck_assert_str_eq(itest_jstr(rec, "path"), "/restart");
	json_object_put(rec);
	free(id);
	itest_sh("pkill -f '%s' >/dev/null 2>&1", file);
	pclose(proc);
}
END_TEST

/* ---- uploads ------------------------------------------------------------ */

/* PUT /uploads/{name}: nginx buffers the body to a file, the agent adopts
 * it under artifact_dir/uploads/<id>/. */
START_TEST(test_uploads)
{
	static const char *const bad[] = {
		"/uploads/.hidden", "/uploads/-rf", "/uploads/a%2Fb",
		"/uploads/a%20b", "/uploads/", NULL
	};
	size_t len = 3u << 20, i;
	unsigned char *body = malloc(len), dig[EVP_MAX_MD_SIZE];
	char hex[65], path[1024], longname[160];
	const char *dir = getenv("HARNESS_DIR"), *id;
	char *reader = itest_token("reader", "tasks:read", 600);
	unsigned int n = 0;
	struct itest_resp r;
	FILE *fp;

	ck_assert_ptr_nonnull(body);
	fp = fopen("/dev/urandom", "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fread(body, 1, len, fp), len);
	fclose(fp);
	ck_assert(EVP_Digest(body, len, dig, &n, EVP_sha256(), NULL));
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);

	itest_request("PUT", "/uploads/clip.mp4", admin(),
	    "application/octet-stream", (const char *)body, len, &r);
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	id = itest_jstr(r.json, "upload_id");
	ck_assert_ptr_nonnull(id);
	ck_assert_int_eq(strlen(id), 36);
	ck_assert_str_eq(itest_jstr(r.json, "name"), "clip.mp4");
	ck_assert_int_eq(itest_jint(r.json, "size"), (int)len);
	ck_assert_str_eq(itest_jstr(r.json, "sha256"), hex);
	snprintf(path, sizeof(path), "%s/state/artifacts/uploads/%s/data",
	    dir, id);
	ck_assert_int_eq(itest_sh("test \"$(sha256sum <'%s' | cut -c1-64)\" = "
	    "%s", path, hex), 0);
	ck_assert_int_eq(itest_sh("grep -q '\"owner\":\"admin\"' "
	    "'%s/state/artifacts/uploads/%s/meta.json'", dir, id), 0);
	itest_resp_free(&r);
	/* nginx's temporary file is gone */
	ck_assert_int_eq(itest_sh("test -z \"$(find '%s/nginx-tmp/client_body' "
	    "-type f 2>/dev/null)\"", dir), 0);

	/* no token: 401; no instag:run: 403 */
	itest_request("PUT", "/uploads/clip.mp4", NULL,
	    "application/octet-stream", "abc", 3, &r);
	ck_assert_int_eq(r.status, 401);
	ck_assert_ptr_nonnull(strcasestr(r.headers,
	    "WWW-Authenticate: Bearer"));
	itest_resp_free(&r);
	itest_request("PUT", "/uploads/clip.mp4", reader,
	    "application/octet-stream", "abc", 3, &r);
	ck_assert_int_eq(r.status, 403);
	ck_assert_ptr_nonnull(strcasestr(r.headers, "insufficient_scope"));
	itest_resp_free(&r);

	/* PUT only (nginx refuses the rest before it reads a body) */
	itest_request("GET", "/uploads/clip.mp4", admin(), NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_ptr_nonnull(strcasestr(r.headers, "Allow: PUT"));
	ck_assert_str_eq(itest_jstr(r.json, "error"), "method_not_allowed");
	itest_resp_free(&r);
	itest_request("POST", "/uploads/clip.mp4", admin(),
	    "application/octet-stream", "abc", 3, &r);
	ck_assert_int_eq(r.status, 405);
	itest_resp_free(&r);

	/* bad names, an empty body */
	for (i = 0; bad[i] != NULL; i++) {
		itest_request("PUT", bad[i], admin(),
		    "application/octet-stream", "abc", 3, &r);
		ck_assert_msg(r.status == 400, "%s: %ld %s", bad[i], r.status,
		    r.body);
		ck_assert_str_eq(itest_jstr(r.json, "error"), "bad_name");
		itest_resp_free(&r);
	}
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "/uploads/", 9);
	longname[9 + 129] = '\0';
	itest_request("PUT", longname, admin(), "application/octet-stream",
	    "abc", 3, &r);
	ck_assert_int_eq(r.status, 400);
	itest_resp_free(&r);
	itest_request("PUT", "/uploads/empty.wav", admin(),
	    "application/octet-stream", "", 0, &r);
	ck_assert_msg(r.status == 400, "%ld %s", r.status, r.body);
	ck_assert_str_eq(itest_jstr(r.json, "error"), "empty_upload");
	itest_resp_free(&r);
	/* nothing of these was left behind by nginx */
	ck_assert_int_eq(itest_sh("test -z \"$(find '%s/nginx-tmp/client_body' "
	    "-type f 2>/dev/null)\"", dir), 0);
	free(reader);
	free(body);
}
END_TEST

/* ---- concurrency and nginx's rate limit --------------------------------- */

struct hammer {
	int ok, limited, other;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	int i;

	for (i = 0; i < 40; i++) {
		struct itest_resp r;
		itest_post("/api/a2a", admin(), i % 2 ?
		    "{\"type\":\"agent_discovery_request\"}" :
		    "{\"type\":\"task_request\",\"payload\":{\"operation\":"
		    "\"tasks.list\",\"params\":{\"page_size\":2}}}", &r);
		if (r.status == 200)
			h->ok++;
		else if (r.status == 429)
			h->limited++;
		else
			h->other++;
		itest_resp_free(&r);
	}
	return NULL;
}

/* 8 threads x 40 requests at once: every answer is 200 or nginx's 429
 * (burst 200 over 100 r/s), none is a 5xx, and the agent stays up. */
START_TEST(test_concurrent_requests)
{
	pthread_t th[8];
	struct hammer h[8];
	int i, ok = 0, limited = 0, other = 0;
	struct itest_resp r;

	memset(h, 0, sizeof(h));
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_main,
		    &h[i]), 0);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ok += h[i].ok;
		limited += h[i].limited;
		other += h[i].other;
	}
	ck_assert_msg(other == 0, "%d answers neither 200 nor 429", other);
	ck_assert_int_ge(ok, 200);
	ck_assert_int_eq(ok + limited, 320);
	itest_request("GET", "/healthz", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	itest_resp_free(&r);
	/* let the limit's bucket refill (burst 200 at 100 r/s) */
	usleep(2500000);
}
END_TEST

/* No token or key ever reaches the agent's log.  The log must be there
 * and hold the requests of the tests before (log_level = debug): a
 * missing or empty log proves nothing and fails. */
START_TEST(test_no_secret_in_log)
{
	const char *tok = admin(), *key = getenv("RUNPOD_API_KEY");
	char path[600], sig[128];
	char *log = NULL;
	size_t cap = 0, len;
	FILE *fp;

	ck_assert_ptr_nonnull(strrchr(tok, '.'));
	snprintf(sig, sizeof(sig), "%s", strrchr(tok, '.') + 1);
	ck_assert_uint_ge(strlen(sig), 40);	/* an HS256 signature */
	snprintf(path, sizeof(path), "%s/agent.log", getenv("HARNESS_DIR"));
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "cannot open %s", path);
	len = getdelim(&log, &cap, '\0', fp) < 0 ? 0 : strlen(log);
	fclose(fp);
	ck_assert_msg(len > 0, "%s is empty", path);
	/* nginx at info would write a duplicate header line whole: the
	 * shipped level keeps a token sent twice out of its error log
	 * (what status nginx gives such a request is its own business) */
	ck_assert_int_eq(itest_sh("curl -s -o /dev/null --cacert '%s' "
	    "-H 'Authorization: Bearer %s' -H 'Authorization: Bearer %s' "
	    "-H 'Content-Type: application/json' -d '{}' '%s/a2a'",
	    getenv("AGENT_CA"), tok, tok, getenv("AGENT_URL")), 0);
	ck_assert_int_ne(itest_sh("grep -F -q -e '%s' '%s/nginx-error.log' "
	    "'%s/nginx-access.log'", sig, getenv("HARNESS_DIR"),
	    getenv("HARNESS_DIR")), 0);
	/* It did log the authenticated requests of the tests before. */
	ck_assert_msg(strstr(log, "/a2a") != NULL, "no request in %s", path);
	ck_assert_msg(strstr(log, sig) == NULL, "the token's signature is in "
	    "%s", path);
	ck_assert_msg(strstr(log, tok) == NULL, "the token is in %s", path);
	ck_assert_ptr_nonnull(key);
	ck_assert_uint_gt(strlen(key), 0);
	ck_assert_msg(strstr(log, key) == NULL, "the RunPod API key is in %s",
	    path);
	free(log);
}
END_TEST

/* /readyz status, and the reason of check name when not ok (caller
 * frees; NULL when ok). */
static long
readyz(const char *name, char **why)
{
	struct itest_resp r;
	char path[64];
	const char *w;
	long status;

	itest_request("GET", "/readyz", NULL, NULL, NULL, 0, &r);
	status = r.status;
	snprintf(path, sizeof(path), "checks.%s.reason", name);
	w = itest_jstr(r.json, path);
	*why = w ? strdup(w) : NULL;
	itest_resp_free(&r);
	return status;
}

static bool
readyz_is(void *arg)
{
	long want = *(long *)arg;
	char *why = NULL;
	long got = readyz("store", &why);

	free(why);
	return got == want;
}

/*
 * Another process holds the task store's write lock (as sqlite3 would):
 * reads still work, but a write cannot commit, so /readyz turns 503 with
 * the store's reason (after at most the few seconds its result is kept),
 * and comes back once the lock is gone.
 */
START_TEST(test_readyz_store_locked)
{
	char path[600], *why = NULL;
	sqlite3 *db = NULL;
	long want;

	snprintf(path, sizeof(path), "%s/state/tasks.db",
	    getenv("HARNESS_DIR"));
	ck_assert_int_eq(readyz("store", &why), 200);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 60000);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	want = 503;
	ck_assert_msg(tu_poll(readyz_is, &want, TU_HANG_MS),
	    "/readyz stayed ready with the store locked");
	ck_assert_int_eq(readyz("store", &why), 503);
	/* "locked" by the other writer; "busy" when an agent thread was
	 * already waiting for it with the store's lock held. */
	ck_assert_msg(why != NULL && (strstr(why, "locked") != NULL ||
	    strstr(why, "busy") != NULL), "reason %s", why ? why : "(none)");
	free(why);
	why = NULL;
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	want = 200;
	ck_assert_msg(tu_poll(readyz_is, &want, TU_HANG_MS),
	    "/readyz stayed not ready after the store was unlocked");
}
END_TEST

/*
 * A disk too full for the agent's work: with ready_min_free_mb above what
 * the harness's filesystem has free, /readyz is 503 and names the free
 * space for the store and the directories; back at the default it is 200.
 * (Filling a real disk would race every other test on this machine.)
 */
START_TEST(test_readyz_disk_full)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	struct statvfs vs;
	unsigned long long need;
	char *why = NULL;
	long want;

	ck_assert_int_eq(statvfs(dir, &vs), 0);
	need = (unsigned long long)vs.f_bavail * vs.f_frsize /
	    (1024 * 1024) + 65536;
	if (need > 1048576)
		need = 1048576;	/* the key's upper bound */
	ck_assert_msg((unsigned long long)vs.f_bavail * vs.f_frsize /
	    (1024 * 1024) < need, "over 1 TiB free: cannot test");
	ck_assert_int_eq(itest_sh("INSTAG_AGENT_READY_MIN_FREE_MB=%llu "
	    "'%s/tests/harness/agent' '%s' restart >&2", need, top, dir), 0);
	want = 503;
	ck_assert_msg(tu_poll(readyz_is, &want, TU_HANG_MS),
	    "/readyz stayed ready on a full disk");
	ck_assert_int_eq(readyz("store", &why), 503);
	ck_assert_msg(why != NULL && strstr(why, "MiB free") != NULL &&
	    strstr(why, "store_path") != NULL, "reason %s",
	    why ? why : "(none)");
	free(why);
	why = NULL;
	ck_assert_int_eq(readyz("artifact_dir", &why), 503);
	ck_assert_msg(why != NULL && strstr(why, "MiB free") != NULL,
	    "reason %s", why ? why : "(none)");
	free(why);
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' restart >&2",
	    top, dir), 0);
	want = 200;
	ck_assert_msg(tu_poll(readyz_is, &want, TU_HANG_MS),
	    "/readyz stayed not ready after the limit went back");
}
END_TEST

/* A task waiting for input that gets none fails input_expired after
 * input_required_timeout, across a restart too. */
START_TEST(test_input_expires)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char body[512], *id;

	ck_assert_int_eq(itest_sh("INSTAG_AGENT_INPUT_REQUIRED_TIMEOUT=3 "
	    "'%s/tests/harness/agent' '%s' restart >&2", top, dir), 0);
	itest_post("/a2a", admin(), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"message/send\",\"params\":{\"message\":{"
	    "\"kind\":\"message\",\"messageId\":\"e1\",\"role\":\"user\","
	    "\"parts\":[{\"kind\":\"text\",\"text\":\"hi\"}]}}}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.status.state"),
	    "input-required");
	id = strdup(itest_jstr(r.json, "result.id"));
	itest_resp_free(&r);
	/* a crash while it waits: the restarted agent waits out the rest */
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' kill >&2 && "
	    "INSTAG_AGENT_INPUT_REQUIRED_TIMEOUT=3 '%s/tests/harness/agent' "
	    "'%s' start >&2", top, dir, top, dir), 0);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "failed");
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":2,"
	    "\"method\":\"tasks/get\",\"params\":{\"id\":\"%s\"}}", id);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json,
	    "result.status.message.parts.0.text"), "input_expired"));
	itest_resp_free(&r);
	free(id);
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' restart >&2",
	    top, dir), 0);
}
END_TEST

/* The store (with its push tokens) is 0600 whatever the umask. */
START_TEST(test_store_mode)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof(path), "%s/state/tasks.db",
	    getenv("HARNESS_DIR"));
	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	ck_assert_msg((st.st_mode & 0777) == 0600, "%s is %04o", path,
	    (unsigned)(st.st_mode & 0777));
}
END_TEST

static Suite *
http_suite(void)
{
	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("http");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_cards);
	tcase_add_test(tc, test_health_and_metrics);
	tcase_add_test(tc, test_readyz_store_locked);
	tcase_add_test(tc, test_readyz_disk_full);
	tcase_add_test(tc, test_store_mode);
	tcase_add_test(tc, test_input_expires);
	tcase_add_test(tc, test_bad_tokens);
	tcase_add_test(tc, test_scopes_and_owners);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_huge_body);
	tcase_add_test(tc, test_send_both_dialects);
	tcase_add_test(tc, test_blocking_instant);
	tcase_add_test(tc, test_large_answers);
	tcase_add_test(tc, test_envelope);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_sse_unbuffered);
	tcase_add_test(tc, test_resubscribe);
	tcase_add_test(tc, test_sse_heartbeats);
	tcase_add_test(tc, test_fastcgi_keepalive);
	tcase_add_test(tc, test_push_notifications);
	tcase_add_test(tc, test_push_after_restart);
	tcase_add_test(tc, test_sigkill_restart);
	tcase_add_test(tc, test_sigterm_clean);
	tcase_add_test(tc, test_no_secret_in_log);
	tcase_add_test(tc, test_uploads);
	/* Last: it spends nginx's rate-limit burst. */
	tcase_add_test(tc, test_concurrent_requests);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { http_suite }, .setup = itest_harness_up,
    .teardown = itest_harness_down)
