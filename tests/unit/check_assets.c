/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the asset registry (store/assets) and the params checks
 * of its operations (instag/assetops): kinds and slots, paths in the
 * checkout, registering from a file and from an upload, replacing,
 * listing, deleting, file modes, corrupt records, and that no owner ever
 * sees, uses or deletes another's assets.
 */
#include "auto-config.h"

#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "core/config.h"
#include "instag/assetops.h"
#include "lib/xalloc.h"
#include "store/assets.h"
#include "store/uploads.h"
#include "testutil.h"

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

/* Register text as owner's kind/extractor through a temporary file;
 * returns what assets_commit returned, *replaced set. */
static int
put_text(const struct config *cfg, const char *owner, const char *kind,
    const char *ex, const char *text, bool *replaced)
{
	struct asset_info a;
	char *tmp = NULL, *err = NULL, hex[65];
	int64_t size = 0;
	FILE *fp;
	int rc;

	ck_assert_int_eq(assets_tmp_path(cfg, owner, "t-1", &tmp, &err), 0);
	fp = fopen(tmp, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	ck_assert_int_eq(assets_hash_file(tmp, hex, &size, &err), 0);
	ck_assert_int_eq(size, (int64_t)strlen(text));
	rc = assets_commit(cfg, owner, kind, ex, tmp, hex, size, "test",
	    "task-1", &a, replaced, &err);
	ck_assert_msg(rc == 0, "%s", err ? err : "");
	ck_assert_int_ne(access(tmp, F_OK), 0);	/* consumed */
	ck_assert_str_eq(a.kind, kind);
	ck_assert_str_eq(a.sha256, hex);
	assets_info_clear(&a);
	free(tmp);
	return rc;
}

/* How many entries of dir end in suffix. */
static int
count_suffix(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = strlen(suffix);
	int c = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l >= n && strcmp(de->d_name + l - n, suffix) == 0)
			c++;
	}
	closedir(d);
	return c;
}

/* The directory of owner's assets (caller frees). */
static char *
dir_of(const struct config *cfg, const char *owner)
{
	char *tmp = NULL, *err = NULL, *slash;

	ck_assert_int_eq(assets_tmp_path(cfg, owner, "probe", &tmp, &err), 0);
	slash = strrchr(tmp, '/');
	*slash = '\0';
	return tmp;
}

START_TEST(test_kinds)
{
	static const struct {
		const char *kind, *ex, *path;
	} good[] = {
		{ "bfm2009", NULL,
		  "data_utils/face_tracking/3DMM/01_MorphableModel.mat" },
		{ "easyportrait", "",
		  "data_utils/easyportrait/fpn-fp-512.pth" },
		{ "pretrain_face", "ave",
		  "output/pretrain_ave/chkpnt_ema_face_latest.pth" },
		{ "pretrain_mouth", "hubert",
		  "output/pretrain_hubert/chkpnt_ema_mouth_latest.pth" },
		{ "pretrain_face", "deepspeech",
		  "output/pretrain_deepspeech/chkpnt_ema_face_latest.pth" },
		{ "pretrain_mouth", "esperanto",
		  "output/pretrain_esperanto/chkpnt_ema_mouth_latest.pth" },
	};
	static const struct {
		const char *kind, *ex;
	} bad[] = {
		{ NULL, NULL }, { "", NULL }, { "openface", NULL },
		{ "../bfm2009", NULL }, { "bfm2009/..", NULL },
		{ "BFM2009", NULL }, { "bfm2009", "ave" },
		{ "pretrain_face", NULL }, { "pretrain_face", "" },
		{ "pretrain_face", "../../etc" },
		{ "pretrain_mouth", "wav2vec" },
		{ "pretrain_face", "ave/../x" },
	};
	char slot[ASSETS_SLOT_MAX], buf[256], ex[ASSETS_SLOT_MAX];
	const char *why, *kind;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_int_eq(assets_slot(good[i].kind, good[i].ex, slot,
		    &why), 0);
		ck_assert(assets_remote_path(good[i].kind, good[i].ex, buf,
		    sizeof(buf)));
		ck_assert_str_eq(buf, good[i].path);
		ck_assert(assets_kind_of(buf, &kind, ex));
		ck_assert_str_eq(kind, good[i].kind);
		ck_assert_str_eq(ex, good[i].ex ? good[i].ex : "");
	}
	ck_assert_int_eq(assets_slot("pretrain_face", "ave", slot, &why), 0);
	ck_assert_str_eq(slot, "pretrain_face-ave");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		ck_assert_msg(assets_slot(bad[i].kind, bad[i].ex, slot,
		    &why) < 0, "%s/%s", bad[i].kind, bad[i].ex);
		ck_assert_ptr_nonnull(why);
		ck_assert(!assets_remote_path(bad[i].kind, bad[i].ex, buf,
		    sizeof(buf)));
	}
	ck_assert(!assets_kind_of("output/pretrain_ave/../x", &kind, ex));
	ck_assert(!assets_kind_of("git-lfs", &kind, ex));
	ck_assert(!assets_kind_of(NULL, &kind, ex));
}
END_TEST

START_TEST(test_commit_get_replace)
{
	char dir[256];
	struct config *cfg = fresh(dir, sizeof(dir));
	struct asset_info a, *list = NULL;
	char *odir = dir_of(cfg, "alice"), *err = NULL, *top;
	bool replaced = true;
	struct stat st;
	size_t n = 0;

	ck_assert_int_eq(assets_get(cfg, "alice", "bfm2009", NULL, &a), 1);
	put_text(cfg, "alice", "bfm2009", NULL, "abc", &replaced);
	ck_assert(!replaced);
	ck_assert_int_eq(assets_get(cfg, "alice", "bfm2009", NULL, &a), 0);
	ck_assert_str_eq(a.sha256, ABC_SHA256);
	ck_assert_int_eq(a.size, 3);
	ck_assert_str_eq(a.remote_path,
	    "data_utils/face_tracking/3DMM/01_MorphableModel.mat");
	ck_assert_str_eq(a.source, "test");
	ck_assert_str_eq(a.task_id, "task-1");
	ck_assert_ptr_null(a.extractor);
	ck_assert(strncmp(a.path, odir, strlen(odir)) == 0);
	/* modes: directories 0700, files 0600 */
	ck_assert_int_eq(stat(a.path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(odir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	top = xasprintf("%s/artifacts/assets", dir);
	ck_assert_int_eq(stat(top, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	free(top);
	{
		char *rec = xasprintf("%s/bfm2009.json", odir);
		ck_assert_int_eq(stat(rec, &st), 0);
		ck_assert_int_eq(st.st_mode & 0777, 0600);
		free(rec);
	}
	assets_info_clear(&a);

	/* the same kind again: replaced, one data file left */
	put_text(cfg, "alice", "bfm2009", NULL, "abcd", &replaced);
	ck_assert(replaced);
	ck_assert_int_eq(assets_get(cfg, "alice", "bfm2009", NULL, &a), 0);
	ck_assert_int_eq(a.size, 4);
	assets_info_clear(&a);
	ck_assert_int_eq(count_suffix(odir, ".data"), 1);

	/* more kinds: listed sorted by kind, then extractor */
	put_text(cfg, "alice", "pretrain_mouth", "ave", "m", &replaced);
	put_text(cfg, "alice", "pretrain_face", "hubert", "fh", &replaced);
	put_text(cfg, "alice", "pretrain_face", "ave", "fa", &replaced);
	put_text(cfg, "alice", "easyportrait", NULL, "e", &replaced);
	ck_assert_int_eq(assets_list(cfg, "alice", &list, &n, &err), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(list[0].kind, "bfm2009");
	ck_assert_str_eq(list[1].kind, "easyportrait");
	ck_assert_str_eq(list[2].kind, "pretrain_face");
	ck_assert_str_eq(list[2].extractor, "ave");
	ck_assert_str_eq(list[3].extractor, "hubert");
	ck_assert_str_eq(list[4].kind, "pretrain_mouth");
	{
		json_object *j = assets_info_json(&list[2]);
		ck_assert_str_eq(json_object_get_string(json_object_object_get(
		    j, "path")),
		    "output/pretrain_ave/chkpnt_ema_face_latest.pth");
		ck_assert_str_eq(json_object_get_string(json_object_object_get(
		    j, "extractor")), "ave");
		/* the agent's own paths never leave it */
		ck_assert_ptr_null(strstr(json_object_to_json_string(j), dir));
		json_object_put(j);
	}
	assets_list_free(list, n);
	free(odir);
	config_free(cfg);
}
END_TEST

START_TEST(test_owners_apart)
{
	char dir[256];
	struct config *cfg = fresh(dir, sizeof(dir));
	struct asset_info a, *list = NULL;
	char *da = dir_of(cfg, "alice"), *db = dir_of(cfg, "bob"), *err = NULL;
	bool replaced;
	size_t n = 9;

	ck_assert_str_ne(da, db);
	put_text(cfg, "alice", "bfm2009", NULL, "abc", &replaced);
	/* bob sees nothing, cannot delete alice's */
	ck_assert_int_eq(assets_get(cfg, "bob", "bfm2009", NULL, &a), 1);
	ck_assert_int_eq(assets_list(cfg, "bob", &list, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	assets_list_free(list, n);
	ck_assert_int_eq(assets_delete(cfg, "bob", "bfm2009", NULL, &err), 1);
	ck_assert_int_eq(assets_get(cfg, "alice", "bfm2009", NULL, &a), 0);
	assets_info_clear(&a);
	/* bob's own of the same kind leaves alice's alone */
	put_text(cfg, "bob", "bfm2009", NULL, "other", &replaced);
	ck_assert(!replaced);
	ck_assert_int_eq(assets_get(cfg, "alice", "bfm2009", NULL, &a), 0);
	ck_assert_str_eq(a.sha256, ABC_SHA256);
	assets_info_clear(&a);
	/* an owner that is a path is only hashed into a name */
	ck_assert_int_eq(assets_get(cfg, "../alice", "bfm2009", NULL, &a), 1);
	ck_assert_int_eq(assets_get(cfg, NULL, "bfm2009", NULL, &a), 1);
	free(da);
	free(db);
	config_free(cfg);
}
END_TEST

START_TEST(test_from_upload)
{
	char dir[256], *body, *err = NULL, *id, *odir;
	struct config *cfg = fresh(dir, sizeof(dir));
	struct upload_info u;
	struct asset_info a;
	bool replaced;

	body = xasprintf("%s/0000000001XXXXXX", dir);
	tu_write_temp(body, "abc", 3, 0600);
	ck_assert_int_eq(uploads_adopt(cfg, "alice", "bfm.mat", body, &u,
	    &err), 0);
	id = xasprintf("upload:%s", u.id);
	/* someone else's upload: as if absent */
	ck_assert_int_eq(assets_from_upload(cfg, "bob", "bfm2009", NULL, id,
	    NULL, "t", &a, &replaced, &err), 1);
	ck_assert_int_eq(assets_get(cfg, "bob", "bfm2009", NULL, &a), 1);
	ck_assert_int_eq(assets_from_upload(cfg, "alice", "bfm2009", NULL,
	    "upload:../../etc/passwd", NULL, "t", &a, &replaced, &err), 1);
	/* a hash that is not the upload's */
	ck_assert_int_eq(assets_from_upload(cfg, "alice", "bfm2009", NULL, id,
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    "t", &a, &replaced, &err), 2);
	ck_assert_int_eq(assets_get(cfg, "alice", "bfm2009", NULL, &a), 1);
	/* a bad kind */
	ck_assert_int_eq(assets_from_upload(cfg, "alice", "../x", NULL, id,
	    NULL, "t", &a, &replaced, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(assets_from_upload(cfg, "alice", "bfm2009", NULL, id,
	    ABC_SHA256, "t", &a, &replaced, &err), 0);
	ck_assert_str_eq(a.sha256, ABC_SHA256);
	ck_assert_str_eq(a.source, id);
	assets_info_clear(&a);
	/* the upload is still there, and no temporary file is left */
	uploads_info_clear(&u);
	ck_assert_int_eq(uploads_lookup(cfg, "alice", id, &u), 0);
	odir = dir_of(cfg, "alice");
	{
		char *cmd = xasprintf("test -z \"$(ls -A '%s' | grep tmp)\"",
		    odir);
		ck_assert_int_eq(system(cmd), 0);
		free(cmd);
	}
	uploads_info_clear(&u);
	free(odir);
	free(id);
	free(body);
	config_free(cfg);
}
END_TEST

START_TEST(test_delete_and_corrupt)
{
	char dir[256], *odir, *rec, *err = NULL;
	struct config *cfg = fresh(dir, sizeof(dir));
	struct asset_info a, *list = NULL;
	bool replaced;
	size_t n = 0;
	FILE *fp;

	odir = dir_of(cfg, "alice");
	put_text(cfg, "alice", "easyportrait", NULL, "e", &replaced);
	put_text(cfg, "alice", "pretrain_face", "ave", "f", &replaced);
	ck_assert_int_eq(assets_delete(cfg, "alice", "pretrain_face", "ave",
	    &err), 0);
	ck_assert_int_eq(assets_get(cfg, "alice", "pretrain_face", "ave", &a),
	    1);
	ck_assert_int_eq(assets_delete(cfg, "alice", "pretrain_face", "ave",
	    &err), 1);
	ck_assert_int_eq(assets_delete(cfg, "alice", "../easyportrait", NULL,
	    &err), 1);
	ck_assert_int_eq(count_suffix(odir, ".data"), 1);

	/* a corrupt record: get says so, list skips it */
	rec = xasprintf("%s/easyportrait.json", odir);
	fp = fopen(rec, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("{\"kind\":\"easyportrait\",\"file\":\"../../x\"}", fp);
	fclose(fp);
	ck_assert_int_eq(assets_get(cfg, "alice", "easyportrait", NULL, &a),
	    -1);
	ck_assert_int_eq(assets_list(cfg, "alice", &list, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	assets_list_free(list, n);
	/* registering again repairs it */
	put_text(cfg, "alice", "easyportrait", NULL, "e2", &replaced);
	ck_assert_int_eq(assets_get(cfg, "alice", "easyportrait", NULL, &a),
	    0);
	assets_info_clear(&a);
	ck_assert_int_eq(count_suffix(odir, ".data"), 1);

	free(rec);
	rec = NULL;
	/* temporary file tags that are not names are refused */
	ck_assert_int_eq(assets_tmp_path(cfg, "alice", "../x", &rec, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(assets_tmp_path(cfg, "alice", "", &rec, &err), -1);
	free(err);
	free(rec);
	free(odir);
	config_free(cfg);
}
END_TEST

/* instag.register_asset's params checks: clear messages. */
static void
expect_bad(const char *json, const char *fn, const char *needle)
{
	json_object *p = json_tokener_parse(json);
	char *err = NULL;
	int rc;

	ck_assert_ptr_nonnull(p);
	rc = strcmp(fn, "kind") == 0 ? assetops_validate_kind(p, NULL, &err) :
	    assetops_validate_register(p, NULL, &err);
	ck_assert_msg(rc < 0, "%s accepted", json);
	ck_assert_msg(strstr(err, needle) != NULL, "%s: %s", json, err);
	free(err);
	json_object_put(p);
}

START_TEST(test_register_params)
{
	json_object *p;
	char *err = NULL;

	expect_bad("{\"kind\":\"bfm2009\"}", "reg", "exactly one");
	expect_bad("{\"kind\":\"bfm2009\",\"url\":\"https://a.example/x\","
	    "\"upload_id\":\"upload:123e4567-e89b-42d3-a456-426614174000\"}",
	    "reg", "exactly one");
	expect_bad("{\"kind\":\"bfm2009\",\"url\":\"http://a.example/x\"}",
	    "reg", "https://");
	expect_bad("{\"kind\":\"bfm2009\",\"url\":\"file:///etc/passwd\"}",
	    "reg", "https://");
	expect_bad("{\"kind\":\"bfm2009\",\"upload_id\":\"../../x\"}", "reg",
	    "upload id");
	expect_bad("{\"kind\":\"bfm2009\",\"upload_id\":"
	    "\"https://a.example/x\"}", "reg", "upload id");
	expect_bad("{\"kind\":\"pretrain_face\",\"url\":\"https://a/x\"}",
	    "reg", "extractor");
	expect_bad("{\"kind\":\"bfm2009\",\"extractor\":\"ave\","
	    "\"url\":\"https://a/x\"}", "reg", "takes no extractor");
	expect_bad("{\"kind\":\"nope\",\"url\":\"https://a/x\"}", "reg",
	    "unknown asset kind");
	expect_bad("{\"kind\":\"bfm2009\",\"url\":\"https://a/x\","
	    "\"sha256\":\"abc\"}", "reg", "64 hex");
	expect_bad("{\"kind\":\"pretrain_mouth\"}", "kind", "extractor");

	/* good ones; an upper-case hash is made lower-case */
	p = json_tokener_parse("{\"kind\":\"pretrain_face\",\"extractor\":"
	    "\"ave\",\"url\":\"https://a.example/f.pth\",\"sha256\":"
	    "\"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
	    "\"}");
	ck_assert_int_eq(assetops_validate_register(p, NULL, &err), 0);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(p,
	    "sha256")), ABC_SHA256);
	json_object_put(p);
	p = json_tokener_parse("{\"kind\":\"bfm2009\",\"upload_id\":"
	    "\"123e4567-e89b-42d3-a456-426614174000\"}");
	ck_assert_int_eq(assetops_validate_register(p, NULL, &err), 0);
	json_object_put(p);
}
END_TEST

static Suite *
assets_suite(void)
{
	Suite *s = suite_create("assets");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_add_test(tc, test_kinds);
	tcase_add_test(tc, test_commit_get_replace);
	tcase_add_test(tc, test_owners_apart);
	tcase_add_test(tc, test_from_upload);
	tcase_add_test(tc, test_delete_and_corrupt);
	tcase_add_test(tc, test_register_params);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { assets_suite })
