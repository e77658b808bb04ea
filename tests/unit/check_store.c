/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <sys/stat.h>

#include <check.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "store/store.h"
#include "lib/xalloc.h"
#include "core/task.h"
#include "testutil.h"

/* ---- temporary files --------------------------------------------------- */

/* A fresh directory for this test, inside the suite's directory (made in
 * the parent by the unchecked fixture, removed there afterwards even when
 * a test fails), and the database path in it. */
static void
db_path(char *out, size_t len)
{
	char dir[300];

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	snprintf(out, len, "%s/tasks.db", dir);
}

static struct store *
open_ok(const char *path)
{
	struct store *st = NULL;
	char *err = NULL;

	ck_assert_msg(store_open(path, NULL, &st, &err) == 0, "store_open: %s",
	    err ? err : "?");
	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_null(err);
	return st;
}

/* One value of a PRAGMA (or any one-cell query) read on a separate
 * connection, as text; caller frees. */
static char *
query1(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char *v = NULL;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		v = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Take a store back from schema 7 to 6 (then older steps go on). */
/* Back from schema 8 to 7: the indexes that cover rev, as they were. */
#define UNDO_V8 "DROP INDEX tasks_owner_page; " \
    "DROP INDEX tasks_owner_context; DROP INDEX tasks_owner_state; " \
    "CREATE INDEX tasks_owner_page ON tasks(owner, created_ms, id, rev); " \
    "CREATE INDEX tasks_owner_context ON tasks(owner, context_id, " \
    "created_ms, id, rev); " \
    "CREATE INDEX tasks_owner_state ON tasks(owner, state, created_ms, " \
    "id, rev); " \
    "CREATE INDEX tasks_id_rev ON tasks(id, owner, rev); "
#define UNDO_V7 "DROP TRIGGER tasks_count_insert; " \
    "DROP TRIGGER tasks_count_update; DROP TRIGGER tasks_count_delete; " \
    "DROP TABLE task_counts; DROP INDEX tasks_owner_page; " \
    "DROP INDEX tasks_owner_context; DROP INDEX tasks_owner_state; " \
    "DROP INDEX tasks_owner_updated; DROP INDEX IF EXISTS tasks_id_rev; " \
    "ALTER TABLE tasks DROP COLUMN rev; " \
    "CREATE INDEX tasks_owner_created ON tasks(owner, created_ms, id); "

static void
exec_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}


static void
put_ok(struct store *st, const struct task *t)
{
	char *err = NULL;

	ck_assert_msg(store_task_put(st, t, &err) == 0, "put: %s",
	    err ? err : "?");
	ck_assert_ptr_null(err);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_open_creates_schema)
{
	char path[400];
	struct store *st;
	char *v;

	db_path(path, sizeof(path));
	ck_assert_int_ne(access(path, F_OK), 0);
	st = open_ok(path);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(store_ping(st), 0);

	v = query1(path, "PRAGMA user_version");
	ck_assert_str_eq(v, "8");
	free(v);
	v = query1(path, "PRAGMA journal_mode");
	ck_assert_str_eq(v, "wal");
	free(v);
	v = query1(path, "SELECT count(*) FROM sqlite_master WHERE type = "
	    "'table' AND name IN ('tasks', 'push_configs')");
	ck_assert_str_eq(v, "2");
	free(v);
	store_close(st);
	store_close(NULL);

	/* Opening again finds the schema and keeps it. */
	st = open_ok(path);
	store_close(st);
	v = query1(path, "PRAGMA user_version");
	ck_assert_str_eq(v, "8");
	free(v);
}
END_TEST

START_TEST(test_open_errors)
{
	char path[400];
	struct store *st = (struct store *)&st;
	char *err = NULL;

	/* A newer schema is refused and left as it was. */
	db_path(path, sizeof(path));
	exec_sql(path, "CREATE TABLE future (x); PRAGMA user_version = 99;");
	ck_assert_int_eq(store_open(path, NULL, &st, &err), -1);
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "99") != NULL && strstr(err, "newer"),
	    "error '%s'", err);
	free(err);
	err = NULL;
	{
		char *v = query1(path, "PRAGMA user_version");
		ck_assert_str_eq(v, "99");
		free(v);
		v = query1(path, "SELECT count(*) FROM sqlite_master WHERE "
		    "name = 'tasks'");
		ck_assert_str_eq(v, "0");
		free(v);
	}

	/* A directory that does not exist. */
	snprintf(path, sizeof(path), "%s/no/such/dir/tasks.db", tu_topdir());
	st = (struct store *)&st;
	ck_assert_int_eq(store_open(path, NULL, &st, &err), -1);
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, path) != NULL, "error '%s'", err);
	free(err);
	err = NULL;

	/* Not a database at all. */
	db_path(path, sizeof(path));
	{
		FILE *fp = fopen(path, "w");
		ck_assert_ptr_nonnull(fp);
		fputs("this is not an sqlite database, just some text that is "
		    "long enough to fill a header of one hundred bytes.....\n",
		    fp);
		fclose(fp);
	}
	ck_assert_int_eq(store_open(path, NULL, &st, &err), -1);
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(err);
	free(err);
}
END_TEST

/* A task with every field set to something other than its default. */
static struct task *
full_task(const char *owner)
{
	struct task *t = task_new(owner, "instag.train", json_tokener_parse(
	    "{\"subject\":\"may\",\"gpu_id\":0,\"n\":1.5,"
	    "\"u\":\"\\u00fc'\\\"\\\\/\","
	    "\"big\":9007199254740993,\"list\":[1,\"two\",null,true]}"), NULL);

	t->state = TASK_INPUT_REQUIRED;
	t->progress = json_tokener_parse("{\"step\":2,\"steps\":5,"
	    "\"percent\":40,\"message\":\"training\"}");
	t->result = json_tokener_parse("{\"video\":\"out.mp4\",\"n\":[1,2]}");
	json_object_array_add(t->artifacts, json_tokener_parse(
	    "{\"artifactId\":\"a1\",\"name\":\"out.mp4\",\"uri\":"
	    "\"/artifacts/x/out.mp4\",\"mimeType\":\"video/mp4\"}"));
	t->error = json_tokener_parse("{\"code\":\"c\",\"message\":\"m\"}");
	json_object_object_add(t->checkpoint, "pod_id",
	    json_object_new_string("pod-123"));
	json_object_object_add(t->checkpoint, "done", json_object_new_int(3));
	task_add_history(t, task_msg_text("user", "hello", t->id,
	    t->context_id), 10);
	task_add_history(t, task_msg_text("agent", "working on it", t->id,
	    t->context_id), 10);
	t->created_ms = 1700000000123LL;
	t->updated_ms = 1700000009999LL;
	t->next_wake_ms = 1700000012345LL;
	t->version = 42;
	t->cancel_requested = true;
	return t;
}

START_TEST(test_put_get_roundtrip)
{
	char path[400];
	struct store *st;
	struct task *t, *g = NULL, *plain;

	db_path(path, sizeof(path));
	st = open_ok(path);
	t = full_task("alice");
	put_ok(st, t);
	ck_assert_int_eq(store_task_get(st, t->id, &g), 0);
	ck_assert_ptr_nonnull(g);
	tu_assert_task_eq(t, g);
	task_free(g);

	/* Defaults (NULL progress/result/error) round trip as NULL. */
	plain = task_new("bob", "diag.timer", NULL, NULL);
	put_ok(st, plain);
	ck_assert_int_eq(store_task_get(st, plain->id, &g), 0);
	tu_assert_task_eq(plain, g);
	ck_assert_ptr_null(g->progress);
	ck_assert_ptr_null(g->result);
	ck_assert_ptr_null(g->error);
	ck_assert_ptr_nonnull(g->params);
	ck_assert_ptr_nonnull(g->artifacts);
	ck_assert_ptr_nonnull(g->checkpoint);
	ck_assert_ptr_nonnull(g->history);
	task_free(g);

	/* A second put replaces the row. */
	task_complete(t, json_tokener_parse("{\"done\":true}"));
	t->cancel_requested = false;
	put_ok(st, t);
	ck_assert_int_eq(store_task_get(st, t->id, &g), 0);
	tu_assert_task_eq(t, g);
	ck_assert_int_eq(g->state, TASK_COMPLETED);
	task_free(g);

	/* Every state survives the text column. */
	{
		enum task_state s;
		for (s = TASK_SUBMITTED; s <= TASK_REJECTED; s++) {
			plain->state = s;
			put_ok(st, plain);
			ck_assert_int_eq(store_task_get(st, plain->id, &g), 0);
			ck_assert_int_eq(g->state, s);
			task_free(g);
		}
	}
	{
		char *v = query1(path, "SELECT count(*) FROM tasks");
		ck_assert_str_eq(v, "2");
		free(v);
	}
	task_free(t);
	task_free(plain);
	store_close(st);
}
END_TEST

START_TEST(test_get_unknown)
{
	char path[400];
	struct store *st;
	struct task *g = (struct task *)&g;

	db_path(path, sizeof(path));
	st = open_ok(path);
	ck_assert_int_eq(store_task_get(st,
	    "123e4567-e89b-42d3-a456-426614174000", &g), 1);
	ck_assert_ptr_null(g);
	g = (struct task *)&g;
	ck_assert_int_eq(store_task_get(st, "not-a-uuid' OR '1'='1", &g), 1);
	ck_assert_ptr_null(g);
	store_close(st);
}
END_TEST

/* ---- list --------------------------------------------------------------- */

static const char *ctx_a = "aaaaaaaa-e89b-42d3-a456-426614174000";
static const char *ctx_b = "bbbbbbbb-e89b-42d3-a456-426614174000";

/* 25 tasks of alice (created in pairs on the same millisecond, so page
 * boundaries fall between ties), 5 of bob.  ids[i] is alice's i-th. */
static void
fill(struct store *st, char ids[25][UUID_STR_LEN])
{
	int i;

	for (i = 0; i < 25; i++) {
		struct task *t = task_new("alice", "diag.timer", NULL,
		    i % 2 ? ctx_a : ctx_b);
		t->created_ms = 1000 + i / 2;
		t->updated_ms = 5000 + i;
		t->state = i % 5 == 0 ? TASK_COMPLETED : i % 5 == 1 ?
		    TASK_FAILED : TASK_WORKING;
		put_ok(st, t);
		strcpy(ids[i], t->id);
		task_free(t);
	}
	for (i = 0; i < 5; i++) {
		struct task *t = task_new("bob", "diag.timer", NULL, ctx_a);
		t->created_ms = 2000 + i;	/* newer than all of alice's */
		t->updated_ms = 9000;
		t->state = TASK_WORKING;
		put_ok(st, t);
		task_free(t);
	}
}

/* Walk every page; returns the number of tasks, checks order and that no
 * id repeats; fills seen (ids in page order). */
static size_t
walk(struct store *st, struct store_list_query q, size_t page_size,
    char seen[64][UUID_STR_LEN], int64_t want_total, size_t *pages)
{
	char *token = NULL;
	size_t count = 0;
	int64_t last_created = INT64_MAX;
	char last_id[UUID_STR_LEN] = "~";

	*pages = 0;
	q.page_size = page_size;
	for (;;) {
		struct task **tasks = NULL;
		size_t n = 99, i, j;
		char *next = NULL, *err = NULL;
		int64_t total = -1;

		q.page_token = token;
		ck_assert_msg(store_task_list(st, &q, &tasks, &n, &next, &total,
		    &err) == 0, "list: %s", err ? err : "?");
		ck_assert_ptr_nonnull(next);
		ck_assert(total == want_total);
		ck_assert_uint_le(n, page_size);
		(*pages)++;
		ck_assert_uint_le(*pages, 64);
		for (i = 0; i < n; i++) {
			struct task *t = tasks[i];
			ck_assert_str_eq(t->owner, q.owner);
			/* Newest first; ties broken by id, descending. */
			ck_assert_msg(t->created_ms < last_created ||
			    (t->created_ms == last_created &&
			    strcmp(t->id, last_id) < 0),
			    "order broken at %s", t->id);
			last_created = t->created_ms;
			strcpy(last_id, t->id);
			for (j = 0; j < count; j++)
				ck_assert_str_ne(seen[j], t->id);
			ck_assert_uint_lt(count, 64);
			strcpy(seen[count++], t->id);
		}
		task_list_free(tasks, n);
		free(token);
		token = NULL;
		if (next[0] == '\0') {
			free(next);
			break;
		}
		/* A page with a token after it is full. */
		ck_assert_uint_eq(n, page_size);
		token = next;
	}
	return count;
}

START_TEST(test_list_pages)
{
	char path[400], ids[25][UUID_STR_LEN], seen[64][UUID_STR_LEN];
	struct store *st;
	struct store_list_query q = { 0 };
	static const size_t sizes[] = { 1, 2, 5, 7, 24, 25, 26, 100 };
	size_t k, i, j, pages, n;

	db_path(path, sizeof(path));
	st = open_ok(path);
	fill(st, ids);
	q.owner = "alice";
	q.state = -1;
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		n = walk(st, q, sizes[k], seen, 25, &pages);
		ck_assert_uint_eq(n, 25);
		ck_assert_uint_eq(pages, (25 + sizes[k] - 1) / sizes[k]);
		/* Every one of alice's tasks, none of bob's. */
		for (i = 0; i < 25; i++) {
			for (j = 0; j < n; j++)
				if (strcmp(ids[i], seen[j]) == 0)
					break;
			ck_assert_msg(j < n, "task %zu missing with page size "
			    "%zu", i, sizes[k]);
		}
	}
	/* The first task listed is the newest: created_ms 1012 (i = 24). */
	n = walk(st, q, 3, seen, 25, &pages);
	ck_assert_str_eq(seen[0], ids[24]);

	/* Bob sees only his five. */
	q.owner = "bob";
	ck_assert_uint_eq(walk(st, q, 2, seen, 5, &pages), 5);
	ck_assert_uint_eq(pages, 3);
	/* Nobody's tasks. */
	q.owner = "carol";
	ck_assert_uint_eq(walk(st, q, 10, seen, 0, &pages), 0);
	ck_assert_uint_eq(pages, 1);
	store_close(st);
}
END_TEST

START_TEST(test_list_filters)
{
	char path[400], ids[25][UUID_STR_LEN], seen[64][UUID_STR_LEN];
	struct store *st;
	struct store_list_query q = { 0 };
	size_t pages, n, i;
	struct task *g;

	db_path(path, sizeof(path));
	st = open_ok(path);
	fill(st, ids);
	q.owner = "alice";

	/* state: i % 5 == 0 -> completed: i = 0,5,10,15,20 */
	q.state = TASK_COMPLETED;
	n = walk(st, q, 2, seen, 5, &pages);
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(store_task_get(st, seen[i], &g), 0);
		ck_assert_int_eq(g->state, TASK_COMPLETED);
		task_free(g);
	}
	q.state = TASK_WORKING;
	ck_assert_uint_eq(walk(st, q, 4, seen, 15, &pages), 15);
	q.state = TASK_CANCELED;
	ck_assert_uint_eq(walk(st, q, 4, seen, 0, &pages), 0);

	/* context: odd i -> ctx_a (12 tasks), even -> ctx_b (13) */
	q.state = -1;
	q.context_id = ctx_a;
	n = walk(st, q, 5, seen, 12, &pages);
	ck_assert_uint_eq(n, 12);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(store_task_get(st, seen[i], &g), 0);
		ck_assert_str_eq(g->context_id, ctx_a);
		task_free(g);
	}
	q.context_id = ctx_b;
	ck_assert_uint_eq(walk(st, q, 5, seen, 13, &pages), 13);
	/* Both: ctx_b and completed -> i = 0, 10, 20 */
	q.state = TASK_COMPLETED;
	ck_assert_uint_eq(walk(st, q, 2, seen, 3, &pages), 3);
	ck_assert_str_eq(seen[0], ids[20]);
	ck_assert_str_eq(seen[1], ids[10]);
	ck_assert_str_eq(seen[2], ids[0]);
	/* updated_after: updated_ms = 5000 + i, so > 5019 -> i = 20..24 */
	q.state = -1;
	q.context_id = NULL;
	q.updated_after_ms = 5019;
	ck_assert_uint_eq(walk(st, q, 2, seen, 5, &pages), 5);
	store_close(st);
}
END_TEST

START_TEST(test_list_bad_token)
{
	static const char *const bad[] = { "garbage", "123", "123.",
	    "123.not-a-uuid", ".123e4567-e89b-42d3-a456-426614174000",
	    "abc.123e4567-e89b-42d3-a456-426614174000",
	    "1.123e4567-e89b-42d3-a456-426614174000x",
	    "99999999999999999999999.123e4567-e89b-42d3-a456-426614174000",
	    "1' OR '1'='1", NULL };
	char path[400], ids[25][UUID_STR_LEN];
	struct store *st;
	struct store_list_query q = { 0 };
	size_t i;

	db_path(path, sizeof(path));
	st = open_ok(path);
	fill(st, ids);
	q.owner = "alice";
	q.state = -1;
	q.page_size = 10;
	for (i = 0; bad[i]; i++) {
		struct task **tasks = (struct task **)&tasks;
		size_t n = 7;
		char *next = (char *)&next, *err = NULL;
		int64_t total = 0;

		q.page_token = bad[i];
		ck_assert_msg(store_task_list(st, &q, &tasks, &n, &next, &total,
		    &err) == -1, "token '%s' accepted", bad[i]);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, "pageToken") != NULL, "err '%s'",
		    err);
		ck_assert_ptr_null(tasks);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_null(next);
		free(err);
	}
	/* An empty token is the first page. */
	{
		struct task **tasks = NULL;
		size_t n = 0;
		char *next = NULL, *err = NULL;
		int64_t total = 0;

		q.page_token = "";
		ck_assert_int_eq(store_task_list(st, &q, &tasks, &n, &next,
		    &total, &err), 0);
		ck_assert_uint_eq(n, 10);
		ck_assert(total == 25);
		ck_assert_str_ne(next, "");
		free(next);
		task_list_free(tasks, n);
	}
	store_close(st);
}
END_TEST

START_TEST(test_active)
{
	char path[400];
	struct store *st;
	struct task **tasks = NULL;
	size_t n = 0, i;
	enum task_state s;
	char ids[7][UUID_STR_LEN];

	db_path(path, sizeof(path));
	st = open_ok(path);
	ck_assert_int_eq(store_task_active(st, &tasks, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(tasks);
	/* One task per state, created newest-state-first so that "oldest
	 * first" differs from insertion order. */
	for (s = TASK_SUBMITTED; s <= TASK_REJECTED; s++) {
		struct task *t = task_new(s % 2 ? "alice" : "bob", "diag.timer",
		    NULL, NULL);
		t->state = s;
		t->created_ms = 10000 - (int64_t)s;
		put_ok(st, t);
		strcpy(ids[s], t->id);
		task_free(t);
	}
	ck_assert_int_eq(store_task_active(st, &tasks, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(tasks[0]->id, ids[TASK_INPUT_REQUIRED]);
	ck_assert_str_eq(tasks[1]->id, ids[TASK_WORKING]);
	ck_assert_str_eq(tasks[2]->id, ids[TASK_SUBMITTED]);
	for (i = 0; i < n; i++)
		ck_assert(!task_state_terminal(tasks[i]->state));
	task_list_free(tasks, n);
	store_close(st);
}
END_TEST

/* ---- push configs ------------------------------------------------------- */

static void
assert_push_eq(const struct push_config *a, const struct push_config *b)
{
#define SEQ(f) do { \
	if (a->f == NULL || b->f == NULL) \
		ck_assert_msg(a->f == NULL && b->f == NULL, #f " NULL-ness"); \
	else \
		ck_assert_str_eq(a->f, b->f); \
} while (0)
	SEQ(task_id);
	SEQ(id);
	SEQ(url);
	SEQ(token);
	SEQ(auth_scheme);
	SEQ(auth_credentials);
#undef SEQ
	ck_assert(a->created_ms == b->created_ms);
	ck_assert_int_eq(a->dialect, b->dialect);
}

START_TEST(test_push_configs)
{
	char path[400];
	struct store *st;
	struct task *t = task_new("alice", "diag.timer", NULL, NULL);
	struct push_config p1 = { 0 }, p2 = { 0 }, *g = NULL, **list = NULL;
	char *err = NULL;
	size_t n = 0;

	db_path(path, sizeof(path));
	st = open_ok(path);
	put_ok(st, t);

	p1.task_id = t->id;
	p1.id = (char *)"cfg-1";
	p1.url = (char *)"https://hooks.example.org/a2a?x=1";
	p1.created_ms = 1000;
	p1.dialect = 0;
	p2.task_id = t->id;
	p2.id = (char *)"cfg-2";
	p2.url = (char *)"https://other.example.org/cb";
	p2.token = (char *)"tok-123";
	p2.auth_scheme = (char *)"Bearer";
	p2.auth_credentials = (char *)"secret-credentials";
	p2.created_ms = 2000;
	p2.dialect = 1;
	/* Inserted newest first: the list still comes out oldest first. */
	ck_assert_int_eq(store_push_put(st, &p2, &err), 0);
	ck_assert_int_eq(store_push_put(st, &p1, &err), 0);
	ck_assert_ptr_null(err);

	ck_assert_int_eq(store_push_get(st, t->id, "cfg-1", &g), 0);
	assert_push_eq(&p1, g);
	ck_assert_ptr_null(g->token);
	ck_assert_int_eq(g->dialect, 0);
	store_push_free(g);
	ck_assert_int_eq(store_push_get(st, t->id, "cfg-2", &g), 0);
	assert_push_eq(&p2, g);
	ck_assert_int_eq(g->dialect, 1);
	store_push_free(g);
	g = (struct push_config *)&g;
	ck_assert_int_eq(store_push_get(st, t->id, "cfg-3", &g), 1);
	ck_assert_ptr_null(g);
	ck_assert_int_eq(store_push_get(st,
	    "123e4567-e89b-42d3-a456-426614174000", "cfg-1", &g), 1);
	store_push_free(NULL);

	ck_assert_int_eq(store_push_list(st, t->id, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	assert_push_eq(&p1, list[0]);
	assert_push_eq(&p2, list[1]);
	store_push_list_free(list, n);

	/* Same (task, id) again replaces. */
	p1.url = (char *)"https://hooks.example.org/new";
	p1.dialect = 1;
	ck_assert_int_eq(store_push_put(st, &p1, &err), 0);
	ck_assert_int_eq(store_push_get(st, t->id, "cfg-1", &g), 0);
	assert_push_eq(&p1, g);
	store_push_free(g);

	/* Updating the task (every step does) keeps its push configs. */
	task_set_state(t, TASK_WORKING);
	put_ok(st, t);
	task_set_progress(t, 1, 3, "one");
	put_ok(st, t);
	ck_assert_int_eq(store_push_list(st, t->id, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	store_push_list_free(list, n);

	/* Delete. */
	ck_assert_int_eq(store_push_delete(st, t->id, "cfg-1"), 0);
	ck_assert_int_eq(store_push_delete(st, t->id, "cfg-1"), 1);
	ck_assert_int_eq(store_push_delete(st, t->id, "nope"), 1);
	ck_assert_int_eq(store_push_get(st, t->id, "cfg-1", &g), 1);
	ck_assert_int_eq(store_push_list(st, t->id, &list, &n), 0);
	ck_assert_uint_eq(n, 1);
	assert_push_eq(&p2, list[0]);
	store_push_list_free(list, n);
	/* A task without configs lists none. */
	ck_assert_int_eq(store_push_list(st,
	    "123e4567-e89b-42d3-a456-426614174000", &list, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(list);

	/* The ids to watch at start: unfinished tasks with configs only. */
	{
		struct task *u = task_new("bob", "diag.timer", NULL, NULL);
		char **ids = NULL;
		size_t k;

		put_ok(st, u);		/* submitted, no config */
		ck_assert_int_eq(store_push_task_ids(st, &ids, &n), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(ids[0], t->id);
		free(ids[0]);
		free(ids);
		p1.task_id = u->id;
		ck_assert_int_eq(store_push_put(st, &p1, &err), 0);
		ck_assert_int_eq(store_push_task_ids(st, &ids, &n), 0);
		ck_assert_uint_eq(n, 2);
		for (k = 0; k < n; k++)
			free(ids[k]);
		free(ids);
		task_set_state(t, TASK_COMPLETED);
		put_ok(st, t);
		task_set_state(u, TASK_INPUT_REQUIRED);
		put_ok(st, u);
		ck_assert_int_eq(store_push_task_ids(st, &ids, &n), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(ids[0], u->id);
		free(ids[0]);
		free(ids);
		task_set_state(u, TASK_CANCELED);
		put_ok(st, u);
		ck_assert_int_eq(store_push_task_ids(st, &ids, &n), 0);
		ck_assert_uint_eq(n, 0);
		free(ids);
		task_free(u);
	}
	task_free(t);
	store_close(st);
}
END_TEST

START_TEST(test_pods_registry)
{
	char path[400];
	struct store *st;
	struct pod_rec r = { 0 }, *g = NULL, **all = NULL;
	char *err = NULL, *v;
	size_t n = 0;

	db_path(path, sizeof(path));
	st = open_ok(path);
	r.pod_id = (char *)"pod-1";
	r.name = (char *)"instag-agent-t1";
	r.task_id = (char *)"t1";
	r.owner = (char *)"alice";
	r.state = (char *)"active";
	r.gpu_type_id = (char *)"NVIDIA GeForce RTX 4090";
	r.cloud = (char *)"SECURE";
	r.gpu_count = 2;
	r.cost_per_hr = 0.88;
	r.max_runtime_ms = 60000;
	r.max_cost_usd = 1.5;
	r.created_ms = r.updated_ms = 1000;
	r.idle_ms = 1800000;
	r.last_used_ms = 1500;
	r.disk_gb = 50;
	r.volume_gb = 20;
	r.stopped_ms = 7200000;
	r.storage_usd = 0.0123;
	r.label = (char *)"may-run_2";
	ck_assert_int_eq(store_pod_put(st, &r, &err), 0);
	r.label = NULL;
	r.pod_id = (char *)"pod-2";
	r.task_id = (char *)"t2";
	r.owner = (char *)"bob";
	r.created_ms = 2000;
	ck_assert_int_eq(store_pod_put(st, &r, &err), 0);

	ck_assert_int_eq(store_pod_get(st, "pod-1", &g), 0);
	ck_assert_str_eq(g->owner, "alice");
	ck_assert_str_eq(g->gpu_type_id, "NVIDIA GeForce RTX 4090");
	ck_assert_int_eq(g->gpu_count, 2);
	ck_assert(g->cost_per_hr > 0.879 && g->cost_per_hr < 0.881);
	ck_assert_ptr_null(g->public_ip);
	ck_assert_ptr_null(g->reason);
	ck_assert_int_eq(g->idle_ms, 1800000);
	ck_assert_int_eq(g->last_used_ms, 1500);
	ck_assert_int_eq(g->disk_gb, 50);
	ck_assert_int_eq(g->volume_gb, 20);
	ck_assert_int_eq(g->stopped_ms, 7200000);
	ck_assert(g->storage_usd > 0.01229 && g->storage_usd < 0.01231);
	ck_assert_str_eq(g->label, "may-run_2");
	/* An update keeps the key and changes the rest. */
	free(g->state);
	g->state = xstrdup("terminated");
	g->reason = xstrdup("max_cost_usd reached");
	g->host_fp = xstrdup("SHA256:abc");
	ck_assert_int_eq(store_pod_put(st, g, &err), 0);
	store_pod_free(g);
	ck_assert_int_eq(store_pod_by_task(st, "t1", &g), 0);
	ck_assert_str_eq(g->pod_id, "pod-1");
	ck_assert_str_eq(g->reason, "max_cost_usd reached");
	{
		struct pod_rec *d = store_pod_dup(g);
		ck_assert_str_eq(d->host_fp, "SHA256:abc");
		ck_assert_ptr_ne(d->host_fp, g->host_fp);
		ck_assert_str_eq(d->label, "may-run_2");
		ck_assert_ptr_ne(d->label, g->label);
		store_pod_free(d);
	}
	store_pod_free(g);
	ck_assert_int_eq(store_pod_get(st, "nope", &g), 1);
	ck_assert_int_eq(store_pod_by_task(st, "nope", &g), 1);

	ck_assert_int_eq(store_pod_list(st, NULL, false, &all, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(all[0]->pod_id, "pod-2");
	store_pod_list_free(all, n);
	ck_assert_int_eq(store_pod_list(st, "alice", true, &all, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(all[0]->state, "terminated");
	store_pod_list_free(all, n);
	ck_assert_int_eq(store_pod_list(st, NULL, true, &all, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(all[0]->pod_id, "pod-1");	/* oldest first */
	store_pod_list_free(all, n);
	store_close(st);

	/* A version 5 store (no label) is migrated on open, its pods kept
	 * without a label. */
	exec_sql(path, UNDO_V7 "ALTER TABLE pods DROP COLUMN label; "
	    "PRAGMA user_version = 5;");
	st = open_ok(path);
	ck_assert_int_eq(store_pod_get(st, "pod-1", &g), 0);
	ck_assert_ptr_null(g->label);
	ck_assert(g->storage_usd > 0.01229 && g->storage_usd < 0.01231);
	store_pod_free(g);
	store_close(st);

	/* A version 4 store (no storage columns) is migrated on open, its
	 * pods kept with no storage known. */
	exec_sql(path, UNDO_V7 "ALTER TABLE pods DROP COLUMN label; "
	    "ALTER TABLE pods DROP COLUMN disk_gb; "
	    "ALTER TABLE pods DROP COLUMN volume_gb; "
	    "ALTER TABLE pods DROP COLUMN stopped_ms; "
	    "ALTER TABLE pods DROP COLUMN storage_usd; "
	    "PRAGMA user_version = 4;");
	st = open_ok(path);
	ck_assert_int_eq(store_pod_get(st, "pod-1", &g), 0);
	ck_assert_int_eq(g->idle_ms, 1800000);
	ck_assert_int_eq(g->volume_gb, 0);
	ck_assert_int_eq(g->stopped_ms, 0);
	ck_assert(g->storage_usd == 0);
	store_pod_free(g);
	store_close(st);

	/* A version 3 store (no idle columns) is migrated on open, its
	 * pods kept with no idle limit. */
	exec_sql(path, UNDO_V7 "ALTER TABLE pods DROP COLUMN label; "
	    "ALTER TABLE pods DROP COLUMN disk_gb; "
	    "ALTER TABLE pods DROP COLUMN volume_gb; "
	    "ALTER TABLE pods DROP COLUMN stopped_ms; "
	    "ALTER TABLE pods DROP COLUMN storage_usd; "
	    "ALTER TABLE pods DROP COLUMN idle_ms; "
	    "ALTER TABLE pods DROP COLUMN last_used_ms; "
	    "PRAGMA user_version = 3;");
	st = open_ok(path);
	ck_assert_int_eq(store_pod_get(st, "pod-1", &g), 0);
	ck_assert_int_eq(g->idle_ms, 0);
	ck_assert_int_eq(g->last_used_ms, 0);
	store_pod_free(g);
	store_close(st);

	/* A version 1 store (no pods table) is migrated on open, its tasks
	 * kept. */
	exec_sql(path, UNDO_V7 "DROP TABLE pods; DROP TABLE health; "
	    "PRAGMA user_version = 1;");
	st = open_ok(path);
	ck_assert_int_eq(store_pod_list(st, NULL, true, &all, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(all);
	store_close(st);
	v = query1(path, "PRAGMA user_version");
	ck_assert_str_eq(v, "8");
	free(v);
}
END_TEST

/* Group commit: writer threads, every 10th write of the last one bad. */
struct gc_writer {
	struct store *st;
	int idx;
	int ok, failed;
	char ids[50][40];
};

static void *
gc_writer_main(void *arg)
{
	struct gc_writer *w = arg;
	int i;

	for (i = 0; i < 50; i++) {
		struct task *t = full_task("alice");
		char *err = NULL;

		snprintf(w->ids[i], sizeof(w->ids[i]), "%s", t->id);
		if (w->idx == 7 && i % 10 == 0) {
			/* owner is NOT NULL: this row is refused */
			free(t->owner);
			t->owner = NULL;
		}
		if (store_task_put(w->st, t, &err) == 0)
			w->ok++;
		else {
			ck_assert_ptr_nonnull(strstr(err, "NOT NULL"));
			w->failed++;
			w->ids[i][0] = '\0';
		}
		free(err);
		task_free(t);
	}
	return NULL;
}

/*
 * Writes from 8 threads at once are committed in shared transactions;
 * every write that returned 0 is stored, and a refused one in a batch
 * fails alone (its batch is retried write by write).
 */
START_TEST(test_group_commit)
{
	char path[400];
	struct store *st;
	struct gc_writer w[8];
	pthread_t th[8];
	int i, j, stored = 0;

	db_path(path, sizeof(path));
	st = open_ok(path);
	memset(w, 0, sizeof(w));
	for (i = 0; i < 8; i++) {
		w[i].st = st;
		w[i].idx = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, gc_writer_main,
		    &w[i]), 0);
	}
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	{
		uint64_t rows, batches;

		store_put_stats(st, &rows, &batches);
		fprintf(stderr, "group commit: %llu rows in %llu batches\n",
		    (unsigned long long)rows, (unsigned long long)batches);
		ck_assert_uint_eq(rows, 8 * 50);
		ck_assert_uint_ge(batches, 1);
		ck_assert_uint_le(batches, rows);
	}
	store_close(st);
	/* Read back from a fresh open: what was reported is on disk. */
	st = open_ok(path);
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(w[i].ok + w[i].failed, 50);
		ck_assert_int_eq(w[i].failed, i == 7 ? 5 : 0);
		for (j = 0; j < 50; j++) {
			struct task *g = NULL;

			if (w[i].ids[j][0] == '\0')
				continue;
			ck_assert_int_eq(store_task_get(st, w[i].ids[j], &g),
			    0);
			ck_assert_str_eq(g->owner, "alice");
			task_free(g);
			stored++;
		}
	}
	ck_assert_int_eq(stored, 8 * 50 - 5);
	store_close(st);
}
END_TEST

/*
 * Commits leave WAL checkpoints to the store's checkpointer thread: with
 * SQLite's automatic checkpoints off on the writer, the database file
 * itself grows only when that thread copies the WAL back, while the
 * store is open and idle.
 */
START_TEST(test_checkpointer)
{
	char path[400];
	struct store *st;
	struct stat sb;
	off_t before;
	int i;

	db_path(path, sizeof(path));
	st = open_ok(path);
	ck_assert_int_eq(stat(path, &sb), 0);
	before = sb.st_size;
	for (i = 0; i < 400; i++) {
		struct task *t = full_task("alice");
		int j;

		/* about 40 KB of history each: 4,000 pages or so in all */
		for (j = 0; j < 40; j++)
			task_add_history(t, task_msg_text("agent",
			    "0123456789012345678901234567890123456789"
			    "0123456789012345678901234567890123456789"
			    "0123456789012345678901234567890123456789"
			    "0123456789012345678901234567890123456789"
			    "0123456789012345678901234567890123456789"
			    "0123456789012345678901234567890123456789"
			    "0123456789012345678901234567890123456789",
			    t->id, t->context_id), 100);
		put_ok(st, t);
		task_free(t);
	}
	/* A hang guard, not a speed: 30 s. */
	for (i = 0; i < 300; i++) {
		ck_assert_int_eq(stat(path, &sb), 0);
		if (sb.st_size > before + 4 * 1024 * 1024)
			break;
		usleep(100000);
	}
	{
		char wal[420];
		struct stat wb;

		snprintf(wal, sizeof(wal), "%s-wal", path);
		if (stat(wal, &wb) != 0)
			wb.st_size = -1;
		ck_assert_msg(sb.st_size > before + 4 * 1024 * 1024,
		    "the database file is %lld bytes (%lld before, WAL "
		    "%lld) after 400 large tasks: no checkpoint",
		    (long long)sb.st_size, (long long)before,
		    (long long)wb.st_size);
	}
	store_close(st);
}
END_TEST

START_TEST(test_reopen)
{
	char path[400];
	struct store *st;
	struct task *t = full_task("alice"), *g = NULL;
	struct push_config p = { 0 }, *pg = NULL;
	char *err = NULL, *v;

	db_path(path, sizeof(path));
	st = open_ok(path);
	put_ok(st, t);
	p.task_id = t->id;
	p.id = (char *)"c";
	p.url = (char *)"https://x.example/cb";
	p.token = (char *)"t";
	p.created_ms = 5;
	p.dialect = 1;
	ck_assert_int_eq(store_push_put(st, &p, &err), 0);
	store_close(st);

	st = open_ok(path);
	ck_assert_int_eq(store_task_get(st, t->id, &g), 0);
	tu_assert_task_eq(t, g);
	task_free(g);
	ck_assert_int_eq(store_push_get(st, t->id, "c", &pg), 0);
	assert_push_eq(&p, pg);
	store_push_free(pg);
	/* Still writable after reopening. */
	task_set_state(t, TASK_WORKING);
	put_ok(st, t);
	store_close(st);

	st = open_ok(path);
	ck_assert_int_eq(store_task_get(st, t->id, &g), 0);
	ck_assert_int_eq(g->state, TASK_WORKING);
	task_free(g);
	store_close(st);
	v = query1(path, "PRAGMA user_version");
	ck_assert_str_eq(v, "8");
	free(v);
	task_free(t);
}
END_TEST

/* ---- the read path (schema 7) -------------------------------------------- */

struct held_put {
	struct store *st;
	struct task *t;
	int rc;
	int done;		/* set (atomically) when the put returned */
};

static void *
held_put_main(void *arg)
{
	struct held_put *h = arg;
	char *err = NULL;

	h->rc = store_task_put(h->st, h->t, &err);
	free(err);
	__atomic_store_n(&h->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A read proceeds while a write is held up: another connection holds
 * SQLite's write lock with an uncommitted change, and a store_task_put
 * waits for it holding the store's writer mutex.  Reads (get, peek,
 * list) still answer, with the committed row, before that put returns. */
START_TEST(test_read_beside_write)
{
	char path[400], *owner = NULL, *next = NULL, *err = NULL;
	struct store *st;
	struct task *t, *g = NULL, *t2;
	struct store_list_query q = { 0 };
	struct store_task_ref *refs = NULL;
	struct held_put h = { 0 };
	sqlite3 *db = NULL;
	pthread_t th;
	int64_t rev = -1, total = -1;
	size_t n = 0;
	char sql[200];

	db_path(path, sizeof(path));
	st = open_ok(path);
	t = task_new("alice", "diag.timer", NULL, NULL);
	put_ok(st, t);

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql), "UPDATE tasks SET state = 'failed' "
	    "WHERE id = '%s'", t->id);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);

	t2 = task_new("alice", "diag.timer", NULL, NULL);
	h.st = st;
	h.t = t2;
	ck_assert_int_eq(pthread_create(&th, NULL, held_put_main, &h), 0);
	/* Give the put a moment to take the writer's mutex (if it has not
	 * yet, the reads below prove less, never fail wrongly). */
	usleep(200 * 1000);

	ck_assert_int_eq(store_task_get(st, t->id, &g), 0);
	ck_assert_int_eq(g->state, TASK_SUBMITTED);	/* committed row */
	task_free(g);
	ck_assert_int_eq(store_task_peek(st, t->id, &owner, &rev), 0);
	ck_assert_str_eq(owner, "alice");
	free(owner);
	q.owner = "alice";
	q.state = -1;
	q.page_size = 10;
	ck_assert_int_eq(store_task_list_refs(st, &q, &refs, &n, &next,
	    &total, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert(total == 1);
	free(refs);
	free(next);
	/* The put still waits for the other connection's lock. */
	ck_assert_int_eq(__atomic_load_n(&h.done, __ATOMIC_SEQ_CST), 0);

	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(h.rc, 0);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	ck_assert_int_eq(store_task_get(st, t2->id, &g), 0);
	task_free(g);
	task_free(t);
	task_free(t2);
	store_close(st);
}
END_TEST

/* rev counts the writes of a row, even one that bumps no version; peek
 * and get_rev agree; an unknown id is absent. */
START_TEST(test_peek_rev)
{
	char path[400], *owner = NULL;
	struct store *st;
	struct task *t, *g = NULL;
	int64_t rev = -1, rev2 = -1, grev = -1;

	db_path(path, sizeof(path));
	st = open_ok(path);
	t = task_new("alice", "diag.timer", NULL, NULL);
	put_ok(st, t);
	ck_assert_int_eq(store_task_peek(st, t->id, &owner, &rev), 0);
	ck_assert_str_eq(owner, "alice");
	free(owner);
	/* The same version, other artifacts: still a new rev. */
	json_object_array_add(t->artifacts, json_object_new_object());
	put_ok(st, t);
	ck_assert_int_eq(store_task_peek(st, t->id, &owner, &rev2), 0);
	free(owner);
	ck_assert(rev2 == rev + 1);
	ck_assert_int_eq(store_task_get_rev(st, t->id, &g, &grev), 0);
	ck_assert(grev == rev2);
	ck_assert_uint_eq(json_object_array_length(g->artifacts), 1);
	task_free(g);
	owner = (char *)&owner;
	ck_assert_int_eq(store_task_peek(st,
	    "123e4567-e89b-42d3-a456-426614174000", &owner, &rev), 1);
	ck_assert_ptr_null(owner);
	task_free(t);
	store_close(st);
}
END_TEST

/* Schema 8: a schema 7 store migrates, its lists and peeks unchanged;
 * the list indexes no longer hold rev; a write raises rev as before and
 * keeps what a task never changes (owner, context, created) as first
 * written. */
START_TEST(test_migrate_v8)
{
	char path[400], *owner = NULL, *next = NULL, *err = NULL, *v;
	struct store *st;
	struct task *t[6], *g = NULL;
	struct store_list_query q = { 0 };
	struct store_task_ref *before = NULL, *after = NULL;
	size_t nb = 0, na = 0, i;
	int64_t total = 0, rev = -1, rev2 = -1;

	db_path(path, sizeof(path));
	st = open_ok(path);
	for (i = 0; i < 6; i++) {
		t[i] = task_new("alice", "diag.timer", NULL, i < 3 ? "ctx-a" :
		    "ctx-b");
		t[i]->created_ms = 1000 + (int64_t)i;
		put_ok(st, t[i]);
		if (i % 2 == 0) {
			task_set_state(t[i], TASK_WORKING);
			put_ok(st, t[i]);
		}
	}
	q.owner = "alice";
	q.page_size = 10;
	q.state = -1;
	ck_assert_int_eq(store_task_list_refs(st, &q, &before, &nb, &next,
	    &total, &err), 0);
	free(next);
	ck_assert_uint_eq(nb, 6);
	store_close(st);

	exec_sql(path, UNDO_V8 "PRAGMA user_version = 7;");
	v = query1(path, "SELECT count(*) FROM sqlite_master WHERE name = "
	    "'tasks_id_rev'");
	ck_assert_str_eq(v, "1");
	free(v);
	st = open_ok(path);
	v = query1(path, "PRAGMA user_version");
	ck_assert_str_eq(v, "8");
	free(v);
	v = query1(path, "SELECT count(*) FROM sqlite_master WHERE name = "
	    "'tasks_id_rev' OR (name LIKE 'tasks_owner_%' AND sql LIKE "
	    "'%rev%')");
	ck_assert_str_eq(v, "0");
	free(v);
	ck_assert_int_eq(store_task_list_refs(st, &q, &after, &na, &next,
	    &total, &err), 0);
	free(next);
	ck_assert_uint_eq(na, nb);
	for (i = 0; i < na; i++) {
		ck_assert_str_eq(after[i].id, before[i].id);
		ck_assert(after[i].rev == before[i].rev);
		ck_assert(after[i].created_ms == before[i].created_ms);
	}
	q.context_id = "ctx-a";
	free(after);
	ck_assert_int_eq(store_task_list_refs(st, &q, &after, &na, &next,
	    &total, &err), 0);
	free(next);
	ck_assert_uint_eq(na, 3);
	ck_assert(total == 3);
	free(after);
	q.context_id = NULL;
	q.state = TASK_WORKING;
	ck_assert_int_eq(store_task_list_refs(st, &q, &after, &na, &next,
	    &total, &err), 0);
	free(next);
	ck_assert_uint_eq(na, 3);
	ck_assert(total == 3);

	ck_assert_int_eq(store_task_peek(st, t[1]->id, &owner, &rev), 0);
	ck_assert_str_eq(owner, "alice");
	free(owner);
	/* A later write of the same id cannot move the task to another
	 * owner, context or creation time. */
	free(t[1]->owner);
	t[1]->owner = xstrdup("mallory");
	snprintf(t[1]->context_id, sizeof(t[1]->context_id), "ctx-m");
	t[1]->created_ms = 5;
	task_set_state(t[1], TASK_COMPLETED);
	put_ok(st, t[1]);
	ck_assert_int_eq(store_task_peek(st, t[1]->id, &owner, &rev2), 0);
	ck_assert_str_eq(owner, "alice");
	free(owner);
	ck_assert(rev2 == rev + 1);
	ck_assert_int_eq(store_task_get(st, t[1]->id, &g), 0);
	ck_assert_str_eq(g->owner, "alice");
	ck_assert_str_eq(g->context_id, "ctx-a");
	ck_assert(g->created_ms == 1001);
	ck_assert_int_eq(g->state, TASK_COMPLETED);
	task_free(g);
	free(before);
	free(after);
	for (i = 0; i < 6; i++)
		task_free(t[i]);
	free(err);
	store_close(st);
}
END_TEST

#define MANY 1500

/* The list at many tasks: totals (kept per owner and state) and pages
 * (as refs) agree with the rows, through state changes and a migration
 * from schema 6, which counts the tasks already there. */
START_TEST(test_list_many)
{
	static const enum task_state states[] = { TASK_COMPLETED, TASK_FAILED,
	    TASK_WORKING };
	char path[400], sql[200], *v, *last = NULL;
	struct store *st;
	struct task *t;
	struct store_list_query q = { 0 };
	int64_t want[3] = { 0 }, total;
	size_t i, k, seen;
	int pass;

	db_path(path, sizeof(path));
	st = open_ok(path);
	for (i = 0; i < MANY; i++) {
		t = task_new(i % 10 == 9 ? "bob" : "alice", "diag.timer", NULL,
		    NULL);
		t->created_ms = 1000 + (int64_t)(i / 3);	/* ties */
		t->state = states[i % 3];
		put_ok(st, t);
		if (i % 10 != 9)
			want[i % 3]++;
		if (i == MANY - 4) {	/* alice's: working -> completed */
			ck_assert_int_eq(t->state, TASK_WORKING);
			t->state = TASK_COMPLETED;
			put_ok(st, t);
			want[2]--;
			want[0]++;
		}
		task_free(t);
	}
	for (pass = 0; pass < 2; pass++) {
		q.owner = "alice";
		q.page_size = 100;
		for (k = 0; k < 4; k++) {
			char *token = NULL;
			int64_t last_created = INT64_MAX;
			char last_id[UUID_STR_LEN] = "~";

			q.state = k < 3 ? (int)states[k] : -1;
			seen = 0;
			for (;;) {
				struct store_task_ref *refs = NULL;
				char *next = NULL, *err = NULL;
				size_t n = 0, j;

				q.page_token = token;
				ck_assert_msg(store_task_list_refs(st, &q,
				    &refs, &n, &next, &total, &err) == 0,
				    "list: %s", err ? err : "?");
				ck_assert(total == (k < 3 ? want[k] :
				    want[0] + want[1] + want[2]));
				for (j = 0; j < n; j++) {
					const struct store_task_ref *f =
					    &refs[j];

					ck_assert(f->created_ms < last_created
					    || (f->created_ms == last_created &&
					    strcmp(f->id, last_id) < 0));
					last_created = refs[j].created_ms;
					strcpy(last_id, refs[j].id);
				}
				seen += n;
				ck_assert_uint_le(seen, MANY);
				free(refs);
				free(token);
				token = NULL;
				if (next[0] == '\0') {
					free(next);
					break;
				}
				token = next;
			}
			ck_assert_int_eq((int64_t)seen, total);
		}
		if (pass == 1)
			break;
		/* Back to schema 6 (no counts), and open: migrated, counted. */
		store_close(st);
		exec_sql(path, UNDO_V7 "PRAGMA user_version = 6;");
		st = open_ok(path);
	}
	snprintf(sql, sizeof(sql), "SELECT sum(n) FROM task_counts "
	    "WHERE owner = 'bob'");
	v = query1(path, sql);
	ck_assert_str_eq(v, "150");
	free(v);
	free(last);
	store_close(st);
}
END_TEST

/* The readiness probe commits a write; while another connection holds
 * the write lock it fails within its wait, saying so, and the store works
 * again once the lock is gone. */
START_TEST(test_probe_write)
{
	char path[400], *why = NULL, *v;
	struct store *st;
	sqlite3 *db = NULL;

	db_path(path, sizeof(path));
	st = open_ok(path);
	ck_assert_int_eq(store_probe_write(st, 200, 1234, &why), 0);
	ck_assert_ptr_null(why);
	v = query1(path, "SELECT probed_ms FROM health WHERE id = 1");
	ck_assert_str_eq(v, "1234");
	free(v);

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	ck_assert_int_eq(store_probe_write(st, 50, 5678, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, "locked") != NULL, "reason '%s'", why);
	free(why);
	why = NULL;
	/* Reads still answer: the old check (store_ping) saw nothing. */
	ck_assert_int_eq(store_ping(st), 0);
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);

	ck_assert_int_eq(store_probe_write(st, 200, 9999, &why), 0);
	ck_assert_ptr_null(why);
	store_close(st);
	v = query1(path, "SELECT probed_ms FROM health WHERE id = 1");
	ck_assert_str_eq(v, "9999");
	free(v);
}
END_TEST

/* The store and its WAL files are 0600 whatever the umask; an older,
 * more open file is made 0600 on open. */
START_TEST(test_file_mode)
{
	char path[400], wal[420];
	struct store *st;
	struct stat sb;
	mode_t old = umask(0);

	db_path(path, sizeof(path));
	st = open_ok(path);	/* its migrations wrote the WAL */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(wal, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	store_close(st);
	ck_assert_int_eq(chmod(path, 0644), 0);
	st = open_ok(path);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	store_close(st);
	umask(old);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");

	log_set_level(LOG_WARN);
	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_creates_schema);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_file_mode);
	tcase_add_test(tc, test_put_get_roundtrip);
	tcase_add_test(tc, test_get_unknown);
	tcase_add_test(tc, test_list_pages);
	tcase_add_test(tc, test_list_filters);
	tcase_add_test(tc, test_list_bad_token);
	tcase_add_test(tc, test_active);
	tcase_add_test(tc, test_push_configs);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_pods_registry);
	tcase_add_test(tc, test_probe_write);
	tcase_add_test(tc, test_read_beside_write);
	tcase_add_test(tc, test_peek_rev);
	tcase_add_test(tc, test_migrate_v8);
	tcase_add_test(tc, test_list_many);
	tcase_add_test(tc, test_checkpointer);
	tcase_add_test(tc, test_group_commit);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { store_suite })
