/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "a2a/a2a.h"
#include "http/auth.h"
#include "a2a/card.h"
#include "a2a/envelope.h"
#include "http/http.h"
#include "a2a/hub.h"
#include "lib/clock.h"
#include "a2a/notify.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "instag/iops.h"
#include "pipeline/pipeline.h"
#include "ops/ops.h"
#include "core/metrics.h"
#include "providers/nats/natspub.h"
#include "providers/runpod/podguard.h"
#include "providers/runpod/pods.h"
#include "a2a/push.h"
#include "server/conns.h"
#include "server/ready.h"
#include "server/router.h"
#include "server/server.h"
#include "store/store.h"
#include "lib/strbuf.h"
#include "tasks/tasks.h"
#include "store/uploads.h"
#include "lib/uuid.h"
#include "lib/version.h"
#include "lib/xalloc.h"

static struct {
	struct config *cfg;
	struct auth_ctx *auth;
	struct store *store;
	int listen_fd;
	volatile int stopping;
} S = { .listen_fd = -1 };

/* http_req's done: the connection goes back to the dispatcher. */
static void
release_conn(void *ctx, int fd)
{
	conns_release(ctx, fd);
}

/* conns_handler_fn: one request, from its params to its answer or its
 * hand-over to the hub (which then ends it). */
static void
serve(FCGX_Request *fx, struct conns_conn *c)
{
	struct http_req *r;
	enum metrics_route mr;
	char method[16] = "", path[256] = "";
	int64_t t0;
	int handed;

	t0 = clock_mono_ms();
	r = http_req_new(fx, S.cfg->base_path);
	r->done = release_conn;
	r->done_ctx = c;
	if (log_get_level() == LOG_DEBUG) {
		snprintf(method, sizeof(method), "%s", r->method);
		snprintf(path, sizeof(path), "%s", r->path);
	}
	/* Once handed over, r belongs to the hub, which may already have
	 * finished and freed it: only a request kept here is read. */
	handed = router_dispatch(r, &mr);
	metrics_request(mr, handed ? 200 : r->status,
	    (double)(clock_mono_ms() - t0) / 1000.0);
	if (handed) {
		if (log_get_level() == LOG_DEBUG)
			log_kv(LOG_DEBUG, "request", NULL, "method", method,
			    "path", path, "status", "stream", NULL);
	} else {
		if (r->status >= 500 || log_get_level() == LOG_DEBUG)
			log_kv(r->status >= 500 ? LOG_WARN : LOG_DEBUG,
			    "request", NULL, "method", r->method, "path",
			    r->path, "status", r->status >= 400 ? "error" :
			    "ok", NULL);
		http_req_free(r);
	}
}

/* ---- listening socket ---------------------------------------------------- */

static int
open_listener(const struct config *cfg)
{
	struct stat st;
	int fd, type;
	socklen_t len = sizeof(type);

	if (cfg->listen[0] == '\0') {
		if (fstat(0, &st) < 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
		    type != SOCK_STREAM) {
			log_msg(LOG_ERROR, "no_socket", "listen is empty but "
			    "fd 0 is not a listening socket: set listen = "
			    "unix:/PATH or tcp:HOST:PORT, or start under "
			    "systemd socket activation or spawn-fcgi");
			return -1;
		}
		log_msg(LOG_INFO, "listening",
		    "using the inherited socket on fd 0");
		return 0;
	}
	if (!strncmp(cfg->listen, "unix:", 5)) {
		const char *path = cfg->listen + 5;
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		fd = FCGX_OpenSocket(path, (int)cfg->listen_backlog);
		if (fd < 0) {
			log_msg(LOG_ERROR, "listen_failed",
			    "cannot listen on %s: %s", path, strerror(errno));
			return -1;
		}
		if (chmod(path, (mode_t)cfg->listen_mode) < 0)
			log_msg(LOG_WARN, "chmod_failed", "chmod %s: %s", path,
			    strerror(errno));
	} else {
		fd = FCGX_OpenSocket(cfg->listen + 4, (int)cfg->listen_backlog);
		if (fd < 0) {
			log_msg(LOG_ERROR, "listen_failed",
			    "cannot listen on %s", cfg->listen + 4);
			return -1;
		}
	}
	log_kv(LOG_INFO, "listening", "FastCGI socket bound", "listen",
	    cfg->listen, NULL);
	return fd;
}

/* ---- run ----------------------------------------------------------------- */

/* The executor's listener: every committed task change goes to its open
 * streams and waits (hub), to its push notification configs and, when
 * nats_url is set, to NATS as events (natspub). */
static void
task_changed(const struct task *t)
{
	hub_publish(t);
	notify_task_changed(t);
	natspub_task_changed(t);
}

int
server_run(struct config *cfg)
{
	sigset_t set;
	char *err = NULL;
	int sig = 0, rc = EXIT_FAILURE, started_hub = 0, started_push = 0,
	    started_tasks = 0, started_conns = 0;
	enum log_level lv;

	S.cfg = cfg;
	if (log_level_parse(cfg->log_level, &lv) == 0)
		log_set_level(lv);
	if (auth_ctx_new(cfg, &S.auth, &err) < 0 ||
	    store_open(config_store_spec(cfg),
	    cfg->store_password_file, &S.store, &err) < 0 ||
	    pods_init(cfg, S.store, &err) < 0 || iops_init(cfg, &err) < 0) {
		log_kv(LOG_ERROR, "startup_failed", err, NULL);
		goto cleanup;
	}
	/* Block the signals in every thread; this one waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (FCGX_Init() != 0) {
		log_msg(LOG_ERROR, "startup_failed", "FCGX_Init failed");
		goto cleanup;
	}
	S.listen_fd = open_listener(cfg);
	if (S.listen_fd < 0)
		goto cleanup;
	notify_init(S.store);
	router_init(cfg, S.auth, S.store);
	metrics_add_collector(tasks_metrics);
	metrics_add_collector(hub_metrics);
	metrics_add_collector(push_metrics);
	metrics_add_collector(notify_metrics);
	metrics_add_collector(pods_metrics);
	metrics_add_collector(guard_metrics);
	metrics_add_collector(iops_metrics);
	metrics_add_collector(pl_metrics);
	metrics_add_collector(ready_metrics);
	metrics_add_collector(conns_metrics);
	metrics_add_collector(natspub_metrics);
	card_init(cfg);
	a2a_init(cfg);
	envelope_init(cfg);
	if (push_start(cfg, &err) < 0)
		goto fail;
	started_push = 1;
	if (natspub_start(cfg, &err) < 0)
		goto fail;
	if (hub_start(cfg, &err) < 0)
		goto fail;
	started_hub = 1;
	/* Other agents' changes (a shared store) reach this agent's
	 * streams and waits; their push and events are theirs to send. */
	tasks_set_remote_listener(hub_publish, hub_remote_change);
	if (tasks_start(cfg, S.store, task_changed, ops_resolve, &err) < 0)
		goto fail;
	started_tasks = 1;
	if (guard_start(cfg, S.store, &err) < 0)
		goto fail;

	if (conns_start(S.listen_fd, (int)cfg->request_threads, serve,
	    &err) < 0)
		goto fail;
	started_conns = 1;
	log_kv(LOG_INFO, "started", "instag-agent ready", "version",
	    version_string(), NULL);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			log_msg(LOG_INFO, "sighup", "SIGHUP ignored: restart "
			    "the agent to reload its configuration");
	}
	log_msg(LOG_INFO, "stopping", "signal %d: finishing in-flight requests",
	    sig);
	S.stopping = 1;
	router_stopping();
	conns_stop();
	started_conns = 0;
	rc = EXIT_SUCCESS;
	goto cleanup;
fail:
	log_kv(LOG_ERROR, "startup_failed", err, NULL);
cleanup:
	if (started_conns)
		conns_stop();
	if (started_hub)
		hub_stop();
	guard_stop();
	if (started_tasks)
		tasks_stop((int)cfg->shutdown_grace);
	if (started_push)
		push_stop();
	natspub_stop();
	free(err);
	card_free();
	iops_shutdown();
	pods_shutdown();
	store_close(S.store);
	auth_ctx_free(S.auth);
	if (S.listen_fd > 0)
		close(S.listen_fd);
	if (S.listen_fd > 0 && !strncmp(cfg->listen, "unix:", 5))
		unlink(cfg->listen + 5);
	if (rc == EXIT_SUCCESS)
		log_msg(LOG_INFO, "stopped", "clean shutdown");
	return rc;
}
