/* SPDX-License-Identifier: MIT */
/*
 * fake-runpod: network volumes (REST v2 /v2/network-volumes) and how a
 * stand-in pod sees one.
 *
 * Routes, fields and checks follow RunPod's OpenAPI document
 * (CreateNetworkVolumeRequest, UpdateNetworkVolumeRequest, NetworkVolume):
 * unknown fields, wrong types, a missing name/size/dataCenter and a size
 * outside 10..4096 are 422 with "errors"; an unknown data center and a
 * smaller size on PATCH are 400; an unknown id is 404.  DELETE of a volume
 * that a pod (not terminated) mounts is 409: the document lists no status
 * for it (only "default", a problem), and RunPod refuses to delete a
 * volume in use, so the stand-in picks 409 like its pod conflicts.
 *
 * The mount: every stand-in pod is the same loopback sshd, so with
 * --volume-dir DIR the stand-in makes the mount itself.  Each volume has
 * the directory DIR/<id> (owned like DIR); while a pod that mounts it is
 * RUNNING, its mount path (mounts.network[0].path) is a symlink to that
 * directory, and the link is removed when the pod stops or terminates.
 * A pod without the volume finds nothing at the path.  One path serves
 * one mounted pod at a time (tests run pods with volumes one after the
 * other).
 */
#include "auto-config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fake_runpod.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct volume {
	char id[16];
	char *name, *dc, *type;
	int size;
};

static struct {
	char *dir;		/* --volume-dir, or NULL */
	struct volume **v;
	size_t n;
} V;

/* The data centers volumes can be made in (those of the GPU catalog). */
static const char *const data_centers[] = {
	"US-KS-2", "EU-RO-1", "US-TX-3", "US-GA-1", NULL
};

void
fake_volumes_init(const char *dir)
{
	memset(&V, 0, sizeof(V));
	V.dir = dir ? xstrdup(dir) : NULL;
}

void
fake_volumes_clear(void)
{
	size_t i;

	for (i = 0; i < V.n; i++) {
		free(V.v[i]->name);
		free(V.v[i]->dc);
		free(V.v[i]->type);
		free(V.v[i]);
	}
	free(V.v);
	V.v = NULL;
	V.n = 0;
}

void
fake_volumes_free(void)
{
	fake_volumes_clear();
	free(V.dir);
	V.dir = NULL;
}

static struct volume *
find(const char *id)
{
	size_t i;

	for (i = 0; id != NULL && i < V.n; i++)
		if (strcmp(V.v[i]->id, id) == 0)
			return V.v[i];
	return NULL;
}

const char *
fake_volume_dc(const char *id)
{
	struct volume *v = find(id);

	return v ? v->dc : NULL;
}

static json_object *
render(const struct volume *v)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(v->id));
	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "size", json_object_new_int(v->size));
	json_object_object_add(o, "dataCenter",
	    json_object_new_string(v->dc));
	json_object_object_add(o, "type", json_object_new_string(v->type));
	return o;
}

/* ---- the mount ----------------------------------------------------------- */

/* DIR/<id>, made and given to DIR's owner; NULL without --volume-dir. */
static char *
volume_dir(const char *id)
{
	struct stat st;
	char *d;

	if (V.dir == NULL || stat(V.dir, &st) != 0)
		return NULL;
	d = xasprintf("%s/%s", V.dir, id);
	if (mkdir(d, 0755) == 0 && chown(d, st.st_uid, st.st_gid) != 0)
		log_kv(LOG_WARN, "volume_chown", strerror(errno), "dir", d,
		    NULL);
	return d;
}

/*
 * What an earlier pod's container left at a mount path (every pod shares
 * the harness's sshd and its files) is not on a new pod: moved aside to
 * path.container-N, so that the volume is what the new pod finds there.
 */
static void
aside(const char *path)
{
	char *to = NULL;
	int i;

	for (i = 1; i < 1000; i++) {
		struct stat st;

		free(to);
		to = xasprintf("%s.container-%d", path, i);
		if (lstat(to, &st) != 0 && errno == ENOENT)
			break;
	}
	if (rename(path, to) != 0)
		log_kv(LOG_WARN, "volume_mount", strerror(errno), "path", path,
		    NULL);
	else
		log_kv(LOG_INFO, "volume_mount", "an earlier container's files "
		    "moved aside", "path", path, "to", to, NULL);
	free(to);
}

void
fake_volume_mount(const char *id, const char *path, bool on)
{
	char *d, cur[PATH_MAX];
	ssize_t n;

	if (V.dir == NULL || path == NULL || path[0] != '/' ||
	    (d = volume_dir(id)) == NULL)
		return;
	n = readlink(path, cur, sizeof(cur) - 1);
	if (n >= 0)
		cur[n] = '\0';
	if (on) {
		struct stat st;

		if (n >= 0 && strcmp(cur, d) == 0)
			goto out;
		if (n >= 0)
			(void)unlink(path);
		else if (lstat(path, &st) == 0)
			aside(path);
		if (symlink(d, path) != 0)
			log_kv(LOG_WARN, "volume_mount", strerror(errno),
			    "path", path, NULL);
		else
			log_kv(LOG_INFO, "volume_mounted", "volume mounted",
			    "volume", id, "path", path, NULL);
	} else if (n >= 0 && strcmp(cur, d) == 0) {
		(void)unlink(path);
		log_kv(LOG_INFO, "volume_unmounted", "volume unmounted",
		    "volume", id, "path", path, NULL);
	}
out:
	free(d);
}

/* ---- validation ---------------------------------------------------------- */

static void err_add(json_object *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
err_add(json_object *errs, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_array_add(errs, json_object_new_string(buf));
}

static void
check_string(json_object *errs, json_object *b, const char *key)
{
	json_object *x;

	if (!json_object_object_get_ex(b, key, &x))
		return;
	if (!json_object_is_type(x, json_type_string))
		err_add(errs, "$.%s: expected string", key);
	else if (json_object_get_string_len(x) < 1)
		err_add(errs, "$.%s: length must be >= 1", key);
}

static void
check_size(json_object *errs, json_object *b)
{
	json_object *x;
	int64_t n;

	if (!json_object_object_get_ex(b, "size", &x))
		return;
	if (!json_object_is_type(x, json_type_int)) {
		err_add(errs, "$.%s: expected integer", "size");
		return;
	}
	n = json_object_get_int64(x);
	if (n < 10 || n > 4096)
		err_add(errs, "$.%s: must be in [10, 4096]", "size");
}

/* Schema checks (422) of a create (create) or update body. */
static json_object *
validate(json_object *b, bool create)
{
	static const char *const c_keys[] = { "name", "size", "dataCenter",
	    "type", NULL };
	static const char *const u_keys[] = { "name", "size", NULL };
	const char *const *keys = create ? c_keys : u_keys, *const *k;
	json_object *errs = json_object_new_array(), *x;

	if (b == NULL || !json_object_is_type(b, json_type_object)) {
		err_add(errs, "$: expected %s", "object");
		return errs;
	}
	json_object_object_foreach(b, key, val) {
		(void)val;
		for (k = keys; *k != NULL && strcmp(*k, key) != 0; k++)
			;
		if (*k == NULL)
			err_add(errs, "$: unknown property '%.64s'", key);
	}
	if (create) {
		for (k = c_keys; k < c_keys + 3; k++)
			if (!json_object_object_get_ex(b, *k, NULL))
				err_add(errs, "$: missing property '%s'", *k);
		check_string(errs, b, "dataCenter");
		if (json_object_object_get_ex(b, "type", &x) &&
		    (!json_object_is_type(x, json_type_string) ||
		    (strcmp(json_object_get_string(x), "STANDARD") != 0 &&
		    strcmp(json_object_get_string(x), "HIGH_PERFORMANCE") !=
		    0)))
			err_add(errs, "$.type: value must be one of %s",
			    "STANDARD, HIGH_PERFORMANCE");
	} else if (json_object_object_length(b) < 1) {
		err_add(errs, "$: must have at least %s property", "1");
	}
	check_string(errs, b, "name");
	check_size(errs, b);
	return errs;
}

static bool
invalid(json_object *b, bool create, struct fake_resp *resp)
{
	json_object *errs = validate(b, create);

	if (json_object_array_length(errs) == 0) {
		json_object_put(errs);
		return false;
	}
	fake_problem(resp, 422, "Request validation failed.", errs);
	return true;
}

/* ---- handlers ------------------------------------------------------------ */

void
fake_volumes_list(struct fake_resp *resp)
{
	json_object *o = json_object_new_object(), *a =
	    json_object_new_array();
	size_t i;

	for (i = 0; i < V.n; i++)
		json_object_array_add(a, render(V.v[i]));
	json_object_object_add(o, "networkVolumes", a);
	fake_json(resp, 200, o);
}

void
fake_volumes_create(const struct fake_req *req, struct fake_resp *resp)
{
	json_object *b = fake_body(req, resp);
	const char *dc;
	const char *const *d;
	struct volume *v;
	int64_t size = 0;
	size_t i;

	if (b == NULL || invalid(b, true, resp))
		goto out;
	dc = ju_str(b, "dataCenter");
	for (d = data_centers; *d != NULL && strcmp(*d, dc) != 0; d++)
		;
	if (*d == NULL) {
		char *m = xasprintf("unknown data center '%.64s'", dc);

		fake_problem(resp, 400, m, NULL);
		free(m);
		goto out;
	}
	v = xcalloc(1, sizeof(*v));
	do {
		for (i = 0; i < 10; i++)
			v->id[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[
			    fake_rand() % 36];
		v->id[10] = '\0';
	} while (find(v->id) != NULL);
	v->name = xstrdup(ju_str(b, "name"));
	v->dc = xstrdup(dc);
	v->type = xstrdup(ju_str(b, "type") ? ju_str(b, "type") :
	    "STANDARD");
	(void)ju_int(b, "size", &size);
	v->size = (int)size;
	V.v = xrealloc(V.v, (V.n + 1) * sizeof(*V.v));
	V.v[V.n++] = v;
	free(volume_dir(v->id));
	log_kv(LOG_INFO, "volume_created", "network volume created",
	    "volume", v->id, "dc", v->dc, NULL);
	fake_json(resp, 201, render(v));
out:
	json_object_put(b);
}

static bool
found(const char *id, struct volume **v, struct fake_resp *resp)
{
	if ((*v = find(id)) != NULL)
		return true;
	fake_problem(resp, 404, "The requested network volume does not "
	    "exist.", NULL);
	return false;
}

void
fake_volumes_get(const char *id, struct fake_resp *resp)
{
	struct volume *v;

	if (found(id, &v, resp))
		fake_json(resp, 200, render(v));
}

void
fake_volumes_patch(const struct fake_req *req, const char *id,
    struct fake_resp *resp)
{
	struct volume *v;
	json_object *b;
	int64_t size;

	if (!found(id, &v, resp))
		return;
	b = fake_body(req, resp);
	if (b == NULL || invalid(b, false, resp))
		goto out;
	if (ju_int(b, "size", &size) == 0 && size < v->size) {
		fake_problem(resp, 400, "network volume storage cannot be "
		    "reduced", NULL);
		goto out;
	}
	if (ju_str(b, "name") != NULL) {
		free(v->name);
		v->name = xstrdup(ju_str(b, "name"));
	}
	if (ju_int(b, "size", &size) == 0)
		v->size = (int)size;
	fake_json(resp, 200, render(v));
out:
	json_object_put(b);
}

void
fake_volumes_delete(const char *id, struct fake_resp *resp)
{
	struct volume *v;
	size_t i;

	if (!found(id, &v, resp))
		return;
	if (fake_api_volume_in_use(id)) {
		fake_problem(resp, 409, "the network volume is attached to a "
		    "pod: terminate the pod first", NULL);
		return;
	}
	for (i = 0; i < V.n && V.v[i] != v; i++)
		;
	V.v[i] = V.v[--V.n];
	log_kv(LOG_INFO, "volume_deleted", "network volume deleted",
	    "volume", v->id, NULL);
	free(v->name);
	free(v->dc);
	free(v->type);
	free(v);
	fake_empty(resp, 204);
}
