/* SPDX-License-Identifier: MIT */
/*
 * tasks: the task executor.  M executor threads and one timer queue.  A
 * task that waits (for a pod, a remote job, a retry) holds no thread: its
 * operation's step function does one short piece of work, sets
 * t->next_wake_ms and returns STEP_WAIT, and the task goes back on the
 * timer queue.  Every change is committed to the store before listeners
 * hear of it.  Active (non-terminal) tasks are kept in memory; finished
 * ones live only in the store.
 */
#ifndef IA_TASKS_H
#define IA_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/attrs.h"
#include "core/config.h"
#include "core/op.h"
#include "store/store.h"
#include "core/task.h"
#include "lib/strbuf.h"

/* What the executor needs of a task's operation. */
struct tasks_runner {
	op_step_fn step;	/* one short step */
	op_step_fn cancel;	/* clean up on cancel; NULL: nothing to do */
	const char *unavailable; /* why it cannot run now (static), or NULL */
};

/* How the executor finds the runner of an operation by name (given by the
 * layer above, which owns the operation table): true and *out, or false
 * when no task operation has that name. */
typedef bool (*tasks_resolve_fn)(const char *operation,
    const struct config *cfg, struct tasks_runner *out);

/* Called (from executor and request threads) after every committed change
 * with a snapshot the listener must not keep (clone it to keep it). */
typedef void (*tasks_listener_fn)(const struct task *snapshot);

/* Whether anyone here follows task id, told another agent committed
 * its version (tasks_set_remote_listener). */
typedef bool (*tasks_wants_fn)(const char *id, int64_t version);
/*
 * On a shared store (several agents), fn hears of the changes other
 * agents commit to tasks this agent does not hold (for its streams and
 * waits; not for push or events, which the writing agent sends), read
 * from the store only when wants says someone here follows the task.
 * Set before tasks_start; NULL: none.
 */
void tasks_set_remote_listener(tasks_listener_fn fn, tasks_wants_fn wants);
/* Start the executor; resumes every non-terminal task from the store (on
 * a shared store: those whose lease is free or has run out; the lease
 * thread claims others as their agents stop renewing). */
WARN_UNUSED_RESULT
int tasks_start(const struct config *cfg, struct store *st,
    tasks_listener_fn listener, tasks_resolve_fn resolve, char **err);
/* Stop taking steps; wait up to grace_s for running steps; tasks stay
 * resumable in the store. */
void tasks_stop(int grace_s);

/*
 * Persist a new task and queue it to run now.  Takes ownership of t.
 * On success *snapshot (may be NULL) receives a clone for the caller
 * (task_free it).  0, or -1 with *err.
 */
WARN_UNUSED_RESULT
int tasks_submit(struct task *t, struct task **snapshot, char **err);

/*
 * A finished task (completed at once by a sync operation or a plain
 * message): persist it and tell listeners.  Takes ownership.
 */
WARN_UNUSED_RESULT
int tasks_record(struct task *t, struct task **snapshot, char **err);

/*
 * Load a task visible to owner: 0 and *out (caller frees), 1 when absent
 * or someone else's (indistinguishable on purpose), -1 on store error.
 */
WARN_UNUSED_RESULT
int tasks_get(const char *id, const char *owner, struct task **out);

/* tasks_get, and *rev: the store's write counter of the row read (see
 * store_task_get_rev), the key under which a rendering of it is cached. */
WARN_UNUSED_RESULT
int tasks_get_rev(const char *id, const char *owner, struct task **out,
    int64_t *rev);

/*
 * Which write of owner's task id the store holds, from an index (no row
 * is read or parsed): 0 and *rev; 1 when absent or someone else's; -1 on
 * store error.
 */
WARN_UNUSED_RESULT
int tasks_peek(const char *id, const char *owner, int64_t *rev);

enum tasks_cancel_result {
	TASKS_CANCEL_OK = 0,		/* canceled, or cancel under way */
	TASKS_CANCEL_NOT_FOUND = 1,
	TASKS_CANCEL_NOT_CANCELABLE = 2,	/* already terminal */
	TASKS_CANCEL_ERROR = -1
};
/* Cancel; *out receives the task as it now stands (caller frees). */
WARN_UNUSED_RESULT
enum tasks_cancel_result tasks_cancel(const char *id, const char *owner,
    struct task **out);

/* Append a follow-up message (taken) to a task's history. 0, 1 absent. */
WARN_UNUSED_RESULT
int tasks_add_message(const char *id, const char *owner, json_object *msg,
    struct task **out);

/*
 * Give a task that waits for input (state input-required, operation
 * expect_op, no step running) what it waited for: it becomes operation
 * (copied) with params (taken), msg (taken) joins its history, and its
 * checkpoint starts empty.  With result (taken) the task completes with
 * it at once (a sync operation); without, it is queued to run now.
 * 0 and *out (the task as it now stands; caller frees); 1 when there is
 * no such task of owner's; 2 when it does not wait for input (any more);
 * -1 on store error.  On every return the taken objects are consumed.
 */
WARN_UNUSED_RESULT
int tasks_give_input(const char *id, const char *owner,
    const char *expect_op, const char *operation, json_object *params,
    json_object *msg, json_object *result, struct task **out);

/*
 * From inside a step: commit the task as it stands now (and tell
 * listeners), before doing something that must not be done twice, e.g. a
 * create whose answer a crash could lose.  0, or -1 with *err (caller
 * frees): then do not go on with the risky call.
 */
WARN_UNUSED_RESULT
int tasks_checkpoint(struct task *t, char **err);

/* A page of tasks (store_task_list on the executor's store; same
 * arguments and ownership). */
WARN_UNUSED_RESULT
int tasks_list(const struct store_list_query *q, struct task ***tasks,
    size_t *n, char **next_token, int64_t *total, char **err);

/* The same page as refs (id, rev) only (store_task_list_refs). */
WARN_UNUSED_RESULT
int tasks_list_refs(const struct store_list_query *q,
    struct store_task_ref **refs, size_t *n, char **next_token,
    int64_t *total, char **err);

struct tasks_stats {
	unsigned long active;
	unsigned long queued;
	unsigned long running;
	unsigned long steps;
	unsigned long submitted;
	unsigned long finished;
};
void tasks_get_stats(struct tasks_stats *out);
/* The same as Prometheus text (a metrics collector). */
void tasks_metrics(struct strbuf *sb);

#endif
