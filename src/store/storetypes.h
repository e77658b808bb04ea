/* SPDX-License-Identifier: MIT */
/*
 * storetypes: the records the task store reads and writes, shared by its
 * interface (store.h) and its back ends (storebe.h).  Header only.
 */
#ifndef IA_STORETYPES_H
#define IA_STORETYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/uuid.h"

struct store;	/* an open store, of either back end */

/* store_task_put: another agent holds the task now (nothing written). */
#define STORE_LEASE_LOST (-2)

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

struct store_list_query {
	const char *owner;		/* required */
	const char *context_id;		/* NULL = any */
	int state;			/* -1 = any, else enum task_state */
	int64_t updated_after_ms;	/* 0 = any */
	size_t page_size;		/* 1..100 */
	const char *page_token;		/* NULL or "" = first page */
};

/* A task of a page: which, and which write of it. */
struct store_task_ref {
	char id[UUID_STR_LEN];
	int64_t rev;
	int64_t created_ms;
};

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

/* Changes a pod record in place (store_pod_update). */
typedef void (*store_pod_fn)(struct pod_rec *r, void *arg);

/* A task this holder still holds, as a lease renewal found it. */
struct store_held {
	char id[UUID_STR_LEN];
	int64_t token;
	bool cancel_requested;
};

/* What another agent changed (store_watch; called on the store's own
 * thread): task id's row (its lease token, whether its owner asked to
 * cancel it, and the task's version), or, inbox true, a message was
 * posted to it (store_task_post; the rest then says nothing). */
typedef void (*store_change_fn)(const char *id, int64_t token,
    bool cancel_requested, bool inbox, int64_t version, void *arg);

#endif
