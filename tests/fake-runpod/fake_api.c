/* SPDX-License-Identifier: MIT */
/*
 * fake-runpod: the API side.  Routes, Bearer auth, the pods and their
 * status walk (driven by time, computed when a pod is read), the GPU
 * catalog, CreatePodRequest validation, fault injection, call counters and
 * the /_fake/ control API.
 *
 * Field names and types follow RunPod's OpenAPI document for REST v2
 * (runpod/docs, api-reference-v2/openapi.json).  Environment values are
 * never logged (PUBLIC_KEY and friends): the log names method, route and
 * status only.
 */
#include "auto-config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fake_runpod.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

/* ----------------------------------------------------------- catalog ---- */

struct gpu_type {
	const char *id, *name, *pool;
	int memory;
	bool secure, community;
	int cents_secure, cents_community, cents_serverless; /* per GPU/h */
	int max_secure, max_community;
	const char *availability;	/* when not faulted */
	const char *dc_id, *dc_name;
};

static const struct gpu_type gpu_types[] = {
	{ "NVIDIA GeForce RTX 4090", "RTX 4090", "ADA_24", 24, true, true,
	  44, 31, 110, 8, 4, "HIGH", "US-KS-2", "US Kansas 2" },
	{ "NVIDIA RTX A5000", "RTX A5000", "AMPERE_24", 24, true, true,
	  27, 16, 76, 8, 8, "MEDIUM", "EU-RO-1", "EU Romania 1" },
	{ "NVIDIA A100 80GB PCIe", "A100 PCIe", "AMPERE_80", 80, true, true,
	  164, 119, 272, 8, 4, "LOW", "US-TX-3", "US Texas 3" },
	{ "NVIDIA H100 80GB HBM3", "H100 SXM", "HOPPER_141", 80, true, false,
	  299, 0, 418, 8, 0, "MEDIUM", "US-GA-1", "US Georgia 1" },
};
#define N_GPU_TYPES (sizeof(gpu_types) / sizeof(gpu_types[0]))

struct cpu_flavor {
	const char *id;
	int cents_per_vcpu;
	int gb_per_vcpu;
};

static const struct cpu_flavor cpu_flavors[] = {
	{ "cpu3c", 3, 2 }, { "cpu3g", 4, 4 }, { "cpu5c", 5, 2 },
};
#define N_CPU_FLAVORS (sizeof(cpu_flavors) / sizeof(cpu_flavors[0]))

/* The one template the fake knows (templateId); others are 404. */
#define FAKE_TEMPLATE_ID "fake-template"
#define FAKE_TEMPLATE_IMAGE "runpod/base:0.6.2-cuda12.4.1"

/* Longest JSON string accepted in a body. */
#define MAX_JSON_STR (1024 * 1024)

#define NO_CAPACITY_DETAIL "There are no longer any instances available " \
	"with the requested specifications. Please refresh and try again."

#define FORBIDDEN_POOL_DETAIL "access denied: your account cannot access " \
	"the requested pool"

/* Quotas the RateLimit headers report (generous: never enforced). */
#define RL_MINUTE 6000
#define RL_HOUR 100000
#define RL_DAY 1000000

/* -------------------------------------------------------------- state ---- */

enum pod_status {
	ST_PROVISIONING, ST_STARTING, ST_RUNNING, ST_EXITED, ST_ERROR,
	ST_TERMINATED
};

static const char *const status_names[] = {
	"PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED"
};

struct pod {
	char id[16];
	char *name, *image, *args, *registry, *dc_id;
	int disk;
	json_object *env;	/* object of strings (owned) */
	json_object *ports;	/* array of strings (owned) */
	json_object *mounts;	/* object (owned) */
	const struct gpu_type *gpu;
	int gpu_count;
	const struct cpu_flavor *cpu;
	int vcpus;
	bool community, global_net;
	char proxy_tag[9];
	enum pod_status status;
	int64_t since;		/* monotonic ms the status began */
	int64_t created_at;	/* realtime ms */
	int64_t started_at;	/* realtime ms; 0 = null */
	bool placed;		/* has a machine (dataCenterId etc.) */
};

struct counter {
	char *key;
	long n;
};

static struct {
	const struct fake_options *opt;
	struct pod **pods;
	size_t npods;
	/* faults */
	long rl_count, rl_retry;
	long se_count, se_status;
	char *rl_route, *se_route;	/* NULL: any route, else a stats key */
	char **nocap;
	size_t n_nocap;
	char **forbid;		/* GPU ids whose create answers 403 */
	size_t n_forbid;
	char *rule_detail;	/* non-NULL: every create answers 400 */
	long slow_ms;
	bool never_ssh, create_500, balance, revoked;
	/* counters */
	struct counter *calls;
	size_t ncalls;
	long total;
	/* rate-limit windows (monotonic ms start, count) */
	int64_t win_start[3];
	long win_count[3];
	uint64_t rng;
} S;

static const long rl_quota[3] = { RL_MINUTE, RL_HOUR, RL_DAY };
static const long rl_window[3] = { 60, 3600, 86400 };
static const char *const rl_name[3] = { "minute", "hour", "day" };

/* ---------------------------------------------------------- utilities ---- */

const char *
fake_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:
		return status >= 500 ? "Server Error" :
		    status >= 400 ? "Client Error" : "Unknown";
	}
}

static uint64_t
rng_next(void)
{
	/* xorshift64*: ids and tags only, nothing secret */
	S.rng ^= S.rng >> 12;
	S.rng ^= S.rng << 25;
	S.rng ^= S.rng >> 27;
	return S.rng * 2685821657736338717ULL;
}

static const char *
json_type_label(json_object *v)
{
	if (v == NULL)
		return "null";
	switch (json_object_get_type(v)) {
	case json_type_boolean: return "boolean";
	case json_type_double: return "number";
	case json_type_int: return "integer";
	case json_type_string: return "string";
	case json_type_array: return "array";
	case json_type_object: return "object";
	default: return "null";
	}
}

/* A money value in cents as a JSON number printed exactly ("0.88"). */
static json_object *
money(long cents)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld.%02ld", cents / 100, cents % 100);
	return json_object_new_double_s((double)cents / 100.0, buf);
}

static void
set_problem(struct fake_resp *resp, int status, const char *detail,
    json_object *errors)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "title",
	    json_object_new_string(fake_reason(status)));
	json_object_object_add(o, "status", json_object_new_int(status));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	if (errors != NULL)
		json_object_object_add(o, "errors", errors);
	resp->status = status;
	resp->content_type = "application/problem+json";
	free(resp->body);
	resp->body = ju_dump(o);
	json_object_put(o);
}

void
fake_set_problem(struct fake_resp *resp, int status, const char *detail,
    json_object *errors)
{
	set_problem(resp, status, detail, errors);
}

static void
set_json(struct fake_resp *resp, int status, json_object *o)
{
	resp->status = status;
	resp->content_type = "application/json";
	free(resp->body);
	resp->body = ju_dump(o);
	json_object_put(o);
}

static void
set_empty(struct fake_resp *resp, int status)
{
	resp->status = status;
	resp->content_type = NULL;
	free(resp->body);
	resp->body = NULL;
}

static json_object *parse_body(const struct fake_req *req,
    struct fake_resp *resp);

void
fake_problem(struct fake_resp *resp, int status, const char *detail,
    json_object *errors)
{
	set_problem(resp, status, detail, errors);
}

void
fake_json(struct fake_resp *resp, int status, json_object *o)
{
	set_json(resp, status, o);
}

void
fake_empty(struct fake_resp *resp, int status)
{
	set_empty(resp, status);
}

json_object *
fake_body(const struct fake_req *req, struct fake_resp *resp)
{
	return parse_body(req, resp);
}

/* %-decode src; plus_space: '+' means ' ' (query strings).  NULL when
 * malformed or holding a NUL.  Caller frees. */
static char *
pct_decode(const char *src, size_t n, bool plus_space)
{
	char *out = xmalloc(n + 1), *o = out;
	size_t i;

	for (i = 0; i < n; i++) {
		if (src[i] == '%') {
			char hex[3];
			long c;

			if (i + 2 >= n) {
				free(out);
				return NULL;
			}
			hex[0] = src[i + 1];
			hex[1] = src[i + 2];
			hex[2] = '\0';
			if (!isxdigit((unsigned char)hex[0]) ||
			    !isxdigit((unsigned char)hex[1])) {
				free(out);
				return NULL;
			}
			c = strtol(hex, NULL, 16);
			if (c == 0) {
				free(out);
				return NULL;
			}
			*o++ = (char)c;
			i += 2;
		} else if (plus_space && src[i] == '+') {
			*o++ = ' ';
		} else {
			*o++ = src[i];
		}
	}
	*o = '\0';
	return out;
}

char *
fake_query_get(const char *query, const char *name)
{
	const char *p = query;
	size_t nl = strlen(name);

	while (p != NULL && *p != '\0') {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));

		if (eq != NULL && (size_t)(eq - p) == nl &&
		    strncmp(p, name, nl) == 0)
			return pct_decode(eq + 1, (size_t)(end - eq - 1), true);
		if (eq == NULL && (size_t)(end - p) == nl &&
		    strncmp(p, name, nl) == 0)
			return xstrdup("");
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

/* ----------------------------------------------------------- counters ---- */

static void
count_call(const char *key)
{
	size_t i;

	S.total++;
	for (i = 0; i < S.ncalls; i++)
		if (strcmp(S.calls[i].key, key) == 0) {
			S.calls[i].n++;
			return;
		}
	S.calls = xrealloc(S.calls, (S.ncalls + 1) * sizeof(*S.calls));
	S.calls[S.ncalls].key = xstrdup(key);
	S.calls[S.ncalls].n = 1;
	S.ncalls++;
}

static void
counters_clear(void)
{
	size_t i;

	for (i = 0; i < S.ncalls; i++)
		free(S.calls[i].key);
	free(S.calls);
	S.calls = NULL;
	S.ncalls = 0;
	S.total = 0;
}

/* RateLimit / RateLimit-Policy headers; limited: the 429 form. */
static void
add_ratelimit_headers(struct fake_resp *resp, bool limited, long retry)
{
	int64_t now = clock_mono_ms();
	int w;

	sb_adds(&resp->headers, "RateLimit: ");
	for (w = 0; w < 3; w++) {
		long left, reset;

		if (S.win_start[w] == 0 ||
		    now - S.win_start[w] >= rl_window[w] * 1000) {
			S.win_start[w] = now;
			S.win_count[w] = 0;
		}
		S.win_count[w]++;
		left = rl_quota[w] - S.win_count[w];
		if (left < 0)
			left = 0;
		reset = (long)((S.win_start[w] + rl_window[w] * 1000 - now +
		    999) / 1000);
		if (limited && w == 0) {
			left = 0;
			reset = retry;
		}
		sb_addf(&resp->headers, "%s\"%s\";r=%ld;t=%ld",
		    w ? ", " : "", rl_name[w], left, reset);
	}
	sb_adds(&resp->headers, "\r\nRateLimit-Policy: ");
	for (w = 0; w < 3; w++)
		sb_addf(&resp->headers, "%s\"%s\";q=%ld;w=%ld",
		    w ? ", " : "", rl_name[w], rl_quota[w], rl_window[w]);
	sb_adds(&resp->headers, "\r\n");
}

/* ---------------------------------------------------------------- pods ---- */

static void
pod_free(struct pod *p)
{
	free(p->name);
	free(p->image);
	free(p->args);
	free(p->registry);
	free(p->dc_id);
	json_object_put(p->env);
	json_object_put(p->ports);
	json_object_put(p->mounts);
	free(p);
}

static void
pods_clear(void)
{
	size_t i;

	for (i = 0; i < S.npods; i++)
		pod_free(S.pods[i]);
	free(S.pods);
	S.pods = NULL;
	S.npods = 0;
	fake_billing_clear();
}

static struct pod *
pod_find(const char *id)
{
	size_t i;

	for (i = 0; i < S.npods; i++)
		if (strcmp(S.pods[i]->id, id) == 0)
			return S.pods[i];
	return NULL;
}

/* The pod's log hears of its new status, which began at monotonic ms
 * mono_at (where: NULL or more words). */
static void
pod_logged(const struct pod *p, int64_t mono_at, const char *where)
{
	fake_logs_status(p->id, status_names[p->status], clock_wall_ms() -
	    (clock_mono_ms() - mono_at), where);
}
static void pod_mount_sync(struct pod *p);

/* Walk the status forward by the time that has passed. */
static void
pod_advance(struct pod *p)
{
	int64_t now = clock_mono_ms();
	long d = S.opt->state_delay_ms;
	char where[64];
	int guard;

	for (guard = 0; guard < 4; guard++) {
		if (p->status == ST_PROVISIONING && now - p->since >= d) {
			p->status = ST_STARTING;
			p->since += d;
			p->placed = true;
			snprintf(where, sizeof(where), "(placed in %s)",
			    p->dc_id);
			pod_logged(p, p->since, where);
		} else if (p->status == ST_STARTING && now - p->since >= d) {
			p->status = ST_RUNNING;
			p->since += d;
			p->started_at = clock_wall_ms() - (now - p->since);
			pod_logged(p, p->since, NULL);
			pod_mount_sync(p);
		} else {
			break;
		}
	}
}

void
fake_api_tick(const char *pod_id)
{
	struct pod *p = pod_find(pod_id);

	if (p != NULL)
		pod_advance(p);
}

/* The network volume a pod mounts (and where), or NULL. */
static const char *
pod_volume(const struct pod *p, const char **path)
{
	json_object *net = p->mounts ? ju_arr(p->mounts, "network") : NULL;
	json_object *m = net && json_object_array_length(net) > 0 ?
	    json_object_array_get_idx(net, 0) : NULL;

	*path = m ? ju_str(m, "path") : NULL;
	return m ? ju_str(m, "volumeId") : NULL;
}

/* Its volume is linked at its mount path while the pod is RUNNING. */
static void
pod_mount_sync(struct pod *p)
{
	const char *path, *vid = pod_volume(p, &path);

	if (vid != NULL)
		fake_volume_mount(vid, path, p->status == ST_RUNNING);
}

bool
fake_api_volume_in_use(const char *id)
{
	const char *path, *vid;
	size_t i;

	for (i = 0; i < S.npods; i++) {
		pod_advance(S.pods[i]);
		vid = pod_volume(S.pods[i], &path);
		if (S.pods[i]->status != ST_TERMINATED && vid != NULL &&
		    strcmp(vid, id) == 0)
			return true;
	}
	return false;
}

uint64_t
fake_rand(void)
{
	return rng_next();
}

static bool
pod_has_port(const struct pod *p, const char *port)
{
	size_t i, n = json_object_array_length(p->ports);

	for (i = 0; i < n; i++)
		if (strcmp(json_object_get_string(
		    json_object_array_get_idx(p->ports, i)), port) == 0)
			return true;
	return false;
}

static long
pod_rate_cents(const struct pod *p)
{
	if (p->gpu != NULL)
		return (long)(p->community ? p->gpu->cents_community :
		    p->gpu->cents_secure) * p->gpu_count;
	return (long)p->cpu->cents_per_vcpu * p->vcpus;
}

/*
 * Tell the billing ledger what p costs from now on, by status: compute at
 * its rate while PROVISIONING, STARTING or RUNNING (as "cost" shows);
 * disk storage at RunPod's published rates, per GB per month of 730 h:
 * container and volume disk at 0.10 while not stopped, the volume alone
 * at 0.20 while EXITED (or ERROR); nothing once TERMINATED.
 */
static void
pod_bill(const struct pod *p)
{
	double compute = 0, disk = 0, vol = 0;
	json_object *x;

	x = ju_obj(p->mounts, "persistent");
	if (x != NULL && json_object_object_get_ex(x, "size", &x))
		vol = json_object_get_double(x);
	switch (p->status) {
	case ST_PROVISIONING:
	case ST_STARTING:
	case ST_RUNNING:
		compute = (double)pod_rate_cents(p) / 100.0;
		disk = ((double)p->disk + vol) * 0.10 / 730.0;
		break;
	case ST_EXITED:
	case ST_ERROR:
		disk = vol * 0.20 / 730.0;
		break;
	case ST_TERMINATED:
		break;
	}
	fake_billing_mark(p->id, p->gpu == NULL, clock_wall_ms(), compute,
	    disk);
}

static void
add_actions(json_object *o, enum pod_status st)
{
	static const char *const by_status[][4] = {
		[ST_PROVISIONING] = { "stop", "terminate", NULL, NULL },
		[ST_STARTING] = { "stop", "terminate", NULL, NULL },
		[ST_RUNNING] = { "stop", "restart", "terminate", NULL },
		[ST_EXITED] = { "start", "terminate", NULL, NULL },
		[ST_ERROR] = { "start", "terminate", NULL, NULL },
		[ST_TERMINATED] = { NULL, NULL, NULL, NULL },
	};
	json_object *a = json_object_new_array();
	int i;

	for (i = 0; i < 4 && by_status[st][i] != NULL; i++)
		json_object_array_add(a,
		    json_object_new_string(by_status[st][i]));
	json_object_object_add(o, "actions", a);
}

static bool
action_allowed(enum pod_status st, const char *action)
{
	switch (st) {
	case ST_PROVISIONING:
	case ST_STARTING:
		return !strcmp(action, "stop") || !strcmp(action, "terminate");
	case ST_RUNNING:
		return !strcmp(action, "stop") || !strcmp(action, "restart") ||
		    !strcmp(action, "terminate");
	case ST_EXITED:
	case ST_ERROR:
		return !strcmp(action, "start") ||
		    !strcmp(action, "terminate");
	default:
		return false;
	}
}

static json_object *
ssh_endpoint(const char *host, int port, const char *user)
{
	json_object *e = json_object_new_object();
	char cmd[512];

	json_object_object_add(e, "host", json_object_new_string(host));
	json_object_object_add(e, "port", json_object_new_int(port));
	json_object_object_add(e, "username", json_object_new_string(user));
	if (port == 22)
		snprintf(cmd, sizeof(cmd), "ssh %s@%s", user, host);
	else
		snprintf(cmd, sizeof(cmd), "ssh %s@%s -p %d", user, host,
		    port);
	json_object_object_add(e, "command", json_object_new_string(cmd));
	return e;
}

static json_object *
pod_render(struct pod *p)
{
	json_object *o = json_object_new_object(), *x, *ssh;
	bool running = p->status == ST_RUNNING;
	bool direct = running && !S.never_ssh && pod_has_port(p, "22/tcp");
	char buf[64];

	json_object_object_add(o, "id", json_object_new_string(p->id));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "image", json_object_new_string(p->image));
	json_object_object_add(o, "args", json_object_new_string(p->args));
	json_object_object_add(o, "disk", json_object_new_int(p->disk));
	json_object_object_add(o, "ports", ju_copy(p->ports));
	json_object_object_add(o, "env", ju_copy(p->env));
	json_object_object_add(o, "registry", ju_new_str(p->registry));
	json_object_object_add(o, "status",
	    json_object_new_string(status_names[p->status]));
	add_actions(o, p->status);
	json_object_object_add(o, "mounts", ju_copy(p->mounts));
	if (p->gpu != NULL) {
		x = json_object_new_object();
		json_object_object_add(x, "id",
		    json_object_new_string(p->gpu->id));
		json_object_object_add(x, "count",
		    json_object_new_int(p->gpu_count));
		json_object_object_add(o, "gpu", x);
	} else {
		x = json_object_new_object();
		json_object_object_add(x, "id",
		    json_object_new_string(p->cpu->id));
		json_object_object_add(x, "vcpuCount",
		    json_object_new_int(p->vcpus));
		json_object_object_add(x, "memory",
		    json_object_new_int(p->vcpus * p->cpu->gb_per_vcpu));
		json_object_object_add(o, "cpu", x);
	}
	json_object_object_add(o, "cloud",
	    json_object_new_string(p->community ? "COMMUNITY" : "SECURE"));
	json_object_object_add(o, "dataCenterId",
	    p->placed ? json_object_new_string(p->dc_id) : NULL);
	json_object_object_add(o, "cudaVersion",
	    p->placed && p->gpu != NULL ? json_object_new_string("12.8") :
	    NULL);
	ssh = json_object_new_object();
	if (p->placed && p->status != ST_TERMINATED) {
		/* The proxy is a dead end on purpose (port 1 on loopback):
		 * clients must use ssh.direct. */
		snprintf(buf, sizeof(buf), "%s-%s", p->id, p->proxy_tag);
		json_object_object_add(ssh, "proxy",
		    ssh_endpoint("127.0.0.1", 1, buf));
	} else {
		json_object_object_add(ssh, "proxy", NULL);
	}
	json_object_object_add(ssh, "direct", direct ?
	    ssh_endpoint(S.opt->ssh_host, S.opt->ssh_port, "root") : NULL);
	json_object_object_add(o, "ssh", ssh);
	json_object_object_add(o, "template", NULL);
	json_object_object_add(o, "cost", money(
	    p->status == ST_PROVISIONING || p->status == ST_STARTING ||
	    running ? pod_rate_cents(p) : 0));
	json_object_object_add(o, "locked", json_object_new_boolean(0));
	x = json_object_new_object();
	json_object_object_add(x, "enabled",
	    json_object_new_boolean(p->global_net));
	if (p->global_net) {
		snprintf(buf, sizeof(buf), "10.65.%u.%u",
		    (unsigned char)p->id[0], (unsigned char)p->id[1]);
		json_object_object_add(x, "ip", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "%s.runpod.internal", p->id);
		json_object_object_add(x, "internalDns",
		    json_object_new_string(buf));
	}
	json_object_object_add(o, "globalNetworking", x);
	if (running) {
		json_object *rt = json_object_new_object(), *arr, *u;
		int64_t up = (clock_wall_ms() - p->started_at) / 1000;
		size_t i, n = json_object_array_length(p->ports);
		int k;

		json_object_object_add(rt, "uptime",
		    json_object_new_int64(up < 0 ? 0 : up));
		arr = json_object_new_array();
		for (k = 0; p->gpu != NULL && k < p->gpu_count; k++) {
			u = json_object_new_object();
			json_object_object_add(u, "util",
			    json_object_new_int(0));
			json_object_object_add(u, "memoryUtil",
			    json_object_new_int(0));
			json_object_array_add(arr, u);
		}
		json_object_object_add(rt, "gpus", arr);
		u = json_object_new_object();
		json_object_object_add(u, "util", json_object_new_int(1));
		json_object_object_add(rt, "cpu", u);
		u = json_object_new_object();
		json_object_object_add(u, "util", json_object_new_int(3));
		json_object_object_add(rt, "memory", u);
		arr = json_object_new_array();
		for (i = 0; i < n; i++) {
			const char *ps = json_object_get_string(
			    json_object_array_get_idx(p->ports, i));
			long priv = strtol(ps, NULL, 10);
			bool tcp = strstr(ps, "/tcp") != NULL;
			bool pub = tcp && (priv != 22 || direct);

			u = json_object_new_object();
			json_object_object_add(u, "private",
			    json_object_new_int((int)priv));
			json_object_object_add(u, "public", !pub ? NULL :
			    json_object_new_int(priv == 22 ?
			    S.opt->ssh_port : 40000 + (int)i));
			json_object_object_add(u, "type",
			    json_object_new_string(tcp ? "tcp" : "http"));
			json_object_object_add(u, "ip", pub ?
			    json_object_new_string(S.opt->ssh_host) : NULL);
			json_object_array_add(arr, u);
		}
		json_object_object_add(rt, "ports", arr);
		json_object_object_add(o, "runtime", rt);
	} else {
		json_object_object_add(o, "runtime", NULL);
	}
	ju_iso8601(p->created_at, buf, sizeof(buf));
	json_object_object_add(o, "createdAt", json_object_new_string(buf));
	if (p->started_at != 0) {
		ju_iso8601(p->started_at, buf, sizeof(buf));
		json_object_object_add(o, "startedAt",
		    json_object_new_string(buf));
	} else {
		json_object_object_add(o, "startedAt", NULL);
	}
	return o;
}

/* -------------------------------------------------------- validation ---- */

struct verr {
	json_object *list;	/* array of strings */
};

static void
verr_add(struct verr *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
verr_add(struct verr *v, const char *fmt, ...)
{
	struct strbuf sb = SB_INIT;
	va_list ap;
	char *s;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	s = sb_take(&sb);
	json_object_array_add(v->list, json_object_new_string(s));
	free(s);
}

static bool
want_type(struct verr *v, const char *path, json_object *val,
    json_type t)
{
	static const char *const names[] = {
		[json_type_null] = "null", [json_type_boolean] = "boolean",
		[json_type_double] = "number", [json_type_int] = "integer",
		[json_type_object] = "object", [json_type_array] = "array",
		[json_type_string] = "string",
	};

	if (val != NULL && json_object_is_type(val, t))
		return true;
	/* an integer is also a number */
	if (t == json_type_double && val != NULL &&
	    json_object_is_type(val, json_type_int))
		return true;
	verr_add(v, "%s: expected %s, got %s", path, names[t],
	    json_type_label(val));
	return false;
}

static void
check_unknown(struct verr *v, const char *path, json_object *o,
    const char *const *allowed)
{
	json_object_object_foreach(o, key, val) {
		const char *const *a;
		bool ok = false;

		(void)val;
		for (a = allowed; *a != NULL; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok)
			verr_add(v, "%s: additional properties '%s' not "
			    "allowed", path, key);
	}
}

static bool
member(json_object *o, const char *key, json_object **val)
{
	return json_object_object_get_ex(o, key, val);
}

static void
check_int_min(struct verr *v, const char *path, json_object *val,
    int64_t min)
{
	if (!want_type(v, path, val, json_type_int))
		return;
	if (json_object_get_int64(val) < min)
		verr_add(v, "%s: must be >= %lld", path, (long long)min);
}

static bool
cuda_version_ok(const char *s)
{
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p++ != '.' || !isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	return *p == '\0';
}

static void
check_string_array(struct verr *v, const char *path, json_object *arr)
{
	size_t i, n;
	char sub[128];

	if (!want_type(v, path, arr, json_type_array))
		return;
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		want_type(v, sub, json_object_array_get_idx(arr, i),
		    json_type_string);
	}
}

static void
validate_gpu(struct verr *v, json_object *g)
{
	static const char *const allowed[] = { "id", "count",
	    "allowedCudaVersions", "minCudaVersion", NULL };
	json_object *x;

	if (!want_type(v, "$.gpu", g, json_type_object))
		return;
	check_unknown(v, "$.gpu", g, allowed);
	if (!member(g, "id", &x))
		verr_add(v, "$.gpu: missing property 'id'");
	else
		want_type(v, "$.gpu.id", x, json_type_string);
	if (member(g, "count", &x))
		check_int_min(v, "$.gpu.count", x, 1);
	if (member(g, "allowedCudaVersions", &x)) {
		check_string_array(v, "$.gpu.allowedCudaVersions", x);
		if (x != NULL && json_object_is_type(x, json_type_array)) {
			size_t i, n = json_object_array_length(x);

			for (i = 0; i < n; i++) {
				json_object *e = json_object_array_get_idx(x,
				    i);

				if (e != NULL && json_object_is_type(e,
				    json_type_string) && !cuda_version_ok(
				    json_object_get_string(e)))
					verr_add(v, "$.gpu.allowedCudaVersions"
					    "[%zu]: does not match pattern "
					    "'^\\d+\\.\\d+$'", i);
			}
		}
	}
	if (member(g, "minCudaVersion", &x) &&
	    want_type(v, "$.gpu.minCudaVersion", x, json_type_string) &&
	    !cuda_version_ok(json_object_get_string(x)))
		verr_add(v, "$.gpu.minCudaVersion: does not match pattern "
		    "'^\\d+\\.\\d+$'");
}

static void
validate_cpu(struct verr *v, json_object *c)
{
	static const char *const allowed[] = { "id", "vcpuCount", NULL };
	json_object *x;

	if (!want_type(v, "$.cpu", c, json_type_object))
		return;
	check_unknown(v, "$.cpu", c, allowed);
	if (!member(c, "id", &x))
		verr_add(v, "$.cpu: missing property 'id'");
	else if (want_type(v, "$.cpu.id", x, json_type_string) &&
	    json_object_get_string_len(x) < 1)
		verr_add(v, "$.cpu.id: length must be >= 1");
	if (!member(c, "vcpuCount", &x))
		verr_add(v, "$.cpu: missing property 'vcpuCount'");
	else
		check_int_min(v, "$.cpu.vcpuCount", x, 2);
}

static void
validate_mounts(struct verr *v, json_object *m)
{
	static const char *const allowed[] = { "persistent", "network", NULL };
	static const char *const p_allowed[] = { "size", "path", NULL };
	static const char *const n_allowed[] = { "volumeId", "path", NULL };
	json_object *x, *y;

	if (!want_type(v, "$.mounts", m, json_type_object))
		return;
	check_unknown(v, "$.mounts", m, allowed);
	if (member(m, "persistent", &x) &&
	    want_type(v, "$.mounts.persistent", x, json_type_object)) {
		check_unknown(v, "$.mounts.persistent", x, p_allowed);
		if (!member(x, "size", &y))
			verr_add(v, "$.mounts.persistent: missing property "
			    "'size'");
		else
			check_int_min(v, "$.mounts.persistent.size", y, 10);
		if (!member(x, "path", &y))
			verr_add(v, "$.mounts.persistent: missing property "
			    "'path'");
		else
			want_type(v, "$.mounts.persistent.path", y,
			    json_type_string);
	}
	if (member(m, "network", &x) &&
	    want_type(v, "$.mounts.network", x, json_type_array)) {
		size_t i, n = json_object_array_length(x);
		char path[64];

		if (n > 1)
			verr_add(v, "$.mounts.network: must have at most 1 "
			    "items");
		for (i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(x, i);

			snprintf(path, sizeof(path), "$.mounts.network[%zu]",
			    i);
			if (!want_type(v, path, e, json_type_object))
				continue;
			check_unknown(v, path, e, n_allowed);
			if (!member(e, "volumeId", &y))
				verr_add(v, "%s: missing property "
				    "'volumeId'", path);
			else
				want_type(v, path, y, json_type_string);
			if (!member(e, "path", &y))
				verr_add(v, "%s: missing property 'path'",
				    path);
			else
				want_type(v, path, y, json_type_string);
		}
	}
}

static void
validate_enum(struct verr *v, const char *path, json_object *x,
    const char *const *values, const char *list)
{
	const char *const *p;

	if (!want_type(v, path, x, json_type_string))
		return;
	for (p = values; *p != NULL; p++)
		if (strcmp(*p, json_object_get_string(x)) == 0)
			return;
	verr_add(v, "%s: value must be one of %s", path, list);
}

/* Schema checks of a CreatePodRequest (the 422 class). */
static void
validate_create(struct verr *v, json_object *b)
{
	static const char *const allowed[] = { "name", "image", "args",
	    "disk", "env", "ports", "registry", "cloud", "cpu",
	    "dataCenterIds", "globalNetworking", "gpu", "mounts",
	    "startJupyter", "startSsh", "templateId", NULL };
	static const char *const clouds[] = { "SECURE", "COMMUNITY", NULL };
	json_object *x;

	check_unknown(v, "$", b, allowed);
	if (!member(b, "name", &x))
		verr_add(v, "$: missing property 'name'");
	else if (want_type(v, "$.name", x, json_type_string) &&
	    json_object_get_string_len(x) < 1)
		verr_add(v, "$.name: length must be >= 1");
	if (!member(b, "image", &x)) {
		if (!member(b, "templateId", &x))
			verr_add(v, "$: missing property 'image'");
	} else {
		want_type(v, "$.image", x, json_type_string);
	}
	if (member(b, "args", &x))
		want_type(v, "$.args", x, json_type_string);
	if (member(b, "disk", &x))
		check_int_min(v, "$.disk", x, 1);
	if (member(b, "env", &x) &&
	    want_type(v, "$.env", x, json_type_object)) {
		json_object_object_foreach(x, key, val) {
			char path[300];

			snprintf(path, sizeof(path), "$.env.%.256s", key);
			want_type(v, path, val, json_type_string);
		}
	}
	if (member(b, "ports", &x))
		check_string_array(v, "$.ports", x);
	if (member(b, "registry", &x) && x != NULL)
		want_type(v, "$.registry", x, json_type_string);
	if (member(b, "cloud", &x))
		validate_enum(v, "$.cloud", x, clouds, "SECURE, COMMUNITY");
	if (member(b, "gpu", &x))
		validate_gpu(v, x);
	if (member(b, "cpu", &x))
		validate_cpu(v, x);
	if (member(b, "dataCenterIds", &x))
		check_string_array(v, "$.dataCenterIds", x);
	if (member(b, "globalNetworking", &x))
		want_type(v, "$.globalNetworking", x, json_type_boolean);
	if (member(b, "startJupyter", &x))
		want_type(v, "$.startJupyter", x, json_type_boolean);
	if (member(b, "startSsh", &x))
		want_type(v, "$.startSsh", x, json_type_boolean);
	if (member(b, "templateId", &x) &&
	    want_type(v, "$.templateId", x, json_type_string) &&
	    json_object_get_string_len(x) < 1)
		verr_add(v, "$.templateId: length must be >= 1");
	if (member(b, "mounts", &x))
		validate_mounts(v, x);
}

static bool
port_spec_ok(const char *s)
{
	char *e;
	long n;

	if (!isdigit((unsigned char)*s))
		return false;
	n = strtol(s, &e, 10);
	if (n < 1 || n > 65535)
		return false;
	return strcmp(e, "/tcp") == 0 || strcmp(e, "/http") == 0;
}

static const struct gpu_type *
gpu_find(const char *id)
{
	size_t i;

	for (i = 0; i < N_GPU_TYPES; i++)
		if (strcmp(gpu_types[i].id, id) == 0)
			return &gpu_types[i];
	return NULL;
}

static bool
in_list(char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool
no_capacity_for(const char *gpu_id)
{
	return in_list(S.nocap, S.n_nocap, gpu_id);
}

/* Replace a fault's list of GPU ids with the strings of ids (an array). */
static void
list_set(char ***list, size_t *n, json_object *ids)
{
	size_t i, k = json_object_array_length(ids);

	for (i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = k ? xcalloc(k, sizeof(char *)) : NULL;
	for (i = 0; i < k; i++)
		(*list)[i] = xstrdup(json_object_get_string(
		    json_object_array_get_idx(ids, i)));
	*n = k;
}

/* ---------------------------------------------------------- handlers ---- */

static json_object *
parse_body(const struct fake_req *req, struct fake_resp *resp)
{
	json_object *o = NULL;
	char *err = NULL, *detail;

	if (req->body_len == 0) {
		set_problem(resp, 400, "request body is required", NULL);
		return NULL;
	}
	if (ju_parse(req->body, req->body_len, 32, MAX_JSON_STR, &o,
	    &err) < 0) {
		detail = xasprintf("request body is not valid JSON: %s", err);
		set_problem(resp, 400, detail, NULL);
		free(detail);
		free(err);
		return NULL;
	}
	if (o == NULL) {	/* the body was JSON null */
		json_object *errs = json_object_new_array();

		json_object_array_add(errs,
		    json_object_new_string("$: expected object, got null"));
		set_problem(resp, 422, "Request validation failed.", errs);
	}
	return o;
}

static void
h_create(const struct fake_req *req, struct fake_resp *resp)
{
	json_object *b, *x, *gpu = NULL, *cpu = NULL, *mounts = NULL;
	struct verr v;
	struct pod *p;
	const struct gpu_type *gt = NULL;
	const struct cpu_flavor *cf = NULL;
	int count = 1, vcpus = 0;
	bool community = false;
	const char *tmpl = NULL, *vol_dc = NULL;
	size_t i;

	b = parse_body(req, resp);
	if (b == NULL)
		return;
	v.list = json_object_new_array();
	if (!json_object_is_type(b, json_type_object))
		verr_add(&v, "$: expected object, got %s",
		    json_type_label(b));
	else
		validate_create(&v, b);
	if (json_object_array_length(v.list) > 0) {
		set_problem(resp, 422, "Request validation failed.", v.list);
		json_object_put(b);
		return;
	}
	json_object_put(v.list);

	/* handler rules: 400 */
	member(b, "gpu", &gpu);
	member(b, "cpu", &cpu);
	if ((gpu == NULL) == (cpu == NULL)) {
		set_problem(resp, 400, "exactly one of 'gpu' or 'cpu' must be "
		    "set", NULL);
		goto out;
	}
	if (member(b, "mounts", &mounts) && mounts != NULL &&
	    json_object_object_get_ex(mounts, "persistent", NULL) &&
	    json_object_object_get_ex(mounts, "network", NULL)) {
		set_problem(resp, 400, "at most one of 'mounts.persistent' "
		    "and 'mounts.network' may be set", NULL);
		goto out;
	}
	if (mounts != NULL && (x = ju_arr(mounts, "network")) != NULL &&
	    json_object_array_length(x) > 0) {
		const char *vid = ju_str(json_object_array_get_idx(x, 0),
		    "volumeId");

		if ((vol_dc = fake_volume_dc(vid)) == NULL) {
			char *d = xasprintf("network volume '%.64s' not found",
			    vid);
			set_problem(resp, 400, d, NULL);
			free(d);
			goto out;
		}
		if ((x = ju_arr(b, "dataCenterIds")) != NULL &&
		    json_object_array_length(x) > 0) {
			for (i = 0; i < json_object_array_length(x); i++)
				if (strcmp(json_object_get_string(
				    json_object_array_get_idx(x, i)),
				    vol_dc) == 0)
					break;
			if (i == json_object_array_length(x)) {
				set_problem(resp, 400, "the network volume is "
				    "not in any of 'dataCenterIds'", NULL);
				goto out;
			}
		}
	}
	if (cpu != NULL && mounts != NULL &&
	    json_object_object_get_ex(mounts, "persistent", NULL)) {
		set_problem(resp, 400, "'mounts.persistent' is not allowed "
		    "on a CPU pod", NULL);
		goto out;
	}
	if (gpu != NULL && ju_arr(gpu, "allowedCudaVersions") != NULL &&
	    json_object_array_length(ju_arr(gpu, "allowedCudaVersions")) >
	    0 && ju_str(gpu, "minCudaVersion") != NULL) {
		set_problem(resp, 400, "'gpu.allowedCudaVersions' and "
		    "'gpu.minCudaVersion' are mutually exclusive", NULL);
		goto out;
	}
	if ((x = ju_arr(b, "ports")) != NULL) {
		for (i = 0; i < json_object_array_length(x); i++) {
			const char *ps = json_object_get_string(
			    json_object_array_get_idx(x, i));

			if (!port_spec_ok(ps)) {
				char *d = xasprintf("invalid port '%.64s': "
				    "expected '<port>/tcp' or '<port>/http'",
				    ps);
				set_problem(resp, 400, d, NULL);
				free(d);
				goto out;
			}
		}
	}
	if (ju_str(b, "cloud") != NULL &&
	    strcmp(ju_str(b, "cloud"), "COMMUNITY") == 0)
		community = true;
	if (S.rule_detail != NULL) {
		/* the rule_violation fault: a rule of the handler layer the
		 * request breaks, the same on every candidate */
		set_problem(resp, 400, S.rule_detail, NULL);
		goto out;
	}
	tmpl = ju_str(b, "templateId");
	if (tmpl != NULL && strcmp(tmpl, FAKE_TEMPLATE_ID) != 0) {
		set_problem(resp, 404, "template not found", NULL);
		goto out;
	}
	if (S.balance) {
		set_problem(resp, 402, "Insufficient balance: add funds to "
		    "your account to deploy this pod.", NULL);
		goto out;
	}
	if (gpu != NULL) {
		int64_t c64 = 1;

		(void)ju_int(gpu, "count", &c64);
		count = (int)c64;
		gt = gpu_find(ju_str(gpu, "id"));
		if (gt == NULL) {
			char *d = xasprintf("unknown GPU type '%.128s'",
			    ju_str(gpu, "id"));
			set_problem(resp, 400, d, NULL);
			free(d);
			goto out;
		}
		if (in_list(S.forbid, S.n_forbid, gt->id)) {
			/* the forbidden fault: this account may not use the
			 * type's pool (createPod's "403: your account cannot
			 * access the requested pool") */
			set_problem(resp, 403, FORBIDDEN_POOL_DETAIL, NULL);
			goto out;
		}
		if (no_capacity_for(gt->id) ||
		    /* a volume's pod runs in its data center */
		    (vol_dc != NULL && strcmp(vol_dc, gt->dc_id) != 0) ||
		    (community && !gt->community) ||
		    (!community && !gt->secure) ||
		    count > (community ? gt->max_community :
		    gt->max_secure)) {
			set_problem(resp, 400, NO_CAPACITY_DETAIL, NULL);
			goto out;
		}
	} else {
		int64_t n = 0;

		for (i = 0; i < N_CPU_FLAVORS; i++)
			if (strcmp(cpu_flavors[i].id, ju_str(cpu, "id")) == 0)
				cf = &cpu_flavors[i];
		(void)ju_int(cpu, "vcpuCount", &n);
		if (cf == NULL || n > 64 || (n & (n - 1)) != 0) {
			set_problem(resp, 400, "unknown CPU flavor or a vCPU "
			    "count it does not offer", NULL);
			goto out;
		}
		vcpus = (int)n;
	}

	p = xcalloc(1, sizeof(*p));
	do {
		for (i = 0; i < 10; i++)
			p->id[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[
			    rng_next() % 36];
		p->id[10] = '\0';
	} while (pod_find(p->id) != NULL);
	snprintf(p->proxy_tag, sizeof(p->proxy_tag), "%08llx",
	    (unsigned long long)(rng_next() & 0xffffffffULL));
	p->name = xstrdup(ju_str(b, "name"));
	p->image = xstrdup(ju_str(b, "image") ? ju_str(b, "image") :
	    FAKE_TEMPLATE_IMAGE);
	p->args = xstrdup(ju_str(b, "args") ? ju_str(b, "args") : "");
	p->registry = ju_str(b, "registry") ? xstrdup(ju_str(b, "registry")) :
	    NULL;
	p->disk = 50;
	{
		int64_t d;

		if (ju_int(b, "disk", &d) == 0)
			p->disk = (int)(d > 100000 ? 100000 : d);
	}
	p->env = ju_obj(b, "env") ? ju_copy(ju_obj(b, "env")) :
	    json_object_new_object();
	if (ju_arr(b, "ports") != NULL)
		p->ports = ju_copy(ju_arr(b, "ports"));
	else if (tmpl != NULL) {
		p->ports = json_object_new_array();
		json_object_array_add(p->ports,
		    json_object_new_string("22/tcp"));
	} else
		p->ports = json_object_new_array();
	p->mounts = mounts != NULL ? ju_copy(mounts) :
	    json_object_new_object();
	p->gpu = gt;
	p->gpu_count = count;
	p->cpu = cf;
	p->vcpus = vcpus;
	p->community = community;
	{
		bool g = false;

		(void)ju_bool(b, "globalNetworking", &g);
		p->global_net = g;
	}
	x = ju_arr(b, "dataCenterIds");
	if (vol_dc != NULL)
		p->dc_id = xstrdup(vol_dc);
	else if (x != NULL && json_object_array_length(x) > 0)
		p->dc_id = xstrdup(json_object_get_string(
		    json_object_array_get_idx(x, 0)));
	else
		p->dc_id = xstrdup(gt ? gt->dc_id : "EU-RO-1");
	p->status = ST_PROVISIONING;
	p->since = clock_mono_ms();
	p->created_at = clock_wall_ms();
	pod_bill(p);
	S.pods = xrealloc(S.pods, (S.npods + 1) * sizeof(*S.pods));
	S.pods[S.npods++] = p;
	pod_logged(p, p->since, "(created)");
	log_kv(LOG_INFO, "pod_created", "pod created", "pod", p->id,
	    "gpu", gt ? gt->id : cf->id, NULL);

	if (S.create_500) {
		S.create_500 = false;
		set_problem(resp, 500, "An internal error occurred "
		    "(injected after the pod was created).", NULL);
		goto out;
	}
	set_json(resp, 201, pod_render(p));
out:
	json_object_put(b);
}

static void
h_list(const struct fake_req *req, struct fake_resp *resp)
{
	json_object *o = json_object_new_object(), *a =
	    json_object_new_array();
	size_t i;

	(void)req;
	for (i = 0; i < S.npods; i++) {
		pod_advance(S.pods[i]);
		if (S.pods[i]->status == ST_TERMINATED)
			continue;
		json_object_array_add(a, pod_render(S.pods[i]));
	}
	json_object_object_add(o, "pods", a);
	set_json(resp, 200, o);
}

static void
h_get(struct pod *p, struct fake_resp *resp)
{
	pod_advance(p);
	set_json(resp, 200, pod_render(p));
}

static void
pod_terminate(struct pod *p)
{
	p->status = ST_TERMINATED;
	p->since = clock_mono_ms();
	pod_logged(p, p->since, NULL);
	pod_mount_sync(p);
	pod_bill(p);
	log_kv(LOG_INFO, "pod_terminated", "pod terminated", "pod", p->id,
	    NULL);
}

static void
h_delete(struct pod *p, struct fake_resp *resp)
{
	pod_advance(p);
	if (p->status != ST_TERMINATED)
		pod_terminate(p);
	set_empty(resp, 204);
}

static void
h_action(const struct fake_req *req, struct pod *p, struct fake_resp *resp)
{
	static const char *const actions[] = { "start", "stop", "restart",
	    "terminate", NULL };
	static const char *const allowed[] = { "action", NULL };
	json_object *b, *x;
	struct verr v;
	const char *a;
	char *d;

	b = parse_body(req, resp);
	if (b == NULL)
		return;
	v.list = json_object_new_array();
	if (!json_object_is_type(b, json_type_object)) {
		verr_add(&v, "$: expected object, got %s",
		    json_type_label(b));
	} else {
		check_unknown(&v, "$", b, allowed);
		if (!member(b, "action", &x))
			verr_add(&v, "$: missing property 'action'");
		else
			validate_enum(&v, "$.action", x, actions,
			    "start, stop, restart, terminate");
	}
	if (json_object_array_length(v.list) > 0) {
		set_problem(resp, 422, "Request validation failed.", v.list);
		json_object_put(b);
		return;
	}
	json_object_put(v.list);
	a = ju_str(b, "action");
	pod_advance(p);
	if (!action_allowed(p->status, a)) {
		d = xasprintf("action '%s' is not valid for a pod in status "
		    "%s", a, status_names[p->status]);
		set_problem(resp, 409, d, NULL);
		free(d);
		json_object_put(b);
		return;
	}
	if (strcmp(a, "terminate") == 0) {
		pod_terminate(p);
		set_empty(resp, 204);
	} else {
		if (strcmp(a, "stop") == 0) {
			p->status = ST_EXITED;
		} else {	/* start, restart: the machine is kept */
			p->status = ST_STARTING;
			p->placed = true;
		}
		p->since = clock_mono_ms();
		pod_logged(p, p->since, NULL);
		pod_mount_sync(p);
		pod_bill(p);
		log_kv(LOG_INFO, "pod_action", "pod action", "pod", p->id,
		    "action", a, NULL);
		set_json(resp, 200, pod_render(p));
	}
	json_object_put(b);
}

/* GPU type as the catalog lists it. */
static json_object *
gpu_render(const struct gpu_type *g, bool avail, bool community,
    int64_t count)
{
	json_object *o = json_object_new_object(), *x;

	json_object_object_add(o, "id", json_object_new_string(g->id));
	json_object_object_add(o, "name", json_object_new_string(g->name));
	json_object_object_add(o, "pool", ju_new_str(g->pool));
	json_object_object_add(o, "manufacturer",
	    json_object_new_string("NVIDIA"));
	json_object_object_add(o, "memory", json_object_new_int(g->memory));
	json_object_object_add(o, "secure",
	    json_object_new_boolean(g->secure));
	json_object_object_add(o, "community",
	    json_object_new_boolean(g->community));
	x = json_object_new_object();
	json_object_object_add(x, "secure", money(g->cents_secure));
	json_object_object_add(x, "community", money(g->cents_community));
	json_object_object_add(x, "serverless", money(g->cents_serverless));
	json_object_object_add(o, "price", x);
	x = json_object_new_object();
	json_object_object_add(x, "secure", json_object_new_int(g->max_secure));
	json_object_object_add(x, "community",
	    json_object_new_int(g->max_community));
	json_object_object_add(o, "maxCount", x);
	if (avail) {
		bool none = no_capacity_for(g->id) ||
		    (community ? !g->community : !g->secure) ||
		    count > (community ? g->max_community : g->max_secure);
		const char *lvl = none ? "NONE" : g->availability;

		json_object_object_add(o, "availability",
		    json_object_new_string(lvl));
		if (!none) {
			json_object *dcs = json_object_new_array(), *dc;
			json_object *cv = json_object_new_array(), *e;

			dc = json_object_new_object();
			json_object_object_add(dc, "id",
			    json_object_new_string(g->dc_id));
			json_object_object_add(dc, "name",
			    json_object_new_string(g->dc_name));
			json_object_object_add(dc, "availability",
			    json_object_new_string(lvl));
			json_object_array_add(dcs, dc);
			json_object_object_add(o, "dataCenters", dcs);
			e = json_object_new_object();
			json_object_object_add(e, "version",
			    json_object_new_string("12.8"));
			json_object_object_add(e, "available",
			    json_object_new_boolean(1));
			json_object_array_add(cv, e);
			json_object_object_add(o, "cudaVersions", cv);
		}
	}
	return o;
}

/* Query checks shared by both catalog routes; false when answered. */
static bool
catalog_query(const struct fake_req *req, struct fake_resp *resp,
    bool *avail, bool *community, int64_t *count)
{
	static const char *const with_include_only[] = { "product", "count",
	    "cloud", "countryCodes", "cudaVersions", "minCudaVersion", NULL };
	char *inc = fake_query_get(req->query, "include");
	char *prod = fake_query_get(req->query, "product");
	char *cnt = fake_query_get(req->query, "count");
	char *cloud = fake_query_get(req->query, "cloud");
	bool ok = false;
	const char *const *q;
	char *d = NULL;

	*avail = false;
	*community = false;
	*count = 1;
	if (inc != NULL && strcmp(inc, "AVAILABILITY") != 0) {
		d = xasprintf("include: value must be AVAILABILITY");
		set_problem(resp, 422, "Request validation failed.", NULL);
		goto out;
	}
	if (inc == NULL) {
		for (q = with_include_only; *q != NULL; q++) {
			char *v = fake_query_get(req->query, *q);

			if (v != NULL) {
				free(v);
				d = xasprintf("'%s' is valid only with "
				    "include=AVAILABILITY", *q);
				set_problem(resp, 400, d, NULL);
				goto out;
			}
		}
	} else {
		char *save = NULL, *tok, *dup;

		if (prod == NULL) {
			set_problem(resp, 400, "include=AVAILABILITY requires "
			    "'product' (POD, CLUSTER, SERVERLESS)", NULL);
			goto out;
		}
		dup = xstrdup(prod);
		for (tok = strtok_r(dup, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save))
			if (strcmp(tok, "POD") && strcmp(tok, "CLUSTER") &&
			    strcmp(tok, "SERVERLESS")) {
				free(dup);
				set_problem(resp, 422, "Request validation "
				    "failed.", NULL);
				goto out;
			}
		free(dup);
		if (cnt != NULL) {
			char *e;

			errno = 0;
			*count = strtoll(cnt, &e, 10);
			if (e == cnt || *e != '\0' || errno != 0 ||
			    *count < 1) {
				set_problem(resp, 422, "Request validation "
				    "failed.", NULL);
				goto out;
			}
		}
		if (cloud != NULL) {
			if (strcmp(cloud, "COMMUNITY") == 0)
				*community = true;
			else if (strcmp(cloud, "SECURE") != 0) {
				set_problem(resp, 422, "Request validation "
				    "failed.", NULL);
				goto out;
			}
		}
		*avail = true;
	}
	ok = true;
out:
	if (d != NULL && resp->status == 422) {
		/* put the reason into errors */
		json_object *errs = json_object_new_array();

		json_object_array_add(errs, json_object_new_string(d));
		set_problem(resp, 422, "Request validation failed.", errs);
	}
	free(d);
	free(inc);
	free(prod);
	free(cnt);
	free(cloud);
	return ok;
}

static void
h_catalog(const struct fake_req *req, struct fake_resp *resp,
    const char *one)
{
	bool avail, community;
	int64_t count;
	size_t i;

	if (!catalog_query(req, resp, &avail, &community, &count))
		return;
	if (one != NULL) {
		const struct gpu_type *g = gpu_find(one);

		if (g == NULL) {
			set_problem(resp, 404, "GPU type not found", NULL);
			return;
		}
		set_json(resp, 200, gpu_render(g, avail, community, count));
	} else {
		json_object *o = json_object_new_object();
		json_object *a = json_object_new_array();

		for (i = 0; i < N_GPU_TYPES; i++)
			json_object_array_add(a, gpu_render(&gpu_types[i],
			    avail, community, count));
		json_object_object_add(o, "gpus", a);
		set_json(resp, 200, o);
	}
}

/* ------------------------------------------------------- control API ---- */

static void
faults_clear(void)
{
	size_t i;

	S.rl_count = S.rl_retry = 0;
	S.se_count = 0;
	S.se_status = 500;
	free(S.rl_route);
	free(S.se_route);
	S.rl_route = S.se_route = NULL;
	for (i = 0; i < S.n_nocap; i++)
		free(S.nocap[i]);
	free(S.nocap);
	S.nocap = NULL;
	S.n_nocap = 0;
	for (i = 0; i < S.n_forbid; i++)
		free(S.forbid[i]);
	free(S.forbid);
	S.forbid = NULL;
	S.n_forbid = 0;
	free(S.rule_detail);
	S.rule_detail = NULL;
	S.slow_ms = 0;
	S.never_ssh = S.create_500 = S.balance = S.revoked = false;
}

static json_object *
faults_render(void)
{
	json_object *o = json_object_new_object(), *x;
	size_t i;

	x = json_object_new_object();
	json_object_object_add(x, "count", json_object_new_int64(S.rl_count));
	json_object_object_add(x, "retry_after",
	    json_object_new_int64(S.rl_retry));
	json_object_object_add(x, "route", S.rl_route ?
	    json_object_new_string(S.rl_route) : NULL);
	json_object_object_add(o, "rate_limit", x);
	x = json_object_new_object();
	json_object_object_add(x, "count", json_object_new_int64(S.se_count));
	json_object_object_add(x, "status",
	    json_object_new_int64(S.se_status));
	json_object_object_add(x, "route", S.se_route ?
	    json_object_new_string(S.se_route) : NULL);
	json_object_object_add(o, "server_error", x);
	x = json_object_new_array();
	for (i = 0; i < S.n_nocap; i++)
		json_object_array_add(x, json_object_new_string(S.nocap[i]));
	{
		json_object *nc = json_object_new_object();

		json_object_object_add(nc, "gpu_ids", x);
		json_object_object_add(o, "no_capacity", nc);
	}
	x = json_object_new_array();
	for (i = 0; i < S.n_forbid; i++)
		json_object_array_add(x, json_object_new_string(S.forbid[i]));
	{
		json_object *fb = json_object_new_object();

		json_object_object_add(fb, "gpu_ids", x);
		json_object_object_add(o, "forbidden", fb);
	}
	if (S.rule_detail != NULL) {
		x = json_object_new_object();
		json_object_object_add(x, "detail",
		    json_object_new_string(S.rule_detail));
		json_object_object_add(o, "rule_violation", x);
	} else {
		json_object_object_add(o, "rule_violation", NULL);
	}
	json_object_object_add(o, "slow_ms", json_object_new_int64(S.slow_ms));
	json_object_object_add(o, "never_ssh",
	    json_object_new_boolean(S.never_ssh));
	json_object_object_add(o, "create_500_after_create",
	    json_object_new_boolean(S.create_500));
	json_object_object_add(o, "insufficient_balance",
	    json_object_new_boolean(S.balance));
	json_object_object_add(o, "revoke_keys",
	    json_object_new_boolean(S.revoked));
	return o;
}

/* Fetch an integer member in [min, max]; false (and a problem) if bad. */
static bool
fault_int(json_object *o, const char *key, long min, long max, long *out,
    struct verr *v, const char *path)
{
	int64_t n;
	int rc = ju_int(o, key, &n);

	if (rc == 1)
		return true;
	if (rc < 0 || n < min || n > max) {
		verr_add(v, "%s.%s: expected an integer in [%ld, %ld]", path,
		    key, min, max);
		return false;
	}
	*out = (long)n;
	return true;
}

/* The optional "route" of a fault object (a stats key such as
 * "POST /v2/pods"): borrowed from x, NULL when absent. */
static const char *
fault_route(json_object *x, struct verr *v, const char *where)
{
	json_object *r;
	char buf[128];

	if (!member(x, "route", &r))
		return NULL;
	snprintf(buf, sizeof(buf), "%s.route", where);
	if (!want_type(v, buf, r, json_type_string))
		return NULL;
	return json_object_get_string(r);
}

static void
h_faults_post(const struct fake_req *req, struct fake_resp *resp)
{
	static const char *const allowed[] = { "rate_limit", "server_error",
	    "no_capacity", "forbidden", "rule_violation", "slow_ms",
	    "never_ssh", "create_500_after_create", "insufficient_balance",
	    "revoke_keys", NULL };
	json_object *b, *x;
	struct verr v;
	long rl_count = S.rl_count, rl_retry = S.rl_retry ? S.rl_retry : 1;
	long se_count = S.se_count, se_status = S.se_status;
	long slow = S.slow_ms;
	const char *rl_route = S.rl_route, *se_route = S.se_route;
	bool bv;

	b = parse_body(req, resp);
	if (b == NULL)
		return;
	v.list = json_object_new_array();
	if (!json_object_is_type(b, json_type_object)) {
		verr_add(&v, "$: expected object");
		goto check;
	}
	check_unknown(&v, "$", b, allowed);
	if (member(b, "rate_limit", &x) &&
	    want_type(&v, "$.rate_limit", x, json_type_object)) {
		rl_count = 1;
		fault_int(x, "count", 0, 1000000, &rl_count, &v,
		    "$.rate_limit");
		fault_int(x, "retry_after", 0, 3600, &rl_retry, &v,
		    "$.rate_limit");
		rl_route = fault_route(x, &v, "$.rate_limit");
	}
	if (member(b, "server_error", &x) &&
	    want_type(&v, "$.server_error", x, json_type_object)) {
		se_count = 1;
		se_status = 500;
		fault_int(x, "count", 0, 1000000, &se_count, &v,
		    "$.server_error");
		fault_int(x, "status", 500, 599, &se_status, &v,
		    "$.server_error");
		se_route = fault_route(x, &v, "$.server_error");
	}
	if (member(b, "slow_ms", &x) && want_type(&v, "$.slow_ms", x,
	    json_type_int)) {
		slow = (long)json_object_get_int64(x);
		if (slow < 0 || slow > 600000)
			verr_add(&v, "$.slow_ms: expected 0..600000");
	}
	if (member(b, "no_capacity", &x) &&
	    want_type(&v, "$.no_capacity", x, json_type_object)) {
		json_object *ids;

		if (!member(x, "gpu_ids", &ids))
			verr_add(&v, "$.no_capacity: missing 'gpu_ids'");
		else
			check_string_array(&v, "$.no_capacity.gpu_ids", ids);
	}
	if (member(b, "forbidden", &x) &&
	    want_type(&v, "$.forbidden", x, json_type_object)) {
		json_object *ids;

		if (!member(x, "gpu_ids", &ids))
			verr_add(&v, "$.forbidden: missing 'gpu_ids'");
		else
			check_string_array(&v, "$.forbidden.gpu_ids", ids);
	}
	if (member(b, "rule_violation", &x) && x != NULL &&
	    want_type(&v, "$.rule_violation", x, json_type_object)) {
		json_object *d;

		if (!member(x, "detail", &d))
			verr_add(&v, "$.rule_violation: missing 'detail'");
		else if (want_type(&v, "$.rule_violation.detail", d,
		    json_type_string) && (json_object_get_string_len(d) < 1 ||
		    json_object_get_string_len(d) > 1024))
			verr_add(&v, "$.rule_violation.detail: expected 1 to "
			    "1024 characters");
	}
	if (member(b, "never_ssh", &x))
		want_type(&v, "$.never_ssh", x, json_type_boolean);
	if (member(b, "create_500_after_create", &x))
		want_type(&v, "$.create_500_after_create", x,
		    json_type_boolean);
	if (member(b, "insufficient_balance", &x))
		want_type(&v, "$.insufficient_balance", x, json_type_boolean);
	if (member(b, "revoke_keys", &x))
		want_type(&v, "$.revoke_keys", x, json_type_boolean);
check:
	if (json_object_array_length(v.list) > 0) {
		set_problem(resp, 400, "bad fault specification", v.list);
		json_object_put(b);
		return;
	}
	json_object_put(v.list);

	/* all valid: apply */
	if (rl_route != S.rl_route) {
		char *d = rl_route ? xstrdup(rl_route) : NULL;
		free(S.rl_route);
		S.rl_route = d;
	}
	if (se_route != S.se_route) {
		char *d = se_route ? xstrdup(se_route) : NULL;
		free(S.se_route);
		S.se_route = d;
	}
	S.rl_count = rl_count;
	S.rl_retry = rl_retry;
	S.se_count = se_count;
	S.se_status = se_status;
	S.slow_ms = slow;
	if ((x = ju_obj(b, "no_capacity")) != NULL)
		list_set(&S.nocap, &S.n_nocap, ju_arr(x, "gpu_ids"));
	if ((x = ju_obj(b, "forbidden")) != NULL)
		list_set(&S.forbid, &S.n_forbid, ju_arr(x, "gpu_ids"));
	if (member(b, "rule_violation", &x)) {
		free(S.rule_detail);
		S.rule_detail = x != NULL ? xstrdup(ju_str(x, "detail")) : NULL;
	}
	if (ju_bool(b, "never_ssh", &bv) == 0)
		S.never_ssh = bv;
	if (ju_bool(b, "create_500_after_create", &bv) == 0)
		S.create_500 = bv;
	if (ju_bool(b, "insufficient_balance", &bv) == 0)
		S.balance = bv;
	if (ju_bool(b, "revoke_keys", &bv) == 0)
		S.revoked = bv;
	json_object_put(b);
	log_msg(LOG_INFO, "faults", "faults updated");
	set_json(resp, 200, faults_render());
}

static json_object *
stats_render(void)
{
	json_object *o = json_object_new_object(), *c =
	    json_object_new_object();
	size_t i;

	for (i = 0; i < S.ncalls; i++)
		json_object_object_add(c, S.calls[i].key,
		    json_object_new_int64(S.calls[i].n));
	json_object_object_add(o, "calls", c);
	json_object_object_add(o, "total", json_object_new_int64(S.total));
	return o;
}

/* A pod by id for the control API, whatever its status. */
static void
h_fake_pod(const struct fake_req *req, const char *id,
    struct fake_resp *resp)
{
	struct pod *p = pod_find(id);
	json_object *b;
	const char *st;

	if (p == NULL) {
		set_problem(resp, 404, "pod not found", NULL);
		return;
	}
	b = parse_body(req, resp);
	if (b == NULL)
		return;
	st = ju_str(b, "status");
	pod_advance(p);
	if (st != NULL && strcmp(st, "ERROR") == 0) {
		p->status = ST_ERROR;
	} else if (st != NULL && strcmp(st, "EXITED") == 0) {
		p->status = ST_EXITED;
	} else {
		set_problem(resp, 400, "status must be ERROR or EXITED", NULL);
		json_object_put(b);
		return;
	}
	p->since = clock_mono_ms();
	pod_logged(p, p->since, "(forced)");
	pod_mount_sync(p);
	pod_bill(p);
	json_object_put(b);
	set_json(resp, 200, pod_render(p));
}

/* POST /_fake/pods/{id}/logs: a line in the pod's log now. */
static void
h_fake_pod_log(const struct fake_req *req, const char *id,
    struct fake_resp *resp)
{
	json_object *b;

	if (pod_find(id) == NULL) {
		set_problem(resp, 404, "pod not found", NULL);
		return;
	}
	if ((b = parse_body(req, resp)) == NULL)
		return;
	fake_logs_inject(id, b, resp);
	json_object_put(b);
}

static void
handle_control(const struct fake_req *req, struct fake_resp *resp)
{
	const char *m = req->method, *path = req->path + 7; /* "/_fake/" */

	if (strcmp(path, "faults") == 0) {
		if (strcmp(m, "POST") == 0)
			h_faults_post(req, resp);
		else if (strcmp(m, "DELETE") == 0) {
			faults_clear();
			set_json(resp, 200, faults_render());
		} else if (strcmp(m, "GET") == 0)
			set_json(resp, 200, faults_render());
		else
			goto not_allowed;
	} else if (strcmp(path, "stats") == 0) {
		if (strcmp(m, "GET") != 0)
			goto not_allowed;
		set_json(resp, 200, stats_render());
	} else if (strcmp(path, "reset") == 0) {
		if (strcmp(m, "POST") != 0)
			goto not_allowed;
		pods_clear();
		faults_clear();
		counters_clear();
		fake_logs_clear();
		fake_volumes_clear();
		log_msg(LOG_INFO, "reset", "pods, volumes, faults and "
		    "counters cleared");
		set_empty(resp, 204);
	} else if (strncmp(path, "pods/", 5) == 0 && strchr(path + 5, '/') ==
	    NULL) {
		if (strcmp(m, "POST") != 0)
			goto not_allowed;
		h_fake_pod(req, path + 5, resp);
	} else if (strncmp(path, "pods/", 5) == 0 && strchr(path + 5, '/') !=
	    NULL && strcmp(strchr(path + 5, '/'), "/logs") == 0) {
		char *id;

		if (strcmp(m, "POST") != 0)
			goto not_allowed;
		id = xstrndup(path + 5, (size_t)(strchr(path + 5, '/') -
		    (path + 5)));
		h_fake_pod_log(req, id, resp);
		free(id);
	} else {
		set_problem(resp, 404, "no such control route", NULL);
	}
	return;
not_allowed:
	set_problem(resp, 405, "The requested method is not allowed for "
	    "this path.", NULL);
}

/* ------------------------------------------------------------ routing ---- */

/* GET /v2/billing/pods (fake_billing.c keeps the ledger). */
static void
h_billing_pods(const struct fake_req *req, struct fake_resp *resp)
{
	json_object *out = NULL, *errors = NULL;
	char *detail = NULL;
	int st = fake_billing_answer(req->query, &out, &detail, &errors);

	if (st == 200) {
		set_json(resp, 200, out);
	} else {
		set_problem(resp, st, detail, errors);
		free(detail);
	}
}

enum route {
	R_NONE, R_PODS, R_POD, R_POD_ACTION, R_POD_LOGS, R_GPUS, R_GPU, R_VOLS,
	R_VOL, R_BILLING_PODS
};

/* Match a /v2 path; *id gets the decoded {id} (caller frees). */
static enum route
match_route(const char *path, char **id)
{
	const char *rest, *slash;

	*id = NULL;
	if (strcmp(path, "/v2/pods") == 0)
		return R_PODS;
	if (strcmp(path, "/v2/catalog/gpus") == 0)
		return R_GPUS;
	if (strcmp(path, "/v2/network-volumes") == 0)
		return R_VOLS;
	if (strncmp(path, "/v2/network-volumes/", 20) == 0 &&
	    path[20] != '\0' && strchr(path + 20, '/') == NULL) {
		*id = pct_decode(path + 20, strlen(path + 20), false);
		return *id ? R_VOL : R_NONE;
	}
	if (strcmp(path, "/v2/billing/pods") == 0)
		return R_BILLING_PODS;
	if (strncmp(path, "/v2/catalog/gpus/", 17) == 0 && path[17] != '\0' &&
	    strchr(path + 17, '/') == NULL) {
		*id = pct_decode(path + 17, strlen(path + 17), false);
		return *id ? R_GPU : R_NONE;
	}
	if (strncmp(path, "/v2/pods/", 9) != 0 || path[9] == '\0')
		return R_NONE;
	rest = path + 9;
	slash = strchr(rest, '/');
	if (slash == NULL) {
		*id = pct_decode(rest, strlen(rest), false);
		return *id ? R_POD : R_NONE;
	}
	if (strcmp(slash, "/action") == 0 && slash > rest) {
		*id = pct_decode(rest, (size_t)(slash - rest), false);
		return *id ? R_POD_ACTION : R_NONE;
	}
	if (strcmp(slash, "/logs") == 0 && slash > rest) {
		*id = pct_decode(rest, (size_t)(slash - rest), false);
		return *id ? R_POD_LOGS : R_NONE;
	}
	return R_NONE;
}

static const char *
route_key(enum route r)
{
	switch (r) {
	case R_PODS: return "/v2/pods";
	case R_POD: return "/v2/pods/{id}";
	case R_POD_ACTION: return "/v2/pods/{id}/action";
	case R_POD_LOGS: return "/v2/pods/{id}/logs";
	case R_GPUS: return "/v2/catalog/gpus";
	case R_GPU: return "/v2/catalog/gpus/{id}";
	case R_VOLS: return "/v2/network-volumes";
	case R_VOL: return "/v2/network-volumes/{id}";
	case R_BILLING_PODS: return "/v2/billing/pods";
	default: return "(unknown)";
	}
}

static const char *
route_allow(enum route r)
{
	switch (r) {
	case R_PODS:
	case R_VOLS: return "GET, POST";
	case R_POD: return "GET, DELETE";
	case R_VOL: return "GET, PATCH, DELETE";
	case R_POD_ACTION: return "POST";
	case R_POD_LOGS:
	case R_GPUS:
	case R_GPU:
	case R_BILLING_PODS: return "GET";
	default: return NULL;
	}
}

static bool
method_allowed(enum route r, const char *m)
{
	const char *allow = route_allow(r);
	size_t ml = strlen(m);
	const char *p;

	if (allow == NULL)
		return false;
	for (p = allow; (p = strstr(p, m)) != NULL; p += ml)
		if ((p == allow || p[-1] == ' ') &&
		    (p[ml] == '\0' || p[ml] == ','))
			return true;
	return false;
}

static void
handle_v2(const struct fake_req *req, struct fake_resp *resp)
{
	const char *m = req->method;
	const char *auth = req->authorization;
	char *id = NULL, key[96];
	enum route r = match_route(req->path, &id);
	bool write = strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
	bool limited = false;
	struct pod *p;

	snprintf(key, sizeof(key), "%.16s %s", m, route_key(r));
	count_call(key);

	/* auth first: 401 without a valid key */
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
		set_problem(resp, 401, "missing bearer token", NULL);
		goto done;
	}
	auth += 7;
	while (*auth == ' ')
		auth++;
	if (S.revoked || (strcmp(auth, S.opt->api_key) != 0 &&
	    (S.opt->ro_key == NULL || strcmp(auth, S.opt->ro_key) != 0))) {
		set_problem(resp, 401, "invalid bearer token", NULL);
		goto done;
	}
	/* injected faults */
	if (S.rl_count > 0 && (S.rl_route == NULL ||
	    strcmp(S.rl_route, key) == 0)) {
		S.rl_count--;
		limited = true;
		sb_addf(&resp->headers, "Retry-After: %ld\r\n", S.rl_retry);
		set_problem(resp, 429, "rate limit exceeded for the minute "
		    "window", NULL);
		goto done;
	}
	if (S.se_count > 0 && (S.se_route == NULL ||
	    strcmp(S.se_route, key) == 0)) {
		S.se_count--;
		set_problem(resp, (int)S.se_status, "The upstream service "
		    "failed; try again later (injected fault).", NULL);
		goto done;
	}
	if (r == R_NONE) {
		set_problem(resp, 404, "resource not found", NULL);
		goto done;
	}
	if (!method_allowed(r, m)) {
		sb_addf(&resp->headers, "Allow: %s\r\n", route_allow(r));
		set_problem(resp, 405, "The requested method is not allowed "
		    "for this path.", NULL);
		goto done;
	}
	if (write && S.opt->ro_key != NULL &&
	    strcmp(auth, S.opt->ro_key) == 0 &&
	    strcmp(auth, S.opt->api_key) != 0) {
		set_problem(resp, 403, "access denied", NULL);
		goto done;
	}
	switch (r) {
	case R_PODS:
		if (strcmp(m, "POST") == 0)
			h_create(req, resp);
		else
			h_list(req, resp);
		break;
	case R_GPUS:
		h_catalog(req, resp, NULL);
		break;
	case R_VOLS:
		if (strcmp(m, "POST") == 0)
			fake_volumes_create(req, resp);
		else
			fake_volumes_list(resp);
		break;
	case R_VOL:
		if (strcmp(m, "PATCH") == 0)
			fake_volumes_patch(req, id, resp);
		else if (strcmp(m, "DELETE") == 0)
			fake_volumes_delete(id, resp);
		else
			fake_volumes_get(id, resp);
		break;
	case R_GPU:
		h_catalog(req, resp, id);
		break;
	case R_BILLING_PODS:
		h_billing_pods(req, resp);
		break;
	case R_POD:
	case R_POD_ACTION:
	case R_POD_LOGS:
		p = pod_find(id);
		if (p == NULL) {
			set_problem(resp, 404, "The requested Pod does not "
			    "exist.", NULL);
			break;
		}
		if (r == R_POD_LOGS)
			fake_logs_get(req, p->id, resp);
		else if (r == R_POD_ACTION)
			h_action(req, p, resp);
		else if (strcmp(m, "DELETE") == 0)
			h_delete(p, resp);
		else
			h_get(p, resp);
		break;
	default:
		set_problem(resp, 404, "resource not found", NULL);
		break;
	}
done:
	add_ratelimit_headers(resp, limited, S.rl_retry);
	resp->delay_ms = S.slow_ms;
	free(id);
}

void
fake_api_handle(const struct fake_req *req, struct fake_resp *resp)
{
	char st[8];

	if (strncmp(req->path, "/_fake/", 7) == 0)
		handle_control(req, resp);
	else if (strcmp(req->path, "/v2") == 0 ||
	    strncmp(req->path, "/v2/", 4) == 0)
		handle_v2(req, resp);
	else
		set_problem(resp, 404, "resource not found", NULL);
	if (resp->status == 0)	/* a handler forgot to answer: a bug here */
		set_problem(resp, 500, "fake-runpod produced no answer", NULL);
	snprintf(st, sizeof(st), "%d", resp->status);
	/* method, path and status only: never bodies, keys or env */
	log_kv(LOG_INFO, "request", "request", "method", req->method,
	    "path", req->path, "status", st, NULL);
}

void
fake_api_init(const struct fake_options *opt)
{
	memset(&S, 0, sizeof(S));
	S.opt = opt;
	S.se_status = 500;
	S.rng = (uint64_t)clock_wall_ms() ^ ((uint64_t)getpid() << 32) ^
	    0x9e3779b97f4a7c15ULL;
	if (S.rng == 0)
		S.rng = 1;
	fake_volumes_init(opt->volume_dir);
}

void
fake_api_free(void)
{
	pods_clear();
	faults_clear();
	counters_clear();
	fake_logs_clear();
	fake_volumes_free();
}
