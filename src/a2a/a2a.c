#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/a2a.h"
#include "a2a/hub.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "core/metrics.h"
#include "ops/ops.h"
#include "providers/runpod/pods.h"
#include "store/uploads.h"
#include "http/outbound.h"
#include "a2a/push.h"
#include "store/store.h"
#include "lib/strbuf.h"
#include "tasks/tasks.h"
#include "lib/xalloc.h"

static const struct config *cfg;

int
a2a_init(const struct config *c)
{
	cfg = c;
	return 0;
}

/* ---- renderers --------------------------------------------------------- */

static const char *
v1_state(enum task_state s)
{
	static const char *const n[] = { "TASK_STATE_SUBMITTED",
	    "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED",
	    "TASK_STATE_COMPLETED", "TASK_STATE_CANCELED", "TASK_STATE_FAILED",
	    "TASK_STATE_REJECTED" };
	return n[s];
}

/* Internal part -> wire part. */
static json_object *
render_part(json_object *p, enum a2a_dialect d)
{
	const char *kind = ju_str(p, "kind");
	json_object *o = json_object_new_object(), *v;

	if (kind == NULL)
		kind = "text";
	if (strcmp(kind, "data") == 0) {
		json_object_object_get_ex(p, "data", &v);
		if (d == A2A_V03)
			json_object_object_add(o, "kind",
			    json_object_new_string("data"));
		json_object_object_add(o, "data", ju_copy(v));
	} else if (strcmp(kind, "file") == 0) {
		const char *uri = ju_str(p, "uri"), *name = ju_str(p, "name"),
		    *mt = ju_str(p, "mimeType");
		if (d == A2A_V03) {
			json_object *f = json_object_new_object();
			json_object_object_add(o, "kind",
			    json_object_new_string("file"));
			json_object_object_add(f, "uri", ju_new_str(uri));
			if (name)
				json_object_object_add(f, "name",
				    json_object_new_string(name));
			if (mt)
				json_object_object_add(f, "mimeType",
				    json_object_new_string(mt));
			json_object_object_add(o, "file", f);
		} else {
			json_object_object_add(o, "url", ju_new_str(uri));
			if (name)
				json_object_object_add(o, "filename",
				    json_object_new_string(name));
			if (mt)
				json_object_object_add(o, "mediaType",
				    json_object_new_string(mt));
		}
	} else {
		if (d == A2A_V03)
			json_object_object_add(o, "kind",
			    json_object_new_string("text"));
		json_object_object_add(o, "text",
		    json_object_new_string(ju_str(p, "text") ?
		    ju_str(p, "text") : ""));
	}
	return o;
}

static json_object *
render_message(json_object *m, enum a2a_dialect d)
{
	json_object *o = json_object_new_object(), *parts, *src;
	const char *role = ju_str(m, "role");
	bool agent = role && strcmp(role, "agent") == 0;
	size_t i, n;

	if (d == A2A_V03)
		json_object_object_add(o, "kind", json_object_new_string("message"));
	json_object_object_add(o, "messageId",
	    ju_new_str(ju_str(m, "messageId")));
	json_object_object_add(o, "role", json_object_new_string(d == A2A_V03 ?
	    (agent ? "agent" : "user") : (agent ? "ROLE_AGENT" : "ROLE_USER")));
	parts = json_object_new_array();
	src = ju_arr(m, "parts");
	n = src ? json_object_array_length(src) : 0;
	for (i = 0; i < n; i++)
		json_object_array_add(parts, render_part(
		    json_object_array_get_idx(src, i), d));
	json_object_object_add(o, "parts", parts);
	if (ju_str(m, "taskId"))
		json_object_object_add(o, "taskId",
		    json_object_new_string(ju_str(m, "taskId")));
	if (ju_str(m, "contextId"))
		json_object_object_add(o, "contextId",
		    json_object_new_string(ju_str(m, "contextId")));
	return o;
}

/* The status message: the error, else the progress text, else none. */
static json_object *
status_message(const struct task *t, enum a2a_dialect d)
{
	const char *text = NULL;
	json_object *m, *r;
	char buf[512];

	if (t->error != NULL) {
		snprintf(buf, sizeof(buf), "%s: %s", ju_str(t->error, "code"),
		    ju_str(t->error, "message"));
		text = buf;
	} else if (t->state == TASK_CANCELED)
		text = "Task canceled at the owner's request.";
	else if (t->progress != NULL && ju_str(t->progress, "message") &&
	    ju_str(t->progress, "message")[0])
		text = ju_str(t->progress, "message");
	if (text == NULL)
		return NULL;
	m = task_msg_text("agent", text, t->id, t->context_id);
	json_object_object_add(m, "messageId", json_object_new_string(t->id));
	r = render_message(m, d);
	json_object_put(m);
	return r;
}

static json_object *
render_status(const struct task *t, enum a2a_dialect d)
{
	json_object *s = json_object_new_object(), *m;
	char ts[32];

	json_object_object_add(s, "state", json_object_new_string(
	    d == A2A_V03 ? task_state_name(t->state) : v1_state(t->state)));
	if ((m = status_message(t, d)) != NULL)
		json_object_object_add(s, "message", m);
	ju_iso8601(t->updated_ms, ts, sizeof(ts));
	json_object_object_add(s, "timestamp", json_object_new_string(ts));
	return s;
}

/* Artifacts: the result as a data part, then the task's files. */
static json_object *
render_artifacts(const struct task *t, enum a2a_dialect d)
{
	json_object *arr = json_object_new_array();
	size_t i, n;

	if (t->result != NULL) {
		json_object *a = json_object_new_object();
		json_object *parts = json_object_new_array();
		json_object *p = json_object_new_object();
		char id[UUID_STR_LEN + 8];

		snprintf(id, sizeof(id), "%s-result", t->id);
		json_object_object_add(p, "kind", json_object_new_string("data"));
		json_object_object_add(p, "data", ju_copy(t->result));
		json_object_array_add(parts, render_part(p, d));
		json_object_put(p);
		json_object_object_add(a, "artifactId", json_object_new_string(id));
		json_object_object_add(a, "name", json_object_new_string("result"));
		json_object_object_add(a, "parts", parts);
		json_object_array_add(arr, a);
	}
	n = json_object_array_length(t->artifacts);
	for (i = 0; i < n; i++) {
		json_object *src = json_object_array_get_idx(t->artifacts, i);
		json_object *a = json_object_new_object();
		json_object *parts = json_object_new_array();
		json_object *p = json_object_new_object();

		json_object_object_add(p, "kind", json_object_new_string("file"));
		json_object_object_add(p, "uri", ju_new_str(ju_str(src, "uri")));
		json_object_object_add(p, "name", ju_new_str(ju_str(src, "name")));
		if (ju_str(src, "mimeType"))
			json_object_object_add(p, "mimeType", json_object_new_string(
			    ju_str(src, "mimeType")));
		json_object_array_add(parts, render_part(p, d));
		json_object_put(p);
		json_object_object_add(a, "artifactId",
		    ju_new_str(ju_str(src, "artifactId")));
		json_object_object_add(a, "name", ju_new_str(ju_str(src, "name")));
		json_object_object_add(a, "parts", parts);
		json_object_array_add(arr, a);
	}
	return arr;
}

json_object *
a2a_render_task(const struct task *t, enum a2a_dialect d, int history_len)
{
	json_object *o = json_object_new_object(), *h, *meta;
	size_t i, n = json_object_array_length(t->history), from = 0;

	if (d == A2A_V03)
		json_object_object_add(o, "kind", json_object_new_string("task"));
	json_object_object_add(o, "id", json_object_new_string(t->id));
	json_object_object_add(o, "contextId",
	    json_object_new_string(t->context_id));
	json_object_object_add(o, "status", render_status(t, d));
	json_object_object_add(o, "artifacts", render_artifacts(t, d));
	if (history_len != 0) {
		if (history_len > 0 && n > (size_t)history_len)
			from = n - (size_t)history_len;
		h = json_object_new_array();
		for (i = from; i < n; i++)
			json_object_array_add(h, render_message(
			    json_object_array_get_idx(t->history, i), d));
		json_object_object_add(o, "history", h);
	}
	meta = json_object_new_object();
	json_object_object_add(meta, "operation",
	    json_object_new_string(t->operation));
	if (t->progress)
		json_object_object_add(meta, "progress", ju_copy(t->progress));
	if (t->error)
		json_object_object_add(meta, "error", ju_copy(t->error));
	json_object_object_add(o, "metadata", meta);
	return o;
}

json_object *
a2a_render_status_event(const struct task *t, enum a2a_dialect d)
{
	json_object *e = json_object_new_object(), *meta;
	bool final = task_state_terminal(t->state) ||
	    task_state_interrupted(t->state);

	if (d == A2A_V03)
		json_object_object_add(e, "kind",
		    json_object_new_string("status-update"));
	json_object_object_add(e, "taskId", json_object_new_string(t->id));
	json_object_object_add(e, "contextId",
	    json_object_new_string(t->context_id));
	json_object_object_add(e, "status", render_status(t, d));
	if (d == A2A_V03)
		json_object_object_add(e, "final", json_object_new_boolean(final));
	if (t->progress) {
		meta = json_object_new_object();
		json_object_object_add(meta, "progress", ju_copy(t->progress));
		json_object_object_add(e, "metadata", meta);
	}
	if (d == A2A_V10) {
		json_object *w = json_object_new_object();
		json_object_object_add(w, "statusUpdate", e);
		return w;
	}
	return e;
}

json_object *
a2a_render_artifact_events(const struct task *t, enum a2a_dialect d)
{
	json_object *out = json_object_new_array();
	json_object *arts = render_artifacts(t, d);
	size_t i, n = json_object_array_length(arts);

	for (i = 0; i < n; i++) {
		json_object *e = json_object_new_object();
		if (d == A2A_V03)
			json_object_object_add(e, "kind",
			    json_object_new_string("artifact-update"));
		json_object_object_add(e, "taskId", json_object_new_string(t->id));
		json_object_object_add(e, "contextId",
		    json_object_new_string(t->context_id));
		json_object_object_add(e, "artifact", json_object_get(
		    json_object_array_get_idx(arts, i)));
		json_object_object_add(e, "append", json_object_new_boolean(0));
		json_object_object_add(e, "lastChunk", json_object_new_boolean(1));
		if (d == A2A_V10) {
			json_object *w = json_object_new_object();
			json_object_object_add(w, "artifactUpdate", e);
			e = w;
		}
		json_object_array_add(out, e);
	}
	json_object_put(arts);
	return out;
}

json_object *
a2a_render_stream_task(const struct task *t, enum a2a_dialect d)
{
	json_object *task = a2a_render_task(t, d, -1), *w;

	if (d == A2A_V03)
		return task;
	w = json_object_new_object();
	json_object_object_add(w, "task", task);
	return w;
}

json_object *
a2a_rpc_result(json_object *id, json_object *result)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", ju_copy(id));
	json_object_object_add(o, "result", result);
	return o;
}

static const char *
error_reason(int code)
{
	switch (code) {
	case A2A_TASK_NOT_FOUND: return "TASK_NOT_FOUND";
	case A2A_TASK_NOT_CANCELABLE: return "TASK_NOT_CANCELABLE";
	case A2A_PUSH_NOT_SUPPORTED: return "PUSH_NOTIFICATION_NOT_SUPPORTED";
	case A2A_UNSUPPORTED_OP: return "UNSUPPORTED_OPERATION";
	case A2A_CONTENT_TYPE: return "CONTENT_TYPE_NOT_SUPPORTED";
	case A2A_VERSION_NOT_SUPPORTED: return "VERSION_NOT_SUPPORTED";
	case RPC_PARSE_ERROR: return "PARSE_ERROR";
	case RPC_INVALID_REQUEST: return "INVALID_REQUEST";
	case RPC_METHOD_NOT_FOUND: return "METHOD_NOT_FOUND";
	case RPC_INVALID_PARAMS: return "INVALID_PARAMS";
	}
	return "INTERNAL_ERROR";
}

json_object *
a2a_rpc_error(json_object *id, enum a2a_dialect d, int code,
    const char *message)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	if (d == A2A_V10) {
		json_object *info = json_object_new_object(), *arr;
		json_object_object_add(info, "@type", json_object_new_string(
		    "type.googleapis.com/google.rpc.ErrorInfo"));
		json_object_object_add(info, "reason",
		    json_object_new_string(error_reason(code)));
		json_object_object_add(info, "domain",
		    json_object_new_string("a2a-protocol.org"));
		arr = json_object_new_array();
		json_object_array_add(arr, info);
		json_object_object_add(e, "data", arr);
	}
	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", ju_copy(id));
	json_object_object_add(o, "error", e);
	return o;
}

/* ---- push notifications ------------------------------------------------ */

void
a2a_task_changed(const struct task *t)
{
	struct push_config **pcs = NULL;
	size_t n = 0, i;

	hub_publish(t);
	if (store_push_list(tasks_store(), t->id, &pcs, &n) < 0)
		return;
	for (i = 0; i < n; i++) {
		enum a2a_dialect d = pcs[i]->dialect == A2A_V10 ? A2A_V10 :
		    A2A_V03;
		json_object *body = a2a_render_stream_task(t, d);
		push_deliver(t->id, pcs[i]->url, pcs[i]->token,
		    pcs[i]->auth_scheme, pcs[i]->auth_credentials,
		    d == A2A_V10 ? "application/a2a+json" : "application/json",
		    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(body);
	}
	store_push_list_free(pcs, n);
}

/* ---- request handling -------------------------------------------------- */

struct rpc {
	struct http_req *r;
	json_object *id;	/* borrowed from req */
	json_object *params;	/* borrowed */
	enum a2a_dialect d;
	const char *method;
};

static int
reply(struct rpc *c, json_object *result)
{
	json_object *o = a2a_rpc_result(c->id, result);
	http_json(c->r, 200, o, NULL);
	json_object_put(o);
	return 0;
}

static int
reply_error(struct rpc *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
reply_error(struct rpc *c, int code, const char *fmt, ...)
{
	struct strbuf sb = SB_INIT;
	json_object *o;
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	o = a2a_rpc_error(c->id, c->d, code, sb_str(&sb));
	http_json(c->r, 200, o, NULL);
	json_object_put(o);
	sb_free(&sb);
	metrics_rpc_error(code);
	return 0;
}

/*
 * An operation's error: the JSON-RPC code plus the agent's own code
 * ("pod_not_found", "rate_limited"...) so clients need not parse the
 * message: in "data" for v0.3, in the ErrorInfo's "metadata" for v1.0.
 */
static int
reply_op_error(struct rpc *c, int code, const char *agent_code,
    const char *message)
{
	json_object *o = a2a_rpc_error(c->id, c->d, code, message), *e, *d;
	json_object *meta = json_object_new_object();

	json_object_object_add(meta, "agent_code",
	    json_object_new_string(agent_code));
	json_object_object_get_ex(o, "error", &e);
	if (c->d == A2A_V10 && json_object_object_get_ex(e, "data", &d))
		json_object_object_add(json_object_array_get_idx(d, 0),
		    "metadata", meta);
	else
		json_object_object_add(e, "data", meta);
	http_json(c->r, 200, o, NULL);
	json_object_put(o);
	metrics_rpc_error(code);
	return 0;
}

static int
forbidden(struct rpc *c, const char *scope)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "this method needs scope %s", scope);
	http_error(c->r, 403, "insufficient_scope", msg,
	    "WWW-Authenticate: Bearer error=\"insufficient_scope\"\r\n");
	return 0;
}

static bool
need_scope(struct rpc *c, const char *scope)
{
	if (auth_has_scope(&c->r->who, scope))
		return true;
	forbidden(c, scope);
	return false;
}

static int
history_len_param(struct rpc *c)
{
	int64_t h = -1;

	if (ju_int(c->params, "historyLength", &h) != 0 || h < 0)
		return -1;
	return h > 1000 ? 1000 : (int)h;
}

static json_object *
task_result(struct rpc *c, const struct task *t, int hl, bool wrap)
{
	json_object *task = a2a_render_task(t, c->d, hl), *w;

	if (!wrap || c->d == A2A_V03)
		return task;
	w = json_object_new_object();
	json_object_object_add(w, "task", task);
	return w;
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
		*why = "message.messageId is required (a string up to 128 bytes)";
		return NULL;
	}
	if (role == NULL || (strcmp(role, "user") != 0 &&
	    strcmp(role, "ROLE_USER") != 0)) {
		*why = "message.role must be \"user\" (v0.3) or \"ROLE_USER\" (v1.0)";
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
		if ((kind && !strcmp(kind, "text")) || (!kind && ju_str(p, "text"))) {
			if (ju_str(p, "text") == NULL) {
				*why = "a text part needs a string \"text\"";
				goto bad;
			}
			json_object_object_add(q, "kind", json_object_new_string("text"));
			json_object_object_add(q, "text",
			    json_object_new_string(ju_str(p, "text")));
		} else if ((kind && !strcmp(kind, "data")) ||
		    (!kind && json_object_object_get_ex(p, "data", &v))) {
			json_object_object_get_ex(p, "data", &v);
			json_object_object_add(q, "kind", json_object_new_string("data"));
			json_object_object_add(q, "data", ju_copy(v));
		} else if ((kind && !strcmp(kind, "file")) ||
		    (!kind && (ju_str(p, "url") || ju_str(p, "raw")))) {
			json_object *f = ju_obj(p, "file");
			const char *uri = f ? ju_str(f, "uri") : ju_str(p, "url");
			json_object_object_add(q, "kind", json_object_new_string("file"));
			json_object_object_add(q, "uri", ju_new_str(uri ? uri : ""));
			json_object_object_add(q, "name", ju_new_str(f ?
			    ju_str(f, "name") : ju_str(p, "filename")));
			/* inline bytes: adopted as an upload by do_send, never
			 * kept in the task's history */
			if ((f && ju_str(f, "bytes")) || ju_str(p, "raw"))
				json_object_object_add(q, "bytes", ju_new_str(f ?
				    ju_str(f, "bytes") : ju_str(p, "raw")));
		} else {
			*why = "unsupported message part (expected text, data or file)";
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
		json_object_object_add(out, "timestamp", json_object_new_string(ts));
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

static int
op_error_reply(struct rpc *c, const struct op_outcome *oc)
{
	const char *code = oc->err.code;

	if (oc->http_status == 403) {
		http_error(c->r, 403, "insufficient_scope", oc->err.message,
		    "WWW-Authenticate: Bearer error=\"insufficient_scope\"\r\n");
		return 0;
	}
	if (!strcmp(code, OPERR_NOT_CONFIGURED))
		return reply_op_error(c, A2A_UNSUPPORTED_OP, code,
		    oc->err.message);
	if (!strcmp(code, OPERR_NOT_FOUND))
		return reply_op_error(c, A2A_TASK_NOT_FOUND, code,
		    oc->err.message);
	if (!strcmp(code, OPERR_NOT_CANCELABLE))
		return reply_op_error(c, A2A_TASK_NOT_CANCELABLE, code,
		    oc->err.message);
	/* The request was fine; the agent or its provider failed. */
	if (!strcmp(code, OPERR_INTERNAL) || !strcmp(code, PODERR_RUNPOD) ||
	    !strcmp(code, PODERR_RATE_LIMITED) ||
	    !strcmp(code, PODERR_UNAVAILABLE))
		return reply_op_error(c, RPC_INTERNAL_ERROR, code,
		    oc->err.message);
	/* invalid_params, unknown_operation, pod_not_found: the params
	 * name something that is not there. */
	return reply_op_error(c, RPC_INVALID_PARAMS, code, oc->err.message);
}

static int save_push_config(struct rpc *c, const char *task_id,
    json_object *pc, json_object **out);

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
			    "[A-Za-z0-9._-]{1,128}, not starting with '.' or '-'";
			return -1;
		}
		if (uploads_adopt_base64(cfg, c->r->who.sub, name,
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
static int
do_send(struct rpc *c, bool stream)
{
	json_object *m = ju_obj(c->params, "message"), *msg, *conf, *opdata;
	struct task *t = NULL;
	const char *why = NULL, *task_id, *ctx;
	bool blocking = true, ret_now = false;
	int hl = history_len_param(c), rc = 0;
	struct op_outcome oc = { 0 };

	conf = ju_obj(c->params, "configuration");
	if (conf && ju_bool(conf, "blocking", &blocking) < 0)
		return reply_error(c, RPC_INVALID_PARAMS,
		    "configuration.blocking must be a boolean");
	if (conf && ju_bool(conf, "returnImmediately", &ret_now) < 0)
		return reply_error(c, RPC_INVALID_PARAMS,
		    "configuration.returnImmediately must be a boolean");
	if (ret_now)
		blocking = false;
	if (conf) {
		int64_t h;
		if (ju_int(conf, "historyLength", &h) == 0 && h >= 0)
			hl = h > 1000 ? 1000 : (int)h;
	}
	msg = parse_message(m, &why);
	if (msg == NULL)
		return reply_error(c, RPC_INVALID_PARAMS, "%s", why);
	if (adopt_file_bytes(c, msg, &why) < 0) {
		json_object_put(msg);
		return reply_error(c, RPC_INVALID_PARAMS, "%s", why);
	}
	task_id = ju_str(m, "taskId");
	ctx = ju_str(m, "contextId");
	if (ctx && (strlen(ctx) > TASK_CONTEXT_MAX || ctx[0] == '\0')) {
		json_object_put(msg);
		return reply_error(c, RPC_INVALID_PARAMS,
		    "message.contextId must be 1 to 64 characters");
	}

	if (task_id != NULL) {
		/* A follow-up to an existing task of the caller's. */
		int r = tasks_get(task_id, c->r->who.sub, &t);
		if (r == 0 && ctx && strcmp(ctx, t->context_id) != 0) {
			task_free(t);
			json_object_put(msg);
			return reply_error(c, RPC_INVALID_PARAMS, "message."
			    "contextId does not match the task's contextId");
		}
		task_free(t);
		t = NULL;
		json_object_object_add(msg, "taskId", json_object_new_string(task_id));
		if (r == 0)
			r = tasks_add_message(task_id, c->r->who.sub, msg, &t);
		else
			json_object_put(msg);
		if (r != 0)
			return reply_error(c, r > 0 ? A2A_TASK_NOT_FOUND :
			    RPC_INTERNAL_ERROR, r > 0 ? "Task not found" :
			    "the task store failed");
	} else if ((opdata = find_operation(msg)) != NULL) {
		struct op_ctx octx = { cfg, &c->r->who, msg };
		const char *opname = ju_str(opdata, "operation");
		json_object *params = NULL;

		if (opname == NULL) {
			json_object_put(msg);
			return reply_error(c, RPC_INVALID_PARAMS,
			    "data part: \"operation\" must be a string");
		}
		json_object_object_get_ex(opdata, "params", &params);
		if (params != NULL && !json_object_is_type(params,
		    json_type_object)) {
			json_object_put(msg);
			return reply_error(c, RPC_INVALID_PARAMS,
			    "data part: \"params\" must be an object");
		}
		if (ops_invoke(&octx, opname, params, ctx, &oc) < 0) {
			json_object_put(msg);
			rc = op_error_reply(c, &oc);
			ops_outcome_clear(&oc);
			return rc;
		}
		if (oc.task != NULL) {
			t = oc.task;
			oc.task = NULL;
		} else {
			/* A sync operation: a task that completes at once. */
			char *err = NULL;
			const struct op_def *op = ops_find(opname);
			t = task_new(c->r->who.sub, op->name,
			    params ? ju_copy(params) : NULL, ctx);
			json_object_object_add(msg, "taskId",
			    json_object_new_string(t->id));
			json_object_object_add(msg, "contextId",
			    json_object_new_string(t->context_id));
			task_add_history(t, msg, (int)cfg->task_history_max);
			msg = NULL;
			task_complete(t, oc.result);
			oc.result = NULL;
			if (tasks_record(t, &t, &err) < 0) {
				rc = reply_error(c, RPC_INTERNAL_ERROR, "%s", err);
				free(err);
				ops_outcome_clear(&oc);
				return rc;
			}
		}
		ops_outcome_clear(&oc);
		json_object_put(msg);
	} else {
		/* No operation: a task that completes with the catalogue. */
		char *err = NULL;
		json_object *reply_msg, *parts, *p;

		t = task_new(c->r->who.sub, "agent.help", NULL, ctx);
		json_object_object_add(msg, "taskId", json_object_new_string(t->id));
		json_object_object_add(msg, "contextId",
		    json_object_new_string(t->context_id));
		task_add_history(t, msg, (int)cfg->task_history_max);
		reply_msg = task_msg_text("agent", "This agent runs operations "
		    "named in a data part: {\"operation\": NAME, \"params\": "
		    "{...}}. The operations and their params follow.", t->id,
		    t->context_id);
		parts = ju_arr(reply_msg, "parts");
		p = json_object_new_object();
		json_object_object_add(p, "kind", json_object_new_string("data"));
		{
			json_object *d = json_object_new_object();
			json_object_object_add(d, "operations", ops_describe(cfg));
			json_object_object_add(p, "data", d);
		}
		json_object_array_add(parts, p);
		task_add_history(t, reply_msg, (int)cfg->task_history_max);
		{
			json_object *res = json_object_new_object();
			json_object_object_add(res, "operations", ops_describe(cfg));
			task_complete(t, res);
		}
		if (tasks_record(t, &t, &err) < 0) {
			rc = reply_error(c, RPC_INTERNAL_ERROR, "%s", err);
			free(err);
			return rc;
		}
	}

	/* Inline push notification config. */
	if (conf) {
		json_object *pc = ju_obj(conf, c->d == A2A_V03 ?
		    "pushNotificationConfig" : "taskPushNotificationConfig");
		if (pc != NULL) {
			json_object *saved = NULL;
			if (save_push_config(c, t->id, pc, &saved) < 0) {
				task_free(t);
				return 0;	/* error already sent */
			}
			json_object_put(saved);
		}
	}

	if (stream) {
		if (hub_stream(c->r, t->id, c->r->who.sub, c->d, c->id) == 0) {
			task_free(t);
			return 1;
		}
		rc = reply_error(c, RPC_INTERNAL_ERROR, "too many open streams; "
		    "poll with tasks/get instead");
	} else if (blocking && !task_state_terminal(t->state) &&
	    !task_state_interrupted(t->state) && cfg->blocking_wait_max > 0 &&
	    hub_wait(c->r, t->id, c->r->who.sub, c->d, c->id,
	    (int)cfg->blocking_wait_max, hl) == 0) {
		task_free(t);
		return 1;
	} else
		rc = reply(c, task_result(c, t, hl, true));
	task_free(t);
	return rc;
}

static const char *
param_task_id(struct rpc *c)
{
	const char *id = ju_str(c->params, "id");

	if (c->d == A2A_V10 && ju_str(c->params, "taskId") &&
	    strstr(c->method, "PushNotification"))
		return ju_str(c->params, "taskId");
	if (c->d == A2A_V03 && ju_str(c->params, "taskId") && id == NULL)
		return ju_str(c->params, "taskId");
	return id;
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

	if (!need_scope(c, scope))
		return NULL;
	if (id == NULL) {
		reply_error(c, RPC_INVALID_PARAMS, "params.id is required");
		return NULL;
	}
	r = tasks_get(id, c->r->who.sub, &t);
	if (r != 0) {
		reply_error(c, r > 0 ? A2A_TASK_NOT_FOUND : RPC_INTERNAL_ERROR,
		    r > 0 ? "Task not found" : "the task store failed");
		return NULL;
	}
	return t;
}

static int
do_get(struct rpc *c)
{
	struct task *t = load_own_task(c, "tasks:read");
	int r;

	if (t == NULL)
		return 0;
	r = reply(c, task_result(c, t, history_len_param(c), false));
	task_free(t);
	return r;
}

static int
do_list(struct rpc *c)
{
	struct store_list_query q = { 0 };
	struct task **tasks = NULL;
	char *next = NULL, *err = NULL;
	int64_t total = 0, size = 50;
	json_object *res, *arr;
	const char *status = ju_str(c->params, "status");
	const char *after = ju_str(c->params, "statusTimestampAfter");
	enum task_state st;
	bool arts = true;
	size_t n = 0, i;
	int hl = history_len_param(c);

	if (!need_scope(c, "tasks:read"))
		return 0;
	q.owner = c->r->who.sub;
	q.context_id = ju_str(c->params, "contextId");
	q.state = -1;
	if (status && strcmp(status, "TASK_STATE_UNSPECIFIED") != 0) {
		if (task_state_parse(status, &st) < 0)
			return reply_error(c, RPC_INVALID_PARAMS,
			    "params.status is not a TaskState");
		q.state = (int)st;
	}
	if (ju_int(c->params, "pageSize", &size) < 0 || size < 1 || size > 100)
		return reply_error(c, RPC_INVALID_PARAMS,
		    "params.pageSize must be an integer from 1 to 100");
	if (ju_bool(c->params, "includeArtifacts", &arts) < 0)
		return reply_error(c, RPC_INVALID_PARAMS,
		    "params.includeArtifacts must be a boolean");
	if (after != NULL) {
		struct tm tm = { 0 };
		char *end = strptime(after, "%Y-%m-%dT%H:%M:%S", &tm);
		if (end == NULL)
			return reply_error(c, RPC_INVALID_PARAMS,
			    "params.statusTimestampAfter must be ISO 8601 UTC");
		q.updated_after_ms = (int64_t)timegm(&tm) * 1000;
	}
	q.page_size = (size_t)size;
	q.page_token = ju_str(c->params, "pageToken");
	if (store_task_list(tasks_store(), &q, &tasks, &n, &next, &total,
	    &err) < 0) {
		int rc = reply_error(c, strstr(err, "pageToken") ?
		    RPC_INVALID_PARAMS : RPC_INTERNAL_ERROR, "%s", err);
		free(err);
		return rc;
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		json_object *tj = a2a_render_task(tasks[i], c->d, hl < 0 ? 0 : hl);
		if (!arts)
			json_object_object_del(tj, "artifacts");
		json_object_array_add(arr, tj);
	}
	task_list_free(tasks, n);
	res = json_object_new_object();
	json_object_object_add(res, "tasks", arr);
	json_object_object_add(res, "nextPageToken", json_object_new_string(next));
	json_object_object_add(res, "pageSize", json_object_new_int64(size));
	json_object_object_add(res, "totalSize", json_object_new_int64(total));
	free(next);
	return reply(c, res);
}

static int
do_cancel(struct rpc *c)
{
	struct task *t = NULL;
	const char *id = ju_str(c->params, "id");
	int rc;

	if (!need_scope(c, "tasks:write"))
		return 0;
	if (id == NULL)
		return reply_error(c, RPC_INVALID_PARAMS, "params.id is required");
	switch (tasks_cancel(id, c->r->who.sub, &t)) {
	case TASKS_CANCEL_OK:
		rc = reply(c, task_result(c, t, -1, false));
		break;
	case TASKS_CANCEL_NOT_FOUND:
		rc = reply_error(c, A2A_TASK_NOT_FOUND, "Task not found");
		break;
	case TASKS_CANCEL_NOT_CANCELABLE:
		rc = reply_error(c, A2A_TASK_NOT_CANCELABLE, "Task cannot be "
		    "canceled: it is already %s", task_state_name(t->state));
		break;
	default:
		rc = reply_error(c, RPC_INTERNAL_ERROR, "the task could not be "
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
		return reply_error(c, A2A_UNSUPPORTED_OP, "the task is already "
		    "in a terminal state; use tasks/get");
	}
	task_free(t);
	if (hub_stream(c->r, id, c->r->who.sub, c->d, c->id) == 0)
		return 1;
	return reply_error(c, RPC_INTERNAL_ERROR, "too many open streams");
}

/* ---- push notification configs ----------------------------------------- */

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
		json_object_object_add(o, "url", json_object_new_string(pc->url));
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
	json_object_object_add(o, "taskId", json_object_new_string(pc->task_id));
	json_object_object_add(o, "pushNotificationConfig", inner);
	return o;
}

/* Validate and store a config given in pc (dialect shape). On failure an
 * error reply is sent and -1 returned. */
static int
save_push_config(struct rpc *c, const char *task_id, json_object *pc,
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
		    json_object_get_string(json_object_array_get_idx(schemes, 0)) :
		    ju_str(auth, "scheme"));
		p.auth_credentials = (char *)ju_str(auth, "credentials");
	}
	if (p.url == NULL) {
		reply_error(c, RPC_INVALID_PARAMS, "push notification config "
		    "needs a url");
		return -1;
	}
	if (!header_safe(p.token) || !header_safe(p.auth_scheme) ||
	    !header_safe(p.auth_credentials) ||
	    (p.token && strlen(p.token) > 1024) ||
	    (p.auth_credentials && strlen(p.auth_credentials) > 4096) ||
	    (p.auth_scheme && (strlen(p.auth_scheme) > 64 ||
	    strchr(p.auth_scheme, ' ')))) {
		reply_error(c, RPC_INVALID_PARAMS, "push notification token, "
		    "scheme or credentials hold forbidden characters or are "
		    "too long");
		return -1;
	}
	if (outbound_check_url(cfg, p.url, &tgt, &err) < 0) {
		reply_error(c, RPC_INVALID_PARAMS, "push notification url "
		    "refused: %s", err);
		free(err);
		return -1;
	}
	if (cid != NULL && (strlen(cid) > 64 || !header_safe(cid) || !*cid)) {
		reply_error(c, RPC_INVALID_PARAMS, "push notification config "
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
	if (store_push_put(tasks_store(), &p, &err) < 0) {
		reply_error(c, RPC_INTERNAL_ERROR, "%s", err);
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
		reply_error(c, RPC_INVALID_PARAMS, "the task id is required");
		return false;
	}
	r = tasks_get(task_id, c->r->who.sub, &t);
	task_free(t);
	if (r != 0) {
		reply_error(c, A2A_TASK_NOT_FOUND, "Task not found");
		return false;
	}
	return true;
}

static int
do_push(struct rpc *c, const char *what)
{
	const char *task_id = param_task_id(c);
	json_object *out = NULL;

	if (!strcmp(what, "set") || !strcmp(what, "delete")) {
		if (!need_scope(c, "tasks:write"))
			return 0;
	} else if (!need_scope(c, "tasks:read"))
		return 0;
	if (!own_task(c, task_id))
		return 0;
	if (!strcmp(what, "set")) {
		json_object *pc = c->d == A2A_V03 ?
		    ju_obj(c->params, "pushNotificationConfig") : c->params;
		if (pc == NULL)
			return reply_error(c, RPC_INVALID_PARAMS,
			    "params.pushNotificationConfig is required");
		if (save_push_config(c, task_id, pc, &out) < 0)
			return 0;
		return reply(c, out);
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
			store_push_list(tasks_store(), task_id, &all, &n);
			if (n > 0) {
				pc = all[0];	/* kept; the rest freed */
				all[0] = NULL;
			}
			store_push_list_free(all, n);
			r = pc ? 0 : 1;
		} else
			r = store_push_get(tasks_store(), task_id, cid, &pc);
		if (r != 0)
			return reply_error(c, RPC_INVALID_PARAMS, "no push "
			    "notification config with that id");
		out = render_push(pc, c->d);
		store_push_free(pc);
		return reply(c, out);
	}
	if (!strcmp(what, "list")) {
		struct push_config **all = NULL;
		size_t n = 0, i;
		json_object *arr = json_object_new_array();
		store_push_list(tasks_store(), task_id, &all, &n);
		for (i = 0; i < n; i++)
			json_object_array_add(arr, render_push(all[i], c->d));
		store_push_list_free(all, n);
		if (c->d == A2A_V03)
			return reply(c, arr);
		out = json_object_new_object();
		json_object_object_add(out, "configs", arr);
		json_object_object_add(out, "nextPageToken",
		    json_object_new_string(""));
		return reply(c, out);
	}
	/* delete: idempotent */
	{
		const char *cid = c->d == A2A_V03 ?
		    ju_str(c->params, "pushNotificationConfigId") :
		    ju_str(c->params, "id");
		if (cid == NULL)
			return reply_error(c, RPC_INVALID_PARAMS,
			    "the push notification config id is required");
		store_push_delete(tasks_store(), task_id, cid);
		return reply(c, c->d == A2A_V03 ? NULL : json_object_new_object());
	}
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

int
a2a_handle(struct http_req *r)
{
	struct rpc c = { r, NULL, NULL, A2A_V03, "" };
	json_object *req = NULL, *m;
	const char *ver = http_header(r, "A2A-Version"), *method;
	const struct method *mt = NULL;
	char *err = NULL;
	size_t i;
	int rc = 0;

	if (ver != NULL && ver[0] != '\0' && strcmp(ver, "0.3") != 0 &&
	    strcmp(ver, "1.0") != 0) {
		c.d = A2A_V10;
		return reply_error(&c, A2A_VERSION_NOT_SUPPORTED, "A2A-Version "
		    "'%.16s' is not supported; this agent speaks 0.3 and 1.0",
		    ver);
	}
	if (ver != NULL && strcmp(ver, "1.0") == 0)
		c.d = A2A_V10;
	if (ju_parse(r->body, r->body_len, (int)cfg->max_json_depth,
	    (size_t)cfg->max_string_bytes, &req, &err) < 0) {
		rc = reply_error(&c, RPC_PARSE_ERROR, "Invalid JSON payload: %s",
		    err);
		free(err);
		return rc;
	}
	if (json_object_is_type(req, json_type_array)) {
		rc = reply_error(&c, RPC_INVALID_REQUEST,
		    "batch requests are not supported");
		goto cleanup;
	}
	if (!json_object_is_type(req, json_type_object)) {
		rc = reply_error(&c, RPC_INVALID_REQUEST,
		    "the request must be a JSON-RPC 2.0 object");
		goto cleanup;
	}
	if (json_object_object_get_ex(req, "id", &m) && m != NULL &&
	    !json_object_is_type(m, json_type_string) &&
	    !json_object_is_type(m, json_type_int)) {
		rc = reply_error(&c, RPC_INVALID_REQUEST,
		    "id must be a string, an integer or null");
		goto cleanup;
	}
	c.id = m;
	if (ju_str(req, "jsonrpc") == NULL ||
	    strcmp(ju_str(req, "jsonrpc"), "2.0") != 0) {
		rc = reply_error(&c, RPC_INVALID_REQUEST,
		    "jsonrpc must be \"2.0\"");
		goto cleanup;
	}
	method = ju_str(req, "method");
	if (method == NULL) {
		rc = reply_error(&c, RPC_INVALID_REQUEST,
		    "method must be a string");
		goto cleanup;
	}
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, method) == 0)
			mt = &methods[i];
	if (mt == NULL) {
		rc = reply_error(&c, RPC_METHOD_NOT_FOUND, "Method not found: "
		    "%.64s", method);
		goto cleanup;
	}
	c.d = mt->d;
	c.method = mt->name;
	if (json_object_object_get_ex(req, "params", &m) && m != NULL &&
	    !json_object_is_type(m, json_type_object)) {
		rc = reply_error(&c, RPC_INVALID_PARAMS,
		    "params must be an object");
		goto cleanup;
	}
	c.params = m;
	metrics_rpc_method(mt->name);
	if (!strcmp(mt->what, "send"))
		rc = do_send(&c, false);
	else if (!strcmp(mt->what, "stream"))
		rc = do_send(&c, true);
	else if (!strcmp(mt->what, "get"))
		rc = do_get(&c);
	else if (!strcmp(mt->what, "list"))
		rc = do_list(&c);
	else if (!strcmp(mt->what, "cancel"))
		rc = do_cancel(&c);
	else if (!strcmp(mt->what, "subscribe"))
		rc = do_subscribe(&c);
	else if (!strncmp(mt->what, "push:", 5))
		rc = do_push(&c, mt->what + 5);
	else
		rc = c.d == A2A_V03 ?
		    reply_error(&c, -32007, "Authenticated extended card is "
		    "not configured") :
		    reply_error(&c, A2A_UNSUPPORTED_OP, "this agent declares "
		    "no extended agent card");
cleanup:
	json_object_put(req);
	return rc;
}
