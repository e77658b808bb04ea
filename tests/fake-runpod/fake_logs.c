/* SPDX-License-Identifier: MIT */
/*
 * fake-runpod: the pods' logs and GET /v2/pods/{id}/logs.
 *
 * RunPod's OpenAPI document (getPodLogs): Server-Sent Events, each event
 * an "id:" line (the event's timestamp; the document's example is
 * "2026-06-01T12:02:03Z/000000000001") and a JSON "data:" line
 * {"ts","source","line"}; query "source" (container | system; omitted:
 * both), "tail" (0..5000, default 100: lines of backfill; ignored with
 * "since" or Last-Event-ID), "since" (RFC 3339: resume from that time;
 * ignored with Last-Event-ID) and the Last-Event-ID header; headers
 * Cache-Control: no-cache, Connection: keep-alive, X-Accel-Buffering: no.
 * After the backfill the stream stays open and carries new lines as they
 * come; it never ends on its own (the client closes it).
 *
 * Each pod's log gets "system" lines for its status changes and
 * "container" lines when its container starts and stops (in the style
 * of RunPod's start script), plus any line the control API injects
 * (POST /_fake/pods/{id}/logs), for instance one holding a secret.
 */
#include "auto-config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "fake_runpod.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define TAIL_DEFAULT 100
#define TAIL_MAX 5000
#define LINE_MAX_BYTES 4096	/* an injected line, at most */
#define LINES_PER_POD 20000	/* older lines are dropped */

struct log_line {
	int64_t ts_ms;		/* wall clock */
	unsigned long long seq;	/* global, increasing */
	bool system;		/* source: system, else container */
	char *text;
};

struct pod_log {
	char *pod_id;
	struct log_line *lines;
	size_t n;
};

struct fake_stream {
	char *pod_id;
	int source;		/* 0 both, 1 container, 2 system */
	unsigned long long sent;	/* highest seq written */
};

static struct {
	struct pod_log *logs;
	size_t nlogs;
	unsigned long long seq;
	int64_t last_ts;
} L;

/* ------------------------------------------------------------ store ---- */

static struct pod_log *
log_find(const char *pod_id, bool create)
{
	size_t i;

	for (i = 0; i < L.nlogs; i++)
		if (strcmp(L.logs[i].pod_id, pod_id) == 0)
			return &L.logs[i];
	if (!create)
		return NULL;
	L.logs = xrealloc(L.logs, (L.nlogs + 1) * sizeof(*L.logs));
	memset(&L.logs[L.nlogs], 0, sizeof(L.logs[L.nlogs]));
	L.logs[L.nlogs].pod_id = xstrdup(pod_id);
	return &L.logs[L.nlogs++];
}

void
fake_logs_add(const char *pod_id, int64_t wall_ms, bool system,
    const char *text)
{
	struct pod_log *pl = log_find(pod_id, true);
	struct log_line *ln;

	/* timestamps never go back: a status change computed late is
	 * logged no earlier than what is already there */
	if (wall_ms < L.last_ts)
		wall_ms = L.last_ts;
	L.last_ts = wall_ms;
	if (pl->n == LINES_PER_POD) {
		free(pl->lines[0].text);
		memmove(pl->lines, pl->lines + 1, (pl->n - 1) *
		    sizeof(*pl->lines));
		pl->n--;
	}
	pl->lines = xrealloc(pl->lines, (pl->n + 1) * sizeof(*pl->lines));
	ln = &pl->lines[pl->n++];
	ln->ts_ms = wall_ms;
	ln->seq = ++L.seq;
	ln->system = system;
	ln->text = xstrdup(text);
}

void
fake_logs_status(const char *pod_id, const char *status, int64_t wall_ms,
    const char *where)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "pod %s: status %s%s%s", pod_id, status,
	    where ? " " : "", where ? where : "");
	fake_logs_add(pod_id, wall_ms, true, buf);
	if (strcmp(status, "RUNNING") == 0) {
		fake_logs_add(pod_id, wall_ms, false, "Pod Started");
		fake_logs_add(pod_id, wall_ms, false, "Setting up SSH...");
		fake_logs_add(pod_id, wall_ms, false,
		    "Starting SSH server...");
		fake_logs_add(pod_id, wall_ms, false, "Start script(s) "
		    "finished, pod is ready to use.");
	} else if (strcmp(status, "EXITED") == 0 ||
	    strcmp(status, "TERMINATED") == 0) {
		fake_logs_add(pod_id, wall_ms, false, "Received SIGTERM, "
		    "shutting down");
	}
}

void
fake_logs_clear(void)
{
	size_t i, j;

	for (i = 0; i < L.nlogs; i++) {
		for (j = 0; j < L.logs[i].n; j++)
			free(L.logs[i].lines[j].text);
		free(L.logs[i].lines);
		free(L.logs[i].pod_id);
	}
	free(L.logs);
	memset(&L, 0, sizeof(L));
}

/* ------------------------------------------------------------- time ---- */

/* RFC 3339 date-time ("2026-06-01T12:02:03Z", fraction and offset
 * optional parts) to wall ms; false when malformed. */
static bool
parse_rfc3339(const char *s, int64_t *out)
{
	struct tm tm;
	const char *p;
	int64_t ms = 0, scale = 100, off = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return false;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return false;
		for (p++; isdigit((unsigned char)*p); p++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && p[3] == ':' &&
	    isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		    ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = ((int64_t)t - off) * 1000 + ms;
	return true;
}

/* ----------------------------------------------------------- events ---- */

static bool
wanted(const struct log_line *ln, int source)
{
	return source == 0 || (source == 2) == ln->system;
}

static void
add_event(struct strbuf *sb, const struct log_line *ln)
{
	json_object *o = json_object_new_object();
	char ts[40], *data;

	ju_iso8601(ln->ts_ms, ts, sizeof(ts));
	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "source", json_object_new_string(
	    ln->system ? "system" : "container"));
	json_object_object_add(o, "line", json_object_new_string(ln->text));
	data = ju_dump(o);
	json_object_put(o);
	sb_addf(sb, "id: %s/%012llu\ndata: %s\n\n", ts, ln->seq, data);
	free(data);
}

bool
fake_logs_stream_more(struct fake_stream *s, struct strbuf *sb)
{
	struct pod_log *pl;
	size_t i, before = sb->len;

	fake_api_tick(s->pod_id);
	if ((pl = log_find(s->pod_id, false)) == NULL)
		return false;
	for (i = 0; i < pl->n; i++) {
		if (pl->lines[i].seq <= s->sent ||
		    !wanted(&pl->lines[i], s->source))
			continue;
		add_event(sb, &pl->lines[i]);
		s->sent = pl->lines[i].seq;
	}
	return sb->len > before;
}

void
fake_logs_stream_free(struct fake_stream *s)
{
	if (s == NULL)
		return;
	free(s->pod_id);
	free(s);
}

/* The resume cursor of a Last-Event-ID: "<ts>/<seq>" as this stand-in
 * writes them (resume after that seq), or a bare date-time (resume after
 * that time). */
static bool
parse_event_id(const char *v, unsigned long long *after_seq,
    int64_t *after_ms)
{
	const char *slash = strrchr(v, '/');
	char *ts, *e;
	bool ok;

	*after_seq = 0;
	*after_ms = INT64_MIN;
	if (slash == NULL)
		return parse_rfc3339(v, after_ms);
	ts = xstrndup(v, (size_t)(slash - v));
	ok = parse_rfc3339(ts, after_ms) && isdigit((unsigned char)slash[1]);
	free(ts);
	if (!ok)
		return false;
	*after_seq = strtoull(slash + 1, &e, 10);
	*after_ms = INT64_MIN;
	return *e == '\0';
}

void
fake_logs_get(const struct fake_req *req, const char *pod_id,
    struct fake_resp *resp)
{
	json_object *errs = json_object_new_array();
	char *source = fake_query_get(req->query, "source");
	char *tail = fake_query_get(req->query, "tail");
	char *since = fake_query_get(req->query, "since");
	unsigned long long after_seq = 0;
	int64_t from_ms = INT64_MIN, after_ms = INT64_MIN;
	long ntail = TAIL_DEFAULT;
	struct fake_stream *s;
	struct pod_log *pl;
	struct strbuf sb = SB_INIT;
	size_t i, first = 0, k;
	int src = 0;

	if (source != NULL) {
		if (strcmp(source, "container") == 0)
			src = 1;
		else if (strcmp(source, "system") == 0)
			src = 2;
		else
			json_object_array_add(errs, json_object_new_string(
			    "source: value must be one of container, system"));
	}
	if (tail != NULL) {
		char *e;

		ntail = strtol(tail, &e, 10);
		if (tail[0] == '\0' || *e != '\0' || !isdigit((unsigned char)
		    tail[0]))
			json_object_array_add(errs, json_object_new_string(
			    "tail: expected integer"));
		else if (ntail > TAIL_MAX)
			json_object_array_add(errs, json_object_new_string(
			    "tail: must be <= 5000"));
	}
	if (since != NULL && !parse_rfc3339(since, &from_ms))
		json_object_array_add(errs, json_object_new_string(
		    "since: expected a date-time (RFC 3339)"));
	if (req->last_event_id != NULL && !parse_event_id(req->last_event_id,
	    &after_seq, &after_ms))
		json_object_array_add(errs, json_object_new_string(
		    "Last-Event-ID: expected a date-time (RFC 3339) or an "
		    "event id of this stream"));
	if (json_object_array_length(errs) > 0) {
		fake_set_problem(resp, 422, "Request validation failed.", errs);
		errs = NULL;	/* the problem holds it */
		goto cleanup;
	}
	json_object_put(errs);
	errs = NULL;

	fake_api_tick(pod_id);
	s = xcalloc(1, sizeof(*s));
	s->pod_id = xstrdup(pod_id);
	s->source = src;
	pl = log_find(pod_id, false);
	if (pl != NULL) {
		if (req->last_event_id != NULL || since != NULL) {
			/* the cursor drives the backfill; tail is ignored */
			for (i = 0; i < pl->n; i++)
				if (after_seq > 0 ? pl->lines[i].seq >
				    after_seq : after_ms != INT64_MIN ?
				    pl->lines[i].ts_ms > after_ms :
				    pl->lines[i].ts_ms >= from_ms)
					break;
			first = i;
		} else {
			/* the last ntail lines of the source asked for */
			for (i = pl->n, k = 0; i > 0 && k < (size_t)ntail; i--)
				if (wanted(&pl->lines[i - 1], src))
					k++;
			first = i;
		}
		/* nothing before first is sent, now or later */
		s->sent = first > 0 ? pl->lines[first - 1].seq : 0;
	}
	fake_logs_stream_more(s, &sb);
	resp->status = 200;
	resp->content_type = "text/event-stream";
	free(resp->body);
	resp->body = sb_take(&sb);
	resp->stream = s;

cleanup:
	if (errs != NULL)
		json_object_put(errs);
	free(source);
	free(tail);
	free(since);
}

void
fake_logs_inject(const char *pod_id, json_object *body,
    struct fake_resp *resp)
{
	const char *line = ju_str(body, "line"), *src = ju_str(body, "source");
	json_object *o;
	char id[64], ts[40];

	if (line == NULL || strlen(line) > LINE_MAX_BYTES || (src != NULL &&
	    strcmp(src, "container") != 0 && strcmp(src, "system") != 0)) {
		fake_set_problem(resp, 400, "body must be {\"line\": text of "
		    "at most 4096 bytes, \"source\"?: \"container\" or "
		    "\"system\"}", NULL);
		return;
	}
	fake_api_tick(pod_id);
	fake_logs_add(pod_id, clock_wall_ms(), src != NULL &&
	    strcmp(src, "system") == 0, line);
	ju_iso8601(L.last_ts, ts, sizeof(ts));
	snprintf(id, sizeof(id), "%s/%012llu", ts, L.seq);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	resp->status = 200;
	resp->content_type = "application/json";
	free(resp->body);
	resp->body = ju_dump(o);
	json_object_put(o);
}
