/* SPDX-License-Identifier: MIT */
/*
 * ready: the readiness checks (see ready.h).
 */
#include "auto-config.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "providers/runpod/pods.h"
#include "server/ready.h"

enum ready_check {
	CK_SERVING, CK_STORE, CK_ARTIFACT, CK_UPLOADS, CK_RUNPOD, CK__COUNT
};

static const char *const check_names[CK__COUNT] = {
	"serving", "store", "artifact_dir", "uploads_dir", "runpod"
};

struct check {
	bool ok;
	bool degraded;		/* ok, but something it needs is failing */
	bool skipped;		/* not configured: ok, nothing to check */
	long age_s;		/* runpod: how old the verdict is; -1 none */
	char why[256];		/* "" when ok and not degraded */
};

static struct {
	const struct config *cfg;
	struct store *store;
	volatile int stopping;
	pthread_mutex_t lock;	/* everything below */
	int64_t local_at_ms;	/* monotonic; 0: never checked */
	struct check local[CK__COUNT];	/* CK_STORE..CK_UPLOADS */
	int64_t probe_at_ms;	/* last RunPod probe, monotonic; 0 never */
	char probe_why[256];	/* why it could not be sent, or "" */
	bool logged;		/* was_ok holds the last evaluation */
	bool was_ok[CK__COUNT];
	pthread_mutex_t probe_lock;	/* one RunPod probe at a time */
} RD = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.probe_lock = PTHREAD_MUTEX_INITIALIZER,
};

void
ready_init(const struct config *cfg, struct store *st)
{
	RD.cfg = cfg;
	RD.store = st;
	RD.stopping = 0;
}

void
ready_set_stopping(void)
{
	RD.stopping = 1;
}

void
ready_forget(void)
{
	pthread_mutex_lock(&RD.lock);
	RD.local_at_ms = 0;
	RD.probe_at_ms = 0;
	RD.probe_why[0] = '\0';
	RD.logged = false;
	pthread_mutex_unlock(&RD.lock);
}

static void
check_fail(struct check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
check_fail(struct check *c, const char *fmt, ...)
{
	va_list ap;

	c->ok = false;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

/* ---- the store and the directories ----------------------------------- */

/*
 * Fail c when the filesystem holding path has less than ready_min_free_mb
 * MiB free for an unprivileged writer (statvfs f_bavail).  what names the
 * key in the reason.  A statvfs that fails leaves c alone: the write
 * checks say whether the place works at all.
 */
static void
space_check(const char *what, const char *path, struct check *c)
{
	struct statvfs vs;
	unsigned long long free_mb;

	if (!c->ok || RD.cfg->ready_min_free_mb <= 0 ||
	    statvfs(path, &vs) != 0)
		return;
	free_mb = (unsigned long long)vs.f_bavail *
	    (unsigned long long)vs.f_frsize / (1024 * 1024);
	if (free_mb < (unsigned long long)RD.cfg->ready_min_free_mb)
		check_fail(c, "the filesystem of %s has %llu MiB free, less "
		    "than ready_min_free_mb (%ld)", what, free_mb,
		    RD.cfg->ready_min_free_mb);
}

static void
store_check(struct check *c)
{
	char *why = NULL, *dir, *slash;
	const char *spec;

	if (store_probe_write(RD.store, READY_STORE_WAIT_MS, clock_wall_ms(),
	    &why) < 0) {
		check_fail(c, "%s", why ? why : "the task store cannot commit "
		    "a write");
	}
	free(why);
	/* A PostgreSQL store's disk is the database server's business. */
	if (config_store_is_postgresql(RD.cfg))
		return;
	spec = config_store_spec(RD.cfg);
	dir = xstrdup(strncmp(spec, "sqlite:", 7) == 0 ? spec + 7 : spec);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else {
		free(dir);
		dir = xstrdup(".");
	}
	space_check("store_path", dir, c);
	free(dir);
}

/*
 * Whether a file can be made and written in dir (made 0750 when missing,
 * as the uploads code does): one byte in .readyz-XXXXXX, removed again.
 * The reason names the key (name), not the path.
 */
static void
dir_check(const char *name, const char *dir, struct check *c)
{
	char *tmp = NULL;
	int fd = -1, e;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		e = errno;
		check_fail(c, "%s cannot be created: %s", name, strerror(e));
		goto cleanup;
	}
	tmp = xasprintf("%s/.readyz-XXXXXX", dir);
	fd = mkstemp(tmp);
	if (fd < 0) {
		e = errno;
		check_fail(c, "cannot create a file in %s: %s", name,
		    strerror(e));
		goto cleanup;
	}
	if (write(fd, "r", 1) != 1) {
		e = errno;
		check_fail(c, "cannot write a file in %s: %s", name,
		    strerror(e));
	}
	unlink(tmp);
	space_check(name, dir, c);
cleanup:
	if (fd >= 0)
		close(fd);
	free(tmp);
}

/* Refresh the store and directory results when older than
 * READY_LOCAL_TTL_MS; copy them to out.  Call with RD.lock held. */
static void
local_checks(struct check out[CK__COUNT])
{
	int64_t now = clock_mono_ms();
	char *uploads;
	int i;

	if (RD.local_at_ms == 0 || now - RD.local_at_ms >= READY_LOCAL_TTL_MS) {
		for (i = CK_STORE; i <= CK_UPLOADS; i++) {
			memset(&RD.local[i], 0, sizeof(RD.local[i]));
			RD.local[i].ok = true;
			RD.local[i].age_s = -1;
		}
		store_check(&RD.local[CK_STORE]);
		dir_check("artifact_dir", RD.cfg->artifact_dir,
		    &RD.local[CK_ARTIFACT]);
		uploads = xasprintf("%s/uploads", RD.cfg->artifact_dir);
		if (RD.local[CK_ARTIFACT].ok)
			dir_check("uploads_dir", uploads,
			    &RD.local[CK_UPLOADS]);
		else
			check_fail(&RD.local[CK_UPLOADS], "artifact_dir, which "
			    "holds it, is not writable");
		free(uploads);
		RD.local_at_ms = clock_mono_ms();
	}
	for (i = CK_STORE; i <= CK_UPLOADS; i++)
		out[i] = RD.local[i];
}

/* ---- RunPod -------------------------------------------------------------- */

/* Ask RunPod when what it last said is missing or stale and nobody asked
 * within READY_RUNPOD_TTL_MS; another thread's probe in flight is not
 * waited for. */
static void
runpod_maybe_probe(const struct pods_key_status *ks)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	int64_t now = clock_mono_ms();
	long timeout;
	bool due;

	if (ks->state != PODS_KEY_UNKNOWN &&
	    now - ks->at_ms < READY_RUNPOD_TTL_MS)
		return;
	if (pthread_mutex_trylock(&RD.probe_lock) != 0)
		return;
	pthread_mutex_lock(&RD.lock);
	due = RD.probe_at_ms == 0 ||
	    now - RD.probe_at_ms >= READY_RUNPOD_TTL_MS;
	if (due)
		RD.probe_at_ms = now;
	pthread_mutex_unlock(&RD.lock);
	if (due) {
		timeout = RD.cfg->runpod_timeout < READY_RUNPOD_PROBE_S ?
		    RD.cfg->runpod_timeout : READY_RUNPOD_PROBE_S;
		if (pods_probe_key(timeout, &e) < 0 && e.http_status == 0 &&
		    e.kind == RP_BAD_REQUEST) {
			pthread_mutex_lock(&RD.lock);
			snprintf(RD.probe_why, sizeof(RD.probe_why),
			    "cannot call RunPod: %s", e.detail ? e.detail :
			    "bad client settings");
			pthread_mutex_unlock(&RD.lock);
		} else {
			pthread_mutex_lock(&RD.lock);
			RD.probe_why[0] = '\0';
			pthread_mutex_unlock(&RD.lock);
		}
		runpod_error_clear(&e);
	}
	pthread_mutex_unlock(&RD.probe_lock);
}

static void
runpod_check(bool may_probe, struct check *c)
{
	struct pods_key_status ks;
	const char *why;

	if (!pods_ready(false, &why)) {
		c->skipped = true;
		return;
	}
	pods_key_status(&ks);
	if (may_probe) {
		runpod_maybe_probe(&ks);
		pods_key_status(&ks);
	}
	if (ks.state != PODS_KEY_UNKNOWN)
		c->age_s = (long)((clock_mono_ms() - ks.at_ms) / 1000);
	switch (ks.state) {
	case PODS_KEY_ACCEPTED:
		break;
	case PODS_KEY_REJECTED:
		check_fail(c, ks.http_status == 403 ? "RunPod refused the API "
		    "key (HTTP 403): it lacks a permission the agent needs" :
		    "RunPod rejected the API key (HTTP %d): replace "
		    "runpod_api_key_file and restart the agent",
		    ks.http_status);
		break;
	case PODS_KEY_UNREACHABLE:
		c->degraded = true;
		if (ks.kind == RP_SERVER)
			snprintf(c->why, sizeof(c->why), "RunPod answered "
			    "HTTP %d; the key was not checked", ks.http_status);
		else if (ks.kind == RP_PROTOCOL)
			snprintf(c->why, sizeof(c->why), "RunPod gave an "
			    "unexpected answer; the key was not checked");
		else
			snprintf(c->why, sizeof(c->why), "RunPod did not "
			    "answer (network); the key was not checked");
		break;
	default:
		pthread_mutex_lock(&RD.lock);
		if (RD.probe_why[0] != '\0')
			check_fail(c, "%s", RD.probe_why);
		else
			check_fail(c, "RunPod has not been asked yet whether "
			    "it accepts the API key");
		pthread_mutex_unlock(&RD.lock);
		break;
	}
}

/* ---- the whole ----------------------------------------------------------- */

/* Log each check whose state changed since the last evaluation.  Call with
 * RD.lock held. */
static void
log_changes(const struct check ck[CK__COUNT])
{
	int i;

	for (i = 0; i < CK__COUNT; i++) {
		if (RD.logged && RD.was_ok[i] == ck[i].ok)
			continue;
		if (!ck[i].ok)
			log_kv(LOG_WARN, "not_ready", ck[i].why, "check",
			    check_names[i], NULL);
		else if (RD.logged)
			log_kv(LOG_INFO, "ready_again", "check passes again",
			    "check", check_names[i], NULL);
		RD.was_ok[i] = ck[i].ok;
	}
	RD.logged = true;
}

/* Every check into ck; true when all are ok. */
static bool
run_checks(bool may_probe, struct check ck[CK__COUNT])
{
	bool ok = true;
	int i;

	memset(ck, 0, sizeof(struct check) * CK__COUNT);
	for (i = 0; i < CK__COUNT; i++) {
		ck[i].ok = true;
		ck[i].age_s = -1;
	}
	if (RD.stopping) {
		check_fail(&ck[CK_SERVING], "the agent is shutting down");
		may_probe = false;
	}
	pthread_mutex_lock(&RD.lock);
	local_checks(ck);
	pthread_mutex_unlock(&RD.lock);
	runpod_check(may_probe, &ck[CK_RUNPOD]);
	pthread_mutex_lock(&RD.lock);
	log_changes(ck);
	pthread_mutex_unlock(&RD.lock);
	for (i = 0; i < CK__COUNT; i++)
		ok = ok && ck[i].ok;
	return ok;
}

bool
ready_eval(bool may_probe, json_object **body)
{
	struct check ck[CK__COUNT];
	json_object *checks = json_object_new_object(), *c;
	bool ok = run_checks(may_probe, ck), degraded = false;
	int i;

	for (i = 0; i < CK__COUNT; i++) {
		c = json_object_new_object();
		json_object_object_add(c, "ok",
		    json_object_new_boolean(ck[i].ok));
		if (ck[i].degraded) {
			degraded = true;
			json_object_object_add(c, "degraded",
			    json_object_new_boolean(true));
		}
		if (ck[i].why[0] != '\0')
			json_object_object_add(c, "reason",
			    json_object_new_string(ck[i].why));
		if (i == CK_RUNPOD)
			json_object_object_add(c, "configured",
			    json_object_new_boolean(!ck[i].skipped));
		if (ck[i].age_s >= 0)
			json_object_object_add(c, "age_s",
			    json_object_new_int64(ck[i].age_s));
		json_object_object_add(checks, check_names[i], c);
	}
	*body = json_object_new_object();
	json_object_object_add(*body, "status",
	    json_object_new_string(ok ? "ready" : "not ready"));
	json_object_object_add(*body, "degraded",
	    json_object_new_boolean(degraded));
	json_object_object_add(*body, "checks", checks);
	return ok;
}

void
ready_metrics(struct strbuf *sb)
{
	struct check ck[CK__COUNT];
	int i;

	if (RD.cfg == NULL)
		return;
	(void)run_checks(false, ck);
	sb_adds(sb, "# HELP instag_agent_ready Readiness checks of /readyz "
	    "(1 ok, 0 failing).\n# TYPE instag_agent_ready gauge\n");
	for (i = 0; i < CK__COUNT; i++)
		sb_addf(sb, "instag_agent_ready{check=\"%s\"} %d\n",
		    check_names[i], ck[i].ok ? 1 : 0);
}
