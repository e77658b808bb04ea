/* SPDX-License-Identifier: MIT */
/*
 * tcache: the rendered-task cache (see tcache.h).  A hash table on the
 * task id (all entries of one id share a chain, so a put finds the older
 * revs to drop) and a doubly linked list in use order, newest at the
 * head.  One mutex; held only for the lookups and the copies.
 */
#include "auto-config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/uuid.h"
#include "lib/xalloc.h"
#include "tasks/tcache.h"

#define TCACHE_BUCKETS 4096

struct tentry {
	char id[UUID_STR_LEN];
	int64_t rev;
	int variant;
	char *owner;
	char *text;
	size_t len;		/* strlen(text) */
	size_t cost;		/* what it counts against the byte bound */
	struct tentry *chain;	/* next in its bucket */
	struct tentry *prev, *next;	/* use order; head newest */
};

static struct {
	pthread_mutex_t lock;
	struct tentry *buckets[TCACHE_BUCKETS];
	struct tentry *head, *tail;
	size_t max_entries, max_bytes;
	struct tcache_stats stats;
} C = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.max_entries = TCACHE_MAX_ENTRIES, .max_bytes = TCACHE_MAX_BYTES };

static unsigned
bucket_of(const char *id)
{
	return hash_fnv1a(id) % TCACHE_BUCKETS;
}

static void
lru_unlink(struct tentry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		C.head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		C.tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push_head(struct tentry *e)
{
	e->prev = NULL;
	e->next = C.head;
	if (C.head != NULL)
		C.head->prev = e;
	C.head = e;
	if (C.tail == NULL)
		C.tail = e;
}

/* Unlink e from its chain and the use list, and free it. */
static void
entry_drop(struct tentry *e)
{
	struct tentry **pp = &C.buckets[bucket_of(e->id)];

	for (; *pp != NULL; pp = &(*pp)->chain)
		if (*pp == e) {
			*pp = e->chain;
			break;
		}
	lru_unlink(e);
	C.stats.entries--;
	C.stats.bytes -= e->cost;
	free(e->owner);
	free(e->text);
	free(e);
}

int
tcache_get(const char *id, int64_t rev, int variant, const char *owner,
    char **text)
{
	struct tentry *e;

	*text = NULL;
	pthread_mutex_lock(&C.lock);
	for (e = C.buckets[bucket_of(id)]; e != NULL; e = e->chain)
		if (e->rev == rev && e->variant == variant &&
		    strcmp(e->id, id) == 0)
			break;
	if (e != NULL && strcmp(e->owner, owner) == 0) {
		lru_unlink(e);
		lru_push_head(e);
		*text = xmalloc(e->len + 1);
		memcpy(*text, e->text, e->len + 1);
		C.stats.hits++;
	} else
		C.stats.misses++;
	pthread_mutex_unlock(&C.lock);
	return *text != NULL ? 0 : 1;
}

void
tcache_put(const char *id, int64_t rev, int variant, const char *owner,
    const char *text)
{
	struct tentry *e, *next;
	size_t len = strlen(text), cost;
	unsigned b = bucket_of(id);

	if (strlen(id) >= UUID_STR_LEN)
		return;
	cost = sizeof(*e) + len + 1 + strlen(owner) + 1;
	pthread_mutex_lock(&C.lock);
	if (cost > C.max_bytes / 4)
		goto done;
	for (e = C.buckets[b]; e != NULL; e = next) {
		next = e->chain;
		if (strcmp(e->id, id) != 0)
			continue;
		if (e->rev > rev || (e->rev == rev && e->variant == variant))
			goto done;	/* newer, or already there */
		if (e->rev < rev)
			entry_drop(e);
	}
	e = xcalloc(1, sizeof(*e));
	memcpy(e->id, id, strlen(id) + 1);
	e->rev = rev;
	e->variant = variant;
	e->owner = xstrdup(owner);
	e->text = xmalloc(len + 1);
	memcpy(e->text, text, len + 1);
	e->len = len;
	e->cost = cost;
	e->chain = C.buckets[b];
	C.buckets[b] = e;
	lru_push_head(e);
	C.stats.entries++;
	C.stats.bytes += cost;
	while (C.tail != NULL && (C.stats.entries > C.max_entries ||
	    C.stats.bytes > C.max_bytes)) {
		entry_drop(C.tail);
		C.stats.evictions++;
	}
done:
	pthread_mutex_unlock(&C.lock);
}

/* Drop every entry; the caller holds the lock. */
static void
clear_locked(void)
{
	while (C.head != NULL)
		entry_drop(C.head);
}

void
tcache_limits(size_t max_entries, size_t max_bytes)
{
	pthread_mutex_lock(&C.lock);
	clear_locked();
	C.max_entries = max_entries ? max_entries : TCACHE_MAX_ENTRIES;
	C.max_bytes = max_bytes ? max_bytes : TCACHE_MAX_BYTES;
	pthread_mutex_unlock(&C.lock);
}

void
tcache_clear(void)
{
	pthread_mutex_lock(&C.lock);
	clear_locked();
	memset(&C.stats, 0, sizeof(C.stats));
	pthread_mutex_unlock(&C.lock);
}

void
tcache_get_stats(struct tcache_stats *out)
{
	pthread_mutex_lock(&C.lock);
	*out = C.stats;
	pthread_mutex_unlock(&C.lock);
}
