/* SPDX-License-Identifier: MIT */
/*
 * pushcfg: the A2A methods on push notification configs (see pushcfg.h).
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "a2a/notify.h"
#include "a2a/pushcfg.h"
#include "http/outbound.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "tasks/tasks.h"

static bool
header_safe(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static json_object *
render_push(const struct push_config *pc, enum a2a_dialect d)
{
	json_object *o = json_object_new_object(), *inner, *auth = NULL;

	if (pc->auth_scheme) {
		auth = json_object_new_object();
		if (d == A2A_V03) {
			json_object *arr = json_object_new_array();
			json_object_array_add(arr,
			    json_object_new_string(pc->auth_scheme));
			json_object_object_add(auth, "schemes", arr);
		} else
			json_object_object_add(auth, "scheme",
			    json_object_new_string(pc->auth_scheme));
		/* credentials are write-only: never echoed */
	}
	if (d == A2A_V10) {
		json_object_object_add(o, "id", json_object_new_string(pc->id));
		json_object_object_add(o, "taskId",
		    json_object_new_string(pc->task_id));
		json_object_object_add(o, "url",
		    json_object_new_string(pc->url));
		if (pc->token)
			json_object_object_add(o, "token",
			    json_object_new_string(pc->token));
		if (auth)
			json_object_object_add(o, "authentication", auth);
		return o;
	}
	inner = json_object_new_object();
	json_object_object_add(inner, "id", json_object_new_string(pc->id));
	json_object_object_add(inner, "url", json_object_new_string(pc->url));
	if (pc->token)
		json_object_object_add(inner, "token",
		    json_object_new_string(pc->token));
	if (auth)
		json_object_object_add(inner, "authentication", auth);
	json_object_object_add(o, "taskId",
	    json_object_new_string(pc->task_id));
	json_object_object_add(o, "pushNotificationConfig", inner);
	return o;
}

int
pushcfg_save(struct rpc *c, const char *task_id, json_object *pc,
    json_object **out)
{
	struct push_config p = { 0 };
	struct outbound_target tgt;
	json_object *auth = ju_obj(pc, "authentication");
	char id[UUID_STR_LEN], *err = NULL;
	const char *cid = ju_str(pc, "id");

	p.task_id = (char *)task_id;
	p.url = (char *)ju_str(pc, "url");
	p.token = (char *)ju_str(pc, "token");
	if (auth) {
		json_object *schemes = ju_arr(auth, "schemes");
		p.auth_scheme = (char *)(schemes &&
		    json_object_array_length(schemes) > 0 ?
		    json_object_get_string(
		    json_object_array_get_idx(schemes, 0)) :
		    ju_str(auth, "scheme"));
		p.auth_credentials = (char *)ju_str(auth, "credentials");
	}
	if (p.url == NULL) {
		rpc_error(c, RPC_INVALID_PARAMS, "push notification config "
		    "needs a url");
		return -1;
	}
	if (!header_safe(p.token) || !header_safe(p.auth_scheme) ||
	    !header_safe(p.auth_credentials) ||
	    (p.token && strlen(p.token) > 1024) ||
	    (p.auth_credentials && strlen(p.auth_credentials) > 4096) ||
	    (p.auth_scheme && (strlen(p.auth_scheme) > 64 ||
	    strchr(p.auth_scheme, ' ')))) {
		rpc_error(c, RPC_INVALID_PARAMS, "push notification token, "
		    "scheme or credentials hold forbidden characters or are "
		    "too long");
		return -1;
	}
	if (outbound_check_url(c->cfg, p.url, &tgt, &err) < 0) {
		rpc_error(c, RPC_INVALID_PARAMS, "push notification url "
		    "refused: %s", err);
		free(err);
		return -1;
	}
	if (cid != NULL && (strlen(cid) > 64 || !header_safe(cid) || !*cid)) {
		rpc_error(c, RPC_INVALID_PARAMS, "push notification config "
		    "id must be 1 to 64 printable characters");
		return -1;
	}
	if (cid == NULL) {
		uuid_v4(id);
		cid = id;
	}
	p.id = (char *)cid;
	p.created_ms = clock_wall_ms();
	p.dialect = c->d;
	if (notify_config_put(&p, &err) < 0) {
		rpc_error(c, RPC_INTERNAL_ERROR, "%s", err);
		free(err);
		return -1;
	}
	*out = render_push(&p, c->d);
	return 0;
}

static bool
own_task(struct rpc *c, const char *task_id)
{
	struct task *t = NULL;
	int r;

	if (task_id == NULL) {
		rpc_error(c, RPC_INVALID_PARAMS, "the task id is required");
		return false;
	}
	r = tasks_get(task_id, c->who->sub, &t);
	task_free(t);
	if (r != 0) {
		rpc_error(c, A2A_TASK_NOT_FOUND, "Task not found");
		return false;
	}
	return true;
}

int
pushcfg_method(struct rpc *c, const char *what)
{
	const char *task_id = rpc_task_id_param(c);
	json_object *out = NULL;

	if (!strcmp(what, "set") || !strcmp(what, "delete")) {
		if (!rpc_need_scope(c, "tasks:write"))
			return 0;
	} else if (!rpc_need_scope(c, "tasks:read"))
		return 0;
	if (!own_task(c, task_id))
		return 0;
	if (!strcmp(what, "set")) {
		json_object *pc = c->d == A2A_V03 ?
		    ju_obj(c->params, "pushNotificationConfig") : c->params;
		if (pc == NULL)
			return rpc_error(c, RPC_INVALID_PARAMS,
			    "params.pushNotificationConfig is required");
		if (pushcfg_save(c, task_id, pc, &out) < 0)
			return 0;
		return rpc_reply(c, out);
	}
	if (!strcmp(what, "get")) {
		const char *cid = c->d == A2A_V03 ?
		    ju_str(c->params, "pushNotificationConfigId") :
		    ju_str(c->params, "id");
		struct push_config *pc = NULL;
		int r;
		if (cid == NULL) {
			struct push_config **all = NULL;
			size_t n = 0;
			if (notify_config_list(task_id, &all, &n) < 0)
				return rpc_error(c, RPC_INTERNAL_ERROR,
				    "the task store failed");
			if (n > 0) {
				/* The first one; the list frees the rest. */
				pc = all[0];
				all[0] = NULL;
			}
			store_push_list_free(all, n);
			r = pc ? 0 : 1;
		} else
			r = notify_config_get(task_id, cid, &pc);
		if (r != 0)
			return rpc_error(c, RPC_INVALID_PARAMS, "no push "
			    "notification config with that id");
		out = render_push(pc, c->d);
		store_push_free(pc);
		return rpc_reply(c, out);
	}
	if (!strcmp(what, "list")) {
		struct push_config **all = NULL;
		size_t n = 0, i;
		json_object *arr;
		if (notify_config_list(task_id, &all, &n) < 0)
			return rpc_error(c, RPC_INTERNAL_ERROR,
			    "the task store failed");
		arr = json_object_new_array();
		for (i = 0; i < n; i++)
			json_object_array_add(arr, render_push(all[i], c->d));
		store_push_list_free(all, n);
		if (c->d == A2A_V03)
			return rpc_reply(c, arr);
		out = json_object_new_object();
		json_object_object_add(out, "configs", arr);
		json_object_object_add(out, "nextPageToken",
		    json_object_new_string(""));
		return rpc_reply(c, out);
	}
	/* delete: idempotent */
	{
		const char *cid = c->d == A2A_V03 ?
		    ju_str(c->params, "pushNotificationConfigId") :
		    ju_str(c->params, "id");
		if (cid == NULL)
			return rpc_error(c, RPC_INVALID_PARAMS,
			    "the push notification config id is required");
		/* 1 (no such config) is a success: delete is idempotent. */
		if (notify_config_delete(task_id, cid) < 0)
			return rpc_error(c, RPC_INTERNAL_ERROR,
			    "the task store failed");
		return rpc_reply(c,
		    c->d == A2A_V03 ? NULL : json_object_new_object());
	}
}
