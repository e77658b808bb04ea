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
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static struct store *store;

/*
 * The ids of the unfinished tasks that may have push configs: those the
 * store held at start and every task given one since (a deleted config
 * leaves its id: a stale id costs one query, a missing one would lose a
 * notification).  A task change looks its configs up in the store only
 * when its id is here, so the tasks of clients that never set a config
 * cost no query per change.  A task leaves the set with the notification
 * of its terminal state, after which it never changes, so the set holds
 * the unfinished tasks with configs, not every task that ever had one.
 * Open addressing with linear probing, at most half full; all = the
 * store could not list them at start (or is shared), so every change
 * queries.
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

/* Remove id if it is there: empty its slot, then move each later entry
 * of its probe run to where a lookup now finds it. */
static void
known_remove_locked(const char *id)
{
	size_t i, j;

	if (K.cap == 0 || K.slot[i = known_find_locked(id)] == NULL)
		return;
	free(K.slot[i]);
	K.slot[i] = NULL;
	K.n--;
	for (j = (i + 1) & (K.cap - 1); K.slot[j] != NULL;
	    j = (j + 1) & (K.cap - 1)) {
		char *e = K.slot[j];

		K.slot[j] = NULL;
		K.slot[known_find_locked(e)] = e;
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
	if (task_state_terminal(t->state)) {
		/* Its last change: no later one needs its configs.  A config
		 * set on it afterwards puts it back (notify_config_put). */
		pthread_mutex_lock(&K.lock);
		known_remove_locked(t->id);
		pthread_mutex_unlock(&K.lock);
	}
}

void
notify_metrics(struct strbuf *sb)
{
	size_t n;
	bool all;

	pthread_mutex_lock(&K.lock);
	n = K.n;
	all = K.all;
	pthread_mutex_unlock(&K.lock);
	sb_addf(sb, "# TYPE instag_agent_push_watched_tasks gauge\n"
	    "instag_agent_push_watched_tasks %zu\n"
	    "# TYPE instag_agent_push_watch_all gauge\n"
	    "instag_agent_push_watch_all %d\n", n, all ? 1 : 0);
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
