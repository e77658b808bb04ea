/* SPDX-License-Identifier: MIT */
/* fileio: shared file routines of the on-disk stores; see fileio.h. */
#include "auto-config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lib/fileio.h"
#include "lib/xalloc.h"

#define FIO_BUF	(1u << 20)

int
fio_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
fio_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

char *
fio_slurp(const char *path, size_t max)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	ssize_t n;
	int fd, saved = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > (uint64_t)max) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			saved = errno;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(buf);
		errno = saved ? saved : EIO;
		return NULL;
	}
	buf[got] = '\0';
	return buf;
}

int
fio_write_json(const char *path, json_object *o, mode_t mode, char **err)
{
	char *tmp = xasprintf("%s.tmp", path);
	const char *text = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	int fd = -1, rc = -1;
	bool made = false;

	(void)unlink(tmp);	/* a crash's leftover */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0) {
		*err = xasprintf("create %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	made = true;
	if (fchmod(fd, mode) != 0 ||
	    fio_write_all(fd, text, strlen(text)) != 0 ||
	    fio_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
		*err = xasprintf("write %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	if (close(fd) != 0) {
		fd = -1;
		*err = xasprintf("close %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		*err = xasprintf("rename %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	made = false;
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (made)
		(void)unlink(tmp);
	free(tmp);
	return rc;
}

int
fio_sha256_fd(int in, int out, const char *what, char hex[65],
    int64_t *size, char **err)
{
	static const char digits[] = "0123456789abcdef";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dig[EVP_MAX_MD_SIZE], *buf = xmalloc(FIO_BUF);
	unsigned int dlen = 0, i;
	int64_t total = 0;
	ssize_t n;
	int rc = -1;

	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		*err = xstrdup("SHA-256 unavailable (OpenSSL)");
		goto cleanup;
	}
	for (;;) {
		n = read(in, buf, FIO_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = xasprintf("read %s: %s", what, strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		if (!EVP_DigestUpdate(md, buf, (size_t)n)) {
			*err = xstrdup("SHA-256 update failed (OpenSSL)");
			goto cleanup;
		}
		if (out >= 0 && fio_write_all(out, buf, (size_t)n) < 0) {
			*err = xasprintf("write the copy of %s: %s", what,
			    strerror(errno));
			goto cleanup;
		}
		total += n;
	}
	if (!EVP_DigestFinal_ex(md, dig, &dlen) || dlen != 32) {
		*err = xstrdup("SHA-256 failed (OpenSSL)");
		goto cleanup;
	}
	for (i = 0; i < dlen; i++) {
		hex[2 * i] = digits[dig[i] >> 4];
		hex[2 * i + 1] = digits[dig[i] & 0x0f];
	}
	hex[64] = '\0';
	*size = total;
	rc = 0;
cleanup:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}
