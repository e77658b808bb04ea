/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "core/task.h"
#include "testutil.h"
#include "lib/uuid.h"

/* ---- uuid ------------------------------------------------------------- */

static void
assert_v4_shape(const char *u)
{
	int i;

	ck_assert_uint_eq(strlen(u), 36);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ck_assert_msg(u[i] == '-', "%s: no '-' at %d", u, i);
		else
			ck_assert_msg(isxdigit((unsigned char)u[i]) &&
			    !isupper((unsigned char)u[i]),
			    "%s: not lower-case hex at %d", u, i);
	}
	ck_assert_msg(u[14] == '4', "%s: version nibble is not 4", u);
	ck_assert_msg(strchr("89ab", u[19]) != NULL,
	    "%s: variant nibble is not 10xx", u);
	ck_assert(uuid_valid(u));
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

START_TEST(test_uuid_v4)
{
	static char ids[1000][UUID_STR_LEN];
	int i, seen_variant[4] = { 0 };

	for (i = 0; i < 1000; i++) {
		memset(ids[i], 'Z', UUID_STR_LEN);
		uuid_v4(ids[i]);
		ck_assert(ids[i][36] == '\0');
		assert_v4_shape(ids[i]);
		seen_variant[strchr("89ab", ids[i][19]) - "89ab"]++;
	}
	/* All four variant nibbles turn up: the other bits are random. */
	for (i = 0; i < 4; i++)
		ck_assert_int_gt(seen_variant[i], 0);
	qsort(ids, 1000, UUID_STR_LEN, cmp_str);
	for (i = 1; i < 1000; i++)
		ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0,
		    "duplicate uuid %s", ids[i]);
}
END_TEST

START_TEST(test_uuid_valid)
{
	ck_assert(uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
	ck_assert(uuid_valid("123E4567-E89B-42D3-A456-426614174000"));
	ck_assert(uuid_valid("00000000-0000-0000-0000-000000000000"));
	/* Any version is canonical. */
	ck_assert(uuid_valid("123e4567-e89b-12d3-a456-426614174000"));

	ck_assert(!uuid_valid(NULL));
	ck_assert(!uuid_valid(""));
	ck_assert(!uuid_valid("123e4567-e89b-42d3-a456-42661417400"));
	ck_assert(!uuid_valid("123e4567-e89b-42d3-a456-4266141740000"));
	ck_assert(!uuid_valid("123e4567e89b-42d3-a456-4266141740000"));
	ck_assert(!uuid_valid("123e4567-e89b-42d3-a456_426614174000"));
	ck_assert(!uuid_valid("123e4567-e89b-42d3-a4564-26614174000"));
	ck_assert(!uuid_valid("g23e4567-e89b-42d3-a456-426614174000"));
	ck_assert(!uuid_valid("{23e4567-e89b-42d3-a456-426614174000"));
	ck_assert(!uuid_valid("123e4567-e89b-42d3-a456-42661417400\n"));
	ck_assert(!uuid_valid(" 23e4567-e89b-42d3-a456-426614174000"));
	ck_assert(!uuid_valid("123e4567-e89b-42d3-a456-4266141740;0"));
	ck_assert(!uuid_valid("../../../../../../../../../etc/passw"));
	ck_assert(!uuid_valid("123e4567-e89b-42d3-a456-426614174000 "));
}
END_TEST

/* ---- task ------------------------------------------------------------- */

START_TEST(test_task_new)
{
	json_object *params = json_object_new_object();
	struct task *t;
	int64_t before = clock_wall_ms(), after;

	json_object_object_add(params, "steps", json_object_new_int(2));
	t = task_new("alice", "diag.timer", params, NULL);
	after = clock_wall_ms();
	assert_v4_shape(t->id);
	assert_v4_shape(t->context_id);
	ck_assert_str_ne(t->id, t->context_id);
	ck_assert_str_eq(t->owner, "alice");
	ck_assert_str_eq(t->operation, "diag.timer");
	ck_assert_ptr_eq(t->params, params);	/* the reference was taken */
	ck_assert_int_eq(t->state, TASK_SUBMITTED);
	ck_assert_ptr_null(t->progress);
	ck_assert_ptr_null(t->result);
	ck_assert_ptr_null(t->error);
	ck_assert(json_object_is_type(t->artifacts, json_type_array));
	ck_assert_uint_eq(json_object_array_length(t->artifacts), 0);
	ck_assert(json_object_is_type(t->checkpoint, json_type_object));
	ck_assert_int_eq(json_object_object_length(t->checkpoint), 0);
	ck_assert(json_object_is_type(t->history, json_type_array));
	ck_assert_uint_eq(json_object_array_length(t->history), 0);
	ck_assert(t->created_ms >= before && t->created_ms <= after);
	ck_assert(t->updated_ms == t->created_ms);
	ck_assert(t->next_wake_ms == 0);
	ck_assert(t->version == 1);
	ck_assert(!t->cancel_requested);
	task_free(t);

	/* NULL params: an empty object. A given context id is kept. */
	t = task_new("bob", "tasks.get", NULL,
	    "123e4567-e89b-42d3-a456-426614174000");
	ck_assert(json_object_is_type(t->params, json_type_object));
	ck_assert_str_eq(t->context_id, "123e4567-e89b-42d3-a456-426614174000");
	task_free(t);
	/* An empty context id gets a fresh one. */
	t = task_new("bob", "x", NULL, "");
	assert_v4_shape(t->context_id);
	task_free(t);
	/* A client's own contextId (up to 64 bytes) is kept as given. */
	t = task_new("bob", "x", NULL,
	    "123e4567-e89b-42d3-a456-426614174000-and-more-text");
	ck_assert_str_eq(t->context_id,
	    "123e4567-e89b-42d3-a456-426614174000-and-more-text");
	task_free(t);
	t = task_new("bob", "x", NULL, "conv-42");
	ck_assert_str_eq(t->context_id, "conv-42");
	task_free(t);
	t = task_new("bob", "x", NULL,
	    "0123456789012345678901234567890123456789"
	    "01234567890123456789012345");	/* 66 bytes: too long */
	assert_v4_shape(t->context_id);
	task_free(t);
	task_free(NULL);
}
END_TEST

START_TEST(test_task_clone)
{
	struct task *t = task_new("alice", "diag.timer", NULL, NULL), *c;

	json_object_object_add(t->params, "k", json_object_new_string("v"));
	task_set_progress(t, 1, 4, "one");
	task_complete(t, json_object_new_object());
	json_object_object_add(t->result, "r", json_object_new_int(7));
	json_object_array_add(t->artifacts, json_object_new_string("a"));
	json_object_object_add(t->checkpoint, "done", json_object_new_int(3));
	task_add_history(t, task_msg_text("user", "hi", t->id, t->context_id),
	    10);
	t->next_wake_ms = 1234;
	t->cancel_requested = true;

	c = task_clone(t);
	ck_assert_ptr_ne(c, t);
	ck_assert_str_eq(c->id, t->id);
	ck_assert_str_eq(c->context_id, t->context_id);
	ck_assert_str_eq(c->owner, t->owner);
	ck_assert_ptr_ne(c->owner, t->owner);
	ck_assert_str_eq(c->operation, t->operation);
	ck_assert_ptr_ne(c->operation, t->operation);
	ck_assert_int_eq(c->state, TASK_COMPLETED);
	ck_assert(c->version == t->version);
	ck_assert(c->created_ms == t->created_ms);
	ck_assert(c->updated_ms == t->updated_ms);
	ck_assert(c->next_wake_ms == 1234);
	ck_assert(c->cancel_requested);
	ck_assert(json_object_equal(c->params, t->params));
	ck_assert(json_object_equal(c->progress, t->progress));
	ck_assert(json_object_equal(c->result, t->result));
	ck_assert(json_object_equal(c->artifacts, t->artifacts));
	ck_assert(json_object_equal(c->checkpoint, t->checkpoint));
	ck_assert(json_object_equal(c->history, t->history));
	ck_assert_ptr_null(c->error);
	/* Deep: changing the clone leaves the original alone. */
	ck_assert_ptr_ne(c->params, t->params);
	json_object_object_add(c->params, "k", json_object_new_string("w"));
	json_object_object_add(c->checkpoint, "done", json_object_new_int(4));
	ck_assert_str_eq(ju_str(t->params, "k"), "v");
	{
		int64_t d = 0;
		ck_assert_int_eq(ju_int(t->checkpoint, "done", &d), 0);
		ck_assert(d == 3);
	}
	task_free(t);
	/* The clone outlives the original. */
	ck_assert_str_eq(ju_str(c->params, "k"), "w");
	task_free(c);
}
END_TEST

START_TEST(test_state_names)
{
	static const struct {
		enum task_state s;
		const char *v03, *v10;
		bool terminal, interrupted;
	} tab[] = {
		{ TASK_SUBMITTED, "submitted",
		    "TASK_STATE_SUBMITTED", false, false },
		{ TASK_WORKING, "working", "TASK_STATE_WORKING", false, false },
		{ TASK_INPUT_REQUIRED, "input-required",
		    "TASK_STATE_INPUT_REQUIRED", false, true },
		{ TASK_COMPLETED, "completed",
		    "TASK_STATE_COMPLETED", true, false },
		{ TASK_CANCELED, "canceled",
		    "TASK_STATE_CANCELED", true, false },
		{ TASK_FAILED, "failed", "TASK_STATE_FAILED", true, false },
		{ TASK_REJECTED, "rejected",
		    "TASK_STATE_REJECTED", true, false },
	};
	enum task_state out;
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		ck_assert_str_eq(task_state_name(tab[i].s), tab[i].v03);
		out = (enum task_state)99;
		ck_assert_int_eq(task_state_parse(tab[i].v03, &out), 0);
		ck_assert_int_eq(out, tab[i].s);
		out = (enum task_state)99;
		ck_assert_int_eq(task_state_parse(tab[i].v10, &out), 0);
		ck_assert_int_eq(out, tab[i].s);
		ck_assert_msg(task_state_terminal(tab[i].s) == tab[i].terminal,
		    "terminal(%s)", tab[i].v03);
		ck_assert_msg(task_state_interrupted(tab[i].s) ==
		    tab[i].interrupted, "interrupted(%s)", tab[i].v03);
	}
	out = TASK_WORKING;
	ck_assert_int_eq(task_state_parse("", &out), -1);
	ck_assert_int_eq(task_state_parse("WORKING", &out), -1);
	ck_assert_int_eq(task_state_parse("Working", &out), -1);
	ck_assert_int_eq(task_state_parse("working ", &out), -1);
	ck_assert_int_eq(task_state_parse("input_required", &out), -1);
	ck_assert_int_eq(task_state_parse("TASK_STATE_UNSPECIFIED", &out), -1);
	ck_assert_int_eq(task_state_parse("task_state_working", &out), -1);
	ck_assert_int_eq(task_state_parse("cancelled", &out), -1);
	ck_assert_int_eq(out, TASK_WORKING);
}
END_TEST

START_TEST(test_setters)
{
	struct task *t = task_new("alice", "op", NULL, NULL);
	int64_t v = t->version;
	int64_t n = 0;

	task_set_state(t, TASK_WORKING);
	ck_assert_int_eq(t->state, TASK_WORKING);
	ck_assert(t->version == v + 1);
	ck_assert(t->updated_ms >= t->created_ms);

	task_set_progress(t, 1, 3, "step 1 of 3");
	ck_assert(t->version == v + 2);
	ck_assert_int_eq(ju_int(t->progress, "step", &n), 0);
	ck_assert(n == 1);
	ck_assert_int_eq(ju_int(t->progress, "steps", &n), 0);
	ck_assert(n == 3);
	ck_assert_int_eq(ju_int(t->progress, "percent", &n), 0);
	ck_assert(n == 33);
	ck_assert_str_eq(ju_str(t->progress, "message"), "step 1 of 3");
	task_set_progress(t, 0, 0, NULL);
	ck_assert_int_eq(ju_int(t->progress, "percent", &n), 0);
	ck_assert(n == 0);
	ck_assert_str_eq(ju_str(t->progress, "message"), "");

	task_fail(t, "boom", "it broke");
	ck_assert_int_eq(t->state, TASK_FAILED);
	ck_assert_str_eq(ju_str(t->error, "code"), "boom");
	ck_assert_str_eq(ju_str(t->error, "message"), "it broke");
	ck_assert(t->version == v + 4);
	task_free(t);

	t = task_new("alice", "op", NULL, NULL);
	v = t->version;
	task_complete(t, json_tokener_parse("{\"ok\":true}"));
	ck_assert_int_eq(t->state, TASK_COMPLETED);
	ck_assert(t->version == v + 1);
	ck_assert(json_object_get_boolean(json_object_object_get(t->result,
	    "ok")));
	task_free(t);
}
END_TEST

START_TEST(test_history_cap)
{
	struct task *t = task_new("alice", "op", NULL, NULL);
	json_object *m;
	char text[16];
	int i;
	int64_t v = t->version;

	for (i = 0; i < 10; i++) {
		snprintf(text, sizeof(text), "msg %d", i);
		task_add_history(t, task_msg_text(i % 2 ? "agent" : "user",
		    text, t->id, t->context_id), 3);
		ck_assert_uint_eq(json_object_array_length(t->history),
		    (size_t)(i < 3 ? i + 1 : 3));
	}
	ck_assert(t->version == v + 10);
	/* The last three survive, oldest first. */
	for (i = 0; i < 3; i++) {
		json_object *parts;
		snprintf(text, sizeof(text), "msg %d", 7 + i);
		m = json_object_array_get_idx(t->history, (size_t)i);
		parts = ju_arr(m, "parts");
		ck_assert_str_eq(ju_str(json_object_array_get_idx(parts, 0),
		    "text"), text);
	}
	/* A cap of one keeps only the newest. */
	task_add_history(t, task_msg_text("user", "last", NULL, NULL), 1);
	ck_assert_uint_eq(json_object_array_length(t->history), 1);
	m = json_object_array_get_idx(t->history, 0);
	ck_assert_str_eq(ju_str(json_object_array_get_idx(ju_arr(m, "parts"),
	    0), "text"), "last");
	task_free(t);
}
END_TEST

START_TEST(test_msg_text)
{
	json_object *m = task_msg_text("agent", "hello",
	    "123e4567-e89b-42d3-a456-426614174000",
	    "223e4567-e89b-42d3-a456-426614174000");
	json_object *parts, *p;
	const char *ts;

	assert_v4_shape(ju_str(m, "messageId"));
	ck_assert_str_eq(ju_str(m, "role"), "agent");
	ck_assert_str_eq(ju_str(m, "taskId"),
	    "123e4567-e89b-42d3-a456-426614174000");
	ck_assert_str_eq(ju_str(m, "contextId"),
	    "223e4567-e89b-42d3-a456-426614174000");
	parts = ju_arr(m, "parts");
	ck_assert_uint_eq(json_object_array_length(parts), 1);
	p = json_object_array_get_idx(parts, 0);
	ck_assert_str_eq(ju_str(p, "kind"), "text");
	ck_assert_str_eq(ju_str(p, "text"), "hello");
	ts = ju_str(m, "timestamp");
	ck_assert_ptr_nonnull(ts);
	ck_assert_uint_eq(strlen(ts), 24);
	ck_assert(ts[10] == 'T' && ts[23] == 'Z');
	json_object_put(m);

	m = task_msg_text("user", "x", NULL, NULL);
	ck_assert_ptr_null(ju_str(m, "taskId"));
	ck_assert_ptr_null(ju_str(m, "contextId"));
	json_object_put(m);
}
END_TEST

START_TEST(test_to_json)
{
	struct task *t = task_new("alice", "diag.timer", NULL, NULL);
	json_object *j, *v;
	char ts[32];

	t->created_ms = 1700000000123LL;
	t->updated_ms = 1700000001456LL;
	j = task_to_json(t);
	ck_assert_str_eq(ju_str(j, "task_id"), t->id);
	ck_assert_str_eq(ju_str(j, "context_id"), t->context_id);
	ck_assert_str_eq(ju_str(j, "operation"), "diag.timer");
	ck_assert_str_eq(ju_str(j, "state"), "submitted");
	/* Unset parts are present as JSON null. */
	ck_assert(json_object_object_get_ex(j, "progress", &v) && v == NULL);
	ck_assert(json_object_object_get_ex(j, "result", &v) && v == NULL);
	ck_assert(json_object_object_get_ex(j, "error", &v) && v == NULL);
	ck_assert_ptr_nonnull(ju_arr(j, "artifacts"));
	ck_assert_str_eq(ju_str(j, "created_at"), "2023-11-14T22:13:20.123Z");
	ck_assert_str_eq(ju_str(j, "updated_at"), "2023-11-14T22:13:21.456Z");
	/* The owner and private checkpoint stay inside. */
	ck_assert(!json_object_object_get_ex(j, "owner", NULL));
	ck_assert(!json_object_object_get_ex(j, "checkpoint", NULL));
	json_object_put(j);

	task_set_progress(t, 2, 4, "half");
	json_object_array_add(t->artifacts, json_tokener_parse(
	    "{\"artifactId\":\"a1\",\"name\":\"out.mp4\"}"));
	task_fail(t, "diag_failure", "nope");
	j = task_to_json(t);
	ck_assert_str_eq(ju_str(j, "state"), "failed");
	ck_assert(json_object_equal(ju_obj(j, "progress"), t->progress));
	ck_assert_ptr_ne(ju_obj(j, "progress"), t->progress);	/* a copy */
	ck_assert_str_eq(ju_str(ju_obj(j, "error"), "code"), "diag_failure");
	ck_assert_str_eq(ju_str(ju_obj(j, "error"), "message"), "nope");
	ck_assert_uint_eq(json_object_array_length(ju_arr(j, "artifacts")), 1);
	ju_iso8601(t->updated_ms, ts, sizeof(ts));
	ck_assert_str_eq(ju_str(j, "updated_at"), ts);
	json_object_put(j);

	task_complete(t, json_tokener_parse("{\"steps\":4}"));
	j = task_to_json(t);
	ck_assert_str_eq(ju_str(j, "state"), "completed");
	ck_assert(json_object_equal(ju_obj(j, "result"), t->result));
	json_object_put(j);
	task_free(t);
}
END_TEST

static Suite *
task_suite(void)
{
	Suite *s = suite_create("task");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_uuid_v4);
	tcase_add_test(tc, test_uuid_valid);
	tcase_add_test(tc, test_task_new);
	tcase_add_test(tc, test_task_clone);
	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_setters);
	tcase_add_test(tc, test_history_cap);
	tcase_add_test(tc, test_msg_text);
	tcase_add_test(tc, test_to_json);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { task_suite })
