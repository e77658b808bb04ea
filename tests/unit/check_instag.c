/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of InsTaG's command lines and progress parsing.  The stage
 * scripts are run, here with bash, against the fake InsTaG tree
 * (tests/fake-instag), whose scripts take exactly InsTaG's flags: a wrong
 * flag or a missing input fails the test.
 */
#include "auto-config.h"

#include <check.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "instag/instag.h"
#include "lib/strbuf.h"
#include "testutil.h"
#include "lib/xalloc.h"

/* Run a shell command made with printf(3); its exit status. */
static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	int rc;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	rc = system(cmd);
	free(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* ---- quoting ------------------------------------------------------------ */

START_TEST(test_quote)
{
	static const char *const hostile[] = {
		"plain", "", "it's", "$(touch /tmp/ia-pwned)", "`id`",
		"a;b && c | d", "\"double\"", "new\nline", "back\\slash",
		"'; rm -rf / #", "--flag", "*", "~root", NULL
	};
	char dir[256], *path, *out;
	int i;

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	path = xasprintf("%s/out", dir);
	for (i = 0; hostile[i]; i++) {
		struct strbuf sb = SB_INIT;
		sb_adds(&sb, "printf %s ");
		sb_add_shquote(&sb, hostile[i]);
		sb_addf(&sb, " > '%s'", path);
		{
			/* run the quoted line through bash, via a file */
			char *f = xasprintf("%s/cmd.sh", dir);
			FILE *fp = fopen(f, "w");
			fputs(sb_str(&sb), fp);
			fclose(fp);
			ck_assert_int_eq(sh("bash '%s'", f), 0);
			free(f);
		}
		out = tu_read_file(path);
		ck_assert_msg(strcmp(out, hostile[i]) == 0, "%s -> %s",
		    hostile[i], out);
		free(out);
		sb_free(&sb);
	}
	ck_assert_int_ne(access("/tmp/ia-pwned", F_OK), 0);
	free(path);
}
END_TEST

/* ---- progress ----------------------------------------------------------- */

START_TEST(test_progress)
{
	static const char log[] =
	    "Optimizing output/may\n"
	    "[INFO] ===== extract audio from a to b =====\n"
	    "Training progress:   0%|          | 0/10000 [00:00<?, ?it/s]\r"
	    "Training progress:  40%|####      | 4000/10000 [00:04<00:06, "
	    "1000.00it/s, Loss=0.01234, Mouth=1.2-3.4]\r"
	    "\n[ITER 5000] Saving Checkpoint [15/07 16:52:52]\n"
	    "Training progress:  50%|#####     | 5000/10000 [00:05<00:05, "
	    "1000.00it/s, Loss=0.01100, Mouth=1.2-3.4]\r"
	    "\x00\xff garbage %| no bar\r";
	static const char plain[] = " 75%|#######5  | 3/4 [00:01<00:00]\r";
	struct instag_progress p;

	instag_parse_progress(log, sizeof(log) - 1, &p);
	ck_assert_int_eq(p.percent, 50);
	ck_assert_int_eq(p.cur, 5000);
	ck_assert_int_eq(p.total, 10000);
	ck_assert_int_eq(p.iter, 5000);
	ck_assert_str_eq(p.label, "Training progress");
	ck_assert_str_eq(p.info, "extract audio from a to b");
	instag_parse_progress(plain, sizeof(plain) - 1, &p);
	ck_assert_int_eq(p.percent, 75);
	ck_assert_int_eq(p.cur, 3);
	ck_assert_str_eq(p.label, "");
	ck_assert_int_eq(p.iter, -1);
	instag_parse_progress("", 0, &p);
	ck_assert_int_eq(p.percent, -1);
	instag_parse_progress("100%|", 5, &p);	/* cut off */
	ck_assert_int_eq(p.percent, -1);
	{
		/* a log that ends inside "[ITER n": the scan stays within
		 * len bytes (no NUL after them; ASan sees an over-read) */
		static const char *const cut[] = {
			"x [ITER 12", "[ITER 7", "[ITER x", "[ITER 99999999"
			"99999999999999999999]"
		};
		static const long long want[] = { 12, 7, -1,
			9999999999999LL };
		size_t i;

		for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
			size_t n = strlen(cut[i]);
			char *b = malloc(n);

			memcpy(b, cut[i], n);
			instag_parse_progress(b, n, &p);
			ck_assert_int_eq(p.iter, want[i]);
			free(b);
		}
	}
}
END_TEST

/* ---- the stages against the fake tree ----------------------------------- */

static char pod[256], repo[300];

/* Install the fake InsTaG into a pod root and check it out, with the
 * assets a set-up pod has (what instag.setup_environment will do). */
static void
fake_pod(void)
{
	const char *top = getenv("top_srcdir");
	const char *fi;

	ck_assert_ptr_nonnull(top);
	tu_subdir_make(tu_topdir(), pod, sizeof(pod));
	snprintf(repo, sizeof(repo), "%s/InsTaG", pod);
	fi = xasprintf("%s/tests/fake-instag", top);
	ck_assert_int_eq(sh("'%s/install' '%s' >/dev/null", fi, pod), 0);
	ck_assert_int_eq(sh("git clone -q '%s/instag-src.git' '%s'", pod,
	    repo), 0);
	ck_assert_int_eq(sh("cd '%s' && . '%s/env.sh' && "
	    "conda env create --file environment.yml >/dev/null && "
	    "conda create -n sapiens_lite python=3.10 -y >/dev/null && "
	    "bash scripts/prepare.sh >/dev/null 2>&1 && "
	    "bash scripts/prepare_sapiens.sh >/dev/null 2>&1 && "
	    "'%s/make-media' bfm "
	    "data_utils/face_tracking/3DMM/01_MorphableModel.mat && "
	    "(cd data_utils/face_tracking && "
	    "python convert_BFM.py >/dev/null) && "
	    "'%s/make-media' weights data_utils/easyportrait/fpn-fp-512.pth && "
	    "for e in deepspeech ave esperanto hubert; do "
	    "mkdir -p output/pretrain_$e && "
	    "'%s/make-media' weights "
	    "output/pretrain_$e/chkpnt_ema_face_latest.pth && "
	    "'%s/make-media' weights "
	    "output/pretrain_$e/chkpnt_ema_mouth_latest.pth; done && "
	    "mkdir -p data/u-test/may && "
	    "'%s/make-media' video data/u-test/may/may.mp4 --seconds 2.4 && "
	    "'%s/make-media' audio data/u-test/drive.wav --seconds 2",
	    repo, pod, fi, fi, fi, fi, fi, fi), 0);
	free((char *)fi);
}

/* Run every stage of operation with a; 0 when all succeed. */
static int
run_stages(const char *operation, const struct instag_args *a)
{
	const char *const *st = instag_stages(operation);
	const char *err = NULL;
	char *script, *path;
	int i, rc = 0;

	ck_assert_ptr_nonnull(st);
	for (i = 0; st[i] && rc == 0; i++) {
		script = instag_stage_script(operation, st[i], a, &err);
		ck_assert_msg(script != NULL, "%s/%s: %s", operation, st[i],
		    err);
		path = xasprintf("%s/%s-%s.sh", pod, operation, st[i]);
		{
			FILE *fp = fopen(path, "w");
			fputs(script, fp);
			fclose(fp);
		}
		rc = sh("bash '%s' >'%s.log' 2>&1 || { cat '%s.log' >&2; "
		    "exit 1; }", path, path, path);
		ck_assert_msg(rc == 0, "%s/%s failed (log above)", operation,
		    st[i]);
		free(script);
		free(path);
	}
	return rc;
}

START_TEST(test_stages_on_fake_tree)
{
	static const char *const extractors[] = { "deepspeech", "ave",
	    "esperanto", "hubert", NULL };
	struct instag_args a = { 0 };
	char *env, *out;
	int i;

	fake_pod();
	env = xasprintf("%s/env.sh", pod);
	a.repo_dir = repo;
	a.subject = "may";
	a.owner_dir = "u-test";
	a.env_init = env;
	a.gpu_id = 0;
	a.iterations = 100;
	a.n_views = 30;
	ck_assert_int_eq(run_stages("instag.preprocess", &a), 0);
	for (i = 0; extractors[i]; i++) {
		char name[64];
		snprintf(name, sizeof(name), "may_%s", extractors[i]);
		a.extractor = extractors[i];
		a.output_name = name;
		a.audio_name = "drive";
		ck_assert_int_eq(run_stages("instag.train", &a), 0);
		ck_assert_int_eq(run_stages("instag.synthesize", &a), 0);
		{
			char *f = xasprintf(
			    "%s/output/u-test/%s/talking_head_drive.mp4", repo,
			    name);
			out = tu_read_file(f);
			ck_assert_ptr_nonnull(out);
			/* the muxed video names the driving audio */
			free(out);
			free(f);
		}
	}
	free(env);
}
END_TEST

/* The owner's directory: u- and 32 hex digits of SHA-256(sub), whatever
 * the sub holds; different subs, different directories. */
START_TEST(test_owner_dir)
{
	char a[INSTAG_OWNER_DIR_LEN], b[INSTAG_OWNER_DIR_LEN];
	size_t i;

	instag_owner_dir("admin", a);
	/* sha256("admin") = 8c6976e5b5410415bde908bd4dee15df b167... */
	ck_assert_str_eq(a, "u-8c6976e5b5410415bde908bd4dee15df");
	instag_owner_dir("../../x'; rm -rf / #\n$(id)", b);
	ck_assert_uint_eq(strlen(b), 34);
	ck_assert(strncmp(b, "u-", 2) == 0);
	for (i = 2; b[i]; i++)
		ck_assert(strchr("0123456789abcdef", b[i]) != NULL);
	ck_assert_str_ne(a, b);
	instag_owner_dir("Admin", b);
	ck_assert_str_ne(a, b);
	instag_owner_dir("", b);
	ck_assert_str_eq(b, "u-e3b0c44298fc1c149afbf4c8996fb924");
}
END_TEST

START_TEST(test_stage_errors)
{
	struct instag_args a = { 0 };
	const char *err = NULL;

	a.repo_dir = "relative/dir";
	a.subject = "may";
	a.owner_dir = "u-test";
	ck_assert_ptr_null(instag_stage_script("instag.train", "face", &a,
	    &err));
	a.repo_dir = "/w/InsTaG";
	ck_assert_ptr_null(instag_stage_script("instag.train", "nope", &a,
	    &err));
	ck_assert_ptr_null(instag_stage_script("instag.synthesize", "render",
	    &a, &err));	/* no audio */
	ck_assert_ptr_null(instag_stages("instag.fetch_results"));
	a.owner_dir = NULL;	/* every stage works in the owner's dirs */
	ck_assert_ptr_null(instag_stage_script("instag.train", "face", &a,
	    &err));
	a.owner_dir = "u-test";
	{
		char *s = instag_stage_script("instag.train", "face", &a, &err);
		ck_assert_ptr_nonnull(strstr(s, "--iterations 10000 "));
		ck_assert_ptr_nonnull(strstr(s, "N=250\n"));
		ck_assert_ptr_nonnull(strstr(s, "E='deepspeech'\n"));
		free(s);
	}
}
END_TEST

/* ---- Sapiens' GPUs ------------------------------------------------------ */

/* Run the awk program prog with g and ids on text; its output in out
 * (caller frees), its exit status returned. */
static int
run_awk(const char *prog, const char *g, const char *ids, const char *text,
    char **out)
{
	char dir[256], *pf, *tf, *of;
	FILE *fp;
	int rc;

	tu_subdir_make(tu_topdir(), dir, sizeof(dir));
	pf = xasprintf("%s/prog.awk", dir);
	tf = xasprintf("%s/in.sh", dir);
	of = xasprintf("%s/out.sh", dir);
	ck_assert_ptr_nonnull(fp = fopen(pf, "w"));
	fputs(prog, fp);
	fclose(fp);
	ck_assert_ptr_nonnull(fp = fopen(tf, "w"));
	fputs(text, fp);
	fclose(fp);
	rc = sh("awk -v g='%s' -v ids='%s' -f '%s' '%s' >'%s'", g, ids, pf,
	    tf, of);
	*out = tu_read_file(of);
	free(pf);
	free(tf);
	free(of);
	return rc;
}

/* The sapiens stage sets upstream's one GPU line (and lines of their own)
 * to the pod's GPUs with a fixed, single-quoted awk program, and checks
 * every frame's maps; setup no longer edits the scripts. */
START_TEST(test_sapiens_script)
{
	static const char upstream[] =
	    "# JOBS_PER_GPU=1; TOTAL_GPUS=8; VALID_GPU_IDS=(0 1 2 3 4 5 6 7)\n"
	    "JOBS_PER_GPU=1; TOTAL_GPUS=4; VALID_GPU_IDS=(0 1 2 3)\n"
	    "BATCH_SIZE=8\n"
	    "for ((i=0; i<TOTAL_JOBS; i++)); do\n"
	    "  GPU_ID=$((i % TOTAL_GPUS))\n";
	static const char upstream2[] =
	    "# JOBS_PER_GPU=1; TOTAL_GPUS=8; VALID_GPU_IDS=(0 1 2 3 4 5 6 7)\n"
	    "JOBS_PER_GPU=1; TOTAL_GPUS=2; VALID_GPU_IDS=(0 1)\n"
	    "BATCH_SIZE=8\n"
	    "for ((i=0; i<TOTAL_JOBS; i++)); do\n"
	    "  GPU_ID=$((i % TOTAL_GPUS))\n";
	struct instag_args a = { 0 };
	const char *err = NULL, *p, *q;
	char *s, *prog, *out;

	a.repo_dir = "/w/InsTaG";
	a.subject = "may";
	a.owner_dir = "u-test";
	s = instag_stage_script("instag.preprocess", "sapiens", &a, &err);
	ck_assert_ptr_nonnull(s);
	/* the program is a quoted constant; the count goes in as awk -v */
	ck_assert_ptr_nonnull(p = strstr(s, "\nSET_GPUS='"));
	p += strlen("\nSET_GPUS='");
	ck_assert_ptr_nonnull(q = strchr(p, '\''));
	prog = xstrndup(p, (size_t)(q - p));
	ck_assert_ptr_nonnull(strstr(s, "G=$(nvidia-smi -L 2>/dev/null | "
	    "grep -c '^GPU ' || true)\n"));
	ck_assert_ptr_nonnull(strstr(s, "awk -v g=\"$G\" -v ids=\"$ids\" "
	    "\"$SET_GPUS\" \"$s\""));
	ck_assert_ptr_nonnull(strstr(s, "for s in \"$SG/depth.sh\" "
	    "\"$SG/normal.sh\"; do"));
	ck_assert_ptr_nonnull(strstr(s, "[agent] Sapiens wrote $k maps for "
	    "$got of $m frames"));
	ck_assert_ptr_nonnull(strstr(s, "ls \"$D/ori_imgs\""));
	free(s);

	/* upstream's one line; the comment and the uses are left alone */
	ck_assert_int_eq(run_awk(prog, "2", "0 1", upstream, &out), 0);
	ck_assert_str_eq(out, upstream2);
	free(out);
	/* again: the same */
	ck_assert_int_eq(run_awk(prog, "2", "0 1", upstream2, &out), 0);
	ck_assert_str_eq(out, upstream2);
	free(out);
	/* lines of their own, indented, spaces around ';' */
	ck_assert_int_eq(run_awk(prog, "1", "0", "JOBS_PER_GPU=1\n"
	    "  TOTAL_GPUS=4\nVALID_GPU_IDS=(0 1 2 3)\n"
	    "A=1 ; TOTAL_GPUS=8 ;B=2\n", &out), 0);
	ck_assert_str_eq(out, "JOBS_PER_GPU=1\n  TOTAL_GPUS=1\n"
	    "VALID_GPU_IDS=(0)\nA=1 ; TOTAL_GPUS=1 ;B=2\n");
	free(out);
	/* nothing to set (only a comment, or another form): exit 1 */
	ck_assert_int_ne(run_awk(prog, "1", "0",
	    "# JOBS_PER_GPU=1; TOTAL_GPUS=4; VALID_GPU_IDS=(0 1 2 3)\n",
	    &out), 0);
	free(out);
	ck_assert_int_ne(run_awk(prog, "1", "0",
	    "TOTAL_GPUS=$(nvidia-smi -L | wc -l)\nVALID_GPU_IDS=(0)\n",
	    &out), 0);
	free(out);
	free(prog);

	/* setup leaves the GPUs to the stage, and restores the scripts */
	s = instag_setup_script("/w", "https://example.invalid/InsTaG.git",
	    "0123456789abcdef0123456789abcdef01234567", NULL);
	ck_assert_ptr_null(strstr(s, "TOTAL_GPUS"));
	ck_assert_ptr_nonnull(strstr(s, "git checkout -q -- "
	    "data_utils/sapiens/lite/scripts/depth.sh "
	    "data_utils/sapiens/lite/scripts/normal.sh"));
	free(s);
}
END_TEST

/* Run one stage; its exit status, its log in <pod>/<operation>-<stage>.log
 * (*log, caller frees). */
static int
run_stage(const char *operation, const char *stage,
    const struct instag_args *a, char **log)
{
	const char *err = NULL;
	char *script, *path, *lp;
	FILE *fp;
	int rc;

	script = instag_stage_script(operation, stage, a, &err);
	ck_assert_msg(script != NULL, "%s/%s: %s", operation, stage, err);
	path = xasprintf("%s/%s-%s.sh", pod, operation, stage);
	lp = xasprintf("%s.log", path);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(script, fp);
	fclose(fp);
	rc = sh("bash '%s' >'%s' 2>&1", path, lp);
	*log = tu_read_file(lp);
	free(lp);
	free(script);
	free(path);
	return rc;
}

/* Every frame of ori_imgs has a depth and a normal map: 0. */
static int
all_maps(void)
{
	return sh("cd '%s/data/u-test/may' && n=0 && "
	    "for f in ori_imgs/*.jpg; do "
	    "b=$(basename \"$f\" .jpg); "
	    "test -s sapiens/depth/sapiens_0.3b/$b.npy && "
	    "test -s sapiens/normal/sapiens_0.3b/$b.npy || exit 1; "
	    "n=$((n + 1)); done; test $n = 60", repo);
}

/* The pod's GPU count for the stand-in ($FAKE_INSTAG_CONTROL/gpus). */
static void
set_gpus(int n)
{
	ck_assert_int_eq(sh("echo %d >'%s/fake-control/gpus'", n, pod), 0);
}

/* Against the stand-in, which runs only the jobs whose GPU ids the pod
 * has: with 1, 2 or 3 GPUs every frame gets both maps; with upstream's
 * line left at 4 GPUs (the old edit), only part; a stand-in that skips
 * frames fails the stage with the count. */
START_TEST(test_sapiens_gpus_on_fake_tree)
{
	static const char *const pre[] = { "process", "au", "teeth", NULL };
	static const char scripts[] = "data_utils/sapiens/lite/scripts";
	struct instag_args a = { 0 };
	char *env, *log;
	int i;

	fake_pod();
	env = xasprintf("%s/env.sh", pod);
	a.repo_dir = repo;
	a.subject = "may";
	a.owner_dir = "u-test";
	a.env_init = env;
	for (i = 0; pre[i]; i++) {
		ck_assert_msg(run_stage("instag.preprocess", pre[i], &a, &log)
		    == 0, "%s: %s", pre[i], log);
		free(log);
	}

	/* 2 GPUs: upstream's line set to 2; every frame */
	set_gpus(2);
	ck_assert_msg(run_stage("instag.preprocess", "sapiens", &a, &log) == 0,
	    "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "[agent] sapiens set to 2 GPU(s)"));
	free(log);
	ck_assert_int_eq(sh("cd '%s/%s' && for k in depth normal; do "
	    "grep -qxF 'JOBS_PER_GPU=1; TOTAL_GPUS=2; VALID_GPU_IDS=(0 1)' "
	    "$k.sh || exit 1; done", repo, scripts), 0);
	ck_assert_int_eq(all_maps(), 0);

	/* 1 GPU */
	set_gpus(1);
	ck_assert_msg(run_stage("instag.preprocess", "sapiens", &a, &log) == 0,
	    "%s", log);
	free(log);
	ck_assert_int_eq(sh("grep -qxF 'JOBS_PER_GPU=1; TOTAL_GPUS=1; "
	    "VALID_GPU_IDS=(0)' '%s/%s/depth.sh'", repo, scripts), 0);
	ck_assert_int_eq(all_maps(), 0);

	/* The old edit matched only a line starting with TOTAL_GPUS=:
	 * upstream's line stays at 4, and on 1 GPU run.sh exits 0 with
	 * maps for 15 of 60 frames. */
	ck_assert_int_eq(sh("cd '%s' && git checkout -q -- %s && "
	    "sed -i 's/^TOTAL_GPUS=.*/TOTAL_GPUS=1/; "
	    "s/^VALID_GPU_IDS=.*/VALID_GPU_IDS=(0)/' %s/depth.sh "
	    "%s/normal.sh && rm -rf data/u-test/may/sapiens && . '%s' && "
	    "bash data_utils/sapiens/run.sh ./data/u-test/may >/dev/null "
	    "2>&1 && test $(ls data/u-test/may/sapiens/depth/sapiens_0.3b/"
	    "*.npy | wc -l) = 15",
	    repo, scripts, scripts, scripts, env), 0);
	ck_assert_int_ne(all_maps(), 0);

	/* the assignments on lines of their own, 3 GPUs */
	set_gpus(3);
	ck_assert_int_eq(sh("cd '%s/%s' && sed -i 's/^JOBS_PER_GPU=1; "
	    "TOTAL_GPUS=4; VALID_GPU_IDS=(0 1 2 3)$/JOBS_PER_GPU=1\\n"
	    "TOTAL_GPUS=4\\nVALID_GPU_IDS=(0 1 2 3)/' depth.sh normal.sh",
	    repo, scripts), 0);
	ck_assert_msg(run_stage("instag.preprocess", "sapiens", &a, &log) == 0,
	    "%s", log);
	free(log);
	ck_assert_int_eq(sh("cd '%s/%s' && for k in depth normal; do "
	    "grep -qx 'TOTAL_GPUS=3' $k.sh && "
	    "grep -qxF 'VALID_GPU_IDS=(0 1 2)' $k.sh || exit 1; done",
	    repo, scripts), 0);
	ck_assert_int_eq(all_maps(), 0);

	/* Sapiens skips frames (every normal job dies half way), run.sh
	 * exits 0: the stage fails and says how many; the maps of the run
	 * before do not count. */
	ck_assert_int_eq(sh("cd '%s' && git checkout -q -- %s && "
	    "echo 'fail_at 50' >'%s/fake-control/vis_normal'", repo, scripts,
	    pod), 0);
	set_gpus(1);
	ck_assert_int_ne(run_stage("instag.preprocess", "sapiens", &a, &log),
	    0);
	ck_assert_msg(strstr(log, "\n[agent] Sapiens wrote normal maps for "
	    "30 of 60 frames (first missing: data/u-test/may/sapiens/"
	    "normal/"
	    "sapiens_0.3b/") != NULL, "%s", log);
	ck_assert_ptr_null(strstr(log, "Sapiens wrote depth maps"));
	ck_assert_ptr_nonnull(strstr(log, "Processing complete."));
	free(log);
	ck_assert_int_eq(sh("rm -f '%s/fake-control/vis_normal' "
	    "'%s/fake-control/gpus'", pod, pod), 0);
	free(env);
}
END_TEST

/* An owner's own pre-training goes to output/<owner>/pretrain_E, never
 * over the shared released checkpoints, and the adaptation starts from
 * it when it is complete (else from the shared ones). */
START_TEST(test_pretrain_per_owner)
{
	struct instag_args a = { 0 };
	const char *err = NULL;
	char *env, *script, *log, *calls;

	fake_pod();
	env = xasprintf("%s/env.sh", pod);
	calls = xasprintf("%s/.fake-state/calls.log", pod);
	a.repo_dir = repo;
	a.subject = "may";
	a.owner_dir = "u-test";
	a.env_init = env;
	a.iterations = 100;
	a.n_views = 30;
	a.extractor = "ave";
	a.output_name = "may_ave";
	script = instag_stage_script("instag.train", "pretrain", &a, &err);
	ck_assert_ptr_nonnull(script);
	ck_assert_ptr_nonnull(strstr(script,
	    "data/pretrain \"$PO\""));
	free(script);
	ck_assert_int_eq(run_stages("instag.preprocess", &a), 0);
	ck_assert_int_eq(run_stage("instag.train", "features", &a, &log), 0);
	free(log);
	/* No pre-training of the owner's: the shared checkpoints. */
	ck_assert_int_eq(run_stage("instag.train", "face", &a, &log), 0);
	free(log);
	log = tu_read_file(calls);
	ck_assert_ptr_nonnull(strstr(log,
	    "--pretrain_path output/pretrain_ave/chkpnt_ema_face_latest"));
	free(log);
	/* The owner's own, complete: it is the one used. */
	ck_assert_int_eq(sh("cd '%s' && mkdir -p output/u-test/pretrain_ave "
	    "&& cp output/pretrain_ave/chkpnt_ema_*_latest.pth "
	    "output/u-test/pretrain_ave/ && : >'%s/.fake-state/calls.log'",
	    repo, pod), 0);
	ck_assert_int_eq(run_stage("instag.train", "face", &a, &log), 0);
	free(log);
	log = tu_read_file(calls);
	ck_assert_ptr_nonnull(strstr(log, "--pretrain_path "
	    "output/u-test/pretrain_ave/chkpnt_ema_face_latest"));
	free(log);
	free(calls);
	free(env);
}
END_TEST

START_TEST(test_log_text)
{
	static const char in[] = "ok\tline\r\x01 k=SECRETKEY x "
	    "Authorization: bearer eyJ.a-b_c/d+e= rpa_ABCDEFGHIJKLMNOP12 "
	    "rpa_short \xff\xc3\xa9\xe2\x82 end";
	char *o = instag_log_text(in, sizeof(in) - 1, "SECRETKEY");
	json_object *tail, *t2;
	char big[600];
	int i;

	ck_assert_str_eq(o, "ok\tline\n\xef\xbf\xbd k=[redacted] x "
	    "Authorization: Bearer [redacted] [redacted] rpa_short "
	    "\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd end");
	free(o);
	o = instag_log_text("a\0b", 3, NULL);
	ck_assert_str_eq(o, "a\xef\xbf\xbd" "b");
	free(o);
	o = instag_log_text("", 0, "");
	ck_assert_str_eq(o, "");
	free(o);

	/* the tail: lines split at \n and \r, empty ones skipped, the last
	 * 20 kept, each cut */
	tail = instag_log_tail(NULL, "a\n\nb\rc", 6, NULL);
	ck_assert_str_eq(json_object_to_json_string_ext(tail,
	    JSON_C_TO_STRING_PLAIN), "[\"a\",\"b\",\"c\"]");
	for (i = 0; i < 30; i++) {
		char l[16];
		int n = snprintf(l, sizeof(l), "l%d K\n", i);
		t2 = instag_log_tail(tail, l, (size_t)n, "K");
		json_object_put(tail);
		tail = t2;
	}
	ck_assert_int_eq(json_object_array_length(tail), INSTAG_TAIL_LINES);
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(
	    tail, 0)), "l10 [redacted]");
	json_object_put(tail);
	memset(big, 'x', sizeof(big));
	tail = instag_log_tail(NULL, big, sizeof(big), NULL);
	ck_assert_uint_eq(strlen(json_object_get_string(
	    json_object_array_get_idx(tail, 0))), INSTAG_TAIL_LINE);
	json_object_put(tail);
}
END_TEST

static Suite *
instag_suite(void)
{
	Suite *s = suite_create("instag");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, tu_top_setup, tu_top_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_quote);
	tcase_add_test(tc, test_progress);
	tcase_add_test(tc, test_owner_dir);
	tcase_add_test(tc, test_log_text);
	tcase_add_test(tc, test_stage_errors);
	tcase_add_test(tc, test_stages_on_fake_tree);
	tcase_add_test(tc, test_pretrain_per_owner);
	tcase_add_test(tc, test_sapiens_script);
	tcase_add_test(tc, test_sapiens_gpus_on_fake_tree);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { instag_suite })
