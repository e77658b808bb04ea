/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "a2a/hub.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "tasks/tasks.h"
#include "lib/xalloc.h"

enum sub_kind { SUB_STREAM, SUB_WAIT };

#define HUB_WATCH_BUCKETS 256	/* the watched task ids' hash table */
#define HUB_SEEN_SLOTS 1024	/* the published-versions table */

/* A task id some subscriber waits on (under H.lock): how many of each. */
struct watch {
	struct watch *next;
	char id[UUID_STR_LEN];
	unsigned long streams, waits;
};

/* The versions published of the task id that took this slot last, since
 * it took it (under H.lock); id "" when none. */
struct seen {
	char id[UUID_STR_LEN];
	int64_t first;		/* the version that took the slot */
	int64_t newest;
	int64_t final;		/* the newest in a final state, or -1 */
};

struct sub {
	struct sub *next;
	enum sub_kind kind;
	struct http_req *r;
	char task_id[UUID_STR_LEN];
	char *owner;
	enum a2a_dialect d;
	json_object *rpc_id;
	int history_len;
	int64_t deadline_ms;	/* SUB_WAIT */
	int64_t next_beat_ms;	/* SUB_STREAM */
	int64_t version;	/* last version sent */
	int64_t known;		/* SUB_WAIT: the caller's version, or -1 */
	bool started;		/* initial snapshot sent */
};

struct item {
	struct item *next;
	struct sub *sub;	/* a new subscriber, or */
	struct task *task;	/* an update */
};

static struct {
	const struct config *cfg;
	pthread_t thread;
	bool running, stopping;
	int wakefd;
	pthread_mutex_t lock;
	struct item *head, *tail;	/* queue, under lock */
	struct sub *subs;		/* hub thread only */
	unsigned long nsubs;		/* under lock */
	struct watch *watch[HUB_WATCH_BUCKETS];	/* under lock */
	struct seen seen[HUB_SEEN_SLOTS];	/* under lock */
	struct hub_stats stats;
} H = { .lock = PTHREAD_MUTEX_INITIALIZER, .wakefd = -1 };

/* ---- watched ids and published versions (H.lock held) -------------------- */

static struct watch **
watch_slot(const char *id)
{
	struct watch **pp = &H.watch[hash_fnv1a(id) % HUB_WATCH_BUCKETS];

	while (*pp != NULL && strcmp((*pp)->id, id) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void
watch_add_locked(const char *id, enum sub_kind kind)
{
	struct watch **pp = watch_slot(id), *w = *pp;

	if (w == NULL) {
		w = xcalloc(1, sizeof(*w));
		snprintf(w->id, sizeof(w->id), "%s", id);
		*pp = w;
	}
	if (kind == SUB_STREAM)
		w->streams++;
	else
		w->waits++;
}

static void
watch_del_locked(const char *id, enum sub_kind kind)
{
	struct watch **pp = watch_slot(id), *w = *pp;

	if (w == NULL)
		return;
	if (kind == SUB_STREAM && w->streams > 0)
		w->streams--;
	else if (kind == SUB_WAIT && w->waits > 0)
		w->waits--;
	if (w->streams == 0 && w->waits == 0) {
		*pp = w->next;
		free(w);
	}
}

static struct seen *
seen_slot(const char *id)
{
	return &H.seen[hash_fnv1a(id) % HUB_SEEN_SLOTS];
}

static void
hub_wake(void)
{
	uint64_t one = 1;
	(void)!write(H.wakefd, &one, sizeof(one));
}

static void
enqueue(struct item *it)
{
	pthread_mutex_lock(&H.lock);
	if (H.tail)
		H.tail->next = it;
	else
		H.head = it;
	H.tail = it;
	pthread_mutex_unlock(&H.lock);
	hub_wake();
}

static void
sub_free(struct sub *s)
{
	pthread_mutex_lock(&H.lock);
	H.nsubs--;
	watch_del_locked(s->task_id, s->kind);
	pthread_mutex_unlock(&H.lock);
	http_req_free(s->r);
	json_object_put(s->rpc_id);
	free(s->owner);
	free(s);
}

static int
send_json(struct sub *s, json_object *result)
{
	json_object *msg = render_rpc_result(s->rpc_id, result);
	int rc = http_sse_event(s->r, json_object_to_json_string_ext(msg,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(msg);
	H.stats.events++;
	return rc;
}

/* Answer a blocking wait with t (or an error if the task vanished). */
/* The task as it stands in the store, or NULL when it is gone or the
 * store failed (answer_wait then answers an error).  Caller frees. */
static struct task *
load_task(const char *id, const char *owner)
{
	struct task *t = NULL;

	if (tasks_get(id, owner, &t) != 0) {
		task_free(t);
		return NULL;
	}
	return t;
}

static void
answer_wait(struct sub *s, const struct task *t)
{
	json_object *msg;

	if (t != NULL) {
		json_object *res = render_task(t, s->d, s->history_len);
		if (s->d == A2A_V10) {
			json_object *w = json_object_new_object();
			json_object_object_add(w, "task", res);
			res = w;
		}
		msg = render_rpc_result(s->rpc_id, res);
	} else
		msg = render_rpc_error(s->rpc_id, s->d, A2A_TASK_NOT_FOUND,
		    "Task not found");
	http_json(s->r, 200, msg, NULL);
	json_object_put(msg);
}

static bool
final_state(enum task_state st)
{
	return task_state_terminal(st) || task_state_interrupted(st);
}

/* Deliver t to s; returns true when s is finished. */
static bool
deliver(struct sub *s, const struct task *t)
{
	if (t->version <= s->version)
		return false;
	s->version = t->version;
	if (s->kind == SUB_WAIT) {
		if (!final_state(t->state))
			return false;
		answer_wait(s, t);
		return true;
	}
	if (final_state(t->state)) {
		json_object *arts = render_artifact_events(t, s->d);
		size_t i, n = json_object_array_length(arts);
		for (i = 0; i < n; i++)
			if (send_json(s, json_object_get(
			    json_object_array_get_idx(arts, i))) < 0)
				break;
		json_object_put(arts);
	}
	if (send_json(s, render_status_event(t, s->d)) < 0)
		return true;
	return final_state(t->state);
}

/*
 * When a stream that beat (or began) at now beats next: sse_heartbeat
 * seconds on, rounded up to a whole HEARTBEAT_SLOT_MS, so that the streams
 * share the hub's wake-ups (one per slot at most, not one per stream:
 * each wake walks every subscriber).
 */
#define HEARTBEAT_SLOT_MS 1000
static int64_t
beat_due(int64_t now)
{
	int64_t d = now + H.cfg->sse_heartbeat * 1000;

	return (d + HEARTBEAT_SLOT_MS - 1) / HEARTBEAT_SLOT_MS *
	    HEARTBEAT_SLOT_MS;
}

/*
 * May the wait s start without reading its task: has its seen slot
 * followed the task since the caller's version (known, itself not final),
 * with no final version since?  Then *newest is the newest version
 * published, and every later one reaches s through the queue (its task
 * was watched before s was queued).  False when another task took the
 * slot in between: a version published before s was queued (and so not
 * queued for it) might be final.
 */
static bool
wait_from_snapshot(const struct sub *s, int64_t *newest)
{
	const struct seen *sn;
	bool ok;

	if (s->kind != SUB_WAIT || s->known < 0)
		return false;
	pthread_mutex_lock(&H.lock);
	sn = seen_slot(s->task_id);
	ok = strcmp(sn->id, s->task_id) == 0 && sn->first <= s->known &&
	    sn->newest >= s->known && sn->final < s->known;
	*newest = sn->newest;
	pthread_mutex_unlock(&H.lock);
	return ok;
}

/* Start a new subscriber: snapshot first (a wait whose caller's version
 * is still the newest needs none).  True when already finished. */
static bool
start_sub(struct sub *s)
{
	struct task *t = NULL;
	int64_t newest;
	bool done;

	s->started = true;
	if (wait_from_snapshot(s, &newest)) {
		s->version = newest;
		H.stats.waits_snapshot++;
		return false;
	}
	if (s->kind == SUB_WAIT)
		H.stats.waits_read++;
	if (tasks_get(s->task_id, s->owner, &t) != 0) {
		if (s->kind == SUB_WAIT)
			answer_wait(s, NULL);
		else if (http_sse_begin(s->r) == 0) {
			json_object *e = render_rpc_error(s->rpc_id, s->d,
			    A2A_TASK_NOT_FOUND, "Task not found");
			/* The stream ends here either way: a peer already
			 * gone changes nothing. */
			IGNORE_RESULT(http_sse_event(s->r,
			    json_object_to_json_string_ext(e,
			    JSON_C_TO_STRING_PLAIN)));
			json_object_put(e);
		}
		return true;
	}
	s->version = t->version;
	if (s->kind == SUB_WAIT) {
		done = final_state(t->state);
		if (done)
			answer_wait(s, t);
	} else {
		done = http_sse_begin(s->r) < 0 ||
		    send_json(s, render_stream_task(t, s->d)) < 0 ||
		    final_state(t->state);
		if (!done)
			s->next_beat_ms = beat_due(clock_mono_ms());
	}
	task_free(t);
	return done;
}

/* True when the peer closed the connection. */
static bool
peer_gone(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) || n > 0;	/* unexpected input: abort record */
}

static void
remove_sub(struct sub **pp)
{
	struct sub *s = *pp;

	*pp = s->next;
	if (s->kind == SUB_STREAM)
		H.stats.streams--;
	else
		H.stats.waits--;
	sub_free(s);
}

static void *
hub_main(void *arg)
{
	struct pollfd *pfd = NULL;
	size_t pcap = 0;

	(void)arg;
	for (;;) {
		struct item *q, *it;
		struct sub **pp, *s;
		int64_t now, timeout = 60000;
		size_t n = 1, i;
		bool stop;
		uint64_t v;

		pthread_mutex_lock(&H.lock);
		q = H.head;
		H.head = H.tail = NULL;
		stop = H.stopping;
		pthread_mutex_unlock(&H.lock);

		/* 1. queue: new subscribers and updates, in order */
		while ((it = q) != NULL) {
			q = it->next;
			if (it->sub != NULL) {
				it->sub->next = H.subs;
				H.subs = it->sub;
				if (it->sub->kind == SUB_STREAM)
					H.stats.streams++;
				else
					H.stats.waits++;
				if (start_sub(it->sub))
					remove_sub(&H.subs);
			} else {
				for (pp = &H.subs; (s = *pp) != NULL;) {
					if (strcmp(s->task_id,
					    it->task->id) == 0 &&
					    deliver(s, it->task))
						remove_sub(pp);
					else
						pp = &s->next;
				}
				task_free(it->task);
			}
			free(it);
		}
		if (stop)
			break;

		/* 2. deadlines and heartbeats */
		now = clock_mono_ms();
		for (pp = &H.subs; (s = *pp) != NULL;) {
			bool done = false;
			if (s->kind == SUB_WAIT && now >= s->deadline_ms) {
				struct task *t = load_task(s->task_id,
				    s->owner);
				answer_wait(s, t);
				task_free(t);
				H.stats.waits_expired++;
				done = true;
			} else if (s->kind == SUB_STREAM &&
			    now >= s->next_beat_ms) {
				done = http_sse_comment(s->r, "") < 0;
				s->next_beat_ms = beat_due(now);
			}
			if (done) {
				remove_sub(pp);
				continue;
			}
			{
				int64_t due = s->kind == SUB_WAIT ?
				    s->deadline_ms : s->next_beat_ms;
				if (due - now < timeout)
					timeout = due - now;
			}
			pp = &s->next;
			n++;
		}

		/* 3. wait for the wake fd or a client going away */
		if (n > pcap) {
			pcap = n * 2;
			pfd = xrealloc(pfd, pcap * sizeof(*pfd));
		}
		pfd[0].fd = H.wakefd;
		pfd[0].events = POLLIN;
		for (i = 1, s = H.subs; s; s = s->next, i++) {
			pfd[i].fd = s->r->fcgx->ipcFd;
			pfd[i].events = POLLIN | POLLRDHUP;
			pfd[i].revents = 0;
		}
		if (poll(pfd, n, timeout < 0 ? 0 : (int)timeout) < 0 &&
		    errno != EINTR)
			log_msg(LOG_ERROR, "hub_poll", "poll: %s",
			    strerror(errno));
		if (pfd[0].revents & POLLIN)
			(void)!read(H.wakefd, &v, sizeof(v));
		for (i = 1, pp = &H.subs; (s = *pp) != NULL; i++) {
			if (pfd[i].revents != 0 && peer_gone(pfd[i].fd)) {
				log_kv(LOG_DEBUG, "stream_closed",
				    "client went away", "task", s->task_id,
				    NULL);
				remove_sub(pp);
			} else
				pp = &s->next;
		}
	}
	/* stopping: answer waits with the task as it stands, end streams */
	while (H.subs != NULL) {
		struct sub *s = H.subs;
		if (s->kind == SUB_WAIT) {
			struct task *t = load_task(s->task_id, s->owner);
			answer_wait(s, t);
			task_free(t);
		}
		remove_sub(&H.subs);
	}
	free(pfd);
	return NULL;
}

int
hub_start(const struct config *cfg, char **err)
{
	H.cfg = cfg;
	H.stopping = false;
	H.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (H.wakefd < 0) {
		*err = xasprintf("eventfd: %s", strerror(errno));
		return -1;
	}
	if (pthread_create(&H.thread, NULL, hub_main, NULL) != 0) {
		*err = xstrdup("cannot start the event hub thread");
		close(H.wakefd);
		return -1;
	}
	H.running = true;
	return 0;
}

void
hub_stop(void)
{
	struct item *it;

	if (!H.running)
		return;
	pthread_mutex_lock(&H.lock);
	H.stopping = true;
	pthread_mutex_unlock(&H.lock);
	hub_wake();
	pthread_join(H.thread, NULL);
	H.running = false;
	while ((it = H.head) != NULL) {
		H.head = it->next;
		if (it->sub) {
			if (it->sub->kind == SUB_WAIT) {
				struct task *t = load_task(it->sub->task_id,
				    it->sub->owner);
				answer_wait(it->sub, t);
				task_free(t);
			}
			sub_free(it->sub);
		}
		task_free(it->task);
		free(it);
	}
	H.tail = NULL;
	close(H.wakefd);
	H.wakefd = -1;
}

static int
add_sub(enum sub_kind kind, struct http_req *r, const char *task_id,
    const char *owner, enum a2a_dialect d, json_object *rpc_id, int wait_s,
    int history_len, int64_t known)
{
	struct item *it;
	struct sub *s;

	if (strlen(task_id) >= UUID_STR_LEN)
		return -1;
	pthread_mutex_lock(&H.lock);
	if (!H.running || H.stopping ||
	    H.nsubs >= (unsigned long)H.cfg->sse_max_streams) {
		pthread_mutex_unlock(&H.lock);
		return -1;
	}
	H.nsubs++;
	/* Watched before it is queued: every update published from now on
	 * is queued behind it. */
	watch_add_locked(task_id, kind);
	pthread_mutex_unlock(&H.lock);
	s = xcalloc(1, sizeof(*s));
	s->known = kind == SUB_WAIT ? known : -1;
	s->kind = kind;
	s->r = r;
	snprintf(s->task_id, sizeof(s->task_id), "%s", task_id);
	s->owner = xstrdup(owner);
	s->d = d;
	s->rpc_id = rpc_id ? ju_copy(rpc_id) : NULL;
	s->history_len = history_len;
	s->deadline_ms = clock_mono_ms() + (int64_t)wait_s * 1000;
	it = xcalloc(1, sizeof(*it));
	it->sub = s;
	enqueue(it);
	return 0;
}

int
hub_stream(struct http_req *r, const char *task_id, const char *owner,
    enum a2a_dialect d, json_object *rpc_id)
{
	return add_sub(SUB_STREAM, r, task_id, owner, d, rpc_id, 0, -1, -1);
}

int
hub_wait(struct http_req *r, const char *task_id, const char *owner,
    enum a2a_dialect d, json_object *rpc_id, int wait_s, int history_len,
    int64_t version)
{
	return add_sub(SUB_WAIT, r, task_id, owner, d, rpc_id, wait_s,
	    history_len, version);
}

/* Note that version of task id was published (lock held); final: it
 * ends a wait (terminal, or input needed). */
static void
seen_note_locked(const char *id, int64_t version, bool final)
{
	struct seen *sn = seen_slot(id);

	if (strcmp(sn->id, id) != 0) {
		snprintf(sn->id, sizeof(sn->id), "%s", id);
		sn->first = sn->newest = version;
		sn->final = -1;
	} else if (version > sn->newest)
		sn->newest = version;
	if (final && version > sn->final)
		sn->final = version;
}

bool
hub_remote_change(const char *task_id, int64_t version)
{
	bool watched;

	pthread_mutex_lock(&H.lock);
	if (!H.running) {
		pthread_mutex_unlock(&H.lock);
		return false;
	}
	/* Whether the version ends the task is unknown here: count it as
	 * final, so that a wait started from an older snapshot reads the
	 * task instead of waiting for an update already made. */
	seen_note_locked(task_id, version, true);
	watched = *watch_slot(task_id) != NULL;
	pthread_mutex_unlock(&H.lock);
	return watched;
}

void
hub_publish(const struct task *t)
{
	struct watch *w;
	struct item *it;
	bool want;

	pthread_mutex_lock(&H.lock);
	if (!H.running) {
		pthread_mutex_unlock(&H.lock);
		return;
	}
	seen_note_locked(t->id, t->version, final_state(t->state));
	/* A subscriber added later starts from a fresh snapshot, or from
	 * its caller's when seen says nothing newer was published.  A wait
	 * takes only the update that ends it (deliver). */
	w = *watch_slot(t->id);
	want = w != NULL && (w->streams > 0 || final_state(t->state));
	if (!want) {
		pthread_mutex_unlock(&H.lock);
		return;
	}
	/* Queued under the lock: the seen slot and the queue agree on the
	 * order of the updates of one task. */
	it = xcalloc(1, sizeof(*it));
	it->task = task_clone(t);
	if (H.tail)
		H.tail->next = it;
	else
		H.head = it;
	H.tail = it;
	pthread_mutex_unlock(&H.lock);
	hub_wake();
}

void
hub_get_stats(struct hub_stats *out)
{
	pthread_mutex_lock(&H.lock);
	*out = H.stats;
	pthread_mutex_unlock(&H.lock);
}

void
hub_metrics(struct strbuf *sb)
{
	struct hub_stats hs;

	hub_get_stats(&hs);
	sb_addf(sb, "# TYPE instag_agent_sse_streams gauge\n"
	    "instag_agent_sse_streams %lu\n"
	    "# TYPE instag_agent_blocking_waits gauge\n"
	    "instag_agent_blocking_waits %lu\n"
	    "# TYPE instag_agent_stream_events_total counter\n"
	    "instag_agent_stream_events_total %lu\n"
	    "# TYPE instag_agent_blocking_waits_snapshot_total counter\n"
	    "instag_agent_blocking_waits_snapshot_total %lu\n"
	    "# TYPE instag_agent_blocking_waits_read_total counter\n"
	    "instag_agent_blocking_waits_read_total %lu\n"
	    "# TYPE instag_agent_blocking_waits_expired_total counter\n"
	    "instag_agent_blocking_waits_expired_total %lu\n",
	    hs.streams, hs.waits, hs.events, hs.waits_snapshot,
	    hs.waits_read, hs.waits_expired);
}
