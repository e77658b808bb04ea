/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the RunPod provider's pieces that need no server: key
 * loading, readiness, retry delays, the cost guard's accounting, pod names
 * for the reaper, provision param checks, and the new configuration keys.
 * (The whole provider runs against the stand-in in
 * tests/integration/check_runpod.c.)
 */
#include "auto-config.h"

#include <sys/stat.h>

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "lib/jsonutil.h"
#include "providers/runpod/billing.h"
#include "providers/runpod/podcost.h"
#include "providers/runpod/podguard.h"
#include "providers/runpod/pods.h"
#include "providers/runpod/provision.h"
#include "store/store.h"
#include "testutil.h"
#include "lib/xalloc.h"

#define UUID1 "0b5e7a46-4c1e-4a9e-9a53-2f1f9c3b7d10"
#define ED25519_PUB "ssh-ed25519 " \
	"AAAAC3NzaC1lZDI1NTE5AAAAIOr0dummydummydummydummydummydummydummy test\n"
#define PRIV "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n" \
	"-----END OPENSSH PRIVATE KEY-----\n"

/* Write a file dir/name with mode; returns its path (caller frees). */
static char *
put(const char *dir, const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

static int
init_with(const char *key_file, const char *ssh_key, char **err)
{
	struct config *cfg = tu_configf("runpod_api_key_file = %s\n"
	    "ssh_key_file = %s\n", key_file, ssh_key);
	int rc;

	*err = NULL;
	rc = pods_init(cfg, NULL, err);
	pods_shutdown();
	config_free(cfg);
	return rc;
}

START_TEST(test_key_files)
{
	char dir[256], *key, *open_key, *empty, *priv, *pub, *err = NULL;
	const char *why = NULL;
	struct config *cfg;

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	key = put(dir, "runpod.key", "  rpa_SECRETKEY123  \n", 0600);
	open_key = put(dir, "open.key", "rpa_SECRETKEY123\n", 0644);
	empty = put(dir, "empty.key", "\n", 0600);
	priv = put(dir, "id_ed25519", PRIV, 0600);
	pub = put(dir, "id_ed25519.pub", ED25519_PUB, 0644);

	/* Good: both keys; ready for provisioning. */
	cfg = tu_configf("runpod_api_key_file = %s\nssh_key_file = %s\n",
	    key, priv);
	ck_assert_int_eq(pods_init(cfg, NULL, &err), 0);
	ck_assert(pods_ready(true, &why));
	ck_assert_str_eq(pods_public_key(), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"
	    "AAAAIOr0dummydummydummydummydummydummydummy test");
	{
		char *n = pods_name_for(UUID1);
		ck_assert_str_eq(n, "instag-agent-" UUID1);
		free(n);
	}
	pods_shutdown();
	ck_assert(!pods_ready(false, &why));
	ck_assert_ptr_nonnull(strstr(why, "RUNPOD_API_KEY"));
	config_free(cfg);

	/* A key file others can read is refused; the message names the
	 * file, never the key. */
	ck_assert_int_eq(init_with(open_key, "", &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	ck_assert_ptr_null(strstr(err, "SECRET"));
	free(err);
	ck_assert_int_eq(init_with(empty, "", &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	free(err);
	ck_assert_int_eq(init_with("/nonexistent/key", "", &err), -1);
	free(err);

	/* SSH key: not a private key; an RSA public half. */
	{
		char *np = put(dir, "notpriv", ED25519_PUB, 0600);
		ck_assert_int_eq(init_with(key, np, &err), -1);
		ck_assert_ptr_nonnull(strstr(err, "not a private key"));
		free(err);
		/* A private key others can read is refused too. */
		ck_assert_int_eq(chmod(priv, 0640), 0);
		ck_assert_int_eq(init_with(key, priv, &err), -1);
		ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
		free(err);
		ck_assert_int_eq(chmod(priv, 0600), 0);
		free(np);
	}
	free(put(dir, "id_ed25519.pub", "ssh-rsa AAAAB3Nza test\n", 0644));
	ck_assert_int_eq(init_with(key, priv, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "ed25519 or ECDSA"));
	free(err);

	/* Without an SSH key, everything but provisioning. */
	ck_assert_int_eq(init_with(key, "", &err), 0);
	cfg = tu_configf("runpod_api_key_file = %s\n", key);
	ck_assert_int_eq(pods_init(cfg, NULL, &err), 0);
	ck_assert(pods_ready(false, &why));
	ck_assert(!pods_ready(true, &why));
	ck_assert_ptr_nonnull(strstr(why, "ssh_key_file"));
	pods_shutdown();
	config_free(cfg);

	free(key);
	free(open_key);
	free(empty);
	free(priv);
	free(pub);
}
END_TEST

START_TEST(test_env_key)
{
	struct config *cfg = tu_config(NULL);
	struct runpod_error e = RUNPOD_ERROR_INIT;
	const char *why;
	char *err = NULL;

	unsetenv("RUNPOD_API_KEY");
	ck_assert_int_eq(pods_init(cfg, NULL, &err), 0);
	ck_assert(!pods_ready(false, &why));
	ck_assert_ptr_null(pods_client(&e));
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	runpod_error_clear(&e);
	pods_shutdown();
	setenv("RUNPOD_API_KEY", "rpa_FROMENV", 1);
	ck_assert_int_eq(pods_init(cfg, NULL, &err), 0);
	ck_assert(pods_ready(false, &why));
	/* The client is made lazily, per thread, and only once. */
	{
		struct runpod_client *c = pods_client(&e);
		ck_assert_ptr_nonnull(c);
		ck_assert_ptr_eq(pods_client(&e), c);
	}
	pods_shutdown();
	unsetenv("RUNPOD_API_KEY");
	config_free(cfg);
}
END_TEST

START_TEST(test_retry_delay)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	int i;

	e.kind = RP_RATE_LIMITED;
	e.retry_after_s = 7;
	ck_assert(pods_transient(&e));
	ck_assert_int_eq(pods_retry_delay_ms(&e, 1), 7000);
	e.retry_after_s = 100000;	/* capped */
	ck_assert_int_eq(pods_retry_delay_ms(&e, 1),
	    RUNPOD_RETRY_AFTER_MAX_S * 1000);
	e.kind = RP_SERVER;
	for (i = 0; i < 50; i++) {
		int64_t d1 = pods_retry_delay_ms(&e, 1);
		int64_t d3 = pods_retry_delay_ms(&e, 3);
		int64_t d20 = pods_retry_delay_ms(&e, 20);
		ck_assert(d1 >= 500 && d1 <= 1000);
		ck_assert(d3 >= 2000 && d3 <= 4000);
		ck_assert(d20 >= RUNPOD_BACKOFF_MAX_MS / 2 &&
		    d20 <= RUNPOD_BACKOFF_MAX_MS);
	}
	e.kind = RP_NETWORK;
	ck_assert(pods_transient(&e));
	e.kind = RP_NO_CAPACITY;
	ck_assert(!pods_transient(&e));
	e.kind = RP_CONFLICT;
	ck_assert(!pods_transient(&e));
}
END_TEST

START_TEST(test_guard_account)
{
	struct pod_rec r = { 0 };
	char *why;

	r.max_cost_usd = 1.0;
	r.max_runtime_ms = 60 * 60000;
	/* 30 min at 1 USD/h: 0.5 USD, within both limits. */
	ck_assert_ptr_null(guard_account(&r, 30 * 60000, 1.0, true));
	ck_assert_int_eq(r.running_ms, 30 * 60000);
	ck_assert(r.cost_usd > 0.499 && r.cost_usd < 0.501);
	/* Stopped (not billed): nothing accrues. */
	ck_assert_ptr_null(guard_account(&r, 30 * 60000, 1.0, false));
	ck_assert_int_eq(r.running_ms, 30 * 60000);
	/* A negative interval (clock step) counts as none. */
	ck_assert_ptr_null(guard_account(&r, -5000, 1.0, true));
	ck_assert_int_eq(r.running_ms, 30 * 60000);
	/* Another 30 min at 1.2 USD/h: 1.1 USD, past max_cost_usd. */
	why = guard_account(&r, 30 * 60000, 1.2, true);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "max_cost_usd 1.00"));
	free(why);
	/* Runtime limit at a zero rate. */
	memset(&r, 0, sizeof(r));
	r.max_cost_usd = 1.0;
	r.max_runtime_ms = 60000;
	why = guard_account(&r, 61000, 0.0, true);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "max_runtime_minutes 1"));
	free(why);
}
END_TEST

static bool
near(double a, double b)
{
	return a - b < 1e-9 && b - a < 1e-9;
}

static double
num(json_object *o, const char *k)
{
	return json_object_get_double(json_object_object_get(o, k));
}

/*
 * Storage accrues at RunPod's published rates: container + volume disk at
 * 0.10 USD/GB/month while running, the volume alone at 0.20 while
 * stopped (730 h a month); compute only while running.  The sums are in
 * the registry row: an agent restart (a store reopened) goes on from
 * last_check_ms, losing and doubling nothing.
 */
START_TEST(test_podcost_accrue)
{
	char dir[256], path[300], *err = NULL;
	struct store *st = NULL;
	struct pod_rec r = { 0 }, *g = NULL;
	double run = 70 * 0.10 / 730, stop = 20 * 0.20 / 730;

	r.pod_id = (char *)"p1";
	r.name = (char *)"n";
	r.task_id = (char *)UUID1;
	r.owner = (char *)"alice";
	r.state = (char *)"active";
	r.disk_gb = 50;
	r.volume_gb = 20;
	r.cost_per_hr = 0.69;
	ck_assert(near(podcost_storage_rate(&r, false), run));
	ck_assert(near(podcost_storage_rate(&r, true), stop));
	/* Never checked: only stamped. */
	podcost_accrue(&r, 1000, false);
	ck_assert_int_eq(r.last_check_ms, 1000);
	ck_assert(r.cost_usd == 0 && r.storage_usd == 0);
	/* One hour running. */
	podcost_accrue(&r, 1000 + 3600000, false);
	ck_assert_int_eq(r.running_ms, 3600000);
	ck_assert(near(r.cost_usd, 0.69));
	ck_assert(near(r.storage_usd, run));
	ck_assert_int_eq(r.stopped_ms, 0);
	/* Two hours stopped: storage of the volume only, no compute. */
	podcost_accrue(&r, 1000 + 3 * 3600000, true);
	ck_assert_int_eq(r.running_ms, 3600000);
	ck_assert_int_eq(r.stopped_ms, 2 * 3600000);
	ck_assert(near(r.cost_usd, 0.69));
	ck_assert(near(r.storage_usd, run + 2 * stop));
	ck_assert(near(podcost_total(&r), 0.69 + run + 2 * stop));
	/* A clock step back accrues nothing and keeps the stamp. */
	podcost_accrue(&r, 5, false);
	ck_assert_int_eq(r.last_check_ms, 1000 + 3 * 3600000);
	ck_assert(near(r.storage_usd, run + 2 * stop));

	/* The agent restarts: the row is read back and accrual goes on
	 * from its last_check_ms (30 min more, started again). */
	tu_tmpdir_make(dir, sizeof(dir), "podcost");
	snprintf(path, sizeof(path), "%s/t.db", dir);
	ck_assert_int_eq(store_open(path, NULL, &st, &err), 0);
	ck_assert_int_eq(store_pod_put(st, &r, &err), 0);
	store_close(st);
	ck_assert_int_eq(store_open(path, NULL, &st, &err), 0);
	ck_assert_int_eq(store_pod_get(st, "p1", &g), 0);
	ck_assert(near(g->storage_usd, r.storage_usd));
	ck_assert_int_eq(g->stopped_ms, r.stopped_ms);
	ck_assert_int_eq(g->last_check_ms, r.last_check_ms);
	podcost_accrue(g, g->last_check_ms + 1800000, false);
	ck_assert_int_eq(g->running_ms, 3600000 + 1800000);
	ck_assert(near(g->cost_usd, 0.69 * 1.5));
	ck_assert(near(g->storage_usd, run * 1.5 + 2 * stop));
	/* Terminated: nothing more. */
	free(g->state);
	g->state = xstrdup("terminated");
	podcost_accrue(g, g->last_check_ms + 3600000, true);
	ck_assert_int_eq(g->stopped_ms, 2 * 3600000);
	store_pod_free(g);
	store_close(st);
	tu_tmpdir_remove(dir);
}
END_TEST

/* The storage the cost guard adds counts towards max_cost_usd. */
START_TEST(test_podcost_guard)
{
	struct pod_rec r = { 0 };
	char *why;

	r.max_cost_usd = 1.0;
	r.volume_gb = 1000;
	/* 1000 GB stopped for 730 h: 200 USD of storage. */
	podcost_storage(&r, 730LL * 3600000, true);
	ck_assert(near(r.storage_usd, 200.0));
	ck_assert_int_eq(r.stopped_ms, 730LL * 3600000);
	why = guard_account(&r, 60000, 0.0, false);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "storage 200.0000"));
	free(why);
	/* Negative or zero intervals add nothing. */
	podcost_storage(&r, -1, true);
	podcost_storage(&r, 0, false);
	ck_assert(near(r.storage_usd, 200.0));
}
END_TEST

/* A network volume's monthly rate: 0.07 USD/GB up to 1000 GB, 0.05
 * beyond; none published for HIGH_PERFORMANCE. */
START_TEST(test_podcost_netvol)
{
	ck_assert(near(podcost_netvol_month(20, "STANDARD"), 1.4));
	ck_assert(near(podcost_netvol_month(20, NULL), 1.4));
	ck_assert(near(podcost_netvol_month(1000, "STANDARD"), 70.0));
	ck_assert(near(podcost_netvol_month(1500, "STANDARD"), 95.0));
	ck_assert(near(podcost_netvol_month(0, "STANDARD"), 0.0));
	ck_assert(podcost_netvol_month(20, "HIGH_PERFORMANCE") < 0);
}
END_TEST

/* The cost object, and what RunPod's billing answer adds to it. */
START_TEST(test_podcost_billing)
{
	struct pod_rec r = { 0 };
	json_object *o, *a, *b;

	r.pod_id = (char *)"p1";
	r.state = (char *)"stopped";
	r.disk_gb = 10;
	r.volume_gb = 20;
	r.cost_per_hr = 0;
	r.running_ms = 90000;
	r.stopped_ms = 30000;
	r.cost_usd = 0.5;
	r.storage_usd = 0.25;
	o = podcost_json(&r);
	ck_assert(num(o, "minutes") == 2.0);
	ck_assert(num(o, "running_minutes") == 1.5);
	ck_assert(num(o, "stopped_minutes") == 0.5);
	ck_assert(num(o, "compute_usd") == 0.5);
	ck_assert(num(o, "storage_usd") == 0.25);
	ck_assert(num(o, "usd") == 0.75);
	ck_assert(near(num(o, "storage_usd_per_hr"),
	    podcost_round(20 * 0.20 / 730, 1e-6)));
	ck_assert_int_eq(json_object_get_int(json_object_object_get(o,
	    "volume_gb")), 20);

	/* Records of this pod (two days) and another: this pod's summed. */
	a = json_tokener_parse("{\"records\":["
	    "{\"podId\":\"p1\",\"totalAmount\":0.5,\"gpuAmount\":0.4,"
	    "\"cpuAmount\":0,\"diskAmount\":0.1},"
	    "{\"podId\":\"p2\",\"totalAmount\":9,\"gpuAmount\":9,"
	    "\"cpuAmount\":0,\"diskAmount\":0},"
	    "{\"podId\":\"p1\",\"totalAmount\":0.2,\"gpuAmount\":0.1,"
	    "\"cpuAmount\":0,\"diskAmount\":0.1}],\"metadata\":{}}");
	ck_assert_ptr_nonnull(a);
	billing_attach(o, &r, a, NULL);
	b = json_object_object_get(o, "billed");
	ck_assert_ptr_nonnull(b);
	ck_assert(near(num(b, "usd"), 0.7));
	ck_assert(near(num(b, "compute_usd"), 0.5));
	ck_assert(near(num(b, "storage_usd"), 0.2));
	ck_assert_int_eq(json_object_get_int(json_object_object_get(b,
	    "records")), 2);
	ck_assert(near(num(o, "difference_usd"), 0.05));
	json_object_put(a);
	json_object_put(o);

	/* No answer: billed null with the reason; nothing else changes. */
	o = podcost_json(&r);
	billing_attach(o, &r, NULL, "RunPod's billing endpoint answered "
	    "HTTP 404");
	ck_assert(json_object_object_get_ex(o, "billed", &b));
	ck_assert_ptr_null(b);
	ck_assert_str_eq(ju_str(o, "billed_note"), "RunPod's billing "
	    "endpoint answered HTTP 404");
	ck_assert(num(o, "usd") == 0.75);
	json_object_put(o);

	/* A record without its required totalAmount: not trusted. */
	o = podcost_json(&r);
	a = json_tokener_parse("{\"records\":[{\"podId\":\"p1\"}]}");
	billing_attach(o, &r, a, NULL);
	ck_assert(json_object_object_get_ex(o, "billed", &b));
	ck_assert_ptr_null(b);
	ck_assert_ptr_nonnull(ju_str(o, "billed_note"));
	json_object_put(a);
	json_object_put(o);

	/* No record for the pod yet: billed 0, said so. */
	o = podcost_json(&r);
	a = json_tokener_parse("{\"records\":[]}");
	billing_attach(o, &r, a, NULL);
	b = json_object_object_get(o, "billed");
	ck_assert_ptr_nonnull(b);
	ck_assert(num(b, "usd") == 0);
	ck_assert_ptr_nonnull(ju_str(o, "billed_note"));
	json_object_put(a);
	json_object_put(o);
}
END_TEST

/* The idle decision: only an active, RUNNING pod with a limit that no
 * task used for that long, counted from its last use (else its
 * creation). */
START_TEST(test_guard_idle)
{
	struct pod_rec r = { 0 };
	char *why;

	r.state = (char *)"active";
	r.created_ms = 1000;
	r.idle_ms = 30 * 60000;
	/* 29 min after creation: kept; 30 min: idle. */
	ck_assert_ptr_null(guard_idle(&r, 1000 + 29 * 60000, false, true));
	why = guard_idle(&r, 1000 + 30 * 60000, false, true);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strncmp(why, "idle: no task used the pod for 30.0 "
	    "minutes", 41) == 0 && strstr(why, "idle_minutes 30.00"), "%s",
	    why);
	free(why);
	/* in use, not RUNNING (stopped, starting), or no limit: kept */
	ck_assert_ptr_null(guard_idle(&r, 1000 + 90 * 60000, true, true));
	ck_assert_ptr_null(guard_idle(&r, 1000 + 90 * 60000, false, false));
	r.idle_ms = 0;
	ck_assert_ptr_null(guard_idle(&r, 1000 + 90 * 60000, false, true));
	r.idle_ms = 30 * 60000;
	/* counted from the last use */
	r.last_used_ms = 1000 + 60 * 60000;
	ck_assert_ptr_null(guard_idle(&r, 1000 + 89 * 60000, false, true));
	why = guard_idle(&r, 1000 + 90 * 60000, false, true);
	ck_assert_ptr_nonnull(why);
	free(why);
	/* a clock that steps back is not idle time */
	ck_assert_ptr_null(guard_idle(&r, 0, false, true));
	/* stopped or terminated already: nothing to do */
	r.state = (char *)"stopped";
	ck_assert_ptr_null(guard_idle(&r, 1000 + 900 * 60000, false, true));
	r.state = (char *)"terminated";
	ck_assert_ptr_null(guard_idle(&r, 1000 + 900 * 60000, false, true));
}
END_TEST

/* Which unfinished tasks use a pod: the provision that made it, a task
 * whose params.pod_id names it, a pipeline whose checkpoint does. */
START_TEST(test_guard_task_uses)
{
	struct pod_rec r = { 0 };
	struct task *prov, *other, *step, *pl;

	r.pod_id = (char *)"pod-1";
	prov = task_new("alice", "runpod.provision_pod",
	    json_tokener_parse("{\"gpu_type_ids\":[\"A\"]}"), NULL);
	r.task_id = prov->id;
	other = task_new("alice", "runpod.provision_pod",
	    json_tokener_parse("{\"gpu_type_ids\":[\"A\"]}"), NULL);
	step = task_new("alice", "instag.train",
	    json_tokener_parse("{\"pod_id\":\"pod-1\"}"), NULL);
	pl = task_new("alice", "instag.pipeline", json_object_new_object(),
	    NULL);
	ck_assert(guard_task_uses(prov, &r));
	ck_assert(!guard_task_uses(other, &r));
	ck_assert(guard_task_uses(step, &r));
	ck_assert(!guard_task_uses(pl, &r));
	task_ckpt_set_str(pl, "pod_id", "pod-2");
	ck_assert(!guard_task_uses(pl, &r));
	task_ckpt_set_str(pl, "pod_id", "pod-1");
	ck_assert(guard_task_uses(pl, &r));
	/* a finished task uses nothing */
	task_set_state(step, TASK_COMPLETED);
	ck_assert(!guard_task_uses(step, &r));
	task_set_state(prov, TASK_FAILED);
	ck_assert(!guard_task_uses(prov, &r));
	task_free(prov);
	task_free(other);
	task_free(step);
	task_free(pl);
}
END_TEST

START_TEST(test_guard_names)
{
	const char *tid = NULL;

	ck_assert(guard_parse_name("instag-agent", "instag-agent-" UUID1,
	    &tid));
	ck_assert_str_eq(tid, UUID1);
	ck_assert(!guard_parse_name("instag-agent", "instag-agent-x", &tid));
	ck_assert(!guard_parse_name("instag-agent", "instag-agentx" UUID1,
	    &tid));
	ck_assert(!guard_parse_name("instag-agent", "other-" UUID1, &tid));
	ck_assert(!guard_parse_name("instag-agent", NULL, &tid));
	/* A prefix that is itself a prefix of another agent's prefix. */
	ck_assert(!guard_parse_name("instag", "instag-agent-" UUID1, &tid));
}
END_TEST

START_TEST(test_provision_validate)
{
	json_object *p = json_tokener_parse("{\"gpu_type_ids\":[\"A\",\"B\","
	    "\"A\"]}");
	char *err = NULL;

	ck_assert_int_eq(prov_validate(p, NULL, &err), -1);
	ck_assert_str_eq(err, "params.gpu_type_ids[2] repeats "
	    "params.gpu_type_ids[0]");
	free(err);
	json_object_put(p);
	p = json_tokener_parse("{\"gpu_type_ids\":[\"A\",\"B\"]}");
	ck_assert_int_eq(prov_validate(p, NULL, &err), 0);
	json_object_put(p);
}
END_TEST

START_TEST(test_describe)
{
	struct pod_rec r = { 0 };
	json_object *o;

	r.pod_id = (char *)"p1";
	r.name = (char *)"instag-agent-" UUID1;
	r.task_id = (char *)UUID1;
	r.owner = (char *)"alice";
	r.state = (char *)"terminated";
	r.reason = (char *)"cost guard: max_cost_usd 1.00 reached";
	r.gpu_count = 2;
	r.max_runtime_ms = 120 * 60000;
	r.max_cost_usd = 1;
	r.running_ms = 90000;
	r.cost_usd = 0.25;
	r.stopped_ms = 60000;
	r.storage_usd = 0.125;
	r.idle_ms = 90000;
	r.last_used_ms = 86400000;
	o = pods_describe(&r, NULL);
	ck_assert(num(o, "storage_usd") == 0.125);
	ck_assert(num(o, "total_usd") == 0.375);
	ck_assert(num(o, "stopped_minutes") == 1.0);
	ck_assert(num(json_object_object_get(o, "cost"), "usd") == 0.375);
	ck_assert(json_object_get_double(json_object_object_get(o,
	    "idle_minutes")) == 1.5);
	ck_assert(json_object_get_double(json_object_object_get(o,
	    "cost_usd")) == 0.25);
	ck_assert_str_eq(ju_str(o, "last_used_at"), "1970-01-02T00:00:00.000Z");
	ck_assert_str_eq(ju_str(o, "status"), "TERMINATED");
	ck_assert_str_eq(ju_str(o, "reason"), r.reason);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(o,
	    "max_runtime_minutes")), 120);
	ck_assert(json_object_get_double(json_object_object_get(o,
	    "running_minutes")) == 1.5);
	/* Nothing about the owner or keys leaks into the view. */
	ck_assert_ptr_null(strstr(json_object_to_json_string(o), "alice"));
	json_object_put(o);
}
END_TEST

/* The new configuration keys are checked at load. */
START_TEST(test_config_keys)
{
	static const char *const bad[] = {
		"runpod_url = http://api.runpod.io\n",
		"runpod_url = ftp://127.0.0.1\n",
		"max_cost_usd = 0\n",
		"max_cost_usd = lots\n",
		"max_cost_usd = 10001\n",
		"reaper_mode = kill\n",
		"pod_name_prefix = a b\n",
		"pod_name_prefix = \n",
		"ssh_user = -oProxyCommand=x\n",
		"runpod_image = img;reboot\n",
		"provision_timeout = 5\n",
		"provision_poll_ms = 0\n",
		"pod_idle_action = pause\n",
		"pod_idle_minutes = -1\n",
		"pod_idle_minutes = 10081\n",
		NULL
	};
	char path[] = "/tmp/ia-pods-conf-XXXXXX";
	struct config *cfg = NULL;
	char *err = NULL, *text;
	int i;

	for (i = 0; bad[i]; i++) {
		text = xasprintf("%s%s", TU_CONFIG_BASE, bad[i]);
		strcpy(path, "/tmp/ia-pods-conf-XXXXXX");
		tu_write_temp(path, text, strlen(text), 0600);
		ck_assert_msg(config_load(path, &cfg, &err) == -1,
		    "accepted %s", bad[i]);
		free(err);
		err = NULL;
		unlink(path);
		free(text);
	}
	cfg = tu_config("runpod_url = http://127.0.0.1:8080\n"
	    "max_cost_usd = 2.5\nreaper_mode = terminate\n"
	    "pod_idle_minutes = 0\npod_idle_action = terminate\n");
	ck_assert(cfg->max_cost > 2.49 && cfg->max_cost < 2.51);
	ck_assert_int_eq(cfg->pod_idle_minutes, 0);
	ck_assert_str_eq(cfg->pod_idle_action, "terminate");
	ck_assert_str_eq(cfg->reaper_mode, "terminate");
	config_free(cfg);
	cfg = tu_config(NULL);
	ck_assert_str_eq(cfg->runpod_url, "https://api.runpod.io");
	ck_assert_str_eq(cfg->reaper_mode, "report");
	ck_assert_int_eq(cfg->pod_idle_minutes, 30);
	ck_assert_str_eq(cfg->pod_idle_action, "stop");
	ck_assert_str_eq(cfg->ssh_user, "root");
	config_free(cfg);
}
END_TEST

/* Note one outcome: kind (http status) of a failed call, or success. */
static void
count_one(int kind, int http)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;

	e.kind = kind;
	e.http_status = http;
	pods_count(kind == RP_OK ? 0 : -1, &e);
}

static void
assert_key(enum pods_key_state state, int http)
{
	struct pods_key_status ks;

	pods_key_status(&ks);
	ck_assert_int_eq(ks.state, state);
	ck_assert_int_eq(ks.http_status, http);
}

/* What each call's outcome says of the key: an answer past
 * authentication accepts it, 401/403 reject it, no answer or a 5xx says
 * nothing of it, and a 429 or a call never sent changes nothing. */
START_TEST(test_key_status)
{
	assert_key(PODS_KEY_UNKNOWN, 0);
	count_one(RP_RATE_LIMITED, 429);
	assert_key(PODS_KEY_UNKNOWN, 0);
	count_one(RP_OK, 0);
	assert_key(PODS_KEY_ACCEPTED, 200);
	count_one(RP_AUTH, 401);
	assert_key(PODS_KEY_REJECTED, 401);
	count_one(RP_RATE_LIMITED, 429);
	assert_key(PODS_KEY_REJECTED, 401);
	count_one(RP_NOT_FOUND, 404);
	assert_key(PODS_KEY_ACCEPTED, 404);
	count_one(RP_FORBIDDEN, 403);
	assert_key(PODS_KEY_REJECTED, 403);
	count_one(RP_NO_CAPACITY, 400);
	assert_key(PODS_KEY_ACCEPTED, 400);
	/* a 403 on a create may be a pool this account cannot use: it
	 * says nothing of the key */
	count_one(RP_POOL_FORBIDDEN, 403);
	assert_key(PODS_KEY_ACCEPTED, 400);
	count_one(RP_SERVER, 503);
	assert_key(PODS_KEY_UNREACHABLE, 503);
	count_one(RP_NETWORK, 0);
	assert_key(PODS_KEY_UNREACHABLE, 0);
	count_one(RP_BAD_REQUEST, 0);		/* never sent */
	assert_key(PODS_KEY_UNREACHABLE, 0);
	count_one(RP_BAD_REQUEST, 422);
	assert_key(PODS_KEY_ACCEPTED, 422);
	count_one(RP_PROTOCOL, 200);
	assert_key(PODS_KEY_UNREACHABLE, 200);
}
END_TEST

/* The probe: nothing to ask without a key; with one, one GET on a client
 * of its own, whose failure to reach RunPod is noted. */
START_TEST(test_probe_key)
{
	struct runpod_error e = RUNPOD_ERROR_INIT;
	struct config *cfg;
	char dir[256], *key, *err = NULL;

	unsetenv("RUNPOD_API_KEY");
	cfg = tu_config(NULL);
	ck_assert_int_eq(pods_init(cfg, NULL, &err), 0);
	ck_assert_int_eq(pods_probe_key(2, &e), -1);
	ck_assert_int_eq(e.kind, RP_BAD_REQUEST);
	ck_assert_int_eq(e.http_status, 0);
	runpod_error_clear(&e);
	assert_key(PODS_KEY_UNKNOWN, 0);
	pods_shutdown();
	config_free(cfg);

	/* Port 1 on loopback: nothing listens there. */
	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	key = put(dir, "runpod.key", "rpa_SECRETKEY123\n", 0600);
	cfg = tu_configf("runpod_api_key_file = %s\n"
	    "runpod_url = http://127.0.0.1:1\n", key);
	ck_assert_int_eq(pods_init(cfg, NULL, &err), 0);
	ck_assert_int_eq(pods_probe_key(2, &e), -1);
	ck_assert_int_eq(e.kind, RP_NETWORK);
	ck_assert_ptr_null(e.detail == NULL ? NULL :
	    strstr(e.detail, "SECRETKEY"));
	runpod_error_clear(&e);
	assert_key(PODS_KEY_UNREACHABLE, 0);
	pods_shutdown();
	config_free(cfg);
	free(key);
}
END_TEST

static Suite *
pods_suite(void)
{
	Suite *s = suite_create("pods");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_add_test(tc, test_key_files);
	tcase_add_test(tc, test_env_key);
	tcase_add_test(tc, test_retry_delay);
	tcase_add_test(tc, test_guard_account);
	tcase_add_test(tc, test_podcost_accrue);
	tcase_add_test(tc, test_podcost_guard);
	tcase_add_test(tc, test_podcost_netvol);
	tcase_add_test(tc, test_podcost_billing);
	tcase_add_test(tc, test_guard_idle);
	tcase_add_test(tc, test_guard_task_uses);
	tcase_add_test(tc, test_guard_names);
	tcase_add_test(tc, test_provision_validate);
	tcase_add_test(tc, test_describe);
	tcase_add_test(tc, test_config_keys);
	tcase_add_test(tc, test_key_status);
	tcase_add_test(tc, test_probe_key);
	suite_add_tcase(s, tc);
	return s;
}

/* What main() does: the library's global state, once, in the runner. */
static void
pods_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool
pods_teardown(void)
{
	curl_global_cleanup();
	return true;
}

TU_MAIN(.suites = { pods_suite }, .setup = pods_setup,
    .teardown = pods_teardown)
