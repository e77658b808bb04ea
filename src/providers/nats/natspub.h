/* SPDX-License-Identifier: MIT */
/*
 * natspub: publishes task events on NATS for the umbrella framework
 * (natsev.h says what each event holds and what it never holds).  Prefix
 * natspub_.  Optional twice: built only with libnats (configure
 * --without-nats leaves these functions as no-ops, and config refuses a
 * nats_url), and off unless nats_url is set.
 *
 * natspub_task_changed() runs in the caller's thread (the executor's
 * listener) and never waits on the network: it renders the event, puts it
 * on a bounded queue (NATSPUB_QUEUE_MAX; when full the new event is
 * dropped and counted) and returns.  One publisher thread owns the libnats
 * connection and calls natsConnection_Publish.  While it has never
 * connected (broker down at start) it retries with backoff and drops
 * (counts) what it takes off the queue; once connected, libnats reconnects
 * by itself and holds what is published meanwhile in a bounded buffer
 * (NATSPUB_RECONNECT_BUF bytes), beyond which events are dropped and
 * counted.  A broker that is down never blocks or fails a task.
 *
 * A task_status event goes out when a task's state changes (not on
 * progress alone): the last state sent per task is kept in a small
 * direct-mapped table, so a task whose slot another took may have a state
 * sent twice (consumers treat task_status as idempotent), never skipped.
 */
#ifndef IA_NATSPUB_H
#define IA_NATSPUB_H

#include <stdbool.h>

#include "lib/attrs.h"
#include "core/config.h"
#include "core/task.h"
#include "lib/strbuf.h"

#define NATSPUB_QUEUE_MAX 1024		/* events waiting for the thread */
#define NATSPUB_RECONNECT_BUF (1024 * 1024)	/* bytes held while
						 * reconnecting */
#define NATSPUB_TRACK_SLOTS 4096	/* last-state table */

/* Is NATS support built in (libnats found by configure)? */
bool natspub_available(void);

/*
 * Start the publisher thread when cfg->nats_url is set (else nothing to
 * do: 0).  cfg is borrowed until natspub_stop() returns.  Reads
 * nats_token_file, if set.  Never waits for the broker: connecting is the
 * thread's.  0, or -1 with *err (caller frees).
 */
WARN_UNUSED_RESULT
int natspub_start(const struct config *cfg, char **err);
/* Flush briefly (at most about a second), close the connection, stop the
 * thread; what is still queued is dropped and counted.  Safe when not
 * started. */
void natspub_stop(void);

/* The executor's listener: queue t's events (t is only read). */
void natspub_task_changed(const struct task *t);

struct natspub_stats {
	unsigned long published;	/* handed to libnats */
	unsigned long dropped;		/* queue full, not connected, or
					 * refused by libnats */
	bool connected;
};
void natspub_get_stats(struct natspub_stats *out);
/* The same as Prometheus text (a metrics collector). */
void natspub_metrics(struct strbuf *sb);

#endif
