/* SPDX-License-Identifier: MIT */
/* assets: the per-owner registry of licensed InsTaG files; see assets.h. */
#include "auto-config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "lib/clock.h"
#include "lib/fileio.h"
#include "lib/hash.h"
#include "lib/jsonutil.h"
#include "lib/xalloc.h"
#include "store/assets.h"
#include "store/uploads.h"

#define ASSETS_DIR_MODE		0700
#define ASSETS_FILE_MODE	0600
#define ASSETS_META_MAX		65536	/* a record is far smaller */
#define OWNER_DIR_LEN		HASH_OWNER_DIR_LEN

/* ---- kinds --------------------------------------------------------------- */

static const struct {
	const char *kind;
	bool extractor;		/* takes one: output/pretrain_<E>/<path> */
	const char *path;
} kinds[] = {
	{ "bfm2009", false,
	  "data_utils/face_tracking/3DMM/01_MorphableModel.mat" },
	{ "easyportrait", false, "data_utils/easyportrait/fpn-fp-512.pth" },
	{ "pretrain_face", true, "chkpnt_ema_face_latest.pth" },
	{ "pretrain_mouth", true,
	  "chkpnt_ema_mouth_latest.pth" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const extractors[] = {
	"deepspeech", "ave", "esperanto", "hubert", NULL
};

static int
kind_index(const char *kind)
{
	size_t i;

	for (i = 0; kind != NULL && i < NKINDS; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return (int)i;
	return -1;
}

static bool
extractor_valid(const char *e)
{
	size_t i;

	for (i = 0; e != NULL && extractors[i]; i++)
		if (strcmp(extractors[i], e) == 0)
			return true;
	return false;
}

/* NULL and "" are both "no extractor". */
static const char *
ex_or_null(const char *e)
{
	return e != NULL && e[0] != '\0' ? e : NULL;
}

int
assets_slot(const char *kind, const char *extractor,
    char slot[ASSETS_SLOT_MAX], const char **why)
{
	int k = kind_index(kind);

	extractor = ex_or_null(extractor);
	if (k < 0) {
		*why = "unknown asset kind (one of bfm2009, easyportrait, "
		    "pretrain_face, pretrain_mouth)";
		return -1;
	}
	if (kinds[k].extractor && !extractor_valid(extractor)) {
		*why = "this kind needs an extractor (one of deepspeech, ave, "
		    "esperanto, hubert)";
		return -1;
	}
	if (!kinds[k].extractor && extractor != NULL) {
		*why = "this kind takes no extractor";
		return -1;
	}
	if (extractor != NULL)
		snprintf(slot, ASSETS_SLOT_MAX, "%s-%s", kind, extractor);
	else
		snprintf(slot, ASSETS_SLOT_MAX, "%s", kind);
	return 0;
}

bool
assets_remote_path(const char *kind, const char *extractor, char *buf,
    size_t len)
{
	char slot[ASSETS_SLOT_MAX];
	const char *why;
	int k;

	if (assets_slot(kind, extractor, slot, &why) < 0)
		return false;
	k = kind_index(kind);
	if (kinds[k].extractor)
		snprintf(buf, len, "output/pretrain_%s/%s", extractor,
		    kinds[k].path);
	else
		snprintf(buf, len, "%s", kinds[k].path);
	return true;
}

bool
assets_kind_of(const char *remote_path, const char **kind,
    char extractor[ASSETS_SLOT_MAX])
{
	char buf[256];
	size_t i, j;

	for (i = 0; remote_path != NULL && i < NKINDS; i++) {
		for (j = 0; kinds[i].extractor ? extractors[j] != NULL : j < 1;
		    j++) {
			const char *e = kinds[i].extractor ? extractors[j] :
			    NULL;
			if (!assets_remote_path(kinds[i].kind, e, buf,
			    sizeof(buf)) || strcmp(buf, remote_path) != 0)
				continue;
			*kind = kinds[i].kind;
			snprintf(extractor, ASSETS_SLOT_MAX, "%s", e ? e : "");
			return true;
		}
	}
	return false;
}

/* ---- paths --------------------------------------------------------------- */

static void
owner_dir_name(const char *owner, char out[OWNER_DIR_LEN])
{
	/* the same name as the owner's directories on pods */
	hash_owner_dir(owner, out);
}

/* owner's directory (caller frees); made (with assets/) when make.  NULL
 * with *err (caller frees) when it cannot be made. */
static char *
owner_dir(const struct config *cfg, const char *owner, bool make, char **err)
{
	char u[OWNER_DIR_LEN], *top, *dir;

	owner_dir_name(owner, u);
	top = xasprintf("%s/assets", cfg->artifact_dir);
	dir = xasprintf("%s/%s", top, u);
	if (make && ((mkdir(top, ASSETS_DIR_MODE) != 0 && errno != EEXIST) ||
	    (mkdir(dir, ASSETS_DIR_MODE) != 0 && errno != EEXIST))) {
		*err = xasprintf("mkdir %s: %s", dir, strerror(errno));
		free(dir);
		dir = NULL;
	}
	free(top);
	return dir;
}

/* Take dir's lock (flock on dir/.lock): the descriptor, or -1 with *err. */
static int
lock_dir(const char *dir, char **err)
{
	char *p = xasprintf("%s/.lock", dir);
	int fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    ASSETS_FILE_MODE);

	if (fd < 0)
		*err = xasprintf("open %s: %s", p, strerror(errno));
	else if (flock(fd, LOCK_EX) != 0) {
		*err = xasprintf("flock %s: %s", p, strerror(errno));
		close(fd);
		fd = -1;
	}
	free(p);
	return fd;
}

static bool
tag_valid(const char *tag)
{
	size_t i;

	for (i = 0; tag[i] != '\0'; i++)
		if (i >= 64 || (!isalnum((unsigned char)tag[i]) &&
		    tag[i] != '-'))
			return false;
	return i > 0;
}

int
assets_tmp_path(const struct config *cfg, const char *owner, const char *tag,
    char **path, char **err)
{
	char *dir;

	*path = NULL;
	if (tag == NULL || !tag_valid(tag)) {
		*err = xstrdup("assets: bad temporary file tag");
		return -1;
	}
	dir = owner_dir(cfg, owner, true, err);
	if (dir == NULL)
		return -1;
	*path = xasprintf("%s/.tmp-%s", dir, tag);
	free(dir);
	return 0;
}

/* ---- hashing ------------------------------------------------------------- */

int
assets_hash_file(const char *path, char sha256_hex[65], int64_t *size,
    char **err)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*err = xasprintf("open %s: %s", path, fd < 0 ?
		    strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rc = fio_sha256_fd(fd, -1, path, sha256_hex, size, err);
	close(fd);
	return rc;
}

static bool
hex64_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

/* ---- records ------------------------------------------------------------- */

/* Is name "<slot>-<16 hex>.data"? */
static bool
data_name_of(const char *name, const char *slot)
{
	size_t n = strlen(slot), i;

	if (strncmp(name, slot, n) != 0 || name[n] != '-')
		return false;
	for (i = 0; i < 16; i++)
		if (!isxdigit((unsigned char)name[n + 1 + i]))
			return false;
	return strcmp(name + n + 17, ".data") == 0;
}

/* Remove dir's data files of slot other than keep (NULL: all). */
static void
sweep(const char *dir, const char *slot, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!data_name_of(de->d_name, slot) ||
		    (keep != NULL && strcmp(de->d_name, keep) == 0))
			continue;
		(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Read dir/<slot>.json into *out.  0, 1 (no record), -1 (corrupt). */
static int
read_record(const char *dir, const char *slot, struct asset_info *out)
{
	char *path = xasprintf("%s/%s.json", dir, slot), *text;
	const char *kind, *ex, *sha, *file, *src, *tid, *when;
	char want[ASSETS_SLOT_MAX], rp[256];
	const char *why;
	json_object *o = NULL;
	struct stat st;
	int64_t size;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	text = fio_slurp(path, ASSETS_META_MAX);
	if (text == NULL) {
		rc = errno == ENOENT ? 1 : -1;
		goto cleanup;
	}
	o = json_tokener_parse(text);
	if (o == NULL || !json_object_is_type(o, json_type_object))
		goto cleanup;
	kind = ju_str(o, "kind");
	ex = ju_str(o, "extractor");
	sha = ju_str(o, "sha256");
	file = ju_str(o, "file");
	src = ju_str(o, "source");
	tid = ju_str(o, "task_id");
	when = ju_str(o, "registered_at");
	if (kind == NULL || sha == NULL || file == NULL ||
	    ju_int(o, "size", &size) != 0 || size < 0 || !hex64_valid(sha) ||
	    assets_slot(kind, ex, want, &why) < 0 || strcmp(want, slot) != 0 ||
	    !data_name_of(file, slot) ||
	    !assets_remote_path(kind, ex, rp, sizeof(rp)))
		goto cleanup;
	out->path = xasprintf("%s/%s", dir, file);
	if (lstat(out->path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (int64_t)st.st_size != size)
		goto cleanup;
	out->kind = xstrdup(kind);
	out->extractor = ex_or_null(ex) ? xstrdup(ex) : NULL;
	out->sha256 = xstrdup(sha);
	out->remote_path = xstrdup(rp);
	out->source = xstrdup(src ? src : "");
	out->task_id = xstrdup(tid ? tid : "");
	out->registered_at = xstrdup(when ? when : "");
	out->size = size;
	rc = 0;
cleanup:
	if (rc != 0)
		assets_info_clear(out);
	json_object_put(o);
	free(text);
	free(path);
	return rc;
}

/* ---- commit, get, list, delete ------------------------------------------ */

int
assets_commit(const struct config *cfg, const char *owner, const char *kind,
    const char *extractor, const char *tmp_path, const char *sha256,
    int64_t size, const char *source, const char *task_id,
    struct asset_info *out, bool *replaced, char **err)
{
	char slot[ASSETS_SLOT_MAX], name[ASSETS_SLOT_MAX + 32], when[40];
	unsigned char rnd[8];
	const char *why;
	char *dir = NULL, *data = NULL, *rec = NULL;
	json_object *o = NULL;
	struct asset_info old;
	struct stat st;
	int lk = -1, rc = -1, i;
	bool moved = false, renamed = false;

	memset(out, 0, sizeof(*out));
	*replaced = false;
	if (assets_slot(kind, extractor, slot, &why) < 0) {
		*err = xasprintf("assets: %s", why);
		goto cleanup;
	}
	if (!hex64_valid(sha256) || size < 0) {
		*err = xstrdup("assets: bad SHA-256 or size");
		goto cleanup;
	}
	dir = owner_dir(cfg, owner, true, err);
	if (dir == NULL || (lk = lock_dir(dir, err)) < 0)
		goto cleanup;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		*err = xstrdup("assets: no random bytes (OpenSSL)");
		goto cleanup;
	}
	i = snprintf(name, sizeof(name), "%s-", slot);
	for (size_t j = 0; j < sizeof(rnd); j++)
		i += snprintf(name + i, sizeof(name) - (size_t)i, "%02x",
		    rnd[j]);
	snprintf(name + i, sizeof(name) - (size_t)i, ".data");
	data = xasprintf("%s/%s", dir, name);
	/* 0600, except a hard link of an upload, whose mode (0640) is the
	 * upload's too; the owner's 0700 directory keeps others out */
	errno = 0;
	if (lstat(tmp_path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_nlink == 1 && chmod(tmp_path, ASSETS_FILE_MODE) != 0)) {
		*err = xasprintf("%s: %s", tmp_path, errno ? strerror(errno) :
		    "not a regular file");
		goto cleanup;
	}
	if (rename(tmp_path, data) != 0) {
		*err = xasprintf("rename %s: %s", tmp_path, strerror(errno));
		goto cleanup;
	}
	moved = renamed = true;
	*replaced = read_record(dir, slot, &old) != 1;
	assets_info_clear(&old);
	ju_iso8601(clock_wall_ms(), when, sizeof(when));
	o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string(kind));
	if (ex_or_null(extractor))
		json_object_object_add(o, "extractor",
		    json_object_new_string(extractor));
	json_object_object_add(o, "sha256", json_object_new_string(sha256));
	json_object_object_add(o, "size", json_object_new_int64(size));
	json_object_object_add(o, "file", json_object_new_string(name));
	json_object_object_add(o, "source",
	    json_object_new_string(source ? source : ""));
	json_object_object_add(o, "task_id",
	    json_object_new_string(task_id ? task_id : ""));
	json_object_object_add(o, "registered_at",
	    json_object_new_string(when));
	rec = xasprintf("%s/%s.json", dir, slot);
	if (fio_write_json(rec, o, ASSETS_FILE_MODE, err) < 0)
		goto cleanup;
	moved = false;		/* the record names it now */
	fio_sync_dir(dir);
	sweep(dir, slot, name);
	if (read_record(dir, slot, out) != 0) {
		*err = xasprintf("assets: %s unreadable after writing", rec);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc != 0 && moved)
		(void)unlink(data);
	else if (rc != 0 && !renamed)
		(void)unlink(tmp_path);
	if (lk >= 0)
		close(lk);
	json_object_put(o);
	free(dir);
	free(data);
	free(rec);
	return rc;
}

int
assets_from_upload(const struct config *cfg, const char *owner,
    const char *kind, const char *extractor, const char *upload_id,
    const char *expect_sha256, const char *task_id, struct asset_info *out,
    bool *replaced, char **err)
{
	struct upload_info u;
	char slot[ASSETS_SLOT_MAX], hex[65], *tmp = NULL, *src = NULL;
	const char *why;
	int64_t size = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&u, 0, sizeof(u));
	*replaced = false;
	if (assets_slot(kind, extractor, slot, &why) < 0) {
		*err = xasprintf("assets: %s", why);
		return -1;
	}
	if (uploads_lookup(cfg, owner, upload_id, &u) != 0)
		return 1;
	if (expect_sha256 != NULL && strcmp(expect_sha256, u.sha256) != 0) {
		rc = 2;
		goto cleanup;
	}
	/* named after the task: two registrations of one upload at once
	 * (for two kinds) must not share a temporary file */
	if (assets_tmp_path(cfg, owner, task_id != NULL && task_id[0] ?
	    task_id : u.id, &tmp, err) < 0)
		goto cleanup;
	(void)unlink(tmp);	/* a crash's leftover */
	if (link(u.path, tmp) == 0) {
		snprintf(hex, sizeof(hex), "%s", u.sha256);
		size = u.size;
	} else if (uploads_copy(u.path, tmp, ASSETS_FILE_MODE, hex, &size,
	    err) < 0)
		goto cleanup;
	else if (strcmp(hex, u.sha256) != 0) {
		*err = xasprintf("assets: upload %s changed on disk", u.id);
		(void)unlink(tmp);
		goto cleanup;
	}
	src = xasprintf("upload:%s", u.id);
	rc = assets_commit(cfg, owner, kind, extractor, tmp, hex, size, src,
	    task_id, out, replaced, err);
cleanup:
	uploads_info_clear(&u);
	free(tmp);
	free(src);
	return rc;
}

int
assets_get(const struct config *cfg, const char *owner, const char *kind,
    const char *extractor, struct asset_info *out)
{
	char slot[ASSETS_SLOT_MAX], *dir;
	const char *why;
	int rc;

	memset(out, 0, sizeof(*out));
	if (owner == NULL || assets_slot(kind, extractor, slot, &why) < 0)
		return 1;
	dir = owner_dir(cfg, owner, false, NULL);
	rc = read_record(dir, slot, out);
	free(dir);
	return rc;
}

static int
cmp_info(const void *a, const void *b)
{
	const struct asset_info *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	return c != 0 ? c : strcmp(x->extractor ? x->extractor : "",
	    y->extractor ? y->extractor : "");
}

int
assets_list(const struct config *cfg, const char *owner,
    struct asset_info **out, size_t *n, char **err)
{
	size_t k, j, cap = 0;
	char *dir = owner_dir(cfg, owner, false, NULL), slot[ASSETS_SLOT_MAX];
	struct asset_info a;
	struct stat st;
	const char *why;

	*out = NULL;
	*n = 0;
	if (stat(dir, &st) != 0) {
		int e = errno;
		free(dir);
		if (e == ENOENT)
			return 0;
		*err = xasprintf("assets: stat: %s", strerror(e));
		return -1;
	}
	for (k = 0; k < NKINDS; k++) {
		for (j = 0; kinds[k].extractor ? extractors[j] != NULL : j < 1;
		    j++) {
			const char *e = kinds[k].extractor ? extractors[j] :
			    NULL;
			if (assets_slot(kinds[k].kind, e, slot, &why) < 0 ||
			    read_record(dir, slot, &a) != 0)
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 8;
				*out = xrealloc(*out, cap * sizeof(**out));
			}
			(*out)[(*n)++] = a;
		}
	}
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), cmp_info);
	free(dir);
	return 0;
}

int
assets_delete(const struct config *cfg, const char *owner, const char *kind,
    const char *extractor, char **err)
{
	char slot[ASSETS_SLOT_MAX], *dir = NULL, *rec = NULL;
	const char *why;
	struct stat st;
	int lk = -1, rc = 1;

	if (owner == NULL || assets_slot(kind, extractor, slot, &why) < 0)
		return 1;
	dir = owner_dir(cfg, owner, false, NULL);
	if (stat(dir, &st) != 0)
		goto cleanup;
	if ((lk = lock_dir(dir, err)) < 0) {
		rc = -1;
		goto cleanup;
	}
	rec = xasprintf("%s/%s.json", dir, slot);
	if (unlink(rec) != 0) {
		if (errno != ENOENT) {
			*err = xasprintf("unlink %s: %s", rec,
			    strerror(errno));
			rc = -1;
		}
	} else
		rc = 0;
	/* the record first: its absence is the deletion; then the data */
	fio_sync_dir(dir);
	sweep(dir, slot, NULL);
cleanup:
	if (lk >= 0)
		close(lk);
	free(dir);
	free(rec);
	return rc;
}

/* ---- results ------------------------------------------------------------- */

json_object *
assets_info_json(const struct asset_info *a)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(a->kind));
	if (a->extractor != NULL)
		json_object_object_add(o, "extractor",
		    json_object_new_string(a->extractor));
	json_object_object_add(o, "sha256", json_object_new_string(a->sha256));
	json_object_object_add(o, "size", json_object_new_int64(a->size));
	json_object_object_add(o, "path",
	    json_object_new_string(a->remote_path));
	json_object_object_add(o, "source", json_object_new_string(a->source));
	json_object_object_add(o, "registered_at",
	    json_object_new_string(a->registered_at));
	return o;
}

void
assets_info_clear(struct asset_info *a)
{
	if (a == NULL)
		return;
	free(a->kind);
	free(a->extractor);
	free(a->sha256);
	free(a->path);
	free(a->remote_path);
	free(a->source);
	free(a->task_id);
	free(a->registered_at);
	memset(a, 0, sizeof(*a));
}

void
assets_list_free(struct asset_info *list, size_t n)
{
	size_t i;

	for (i = 0; list != NULL && i < n; i++)
		assets_info_clear(&list[i]);
	free(list);
}
