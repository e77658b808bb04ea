/* SPDX-License-Identifier: MIT */
/* podfs: small reads of a pod's files over SFTP; see podfs.h. */
#include "auto-config.h"

#include <sys/socket.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "providers/ssh/podfs.h"
#include "providers/ssh/ssh.h"

/* Bytes asked of libssh2_sftp_read at a time.  libssh2 1.10 keeps four
 * times that in flight (read-ahead, in requests of at most 30000 bytes):
 * a 32 KiB chunk reads a small file in one request. */
#define CHUNK 32768

/* One call's state. */
struct pf {
	struct ssh_session *s;
	LIBSSH2_SESSION *ls;
	LIBSSH2_SFTP *sftp;
	int sock;
	int64_t deadline;
	const char *path;
	struct ssh_error *e;
};

static int
pf_begin(struct pf *f, struct ssh_session *s, const char *path,
    int64_t deadline, struct ssh_error *e)
{
	memset(f, 0, sizeof(*f));
	f->s = s;
	f->path = path;
	f->deadline = deadline;
	f->e = e;
	ssh_error_clear(e);
	f->ls = ssh_session_handle(s, &f->sock);
	return ssh_session_sftp(s, deadline, &f->sftp, e);
}

/* The session is done: its socket is shut down, so that closing a handle
 * afterwards fails at once instead of waiting on the peer. */
static void
pf_dead(struct pf *f)
{
	ssh_session_mark_broken(f->s);
	if (f->sock >= 0)
		shutdown(f->sock, SHUT_RDWR);
}

/* Wait for the socket as libssh2 asks.  0, or -1 (timeout, *e set). */
static int
pf_wait(struct pf *f, const char *what)
{
	if (ssh_session_wait(f->s, f->deadline) == 0)
		return 0;
	ssh_error_set(f->e, SSH_ERR_TIMEOUT, "%s %s on the pod: timed out",
	    what, f->path);
	pf_dead(f);
	return -1;
}

static const char *
fx_text(unsigned long fx)
{
	switch (fx) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return "no such file or directory";
	case LIBSSH2_FX_PERMISSION_DENIED:
		return "permission denied";
	case LIBSSH2_FX_FAILURE:
		return "failure";
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return "operation unsupported";
	}
	return "SFTP error";
}

/* Is rc the server's "no such file" for the last request? */
static bool
pf_no_such(struct pf *f, int rc)
{
	unsigned long fx;

	if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return false;
	fx = libssh2_sftp_last_error(f->sftp);
	return fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NO_SUCH_PATH;
}

/* An SFTP call failed with rc: the server's status (the session is fine)
 * or the connection (it is not).  Sets *e; returns -1. */
static int
pf_fail(struct pf *f, int rc, const char *what)
{
	char *msg = NULL;
	unsigned long fx;

	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		fx = libssh2_sftp_last_error(f->sftp);
		ssh_error_set(f->e, SSH_ERR_PROTOCOL, "%s %s on the pod: %s "
		    "(SFTP status %lu)", what, f->path, fx_text(fx), fx);
		return -1;
	}
	libssh2_session_last_error(f->ls, &msg, NULL, 0);
	ssh_error_set(f->e, SSH_ERR_CHANNEL, "%s %s on the pod: connection "
	    "failed: %s", what, f->path, msg != NULL && *msg != '\0' ? msg :
	    "unknown error");
	pf_dead(f);
	return -1;
}

int
podfs_stat(struct ssh_session *s, const char *path, int64_t deadline_ms,
    struct podfs_stat *st, struct ssh_error *e)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	struct pf f;
	int rc;

	memset(st, 0, sizeof(*st));
	if (pf_begin(&f, s, path, deadline_ms, e) != 0)
		return -1;
	memset(&a, 0, sizeof(a));
	while ((rc = libssh2_sftp_stat_ex(f.sftp, path,
	    (unsigned int)strlen(path), LIBSSH2_SFTP_STAT, &a)) ==
	    LIBSSH2_ERROR_EAGAIN)
		if (pf_wait(&f, "stat") != 0)
			return -1;
	if (rc != 0)
		return pf_no_such(&f, rc) ? 0 : pf_fail(&f, rc, "stat");
	st->exists = true;
	if (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) {
		st->is_reg = LIBSSH2_SFTP_S_ISREG(a.permissions);
		st->is_dir = LIBSSH2_SFTP_S_ISDIR(a.permissions);
	}
	if (a.flags & LIBSSH2_SFTP_ATTR_SIZE)
		st->size = a.filesize > (libssh2_uint64_t)INT64_MAX ?
		    INT64_MAX : (int64_t)a.filesize;
	if (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME)
		st->mtime = (int64_t)a.mtime;
	return 0;
}

/* Close h: 0, or -1 when the connection failed (a status from the
 * server for closing a read-only handle changes nothing read). */
static int
pf_close(struct pf *f, LIBSSH2_SFTP_HANDLE *h)
{
	int rc;

	while ((rc = libssh2_sftp_close_handle(h)) == LIBSSH2_ERROR_EAGAIN)
		if (pf_wait(f, "closing") != 0)
			return -1;	/* freed with the session */
	if (rc != 0 && rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return pf_fail(f, rc, "closing");
	return 0;
}

/* podfs_read and podfs_read_line: with line, stop once a newline was
 * read. */
static int
read_file(struct ssh_session *s, const char *path, int64_t offset,
    size_t max, bool line, int64_t deadline_ms, char **data, size_t *len,
    bool *found, struct ssh_error *e)
{
	struct ssh_error close_e = SSH_ERROR_INIT;
	LIBSSH2_SFTP_HANDLE *h;
	struct pf f;
	char *buf = NULL;
	size_t got = 0, cap = 0, ask;
	ssize_t n;
	int rc;

	*data = NULL;
	*len = 0;
	*found = false;
	if (offset < 0) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "reading %s on the pod: "
		    "negative offset", path);
		return -1;
	}
	if (max > PODFS_READ_MAX)
		max = PODFS_READ_MAX;
	if (pf_begin(&f, s, path, deadline_ms, e) != 0)
		return -1;
	while ((h = libssh2_sftp_open_ex(f.sftp, path,
	    (unsigned int)strlen(path), LIBSSH2_FXF_READ, 0,
	    LIBSSH2_SFTP_OPENFILE)) == NULL) {
		rc = libssh2_session_last_errno(f.ls);
		if (rc != LIBSSH2_ERROR_EAGAIN) {
			if (!pf_no_such(&f, rc))
				return pf_fail(&f, rc, "opening");
			*data = xstrdup("");
			return 0;
		}
		if (pf_wait(&f, "opening") != 0)
			return -1;
	}
	if (offset > 0)
		libssh2_sftp_seek64(h, (libssh2_uint64_t)offset);
	while (got < max) {
		ask = max - got < CHUNK ? max - got : CHUNK;
		if (cap < got + ask) {
			cap = cap * 2 > got + ask ? cap * 2 : got + ask;
			if (cap > max)
				cap = max;
			buf = xrealloc(buf, cap + 1);
		}
		n = libssh2_sftp_read(h, buf + got, ask);
		if (n == LIBSSH2_ERROR_EAGAIN) {
			if (pf_wait(&f, "reading") != 0)
				goto fail;
			continue;
		}
		if (n < 0) {
			pf_fail(&f, (int)n, "reading");
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (line && memchr(buf + got - (size_t)n, '\n', (size_t)n))
			break;
	}
	if (pf_close(&f, h) != 0)
		goto cleanup;
	if (buf == NULL)
		buf = xmalloc(1);
	buf[got] = '\0';
	*data = buf;
	*len = got;
	*found = true;
	return 0;
fail:
	/* After a status from the server the handle is closed as usual; on
	 * a dead session (its socket shut down) closing fails at once. */
	f.e = &close_e;
	(void)pf_close(&f, h);
	ssh_error_clear(&close_e);
cleanup:
	free(buf);
	return -1;
}

int
podfs_read(struct ssh_session *s, const char *path, int64_t offset,
    size_t max, int64_t deadline_ms, char **data, size_t *len, bool *found,
    struct ssh_error *e)
{
	return read_file(s, path, offset, max, false, deadline_ms, data, len,
	    found, e);
}

int
podfs_read_line(struct ssh_session *s, const char *path, size_t max,
    int64_t deadline_ms, char **data, size_t *len, bool *found,
    struct ssh_error *e)
{
	return read_file(s, path, 0, max, true, deadline_ms, data, len, found,
	    e);
}
