/* SPDX-License-Identifier: MIT */
/*
 * http: one FastCGI request as the agent sees it, and the response
 * writers.  A struct http_req owns its heap FCGX_Request; whoever holds
 * the http_req (a request thread, or the event hub after a hand-over)
 * ends it with http_req_free(), which finishes the FastCGI request and
 * gives the connection back to its owner (done), which keeps it for the
 * web server's next request when the web server asked for that.
 */
#ifndef IA_HTTP_H
#define IA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <fcgiapp.h>
#include <json-c/json.h>

#include "http/auth.h"
#include "lib/attrs.h"

struct http_req {
	FCGX_Request *fcgx;	/* owned */
	const char *method;	/* borrowed from the FastCGI params */
	const char *path;	/* DOCUMENT_URI without the base path */
	char *body;		/* owned, NUL-terminated */
	size_t body_len;
	struct principal who;	/* set once authenticated */
	bool authed;
	int status;		/* status sent, for metrics and logs */
	bool ended;		/* the answer and the request's end records
				 * are written (http_respond): nothing more
				 * may be */
	bool write_failed;	/* that write failed: close the connection */
	/* Called by http_req_free() once the FastCGI request is finished:
	 * fd is the connection when the web server asked to keep it and it
	 * is still usable, else -1 (closed).  NULL: fd is closed. */
	void (*done)(void *ctx, int fd);
	void *done_ctx;
};

/* Wrap an accepted request (takes ownership of fcgx). */
struct http_req *http_req_new(FCGX_Request *fcgx, const char *base_path);
/*
 * Finish the FastCGI request, hand its connection to r->done and free
 * everything.  Request input not yet read is drained (up to 64 KiB) so a
 * kept connection reads as idle; when more is left, the connection is
 * closed instead of kept.  NULL ok.
 */
void http_req_free(struct http_req *r);

/* A request header by HTTP name ("Authorization"), NULL when absent. */
const char *http_header(struct http_req *r, const char *name);
const char *http_param(struct http_req *r, const char *name);

/*
 * Read the body (CONTENT_LENGTH bytes) into r->body, at most max bytes,
 * then drain the stream to its end.  0 on success; otherwise -1 with
 * *status (400, 411, 413) and a static *why.
 */
WARN_UNUSED_RESULT
int http_read_body(struct http_req *r, size_t max, int *status,
    const char **why);

/*
 * Write a whole response.  extra_headers: "Name: value\r\n..." or NULL.
 * It ends the FastCGI request (the end records go out with it, in one
 * write, once the request's input is read to its end): nothing may be
 * written to r after it, and a second call writes nothing.
 */
void http_respond(struct http_req *r, int status, const char *content_type,
    const char *extra_headers, const char *body, size_t len);
void http_json(struct http_req *r, int status, json_object *o,
    const char *extra_headers);
/* {"error": code, "message": msg} */
void http_error(struct http_req *r, int status, const char *code,
    const char *msg, const char *extra_headers);
const char *http_reason(int status);
/*
 * Is the Content-Type value ct exactly the media type type (RFC 9110
 * 8.3.1: "type/subtype" compared without regard to case, then only
 * optional whitespace, or ';' and parameters)?  "application/jsonfoo"
 * and "application/json+x" are not application/json; NULL is nothing.
 */
bool http_media_type_is(const char *ct, const char *type);

/* Start an SSE response (headers only) and flush.  -1 if the peer is gone. */
WARN_UNUSED_RESULT
int http_sse_begin(struct http_req *r);
/* Write "data: <json>\n\n" and flush.  -1 if the peer is gone. */
WARN_UNUSED_RESULT
int http_sse_event(struct http_req *r, const char *json);
/* Write a ":" comment line and flush. */
WARN_UNUSED_RESULT
int http_sse_comment(struct http_req *r, const char *text);

#endif
