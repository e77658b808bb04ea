/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/http.h"
#include "lib/jsonutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

struct http_req *
http_req_new(FCGX_Request *fcgx, const char *base_path)
{
	struct http_req *r = xcalloc(1, sizeof(*r));
	const char *uri;
	size_t blen = strlen(base_path);

	r->fcgx = fcgx;
	r->method = FCGX_GetParam("REQUEST_METHOD", fcgx->envp);
	if (r->method == NULL)
		r->method = "";
	uri = FCGX_GetParam("DOCUMENT_URI", fcgx->envp);
	if (uri == NULL)
		uri = FCGX_GetParam("SCRIPT_NAME", fcgx->envp);
	if (uri == NULL)
		uri = "";
	if (blen > 0 && strncmp(uri, base_path, blen) == 0 &&
	    (uri[blen] == '/' || uri[blen] == '\0'))
		uri += blen;
	else if (blen > 0)
		uri = "";	/* outside our prefix: 404 */
	r->path = uri;
	return r;
}

#define HTTP_DRAIN_MAX 65536

/* Read what is left of the request's input, at most HTTP_DRAIN_MAX bytes:
 * true when its end was reached. */
static bool
drain_input(FCGX_Stream *in)
{
	char buf[4096];
	size_t left = HTTP_DRAIN_MAX;
	int n;

	while (!FCGX_HasSeenEOF(in) && left > 0) {
		n = FCGX_GetStr(buf, (int)sizeof(buf), in);
		if (n <= 0)
			break;
		left -= (size_t)n < left ? (size_t)n : left;
	}
	return FCGX_HasSeenEOF(in) && FCGX_GetError(in) == 0;
}

void
http_req_free(struct http_req *r)
{
	FCGX_Request *fx;

	if (r == NULL)
		return;
	fx = r->fcgx;
	/* A kept connection must read as idle: the web server's next
	 * request starts with a BEGIN_REQUEST record, not with the rest of
	 * this one's input. */
	if (fx->keepConnection && fx->in != NULL && !drain_input(fx->in))
		fx->keepConnection = 0;
	if (r->ended)	/* the end records are written: libfcgi must not */
		FCGX_Free(fx, !fx->keepConnection || r->write_failed ||
		    FCGX_GetError(fx->in) != 0);
	else
		FCGX_Finish_r(fx);
	if (r->done != NULL)
		r->done(r->done_ctx, fx->ipcFd);
	else if (fx->ipcFd >= 0)
		close(fx->ipcFd);
	free(fx);
	free(r->body);
	principal_clear(&r->who);
	free(r);
}

const char *
http_param(struct http_req *r, const char *name)
{
	return FCGX_GetParam(name, r->fcgx->envp);
}

const char *
http_header(struct http_req *r, const char *name)
{
	char key[128];
	size_t i, n = strlen(name);

	if (n + 6 > sizeof(key))
		return NULL;
	memcpy(key, "HTTP_", 5);
	for (i = 0; i < n; i++)
		key[5 + i] = name[i] == '-' ? '_' :
		    (char)((name[i] >= 'a' && name[i] <= 'z') ?
		    name[i] - 32 : name[i]);
	key[5 + n] = '\0';
	return FCGX_GetParam(key, r->fcgx->envp);
}

int
http_read_body(struct http_req *r, size_t max, int *status, const char **why)
{
	const char *cl = http_param(r, "CONTENT_LENGTH");
	unsigned long long want;
	char *end, drain[4096];
	size_t got = 0;

	if (cl == NULL || *cl == '\0') {
		*status = 411;
		*why = "a Content-Length is required";
		return -1;
	}
	errno = 0;
	want = strtoull(cl, &end, 10);
	if (errno || end == cl || *end != '\0' || cl[0] == '-') {
		*status = 400;
		*why = "invalid Content-Length";
		return -1;
	}
	if (want > max) {
		*status = 413;
		*why = "request body larger than the configured max_body_bytes";
		return -1;
	}
	r->body = xmalloc((size_t)want + 1);
	while (got < want) {
		size_t chunk = want - got > (1u << 20) ? (1u << 20) :
		    (size_t)(want - got);
		int n = FCGX_GetStr(r->body + got, (int)chunk, r->fcgx->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	r->body[got] = '\0';
	r->body_len = got;
	if (got != want) {
		*status = 400;
		*why = "request body shorter than its Content-Length";
		return -1;
	}
	/* Consume the end-of-stdin record so the socket reads as idle. */
	while (FCGX_GetStr(drain, sizeof(drain), r->fcgx->in) > 0)
		;
	return 0;
}

bool
http_media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, n) != 0)
		return false;
	for (ct += n; *ct == ' ' || *ct == '\t'; ct++)
		;
	return *ct == '\0' || *ct == ';';
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Status";
}

/* ---- whole answers, written directly ------------------------------------ */

/* FastCGI 1.0 record types and sizes (the specification, section 8). */
#define FCGI_V1 1
#define FCGI_END_REQUEST_T 3
#define FCGI_STDOUT_T 6
#define FCGI_HEADER_LEN 8
#define FCGI_MAX_CONTENT 65535
#define HTTP_DIRECT_IOV 64	/* at most 21 records: about 1.3 MiB */

static void
rec_header(unsigned char h[FCGI_HEADER_LEN], int type, int id, size_t len)
{
	h[0] = FCGI_V1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)((id >> 8) & 0xff);
	h[3] = (unsigned char)(id & 0xff);
	h[4] = (unsigned char)((len >> 8) & 0xff);
	h[5] = (unsigned char)(len & 0xff);
	h[6] = 0;	/* no padding */
	h[7] = 0;
}

/* writev all of iov (n entries; advanced in place): 0, or -1. */
static int
writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/*
 * Write the whole answer (head, then body) and the request's end as
 * FastCGI records in one writev on the connection: STDOUT records of at
 * most 65535 bytes, the empty STDOUT record, END_REQUEST.  libfcgi's
 * output buffer (8 KiB) would copy it and write a larger answer in
 * several pieces, each one more wake-up of the web server.  Only when
 * nothing is pending in libfcgi's output and the request's input has been
 * read to its end (the same order as before: input drained, then the end
 * written); false when it did not apply (write with libfcgi then).
 */
static bool
respond_direct(struct http_req *r, const char *head, size_t hlen,
    const char *body, size_t blen)
{
	FCGX_Request *fx = r->fcgx;
	unsigned char hdrs[HTTP_DIRECT_IOV / 2][FCGI_HEADER_LEN];
	unsigned char end[FCGI_HEADER_LEN * 3];
	struct iovec iov[HTTP_DIRECT_IOV];
	size_t total = hlen + blen, off = 0;
	int n = 0, nh = 0;

	if (r->ended || fx->out == NULL || fx->in == NULL ||
	    total > (size_t)FCGI_MAX_CONTENT * (HTTP_DIRECT_IOV / 2 - 1) ||
	    FCGX_FFlush(fx->out) < 0 || FCGX_GetError(fx->out) != 0)
		return false;
	if (fx->keepConnection && !drain_input(fx->in))
		fx->keepConnection = 0;
	while (off < total) {
		size_t chunk = total - off > FCGI_MAX_CONTENT ?
		    FCGI_MAX_CONTENT : total - off, a, b;

		rec_header(hdrs[nh], FCGI_STDOUT_T, fx->requestId, chunk);
		iov[n].iov_base = hdrs[nh++];
		iov[n++].iov_len = FCGI_HEADER_LEN;
		/* The part of [off, off + chunk) in the head, then the
		 * body. */
		a = off < hlen ? (hlen - off < chunk ? hlen - off : chunk) : 0;
		b = chunk - a;
		if (a > 0) {
			iov[n].iov_base = (char *)head + off;
			iov[n++].iov_len = a;
		}
		if (b > 0) {
			iov[n].iov_base = (char *)body + (off + a - hlen);
			iov[n++].iov_len = b;
		}
		off += chunk;
	}
	rec_header(end, FCGI_STDOUT_T, fx->requestId, 0);
	rec_header(end + FCGI_HEADER_LEN, FCGI_END_REQUEST_T, fx->requestId,
	    8);
	/* appStatus 0, protocolStatus FCGI_REQUEST_COMPLETE (0), reserved */
	memset(end + 2 * FCGI_HEADER_LEN, 0, FCGI_HEADER_LEN);
	iov[n].iov_base = end;
	iov[n++].iov_len = sizeof(end);
	r->ended = true;
	if (writev_all(fx->ipcFd, iov, n) < 0)
		r->write_failed = true;
	return true;
}

/* v in decimal, in buf (at least 21 bytes); returns buf. */
static char *
fmt_uint(char buf[24], unsigned long long v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return buf;
}

void
http_respond(struct http_req *r, int status, const char *content_type,
    const char *extra_headers, const char *body, size_t len)
{
	struct strbuf h = SB_INIT;
	char num[24];

	/* Every answer passes here: no printf (its locale and varargs
	 * machinery cost more than the rest of the headers). */
	r->status = status;
	sb_adds(&h, "Status: ");
	sb_adds(&h, fmt_uint(num, (unsigned long long)(status < 0 ? 0 :
	    status)));
	sb_addc(&h, ' ');
	sb_adds(&h, http_reason(status));
	sb_adds(&h, "\r\n");
	if (content_type != NULL) {
		sb_adds(&h, "Content-Type: ");
		sb_adds(&h, content_type);
		sb_adds(&h, "\r\n");
	}
	if (body != NULL) {
		sb_adds(&h, "Content-Length: ");
		sb_adds(&h, fmt_uint(num, (unsigned long long)len));
		sb_adds(&h, "\r\n");
	}
	if (extra_headers != NULL)
		sb_adds(&h, extra_headers);
	sb_adds(&h, "X-Content-Type-Options: nosniff\r\n\r\n");
	if (!respond_direct(r, h.buf, h.len, body, body != NULL ? len : 0) &&
	    !r->ended) {
		FCGX_PutStr(h.buf, (int)h.len, r->fcgx->out);
		if (body != NULL && len > 0)
			FCGX_PutStr(body, (int)len, r->fcgx->out);
	}
	sb_free(&h);
}

void
http_json(struct http_req *r, int status, json_object *o,
    const char *extra_headers)
{
	const char *text = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	http_respond(r, status, "application/json", extra_headers, text,
	    strlen(text));
}

void
http_error(struct http_req *r, int status, const char *code, const char *msg,
    const char *extra_headers)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(code));
	json_object_object_add(o, "message", json_object_new_string(msg));
	http_json(r, status, o, extra_headers);
	json_object_put(o);
}

int
http_sse_begin(struct http_req *r)
{
	r->status = 200;
	FCGX_PutS("Status: 200 OK\r\n"
	    "Content-Type: text/event-stream\r\n"
	    "Cache-Control: no-cache\r\n"
	    "X-Accel-Buffering: no\r\n\r\n", r->fcgx->out);
	return FCGX_FFlush(r->fcgx->out) < 0 ||
	    FCGX_GetError(r->fcgx->out) != 0 ? -1 : 0;
}

int
http_sse_event(struct http_req *r, const char *json)
{
	FCGX_PutS("data: ", r->fcgx->out);
	FCGX_PutS(json, r->fcgx->out);
	FCGX_PutS("\n\n", r->fcgx->out);
	return FCGX_FFlush(r->fcgx->out) < 0 ||
	    FCGX_GetError(r->fcgx->out) != 0 ? -1 : 0;
}

int
http_sse_comment(struct http_req *r, const char *text)
{
	FCGX_PutS(":", r->fcgx->out);
	FCGX_PutS(text ? text : "", r->fcgx->out);
	FCGX_PutS("\n\n", r->fcgx->out);
	return FCGX_FFlush(r->fcgx->out) < 0 ||
	    FCGX_GetError(r->fcgx->out) != 0 ? -1 : 0;
}
