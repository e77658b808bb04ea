/* SPDX-License-Identifier: MIT */
/*
 * render: the agent's task record and errors as A2A wire objects, in the
 * dialect asked (see render.h).
 */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/printbuf.h>

#include "a2a/render.h"
#include "lib/jsonutil.h"

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
		json_object_object_add(o, "kind",
		    json_object_new_string("message"));
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

/* The status message: the error, else (input-required) the agent's last
 * message, the question, else the progress text, else none. */
static json_object *
status_message(const struct task *t, enum a2a_dialect d)
{
	const char *text = NULL;
	json_object *m, *r;
	char buf[512];
	size_t i;

	if (t->error == NULL && t->state == TASK_INPUT_REQUIRED) {
		for (i = json_object_array_length(t->history); i > 0; i--) {
			m = json_object_array_get_idx(t->history, i - 1);
			if (ju_str(m, "role") &&
			    strcmp(ju_str(m, "role"), "agent") == 0)
				return render_message(m, d);
		}
	}
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
		json_object_object_add(p, "kind",
		    json_object_new_string("data"));
		json_object_object_add(p, "data", ju_copy(t->result));
		json_object_array_add(parts, render_part(p, d));
		json_object_put(p);
		json_object_object_add(a, "artifactId",
		    json_object_new_string(id));
		json_object_object_add(a, "name",
		    json_object_new_string("result"));
		json_object_object_add(a, "parts", parts);
		json_object_array_add(arr, a);
	}
	n = json_object_array_length(t->artifacts);
	for (i = 0; i < n; i++) {
		json_object *src = json_object_array_get_idx(t->artifacts, i);
		json_object *a = json_object_new_object();
		json_object *parts = json_object_new_array();
		json_object *p = json_object_new_object();

		json_object_object_add(p, "kind",
		    json_object_new_string("file"));
		json_object_object_add(p, "uri",
		    ju_new_str(ju_str(src, "uri")));
		json_object_object_add(p, "name",
		    ju_new_str(ju_str(src, "name")));
		if (ju_str(src, "mimeType"))
			json_object_object_add(p, "mimeType",
			    json_object_new_string(ju_str(src, "mimeType")));
		json_object_array_add(parts, render_part(p, d));
		json_object_put(p);
		json_object_object_add(a, "artifactId",
		    ju_new_str(ju_str(src, "artifactId")));
		json_object_object_add(a, "name",
		    ju_new_str(ju_str(src, "name")));
		json_object_object_add(a, "parts", parts);
		json_object_array_add(arr, a);
	}
	return arr;
}

json_object *
render_task(const struct task *t, enum a2a_dialect d, int history_len)
{
	json_object *o = json_object_new_object(), *h, *meta;
	size_t i, n = json_object_array_length(t->history), from = 0;

	if (d == A2A_V03)
		json_object_object_add(o, "kind",
		    json_object_new_string("task"));
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
render_status_event(const struct task *t, enum a2a_dialect d)
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
		json_object_object_add(e, "final",
		    json_object_new_boolean(final));
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
render_artifact_events(const struct task *t, enum a2a_dialect d)
{
	json_object *out = json_object_new_array();
	json_object *arts = render_artifacts(t, d);
	size_t i, n = json_object_array_length(arts);

	for (i = 0; i < n; i++) {
		json_object *e = json_object_new_object();
		if (d == A2A_V03)
			json_object_object_add(e, "kind",
			    json_object_new_string("artifact-update"));
		json_object_object_add(e, "taskId",
		    json_object_new_string(t->id));
		json_object_object_add(e, "contextId",
		    json_object_new_string(t->context_id));
		json_object_object_add(e, "artifact", json_object_get(
		    json_object_array_get_idx(arts, i)));
		json_object_object_add(e, "append", json_object_new_boolean(0));
		json_object_object_add(e, "lastChunk",
		    json_object_new_boolean(1));
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
render_stream_task(const struct task *t, enum a2a_dialect d)
{
	json_object *task = render_task(t, d, -1), *w;

	if (d == A2A_V03)
		return task;
	w = json_object_new_object();
	json_object_object_add(w, "task", task);
	return w;
}

json_object *
render_rpc_result(json_object *id, json_object *result)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", ju_copy(id));
	json_object_object_add(o, "result", result);
	return o;
}

static int
raw_serialize(json_object *o, struct printbuf *pb, int level, int flags)
{
	const char *text = json_object_get_userdata(o);

	(void)level;
	(void)flags;
	printbuf_memappend(pb, text, (int)strlen(text));
	return 0;
}

static void
raw_free(json_object *o, void *userdata)
{
	(void)o;
	free(userdata);
}

json_object *
render_raw(char *text)
{
	json_object *o = json_object_new_object();

	json_object_set_serializer(o, raw_serialize, text, raw_free);
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
render_rpc_error(json_object *id, enum a2a_dialect d, int code,
    const char *message)
{
	json_object *o = json_object_new_object(),
	    *e = json_object_new_object();

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
