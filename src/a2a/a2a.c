/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/a2a.h"
#include "a2a/hub.h"
#include "a2a/pushcfg.h"
#include "a2a/rpc.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "core/metrics.h"
#include "ops/ops.h"
#include "store/uploads.h"
#include "tasks/tasks.h"
#include "tasks/tcache.h"
#include "lib/xalloc.h"

static const struct config *cfg;

int
a2a_init(const struct config *c)
{
	cfg = c;
	return 0;
}

/* Convert a wire message into the internal form; NULL with *why. */
static json_object *
parse_message(json_object *m, const char **why)
{
	json_object *out, *parts, *src;
	const char *role = ju_str(m, "role"), *mid = ju_str(m, "messageId");
	size_t i, n;

	if (m == NULL) {
		*why = "params.message is required and must be an object";
		return NULL;
	}
	if (mid == NULL || mid[0] == '\0' || strlen(mid) > 128) {
		*why = "message.messageId is required (a string "
		    "up to 128 bytes)";
		return NULL;
	}
	if (role == NULL || (strcmp(role, "user") != 0 &&
	    strcmp(role, "ROLE_USER") != 0)) {
		*why = "message.role must be \"user\" (v0.3) or "
		    "\"ROLE_USER\" (v1.0)";
		return NULL;
	}
	src = ju_arr(m, "parts");
	n = src ? json_object_array_length(src) : 0;
	if (n == 0) {
		*why = "message.parts must be a non-empty array";
		return NULL;
	}
	parts = json_object_new_array();
	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(src, i), *q, *v;
		const char *kind = ju_str(p, "kind");
		q = json_object_new_object();
		if (!json_object_is_type(p, json_type_object)) {
			*why = "message.parts[] must be objects";
			goto bad;
		}
		/* v0.3 names a part's kind in a string "kind"; a v1.0 part
		 * has no discriminator.  Neither has "type" (the name of
		 * pre-0.2 drafts): such a part, or a "kind" that is not a
		 * string, is refused rather than guessed from its keys. */
		if (kind == NULL && (json_object_object_get_ex(p, "kind",
		    NULL) || json_object_object_get_ex(p, "type", NULL))) {
			*why = "unsupported message part: \"kind\" must be "
			    "\"text\", \"data\" or \"file\" (v0.3), or "
			    "absent (v1.0); parts have no \"type\"";
			goto bad;
		}
		if ((kind && !strcmp(kind, "text")) ||
		    (!kind && ju_str(p, "text"))) {
			if (ju_str(p, "text") == NULL) {
				*why = "a text part needs a string \"text\"";
				goto bad;
			}
			json_object_object_add(q, "kind",
			    json_object_new_string("text"));
			json_object_object_add(q, "text",
			    json_object_new_string(ju_str(p, "text")));
		} else if ((kind && !strcmp(kind, "data")) ||
		    (!kind && json_object_object_get_ex(p, "data", &v))) {
			json_object_object_get_ex(p, "data", &v);
			json_object_object_add(q, "kind",
			    json_object_new_string("data"));
			json_object_object_add(q, "data", ju_copy(v));
		} else if ((kind && !strcmp(kind, "file")) ||
		    (!kind && (ju_str(p, "url") || ju_str(p, "raw")))) {
			json_object *f = ju_obj(p, "file");
			const char *uri = f ? ju_str(f, "uri") :
			    ju_str(p, "url");
			json_object_object_add(q, "kind",
			    json_object_new_string("file"));
			json_object_object_add(q, "uri",
			    ju_new_str(uri ? uri : ""));
			json_object_object_add(q, "name", ju_new_str(f ?
			    ju_str(f, "name") : ju_str(p, "filename")));
			/* inline bytes: adopted as an upload by do_send, never
			 * kept in the task's history */
			if ((f && ju_str(f, "bytes")) || ju_str(p, "raw"))
				json_object_object_add(q, "bytes",
				    ju_new_str(f ? ju_str(f, "bytes") :
				    ju_str(p, "raw")));
		} else {
			*why = "unsupported message part (expected text, "
			    "data or file)";
			goto bad;
		}
		json_object_array_add(parts, q);
		continue;
bad:
		json_object_put(q);
		json_object_put(parts);
		return NULL;
	}
	out = json_object_new_object();
	json_object_object_add(out, "messageId", json_object_new_string(mid));
	json_object_object_add(out, "role", json_object_new_string("user"));
	json_object_object_add(out, "parts", parts);
	{
		char ts[32];
		ju_iso8601(clock_wall_ms(), ts, sizeof(ts));
		json_object_object_add(out, "timestamp",
		    json_object_new_string(ts));
	}
	return out;
}

/* The first data part naming an operation, or NULL. */
static json_object *
find_operation(json_object *msg)
{
	json_object *parts = ju_arr(msg, "parts");
	size_t i, n = parts ? json_object_array_length(parts) : 0;

	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(parts, i);
		json_object *data = ju_obj(p, "data");
		if (data && json_object_object_get_ex(data, "operation", NULL))
			return data;
	}
	return NULL;
}

/* An operation's error, answered by its category: the protocol never
 * looks at which provider failed or how. */
static int
op_error_reply(struct rpc *c, const struct op_outcome *oc)
{
	const struct op_error *e = &oc->err;
	int code;

	switch (e->category) {
	case ERRCAT_FORBIDDEN:
		return rpc_forbidden(c, "%s", e->message);
	case ERRCAT_UNSUPPORTED:
		code = A2A_UNSUPPORTED_OP;
		break;
	case ERRCAT_NOT_FOUND:
		code = A2A_TASK_NOT_FOUND;
		break;
	case ERRCAT_CONFLICT:
		code = A2A_TASK_NOT_CANCELABLE;
		break;
	case ERRCAT_RETRYABLE:
	case ERRCAT_PROVIDER:
	case ERRCAT_INTERNAL:
		/* The request was fine; the agent or its provider failed. */
		code = RPC_INTERNAL_ERROR;
		break;
	case ERRCAT_CLIENT:
	default:
		/* The params name something that is not there, or are
		 * wrong. */
		code = RPC_INVALID_PARAMS;
		break;
	}
	return rpc_op_error(c, code, e->code, e->message);
}

/*
 * File parts with inline bytes become uploads of the caller's: the part
 * keeps only "uri": "upload:<id>", which operations take as a source
 * ("part:N" in their params names the message's N-th file part).  0, or
 * -1 with *why (static).
 */
static int
adopt_file_bytes(struct rpc *c, json_object *msg, const char **why)
{
	json_object *parts = ju_arr(msg, "parts");
	size_t i, n = parts ? json_object_array_length(parts) : 0;

	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(parts, i);
		struct upload_info u;
		const char *name = ju_str(p, "name");
		char *err = NULL, uri[64];

		if (ju_str(p, "bytes") == NULL)
			continue;
		if (name == NULL || !uploads_name_valid(name)) {
			*why = "a file part with bytes needs a name matching "
			    "[A-Za-z0-9._-]{1,128}, not starting with "
			    "'.' or '-'";
			return -1;
		}
		if (uploads_adopt_base64(cfg, c->who->sub, name,
		    ju_str(p, "bytes"), &u, &err) < 0) {
			log_kv(LOG_WARN, "file_part_refused", err, NULL);
			free(err);
			*why = "a file part's bytes could not be stored (not "
			    "base64, or empty)";
			return -1;
		}
		snprintf(uri, sizeof(uri), "upload:%s", u.id);
		json_object_object_add(p, "uri", json_object_new_string(uri));
		json_object_object_del(p, "bytes");
		uploads_info_clear(&u);
	}
	return 0;
}

/* message/send, message/stream, SendMessage, SendStreamingMessage */
/* message/send's options from params.configuration (conf may be NULL).
 * 0, or -1 when an answer was sent. */
struct send_opts {
	json_object *conf;	/* borrowed, may be NULL */
	bool blocking;
	int history_len;
};

static int
send_options(struct rpc *c, struct send_opts *o)
{
	bool ret_now = false;
	int64_t h;

	o->conf = ju_obj(c->params, "configuration");
	o->blocking = true;
	if (rpc_history_len(c, c->params, &o->history_len) < 0)
		return -1;
	if (o->conf == NULL)
		return 0;
	if (ju_bool(o->conf, "blocking", &o->blocking) < 0) {
		rpc_error(c, RPC_INVALID_PARAMS,
		    "configuration.blocking must be a boolean");
		return -1;
	}
	if (ju_bool(o->conf, "returnImmediately", &ret_now) < 0) {
		rpc_error(c, RPC_INVALID_PARAMS,
		    "configuration.returnImmediately must be a boolean");
		return -1;
	}
	if (ret_now)
		o->blocking = false;
	if (ju_int(o->conf, "historyLength", &h) != 1 &&
	    rpc_history_len(c, o->conf, &o->history_len) < 0)
		return -1;
	return 0;
}

/* The message in internal form, its file bytes adopted as uploads: 0 and
 * *msg (caller puts it), or -1 when an answer was sent. */
static int
send_parse(struct rpc *c, json_object *m, json_object **msg)
{
	const char *why = NULL, *ctx = ju_str(m, "contextId");

	*msg = parse_message(m, &why);
	if (*msg == NULL) {
		rpc_error(c, RPC_INVALID_PARAMS, "%s", why);
		return -1;
	}
	if (adopt_file_bytes(c, *msg, &why) < 0) {
		rpc_error(c, RPC_INVALID_PARAMS, "%s", why);
		goto fail;
	}
	if (ctx && (strlen(ctx) > TASK_CONTEXT_MAX || ctx[0] == '\0')) {
		rpc_error(c, RPC_INVALID_PARAMS,
		    "message.contextId must be 1 to 64 characters");
		goto fail;
	}
	return 0;
fail:
	json_object_put(*msg);
	*msg = NULL;
	return -1;
}

static int op_error_reply(struct rpc *c, const struct op_outcome *oc);

/* A follow-up naming an operation (its data part opdata) to waiting, a
 * task of the caller's that waits for one: msg (taken) goes into its
 * history and the task runs the operation.  0 and *t, or -1 when an
 * answer was sent. */
static int
send_input(struct rpc *c, json_object *msg, json_object *opdata,
    const struct task *waiting, struct task **t)
{
	struct op_ctx octx = { cfg, c->who, msg };
	struct op_outcome oc = { 0 };
	const char *opname = ju_str(opdata, "operation");
	json_object *params = NULL;
	int rc = -1;

	if (opname == NULL) {
		rpc_error(c, RPC_INVALID_PARAMS,
		    "data part: \"operation\" must be a string");
		goto cleanup;
	}
	json_object_object_get_ex(opdata, "params", &params);
	if (params != NULL && !json_object_is_type(params, json_type_object)) {
		rpc_error(c, RPC_INVALID_PARAMS,
		    "data part: \"params\" must be an object");
		goto cleanup;
	}
	if (ops_continue(&octx, waiting, opname, params, &oc) < 0) {
		op_error_reply(c, &oc);
		goto cleanup;
	}
	*t = oc.task;
	oc.task = NULL;
	rc = 0;
cleanup:
	ops_outcome_clear(&oc);
	json_object_put(msg);
	return rc;
}

/* A follow-up message (taken) to a task of the caller's: 0 and *t, or -1
 * when an answer was sent.  One that names an operation, to a task that
 * waits for one, runs it (send_input); any other joins the history. */
static int
send_followup(struct rpc *c, json_object *msg, const char *task_id,
    const char *ctx, struct task **t)
{
	int r = tasks_get(task_id, c->who->sub, t);
	json_object *opdata;

	if (r == 0 && ctx && strcmp(ctx, (*t)->context_id) != 0) {
		task_free(*t);
		*t = NULL;
		json_object_put(msg);
		rpc_error(c, RPC_INVALID_PARAMS, "message.contextId does not "
		    "match the task's contextId");
		return -1;
	}
	if (r == 0 && (*t)->state == TASK_INPUT_REQUIRED &&
	    strcmp((*t)->operation, OPS_ASK_INPUT) == 0 &&
	    (opdata = find_operation(msg)) != NULL) {
		struct task *waiting = *t;

		*t = NULL;
		r = send_input(c, msg, opdata, waiting, t);
		task_free(waiting);
		return r;
	}
	task_free(*t);
	*t = NULL;
	json_object_object_add(msg, "taskId", json_object_new_string(task_id));
	if (r == 0)
		r = tasks_add_message(task_id, c->who->sub, msg, t);
	else
		json_object_put(msg);
	if (r != 0) {
		rpc_error(c, r > 0 ? A2A_TASK_NOT_FOUND : RPC_INTERNAL_ERROR,
		    r > 0 ? "Task not found" : "the task store failed");
		return -1;
	}
	return 0;
}

/* A new finished task of the caller's holding msg (taken) in its history
 * and result (taken), recorded: 0 and *t, or -1 when an answer was sent. */
static int
send_record(struct rpc *c, const char *operation, json_object *params,
    const char *ctx, json_object *msg, json_object *agent_msg,
    json_object *result, struct task **t)
{
	char *err = NULL;

	*t = task_new(c->who->sub, operation, params, ctx);
	json_object_object_add(msg, "taskId", json_object_new_string((*t)->id));
	json_object_object_add(msg, "contextId",
	    json_object_new_string((*t)->context_id));
	task_add_history(*t, msg, (int)cfg->task_history_max);
	if (agent_msg != NULL) {
		json_object_object_add(agent_msg, "taskId",
		    json_object_new_string((*t)->id));
		json_object_object_add(agent_msg, "contextId",
		    json_object_new_string((*t)->context_id));
		task_add_history(*t, agent_msg, (int)cfg->task_history_max);
	}
	task_complete(*t, result);
	if (tasks_record(*t, t, &err) < 0) {
		rpc_error(c, RPC_INTERNAL_ERROR, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

/* Dispatch the operation named in msg's data part (msg taken): a task
 * operation submits a task, a sync one completes one at once.  0 and *t,
 * or -1 when an answer was sent. */
static int
send_operation(struct rpc *c, json_object *msg, json_object *opdata,
    const char *ctx, struct task **t)
{
	struct op_ctx octx = { cfg, c->who, msg };
	struct op_outcome oc = { 0 };
	const char *opname = ju_str(opdata, "operation");
	json_object *params = NULL;
	int rc = -1;

	if (opname == NULL) {
		rpc_error(c, RPC_INVALID_PARAMS,
		    "data part: \"operation\" must be a string");
		goto cleanup;
	}
	json_object_object_get_ex(opdata, "params", &params);
	if (params != NULL && !json_object_is_type(params, json_type_object)) {
		rpc_error(c, RPC_INVALID_PARAMS,
		    "data part: \"params\" must be an object");
		goto cleanup;
	}
	if (ops_invoke(&octx, opname, params, ctx, &oc) < 0) {
		op_error_reply(c, &oc);
		goto cleanup;
	}
	if (oc.task != NULL) {
		*t = oc.task;
		oc.task = NULL;
		rc = 0;
		goto cleanup;
	}
	/* A sync operation: a task that completes at once. */
	rc = send_record(c, ops_find(opname)->name,
	    params ? ju_copy(params) : NULL, ctx, msg, NULL, oc.result, t);
	msg = NULL;
	oc.result = NULL;
cleanup:
	ops_outcome_clear(&oc);
	json_object_put(msg);
	return rc;
}

/*
 * No operation (msg taken): a task that waits in input-required, its
 * status message the catalogue, for a follow-up on it that names an
 * operation (send_input); it expires after input_required_timeout.
 * 0 and *t, or -1 when an answer was sent.
 */
static int
send_help(struct rpc *c, json_object *msg, const char *ctx, struct task **t)
{
	json_object *reply_msg, *p, *d;
	struct task *nt;
	char *err = NULL, text[320];

	snprintf(text, sizeof(text), "This agent runs operations named in a "
	    "data part: {\"operation\": NAME, \"params\": {...}}. Send it "
	    "as a message on this task (taskId) within %ld s, or as a new "
	    "message. The operations and their params follow.",
	    cfg->input_required_timeout);
	nt = task_new(c->who->sub, OPS_ASK_INPUT, NULL, ctx);
	reply_msg = task_msg_text("agent", text, nt->id, nt->context_id);
	p = json_object_new_object();
	json_object_object_add(p, "kind", json_object_new_string("data"));
	d = json_object_new_object();
	json_object_object_add(d, "operations", ops_describe(cfg));
	json_object_object_add(p, "data", d);
	json_object_array_add(ju_arr(reply_msg, "parts"), p);
	json_object_object_add(msg, "taskId", json_object_new_string(nt->id));
	json_object_object_add(msg, "contextId",
	    json_object_new_string(nt->context_id));
	task_add_history(nt, msg, (int)cfg->task_history_max);
	task_add_history(nt, reply_msg, (int)cfg->task_history_max);
	task_set_state(nt, TASK_INPUT_REQUIRED);
	if (tasks_submit(nt, t, &err) < 0) {
		rpc_error(c, RPC_INTERNAL_ERROR, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

/* Answer with t: hand the request to the hub for a stream or a blocking
 * wait, else reply with the task now. */
static int
send_respond(struct rpc *c, const struct task *t, bool stream,
    const struct send_opts *o)
{
	if (stream) {
		rpc_error(c, RPC_INTERNAL_ERROR, "too many open streams; poll "
		    "with tasks/get instead");
		return rpc_handover(c, RPC_REPLY_STREAM, t->id, 0, 0);
	}
	rpc_reply(c, rpc_task_result(c, t, o->history_len, true));
	if (o->blocking && !task_state_terminal(t->state) &&
	    !task_state_interrupted(t->state) && cfg->blocking_wait_max > 0) {
		rpc_handover(c, RPC_REPLY_WAIT, t->id,
		    (int)cfg->blocking_wait_max, o->history_len);
	}
	return 0;
}

/*
 * message/send and message/stream: parse, adopt file bytes, dispatch (a
 * follow-up, an operation, or the catalogue), save an inline push config,
 * respond.
 */
static int
do_send(struct rpc *c, bool stream)
{
	json_object *m = ju_obj(c->params, "message"), *msg = NULL, *opdata;
	const char *task_id = ju_str(m, "taskId"),
	    *ctx = ju_str(m, "contextId");
	struct task *t = NULL;
	struct send_opts o;
	int rc;

	if (send_options(c, &o) < 0 || send_parse(c, m, &msg) < 0)
		return 0;
	if (task_id != NULL)
		rc = send_followup(c, msg, task_id, ctx, &t);
	else if ((opdata = find_operation(msg)) != NULL)
		rc = send_operation(c, msg, opdata, ctx, &t);
	else
		rc = send_help(c, msg, ctx, &t);
	if (rc < 0)
		return 0;	/* answered */
	if (o.conf != NULL) {
		json_object *pc = ju_obj(o.conf, c->d == A2A_V03 ?
		    "pushNotificationConfig" : "taskPushNotificationConfig");
		json_object *saved = NULL;
		if (pc != NULL && pushcfg_save(c, t->id, pc, &saved) < 0) {
			task_free(t);
			return 0;	/* answered */
		}
		json_object_put(saved);
	}
	rc = send_respond(c, t, stream, &o);
	/* A new task's snapshot (tasks_submit) is taken after its version was
	 * published and before any step can change it: the hub may trust it
	 * (hub_wait).  A follow-up's is not ordered so. */
	if (c->out.kind == RPC_REPLY_WAIT && task_id == NULL)
		c->out.version = t->version;
	task_free(t);
	return rc;
}

/*
 * The prelude of the methods on one task: scope, params.id, and the
 * caller's own task.  Returns the task (caller frees), or NULL when an
 * answer has already been sent.
 */
static struct task *
load_own_task(struct rpc *c, const char *scope)
{
	struct task *t = NULL;
	const char *id = ju_str(c->params, "id");
	int r;

	if (!rpc_need_scope(c, scope))
		return NULL;
	if (id == NULL) {
		rpc_error(c, RPC_INVALID_PARAMS, "params.id is required");
		return NULL;
	}
	r = tasks_get(id, c->who->sub, &t);
	if (r != 0) {
		rpc_error(c, r > 0 ? A2A_TASK_NOT_FOUND : RPC_INTERNAL_ERROR,
		    r > 0 ? "Task not found" : "the task store failed");
		return NULL;
	}
	return t;
}

/*
 * The caller's task id rendered as render_task(t, c->d, hl), without its
 * artifacts unless arts, as a JSON value (render_raw; caller puts it).
 * rev: the write of it the caller's read found, or -1 to peek at it now.
 * From the rendered-task cache when it holds (id, rev, this rendering);
 * else read, rendered, serialized and cached under the rev of the row
 * read.  0 and *out; 1 when there is no such task of the caller's; -1 on
 * store error.
 */
static int
own_task_json(struct rpc *c, const char *id, int64_t rev, int hl, bool arts,
    json_object **out)
{
	/* hl is -1..1000 (rpc_history_len) */
	int variant = ((hl + 1) << 2) | (arts ? 2 : 0) | (c->d == A2A_V10);
	struct task *t = NULL;
	json_object *tj;
	char *text;
	int r;

	*out = NULL;
	if (rev < 0 && (r = tasks_peek(id, c->who->sub, &rev)) != 0)
		return r;
	if (tcache_get(id, rev, variant, c->who->sub, &text) == 0) {
		*out = render_raw(text);
		return 0;
	}
	if ((r = tasks_get_rev(id, c->who->sub, &t, &rev)) != 0)
		return r;
	tj = render_task(t, c->d, hl);
	if (!arts)
		json_object_object_del(tj, "artifacts");
	text = xstrdup(json_object_to_json_string_ext(tj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	tcache_put(t->id, rev, variant, t->owner, text);
	json_object_put(tj);
	task_free(t);
	*out = render_raw(text);
	return 0;
}

static int
do_get(struct rpc *c)
{
	const char *id = ju_str(c->params, "id");
	json_object *tj;
	int r, hl;

	if (rpc_history_len(c, c->params, &hl) < 0)
		return 0;
	if (!rpc_need_scope(c, "tasks:read"))
		return 0;
	if (id == NULL)
		return rpc_error(c, RPC_INVALID_PARAMS,
		    "params.id is required");
	r = own_task_json(c, id, -1, hl, true, &tj);
	if (r != 0)
		return rpc_error(c, r > 0 ? A2A_TASK_NOT_FOUND :
		    RPC_INTERNAL_ERROR, r > 0 ? "Task not found" :
		    "the task store failed");
	return rpc_reply(c, tj);
}

static int
do_list(struct rpc *c)
{
	struct store_list_query q = { 0 };
	struct store_task_ref *refs = NULL;
	char *next = NULL, *err = NULL;
	int64_t total = 0, size = 50;
	json_object *res, *arr;
	const char *status = ju_str(c->params, "status");
	const char *after = ju_str(c->params, "statusTimestampAfter");
	enum task_state st;
	bool arts = true;
	size_t n = 0, i;
	int hl;

	if (!rpc_need_scope(c, "tasks:read"))
		return 0;
	if (rpc_history_len(c, c->params, &hl) < 0)
		return 0;
	q.owner = c->who->sub;
	q.context_id = ju_str(c->params, "contextId");
	q.state = -1;
	if (status && strcmp(status, "TASK_STATE_UNSPECIFIED") != 0) {
		if (task_state_parse(status, &st) < 0)
			return rpc_error(c, RPC_INVALID_PARAMS,
			    "params.status is not a TaskState");
		q.state = (int)st;
	}
	if (ju_int(c->params, "pageSize", &size) < 0 || size < 1 || size > 100)
		return rpc_error(c, RPC_INVALID_PARAMS,
		    "params.pageSize must be an integer from 1 to 100");
	if (ju_bool(c->params, "includeArtifacts", &arts) < 0)
		return rpc_error(c, RPC_INVALID_PARAMS,
		    "params.includeArtifacts must be a boolean");
	if (after != NULL) {
		struct tm tm = { 0 };
		char *end = strptime(after, "%Y-%m-%dT%H:%M:%S", &tm);
		if (end == NULL)
			return rpc_error(c, RPC_INVALID_PARAMS,
			    "params.statusTimestampAfter must be ISO 8601 UTC");
		q.updated_after_ms = (int64_t)timegm(&tm) * 1000;
	}
	q.page_size = (size_t)size;
	q.page_token = ju_str(c->params, "pageToken");
	if (tasks_list_refs(&q, &refs, &n, &next, &total, &err) < 0) {
		int rc = rpc_error(c, strstr(err, "pageToken") ?
		    RPC_INVALID_PARAMS : RPC_INTERNAL_ERROR, "%s", err);
		free(err);
		return rc;
	}
	/* The page names each task's id and rev: a task cached at that
	 * rev is not read again. */
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		json_object *tj;
		int r = own_task_json(c, refs[i].id, refs[i].rev,
		    hl < 0 ? 0 : hl, arts, &tj);

		if (r < 0) {
			json_object_put(arr);
			free(refs);
			free(next);
			return rpc_error(c, RPC_INTERNAL_ERROR,
			    "the task store failed");
		}
		if (r == 0)
			json_object_array_add(arr, tj);
	}
	free(refs);
	res = json_object_new_object();
	json_object_object_add(res, "tasks", arr);
	json_object_object_add(res, "nextPageToken",
	    json_object_new_string(next));
	json_object_object_add(res, "pageSize", json_object_new_int64(size));
	json_object_object_add(res, "totalSize", json_object_new_int64(total));
	free(next);
	return rpc_reply(c, res);
}

static int
do_cancel(struct rpc *c)
{
	struct task *t = NULL;
	const char *id = ju_str(c->params, "id");
	int rc;

	if (!rpc_need_scope(c, "tasks:write"))
		return 0;
	if (id == NULL)
		return rpc_error(c, RPC_INVALID_PARAMS,
		    "params.id is required");
	switch (tasks_cancel(id, c->who->sub, &t)) {
	case TASKS_CANCEL_OK:
		rc = rpc_reply(c, rpc_task_result(c, t, -1, false));
		break;
	case TASKS_CANCEL_NOT_FOUND:
		rc = rpc_error(c, A2A_TASK_NOT_FOUND, "Task not found");
		break;
	case TASKS_CANCEL_NOT_CANCELABLE:
		rc = rpc_error(c, A2A_TASK_NOT_CANCELABLE, "Task cannot be "
		    "canceled: it is already %s", task_state_name(t->state));
		break;
	default:
		rc = rpc_error(c, RPC_INTERNAL_ERROR, "the task could not be "
		    "canceled now; try again");
	}
	task_free(t);
	return rc;
}

static int
do_subscribe(struct rpc *c)
{
	struct task *t = load_own_task(c, "tasks:read");
	char id[UUID_STR_LEN];

	if (t == NULL)
		return 0;
	snprintf(id, sizeof(id), "%s", t->id);
	if (task_state_terminal(t->state)) {
		task_free(t);
		return rpc_error(c, A2A_UNSUPPORTED_OP, "the task is already "
		    "in a terminal state; use tasks/get");
	}
	task_free(t);
	rpc_error(c, RPC_INTERNAL_ERROR, "too many open streams");
	return rpc_handover(c, RPC_REPLY_STREAM, id, 0, 0);
}

/*
 * Can the integer id m be echoed exactly?  json-c saturates an integer
 * beyond 64 bits to INT64_MIN or UINT64_MAX, so those two values may not
 * be what the client sent: refuse them rather than answer another id.
 */
static bool
id_exact(json_object *m)
{
	if (!json_object_is_type(m, json_type_int))
		return true;
	if (json_object_get_int64(m) == INT64_MIN)
		return false;
	return !(json_object_get_int64(m) == INT64_MAX &&
	    json_object_get_uint64(m) == UINT64_MAX);
}

/* ---- dispatch ------------------------------------------------------------ */

struct method {
	const char *name;
	enum a2a_dialect d;
	const char *what;
};

static const struct method methods[] = {
	{ "message/send", A2A_V03, "send" },
	{ "message/stream", A2A_V03, "stream" },
	{ "tasks/get", A2A_V03, "get" },
	{ "tasks/cancel", A2A_V03, "cancel" },
	{ "tasks/resubscribe", A2A_V03, "subscribe" },
	{ "tasks/pushNotificationConfig/set", A2A_V03, "push:set" },
	{ "tasks/pushNotificationConfig/get", A2A_V03, "push:get" },
	{ "tasks/pushNotificationConfig/list", A2A_V03, "push:list" },
	{ "tasks/pushNotificationConfig/delete", A2A_V03, "push:delete" },
	{ "agent/getAuthenticatedExtendedCard", A2A_V03, "extended" },
	{ "SendMessage", A2A_V10, "send" },
	{ "SendStreamingMessage", A2A_V10, "stream" },
	{ "GetTask", A2A_V10, "get" },
	{ "ListTasks", A2A_V10, "list" },
	{ "CancelTask", A2A_V10, "cancel" },
	{ "SubscribeToTask", A2A_V10, "subscribe" },
	{ "CreateTaskPushNotificationConfig", A2A_V10, "push:set" },
	{ "GetTaskPushNotificationConfig", A2A_V10, "push:get" },
	{ "ListTaskPushNotificationConfigs", A2A_V10, "push:list" },
	{ "DeleteTaskPushNotificationConfig", A2A_V10, "push:delete" },
	{ "GetExtendedAgentCard", A2A_V10, "extended" },
};

void
a2a_call(const struct principal *who, const char *ver, const char *body,
    size_t len, struct rpc_reply *out)
{
	struct rpc c = { cfg, who, NULL, NULL, A2A_V03, "", { 0 } };
	json_object *req = NULL, *m;
	const char *method;
	const struct method *mt = NULL;
	char *err = NULL;
	size_t i;
	bool sse = false;

	if (ver != NULL && ver[0] != '\0' && strcmp(ver, "0.3") != 0 &&
	    strcmp(ver, "1.0") != 0) {
		c.d = A2A_V10;
		/* A header may hold any bytes: quote printable ASCII only,
		 * so that the answer stays valid UTF-8. */
		for (i = 0; ver[i] >= 0x20 && ver[i] < 0x7f; i++)
			;
		if (ver[i] != '\0')
			rpc_error(&c, A2A_VERSION_NOT_SUPPORTED, "this "
			    "A2A-Version is not supported; this agent speaks "
			    "0.3 and 1.0");
		else
			rpc_error(&c, A2A_VERSION_NOT_SUPPORTED, "A2A-Version "
			    "'%.16s' is not supported; this agent speaks 0.3 "
			    "and 1.0", ver);
		goto cleanup;
	}
	if (ver != NULL && strcmp(ver, "1.0") == 0)
		c.d = A2A_V10;
	if (ju_parse(body, len, (int)cfg->max_json_depth,
	    (size_t)cfg->max_string_bytes, &req, &err) < 0) {
		rpc_error(&c, RPC_PARSE_ERROR, "Invalid JSON payload: %s", err);
		free(err);
		goto cleanup;
	}
	if (json_object_is_type(req, json_type_array)) {
		rpc_error(&c, RPC_INVALID_REQUEST,
		    "batch requests are not supported");
		goto cleanup;
	}
	if (!json_object_is_type(req, json_type_object)) {
		rpc_error(&c, RPC_INVALID_REQUEST,
		    "the request must be a JSON-RPC 2.0 object");
		goto cleanup;
	}
	if (json_object_object_get_ex(req, "id", &m) && m != NULL &&
	    !json_object_is_type(m, json_type_string) &&
	    !json_object_is_type(m, json_type_int)) {
		rpc_error(&c, RPC_INVALID_REQUEST,
		    "id must be a string, an integer or null");
		goto cleanup;
	}
	if (m != NULL && !id_exact(m)) {
		rpc_error(&c, RPC_INVALID_REQUEST, "id is out of range: an "
		    "integer id must lie in -(2^63-1) .. 2^64-2; use a string "
		    "id for larger values");
		goto cleanup;
	}
	c.id = m;
	if (ju_str(req, "jsonrpc") == NULL ||
	    strcmp(ju_str(req, "jsonrpc"), "2.0") != 0) {
		rpc_error(&c, RPC_INVALID_REQUEST,
		    "jsonrpc must be \"2.0\"");
		goto cleanup;
	}
	method = ju_str(req, "method");
	if (method == NULL) {
		rpc_error(&c, RPC_INVALID_REQUEST,
		    "method must be a string");
		goto cleanup;
	}
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, method) == 0)
			mt = &methods[i];
	if (mt == NULL) {
		rpc_error(&c, RPC_METHOD_NOT_FOUND, "Method not found: "
		    "%.*s", ju_utf8_prefix(method, 64), method);
		goto cleanup;
	}
	c.d = mt->d;
	c.method = mt->name;
	if (json_object_object_get_ex(req, "params", &m) && m != NULL &&
	    !json_object_is_type(m, json_type_object)) {
		rpc_error(&c, RPC_INVALID_PARAMS,
		    "params must be an object");
		goto cleanup;
	}
	c.params = m;
	sse = !strcmp(mt->what, "stream") || !strcmp(mt->what, "subscribe");
	metrics_rpc_method(mt->name);
	if (!strcmp(mt->what, "send"))
		do_send(&c, false);
	else if (!strcmp(mt->what, "stream"))
		do_send(&c, true);
	else if (!strcmp(mt->what, "get"))
		do_get(&c);
	else if (!strcmp(mt->what, "list"))
		do_list(&c);
	else if (!strcmp(mt->what, "cancel"))
		do_cancel(&c);
	else if (!strcmp(mt->what, "subscribe"))
		do_subscribe(&c);
	else if (!strncmp(mt->what, "push:", 5))
		pushcfg_method(&c, mt->what + 5);
	else if (c.d == A2A_V03)
		rpc_error(&c, -32007, "Authenticated extended card is "
		    "not configured");
	else
		rpc_error(&c, A2A_UNSUPPORTED_OP, "this agent declares "
		    "no extended agent card");
cleanup:
	if (c.out.kind == RPC_REPLY_NONE)	/* a method that forgot */
		rpc_error(&c, RPC_INTERNAL_ERROR, "no answer");
	c.out.sse = sse;
	json_object_put(req);
	*out = c.out;
}

int
a2a_handle(struct http_req *r)
{
	struct rpc_reply out;
	int handed = 0;

	a2a_call(&r->who, http_header(r, "A2A-Version"), r->body,
	    r->body_len, &out);
	switch (out.kind) {
	case RPC_REPLY_FORBIDDEN:
		http_error(r, 403, "insufficient_scope", out.message,
		    "WWW-Authenticate: Bearer "
		    "error=\"insufficient_scope\"\r\n");
		break;
	case RPC_REPLY_STREAM:
	case RPC_REPLY_WAIT:
		handed = (out.kind == RPC_REPLY_STREAM ?
		    hub_stream(r, out.task_id, r->who.sub, out.d,
		    out.id) :
		    hub_wait(r, out.task_id, r->who.sub, out.d,
		    out.id, out.wait_s, out.history_len, out.version)) == 0;
		if (handed)
			break;
		/* The hub is full or stopping: answer the fallback. */
		/* FALLTHROUGH */
	case RPC_REPLY_JSON:
	default:
		if (out.rpc_error != 0)
			metrics_rpc_error(out.rpc_error);
		if (out.sse) {
			/* A client of a streaming method reads SSE only:
			 * the error is the stream's one event (A2A: each
			 * data is a whole JSON-RPC response). */
			if (http_sse_begin(r) < 0 || http_sse_event(r,
			    json_object_to_json_string_ext(out.body,
			    JSON_C_TO_STRING_PLAIN |
			    JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
				log_msg(LOG_DEBUG, "sse_gone", "the client "
				    "left before its error event");
			break;
		}
		http_json(r, 200, out.body, NULL);
		break;
	}
	rpc_reply_clear(&out);
	return handed;
}
