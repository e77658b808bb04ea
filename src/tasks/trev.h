/* SPDX-License-Identifier: MIT */
/*
 * trev: which write of each task row this process last saw, so that a
 * task read (tasks_peek: "whose is it, which rev?") can skip the store
 * when nothing has written the row since (docs/internals.md, "Reading
 * tasks").  It relies on the agent being the only writer of its task rows
 * and on tasks.c bracketing every store_task_put with trev_write_begin()
 * and trev_write_end().
 *
 * An entry is valid only between a read that taught it (trev_learn) and
 * the next write of its row: a write makes it unknown again (the store
 * says by how much it raised the rev only when read).  A read teaches it
 * only if no write of the row began or ended, and no entry was evicted,
 * since the ticket the reader took before reading: so a rev learnt is
 * never older than the row's newest committed write.  Bounded
 * (TREV_MAX_ENTRIES, least recently used out first; an entry with a write
 * in flight is never evicted).  Thread-safe; one process-wide table.
 * Prefix trev_.
 */
#ifndef IA_TREV_H
#define IA_TREV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/attrs.h"

#define TREV_MAX_ENTRIES 4096

struct trev_stats {
	size_t entries;
	unsigned long hits;
	unsigned long misses;
	unsigned long learnt;
	unsigned long refused;	/* trev_learn too late: a write or an
				 * eviction since the ticket */
};

/*
 * 0 and *rev when id's rev is known and owner owns it; 1 when it is known
 * and another owner's; -1 when unknown, and *ticket is the ticket for a
 * trev_learn after reading the row.
 */
WARN_UNUSED_RESULT
int trev_get(const char *id, const char *owner, int64_t *rev,
    uint64_t *ticket);
/* A ticket for a read made now (for trev_learn). */
uint64_t trev_ticket(void);
/* A read taken after ticket found id owned by owner at rev: remember it,
 * unless the row was written, or an entry evicted, since ticket. */
void trev_learn(const char *id, uint64_t ticket, const char *owner,
    int64_t rev);
/* A write of id's row is about to start / has returned (committed or
 * not): id is unknown from the first until a read after the second. */
void trev_write_begin(const char *id);
void trev_write_end(const char *id);
/* Set the bound (0: the default) and empty the table (tests, with no
 * write in flight). */
void trev_limits(size_t max_entries);
void trev_get_stats(struct trev_stats *out);

#endif
