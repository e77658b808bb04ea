#include "auto-config.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "ops/ops.h"
#include "instag/iops.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/provision.h"
#include "lib/strbuf.h"
#include "tasks/tasks.h"
#include "lib/xalloc.h"

/* ---- errors ---------------------------------------------------------- */

void
op_error_set(struct op_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = SB_INIT;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	free(e->message);
	e->code = code;
	e->message = sb_take(&sb);
}

void
ops_outcome_clear(struct op_outcome *out)
{
	json_object_put(out->result);
	task_free(out->task);
	free(out->err.message);
	memset(out, 0, sizeof(*out));
}

/* ---- params validation -------------------------------------------------- */

static bool
match_pattern(const char *s, enum param_pattern pat)
{
	size_t n = strlen(s), i;

	switch (pat) {
	case PAT_ANY:
		for (i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return false;
		return true;
	case PAT_IDENT:
		/* no leading '-': never mistaken for an option by a command */
		if (n < 1 || n > 64 || s[0] == '-')
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
				return false;
		return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
	case PAT_UUID:
		return uuid_valid(s);
	case PAT_GPU:
		if (n < 1 || n > 64 || s[0] == ' ')
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr(" ._-", s[i]))
				return false;
		return true;
	case PAT_IMAGE:
		/* registry/name:tag or @sha256:digest; no shell-relevant bytes */
		if (n < 1 || n > 255 || !isalnum((unsigned char)s[0]))
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) &&
			    !strchr("._-/:@", s[i]))
				return false;
		return true;
	case PAT_HOST:
		if (n < 1 || n > 253)
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr(".-:", s[i]))
				return false;
		return s[0] != '-';
	case PAT_ENVKEY:
		if (n < 1 || n > 64 || isdigit((unsigned char)s[0]))
			return false;
		for (i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && s[i] != '_')
				return false;
		return true;
	case PAT_SOURCE:
		if (strncmp(s, "https://", 8) == 0)
			return n <= 2048 && match_pattern(s, PAT_ANY) &&
			    strchr(s, ' ') == NULL;
		if (strncmp(s, "part:", 5) == 0)
			return n >= 6 && n <= 7 && isdigit((unsigned char)s[5]) &&
			    (n == 6 || isdigit((unsigned char)s[6]));
		return match_pattern(s, PAT_UUID) ||
		    (strncmp(s, "upload:", 7) == 0 && uuid_valid(s + 7));
	}
	return false;
}

static const char *
pattern_text(enum param_pattern pat)
{
	switch (pat) {
	case PAT_ANY: return "text without control characters";
	case PAT_IDENT: return "an identifier matching ^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$";
	case PAT_UUID: return "a UUID";
	case PAT_GPU: return "a GPU type id matching ^[A-Za-z0-9 ._-]{1,64}$";
	case PAT_IMAGE: return "a container image reference ([A-Za-z0-9._-/:@], up to 255)";
	case PAT_HOST: return "a host name or address";
	case PAT_ENVKEY: return "an environment variable name ^[A-Za-z_][A-Za-z0-9_]{0,63}$";
	case PAT_SOURCE: return "an upload id, an https:// URL, or part:N (the message's N-th file part)";
	}
	return "";
}

static const char *
type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_double: return "number";
	case json_type_int: return "integer";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "value";
}

/* choices[] is NULL-terminated unless all its slots are used (the
 * tasks.list state list fills all six). */
#define NCHOICES (sizeof(((struct param_spec *)0)->choices) / \
	sizeof(((struct param_spec *)0)->choices[0]))

static int
check_one(const struct param_spec *ps, json_object *v, char **err)
{
	size_t n, i;
	const char *s;
	double d;

	switch (ps->type) {
	case P_STR:
		if (!json_object_is_type(v, json_type_string))
			goto badtype;
		s = json_object_get_string(v);
		if (!match_pattern(s, ps->pattern)) {
			*err = xasprintf("params.%s must be %s", ps->name,
			    pattern_text(ps->pattern));
			return -1;
		}
		if (ps->max > 0 && strlen(s) > (size_t)ps->max) {
			*err = xasprintf("params.%s is longer than %.0f bytes",
			    ps->name, ps->max);
			return -1;
		}
		return 0;
	case P_INT:
		if (!json_object_is_type(v, json_type_int))
			goto badtype;
		d = (double)json_object_get_int64(v);
		if (d < ps->min || d > ps->max) {
			*err = xasprintf("params.%s must be between %.0f and "
			    "%.0f", ps->name, ps->min, ps->max);
			return -1;
		}
		return 0;
	case P_NUM:
		if (!json_object_is_type(v, json_type_int) &&
		    !json_object_is_type(v, json_type_double))
			goto badtype;
		d = json_object_get_double(v);
		if (!isfinite(d) || d < ps->min || d > ps->max) {
			*err = xasprintf("params.%s must be between %g and %g",
			    ps->name, ps->min, ps->max);
			return -1;
		}
		return 0;
	case P_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			goto badtype;
		return 0;
	case P_ENUM:
		if (!json_object_is_type(v, json_type_string))
			goto badtype;
		s = json_object_get_string(v);
		for (i = 0; i < NCHOICES && ps->choices[i]; i++)
			if (strcmp(s, ps->choices[i]) == 0)
				return 0;
		{
			struct strbuf sb = SB_INIT;
			for (i = 0; i < NCHOICES && ps->choices[i]; i++)
				sb_addf(&sb, "%s%s", i ? ", " : "",
				    ps->choices[i]);
			*err = xasprintf("params.%s must be one of: %s",
			    ps->name, sb_str(&sb));
			sb_free(&sb);
		}
		return -1;
	case P_STR_ARRAY:
		if (!json_object_is_type(v, json_type_array))
			goto badtype;
		n = json_object_array_length(v);
		if (n < (size_t)ps->min || n > (size_t)ps->max) {
			*err = xasprintf("params.%s must hold %.0f to %.0f "
			    "items", ps->name, ps->min, ps->max);
			return -1;
		}
		for (i = 0; i < n; i++) {
			json_object *x = json_object_array_get_idx(v, i);
			if (!json_object_is_type(x, json_type_string) ||
			    !match_pattern(json_object_get_string(x),
			    ps->pattern)) {
				*err = xasprintf("params.%s[%zu] must be %s",
				    ps->name, i, pattern_text(ps->pattern));
				return -1;
			}
		}
		return 0;
	case P_STR_MAP:
		if (!json_object_is_type(v, json_type_object))
			goto badtype;
		n = (size_t)json_object_object_length(v);
		if (n > (size_t)ps->max) {
			*err = xasprintf("params.%s has more than %.0f entries",
			    ps->name, ps->max);
			return -1;
		}
		{
			json_object_object_foreach(v, k, x) {
				if (!match_pattern(k, ps->pattern)) {
					*err = xasprintf("params.%s key '%.64s' "
					    "must be %s", ps->name, k,
					    pattern_text(ps->pattern));
					return -1;
				}
				if (!json_object_is_type(x, json_type_string) ||
				    !match_pattern(json_object_get_string(x),
				    PAT_ANY)) {
					*err = xasprintf("params.%s.%.64s must "
					    "be a string without control "
					    "characters", ps->name, k);
					return -1;
				}
			}
		}
		return 0;
	}
badtype:
	*err = xasprintf("params.%s must be %s, got %s", ps->name,
	    ps->type == P_INT ? "an integer" : ps->type == P_NUM ? "a number" :
	    ps->type == P_BOOL ? "a boolean" : ps->type == P_STR_ARRAY ?
	    "an array of strings" : ps->type == P_STR_MAP ? "an object" :
	    "a string", type_name(v));
	return -1;
}

int
ops_validate_params(const struct param_spec *spec, json_object *params,
    size_t max_params, char **err)
{
	const struct param_spec *ps;

	if (!json_object_is_type(params, json_type_object)) {
		*err = xasprintf("params must be an object, got %s",
		    type_name(params));
		return -1;
	}
	if ((size_t)json_object_object_length(params) > max_params) {
		*err = xasprintf("params has more than %zu keys", max_params);
		return -1;
	}
	{
		json_object_object_foreach(params, k, v) {
			(void)v;
			for (ps = spec; ps && ps->name; ps++)
				if (strcmp(ps->name, k) == 0)
					break;
			if (ps == NULL || ps->name == NULL) {
				*err = xasprintf("unknown parameter '%.64s'", k);
				return -1;
			}
		}
	}
	for (ps = spec; ps && ps->name; ps++) {
		json_object *v;
		if (!json_object_object_get_ex(params, ps->name, &v) ||
		    v == NULL) {
			if (ps->required) {
				*err = xasprintf("params.%s is required",
				    ps->name);
				return -1;
			}
			if (ps->def != NULL)
				json_object_object_add(params, ps->name,
				    json_tokener_parse(ps->def));
			continue;
		}
		if (check_one(ps, v, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- sync operations: tasks.* ------------------------------------------ */

static int
op_tasks_get(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	struct task *t = NULL;
	int rc = tasks_get(ju_str(params, "task_id"), c->who->sub, &t);

	if (rc != 0) {
		op_error_set(e, rc > 0 ? OPERR_NOT_FOUND : OPERR_INTERNAL,
		    rc > 0 ? "no task with that id belongs to you" :
		    "the task store failed");
		return -1;
	}
	*result = task_to_json(t);
	task_free(t);
	return 0;
}

static int
op_tasks_list(const struct op_ctx *c, json_object *params,
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
	if (store_task_list(tasks_store(), &q, &tasks, &n,
	    &next, &total, &err) < 0) {
		op_error_set(e, strstr(err, "pageToken") ? OPERR_INVALID_PARAMS :
		    OPERR_INTERNAL, "%s", strstr(err, "pageToken") ?
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

static int
op_tasks_cancel(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	struct task *t = NULL;

	switch (tasks_cancel(ju_str(params, "task_id"), c->who->sub, &t)) {
	case TASKS_CANCEL_OK:
		*result = task_to_json(t);
		task_free(t);
		return 0;
	case TASKS_CANCEL_NOT_FOUND:
		op_error_set(e, OPERR_NOT_FOUND, "no task with that id "
		    "belongs to you");
		break;
	case TASKS_CANCEL_NOT_CANCELABLE:
		op_error_set(e, OPERR_NOT_CANCELABLE, "the task is already %s",
		    task_state_name(t->state));
		break;
	default:
		op_error_set(e, OPERR_INTERNAL, "the task could not be "
		    "canceled now; try again");
	}
	task_free(t);
	return -1;
}

/* ---- task operation: diag.timer --------------------------------------- */

static enum step_result
diag_timer_step(struct task *t, const struct step_env *env)
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
		task_fail(t, "diag_failure", msg);
		return STEP_DONE;
	}
	if (done >= steps) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "steps", json_object_new_int64(steps));
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

/* ---- the table --------------------------------------------------------- */

#define END { NULL, P_STR, false, PAT_ANY, 0, 0, { NULL }, NULL }
#define POD_ID { "pod_id", P_STR, true, PAT_IDENT, 0, 0, { NULL }, NULL }
#define TARGET \
	{ "pod_id", P_STR, false, PAT_IDENT, 0, 0, { NULL }, NULL }, \
	{ "host", P_STR, false, PAT_HOST, 0, 0, { NULL }, NULL }
#define SUBJECT { "subject", P_STR, true, PAT_IDENT, 0, 0, { NULL }, NULL }
#define GPU_ID { "gpu_id", P_INT, false, PAT_ANY, 0, 15, { NULL }, "0" }
#define EXTRACTOR { "audio_extractor", P_ENUM, false, PAT_ANY, 0, 0, \
	{ "deepspeech", "ave", "esperanto", "hubert", NULL }, "\"deepspeech\"" }
#define COST \
	{ "max_runtime_minutes", P_INT, false, PAT_ANY, 1, 10080, { NULL }, NULL }, \
	{ "max_cost_usd", P_NUM, false, PAT_ANY, 0.01, 10000, { NULL }, NULL }

static const struct param_spec no_params[] = { END };
static const struct param_spec p_pod[] = { POD_ID, END };
static const struct param_spec p_provision[] = {
	{ "gpu_type_ids", P_STR_ARRAY, true, PAT_GPU, 1, 16, { NULL }, NULL },
	{ "gpu_count", P_INT, false, PAT_ANY, 1, 8, { NULL }, "1" },
	{ "image", P_STR, false, PAT_IMAGE, 0, 0, { NULL }, NULL },
	{ "cloud_type", P_ENUM, false, PAT_ANY, 0, 0,
	    { "SECURE", "COMMUNITY", "ALL", NULL }, "\"SECURE\"" },
	{ "container_disk_gb", P_INT, false, PAT_ANY, 1, 2000, { NULL }, NULL },
	{ "volume_gb", P_INT, false, PAT_ANY, 10, 4000, { NULL }, NULL },
	{ "env", P_STR_MAP, false, PAT_ENVKEY, 0, 64, { NULL }, NULL },
	{ "ready_timeout_s", P_INT, false, PAT_ANY, 1, 86400, { NULL }, NULL },
	COST, END
};
static const struct param_spec p_setup[] = { TARGET, END };
static const struct param_spec p_upload[] = {
	TARGET, SUBJECT,
	{ "video", P_STR, true, PAT_SOURCE, 0, 0, { NULL }, NULL },
	{ "audio", P_STR, false, PAT_SOURCE, 0, 0, { NULL }, NULL },
	{ "convert", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "false" },
	END
};
static const struct param_spec p_preprocess[] = { TARGET, SUBJECT, GPU_ID, END };
static const struct param_spec p_train[] = {
	TARGET, SUBJECT, GPU_ID, EXTRACTOR,
	{ "iterations", P_INT, false, PAT_ANY, 1, 1000000, { NULL }, NULL },
	{ "output_name", P_STR, false, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ "n_views", P_INT, false, PAT_ANY, 1, 10000, { NULL }, NULL },
	{ "pretrain", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "false" },
	END
};
static const struct param_spec p_synth[] = {
	TARGET, SUBJECT, GPU_ID, EXTRACTOR,
	{ "output_name", P_STR, false, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ "audio", P_STR, true, PAT_SOURCE, 0, 0, { NULL }, NULL },
	END
};
static const struct param_spec p_fetch[] = {
	TARGET, SUBJECT,
	{ "output_name", P_STR, false, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ "include_model", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "false" },
	END
};
static const struct param_spec p_pipeline[] = {
	SUBJECT, EXTRACTOR,
	{ "video", P_STR, true, PAT_SOURCE, 0, 0, { NULL }, NULL },
	{ "audio", P_STR_ARRAY, true, PAT_SOURCE, 1, 16, { NULL }, NULL },
	{ "gpu_type_ids", P_STR_ARRAY, true, PAT_GPU, 1, 16, { NULL }, NULL },
	{ "keep_pod", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "false" },
	COST, END
};
static const struct param_spec p_task_id[] = {
	{ "task_id", P_STR, true, PAT_UUID, 0, 0, { NULL }, NULL }, END
};
static const struct param_spec p_tasks_list[] = {
	{ "state", P_ENUM, false, PAT_ANY, 0, 0, { "submitted", "working",
	    "input-required", "completed", "canceled", "failed", "rejected",
	    NULL }, NULL },
	{ "context_id", P_STR, false, PAT_ANY, 0, 64, { NULL }, NULL },
	{ "page_size", P_INT, false, PAT_ANY, 1, 100, { NULL }, "20" },
	{ "page_token", P_STR, false, PAT_ANY, 0, 128, { NULL }, NULL },
	END
};
static const struct param_spec p_diag[] = {
	{ "steps", P_INT, false, PAT_ANY, 1, 1000, { NULL }, "3" },
	{ "interval_ms", P_INT, false, PAT_ANY, 0, 600000, { NULL }, "1000" },
	{ "fail_at_step", P_INT, false, PAT_ANY, 0, 1000, { NULL }, "0" },
	END
};

static int
need_target(json_object *params, const struct config *cfg, char **err)
{
	(void)cfg;
	if (!!ju_str(params, "pod_id") == !!ju_str(params, "host")) {
		*err = xstrdup("give exactly one of params.pod_id (a pod the "
		    "agent provisioned) or params.host (the ssh provider)");
		return -1;
	}
	return 0;
}

#define SCOPES(...) { __VA_ARGS__, NULL }

static const struct op_def table[] = {
	{ "runpod.list_gpu_types", { NULL }, SCOPES("pods:read"), OP_SYNC,
	  "runpod", "List RunPod GPU types with prices and availability.",
	  no_params, NULL, pods_op_list_gpu_types, NULL, NULL, NULL },
	{ "runpod.provision_pod", { "provision_pod", "runpod_provision", NULL },
	  SCOPES("pods:write"), OP_TASK, "runpod+ssh",
	  "Rent a GPU pod and wait until it runs and SSH answers.",
	  p_provision, prov_validate, NULL, prov_provision_step,
	  prov_provision_cancel, NULL },
	{ "runpod.get_pod", { "get_pod_status", NULL }, SCOPES("pods:read"),
	  OP_SYNC, "runpod", "Describe one pod.", p_pod, NULL, pods_op_get,
	  NULL, NULL, NULL },
	{ "runpod.list_pods", { NULL }, SCOPES("pods:read"), OP_SYNC, "runpod",
	  "List the pods you provisioned through this agent.", no_params,
	  NULL, pods_op_list, NULL, NULL, NULL },
	{ "runpod.stop_pod", { NULL }, SCOPES("pods:write"), OP_TASK, "runpod",
	  "Stop a pod (its volume is kept and billed).", p_pod, NULL, NULL,
	  prov_action_step, NULL, pods_admit_owned },
	{ "runpod.resume_pod", { NULL }, SCOPES("pods:write"), OP_TASK,
	  "runpod", "Start a stopped pod again and wait until SSH answers.",
	  p_pod, NULL, NULL, prov_action_step, NULL, pods_admit_owned },
	{ "runpod.terminate_pod", { "terminate_pod", "runpod_terminate", NULL },
	  SCOPES("pods:write"), OP_TASK, "runpod",
	  "Terminate a pod and release everything it holds.", p_pod, NULL, NULL,
	  prov_action_step, NULL, pods_admit_owned },
	{ "instag.setup_environment", { "instag_setup_environment", NULL },
	  SCOPES("instag:run"), OP_TASK, "ssh",
	  "Install InsTaG, its conda environment and assets on a pod.",
	  p_setup, need_target, NULL, iops_step, iops_cancel, iops_admit },
	{ "instag.upload_data", { "instag_prepare_data", NULL },
	  SCOPES("instag:run"), OP_TASK, "ssh",
	  "Put a person's video (and audio) on the pod and check it.",
	  p_upload, need_target, NULL, iops_step, iops_cancel, iops_admit },
	{ "instag.preprocess", { NULL }, SCOPES("instag:run"), OP_TASK, "ssh",
	  "Run InsTaG's preprocessing for a new person.", p_preprocess,
	  need_target, NULL, iops_step, iops_cancel, iops_admit },
	{ "instag.train", { "instag_run_training", NULL }, SCOPES("instag:run"),
	  OP_TASK, "ssh", "Few-shot adaptation of the pretrained model.",
	  p_train, need_target, NULL, iops_step, iops_cancel, iops_admit },
	{ "instag.synthesize", { "instag_run_inference", NULL },
	  SCOPES("instag:run"), OP_TASK, "ssh",
	  "Render a talking-head video from audio.", p_synth, need_target,
	  NULL, iops_step, iops_cancel, iops_admit },
	{ "instag.fetch_results", { NULL }, SCOPES("instag:run"), OP_TASK,
	  "ssh", "Download the rendered video (and model) as artifacts.",
	  p_fetch, need_target, NULL, iops_step, iops_cancel, iops_admit },
	{ "instag.pipeline", { NULL }, SCOPES("instag:run", "pods:write"),
	  OP_TASK, "runpod+ssh", "Provision, set up, upload, preprocess, train, "
	  "synthesize, fetch and terminate in one task.", p_pipeline, NULL,
	  NULL, NULL, NULL, NULL },
	{ "tasks.get", { NULL }, SCOPES("tasks:read"), OP_SYNC, NULL,
	  "One of your tasks: state, progress, result, artifacts, error.",
	  p_task_id, NULL, op_tasks_get, NULL, NULL, NULL },
	{ "tasks.list", { NULL }, SCOPES("tasks:read"), OP_SYNC, NULL,
	  "Your tasks, newest first, paged.", p_tasks_list, NULL,
	  op_tasks_list, NULL, NULL, NULL },
	{ "tasks.cancel", { NULL }, SCOPES("tasks:write"), OP_SYNC, NULL,
	  "Cancel one of your tasks.", p_task_id, NULL, op_tasks_cancel, NULL,
	  NULL, NULL },
	{ "diag.timer", { NULL }, SCOPES("diag:run"), OP_TASK, "diagnostics",
	  "Diagnostics: wait on the timer queue for steps x interval_ms, "
	  "reporting progress.", p_diag, NULL, NULL, diag_timer_step, NULL, NULL },
};

const struct op_def *
ops_table(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

const struct op_def *
ops_find(const char *name)
{
	size_t i, j;

	if (name == NULL)
		return NULL;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
		for (j = 0; table[i].aliases[j]; j++)
			if (strcmp(table[i].aliases[j], name) == 0)
				return &table[i];
	}
	return NULL;
}

bool
ops_available(const struct op_def *op, const struct config *cfg,
    const char **why)
{
	if (op->requires == NULL)
		return true;
	if (strcmp(op->requires, "diagnostics") == 0) {
		if (cfg->diagnostics)
			return true;
		*why = "diagnostic operations are disabled on this agent "
		    "(configuration key diagnostics)";
		return false;
	}
	if (strcmp(op->requires, "runpod") == 0)
		return pods_ready(false, why);
	if (strcmp(op->requires, "runpod+ssh") == 0) {
		if (!pods_ready(true, why))
			return false;
		if (op->step == NULL) {
			*why = "instag.pipeline is not built yet: run "
			    "runpod.provision_pod and the instag.* operations "
			    "one by one";
			return false;
		}
		return true;
	}
	return iops_ready(cfg, why);
}

int
ops_invoke(const struct op_ctx *c, const char *name, json_object *params,
    const char *context_id, struct op_outcome *out)
{
	const struct op_def *op;
	json_object *p = NULL;
	const char *why = NULL;
	char *err = NULL;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->http_status = 200;
	op = ops_find(name);
	if (op == NULL) {
		op_error_set(&out->err, OPERR_UNKNOWN_OP, "unknown operation "
		    "'%.64s'; send a message without an operation to list them",
		    name ? name : "");
		return -1;
	}
	for (i = 0; op->scopes[i]; i++) {
		if (!auth_has_scope(c->who, op->scopes[i])) {
			op_error_set(&out->err, OPERR_FORBIDDEN, "operation %s "
			    "needs scope %s", op->name, op->scopes[i]);
			out->http_status = 403;
			return -1;
		}
	}
	p = params ? ju_copy(params) : json_object_new_object();
	if (ops_validate_params(op->params, p, (size_t)c->cfg->max_params,
	    &err) < 0 || (op->validate && op->validate(p, c->cfg, &err) < 0)) {
		op_error_set(&out->err, OPERR_INVALID_PARAMS, "%s: %s",
		    op->name, err);
		goto fail;
	}
	if (!ops_available(op, c->cfg, &why)) {
		op_error_set(&out->err, OPERR_NOT_CONFIGURED, "%s: %s",
		    op->name, why);
		goto fail;
	}
	if (op->admit != NULL && op->admit(c, p, &out->err) < 0)
		goto fail;
	if (op->kind == OP_SYNC) {
		int rc = op->run(c, p, &out->result, &out->err);
		json_object_put(p);
		return rc;
	}
	{
		struct task *t = task_new(c->who->sub, op->name, p, context_id);
		p = NULL;
		if (c->message != NULL) {
			json_object *m = ju_copy(c->message);
			json_object_object_add(m, "taskId",
			    json_object_new_string(t->id));
			json_object_object_add(m, "contextId",
			    json_object_new_string(t->context_id));
			task_add_history(t, m, (int)c->cfg->task_history_max);
		}
		if (tasks_submit(t, &out->task, &err) < 0) {
			op_error_set(&out->err, OPERR_INTERNAL, "%s", err);
			goto fail;
		}
	}
	return 0;
fail:
	free(err);
	json_object_put(p);
	return -1;
}

json_object *
ops_describe(const struct config *cfg)
{
	json_object *arr = json_object_new_array();
	size_t i, j;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct op_def *op = &table[i];
		json_object *o, *a;
		const char *why;
		const struct param_spec *ps;

		if (op->requires && strcmp(op->requires, "diagnostics") == 0 &&
		    !cfg->diagnostics)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "operation",
		    json_object_new_string(op->name));
		a = json_object_new_array();
		for (j = 0; op->aliases[j]; j++)
			json_object_array_add(a,
			    json_object_new_string(op->aliases[j]));
		json_object_object_add(o, "aliases", a);
		a = json_object_new_array();
		for (j = 0; op->scopes[j]; j++)
			json_object_array_add(a,
			    json_object_new_string(op->scopes[j]));
		json_object_object_add(o, "scopes", a);
		json_object_object_add(o, "kind", json_object_new_string(
		    op->kind == OP_SYNC ? "sync" : "task"));
		a = json_object_new_array();
		for (ps = op->params; ps && ps->name; ps++)
			json_object_array_add(a, json_object_new_string(
			    ps->name));
		json_object_object_add(o, "params", a);
		json_object_object_add(o, "summary",
		    json_object_new_string(op->summary));
		json_object_object_add(o, "available", json_object_new_boolean(
		    ops_available(op, cfg, &why)));
		json_object_array_add(arr, o);
	}
	return arr;
}
