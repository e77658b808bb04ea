/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/pgstore.h"
#include "store/sqlitest.h"
#include "store/store.h"
#include "store/storebe.h"

bool
store_spec_is_postgresql(const char *spec)
{
	return strncmp(spec, "postgresql://", 13) == 0 ||
	    strncmp(spec, "postgres://", 11) == 0 ||
	    strncmp(spec, "postgresql:", 11) == 0;
}

int
store_open(const char *spec, const char *password_file, struct store **out,
    char **err)
{
	*out = NULL;
	if (store_spec_is_postgresql(spec)) {
		/* "postgresql:" and a key=value string: libpq reads the
		 * string; a URL it reads whole. */
		if (strncmp(spec, "postgresql://", 13) != 0 &&
		    strncmp(spec, "postgres://", 11) != 0)
			spec += 11;
		return pgstore_open(spec, password_file, out, err);
	}
	if (password_file != NULL && password_file[0] != '\0') {
		*err = xstrdup("task store: a password file is for a "
		    "PostgreSQL store, and this one is SQLite");
		return -1;
	}
	if (strncmp(spec, "sqlite:", 7) == 0)
		spec += 7;
	if (spec[0] == '\0') {
		*err = xstrdup("task store: no SQLite path");
		return -1;
	}
	return sqlitest_open(spec, out, err);
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

const char *
store_backend(const struct store *st)
{
	return st->ops->name;
}

int
store_ping(struct store *st)
{
	return st->ops->ping(st);
}

int
store_probe_write(struct store *st, int wait_ms, int64_t now_ms, char **why)
{
	return st->ops->probe_write(st, wait_ms, now_ms, why);
}

int
store_task_put(struct store *st, const struct task *t, char **err)
{
	return st->ops->task_put(st, t, err);
}

void
store_put_stats(struct store *st, uint64_t *rows, uint64_t *batches)
{
	st->ops->put_stats(st, rows, batches);
}

int
store_task_get_rev(struct store *st, const char *id, struct task **out,
    int64_t *rev)
{
	*out = NULL;
	return st->ops->task_get_rev(st, id, out, rev);
}

int
store_task_get(struct store *st, const char *id, struct task **out)
{
	return store_task_get_rev(st, id, out, NULL);
}

int
store_task_peek(struct store *st, const char *id, char **owner,
    int64_t *rev)
{
	*owner = NULL;
	return st->ops->task_peek(st, id, owner, rev);
}

int
store_task_list(struct store *st, const struct store_list_query *q,
    struct task ***tasks, size_t *n, char **next_token, int64_t *total,
    char **err)
{
	*tasks = NULL;
	return st->ops->task_list(st, q, true, tasks, NULL, n, next_token,
	    total, err);
}

int
store_task_list_refs(struct store *st, const struct store_list_query *q,
    struct store_task_ref **refs, size_t *n, char **next_token,
    int64_t *total, char **err)
{
	*refs = NULL;
	return st->ops->task_list(st, q, false, NULL, refs, n, next_token,
	    total, err);
}

int
store_task_active(struct store *st, struct task ***tasks, size_t *n)
{
	*tasks = NULL;
	*n = 0;
	return st->ops->task_active(st, tasks, n);
}

int
store_push_put(struct store *st, const struct push_config *pc, char **err)
{
	return st->ops->push_put(st, pc, err);
}

int
store_push_get(struct store *st, const char *task_id, const char *id,
    struct push_config **out)
{
	*out = NULL;
	return st->ops->push_get(st, task_id, id, out);
}

int
store_push_list(struct store *st, const char *task_id,
    struct push_config ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return st->ops->push_list(st, task_id, out, n);
}

int
store_push_delete(struct store *st, const char *task_id, const char *id)
{
	return st->ops->push_delete(st, task_id, id);
}

int
store_push_task_ids(struct store *st, char ***ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	return st->ops->push_task_ids(st, ids, n);
}

int
store_pod_put(struct store *st, const struct pod_rec *p, char **err)
{
	return st->ops->pod_put(st, p, err);
}

int
store_pod_get(struct store *st, const char *pod_id, struct pod_rec **out)
{
	*out = NULL;
	return st->ops->pod_get(st, false, pod_id, out);
}

int
store_pod_by_task(struct store *st, const char *task_id, struct pod_rec **out)
{
	*out = NULL;
	return st->ops->pod_get(st, true, task_id, out);
}

int
store_pod_list(struct store *st, const char *owner, bool with_terminated,
    struct pod_rec ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return st->ops->pod_list(st, owner, with_terminated, out, n);
}

bool
store_shared(const struct store *st)
{
	return st->ops->task_claim != NULL;
}

void
store_lease_config(struct store *st, const char *holder, int64_t lease_ms)
{
	if (st->ops->lease_config != NULL)
		st->ops->lease_config(st, holder, lease_ms);
}

int
store_task_claim(struct store *st, int64_t now_ms, size_t max,
    struct task ***tasks, size_t *n)
{
	*tasks = NULL;
	*n = 0;
	/* One agent: every unfinished task is its own. */
	if (st->ops->task_claim == NULL)
		return st->ops->task_active(st, tasks, n);
	return st->ops->task_claim(st, now_ms, max, tasks, n);
}

int
store_lease_renew(struct store *st, int64_t now_ms, struct store_held **held,
    size_t *n)
{
	*held = NULL;
	*n = 0;
	return st->ops->lease_renew != NULL ?
	    st->ops->lease_renew(st, now_ms, held, n) : 0;
}

int
store_lease_release(struct store *st)
{
	return st->ops->lease_release != NULL ? st->ops->lease_release(st) :
	    0;
}

int
store_task_request_cancel(struct store *st, const char *id)
{
	return st->ops->task_request_cancel != NULL ?
	    st->ops->task_request_cancel(st, id) : 1;
}

int
store_task_take(struct store *st, const char *id, struct task **out)
{
	*out = NULL;
	return st->ops->task_take != NULL ? st->ops->task_take(st, id, out) :
	    1;
}

int
store_task_post(struct store *st, const char *id, const char *msg)
{
	return st->ops->task_post != NULL ? st->ops->task_post(st, id, msg) :
	    1;
}

int
store_inbox_take(struct store *st, const char *id, char ***msgs, size_t *n,
    int64_t *last)
{
	*msgs = NULL;
	*n = 0;
	*last = 0;
	return st->ops->inbox_take != NULL ?
	    st->ops->inbox_take(st, id, msgs, n, last) : 0;
}

int
store_inbox_done(struct store *st, const char *id, int64_t last)
{
	return st->ops->inbox_done != NULL ?
	    st->ops->inbox_done(st, id, last) : 0;
}

int
store_watch(struct store *st, store_change_fn fn, void *arg)
{
	return st->ops->watch != NULL ? st->ops->watch(st, fn, arg) : 0;
}

bool
store_singleton(struct store *st, const char *name)
{
	return st->ops->singleton != NULL ? st->ops->singleton(st, name) :
	    true;
}

void
store_push_free(struct push_config *pc)
{
	if (pc == NULL)
		return;
	free(pc->task_id);
	free(pc->id);
	free(pc->url);
	free(pc->token);
	free(pc->auth_scheme);
	free(pc->auth_credentials);
	free(pc);
}

void
store_push_list_free(struct push_config **pcs, size_t n)
{
	size_t i;

	if (pcs == NULL)
		return;
	for (i = 0; i < n; i++)
		store_push_free(pcs[i]);
	free(pcs);
}

void
store_pod_free(struct pod_rec *p)
{
	if (p == NULL)
		return;
	free(p->pod_id);
	free(p->name);
	free(p->task_id);
	free(p->owner);
	free(p->state);
	free(p->gpu_type_id);
	free(p->cloud);
	free(p->public_ip);
	free(p->host_fp);
	free(p->reason);
	free(p->label);
	free(p);
}

void
store_pod_list_free(struct pod_rec **recs, size_t n)
{
	size_t i;

	if (recs == NULL)
		return;
	for (i = 0; i < n; i++)
		store_pod_free(recs[i]);
	free(recs);
}

static char *
dup_opt(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct pod_rec *
store_pod_dup(const struct pod_rec *p)
{
	struct pod_rec *d = xmalloc(sizeof(*d));

	*d = *p;
	d->pod_id = dup_opt(p->pod_id);
	d->name = dup_opt(p->name);
	d->task_id = dup_opt(p->task_id);
	d->owner = dup_opt(p->owner);
	d->state = dup_opt(p->state);
	d->gpu_type_id = dup_opt(p->gpu_type_id);
	d->cloud = dup_opt(p->cloud);
	d->public_ip = dup_opt(p->public_ip);
	d->host_fp = dup_opt(p->host_fp);
	d->reason = dup_opt(p->reason);
	d->label = dup_opt(p->label);
	return d;
}
