#include "auto-config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instag.h"
#include "xalloc.h"

void
instag_quote(struct strbuf *sb, const char *s)
{
	sb_addc(sb, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sb_adds(sb, "'\\''");
		else
			sb_addc(sb, *s);
	}
	sb_addc(sb, '\'');
}

/* ---- stages ------------------------------------------------------------------ */

static const char *const st_preprocess[] = { "process", "au", "teeth",
    "sapiens", NULL };
static const char *const st_train[] = { "features", "face", "mouth", "fuse",
    NULL };
static const char *const st_synth[] = { "features", "render", "mux", NULL };

const char *const *
instag_stages(const char *operation)
{
	if (strcmp(operation, "instag.preprocess") == 0)
		return st_preprocess;
	if (strcmp(operation, "instag.train") == 0)
		return st_train;
	if (strcmp(operation, "instag.synthesize") == 0)
		return st_synth;
	return NULL;
}

/* "name='value'" for the script's variables. */
static void
var(struct strbuf *sb, const char *name, const char *value)
{
	sb_addf(sb, "%s=", name);
	instag_quote(sb, value);
	sb_addc(sb, '\n');
}

static void
header(struct strbuf *sb, const struct instag_args *a)
{
	sb_adds(sb, "#!/bin/bash\n# Written by instag-agent.\nset -euo pipefail\n");
	if (a->env_init != NULL) {
		sb_adds(sb, ". ");
		instag_quote(sb, a->env_init);
		sb_addc(sb, '\n');
	}
	var(sb, "ID", a->subject);
	var(sb, "NAME", a->output_name ? a->output_name : a->subject);
	var(sb, "E", a->extractor ? a->extractor : "deepspeech");
	sb_addf(sb, "export CUDA_VISIBLE_DEVICES=%d\nexport PYTHONUNBUFFERED=1\n"
	    "PY='conda run --no-capture-output -n instag python'\ncd ",
	    a->gpu_id);
	instag_quote(sb, a->repo_dir);
	sb_adds(sb, "\nD=\"data/$ID\"\nO=\"output/$NAME\"\n");
}

static int
preprocess(struct strbuf *sb, const char *stage)
{
	if (strcmp(stage, "process") == 0)
		/* ffmpeg asks before overwriting aud.wav on a re-run: no
		 * stdin.  process.py ignores its steps' status: check. */
		sb_adds(sb, "$PY data_utils/process.py \"$D/$ID.mp4\" </dev/null\n"
		    "test -s \"$D/transforms_train.json\" && "
		    "test -s \"$D/transforms_val.json\" && test -s \"$D/aud.npy\"\n");
	else if (strcmp(stage, "au") == 0)
		sb_adds(sb, "mkdir -p \"$D/openface\"\n"
		    "FeatureExtraction -f \"$D/$ID.mp4\" -out_dir \"$D/openface\" "
		    "-aus </dev/null\n"
		    "mv -f \"$D/openface/$ID.csv\" \"$D/au.csv\"\n");
	else if (strcmp(stage, "teeth") == 0)
		sb_adds(sb, "PYTHONPATH=./data_utils/easyportrait $PY "
		    "./data_utils/easyportrait/create_teeth_mask.py \"./$D\" "
		    "</dev/null\nls \"$D/teeth_mask\"/*.npy >/dev/null\n");
	else if (strcmp(stage, "sapiens") == 0)
		/* run.sh exits 0 even when its jobs fail: check the output. */
		sb_adds(sb, "conda run --no-capture-output -n sapiens_lite bash "
		    "./data_utils/sapiens/run.sh \"./$D\" </dev/null\n"
		    "ls \"$D/sapiens/depth/sapiens_0.3b\"/*.npy >/dev/null\n"
		    "ls \"$D/sapiens/normal/sapiens_0.3b\"/*.npy >/dev/null\n");
	else
		return -1;
	return 0;
}

static int
train(struct strbuf *sb, const char *stage, const struct instag_args *a)
{
	int it = a->iterations > 0 ? a->iterations : 10000;
	int fuse = a->iterations > 0 ? (a->iterations / 5 > 0 ?
	    a->iterations / 5 : 1) : 2000;

	sb_addf(sb, "N=%d\nP=\"output/pretrain_$E\"\n", a->n_views > 0 ?
	    a->n_views : 250);
	if (strcmp(stage, "features") == 0)
		sb_adds(sb, "case $E in\n"
		    "esperanto) $PY data_utils/wav2vec.py --wav \"$D/aud.wav\" "
		    "--save_feats </dev/null; test -s \"$D/aud_eo.npy\" ;;\n"
		    "hubert) $PY data_utils/hubert.py --wav \"$D/aud.wav\" "
		    "</dev/null; test -s \"$D/aud_hu.npy\" ;;\n"
		    "*) echo \"features: $E needs none beyond process.py\" ;;\n"
		    "esac\n");
	else if (strcmp(stage, "face") == 0)
		sb_addf(sb, "$PY train_face.py --type face -s \"$D\" -m \"$O\" "
		    "--init_num 2000 --densify_grad_threshold 0.0005 "
		    "--audio_extractor \"$E\" --pretrain_path "
		    "\"$P/chkpnt_ema_face_latest.pth\" --iterations %d "
		    "--sh_degree 1 --N_views \"$N\" </dev/null\n"
		    "test -s \"$O/chkpnt_face_latest.pth\"\n", it);
	else if (strcmp(stage, "mouth") == 0)
		sb_addf(sb, "$PY train_mouth.py --type mouth -s \"$D\" -m \"$O\" "
		    "--audio_extractor \"$E\" --pretrain_path "
		    "\"$P/chkpnt_ema_mouth_latest.pth\" --init_num 5000 "
		    "--iterations %d --sh_degree 1 --N_views \"$N\" </dev/null\n"
		    "test -s \"$O/chkpnt_mouth_latest.pth\"\n", it);
	else if (strcmp(stage, "fuse") == 0)
		sb_addf(sb, "$PY train_fuse_con.py -s \"$D\" -m \"$O\" "
		    "--opacity_lr 0.001 --audio_extractor \"$E\" --iterations %d "
		    "--sh_degree 1 --N_views \"$N\" </dev/null\n"
		    "test -s \"$O/chkpnt_fuse_latest.pth\"\n", fuse);
	else
		return -1;
	return 0;
}

static int
synthesize(struct strbuf *sb, const char *stage, const struct instag_args *a)
{
	if (a->audio_name == NULL)
		return -1;
	var(sb, "A", a->audio_name);
	/* synthesize_fuse.py does not remember the trained extractor: the
	 * feature file and --audio_extractor go together (ave: the .wav). */
	sb_adds(sb, "case $E in\n"
	    "deepspeech) F=\"data/$A.npy\" ;;\nesperanto) F=\"data/${A}_eo.npy\" ;;\n"
	    "hubert) F=\"data/${A}_hu.npy\" ;;\n*) F=\"data/$A.wav\" ;;\nesac\n");
	if (strcmp(stage, "features") == 0)
		sb_adds(sb, "case $E in\n"
		    "deepspeech) $PY data_utils/deepspeech_features/"
		    "extract_ds_features.py --input \"data/$A.wav\" </dev/null ;;\n"
		    "esperanto) $PY data_utils/wav2vec.py --wav \"data/$A.wav\" "
		    "--save_feats </dev/null ;;\n"
		    "hubert) $PY data_utils/hubert.py --wav \"data/$A.wav\" "
		    "</dev/null ;;\nesac\ntest -s \"$F\"\n");
	else if (strcmp(stage, "render") == 0)
		sb_adds(sb, "$PY synthesize_fuse.py -S \"$D\" -M \"$O\" --dilate "
		    "--use_train --audio \"$F\" --audio_extractor \"$E\" "
		    "</dev/null\ntest -s \"$O/train/ours_None/renders/out.mp4\"\n");
	else if (strcmp(stage, "mux") == 0)
		/* The render has no audio track: mux the driving audio in. */
		sb_adds(sb, "ffmpeg -y -i \"$O/train/ours_None/renders/out.mp4\" "
		    "-i \"data/$A.wav\" -c:v copy -c:a aac -shortest "
		    "\"$O/talking_head_$A.mp4\" </dev/null\n"
		    "test -s \"$O/talking_head_$A.mp4\"\n");
	else
		return -1;
	return 0;
}

char *
instag_stage_script(const char *operation, const char *stage,
    const struct instag_args *a, const char **err)
{
	struct strbuf sb = SB_INIT;
	int rc;

	if (a->repo_dir == NULL || a->repo_dir[0] != '/' ||
	    a->subject == NULL) {
		*err = "the InsTaG directory and the subject are required";
		return NULL;
	}
	header(&sb, a);
	sb_addf(&sb, "echo \"[agent] stage %s of %s\"\n", stage, operation);
	if (strcmp(operation, "instag.preprocess") == 0)
		rc = preprocess(&sb, stage);
	else if (strcmp(operation, "instag.train") == 0)
		rc = train(&sb, stage, a);
	else if (strcmp(operation, "instag.synthesize") == 0)
		rc = synthesize(&sb, stage, a);
	else
		rc = -1;
	if (rc < 0) {
		sb_free(&sb);
		*err = "unknown stage, or an argument it needs is missing";
		return NULL;
	}
	return sb_take(&sb);
}

/* ---- progress ------------------------------------------------------------------ */

/* A tqdm bar "Label: NN%|###  | cur/total [...]" in seg[0..n). */
static void
parse_bar(const char *seg, size_t n, struct instag_progress *p)
{
	const char *bar = NULL, *q, *end = seg + n;
	long long cur, total;
	int pct = 0, digits = 0;
	char tail[64];
	size_t k;

	for (q = seg; q + 1 < end; q++)
		if (q[0] == '%' && q[1] == '|') {
			bar = q;
			break;
		}
	if (bar == NULL)
		return;
	for (q = bar; q > seg && isdigit((unsigned char)q[-1]) && digits < 3;
	    q--, digits++)
		;
	if (digits == 0)
		return;
	pct = atoi(q);
	/* after the second '|': " cur/total" */
	for (q = bar + 2; q < end && *q != '|'; q++)
		;
	if (q >= end)
		return;
	k = (size_t)(end - q - 1) < sizeof(tail) - 1 ?
	    (size_t)(end - q - 1) : sizeof(tail) - 1;
	memcpy(tail, q + 1, k);
	tail[k] = '\0';
	if (sscanf(tail, " %lld/%lld", &cur, &total) != 2)
		return;
	p->percent = pct > 100 ? 100 : pct;
	p->cur = cur;
	p->total = total;
	/* label: text before ": NN%" (may be absent) */
	{
		const char *ls = seg, *le = bar - digits;
		while (le > ls && (le[-1] == ' ' || le[-1] == ':'))
			le--;
		k = (size_t)(le - ls) < sizeof(p->label) - 1 ?
		    (size_t)(le - ls) : sizeof(p->label) - 1;
		memcpy(p->label, ls, k);
		p->label[k] = '\0';
	}
}

static void
parse_segment(const char *seg, size_t n, struct instag_progress *p)
{
	const char *q;
	static const char info[] = "[INFO] ===== ";

	if (n == 0)
		return;
	for (q = seg; q + 6 < seg + n; q++)
		if (memcmp(q, "[ITER ", 6) == 0) {
			p->iter = atoll(q + 6);
			break;
		}
	if (n > sizeof(info) - 1 && memcmp(seg, info, sizeof(info) - 1) == 0) {
		const char *s = seg + sizeof(info) - 1, *e = seg + n;
		size_t k;
		while (e > s && (e[-1] == '=' || e[-1] == ' '))
			e--;
		k = (size_t)(e - s) < sizeof(p->info) - 1 ? (size_t)(e - s) :
		    sizeof(p->info) - 1;
		memcpy(p->info, s, k);
		p->info[k] = '\0';
	}
	parse_bar(seg, n, p);
}

void
instag_parse_progress(const char *log, size_t len, struct instag_progress *p)
{
	size_t i, start = 0;

	memset(p, 0, sizeof(*p));
	p->percent = -1;
	p->iter = -1;
	for (i = 0; i <= len; i++) {
		if (i == len || log[i] == '\n' || log[i] == '\r' ||
		    log[i] == '\0') {
			parse_segment(log + start, i - start, p);
			start = i + 1;
		}
	}
}
