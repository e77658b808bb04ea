/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "providers/runpod/billing.h"
#include "providers/runpod/candidates.h"
#include "providers/runpod/podcost.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/provision.h"
#include "providers/runpod/volumes.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define POLL_MAX_MS 15000
#define RELEASE_TRIES 20	/* terminate attempts before giving up */

/* Set progress only when the message changes (each change is an update
 * every subscriber hears of). */
static void
progress(struct task *t, int step, int steps, const char *msg)
{
	const char *old = t->progress ? ju_str(t->progress, "message") : NULL;

	if (old == NULL || strcmp(old, msg) != 0)
		task_set_progress(t, step, steps, msg);
}

/* ---- waiting ------------------------------------------------------------- */

/* A transient RunPod failure: come back after Retry-After or a backoff. */
static enum step_result
retry_later(struct task *t, const struct step_env *env,
    const struct runpod_error *e, const char *what)
{
	int64_t n = task_ckpt_int(t, "retries", 0) + 1, d;
	char msg[160];

	task_ckpt_set_int(t, "retries", n);
	d = pods_retry_delay_ms(e, (int)n);
	snprintf(msg, sizeof(msg), "%s: RunPod %s%s, retrying in %.1f s", what,
	    runpod_error_kind_name(e->kind), e->http_status == 429 ?
	    " (429)" : "", (double)d / 1000.0);
	task_ckpt_set_str(t, "waiting_for", msg);
	t->next_wake_ms = env->now_ms + d;
	return STEP_WAIT;
}

/* Poll again after a growing interval. */
static enum step_result
poll_later(struct task *t, const struct step_env *env)
{
	int64_t n = task_ckpt_int(t, "polls", 0) + 1;
	int64_t d = env->cfg->provision_poll_ms, i;

	task_ckpt_set_int(t, "polls", n);
	for (i = 1; i < n && d < POLL_MAX_MS; i++)
		d += d / 2;
	t->next_wake_ms = env->now_ms + (d > POLL_MAX_MS ? POLL_MAX_MS : d);
	return STEP_WAIT;
}

static int64_t
deadline_ms(struct task *t, const struct step_env *env)
{
	int64_t d = task_ckpt_int(t, "deadline_ms", 0), s;

	if (d == 0) {
		s = env->cfg->provision_timeout;
		ju_int(t->params, "ready_timeout_s", &s);
		d = env->now_ms + s * 1000;
		task_ckpt_set_int(t, "deadline_ms", d);
	}
	return d;
}

/* ---- failing with the pod released --------------------------------------- */

/*
 * Fail the task; if it made a pod, terminate it first (phase "release",
 * retried on the timer up to RELEASE_TRIES times).
 */
static enum step_result
fail_release(struct task *t, const struct step_env *env, const char *code,
    const char *msg, const char *who)
{
	task_ckpt_set_str(t, "phase", "release");
	task_ckpt_set_str(t, "fail_code", code);
	task_ckpt_set_str(t, "fail_message", msg);
	task_ckpt_set_str(t, "release_by", who);
	task_ckpt_set_int(t, "retries", 0);
	t->next_wake_ms = env->now_ms;
	return STEP_WAIT;
}

static enum step_result
release_step(struct task *t, const struct step_env *env)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	const char *pod = task_ckpt_str(t, "pod_id");
	const char *code = task_ckpt_str(t, "fail_code");
	const char *msg = task_ckpt_str(t, "fail_message");
	char *full = NULL;

	if (pod == NULL) {
		task_fail(t, code ? code : ERRC_PROVISION_FAILED,
		    msg ? msg : "");
		return STEP_DONE;
	}
	c = pods_client(&e);
	if (c != NULL && pods_terminate(c, pod, task_ckpt_str(t, "release_by"),
	    msg ? msg : "released by its task", &e) == 0) {
		full = xasprintf("%s; pod %s was terminated", msg, pod);
		task_fail(t, code, full);
		free(full);
		return STEP_DONE;
	}
	if (task_ckpt_int(t, "retries", 0) + 1 >= RELEASE_TRIES ||
	    !pods_transient(&e)) {
		full = xasprintf("%s; pod %s could NOT be terminated (%s): the "
		    "reaper and the cost guard will try again", msg, pod,
		    runpod_error_kind_name(e.kind));
		task_fail(t, code, full);
		free(full);
		runpod_error_clear(&e);
		return STEP_DONE;
	}
	retry_later(t, env, &e, "terminating the pod");
	runpod_error_clear(&e);
	return STEP_WAIT;
}

/* ---- create -------------------------------------------------------------- */

/*
 * params.volume_id: the caller's network volume and its data center, once
 * (checkpoint "volume_dc").  0 to go on; 1 with *r when the step ends here.
 */
static int
volume_step(struct task *t, const struct step_env *env,
    struct runpod_client *c, enum step_result *r)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct op_error oe = { 0 };
	char *dc = NULL;
	int rc;

	if (ju_str(t->params, "volume_id") == NULL ||
	    task_ckpt_str(t, "volume_dc") != NULL)
		return 0;
	rc = volumes_resolve(c, t->owner, ju_str(t->params, "volume_id"),
	    &dc, &e, &oe);
	if (rc == 0)
		task_ckpt_set_str(t, "volume_dc", dc);
	else if (rc > 0)
		*r = retry_later(t, env, &e, "reading the network volume");
	else {
		task_fail(t, oe.code, oe.message);
		*r = STEP_DONE;
	}
	free(dc);
	free(oe.message);
	runpod_error_clear(&e);
	return rc == 0 ? 0 : 1;
}

static size_t
ncandidates(const struct task *t, size_t *ngpu)
{
	const char *cloud = ju_str(t->params, "cloud_type");

	*ngpu = json_object_array_length(ju_arr(t->params, "gpu_type_ids"));
	return *ngpu * (cloud && strcmp(cloud, "ALL") == 0 ? 2 : 1);
}

static void
candidate(const struct task *t, size_t i, const char **gpu, const char **cloud)
{
	const char *ct = ju_str(t->params, "cloud_type");
	size_t ngpu;

	ncandidates(t, &ngpu);
	*gpu = json_object_get_string(json_object_array_get_idx(
	    ju_arr(t->params, "gpu_type_ids"), i % ngpu));
	if (ct == NULL || strcmp(ct, "ALL") == 0)
		*cloud = i / ngpu == 0 ? "SECURE" : "COMMUNITY";
	else
		*cloud = ct;
}

static void
add_attempt(struct task *t, const char *gpu, const char *cloud,
    const char *outcome, const struct runpod_error *e)
{
	json_object *a = json_object_new_object(), *arr = ju_arr(t->checkpoint,
	    "attempts");
	char ts[40];

	if (arr == NULL) {
		arr = json_object_new_array();
		json_object_object_add(t->checkpoint, "attempts", arr);
	}
	json_object_object_add(a, "gpu_type_id", json_object_new_string(gpu));
	json_object_object_add(a, "cloud_type", json_object_new_string(cloud));
	json_object_object_add(a, "outcome", json_object_new_string(outcome));
	if (e != NULL && e->kind != RP_OK) {
		json_object_object_add(a, "http_status",
		    json_object_new_int(e->http_status));
		if (e->detail || e->title)
			json_object_object_add(a, "detail",
			    json_object_new_string(e->detail ? e->detail :
			    e->title));
	}
	ju_iso8601(clock_wall_ms(), ts, sizeof(ts));
	json_object_object_add(a, "at", json_object_new_string(ts));
	json_object_array_add(arr, a);
}

/* The pod exists (created or found): record it, go on to waiting. */
static enum step_result
adopt(struct task *t, const struct step_env *env, const struct runpod_pod *p,
    const char *cloud)
{
	struct pod_rec *r = NULL;
	char *err = NULL, msg[200];

	if (store_pod_get(env->store, p->id, &r) == 1 &&
	    pods_register(t, p, cloud, &err) < 0) {
		/* The pod is not in the registry: keep it in the checkpoint
		 * and try to record it again on the next step. */
		log_kv(LOG_ERROR, "store_error", err, "pod", p->id, NULL);
		free(err);
	}
	store_pod_free(r);
	task_ckpt_set_str(t, "pod_id", p->id);
	task_ckpt_set_str(t, "cloud", cloud);
	task_ckpt_set_bool(t, "create_pending", false);
	task_ckpt_set_str(t, "phase", "wait");
	task_ckpt_set_int(t, "retries", 0);
	snprintf(msg, sizeof(msg), "created pod %s (%s, %s)", p->id,
	    p->gpu_id ? p->gpu_id : "?", cloud);
	progress(t, 1, 3, msg);
	t->next_wake_ms = env->now_ms + env->cfg->provision_poll_ms;
	return STEP_WAIT;
}

/* A create may have been sent without an answer: look for the pod. */
static int
find_pending(struct task *t, const struct step_env *env,
    struct runpod_client *c, struct runpod_error *e, enum step_result *out)
{
	struct runpod_pod *p = NULL;
	char *name = pods_name_for(t->id);
	size_t nmatch = 0;
	const char *gpu, *cloud;
	int rc;

	rc = runpod_find_pod_by_name(c, name, &p, &nmatch, e);
	pods_count(rc, e);
	free(name);
	if (rc < 0)
		return -1;
	candidate(t, (size_t)task_ckpt_int(t, "next", 0), &gpu, &cloud);
	if (p == NULL) {
		/* The create had no effect: the same candidate again. */
		task_ckpt_set_bool(t, "create_pending", false);
		return 0;
	}
	if (nmatch > 1)
		log_kv(LOG_WARN, "pod_duplicates", "more than one pod has this "
		    "task's name; the reaper will report the others", "task",
		    t->id, NULL);
	add_attempt(t, p->gpu_id ? p->gpu_id : gpu, cloud,
	    "created (found by name after an unanswered create)", NULL);
	*out = adopt(t, env, p, cloud);
	runpod_pod_free(p);
	return 1;
}

static enum step_result
create_step(struct task *t, const struct step_env *env)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_create req = { 0 };
	struct runpod_client *c;
	struct runpod_pod *p = NULL;
	enum step_result r = STEP_WAIT;
	size_t ngpu, n = ncandidates(t, &ngpu), i;
	const char *gpu, *cloud;
	char *name = NULL, *err = NULL;
	int64_t v;
	int rc;

	if ((c = pods_client(&e)) == NULL) {
		task_fail(t, ERRC_NOT_CONFIGURED, e.detail);
		runpod_error_clear(&e);
		return STEP_DONE;
	}
	if (task_ckpt_bool(t, "create_pending", false)) {
		rc = find_pending(t, env, c, &e, &r);
		if (rc < 0)
			goto transient;
		if (rc > 0)
			return r;
	}
	if (volume_step(t, env, c, &r) != 0)
		return r;
	i = (size_t)task_ckpt_int(t, "next", 0);
	if (i >= n) {
		/* every candidate refused: 400s, 403s or both */
		const char *code;
		candidates_verdict(ju_arr(t->checkpoint, "attempts"), &code,
		    &err);
		task_fail(t, code, err);
		free(err);
		return STEP_DONE;
	}
	candidate(t, i, &gpu, &cloud);

	/* Commit "a create may be under way" before sending it. */
	task_ckpt_set_bool(t, "create_pending", true);
	if (env->checkpoint(env, t, &err) < 0) {
		log_kv(LOG_ERROR, "store_error", err, "task", t->id, NULL);
		free(err);
		task_ckpt_set_bool(t, "create_pending", false);
		t->next_wake_ms = env->now_ms + 1000;
		return STEP_WAIT;
	}
	name = pods_name_for(t->id);
	req.name = name;
	req.image = ju_str(t->params, "image") ? ju_str(t->params, "image") :
	    env->cfg->runpod_image;
	req.gpu_id = gpu;
	v = 1;
	ju_int(t->params, "gpu_count", &v);
	req.gpu_count = (int)v;
	req.cloud = cloud;
	v = 0;
	ju_int(t->params, "container_disk_gb", &v);
	req.disk_gb = (int)v;
	v = 0;
	ju_int(t->params, "volume_gb", &v);
	req.volume_gb = (int)v;
	req.network_volume_id = ju_str(t->params, "volume_id");
	req.data_center_id = task_ckpt_str(t, "volume_dc");
	req.volume_path = env->cfg->pod_volume_path;
	req.env = ju_obj(t->params, "env");
	req.public_key = pods_public_key();
	rc = runpod_create_pod(c, &req, &p, &e);
	pods_count(rc, &e);
	free(name);
	if (rc == 0) {
		add_attempt(t, gpu, cloud, "created", NULL);
		r = adopt(t, env, p, cloud);
		runpod_pod_free(p);
		return r;
	}
	switch (e.kind) {
	case RP_NO_CAPACITY:		/* 400: capacity, or a rule */
	case RP_POOL_FORBIDDEN:		/* 403: not this account's pool */
		task_ckpt_set_bool(t, "create_pending", false);
		add_attempt(t, gpu, cloud, e.kind == RP_NO_CAPACITY ?
		    "rejected" : "forbidden", &e);
		task_ckpt_set_int(t, "next", (int64_t)i + 1);
		t->next_wake_ms = env->now_ms;
		runpod_error_clear(&e);
		return STEP_WAIT;
	case RP_RATE_LIMITED:
		/* A 429 is answered before the request is acted on. */
		task_ckpt_set_bool(t, "create_pending", false);
		goto transient;
	case RP_SERVER:
	case RP_NETWORK:
		/* create_pending stays: the next step looks the pod up. */
		add_attempt(t, gpu, cloud, "unanswered (will look it up)", &e);
		goto transient;
	default:
		task_ckpt_set_bool(t, "create_pending", false);
		add_attempt(t, gpu, cloud, runpod_error_kind_name(e.kind), &e);
		{
			struct op_error oe = { 0 };
			pods_op_error(&oe, "create", &e);
			task_fail(t, e.kind == RP_PAYMENT ?
			    ERRC_INSUFFICIENT_BALANCE : oe.code, oe.message);
			free(oe.message);
		}
		runpod_error_clear(&e);
		return STEP_DONE;
	}
transient:
	r = retry_later(t, env, &e, "creating the pod");
	runpod_error_clear(&e);
	return r;
}

/* ---- wait until SSH answers ---------------------------------------------- */

struct ssh_seen {
	const char *ip;
	int port;
	const char *fp;
	double rate;
};

static void
set_ssh_seen(struct pod_rec *r, void *arg)
{
	const struct ssh_seen *s = arg;

	free(r->public_ip);
	r->public_ip = xstrdup(s->ip);
	r->ssh_port = s->port;
	if (r->host_fp == NULL)
		r->host_fp = xstrdup(s->fp);
	/* Stopped up to now; running from now on. */
	if (strcmp(r->state, "stopped") == 0)
		podcost_accrue(r, clock_wall_ms(), true);
	if (s->rate > 0)
		r->cost_per_hr = s->rate;
	if (strcmp(r->state, "stopped") == 0) {
		free(r->state);
		r->state = xstrdup("active");
		free(r->reason);	/* why it was stopped */
		r->reason = NULL;
	}
	/* Ready (again): the idle limit counts from now. */
	r->last_used_ms = clock_wall_ms();
}

static json_object *
provision_result(const struct task *t, const struct pod_rec *r)
{
	const struct config *cfg = pods_config();
	json_object *o = json_object_new_object(), *a;

	json_object_object_add(o, "pod_id", json_object_new_string(r->pod_id));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "label", ju_new_str(r->label));
	json_object_object_add(o, "public_ip",
	    json_object_new_string(r->public_ip));
	json_object_object_add(o, "ssh_port", json_object_new_int(r->ssh_port));
	json_object_object_add(o, "ssh_user",
	    json_object_new_string(cfg->ssh_user));
	json_object_object_add(o, "host_key_fingerprint",
	    json_object_new_string(r->host_fp));
	json_object_object_add(o, "gpu_type_id", r->gpu_type_id ?
	    json_object_new_string(r->gpu_type_id) : NULL);
	json_object_object_add(o, "gpu_count",
	    json_object_new_int(r->gpu_count));
	json_object_object_add(o, "cloud_type", r->cloud ?
	    json_object_new_string(r->cloud) : NULL);
	json_object_object_add(o, "cost_per_hr",
	    json_object_new_double(r->cost_per_hr));
	json_object_object_add(o, "max_runtime_minutes",
	    json_object_new_int64(r->max_runtime_ms / 60000));
	json_object_object_add(o, "max_cost_usd",
	    json_object_new_double(r->max_cost_usd));
	json_object_object_add(o, "idle_minutes", json_object_new_double(
	    (double)r->idle_ms / 60000.0));
	json_object_object_add(o, "ready_after_s", json_object_new_double(
	    (double)(clock_wall_ms() - t->created_ms) / 1000.0));
	a = ju_arr(t->checkpoint, "attempts");
	json_object_object_add(o, "attempts", a ? ju_copy(a) :
	    json_object_new_array());
	json_object_object_add(o, "cost", billing_task_cost(r));
	return o;
}

/*
 * One poll of a pod that should come up with SSH: 1 ready (registry
 * updated), 0 not yet (*waiting says what), -1 RunPod error in *e,
 * -2 the pod cannot come up (*waiting says why), -3 host key changed.
 */
static int
poll_ready(const struct step_env *env, struct runpod_client *c,
    const char *pod_id, bool exited_ok, struct runpod_error *e,
    char **waiting)
{
	struct runpod_pod *p = NULL;
	struct pod_rec *r = NULL;
	char *fp = NULL, *why = NULL;
	int rc;

	*waiting = NULL;
	rc = runpod_get_pod(c, pod_id, &p, e);
	pods_count(rc, e);
	if (rc < 0)
		return -1;
	if ((strcmp(p->status, "EXITED") == 0 && !exited_ok) ||
	    strcmp(p->status, "ERROR") == 0 ||
	    strcmp(p->status, "TERMINATED") == 0) {
		*waiting = xasprintf("the pod went to status %s while starting",
		    p->status);
		rc = -2;
		goto cleanup;
	}
	if (strcmp(p->status, "RUNNING") != 0) {
		*waiting = xasprintf("status %s", p->status);
		rc = 0;
		goto cleanup;
	}
	if (p->public_ip == NULL || p->ssh_port <= 0) {
		*waiting = xstrdup("RUNNING, but no public IP and SSH "
		    "port yet");
		rc = 0;
		goto cleanup;
	}
	if (store_pod_get(env->store, pod_id, &r) < 0) {
		*waiting = xstrdup("the pod registry failed");
		rc = 0;
		goto cleanup;
	}
	rc = pods_probe_ssh(p->public_ip, p->ssh_port, r ? r->host_fp : NULL,
	    &fp, &why);
	if (rc < 0) {
		rc = rc == -2 ? -3 : 0;
		*waiting = why;
		goto cleanup;
	}
	{
		struct ssh_seen s = { p->public_ip, p->ssh_port, fp,
		    p->cost_per_hr };
		/* The host key is pinned by this write: no pin, not ready
		 * (the next poll tries again). */
		if (pods_update(pod_id, set_ssh_seen, &s) != 0) {
			*waiting = xstrdup("SSH answers, but the pod registry "
			    "could not record its host key yet");
			rc = 0;
			goto cleanup;
		}
	}
	rc = 1;
cleanup:
	free(fp);
	store_pod_free(r);
	runpod_pod_free(p);
	return rc;
}

static enum step_result
wait_step(struct task *t, const struct step_env *env, bool provisioning)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	struct pod_rec *r = NULL;
	const char *pod = task_ckpt_str(t, "pod_id");
	char *waiting = NULL, msg[300];
	enum step_result res;
	int rc;

	if (store_pod_get(env->store, pod, &r) == 0 &&
	    strcmp(r->state, "terminated") == 0) {
		snprintf(msg, sizeof(msg), "pod %s was terminated while the "
		    "task waited: %s", pod, r->reason ? r->reason : "");
		task_fail(t, ERRC_POD_TERMINATED, msg);
		store_pod_free(r);
		return STEP_DONE;
	}
	store_pod_free(r);
	r = NULL;
	if ((c = pods_client(&e)) == NULL) {
		task_fail(t, ERRC_NOT_CONFIGURED, e.detail);
		runpod_error_clear(&e);
		return STEP_DONE;
	}
	rc = poll_ready(env, c, pod, !provisioning, &e, &waiting);
	if (rc == 1) {
		if (store_pod_get(env->store, pod, &r) != 0) {
			free(waiting);
			t->next_wake_ms = env->now_ms + 1000;
			return STEP_WAIT;
		}
		progress(t, 3, 3, "ssh ready");
		if (provisioning)
			task_complete(t, provision_result(t, r));
		else {
			json_object *o = pods_describe(r, NULL);
			json_object_object_add(o, "status",
			    json_object_new_string("RUNNING"));
			task_complete(t, o);
		}
		store_pod_free(r);
		return STEP_DONE;
	}
	if (rc == -1) {
		if (e.kind == RP_NOT_FOUND) {
			snprintf(msg, sizeof(msg), "pod %s no longer exists at "
			    "RunPod", pod);
			pods_mark_gone(pod);
			task_fail(t, ERRC_POD_GONE, msg);
			runpod_error_clear(&e);
			return STEP_DONE;
		}
		if (!pods_transient(&e)) {
			struct op_error oe = { 0 };
			pods_op_error(&oe, "get_pod", &e);
			res = provisioning ? fail_release(t, env, oe.code,
			    oe.message, "failed") : (task_fail(t, oe.code,
			    oe.message), STEP_DONE);
			free(oe.message);
			runpod_error_clear(&e);
			return res;
		}
		res = retry_later(t, env, &e, "polling the pod");
		runpod_error_clear(&e);
		return res;
	}
	if (rc == -3) {
		snprintf(msg, sizeof(msg), "the pod's SSH host key changed "
		    "since it was pinned: %s", waiting);
		free(waiting);
		task_fail(t, ERRC_HOST_KEY_CHANGED, msg);
		return STEP_DONE;
	}
	if (rc == -2) {
		snprintf(msg, sizeof(msg), "pod %s: %s", pod, waiting);
		free(waiting);
		return provisioning ? fail_release(t, env, ERRC_POD_FAILED, msg,
		    "failed") : (task_fail(t, ERRC_POD_FAILED, msg), STEP_DONE);
	}
	task_ckpt_set_str(t, "waiting_for", waiting);
	task_ckpt_set_int(t, "retries", 0);
	snprintf(msg, sizeof(msg), "starting: %s", waiting);
	free(waiting);
	progress(t, 2, 3, msg);
	if (env->now_ms >= deadline_ms(t, env)) {
		snprintf(msg, sizeof(msg), "the pod was not ready within the "
		    "timeout; last seen: %s", task_ckpt_str(t, "waiting_for"));
		return provisioning ? fail_release(t, env,
		    ERRC_PROVISION_TIMEOUT, msg, "timeout") :
		    (task_fail(t, ERRC_TIMEOUT, msg), STEP_DONE);
	}
	return poll_later(t, env);
}

/* ---- runpod.provision_pod ------------------------------------------------ */

enum step_result
prov_provision_step(struct task *t, const struct step_env *env)
{
	const char *phase = task_ckpt_str(t, "phase");
	int64_t deadline = deadline_ms(t, env);

	if (phase == NULL) {
		task_ckpt_set_str(t, "phase", "create");
		progress(t, 0, 3, "creating the pod");
		phase = "create";
	}
	if (strcmp(phase, "release") == 0)
		return release_step(t, env);
	if (env->now_ms >= deadline && strcmp(phase, "create") == 0 &&
	    !task_ckpt_bool(t, "create_pending", false))
		return fail_release(t, env, ERRC_PROVISION_TIMEOUT,
		    "no pod could be created within the timeout", "timeout");
	if (strcmp(phase, "create") == 0)
		return create_step(t, env);
	return wait_step(t, env, true);
}

enum step_result
prov_provision_cancel(struct task *t, const struct step_env *env)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c = pods_client(&e);
	const char *pod = task_ckpt_str(t, "pod_id");
	enum step_result r = STEP_DONE;
	int64_t n = task_ckpt_int(t, "cancel_tries", 0) + 1;

	task_ckpt_set_int(t, "cancel_tries", n);
	if (c == NULL)
		goto done;
	if (pod == NULL && task_ckpt_bool(t, "create_pending", false)) {
		/* A create may have made a pod: find it to release it. */
		int found = find_pending(t, env, c, &e, &r);
		if (found < 0 && pods_transient(&e) && n < RELEASE_TRIES) {
			r = retry_later(t, env, &e, "canceling");
			goto done;
		}
		pod = task_ckpt_str(t, "pod_id");
	}
	r = STEP_DONE;
	if (pod != NULL && pods_terminate(c, pod, "cancel", "the provisioning "
	    "task was canceled", &e) < 0 && pods_transient(&e) &&
	    n < RELEASE_TRIES)
		r = retry_later(t, env, &e, "terminating the pod");
done:
	runpod_error_clear(&e);
	return r;
}

int
prov_validate(json_object *params, const struct config *cfg, char **err)
{
	json_object *ids = ju_arr(params, "gpu_type_ids");
	size_t n = ids ? json_object_array_length(ids) : 0, i, j;

	(void)cfg;
	if (ju_str(params, "volume_id") != NULL &&
	    json_object_object_get_ex(params, "volume_gb", NULL)) {
		*err = xstrdup("give volume_gb (a volume of this pod's own) "
		    "or volume_id (a network volume of yours), not both");
		return -1;
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if (strcmp(json_object_get_string(
			    json_object_array_get_idx(ids, i)),
			    json_object_get_string(
			    json_object_array_get_idx(ids, j))) == 0) {
				*err = xasprintf("params.gpu_type_ids[%zu] "
				    "repeats params.gpu_type_ids[%zu]", i, j);
				return -1;
			}
	return 0;
}

/* ---- runpod.stop_pod / resume_pod / terminate_pod ------------------------ */

static void
set_stopped(struct pod_rec *r, void *arg)
{
	(void)arg;
	if (strcmp(r->state, "terminated") != 0) {
		/* Running up to now; stopped (storage only) from now. */
		if (strcmp(r->state, "stopped") != 0)
			podcost_accrue(r, clock_wall_ms(), false);
		free(r->state);
		r->state = xstrdup("stopped");
	}
}

/* Complete with the pod's view (live: what RunPod said last, may be
 * NULL). */
static enum step_result
finish_with_pod(struct task *t, const struct step_env *env, const char *pod,
    const struct runpod_pod *live)
{
	struct pod_rec *r = NULL;
	json_object *res;

	if (store_pod_get(env->store, pod, &r) != 0) {
		task_fail(t, ERRC_INTERNAL, "the pod registry failed");
		return STEP_DONE;
	}
	progress(t, 2, 2, "done");
	res = pods_describe(r, live);
	json_object_object_add(res, "cost", billing_task_cost(r));
	task_complete(t, res);
	store_pod_free(r);
	return STEP_DONE;
}

/* A final RunPod error of a lifecycle task: 404 means the pod is gone
 * (and the registry says so from now on); anything else keeps its code. */
static enum step_result
fail_runpod(struct task *t, const char *pod, const char *what,
    const struct runpod_error *e)
{
	struct op_error oe = { 0 };

	if (e->kind == RP_NOT_FOUND) {
		pods_mark_gone(pod);
		task_fail(t, ERRC_POD_GONE,
		    "the pod no longer exists at RunPod");
		return STEP_DONE;
	}
	pods_op_error(&oe, what, e);
	task_fail(t, oe.code, oe.message);
	free(oe.message);
	return STEP_DONE;
}

/* After the stop action: poll until EXITED. */
static enum step_result
wait_stopped(struct task *t, const struct step_env *env,
    struct runpod_client *c, const char *pod)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_pod *p = NULL;
	enum step_result r;
	char msg[120];
	int rc = runpod_get_pod(c, pod, &p, &e);

	pods_count(rc, &e);
	if (rc < 0) {
		if (pods_transient(&e))
			r = retry_later(t, env, &e, "polling");
		else
			r = fail_runpod(t, pod, "get_pod", &e);
		runpod_error_clear(&e);
		return r;
	}
	if (strcmp(p->status, "EXITED") == 0) {
		if (pods_update(pod, set_stopped, NULL) < 0) {
			/* Logged; the next poll records it again. */
			runpod_pod_free(p);
			return poll_later(t, env);
		}
		r = finish_with_pod(t, env, pod, p);
		runpod_pod_free(p);
		return r;
	}
	snprintf(msg, sizeof(msg), "stopping: status %s", p->status);
	runpod_pod_free(p);
	progress(t, 1, 2, msg);
	if (env->now_ms >= deadline_ms(t, env)) {
		task_fail(t, ERRC_TIMEOUT, "the pod did not stop within the "
		    "timeout");
		return STEP_DONE;
	}
	return poll_later(t, env);
}

enum step_result
prov_action_step(struct task *t, const struct step_env *env)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	struct runpod_pod *p = NULL;
	struct pod_rec *r = NULL;
	const char *pod = ju_str(t->params, "pod_id");
	const char *op = t->operation, *phase = task_ckpt_str(t, "phase");
	bool stop = strcmp(op, "runpod.stop_pod") == 0;
	bool resume = strcmp(op, "runpod.resume_pod") == 0;
	enum step_result res;
	int rc;

	deadline_ms(t, env);
	if (store_pod_get(env->store, pod, &r) != 0 ||
	    strcmp(r->owner, t->owner) != 0) {
		store_pod_free(r);
		task_fail(t, ERRC_POD_NOT_FOUND, "no such pod of yours");
		return STEP_DONE;
	}
	if (strcmp(r->state, "terminated") == 0) {
		store_pod_free(r);
		if (!stop && !resume)
			return finish_with_pod(t, env, pod, NULL);
		task_fail(t, ERRC_POD_NOT_FOUND, "the pod is terminated");
		return STEP_DONE;
	}
	store_pod_free(r);
	if ((c = pods_client(&e)) == NULL) {
		task_fail(t, ERRC_NOT_CONFIGURED, e.detail);
		runpod_error_clear(&e);
		return STEP_DONE;
	}
	if (phase != NULL && strcmp(phase, "wait") == 0) {
		if (stop)
			return wait_stopped(t, env, c, pod);
		task_ckpt_set_str(t, "pod_id", pod);
		return wait_step(t, env, false);
	}
	if (!stop && !resume) {
		progress(t, 1, 2, "terminating");
		if (pods_terminate(c, pod, "owner", "terminated at the owner's "
		    "request", &e) == 0)
			return finish_with_pod(t, env, pod, NULL);
		goto error;
	}
	if (stop)
		progress(t, 1, 2, "stopping");
	else
		progress(t, 1, 3, "starting");
	rc = runpod_pod_action(c, pod, stop ? "stop" : "start", &p, &e);
	pods_count(rc, &e);
	runpod_pod_free(p);
	if (rc == 0 || e.kind == RP_CONFLICT) {
		/* 409: already in (or on its way to) the wanted state, or
		 * in one the action cannot leave: the poll tells which. */
		runpod_error_clear(&e);
		task_ckpt_set_str(t, "phase", "wait");
		t->next_wake_ms = env->now_ms;
		return STEP_WAIT;
	}
error:
	if (pods_transient(&e)) {
		res = retry_later(t, env, &e, op);
	} else
		res = fail_runpod(t, pod, op, &e);
	runpod_error_clear(&e);
	return res;
}
