/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/xalloc.h"
#include "store/pgstore.h"
#include "store/storebe.h"

#ifndef HAVE_LIBPQ

int
pgstore_open(const char *conninfo, const char *password_file,
    struct store **out, char **err)
{
	(void)conninfo;
	(void)password_file;
	*out = NULL;
	*err = xstrdup("task store: this build has no PostgreSQL support "
	    "(configure found no libpq, or was given --without-postgresql)");
	return -1;
}

#else

#include <libpq-fe.h>

#include "lib/log.h"
#include "lib/secretfile.h"

/* Connections the pool opens at most; a call waits for an idle one
 * beyond that. */
#define PGSTORE_CONNS_MAX 8
/* How long a statement may run, and libpq's connect timeout (s), unless
 * the URL says otherwise; a store that stops answering fails calls
 * instead of holding threads. */
#define PGSTORE_OPTIONS "-c statement_timeout=30000"
#define PGSTORE_CONNECT_TIMEOUT_S "10"
/* The most parameters one statement binds. */
#define PGSTORE_ARGS_MAX 32

/* A pooled connection. */
struct pgconn {
	PGconn *c;
	int slot;		/* in pgstore.pids */
	struct pgconn *next;	/* in the idle list */
};

/* Singletons held (store_singleton), each on a session of its own. */
#define PGSTORE_SINGLETONS_MAX 4

struct singleton {
	char name[32];
	PGconn *c;		/* holds the advisory lock while it lives */
};

struct pgstore {
	struct store base;	/* first: the back end's interface */
	char *conninfo;
	char *password;		/* NULL: none; wiped at close */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pgconn *idle;
	int nconns;		/* open, idle or taken */
	uint64_t rows;		/* task writes (under lock) */
	/* The pool's server processes, to tell our own writes from other
	 * agents' in notifications (under lock; 0: free slot). */
	int pids[PGSTORE_CONNS_MAX];
	bool slot_used[PGSTORE_CONNS_MAX];
	/* Leases. */
	char *holder;		/* NULL until store_lease_config */
	int64_t lease_ms;
	/* The watcher (store_watch): its thread and session. */
	pthread_t watch_th;
	PGconn *watch_conn;	/* the first session; the thread's own */
	bool watching, watch_stop;
	store_change_fn watch_fn;
	void *watch_arg;
	/* Singletons (under slock). */
	pthread_mutex_t slock;
	struct singleton single[PGSTORE_SINGLETONS_MAX];
};

/* The states of an unfinished task, as SQL. */
#define PG_ACTIVE "('submitted', 'working', 'input-required')"
/* What a task read selects: the shared columns, rev (17), lease_token
 * (18). */
#define PG_TASK_READ_COLS STOREBE_TASK_READ_COLS ", lease_token"

static const struct store_ops pgstore_ops;
static void conn_track(struct pgstore *st, struct pgconn *pc);

#define PG(base) ((struct pgstore *)(void *)(base))

/* ---- the schema ---------------------------------------------------------- */

/*
 * Version 1 holds what SQLite's schema 7 holds (sqlitest.c), in
 * PostgreSQL's terms: the same tables and columns, rev and the
 * per-owner counts kept by a trigger in the writing transaction, and
 * the covering indexes of a list page.  Identifiers sort as bytes
 * (COLLATE "C"), as SQLite compares them, so page tokens order the same
 * on both.  JSON columns are text: the rendering is stored byte for byte.
 */
static const char *const pg_schema_v1 =
    "CREATE TABLE tasks ("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " context_id text NOT NULL,"
    " owner text COLLATE \"C\" NOT NULL,"
    " operation text NOT NULL,"
    " params text NOT NULL,"
    " state text NOT NULL,"
    " progress text,"
    " result text,"
    " artifacts text NOT NULL,"
    " error text,"
    " checkpoint text NOT NULL,"
    " history text NOT NULL,"
    " created_ms bigint NOT NULL,"
    " updated_ms bigint NOT NULL,"
    " next_wake_ms bigint NOT NULL DEFAULT 0,"
    " version bigint NOT NULL,"
    " cancel_requested integer NOT NULL DEFAULT 0,"
    " rev bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX tasks_owner_page ON tasks (owner, created_ms, id)"
    " INCLUDE (rev);"
    "CREATE INDEX tasks_owner_context ON tasks (owner, context_id,"
    " created_ms, id) INCLUDE (rev);"
    "CREATE INDEX tasks_owner_state ON tasks (owner, state, created_ms, id)"
    " INCLUDE (rev);"
    "CREATE INDEX tasks_owner_updated ON tasks (owner, updated_ms);"
    "CREATE INDEX tasks_active ON tasks (created_ms)"
    " WHERE state IN ('submitted', 'working', 'input-required');"
    "CREATE TABLE task_counts ("
    " owner text COLLATE \"C\" NOT NULL,"
    " state text NOT NULL,"
    " n bigint NOT NULL,"
    " PRIMARY KEY (owner, state));"
    "CREATE FUNCTION instag_task_count() RETURNS trigger"
    " LANGUAGE plpgsql AS $f$ BEGIN"
    " IF TG_OP IN ('UPDATE', 'DELETE') THEN"
    "  UPDATE task_counts SET n = n - 1"
    "   WHERE owner = OLD.owner AND state = OLD.state;"
    " END IF;"
    " IF TG_OP IN ('INSERT', 'UPDATE') THEN"
    "  INSERT INTO task_counts (owner, state, n)"
    "   VALUES (NEW.owner, NEW.state, 1)"
    "   ON CONFLICT (owner, state) DO UPDATE SET n = task_counts.n + 1;"
    " END IF;"
    " RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER tasks_count AFTER INSERT OR DELETE ON tasks"
    " FOR EACH ROW EXECUTE FUNCTION instag_task_count();"
    "CREATE TRIGGER tasks_count_update AFTER UPDATE OF owner, state"
    " ON tasks FOR EACH ROW WHEN (OLD.owner IS DISTINCT FROM NEW.owner"
    " OR OLD.state IS DISTINCT FROM NEW.state)"
    " EXECUTE FUNCTION instag_task_count();"
    "CREATE TABLE push_configs ("
    " task_id text COLLATE \"C\" NOT NULL"
    "  REFERENCES tasks (id) ON DELETE CASCADE,"
    " id text COLLATE \"C\" NOT NULL,"
    " url text NOT NULL,"
    " token text,"
    " auth_scheme text,"
    " auth_credentials text,"
    " dialect integer NOT NULL DEFAULT 0,"
    " created_ms bigint NOT NULL,"
    " PRIMARY KEY (task_id, id));"
    "CREATE TABLE pods ("
    " pod_id text COLLATE \"C\" PRIMARY KEY,"
    " name text NOT NULL,"
    " task_id text COLLATE \"C\" NOT NULL,"
    " owner text COLLATE \"C\" NOT NULL,"
    " state text NOT NULL,"
    " gpu_type_id text,"
    " cloud text,"
    " gpu_count integer NOT NULL DEFAULT 1,"
    " cost_per_hr double precision NOT NULL DEFAULT 0,"
    " public_ip text,"
    " ssh_port integer NOT NULL DEFAULT 0,"
    " host_fp text,"
    " max_runtime_ms bigint NOT NULL,"
    " max_cost_usd double precision NOT NULL,"
    " running_ms bigint NOT NULL DEFAULT 0,"
    " cost_usd double precision NOT NULL DEFAULT 0,"
    " last_check_ms bigint NOT NULL DEFAULT 0,"
    " reason text,"
    " created_ms bigint NOT NULL,"
    " updated_ms bigint NOT NULL,"
    " idle_ms bigint NOT NULL DEFAULT 0,"
    " last_used_ms bigint NOT NULL DEFAULT 0,"
    " disk_gb integer NOT NULL DEFAULT 0,"
    " volume_gb integer NOT NULL DEFAULT 0,"
    " stopped_ms bigint NOT NULL DEFAULT 0,"
    " storage_usd double precision NOT NULL DEFAULT 0,"
    " label text);"
    "CREATE INDEX pods_owner ON pods (owner, created_ms);"
    "CREATE INDEX pods_task ON pods (task_id);"
    "CREATE TABLE health ("
    " id integer PRIMARY KEY CHECK (id = 1),"
    " probed_ms bigint NOT NULL);";

/*
 * Version 2: leases (docs/internals.md, "Leases").  lease_holder is the
 * agent process that runs the task, lease_token counts the claims of it
 * (a write is fenced on the token it was read under), lease_until when
 * the lease runs out unless renewed.  Every task write notifies
 * instag_task with "id token cancel_requested 0 version", which other
 * agents' watchers hear at commit.  task_inbox holds follow-up messages
 * posted by agents that do not hold the task, for its holder (a post
 * notifies "id 0 0 1 0").
 */
static const char *const pg_schema_v2 =
    "ALTER TABLE tasks ADD COLUMN lease_holder text,"
    " ADD COLUMN lease_token bigint NOT NULL DEFAULT 0,"
    " ADD COLUMN lease_until bigint NOT NULL DEFAULT 0;"
    "CREATE INDEX tasks_lease ON tasks (lease_until, created_ms)"
    " WHERE state IN " PG_ACTIVE ";"
    "CREATE INDEX tasks_holder ON tasks (lease_holder)"
    " WHERE state IN " PG_ACTIVE ";"
    "CREATE FUNCTION instag_task_notify() RETURNS trigger"
    " LANGUAGE plpgsql AS $f$ BEGIN"
    " PERFORM pg_notify('instag_task', NEW.id || ' ' ||"
    "  NEW.lease_token || ' ' || NEW.cancel_requested || ' 0 ' ||"
    "  NEW.version);"
    " RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE ON tasks"
    " FOR EACH ROW EXECUTE FUNCTION instag_task_notify();"
    "CREATE TABLE task_inbox ("
    " seq bigserial PRIMARY KEY,"
    " task_id text COLLATE \"C\" NOT NULL"
    "  REFERENCES tasks (id) ON DELETE CASCADE,"
    " msg text NOT NULL);"
    "CREATE INDEX task_inbox_task ON task_inbox (task_id, seq);"
    "CREATE FUNCTION instag_inbox_notify() RETURNS trigger"
    " LANGUAGE plpgsql AS $f$ BEGIN"
    " PERFORM pg_notify('instag_task', NEW.task_id || ' 0 0 1 0');"
    " RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER task_inbox_notify AFTER INSERT ON task_inbox"
    " FOR EACH ROW EXECUTE FUNCTION instag_inbox_notify();";

/* The advisory lock key every agent takes to migrate (any constant
 * distinct from the other keys the agent uses). */
#define PGSTORE_LOCK_MIGRATE 0x696e737461670001LL

/* ---- arguments ----------------------------------------------------------- */

/* The text parameters of one statement ($1, $2, ... in order). */
struct pgargs {
	const char *v[PGSTORE_ARGS_MAX];
	char num[PGSTORE_ARGS_MAX][32];
	int n;
};

static void
args_str(struct pgargs *a, const char *s)
{
	if (a->n >= PGSTORE_ARGS_MAX)
		abort();	/* a programming error, caught by the tests */
	a->v[a->n++] = s;	/* NULL binds NULL */
}

static void
args_i64(struct pgargs *a, int64_t v)
{
	if (a->n >= PGSTORE_ARGS_MAX)
		abort();
	snprintf(a->num[a->n], sizeof(a->num[0]), "%" PRId64, v);
	a->v[a->n] = a->num[a->n];
	a->n++;
}

static void
args_dbl(struct pgargs *a, double v)
{
	if (a->n >= PGSTORE_ARGS_MAX)
		abort();
	snprintf(a->num[a->n], sizeof(a->num[0]), "%.17g", v);
	a->v[a->n] = a->num[a->n];
	a->n++;
}

/* ---- connections --------------------------------------------------------- */

/* libpq's message for c, one line, without the trailing newline: a new
 * string.  libpq never puts the password in it. */
static char *
conn_error(PGconn *c)
{
	char *m = xstrdup(c ? PQerrorMessage(c) : "out of memory");
	size_t n = strlen(m);

	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = '\0';
	for (char *p = m; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return m;
}

/* libpq's notices ("already exists, skipping") would go to stderr:
 * debug lines of the log instead. */
static void
conn_notice(void *arg, const char *msg)
{
	char line[256];

	(void)arg;
	snprintf(line, sizeof(line), "%s", msg);
	line[strcspn(line, "\n")] = '\0';
	log_kv(LOG_DEBUG, "store_notice", line, NULL);
}

/* A new connection (caller PQfinish()es it), or NULL with *err. */
static PGconn *
conn_open(struct pgstore *st, char **err)
{
	const char *keys[8], *vals[8];
	PGconn *c;
	int i = 0;

	/* Defaults first: what the URL says overrides them; the password
	 * comes last so that nothing overrides it. */
	keys[i] = "connect_timeout";
	vals[i++] = PGSTORE_CONNECT_TIMEOUT_S;
	keys[i] = "application_name";
	vals[i++] = "instag-agent";
	/* A session setting that survives PQreset: a statement that runs
	 * too long fails instead of holding its thread. */
	keys[i] = "options";
	vals[i++] = PGSTORE_OPTIONS;
	keys[i] = "dbname";
	vals[i++] = st->conninfo;
	if (st->password != NULL) {
		keys[i] = "password";
		vals[i++] = st->password;
	}
	keys[i] = NULL;
	vals[i] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		char *m = conn_error(c);

		*err = xasprintf("task store: cannot connect to PostgreSQL: "
		    "%s", m);
		free(m);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, conn_notice, NULL);
	return c;
}

/*
 * A connection for one call: an idle one, a new one while fewer than
 * PGSTORE_CONNS_MAX are open, else the next one given back, waiting at
 * most wait_ms (< 0: as long as it takes).  NULL with *err when none
 * could be had.  Give it back with conn_give.
 */
static struct pgconn *
conn_take(struct pgstore *st, int wait_ms, char **err)
{
	struct pgconn *pc = NULL;
	struct timespec until;

	if (wait_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&st->lock);
	while (st->idle == NULL && st->nconns >= PGSTORE_CONNS_MAX) {
		if (wait_ms < 0)
			pthread_cond_wait(&st->cond, &st->lock);
		else if (pthread_cond_timedwait(&st->cond, &st->lock,
		    &until) != 0 && st->idle == NULL &&
		    st->nconns >= PGSTORE_CONNS_MAX) {
			pthread_mutex_unlock(&st->lock);
			*err = xasprintf("the task store is busy: every "
			    "connection was in use for %d ms", wait_ms);
			return NULL;
		}
	}
	if (st->idle != NULL) {
		pc = st->idle;
		st->idle = pc->next;
		pthread_mutex_unlock(&st->lock);
		/* A connection the server dropped while idle: reconnect. */
		if (PQstatus(pc->c) != CONNECTION_OK) {
			PQreset(pc->c);
			conn_track(st, pc);
			if (PQstatus(pc->c) != CONNECTION_OK) {
				char *m = conn_error(pc->c);

				*err = xasprintf("task store: cannot "
				    "reconnect to PostgreSQL: %s", m);
				free(m);
				pthread_mutex_lock(&st->lock);
				pc->next = st->idle;
				st->idle = pc;
				pthread_cond_signal(&st->cond);
				pthread_mutex_unlock(&st->lock);
				return NULL;
			}
		}
		return pc;
	}
	st->nconns++;
	pc = xcalloc(1, sizeof(*pc));
	for (pc->slot = 0; st->slot_used[pc->slot]; pc->slot++)
		;	/* nconns < PGSTORE_CONNS_MAX: one is free */
	st->slot_used[pc->slot] = true;
	st->pids[pc->slot] = 0;
	pthread_mutex_unlock(&st->lock);
	if ((pc->c = conn_open(st, err)) != NULL) {
		conn_track(st, pc);
		return pc;
	}
	pthread_mutex_lock(&st->lock);
	st->slot_used[pc->slot] = false;
	free(pc);
	st->nconns--;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* Note pc's server process (after it connected or reconnected). */
static void
conn_track(struct pgstore *st, struct pgconn *pc)
{
	pthread_mutex_lock(&st->lock);
	st->pids[pc->slot] = PQbackendPID(pc->c);
	pthread_mutex_unlock(&st->lock);
}

/* Whether pid is one of the pool's server processes. */
static bool
conn_is_ours(struct pgstore *st, int pid)
{
	bool ours = false;
	int i;

	pthread_mutex_lock(&st->lock);
	for (i = 0; i < PGSTORE_CONNS_MAX && !ours; i++)
		ours = st->slot_used[i] && st->pids[i] == pid;
	pthread_mutex_unlock(&st->lock);
	return ours;
}

static void
conn_give(struct pgstore *st, struct pgconn *pc)
{
	if (pc == NULL)
		return;
	/* A transaction left open by a failed call is rolled back. */
	if (PQstatus(pc->c) == CONNECTION_OK &&
	    PQtransactionStatus(pc->c) != PQTRANS_IDLE)
		PQclear(PQexec(pc->c, "ROLLBACK"));
	pthread_mutex_lock(&st->lock);
	pc->next = st->idle;
	st->idle = pc;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/* ---- statements ---------------------------------------------------------- */

/* Run sql with a's parameters (text, NULL for none): the result (caller
 * PQclear()s; never NULL). */
static PGresult *
pg_exec(struct pgconn *pc, const char *sql, const struct pgargs *a)
{
	PGresult *r = PQexecParams(pc->c, sql, a ? a->n : 0, NULL,
	    a ? a->v : NULL, NULL, NULL, 0);

	return r != NULL ? r : PQmakeEmptyPGresult(pc->c, PGRES_FATAL_ERROR);
}

static bool
res_ok(const PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);

	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* Why r failed, one line: the primary message only (the detail may quote
 * a row's values). */
static const char *
res_why(const PGresult *r, struct pgconn *pc)
{
	const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (m != NULL)
		return m;
	if (pc == NULL)
		return "unknown error";
	return PQstatus(pc->c) != CONNECTION_OK ? "the connection to "
	    "PostgreSQL was lost" : "unknown error";
}

/* Log a failed statement (what it was for and why). */
static void
res_log(const char *what, const PGresult *r, struct pgconn *pc)
{
	log_kv(LOG_ERROR, "store_error", res_why(r, pc), "call", what, NULL);
}

/* Run one statement on a connection of its own: 0 and *out (caller
 * PQclear()s), or -1 with the failure logged (and in *err when err is
 * not NULL, caller frees). */
static int
pg_run(struct pgstore *st, const char *what, const char *sql,
    const struct pgargs *a, PGresult **out, char **err)
{
	struct pgconn *pc;
	char *why = NULL;
	PGresult *r;

	*out = NULL;
	if ((pc = conn_take(st, -1, &why)) == NULL) {
		log_kv(LOG_ERROR, "store_error", why, "call", what, NULL);
		if (err != NULL)
			*err = why;
		else
			free(why);
		return -1;
	}
	r = pg_exec(pc, sql, a);
	/* The server dropped the connection (a restart, a failover, an
	 * idle timeout): reconnect and run the statement once more.  Every
	 * write is an upsert or a delete by key, so running it twice
	 * leaves what running it once does. */
	if (!res_ok(r) && PQstatus(pc->c) != CONNECTION_OK) {
		PQclear(r);
		PQreset(pc->c);
		conn_track(st, pc);
		r = PQstatus(pc->c) == CONNECTION_OK ? pg_exec(pc, sql, a) :
		    PQmakeEmptyPGresult(pc->c, PGRES_FATAL_ERROR);
	}
	if (!res_ok(r)) {
		res_log(what, r, pc);
		if (err != NULL)
			*err = xasprintf("task store: %s", res_why(r, pc));
		PQclear(r);
		conn_give(st, pc);
		return -1;
	}
	conn_give(st, pc);
	*out = r;
	return 0;
}

static char *
col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL :
	    xstrdup(PQgetvalue(r, row, col));
}

static int64_t
col_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 :
	    strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static double
col_dbl(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 :
	    strtod(PQgetvalue(r, row, col), NULL);
}

/* ---- opening and closing ------------------------------------------------- */

/* One schema step inside the migration's transaction: 0, or -1 and the
 * failed result in *fail (caller PQclear()s). */
static int
pg_apply(struct pgconn *pc, const char *sql, int version, PGresult **fail)
{
	char ins[80], vbuf[16];
	PGresult *r = PQexec(pc->c, sql);

	if (!res_ok(r)) {
		*fail = r;
		return -1;
	}
	PQclear(r);
	snprintf(ins, sizeof(ins), "INSERT INTO instag_schema (version) "
	    "VALUES (%d)", version);
	r = PQexec(pc->c, ins);
	if (!res_ok(r)) {
		*fail = r;
		return -1;
	}
	PQclear(r);
	snprintf(vbuf, sizeof(vbuf), "%d", version);
	log_kv(LOG_INFO, "store_migrated", "task store schema updated",
	    "backend", "postgresql", "version", vbuf, NULL);
	return 0;
}

/* Create or check the schema on pc, under the migration lock.  0, or -1
 * with *err. */
static int
pg_migrate(struct pgconn *pc, char **err)
{
	PGresult *r = NULL;
	char sql[128];
	int version = 0, rc = -1;

	r = PQexec(pc->c, "BEGIN");
	if (!res_ok(r))
		goto dberr;
	PQclear(r);
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
	    (long long)PGSTORE_LOCK_MIGRATE);
	r = PQexec(pc->c, sql);
	if (!res_ok(r))
		goto dberr;
	PQclear(r);
	r = PQexec(pc->c, "CREATE TABLE IF NOT EXISTS instag_schema ("
	    " version integer NOT NULL)");
	if (!res_ok(r))
		goto dberr;
	PQclear(r);
	r = PQexec(pc->c, "SELECT max(version) FROM instag_schema");
	if (!res_ok(r))
		goto dberr;
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	r = NULL;
	if (version > PGSTORE_SCHEMA_VERSION) {
		*err = xasprintf("task store schema version %d is newer than "
		    "this agent understands (%d); refusing to touch it",
		    version, PGSTORE_SCHEMA_VERSION);
		goto cleanup;
	}
	if (version < 1 && pg_apply(pc, pg_schema_v1, 1, &r) < 0)
		goto dberr;
	if (version < 2 && pg_apply(pc, pg_schema_v2, 2, &r) < 0)
		goto dberr;
	r = PQexec(pc->c, "COMMIT");
	if (!res_ok(r))
		goto dberr;
	rc = 0;
	goto cleanup;
dberr:
	*err = xasprintf("task store: cannot create or check the schema: %s",
	    res_why(r, pc));
cleanup:
	PQclear(r);
	return rc;
}

/*
 * Read the password file into st->password: the first line, without its
 * line end.  0, or -1 with *err.
 */
static int
pg_password(struct pgstore *st, const char *path, char **err)
{
	unsigned char *buf = NULL;
	size_t len = 0;

	if (secretfile_read("store_password_file", path, true, &buf, &len,
	    err) < 0)
		return -1;
	len = strcspn((char *)buf, "\r\n");
	if (len == 0) {
		secretfile_wipe_free(buf, SECRETFILE_MAX + 1);
		*err = xasprintf("store_password_file %s: empty", path);
		return -1;
	}
	st->password = xmalloc(len + 1);
	memcpy(st->password, buf, len);
	st->password[len] = '\0';
	secretfile_wipe_free(buf, SECRETFILE_MAX + 1);
	return 0;
}

/* Refuse conninfo when it holds a password or does not parse; say where
 * it points in *where (a new string for the log: user@host:port/db). */
static int
pg_check_conninfo(const char *conninfo, char **where, char **err)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
	char *perr = NULL;
	bool has_password = false;

	opts = PQconninfoParse(conninfo, &perr);
	if (opts == NULL) {
		/* libpq's message may quote the string: not echoed. */
		PQfreemem(perr);
		*err = xstrdup("store: not a PostgreSQL URL or connection "
		    "string libpq accepts");
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0)
			has_password = true;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
	}
	if (!has_password)
		*where = xasprintf("%s%s%s:%s/%s", user ? user : "",
		    user ? "@" : "", host ? host : "(default host)",
		    port ? port : "5432", db ? db : "(default database)");
	PQconninfoFree(opts);
	if (has_password) {
		*err = xstrdup("store: the URL holds a password; put the "
		    "password in store_password_file instead");
		return -1;
	}
	return 0;
}

int
pgstore_open(const char *conninfo, const char *password_file,
    struct store **out, char **err)
{
	struct pgstore *st;
	struct pgconn *pc = NULL;
	char *where = NULL;

	*out = NULL;
	if (pg_check_conninfo(conninfo, &where, err) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	st->base.ops = &pgstore_ops;
	st->lease_ms = 30000;
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->slock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->conninfo = xstrdup(conninfo);
	if (password_file != NULL && password_file[0] != '\0' &&
	    pg_password(st, password_file, err) < 0)
		goto fail;
	if ((pc = conn_take(st, -1, err)) == NULL)
		goto fail;
	if (pg_migrate(pc, err) < 0)
		goto fail;
	conn_give(st, pc);
	log_kv(LOG_INFO, "store_opened", "task store on PostgreSQL",
	    "backend", "postgresql", "where", where, NULL);
	free(where);
	*out = &st->base;
	return 0;
fail:
	conn_give(st, pc);
	free(where);
	pgstore_ops.close(&st->base);
	return -1;
}

static void
pg_close(struct store *base)
{
	struct pgstore *st = PG(base);
	int i;

	if (st->watching) {
		__atomic_store_n(&st->watch_stop, true, __ATOMIC_RELEASE);
		pthread_join(st->watch_th, NULL);
	}
	for (i = 0; i < PGSTORE_SINGLETONS_MAX; i++)
		PQfinish(st->single[i].c);
	free(st->holder);
	pthread_mutex_destroy(&st->slock);

	while (st->idle != NULL) {
		struct pgconn *pc = st->idle;

		st->idle = pc->next;
		PQfinish(pc->c);
		free(pc);
	}
	if (st->password != NULL) {
		explicit_bzero(st->password, strlen(st->password));
		free(st->password);
	}
	free(st->conninfo);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	free(st);
}

static int
pg_ping(struct store *base)
{
	PGresult *r;

	if (pg_run(PG(base), "ping", "SELECT 1", NULL, &r, NULL) < 0)
		return -1;
	PQclear(r);
	return 0;
}

/* Why the probe failed, from the SQLSTATE of r: a new string. */
static char *
probe_reason(const PGresult *r, struct pgconn *pc, int wait_ms)
{
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	if (code == NULL)
		return xasprintf("the task store cannot commit a write: %s",
		    res_why(r, pc));
	if (strcmp(code, "57014") == 0 || strcmp(code, "55P03") == 0)
		return xasprintf("the task store is locked by another writer "
		    "(waited %d ms)", wait_ms);
	if (strcmp(code, "53100") == 0)
		return xstrdup("the disk holding the task store is full");
	if (strcmp(code, "25006") == 0)
		return xasprintf("the task store is read-only: %s",
		    res_why(r, pc));
	return xasprintf("the task store cannot commit a write: %s",
	    res_why(r, pc));
}

static int
pg_probe_write(struct store *base, int wait_ms, int64_t now_ms, char **why)
{
	struct pgstore *st = PG(base);
	struct pgconn *pc;
	struct pgargs a = { .n = 0 };
	PGresult *r = NULL;
	char sql[128];
	int ret = -1;

	*why = NULL;
	if ((pc = conn_take(st, wait_ms, why)) == NULL)
		return -1;
	r = PQexec(pc->c, "BEGIN");
	if (!res_ok(r))
		goto fail;
	PQclear(r);
	snprintf(sql, sizeof(sql), "SET LOCAL statement_timeout = %d; "
	    "SET LOCAL lock_timeout = %d", wait_ms, wait_ms);
	r = PQexec(pc->c, sql);
	if (!res_ok(r))
		goto fail;
	PQclear(r);
	args_i64(&a, now_ms);
	r = pg_exec(pc, "INSERT INTO health (id, probed_ms) VALUES "
	    "(1, $1::bigint) ON CONFLICT (id) DO UPDATE SET "
	    "probed_ms = excluded.probed_ms", &a);
	if (!res_ok(r))
		goto fail;
	PQclear(r);
	r = PQexec(pc->c, "COMMIT");
	if (!res_ok(r))
		goto fail;
	ret = 0;
	goto cleanup;
fail:
	*why = probe_reason(r, pc, wait_ms);
cleanup:
	PQclear(r);
	conn_give(st, pc);
	return ret;
}

/* ---- tasks --------------------------------------------------------------- */

static int
pg_task_put(struct store *base, const struct task *t, char **err)
{
	struct pgstore *st = PG(base);
	struct pgargs a = { .n = 0 };
	char *json[7];
	PGresult *r;
	int i, rc;

	storebe_task_json(t, json);
	args_str(&a, t->id);
	args_str(&a, t->context_id);
	args_str(&a, t->owner);
	args_str(&a, t->operation);
	args_str(&a, json[0]);
	args_str(&a, task_state_name(t->state));
	for (i = 1; i < 7; i++)
		args_str(&a, json[i]);
	args_i64(&a, t->created_ms);
	args_i64(&a, t->updated_ms);
	args_i64(&a, t->next_wake_ms);
	args_i64(&a, t->version);
	args_i64(&a, t->cancel_requested ? 1 : 0);
	args_str(&a, st->holder);
	args_i64(&a, t->lease_token);
	args_i64(&a, clock_wall_ms() + st->lease_ms);
	/* An upsert: the row keeps its push configs (no delete), and rev
	 * counts every write.  A new row is this agent's lease; an update
	 * is fenced on the lease the copy was read under, and keeps an
	 * owner's cancel request made meanwhile.  Owner, context and
	 * creation time are never changed, as on SQLite. */
	rc = pg_run(st, "task_put", "INSERT INTO tasks (" STOREBE_TASK_COLS
	    ", lease_holder, lease_token, lease_until"
	    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
	    " $13::bigint, $14::bigint, $15::bigint, $16::bigint,"
	    " $17::integer, $18, $19::bigint, $20::bigint)"
	    " ON CONFLICT (id) DO UPDATE SET"
	    " operation = excluded.operation, params = excluded.params,"
	    " state = excluded.state, progress = excluded.progress,"
	    " result = excluded.result, artifacts = excluded.artifacts,"
	    " error = excluded.error, checkpoint = excluded.checkpoint,"
	    " history = excluded.history,"
	    " updated_ms = excluded.updated_ms,"
	    " next_wake_ms = excluded.next_wake_ms,"
	    " version = excluded.version,"
	    " cancel_requested = greatest(tasks.cancel_requested,"
	    " excluded.cancel_requested),"
	    " rev = tasks.rev + 1"
	    " WHERE tasks.lease_token = excluded.lease_token", &a, &r, err);
	for (i = 0; i < 7; i++)
		free(json[i]);
	if (rc < 0) {
		char *why = *err;

		*err = xasprintf("task store: cannot save task: %s", why +
		    (strncmp(why, "task store: ", 12) == 0 ? 12 : 0));
		free(why);
		return -1;
	}
	if (strcmp(PQcmdTuples(r), "0") == 0) {
		PQclear(r);
		*err = xstrdup("task store: cannot save task: another agent "
		    "has claimed it (lease lost)");
		return STORE_LEASE_LOST;
	}
	PQclear(r);
	pthread_mutex_lock(&st->lock);
	st->rows++;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

static void
pg_put_stats(struct store *base, uint64_t *rows, uint64_t *batches)
{
	struct pgstore *st = PG(base);

	/* Each write is its own transaction. */
	pthread_mutex_lock(&st->lock);
	*rows = *batches = st->rows;
	pthread_mutex_unlock(&st->lock);
}

/* Copy row i of r (STOREBE_TASK_READ_COLS, or without rev) out. */
static void
row_copy(const PGresult *r, int i, struct storebe_row *raw)
{
	int c, ncol = PQnfields(r);

	for (c = 0; c < 12; c++)
		raw->text[c] = col_str(r, i, c);
	for (c = 0; c < 6; c++)
		raw->num[c] = 12 + c < ncol ? col_i64(r, i, 12 + c) : 0;
	raw->lease_token = ncol > 18 ? col_i64(r, i, 18) : 0;
}

static int
pg_task_get_rev(struct store *base, const char *id, struct task **out,
    int64_t *rev)
{
	struct pgargs a = { .n = 0 };
	struct storebe_row raw;
	PGresult *r;

	args_str(&a, id);
	if (pg_run(PG(base), "task_get", "SELECT " PG_TASK_READ_COLS
	    " FROM tasks WHERE id = $1", &a, &r, NULL) < 0)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 1;
	}
	row_copy(r, 0, &raw);
	PQclear(r);
	if (rev != NULL)
		*rev = raw.num[5];
	*out = storebe_row_parse(&raw);
	return 0;
}

static int
pg_task_peek(struct store *base, const char *id, char **owner,
    int64_t *rev)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;

	args_str(&a, id);
	if (pg_run(PG(base), "task_peek", "SELECT owner, rev FROM tasks "
	    "WHERE id = $1", &a, &r, NULL) < 0)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 1;
	}
	*owner = col_str(r, 0, 0);
	if (*owner == NULL)
		*owner = xstrdup("");
	*rev = col_i64(r, 0, 1);
	PQclear(r);
	return 0;
}

/*
 * The WHERE clause of a list query q into buf, its parameters appended
 * to a (numbered from a's count on).  The same filters as SQLite's
 * (sqlitest.c list_sql).
 */
static void
list_where(char *buf, size_t len, const struct store_list_query *q,
    const char *state, struct pgargs *a)
{
	size_t off;

	args_str(a, q->owner);
	off = (size_t)snprintf(buf, len, "WHERE owner = $%d", a->n);
	if (q->context_id != NULL && off < len) {
		args_str(a, q->context_id);
		off += (size_t)snprintf(buf + off, len - off,
		    " AND context_id = $%d", a->n);
	}
	if (state != NULL && off < len) {
		args_str(a, state);
		off += (size_t)snprintf(buf + off, len - off,
		    " AND state = $%d", a->n);
	}
	if (q->updated_after_ms != 0 && off < len) {
		args_i64(a, q->updated_after_ms);
		snprintf(buf + off, len - off, " AND updated_ms > $%d::bigint",
		    a->n);
	}
}

static int
pg_task_list(struct store *base, const struct store_list_query *q,
    bool full, struct task ***tasks, struct store_task_ref **refs,
    size_t *n, char **next_token, int64_t *total, char **err)
{
	struct pgstore *st = PG(base);
	struct pgargs ca = { .n = 0 }, pa = { .n = 0 };
	struct pgconn *pc = NULL;
	PGresult *r = NULL;
	int64_t tok_created = INT64_MAX, last_created = 0;
	char tok_id[UUID_STR_LEN] = "ffffffff-ffff-ffff-ffff-ffffffffffff";
	char last_id[UUID_STR_LEN] = "";
	const char *state = q->state >= 0 ?
	    task_state_name((enum task_state)q->state) : NULL;
	char where[256], sql[1024];
	int i, rows, rc = -1;

	*n = 0;
	*next_token = NULL;
	if (q->page_token != NULL && q->page_token[0] != '\0' &&
	    storebe_parse_token(q->page_token, &tok_created, tok_id) < 0) {
		*err = xstrdup("invalid pageToken");
		return -1;
	}
	if ((pc = conn_take(st, -1, err)) == NULL)
		return -1;
	/* The total and the page from one snapshot. */
	r = PQexec(pc->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (!res_ok(r))
		goto dberr;
	PQclear(r);
	/* The total: from the counts when only the owner (and the state)
	 * filter, else counted. */
	if (q->context_id == NULL && q->updated_after_ms == 0) {
		args_str(&ca, q->owner);
		if (state != NULL)
			args_str(&ca, state);
		snprintf(sql, sizeof(sql), "SELECT coalesce(sum(n), 0) FROM "
		    "task_counts WHERE owner = $1%s", state != NULL ?
		    " AND state = $2" : "");
	} else {
		list_where(where, sizeof(where), q, state, &ca);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM tasks %s",
		    where);
	}
	r = pg_exec(pc, sql, &ca);
	if (!res_ok(r) || PQntuples(r) != 1)
		goto dberr;
	*total = col_i64(r, 0, 0);
	PQclear(r);
	list_where(where, sizeof(where), q, state, &pa);
	args_i64(&pa, tok_created);
	args_str(&pa, tok_id);
	args_i64(&pa, (int64_t)q->page_size + 1);
	snprintf(sql, sizeof(sql), "SELECT %s FROM tasks %s"
	    " AND (created_ms, id) < ($%d::bigint, $%d)"
	    " ORDER BY created_ms DESC, id DESC LIMIT $%d::bigint",
	    full ? PG_TASK_READ_COLS : "id, rev, created_ms", where,
	    pa.n - 2, pa.n - 1, pa.n);
	r = pg_exec(pc, sql, &pa);
	if (!res_ok(r))
		goto dberr;
	rows = PQntuples(r);
	for (i = 0; i < rows && (size_t)i < q->page_size; i++) {
		if (full) {
			struct storebe_row raw;
			struct task *t;

			if (i == 0)
				*tasks = xcalloc(q->page_size,
				    sizeof(**tasks));
			row_copy(r, i, &raw);
			t = storebe_row_parse(&raw);
			(*tasks)[i] = t;
			last_created = t->created_ms;
			snprintf(last_id, sizeof(last_id), "%s", t->id);
		} else {
			struct store_task_ref *ref;

			if (i == 0)
				*refs = xcalloc(q->page_size, sizeof(**refs));
			ref = &(*refs)[i];
			snprintf(ref->id, sizeof(ref->id), "%s",
			    PQgetvalue(r, i, 0));
			ref->rev = col_i64(r, i, 1);
			ref->created_ms = col_i64(r, i, 2);
			last_created = ref->created_ms;
			snprintf(last_id, sizeof(last_id), "%s", ref->id);
		}
		(*n)++;
	}
	/* A row after the page's last: there is a next page. */
	*next_token = (size_t)rows > q->page_size ? xasprintf("%" PRId64
	    ".%s", last_created, last_id) : xstrdup("");
	PQclear(r);
	r = PQexec(pc->c, "COMMIT");
	rc = 0;
	goto cleanup;
dberr:
	res_log("task_list", r, pc);
	*err = xasprintf("task store: %s", res_why(r, pc));
	if (full) {
		task_list_free(*tasks, *n);
		*tasks = NULL;
	} else {
		free(*refs);
		*refs = NULL;
	}
	*n = 0;
cleanup:
	PQclear(r);
	conn_give(st, pc);
	return rc;
}

static int
pg_task_active(struct store *base, struct task ***tasks, size_t *n)
{
	PGresult *r;
	int i, rows;

	if (pg_run(PG(base), "task_active", "SELECT " PG_TASK_READ_COLS
	    " FROM tasks WHERE state IN " PG_ACTIVE " ORDER BY created_ms",
	    NULL, &r, NULL) < 0)
		return -1;
	rows = PQntuples(r);
	if (rows > 0)
		*tasks = xcalloc((size_t)rows, sizeof(**tasks));
	for (i = 0; i < rows; i++) {
		struct storebe_row raw;

		row_copy(r, i, &raw);
		(*tasks)[i] = storebe_row_parse(&raw);
	}
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

/* ---- push configs -------------------------------------------------------- */

static int
pg_push_put(struct store *base, const struct push_config *pc, char **err)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;

	args_str(&a, pc->task_id);
	args_str(&a, pc->id);
	args_str(&a, pc->url);
	args_str(&a, pc->token);
	args_str(&a, pc->auth_scheme);
	args_str(&a, pc->auth_credentials);
	args_i64(&a, pc->created_ms);
	args_i64(&a, pc->dialect);
	if (pg_run(PG(base), "push_put", "INSERT INTO push_configs ("
	    STOREBE_PUSH_COLS ") VALUES ($1, $2, $3, $4, $5, $6,"
	    " $7::bigint, $8::integer) ON CONFLICT (task_id, id) DO UPDATE"
	    " SET url = excluded.url, token = excluded.token,"
	    " auth_scheme = excluded.auth_scheme,"
	    " auth_credentials = excluded.auth_credentials,"
	    " created_ms = excluded.created_ms, dialect = excluded.dialect",
	    &a, &r, err) < 0)
		return -1;
	PQclear(r);
	return 0;
}

static struct push_config *
row_to_push(const PGresult *r, int i)
{
	struct push_config *pc = xcalloc(1, sizeof(*pc));

	pc->task_id = col_str(r, i, 0);
	pc->id = col_str(r, i, 1);
	pc->url = col_str(r, i, 2);
	pc->token = col_str(r, i, 3);
	pc->auth_scheme = col_str(r, i, 4);
	pc->auth_credentials = col_str(r, i, 5);
	pc->created_ms = col_i64(r, i, 6);
	pc->dialect = (int)col_i64(r, i, 7);
	return pc;
}

static int
pg_push_get(struct store *base, const char *task_id, const char *id,
    struct push_config **out)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int rc;

	args_str(&a, task_id);
	args_str(&a, id);
	if (pg_run(PG(base), "push_get", "SELECT " STOREBE_PUSH_COLS
	    " FROM push_configs WHERE task_id = $1 AND id = $2", &a, &r,
	    NULL) < 0)
		return -1;
	rc = PQntuples(r) > 0 ? 0 : 1;
	if (rc == 0)
		*out = row_to_push(r, 0);
	PQclear(r);
	return rc;
}

static int
pg_push_list(struct store *base, const char *task_id,
    struct push_config ***out, size_t *n)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int i, rows;

	args_str(&a, task_id);
	if (pg_run(PG(base), "push_list", "SELECT " STOREBE_PUSH_COLS
	    " FROM push_configs WHERE task_id = $1 ORDER BY created_ms, id",
	    &a, &r, NULL) < 0)
		return -1;
	rows = PQntuples(r);
	if (rows > 0)
		*out = xcalloc((size_t)rows, sizeof(**out));
	for (i = 0; i < rows; i++)
		(*out)[i] = row_to_push(r, i);
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

static int
pg_push_delete(struct store *base, const char *task_id, const char *id)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int rc;

	args_str(&a, task_id);
	args_str(&a, id);
	if (pg_run(PG(base), "push_delete", "DELETE FROM push_configs "
	    "WHERE task_id = $1 AND id = $2", &a, &r, NULL) < 0)
		return -1;
	rc = strcmp(PQcmdTuples(r), "0") != 0 ? 0 : 1;
	PQclear(r);
	return rc;
}

static int
pg_push_task_ids(struct store *base, char ***ids, size_t *n)
{
	PGresult *r;
	int i, rows;

	if (pg_run(PG(base), "push_task_ids", "SELECT DISTINCT p.task_id "
	    "FROM push_configs p JOIN tasks t ON t.id = p.task_id "
	    "WHERE t.state NOT IN ('completed', 'canceled', 'failed', "
	    "'rejected')", NULL, &r, NULL) < 0)
		return -1;
	rows = PQntuples(r);
	if (rows > 0)
		*ids = xcalloc((size_t)rows, sizeof(**ids));
	for (i = 0; i < rows; i++)
		(*ids)[i] = xstrdup(PQgetvalue(r, i, 0));
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

/* ---- the pod registry ---------------------------------------------------- */

/* The upsert of a whole pod row, with pod_args's parameters. */
#define PG_POD_PUT_SQL \
    "INSERT INTO pods (" STOREBE_POD_COLS \
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer," \
    " $9::double precision, $10, $11::integer, $12, $13::bigint," \
    " $14::double precision, $15::bigint, $16::double precision," \
    " $17::bigint, $18, $19::bigint, $20::bigint, $21::bigint," \
    " $22::bigint, $23::integer, $24::integer, $25::bigint," \
    " $26::double precision, $27) ON CONFLICT (pod_id) DO UPDATE SET" \
    " name = excluded.name, task_id = excluded.task_id," \
    " owner = excluded.owner, state = excluded.state," \
    " gpu_type_id = excluded.gpu_type_id, cloud = excluded.cloud," \
    " gpu_count = excluded.gpu_count," \
    " cost_per_hr = excluded.cost_per_hr," \
    " public_ip = excluded.public_ip, ssh_port = excluded.ssh_port," \
    " host_fp = excluded.host_fp," \
    " max_runtime_ms = excluded.max_runtime_ms," \
    " max_cost_usd = excluded.max_cost_usd," \
    " running_ms = excluded.running_ms, cost_usd = excluded.cost_usd," \
    " last_check_ms = excluded.last_check_ms," \
    " reason = excluded.reason, created_ms = excluded.created_ms," \
    " updated_ms = excluded.updated_ms, idle_ms = excluded.idle_ms," \
    " last_used_ms = excluded.last_used_ms," \
    " disk_gb = excluded.disk_gb, volume_gb = excluded.volume_gb," \
    " stopped_ms = excluded.stopped_ms," \
    " storage_usd = excluded.storage_usd, label = excluded.label"

static void
pod_args(struct pgargs *a, const struct pod_rec *p)
{
	args_str(a, p->pod_id);
	args_str(a, p->name);
	args_str(a, p->task_id);
	args_str(a, p->owner);
	args_str(a, p->state);
	args_str(a, p->gpu_type_id);
	args_str(a, p->cloud);
	args_i64(a, p->gpu_count);
	args_dbl(a, p->cost_per_hr);
	args_str(a, p->public_ip);
	args_i64(a, p->ssh_port);
	args_str(a, p->host_fp);
	args_i64(a, p->max_runtime_ms);
	args_dbl(a, p->max_cost_usd);
	args_i64(a, p->running_ms);
	args_dbl(a, p->cost_usd);
	args_i64(a, p->last_check_ms);
	args_str(a, p->reason);
	args_i64(a, p->created_ms);
	args_i64(a, p->updated_ms);
	args_i64(a, p->idle_ms);
	args_i64(a, p->last_used_ms);
	args_i64(a, p->disk_gb);
	args_i64(a, p->volume_gb);
	args_i64(a, p->stopped_ms);
	args_dbl(a, p->storage_usd);
	args_str(a, p->label);
}

static int
pg_pod_put(struct store *base, const struct pod_rec *p, char **err)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;

	pod_args(&a, p);
	if (pg_run(PG(base), "pod_put", PG_POD_PUT_SQL, &a, &r, err) < 0)
		return -1;
	PQclear(r);
	return 0;
}

static struct pod_rec *row_to_pod(const PGresult *r, int i);

/* The row is locked (FOR UPDATE) from its read to the commit of its
 * write, so two agents' updates of one pod run one after the other. */
static int
pg_pod_update(struct store *base, const char *pod_id, store_pod_fn fn,
    void *arg, char **err)
{
	struct pgstore *st = PG(base);
	struct pgargs a = { .n = 0 };
	struct pgconn *pc;
	struct pod_rec *p = NULL;
	PGresult *r = NULL;
	int rc = -1;

	if ((pc = conn_take(st, -1, err)) == NULL)
		return -1;
	r = PQexec(pc->c, "BEGIN");
	if (!res_ok(r))
		goto dberr;
	PQclear(r);
	args_str(&a, pod_id);
	r = pg_exec(pc, "SELECT " STOREBE_POD_COLS " FROM pods WHERE"
	    " pod_id = $1 FOR UPDATE", &a);
	if (!res_ok(r))
		goto dberr;
	if (PQntuples(r) == 0) {
		rc = 1;
		goto cleanup;
	}
	p = row_to_pod(r, 0);
	PQclear(r);
	fn(p, arg);
	a.n = 0;
	pod_args(&a, p);
	r = pg_exec(pc, PG_POD_PUT_SQL, &a);
	if (!res_ok(r))
		goto dberr;
	PQclear(r);
	r = PQexec(pc->c, "COMMIT");
	if (!res_ok(r))
		goto dberr;
	rc = 0;
	goto cleanup;
dberr:
	res_log("pod_update", r, pc);
	*err = xasprintf("task store: %s", res_why(r, pc));
cleanup:
	PQclear(r);
	storebe_pod_free(p);
	conn_give(st, pc);	/* rolls back what is still open */
	return rc;
}

static struct pod_rec *
row_to_pod(const PGresult *r, int i)
{
	struct pod_rec *p = xcalloc(1, sizeof(*p));

	p->pod_id = col_str(r, i, 0);
	p->name = col_str(r, i, 1);
	p->task_id = col_str(r, i, 2);
	p->owner = col_str(r, i, 3);
	p->state = col_str(r, i, 4);
	p->gpu_type_id = col_str(r, i, 5);
	p->cloud = col_str(r, i, 6);
	p->gpu_count = (int)col_i64(r, i, 7);
	p->cost_per_hr = col_dbl(r, i, 8);
	p->public_ip = col_str(r, i, 9);
	p->ssh_port = (int)col_i64(r, i, 10);
	p->host_fp = col_str(r, i, 11);
	p->max_runtime_ms = col_i64(r, i, 12);
	p->max_cost_usd = col_dbl(r, i, 13);
	p->running_ms = col_i64(r, i, 14);
	p->cost_usd = col_dbl(r, i, 15);
	p->last_check_ms = col_i64(r, i, 16);
	p->reason = col_str(r, i, 17);
	p->created_ms = col_i64(r, i, 18);
	p->updated_ms = col_i64(r, i, 19);
	p->idle_ms = col_i64(r, i, 20);
	p->last_used_ms = col_i64(r, i, 21);
	p->disk_gb = (int)col_i64(r, i, 22);
	p->volume_gb = (int)col_i64(r, i, 23);
	p->stopped_ms = col_i64(r, i, 24);
	p->storage_usd = col_dbl(r, i, 25);
	p->label = col_str(r, i, 26);
	return p;
}

static int
pg_pod_get(struct store *base, bool by_task, const char *key,
    struct pod_rec **out)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int rc;

	args_str(&a, key);
	if (pg_run(PG(base), "pod_get", by_task ?
	    "SELECT " STOREBE_POD_COLS " FROM pods WHERE task_id = $1"
	    " ORDER BY created_ms LIMIT 1" :
	    "SELECT " STOREBE_POD_COLS " FROM pods WHERE pod_id = $1",
	    &a, &r, NULL) < 0)
		return -1;
	rc = PQntuples(r) > 0 ? 0 : 1;
	if (rc == 0)
		*out = row_to_pod(r, 0);
	PQclear(r);
	return rc;
}

static int
pg_pod_list(struct store *base, const char *owner, bool with_terminated,
    struct pod_rec ***out, size_t *n)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int i, rows;

	args_str(&a, owner);
	args_i64(&a, with_terminated ? 1 : 0);
	if (pg_run(PG(base), "pod_list", "SELECT " STOREBE_POD_COLS
	    " FROM pods WHERE ($1::text IS NULL OR owner = $1::text)"
	    " AND ($2::integer = 1 OR state <> 'terminated')"
	    " ORDER BY created_ms, pod_id", &a, &r, NULL) < 0)
		return -1;
	rows = PQntuples(r);
	if (rows > 0)
		*out = xcalloc((size_t)rows, sizeof(**out));
	for (i = 0; i < rows; i++)
		(*out)[i] = row_to_pod(r, i);
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

/* ---- leases ------------------------------------------------------------ */

static void
pg_lease_config(struct store *base, const char *holder, int64_t lease_ms)
{
	struct pgstore *st = PG(base);

	free(st->holder);
	st->holder = xstrdup(holder);
	st->lease_ms = lease_ms;
}

/* The tasks of r (PG_TASK_READ_COLS) as a new array of new tasks. */
static void
rows_to_tasks(const PGresult *r, struct task ***tasks, size_t *n)
{
	int i, rows = PQntuples(r);

	if (rows > 0)
		*tasks = xcalloc((size_t)rows, sizeof(**tasks));
	for (i = 0; i < rows; i++) {
		struct storebe_row raw;

		row_copy(r, i, &raw);
		(*tasks)[i] = storebe_row_parse(&raw);
	}
	*n = (size_t)rows;
}

static int
pg_task_claim(struct store *base, int64_t now_ms, size_t max,
    struct task ***tasks, size_t *n)
{
	struct pgstore *st = PG(base);
	struct pgargs a = { .n = 0 };
	PGresult *r;

	args_str(&a, st->holder);
	args_i64(&a, now_ms);
	args_i64(&a, now_ms + st->lease_ms);
	args_i64(&a, (int64_t)max);
	/* SKIP LOCKED: agents claiming at once take different tasks, and
	 * none waits for another's claim. */
	if (pg_run(st, "task_claim", "UPDATE tasks SET lease_holder = $1,"
	    " lease_token = lease_token + 1, lease_until = $3::bigint"
	    " WHERE id IN (SELECT id FROM tasks WHERE state IN " PG_ACTIVE
	    " AND lease_until < $2::bigint ORDER BY lease_until, created_ms"
	    " LIMIT $4::bigint FOR UPDATE SKIP LOCKED)"
	    " RETURNING " PG_TASK_READ_COLS, &a, &r, NULL) < 0)
		return -1;
	rows_to_tasks(r, tasks, n);
	PQclear(r);
	/* RETURNING keeps no order: oldest first, as resume expects. */
	for (size_t i = 1; i < *n; i++) {
		struct task *t = (*tasks)[i];
		size_t j = i;

		for (; j > 0 && (*tasks)[j - 1]->created_ms > t->created_ms;
		    j--)
			(*tasks)[j] = (*tasks)[j - 1];
		(*tasks)[j] = t;
	}
	return 0;
}

static int
pg_lease_renew(struct store *base, int64_t now_ms, struct store_held **held,
    size_t *n)
{
	struct pgstore *st = PG(base);
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int i, rows;

	args_str(&a, st->holder);
	args_i64(&a, now_ms + st->lease_ms);
	if (pg_run(st, "lease_renew", "UPDATE tasks SET lease_until ="
	    " $2::bigint WHERE lease_holder = $1 AND state IN " PG_ACTIVE
	    " RETURNING id, lease_token, cancel_requested", &a, &r,
	    NULL) < 0)
		return -1;
	rows = PQntuples(r);
	if (rows > 0)
		*held = xcalloc((size_t)rows, sizeof(**held));
	for (i = 0; i < rows; i++) {
		snprintf((*held)[i].id, sizeof((*held)[i].id), "%s",
		    PQgetvalue(r, i, 0));
		(*held)[i].token = col_i64(r, i, 1);
		(*held)[i].cancel_requested = col_i64(r, i, 2) != 0;
	}
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

static int
pg_lease_release(struct store *base)
{
	struct pgstore *st = PG(base);
	struct pgargs a = { .n = 0 };
	PGresult *r;

	if (st->holder == NULL)
		return 0;
	args_str(&a, st->holder);
	if (pg_run(st, "lease_release", "UPDATE tasks SET lease_until = 0"
	    " WHERE lease_holder = $1 AND state IN " PG_ACTIVE, &a, &r,
	    NULL) < 0)
		return -1;
	PQclear(r);
	return 0;
}

static int
pg_task_request_cancel(struct store *base, const char *id)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int rc;

	args_str(&a, id);
	if (pg_run(PG(base), "task_request_cancel", "UPDATE tasks SET"
	    " cancel_requested = 1, rev = rev + 1 WHERE id = $1 AND state IN "
	    PG_ACTIVE, &a, &r, NULL) < 0)
		return -1;
	rc = strcmp(PQcmdTuples(r), "0") != 0 ? 0 : 1;
	PQclear(r);
	return rc;
}

static int
pg_task_take(struct store *base, const char *id, struct task **out)
{
	struct pgstore *st = PG(base);
	struct pgargs a = { .n = 0 };
	struct task **tasks = NULL;
	PGresult *r;
	size_t n = 0;

	args_str(&a, id);
	args_str(&a, st->holder);
	args_i64(&a, clock_wall_ms() + st->lease_ms);
	if (pg_run(st, "task_take", "UPDATE tasks SET lease_holder = $2,"
	    " lease_token = lease_token + 1, lease_until = $3::bigint"
	    " WHERE id = $1 AND state = 'input-required'"
	    " RETURNING " PG_TASK_READ_COLS, &a, &r, NULL) < 0)
		return -1;
	rows_to_tasks(r, &tasks, &n);
	PQclear(r);
	if (n == 0) {
		free(tasks);
		return 1;
	}
	*out = tasks[0];
	free(tasks);
	return 0;
}

static int
pg_task_post(struct store *base, const char *id, const char *msg)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int rc;

	args_str(&a, id);
	args_str(&a, msg);
	if (pg_run(PG(base), "task_post", "INSERT INTO task_inbox (task_id,"
	    " msg) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM tasks WHERE"
	    " id = $1 AND state IN " PG_ACTIVE ")", &a, &r, NULL) < 0)
		return -1;
	rc = strcmp(PQcmdTuples(r), "0") != 0 ? 0 : 1;
	PQclear(r);
	return rc;
}

static int
pg_inbox_take(struct store *base, const char *id, char ***msgs, size_t *n,
    int64_t *last)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;
	int i, rows;

	args_str(&a, id);
	if (pg_run(PG(base), "inbox_take", "SELECT seq, msg FROM task_inbox"
	    " WHERE task_id = $1 ORDER BY seq", &a, &r, NULL) < 0)
		return -1;
	rows = PQntuples(r);
	if (rows > 0)
		*msgs = xcalloc((size_t)rows, sizeof(**msgs));
	for (i = 0; i < rows; i++) {
		*last = col_i64(r, i, 0);
		(*msgs)[i] = xstrdup(PQgetvalue(r, i, 1));
	}
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

static int
pg_inbox_done(struct store *base, const char *id, int64_t last)
{
	struct pgargs a = { .n = 0 };
	PGresult *r;

	args_str(&a, id);
	args_i64(&a, last);
	if (pg_run(PG(base), "inbox_done", "DELETE FROM task_inbox WHERE"
	    " task_id = $1 AND seq <= $2::bigint", &a, &r, NULL) < 0)
		return -1;
	PQclear(r);
	return 0;
}

/* ---- the watcher --------------------------------------------------------- */

/* Wait up to ms for c's socket to be readable; false when it is not. */
static bool
watch_wait(PGconn *c, int ms)
{
	struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };

	return pfd.fd >= 0 && poll(&pfd, 1, ms) > 0;
}

/* Hand one notification's "id token cancel" to the watcher's function. */
static void
watch_deliver(struct pgstore *st, const PGnotify *nf)
{
	char id[UUID_STR_LEN];
	long long token = 0, version = 0;
	int cancel = 0, inbox = 0;

	if (conn_is_ours(st, nf->be_pid))
		return;		/* this agent's write: its listener knows */
	if (sscanf(nf->extra, "%36s %lld %d %d %lld", id, &token, &cancel,
	    &inbox, &version) != 5)
		return;
	st->watch_fn(id, (int64_t)token, cancel != 0, inbox != 0,
	    (int64_t)version, st->watch_arg);
}

/* A new session that listens on instag_task, or NULL with *err. */
static PGconn *
watch_connect(struct pgstore *st, char **err)
{
	PGconn *c = conn_open(st, err);
	PGresult *r;

	if (c == NULL)
		return NULL;
	r = PQexec(c, "LISTEN instag_task");
	if (!res_ok(r)) {
		*err = xasprintf("task store: cannot listen: %s",
		    res_why(r, NULL));
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

static void *
watch_main(void *arg)
{
	struct pgstore *st = arg;
	PGconn *c = st->watch_conn;
	bool warned = false;

	while (!__atomic_load_n(&st->watch_stop, __ATOMIC_ACQUIRE)) {
		PGnotify *nf;

		if (c == NULL || PQstatus(c) != CONNECTION_OK) {
			char *err = NULL;

			PQfinish(c);
			c = watch_connect(st, &err);
			if (c == NULL) {
				if (!warned)
					log_kv(LOG_WARN, "store_watch", err ?
					    err : "cannot listen", NULL);
				warned = true;
				free(err);
				sleep(1);
				continue;
			}
			free(err);
			warned = false;
		}
		/* A bounded wait, so that stop is seen within a second. */
		if (!watch_wait(c, 1000))
			continue;
		if (!PQconsumeInput(c))
			continue;	/* broken: reconnect above */
		while ((nf = PQnotifies(c)) != NULL) {
			watch_deliver(st, nf);
			PQfreemem(nf);
		}
	}
	PQfinish(c);
	return NULL;
}

static int
pg_watch(struct store *base, store_change_fn fn, void *arg)
{
	struct pgstore *st = PG(base);

	if (st->watching)
		return -1;
	char *err = NULL;

	st->watch_fn = fn;
	st->watch_arg = arg;
	st->watch_stop = false;
	/* Listening before this returns: no change after it is missed. */
	if ((st->watch_conn = watch_connect(st, &err)) == NULL) {
		log_kv(LOG_WARN, "store_watch", err, NULL);
		free(err);
		return -1;
	}
	if (pthread_create(&st->watch_th, NULL, watch_main, st) != 0) {
		PQfinish(st->watch_conn);
		st->watch_conn = NULL;
		return -1;
	}
	st->watching = true;
	return 0;
}

/* ---- singletons ---------------------------------------------------------- */

/*
 * A singleton is a session-level advisory lock, held on a session of its
 * own for as long as this process lives: when it dies (or its session
 * does), PostgreSQL releases the lock and the next agent to ask takes it.
 * Each call checks that the session still answers; a lost session is
 * a lost singleton until a new one wins the lock again.
 */
static bool
pg_singleton(struct store *base, const char *name)
{
	struct pgstore *st = PG(base);
	struct singleton *s = NULL;
	char *err = NULL;
	PGresult *r;
	bool held = false;
	int i;

	pthread_mutex_lock(&st->slock);
	for (i = 0; i < PGSTORE_SINGLETONS_MAX && s == NULL; i++)
		if (strcmp(st->single[i].name, name) == 0 ||
		    st->single[i].name[0] == '\0')
			s = &st->single[i];
	if (s == NULL)
		goto cleanup;	/* more names than slots: a bug */
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (s->c != NULL) {
		/* Held: still, while the session answers. */
		r = PQexec(s->c, "SELECT 1");
		held = res_ok(r);
		PQclear(r);
		if (held)
			goto cleanup;
		PQfinish(s->c);
		s->c = NULL;
	}
	if ((s->c = conn_open(st, &err)) == NULL) {
		free(err);
		goto cleanup;
	}
	{
		const char *v[1] = { name };

		r = PQexecParams(s->c, "SELECT pg_try_advisory_lock("
		    "hashtext('instag-agent singleton ' || $1))", 1, NULL, v,
		    NULL, NULL, 0);
	}
	held = res_ok(r) && PQntuples(r) == 1 &&
	    strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!held) {
		PQfinish(s->c);
		s->c = NULL;
	} else
		log_kv(LOG_INFO, "singleton_taken", "this agent runs the "
		    "singleton now", "name", name, NULL);
cleanup:
	pthread_mutex_unlock(&st->slock);
	return held;
}

static const struct store_ops pgstore_ops = {
	.name = "postgresql",
	.close = pg_close,
	.ping = pg_ping,
	.probe_write = pg_probe_write,
	.task_put = pg_task_put,
	.put_stats = pg_put_stats,
	.task_get_rev = pg_task_get_rev,
	.task_peek = pg_task_peek,
	.task_list = pg_task_list,
	.task_active = pg_task_active,
	.push_put = pg_push_put,
	.push_get = pg_push_get,
	.push_list = pg_push_list,
	.push_delete = pg_push_delete,
	.push_task_ids = pg_push_task_ids,
	.pod_put = pg_pod_put,
	.pod_get = pg_pod_get,
	.pod_list = pg_pod_list,
	.pod_update = pg_pod_update,
	.lease_config = pg_lease_config,
	.task_claim = pg_task_claim,
	.lease_renew = pg_lease_renew,
	.lease_release = pg_lease_release,
	.task_request_cancel = pg_task_request_cancel,
	.task_take = pg_task_take,
	.task_post = pg_task_post,
	.inbox_take = pg_inbox_take,
	.inbox_done = pg_inbox_done,
	.watch = pg_watch,
	.singleton = pg_singleton,
};

#endif /* HAVE_LIBPQ */
