/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the readiness checks (server/ready.h) on a real store and
 * real directories: every check passes; a store another connection holds
 * locked, an artifact_dir that cannot be made, shutting down, each fails
 * with its reason; RunPod not asked yet is not ready, RunPod out of reach
 * is ready but degraded.  (/readyz through nginx, with the RunPod
 * stand-in, is in tests/integration/check_http.c and check_runpod.c.)
 */
#include "auto-config.h"

#include <sys/stat.h>

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "providers/runpod/pods.h"
#include "server/ready.h"
#include "store/store.h"
#include "testutil.h"

/* One test's world: a directory with the store and the config. */
struct world {
	char dir[300];
	char db[400];
	struct config *cfg;
	struct store *st;
};

/* artifacts: artifact_dir (NULL: dir/artifacts); extra: more config
 * lines (NULL: none). */
static void
world_up(struct world *w, const char *artifacts, const char *extra)
{
	char *err = NULL, *art;

	unsetenv("RUNPOD_API_KEY");
	tu_subdir_make(tu_topdir(), w->dir, sizeof(w->dir));
	snprintf(w->db, sizeof(w->db), "%s/tasks.db", w->dir);
	art = artifacts ? xstrdup(artifacts) :
	    xasprintf("%s/artifacts", w->dir);
	w->cfg = tu_configf("artifact_dir = %s\n%s", art, extra ? extra : "");
	free(art);
	ck_assert_msg(store_open(w->db, NULL, &w->st, &err) == 0, "store: %s",
	    err ? err : "?");
	ck_assert_msg(pods_init(w->cfg, w->st, &err) == 0, "pods: %s",
	    err ? err : "?");
	ready_init(w->cfg, w->st);
	ready_forget();
}

static void
world_down(struct world *w)
{
	pods_shutdown();
	store_close(w->st);
	config_free(w->cfg);
}

/* ready_eval(may_probe); *body for the caller to put. */
static bool
eval(bool may_probe, json_object **body)
{
	*body = NULL;
	return ready_eval(may_probe, body);
}

static json_object *
check_of(json_object *body, const char *name)
{
	json_object *checks = NULL, *c = NULL;

	ck_assert(json_object_object_get_ex(body, "checks", &checks));
	ck_assert_msg(json_object_object_get_ex(checks, name, &c),
	    "no check %s", name);
	return c;
}

static bool
check_ok(json_object *body, const char *name)
{
	json_object *v = NULL;

	ck_assert(json_object_object_get_ex(check_of(body, name), "ok", &v));
	return json_object_get_boolean(v);
}

/* The reason of check name, "" when none. */
static const char *
reason(json_object *body, const char *name)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(check_of(body, name), "reason", &v))
		return "";
	return json_object_get_string(v);
}

static const char *
status_of(json_object *body)
{
	json_object *v = NULL;

	ck_assert(json_object_object_get_ex(body, "status", &v));
	return json_object_get_string(v);
}

/* How many entries of dir begin with ".readyz-". */
static int
leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".readyz-", 8) == 0)
			n++;
	closedir(d);
	return n;
}

START_TEST(test_all_ok)
{
	struct world w;
	json_object *body, *v = NULL;
	char path[400];
	struct strbuf sb = SB_INIT;

	world_up(&w, NULL, NULL);
	ck_assert(eval(true, &body));
	ck_assert_str_eq(status_of(body), "ready");
	ck_assert(json_object_object_get_ex(body, "degraded", &v));
	ck_assert(!json_object_get_boolean(v));
	ck_assert(check_ok(body, "serving"));
	ck_assert(check_ok(body, "store"));
	ck_assert(check_ok(body, "artifact_dir"));
	ck_assert(check_ok(body, "uploads_dir"));
	/* No key: RunPod is not configured, nothing to check. */
	ck_assert(check_ok(body, "runpod"));
	ck_assert(json_object_object_get_ex(check_of(body, "runpod"),
	    "configured", &v));
	ck_assert(!json_object_get_boolean(v));
	json_object_put(body);
	/* The directories were made, and the probe files are gone. */
	snprintf(path, sizeof(path), "%s/artifacts/uploads", w.dir);
	ck_assert_int_eq(access(path, W_OK), 0);
	ck_assert_int_eq(leftovers(path), 0);
	snprintf(path, sizeof(path), "%s/artifacts", w.dir);
	ck_assert_int_eq(leftovers(path), 0);

	ready_metrics(&sb);
	ck_assert_ptr_nonnull(strstr(sb_str(&sb),
	    "\ninstag_agent_ready{check=\"store\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(sb_str(&sb),
	    "\ninstag_agent_ready{check=\"runpod\"} 1\n"));
	sb_free(&sb);
	world_down(&w);
}
END_TEST

START_TEST(test_store_locked)
{
	struct world w;
	json_object *body;
	sqlite3 *db = NULL;
	struct strbuf sb = SB_INIT;

	world_up(&w, NULL, NULL);
	ck_assert_int_eq(sqlite3_open_v2(w.db, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	ck_assert(!eval(true, &body));
	ck_assert_str_eq(status_of(body), "not ready");
	ck_assert(!check_ok(body, "store"));
	ck_assert_msg(strstr(reason(body, "store"), "locked") != NULL,
	    "reason '%s'", reason(body, "store"));
	ck_assert(check_ok(body, "artifact_dir"));
	json_object_put(body);
	ready_metrics(&sb);
	ck_assert_ptr_nonnull(strstr(sb_str(&sb),
	    "\ninstag_agent_ready{check=\"store\"} 0\n"));
	sb_free(&sb);

	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	ready_forget();
	ck_assert(eval(true, &body));
	ck_assert(check_ok(body, "store"));
	json_object_put(body);
	world_down(&w);
}
END_TEST

/* artifact_dir under a regular file: neither it nor uploads can be made
 * (also as root); the reason names the key, not the path. */
START_TEST(test_dir_not_writable)
{
	struct world w;
	json_object *body;
	char dir[300], file[400], *extra;
	FILE *fp;

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/plain", dir);
	fp = fopen(file, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	extra = xasprintf("%s/artifacts", file);
	world_up(&w, extra, NULL);
	ck_assert(!eval(true, &body));
	ck_assert(check_ok(body, "store"));
	ck_assert(!check_ok(body, "artifact_dir"));
	ck_assert(!check_ok(body, "uploads_dir"));
	ck_assert_msg(strstr(reason(body, "artifact_dir"), "artifact_dir") !=
	    NULL, "reason '%s'", reason(body, "artifact_dir"));
	ck_assert_ptr_null(strstr(reason(body, "artifact_dir"), dir));
	json_object_put(body);
	world_down(&w);
	free(extra);
}
END_TEST

START_TEST(test_stopping)
{
	struct world w;
	json_object *body;

	world_up(&w, NULL, NULL);
	ready_set_stopping();
	ck_assert(!eval(true, &body));
	ck_assert(!check_ok(body, "serving"));
	ck_assert(check_ok(body, "store"));
	ck_assert_ptr_nonnull(strstr(reason(body, "serving"), "shutting"));
	json_object_put(body);
	world_down(&w);
}
END_TEST

/* RunPod configured at a port where nothing listens: before anyone asked
 * it, not ready; /readyz asks (once) and finds it out of reach: ready,
 * degraded, the key nowhere in the answer. */
START_TEST(test_runpod_unreachable)
{
	struct world w;
	json_object *body, *v = NULL;
	char dir[300], key[400], *extra;
	const char *text;
	FILE *fp;

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	snprintf(key, sizeof(key), "%s/runpod.key", dir);
	fp = fopen(key, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("rpa_SECRETKEY123\n", fp);
	fclose(fp);
	ck_assert_int_eq(chmod(key, 0600), 0);
	extra = xasprintf("runpod_api_key_file = %s\n"
	    "runpod_url = http://127.0.0.1:1\n", key);
	world_up(&w, NULL, extra);

	/* The metrics never ask RunPod. */
	ck_assert(!eval(false, &body));
	ck_assert(!check_ok(body, "runpod"));
	ck_assert_msg(strstr(reason(body, "runpod"), "not been asked") !=
	    NULL, "reason '%s'", reason(body, "runpod"));
	json_object_put(body);

	ck_assert(eval(true, &body));
	ck_assert_str_eq(status_of(body), "ready");
	ck_assert(json_object_object_get_ex(body, "degraded", &v));
	ck_assert(json_object_get_boolean(v));
	ck_assert(check_ok(body, "runpod"));
	ck_assert(json_object_object_get_ex(check_of(body, "runpod"),
	    "degraded", &v));
	ck_assert(json_object_get_boolean(v));
	ck_assert_msg(strstr(reason(body, "runpod"), "network") != NULL,
	    "reason '%s'", reason(body, "runpod"));
	text = json_object_to_json_string(body);
	ck_assert_ptr_null(strstr(text, "SECRETKEY"));
	json_object_put(body);
	world_down(&w);
	free(extra);
}
END_TEST

static Suite *
ready_suite(void)
{
	Suite *s = suite_create("ready");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_add_test(tc, test_all_ok);
	tcase_add_test(tc, test_store_locked);
	tcase_add_test(tc, test_dir_not_writable);
	tcase_add_test(tc, test_stopping);
	tcase_add_test(tc, test_runpod_unreachable);
	suite_add_tcase(s, tc);
	return s;
}

/* What main() does: the library's global state, once, in the runner. */
static void
ready_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_set_level(LOG_ERROR);
}

static bool
ready_teardown(void)
{
	curl_global_cleanup();
	return true;
}

TU_MAIN(.suites = { ready_suite }, .setup = ready_setup,
    .teardown = ready_teardown)
