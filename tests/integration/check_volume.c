/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of network volumes: the real agent behind the real
 * nginx, the RunPod stand-in (its /v2/network-volumes, and the mount: a
 * pod that mounts a volume finds the volume's directory at its mount path
 * while it runs, see tests/fake-runpod/fake_volumes.c) and the harness's
 * sshd as every pod.  The agent runs with its work root on the mount path,
 * as it would with pod_work_root under a real volume's mount.
 *
 * In order, in one process (the tests share the volume): the operations
 * and who sees what; then a first pod sets InsTaG up on the volume and
 * trains, a second pod with the volume finds it set up and renders with
 * the trained model, and a pod without the volume finds nothing.  Every
 * wait is bounded.
 */
#include "auto-config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/itest.h"
#include "unit/testutil.h"

#define GPU_4090 "NVIDIA GeForce RTX 4090"
#define GPU "[\"" GPU_4090 "\"]"
#define DC_4090 "US-KS-2"	/* the stand-in's data center of the 4090 */

static const char *admin(void) { return getenv("AGENT_TOKEN"); }

static char volume[64];		/* the admin's volume "cache" */
static char model[80];		/* the model trained on it */
static char *video_id, *audio1_id, *audio2_id;

/* The agent's work root on the mount path (POD_ROOT/ws), from here on. */
static void
agent_on_mount(void)
{
	const char *root = getenv("POD_ROOT");

	ck_assert_int_eq(itest_sh("INSTAG_AGENT_POD_VOLUME_PATH='%s/ws' "
	    "INSTAG_AGENT_POD_WORK_ROOT='%s/ws/instag-agent' "
	    "'%s/tests/harness/agent' '%s' restart >&2", root, root,
	    getenv("top_srcdir"), getenv("HARNESS_DIR")), 0);
}

/* A sync operation through the envelope: *r, asserting status want
 * ("completed" or "error"). */
static void
sync_op(const char *token, const char *op, const char *params,
    const char *want, struct itest_resp *r)
{
	itest_envelope(token, op, params, r);
	ck_assert_msg(r->status == 200 && itest_jstr(r->json, "status") &&
	    strcmp(itest_jstr(r->json, "status"), want) == 0, "%s %s: %s", op,
	    params, r->body ? r->body : "");
}

/* Run a task operation to its end as token, asserting state want; the
 * task in *r, its wall time in ms returned. */
static long long
run(const char *token, const char *op, const char *params, const char *want,
    struct itest_resp *r)
{
	long long t0 = itest_ms();
	char *id = itest_start_task(token, op, params);
	const char *st = itest_wait_task(token, id, 300000);
	long long ms = itest_ms() - t0;

	itest_get_task(token, id, r);
	ck_assert_msg(strcmp(st, want) == 0, "%s ended %s, wanted %s: %s", op,
	    st, want, r->body);
	free(id);
	return ms;
}

/* Provision a pod as the admin (with the volume when vol); its id into
 * pod. */
static void
provision(bool vol, char *pod, size_t len)
{
	struct itest_resp r;
	char params[256];

	snprintf(params, sizeof(params), "{\"gpu_type_ids\":" GPU "%s%s%s}",
	    vol ? ",\"volume_id\":\"" : "", vol ? volume : "",
	    vol ? "\"" : "");
	run(admin(), "runpod.provision_pod", params, "completed", &r);
	snprintf(pod, len, "%s", itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
}

static void
terminate(const char *pod)
{
	struct itest_resp r;
	char params[128];

	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod);
	run(admin(), "runpod.terminate_pod", params, "completed", &r);
	itest_resp_free(&r);
}

/* instag.setup_environment on pod: its result in *r, wall time in ms. */
static long long
setup_on(const char *pod, struct itest_resp *r)
{
	char params[128];

	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod);
	return run(admin(), "instag.setup_environment", params, "completed",
	    r);
}

/* Whether path (relative to the volume's directory) exists on it. */
static bool
on_volume(const char *path)
{
	return itest_sh("test -e '%s/.volumes/%s/%s'", getenv("POD_ROOT"),
	    volume, path) == 0;
}

/* The licensed files, registered once as the admin (placed on every pod
 * by the pipeline's assets step). */
static void
register_one(const char *kind, const char *ex, const char *id)
{
	struct itest_resp r;
	char params[512];

	snprintf(params, sizeof(params), "{\"kind\":\"%s\"%s%s%s,"
	    "\"upload_id\":\"%s\"}", kind, ex ? ",\"extractor\":\"" : "",
	    ex ? ex : "", ex ? "\"" : "", id);
	run(admin(), "instag.register_asset", params, "completed", &r);
	itest_resp_free(&r);
}

/* ---- the operations, owners and bad params ------------------------------ */

START_TEST(test_volume_ops)
{
	struct itest_resp r;
	char *bob, params[256];
	static const char *const bad[] = {
		"{\"name\":\"x\",\"size_gb\":5,\"data_center_id\":\"" DC_4090
		    "\"}",
		"{\"name\":\"a b\",\"size_gb\":10,\"data_center_id\":\""
		    DC_4090 "\"}",
		"{\"size_gb\":10,\"data_center_id\":\"" DC_4090 "\"}",
		"{\"name\":\"x\",\"size_gb\":10}",
		"{\"name\":\"x\",\"size_gb\":10,\"data_center_id\":\"" DC_4090
		    "\",\"type\":\"FAST\"}",
		NULL
	};

	agent_on_mount();
	bob = itest_token("vol-bob", "pods:read pods:write instag:run "
	    "tasks:read", 3600);
	sync_op(admin(), "runpod.create_volume", "{\"name\":\"cache\","
	    "\"size_gb\":20,\"data_center_id\":\"" DC_4090 "\"}", "completed",
	    &r);
	snprintf(volume, sizeof(volume), "%s",
	    itest_jstr(r.json, "result.volume_id"));
	ck_assert_str_eq(itest_jstr(r.json, "result.name"), "cache");
	ck_assert_str_eq(itest_jstr(r.json, "result.data_center_id"),
	    DC_4090);
	ck_assert_int_eq(itest_jint(r.json, "result.size_gb"), 20);
	/* 20 GB at 0.07 USD/GB/month, billed while it exists */
	ck_assert_double_eq_tol(json_object_get_double(itest_jget(r.json,
	    "result.storage_usd_per_month")), 1.4, 1e-9);
	itest_resp_free(&r);
	ck_assert(on_volume("."));

	/* the same name twice: refused; RunPod's own 400: invalid params */
	sync_op(admin(), "runpod.create_volume", "{\"name\":\"cache\","
	    "\"size_gb\":20,\"data_center_id\":\"" DC_4090 "\"}", "error",
	    &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "volume_exists");
	itest_resp_free(&r);
	sync_op(admin(), "runpod.create_volume", "{\"name\":\"other\","
	    "\"size_gb\":20,\"data_center_id\":\"XX-NO-1\"}", "error", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	ck_assert_msg(strstr(itest_jstr(r.json, "error.message"),
	    "unknown data center") != NULL, "%s", r.body);
	itest_resp_free(&r);
	for (int i = 0; bad[i] != NULL; i++) {
		sync_op(admin(), "runpod.create_volume", bad[i], "error", &r);
		ck_assert_str_eq(itest_jstr(r.json, "error.code"),
		    "invalid_params");
		itest_resp_free(&r);
	}

	/* the admin sees it, bob sees nothing and cannot touch it */
	sync_op(admin(), "runpod.list_volumes", "{}", "completed", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.volumes")), 1);
	ck_assert_str_eq(itest_jstr(r.json, "result.volumes.0.volume_id"),
	    volume);
	itest_resp_free(&r);
	sync_op(bob, "runpod.list_volumes", "{}", "completed", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.volumes")), 0);
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"volume_id\":\"%s\"}", volume);
	sync_op(bob, "runpod.delete_volume", params, "error", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "volume_not_found");
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"gpu_type_ids\":" GPU
	    ",\"volume_id\":\"%s\"}", volume);
	run(bob, "runpod.provision_pod", params, "failed", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "volume_not_found");
	itest_resp_free(&r);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	/* a pod has its own volume or a network volume, not both */
	snprintf(params, sizeof(params), "{\"gpu_type_ids\":" GPU
	    ",\"volume_id\":\"%s\",\"volume_gb\":20}", volume);
	itest_envelope(admin(), "runpod.provision_pod", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);
	free(bob);
}
END_TEST

/* ---- reuse across pods -------------------------------------------------- */

START_TEST(test_reuse_across_pods)
{
	struct itest_resp r;
	char pod[64], params[1024], *bfm, *w;
	long long first, second, none;
	int train;

	video_id = itest_upload_media(admin(), "vol_may.mp4",
	    "video --seconds 2.4");
	audio1_id = itest_upload_media(admin(), "vol_a1.wav",
	    "audio --seconds 2 --freq 440");
	audio2_id = itest_upload_media(admin(), "vol_a2.wav",
	    "audio --seconds 3 --freq 660");
	bfm = itest_upload_media(admin(), "vol_bfm.mat", "bfm");
	w = itest_upload_media(admin(), "vol_w.pth", "weights");
	register_one("bfm2009", NULL, bfm);
	register_one("easyportrait", NULL, w);
	for (int i = 0; i < 2; i++) {
		register_one("pretrain_face", i ? "ave" : "deepspeech", w);
		register_one("pretrain_mouth", i ? "ave" : "deepspeech", w);
	}
	free(bfm);
	free(w);

	/* the first pod with the volume: a whole setup, onto the volume */
	provision(true, pod, sizeof(pod));
	first = setup_on(pod, &r);
	ck_assert_ptr_null(itest_jget(r.json, "result.result.already_set_up"));
	itest_resp_free(&r);
	ck_assert(on_volume("instag-agent/InsTaG/.git"));
	ck_assert(on_volume("instag-agent/conda/envs/instag/conda-meta"));
	/* then it trains a model there */
	snprintf(params, sizeof(params), "{\"subject\":\"may\",\"video\":"
	    "\"%s\",\"audio\":[\"%s\"],\"pod_id\":\"%s\",\"iterations\":200,"
	    "\"n_views\":30}", video_id, audio1_id, pod);
	run(admin(), "instag.pipeline", params, "completed", &r);
	snprintf(model, sizeof(model), "%s",
	    itest_jstr(r.json, "result.result.model"));
	itest_resp_free(&r);
	terminate(pod);
	ck_assert(on_volume("instag-agent/InsTaG/.instag-agent-ready"));
	/* the mount is gone with the pod */
	ck_assert_int_ne(itest_sh("test -e '%s/ws'", getenv("POD_ROOT")), 0);

	/* a second pod with the volume: already set up */
	provision(true, pod, sizeof(pod));
	second = setup_on(pod, &r);
	ck_assert_msg(json_object_get_boolean(itest_jget(r.json,
	    "result.result.already_set_up")), "%s", r.body);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.ready")));
	itest_resp_free(&r);
	terminate(pod);

	/* a pipeline renders new audio with the model on the volume, on a
	 * new pod: no upload, no training */
	train = itest_fake_calls("train_face");
	snprintf(params, sizeof(params), "{\"subject\":\"may\",\"model\":"
	    "\"%s\",\"audio\":[\"%s\"],\"gpu_type_ids\":" GPU ","
	    "\"volume_id\":\"%s\"}", model, audio2_id, volume);
	run(admin(), "instag.pipeline", params, "completed", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.videos")), 1);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.pod.terminated")));
	itest_resp_free(&r);
	ck_assert_int_eq(itest_fake_calls("train_face"), train);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);

	/* a pod without the volume finds nothing: a whole setup */
	provision(false, pod, sizeof(pod));
	none = setup_on(pod, &r);
	ck_assert_ptr_null(itest_jget(r.json, "result.result.already_set_up"));
	itest_resp_free(&r);
	ck_assert_int_eq(itest_sh("test -d '%s/ws/instag-agent/conda/envs/"
	    "instag' && ! test -L '%s/ws'", getenv("POD_ROOT"),
	    getenv("POD_ROOT")), 0);
	terminate(pod);
	ck_assert_int_eq(itest_sh("rm -rf '%s/ws'", getenv("POD_ROOT")), 0);
	fprintf(stderr, "volume: setup on the first pod with the volume "
	    "%lld ms, on a second pod with it %lld ms, on a pod without it "
	    "%lld ms\n", first, second, none);
	/* what "already set up" skips is the whole install */
	ck_assert_msg(second < first && second < none, "%lld %lld %lld",
	    first, second, none);
}
END_TEST

/*
 * A pod with the volume lost while it trains the mouth (deleted at RunPod,
 * its job killed): the pipeline provisions a new pod with the same volume,
 * which finds InsTaG set up, and resumes the work at training's mouth
 * stage: the uploaded video, the preprocessed data and the face stage's
 * checkpoint are on the volume, so neither the upload, preprocessing nor
 * the face training runs again.
 */
START_TEST(test_recover_on_volume)
{
	const char *root = getenv("POD_ROOT");
	int train = itest_fake_calls("train_face");
	int mouth = itest_fake_calls("train_mouth");
	int process = itest_fake_calls("process");
	int creates = itest_runpod_created();
	struct itest_resp r;
	char params[1024], *id, *pod;
	const char *st;

	ck_assert_int_eq(itest_sh("INSTAG_AGENT_PIPELINE_POD_CHECK_S=1 "
	    "INSTAG_AGENT_POD_VOLUME_PATH='%s/ws' "
	    "INSTAG_AGENT_POD_WORK_ROOT='%s/ws/instag-agent' "
	    "'%s/tests/harness/agent' '%s' restart >&2", root, root,
	    getenv("top_srcdir"), getenv("HARNESS_DIR")), 0);
	ck_assert_int_eq(itest_sh("echo hold > '%s/fake-control/train_mouth'",
	    root), 0);
	snprintf(params, sizeof(params), "{\"subject\":\"june\",\"video\":"
	    "\"%s\",\"audio\":[\"%s\"],\"gpu_type_ids\":" GPU ","
	    "\"volume_id\":\"%s\",\"iterations\":200,\"n_views\":30}",
	    video_id, audio1_id, volume);
	id = itest_start_task(admin(), "instag.pipeline", params);
	itest_wait_fake_calls("train_mouth", mouth);
	pod = itest_lose_pod_in_train(id, "mouth");
	/* training the mouth again, on the new pod */
	itest_wait_fake_calls("train_mouth", mouth + 1);
	ck_assert_int_eq(itest_sh("rm -f '%s/fake-control/train_mouth'",
	    root), 0);
	st = itest_wait_task(admin(), id, 300000);
	itest_get_task(admin(), id, &r);
	if (strcmp(st, "completed") != 0)
		fprintf(stderr, "recover_on_volume: %s\n", r.body);
	ck_assert_str_eq(st, "completed");
	ck_assert_str_eq(itest_jstr(r.json, "result.result.recoveries.0."
	    "pod_id"), pod);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.recoveries.0."
	    "step"), "train");
	ck_assert_str_eq(itest_jstr(r.json, "result.result.recoveries.0."
	    "resumes_at"), "train");
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.recoveries.0.kept_on_volume")));
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.videos")), 1);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.pod.terminated")));
	itest_resp_free(&r);
	/* preprocessing and face training once, the mouth twice (the lost
	 * job, then the new one) */
	ck_assert_int_eq(itest_fake_calls("process") - process, 1);
	ck_assert_int_eq(itest_fake_calls("train_face") - train, 1);
	ck_assert_int_eq(itest_fake_calls("train_mouth") - mouth, 2);
	ck_assert_int_eq(itest_runpod_created() - creates, 2);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(pod);
	free(id);
}
END_TEST

/* A volume a pod mounts cannot be deleted; once the pod is gone it can. */
START_TEST(test_delete_in_use)
{
	struct itest_resp r;
	char pod[64], params[128];

	provision(true, pod, sizeof(pod));
	snprintf(params, sizeof(params), "{\"volume_id\":\"%s\"}", volume);
	sync_op(admin(), "runpod.delete_volume", params, "error", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "volume_in_use");
	itest_resp_free(&r);
	terminate(pod);
	sync_op(admin(), "runpod.delete_volume", params, "completed", &r);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.deleted")));
	itest_resp_free(&r);
	sync_op(admin(), "runpod.list_volumes", "{}", "completed", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.volumes")), 0);
	itest_resp_free(&r);
	sync_op(admin(), "runpod.delete_volume", params, "error", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "volume_not_found");
	itest_resp_free(&r);
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' restart >&2",
	    getenv("top_srcdir"), getenv("HARNESS_DIR")), 0);
}
END_TEST

static Suite *
volume_suite(void)
{
	Suite *s = suite_create("volume-integration");
	TCase *tc = tcase_create("volume");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_volume_ops);
	tcase_add_test(tc, test_reuse_across_pods);
	tcase_add_test(tc, test_recover_on_volume);
	tcase_add_test(tc, test_delete_in_use);
	suite_add_tcase(s, tc);
	return s;
}

/* In order, in one process: the tests share the volume. */
TU_MAIN(.suites = { volume_suite }, .setup = itest_harness_up,
    .teardown = itest_harness_down, .nofork = true)
