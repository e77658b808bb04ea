/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "tasks/tasks.h"
#include "tasks/trev.h"
#include "lib/xalloc.h"
#include "lib/strbuf.h"

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
};

static struct {
	const struct config *cfg;
	struct store *store;
	tasks_listener_fn listener;
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
} X = { .lock = PTHREAD_MUTEX_INITIALIZER };

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

/* ---- writes --------------------------------------------------------------- */

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

static void
persist(struct task *t)
{
	char *err = NULL;

	if (put_row(t, &err) < 0) {
		log_kv(LOG_ERROR, "store_error", err, "task", t->id, NULL);
		free(err);
	}
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
		enum step_result r;
		bool cancel;
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
		e->busy = true;
		cancel = e->cancel;
		X.stats.running++;
		pthread_mutex_unlock(&X.lock);

		r = run_step(e->t, cancel);
		if (task_state_terminal(e->t->state))
			r = STEP_DONE;
		persist(e->t);
		notify(e->t);

		pthread_mutex_lock(&X.lock);
		X.stats.running--;
		X.stats.steps++;
		e->busy = false;
		if (e->pending != NULL) {
			size_t k, np = json_object_array_length(e->pending);
			for (k = 0; k < np; k++)
				task_add_history(e->t, json_object_get(
				    json_object_array_get_idx(e->pending, k)),
				    X.cfg->task_history_max);
			json_object_put(e->pending);
			e->pending = NULL;
			persist(e->t);
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

static void
enqueue_locked(struct task *t)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	e->t = t;
	e->hidx = SIZE_MAX;
	reg_add(e);
	heap_push(e, t->next_wake_ms);
	pthread_cond_signal(&X.cond);
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
	if (store_task_active(st, &active, &n) < 0) {
		*err = xstrdup("cannot read unfinished tasks from the store");
		return -1;
	}
	pthread_mutex_lock(&X.lock);
	for (i = 0; i < n; i++) {
		log_kv(LOG_INFO, "task_resumed", "resuming unfinished task",
		    "task", active[i]->id, "operation", active[i]->operation,
		    "state", task_state_name(active[i]->state), NULL);
		enqueue_locked(active[i]);
	}
	pthread_mutex_unlock(&X.lock);
	free(active);

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
	pthread_mutex_unlock(&X.lock);
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
	if (rc == 0)
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
	if ((rc = trev_get(id, owner, rev, &ticket)) >= 0)
		return rc;
	rc = store_task_peek(X.store, id, &who, rev);
	if (rc == 0)
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
		/* In the store but not queued: shutting down. */
		return TASKS_CANCEL_ERROR;
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
