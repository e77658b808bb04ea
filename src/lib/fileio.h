/* SPDX-License-Identifier: MIT */
/*
 * fileio: the small file routines the agent's on-disk stores share
 * (uploads, the asset registry): writing all of a buffer, durable JSON
 * records (write to a temporary file, fsync, rename), bounded reads of a
 * whole file, and SHA-256 over a stream.  Prefix fio_.
 */
#ifndef IA_FILEIO_H
#define IA_FILEIO_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "lib/attrs.h"

/* Write all len bytes of buf to fd (retrying EINTR and short writes).
 * 0, or -1 with errno (EIO for a write that wrote nothing). */
WARN_UNUSED_RESULT
int fio_write_all(int fd, const void *buf, size_t len);

/* fsync a directory so that a rename in it survives a crash; best effort
 * (some filesystems refuse fsync on directories). */
void fio_sync_dir(const char *dir);

/*
 * The whole regular file path (not followed if a symlink), at most max
 * bytes, as a new NUL-terminated string (caller frees); NULL with errno
 * (EINVAL: not a regular file or larger than max; EIO: short read).
 */
char *fio_slurp(const char *path, size_t max);

/*
 * Write o as one line of plain JSON to path, durably: through path.tmp
 * (a stale one is removed first; created O_EXCL with mode, fchmod'ed to
 * mode whatever the umask, fsync'ed, closed), then renamed over path.
 * The caller fsyncs the directory (fio_sync_dir) when the rename itself
 * must survive a crash.  0, or -1 with *err (caller frees) and path.tmp
 * removed.
 */
WARN_UNUSED_RESULT
int fio_write_json(const char *path, json_object *o, mode_t mode,
    char **err);

/*
 * Read in to its end, computing SHA-256; with out >= 0 also write every
 * byte to out.  0 with hex (64 lower-case digits, NUL-terminated) and
 * *size set, or -1 with *err (caller frees); what names the file in
 * messages.
 */
WARN_UNUSED_RESULT
int fio_sha256_fd(int in, int out, const char *what, char hex[65],
    int64_t *size, char **err);

#endif
