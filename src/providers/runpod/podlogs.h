/* SPDX-License-Identifier: MIT */
/*
 * podlogs: runpod.pod_logs, a pod's container and system log read from
 * RunPod's GET /v2/pods/{id}/logs.  Prefix podlogs_.
 *
 * That route is a Server-Sent Events stream that does not end: a backfill
 * (the last "tail" lines, or everything after "since" or an event id)
 * and then new lines as they come.  The operation runs on a request
 * thread, so it reads a bounded amount: at most PODLOGS_MAX_LINES lines
 * (or "tail" when given), PODLOGS_MAX_BYTES bytes of stream, and for at
 * most PODLOGS_WAIT_MS (or runpod_timeout when shorter); it stops
 * earlier once the stream has been quiet for PODLOGS_QUIET_MS (about a
 * second at most: libcurl's progress callback checks it).  Every line
 * is scrubbed by the RunPod client (its API key, "Bearer ..." tokens,
 * "rpa_..." keys, control characters; see lib/redact.h) and cut to
 * PODLOGS_LINE_MAX bytes.  Only the caller's pods (the registry's owner)
 * can be read: another user's pod is pod_not_found.
 */
#ifndef IA_PODLOGS_H
#define IA_PODLOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/op.h"
#include "lib/strbuf.h"

#define PODLOGS_TAIL_MAX 1000
#define PODLOGS_MAX_LINES 1000
#define PODLOGS_MAX_BYTES (256 * 1024)
#define PODLOGS_LINE_MAX 2000
#define PODLOGS_WAIT_MS 3000
#define PODLOGS_QUIET_MS 500

/* An SSE reader that keeps log events ({"ts","source","line"} data). */
struct podlogs_reader {
	struct strbuf line;	/* the partial line */
	struct strbuf data;	/* the current event's data */
	struct strbuf id;	/* the last event id seen (SSE lastEventId) */
	bool cr;		/* the last byte was '\r' */
	json_object *lines;	/* array of {id, ts, source, line} */
	char *last_id;		/* id of the last event kept, or NULL */
	size_t max_lines, max_bytes, bytes;
	bool full_lines, full_bytes;
	/* makes a line fit to relay: a new string (caller frees) */
	char *(*scrub)(const char *text, size_t len, void *arg);
	void *scrub_arg;
};

/* Set up r (max_lines and max_bytes: its limits). */
void podlogs_reader_init(struct podlogs_reader *r, size_t max_lines,
    size_t max_bytes, char *(*scrub)(const char *, size_t, void *),
    void *scrub_arg);
/* Free what r holds (its lines too, unless taken). */
void podlogs_reader_free(struct podlogs_reader *r);
/* Feed len bytes of the stream; false once a limit is reached (stop). */
bool podlogs_reader_feed(struct podlogs_reader *r, const char *buf,
    size_t len);

/* The params check of runpod.pod_logs: since must be an RFC 3339
 * date-time, last_event_id an event id.  0, or -1 with *err (caller
 * frees). */
int podlogs_validate(json_object *params, const struct config *cfg,
    char **err);
/* runpod.pod_logs (a sync operation, see ops.h). */
int podlogs_op(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e);

#endif
