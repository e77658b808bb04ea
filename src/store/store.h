/* SPDX-License-Identifier: MIT */
/*
 * store: the durable task store on SQLite (WAL, synchronous=NORMAL, schema
 * versioned with PRAGMA user_version).  Writes go through one connection
 * serialised by a mutex; every call is one short statement or
 * transaction.  Task reads (store_task_get, _peek, _list) use a small pool
 * of read-only connections instead, so they never wait behind a write
 * (WAL lets readers and the writer run at once).  A change is committed
 * before it is reported, and a read that starts after a write returned
 * sees it.
 */
#ifndef IA_STORE_H
#define IA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/task.h"
#include "lib/attrs.h"

#define STORE_SCHEMA_VERSION 7

struct store;

struct push_config {
	char *task_id;
	char *id;
	char *url;
	char *token;		/* may be NULL */
	char *auth_scheme;	/* may be NULL */
	char *auth_credentials;	/* may be NULL */
	int64_t created_ms;
	int dialect;		/* enum a2a_dialect of the request that
				 * set it */
};

/* Open (creating or migrating) the store at path.  0, or -1 with *err. */
WARN_UNUSED_RESULT
int store_open(const char *path, struct store **out, char **err);
void store_close(struct store *st);	/* NULL ok */
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

struct store_list_query {
	const char *owner;		/* required */
	const char *context_id;		/* NULL = any */
	int state;			/* -1 = any, else enum task_state */
	int64_t updated_after_ms;	/* 0 = any */
	size_t page_size;		/* 1..100 */
	const char *page_token;		/* NULL or "" = first page */
};
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
/* A task of a page: which, and which write of it. */
struct store_task_ref {
	char id[UUID_STR_LEN];
	int64_t rev;
	int64_t created_ms;
};
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

/*
 * The pod registry (schema 2): every pod the agent created, who owns it,
 * the limits the cost guard enforces and the host key pinned at first
 * contact.  A row is written before anything else learns of the pod and
 * kept after the pod is terminated (state "terminated" and the reason).
 */
struct pod_rec {
	char *pod_id;
	char *name;		/* <prefix>-<task id> */
	char *task_id;		/* the provisioning task */
	char *owner;		/* JWT sub of whoever provisioned it */
	char *state;		/* "active", "stopped" or "terminated" */
	char *gpu_type_id;
	char *cloud;		/* "SECURE" or "COMMUNITY" */
	int gpu_count;
	double cost_per_hr;	/* last rate RunPod reported */
	char *public_ip;	/* NULL until SSH is reachable */
	int ssh_port;
	char *host_fp;		/* "SHA256:..." pinned, or NULL */
	int64_t max_runtime_ms;
	double max_cost_usd;
	int64_t running_ms;	/* accrued while RunPod billed it */
	double cost_usd;	/* accrued */
	int64_t last_check_ms;	/* when running_ms/cost_usd were updated */
	char *reason;		/* why it was terminated or stopped by the
				 * agent, or NULL */
	int64_t idle_ms;	/* schema 4: stop after this long unused;
				 * 0: never */
	int64_t last_used_ms;	/* schema 4: when a task last used it */
	int disk_gb;		/* schema 5: container disk, GB */
	int volume_gb;		/* schema 5: volume disk (mounts.persistent),
				 * GB; 0: none */
	int64_t stopped_ms;	/* schema 5: accrued while stopped (EXITED) */
	double storage_usd;	/* schema 5: disk storage accrued, running
				 * and stopped; cost_usd is compute only */
	char *label;		/* schema 6: the owner's label for it
				 * (provision's pod_name), or NULL */
	int64_t created_ms;
	int64_t updated_ms;
};

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
