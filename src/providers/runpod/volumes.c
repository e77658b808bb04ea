/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errcode.h"
#include "lib/hash.h"
#include "lib/jsonutil.h"
#include "lib/xalloc.h"
#include "providers/runpod/podcost.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/volumes.h"

#define VOL_PATH "/v2/network-volumes"

char *
volumes_name_for(const char *owner, const char *name)
{
	char u[HASH_OWNER_DIR_LEN];

	hash_owner_dir(owner, u);
	return xasprintf("%s-vol-%s-%s", pods_config()->pod_name_prefix, u,
	    name);
}

/* The caller's own name of a volume named rp_name, NULL when the volume
 * is not owner's (borrowed from rp_name). */
static const char *
short_name(const char *owner, const char *rp_name)
{
	char *pfx = volumes_name_for(owner, "");
	size_t n = strlen(pfx);
	const char *r = NULL;

	if (rp_name != NULL && strncmp(rp_name, pfx, n) == 0 &&
	    rp_name[n] != '\0')
		r = rp_name + n;
	free(pfx);
	return r;
}

/* The agent's view of a NetworkVolume of owner's (new reference). */
static json_object *
describe(json_object *v, const char *name)
{
	json_object *o = json_object_new_object();
	int64_t size = 0;
	double month;

	ju_int(v, "size", &size);
	json_object_object_add(o, "volume_id", ju_new_str(ju_str(v, "id")));
	json_object_object_add(o, "name", ju_new_str(name));
	json_object_object_add(o, "size_gb", json_object_new_int64(size));
	json_object_object_add(o, "data_center_id",
	    ju_new_str(ju_str(v, "dataCenter")));
	json_object_object_add(o, "type", ju_new_str(ju_str(v, "type")));
	/* billed by the hour while it exists, mounted or not */
	month = podcost_netvol_month(size, ju_str(v, "type"));
	json_object_object_add(o, "storage_usd_per_month", month < 0 ? NULL :
	    json_object_new_double(podcost_round(month, 1e-6)));
	json_object_object_add(o, "storage_usd_per_hr", month < 0 ? NULL :
	    json_object_new_double(podcost_round(month /
	    PODCOST_HOURS_PER_MONTH, 1e-6)));
	return o;
}

/* The RunPod error of a failed call as the operation's error; 404 is
 * volume_not_found. */
static void
call_error(struct op_error *oe, const char *what, const char *id,
    const struct runpod_error *e)
{
	if (e->kind == RP_NOT_FOUND)
		op_error_set(oe, ERRC_VOLUME_NOT_FOUND, "no network volume "
		    "with id '%.64s' is yours", id ? id : "");
	else if (e->kind == RP_CONFLICT)
		op_error_set(oe, ERRC_VOLUME_IN_USE, "%s: RunPod says network "
		    "volume %.64s is in use: %s", what, id ? id : "",
		    e->detail ? e->detail : "a pod mounts it");
	else
		pods_op_error(oe, what, e);
}

/* GET the list: *arr the networkVolumes array of *j (caller puts *j). */
static int
list_all(struct runpod_client *c, json_object **j, json_object **arr,
    struct runpod_error *e)
{
	long st;
	int rc = runpod_call(c, "GET", VOL_PATH, NULL, false, &st, j, e);

	pods_count(rc, e);
	if (rc < 0)
		return -1;
	if ((*arr = ju_arr(*j, "networkVolumes")) == NULL) {
		runpod_error_clear(e);
		e->kind = RP_PROTOCOL;
		e->http_status = (int)st;
		e->title = xstrdup("answer has no \"networkVolumes\" array");
		return -1;
	}
	return 0;
}

/* GET one volume: 0 and *v (caller puts), or -1 with *e. */
static int
get_one(struct runpod_client *c, const char *id, json_object **v,
    struct runpod_error *e)
{
	char *esc = runpod_escape(c, id);
	char *path = xasprintf(VOL_PATH "/%s", esc);
	long st;
	int rc = runpod_call(c, "GET", path, NULL, false, &st, v, e);

	pods_count(rc, e);
	free(path);
	free(esc);
	if (rc == 0 && ju_str(*v, "id") == NULL) {
		json_object_put(*v);
		*v = NULL;
		runpod_error_clear(e);
		e->kind = RP_PROTOCOL;
		e->http_status = (int)st;
		e->title = xstrdup("answer is not a network volume");
		return -1;
	}
	return rc;
}

int
volumes_resolve(struct runpod_client *c, const char *owner, const char *id,
    char **dc, struct runpod_error *e, struct op_error *oe)
{
	json_object *v = NULL;
	int rc = -1;

	*dc = NULL;
	if (get_one(c, id, &v, e) < 0) {
		if (pods_transient(e))
			return 1;
		call_error(oe, "network volume", id, e);
		return -1;
	}
	if (short_name(owner, ju_str(v, "name")) == NULL ||
	    ju_str(v, "dataCenter") == NULL) {
		op_error_set(oe, ERRC_VOLUME_NOT_FOUND, "no network volume "
		    "with id '%.64s' is yours", id);
		goto cleanup;
	}
	*dc = xstrdup(ju_str(v, "dataCenter"));
	rc = 0;
cleanup:
	json_object_put(v);
	return rc;
}

int
volumes_op_list(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *oe)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *cl = pods_client(&e);
	json_object *j = NULL, *arr = NULL, *out;
	const char *nm;
	size_t i;

	(void)params;
	if (cl == NULL || list_all(cl, &j, &arr, &e) < 0) {
		pods_op_error(oe, "list_volumes", &e);
		runpod_error_clear(&e);
		json_object_put(j);
		return -1;
	}
	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(arr); i++) {
		json_object *v = json_object_array_get_idx(arr, i);

		if ((nm = short_name(c->who->sub, ju_str(v, "name"))) != NULL)
			json_object_array_add(out, describe(v, nm));
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "volumes", out);
	json_object_put(j);
	return 0;
}

/* The caller's volume named rp_name in arr, NULL when none. */
static json_object *
find_named(json_object *arr, const char *rp_name)
{
	size_t i;

	for (i = 0; arr != NULL && i < json_object_array_length(arr); i++) {
		json_object *v = json_object_array_get_idx(arr, i);

		if (ju_str(v, "name") != NULL &&
		    strcmp(ju_str(v, "name"), rp_name) == 0)
			return v;
	}
	return NULL;
}

int
volumes_op_create(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *oe)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *cl = pods_client(&e);
	const char *name = ju_str(params, "name");
	json_object *j = NULL, *arr = NULL, *b = NULL, *v = NULL, *found;
	char *rp_name = volumes_name_for(c->who->sub, name), *text = NULL;
	int64_t size = 0;
	long st;
	int rc = -1;

	if (cl == NULL || list_all(cl, &j, &arr, &e) < 0) {
		pods_op_error(oe, "create_volume", &e);
		goto cleanup;
	}
	if (find_named(arr, rp_name) != NULL) {
		op_error_set(oe, ERRC_VOLUME_EXISTS, "you already have a "
		    "network volume named '%s' (runpod.list_volumes)", name);
		goto cleanup;
	}
	b = json_object_new_object();
	json_object_object_add(b, "name", json_object_new_string(rp_name));
	ju_int(params, "size_gb", &size);
	json_object_object_add(b, "size", json_object_new_int64(size));
	json_object_object_add(b, "dataCenter",
	    ju_new_str(ju_str(params, "data_center_id")));
	if (ju_str(params, "type") != NULL)
		json_object_object_add(b, "type",
		    ju_new_str(ju_str(params, "type")));
	text = ju_dump(b);
	rc = runpod_call(cl, "POST", VOL_PATH, text, true, &st, &v, &e);
	pods_count(rc, &e);
	if (rc == 0 && ju_str(v, "id") != NULL) {
		*result = describe(v, name);
		goto cleanup;
	}
	rc = -1;
	if (e.kind == RP_SERVER || e.kind == RP_NETWORK) {
		/* It may have been made: its name is the idempotency key. */
		json_object_put(j);
		j = NULL;
		if (list_all(cl, &j, &arr, &e) == 0 &&
		    (found = find_named(arr, rp_name)) != NULL) {
			*result = describe(found, name);
			rc = 0;
			goto cleanup;
		}
	}
	if (e.kind == RP_NO_CAPACITY || (e.kind == RP_BAD_REQUEST &&
	    e.http_status != 0))
		/* 400 (a rule: e.g. an unknown data center) or 422 */
		op_error_set(oe, ERRC_INVALID_PARAMS, "RunPod refused the "
		    "volume (HTTP %d): %s", e.http_status, e.detail ? e.detail :
		    e.title ? e.title : "no detail");
	else
		pods_op_error(oe, "create_volume", &e);
cleanup:
	runpod_error_clear(&e);
	json_object_put(j);
	json_object_put(b);
	json_object_put(v);
	free(text);
	free(rp_name);
	return rc;
}

/* Whether pod p mounts volume id. */
static bool
mounts_volume(const struct runpod_pod *p, const char *id)
{
	json_object *m = p->raw ? ju_obj(p->raw, "mounts") : NULL;
	json_object *net = m ? ju_arr(m, "network") : NULL;
	size_t i;

	for (i = 0; net != NULL && i < json_object_array_length(net); i++) {
		const char *vid = ju_str(json_object_array_get_idx(net, i),
		    "volumeId");
		if (vid != NULL && strcmp(vid, id) == 0)
			return true;
	}
	return false;
}

int
volumes_op_delete(const struct op_ctx *c, json_object *params,
    json_object **result, struct op_error *oe)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct runpod_client *cl = pods_client(&e);
	struct runpod_pod **pods = NULL;
	const char *id = ju_str(params, "volume_id");
	json_object *j = NULL;
	char *dc = NULL, *esc = NULL, *path = NULL;
	size_t n = 0, i, used = 0;
	long st;
	int rc = -1, r;

	if (cl == NULL) {
		pods_op_error(oe, "delete_volume", &e);
		goto cleanup;
	}
	if ((r = volumes_resolve(cl, c->who->sub, id, &dc, &e, oe)) != 0) {
		if (r > 0)
			pods_op_error(oe, "delete_volume", &e);
		goto cleanup;
	}
	r = runpod_list_pods(cl, &pods, &n, &e);
	pods_count(r, &e);
	if (r < 0) {
		pods_op_error(oe, "delete_volume", &e);
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		if (mounts_volume(pods[i], id))
			used++;
	if (used > 0) {
		op_error_set(oe, ERRC_VOLUME_IN_USE, "network volume %s is "
		    "mounted by %zu pod(s): terminate them first", id, used);
		goto cleanup;
	}
	esc = runpod_escape(cl, id);
	path = xasprintf(VOL_PATH "/%s", esc);
	r = runpod_call(cl, "DELETE", path, NULL, false, &st, &j, &e);
	pods_count(r, &e);
	if (r < 0) {
		call_error(oe, "delete_volume", id, &e);
		goto cleanup;
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "volume_id", ju_new_str(id));
	json_object_object_add(*result, "deleted",
	    json_object_new_boolean(1));
	rc = 0;
cleanup:
	runpod_pods_free(pods, n);
	runpod_error_clear(&e);
	json_object_put(j);
	free(dc);
	free(esc);
	free(path);
	return rc;
}
