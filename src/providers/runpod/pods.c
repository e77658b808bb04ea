/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/secretfile.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "core/metrics.h"
#include "providers/runpod/podcost.h"
#include "providers/runpod/pods.h"
#include "providers/ssh/ssh.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static struct {
	const struct config *cfg;
	struct store *store;
	char *api_key;		/* NULL: RunPod not configured */
	char *public_key;	/* NULL: no SSH key configured */
	pthread_key_t client_key;
	bool key_made;
	pthread_mutex_t reg_lock;	/* registry read-modify-write */
} P = { .reg_lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- provider state ---------------------------------------------------- */

static void
free_client(void *c)
{
	runpod_client_free(c);
}

/* First line of buf, trimmed; a new string or NULL when empty. */
static char *
first_line(const unsigned char *buf)
{
	const char *s = (const char *)buf, *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strcspn(s, "\r\n");
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	return e > s ? xstrndup(s, (size_t)(e - s)) : NULL;
}

static int
load_api_key(const struct config *cfg, char **err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	const char *env;

	if (cfg->runpod_api_key_file[0] != '\0') {
		if (secretfile_read("runpod_api_key_file",
		    cfg->runpod_api_key_file, true, &buf, &len, err) < 0)
			return -1;
		P.api_key = first_line(buf);
		secretfile_wipe_free(buf, SECRETFILE_MAX + 1);
		if (P.api_key == NULL) {
			*err = xasprintf("runpod_api_key_file: %s is empty",
			    cfg->runpod_api_key_file);
			return -1;
		}
		return 0;
	}
	env = getenv("RUNPOD_API_KEY");
	if (env != NULL && env[0] != '\0')
		P.api_key = xstrdup(env);
	return 0;
}

static int
load_public_key(const struct config *cfg, char **err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	char *pub = NULL;
	int rc = -1;

	if (cfg->ssh_key_file[0] == '\0')
		return 0;
	/* The private key must be private; ssh.c reads it for each login. */
	if (secretfile_read("ssh_key_file", cfg->ssh_key_file, true, &buf,
	    &len, err) < 0)
		return -1;
	if (strstr((const char *)buf, "PRIVATE KEY") == NULL) {
		*err = xasprintf("ssh_key_file: %s is not a private key",
		    cfg->ssh_key_file);
		goto cleanup;
	}
	secretfile_wipe_free(buf, SECRETFILE_MAX + 1);
	buf = NULL;
	pub = xasprintf("%s.pub", cfg->ssh_key_file);
	if (secretfile_read("ssh_key_file's public half", pub, false, &buf,
	    &len, err) < 0)
		goto cleanup;
	P.public_key = first_line(buf);
	if (P.public_key == NULL || strncmp(P.public_key, "ssh-rsa ", 8) == 0 ||
	    (strncmp(P.public_key, "ssh-ed25519 ", 12) != 0 &&
	    strncmp(P.public_key, "ecdsa-sha2-", 11) != 0)) {
		*err = xasprintf("ssh_key_file: %s must hold an ed25519 or "
		    "ECDSA public key (libssh2 1.10 cannot sign with RSA for "
		    "current OpenSSH servers)", pub);
		free(P.public_key);
		P.public_key = NULL;
		goto cleanup;
	}
	rc = 0;
cleanup:
	secretfile_wipe_free(buf, SECRETFILE_MAX + 1);
	free(pub);
	return rc;
}

int
pods_init(const struct config *cfg, struct store *st, char **err)
{
	P.cfg = cfg;
	P.store = st;
	if (!P.key_made) {
		if (pthread_key_create(&P.client_key, free_client) != 0) {
			*err = xstrdup("pods: pthread_key_create failed");
			return -1;
		}
		P.key_made = true;
	}
	if (load_api_key(cfg, err) < 0 || load_public_key(cfg, err) < 0) {
		pods_shutdown();
		return -1;
	}
	return 0;
}

void
pods_shutdown(void)
{
	if (P.key_made) {
		free_client(pthread_getspecific(P.client_key));
		pthread_setspecific(P.client_key, NULL);
	}
	if (P.api_key != NULL) {
		OPENSSL_cleanse(P.api_key, strlen(P.api_key));
		free(P.api_key);
		P.api_key = NULL;
	}
	free(P.public_key);
	P.public_key = NULL;
}

bool
pods_ready(bool need_ssh, const char **why)
{
	if (P.api_key == NULL) {
		*why = "no RunPod API key is configured on this agent "
		    "(runpod_api_key_file or RUNPOD_API_KEY)";
		return false;
	}
	if (need_ssh && P.public_key == NULL) {
		*why = "no SSH key is configured on this agent (ssh_key_file): "
		    "a pod is ready only when the agent can log in";
		return false;
	}
	return true;
}

const struct config *
pods_config(void)
{
	return P.cfg;
}

struct store *
pods_store(void)
{
	return P.store;
}

const char *
pods_public_key(void)
{
	return P.public_key;
}

struct runpod_client *
pods_client(struct runpod_error *e)
{
	struct runpod_client *c;
	struct runpod_opts o = { 0 };
	char *err = NULL;

	runpod_error_clear(e);
	if (P.api_key == NULL || !P.key_made) {
		e->kind = RP_BAD_REQUEST;
		e->detail = xstrdup("RunPod is not configured");
		return NULL;
	}
	c = pthread_getspecific(P.client_key);
	if (c != NULL)
		return c;
	o.base_url = P.cfg->runpod_url;
	o.api_key = P.api_key;
	o.ca_file = P.cfg->runpod_ca_file[0] ? P.cfg->runpod_ca_file : NULL;
	o.connect_timeout_s = P.cfg->runpod_timeout < 10 ?
	    P.cfg->runpod_timeout : 10;
	o.timeout_s = P.cfg->runpod_timeout;
	o.max_attempts = 1;	/* retries go through the timer queue */
	if (runpod_client_new(&o, &c, &err) < 0) {
		e->kind = RP_BAD_REQUEST;
		e->detail = err;
		return NULL;
	}
	pthread_setspecific(P.client_key, c);
	return c;
}

/* RunPod calls by outcome: RP_OK and every error kind. */
#define RP_KINDS RUNPOD_ERROR_KINDS
static atomic_ulong calls[RP_KINDS];

/* What the last answer said of the key (pods_key_status). */
static struct {
	pthread_mutex_t lock;
	struct pods_key_status st;
} K = { .lock = PTHREAD_MUTEX_INITIALIZER };

static enum pods_key_state
key_verdict(int k, int http_status)
{
	switch (k) {
	case RP_OK:
	case RP_NO_CAPACITY:
	case RP_PAYMENT:
	case RP_NOT_FOUND:
	case RP_CONFLICT:
		return PODS_KEY_ACCEPTED;
	case RP_BAD_REQUEST:	/* http_status 0: never sent */
		return http_status != 0 ? PODS_KEY_ACCEPTED : PODS_KEY_UNKNOWN;
	case RP_AUTH:
	case RP_FORBIDDEN:
		return PODS_KEY_REJECTED;
	case RP_NETWORK:
	case RP_SERVER:
	case RP_PROTOCOL:
		return PODS_KEY_UNREACHABLE;
	default:		/* RP_RATE_LIMITED: says nothing; nor does
				   RP_POOL_FORBIDDEN (a pool this account
				   cannot use, or a key that may not create:
				   RunPod does not say which) */
		return PODS_KEY_UNKNOWN;
	}
}

void
pods_count(int rc, const struct runpod_error *e)
{
	int k = rc == 0 ? RP_OK : (int)e->kind;
	int http = rc == 0 ? 200 : e->http_status;
	enum pods_key_state v = key_verdict(k, http);

	if (k >= 0 && k < RP_KINDS)
		atomic_fetch_add(&calls[k], 1);
	if (v == PODS_KEY_UNKNOWN)
		return;
	pthread_mutex_lock(&K.lock);
	K.st.state = v;
	K.st.http_status = http;
	K.st.kind = k;
	K.st.at_ms = clock_mono_ms();
	pthread_mutex_unlock(&K.lock);
}

void
pods_key_status(struct pods_key_status *out)
{
	pthread_mutex_lock(&K.lock);
	*out = K.st;
	pthread_mutex_unlock(&K.lock);
}

int
pods_probe_key(long timeout_s, struct runpod_error *e)
{
	struct runpod_client *c = NULL;
	struct runpod_opts o = { 0 };
	struct runpod_pod **pods = NULL;
	size_t n = 0;
	char *err = NULL;
	int rc = -1;

	runpod_error_clear(e);
	if (P.api_key == NULL || P.cfg == NULL) {
		e->kind = RP_BAD_REQUEST;
		e->detail = xstrdup("RunPod is not configured");
		return -1;
	}
	o.base_url = P.cfg->runpod_url;
	o.api_key = P.api_key;
	o.ca_file = P.cfg->runpod_ca_file[0] ? P.cfg->runpod_ca_file : NULL;
	o.connect_timeout_s = timeout_s;
	o.timeout_s = timeout_s;
	o.max_attempts = 1;
	if (runpod_client_new(&o, &c, &err) < 0) {
		e->kind = RP_BAD_REQUEST;
		e->detail = err;
		goto cleanup;
	}
	rc = runpod_list_pods(c, &pods, &n, e);
	pods_count(rc, e);
	runpod_pods_free(pods, n);
cleanup:
	runpod_client_free(c);
	return rc;
}

/*
 * The pods the agent holds, from the registry: how many are active or
 * stopped, and what the active ones cost per hour at the rates RunPod last
 * reported (a stopped pod's compute is not billed; storage is not
 * counted).  Nothing is added when the registry cannot be read.
 */
static void
held_metrics(struct strbuf *sb)
{
	struct pod_rec **recs = NULL;
	unsigned long active = 0, stopped = 0;
	double rate = 0;
	size_t n = 0, i;

	if (P.store == NULL ||
	    store_pod_list(P.store, NULL, false, &recs, &n) < 0)
		return;
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i]->state, "active") == 0) {
			active++;
			rate += recs[i]->cost_per_hr;
		} else if (strcmp(recs[i]->state, "stopped") == 0)
			stopped++;
	}
	store_pod_list_free(recs, n);
	sb_addf(sb, "# HELP instag_agent_pods Pods the agent holds, by "
	    "state.\n# TYPE instag_agent_pods gauge\n"
	    "instag_agent_pods{state=\"active\"} %lu\n"
	    "instag_agent_pods{state=\"stopped\"} %lu\n"
	    "# HELP instag_agent_pods_cost_per_hour_usd What the active pods "
	    "cost per hour at RunPod's last reported rates.\n"
	    "# TYPE instag_agent_pods_cost_per_hour_usd gauge\n"
	    "instag_agent_pods_cost_per_hour_usd %.4f\n", active, stopped,
	    rate);
}

void
pods_metrics(struct strbuf *sb)
{
	int k;

	sb_adds(sb, "# HELP instag_agent_runpod_calls_total RunPod API calls "
	    "by outcome.\n# TYPE instag_agent_runpod_calls_total counter\n");
	for (k = 0; k < RP_KINDS; k++)
		sb_addf(sb, "instag_agent_runpod_calls_total{outcome=\"%s\"} "
		    "%lu\n", k == RP_OK ? "ok" : runpod_error_kind_name(k),
		    atomic_load(&calls[k]));
	held_metrics(sb);
}

bool
pods_transient(const struct runpod_error *e)
{
	return e->kind == RP_RATE_LIMITED || e->kind == RP_SERVER ||
	    e->kind == RP_NETWORK;
}

int64_t
pods_retry_delay_ms(const struct runpod_error *e, int n)
{
	if (e->kind == RP_RATE_LIMITED && e->retry_after_s > 0)
		return (e->retry_after_s > RUNPOD_RETRY_AFTER_MAX_S ?
		    RUNPOD_RETRY_AFTER_MAX_S : e->retry_after_s) * 1000;
	return backoff_ms(1000, RUNPOD_BACKOFF_MAX_MS, n);
}

char *
pods_name_for(const char *task_id)
{
	return xasprintf("%s-%s", P.cfg->pod_name_prefix, task_id);
}

/* ---- registry ------------------------------------------------------------ */

int64_t
pods_idle_ms(json_object *params)
{
	json_object *v;
	double mins = (double)P.cfg->pod_idle_minutes;

	if (json_object_object_get_ex(params, "idle_minutes", &v) &&
	    v != NULL)
		mins = json_object_get_double(v);
	if (!(mins > 0))
		return 0;
	return (int64_t)(mins * 60000.0 + 0.5);
}

int
pods_register(const struct task *t, const struct runpod_pod *p,
    const char *cloud, char **err)
{
	struct pod_rec r = { 0 };
	int64_t mins = P.cfg->max_runtime_minutes, now = clock_wall_ms(), v64;
	json_object *v;
	char *name = pods_name_for(t->id);
	int rc;

	ju_int(t->params, "max_runtime_minutes", &mins);
	r.max_cost_usd = P.cfg->max_cost;
	if (json_object_object_get_ex(t->params, "max_cost_usd", &v) &&
	    v != NULL)
		r.max_cost_usd = json_object_get_double(v);
	r.pod_id = p->id;
	r.name = name;
	r.task_id = (char *)t->id;
	r.owner = t->owner;
	r.state = (char *)"active";
	r.label = (char *)ju_str(t->params, "pod_name");
	r.gpu_type_id = p->gpu_id;
	r.cloud = (char *)cloud;
	r.gpu_count = p->gpu_count > 0 ? p->gpu_count : 1;
	r.cost_per_hr = p->cost_per_hr;
	/* The sizes RunPod reports: what its storage is billed on. */
	if (ju_int(p->raw, "disk", &v64) == 0 && v64 > 0 && v64 < INT_MAX)
		r.disk_gb = (int)v64;
	if (ju_int(ju_obj(ju_obj(p->raw, "mounts"), "persistent"), "size",
	    &v64) == 0 && v64 > 0 && v64 < INT_MAX)
		r.volume_gb = (int)v64;
	r.max_runtime_ms = mins * 60000;
	r.idle_ms = pods_idle_ms(t->params);
	r.last_used_ms = now;
	r.last_check_ms = now;
	r.created_ms = r.updated_ms = now;
	pthread_mutex_lock(&P.reg_lock);
	rc = store_pod_put(P.store, &r, err);
	pthread_mutex_unlock(&P.reg_lock);
	free(name);
	return rc;
}

struct update_call {
	void (*fn)(struct pod_rec *r, void *arg);
	void *arg;
};

static void
update_apply(struct pod_rec *r, void *arg)
{
	struct update_call *u = arg;

	u->fn(r, u->arg);
	r->updated_ms = clock_wall_ms();
}

int
pods_update(const char *pod_id, void (*fn)(struct pod_rec *r, void *arg),
    void *arg)
{
	struct update_call u = { fn, arg };
	char *err = NULL;
	int rc;

	/* The mutex orders this process's writers; the store orders
	 * several agents' (a row lock on PostgreSQL). */
	pthread_mutex_lock(&P.reg_lock);
	rc = store_pod_update(P.store, pod_id, update_apply, &u, &err);
	pthread_mutex_unlock(&P.reg_lock);
	if (rc < 0) {
		log_kv(LOG_ERROR, "store_error", err, "pod", pod_id, NULL);
		free(err);
	}
	return rc;
}

/*
 * Record in the registry what RunPod already says (terminated, gone).  A
 * store failure is logged by pods_update and only delays the record: the
 * pod is gone at RunPod either way, and the next guard round or read
 * marks it again.
 */
static void
mark(const char *pod_id, void (*fn)(struct pod_rec *r, void *arg), void *arg)
{
	if (pods_update(pod_id, fn, arg) < 0)
		log_kv(LOG_WARN, "registry_stale", "the pod registry could not "
		    "record a pod's end; it will be recorded again", "pod",
		    pod_id, NULL);
}

static void
set_terminated(struct pod_rec *r, void *arg)
{
	if (strcmp(r->state, "terminated") == 0)
		return;		/* keep the first reason */
	free(r->state);
	r->state = xstrdup("terminated");
	free(r->reason);
	r->reason = xstrdup(arg);
}

/* Terminated by the agent just now: the last interval is accrued in the
 * state the pod was in, then the row is closed. */
static void
set_terminated_now(struct pod_rec *r, void *arg)
{
	podcost_accrue(r, clock_wall_ms(), strcmp(r->state, "stopped") == 0);
	set_terminated(r, arg);
}

int
pods_terminate(struct runpod_client *c, const char *pod_id, const char *who,
    const char *reason, struct runpod_error *e)
{
	int rc = runpod_delete_pod(c, pod_id, e);

	pods_count(rc, e);
	if (rc < 0 && e->kind != RP_NOT_FOUND) {
		log_kv(LOG_WARN, "pod_terminate_failed", "could not terminate "
		    "a pod; will try again", "pod", pod_id, "by", who,
		    "error", runpod_error_kind_name(e->kind), NULL);
		return -1;
	}
	runpod_error_clear(e);
	mark(pod_id, set_terminated_now, (void *)reason);
	if (strcmp(who, "owner") != 0)
		metrics_pod_reaped(who);
	log_kv(LOG_INFO, "pod_terminated", reason, "pod", pod_id, "by", who,
	    NULL);
	return 0;
}

int
pods_probe_ssh(const char *host, int port, const char *pinned, char **fp,
    char **why)
{
	struct ssh_target t = { 0 };
	struct ssh_error e = SSH_ERROR_INIT;
	int rc;

	*fp = NULL;
	*why = NULL;
	t.host = host;
	t.port = port;
	t.user = P.cfg->ssh_user;
	t.key_file = P.cfg->ssh_key_file;
	t.pinned_fp = pinned;
	t.timeout_ms = P.cfg->ssh_timeout * 1000;
	rc = ssh_probe(&t, fp, &e);
	if (rc < 0 && pinned != NULL && e.kind == SSH_ERR_HOSTKEY)
		rc = -2;
	if (rc < 0)
		*why = xasprintf("ssh %s:%d: %s (%s)", host, port,
		    e.message ? e.message : "failed",
		    ssh_error_kind_name(e.kind));
	ssh_error_clear(&e);
	return rc;
}

/* ---- describing pods ----------------------------------------------------- */

static void
add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

json_object *
pods_describe(const struct pod_rec *r, const struct runpod_pod *live)
{
	json_object *o = json_object_new_object(), *a;
	const char *status = live ? live->status :
	    strcmp(r->state, "terminated") == 0 ? "TERMINATED" : NULL;
	size_t i;

	add_str(o, "pod_id", r->pod_id);
	add_str(o, "name", r->name);
	add_str(o, "label", r->label);
	add_str(o, "status", status);
	add_str(o, "agent_state", r->state);
	add_str(o, "gpu_type_id", r->gpu_type_id);
	json_object_object_add(o, "gpu_count",
	    json_object_new_int(live && live->gpu_count ? live->gpu_count :
	    r->gpu_count));
	add_str(o, "cloud_type", r->cloud);
	add_str(o, "public_ip", live ? live->public_ip : r->public_ip);
	json_object_object_add(o, "ssh_port", json_object_new_int(live ?
	    live->ssh_port : r->ssh_port));
	add_str(o, "host_key_fingerprint", r->host_fp);
	json_object_object_add(o, "cost_per_hr", json_object_new_double(
	    live ? live->cost_per_hr : r->cost_per_hr));
	json_object_object_add(o, "uptime_s", json_object_new_int64(
	    live ? live->uptime_s : 0));
	json_object_object_add(o, "running_minutes", json_object_new_double(
	    (double)r->running_ms / 60000.0));
	json_object_object_add(o, "cost_usd",
	    json_object_new_double(r->cost_usd));
	json_object_object_add(o, "stopped_minutes", json_object_new_double(
	    (double)r->stopped_ms / 60000.0));
	json_object_object_add(o, "storage_usd",
	    json_object_new_double(r->storage_usd));
	json_object_object_add(o, "total_usd",
	    json_object_new_double(podcost_total(r)));
	json_object_object_add(o, "cost", podcost_json(r));
	json_object_object_add(o, "max_runtime_minutes", json_object_new_int64(
	    r->max_runtime_ms / 60000));
	json_object_object_add(o, "max_cost_usd",
	    json_object_new_double(r->max_cost_usd));
	json_object_object_add(o, "idle_minutes", json_object_new_double(
	    (double)r->idle_ms / 60000.0));
	if (r->last_used_ms > 0) {
		char ts[40];
		ju_iso8601(r->last_used_ms, ts, sizeof(ts));
		add_str(o, "last_used_at", ts);
	}
	add_str(o, "task_id", r->task_id);
	a = json_object_new_array();
	for (i = 0; live && i < live->nactions; i++)
		json_object_array_add(a, json_object_new_string(
		    live->actions[i]));
	json_object_object_add(o, "actions", a);
	if (r->reason != NULL)
		add_str(o, "reason", r->reason);
	{
		char ts[40];
		ju_iso8601(r->created_ms, ts, sizeof(ts));
		add_str(o, "created_at", ts);
	}
	return o;
}

void
pods_op_error(struct op_error *oe, const char *what,
    const struct runpod_error *e)
{
	const char *code = e->kind == RP_RATE_LIMITED ? ERRC_RATE_LIMITED :
	    (e->kind == RP_SERVER || e->kind == RP_NETWORK) ?
	    ERRC_RUNPOD_UNAVAILABLE : ERRC_RUNPOD;

	if (e->kind == RP_RATE_LIMITED)
		op_error_set(oe, code, "%s: RunPod is rate limiting the agent; "
		    "retry after %ld s", what, e->retry_after_s > 0 ?
		    e->retry_after_s : 1);
	else if (e->http_status != 0)
		op_error_set(oe, code, "%s: RunPod answered HTTP %d (%s)", what,
		    e->http_status, runpod_error_kind_name(e->kind));
	else
		op_error_set(oe, code, "%s: RunPod: %s", what,
		    runpod_error_kind_name(e->kind));
	if (e->detail != NULL || e->title != NULL) {
		char *m = xasprintf("%s: %s", oe->message,
		    e->detail ? e->detail : e->title);
		free(oe->message);
		oe->message = m;
	}
}

/* ---- synchronous operations ---------------------------------------------- */

int
pods_op_list_gpu_types(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *oe)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *cl = pods_client(&e);
	json_object *gpus = NULL;
	int rc;

	(void)c;
	(void)params;
	if (cl == NULL) {
		pods_op_error(oe, "list_gpu_types", &e);
		runpod_error_clear(&e);
		return -1;
	}
	rc = runpod_list_gpu_types(cl, true, &gpus, &e);
	pods_count(rc, &e);
	if (rc < 0) {
		pods_op_error(oe, "list_gpu_types", &e);
		runpod_error_clear(&e);
		return -1;
	}
	*result = json_object_new_object();
	/* A deep copy: the client's parse tree stays in this thread. */
	json_object_object_add(*result, "gpu_types", ju_copy(gpus));
	json_object_put(gpus);
	return 0;
}

/* The caller's registry row for params.pod_id: 0, or -1 with *oe. */
static int
owned_pod(const struct op_ctx *c, json_object *params, struct pod_rec **out,
    struct op_error *oe)
{
	const char *id = ju_str(params, "pod_id");
	int rc = store_pod_get(P.store, id, out);

	if (rc == 0 && strcmp((*out)->owner, c->who->sub) == 0)
		return 0;
	store_pod_free(*out);
	*out = NULL;
	if (rc < 0)
		op_error_set(oe, ERRC_INTERNAL, "the pod registry failed");
	else
		op_error_set(oe, ERRC_POD_NOT_FOUND, "no pod with id '%.64s' "
		    "was provisioned by you through this agent", id);
	return -1;
}

int
pods_admit_owned(const struct op_ctx *c, json_object *params,
    struct op_error *oe)
{
	struct pod_rec *r = NULL;

	if (owned_pod(c, params, &r, oe) < 0)
		return -1;
	if (strcmp(r->state, "terminated") == 0) {
		op_error_set(oe, ERRC_POD_NOT_FOUND,
		    "pod %s is terminated (%s)", r->pod_id,
		    r->reason ? r->reason : "no reason recorded");
		store_pod_free(r);
		return -1;
	}
	store_pod_free(r);
	return 0;
}

static void
set_gone(struct pod_rec *r, void *arg)
{
	(void)arg;
	set_terminated(r, (void *)PODS_REASON_GONE);
}

void
pods_mark_gone(const char *pod_id)
{
	mark(pod_id, set_gone, NULL);
}

int
pods_op_get(const struct op_ctx *c, json_object *params, json_object **result,
    struct op_error *oe)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *cl;
	struct runpod_pod *live = NULL;
	struct pod_rec *r = NULL;
	int rc = -1;

	if (owned_pod(c, params, &r, oe) < 0)
		return -1;
	if (strcmp(r->state, "terminated") != 0) {
		if ((cl = pods_client(&e)) == NULL)
			goto fail;
		rc = runpod_get_pod(cl, r->pod_id, &live, &e);
		pods_count(rc, &e);
		if (rc < 0 && e.kind == RP_NOT_FOUND) {
			mark(r->pod_id, set_gone, NULL);
			store_pod_free(r);
			r = NULL;
			if (store_pod_get(P.store, ju_str(params, "pod_id"),
			    &r) != 0)
				goto fail;
		} else if (rc < 0)
			goto fail;
	}
	*result = pods_describe(r, live);
	runpod_pod_free(live);
	store_pod_free(r);
	return 0;
fail:
	if (e.kind != RP_OK)
		pods_op_error(oe, "get_pod", &e);
	else
		op_error_set(oe, ERRC_INTERNAL, "the pod registry failed");
	runpod_error_clear(&e);
	store_pod_free(r);
	return -1;
}

int
pods_op_list(const struct op_ctx *c, json_object *params, json_object **result,
    struct op_error *oe)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *cl;
	struct runpod_pod **live = NULL;
	struct pod_rec **recs = NULL;
	size_t nlive = 0, nrec = 0, i, j;
	json_object *arr;
	int rc;

	(void)params;
	if (store_pod_list(P.store, c->who->sub, false, &recs, &nrec) < 0) {
		op_error_set(oe, ERRC_INTERNAL, "the pod registry failed");
		return -1;
	}
	if (nrec > 0) {
		if ((cl = pods_client(&e)) == NULL)
			goto fail;
		rc = runpod_list_pods(cl, &live, &nlive, &e);
		pods_count(rc, &e);
		if (rc < 0)
			goto fail;
	}
	arr = json_object_new_array();
	for (i = 0; i < nrec; i++) {
		const struct runpod_pod *lp = NULL;
		for (j = 0; j < nlive; j++)
			if (strcmp(live[j]->id, recs[i]->pod_id) == 0)
				lp = live[j];
		if (lp == NULL) {
			/* The list leaves terminated pods out. */
			mark(recs[i]->pod_id, set_gone, NULL);
			set_gone(recs[i], NULL);
		}
		json_object_array_add(arr, pods_describe(recs[i], lp));
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "pods", arr);
	rc = 0;
	goto cleanup;
fail:
	pods_op_error(oe, "list_pods", &e);
	rc = -1;
cleanup:
	runpod_error_clear(&e);
	runpod_pods_free(live, nlive);
	store_pod_list_free(recs, nrec);
	return rc;
}
