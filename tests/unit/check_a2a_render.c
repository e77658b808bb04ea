/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "a2a/a2a.h"
#include "a2a/card.h"
#include "core/config.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "ops/ops.h"
#include "core/task.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

/* Follow a dotted path of object keys and array indexes ("a.0.b"). */
static json_object *
at(json_object *o, const char *path)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o;
	    tok = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array)) {
			char *end;
			long i = strtol(tok, &end, 10);
			if (*end != '\0' || i < 0 ||
			    (size_t)i >= json_object_array_length(o))
				return NULL;
			o = json_object_array_get_idx(o, (size_t)i);
		} else if (!json_object_object_get_ex(o, tok, &o))
			return NULL;
	}
	return o;
}

static const char *
str_at(json_object *o, const char *path)
{
	json_object *v = at(o, path);

	ck_assert_msg(v != NULL && json_object_is_type(v, json_type_string),
	    "no string at %s in %s", path, json_object_to_json_string(o));
	return json_object_get_string(v);
}

static bool
has(json_object *o, const char *path)
{
	return at(o, path) != NULL;
}

static size_t
len_at(json_object *o, const char *path)
{
	json_object *v = at(o, path);

	ck_assert_msg(v != NULL && json_object_is_type(v, json_type_array),
	    "no array at %s", path);
	return json_object_array_length(v);
}

/* A working task with progress and a three-message history: user text,
 * agent text, user with a data part and a file part. */
static struct task *
sample_task(void)
{
	struct task *t = task_new("alice", "diag.timer", NULL, NULL);
	json_object *m;

	task_add_history(t, task_msg_text("user", "one", t->id, t->context_id),
	    10);
	task_add_history(t, task_msg_text("agent", "two", t->id, t->context_id),
	    10);
	m = json_tokener_parse("{\"messageId\":\"m3\",\"role\":\"user\","
	    "\"parts\":[{\"kind\":\"data\",\"data\":{\"k\":[1,2]}},"
	    "{\"kind\":\"file\",\"uri\":\"https://x.example/v.mp4\","
	    "\"name\":\"v.mp4\",\"mimeType\":\"video/mp4\"}],"
	    "\"timestamp\":\"2026-01-01T00:00:00.000Z\"}");
	ck_assert_ptr_nonnull(m);
	task_add_history(t, m, 10);
	task_set_state(t, TASK_WORKING);
	task_set_progress(t, 1, 3, "step 2 of 3");
	return t;
}

/* ---- tasks -------------------------------------------------------------- */

START_TEST(test_task_v03)
{
	struct task *t = sample_task();
	json_object *o = render_task(t, A2A_V03, -1);

	ck_assert_str_eq(str_at(o, "kind"), "task");
	ck_assert_str_eq(str_at(o, "id"), t->id);
	ck_assert_str_eq(str_at(o, "contextId"), t->context_id);
	ck_assert_str_eq(str_at(o, "status.state"), "working");
	ck_assert_uint_eq(strlen(str_at(o, "status.timestamp")), 24);
	/* The status message carries the progress text. */
	ck_assert_str_eq(str_at(o, "status.message.kind"), "message");
	ck_assert_str_eq(str_at(o, "status.message.role"), "agent");
	ck_assert_str_eq(str_at(o, "status.message.parts.0.kind"), "text");
	ck_assert_str_eq(str_at(o, "status.message.parts.0.text"),
	    "step 2 of 3");
	ck_assert_str_eq(str_at(o, "status.message.taskId"), t->id);
	ck_assert_uint_eq(len_at(o, "artifacts"), 0);
	ck_assert_str_eq(str_at(o, "metadata.operation"), "diag.timer");
	ck_assert(json_object_equal(at(o, "metadata.progress"), t->progress));
	/* History: every message, in order, in v0.3 form. */
	ck_assert_uint_eq(len_at(o, "history"), 3);
	ck_assert_str_eq(str_at(o, "history.0.kind"), "message");
	ck_assert_str_eq(str_at(o, "history.0.role"), "user");
	ck_assert_str_eq(str_at(o, "history.0.parts.0.kind"), "text");
	ck_assert_str_eq(str_at(o, "history.0.parts.0.text"), "one");
	ck_assert_str_eq(str_at(o, "history.0.taskId"), t->id);
	ck_assert_str_eq(str_at(o, "history.0.contextId"), t->context_id);
	ck_assert_str_eq(str_at(o, "history.1.role"), "agent");
	ck_assert_str_eq(str_at(o, "history.1.parts.0.text"), "two");
	ck_assert_str_eq(str_at(o, "history.2.messageId"), "m3");
	ck_assert_str_eq(str_at(o, "history.2.parts.0.kind"), "data");
	ck_assert_uint_eq(len_at(o, "history.2.parts.0.data.k"), 2);
	ck_assert_str_eq(str_at(o, "history.2.parts.1.kind"), "file");
	ck_assert_str_eq(str_at(o, "history.2.parts.1.file.uri"),
	    "https://x.example/v.mp4");
	ck_assert_str_eq(str_at(o, "history.2.parts.1.file.name"), "v.mp4");
	ck_assert_str_eq(str_at(o, "history.2.parts.1.file.mimeType"),
	    "video/mp4");
	/* The internal timestamp is not a wire field of Message. */
	ck_assert(!has(o, "history.0.timestamp"));
	json_object_put(o);
	task_free(t);
}
END_TEST

START_TEST(test_task_v10)
{
	struct task *t = sample_task();
	json_object *o = render_task(t, A2A_V10, -1);

	ck_assert(!has(o, "kind"));
	ck_assert_str_eq(str_at(o, "id"), t->id);
	ck_assert_str_eq(str_at(o, "contextId"), t->context_id);
	ck_assert_str_eq(str_at(o, "status.state"), "TASK_STATE_WORKING");
	ck_assert(!has(o, "status.message.kind"));
	ck_assert_str_eq(str_at(o, "status.message.role"), "ROLE_AGENT");
	ck_assert_str_eq(str_at(o, "status.message.parts.0.text"),
	    "step 2 of 3");
	ck_assert(!has(o, "status.message.parts.0.kind"));
	ck_assert_uint_eq(len_at(o, "history"), 3);
	ck_assert(!has(o, "history.0.kind"));
	ck_assert_str_eq(str_at(o, "history.0.role"), "ROLE_USER");
	ck_assert_str_eq(str_at(o, "history.1.role"), "ROLE_AGENT");
	ck_assert_str_eq(str_at(o, "history.0.parts.0.text"), "one");
	ck_assert(!has(o, "history.0.parts.0.kind"));
	ck_assert_uint_eq(len_at(o, "history.2.parts.0.data.k"), 2);
	ck_assert(!has(o, "history.2.parts.0.kind"));
	ck_assert_str_eq(str_at(o, "history.2.parts.1.url"),
	    "https://x.example/v.mp4");
	ck_assert_str_eq(str_at(o, "history.2.parts.1.filename"), "v.mp4");
	ck_assert_str_eq(str_at(o, "history.2.parts.1.mediaType"), "video/mp4");
	ck_assert(!has(o, "history.2.parts.1.file"));
	json_object_put(o);
	task_free(t);
}
END_TEST

START_TEST(test_all_states)
{
	static const char *const v03[] = { "submitted", "working",
	    "input-required", "completed", "canceled", "failed", "rejected" };
	static const char *const v10[] = { "TASK_STATE_SUBMITTED",
	    "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED",
	    "TASK_STATE_COMPLETED", "TASK_STATE_CANCELED", "TASK_STATE_FAILED",
	    "TASK_STATE_REJECTED" };
	struct task *t = task_new("alice", "diag.timer", NULL, NULL);
	enum task_state s;

	for (s = TASK_SUBMITTED; s <= TASK_REJECTED; s++) {
		json_object *a, *b, *e, *f;
		bool final = false;

		t->state = s;
		a = render_task(t, A2A_V03, -1);
		b = render_task(t, A2A_V10, -1);
		ck_assert_str_eq(str_at(a, "status.state"), v03[s]);
		ck_assert_str_eq(str_at(b, "status.state"), v10[s]);
		/* Status events: v0.3 final at terminal and interrupted
		 * states; v1.0 has no final and wraps in statusUpdate. */
		e = render_status_event(t, A2A_V03);
		ck_assert_str_eq(str_at(e, "kind"), "status-update");
		ck_assert_str_eq(str_at(e, "taskId"), t->id);
		ck_assert_str_eq(str_at(e, "contextId"), t->context_id);
		ck_assert_str_eq(str_at(e, "status.state"), v03[s]);
		ck_assert(json_object_is_type(at(e, "final"),
		    json_type_boolean));
		final = json_object_get_boolean(at(e, "final"));
		ck_assert_msg(final == (task_state_terminal(s) ||
		    s == TASK_INPUT_REQUIRED), "final wrong for %s", v03[s]);
		f = render_status_event(t, A2A_V10);
		ck_assert_int_eq(json_object_object_length(f), 1);
		ck_assert_str_eq(str_at(f, "statusUpdate.taskId"), t->id);
		ck_assert_str_eq(str_at(f, "statusUpdate.contextId"),
		    t->context_id);
		ck_assert_str_eq(str_at(f, "statusUpdate.status.state"),
		    v10[s]);
		ck_assert(!has(f, "statusUpdate.final"));
		ck_assert(!has(f, "statusUpdate.kind"));
		json_object_put(a);
		json_object_put(b);
		json_object_put(e);
		json_object_put(f);
	}
	task_free(t);
}
END_TEST

START_TEST(test_history_len)
{
	struct task *t = sample_task();
	json_object *o;
	int d;

	for (d = A2A_V03; d <= A2A_V10; d++) {
		o = render_task(t, (enum a2a_dialect)d, 0);
		ck_assert(!has(o, "history"));
		ck_assert(has(o, "status"));
		json_object_put(o);
		o = render_task(t, (enum a2a_dialect)d, 2);
		ck_assert_uint_eq(len_at(o, "history"), 2);
		ck_assert_str_eq(str_at(o, "history.0.parts.0.text"), "two");
		ck_assert_str_eq(str_at(o, "history.1.messageId"), "m3");
		json_object_put(o);
		o = render_task(t, (enum a2a_dialect)d, 1);
		ck_assert_uint_eq(len_at(o, "history"), 1);
		ck_assert_str_eq(str_at(o, "history.0.messageId"), "m3");
		json_object_put(o);
		o = render_task(t, (enum a2a_dialect)d, 3);
		ck_assert_uint_eq(len_at(o, "history"), 3);
		json_object_put(o);
		o = render_task(t, (enum a2a_dialect)d, 100);
		ck_assert_uint_eq(len_at(o, "history"), 3);
		ck_assert_str_eq(str_at(o, "history.0.parts.0.text"), "one");
		json_object_put(o);
	}
	task_free(t);
}
END_TEST

START_TEST(test_failed_and_canceled_status)
{
	struct task *t = task_new("alice", "diag.timer", NULL, NULL);
	json_object *o;

	task_fail(t, "diag_failure", "injected at step 2");
	o = render_task(t, A2A_V03, -1);
	ck_assert_str_eq(str_at(o, "status.state"), "failed");
	ck_assert_str_eq(str_at(o, "status.message.parts.0.text"),
	    "diag_failure: injected at step 2");
	ck_assert_str_eq(str_at(o, "metadata.error.code"), "diag_failure");
	json_object_put(o);
	task_free(t);

	t = task_new("alice", "diag.timer", NULL, NULL);
	task_set_state(t, TASK_CANCELED);
	o = render_task(t, A2A_V10, -1);
	ck_assert_str_eq(str_at(o, "status.state"), "TASK_STATE_CANCELED");
	ck_assert_ptr_nonnull(strstr(str_at(o, "status.message.parts.0.text"),
	    "canceled"));
	json_object_put(o);
	task_free(t);

	/* A fresh task has no status message at all. */
	t = task_new("alice", "diag.timer", NULL, NULL);
	o = render_task(t, A2A_V03, -1);
	ck_assert(!has(o, "status.message"));
	ck_assert(!has(o, "metadata.progress"));
	ck_assert(!has(o, "metadata.error"));
	json_object_put(o);
	task_free(t);
}
END_TEST

START_TEST(test_artifacts)
{
	struct task *t = task_new("alice", "instag.fetch_results", NULL, NULL);
	json_object *ev, *e, *o;
	char rid[UUID_STR_LEN + 8];

	/* Nothing to show yet. */
	ev = render_artifact_events(t, A2A_V03);
	ck_assert(json_object_is_type(ev, json_type_array));
	ck_assert_uint_eq(json_object_array_length(ev), 0);
	json_object_put(ev);

	json_object_array_add(t->artifacts, json_tokener_parse(
	    "{\"artifactId\":\"a1\",\"name\":\"out.mp4\",\"uri\":"
	    "\"https://agents.example.org/artifacts/a1/out.mp4\","
	    "\"mimeType\":\"video/mp4\"}"));
	task_complete(t, json_tokener_parse("{\"steps\":3}"));
	snprintf(rid, sizeof(rid), "%s-result", t->id);

	ev = render_artifact_events(t, A2A_V03);
	ck_assert_uint_eq(json_object_array_length(ev), 2);
	e = json_object_array_get_idx(ev, 0);
	ck_assert_str_eq(str_at(e, "kind"), "artifact-update");
	ck_assert_str_eq(str_at(e, "taskId"), t->id);
	ck_assert_str_eq(str_at(e, "contextId"), t->context_id);
	ck_assert_str_eq(str_at(e, "artifact.artifactId"), rid);
	ck_assert_str_eq(str_at(e, "artifact.name"), "result");
	ck_assert_str_eq(str_at(e, "artifact.parts.0.kind"), "data");
	ck_assert(json_object_equal(at(e, "artifact.parts.0.data"), t->result));
	ck_assert(!json_object_get_boolean(at(e, "append")));
	ck_assert(json_object_get_boolean(at(e, "lastChunk")));
	e = json_object_array_get_idx(ev, 1);
	ck_assert_str_eq(str_at(e, "artifact.artifactId"), "a1");
	ck_assert_str_eq(str_at(e, "artifact.name"), "out.mp4");
	ck_assert_str_eq(str_at(e, "artifact.parts.0.kind"), "file");
	ck_assert_str_eq(str_at(e, "artifact.parts.0.file.uri"),
	    "https://agents.example.org/artifacts/a1/out.mp4");
	ck_assert_str_eq(str_at(e, "artifact.parts.0.file.mimeType"),
	    "video/mp4");
	json_object_put(ev);

	ev = render_artifact_events(t, A2A_V10);
	ck_assert_uint_eq(json_object_array_length(ev), 2);
	e = json_object_array_get_idx(ev, 0);
	ck_assert_int_eq(json_object_object_length(e), 1);
	ck_assert(!has(e, "artifactUpdate.kind"));
	ck_assert_str_eq(str_at(e, "artifactUpdate.taskId"), t->id);
	ck_assert_str_eq(str_at(e, "artifactUpdate.artifact.artifactId"), rid);
	ck_assert(!has(e, "artifactUpdate.artifact.parts.0.kind"));
	ck_assert(json_object_equal(
	    at(e, "artifactUpdate.artifact.parts.0.data"), t->result));
	e = json_object_array_get_idx(ev, 1);
	ck_assert_str_eq(str_at(e, "artifactUpdate.artifact.parts.0.url"),
	    "https://agents.example.org/artifacts/a1/out.mp4");
	ck_assert_str_eq(str_at(e, "artifactUpdate.artifact.parts.0.filename"),
	    "out.mp4");
	ck_assert_str_eq(str_at(e, "artifactUpdate.artifact.parts.0.mediaType"),
	    "video/mp4");
	json_object_put(ev);

	/* The task itself lists the same artifacts. */
	o = render_task(t, A2A_V03, 0);
	ck_assert_uint_eq(len_at(o, "artifacts"), 2);
	ck_assert_str_eq(str_at(o, "artifacts.0.artifactId"), rid);
	ck_assert_str_eq(str_at(o, "artifacts.1.artifactId"), "a1");
	json_object_put(o);

	/* Stream task: v0.3 the Task itself, v1.0 wrapped in "task". */
	o = render_stream_task(t, A2A_V03);
	ck_assert_str_eq(str_at(o, "kind"), "task");
	ck_assert_str_eq(str_at(o, "id"), t->id);
	json_object_put(o);
	o = render_stream_task(t, A2A_V10);
	ck_assert_int_eq(json_object_object_length(o), 1);
	ck_assert_str_eq(str_at(o, "task.id"), t->id);
	ck_assert_str_eq(str_at(o, "task.status.state"),
	    "TASK_STATE_COMPLETED");
	json_object_put(o);
	task_free(t);
}
END_TEST

/* ---- JSON-RPC envelopes ------------------------------------------------- */

START_TEST(test_rpc_result_error)
{
	json_object *id = json_object_new_int(7),
	    *sid = json_object_new_string("r-1");
	json_object *o;

	o = render_rpc_result(id, json_tokener_parse("{\"ok\":true}"));
	ck_assert_str_eq(str_at(o, "jsonrpc"), "2.0");
	ck_assert_int_eq(json_object_get_int(at(o, "id")), 7);
	ck_assert_ptr_ne(at(o, "id"), id);	/* copied */
	ck_assert(json_object_get_boolean(at(o, "result.ok")));
	ck_assert(!has(o, "error"));
	json_object_put(o);

	/* v0.3: plain code and message. */
	o = render_rpc_error(sid, A2A_V03, A2A_TASK_NOT_FOUND, "no such task");
	ck_assert_str_eq(str_at(o, "jsonrpc"), "2.0");
	ck_assert_str_eq(str_at(o, "id"), "r-1");
	ck_assert_int_eq(json_object_get_int(at(o, "error.code")), -32001);
	ck_assert_str_eq(str_at(o, "error.message"), "no such task");
	ck_assert(!has(o, "error.data"));
	ck_assert(!has(o, "result"));
	json_object_put(o);

	/* v1.0: ErrorInfo in data[]. */
	o = render_rpc_error(sid, A2A_V10, A2A_TASK_NOT_FOUND, "no such task");
	ck_assert_int_eq(json_object_get_int(at(o, "error.code")), -32001);
	ck_assert_uint_eq(len_at(o, "error.data"), 1);
	ck_assert_str_eq(str_at(o, "error.data.0.@type"),
	    "type.googleapis.com/google.rpc.ErrorInfo");
	ck_assert_str_eq(str_at(o, "error.data.0.reason"), "TASK_NOT_FOUND");
	ck_assert_str_eq(str_at(o, "error.data.0.domain"), "a2a-protocol.org");
	json_object_put(o);
	o = render_rpc_error(sid, A2A_V10, RPC_METHOD_NOT_FOUND, "x");
	ck_assert_str_eq(str_at(o, "error.data.0.reason"), "METHOD_NOT_FOUND");
	json_object_put(o);
	o = render_rpc_error(sid, A2A_V10, A2A_TASK_NOT_CANCELABLE, "x");
	ck_assert_str_eq(str_at(o, "error.data.0.reason"),
	    "TASK_NOT_CANCELABLE");
	json_object_put(o);
	o = render_rpc_error(sid, A2A_V10, A2A_VERSION_NOT_SUPPORTED, "x");
	ck_assert_str_eq(str_at(o, "error.data.0.reason"),
	    "VERSION_NOT_SUPPORTED");
	json_object_put(o);
	o = render_rpc_error(sid, A2A_V10, RPC_INTERNAL_ERROR, "x");
	ck_assert_str_eq(str_at(o, "error.data.0.reason"), "INTERNAL_ERROR");
	json_object_put(o);

	/* A missing id is JSON null, present. */
	o = render_rpc_error(NULL, A2A_V03, RPC_PARSE_ERROR, "bad");
	ck_assert(json_object_object_get_ex(o, "id", NULL));
	ck_assert_ptr_null(at(o, "id"));
	ck_assert_int_eq(json_object_get_int(at(o, "error.code")), -32700);
	json_object_put(o);
	json_object_put(id);
	json_object_put(sid);
}
END_TEST

/* ---- cards -------------------------------------------------------------- */

START_TEST(test_card_a2a)
{
	struct config *cfg = tu_config(
	    "public_url = https://agents.example.org/agents/instag/\n"
	    "agent_name = Test Agent\n");
	json_object *c, *ifs, *skills, *parsed;
	size_t i, n;
	bool v10 = false, v03 = false;
	char etag[64];

	card_init(cfg);
	c = card_a2a();
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(str_at(c, "protocolVersion"), "0.3.0");
	ck_assert_str_eq(str_at(c, "name"), "Test Agent");
	ck_assert_str_eq(str_at(c, "url"),
	    "https://agents.example.org/agents/instag/a2a");
	ck_assert_str_ne(str_at(c, "version"), "");
	ck_assert_str_ne(str_at(c, "description"), "");
	ck_assert(json_object_get_boolean(at(c, "capabilities.streaming")));
	ck_assert(json_object_get_boolean(at(c,
	    "capabilities.pushNotifications")));
	ck_assert_uint_gt(len_at(c, "defaultInputModes"), 0);
	ck_assert_uint_gt(len_at(c, "defaultOutputModes"), 0);
	/* v1.0 interfaces: 1.0 (preferred, first) and 0.3, same URL. */
	ifs = at(c, "supportedInterfaces");
	ck_assert_ptr_nonnull(ifs);
	n = json_object_array_length(ifs);
	ck_assert_uint_ge(n, 2);
	ck_assert_str_eq(str_at(ifs, "0.protocolVersion"), "1.0");
	for (i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(ifs, i);
		const char *pv = ju_str(x, "protocolVersion");
		ck_assert_ptr_nonnull(pv);
		v10 |= strcmp(pv, "1.0") == 0;
		v03 |= strcmp(pv, "0.3") == 0;
		ck_assert_str_eq(ju_str(x, "url"),
		    "https://agents.example.org/agents/instag/a2a");
		ck_assert_str_eq(ju_str(x, "protocolBinding"), "JSONRPC");
	}
	ck_assert(v10 && v03);
	/* Skills: non-empty, each an operation of the table; no
	 * diagnostics while they are off. */
	skills = at(c, "skills");
	ck_assert_ptr_nonnull(skills);
	n = json_object_array_length(skills);
	ck_assert_uint_gt(n, 0);
	for (i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(skills, i);
		ck_assert_ptr_nonnull(ops_find(ju_str(s, "id")));
		ck_assert_str_ne(ju_str(s, "id"), "diag.timer");
		ck_assert_ptr_nonnull(ju_str(s, "name"));
		ck_assert_ptr_nonnull(ju_str(s, "description"));
		ck_assert_ptr_nonnull(ju_arr(s, "tags"));
		ck_assert_uint_gt(json_object_array_length(ju_arr(s, "tags")),
		    0);
	}
	ck_assert(has(c, "securitySchemes.bearer"));
	/* v0.3: every key the v0.3 AgentCard schema requires; each scheme
	 * discriminated by "type" */
	{
		static const char *const req03[] = { "capabilities",
		    "defaultInputModes", "defaultOutputModes", "description",
		    "name", "protocolVersion", "skills", "url", "version",
		    NULL };
		json_object *v1;

		for (i = 0; req03[i]; i++)
			ck_assert_msg(has(c, req03[i]), "v0.3 lacks %s",
			    req03[i]);
		ck_assert_str_eq(str_at(c, "securitySchemes.bearer.type"),
		    "http");
		ck_assert_str_eq(str_at(c, "securitySchemes.bearer.scheme"),
		    "bearer");
		/* v1.0: what v1.0 requires, nothing it removed, and each
		 * scheme exactly one oneof key */
		v1 = card_a2a_v1();
		for (i = 0; req03[i]; i++) {
			bool removed = !strcmp(req03[i], "protocolVersion") ||
			    !strcmp(req03[i], "url");
			ck_assert_msg(has(v1, req03[i]) != removed,
			    "v1.0 card and %s", req03[i]);
		}
		ck_assert(has(v1, "supportedInterfaces"));
		ck_assert(has(v1, "securityRequirements"));
		ck_assert(!has(v1, "preferredTransport"));
		ck_assert(!has(v1, "additionalInterfaces"));
		ck_assert(!has(v1, "security"));
		ck_assert(!has(v1, "capabilities.stateTransitionHistory"));
		{
			json_object *ss = at(v1, "securitySchemes");
			ck_assert_ptr_nonnull(ss);
			json_object_object_foreach(ss, nm, s) {
				(void)nm;
				ck_assert_int_eq(json_object_object_length(s),
				    1);
				ck_assert_ptr_nonnull(ju_obj(s,
				    "httpAuthSecurityScheme"));
			}
		}
		ck_assert_str_eq(str_at(v1,
		    "securitySchemes.bearer.httpAuthSecurityScheme.scheme"),
		    "Bearer");
		parsed = json_tokener_parse(card_a2a_v1_text());
		ck_assert(json_object_equal(parsed, v1));
		json_object_put(parsed);
		ck_assert_str_ne(card_a2a_v1_etag(), card_a2a_etag());
		json_object_put(v1);
	}
	/* The text is the same card; the ETag is quoted. */
	parsed = json_tokener_parse(card_a2a_text());
	ck_assert(json_object_equal(parsed, c));
	json_object_put(parsed);
	snprintf(etag, sizeof(etag), "%s", card_a2a_etag());
	ck_assert_uint_gt(strlen(etag), 2);
	ck_assert(etag[0] == '"' && etag[strlen(etag) - 1] == '"');
	json_object_put(c);
	config_free(cfg);

	/* With diagnostics on, diag.timer is a skill and the ETag changes. */
	cfg = tu_config(
	    "public_url = https://agents.example.org/agents/instag\n"
	    "agent_name = Test Agent\ndiagnostics = true\n");
	card_init(cfg);
	c = card_a2a();
	skills = at(c, "skills");
	n = json_object_array_length(skills);
	for (i = 0; i < n; i++)
		if (strcmp(str_at(json_object_array_get_idx(skills, i), "id"),
		    "diag.timer") == 0)
			break;
	ck_assert_uint_lt(i, n);
	ck_assert_str_ne(card_a2a_etag(), etag);
	json_object_put(c);
	card_free();
	card_free();
	config_free(cfg);
}
END_TEST

START_TEST(test_card_umbrella)
{
	static const char *const keys[] = { "id", "name", "version",
	    "description", "capabilities", "endpoints", "authentication" };
	struct config *cfg = tu_config(
	    "public_url = https://agents.example.org/agents/instag\n"
	    "agent_id = instag_test\n");
	json_object *c, *parsed, *caps;
	size_t i, n;
	bool req = false, disc = false;

	card_init(cfg);
	c = card_umbrella();
	ck_assert_ptr_nonnull(c);
	/* Exactly these seven keys. */
	ck_assert_int_eq(json_object_object_length(c), 7);
	for (i = 0; i < 7; i++)
		ck_assert_msg(has(c, keys[i]), "umbrella card lacks %s",
		    keys[i]);
	ck_assert_str_eq(str_at(c, "id"), "instag_test");
	ck_assert_str_eq(str_at(c, "name"), cfg->agent_name);
	ck_assert_str_ne(str_at(c, "version"), "");
	ck_assert_str_ne(str_at(c, "description"), "");
	caps = at(c, "capabilities");
	ck_assert(json_object_is_type(caps, json_type_array));
	n = json_object_array_length(caps);
	for (i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(caps, i);
		ck_assert(json_object_is_type(x, json_type_string));
		req |= strcmp(json_object_get_string(x), "task_request") == 0;
		disc |= strcmp(json_object_get_string(x),
		    "agent_discovery") == 0;
		ck_assert_str_ne(json_object_get_string(x), "diag.timer");
	}
	ck_assert(req && disc);
	/* endpoints: a map of strings. */
	ck_assert(json_object_is_type(at(c, "endpoints"), json_type_object));
	ck_assert_uint_gt(json_object_object_length(at(c, "endpoints")), 0);
	{
		json_object_object_foreach(at(c, "endpoints"), k, v) {
			ck_assert_msg(json_object_is_type(v, json_type_string),
			    "endpoints.%s is not a string", k);
		}
	}
	ck_assert_str_eq(str_at(c, "endpoints.a2a"), "/agents/instag/api/a2a");
	ck_assert(json_object_is_type(at(c, "authentication"),
	    json_type_object));
	parsed = json_tokener_parse(card_umbrella_text());
	ck_assert(json_object_equal(parsed, c));
	json_object_put(parsed);
	json_object_put(c);
	card_free();
	config_free(cfg);
}
END_TEST

/* Request threads take cards at the same time.  json-c 0.16's reference
 * count is not atomic, so handing out shared references corrupted the
 * card (the agent crashed under concurrent discovery); each caller must
 * get an object of its own. */
static void *
card_taker(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 20000; i++) {
		json_object *a = card_umbrella(), *b = card_a2a();
		json_object_put(a);
		json_object_put(b);
	}
	return NULL;
}

START_TEST(test_cards_from_many_threads)
{
	struct config *cfg = tu_config("");
	json_object *a, *b;
	pthread_t th[4];
	int i;

	card_init(cfg);
	a = card_umbrella();
	b = card_umbrella();
	ck_assert_ptr_ne(a, b);		/* copies, not shared references */
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, card_taker,
		    NULL), 0);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	json_object_put(a);
	json_object_put(b);
	/* The module's own card survived intact. */
	a = card_umbrella();
	ck_assert_str_eq(
	    json_object_get_string(json_object_object_get(a, "id")),
	    "instag_runpod_agent");
	json_object_put(a);
	card_free();
	config_free(cfg);
}
END_TEST

static Suite *
a2a_render_suite(void)
{
	Suite *s = suite_create("a2a_render");
	TCase *tc = tcase_create("core");

	log_set_level(LOG_WARN);
	tcase_add_test(tc, test_task_v03);
	tcase_add_test(tc, test_task_v10);
	tcase_add_test(tc, test_all_states);
	tcase_add_test(tc, test_history_len);
	tcase_add_test(tc, test_failed_and_canceled_status);
	tcase_add_test(tc, test_artifacts);
	tcase_add_test(tc, test_rpc_result_error);
	tcase_add_test(tc, test_card_a2a);
	tcase_add_test(tc, test_card_umbrella);
	tcase_add_test(tc, test_cards_from_many_threads);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { a2a_render_suite })
