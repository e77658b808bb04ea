/* SPDX-License-Identifier: MIT */
/*
 * secretfile: read a small file that holds a key or a secret, refusing one
 * that group or others may read when it must stay private, and wipe it
 * from memory when done.  Messages name the file, never its content.
 */
#include "auto-config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/secretfile.h"
#include "lib/xalloc.h"

void
secretfile_wipe_free(unsigned char *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

int
secretfile_read(const char *what, const char *path, bool secret,
    unsigned char **buf, size_t *len, char **err)
{
	struct stat st;
	unsigned char *b = NULL;
	size_t n = 0;
	ssize_t r;
	int fd = -1, rc = -1;

	*buf = NULL;
	*len = 0;
	if (path == NULL || path[0] == '\0') {
		*err = xasprintf("%s: required", what);
		goto cleanup;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*err = xasprintf("%s: cannot open %s: %s", what, path,
		    strerror(errno));
		goto cleanup;
	}
	if (fstat(fd, &st) < 0) {
		*err = xasprintf("%s: cannot stat %s: %s", what, path,
		    strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		*err = xasprintf("%s: %s is not a regular file", what, path);
		goto cleanup;
	}
	if (secret && (st.st_mode & 077) != 0) {
		*err = xasprintf("%s: %s is accessible by group or others "
		    "(mode %03o); it holds a secret: chmod 600 it", what, path,
		    (unsigned)(st.st_mode & 0777));
		goto cleanup;
	}
	if (st.st_size > SECRETFILE_MAX) {
		*err = xasprintf("%s: %s is larger than %d bytes", what, path,
		    SECRETFILE_MAX);
		goto cleanup;
	}
	b = xmalloc(SECRETFILE_MAX + 1);
	for (;;) {
		r = read(fd, b + n, SECRETFILE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = xasprintf("%s: cannot read %s: %s", what, path,
			    strerror(errno));
			goto cleanup;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > SECRETFILE_MAX) {
			*err = xasprintf("%s: %s is larger than %d bytes", what,
			    path, SECRETFILE_MAX);
			goto cleanup;
		}
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	secretfile_wipe_free(b, SECRETFILE_MAX + 1);
	return rc;
}

