/* SPDX-License-Identifier: MIT */
/*
 * pgstore: the task store on PostgreSQL (libpq), for several agents that
 * share one database.  A small pool of connections serves every call;
 * each call is one statement (autocommit) or one short transaction, so a
 * change is committed before it is reported, on whichever agent reads it
 * next.  The schema is versioned in its own table and migrated under an
 * advisory lock, so agents that start together migrate once.  The
 * password comes from a file, is kept only to reconnect, and is never
 * logged or put in an error.  A build without libpq refuses to open one.
 * See docs/internals.md, "The PostgreSQL store".  Prefix pgstore_.
 */
#ifndef IA_PGSTORE_H
#define IA_PGSTORE_H

#include "lib/attrs.h"

struct store;

/* The schema this agent writes (the table instag_schema holds it). */
#define PGSTORE_SCHEMA_VERSION 2

/*
 * Open the store at conninfo (a postgresql:// URL or a libpq key=value
 * string, without a password) with the password in password_file (NULL
 * or "": none; the file must be mode 0600 or stricter), creating or
 * migrating the schema.  0 and *out (caller closes with store_close), or
 * -1 with *err (caller frees; it never holds the password).
 */
WARN_UNUSED_RESULT
int pgstore_open(const char *conninfo, const char *password_file,
    struct store **out, char **err);

#endif
