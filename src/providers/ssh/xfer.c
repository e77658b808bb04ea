/* SPDX-License-Identifier: MIT */
/* xfer: SFTP upload and download, resumable, SHA-256 checked; see xfer.h. */
#include "auto-config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "providers/ssh/ssh.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "providers/ssh/xfer.h"
#include "providers/ssh/xferio.h"

#define NAME_MAX_LEN 255
#define EXEC_OUT_MAX 8192	/* output kept of a remote helper command */
#define SHUTDOWN_GRACE_MS 2000	/* closing SFTP after a failure */
#define FOLLOW_POLL_MS 100	/* the upload follower's rounds */
#define FOLLOW_IDLE_MS 10000	/* it gives up after that without growth */
#define FOLLOW_OK "follow-ok"	/* its last line when it read it all */

/* The remote hash, as a shell function reading stdin: openssl is about
 * four times faster than coreutils' sha256sum where it is installed. */
#define SH_SHA "sha() { if command -v openssl >/dev/null 2>&1; then " \
	"openssl dgst -sha256 -r; else sha256sum; fi; }; "

/* One call's state. */
struct xfer {
	struct ssh_session *s;
	LIBSSH2_SESSION *ls;
	int sock;
	LIBSSH2_SFTP *sftp;
	LIBSSH2_SFTP_HANDLE *h;
	int64_t deadline;	/* CLOCK_MONOTONIC ms */
	long timeout_ms;
	bool dead;		/* connection lost or timed out */
	struct ssh_error *e;
};

/* Remote paths of one transfer (owned). */
struct rpaths {
	char *root;		/* remote_root without trailing '/' */
	char *full;		/* root/rel */
	char *part;		/* full.part */
	char *parent;		/* the directory of full */
};

/* ---- helpers --------------------------------------------------------- */

/* The 64 hex digits at the start of one of s's lines (the first such
 * line: a login shell may print something before the command's output),
 * lower-cased, into out; false when there is none. */
static bool
parse_hash(const char *s, char *out)
{
	const char *l;
	int i;
	char c;

	for (l = s; l != NULL && *l != '\0'; l = strchr(l, '\n'),
	    l = l ? l + 1 : NULL) {
		for (i = 0; i < 64; i++) {
			c = l[i];
			if (c >= 'A' && c <= 'F')
				c = (char)(c - 'A' + 'a');
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				break;
			out[i] = c;
		}
		if (i == 64 && (l[64] == '\0' || l[64] == ' ' ||
		    l[64] == '\n')) {
			out[64] = '\0';
			return true;
		}
	}
	return false;
}

/* A printable excerpt of command output for messages; caller frees. */
static char *
excerpt(const struct ssh_exec_result *r)
{
	struct strbuf sb = SB_INIT;
	size_t i, n = r->output_len;

	while (n > 0 && (r->output[n - 1] == '\n' || r->output[n - 1] == ' '))
		n--;
	if (n > 300)
		n = 300;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)r->output[i];

		sb_addc(&sb, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	if (sb.len == 0)
		sb_adds(&sb, "(no output)");
	return sb_take(&sb);
}

/* ---- paths --------------------------------------------------------------- */

static bool
name_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
xfer_path_ok(const char *rel, const char **why)
{
	const char *c, *reason = NULL;
	size_t n, i;

	if (rel == NULL || *rel == '\0')
		reason = "empty path";
	else if (strlen(rel) > XFER_PATH_MAX)
		reason = "path too long";
	else if (*rel == '/')
		reason = "absolute path";
	for (c = rel; reason == NULL; c += n + 1) {
		n = strcspn(c, "/");
		if (n == 0)
			reason = "empty name (\"//\" or a trailing '/')";
		else if (n > NAME_MAX_LEN)
			reason = "name too long";
		else if (c[0] == '-')
			reason = "name starts with '-'";
		else if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			reason = "\".\" or \"..\" in the path";
		for (i = 0; i < n && reason == NULL; i++)
			if (!name_char_ok(c[i]))
				reason = "a character other than A-Z a-z 0-9 "
				    ". _ -";
		if (c[n] == '\0')
			break;
	}
	if (why != NULL)
		*why = reason;
	return reason == NULL;
}

/* Is root an absolute path, without "." or ".." names or control
 * characters, not "/" itself? */
static bool
root_ok(const char *root)
{
	const char *c;
	size_t n;

	if (root == NULL || root[0] != '/' || strlen(root) > XFER_PATH_MAX)
		return false;
	for (c = root; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	for (c = root + 1; ; c += n + 1) {
		n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (c[n] == '\0')
			break;
	}
	return strspn(root, "/") != strlen(root);
}

static void
rpaths_free(struct rpaths *rp)
{
	free(rp->root);
	free(rp->full);
	free(rp->part);
	free(rp->parent);
	memset(rp, 0, sizeof(*rp));
}

/* Check remote_root and rel and build the remote paths.  0, or -1. */
static int
rpaths_make(struct rpaths *rp, const char *root, const char *rel,
    struct ssh_error *e)
{
	const char *why, *slash;
	size_t n;

	memset(rp, 0, sizeof(*rp));
	if (!root_ok(root)) {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "remote root must be an absolute path other than \"/\", "
		    "without \".\", \"..\" or control characters");
		return -1;
	}
	if (!xfer_path_ok(rel, &why)) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "refused path: %s", why);
		return -1;
	}
	n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	rp->root = xstrndup(root, n);
	rp->full = xasprintf("%s/%s", rp->root, rel);
	rp->part = xasprintf("%s.part", rp->full);
	if ((slash = strrchr(rel, '/')) != NULL)
		rp->parent = xasprintf("%s/%.*s", rp->root,
		    (int)(slash - rel), rel);
	else
		rp->parent = xstrdup(rp->root);
	return 0;
}

/* Is the resolved path inside the resolved root (not the root itself)? */
static bool
inside(const char *root_real, const char *path_real, bool or_equal)
{
	size_t n = strlen(root_real);

	if (root_real[0] != '/' || path_real[0] != '/')
		return false;
	if (or_equal && strcmp(root_real, path_real) == 0)
		return true;
	if (n == 1)
		return false;	/* "/": refused, see root_ok */
	return strncmp(root_real, path_real, n) == 0 && path_real[n] == '/';
}

/* ---- the call's state, remote commands ---------------------------------- */

static void
xfer_begin(struct xfer *x, struct ssh_session *s, long timeout_ms,
    struct ssh_error *e)
{
	memset(x, 0, sizeof(*x));
	x->s = s;
	x->ls = ssh_session_handle(s, &x->sock);
	x->timeout_ms = timeout_ms > 0 ? timeout_ms : XFER_TIMEOUT_DEFAULT_MS;
	x->deadline = clock_mono_ms() + x->timeout_ms;
	x->e = e;
}

/* The connection failed or the deadline passed: the session is done. */
static void
xfer_dead(struct xfer *x)
{
	x->dead = true;
	ssh_session_mark_broken(x->s);
}

static int
xfer_timeout(struct xfer *x, const char *what)
{
	ssh_error_set(x->e, SSH_ERR_TIMEOUT, "%s timed out (%ld ms)", what,
	    x->timeout_ms);
	xfer_dead(x);
	return -1;
}

/* Wait for the socket as libssh2 asks.  0, or -1 (timeout, *e set). */
static int
xfer_wait(struct xfer *x, const char *what)
{
	if (ssh_session_wait(x->s, x->deadline) != 0)
		return xfer_timeout(x, what);
	return 0;
}

/* Run a helper command within the deadline; r holds its output. */
static int
run(struct xfer *x, const char *cmd, struct ssh_exec_result *r)
{
	int64_t left = x->deadline - clock_mono_ms();

	if (ssh_session_broken(x->s)) {
		ssh_error_set(x->e, SSH_ERR_CHANNEL,
		    "the ssh session is broken");
		x->dead = true;
		return -1;
	}
	if (left <= 0)
		return xfer_timeout(x, "transfer");
	if (ssh_exec(x->s, cmd, EXEC_OUT_MAX, (long)left, r, x->e) != 0) {
		if (ssh_session_broken(x->s))
			x->dead = true;
		return -1;
	}
	return 0;
}

struct fsync_job {
	int fd;
	int err;	/* errno of a failed fsync, else 0 */
};

static void *
fsync_main(void *arg)
{
	struct fsync_job *j = arg;

	if (fsync(j->fd) != 0)
		j->err = errno;
	return NULL;
}

/* Into cmd: the command printing the SHA-256 of len bytes of path from
 * start (0-based); len < 0 with start 0: the whole file. */
static void
remote_hash_cmd(struct strbuf *cmd, const char *path, int64_t start,
    int64_t len)
{
	sb_adds(cmd, SH_SHA);
	if (start == 0 && len < 0) {
		/* the whole file, read by the hash itself: no pipe, and a
		 * missing file fails the redirection (exit 1) */
		sb_adds(cmd, "sha < ");
		sb_add_shquote(cmd, path);
		return;
	}
	if (start == 0) {
		sb_addf(cmd, "head -c %lld < ", (long long)len);
		sb_add_shquote(cmd, path);
	} else {
		sb_addf(cmd, "tail -c +%lld < ", (long long)start + 1);
		sb_add_shquote(cmd, path);
		sb_addf(cmd, " | head -c %lld", (long long)len);
	}
	sb_adds(cmd, " | sha");
}

/* The hash in r, the result of remote_hash_cmd for path, into out.  0,
 * or -1 with *e. */
static int
remote_hash_result(struct xfer *x, const char *path,
    const struct ssh_exec_result *r, char *out)
{
	char *msg;

	if (r->exit_status == 0 && parse_hash(r->output, out))
		return 0;
	msg = excerpt(r);
	ssh_error_set(x->e, SSH_ERR_PROTOCOL, "remote SHA-256 of %s failed: %s",
	    path, msg);
	free(msg);
	return -1;
}

/* SHA-256 of len bytes of path from start (0-based), remotely; len < 0
 * with start 0: the whole file. */
static int
remote_hash(struct xfer *x, const char *path, int64_t start, int64_t len,
    char *out)
{
	struct strbuf cmd = SB_INIT;
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	int rc = -1;

	remote_hash_cmd(&cmd, path, start, len);
	if (run(x, sb_str(&cmd), &r) == 0)
		rc = remote_hash_result(x, path, &r, out);
	sb_free(&cmd);
	ssh_exec_result_clear(&r);
	return rc;
}

/* ---- local files -------------------------------------------------------- */

/* Read exactly n bytes of fd at off (short only at EOF).  The count, or
 * -1 with errno. */
static ssize_t
read_at(int fd, unsigned char *buf, size_t n, int64_t off)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(fd, buf + got, n - got, (off_t)off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* A clear message for a local write error on path. */
static void
local_write_err(struct ssh_error *e, int err, const char *path)
{
	if (err == ENOSPC)
		ssh_error_set(e, SSH_ERR_PROTOCOL, "disk full writing %s",
		    path);
	else if (err == EDQUOT)
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "disk quota exceeded writing %s", path);
	else if (err == EACCES || err == EPERM)
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "permission denied writing %s", path);
	else
		ssh_error_set(e, SSH_ERR_PROTOCOL, "cannot write %s: %s", path,
		    strerror(err));
}

/* ---- SFTP ---------------------------------------------------------------- */

/* Start the SFTP subsystem.  0, or -1. */
static int
sftp_begin(struct xfer *x)
{
	while ((x->sftp = libssh2_sftp_init(x->ls)) == NULL) {
		if (libssh2_session_last_errno(x->ls) != LIBSSH2_ERROR_EAGAIN) {
			char *msg = NULL;

			libssh2_session_last_error(x->ls, &msg, NULL, 0);
			ssh_error_set(x->e, SSH_ERR_CHANNEL, "cannot start "
			    "SFTP: %s", msg != NULL ? msg : "unknown error");
			/* libssh2 1.10 reports a lost connection and a
			 * refused subsystem alike (CHANNEL_FAILURE): assume
			 * the worse. */
			xfer_dead(x);
			return -1;
		}
		if (xfer_wait(x, "starting SFTP") != 0)
			return -1;
	}
	return 0;
}

/* Text for an SFTP status code. */
static const char *
fx_text(unsigned long fx)
{
	switch (fx) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return "no such file or directory";
	case LIBSSH2_FX_PERMISSION_DENIED:
		return "permission denied";
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
		return "disk full";
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return "disk quota exceeded";
	case LIBSSH2_FX_FAILURE:
		/* OpenSSH's sftp-server (protocol 3) says only this for
		 * ENOSPC, EIO, EISDIR...: */
		return "failure (disk full or I/O error on the pod?)";
	}
	return "SFTP error";
}

/*
 * An SFTP call failed with rc: an SFTP status (the session is fine) or a
 * connection failure (it is not).  Sets *e; returns -1.
 */
static int
sftp_fail(struct xfer *x, int rc, const char *what, const char *path)
{
	char *msg = NULL;
	unsigned long fx;

	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && x->sftp != NULL) {
		fx = libssh2_sftp_last_error(x->sftp);
		ssh_error_set(x->e, SSH_ERR_PROTOCOL, "%s %s on the pod: %s "
		    "(SFTP status %lu)", what, path, fx_text(fx), fx);
		return -1;
	}
	libssh2_session_last_error(x->ls, &msg, NULL, 0);
	ssh_error_set(x->e, SSH_ERR_CHANNEL, "%s %s: connection failed: %s",
	    what, path, msg != NULL && *msg != '\0' ? msg : "unknown error");
	xfer_dead(x);
	return -1;
}

/* Open path on the pod.  0, or -1. */
static int
sftp_open(struct xfer *x, const char *path, unsigned long flags, long mode,
    const char *what)
{
	int rc;

	while ((x->h = libssh2_sftp_open_ex(x->sftp, path,
	    (unsigned int)strlen(path), flags, mode,
	    LIBSSH2_SFTP_OPENFILE)) == NULL) {
		rc = libssh2_session_last_errno(x->ls);
		if (rc != LIBSSH2_ERROR_EAGAIN)
			return sftp_fail(x, rc, what, path);
		if (xfer_wait(x, "opening the remote file") != 0)
			return -1;
	}
	return 0;
}

/* Close the handle.  0, or -1 (the server's status for the close: a
 * remote write error can show only here). */
static int
sftp_close(struct xfer *x, const char *path)
{
	int rc;

	if (x->h == NULL)
		return 0;
	while ((rc = libssh2_sftp_close_handle(x->h)) == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "closing the remote file") != 0)
			return -1;	/* freed with the session */
	x->h = NULL;
	if (rc != 0)
		return sftp_fail(x, rc, "closing", path);
	return 0;
}

/*
 * End SFTP: close the handle and the subsystem.  After a connection
 * failure or timeout the socket is shut down first, so libssh2 fails at
 * once instead of waiting on a peer that will not answer.
 */
static void
sftp_end(struct xfer *x)
{
	int64_t grace = clock_mono_ms() + SHUTDOWN_GRACE_MS;
	int rc;

	if (x->dead && x->sock >= 0)
		shutdown(x->sock, SHUT_RDWR);
	if (x->h != NULL) {
		while (libssh2_sftp_close_handle(x->h) ==
		    LIBSSH2_ERROR_EAGAIN) {
			if (ssh_session_wait(x->s, grace) != 0) {
				xfer_dead(x);
				break;
			}
		}
		x->h = NULL;
	}
	if (x->sftp == NULL)
		return;
	while ((rc = libssh2_sftp_shutdown(x->sftp)) == LIBSSH2_ERROR_EAGAIN) {
		if (ssh_session_wait(x->s, grace) != 0) {
			/* The session frees what is left. */
			xfer_dead(x);
			break;
		}
	}
	(void)rc;
	x->sftp = NULL;
}

/* Remove path on the pod (best effort, after a hard failure). */
static void
sftp_remove(struct xfer *x, const char *path)
{
	while (!x->dead && x->sftp != NULL &&
	    libssh2_sftp_unlink_ex(x->sftp, path, (unsigned int)strlen(path))
	    == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "removing the remote .part") != 0)
			break;
}

/*
 * lstat (LIBSSH2_SFTP_LSTAT) or stat (LIBSSH2_SFTP_STAT) path.  0 with
 * *a, 1 when it does not exist, -1 on other errors.
 */
static int
sftp_stat(struct xfer *x, const char *path, int type,
    LIBSSH2_SFTP_ATTRIBUTES *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	while ((rc = libssh2_sftp_stat_ex(x->sftp, path,
	    (unsigned int)strlen(path), type, a)) == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "stat on the pod") != 0)
			return -1;
	if (rc == 0)
		return 0;
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long fx = libssh2_sftp_last_error(x->sftp);

		if (fx == LIBSSH2_FX_NO_SUCH_FILE ||
		    fx == LIBSSH2_FX_NO_SUCH_PATH)
			return 1;
	}
	return sftp_fail(x, rc, "stat", path);
}

/* The realpath of path on the pod (symlinks resolved); caller frees.
 * NULL on failure (*e set; "no such file" when it does not exist). */
static char *
sftp_real(struct xfer *x, const char *path)
{
	char *buf = xmalloc(XFER_PATH_MAX * 4 + 1);
	int rc;

	while ((rc = libssh2_sftp_symlink_ex(x->sftp, path,
	    (unsigned int)strlen(path), buf, XFER_PATH_MAX * 4,
	    LIBSSH2_SFTP_REALPATH)) == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "realpath on the pod") != 0)
			goto fail;
	if (rc < 0) {
		sftp_fail(x, rc, "resolving", path);
		goto fail;
	}
	buf[rc] = '\0';
	return buf;
fail:
	free(buf);
	return NULL;
}

static int
sftp_mkdir(struct xfer *x, const char *path)
{
	int rc;

	while ((rc = libssh2_sftp_mkdir_ex(x->sftp, path,
	    (unsigned int)strlen(path), 0700)) == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "mkdir on the pod") != 0)
			return -1;
	if (rc != 0)
		return sftp_fail(x, rc, "creating directory", path);
	return 0;
}

/*
 * OpenSSH's sftp-server says only "failure" for ENOSPC and EROFS: ask the
 * file system of dir (statvfs@openssh.com) and, when it is full or
 * read-only, say so in *e.
 */
static void
sftp_diagnose(struct xfer *x, const char *dir, const char *what,
    const char *path)
{
	LIBSSH2_SFTP_STATVFS v;
	int rc;

	if (x->dead || x->sftp == NULL)
		return;
	memset(&v, 0, sizeof(v));
	while ((rc = libssh2_sftp_statvfs(x->sftp, dir, strlen(dir), &v)) ==
	    LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "statvfs on the pod") != 0)
			return;
	if (rc != 0)
		return;
	if (v.f_flag & LIBSSH2_SFTP_ST_RDONLY)
		ssh_error_set(x->e, SSH_ERR_PROTOCOL,
		    "%s %s on the pod: read-only file system", what, path);
	else if (v.f_bavail * v.f_frsize < 2 * XFER_WRITE_BUF)
		ssh_error_set(x->e, SSH_ERR_PROTOCOL,
		    "%s %s on the pod: disk full (%llu bytes free)", what, path,
		    (unsigned long long)(v.f_bavail * v.f_frsize));
}

/* ---- a command beside the data ------------------------------------------ */

/* The connection failed under a side command: *e set, x dead, -1. */
static int
side_lost(struct xfer *x, const char *what)
{
	char *msg = NULL;

	libssh2_session_last_error(x->ls, &msg, NULL, 0);
	ssh_error_set(x->e, SSH_ERR_CHANNEL, "%s: connection failed: %s",
	    what, msg != NULL && *msg != '\0' ? msg : "unknown error");
	xfer_dead(x);
	return -1;
}

/*
 * Start cmd on a channel of its own beside the SFTP one, to be read with
 * side_finish() once the data has moved: libssh2 queues the command's few
 * bytes of output meanwhile, so the pod works (hashes its file) while the
 * data flows.  0 with *ch (free it with side_finish or side_abandon); 1
 * when the server refused the channel (MaxSessions: run cmd afterwards
 * instead); -1 when the connection failed or timed out (x dead).
 */
static int
side_start(struct xfer *x, const char *cmd, LIBSSH2_CHANNEL **ch)
{
	int rc;

	*ch = NULL;
	if (ssh_session_broken(x->s)) {
		ssh_error_set(x->e, SSH_ERR_CHANNEL,
		    "the ssh session is broken");
		x->dead = true;
		return -1;
	}
	while ((*ch = libssh2_channel_open_session(x->ls)) == NULL) {
		rc = libssh2_session_last_errno(x->ls);
		if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE)
			return 1;
		if (rc != LIBSSH2_ERROR_EAGAIN)
			return side_lost(x, "opening a channel");
		if (xfer_wait(x, "opening a channel") != 0)
			return -1;
	}
	while ((rc = libssh2_channel_exec(*ch, cmd)) == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "starting a remote command") != 0)
			break;
	if (rc != 0) {
		*ch = NULL;	/* freed with the session */
		return x->dead ? -1 : side_lost(x, "starting a remote command");
	}
	return 0;
}

/*
 * Read ch's output (stdout and stderr, EXEC_OUT_MAX bytes kept) to its
 * end, collect the exit status and free ch.  0 with *r (clear it with
 * ssh_exec_result_clear), or -1 (x dead; ch is freed with the session).
 */
static int
side_finish(struct xfer *x, LIBSSH2_CHANNEL *ch, struct ssh_exec_result *r)
{
	struct strbuf out = SB_INIT;
	char buf[4096], *sig = NULL;
	ssize_t n;
	bool progress;
	int stream, rc;

	ssh_exec_result_clear(r);
	for (;;) {
		progress = false;
		for (stream = 0; stream < 2; stream++) {
			while ((n = libssh2_channel_read_ex(ch, stream, buf,
			    sizeof(buf))) > 0) {
				if (out.len < EXEC_OUT_MAX)
					sb_addn(&out, buf, (size_t)n <
					    EXEC_OUT_MAX - out.len ? (size_t)n :
					    EXEC_OUT_MAX - out.len);
				r->output_total += (size_t)n;
				progress = true;
			}
			if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
				goto lost;
		}
		if (libssh2_channel_eof(ch))
			break;
		if (clock_mono_ms() >= x->deadline) {
			xfer_timeout(x, "the remote command");
			goto fail;
		}
		if (progress || libssh2_poll_channel_read(ch, 1))
			continue;
		if (xfer_wait(x, "the remote command") != 0)
			goto fail;
	}
	while ((rc = libssh2_channel_close(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "closing a channel") != 0)
			goto fail;
	while (rc == 0 && (rc = libssh2_channel_wait_closed(ch)) ==
	    LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "closing a channel") != 0)
			goto fail;
	if (rc != 0)
		goto lost;	/* no exit status to trust */
	r->exit_status = libssh2_channel_get_exit_status(ch);
	if (libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL,
	    NULL) == 0 && sig != NULL) {
		r->exit_signal = xstrdup(sig);
		r->exit_status = -1;
	}
	libssh2_free(x->ls, sig);
	while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN)
		if (xfer_wait(x, "closing a channel") != 0)
			goto fail;
	r->output_len = out.len;
	r->output = sb_take(&out);
	r->truncated = r->output_total > r->output_len;
	return 0;
lost:
	side_lost(x, "reading a remote command's output");
fail:
	sb_free(&out);
	ssh_exec_result_clear(r);
	return -1;
}

/* Close and free ch unread, after a failure elsewhere (best effort,
 * bounded; nothing to do when NULL or when x is dead). */
static void
side_abandon(struct xfer *x, LIBSSH2_CHANNEL *ch)
{
	int64_t grace = clock_mono_ms() + SHUTDOWN_GRACE_MS;

	if (ch == NULL || x->dead)
		return;
	while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_session_wait(x->s, grace) != 0) {
			xfer_dead(x);
			break;
		}
}

/* ---- resuming ------------------------------------------------------------ */

/*
 * Does the destination's prefix of have bytes match the source?  rpath
 * is the remote side, lfd the local one (which is which depends on the
 * direction).  0 with *ok, or -1.
 */
static int
prefix_ok(struct xfer *x, const struct xfer_progress *p, const char *rpath,
    int lfd, const char *lpath, int64_t have, int64_t total, bool *ok)
{
	char lh[65], rh[65];
	int64_t start = 0, len = have;

	*ok = have == 0;
	if (have <= 0 || have > total)
		return 0;
	if (p->offset == have && p->total == total &&
	    have > XFER_RESUME_WINDOW) {
		start = have - XFER_RESUME_WINDOW;
		len = XFER_RESUME_WINDOW;
	}
	if (xio_hash(lfd, start, len, lh) != 0) {
		ssh_error_set(x->e, SSH_ERR_PROTOCOL, "cannot read %s: %s",
		    lpath, strerror(errno));
		return -1;
	}
	if (remote_hash(x, rpath, start, len, rh) != 0)
		return -1;
	*ok = strcmp(lh, rh) == 0;
	return 0;
}

static int64_t
chunk_end(int64_t offset, int64_t total, int64_t max_bytes)
{
	if (max_bytes <= 0 || total - offset <= max_bytes)
		return total;
	return offset + max_bytes;
}

/* ---- upload -------------------------------------------------------------- */

/*
 * Over SFTP (no exec: a remote shell start costs far more than a few SFTP
 * round trips): resolve the root, make the parent directories one name at
 * a time, each checked to resolve inside the root before the next is
 * made in it, drop a symlink at the .part name, and learn the .part's
 * size (-1: none).  0, or -1.
 */
static int
upload_prepare(struct xfer *x, const struct rpaths *rp, int64_t *have)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	struct strbuf dir = SB_INIT;
	char *rroot = NULL, *real = NULL;
	const char *c, *rel = rp->parent + strlen(rp->root);
	size_t n;
	int st, rc = -1;

	*have = -1;
	if ((rroot = sftp_real(x, rp->root)) == NULL) {
		if (!x->dead)
			ssh_error_set(x->e, SSH_ERR_PROTOCOL,
			    "remote root %s: %s", rp->root,
			    "cannot resolve it (missing?)");
		goto cleanup;
	}
	if ((st = sftp_stat(x, rroot, LIBSSH2_SFTP_STAT, &a)) != 0 ||
	    !LIBSSH2_SFTP_S_ISDIR(a.permissions) || strcmp(rroot, "/") == 0) {
		if (st >= 0)
			ssh_error_set(x->e, SSH_ERR_PROTOCOL,
			    "remote root %s is not a directory", rp->root);
		goto cleanup;
	}
	sb_adds(&dir, rp->root);
	for (c = rel; *c == '/'; c += n) {
		c++;
		n = strcspn(c, "/");
		sb_addc(&dir, '/');
		sb_addn(&dir, c, n);
		if ((st = sftp_stat(x, sb_str(&dir), LIBSSH2_SFTP_LSTAT,
		    &a)) < 0)
			goto cleanup;
		if (st == 1) {
			if (sftp_mkdir(x, sb_str(&dir)) != 0)
				goto cleanup;
			continue;	/* made in a checked directory */
		}
		if (LIBSSH2_SFTP_S_ISDIR(a.permissions))
			continue;	/* a real directory in a checked one */
		if (!LIBSSH2_SFTP_S_ISLNK(a.permissions)) {
			ssh_error_set(x->e, SSH_ERR_PROTOCOL,
			    "remote %s is not a directory", sb_str(&dir));
			goto cleanup;
		}
		free(real);
		if ((real = sftp_real(x, sb_str(&dir))) == NULL)
			goto cleanup;
		if (!inside(rroot, real, true)) {
			ssh_error_set(x->e, SSH_ERR_PROTOCOL,
			    "remote directory %s resolves to %s, outside %s "
			    "(symlink escape): refused", sb_str(&dir), real,
			    rroot);
			goto cleanup;
		}
		if ((st = sftp_stat(x, real, LIBSSH2_SFTP_STAT, &a)) != 0 ||
		    !LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
			if (st >= 0)
				ssh_error_set(x->e, SSH_ERR_PROTOCOL,
				    "remote %s is not a directory",
				    sb_str(&dir));
			goto cleanup;
		}
	}
	if ((st = sftp_stat(x, rp->part, LIBSSH2_SFTP_LSTAT, &a)) < 0)
		goto cleanup;
	if (st == 0 && LIBSSH2_SFTP_S_ISLNK(a.permissions)) {
		sftp_remove(x, rp->part);
		st = 1;
	}
	if (st == 0 && LIBSSH2_SFTP_S_ISREG(a.permissions) &&
	    (a.flags & LIBSSH2_SFTP_ATTR_SIZE))
		*have = (int64_t)a.filesize;
	rc = 0;
cleanup:
	sb_free(&dir);
	free(rroot);
	free(real);
	return x->dead ? -1 : rc;
}

/*
 * Write [*offset, end) of fd to the open handle, pipelined.  *offset
 * advances with the bytes the server ACKed.  Every byte read is fed to
 * hasher when it is not NULL.
 */
static int
upload_data(struct xfer *x, int fd, const char *lpath, const char *rpath,
    int64_t *offset, int64_t end, struct xio_hasher *hasher)
{
	/* libssh2 gets up to XFER_WRITE_BUF bytes (the pipeline: it sends
	 * them all ahead of the ACKs) of a buffer of XFER_WRITE_BUFS times
	 * that, refilled with large reads once less than that is left;
	 * refilling first moves the unACKed rest to the front when the room
	 * after it is short, so at most one byte in three is moved. */
	const size_t cap = XFER_WRITE_BUFS * (size_t)XFER_WRITE_BUF;
	unsigned char *buf = xmalloc(cap);
	size_t pos = 0, len = 0, want;
	int64_t readoff = *offset;
	ssize_t n;
	int rc = -1;

	while (*offset < end) {
		if (len - pos < XFER_WRITE_BUF && readoff < end) {
			if (hasher != NULL)
				xio_hasher_wait(hasher);
			if (cap - len < XFER_WRITE_BUF) {
				memmove(buf, buf + pos, len - pos);
				len -= pos;
				pos = 0;
			}
			want = cap - len;
			if ((int64_t)want > end - readoff)
				want = (size_t)(end - readoff);
			if ((n = read_at(fd, buf + len, want, readoff)) < 0) {
				ssh_error_set(x->e, SSH_ERR_PROTOCOL,
				    "cannot read %s: %s", lpath,
				    strerror(errno));
				goto cleanup;
			}
			if ((size_t)n < want) {
				ssh_error_set(x->e, SSH_ERR_PROTOCOL,
				    "%s shrank during the upload", lpath);
				goto cleanup;
			}
			if (hasher != NULL)
				xio_hasher_feed(hasher, buf + len, (size_t)n);
			len += (size_t)n;
			readoff += n;
		}
		/* The same bytes again after a short return: the first
		 * ones may be on the wire already (libssh2 skips them). */
		n = libssh2_sftp_write(x->h, (const char *)buf + pos,
		    len - pos < XFER_WRITE_BUF ? len - pos : XFER_WRITE_BUF);
		if (n == LIBSSH2_ERROR_EAGAIN || n == 0) {
			if (xfer_wait(x, "upload") != 0)
				goto cleanup;
			continue;
		}
		if (n < 0) {
			sftp_fail(x, (int)n, "writing", rpath);
			goto cleanup;
		}
		pos += (size_t)n;
		*offset += n;
	}
	rc = 0;
cleanup:
	if (hasher != NULL)
		xio_hasher_wait(hasher);	/* done with buf */
	free(buf);
	return rc;
}

/*
 * Into cmd: the pod's SHA-256 of the .part's first total bytes, read as
 * the upload writes them (sftp-server writes the pipelined requests in
 * order, so the file only grows): every FOLLOW_POLL_MS a loop reads what
 * the .part has past what it read (a round costs two process starts:
 * fewer, larger rounds), and gives up after idle_ms without growth (the
 * upload failed or stalled: that bounds how long it outlives the call;
 * the .part is then hashed after the data, as without it) or when the
 * .part goes away.  Its output: FOLLOW_OK when it read all total bytes,
 * and the hash.
 */
static void
follow_hash_cmd(struct strbuf *cmd, const char *part, int64_t total,
    long idle_ms)
{
	sb_adds(cmd, SH_SHA "f=");
	sb_add_shquote(cmd, part);
	sb_addf(cmd, "; n=%lld; g=0; i=0; exec 3<\"$f\" 5>&1 || exit 2; "
	    "{ while [ $g -lt $n ]; do "
	    "s=$(stat -c %%s -- \"$f\") || exit 2; "
	    "[ $s -le $n ] || s=$n; "
	    "if [ $s -gt $g ]; then head -c $((s - g)) <&3 || exit 2; "
	    "g=$s; i=0; "
	    "else i=$((i + 1)); [ $i -le %ld ] || exit 4; fi; "
	    "[ $g -ge $n ] || sleep %d.%03d; "
	    "done; echo " FOLLOW_OK " >&5; } | sha", (long long)total,
	    idle_ms / FOLLOW_POLL_MS + 1, FOLLOW_POLL_MS / 1000,
	    FOLLOW_POLL_MS % 1000);
}

/* The follower's hash (follow_hash_cmd) in r, into out: true when it read
 * the whole .part and printed a hash. */
static bool
follow_hash_result(const struct ssh_exec_result *r, char *out)
{
	const char *l;

	if (r->exit_status != 0 || r->output == NULL)
		return false;
	for (l = r->output; l != NULL; l = strchr(l, '\n'), l = l ? l + 1 :
	    NULL)
		if (strncmp(l, FOLLOW_OK "\n", sizeof(FOLLOW_OK)) == 0)
			return parse_hash(r->output, out);
	return false;
}

/*
 * Compare hashes remotely and, when they agree, rename .part into place;
 * on a mismatch the .part is removed.  rhash: the .part's hash when the
 * follower made it, else NULL (the pod hashes the .part now).  0, or -1.
 */
static int
upload_commit(struct xfer *x, const struct rpaths *rp, const char *lhash,
    const char *rhash_known, struct xfer_progress *p)
{
	struct strbuf cmd = SB_INIT;
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	char rhash[65], *msg = NULL;
	int rc = -1;

	if (rhash_known != NULL) {
		sb_adds(&cmd, "h=");
		sb_add_shquote(&cmd, rhash_known);
	} else {
		sb_adds(&cmd, SH_SHA "h=$(sha < ");
		sb_add_shquote(&cmd, rp->part);
		sb_adds(&cmd, ") || exit 2; h=${h%% *}");
	}
	sb_adds(&cmd, "; echo \"$h\"; if [ \"$h\" = ");
	sb_add_shquote(&cmd, lhash);
	sb_adds(&cmd, " ]; then mv -f -- ");
	sb_add_shquote(&cmd, rp->part);
	sb_addc(&cmd, ' ');
	sb_add_shquote(&cmd, rp->full);
	sb_adds(&cmd, " || exit 4; else rm -f -- ");
	sb_add_shquote(&cmd, rp->part);
	sb_adds(&cmd, "; exit 3; fi");
	if (run(x, sb_str(&cmd), &r) != 0)
		goto cleanup;
	msg = excerpt(&r);
	if (r.exit_status == 3) {
		if (!parse_hash(r.output, rhash))
			snprintf(rhash, sizeof(rhash), "(unreadable)");
		ssh_error_set(x->e, SSH_ERR_PROTOCOL,
		    "SHA-256 mismatch: local %s remote %s for %s (removed; the "
		    "next call restarts from 0)", lhash, rhash, rp->full);
		p->offset = 0;
		goto cleanup;
	}
	if (r.exit_status != 0 || !parse_hash(r.output, rhash)) {
		ssh_error_set(x->e, SSH_ERR_PROTOCOL,
		    "verifying and renaming remote %s failed (exit %d): %s",
		    rp->part, r.exit_status, msg);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(msg);
	sb_free(&cmd);
	ssh_exec_result_clear(&r);
	return rc;
}

int
xfer_upload(struct ssh_session *s, const char *local_path,
    const char *remote_root, const char *rel_path, int64_t max_bytes,
    long timeout_ms, struct xfer_progress *p, struct ssh_error *e)
{
	struct xfer x;
	struct rpaths rp;
	struct stat st;
	struct xio_hasher *hasher = NULL;
	struct strbuf cmd = SB_INIT;
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	LIBSSH2_CHANNEL *side = NULL;
	char lhash[65], rhash[65];
	int64_t total, have = -1, offset = 0, end;
	unsigned long flags;
	bool ok;
	int fd = -1, rc = -1, err;

	ssh_error_clear(e);
	xfer_begin(&x, s, timeout_ms, e);
	p->done = false;
	p->sha256[0] = '\0';
	if (rpaths_make(&rp, remote_root, rel_path, e) != 0)
		return -1;
	if (local_path == NULL) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "no local path");
		goto cleanup;
	}
	if ((fd = open(local_path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "%s reading %s",
		    errno == EACCES ? "permission denied" : strerror(errno),
		    local_path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "%s is not a regular file",
		    local_path);
		goto cleanup;
	}
	total = (int64_t)st.st_size;
	if (sftp_begin(&x) != 0 || upload_prepare(&x, &rp, &have) != 0)
		goto cleanup;
	if (prefix_ok(&x, p, rp.part, fd, local_path, have, total, &ok) != 0)
		goto cleanup;
	offset = ok ? (have > 0 ? have : 0) : 0;
	end = chunk_end(offset, total, max_bytes);
	/* This call ends the file: hash it on a thread meanwhile (the
	 * prefix the pod has, then the bytes as they are read to send). */
	if (end == total)
		hasher = xio_hasher_start(fd, offset);
	flags = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT;
	if (offset == 0)
		flags |= LIBSSH2_FXF_TRUNC;
	if (sftp_open(&x, rp.part, flags, 0600, "opening") != 0) {
		if (x.dead)
			goto cleanup;
		sftp_diagnose(&x, rp.parent, "opening", rp.part);
		goto hard;
	}
	/* ... and the pod hashes the .part as it grows (refused: after). */
	if (end == total) {
		follow_hash_cmd(&cmd, rp.part, total, FOLLOW_IDLE_MS);
		if (side_start(&x, sb_str(&cmd), &side) < 0)
			goto cleanup;
	}
	libssh2_sftp_seek64(x.h, (libssh2_uint64_t)offset);
	p->total = total;
	if (upload_data(&x, fd, local_path, rp.part, &offset, end, hasher) !=
	    0) {
		p->offset = offset;
		if (!x.dead) {
			sftp_diagnose(&x, rp.parent, "writing", rp.part);
			sftp_close(&x, rp.part);
			goto hard;
		}
		goto cleanup;
	}
	p->offset = offset;
	if (sftp_close(&x, rp.part) != 0) {
		if (x.dead)
			goto cleanup;
		sftp_diagnose(&x, rp.parent, "closing", rp.part);
		goto hard;
	}
	sftp_end(&x);
	if (offset < total) {
		rc = 0;
		goto cleanup;
	}
	err = xio_hasher_finish(hasher, lhash);
	hasher = NULL;
	if (err != 0) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "cannot read %s: %s",
		    local_path, err == EIO ? "it shrank" : strerror(err));
		goto cleanup;
	}
	ok = false;
	if (side != NULL) {
		rc = side_finish(&x, side, &r);
		side = NULL;
		if (rc != 0) {
			rc = -1;
			goto cleanup;
		}
		rc = -1;
		/* Only a match is taken from it: anything else is
		 * decided by hashing the .part itself. */
		ok = follow_hash_result(&r, rhash) && strcmp(rhash, lhash) == 0;
	}
	if (upload_commit(&x, &rp, lhash, ok ? rhash : NULL, p) != 0)
		goto cleanup;
	memcpy(p->sha256, lhash, sizeof(p->sha256));
	p->done = true;
	rc = 0;
	goto cleanup;
hard:
	/* The server refused (permission, disk full): no partial file is
	 * kept; the next call starts again from 0. */
	sftp_remove(&x, rp.part);
	p->offset = 0;
cleanup:
	xio_hasher_cancel(hasher);
	side_abandon(&x, side);
	sftp_end(&x);
	sb_free(&cmd);
	ssh_exec_result_clear(&r);
	if (fd >= 0)
		close(fd);
	rpaths_free(&rp);
	return rc;
}

/* ---- download ------------------------------------------------------------ */

/* What hard failures leave: no partial file, progress back to 0. */
static void
download_discard(const char *part, struct xfer_progress *p)
{
	unlink(part);
	p->offset = 0;
}

/*
 * Over SFTP: resolve the root and the remote file, check the file is a
 * regular file inside the root and learn its size.  *real is its
 * realpath (caller frees).  0, or -1 with *hard set when the failure is
 * the file's, not the connection's.
 */
static int
download_stat(struct xfer *x, const struct rpaths *rp, char **real,
    int64_t *size, bool *hard)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	char *rroot = NULL;
	int st, rc = -1;

	*real = NULL;
	*hard = false;
	if ((rroot = sftp_real(x, rp->root)) == NULL) {
		if (!x->dead)
			ssh_error_set(x->e, SSH_ERR_PROTOCOL,
			    "remote root %s: %s", rp->root,
			    "cannot resolve it (missing?)");
		goto cleanup;
	}
	/* OpenSSH resolves a missing last name as if it were there. */
	if ((st = sftp_stat(x, rp->full, LIBSSH2_SFTP_LSTAT, &a)) != 0 ||
	    (*real = sftp_real(x, rp->full)) == NULL) {
		*hard = !x->dead;
		if (st == 1 || (st == 0 && x->e->message != NULL &&
		    strstr(x->e->message, "no such file") != NULL))
			ssh_error_set(x->e, SSH_ERR_PROTOCOL,
			    "remote file %s does not exist", rp->full);
		goto cleanup;
	}
	*hard = true;
	if (!inside(rroot, *real, false) || strcmp(rroot, "/") == 0) {
		ssh_error_set(x->e, SSH_ERR_PROTOCOL,
		    "remote file %s resolves to %s, outside %s (symlink "
		    "escape): refused", rp->full, *real, rroot);
		goto cleanup;
	}
	if ((st = sftp_stat(x, *real, LIBSSH2_SFTP_STAT, &a)) != 0) {
		*hard = !x->dead;
		if (st == 1)
			ssh_error_set(x->e, SSH_ERR_PROTOCOL, "remote file %s "
			    "does not exist (dangling symlink)", rp->full);
		goto cleanup;
	}
	if (!LIBSSH2_SFTP_S_ISREG(a.permissions) ||
	    !(a.flags & LIBSSH2_SFTP_ATTR_SIZE)) {
		ssh_error_set(x->e, SSH_ERR_PROTOCOL,
		    "remote %s is not a regular file", rp->full);
		goto cleanup;
	}
	*size = (int64_t)a.filesize;
	*hard = false;
	rc = 0;
cleanup:
	if (rc != 0) {
		free(*real);
		*real = NULL;
	}
	free(rroot);
	return rc;
}

/* Open (create) the local .part.  The descriptor, or -1 with *e. */
static int
download_open_part(const char *part, struct ssh_error *e)
{
	int fd, err;

	fd = open(part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	err = errno;
	if (err == EACCES || err == EPERM)
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "permission denied creating %s", part);
	else if (err == EROFS)
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "cannot create %s: read-only file system", part);
	else if (err == ELOOP)
		ssh_error_set(e, SSH_ERR_PROTOCOL, "%s is a symlink: refused",
		    part);
	else if (err == ENOSPC)
		ssh_error_set(e, SSH_ERR_PROTOCOL, "disk full creating %s",
		    part);
	else
		ssh_error_set(e, SSH_ERR_PROTOCOL, "cannot create %s: %s", part,
		    strerror(err));
	return -1;
}

/*
 * Read [*offset, end) of the open handle into fd, through an xio_writer:
 * this thread decrypts and fills buffers, the writer's writes them (and
 * hashes the whole file into lhash, 65 bytes, when lhash is not NULL).  A
 * buffer is handed over once less than a quarter of it is left, since
 * libssh2 1.10 asks ahead for four times the room it is given: at least
 * XFER_READ_BUF bytes stay requested (OpenSSH's sftp: 64 x 32 KiB).
 * *offset advances by the bytes written, also on failure (what was read
 * before a connection failure is kept).  -1 with *hard when the local
 * side failed (disk full...) or the file is not what it was.
 */
static int
download_data(struct xfer *x, int fd, const char *part, const char *rpath,
    int64_t *offset, int64_t end, char *lhash, bool *hard)
{
	struct xio_writer *w = xio_writer_start(fd, *offset, lhash != NULL,
	    XFER_READ_BUF, XFER_READ_BUFS);
	int64_t got = *offset, written;
	char *buf = NULL;
	size_t fill = 0, want;
	ssize_t n;
	int err, rc = -1;

	*hard = false;
	while (got < end) {
		if (buf == NULL && (buf = xio_writer_buf(w)) == NULL)
			break;		/* a write failed: below */
		want = XFER_READ_BUF - fill;
		if ((int64_t)want > end - got)
			want = (size_t)(end - got);
		n = libssh2_sftp_read(x->h, buf + fill, want);
		if (n == LIBSSH2_ERROR_EAGAIN) {
			if (xfer_wait(x, "download") != 0)
				goto finish;
			continue;
		}
		if (n < 0) {
			sftp_fail(x, (int)n, "reading", rpath);
			*hard = !x->dead;
			goto finish;
		}
		if (n == 0) {
			ssh_error_set(x->e, SSH_ERR_PROTOCOL,
			    "remote file %s shrank during the download", rpath);
			*hard = true;
			goto finish;
		}
		fill += (size_t)n;
		got += n;
		if (fill > XFER_READ_BUF - XFER_READ_BUF / 4 || got == end) {
			xio_writer_push(w, buf, fill);
			buf = NULL;
			fill = 0;
		}
	}
	rc = 0;
finish:
	if (buf != NULL && fill > 0)
		xio_writer_push(w, buf, fill);
	err = xio_writer_finish(w, &written, lhash);
	*offset += written;
	if (err != 0) {
		local_write_err(x->e, err, part);
		*hard = true;
		rc = -1;
	}
	return rc;
}

/*
 * The end of a download: fsync the .part on a thread while the pod's hash
 * is collected (*side: the command started before the data, consumed
 * here; NULL: run it now), and hash the .part locally when the data phase
 * did not (lhash ""; a call that moved no byte).  0 with lhash and rhash
 * (65 bytes each), or -1 with *e, and *hard when the local side failed.
 */
static int
download_hashes(struct xfer *x, int fd, const char *part, const char *real,
    int64_t total, LIBSSH2_CHANNEL **side, char *lhash, char *rhash,
    bool *hard)
{
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct fsync_job fj = { fd, 0 };
	pthread_t th;
	bool threaded = pthread_create(&th, NULL, fsync_main, &fj) == 0;
	int rc;

	*hard = false;
	if (!threaded)
		fsync_main(&fj);
	if (*side != NULL) {
		rc = side_finish(x, *side, &r);
		*side = NULL;
		if (rc == 0)
			rc = remote_hash_result(x, real, &r, rhash);
		ssh_exec_result_clear(&r);
	} else {
		rc = remote_hash(x, real, 0, -1, rhash);
	}
	if (threaded)
		pthread_join(th, NULL);
	if (fj.err != 0) {
		local_write_err(x->e, fj.err, part);
		*hard = true;
		return -1;
	}
	if (rc != 0)
		return -1;
	if (lhash[0] == '\0' && xio_hash(fd, 0, total, lhash) != 0) {
		ssh_error_set(x->e, SSH_ERR_PROTOCOL, "cannot read %s: %s",
		    part, strerror(errno));
		*hard = true;
		return -1;
	}
	return 0;
}

int
xfer_download(struct ssh_session *s, const char *remote_root,
    const char *rel_path, const char *local_path, int64_t max_bytes,
    long timeout_ms, struct xfer_progress *p, struct ssh_error *e)
{
	struct xfer x;
	struct rpaths rp;
	struct stat st;
	LIBSSH2_CHANNEL *side = NULL;
	struct strbuf cmd = SB_INIT;
	char lhash[65] = "", rhash[65], *part = NULL, *real = NULL;
	int64_t total = 0, offset, end;
	bool ok, hard = false;
	int fd = -1, rc = -1;

	ssh_error_clear(e);
	xfer_begin(&x, s, timeout_ms, e);
	p->done = false;
	p->sha256[0] = '\0';
	if (rpaths_make(&rp, remote_root, rel_path, e) != 0)
		return -1;
	if (local_path == NULL || *local_path == '\0') {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "no local path");
		goto cleanup;
	}
	part = xasprintf("%s.part", local_path);
	if (sftp_begin(&x) != 0)
		goto cleanup;
	if (download_stat(&x, &rp, &real, &total, &hard) != 0)
		goto fail;
	if ((fd = download_open_part(part, e)) < 0)
		goto fail_hard;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "%s is not a regular file",
		    part);
		close(fd);
		fd = -1;
		goto cleanup;	/* not ours to remove */
	}
	if (prefix_ok(&x, p, real, fd, part, (int64_t)st.st_size, total,
	    &ok) != 0)
		goto cleanup;
	offset = ok ? (int64_t)st.st_size : 0;
	if (!ok && ftruncate(fd, 0) != 0) {
		local_write_err(e, errno, part);
		goto fail_hard;
	}
	end = chunk_end(offset, total, max_bytes);
	p->total = total;
	p->offset = offset;
	if (offset < end) {
		/* This call ends the file: the pod hashes its copy while it
		 * is sent, and the writer the .part as it is written. */
		if (end == total) {
			remote_hash_cmd(&cmd, real, 0, -1);
			if (side_start(&x, sb_str(&cmd), &side) < 0)
				goto cleanup;
		}
		if (sftp_open(&x, real, LIBSSH2_FXF_READ, 0, "opening") != 0) {
			hard = !x.dead;
			goto fail;
		}
		libssh2_sftp_seek64(x.h, (libssh2_uint64_t)offset);
		ok = download_data(&x, fd, part, real, &offset, end,
		    end == total ? lhash : NULL, &hard) == 0;
		p->offset = offset;
		sftp_end(&x);
		if (!ok)
			goto fail;
	}
	if (offset < total) {
		rc = 0;
		goto cleanup;
	}
	if (download_hashes(&x, fd, part, real, total, &side, lhash, rhash,
	    &hard) != 0)
		goto fail;
	if (strcmp(lhash, rhash) != 0) {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "SHA-256 mismatch: local %s remote %s for %s (%s removed)",
		    lhash, rhash, rp.full, part);
		goto fail_hard;
	}
	if (rename(part, local_path) != 0) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "cannot rename %s to %s: %s",
		    part, local_path,
		    errno == EACCES ? "permission denied" : strerror(errno));
		goto fail_hard;
	}
	memcpy(p->sha256, lhash, sizeof(p->sha256));
	p->done = true;
	rc = 0;
	goto cleanup;
fail:
	if (!hard)
		goto cleanup;
fail_hard:
	download_discard(part, p);
cleanup:
	side_abandon(&x, side);
	sftp_end(&x);
	sb_free(&cmd);
	if (fd >= 0)
		close(fd);
	free(part);
	free(real);
	rpaths_free(&rp);
	return rc;
}

/* ---- a remote file's hash ------------------------------------------------ */

int
xfer_remote_sha256(struct ssh_session *s, const char *remote_root,
    const char *rel_path, long timeout_ms, char sha256_hex[65], bool *exists,
    struct ssh_error *e)
{
	struct rpaths rp;
	struct strbuf cmd = SB_INIT;
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct xfer x;
	int rc = -1;

	*exists = false;
	sha256_hex[0] = '\0';
	if (rpaths_make(&rp, remote_root, rel_path, e) < 0)
		return -1;
	xfer_begin(&x, s, timeout_ms, e);
	/* a regular file, no symlink, inside the root once resolved; any
	 * other answer than a hash reads as "absent" */
	sb_adds(&cmd, SH_SHA);
	sb_adds(&cmd, "f=");
	sb_add_shquote(&cmd, rp.full);
	sb_adds(&cmd, "; r=");
	sb_add_shquote(&cmd, rp.root);
	sb_adds(&cmd, "; if [ -f \"$f\" ] && [ ! -L \"$f\" ] && "
	    "R=$(realpath -e -- \"$r\") && P=$(realpath -e -- \"$f\"); then "
	    "case \"$P\" in \"$R\"/*) sha < \"$P\" ;; *) echo absent ;; esac; "
	    "else echo absent; fi");
	if (run(&x, sb_str(&cmd), &r) != 0)
		goto cleanup;
	*exists = r.exit_status == 0 && parse_hash(r.output, sha256_hex);
	if (!*exists)
		sha256_hex[0] = '\0';
	rc = 0;
cleanup:
	sb_free(&cmd);
	ssh_exec_result_clear(&r);
	rpaths_free(&rp);
	return rc;
}
