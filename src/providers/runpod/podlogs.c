/* SPDX-License-Identifier: MIT */
/* podlogs: runpod.pod_logs, a pod's log from RunPod; see podlogs.h. */
#include "auto-config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errcode.h"
#include "lib/jsonutil.h"
#include "lib/xalloc.h"
#include "providers/runpod/podlogs.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/runpod.h"
#include "store/store.h"

#define PARTIAL_LINE_MAX (64 * 1024)	/* a longer SSE line: stop */
#define ID_MAX 128

/* ---- the SSE reader ------------------------------------------------------ */

void
podlogs_reader_init(struct podlogs_reader *r, size_t max_lines,
    size_t max_bytes, char *(*scrub)(const char *, size_t, void *),
    void *scrub_arg)
{
	memset(r, 0, sizeof(*r));
	r->lines = json_object_new_array();
	r->max_lines = max_lines;
	r->max_bytes = max_bytes;
	r->scrub = scrub;
	r->scrub_arg = scrub_arg;
}

void
podlogs_reader_free(struct podlogs_reader *r)
{
	sb_free(&r->line);
	sb_free(&r->data);
	sb_free(&r->id);
	if (r->lines != NULL)
		json_object_put(r->lines);
	free(r->last_id);
	memset(r, 0, sizeof(*r));
}

/* A string of at most PODLOGS_LINE_MAX bytes, cut on a UTF-8 boundary. */
static json_object *
cut(const char *s)
{
	size_t n = strlen(s);

	if (n > PODLOGS_LINE_MAX) {
		n = PODLOGS_LINE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return json_object_new_string_len(s, (int)n);
}

/* The event in r->data (data lines joined by '\n') is complete. */
static void
dispatch(struct podlogs_reader *r)
{
	json_object *o = NULL, *ev;
	const char *text, *ts = NULL, *src = NULL;
	char *err = NULL, *clean, *s;
	size_t len;

	if (r->data.len == 0)
		return;
	if (r->data.buf[r->data.len - 1] == '\n')
		r->data.buf[--r->data.len] = '\0';
	text = sb_str(&r->data);
	len = r->data.len;
	if (ju_parse(text, len, 8, PARTIAL_LINE_MAX, &o, &err) == 0 &&
	    json_object_is_type(o, json_type_object) &&
	    ju_str(o, "line") != NULL) {
		text = ju_str(o, "line");
		len = strlen(text);
		ts = ju_str(o, "ts");
		src = ju_str(o, "source");
	}
	free(err);
	ev = json_object_new_object();
	if (r->id.len > 0) {
		json_object_object_add(ev, "id", cut(sb_str(&r->id)));
		free(r->last_id);
		r->last_id = xstrdup(sb_str(&r->id));
	} else {
		json_object_object_add(ev, "id", NULL);
	}
	s = ts ? r->scrub(ts, strlen(ts), r->scrub_arg) : NULL;
	json_object_object_add(ev, "ts", s ? cut(s) : NULL);
	free(s);
	s = src ? r->scrub(src, strlen(src), r->scrub_arg) : NULL;
	json_object_object_add(ev, "source", s ? cut(s) : NULL);
	free(s);
	clean = r->scrub(text, len, r->scrub_arg);
	json_object_object_add(ev, "line", cut(clean));
	free(clean);
	json_object_array_add(r->lines, ev);
	if (o != NULL)
		json_object_put(o);
	sb_reset(&r->data);
	if (json_object_array_length(r->lines) >= r->max_lines)
		r->full_lines = true;
}

/* One complete SSE line (without its end). */
static void
sse_line(struct podlogs_reader *r, const char *l, size_t n)
{
	const char *colon, *v;
	size_t fl, vl;

	if (n == 0) {
		dispatch(r);
		return;
	}
	if (l[0] == ':')
		return;		/* a comment */
	colon = memchr(l, ':', n);
	fl = colon ? (size_t)(colon - l) : n;
	v = colon ? colon + 1 : l + n;
	vl = colon ? n - fl - 1 : 0;
	if (vl > 0 && v[0] == ' ') {
		v++;
		vl--;
	}
	if (fl == 4 && memcmp(l, "data", 4) == 0) {
		sb_addn(&r->data, v, vl);
		sb_addc(&r->data, '\n');
	} else if (fl == 2 && memcmp(l, "id", 2) == 0 &&
	    memchr(v, '\0', vl) == NULL && vl <= ID_MAX) {
		sb_reset(&r->id);
		sb_addn(&r->id, v, vl);
	}
	/* "event", "retry" and unknown fields: ignored */
}

bool
podlogs_reader_feed(struct podlogs_reader *r, const char *buf, size_t len)
{
	size_t i;

	if (r->full_lines || r->full_bytes)
		return false;
	r->bytes += len;
	for (i = 0; i < len && !r->full_lines; i++) {
		char ch = buf[i];

		if (ch == '\n' && r->cr) {
			r->cr = false;	/* the end of a CRLF */
			continue;
		}
		r->cr = ch == '\r';
		if (ch == '\n' || ch == '\r') {
			sse_line(r, sb_str(&r->line), r->line.len);
			sb_reset(&r->line);
			continue;
		}
		sb_addc(&r->line, ch);
		if (r->line.len > PARTIAL_LINE_MAX) {
			r->full_bytes = true;
			return false;
		}
	}
	if (r->bytes >= r->max_bytes)
		r->full_bytes = true;
	return !r->full_lines && !r->full_bytes;
}

/* ---- the operation ------------------------------------------------------- */

/* ^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$ */
static bool
rfc3339(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i, k;

	for (i = 0; shape[i] != '\0'; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) :
		    s[i] != shape[i])
			return false;
	s += i;
	if (*s == '.') {
		for (k = 1; isdigit((unsigned char)s[k]); k++)
			;
		if (k == 1 || k > 10)
			return false;
		s += k;
	}
	if (*s == 'Z')
		return s[1] == '\0';
	return (*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) &&
	    isdigit((unsigned char)s[2]) && s[3] == ':' &&
	    isdigit((unsigned char)s[4]) && isdigit((unsigned char)s[5]) &&
	    s[6] == '\0';
}

/* ^[0-9A-Za-z:.+/_-]{1,128}$ */
static bool
event_id(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(":.+/_-", s[i]) ==
		    NULL)
			return false;
	return true;
}

int
podlogs_validate(json_object *params, const struct config *cfg, char **err)
{
	const char *since = ju_str(params, "since");
	const char *id = ju_str(params, "last_event_id");

	(void)cfg;
	if (since != NULL && !rfc3339(since)) {
		*err = xstrdup("params.since must be an RFC 3339 date-time, "
		    "e.g. 2026-06-01T12:02:03Z");
		return -1;
	}
	if (id != NULL && !event_id(id)) {
		*err = xstrdup("params.last_event_id must be an event id a "
		    "previous runpod.pod_logs returned ([0-9A-Za-z:.+/_-], at "
		    "most 128)");
		return -1;
	}
	return 0;
}

static char *
scrub_with(const char *text, size_t len, void *arg)
{
	return runpod_scrub_text(arg, text, len);
}

static bool
feed(const char *buf, size_t len, void *arg)
{
	return podlogs_reader_feed(arg, buf, len);
}

static const char *
end_name(enum runpod_stream_end end)
{
	switch (end) {
	case RP_STREAM_LIMIT:	return "limit";
	case RP_STREAM_QUIET:	return "quiet";
	case RP_STREAM_TIME:	return "time";
	case RP_STREAM_CLOSED:	return "closed";
	}
	return "closed";
}

/* The path with its query for params (caller frees), or NULL with *e. */
static char *
logs_path(struct runpod_client *cl, json_object *params, bool cursor,
    struct runpod_error *e)
{
	const char *since = ju_str(params, "since");
	const char *src = ju_str(params, "source");
	char *path = runpod_pod_path(cl, ju_str(params, "pod_id"), "/logs", e);
	char *esc, *full;
	int64_t tail = 100;
	struct strbuf sb = SB_INIT;

	if (path == NULL)
		return NULL;
	sb_adds(&sb, path);
	free(path);
	if (src != NULL)
		sb_addf(&sb, "?source=%s", src);	/* an enum value */
	if (since != NULL) {
		esc = runpod_escape(cl, since);
		sb_addf(&sb, "%ssince=%s", src ? "&" : "?", esc);
		free(esc);
	} else if (!cursor) {
		ju_int(params, "tail", &tail);
		sb_addf(&sb, "%stail=%lld", src ? "&" : "?", (long long)tail);
	}
	full = sb_take(&sb);
	return full;
}

int
podlogs_op(const struct op_ctx *c, json_object *params, json_object **result,
    struct op_error *oe)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct podlogs_reader rd;
	struct runpod_client *cl;
	struct pod_rec *r = NULL;
	enum runpod_stream_end end = RP_STREAM_CLOSED;
	const char *id = ju_str(params, "pod_id");
	const char *cursor = ju_str(params, "last_event_id");
	const char *src = ju_str(params, "source");
	char *path = NULL, *hdr = NULL;
	int64_t tail = 100;
	size_t max_lines = PODLOGS_MAX_LINES;
	long wait_ms = PODLOGS_WAIT_MS;
	int rc;

	memset(&rd, 0, sizeof(rd));
	rc = store_pod_get(pods_store(), id, &r);
	if (rc < 0) {
		op_error_set(oe, ERRC_INTERNAL, "the pod registry failed");
		return -1;
	}
	if (rc != 0 || strcmp(r->owner, c->who->sub) != 0) {
		store_pod_free(r);
		op_error_set(oe, ERRC_POD_NOT_FOUND, "no pod with id '%.64s' "
		    "was provisioned by you through this agent", id);
		return -1;
	}
	store_pod_free(r);
	if ((cl = pods_client(&e)) == NULL)
		goto fail;
	if (cursor == NULL && ju_str(params, "since") == NULL &&
	    ju_int(params, "tail", &tail) == 0 && tail > 0)
		max_lines = (size_t)tail;
	if (c->cfg != NULL && c->cfg->runpod_timeout > 0 &&
	    c->cfg->runpod_timeout * 1000 < wait_ms)
		wait_ms = c->cfg->runpod_timeout * 1000;
	if ((path = logs_path(cl, params, cursor != NULL, &e)) == NULL)
		goto fail;
	if (cursor != NULL)
		hdr = xasprintf("Last-Event-ID: %s", cursor);
	podlogs_reader_init(&rd, max_lines, PODLOGS_MAX_BYTES, scrub_with,
	    cl);
	rc = runpod_stream_get(cl, path, hdr, wait_ms, PODLOGS_QUIET_MS, feed,
	    &rd, &end, &e);
	pods_count(rc, &e);
	if (rc < 0)
		goto fail;
	*result = json_object_new_object();
	json_object_object_add(*result, "pod_id", json_object_new_string(id));
	json_object_object_add(*result, "source", json_object_new_string(
	    src ? src : "all"));
	json_object_object_add(*result, "count", json_object_new_int64(
	    (int64_t)json_object_array_length(rd.lines)));
	json_object_object_add(*result, "lines", rd.lines);
	rd.lines = NULL;
	json_object_object_add(*result, "last_event_id", ju_new_str(
	    rd.last_id ? rd.last_id : cursor));
	json_object_object_add(*result, "more", json_object_new_boolean(
	    rd.full_lines || rd.full_bytes));
	json_object_object_add(*result, "stopped", json_object_new_string(
	    rd.full_bytes ? "bytes" : rd.full_lines ? "lines" :
	    end_name(end)));
	free(path);
	free(hdr);
	podlogs_reader_free(&rd);
	return 0;

fail:
	if (e.kind == RP_NOT_FOUND)
		op_error_set(oe, ERRC_POD_NOT_FOUND, "RunPod has no pod %s "
		    "(terminated and gone?)%s%s", id, e.detail ? ": " : "",
		    e.detail ? e.detail : "");
	else
		pods_op_error(oe, "pod_logs", &e);
	runpod_error_clear(&e);
	free(path);
	free(hdr);
	podlogs_reader_free(&rd);
	return -1;
}
