/* SPDX-License-Identifier: MIT */
/*
 * push: asynchronous delivery of A2A push notifications (webhook POSTs).
 *
 * One delivery thread drives a curl multi handle; nothing else waits on the
 * network.  push_deliver() only copies its arguments into a bounded queue
 * (PUSH_QUEUE_MAX deliveries; when full the oldest waiting one is dropped
 * with a log line) and wakes the thread.  Each delivery is retried with
 * exponential backoff and jitter on network errors, 408, 429 and 5xx, up to
 * cfg->push_max_attempts attempts in total; 2xx means delivered, anything
 * else is a permanent failure.  Deliveries of the same task are sent in the
 * order they were queued: event n+1 starts only after event n is delivered
 * or given up.  Logs name the task and the URL's host, never the URL's path
 * or query, a token or credentials.
 *
 * Lifecycle: curl_global_init() (main) -> push_start() -> push_deliver()...
 * -> push_stop().  Deliveries queued before push_start() wait for it; those
 * queued after push_stop() are dropped.  push_start() may be called again
 * after push_stop().
 */
#ifndef IA_PUSH_H
#define IA_PUSH_H

#include "lib/attrs.h"
#include "core/config.h"
#include "lib/strbuf.h"

#define PUSH_QUEUE_MAX 10000	/* deliveries held, waiting or in flight */
#define PUSH_MAX_ACTIVE 32	/* transfers in flight at once */

/*
 * Start the delivery thread.  cfg is borrowed and must stay valid until
 * push_stop() returns.  0, or -1 with *err (caller frees); starting twice
 * is an error.
 */
WARN_UNUSED_RESULT
int push_start(const struct config *cfg, char **err);

/*
 * Stop the thread promptly (within about a second, unless it is inside a
 * DNS lookup), abandon pending and in-flight deliveries and log how many.
 * Safe to call when not started.
 */
void push_stop(void);

/*
 * Queue one delivery of body to url and return at once.  Every argument is
 * copied; task_id and url must not be NULL, the others may be (NULL and ""
 * mean absent; content_type defaults to "application/json").  Headers sent:
 * Content-Type; X-A2A-Notification-Token when token is non-empty;
 * Authorization: "<auth_scheme> <auth_credentials>" when auth_scheme is
 * non-empty.  A header value containing CR, LF or another control character
 * is refused: logged (without the value) and dropped, counted as failed.
 * url is checked with outbound_check_url() when each attempt starts; a
 * rejection is a permanent failure (logged, not retried).
 */
void push_deliver(const char *task_id, const char *url, const char *token,
    const char *auth_scheme, const char *auth_credentials,
    const char *content_type, const char *body);

/*
 * Counters since the process started: queued = accepted by push_deliver;
 * delivered = answered 2xx; failed = refused, dropped (queue full),
 * rejected by the SSRF filter, permanent HTTP failure or out of attempts;
 * retried = attempts scheduled after a failed one; pending = held now
 * (waiting or in flight).
 */
struct push_stats {
	unsigned long queued, delivered, failed, retried, pending;
};
void push_get_stats(struct push_stats *out);
/* The same as Prometheus text (a metrics collector). */
void push_metrics(struct strbuf *sb);

/* For tests: set the backoff base (default 1000 ms; minimum 1). */
void push_set_backoff_base_ms(long ms);

#endif
