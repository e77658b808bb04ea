/* SPDX-License-Identifier: MIT */
/*
 * store: the durable task store, behind one interface with two back
 * ends: SQLite (sqlitest.h, the default: one agent, one file) and
 * PostgreSQL (pgstore.h: several agents share one database).  Which one
 * is chosen by the store's spec (store_open).  On either, a change is
 * committed before it is reported, and a read that starts after a write
 * returned sees it.  Every call is safe from any thread.
 */
#ifndef IA_STORE_H
#define IA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/task.h"
#include "lib/attrs.h"
#include "store/storetypes.h"

/*
 * Open (creating or migrating) the store that spec names:
 *   "sqlite:/path/tasks.db", or a plain path    SQLite (sqlitest_open)
 *   "postgresql://USER@HOST:PORT/DB?..."        PostgreSQL (pgstore_open;
 *   or "postgres://..."                          also a libpq key=value
 *                                                string after "postgresql:")
 * password_file (NULL or "": none) holds the PostgreSQL password; a spec
 * that carries a password itself is refused, and neither is ever logged
 * or put in *err.  0 and *out (caller closes with store_close), or -1
 * with *err (caller frees).
 */
WARN_UNUSED_RESULT
int store_open(const char *spec, const char *password_file,
    struct store **out, char **err);
void store_close(struct store *st);	/* NULL ok */
/* The back end's name: "sqlite" or "postgresql" (static). */
const char *store_backend(const struct store *st);
/* True when spec names a PostgreSQL store (a URL starting with
 * postgresql:// or postgres://, or "postgresql:" and a key=value
 * string). */
bool store_spec_is_postgresql(const char *spec);
/* 0 when the database answers a trivial query. */
WARN_UNUSED_RESULT
int store_ping(struct store *st);
/*
 * Readiness: prove that a write commits (BEGIN IMMEDIATE, rewrite the one
 * row of the health table with now_ms, COMMIT), waiting at most wait_ms
 * for the store's lock and again for SQLite's write lock.  0, or -1 with
 * *why (a new string, caller frees): locked by another writer, busy, disk
 * full, read-only, I/O error.
 */
WARN_UNUSED_RESULT
int store_probe_write(struct store *st, int wait_ms, int64_t now_ms,
    char **why);

/*
 * Insert or replace the whole row.  0, or -1 with *err.  Writes that
 * arrive together are committed together (group commit on SQLite); each
 * returns after the COMMIT that holds its row.  On a shared store the
 * update of an existing row is fenced: it is made only while the row's
 * lease token is still t->lease_token, else STORE_LEASE_LOST (another
 * agent has claimed the task since this copy was read; nothing written).
 * A new row is leased to this agent (store_lease_config).  An owner's
 * cancel request on the row is never cleared by a put.
 */
WARN_UNUSED_RESULT
int store_task_put(struct store *st, const struct task *t, char **err);
/* Task rows written and the transactions (batches) that wrote them,
 * since the store was opened. */
void store_put_stats(struct store *st, uint64_t *rows, uint64_t *batches);
/* 0 and *out (caller task_free()s) when found, 1 when absent, -1 on error. */
WARN_UNUSED_RESULT
int store_task_get(struct store *st, const char *id, struct task **out);
/* The same, and *rev (rev may be NULL): the row's write counter, which
 * every store_task_put of the task raises (whether or not it bumps the
 * task's version).  A read of the same rev reads the same row. */
WARN_UNUSED_RESULT
int store_task_get_rev(struct store *st, const char *id, struct task **out,
    int64_t *rev);
/*
 * A task's owner and rev from an index, without reading the row: 0 and
 * *owner (a new string, caller frees) and *rev; 1 when absent; -1 on
 * error.
 */
WARN_UNUSED_RESULT
int store_task_peek(struct store *st, const char *id, char **owner,
    int64_t *rev);

/*
 * Tasks of one owner, newest first.  *tasks is a new array of *n new
 * tasks (caller frees with task_list_free); *next_token is a new
 * string ("" on the last page); *total the count matching the filters
 * (the total with no filter but the owner, or the state alone, is kept
 * per owner and state, so it costs the same for 100 tasks or 100,000).
 * -1 with *err on a bad page token or database error.
 */
WARN_UNUSED_RESULT
int store_task_list(struct store *st, const struct store_list_query *q,
    struct task ***tasks, size_t *n, char **next_token, int64_t *total,
    char **err);
/*
 * store_task_list's page as refs only, read from an index (no row):
 * *refs is a new array of *n (caller frees); *next_token and *total as
 * there.  -1 with *err as there.
 */
WARN_UNUSED_RESULT
int store_task_list_refs(struct store *st, const struct store_list_query *q,
    struct store_task_ref **refs, size_t *n, char **next_token,
    int64_t *total, char **err);
/* Every non-terminal task, oldest first (for resume at start); *tasks as
 * for store_task_list. */
WARN_UNUSED_RESULT
int store_task_active(struct store *st, struct task ***tasks, size_t *n);

WARN_UNUSED_RESULT
int store_push_put(struct store *st, const struct push_config *pc, char **err);
/* 0 found (*out new, free with store_push_free), 1 absent, -1 error. */
WARN_UNUSED_RESULT
int store_push_get(struct store *st, const char *task_id, const char *id,
    struct push_config **out);
/* All configs of a task: new array of new configs (caller frees with
 * store_push_list_free). */
WARN_UNUSED_RESULT
int store_push_list(struct store *st, const char *task_id,
    struct push_config ***out, size_t *n);
/* 0 deleted, 1 absent, -1 error. */
WARN_UNUSED_RESULT
int store_push_delete(struct store *st, const char *task_id, const char *id);
/* The distinct ids of the unfinished tasks (not in a terminal state)
 * that have at least one push config: *ids a new array of *n new strings
 * (caller frees each and the array).  0, or -1. */
WARN_UNUSED_RESULT
int store_push_task_ids(struct store *st, char ***ids, size_t *n);
void store_push_free(struct push_config *pc);	/* NULL ok */
/* store_push_free each of n configs, then the array (NULL ok). */
void store_push_list_free(struct push_config **pcs, size_t n);


/*
 * ---- Leases: which agent runs a task (docs/internals.md, "Leases") ----
 * On a shared store (PostgreSQL: several agents) every unfinished task
 * is leased to one agent at a time, which alone runs its steps; on
 * SQLite (one agent) these calls are trivial: every task is this
 * process's.
 */
/* True when other agents may share the store. */
bool store_shared(const struct store *st);
/* This process's lease holder name (unique per start; copied) and the
 * lease time.  Call once, before the first task write. */
void store_lease_config(struct store *st, const char *holder,
    int64_t lease_ms);
/*
 * Claim up to max unfinished tasks whose lease is free or expired (every
 * unfinished task on SQLite): each gets this holder, a new lease token
 * (in t->lease_token) and a lease until now_ms + the lease time.
 * *tasks: a new array of *n new tasks, oldest first (caller frees with
 * task_list_free).  0, or -1.
 */
WARN_UNUSED_RESULT
int store_task_claim(struct store *st, int64_t now_ms, size_t max,
    struct task ***tasks, size_t *n);
/* Extend every lease of this holder to now_ms + the lease time: *held a
 * new array of *n (caller frees), the tasks it still holds.  0, or -1
 * (then leases may run out: stop starting steps). */
WARN_UNUSED_RESULT
int store_lease_renew(struct store *st, int64_t now_ms,
    struct store_held **held, size_t *n);
/* End this holder's leases now (at shutdown), so that other agents may
 * claim its tasks at once.  0, or -1. */
int store_lease_release(struct store *st);
/* Ask the holder of unfinished task id to cancel it (sets its
 * cancel_requested).  0; 1 when no such unfinished task; -1 on error. */
WARN_UNUSED_RESULT
int store_task_request_cancel(struct store *st, const char *id);
/*
 * Take the lease of task id, which must wait for input, from whichever
 * agent holds it (none of its steps runs while it waits): 0 and *out
 * (the row, with the new token; caller task_free()s); 1 when it does
 * not wait for input; -1 on error.
 */
WARN_UNUSED_RESULT
int store_task_take(struct store *st, const char *id, struct task **out);
/*
 * Post a follow-up message (JSON text, copied) to unfinished task id for
 * its holder to add to the history (store_inbox_take): 0; 1 when there
 * is no such unfinished task (add it to the row yourself); -1 on error.
 */
WARN_UNUSED_RESULT
int store_task_post(struct store *st, const char *id, const char *msg);
/* The messages posted to task id, oldest first: *msgs a new array of *n
 * new strings (caller frees each and the array), and *last the mark to
 * give store_inbox_done once they are in the task's committed history.
 * 0, or -1. */
WARN_UNUSED_RESULT
int store_inbox_take(struct store *st, const char *id, char ***msgs,
    size_t *n, int64_t *last);
/* Delete task id's posted messages up to last.  0, or -1. */
int store_inbox_done(struct store *st, const char *id, int64_t last);
/* Call fn for every task row that another agent's session writes, from
 * now until store_close (no-op on SQLite).  0, or -1. */
WARN_UNUSED_RESULT
int store_watch(struct store *st, store_change_fn fn, void *arg);
/* Whether this process holds the singleton name (at most one process of
 * those sharing the store does; it keeps it while it lives, and another
 * takes it over when it dies).  Always true on SQLite. */
bool store_singleton(struct store *st, const char *name);

/* Insert or update the whole row (key pod_id).  0, or -1 with *err. */
WARN_UNUSED_RESULT
int store_pod_put(struct store *st, const struct pod_rec *p, char **err);
/* 0 and *out (caller frees with store_pod_free) when found, 1 absent,
 * -1 error. */
WARN_UNUSED_RESULT
int store_pod_get(struct store *st, const char *pod_id, struct pod_rec **out);
/*
 * Read pod pod_id, let fn change the record, write it: one step, which
 * no other writer of the row (in this process or another agent) can come
 * between.  0, 1 when absent, -1 with *err.
 */
WARN_UNUSED_RESULT
int store_pod_update(struct store *st, const char *pod_id, store_pod_fn fn,
    void *arg, char **err);
/* The pod a task created: like store_pod_get, keyed by task id. */
WARN_UNUSED_RESULT
int store_pod_by_task(struct store *st, const char *task_id,
    struct pod_rec **out);
/*
 * Pods of owner (NULL: everyone's), oldest first, terminated ones only
 * when with_terminated.  *out: new array of *n new records; caller frees
 * it with store_pod_list_free.  0 or -1.
 */
WARN_UNUSED_RESULT
int store_pod_list(struct store *st, const char *owner, bool with_terminated,
    struct pod_rec ***out, size_t *n);
void store_pod_free(struct pod_rec *p);	/* NULL ok */
/* store_pod_free each of n records, then the array (NULL ok). */
void store_pod_list_free(struct pod_rec **recs, size_t n);
/* A deep copy; caller frees with store_pod_free. */
struct pod_rec *store_pod_dup(const struct pod_rec *p);

#endif
