/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "ops/ops.h"
#include "ops/taskops.h"
#include "instag/assetops.h"
#include "instag/iops.h"
#include "pipeline/pipeline.h"
#include "providers/runpod/billing.h"
#include "providers/runpod/podlogs.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/provision.h"
#include "providers/runpod/volumes.h"
#include "lib/strbuf.h"
#include "tasks/tasks.h"
#include "lib/xalloc.h"

void
ops_outcome_clear(struct op_outcome *out)
{
	json_object_put(out->result);
	task_free(out->task);
	free(out->err.message);
	memset(out, 0, sizeof(*out));
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
	{ "max_runtime_minutes", P_INT, false, PAT_ANY, 1, 10080, { NULL }, \
	    NULL }, \
	{ "max_cost_usd", P_NUM, false, PAT_ANY, 0.01, 10000, { NULL }, \
	    NULL }, \
	{ "idle_minutes", P_NUM, false, PAT_ANY, 0, 10080, { NULL }, NULL }

#define VOLUME_ID(req) \
	{ "volume_id", P_STR, req, PAT_IDENT, 0, 0, { NULL }, NULL }

static const struct param_spec no_params[] = { END };
static const struct param_spec p_pod[] = { POD_ID, END };
static const struct param_spec p_pod_logs[] = {
	POD_ID,
	{ "tail", P_INT, false, PAT_ANY, 0, PODLOGS_TAIL_MAX, { NULL }, "100" },
	{ "since", P_STR, false, PAT_ANY, 0, 40, { NULL }, NULL },
	{ "source", P_ENUM, false, PAT_ANY, 0, 0, { "container", "system",
	    NULL }, NULL },
	{ "last_event_id", P_STR, false, PAT_ANY, 0, 128, { NULL }, NULL },
	END
};
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
	/* the seed agent's name for it: the owner's label of the pod */
	{ "pod_name", P_STR, false, PAT_IDENT, 0, 0, { NULL }, NULL },
	VOLUME_ID(false), COST, END
};
static const struct param_spec p_volume_create[] = {
	{ "name", P_STR, true, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ "size_gb", P_INT, true, PAT_ANY, 10, 4096, { NULL }, NULL },
	{ "data_center_id", P_STR, true, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ "type", P_ENUM, false, PAT_ANY, 0, 0,
	    { "STANDARD", "HIGH_PERFORMANCE", NULL }, NULL },
	END
};
static const struct param_spec p_volume[] = { VOLUME_ID(true), END };
static const struct param_spec p_setup[] = { TARGET, END };
static const struct param_spec p_upload[] = {
	TARGET, SUBJECT,
	{ "video", P_STR, true, PAT_SOURCE, 0, 0, { NULL }, NULL },
	{ "audio", P_STR, false, PAT_SOURCE, 0, 0, { NULL }, NULL },
	{ "convert", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "false" },
	END
};
static const struct param_spec p_preprocess[] = {
	TARGET, SUBJECT, GPU_ID, END
};
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
	SUBJECT, EXTRACTOR, GPU_ID,
	{ "video", P_STR, false, PAT_SOURCE, 0, 0, { NULL }, NULL },
	{ "model", P_STR, false, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ "audio", P_STR_ARRAY, true, PAT_SOURCE, 1, 16, { NULL }, NULL },
	{ "gpu_type_ids", P_STR_ARRAY, false, PAT_GPU, 1, 16, { NULL }, NULL },
	{ "pod_id", P_STR, false, PAT_IDENT, 0, 0, { NULL }, NULL },
	{ "cloud_type", P_ENUM, false, PAT_ANY, 0, 0,
	    { "SECURE", "COMMUNITY", "ALL", NULL }, NULL },
	{ "gpu_count", P_INT, false, PAT_ANY, 1, 8, { NULL }, NULL },
	{ "keep_pod", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "false" },
	{ "convert", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "true" },
	{ "iterations", P_INT, false, PAT_ANY, 1, 1000000, { NULL }, NULL },
	{ "n_views", P_INT, false, PAT_ANY, 1, 10000, { NULL }, NULL },
	{ "include_model", P_BOOL, false, PAT_ANY, 0, 0, { NULL }, "false" },
	{ "max_recoveries", P_INT, false, PAT_ANY, 0, 10, { NULL }, NULL },
	VOLUME_ID(false), COST, END
};
#define ASSET_KIND \
	{ "kind", P_ENUM, true, PAT_ANY, 0, 0, { "bfm2009", "easyportrait", \
	    "pretrain_face", "pretrain_mouth", NULL }, NULL }, \
	{ "extractor", P_ENUM, false, PAT_ANY, 0, 0, \
	    { "deepspeech", "ave", "esperanto", "hubert", NULL }, NULL }
static const struct param_spec p_register_asset[] = {
	ASSET_KIND,
	{ "upload_id", P_STR, false, PAT_ANY, 0, 0, { NULL }, NULL },
	{ "url", P_STR, false, PAT_ANY, 0, 0, { NULL }, NULL },
	{ "sha256", P_STR, false, PAT_ANY, 0, 0, { NULL }, NULL },
	END
};
static const struct param_spec p_asset[] = { ASSET_KIND, END };
static const struct param_spec p_task_id[] = {
	{ "task_id", P_STR, true, PAT_UUID, 0, 0, { NULL }, NULL }, END
};
static const struct param_spec p_logs[] = {
	{ "task_id", P_STR, true, PAT_UUID, 0, 0, { NULL }, NULL },
	{ "offset", P_INT, false, PAT_ANY, 0, 1e15, { NULL }, "0" },
	{ "limit", P_INT, false, PAT_ANY, 1, 1048576, { NULL }, "65536" },
	END
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
	  NULL, billing_op_list_pods, NULL, NULL, NULL },
	{ "runpod.pod_logs", { NULL }, SCOPES("pods:read"), OP_SYNC, "runpod",
	  "Read the last lines of one of your pods' container and system "
	  "log from RunPod (bounded, secrets redacted).", p_pod_logs,
	  podlogs_validate, podlogs_op, NULL, NULL, NULL },
	{ "runpod.list_volumes", { NULL }, SCOPES("pods:read"), OP_SYNC,
	  "runpod", "List your RunPod network volumes.", no_params, NULL,
	  volumes_op_list, NULL, NULL, NULL },
	{ "runpod.create_volume", { NULL }, SCOPES("pods:write"), OP_SYNC,
	  "runpod", "Create a network volume (billed until deleted) to "
	  "mount on pods with volume_id.", p_volume_create, NULL,
	  volumes_op_create, NULL, NULL, NULL },
	{ "runpod.delete_volume", { NULL }, SCOPES("pods:write"), OP_SYNC,
	  "runpod", "Delete a network volume of yours no pod mounts.",
	  p_volume, NULL, volumes_op_delete, NULL, NULL, NULL },
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
	  OP_TASK, "runpod+ssh", "Provision, set up, upload, preprocess, "
	  "train, synthesize, fetch and terminate in one task.", p_pipeline,
	  pl_validate, NULL, pl_step, pl_cancel, pl_admit },
	{ "instag.logs", { NULL }, SCOPES("tasks:read"), OP_SYNC, "ssh",
	  "Read the remote log of one of your InsTaG tasks (or pipeline "
	  "steps) by byte offset.", p_logs, NULL, taskops_logs, NULL, NULL,
	  NULL },
	{ "instag.register_asset", { NULL }, SCOPES("instag:run"), OP_TASK,
	  NULL, "Register a licensed file InsTaG needs (BFM 2009, "
	  "EasyPortrait, pre-training checkpoints) from an upload or an "
	  "https URL, once.", p_register_asset, assetops_validate_register,
	  NULL, assetops_register_step, assetops_register_cancel,
	  assetops_admit_register },
	{ "instag.list_assets", { NULL }, SCOPES("instag:run"), OP_SYNC, NULL,
	  "List the licensed files you registered.", no_params, NULL,
	  assetops_list, NULL, NULL, NULL },
	{ "instag.delete_asset", { NULL }, SCOPES("instag:run"), OP_SYNC,
	  NULL, "Delete a licensed file you registered.", p_asset,
	  assetops_validate_kind, assetops_delete, NULL, NULL, NULL },
	{ "instag.place_assets", { NULL }, SCOPES("instag:run"), OP_TASK,
	  "ssh", "Copy the licensed files you registered onto a pod, "
	  "SHA-256 checked.", p_setup, need_target, NULL, iops_step,
	  iops_cancel, iops_admit_place },
	{ "tasks.get", { NULL }, SCOPES("tasks:read"), OP_SYNC, NULL,
	  "One of your tasks: state, progress, result, artifacts, error.",
	  p_task_id, NULL, taskops_get, NULL, NULL, NULL },
	{ "tasks.list", { NULL }, SCOPES("tasks:read"), OP_SYNC, NULL,
	  "Your tasks, newest first, paged.", p_tasks_list, NULL,
	  taskops_list, NULL, NULL, NULL },
	{ "tasks.cancel", { NULL }, SCOPES("tasks:write"), OP_SYNC, NULL,
	  "Cancel one of your tasks.", p_task_id, NULL, taskops_cancel, NULL,
	  NULL, NULL },
	{ "diag.timer", { NULL }, SCOPES("diag:run"), OP_TASK, "diagnostics",
	  "Diagnostics: wait on the timer queue for steps x interval_ms, "
	  "reporting progress.", p_diag, NULL, NULL, taskops_diag_timer_step,
	  NULL, NULL },
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
		return iops_ready(cfg, why);
	}
	return iops_ready(cfg, why);
}

/*
 * The task a message without an operation makes (OPS_ASK_INPUT): it waits
 * in input-required for a follow-up naming an operation
 * (tasks_give_input), and fails input_expired when none came within
 * input_required_timeout seconds of its creation.  A restart finds it in
 * the store and waits out the rest.
 */
static enum step_result
ask_input_step(struct task *t, const struct step_env *env)
{
	int64_t until = t->created_ms + env->cfg->input_required_timeout *
	    1000;
	char msg[160];

	if (env->now_ms < until) {
		if (t->state != TASK_INPUT_REQUIRED)
			task_set_state(t, TASK_INPUT_REQUIRED);
		t->next_wake_ms = until;
		return STEP_WAIT;
	}
	snprintf(msg, sizeof(msg), "no operation was given within %ld s; "
	    "send a new message naming one", env->cfg->input_required_timeout);
	task_fail(t, ERRC_INPUT_EXPIRED, msg);
	return STEP_DONE;
}

bool
ops_resolve(const char *name, const struct config *cfg,
    struct tasks_runner *out)
{
	const struct op_def *op = ops_find(name);
	const char *why = NULL;

	memset(out, 0, sizeof(*out));
	if (strcmp(name, OPS_ASK_INPUT) == 0) {
		out->step = ask_input_step;
		return true;
	}
	if (op == NULL || op->kind != OP_TASK)
		return false;
	out->step = op->step;
	out->cancel = op->cancel;
	if (!ops_available(op, cfg, &why))
		out->unavailable = why;
	return true;
}

/*
 * What every way of starting an operation checks first: the name, the
 * caller's scopes, the params (copied into *p: caller puts it), that it
 * can run here, and its admission.  0 and *op, *p; -1 with e set.
 */
static int
ops_prepare(const struct op_ctx *c, const char *name, json_object *params,
    const struct op_def **opp, json_object **p, struct op_error *e)
{
	const struct op_def *op;
	const char *why = NULL;
	char *err = NULL;
	size_t i;

	*p = NULL;
	op = ops_find(name);
	*opp = op;
	if (op == NULL) {
		name = name ? name : "";
		op_error_set(e, ERRC_UNKNOWN_OP, "unknown operation "
		    "'%.*s'; send a message without an operation to list them",
		    ju_utf8_prefix(name, 64), name);
		return -1;
	}
	for (i = 0; op->scopes[i]; i++) {
		if (!principal_has_scope(c->who, op->scopes[i])) {
			op_error_set(e, ERRC_FORBIDDEN, "operation %s "
			    "needs scope %s", op->name, op->scopes[i]);
			return -1;
		}
	}
	*p = params ? ju_copy(params) : json_object_new_object();
	if (params_validate(op->params, *p, (size_t)c->cfg->max_params,
	    &err) < 0 || (op->validate && op->validate(*p, c->cfg, &err) < 0)) {
		op_error_set(e, ERRC_INVALID_PARAMS, "%s: %s", op->name, err);
		goto fail;
	}
	if (!ops_available(op, c->cfg, &why)) {
		op_error_set(e, ERRC_NOT_CONFIGURED, "%s: %s", op->name, why);
		goto fail;
	}
	if (op->admit != NULL && op->admit(c, *p, e) < 0)
		goto fail;
	return 0;
fail:
	free(err);
	json_object_put(*p);
	*p = NULL;
	return -1;
}

/* c->message with the task's ids, for its history (a new reference);
 * NULL when there is no message. */
static json_object *
history_message(const struct op_ctx *c, const struct task *t)
{
	json_object *m;

	if (c->message == NULL)
		return NULL;
	m = ju_copy(c->message);
	json_object_object_add(m, "taskId", json_object_new_string(t->id));
	json_object_object_add(m, "contextId",
	    json_object_new_string(t->context_id));
	return m;
}

int
ops_invoke(const struct op_ctx *c, const char *name, json_object *params,
    const char *context_id, struct op_outcome *out)
{
	const struct op_def *op;
	json_object *p = NULL, *m;
	struct task *t;
	char *err = NULL;

	memset(out, 0, sizeof(*out));
	if (ops_prepare(c, name, params, &op, &p, &out->err) < 0)
		return -1;
	if (op->kind == OP_SYNC) {
		int rc = op->run(c, p, &out->result, &out->err);
		json_object_put(p);
		return rc;
	}
	t = task_new(c->who->sub, op->name, p, context_id);
	if ((m = history_message(c, t)) != NULL)
		task_add_history(t, m, (int)c->cfg->task_history_max);
	if (tasks_submit(t, &out->task, &err) < 0) {
		op_error_set(&out->err, ERRC_INTERNAL, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

int
ops_continue(const struct op_ctx *c, const struct task *waiting,
    const char *name, json_object *params, struct op_outcome *out)
{
	const struct op_def *op;
	json_object *p = NULL, *res = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (ops_prepare(c, name, params, &op, &p, &out->err) < 0)
		return -1;
	if (op->kind == OP_SYNC && op->run(c, p, &res, &out->err) < 0) {
		json_object_put(p);
		return -1;
	}
	rc = tasks_give_input(waiting->id, c->who->sub, OPS_ASK_INPUT,
	    op->name, p, history_message(c, waiting), res, &out->task);
	if (rc == 0)
		return 0;
	if (rc > 0)
		op_error_set(&out->err, rc == 1 ? ERRC_TASK_NOT_FOUND :
		    ERRC_NOT_WAITING, rc == 1 ? "Task not found" : "the task "
		    "no longer waits for input (it was canceled, expired or "
		    "given an operation already)");
	else
		op_error_set(&out->err, ERRC_INTERNAL, "the task store failed");
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
