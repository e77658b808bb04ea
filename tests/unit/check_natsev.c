/* SPDX-License-Identifier: MIT */
/*
 * natsev: the NATS event bodies hold exactly the documented keys, from
 * the task record, and nothing of its params, checkpoint, history,
 * progress, result values, error message or artifact URIs.
 */
#include "auto-config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/task.h"
#include "lib/jsonutil.h"
#include "providers/nats/natsev.h"
#include "unit/testutil.h"

#define SECRET "s3cr3t-never-published"

/* A pipeline task whose every private part holds SECRET. */
static struct task *
secret_task(void)
{
	struct task *t = task_new("alice", "instag.pipeline",
	    json_tokener_parse("{\"push_token\":\"" SECRET "\","
	    "\"audio\":[\"" SECRET "\"]}"), NULL);
	json_object *art;

	task_ckpt_set_str(t, "ssh_key", SECRET);
	task_add_history(t, task_msg_text("user", SECRET, t->id,
	    t->context_id), 10);
	task_set_progress(t, 1, 2, SECRET);
	art = json_tokener_parse("{\"artifactId\":\"a1\",\"name\":\"out.mp4\","
	    "\"parts\":[{\"kind\":\"file\",\"file\":{\"uri\":"
	    "\"https://x/artifacts/t/out.mp4?sig=" SECRET "\"}}]}");
	json_object_array_add(t->artifacts, art);
	return t;
}

/* The object's keys, sorted, joined by ','. */
static char *
keys_of(json_object *o)
{
	char *k[32], buf[512] = "";
	size_t n = 0, i, j;

	json_object_object_foreach(o, key, val) {
		(void)val;
		ck_assert_uint_lt(n, 32);
		k[n++] = key;
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
			char *tmp = k[j];
			k[j] = k[j - 1];
			k[j - 1] = tmp;
		}
	for (i = 0; i < n; i++) {
		strcat(buf, i ? "," : "");
		strcat(buf, k[i]);
	}
	return strdup(buf);
}

START_TEST(test_task_status)
{
	struct task *t = secret_task();
	char *s, *keys;
	json_object *o;

	task_set_state(t, TASK_WORKING);
	s = natsev_task_status(t, "instag_runpod_agent", 1700000000123);
	ck_assert_ptr_null(strstr(s, SECRET));
	o = json_tokener_parse(s);
	ck_assert_ptr_nonnull(o);
	keys = keys_of(o);
	ck_assert_str_eq(keys, "agent_id,operation,owner,state,task_id,"
	    "timestamp,type");
	ck_assert_str_eq(ju_str(o, "type"), "task_status");
	ck_assert_str_eq(ju_str(o, "agent_id"), "instag_runpod_agent");
	ck_assert_str_eq(ju_str(o, "task_id"), t->id);
	ck_assert_str_eq(ju_str(o, "owner"), "alice");
	ck_assert_str_eq(ju_str(o, "operation"), "instag.pipeline");
	ck_assert_str_eq(ju_str(o, "state"), "working");
	ck_assert_str_eq(ju_str(o, "timestamp"), "2023-11-14T22:13:20.123Z");
	json_object_put(o);
	free(keys);
	free(s);
	task_free(t);
}
END_TEST

START_TEST(test_workflow_completed)
{
	struct task *t = secret_task();
	char *s, *keys;
	json_object *o, *r;
	int64_t d = 0;

	ck_assert(!natsev_is_workflow_end(t));
	task_complete(t, json_tokener_parse("{\"video\":\"" SECRET "\"}"));
	t->updated_ms = t->created_ms + 4321;
	ck_assert(natsev_is_workflow_end(t));
	s = natsev_workflow_completed(t, "instag_runpod_agent",
	    1700000000000);
	ck_assert_ptr_null(strstr(s, SECRET));
	o = json_tokener_parse(s);
	keys = keys_of(o);
	ck_assert_str_eq(keys, "agent_id,duration_ms,owner,result,timestamp,"
	    "type,workflow_id");
	free(keys);
	ck_assert_str_eq(ju_str(o, "type"), "workflow_completed");
	ck_assert_str_eq(ju_str(o, "workflow_id"), t->id);
	ck_assert_str_eq(ju_str(o, "owner"), "alice");
	ck_assert_int_eq(ju_int(o, "duration_ms", &d), 0);
	ck_assert_int_eq(d, 4321);
	r = ju_obj(o, "result");
	keys = keys_of(r);
	ck_assert_str_eq(keys, "artifacts,state");
	free(keys);
	ck_assert_str_eq(ju_str(r, "state"), "completed");
	ck_assert_str_eq(json_object_to_json_string_ext(ju_arr(r,
	    "artifacts"), JSON_C_TO_STRING_PLAIN), "[\"out.mp4\"]");
	json_object_put(o);
	free(s);
	task_free(t);
}
END_TEST

START_TEST(test_workflow_failed)
{
	struct task *t = secret_task();
	char *s, *keys;
	json_object *o, *r;

	task_fail(t, "pod_lost", "pod at " SECRET " is gone");
	ck_assert(natsev_is_workflow_end(t));
	s = natsev_workflow_completed(t, "a", 0);
	ck_assert_ptr_null(strstr(s, SECRET));
	o = json_tokener_parse(s);
	r = ju_obj(o, "result");
	keys = keys_of(r);
	ck_assert_str_eq(keys, "artifacts,error_code,state");
	ck_assert_str_eq(ju_str(r, "state"), "failed");
	ck_assert_str_eq(ju_str(r, "error_code"), "pod_lost");
	free(keys);
	json_object_put(o);
	free(s);
	task_free(t);
}
END_TEST

/* Only instag.pipeline tasks end workflows, and only in a terminal
 * state. */
START_TEST(test_workflow_only_pipeline)
{
	struct task *t = task_new("bob", "diag.timer",
	    json_object_new_object(), NULL);

	task_complete(t, NULL);
	ck_assert(!natsev_is_workflow_end(t));
	task_free(t);
	t = task_new("bob", "instag.pipeline", json_object_new_object(),
	    NULL);
	task_set_state(t, TASK_INPUT_REQUIRED);
	ck_assert(!natsev_is_workflow_end(t));
	task_set_state(t, TASK_CANCELED);
	ck_assert(natsev_is_workflow_end(t));
	task_free(t);
}
END_TEST

static Suite *
natsev_suite(void)
{
	Suite *s = suite_create("natsev");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, test_task_status);
	tcase_add_test(tc, test_workflow_completed);
	tcase_add_test(tc, test_workflow_failed);
	tcase_add_test(tc, test_workflow_only_pipeline);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { natsev_suite })
