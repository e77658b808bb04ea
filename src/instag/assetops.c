/* SPDX-License-Identifier: MIT */
/* assetops: registering, listing and deleting licensed InsTaG files; see
 * assetops.h. */
#include "auto-config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http/outbound.h"
#include "instag/assetops.h"
#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "lib/xalloc.h"
#include "store/assets.h"
#include "store/uploads.h"

#define NET_RETRIES 10		/* failed connections before giving up */
#define RESTARTS_MAX 3		/* downloads started over (no ranges) */
#define RETRY_MAX_MS 60000

/* ---- params -------------------------------------------------------------- */

static bool
upload_id_ok(const char *s)
{
	if (strncmp(s, UPLOADS_ID_PREFIX, strlen(UPLOADS_ID_PREFIX)) == 0)
		s += strlen(UPLOADS_ID_PREFIX);
	return uuid_valid(s);
}

int
assetops_validate_kind(json_object *params, const struct config *cfg,
    char **err)
{
	char slot[ASSETS_SLOT_MAX];
	const char *why;

	(void)cfg;
	if (assets_slot(ju_str(params, "kind"), ju_str(params, "extractor"),
	    slot, &why) < 0) {
		*err = xasprintf("params.kind/params.extractor: %s", why);
		return -1;
	}
	return 0;
}

int
assetops_validate_register(json_object *params, const struct config *cfg,
    char **err)
{
	const char *up = ju_str(params, "upload_id"), *url = ju_str(params,
	    "url"), *sha = ju_str(params, "sha256");
	size_t i;

	if (assetops_validate_kind(params, cfg, err) < 0)
		return -1;
	if (!!up == !!url) {
		*err = xstrdup("give exactly one of params.upload_id (from PUT "
		    "/uploads) or params.url (an https:// URL)");
		return -1;
	}
	if (up != NULL && !upload_id_ok(up)) {
		*err = xstrdup("params.upload_id must be an upload id "
		    "(upload:<uuid>, as PUT /uploads answers)");
		return -1;
	}
	if (url != NULL && (strncmp(url, "https://", 8) != 0 ||
	    strlen(url) > OUTBOUND_URL_MAX || strpbrk(url, " \t") != NULL)) {
		*err = xstrdup("params.url must be an https:// URL of at most "
		    "2048 characters without spaces (the agent downloads over "
		    "TLS only)");
		return -1;
	}
	if (sha != NULL) {
		for (i = 0; sha[i] && isxdigit((unsigned char)sha[i]); i++)
			;
		if (i != 64 || sha[i] != '\0') {
			*err = xstrdup("params.sha256 must be 64 hex digits");
			return -1;
		}
		{
			char low[65];
			for (i = 0; i < 64; i++)
				low[i] = (char)tolower((unsigned char)sha[i]);
			low[64] = '\0';
			json_object_object_add(params, "sha256",
			    json_object_new_string(low));
		}
	}
	return 0;
}

int
assetops_admit_register(const struct op_ctx *c, json_object *params,
    struct op_error *e)
{
	const char *up = ju_str(params, "upload_id");
	struct upload_info u;

	if (up == NULL)
		return 0;
	memset(&u, 0, sizeof(u));
	if (uploads_lookup(c->cfg, c->who->sub, up, &u) != 0) {
		op_error_set(e, ERRC_INVALID_PARAMS, "params.upload_id: no "
		    "upload '%.64s' of yours", up);
		return -1;
	}
	uploads_info_clear(&u);
	return 0;
}

/* ---- registering --------------------------------------------------------- */

static json_object *
register_result(const struct asset_info *a, int replaced)
{
	json_object *r = assets_info_json(a);

	if (replaced >= 0)
		json_object_object_add(r, "replaced",
		    json_object_new_boolean(replaced));
	return r;
}

/* The internal failure of a registration: the detail to the log only (it
 * names paths). */
static enum step_result
fail_internal(struct task *t, const char *what, char *err)
{
	log_kv(LOG_ERROR, "asset_register_failed", err ? err : what, "task",
	    t->id, NULL);
	free(err);
	task_fail(t, ERRC_INTERNAL, what);
	return STEP_DONE;
}

static enum step_result
from_upload(struct task *t, const struct step_env *env)
{
	struct asset_info a;
	bool replaced = false;
	char *err = NULL;
	int rc;

	rc = assets_from_upload(env->cfg, t->owner, ju_str(t->params, "kind"),
	    ju_str(t->params, "extractor"), ju_str(t->params, "upload_id"),
	    ju_str(t->params, "sha256"), t->id, &a, &replaced, &err);
	if (rc == 1) {
		task_fail(t, ERRC_INVALID_PARAMS,
		    "params.upload_id: the upload is gone");
		return STEP_DONE;
	}
	if (rc == 2) {
		task_fail(t, ERRC_INPUT_REJECTED, "the upload's SHA-256 is not "
		    "params.sha256");
		return STEP_DONE;
	}
	if (rc < 0)
		return fail_internal(t, "cannot register the asset (see the "
		    "agent's log)", err);
	task_complete(t, register_result(&a, replaced));
	assets_info_clear(&a);
	return STEP_DONE;
}

/* One download step's state. */
struct dl {
	CURL *h;
	int fd;
	int64_t offset;		/* bytes in the file */
	int64_t got;		/* this step */
	int64_t deadline;	/* CLOCK_MONOTONIC ms */
	bool checked;		/* the response code was looked at */
	bool paused;		/* stopped at the step's bounds */
	bool too_big;
	int werr;		/* errno of a failed write */
};

static size_t
dl_write(char *p, size_t sz, size_t nm, void *arg)
{
	struct dl *d = arg;
	size_t n = sz * nm, done = 0;
	ssize_t w;

	if (!d->checked) {
		long code = 0;
		curl_off_t cl = -1;
		d->checked = true;
		curl_easy_getinfo(d->h, CURLINFO_RESPONSE_CODE, &code);
		if (code != 200 && code != 206)
			return 0;	/* an error page: not the file */
		if (code == 200 && d->offset > 0) {
			/* the whole file again: start over */
			if (ftruncate(d->fd, 0) != 0) {
				d->werr = errno;
				return 0;
			}
			d->offset = 0;
		}
		curl_easy_getinfo(d->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
		    &cl);
		if (cl > 0 && d->offset + (int64_t)cl > ASSETS_MAX_BYTES) {
			d->too_big = true;
			return 0;
		}
	}
	if (d->offset + (int64_t)n > ASSETS_MAX_BYTES) {
		d->too_big = true;
		return 0;
	}
	while (done < n) {
		w = pwrite(d->fd, p + done, n - done, (off_t)(d->offset +
		    (int64_t)done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			d->werr = w < 0 ? errno : EIO;
			return 0;
		}
		done += (size_t)w;
	}
	d->offset += (int64_t)n;
	d->got += (int64_t)n;
	return n;
}

static int
dl_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct dl *d = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	if (d->got >= ASSETOPS_STEP_BYTES || clock_mono_ms() >= d->deadline) {
		d->paused = true;
		return 1;
	}
	return 0;
}

/* Wait and try again (a network failure, a restart), or fail when that
 * happened too often. */
static enum step_result
again(struct task *t, const struct step_env *env, const char *key, int max,
    const char *why)
{
	int64_t n = task_ckpt_int(t, key, 0) + 1;
	char msg[300];

	if (n > max) {
		snprintf(msg, sizeof(msg), "downloading the asset failed: %s",
		    why);
		task_fail(t, ERRC_TRANSFER_FAILED, msg);
		return STEP_DONE;
	}
	task_ckpt_set_int(t, key, n);
	snprintf(msg, sizeof(msg), "download: %s; retry %lld", why,
	    (long long)n);
	task_ckpt_set_str(t, "waiting_for", msg);
	t->next_wake_ms = env->now_ms + backoff_ms(1000, RETRY_MAX_MS,
	    (int)n);
	return STEP_WAIT;
}

/* The file is whole: hash it, check it, register it. */
static enum step_result
download_done(struct task *t, const struct step_env *env, const char *tmp,
    const char *host)
{
	const char *want = ju_str(t->params, "sha256");
	struct asset_info a;
	char hex[65], *err = NULL, *src;
	bool replaced = false;
	int64_t size = 0;
	int rc;

	if (assets_hash_file(tmp, hex, &size, &err) < 0) {
		(void)unlink(tmp);
		return fail_internal(t, "cannot read the downloaded file", err);
	}
	if (size == 0 || (want != NULL && strcmp(want, hex) != 0)) {
		(void)unlink(tmp);
		task_fail(t, ERRC_INPUT_REJECTED, size == 0 ? "the URL's file "
		    "is empty" : "the downloaded file's SHA-256 is not "
		    "params.sha256");
		return STEP_DONE;
	}
	src = xasprintf("url:%s", host);
	rc = assets_commit(env->cfg, t->owner, ju_str(t->params, "kind"),
	    ju_str(t->params, "extractor"), tmp, hex, size, src, t->id, &a,
	    &replaced, &err);
	free(src);
	if (rc < 0)
		return fail_internal(t, "cannot register the asset (see the "
		    "agent's log)", err);
	task_complete(t, register_result(&a, replaced));
	assets_info_clear(&a);
	return STEP_DONE;
}

static enum step_result
from_url(struct task *t, const struct step_env *env)
{
	const char *url = ju_str(t->params, "url");
	struct outbound_target tg;
	struct curl_slist *rl = NULL;
	struct dl d;
	struct stat st;
	char *tmp = NULL, *err = NULL, msg[200];
	enum step_result res = STEP_DONE;
	CURLcode cc;
	long code = 0;

	memset(&d, 0, sizeof(d));
	d.fd = -1;
	if (outbound_check_url(env->cfg, url, &tg, &err) < 0) {
		snprintf(msg, sizeof(msg), "params.url is refused: %.150s",
		    err);
		free(err);
		task_fail(t, ERRC_INVALID_PARAMS, msg);
		return STEP_DONE;
	}
	if (assets_tmp_path(env->cfg, t->owner, t->id, &tmp, &err) < 0)
		return fail_internal(t, "cannot store the download", err);
	d.fd = open(tmp, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (d.fd < 0 || fstat(d.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		res = fail_internal(t, "cannot store the download",
		    xasprintf("open %s: %s", tmp, strerror(errno)));
		goto cleanup;
	}
	/* what an earlier step (or run of the agent) left: resume there */
	d.offset = (int64_t)st.st_size;
	d.deadline = clock_mono_ms() + ASSETOPS_STEP_MS;
	d.h = curl_easy_init();
	if (d.h == NULL) {
		res = fail_internal(t, "cannot download", NULL);
		goto cleanup;
	}
	curl_easy_setopt(d.h, CURLOPT_URL, url);
	outbound_curl_setup(env->cfg, d.h, &tg, ASSETOPS_STEP_MS / 1000 + 30,
	    &rl);
	curl_easy_setopt(d.h, CURLOPT_WRITEFUNCTION, dl_write);
	curl_easy_setopt(d.h, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(d.h, CURLOPT_XFERINFOFUNCTION, dl_progress);
	curl_easy_setopt(d.h, CURLOPT_XFERINFODATA, &d);
	curl_easy_setopt(d.h, CURLOPT_NOPROGRESS, 0L);
	if (d.offset > 0)
		curl_easy_setopt(d.h, CURLOPT_RESUME_FROM_LARGE,
		    (curl_off_t)d.offset);
	cc = curl_easy_perform(d.h);
	curl_easy_getinfo(d.h, CURLINFO_RESPONSE_CODE, &code);
	if (d.werr != 0) {
		res = fail_internal(t, "cannot store the download",
		    xasprintf("write %s: %s", tmp, strerror(d.werr)));
		(void)unlink(tmp);
	} else if (d.too_big) {
		(void)unlink(tmp);
		task_fail(t, ERRC_INPUT_REJECTED, "the URL's file is larger "
		    "than an asset may be (8 GiB)");
	} else if (cc == CURLE_ABORTED_BY_CALLBACK && d.paused) {
		task_ckpt_set_int(t, "net_retries", 0);
		snprintf(msg, sizeof(msg), "downloading: %lld bytes",
		    (long long)d.offset);
		task_set_progress(t, 0, 1, msg);
		t->next_wake_ms = env->now_ms;
		res = STEP_WAIT;
	} else if (cc == CURLE_RANGE_ERROR || code == 416) {
		/* the server cannot resume here: from the start */
		if (ftruncate(d.fd, 0) != 0)
			(void)unlink(tmp);
		res = again(t, env, "restarts", RESTARTS_MAX, "the server "
		    "does not resume downloads (no byte ranges)");
		if (res == STEP_DONE)
			(void)unlink(tmp);
	} else if (code >= 300 || (cc == CURLE_WRITE_ERROR && code != 0 &&
	    code != 200 && code != 206)) {
		snprintf(msg, sizeof(msg), "the URL answered HTTP %ld", code);
		(void)unlink(tmp);
		task_fail(t, code == 404 || code == 410 || code == 403 ||
		    code == 401 ? ERRC_INPUT_REJECTED : ERRC_TRANSFER_FAILED,
		    msg);
	} else if (cc != CURLE_OK) {
		res = again(t, env, "net_retries", NET_RETRIES,
		    curl_easy_strerror(cc));
		if (res == STEP_DONE)
			(void)unlink(tmp);
	} else if (fsync(d.fd) != 0) {
		res = fail_internal(t, "cannot store the download",
		    xasprintf("fsync %s: %s", tmp, strerror(errno)));
		(void)unlink(tmp);
	} else {
		close(d.fd);
		d.fd = -1;
		res = download_done(t, env, tmp, tg.host);
	}
cleanup:
	if (d.fd >= 0)
		close(d.fd);
	if (d.h != NULL)
		curl_easy_cleanup(d.h);
	curl_slist_free_all(rl);
	free(tmp);
	return res;
}

enum step_result
assetops_register_step(struct task *t, const struct step_env *env)
{
	struct asset_info a;

	/* A crash after the commit and before the task's: done already. */
	if (assets_get(env->cfg, t->owner, ju_str(t->params, "kind"),
	    ju_str(t->params, "extractor"), &a) == 0) {
		bool mine = strcmp(a.task_id, t->id) == 0;
		if (mine)
			task_complete(t, register_result(&a, -1));
		assets_info_clear(&a);
		if (mine)
			return STEP_DONE;
	}
	if (ju_str(t->params, "upload_id") != NULL)
		return from_upload(t, env);
	return from_url(t, env);
}

enum step_result
assetops_register_cancel(struct task *t, const struct step_env *env)
{
	char *tmp = NULL, *err = NULL;

	if (assets_tmp_path(env->cfg, t->owner, t->id, &tmp, &err) == 0)
		(void)unlink(tmp);
	free(err);
	free(tmp);
	return STEP_DONE;
}

/* ---- list and delete ----------------------------------------------------- */

int
assetops_list(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	struct asset_info *list = NULL;
	json_object *arr;
	char *err = NULL;
	size_t n = 0, i;

	(void)params;
	if (assets_list(c->cfg, c->who->sub, &list, &n, &err) < 0) {
		log_kv(LOG_ERROR, "asset_list_failed", err, NULL);
		free(err);
		op_error_set(e, ERRC_INTERNAL, "cannot read your assets");
		return -1;
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(arr, assets_info_json(&list[i]));
	assets_list_free(list, n);
	*result = json_object_new_object();
	json_object_object_add(*result, "assets", arr);
	return 0;
}

int
assetops_delete(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *e)
{
	const char *kind = ju_str(params, "kind"), *ex = ju_str(params,
	    "extractor");
	char *err = NULL;
	int rc = assets_delete(c->cfg, c->who->sub, kind, ex, &err);

	if (rc < 0) {
		log_kv(LOG_ERROR, "asset_delete_failed", err, NULL);
		free(err);
		op_error_set(e, ERRC_INTERNAL, "cannot delete the asset");
		return -1;
	}
	if (rc == 1) {
		op_error_set(e, ERRC_ASSET_NOT_FOUND,
		    "you have no asset %s%s%s registered", kind,
		    ex ? " for extractor " : "", ex ? ex : "");
		return -1;
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "deleted", json_object_new_boolean(1));
	json_object_object_add(*result, "kind", json_object_new_string(kind));
	if (ex != NULL)
		json_object_object_add(*result, "extractor",
		    json_object_new_string(ex));
	return 0;
}
