/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <ctype.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "instag/instag.h"
#include "instag/iops.h"
#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/secretfile.h"
#include "providers/runpod/pods.h"
#include "providers/ssh/remote.h"
#include "providers/ssh/ssh.h"
#include "store/assets.h"
#include "store/store.h"
#include "lib/strbuf.h"
#include "store/uploads.h"
#include "lib/xalloc.h"
#include "providers/ssh/xfer.h"

#define CHUNK_BYTES (16LL * 1024 * 1024)	/* per transfer step */
#define CHUNK_TIMEOUT_MS 120000		/* bound of one such step */
#define LOG_READ_MAX (256 * 1024)		/* per poll */
#define POLL_MAX_MS 30000
#define SSH_RETRIES 30		/* reconnect attempts before giving up */
#define TAIL_BYTES 1500		/* log tail in a failure message */
#define COMMIT_RETRY_MS 1000	/* after a failed mid-step commit */

static struct ssh_pool *POOL;
static char *SECRET;	/* the RunPod key, scrubbed from relayed logs */
static _Atomic int64_t last_maintain_ms;
#define MAINTAIN_EVERY_MS 15000	/* keepalives, idle expiry */

/* The RunPod key as pods.c reads it (first line, trimmed), only to scrub
 * it from log text the agent relays; none when it cannot be read (pods
 * says why). */
static void
load_secret(const struct config *cfg)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	char *err = NULL;
	const char *v, *s, *e;

	if (cfg->runpod_api_key_file[0] != '\0') {
		if (secretfile_read("runpod_api_key_file",
		    cfg->runpod_api_key_file, true, &buf, &len, &err) < 0) {
			free(err);
			return;
		}
		v = (const char *)buf;
	} else
		v = getenv("RUNPOD_API_KEY");
	if (v != NULL) {
		for (s = v; *s == ' ' || *s == '\t'; s++)
			;
		e = s + strcspn(s, "\r\n");
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s)
			SECRET = xstrndup(s, (size_t)(e - s));
	}
	secretfile_wipe_free(buf, SECRETFILE_MAX + 1);
}

int
iops_init(const struct config *cfg, char **err)
{
	(void)err;
	POOL = ssh_pool_new(2, 64, 120);
	load_secret(cfg);
	return 0;
}

void
iops_pool_stats(struct ssh_pool_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (POOL != NULL)
		ssh_pool_stats(POOL, st);
}

/* Now and then, from whichever step comes: keepalives on idle pooled
 * sessions and closing the stale ones (the pool has no thread). */
static void
maybe_maintain(int64_t now)
{
	int64_t last = atomic_load(&last_maintain_ms);

	if (now - last < MAINTAIN_EVERY_MS ||
	    !atomic_compare_exchange_strong(&last_maintain_ms, &last, now))
		return;
	ssh_pool_maintain(POOL);
}

void
iops_shutdown(void)
{
	ssh_pool_free(POOL);
	POOL = NULL;
	if (SECRET != NULL)
		secretfile_wipe_free((unsigned char *)SECRET,
		    strlen(SECRET) + 1);
	SECRET = NULL;
}

bool
iops_ready(const struct config *cfg, const char **why)
{
	if (cfg->ssh_key_file[0] == '\0') {
		*why = "no SSH key is configured on this agent (ssh_key_file)";
		return false;
	}
	return true;
}

static const char *
repo_dir(const struct config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/InsTaG", cfg->pod_work_root);
	return buf;
}

/* The owner's own job directories: <pod_work_root>/jobs/<owner dir>. */
static const char *
jobs_root(const struct config *cfg, const struct task *t, char *buf,
    size_t len)
{
	char u[INSTAG_OWNER_DIR_LEN];

	instag_owner_dir(t->owner, u);
	snprintf(buf, len, "%s/jobs/%s", cfg->pod_work_root, u);
	return buf;
}

/* ---- targets ------------------------------------------------------------- */

/*
 * May owner use static host name:port?  ssh_host_owners holds entries
 * "HOST=SUB" (HOST "name" for every port or "name:port"); a host no entry
 * names is open to every caller, one that some entry names only to the
 * SUBs of its entries.
 */
static bool
host_owner_ok(const struct config *cfg, const char *name, int port,
    const char *owner)
{
	char *list = xstrdup(cfg->ssh_host_owners), *tok, *save = NULL;
	bool restricted = false, ok = false;

	for (tok = strtok_r(list, " \t", &save); tok && !ok;
	    tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '='), *colon;

		if (eq == NULL)
			continue;	/* refused by config_load */
		*eq = '\0';
		colon = strchr(tok, ':');
		if (colon != NULL) {
			*colon = '\0';
			if (atoi(colon + 1) != port)
				continue;
		}
		if (strcmp(tok, name) != 0)
			continue;
		restricted = true;
		if (strcmp(eq + 1, owner) == 0)
			ok = true;
	}
	free(list);
	return ok || !restricted;
}

/*
 * Is host (params.host: "name" or "name:port") one of ssh_hosts (entries
 * "name" or "name:port", port 22 when absent)?  *port gets its port.
 */
static bool
static_host(const struct config *cfg, const char *host, int *port)
{
	char *list = xstrdup(cfg->ssh_hosts), *tok, *save = NULL;
	bool found = false;

	for (tok = strtok_r(list, ", \t", &save); tok && !found;
	    tok = strtok_r(NULL, ", \t", &save)) {
		char *colon = strchr(tok, ':');
		int p = colon ? atoi(colon + 1) : 22;

		if (strcmp(tok, host) == 0)
			found = true;
		else if (colon != NULL && strchr(host, ':') == NULL &&
		    strlen(host) == (size_t)(colon - tok) &&
		    strncmp(tok, host, (size_t)(colon - tok)) == 0)
			found = true;
		if (found)
			*port = p > 0 && p < 65536 ? p : 22;
	}
	free(list);
	return found;
}

struct target {
	struct ssh_target tg;
	char *host;		/* owned */
	char *fp;		/* owned */
};

static void
target_clear(struct target *x)
{
	free(x->host);
	free(x->fp);
	memset(x, 0, sizeof(*x));
}

/* Resolve params into *x: 0, or -1 with *code (static) and *why (caller
 * frees). */
static int
target_resolve(const struct config *cfg, const char *owner,
    json_object *params, struct target *x, const char **code, char **why)
{
	const char *pod = ju_str(params, "pod_id"),
	    *host = ju_str(params, "host");
	struct pod_rec *r = NULL;
	int port = 22;

	memset(x, 0, sizeof(*x));
	x->tg.user = cfg->ssh_user;
	x->tg.key_file = cfg->ssh_key_file;
	x->tg.timeout_ms = cfg->ssh_timeout * 1000;
	if (pod != NULL) {
		if (store_pod_get(pods_store(), pod, &r) != 0 ||
		    strcmp(r->owner, owner) != 0) {
			*code = ERRC_POD_NOT_FOUND;
			*why = xasprintf("no pod with id '%.64s' was "
			    "provisioned by you through this agent", pod);
			goto fail;
		}
		if (strcmp(r->state, "active") != 0 || r->public_ip == NULL ||
		    r->ssh_port <= 0 || r->host_fp == NULL) {
			*code = ERRC_POD_NOT_READY;
			*why = xasprintf("pod %s is %s%s%s", pod, r->state,
			    r->reason ? ": " : "", r->reason ? r->reason : "");
			goto fail;
		}
		x->host = xstrdup(r->public_ip);
		x->fp = xstrdup(r->host_fp);
		x->tg.port = r->ssh_port;
		x->tg.pinned_fp = x->fp;
		store_pod_free(r);
	} else {
		if (host == NULL || !static_host(cfg, host, &port)) {
			*code = ERRC_HOST_NOT_ALLOWED;
			*why = xasprintf("host '%.64s' is not one of this "
			    "agent's ssh_hosts", host ? host : "");
			return -1;
		}
		x->host = xstrndup(host, strcspn(host, ":"));
		if (!host_owner_ok(cfg, x->host, port, owner)) {
			*code = ERRC_HOST_NOT_ALLOWED;
			*why = xasprintf("host '%.64s' is reserved for other "
			    "users (ssh_host_owners)", host);
			target_clear(x);
			return -1;
		}
		if (cfg->ssh_known_hosts[0] == '\0') {
			*code = ERRC_NOT_CONFIGURED;
			*why = xstrdup("ssh_hosts needs ssh_known_hosts (the "
			    "hosts' pinned keys)");
			target_clear(x);
			return -1;
		}
		x->tg.port = port;
		x->tg.known_hosts = cfg->ssh_known_hosts;
	}
	x->tg.host = x->host;
	return 0;
fail:
	store_pod_free(r);
	return -1;
}

/* A source param: an upload of owner's, or an https URL. */
static int
source_ok(const struct config *cfg, const char *owner, const char *src,
    char **why)
{
	struct upload_info u;

	if (src == NULL || strncmp(src, "https://", 8) == 0)
		return 0;
	memset(&u, 0, sizeof(u));
	if (uploads_lookup(cfg, owner, src, &u) != 0) {
		*why = xasprintf("no upload '%.64s' of yours", src);
		return -1;
	}
	uploads_info_clear(&u);
	return 0;
}

/*
 * "part:N" in *v: the message's N-th file part (0 first), replaced by its
 * uri (an upload of the caller's, or an https URL) through set(slot).  0,
 * or -1 with *why (caller frees).
 */
static int
resolve_part(const struct op_ctx *c, const char *key, const char *v,
    json_object **slot, char **why)
{
	const char *uri;
	json_object *parts = c->message ? ju_arr(c->message, "parts") : NULL;
	size_t i, n = parts ? json_object_array_length(parts) : 0;
	long want, seen = 0;

	if (v == NULL || strncmp(v, "part:", 5) != 0)
		return 0;
	want = atol(v + 5);
	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(parts, i);
		if (strcmp(ju_str(p, "kind"), "file") != 0)
			continue;
		if (seen++ != want)
			continue;
		uri = ju_str(p, "uri");
		if (uri == NULL || (strncmp(uri, "upload:", 7) != 0 &&
		    strncmp(uri, "https://", 8) != 0)) {
			*why = xasprintf("params.%s: file part %ld has neither "
			    "bytes nor an https uri", key, want);
			return -1;
		}
		json_object_put(*slot);
		*slot = json_object_new_string(uri);
		return 0;
	}
	*why = xasprintf("params.%s: the message has no file part %ld", key,
	    want);
	return -1;
}

/* Resolve and check one source value (*slot, a string). */
static int
source_check(const struct op_ctx *c, const char *key, json_object **slot,
    char **why)
{
	if (*slot == NULL || !json_object_is_type(*slot, json_type_string))
		return 0;
	if (resolve_part(c, key, json_object_get_string(*slot), slot,
	    why) < 0)
		return -1;
	return source_ok(c->cfg, c->who->sub, json_object_get_string(*slot),
	    why);
}

int
iops_admit_sources(const struct op_ctx *c, json_object *params,
    struct op_error *oe)
{
	static const char *const keys[] = { "video", "audio", NULL };
	char *why = NULL;
	size_t k, i;

	for (k = 0; keys[k] != NULL; k++) {
		json_object *v = NULL, *el;
		if (!json_object_object_get_ex(params, keys[k], &v))
			continue;
		if (json_object_is_type(v, json_type_string)) {
			el = json_object_get(v);
			if (source_check(c, keys[k], &el, &why) < 0) {
				json_object_put(el);
				goto bad;
			}
			if (el != v)
				json_object_object_add(params, keys[k], el);
			else
				json_object_put(el);
			continue;
		}
		for (i = 0; json_object_is_type(v, json_type_array) &&
		    i < json_object_array_length(v); i++) {
			json_object *old = json_object_array_get_idx(v, i);
			el = json_object_get(old);
			if (source_check(c, keys[k], &el, &why) < 0) {
				json_object_put(el);
				goto bad;
			}
			if (el != old)
				json_object_array_put_idx(v, i, el);
			else
				json_object_put(el);
		}
	}
	return 0;
bad:
	op_error_set(oe, ERRC_INVALID_PARAMS, "%s", why);
	free(why);
	return -1;
}

int
iops_admit(const struct op_ctx *c, json_object *params, struct op_error *oe)
{
	struct target x;
	const char *code = NULL;
	char *why = NULL;

	if (target_resolve(c->cfg, c->who->sub, params, &x, &code, &why) < 0) {
		op_error_set(oe, code, "%s", why);
		free(why);
		return -1;
	}
	target_clear(&x);
	return iops_admit_sources(c, params, oe);
}

/* Is static host name:port kept for owner by an ssh_host_owners entry
 * (not merely open to everyone)? */
static bool
host_reserved_for(const struct config *cfg, const char *name, int port,
    const char *owner)
{
	char *list = xstrdup(cfg->ssh_host_owners), *tok, *save = NULL;
	bool ok = false;

	for (tok = strtok_r(list, " \t", &save); tok && !ok;
	    tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '='), *colon;

		if (eq == NULL)
			continue;
		*eq = '\0';
		colon = strchr(tok, ':');
		if (colon != NULL) {
			*colon = '\0';
			if (atoi(colon + 1) != port)
				continue;
		}
		ok = strcmp(tok, name) == 0 && strcmp(eq + 1, owner) == 0;
	}
	free(list);
	return ok;
}

/* instag.place_assets on params.host: only on a host kept for owner.
 * True for a pod, or a host that is not one of ssh_hosts (refused
 * elsewhere). */
static bool
place_host_ok(const struct config *cfg, const char *owner,
    json_object *params)
{
	const char *host = ju_str(params, "host");
	char *name;
	bool ok;
	int port = 22;

	if (ju_str(params, "pod_id") != NULL || host == NULL ||
	    !static_host(cfg, host, &port))
		return true;
	name = xstrndup(host, strcspn(host, ":"));
	ok = host_reserved_for(cfg, name, port, owner);
	free(name);
	return ok;
}

#define SHARED_HOST_MSG "host '%.64s' is shared: files placed in its " \
	"InsTaG checkout would be loaded by other users' jobs; use a pod of " \
	"yours, or ask the operator to keep the host for you " \
	"(ssh_host_owners)"

int
iops_admit_place(const struct op_ctx *c, json_object *params,
    struct op_error *oe)
{
	if (iops_admit(c, params, oe) < 0)
		return -1;
	if (!place_host_ok(c->cfg, c->who->sub, params)) {
		op_error_set(oe, ERRC_HOST_NOT_ALLOWED, SHARED_HOST_MSG,
		    ju_str(params, "host"));
		return -1;
	}
	return 0;
}

/* ---- the plan ------------------------------------------------------------ */

static void
plan_add(json_object *plan, const char *kind, const char *a, const char *b)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(kind));
	if (a)
		json_object_object_add(o, "a", json_object_new_string(a));
	if (b)
		json_object_object_add(o, "b", json_object_new_string(b));
	json_object_array_add(plan, o);
}

/* A source to dst (relative to the checkout): "put" or "url". */
static void
plan_source(json_object *plan, const char *src, const char *dst)
{
	plan_add(plan, strncmp(src, "https://", 8) == 0 ? "url" : "put", src,
	    dst);
}

static void
plan_stages(json_object *plan, const char *op)
{
	const char *const *st = instag_stages(op);
	size_t i;

	for (i = 0; st && st[i]; i++)
		plan_add(plan, "job", st[i], NULL);
}

/*
 * A task that runs as one part of a larger one (pipeline/) has checkpoint
 * key "part" (e.g. "s6"): it names the part's remote jobs and files apart
 * from the other parts', which share the task id.
 */
static const char *
part_of(const struct task *t)
{
	const char *p = task_ckpt_str(t, "part");

	return p != NULL && p[0] != '\0' ? p : NULL;
}

/* The driving audio's name on the pod: data/<name>.wav. */
static void
audio_name(const struct task *t, char *buf, size_t len)
{
	const char *part = part_of(t);

	if (part != NULL)
		snprintf(buf, len, "drive_%.8s_%.8s", t->id, part);
	else
		snprintf(buf, len, "drive_%.8s", t->id);
}

static json_object *
make_plan(const struct task *t)
{
	json_object *plan = json_object_new_array();
	const char *op = t->operation, *id = ju_str(t->params, "subject");
	char dst[256], an[32], u[INSTAG_OWNER_DIR_LEN];
	bool b = false;

	/* every file of the owner's under data/<owner dir>/ */
	instag_owner_dir(t->owner, u);

	if (strcmp(op, "instag.setup_environment") == 0)
		plan_add(plan, "job", "setup", NULL);
	else if (strcmp(op, "instag.upload_data") == 0) {
		snprintf(dst, sizeof(dst), "data/%s/%s/%s.mp4", u, id, id);
		plan_source(plan, ju_str(t->params, "video"), dst);
		if (ju_str(t->params, "audio") != NULL) {
			snprintf(dst, sizeof(dst), "data/%s/%s/%s_audio.wav",
			    u, id, id);
			plan_source(plan, ju_str(t->params, "audio"), dst);
		}
		plan_add(plan, "job", "media", NULL);
	} else if (strcmp(op, "instag.preprocess") == 0)
		plan_stages(plan, op);
	else if (strcmp(op, "instag.train") == 0) {
		plan_add(plan, "job", "features", NULL);
		if (ju_bool(t->params, "pretrain", &b) == 0 && b)
			plan_add(plan, "job", "pretrain", NULL);
		plan_add(plan, "job", "face", NULL);
		plan_add(plan, "job", "mouth", NULL);
		plan_add(plan, "job", "fuse", NULL);
	} else if (strcmp(op, "instag.synthesize") == 0) {
		audio_name(t, an, sizeof(an));
		snprintf(dst, sizeof(dst), "data/%s/%s.wav", u, an);
		plan_source(plan, ju_str(t->params, "audio"), dst);
		plan_stages(plan, op);
	} else if (strcmp(op, "instag.fetch_results") == 0)
		plan_add(plan, "job", "pack", NULL);
	return plan;
}

/* instag.place_assets: one "asset" action per asset of the owner's (a:
 * the kind, b: the extractor or "", c: the path in the checkout).  0, or
 * -1 with *err (caller frees; for logs). */
static int
plan_assets(const struct task *t, const struct config *cfg,
    json_object *plan, char **err)
{
	struct asset_info *list = NULL;
	size_t n = 0, i;

	if (assets_list(cfg, t->owner, &list, &n, err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		json_object *o;
		plan_add(plan, "asset", list[i].kind, list[i].extractor ?
		    list[i].extractor : "");
		o = json_object_array_get_idx(plan,
		    json_object_array_length(plan) - 1);
		json_object_object_add(o, "c",
		    json_object_new_string(list[i].remote_path));
	}
	assets_list_free(list, n);
	return 0;
}

/* ---- scripts ------------------------------------------------------------- */

static void
fill_args(const struct task *t, const struct config *cfg, const char *repo,
    struct instag_args *a, char *an, size_t anlen,
    char u[INSTAG_OWNER_DIR_LEN])
{
	int64_t v;

	memset(a, 0, sizeof(*a));
	a->repo_dir = repo;
	instag_owner_dir(t->owner, u);
	a->owner_dir = u;
	a->subject = ju_str(t->params, "subject");
	a->output_name = ju_str(t->params, "output_name");
	a->extractor = ju_str(t->params, "audio_extractor");
	a->env_init = cfg->pod_env_init[0] ? cfg->pod_env_init : NULL;
	v = 0;
	ju_int(t->params, "gpu_id", &v);
	a->gpu_id = (int)v;
	v = 0;
	ju_int(t->params, "n_views", &v);
	a->n_views = (int)v;
	v = 0;
	ju_int(t->params, "iterations", &v);
	a->iterations = (int)v;
	audio_name(t, an, anlen);
	a->audio_name = an;
}

/* The "pack" job of fetch_results: names the files to download. */
static char *
pack_script(const struct task *t, const struct instag_args *a)
{
	struct strbuf sb = SB_INIT;
	bool model = false;

	ju_bool(t->params, "include_model", &model);
	sb_adds(&sb, "#!/bin/bash\nset -euo pipefail\n");
	if (a->env_init) {
		sb_adds(&sb, ". ");
		sb_add_shquote(&sb, a->env_init);
		sb_addc(&sb, '\n');
	}
	sb_adds(&sb, "U=");
	sb_add_shquote(&sb, a->owner_dir);
	sb_adds(&sb, "\nN=");
	sb_add_shquote(&sb, a->output_name ? a->output_name : a->subject);
	/* only the caller's own outputs: output/<owner dir>/<name> */
	sb_adds(&sb, "\nO=\"output/$U/$N\"\nfound=0\n"
	    "[ -d \"$O\" ] && cd \"$O\" || { echo '[agent] no rendered video "
	    "in output/'\"$N\"' (no such model of yours; run "
	    "instag.synthesize first)'; exit 3; }\n"
	    "for f in ");
	if (part_of(t) != NULL)
		/* a part of a pipeline: only the videos its own parts
		 * rendered, not earlier ones of the same model */
		sb_addf(&sb, "talking_head_drive_%.8s_*.mp4", t->id);
	else
		sb_adds(&sb, "talking_head_*.mp4");
	sb_adds(&sb, "; do [ -f \"$f\" ] || continue; "
	    "echo \"[agent] file: $O/$f\"; found=1; done\n"
	    "[ $found = 1 ] || { echo '[agent] no rendered video in "
	    "output/'\"$N\"' (run instag.synthesize first)'; exit 3; }\n");
	if (model)
		sb_adds(&sb, "tar -czf ../\"$N\"-model.tar.gz --exclude "
		    "'talking_head_*' --exclude train --exclude test .\n"
		    "echo \"[agent] file: output/$U/$N-model.tar.gz\"\n");
	return sb_take(&sb);
}

/* The script of job stage; NULL with *why (static). */
static char *
job_script(const struct task *t, const struct config *cfg, const char *stage,
    const char **why)
{
	struct instag_args a;
	char repo[1100], an[32], u[INSTAG_OWNER_DIR_LEN], *s = NULL;

	repo_dir(cfg, repo, sizeof(repo));
	fill_args(t, cfg, repo, &a, an, sizeof(an), u);
	if (strcmp(stage, "setup") == 0)
		return instag_setup_script(cfg->pod_work_root,
		    cfg->instag_repo_url, cfg->instag_commit, a.env_init);
	if (strcmp(stage, "media") == 0) {
		char v[1400];
		bool conv = false;
		ju_bool(t->params, "convert", &conv);
		snprintf(v, sizeof(v), "%s/data/%s/%s/%s.mp4", repo, u,
		    a.subject, a.subject);
		return instag_media_script(v, conv, a.env_init);
	}
	if (strcmp(stage, "pack") == 0) {
		struct strbuf sb = SB_INIT;
		char *body = pack_script(t, &a);
		/* run from the checkout */
		sb_adds(&sb, body);
		free(body);
		return sb_take(&sb);
	}
	s = instag_stage_script(t->operation, stage, &a, why);
	return s;
}

/* ---- SSH ----------------------------------------------------------------- */

/* Back off after an SSH failure, or fail when it cannot get better. */
static enum step_result
ssh_trouble(struct task *t, const struct step_env *env,
    const struct ssh_error *e, const char *what)
{
	int64_t n = task_ckpt_int(t, "ssh_retries", 0) + 1, d;
	char msg[400];

	if (e->kind == SSH_ERR_HOSTKEY) {
		snprintf(msg, sizeof(msg), "%s: the host key does not match "
		    "the pinned one: %s", what, e->message ? e->message : "");
		task_fail(t, ERRC_HOST_KEY_CHANGED, msg);
		return STEP_DONE;
	}
	if (e->kind == SSH_ERR_AUTH || e->kind == SSH_ERR_PROTOCOL ||
	    n > SSH_RETRIES) {
		snprintf(msg, sizeof(msg), "%s: %s (%s)", what,
		    e->message ? e->message : "ssh failed",
		    ssh_error_kind_name(e->kind));
		task_fail(t, e->kind == SSH_ERR_AUTH ? ERRC_SSH_AUTH :
		    e->kind == SSH_ERR_PROTOCOL ? ERRC_REMOTE :
		    ERRC_POD_UNREACHABLE, msg);
		return STEP_DONE;
	}
	task_ckpt_set_int(t, "ssh_retries", n);
	d = backoff_exp_ms(1000, POLL_MAX_MS, (int)n);
	snprintf(msg, sizeof(msg), "reconnecting (%s): retry %lld in %.0f s",
	    ssh_error_kind_name(e->kind), (long long)n, (double)d / 1000);
	task_ckpt_set_str(t, "waiting_for", msg);
	t->next_wake_ms = env->now_ms + backoff_half_jitter(d);
	return STEP_WAIT;
}

/* ---- actions ------------------------------------------------------------- */

static void
job_id(const struct task *t, int64_t idx, const char *stage, char *buf,
    size_t len)
{
	const char *part = part_of(t);

	if (part != NULL)
		snprintf(buf, len, "%s-%.8s-%lld-%s", t->id, part,
		    (long long)idx, stage);
	else
		snprintf(buf, len, "%s-%lld-%s", t->id, (long long)idx, stage);
}

static char *
clean_tail(const char *s, size_t n)
{
	char *o = xmalloc(n + 1);
	size_t i;

	for (i = 0; i < n; i++)
		o[i] = s[i] == '\r' ? '\n' : ((unsigned char)s[i] < 0x20 &&
		    s[i] != '\n' && s[i] != '\t') ? '?' : s[i];
	o[n] = '\0';
	return o;
}

/* Lines "[agent] KEY: VALUE" of a job's log, for results. */
static void
agent_lines(const char *log, size_t len, const char *key, json_object *arr)
{
	char pat[64];
	const char *p = log, *end = log + len, *nl;
	size_t k;

	k = (size_t)snprintf(pat, sizeof(pat), "[agent] %s", key);
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if ((size_t)(nl - p) > k && memcmp(p, pat, k) == 0) {
			const char *v = p + k;
			while (v < nl && (*v == ' ' || *v == ':'))
				v++;
			json_object_array_add(arr, json_object_new_string_len(v,
			    (int)(nl - v)));
		}
		if (nl == end)
			break;
	}
}

enum act { ACT_DONE, ACT_WAIT, ACT_END };

static void
stage_progress(struct task *t, int64_t idx, int64_t n, const char *stage,
    const struct instag_progress *p)
{
	char msg[200];
	const char *old = t->progress ? ju_str(t->progress, "message") : NULL;
	const char *oldlog = t->progress ? ju_str(t->progress, "log") : NULL;
	int pct = n > 0 ? (int)(idx * 100 / n) : 0;
	size_t sl = strlen(stage);
	int64_t keep_pct = pct;

	if (p != NULL && p->percent >= 0) {
		snprintf(msg, sizeof(msg), "%s: %s%s%d%% (%lld/%lld)", stage,
		    p->label, p->label[0] ? " " : "", p->percent, p->cur,
		    p->total);
		/* within the action: the bar's share of it */
		if (n > 0)
			pct = (int)((idx * 100 + p->percent) / n);
	} else if (p != NULL && p->info[0])
		snprintf(msg, sizeof(msg), "%s: %s", stage, p->info);
	else if (old != NULL && strncmp(old, stage, sl) == 0 &&
	    (old[sl] == ':' || old[sl] == '\0')) {
		/* nothing new from the stage: what it said last holds */
		snprintf(msg, sizeof(msg), "%s", old);
		if (p == NULL)
			return;
		ju_int(t->progress, "percent", &keep_pct);
		pct = (int)keep_pct;
	} else
		snprintf(msg, sizeof(msg), "%s", stage);
	if (old == NULL || strcmp(old, msg) != 0 || (p != NULL &&
	    p->line[0] && (oldlog == NULL || strcmp(oldlog, p->line) != 0))) {
		const char *line = p != NULL && p->line[0] ? p->line : oldlog;
		char *keep = line ? xstrdup(line) : NULL;
		task_set_progress_pct(t, (int)idx, (int)n, pct, msg);
		/* the job's last log line, for a person watching */
		if (keep != NULL)
			json_object_object_add(t->progress, "log",
			    json_object_new_string(keep));
		free(keep);
	}
}

/* line (a NUL-terminated buffer of size bytes) with secrets redacted
 * (instag_log_text), cut to fit. */
static void
redact_line(char *line, size_t size)
{
	char *r;

	if (line[0] == '\0')
		return;
	r = instag_log_text(line, strlen(line), SECRET);
	snprintf(line, size, "%s", r);
	free(r);
}

/* The job's last log lines in progress.log_tail, scrubbed; changed only
 * when they changed (len new bytes of log). */
static void
keep_tail(struct task *t, const char *log, size_t len)
{
	json_object *old = t->progress ? ju_arr(t->progress, "log_tail") :
	    NULL, *tail;

	if (t->progress == NULL)
		return;
	tail = instag_log_tail(old, log, len, SECRET);
	if (old != NULL && json_object_equal(old, tail)) {
		json_object_put(tail);
		return;
	}
	json_object_object_add(t->progress, "log_tail", tail);
}

/* ssh_trouble() for an action: ACT_END when the task ended. */
static enum act
act_trouble(struct task *t, const struct step_env *env,
    const struct ssh_error *e, const char *what, enum step_result *res)
{
	*res = ssh_trouble(t, env, e, what);
	return *res == STEP_DONE ? ACT_END : ACT_WAIT;
}

/* A failed transfer: refused for good (path, disk, hash) ends the task,
 * a transport failure is retried like any SSH trouble. */
static enum act
transfer_trouble(struct task *t, const struct step_env *env,
    const struct ssh_error *e, const char *what, const char *path,
    enum step_result *res)
{
	char msg[400];

	if (e->kind != SSH_ERR_PROTOCOL)
		return act_trouble(t, env, e, what, res);
	snprintf(msg, sizeof(msg), "%s of %s: %s", what, path,
	    e->message ? e->message : "failed");
	task_fail(t, ERRC_TRANSFER_FAILED, msg);
	*res = STEP_DONE;
	return ACT_END;
}

static enum act
act_job(struct task *t, const struct step_env *env, struct ssh_session *s,
    int64_t idx, int64_t n, const char *stage, enum step_result *res)
{
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char jid[128], jr[1100], repo[1100], *script = NULL, *log = NULL;
	const char *why = NULL;
	int64_t off = task_ckpt_int(t, "log_off", 0), polls;
	size_t len = 0;
	struct instag_progress p;
	enum act rc = ACT_WAIT;

	job_id(t, idx, stage, jid, sizeof(jid));
	jobs_root(env->cfg, t, jr, sizeof(jr));
	repo_dir(env->cfg, repo, sizeof(repo));
	if (!task_ckpt_int(t, "started", 0)) {
		script = job_script(t, env->cfg, stage, &why);
		if (script == NULL) {
			task_fail(t, ERRC_INTERNAL, why);
			*res = STEP_DONE;
			return ACT_END;
		}
		/* setup runs before the checkout exists */
		if (remote_start(s, jr, jid, strcmp(stage, "setup") == 0 ?
		    "/" : repo, script, &st, &e) < 0)
			goto ssh;
		free(script);
		script = NULL;
		task_ckpt_set_int(t, "started", 1);
		task_ckpt_set_int(t, "log_off", 0);
		task_ckpt_set_int(t, "polls", 0);
		off = 0;
	} else if (remote_poll(s, jr, jid, &st, &e) < 0)
		goto ssh;
	task_ckpt_set_int(t, "ssh_retries", 0);
	if (st.state == REMOTE_UNKNOWN) {
		/* recorded as started, never seen by the pod: start again */
		task_ckpt_set_int(t, "started", 0);
		t->next_wake_ms = env->now_ms;
		*res = STEP_WAIT;
		return ACT_WAIT;
	}
	if (st.log_size > off) {
		if (remote_read_log(s, jr, jid, off, LOG_READ_MAX, &log, &len,
		    &e) < 0)
			goto ssh;
		instag_parse_progress(log, len, &p);
		redact_line(p.line, sizeof(p.line));
		stage_progress(t, idx, n, stage, &p);
		keep_tail(t, log, len);
		if (strcmp(stage, "setup") == 0 || strcmp(stage, "pack") == 0 ||
		    strcmp(stage, "media") == 0) {
			json_object *acc = ju_arr(t->checkpoint, "notes");
			if (acc == NULL) {
				acc = json_object_new_array();
				json_object_object_add(t->checkpoint, "notes",
				    acc);
			}
			agent_lines(log, len, "", acc);
		}
		task_ckpt_set_int(t, "log_off", off + (int64_t)len);
		free(log);
		log = NULL;
		/* an ended job's log is read to its end (its last lines hold
		 * the notes) before its outcome counts */
		if (st.state != REMOTE_RUNNING &&
		    off + (int64_t)len < st.log_size) {
			t->next_wake_ms = env->now_ms;
			*res = STEP_WAIT;
			return ACT_WAIT;
		}
	} else
		stage_progress(t, idx, n, stage, NULL);
	if (st.state == REMOTE_RUNNING) {
		int64_t d = env->cfg->job_poll_ms, i;
		polls = task_ckpt_int(t, "polls", 0) + 1;
		task_ckpt_set_int(t, "polls", polls);
		for (i = 1; i < polls && d < POLL_MAX_MS; i++)
			d += d / 2;
		t->next_wake_ms = env->now_ms +
		    (d > POLL_MAX_MS ? POLL_MAX_MS : d);
		*res = STEP_WAIT;
		return ACT_WAIT;
	}
	if (st.state == REMOTE_EXITED && st.exit_status == 0 &&
	    !st.canceled) {
		/* The job succeeded.  Its directory is the evidence: the
		 * caller records the outcome and commits it before removing
		 * it (collect()). */
		task_ckpt_set_int(t, "started", 0);
		return ACT_DONE;
	}
	/* failed, vanished or canceled behind our back: say why, with the
	 * log's tail */
	{
		int64_t from = st.log_size > TAIL_BYTES ? st.log_size -
		    TAIL_BYTES : 0;
		char msg[TAIL_BYTES + 300], *tail = NULL;
		if (remote_read_log(s, jr, jid, from, TAIL_BYTES, &log, &len,
		    &e) == 0) {
			char *c = clean_tail(log, len);
			/* no secret in a relayed line */
			tail = instag_log_text(c, strlen(c), SECRET);
			free(c);
		}
		if (st.state == REMOTE_VANISHED)
			snprintf(msg, sizeof(msg), "stage %s: the remote job "
			    "vanished without an exit status (pod restarted?); "
			    "log tail:\n%s", stage, tail ? tail : "");
		else
			snprintf(msg, sizeof(msg),
			    "stage %s failed with status %d; log tail:\n%s",
			    stage, st.exit_status, tail ? tail : "");
		task_fail(t, st.exit_status == 3 ? ERRC_INPUT_REJECTED :
		    ERRC_REMOTE_JOB_FAILED, msg);
		free(tail);
		*res = STEP_DONE;
		rc = ACT_END;
	}
	goto cleanup;
ssh:
	rc = act_trouble(t, env, &e, stage, res);
cleanup:
	free(script);
	free(log);
	ssh_error_clear(&e);
	return rc;
}

static enum act
act_put(struct task *t, const struct step_env *env, struct ssh_session *s,
    int64_t idx, int64_t n, const char *src, const char *dst,
    enum step_result *res)
{
	struct xfer_progress p = XFER_PROGRESS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	struct upload_info u;
	char repo[1100], msg[200];
	enum act rc;

	memset(&u, 0, sizeof(u));
	if (uploads_lookup(env->cfg, t->owner, src, &u) != 0) {
		task_fail(t, ERRC_INVALID_PARAMS, "the upload is gone");
		*res = STEP_DONE;
		return ACT_END;
	}
	repo_dir(env->cfg, repo, sizeof(repo));
	p.offset = task_ckpt_int(t, "xfer_off", 0);
	p.total = u.size;
	if (xfer_upload(s, u.path, repo, dst, CHUNK_BYTES, CHUNK_TIMEOUT_MS, &p,
	    &e) < 0) {
		rc = transfer_trouble(t, env, &e, "upload", dst, res);
		goto cleanup;
	}
	task_ckpt_set_int(t, "ssh_retries", 0);
	if (p.done) {
		if (strcmp(p.sha256, u.sha256) != 0) {
			task_fail(t, ERRC_TRANSFER_FAILED,
			    "SHA-256 of the upload changed on the way");
			*res = STEP_DONE;
			rc = ACT_END;
			goto cleanup;
		}
		task_ckpt_set_int(t, "xfer_off", 0);
		rc = ACT_DONE;
		goto cleanup;
	}
	task_ckpt_set_int(t, "xfer_off", p.offset);
	snprintf(msg, sizeof(msg), "uploading %s: %lld of %lld bytes", dst,
	    (long long)p.offset, (long long)u.size);
	task_set_progress(t, (int)idx, (int)n, msg);
	t->next_wake_ms = env->now_ms;
	*res = STEP_WAIT;
	rc = ACT_WAIT;
cleanup:
	uploads_info_clear(&u);
	ssh_error_clear(&e);
	return rc;
}

/* The "asset" action: one registered asset to its place in the
 * checkout, unless the pod has it already; appended to checkpoint
 * "placed" once there. */
static enum act
act_asset(struct task *t, const struct step_env *env, struct ssh_session *s,
    int64_t idx, int64_t n, const char *kind, const char *ex,
    enum step_result *res)
{
	struct xfer_progress p = XFER_PROGRESS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	struct asset_info u;
	json_object *placed, *o;
	char repo[1100], msg[300], have[65];
	bool exists = false, skipped = false;
	enum act rc;

	ex = ex != NULL && ex[0] != '\0' ? ex : NULL;
	if (assets_get(env->cfg, t->owner, kind, ex, &u) != 0) {
		snprintf(msg, sizeof(msg), "asset %s%s%s was deleted while "
		    "being placed (or its record is unreadable)", kind,
		    ex ? "/" : "", ex ? ex : "");
		task_fail(t, ERRC_ASSET_NOT_FOUND, msg);
		*res = STEP_DONE;
		return ACT_END;
	}
	repo_dir(env->cfg, repo, sizeof(repo));
	p.offset = task_ckpt_int(t, "xfer_off", 0);
	p.total = u.size;
	if (p.offset == 0) {
		if (xfer_remote_sha256(s, repo, u.remote_path, CHUNK_TIMEOUT_MS,
		    have, &exists, &e) < 0) {
			rc = transfer_trouble(t, env, &e, "checking",
			    u.remote_path, res);
			goto cleanup;
		}
		skipped = exists && strcmp(have, u.sha256) == 0;
	}
	if (!skipped) {
		if (xfer_upload(s, u.path, repo, u.remote_path, CHUNK_BYTES,
		    CHUNK_TIMEOUT_MS, &p, &e) < 0) {
			rc = transfer_trouble(t, env, &e, "upload",
			    u.remote_path, res);
			goto cleanup;
		}
		task_ckpt_set_int(t, "ssh_retries", 0);
		if (!p.done) {
			task_ckpt_set_int(t, "xfer_off", p.offset);
			snprintf(msg, sizeof(msg), "placing %s: %lld of %lld "
			    "bytes", u.remote_path, (long long)p.offset,
			    (long long)u.size);
			task_set_progress(t, (int)idx, (int)n, msg);
			t->next_wake_ms = env->now_ms;
			*res = STEP_WAIT;
			rc = ACT_WAIT;
			goto cleanup;
		}
		task_ckpt_set_int(t, "xfer_off", 0);
		if (strcmp(p.sha256, u.sha256) != 0) {
			task_fail(t, ERRC_TRANSFER_FAILED, "SHA-256 of the "
			    "asset on the pod is not the registered one");
			*res = STEP_DONE;
			rc = ACT_END;
			goto cleanup;
		}
	}
	placed = ju_arr(t->checkpoint, "placed");
	if (placed == NULL) {
		placed = json_object_new_array();
		json_object_object_add(t->checkpoint, "placed", placed);
	}
	o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string(u.kind));
	if (u.extractor != NULL)
		json_object_object_add(o, "extractor",
		    json_object_new_string(u.extractor));
	json_object_object_add(o, "path",
	    json_object_new_string(u.remote_path));
	json_object_object_add(o, "sha256", json_object_new_string(u.sha256));
	json_object_object_add(o, "skipped",
	    json_object_new_boolean(skipped));
	json_object_array_add(placed, o);
	rc = ACT_DONE;
cleanup:
	assets_info_clear(&u);
	ssh_error_clear(&e);
	return rc;
}

static const char *
mime_of(const char *name)
{
	size_t n = strlen(name);

	if (n > 4 && strcmp(name + n - 4, ".mp4") == 0)
		return "video/mp4";
	if (n > 7 && strcmp(name + n - 7, ".tar.gz") == 0)
		return "application/gzip";
	return "application/octet-stream";
}

static enum act
act_get(struct task *t, const struct step_env *env, struct ssh_session *s,
    int64_t idx, int64_t n, const char *rel, enum step_result *res)
{
	struct xfer_progress p = XFER_PROGRESS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	char repo[1100], msg[300], *dir, *local;
	enum act rc;

	repo_dir(env->cfg, repo, sizeof(repo));
	dir = xasprintf("%s/%s", env->cfg->artifact_dir, t->id);
	local = xasprintf("%s/%s", dir, base);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(msg, sizeof(msg),
		    "cannot make the artifact directory: %s", strerror(errno));
		task_fail(t, ERRC_INTERNAL, msg);
		*res = STEP_DONE;
		rc = ACT_END;
		goto cleanup;
	}
	p.offset = task_ckpt_int(t, "xfer_off", 0);
	if (xfer_download(s, repo, rel, local, CHUNK_BYTES, CHUNK_TIMEOUT_MS,
	    &p, &e) < 0) {
		rc = transfer_trouble(t, env, &e, "download", rel, res);
		goto cleanup;
	}
	task_ckpt_set_int(t, "ssh_retries", 0);
	if (!p.done) {
		task_ckpt_set_int(t, "xfer_off", p.offset);
		snprintf(msg, sizeof(msg), "downloading %s: %lld of %lld bytes",
		    base, (long long)p.offset, (long long)p.total);
		task_set_progress(t, (int)idx, (int)n, msg);
		t->next_wake_ms = env->now_ms;
		*res = STEP_WAIT;
		rc = ACT_WAIT;
		goto cleanup;
	}
	task_ckpt_set_int(t, "xfer_off", 0);
	/* nginx serves it (X-Accel-Redirect) through the agent's group */
	if (chmod(local, 0640) != 0)
		log_kv(LOG_WARN, "artifact_mode", strerror(errno), "task",
		    t->id, NULL);
	{
		json_object *a = json_object_new_object();
		char *uri = xasprintf("%s/artifacts/%s/%s",
		    env->cfg->public_url, t->id, base);
		char aid[128];
		snprintf(aid, sizeof(aid), "%s-%s", t->id, base);
		json_object_object_add(a, "artifactId",
		    json_object_new_string(aid));
		json_object_object_add(a, "name", json_object_new_string(base));
		json_object_object_add(a, "uri", json_object_new_string(uri));
		json_object_object_add(a, "mimeType",
		    json_object_new_string(mime_of(base)));
		json_object_object_add(a, "sha256",
		    json_object_new_string(p.sha256));
		json_object_object_add(a, "size",
		    json_object_new_int64(p.total));
		json_object_array_add(t->artifacts, a);
		free(uri);
	}
	rc = ACT_DONE;
cleanup:
	free(dir);
	free(local);
	ssh_error_clear(&e);
	return rc;
}

/* The "url" action: a remote job that downloads on the pod. */
static enum act
act_url(struct task *t, const struct step_env *env, struct ssh_session *s,
    int64_t idx, int64_t n, const char *url, const char *dst,
    enum step_result *res)
{
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char jid[128], jr[1100], repo[1100], *abs = NULL, *script = NULL;
	enum act rc;

	repo_dir(env->cfg, repo, sizeof(repo));
	jobs_root(env->cfg, t, jr, sizeof(jr));
	job_id(t, idx, "fetch", jid, sizeof(jid));
	if (!task_ckpt_int(t, "started", 0)) {
		abs = xasprintf("%s/%s", repo, dst);
		script = instag_fetch_url_script(url, abs,
		    env->cfg->pod_env_init[0] ? env->cfg->pod_env_init : NULL);
		if (remote_start(s, jr, jid, "/", script, &st, &e) < 0)
			goto ssh;
		task_ckpt_set_int(t, "started", 1);
	} else if (remote_poll(s, jr, jid, &st, &e) < 0)
		goto ssh;
	if (st.state == REMOTE_UNKNOWN) {
		/* recorded as started, never seen by the pod: start again */
		task_ckpt_set_int(t, "started", 0);
		t->next_wake_ms = env->now_ms;
		*res = STEP_WAIT;
		rc = ACT_WAIT;
	} else if (st.state == REMOTE_RUNNING) {
		task_set_progress(t, (int)idx, (int)n,
		    "the pod is downloading");
		t->next_wake_ms = env->now_ms + env->cfg->job_poll_ms;
		*res = STEP_WAIT;
		rc = ACT_WAIT;
	} else if (st.state == REMOTE_EXITED && st.exit_status == 0) {
		/* The download succeeded; its job directory goes only once
		 * the caller has committed that (collect()). */
		task_ckpt_set_int(t, "started", 0);
		rc = ACT_DONE;
	} else {
		char msg[200];
		snprintf(msg, sizeof(msg), "the pod could not download the "
		    "URL (curl status %d)", st.exit_status);
		task_fail(t, ERRC_TRANSFER_FAILED, msg);
		*res = STEP_DONE;
		rc = ACT_END;
	}
	goto cleanup;
ssh:
	rc = act_trouble(t, env, &e, "download on the pod", res);
cleanup:
	free(abs);
	free(script);
	ssh_error_clear(&e);
	return rc;
}

/* ---- the step ------------------------------------------------------------ */

/*
 * What a user does about one entry of setup's "missing" list (tok: a path
 * of the checkout, perhaps with "(note)" after it): {file, kind,
 * extractor?, registered, how}; kind is null for what is no asset
 * (OpenFace, git-lfs: the pod image's business).
 */
static json_object *
missing_asset(const struct task *t, const struct config *cfg, const char *tok)
{
	json_object *o = json_object_new_object();
	char file[512], ex[ASSETS_SLOT_MAX], how[600];
	const char *kind = NULL;
	struct asset_info a;
	bool reg = false;

	snprintf(file, sizeof(file), "%.*s", (int)strcspn(tok, "("), tok);
	json_object_object_add(o, "file", json_object_new_string(file));
	if (!assets_kind_of(file, &kind, ex)) {
		json_object_object_add(o, "kind", NULL);
		json_object_object_add(o, "registered",
		    json_object_new_boolean(false));
		json_object_object_add(o, "how", json_object_new_string(
		    strncmp(file, "OpenFace", 8) == 0 ? "not a file the agent "
		    "places: use a pod image with OpenFace's FeatureExtraction "
		    "on PATH (docs/instag.md)" : "not a file the agent places: "
		    "install it in the pod image (docs/instag.md)"));
		return o;
	}
	if (assets_get(cfg, t->owner, kind, ex[0] ? ex : NULL, &a) == 0)
		reg = true;
	assets_info_clear(&a);
	json_object_object_add(o, "kind", json_object_new_string(kind));
	if (ex[0] != '\0')
		json_object_object_add(o, "extractor",
		    json_object_new_string(ex));
	json_object_object_add(o, "registered", json_object_new_boolean(reg));
	if (reg)
		snprintf(how, sizeof(how), "registered: run "
		    "instag.place_assets with this pod (or instag.pipeline), "
		    "then instag.setup_environment again");
	else
		snprintf(how, sizeof(how), "register it once with "
		    "instag.register_asset {\"kind\":\"%s\"%s%s%s,"
		    "\"upload_id\":\"upload:...\"} (PUT /uploads first) or "
		    "{..., \"url\":\"https://...\"}, then run "
		    "instag.place_assets or instag.pipeline", kind,
		    ex[0] ? ",\"extractor\":\"" : "", ex,
		    ex[0] ? "\"" : "");
	json_object_object_add(o, "how", json_object_new_string(how));
	return o;
}

static json_object *
result_of(const struct task *t, const struct config *cfg)
{
	json_object *r = json_object_new_object(), *notes;
	const char *id = ju_str(t->params, "subject");
	const char *name = ju_str(t->params, "output_name");
	char repo[1100], buf[1400], an[32], u[INSTAG_OWNER_DIR_LEN];

	repo_dir(cfg, repo, sizeof(repo));
	instag_owner_dir(t->owner, u);
	json_object_object_add(r, "instag_dir", json_object_new_string(repo));
	if (id != NULL) {
		json_object_object_add(r, "subject",
		    json_object_new_string(id));
		snprintf(buf, sizeof(buf), "data/%s/%s", u, id);
		json_object_object_add(r, "data_dir",
		    json_object_new_string(buf));
	}
	if (strcmp(t->operation, "instag.train") == 0 ||
	    strcmp(t->operation, "instag.synthesize") == 0) {
		snprintf(buf, sizeof(buf), "output/%s/%s", u,
		    name ? name : id);
		json_object_object_add(r, "model_dir",
		    json_object_new_string(buf));
	}
	if (strcmp(t->operation, "instag.synthesize") == 0) {
		audio_name(t, an, sizeof(an));
		snprintf(buf, sizeof(buf), "output/%s/%s/talking_head_%s.mp4",
		    u, name ? name : id, an);
		json_object_object_add(r, "video", json_object_new_string(buf));
	}
	if (strcmp(t->operation, "instag.setup_environment") == 0) {
		json_object *missing = json_object_new_array();
		json_object *massets = json_object_new_array();
		bool ready = false;
		size_t i;
		notes = ju_arr(t->checkpoint, "notes");
		for (i = 0; notes && i < json_object_array_length(notes); i++) {
			const char *l = json_object_get_string(
			    json_object_array_get_idx(notes, i));
			if (strncmp(l, "ready", 5) == 0)
				ready = true;
			if (strncmp(l, "missing", 7) == 0) {
				char *m = xstrdup(l + 8), *tok, *sv = NULL;
				for (tok = strtok_r(m, " ", &sv); tok;
				    tok = strtok_r(NULL, " ", &sv)) {
					json_object_array_add(missing,
					    json_object_new_string(tok));
					json_object_array_add(massets,
					    missing_asset(t, cfg, tok));
				}
				free(m);
			}
		}
		{
			json_object *ex = json_object_new_array();
			for (i = 0; notes &&
			    i < json_object_array_length(notes); i++) {
				const char *l = json_object_get_string(
				    json_object_array_get_idx(notes, i));
				if (strncmp(l, "extractor: ", 11) == 0)
					json_object_array_add(ex,
					    json_object_new_string(l + 11));
			}
			/* the extractors whose pre-training checkpoints are
			 * in place: instag.train can use them */
			json_object_object_add(r, "extractors", ex);
		}
		json_object_object_add(r, "commit",
		    json_object_new_string(cfg->instag_commit));
		json_object_object_add(r, "ready",
		    json_object_new_boolean(ready));
		json_object_object_add(r, "missing", missing);
		json_object_object_add(r, "missing_assets", massets);
		if (notes != NULL && json_object_array_length(notes) > 0 &&
		    strstr(json_object_get_string(json_object_array_get_idx(
		    notes, 0)), "already set up"))
			json_object_object_add(r, "already_set_up",
			    json_object_new_boolean(true));
	}
	if (strcmp(t->operation, "instag.place_assets") == 0) {
		json_object *pl = ju_arr(t->checkpoint, "placed");
		json_object_object_add(r, "placed", pl ? ju_copy(pl) :
		    json_object_new_array());
	}
	if (json_object_array_length(t->artifacts) > 0)
		json_object_object_add(r, "artifacts", ju_copy(t->artifacts));
	return r;
}

/* The remote job of plan action a (number idx) into buf: false for the
 * actions without one (put, get). */
static bool
action_job(const struct task *t, int64_t idx, json_object *a, char *buf,
    size_t len)
{
	const char *kind = ju_str(a, "kind");

	if (kind == NULL)
		return false;
	if (strcmp(kind, "url") == 0)
		job_id(t, idx, "fetch", buf, len);
	else if (strcmp(kind, "job") == 0)
		job_id(t, idx, ju_str(a, "a"), buf, len);
	else
		return false;
	return true;
}

/*
 * Remove the job directory that checkpoint key "gc" names: that of a job
 * whose success the same checkpoint records (the next action's index).
 * The directory is the only evidence that the job ran, so the record is
 * committed first; when that fails nothing is removed and the step waits
 * (*res, -1).  After a crash the next step finds "gc" and finishes the
 * work; removing twice is harmless.  A failed removal is only logged.
 */
static int
collect(struct task *t, const struct step_env *env, struct ssh_session *s,
    enum step_result *res)
{
	struct ssh_error e = SSH_ERROR_INIT;
	const char *jid = task_ckpt_str(t, "gc");
	char jr[1100], *err = NULL;

	if (jid == NULL)
		return 0;
	if (env->checkpoint(env, t, &err) < 0) {
		log_kv(LOG_WARN, "checkpoint_failed", err ? err :
		    "cannot commit the task", "task", t->id, "job", jid, NULL);
		free(err);
		t->next_wake_ms = env->now_ms + COMMIT_RETRY_MS;
		*res = STEP_WAIT;
		return -1;
	}
	jobs_root(env->cfg, t, jr, sizeof(jr));
	if (remote_cleanup(s, jr, jid, &e) < 0)
		log_kv(LOG_WARN, "cleanup_failed", e.message ?
		    e.message : "remote_cleanup failed", "task", t->id,
		    "job", jid, NULL);
	ssh_error_clear(&e);
	task_ckpt_set_str(t, "gc", NULL);
	return 0;
}

/* After fetch's pack job: one "get" per "[agent] file: X" line. */
static void
add_gets(struct task *t, json_object *plan)
{
	json_object *notes = ju_arr(t->checkpoint, "notes");
	size_t i;

	for (i = 0; notes && i < json_object_array_length(notes); i++) {
		const char *l = json_object_get_string(
		    json_object_array_get_idx(notes, i));
		if (strncmp(l, "file: ", 6) == 0 && xfer_path_ok(l + 6, NULL))
			plan_add(plan, "get", l + 6, NULL);
	}
}

enum step_result
iops_step(struct task *t, const struct step_env *env)
{
	struct target x;
	struct ssh_session *s = NULL;
	struct ssh_error e = SSH_ERROR_INIT;
	json_object *plan = ju_arr(t->checkpoint, "plan"), *a;
	const char *code = NULL, *kind;
	char *why = NULL, jid[128];
	enum step_result res = STEP_WAIT;
	int64_t idx, n;
	enum act r;

	maybe_maintain(env->now_ms);
	if (plan == NULL) {
		plan = make_plan(t);
		if (strcmp(t->operation, "instag.place_assets") == 0 &&
		    !place_host_ok(env->cfg, t->owner, t->params)) {
			char msg[400];
			json_object_put(plan);
			snprintf(msg, sizeof(msg), SHARED_HOST_MSG,
			    ju_str(t->params, "host"));
			task_fail(t, ERRC_HOST_NOT_ALLOWED, msg);
			return STEP_DONE;
		}
		if (strcmp(t->operation, "instag.place_assets") == 0 &&
		    plan_assets(t, env->cfg, plan, &why) < 0) {
			log_kv(LOG_ERROR, "asset_list_failed", why, "task",
			    t->id, NULL);
			free(why);
			json_object_put(plan);
			task_fail(t, ERRC_INTERNAL, "cannot read your assets");
			return STEP_DONE;
		}
		json_object_object_add(t->checkpoint, "plan", plan);
	}
	idx = task_ckpt_int(t, "action", 0);
	n = (int64_t)json_object_array_length(plan);
	if (target_resolve(env->cfg, t->owner, t->params, &x, &code,
	    &why) < 0) {
		if (idx >= n) {
			/* all done; only a cleanup was left (below) */
			free(why);
			goto finish;
		}
		task_fail(t, code, why);
		free(why);
		return STEP_DONE;
	}
	if (ssh_pool_get(POOL, &x.tg, &s, &e) < 0) {
		if (idx >= n)
			goto finish;
		res = ssh_trouble(t, env, &e, "connecting");
		goto cleanup;
	}
	/* a crash may have come between an action's record and its
	 * cleanup */
	if (collect(t, env, s, &res) < 0)
		goto cleanup;
	if (idx >= n)
		goto finish;
	a = json_object_array_get_idx(plan, (size_t)idx);
	kind = ju_str(a, "kind");
	if (strcmp(kind, "job") == 0)
		r = act_job(t, env, s, idx, n, ju_str(a, "a"), &res);
	else if (strcmp(kind, "put") == 0)
		r = act_put(t, env, s, idx, n, ju_str(a, "a"), ju_str(a, "b"),
		    &res);
	else if (strcmp(kind, "url") == 0)
		r = act_url(t, env, s, idx, n, ju_str(a, "a"), ju_str(a, "b"),
		    &res);
	else if (strcmp(kind, "asset") == 0)
		r = act_asset(t, env, s, idx, n, ju_str(a, "a"),
		    ju_str(a, "b"), &res);
	else
		r = act_get(t, env, s, idx, n, ju_str(a, "a"), &res);
	if (r != ACT_DONE)
		goto cleanup;
	/* Record the outcome (the next action, and the job directory to
	 * remove), commit it, and only then remove the directory. */
	if (strcmp(kind, "job") == 0 && strcmp(ju_str(a, "a"), "pack") == 0)
		add_gets(t, plan);
	if (action_job(t, idx, a, jid, sizeof(jid)))
		task_ckpt_set_str(t, "gc", jid);
	idx++;
	task_ckpt_set_int(t, "action", idx);
	n = (int64_t)json_object_array_length(plan);
	if (collect(t, env, s, &res) < 0)
		goto cleanup;
	if (idx < n) {
		t->next_wake_ms = env->now_ms;
		res = STEP_WAIT;
		goto cleanup;
	}
finish:
	if (task_ckpt_str(t, "gc") != NULL) {
		log_kv(LOG_WARN, "cleanup_failed", "the pod cannot be reached: "
		    "a job directory is left behind", "task", t->id, "job",
		    task_ckpt_str(t, "gc"), NULL);
		task_ckpt_set_str(t, "gc", NULL);
	}
	task_set_progress(t, (int)n, (int)n, "done");
	task_complete(t, result_of(t, env->cfg));
	res = STEP_DONE;
cleanup:
	if (s != NULL)
		ssh_pool_put(POOL, s, false);
	ssh_error_clear(&e);
	target_clear(&x);
	return res;
}

/* The job whose log instag.logs reads: the current action's when it was
 * started (running, or the task ended on it), into jid; 1 when there is
 * one, 0 when the last job finished (its name in jid), -1 when none ran. */
static int
log_job(const struct task *t, char *jid, size_t len)
{
	json_object *plan = ju_arr(t->checkpoint, "plan");
	int64_t idx = task_ckpt_int(t, "action", 0), n, j;

	n = plan ? (int64_t)json_object_array_length(plan) : 0;
	if (idx < n && task_ckpt_int(t, "started", 0) &&
	    action_job(t, idx, json_object_array_get_idx(plan, (size_t)idx),
	    jid, len))
		return 1;
	for (j = (idx < n ? idx : n) - 1; j >= 0; j--)
		if (action_job(t, j, json_object_array_get_idx(plan,
		    (size_t)j), jid, len))
			return 0;
	return -1;
}

#define LOG_GONE_MSG "job %s succeeded and its directory on the pod, " \
	"with its log, was removed; the task's progress.log_tail keeps its " \
	"last lines"

int
iops_read_log(const struct config *cfg, const struct task *t,
    int64_t offset, int64_t limit, json_object **result,
    struct op_error *oe)
{
	struct target x;
	struct ssh_session *s = NULL;
	struct ssh_error e = SSH_ERROR_INIT;
	struct remote_status st = REMOTE_STATUS_INIT;
	const char *code = NULL, *nl;
	char jid[128], jr[1100], *why = NULL, *data = NULL, *text;
	size_t len = 0, keep;
	json_object *r;
	int rc = -1, which = log_job(t, jid, sizeof(jid));

	*result = NULL;
	if (which < 0) {
		op_error_set(oe, ERRC_NO_LOG, "task %s has not started a "
		    "remote job yet", t->id);
		return -1;
	}
	if (which == 0) {
		op_error_set(oe, ERRC_LOG_GONE, LOG_GONE_MSG, jid);
		return -1;
	}
	if (target_resolve(cfg, t->owner, t->params, &x, &code, &why) < 0) {
		op_error_set(oe, code, "%s", why);
		free(why);
		return -1;
	}
	jobs_root(cfg, t, jr, sizeof(jr));
	if (ssh_pool_get(POOL, &x.tg, &s, &e) < 0 ||
	    remote_poll(s, jr, jid, &st, &e) < 0)
		goto ssh;
	if (st.state == REMOTE_UNKNOWN) {
		op_error_set(oe, ERRC_LOG_GONE, "job %s is not on the pod "
		    "(not started yet, or removed)", jid);
		goto cleanup;
	}
	if (offset < st.log_size && remote_read_log(s, jr, jid, offset,
	    (size_t)limit, &data, &len, &e) < 0)
		goto ssh;
	keep = len;
	/* more follows: end at the last whole line, so that a line (and a
	 * secret in it) is not split across reads */
	if (len > 0 && offset + (int64_t)len < st.log_size &&
	    data[len - 1] != '\n') {
		for (nl = data + len; nl > data && nl[-1] != '\n'; nl--)
			;
		if (nl > data)
			keep = (size_t)(nl - data);
	}
	text = instag_log_text(data ? data : "", keep, SECRET);
	r = json_object_new_object();
	json_object_object_add(r, "task_id", json_object_new_string(t->id));
	json_object_object_add(r, "job", json_object_new_string(jid));
	json_object_object_add(r, "offset", json_object_new_int64(offset));
	json_object_object_add(r, "next_offset",
	    json_object_new_int64(offset + (int64_t)keep));
	json_object_object_add(r, "size", json_object_new_int64(st.log_size));
	json_object_object_add(r, "eof", json_object_new_boolean(
	    st.state != REMOTE_RUNNING &&
	    offset + (int64_t)keep >= st.log_size));
	json_object_object_add(r, "text", json_object_new_string(text));
	free(text);
	*result = r;
	rc = 0;
	goto cleanup;
ssh:
	op_error_set(oe, e.kind == SSH_ERR_HOSTKEY ? ERRC_HOST_KEY_CHANGED :
	    e.kind == SSH_ERR_AUTH ? ERRC_SSH_AUTH :
	    e.kind == SSH_ERR_PROTOCOL ? ERRC_REMOTE : ERRC_POD_UNREACHABLE,
	    "reading the log of job %s: %s", jid,
	    e.message ? e.message : "ssh failed");
cleanup:
	if (s != NULL)
		ssh_pool_put(POOL, s, false);
	free(data);
	ssh_error_clear(&e);
	target_clear(&x);
	return rc;
}

enum step_result
iops_cancel(struct task *t, const struct step_env *env)
{
	struct target x;
	struct ssh_session *s = NULL;
	struct ssh_error e = SSH_ERROR_INIT;
	json_object *plan = ju_arr(t->checkpoint, "plan"), *a;
	const char *code = NULL;
	char *why = NULL, jid[128], jr[1100];
	int64_t idx = task_ckpt_int(t, "action", 0);

	if (plan == NULL || !task_ckpt_int(t, "started", 0))
		return STEP_DONE;
	if (target_resolve(env->cfg, t->owner, t->params, &x, &code,
	    &why) < 0) {
		free(why);
		return STEP_DONE;
	}
	a = json_object_array_get_idx(plan, (size_t)idx);
	if (!action_job(t, idx, a, jid, sizeof(jid))) {
		target_clear(&x);
		return STEP_DONE;
	}
	jobs_root(env->cfg, t, jr, sizeof(jr));
	if (ssh_pool_get(POOL, &x.tg, &s, &e) == 0) {
		if (remote_cancel(s, jr, jid, 5, &e) < 0)
			log_kv(LOG_WARN, "cancel_failed", e.message ?
			    e.message : "remote_cancel failed", "task", t->id,
			    NULL);
		ssh_pool_put(POOL, s, false);
	}
	ssh_error_clear(&e);
	target_clear(&x);
	return STEP_DONE;
}

void
iops_metrics(struct strbuf *sb)
{
	struct ssh_pool_stats ss;

	iops_pool_stats(&ss);
	sb_addf(sb, "# HELP instag_agent_ssh_sessions Pooled SSH sessions "
	    "to pods.\n# TYPE instag_agent_ssh_sessions gauge\n"
	    "instag_agent_ssh_sessions{state=\"idle\"} %d\n"
	    "instag_agent_ssh_sessions{state=\"busy\"} %d\n"
	    "# TYPE instag_agent_ssh_sessions_opened_total counter\n"
	    "instag_agent_ssh_sessions_opened_total %lu\n"
	    "# TYPE instag_agent_ssh_sessions_reused_total counter\n"
	    "instag_agent_ssh_sessions_reused_total %lu\n"
	    "# TYPE instag_agent_ssh_sessions_dropped_total counter\n"
	    "instag_agent_ssh_sessions_dropped_total %lu\n",
	    ss.idle, ss.busy, ss.opened, ss.reused, ss.dropped);
}
