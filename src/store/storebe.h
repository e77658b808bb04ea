/* SPDX-License-Identifier: MIT */
/*
 * storebe: what a task store back end provides (struct store_ops) and
 * what the back ends share: the column lists, a task built from a row's
 * text, the list page token.  Only store.c and the back ends (sqlitest.c,
 * pgstore.c) include it; everyone else uses store.h.  Prefix storebe_.
 *
 * Every operation has the contract of the store_ function of the same
 * name in store.h; task_list serves store_task_list (full: whole tasks
 * into *tasks) and store_task_list_refs (refs into *refs), and pod_get
 * serves store_pod_get (by_task false: key is a pod id) and
 * store_pod_by_task.
 */
#ifndef IA_STOREBE_H
#define IA_STOREBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/task.h"
#include "store/storetypes.h"

struct store_ops {
	const char *name;	/* "sqlite", "postgresql" */
	void (*close)(struct store *st);
	int (*ping)(struct store *st);
	int (*probe_write)(struct store *st, int wait_ms, int64_t now_ms,
	    char **why);
	int (*task_put)(struct store *st, const struct task *t, char **err);
	void (*put_stats)(struct store *st, uint64_t *rows,
	    uint64_t *batches);
	int (*task_get_rev)(struct store *st, const char *id,
	    struct task **out, int64_t *rev);
	int (*task_peek)(struct store *st, const char *id, char **owner,
	    int64_t *rev);
	int (*task_list)(struct store *st, const struct store_list_query *q,
	    bool full, struct task ***tasks, struct store_task_ref **refs,
	    size_t *n, char **next_token, int64_t *total, char **err);
	int (*task_active)(struct store *st, struct task ***tasks,
	    size_t *n);
	int (*push_put)(struct store *st, const struct push_config *pc,
	    char **err);
	int (*push_get)(struct store *st, const char *task_id,
	    const char *id, struct push_config **out);
	int (*push_list)(struct store *st, const char *task_id,
	    struct push_config ***out, size_t *n);
	int (*push_delete)(struct store *st, const char *task_id,
	    const char *id);
	int (*push_task_ids)(struct store *st, char ***ids, size_t *n);
	int (*pod_put)(struct store *st, const struct pod_rec *p,
	    char **err);
	int (*pod_get)(struct store *st, bool by_task, const char *key,
	    struct pod_rec **out);
	int (*pod_list)(struct store *st, const char *owner,
	    bool with_terminated, struct pod_rec ***out, size_t *n);
	/* Leases (store.h); NULL: not shared, trivial. */
	void (*lease_config)(struct store *st, const char *holder,
	    int64_t lease_ms);
	int (*task_claim)(struct store *st, int64_t now_ms, size_t max,
	    struct task ***tasks, size_t *n);
	int (*lease_renew)(struct store *st, int64_t now_ms,
	    struct store_held **held, size_t *n);
	int (*lease_release)(struct store *st);
	int (*task_request_cancel)(struct store *st, const char *id);
	int (*task_take)(struct store *st, const char *id, struct task **out);
	int (*task_post)(struct store *st, const char *id, const char *msg);
	int (*inbox_take)(struct store *st, const char *id, char ***msgs,
	    size_t *n, int64_t *last);
	int (*inbox_done)(struct store *st, const char *id, int64_t last);
	int (*watch)(struct store *st, store_change_fn fn, void *arg);
	bool (*singleton)(struct store *st, const char *name);
};

/* The head of every back end's own struct (its first member). */
struct store {
	const struct store_ops *ops;
};

#define STOREBE_POD_COLS "pod_id, name, task_id, owner, state, " \
    "gpu_type_id, cloud, gpu_count, cost_per_hr, public_ip, ssh_port, " \
    "host_fp, max_runtime_ms, max_cost_usd, running_ms, cost_usd, " \
    "last_check_ms, reason, created_ms, updated_ms, idle_ms, " \
    "last_used_ms, disk_gb, volume_gb, stopped_ms, storage_usd, label"
#define STOREBE_POD_NCOLS 27

#define STOREBE_TASK_COLS "id, context_id, owner, operation, params, " \
    "state, progress, result, artifacts, error, checkpoint, history, " \
    "created_ms, updated_ms, next_wake_ms, version, cancel_requested"
/* What a read selects: the columns, then rev (column 17). */
#define STOREBE_TASK_READ_COLS STOREBE_TASK_COLS ", rev"

#define STOREBE_PUSH_COLS "task_id, id, url, token, auth_scheme, " \
    "auth_credentials, created_ms, dialect"

/*
 * A task row's columns copied out of the database, so that parsing the
 * JSON columns (the costly part) can happen after the connection is
 * given back: text[0..11] are the text columns of STOREBE_TASK_COLS in
 * order (new strings or NULL), num[0..4] its numbers, num[5] the rev.
 */
struct storebe_row {
	char *text[12];
	int64_t num[6];
	int64_t lease_token;	/* 0 where the back end has none */
};

/* The task of a copied row: a new task (caller task_free()s); frees the
 * row's strings. */
struct task *storebe_row_parse(struct storebe_row *raw);
/* The JSON columns of t in the order of storebe_row's text[4], [6..11]:
 * params, progress, result, artifacts, error, checkpoint, history; new
 * strings (NULL for an absent one; caller frees each). */
void storebe_task_json(const struct task *t, char *json[7]);

/* Page tokens are "<created_ms>.<id>" of the last task of a page: 0 and
 * the parts, or -1 when tok is not one. */
int storebe_parse_token(const char *tok, int64_t *created,
    char id[UUID_STR_LEN]);

#endif
