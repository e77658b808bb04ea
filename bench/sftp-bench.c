/* SPDX-License-Identifier: MIT */
/*
 * sftp-bench: the agent's side of bench/sftp.  Not a test.
 *
 *     sftp-bench upload LOCAL REMOTE_ROOT REL     one xfer_upload (all)
 *     sftp-bench download REMOTE_ROOT REL LOCAL   one xfer_download (all)
 *     sftp-bench exec N                           exec latency, pooled/fresh
 *
 * The pod comes from the environment tests/harness/pod start prints
 * (POD_SSH_HOST, POD_SSH_PORT, POD_SSH_USER, POD_SSH_KEY, POD_HOST_FP).
 * upload/download print "seconds=S transfer_seconds=T sha256=H" (T: until
 * the last byte was ACKed/written, i.e. without the final checks, measured
 * by a step of all bytes but the last, then the rest); exec prints
 * "pooled_ms=A fresh_ms=B", the medians of N runs of `true` on a session
 * from an ssh_pool (after one warm-up get) and on a session opened for
 * each run.  Exit status 0, or 1 with the error on stderr.
 */
#include "auto-config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "providers/ssh/ssh.h"
#include "providers/ssh/xfer.h"

#define TMO_MS 600000L

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "sftp-bench: %s is not set (eval \"$(tests/"
		    "harness/pod start DIR)\")\n", name);
		exit(1);
	}
	return v;
}

static void
target(struct ssh_target *t)
{
	memset(t, 0, sizeof(*t));
	t->host = env("POD_SSH_HOST");
	t->port = atoi(env("POD_SSH_PORT"));
	t->user = env("POD_SSH_USER");
	t->key_file = env("POD_SSH_KEY");
	t->pinned_fp = env("POD_HOST_FP");
	t->timeout_ms = 10000;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One transfer in two calls (all but the last byte, then the rest), so
 * the transfer alone can be told from the final checks. */
static int
transfer(struct ssh_session *s, int up, char **argv)
{
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	double t0, t1, t2;
	int64_t size = 0;
	int rc;
	FILE *fp;

	if (up) {
		if ((fp = fopen(argv[0], "rb")) == NULL ||
		    fseeko(fp, 0, SEEK_END) != 0) {
			perror(argv[0]);
			return 1;
		}
		size = (int64_t)ftello(fp);
		fclose(fp);
	} else {
		size = atoll(env("BENCH_SIZE"));
	}
	t0 = now_s();
	rc = up ? xfer_upload(s, argv[0], argv[1], argv[2], size - 1, TMO_MS,
	    &p, &e) : xfer_download(s, argv[0], argv[1], argv[2], size - 1,
	    TMO_MS, &p, &e);
	t1 = now_s();
	if (rc == 0)
		rc = up ? xfer_upload(s, argv[0], argv[1], argv[2], 0, TMO_MS,
		    &p, &e) : xfer_download(s, argv[0], argv[1], argv[2], 0,
		    TMO_MS, &p, &e);
	t2 = now_s();
	if (rc != 0 || !p.done) {
		fprintf(stderr, "sftp-bench: %s: %s\n", up ? "upload" :
		    "download", e.message ? e.message : "not done");
		ssh_error_clear(&e);
		return 1;
	}
	printf("seconds=%.3f transfer_seconds=%.3f sha256=%s\n", t2 - t0,
	    t1 - t0, p.sha256);
	return 0;
}

/* One full-file call: the number the benchmark reports. */
static int
transfer_once(struct ssh_session *s, int up, char **argv)
{
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	double t0, t1;
	int rc;

	t0 = now_s();
	rc = up ? xfer_upload(s, argv[0], argv[1], argv[2], 0, TMO_MS, &p,
	    &e) : xfer_download(s, argv[0], argv[1], argv[2], 0, TMO_MS, &p,
	    &e);
	t1 = now_s();
	if (rc != 0 || !p.done) {
		fprintf(stderr, "sftp-bench: %s: %s\n", up ? "upload" :
		    "download", e.message ? e.message : "not done");
		ssh_error_clear(&e);
		return 1;
	}
	printf("seconds=%.3f sha256=%s\n", t1 - t0, p.sha256);
	return 0;
}

static int
exec_latency(int n)
{
	struct ssh_target t;
	struct ssh_error e = SSH_ERROR_INIT;
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct ssh_pool *pool = ssh_pool_new(2, 2, 60);
	struct ssh_session *s;
	double *pooled = calloc((size_t)n, sizeof(double));
	double *fresh = calloc((size_t)n, sizeof(double));
	double t0;
	int i, rc = 1;

	target(&t);
	if (ssh_pool_get(pool, &t, &s, &e) != 0)
		goto fail;
	ssh_pool_put(pool, s, false);
	for (i = 0; i < n; i++) {
		t0 = now_s();
		if (ssh_pool_get(pool, &t, &s, &e) != 0)
			goto fail;
		if (ssh_exec(s, "true", 1024, 10000, &r, &e) != 0) {
			ssh_pool_put(pool, s, true);
			goto fail;
		}
		ssh_pool_put(pool, s, false);
		pooled[i] = (now_s() - t0) * 1000;
	}
	for (i = 0; i < n; i++) {
		t0 = now_s();
		if (ssh_session_open(&t, &s, NULL, &e) != 0)
			goto fail;
		if (ssh_exec(s, "true", 1024, 10000, &r, &e) != 0) {
			ssh_session_close(s);
			goto fail;
		}
		ssh_session_close(s);
		fresh[i] = (now_s() - t0) * 1000;
	}
	printf("pooled_ms=%.2f fresh_ms=%.2f\n", median(pooled, n),
	    median(fresh, n));
	rc = 0;
	goto cleanup;
fail:
	fprintf(stderr, "sftp-bench: exec: %s\n", e.message);
cleanup:
	ssh_exec_result_clear(&r);
	ssh_error_clear(&e);
	ssh_pool_free(pool);
	free(pooled);
	free(fresh);
	return rc;
}

int
main(int argc, char **argv)
{
	struct ssh_target t;
	struct ssh_error e = SSH_ERROR_INIT;
	struct ssh_session *s;
	int up, rc, split;

	if (ssh_global_init() != 0)
		return 1;
	if (argc == 3 && strcmp(argv[1], "exec") == 0)
		return exec_latency(atoi(argv[2]) > 0 ? atoi(argv[2]) : 10);
	split = getenv("BENCH_SPLIT") != NULL &&
	    strcmp(getenv("BENCH_SPLIT"), "1") == 0;
	if (argc != 5 || (strcmp(argv[1], "upload") != 0 &&
	    strcmp(argv[1], "download") != 0)) {
		fprintf(stderr, "usage: sftp-bench upload LOCAL ROOT REL | "
		    "download ROOT REL LOCAL | exec N\n");
		return 1;
	}
	up = strcmp(argv[1], "upload") == 0;
	target(&t);
	if (ssh_session_open(&t, &s, NULL, &e) != 0) {
		fprintf(stderr, "sftp-bench: %s\n", e.message);
		ssh_error_clear(&e);
		return 1;
	}
	rc = split ? transfer(s, up, argv + 2) : transfer_once(s, up,
	    argv + 2);
	ssh_session_close(s);
	ssh_global_cleanup();
	return rc;
}
