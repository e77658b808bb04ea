/* SPDX-License-Identifier: MIT */
/*
 * hub: the event hub.  One thread owns every open SSE
 * stream and every blocking message/send wait, so no request thread waits
 * for a task: a request thread hands its http_req over and goes back to
 * FCGX_Accept_r.  The hub writes each task update to every stream of that
 * task in order, a ":" heartbeat every sse_heartbeat seconds, answers
 * blocking waits when their task ends (or is interrupted) or their time is
 * up, and finishes a request when its task ends or its client goes away.
 */
#ifndef IA_HUB_H
#define IA_HUB_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "lib/attrs.h"
#include "a2a/render.h"
#include "core/config.h"
#include "http/http.h"
#include "core/task.h"
#include "lib/strbuf.h"

WARN_UNUSED_RESULT
int hub_start(const struct config *cfg, char **err);
/* Close every stream, answer every wait with the task as it stands. */
void hub_stop(void);

/*
 * Hand r over to stream task_id's events (JSON-RPC id rpc_id, copied).
 * The hub first sends the current Task, then updates until the task
 * reaches a terminal or interrupted state.  0 on success (the hub owns r);
 * -1 when the hub is full or stopping (the caller still owns r).
 */
WARN_UNUSED_RESULT
int hub_stream(struct http_req *r, const char *task_id, const char *owner,
    enum a2a_dialect d, json_object *rpc_id);
/*
 * Hand r over to answer a blocking send when the task ends or after
 * wait_s seconds, whichever is first.  Same ownership as hub_stream.
 * version: the task's version as the caller last saw it (a snapshot taken
 * after that version was published), or -1.  When no later version has
 * been published since, the hub starts the wait without reading the task
 * from the store; otherwise (or -1) it reads it first, as a stream does.
 */
WARN_UNUSED_RESULT
int hub_wait(struct http_req *r, const char *task_id, const char *owner,
    enum a2a_dialect d, json_object *rpc_id, int wait_s, int history_len,
    int64_t version);

/*
 * A committed update of t.  The hub notes its version (for hub_wait) and
 * queues a copy only when a subscriber waits for it: a stream of the
 * task, or a blocking wait when the new state ends the wait (terminal or
 * interrupted).
 */
void hub_publish(const struct task *t);
/*
 * Another agent committed version of task id (a shared store): note it,
 * so that no wait starts from an older snapshot, and say whether any
 * stream or wait here follows the task (then the caller reads it and
 * hands it to hub_publish; otherwise nobody here needs the read).
 */
bool hub_remote_change(const char *task_id, int64_t version);

struct hub_stats {
	unsigned long streams;
	unsigned long waits;
	unsigned long events;
	unsigned long waits_snapshot;	/* waits started from the caller's
					 * version, no store read */
	unsigned long waits_read;	/* waits started from a store read */
	unsigned long waits_expired;	/* waits answered at their deadline */
};
void hub_get_stats(struct hub_stats *out);
/* The same as Prometheus text (a metrics collector). */
void hub_metrics(struct strbuf *sb);

#endif
