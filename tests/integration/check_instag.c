/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the InsTaG operations: the real agent behind the
 * real nginx; a pod provisioned from the RunPod stand-in whose SSH is the
 * harness's real sshd; the fake InsTaG tree (tests/fake-instag) installed
 * in $POD_ROOT, whose scripts take exactly InsTaG's flags.  Uploads go
 * through PUT /uploads, results come back through GET /artifacts.
 */
#include "auto-config.h"

#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/itest.h"
#include "unit/testutil.h"

static const char *admin(void) { return getenv("AGENT_TOKEN"); }

static char pod_id[64];		/* the suite's pod */

/* The owner directory of sub on the pod, "u-" and 32 hex digits of
 * SHA-256(sub), computed here with sha256sum (static buffer). */
static const char *
udir_of(const char *sub, char *buf, size_t len)
{
	char cmd[512];
	FILE *fp;

	snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | sha256sum | "
	    "cut -c1-32", sub);
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(fgets(buf + 2, (int)len - 2, fp));
	pclose(fp);
	buf[0] = 'u';
	buf[1] = '-';
	buf[strcspn(buf, "\n")] = '\0';
	ck_assert_uint_eq(strlen(buf), 34);
	return buf;
}

/* The admin token's (sub "admin") directory. */
static const char *
ua(void)
{
	static char buf[64];

	return buf[0] ? buf : udir_of("admin", buf, sizeof(buf));
}

/* ---- helpers ------------------------------------------------------------ */

static void
op(const char *operation, const char *params, struct itest_resp *r)
{
	itest_envelope(admin(), operation, params, r);
}

static char *
start(const char *operation, const char *params)
{
	return itest_start_task(admin(), operation, params);
}

static void
get_task(const char *id, struct itest_resp *r)
{
	itest_get_task(admin(), id, r);
}

/* Run a task operation as token until it ends in state want; the task
 * in *r, its id returned (caller frees). */
static char *
run_as(const char *token, const char *operation, const char *params,
    const char *want, long timeout_ms, struct itest_resp *r)
{
	char *id = itest_start_task(token, operation, params);
	const char *st = itest_wait_task(token, id, timeout_ms);

	itest_get_task(token, id, r);
	ck_assert_msg(strcmp(st, want) == 0, "%s ended %s, wanted %s: %s",
	    operation, st, want, r->body);
	return id;
}

static void
run(const char *operation, const char *params, const char *want,
    long timeout_ms, struct itest_resp *r)
{
	free(run_as(admin(), operation, params, want, timeout_ms, r));
}

/* Run a shell command on the "pod" (it is local: $POD_ROOT), as the pod
 * user. */
#define POD(...) ck_assert_int_eq(itest_pod_sh(__VA_ARGS__), 0)

static char *
upload(const char *name, const char *make_media_args)
{
	return itest_upload_media(admin(), name, make_media_args);
}

/* The SHA-256 of a file here (static buffer). */
static const char *
sha_of(const char *path)
{
	static char buf[80];
	char cmd[700];
	FILE *fp;

	snprintf(cmd, sizeof(cmd), "sha256sum '%s' | cut -c1-64", path);
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), fp));
	pclose(fp);
	buf[strcspn(buf, "\n")] = '\0';
	ck_assert_uint_eq(strlen(buf), 64);
	return buf;
}

/* The entry of kind in setup's result.missing_assets (borrowed), or
 * NULL. */
static json_object *
missing_asset(json_object *task, const char *kind)
{
	json_object *ma = itest_jget(task, "result.result.missing_assets");
	size_t i;

	for (i = 0; ma && i < json_object_array_length(ma); i++) {
		json_object *m = json_object_array_get_idx(ma, i);
		const char *k = itest_jstr(m, "kind");
		if (k != NULL && strcmp(k, kind) == 0)
			return m;
	}
	return NULL;
}

/* Register an asset as token (params: the rest of the object, e.g.
 * "\"kind\":\"bfm2009\",\"upload_id\":\"...\""); the task must end
 * in state want, and is in *r. */
static void
register_as(const char *token, const char *params, const char *want,
    struct itest_resp *r)
{
	char *body = malloc(strlen(params) + 3);

	ck_assert_ptr_nonnull(body);
	sprintf(body, "{%s}", params);
	free(run_as(token, "instag.register_asset", body, want, 60000, r));
	free(body);
}

/*
 * Everything the fake pod needs that a user must provide (licensed BFM,
 * released weights): what instag.setup_environment reports missing.
 * Registered through the API as a user would (PUT /uploads, then
 * instag.register_asset; the EasyPortrait weight from an https URL the
 * agent downloads), then placed on the pod with instag.place_assets.
 * Returns the weights' upload id (caller frees).
 */
static char *
register_assets(void)
{
	static const char *const ex[] = { "deepspeech", "ave", "esperanto",
	    "hubert", NULL };
	const char *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char params[1024], path[512], sha[80], *bfm, *w;
	int i;

	bfm = upload("bfm.mat", "bfm");
	w = upload("chkpnt.pth", "weights");
	snprintf(params, sizeof(params), "\"kind\":\"bfm2009\","
	    "\"upload_id\":\"upload:%s\",\"sha256\":\"%s\"", bfm,
	    sha_of((snprintf(path, sizeof(path), "%s/bfm.mat", dir), path)));
	register_as(admin(), params, "completed", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.path"),
	    "data_utils/face_tracking/3DMM/01_MorphableModel.mat");
	ck_assert(!json_object_get_boolean(itest_jget(r.json,
	    "result.result.replaced")));
	itest_resp_free(&r);
	for (i = 0; ex[i]; i++) {
		snprintf(params, sizeof(params), "\"kind\":\"pretrain_face\","
		    "\"extractor\":\"%s\",\"upload_id\":\"%s\"", ex[i], w);
		register_as(admin(), params, "completed", &r);
		itest_resp_free(&r);
		snprintf(params, sizeof(params), "\"kind\":\"pretrain_mouth\","
		    "\"extractor\":\"%s\",\"upload_id\":\"%s\"", ex[i], w);
		register_as(admin(), params, "completed", &r);
		itest_resp_free(&r);
	}
	/* from an https URL, downloaded by the agent (nginx serves www/) */
	ck_assert_int_eq(itest_sh("'%s/tests/fake-instag/make-media' weights "
	    "--label easyportrait '%s/www/fpn.pth'", getenv("top_srcdir"),
	    dir), 0);
	snprintf(path, sizeof(path), "%s/www/fpn.pth", dir);
	snprintf(sha, sizeof(sha), "%s", sha_of(path));
	/* a wrong expected hash is refused, nothing registered */
	snprintf(params, sizeof(params), "\"kind\":\"easyportrait\","
	    "\"url\":\"%s/www/fpn.pth\",\"sha256\":\"%064d\"",
	    getenv("NGINX_ROOT_URL"), 0);
	register_as(admin(), params, "failed", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "input_rejected");
	itest_resp_free(&r);
	/* a URL that is not there */
	snprintf(params, sizeof(params), "\"kind\":\"easyportrait\","
	    "\"url\":\"%s/www/nope.pth\"", getenv("NGINX_ROOT_URL"));
	register_as(admin(), params, "failed", &r);
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "HTTP 404") != NULL, "%s", r.body);
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "\"kind\":\"easyportrait\","
	    "\"url\":\"%s/www/fpn.pth\",\"sha256\":\"%s\"",
	    getenv("NGINX_ROOT_URL"), sha);
	register_as(admin(), params, "completed", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.sha256"), sha);
	/* the URL itself is not kept (it may carry a signature) */
	ck_assert_str_eq(itest_jstr(r.json, "result.result.source"),
	    "url:127.0.0.1");
	itest_resp_free(&r);

	op("instag.list_assets", "{}", &r);
	ck_assert_msg(json_object_array_length(itest_jget(r.json,
	    "result.assets")) == 10, "%s", r.body);
	itest_resp_free(&r);
	free(bfm);
	return w;
}

static int
calls_of(const char *script)
{
	char cmd[512], buf[32];
	FILE *fp;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "grep -c '^%s\t' '%s/.fake-state/calls.log'"
	    " 2>/dev/null || true", script, getenv("POD_ROOT"));
	fp = popen(cmd, "r");
	if (fp != NULL && fgets(buf, sizeof(buf), fp))
		n = atoi(buf);
	if (fp)
		pclose(fp);
	return n;
}

/* How many calls of the fake's tools calls.log holds (-1: unreadable). */
static int
calls_total(void)
{
	char path[600], line[4096];
	FILE *fp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/.fake-state/calls.log",
	    getenv("POD_ROOT"));
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strchr(line, '\n') != NULL)
			n++;
	fclose(fp);
	return n;
}

/* ---- the suite, in order: each test builds on the previous ones --------- */

START_TEST(test_provision_and_setup)
{
	struct itest_resp r;
	char params[256];

	run("runpod.provision_pod", "{\"gpu_type_ids\":"
	    "[\"NVIDIA GeForce RTX 4090\"]}", "completed", 30000, &r);
	snprintf(pod_id, sizeof(pod_id), "%s",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod_id);

	/* First run: clone at the pinned commit, conda, weights; the
	 * licensed assets are reported missing. */
	run("instag_setup_environment", params, "completed", 60000, &r);
	ck_assert_msg(json_object_get_boolean(itest_jget(r.json,
	    "result.result.ready")) == 0, "%s", r.body);
	ck_assert_ptr_nonnull(strstr(json_object_to_json_string(itest_jget(
	    r.json, "result.result.missing")), "01_MorphableModel.mat"));
	POD("test \"$(git -C '%s/InsTaG' rev-parse HEAD)\" = '%s'",
	    getenv("POD_ROOT"), getenv("FAKE_INSTAG_COMMIT"));

	{
		/* what is missing says how to supply it */
		json_object *m = missing_asset(r.json, "bfm2009");
		ck_assert_msg(m != NULL, "%s", r.body);
		ck_assert(!json_object_get_boolean(itest_jget(m,
		    "registered")));
		ck_assert_str_eq(itest_jstr(m, "file"),
		    "data_utils/face_tracking/3DMM/01_MorphableModel.mat");
		ck_assert_ptr_nonnull(strstr(itest_jstr(m, "how"),
		    "instag.register_asset"));
		m = missing_asset(r.json, "pretrain_face");
		ck_assert_msg(m != NULL, "%s", r.body);
		ck_assert_str_eq(itest_jstr(m, "extractor"), "ave");
	}
	itest_resp_free(&r);
	/* nothing registered yet: place_assets places nothing, and
	 * completes */
	run("instag.place_assets", params, "completed", 60000, &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.placed")), 0);
	itest_resp_free(&r);

	/* The user's assets, registered through the API: setup now says
	 * they are registered; place them. */
	free(register_assets());
	run("instag.setup_environment", params, "completed", 60000, &r);
	ck_assert_msg(json_object_get_boolean(itest_jget(missing_asset(r.json,
	    "bfm2009"), "registered")), "%s", r.body);
	ck_assert_ptr_nonnull(strstr(itest_jstr(missing_asset(r.json,
	    "bfm2009"), "how"), "instag.place_assets"));
	itest_resp_free(&r);
	run("instag.place_assets", params, "completed", 60000, &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.placed")), 10);
	ck_assert_str_eq(itest_jstr(r.json, "result.result.placed.0.kind"),
	    "bfm2009");
	ck_assert_str_eq(itest_jstr(r.json, "result.result.placed.0.path"),
	    "data_utils/face_tracking/3DMM/01_MorphableModel.mat");
	ck_assert_str_eq(itest_jstr(r.json, "result.result.placed.0.sha256"),
	    sha_of((snprintf(params, sizeof(params), "%s/bfm.mat",
	    getenv("HARNESS_DIR")), params)));
	ck_assert(!json_object_get_boolean(itest_jget(r.json,
	    "result.result.placed.0.skipped")));
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod_id);
	POD("cd '%s/InsTaG' && cmp '%s/bfm.mat' "
	    "data_utils/face_tracking/3DMM/01_MorphableModel.mat && "
	    "cmp '%s/www/fpn.pth' data_utils/easyportrait/fpn-fp-512.pth && "
	    "for e in deepspeech ave esperanto hubert; do for k in face mouth; "
	    "do cmp '%s/chkpnt.pth' output/pretrain_$e/chkpnt_ema_${k}_latest"
	    ".pth || exit 1; done; done", getenv("POD_ROOT"),
	    getenv("HARNESS_DIR"), getenv("HARNESS_DIR"),
	    getenv("HARNESS_DIR"));
	/* again: everything is there already, nothing is sent */
	run("instag.place_assets", params, "completed", 60000, &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.placed")), 10);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.placed.9.skipped")));
	itest_resp_free(&r);

	/* With the user's assets in place: ready; a third run is instant. */
	run("instag.setup_environment", params, "completed", 60000, &r);
	ck_assert_msg(json_object_get_boolean(itest_jget(r.json,
	    "result.result.ready")), "%s", r.body);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.extractors")), 4);
	itest_resp_free(&r);
	{
		/* Already set up: nothing installed again (no conda, pip,
		 * wget, ... call of the fake at all), however long it took. */
		int before = calls_total();

		ck_assert_int_gt(before, 0);
		run("instag.setup_environment", params, "completed", 60000, &r);
		ck_assert(json_object_get_boolean(itest_jget(r.json,
		    "result.result.already_set_up")));
		ck_assert_int_eq(calls_total(), before);
		itest_resp_free(&r);
	}
}
END_TEST

/*
 * Assets are the owner's: another user sees none of A's, cannot delete
 * them, cannot register A's upload, cannot place on A's pod, nor on the
 * shared static host (its checkout is everyone's); bad input is refused
 * before any task is made.
 */
START_TEST(test_assets_owners)
{
	static const char sub_b[] = "asset b|y@example.org";
	struct itest_resp r;
	char params[512], *tok, *up;
	static const char *const bad[] = {
		"{\"kind\":\"../../etc/passwd\",\"url\":\"https://a.b/c\"}",
		"{\"kind\":\"pretrain_face\",\"extractor\":\"../x\","
		    "\"url\":\"https://a.b/c\"}",
		"{\"kind\":\"pretrain_face\",\"url\":\"https://a.b/c\"}",
		"{\"kind\":\"bfm2009\",\"url\":\"http://a.b/c\"}",
		"{\"kind\":\"bfm2009\",\"url\":\"file:///etc/passwd\"}",
		"{\"kind\":\"bfm2009\"}",
		"{\"kind\":\"bfm2009\",\"upload_id\":\"../../x\"}",
		NULL
	};
	int i;

	tok = itest_token(sub_b, "pods:read pods:write instag:run tasks:read "
	    "tasks:write", 3600);
	itest_envelope(tok, "instag.list_assets", "{}", &r);
	ck_assert_msg(json_object_array_length(itest_jget(r.json,
	    "result.assets")) == 0, "%s", r.body);
	itest_resp_free(&r);
	itest_envelope(tok, "instag.delete_asset", "{\"kind\":\"bfm2009\"}",
	    &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "asset_not_found");
	itest_resp_free(&r);
	op("instag.list_assets", "{}", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.assets")), 10);
	itest_resp_free(&r);

	/* A's upload is not B's to register */
	up = upload("a-only.pth", "weights --label a");
	snprintf(params, sizeof(params), "{\"kind\":\"bfm2009\","
	    "\"upload_id\":\"%s\"}", up);
	itest_envelope(tok, "instag.register_asset", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	ck_assert_ptr_null(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);
	for (i = 0; bad[i]; i++) {
		itest_envelope(tok, "instag.register_asset", bad[i], &r);
		ck_assert_msg(itest_jstr(r.json, "error.code") != NULL &&
		    strcmp(itest_jstr(r.json, "error.code"),
		    "invalid_params") == 0, "%s: %s", bad[i], r.body);
		itest_resp_free(&r);
	}
	/* a private address: refused by the SSRF filter, a failed task */
	register_as(tok, "\"kind\":\"bfm2009\",\"url\":"
	    "\"https://10.0.0.1/bfm.mat\"", "failed", &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "invalid_params");
	itest_resp_free(&r);

	/* A's pod is not B's; the shared static host is refused */
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod_id);
	itest_envelope(tok, "instag.place_assets", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "pod_not_found");
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"host\":\"127.0.0.1:%s\"}",
	    getenv("POD_SSH_PORT"));
	itest_envelope(tok, "instag.place_assets", params, &r);
	ck_assert_msg(itest_jstr(r.json, "error.code") != NULL &&
	    strcmp(itest_jstr(r.json, "error.code"), "host_not_allowed") == 0,
	    "%s", r.body);
	itest_resp_free(&r);

	/* B's own, deleted again; A's are untouched */
	free(up);
	up = itest_upload_media(tok, "b.mat", "bfm");
	snprintf(params, sizeof(params), "\"kind\":\"bfm2009\","
	    "\"upload_id\":\"%s\"", up);
	register_as(tok, params, "completed", &r);
	itest_resp_free(&r);
	itest_envelope(tok, "instag.list_assets", "{}", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.assets")), 1);
	itest_resp_free(&r);
	itest_envelope(tok, "instag.delete_asset", "{\"kind\":\"bfm2009\"}",
	    &r);
	ck_assert_msg(json_object_get_boolean(itest_jget(r.json,
	    "result.deleted")), "%s", r.body);
	itest_resp_free(&r);
	op("instag.list_assets", "{}", &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.assets")), 10);
	itest_resp_free(&r);
	free(up);
	free(tok);
}
END_TEST

START_TEST(test_upload_data)
{
	struct itest_resp r;
	char params[512], *vid, *bad;

	vid = upload("may.mp4", "video --seconds 2.4");
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"video\":\"%s\"}", pod_id, vid);
	run("instag_prepare_data", params, "completed", 60000, &r);
	itest_resp_free(&r);
	POD("cmp '%s/may.mp4' '%s/InsTaG/data/%s/may/may.mp4'",
	    getenv("HARNESS_DIR"), getenv("POD_ROOT"), ua());

	/* 30 fps: refused without convert, converted with it. */
	bad = upload("bob.mp4", "video --fps 30 --seconds 3");
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"bob\",\"video\":\"%s\"}", pod_id, bad);
	run("instag.upload_data", params, "failed", 60000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "input_rejected");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    "frame rate"));
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"bob\",\"video\":\"%s\",\"convert\":true}", pod_id, bad);
	run("instag.upload_data", params, "completed", 60000, &r);
	itest_resp_free(&r);

	/* the video as an A2A file part with inline bytes: "part:0" */
	{
		char cmd[1024], *b64 = NULL, *body;
		size_t cap = 0;
		FILE *fp;

		snprintf(cmd, sizeof(cmd), "base64 -w0 '%s/may.mp4'",
		    getenv("HARNESS_DIR"));
		fp = popen(cmd, "r");
		ck_assert_ptr_nonnull(fp);
		ck_assert(getline(&b64, &cap, fp) > 0);
		pclose(fp);
		body = malloc(strlen(b64) + 1024);
		sprintf(body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
		    "\"message/send\",\"params\":{\"message\":{\"kind\":"
		    "\"message\",\"messageId\":\"fp1\",\"role\":\"user\","
		    "\"parts\":[{\"kind\":\"file\",\"file\":{\"name\":"
		    "\"fp.mp4\",\"mimeType\":\"video/mp4\",\"bytes\":\"%s\"}},"
		    "{\"kind\":\"data\",\"data\":{\"operation\":"
		    "\"instag.upload_data\",\"params\":{\"pod_id\":\"%s\","
		    "\"subject\":\"fp\",\"video\":\"part:0\"}}}]},"
		    "\"configuration\":{\"blocking\":false}}}", b64, pod_id);
		itest_post("/a2a", admin(), body, &r);
		ck_assert_msg(itest_jstr(r.json, "result.id") != NULL, "%s",
		    r.body);
		{
			char *id = strdup(itest_jstr(r.json, "result.id"));
			itest_resp_free(&r);
			ck_assert_str_eq(itest_wait_task(admin(), id, 60000),
			    "completed");
			free(id);
		}
		POD("cmp '%s/may.mp4' '%s/InsTaG/data/%s/fp/fp.mp4'",
		    getenv("HARNESS_DIR"), getenv("POD_ROOT"), ua());
		free(body);
		free(b64);
	}

	/* an https source the pod fetches itself; unreachable here: a clear
	 * failure, nothing left behind */
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"url\",\"video\":\"https://127.0.0.1:1/v.mp4\"}", pod_id);
	run("instag.upload_data", params, "failed", 60000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "transfer_failed");
	itest_resp_free(&r);
	POD("test ! -e '%s/InsTaG/data/%s/url/url.mp4'", getenv("POD_ROOT"),
	    ua());
	free(vid);
	free(bad);
}
END_TEST

/* Real media through the stand-ins: the pod's ffprobe and ffmpeg answer
 * as the real tools do.  The converted 30 fps video is a real 25 fps
 * 512x512 one; a file that is not media is refused with the real
 * ffprobe's error. */
START_TEST(test_upload_real_media)
{
	struct itest_resp r;
	char params[512], *txt;

	POD("test \"$(ffprobe -v error -select_streams v:0 -show_entries "
	    "stream=width,height,avg_frame_rate,nb_frames -of csv=p=0 "
	    "'%s/InsTaG/data/%s/bob/bob.mp4')\" = 512,512,25/1,75",
	    getenv("POD_ROOT"), ua());
	/* make-media weights writes one line of text */
	txt = upload("notes.mp4", "weights");
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"notes\",\"video\":\"%s\",\"convert\":true}", pod_id, txt);
	run("instag.upload_data", params, "failed", 60000, &r);
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "notes.mp4: Invalid data found when processing input") != NULL,
	    "%s", r.body);
	/* The input is wrong, not the pod: the client's error. */
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "input_rejected");
	itest_resp_free(&r);
	free(txt);
}
END_TEST

START_TEST(test_preprocess_train_synthesize_fetch)
{
	struct itest_resp r;
	char params[512], *aud, url[512];

	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\"}", pod_id);
	run("instag.preprocess", params, "completed", 120000, &r);
	itest_resp_free(&r);
	POD("test -s '%s/InsTaG/data/%s/may/au.csv' && ls "
	    "'%s/InsTaG/data/%s/may/teeth_mask/'*.npy >/dev/null",
	    getenv("POD_ROOT"), ua(), getenv("POD_ROOT"), ua());

	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"iterations\":200,\"n_views\":30,\"audio_extractor\":"
	    "\"hubert\",\"output_name\":\"may_hu\"}", pod_id);
	op("instag_run_training", params, &r);
	ck_assert_ptr_nonnull(itest_jstr(r.json, "task_id"));
	{
		char *id = strdup(itest_jstr(r.json, "task_id"));
		itest_resp_free(&r);
		ck_assert_str_eq(itest_wait_task(admin(), id, 120000),
		    "completed");
		get_task(id, &r);
		ck_assert_str_eq(itest_jstr(r.json, "result.result.model_dir"),
		    (snprintf(url, sizeof(url), "output/%s/may_hu", ua()),
		    url));
		itest_resp_free(&r);
		free(id);
	}
	POD("test -s '%s/InsTaG/output/%s/may_hu/chkpnt_fuse_latest.pth'",
	    getenv("POD_ROOT"), ua());

	aud = upload("drive.wav", "audio --seconds 2");
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"output_name\":\"may_hu\",\"audio_extractor\":\"hubert\","
	    "\"audio\":\"%s\"}", pod_id, aud);
	run("instag_run_inference", params, "completed", 120000, &r);
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.result.video"),
	    "talking_head_drive_"));
	itest_resp_free(&r);

	/* the pack job's log runs many reads (256 KiB each) past the job's
	 * end before its last note, the model archive's: an ended job's log
	 * is read to its end */
	ck_assert_int_eq(itest_pod_sh("echo 'noise 4000000 once' > "
	    "'%s/fake-control/tar'", getenv("POD_ROOT")), 0);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"output_name\":\"may_hu\",\"include_model\":true}",
	    pod_id);
	run("instag.fetch_results", params, "completed", 120000, &r);
	ck_assert_int_ge(json_object_array_length(itest_jget(r.json,
	    "result.artifacts")), 2);
	{
		json_object *arts = itest_jget(r.json, "result.artifacts");
		size_t i, models = 0;
		for (i = 0; i < json_object_array_length(arts); i++) {
			const char *nm = itest_jstr(json_object_array_get_idx(
			    arts, i), "name");
			models += nm != NULL && strstr(nm, "-model.tar.gz");
		}
		ck_assert_uint_eq(models, 1);
	}
	ck_assert_int_ne(itest_pod_sh("test -e '%s/fake-control/tar'",
	    getenv("POD_ROOT")), 0);
	snprintf(url, sizeof(url), "%s", strstr(itest_jstr(r.json,
	    "result.artifacts.0.uri"), "/artifacts/"));
	itest_resp_free(&r);
	itest_request("GET", url, admin(), NULL, NULL, 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "may"));
	itest_resp_free(&r);
	/* the steps above reused pooled SSH sessions */
	itest_request("GET", "/metrics", NULL, NULL, NULL, 0, &r);
	{
		const char *m = strstr(r.body,
		    "\ninstag_agent_ssh_sessions_reused_total ");
		ck_assert_ptr_nonnull(m);
		ck_assert_msg(atol(m + strlen(
		    "\ninstag_agent_ssh_sessions_reused_total ")) > 0, "%s",
		    strstr(r.body, "# HELP instag_agent_ssh_sessions"));
	}
	itest_resp_free(&r);
	free(aud);
}
END_TEST

/* Sapiens on a 2-GPU pod: every frame of subject fp gets its depth and
 * normal maps; a Sapiens that skips frames (run.sh still exits 0) fails
 * the preprocess with the count.  The stand-in runs only the jobs whose
 * GPU ids the pod has ($FAKE_INSTAG_CONTROL/gpus). */
START_TEST(test_sapiens_gpus)
{
	const char *root = getenv("POD_ROOT");
	struct itest_resp r;
	char params[256];

	POD("echo 2 >'%s/fake-control/gpus'", root);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"fp\"}", pod_id);
	run("instag.preprocess", params, "completed", 120000, &r);
	itest_resp_free(&r);
	POD("cd '%s/InsTaG' && grep -qxF 'JOBS_PER_GPU=1; TOTAL_GPUS=2; "
	    "VALID_GPU_IDS=(0 1)' data_utils/sapiens/lite/scripts/depth.sh && "
	    "cd data/%s/fp && n=0 && for f in ori_imgs/*.jpg; do "
	    "b=$(basename \"$f\" .jpg); "
	    "test -s sapiens/depth/sapiens_0.3b/$b.npy && "
	    "test -s sapiens/normal/sapiens_0.3b/$b.npy || exit 1; "
	    "n=$((n + 1)); done; test $n = 60", root, ua());

	/* every depth job dies half way: 15 of its 30 frames each */
	POD("echo 'fail_at 50' >'%s/fake-control/vis_depth'", root);
	run("instag.preprocess", params, "failed", 120000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "remote_job_failed");
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "stage sapiens failed") != NULL, "%s", r.body);
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "[agent] Sapiens wrote depth maps for 30 of 60 frames") != NULL,
	    "%s", r.body);
	itest_resp_free(&r);
	POD("rm -f '%s/fake-control/vis_depth' '%s/fake-control/gpus'", root,
	    root);
}
END_TEST

/* A training job survives the agent being killed and a dropped SSH
 * connection, and runs once. */
START_TEST(test_job_survives_kill_and_drop)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char params[512], *id;
	int before = calls_of("train_face");

	POD("echo 'slow 5' > '%s/fake-control/train_face'", getenv("POD_ROOT"));
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"iterations\":2000,\"n_views\":30,\"output_name\":"
	    "\"may_k\"}", pod_id);
	id = start("instag.train", params);
	/* wait until train_face runs */
	for (int i = 0; i < 1200 && calls_of("train_face") == before; i++)
		usleep(50000);	/* a hang guard: 60 s */
	ck_assert_int_eq(calls_of("train_face"), before + 1);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' kill >&2", top,
	    dir), 0);
	ck_assert_int_eq(itest_sh("%s/tests/harness/pod drop '%s/pod' >&2",
	    top, dir), 0);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' start >&2", top,
	    dir), 0);
	POD("rm -f '%s/fake-control/train_face'", getenv("POD_ROOT"));
	ck_assert_str_eq(itest_wait_task(admin(), id, 120000), "completed");
	ck_assert_int_eq(calls_of("train_face"), before + 1);
	get_task(id, &r);
	itest_resp_free(&r);
	free(id);
}
END_TEST

/* ---- a crash between a job's exit and the commit of its outcome ---- */

/* Hold the write lock of the agent's store (BEGIN IMMEDIATE on its SQLite
 * file): every commit of the agent then fails, after its busy timeout,
 * while nothing else changes. */
static sqlite3 *
store_lock(void)
{
	char path[600];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/state/tasks.db",
	    getenv("HARNESS_DIR"));
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 60000);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	return db;
}

static void
store_unlock(sqlite3 *db)
{
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/*
 * Wait until the agent has seen remote job jid end successfully, its
 * store locked: it logs that it could not commit that outcome
 * (checkpoint_failed for the job), or, were it to destroy the evidence
 * before committing, the job's directory on the pod is gone.  Then the
 * agent is in the window between the job's exit and that commit.
 */
static bool
wait_job_seen(const char *jid)
{
	for (int i = 0; i < 1200; i++) {	/* a hang guard: 60 s */
		if (itest_sh("grep -F '\"event\":\"checkpoint_failed\"' "
		    "'%s/agent.log' | grep -qF '\"job\":\"%s\"'",
		    getenv("HARNESS_DIR"), jid) == 0 ||
		    itest_sh("test -d '%s/jobs/%s/%s'", getenv("POD_ROOT"),
		    ua(), jid) != 0)
			return true;
		usleep(50000);
	}
	return false;
}

/* Kill the agent (SIGKILL) with its store locked, unlock, start it. */
static void
crash_and_restart(sqlite3 *db)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");

	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' kill >&2", top,
	    dir), 0);
	store_unlock(db);
	ck_assert_int_eq(itest_sh("%s/tests/harness/agent '%s' start >&2", top,
	    dir), 0);
}

/*
 * The stand-in's tool fake is held (fake-control/<fake> says "hold") in
 * task id's remote job jid, whose start the test awaits (the fake's calls
 * were before).  Lock the store, let the job end, wait until the agent is
 * in the window between the job's exit and the commit of its outcome,
 * check the evidence (the job's directory) is still there, SIGKILL and
 * restart the agent: the task completes, the fake ran exactly once, and
 * the directory is removed after all.
 */
static void
crash_in_commit_window(const char *fake, int before, const char *id,
    const char *jid)
{
	const char *root = getenv("POD_ROOT");
	sqlite3 *db;

	for (int i = 0; i < 1200 && calls_of(fake) == before; i++)
		usleep(50000);	/* a hang guard: 60 s */
	ck_assert_int_eq(calls_of(fake), before + 1);
	ck_assert_int_eq(itest_sh("test -d '%s/jobs/%s/%s'", root, ua(),
	    jid), 0);
	db = store_lock();
	POD("rm -f '%s/fake-control/%s'", root, fake);
	ck_assert_msg(wait_job_seen(jid), "the agent never saw %s end", jid);
	/* the evidence is still there: the outcome is not committed yet */
	ck_assert_msg(itest_sh("test -d '%s/jobs/%s/%s'", root, ua(),
	    jid) == 0, "job %s was removed before its outcome was committed",
	    jid);
	crash_and_restart(db);
	ck_assert_str_eq(itest_wait_task(admin(), id, 120000), "completed");
	ck_assert_int_eq(calls_of(fake), before + 1);
	ck_assert_int_ne(itest_sh("test -e '%s/jobs/%s/%s'", root, ua(),
	    jid), 0);
}

/* The agent is killed while placing assets, its store locked (the
 * steps' outcomes not committed): after the restart the task completes
 * with every asset placed and checked. */
START_TEST(test_place_assets_crash)
{
	const char *root = getenv("POD_ROOT"), *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char params[256], *id;
	size_t i, n;

	POD("cd '%s/InsTaG' && rm -f "
	    "data_utils/face_tracking/3DMM/01_MorphableModel.mat "
	    "data_utils/easyportrait/fpn-fp-512.pth "
	    "output/pretrain_*/chkpnt_ema_*_latest.pth", root);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod_id);
	id = start("instag.place_assets", params);
	crash_and_restart(store_lock());
	ck_assert_str_eq(itest_wait_task(admin(), id, 120000), "completed");
	get_task(id, &r);
	n = json_object_array_length(itest_jget(r.json,
	    "result.result.placed"));
	ck_assert_msg(n == 10, "%s", r.body);
	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(itest_jget(r.json,
		    "result.result.placed"), i);
		/* each once, in the registry's order */
		ck_assert_ptr_nonnull(itest_jstr(p, "sha256"));
		if (i > 0)
			ck_assert_str_ne(itest_jstr(p, "path"), itest_jstr(
			    json_object_array_get_idx(itest_jget(r.json,
			    "result.result.placed"), i - 1), "path"));
	}
	itest_resp_free(&r);
	POD("cd '%s/InsTaG' && cmp '%s/bfm.mat' "
	    "data_utils/face_tracking/3DMM/01_MorphableModel.mat && "
	    "cmp '%s/www/fpn.pth' data_utils/easyportrait/fpn-fp-512.pth && "
	    "for e in deepspeech ave esperanto hubert; do for k in face mouth; "
	    "do cmp '%s/chkpnt.pth' output/pretrain_$e/chkpnt_ema_${k}_latest"
	    ".pth || exit 1; done; done", root, dir, dir, dir);
	free(id);
}
END_TEST

/* The agent dies after a training stage exited 0 and before the commit
 * that records it: after the restart the stage is not run again, and the
 * task completes. */
START_TEST(test_kill_between_job_exit_and_commit)
{
	const char *root = getenv("POD_ROOT");
	char params[512], jid[160], *id;
	int before = calls_of("train_face");

	POD("echo hold > '%s/fake-control/train_face'", root);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"iterations\":200,\"n_views\":30,\"output_name\":"
	    "\"may_w\"}", pod_id);
	id = start("instag.train", params);
	/* plan: features (0), face (1), mouth, fuse */
	snprintf(jid, sizeof(jid), "%s-1-face", id);
	crash_in_commit_window("train_face", before, id, jid);
	POD("test -s '%s/InsTaG/output/%s/may_w/chkpnt_fuse_latest.pth'",
	    root, ua());
	free(id);
}
END_TEST

/* The same for an https source the pod fetches: the agent dies after the
 * download exited 0 and before the commit; the pod does not fetch it
 * again. */
START_TEST(test_kill_between_fetch_exit_and_commit)
{
	const char *root = getenv("POD_ROOT"), *dir = getenv("HARNESS_DIR");
	char params[512], jid[160], *id;
	int before = calls_of("curl");

	ck_assert_int_eq(itest_sh("'%s/tests/fake-instag/make-media' video "
	    "--seconds 2.4 '%s/www/k.mp4'", getenv("top_srcdir"), dir), 0);
	POD("echo hold > '%s/fake-control/curl'", root);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"kurl\",\"video\":\"%s/www/k.mp4\"}", pod_id,
	    getenv("NGINX_ROOT_URL"));
	id = start("instag.upload_data", params);
	snprintf(jid, sizeof(jid), "%s-0-fetch", id);
	crash_in_commit_window("curl", before, id, jid);
	POD("cmp '%s/www/k.mp4' '%s/InsTaG/data/%s/kurl/kurl.mp4'", dir,
	    root, ua());
	free(id);
}
END_TEST

/* instag.logs {task_id, offset, limit} as token: the reply in *r. */
static void
logs_as(const char *token, const char *id, long long off, long lim,
    struct itest_resp *r)
{
	char params[256];

	snprintf(params, sizeof(params), "{\"task_id\":\"%s\",\"offset\":%lld,"
	    "\"limit\":%ld}", id, off, lim);
	itest_envelope(token, "instag.logs", params, r);
}

/*
 * instag.logs reads a held job's log by offset, whole lines, secrets
 * redacted; the task keeps the last lines in progress.log_tail; another
 * user's token gets task_not_found; a failed job's log (the fake's own
 * output) stays readable to its end.
 */
START_TEST(test_logs)
{
	const char *root = getenv("POD_ROOT"), *key = getenv("RUNPOD_API_KEY");
	struct itest_resp r;
	char params[512], jid[160], log[1024], *id, *tok;
	const char *text, *tail = NULL;
	long long next;
	int before = calls_of("train_face"), i;

	ck_assert_ptr_nonnull(key);
	POD("echo hold > '%s/fake-control/train_face'", root);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"iterations\":200,\"n_views\":30,\"output_name\":"
	    "\"may_l\"}", pod_id);
	id = start("instag.train", params);
	for (i = 0; i < 1200 && calls_of("train_face") == before; i++)
		usleep(50000);	/* a hang guard: 60 s */
	ck_assert_int_eq(calls_of("train_face"), before + 1);
	snprintf(jid, sizeof(jid), "%s-1-face", id);
	snprintf(log, sizeof(log), "%s/jobs/%s/%s/log", root, ua(), jid);
	/* lines as a job might print them, with secrets in them */
	POD("printf 'Training progress: first\\nkey=%s auth: Bearer "
	    "abc.DEF-123\\nhalf' >> '%s'", key, log);

	/* the agent records the job's start in the step that started it:
	 * until that is committed, the log is not the task's yet */
	logs_as(admin(), id, 0, 65536, &r);
	for (i = 0; i < 300 && itest_jstr(r.json, "result.text") == NULL;
	    i++) {
		itest_resp_free(&r);
		usleep(100000);	/* a hang guard: 30 s */
		logs_as(admin(), id, 0, 65536, &r);
	}
	ck_assert_msg(itest_jstr(r.json, "result.text") != NULL, "%s", r.body);
	ck_assert_str_eq(itest_jstr(r.json, "result.job"), jid);
	text = itest_jstr(r.json, "result.text");
	ck_assert_ptr_nonnull(strstr(text, "Training progress: first\n"));
	ck_assert_ptr_null(strstr(text, key));
	ck_assert_ptr_null(strstr(text, "abc.DEF-123"));
	ck_assert_ptr_nonnull(strstr(text, "key=[redacted] auth: Bearer "
	    "[redacted]"));
	ck_assert_ptr_null(strstr(r.body, key));
	next = (long long)json_object_get_int64(itest_jget(r.json,
	    "result.next_offset"));
	ck_assert_int_gt(next, 0);
	ck_assert(!json_object_get_boolean(itest_jget(r.json, "result.eof")));
	itest_resp_free(&r);

	/* on from next_offset: the rest, and what came since */
	POD("printf ' line\\nTraining progress: second\\n' >> '%s'", log);
	logs_as(admin(), id, next, 65536, &r);
	text = itest_jstr(r.json, "result.text");
	ck_assert_msg(text != NULL, "%s", r.body);
	ck_assert_ptr_nonnull(strstr(text, "Training progress: second"));
	ck_assert_ptr_null(strstr(text, "first"));
	ck_assert_int_gt(json_object_get_int64(itest_jget(r.json,
	    "result.next_offset")), next);
	ck_assert_int_eq(json_object_get_int64(itest_jget(r.json,
	    "result.next_offset")), json_object_get_int64(itest_jget(r.json,
	    "result.size")));
	itest_resp_free(&r);

	/* the stored task keeps the last lines, redacted too */
	for (i = 0; i < 600 && tail == NULL; i++) {
		json_object *a;
		get_task(id, &r);
		a = itest_jget(r.json, "result.progress.log_tail");
		if (a != NULL && strstr(json_object_to_json_string(a),
		    "Training progress: second") != NULL) {
			ck_assert_ptr_null(strstr(r.body, key));
			ck_assert_ptr_null(strstr(r.body, "abc.DEF-123"));
			tail = "seen";
		}
		itest_resp_free(&r);
		if (tail == NULL)
			usleep(100000);	/* a hang guard: 60 s */
	}
	ck_assert_msg(tail != NULL, "progress.log_tail never had the lines");

	/* someone else's task is not there */
	tok = itest_token("logs b|z@example.org", "instag:run tasks:read",
	    3600);
	logs_as(tok, id, 0, 100, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "task_not_found");
	itest_resp_free(&r);
	free(tok);
	logs_as(admin(), id, -1, 100, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);

	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	op("tasks.cancel", params, &r);
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 30000), "canceled");
	POD("rm -f '%s/fake-control/train_face'", root);
	free(id);

	/* a job that failed half way: the fake's own output, to its end */
	POD("echo 'fail_at 50' > '%s/fake-control/train_face'", root);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"iterations\":200,\"n_views\":30,\"output_name\":"
	    "\"may_l2\"}", pod_id);
	id = start("instag.train", params);
	ck_assert_str_eq(itest_wait_task(admin(), id, 60000), "failed");
	POD("rm -f '%s/fake-control/train_face'", root);
	logs_as(admin(), id, 0, 1048576, &r);
	text = itest_jstr(r.json, "result.text");
	ck_assert_msg(text != NULL && strstr(text, "Training progress"),
	    "%s", r.body);
	ck_assert(json_object_get_boolean(itest_jget(r.json, "result.eof")));
	itest_resp_free(&r);
	free(id);
}
END_TEST

START_TEST(test_cancel_and_failures)
{
	struct itest_resp r;
	char params[512], *id;

	/* cancel a hanging job: canceled, its processes gone */
	POD("echo hang > '%s/fake-control/train_face'", getenv("POD_ROOT"));
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"output_name\":\"may_c\"}", pod_id);
	id = start("instag.train", params);
	for (int i = 0; i < 1200 &&
	    itest_pod_pgrep("train_fac[e].py.*may_c") != 0; i++)
		usleep(50000);	/* a hang guard: 60 s */
	snprintf(params, sizeof(params), "{\"task_id\":\"%s\"}", id);
	op("tasks.cancel", params, &r);
	itest_resp_free(&r);
	ck_assert_str_eq(itest_wait_task(admin(), id, 30000), "canceled");
	for (int i = 0; i < 600 &&
	    itest_pod_pgrep("train_fac[e].py.*may_c") == 0; i++)
		usleep(50000);	/* a hang guard: 30 s */
	ck_assert_int_eq(itest_pod_pgrep("train_fac[e].py.*may_c"), 1);
	free(id);

	/* a failing stage: the task fails with the log's tail */
	POD("echo fail > '%s/fake-control/train_face'", getenv("POD_ROOT"));
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"output_name\":\"may_f\"}", pod_id);
	run("instag.train", params, "failed", 60000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "remote_job_failed");
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json, "result.error.message"),
	    "stage face failed"));
	itest_resp_free(&r);
	POD("rm -f '%s/fake-control/train_face'", getenv("POD_ROOT"));
}
END_TEST

START_TEST(test_hostile_params)
{
	static const char *const bad[] = {
		"\"subject\":\"$(touch /tmp/ia-pwned)\"",
		"\"subject\":\"`id`\"",
		"\"subject\":\"a;b\"",
		"\"subject\":\"../etc\"",
		"\"subject\":\"-rf\"",
		"\"subject\":\"a\\nb\"",
		"\"subject\":\"may\",\"output_name\":\"x'y\"",
		"\"subject\":\"may\",\"output_name\":\"a b\"",
		"\"subject\":\"may\",\"gpu_id\":\"0; reboot\"",
		NULL
	};
	struct itest_resp r;
	char params[512];
	int i;

	for (i = 0; bad[i]; i++) {
		snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",%s}",
		    pod_id, bad[i]);
		op("instag.preprocess", params, &r);
		ck_assert_msg(itest_jstr(r.json, "error.code") &&
		    strcmp(itest_jstr(r.json, "error.code"), "invalid_params")
		    == 0, "%s: %s", bad[i], r.body);
		itest_resp_free(&r);
	}
	/* hosts outside ssh_hosts, someone else's upload, a bad URL */
	op("instag.setup_environment", "{\"host\":\"10.0.0.1\"}", &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "host_not_allowed");
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"video\":\"00000000-0000-4000-8000-000000000000\"}",
	    pod_id);
	op("instag.upload_data", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"video\":\"https://x.example/a b\"}", pod_id);
	op("instag.upload_data", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "invalid_params");
	itest_resp_free(&r);
	ck_assert_int_ne(access("/tmp/ia-pwned", F_OK), 0);
}
END_TEST

/* The static host of the ssh provider works like a pod. */
START_TEST(test_static_host)
{
	struct itest_resp r;
	char params[256];

	snprintf(params, sizeof(params), "{\"host\":\"127.0.0.1:%s\"}",
	    getenv("POD_SSH_PORT"));
	run("instag.setup_environment", params, "completed", 60000, &r);
	itest_resp_free(&r);
}
END_TEST

/* Restart the agent; with owners set, ssh_host_owners is owners for this
 * run (INSTAG_AGENT_SSH_HOST_OWNERS), else as in agent.conf. */
static void
restart_agent(const char *owners)
{
	ck_assert_int_eq(itest_sh("%s%s%s'%s/tests/harness/agent' '%s' "
	    "restart >&2", owners ? "INSTAG_AGENT_SSH_HOST_OWNERS='" : "",
	    owners ? owners : "", owners ? "' " : "", getenv("top_srcdir"),
	    getenv("HARNESS_DIR")), 0);
}

/*
 * Two users, one machine (the static host, and the pods, all the same
 * sshd and $POD_ROOT), the same subject name "may": each sees only its
 * own files.  The second user's upload lands in its own directory and
 * leaves the first's alone; it cannot fetch the first's rendered video
 * (input_rejected, "no rendered video"), neither through the static host
 * nor through a pod of its own, while the first still can; its jobs are
 * in its own directory.  A host kept for the first (ssh_host_owners)
 * refuses the second with host_not_allowed before any task is made.
 */
START_TEST(test_tenants)
{
	static const char sub_b[] = "tenant b|x@example.org";
	const char *root = getenv("POD_ROOT"), *dir = getenv("HARNESS_DIR");
	struct itest_resp r;
	char host[128], params[512], ub[64], pod_b[64], *tok, *vid, *id;

	tok = itest_token(sub_b, "pods:read pods:write instag:run tasks:read "
	    "tasks:write", 3600);
	udir_of(sub_b, ub, sizeof(ub));
	ck_assert_str_ne(ub, ua());
	snprintf(host, sizeof(host), "127.0.0.1:%s", getenv("POD_SSH_PORT"));

	/* the same subject on the static host: in B's own directory */
	vid = itest_upload_media(tok, "may_b.mp4", "video --seconds 3");
	snprintf(params, sizeof(params), "{\"host\":\"%s\",\"subject\":"
	    "\"may\",\"video\":\"%s\"}", host, vid);
	free(run_as(tok, "instag.upload_data", params, "completed", 60000,
	    &r));
	ck_assert_ptr_nonnull(strstr(itest_jstr(r.json,
	    "result.result.data_dir"), ub));
	itest_resp_free(&r);
	POD("cmp '%s/may_b.mp4' '%s/InsTaG/data/%s/may/may.mp4'", dir, root,
	    ub);
	POD("cmp '%s/may.mp4' '%s/InsTaG/data/%s/may/may.mp4'", dir, root,
	    ua());
	POD("! cmp -s '%s/InsTaG/data/%s/may/may.mp4' "
	    "'%s/InsTaG/data/%s/may/may.mp4'", root, ub, root, ua());
	/* nothing of either at the shared places */
	POD("test ! -e '%s/InsTaG/data/may' && test ! -e "
	    "'%s/InsTaG/output/may_hu'", root, root);

	/* B cannot fetch A's video through the static host */
	snprintf(params, sizeof(params), "{\"host\":\"%s\",\"subject\":"
	    "\"may\",\"output_name\":\"may_hu\"}", host);
	id = run_as(tok, "instag.fetch_results", params, "failed", 60000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "input_rejected");
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "no rendered video") != NULL, "%s", r.body);
	ck_assert_ptr_null(itest_jget(r.json, "result.artifacts.0"));
	itest_resp_free(&r);
	/* its failed job is kept, in B's job directory only */
	ck_assert_int_eq(itest_sh("test -d '%s/jobs/%s/%s-0-pack'", root, ub,
	    id), 0);
	ck_assert_int_ne(itest_sh("test -e '%s/jobs/%s/%s-0-pack'", root,
	    ua(), id), 0);
	free(id);
	/* A still can, through the same host */
	run("instag.fetch_results", params, "completed", 60000, &r);
	ck_assert_int_ge(json_object_array_length(itest_jget(r.json,
	    "result.artifacts")), 1);
	itest_resp_free(&r);

	/* B's pod (the same machine): A's pod is not B's, and through B's
	 * own pod A's video is not there either */
	free(run_as(tok, "runpod.provision_pod", "{\"gpu_type_ids\":"
	    "[\"NVIDIA GeForce RTX 4090\"]}", "completed", 30000, &r));
	snprintf(pod_b, sizeof(pod_b), "%s",
	    itest_jstr(r.json, "result.result.pod_id"));
	itest_resp_free(&r);
	ck_assert_str_ne(pod_b, pod_id);
	/* B registered nothing: placing on B's pod places nothing */
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod_b);
	free(run_as(tok, "instag.place_assets", params, "completed", 60000,
	    &r));
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.placed")), 0);
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"output_name\":\"may_hu\"}", pod_id);
	itest_envelope(tok, "instag.fetch_results", params, &r);
	ck_assert_str_eq(itest_jstr(r.json, "error.code"), "pod_not_found");
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\",\"subject\":"
	    "\"may\",\"output_name\":\"may_hu\"}", pod_b);
	free(run_as(tok, "instag.fetch_results", params, "failed", 60000,
	    &r));
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "input_rejected");
	ck_assert_msg(strstr(itest_jstr(r.json, "result.error.message"),
	    "no rendered video") != NULL, "%s", r.body);
	itest_resp_free(&r);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod_b);
	free(run_as(tok, "runpod.terminate_pod", params, "completed", 30000,
	    &r));
	itest_resp_free(&r);

	/* the host kept for A: B is refused before any task, A is not */
	{
		char owners[160];

		snprintf(owners, sizeof(owners), "127.0.0.1=admin");
		restart_agent(owners);
	}
	snprintf(params, sizeof(params), "{\"host\":\"%s\"}", host);
	itest_envelope(tok, "instag.setup_environment", params, &r);
	ck_assert_msg(itest_jstr(r.json, "error.code") != NULL &&
	    strcmp(itest_jstr(r.json, "error.code"), "host_not_allowed") == 0,
	    "%s", r.body);
	ck_assert_ptr_null(itest_jstr(r.json, "task_id"));
	itest_resp_free(&r);
	run("instag.setup_environment", params, "completed", 60000, &r);
	itest_resp_free(&r);
	/* a host kept for A: A may place its assets there (they are there
	 * already: nothing is sent) */
	run("instag.place_assets", params, "completed", 60000, &r);
	ck_assert_int_eq(json_object_array_length(itest_jget(r.json,
	    "result.result.placed")), 10);
	ck_assert(json_object_get_boolean(itest_jget(r.json,
	    "result.result.placed.0.skipped")));
	itest_resp_free(&r);
	restart_agent(NULL);
	free(run_as(tok, "instag.setup_environment", params, "completed",
	    60000, &r));
	itest_resp_free(&r);
	free(vid);
	free(tok);
}
END_TEST

/* Last: the pod's host key changes; the next operation refuses it. */
START_TEST(test_host_key_changed)
{
	struct itest_resp r;
	char params[256];

	/* new key, and the pooled connection dropped: the agent must
	 * connect again and meet the new key */
	ck_assert_int_eq(itest_sh("%s/tests/harness/pod drop '%s/pod' >&2 && "
	    "%s/tests/harness/pod rekey '%s/pod' >/dev/null",
	    getenv("top_srcdir"), getenv("HARNESS_DIR"), getenv("top_srcdir"),
	    getenv("HARNESS_DIR")), 0);
	snprintf(params, sizeof(params), "{\"pod_id\":\"%s\"}", pod_id);
	run("instag.setup_environment", params, "failed", 60000, &r);
	ck_assert_str_eq(itest_jstr(r.json, "result.error.code"),
	    "host_key_changed");
	itest_resp_free(&r);
}
END_TEST

static Suite *
instag_integration_suite(void)
{
	Suite *s = suite_create("instag-integration");
	TCase *tc = tcase_create("instag");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_provision_and_setup);
	tcase_add_test(tc, test_assets_owners);
	tcase_add_test(tc, test_place_assets_crash);
	tcase_add_test(tc, test_upload_data);
	tcase_add_test(tc, test_upload_real_media);
	tcase_add_test(tc, test_preprocess_train_synthesize_fetch);
	tcase_add_test(tc, test_sapiens_gpus);
	tcase_add_test(tc, test_job_survives_kill_and_drop);
	tcase_add_test(tc, test_kill_between_job_exit_and_commit);
	tcase_add_test(tc, test_kill_between_fetch_exit_and_commit);
	tcase_add_test(tc, test_logs);
	tcase_add_test(tc, test_cancel_and_failures);
	tcase_add_test(tc, test_hostile_params);
	tcase_add_test(tc, test_static_host);
	tcase_add_test(tc, test_tenants);
	tcase_add_test(tc, test_host_key_changed);
	suite_add_tcase(s, tc);
	return s;
}

/* In order, in one process: the tests share the pod. */
TU_MAIN(.suites = { instag_integration_suite }, .setup = itest_harness_up,
    .teardown = itest_harness_down, .nofork = true)
