/* SPDX-License-Identifier: MIT */
/*
 * poll-bench: the agent's side of bench/poll.  Not a test.
 *
 *     poll-bench N M      N SFTP polls and log reads, M exec polls
 *
 * The pod comes from the environment tests/harness/pod start prints
 * (POD_SSH_HOST, POD_SSH_PORT, POD_SSH_USER, POD_SSH_KEY, POD_HOST_FP,
 * POD_ROOT).  On one session from an ssh_pool (as the agent's steps get
 * them) it starts a job that prints a line and sleeps, then times, in
 * one run: remote_poll (SFTP, no shell) and remote_read_log of the whole
 * log N times each, and between their two halves remote_poll_exec (the
 * same status from the shell report, one exec) M times, each of which
 * must agree with an SFTP poll just before it.  The first SFTP poll
 * opens the session's SFTP channel and is timed apart (sftp_open_ms).
 * Prints one line:
 *
 *   poll_ms_median=A poll_ms_p99=B read_ms_median=C read_ms_p99=D
 *   exec_ms=E exec_ms_p99=F start_ms=G sftp_open_ms=H ratio=E/A
 *
 * (on one line).  Exit status 0, or 1 with the error on stderr.
 */
#include "auto-config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "providers/ssh/remote.h"
#include "providers/ssh/ssh.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "poll-bench: %s is not set (eval \"$(tests/"
		    "harness/pod start DIR)\")\n", name);
		exit(1);
	}
	return v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (0..1, nearest rank) of n values (sorts v). */
static double
quantile(double *v, int n, double q)
{
	int k;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	k = (int)(q * n + 0.999999) - 1;
	return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static bool
same_status(const struct remote_status *a, const struct remote_status *b)
{
	return a->state == b->state && a->exit_status == b->exit_status &&
	    a->log_size == b->log_size && a->started_at == b->started_at &&
	    a->canceled == b->canceled;
}

/* m exec polls into v (ms), each checked against an (untimed) SFTP poll
 * just before it.  0, or -1 with the error printed. */
static int
exec_polls(struct ssh_session *s, const char *root, const char *id, int m,
    double *v)
{
	struct remote_status st = REMOTE_STATUS_INIT, ex = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	double t0;
	int k;

	for (k = 0; k < m; k++) {
		if (remote_poll(s, root, id, &st, &e) != 0)
			goto fail;
		t0 = now_ms();
		if (remote_poll_exec(s, root, id, &ex, &e) != 0)
			goto fail;
		v[k] = now_ms() - t0;
		if (!same_status(&st, &ex)) {
			fprintf(stderr, "poll-bench: the SFTP and exec polls "
			    "disagree\n");
			return -1;
		}
	}
	return 0;
fail:
	fprintf(stderr, "poll-bench: %s\n", e.message);
	ssh_error_clear(&e);
	return -1;
}

int
main(int argc, char **argv)
{
	struct ssh_target t;
	struct ssh_error e = SSH_ERROR_INIT;
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_pool *pool = NULL;
	struct ssh_session *s = NULL;
	double *poll_v, *read_v, *exec_v, t0, start_ms, open_ms;
	char jobs_root[1024], job_id[64], *data;
	int n, m, i, rc = 1;
	size_t len;

	if (argc != 3 || (n = atoi(argv[1])) < 1 || (m = atoi(argv[2])) < 1 ||
	    m > n) {
		fprintf(stderr, "usage: poll-bench N M (1 <= M <= N)\n");
		return 1;
	}
	if (ssh_global_init() != 0)
		return 1;
	memset(&t, 0, sizeof(t));
	t.host = env("POD_SSH_HOST");
	t.port = atoi(env("POD_SSH_PORT"));
	t.user = env("POD_SSH_USER");
	t.key_file = env("POD_SSH_KEY");
	t.pinned_fp = env("POD_HOST_FP");
	t.timeout_ms = 30000;
	snprintf(jobs_root, sizeof(jobs_root), "%s/jobs", env("POD_ROOT"));
	snprintf(job_id, sizeof(job_id), "poll-bench-%ld", (long)getpid());
	poll_v = calloc((size_t)n, sizeof(double));
	read_v = calloc((size_t)n, sizeof(double));
	exec_v = calloc((size_t)m, sizeof(double));
	pool = ssh_pool_new(1, 1, 600);
	if (ssh_pool_get(pool, &t, &s, &e) != 0)
		goto fail;
	t0 = now_ms();
	if (remote_start(s, jobs_root, job_id, env("POD_ROOT"),
	    "echo poll-bench\nsleep 600\n", &st, &e) != 0)
		goto fail;
	start_ms = now_ms() - t0;
	if (st.state != REMOTE_RUNNING) {
		fprintf(stderr, "poll-bench: the job is not running\n");
		goto out;
	}
	t0 = now_ms();
	if (remote_poll(s, jobs_root, job_id, &st, &e) != 0)
		goto fail;
	open_ms = now_ms() - t0;
	for (i = 0; i < n; i++) {
		/* the exec polls between the two halves: what an exec leaves
		 * running on the pod for a moment (sshd closing the session,
		 * the shell exiting) would slow the SFTP polls after it */
		if (i == n / 2 &&
		    exec_polls(s, jobs_root, job_id, m, exec_v) != 0)
			goto out;
		t0 = now_ms();
		if (remote_poll(s, jobs_root, job_id, &st, &e) != 0)
			goto fail;
		poll_v[i] = now_ms() - t0;
		t0 = now_ms();
		if (remote_read_log(s, jobs_root, job_id, 0, 65536, &data, &len,
		    &e) != 0)
			goto fail;
		read_v[i] = now_ms() - t0;
		if ((int64_t)len != st.log_size) {
			fprintf(stderr, "poll-bench: read %zu bytes of a log "
			    "of %lld\n", len, (long long)st.log_size);
			free(data);
			goto out;
		}
		free(data);
	}
	{
		double pm = quantile(poll_v, n, 0.5), em = quantile(exec_v, m,
		    0.5);

		printf("poll_ms_median=%.2f poll_ms_p99=%.2f "
		    "read_ms_median=%.2f read_ms_p99=%.2f exec_ms=%.2f "
		    "exec_ms_p99=%.2f "
		    "start_ms=%.1f sftp_open_ms=%.1f ratio=%.1f\n", pm,
		    quantile(poll_v, n, 0.99), quantile(read_v, n, 0.5),
		    quantile(read_v, n, 0.99), em, quantile(exec_v, m, 0.99),
		    start_ms, open_ms, em / pm);
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "poll-bench: %s\n", e.message);
out:
	if (s != NULL) {
		if (!ssh_session_broken(s) &&
		    (remote_cancel(s, jobs_root, job_id, 0, &e) != 0 ||
		    remote_cleanup(s, jobs_root, job_id, &e) != 0))
			fprintf(stderr, "poll-bench: removing the job: %s\n",
			    e.message);
		ssh_pool_put(pool, s, false);
	}
	ssh_pool_free(pool);
	ssh_error_clear(&e);
	free(poll_v);
	free(read_v);
	free(exec_v);
	ssh_global_cleanup();
	return rc;
}
