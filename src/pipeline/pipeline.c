/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instag/iops.h"
#include "lib/backoff.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "pipeline/pipeline.h"
#include "pipeline/podwatch.h"
#include "providers/runpod/billing.h"
#include "providers/runpod/podcost.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/provision.h"
#include "providers/runpod/runpod.h"
#include "store/store.h"

#define RELEASE_TRIES 10	/* terminate attempts before leaving it to
				 * the reaper and the cost guard */
#define RETRY_MAX_MS 60000

/* ---- the stages ---------------------------------------------------------- */

struct stage_def {
	const char *name;	/* in the checkpoint, progress, metrics */
	int weight;		/* expected share of the time (of 100) */
};

/* In pipeline order; the weights are rough shares of a real run on one
 * GPU (training dominates, then preprocessing). */
static const struct stage_def STAGES[] = {
	{ "provision", 4 }, { "reuse", 1 }, { "setup", 8 }, { "assets", 2 },
	{ "upload", 1 }, { "preprocess", 25 }, { "train", 50 },
	{ "synthesize", 5 }, { "fetch", 2 }, { "terminate", 1 },
};
#define NSTAGES (sizeof(STAGES) / sizeof(STAGES[0]))

static size_t
stage_index(const char *name)
{
	size_t i;

	for (i = 0; i < NSTAGES; i++)
		if (strcmp(STAGES[i].name, name) == 0)
			return i;
	return 0;
}

/* One part of a stage: another operation's steps (NULL step: the stage
 * is done here, without a part). */
struct part {
	const char *op;
	op_step_fn step;
	op_step_fn cancel;
};

/* ---- metrics ------------------------------------------------------------- */

static const double BUCKETS[] = { 1, 5, 15, 60, 300, 900, 3600, 14400 };
#define NBUCKETS (sizeof(BUCKETS) / sizeof(BUCKETS[0]))

struct active {
	char id[UUID_STR_LEN];
	size_t stage;
};

static struct {
	pthread_mutex_t lock;
	struct active *act;
	size_t nact, cap;
	unsigned long started, completed, failed, canceled;
	unsigned long recovered;	/* new pods for lost ones */
	unsigned long hist[NSTAGES][NBUCKETS + 1];
	double hsum[NSTAGES];
	unsigned long hcount[NSTAGES];
} M = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The task is at stage (index) now; added when new. */
static void
track(const struct task *t, size_t stage)
{
	size_t i;

	pthread_mutex_lock(&M.lock);
	for (i = 0; i < M.nact; i++)
		if (strcmp(M.act[i].id, t->id) == 0)
			break;
	if (i == M.nact) {
		if (M.nact == M.cap) {
			M.cap = M.cap ? M.cap * 2 : 16;
			M.act = xrealloc(M.act, M.cap * sizeof(*M.act));
		}
		memcpy(M.act[i].id, t->id, sizeof(M.act[i].id));
		M.nact++;
	}
	M.act[i].stage = stage;
	pthread_mutex_unlock(&M.lock);
}

/* The task ended in state s. */
static void
untrack(const struct task *t, enum task_state s)
{
	size_t i;

	pthread_mutex_lock(&M.lock);
	for (i = 0; i < M.nact; i++)
		if (strcmp(M.act[i].id, t->id) == 0) {
			M.act[i] = M.act[--M.nact];
			break;
		}
	if (s == TASK_COMPLETED)
		M.completed++;
	else if (s == TASK_CANCELED)
		M.canceled++;
	else
		M.failed++;
	pthread_mutex_unlock(&M.lock);
}

static void
observe(size_t stage, double seconds)
{
	size_t b;

	pthread_mutex_lock(&M.lock);
	for (b = 0; b < NBUCKETS && seconds > BUCKETS[b]; b++)
		;
	M.hist[stage][b]++;
	M.hsum[stage] += seconds;
	M.hcount[stage]++;
	pthread_mutex_unlock(&M.lock);
}

void
pl_metrics(struct strbuf *sb)
{
	unsigned long by[NSTAGES] = { 0 };
	size_t i, b;

	pthread_mutex_lock(&M.lock);
	for (i = 0; i < M.nact; i++)
		by[M.act[i].stage]++;
	sb_adds(sb, "# HELP instag_agent_pipelines instag.pipeline tasks "
	    "running in this process, by stage.\n"
	    "# TYPE instag_agent_pipelines gauge\n");
	for (i = 0; i < NSTAGES; i++)
		sb_addf(sb, "instag_agent_pipelines{state=\"working\","
		    "step=\"%s\"} %lu\n", STAGES[i].name, by[i]);
	sb_addf(sb, "# HELP instag_agent_pipelines_total instag.pipeline "
	    "tasks started, and ended by state.\n"
	    "# TYPE instag_agent_pipelines_total counter\n"
	    "instag_agent_pipelines_total{state=\"started\"} %lu\n"
	    "instag_agent_pipelines_total{state=\"completed\"} %lu\n"
	    "instag_agent_pipelines_total{state=\"failed\"} %lu\n"
	    "instag_agent_pipelines_total{state=\"canceled\"} %lu\n",
	    M.started, M.completed, M.failed, M.canceled);
	sb_addf(sb, "# HELP instag_agent_pipeline_recoveries_total Lost pods "
	    "a pipeline replaced with a new one.\n"
	    "# TYPE instag_agent_pipeline_recoveries_total counter\n"
	    "instag_agent_pipeline_recoveries_total %lu\n", M.recovered);
	sb_adds(sb, "# HELP instag_agent_pipeline_step_seconds How long each "
	    "pipeline step took.\n"
	    "# TYPE instag_agent_pipeline_step_seconds histogram\n");
	for (i = 0; i < NSTAGES; i++) {
		unsigned long cum = 0;
		for (b = 0; b < NBUCKETS; b++) {
			cum += M.hist[i][b];
			sb_addf(sb, "instag_agent_pipeline_step_seconds_bucket{"
			    "step=\"%s\",le=\"%g\"} %lu\n", STAGES[i].name,
			    BUCKETS[b], cum);
		}
		cum += M.hist[i][NBUCKETS];
		sb_addf(sb, "instag_agent_pipeline_step_seconds_bucket{"
		    "step=\"%s\",le=\"+Inf\"} %lu\n"
		    "instag_agent_pipeline_step_seconds_sum{step=\"%s\"} %.3f\n"
		    "instag_agent_pipeline_step_seconds_count{step=\"%s\"} "
		    "%lu\n", STAGES[i].name, cum, STAGES[i].name, M.hsum[i],
		    STAGES[i].name, M.hcount[i]);
	}
	pthread_mutex_unlock(&M.lock);
}

/* ---- params -------------------------------------------------------------- */

int
pl_validate(json_object *params, const struct config *cfg, char **err)
{
	bool has_pod = ju_str(params, "pod_id") != NULL;
	bool has_gpus = ju_arr(params, "gpu_type_ids") != NULL;
	bool has_model = ju_str(params, "model") != NULL;
	bool has_video = ju_str(params, "video") != NULL;

	if (has_model == has_video) {
		*err = xstrdup(has_model ? "give either video (train a new "
		    "model) or model (render with one you trained), not both" :
		    "video is required (the person to train on) unless model "
		    "names a model of yours to render with");
		return -1;
	}
	if (has_model && !has_pod && ju_str(params, "volume_id") == NULL) {
		*err = xstrdup("model needs pod_id or volume_id: a trained "
		    "model lives on the pod that trained it (run the "
		    "training pipeline with keep_pod, then give its pod_id) "
		    "or on the network volume it trained on");
		return -1;
	}
	if (has_pod && ju_str(params, "volume_id") != NULL) {
		*err = xstrdup("volume_id is for a new pod: give either "
		    "pod_id or volume_id, not both");
		return -1;
	}
	if (has_pod == has_gpus) {
		*err = xstrdup(has_pod ? "give either pod_id (a running pod of "
		    "yours) or gpu_type_ids (a new pod), not both" :
		    "gpu_type_ids is required (the GPU types to try, in order) "
		    "unless pod_id names a running pod of yours");
		return -1;
	}
	return has_gpus ? prov_validate(params, cfg, err) : 0;
}

int
pl_admit(const struct op_ctx *c, json_object *params, struct op_error *e)
{
	const char *pod = ju_str(params, "pod_id");
	struct pod_rec *r = NULL;

	if (pod != NULL) {
		if (store_pod_get(pods_store(), pod, &r) != 0 ||
		    strcmp(r->owner, c->who->sub) != 0) {
			store_pod_free(r);
			op_error_set(e, ERRC_POD_NOT_FOUND, "no pod with id "
			    "'%.64s' was provisioned by you through this agent",
			    pod);
			return -1;
		}
		if (strcmp(r->state, "active") != 0 || r->host_fp == NULL) {
			op_error_set(e, ERRC_POD_NOT_READY, "pod %s is %s: "
			    "resume it (runpod.resume_pod) or leave out pod_id",
			    pod, r->state);
			store_pod_free(r);
			return -1;
		}
		store_pod_free(r);
	}
	return iops_admit_sources(c, params, e);
}

/* Copy the members keys (NULL-terminated) of src present in dst. */
static void
copy_keys(json_object *dst, json_object *src, const char *const *keys)
{
	json_object *v;

	for (; *keys != NULL; keys++)
		if (json_object_object_get_ex(src, *keys, &v))
			json_object_object_add(dst, *keys, ju_copy(v));
}

/*
 * The part subn of the stage (checkpoint entry st) of t: *p and its params
 * (new reference, *params).  false when the stage has no part subn.
 */
static bool
part_of_stage(const struct task *t, json_object *st, int64_t subn,
    struct part *p, json_object **params)
{
	static const char *const prov[] = { "gpu_type_ids", "cloud_type",
	    "gpu_count", "image", "container_disk_gb", "volume_gb",
	    "max_runtime_minutes", "max_cost_usd", "idle_minutes",
	    "volume_id", NULL };
	static const char *const subj[] = { "subject", NULL };
	static const char *const upl[] = { "video", "convert", NULL };
	static const char *const train[] = { "audio_extractor", "iterations",
	    "n_views", "gpu_id", NULL };
	static const char *const synth[] = { "audio_extractor", "gpu_id",
	    NULL };
	const char *name = ju_str(st, "name");
	const char *pod = task_ckpt_str(t, "pod_id");
	const char *model = task_ckpt_str(t, "model");
	json_object *o;
	int64_t ai = 0;

	memset(p, 0, sizeof(*p));
	*params = NULL;
	if (strcmp(name, "provision") == 0) {
		if (subn > 0)
			return false;
		*p = (struct part){ "runpod.provision_pod",
		    prov_provision_step, prov_provision_cancel };
		*params = json_object_new_object();
		copy_keys(*params, t->params, prov);
		return true;
	}
	if (strcmp(name, "reuse") == 0 || strcmp(name, "terminate") == 0)
		return false;
	o = json_object_new_object();
	json_object_object_add(o, "pod_id", ju_new_str(pod));
	copy_keys(o, t->params, subj);
	if (strcmp(name, "setup") == 0 && subn == 0)
		*p = (struct part){ "instag.setup_environment", iops_step,
		    iops_cancel };
	else if (strcmp(name, "assets") == 0 && subn == 0)
		*p = (struct part){ "instag.place_assets", iops_step,
		    iops_cancel };
	else if (strcmp(name, "assets") == 0 && subn == 1 &&
	    !task_ckpt_bool(t, "setup_ready", false))
		/* the check: everything InsTaG needs is in place now */
		*p = (struct part){ "instag.setup_environment", iops_step,
		    iops_cancel };
	else if (strcmp(name, "upload") == 0 && subn == 0) {
		*p = (struct part){ "instag.upload_data", iops_step,
		    iops_cancel };
		copy_keys(o, t->params, upl);
	} else if (strcmp(name, "preprocess") == 0 && subn == 0) {
		*p = (struct part){ "instag.preprocess", iops_step,
		    iops_cancel };
		copy_keys(o, t->params, (const char *const[]){ "gpu_id",
		    NULL });
	} else if (strcmp(name, "train") == 0 && subn == 0) {
		*p = (struct part){ "instag.train", iops_step, iops_cancel };
		copy_keys(o, t->params, train);
		json_object_object_add(o, "output_name",
		    json_object_new_string(model));
	} else if (strcmp(name, "synthesize") == 0 && subn == 0) {
		*p = (struct part){ "instag.synthesize", iops_step,
		    iops_cancel };
		copy_keys(o, t->params, synth);
		json_object_object_add(o, "output_name",
		    json_object_new_string(model));
		ju_int(st, "audio", &ai);
		json_object_object_add(o, "audio", ju_copy(
		    json_object_array_get_idx(ju_arr(t->params, "audio"),
		    (size_t)ai)));
	} else if (strcmp(name, "fetch") == 0 && subn == 0) {
		*p = (struct part){ "instag.fetch_results", iops_step,
		    iops_cancel };
		copy_keys(o, t->params, (const char *const[]){
		    "include_model", NULL });
		json_object_object_add(o, "output_name",
		    json_object_new_string(model));
	} else {
		json_object_put(o);
		return false;
	}
	*params = o;
	return true;
}

/* The stage list of a new pipeline: [{"name":..,"audio":i}, ...]. */
static json_object *
make_stages(const struct task *t)
{
	json_object *a = json_object_new_array(), *o;
	json_object *audio = ju_arr(t->params, "audio");
	bool keep = false, reuse = ju_str(t->params, "pod_id") != NULL;
	size_t i, n = audio ? json_object_array_length(audio) : 0;
	static const char *const mid[] = { "setup", "assets", "upload",
	    "preprocess", "train", NULL };
	/* rendering with a model of the owner's: no upload, no training */
	static const char *const mid_model[] = { "setup", "assets", NULL };
	const char *const *s;

	ju_bool(t->params, "keep_pod", &keep);
#define ADD(nm) do { o = json_object_new_object(); \
	json_object_object_add(o, "name", json_object_new_string(nm)); \
	json_object_array_add(a, o); } while (0)
	ADD(reuse ? "reuse" : "provision");
	for (s = ju_str(t->params, "model") ? mid_model : mid; *s != NULL;
	    s++)
		ADD(*s);
	for (i = 0; i < n; i++) {
		ADD("synthesize");
		json_object_object_add(o, "audio",
		    json_object_new_int64((int64_t)i));
	}
	ADD("fetch");
	if (!reuse && !keep)
		ADD("terminate");
#undef ADD
	return a;
}

/* ---- running a part ------------------------------------------------------ */

/*
 * The step_env a part's steps get: its checkpoint commits the pipeline
 * task, whose checkpoint holds the part's.  env comes first, so that the
 * callback finds the rest.
 */
struct pl_env {
	struct step_env env;
	const struct step_env *outer;
	struct task *parent;
};

static void show(struct task *t, const struct task *part);

static int
part_checkpoint(const struct step_env *env, struct task *part, char **err)
{
	const struct pl_env *pe = (const struct pl_env *)env;

	show(pe->parent, part);
	return pe->outer->checkpoint(pe->outer, pe->parent, err);
}

/*
 * The part of t as a task of its own: t's id, context and owner
 * (borrowed), the part's operation (static) and params (taken), its
 * checkpoint (the pipeline checkpoint's "sub" object, borrowed) and t's
 * artifacts (borrowed: a fetch adds to the pipeline's).  Released with
 * part_release.
 */
static void
part_init(struct task *part, struct task *t, const char *op,
    json_object *params)
{
	json_object *ck = ju_obj(t->checkpoint, "sub");

	memset(part, 0, sizeof(*part));
	memcpy(part->id, t->id, sizeof(part->id));
	memcpy(part->context_id, t->context_id, sizeof(part->context_id));
	part->owner = t->owner;
	part->operation = (char *)op;
	part->params = params;
	part->state = TASK_WORKING;
	part->progress = json_object_get(ju_obj(ck, "progress"));
	part->artifacts = t->artifacts;
	part->checkpoint = ck;
	part->history = json_object_new_array();
	part->created_ms = task_ckpt_int(t, "part_started_ms", t->created_ms);
	part->updated_ms = t->updated_ms;
	part->next_wake_ms = t->next_wake_ms;
	part->cancel_requested = t->cancel_requested;
}

static void
part_release(struct task *part)
{
	json_object_put(part->params);
	json_object_put(part->progress);
	json_object_put(part->result);
	json_object_put(part->error);
	json_object_put(part->history);
	memset(part, 0, sizeof(*part));
}

/* Run one step (or, cancel, one cancel step) of the current part. */
static enum step_result
part_run(struct task *t, const struct step_env *env, const struct part *p,
    struct task *part, bool cancel)
{
	struct pl_env pe;
	enum step_result r;
	json_object *ck = part->checkpoint;

	pe.env = *env;
	pe.env.checkpoint = part_checkpoint;
	pe.outer = env;
	pe.parent = t;
	r = cancel ? (p->cancel ? p->cancel(part, &pe.env) : STEP_DONE) :
	    p->step(part, &pe.env);
	t->next_wake_ms = part->next_wake_ms;
	if (part->progress != NULL)
		json_object_object_add(ck, "progress",
		    json_object_get(part->progress));
	return r;
}

/* ---- progress ------------------------------------------------------------ */

/* Step k of n, the weighted percent, the part's message and log line;
 * changed only when something in it changed. */
static void
show(struct task *t, const struct task *part)
{
	json_object *stages = ju_arr(t->checkpoint, "stages");
	size_t n = stages ? json_object_array_length(stages) : 0, i;
	int64_t k = task_ckpt_int(t, "stage", 0);
	int64_t total = 0, done = 0, cur = 0, sp = 0;
	const char *name, *sub = NULL, *log = NULL, *old;
	json_object *tail = NULL, *otail;
	char msg[400];
	int pct;

	if (n == 0)
		return;
	if (k >= (int64_t)n)
		k = (int64_t)n - 1;
	for (i = 0; i < n; i++) {
		int w = STAGES[stage_index(ju_str(json_object_array_get_idx(
		    stages, i), "name"))].weight;
		total += w;
		if ((int64_t)i < k)
			done += w;
		else if ((int64_t)i == k)
			cur = w;
	}
	name = ju_str(json_object_array_get_idx(stages, (size_t)k), "name");
	if (part != NULL && part->progress != NULL) {
		int64_t v = 0;
		ju_int(part->progress, "percent", &v);
		sp = v;
		sub = ju_str(part->progress, "message");
		log = ju_str(part->progress, "log");
		tail = ju_arr(part->progress, "log_tail");
	}
	pct = (int)((done * 100 + cur * sp) / (total > 0 ? total : 1));
	snprintf(msg, sizeof(msg), "step %lld of %zu, %s%s%s",
	    (long long)k + 1, n, name, sub && sub[0] ? ": " : "",
	    sub ? sub : "");
	if (t->progress != NULL) {
		int64_t op = -1;
		const char *ol = ju_str(t->progress, "log");
		old = ju_str(t->progress, "message");
		ju_int(t->progress, "percent", &op);
		bool same_log = (ol == NULL && log == NULL) ||
		    (ol != NULL && log != NULL && strcmp(ol, log) == 0);
		otail = ju_arr(t->progress, "log_tail");
		if (old != NULL && strcmp(old, msg) == 0 && op == pct &&
		    same_log && ((otail == NULL && tail == NULL) ||
		    (otail != NULL && tail != NULL &&
		    json_object_equal(otail, tail))))
			return;
	}
	{
		char *keep = log ? xstrdup(log) : NULL;
		/* the part's last log lines, kept across the replacement */
		json_object_get(tail);
		task_set_progress_pct(t, (int)k + 1, (int)n, pct, msg);
		json_object_object_add(t->progress, "stage",
		    json_object_new_string(name));
		if (keep != NULL)
			json_object_object_add(t->progress, "log",
			    json_object_new_string(keep));
		if (tail != NULL)
			json_object_object_add(t->progress, "log_tail", tail);
		free(keep);
	}
}

int
pl_read_log(const struct config *cfg, const struct task *t,
    int64_t offset, int64_t limit, json_object **result,
    struct op_error *e)
{
	json_object *sub = ju_obj(t->checkpoint, "sub");
	const char *pod = task_ckpt_str(t, "pod_id");
	struct task v;
	int rc;

	*result = NULL;
	if (sub == NULL || pod == NULL) {
		int64_t k = task_ckpt_int(t, "stage", 0);
		if (pod != NULL && (k > 1 || (k == 1 &&
		    task_ckpt_int(t, "subn", 0) > 0)))
			op_error_set(e, ERRC_LOG_GONE, "the pipeline runs no "
			    "remote job now: its last one succeeded and its "
			    "directory on the pod, with its log, was removed; "
			    "the task's progress.log_tail keeps its last "
			    "lines");
		else
			op_error_set(e, ERRC_NO_LOG, "task %s has not started "
			    "a remote job yet", t->id);
		return -1;
	}
	/* the part as iops_step sees it (part_init) */
	memset(&v, 0, sizeof(v));
	memcpy(v.id, t->id, sizeof(v.id));
	v.owner = t->owner;
	v.operation = t->operation;
	v.checkpoint = sub;
	v.params = json_object_new_object();
	json_object_object_add(v.params, "pod_id",
	    json_object_new_string(pod));
	rc = iops_read_log(cfg, &v, offset, limit, result, e);
	json_object_put(v.params);
	return rc;
}

/* ---- the result ---------------------------------------------------------- */

/* A number member of o (0 when absent or not a number). */
static double
num_of(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    (!json_object_is_type(v, json_type_double) &&
	    !json_object_is_type(v, json_type_int)))
		return 0;
	return json_object_get_double(v);
}

/* The minutes the pipeline has held its current pod (0 before one). */
static double
pod_minutes(const struct task *t, int64_t now)
{
	int64_t since = task_ckpt_int(t, "pod_since_ms", 0);
	int64_t until = task_ckpt_int(t, "pod_until_ms", 0);

	if (until == 0)
		until = now;
	return since > 0 && until > since ? (double)(until - since) /
	    60000.0 : 0;
}

/* The current pod as a lost one is recorded in the checkpoint: {pod_id,
 * gpu_type_id, minutes, usd_per_hr, usd}.  New reference. */
static json_object *
pod_segment(const struct task *t, int64_t now)
{
	json_object *o = json_object_new_object();
	double min = pod_minutes(t, now);
	double rate = num_of(t->checkpoint, "pod_rate");

	json_object_object_add(o, "pod_id",
	    ju_new_str(task_ckpt_str(t, "pod_id")));
	json_object_object_add(o, "gpu_type_id",
	    ju_new_str(task_ckpt_str(t, "pod_gpu")));
	json_object_object_add(o, "minutes", json_object_new_double(
	    podcost_round(min, 1e-4)));
	json_object_object_add(o, "usd_per_hr", json_object_new_double(rate));
	json_object_object_add(o, "usd", json_object_new_double(
	    podcost_round(min / 60 * rate, 1e-6)));
	return o;
}

/*
 * What holding the current pod cost.  A pod this pipeline created is its
 * alone: the registry's figures (compute and disk storage,
 * billing_task_cost) reconciled with RunPod's billing.  A pod it reused
 * (params.pod_id) is billed per pod, not per task: the minutes this
 * pipeline held it at the pod's rates (compute as RunPod reported it,
 * storage for its disks while running), and billed null.  New reference.
 */
static json_object *
pod_cost(const struct task *t, int64_t now)
{
	json_object *o;
	struct pod_rec *r = NULL;
	const char *pod = task_ckpt_str(t, "pod_id");
	double rate = num_of(t->checkpoint, "pod_rate"), min, srate = 0;
	bool have = pod != NULL && store_pod_get(pods_store(), pod, &r) == 0;

	if (have && task_ckpt_bool(t, "pod_created", false)) {
		o = billing_task_cost(r);
		store_pod_free(r);
		return o;
	}
	if (have)
		srate = podcost_storage_rate(r, false);
	store_pod_free(r);
	min = pod_minutes(t, now);
	o = json_object_new_object();
	json_object_object_add(o, "minutes", json_object_new_double(
	    podcost_round(min, 1e-4)));
	json_object_object_add(o, "running_minutes", json_object_new_double(
	    podcost_round(min, 1e-4)));
	json_object_object_add(o, "stopped_minutes",
	    json_object_new_double(0));
	json_object_object_add(o, "usd_per_hr", json_object_new_double(rate));
	json_object_object_add(o, "storage_usd_per_hr",
	    json_object_new_double(podcost_round(srate, 1e-6)));
	json_object_object_add(o, "compute_usd", json_object_new_double(
	    podcost_round(min / 60 * rate, 1e-6)));
	json_object_object_add(o, "storage_usd", json_object_new_double(
	    podcost_round(min / 60 * srate, 1e-6)));
	json_object_object_add(o, "usd", json_object_new_double(
	    podcost_round(min / 60 * (rate + srate), 1e-6)));
	json_object_object_add(o, "basis", json_object_new_string(
	    "minutes this pipeline held a pod it did not create, at the "
	    "pod's hourly rate as RunPod reported it plus its disks' "
	    "storage rate"));
	json_object_object_add(o, "billed", NULL);
	json_object_object_add(o, "billed_note", json_object_new_string(
	    pod == NULL ? "no pod was held" : "RunPod bills the pod, not "
	    "this task: runpod.get_pod and runpod.list_pods show its whole "
	    "cost"));
	return o;
}

/*
 * A lost pod's cost (seg: what the checkpoint recorded at the loss): the
 * registry's figures reconciled with RunPod's billing, as for a pod held
 * now, or the recorded minutes at its rate when the registry has no row.
 * New reference.
 */
static json_object *
lost_cost(json_object *seg)
{
	struct pod_rec *r = NULL;
	const char *id = ju_str(seg, "pod_id");
	json_object *o;

	if (id != NULL && store_pod_get(pods_store(), id, &r) == 0) {
		o = billing_task_cost(r);
		store_pod_free(r);
	} else {
		o = ju_copy(seg);
		json_object_object_add(o, "compute_usd", json_object_new_double(
		    num_of(seg, "usd")));
		json_object_object_add(o, "billed", NULL);
		json_object_object_add(o, "billed_note", json_object_new_string(
		    "the agent no longer holds this pod's record"));
	}
	json_object_object_add(o, "pod_id", ju_new_str(id));
	json_object_object_add(o, "lost", json_object_new_boolean(true));
	return o;
}

/* sum.key += part.key, rounded to unit. */
static void
add_to(json_object *sum, json_object *part, const char *key, double unit)
{
	json_object_object_add(sum, key, json_object_new_double(
	    podcost_round(num_of(sum, key) + num_of(part, key), unit)));
}

/*
 * What the pipeline's pods cost.  With one pod, pod_cost.  After
 * recoveries, the sums over every pod it held (the lost ones it replaced
 * and the current one), each pod's own cost object in "pods"; "billed" is
 * the sum of RunPod's figures when its billing answered for every pod,
 * else null with a note.  New reference.
 */
static json_object *
cost_of(const struct task *t, int64_t now)
{
	static const char *const mins[] = { "minutes", "running_minutes",
	    "stopped_minutes", NULL };
	static const char *const usds[] = { "compute_usd", "storage_usd",
	    "usd", NULL };
	json_object *o = pod_cost(t, now);
	json_object *lost = ju_arr(t->checkpoint, "lost_pods");
	size_t i, n = lost ? json_object_array_length(lost) : 0;
	json_object *pods, *cur, *billed = NULL, *c, *b;
	const char *const *k;
	int64_t recs, more;

	if (n == 0)
		return o;
	cur = ju_copy(o);
	json_object_object_add(cur, "pod_id",
	    ju_new_str(task_ckpt_str(t, "pod_id")));
	json_object_object_add(cur, "lost", json_object_new_boolean(false));
	if (ju_obj(o, "billed") != NULL)
		billed = ju_copy(ju_obj(o, "billed"));
	pods = json_object_new_array();
	for (i = 0; i < n; i++) {
		c = lost_cost(json_object_array_get_idx(lost, i));
		for (k = mins; *k != NULL; k++)
			add_to(o, c, *k, 1e-4);
		for (k = usds; *k != NULL; k++)
			add_to(o, c, *k, 1e-6);
		b = ju_obj(c, "billed");
		if (b != NULL && billed != NULL) {
			add_to(billed, b, "usd", 1e-6);
			add_to(billed, b, "compute_usd", 1e-6);
			add_to(billed, b, "storage_usd", 1e-6);
			if (ju_int(billed, "records", &recs) == 0 &&
			    ju_int(b, "records", &more) == 0)
				json_object_object_add(billed, "records",
				    json_object_new_int64(recs + more));
		} else if (billed != NULL) {
			json_object_put(billed);
			billed = NULL;
		}
		json_object_array_add(pods, c);
	}
	json_object_array_add(pods, cur);
	json_object_object_add(o, "basis", json_object_new_string(
	    "the sum of the costs of the pods this pipeline held (pods), each "
	    "as its own basis says"));
	json_object_object_del(o, "difference_usd");
	json_object_object_del(o, "billed_note");
	if (billed != NULL) {
		json_object_object_add(o, "difference_usd",
		    json_object_new_double(podcost_round(num_of(o, "usd") -
		    num_of(billed, "usd"), 1e-6)));
		json_object_object_add(o, "billed", billed);
	} else {
		json_object_object_add(o, "billed", NULL);
		json_object_object_add(o, "billed_note", json_object_new_string(
		    "RunPod's billing did not answer for every pod of this "
		    "pipeline: see pods"));
	}
	json_object_object_add(o, "pods", pods);
	return o;
}

/*
 * A rendered video's artifact with the audio that drove it: the name ends
 * in _s<k>a.mp4, k the synthesize stage, whose "audio" is the index into
 * params.audio.  New reference.
 */
static json_object *
video_of(const struct task *t, json_object *art)
{
	json_object *v = ju_copy(art), *stages = ju_arr(t->checkpoint,
	    "stages");
	const char *name = ju_str(art, "name"), *u;
	size_t i, n = stages ? json_object_array_length(stages) : 0;
	char suffix[32];

	for (i = 0; name != NULL && i < n; i++) {
		json_object *st = json_object_array_get_idx(stages, i);
		int64_t ai = -1;
		if (ju_int(st, "audio", &ai) != 0)
			continue;
		snprintf(suffix, sizeof(suffix), "_s%zua.mp4", i);
		u = strstr(name, suffix);
		if (u == NULL || u[strlen(suffix)] != '\0')
			continue;
		json_object_object_add(v, "audio_index",
		    json_object_new_int64(ai));
		json_object_object_add(v, "audio", ju_copy(
		    json_object_array_get_idx(ju_arr(t->params, "audio"),
		    (size_t)ai)));
	}
	return v;
}

static json_object *
result_of(const struct task *t, int64_t now)
{
	json_object *r = json_object_new_object(), *pod, *videos, *a;
	const char *pid = task_ckpt_str(t, "pod_id");
	size_t i, n = json_object_array_length(t->artifacts);

	json_object_object_add(r, "subject",
	    ju_new_str(ju_str(t->params, "subject")));
	json_object_object_add(r, "model",
	    ju_new_str(task_ckpt_str(t, "model")));
	if (task_ckpt_str(t, "model_dir") != NULL)
		json_object_object_add(r, "model_dir",
		    ju_new_str(task_ckpt_str(t, "model_dir")));
	videos = json_object_new_array();
	for (i = 0; i < n; i++) {
		const char *mt;
		a = json_object_array_get_idx(t->artifacts, i);
		mt = ju_str(a, "mimeType");
		if (mt != NULL && strcmp(mt, "video/mp4") == 0)
			json_object_array_add(videos, video_of(t, a));
		else if (mt != NULL && strcmp(mt, "application/gzip") == 0)
			json_object_object_add(r, "model_archive", ju_copy(a));
	}
	json_object_object_add(r, "videos", videos);
	pod = json_object_new_object();
	json_object_object_add(pod, "pod_id", ju_new_str(pid));
	json_object_object_add(pod, "gpu_type_id",
	    ju_new_str(task_ckpt_str(t, "pod_gpu")));
	json_object_object_add(pod, "reused", json_object_new_boolean(
	    ju_str(t->params, "pod_id") != NULL));
	json_object_object_add(pod, "terminated", json_object_new_boolean(
	    task_ckpt_bool(t, "pod_terminated", false)));
	if (task_ckpt_str(t, "pod_note") != NULL)
		json_object_object_add(pod, "note",
		    ju_new_str(task_ckpt_str(t, "pod_note")));
	json_object_object_add(r, "pod", pod);
	json_object_object_add(r, "cost", cost_of(t, now));
	json_object_object_add(r, "recoveries",
	    ju_arr(t->checkpoint, "recoveries") ? ju_copy(ju_arr(
	    t->checkpoint, "recoveries")) : json_object_new_array());
	a = ju_obj(t->checkpoint, "seconds");
	json_object_object_add(r, "seconds", a ? ju_copy(a) :
	    json_object_new_object());
	return r;
}

/* ---- releasing the pod --------------------------------------------------- */

/*
 * Terminate the pod this pipeline created (once; who for the registry).
 * 1 done (or nothing to do), 0 retry later (t->next_wake_ms set), -1 gave
 * up (pod_note says why; the reaper and cost guard go on trying).
 */
static int
release_pod(struct task *t, const struct step_env *env, const char *who,
    const char *reason)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	const char *pod = task_ckpt_str(t, "pod_id");
	int64_t n = task_ckpt_int(t, "release_tries", 0) + 1;
	char note[300];
	int rc;

	if (pod == NULL || !task_ckpt_bool(t, "pod_created", false) ||
	    task_ckpt_bool(t, "pod_terminated", false))
		return 1;
	task_ckpt_set_int(t, "release_tries", n);
	c = pods_client(&e);
	if (c != NULL && pods_terminate(c, pod, who, reason, &e) == 0) {
		task_ckpt_set_bool(t, "pod_terminated", true);
		task_ckpt_set_int(t, "pod_until_ms", env->now_ms);
		rc = 1;
	} else if (c != NULL && pods_transient(&e) && n < RELEASE_TRIES) {
		t->next_wake_ms = env->now_ms + backoff_half_jitter(
		    backoff_exp_ms(1000, RETRY_MAX_MS, (int)n));
		if (e.retry_after_s > 0)
			t->next_wake_ms = env->now_ms + e.retry_after_s * 1000;
		rc = 0;
	} else {
		snprintf(note, sizeof(note), "pod %s could NOT be terminated "
		    "(%s): the reaper and the cost guard will try again", pod,
		    c == NULL ? "RunPod is not configured" :
		    runpod_error_kind_name(e.kind));
		task_ckpt_set_str(t, "pod_note", note);
		log_kv(LOG_ERROR, "pipeline_release_failed", note, "task",
		    t->id, "pod", pod, NULL);
		rc = -1;
	}
	runpod_error_clear(&e);
	return rc;
}

/* Fail the pipeline with code and message after releasing its pod (phase
 * "release", a step of its own). */
static enum step_result
fail_later(struct task *t, const struct step_env *env, const char *code,
    const char *msg)
{
	task_ckpt_set_str(t, "phase", "release");
	task_ckpt_set_str(t, "fail_code", code);
	task_ckpt_set_str(t, "fail_message", msg);
	task_ckpt_set_int(t, "release_tries", 0);
	t->next_wake_ms = env->now_ms;
	return STEP_WAIT;
}

static enum step_result
release_step(struct task *t, const struct step_env *env)
{
	bool keep = false;
	const char *pod = task_ckpt_str(t, "pod_id");
	char *msg;
	int rc = 1;

	ju_bool(t->params, "keep_pod", &keep);
	if (!keep && (rc = release_pod(t, env, "owner",
	    "instag.pipeline failed")) == 0)
		return STEP_WAIT;
	if (pod != NULL && task_ckpt_bool(t, "pod_created", false))
		msg = xasprintf("%s; pod %s %s", task_ckpt_str(t,
		    "fail_message"), pod, keep ? "is kept (keep_pod)" :
		    rc > 0 ? "was terminated" : task_ckpt_str(t, "pod_note"));
	else
		msg = xstrdup(task_ckpt_str(t, "fail_message"));
	json_object_put(t->result);
	t->result = result_of(t, env->now_ms);
	task_fail(t, task_ckpt_str(t, "fail_code"), msg);
	free(msg);
	untrack(t, TASK_FAILED);
	return STEP_DONE;
}

/* ---- stages done --------------------------------------------------------- */

/*
 * What the setup check (its result res) says is missing, and how to supply
 * each: "FILE (HOW); ...".  Caller frees.
 */
static char *
missing_text(json_object *res)
{
	json_object *ma = ju_arr(res, "missing_assets");
	json_object *m = ju_arr(res, "missing");
	struct strbuf sb = SB_INIT;
	size_t i, n = ma ? json_object_array_length(ma) : 0;

	sb_adds(&sb, "InsTaG still lacks files on the pod that only you can "
	    "supply: ");
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(ma, i);
		const char *how = ju_str(e, "how");
		sb_addf(&sb, "%s%s", i ? "; " : "", ju_str(e, "file") ?
		    ju_str(e, "file") : "?");
		if (how != NULL)
			sb_addf(&sb, " (%s)", how);
	}
	if (n == 0) {
		char *list = m ? ju_dump(m) : xstrdup("[]");
		sb_addf(&sb, "%s (register each once with "
		    "instag.register_asset)", list);
		free(list);
	}
	sb_adds(&sb, ".  See docs/instag.md, \"Assets only the user can "
	    "provide\", then run the pipeline again");
	return sb_take(&sb);
}

/*
 * The part of stage name ended in state completed: keep what the next
 * stages need from its result.  0, or -1 with *code (static) and *why
 * (caller frees) when the pipeline cannot go on.
 */
static int
part_done(struct task *t, const struct step_env *env, const char *name,
    int64_t subn, json_object *res, const char **code, char **why)
{
	bool ready = false;

	if (strcmp(name, "provision") == 0) {
		task_ckpt_set_str(t, "pod_id", ju_str(res, "pod_id"));
		task_ckpt_set_bool(t, "pod_created", true);
		task_ckpt_set_int(t, "pod_since_ms",
		    task_ckpt_int(t, "part_started_ms", env->now_ms));
		task_ckpt_set_str(t, "pod_gpu", ju_str(res, "gpu_type_id"));
		json_object_object_add(t->checkpoint, "pod_rate",
		    json_object_new_double(num_of(res, "cost_per_hr")));
	} else if (strcmp(name, "setup") == 0 ||
	    (strcmp(name, "assets") == 0 && subn == 1)) {
		ju_bool(res, "ready", &ready);
		task_ckpt_set_bool(t, "setup_ready", ready);
		if (!ready && subn == 1) {
			*code = ERRC_ASSETS_MISSING;
			*why = missing_text(res);
			return -1;
		}
	} else if (strcmp(name, "train") == 0 ||
	    strcmp(name, "synthesize") == 0)
		task_ckpt_set_str(t, "model_dir", ju_str(res, "model_dir"));
	return 0;
}

/* Move on from stage k (its time recorded) to k + 1. */
static void
next_stage(struct task *t, const struct step_env *env, int64_t k,
    const char *name)
{
	json_object *secs = ju_obj(t->checkpoint, "seconds");
	int64_t t0 = task_ckpt_int(t, "stage_started_ms", env->now_ms);
	double s = (double)(env->now_ms - t0) / 1000.0, prev = 0;
	json_object *v;

	if (secs == NULL) {
		secs = json_object_new_object();
		json_object_object_add(t->checkpoint, "seconds", secs);
	}
	if (json_object_object_get_ex(secs, name, &v))
		prev = json_object_get_double(v);
	json_object_object_add(secs, name, json_object_new_double(
	    (double)(int64_t)((prev + s) * 1000 + 0.5) / 1000));
	observe(stage_index(name), s);
	task_ckpt_set_int(t, "stage", k + 1);
	task_ckpt_set_int(t, "subn", 0);
	task_ckpt_set_int(t, "stage_started_ms", env->now_ms);
	json_object_object_del(t->checkpoint, "sub");
	t->next_wake_ms = env->now_ms;
}

/* The terminate stage: 1 done, 0 retry later. */
static int
terminate_stage(struct task *t, const struct step_env *env)
{
	int rc = release_pod(t, env, "owner", "instag.pipeline finished");

	if (rc == 0)
		return 0;
	return 1;	/* terminated, or left to the reaper (pod_note) */
}

/* ---- a lost pod ---------------------------------------------------------- */

/* Say msg to the task's history as the agent (a recovery is news). */
static void
tell(struct task *t, const struct step_env *env, const char *msg)
{
	task_add_history(t, task_msg_text("agent", msg, t->id, t->context_id),
	    (int)env->cfg->task_history_max);
}

/*
 * Whether the pipeline's pod is still there: asked of RunPod at most every
 * pipeline_pod_check_s, or now when force (a part failed).  PW_OK also
 * when there is no pod yet or RunPod cannot be asked now; else *why
 * (caller frees).
 */
static enum pw_state
pod_state(struct task *t, const struct step_env *env, bool force,
    char **why)
{
	const char *pod = task_ckpt_str(t, "pod_id");
	int64_t last = task_ckpt_int(t, "pod_checked_ms", 0);
	enum pw_state s;

	*why = NULL;
	if (pod == NULL || (!force && env->now_ms - last <
	    env->cfg->pipeline_pod_check_s * 1000))
		return PW_OK;
	task_ckpt_set_int(t, "pod_checked_ms", env->now_ms);
	s = pw_check(env->store, pod, why);
	if (s == PW_UNKNOWN) {
		log_kv(LOG_WARN, "pipeline_pod_check", *why, "task", t->id,
		    NULL);
		free(*why);
		*why = NULL;
		s = PW_OK;
	}
	return s;
}

/* Whether stage name makes a pod ready for the work (runs on every new
 * pod). */
static bool
pod_stage(const char *name)
{
	return name != NULL && (strcmp(name, "provision") == 0 ||
	    strcmp(name, "reuse") == 0 || strcmp(name, "setup") == 0 ||
	    strcmp(name, "assets") == 0);
}

/*
 * Where a recovery from a pod lost in stage k resumes: the index of the
 * first stage of the work to run again on the new pod (after its
 * provision, setup and assets), or -1 when none is left.  With a network
 * volume (volume_id) everything the finished stages left in the work root
 * (the uploaded video, the preprocessed data, the trained model, the
 * rendered videos) is on the volume, so the work resumes at stage k, the
 * one the pod was lost in, from its start; without one all of it went
 * with the pod and the work starts again from the first stage.
 */
static int64_t
resume_index(const struct task *t, int64_t k)
{
	json_object *stages = ju_arr(t->checkpoint, "stages");
	int64_t i, n = stages ? (int64_t)json_object_array_length(stages) : 0;

	if (ju_str(t->params, "volume_id") == NULL)
		k = 0;
	for (i = k; i < n; i++)
		if (!pod_stage(ju_str(json_object_array_get_idx(stages,
		    (size_t)i), "name")))
			return i;
	return -1;
}

/*
 * The stage list of a recovery: a new pod's provision, setup and assets,
 * then the old stages from index from on (from -1: none).  New reference.
 */
static json_object *
recovery_stages(const struct task *t, int64_t from)
{
	json_object *fresh = make_stages(t), *a = json_object_new_array();
	json_object *old = ju_arr(t->checkpoint, "stages");
	size_t i, n = json_object_array_length(fresh);
	size_t nold = old ? json_object_array_length(old) : 0;
	json_object *st;

	for (i = 0; i < n; i++) {
		st = json_object_array_get_idx(fresh, i);
		if (!pod_stage(ju_str(st, "name")))
			break;
		json_object_array_add(a, ju_copy(st));
	}
	for (i = from < 0 ? nold : (size_t)from; i < nold; i++)
		json_object_array_add(a, ju_copy(json_object_array_get_idx(old,
		    i)));
	json_object_put(fresh);
	return a;
}

/*
 * The pod of stage k (name) is lost (why): replace it when the pipeline
 * made it and has recoveries left, else fail.  The decision is committed
 * (phase "recover", the recovery recorded) before the lost pod is
 * terminated and the stages start again (recover_step).
 */
static enum step_result
pod_lost(struct task *t, const struct step_env *env, int64_t k,
    const char *name, const char *why)
{
	json_object *recs = ju_arr(t->checkpoint, "recoveries"), *rec;
	json_object *stages = ju_arr(t->checkpoint, "stages");
	int64_t max = env->cfg->pipeline_max_recoveries, done;
	int64_t n = (int64_t)json_object_array_length(stages);
	int64_t from = resume_index(t, k);
	const char *at = from < 0 ? NULL : ju_str(json_object_array_get_idx(
	    stages, (size_t)from), "name");
	char *msg;
	enum step_result r;

	ju_int(t->params, "max_recoveries", &max);
	done = recs ? (int64_t)json_object_array_length(recs) : 0;
	log_kv(LOG_WARN, "pipeline_pod_lost", why, "task", t->id, "pod",
	    task_ckpt_str(t, "pod_id"), "step", name, NULL);
	if (!task_ckpt_bool(t, "pod_created", false) || done >= max) {
		msg = xasprintf("step %lld of %lld (%s): %s; %s",
		    (long long)k + 1, (long long)n, name, why,
		    !task_ckpt_bool(t, "pod_created", false) ? "a pod given "
		    "by pod_id is not replaced" : done > 0 ? "no recovery "
		    "left (max_recoveries)" : "max_recoveries is 0");
		r = fail_later(t, env, ERRC_POD_GONE, msg);
		free(msg);
		return r;
	}
	if (recs == NULL) {
		recs = json_object_new_array();
		json_object_object_add(t->checkpoint, "recoveries", recs);
	}
	rec = json_object_new_object();
	json_object_object_add(rec, "at_ms", json_object_new_int64(
	    env->now_ms));
	json_object_object_add(rec, "step", json_object_new_string(name));
	json_object_object_add(rec, "pod_id",
	    ju_new_str(task_ckpt_str(t, "pod_id")));
	json_object_object_add(rec, "why", json_object_new_string(why));
	json_object_object_add(rec, "resumes_at", ju_new_str(at));
	json_object_object_add(rec, "kept_on_volume", json_object_new_boolean(
	    ju_str(t->params, "volume_id") != NULL));
	json_object_array_add(recs, rec);
	msg = xasprintf("The pod was lost at step %lld (%s): %s.  Replacing "
	    "it (recovery %lld of at most %lld): a new pod, its setup, then "
	    "the work from %s%s.", (long long)k + 1, name, why,
	    (long long)done + 1, (long long)max, at ? at : "fetch",
	    ju_str(t->params, "volume_id") != NULL ? " (what the finished "
	    "steps made is on the volume)" : " again");
	tell(t, env, msg);
	free(msg);
	task_ckpt_set_str(t, "phase", "recover");
	task_ckpt_set_int(t, "resume_from", from);
	task_ckpt_set_int(t, "release_tries", 0);
	t->next_wake_ms = env->now_ms;
	return STEP_WAIT;
}

/*
 * With a network volume, the step the pod was lost in resumes after its
 * last finished action (a training stage whose checkpoint is on the
 * volume, say face before mouth): its part's plan and the count of
 * finished actions are kept as "resume_sub" for the new pod's part, the
 * running action's state (its job, transfer offsets) is not, but for a
 * finished job's directory still to remove.  The running action itself
 * starts again from its beginning.
 */
static void
keep_finished_actions(struct task *t, int64_t from)
{
	json_object *sub = ju_obj(t->checkpoint, "sub"), *keep, *plan;
	int64_t done = 0;

	json_object_object_del(t->checkpoint, "resume_sub");
	if (ju_str(t->params, "volume_id") == NULL || sub == NULL ||
	    from != task_ckpt_int(t, "stage", -1) ||
	    task_ckpt_int(t, "subn", 0) != 0 ||
	    (plan = ju_arr(sub, "plan")) == NULL ||
	    ju_int(sub, "action", &done) != 0 || done <= 0)
		return;
	keep = json_object_new_object();
	json_object_object_add(keep, "plan", ju_copy(plan));
	json_object_object_add(keep, "action", json_object_new_int64(done));
	/* a finished action's job directory (on the volume) still to go */
	if (ju_str(sub, "gc") != NULL)
		json_object_object_add(keep, "gc", ju_new_str(ju_str(sub,
		    "gc")));
	json_object_object_add(t->checkpoint, "resume_sub", keep);
}

/*
 * Phase "recover": terminate the lost pod (RunPod may still bill one that
 * stopped), keep its share of the cost, and run a new pod's provision,
 * setup and assets, then the work from resume_from (resume_index) on.
 * What the pod held is gone with it, but for what is on a network volume;
 * the agent still holds the uploads and the registered assets, which the
 * stages place again.
 */
static enum step_result
recover_step(struct task *t, const struct step_env *env)
{
	static const char *const drop[] = { "pod_id", "pod_created",
	    "pod_terminated", "pod_since_ms", "pod_until_ms", "pod_rate",
	    "pod_gpu", "pod_note", "release_tries", "setup_ready",
	    "sub", "subn", "part_canceled", "phase", "pod_checked_ms",
	    "resume_from", NULL };
	json_object *lost = ju_arr(t->checkpoint, "lost_pods");
	int64_t from = task_ckpt_int(t, "resume_from", 0);
	const char *const *d;
	int rc = release_pod(t, env, "pipeline", "lost by its pipeline: "
	    "replaced by a new pod");

	if (rc == 0)
		return STEP_WAIT;
	if (rc < 0) {
		/* a pod that may still run under this task's name: never
		 * make a second one beside it */
		return fail_later(t, env, ERRC_POD_GONE,
		    task_ckpt_str(t, "pod_note"));
	}
	if (task_ckpt_int(t, "pod_until_ms", 0) == 0)
		task_ckpt_set_int(t, "pod_until_ms", env->now_ms);
	if (lost == NULL) {
		lost = json_object_new_array();
		json_object_object_add(t->checkpoint, "lost_pods", lost);
	}
	json_object_array_add(lost, pod_segment(t, env->now_ms));
	keep_finished_actions(t, from);
	json_object_object_add(t->checkpoint, "stages", recovery_stages(t,
	    from));
	for (d = drop; *d != NULL; d++)
		json_object_object_del(t->checkpoint, *d);
	/* a model trained before the loss is still where it was only on a
	 * volume */
	if (ju_str(t->params, "volume_id") == NULL)
		json_object_object_del(t->checkpoint, "model_dir");
	task_ckpt_set_int(t, "generation", task_ckpt_int(t, "generation",
	    0) + 1);
	task_ckpt_set_int(t, "stage", 0);
	task_ckpt_set_int(t, "subn", 0);
	task_ckpt_set_int(t, "stage_started_ms", env->now_ms);
	pthread_mutex_lock(&M.lock);
	M.recovered++;
	pthread_mutex_unlock(&M.lock);
	show(t, NULL);
	t->next_wake_ms = env->now_ms;
	return STEP_WAIT;
}

/* ---- the step ------------------------------------------------------------ */

static void
start(struct task *t, const struct step_env *env)
{
	char model[80];

	json_object_object_add(t->checkpoint, "stages", make_stages(t));
	task_ckpt_set_int(t, "stage", 0);
	task_ckpt_set_int(t, "subn", 0);
	task_ckpt_set_int(t, "stage_started_ms", env->now_ms);
	/* the model's own name, apart from earlier runs on the subject; or
	 * the one given to render with */
	snprintf(model, sizeof(model), "%.55s_%.8s",
	    ju_str(t->params, "subject"), t->id);
	task_ckpt_set_str(t, "model", ju_str(t->params, "model") ?
	    ju_str(t->params, "model") : model);
	if (ju_str(t->params, "pod_id") != NULL)
		task_ckpt_set_str(t, "pod_id", ju_str(t->params, "pod_id"));
	pthread_mutex_lock(&M.lock);
	M.started++;
	pthread_mutex_unlock(&M.lock);
}

/* The reused pod: its rate, and the time it starts counting. */
static void
reuse_stage(struct task *t, const struct step_env *env)
{
	struct pod_rec *r = NULL;

	if (store_pod_get(env->store, task_ckpt_str(t, "pod_id"), &r) == 0) {
		json_object_object_add(t->checkpoint, "pod_rate",
		    json_object_new_double(r->cost_per_hr));
		task_ckpt_set_str(t, "pod_gpu", r->gpu_type_id);
	}
	store_pod_free(r);
	task_ckpt_set_int(t, "pod_since_ms", env->now_ms);
}

/*
 * A part failed: whether because its pod was lost (RunPod says so, or SSH
 * stopped answering for good).  true with *why (caller frees).
 */
static bool
lost_now(struct task *t, const struct step_env *env,
    const struct task *part, char **why)
{
	const char *code = part->error ? ju_str(part->error, "code") : NULL;

	if (pod_state(t, env, true, why) == PW_LOST)
		return true;
	free(*why);
	*why = NULL;
	if (code != NULL && strcmp(code, ERRC_POD_UNREACHABLE) == 0) {
		*why = xasprintf("the pod's SSH stopped answering: %s",
		    ju_str(part->error, "message"));
		return true;
	}
	return false;
}

enum step_result
pl_step(struct task *t, const struct step_env *env)
{
	json_object *stages, *st, *params = NULL, *keep;
	struct task part;
	struct part p;
	enum step_result r;
	const char *name, *code = NULL, *phase;
	char *why = NULL, *msg;
	int64_t k, subn, n;

	if (ju_arr(t->checkpoint, "stages") == NULL)
		start(t, env);
	phase = task_ckpt_str(t, "phase");
	if (phase != NULL && strcmp(phase, "release") == 0)
		return release_step(t, env);
	if (phase != NULL && strcmp(phase, "recover") == 0)
		return recover_step(t, env);
	stages = ju_arr(t->checkpoint, "stages");
	n = (int64_t)json_object_array_length(stages);
	k = task_ckpt_int(t, "stage", 0);
	if (k >= n) {
		if (task_ckpt_int(t, "pod_until_ms", 0) == 0)
			task_ckpt_set_int(t, "pod_until_ms", env->now_ms);
		task_set_progress_pct(t, (int)n, (int)n, 100, "done");
		task_complete(t, result_of(t, env->now_ms));
		untrack(t, TASK_COMPLETED);
		return STEP_DONE;
	}
	st = json_object_array_get_idx(stages, (size_t)k);
	name = ju_str(st, "name");
	track(t, stage_index(name));
	subn = task_ckpt_int(t, "subn", 0);
	if (strcmp(name, "reuse") == 0) {
		reuse_stage(t, env);
		next_stage(t, env, k, name);
		show(t, NULL);
		return STEP_WAIT;
	}
	if (strcmp(name, "terminate") == 0) {
		show(t, NULL);
		if (terminate_stage(t, env) == 0)
			return STEP_WAIT;
		next_stage(t, env, k, name);
		return STEP_WAIT;
	}
	if (strcmp(name, "provision") != 0) {
		/* a pod lost while its job runs: the job went with it */
		enum pw_state ps = pod_state(t, env, false, &why);
		if (ps != PW_OK) {
			r = ps == PW_LOST ? pod_lost(t, env, k, name, why) :
			    fail_later(t, env, ERRC_POD_TERMINATED, why);
			free(why);
			return r;
		}
	}
	if (!part_of_stage(t, st, subn, &p, &params)) {
		/* no (more) parts: the stage is done */
		next_stage(t, env, k, name);
		show(t, NULL);
		return STEP_WAIT;
	}
	if (ju_obj(t->checkpoint, "sub") == NULL) {
		json_object *ck = json_object_new_object();
		char tag[64];
		/* the part's jobs and files named apart from the others' */
		int64_t g = task_ckpt_int(t, "generation", 0);
		/* a replacement pod's parts named apart from the lost
		 * one's */
		if (g > 0)
			snprintf(tag, sizeof(tag), "g%llds%lld%c",
			    (long long)g, (long long)k, (char)('a' + subn));
		else
			snprintf(tag, sizeof(tag), "s%lld%c", (long long)k,
			    (char)('a' + subn));
		json_object_object_add(ck, "part", json_object_new_string(tag));
		/* the step a recovery resumes, after its finished actions */
		if ((keep = ju_obj(t->checkpoint, "resume_sub")) != NULL &&
		    !pod_stage(name)) {
			int64_t done = 0;
			ju_int(keep, "action", &done);
			json_object_object_add(ck, "plan",
			    ju_copy(ju_arr(keep, "plan")));
			json_object_object_add(ck, "action",
			    json_object_new_int64(done));
			if (ju_str(keep, "gc") != NULL)
				json_object_object_add(ck, "gc", ju_new_str(
				    ju_str(keep, "gc")));
			json_object_object_del(t->checkpoint, "resume_sub");
		}
		json_object_object_add(t->checkpoint, "sub", ck);
		task_ckpt_set_int(t, "part_started_ms", env->now_ms);
	}
	part_init(&part, t, p.op, params);
	r = part_run(t, env, &p, &part, false);
	show(t, &part);
	if (part.state == TASK_COMPLETED) {
		if (part_done(t, env, name, subn, part.result, &code,
		    &why) < 0) {
			msg = xasprintf("step %lld of %lld (%s): %s",
			    (long long)k + 1, (long long)n, name, why);
			r = fail_later(t, env, code, msg);
			free(msg);
			free(why);
			goto cleanup;
		}
		json_object_object_del(t->checkpoint, "sub");
		task_ckpt_set_int(t, "subn", subn + 1);
		t->next_wake_ms = env->now_ms;
		r = STEP_WAIT;
	} else if (task_state_terminal(part.state) &&
	    strcmp(name, "provision") != 0 && lost_now(t, env, &part, &why)) {
		r = pod_lost(t, env, k, name, why);
		free(why);
	} else if (task_state_terminal(part.state)) {
		msg = xasprintf("step %lld of %lld (%s) failed: %s",
		    (long long)k + 1, (long long)n, name,
		    part.error ? ju_str(part.error, "message") : "");
		r = fail_later(t, env, part.error && ju_str(part.error,
		    "code") ? ju_str(part.error, "code") : ERRC_INTERNAL, msg);
		free(msg);
	} else if (r == STEP_DONE) {
		/* a step must end its task when it says done */
		r = fail_later(t, env, ERRC_INTERNAL, "a pipeline step ended "
		    "without an outcome");
	}
cleanup:
	part_release(&part);
	return r;
}

enum step_result
pl_cancel(struct task *t, const struct step_env *env)
{
	json_object *stages = ju_arr(t->checkpoint, "stages"), *st, *params;
	struct task part;
	struct part p;
	enum step_result r;
	int64_t k = task_ckpt_int(t, "stage", 0);
	int64_t subn = task_ckpt_int(t, "subn", 0);

	if (stages == NULL) {
		untrack(t, TASK_CANCELED);
		return STEP_DONE;
	}
	st = json_object_array_get_idx(stages, (size_t)k);
	if (st != NULL && !task_ckpt_bool(t, "part_canceled", false) &&
	    ju_obj(t->checkpoint, "sub") != NULL &&
	    part_of_stage(t, st, subn, &p, &params)) {
		/* the running part first: its remote job, or the pod a
		 * provisioning is making */
		part_init(&part, t, p.op, params);
		r = part_run(t, env, &p, &part, true);
		part_release(&part);
		if (r == STEP_WAIT)
			return STEP_WAIT;
		task_ckpt_set_bool(t, "part_canceled", true);
	}
	/* then the pod this pipeline created, keep_pod or not */
	if (release_pod(t, env, "cancel", "instag.pipeline was canceled") ==
	    0)
		return STEP_WAIT;
	if (task_ckpt_int(t, "pod_until_ms", 0) == 0)
		task_ckpt_set_int(t, "pod_until_ms", env->now_ms);
	json_object_put(t->result);
	t->result = result_of(t, env->now_ms);
	untrack(t, TASK_CANCELED);
	return STEP_DONE;
}
