/* SPDX-License-Identifier: MIT */
/*
 * secretfile: read a whole key or secret file; wipe it when done.  Prefix
 * secretfile_.
 */
#ifndef IA_SECRETFILE_H
#define IA_SECRETFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/attrs.h"

#define SECRETFILE_MAX 65536	/* largest file read, bytes */

/*
 * Read the whole file at path (what names it in messages: "jwt_key_file").
 * secret: refuse a file that group or others may access.  On success *buf
 * is a new NUL-terminated buffer of *len bytes (caller releases it with
 * secretfile_wipe_free(*buf, SECRETFILE_MAX + 1)); messages name what and
 * the path, never the content.  0, or -1 with *err (caller frees).
 */
WARN_UNUSED_RESULT
int secretfile_read(const char *what, const char *path, bool secret,
    unsigned char **buf, size_t *len, char **err);
/* Overwrite n bytes of p, then free it.  NULL is fine. */
void secretfile_wipe_free(unsigned char *p, size_t n);

#endif
