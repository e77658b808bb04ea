/* SPDX-License-Identifier: MIT */
/*
 * tcache: a bounded LRU cache of rendered tasks (docs/internals.md,
 * "Reading tasks").  An entry is the JSON text of one rendering of one
 * task as the store held it at one write: the key is (task id, rev, the
 * caller's variant, e.g. the dialect and history length), where rev is
 * the store's write counter of the row (store_task_get_rev).  A later
 * write has a higher rev, so a stale rendering is never found; the
 * entries of older revs are dropped when a newer one is put.  Each entry
 * remembers the task's owner and answers only that owner.  Bounded by
 * entry count and bytes (TCACHE_MAX_ENTRIES, TCACHE_MAX_BYTES), least
 * recently used out first.  Thread-safe; one process-wide cache.
 */
#ifndef IA_TCACHE_H
#define IA_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/attrs.h"

#define TCACHE_MAX_ENTRIES 4096
#define TCACHE_MAX_BYTES (32u * 1024 * 1024)

struct tcache_stats {
	size_t entries;
	size_t bytes;		/* text, owner and entry overhead */
	unsigned long hits;
	unsigned long misses;
	unsigned long evictions;
};

/* 0 and *text (a new copy, caller frees) when (id, rev, variant) is
 * cached and owner is its task's owner; 1 otherwise (*text NULL). */
WARN_UNUSED_RESULT
int tcache_get(const char *id, int64_t rev, int variant, const char *owner,
    char **text);
/* Cache a copy of text as (id, rev, variant) of owner's task, unless a
 * newer rev of id is cached or text alone passes a quarter of the byte
 * bound; drops id's entries of older revs, then the least recently used
 * ones until within the bounds. */
void tcache_put(const char *id, int64_t rev, int variant, const char *owner,
    const char *text);
/* Set the bounds (0: the default) and empty the cache (tests). */
void tcache_limits(size_t max_entries, size_t max_bytes);
void tcache_clear(void);
void tcache_get_stats(struct tcache_stats *out);

#endif
