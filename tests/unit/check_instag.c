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
	    "mkdir -p data/may && "
	    "'%s/make-media' video data/may/may.mp4 --seconds 2.4 && "
	    "'%s/make-media' audio data/drive.wav --seconds 2",
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
			    "%s/output/%s/talking_head_drive.mp4", repo, name);
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

START_TEST(test_stage_errors)
{
	struct instag_args a = { 0 };
	const char *err = NULL;

	a.repo_dir = "relative/dir";
	a.subject = "may";
	ck_assert_ptr_null(instag_stage_script("instag.train", "face", &a,
	    &err));
	a.repo_dir = "/w/InsTaG";
	ck_assert_ptr_null(instag_stage_script("instag.train", "nope", &a,
	    &err));
	ck_assert_ptr_null(instag_stage_script("instag.synthesize", "render",
	    &a, &err));	/* no audio */
	ck_assert_ptr_null(instag_stages("instag.fetch_results"));
	{
		char *s = instag_stage_script("instag.train", "face", &a, &err);
		ck_assert_ptr_nonnull(strstr(s, "--iterations 10000 "));
		ck_assert_ptr_nonnull(strstr(s, "N=250\n"));
		ck_assert_ptr_nonnull(strstr(s, "E='deepspeech'\n"));
		free(s);
	}
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
	tcase_add_test(tc, test_stage_errors);
	tcase_add_test(tc, test_stages_on_fake_tree);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { instag_suite })
