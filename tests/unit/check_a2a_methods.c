/* SPDX-License-Identifier: MIT */
/*
 * The A2A methods without FastCGI: a2a_call() runs one JSON-RPC request
 * against a real executor and store and returns the reply it would send
 * (a JSON body, a 403, or a hand-over to the event hub).
 */
#include "auto-config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/a2a.h"
#include "a2a/notify.h"
#include "a2a/rpc.h"
#include "core/config.h"
#include "core/principal.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "ops/ops.h"
#include "store/store.h"
#include "tasks/tasks.h"
#include "tasks/tcache.h"
#include "lib/xalloc.h"
#include "testutil.h"

struct env {
	char dir[512];
	struct config *cfg;
	struct store *st;
	struct principal alice, bob, reader;
};

static void
listener(const struct task *t)
{
	notify_task_changed(t);
}

static void
env_start(struct env *w)
{
	char *err = NULL;

	memset(w, 0, sizeof(*w));
	tu_subdir_make(tu_topdir(), w->dir, sizeof(w->dir));
	w->cfg = tu_configf("store_path = %s/tasks.db\ndiagnostics = true\n"
	    "artifact_dir = %s\n", w->dir, w->dir);
	ck_assert_msg(store_open(w->cfg->store_path, NULL, &w->st, &err) == 0,
	    "store_open: %s", err ? err : "?");
	ck_assert_msg(tasks_start(w->cfg, w->st, listener, ops_resolve,
	    &err) == 0, "tasks_start: %s", err ? err : "?");
	notify_init(w->st);
	a2a_init(w->cfg);
	tu_principal(&w->alice, "alice", "tasks:read tasks:write diag:run");
	tu_principal(&w->bob, "bob", "tasks:read tasks:write diag:run");
	tu_principal(&w->reader, "carol", "tasks:read");
}

static void
env_stop(struct env *w)
{
	tasks_stop(2);
	store_close(w->st);
	config_free(w->cfg);
	principal_clear(&w->alice);
	principal_clear(&w->bob);
	principal_clear(&w->reader);
}

/* Run body (JSON text) as who; the reply into *out (caller clears), its
 * body as a client reads it: serialized as the agent sends it, parsed
 * back (a cached rendering is text in the reply, not a tree). */
static void
call(const struct principal *who, const char *ver, const char *body,
    struct rpc_reply *out)
{
	a2a_call(who, ver, body, strlen(body), out);
	if (out->body != NULL) {
		json_object *wire = json_tokener_parse(
		    json_object_to_json_string_ext(out->body,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

		ck_assert_ptr_nonnull(wire);
		json_object_put(out->body);
		out->body = wire;
	}
}

/* The JSON-RPC error code of a JSON reply (0 when it is a result). */
static int
error_code(const struct rpc_reply *r)
{
	json_object *e;
	int64_t code = 0;

	ck_assert_int_eq(r->kind, RPC_REPLY_JSON);
	ck_assert_ptr_nonnull(r->body);
	if (!json_object_object_get_ex(r->body, "error", &e))
		return 0;
	ck_assert_int_eq(ju_int(e, "code", &code), 0);
	ck_assert_int_eq((int)code, r->rpc_error);
	return (int)code;
}

/* The result object of a JSON reply. */
static json_object *
result_of(const struct rpc_reply *r)
{
	json_object *res;

	ck_assert_int_eq(error_code(r), 0);
	ck_assert(json_object_object_get_ex(r->body, "result", &res));
	return res;
}

/* A v0.3 message/send of diag.timer (steps x interval_ms); blocking as
 * given.  The new task's id into id. */
static void
send_timer(const struct principal *who, int steps, int interval_ms,
    bool blocking, struct rpc_reply *out, char *id, size_t idlen)
{
	char body[1024];

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":7,"
	    "\"method\":\"message/send\",\"params\":{\"message\":{"
	    "\"messageId\":\"m1\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"diag.timer\",\"params\":{"
	    "\"steps\":%d,\"interval_ms\":%d}}}]},\"configuration\":{"
	    "\"blocking\":%s}}}", steps, interval_ms,
	    blocking ? "true" : "false");
	call(who, NULL, body, out);
	if (id != NULL) {
		json_object *res = out->kind == RPC_REPLY_JSON ?
		    result_of(out) : NULL;
		const char *tid = res ? ju_str(res, "id") : out->task_id;
		ck_assert_ptr_nonnull(tid);
		snprintf(id, idlen, "%s", tid);
	}
}

/* The reply's error message is valid UTF-8. */
static void
assert_message_utf8(const struct rpc_reply *r)
{
	const char *m = ju_str(ju_obj(r->body, "error"), "message");

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(ju_utf8_check(m, strlen(m)), strlen(m));
}

/*
 * A client's string quoted in an error message is cut on a character
 * boundary, and a non-ASCII A2A-Version header is not echoed: the answer
 * stays valid UTF-8 (found by fuzz/fuzz_envelope, "%.64s" cutting a
 * 3-byte character).  62 ';' then U+D3DA: the 64-byte cut fell inside it.
 */
START_TEST(test_error_messages_utf8)
{
	static const char name[] = ";;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;"
	    ";;;;;;;;;;;;;;;;;;;;;;\xed\x8f\x9a\xed\x8f\x9a";
	struct env w;
	struct rpc_reply r;
	char body[1024];

	env_start(&w);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"%s\"}", name);
	call(&w.alice, NULL, body, &r);
	ck_assert_int_eq(error_code(&r), RPC_METHOD_NOT_FOUND);
	assert_message_utf8(&r);
	rpc_reply_clear(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":2,"
	    "\"method\":\"message/send\",\"params\":{\"message\":{"
	    "\"messageId\":\"m1\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"%s\"}}]}}}", name);
	call(&w.alice, NULL, body, &r);
	ck_assert_int_ne(error_code(&r), 0);
	assert_message_utf8(&r);
	rpc_reply_clear(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":3,"
	    "\"method\":\"message/send\",\"params\":{\"message\":{"
	    "\"messageId\":\"m2\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"tasks.list\",\"params\":"
	    "{\"%s\":1}}}]}}}", name);
	call(&w.alice, NULL, body, &r);
	ck_assert_int_ne(error_code(&r), 0);
	assert_message_utf8(&r);
	rpc_reply_clear(&r);
	call(&w.alice, "1.0\xff\xfe", "{}", &r);
	ck_assert_int_eq(error_code(&r), A2A_VERSION_NOT_SUPPORTED);
	assert_message_utf8(&r);
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

START_TEST(test_rpc_errors)
{
	struct env w;
	struct rpc_reply r;

	env_start(&w);
	call(&w.alice, NULL, "{\"jsonrpc\":\"2.0\",", &r);
	ck_assert_int_eq(error_code(&r), RPC_PARSE_ERROR);
	rpc_reply_clear(&r);
	call(&w.alice, NULL, "[]", &r);
	ck_assert_int_eq(error_code(&r), RPC_INVALID_REQUEST);
	rpc_reply_clear(&r);
	call(&w.alice, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"tasks/nope\"}", &r);
	ck_assert_int_eq(error_code(&r), RPC_METHOD_NOT_FOUND);
	rpc_reply_clear(&r);
	call(&w.alice, "9.9", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"GetTask\",\"params\":{\"id\":\"x\"}}", &r);
	ck_assert_int_eq(error_code(&r), A2A_VERSION_NOT_SUPPORTED);
	rpc_reply_clear(&r);
	call(&w.alice, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"tasks/get\",\"params\":[1]}", &r);
	ck_assert_int_eq(error_code(&r), RPC_INVALID_PARAMS);
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

START_TEST(test_send_and_get)
{
	struct env w;
	struct rpc_reply r;
	char id[64], body[512];
	json_object *res;

	env_start(&w);
	send_timer(&w.alice, 2, 10, false, &r, id, sizeof(id));
	res = result_of(&r);
	ck_assert_str_eq(ju_str(res, "kind"), "task");
	rpc_reply_clear(&r);

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":\"g\","
	    "\"method\":\"tasks/get\",\"params\":{\"id\":\"%s\"}}", id);
	call(&w.alice, NULL, body, &r);
	res = result_of(&r);
	ck_assert_str_eq(ju_str(res, "id"), id);
	rpc_reply_clear(&r);
	/* Someone else's task does not exist for them. */
	call(&w.bob, NULL, body, &r);
	ck_assert_int_eq(error_code(&r), A2A_TASK_NOT_FOUND);
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

/* A poll of tasks/get until the task's state is want. */
struct get_watch {
	const struct principal *who;
	const char *body;
	const char *want;
};

static bool
get_state_is(void *arg)
{
	struct get_watch *g = arg;
	struct rpc_reply r;
	json_object *st;
	bool done;

	call(g->who, NULL, g->body, &r);
	st = ju_obj(result_of(&r), "status");
	done = strcmp(ju_str(st, "state"), g->want) == 0;
	rpc_reply_clear(&r);
	return done;
}

/* Does a message with text in the history of res? */
static bool
history_has(json_object *res, const char *text)
{
	json_object *h = ju_arr(res, "history");
	size_t i, j;

	for (i = 0; h != NULL && i < json_object_array_length(h); i++) {
		json_object *parts = ju_arr(json_object_array_get_idx(h, i),
		    "parts");
		for (j = 0; parts && j < json_object_array_length(parts); j++)
			if (ju_str(json_object_array_get_idx(parts, j),
			    "text") && strcmp(ju_str(json_object_array_get_idx(
			    parts, j), "text"), text) == 0)
				return true;
	}
	return false;
}

/* Reads come from the rendered-task cache, and a change is never
 * answered stale: tasks/get polled while the task runs sees it finish
 * (each poll may cache the write it read); a repeated read is a hit with
 * the same answer; a follow-up message shows in the next read; another
 * owner still finds nothing, though the task is cached; ListTasks shows
 * the latest write too. */
START_TEST(test_get_cached_never_stale)
{
	struct env w;
	struct rpc_reply r;
	struct tcache_stats s0, s1;
	char id[64], body[512], body2[512], *a, *b;
	struct get_watch g;
	json_object *res, *tasks;

	env_start(&w);
	tcache_clear();
	send_timer(&w.alice, 3, 20, false, &r, id, sizeof(id));
	rpc_reply_clear(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":\"g\","
	    "\"method\":\"tasks/get\",\"params\":{\"id\":\"%s\","
	    "\"historyLength\":20}}", id);
	g.who = &w.alice;
	g.body = body;
	g.want = "completed";
	ck_assert_msg(tu_poll(get_state_is, &g, TU_HANG_MS),
	    "tasks/get never answered the task completed");

	call(&w.alice, NULL, body, &r);
	a = xstrdup(json_object_to_json_string(r.body));
	rpc_reply_clear(&r);
	tcache_get_stats(&s0);
	call(&w.alice, NULL, body, &r);
	b = xstrdup(json_object_to_json_string(r.body));
	rpc_reply_clear(&r);
	tcache_get_stats(&s1);
	ck_assert_str_eq(a, b);
	ck_assert_uint_eq(s1.hits, s0.hits + 1);
	free(a);
	free(b);

	/* Bob asks for alice's cached task. */
	call(&w.bob, NULL, body, &r);
	ck_assert_int_eq(error_code(&r), A2A_TASK_NOT_FOUND);
	rpc_reply_clear(&r);

	/* A follow-up message to the finished task: the next read has it. */
	snprintf(body2, sizeof(body2), "{\"jsonrpc\":\"2.0\",\"id\":\"f\","
	    "\"method\":\"message/send\",\"params\":{\"message\":{\"role\":"
	    "\"user\",\"messageId\":\"m-followup\",\"taskId\":\"%s\","
	    "\"parts\":[{\"kind\":\"text\",\"text\":\"one more thing\"}]}}}",
	    id);
	call(&w.alice, NULL, body2, &r);
	ck_assert_int_eq(error_code(&r), 0);
	rpc_reply_clear(&r);
	call(&w.alice, NULL, body, &r);
	res = result_of(&r);
	ck_assert_msg(history_has(res, "one more thing"),
	    "tasks/get answered a stale task: %s",
	    json_object_to_json_string(res));
	rpc_reply_clear(&r);

	/* v1.0 GetTask and ListTasks: the same, latest write. */
	snprintf(body2, sizeof(body2), "{\"jsonrpc\":\"2.0\",\"id\":\"g\","
	    "\"method\":\"GetTask\",\"params\":{\"id\":\"%s\","
	    "\"historyLength\":20}}", id);
	call(&w.alice, NULL, body2, &r);
	res = result_of(&r);
	ck_assert_str_eq(ju_str(ju_obj(res, "status"), "state"),
	    "TASK_STATE_COMPLETED");
	ck_assert(history_has(res, "one more thing"));
	rpc_reply_clear(&r);
	call(&w.alice, NULL, "{\"jsonrpc\":\"2.0\",\"id\":\"l\",\"method\":"
	    "\"ListTasks\",\"params\":{\"historyLength\":20}}", &r);
	res = result_of(&r);
	tasks = ju_arr(res, "tasks");
	ck_assert_uint_eq(json_object_array_length(tasks), 1);
	ck_assert_str_eq(ju_str(json_object_array_get_idx(tasks, 0), "id"),
	    id);
	ck_assert(history_has(json_object_array_get_idx(tasks, 0),
	    "one more thing"));
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

START_TEST(test_handover)
{
	struct env w;
	struct rpc_reply r;
	char id[64], body[512];

	env_start(&w);
	/* Blocking send of a task that takes a while: a wait in the hub,
	 * with the task as it stands now as the fallback answer. */
	send_timer(&w.alice, 3, 60000, true, &r, id, sizeof(id));
	ck_assert_int_eq(r.kind, RPC_REPLY_WAIT);
	ck_assert_int_gt(r.wait_s, 0);
	ck_assert_ptr_nonnull(r.body);
	ck_assert_int_eq(r.rpc_error, 0);
	rpc_reply_clear(&r);
	/* Resubscribe: a stream, with an error as the fallback. */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":3,"
	    "\"method\":\"tasks/resubscribe\",\"params\":{\"id\":\"%s\"}}",
	    id);
	call(&w.alice, NULL, body, &r);
	ck_assert_int_eq(r.kind, RPC_REPLY_STREAM);
	ck_assert_str_eq(r.task_id, id);
	ck_assert_int_eq(r.rpc_error, RPC_INTERNAL_ERROR);
	ck_assert_int_eq(r.d, A2A_V03);
	ck_assert_int_eq(json_object_get_int(r.id), 3);
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

START_TEST(test_scopes_and_op_errors)
{
	struct env w;
	struct rpc_reply r;
	json_object *e, *info, *meta;

	env_start(&w);
	/* A token without tasks:write cannot cancel: HTTP 403. */
	call(&w.reader, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"tasks/cancel\",\"params\":{\"id\":\"x\"}}", &r);
	ck_assert_int_eq(r.kind, RPC_REPLY_FORBIDDEN);
	ck_assert_ptr_nonnull(strstr(r.message, "tasks:write"));
	rpc_reply_clear(&r);
	/* An unknown operation: -32602 with the agent's code in the v1.0
	 * ErrorInfo's metadata. */
	call(&w.alice, "1.0", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"SendMessage\",\"params\":{\"message\":{\"messageId\":\"m\","
	    "\"role\":\"ROLE_USER\",\"parts\":[{\"data\":{\"operation\":"
	    "\"no.such\"}}]}}}", &r);
	ck_assert_int_eq(error_code(&r), RPC_INVALID_PARAMS);
	ck_assert(json_object_object_get_ex(r.body, "error", &e));
	info = json_object_array_get_idx(ju_arr(e, "data"), 0);
	meta = ju_obj(info, "metadata");
	ck_assert_str_eq(ju_str(meta, "agent_code"), "unknown_operation");
	rpc_reply_clear(&r);
	/* An operation whose params are wrong. */
	call(&w.alice, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"messageId\":\"m\","
	    "\"role\":\"user\",\"parts\":[{\"kind\":\"data\",\"data\":{"
	    "\"operation\":\"diag.timer\",\"params\":{\"steps\":\"$(id)\"}}}"
	    "]}}}", &r);
	ck_assert_int_eq(error_code(&r), RPC_INVALID_PARAMS);
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

/* A part's shape: v0.3 "kind", or v1.0 without a discriminator; a part
 * with a "type" (as the A2A conformance kit's unsupported-part probe
 * sends) or a "kind" that is no string is refused, not read as text. */
START_TEST(test_part_shapes)
{
	static const char *const bad[] = {
		"{\"type\":\"unsupported_type\",\"text\":\"x\"}",
		"{\"type\":\"text\",\"text\":\"x\"}",
		"{\"kind\":5,\"text\":\"x\"}",
		"{\"kind\":null,\"data\":{}}",
		"{\"kind\":\"video\",\"text\":\"x\"}",
	};
	static const char *const good[] = {
		"{\"kind\":\"text\",\"text\":\"x\"}",
		"{\"text\":\"x\"}",
		"{\"kind\":\"text\",\"text\":\"x\",\"type\":\"y\"}",
	};
	struct env w;
	struct rpc_reply r;
	char body[512];
	size_t i;

	env_start(&w);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\","
		    "\"id\":1,\"method\":\"message/send\",\"params\":{"
		    "\"message\":{\"messageId\":\"m\",\"role\":\"user\","
		    "\"parts\":[%s]}}}", bad[i]);
		call(&w.alice, NULL, body, &r);
		ck_assert_msg(error_code(&r) == RPC_INVALID_PARAMS,
		    "part %s: error %d", bad[i], error_code(&r));
		rpc_reply_clear(&r);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_object *res;

		snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\","
		    "\"id\":1,\"method\":\"message/send\",\"params\":{"
		    "\"message\":{\"messageId\":\"m\",\"role\":\"user\","
		    "\"parts\":[%s]}}}", good[i]);
		call(&w.alice, NULL, body, &r);
		res = result_of(&r);
		ck_assert_str_eq(ju_str(ju_obj(res, "status"), "state"),
		    "input-required");
		rpc_reply_clear(&r);
	}
	env_stop(&w);
}
END_TEST

START_TEST(test_help_and_list)
{
	struct env w;
	struct rpc_reply r;
	json_object *res, *tasks;
	char id[64];
	size_t i, n;

	env_start(&w);
	/* Text only: a task waiting for input, the catalogue its status
	 * message; a follow-up naming an operation runs it on that task. */
	call(&w.alice, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"messageId\":\"m\","
	    "\"role\":\"user\",\"parts\":[{\"kind\":\"text\",\"text\":"
	    "\"hello\"}]}}}", &r);
	res = result_of(&r);
	ck_assert_str_eq(ju_str(ju_obj(res, "status"), "state"),
	    "input-required");
	ck_assert_ptr_nonnull(strstr(json_object_to_json_string(ju_obj(res,
	    "status")), "diag.timer"));
	ck_assert_int_eq(r.kind, RPC_REPLY_JSON);	/* no blocking wait */
	snprintf(id, sizeof(id), "%s", ju_str(res, "id"));
	rpc_reply_clear(&r);
	{
		char body[1024];

		/* bad params: refused, the task still waits */
		snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":2,"
		    "\"method\":\"message/send\",\"params\":{\"message\":{"
		    "\"messageId\":\"m2\",\"role\":\"user\",\"taskId\":"
		    "\"%s\",\"parts\":[{\"kind\":\"data\",\"data\":{"
		    "\"operation\":\"diag.timer\",\"params\":{\"steps\":"
		    "\"x\"}}}]},\"configuration\":{\"blocking\":false}}}",
		    id);
		call(&w.alice, NULL, body, &r);
		ck_assert_int_eq(error_code(&r), RPC_INVALID_PARAMS);
		rpc_reply_clear(&r);
		/* bob cannot give it input */
		snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":2,"
		    "\"method\":\"message/send\",\"params\":{\"message\":{"
		    "\"messageId\":\"m2\",\"role\":\"user\",\"taskId\":"
		    "\"%s\",\"parts\":[{\"kind\":\"data\",\"data\":{"
		    "\"operation\":\"diag.timer\",\"params\":{\"steps\":"
		    "1,\"interval_ms\":10}}}]},\"configuration\":{"
		    "\"blocking\":false}}}", id);
		call(&w.bob, NULL, body, &r);
		ck_assert_int_eq(error_code(&r), A2A_TASK_NOT_FOUND);
		rpc_reply_clear(&r);
		call(&w.alice, NULL, body, &r);
		res = result_of(&r);
		ck_assert_str_eq(ju_str(res, "id"), id);
		ck_assert_str_eq(ju_str(ju_obj(res, "metadata"), "operation"),
		    "diag.timer");
		ck_assert_str_ne(ju_str(ju_obj(res, "status"), "state"),
		    "input-required");
		rpc_reply_clear(&r);
	}
	send_timer(&w.bob, 1, 10, false, &r, id, sizeof(id));
	rpc_reply_clear(&r);
	/* ListTasks shows alice her task and none of bob's. */
	call(&w.alice, "1.0", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"ListTasks\",\"params\":{}}", &r);
	res = result_of(&r);
	tasks = ju_arr(res, "tasks");
	n = json_object_array_length(tasks);
	ck_assert_uint_eq(n, 1);
	for (i = 0; i < n; i++)
		ck_assert_str_ne(ju_str(json_object_array_get_idx(tasks, i),
		    "id"), id);
	rpc_reply_clear(&r);
	call(&w.alice, "1.0", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"ListTasks\",\"params\":{\"pageSize\":0}}", &r);
	ck_assert_int_eq(error_code(&r), RPC_INVALID_PARAMS);
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

START_TEST(test_push_config)
{
	struct env w;
	struct rpc_reply r;
	char id[64], body[1024];

	env_start(&w);
	send_timer(&w.alice, 2, 60000, false, &r, id, sizeof(id));
	rpc_reply_clear(&r);
	/* Plain http and loopback URLs are refused before anything is
	 * kept. */
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"tasks/pushNotificationConfig/set\",\"params\":{"
	    "\"taskId\":\"%s\",\"pushNotificationConfig\":{\"url\":"
	    "\"http://127.0.0.1/hook\"}}}", id);
	call(&w.alice, NULL, body, &r);
	ck_assert_int_eq(error_code(&r), RPC_INVALID_PARAMS);
	rpc_reply_clear(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"tasks/pushNotificationConfig/list\",\"params\":{"
	    "\"id\":\"%s\"}}", id);
	call(&w.alice, NULL, body, &r);
	ck_assert_uint_eq(json_object_array_length(result_of(&r)), 0);
	rpc_reply_clear(&r);
	/* Not bob's task. */
	call(&w.bob, NULL, body, &r);
	ck_assert_int_eq(error_code(&r), A2A_TASK_NOT_FOUND);
	rpc_reply_clear(&r);
	env_stop(&w);
}
END_TEST

/* How many tasks notify watches for push configs (its metric). */
static long
watched(void)
{
	struct strbuf sb = SB_INIT;
	static const char name[] = "\ninstag_agent_push_watched_tasks ";
	const char *p;
	long n = -1;

	notify_metrics(&sb);
	if ((p = strstr(sb.buf, name)) != NULL)
		n = strtol(p + strlen(name), NULL, 10);
	sb_free(&sb);
	return n;
}

/* A task given a push config is watched until its terminal change, and
 * no longer after it: the set holds unfinished tasks, not every task
 * that ever had a config. */
START_TEST(test_push_watch)
{
	struct env w;
	struct rpc_reply r;
	struct push_config pc = { 0 };
	struct task *out = NULL;
	char id[64], id2[64], *err = NULL;
	int64_t deadline;

	env_start(&w);
	ck_assert_int_eq(watched(), 0);
	send_timer(&w.alice, 2, 60000, false, &r, id, sizeof(id));
	rpc_reply_clear(&r);
	send_timer(&w.alice, 2, 60000, false, &r, id2, sizeof(id2));
	rpc_reply_clear(&r);
	pc.id = (char *)"c1";
	pc.url = (char *)"https://hooks.example.org/cb";
	pc.created_ms = 1;
	pc.task_id = id;
	ck_assert_msg(notify_config_put(&pc, &err) == 0, "%s", err);
	pc.task_id = id2;
	ck_assert_msg(notify_config_put(&pc, &err) == 0, "%s", err);
	ck_assert_int_eq(watched(), 2);
	/* Its config gone (nothing to deliver), the task is canceled: its
	 * terminal change ends the watch; the other task's stays. */
	ck_assert_int_eq(notify_config_delete(id, "c1"), 0);
	ck_assert_int_eq(tasks_cancel(id, "alice", &out), TASKS_CANCEL_OK);
	task_free(out);
	deadline = tu_now_ms() + TU_HANG_MS;
	while (watched() != 1) {
		ck_assert_msg(tu_now_ms() < deadline, "still watched: %ld",
		    watched());
		tu_sleep_ms(10);
	}
	/* A config set again on a finished task watches it again. */
	pc.task_id = id;
	ck_assert_msg(notify_config_put(&pc, &err) == 0, "%s", err);
	ck_assert_int_eq(watched(), 2);
	ck_assert_int_eq(notify_config_delete(id2, "c1"), 0);
	env_stop(&w);
}
END_TEST

/* The watched set under many ids (it grows, and removals close the gaps
 * in its probe runs): after removing every other id, every id left is
 * still found, so none is lost to a notification.  An id is added by
 * notify_config_put even when the store refuses the config (no such
 * task), and removed by the terminal change of a task with that id. */
START_TEST(test_push_watch_many)
{
	struct env w;
	struct push_config pc = { 0 };
	struct task *t;
	static char ids[300][40];
	char *err = NULL;
	int i;

	env_start(&w);
	pc.id = (char *)"c";
	pc.url = (char *)"https://hooks.example.org/cb";
	for (i = 0; i < 300; i++) {
		snprintf(ids[i], sizeof(ids[i]),
		    "00000000-0000-4000-8000-%012d", i);
		pc.task_id = ids[i];
		ck_assert_int_eq(notify_config_put(&pc, &err), -1);
		free(err);
		err = NULL;
	}
	ck_assert_int_eq(watched(), 300);
	t = task_new("alice", "diag.timer", NULL, NULL);
	task_set_state(t, TASK_COMPLETED);
	for (i = 0; i < 300; i += 2) {
		memcpy(t->id, ids[i], sizeof(t->id));
		notify_task_changed(t);
	}
	ck_assert_int_eq(watched(), 150);
	for (i = 1; i < 300; i += 2) {	/* found: the count stays */
		pc.task_id = ids[i];
		ck_assert_int_eq(notify_config_put(&pc, &err), -1);
		free(err);
		err = NULL;
		ck_assert_int_eq(watched(), 150);
	}
	for (i = 1; i < 300; i += 2) {
		memcpy(t->id, ids[i], sizeof(t->id));
		notify_task_changed(t);
	}
	ck_assert_int_eq(watched(), 0);
	task_free(t);
	env_stop(&w);
}
END_TEST

static Suite *
a2a_methods_suite(void)
{
	Suite *s = suite_create("a2a_methods");
	TCase *tc = tcase_create("core");

	log_set_level(LOG_WARN);
	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rpc_errors);
	tcase_add_test(tc, test_error_messages_utf8);
	tcase_add_test(tc, test_send_and_get);
	tcase_add_test(tc, test_get_cached_never_stale);
	tcase_add_test(tc, test_handover);
	tcase_add_test(tc, test_scopes_and_op_errors);
	tcase_add_test(tc, test_part_shapes);
	tcase_add_test(tc, test_help_and_list);
	tcase_add_test(tc, test_push_config);
	tcase_add_test(tc, test_push_watch);
	tcase_add_test(tc, test_push_watch_many);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { a2a_methods_suite })
