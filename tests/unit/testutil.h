/* SPDX-License-Identifier: MIT */
/*
 * testutil: helpers shared by the test programs (tests/DIR/check_NAME.c)
 * and their main() (TU_MAIN).
 *
 * Unless said otherwise a helper reports failure through Check
 * (ck_assert...), so it is meant to be called from a test or a checked
 * fixture.  Strings and memory a helper returns are owned by the caller
 * when so stated; everything else stays owned by testutil.
 */
#ifndef IA_TESTUTIL_H
#define IA_TESTUTIL_H

#include <sys/types.h>

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct principal;
struct config;

/* ---- temporary directories --------------------------------------------- */

/* Make a fresh directory /tmp/ia-<tag>-XXXXXX and write its path to dir
 * (len bytes).  Not a Check assertion: on failure it prints the reason and
 * aborts, so that it can be used in an unchecked fixture or in main().
 * The caller removes the directory with tu_tmpdir_remove(). */
void tu_tmpdir_make(char *dir, size_t len, const char *tag);

/* Remove dir and everything below it; errors are ignored. */
void tu_tmpdir_remove(const char *dir);

/* The suite's top directory, for tcase_add_unchecked_fixture(tc,
 * tu_top_setup, tu_top_teardown): made (in the parent, before the tests
 * fork) by tu_top_setup() and removed with all it holds, even after a
 * failed test, by tu_top_teardown().  tu_topdir() returns its path
 * (owned by testutil; "" outside the fixture). */
void tu_top_setup(void);
void tu_top_teardown(void);
const char *tu_topdir(void);

/* Make a fresh directory <parent>/t-XXXXXX and write its path to out
 * (len bytes).  It is removed with parent. */
void tu_subdir_make(const char *parent, char *out, size_t len);

/* ---- files ------------------------------------------------------------- */

/* Create a file from the mkstemp(3) template tmpl (which ends in XXXXXX
 * and is rewritten with the file's name), write the len bytes of data to
 * it and give it mode.  The caller removes the file. */
void tu_write_temp(char *tmpl, const void *data, size_t len, mode_t mode);

/* The whole content of the file at path, NUL-terminated; the caller frees
 * it. */
char *tu_read_file(const char *path);

/* ---- configuration ----------------------------------------------------- */

/* The lines every test configuration starts with. */
#define TU_CONFIG_BASE \
	"jwt_issuer = test-issuer\njwt_key_file = /dev/null\n"

/* Load a configuration made of TU_CONFIG_BASE followed by extra_lines
 * (NULL or "" for none; each line ends in "\n"), through a temporary file
 * that is gone again on return.  Loading must succeed.  The caller frees
 * the result with config_free(). */
struct config *tu_config(const char *extra_lines);
/* Fail unless the two tasks agree column by column (a store round
 * trip). */
struct task;
void tu_assert_task_eq(const struct task *a, const struct task *b);

/* tu_config() with the extra lines formatted by printf(3). */
struct config *tu_configf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ---- principals -------------------------------------------------------- */

/* Fill p as the principal sub holding the space-separated scopes (at most
 * 16; "" for none), expiring in 2100.  The caller clears it with
 * principal_clear(). */
void tu_principal(struct principal *p, const char *sub,
    const char *scopes);

/* ---- time and polling -------------------------------------------------- */

/* Milliseconds on the monotonic clock. */
int64_t tu_now_ms(void);

/* Sleep for ms milliseconds (continuing after signals). */
void tu_sleep_ms(long ms);

/* A deadline that only a hang reaches: what a test waits for at most when
 * the thing awaited normally takes well under a second.  Tests assert
 * behaviour (states, counts, order), never speed: a busy machine (make
 * -j check, another build) may slow anything down many times over.
 * Speed is measured in bench/. */
#define TU_HANG_MS 10000

/* The pause tu_poll() makes between two calls, in milliseconds. */
#define TU_POLL_STEP_MS 10

/* Call done(arg) until it returns true, pausing TU_POLL_STEP_MS between
 * calls, for at most about timeout_ms; true if done() did.  done() runs at
 * least once and may use Check assertions. */
bool tu_poll(bool (*done)(void *arg), void *arg, long timeout_ms);

/* ---- skipping ---------------------------------------------------------- */

/* The exit status the test driver counts as SKIP. */
#define TU_EXIT_SKIP 77

/*
 * A prerequisite of the whole test program (sshd installed, running as
 * root, ...).  When ok is false: print "SKIP: <program>: <why>" and exit
 * 77, so that the run shows a skip rather than a pass; or, when
 * IA_REQUIRE_INTEGRATION=1 (scripts/test and CI: everything must run),
 * print the reason and exit 1.  Call it before any test runs (in main or
 * a suite maker), never from a test.
 */
void tu_require(bool ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* tu_require() that /usr/sbin/sshd (or $SSHD) is there, for the tests
 * that start a pod. */
void tu_require_sshd(void);

/* tu_require_sshd(), then libssh2's global initialisation (exits on
 * failure): TU_MAIN's .setup of the sshd-backed tests. */
void tu_ssh_setup(void);

/* ---- running --------------------------------------------------------- */

/* A suite maker: builds and returns one suite of the program. */
typedef Suite *(*tu_suite_fn)(void);

#define TU_MAX_SUITES 8

/*
 * What a test program runs (see TU_MAIN):
 *   suites    the suite makers, in order (up to TU_MAX_SUITES);
 *   setup     run first, once, in the runner's process (may tu_require());
 *   teardown  run last, once, in the runner's process, also when the
 *             program exits early (exit(), a failed setup); false fails
 *             the program (a helper that did not stop cleanly);
 *   nofork    run the tests in one process, in order (they share state:
 *             a test builds on the one before).
 */
struct tu_main {
	tu_suite_fn suites[TU_MAX_SUITES + 1];
	void (*setup)(void);
	bool (*teardown)(void);
	bool nofork;
};

/* Run m: every test of every suite in one runner (CK_NORMAL output).
 * EXIT_SUCCESS when no test failed and teardown (if any) was clean. */
int tu_main(const struct tu_main *m);

/*
 * The main() of a test program:
 *     TU_MAIN(.suites = { strbuf_suite })
 *     TU_MAIN(.suites = { ssh_suite }, .setup = ssh_setup,
 *         .teardown = stop_pods)
 */
#define TU_MAIN(...)							\
	int								\
	main(void)							\
	{								\
		static const struct tu_main tu_main_ = { __VA_ARGS__ };	\
									\
		return tu_main(&tu_main_);				\
	}

/*
 * Start argv[0] with argv (NULL-terminated) and read its first stdout line,
 * which must be "PORT=<n>" (the fake RunPod server prints it), within
 * timeout_ms.  Returns the child's pid and sets *port; on any failure the
 * child is killed and -1 returned.  The caller stops it with tu_stop_child.
 */
pid_t tu_spawn_port(const char *const argv[], int *port, long timeout_ms);

/* SIGTERM, wait at most timeout_ms, then SIGKILL.  True when the child
 * exited by itself with status 0. */
bool tu_stop_child(pid_t pid, long timeout_ms);

/* ---- the SSH "pod" (tests/harness/pod) ---------------------------------- */

/* A pod started by tu_pod_start(): what its env lines said.  As root
 * the pod user is a user of its own (see tests/harness/pod), who owns
 * POD_ROOT; files the test writes there as root and the pod must write
 * to go to it with tu_pod_own(). */
struct tu_pod {
	char dir[256];		/* the pod directory (POD_DIR) */
	char host[64], user[64], key[512], known_hosts[512], fp[128];
	char root[512];		/* POD_ROOT */
	int port;
	uid_t uid;		/* the pod user's */
	gid_t gid;
	bool running;
};

/* Run `bash $top_srcdir/tests/harness/pod CMD DIR`; its stdout (at most
 * len - 1 bytes) into out (may be NULL).  The exit status, -1 when it did
 * not run.  Not a Check assertion. */
int tu_pod_cmd(const char *cmd, const char *dir, char *out, size_t len);

/* The value of "export NAME=value" in env (unquoting '...') into val (len
 * bytes).  False when absent or too long.  Not a Check assertion. */
bool tu_env_get(const char *env, const char *name, char *val, size_t len);

/* Make /tmp/ia-<tag>-XXXXXX and start a pod in it, filling *pod (Check
 * assertions: call it from a checked test or an unchecked fixture).  Stop
 * it with tu_pod_stop(). */
void tu_pod_start(struct tu_pod *pod, const char *tag);

/* Stop the pod and remove its directory, when it runs.  Not a Check
 * assertion (safe from atexit). */
void tu_pod_stop(struct tu_pod *pod);

/* Give path (and, for a directory, all below it) to the pod user; a
 * no-op when that is us.  Check assertions. */
void tu_pod_own(const struct tu_pod *pod, const char *path);

/* mkdir path (an existing directory is fine) and give it to the pod
 * user.  Check assertions. */
void tu_pod_mkdir(const struct tu_pod *pod, const char *path, mode_t mode);

/* What `tests/harness/pod drop` does, without its shell's latency: SIGKILL
 * every sshd process below the pod's listener (the connections; jobs and
 * the listener live on).  The number of processes killed, -1 when the
 * listener is not found.  Not a Check assertion. */
int tu_pod_kill_sessions(const struct tu_pod *pod);

/* A growing, NUL-terminated buffer for libcurl's CURLOPT_WRITEFUNCTION
 * (pass tu_sink_write and a struct tu_sink *); the caller frees buf. */
struct tu_sink {
	char *buf;
	size_t len;
};
size_t tu_sink_write(char *p, size_t sz, size_t n, void *ud);

#endif
