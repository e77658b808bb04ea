/* SPDX-License-Identifier: MIT */
/* runpod: a blocking client for RunPod's REST API v2; see runpod.h. */
#include "auto-config.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/redact.h"
#include "providers/runpod/runpod.h"
#include "lib/strbuf.h"
#include "lib/version.h"
#include "lib/xalloc.h"

#define BASE_URL_MAX 2048
#define ID_MAX 256
#define ERR_TEXT_MAX 2048	/* bytes kept of a title or detail */
#define ERRORS_MAX 20		/* 422 "errors" entries kept */
#define JSON_DEPTH RUNPOD_JSON_DEPTH
#define JSON_STR_MAX RUNPOD_JSON_STR_MAX
#define REDACTED "[redacted]"

#define F_CREATE 0x1		/* the request is a create: see retries */

struct runpod_client {
	CURL *h;
	char *base;		/* base_url without trailing '/' */
	char *key;		/* for scrubbing only; wiped on free */
	char *ca_file;
	bool plain_http;	/* the loopback test hook */
	long connect_timeout_s, timeout_s;
	int max_attempts;
	long backoff_base_ms;
	struct curl_slist *hdr;		/* Authorization, Accept... */
	struct curl_slist *hdr_body;	/* the same plus Content-Type */
	char *user_agent;
};

/* One HTTP answer.  body is NUL-terminated (xmalloc'd) or NULL. */
struct answer {
	long status;
	char *body;
	size_t len;
	bool too_big;
	long retry_after_s;
};

/* ---- errors ------------------------------------------------------------ */

void
runpod_error_clear(struct runpod_error *e)
{
	if (e == NULL)
		return;
	free(e->title);
	free(e->detail);
	memset(e, 0, sizeof(*e));
	e->kind = RP_OK;
}

const char *
runpod_error_kind_name(int kind)
{
	switch (kind) {
	case RP_OK:		return "ok";
	case RP_NETWORK:	return "network";
	case RP_RATE_LIMITED:	return "rate_limited";
	case RP_SERVER:		return "server";
	case RP_NO_CAPACITY:	return "no_capacity";
	case RP_BAD_REQUEST:	return "bad_request";
	case RP_PAYMENT:	return "payment";
	case RP_FORBIDDEN:	return "forbidden";
	case RP_NOT_FOUND:	return "not_found";
	case RP_CONFLICT:	return "conflict";
	case RP_AUTH:		return "auth";
	case RP_PROTOCOL:	return "protocol";
	case RP_POOL_FORBIDDEN:	return "pool_forbidden";
	}
	return "unknown";
}

/* Set e to a local error (no HTTP answer involved). */
static void
set_error(struct runpod_error *e, int kind, int status, const char *title,
    const char *detail)
{
	runpod_error_clear(e);
	e->kind = kind;
	e->http_status = status;
	e->title = xstrdup(title);
	e->detail = detail ? xstrdup(detail) : NULL;
}

/*
 * A copy of s made safe for an error string (caller frees): every
 * occurrence of secret (when non-empty) replaced by REDACTED, control
 * characters by spaces, cut to ERR_TEXT_MAX bytes on a UTF-8 boundary.
 */
static char *
scrub(const char *s, const char *secret)
{
	struct strbuf sb = SB_INIT;
	size_t sl = secret ? strlen(secret) : 0;
	const char *p = s;
	char *out;
	size_t n;

	while (*p != '\0') {
		if (sl > 0 && strncmp(p, secret, sl) == 0) {
			sb_adds(&sb, REDACTED);
			p += sl;
			continue;
		}
		sb_addc(&sb, (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
		p++;
	}
	out = sb_take(&sb);
	n = strlen(out);
	if (n > ERR_TEXT_MAX) {
		n = ERR_TEXT_MAX;
		while (n > 0 && ((unsigned char)out[n] & 0xc0) == 0x80)
			n--;
		out[n] = '\0';
	}
	return out;
}

static int
kind_for_status(long status, bool create)
{
	if (status == 400)
		return create ? RP_NO_CAPACITY : RP_BAD_REQUEST;
	if (status == 401)
		return RP_AUTH;
	if (status == 402)
		return RP_PAYMENT;
	if (status == 403)
		return create ? RP_POOL_FORBIDDEN : RP_FORBIDDEN;
	if (status == 404)
		return RP_NOT_FOUND;
	if (status == 409)
		return RP_CONFLICT;
	if (status == 429)
		return RP_RATE_LIMITED;
	if (status >= 500 && status <= 599)
		return RP_SERVER;
	if (status >= 400 && status <= 499)
		return RP_BAD_REQUEST;
	return RP_PROTOCOL;
}

void
runpod_error_from_answer(long status, const char *body, bool create,
    const char *secret, struct runpod_error *e)
{
	struct strbuf sb = SB_INIT;
	json_object *o = NULL, *errs;
	const char *title = NULL, *detail = NULL;
	char *perr = NULL, *fallback = NULL;
	size_t i, n;

	runpod_error_clear(e);
	e->http_status = (int)status;
	e->kind = kind_for_status(status, create);
	if (body != NULL && body[0] != '\0' &&
	    ju_parse(body, strlen(body), JSON_DEPTH, JSON_STR_MAX, &o,
	    &perr) == 0 && json_object_is_type(o, json_type_object)) {
		title = ju_str(o, "title");
		detail = ju_str(o, "detail");
	}
	free(perr);
	if (title == NULL)
		title = fallback = xasprintf("HTTP %ld", status);
	e->title = scrub(title, secret);
	if (detail != NULL)
		sb_adds(&sb, detail);
	if ((errs = ju_arr(o, "errors")) != NULL) {
		n = json_object_array_length(errs);
		for (i = 0; i < n && i < ERRORS_MAX; i++) {
			json_object *x = json_object_array_get_idx(errs, i);

			if (!json_object_is_type(x, json_type_string))
				continue;
			sb_adds(&sb, sb.len > 0 ? (i == 0 ? ": " : "; ") : "");
			sb_adds(&sb, json_object_get_string(x));
		}
	}
	if (sb.len > 0)
		e->detail = scrub(sb_str(&sb), secret);
	sb_free(&sb);
	free(fallback);
	if (o != NULL)
		json_object_put(o);
}

/* ---- pods -------------------------------------------------------------- */

void
runpod_pod_free(struct runpod_pod *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->id);
	free(p->name);
	free(p->status);
	free(p->gpu_id);
	free(p->public_ip);
	for (i = 0; i < p->nactions; i++)
		free(p->actions[i]);
	free(p->actions);
	if (p->raw != NULL)
		json_object_put(p->raw);
	free(p);
}

void
runpod_pods_free(struct runpod_pod **pods, size_t n)
{
	size_t i;

	if (pods == NULL)
		return;
	for (i = 0; i < n; i++)
		runpod_pod_free(pods[i]);
	free(pods);
}

bool
runpod_pod_can(const struct runpod_pod *p, const char *action)
{
	size_t i;

	for (i = 0; p != NULL && i < p->nactions; i++)
		if (strcmp(p->actions[i], action) == 0)
			return true;
	return false;
}

static char *
dup_member(json_object *o, const char *key)
{
	const char *s = ju_str(o, key);

	return s != NULL ? xstrdup(s) : NULL;
}

/* A numeric member as a double; false when absent or not a number. */
static bool
num_member(json_object *o, const char *key, double *v)
{
	json_object *x = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &x))
		return false;
	if (!json_object_is_type(x, json_type_double) &&
	    !json_object_is_type(x, json_type_int))
		return false;
	*v = json_object_get_double(x);
	return true;
}

struct runpod_pod *
runpod_pod_from_json(json_object *o)
{
	struct runpod_pod *p;
	json_object *gpu, *acts, *rt, *direct;
	const char *host;
	int64_t v;
	double d;
	size_t i, n;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->raw = json_object_get(o);
	p->id = dup_member(o, "id");
	p->name = dup_member(o, "name");
	p->status = dup_member(o, "status");
	if ((gpu = ju_obj(o, "gpu")) != NULL) {
		p->gpu_id = dup_member(gpu, "id");
		if (ju_int(gpu, "count", &v) == 0 && v > 0 && v <= INT_MAX)
			p->gpu_count = (int)v;
	}
	if (num_member(o, "cost", &d) && d >= 0)
		p->cost_per_hr = d;
	if ((acts = ju_arr(o, "actions")) != NULL) {
		n = json_object_array_length(acts);
		p->actions = xcalloc(n + 1, sizeof(*p->actions));
		for (i = 0; i < n; i++) {
			json_object *x = json_object_array_get_idx(acts, i);

			if (json_object_is_type(x, json_type_string))
				p->actions[p->nactions++] =
				    xstrdup(json_object_get_string(x));
		}
	}
	rt = ju_obj(o, "runtime");
	if (num_member(rt, "uptime", &d) && d >= 0 && d < (double)LONG_MAX)
		p->uptime_s = (long)d;
	/* ssh.direct only: the proxy cannot run commands or copy files. */
	direct = ju_obj(ju_obj(o, "ssh"), "direct");
	host = ju_str(direct, "host");
	if (host != NULL && host[0] != '\0' &&
	    ju_int(direct, "port", &v) == 0 && v >= 1 && v <= 65535) {
		p->public_ip = xstrdup(host);
		p->ssh_port = (int)v;
	}
	return p;
}

struct runpod_pod *
runpod_pod_parse(const char *json)
{
	struct runpod_pod *p;
	json_object *o = NULL;
	char *err = NULL;

	if (json == NULL || ju_parse(json, strlen(json), JSON_DEPTH,
	    JSON_STR_MAX, &o, &err) < 0) {
		free(err);
		return NULL;
	}
	p = runpod_pod_from_json(o);
	json_object_put(o);
	return p;
}

/* ---- create body ------------------------------------------------------- */

static bool
has_port(json_object *ports, const char *port)
{
	size_t i, n = json_object_array_length(ports);

	for (i = 0; i < n; i++)
		if (strcmp(json_object_get_string(
		    json_object_array_get_idx(ports, i)), port) == 0)
			return true;
	return false;
}

json_object *
runpod_create_body(const struct runpod_create *req, char **err)
{
	json_object *b = NULL, *gpu, *env, *ports, *mounts, *pers;
	const char *vpath = req && req->volume_path ? req->volume_path :
	    RUNPOD_VOLUME_PATH;
	size_t i;

	*err = NULL;
	if (req == NULL || req->name == NULL || req->name[0] == '\0') {
		*err = xstrdup("runpod: a pod name is required");
		goto fail;
	}
	if (req->image == NULL || req->image[0] == '\0') {
		*err = xstrdup("runpod: an image is required");
		goto fail;
	}
	if (req->gpu_id == NULL || req->gpu_id[0] == '\0') {
		*err = xstrdup("runpod: a GPU type id is required");
		goto fail;
	}
	if (req->cloud != NULL && strcmp(req->cloud, "SECURE") != 0 &&
	    strcmp(req->cloud, "COMMUNITY") != 0) {
		*err = xstrdup("runpod: cloud must be SECURE or COMMUNITY");
		goto fail;
	}
	if (req->volume_gb < 0 || (req->volume_gb > 0 &&
	    req->volume_gb < 10)) {
		*err = xstrdup("runpod: volume_gb must be 0 or at least 10");
		goto fail;
	}
	if (req->volume_gb > 0 && req->network_volume_id != NULL) {
		*err = xstrdup("runpod: a pod has a persistent volume or a "
		    "network volume, not both");
		goto fail;
	}
	if (req->network_volume_id != NULL &&
	    req->network_volume_id[0] == '\0') {
		*err = xstrdup("runpod: an empty network volume id");
		goto fail;
	}
	if (req->env != NULL && !json_object_is_type(req->env,
	    json_type_object)) {
		*err = xstrdup("runpod: env must be a JSON object");
		goto fail;
	}

	b = json_object_new_object();
	json_object_object_add(b, "name", json_object_new_string(req->name));
	json_object_object_add(b, "image",
	    json_object_new_string(req->image));
	gpu = json_object_new_object();
	json_object_object_add(gpu, "id", json_object_new_string(req->gpu_id));
	json_object_object_add(gpu, "count",
	    json_object_new_int(req->gpu_count > 0 ? req->gpu_count : 1));
	json_object_object_add(b, "gpu", gpu);
	if (req->cloud != NULL)
		json_object_object_add(b, "cloud",
		    json_object_new_string(req->cloud));
	if (req->disk_gb > 0)
		json_object_object_add(b, "disk",
		    json_object_new_int(req->disk_gb));

	env = json_object_new_object();
	json_object_object_add(b, "env", env);
	if (req->env != NULL) {
		json_object_object_foreach(req->env, k, v) {
			if (!json_object_is_type(v, json_type_string)) {
				*err = xasprintf("runpod: env %.64s is not "
				    "a string", k);
				goto fail;
			}
			json_object_object_add(env, k,
			    json_object_new_string(json_object_get_string(v)));
		}
	}
	if (req->public_key != NULL && req->public_key[0] != '\0')
		json_object_object_add(env, "PUBLIC_KEY",
		    json_object_new_string(req->public_key));

	ports = json_object_new_array();
	json_object_object_add(b, "ports", ports);
	json_object_array_add(ports, json_object_new_string("22/tcp"));
	for (i = 0; req->ports != NULL && i < req->nports; i++) {
		if (req->ports[i] == NULL || req->ports[i][0] == '\0' ||
		    has_port(ports, req->ports[i]))
			continue;
		json_object_array_add(ports,
		    json_object_new_string(req->ports[i]));
	}

	if (req->volume_gb > 0) {
		mounts = json_object_new_object();
		pers = json_object_new_object();
		json_object_object_add(pers, "size",
		    json_object_new_int(req->volume_gb));
		json_object_object_add(pers, "path",
		    json_object_new_string(vpath));
		json_object_object_add(mounts, "persistent", pers);
		json_object_object_add(b, "mounts", mounts);
	} else if (req->network_volume_id != NULL) {
		json_object *net = json_object_new_array();

		mounts = json_object_new_object();
		pers = json_object_new_object();
		json_object_object_add(pers, "volumeId",
		    json_object_new_string(req->network_volume_id));
		json_object_object_add(pers, "path",
		    json_object_new_string(vpath));
		json_object_array_add(net, pers);
		json_object_object_add(mounts, "network", net);
		json_object_object_add(b, "mounts", mounts);
	}
	if (req->data_center_id != NULL) {
		json_object *dcs = json_object_new_array();

		json_object_array_add(dcs,
		    json_object_new_string(req->data_center_id));
		json_object_object_add(b, "dataCenterIds", dcs);
	}
	return b;

fail:
	if (b != NULL)
		json_object_put(b);
	return NULL;
}

/* ---- client ------------------------------------------------------------ */

/* True for the loopback test hook: http://127.0.0.1 or http://[::1]
 * followed by the end, a port or a path. */
static bool
loopback_http(const char *u)
{
	static const char *const pfx[] = { "http://127.0.0.1",
	    "http://[::1]" };
	size_t i, n;

	for (i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++) {
		n = strlen(pfx[i]);
		if (strncmp(u, pfx[i], n) == 0 && (u[n] == '\0' ||
		    u[n] == ':' || u[n] == '/'))
			return true;
	}
	return false;
}

static int
check_base_url(const char *u, bool *plain, char **err)
{
	const char *host, *p;

	if (u == NULL || u[0] == '\0') {
		*err = xstrdup("runpod: base_url is required");
		return -1;
	}
	if (strlen(u) > BASE_URL_MAX) {
		*err = xstrdup("runpod: base_url is too long");
		return -1;
	}
	for (p = u; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '?' || *p == '#' || *p == '@' || *p == '\\') {
			*err = xstrdup("runpod: base_url has a character that "
			    "is not allowed (space, control, non-ASCII, ?, "
			    "#, @, \\)");
			return -1;
		}
	}
	*plain = false;
	if (strncmp(u, "https://", 8) == 0) {
		host = u + 8;
	} else if (loopback_http(u)) {
		*plain = true;
		host = u + 7;
	} else {
		*err = xstrdup("runpod: base_url must be https:// (plain http "
		    "only for http://127.0.0.1 or http://[::1])");
		return -1;
	}
	if (host[0] == '\0' || host[0] == '/' || host[0] == ':') {
		*err = xstrdup("runpod: base_url has no host");
		return -1;
	}
	return 0;
}

/* curl_slist_append, fatal on OOM like the x* wrappers; returns the list. */
static struct curl_slist *
slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = curl_slist_append(l, s);

	if (n == NULL) {
		log_msg(LOG_ERROR, "out_of_memory", "curl_slist_append");
		abort();
	}
	return n;
}

int
runpod_client_new(const struct runpod_opts *opts, struct runpod_client **out,
    char **err)
{
	struct runpod_client *c = NULL;
	const char *p;
	char *line = NULL;
	bool plain = false;
	size_t n;
	int rc = -1;

	*out = NULL;
	*err = NULL;
	if (opts == NULL) {
		*err = xstrdup("runpod: no options");
		goto cleanup;
	}
	if (check_base_url(opts->base_url, &plain, err) < 0)
		goto cleanup;
	if (opts->api_key == NULL || opts->api_key[0] == '\0') {
		*err = xstrdup("runpod: the API key is empty");
		goto cleanup;
	}
	for (p = opts->api_key; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			*err = xstrdup("runpod: the API key has a space, "
			    "control or non-ASCII character");
			goto cleanup;
		}
	}
	if (strstr(opts->base_url, opts->api_key) != NULL) {
		*err = xstrdup("runpod: base_url contains the API key");
		goto cleanup;
	}

	c = xcalloc(1, sizeof(*c));
	c->base = xstrdup(opts->base_url);
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	c->key = xstrdup(opts->api_key);
	c->ca_file = opts->ca_file ? xstrdup(opts->ca_file) : NULL;
	c->plain_http = plain;
	c->connect_timeout_s = opts->connect_timeout_s > 0 ?
	    opts->connect_timeout_s : 10;
	c->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 60;
	c->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 1;
	c->backoff_base_ms = opts->backoff_base_ms > 0 ?
	    opts->backoff_base_ms : 500;
	c->user_agent = xasprintf("instag-agent/%s", version_string());

	if ((c->h = curl_easy_init()) == NULL) {
		*err = xstrdup("runpod: curl_easy_init failed");
		goto cleanup;
	}
	line = xasprintf("Authorization: Bearer %s", c->key);
	c->hdr = slist_add(c->hdr, line);
	c->hdr = slist_add(c->hdr, "Accept: application/json, "
	    "application/problem+json");
	c->hdr = slist_add(c->hdr, "Expect:");
	c->hdr_body = slist_add(c->hdr_body, line);
	c->hdr_body = slist_add(c->hdr_body, "Accept: application/json, "
	    "application/problem+json");
	c->hdr_body = slist_add(c->hdr_body, "Expect:");
	c->hdr_body = slist_add(c->hdr_body, "Content-Type: application/json");
	*out = c;
	c = NULL;
	rc = 0;

cleanup:
	if (line != NULL) {
		explicit_bzero(line, strlen(line));
		free(line);
	}
	runpod_client_free(c);
	return rc;
}

/* Wipe every header line (the Authorization one holds the key), free. */
static void
headers_free(struct curl_slist *l)
{
	struct curl_slist *i;

	for (i = l; i != NULL; i = i->next)
		if (i->data != NULL)
			explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

void
runpod_client_free(struct runpod_client *c)
{
	if (c == NULL)
		return;
	if (c->h != NULL)
		curl_easy_cleanup(c->h);
	headers_free(c->hdr);
	headers_free(c->hdr_body);
	if (c->key != NULL) {
		explicit_bzero(c->key, strlen(c->key));
		free(c->key);
	}
	free(c->base);
	free(c->ca_file);
	free(c->user_agent);
	free(c);
}

/* ---- transport --------------------------------------------------------- */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct answer *a = ud;
	size_t add = size * nmemb;

	if (a->len + add > RUNPOD_BODY_MAX) {
		a->too_big = true;
		return 0;
	}
	a->body = xrealloc(a->body, a->len + add + 1);
	memcpy(a->body + a->len, ptr, add);
	a->len += add;
	a->body[a->len] = '\0';
	return add;
}

static void
answer_free(struct answer *a)
{
	free(a->body);
	memset(a, 0, sizeof(*a));
}

/* The options of every exchange: URL, transport, TLS, timeouts. */
static void
base_opts(struct runpod_client *c, const char *url)
{
	const char *proto = c->plain_http ? "http" : "https";
	CURL *h = c->h;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, proto);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, proto);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
}

/* One exchange.  *a receives the status and body. */
static CURLcode
perform(struct runpod_client *c, const char *method, const char *url,
    const char *body, struct answer *a)
{
	curl_off_t ra = 0;
	CURLcode cc;
	CURL *h = c->h;

	memset(a, 0, sizeof(*a));
	base_opts(c, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdr_body);
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)strlen(body));
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdr);
		if (strcmp(method, "GET") == 0)
			curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra > 0)
		a->retry_after_s = ra > LONG_MAX ? LONG_MAX : (long)ra;
	/* Drop the handle's reference to the caller's body and headers. */
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	return cc;
}

static void
sleep_ms(long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Jittered exponential backoff before attempt n+1 (n >= 1): a random
 * point in the upper half of base * 2^(n-1), capped. */
static long
retry_backoff_ms(const struct runpod_client *c, int n)
{
	return (long)backoff_ms(c->backoff_base_ms, RUNPOD_BACKOFF_MAX_MS, n);
}

/* Errors where the request surely was not sent: safe to retry a create. */
static bool
not_sent(CURLcode cc)
{
	return cc == CURLE_COULDNT_RESOLVE_HOST ||
	    cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_COULDNT_CONNECT;
}

/*
 * One API call with the retries of runpod.h.  path starts with "/v2/".
 * On a 2xx: 0 and *json the parsed body (a new reference, caller puts;
 * NULL for an empty body), *status the status.  Otherwise -1 with *e.
 */
static int
rp_call(struct runpod_client *c, const char *method, const char *path,
    const char *body, int flags, long *status, json_object **json,
    struct runpod_error *e)
{
	struct answer a = { 0, NULL, 0, false, 0 };
	bool create = (flags & F_CREATE) != 0, retry;
	char *url, *perr = NULL, num[32];
	long wait;
	CURLcode cc;
	int attempt, rc = -1;

	*json = NULL;
	*status = 0;
	runpod_error_clear(e);
	url = xasprintf("%s%s", c->base, path);
	for (attempt = 1;; attempt++) {
		answer_free(&a);
		cc = perform(c, method, url, body, &a);
		snprintf(num, sizeof(num), "%ld", cc == CURLE_OK ? a.status :
		    0L);
		log_kv(LOG_DEBUG, "runpod_request", "RunPod API call",
		    "method", method, "path", path, "status", num, NULL);
		if (a.too_big) {
			set_error(e, RP_PROTOCOL, (int)a.status,
			    "answer too large", NULL);
			goto cleanup;
		}
		if (cc == CURLE_OK && a.status >= 200 && a.status <= 299) {
			*status = a.status;
			if (a.len > 0 && ju_parse(a.body, a.len, JSON_DEPTH,
			    JSON_STR_MAX, json, &perr) < 0) {
				set_error(e, RP_PROTOCOL, (int)a.status,
				    "answer is not valid JSON", perr);
				goto cleanup;
			}
			rc = 0;
			goto cleanup;
		}
		if (cc != CURLE_OK) {
			/* curl_easy_strerror: generic text, no URL or
			 * header. */
			set_error(e, RP_NETWORK, 0, "network error",
			    curl_easy_strerror(cc));
			retry = !create || not_sent(cc);
			wait = retry_backoff_ms(c, attempt);
		} else {
			runpod_error_from_answer(a.status, a.body, create,
			    c->key, e);
			e->retry_after_s = a.retry_after_s;
			if (a.status == 429) {
				retry = true;
				wait = a.retry_after_s > 0 ? (a.retry_after_s >
				    RUNPOD_RETRY_AFTER_MAX_S ?
				    RUNPOD_RETRY_AFTER_MAX_S :
				    a.retry_after_s) * 1000 :
				    retry_backoff_ms(c, attempt);
			} else if (a.status >= 500 && a.status <= 599) {
				retry = !create;
				wait = retry_backoff_ms(c, attempt);
			} else {
				retry = false;
				wait = 0;
			}
		}
		if (!retry || attempt >= c->max_attempts)
			goto cleanup;
		{
			char att[16], ms[32];

			snprintf(att, sizeof(att), "%d", attempt);
			snprintf(ms, sizeof(ms), "%ld", wait);
			log_kv(LOG_INFO, "runpod_retry", "retrying RunPod "
			    "API call", "method", method, "path", path,
			    "kind", runpod_error_kind_name(e->kind), "status",
			    num, "attempt", att, "wait_ms", ms, NULL);
		}
		sleep_ms(wait);
	}

cleanup:
	free(perr);
	answer_free(&a);
	free(url);
	return rc;
}

int
runpod_call(struct runpod_client *c, const char *method, const char *path,
    const char *body, bool create, long *status, json_object **json,
    struct runpod_error *e)
{
	*json = NULL;
	*status = 0;
	if (path == NULL || strncmp(path, "/v2/", 4) != 0) {
		runpod_error_clear(e);
		set_error(e, RP_BAD_REQUEST, 0, "invalid API path", NULL);
		return -1;
	}
	return rp_call(c, method, path, body, create ? F_CREATE : 0, status,
	    json, e);
}

char *
runpod_escape(struct runpod_client *c, const char *s)
{
	char *esc = curl_easy_escape(c->h, s, 0), *out;

	if (esc == NULL) {
		log_msg(LOG_ERROR, "out_of_memory", "curl_easy_escape");
		abort();
	}
	out = xstrdup(esc);
	curl_free(esc);
	return out;
}

/* "/v2/pods/<escaped id><suffix>" (caller frees), or NULL with *e set. */
static char *
pod_path(struct runpod_client *c, const char *id, const char *suffix,
    struct runpod_error *e)
{
	char *esc, *path;

	runpod_error_clear(e);
	if (id == NULL || id[0] == '\0' || strlen(id) > ID_MAX) {
		set_error(e, RP_BAD_REQUEST, 0, "invalid pod id", NULL);
		return NULL;
	}
	if ((esc = curl_easy_escape(c->h, id, 0)) == NULL) {
		log_msg(LOG_ERROR, "out_of_memory", "curl_easy_escape");
		abort();
	}
	path = xasprintf("/v2/pods/%s%s", esc, suffix);
	curl_free(esc);
	return path;
}

/* *out from a Pod answer; the pod must have an id. */
static int
pod_answer(json_object *j, struct runpod_pod **out, struct runpod_error *e,
    long status)
{
	struct runpod_pod *p = runpod_pod_from_json(j);

	if (p == NULL || p->id == NULL) {
		runpod_pod_free(p);
		set_error(e, RP_PROTOCOL, (int)status, "answer is not a pod",
		    NULL);
		return -1;
	}
	*out = p;
	return 0;
}

/* ---- calls ------------------------------------------------------------- */

int
runpod_create_pod(struct runpod_client *c, const struct runpod_create *req,
    struct runpod_pod **out, struct runpod_error *e)
{
	json_object *b = NULL, *j = NULL;
	char *err = NULL, *text = NULL;
	long status;
	int rc = -1;

	*out = NULL;
	runpod_error_clear(e);
	if ((b = runpod_create_body(req, &err)) == NULL) {
		set_error(e, RP_BAD_REQUEST, 0, "invalid create request", err);
		goto cleanup;
	}
	text = ju_dump(b);
	if (rp_call(c, "POST", "/v2/pods", text, F_CREATE, &status, &j,
	    e) < 0)
		goto cleanup;
	rc = pod_answer(j, out, e, status);

cleanup:
	free(err);
	free(text);
	if (b != NULL)
		json_object_put(b);
	if (j != NULL)
		json_object_put(j);
	return rc;
}

int
runpod_get_pod(struct runpod_client *c, const char *id,
    struct runpod_pod **out, struct runpod_error *e)
{
	json_object *j = NULL;
	char *path;
	long status;
	int rc = -1;

	*out = NULL;
	runpod_error_clear(e);
	if ((path = pod_path(c, id, "", e)) == NULL)
		return -1;
	if (rp_call(c, "GET", path, NULL, 0, &status, &j, e) < 0)
		goto cleanup;
	rc = pod_answer(j, out, e, status);

cleanup:
	free(path);
	if (j != NULL)
		json_object_put(j);
	return rc;
}

int
runpod_list_pods(struct runpod_client *c, struct runpod_pod ***out,
    size_t *n, struct runpod_error *e)
{
	struct runpod_pod **pods = NULL, *p;
	json_object *j = NULL, *arr;
	size_t i, len, k = 0;
	long status;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (rp_call(c, "GET", "/v2/pods", NULL, 0, &status, &j, e) < 0)
		goto cleanup;
	if ((arr = ju_arr(j, "pods")) == NULL) {
		set_error(e, RP_PROTOCOL, (int)status,
		    "answer has no \"pods\" array", NULL);
		goto cleanup;
	}
	len = json_object_array_length(arr);
	if (len > 0)
		pods = xcalloc(len, sizeof(*pods));
	for (i = 0; i < len; i++) {
		p = runpod_pod_from_json(json_object_array_get_idx(arr, i));
		if (p != NULL)
			pods[k++] = p;
	}
	*out = pods;
	*n = k;
	rc = 0;

cleanup:
	if (j != NULL)
		json_object_put(j);
	return rc;
}

int
runpod_find_pod_by_name(struct runpod_client *c, const char *name,
    struct runpod_pod **out, size_t *nmatch, struct runpod_error *e)
{
	struct runpod_pod **pods = NULL;
	size_t i, n = 0, m = 0;

	*out = NULL;
	if (nmatch != NULL)
		*nmatch = 0;
	if (name == NULL || name[0] == '\0') {
		set_error(e, RP_BAD_REQUEST, 0, "a pod name is required",
		    NULL);
		return -1;
	}
	if (runpod_list_pods(c, &pods, &n, e) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (pods[i]->name == NULL || strcmp(pods[i]->name, name) != 0)
			continue;
		if (m++ == 0) {
			*out = pods[i];
			pods[i] = NULL;
		}
	}
	if (m > 1)
		log_kv(LOG_WARN, "runpod_duplicate_pods", "several pods have "
		    "the same name", "name", name, NULL);
	if (nmatch != NULL)
		*nmatch = m;
	runpod_pods_free(pods, n);
	return 0;
}

int
runpod_pod_action(struct runpod_client *c, const char *id,
    const char *action, struct runpod_pod **out, struct runpod_error *e)
{
	static const char *const valid[] = { "start", "stop", "restart",
	    "terminate" };
	json_object *j = NULL;
	char *path = NULL, *body = NULL;
	long status;
	size_t i;
	int rc = -1;

	*out = NULL;
	runpod_error_clear(e);
	for (i = 0; action != NULL && i < sizeof(valid) / sizeof(valid[0]);
	    i++)
		if (strcmp(action, valid[i]) == 0)
			break;
	if (action == NULL || i == sizeof(valid) / sizeof(valid[0])) {
		set_error(e, RP_BAD_REQUEST, 0, "invalid pod action", NULL);
		return -1;
	}
	if ((path = pod_path(c, id, "/action", e)) == NULL)
		return -1;
	body = xasprintf("{\"action\":\"%s\"}", action);
	if (rp_call(c, "POST", path, body, 0, &status, &j, e) < 0)
		goto cleanup;
	if (status == 204 || j == NULL)
		rc = 0;
	else
		rc = pod_answer(j, out, e, status);

cleanup:
	free(path);
	free(body);
	if (j != NULL)
		json_object_put(j);
	return rc;
}

int
runpod_delete_pod(struct runpod_client *c, const char *id,
    struct runpod_error *e)
{
	json_object *j = NULL;
	char *path;
	long status;
	int rc;

	runpod_error_clear(e);
	if ((path = pod_path(c, id, "", e)) == NULL)
		return -1;
	rc = rp_call(c, "DELETE", path, NULL, 0, &status, &j, e);
	free(path);
	if (j != NULL)
		json_object_put(j);
	return rc;
}

int
runpod_list_gpu_types(struct runpod_client *c, bool with_availability,
    json_object **out, struct runpod_error *e)
{
	json_object *j = NULL, *arr;
	long status;
	int rc = -1;

	*out = NULL;
	if (rp_call(c, "GET", with_availability ?
	    "/v2/catalog/gpus?include=AVAILABILITY&product=POD" :
	    "/v2/catalog/gpus", NULL, 0, &status, &j, e) < 0)
		goto cleanup;
	if ((arr = ju_arr(j, "gpus")) == NULL) {
		set_error(e, RP_PROTOCOL, (int)status,
		    "answer has no \"gpus\" array", NULL);
		goto cleanup;
	}
	*out = json_object_get(arr);
	rc = 0;

cleanup:
	if (j != NULL)
		json_object_put(j);
	return rc;
}

/* ---- streams ----------------------------------------------------------- */

char *
runpod_pod_path(struct runpod_client *c, const char *id, const char *suffix,
    struct runpod_error *e)
{
	return pod_path(c, id, suffix, e);
}

char *
runpod_scrub_text(const struct runpod_client *c, const char *text,
    size_t len)
{
	return redact_text(text, len, c->key);
}

struct stream {
	CURL *h;
	bool (*on_data)(const char *, size_t, void *);
	void *arg;
	struct answer err;	/* the body of an answer other than 200 */
	long status;		/* 0 until known */
	int64_t last_ms;	/* monotonic ms of the last byte (or of
				   the 200) */
	long idle_ms;
	bool enough, quiet;
};

static long
stream_status(struct stream *s)
{
	if (s->status == 0)
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
	return s->status;
}

static size_t
on_stream(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct stream *s = ud;
	size_t n = size * nmemb;

	if (stream_status(s) != 200)
		return on_body(ptr, size, nmemb, &s->err);
	s->last_ms = clock_mono_ms();
	if (!s->on_data(ptr, n, s->arg)) {
		s->enough = true;
		return 0;	/* abort: CURLE_WRITE_ERROR */
	}
	return n;
}

static int
on_stream_progress(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
    curl_off_t uln)
{
	struct stream *s = ud;
	int64_t now = clock_mono_ms();

	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	if (s->status == 0) {
		if (stream_status(s) == 200)
			s->last_ms = now;	/* the quiet counts from here */
		else
			s->status = 0;	/* not known yet, or not streamed */
		return 0;
	}
	if (s->status == 200 && now - s->last_ms >= s->idle_ms) {
		s->quiet = true;
		return 1;	/* abort: CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

int
runpod_stream_get(struct runpod_client *c, const char *path,
    const char *header, long max_ms, long idle_ms,
    bool (*on_data)(const char *buf, size_t len, void *arg), void *arg,
    enum runpod_stream_end *end, struct runpod_error *e)
{
	struct stream s;
	struct curl_slist *hdr = NULL;
	char *url = NULL, *line = NULL, num[32];
	curl_off_t ra = 0;
	CURLcode cc;
	int rc = -1;

	runpod_error_clear(e);
	*end = RP_STREAM_CLOSED;
	if (path == NULL || strncmp(path, "/v2/", 4) != 0 || (header != NULL &&
	    strpbrk(header, "\r\n") != NULL)) {
		set_error(e, RP_BAD_REQUEST, 0, "invalid stream request", NULL);
		return -1;
	}
	memset(&s, 0, sizeof(s));
	s.h = c->h;
	s.on_data = on_data;
	s.arg = arg;
	s.idle_ms = idle_ms > 0 ? idle_ms : 1000;
	s.last_ms = clock_mono_ms();
	url = xasprintf("%s%s", c->base, path);
	line = xasprintf("Authorization: Bearer %s", c->key);
	hdr = slist_add(hdr, line);
	hdr = slist_add(hdr, "Accept: text/event-stream, "
	    "application/problem+json");
	hdr = slist_add(hdr, "Cache-Control: no-cache");
	if (header != NULL)
		hdr = slist_add(hdr, header);
	base_opts(c, url);
	curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, max_ms > 0 ? max_ms :
	    1000L);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
	curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, &s);
	cc = curl_easy_perform(c->h);
	stream_status(&s);
	if (curl_easy_getinfo(c->h, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK)
		ra = 0;
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
	snprintf(num, sizeof(num), "%ld", s.status);
	log_kv(LOG_DEBUG, "runpod_request", "RunPod API stream", "method",
	    "GET", "path", path, "status", num, NULL);
	if (s.status == 200) {
		if (s.enough)
			*end = RP_STREAM_LIMIT;
		else if (s.quiet)
			*end = RP_STREAM_QUIET;
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			*end = RP_STREAM_TIME;
		else if (cc != CURLE_OK && cc != CURLE_PARTIAL_FILE) {
			set_error(e, RP_NETWORK, 0, "network error",
			    curl_easy_strerror(cc));
			goto cleanup;
		}
		rc = 0;
		goto cleanup;
	}
	if (s.err.too_big) {
		set_error(e, RP_PROTOCOL, (int)s.status, "answer too large",
		    NULL);
	} else if (cc != CURLE_OK || s.status == 0) {
		set_error(e, RP_NETWORK, 0, "network error",
		    curl_easy_strerror(cc));
	} else if (s.status >= 200 && s.status <= 299) {
		set_error(e, RP_PROTOCOL, (int)s.status, "unexpected answer "
		    "to a stream", NULL);
	} else {
		runpod_error_from_answer(s.status, s.err.body, false, c->key,
		    e);
		e->retry_after_s = ra > 0 ? (ra > LONG_MAX ? LONG_MAX :
		    (long)ra) : 0;
	}

cleanup:
	answer_free(&s.err);
	headers_free(hdr);
	if (line != NULL) {
		explicit_bzero(line, strlen(line));
		free(line);
	}
	free(url);
	return rc;
}

int
runpod_pod_billing(struct runpod_client *c, const char *pod_id,
    int64_t start_ms, json_object **out, struct runpod_error *e)
{
	json_object *j = NULL;
	char ts[40], *esc = NULL, *path;
	long status;
	int rc = -1;

	*out = NULL;
	runpod_error_clear(e);
	if (pod_id != NULL && (pod_id[0] == '\0' ||
	    strlen(pod_id) > ID_MAX)) {
		set_error(e, RP_BAD_REQUEST, 0, "invalid pod id", NULL);
		return -1;
	}
	if (pod_id != NULL &&
	    (esc = curl_easy_escape(c->h, pod_id, 0)) == NULL) {
		log_msg(LOG_ERROR, "out_of_memory", "curl_easy_escape");
		abort();
	}
	/* "2026-12-06T16:09:23.000Z": the colons escaped for the query. */
	ju_iso8601(start_ms, ts, sizeof(ts));
	path = xasprintf("/v2/billing/pods?bucketSize=day&startTime=%.13s"
	    "%%3A%.2s%%3A%s%s%s", ts, ts + 14, ts + 17, esc ? "&podId=" : "",
	    esc ? esc : "");
	curl_free(esc);
	if (rp_call(c, "GET", path, NULL, 0, &status, &j, e) < 0)
		goto cleanup;
	if (ju_arr(j, "records") == NULL) {
		set_error(e, RP_PROTOCOL, (int)status,
		    "answer has no \"records\" array", NULL);
		goto cleanup;
	}
	*out = json_object_get(j);
	rc = 0;

cleanup:
	free(path);
	if (j != NULL)
		json_object_put(j);
	return rc;
}
