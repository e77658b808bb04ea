/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of uploads: name rules, adopting a file (rename and copy),
 * the record on disk, lookup by owner, and the copy helper.  The case
 * that needs root is a program of its own, check_uploads_root (below).
 */
#include "auto-config.h"

#include <sys/stat.h>

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "core/config.h"
#include "store/uploads.h"
#include "lib/xalloc.h"
#include "testutil.h"

#ifdef TU_ROOT_CASES
/* check_uploads_root runs the root case only: the rest is compiled,
 * unused.  Built from this file with -DTU_ROOT_CASES, it skips (exit 77)
 * when not run as root, so that such a run shows a skip. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"
#endif

/* SHA-256 of "abc" (FIPS 180-2, appendix B.1). */
#define ABC_SHA256 \
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* A fresh directory and a config whose artifact_dir is inside it. */
static struct config *
fresh(char *dir, size_t len)
{
	char *arts;
	struct config *cfg;

	tu_subdir_make(tu_topdir(), dir, len);
	arts = xasprintf("%s/artifacts", dir);
	ck_assert_int_eq(mkdir(arts, 0750), 0);
	cfg = tu_configf("artifact_dir = %s\n", arts);
	free(arts);
	return cfg;
}

/* Write len bytes of data to a new file in dir, named like nginx's
 * temporary files; returns its path (caller frees). */
static char *
body_file(const char *dir, const void *data, size_t len)
{
	char *tmpl = xasprintf("%s/0000000001XXXXXX", dir);

	tu_write_temp(tmpl, data, len, 0600);
	return tmpl;
}

static void
hex_sha256(const void *data, size_t len, char hex[65])
{
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	ck_assert(EVP_Digest(data, len, dig, &n, EVP_sha256(), NULL));
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
}

static int
count_entries(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' 2>/dev/null)\"",
	    dir);
	return system(cmd) == 0 ? 0 : 1;
}

START_TEST(test_names)
{
	static const char *const good[] = {
		"video.mp4", "a", "A-b_c.d", "clip.tar.gz", "x.", "0", NULL
	};
	static const char *const bad[] = {
		"", ".hidden", "..", ".", "-rf", "a/b", "a b", "a\\b", "é.mp4",
		"a\nb", "a:b", "*", NULL
	};
	char longname[200];
	size_t i;

	for (i = 0; good[i] != NULL; i++)
		ck_assert_msg(uploads_name_valid(good[i]), "%s", good[i]);
	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(!uploads_name_valid(bad[i]), "%s", bad[i]);
	ck_assert(!uploads_name_valid(NULL));
	memset(longname, 'a', sizeof(longname));
	longname[UPLOADS_NAME_MAX] = '\0';
	ck_assert(uploads_name_valid(longname));
	longname[UPLOADS_NAME_MAX] = 'a';
	longname[UPLOADS_NAME_MAX + 1] = '\0';
	ck_assert(!uploads_name_valid(longname));
}
END_TEST

START_TEST(test_adopt_and_lookup)
{
	char dir[256], upper[64], *tmp, *want, *meta, *text, *id;
	struct config *cfg = fresh(dir, sizeof(dir));
	struct upload_info u, l;
	struct stat st;
	json_object *o;
	char *err = NULL;

	tmp = body_file(dir, "abc", 3);
	ck_assert_msg(uploads_adopt(cfg, "alice", "clip.mp4", tmp, &u, &err)
	    == 0, "%s", err ? err : "");
	ck_assert_ptr_null(err);
	ck_assert(uuid_valid(u.id));
	ck_assert_int_eq(u.size, 3);
	ck_assert_str_eq(u.sha256, ABC_SHA256);
	ck_assert_str_eq(u.owner, "alice");
	ck_assert_str_eq(u.name, "clip.mp4");
	want = xasprintf("%s/artifacts/uploads/%s/data", dir, u.id);
	ck_assert_str_eq(u.path, want);
	/* moved, not copied: the temporary file is gone */
	ck_assert_int_eq(access(tmp, F_OK), -1);
	ck_assert_int_eq(lstat(u.path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	text = tu_read_file(u.path);
	ck_assert_str_eq(text, "abc");
	free(text);
	meta = xasprintf("%s/artifacts/uploads/%s", dir, u.id);
	ck_assert_int_eq(stat(meta, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0750);
	free(meta);

	/* the record */
	meta = xasprintf("%s/artifacts/uploads/%s/meta.json", dir, u.id);
	text = tu_read_file(meta);
	o = json_tokener_parse(text);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o,
	    "upload_id")), u.id);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o,
	    "owner")), "alice");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o,
	    "name")), "clip.mp4");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o,
	    "sha256")), ABC_SHA256);
	ck_assert_int_eq(json_object_get_int64(json_object_object_get(o,
	    "size")), 3);
	ck_assert_ptr_nonnull(json_object_object_get(o, "created_at"));
	json_object_put(o);
	free(text);
	free(meta);

	/* lookup: bare, prefixed and upper-case ids, by the owner */
	ck_assert_int_eq(uploads_lookup(cfg, "alice", u.id, &l), 0);
	ck_assert_str_eq(l.id, u.id);
	ck_assert_str_eq(l.path, u.path);
	ck_assert_str_eq(l.sha256, ABC_SHA256);
	ck_assert_str_eq(l.name, "clip.mp4");
	ck_assert_int_eq(l.size, 3);
	uploads_info_clear(&l);
	id = xasprintf("upload:%s", u.id);
	ck_assert_int_eq(uploads_lookup(cfg, "alice", id, &l), 0);
	uploads_info_clear(&l);
	free(id);
	snprintf(upper, sizeof(upper), "%s", u.id);
	for (size_t i = 0; upper[i]; i++)
		upper[i] = (char)toupper((unsigned char)upper[i]);
	ck_assert_int_eq(uploads_lookup(cfg, "alice", upper, &l), 0);
	uploads_info_clear(&l);

	/* someone else's id, an unknown id, junk: not found */
	ck_assert_int_eq(uploads_lookup(cfg, "bob", u.id, &l), 1);
	ck_assert_ptr_null(l.path);
	ck_assert_int_eq(uploads_lookup(cfg, "alicex", u.id, &l), 1);
	ck_assert_int_eq(uploads_lookup(cfg, "alice",
	    "0b5e7a46-4c1e-4a9e-9a53-2f1f9c3b7d10", &l), 1);
	ck_assert_int_eq(uploads_lookup(cfg, "alice", "upload:", &l), 1);
	ck_assert_int_eq(uploads_lookup(cfg, "alice", "../../etc", &l), 1);
	ck_assert_int_eq(uploads_lookup(cfg, "alice", NULL, &l), 1);

	/* a corrupt record is an error, a missing data file is absent */
	meta = xasprintf("%s/artifacts/uploads/%s/meta.json", dir, u.id);
	{
		FILE *fp = fopen(meta, "w");
		ck_assert_ptr_nonnull(fp);
		fputs("{not json", fp);
		fclose(fp);
	}
	ck_assert_int_eq(uploads_lookup(cfg, "alice", u.id, &l), -1);
	free(meta);

	uploads_info_clear(&u);
	ck_assert_ptr_null(u.path);
	uploads_info_clear(NULL);
	free(want);
	free(tmp);
	config_free(cfg);
}
END_TEST

START_TEST(test_missing_data)
{
	char dir[256], *tmp;
	struct config *cfg = fresh(dir, sizeof(dir));
	struct upload_info u, l;
	char *err = NULL;

	tmp = body_file(dir, "abc", 3);
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "a.wav", tmp, &u, &err),
	    0);
	ck_assert_int_eq(unlink(u.path), 0);
	ck_assert_int_eq(uploads_lookup(cfg, "alice", u.id, &l), 1);
	uploads_info_clear(&u);
	free(tmp);
	config_free(cfg);
}
END_TEST

START_TEST(test_adopt_refuses)
{
	char dir[256], *tmp, *lnk, *hard, *uploads;
	struct config *cfg = fresh(dir, sizeof(dir));
	struct upload_info u;
	char *err = NULL;

	tmp = body_file(dir, "abc", 3);
	uploads = xasprintf("%s/artifacts/uploads", dir);

	/* a bad name: nothing happens */
	ck_assert_int_eq(uploads_adopt(cfg, "alice", ".hidden", tmp, &u,
	    &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_null(u.path);
	xfree(&err);
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "a/b", tmp, &u, &err), -1);
	xfree(&err);
	/* no owner */
	ck_assert_int_eq(uploads_adopt(cfg, "", "a.mp4", tmp, &u, &err), -1);
	xfree(&err);
	/* a relative path */
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "a.mp4",
	    "0000000001", &u, &err), -1);
	xfree(&err);
	/* a symlink */
	lnk = xasprintf("%s/0000000002", dir);
	ck_assert_int_eq(symlink(tmp, lnk), 0);
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "a.mp4", lnk, &u, &err),
	    -1);
	xfree(&err);
	/* a file with a second link */
	hard = xasprintf("%s/0000000003", dir);
	ck_assert_int_eq(link(tmp, hard), 0);
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "a.mp4", hard, &u, &err),
	    -1);
	xfree(&err);
	ck_assert_int_eq(unlink(hard), 0);
	free(hard);
	free(lnk);
	/* a missing file */
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "a.mp4",
	    "/nonexistent/0000000009", &u, &err), -1);
	xfree(&err);

	/* nothing was adopted, the original is intact */
	ck_assert_int_eq(count_entries(uploads), 0);
	ck_assert_int_eq(access(tmp, F_OK), 0);
	free(uploads);
	free(tmp);
	config_free(cfg);
}
END_TEST

/* An artifact_dir that cannot be written: the failure leaves nothing and
 * removes the stale temporary file. */
START_TEST(test_adopt_failure_cleans)
{
	char dir[256], *tmp;
	struct config *cfg;
	struct upload_info u;
	char *err = NULL;

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	cfg = tu_configf("artifact_dir = %s/not-a-dir/artifacts\n", dir);
	tmp = body_file(dir, "abc", 3);
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "a.mp4", tmp, &u, &err),
	    -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "mkdir"));
	free(err);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	free(tmp);
	config_free(cfg);
}
END_TEST

#ifdef TU_ROOT_CASES
/* As root (check_uploads_root): a file someone else owns is copied, as in
 * production where nginx's 0600 file belongs to www-data. */
START_TEST(test_adopt_copies_foreign_file)
{
	char dir[256], *tmp, *text;
	struct config *cfg = fresh(dir, sizeof(dir));
	struct upload_info u;
	struct stat st;
	char *err = NULL;

	ck_assert_int_eq(geteuid(), 0);
	tmp = body_file(dir, "abc", 3);
	ck_assert_int_eq(chown(tmp, 65534, 65534), 0);
	ck_assert_msg(uploads_adopt(cfg, "alice", "v.mp4", tmp, &u, &err) == 0,
	    "%s", err ? err : "");
	ck_assert_str_eq(u.sha256, ABC_SHA256);
	ck_assert_int_eq(lstat(u.path, &st), 0);
	ck_assert_int_eq((int)st.st_uid, 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	text = tu_read_file(u.path);
	ck_assert_str_eq(text, "abc");
	free(text);
	/* the original is unlinked once copied */
	ck_assert_int_eq(access(tmp, F_OK), -1);
	uploads_info_clear(&u);
	free(tmp);
	config_free(cfg);
}
END_TEST
#endif

START_TEST(test_copy)
{
	char dir[256], hex[65], want[65], *src, *dst, *text, *lnk;
	size_t len = (3u << 20) + 17, i;
	unsigned char *data = xmalloc(len);
	struct stat st;
	int64_t size = -1;
	char *err = NULL;
	mode_t old;

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + (i >> 11));
	src = body_file(dir, data, len);
	dst = xasprintf("%s/copy", dir);
	old = umask(077);
	ck_assert_msg(uploads_copy(src, dst, 0640, hex, &size, &err) == 0,
	    "%s", err ? err : "");
	umask(old);
	hex_sha256(data, len, want);
	ck_assert_str_eq(hex, want);
	ck_assert_int_eq(size, (int64_t)len);
	ck_assert_int_eq(stat(dst, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_size, (off_t)len);
	/* the source stays (the caller unlinks it) */
	ck_assert_int_eq(access(src, F_OK), 0);

	/* an existing destination is neither overwritten nor removed */
	ck_assert_int_eq(uploads_copy(src, dst, 0640, hex, &size, &err), -1);
	ck_assert_ptr_nonnull(err);
	xfree(&err);
	ck_assert_int_eq(stat(dst, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)len);

	/* a symlinked source is refused and leaves no destination */
	lnk = xasprintf("%s/link", dir);
	ck_assert_int_eq(symlink(src, lnk), 0);
	free(dst);
	dst = xasprintf("%s/copy2", dir);
	ck_assert_int_eq(uploads_copy(lnk, dst, 0640, hex, &size, &err), -1);
	xfree(&err);
	ck_assert_int_eq(access(dst, F_OK), -1);

	/* a known string */
	free(src);
	src = body_file(dir, "abc", 3);
	ck_assert_int_eq(uploads_copy(src, dst, 0600, hex, &size, &err), 0);
	ck_assert_str_eq(hex, ABC_SHA256);
	ck_assert_int_eq(size, 3);
	text = tu_read_file(dst);
	ck_assert_str_eq(text, "abc");
	free(text);

	free(lnk);
	free(src);
	free(dst);
	free(data);
}
END_TEST

#ifdef TU_ROOT_CASES
static Suite *
uploads_root_suite(void)
{
	Suite *s = suite_create("uploads_root");
	TCase *tc = tcase_create("root");

	tu_require(geteuid() == 0, "giving a file to another owner (chown) "
	    "needs root");
	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_add_test(tc, test_adopt_copies_foreign_file);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { uploads_root_suite })
#else
static Suite *
uploads_suite(void)
{
	Suite *s = suite_create("uploads");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_adopt_and_lookup);
	tcase_add_test(tc, test_missing_data);
	tcase_add_test(tc, test_adopt_refuses);
	tcase_add_test(tc, test_adopt_failure_cleans);
	tcase_add_test(tc, test_copy);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { uploads_suite })
#endif
