/* SPDX-License-Identifier: MIT */
/*
 * xfer: files to and from a pod over SFTP (libssh2 1.10), resumable and
 * checked with SHA-256 on both ends.  Prefix xfer_.
 *
 * Shape of a transfer: a task step calls xfer_upload() or xfer_download()
 * with max_bytes (the most it may move in this call) until p->done; each
 * call is bounded by timeout_ms, so no executor thread is held for long.
 * The data goes to "<target>.part" first; a call resumes from the bytes
 * the .part already holds (after checking them, below); once the whole
 * file is there its SHA-256 is computed on both ends (remotely with
 * `openssl dgst -sha256`, or `sha256sum` where openssl is missing) and
 * only when they agree is the .part renamed over the target, atomically.
 *
 * Resume check: the .part's prefix is compared, by SHA-256 of both sides,
 * with the source.  When p says the previous call stopped exactly where
 * the .part ends (same offset, same total), only the last
 * XFER_RESUME_WINDOW bytes of the prefix are compared (the end is where a
 * dropped connection leaves damage); otherwise the whole prefix is.  A
 * mismatch restarts from 0.  Damage the window check misses is caught by
 * the final check, which then removes the .part (restart from 0).
 *
 * Paths: remote_root is absolute; rel_path is relative to it and made of
 * '/'-separated names of [A-Za-z0-9._-], none "." or "..", none starting
 * with '-'.  Download refuses a file whose realpath (symlinks resolved,
 * on the pod) is not inside remote_root's realpath; upload refuses a
 * parent directory that resolves outside it, and replaces a symlink found
 * at the .part name.  Every value reaching a remote shell is validated,
 * then single-quoted.
 *
 * Pipelining (libssh2 1.10 src/sftp.c): writes hand libssh2 up to
 * XFER_WRITE_BUF bytes at a time (a multiple of its 30000-byte packet;
 * about the 2 MiB OpenSSH's sftp keeps in flight, and sshd's channel
 * window), which it splits into packets sent ahead of their ACKs; a
 * short return counts ACKed bytes only, and the rest of the buffer may
 * already be on the wire, so the same unchanged bytes are offered again
 * (from a buffer of XFER_WRITE_BUFS times that, refilled by large reads).
 * Reads fill
 * XFER_READ_BUF buffers, handed over with a quarter or less left: libssh2
 * asks ahead for four times the room it is given, so 2 to 8 MiB stay
 * requested.
 *
 * Overlap (so that the thread driving libssh2, busy with the ciphers,
 * does nothing else): a download's buffers are written, hashed and their
 * writeback started by a thread of its own (xferio.h), and a call that
 * ends the file starts the pod's hash on a second channel before the
 * data, so both hashes are ready when the last byte is; an upload call
 * that ends the file hashes it on a thread from the bytes it reads to
 * send, while the pod hashes the .part as it grows (a loop on a second
 * channel; only a matching hash is taken from it, anything else is
 * decided by hashing the complete .part, as when the server refuses the
 * second channel).
 *
 * Errors: 0, or -1 with *e (struct ssh_error, see ssh.h): SSH_ERR_PROTOCOL
 * for refused arguments and paths, failed checks (SHA-256 mismatch), local
 * errors (disk full, permission denied) and remote ones; SSH_ERR_CHANNEL
 * when the connection or channel failed; SSH_ERR_TIMEOUT when timeout_ms
 * passed.  After SSH_ERR_CHANNEL or SSH_ERR_TIMEOUT the session is broken
 * (ssh_session_broken()): close it, open another, call again to resume.
 * A hard failure (remote file missing, disk full, permission denied,
 * SHA-256 mismatch, symlink escape) removes the partial file and resets p
 * to offset 0; a connection failure or timeout keeps it for resuming.
 */
#ifndef IA_XFER_H
#define IA_XFER_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/attrs.h"

struct ssh_error;
struct ssh_session;

#define XFER_WRITE_BUF (30000 * 70)	/* most per libssh2_sftp_write */
#define XFER_WRITE_BUFS 4		/* upload buffer: that many times */
#define XFER_READ_BUF (2 * 1024 * 1024)	/* a download buffer */
#define XFER_READ_BUFS 3		/* buffers per download call */
#define XFER_RESUME_WINDOW (1024 * 1024)	/* see "Resume check" */
#define XFER_PATH_MAX 1024		/* remote_root, rel_path */
#define XFER_TIMEOUT_DEFAULT_MS 300000	/* timeout_ms <= 0 */

/*
 * Where a transfer stands.  Zero it (XFER_PROGRESS_INIT) before the first
 * call of a transfer; give each call what the previous one left.
 */
struct xfer_progress {
	int64_t offset;		/* bytes at the destination (.part) */
	int64_t total;		/* size of the source */
	bool done;		/* verified and renamed into place */
	char sha256[65];	/* when done: lower-case hex, else "" */
};

#define XFER_PROGRESS_INIT { 0, 0, false, "" }

/*
 * Is rel a valid relative path (see "Paths")?  When not and why is not
 * NULL, *why is a constant reason.
 */
bool xfer_path_ok(const char *rel, const char **why);

/*
 * Upload local_path to remote_root/rel_path, creating the parent
 * directories under remote_root, moving at most max_bytes (0: all) in this
 * call, within timeout_ms (<= 0: XFER_TIMEOUT_DEFAULT_MS).  On success p
 * says how far it got; p->done once the file is verified and in place.
 * The session stays usable after success and after errors other than
 * SSH_ERR_CHANNEL/SSH_ERR_TIMEOUT.
 */
WARN_UNUSED_RESULT
int xfer_upload(struct ssh_session *s, const char *local_path,
    const char *remote_root, const char *rel_path, int64_t max_bytes,
    long timeout_ms, struct xfer_progress *p, struct ssh_error *e);

/*
 * Download remote_root/rel_path to local_path (through local_path.part,
 * created 0600 with O_NOFOLLOW), as xfer_upload the other way.  local_path
 * is the caller's (trusted) choice; its directory must exist.
 */
WARN_UNUSED_RESULT
int xfer_download(struct ssh_session *s, const char *remote_root,
    const char *rel_path, const char *local_path, int64_t max_bytes,
    long timeout_ms, struct xfer_progress *p, struct ssh_error *e);

/*
 * The SHA-256 of remote_root/rel_path on the pod, when it is a regular
 * file (not a symlink) whose realpath is inside remote_root's: *exists
 * true and sha256_hex set; otherwise (absent, a symlink, a directory,
 * outside the root, unreadable) *exists false.  0, or -1 with *e
 * (refused arguments: SSH_ERR_PROTOCOL; the connection: as above).
 * Used to skip sending a file that is already there.
 */
WARN_UNUSED_RESULT
int xfer_remote_sha256(struct ssh_session *s, const char *remote_root,
    const char *rel_path, long timeout_ms, char sha256_hex[65], bool *exists,
    struct ssh_error *e);

#endif
