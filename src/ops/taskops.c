/* SPDX-License-Identifier: MIT */
/*
 * taskops: the agent's own operations (see taskops.h).
 */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "instag/iops.h"
#include "ops/taskops.h"
#include "pipeline/pipeline.h"
#include "tasks/tasks.h"

int
taskops_get(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	struct task *t = NULL;
	int rc = tasks_get(ju_str(params, "task_id"), c->who->sub, &t);

	if (rc != 0) {
		op_error_set(e, rc > 0 ? ERRC_TASK_NOT_FOUND : ERRC_INTERNAL,
		    rc > 0 ? "no task with that id belongs to you" :
		    "the task store failed");
		return -1;
	}
	*result = task_to_json(t);
	task_free(t);
	return 0;
}

int
taskops_logs(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	static const char *const remote[] = { "instag.setup_environment",
	    "instag.upload_data", "instag.preprocess", "instag.train",
	    "instag.synthesize", "instag.fetch_results",
	    "instag.place_assets", NULL };
	struct task *t = NULL;
	const char *const *op;
	int64_t off = 0, lim = 65536;
	int rc = tasks_get(ju_str(params, "task_id"), c->who->sub, &t);

	if (rc != 0) {
		op_error_set(e, rc > 0 ? ERRC_TASK_NOT_FOUND : ERRC_INTERNAL,
		    rc > 0 ? "no task with that id belongs to you" :
		    "the task store failed");
		return -1;
	}
	ju_int(params, "offset", &off);
	ju_int(params, "limit", &lim);
	for (op = remote; *op != NULL && strcmp(*op, t->operation) != 0;
	    op++)
		;
	if (strcmp(t->operation, "instag.pipeline") == 0)
		rc = pl_read_log(c->cfg, t, off, lim, result, e);
	else if (*op != NULL)
		rc = iops_read_log(c->cfg, t, off, lim, result, e);
	else {
		op_error_set(e, ERRC_INVALID_PARAMS, "task %s (%s) runs no "
		    "remote InsTaG job: instag.logs reads those of instag.* "
		    "tasks that run on a pod", t->id, t->operation);
		rc = -1;
	}
	task_free(t);
	return rc;
}

int
taskops_list(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	struct store_list_query q = { 0 };
	struct task **tasks = NULL;
	char *next = NULL, *err = NULL;
	int64_t total = 0, size = 20;
	enum task_state st;
	json_object *arr;
	size_t n = 0, i;

	q.owner = c->who->sub;
	q.context_id = ju_str(params, "context_id");
	q.state = -1;
	if (ju_str(params, "state") &&
	    task_state_parse(ju_str(params, "state"), &st) == 0)
		q.state = (int)st;
	ju_int(params, "page_size", &size);
	q.page_size = (size_t)size;
	q.page_token = ju_str(params, "page_token");
	if (tasks_list(&q, &tasks, &n,
	    &next, &total, &err) < 0) {
		op_error_set(e, strstr(err, "pageToken") ? ERRC_INVALID_PARAMS :
		    ERRC_INTERNAL, "%s", strstr(err, "pageToken") ?
		    "params.page_token is not a token this agent issued" : err);
		free(err);
		return -1;
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(arr, task_to_json(tasks[i]));
	task_list_free(tasks, n);
	*result = json_object_new_object();
	json_object_object_add(*result, "tasks", arr);
	json_object_object_add(*result, "next_page_token",
	    json_object_new_string(next));
	json_object_object_add(*result, "total", json_object_new_int64(total));
	free(next);
	return 0;
}

int
taskops_cancel(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	struct task *t = NULL;

	switch (tasks_cancel(ju_str(params, "task_id"), c->who->sub, &t)) {
	case TASKS_CANCEL_OK:
		*result = task_to_json(t);
		task_free(t);
		return 0;
	case TASKS_CANCEL_NOT_FOUND:
		op_error_set(e, ERRC_TASK_NOT_FOUND, "no task with that id "
		    "belongs to you");
		break;
	case TASKS_CANCEL_NOT_CANCELABLE:
		op_error_set(e, ERRC_NOT_CANCELABLE, "the task is already %s",
		    task_state_name(t->state));
		break;
	default:
		op_error_set(e, ERRC_INTERNAL, "the task could not be "
		    "canceled now; try again");
	}
	task_free(t);
	return -1;
}

/* diag.timer */

enum step_result
taskops_diag_timer_step(struct task *t, const struct step_env *env)
{
	int64_t steps = 3, interval = 1000, fail_at = 0, done = 0;
	char msg[96];

	ju_int(t->params, "steps", &steps);
	ju_int(t->params, "interval_ms", &interval);
	ju_int(t->params, "fail_at_step", &fail_at);
	ju_int(t->checkpoint, "done", &done);
	if (done > 0 || ju_str(t->checkpoint, "started") != NULL) {
		done++;
		json_object_object_add(t->checkpoint, "done",
		    json_object_new_int64(done));
	} else
		json_object_object_add(t->checkpoint, "started",
		    json_object_new_string("yes"));
	if (fail_at > 0 && done == fail_at) {
		snprintf(msg, sizeof(msg), "diagnostic failure injected at "
		    "step %lld", (long long)done);
		task_fail(t, ERRC_DIAG_FAILURE, msg);
		return STEP_DONE;
	}
	if (done >= steps) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "steps",
		    json_object_new_int64(steps));
		json_object_object_add(r, "elapsed_ms", json_object_new_int64(
		    env->now_ms - t->created_ms));
		task_set_progress(t, (int)steps, (int)steps, "done");
		task_complete(t, r);
		return STEP_DONE;
	}
	snprintf(msg, sizeof(msg), "step %lld of %lld", (long long)done + 1,
	    (long long)steps);
	task_set_progress(t, (int)done, (int)steps, msg);
	t->next_wake_ms = env->now_ms + interval;
	return STEP_WAIT;
}

