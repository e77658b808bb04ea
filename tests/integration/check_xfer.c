/* SPDX-License-Identifier: MIT */
/*
 * check_xfer: SFTP transfers (src/xfer.c) against a real OpenSSH sshd.
 *
 * The pod is tests/harness/pod (found through $top_srcdir), started once
 * by an unchecked fixture; its POD_ROOT is a local directory, so the tests
 * look at the remote files directly.  Local files go to DIR/local.
 *
 * Covered: path rules (pure and through the API); 5 MiB round trip both
 * ways with SHA-256 equal; upload and download in 1 MiB steps; resume
 * after the connection is killed (between steps and during a transfer)
 * with a new session; a corrupted .part restarts from 0 (whole-prefix
 * check) or, when the damage is outside the resume window, fails the
 * final check, removes the .part and restarts; symlink escapes refused;
 * missing remote file removes the local .part; local permission errors
 * (as non-root: a read-only directory; as root, which ignores modes: a
 * parent that is a regular file, and a read-only tmpfs); remote errors
 * (as non-root: a 0500 directory; as root: a read-only tmpfs inside the
 * root); disk full both ways (a 1 MiB tmpfs: root only).
 *
 * The root-only cases are a program of their own, check_xfer_root (this
 * file built with -DTU_ROOT_CASES), which skips (exit 77) when not run as
 * root: a run without root then shows a skip, not a pass that never ran
 * them.  Both skip without /usr/sbin/sshd.  IA_REQUIRE_INTEGRATION=1
 * turns either skip into a failure.
 */
#include "auto-config.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "providers/ssh/ssh.h"
#include "unit/testutil.h"
#include "providers/ssh/xfer.h"

#ifdef TU_ROOT_CASES
/* check_xfer_root runs the root cases only: the rest is compiled, unused. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"
#endif

#define MIB (1024 * 1024)
#define TMO (6L * TU_HANG_MS)	/* ms, per xfer call: a hang guard */
#define MAX_CALLS 64		/* bound on step loops */


static struct tu_pod pod;
static char pod_local[600];	/* local side of the transfers */

/* ---- the pod ------------------------------------------------------------ */

static void
unmount_all(void)
{
	const char *names[] = { "local/small", "local/ro", "root/full",
	    "root/ro" };
	char path[600];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pod.dir, names[i]);
		umount2(path, MNT_DETACH);
	}
}

static void
pod_setup(void)
{
	tu_pod_start(&pod, "xfer");
	snprintf(pod_local, sizeof(pod_local), "%s/local", pod.dir);
	mkdir(pod_local, 0700);
}

static void
pod_teardown(void)
{
	if (!pod.running)
		return;
	unmount_all();
	tu_pod_stop(&pod);
}

/* Safety net: the pod and its mounts, when the runner is done or exits
 * early (TU_MAIN's teardown). */
static bool
stop_pod(void)
{
	pod_teardown();
	return true;
}

static struct ssh_session *
open_session(void)
{
	struct ssh_target t;
	struct ssh_error e = SSH_ERROR_INIT;
	struct ssh_session *s = NULL;

	memset(&t, 0, sizeof(t));
	t.host = pod.host;
	t.port = pod.port;
	t.user = pod.user;
	t.key_file = pod.key;
	t.pinned_fp = pod.fp;
	t.timeout_ms = TU_HANG_MS;
	ck_assert_msg(ssh_session_open(&t, &s, NULL, &e) == 0, "open: %s",
	    e.message);
	return s;
}

/* ---- files -------------------------------------------------------------- */

/* A file of size pseudo-random bytes (seeded) at path. */
static void
make_file(const char *path, size_t size, unsigned seed)
{
	unsigned char *buf = malloc(size + 8);
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ seed;
	size_t i;
	FILE *fp;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < size; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	ck_assert_ptr_nonnull(fp = fopen(path, "wb"));
	ck_assert_uint_eq(fwrite(buf, 1, size, fp), size);
	ck_assert_int_eq(fclose(fp), 0);
	free(buf);
}

/* The SHA-256 (hex) of the file at path. */
static void
sha_file(const char *path, char *out)
{
	unsigned char buf[65536], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *fp = fopen(path, "rb");
	size_t n;
	int i;

	ck_assert_msg(fp != NULL, "open %s: %s", path, strerror(errno));
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		EVP_DigestUpdate(ctx, buf, n);
	fclose(fp);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static long long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Flip one byte of the file at off. */
static void
corrupt(const char *path, long off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0xff;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* snprintf into buf, asserting nothing was cut. */
static void pathf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < len, "path too long");
}

/* path + ".part", in a static buffer (one at a time). */
static const char *
part_of(const char *path)
{
	static char buf[700];

	snprintf(buf, sizeof(buf), "%s.part", path);
	return buf;
}

/* Upload in steps of step bytes until done; the number of calls. */
static int
upload_all(struct ssh_session *s, const char *local, const char *rel,
    int64_t step, struct xfer_progress *p)
{
	struct ssh_error e = SSH_ERROR_INIT;
	int calls = 0;

	while (!p->done) {
		ck_assert_int_lt(calls, MAX_CALLS);
		ck_assert_msg(xfer_upload(s, local, pod.root, rel, step, TMO, p,
		    &e) == 0, "upload %s: %s", rel, e.message);
		calls++;
	}
	ssh_error_clear(&e);
	return calls;
}

static int
download_all(struct ssh_session *s, const char *rel, const char *local,
    int64_t step, struct xfer_progress *p)
{
	struct ssh_error e = SSH_ERROR_INIT;
	int calls = 0;

	while (!p->done) {
		ck_assert_int_lt(calls, MAX_CALLS);
		ck_assert_msg(xfer_download(s, pod.root, rel, local, step, TMO,
		    p, &e) == 0, "download %s: %s", rel, e.message);
		calls++;
	}
	ssh_error_clear(&e);
	return calls;
}

/* Paths under the pod root and the local directory. */
#define RPATH(buf, rel) pathf(buf, sizeof(buf), "%s/%s", pod.root, rel)
#define LPATH(buf, name) pathf(buf, sizeof(buf), "%s/%s", pod_local, name)

/* ---- no sshd needed ------------------------------------------------------ */

START_TEST(test_path_rules)
{
	static const char *bad[] = {
		"", "/etc/passwd", "../x", "a/../../x", "a/..", "./x", "-x",
		"a/-x", "a//b", "a/", "x\ny", "$(id)", "a b", "a;b", "`id`",
		"x'y", "a\\b", "\xc3\xa9",
	};
	static const char *good[] = {
		"x", "a/b/c.txt", "data/obama/aud.wav", "..x", "x..", ".hidden",
		"A-Z_0-9.tar.gz",
	};
	const char *why;
	size_t i;
	char longname[300];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		ck_assert_msg(!xfer_path_ok(bad[i], &why), "accepted %s",
		    bad[i]);
		ck_assert_ptr_nonnull(why);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(xfer_path_ok(good[i], &why), "refused %s: %s",
		    good[i], why);
	ck_assert(!xfer_path_ok(NULL, NULL));
	memset(longname, 'a', 256);
	longname[256] = '\0';
	ck_assert(!xfer_path_ok(longname, NULL));
}
END_TEST

/* ---- against the pod ---------------------------------------------------- */

START_TEST(test_api_refuses_paths)
{
	static const char *bad[] = { "../x", "/etc/passwd", "a/../../x",
	    "-x", "x\ny", "$(touch pwned)", "a/$(id)/b" };
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	char local[600], out[600];
	size_t i;

	LPATH(local, "refuse.bin");
	LPATH(out, "refuse.out");
	make_file(local, 1000, 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(xfer_upload(s, local, pod.root, bad[i], 0, TMO,
		    &p, &e), -1);
		ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
		ck_assert_msg(strstr(e.message, "refused path") != NULL, "%s",
		    e.message);
		ck_assert_int_eq(xfer_download(s, pod.root, bad[i], out, 0,
		    TMO, &p, &e), -1);
		ck_assert_msg(strstr(e.message, "refused path") != NULL, "%s",
		    e.message);
	}
	/* The root must be absolute, and not "/". */
	ck_assert_int_eq(xfer_upload(s, local, "relative/root", "x", 0, TMO,
	    &p, &e), -1);
	ck_assert_int_eq(xfer_upload(s, local, "/", "x", 0, TMO, &p, &e), -1);
	ck_assert_int_eq(xfer_upload(s, local, "/tmp/../etc", "x", 0, TMO,
	    &p, &e), -1);
	ck_assert(!exists("pwned"));
	ck_assert(!exists(out));
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_round_trip)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress up = XFER_PROGRESS_INIT;
	struct xfer_progress down = XFER_PROGRESS_INIT;
	char local[600], remote[600], back[600], h1[65], h2[65], h3[65];

	LPATH(local, "rt.bin");
	LPATH(back, "rt.back");
	RPATH(remote, "rt/sub/rt.bin");
	make_file(local, 5 * MIB + 123, 2);
	sha_file(local, h1);
	ck_assert_msg(xfer_upload(s, local, pod.root, "rt/sub/rt.bin", 0, TMO,
	    &up, &e) == 0, "%s", e.message);
	ck_assert(up.done);
	ck_assert_int_eq(up.offset, 5 * MIB + 123);
	ck_assert_int_eq(up.total, 5 * MIB + 123);
	ck_assert_str_eq(up.sha256, h1);
	sha_file(remote, h2);
	ck_assert_str_eq(h2, h1);
	ck_assert(!exists(part_of(remote)));

	ck_assert_msg(xfer_download(s, pod.root, "rt/sub/rt.bin", back, 0,
	    TMO, &down, &e) == 0, "%s", e.message);
	ck_assert(down.done);
	ck_assert_str_eq(down.sha256, h1);
	sha_file(back, h3);
	ck_assert_str_eq(h3, h1);
	ck_assert_int_eq(file_size(back), 5 * MIB + 123);

	/* An empty file too. */
	LPATH(local, "empty");
	make_file(local, 0, 0);
	memset(&up, 0, sizeof(up));
	ck_assert_msg(xfer_upload(s, local, pod.root, "empty", 0, TMO, &up,
	    &e) == 0, "%s", e.message);
	ck_assert(up.done);
	memset(&down, 0, sizeof(down));
	LPATH(back, "empty.back");
	ck_assert_msg(xfer_download(s, pod.root, "empty", back, 0, TMO,
	    &down, &e) == 0, "%s", e.message);
	ck_assert(down.done);
	ck_assert_int_eq(file_size(back), 0);
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_steps)
{
	struct ssh_session *s = open_session();
	struct xfer_progress up = XFER_PROGRESS_INIT;
	struct xfer_progress down = XFER_PROGRESS_INIT;
	char local[600], remote[600], back[600], h1[65], h2[65];
	int calls;

	LPATH(local, "steps.bin");
	LPATH(back, "steps.back");
	RPATH(remote, "steps.bin");
	make_file(local, 5 * MIB + 7, 3);
	sha_file(local, h1);
	calls = upload_all(s, local, "steps.bin", MIB, &up);
	ck_assert_int_eq(calls, 6);
	sha_file(remote, h2);
	ck_assert_str_eq(h2, h1);
	calls = download_all(s, "steps.bin", back, MIB, &down);
	ck_assert_int_eq(calls, 6);
	sha_file(back, h2);
	ck_assert_str_eq(h2, h1);
	ssh_session_close(s);
}
END_TEST

/* Drop the connection between two steps: the next call fails, a new
 * session resumes from the .part. */
START_TEST(test_resume_after_drop)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	char local[600], remote[600], part[600], h1[65], h2[65];

	LPATH(local, "drop.bin");
	RPATH(remote, "drop.bin");
	pathf(part, sizeof(part), "%s.part", remote);
	make_file(local, 5 * MIB, 4);
	sha_file(local, h1);
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "drop.bin", 2 * MIB,
	    TMO, &p, &e), 0);
	ck_assert(!p.done);
	ck_assert_int_eq(p.offset, 2 * MIB);
	ck_assert_int_eq(file_size(part), 2 * MIB);
	ck_assert_int_eq(tu_pod_cmd("drop", pod.dir, NULL, 0), 0);
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "drop.bin", 2 * MIB,
	    TMO, &p, &e), -1);
	ck_assert_msg(e.kind == SSH_ERR_CHANNEL, "%s: %s",
	    ssh_error_kind_name(e.kind), e.message);
	ck_assert(ssh_session_broken(s));
	ck_assert_int_eq(p.offset, 2 * MIB);
	ssh_session_close(s);

	s = open_session();
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "drop.bin", 2 * MIB,
	    TMO, &p, &e), 0);
	ck_assert_int_eq(p.offset, 4 * MIB);	/* resumed, not restarted */
	ck_assert_int_eq(upload_all(s, local, "drop.bin", 2 * MIB, &p), 1);
	sha_file(remote, h2);
	ck_assert_str_eq(h2, h1);
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

struct dropper {
	const char *watch;	/* drop once this file reaches min bytes */
	long long min;
	bool dropped;
};

/* Kills the connections from C (tu_pod_kill_sessions), within a few ms of
 * the .part reaching its mark: `tests/harness/pod drop` takes long
 * enough (a shell, ps) for the rest of the file to go through first. */
static void *
dropper_main(void *arg)
{
	struct dropper *d = arg;
	int i;

	for (i = 0; i < 6 * TU_HANG_MS / 2; i++) {	/* a hang guard */
		if (file_size(d->watch) >= d->min) {
			d->dropped = tu_pod_kill_sessions(&pod) > 0;
			return NULL;
		}
		tu_sleep_ms(2);
	}
	return NULL;
}

/* Kill the connection during a transfer (when the .part has 8 MiB of
 * 64 MiB): the call fails; new sessions resume and finish, both ways.
 * A transfer that finished before the drop would leave the resume
 * untested: that fails too. */
START_TEST(test_resume_mid_transfer)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	struct dropper d;
	pthread_t th;
	char local[600], remote[600], part[600], back[600], h1[65], h2[65];
	int rc;
	long long have;

	LPATH(local, "mid.bin");
	LPATH(back, "mid.back");
	RPATH(remote, "mid.bin");
	pathf(part, sizeof(part), "%s.part", remote);
	make_file(local, 64 * MIB, 5);
	sha_file(local, h1);

	d.watch = part;
	d.min = 8 * MIB;
	d.dropped = false;
	pthread_create(&th, NULL, dropper_main, &d);
	rc = xfer_upload(s, local, pod.root, "mid.bin", 0, TMO, &p, &e);
	pthread_join(th, NULL);
	ssh_session_close(s);
	ck_assert_msg(d.dropped, "the dropper killed no connection");
	ck_assert_msg(rc != 0, "the upload finished before the drop");
	ck_assert_msg(e.kind == SSH_ERR_CHANNEL, "%s: %s",
	    ssh_error_kind_name(e.kind), e.message);
	have = file_size(part);
	ck_assert_int_ge(have, 8 * MIB);
	ck_assert_int_lt(have, 64 * MIB);
	s = open_session();
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "mid.bin", MIB, TMO,
	    &p, &e), 0);
	ck_assert_int_eq(p.offset, have + MIB);	/* resumed */
	upload_all(s, local, "mid.bin", 0, &p);
	ssh_session_close(s);
	sha_file(remote, h2);
	ck_assert_str_eq(h2, h1);

	/* The same the other way. */
	s = open_session();
	memset(&p, 0, sizeof(p));
	pathf(part, sizeof(part), "%s.part", back);
	d.watch = part;
	d.dropped = false;
	pthread_create(&th, NULL, dropper_main, &d);
	rc = xfer_download(s, pod.root, "mid.bin", back, 0, TMO, &p, &e);
	pthread_join(th, NULL);
	ssh_session_close(s);
	ck_assert_msg(d.dropped, "the dropper killed no connection");
	ck_assert_msg(rc != 0, "the download finished before the drop");
	ck_assert_msg(e.kind == SSH_ERR_CHANNEL, "%s: %s",
	    ssh_error_kind_name(e.kind), e.message);
	have = file_size(part);
	ck_assert_int_ge(have, 8 * MIB);
	ck_assert_int_eq(p.offset, have);
	s = open_session();
	ck_assert_int_eq(xfer_download(s, pod.root, "mid.bin", back, MIB,
	    TMO, &p, &e), 0);
	ck_assert_int_eq(p.offset, have + MIB);	/* resumed */
	download_all(s, "mid.bin", back, 0, &p);
	ssh_session_close(s);
	sha_file(back, h2);
	ck_assert_str_eq(h2, h1);
	ck_assert(!exists(part));
	ssh_error_clear(&e);
}
END_TEST

/* Copy the first n bytes of from into a new file to. */
static void
copy_prefix(const char *from, const char *to, size_t n)
{
	char *buf = malloc(n + 1);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(fread(buf, 1, n, in), n);
	ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
	free(buf);
}

/* Sizes around the download buffers (XFER_READ_BUF, handed to the writer
 * thread with a quarter or less left, XFER_READ_BUFS of them reused), each
 * way in one call; then a download resumed, in one call to the end, from
 * a .part of an odd size (the writer hashes that prefix back first). */
START_TEST(test_buffer_edges)
{
	const size_t sizes[] = { XFER_READ_BUF - 1, XFER_READ_BUF,
	    XFER_READ_BUF - XFER_READ_BUF / 4 + 1,
	    (size_t)XFER_READ_BUFS * XFER_READ_BUF + 30001 };
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p;
	char local[600], remote[600], back[600], rel[64], h1[65], h2[65];
	size_t i, have;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pathf(rel, sizeof(rel), "edge%zu.bin", i);
		LPATH(local, rel);
		RPATH(remote, rel);
		LPATH(back, "edge.back");
		make_file(local, sizes[i], 20 + (unsigned)i);
		sha_file(local, h1);
		memset(&p, 0, sizeof(p));
		ck_assert_msg(xfer_upload(s, local, pod.root, rel, 0, TMO, &p,
		    &e) == 0, "%s", e.message);
		ck_assert(p.done);
		ck_assert_str_eq(p.sha256, h1);
		sha_file(remote, h2);
		ck_assert_str_eq(h2, h1);
		memset(&p, 0, sizeof(p));
		ck_assert_msg(xfer_download(s, pod.root, rel, back, 0, TMO,
		    &p, &e) == 0, "%s", e.message);
		ck_assert(p.done);
		ck_assert_int_eq(p.offset, (int64_t)sizes[i]);
		ck_assert_str_eq(p.sha256, h1);
		sha_file(back, h2);
		ck_assert_str_eq(h2, h1);
		unlink(back);
	}

	/* i: the last, largest size; resume after an odd prefix. */
	i--;
	have = XFER_READ_BUF + 12345;
	copy_prefix(local, part_of(back), have);
	memset(&p, 0, sizeof(p));
	ck_assert_msg(xfer_download(s, pod.root, rel, back, 0, TMO, &p, &e) ==
	    0, "%s", e.message);
	ck_assert(p.done);
	ck_assert_int_eq(p.offset, (int64_t)sizes[i]);
	ck_assert_str_eq(p.sha256, h1);
	sha_file(back, h2);
	ck_assert_str_eq(h2, h1);
	ck_assert(!exists(part_of(back)));
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

/* The pod's hash runs on a channel of its own during a transfer call that
 * ends the file; when the server refuses that channel (MaxSessions, here
 * with every other session slot held open), the transfer still completes
 * and checks, hashing remotely after the data as before. */
/*
 * Wait until sshd has a session slot free on s.  A channel that ran a
 * process (sftp-server after a transfer) keeps its slot after it is
 * closed, until sshd reaps the process; a probe channel that runs
 * nothing gives its slot back as it closes.
 */
static void
wait_slot(struct ssh_session *s, LIBSSH2_SESSION *ls, long long deadline)
{
	LIBSSH2_CHANNEL *ch;
	int rc;

	while ((ch = libssh2_channel_open_session(ls)) == NULL) {
		rc = libssh2_session_last_errno(ls);
		if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE) {
			ck_assert_msg(tu_now_ms() < deadline, "no session "
			    "slot came free");
			tu_sleep_ms(20);
			continue;
		}
		ck_assert_int_eq(rc, LIBSSH2_ERROR_EAGAIN);
		ck_assert_int_eq(ssh_session_wait(s, deadline), 0);
	}
	while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN)
		ck_assert_int_eq(ssh_session_wait(s, deadline), 0);
}

START_TEST(test_side_channel_refused)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	LIBSSH2_SESSION *ls = ssh_session_handle(s, NULL);
	LIBSSH2_CHANNEL *held[64];
	char local[600], back[600], remote[600], h1[65], h2[65];
	long long deadline;
	int n = 0, rc, i;

	LPATH(local, "refused.bin");
	LPATH(back, "refused.back");
	make_file(local, 3 * MIB + 3, 30);
	sha_file(local, h1);
	ck_assert_msg(xfer_upload(s, local, pod.root, "refused.bin", 0, TMO,
	    &p, &e) == 0, "%s", e.message);
	/* Each phase gets its own hang guard: under load the transfers
	 * alone can take longer than one. */
	deadline = tu_now_ms() + TU_HANG_MS;
	/* Open session channels until the server refuses one. */
	for (;;) {
		LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(ls);

		if (ch != NULL) {
			ck_assert_int_lt(n, 64);
			held[n++] = ch;
			continue;
		}
		rc = libssh2_session_last_errno(ls);
		if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE)
			break;
		ck_assert_int_eq(rc, LIBSSH2_ERROR_EAGAIN);
		ck_assert_int_eq(ssh_session_wait(s, deadline), 0);
	}
	ck_assert_int_gt(n, 1);
	/* Free one: room for the SFTP channel, none for the hash. */
	while (libssh2_channel_free(held[--n]) == LIBSSH2_ERROR_EAGAIN)
		ck_assert_int_eq(ssh_session_wait(s, deadline), 0);
	memset(&p, 0, sizeof(p));
	ck_assert_msg(xfer_download(s, pod.root, "refused.bin", back, 0, TMO,
	    &p, &e) == 0, "%s", e.message);
	ck_assert(p.done);
	ck_assert_str_eq(p.sha256, h1);
	sha_file(back, h2);
	ck_assert_str_eq(h2, h1);
	/* The download's sftp-server may still hold its slot. */
	wait_slot(s, ls, tu_now_ms() + TU_HANG_MS);
	memset(&p, 0, sizeof(p));
	ck_assert_msg(xfer_upload(s, local, pod.root, "refused2.bin", 0, TMO,
	    &p, &e) == 0, "%s", e.message);
	ck_assert(p.done);
	ck_assert_str_eq(p.sha256, h1);
	RPATH(remote, "refused2.bin");
	sha_file(remote, h2);
	ck_assert_str_eq(h2, h1);
	ck_assert(!ssh_session_broken(s));
	deadline = tu_now_ms() + TU_HANG_MS;
	for (i = 0; i < n; i++)
		while (libssh2_channel_free(held[i]) == LIBSSH2_ERROR_EAGAIN)
			ck_assert_int_eq(ssh_session_wait(s, deadline), 0);
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_corrupt_part)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	char local[600], remote[600], part[600], back[600], lpart[600];
	char h1[65], h2[65];

	LPATH(local, "corrupt.bin");
	RPATH(remote, "corrupt.bin");
	pathf(part, sizeof(part), "%s.part", remote);
	make_file(local, 5 * MIB, 6);
	sha_file(local, h1);

	/* A fresh progress: the whole prefix is checked, restart from 0. */
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "corrupt.bin",
	    3 * MIB, TMO, &p, &e), 0);
	corrupt(part, 100);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "corrupt.bin", MIB,
	    TMO, &p, &e), 0);
	ck_assert_int_eq(p.offset, MIB);	/* restarted */
	upload_all(s, local, "corrupt.bin", 0, &p);
	sha_file(remote, h2);
	ck_assert_str_eq(h2, h1);

	/* Damage in the resume window (last 1 MiB) is seen at once. */
	unlink(remote);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "corrupt.bin",
	    3 * MIB, TMO, &p, &e), 0);
	corrupt(part, 3 * MIB - 10);
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "corrupt.bin", MIB,
	    TMO, &p, &e), 0);
	ck_assert_int_eq(p.offset, MIB);	/* restarted */
	upload_all(s, local, "corrupt.bin", 0, &p);

	/* Damage before the window, with a progress that vouches for the
	 * .part: the final check fails, removes the .part, resets p; the next
	 * call starts over and succeeds. */
	unlink(remote);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "corrupt.bin",
	    3 * MIB, TMO, &p, &e), 0);
	corrupt(part, 5);
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "corrupt.bin", 0,
	    TMO, &p, &e), -1);
	ck_assert_msg(strstr(e.message, "SHA-256 mismatch: local ") != NULL &&
	    strstr(e.message, " remote ") != NULL, "%s", e.message);
	ck_assert_int_eq(p.offset, 0);
	ck_assert(!p.done);
	ck_assert(!exists(part));
	ck_assert(!exists(remote));
	upload_all(s, local, "corrupt.bin", 0, &p);
	sha_file(remote, h2);
	ck_assert_str_eq(h2, h1);

	/* Download: a corrupted local .part restarts from 0. */
	LPATH(back, "corrupt.back");
	pathf(lpart, sizeof(lpart), "%s.part", back);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_download(s, pod.root, "corrupt.bin", back,
	    2 * MIB, TMO, &p, &e), 0);
	corrupt(lpart, 1000);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_download(s, pod.root, "corrupt.bin", back, MIB,
	    TMO, &p, &e), 0);
	ck_assert_int_eq(p.offset, MIB);
	download_all(s, "corrupt.bin", back, 0, &p);
	sha_file(back, h2);
	ck_assert_str_eq(h2, h1);

	/* Download, damage outside the window: final mismatch, removed. */
	unlink(back);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_download(s, pod.root, "corrupt.bin", back,
	    3 * MIB, TMO, &p, &e), 0);
	corrupt(lpart, 5);
	ck_assert_int_eq(xfer_download(s, pod.root, "corrupt.bin", back, 0,
	    TMO, &p, &e), -1);
	ck_assert_msg(strstr(e.message, "SHA-256 mismatch: local ") != NULL,
	    "%s", e.message);
	ck_assert(!exists(lpart));
	ck_assert(!exists(back));
	ck_assert_int_eq(p.offset, 0);
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_symlink_escape)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	char cmd[2048], out[600], local[600];

	pathf(cmd, sizeof(cmd), "ln -s /etc/hostname '%s/link' && "
	    "ln -s /etc '%s/etcdir' && mkdir -p '%s/in' && "
	    "echo hi > '%s/in/ok' && ln -s in/ok '%s/inlink'", pod.root,
	    pod.root, pod.root, pod.root, pod.root);
	ck_assert_int_eq(ssh_exec(s, cmd, 4096, TMO, &r, &e), 0);
	ck_assert_int_eq(r.exit_status, 0);
	LPATH(out, "escape.out");

	ck_assert_int_eq(xfer_download(s, pod.root, "link", out, 0, TMO, &p,
	    &e), -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.message, "symlink escape") != NULL, "%s",
	    e.message);
	ck_assert(!exists(out));
	ck_assert(!exists(part_of(out)));
	ck_assert_int_eq(xfer_download(s, pod.root, "etcdir/hostname", out, 0,
	    TMO, &p, &e), -1);
	ck_assert_msg(strstr(e.message, "symlink escape") != NULL, "%s",
	    e.message);
	/* Upload through a directory symlink that leaves the root. */
	LPATH(local, "escape.bin");
	make_file(local, 100, 7);
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "etcdir/ia-xfer-x",
	    0, TMO, &p, &e), -1);
	ck_assert_msg(strstr(e.message, "outside") != NULL, "%s", e.message);
	ck_assert(!exists("/etc/ia-xfer-x"));
	ck_assert(!exists("/etc/ia-xfer-x.part"));
	/* A symlink that stays inside is fine. */
	ck_assert_msg(xfer_download(s, pod.root, "inlink", out, 0, TMO, &p,
	    &e) == 0, "%s", e.message);
	ck_assert_int_eq(file_size(out), 3);
	ssh_exec_result_clear(&r);
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

START_TEST(test_remote_missing)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	char out[600], part[600];

	LPATH(out, "missing.out");
	pathf(part, sizeof(part), "%s.part", out);
	make_file(part, 1000, 8);	/* left over from an earlier try */
	p.offset = 1000;
	ck_assert_int_eq(xfer_download(s, pod.root, "no/such/file", out, 0,
	    TMO, &p, &e), -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.message, "does not exist") != NULL, "%s",
	    e.message);
	ck_assert(!exists(part));
	ck_assert_int_eq(p.offset, 0);
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

/* Permission errors.  Root ignores file modes, so as root the local
 * side uses a parent that is a regular file and a read-only tmpfs, and
 * the remote side a read-only tmpfs inside the root. */
START_TEST(test_permissions)
{
	struct ssh_session *s = open_session();
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	char dir[600], out[600], local[600], rdir[600];

	LPATH(local, "perm.bin");
	make_file(local, 2 * MIB, 9);
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "perm.bin", 0, TMO,
	    &p, &e), 0);

	/* Local: the parent is a regular file. */
	pathf(out, sizeof(out), "%s/sub", local);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_download(s, pod.root, "perm.bin", out, 0, TMO,
	    &p, &e), -1);
	ck_assert_msg(strstr(e.message, "Not a directory") != NULL, "%s",
	    e.message);

	LPATH(dir, "ro");
	mkdir(dir, 0700);
	if (geteuid() == 0) {
		ck_assert_int_eq(mount("tmpfs", dir, "tmpfs", MS_RDONLY,
		    "size=1m"), 0);
	} else {
		chmod(dir, 0500);
	}
	pathf(out, sizeof(out), "%s/x", dir);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_download(s, pod.root, "perm.bin", out, 0, TMO,
	    &p, &e), -1);
	ck_assert_msg(strstr(e.message, geteuid() == 0 ? "read-only" :
	    "permission denied") != NULL, "%s", e.message);
	if (geteuid() == 0)
		umount2(dir, MNT_DETACH);

	/* Remote: a directory we cannot write to. */
	RPATH(rdir, "ro");
	mkdir(rdir, 0700);
	if (geteuid() == 0) {
		ck_assert_int_eq(mount("tmpfs", rdir, "tmpfs", MS_RDONLY,
		    "size=1m"), 0);
	} else {
		chmod(rdir, 0500);
	}
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "ro/x", 0, TMO, &p,
	    &e), -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	/* OpenSSH's sftp-server reports EROFS as a plain failure; xfer asks
	 * statvfs@openssh.com why. */
	ck_assert_msg(strstr(e.message, geteuid() == 0 ? "read-only" :
	    "permission denied") != NULL, "%s", e.message);
	fprintf(stderr, "check_xfer: remote unwritable: %s\n", e.message);
	if (geteuid() == 0)
		umount2(rdir, MNT_DETACH);
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST

#ifdef TU_ROOT_CASES
/* Root only (check_xfer_root): mounting a small tmpfs needs root. */
START_TEST(test_disk_full)
{
	struct ssh_session *s;
	struct ssh_error e = SSH_ERROR_INIT;
	struct xfer_progress p = XFER_PROGRESS_INIT;
	char dir[600], out[600], part[600], local[600], rdir[600];

	ck_assert_int_eq(geteuid(), 0);
	s = open_session();
	LPATH(local, "full.bin");
	make_file(local, 3 * MIB, 10);
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "full.bin", 0, TMO,
	    &p, &e), 0);

	/* Local disk full on download. */
	LPATH(dir, "small");
	mkdir(dir, 0700);
	ck_assert_int_eq(mount("tmpfs", dir, "tmpfs", 0, "size=1m"), 0);
	pathf(out, sizeof(out), "%s/out", dir);
	pathf(part, sizeof(part), "%s.part", out);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_download(s, pod.root, "full.bin", out, 0, TMO,
	    &p, &e), -1);
	ck_assert_msg(strstr(e.message, "disk full writing ") != NULL &&
	    strstr(e.message, part) != NULL, "%s", e.message);
	ck_assert(!exists(part));
	ck_assert(!exists(out));
	ck_assert_int_eq(p.offset, 0);
	ck_assert(!ssh_session_broken(s));
	umount2(dir, MNT_DETACH);

	/* Remote disk full on upload: the remote .part is removed too. */
	RPATH(rdir, "full");
	mkdir(rdir, 0700);
	ck_assert_int_eq(mount("tmpfs", rdir, "tmpfs", 0, "size=1m"), 0);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(xfer_upload(s, local, pod.root, "full/x", 0, TMO, &p,
	    &e), -1);
	ck_assert_int_eq(e.kind, SSH_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.message, "disk full") != NULL, "%s",
	    e.message);
	fprintf(stderr, "check_xfer: remote disk full: %s\n", e.message);
	pathf(part, sizeof(part), "%s/x.part", rdir);
	ck_assert(!exists(part));
	ck_assert_int_eq(p.offset, 0);
	umount2(rdir, MNT_DETACH);
	ck_assert(!ssh_session_broken(s));
	ssh_error_clear(&e);
	ssh_session_close(s);
}
END_TEST
#endif

#ifdef TU_ROOT_CASES
static Suite *
xfer_root_suite(void)
{
	Suite *s = suite_create("xfer_root");
	TCase *tc = tcase_create("pod");

	tu_require(geteuid() == 0, "the disk-full cases mount a small tmpfs, "
	    "which needs root");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, pod_setup, pod_teardown);
	tcase_add_test(tc, test_disk_full);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { xfer_root_suite }, .setup = tu_ssh_setup,
    .teardown = stop_pod)
#else
static Suite *
xfer_suite(void)
{
	Suite *s = suite_create("xfer");
	TCase *local = tcase_create("local");
	TCase *tc = tcase_create("pod");

	tcase_add_test(local, test_path_rules);
	suite_add_tcase(s, local);
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, pod_setup, pod_teardown);
	tcase_add_test(tc, test_api_refuses_paths);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_steps);
	tcase_add_test(tc, test_resume_after_drop);
	tcase_add_test(tc, test_resume_mid_transfer);
	tcase_add_test(tc, test_buffer_edges);
	tcase_add_test(tc, test_side_channel_refused);
	tcase_add_test(tc, test_corrupt_part);
	tcase_add_test(tc, test_symlink_escape);
	tcase_add_test(tc, test_remote_missing);
	tcase_add_test(tc, test_permissions);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { xfer_suite }, .setup = tu_ssh_setup,
    .teardown = stop_pod)
#endif
