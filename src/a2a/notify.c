/* SPDX-License-Identifier: MIT */
/*
 * notify: push notification configs and fan-out (see notify.h).
 */
#include "auto-config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/notify.h"
#include "a2a/push.h"
#include "a2a/render.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"

static struct store *store;

/*
 * The ids of the tasks that may have push configs: those the store held
 * at start and every task given one since (a deletion leaves its id: a
 * stale id costs one query, a missing one would lose a notification).
 * A task change looks its configs up in the store only when its id is
 * here, so the tasks of clients that never set a config cost no query
 * per change.  Open addressing, at most half full; all = the store could
 * not list them at start, so every change queries.
 */
static struct {
	pthread_mutex_t lock;
	char **slot;
	size_t cap, n;
	bool all;
} K = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t
known_find_locked(const char *id)
{
	size_t i = hash_fnv1a(id) & (K.cap - 1);

	while (K.slot[i] != NULL && strcmp(K.slot[i], id) != 0)
		i = (i + 1) & (K.cap - 1);
	return i;
}

/* Add id (copied) unless it is there. */
static void
known_add_locked(const char *id)
{
	size_t i;

	if ((K.n + 1) * 2 > K.cap) {
		char **old = K.slot;
		size_t oldcap = K.cap, j;

		K.cap = K.cap ? K.cap * 2 : 64;
		K.slot = xcalloc(K.cap, sizeof(*K.slot));
		for (j = 0; j < oldcap; j++)
			if (old[j] != NULL)
				K.slot[known_find_locked(old[j])] = old[j];
		free(old);
	}
	i = known_find_locked(id);
	if (K.slot[i] == NULL) {
		K.slot[i] = xstrdup(id);
		K.n++;
	}
}

static bool
known_has(const char *id)
{
	bool has;

	pthread_mutex_lock(&K.lock);
	has = K.all || (K.cap > 0 && K.slot[known_find_locked(id)] != NULL);
	pthread_mutex_unlock(&K.lock);
	return has;
}

void
notify_init(struct store *st)
{
	char **ids = NULL;
	size_t n = 0, i;

	store = st;
	if (store == NULL)
		return;
	if (store_shared(store)) {
		/* Another agent may add a config to a task this one runs:
		 * no set of this agent's can know, so always look. */
		pthread_mutex_lock(&K.lock);
		K.all = true;
		pthread_mutex_unlock(&K.lock);
		return;
	}
	if (store_push_task_ids(store, &ids, &n) < 0) {
		log_msg(LOG_WARN, "store_error", "cannot list the tasks with "
		    "push configs: every task change will look its configs "
		    "up");
		pthread_mutex_lock(&K.lock);
		K.all = true;
		pthread_mutex_unlock(&K.lock);
		return;
	}
	pthread_mutex_lock(&K.lock);
	for (i = 0; i < n; i++) {
		known_add_locked(ids[i]);
		free(ids[i]);
	}
	pthread_mutex_unlock(&K.lock);
	free(ids);
}

void
notify_task_changed(const struct task *t)
{
	struct push_config **pcs = NULL;
	size_t n = 0, i;

	if (store == NULL || !known_has(t->id) ||
	    notify_config_list(t->id, &pcs, &n) < 0)
		return;
	for (i = 0; i < n; i++) {
		enum a2a_dialect d = pcs[i]->dialect == A2A_V10 ? A2A_V10 :
		    A2A_V03;
		json_object *body = render_stream_task(t, d);
		push_deliver(t->id, pcs[i]->url, pcs[i]->token,
		    pcs[i]->auth_scheme, pcs[i]->auth_credentials,
		    d == A2A_V10 ? "application/a2a+json" : "application/json",
		    json_object_to_json_string_ext(body,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(body);
	}
	store_push_list_free(pcs, n);
}

int
notify_config_put(const struct push_config *pc, char **err)
{
	/* Known before it is stored, so no change after the store has it
	 * can miss it. */
	pthread_mutex_lock(&K.lock);
	known_add_locked(pc->task_id);
	pthread_mutex_unlock(&K.lock);
	return store_push_put(store, pc, err);
}

int
notify_config_get(const char *task_id, const char *id,
    struct push_config **out)
{
	return store_push_get(store, task_id, id, out);
}

int
notify_config_list(const char *task_id, struct push_config ***out,
    size_t *n)
{
	*out = NULL;
	*n = 0;
	return store_push_list(store, task_id, out, n);
}

int
notify_config_delete(const char *task_id, const char *id)
{
	return store_push_delete(store, task_id, id);
}
