/* SPDX-License-Identifier: MIT */
/*
 * router: one request to its handler (see router.h).
 */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "a2a/a2a.h"
#include "a2a/card.h"
#include "a2a/envelope.h"
#include "http/auth.h"
#include "lib/strbuf.h"
#include "server/files.h"
#include "server/ready.h"
#include "server/router.h"
#include "store/store.h"

static struct {
	const struct config *cfg;
	struct auth_ctx *auth;
	struct store *store;
} R;

void
router_init(const struct config *cfg, struct auth_ctx *auth,
    struct store *st)
{
	R.cfg = cfg;
	R.auth = auth;
	R.store = st;
	ready_init(cfg, st);
}

void
router_stopping(void)
{
	ready_set_stopping();
}

static bool
authenticate(struct http_req *r)
{
	enum auth_status st = auth_verify(R.auth,
	    http_header(r, "Authorization"), time(NULL), &r->who);
	char hdr[256];

	if (st == AUTH_OK) {
		r->authed = true;
		return true;
	}
	metrics_auth_failure(auth_status_reason(st));
	snprintf(hdr, sizeof(hdr), "WWW-Authenticate: Bearer realm="
	    "\"instag-agent\"%s%s%s\r\n", st == AUTH_MISSING ? "" :
	    ", error=\"invalid_token\", error_description=\"",
	    st == AUTH_MISSING ? "" : auth_status_reason(st),
	    st == AUTH_MISSING ? "" : "\"");
	http_error(r, 401, "unauthorized", auth_status_reason(st), hdr);
	return false;
}

static bool
method_is(struct http_req *r, const char *m, const char *allow)
{
	char hdr[64];

	if (strcmp(r->method, m) == 0)
		return true;
	if (strcmp(m, "GET") == 0 && strcmp(r->method, "HEAD") == 0)
		return true;
	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
	http_error(r, 405, "method_not_allowed", "method not allowed here",
	    hdr);
	return false;
}

static bool
read_json_body(struct http_req *r)
{
	const char *ct = http_param(r, "CONTENT_TYPE");
	const char *why;
	int status;

	if (!http_media_type_is(ct, "application/json") &&
	    !http_media_type_is(ct, "application/a2a+json")) {
		http_error(r, 415, "unsupported_media_type", "send the body as "
		    "Content-Type: application/json", NULL);
		return false;
	}
	if (http_read_body(r, (size_t)R.cfg->max_body_bytes, &status,
	    &why) < 0) {
		http_error(r, status, status == 413 ? "body_too_large" :
		    "bad_request", why, NULL);
		return false;
	}
	return true;
}

/* The A2A card in the dialect the request names (A2A-Version: 1.0 gets
 * the v1.0 card; none, as A2A v1.0 says, means 0.3). */
static void
route_card(struct http_req *r)
{
	const char *inm = http_header(r, "If-None-Match");
	const char *ver = http_header(r, "A2A-Version");
	bool v1 = ver != NULL && strcmp(ver, "1.0") == 0;
	const char *tag = v1 ? card_a2a_v1_etag() : card_a2a_etag();
	const char *text = v1 ? card_a2a_v1_text() : card_a2a_text();
	char hdr[200];

	snprintf(hdr, sizeof(hdr), "ETag: %s\r\nCache-Control: public, "
	    "max-age=300\r\nVary: A2A-Version\r\n"
	    "Access-Control-Allow-Origin: *\r\n", tag);
	if (inm != NULL && strstr(inm, tag) != NULL) {
		http_respond(r, 304, NULL, hdr, NULL, 0);
		return;
	}
	http_respond(r, 200, "application/json", hdr, text, strlen(text));
}

static void
route_ready(struct http_req *r)
{
	json_object *body = NULL;
	bool ok = ready_eval(true, &body);

	http_json(r, ok ? 200 : 503, body, "Cache-Control: no-store\r\n");
	json_object_put(body);
}

int
router_dispatch(struct http_req *r, enum metrics_route *mr)
{
	const char *p = r->path;

	*mr = MR_OTHER;
	if (!strcmp(p, "/.well-known/agent-card.json") ||
	    !strcmp(p, "/.well-known/agent.json")) {
		*mr = MR_CARD;
		if (method_is(r, "GET", "GET, HEAD"))
			route_card(r);
	} else if (!strcmp(p, "/api/agent_card")) {
		*mr = MR_UMBRELLA_CARD;
		if (method_is(r, "GET", "GET, HEAD"))
			http_respond(r, 200, "application/json",
			    "Cache-Control: public, max-age=300\r\n",
			    card_umbrella_text(), strlen(card_umbrella_text()));
	} else if (!strcmp(p, "/healthz")) {
		*mr = MR_HEALTH;
		if (method_is(r, "GET", "GET, HEAD"))
			http_respond(r, 200, "application/json", NULL,
			    "{\"status\":\"ok\"}", 15);
	} else if (!strcmp(p, "/readyz")) {
		*mr = MR_HEALTH;
		if (!method_is(r, "GET", "GET, HEAD"))
			return 0;
		route_ready(r);
	} else if (!strcmp(p, "/metrics")) {
		struct strbuf sb = SB_INIT;
		*mr = MR_METRICS;
		if (!method_is(r, "GET", "GET"))
			return 0;
		metrics_render(&sb);
		http_respond(r, 200, "text/plain; version=0.0.4", NULL,
		    sb_str(&sb), sb.len);
		sb_free(&sb);
	} else if (!strcmp(p, "/a2a")) {
		*mr = MR_A2A;
		if (method_is(r, "POST", "POST") && authenticate(r) &&
		    read_json_body(r))
			return a2a_handle(r) == 1;
	} else if (!strcmp(p, "/api/a2a")) {
		*mr = MR_ENVELOPE;
		if (method_is(r, "POST", "POST") && authenticate(r) &&
		    read_json_body(r))
			envelope_handle(r);
	} else if (!strncmp(p, "/artifacts/", 11)) {
		*mr = MR_ARTIFACT;
		if (method_is(r, "GET", "GET, HEAD") && authenticate(r))
			files_artifact(r, R.cfg);
	} else if (!strncmp(p, "/uploads/", 9)) {
		*mr = MR_UPLOAD;
		if (method_is(r, "PUT", "PUT") && authenticate(r))
			files_upload(r, R.cfg);
	} else
		http_error(r, 404, "not_found", "no such route", NULL);
	return 0;
}
