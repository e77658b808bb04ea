/* SPDX-License-Identifier: MIT */
/* testutil: helpers shared by the test programs; see testutil.h. */
#include "auto-config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/auth.h"
#include "core/config.h"
#include "core/task.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "providers/ssh/ssh.h"
#include "testutil.h"

/* ---- temporary directories --------------------------------------------- */

static char topdir[256];

void
tu_tmpdir_make(char *dir, size_t len, const char *tag)
{
	if ((size_t)snprintf(dir, len, "/tmp/ia-%s-XXXXXX", tag) >= len) {
		fprintf(stderr, "tu_tmpdir_make: name too long for %s\n", tag);
		abort();
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

void
tu_tmpdir_remove(const char *dir)
{
	if (dir != NULL && dir[0] != '\0')
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void
tu_top_setup(void)
{
	tu_tmpdir_make(topdir, sizeof(topdir), "check");
}

void
tu_top_teardown(void)
{
	tu_tmpdir_remove(topdir);
	topdir[0] = '\0';
}

const char *
tu_topdir(void)
{
	return topdir;
}

void
tu_subdir_make(const char *parent, char *out, size_t len)
{
	ck_assert_int_lt(snprintf(out, len, "%s/t-XXXXXX", parent), (int)len);
	ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s failed", out);
}

/* ---- files ------------------------------------------------------------- */

void
tu_write_temp(char *tmpl, const void *data, size_t len, mode_t mode)
{
	int fd = mkstemp(tmpl);

	ck_assert_msg(fd >= 0, "mkstemp %s failed", tmpl);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

char *
tu_read_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *text;
	long len;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(fread(text, 1, (size_t)len, fp), len);
	fclose(fp);
	return text;
}

/* ---- configuration ----------------------------------------------------- */

struct config *
tu_config(const char *extra_lines)
{
	return tu_configf("%s", extra_lines ? extra_lines : "");
}

struct config *
tu_configf(const char *fmt, ...)
{
	char path[] = "/tmp/ia-config-XXXXXX";
	struct config *cfg = NULL;
	char *text, *extra = NULL, *err = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&extra, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(rc, 0);
	ck_assert_int_ge(asprintf(&text, "%s%s", TU_CONFIG_BASE, extra), 0);
	free(extra);
	tu_write_temp(path, text, strlen(text), 0600);
	free(text);
	rc = config_load(path, &cfg, &err);
	unlink(path);
	ck_assert_msg(rc == 0, "config: %s", err ? err : "?");
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* ---- principals -------------------------------------------------------- */

void
tu_principal(struct principal *p, const char *sub, const char *scopes)
{
	char *copy = strdup(scopes), *tok, *save = NULL;

	memset(p, 0, sizeof(*p));
	p->sub = strdup(sub);
	p->scopes = calloc(16, sizeof(*p->scopes));
	for (tok = strtok_r(copy, " ", &save); tok;
	    tok = strtok_r(NULL, " ", &save)) {
		ck_assert_uint_lt(p->nscopes, 16);
		p->scopes[p->nscopes++] = strdup(tok);
	}
	p->exp = 4102444800L;
	free(copy);
}

/* ---- time and polling -------------------------------------------------- */

int64_t
tu_now_ms(void)
{
	return clock_mono_ms();
}

void
tu_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool
tu_poll(bool (*done)(void *arg), void *arg, long timeout_ms)
{
	int64_t end = tu_now_ms() + timeout_ms;

	do {
		if (done(arg))
			return true;
		tu_sleep_ms(TU_POLL_STEP_MS);
	} while (tu_now_ms() < end);
	return false;
}

/* ---- skipping ---------------------------------------------------------- */

void
tu_require(bool ok, const char *fmt, ...)
{
	const char *req = getenv("IA_REQUIRE_INTEGRATION");
	char why[512];
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (req != NULL && strcmp(req, "1") == 0) {
		fprintf(stderr, "FAIL: %s: %s, and IA_REQUIRE_INTEGRATION=1 "
		    "asks that every test run\n", program_invocation_short_name,
		    why);
		exit(EXIT_FAILURE);
	}
	/* stdout: the .log the test driver keeps shows it next to the
	 * SKIP result. */
	printf("SKIP: %s: %s\n", program_invocation_short_name, why);
	fflush(stdout);
	exit(TU_EXIT_SKIP);
}

static const char *
sshd_bin(void)
{
	const char *b = getenv("SSHD");

	return b != NULL && b[0] != '\0' ? b : "/usr/sbin/sshd";
}

void
tu_require_sshd(void)
{
	tu_require(access(sshd_bin(), X_OK) == 0, "%s not found (install the "
	    "Debian package 'openssh-server', or set SSHD)", sshd_bin());
}

void
tu_ssh_setup(void)
{
	tu_require_sshd();
	if (ssh_global_init() != 0) {
		fprintf(stderr, "%s: libssh2_init failed\n",
		    program_invocation_short_name);
		exit(EXIT_FAILURE);
	}
}

/* ---- running --------------------------------------------------------- */

static const struct tu_main *main_m;
static pid_t main_pid;
static bool main_torn_down;

static bool
main_teardown(void)
{
	if (main_torn_down || main_m == NULL || main_m->teardown == NULL)
		return true;
	main_torn_down = true;
	return main_m->teardown();
}

/* An early exit() still tears down; not in the forked test processes,
 * which exit too. */
static void
main_atexit(void)
{
	if (getpid() == main_pid)
		(void)main_teardown();
}

int
tu_main(const struct tu_main *m)
{
	SRunner *sr = NULL;
	Suite *s;
	size_t i;
	int failed;
	bool clean;

	main_m = m;
	main_pid = getpid();
	atexit(main_atexit);
	if (m->setup != NULL)
		m->setup();
	for (i = 0; i < TU_MAX_SUITES && m->suites[i] != NULL; i++) {
		s = m->suites[i]();
		if (sr == NULL)
			sr = srunner_create(s);
		else
			srunner_add_suite(sr, s);
	}
	if (sr == NULL) {
		fprintf(stderr, "%s: no suite to run\n",
		    program_invocation_short_name);
		return EXIT_FAILURE;
	}
	if (m->nofork)
		srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	clean = main_teardown();
	return failed == 0 && clean ? EXIT_SUCCESS : EXIT_FAILURE;
}

pid_t
tu_spawn_port(const char *const argv[], int *port, long timeout_ms)
{
	char line[128];
	size_t got = 0;
	int64_t deadline;
	int out[2];
	pid_t pid;

	*port = 0;
	if (pipe(out) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	deadline = tu_now_ms() + timeout_ms;
	while (got < sizeof(line) - 1 && tu_now_ms() < deadline) {
		struct pollfd pfd = { out[0], POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		n = read(out[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		line[got] = '\0';
		if (strchr(line, '\n') != NULL)
			break;
	}
	close(out[0]);
	line[got] = '\0';
	if (sscanf(line, "PORT=%d", port) != 1 || *port <= 0) {
		fprintf(stderr, "%s did not report a port: '%s'\n", argv[0],
		    line);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

bool
tu_stop_child(pid_t pid, long timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	int status = 0;
	pid_t w = 0;

	if (pid <= 0)
		return true;
	kill(pid, SIGTERM);
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 &&
	    tu_now_ms() < deadline)
		tu_sleep_ms(10);
	if (w == 0) {
		fprintf(stderr, "pid %d ignored SIGTERM; killing it\n",
		    (int)pid);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return w > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

size_t
tu_sink_write(char *p, size_t sz, size_t n, void *ud)
{
	struct tu_sink *k = ud;
	size_t add = sz * n;
	char *nb = realloc(k->buf, k->len + add + 1);

	if (nb == NULL)
		return 0;
	memcpy(nb + k->len, p, add);
	k->len += add;
	nb[k->len] = '\0';
	k->buf = nb;
	return add;
}

/* ---- the SSH "pod" ------------------------------------------------------ */

int
tu_pod_cmd(const char *cmd, const char *dir, char *out, size_t len)
{
	const char *top = getenv("top_srcdir");
	char line[1024];
	size_t got = 0, n;
	FILE *fp;
	int st;

	snprintf(line, sizeof(line), "bash '%s/tests/harness/pod' %s '%s'",
	    top ? top : ".", cmd, dir);
	if ((fp = popen(line, "r")) == NULL)
		return -1;
	if (out != NULL && len > 0)
		out[0] = '\0';
	while (fgets(line, sizeof(line), fp) != NULL) {
		n = strlen(line);
		if (out != NULL && got + n < len) {
			memcpy(out + got, line, n + 1);
			got += n;
		}
	}
	st = pclose(fp);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The value of "export NAME=value" in env (unquoting '...'), into val. */
bool
tu_env_get(const char *env, const char *name, char *val, size_t len)
{
	char pat[64];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "export %s=", name);
	if ((p = strstr(env, pat)) == NULL)
		return false;
	p += strlen(pat);
	end = strchr(p, '\n');
	if (end == NULL)
		end = p + strlen(p);
	if (*p == '\'' && end > p + 1 && end[-1] == '\'') {
		p++;
		end--;
	}
	if ((size_t)(end - p) >= len)
		return false;
	memcpy(val, p, (size_t)(end - p));
	val[end - p] = '\0';
	return true;
}

void
tu_pod_start(struct tu_pod *pod, const char *tag)
{
	char env[4096], port[16];

	memset(pod, 0, sizeof(*pod));
	tu_tmpdir_make(pod->dir, sizeof(pod->dir), tag);
	ck_assert_msg(tu_pod_cmd("start", pod->dir, env, sizeof(env)) == 0,
	    "tests/harness/pod start %s failed", pod->dir);
	pod->running = true;
	ck_assert(tu_env_get(env, "POD_SSH_HOST", pod->host,
	    sizeof(pod->host)));
	ck_assert(tu_env_get(env, "POD_SSH_PORT", port, sizeof(port)));
	ck_assert(tu_env_get(env, "POD_SSH_USER", pod->user,
	    sizeof(pod->user)));
	ck_assert(tu_env_get(env, "POD_SSH_KEY", pod->key, sizeof(pod->key)));
	ck_assert(tu_env_get(env, "POD_SSH_KNOWN_HOSTS", pod->known_hosts,
	    sizeof(pod->known_hosts)));
	ck_assert(tu_env_get(env, "POD_HOST_FP", pod->fp, sizeof(pod->fp)));
	ck_assert(tu_env_get(env, "POD_ROOT", pod->root, sizeof(pod->root)));
	pod->port = atoi(port);
	ck_assert_int_gt(pod->port, 0);
	{
		struct passwd *pw = getpwnam(pod->user);

		ck_assert_msg(pw != NULL, "no passwd entry for the pod user "
		    "%s", pod->user);
		pod->uid = pw->pw_uid;
		pod->gid = pw->pw_gid;
	}
}

void
tu_pod_stop(struct tu_pod *pod)
{
	if (!pod->running)
		return;
	pod->running = false;
	tu_pod_cmd("stop", pod->dir, NULL, 0);
	tu_tmpdir_remove(pod->dir);
}

/* nftw() passes no argument: the owner tu_pod_own() gives. */
static uid_t own_uid;
static gid_t own_gid;
static int own_failed;

static int
own_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (lchown(p, own_uid, own_gid) != 0) {
		fprintf(stderr, "lchown %s: %s\n", p, strerror(errno));
		own_failed = 1;
	}
	return 0;
}

void
tu_pod_own(const struct tu_pod *pod, const char *path)
{
	if (pod->uid == geteuid())
		return;
	own_uid = pod->uid;
	own_gid = pod->gid;
	own_failed = 0;
	ck_assert_msg(nftw(path, own_one, 16, FTW_PHYS) == 0 && !own_failed,
	    "giving %s to the pod user %s failed", path, pod->user);
}

void
tu_pod_mkdir(const struct tu_pod *pod, const char *path, mode_t mode)
{
	ck_assert_msg(mkdir(path, mode) == 0 || errno == EEXIST, "mkdir %s: "
	    "%s", path, strerror(errno));
	tu_pod_own(pod, path);
}

/* The parent pid of pid, from /proc; -1 when gone. */
static pid_t
proc_ppid(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;
	int ppid = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), fp) != NULL &&
	    (p = strrchr(buf, ')')) != NULL)
		sscanf(p + 1, " %*c %d", &ppid);
	fclose(fp);
	return ppid;
}

int
tu_pod_kill_sessions(const struct tu_pod *pod)
{
	enum { MAXP = 8192 };
	static pid_t pids[MAXP], ppids[MAXP];
	char path[PATH_MAX], sshd[PATH_MAX], exe[PATH_MAX], *text;
	bool below[MAXP];
	struct dirent *de;
	size_t n = 0, i;
	pid_t listener;
	int killed = 0, depth;
	ssize_t len;
	DIR *d;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/sshd.pid", pod->dir);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	text = fgets(exe, sizeof(exe), fp);
	fclose(fp);
	if (text == NULL || (listener = (pid_t)atoi(exe)) <= 1)
		return -1;
	if (realpath(sshd_bin(), sshd) == NULL ||
	    (d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < MAXP) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pids[n] = (pid_t)atoi(de->d_name);
		ppids[n] = proc_ppid(pids[n]);
		below[n] = false;
		n++;
	}
	closedir(d);
	/* Mark the descendants of the listener, a level at a time. */
	for (depth = 0; depth < 16; depth++) {
		bool more = false;

		for (i = 0; i < n; i++) {
			size_t j;

			if (below[i])
				continue;
			if (ppids[i] == listener) {
				below[i] = more = true;
				continue;
			}
			for (j = 0; j < n; j++) {
				if (below[j] && pids[j] == ppids[i]) {
					below[i] = more = true;
					break;
				}
			}
		}
		if (!more)
			break;
	}
	for (i = 0; i < n; i++) {
		if (!below[i])
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pids[i]);
		if ((len = readlink(path, exe, sizeof(exe) - 1)) < 0)
			continue;
		exe[len] = '\0';
		if (strcmp(exe, sshd) == 0 && kill(pids[i], SIGKILL) == 0)
			killed++;
	}
	return killed;
}

void
tu_assert_task_eq(const struct task *a, const struct task *b)
{
	ck_assert_str_eq(a->id, b->id);
	ck_assert_str_eq(a->context_id, b->context_id);
	ck_assert_str_eq(a->owner, b->owner);
	ck_assert_str_eq(a->operation, b->operation);
	ck_assert_int_eq(a->state, b->state);
	ck_assert_msg(json_object_equal(a->params, b->params), "params");
	ck_assert_msg(json_object_equal(a->progress, b->progress), "progress");
	ck_assert_msg(json_object_equal(a->result, b->result), "result");
	ck_assert_msg(json_object_equal(a->artifacts, b->artifacts),
	    "artifacts");
	ck_assert_msg(json_object_equal(a->error, b->error), "error");
	ck_assert_msg(json_object_equal(a->checkpoint, b->checkpoint),
	    "checkpoint");
	ck_assert_msg(json_object_equal(a->history, b->history), "history");
	ck_assert(a->created_ms == b->created_ms);
	ck_assert(a->updated_ms == b->updated_ms);
	ck_assert(a->next_wake_ms == b->next_wake_ms);
	ck_assert(a->version == b->version);
	ck_assert(a->cancel_requested == b->cancel_requested);
}
