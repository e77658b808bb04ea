/* SPDX-License-Identifier: MIT */
/* uploads: adopt nginx's buffered request bodies as uploads; see uploads.h. */
#include "auto-config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "lib/clock.h"
#include "lib/fileio.h"
#include "lib/jsonutil.h"
#include "store/uploads.h"
#include "lib/uuid.h"
#include "lib/xalloc.h"

#define UPLOADS_DIR_MODE	0750
#define UPLOADS_FILE_MODE	0640
#define UPLOADS_META_MAX	65536	/* a meta.json is far smaller */

/* ---- names and paths ---------------------------------------------------- */

bool
uploads_name_valid(const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
	    name[0] == '-')
		return false;
	for (n = 0; name[n] != '\0'; n++) {
		if (n >= UPLOADS_NAME_MAX)
			return false;
		if (!isalnum((unsigned char)name[n]) &&
		    strchr("._-", name[n]) == NULL)
			return false;
	}
	return true;
}

/* "upload:<uuid>" or "<uuid>" into a bare lower-case id; false if neither. */
static bool
parse_id(const char *s, char id[UUID_STR_LEN])
{
	size_t i;

	if (s == NULL)
		return false;
	if (strncmp(s, UPLOADS_ID_PREFIX, strlen(UPLOADS_ID_PREFIX)) == 0)
		s += strlen(UPLOADS_ID_PREFIX);
	if (!uuid_valid(s))
		return false;
	for (i = 0; i < UUID_STR_LEN - 1; i++)
		id[i] = (char)tolower((unsigned char)s[i]);
	id[UUID_STR_LEN - 1] = '\0';
	return true;
}

static bool
hex64_valid(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

/* ---- copying ------------------------------------------------------------ */

int
uploads_copy(const char *src, const char *dst, mode_t mode,
    char sha256_hex[65], int64_t *size, char **err)
{
	struct stat st;
	int in = -1, out = -1, rc = -1, made = 0;

	*err = NULL;
	in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		*err = xasprintf("open %s: %s", src, strerror(errno));
		goto cleanup;
	}
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		*err = xasprintf("%s: not a regular file", src);
		goto cleanup;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (out < 0) {
		*err = xasprintf("create %s: %s", dst, strerror(errno));
		goto cleanup;
	}
	made = 1;
	/* The umask may have taken bits away; the mode is part of the API. */
	if (fchmod(out, mode) != 0) {
		*err = xasprintf("chmod %s: %s", dst, strerror(errno));
		goto cleanup;
	}
	if (fio_sha256_fd(in, out, src, sha256_hex, size, err) != 0)
		goto cleanup;
	if (*size != (int64_t)st.st_size) {
		*err = xasprintf("%s changed size while it was copied", src);
		goto cleanup;
	}
	if (fsync(out) != 0) {
		*err = xasprintf("fsync %s: %s", dst, strerror(errno));
		goto cleanup;
	}
	if (close(out) != 0) {
		out = -1;
		*err = xasprintf("close %s: %s", dst, strerror(errno));
		goto cleanup;
	}
	out = -1;
	rc = 0;
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (rc != 0 && made)
		unlink(dst);
	return rc;
}

/*
 * Move src (whose lstat is *sst) to dst, hashing it.  rename(2) when the
 * agent owns the file; a copy when the file is someone else's (nginx's
 * 0600 file: only a copy gives the agent a file it may chmod) or the
 * rename fails because of the filesystem or permissions.  On failure dst
 * does not exist.
 */
static int
move_in(const char *src, const struct stat *sst, const char *dst,
    char hex[65], int64_t *size, char **err)
{
	struct stat st;
	int fd = -1, rc = -1, moved = 0;

	if (sst->st_uid == geteuid()) {
		if (rename(src, dst) == 0)
			moved = 1;
		else if (errno != EXDEV && errno != EACCES && errno != EPERM &&
		    errno != EROFS) {
			*err = xasprintf("rename %s to %s: %s", src, dst,
			    strerror(errno));
			return -1;
		}
	}
	if (!moved) {
		if (uploads_copy(src, dst, UPLOADS_FILE_MODE, hex, size,
		    err) != 0)
			return -1;
		/* nginx's `clean` removes it otherwise. */
		(void)unlink(src);
		return 0;
	}
	fd = open(dst, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*err = xasprintf("open %s: %s", dst, strerror(errno));
		goto cleanup;
	}
	if (fstat(fd, &st) != 0 || st.st_dev != sst->st_dev ||
	    st.st_ino != sst->st_ino) {
		*err = xasprintf("%s was replaced while it was adopted", src);
		goto cleanup;
	}
	if (fchmod(fd, UPLOADS_FILE_MODE) != 0) {
		*err = xasprintf("chmod %s: %s", dst, strerror(errno));
		goto cleanup;
	}
	/* nginx does not fsync what it buffers. */
	if (fsync(fd) != 0) {
		*err = xasprintf("fsync %s: %s", dst, strerror(errno));
		goto cleanup;
	}
	if (fio_sha256_fd(fd, -1, dst, hex, size, err) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(dst);
	return rc;
}

/* ---- the record ---------------------------------------------------------- */

/* Write meta.json in dir (durably, through meta.json.tmp); 0 or -1 with
 * *err. */
static int
write_meta(const char *dir, const struct upload_info *u, char **err)
{
	json_object *o = json_object_new_object();
	char *path = xasprintf("%s/meta.json", dir);
	char when[40];
	int rc;

	ju_iso8601(clock_wall_ms(), when, sizeof(when));
	json_object_object_add(o, "upload_id", json_object_new_string(u->id));
	json_object_object_add(o, "owner", json_object_new_string(u->owner));
	json_object_object_add(o, "name", json_object_new_string(u->name));
	json_object_object_add(o, "size", json_object_new_int64(u->size));
	json_object_object_add(o, "sha256", json_object_new_string(u->sha256));
	json_object_object_add(o, "created_at", json_object_new_string(when));
	rc = fio_write_json(path, o, UPLOADS_FILE_MODE, err);
	json_object_put(o);
	free(path);
	return rc;
}

/* ---- adopt and look up --------------------------------------------------- */

int
uploads_adopt(const struct config *cfg, const char *owner, const char *name,
    const char *tmp_path, struct upload_info *out, char **err)
{
	char *top = NULL, *dir = NULL, *data = NULL;
	char hex[65];
	struct stat st;
	int rc = -1, made_dir = 0, placed = 0, checked = 0;

	memset(out, 0, sizeof(*out));
	*err = NULL;
	if (!uploads_name_valid(name)) {
		*err = xasprintf("invalid upload name");
		goto cleanup;
	}
	if (owner == NULL || owner[0] == '\0') {
		*err = xasprintf("an upload needs an owner");
		goto cleanup;
	}
	if (tmp_path == NULL || tmp_path[0] != '/') {
		*err = xasprintf("the uploaded file's path is not absolute");
		goto cleanup;
	}
	if (lstat(tmp_path, &st) != 0) {
		*err = xasprintf("lstat %s: %s", tmp_path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		*err = xasprintf("%s: not a regular file with one link",
		    tmp_path);
		goto cleanup;
	}
	checked = 1;

	top = xasprintf("%s/uploads", cfg->artifact_dir);
	if (mkdir(top, UPLOADS_DIR_MODE) != 0 && errno != EEXIST) {
		*err = xasprintf("mkdir %s: %s", top, strerror(errno));
		goto cleanup;
	}
	uuid_v4(out->id);
	dir = xasprintf("%s/%s", top, out->id);
	if (mkdir(dir, UPLOADS_DIR_MODE) != 0) {
		*err = xasprintf("mkdir %s: %s", dir, strerror(errno));
		goto cleanup;
	}
	made_dir = 1;
	data = xasprintf("%s/data", dir);
	if (move_in(tmp_path, &st, data, hex, &out->size, err) != 0)
		goto cleanup;
	placed = 1;

	out->owner = xstrdup(owner);
	out->name = xstrdup(name);
	out->sha256 = xstrdup(hex);
	if (write_meta(dir, out, err) != 0)
		goto cleanup;
	fio_sync_dir(dir);
	fio_sync_dir(top);
	out->path = data;
	data = NULL;
	rc = 0;
cleanup:
	if (rc != 0) {
		if (placed)
			unlink(data);
		if (made_dir)
			rmdir(dir);
		/* A stale nginx temporary file is of no use to anyone. */
		if (checked && !placed)
			(void)unlink(tmp_path);
		uploads_info_clear(out);
	}
	free(top);
	free(dir);
	free(data);
	return rc;
}

int
uploads_lookup(const struct config *cfg, const char *owner,
    const char *upload_id, struct upload_info *out)
{
	char id[UUID_STR_LEN], *meta = NULL, *text = NULL;
	json_object *o = NULL;
	const char *m_id, *m_owner, *m_name, *m_sha;
	int64_t size;
	struct stat st;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (owner == NULL || !parse_id(upload_id, id))
		return 1;
	meta = xasprintf("%s/uploads/%s/meta.json", cfg->artifact_dir, id);
	text = fio_slurp(meta, UPLOADS_META_MAX);
	if (text == NULL) {
		rc = (errno == ENOENT || errno == ENOTDIR) ? 1 : -1;
		goto cleanup;
	}
	o = json_tokener_parse(text);
	if (o == NULL || !json_object_is_type(o, json_type_object))
		goto cleanup;
	m_id = ju_str(o, "upload_id");
	m_owner = ju_str(o, "owner");
	m_name = ju_str(o, "name");
	m_sha = ju_str(o, "sha256");
	if (m_id == NULL || m_owner == NULL || m_name == NULL ||
	    m_sha == NULL || ju_int(o, "size", &size) != 0)
		goto cleanup;
	if (strcmp(m_owner, owner) != 0) {
		rc = 1;		/* someone else's: not found */
		goto cleanup;
	}
	if (strcmp(m_id, id) != 0 || !uploads_name_valid(m_name) ||
	    !hex64_valid(m_sha) || size < 0)
		goto cleanup;
	memcpy(out->id, id, sizeof(out->id));
	out->path = xasprintf("%s/uploads/%s/data", cfg->artifact_dir, id);
	if (lstat(out->path, &st) != 0) {
		rc = errno == ENOENT ? 1 : -1;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || (int64_t)st.st_size != size)
		goto cleanup;
	out->owner = xstrdup(m_owner);
	out->name = xstrdup(m_name);
	out->sha256 = xstrdup(m_sha);
	out->size = size;
	rc = 0;
cleanup:
	if (rc != 0)
		uploads_info_clear(out);
	json_object_put(o);
	free(text);
	free(meta);
	return rc;
}

void
uploads_info_clear(struct upload_info *info)
{
	if (info == NULL)
		return;
	free(info->owner);
	free(info->name);
	free(info->path);
	free(info->sha256);
	memset(info, 0, sizeof(*info));
}

int
uploads_adopt_base64(const struct config *cfg, const char *owner,
    const char *name, const char *b64, struct upload_info *out, char **err)
{
	size_t n = strlen(b64), pad = 0, cap;
	unsigned char *buf = NULL;
	char *dir = NULL, *tmp = NULL;
	int len, fd = -1, rc = -1;

	memset(out, 0, sizeof(*out));
	while (n > 0 && (b64[n - 1] == '\n' || b64[n - 1] == '\r'))
		n--;
	if (n == 0) {
		*err = xstrdup("the file part is empty");
		goto cleanup;
	}
	/* EVP_DecodeBlock wants whole 4-character groups. */
	{
		char *padded = xmalloc(n + 4);
		memcpy(padded, b64, n);
		while (n % 4 != 0)
			padded[n++] = '=';
		padded[n] = '\0';
		pad = (n >= 1 && padded[n - 1] == '=') +
		    (n >= 2 && padded[n - 2] == '=');
		cap = n / 4 * 3 + 1;
		buf = xmalloc(cap);
		len = EVP_DecodeBlock(buf, (const unsigned char *)padded,
		    (int)n);
		free(padded);
	}
	if (len < 0 || (size_t)len < pad || (size_t)len - pad == 0) {
		*err = xstrdup("the file part's bytes are not base64");
		goto cleanup;
	}
	len -= (int)pad;
	dir = xasprintf("%s/uploads", cfg->artifact_dir);
	if (mkdir(cfg->artifact_dir, 0750) < 0 && errno != EEXIST) {
		*err = xasprintf("cannot make %s: %s", cfg->artifact_dir,
		    strerror(errno));
		goto cleanup;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		*err = xasprintf("cannot make %s: %s", dir, strerror(errno));
		goto cleanup;
	}
	tmp = xasprintf("%s/.part-XXXXXX", dir);
	if ((fd = mkstemp(tmp)) < 0) {
		*err = xasprintf("cannot write in %s: %s", dir,
		    strerror(errno));
		goto cleanup;
	}
	if (write(fd, buf, (size_t)len) != (ssize_t)len || fsync(fd) != 0) {
		*err = xasprintf("cannot write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto cleanup;
	}
	close(fd);
	fd = -1;
	rc = uploads_adopt(cfg, owner, name, tmp, out, err);
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(dir);
	free(tmp);
	return rc;
}
