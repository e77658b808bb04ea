/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "http/outbound.h"
#include "a2a/push.h"
#include "lib/xalloc.h"
#include "lib/strbuf.h"

#define TASK_BUCKETS 1024
#define RETRY_AFTER_MAX_S 300
#define BACKOFF_MAX_MS 60000
#define POLL_MAX_MS 1000

struct ptask;

/*
 * One queued notification.  The strings are immutable after push_deliver;
 * the other fields belong to the delivery thread while active is true and
 * to whoever holds push_mu otherwise.
 */
struct delivery {
	struct delivery *gprev, *gnext;	/* every delivery, oldest first */
	struct delivery *tnext;		/* next of the same task */
	struct ptask *task;
	char *url, *token, *auth_scheme, *auth_credentials, *content_type;
	char *body;
	size_t body_len;
	int attempts;			/* attempts started */
	int64_t due_ms;			/* next attempt not before
					 * (monotonic) */
	bool active;			/* an attempt is being made */
	CURL *easy;
	struct curl_slist *headers, *resolve;
	struct outbound_target target;	/* borrowed by easy while in flight */
};

/* The deliveries of one task, in order; only head may be active. */
struct ptask {
	char *id;
	struct delivery *head, *tail;
	struct ptask *hnext;		/* hash bucket */
	struct ptask *prev, *next;	/* scheduling order */
};

enum push_state { PUSH_IDLE, PUSH_RUNNING, PUSH_STOPPED };

static pthread_mutex_t push_mu = PTHREAD_MUTEX_INITIALIZER;

/* All under push_mu, except that the thread uses multi and cfg freely
   between push_start and the join in push_stop. */
static struct {
	enum push_state state;
	bool stop;
	const struct config *cfg;
	CURLM *multi;
	pthread_t thread;
	struct delivery *oldest, *newest;
	struct ptask *first, *last;
	struct ptask *buckets[TASK_BUCKETS];
	unsigned long count;		/* deliveries held */
	unsigned long active;		/* attempts in flight */
	long backoff_base_ms;
	struct push_stats st;
} P = { .state = PUSH_IDLE, .backoff_base_ms = 1000 };

static unsigned
hash_id(const char *s)
{
	return hash_fnv1a(s) % TASK_BUCKETS;
}

/* ------------------------------------------------ queue, under push_mu -- */

static struct ptask *
task_get(const char *id)
{
	unsigned b = hash_id(id);
	struct ptask *t;

	for (t = P.buckets[b]; t != NULL; t = t->hnext)
		if (strcmp(t->id, id) == 0)
			return t;
	t = xcalloc(1, sizeof(*t));
	t->id = xstrdup(id);
	t->hnext = P.buckets[b];
	P.buckets[b] = t;
	t->prev = P.last;
	if (P.last != NULL)
		P.last->next = t;
	else
		P.first = t;
	P.last = t;
	return t;
}

static void
task_unlink_order(struct ptask *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		P.first = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	else
		P.last = t->prev;
	t->prev = t->next = NULL;
}

/* Move t to the end of the scheduling order (round robin). */
static void
task_to_back(struct ptask *t)
{
	if (P.last == t)
		return;
	task_unlink_order(t);
	t->prev = P.last;
	P.last->next = t;
	P.last = t;
}

static void
task_free(struct ptask *t)
{
	struct ptask **pp;

	for (pp = &P.buckets[hash_id(t->id)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	task_unlink_order(t);
	free(t->id);
	free(t);
}

static void
queue_append(struct delivery *d, const char *task_id)
{
	struct ptask *t = task_get(task_id);

	d->task = t;
	if (t->tail != NULL)
		t->tail->tnext = d;
	else
		t->head = d;
	t->tail = d;
	d->gprev = P.newest;
	if (P.newest != NULL)
		P.newest->gnext = d;
	else
		P.oldest = d;
	P.newest = d;
	P.count++;
}

/* Take d out of every list (it must not be in flight); d is not freed. */
static void
queue_remove(struct delivery *d)
{
	struct ptask *t = d->task;
	struct delivery *p;

	if (d->gprev != NULL)
		d->gprev->gnext = d->gnext;
	else
		P.oldest = d->gnext;
	if (d->gnext != NULL)
		d->gnext->gprev = d->gprev;
	else
		P.newest = d->gprev;
	if (t->head == d) {
		t->head = d->tnext;
		if (t->tail == d)
			t->tail = NULL;
	} else {
		for (p = t->head; p != NULL && p->tnext != d; p = p->tnext)
			;
		if (p != NULL) {
			p->tnext = d->tnext;
			if (t->tail == d)
				t->tail = p;
		}
	}
	if (t->head == NULL)
		task_free(t);
	d->task = NULL;
	d->gprev = d->gnext = d->tnext = NULL;
	P.count--;
}

static void
delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	free(d->url);
	free(d->token);
	free(d->auth_scheme);
	free(d->auth_credentials);
	free(d->content_type);
	free(d->body);
	curl_slist_free_all(d->headers);
	curl_slist_free_all(d->resolve);
	free(d);
}

/*
 * Mark up to max deliveries that are due as active and put them in out[]:
 * the head of each task only.  *next_due gets the earliest due time of the
 * heads still waiting, or -1.
 */
static size_t
pick_ready(int64_t now, struct delivery **out, size_t max, int64_t *next_due)
{
	struct ptask *t, *next, *stop_at = P.last;
	size_t n = 0;

	*next_due = -1;
	for (t = P.first; t != NULL; t = next) {
		struct delivery *d = t->head;
		bool last = t == stop_at;

		next = t->next;
		if (!d->active) {
			if (d->due_ms <= now && n < max &&
			    P.active < PUSH_MAX_ACTIVE) {
				d->active = true;
				P.active++;
				out[n++] = d;
				task_to_back(t);
			} else if (*next_due < 0 || d->due_ms < *next_due) {
				*next_due = d->due_ms;
			}
		}
		if (last)
			break;
	}
	return n;
}

/* ---------------------------------------------------- delivery thread -- */

/* Delay before the next attempt after `attempts` failed ones. */
static int64_t
retry_delay_ms(int attempts, long retry_after_s)
{
	int64_t d;

	if (retry_after_s > 0) {
		if (retry_after_s > RETRY_AFTER_MAX_S)
			retry_after_s = RETRY_AFTER_MAX_S;
		return (int64_t)retry_after_s * 1000;
	}
	pthread_mutex_lock(&push_mu);
	d = P.backoff_base_ms;
	pthread_mutex_unlock(&push_mu);
	/* +-25% */
	d = backoff_quarter_jitter(backoff_exp_ms(d, BACKOFF_MAX_MS, attempts));
	return d > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d;
}

/* A delivery is over: count it, unqueue it and free it. */
static void
delivery_done(struct delivery *d, bool delivered)
{
	pthread_mutex_lock(&push_mu);
	if (delivered)
		P.st.delivered++;
	else
		P.st.failed++;
	P.active--;
	d->active = false;
	queue_remove(d);
	pthread_mutex_unlock(&push_mu);
	delivery_free(d);
}

static void
log_delivery(enum log_level level, const char *event, const char *msg,
    const struct delivery *d, long status, const char *reason)
{
	char attempts[16], code[16];

	snprintf(attempts, sizeof(attempts), "%d", d->attempts);
	snprintf(code, sizeof(code), "%ld", status);
	log_kv(level, event, msg, "task", d->task->id,
	    "host", d->target.host[0] ? d->target.host : NULL,
	    "attempts", attempts, "status", status > 0 ? code : NULL,
	    "reason", reason, NULL);
}

static void
add_header(struct curl_slist **list, char *line)
{
	struct curl_slist *n = curl_slist_append(*list, line);

	free(line);
	if (n == NULL) {
		log_msg(LOG_ERROR, "out_of_memory", "curl_slist_append");
		abort();
	}
	*list = n;
}

/* Begin an attempt of d (active, owned by this thread).  -1 when it ended
   at once (URL rejected): d is then freed. */
static int
attempt_start(struct delivery *d)
{
	const struct config *cfg = P.cfg;
	char *err = NULL;
	CURLMcode mc;

	d->attempts++;
	if (outbound_check_url(cfg, d->url, &d->target, &err) < 0) {
		log_delivery(LOG_WARN, "push_failed",
		    "push URL rejected, not retried", d, 0, err);
		free(err);
		delivery_done(d, false);
		return -1;
	}
	d->easy = curl_easy_init();
	if (d->easy == NULL) {
		log_msg(LOG_ERROR, "out_of_memory", "curl_easy_init");
		abort();
	}
	curl_easy_setopt(d->easy, CURLOPT_URL, d->url);
	outbound_curl_setup(cfg, d->easy, &d->target, cfg->push_timeout,
	    &d->resolve);
	curl_easy_setopt(d->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)d->body_len);
	if (d->headers == NULL) {
		add_header(&d->headers, xasprintf("Content-Type: %s",
		    d->content_type));
		if (d->token[0] != '\0')
			add_header(&d->headers, xasprintf(
			    "X-A2A-Notification-Token: %s", d->token));
		if (d->auth_scheme[0] != '\0')
			add_header(&d->headers,
			    xasprintf("Authorization: %s%s%s", d->auth_scheme,
			    d->auth_credentials[0] ? " " : "",
			    d->auth_credentials));
		add_header(&d->headers, xstrdup("Expect:"));
	}
	curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(d->easy, CURLOPT_PRIVATE, (void *)d);
	mc = curl_multi_add_handle(P.multi, d->easy);
	if (mc != CURLM_OK) {
		log_delivery(LOG_ERROR, "push_failed", "curl_multi_add_handle "
		    "failed", d, 0, curl_multi_strerror(mc));
		curl_easy_cleanup(d->easy);
		d->easy = NULL;
		delivery_done(d, false);
		return -1;
	}
	return 0;
}

/* An attempt's transfer finished with res. */
static void
attempt_finish(CURL *easy, CURLcode res)
{
	struct delivery *d;
	char *priv = NULL;
	long status = 0, max_attempts;
	curl_off_t retry_after = 0;
	int64_t delay;
	char reason[64];
	bool retry;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	d = (struct delivery *)(void *)priv;
	if (res == CURLE_OK) {
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
	}
	curl_multi_remove_handle(P.multi, easy);
	curl_easy_cleanup(easy);
	d->easy = NULL;
	curl_slist_free_all(d->resolve);
	d->resolve = NULL;

	if (res == CURLE_OK && status >= 200 && status < 300) {
		log_delivery(LOG_INFO, "push_delivered",
		    "push notification delivered", d, status, NULL);
		delivery_done(d, true);
		return;
	}
	if (res != CURLE_OK) {
		/* curl_easy_strerror, not the error buffer: the generic text
		   cannot carry any part of the URL. */
		snprintf(reason, sizeof(reason), "%s", curl_easy_strerror(res));
		retry = true;
	} else {
		snprintf(reason, sizeof(reason), "HTTP %ld", status);
		retry = status == 408 || status == 429 || status >= 500;
	}
	if (!retry) {
		log_delivery(LOG_WARN, "push_failed", "push notification "
		    "refused by the receiver, not retried", d, status, reason);
		delivery_done(d, false);
		return;
	}
	max_attempts = P.cfg->push_max_attempts;
	if (d->attempts >= max_attempts) {
		log_delivery(LOG_WARN, "push_failed", "push notification "
		    "given up: out of attempts", d, status, reason);
		delivery_done(d, false);
		return;
	}
	if (status != 429 && status != 503)
		retry_after = 0;
	delay = retry_delay_ms(d->attempts,
	    retry_after > 0 ? (long)(retry_after > RETRY_AFTER_MAX_S ?
	    RETRY_AFTER_MAX_S : retry_after) : 0);
	{
		char ms[24];
		snprintf(ms, sizeof(ms), "%lld", (long long)delay);
		log_kv(LOG_INFO, "push_retry", "push notification attempt "
		    "failed, will retry", "task", d->task->id,
		    "host", d->target.host, "reason", reason,
		    "retry_in_ms", ms, NULL);
	}
	pthread_mutex_lock(&push_mu);
	d->due_ms = clock_mono_ms() + delay;
	d->active = false;
	P.active--;
	P.st.retried++;
	pthread_mutex_unlock(&push_mu);
}

static void *
push_thread(void *arg)
{
	struct delivery *ready[PUSH_MAX_ACTIVE];
	struct delivery *d;

	for (;;) {
		int64_t next_due, wait_ms;
		bool progress = false;
		size_t n, i;
		CURLMsg *msg;
		int running, left;

		pthread_mutex_lock(&push_mu);
		if (P.stop) {
			pthread_mutex_unlock(&push_mu);
			break;
		}
		n = pick_ready(clock_mono_ms(), ready, PUSH_MAX_ACTIVE,
		    &next_due);
		pthread_mutex_unlock(&push_mu);
		for (i = 0; i < n; i++)
			if (attempt_start(ready[i]) < 0)
				progress = true;
		curl_multi_perform(P.multi, &running);
		while ((msg = curl_multi_info_read(P.multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			attempt_finish(msg->easy_handle, msg->data.result);
			progress = true;
		}
		if (progress) {
			wait_ms = 0;
		} else if (next_due < 0) {
			wait_ms = POLL_MAX_MS;
		} else {
			wait_ms = next_due - clock_mono_ms();
			if (wait_ms < 0)
				wait_ms = 0;
			if (wait_ms > POLL_MAX_MS)
				wait_ms = POLL_MAX_MS;
		}
		curl_multi_poll(P.multi, NULL, 0, (int)wait_ms, NULL);
	}

	/* Abandon what is in flight; push_stop frees the queue. */
	pthread_mutex_lock(&push_mu);
	for (d = P.oldest; d != NULL; d = d->gnext)
		if (d->easy != NULL) {
			curl_multi_remove_handle(P.multi, d->easy);
			curl_easy_cleanup(d->easy);
			d->easy = NULL;
		}
	pthread_mutex_unlock(&push_mu);
	return NULL;
}

/* ------------------------------------------------------------- public -- */

int
push_start(const struct config *cfg, char **err)
{
	int rc = -1, e;

	*err = NULL;
	pthread_mutex_lock(&push_mu);
	if (P.state == PUSH_RUNNING) {
		*err = xstrdup("push delivery already started");
		goto cleanup;
	}
	P.multi = curl_multi_init();
	if (P.multi == NULL) {
		*err = xstrdup("push: curl_multi_init failed");
		goto cleanup;
	}
	P.cfg = cfg;
	P.stop = false;
	P.active = 0;
	e = pthread_create(&P.thread, NULL, push_thread, NULL);
	if (e != 0) {
		*err = xasprintf("push: cannot start the delivery thread: %s",
		    strerror(e));
		curl_multi_cleanup(P.multi);
		P.multi = NULL;
		goto cleanup;
	}
	P.state = PUSH_RUNNING;
	rc = 0;
cleanup:
	pthread_mutex_unlock(&push_mu);
	if (rc == 0)
		log_msg(LOG_INFO, "push_started", "push delivery started "
		    "(%ld attempts, %ld s timeout)", cfg->push_max_attempts,
		    cfg->push_timeout);
	return rc;
}

void
push_stop(void)
{
	struct delivery *d;
	unsigned long abandoned = 0;
	CURLM *multi;

	pthread_mutex_lock(&push_mu);
	if (P.state != PUSH_RUNNING) {
		P.state = PUSH_STOPPED;
		pthread_mutex_unlock(&push_mu);
		return;
	}
	P.stop = true;
	curl_multi_wakeup(P.multi);
	pthread_mutex_unlock(&push_mu);

	pthread_join(P.thread, NULL);

	pthread_mutex_lock(&push_mu);
	while ((d = P.oldest) != NULL) {
		d->active = false;
		queue_remove(d);
		delivery_free(d);
		abandoned++;
	}
	P.active = 0;
	multi = P.multi;
	P.multi = NULL;
	P.cfg = NULL;
	P.state = PUSH_STOPPED;
	pthread_mutex_unlock(&push_mu);
	curl_multi_cleanup(multi);
	log_msg(abandoned ? LOG_WARN : LOG_INFO, "push_stopped",
	    "push delivery stopped, %lu pending notification(s) abandoned",
	    abandoned);
}

/* Does s hold a byte that must not be in a header value? */
static bool
bad_header_value(const char *s)
{
	for (; s != NULL && *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

static void
refuse(const char *task_id, const char *why)
{
	log_kv(LOG_WARN, "push_refused", why, "task", task_id, NULL);
	pthread_mutex_lock(&push_mu);
	P.st.failed++;
	pthread_mutex_unlock(&push_mu);
}

void
push_deliver(const char *task_id, const char *url, const char *token,
    const char *auth_scheme, const char *auth_credentials,
    const char *content_type, const char *body)
{
	struct delivery *d, *old;

	if (task_id == NULL || url == NULL) {
		refuse(task_id, "push notification refused: no task or URL");
		return;
	}
	if (bad_header_value(token)) {
		refuse(task_id, "push notification refused: token contains "
		    "CR, LF or a control character");
		return;
	}
	if (bad_header_value(auth_scheme) ||
	    bad_header_value(auth_credentials)) {
		refuse(task_id, "push notification refused: authentication "
		    "contains CR, LF or a control character");
		return;
	}
	if (bad_header_value(content_type)) {
		refuse(task_id, "push notification refused: content type "
		    "contains CR, LF or a control character");
		return;
	}

	d = xcalloc(1, sizeof(*d));
	d->url = xstrdup(url);
	d->token = xstrdup(token ? token : "");
	d->auth_scheme = xstrdup(auth_scheme ? auth_scheme : "");
	d->auth_credentials = xstrdup(auth_credentials ? auth_credentials : "");
	d->content_type = xstrdup(content_type && content_type[0] ?
	    content_type : "application/json");
	d->body = xstrdup(body ? body : "");
	d->body_len = strlen(d->body);

	pthread_mutex_lock(&push_mu);
	if (P.state == PUSH_STOPPED) {
		P.st.failed++;
		pthread_mutex_unlock(&push_mu);
		log_kv(LOG_WARN, "push_refused", "push notification dropped: "
		    "push delivery is stopped", "task", task_id, NULL);
		delivery_free(d);
		return;
	}
	if (P.count >= PUSH_QUEUE_MAX) {
		for (old = P.oldest; old != NULL && old->active;
		    old = old->gnext)
			;
		if (old != NULL) {
			log_kv(LOG_WARN, "push_dropped", "push queue full, "
			    "oldest waiting notification dropped",
			    "task", old->task->id, NULL);
			queue_remove(old);
			delivery_free(old);
			P.st.failed++;
		}
	}
	queue_append(d, task_id);
	P.st.queued++;
	if (P.multi != NULL)
		curl_multi_wakeup(P.multi);
	pthread_mutex_unlock(&push_mu);
}

void
push_get_stats(struct push_stats *out)
{
	pthread_mutex_lock(&push_mu);
	*out = P.st;
	out->pending = P.count;
	pthread_mutex_unlock(&push_mu);
}

void
push_set_backoff_base_ms(long ms)
{
	pthread_mutex_lock(&push_mu);
	P.backoff_base_ms = ms < 1 ? 1 : ms;
	pthread_mutex_unlock(&push_mu);
}

void
push_metrics(struct strbuf *sb)
{
	struct push_stats ps;

	push_get_stats(&ps);
	sb_addf(sb, "# TYPE instag_agent_push_delivered_total counter\n"
	    "instag_agent_push_delivered_total %lu\n"
	    "# TYPE instag_agent_push_failed_total counter\n"
	    "instag_agent_push_failed_total %lu\n"
	    "# TYPE instag_agent_push_retried_total counter\n"
	    "instag_agent_push_retried_total %lu\n"
	    "# TYPE instag_agent_push_pending gauge\n"
	    "instag_agent_push_pending %lu\n",
	    ps.delivered, ps.failed, ps.retried, ps.pending);
}
