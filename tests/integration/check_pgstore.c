/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL task store (src/store/pgstore.c) against a real,
 * throwaway PostgreSQL cluster on 127.0.0.1 (tests/harness/pg): the
 * schema and its version, the password handling, every call of the
 * store interface, two stores ("agents") on one database, the readiness
 * probe against a held lock, and a connection the server drops.  Each
 * test works in a PostgreSQL schema of its own (search_path in the URL),
 * so tests never see each other's rows.  Exit 77 without PostgreSQL's
 * server programs unless IA_REQUIRE_INTEGRATION=1.
 */
#include "auto-config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/uuid.h"
#include "store/store.h"
#include "lib/xalloc.h"
#include "unit/testutil.h"

#ifndef HAVE_LIBPQ

static void
no_libpq(void)
{
	tu_require(false, "built without libpq (--without-postgresql)");
}

static Suite *
pgstore_suite(void)
{
	return suite_create("pgstore");
}

TU_MAIN(.suites = { pgstore_suite }, .setup = no_libpq)

#else

#include <libpq-fe.h>

static char pg_top[300], pg_dir[340];

/* Start the cluster (tests/harness/pg) and export its PG_* variables. */
static void
pg_up(void)
{
	const char *top = getenv("top_srcdir");
	char cmd[1024], line[1024];
	FILE *fp;

	tu_require(access("/usr/lib/postgresql", X_OK) == 0 ||
	    system("command -v initdb >/dev/null 2>&1") == 0,
	    "PostgreSQL's server programs not found (install the Debian "
	    "package 'postgresql')");
	snprintf(cmd, sizeof(cmd), "%s/tests/harness/pg", top ? top : ".");
	tu_require(access(cmd, X_OK) == 0, "%s not found", cmd);
	snprintf(pg_top, sizeof(pg_top), "/tmp/ia-pgstore-XXXXXX");
	if (mkdtemp(pg_top) == NULL || chmod(pg_top, 0711) != 0) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(pg_dir, sizeof(pg_dir), "%s/pg", pg_top);
	snprintf(cmd, sizeof(cmd), "%s/tests/harness/pg start '%s'",
	    top ? top : ".", pg_dir);
	fp = popen(cmd, "r");
	if (fp == NULL) {
		perror("popen tests/harness/pg");
		exit(1);
	}
	while (fgets(line, sizeof(line), fp)) {
		char *eq, *v;

		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "export ", 7) != 0 ||
		    (eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (*v == '\'' || *v == '"') {
			v++;
			v[strlen(v) - 1] = '\0';
		}
		setenv(line + 7, v, 1);
	}
	if (pclose(fp) != 0 || getenv("PG_URL") == NULL ||
	    getenv("PG_PASSWORD_FILE") == NULL) {
		fprintf(stderr, "tests/harness/pg start failed\n");
		exit(1);
	}
}

static bool
pg_down(void)
{
	const char *top = getenv("top_srcdir");
	char cmd[1024];
	int rc = 0;

	if (pg_dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "%s/tests/harness/pg stop '%s' >&2",
		    top ? top : ".", pg_dir);
		rc = system(cmd);
		rmdir(pg_top);
	}
	return rc == 0;
}

/* A connection of the test's own (as the agent's role), to look at and
 * to disturb what the store does. */
static PGconn *
admin(const char *schema)
{
	char *pw = tu_read_file(getenv("PG_PASSWORD_FILE"));
	const char *keys[] = { "dbname", "password", "options", NULL };
	char opts[128];
	const char *vals[4];
	PGconn *c;

	pw[strcspn(pw, "\r\n")] = '\0';
	snprintf(opts, sizeof(opts), "-c search_path=%s", schema);
	vals[0] = getenv("PG_URL");
	vals[1] = pw;
	vals[2] = opts;
	vals[3] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	free(pw);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "admin: %s",
	    PQerrorMessage(c));
	return c;
}

/* Run sql on c; the first cell of the result as a new string ("" when
 * none). */
static char *
sql1(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	char *v;

	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
	    PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
	    PQresultErrorMessage(r));
	v = strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static void
sql_ok(PGconn *c, const char *sql)
{
	free(sql1(c, sql));
}

/* A fresh schema for one test: its name in out; its URL in url. */
static void
schema_new(char *out, size_t len, char *url, size_t ulen)
{
	char id[UUID_STR_LEN], sql[128];
	PGconn *c;
	size_t i;

	uuid_v4(id);
	snprintf(out, len, "t_%.8s", id);
	for (i = 0; out[i]; i++)
		if (out[i] == '-')
			out[i] = '_';
	c = admin("public");
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", out);
	sql_ok(c, sql);
	PQfinish(c);
	snprintf(url, ulen, "%s?options=-c%%20search_path%%3D%s",
	    getenv("PG_URL"), out);
}

static struct store *
open_ok(const char *url)
{
	struct store *st = NULL;
	char *err = NULL;

	ck_assert_msg(store_open(url, getenv("PG_PASSWORD_FILE"), &st,
	    &err) == 0, "store_open: %s", err ? err : "?");
	ck_assert_str_eq(store_backend(st), "postgresql");
	return st;
}

static void
put_ok(struct store *st, const struct task *t)
{
	char *err = NULL;

	ck_assert_msg(store_task_put(st, t, &err) == 0, "put: %s",
	    err ? err : "?");
}


/* ---- tests -------------------------------------------------------------- */

/* Open creates the schema at version 1, a second open leaves it, and a
 * database of a newer agent is refused untouched. */
START_TEST(test_schema)
{
	char schema[64], url[700], *v, *err = NULL;
	struct store *st;
	PGconn *c;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	st = open_ok(url);
	store_close(st);
	st = open_ok(url);
	store_close(st);
	c = admin(schema);
	v = sql1(c, "SELECT string_agg(version::text, ',') FROM "
	    "instag_schema");
	ck_assert_str_eq(v, "1,2");
	free(v);
	v = sql1(c, "SELECT count(*) FROM pg_tables WHERE schemaname = "
	    "current_schema() AND tablename IN ('tasks', 'task_counts', "
	    "'push_configs', 'pods', 'health')");
	ck_assert_str_eq(v, "5");
	free(v);
	sql_ok(c, "UPDATE instag_schema SET version = 99");
	ck_assert_int_eq(store_open(url, getenv("PG_PASSWORD_FILE"), &st,
	    &err), -1);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(err, "newer") != NULL, "%s", err);
	free(err);
	PQfinish(c);
}
END_TEST

/* A password is taken only from the file, and never shows in an error. */
START_TEST(test_password_handling)
{
	char url[700], pwfile[400], dir[300], *err = NULL;
	const char *base = getenv("PG_URL");
	struct store *st = NULL;
	FILE *f;

	/* In the URL: refused before anything connects. */
	snprintf(url, sizeof(url), "postgresql://instag:hunter2-q9@%s",
	    strstr(base, "@") + 1);
	ck_assert_int_eq(store_open(url, NULL, &st, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert(strstr(err, "hunter2") == NULL);
	ck_assert_msg(strstr(err, "store_password_file") != NULL, "%s", err);
	free(err);
	err = NULL;
	snprintf(url, sizeof(url), "%s?password=hunter2-q9", base);
	ck_assert_int_eq(store_open(url, NULL, &st, &err), -1);
	ck_assert(strstr(err, "hunter2") == NULL);
	free(err);
	err = NULL;

	/* A wrong password: the server's refusal, without the password. */
	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	snprintf(pwfile, sizeof(pwfile), "%s/wrong.pw", dir);
	f = fopen(pwfile, "w");
	ck_assert_ptr_nonnull(f);
	fputs("not-the-password-7f3\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(pwfile, 0600), 0);
	ck_assert_int_eq(store_open(base, pwfile, &st, &err), -1);
	ck_assert_msg(strstr(err, "password authentication failed") != NULL,
	    "%s", err);
	ck_assert(strstr(err, "not-the-password") == NULL);
	free(err);
	err = NULL;

	/* A file others may read is refused; so is a missing one. */
	ck_assert_int_eq(chmod(pwfile, 0644), 0);
	ck_assert_int_eq(store_open(base, pwfile, &st, &err), -1);
	ck_assert(strstr(err, "not-the-password") == NULL);
	free(err);
	err = NULL;
	snprintf(pwfile, sizeof(pwfile), "%s/missing.pw", dir);
	ck_assert_int_eq(store_open(base, pwfile, &st, &err), -1);
	free(err);
	err = NULL;

	/* Not a connection string libpq reads. */
	ck_assert_int_eq(store_open("postgresql://[::1", NULL, &st, &err),
	    -1);
	ck_assert_msg(strstr(err, "not a PostgreSQL URL") != NULL, "%s", err);
	free(err);
	ck_assert_ptr_null(st);
}
END_TEST

/* Put and get every column; rev counts writes; peek reads owner and
 * rev; an unknown id is absent. */
START_TEST(test_roundtrip)
{
	char schema[64], url[700], *owner = NULL;
	struct store *st;
	struct task *t, *g = NULL;
	int64_t rev = -1, rev2 = -1;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	st = open_ok(url);
	t = task_new("alice", "instag.train", json_tokener_parse(
	    "{\"subject\":\"may\",\"u\":\"\\u00fc'\\\"\\\\/\","
	    "\"big\":9007199254740993,\"list\":[1,\"two\",null,true]}"),
	    NULL);
	t->state = TASK_INPUT_REQUIRED;
	t->progress = json_tokener_parse("{\"step\":2,\"percent\":40}");
	t->result = json_tokener_parse("{\"video\":\"out.mp4\"}");
	t->error = json_tokener_parse("{\"code\":\"c\",\"message\":\"m\"}");
	json_object_object_add(t->checkpoint, "pod_id",
	    json_object_new_string("pod-123"));
	task_add_history(t, task_msg_text("user", "hello; DROP TABLE tasks",
	    t->id, t->context_id), 10);
	t->created_ms = 1700000000123LL;
	t->updated_ms = 1700000009999LL;
	t->next_wake_ms = 1700000012345LL;
	t->version = 42;
	t->cancel_requested = true;
	put_ok(st, t);
	ck_assert_int_eq(store_task_get_rev(st, t->id, &g, &rev), 0);
	tu_assert_task_eq(t, g);
	task_free(g);
	ck_assert_int_eq(store_task_peek(st, t->id, &owner, &rev2), 0);
	ck_assert_str_eq(owner, "alice");
	ck_assert(rev2 == rev);
	free(owner);
	/* Another write of the same task: a new rev, the new columns. */
	t->state = TASK_WORKING;
	json_object_put(t->result);
	t->result = NULL;
	put_ok(st, t);
	ck_assert_int_eq(store_task_get_rev(st, t->id, &g, &rev2), 0);
	ck_assert(rev2 == rev + 1);
	tu_assert_task_eq(t, g);
	task_free(g);
	/* A later write cannot move the task to another owner, context or
	 * creation time. */
	free(t->owner);
	t->owner = xstrdup("mallory");
	snprintf(t->context_id, sizeof(t->context_id), "ctx-m");
	t->created_ms = 5;
	put_ok(st, t);
	ck_assert_int_eq(store_task_get(st, t->id, &g), 0);
	ck_assert_str_eq(g->owner, "alice");
	ck_assert_str_ne(g->context_id, "ctx-m");
	ck_assert(g->created_ms == 1700000000123LL);
	task_free(g);
	ck_assert_int_eq(store_task_get(st, "00000000-0000-4000-8000-"
	    "000000000000", &g), 1);
	ck_assert_ptr_null(g);
	ck_assert_int_eq(store_task_peek(st, "00000000-0000-4000-8000-"
	    "000000000000", &owner, &rev), 1);
	task_free(t);
	store_close(st);
}
END_TEST

#define LIST_N 57

/* Pages walk every task of an owner once, newest first, with the totals
 * of each filter; a bad token is refused. */
START_TEST(test_list)
{
	static const enum task_state states[] = { TASK_COMPLETED,
	    TASK_FAILED, TASK_WORKING };
	char schema[64], url[700], *err = NULL, *next = NULL;
	char ctx[TASK_CONTEXT_MAX + 1] = "";
	struct store *st;
	struct store_list_query q = { 0 };
	int64_t want[3] = { 0 }, total = -1;
	int64_t ctx_n = 0, late_n = 0;
	struct task **tasks = NULL;
	size_t i, n = 0;
	int k;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	st = open_ok(url);
	for (i = 0; i < LIST_N; i++) {
		struct task *t = task_new(i % 10 == 9 ? "bob" : "alice",
		    "diag.timer", NULL, NULL);

		t->created_ms = 1000 + (int64_t)(i / 3);	/* ties */
		t->updated_ms = 2000 + (int64_t)i;
		t->state = states[i % 3];
		if (ctx[0] == '\0')
			snprintf(ctx, sizeof(ctx), "%s", t->context_id);
		if (i % 4 == 0)
			memcpy(t->context_id, ctx, sizeof(ctx));
		put_ok(st, t);
		if (i % 10 != 9) {
			want[i % 3]++;
			ctx_n += i % 4 == 0;
			late_n += t->updated_ms > 2040;
		}
		task_free(t);
	}
	q.owner = "alice";
	q.page_size = 10;
	for (k = 0; k < 4; k++) {
		char *token = NULL, last_id[UUID_STR_LEN] = "~";
		int64_t last_created = INT64_MAX, seen = 0;
		int pages = 0;

		q.state = k < 3 ? (int)states[k] : -1;
		for (;;) {
			struct store_task_ref *refs = NULL;
			size_t j;

			q.page_token = token;
			ck_assert_msg(store_task_list_refs(st, &q, &refs, &n,
			    &next, &total, &err) == 0, "%s", err ? err : "?");
			ck_assert(total == (k < 3 ? want[k] :
			    want[0] + want[1] + want[2]));
			for (j = 0; j < n; j++) {
				ck_assert(refs[j].created_ms < last_created ||
				    (refs[j].created_ms == last_created &&
				    strcmp(refs[j].id, last_id) < 0));
				last_created = refs[j].created_ms;
				strcpy(last_id, refs[j].id);
			}
			seen += (int64_t)n;
			free(refs);
			free(token);
			token = NULL;
			ck_assert_int_lt(++pages, 20);
			if (next[0] == '\0') {
				free(next);
				break;
			}
			token = next;
		}
		ck_assert(seen == total);
	}
	/* Whole rows, and the other filters. */
	q.state = -1;
	q.page_token = NULL;
	q.page_size = 100;
	q.context_id = ctx;
	ck_assert_int_eq(store_task_list(st, &q, &tasks, &n, &next, &total,
	    &err), 0);
	ck_assert(total == ctx_n && (int64_t)n == ctx_n);
	ck_assert_str_eq(next, "");
	for (i = 0; i < n; i++) {
		ck_assert_str_eq(tasks[i]->context_id, ctx);
		ck_assert_str_eq(tasks[i]->owner, "alice");
	}
	task_list_free(tasks, n);
	free(next);
	q.context_id = NULL;
	q.updated_after_ms = 2040;
	ck_assert_int_eq(store_task_list(st, &q, &tasks, &n, &next, &total,
	    &err), 0);
	ck_assert(total == late_n && (int64_t)n == late_n);
	task_list_free(tasks, n);
	free(next);
	/* Someone else's tasks are not in alice's list. */
	q.updated_after_ms = 0;
	q.owner = "carol";
	ck_assert_int_eq(store_task_list(st, &q, &tasks, &n, &next, &total,
	    &err), 0);
	ck_assert(total == 0 && n == 0);
	free(tasks);
	free(next);
	q.owner = "alice";
	q.page_token = "12.'; DROP TABLE tasks; --";
	ck_assert_int_eq(store_task_list(st, &q, &tasks, &n, &next, &total,
	    &err), -1);
	ck_assert_str_eq(err, "invalid pageToken");
	free(err);
	store_close(st);
}
END_TEST

/* Active tasks (for resume), oldest first; push configs; the pod
 * registry. */
START_TEST(test_active_push_pods)
{
	char schema[64], url[700], *err = NULL, **ids = NULL;
	struct store *st;
	struct task *a = task_new("alice", "diag.timer", NULL, NULL);
	struct task *b = task_new("bob", "diag.timer", NULL, NULL);
	struct task *c = task_new("bob", "diag.timer", NULL, NULL);
	struct task **tasks = NULL;
	struct push_config p = { 0 }, *pg = NULL, **pcs = NULL;
	struct pod_rec pod = { 0 }, *got = NULL, **pods = NULL;
	size_t n = 0, i;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	st = open_ok(url);
	a->created_ms = 30;
	b->created_ms = 10;
	c->created_ms = 20;
	b->state = TASK_WORKING;
	c->state = TASK_COMPLETED;
	put_ok(st, a);
	put_ok(st, b);
	put_ok(st, c);
	ck_assert_int_eq(store_task_active(st, &tasks, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(tasks[0]->id, b->id);
	ck_assert_str_eq(tasks[1]->id, a->id);
	task_list_free(tasks, n);

	p.task_id = a->id;
	p.id = (char *)"c1";
	p.url = (char *)"https://x.example/cb";
	p.token = (char *)"tok";
	p.created_ms = 5;
	p.dialect = 1;
	ck_assert_int_eq(store_push_put(st, &p, &err), 0);
	p.id = (char *)"c2";
	p.token = NULL;
	p.auth_scheme = (char *)"Bearer";
	p.auth_credentials = (char *)"cred";
	p.created_ms = 6;
	ck_assert_int_eq(store_push_put(st, &p, &err), 0);
	ck_assert_int_eq(store_push_get(st, a->id, "c1", &pg), 0);
	ck_assert_str_eq(pg->url, "https://x.example/cb");
	ck_assert_str_eq(pg->token, "tok");
	ck_assert_ptr_null(pg->auth_scheme);
	ck_assert_int_eq(pg->dialect, 1);
	store_push_free(pg);
	ck_assert_int_eq(store_push_list(st, a->id, &pcs, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(pcs[1]->id, "c2");
	ck_assert_str_eq(pcs[1]->auth_credentials, "cred");
	store_push_list_free(pcs, n);
	ck_assert_int_eq(store_push_task_ids(st, &ids, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(ids[0], a->id);
	free(ids[0]);
	free(ids);
	ck_assert_int_eq(store_push_delete(st, a->id, "c1"), 0);
	ck_assert_int_eq(store_push_delete(st, a->id, "c1"), 1);
	ck_assert_int_eq(store_push_get(st, a->id, "c1", &pg), 1);
	/* A config of a task that does not exist is refused. */
	p.task_id = (char *)"00000000-0000-4000-8000-000000000000";
	ck_assert_int_eq(store_push_put(st, &p, &err), -1);
	free(err);

	pod.pod_id = (char *)"pod-1";
	pod.name = (char *)"ia-x";
	pod.task_id = b->id;
	pod.owner = (char *)"bob";
	pod.state = (char *)"active";
	pod.gpu_count = 2;
	pod.cost_per_hr = 0.69;
	pod.max_runtime_ms = 3600000;
	pod.max_cost_usd = 12.5;
	pod.host_fp = (char *)"SHA256:abc";
	pod.created_ms = 100;
	pod.updated_ms = 100;
	pod.storage_usd = 0.1 + 0.2;
	pod.label = (char *)"mine";
	ck_assert_int_eq(store_pod_put(st, &pod, &err), 0);
	pod.pod_id = (char *)"pod-2";
	pod.task_id = a->id;
	pod.owner = (char *)"alice";
	pod.state = (char *)"terminated";
	pod.created_ms = 200;
	ck_assert_int_eq(store_pod_put(st, &pod, &err), 0);
	ck_assert_int_eq(store_pod_get(st, "pod-1", &got), 0);
	ck_assert_str_eq(got->owner, "bob");
	ck_assert_int_eq(got->gpu_count, 2);
	ck_assert(got->cost_per_hr == 0.69);
	ck_assert(got->storage_usd == 0.1 + 0.2);
	ck_assert_str_eq(got->host_fp, "SHA256:abc");
	ck_assert_ptr_null(got->public_ip);
	store_pod_free(got);
	ck_assert_int_eq(store_pod_by_task(st, a->id, &got), 0);
	ck_assert_str_eq(got->pod_id, "pod-2");
	store_pod_free(got);
	ck_assert_int_eq(store_pod_get(st, "pod-9", &got), 1);
	ck_assert_int_eq(store_pod_list(st, NULL, false, &pods, &n), 0);
	ck_assert_uint_eq(n, 1);
	store_pod_list_free(pods, n);
	ck_assert_int_eq(store_pod_list(st, NULL, true, &pods, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(pods[0]->pod_id, "pod-1");
	store_pod_list_free(pods, n);
	ck_assert_int_eq(store_pod_list(st, "alice", true, &pods, &n), 0);
	ck_assert_uint_eq(n, 1);
	for (i = 0; i < n; i++)
		ck_assert_str_eq(pods[i]->owner, "alice");
	store_pod_list_free(pods, n);
	task_free(a);
	task_free(b);
	task_free(c);
	store_close(st);
}
END_TEST

struct writer {
	struct store *st;
	const char *owner;
	int n;
	int failed;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	int i;

	for (i = 0; i < w->n; i++) {
		struct task *t = task_new(w->owner, "diag.timer", NULL, NULL);
		char *err = NULL;

		if (store_task_put(w->st, t, &err) < 0) {
			w->failed++;
			free(err);
		}
		t->state = TASK_COMPLETED;
		if (store_task_put(w->st, t, &err) < 0) {
			w->failed++;
			free(err);
		}
		task_free(t);
	}
	return NULL;
}

#define WRITERS 6
#define WRITES 40

/* Two stores on one database, as two agents: what one writes the other
 * reads at once, and writers on both at the same time lose nothing. */
START_TEST(test_two_agents)
{
	char schema[64], url[700], *owner = NULL, *next = NULL, *err = NULL;
	struct store *a, *b;
	struct task *t, *g = NULL;
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	struct store_list_query q = { 0 };
	struct store_task_ref *refs = NULL;
	int64_t rev = 0, total = -1;
	size_t n = 0;
	int i;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	a = open_ok(url);
	b = open_ok(url);
	t = task_new("alice", "diag.timer", NULL, NULL);
	put_ok(a, t);
	ck_assert_int_eq(store_task_get(b, t->id, &g), 0);
	tu_assert_task_eq(t, g);
	task_free(g);
	t->state = TASK_WORKING;
	put_ok(b, t);
	ck_assert_int_eq(store_task_peek(a, t->id, &owner, &rev), 0);
	ck_assert(rev == 1);
	free(owner);
	task_free(t);

	for (i = 0; i < WRITERS; i++) {
		w[i].st = i % 2 ? b : a;
		w[i].owner = "bob";
		w[i].n = WRITES;
		w[i].failed = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main,
		    &w[i]), 0);
	}
	for (i = 0; i < WRITERS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(w[i].failed, 0);
	}
	q.owner = "bob";
	q.state = TASK_COMPLETED;
	q.page_size = 5;
	ck_assert_int_eq(store_task_list_refs(b, &q, &refs, &n, &next, &total,
	    &err), 0);
	ck_assert(total == WRITERS * WRITES);
	free(refs);
	free(next);
	q.state = TASK_SUBMITTED;
	ck_assert_int_eq(store_task_list_refs(a, &q, &refs, &n, &next, &total,
	    &err), 0);
	ck_assert(total == 0);
	free(refs);
	free(next);
	store_close(a);
	store_close(b);
}
END_TEST

/* The readiness probe commits a write; while another session holds the
 * health table it fails within its wait, saying so, and reads still
 * answer. */
START_TEST(test_probe_locked)
{
	char schema[64], url[700], *why = NULL, *v;
	struct store *st;
	PGconn *c;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	st = open_ok(url);
	ck_assert_int_eq(store_probe_write(st, 30000, 1234, &why), 0);
	ck_assert_ptr_null(why);
	c = admin(schema);
	v = sql1(c, "SELECT probed_ms FROM health");
	ck_assert_str_eq(v, "1234");
	free(v);
	sql_ok(c, "BEGIN");
	sql_ok(c, "LOCK TABLE health IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(store_probe_write(st, 200, 5678, &why), -1);
	ck_assert_msg(why != NULL && strstr(why, "locked") != NULL,
	    "reason '%s'", why ? why : "(none)");
	free(why);
	why = NULL;
	ck_assert_int_eq(store_ping(st), 0);
	sql_ok(c, "ROLLBACK");
	ck_assert_int_eq(store_probe_write(st, 30000, 9999, &why), 0);
	v = sql1(c, "SELECT probed_ms FROM health");
	ck_assert_str_eq(v, "9999");
	free(v);
	PQfinish(c);
	store_close(st);
}
END_TEST

/* The server ends the store's sessions (a restart, a failover): the
 * next calls reconnect and work. */
START_TEST(test_reconnect)
{
	char schema[64], url[700], *v;
	struct store *st;
	struct task *t = task_new("alice", "diag.timer", NULL, NULL), *g;
	PGconn *c;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	st = open_ok(url);
	put_ok(st, t);
	c = admin(schema);
	v = sql1(c, "SELECT count(pg_terminate_backend(pid)) FROM "
	    "pg_stat_activity WHERE application_name = 'instag-agent' AND "
	    "pid <> pg_backend_pid()");
	ck_assert_int_ge(atoi(v), 1);
	free(v);
	PQfinish(c);
	ck_assert_int_eq(store_task_get(st, t->id, &g), 0);
	task_free(g);
	t->state = TASK_COMPLETED;
	put_ok(st, t);
	ck_assert_int_eq(store_ping(st), 0);
	task_free(t);
	store_close(st);
}
END_TEST

/* A store as one agent: holder name and a short lease. */
static struct store *
agent_open(const char *url, const char *holder, int64_t lease_ms)
{
	struct store *st = open_ok(url);

	store_lease_config(st, holder, lease_ms);
	return st;
}

/* Let task id's lease run out now, as when its holder stops renewing. */
static void
lease_expire(const char *schema, const char *id)
{
	char sql[160];
	PGconn *c = admin(schema);

	snprintf(sql, sizeof(sql), "UPDATE tasks SET lease_until = 1 WHERE "
	    "id = '%s'", id);
	sql_ok(c, sql);
	PQfinish(c);
}

/* Claim on st until a task comes (its lease ran out), at most
 * TU_HANG_MS: the claimed tasks (n of them). */
static struct task **
claim_wait(struct store *st, size_t *n)
{
	struct task **got = NULL;
	int64_t until = tu_now_ms() + TU_HANG_MS;

	do {
		ck_assert_int_eq(store_task_claim(st, tu_now_ms(), 10, &got,
		    n), 0);
		if (*n > 0)
			return got;
		free(got);
		usleep(50 * 1000);
	} while (tu_now_ms() < until);
	ck_abort_msg("no task came free within %d ms", TU_HANG_MS);
	return NULL;
}

/* The lease of a task moves from a dead agent to a live one; the old
 * holder's writes are refused; cancel requests and take-overs go
 * through the row. */
START_TEST(test_leases)
{
	char schema[64], url[700], *err = NULL;
	struct store *a, *b;
	struct task *t, **got, *g = NULL;
	struct store_held *held = NULL;
	size_t n = 0;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	/* Leases long enough that a busy machine cannot let one run out
	 * between two statements; the test ends them by hand where it
	 * means to (lease_expire). */
	a = agent_open(url, "agent-a", 60000);
	b = agent_open(url, "agent-b", 60000);
	ck_assert(store_shared(a));
	t = task_new("alice", "diag.timer", NULL, NULL);
	put_ok(a, t);			/* a new row is a's lease */
	ck_assert_int_eq(store_task_claim(b, tu_now_ms(), 10, &got, &n), 0);
	ck_assert_uint_eq(n, 0);	/* a's lease holds */
	free(got);
	ck_assert_int_eq(store_lease_renew(a, tu_now_ms(), &held, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(held[0].id, t->id);
	ck_assert(held[0].token == 0);
	free(held);

	/* a stops renewing (its lease runs out): b claims the task, under a
	 * new token. */
	lease_expire(schema, t->id);
	got = claim_wait(b, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(got[0]->id, t->id);
	ck_assert(got[0]->lease_token == 1);
	/* a's stale copy is fenced out; b's writes go through. */
	t->state = TASK_WORKING;
	ck_assert_int_eq(store_task_put(a, t, &err), STORE_LEASE_LOST);
	ck_assert_msg(strstr(err, "lease lost") != NULL, "%s", err);
	free(err);
	err = NULL;
	ck_assert_int_eq(store_lease_renew(a, tu_now_ms(), &held, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(held);
	got[0]->state = TASK_WORKING;
	put_ok(b, got[0]);
	ck_assert_int_eq(store_task_get(a, t->id, &g), 0);
	ck_assert_int_eq(g->state, TASK_WORKING);
	ck_assert(g->lease_token == 1);
	task_free(g);

	/* a asks for a cancel: b sees it at its renewal, and its put does
	 * not clear it. */
	ck_assert_int_eq(store_task_request_cancel(a, t->id), 0);
	put_ok(b, got[0]);
	ck_assert_int_eq(store_lease_renew(b, tu_now_ms(), &held, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert(held[0].cancel_requested);
	free(held);

	/* A task waiting for input: a takes it over from b at once. */
	ck_assert_int_eq(store_task_take(a, t->id, &g), 1);	/* working */
	got[0]->state = TASK_INPUT_REQUIRED;
	put_ok(b, got[0]);
	ck_assert_int_eq(store_task_take(a, t->id, &g), 0);
	ck_assert(g->lease_token == 2);
	ck_assert_int_eq(store_task_put(b, got[0], &err), STORE_LEASE_LOST);
	free(err);
	err = NULL;
	g->state = TASK_COMPLETED;
	put_ok(a, g);
	task_free(g);
	/* Finished: nobody claims it, and a cancel request finds none. */
	ck_assert_int_eq(store_task_request_cancel(b, t->id), 1);
	task_list_free(got, 1);

	/* A clean stop releases at once. */
	t = (task_free(t), task_new("bob", "diag.timer", NULL, NULL));
	put_ok(a, t);
	ck_assert_int_eq(store_lease_release(a), 0);
	ck_assert_int_eq(store_task_claim(b, tu_now_ms(), 10, &got, &n), 0);
	ck_assert_uint_eq(n, 1);
	task_list_free(got, n);
	task_free(t);
	store_close(a);
	store_close(b);
}
END_TEST

/* What a watcher hears. */
struct heard {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char ids[16][UUID_STR_LEN];
	bool inbox[16];
	int n;
};

static void
heard_fn(const char *id, int64_t token, bool cancel, bool inbox,
    int64_t version, void *arg)
{
	struct heard *h = arg;

	(void)token;
	(void)version;
	(void)cancel;
	pthread_mutex_lock(&h->lock);
	if (h->n < 16) {
		snprintf(h->ids[h->n], sizeof(h->ids[0]), "%s", id);
		h->inbox[h->n] = inbox;
		h->n++;
	}
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* Wait until h has heard n things (at most TU_HANG_MS). */
static void
heard_wait(struct heard *h, int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += TU_HANG_MS / 1000;
	pthread_mutex_lock(&h->lock);
	while (h->n < n && pthread_cond_timedwait(&h->cond, &h->lock,
	    &ts) == 0)
		;
	ck_assert_msg(h->n >= n, "heard %d of %d", h->n, n);
	pthread_mutex_unlock(&h->lock);
}

/* Another agent's writes and posts reach the watcher; the watching
 * store's own do not; posted messages wait for the holder. */
START_TEST(test_watch_inbox)
{
	char schema[64], url[700], **msgs = NULL;
	struct store *a, *b;
	struct task *t, *mine;
	struct heard h = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER };
	int64_t last = 0;
	size_t n = 0;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	a = agent_open(url, "agent-a", 30000);
	b = agent_open(url, "agent-b", 30000);
	ck_assert_int_eq(store_watch(b, heard_fn, &h), 0);
	/* b's own write first: it must not be heard. */
	mine = task_new("bob", "diag.timer", NULL, NULL);
	put_ok(b, mine);
	t = task_new("alice", "diag.timer", NULL, NULL);
	put_ok(a, t);
	heard_wait(&h, 1);
	ck_assert_str_eq(h.ids[0], t->id);
	ck_assert(!h.inbox[0]);
	ck_assert_int_eq(store_task_post(a, t->id, "{\"role\":\"user\","
	    "\"text\":\"one\"}"), 0);
	ck_assert_int_eq(store_task_post(a, t->id, "{\"text\":\"two\"}"),
	    0);
	heard_wait(&h, 3);
	ck_assert_str_eq(h.ids[1], t->id);
	ck_assert(h.inbox[1] && h.inbox[2]);
	ck_assert_int_eq(store_inbox_take(b, t->id, &msgs, &n, &last), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_nonnull(strstr(msgs[0], "one"));
	ck_assert_ptr_nonnull(strstr(msgs[1], "two"));
	free(msgs[0]);
	free(msgs[1]);
	free(msgs);
	ck_assert_int_eq(store_inbox_done(b, t->id, last), 0);
	ck_assert_int_eq(store_inbox_take(b, t->id, &msgs, &n, &last), 0);
	ck_assert_uint_eq(n, 0);
	free(msgs);
	/* A finished task takes no post: the caller writes the row. */
	t->state = TASK_COMPLETED;
	put_ok(a, t);
	ck_assert_int_eq(store_task_post(a, t->id, "{}"), 1);
	ck_assert_int_eq(store_task_post(a, "00000000-0000-4000-8000-"
	    "000000000000", "{}"), 1);
	heard_wait(&h, 4);
	pthread_mutex_lock(&h.lock);
	for (int i = 0; i < h.n; i++)
		ck_assert_str_ne(h.ids[i], mine->id);
	pthread_mutex_unlock(&h.lock);
	task_free(t);
	task_free(mine);
	store_close(b);	/* stops its watcher */
	store_close(a);
}
END_TEST

/* One holder of a singleton at a time; it passes on when the holder's
 * store closes (as when its process dies). */
START_TEST(test_singleton)
{
	char schema[64], url[700];
	struct store *a, *b;
	int64_t until;
	bool b_has = false;

	schema_new(schema, sizeof(schema), url, sizeof(url));
	a = agent_open(url, "agent-a", 30000);
	b = agent_open(url, "agent-b", 30000);
	ck_assert(store_singleton(a, "podguard"));
	ck_assert(store_singleton(a, "podguard"));	/* kept */
	ck_assert(!store_singleton(b, "podguard"));
	ck_assert(store_singleton(b, "other"));
	store_close(a);
	until = tu_now_ms() + TU_HANG_MS;
	while (!(b_has = store_singleton(b, "podguard")) &&
	    tu_now_ms() < until)
		usleep(50 * 1000);
	ck_assert(b_has);
	store_close(b);
}
END_TEST

static Suite *
pgstore_suite(void)
{
	Suite *s = suite_create("pgstore");
	TCase *tc = tcase_create("core");

	log_set_level(LOG_WARN);
	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_schema);
	tcase_add_test(tc, test_password_handling);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_active_push_pods);
	tcase_add_test(tc, test_two_agents);
	tcase_add_test(tc, test_probe_locked);
	tcase_add_test(tc, test_reconnect);
	tcase_add_test(tc, test_leases);
	tcase_add_test(tc, test_watch_inbox);
	tcase_add_test(tc, test_singleton);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { pgstore_suite }, .setup = pg_up, .teardown = pg_down)

#endif /* HAVE_LIBPQ */
