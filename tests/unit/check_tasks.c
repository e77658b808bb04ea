/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/auth.h"
#include "core/config.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "ops/ops.h"
#include "store/store.h"
#include "core/task.h"
#include "tasks/tasks.h"
#include "tasks/tcache.h"
#include "tasks/trev.h"
#include "testutil.h"

/* ---- fixtures ------------------------------------------------------------ */

/* One test's world: its directory, configuration and store. */
struct env {
	char dir[320];
	struct config *cfg;
	struct store *st;
	struct principal alice, bob;
};

/* ---- listener: every change it hears of --------------------------------- */

struct ev {
	char id[UUID_STR_LEN];
	int64_t version;
	enum task_state state;
	int step, steps;	/* -1 without progress */
	size_t history;
};

#define MAX_EVENTS 8192
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ev events[MAX_EVENTS];
static size_t nevents, ev_overflow;

static void
listener(const struct task *t)
{
	struct ev e;
	int64_t v;

	memset(&e, 0, sizeof(e));
	strcpy(e.id, t->id);
	e.version = t->version;
	e.state = t->state;
	e.step = e.steps = -1;
	if (t->progress && ju_int(t->progress, "step", &v) == 0)
		e.step = (int)v;
	if (t->progress && ju_int(t->progress, "steps", &v) == 0)
		e.steps = (int)v;
	e.history = json_object_array_length(t->history);
	pthread_mutex_lock(&ev_lock);
	if (nevents < MAX_EVENTS)
		events[nevents++] = e;
	else
		ev_overflow++;
	pthread_mutex_unlock(&ev_lock);
}

/* Copy the events of one task into out (at most max); returns the count. */
static size_t
events_of(const char *id, struct ev *out, size_t max)
{
	size_t i, n = 0;

	pthread_mutex_lock(&ev_lock);
	ck_assert_uint_eq(ev_overflow, 0);
	for (i = 0; i < nevents; i++)
		if (strcmp(events[i].id, id) == 0 && n < max)
			out[n++] = events[i];
	pthread_mutex_unlock(&ev_lock);
	return n;
}

/* ---- helpers ------------------------------------------------------------ */

static void
open_store(struct env *w)
{
	char *err = NULL;

	w->st = NULL;
	ck_assert_msg(store_open(w->cfg->store_path, NULL, &w->st, &err) == 0,
	    "store_open: %s", err ? err : "?");
}

/* Make the test's directory, configuration (extra lines appended) and
 * store, and start the executor. */
static void
env_start(struct env *w, const char *extra)
{
	char *err = NULL;

	memset(w, 0, sizeof(*w));
	tu_subdir_make(tu_topdir(), w->dir, sizeof(w->dir));
	w->cfg = tu_configf("store_path = %s/tasks.db\ndiagnostics = true\n%s",
	    w->dir, extra);
	ck_assert(w->cfg->diagnostics);
	open_store(w);
	ck_assert_msg(tasks_start(w->cfg, w->st, listener, ops_resolve,
	    &err) == 0, "tasks_start: %s", err ? err : "?");
	tu_principal(&w->alice, "alice", "tasks:read tasks:write diag:run");
	tu_principal(&w->bob, "bob", "tasks:read tasks:write diag:run");
}

static void
env_stop(struct env *w)
{
	tasks_stop(2);
	store_close(w->st);
	config_free(w->cfg);
	principal_clear(&w->alice);
	principal_clear(&w->bob);
}

/* Submit diag.timer with params (JSON text) as who; the new task's id into
 * id.  message (taken, may be NULL) starts the history. */
static void
submit_msg(struct env *w, const struct principal *who, const char *params,
    json_object *message, char id[UUID_STR_LEN])
{
	struct op_ctx c = { w->cfg, who, message };
	struct op_outcome out;
	json_object *p = json_tokener_parse(params);

	ck_assert_ptr_nonnull(p);
	ck_assert_msg(ops_invoke(&c, "diag.timer", p, NULL, &out) == 0,
	    "diag.timer: %s", out.err.message ? out.err.message : "?");
	ck_assert_ptr_nonnull(out.task);
	ck_assert_ptr_null(out.result);
	ck_assert_ptr_null(out.err.code);
	ck_assert(uuid_valid(out.task->id));
	ck_assert_str_eq(out.task->owner, who->sub);
	ck_assert_str_eq(out.task->operation, "diag.timer");
	strcpy(id, out.task->id);
	ops_outcome_clear(&out);
	json_object_put(p);
	json_object_put(message);
}

static void
submit(struct env *w, const char *params, char id[UUID_STR_LEN])
{
	submit_msg(w, &w->alice, params, NULL, id);
}

/* What the polls below look at: a task of an owner, the copy last read
 * (owned, NULL when released) and the state seen before. */
struct watch {
	const char *id, *owner;
	struct task *t;
	enum task_state last;
};

static void
watch_read(struct watch *wt)
{
	ck_assert_int_eq(tasks_get(wt->id, wt->owner, &wt->t), 0);
}

static void
watch_drop(struct watch *wt)
{
	wt->last = wt->t->state;
	task_free(wt->t);
	wt->t = NULL;
}

static bool
is_terminal(void *arg)
{
	struct watch *wt = arg;

	watch_read(wt);
	if (task_state_terminal(wt->t->state))
		return true;
	watch_drop(wt);
	return false;
}

/* Poll (at most timeout_ms) until the task is terminal; returns it. */
static struct task *
wait_terminal(const char *id, const char *owner, long timeout_ms)
{
	struct watch wt = { id, owner, NULL, TASK_SUBMITTED };

	if (!tu_poll(is_terminal, &wt, timeout_ms))
		ck_abort_msg("task %s still %s after %ld ms", id,
		    task_state_name(wt.last), timeout_ms);
	return wt.t;
}

static bool
is_waiting(void *arg)
{
	struct watch *wt = arg;
	struct tasks_stats s;

	watch_read(wt);
	ck_assert_msg(!task_state_terminal(wt->t->state), "task finished "
	    "early: %s", task_state_name(wt->t->state));
	if (wt->t->state == TASK_WORKING && wt->t->progress != NULL) {
		tasks_get_stats(&s);
		if (s.running == 0)
			return true;
	}
	watch_drop(wt);
	return false;
}

/* Poll until the task has taken its first step and sits on the timer
 * queue with no executor thread running it; returns it. */
static struct task *
wait_waiting(const char *id, const char *owner)
{
	struct watch wt = { id, owner, NULL, TASK_SUBMITTED };

	if (!tu_poll(is_waiting, &wt, TU_HANG_MS))
		ck_abort_msg("task %s never started waiting", id);
	return wt.t;
}

/* Whether the task's checkpoint counts at least one step done. */
static bool
took_step(void *arg)
{
	struct watch *wt = arg;
	int64_t done = 0;

	watch_read(wt);
	ju_int(wt->t->checkpoint, "done", &done);
	watch_drop(wt);
	return done >= 1;
}

static bool
is_idle(void *arg)
{
	struct tasks_stats *s = arg;

	tasks_get_stats(s);
	return s->active == 0 && s->running == 0 && s->queued == 0;
}

/* Wait until the executor holds no task in memory. */
static void
wait_idle(void)
{
	struct tasks_stats s;

	if (!tu_poll(is_idle, &s, TU_HANG_MS))
		ck_abort_msg("executor not idle: active %lu running %lu "
		    "queued %lu", s.active, s.running, s.queued);
}

static int64_t
int_of(json_object *o, const char *key)
{
	int64_t v = -12345;

	ck_assert_msg(ju_int(o, key, &v) == 0, "no integer %s", key);
	return v;
}

static const char *
last_history_text(const struct task *t)
{
	size_t n = json_object_array_length(t->history);
	json_object *m, *parts;

	ck_assert_uint_gt(n, 0);
	m = json_object_array_get_idx(t->history, n - 1);
	parts = ju_arr(m, "parts");
	ck_assert_ptr_nonnull(parts);
	return ju_str(json_object_array_get_idx(parts, 0), "text");
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_completes)
{
	struct env w;
	struct task *t;
	char id[UUID_STR_LEN];
	static struct ev ev[256];
	size_t n, i, working_with_progress = 0, completed = 0;

	env_start(&w, "executor_threads = 2\n");
	submit(&w, "{\"steps\":3,\"interval_ms\":20}", id);
	t = wait_terminal(id, "alice", TU_HANG_MS);
	ck_assert_int_eq(t->state, TASK_COMPLETED);
	ck_assert_ptr_null(t->error);
	ck_assert_ptr_nonnull(t->result);
	ck_assert(int_of(t->result, "steps") == 3);
	ck_assert(int_of(t->result, "elapsed_ms") >= 3 * 20 - 5);
	/* Progress recorded: step 3 of 3, 100 %. */
	ck_assert_ptr_nonnull(t->progress);
	ck_assert(int_of(t->progress, "step") == 3);
	ck_assert(int_of(t->progress, "steps") == 3);
	ck_assert(int_of(t->progress, "percent") == 100);
	ck_assert_str_eq(ju_str(t->progress, "message"), "done");
	ck_assert_str_eq(t->owner, "alice");
	ck_assert(t->version > 1);

	/* The listener heard every change, in order, ending completed. */
	wait_idle();
	n = events_of(id, ev, 256);
	ck_assert_uint_ge(n, 4);
	ck_assert_int_eq(ev[0].state, TASK_SUBMITTED);
	for (i = 1; i < n; i++) {
		ck_assert_msg(ev[i].version > ev[i - 1].version,
		    "version %lld after %lld", (long long)ev[i].version,
		    (long long)ev[i - 1].version);
		if (ev[i].state == TASK_WORKING && ev[i].step >= 0 &&
		    ev[i].step < ev[i].steps)
			working_with_progress++;
		if (ev[i].state == TASK_COMPLETED)
			completed++;
	}
	ck_assert_int_eq(ev[n - 1].state, TASK_COMPLETED);
	ck_assert(ev[n - 1].version == t->version);
	ck_assert_uint_eq(completed, 1);
	ck_assert_uint_ge(working_with_progress, 2);
	task_free(t);
	{
		struct tasks_stats s;
		tasks_get_stats(&s);
		ck_assert_uint_ge(s.submitted, 1);
		ck_assert_uint_ge(s.finished, 1);
		ck_assert_uint_ge(s.steps, 4);
	}
	env_stop(&w);
}
END_TEST

START_TEST(test_fail_at_step)
{
	struct env w;
	struct task *t;
	char id[UUID_STR_LEN];
	static struct ev ev[256];
	size_t n;

	env_start(&w, "executor_threads = 1\n");
	submit(&w, "{\"steps\":5,\"interval_ms\":10,\"fail_at_step\":2}", id);
	t = wait_terminal(id, "alice", TU_HANG_MS);
	ck_assert_int_eq(t->state, TASK_FAILED);
	ck_assert_ptr_nonnull(t->error);
	ck_assert_str_eq(ju_str(t->error, "code"), "diag_failure");
	ck_assert_ptr_nonnull(strstr(ju_str(t->error, "message"), "step 2"));
	ck_assert_ptr_null(t->result);
	wait_idle();
	n = events_of(id, ev, 256);
	ck_assert_uint_ge(n, 2);
	ck_assert_int_eq(ev[n - 1].state, TASK_FAILED);
	task_free(t);
	env_stop(&w);
}
END_TEST

START_TEST(test_cancel_waiting)
{
	struct env w;
	struct task *t, *c = NULL;
	char id[UUID_STR_LEN];
	int64_t v;
	static struct ev ev[256];
	size_t n;
	struct tasks_stats s;

	env_start(&w, "executor_threads = 2\n");
	submit(&w, "{\"steps\":3,\"interval_ms\":60000}", id);
	t = wait_waiting(id, "alice");
	task_free(t);

	/* Canceled at once, in this thread. */
	ck_assert_int_eq(tasks_cancel(id, "alice", &c), TASKS_CANCEL_OK);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->state, TASK_CANCELED);
	ck_assert(c->cancel_requested);
	ck_assert_ptr_nonnull(strstr(last_history_text(c), "canceled"));
	v = c->version;
	task_free(c);
	ck_assert_int_eq(tasks_get(id, "alice", &t), 0);
	ck_assert_int_eq(t->state, TASK_CANCELED);
	ck_assert(t->version == v);
	task_free(t);
	tasks_get_stats(&s);
	ck_assert_uint_eq(s.active, 0);
	ck_assert_uint_eq(s.queued, 0);

	/* And it stays canceled: nothing runs it again. */
	tu_sleep_ms(300);
	ck_assert_int_eq(tasks_get(id, "alice", &t), 0);
	ck_assert_int_eq(t->state, TASK_CANCELED);
	ck_assert(t->version == v);
	task_free(t);
	n = events_of(id, ev, 256);
	ck_assert_uint_ge(n, 3);
	ck_assert_int_eq(ev[n - 1].state, TASK_CANCELED);
	ck_assert(ev[n - 1].version == v);

	/* A second cancel: already terminal. */
	c = NULL;
	ck_assert_int_eq(tasks_cancel(id, "alice", &c),
	    TASKS_CANCEL_NOT_CANCELABLE);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->state, TASK_CANCELED);
	task_free(c);
	env_stop(&w);
}
END_TEST

START_TEST(test_cancel_finished)
{
	struct env w;
	struct task *t, *c = NULL;
	char id[UUID_STR_LEN];
	struct op_ctx ctx;
	struct op_outcome out;
	json_object *p;
	char params[96];

	env_start(&w, "executor_threads = 1\n");
	submit(&w, "{\"steps\":1,\"interval_ms\":0}", id);
	t = wait_terminal(id, "alice", TU_HANG_MS);
	ck_assert_int_eq(t->state, TASK_COMPLETED);
	task_free(t);
	wait_idle();
	ck_assert_int_eq(tasks_cancel(id, "alice", &c),
	    TASKS_CANCEL_NOT_CANCELABLE);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->state, TASK_COMPLETED);
	task_free(c);
	ck_assert_int_eq(tasks_get(id, "alice", &t), 0);
	ck_assert_int_eq(t->state, TASK_COMPLETED);
	task_free(t);

	/* The same through the tasks.cancel operation. */
	ctx.cfg = w.cfg;
	ctx.who = &w.alice;
	ctx.message = NULL;
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	p = json_tokener_parse(params);
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.cancel", p, NULL, &out), -1);
	ck_assert_str_eq(out.err.code, ERRC_NOT_CANCELABLE);
	ck_assert_ptr_nonnull(strstr(out.err.message, "completed"));
	ops_outcome_clear(&out);
	json_object_put(p);
	env_stop(&w);
}
END_TEST

START_TEST(test_other_owner)
{
	struct env w;
	struct task *t = NULL, *c = NULL;
	char id[UUID_STR_LEN], params[96];
	struct op_ctx ctx;
	struct op_outcome out;
	json_object *p;

	env_start(&w, "executor_threads = 1\n");
	submit(&w, "{\"steps\":2,\"interval_ms\":60000}", id);
	t = wait_waiting(id, "alice");
	task_free(t);

	t = (struct task *)&t;
	ck_assert_int_eq(tasks_get(id, "bob", &t), 1);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(tasks_cancel(id, "bob", &c), TASKS_CANCEL_NOT_FOUND);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(tasks_add_message(id, "bob", task_msg_text("user",
	    "x", NULL, NULL), &c), 1);
	ck_assert_ptr_null(c);
	/* Unknown and malformed ids look the same. */
	ck_assert_int_eq(tasks_get("123e4567-e89b-42d3-a456-426614174000",
	    "alice", &t), 1);
	ck_assert_int_eq(tasks_get("../../etc/passwd", "alice", &t), 1);
	ck_assert_int_eq(tasks_cancel("123e4567-e89b-42d3-a456-426614174000",
	    "alice", &c), TASKS_CANCEL_NOT_FOUND);
	ck_assert_int_eq(tasks_cancel("nope", "alice", &c),
	    TASKS_CANCEL_NOT_FOUND);

	/* Through the operations: not found for bob, not even listed. */
	ctx.cfg = w.cfg;
	ctx.who = &w.bob;
	ctx.message = NULL;
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	p = json_tokener_parse(params);
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.get", p, NULL, &out), -1);
	ck_assert_str_eq(out.err.code, ERRC_TASK_NOT_FOUND);
	ops_outcome_clear(&out);
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.cancel", p, NULL, &out), -1);
	ck_assert_str_eq(out.err.code, ERRC_TASK_NOT_FOUND);
	ops_outcome_clear(&out);
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.list", NULL, NULL, &out), 0);
	ck_assert(int_of(out.result, "total") == 0);
	ck_assert_uint_eq(json_object_array_length(ju_arr(out.result,
	    "tasks")), 0);
	ops_outcome_clear(&out);

	/* Alice's task is untouched and still hers to cancel. */
	ck_assert_int_eq(tasks_get(id, "alice", &t), 0);
	ck_assert_int_eq(t->state, TASK_WORKING);
	task_free(t);
	ctx.who = &w.alice;
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.cancel", p, NULL, &out), 0);
	ck_assert_str_eq(ju_str(out.result, "state"), "canceled");
	ck_assert_str_eq(ju_str(out.result, "task_id"), id);
	ops_outcome_clear(&out);
	json_object_put(p);
	env_stop(&w);
}
END_TEST

START_TEST(test_resume)
{
	struct env w;
	struct task *t;
	char id[UUID_STR_LEN], *err = NULL;
	int64_t v_stop, done = 0;
	static struct ev ev[256];
	size_t n, i, first_after;
	struct watch wt = { id, "alice", NULL, TASK_SUBMITTED };

	env_start(&w, "executor_threads = 2\n");
	submit(&w, "{\"steps\":5,\"interval_ms\":200}", id);
	/* Let it get through at least one counted step. */
	ck_assert_msg(tu_poll(took_step, &wt, TU_HANG_MS),
	    "the task took no step");
	tasks_stop(2);
	ck_assert_int_eq(tasks_get(id, "alice", &t), 0);
	ck_assert(!task_state_terminal(t->state));
	v_stop = t->version;
	ck_assert_int_eq(ju_int(t->checkpoint, "done", &done), 0);
	ck_assert(done >= 1 && done < 5);
	task_free(t);
	store_close(w.st);

	/* A new start on the reopened store picks the task up. */
	pthread_mutex_lock(&ev_lock);
	first_after = nevents;
	pthread_mutex_unlock(&ev_lock);
	open_store(&w);
	ck_assert_msg(tasks_start(w.cfg, w.st, listener, ops_resolve,
	    &err) == 0, "tasks_start: %s", err ? err : "?");
	t = wait_terminal(id, "alice", TU_HANG_MS);
	ck_assert_int_eq(t->state, TASK_COMPLETED);
	ck_assert(int_of(t->result, "steps") == 5);
	ck_assert(int_of(t->progress, "step") == 5);
	ck_assert(int_of(t->checkpoint, "done") == 5);
	ck_assert(t->version > v_stop);
	task_free(t);
	wait_idle();
	/* Versions keep rising across the restart. */
	n = events_of(id, ev, 256);
	pthread_mutex_lock(&ev_lock);
	for (i = first_after; i < nevents; i++)
		if (strcmp(events[i].id, id) == 0)
			ck_assert(events[i].version > v_stop);
	pthread_mutex_unlock(&ev_lock);
	for (i = 1; i < n; i++)
		ck_assert(ev[i].version > ev[i - 1].version);
	ck_assert_int_eq(ev[n - 1].state, TASK_COMPLETED);
	env_stop(&w);
}
END_TEST

/* The executor's counters: at the start (s0) and as last read (s). */
struct finish {
	struct tasks_stats s0, s;
	unsigned long n;
};

/* Whether n tasks finished since s0 and none is left in memory. */
static bool
all_finished(void *arg)
{
	struct finish *f = arg;

	tasks_get_stats(&f->s);
	return f->s.finished - f->s0.finished >= f->n && f->s.active == 0;
}

/* Tasks watched for how many are between steps at once. */
struct midway {
	char (*ids)[UUID_STR_LEN];
	int n;
	int most;		/* the most seen at once */
	struct finish *fin;
};

/* Count the tasks that took a step and have steps left (waiting between
 * two steps); done when all finished. */
static bool
count_midway(void *arg)
{
	struct midway *m = arg;
	int i, now = 0;

	for (i = 0; i < m->n; i++) {
		struct task *t = NULL;
		int64_t done = 0;

		if (tasks_get(m->ids[i], "alice", &t) != 0)
			continue;
		if (!task_state_terminal(t->state) && t->checkpoint != NULL &&
		    ju_int(t->checkpoint, "done", &done) == 0 && done >= 1 &&
		    done < 3)
			now++;
		task_free(t);
	}
	if (now > m->most)
		m->most = now;
	return all_finished(m->fin);
}

START_TEST(test_waits_hold_no_thread)
{
	enum { N = 50 };
	struct env w;
	static char ids[N][UUID_STR_LEN];
	struct finish fin = { .n = N };
	struct midway mid = { ids, N, 0, &fin };
	int64_t start, elapsed;
	int i;

	env_start(&w, "executor_threads = 2\n");
	ck_assert_int_eq(w.cfg->executor_threads, 2);
	tasks_get_stats(&fin.s0);
	start = clock_mono_ms();
	for (i = 0; i < N; i++)
		submit(&w, "{\"steps\":3,\"interval_ms\":100}", ids[i]);
	/* Watch the tasks until all finished (a hang guard: 50 x 300 ms
	 * even one at a time is 15 s). */
	tu_poll(count_midway, &mid, 6 * TU_HANG_MS);
	elapsed = clock_mono_ms() - start;
	ck_assert_msg(fin.s.finished - fin.s0.finished == N, "%lu of %d "
	    "finished in %lld ms", fin.s.finished - fin.s0.finished, N,
	    (long long)elapsed);
	/* Each task waits 3 x 100 ms.  Had a waiting task held its thread,
	 * no more than the 2 threads' tasks could ever be between steps;
	 * the waits hold none, so more than 2 were, at once. */
	ck_assert_msg(mid.most > 2, "at most %d tasks between steps at once",
	    mid.most);
	ck_assert_msg(elapsed >= 290, "finished in %lld ms, before its waits",
	    (long long)elapsed);
	for (i = 0; i < N; i++) {
		struct task *t = NULL;
		ck_assert_int_eq(tasks_get(ids[i], "alice", &t), 0);
		ck_assert_int_eq(t->state, TASK_COMPLETED);
		ck_assert(int_of(t->result, "elapsed_ms") >= 300 - 5);
		task_free(t);
	}
	env_stop(&w);
}
END_TEST

START_TEST(test_add_message)
{
	struct env w;
	struct task *t, *o = NULL;
	char id[UUID_STR_LEN];
	json_object *first;
	size_t h;

	env_start(&w, "executor_threads = 1\ntask_history_max = 3\n");
	first = task_msg_text("user", "start", NULL, NULL);
	submit_msg(&w, &w.alice, "{\"steps\":3,\"interval_ms\":60000}", first,
	    id);
	t = wait_waiting(id, "alice");
	/* The asking message opens the history, tied to the task. */
	ck_assert_uint_eq(json_object_array_length(t->history), 1);
	ck_assert_str_eq(last_history_text(t), "start");
	ck_assert_str_eq(ju_str(json_object_array_get_idx(t->history, 0),
	    "taskId"), id);
	ck_assert_str_eq(ju_str(json_object_array_get_idx(t->history, 0),
	    "contextId"), t->context_id);
	task_free(t);

	/* To a waiting task. */
	ck_assert_int_eq(tasks_add_message(id, "alice", task_msg_text("user",
	    "more", id, NULL), &o), 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(json_object_array_length(o->history), 2);
	ck_assert_str_eq(last_history_text(o), "more");
	task_free(o);
	ck_assert_int_eq(tasks_get(id, "alice", &t), 0);
	ck_assert_uint_eq(json_object_array_length(t->history), 2);
	ck_assert_str_eq(last_history_text(t), "more");
	ck_assert_int_eq(t->state, TASK_WORKING);
	task_free(t);
	/* The cap of three keeps the newest. */
	ck_assert_int_eq(tasks_add_message(id, "alice", task_msg_text("user",
	    "more 2", id, NULL), &o), 0);
	task_free(o);
	ck_assert_int_eq(tasks_add_message(id, "alice", task_msg_text("user",
	    "more 3", id, NULL), &o), 0);
	ck_assert_uint_eq(json_object_array_length(o->history), 3);
	ck_assert_str_eq(last_history_text(o), "more 3");
	task_free(o);

	/* Cancel adds the agent's note; a finished task still takes
	 * messages. */
	ck_assert_int_eq(tasks_cancel(id, "alice", &o), TASKS_CANCEL_OK);
	ck_assert_int_eq(o->state, TASK_CANCELED);
	task_free(o);
	ck_assert_int_eq(tasks_add_message(id, "alice", task_msg_text("user",
	    "after", id, NULL), &o), 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(last_history_text(o), "after");
	ck_assert_int_eq(o->state, TASK_CANCELED);
	task_free(o);
	ck_assert_int_eq(tasks_get(id, "alice", &t), 0);
	h = json_object_array_length(t->history);
	ck_assert_uint_eq(h, 3);
	ck_assert_str_eq(last_history_text(t), "after");
	ck_assert_int_eq(t->state, TASK_CANCELED);
	task_free(t);
	env_stop(&w);
}
END_TEST

START_TEST(test_task_operations)
{
	struct env w;
	char ids[3][UUID_STR_LEN], params[160];
	struct op_ctx ctx;
	struct op_outcome out;
	json_object *p, *arr;
	struct task *t;
	int i;

	env_start(&w, "executor_threads = 2\n");
	for (i = 0; i < 3; i++) {
		submit(&w, "{\"steps\":1,\"interval_ms\":0}", ids[i]);
		t = wait_terminal(ids[i], "alice", TU_HANG_MS);
		task_free(t);
	}
	ctx.cfg = w.cfg;
	ctx.who = &w.alice;
	ctx.message = NULL;

	/* tasks.get */
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", ids[1]);
	p = json_tokener_parse(params);
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.get", p, NULL, &out), 0);
	ck_assert_ptr_null(out.task);
	ck_assert_str_eq(ju_str(out.result, "task_id"), ids[1]);
	ck_assert_str_eq(ju_str(out.result, "state"), "completed");
	ck_assert_str_eq(ju_str(out.result, "operation"), "diag.timer");
	ck_assert_ptr_nonnull(ju_obj(out.result, "result"));
	ck_assert_ptr_nonnull(ju_obj(out.result, "progress"));
	ops_outcome_clear(&out);
	json_object_put(p);

	/* tasks.list: two pages of 2 and 1. */
	p = json_tokener_parse("{\"page_size\":2}");
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.list", p, NULL, &out), 0);
	json_object_put(p);
	ck_assert(int_of(out.result, "total") == 3);
	arr = ju_arr(out.result, "tasks");
	ck_assert_uint_eq(json_object_array_length(arr), 2);
	ck_assert_ptr_nonnull(ju_str(out.result, "next_page_token"));
	ck_assert_str_ne(ju_str(out.result, "next_page_token"), "");
	snprintf(params, sizeof(params), "{\"page_size\":2,\"page_token\":"
	    "\"%s\"}", ju_str(out.result, "next_page_token"));
	ops_outcome_clear(&out);
	p = json_tokener_parse(params);
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.list", p, NULL, &out), 0);
	json_object_put(p);
	ck_assert_uint_eq(json_object_array_length(ju_arr(out.result,
	    "tasks")), 1);
	ck_assert_str_eq(ju_str(out.result, "next_page_token"), "");
	ops_outcome_clear(&out);
	/* State filter. */
	p = json_tokener_parse("{\"state\":\"working\"}");
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.list", p, NULL, &out), 0);
	json_object_put(p);
	ck_assert(int_of(out.result, "total") == 0);
	ops_outcome_clear(&out);
	/* A token this agent never issued. */
	p = json_tokener_parse("{\"page_token\":\"garbage\"}");
	ck_assert_int_eq(ops_invoke(&ctx, "tasks.list", p, NULL, &out), -1);
	json_object_put(p);
	ck_assert_str_eq(out.err.code, ERRC_INVALID_PARAMS);
	ck_assert_ptr_nonnull(strstr(out.err.message, "page_token"));
	ops_outcome_clear(&out);

	/* tasks_record: a task finished at once is stored and heard of. */
	t = task_new("alice", "tasks.get", NULL, NULL);
	task_complete(t, json_tokener_parse("{\"x\":1}"));
	{
		struct task *snap = NULL, *g = NULL;
		char *err = NULL, rid[UUID_STR_LEN];
		static struct ev ev[8];

		strcpy(rid, t->id);
		ck_assert_int_eq(tasks_record(t, &snap, &err), 0);
		ck_assert_ptr_nonnull(snap);
		ck_assert_str_eq(snap->id, rid);
		task_free(snap);
		ck_assert_int_eq(tasks_get(rid, "alice", &g), 0);
		ck_assert_int_eq(g->state, TASK_COMPLETED);
		task_free(g);
		ck_assert_uint_eq(events_of(rid, ev, 8), 1);
		ck_assert_int_eq(ev[0].state, TASK_COMPLETED);
	}
	env_stop(&w);
}
END_TEST

/* ---- a follow-up while the waiting task's step runs ---------------------- */

/* An operation whose step holds its executor thread until released: it
 * stands for the input-required task's own short step. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static bool hold_in_step, hold_release;

static enum step_result
held_ask_step(struct task *t, const struct step_env *env)
{
	struct timespec ts = clock_ts(clock_wall_ms() + TU_HANG_MS);

	pthread_mutex_lock(&hold_lock);
	hold_in_step = true;
	pthread_cond_broadcast(&hold_cond);
	while (!hold_release && pthread_cond_timedwait(&hold_cond,
	    &hold_lock, &ts) == 0)
		;
	pthread_mutex_unlock(&hold_lock);
	task_set_state(t, TASK_INPUT_REQUIRED);
	t->next_wake_ms = env->now_ms + 3600 * 1000;
	return STEP_WAIT;
}

static bool
held_resolve(const char *name, const struct config *cfg,
    struct tasks_runner *out)
{
	if (strcmp(name, "test.ask") == 0) {
		memset(out, 0, sizeof(*out));
		out->step = held_ask_step;
		return true;
	}
	return ops_resolve(name, cfg, out);
}

struct giver {
	const char *id;
	int rc;
	struct task *out;
};

static void *
giver_main(void *arg)
{
	struct giver *g = arg;

	g->rc = tasks_give_input(g->id, "alice", "test.ask", "diag.timer",
	    json_tokener_parse("{\"steps\":1,\"interval_ms\":0}"),
	    task_msg_text("user", "go", g->id, NULL), NULL, &g->out);
	return NULL;
}

START_TEST(test_give_input_while_busy)
{
	struct env w;
	struct task *t, *snap = NULL;
	struct giver g = { NULL, -99, NULL };
	struct timespec ts;
	pthread_t th;
	char id[UUID_STR_LEN], *err = NULL;

	memset(&w, 0, sizeof(w));
	tu_subdir_make(tu_topdir(), w.dir, sizeof(w.dir));
	w.cfg = tu_configf("store_path = %s/tasks.db\ndiagnostics = true\n"
	    "executor_threads = 1\n", w.dir);
	open_store(&w);
	ck_assert(tasks_start(w.cfg, w.st, listener, held_resolve, &err) ==
	    0);
	t = task_new("alice", "test.ask", NULL, NULL);
	task_set_state(t, TASK_INPUT_REQUIRED);
	strcpy(id, t->id);
	ck_assert_int_eq(tasks_submit(t, &snap, &err), 0);
	task_free(snap);
	/* Its step is running (the executor holds it busy)... */
	ts = clock_ts(clock_wall_ms() + TU_HANG_MS);
	pthread_mutex_lock(&hold_lock);
	while (!hold_in_step && pthread_cond_timedwait(&hold_cond,
	    &hold_lock, &ts) == 0)
		;
	ck_assert(hold_in_step);
	pthread_mutex_unlock(&hold_lock);
	/* ...when the follow-up comes: it waits for the step, then runs. */
	g.id = id;
	ck_assert_int_eq(pthread_create(&th, NULL, giver_main, &g), 0);
	usleep(100 * 1000);	/* let it reach the busy entry */
	pthread_mutex_lock(&hold_lock);
	hold_release = true;
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(g.rc == 0, "tasks_give_input: %d", g.rc);
	ck_assert_ptr_nonnull(g.out);
	ck_assert_str_eq(g.out->operation, "diag.timer");
	task_free(g.out);
	t = wait_terminal(id, "alice", TU_HANG_MS);
	ck_assert_int_eq(t->state, TASK_COMPLETED);
	ck_assert_str_eq(t->operation, "diag.timer");
	task_free(t);
	env_stop(&w);
}
END_TEST

/* ---- the rendered-task cache --------------------------------------------- */

static const char *const tc_id = "0b7e2c1a-1f6e-4c4f-9d1a-2b3c4d5e6f70";

/* A later rev replaces the older ones: a new write is never answered
 * with an old rendering, and an old one put late is not kept. */
START_TEST(test_tcache_revs)
{
	char *text = NULL;

	tcache_limits(0, 0);
	tcache_put(tc_id, 1, 0, "alice", "{\"v\":1}");
	ck_assert_int_eq(tcache_get(tc_id, 1, 0, "alice", &text), 0);
	ck_assert_str_eq(text, "{\"v\":1}");
	free(text);
	ck_assert_int_eq(tcache_get(tc_id, 2, 0, "alice", &text), 1);
	ck_assert_ptr_null(text);
	tcache_put(tc_id, 2, 0, "alice", "{\"v\":2}");
	tcache_put(tc_id, 2, 1, "alice", "{\"v\":2,\"d\":1}");
	ck_assert_int_eq(tcache_get(tc_id, 1, 0, "alice", &text), 1);
	ck_assert_int_eq(tcache_get(tc_id, 2, 0, "alice", &text), 0);
	ck_assert_str_eq(text, "{\"v\":2}");
	free(text);
	ck_assert_int_eq(tcache_get(tc_id, 2, 1, "alice", &text), 0);
	ck_assert_str_eq(text, "{\"v\":2,\"d\":1}");
	free(text);
	/* A rendering of rev 1 that arrives late is not kept. */
	tcache_put(tc_id, 1, 0, "alice", "{\"v\":1}");
	ck_assert_int_eq(tcache_get(tc_id, 1, 0, "alice", &text), 1);
	tcache_clear();
}
END_TEST

/* An entry answers only its task's owner. */
START_TEST(test_tcache_owner)
{
	char *text = NULL;

	tcache_limits(0, 0);
	tcache_put(tc_id, 3, 0, "alice", "{\"secret\":true}");
	ck_assert_int_eq(tcache_get(tc_id, 3, 0, "bob", &text), 1);
	ck_assert_ptr_null(text);
	ck_assert_int_eq(tcache_get(tc_id, 3, 0, "alic", &text), 1);
	ck_assert_int_eq(tcache_get(tc_id, 3, 0, "alice", &text), 0);
	free(text);
	tcache_clear();
}
END_TEST

/* The bounds hold: entries and bytes, least recently used out first;
 * a text too large for the bound is not cached. */
START_TEST(test_tcache_bounds)
{
	struct tcache_stats cs;
	char id[UUID_STR_LEN], big[4096], *text = NULL;
	int i;

	tcache_limits(10, 0);
	for (i = 0; i < 25; i++) {
		snprintf(id, sizeof(id), "%08x-1f6e-4c4f-9d1a-2b3c4d5e6f70",
		    (unsigned)i);
		tcache_put(id, 1, 0, "alice", "{}");
		if (i == 20) {	/* the oldest one left (11): used, kept */
			ck_assert_int_eq(tcache_get(
			    "0000000b-1f6e-4c4f-9d1a-2b3c4d5e6f70", 1, 0,
			    "alice", &text), 0);
			free(text);
		}
	}
	tcache_get_stats(&cs);
	ck_assert_uint_eq(cs.entries, 10);
	ck_assert_uint_ge(cs.evictions, 15);
	/* 21..24 pushed out 12..15, the least recently used, not 11. */
	ck_assert_int_eq(tcache_get("0000000b-1f6e-4c4f-9d1a-2b3c4d5e6f70", 1,
	    0, "alice", &text), 0);
	free(text);
	ck_assert_int_eq(tcache_get("0000000c-1f6e-4c4f-9d1a-2b3c4d5e6f70", 1,
	    0, "alice", &text), 1);

	memset(big, 'x', sizeof(big) - 1);
	big[0] = '"';
	big[sizeof(big) - 2] = '"';
	big[sizeof(big) - 1] = '\0';
	tcache_limits(1000, 64 * 1024);
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "%08x-1f6e-4c4f-9d1a-2b3c4d5e6f70",
		    (unsigned)i);
		tcache_put(id, 1, 0, "alice", big);
		tcache_get_stats(&cs);
		ck_assert_uint_le(cs.bytes, 64 * 1024);
	}
	ck_assert_uint_gt(cs.entries, 0);
	ck_assert_uint_lt(cs.entries, 16);
	/* More than a quarter of the bound: not cached at all. */
	tcache_limits(1000, 12 * 1024);
	tcache_put(tc_id, 1, 0, "alice", big);
	tcache_get_stats(&cs);
	ck_assert_uint_eq(cs.entries, 0);
	tcache_limits(0, 0);
	tcache_clear();
}
END_TEST

/* ---- trev: the revs of rows known without the store ---------------------- */

static const char *const rv_a = "0a000000-1f6e-4c4f-9d1a-2b3c4d5e6f70";
static const char *const rv_b = "0b000000-1f6e-4c4f-9d1a-2b3c4d5e6f70";

/* What a read may teach, and when it must not. */
START_TEST(test_trev_protocol)
{
	struct trev_stats ts;
	uint64_t t1, t2;
	int64_t rev = -1;

	trev_limits(0);
	/* Unknown; a read teaches it; it answers its owner only. */
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t1), -1);
	trev_learn(rv_a, t1, "alice", 5);
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t2), 0);
	ck_assert_int_eq(rev, 5);
	ck_assert_int_eq(trev_get(rv_a, "bob", &rev, &t2), 1);

	/* A write makes it unknown; a read whose ticket was taken while
	 * the write was in flight, or before it ended, teaches nothing. */
	trev_write_begin(rv_a);
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t1), -1);
	trev_learn(rv_a, t1, "alice", 5);	/* in flight */
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t2), -1);
	trev_write_end(rv_a);
	trev_learn(rv_a, t1, "alice", 5);	/* ended since the ticket */
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t2), -1);
	trev_learn(rv_a, t2, "alice", 6);	/* a read after the write */
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t2), 0);
	ck_assert_int_eq(rev, 6);

	/* A whole write between the ticket and the learning: refused, for
	 * a known row and for one never seen before. */
	t1 = trev_ticket();
	trev_write_begin(rv_a);
	trev_write_end(rv_a);
	trev_write_begin(rv_b);
	trev_write_end(rv_b);
	trev_learn(rv_a, t1, "alice", 6);
	trev_learn(rv_b, t1, "bob", 1);
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t2), -1);
	ck_assert_int_eq(trev_get(rv_b, "bob", &rev, &t2), -1);
	/* Another row's write does not stop a read of this one. */
	t1 = trev_ticket();
	trev_write_begin(rv_b);
	trev_write_end(rv_b);
	trev_learn(rv_a, t1, "alice", 7);
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t2), 0);
	ck_assert_int_eq(rev, 7);
	trev_get_stats(&ts);
	ck_assert_uint_eq(ts.refused, 4);
	trev_limits(0);
}
END_TEST

/* Bounded; an eviction since a ticket refuses its learning (the row may
 * have been written and forgotten); a row being written is not evicted. */
START_TEST(test_trev_bounds)
{
	struct trev_stats ts;
	char id[UUID_STR_LEN];
	uint64_t t1, t2;
	int64_t rev;
	int i;

	trev_limits(4);
	trev_write_begin(rv_a);		/* in flight throughout */
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "%08x-1f6e-4c4f-9d1a-2b3c4d5e6f70",
		    (unsigned)i + 1);
		trev_learn(id, trev_ticket(), "alice", i);
		trev_get_stats(&ts);
		ck_assert_uint_le(ts.entries, 4);
	}
	/* The newest ones are there, the oldest gone. */
	ck_assert_int_eq(trev_get("0000000a-1f6e-4c4f-9d1a-2b3c4d5e6f70",
	    "alice", &rev, &t1), 0);
	ck_assert_int_eq(rev, 9);
	ck_assert_int_eq(trev_get("00000001-1f6e-4c4f-9d1a-2b3c4d5e6f70",
	    "alice", &rev, &t1), -1);
	/* rv_a's write was never evicted: its end finds it. */
	trev_write_end(rv_a);
	t1 = trev_ticket();
	trev_learn(rv_b, trev_ticket(), "bob", 3);	/* evicts one */
	trev_learn(rv_a, t1, "alice", 2);		/* refused */
	ck_assert_int_eq(trev_get(rv_a, "alice", &rev, &t2), -1);
	ck_assert_int_eq(trev_get(rv_b, "bob", &rev, &t2), 0);
	ck_assert_int_eq(rev, 3);
	trev_limits(0);
}
END_TEST

/* Through the tasks module and a real store: a peek answers the store's
 * rev, from memory once learnt, and a write is never hidden by it. */
START_TEST(test_peek_follows_writes)
{
	struct env w;
	struct trev_stats t0, t1;
	struct task *t = NULL;
	char id[UUID_STR_LEN], *who = NULL;
	int64_t rev = 0, srev = 0, last = -1;
	int i;

	trev_limits(0);
	env_start(&w, "executor_threads = 1\n");
	submit(&w, "{\"steps\":3,\"interval_ms\":60000}", id);
	t = wait_waiting(id, "alice");
	task_free(t);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(tasks_peek(id, "alice", &rev), 0);
		ck_assert_int_eq(store_task_peek(w.st, id, &who, &srev), 0);
		ck_assert_str_eq(who, "alice");
		free(who);
		who = NULL;
		ck_assert_int_eq(rev, srev);
		ck_assert_int_gt(rev, last);
		last = rev;
		/* Again: from memory, the same. */
		trev_get_stats(&t0);
		ck_assert_int_eq(tasks_peek(id, "alice", &rev), 0);
		trev_get_stats(&t1);
		ck_assert_uint_eq(t1.hits, t0.hits + 1);
		ck_assert_int_eq(rev, srev);
		ck_assert_int_eq(tasks_peek(id, "bob", &rev), 1);
		/* A write (a message into the history) raises the rev. */
		ck_assert_int_eq(tasks_add_message(id, "alice",
		    task_msg_text("user", "more", NULL, NULL), &t), 0);
		task_free(t);
		t = NULL;
	}
	env_stop(&w);
	trev_limits(0);
}
END_TEST

static Suite *
tasks_suite(void)
{
	Suite *s = suite_create("tasks");
	TCase *tc = tcase_create("core");

	log_set_level(LOG_WARN);
	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_completes);
	tcase_add_test(tc, test_fail_at_step);
	tcase_add_test(tc, test_cancel_waiting);
	tcase_add_test(tc, test_cancel_finished);
	tcase_add_test(tc, test_other_owner);
	tcase_add_test(tc, test_resume);
	tcase_add_test(tc, test_waits_hold_no_thread);
	tcase_add_test(tc, test_add_message);
	tcase_add_test(tc, test_task_operations);
	tcase_add_test(tc, test_give_input_while_busy);
	tcase_add_test(tc, test_tcache_revs);
	tcase_add_test(tc, test_tcache_owner);
	tcase_add_test(tc, test_tcache_bounds);
	tcase_add_test(tc, test_trev_protocol);
	tcase_add_test(tc, test_trev_bounds);
	tcase_add_test(tc, test_peek_follows_writes);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { tasks_suite })
