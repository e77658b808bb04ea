/* SPDX-License-Identifier: MIT */
/*
 * podfs: small reads of a pod's files over the session's own SFTP channel
 * (ssh_session_sftp): stat and bounded reads, no shell, no new channel.
 * Prefix podfs_.  What remote_poll and remote_read_log are made of.
 *
 * Every call is bounded by deadline_ms (CLOCK_MONOTONIC milliseconds, as
 * clock_mono_ms() gives) and runs libssh2 non-blocking.  Paths are sent
 * as they are (the caller validates them); nothing is interpreted by a
 * shell.  Files that stat as 0 bytes but hold data (/proc's) are read
 * until the server says EOF.
 *
 * Errors: 0, or -1 with *e.  The pod's SFTP status for the path (other
 * than "no such file", which is an answer: exists false, found false) is
 * SSH_ERR_PROTOCOL and leaves the session usable; a failed connection is
 * SSH_ERR_CHANNEL and a passed deadline SSH_ERR_TIMEOUT, both leaving the
 * session broken (ssh_session_broken()).
 */
#ifndef IA_PODFS_H
#define IA_PODFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "providers/ssh/ssh.h"
#include "lib/attrs.h"

#define PODFS_READ_MAX (16 * 1024 * 1024)	/* podfs_read max cap */

struct podfs_stat {
	bool exists;
	bool is_reg, is_dir;	/* a regular file, a directory */
	int64_t size;		/* bytes, as the server says (0 for /proc) */
	int64_t mtime;		/* epoch seconds */
};

/* stat(2) path on the pod (symlinks followed) into *st. */
WARN_UNUSED_RESULT
int podfs_stat(struct ssh_session *s, const char *path, int64_t deadline_ms,
    struct podfs_stat *st, struct ssh_error *e);

/*
 * Bytes [offset, offset + max) of path on the pod, fewer at its end (none
 * past it); max is capped at PODFS_READ_MAX.  Binary-safe.  On success
 * *found says whether the file exists and *data is a NUL-terminated
 * buffer of *len bytes (may hold NULs; "" when not found); caller frees.
 * On failure *data is NULL.  The file is opened for reading only: a FIFO
 * would block the pod's SFTP server, so stat a path that may be one
 * first.
 */
WARN_UNUSED_RESULT
int podfs_read(struct ssh_session *s, const char *path, int64_t offset,
    size_t max, int64_t deadline_ms, char **data, size_t *len, bool *found,
    struct ssh_error *e);

/*
 * As podfs_read from offset 0, but done once a newline has been read (one
 * round trip less than reading to the end): the first line of a file,
 * with whatever the server sent after it in the same answer.
 */
WARN_UNUSED_RESULT
int podfs_read_line(struct ssh_session *s, const char *path, size_t max,
    int64_t deadline_ms, char **data, size_t *len, bool *found,
    struct ssh_error *e);

#endif
