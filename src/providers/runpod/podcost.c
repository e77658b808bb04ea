/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <string.h>

#include "providers/runpod/podcost.h"

#define MS_PER_HOUR 3600000.0

double
podcost_storage_rate(const struct pod_rec *r, bool stopped)
{
	double gb;

	if (stopped)
		return (double)r->volume_gb * PODCOST_STOPPED_GB_MONTH /
		    PODCOST_HOURS_PER_MONTH;
	gb = (double)r->disk_gb + (double)r->volume_gb;
	return gb * PODCOST_RUNNING_GB_MONTH / PODCOST_HOURS_PER_MONTH;
}

void
podcost_storage(struct pod_rec *r, int64_t dt_ms, bool stopped)
{
	if (dt_ms <= 0)
		return;
	r->storage_usd += podcost_storage_rate(r, stopped) * (double)dt_ms /
	    MS_PER_HOUR;
	if (stopped)
		r->stopped_ms += dt_ms;
}

void
podcost_accrue(struct pod_rec *r, int64_t now, bool stopped)
{
	int64_t dt = r->last_check_ms > 0 ? now - r->last_check_ms : 0;

	if (r->state != NULL && strcmp(r->state, "terminated") == 0)
		return;
	if (dt > 0) {
		podcost_storage(r, dt, stopped);
		if (!stopped) {
			r->running_ms += dt;
			r->cost_usd += r->cost_per_hr * (double)dt /
			    MS_PER_HOUR;
		}
	}
	if (now > r->last_check_ms)
		r->last_check_ms = now;
}

double
podcost_total(const struct pod_rec *r)
{
	return r->cost_usd + r->storage_usd;
}

double
podcost_round(double v, double unit)
{
	double q = v / unit;

	return (double)(int64_t)(q >= 0 ? q + 0.5 : q - 0.5) * unit;
}

json_object *
podcost_json(const struct pod_rec *r)
{
	json_object *o = json_object_new_object();
	bool stopped = r->state != NULL && strcmp(r->state, "stopped") == 0;
	bool gone = r->state != NULL && strcmp(r->state, "terminated") == 0;

	json_object_object_add(o, "minutes", json_object_new_double(
	    podcost_round((double)(r->running_ms + r->stopped_ms) / 60000.0,
	    1e-4)));
	json_object_object_add(o, "running_minutes", json_object_new_double(
	    podcost_round((double)r->running_ms / 60000.0, 1e-4)));
	json_object_object_add(o, "stopped_minutes", json_object_new_double(
	    podcost_round((double)r->stopped_ms / 60000.0, 1e-4)));
	json_object_object_add(o, "usd_per_hr",
	    json_object_new_double(r->cost_per_hr));
	json_object_object_add(o, "storage_usd_per_hr", json_object_new_double(
	    gone ? 0 : podcost_round(podcost_storage_rate(r, stopped),
	    1e-6)));
	json_object_object_add(o, "disk_gb", json_object_new_int(r->disk_gb));
	json_object_object_add(o, "volume_gb",
	    json_object_new_int(r->volume_gb));
	json_object_object_add(o, "compute_usd", json_object_new_double(
	    podcost_round(r->cost_usd, 1e-6)));
	json_object_object_add(o, "storage_usd", json_object_new_double(
	    podcost_round(r->storage_usd, 1e-6)));
	json_object_object_add(o, "usd", json_object_new_double(
	    podcost_round(podcost_total(r), 1e-6)));
	json_object_object_add(o, "basis", json_object_new_string(
	    "the agent's estimate: compute at the pod's hourly rate as "
	    "RunPod reported it while it ran, disk storage at RunPod's "
	    "published per-GB rates while it ran and while it was stopped"));
	return o;
}

double
podcost_netvol_month(int64_t size_gb, const char *type)
{
	int64_t big;

	if (type != NULL && strcmp(type, "STANDARD") != 0)
		return -1;
	if (size_gb <= 0)
		return 0;
	big = size_gb > PODCOST_NETVOL_TIER_GB ? size_gb -
	    PODCOST_NETVOL_TIER_GB : 0;
	return (double)(size_gb - big) * PODCOST_NETVOL_GB_MONTH +
	    (double)big * PODCOST_NETVOL_BIG_GB_MONTH;
}
