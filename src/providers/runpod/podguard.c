/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "core/metrics.h"
#include "providers/runpod/podcost.h"
#include "providers/runpod/podguard.h"
#include "providers/runpod/pods.h"
#include "lib/uuid.h"
#include "lib/xalloc.h"

static struct {
	const struct config *cfg;
	struct store *store;
	bool leader;		/* holds the podguard singleton */
	pthread_t thread;
	bool running, stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
} G = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

char *
guard_account(struct pod_rec *r, int64_t dt_ms, double rate, bool billed)
{
	if (dt_ms < 0)
		dt_ms = 0;
	if (billed) {
		r->running_ms += dt_ms;
		r->cost_usd += rate * (double)dt_ms / 3600000.0;
	}
	if (r->max_cost_usd > 0 && podcost_total(r) >= r->max_cost_usd)
		return xasprintf("cost guard: max_cost_usd %.2f reached "
		    "(%.4f USD: compute %.4f at %.3f USD/h, storage %.4f)",
		    r->max_cost_usd, podcost_total(r), r->cost_usd, rate,
		    r->storage_usd);
	if (r->max_runtime_ms > 0 && r->running_ms >= r->max_runtime_ms)
		return xasprintf("cost guard: max_runtime_minutes %lld "
		    "reached (ran %.1f minutes)",
		    (long long)(r->max_runtime_ms / 60000),
		    (double)r->running_ms / 60000.0);
	return NULL;
}

bool
guard_parse_name(const char *prefix, const char *name, const char **task_id)
{
	size_t n = strlen(prefix);

	if (name == NULL || strncmp(name, prefix, n) != 0 || name[n] != '-')
		return false;
	*task_id = name + n + 1;
	return uuid_valid(*task_id);
}

bool
guard_task_uses(const struct task *t, const struct pod_rec *r)
{
	const char *p;

	if (task_state_terminal(t->state))
		return false;
	if (r->task_id != NULL && strcmp(t->id, r->task_id) == 0)
		return true;
	p = ju_str(t->params, "pod_id");
	if (p != NULL && strcmp(p, r->pod_id) == 0)
		return true;
	p = task_ckpt_str(t, "pod_id");
	return p != NULL && strcmp(p, r->pod_id) == 0;
}

char *
guard_idle(const struct pod_rec *r, int64_t now, bool in_use, bool running)
{
	int64_t since = r->last_used_ms > r->created_ms ? r->last_used_ms :
	    r->created_ms;

	if (in_use || !running || r->idle_ms <= 0 ||
	    strcmp(r->state, "active") != 0 || now - since < r->idle_ms)
		return NULL;
	return xasprintf("idle: no task used the pod for %.1f minutes "
	    "(idle_minutes %.2f)", (double)(now - since) / 60000.0,
	    (double)r->idle_ms / 60000.0);
}

/* ---- cost guard ---------------------------------------------------------- */

struct round {
	int64_t now;
	double new_rate;
	bool listed;		/* RunPod lists it (not TERMINATED) */
	bool billed;
	bool running;		/* RunPod says RUNNING */
	bool idle_known;	/* in_use is known (the task scan worked) */
	bool in_use;
	char *reason;		/* out: a cost limit passed */
	char *idle;		/* out: the idle limit passed */
};

/* Whether any unfinished task uses r; -1 when the store cannot say. */
static int
in_use(const struct pod_rec *r)
{
	struct task **ts = NULL;
	size_t n = 0, i;
	int yes = 0;

	if (store_task_active(G.store, &ts, &n) < 0)
		return -1;
	for (i = 0; i < n && !yes; i++)
		yes = guard_task_uses(ts[i], r);
	task_list_free(ts, n);
	return yes;
}

static void
account(struct pod_rec *r, void *arg)
{
	struct round *x = arg;
	int64_t dt = r->last_check_ms ? x->now - r->last_check_ms : 0;

	if (strcmp(r->state, "terminated") == 0)
		return;
	/* Disk storage is billed while it exists, running or stopped. */
	if (x->listed)
		podcost_storage(r, dt, !x->billed);
	x->reason = guard_account(r, dt, r->cost_per_hr, x->billed);
	/* A stop, resume or termination may have accrued past this round's
	 * clock since it was read: never move the stamp back (that would
	 * count the slice twice). */
	if (x->now > r->last_check_ms)
		r->last_check_ms = x->now;
	r->cost_per_hr = x->new_rate;
	if (x->idle_known && x->in_use)
		r->last_used_ms = x->now;
	else if (x->idle_known && x->reason == NULL)
		x->idle = guard_idle(r, x->now, false, x->running);
}

static void
set_idle_stopped(struct pod_rec *r, void *arg)
{
	if (strcmp(r->state, "terminated") == 0)
		return;
	/* Running up to the stop; stopped (storage only) from now. */
	if (strcmp(r->state, "stopped") != 0)
		podcost_accrue(r, clock_wall_ms(), false);
	free(r->state);
	r->state = xstrdup("stopped");
	free(r->reason);
	r->reason = xstrdup(arg);
}

/*
 * Act on an idle pod: stop it (POST action stop; 409: already stopping
 * or stopped) or terminate it, as pod_idle_action says.  The action comes
 * first and the registry row after: both actions are idempotent at
 * RunPod, so a failure or a crash in between is caught up next round (a
 * crash after a stop leaves the row "active" for an EXITED pod, which is
 * not billed for compute).  A task that started using the pod since the
 * round's scan keeps it.
 */
static void
idle_act(struct runpod_client *c, const struct pod_rec *r, const char *why)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_pod *p = NULL;
	bool term = strcmp(G.cfg->pod_idle_action, "terminate") == 0;
	int rc;

	if (in_use(r) != 0)
		return;
	log_kv(LOG_INFO, "pod_idle", why, "pod", r->pod_id, "owner", r->owner,
	    "action", term ? "terminate" : "stop", NULL);
	if (term) {
		if (pods_terminate(c, r->pod_id, "idle", why, &e) == 0)
			metrics_pod_idle("terminate");
		runpod_error_clear(&e);
		return;
	}
	rc = runpod_pod_action(c, r->pod_id, "stop", &p, &e);
	pods_count(rc, &e);
	runpod_pod_free(p);
	if (rc < 0 && e.kind != RP_CONFLICT) {
		log_kv(LOG_WARN, "pod_stop_failed", "could not stop an idle "
		    "pod; will try again", "pod", r->pod_id, "error",
		    runpod_error_kind_name(e.kind), NULL);
		runpod_error_clear(&e);
		return;
	}
	runpod_error_clear(&e);
	/* A failed write is logged; the next round stops (409) again. */
	if (pods_update(r->pod_id, set_idle_stopped, (void *)why) == 0)
		metrics_pod_idle("stop");
}

static void
cost_round(void)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	struct runpod_pod **live = NULL;
	struct pod_rec **recs = NULL;
	struct task **ts = NULL;
	size_t nlive = 0, nrec = 0, nts = 0, i, j;
	bool idle_known = false;
	int rc;

	if (store_pod_list(G.store, NULL, false, &recs, &nrec) < 0 || nrec == 0)
		goto cleanup;
	for (i = 0; i < nrec && !idle_known; i++)
		idle_known = recs[i]->idle_ms > 0 &&
		    strcmp(recs[i]->state, "active") == 0;
	/* Which pods tasks use: one read of the store; when it fails, no
	 * pod is taken for idle this round. */
	if (idle_known && store_task_active(G.store, &ts, &nts) < 0)
		idle_known = false;
	if ((c = pods_client(&e)) == NULL)
		goto cleanup;
	rc = runpod_list_pods(c, &live, &nlive, &e);
	pods_count(rc, &e);
	if (rc < 0) {
		log_kv(LOG_WARN, "cost_guard", "cannot list pods; next round "
		    "will catch up", "error", runpod_error_kind_name(e.kind),
		    NULL);
		goto cleanup;
	}
	for (i = 0; i < nrec; i++) {
		struct round x = { .now = clock_wall_ms(),
		    .idle_known = idle_known };
		const struct runpod_pod *lp = NULL;

		for (j = 0; j < nlive; j++)
			if (strcmp(live[j]->id, recs[i]->pod_id) == 0)
				lp = live[j];
		if (lp != NULL) {
			x.new_rate = lp->cost_per_hr;
			x.billed = strcmp(lp->status, "EXITED") != 0 &&
			    strcmp(lp->status, "TERMINATED") != 0;
			x.running = strcmp(lp->status, "RUNNING") == 0;
			x.listed = strcmp(lp->status, "TERMINATED") != 0;
		}
		for (j = 0; idle_known && j < nts && !x.in_use; j++)
			x.in_use = guard_task_uses(ts[j], recs[i]);
		/* Not listed: terminated outside the agent; account the last
		 * interval and let the get/list operations mark it.  A write
		 * that fails is logged by pods_update, and loses nothing: the
		 * next round accounts from the last time written. */
		IGNORE_RESULT(pods_update(recs[i]->pod_id, account, &x));
		if (x.reason != NULL) {
			log_kv(LOG_WARN, "cost_guard", x.reason, "pod",
			    recs[i]->pod_id, "owner", recs[i]->owner, NULL);
			/* A failure is logged; the next round tries again. */
			IGNORE_RESULT(pods_terminate(c, recs[i]->pod_id,
			    "cost_guard", x.reason, &e));
			runpod_error_clear(&e);
			free(x.reason);
		} else if (x.idle != NULL)
			idle_act(c, recs[i], x.idle);
		free(x.idle);
	}
cleanup:
	runpod_error_clear(&e);
	runpod_pods_free(live, nlive);
	store_pod_list_free(recs, nrec);
	task_list_free(ts, nts);
}

/* ---- reaper -------------------------------------------------------------- */

/* Whether a pod named for task tid is owned by something live. */
static bool
owned(const char *pod_id, const char *tid)
{
	struct pod_rec *r = NULL;
	struct task *t = NULL;
	bool live_row, yes = false;

	live_row = store_pod_get(G.store, pod_id, &r) == 0 &&
	    strcmp(r->state, "terminated") != 0;
	if (store_task_get(G.store, tid, &t) == 0)
		yes = !task_state_terminal(t->state) ||
		    (live_row && t->state == TASK_COMPLETED);
	store_pod_free(r);
	task_free(t);
	return yes;
}

static void
reap_round(void)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *c;
	struct runpod_pod **live = NULL;
	size_t nlive = 0, i;
	unsigned long orphans = 0;
	bool terminate = strcmp(G.cfg->reaper_mode, "terminate") == 0;
	const char *tid;
	int rc;

	if ((c = pods_client(&e)) == NULL)
		goto cleanup;
	rc = runpod_list_pods(c, &live, &nlive, &e);
	pods_count(rc, &e);
	if (rc < 0) {
		log_kv(LOG_WARN, "reaper", "cannot list pods; next round will "
		    "try again", "error", runpod_error_kind_name(e.kind), NULL);
		goto cleanup;
	}
	for (i = 0; i < nlive; i++) {
		if (!guard_parse_name(G.cfg->pod_name_prefix, live[i]->name,
		    &tid) || strcmp(live[i]->status, "TERMINATED") == 0 ||
		    owned(live[i]->id, tid))
			continue;
		orphans++;
		log_kv(LOG_WARN, "orphan_pod", terminate ? "a pod no task of "
		    "this agent owns: terminating it" : "a pod no task of this "
		    "agent owns (reaper_mode=report: left running)", "pod",
		    live[i]->id, "name", live[i]->name, NULL);
		if (terminate) {
			/* A failure is logged; the next round tries again. */
			IGNORE_RESULT(pods_terminate(c, live[i]->id, "reaper",
			    "reaper: no task of this agent owns it", &e));
			runpod_error_clear(&e);
		}
	}
	metrics_set_orphan_pods(orphans);
cleanup:
	runpod_error_clear(&e);
	runpod_pods_free(live, nlive);
}

/* ---- the thread ---------------------------------------------------------- */

/*
 * Whether this agent runs the cost guard and the reaper now: always with
 * one agent (SQLite); with several on a shared store, the one holding
 * the "podguard" singleton (store_singleton), so each pod is checked and
 * each stray reaped by one agent, not by all.  Logs the changes.
 */
static bool
guard_is_leader(void)
{
	bool lead;

	pthread_mutex_unlock(&G.lock);
	lead = store_singleton(G.store, "podguard");
	pthread_mutex_lock(&G.lock);
	if (lead != G.leader)
		log_kv(LOG_INFO, "podguard_leader", lead ? "this agent runs "
		    "the cost guard and the reaper" : "another agent runs "
		    "the cost guard and the reaper", NULL);
	G.leader = lead;
	return lead;
}

static void *
guard_main(void *arg)
{
	int64_t next_cost, next_reap, now, wake;
	bool reap = strcmp(G.cfg->reaper_mode, "off") != 0;

	(void)arg;
	now = clock_wall_ms();
	next_reap = reap ? now : INT64_MAX;
	next_cost = now + G.cfg->cost_guard_interval * 1000;
	pthread_mutex_lock(&G.lock);
	while (!G.stopping) {
		now = clock_wall_ms();
		if ((now >= next_reap || now >= next_cost) &&
		    !guard_is_leader()) {
			/* Another agent on the shared store runs them; ask
			 * again next interval (it takes over within one
			 * interval of that agent's death). */
			next_reap = reap && now >= next_reap ? now +
			    G.cfg->cost_guard_interval * 1000 : next_reap;
			next_cost = now >= next_cost ? now +
			    G.cfg->cost_guard_interval * 1000 : next_cost;
			continue;
		}
		if (now >= next_reap) {
			pthread_mutex_unlock(&G.lock);
			reap_round();
			pthread_mutex_lock(&G.lock);
			next_reap = G.cfg->reaper_interval > 0 ?
			    clock_wall_ms() + G.cfg->reaper_interval * 1000 :
			    INT64_MAX;
			continue;
		}
		if (now >= next_cost) {
			pthread_mutex_unlock(&G.lock);
			cost_round();
			pthread_mutex_lock(&G.lock);
			next_cost = clock_wall_ms() +
			    G.cfg->cost_guard_interval * 1000;
			continue;
		}
		wake = next_cost < next_reap ? next_cost : next_reap;
		{
			struct timespec ts = clock_ts(wake);
			pthread_cond_timedwait(&G.cond, &G.lock, &ts);
		}
	}
	pthread_mutex_unlock(&G.lock);
	return NULL;
}

int
guard_start(const struct config *cfg, struct store *st, char **err)
{
	const char *why;

	if (!pods_ready(false, &why))
		return 0;
	G.cfg = cfg;
	G.store = st;
	G.stopping = false;
	G.leader = !store_shared(st);
	if (pthread_create(&G.thread, NULL, guard_main, NULL) != 0) {
		*err = xstrdup("cannot start the cost guard thread");
		return -1;
	}
	G.running = true;
	return 0;
}

void
guard_stop(void)
{
	if (!G.running)
		return;
	pthread_mutex_lock(&G.lock);
	G.stopping = true;
	pthread_cond_broadcast(&G.cond);
	pthread_mutex_unlock(&G.lock);
	pthread_join(G.thread, NULL);
	G.running = false;
}
