/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "providers/nats/natspub.h"

#ifdef HAVE_NATS
#include <nats/nats.h>

#include "lib/secretfile.h"
#include "providers/nats/natsev.h"

#define RETRY_MIN_MS 1000	/* first connect retry after a failure */
#define RETRY_MAX_MS 30000	/* longest wait between connect tries */
#define CONNECT_TIMEOUT_MS 2000
#define WRITE_DEADLINE_MS 2000
#define STOP_FLUSH_MS 1000

struct event {
	const char *subject;	/* one of natsev's constants */
	char *body;		/* owned */
};

struct slot {
	char id[UUID_STR_LEN];
	int state;		/* enum task_state; -1 empty */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stopping;
	const struct config *cfg;
	natsOptions *opts;
	natsConnection *nc;		/* the thread's */
	struct event q[NATSPUB_QUEUE_MAX];
	size_t head, len;
	struct slot *slots;		/* NATSPUB_TRACK_SLOTS */
	unsigned long published, dropped;
	bool connected;
} P = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

bool
natspub_available(void)
{
	return true;
}

/* libnats' callbacks (its own threads): the connection's state. */
static void
on_disconnected(natsConnection *nc, void *closure)
{
	pthread_mutex_lock(&P.lock);
	P.connected = false;
	pthread_mutex_unlock(&P.lock);
	log_msg(LOG_WARN, "nats_disconnected", "NATS connection lost; "
	    "reconnecting (events held up to %d bytes)",
	    NATSPUB_RECONNECT_BUF);
}

static void
on_reconnected(natsConnection *nc, void *closure)
{
	pthread_mutex_lock(&P.lock);
	P.connected = true;
	pthread_mutex_unlock(&P.lock);
	log_msg(LOG_INFO, "nats_reconnected", "NATS connection back");
}

/* The options of every connect: URL list, reconnect policy, its buffer,
 * the token (read from nats_token_file, wiped after libnats copied it).
 * 0, or -1 with *err. */
static int
make_options(const struct config *cfg, char **err)
{
	unsigned char *tok = NULL;
	size_t tlen = 0;
	char name[160];
	natsStatus s;
	int rc = -1;

	if (cfg->nats_token_file[0] != '\0') {
		if (secretfile_read("nats_token_file", cfg->nats_token_file,
		    true, &tok, &tlen, err) < 0)
			goto cleanup;
		while (tlen > 0 && (tok[tlen - 1] == '\n' ||
		    tok[tlen - 1] == '\r'))
			tok[--tlen] = '\0';
		if (tlen == 0) {
			*err = xasprintf("nats_token_file %s: empty",
			    cfg->nats_token_file);
			goto cleanup;
		}
	}
	snprintf(name, sizeof(name), "instag-agent %s", cfg->agent_id);
	s = natsOptions_Create(&P.opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(P.opts, cfg->nats_url);
	if (s == NATS_OK)
		s = natsOptions_SetName(P.opts, name);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(P.opts, CONNECT_TIMEOUT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(P.opts, WRITE_DEADLINE_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(P.opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(P.opts, RETRY_MIN_MS);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(P.opts,
		    NATSPUB_RECONNECT_BUF);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(P.opts, on_disconnected,
		    NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(P.opts, on_reconnected, NULL);
	if (s == NATS_OK && tok != NULL)
		s = natsOptions_SetToken(P.opts, (const char *)tok);
	if (s != NATS_OK) {
		*err = xasprintf("nats_url: %s", natsStatus_GetText(s));
		goto cleanup;
	}
	rc = 0;
cleanup:
	secretfile_wipe_free(tok, SECRETFILE_MAX + 1);
	if (rc < 0 && P.opts != NULL) {
		natsOptions_Destroy(P.opts);
		P.opts = NULL;
	}
	return rc;
}

/* One connect attempt (the thread, lock not held); logs the first failure
 * of a run of them. */
static void
try_connect(bool *failed_before)
{
	natsConnection *nc = NULL;
	natsStatus s = natsConnection_Connect(&nc, P.opts);

	if (s != NATS_OK) {
		if (!*failed_before)
			log_msg(LOG_WARN, "nats_unreachable", "cannot connect "
			    "to NATS (%s); events are dropped until it "
			    "answers, retrying", natsStatus_GetText(s));
		*failed_before = true;
		return;
	}
	*failed_before = false;
	log_msg(LOG_INFO, "nats_connected", "publishing task events on NATS");
	pthread_mutex_lock(&P.lock);
	P.nc = nc;
	P.connected = true;
	pthread_mutex_unlock(&P.lock);
}

static void *
publisher(void *arg)
{
	int64_t next_try = 0, wait = RETRY_MIN_MS;
	bool failed_before = false;
	bool refused_before = false;

	pthread_mutex_lock(&P.lock);
	while (!P.stopping) {
		struct event ev;
		natsStatus s = NATS_OK;

		if (P.nc == NULL && clock_mono_ms() >= next_try) {
			pthread_mutex_unlock(&P.lock);
			try_connect(&failed_before);
			pthread_mutex_lock(&P.lock);
			if (P.nc == NULL) {
				next_try = clock_mono_ms() + wait;
				wait = wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS :
				    wait * 2;
			}
			continue;
		}
		if (P.len == 0) {
			if (P.nc == NULL) {
				struct timespec ts = clock_ts(clock_wall_ms() +
				    (next_try - clock_mono_ms()));
				pthread_cond_timedwait(&P.cond, &P.lock, &ts);
			} else {
				pthread_cond_wait(&P.cond, &P.lock);
			}
			continue;
		}
		ev = P.q[P.head];
		P.head = (P.head + 1) % NATSPUB_QUEUE_MAX;
		P.len--;
		if (P.nc == NULL) {
			P.dropped++;
			free(ev.body);
			continue;
		}
		pthread_mutex_unlock(&P.lock);
		s = natsConnection_PublishString(P.nc, ev.subject, ev.body);
		free(ev.body);
		if (s != NATS_OK && !refused_before)
			log_msg(LOG_WARN, "nats_dropped", "an event was not "
			    "published (%s); dropping until NATS takes them "
			    "again", natsStatus_GetText(s));
		refused_before = s != NATS_OK;
		pthread_mutex_lock(&P.lock);
		if (s == NATS_OK)
			P.published++;
		else
			P.dropped++;
	}
	pthread_mutex_unlock(&P.lock);
	return arg;
}

int
natspub_start(const struct config *cfg, char **err)
{
	size_t i;

	if (cfg->nats_url[0] == '\0')
		return 0;
	if (P.running) {
		*err = xasprintf("natspub: already started");
		return -1;
	}
	if (make_options(cfg, err) < 0)
		return -1;
	P.cfg = cfg;
	P.slots = xcalloc(NATSPUB_TRACK_SLOTS, sizeof(*P.slots));
	for (i = 0; i < NATSPUB_TRACK_SLOTS; i++)
		P.slots[i].state = -1;
	P.stopping = false;
	P.head = P.len = 0;
	if (pthread_create(&P.thread, NULL, publisher, NULL) != 0) {
		*err = xasprintf("natspub: cannot start its thread: %s",
		    strerror(errno));
		natsOptions_Destroy(P.opts);
		P.opts = NULL;
		free(P.slots);
		P.slots = NULL;
		return -1;
	}
	P.running = true;
	log_kv(LOG_INFO, "nats_started", "task events go to NATS", "subjects",
	    NATSEV_SUBJECT_EVENTS " " NATSEV_SUBJECT_WORKFLOW, NULL);
	return 0;
}

void
natspub_stop(void)
{
	natsConnection *nc;

	if (!P.running)
		return;
	pthread_mutex_lock(&P.lock);
	P.stopping = true;
	pthread_cond_broadcast(&P.cond);
	pthread_mutex_unlock(&P.lock);
	pthread_join(P.thread, NULL);
	pthread_mutex_lock(&P.lock);
	P.running = false;
	while (P.len > 0) {
		free(P.q[P.head].body);
		P.head = (P.head + 1) % NATSPUB_QUEUE_MAX;
		P.len--;
		P.dropped++;
	}
	nc = P.nc;
	P.nc = NULL;
	P.connected = false;
	pthread_mutex_unlock(&P.lock);
	if (nc != NULL) {
		if (natsConnection_FlushTimeout(nc, STOP_FLUSH_MS) != NATS_OK)
			log_msg(LOG_WARN, "nats_flush", "events still "
			    "buffered for NATS at shutdown are lost");
		natsConnection_Destroy(nc);
	}
	natsOptions_Destroy(P.opts);
	P.opts = NULL;
	free(P.slots);
	P.slots = NULL;
}

/* Queue one event (lock held); body is taken. */
static void
enqueue(const char *subject, char *body)
{
	if (P.len == NATSPUB_QUEUE_MAX) {
		P.dropped++;
		free(body);
		return;
	}
	P.q[(P.head + P.len) % NATSPUB_QUEUE_MAX] =
	    (struct event){ subject, body };
	P.len++;
	pthread_cond_signal(&P.cond);
}

void
natspub_task_changed(const struct task *t)
{
	struct slot *sl;
	int64_t now;

	if (!P.running)
		return;
	now = clock_wall_ms();
	pthread_mutex_lock(&P.lock);
	sl = &P.slots[hash_fnv1a(t->id) % NATSPUB_TRACK_SLOTS];
	if (sl->state == (int)t->state && strcmp(sl->id, t->id) == 0) {
		pthread_mutex_unlock(&P.lock);
		return;
	}
	snprintf(sl->id, sizeof(sl->id), "%s", t->id);
	sl->state = (int)t->state;
	enqueue(NATSEV_SUBJECT_EVENTS, natsev_task_status(t,
	    P.cfg->agent_id, now));
	if (natsev_is_workflow_end(t))
		enqueue(NATSEV_SUBJECT_WORKFLOW, natsev_workflow_completed(t,
		    P.cfg->agent_id, now));
	pthread_mutex_unlock(&P.lock);
}

void
natspub_get_stats(struct natspub_stats *out)
{
	pthread_mutex_lock(&P.lock);
	out->published = P.published;
	out->dropped = P.dropped;
	out->connected = P.connected;
	pthread_mutex_unlock(&P.lock);
}

#else /* !HAVE_NATS: built without libnats; config refuses a nats_url */

bool
natspub_available(void)
{
	return false;
}

int
natspub_start(const struct config *cfg, char **err)
{
	if (cfg->nats_url[0] == '\0')
		return 0;
	*err = xasprintf("nats_url: this build has no NATS support "
	    "(configure found no libnats, or --without-nats)");
	return -1;
}

void
natspub_stop(void)
{
}

void
natspub_task_changed(const struct task *t)
{
}

void
natspub_get_stats(struct natspub_stats *out)
{
	memset(out, 0, sizeof(*out));
}

#endif

void
natspub_metrics(struct strbuf *sb)
{
	struct natspub_stats st;

	natspub_get_stats(&st);
	sb_addf(sb, "# TYPE instag_agent_nats_published_total counter\n"
	    "instag_agent_nats_published_total %lu\n"
	    "# TYPE instag_agent_nats_dropped_total counter\n"
	    "instag_agent_nats_dropped_total %lu\n"
	    "# TYPE instag_agent_nats_connected gauge\n"
	    "instag_agent_nats_connected %d\n",
	    st.published, st.dropped, st.connected ? 1 : 0);
}
