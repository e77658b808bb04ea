/* SPDX-License-Identifier: MIT */
/*
 * uploads: large inputs sent with PUT /uploads/{name} (docs/api.md).
 * Prefix uploads_.
 *
 * nginx writes the request body to a temporary file and passes its path
 * (INSTAG_UPLOAD_FILE); the agent never reads such a body from FastCGI.
 * uploads_adopt() moves that file into the agent's own tree, hashes it and
 * records who sent it:
 *
 *	<artifact_dir>/uploads/<id>/data	the bytes, mode 0640
 *	<artifact_dir>/uploads/<id>/meta.json	{"upload_id", "owner", "name",
 *						 "size", "sha256", "created_at"}
 *
 * Directories are 0750.  The file is renamed when the agent owns it and
 * both paths are on one filesystem; otherwise (EXDEV, or nginx's 0600 file
 * owned by www-data in a directory the agent may only read) it is copied,
 * fsync'd, and the original unlinked when the agent may.  An upload id
 * ("upload:<uuid>" or the bare UUID) is visible to its owner only:
 * uploads_lookup() treats someone else's id as absent.
 *
 * Nothing here keeps state; every function is safe from any thread.
 */
#ifndef IA_UPLOADS_H
#define IA_UPLOADS_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "lib/uuid.h"
#include "lib/attrs.h"

#define UPLOADS_NAME_MAX	128	/* longest {name}, bytes */
#define UPLOADS_ID_PREFIX	"upload:"

struct upload_info {
	char id[UUID_STR_LEN];	/* bare lower-case UUID */
	char *owner;		/* owned: the sub that sent it */
	char *name;		/* owned: the {name} of the PUT */
	char *path;		/* owned: absolute path of the data file */
	char *sha256;		/* owned: 64 lower-case hex digits */
	int64_t size;
};

/* True when name is [A-Za-z0-9._-]{1,128} and starts with neither '.'
 * nor '-'. */
bool uploads_name_valid(const char *name);

/*
 * Adopt the temporary file tmp_path (absolute, a regular file with a single
 * link, not a symlink) as a new upload of owner named name.  On success
 * returns 0 and fills *out (caller clears it with uploads_info_clear).  On
 * failure returns -1, *out is empty, *err is a message fit for a log line
 * (caller frees; it names paths, so do not send it to clients), nothing is
 * left under uploads/, and tmp_path is unlinked when possible (nginx's
 * `client_body_in_file_only clean` removes it too).
 */
WARN_UNUSED_RESULT
int uploads_adopt(const struct config *cfg, const char *owner,
    const char *name, const char *tmp_path, struct upload_info *out,
    char **err);

/*
 * Find owner's upload upload_id ("upload:<uuid>" or a bare UUID, either
 * case).  0: found, *out filled (caller clears it); 1: no such upload of
 * owner's (someone else's id, a malformed id, a missing file); -1: the
 * upload exists but its record is unreadable or corrupt.  *out is empty
 * unless 0 is returned.
 */
WARN_UNUSED_RESULT
int uploads_lookup(const struct config *cfg, const char *owner,
    const char *upload_id, struct upload_info *out);

/*
 * Adopt the base64 text b64 (standard alphabet, padding optional; an A2A
 * file part's bytes) as a new upload of owner named name, like
 * uploads_adopt().  -1 with *err (caller frees) on bad base64, an empty
 * file, a bad name or a write error.
 */
WARN_UNUSED_RESULT
int uploads_adopt_base64(const struct config *cfg, const char *owner,
    const char *name, const char *b64, struct upload_info *out, char **err);

/* Free what info holds and zero it.  NULL ok. */
void uploads_info_clear(struct upload_info *info);

/*
 * Copy src to the new file dst (created with O_EXCL and mode), fsync it,
 * and hash what was copied: sha256_hex gets 64 hex digits and NUL, *size
 * the byte count.  src must be a regular file (symlinks are refused).  0,
 * or -1 with *err (caller frees) and dst removed.  Used by uploads_adopt()
 * when rename(2) cannot move the file.
 */
WARN_UNUSED_RESULT
int uploads_copy(const char *src, const char *dst, mode_t mode,
    char sha256_hex[65], int64_t *size, char **err);

#endif
