/* SPDX-License-Identifier: MIT */
/*
 * check_remote: detached remote jobs (src/remote.c) against a real sshd.
 *
 * The "pod" is tests/harness/pod (tu_pod_start): an sshd on a loopback
 * port, started by an unchecked fixture in the parent and stopped by its
 * teardown (or at exit).  The pod is this machine, so the tests also look
 * at the job files under POD_ROOT and at /proc directly.  Every wait is a
 * loop bounded in count and time.  Jobs still running at the end (after a
 * failure) are killed by the teardown.  As root the pod logs in as a user
 * of its own (tests/harness/pod): directories the test makes for jobs go
 * to that user (tu_pod_mkdir).
 *
 * The tests assert states, exit statuses, logs and processes, never how
 * fast a call was (that is bench/'s business); the only time bound is
 * the lower one of a cancel's grace period.
 *
 * Without /usr/sbin/sshd the test skips (exit 77), unless
 * IA_REQUIRE_INTEGRATION=1, when it fails.
 */
#include "auto-config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "providers/ssh/remote.h"
#include "providers/ssh/ssh.h"
#include "unit/testutil.h"

#define POLL_STEP_MS 50
#define POLLS_MAX 400		/* POLL_STEP_MS each: 20 s, bounded */

static struct tu_pod pod;
static char jobs_root[600];

/* ---- fixture ------------------------------------------------------------ */

/* SIGKILL the process group of every job that still has a live wrapper
 * (its command line names run.sh), so that no test leaves sleep 300
 * behind. */
static void
kill_leftover_jobs(void)
{
	char cmd[2048];

	if (jobs_root[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "for f in '%s'/*/pid; do "
	    "[ -f \"$f\" ] || continue; read -r p _ <\"$f\" || continue; "
	    "grep -q run.sh /proc/$p/cmdline 2>/dev/null && "
	    "kill -s KILL -- -$p 2>/dev/null; done; true", jobs_root);
	if (system(cmd) != 0)
		fprintf(stderr, "check_remote: cleaning up jobs failed\n");
}

static void
pod_setup(void)
{
	tu_pod_start(&pod, "remote");
	snprintf(jobs_root, sizeof(jobs_root), "%s/jobs", pod.root);
}

static void
pod_teardown(void)
{
	kill_leftover_jobs();
	tu_pod_stop(&pod);
}

/* Safety net: the pod and its jobs, when the runner is done or exits
 * early (TU_MAIN's teardown). */
static void slow_teardown(void);

static bool
stop_pod(void)
{
	kill_leftover_jobs();
	tu_pod_stop(&pod);
	slow_teardown();
	return true;
}

/* ---- helpers ------------------------------------------------------------ */

static struct ssh_session *
open_pod(void)
{
	struct ssh_error e = SSH_ERROR_INIT;
	struct ssh_session *s = NULL;
	struct ssh_target t;

	memset(&t, 0, sizeof(t));
	t.host = pod.host;
	t.port = pod.port;
	t.user = pod.user;
	t.key_file = pod.key;
	t.known_hosts = pod.known_hosts;
	t.timeout_ms = TU_HANG_MS;
	ck_assert_msg(ssh_session_open(&t, &s, NULL, &e) == 0, "open: %s",
	    e.message);
	return s;
}

static const char *
state_name(enum remote_state st)
{
	switch (st) {
	case REMOTE_UNKNOWN:	return "unknown";
	case REMOTE_RUNNING:	return "running";
	case REMOTE_EXITED:	return "exited";
	case REMOTE_VANISHED:	return "vanished";
	}
	return "?";
}

static void
start_ok(struct ssh_session *s, const char *id, const char *workdir,
    const char *script, struct remote_status *st)
{
	struct ssh_error e = SSH_ERROR_INIT;

	ck_assert_msg(remote_start(s, jobs_root, id, workdir, script, st,
	    &e) == 0, "start %s: %s", id, e.message);
}

static void
poll_ok(struct ssh_session *s, const char *id, struct remote_status *st)
{
	struct ssh_error e = SSH_ERROR_INIT;

	ck_assert_msg(remote_poll(s, jobs_root, id, st, &e) == 0,
	    "poll %s: %s", id, e.message);
}

/* Poll until the job is in state want (at most POLLS_MAX polls). */
static void
wait_state(struct ssh_session *s, const char *id, enum remote_state want,
    struct remote_status *st)
{
	int i;

	for (i = 0; i < POLLS_MAX; i++) {
		poll_ok(s, id, st);
		if (st->state == want)
			return;
		ck_assert_msg(st->state == REMOTE_RUNNING, "job %s is %s while "
		    "waiting for %s", id, state_name(st->state),
		    state_name(want));
		tu_sleep_ms(POLL_STEP_MS);
	}
	ck_abort_msg("job %s still %s after %d polls", id,
	    state_name(st->state), POLLS_MAX);
}

/* The whole log (read in one call); caller frees. */
static char *
log_of(struct ssh_session *s, const char *id, size_t *len)
{
	struct ssh_error e = SSH_ERROR_INIT;
	char *data = NULL;

	ck_assert_msg(remote_read_log(s, jobs_root, id, 0, 1 << 20, &data,
	    len, &e) == 0, "read_log %s: %s", id, e.message);
	ck_assert_ptr_nonnull(data);
	return data;
}

/* A job file on the pod (which is this machine); caller frees. */
static char *
job_file(const char *id, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s/%s", jobs_root, id, name);
	return tu_read_file(path);
}

static bool
job_file_exists(const char *id, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s/%s", jobs_root, id, name);
	return access(path, F_OK) == 0;
}

/* The job's process group, from its pid file. */
static int
job_pgid(const char *id)
{
	char *text = job_file(id, "pid");
	int pg = atoi(text);

	free(text);
	ck_assert_int_gt(pg, 1);
	return pg;
}

/* How many live (not zombie) processes are in process group pg. */
static int
group_live(int pg)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char path[300], buf[1024], state;
	int n = 0, pgrp;
	const char *p;
	FILE *fp;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), fp) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %c %*d %d", &state, &pgrp) == 2 &&
		    pgrp == pg && state != 'Z')
			n++;
		fclose(fp);
	}
	closedir(d);
	return n;
}

/* Run cmd on the pod behind the module's back; its exit status. */
static int
pod_sh(struct ssh_session *s, const char *cmd)
{
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	int st;

	ck_assert_msg(ssh_exec(s, cmd, 4096, TU_HANG_MS, &r, &e) == 0, "%s: %s",
	    cmd, e.message);
	st = r.exit_status;
	ssh_exec_result_clear(&r);
	return st;
}

/* A fresh directory under POD_ROOT, the pod user's, path into out. */
static void
workdir_make(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", pod.root, name);
	tu_pod_mkdir(&pod, out, 0755);
}

/* A job script line that waits until the test creates go in the job's
 * working directory (go_release), bounded at 2 minutes: a job that must
 * still run when the test looks does not depend on how fast a loaded
 * machine gets there. */
#define GO_WAIT "i=0\nwhile [ ! -e go ] && [ $i -lt 2400 ]; do sleep 0.05; " \
    "i=$((i + 1)); done\n"

static void
go_release(const char *wd)
{
	char path[800];
	FILE *f;

	snprintf(path, sizeof(path), "%s/go", wd);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fclose(f), 0);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_start_poll)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	char wd[700], want[2048], *log;
	size_t len;
	time_t before, after;
	struct timespec ts;

	workdir_make("wd-basic", wd, sizeof(wd));
	/* Never started: unknown. */
	poll_ok(s, "basic", &st);
	ck_assert_int_eq(st.state, REMOTE_UNKNOWN);
	ck_assert_int_eq(st.exit_status, -1);
	/* CLOCK_REALTIME, not time(): time() reads the coarse clock, which
	 * lags a tick behind the `date` the pod runs. */
	clock_gettime(CLOCK_REALTIME, &ts);
	before = ts.tv_sec;
	start_ok(s, "basic", wd, "echo hello\necho err >&2\npwd\n"
	    GO_WAIT "echo \"job=$IA_REMOTE_JOB\"\n", &st);
	clock_gettime(CLOCK_REALTIME, &ts);
	after = ts.tv_sec;
	ck_assert_msg(st.state == REMOTE_RUNNING, "after start: %s",
	    state_name(st.state));
	/* The pod is this machine: same clock, so the start time falls
	 * within the call. */
	ck_assert_int_ge(st.started_at, (int64_t)before);
	ck_assert_int_le(st.started_at, (int64_t)after);
	ck_assert(!st.canceled);
	go_release(wd);
	wait_state(s, "basic", REMOTE_EXITED, &st);
	ck_assert_int_eq(st.exit_status, 0);
	/* Polling an exited job again changes nothing. */
	poll_ok(s, "basic", &st);
	ck_assert_int_eq(st.state, REMOTE_EXITED);
	ck_assert_int_eq(st.exit_status, 0);
	snprintf(want, sizeof(want), "hello\nerr\n%s\njob=%s/basic\n", wd,
	    jobs_root);
	ck_assert_int_eq(st.log_size, (int64_t)strlen(want));
	log = log_of(s, "basic", &len);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_str_eq(log, want);
	free(log);
	log = job_file("basic", "exit");
	ck_assert_str_eq(log, "0\n");
	free(log);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_exit_status)
{
	static const struct {
		const char *id, *script;
		int status;
	} cases[] = {
		{ "exit7", "echo before\nexit 7\necho never\n", 7 },
		{ "selfkill", "kill -KILL $$\n", 128 + 9 },
		{ "selfterm", "kill -TERM $$\n", 128 + 15 },
		{ "false", "false", 1 },
	};
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	char wd[700];
	size_t i;

	workdir_make("wd-status", wd, sizeof(wd));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		start_ok(s, cases[i].id, wd, cases[i].script, &st);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wait_state(s, cases[i].id, REMOTE_EXITED, &st);
		ck_assert_msg(st.exit_status == cases[i].status, "%s: %d",
		    cases[i].id, st.exit_status);
	}
	ssh_session_close(s);
}
END_TEST

START_TEST(test_workdir_missing)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	char wd[700], *log;
	size_t len;

	snprintf(wd, sizeof(wd), "%s/no-such-dir", pod.root);
	start_ok(s, "nowd", wd, "echo never\n", &st);
	wait_state(s, "nowd", REMOTE_EXITED, &st);
	ck_assert_int_eq(st.exit_status, 126);
	log = log_of(s, "nowd", &len);
	ck_assert_msg(strstr(log, "cannot cd to") != NULL, "%s", log);
	ck_assert(strstr(log, "never") == NULL);
	free(log);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_idempotent)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	char wd[700], script[1024], count[800], *text;
	int i;

	workdir_make("wd-idem", wd, sizeof(wd));
	snprintf(count, sizeof(count), "%s/idem.count", pod.root);
	snprintf(script, sizeof(script), "echo run >>'%s'\n" GO_WAIT,
	    count);
	/* As if the agent were killed and retried: three starts, one run;
	 * the second while it runs, the third after it ended. */
	start_ok(s, "idem", wd, script, &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	start_ok(s, "idem", wd, script, &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	go_release(wd);
	wait_state(s, "idem", REMOTE_EXITED, &st);
	start_ok(s, "idem", wd, "echo other >>'/dev/null'\n", &st);
	ck_assert_int_eq(st.state, REMOTE_EXITED);
	ck_assert_int_eq(st.exit_status, 0);
	/* Three starts in a row of a fresh job: still one run. */
	for (i = 0; i < 3; i++)
		start_ok(s, "idem2", wd, script, &st);
	wait_state(s, "idem2", REMOTE_EXITED, &st);
	text = tu_read_file(count);
	ck_assert_str_eq(text, "run\nrun\n");
	free(text);
	/* The script kept is the first one. */
	text = job_file("idem", "script.sh");
	ck_assert_str_eq(text, script);
	free(text);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_survives_drop)
{
	struct ssh_session *s = open_pod(), *s2;
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700], *log;
	size_t len;

	/* Started on s, which is then closed; s2 is open when the pod drops
	 * every connection (killing their sshd processes).  The job runs
	 * until the test releases it (GO_WAIT). */
	workdir_make("wd-drop", wd, sizeof(wd));
	start_ok(s, "drop", wd, "echo begin\n" GO_WAIT "echo done\n", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	ssh_session_close(s);
	s2 = open_pod();
	poll_ok(s2, "drop", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	ck_assert_int_eq(tu_pod_cmd("drop", pod.dir, NULL, 0), 0);
	ck_assert_int_eq(remote_poll(s2, jobs_root, "drop", &st, &e), -1);
	ck_assert_msg(e.kind == SSH_ERR_CHANNEL, "%s: %s",
	    ssh_error_kind_name(e.kind), e.message);
	ck_assert(ssh_session_broken(s2));
	ssh_session_close(s2);
	ssh_error_clear(&e);
	s = open_pod();
	poll_ok(s, "drop", &st);
	ck_assert_msg(st.state == REMOTE_RUNNING, "after drop: %s",
	    state_name(st.state));
	go_release(wd);
	wait_state(s, "drop", REMOTE_EXITED, &st);
	ck_assert_int_eq(st.exit_status, 0);
	log = log_of(s, "drop", &len);
	ck_assert_str_eq(log, "begin\ndone\n");
	free(log);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_read_log)
{
	static const char want[] = "a\r\nb\0c\377\376xyz";	/* 11 bytes */
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700], *data = NULL;
	size_t len = 0, got;
	int64_t off;

	workdir_make("wd-log", wd, sizeof(wd));
	start_ok(s, "binlog", wd, "printf 'a\\r\\nb\\0c\\377\\376xyz'\n",
	    &st);
	wait_state(s, "binlog", REMOTE_EXITED, &st);
	ck_assert_int_eq(st.log_size, 11);
	data = log_of(s, "binlog", &len);
	ck_assert_uint_eq(len, 11);
	ck_assert(memcmp(data, want, 11) == 0);
	free(data);
	/* Every window of every size. */
	for (off = 0; off <= 12; off++) {
		for (got = 0; got <= 12; got++) {
			size_t exp = off >= 11 ? 0 :
			    (size_t)(11 - off) < got ? (size_t)(11 - off) : got;

			ck_assert_msg(remote_read_log(s, jobs_root, "binlog",
			    off, got, &data, &len, &e) == 0, "%s", e.message);
			ck_assert_msg(len == exp, "offset %" PRId64 " max %zu:"
			    " %zu bytes", off, got, len);
			ck_assert(memcmp(data, want + off, len) == 0);
			free(data);
		}
	}
	/* Far past the end; a job without a log; a bad offset. */
	ck_assert_int_eq(remote_read_log(s, jobs_root, "binlog", 1 << 30, 10,
	    &data, &len, &e), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(data, "");
	free(data);
	ck_assert_int_eq(remote_read_log(s, jobs_root, "never-started", 0, 10,
	    &data, &len, &e), 0);
	ck_assert_uint_eq(len, 0);
	free(data);
	ck_assert_int_eq(remote_read_log(s, jobs_root, "binlog", -1, 10,
	    &data, &len, &e), -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	ck_assert_ptr_null(data);
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_read_log_big)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700], *data = NULL;
	size_t len = 0, total = 0;
	int64_t off = 0;
	int i;

	/* 300000 bytes read in 65536-byte chunks, as the log follower
	 * will. */
	workdir_make("wd-big", wd, sizeof(wd));
	start_ok(s, "biglog", wd, "head -c 300000 /dev/zero | tr '\\0' x\n",
	    &st);
	wait_state(s, "biglog", REMOTE_EXITED, &st);
	ck_assert_int_eq(st.log_size, 300000);
	for (i = 0; i < 10; i++) {
		ck_assert_msg(remote_read_log(s, jobs_root, "biglog", off,
		    65536, &data, &len, &e) == 0, "%s", e.message);
		if (len == 0) {
			free(data);
			break;
		}
		ck_assert(data[0] == 'x' && data[len - 1] == 'x');
		off += (int64_t)len;
		total += len;
		free(data);
	}
	ck_assert_uint_eq(total, 300000);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_cancel)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700];
	int pg;
	int64_t deadline;

	workdir_make("wd-cancel", wd, sizeof(wd));
	start_ok(s, "cancel", wd, "sleep 300 & sleep 300; wait\n", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	pg = job_pgid("cancel");
	/* The wrapper, the script's bash and two sleeps: running means the
	 * wrapper started, so under load the script may not have forked
	 * its sleeps yet.  Wait for them (bounded). */
	deadline = tu_now_ms() + TU_HANG_MS;
	while (group_live(pg) < 3) {
		ck_assert_msg(tu_now_ms() < deadline, "the job's group has "
		    "%d live processes, not 3", group_live(pg));
		tu_sleep_ms(20);
	}
	/* A running job cannot be removed. */
	ck_assert_int_eq(remote_cleanup(s, jobs_root, "cancel", &e), -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.message, "running") != NULL, "%s", e.message);
	ck_assert_msg(remote_cancel(s, jobs_root, "cancel", 3, &e) == 0, "%s",
	    e.message);
	ck_assert_int_eq(group_live(pg), 0);
	poll_ok(s, "cancel", &st);
	ck_assert_int_eq(st.state, REMOTE_EXITED);
	ck_assert_int_eq(st.exit_status, 128 + 15);
	ck_assert(st.canceled);
	/* Again, and an unknown job: no-ops. */
	ck_assert_msg(remote_cancel(s, jobs_root, "cancel", 3, &e) == 0, "%s",
	    e.message);
	ck_assert_msg(remote_cancel(s, jobs_root, "no-such-job", 3, &e) == 0,
	    "%s", e.message);
	poll_ok(s, "no-such-job", &st);
	ck_assert_int_eq(st.state, REMOTE_UNKNOWN);
	/* Finished: removable; then unknown, and cleanup again is fine. */
	ck_assert_msg(remote_cleanup(s, jobs_root, "cancel", &e) == 0, "%s",
	    e.message);
	ck_assert(!job_file_exists("cancel", "."));
	poll_ok(s, "cancel", &st);
	ck_assert_int_eq(st.state, REMOTE_UNKNOWN);
	ck_assert_int_eq(remote_cleanup(s, jobs_root, "cancel", &e), 0);
	/* Out-of-range grace. */
	ck_assert_int_eq(remote_cancel(s, jobs_root, "cancel", 11, &e), -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_cancel_kill)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700];
	int pg;
	int64_t t0, ms;

	/* SIGTERM ignored by the script and its children: after the grace
	 * SIGKILL takes them; the wrapper records 137. */
	workdir_make("wd-cancel", wd, sizeof(wd));
	start_ok(s, "cancelkill", wd, "trap '' TERM\nsleep 300 & sleep 300\n"
	    "wait\n", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	pg = job_pgid("cancelkill");
	t0 = tu_now_ms();
	ck_assert_msg(remote_cancel(s, jobs_root, "cancelkill", 1, &e) == 0,
	    "%s", e.message);
	ms = tu_now_ms() - t0;
	/* The grace was given; then SIGKILL, not a wait for the sleeps. */
	ck_assert_int_ge(ms, 900);
	ck_assert_int_lt(ms, TU_HANG_MS);
	ck_assert_int_eq(group_live(pg), 0);
	poll_ok(s, "cancelkill", &st);
	ck_assert_int_eq(st.state, REMOTE_EXITED);
	ck_assert_int_eq(st.exit_status, 128 + 9);
	ck_assert(st.canceled);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_vanished)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700], cmd[1024];
	int pg, i;

	workdir_make("wd-vanish", wd, sizeof(wd));
	start_ok(s, "vanish", wd, "sleep 300\n", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	pg = job_pgid("vanish");
	/* Behind the module's back, as a reboot would. */
	snprintf(cmd, sizeof(cmd), "kill -s KILL -- -%d", pg);
	ck_assert_int_eq(pod_sh(s, cmd), 0);
	for (i = 0; i < TU_HANG_MS / 20 && group_live(pg) > 0; i++)
		tu_sleep_ms(20);
	ck_assert_int_eq(group_live(pg), 0);
	poll_ok(s, "vanish", &st);
	ck_assert_msg(st.state == REMOTE_VANISHED, "%s",
	    state_name(st.state));
	ck_assert_int_eq(st.exit_status, -1);
	ck_assert(!job_file_exists("vanish", "exit"));
	/* Still never re-run; cancel is a no-op; cleanup allowed. */
	snprintf(cmd, sizeof(cmd), "touch '%s/rerun'\n", wd);
	start_ok(s, "vanish", wd, cmd, &st);
	ck_assert_int_eq(st.state, REMOTE_VANISHED);
	tu_sleep_ms(300);
	poll_ok(s, "vanish", &st);
	ck_assert_int_eq(st.state, REMOTE_VANISHED);
	snprintf(cmd, sizeof(cmd), "%s/rerun", wd);
	ck_assert_msg(access(cmd, F_OK) != 0, "the job ran again");
	ck_assert_msg(remote_cancel(s, jobs_root, "vanish", 1, &e) == 0, "%s",
	    e.message);
	ck_assert_msg(remote_cleanup(s, jobs_root, "vanish", &e) == 0, "%s",
	    e.message);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_pid_reused)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700], path[1024], line[256];
	FILE *fp;

	/* A finished job whose pid file names a live process that is not
	 * ours (this test process, with a different start time): not
	 * running.  Then the same with another boot id. */
	workdir_make("wd-reuse", wd, sizeof(wd));
	start_ok(s, "reuse", wd, "sleep 0.2\n", &st);
	wait_state(s, "reuse", REMOTE_EXITED, &st);
	snprintf(path, sizeof(path), "%s/reuse/exit", jobs_root);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/reuse/pid", jobs_root);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), fp));
	fclose(fp);
	{
		char boot[64], tok[32], at[32];
		int pid;

		ck_assert_int_eq(sscanf(line, "%d %63s %31s %31s", &pid, boot,
		    tok, at), 4);
		fp = fopen(path, "w");
		fprintf(fp, "%d %s %s %s\n", (int)getpid(), boot, tok, at);
		fclose(fp);
		poll_ok(s, "reuse", &st);
		ck_assert_msg(st.state == REMOTE_VANISHED, "%s",
		    state_name(st.state));
		/* Cancel must leave that process (us) alone. */
		ck_assert_msg(remote_cancel(s, jobs_root, "reuse", 0, &e) == 0,
		    "%s", e.message);
		ck_assert(!job_file_exists("reuse", "canceled"));
		fp = fopen(path, "w");
		fprintf(fp, "%d 00000000-0000-0000-0000-000000000000 %s %s\n",
		    pid, tok, at);
		fclose(fp);
		poll_ok(s, "reuse", &st);
		ck_assert_int_eq(st.state, REMOTE_VANISHED);
	}
	ck_assert_msg(remote_cleanup(s, jobs_root, "reuse", &e) == 0, "%s",
	    e.message);
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_hostile_ids)
{
	static const char *const ids[] = {
		"$(touch POD/pwned)", "../x", "-rf", "a\nb", "", ".", "..",
		"a b", "a/b", "a'b", "x;id",
		"0123456789012345678901234567890123456789012345678901234567890"
		"1234",
	};
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char wd[700], bad[8][1024], pwned[600], *data;
	size_t i, len;

	workdir_make("wd-hostile", wd, sizeof(wd));
	snprintf(pwned, sizeof(pwned), "%s/pwned", pod.root);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		ck_assert_int_eq(remote_start(s, jobs_root, ids[i], wd,
		    "touch pwned", &st, &e), -1);
		ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
		ck_assert_msg(strstr(e.message, "job id") != NULL, "%s",
		    e.message);
		ck_assert_int_eq(remote_poll(s, jobs_root, ids[i], &st, &e),
		    -1);
		ck_assert_int_eq(remote_read_log(s, jobs_root, ids[i], 0, 1,
		    &data, &len, &e), -1);
		ck_assert_int_eq(remote_cancel(s, jobs_root, ids[i], 0, &e),
		    -1);
		ck_assert_int_eq(remote_cleanup(s, jobs_root, ids[i], &e), -1);
		ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	}
	/* Paths: relative, "..", control characters. */
	snprintf(bad[0], sizeof(bad[0]), "relative/dir");
	snprintf(bad[1], sizeof(bad[1]), "%s/../x", pod.root);
	snprintf(bad[2], sizeof(bad[2]), "%s/a\nb", pod.root);
	snprintf(bad[3], sizeof(bad[3]), "%s/..", pod.root);
	snprintf(bad[4], sizeof(bad[4]), "$(touch %s)", pwned);
	snprintf(bad[5], sizeof(bad[5]), "%s/\x1b[2J", pod.root);
	snprintf(bad[6], sizeof(bad[6]), "/../%s", pod.root);
	snprintf(bad[7], sizeof(bad[7]), "%s/x\x7f", pod.root);
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(remote_start(s, jobs_root, "ok", bad[i],
		    "touch pwned", &st, &e), -1);
		ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
		ck_assert_msg(strstr(e.message, "workdir") != NULL, "%s",
		    e.message);
		ck_assert_int_eq(remote_start(s, bad[i], "ok", wd,
		    "touch pwned", &st, &e), -1);
		ck_assert_msg(strstr(e.message, "jobs_root") != NULL, "%s",
		    e.message);
		ck_assert_int_eq(remote_poll(s, bad[i], "ok", &st, &e), -1);
	}
	ck_assert_int_eq(remote_start(s, jobs_root, "ok", NULL, "true", &st,
	    &e), -1);
	ck_assert_int_eq(remote_start(s, jobs_root, "ok", wd, NULL, &st, &e),
	    -1);
	ck_assert(!ssh_session_broken(s));
	ck_assert_msg(access(pwned, F_OK) != 0, "%s exists", pwned);
	ck_assert_msg(!job_file_exists("ok", "."), "job ok was created");
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_hostile_script)
{
	/* Quotes, $(...), backticks, variables, backslashes, a line like
	 * the wrapper's here-document end, non-ASCII and \r. */
	static const char text[] =
	    "it's \"quoted\" $(touch pwned1) `touch pwned2` $HOME ${PATH}\n"
	    "back\\slash \\n '\\'' \"'\" ; & | > < * ? [a] ~ # !\n"
	    "IA_REMOTE_WRAPPER_EOF\n"
	    "EOF\n"
	    "caf\xc3\xa9 \xff\xfe tab\there\r\n"
	    "%s %d %%";
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	char wd[700], script[2048], want[2048], path[1024], *log, *kept;
	size_t len;

	/* A workdir with a quote and a space in its name. */
	workdir_make("it's a dir", wd, sizeof(wd));
	snprintf(script, sizeof(script), "cat <<'END_OF_TEXT'\n%s\n"
	    "END_OF_TEXT\nprintf '%%s\\n' 'single '\\'' quote'\npwd\n",
	    text);
	start_ok(s, "hostile", wd, script, &st);
	wait_state(s, "hostile", REMOTE_EXITED, &st);
	ck_assert_int_eq(st.exit_status, 0);
	snprintf(want, sizeof(want), "%s\nsingle ' quote\n%s\n", text, wd);
	log = log_of(s, "hostile", &len);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_str_eq(log, want);
	free(log);
	kept = job_file("hostile", "script.sh");
	ck_assert_str_eq(kept, script);
	free(kept);
	snprintf(path, sizeof(path), "%s/pwned1", wd);
	ck_assert(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "%s/pwned2", wd);
	ck_assert(access(path, F_OK) != 0);
	ssh_session_close(s);
}
END_TEST

/* ---- SFTP polls against the shell's ------------------------------------- */

/* Write text to path (a test's own file). */
static void
write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
}

/* remote_poll (SFTP) and remote_poll_exec (the shell report) agree on
 * the job; its status into *st. */
static void
polls_agree(struct ssh_session *s, const char *root, const char *id,
    struct remote_status *st)
{
	struct remote_status ex = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;

	ck_assert_msg(remote_poll(s, root, id, st, &e) == 0, "poll %s: %s",
	    id, e.message);
	ck_assert_msg(remote_poll_exec(s, root, id, &ex, &e) == 0,
	    "poll_exec %s: %s", id, e.message);
	ck_assert_msg(st->state == ex.state, "%s: sftp %s, exec %s", id,
	    state_name(st->state), state_name(ex.state));
	ck_assert_int_eq(st->exit_status, ex.exit_status);
	ck_assert_int_eq(st->log_size, ex.log_size);
	ck_assert_int_eq(st->started_at, ex.started_at);
	ck_assert_int_eq(st->canceled, ex.canceled);
}

START_TEST(test_sftp_matches_exec)
{
	struct ssh_session *s = open_pod();
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	struct timeval tv[2];
	char wd[700], dir[1024], path[1100], *data;
	size_t len;
	int pg, i;

	workdir_make("wd-match", wd, sizeof(wd));
	polls_agree(s, jobs_root, "match-none", &st);
	ck_assert_int_eq(st.state, REMOTE_UNKNOWN);
	/* Running (it prints nothing while polled), then exited 7. */
	start_ok(s, "match-run", wd, "echo out\nsleep 300\n", &st);
	polls_agree(s, jobs_root, "match-run", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	ck_assert_int_gt(st.started_at, 0);
	start_ok(s, "match-7", wd, "echo seven\nexit 7\n", &st);
	wait_state(s, "match-7", REMOTE_EXITED, &st);
	polls_agree(s, jobs_root, "match-7", &st);
	ck_assert_int_eq(st.exit_status, 7);
	ck_assert_int_eq(st.log_size, 6);
	/* Canceled. */
	ck_assert_msg(remote_cancel(s, jobs_root, "match-run", 2, &e) == 0,
	    "%s", e.message);
	polls_agree(s, jobs_root, "match-run", &st);
	ck_assert_int_eq(st.state, REMOTE_EXITED);
	ck_assert_int_eq(st.exit_status, 128 + 15);
	ck_assert(st.canceled);
	/* Vanished: the group killed behind the module's back. */
	start_ok(s, "match-gone", wd, "sleep 300\n", &st);
	pg = job_pgid("match-gone");
	ck_assert_int_eq(kill(-pg, SIGKILL), 0);
	for (i = 0; i < TU_HANG_MS / 20 && group_live(pg) > 0; i++)
		tu_sleep_ms(20);
	ck_assert_int_eq(group_live(pg), 0);
	polls_agree(s, jobs_root, "match-gone", &st);
	ck_assert_int_eq(st.state, REMOTE_VANISHED);
	/* started/ without pid (a wrapper that died before recording
	 * itself): running while young by the pod's clock, then vanished. */
	snprintf(dir, sizeof(dir), "%s/match-young", jobs_root);
	tu_pod_mkdir(&pod, dir, 0700);
	snprintf(path, sizeof(path), "%s/started", dir);
	tu_pod_mkdir(&pod, path, 0700);
	polls_agree(s, jobs_root, "match-young", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	ck_assert_int_eq(st.started_at, 0);
	tv[0].tv_sec = tv[1].tv_sec = time(NULL) - REMOTE_VANISH_S - 5;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	ck_assert_int_eq(utimes(path, tv), 0);
	polls_agree(s, jobs_root, "match-young", &st);
	ck_assert_int_eq(st.state, REMOTE_VANISHED);
	/* FIFOs where files should be: neither poll nor read blocks on
	 * them (they are not regular files: no pid, no log). */
	snprintf(path, sizeof(path), "%s/pid", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/log", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	tu_pod_own(&pod, dir);
	polls_agree(s, jobs_root, "match-young", &st);
	ck_assert_int_eq(st.state, REMOTE_VANISHED);
	ck_assert_int_eq(st.log_size, 0);
	ck_assert_int_eq(remote_read_log(s, jobs_root, "match-young", 0, 100,
	    &data, &len, &e), 0);
	ck_assert_uint_eq(len, 0);
	free(data);
	/* An exit file that holds no status is an error, not a state. */
	snprintf(path, sizeof(path), "%s/exit", dir);
	write_text(path, "x\n");
	tu_pod_own(&pod, path);
	ck_assert_int_eq(remote_poll(s, jobs_root, "match-young", &st, &e),
	    -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.message, "exit") != NULL, "%s", e.message);
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

/* ---- the slow pod: no shell for polls ------------------------------------ */

static struct tu_pod slow;
static char slow_jobs_root[600];
static bool slow_sftp_server;	/* sftp-server through the shell */

#define SFTP_SERVER "/usr/lib/openssh/sftp-server"
#define SLOW_POLLS 200

static void
slow_setup(void)
{
	/* Every shell sshd starts for the pod user sleeps 1 s in its
	 * ~/.bashrc; SFTP as on a RunPod image when sftp-server is here. */
	slow_sftp_server = access(SFTP_SERVER, X_OK) == 0;
	setenv("IA_POD_SLOW_START", "1", 1);
	if (slow_sftp_server)
		setenv("IA_POD_SFTP_SERVER", SFTP_SERVER, 1);
	tu_pod_start(&slow, "remote-slow");
	unsetenv("IA_POD_SLOW_START");
	unsetenv("IA_POD_SFTP_SERVER");
	snprintf(slow_jobs_root, sizeof(slow_jobs_root), "%s/jobs", slow.root);
}

static void
slow_teardown(void)
{
	char cmd[2048];

	if (slow_jobs_root[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "for f in '%s'/*/pid; do "
		    "[ -f \"$f\" ] || continue; read -r p _ <\"$f\" || "
		    "continue; grep -q run.sh /proc/$p/cmdline 2>/dev/null && "
		    "kill -s KILL -- -$p 2>/dev/null; done; true",
		    slow_jobs_root);
		if (system(cmd) != 0)
			fprintf(stderr, "check_remote: cleaning up jobs "
			    "failed\n");
	}
	tu_pod_stop(&slow);
}

/* Lines of the file at path that hold needle (0 when it is missing). */
static int
lines_with(const char *path, const char *needle)
{
	char *text = tu_read_file(path), *p, *nl;
	int n = 0;

	if (text == NULL)
		return 0;
	for (p = text; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p) - 1;
		else
			*nl = '\0';
		if (strstr(p, needle) != NULL)
			n++;
	}
	free(text);
	return n;
}

/* Shells sshd started for the slow pod's user so far. */
static int
slow_shells(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/shell/starts", slow.dir);
	ck_assert_msg(access(path, R_OK) == 0, "no %s: the pod has no slow "
	    "start-up", path);
	return lines_with(path, "");
}

START_TEST(test_poll_no_shell)
{
	struct ssh_session *s;
	struct ssh_target t;
	struct ssh_error e = SSH_ERROR_INIT;
	struct remote_status st = REMOTE_STATUS_INIT, st0;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char log_path[512], line[256], *data;
	int sock, shells, i, port;
	size_t len;

	memset(&t, 0, sizeof(t));
	t.host = slow.host;
	t.port = slow.port;
	t.user = slow.user;
	t.key_file = slow.key;
	t.known_hosts = slow.known_hosts;
	t.timeout_ms = TU_HANG_MS;
	ck_assert_msg(ssh_session_open(&t, &s, NULL, &e) == 0, "open: %s",
	    e.message);
	ssh_session_handle(s, &sock);
	ck_assert_int_eq(getsockname(sock, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	tu_pod_mkdir(&slow, slow_jobs_root, 0755);

	/* The start is an exec: it pays the slow start-up, once. */
	shells = slow_shells();
	ck_assert_msg(remote_start(s, slow_jobs_root, "noshell", slow.root,
	    "echo first\nsleep 300\n", &st0, &e) == 0, "start: %s", e.message);
	ck_assert_int_eq(st0.state, REMOTE_RUNNING);
	ck_assert_int_eq(slow_shells(), shells + 1);
	/* Polls and log reads: SFTP only, on one channel (sftp-server, when
	 * that is the subsystem, is started through the shell once). */
	for (i = 0; i < SLOW_POLLS; i++) {
		ck_assert_msg(remote_poll(s, slow_jobs_root, "noshell", &st,
		    &e) == 0, "poll %d: %s", i, e.message);
		ck_assert_int_eq(st.state, REMOTE_RUNNING);
		ck_assert_int_eq(st.started_at, st0.started_at);
		ck_assert_int_eq(st.log_size, 6);
		ck_assert_msg(remote_read_log(s, slow_jobs_root, "noshell", 0,
		    4096, &data, &len, &e) == 0, "read %d: %s", i, e.message);
		ck_assert_uint_eq(len, 6);
		ck_assert_str_eq(data, "first\n");
		free(data);
	}
	ck_assert_int_eq(slow_shells(), shells + 1 + slow_sftp_server);
	/* The shell's answer agrees; cancel is an exec too. */
	polls_agree(s, slow_jobs_root, "noshell", &st);
	ck_assert_int_eq(st.state, REMOTE_RUNNING);
	ck_assert_msg(remote_cancel(s, slow_jobs_root, "noshell", 1, &e) == 0,
	    "cancel: %s", e.message);
	ck_assert_msg(remote_poll(s, slow_jobs_root, "noshell", &st, &e) == 0,
	    "poll: %s", e.message);
	ck_assert_int_eq(st.state, REMOTE_EXITED);
	ck_assert_int_eq(st.exit_status, 128 + 15);
	ck_assert(st.canceled);
	ck_assert_int_eq(slow_shells(), shells + 3 + slow_sftp_server);
	ssh_session_close(s);

	/* sshd's own count of this connection's channels, once it has
	 * logged the disconnect (its last line for the connection): three
	 * commands (start, the exec poll, cancel) and one SFTP subsystem. */
	snprintf(log_path, sizeof(log_path), "%s/sshd.log", slow.dir);
	snprintf(line, sizeof(line), "Disconnected from user %s 127.0.0.1 "
	    "port %d", slow.user, port);
	for (i = 0; i < TU_HANG_MS / 20 && lines_with(log_path, line) == 0;
	    i++)
		tu_sleep_ms(20);
	ck_assert_msg(lines_with(log_path, line) == 1, "no '%s' in %s", line,
	    log_path);
	snprintf(line, sizeof(line), "Starting session: command for %s from "
	    "127.0.0.1 port %d ", slow.user, port);
	ck_assert_int_eq(lines_with(log_path, line), 3);
	snprintf(line, sizeof(line), "Starting session: subsystem 'sftp' for "
	    "%s from 127.0.0.1 port %d ", slow.user, port);
	ck_assert_int_eq(lines_with(log_path, line), 1);
}
END_TEST

static Suite *
remote_suite(void)
{
	Suite *s = suite_create("remote");
	TCase *tc = tcase_create("pod");

	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, pod_setup, pod_teardown);
	tcase_add_test(tc, test_start_poll);
	tcase_add_test(tc, test_exit_status);
	tcase_add_test(tc, test_workdir_missing);
	tcase_add_test(tc, test_idempotent);
	tcase_add_test(tc, test_survives_drop);
	tcase_add_test(tc, test_read_log);
	tcase_add_test(tc, test_read_log_big);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancel_kill);
	tcase_add_test(tc, test_vanished);
	tcase_add_test(tc, test_pid_reused);
	tcase_add_test(tc, test_hostile_ids);
	tcase_add_test(tc, test_hostile_script);
	tcase_add_test(tc, test_sftp_matches_exec);
	suite_add_tcase(s, tc);
	tc = tcase_create("slowpod");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, slow_setup, slow_teardown);
	tcase_add_test(tc, test_poll_no_shell);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { remote_suite }, .setup = tu_ssh_setup,
    .teardown = stop_pod)
