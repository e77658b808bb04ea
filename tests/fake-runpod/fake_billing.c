/* SPDX-License-Identifier: MIT */
/*
 * fake_billing: the stand-in's pod billing.  fake_api.c marks each pod's
 * rates whenever its status changes (fake_billing_mark); this file keeps
 * the resulting segments and answers GET /v2/billing/pods from them, as
 * RunPod's v2 reference defines it (listPodBilling): time buckets of
 * bucketSize (hour, day, week, month, year; default day) over
 * startTime/endTime (RFC 3339; default the last 30 days up to now) or the
 * lastN buckets up to the current one, the window snapped out to bucket
 * boundaries, one record per pod per bucket, optional podId filter, and
 * metadata (query, recordCount, uniquePodCount, totals).
 */
#include "auto-config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_runpod.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/xalloc.h"

/* At most this many buckets in a window (a year of hours, plus a day). */
#define MAX_BUCKETS 8808

struct seg {
	char *pod_id;
	bool cpu;
	int64_t start, end;	/* wall ms; end 0: still open */
	double compute_hr, disk_hr;
};

static struct {
	struct seg *segs;
	size_t n;
} B;

void
fake_billing_mark(const char *pod_id, bool cpu, int64_t wall_ms,
    double compute_hr, double disk_hr)
{
	size_t i;

	for (i = 0; i < B.n; i++)
		if (B.segs[i].end == 0 && strcmp(B.segs[i].pod_id, pod_id) == 0)
			B.segs[i].end = wall_ms;
	if (compute_hr <= 0 && disk_hr <= 0)
		return;
	B.segs = xrealloc(B.segs, (B.n + 1) * sizeof(*B.segs));
	B.segs[B.n].pod_id = xstrdup(pod_id);
	B.segs[B.n].cpu = cpu;
	B.segs[B.n].start = wall_ms;
	B.segs[B.n].end = 0;
	B.segs[B.n].compute_hr = compute_hr;
	B.segs[B.n].disk_hr = disk_hr;
	B.n++;
}

void
fake_billing_clear(void)
{
	size_t i;

	for (i = 0; i < B.n; i++)
		free(B.segs[i].pod_id);
	free(B.segs);
	memset(&B, 0, sizeof(B));
}

/* ---- time ---------------------------------------------------------------- */

enum bucket { BK_HOUR, BK_DAY, BK_WEEK, BK_MONTH, BK_YEAR };
static const char *const bucket_names[] = {
	"hour", "day", "week", "month", "year", NULL
};

/* RFC 3339 date-time to wall ms: 0 and *ms, or -1. */
static int
parse_time(const char *s, int64_t *ms)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	const char *p;
	int64_t frac = 0, scale = 1000, off = 0;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
	    (s[10] != 'T' && s[10] != 't') ||
	    sscanf(s + 11, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3 || n != 8)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60 || y < 1970)
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') &&
	    sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5 &&
	    oh < 24 && om < 60) {
		off = (int64_t)(oh * 60 + om) * 60000 * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ms = (int64_t)t * 1000 + frac - off;
	return 0;
}

static json_object *
time_json(int64_t ms)
{
	char buf[32];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_object_new_string(buf);
}

/* The start of the bucket that holds ms (weeks start on Monday, UTC). */
static int64_t
bucket_floor(int64_t ms, enum bucket b)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_sec = 0;
	tm.tm_min = 0;
	if (b != BK_HOUR)
		tm.tm_hour = 0;
	if (b == BK_WEEK)
		tm.tm_mday -= (tm.tm_wday + 6) % 7;
	if (b == BK_MONTH || b == BK_YEAR)
		tm.tm_mday = 1;
	if (b == BK_YEAR)
		tm.tm_mon = 0;
	tm.tm_isdst = 0;
	return (int64_t)timegm(&tm) * 1000;
}

/* The bucket boundary k buckets after the boundary ms. */
static int64_t
bucket_add(int64_t ms, enum bucket b, int k)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	switch (b) {
	case BK_HOUR: tm.tm_hour += k; break;
	case BK_DAY: tm.tm_mday += k; break;
	case BK_WEEK: tm.tm_mday += 7 * k; break;
	case BK_MONTH: tm.tm_mon += k; break;
	case BK_YEAR: tm.tm_year += k; break;
	}
	tm.tm_isdst = 0;
	return (int64_t)timegm(&tm) * 1000;
}

/* ---- amounts ------------------------------------------------------------- */

struct amounts {
	double total, gpu, cpu, disk;
};

static json_object *
amounts_json(const struct amounts *a)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "totalAmount",
	    json_object_new_double(a->total));
	json_object_object_add(o, "gpuAmount", json_object_new_double(a->gpu));
	json_object_object_add(o, "cpuAmount", json_object_new_double(a->cpu));
	json_object_object_add(o, "diskAmount",
	    json_object_new_double(a->disk));
	return o;
}

/* What pod_id's segments bill in [from, to); false when none overlaps. */
static bool
bill(const char *pod_id, int64_t from, int64_t to, int64_t now,
    struct amounts *a)
{
	size_t i;
	bool any = false;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < B.n; i++) {
		const struct seg *s = &B.segs[i];
		int64_t lo = s->start > from ? s->start : from;
		int64_t end = s->end ? s->end : now;
		int64_t hi = end < to ? end : to;
		double h, c;

		if (strcmp(s->pod_id, pod_id) != 0 || hi <= lo)
			continue;
		any = true;
		h = (double)(hi - lo) / 3600000.0;
		c = s->compute_hr * h;
		if (s->cpu)
			a->cpu += c;
		else
			a->gpu += c;
		a->disk += s->disk_hr * h;
	}
	a->total = a->gpu + a->cpu + a->disk;
	return any;
}

/* ---- the route ----------------------------------------------------------- */

/* Add "<where>: <what> (got '<v>')" to *errors (made on first use). */
static void
add_error(json_object **errors, const char *where, const char *what,
    const char *v)
{
	char buf[300];

	if (*errors == NULL)
		*errors = json_object_new_array();
	snprintf(buf, sizeof(buf), "%s: %s (got '%.60s')", where, what, v);
	json_object_array_add(*errors, json_object_new_string(buf));
}

int
fake_billing_answer(const char *query, json_object **out, char **detail,
    json_object **errors)
{
	char *q_start = fake_query_get(query, "startTime");
	char *q_end = fake_query_get(query, "endTime");
	char *q_bucket = fake_query_get(query, "bucketSize");
	char *q_last = fake_query_get(query, "lastN");
	char *pod = fake_query_get(query, "podId");
	int64_t now = clock_wall_ms(), start = 0, end = 0, t, nb;
	long last = 0;
	enum bucket b = BK_DAY;
	json_object *recs, *o, *meta, *qo, *seen;
	struct amounts tot = { 0, 0, 0, 0 }, a;
	size_t i;
	char *e;
	int status = 200, k;

	*out = NULL;
	*detail = NULL;
	*errors = NULL;
	if (q_bucket != NULL) {
		for (k = 0; bucket_names[k] != NULL; k++)
			if (strcmp(q_bucket, bucket_names[k]) == 0)
				break;
		if (bucket_names[k] == NULL)
			add_error(errors, "query.bucketSize", "expected value "
			    "to be one of \"hour, day, week, month, year\"",
			    q_bucket);
		else
			b = (enum bucket)k;
	}
	if (q_start != NULL && parse_time(q_start, &start) < 0)
		add_error(errors, "query.startTime", "expected string to be "
		    "RFC 3339 date-time", q_start);
	if (q_end != NULL && parse_time(q_end, &end) < 0)
		add_error(errors, "query.endTime", "expected string to be "
		    "RFC 3339 date-time", q_end);
	if (q_last != NULL) {
		last = strtol(q_last, &e, 10);
		if (q_last[0] == '\0' || *e != '\0')
			add_error(errors, "query.lastN", "expected integer",
			    q_last);
		else if (last < 1)
			add_error(errors, "query.lastN", "expected number >= 1",
			    q_last);
	}
	if (*errors != NULL) {
		status = 422;
		*detail = xstrdup("validation failed");
		goto cleanup;
	}
	if (q_last != NULL && (q_start != NULL || q_end != NULL)) {
		status = 400;
		*detail = xstrdup("lastN is mutually exclusive with "
		    "startTime/endTime; provide one or the other");
		goto cleanup;
	}
	if (q_last != NULL) {
		if (last > MAX_BUCKETS)
			last = MAX_BUCKETS + 1;
		end = bucket_add(bucket_floor(now, b), b, 1);
		start = bucket_add(bucket_floor(now, b), b, (int)(1 - last));
	} else {
		if (q_start == NULL)
			start = now - 30LL * 86400000;
		if (q_end == NULL)
			end = now;
		start = bucket_floor(start, b);
		if (bucket_floor(end, b) != end)
			end = bucket_add(bucket_floor(end, b), b, 1);
	}
	if (end <= start) {
		status = 400;
		*detail = xstrdup("endTime must be after startTime");
		goto cleanup;
	}
	for (nb = 0, t = start; t < end && nb <= MAX_BUCKETS; nb++)
		t = bucket_add(t, b, 1);
	if (nb > MAX_BUCKETS) {
		status = 400;
		*detail = xasprintf("the window holds more than %d buckets of "
		    "bucketSize %s; narrow it or use a larger bucketSize",
		    MAX_BUCKETS, bucket_names[b]);
		goto cleanup;
	}
	recs = json_object_new_array();
	for (t = start; t < end; t = bucket_add(t, b, 1)) {
		int64_t to = bucket_add(t, b, 1);

		/* the pods of this bucket, each once */
		seen = json_object_new_object();
		for (i = 0; i < B.n; i++) {
			const char *id = B.segs[i].pod_id;

			if ((pod != NULL && strcmp(id, pod) != 0) ||
			    json_object_object_get_ex(seen, id, NULL) ||
			    !bill(id, t, to, now, &a))
				continue;
			json_object_object_add(seen, id,
			    json_object_new_boolean(1));
			o = json_object_new_object();
			json_object_object_add(o, "startTime", time_json(t));
			json_object_object_add(o, "endTime", time_json(to));
			json_object_object_add(o, "podId",
			    json_object_new_string(id));
			json_object_object_add(o, "totalAmount",
			    json_object_new_double(a.total));
			json_object_object_add(o, "gpuAmount",
			    json_object_new_double(a.gpu));
			json_object_object_add(o, "cpuAmount",
			    json_object_new_double(a.cpu));
			json_object_object_add(o, "diskAmount",
			    json_object_new_double(a.disk));
			json_object_array_add(recs, o);
			tot.total += a.total;
			tot.gpu += a.gpu;
			tot.cpu += a.cpu;
			tot.disk += a.disk;
		}
		json_object_put(seen);
	}
	seen = json_object_new_object();
	for (i = 0; i < json_object_array_length(recs); i++)
		json_object_object_add(seen, ju_str(json_object_array_get_idx(
		    recs, i), "podId"), json_object_new_boolean(1));
	*out = json_object_new_object();
	json_object_object_add(*out, "records", recs);
	meta = json_object_new_object();
	qo = json_object_new_object();
	json_object_object_add(qo, "startTime", time_json(start));
	json_object_object_add(qo, "endTime", time_json(end));
	json_object_object_add(qo, "bucketSize",
	    json_object_new_string(bucket_names[b]));
	json_object_object_add(qo, "podId", pod ? json_object_new_string(pod) :
	    NULL);
	json_object_object_add(meta, "query", qo);
	json_object_object_add(meta, "recordCount", json_object_new_int64(
	    (int64_t)json_object_array_length(recs)));
	json_object_object_add(meta, "uniquePodCount", json_object_new_int(
	    json_object_object_length(seen)));
	json_object_object_add(meta, "totals", amounts_json(&tot));
	json_object_object_add(*out, "metadata", meta);
	json_object_put(seen);
cleanup:
	free(q_start);
	free(q_end);
	free(q_bucket);
	free(q_last);
	free(pod);
	return status;
}
