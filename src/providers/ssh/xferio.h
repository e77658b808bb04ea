/* SPDX-License-Identifier: MIT */
/*
 * xferio: the local file side of an SFTP transfer, on a thread of its own,
 * so that the thread driving libssh2 (which spends its time decrypting and
 * encrypting) does not also write, read and hash the file.  Prefix xio_.
 *
 * Two helpers, each one thread for one transfer call:
 *
 *   writer (download)  takes buffers filled from the network, in order,
 *                      pwrite()s them at consecutive offsets, optionally
 *                      hashes the file (the .part's existing prefix first,
 *                      then every byte written), and starts the kernel's
 *                      writeback of every XIO_FLUSH_EVERY bytes so that the
 *                      final fsync() has little left to do.
 *   hasher (upload)    the SHA-256 of a local file: the prefix the pod
 *                      already has, read back first, then the bytes the
 *                      caller reads to send, hashed in the caller's
 *                      buffer (no second read of the file).
 *
 * When a thread cannot be started each helper does its work in the
 * caller's thread instead (same results, no overlap).  Neither touches
 * libssh2.  Errors are errno values (0: none).
 */
#ifndef IA_XFERIO_H
#define IA_XFERIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/attrs.h"

#define XIO_FLUSH_EVERY (8 * 1024 * 1024)	/* writeback started */

/* SHA-256 of len bytes of fd from start, as lower-case hex into out (65
 * bytes).  0, or -1 with errno (EIO when the file is shorter). */
WARN_UNUSED_RESULT
int xio_hash(int fd, int64_t start, int64_t len, char *out);

struct xio_writer;

/*
 * Start a writer for fd whose next byte goes at offset, with nbufs
 * buffers of bufsize bytes (allocated here, freed by xio_writer_finish).
 * hash: compute the SHA-256 of the whole file, [0, offset) read back
 * first.  Never NULL (out of memory aborts).
 */
struct xio_writer *xio_writer_start(int fd, int64_t offset, bool hash,
    size_t bufsize, int nbufs);

/*
 * An empty buffer of bufsize bytes to fill (owned by w), waiting for the
 * thread to give one back when all are queued.  NULL once a write failed
 * (see xio_writer_finish).
 */
char *xio_writer_buf(struct xio_writer *w);

/* Queue buf (from xio_writer_buf) holding n bytes (0 < n <= bufsize) for
 * the next offset.  w owns buf again. */
void xio_writer_push(struct xio_writer *w, char *buf, size_t n);

/* Has a write (or reading the prefix to hash) failed? */
bool xio_writer_failed(struct xio_writer *w);

/*
 * Write what is queued, stop the thread and free w and its buffers.
 * *written: the bytes written by w (a prefix of those pushed; all when
 * 0).  sha256_hex (65 bytes, may be NULL): the file's SHA-256 when w
 * hashed and all went well, else "".  0, or the errno of the first
 * failure (writing stops there; later buffers are dropped).
 */
WARN_UNUSED_RESULT
int xio_writer_finish(struct xio_writer *w, int64_t *written,
    char *sha256_hex);

struct xio_hasher;

/* Start hashing fd: first its bytes [0, prefix), read here.  Never
 * NULL. */
struct xio_hasher *xio_hasher_start(int fd, int64_t prefix);

/*
 * Hash the n bytes at buf next, on the thread: buf must stay unchanged
 * until xio_hasher_wait(), the next feed, or the end of h.  Waits for the
 * previous feed first.
 */
void xio_hasher_feed(struct xio_hasher *h, const void *buf, size_t n);

/* Wait until everything fed is hashed (its buffers may change then). */
void xio_hasher_wait(struct xio_hasher *h);

/*
 * Wait for the hash of everything fed and free h.  0 with sha256_hex (65
 * bytes) set, or the errno of the failure (EIO: the file was shorter than
 * prefix).
 */
WARN_UNUSED_RESULT
int xio_hasher_finish(struct xio_hasher *h, char *sha256_hex);

/* Stop, wait for the thread and free h.  NULL is fine. */
void xio_hasher_cancel(struct xio_hasher *h);

#endif
