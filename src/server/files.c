/* SPDX-License-Identifier: MIT */
/*
 * files: the two routes that move files (see files.h).
 */
#include "auto-config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/principal.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "server/files.h"
#include "store/uploads.h"
#include "tasks/tasks.h"

static bool
safe_name(const char *s, size_t max)
{
	size_t n = 0;

	if (s[0] == '.' || s[0] == '\0')
		return false;
	for (; *s; s++, n++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr("._-", *s))
			return false;
	return n <= max;
}

/* GET /artifacts/{task}/{file}: authorise, then let nginx send it. */
void
files_artifact(struct http_req *r, const struct config *cfg)
{
	char task_id[UUID_STR_LEN], file[129], hdr[512];
	const char *p = r->path + strlen("/artifacts/"), *slash;
	struct task *t = NULL;
	struct stat stt;
	char *path;

	if (!principal_has_scope(&r->who, "tasks:read")) {
		http_error(r, 403, "insufficient_scope", "this route needs "
		    "scope tasks:read", "WWW-Authenticate: Bearer "
		    "error=\"insufficient_scope\", scope=\"tasks:read\"\r\n");
		return;
	}
	slash = strchr(p, '/');
	if (slash == NULL || (size_t)(slash - p) != 36 ||
	    strlen(slash + 1) >= sizeof(file) || !safe_name(slash + 1, 128)) {
		http_error(r, 404, "not_found", "no such artifact", NULL);
		return;
	}
	memcpy(task_id, p, 36);
	task_id[36] = '\0';
	snprintf(file, sizeof(file), "%s", slash + 1);
	if (tasks_get(task_id, r->who.sub, &t) != 0) {
		http_error(r, 404, "not_found", "no such artifact", NULL);
		return;
	}
	task_free(t);
	path = xasprintf("%s/%s/%s", cfg->artifact_dir, task_id, file);
	if (stat(path, &stt) != 0 || !S_ISREG(stt.st_mode)) {
		free(path);
		http_error(r, 404, "not_found", "no such artifact", NULL);
		return;
	}
	free(path);
	snprintf(hdr, sizeof(hdr), "X-Accel-Redirect: %s/_artifacts/%s/%s\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n",
	    cfg->base_path, task_id, file, file);
	http_respond(r, 200, "application/octet-stream", hdr, NULL, 0);
}

/* nginx names its client body temporary files with ten or more digits. */
static bool
nginx_temp_name(const char *path)
{
	const char *b = strrchr(path, '/');
	size_t n;

	if (b == NULL)
		return false;
	n = strspn(++b, "0123456789");
	return n >= 10 && b[n] == '\0';
}

/*
 * PUT /uploads/{name}: nginx has written the body to a temporary file
 * (INSTAG_UPLOAD_FILE); adopt it.  The agent never reads this body from
 * FastCGI, so a request that did not come through nginx's uploads location
 * is refused.
 */
void
files_upload(struct http_req *r, const struct config *cfg)
{
	const char *name = r->path + strlen("/uploads/");
	const char *file = http_param(r, "INSTAG_UPLOAD_FILE");
	const char *cl = http_param(r, "CONTENT_LENGTH");
	struct upload_info u;
	struct stat st;
	json_object *o;
	char *err = NULL, size[32];

	if (!principal_has_scope(&r->who, "instag:run")) {
		http_error(r, 403, "insufficient_scope", "this route needs "
		    "scope instag:run", "WWW-Authenticate: Bearer "
		    "error=\"insufficient_scope\", scope=\"instag:run\"\r\n");
		return;
	}
	if (!uploads_name_valid(name)) {
		http_error(r, 400, "bad_name",
		    "the upload name must be 1 to 128 characters of A-Z a-z "
		    "0-9 . _ - and start with neither '.' nor '-'", NULL);
		return;
	}
	if (file == NULL || file[0] == '\0') {
		if (cl == NULL || cl[0] == '\0')
			http_error(r, 411, "length_required", "send the file "
			    "as the request body, with a Content-Length", NULL);
		else if (strcmp(cl, "0") == 0)
			http_error(r, 400, "empty_upload",
			    "the request body is empty", NULL);
		else
			http_error(r, 400, "upload_not_buffered",
			    "uploads must come through nginx's uploads "
			    "location, which passes the body as a file "
			    "(INSTAG_UPLOAD_FILE)", NULL);
		return;
	}
	if (file[0] != '/' || !nginx_temp_name(file) ||
	    lstat(file, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1) {
		log_kv(LOG_WARN, "upload_refused", "INSTAG_UPLOAD_FILE is not "
		    "an nginx client body temporary file", "file", file, NULL);
		http_error(r, 500, "upload_failed", "the upload could not be "
		    "stored", NULL);
		return;
	}
	if (st.st_size == 0 || (cl != NULL && cl[0] != '\0' &&
	    strtoll(cl, NULL, 10) != (long long)st.st_size)) {
		(void)unlink(file);
		http_error(r, 400, st.st_size == 0 ? "empty_upload" :
		    "incomplete_upload", st.st_size == 0 ? "the request body "
		    "is empty" : "the stored body does not match its "
		    "Content-Length", NULL);
		return;
	}
	if (uploads_adopt(cfg, r->who.sub, name, file, &u, &err) != 0) {
		log_kv(LOG_ERROR, "upload_failed", err, "sub", r->who.sub,
		    NULL);
		free(err);
		http_error(r, 500, "upload_failed", "the upload could not be "
		    "stored", NULL);
		return;
	}
	snprintf(size, sizeof(size), "%lld", (long long)u.size);
	log_kv(LOG_INFO, "upload_adopted", "upload stored", "upload_id",
	    u.id, "sub", r->who.sub, "name", u.name, "size", size, NULL);
	o = json_object_new_object();
	json_object_object_add(o, "upload_id", json_object_new_string(u.id));
	json_object_object_add(o, "name", json_object_new_string(u.name));
	json_object_object_add(o, "size", json_object_new_int64(u.size));
	json_object_object_add(o, "sha256", json_object_new_string(u.sha256));
	http_json(r, 201, o, NULL);
	json_object_put(o);
	uploads_info_clear(&u);
}

/* Returns 1 when r was handed over (the caller must not free it). */
