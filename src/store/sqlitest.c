/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "store/sqlitest.h"
#include "store/storebe.h"
#include "lib/xalloc.h"

/* The filters of a task list that change its SQL: one bit each. */
#define LIST_CONTEXT	1u
#define LIST_STATE	2u
#define LIST_UPDATED	4u
#define LIST_VARIANTS	8

/*
 * A connection that serves task reads, with its statements (prepared on
 * first use, kept until the connection closes).  The store's read pool
 * holds read-only ones; the writer's own (st->wr) serves reads only when
 * the store has no pool (an in-memory database) or a reader cannot open.
 */
struct reader {
	sqlite3 *db;
	sqlite3_stmt *get, *peek;
	sqlite3_stmt *page[2][LIST_VARIANTS];	/* [full rows][filters] */
	sqlite3_stmt *count[LIST_VARIANTS];
	struct reader *next;			/* in the free list */
};

struct sqlitest {
	struct store base;	/* first: the back end's interface */
	sqlite3 *db;
	pthread_mutex_t lock;
	sqlite3_stmt *put, *ping;
	struct reader wr;	/* reads on the writer's connection (db) */
	char *path;		/* NULL: no read pool */
	pthread_mutex_t rlock;	/* the pool: held only to take or give */
	pthread_cond_t rfree_cond;
	struct reader *rfree;	/* idle readers */
	int nreaders;		/* open readers, idle or taken */
	/* The checkpointer (see ckpt_main): its own connection and thread;
	 * ckpt_db NULL = SQLite's automatic checkpoints on the writer. */
	sqlite3 *ckpt_db;
	/* Group commit of task writes (see store_task_put). */
	sqlite3_stmt *begin, *commit, *rollback;
	pthread_mutex_t gc_lock;
	pthread_cond_t gc_cond;
	struct put_req *gc_head, *gc_tail;	/* waiting for a leader */
	bool gc_busy;		/* a leader is writing a batch */
	uint64_t gc_rows, gc_batches;	/* under gc_lock */
	pthread_t ckpt;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	bool ckpt_due, ckpt_stop;
};

static const struct store_ops sqlitest_ops;
static void sq_close(struct store *base);

/* The back end's struct of a store it opened. */
#define SQ(base) ((struct sqlitest *)(void *)(base))

static const char *const schema_v1 =
    "CREATE TABLE tasks ("
    " id TEXT PRIMARY KEY,"
    " context_id TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " operation TEXT NOT NULL,"
    " params TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " progress TEXT,"
    " result TEXT,"
    " artifacts TEXT NOT NULL,"
    " error TEXT,"
    " checkpoint TEXT NOT NULL,"
    " history TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " next_wake_ms INTEGER NOT NULL DEFAULT 0,"
    " version INTEGER NOT NULL,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tasks_owner_created ON tasks(owner, created_ms, id);"
    "CREATE INDEX tasks_state ON tasks(state);"
    "CREATE TABLE push_configs ("
    " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
    " id TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " token TEXT,"
    " auth_scheme TEXT,"
    " auth_credentials TEXT,"
    " dialect INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (task_id, id));"
    "PRAGMA user_version = 1;";

static const char *const schema_v2 =
    "CREATE TABLE pods ("
    " pod_id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " task_id TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " gpu_type_id TEXT,"
    " cloud TEXT,"
    " gpu_count INTEGER NOT NULL DEFAULT 1,"
    " cost_per_hr REAL NOT NULL DEFAULT 0,"
    " public_ip TEXT,"
    " ssh_port INTEGER NOT NULL DEFAULT 0,"
    " host_fp TEXT,"
    " max_runtime_ms INTEGER NOT NULL,"
    " max_cost_usd REAL NOT NULL,"
    " running_ms INTEGER NOT NULL DEFAULT 0,"
    " cost_usd REAL NOT NULL DEFAULT 0,"
    " last_check_ms INTEGER NOT NULL DEFAULT 0,"
    " reason TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE INDEX pods_owner ON pods(owner, created_ms);"
    "CREATE INDEX pods_task ON pods(task_id);"
    "PRAGMA user_version = 2;";

/* One row the readiness probe rewrites to prove a write commits. */
static const char *const schema_v3 =
    "CREATE TABLE health ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " probed_ms INTEGER NOT NULL);"
    "PRAGMA user_version = 3;";

/* The idle limit of a pod and when a task last used it (0: unknown; the
 * cost guard counts from created_ms then). */
static const char *const schema_v4 =
    "ALTER TABLE pods ADD COLUMN idle_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pods ADD COLUMN last_used_ms INTEGER NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 4;";

/* Stopped-pod storage: the pod's container disk and volume sizes (GB),
 * how long it was stopped, and the storage cost accrued (docs/internals.md,
 * "What a pod costs").  Rows of older pods read 0: no storage known. */
static const char *const schema_v5 =
    "ALTER TABLE pods ADD COLUMN disk_gb INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pods ADD COLUMN volume_gb INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pods ADD COLUMN stopped_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE pods ADD COLUMN storage_usd REAL NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 5;";

/* The owner's label of a pod (runpod.provision_pod's pod_name); NULL for
 * older rows and pods provisioned without one. */
static const char *const schema_v6 =
    "ALTER TABLE pods ADD COLUMN label TEXT;"
    "PRAGMA user_version = 6;";

/*
 * The read path (schema 7; docs/internals.md, "Reading tasks"):
 *  - rev, the row's write counter: every store_task_put adds one, in SQL,
 *    whatever the task's own version says (a step may change artifacts
 *    without bumping it).  Rendered tasks are cached under (id, rev).
 *  - task_counts, the number of tasks per owner and state, kept by
 *    triggers in the writing transaction, so a list's unfiltered total
 *    costs a few rows, not a count of the owner's tasks.
 *  - indexes that hold what a list page and a peek read (id, rev), so
 *    neither reads a task's row, and keyset paging on (created_ms, id).
 * The triggers add a missing count row with INSERT ... WHERE NOT EXISTS,
 * not INSERT OR IGNORE: under the upsert of store_task_put the outer
 * statement's conflict policy would apply, and the IGNORE would fail.
 */
static const char *const schema_v7 =
    "ALTER TABLE tasks ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE task_counts ("
    " owner TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " n INTEGER NOT NULL,"
    " PRIMARY KEY (owner, state)) WITHOUT ROWID;"
    "INSERT INTO task_counts (owner, state, n)"
    " SELECT owner, state, count(*) FROM tasks GROUP BY owner, state;"
    "CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN"
    " INSERT INTO task_counts SELECT NEW.owner, NEW.state, 0 WHERE NOT"
    "  EXISTS (SELECT 1 FROM task_counts"
    "  WHERE owner = NEW.owner AND state = NEW.state);"
    " UPDATE task_counts SET n = n + 1"
    "  WHERE owner = NEW.owner AND state = NEW.state;"
    " END;"
    "CREATE TRIGGER tasks_count_update AFTER UPDATE OF owner, state ON tasks"
    " WHEN OLD.owner IS NOT NEW.owner OR OLD.state IS NOT NEW.state BEGIN"
    " UPDATE task_counts SET n = n - 1"
    "  WHERE owner = OLD.owner AND state = OLD.state;"
    " INSERT INTO task_counts SELECT NEW.owner, NEW.state, 0 WHERE NOT"
    "  EXISTS (SELECT 1 FROM task_counts"
    "  WHERE owner = NEW.owner AND state = NEW.state);"
    " UPDATE task_counts SET n = n + 1"
    "  WHERE owner = NEW.owner AND state = NEW.state;"
    " END;"
    "CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN"
    " UPDATE task_counts SET n = n - 1"
    "  WHERE owner = OLD.owner AND state = OLD.state;"
    " END;"
    "DROP INDEX tasks_owner_created;"
    "CREATE INDEX tasks_owner_page ON tasks(owner, created_ms, id, rev);"
    "CREATE INDEX tasks_owner_context ON tasks(owner, context_id,"
    " created_ms, id, rev);"
    "CREATE INDEX tasks_owner_state ON tasks(owner, state, created_ms, id,"
    " rev);"
    "CREATE INDEX tasks_owner_updated ON tasks(owner, updated_ms);"
    "CREATE INDEX tasks_id_rev ON tasks(id, owner, rev);"
    "PRAGMA user_version = 7;";

/*
 * Fewer pages per write (schema 8; docs/internals.md, "Reading tasks").
 * A write changes rev, updated_ms and often the state, and SQLite
 * rewrites every index holding a column the UPDATE sets, one page or
 * more each.  So the list indexes no longer hold rev (a list reads it
 * from the row, one lookup per task of the page), the peek reads the row
 * by its primary key instead of a copy of (id, owner, rev), and the
 * upsert no longer sets the columns a task never changes (owner,
 * context_id, created_ms).  A write of a 1 KB task now dirties 4-7
 * pages instead of 7-10 (docs/internals.md has the measurements).
 */
static const char *const schema_v8 =
    "DROP INDEX tasks_owner_page;"
    "DROP INDEX tasks_owner_context;"
    "DROP INDEX tasks_owner_state;"
    "DROP INDEX tasks_id_rev;"
    "CREATE INDEX tasks_owner_page ON tasks(owner, created_ms, id);"
    "CREATE INDEX tasks_owner_context ON tasks(owner, context_id,"
    " created_ms, id);"
    "CREATE INDEX tasks_owner_state ON tasks(owner, state, created_ms, id);"
    "PRAGMA user_version = 8;";

/* How many read-only connections the read pool opens at most; a read
 * waits for an idle one beyond that (never for the writer). */
#define STORE_READERS_MAX 8

/* How long a store call waits for SQLite's write lock (another process's
 * transaction) before giving up with SQLITE_BUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* The checkpointer copies the WAL back into the database when a commit
 * leaves at least this many pages in it (SQLite's own automatic
 * checkpoint threshold), and once a second while there is anything. */
#define STORE_CKPT_PAGES 1000
#define STORE_CKPT_TICK_S 1

#define POD_COLS STOREBE_POD_COLS

#define TASK_COLS STOREBE_TASK_COLS
#define TASK_READ_COLS STOREBE_TASK_READ_COLS

/* ---- checkpoints --------------------------------------------------------- */

/*
 * WAL checkpoints run on their own thread and connection, not inside the
 * commit that crosses SQLite's threshold: with automatic checkpoints the
 * unlucky writer (a request thread creating a task, an executor thread
 * saving a step) copies the WAL into the database and syncs it while it
 * holds the store's lock; bench/request-path's blocking send spent 9% of
 * the agent's CPU there and in the fsync that follows.  PASSIVE never
 * waits for readers or writers, so neither waits for it.  Durability is
 * unchanged: a commit is in the WAL before it is reported, as before.
 */
static int
ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct sqlitest *st = arg;

	(void)db;
	(void)name;
	if (pages >= STORE_CKPT_PAGES) {
		pthread_mutex_lock(&st->ckpt_lock);
		st->ckpt_due = true;
		pthread_cond_signal(&st->ckpt_cond);
		pthread_mutex_unlock(&st->ckpt_lock);
	}
	return SQLITE_OK;
}

static void *
ckpt_main(void *arg)
{
	struct sqlitest *st = arg;
	bool warned = false;

	pthread_mutex_lock(&st->ckpt_lock);
	while (!st->ckpt_stop) {
		struct timespec ts;
		int rc, log_pages = 0, done = 0;

		if (!st->ckpt_due) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += STORE_CKPT_TICK_S;
			(void)pthread_cond_timedwait(&st->ckpt_cond,
			    &st->ckpt_lock, &ts);
		}
		if (st->ckpt_stop)
			break;
		st->ckpt_due = false;
		pthread_mutex_unlock(&st->ckpt_lock);
		rc = sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &log_pages, &done);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && !warned) {
			log_msg(LOG_WARN, "store_checkpoint", "WAL checkpoint: "
			    "%s", sqlite3_errmsg(st->ckpt_db));
			warned = true;
		}
		pthread_mutex_lock(&st->ckpt_lock);
	}
	pthread_mutex_unlock(&st->ckpt_lock);
	return NULL;
}

/* Start the checkpointer on path; when it cannot start, SQLite's
 * automatic checkpoints stay on (a warning says why). */
static void
ckpt_start(struct sqlitest *st, const char *path)
{
	int rc = sqlite3_open_v2(path, &st->ckpt_db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL);

	/* A connection opens its WAL at its first read; until then a
	 * checkpoint on it does nothing. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->ckpt_db, "SELECT count(*) FROM "
		    "sqlite_master", NULL, NULL, NULL);
	if (rc == SQLITE_OK && pthread_create(&st->ckpt, NULL, ckpt_main,
	    st) == 0) {
		sqlite3_wal_hook(st->db, ckpt_hook, st);
		return;
	}
	log_msg(LOG_WARN, "store_checkpoint", "no checkpoint thread (%s): "
	    "commits checkpoint the WAL themselves", rc != SQLITE_OK ?
	    (st->ckpt_db ? sqlite3_errmsg(st->ckpt_db) : sqlite3_errstr(rc)) :
	    "pthread_create failed");
	sqlite3_close(st->ckpt_db);
	st->ckpt_db = NULL;
}

static void
ckpt_stop(struct sqlitest *st)
{
	if (st->ckpt_db == NULL)
		return;
	sqlite3_wal_autocheckpoint(st->db, STORE_CKPT_PAGES);
	pthread_mutex_lock(&st->ckpt_lock);
	st->ckpt_stop = true;
	pthread_cond_signal(&st->ckpt_cond);
	pthread_mutex_unlock(&st->ckpt_lock);
	pthread_join(st->ckpt, NULL);
	sqlite3_close(st->ckpt_db);
	st->ckpt_db = NULL;
}

/* ---- statements ---------------------------------------------------------- */

/*
 * Bind the arguments ap to the parameters ?1, ?2... of s in order, as fmt
 * says, one letter each:
 *   s  const char * (NULL binds NULL)	i  int (a bool promotes to it)
 *   I  int64_t				d  double
 *   j  json_object *, as compact JSON text (NULL binds NULL)
 */
static void
stmt_bindv(sqlite3_stmt *s, const char *fmt, va_list ap)
{
	const char *v;
	json_object *o;
	int i;

	for (i = 1; *fmt != '\0'; fmt++, i++) {
		switch (*fmt) {
		case 's':
			if ((v = va_arg(ap, const char *)) != NULL)
				sqlite3_bind_text(s, i, v, -1,
				    SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(s, i);
			break;
		case 'i':
			sqlite3_bind_int(s, i, va_arg(ap, int));
			break;
		case 'I':
			sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
			break;
		case 'd':
			sqlite3_bind_double(s, i, va_arg(ap, double));
			break;
		case 'j':
			if ((o = va_arg(ap, json_object *)) != NULL)
				sqlite3_bind_text(s, i, ju_dump(o), -1, free);
			else
				sqlite3_bind_null(s, i);
			break;
		default:
			abort();	/* a bad fmt: a programming error */
		}
	}
}

static sqlite3_stmt *
stmt_vprepare(struct sqlitest *st, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	stmt_bindv(s, fmt, ap);
	return s;
}

/*
 * Prepare sql and bind the arguments after fmt (see stmt_bindv).  The
 * caller holds the store lock, or is store_open.  The statement (caller
 * finalizes it), or NULL when sql does not compile (sqlite3_errmsg says
 * why).
 */
static sqlite3_stmt *
stmt_prepare(struct sqlitest *st, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *s;
	va_list ap;

	va_start(ap, fmt);
	s = stmt_vprepare(st, sql, fmt, ap);
	va_end(ap);
	return s;
}

/*
 * Lock the store, then as stmt_prepare.  The lock is held whether or not
 * sql compiled, until stmt_close(st, the result), which also takes NULL.
 */
static sqlite3_stmt *
stmt_open(struct sqlitest *st, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *s;
	va_list ap;

	pthread_mutex_lock(&st->lock);
	va_start(ap, fmt);
	s = stmt_vprepare(st, sql, fmt, ap);
	va_end(ap);
	return s;
}

/* Lock the store and bind one of its persistent statements (st->put...)
 * as stmt_prepare does; release it with stmt_close. */
static sqlite3_stmt *
stmt_reuse(struct sqlitest *st, sqlite3_stmt *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&st->lock);
	va_start(ap, fmt);
	stmt_bindv(s, fmt, ap);
	va_end(ap);
	return s;
}

/* Release s from stmt_open (finalized; NULL ok) or stmt_reuse (reset,
 * bindings cleared), then unlock the store. */
static void
stmt_close(struct sqlitest *st, sqlite3_stmt *s)
{
	if (s != NULL && (s == st->put || s == st->ping)) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	} else
		sqlite3_finalize(s);
	pthread_mutex_unlock(&st->lock);
}

/* ---- opening, the schema ------------------------------------------------- */

static int
sq_exec(struct sqlitest *st, const char *sql, char **err)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*err = xasprintf("task store: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Run one schema step in a transaction; it sets user_version itself. */
static int
sq_apply(struct sqlitest *st, const char *sql, int version, char **err)
{
	char vbuf[16];

	if (sq_exec(st, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (sq_exec(st, sql, err) < 0) {
		char *ignored = NULL;
		sq_exec(st, "ROLLBACK", &ignored);
		free(ignored);
		return -1;
	}
	if (sq_exec(st, "COMMIT", err) < 0)
		return -1;
	snprintf(vbuf, sizeof(vbuf), "%d", version);
	log_kv(LOG_INFO, "store_migrated", "task store schema updated",
	    "version", vbuf, NULL);
	return 0;
}

static int
sq_migrate(struct sqlitest *st, char **err)
{
	sqlite3_stmt *s;
	int version, rc = -1;

	s = stmt_prepare(st, "PRAGMA user_version", "");
	if (s == NULL || sqlite3_step(s) != SQLITE_ROW) {
		*err = xasprintf("task store: cannot read schema version: %s",
		    sqlite3_errmsg(st->db));
		goto cleanup;
	}
	version = sqlite3_column_int(s, 0);
	sqlite3_reset(s);	/* a pending statement blocks DROP INDEX */
	if (version > SQLITEST_SCHEMA_VERSION) {
		*err = xasprintf("task store schema version %d is newer than "
		    "this agent understands (%d); refusing to touch it",
		    version, SQLITEST_SCHEMA_VERSION);
		goto cleanup;
	}
	if (version < 1 && sq_apply(st, schema_v1, 1, err) < 0)
		goto cleanup;
	if (version < 2 && sq_apply(st, schema_v2, 2, err) < 0)
		goto cleanup;
	if (version < 3 && sq_apply(st, schema_v3, 3, err) < 0)
		goto cleanup;
	if (version < 4 && sq_apply(st, schema_v4, 4, err) < 0)
		goto cleanup;
	if (version < 5 && sq_apply(st, schema_v5, 5, err) < 0)
		goto cleanup;
	if (version < 6 && sq_apply(st, schema_v6, 6, err) < 0)
		goto cleanup;
	if (version < 7 && sq_apply(st, schema_v7, 7, err) < 0)
		goto cleanup;
	if (version < 8 && sq_apply(st, schema_v8, 8, err) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	sqlite3_finalize(s);
	return rc;
}

/*
 * The store holds push tokens and every owner's tasks: make path (and
 * its -wal and -shm files, which SQLite creates with the database's
 * mode) STORE_FILE_MODE whatever the umask, and take group and other
 * access from files an older version left more open.  0, or -1 with
 * *err (caller frees).
 */
#define STORE_FILE_MODE 0600
static int
sq_file_mode(const char *path, char **err)
{
	static const char *const side[] = { "-wal", "-shm" };
	struct stat st;
	size_t i;
	int fd;

	if (path[0] == ':' || strncmp(path, "file:", 5) == 0)
		return 0;	/* in memory, or a URI SQLite resolves */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    STORE_FILE_MODE);
	if (fd < 0) {
		*err = xasprintf("cannot open task store %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
		if (fchmod(fd, STORE_FILE_MODE) == 0)
			log_msg(LOG_WARN, "store_mode", "%s was mode %04o; "
			    "made %04o", path, (unsigned)(st.st_mode & 07777),
			    STORE_FILE_MODE);
	}
	close(fd);
	for (i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		char *p = xasprintf("%s%s", path, side[i]);

		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		    (st.st_mode & 077) != 0)
			(void)chmod(p, STORE_FILE_MODE);
		free(p);
	}
	return 0;
}

/* ---- the read pool ------------------------------------------------------- */

static void
reader_finalize(struct reader *r)
{
	size_t i;

	sqlite3_finalize(r->get);
	sqlite3_finalize(r->peek);
	for (i = 0; i < LIST_VARIANTS; i++) {
		sqlite3_finalize(r->page[0][i]);
		sqlite3_finalize(r->page[1][i]);
		sqlite3_finalize(r->count[i]);
	}
	memset(r, 0, sizeof(*r));
}

/* A new read-only connection to st's file (caller gives it back with
 * reader_give, or closes it with reader_close), or NULL. */
static struct reader *
reader_open(struct sqlitest *st)
{
	struct reader *r = xcalloc(1, sizeof(*r));

	if (sqlite3_open_v2(st->path, &r->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_kv(LOG_WARN, "store_reader", r->db ? sqlite3_errmsg(r->db) :
		    "cannot open a read connection", NULL);
		sqlite3_close(r->db);
		free(r);
		return NULL;
	}
	sqlite3_busy_timeout(r->db, STORE_BUSY_TIMEOUT_MS);
	return r;
}

static void
reader_close(struct reader *r)
{
	sqlite3 *db = r->db;

	reader_finalize(r);
	sqlite3_close(db);
	free(r);
}

/*
 * A connection for one read: an idle reader of the pool, a new one while
 * fewer than STORE_READERS_MAX are open, else the next one given back.
 * Without a pool (or when a reader cannot open) the writer's own, with
 * the store lock held.  Give it back with reader_give.
 */
static struct reader *
reader_take(struct sqlitest *st)
{
	struct reader *r = NULL;

	if (st->path != NULL) {
		pthread_mutex_lock(&st->rlock);
		while (st->rfree == NULL && st->nreaders >= STORE_READERS_MAX)
			pthread_cond_wait(&st->rfree_cond, &st->rlock);
		if (st->rfree != NULL) {
			r = st->rfree;
			st->rfree = r->next;
			pthread_mutex_unlock(&st->rlock);
			return r;
		}
		st->nreaders++;
		pthread_mutex_unlock(&st->rlock);
		if ((r = reader_open(st)) != NULL)
			return r;
		pthread_mutex_lock(&st->rlock);
		st->nreaders--;
		pthread_cond_signal(&st->rfree_cond);
		pthread_mutex_unlock(&st->rlock);
	}
	pthread_mutex_lock(&st->lock);
	return &st->wr;
}

static void
reader_give(struct sqlitest *st, struct reader *r)
{
	if (r == &st->wr) {
		pthread_mutex_unlock(&st->lock);
		return;
	}
	pthread_mutex_lock(&st->rlock);
	r->next = st->rfree;
	st->rfree = r;
	pthread_cond_signal(&st->rfree_cond);
	pthread_mutex_unlock(&st->rlock);
}

/* r's statement in *slot, prepared from sql on first use; NULL when sql
 * does not compile (sqlite3_errmsg(r->db) says why).  Reset it after
 * use; it lives as long as the connection. */
static sqlite3_stmt *
reader_stmt(struct reader *r, sqlite3_stmt **slot, const char *sql)
{
	if (*slot == NULL && sqlite3_prepare_v3(r->db, sql, -1,
	    SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK)
		*slot = NULL;
	return *slot;
}

/* Bind the arguments after fmt to s as stmt_bindv does. */
static void
reader_bind(sqlite3_stmt *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	stmt_bindv(s, fmt, ap);
	va_end(ap);
}

static void
reader_reset(sqlite3_stmt *s)
{
	if (s != NULL) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
}

/* ---- opening and closing ------------------------------------------------- */

int
sqlitest_open(const char *path, struct store **out, char **err)
{
	struct sqlitest *st = xcalloc(1, sizeof(*st));
	int rc;

	*out = NULL;
	st->base.ops = &sqlitest_ops;
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->rlock, NULL);
	pthread_cond_init(&st->rfree_cond, NULL);
	pthread_mutex_init(&st->ckpt_lock, NULL);
	pthread_cond_init(&st->ckpt_cond, NULL);
	pthread_mutex_init(&st->gc_lock, NULL);
	pthread_cond_init(&st->gc_cond, NULL);
	if (sq_file_mode(path, err) < 0)
		goto fail;
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*err = xasprintf("cannot open task store %s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if (sq_exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	    " PRAGMA foreign_keys=ON;", err) < 0)
		goto fail;
	if (sq_migrate(st, err) < 0)
		goto fail;
	/* An upsert, not INSERT OR REPLACE: REPLACE deletes the old row,
	 * and ON DELETE CASCADE would take the task's push configs with it.
	 * The update leaves owner, context_id and created_ms alone: they
	 * never change, and setting them would rewrite every index that
	 * holds them (schema 8). */
	if (sqlite3_prepare_v3(st->db, "INSERT INTO tasks (" TASK_COLS
	    ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO "
	    "UPDATE SET operation = excluded.operation,"
	    " params = excluded.params,"
	    " state = excluded.state, progress = excluded.progress,"
	    " result = excluded.result, artifacts = excluded.artifacts,"
	    " error = excluded.error, checkpoint = excluded.checkpoint,"
	    " history = excluded.history,"
	    " updated_ms = excluded.updated_ms,"
	    " next_wake_ms = excluded.next_wake_ms, version = excluded.version,"
	    " cancel_requested = excluded.cancel_requested,"
	    " rev = tasks.rev + 1", -1,
	    SQLITE_PREPARE_PERSISTENT, &st->put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(st->db, "SELECT 1", -1,
	    SQLITE_PREPARE_PERSISTENT, &st->ping, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(st->db, "BEGIN IMMEDIATE", -1,
	    SQLITE_PREPARE_PERSISTENT, &st->begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(st->db, "COMMIT", -1,
	    SQLITE_PREPARE_PERSISTENT, &st->commit, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(st->db, "ROLLBACK", -1,
	    SQLITE_PREPARE_PERSISTENT, &st->rollback, NULL) != SQLITE_OK) {
		*err = xasprintf("task store: %s", sqlite3_errmsg(st->db));
		goto fail;
	}
	st->wr.db = st->db;
	/* Read-only connections need the same file by name: none for an
	 * in-memory database or a URI (which may name one). */
	if (path[0] != ':' && strncmp(path, "file:", 5) != 0) {
		st->path = xstrdup(path);
		ckpt_start(st, path);
	}
	*out = &st->base;
	return 0;
fail:
	sq_close(&st->base);
	return -1;
}

static void
sq_close(struct store *base)
{
	struct sqlitest *st = SQ(base);
	if (st == NULL)
		return;
	ckpt_stop(st);
	while (st->rfree != NULL) {
		struct reader *r = st->rfree;

		st->rfree = r->next;
		reader_close(r);
	}
	reader_finalize(&st->wr);
	sqlite3_finalize(st->put);
	sqlite3_finalize(st->begin);
	sqlite3_finalize(st->commit);
	sqlite3_finalize(st->rollback);
	sqlite3_finalize(st->ping);
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->rlock);
	pthread_cond_destroy(&st->rfree_cond);
	pthread_mutex_destroy(&st->ckpt_lock);
	pthread_cond_destroy(&st->ckpt_cond);
	pthread_mutex_destroy(&st->gc_lock);
	pthread_cond_destroy(&st->gc_cond);
	free(st->path);
	free(st);
}

static int
sq_ping(struct store *base)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s = stmt_reuse(st, st->ping, "");
	int rc;

	rc = sqlite3_step(s) == SQLITE_ROW ? 0 : -1;
	stmt_close(st, s);
	return rc;
}

/* Why a probe's statement failed, from SQLite's result code: a new
 * string. */
static char *
probe_reason(struct sqlitest *st, int rc, int wait_ms)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return xasprintf("the task store is locked by another writer "
		    "(waited %d ms)", wait_ms);
	case SQLITE_FULL:
		return xstrdup("the disk holding the task store is full");
	case SQLITE_READONLY:
		return xasprintf("the task store is read-only: %s",
		    sqlite3_errmsg(st->db));
	default:
		return xasprintf("the task store cannot commit a write: %s",
		    sqlite3_errmsg(st->db));
	}
}

static int
sq_probe_write(struct store *base, int wait_ms, int64_t now_ms, char **why)
{
	struct sqlitest *st = SQ(base);
	struct timespec until;
	char sql[160];
	int rc, ret = -1;

	*why = NULL;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_mutex_timedlock(&st->lock, &until) != 0) {
		*why = xasprintf("the task store is busy: another store call "
		    "held it for over %d ms", wait_ms);
		return -1;
	}
	sqlite3_busy_timeout(st->db, wait_ms);
	rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		*why = probe_reason(st, rc, wait_ms);
		goto cleanup;
	}
	snprintf(sql, sizeof(sql), "INSERT INTO health (id, probed_ms) "
	    "VALUES (1, %" PRId64 ") ON CONFLICT(id) DO UPDATE SET "
	    "probed_ms = excluded.probed_ms", now_ms);
	rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		*why = probe_reason(st, rc, wait_ms);
		if (!sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		goto cleanup;
	}
	ret = 0;
cleanup:
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	pthread_mutex_unlock(&st->lock);
	return ret;
}

/*
 * Task writes are committed in groups: a write joins a queue; when no
 * batch is being written, its thread leads, takes every write queued so
 * far and commits them in one transaction (BEGIN IMMEDIATE ... COMMIT)
 * while the next writers queue for the next batch.  Each caller returns
 * only after the COMMIT that holds its row, so "committed before
 * reported" holds as before, and a burst (32 clients sending at once)
 * writes the pages its rows share, the owner's index leaves above all,
 * once per batch instead of once per task.  When a statement or the
 * COMMIT fails, the batch is rolled back and each write is tried alone,
 * so each caller gets its own outcome.  The JSON columns are rendered by
 * each caller before it queues, outside every lock.
 */
struct put_req {
	const struct task *t;
	char *json[7];	/* params, progress, result, artifacts, error,
			   checkpoint, history (NULL: SQL NULL) */
	int rc;		/* its step's result code */
	char *errmsg;	/* when rc != SQLITE_DONE */
	bool done;
	struct put_req *next;
};

static void
put_req_fill(struct put_req *r, const struct task *t)
{
	memset(r, 0, sizeof(*r));
	r->t = t;
	storebe_task_json(t, r->json);
}

static void
put_req_clear(struct put_req *r)
{
	int i;

	for (i = 0; i < 7; i++)
		free(r->json[i]);
	free(r->errmsg);
}

/* Bind and step r's row on st->put (st->lock held); r->rc. */
static void
put_step(struct sqlitest *st, struct put_req *r)
{
	const struct task *t = r->t;
	sqlite3_stmt *s = st->put;
	int i;

	sqlite3_bind_text(s, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, t->context_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, t->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, t->operation, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, task_state_name(t->state), -1,
	    SQLITE_STATIC);
	for (i = 0; i < 7; i++) {
		int col = i == 0 ? 5 : 6 + i;	/* params is ?5 */

		if (r->json[i] != NULL)
			sqlite3_bind_text(s, col, r->json[i], -1,
			    SQLITE_STATIC);
		else
			sqlite3_bind_null(s, col);
	}
	sqlite3_bind_int64(s, 13, t->created_ms);
	sqlite3_bind_int64(s, 14, t->updated_ms);
	sqlite3_bind_int64(s, 15, t->next_wake_ms);
	sqlite3_bind_int64(s, 16, t->version);
	sqlite3_bind_int(s, 17, t->cancel_requested ? 1 : 0);
	r->rc = sqlite3_step(s);
	if (r->rc != SQLITE_DONE) {
		free(r->errmsg);
		r->errmsg = xstrdup(sqlite3_errmsg(st->db));
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static int
put_exec(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc;
}

/* Write the batch (a list through next); each gets its rc. */
static void
put_batch(struct sqlitest *st, struct put_req *batch)
{
	struct put_req *r;
	bool ok;

	pthread_mutex_lock(&st->lock);
	if (batch->next == NULL) {
		put_step(st, batch);
		pthread_mutex_unlock(&st->lock);
		return;
	}
	ok = put_exec(st->begin) == SQLITE_DONE;
	for (r = batch; ok && r != NULL; r = r->next) {
		put_step(st, r);
		ok = r->rc == SQLITE_DONE;
	}
	if (ok && put_exec(st->commit) != SQLITE_DONE)
		ok = false;
	if (!ok) {
		if (!sqlite3_get_autocommit(st->db))
			(void)put_exec(st->rollback);
		for (r = batch; r != NULL; r = r->next)
			put_step(st, r);
	}
	pthread_mutex_unlock(&st->lock);
}

static void
sq_put_stats(struct store *base, uint64_t *rows, uint64_t *batches)
{
	struct sqlitest *st = SQ(base);
	pthread_mutex_lock(&st->gc_lock);
	*rows = st->gc_rows;
	*batches = st->gc_batches;
	pthread_mutex_unlock(&st->gc_lock);
}

static int
sq_task_put(struct store *base, const struct task *t, char **err)
{
	struct sqlitest *st = SQ(base);
	struct put_req req, *batch, *r, *next;
	int rc;

	put_req_fill(&req, t);
	pthread_mutex_lock(&st->gc_lock);
	if (st->gc_tail != NULL)
		st->gc_tail->next = &req;
	else
		st->gc_head = &req;
	st->gc_tail = &req;
	while (!req.done && st->gc_busy)
		pthread_cond_wait(&st->gc_cond, &st->gc_lock);
	if (!req.done) {
		/* Lead one batch: everything queued, this write among it. */
		batch = st->gc_head;
		st->gc_head = st->gc_tail = NULL;
		st->gc_busy = true;
		pthread_mutex_unlock(&st->gc_lock);
		put_batch(st, batch);
		pthread_mutex_lock(&st->gc_lock);
		st->gc_batches++;
		for (r = batch; r != NULL; r = next) {
			next = r->next;	/* r may be gone once done */
			r->done = true;
			st->gc_rows++;
		}
		st->gc_busy = false;
		pthread_cond_broadcast(&st->gc_cond);
	}
	pthread_mutex_unlock(&st->gc_lock);
	rc = req.rc == SQLITE_DONE ? 0 : -1;
	if (rc < 0)
		*err = xasprintf("task store: cannot save task: %s",
		    req.errmsg ? req.errmsg : "unknown error");
	put_req_clear(&req);
	return rc;
}


static void
row_copy(sqlite3_stmt *s, struct storebe_row *raw)
{
	int i, ncol = sqlite3_column_count(s);

	for (i = 0; i < 12; i++) {
		const char *v = (const char *)sqlite3_column_text(s, i);
		raw->text[i] = v ? xstrdup(v) : NULL;
	}
	for (i = 0; i < 6; i++)
		raw->num[i] = 12 + i < ncol ? sqlite3_column_int64(s, 12 + i) :
		    0;
}



static struct task *
row_to_task(sqlite3_stmt *s)
{
	struct storebe_row raw;

	row_copy(s, &raw);
	return storebe_row_parse(&raw);
}

static int
sq_task_get_rev(struct store *base, const char *id, struct task **out,
    int64_t *rev)
{
	struct sqlitest *st = SQ(base);
	struct reader *r = reader_take(st);
	sqlite3_stmt *s;
	struct storebe_row raw;
	int rc = -1, ret = -1;

	*out = NULL;
	s = reader_stmt(r, &r->get, "SELECT " TASK_READ_COLS
	    " FROM tasks WHERE id = ?1");
	if (s != NULL) {
		reader_bind(s, "s", id);
		rc = sqlite3_step(s);
	}
	if (rc == SQLITE_ROW) {
		row_copy(s, &raw);
		ret = 0;
	} else if (rc == SQLITE_DONE)
		ret = 1;
	else
		log_kv(LOG_ERROR, "store_error", sqlite3_errmsg(r->db), NULL);
	reader_reset(s);
	reader_give(st, r);
	if (ret == 0) {
		if (rev != NULL)
			*rev = raw.num[5];
		*out = storebe_row_parse(&raw);
	}
	return ret;
}


static int
sq_task_peek(struct store *base, const char *id, char **owner,
    int64_t *rev)
{
	struct sqlitest *st = SQ(base);
	struct reader *r = reader_take(st);
	sqlite3_stmt *s;
	int rc = -1, ret = -1;

	*owner = NULL;
	s = reader_stmt(r, &r->peek, "SELECT owner, rev FROM tasks "
	    "WHERE id = ?1");
	if (s != NULL) {
		reader_bind(s, "s", id);
		rc = sqlite3_step(s);
	}
	if (rc == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(s, 0);

		*owner = xstrdup(o ? o : "");
		*rev = sqlite3_column_int64(s, 1);
		ret = 0;
	} else if (rc == SQLITE_DONE)
		ret = 1;
	else
		log_kv(LOG_ERROR, "store_error", sqlite3_errmsg(r->db), NULL);
	reader_reset(s);
	reader_give(st, r);
	return ret;
}


/*
 * The SQL of a list query with the filters of mask (LIST_*): the page
 * (full: whole rows, else id, rev, created_ms) or, page false, the total.
 * Parameters: ?1 owner, ?2 context, ?3 state, ?4 updated after, ?5 ?6 the
 * token's (created_ms, id), ?7 the limit.  Each filter has its index
 * (schema 7), so a page reads page_size + 1 index entries from the
 * token on, and each task's rev from its row (schema 8); the total of
 * no filter, or of the state alone, is read from task_counts.
 */
static void
list_sql(char *buf, size_t len, unsigned mask, bool page, bool full)
{
	char where[160];

	snprintf(where, sizeof(where), "WHERE owner = ?1%s%s%s",
	    mask & LIST_CONTEXT ? " AND context_id = ?2" : "",
	    mask & LIST_STATE ? " AND state = ?3" : "",
	    mask & LIST_UPDATED ? " AND updated_ms > ?4" : "");
	if (page)
		snprintf(buf, len, "SELECT %s FROM tasks %s"
		    " AND (created_ms, id) < (?5, ?6)"
		    " ORDER BY created_ms DESC, id DESC LIMIT ?7",
		    full ? TASK_READ_COLS : "id, rev, created_ms", where);
	else if ((mask & ~LIST_STATE) == 0)
		snprintf(buf, len, "SELECT coalesce(sum(n), 0) FROM task_counts"
		    " WHERE owner = ?1%s", mask & LIST_STATE ?
		    " AND state = ?3" : "");
	else
		snprintf(buf, len, "SELECT count(*) FROM tasks %s", where);
}

/* One page of q: full rows into *tasks, else refs into *refs (the other
 * NULL); see store_task_list and store_task_list_refs. */
static int
list_query(struct sqlitest *st, const struct store_list_query *q, bool full,
    struct task ***tasks, struct store_task_ref **refs, size_t *n,
    char **next_token, int64_t *total, char **err)
{
	struct reader *r;
	sqlite3_stmt *s, *c;
	int64_t tok_created = INT64_MAX, last_created = 0;
	char tok_id[UUID_STR_LEN] = "ffffffff-ffff-ffff-ffff-ffffffffffff";
	char last_id[UUID_STR_LEN] = "";
	const char *state = q->state >= 0 ?
	    task_state_name((enum task_state)q->state) : NULL;
	unsigned mask = (q->context_id != NULL ? LIST_CONTEXT : 0) |
	    (state != NULL ? LIST_STATE : 0) |
	    (q->updated_after_ms != 0 ? LIST_UPDATED : 0);
	size_t cap = 0;
	char sql[640];
	int rc = -1;

	*n = 0;
	*next_token = NULL;
	if (q->page_token != NULL && q->page_token[0] != '\0' &&
	    storebe_parse_token(q->page_token, &tok_created, tok_id) < 0) {
		*err = xstrdup("invalid pageToken");
		return -1;
	}
	/* The total and the page in one read transaction: a reader sees
	 * one snapshot of the database from BEGIN to COMMIT. */
	r = reader_take(st);
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		*err = xasprintf("task store: %s", sqlite3_errmsg(r->db));
		reader_give(st, r);
		return -1;
	}
	list_sql(sql, sizeof(sql), mask, false, false);
	c = reader_stmt(r, &r->count[mask], sql);
	list_sql(sql, sizeof(sql), mask, true, full);
	s = reader_stmt(r, &r->page[full][mask], sql);
	if (c == NULL || s == NULL)
		goto dberr;
	reader_bind(c, "sssI", q->owner, q->context_id, state,
	    q->updated_after_ms);
	reader_bind(s, "sssI" "IsI", q->owner, q->context_id, state,
	    q->updated_after_ms, tok_created, tok_id,
	    (int64_t)q->page_size + 1);
	if (sqlite3_step(c) != SQLITE_ROW)
		goto dberr;
	*total = sqlite3_column_int64(c, 0);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < q->page_size) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			if (full)
				*tasks = xrealloc(*tasks, cap *
				    sizeof(**tasks));
			else
				*refs = xrealloc(*refs, cap * sizeof(**refs));
		}
		if (full) {
			struct task *t = row_to_task(s);

			(*tasks)[*n] = t;
			last_created = t->created_ms;
			snprintf(last_id, sizeof(last_id), "%s", t->id);
		} else {
			struct store_task_ref *ref = &(*refs)[*n];
			const char *id = (const char *)sqlite3_column_text(s,
			    0);

			snprintf(ref->id, sizeof(ref->id), "%s", id ? id : "");
			ref->rev = sqlite3_column_int64(s, 1);
			ref->created_ms = sqlite3_column_int64(s, 2);
			last_created = ref->created_ms;
			snprintf(last_id, sizeof(last_id), "%s", ref->id);
		}
		(*n)++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto dberr;
	/* A row after the page's last: there is a next page. */
	*next_token = rc == SQLITE_ROW ? xasprintf("%" PRId64 ".%s",
	    last_created, last_id) : xstrdup("");
	rc = 0;
	goto cleanup;
dberr:
	*err = xasprintf("task store: %s", sqlite3_errmsg(r->db));
	rc = -1;
cleanup:
	reader_reset(c);
	reader_reset(s);
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	reader_give(st, r);
	if (rc < 0) {
		if (full)
			task_list_free(*tasks, *n);
		else
			free(*refs);
		*n = 0;
	}
	return rc;
}

static int
sq_task_list(struct store *base, const struct store_list_query *q,
    bool full, struct task ***tasks, struct store_task_ref **refs,
    size_t *n, char **next_token, int64_t *total, char **err)
{
	return list_query(SQ(base), q, full, tasks, refs, n, next_token,
	    total, err);
}

static void
collect(sqlite3_stmt *s, struct task ***tasks, size_t *n)
{
	size_t cap = 0;

	*tasks = NULL;
	*n = 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*tasks = xrealloc(*tasks, cap * sizeof(**tasks));
		}
		(*tasks)[(*n)++] = row_to_task(s);
	}
}

static int
sq_task_active(struct store *base, struct task ***tasks, size_t *n)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -1;

	s = stmt_open(st, "SELECT " TASK_COLS " FROM tasks "
	    "WHERE state IN ('submitted','working','input-required') "
	    "ORDER BY created_ms", "");
	if (s != NULL) {
		collect(s, tasks, n);
		rc = 0;
	}
	stmt_close(st, s);
	return rc;
}

static int
sq_push_put(struct store *base, const struct push_config *pc, char **err)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -1;

	s = stmt_open(st, "INSERT OR REPLACE INTO push_configs "
	    "(task_id, id, url, token, auth_scheme, auth_credentials, "
	    "created_ms, dialect) VALUES (?,?,?,?,?,?,?,?)", "ssssssIi",
	    pc->task_id, pc->id, pc->url, pc->token, pc->auth_scheme,
	    pc->auth_credentials, pc->created_ms, pc->dialect);
	if (s != NULL && sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	if (rc < 0)
		*err = xasprintf("task store: %s", sqlite3_errmsg(st->db));
	stmt_close(st, s);
	return rc;
}

static char *
col_str(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);
	return v ? xstrdup(v) : NULL;
}

static struct push_config *
row_to_push(sqlite3_stmt *s)
{
	struct push_config *pc = xcalloc(1, sizeof(*pc));

	pc->task_id = col_str(s, 0);
	pc->id = col_str(s, 1);
	pc->url = col_str(s, 2);
	pc->token = col_str(s, 3);
	pc->auth_scheme = col_str(s, 4);
	pc->auth_credentials = col_str(s, 5);
	pc->created_ms = sqlite3_column_int64(s, 6);
	pc->dialect = sqlite3_column_int(s, 7);
	return pc;
}

#define PUSH_COLS STOREBE_PUSH_COLS

static int
sq_push_get(struct store *base, const char *task_id, const char *id,
    struct push_config **out)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -1, step;

	*out = NULL;
	s = stmt_open(st, "SELECT " PUSH_COLS " FROM push_configs"
	    " WHERE task_id = ? AND id = ?", "ss", task_id, id);
	if (s == NULL)
		goto cleanup;
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*out = row_to_push(s);
		rc = 0;
	} else if (step == SQLITE_DONE)
		rc = 1;
cleanup:
	stmt_close(st, s);
	return rc;
}

static int
sq_push_list(struct store *base, const char *task_id,
    struct push_config ***out, size_t *n)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc = -1;

	*out = NULL;
	*n = 0;
	s = stmt_open(st, "SELECT " PUSH_COLS " FROM push_configs"
	    " WHERE task_id = ? ORDER BY created_ms, id", "s", task_id);
	if (s == NULL)
		goto cleanup;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 4;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n)++] = row_to_push(s);
	}
	rc = 0;
cleanup:
	stmt_close(st, s);
	return rc;
}

static int
sq_push_delete(struct store *base, const char *task_id, const char *id)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -1;

	s = stmt_open(st, "DELETE FROM push_configs WHERE "
	    "task_id = ? AND id = ?", "ss", task_id, id);
	if (s != NULL && sqlite3_step(s) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) > 0 ? 0 : 1;
	stmt_close(st, s);
	return rc;
}

static int
sq_push_task_ids(struct store *base, char ***ids, size_t *n)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc = -1;

	*ids = NULL;
	*n = 0;
	s = stmt_open(st, "SELECT DISTINCT p.task_id FROM push_configs p "
	    "JOIN tasks t ON t.id = p.task_id WHERE t.state NOT IN "
	    "('completed', 'canceled', 'failed', 'rejected')", "");
	if (s == NULL)
		goto cleanup;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*ids = xrealloc(*ids, cap * sizeof(**ids));
		}
		(*ids)[(*n)++] = xstrdup((const char *)
		    sqlite3_column_text(s, 0));
	}
	rc = 0;
cleanup:
	stmt_close(st, s);
	return rc;
}



/* ---- the pod registry ---------------------------------------------------- */

static int
sq_pod_put(struct store *base, const struct pod_rec *p, char **err)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	int rc = -1;

	s = stmt_open(st, "INSERT INTO pods (" POD_COLS ") VALUES "
	    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
	    "ON CONFLICT(pod_id) DO "
	    "UPDATE SET name = excluded.name, task_id = excluded.task_id,"
	    " owner = excluded.owner, state = excluded.state,"
	    " gpu_type_id = excluded.gpu_type_id, cloud = excluded.cloud,"
	    " gpu_count = excluded.gpu_count,"
	    " cost_per_hr = excluded.cost_per_hr,"
	    " public_ip = excluded.public_ip, ssh_port = excluded.ssh_port,"
	    " host_fp = excluded.host_fp,"
	    " max_runtime_ms = excluded.max_runtime_ms,"
	    " max_cost_usd = excluded.max_cost_usd,"
	    " running_ms = excluded.running_ms, cost_usd = excluded.cost_usd,"
	    " last_check_ms = excluded.last_check_ms, reason = excluded.reason,"
	    " created_ms = excluded.created_ms,"
	    " updated_ms = excluded.updated_ms,"
	    " idle_ms = excluded.idle_ms,"
	    " last_used_ms = excluded.last_used_ms,"
	    " disk_gb = excluded.disk_gb, volume_gb = excluded.volume_gb,"
	    " stopped_ms = excluded.stopped_ms,"
	    " storage_usd = excluded.storage_usd,"
	    " label = excluded.label",
	    "sssssss" "idsis" "IdIdIs" "II" "II" "iiId" "s",
	    p->pod_id, p->name, p->task_id, p->owner, p->state,
	    p->gpu_type_id, p->cloud,
	    p->gpu_count, p->cost_per_hr, p->public_ip, p->ssh_port,
	    p->host_fp,
	    p->max_runtime_ms, p->max_cost_usd, p->running_ms, p->cost_usd,
	    p->last_check_ms, p->reason,
	    p->created_ms, p->updated_ms, p->idle_ms, p->last_used_ms,
	    p->disk_gb, p->volume_gb, p->stopped_ms, p->storage_usd,
	    p->label);
	if (s != NULL && sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	if (rc < 0)
		*err = xasprintf("task store: %s", sqlite3_errmsg(st->db));
	stmt_close(st, s);
	return rc;
}

static struct pod_rec *
row_to_pod(sqlite3_stmt *s)
{
	struct pod_rec *p = xcalloc(1, sizeof(*p));

	p->pod_id = col_str(s, 0);
	p->name = col_str(s, 1);
	p->task_id = col_str(s, 2);
	p->owner = col_str(s, 3);
	p->state = col_str(s, 4);
	p->gpu_type_id = col_str(s, 5);
	p->cloud = col_str(s, 6);
	p->gpu_count = sqlite3_column_int(s, 7);
	p->cost_per_hr = sqlite3_column_double(s, 8);
	p->public_ip = col_str(s, 9);
	p->ssh_port = sqlite3_column_int(s, 10);
	p->host_fp = col_str(s, 11);
	p->max_runtime_ms = sqlite3_column_int64(s, 12);
	p->max_cost_usd = sqlite3_column_double(s, 13);
	p->running_ms = sqlite3_column_int64(s, 14);
	p->cost_usd = sqlite3_column_double(s, 15);
	p->last_check_ms = sqlite3_column_int64(s, 16);
	p->reason = col_str(s, 17);
	p->created_ms = sqlite3_column_int64(s, 18);
	p->updated_ms = sqlite3_column_int64(s, 19);
	p->idle_ms = sqlite3_column_int64(s, 20);
	p->last_used_ms = sqlite3_column_int64(s, 21);
	p->disk_gb = sqlite3_column_int(s, 22);
	p->volume_gb = sqlite3_column_int(s, 23);
	p->stopped_ms = sqlite3_column_int64(s, 24);
	p->storage_usd = sqlite3_column_double(s, 25);
	p->label = col_str(s, 26);
	return p;
}

static int
pod_get_by(struct sqlitest *st, const char *col_sql, const char *key,
    struct pod_rec **out)
{
	sqlite3_stmt *s;
	char *sql = xasprintf("SELECT " POD_COLS " FROM pods WHERE %s = ? "
	    "ORDER BY created_ms LIMIT 1", col_sql);
	int rc = -1, step;

	*out = NULL;
	s = stmt_open(st, sql, "s", key);
	if (s == NULL)
		goto cleanup;
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*out = row_to_pod(s);
		rc = 0;
	} else if (step == SQLITE_DONE)
		rc = 1;
cleanup:
	stmt_close(st, s);
	free(sql);
	return rc;
}

static int
sq_pod_get(struct store *base, bool by_task, const char *key,
    struct pod_rec **out)
{
	return pod_get_by(SQ(base), by_task ? "task_id" : "pod_id", key, out);
}

static int
sq_pod_list(struct store *base, const char *owner, bool with_terminated,
    struct pod_rec ***out, size_t *n)
{
	struct sqlitest *st = SQ(base);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc = -1;

	*out = NULL;
	*n = 0;
	s = stmt_open(st, "SELECT " POD_COLS " FROM pods WHERE "
	    "(?1 IS NULL OR owner = ?1) AND (?2 OR state != 'terminated') "
	    "ORDER BY created_ms, pod_id", "si", owner,
	    with_terminated ? 1 : 0);
	if (s == NULL)
		goto cleanup;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n)++] = row_to_pod(s);
	}
	rc = 0;
cleanup:
	stmt_close(st, s);
	return rc;
}

static const struct store_ops sqlitest_ops = {
	.name = "sqlite",
	.close = sq_close,
	.ping = sq_ping,
	.probe_write = sq_probe_write,
	.task_put = sq_task_put,
	.put_stats = sq_put_stats,
	.task_get_rev = sq_task_get_rev,
	.task_peek = sq_task_peek,
	.task_list = sq_task_list,
	.task_active = sq_task_active,
	.push_put = sq_push_put,
	.push_get = sq_push_get,
	.push_list = sq_push_list,
	.push_delete = sq_push_delete,
	.push_task_ids = sq_push_task_ids,
	.pod_put = sq_pod_put,
	.pod_get = sq_pod_get,
	.pod_list = sq_pod_list,
};
