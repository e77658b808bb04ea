/* SPDX-License-Identifier: MIT */
/*
 * trev: the task rows' revs this process knows (see trev.h).  A hash
 * table on the task id and a doubly linked list in use order, newest at
 * the head, under one mutex.  A sequence number counts the events that
 * may make a read stale (a write beginning or ending, an eviction); each
 * entry remembers the last of them that touched it, and a ticket is the
 * sequence number when a reader took it.
 */
#include "auto-config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/uuid.h"
#include "lib/xalloc.h"
#include "tasks/trev.h"

#define TREV_BUCKETS 4096

struct rentry {
	char id[UUID_STR_LEN];
	char *owner;		/* NULL until learnt */
	int64_t rev;
	bool valid;		/* rev and owner hold */
	unsigned writes;	/* writes of the row in flight */
	uint64_t changed;	/* seq of the last write event */
	struct rentry *chain;	/* next in its bucket */
	struct rentry *prev, *next;	/* use order; head newest */
};

static struct {
	pthread_mutex_t lock;
	struct rentry *buckets[TREV_BUCKETS];
	struct rentry *head, *tail;
	size_t max_entries;
	uint64_t seq;		/* events so far */
	uint64_t evicted;	/* seq of the last eviction */
	struct trev_stats stats;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER, .max_entries = TREV_MAX_ENTRIES };

static unsigned
bucket_of(const char *id)
{
	return hash_fnv1a(id) % TREV_BUCKETS;
}

static void
lru_unlink(struct rentry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		T.head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		T.tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push_head(struct rentry *e)
{
	e->prev = NULL;
	e->next = T.head;
	if (T.head != NULL)
		T.head->prev = e;
	T.head = e;
	if (T.tail == NULL)
		T.tail = e;
}

static struct rentry *
find_locked(const char *id)
{
	struct rentry *e;

	for (e = T.buckets[bucket_of(id)]; e != NULL; e = e->chain)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

/* Unlink e from its chain and the use list, and free it. */
static void
drop_locked(struct rentry *e)
{
	struct rentry **pp = &T.buckets[bucket_of(e->id)];

	for (; *pp != NULL; pp = &(*pp)->chain)
		if (*pp == e) {
			*pp = e->chain;
			break;
		}
	lru_unlink(e);
	T.stats.entries--;
	free(e->owner);
	free(e);
}

/* Evict least recently used entries with no write in flight, but never
 * keep (NULL: none), until within the bound; each eviction is an event (a
 * ticket older than it cannot teach an entry that may have been
 * evicted). */
static void
trim_locked(const struct rentry *keep)
{
	struct rentry *e = T.tail, *prev;

	while (e != NULL && T.stats.entries > T.max_entries) {
		prev = e->prev;
		if (e->writes == 0 && e != keep) {
			drop_locked(e);
			T.evicted = ++T.seq;
		}
		e = prev;
	}
}

/* id's entry, created (unknown) when absent, moved to the head.  id must
 * be shorter than UUID_STR_LEN. */
static struct rentry *
touch_locked(const char *id)
{
	struct rentry *e = find_locked(id);
	unsigned b;

	if (e != NULL) {
		lru_unlink(e);
		lru_push_head(e);
		return e;
	}
	e = xcalloc(1, sizeof(*e));
	memcpy(e->id, id, strlen(id) + 1);
	b = bucket_of(id);
	e->chain = T.buckets[b];
	T.buckets[b] = e;
	lru_push_head(e);
	T.stats.entries++;
	trim_locked(e);
	return e;
}

int
trev_get(const char *id, const char *owner, int64_t *rev, uint64_t *ticket)
{
	struct rentry *e;
	int rc = -1;

	pthread_mutex_lock(&T.lock);
	e = find_locked(id);
	if (e != NULL && e->valid && e->writes == 0) {
		lru_unlink(e);
		lru_push_head(e);
		if (strcmp(e->owner, owner) == 0) {
			*rev = e->rev;
			rc = 0;
		} else
			rc = 1;
		T.stats.hits++;
	} else {
		*ticket = T.seq;
		T.stats.misses++;
	}
	pthread_mutex_unlock(&T.lock);
	return rc;
}

uint64_t
trev_ticket(void)
{
	uint64_t t;

	pthread_mutex_lock(&T.lock);
	t = T.seq;
	pthread_mutex_unlock(&T.lock);
	return t;
}

void
trev_learn(const char *id, uint64_t ticket, const char *owner, int64_t rev)
{
	struct rentry *e;

	if (strlen(id) >= UUID_STR_LEN)
		return;
	pthread_mutex_lock(&T.lock);
	e = find_locked(id);
	if (T.evicted > ticket || (e != NULL && (e->writes > 0 ||
	    e->changed > ticket))) {
		T.stats.refused++;
		goto done;
	}
	e = touch_locked(id);
	if (e->owner == NULL || strcmp(e->owner, owner) != 0) {
		free(e->owner);
		e->owner = xstrdup(owner);
	}
	e->rev = rev;
	e->valid = true;
	T.stats.learnt++;
done:
	pthread_mutex_unlock(&T.lock);
}

void
trev_write_begin(const char *id)
{
	struct rentry *e;

	if (strlen(id) >= UUID_STR_LEN)
		return;
	pthread_mutex_lock(&T.lock);
	e = touch_locked(id);
	e->writes++;
	e->valid = false;
	e->changed = ++T.seq;
	pthread_mutex_unlock(&T.lock);
}

void
trev_write_end(const char *id)
{
	struct rentry *e;

	pthread_mutex_lock(&T.lock);
	e = find_locked(id);
	if (e != NULL) {
		/* Never evicted while writes > 0: this is begin's entry. */
		if (e->writes > 0)
			e->writes--;
		e->valid = false;
		e->changed = ++T.seq;
	}
	trim_locked(NULL);
	pthread_mutex_unlock(&T.lock);
}

void
trev_limits(size_t max_entries)
{
	pthread_mutex_lock(&T.lock);
	while (T.head != NULL)
		drop_locked(T.head);
	T.evicted = ++T.seq;
	T.max_entries = max_entries ? max_entries : TREV_MAX_ENTRIES;
	memset(&T.stats, 0, sizeof(T.stats));
	pthread_mutex_unlock(&T.lock);
}

void
trev_get_stats(struct trev_stats *out)
{
	pthread_mutex_lock(&T.lock);
	*out = T.stats;
	pthread_mutex_unlock(&T.lock);
}
