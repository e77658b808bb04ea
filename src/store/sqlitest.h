/* SPDX-License-Identifier: MIT */
/*
 * sqlitest: the task store on SQLite, the default back end (WAL,
 * synchronous=NORMAL, schema versioned with PRAGMA user_version).  Writes
 * go through one connection serialised by a mutex; every call is one
 * short statement or transaction, and task writes that arrive together
 * are committed together.  Task reads (get, peek, list) use a small pool
 * of read-only connections instead, so they never wait behind a write
 * (WAL lets readers and the writer run at once).  A change is committed
 * before it is reported, and a read that starts after a write returned
 * sees it.  One process per database file: several agents share a store
 * on PostgreSQL (pgstore), not on SQLite.  Prefix sqlitest_.
 */
#ifndef IA_SQLITEST_H
#define IA_SQLITEST_H

#include "lib/attrs.h"

/* The schema this agent writes (PRAGMA user_version). */
#define SQLITEST_SCHEMA_VERSION 8

struct store;

/* Open (creating or migrating) the SQLite store at path: 0 and *out
 * (caller closes with store_close), or -1 with *err (caller frees). */
WARN_UNUSED_RESULT
int sqlitest_open(const char *path, struct store **out, char **err);

#endif
