/* SPDX-License-Identifier: MIT */
/*
 * notify: push notification configs and fan-out (see notify.h).
 */
#include "auto-config.h"

#include "a2a/notify.h"
#include "a2a/push.h"
#include "a2a/render.h"

static struct store *store;

void
notify_init(struct store *st)
{
	store = st;
}

void
notify_task_changed(const struct task *t)
{
	struct push_config **pcs = NULL;
	size_t n = 0, i;

	if (store == NULL || notify_config_list(t->id, &pcs, &n) < 0)
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
