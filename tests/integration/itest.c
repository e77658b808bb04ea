/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/itest.h"
#include "unit/testutil.h"

static char harness_dir[512];
static unsigned char secret[256];
static size_t secret_len;

long long
itest_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
itest_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
itest_pod_pgrep(const char *pattern)
{
	return itest_sh("r=\"$POD_ROOT\"; [ -n \"$r\" ] || exit 2; "
	    "for p in $(pgrep -f '%s'); do "
	    "case \"$(readlink \"/proc/$p/cwd\" 2>/dev/null)\" in "
	    "\"$r\" | \"$r\"/*) exit 0 ;; esac; "
	    "g=$(ps -o pgid= -p \"$p\" | tr -d ' '); "
	    "for f in \"/proc/$p/cmdline\" \"/proc/$g/cmdline\"; do "
	    "tr '\\0' ' ' < \"$f\" 2>/dev/null | grep -qF \"$r/\" && "
	    "exit 0; done; done; exit 1", pattern);
}

int
itest_pod_sh(const char *fmt, ...)
{
	const char *user = getenv("POD_SSH_USER");
	char cmd[4096], *q, *full;
	const char *p;
	size_t n;
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (geteuid() != 0 || user == NULL || strcmp(user, "root") == 0)
		return itest_sh("%s", cmd);
	/* runuser -u USER -- sh -c 'cmd', with cmd's quotes escaped. */
	n = strlen(cmd) * 4 + strlen(user) + 64;
	full = malloc(n);
	if (full == NULL)
		abort();
	q = full + snprintf(full, n, "runuser -u '%s' -- sh -c '", user);
	for (p = cmd; *p != '\0'; p++) {
		if (*p == '\'') {
			memcpy(q, "'\\''", 4);
			q += 4;
		} else
			*q++ = *p;
	}
	*q++ = '\'';
	*q = '\0';
	st = system(full);
	free(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
read_conf_value(const char *path, const char *key)
{
	char line[1024], *v = NULL;
	FILE *fp = fopen(path, "r");
	size_t kl = strlen(key);

	if (fp == NULL)
		return NULL;
	while (fgets(line, sizeof(line), fp)) {
		char *p = line;
		while (*p == ' ')
			p++;
		if (strncmp(p, key, kl) == 0 &&
		    (p[kl] == ' ' || p[kl] == '=')) {
			p = strchr(p, '=') + 1;
			while (*p == ' ')
				p++;
			p[strcspn(p, "\r\n")] = '\0';
			v = strdup(p);
			break;
		}
	}
	fclose(fp);
	return v;
}

void
itest_harness_up(void)
{
	const char *top = getenv("top_srcdir");
	char cmd[1024], line[4096];
	FILE *fp;
	char *keyfile;

	tu_require(access("/usr/sbin/nginx", X_OK) == 0 ||
	    itest_sh("command -v nginx >/dev/null 2>&1") == 0,
	    "nginx not found (install the Debian package 'nginx')");
	tu_require_sshd();
	snprintf(cmd, sizeof(cmd), "%s/tests/harness/start", top ? top : ".");
	fp = popen(cmd, "r");
	if (fp == NULL) {
		perror("popen harness");
		exit(1);
	}
	while (fgets(line, sizeof(line), fp)) {
		char *eq, *k, *v;
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "export ", 7) != 0 ||
		    (eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		k = line + 7;
		v = eq + 1;
		if (*v == '\'' || *v == '"') {
			v++;
			v[strlen(v) - 1] = '\0';
		}
		setenv(k, v, 1);
	}
	if (pclose(fp) != 0 || getenv("HARNESS_DIR") == NULL) {
		fprintf(stderr, "tests/harness/start failed\n");
		exit(1);
	}
	snprintf(harness_dir, sizeof(harness_dir), "%s", getenv("HARNESS_DIR"));
	keyfile = read_conf_value(getenv("AGENT_CONF"), "jwt_key_file");
	if (keyfile != NULL) {
		FILE *kf = fopen(keyfile, "rb");
		if (kf) {
			secret_len = fread(secret, 1, sizeof(secret), kf);
			fclose(kf);
		}
		free(keyfile);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool
itest_harness_down(void)
{
	const char *top = getenv("top_srcdir");

	if (harness_dir[0])
		itest_sh("%s/tests/harness/stop '%s' >&2", top ? top : ".",
		    harness_dir);
	harness_dir[0] = '\0';
	return true;
}

const unsigned char *
itest_secret(size_t *len)
{
	*len = secret_len;
	return secret;
}

static size_t
collect(char *p, size_t sz, size_t n, void *ud)
{
	char **buf = ud;
	size_t old = *buf ? strlen(*buf) : 0;

	*buf = realloc(*buf, old + sz * n + 1);
	memcpy(*buf + old, p, sz * n);
	(*buf)[old + sz * n] = '\0';
	return sz * n;
}

void
itest_request(const char *method, const char *path, const char *token,
    const char *content_type, const char *body, size_t len,
    struct itest_resp *out)
{
	char url[2048];

	snprintf(url, sizeof(url), "%s%s", getenv("AGENT_URL"), path);
	itest_request_url(method, url, getenv("AGENT_CA"), token, content_type,
	    body, len, out);
}

static long request_timeout_s = 60;

void
itest_set_timeout(long seconds)
{
	request_timeout_s = seconds > 0 ? seconds : 60;
}

void
itest_request_url(const char *method, const char *url, const char *ca,
    const char *token, const char *content_type, const char *body,
    size_t len, struct itest_resp *out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char hv[9000];

	memset(out, 0, sizeof(*out));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	if (ca != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, request_timeout_s);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (token) {
		snprintf(hv, sizeof(hv), "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, hv);
	}
	if (content_type) {
		snprintf(hv, sizeof(hv), "Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, hv);
	}
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &out->headers);
	curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (out->body == NULL)
		out->body = strdup("");
	if (out->headers == NULL)
		out->headers = strdup("");
	out->len = strlen(out->body);
	out->json = json_tokener_parse(out->body);
}

void
itest_resp_free(struct itest_resp *r)
{
	free(r->body);
	free(r->headers);
	json_object_put(r->json);
	memset(r, 0, sizeof(*r));
}

void
itest_post(const char *path, const char *token, const char *json,
    struct itest_resp *out)
{
	itest_request("POST", path, token, "application/json", json,
	    strlen(json), out);
}

char *
itest_token(const char *sub, const char *scopes, long ttl)
{
	char cmd[2048], buf[8192];
	FILE *fp;
	size_t n;

	snprintf(cmd, sizeof(cmd), "'%s' token --config '%s' --sub '%s' "
	    "--scope '%s' --ttl %ld", getenv("AGENT_BIN"), getenv("AGENT_CONF"),
	    sub, scopes, ttl);
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	ck_assert_int_eq(pclose(fp), 0);
	buf[strcspn(buf, "\n")] = '\0';
	return strdup(buf);
}

static char *
b64url(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	int i, j = 0;

	for (i = 0; i < n; i++) {
		if (out[i] == '=')
			break;
		out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	out[j] = '\0';
	return out;
}

char *
itest_sign(const char *alg, const char *header_json, const char *payload_json,
    const unsigned char *key, size_t keylen)
{
	char *h = b64url((const unsigned char *)header_json,
	    strlen(header_json));
	char *p = b64url((const unsigned char *)payload_json,
	    strlen(payload_json));
	char *input, *sig = NULL, *tok;
	unsigned char mac[64];
	unsigned int maclen = 0;

	if (key == NULL)
		key = itest_secret(&keylen);
	if (asprintf(&input, "%s.%s", h, p) < 0)
		abort();
	if (alg != NULL) {
		HMAC(strcmp(alg, "HS512") == 0 ? EVP_sha512() :
		    strcmp(alg, "HS384") == 0 ? EVP_sha384() : EVP_sha256(),
		    key, (int)keylen, (unsigned char *)input, strlen(input),
		    mac, &maclen);
		sig = b64url(mac, maclen);
	}
	if (asprintf(&tok, "%s.%s", input, sig ? sig : "") < 0)
		abort();
	free(h);
	free(p);
	free(input);
	free(sig);
	return tok;
}

const char *
itest_wait_task(const char *token, const char *task_id, long timeout_ms)
{
	static char state[64];
	long long end = itest_ms() + timeout_ms;
	char body[512];

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":\"w\","
	    "\"method\":\"tasks/get\",\"params\":{\"id\":\"%s\","
	    "\"historyLength\":0}}", task_id);
	while (itest_ms() < end) {
		struct itest_resp r;
		json_object *res, *st, *s;
		itest_post("/a2a", token, body, &r);
		if (r.json &&
		    json_object_object_get_ex(r.json, "result", &res) &&
		    json_object_object_get_ex(res, "status", &st) &&
		    json_object_object_get_ex(st, "state", &s)) {
			snprintf(state, sizeof(state), "%s",
			    json_object_get_string(s));
			itest_resp_free(&r);
			if (!strcmp(state, "completed") ||
			    !strcmp(state, "failed") ||
			    !strcmp(state, "canceled") ||
			    !strcmp(state, "rejected"))
				return state;
		} else
			itest_resp_free(&r);
		usleep(50000);
	}
	return "timeout";
}

json_object *
itest_jget(json_object *o, const char *path)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o;
	    tok = strtok_r(NULL, ".", &save)) {
		json_object *next = NULL;
		if (json_object_is_type(o, json_type_array))
			next = json_object_array_get_idx(o, (size_t)atoi(tok));
		else if (!json_object_object_get_ex(o, tok, &next))
			return NULL;
		o = next;
	}
	return o;
}

const char *
itest_jstr(json_object *o, const char *path)
{
	json_object *v = itest_jget(o, path);

	return v && json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
}

int
itest_jint(json_object *o, const char *path)
{
	json_object *v = itest_jget(o, path);

	return v ? json_object_get_int(v) : -999999;
}

/* ---- tasks through the envelope, media, the stand-ins' records ---------- */

void
itest_envelope(const char *token, const char *operation, const char *params,
    struct itest_resp *r)
{
	size_t n = strlen(params) + strlen(operation) + 128;
	char *body = malloc(n);

	ck_assert_ptr_nonnull(body);
	snprintf(body, n, "{\"type\":\"task_request\",\"payload\":{"
	    "\"operation\":\"%s\",\"params\":%s}}", operation, params);
	itest_post("/api/a2a", token, body, r);
	free(body);
}

char *
itest_start_task(const char *token, const char *operation,
    const char *params)
{
	struct itest_resp r;
	char *id;

	itest_envelope(token, operation, params, &r);
	ck_assert_msg(r.status == 200 && itest_jstr(r.json, "task_id") &&
	    strcmp(itest_jstr(r.json, "status"), "error") != 0, "%s: %s",
	    operation, r.body);
	id = strdup(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);
	return id;
}

void
itest_get_task(const char *token, const char *id, struct itest_resp *r)
{
	char params[128];

	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	itest_envelope(token, "tasks.get", params, r);
}

char *
itest_upload_media(const char *token, const char *name,
    const char *make_media_args)
{
	char path[512], *body, *id;
	struct itest_resp r;
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/%s", getenv("HARNESS_DIR"), name);
	ck_assert_int_eq(itest_sh("'%s/tests/fake-instag/make-media' %s '%s'",
	    getenv("top_srcdir"), make_media_args, path), 0);
	fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	body = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(body);
	ck_assert_int_eq(fread(body, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	snprintf(path, sizeof(path), "/uploads/%s", name);
	itest_request("PUT", path, token, "application/octet-stream", body,
	    (size_t)n, &r);
	ck_assert_msg(r.status == 201, "PUT %s: %ld %s", name, r.status,
	    r.body);
	id = strdup(itest_jstr(r.json, "upload_id"));
	itest_resp_free(&r);
	free(body);
	return id;
}

int
itest_fake_calls(const char *name)
{
	char path[600], line[8192];
	size_t k = strlen(name);
	FILE *fp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/.fake-state/calls.log",
	    getenv("POD_ROOT"));
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, name, k) == 0 && line[k] == '\t')
			n++;
	fclose(fp);
	return n;
}

int
itest_runpod_live_pods(void)
{
	struct itest_resp r;
	char url[512];
	json_object *pods;
	size_t i;
	int n = 0;

	snprintf(url, sizeof(url), "%s/v2/pods", getenv("RUNPOD_URL"));
	itest_request_url("GET", url, NULL, getenv("RUNPOD_API_KEY"), NULL,
	    NULL, 0, &r);
	ck_assert_msg(r.status == 200, "GET %s: %ld", url, r.status);
	pods = itest_jget(r.json, "pods");
	if (pods == NULL && json_object_is_type(r.json, json_type_array))
		pods = r.json;
	for (i = 0; pods && i < json_object_array_length(pods); i++) {
		const char *st = itest_jstr(json_object_array_get_idx(pods, i),
		    "desiredStatus");
		if (st == NULL || strcmp(st, "TERMINATED") != 0)
			n++;
	}
	itest_resp_free(&r);
	return n;
}

void
itest_wait_fake_calls(const char *name, int n)
{
	for (int i = 0; i < 2400 && itest_fake_calls(name) <= n; i++)
		usleep(50000);	/* a hang guard: 120 s */
	ck_assert_int_gt(itest_fake_calls(name), n);
}

char *
itest_lose_pod_in_train(const char *task_id, const char *stage)
{
	struct itest_resp r;
	char url[512], *pod;

	snprintf(url, sizeof(url), "%s/v2/pods", getenv("RUNPOD_URL"));
	itest_request_url("GET", url, NULL, getenv("RUNPOD_API_KEY"), NULL,
	    NULL, 0, &r);
	ck_assert_msg(r.status == 200 && itest_jstr(r.json, "pods.0.id"),
	    "%s", r.body);
	ck_assert_ptr_null(itest_jget(r.json, "pods.1"));
	pod = strdup(itest_jstr(r.json, "pods.0.id"));
	itest_resp_free(&r);
	snprintf(url, sizeof(url), "%s/v2/pods/%s", getenv("RUNPOD_URL"),
	    pod);
	itest_request_url("DELETE", url, NULL, getenv("RUNPOD_API_KEY"),
	    NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 204);
	itest_resp_free(&r);
	/* the pod's processes die with it: the train job's group */
	ck_assert_int_eq(itest_sh("p=$(pgrep -f '%s-s[0-9]*a-[0-9]*-%s/"
	    "run.sh' | head -n 1) && [ -n \"$p\" ] && kill -s KILL -- "
	    "\"-$p\"", task_id, stage), 0);
	return pod;
}

int
itest_runpod_created(void)
{
	char path[600], line[4096];
	FILE *fp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/fake-runpod.log",
	    getenv("HARNESS_DIR"));
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strstr(line, "\"event\":\"pod_created\"") != NULL)
			n++;
	fclose(fp);
	return n;
}

void
itest_runpod_faults(const char *json)
{
	struct itest_resp r;
	char url[512];

	snprintf(url, sizeof(url), "%s/_fake/faults", getenv("RUNPOD_URL"));
	itest_request_url(json ? "POST" : "DELETE", url, NULL, NULL,
	    "application/json", json, json ? strlen(json) : 0, &r);
	ck_assert_msg(r.status == 200, "faults %s: %ld %s", json ? json : "",
	    r.status, r.body);
	itest_resp_free(&r);
}

void
itest_agent_crash(void)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");

	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' kill >&2 && "
	    "'%s/tests/harness/agent' '%s' start >&2", top, dir, top, dir),
	    0);
}

int
itest_push_receiver(char *out_file, size_t len, long lifetime_s, FILE **proc)
{
	const char *dir = getenv("HARNESS_DIR");
	char cmd[2048];
	int port = 0;

	snprintf(out_file, len, "%s/push-%d.jsonl", dir, (int)getpid());
	snprintf(cmd, sizeof(cmd), "exec python3 '%s/tests/integration/"
	    "push_receiver.py' '%s/tls/server.pem' '%s/tls/server.key' '%s' "
	    "%ld", getenv("top_srcdir"), dir, dir, out_file, lifetime_s);
	*proc = popen(cmd, "r");
	ck_assert_ptr_nonnull(*proc);
	ck_assert_int_eq(fscanf(*proc, "%d", &port), 1);
	ck_assert_int_gt(port, 0);
	return port;
}

json_object *
itest_wait_record(const char *file, const char *needle, long timeout_ms)
{
	long long end = itest_ms() + timeout_ms;
	char line[65536];

	while (itest_ms() < end) {
		FILE *fp = fopen(file, "r");
		while (fp && fgets(line, sizeof(line), fp)) {
			if (strstr(line, needle)) {
				fclose(fp);
				return json_tokener_parse(line);
			}
		}
		if (fp)
			fclose(fp);
		usleep(50000);
	}
	return NULL;
}

void
itest_push_receiver_stop(int port, FILE *proc)
{
	struct itest_resp r;
	char url[128];

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/_quit", port);
	itest_request_url("POST", url, getenv("AGENT_CA"), NULL, NULL, "", 0,
	    &r);
	itest_resp_free(&r);
	pclose(proc);
}

unsigned long long
itest_metric(const char *name)
{
	struct itest_resp r;
	char needle[128];
	const char *p;
	unsigned long long v;

	itest_request("GET", "/metrics", NULL, NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	snprintf(needle, sizeof(needle), "\n%s ", name);
	p = strstr(r.body, needle);
	ck_assert_msg(p != NULL, "no %s in /metrics", name);
	v = strtoull(p + strlen(needle), NULL, 10);
	itest_resp_free(&r);
	return v;
}
