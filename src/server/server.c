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
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "instag/iops.h"
#include "core/metrics.h"
#include "providers/runpod/podguard.h"
#include "providers/runpod/pods.h"
#include "a2a/push.h"
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
	pthread_mutex_t lock;
	int inflight;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1 };

/* ---- routing -------------------------------------------------------------- */

static bool
authenticate(struct http_req *r)
{
	enum auth_status st = auth_verify(S.auth,
	    http_header(r, "Authorization"), time(NULL), &r->who);
	char hdr[256];

	if (st == AUTH_OK) {
		r->authed = true;
		return true;
	}
	metrics_auth_failure(auth_status_reason(st));
	snprintf(hdr, sizeof(hdr), "WWW-Authenticate: Bearer realm="
	    "\"instag-agent\"%s%s%s\r\n", st == AUTH_MISSING ? "" :
	    ", error=\"invalid_token\", error_description=\"",
	    st == AUTH_MISSING ? "" : auth_status_reason(st),
	    st == AUTH_MISSING ? "" : "\"");
	http_error(r, 401, "unauthorized", auth_status_reason(st), hdr);
	return false;
}

static bool
method_is(struct http_req *r, const char *m, const char *allow)
{
	char hdr[64];

	if (strcmp(r->method, m) == 0)
		return true;
	if (strcmp(m, "GET") == 0 && strcmp(r->method, "HEAD") == 0)
		return true;
	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
	http_error(r, 405, "method_not_allowed", "method not allowed here", hdr);
	return false;
}

static bool
read_json_body(struct http_req *r)
{
	const char *ct = http_param(r, "CONTENT_TYPE");
	const char *why;
	int status;

	if (ct == NULL || (strncmp(ct, "application/json", 16) != 0 &&
	    strncmp(ct, "application/a2a+json", 20) != 0)) {
		http_error(r, 415, "unsupported_media_type", "send the body as "
		    "Content-Type: application/json", NULL);
		return false;
	}
	if (http_read_body(r, (size_t)S.cfg->max_body_bytes, &status, &why) < 0) {
		http_error(r, status, status == 413 ? "body_too_large" :
		    "bad_request", why, NULL);
		return false;
	}
	return true;
}

static void
route_card(struct http_req *r)
{
	const char *inm = http_header(r, "If-None-Match");
	char hdr[160];

	snprintf(hdr, sizeof(hdr), "ETag: %s\r\nCache-Control: public, "
	    "max-age=300\r\nAccess-Control-Allow-Origin: *\r\n",
	    card_a2a_etag());
	if (inm != NULL && strstr(inm, card_a2a_etag()) != NULL) {
		http_respond(r, 304, NULL, hdr, NULL, 0);
		return;
	}
	http_respond(r, 200, "application/json", hdr, card_a2a_text(),
	    strlen(card_a2a_text()));
}

static bool
safe_name(const char *s, size_t max)
{
	size_t n = 0;

	if (s[0] == '.' || s[0] == '\0')
		return false;
	for (; *s; s++, n++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr("._-", *s))
			return false;
	return n <= max;
}

/* GET /artifacts/{task}/{file}: authorise, then let nginx send it. */
static void
route_artifact(struct http_req *r)
{
	char task_id[UUID_STR_LEN], file[129], hdr[512];
	const char *p = r->path + strlen("/artifacts/"), *slash;
	struct task *t = NULL;
	struct stat stt;
	char *path;

	if (!auth_has_scope(&r->who, "tasks:read")) {
		http_error(r, 403, "insufficient_scope", "this route needs scope "
		    "tasks:read", "WWW-Authenticate: Bearer error="
		    "\"insufficient_scope\", scope=\"tasks:read\"\r\n");
		return;
	}
	slash = strchr(p, '/');
	if (slash == NULL || (size_t)(slash - p) != 36 ||
	    strlen(slash + 1) >= sizeof(file) || !safe_name(slash + 1, 128)) {
		http_error(r, 404, "not_found", "no such artifact", NULL);
		return;
	}
	memcpy(task_id, p, 36);
	task_id[36] = '\0';
	snprintf(file, sizeof(file), "%s", slash + 1);
	if (tasks_get(task_id, r->who.sub, &t) != 0) {
		http_error(r, 404, "not_found", "no such artifact", NULL);
		return;
	}
	task_free(t);
	path = xasprintf("%s/%s/%s", S.cfg->artifact_dir, task_id, file);
	if (stat(path, &stt) != 0 || !S_ISREG(stt.st_mode)) {
		free(path);
		http_error(r, 404, "not_found", "no such artifact", NULL);
		return;
	}
	free(path);
	snprintf(hdr, sizeof(hdr), "X-Accel-Redirect: %s/_artifacts/%s/%s\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n",
	    S.cfg->base_path, task_id, file, file);
	http_respond(r, 200, "application/octet-stream", hdr, NULL, 0);
}

/* nginx names its client body temporary files with ten or more digits. */
static bool
nginx_temp_name(const char *path)
{
	const char *b = strrchr(path, '/');
	size_t n;

	if (b == NULL)
		return false;
	n = strspn(++b, "0123456789");
	return n >= 10 && b[n] == '\0';
}

/*
 * PUT /uploads/{name}: nginx has written the body to a temporary file
 * (INSTAG_UPLOAD_FILE); adopt it.  The agent never reads this body from
 * FastCGI, so a request that did not come through nginx's uploads location
 * is refused.
 */
static void
route_upload(struct http_req *r)
{
	const char *name = r->path + strlen("/uploads/");
	const char *file = http_param(r, "INSTAG_UPLOAD_FILE");
	const char *cl = http_param(r, "CONTENT_LENGTH");
	struct upload_info u;
	struct stat st;
	json_object *o;
	char *err = NULL, size[32];

	if (!auth_has_scope(&r->who, "instag:run")) {
		http_error(r, 403, "insufficient_scope", "this route needs scope "
		    "instag:run", "WWW-Authenticate: Bearer error="
		    "\"insufficient_scope\", scope=\"instag:run\"\r\n");
		return;
	}
	if (!uploads_name_valid(name)) {
		http_error(r, 400, "bad_name", "the upload name must be 1 to 128 "
		    "characters of A-Z a-z 0-9 . _ - and start with neither "
		    "'.' nor '-'", NULL);
		return;
	}
	if (file == NULL || file[0] == '\0') {
		if (cl == NULL || cl[0] == '\0')
			http_error(r, 411, "length_required", "send the file as "
			    "the request body, with a Content-Length", NULL);
		else if (strcmp(cl, "0") == 0)
			http_error(r, 400, "empty_upload", "the request body is "
			    "empty", NULL);
		else
			http_error(r, 400, "upload_not_buffered", "uploads must "
			    "come through nginx's uploads location, which "
			    "passes the body as a file (INSTAG_UPLOAD_FILE)",
			    NULL);
		return;
	}
	if (file[0] != '/' || !nginx_temp_name(file) ||
	    lstat(file, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1) {
		log_kv(LOG_WARN, "upload_refused", "INSTAG_UPLOAD_FILE is not "
		    "an nginx client body temporary file", "file", file, NULL);
		http_error(r, 500, "upload_failed", "the upload could not be "
		    "stored", NULL);
		return;
	}
	if (st.st_size == 0 || (cl != NULL && cl[0] != '\0' &&
	    strtoll(cl, NULL, 10) != (long long)st.st_size)) {
		(void)unlink(file);
		http_error(r, 400, st.st_size == 0 ? "empty_upload" :
		    "incomplete_upload", st.st_size == 0 ? "the request body "
		    "is empty" : "the stored body does not match its "
		    "Content-Length", NULL);
		return;
	}
	if (uploads_adopt(S.cfg, r->who.sub, name, file, &u, &err) != 0) {
		log_kv(LOG_ERROR, "upload_failed", err, "sub", r->who.sub, NULL);
		free(err);
		http_error(r, 500, "upload_failed", "the upload could not be "
		    "stored", NULL);
		return;
	}
	snprintf(size, sizeof(size), "%lld", (long long)u.size);
	log_kv(LOG_INFO, "upload_adopted", "upload stored", "upload_id",
	    u.id, "sub", r->who.sub, "name", u.name, "size", size, NULL);
	o = json_object_new_object();
	json_object_object_add(o, "upload_id", json_object_new_string(u.id));
	json_object_object_add(o, "name", json_object_new_string(u.name));
	json_object_object_add(o, "size", json_object_new_int64(u.size));
	json_object_object_add(o, "sha256", json_object_new_string(u.sha256));
	http_json(r, 201, o, NULL);
	json_object_put(o);
	uploads_info_clear(&u);
}

/* Returns 1 when r was handed over (the caller must not free it). */
static int
route(struct http_req *r, enum metrics_route *mr)
{
	const char *p = r->path;

	*mr = MR_OTHER;
	if (!strcmp(p, "/.well-known/agent-card.json") ||
	    !strcmp(p, "/.well-known/agent.json")) {
		*mr = MR_CARD;
		if (method_is(r, "GET", "GET, HEAD"))
			route_card(r);
	} else if (!strcmp(p, "/api/agent_card")) {
		*mr = MR_UMBRELLA_CARD;
		if (method_is(r, "GET", "GET, HEAD"))
			http_respond(r, 200, "application/json",
			    "Cache-Control: public, max-age=300\r\n",
			    card_umbrella_text(), strlen(card_umbrella_text()));
	} else if (!strcmp(p, "/healthz")) {
		*mr = MR_HEALTH;
		if (method_is(r, "GET", "GET, HEAD"))
			http_respond(r, 200, "application/json", NULL,
			    "{\"status\":\"ok\"}", 15);
	} else if (!strcmp(p, "/readyz")) {
		*mr = MR_HEALTH;
		if (!method_is(r, "GET", "GET, HEAD"))
			return 0;
		if (S.stopping || store_ping(S.store) != 0)
			http_respond(r, 503, "application/json", NULL,
			    "{\"status\":\"not ready\"}", 22);
		else
			http_respond(r, 200, "application/json", NULL,
			    "{\"status\":\"ready\"}", 18);
	} else if (!strcmp(p, "/metrics")) {
		struct strbuf sb = SB_INIT;
		*mr = MR_METRICS;
		if (!method_is(r, "GET", "GET"))
			return 0;
		metrics_render(&sb);
		http_respond(r, 200, "text/plain; version=0.0.4", NULL,
		    sb_str(&sb), sb.len);
		sb_free(&sb);
	} else if (!strcmp(p, "/a2a")) {
		*mr = MR_A2A;
		if (method_is(r, "POST", "POST") && authenticate(r) &&
		    read_json_body(r))
			return a2a_handle(r) == 1;
	} else if (!strcmp(p, "/api/a2a")) {
		*mr = MR_ENVELOPE;
		if (method_is(r, "POST", "POST") && authenticate(r) &&
		    read_json_body(r))
			envelope_handle(r);
	} else if (!strncmp(p, "/artifacts/", 11)) {
		*mr = MR_ARTIFACT;
		if (method_is(r, "GET", "GET, HEAD") && authenticate(r))
			route_artifact(r);
	} else if (!strncmp(p, "/uploads/", 9)) {
		*mr = MR_UPLOAD;
		if (method_is(r, "PUT", "PUT") && authenticate(r))
			route_upload(r);
	} else
		http_error(r, 404, "not_found", "no such route", NULL);
	return 0;
}

static void *
request_main(void *arg)
{
	(void)arg;
	while (!S.stopping) {
		FCGX_Request *fx = xcalloc(1, sizeof(*fx));
		struct http_req *r;
		enum metrics_route mr;
		int64_t t0;
		int handed;

		FCGX_InitRequest(fx, S.listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
		if (FCGX_Accept_r(fx) < 0) {
			FCGX_Free(fx, 1);
			free(fx);
			if (S.stopping)
				break;
			if (errno == EINTR)
				continue;
			log_msg(LOG_WARN, "accept_failed", "FCGX_Accept_r: %s",
			    strerror(errno));
			usleep(10000);
			continue;
		}
		pthread_mutex_lock(&S.lock);
		S.inflight++;
		pthread_mutex_unlock(&S.lock);
		t0 = clock_mono_ms();
		r = http_req_new(fx, S.cfg->base_path);
		handed = route(r, &mr);
		metrics_request(mr, handed ? 200 : r->status,
		    (double)(clock_mono_ms() - t0) / 1000.0);
		if (r->status >= 500 || log_get_level() == LOG_DEBUG)
			log_kv(r->status >= 500 ? LOG_WARN : LOG_DEBUG, "request",
			    NULL, "method", r->method, "path", r->path,
			    "status", handed ? "stream" : r->status >= 400 ?
			    "error" : "ok", NULL);
		if (!handed)
			http_req_free(r);
		pthread_mutex_lock(&S.lock);
		S.inflight--;
		pthread_mutex_unlock(&S.lock);
	}
	return NULL;
}

/* ---- listening socket ----------------------------------------------------- */

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
			log_msg(LOG_ERROR, "no_socket", "listen is empty but fd 0 "
			    "is not a listening socket: set listen = "
			    "unix:/PATH or tcp:HOST:PORT, or start under "
			    "systemd socket activation or spawn-fcgi");
			return -1;
		}
		log_msg(LOG_INFO, "listening", "using the inherited socket on fd 0");
		return 0;
	}
	if (!strncmp(cfg->listen, "unix:", 5)) {
		const char *path = cfg->listen + 5;
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		fd = FCGX_OpenSocket(path, (int)cfg->listen_backlog);
		if (fd < 0) {
			log_msg(LOG_ERROR, "listen_failed", "cannot listen on %s: "
			    "%s", path, strerror(errno));
			return -1;
		}
		if (chmod(path, (mode_t)cfg->listen_mode) < 0)
			log_msg(LOG_WARN, "chmod_failed", "chmod %s: %s", path,
			    strerror(errno));
	} else {
		fd = FCGX_OpenSocket(cfg->listen + 4, (int)cfg->listen_backlog);
		if (fd < 0) {
			log_msg(LOG_ERROR, "listen_failed", "cannot listen on %s",
			    cfg->listen + 4);
			return -1;
		}
	}
	log_kv(LOG_INFO, "listening", "FastCGI socket bound", "listen",
	    cfg->listen, NULL);
	return fd;
}

/* ---- run -------------------------------------------------------------------- */

int
server_run(struct config *cfg)
{
	pthread_t *threads = NULL;
	sigset_t set;
	char *err = NULL;
	int sig = 0, rc = EXIT_FAILURE, started_hub = 0, started_push = 0,
	    started_tasks = 0;
	long i, n = 0;
	enum log_level lv;

	S.cfg = cfg;
	if (log_level_parse(cfg->log_level, &lv) == 0)
		log_set_level(lv);
	if (auth_ctx_new(cfg, &S.auth, &err) < 0 ||
	    store_open(cfg->store_path, &S.store, &err) < 0 ||
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
	card_init(cfg);
	a2a_init(cfg);
	envelope_init(cfg);
	if (push_start(cfg, &err) < 0)
		goto fail;
	started_push = 1;
	if (hub_start(cfg, &err) < 0)
		goto fail;
	started_hub = 1;
	if (tasks_start(cfg, S.store, a2a_task_changed, &err) < 0)
		goto fail;
	started_tasks = 1;
	if (guard_start(cfg, S.store, &err) < 0)
		goto fail;

	threads = xcalloc((size_t)cfg->request_threads, sizeof(*threads));
	for (n = 0; n < cfg->request_threads; n++)
		if (pthread_create(&threads[n], NULL, request_main, NULL) != 0)
			break;
	log_kv(LOG_INFO, "started", "instag-agent ready", "version",
	    version_string(), NULL);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			log_msg(LOG_INFO, "sighup", "SIGHUP ignored: restart the "
			    "agent to reload its configuration");
	}
	log_msg(LOG_INFO, "stopping", "signal %d: finishing in-flight requests",
	    sig);
	S.stopping = 1;
	FCGX_ShutdownPending();
	shutdown(S.listen_fd, SHUT_RDWR);
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	rc = EXIT_SUCCESS;
	goto cleanup;
fail:
	log_kv(LOG_ERROR, "startup_failed", err, NULL);
cleanup:
	if (started_hub)
		hub_stop();
	guard_stop();
	if (started_tasks)
		tasks_stop((int)cfg->shutdown_grace);
	if (started_push)
		push_stop();
	free(threads);
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
