/* SPDX-License-Identifier: MIT */
/* xferio: a transfer's local file I/O on a thread; see xferio.h. */
#include "auto-config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "providers/ssh/xferio.h"

#define HASH_CHUNK (1024 * 1024)	/* hashing reads */

/* One filled buffer waiting for the writer thread. */
struct xio_item {
	char *buf;
	size_t n;
};

struct xio_writer {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* the queue, the free list, stop or err */
	pthread_t th;
	bool threaded;
	int fd;
	int64_t offset;		/* where the next queued byte goes */
	int64_t start;		/* offset at the start */
	int64_t flushed;	/* writeback started below this */
	EVP_MD_CTX *md;		/* NULL: no hash */
	size_t bufsize;
	int nbufs;
	char **all;		/* every buffer, for freeing */
	char **free_bufs;	/* nfree of them */
	int nfree;
	struct xio_item *q;	/* ring of nbufs, qlen from qhead */
	int qhead, qlen;
	bool stop;		/* finish: end once the queue is empty */
	int err;		/* first failure (errno), under mu */
};

struct xio_hasher {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* job, busy or stop changed */
	pthread_t th;
	bool threaded;
	int fd;
	int64_t prefix;
	EVP_MD_CTX *md;		/* NULL: out of memory (err set) */
	const void *job;	/* fed, not yet hashed (under mu) */
	size_t job_len;
	bool busy;		/* the thread is hashing job */
	bool stop;
	int err;
};

/* ---- hashing ------------------------------------------------------------- */

/* Lower-case hex of a 32-byte digest into out (65 bytes). */
static void
hex32(const unsigned char *md, char *out)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

/* Feed len bytes of fd from start into md.  0, or an errno (EIO: the
 * file ended first). */
static int
hash_range(EVP_MD_CTX *md, int fd, int64_t start, int64_t len)
{
	unsigned char *buf = xmalloc(HASH_CHUNK);
	size_t want;
	ssize_t n;
	int err = 0;

	while (len > 0 && err == 0) {
		want = len < HASH_CHUNK ? (size_t)len : HASH_CHUNK;
		n = pread(fd, buf, want, (off_t)start);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;	/* EOF: file shrank */
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		start += n;
		len -= n;
	}
	free(buf);
	return err;
}

/* A fresh SHA-256 context, or NULL. */
static EVP_MD_CTX *
sha256_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md != NULL && !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		md = NULL;
	}
	return md;
}

int
xio_hash(int fd, int64_t start, int64_t len, char *out)
{
	EVP_MD_CTX *md = sha256_new();
	unsigned char dig[32];
	int err;

	if (md == NULL) {
		errno = ENOMEM;
		return -1;
	}
	err = hash_range(md, fd, start, len);
	if (err == 0) {
		EVP_DigestFinal_ex(md, dig, NULL);
		hex32(dig, out);
	}
	EVP_MD_CTX_free(md);
	errno = err;
	return err == 0 ? 0 : -1;
}

/* ---- writer -------------------------------------------------------------- */

/* Write all n bytes to fd at off.  0, or an errno. */
static int
write_at(int fd, const char *buf, size_t n, int64_t off)
{
	ssize_t w;

	while (n > 0) {
		w = pwrite(fd, buf, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno;
		if (w == 0)
			return ENOSPC;
		buf += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Write (and hash) one buffer at w->offset; the thread's side, or the
 * caller's without a thread.  0, or an errno. */
static int
writer_put(struct xio_writer *w, const char *buf, size_t n)
{
	int err = write_at(w->fd, buf, n, w->offset);

	if (err != 0)
		return err;
	if (w->md != NULL)
		EVP_DigestUpdate(w->md, buf, n);
	w->offset += (int64_t)n;
#ifdef SYNC_FILE_RANGE_WRITE
	/* Start writing back what is done: the final fsync then waits for
	 * the last few MiB only.  Failures show there. */
	if (w->offset - w->flushed >= XIO_FLUSH_EVERY) {
		(void)sync_file_range(w->fd, (off_t)w->flushed,
		    (off_t)(w->offset - w->flushed), SYNC_FILE_RANGE_WRITE);
		w->flushed = w->offset;
	}
#endif
	return 0;
}

/* Record the first failure and wake the caller. */
static void
writer_fail(struct xio_writer *w, int err)
{
	pthread_mutex_lock(&w->mu);
	if (w->err == 0)
		w->err = err;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *
writer_main(void *arg)
{
	struct xio_writer *w = arg;
	struct xio_item it;
	int err;

	if (w->md != NULL && w->start > 0 &&
	    (err = hash_range(w->md, w->fd, 0, w->start)) != 0)
		writer_fail(w, err);
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->qlen == 0 && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->qlen == 0) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		it = w->q[w->qhead];
		w->qhead = (w->qhead + 1) % w->nbufs;
		w->qlen--;
		err = w->err;
		pthread_mutex_unlock(&w->mu);
		if (err == 0 && (err = writer_put(w, it.buf, it.n)) != 0)
			writer_fail(w, err);
		pthread_mutex_lock(&w->mu);
		w->free_bufs[w->nfree++] = it.buf;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

struct xio_writer *
xio_writer_start(int fd, int64_t offset, bool hash, size_t bufsize,
    int nbufs)
{
	struct xio_writer *w = xcalloc(1, sizeof(*w));
	int i;

	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->fd = fd;
	w->offset = w->start = w->flushed = offset;
	w->bufsize = bufsize;
	w->nbufs = nbufs > 0 ? nbufs : 1;
	w->all = xcalloc((size_t)w->nbufs, sizeof(*w->all));
	w->free_bufs = xcalloc((size_t)w->nbufs, sizeof(*w->free_bufs));
	w->q = xcalloc((size_t)w->nbufs, sizeof(*w->q));
	for (i = 0; i < w->nbufs; i++)
		w->all[i] = w->free_bufs[i] = xmalloc(bufsize);
	w->nfree = w->nbufs;
	if (hash && (w->md = sha256_new()) == NULL)
		w->err = ENOMEM;
	w->threaded = pthread_create(&w->th, NULL, writer_main, w) == 0;
	if (!w->threaded && w->err == 0 && w->md != NULL && offset > 0)
		w->err = hash_range(w->md, fd, 0, offset);
	return w;
}

char *
xio_writer_buf(struct xio_writer *w)
{
	char *buf = NULL;

	pthread_mutex_lock(&w->mu);
	while (w->nfree == 0 && w->err == 0)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->err == 0)
		buf = w->free_bufs[--w->nfree];
	pthread_mutex_unlock(&w->mu);
	return buf;
}

void
xio_writer_push(struct xio_writer *w, char *buf, size_t n)
{
	int err;

	if (!w->threaded) {
		if (w->err == 0 && (err = writer_put(w, buf, n)) != 0)
			w->err = err;
		w->free_bufs[w->nfree++] = buf;
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->q[(w->qhead + w->qlen) % w->nbufs] = (struct xio_item){ buf, n };
	w->qlen++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

bool
xio_writer_failed(struct xio_writer *w)
{
	bool failed;

	pthread_mutex_lock(&w->mu);
	failed = w->err != 0;
	pthread_mutex_unlock(&w->mu);
	return failed;
}

int
xio_writer_finish(struct xio_writer *w, int64_t *written, char *sha256_hex)
{
	unsigned char dig[32];
	int i, err;

	if (w->threaded) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	err = w->err;
	*written = w->offset - w->start;
	if (sha256_hex != NULL) {
		sha256_hex[0] = '\0';
		if (err == 0 && w->md != NULL) {
			EVP_DigestFinal_ex(w->md, dig, NULL);
			hex32(dig, sha256_hex);
		}
	}
	EVP_MD_CTX_free(w->md);
	for (i = 0; i < w->nbufs; i++)
		free(w->all[i]);
	free(w->all);
	free(w->free_bufs);
	free(w->q);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return err;
}

/* ---- hasher -------------------------------------------------------------- */

static void *
hasher_main(void *arg)
{
	struct xio_hasher *h = arg;
	int err = hash_range(h->md, h->fd, 0, h->prefix);

	pthread_mutex_lock(&h->mu);
	h->err = err;
	for (;;) {
		while (h->job == NULL && !h->stop)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->job == NULL)
			break;
		h->busy = true;
		pthread_mutex_unlock(&h->mu);
		if (err == 0)
			EVP_DigestUpdate(h->md, h->job, h->job_len);
		pthread_mutex_lock(&h->mu);
		h->job = NULL;
		h->busy = false;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

struct xio_hasher *
xio_hasher_start(int fd, int64_t prefix)
{
	struct xio_hasher *h = xcalloc(1, sizeof(*h));

	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->fd = fd;
	h->prefix = prefix;
	if ((h->md = sha256_new()) == NULL) {
		h->err = ENOMEM;
		return h;
	}
	h->threaded = pthread_create(&h->th, NULL, hasher_main, h) == 0;
	if (!h->threaded)
		h->err = hash_range(h->md, fd, 0, prefix);
	return h;
}

void
xio_hasher_wait(struct xio_hasher *h)
{
	if (!h->threaded)
		return;
	pthread_mutex_lock(&h->mu);
	while (h->job != NULL || h->busy)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

void
xio_hasher_feed(struct xio_hasher *h, const void *buf, size_t n)
{
	if (n == 0)
		return;
	if (!h->threaded) {
		if (h->err == 0)
			EVP_DigestUpdate(h->md, buf, n);
		return;
	}
	xio_hasher_wait(h);
	pthread_mutex_lock(&h->mu);
	h->job = buf;
	h->job_len = n;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* Stop the thread (after what was fed) and join it. */
static void
hasher_stop(struct xio_hasher *h)
{
	if (!h->threaded)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	h->threaded = false;
}

static void
hasher_free(struct xio_hasher *h)
{
	EVP_MD_CTX_free(h->md);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

int
xio_hasher_finish(struct xio_hasher *h, char *sha256_hex)
{
	unsigned char dig[32];
	int err;

	hasher_stop(h);
	err = h->err;
	sha256_hex[0] = '\0';
	if (err == 0) {
		EVP_DigestFinal_ex(h->md, dig, NULL);
		hex32(dig, sha256_hex);
	}
	hasher_free(h);
	return err;
}

void
xio_hasher_cancel(struct xio_hasher *h)
{
	if (h == NULL)
		return;
	hasher_stop(h);
	hasher_free(h);
}
