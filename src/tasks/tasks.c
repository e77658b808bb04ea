/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "tasks/tasks.h"
#include "tasks/trev.h"
#include "lib/xalloc.h"
#include "lib/strbuf.h"
#include "lib/uuid.h"
#include "lib/attrs.h"

#define NBUCKETS 4096
/* How long a follow-up waits for the waiting task's running step. */
#define GIVE_INPUT_WAIT_MS 5000

struct entry {
	struct task *t;
	struct entry *next;	/* hash chain */
	size_t hidx;		/* index in the heap, SIZE_MAX when absent */
	int64_t wake_ms;
	bool busy;		/* an executor thread is running its step */
	bool cancel;		/* cancel asked while busy */
	json_object *pending;	/* messages that arrived while busy */
	bool lost;		/* another agent claimed it (shared store) */
	bool drain;		/* messages were posted to it for its holder
				 * (store_task_post): add them before its
				 * next step */
	int64_t since_ms;	/* when this agent took it in */
};

static struct {
	const struct config *cfg;
	struct store *store;
	tasks_listener_fn listener;
	tasks_listener_fn remote;	/* changes other agents made */
	tasks_wants_fn remote_wants;
	tasks_resolve_fn resolve;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t step_end;	/* broadcast when a step ends */
	pthread_t *threads;
	size_t nthreads;
	bool stopping;
	struct entry *buckets[NBUCKETS];
	struct entry **heap;
	size_t hn, hcap;
	struct tasks_stats stats;
	/* Leases, on a shared store (docs/internals.md, "Leases"). */
	bool shared;
	char holder[160];
	int64_t lease_ms;
	int64_t lease_ok_until;	/* start no step after this (not renewed) */
	bool lease_started;
	pthread_t lease_th;
	pthread_cond_t lease_cond;
	unsigned long claimed, lost;	/* counters, under lock */
} X = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Tasks claimed at most per round of the lease thread. */
#define TASKS_CLAIM_MAX 64

/* ---- registry ---------------------------------------------------------- */

static unsigned
bucket_of(const char *id)
{
	return hash_fnv1a(id) % NBUCKETS;
}

static struct entry *
reg_find(const char *id)
{
	struct entry *e;

	for (e = X.buckets[bucket_of(id)]; e; e = e->next)
		if (strcmp(e->t->id, id) == 0)
			return e;
	return NULL;
}

static void
reg_add(struct entry *e)
{
	unsigned b = bucket_of(e->t->id);

	e->next = X.buckets[b];
	X.buckets[b] = e;
	X.stats.active++;
}

static void
reg_remove(struct entry *e)
{
	struct entry **pp = &X.buckets[bucket_of(e->t->id)];

	for (; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			X.stats.active--;
			return;
		}
}

/* ---- timer heap (min-heap on wake_ms, indexed for removal) ------------- */

static void
heap_swap(size_t a, size_t b)
{
	struct entry *t = X.heap[a];

	X.heap[a] = X.heap[b];
	X.heap[b] = t;
	X.heap[a]->hidx = a;
	X.heap[b]->hidx = b;
}

static void
heap_up(size_t i)
{
	while (i > 0 && X.heap[(i - 1) / 2]->wake_ms > X.heap[i]->wake_ms) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < X.hn && X.heap[l]->wake_ms < X.heap[m]->wake_ms)
			m = l;
		if (r < X.hn && X.heap[r]->wake_ms < X.heap[m]->wake_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

static void
heap_push(struct entry *e, int64_t wake_ms)
{
	if (X.hn == X.hcap) {
		X.hcap = X.hcap ? X.hcap * 2 : 64;
		X.heap = xrealloc(X.heap, X.hcap * sizeof(*X.heap));
	}
	e->wake_ms = wake_ms;
	e->hidx = X.hn;
	X.heap[X.hn++] = e;
	heap_up(e->hidx);
	X.stats.queued = X.hn;
}

static void
heap_remove(struct entry *e)
{
	size_t i = e->hidx;

	if (i == SIZE_MAX)
		return;
	X.hn--;
	if (i != X.hn) {
		X.heap[i] = X.heap[X.hn];
		X.heap[i]->hidx = i;
		heap_down(i);
		heap_up(i);
	}
	e->hidx = SIZE_MAX;
	X.stats.queued = X.hn;
}

/* ---- writes ------------------------------------------------------------ */

/* Every write of a task row goes through here, so that trev never answers
 * a rev older than the row's (see trev.h).  As store_task_put. */
static int
put_row(struct task *t, char **err)
{
	int rc;

	trev_write_begin(t->id);
	rc = store_task_put(X.store, t, err);
	trev_write_end(t->id);
	return rc;
}

/* ---- executor ------------------------------------------------------------ */

static void
notify(const struct task *t)
{
	if (X.listener != NULL)
		X.listener(t);
}

/* Commit t: 0, -1 (logged), or STORE_LEASE_LOST (another agent has
 * claimed it: this copy is no longer to be written or announced). */
static int
persist(struct task *t)
{
	char *err = NULL;
	int rc = put_row(t, &err);

	if (rc == STORE_LEASE_LOST)
		log_kv(LOG_WARN, "task_lease_lost", "another agent has "
		    "claimed the task; this agent drops its copy", "task",
		    t->id, NULL);
	else if (rc < 0)
		log_kv(LOG_ERROR, "store_error", err, "task", t->id, NULL);
	free(err);
	return rc;
}

/* Forget entry e (not busy; lock held): its task is done or another
 * agent's now. */
static void
entry_drop(struct entry *e)
{
	heap_remove(e);
	reg_remove(e);
	json_object_put(e->pending);
	task_free(e->t);
	free(e);
}

/*
 * Add the messages posted to e's task by other agents to its history and
 * commit it (e is this thread's: busy, or the lock held).  A new snapshot
 * to announce (caller notifies and frees), or NULL when there was none.
 * The posts are deleted only after the commit that holds them, so a
 * crash in between repeats a message rather than losing it.
 */
static struct task *
drain_inbox(struct entry *e)
{
	char **msgs = NULL;
	size_t n = 0, i;
	int64_t last = 0;
	struct task *snap = NULL;

	e->drain = false;
	if (store_inbox_take(X.store, e->t->id, &msgs, &n, &last) < 0 ||
	    n == 0) {
		free(msgs);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		json_object *m = json_tokener_parse(msgs[i]);

		if (m != NULL)
			task_add_history(e->t, m, X.cfg->task_history_max);
		free(msgs[i]);
	}
	free(msgs);
	e->t->version++;
	e->t->updated_ms = clock_wall_ms();
	switch (persist(e->t)) {
	case 0:
		IGNORE_RESULT(store_inbox_done(X.store, e->t->id, last));
		snap = task_clone(e->t);
		break;
	case STORE_LEASE_LOST:
		e->lost = true;
		break;
	default:
		break;
	}
	return snap;
}

static void
mark_canceled(struct task *t)
{
	t->cancel_requested = true;
	task_add_history(t, task_msg_text("agent", "Task canceled at the "
	    "owner's request.", t->id, t->context_id), X.cfg->task_history_max);
	task_set_state(t, TASK_CANCELED);
}

/* The executor's step_env.checkpoint. */
static int
step_checkpoint(const struct step_env *env, struct task *t, char **err)
{
	(void)env;
	return tasks_checkpoint(t, err);
}

static enum step_result
run_step(struct task *t, bool cancel)
{
	struct step_env env = { X.cfg, X.store, clock_wall_ms(),
	    step_checkpoint };
	struct tasks_runner run = { 0 };

	if (!X.resolve(t->operation, X.cfg, &run) || run.step == NULL) {
		task_fail(t, ERRC_UNKNOWN_OP, "this agent no longer knows the "
		    "task's operation");
		return STEP_DONE;
	}
	if (cancel || t->cancel_requested) {
		t->cancel_requested = true;
		if (run.cancel != NULL && run.cancel(t, &env) == STEP_WAIT)
			return STEP_WAIT;
		if (!task_state_terminal(t->state))
			mark_canceled(t);
		return STEP_DONE;
	}
	if (run.unavailable != NULL) {
		task_fail(t, ERRC_NOT_CONFIGURED, run.unavailable);
		return STEP_DONE;
	}
	if (t->state == TASK_SUBMITTED)
		task_set_state(t, TASK_WORKING);
	return run.step(t, &env);
}

static void *
executor_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&X.lock);
	while (!X.stopping) {
		struct entry *e;
		enum step_result r = STEP_DONE;
		struct task *snap;
		bool cancel;
		int rc;
		int64_t now = clock_wall_ms();

		if (X.hn == 0) {
			pthread_cond_wait(&X.cond, &X.lock);
			continue;
		}
		e = X.heap[0];
		if (e->wake_ms > now) {
			struct timespec ts = clock_ts(e->wake_ms);
			pthread_cond_timedwait(&X.cond, &X.lock, &ts);
			continue;
		}
		heap_remove(e);
		if (now > X.lease_ok_until) {
			/* Leases not renewed for two thirds of their time:
			 * another agent may claim this task any moment, so
			 * start no step until a renewal succeeds. */
			heap_push(e, now + 1000);
			continue;
		}
		e->busy = true;
		cancel = e->cancel;
		X.stats.running++;
		pthread_mutex_unlock(&X.lock);

		snap = e->drain ? drain_inbox(e) : NULL;
		if (snap != NULL) {
			notify(snap);
			task_free(snap);
		}
		if (e->lost)
			rc = STORE_LEASE_LOST;
		else {
			r = run_step(e->t, cancel);
			if (task_state_terminal(e->t->state))
				r = STEP_DONE;
			rc = persist(e->t);
			if (rc != STORE_LEASE_LOST)
				notify(e->t);
		}

		pthread_mutex_lock(&X.lock);
		X.stats.running--;
		X.stats.steps++;
		e->busy = false;
		if (rc == STORE_LEASE_LOST || e->lost) {
			/* Another agent runs it now, from its checkpoint. */
			X.lost++;
			entry_drop(e);
			pthread_cond_broadcast(&X.cond);
			pthread_cond_broadcast(&X.step_end);
			continue;
		}
		if (e->pending != NULL) {
			size_t k, np = json_object_array_length(e->pending);
			for (k = 0; k < np; k++)
				task_add_history(e->t, json_object_get(
				    json_object_array_get_idx(e->pending, k)),
				    X.cfg->task_history_max);
			json_object_put(e->pending);
			e->pending = NULL;
			if (persist(e->t) == STORE_LEASE_LOST) {
				X.lost++;
				entry_drop(e);
				pthread_cond_broadcast(&X.cond);
				pthread_cond_broadcast(&X.step_end);
				continue;
			}
			notify(e->t);
		}
		if (r == STEP_DONE) {
			reg_remove(e);
			X.stats.finished++;
			task_free(e->t);
			free(e);
		} else if (e->cancel && !e->t->cancel_requested)
			heap_push(e, 0);
		else
			heap_push(e, e->t->next_wake_ms);
		pthread_cond_broadcast(&X.cond);
		pthread_cond_broadcast(&X.step_end);
	}
	pthread_mutex_unlock(&X.lock);
	return NULL;
}

static struct entry *
enqueue_locked(struct task *t)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	e->t = t;
	e->hidx = SIZE_MAX;
	e->since_ms = clock_wall_ms();
	reg_add(e);
	heap_push(e, t->next_wake_ms);
	pthread_cond_signal(&X.cond);
	return e;
}

/* ---- leases (a shared store) -------------------------------------------- */

static int
held_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_held *)a)->id,
	    ((const struct store_held *)b)->id);
}

/*
 * What a renewal found (lock held): a task this agent took in before the
 * renewal began but no longer holds (or holds under another token) is
 * another agent's now; one whose owner asked to cancel it is canceled
 * here.
 */
static void
lease_reconcile(struct store_held *held, size_t n, int64_t began_ms)
{
	size_t b;

	if (n > 0)	/* held is NULL when n is 0 */
		qsort(held, n, sizeof(*held), held_cmp);
	for (b = 0; b < NBUCKETS; b++) {
		struct entry *e = X.buckets[b], *next;

		for (; e != NULL; e = next) {
			struct store_held key, *h;

			next = e->next;
			if (e->since_ms >= began_ms)
				continue;	/* newer than the renewal */
			snprintf(key.id, sizeof(key.id), "%s", e->t->id);
			h = n > 0 ? bsearch(&key, held, n, sizeof(*held),
			    held_cmp) : NULL;
			if (h == NULL || h->token != e->t->lease_token) {
				log_kv(LOG_WARN, "task_lease_lost", "another "
				    "agent has claimed the task", "task",
				    e->t->id, NULL);
				if (e->busy)
					e->lost = true;
				else {
					X.lost++;
					entry_drop(e);
				}
			} else if (h->cancel_requested && !e->cancel) {
				e->cancel = true;
				e->t->cancel_requested = true;
				if (!e->busy) {
					heap_remove(e);
					heap_push(e, 0);
				}
			}
		}
	}
	pthread_cond_broadcast(&X.cond);
}

/* Take in tasks claimed from the store (lock held). */
static void
lease_adopt(struct task **claimed, size_t n, bool resumed_here)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct entry *e;

		if ((e = reg_find(claimed[i]->id)) != NULL) {
			/* Ours already (a renewal raced a claim): keep the
			 * copy in memory, under the new token. */
			e->t->lease_token = claimed[i]->lease_token;
			task_free(claimed[i]);
			continue;
		}
		log_kv(LOG_INFO, "task_resumed", resumed_here ?
		    "resuming unfinished task" : "claimed a task whose "
		    "agent stopped renewing its lease", "task",
		    claimed[i]->id, "operation", claimed[i]->operation,
		    "state", task_state_name(claimed[i]->state), NULL);
		e = enqueue_locked(claimed[i]);
		e->drain = X.shared;	/* messages posted meanwhile */
		X.claimed++;
	}
}

/*
 * The lease thread (shared store only): every third of the lease time it
 * renews every lease this agent holds (one statement), reconciles what
 * it holds, and claims tasks whose agent stopped renewing (at most
 * TASKS_CLAIM_MAX a round).  When renewals fail for two thirds of the
 * lease time, executors start no step (lease_ok_until).
 */
static void *
lease_main(void *arg)
{
	int64_t tick = X.lease_ms / 3;

	(void)arg;
	pthread_mutex_lock(&X.lock);
	while (!X.stopping) {
		struct timespec ts = clock_ts(clock_wall_ms() + tick);
		struct store_held *held = NULL;
		struct task **claimed = NULL;
		size_t nh = 0, nc = 0;
		int64_t began;
		int rr, rc = -1;

		pthread_cond_timedwait(&X.lease_cond, &X.lock, &ts);
		if (X.stopping)
			break;
		pthread_mutex_unlock(&X.lock);
		began = clock_wall_ms();
		rr = store_lease_renew(X.store, began, &held, &nh);
		if (rr == 0)
			rc = store_task_claim(X.store, clock_wall_ms(),
			    TASKS_CLAIM_MAX, &claimed, &nc);
		pthread_mutex_lock(&X.lock);
		if (rr == 0) {
			X.lease_ok_until = began + X.lease_ms * 2 / 3;
			lease_reconcile(held, nh, began);
		} else
			log_msg(LOG_WARN, "lease_renew_failed", "cannot renew "
			    "task leases; steps stop at %lld",
			    (long long)X.lease_ok_until);
		if (rc == 0)
			lease_adopt(claimed, nc, false);
		free(held);
		free(claimed);
	}
	pthread_mutex_unlock(&X.lock);
	return NULL;
}

/*
 * The store's watcher (shared store only): another agent wrote task id.
 * A task held here: lost when its token changed; canceled when its owner
 * asked; messages posted to it are added.  Anyone else's: its streams
 * and waits here hear of the change (the remote listener).
 */
static void
on_store_change(const char *id, int64_t token, bool cancel, bool inbox,
    int64_t version, void *arg)
{
	struct entry *e;
	struct task *snap = NULL, *t = NULL;

	(void)arg;
	pthread_mutex_lock(&X.lock);
	if (X.stopping) {
		/* The listeners may be gone already (the store's watcher
		 * runs until store_close, after tasks_stop). */
		pthread_mutex_unlock(&X.lock);
		return;
	}
	e = reg_find(id);
	if (e != NULL) {
		if (!inbox && token != e->t->lease_token) {
			if (e->busy)
				e->lost = true;
			else {
				X.lost++;
				entry_drop(e);
			}
			e = NULL;
		} else if (!inbox && cancel && !e->cancel) {
			e->cancel = true;
			e->t->cancel_requested = true;
			if (!e->busy) {
				heap_remove(e);
				heap_push(e, 0);
				pthread_cond_signal(&X.cond);
			}
		} else if (inbox) {
			if (e->busy)
				e->drain = true;
			else
				snap = drain_inbox(e);
			if (e->lost && !e->busy)
				entry_drop(e);
		}
		pthread_mutex_unlock(&X.lock);
		if (snap != NULL) {
			notify(snap);
			task_free(snap);
		}
		if (e != NULL || inbox)
			return;
	} else
		pthread_mutex_unlock(&X.lock);
	if (inbox || X.remote == NULL)
		return;
	/* Read only what a stream or wait here follows. */
	if (X.remote_wants != NULL && !X.remote_wants(id, version))
		return;
	if (store_task_get(X.store, id, &t) == 0) {
		X.remote(t);
		task_free(t);
	}
}

void
tasks_set_remote_listener(tasks_listener_fn fn, tasks_wants_fn wants)
{
	X.remote = fn;
	X.remote_wants = wants;
}

int
tasks_start(const struct config *cfg, struct store *st,
    tasks_listener_fn listener, tasks_resolve_fn resolve, char **err)
{
	struct task **active = NULL;
	size_t n = 0, i;

	X.cfg = cfg;
	X.store = st;
	X.listener = listener;
	X.resolve = resolve;
	X.stopping = false;
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_REALTIME);
		pthread_cond_init(&X.cond, &ca);
		pthread_cond_init(&X.step_end, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&X.lease_cond, NULL);
	X.shared = store_shared(st);
	X.lease_ms = cfg->lease_seconds * 1000;
	X.lease_ok_until = INT64_MAX;
	X.lease_started = false;
	{
		char host[64] = "", id[UUID_STR_LEN];

		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "unknown");
		uuid_v4(id);
		snprintf(X.holder, sizeof(X.holder), "%s/%ld/%.8s", host,
		    (long)getpid(), id);
	}
	store_lease_config(st, X.holder, X.lease_ms);
	if (X.shared)
		X.lease_ok_until = clock_wall_ms() + X.lease_ms * 2 / 3;
	/* One agent: every unfinished task.  Several: those whose lease
	 * is free or has run out; the lease thread claims the rest as
	 * their agents stop renewing. */
	if (store_task_claim(st, clock_wall_ms(), X.shared ? 100000 :
	    SIZE_MAX, &active, &n) < 0) {
		*err = xstrdup("cannot read unfinished tasks from the store");
		return -1;
	}
	pthread_mutex_lock(&X.lock);
	lease_adopt(active, n, true);
	pthread_mutex_unlock(&X.lock);
	free(active);
	if (X.shared) {
		if (pthread_create(&X.lease_th, NULL, lease_main, NULL) != 0) {
			*err = xstrdup("cannot start the lease thread");
			return -1;
		}
		X.lease_started = true;
		if (store_watch(st, on_store_change, NULL) < 0)
			log_msg(LOG_WARN, "store_watch", "cannot watch other "
			    "agents' changes: cancels and messages reach "
			    "this agent's tasks at the next lease renewal");
		log_kv(LOG_INFO, "leases", "tasks are leased: several agents "
		    "share the store", "holder", X.holder, NULL);
	}

	X.nthreads = (size_t)cfg->executor_threads;
	X.threads = xcalloc(X.nthreads, sizeof(*X.threads));
	for (i = 0; i < X.nthreads; i++) {
		if (pthread_create(&X.threads[i], NULL, executor_main, NULL)
		    != 0) {
			*err = xstrdup("cannot start executor threads");
			X.nthreads = i;
			tasks_stop(1);
			return -1;
		}
	}
	return 0;
}

void
tasks_stop(int grace_s)
{
	struct timespec ts;
	size_t i, b;

	pthread_mutex_lock(&X.lock);
	X.stopping = true;
	pthread_cond_broadcast(&X.cond);
	pthread_cond_broadcast(&X.lease_cond);
	pthread_mutex_unlock(&X.lock);
	if (X.lease_started) {
		pthread_join(X.lease_th, NULL);
		X.lease_started = false;
	}
	ts = clock_ts(clock_wall_ms() + (int64_t)grace_s * 1000);
	for (i = 0; i < X.nthreads; i++) {
		if (pthread_timedjoin_np(X.threads[i], NULL, &ts) != 0) {
			log_msg(LOG_WARN, "executor_stuck",
			    "an executor thread did not finish its "
			    "step within %d s", grace_s);
			pthread_detach(X.threads[i]);
		}
	}
	free(X.threads);
	X.threads = NULL;
	X.nthreads = 0;
	/* Other agents may take this one's tasks at once, not after the
	 * lease time. */
	if (X.shared && store_lease_release(X.store) == 0)
		log_msg(LOG_INFO, "leases_released", "task leases released "
		    "for other agents");
	/* Tasks left are in the store and resume at the next start. */
	pthread_mutex_lock(&X.lock);
	for (b = 0; b < NBUCKETS; b++) {
		while (X.buckets[b] != NULL) {
			struct entry *e = X.buckets[b];
			X.buckets[b] = e->next;
			if (e->busy)	/* a stuck thread still owns it */
				continue;
			task_free(e->t);
			free(e);
		}
	}
	free(X.heap);
	X.heap = NULL;
	X.hn = X.hcap = 0;
	X.stats.active = X.stats.queued = 0;
	pthread_mutex_unlock(&X.lock);
}

int
tasks_submit(struct task *t, struct task **snapshot, char **err)
{
	if (snapshot)
		*snapshot = NULL;
	t->next_wake_ms = 0;
	if (put_row(t, err) < 0) {
		task_free(t);
		return -1;
	}
	notify(t);
	if (snapshot)
		*snapshot = task_clone(t);
	pthread_mutex_lock(&X.lock);
	X.stats.submitted++;
	enqueue_locked(t);
	pthread_mutex_unlock(&X.lock);
	return 0;
}

int
tasks_record(struct task *t, struct task **snapshot, char **err)
{
	int rc = put_row(t, err);

	if (rc == 0) {
		notify(t);
		pthread_mutex_lock(&X.lock);
		X.stats.submitted++;
		X.stats.finished++;
		pthread_mutex_unlock(&X.lock);
	}
	if (snapshot)
		*snapshot = rc == 0 ? t : NULL;
	if (rc != 0 || snapshot == NULL)
		task_free(t);
	return rc;
}

int
tasks_get_rev(const char *id, const char *owner, struct task **out,
    int64_t *rev)
{
	uint64_t ticket;
	int64_t row_rev = 0;
	int rc;

	*out = NULL;
	if (!uuid_valid(id))
		return 1;
	ticket = trev_ticket();
	rc = store_task_get_rev(X.store, id, out, &row_rev);
	if (rc == 0 && !X.shared)
		trev_learn(id, ticket, (*out)->owner, row_rev);
	if (rev != NULL)
		*rev = row_rev;
	if (rc == 0 && strcmp((*out)->owner, owner) != 0) {
		task_free(*out);
		*out = NULL;
		return 1;
	}
	return rc;
}

int
tasks_get(const char *id, const char *owner, struct task **out)
{
	return tasks_get_rev(id, owner, out, NULL);
}

int
tasks_peek(const char *id, const char *owner, int64_t *rev)
{
	char *who = NULL;
	uint64_t ticket = 0;
	int rc;

	if (!uuid_valid(id))
		return 1;
	/* On a shared store other agents write rows this one never sees
	 * written: only the store knows the rev. */
	if (!X.shared && (rc = trev_get(id, owner, rev, &ticket)) >= 0)
		return rc;
	rc = store_task_peek(X.store, id, &who, rev);
	if (rc == 0 && !X.shared)
		trev_learn(id, ticket, who, *rev);
	if (rc == 0 && strcmp(who, owner) != 0)
		rc = 1;
	free(who);
	return rc;
}

enum tasks_cancel_result
tasks_cancel(const char *id, const char *owner, struct task **out)
{
	struct tasks_runner run = { 0 };
	struct entry *e;
	int rc;

	*out = NULL;
	if (!uuid_valid(id))
		return TASKS_CANCEL_NOT_FOUND;
	pthread_mutex_lock(&X.lock);
	e = reg_find(id);
	if (e == NULL || strcmp(e->t->owner, owner) != 0) {
		pthread_mutex_unlock(&X.lock);
		rc = tasks_get(id, owner, out);
		if (rc == 1)
			return TASKS_CANCEL_NOT_FOUND;
		if (rc < 0)
			return TASKS_CANCEL_ERROR;
		if (task_state_terminal((*out)->state))
			return TASKS_CANCEL_NOT_CANCELABLE;
		if (!X.shared)	/* in the store, not queued: stopping */
			return TASKS_CANCEL_ERROR;
		/* Another agent holds it: ask it, through the row. */
		task_free(*out);
		*out = NULL;
		rc = store_task_request_cancel(X.store, id);
		if (rc < 0 || tasks_get(id, owner, out) != 0)
			return TASKS_CANCEL_ERROR;
		if (rc == 1)	/* it finished meanwhile */
			return task_state_terminal((*out)->state) ?
			    TASKS_CANCEL_NOT_CANCELABLE : TASKS_CANCEL_ERROR;
		return TASKS_CANCEL_OK;
	}
	if (!X.resolve(e->t->operation, X.cfg, &run))
		run.cancel = NULL;
	if (!e->busy && run.cancel == NULL) {
		/* Nothing to clean up: cancel now, in this thread. */
		heap_remove(e);
		reg_remove(e);
		X.stats.finished++;
		/* Commit before unlocking: a follow-up message must not
		 * read the row as it was before the cancel. */
		mark_canceled(e->t);
		persist(e->t);
		pthread_mutex_unlock(&X.lock);
		notify(e->t);
		*out = e->t;
		free(e);
		return TASKS_CANCEL_OK;
	}
	/* Cleanup needed or a step is running: the executor finishes it. */
	e->cancel = true;
	if (!e->busy) {
		e->t->cancel_requested = true;
		heap_remove(e);
		heap_push(e, 0);
		pthread_cond_signal(&X.cond);
	}
	pthread_mutex_unlock(&X.lock);
	rc = tasks_get(id, owner, out);
	return rc == 0 ? TASKS_CANCEL_OK : TASKS_CANCEL_ERROR;
}

int
tasks_add_message(const char *id, const char *owner, json_object *msg,
    struct task **out)
{
	struct entry *e;
	int rc;

	*out = NULL;
	if (!uuid_valid(id)) {
		json_object_put(msg);
		return 1;
	}
	pthread_mutex_lock(&X.lock);
	e = reg_find(id);
	if (e != NULL && strcmp(e->t->owner, owner) == 0) {
		if (e->busy) {
			/* The running step owns the task; the executor adds
			 * the message to history when the step ends. */
			if (e->pending == NULL)
				e->pending = json_object_new_array();
			json_object_array_add(e->pending, msg);
			pthread_mutex_unlock(&X.lock);
			return tasks_get(id, owner, out) < 0 ? -1 : 0;
		}
		task_add_history(e->t, msg, X.cfg->task_history_max);
		persist(e->t);
		*out = task_clone(e->t);
		pthread_mutex_unlock(&X.lock);
		notify(*out);
		return 0;
	}
	/* A finished task: no executor writes its row any more; the lock
	 * keeps two follow-ups from losing one another. */
	rc = tasks_get(id, owner, out);
	if (rc != 0) {
		pthread_mutex_unlock(&X.lock);
		json_object_put(msg);
		return rc;
	}
	if (X.shared && !task_state_terminal((*out)->state)) {
		/* Another agent holds it: post the message for its holder,
		 * who adds it to the history (store_task_post). */
		char *text = ju_dump(msg);

		rc = store_task_post(X.store, id, text);
		free(text);
		if (rc <= 0) {
			pthread_mutex_unlock(&X.lock);
			json_object_put(msg);
			return rc;
		}
		/* It finished meanwhile: add it to the row here. */
		task_free(*out);
		*out = NULL;
		if ((rc = tasks_get(id, owner, out)) != 0) {
			pthread_mutex_unlock(&X.lock);
			json_object_put(msg);
			return rc;
		}
	}
	task_add_history(*out, msg, X.cfg->task_history_max);
	persist(*out);
	pthread_mutex_unlock(&X.lock);
	return 0;
}

int
tasks_give_input(const char *id, const char *owner, const char *expect_op,
    const char *operation, json_object *params, json_object *msg,
    json_object *result, struct task **out)
{
	struct entry *e;
	struct task *t;
	char *err = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&X.lock);
	e = uuid_valid(id) ? reg_find(id) : NULL;
	if (e == NULL && X.shared && uuid_valid(id)) {
		/* Another agent may hold it while it waits: take it over
		 * (no step of it runs while it waits for input). */
		struct task *w = NULL;

		if (tasks_get(id, owner, &w) == 0 &&
		    w->state == TASK_INPUT_REQUIRED &&
		    store_task_take(X.store, id, &t) == 0) {
			if (strcmp(t->owner, owner) == 0)
				e = enqueue_locked(t);
			else
				task_free(t);	/* cannot be: same id */
		}
		task_free(w);
	}
	if (e != NULL && e->busy) {
		/* The waiting task's own step (it only renews its expiry)
		 * may be running: wait for it to end, a bounded while, on a
		 * condition of its own so no executor's wake-up is taken. */
		struct timespec ts = clock_ts(clock_wall_ms() +
		    GIVE_INPUT_WAIT_MS);

		while (e != NULL && e->busy && !X.stopping &&
		    pthread_cond_timedwait(&X.step_end, &X.lock, &ts) == 0)
			e = reg_find(id);
		if (e != NULL)
			e = reg_find(id);
	}
	if (e == NULL || strcmp(e->t->owner, owner) != 0) {
		pthread_mutex_unlock(&X.lock);
		rc = tasks_get(id, owner, out);	/* finished, or nobody's */
		task_free(*out);
		*out = NULL;
		rc = rc == 0 ? 2 : rc;
		goto cleanup;
	}
	t = e->t;
	if (e->busy || e->cancel || t->state != TASK_INPUT_REQUIRED ||
	    strcmp(t->operation, expect_op) != 0) {
		pthread_mutex_unlock(&X.lock);
		rc = 2;
		goto cleanup;
	}
	free(t->operation);
	t->operation = xstrdup(operation);
	json_object_put(t->params);
	t->params = params;
	params = NULL;
	json_object_put(t->checkpoint);
	t->checkpoint = json_object_new_object();
	json_object_put(t->progress);
	t->progress = NULL;
	task_add_history(t, msg, X.cfg->task_history_max);
	msg = NULL;
	heap_remove(e);
	if (result != NULL) {
		task_complete(t, result);
		result = NULL;
	} else {
		task_set_state(t, TASK_SUBMITTED);
		t->next_wake_ms = 0;
	}
	t->version++;
	t->updated_ms = clock_wall_ms();
	rc = put_row(t, &err) < 0 ? -1 : 0;
	if (rc < 0) {
		/* A queued task is written again by its next step; a
		 * completed one stays as the store has it (waiting). */
		log_kv(LOG_ERROR, "store_error", err, "task", t->id, NULL);
		free(err);
	} else
		*out = task_clone(t);
	if (task_state_terminal(t->state)) {
		reg_remove(e);
		X.stats.finished++;
		task_free(t);
		free(e);
	} else
		heap_push(e, 0);
	pthread_cond_signal(&X.cond);
	pthread_mutex_unlock(&X.lock);
	if (*out != NULL)
		notify(*out);
cleanup:
	json_object_put(params);
	json_object_put(msg);
	json_object_put(result);
	return rc;
}

int
tasks_checkpoint(struct task *t, char **err)
{
	t->version++;
	t->updated_ms = clock_wall_ms();
	if (put_row(t, err) < 0)
		return -1;
	notify(t);
	return 0;
}

int
tasks_list(const struct store_list_query *q, struct task ***tasks,
    size_t *n, char **next_token, int64_t *total, char **err)
{
	return store_task_list(X.store, q, tasks, n, next_token, total, err);
}

int
tasks_list_refs(const struct store_list_query *q,
    struct store_task_ref **refs, size_t *n, char **next_token,
    int64_t *total, char **err)
{
	return store_task_list_refs(X.store, q, refs, n, next_token, total,
	    err);
}

void
tasks_get_stats(struct tasks_stats *out)
{
	pthread_mutex_lock(&X.lock);
	*out = X.stats;
	pthread_mutex_unlock(&X.lock);
}

void
tasks_metrics(struct strbuf *sb)
{
	struct tasks_stats ts;
	uint64_t rows = 0, batches = 0;

	tasks_get_stats(&ts);
	if (X.store != NULL)
		store_put_stats(X.store, &rows, &batches);
	sb_addf(sb, "# TYPE instag_agent_store_task_writes_total counter\n"
	    "instag_agent_store_task_writes_total %llu\n"
	    "# TYPE instag_agent_store_task_commits_total counter\n"
	    "instag_agent_store_task_commits_total %llu\n",
	    (unsigned long long)rows, (unsigned long long)batches);
	pthread_mutex_lock(&X.lock);
	sb_addf(sb, "# TYPE instag_agent_task_leases_claimed_total counter\n"
	    "instag_agent_task_leases_claimed_total %lu\n"
	    "# TYPE instag_agent_task_leases_lost_total counter\n"
	    "instag_agent_task_leases_lost_total %lu\n", X.claimed, X.lost);
	pthread_mutex_unlock(&X.lock);
	sb_addf(sb, "# TYPE instag_agent_tasks_active gauge\n"
	    "instag_agent_tasks_active %lu\n"
	    "# TYPE instag_agent_tasks_queued gauge\n"
	    "instag_agent_tasks_queued %lu\n"
	    "# TYPE instag_agent_tasks_running gauge\n"
	    "instag_agent_tasks_running %lu\n"
	    "# TYPE instag_agent_task_steps_total counter\n"
	    "instag_agent_task_steps_total %lu\n"
	    "# TYPE instag_agent_tasks_submitted_total counter\n"
	    "instag_agent_tasks_submitted_total %lu\n"
	    "# TYPE instag_agent_tasks_finished_total counter\n"
	    "instag_agent_tasks_finished_total %lu\n",
	    ts.active, ts.queued, ts.running, ts.steps, ts.submitted,
	    ts.finished);
}
