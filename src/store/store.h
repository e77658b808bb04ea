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

/* Insert or replace the whole row.  0, or -1 with *err.  Writes that
 * arrive together are committed together (group commit); each returns
 * after the COMMIT that holds its row. */
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
/* The distinct task ids that have at least one push config: *ids a new
 * array of *n new strings (caller frees each and the array).  0, or -1. */
WARN_UNUSED_RESULT
int store_push_task_ids(struct store *st, char ***ids, size_t *n);
void store_push_free(struct push_config *pc);	/* NULL ok */
/* store_push_free each of n configs, then the array (NULL ok). */
void store_push_list_free(struct push_config **pcs, size_t n);


/* Insert or update the whole row (key pod_id).  0, or -1 with *err. */
WARN_UNUSED_RESULT
int store_pod_put(struct store *st, const struct pod_rec *p, char **err);
/* 0 and *out (caller frees with store_pod_free) when found, 1 absent,
 * -1 error. */
WARN_UNUSED_RESULT
int store_pod_get(struct store *st, const char *pod_id, struct pod_rec **out);
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
