/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of instag.pipeline: the real agent behind the real
 * nginx, pods from the RunPod stand-in whose SSH is the harness's real
 * sshd with the fake InsTaG tree (tests/fake-instag), real MP4/WAV input
 * through PUT /uploads, the rendered videos back through GET /artifacts.
 * Every test ends with the stand-in holding none of the agent's pods.
 *
 * Built a second time as check_pipeline_agents (PIPELINE_AGENTS defined):
 * three agents behind one nginx upstream share a throwaway PostgreSQL
 * store (tests/harness/start with IA_STORE=postgresql IA_AGENTS=3), and
 * a pipeline outlives SIGKILL of whichever agent holds it, at every step.
 */
#include "auto-config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/itest.h"
#include "unit/testutil.h"

#ifdef PIPELINE_AGENTS
/* This build runs its own suite (at the end); the one-agent tests and
 * the helpers only they use are compiled, not run. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#pragma GCC diagnostic ignored "-Wunused-variable"
#endif

static const char *admin(void) { return getenv("AGENT_TOKEN"); }

#define GPU "[\"NVIDIA GeForce RTX 4090\"]"
#define POD(...) ck_assert_int_eq(itest_pod_sh(__VA_ARGS__), 0)

static char *video_id, *audio1_id, *audio2_id;	/* admin's uploads */

static void
uploads_once(void)
{
	if (video_id != NULL)
		return;
	video_id = itest_upload_media(admin(), "pl_may.mp4",
	    "video --seconds 2.4");
	audio1_id = itest_upload_media(admin(), "pl_a1.wav",
	    "audio --seconds 2 --freq 440");
	audio2_id = itest_upload_media(admin(), "pl_a2.wav",
	    "audio --seconds 3 --freq 660");
}

/* The params of a pipeline of subject with the suite's uploads and extra
 * members (",..." or ""); static buffer. */
static const char *
pl_params(const char *subject, const char *extra)
{
	static char buf[2048];

	uploads_once();
	snprintf(buf, sizeof(buf), "{\"subject\":\"%s\",\"video\":\"%s\","
	    "\"audio\":[\"%s\",\"%s\"],\"gpu_type_ids\":" GPU
	    ",\"iterations\":200,\"n_views\":30%s}", subject, video_id,
	    audio1_id, audio2_id, extra);
	return buf;
}

/* Run a pipeline as token to its end; the task in *r, its id returned. */
static char *
run_pipeline(const char *token, const char *params, const char *want,
    struct itest_resp *r)
{
	char *id = itest_start_task(token, "instag.pipeline", params);
	const char *st = itest_wait_task(token, id, 300000);

	itest_get_task(token, id, r);
	ck_assert_msg(strcmp(st, want) == 0, "pipeline ended %s, wanted %s: "
	    "%s", st, want, r->body);
	return id;
}

/* Register the asset kind (with extractor ex, or NULL) from upload id as
 * the admin, as a user would: instag.register_asset completes. */
static void
register_one(const char *kind, const char *ex, const char *id)
{
	char params[512], *task;

	snprintf(params, sizeof(params), "{\"kind\":\"%s\"%s%s%s,"
	    "\"upload_id\":\"%s\"}", kind, ex ? ",\"extractor\":\"" : "",
	    ex ? ex : "", ex ? "\"" : "", id);
	task = itest_start_task(admin(), "instag.register_asset", params);
	ck_assert_str_eq(itest_wait_task(admin(), task, 60000), "completed");
	free(task);
}

/* Everything InsTaG needs that only its user can supply (the licensed
 * BFM, the EasyPortrait weight, released pre-training checkpoints for the
 * extractors used here), registered once through the API: every
 * pipeline's assets step places them on its pod. */
static void
register_assets(void)
{
	static const char *const ex[] = { "ave", "deepspeech", NULL };
	char *bfm = itest_upload_media(admin(), "pl_bfm.mat", "bfm");
	char *w = itest_upload_media(admin(), "pl_w.pth", "weights");

	register_one("bfm2009", NULL, bfm);
	register_one("easyportrait", NULL, w);
	for (int i = 0; ex[i]; i++) {
		register_one("pretrain_face", ex[i], w);
		register_one("pretrain_mouth", ex[i], w);
	}
	free(bfm);
	free(w);
}

/* GET an artifact's uri (through nginx) as token: its HTTP status, and
 * its size in *len. */
static long
fetch_artifact(const char *token, const char *uri, size_t *len)
{
	struct itest_resp r;
	long st;

	itest_request_url("GET", uri, getenv("AGENT_CA"), token, NULL, NULL, 0,
	    &r);
	st = r.status;
	*len = r.len;
	itest_resp_free(&r);
	return st;
}

/* The fakes that do each stage's work, counted in calls.log. */
static const char *const STAGE_FAKES[] = {
	"train_face", "train_mouth", "train_fuse_con", "synthesize_fuse",
	NULL
};

static void
count_fakes(int *out)
{
	for (int i = 0; STAGE_FAKES[i]; i++)
		out[i] = itest_fake_calls(STAGE_FAKES[i]);
}

/* The fakes of the stages all ran exactly as often as one pipeline of
 * naudio audios needs, since before[]. */
static void
assert_ran_once(const int *before, int naudio)
{
	int after[8];

	count_fakes(after);
	for (int i = 0; STAGE_FAKES[i]; i++)
		ck_assert_msg(after[i] - before[i] == (strcmp(STAGE_FAKES[i],
		    "synthesize_fuse") ? 1 : naudio), "%s ran %d times",
		    STAGE_FAKES[i], after[i] - before[i]);
}

/* ---- tests, in order ---------------------------------------------------- */

/* A fresh pod lacks the licensed files the user must supply: the pipeline
 * says which at its assets step, and releases the pod it made. */
START_TEST(test_assets_missing)
{
	struct itest_resp r;

	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(run_pipeline(admin(), pl_params("may", ""), "failed", &r));
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "assets_missing");
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "01_MorphableModel.mat") != NULL, "%s", r.body);
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "(assets)") != NULL, "%s", r.body);
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "instag.register_asset {\"kind\":\"bfm2009\"") != NULL, "%s",
	    r.body);
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "was terminated") != NULL, "%s", r.body);
	itest_resp_free(&r);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
}
END_TEST

/* Through the envelope, with the licensed files registered: the assets
 * step places them; video and two audios in, two videos out, each fetched
 * through nginx; every stage ran once; the pod is gone. */
START_TEST(test_envelope)
{
	struct itest_resp r;
	json_object *videos;
	int before[8];
	size_t i, len;
	char *id;

	register_assets();
	count_fakes(before);
	id = run_pipeline(admin(), pl_params("may", ",\"include_model\":true"),
	    "completed", &r);
	assert_ran_once(before, 2);
	/* the registered files are on the pod, where InsTaG reads them */
	POD("cmp '%s/pl_bfm.mat' '%s/InsTaG/data_utils/face_tracking/3DMM/"
	    "01_MorphableModel.mat'", getenv("HARNESS_DIR"),
	    getenv("POD_ROOT"));
	POD("cmp '%s/pl_w.pth' '%s/InsTaG/output/pretrain_ave/"
	    "chkpnt_ema_face_latest.pth'", getenv("HARNESS_DIR"),
	    getenv("POD_ROOT"));
	videos = itest_jget(r.json, "result.result.videos");
	ck_assert_msg(videos && json_object_array_length(videos) == 2, "%s",
	    r.body);
	for (i = 0; i < 2; i++) {
		json_object *v = json_object_array_get_idx(videos, i);
		const char *uri = itest_jstr(v, "uri");
		ck_assert_ptr_nonnull(uri);
		ck_assert_int_eq(fetch_artifact(admin(), uri, &len), 200);
		ck_assert_int_eq((long)len, itest_jint(v, "size"));
		/* each video says which audio drove it */
		ck_assert_int_eq(itest_jint(v, "audio_index"), (int)i);
		ck_assert_str_eq(itest_jstr(v, "audio"),
		    i == 0 ? audio1_id : audio2_id);
	}
	ck_assert_ptr_nonnull(itest_jget(r.json,
	    "result.result.model_archive.uri"));
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.pod.terminated")));
	ck_assert_ptr_nonnull(itest_jget(r.json, "result.result.cost.usd"));
	ck_assert_ptr_nonnull(itest_jget(r.json, "result.result.cost.minutes"));
	/* the stand-in's rate for the GPU, and minutes at it */
	ck_assert(json_object_get_double(itest_jget(r.json,
	    "result.result.cost.usd_per_hr")) > 0);
	/* compute and storage apart, reconciled with the stand-in's
	 * billing (the pod was this pipeline's alone) */
	ck_assert(json_object_get_double(itest_jget(r.json,
	    "result.result.cost.compute_usd")) > 0);
	ck_assert(json_object_get_double(itest_jget(r.json,
	    "result.result.cost.storage_usd")) > 0);
	ck_assert_msg(json_object_get_double(itest_jget(r.json,
	    "result.result.cost.billed.usd")) > 0, "%s", r.body);
	ck_assert_ptr_nonnull(itest_jget(r.json,
	    "result.result.cost.difference_usd"));
	ck_assert_ptr_nonnull(itest_jget(r.json,
	    "result.result.seconds.train"));
	ck_assert_int_eq(itest_jint(r.json, "result.progress.percent"), 100);
	itest_resp_free(&r);
	free(id);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);

	/* the metrics count it, and how long its steps took */
	itest_request("GET", "/metrics", admin(), NULL, NULL, 0, &r);
	ck_assert_ptr_nonnull(strstr(r.body,
	    "instag_agent_pipelines_total{state=\"completed\"} 1"));
	ck_assert_ptr_nonnull(strstr(r.body,
	    "instag_agent_pipeline_step_seconds_count{step=\"train\"} 1"));
	itest_resp_free(&r);
}
END_TEST

/* Through A2A message/stream: status updates with the steps, artifact
 * events for the videos, and the final status, to the end. */
START_TEST(test_a2a_stream)
{
	struct itest_resp r;
	char *body = NULL;
	const char *p;
	int steps_seen = 0, arts = 0;

	uploads_once();
	body = malloc(4096);
	ck_assert_ptr_nonnull(body);
	snprintf(body, 4096, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/stream\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"pl1\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"instag.pipeline\",\"params\":"
	    "%s}}]}}}", pl_params("may", ""));
	itest_set_timeout(300);
	itest_post("/a2a", admin(), body, &r);
	itest_set_timeout(0);
	free(body);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strcasestr(r.headers, "text/event-stream"));
	for (p = r.body; (p = strstr(p, "step ")) != NULL; p++)
		steps_seen++;
	for (p = r.body; (p = strstr(p, "\"artifact-update\"")) != NULL; p++)
		arts++;
	ck_assert_msg(steps_seen >= 10, "%d step updates: %s", steps_seen,
	    r.body);
	ck_assert_msg(arts >= 2, "%d artifact events: %s", arts, r.body);
	ck_assert_msg(strstr(r.body, "\"final\":true") != NULL, "%s", r.body);
	ck_assert_msg(strstr(r.body, "\"completed\"") != NULL, "%s", r.body);
	itest_resp_free(&r);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
}
END_TEST

/* A2A message/send, not blocking, with a push config: the task id at
 * once; resubscribing gives the task as it stands first, then its
 * updates to the end; the receiver gets the completed task. */
START_TEST(test_send_push_resubscribe)
{
	char file[1024], *body, *id;
	FILE *proc;
	int port = itest_push_receiver(file, sizeof(file), 300,
	    &proc);
	struct itest_resp r;
	json_object *rec, *task;

	body = malloc(4096);
	ck_assert_ptr_nonnull(body);
	snprintf(body, 4096, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"message/send\",\"params\":{\"message\":{\"kind\":\"message\","
	    "\"messageId\":\"pl2\",\"role\":\"user\",\"parts\":[{\"kind\":"
	    "\"data\",\"data\":{\"operation\":\"instag.pipeline\",\"params\":"
	    "%s}}]},\"configuration\":{\"blocking\":false,"
	    "\"pushNotificationConfig\":{\"url\":\"https://127.0.0.1:%d/pl\","
	    "\"token\":\"pl-tok\"}}}}", pl_params("may", ""), port);
	itest_post("/a2a", admin(), body, &r);
	ck_assert_msg(itest_jstr(r.json, "result.id") != NULL, "%s", r.body);
	id = strdup(itest_jstr(r.json, "result.id"));
	itest_resp_free(&r);
	snprintf(body, 4096, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":"
	    "\"SubscribeToTask\",\"params\":{\"id\":\"%s\"}}", id);
	itest_set_timeout(300);
	itest_post("/a2a", admin(), body, &r);
	itest_set_timeout(0);
	free(body);
	ck_assert_msg(strncmp(r.body, "data: {\"jsonrpc\":\"2.0\",\"id\":9,"
	    "\"result\":{\"task\":", 44) == 0, "first event: %.160s", r.body);
	ck_assert_msg(strstr(r.body, "TASK_STATE_COMPLETED") != NULL, "%s",
	    r.body);
	itest_resp_free(&r);
	rec = itest_wait_record(file, "\\\"state\\\":\\\"completed\\\"", 60000);
	ck_assert_msg(rec != NULL, "no completed notification in %s", file);
	ck_assert_str_eq(itest_jstr(rec, "path"), "/pl");
	task = json_tokener_parse(itest_jstr(rec, "body"));
	ck_assert_str_eq(itest_jstr(task, "id"), id);
	ck_assert_int_ge(json_object_array_length(itest_jget(task,
	    "artifacts")), 2);
	json_object_put(task);
	json_object_put(rec);
	itest_push_receiver_stop(port, proc);
	free(id);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
}
END_TEST

/* pod_id: a running pod of the caller's is used and kept; another user
 * cannot name it. */
START_TEST(test_reuse_pod)
{
	struct itest_resp r;
	char params[2300], pod[64], model[80], *tok, *id;

	id = itest_start_task(admin(), "runpod.provision_pod",
	    "{\"gpu_type_ids\":" GPU "}");
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	itest_get_task(admin(), id, &r);
	snprintf(pod, sizeof(pod), "%s",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	free(id);
	uploads_once();
	snprintf(params, sizeof(params), "{\"subject\":\"may\",\"video\":"
	    "\"%s\",\"audio\":[\"%s\"],\"pod_id\":\"%s\"}", video_id,
	    audio1_id, pod);
	free(run_pipeline(admin(), params, "completed", &r));
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.pod.reused")));
	ck_assert(!json_object_get_boolean(itest_jget(r.json,
	    "result.result.pod.terminated")));
	ck_assert_str_eq(itest_jstr(r.json, "result.result.pod.pod_id"), pod);
	snprintf(model, sizeof(model), "%s",
	    itest_jstr(r.json, "result.result.model"));
	itest_resp_free(&r);
	ck_assert_int_eq(itest_runpod_live_pods(), 1);

	/* new audio through the model it trained: no upload, no training */
	{
		char mp[1024];
		int train = itest_fake_calls("train_face");
		int synth = itest_fake_calls("synthesize_fuse");
		snprintf(mp, sizeof(mp), "{\"subject\":\"may\",\"model\":"
		    "\"%s\",\"audio\":[\"%s\"],\"pod_id\":\"%s\"}", model,
		    audio2_id, pod);
		free(run_pipeline(admin(), mp, "completed", &r));
		ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
		    "result.result.videos")), 1);
		ck_assert_ptr_null(itest_jget(r.json,
		    "result.result.seconds.train"));
		itest_resp_free(&r);
		ck_assert_int_eq(itest_fake_calls("train_face"), train);
		ck_assert_int_eq(itest_fake_calls("synthesize_fuse"),
		    synth + 1);
		/* a model needs its pod; a model or a video, not both */
		snprintf(mp, sizeof(mp), "{\"subject\":\"may\",\"model\":"
		    "\"%s\",\"audio\":[\"%s\"],\"gpu_type_ids\":" GPU "}",
		    model, audio2_id);
		itest_envelope(admin(), "instag.pipeline", mp, &r);
		ck_assert_str_eq(itest_jstr(r.json, "error.code"),
		    "invalid_params");
		itest_resp_free(&r);
		snprintf(mp, sizeof(mp), "{\"subject\":\"may\",\"model\":"
		    "\"%s\",\"video\":\"%s\",\"audio\":[\"%s\"],"
		    "\"pod_id\":\"%s\"}", model, video_id, audio2_id, pod);
		itest_envelope(admin(), "instag.pipeline", mp, &r);
		ck_assert_str_eq(itest_jstr(r.json, "error.code"),
		    "invalid_params");
		itest_resp_free(&r);
	}

	/* someone else's pod: refused before any task */
	tok = itest_token("pl-other", "instag:run pods:write pods:read "
	    "tasks:read tasks:write", 3600);
	itest_envelope(tok, "instag.pipeline", params, &r);
	ck_assert_msg(itest_jstr(r.json, "error.code") != NULL, "%s", r.body);
	ck_assert_ptr_null(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);
	free(tok);

	/* both or neither of pod_id and gpu_type_ids: invalid */
	itest_envelope(admin(), "instag.pipeline", "{\"subject\":\"may\","
	    "\"video\":\"https://x.example/v.mp4\",\"audio\":"
	    "[\"https://x.example/a.wav\"]}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);

	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod);
	id = itest_start_task(admin(), "runpod.terminate_pod", params);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "completed");
	free(id);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
}
END_TEST

/* Two tenants at once, the same subject name: each gets its own videos,
 * neither can read the other's task or artifacts. */
START_TEST(test_two_tenants)
{
	static const char sub_b[] = "pl tenant b";
	struct itest_resp ra, rb;
	char params[2300], *tok, *va, *aa, *ida, *idb, uri[600];
	const char *ua_uri;
	size_t len;

	tok = itest_token(sub_b, "instag:run pods:write pods:read tasks:read "
	    "tasks:write", 3600);
	va = itest_upload_media(tok, "plb.mp4", "video --seconds 2.6");
	aa = itest_upload_media(tok, "plb.wav", "audio --seconds 2");
	snprintf(params, sizeof(params), "{\"subject\":\"may\",\"video\":"
	    "\"%s\",\"audio\":[\"%s\"],\"gpu_type_ids\":" GPU "}", va, aa);
	/* B cannot use A's uploads, nor A B's */
	{
		char bad[2300];
		snprintf(bad, sizeof(bad), "{\"subject\":\"may\",\"video\":"
		    "\"%s\",\"audio\":[\"%s\"],\"gpu_type_ids\":" GPU "}",
		    video_id, aa);
		itest_envelope(tok, "instag.pipeline", bad, &rb);
		ck_assert_str_eq(itest_jstr(rb.json, "error.code"),
		    "invalid_params");
		itest_resp_free(&rb);
	}
	idb = itest_start_task(tok, "instag.pipeline", params);
	ida = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    ""));
	ck_assert_str_eq(itest_wait_task(tok, idb, 300000), "completed");
	ck_assert_str_eq(itest_wait_task(admin(), ida, 300000), "completed");
	itest_get_task(admin(), ida, &ra);
	itest_get_task(tok, idb, &rb);
	ck_assert_int_eq(json_object_array_length(itest_jget(ra.json,
	    "result.result.videos")), 2);
	ck_assert_int_eq(json_object_array_length(itest_jget(rb.json,
	    "result.result.videos")), 1);
	ck_assert_ptr_nonnull(strstr(itest_jstr(rb.json,
	    "result.result.model_dir"), "u-"));
	ck_assert_str_ne(itest_jstr(ra.json, "result.result.model_dir"),
	    itest_jstr(rb.json, "result.result.model_dir"));
	/* B: not A's task, not A's video */
	ua_uri = itest_jstr(ra.json, "result.result.videos.0.uri");
	snprintf(uri, sizeof(uri), "%s", ua_uri);
	ck_assert_int_eq(fetch_artifact(tok, uri, &len), 404);
	ck_assert_int_eq(fetch_artifact(admin(), uri, &len), 200);
	itest_resp_free(&rb);
	itest_get_task(tok, ida, &rb);
	ck_assert_str_eq(itest_jstr(rb.json, "error.code"), "task_not_found");
	itest_resp_free(&rb);
	itest_resp_free(&ra);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(ida);
	free(idb);
	free(va);
	free(aa);
	free(tok);
}
END_TEST

/* The task's progress step (0 before any) and its state into st. */
static int
task_step(const char *id, char *st, size_t len)
{
	struct itest_resp r;
	int step;

	itest_get_task(admin(), id, &r);
	step = itest_jint(r.json, "result.progress.step");
	snprintf(st, len, "%s", itest_jstr(r.json, "result.state") ?
	    itest_jstr(r.json, "result.state") : "?");
	itest_resp_free(&r);
	return step < 0 ? 0 : step;
}

/*
 * SIGKILL at every step boundary: each time the pipeline is seen at a new
 * step the agent is killed at once and started again; once more in the
 * middle of training.  The pipeline completes with one pod created, no
 * stage run twice, and the pod released.
 */
START_TEST(test_kill_at_every_step)
{
	const char *root = getenv("POD_ROOT");
	int before[8], creates = itest_runpod_created();
	int last = 0, kills = 0, step, i;
	bool held = true;
	char st[32], *id;

	count_fakes(before);
	POD("echo hold > '%s/fake-control/train_face'", root);
	id = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    ""));
	for (i = 0; i < 6000; i++) {	/* a hang guard: 10 min */
		step = task_step(id, st, sizeof(st));
		if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "canceled") == 0)
			break;
		if (held && itest_fake_calls("train_face") > before[0]) {
			/* in the middle of training: the job runs on */
			itest_agent_crash();
			kills++;
			POD("rm -f '%s/fake-control/train_face'", root);
			held = false;
		} else if (step != last) {
			last = step;
			itest_agent_crash();
			kills++;
		} else
			usleep(10000);
	}
	ck_assert_msg(strcmp(st, "completed") == 0, "ended %s after %d kills",
	    st, kills);
	ck_assert_int_ge(kills, 8);
	assert_ran_once(before, 2);
	ck_assert_int_eq(itest_runpod_created() - creates, 1);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(id);
}
END_TEST

/*
 * Cancel at each step: the fake doing the step's work is held, the
 * pipeline canceled when it runs; the task ends canceled, the remote job
 * is gone and so is the pod.  pattern: the fake's process (pgrep -f).
 */
static void
cancel_at(const char *fake, const char *pattern, const char *extra)
{
	const char *root = getenv("POD_ROOT");
	struct itest_resp r;
	char params[128], *id;
	int before = itest_fake_calls(fake), i;

	if (strcmp(fake, "conda") == 0)
		/* setup does its work only on a pod not set up yet */
		POD("rm -f '%s/InsTaG/.instag-agent-ready'", root);
	POD("echo hold > '%s/fake-control/%s'", root, fake);
	id = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    extra));
	for (i = 0; i < 1200 && itest_fake_calls(fake) == before; i++)
		usleep(50000);	/* a hang guard: 60 s */
	ck_assert_msg(itest_fake_calls(fake) > before, "%s never ran", fake);
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	if (strcmp(fake, "train_face") == 0) {
		/* instag.logs reads the current step's job (once the agent
		 * has committed its start) */
		const char *job = NULL;
		for (i = 0; i < 300 && job == NULL; i++) {
			itest_envelope(admin(), "instag.logs", params, &r);
			job = itest_jstr(r.json, "result.job");
			if (job != NULL) {
				ck_assert_msg(strstr(job, "-face") != NULL &&
				    strncmp(job, id, strlen(id)) == 0, "%s",
				    r.body);
				ck_assert(!json_object_get_boolean(itest_jget(
				    r.json, "result.eof")));
			}
			itest_resp_free(&r);
			if (job == NULL)
				usleep(100000);	/* a hang guard: 30 s */
		}
		ck_assert_msg(job != NULL, "instag.logs never read the job");
	}
	itest_envelope(admin(), "tasks.cancel", params, &r);
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "canceled");
	for (i = 0; i < 600 && itest_pod_pgrep(pattern) == 0; i++)
		usleep(50000);	/* a hang guard: 30 s */
	ck_assert_msg(itest_pod_pgrep(pattern) == 1,
	    "%s still runs after the cancel", fake);
	POD("rm -f '%s/fake-control/%s'", root, fake);
	itest_get_task(admin(), id, &r);
	ck_assert_msg(json_object_get_boolean(itest_jget(r.json,
	    "result.result.pod.terminated")), "%s", r.body);
	itest_resp_free(&r);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(id);
}

START_TEST(test_cancel_at_every_step)
{
	struct itest_resp r;
	char params[128], *id;

	/* provisioning: RunPod slow to answer the create */
	itest_runpod_faults("{\"slow_ms\":1500}");
	id = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    ""));
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	itest_envelope(admin(), "tasks.cancel", params, &r);
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "canceled");
	itest_runpod_faults(NULL);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(id);

	cancel_at("conda", "/bin/cond[a] ", "");
	cancel_at("ffprobe", "/bin/ffprob[e]", "");
	cancel_at("process", "data_utils/process.p[y]", "");
	cancel_at("train_face", "train_fac[e].py", "");
	cancel_at("synthesize_fuse", "synthesize_fus[e].py", "");
	/* fetch: the model packed with tar */
	cancel_at("tar", "/bin/ta[r] ", ",\"include_model\":true");
}
END_TEST

/* RunPod answering 429 and 5xx, no capacity for the first GPU type, and
 * the SSH connection dropped during training: the pipeline completes
 * after retries on the second GPU type, one pod, none left. */
START_TEST(test_faults)
{
	const char *root = getenv("POD_ROOT"), *top = getenv("top_srcdir");
	int before[8], creates = itest_runpod_created(), i;
	char params[2048], *id;
	struct itest_resp r;

	count_fakes(before);
	itest_runpod_faults("{\"rate_limit\":{\"count\":2,\"retry_after\":1},"
	    "\"server_error\":{\"count\":2,\"status\":503},\"no_capacity\":"
	    "{\"gpu_ids\":[\"NVIDIA GeForce RTX 4090\"]}}");
	POD("echo hold > '%s/fake-control/train_face'", root);
	snprintf(params, sizeof(params), "{\"subject\":\"may\",\"video\":"
	    "\"%s\",\"audio\":[\"%s\",\"%s\"],\"gpu_type_ids\":["
	    "\"NVIDIA GeForce RTX 4090\",\"NVIDIA H100 80GB HBM3\"]}",
	    video_id, audio1_id, audio2_id);
	id = itest_start_task(admin(), "instag.pipeline", params);
	for (i = 0; i < 1200 && itest_fake_calls("train_face") == before[0];
	    i++)
		usleep(50000);	/* a hang guard: 60 s */
	ck_assert_int_eq(itest_sh("'%s/tests/harness/pod' drop '%s/pod' >&2",
	    top, getenv("HARNESS_DIR")), 0);
	POD("rm -f '%s/fake-control/train_face'", root);
	ck_assert_str_eq(itest_wait_task(admin(), id, 300000), "completed");
	itest_runpod_faults(NULL);
	itest_get_task(admin(), id, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.pod.gpu_type_id"),
	    "NVIDIA H100 80GB HBM3");
	itest_resp_free(&r);
	assert_ran_once(before, 2);
	ck_assert_int_eq(itest_runpod_created() - creates, 1);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(id);
}
END_TEST

/*
 * A pod lost while it trains: the pipeline finds it gone at its next
 * check of the pod, records the recovery, provisions a new pod from the
 * same GPU list, runs setup to train again there (the uploads and assets
 * come from the agent) and completes: two pods made, none left, the cost
 * of both in the result.
 */
START_TEST(test_recover_lost_pod)
{
	const char *root = getenv("POD_ROOT"), *top = getenv("top_srcdir");
	const char *dir = getenv("HARNESS_DIR");
	int before[8], after[8], creates;
	struct itest_resp r;
	long long lost_ms;
	char *id, *pod;

	ck_assert_int_eq(itest_sh("INSTAG_AGENT_PIPELINE_POD_CHECK_S=1 "
	    "'%s/tests/harness/agent' '%s' restart >&2", top, dir), 0);
	creates = itest_runpod_created();
	count_fakes(before);
	POD("echo hold > '%s/fake-control/train_face'", root);
	id = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    ""));
	itest_wait_fake_calls("train_face", before[0]);
	pod = itest_lose_pod_in_train(id, "face");
	lost_ms = itest_ms();
	/* training again, on the new pod */
	itest_wait_fake_calls("train_face", before[0] + 1);
	fprintf(stderr, "recovery: %lld ms from the pod's loss to training "
	    "again\n", itest_ms() - lost_ms);
	POD("rm -f '%s/fake-control/train_face'", root);
	ck_assert_str_eq(itest_wait_task(admin(), id, 300000), "completed");
	itest_get_task(admin(), id, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.recoveries.0."
	    "pod_id"), pod);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.recoveries.0."
	    "step"), "train");
	/* no volume: the work starts again from its first step */
	ck_assert_str_eq(itest_jstr(r.json, "result.result.recoveries.0."
	    "resumes_at"), "upload");
	ck_assert_ptr_null(itest_jget(r.json, "result.result.recoveries.1"));
	ck_assert_str_ne(itest_jstr(r.json, "result.result.pod.pod_id"), pod);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.cost.pods.0."
	    "pod_id"), pod);
	ck_assert_ptr_nonnull(itest_jget(r.json, "result.result.cost.pods.1"));
	ck_assert_ptr_null(itest_jget(r.json, "result.result.cost.pods.2"));
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.cost.pods.0.lost")));
	ck_assert(!json_object_get_boolean(itest_jget(r.json,
	    "result.result.cost.pods.1.lost")));
	/* the totals are the sums over both pods, billed ones too (the
	 * stand-in's billing answers for each) */
	ck_assert_double_eq_tol(json_object_get_double(itest_jget(r.json,
	    "result.result.cost.usd")), json_object_get_double(itest_jget(
	    r.json, "result.result.cost.pods.0.usd")) +
	    json_object_get_double(itest_jget(r.json,
	    "result.result.cost.pods.1.usd")), 1e-5);
	ck_assert_msg(json_object_get_double(itest_jget(r.json,
	    "result.result.cost.billed.usd")) > 0, "%s", r.body);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.pod.terminated")));
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.videos")), 2);
	itest_resp_free(&r);
	/* face training twice (the lost job, then anew); the rest once */
	count_fakes(after);
	ck_assert_int_eq(after[0] - before[0], 2);
	ck_assert_int_eq(after[1] - before[1], 1);
	ck_assert_int_eq(after[2] - before[2], 1);
	ck_assert_int_eq(after[3] - before[3], 2);
	ck_assert_int_eq(itest_runpod_created() - creates, 2);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(pod);
	free(id);

	/* max_recoveries 0: the pipeline fails pod_gone, no second pod */
	creates = itest_runpod_created();
	count_fakes(before);
	POD("echo hold > '%s/fake-control/train_face'", root);
	id = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    ",\"max_recoveries\":0"));
	itest_wait_fake_calls("train_face", before[0]);
	pod = itest_lose_pod_in_train(id, "face");
	POD("rm -f '%s/fake-control/train_face'", root);
	ck_assert_str_eq(itest_wait_task(admin(), id, 120000), "failed");
	itest_get_task(admin(), id, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"), "pod_gone");
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "max_recoveries") != NULL, "%s", r.body);
	itest_resp_free(&r);
	ck_assert_int_eq(itest_runpod_created() - creates, 1);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(pod);
	free(id);
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' restart "
	    ">&2", top, dir), 0);
}
END_TEST

#ifdef PIPELINE_AGENTS

/* Agent i's pid, from its pid file (0 when it has none). */
static long
agent_pid(int i)
{
	char name[32], *text;
	const char *file;
	long pid;

	snprintf(name, sizeof(name), "AGENT%d_PID_FILE", i);
	if ((file = getenv(name)) == NULL || access(file, R_OK) != 0)
		return 0;
	text = tu_read_file(file);
	pid = strtol(text, NULL, 10);
	free(text);
	return pid;
}

/* Which agent (1..IA_AGENTS) holds task id's lease now, read from the
 * store; 0 when none does (finished, or its lease ran out). */
static int
holder_of(const char *id)
{
	char cmd[1024], line[256] = "", *slash;
	int i, n = atoi(getenv("IA_AGENTS"));
	long pid;
	FILE *fp;

	/* id is a task id the agent made (a UUID): safe in the command. */
	snprintf(cmd, sizeof(cmd), "PGPASSWORD=\"$(cat "
	    "\"$PG_PASSWORD_FILE\")\" psql -X -q -At -d \"$PG_URL\" -c "
	    "\"SELECT lease_holder FROM tasks WHERE id = '%s' AND "
	    "lease_until > (extract(epoch FROM clock_timestamp()) * 1000)"
	    "::bigint\"", id);
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	ck_assert_int_eq(pclose(fp), 0);
	/* The holder is "host/pid/nonce". */
	if ((slash = strchr(line, '/')) == NULL)
		return 0;
	pid = strtol(slash + 1, NULL, 10);
	for (i = 1; i <= n; i++)
		if (agent_pid(i) == pid)
			return i;
	return 0;
}

static void
agent_ctl(const char *what, int i)
{
	ck_assert_int_eq(itest_sh("'%s/tests/harness/agent' '%s' %s %d >&2",
	    getenv("top_srcdir"), getenv("HARNESS_DIR"), what, i), 0);
}

/*
 * SIGKILL of the agent that holds the pipeline, at every step and once
 * in the middle of training: another agent claims it when the lease runs
 * out (lease_seconds = 4 here) and resumes it from its checkpoint, and
 * the killed agent comes back only after that.  The pipeline completes
 * with one pod created, no stage run twice, the pod released, and more
 * than one agent having run it.
 */
START_TEST(test_failover_every_step)
{
	const char *root = getenv("POD_ROOT");
	int before[8], creates = itest_runpod_created();
	int last = 0, kills = 0, step, i, who, ran_on = 0;
	bool held = true, seen[17] = { false };
	char st[32], *id;

	register_assets();
	count_fakes(before);
	POD("echo hold > '%s/fake-control/train_face'", root);
	id = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    ""));
	for (i = 0; i < 6000; i++) {	/* a hang guard: 10 min */
		step = task_step(id, st, sizeof(st));
		if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "canceled") == 0)
			break;
		who = holder_of(id);
		if (who > 0 && !seen[who]) {
			seen[who] = true;
			ran_on++;
		}
		if (who > 0 && ((held && itest_fake_calls("train_face") >
		    before[0]) || step != last)) {
			int next = 0, k;

			agent_ctl("kill", who);
			kills++;
			if (held && itest_fake_calls("train_face") >
			    before[0]) {
				POD("rm -f '%s/fake-control/train_face'",
				    root);
				held = false;
			}
			last = step;
			/* Another agent takes it over (bounded: 60 s). */
			for (k = 0; k < 600 && (next == 0 || next == who);
			    k++) {
				task_step(id, st, sizeof(st));
				if (strcmp(st, "working") != 0 &&
				    strcmp(st, "submitted") != 0)
					break;
				next = holder_of(id);
				usleep(100000);
			}
			agent_ctl("start", who);
		} else
			usleep(10000);
	}
	ck_assert_msg(strcmp(st, "completed") == 0, "ended %s after %d kills",
	    st, kills);
	ck_assert_int_ge(kills, 6);
	ck_assert_int_ge(ran_on, 2);
	assert_ran_once(before, 2);
	ck_assert_int_eq(itest_runpod_created() - creates, 1);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	free(id);
}
END_TEST

/* A cancel sent to an agent that does not hold the pipeline reaches the
 * one that does: the task ends canceled, its remote job and pod gone. */
START_TEST(test_cancel_elsewhere)
{
	const char *root = getenv("POD_ROOT");
	int before = itest_fake_calls("train_face"), i, who = 0, other;
	char params[128], url[512], name[32], *id, *body;
	struct itest_resp r;

	POD("echo hold > '%s/fake-control/train_face'", root);
	id = itest_start_task(admin(), "instag.pipeline", pl_params("may",
	    ""));
	for (i = 0; i < 1200 && itest_fake_calls("train_face") == before; i++)
		usleep(100000);
	ck_assert_msg(itest_fake_calls("train_face") > before,
	    "training never started");
	for (i = 0; i < 100 && (who = holder_of(id)) == 0; i++)
		usleep(100000);
	ck_assert_int_gt(who, 0);
	other = who % atoi(getenv("IA_AGENTS")) + 1;
	/* Straight to the other agent (its own location in nginx). */
	snprintf(name, sizeof(name), "AGENT%d_URL", other);
	ck_assert_ptr_nonnull(getenv(name));
	snprintf(url, sizeof(url), "%s/api/a2a", getenv(name));
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	body = NULL;
	ck_assert_int_ge(asprintf(&body, "{\"type\":\"task_request\","
	    "\"payload\":{\"operation\":\"tasks.cancel\",\"params\":%s}}",
	    params), 0);
	itest_request_url("POST", url, getenv("AGENT_CA"), admin(),
	    "application/json", body, strlen(body), &r);
	ck_assert_msg(r.status == 200, "%ld: %s", r.status, r.body);
	itest_resp_free(&r);
	free(body);
	ck_assert_str_eq(itest_wait_task(admin(), id, 120000), "canceled");
	POD("rm -f '%s/fake-control/train_face'", root);
	for (i = 0; i < 600 && itest_runpod_live_pods() != 0; i++)
		usleep(100000);
	ck_assert_int_eq(itest_runpod_live_pods(), 0);
	ck_assert_int_eq(itest_pod_pgrep("train_fac[e].py"), 1);
	free(id);
}
END_TEST

/* How many agents hold (or held last) the leases of the tasks ids. */
static int
holders_of(char *const *ids, int n)
{
	char cmd[4096], line[64] = "";
	size_t off;
	FILE *fp;
	int i;

	off = (size_t)snprintf(cmd, sizeof(cmd), "PGPASSWORD=\"$(cat "
	    "\"$PG_PASSWORD_FILE\")\" psql -X -q -At -d \"$PG_URL\" -c "
	    "\"SELECT count(DISTINCT lease_holder) FROM tasks WHERE id IN (");
	for (i = 0; i < n && off < sizeof(cmd); i++)
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off,
		    "%s'%s'", i ? ", " : "", ids[i]);
	ck_assert_uint_lt(off + 8, sizeof(cmd));
	snprintf(cmd + off, sizeof(cmd) - off, ")\"");
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	ck_assert_int_eq(pclose(fp), 0);
	return atoi(line);
}

#define SHARED_TASKS 12

/* Tasks sent through nginx are run by the agents between them, each to
 * its end, each by one agent. */
START_TEST(test_share_work)
{
	char *ids[SHARED_TASKS];
	int i;

	for (i = 0; i < SHARED_TASKS; i++)
		ids[i] = itest_start_task(admin(), "diag.timer",
		    "{\"steps\":3,\"interval_ms\":200}");
	for (i = 0; i < SHARED_TASKS; i++) {
		ck_assert_str_eq(itest_wait_task(admin(), ids[i], 60000),
		    "completed");
	}
	ck_assert_int_ge(holders_of(ids, SHARED_TASKS), 2);
	for (i = 0; i < SHARED_TASKS; i++)
		free(ids[i]);
}
END_TEST

/* POST body (JSON) to path on agent i's own URL, as the admin. */
static void
agent_post(int i, const char *path, const char *body, struct itest_resp *r)
{
	char name[32], url[512];

	snprintf(name, sizeof(name), "AGENT%d_URL", i);
	ck_assert_ptr_nonnull(getenv(name));
	snprintf(url, sizeof(url), "%s%s", getenv(name), path);
	itest_request_url("POST", url, getenv("AGENT_CA"), admin(),
	    "application/json", body, strlen(body), r);
}

/* A task run by agent 1 and followed on agent 2 (tasks/resubscribe):
 * agent 2's stream carries agent 1's progress to the final status. */
START_TEST(test_stream_elsewhere)
{
	struct itest_resp r;
	char body[512], *id;
	const char *p;
	int updates = 0;

	agent_post(1, "/api/a2a", "{\"type\":\"task_request\",\"payload\":"
	    "{\"operation\":\"diag.timer\",\"params\":{\"steps\":6,"
	    "\"interval_ms\":400}}}", &r);
	ck_assert_msg(r.status == 200 && itest_jstr(r.json, "task_id"),
	    "%ld: %s", r.status, r.body);
	id = strdup(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);
	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"tasks/resubscribe\",\"params\":{\"id\":\"%s\"}}",
	    id);
	itest_set_timeout(120);
	agent_post(2, "/a2a", body, &r);
	itest_set_timeout(0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strcasestr(r.headers, "text/event-stream"));
	for (p = r.body; (p = strstr(p, "\"status-update\"")) != NULL; p++)
		updates++;
	ck_assert_msg(updates >= 3, "%d updates: %s", updates, r.body);
	ck_assert_msg(strstr(r.body, "\"completed\"") != NULL &&
	    strstr(r.body, "\"final\":true") != NULL, "%s", r.body);
	itest_resp_free(&r);
	free(id);
}
END_TEST

/* Agent i's instag_agent_podguard_leader (-1 when it cannot say). */
static int
guard_leader(int i)
{
	char name[32], url[512];
	struct itest_resp r;
	const char *p;
	int v = -1;

	snprintf(name, sizeof(name), "AGENT%d_URL", i);
	snprintf(url, sizeof(url), "%s/metrics", getenv(name));
	itest_request_url("GET", url, getenv("AGENT_CA"), admin(), NULL,
	    NULL, 0, &r);
	if (r.status == 200 && r.body != NULL &&
	    (p = strstr(r.body, "\ninstag_agent_podguard_leader ")) != NULL)
		v = atoi(p + 30);
	itest_resp_free(&r);
	return v;
}

/* The agent that runs the cost guard (at most one at a time), or 0 when
 * none does now; waits (bounded) while two claim it. */
static int
guard_holder(void)
{
	int i, n = atoi(getenv("IA_AGENTS")), who = 0, leaders = 0;

	for (i = 1; i <= n; i++)
		if (guard_leader(i) == 1) {
			who = i;
			leaders++;
		}
	ck_assert_msg(leaders <= 1, "%d agents run the cost guard", leaders);
	return who;
}

/* The cost guard runs on one agent; when that agent dies another takes
 * it over (cost_guard_interval = 1 here). */
START_TEST(test_guard_moves)
{
	int who = 0, next = 0, i;

	for (i = 0; i < 300 && (who = guard_holder()) == 0; i++)
		usleep(100000);
	ck_assert_int_gt(who, 0);
	agent_ctl("kill", who);
	for (i = 0; i < 300 && (next = guard_holder()) == 0; i++)
		usleep(100000);
	ck_assert_int_gt(next, 0);
	ck_assert_int_ne(next, who);
	agent_ctl("start", who);
	/* Back: still one, the one that took over. */
	ck_assert_int_eq(guard_holder(), next);
}
END_TEST

static void
agents_up(void)
{
	tu_require(access("/usr/lib/postgresql", X_OK) == 0 ||
	    itest_sh("command -v initdb >/dev/null 2>&1") == 0,
	    "PostgreSQL's server programs not found (install the Debian "
	    "package 'postgresql')");
	setenv("IA_STORE", "postgresql", 1);
	setenv("IA_AGENTS", "3", 1);
	setenv("INSTAG_AGENT_LEASE_SECONDS", "4", 1);
	setenv("INSTAG_AGENT_COST_GUARD_INTERVAL", "1", 1);
	itest_harness_up();
}

static Suite *
agents_suite(void)
{
	Suite *s = suite_create("pipeline-agents");
	TCase *tc = tcase_create("agents");

	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_share_work);
	tcase_add_test(tc, test_stream_elsewhere);
	tcase_add_test(tc, test_guard_moves);
	tcase_add_test(tc, test_failover_every_step);
	tcase_add_test(tc, test_cancel_elsewhere);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { agents_suite }, .setup = agents_up,
    .teardown = itest_harness_down, .nofork = true)

#else /* one agent */

static Suite *
pipeline_suite(void)
{
	Suite *s = suite_create("pipeline-integration");
	TCase *tc = tcase_create("pipeline");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_assets_missing);
	tcase_add_test(tc, test_envelope);
	tcase_add_test(tc, test_a2a_stream);
	tcase_add_test(tc, test_send_push_resubscribe);
	tcase_add_test(tc, test_reuse_pod);
	tcase_add_test(tc, test_two_tenants);
	tcase_add_test(tc, test_kill_at_every_step);
	tcase_add_test(tc, test_cancel_at_every_step);
	tcase_add_test(tc, test_faults);
	tcase_add_test(tc, test_recover_lost_pod);
	suite_add_tcase(s, tc);
	return s;
}

/* In order, in one process: the tests share the pod's checkout. */
TU_MAIN(.suites = { pipeline_suite }, .setup = itest_harness_up,
    .teardown = itest_harness_down, .nofork = true)

#endif
