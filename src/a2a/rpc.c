/* SPDX-License-Identifier: MIT */
/*
 * rpc: replies of A2A methods (see rpc.h).
 */
#include "auto-config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/rpc.h"
#include "lib/jsonutil.h"
#include "lib/strbuf.h"

void
rpc_reply_clear(struct rpc_reply *r)
{
	json_object_put(r->body);
	json_object_put(r->id);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

/* Replace the reply with a JSON body (taken). */
static void
set_json(struct rpc *c, json_object *body, int rpc_error)
{
	rpc_reply_clear(&c->out);
	c->out.kind = RPC_REPLY_JSON;
	c->out.body = body;
	c->out.rpc_error = rpc_error;
}

int
rpc_reply(struct rpc *c, json_object *result)
{
	set_json(c, render_rpc_result(c->id, result), 0);
	return 0;
}

int
rpc_error(struct rpc *c, int code, const char *fmt, ...)
{
	struct strbuf sb = SB_INIT;
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	set_json(c, render_rpc_error(c->id, c->d, code, sb_str(&sb)), code);
	sb_free(&sb);
	return 0;
}

int
rpc_op_error(struct rpc *c, int code, const char *agent_code,
    const char *message)
{
	json_object *o = render_rpc_error(c->id, c->d, code, message), *e, *d;
	json_object *meta = json_object_new_object();

	json_object_object_add(meta, "agent_code",
	    json_object_new_string(agent_code));
	json_object_object_get_ex(o, "error", &e);
	if (c->d == A2A_V10 && json_object_object_get_ex(e, "data", &d))
		json_object_object_add(json_object_array_get_idx(d, 0),
		    "metadata", meta);
	else
		json_object_object_add(e, "data", meta);
	set_json(c, o, code);
	return 0;
}

int
rpc_forbidden(struct rpc *c, const char *fmt, ...)
{
	struct strbuf sb = SB_INIT;
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	rpc_reply_clear(&c->out);
	c->out.kind = RPC_REPLY_FORBIDDEN;
	c->out.message = sb_take(&sb);
	return 0;
}

bool
rpc_need_scope(struct rpc *c, const char *scope)
{
	if (principal_has_scope(c->who, scope))
		return true;
	rpc_forbidden(c, "this method needs scope %s", scope);
	return false;
}

int
rpc_handover(struct rpc *c, enum rpc_reply_kind kind, const char *task_id,
    int wait_s, int history_len)
{
	c->out.kind = kind;
	snprintf(c->out.task_id, sizeof(c->out.task_id), "%s", task_id);
	c->out.wait_s = wait_s;
	c->out.history_len = history_len;
	c->out.version = -1;
	c->out.d = c->d;
	json_object_put(c->out.id);
	c->out.id = c->id ? json_object_get(c->id) : NULL;
	return 0;
}

int
rpc_history_len(struct rpc *c, json_object *obj, int *out)
{
	int64_t h = -1;
	int r = ju_int(obj, "historyLength", &h);

	*out = -1;
	if (r == 1)
		return 0;
	if (r < 0 || h < 0) {
		rpc_error(c, RPC_INVALID_PARAMS, "historyLength must be an "
		    "integer, 0 or more");
		return -1;
	}
	*out = h > 1000 ? 1000 : (int)h;
	return 0;
}

const char *
rpc_task_id_param(struct rpc *c)
{
	const char *id = ju_str(c->params, "id");

	if (c->d == A2A_V10 && ju_str(c->params, "taskId") &&
	    strstr(c->method, "PushNotification"))
		return ju_str(c->params, "taskId");
	if (c->d == A2A_V03 && ju_str(c->params, "taskId") && id == NULL)
		return ju_str(c->params, "taskId");
	return id;
}

json_object *
rpc_task_result(struct rpc *c, const struct task *t, int hl, bool wrap)
{
	json_object *task = render_task(t, c->d, hl), *w;

	if (!wrap || c->d == A2A_V03)
		return task;
	w = json_object_new_object();
	json_object_object_add(w, "task", task);
	return w;
}
