/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "instag/instag.h"
#include "lib/hash.h"
#include "lib/redact.h"
#include "lib/xalloc.h"


/* ---- owners -------------------------------------------------------------- */

void
instag_owner_dir(const char *sub, char out[INSTAG_OWNER_DIR_LEN])
{
	hash_owner_dir(sub, out);
}

/* ---- stages -------------------------------------------------------------- */

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
	sb_add_shquote(sb, value);
	sb_addc(sb, '\n');
}

static void
header(struct strbuf *sb, const struct instag_args *a)
{
	sb_adds(sb, "#!/bin/bash\n# Written by instag-agent.\n"
	    "set -euo pipefail\n");
	if (a->env_init != NULL) {
		sb_adds(sb, ". ");
		sb_add_shquote(sb, a->env_init);
		sb_addc(sb, '\n');
	}
	var(sb, "U", a->owner_dir);
	var(sb, "ID", a->subject);
	var(sb, "NAME", a->output_name ? a->output_name : a->subject);
	var(sb, "E", a->extractor ? a->extractor : "deepspeech");
	/* the conda environments setup made in the work root (the
	 * checkout's parent), on a network volume when it holds the root */
	sb_addf(sb, "CE=");
	sb_add_shquote(sb, a->repo_dir);
	sb_adds(sb, "\nCE=\"${CE%/*}/conda/envs\"\n"
	    "if [ -d \"$CE\" ]; then export CONDA_ENVS_PATH=\"$CE\"; fi\n");
	sb_addf(sb, "export CUDA_VISIBLE_DEVICES=%d\n"
	    "export PYTHONUNBUFFERED=1\n"
	    "PY='conda run --no-capture-output -n instag python'\ncd ",
	    a->gpu_id);
	sb_add_shquote(sb, a->repo_dir);
	/* the owner's own directories: no other caller reads or writes
	 * them (InsTaG takes both as flags: -s/-S, -m/-M, process.py's
	 * video path) */
	sb_adds(sb, "\nD=\"data/$U/$ID\"\nO=\"output/$U/$NAME\"\n");
}

/*
 * An awk program that sets TOTAL_GPUS=g and VALID_GPU_IDS=(ids) in one of
 * Sapiens' lite scripts.  Upstream's depth.sh and normal.sh assign them on
 * ONE line, "JOBS_PER_GPU=1; TOTAL_GPUS=4; VALID_GPU_IDS=(0 1 2 3)": each
 * ';'-separated assignment of an uncommented line is matched, so that line
 * and lines of their own both work.  Exit 1 when either is not found.
 */
static const char sapiens_gpus_awk[] =
    "/^[ \\t]*#/ { print; next }\n"
    "{\n"
    "  n = split($0, p, \";\"); s = \"\"\n"
    "  for (i = 1; i <= n; i++) {\n"
    "    if (p[i] ~ /^[ \\t]*TOTAL_GPUS=[0-9]+[ \\t]*$/) {\n"
    "      sub(/TOTAL_GPUS=[0-9]+/, \"TOTAL_GPUS=\" g, p[i]); t++\n"
    "    } else if (p[i] ~ /^[ \\t]*VALID_GPU_IDS=\\([0-9 ]*\\)[ \\t]*$/) {\n"
    "      sub(/VALID_GPU_IDS=\\([0-9 ]*\\)/, "
    "\"VALID_GPU_IDS=(\" ids \")\", p[i]); v++\n"
    "    }\n"
    "    s = s (i > 1 ? \";\" : \"\") p[i]\n"
    "  }\n"
    "  print s\n"
    "}\n"
    "END { exit !(t && v) }\n";

/*
 * The sapiens stage.  Upstream's scripts split the frames over TOTAL_GPUS
 * jobs, job i on GPU VALID_GPU_IDS[i % TOTAL_GPUS]; a job on a GPU the pod
 * lacks dies, and run.sh exits 0 all the same.  So: set both to the GPUs
 * nvidia-smi lists, clear old maps, run, and check that every frame Sapiens
 * was to do (the first N_VALID of ori_imgs, by number) has both its maps.
 */
static void
sapiens(struct strbuf *sb)
{
	var(sb, "SET_GPUS", sapiens_gpus_awk);
	/* The scripts are the checkout's, shared by every job on the
	 * machine: one Sapiens run at a time edits and runs them (flock,
	 * held until this job ends), and the edit goes through a file of
	 * this job's own. */
	sb_adds(sb, "SG=data_utils/sapiens/lite/scripts\n"
	    "if command -v flock >/dev/null; then\n"
	    "  exec 9>\"$SG/.instag-agent.lock\"\n"
	    "  echo '[agent] waiting for other Sapiens runs on this "
	    "checkout'\n  flock 9\nfi\n"
	    "G=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)\n"
	    "if [ \"$G\" -ge 1 ]; then\n"
	    "  ids=$(seq -s ' ' 0 $((G - 1)))\n"
	    "  for s in \"$SG/depth.sh\" \"$SG/normal.sh\"; do\n"
	    "    awk -v g=\"$G\" -v ids=\"$ids\" \"$SET_GPUS\" \"$s\" "
	    ">\"$s.agent.$$\" || { rm -f \"$s.agent.$$\"; echo \"[agent] no "
	    "TOTAL_GPUS=N and VALID_GPU_IDS=(...) to set in $s\"; "
	    "exit 1; }\n"
	    "    cmp -s \"$s.agent.$$\" \"$s\" || "
	    "cat \"$s.agent.$$\" >\"$s\"\n"
	    "    rm -f \"$s.agent.$$\"\n"
	    "  done\n"
	    "  echo \"[agent] sapiens set to $G GPU(s): "
	    "VALID_GPU_IDS=($ids)\"\n"
	    "else\n"
	    "  echo '[agent] nvidia-smi lists no GPU'\n"
	    "fi\n"
	    "rm -rf \"$D/sapiens/depth/sapiens_0.3b\" "
	    "\"$D/sapiens/normal/sapiens_0.3b\"\n"
	    "conda run --no-capture-output -n sapiens_lite "
	    "bash ./data_utils/sapiens/run.sh \"./$D\" </dev/null\n"
	    "frames=$(ls \"$D/ori_imgs\" 2>/dev/null | "
	    "sed -n 's/\\.jpg$//p' | sort -V || true)\n"
	    "[ -n \"$frames\" ] || { echo \"[agent] no frames in "
	    "$D/ori_imgs (the process stage writes them)\"; exit 1; }\n"
	    "bad=0\n"
	    "for k in depth normal; do\n"
	    "  lim=$(sed -n 's/^N_VALID=\\([0-9][0-9]*\\).*/\\1/p' "
	    "\"$SG/$k.sh\" | tail -n 1 || true)\n"
	    "  m=0; got=0; miss=\n"
	    "  for f in $frames; do\n"
	    "    [ -z \"$lim\" ] || [ $m -lt \"$lim\" ] || break\n"
	    "    m=$((m + 1))\n"
	    "    if [ -s \"$D/sapiens/$k/sapiens_0.3b/$f.npy\" ]; then "
	    "got=$((got + 1)); else miss=${miss:-$f}; fi\n"
	    "  done\n"
	    "  if [ $got != $m ]; then\n"
	    "    echo \"[agent] Sapiens wrote $k maps for $got of $m frames "
	    "(first missing: $D/sapiens/$k/sapiens_0.3b/$miss.npy); see "
	    "TOTAL_GPUS and VALID_GPU_IDS in $SG/$k.sh and the log above\"\n"
	    "    bad=1\n"
	    "  fi\n"
	    "done\n"
	    "[ $bad = 0 ]\n");
}

static int
preprocess(struct strbuf *sb, const char *stage)
{
	if (strcmp(stage, "process") == 0)
		/* ffmpeg asks before overwriting aud.wav on a re-run: no
		 * stdin.  process.py ignores its steps' status: check. */
		sb_adds(sb, "$PY data_utils/process.py \"$D/$ID.mp4\" "
		    "</dev/null\n"
		    "test -s \"$D/transforms_train.json\" && "
		    "test -s \"$D/transforms_val.json\" && "
		    "test -s \"$D/aud.npy\"\n");
	else if (strcmp(stage, "au") == 0)
		sb_adds(sb, "mkdir -p \"$D/openface\"\n"
		    "FeatureExtraction -f \"$D/$ID.mp4\" "
		    "-out_dir \"$D/openface\" -aus </dev/null\n"
		    "mv -f \"$D/openface/$ID.csv\" \"$D/au.csv\"\n");
	else if (strcmp(stage, "teeth") == 0)
		sb_adds(sb, "PYTHONPATH=./data_utils/easyportrait $PY "
		    "./data_utils/easyportrait/create_teeth_mask.py \"./$D\" "
		    "</dev/null\nls \"$D/teeth_mask\"/*.npy >/dev/null\n");
	else if (strcmp(stage, "sapiens") == 0)
		sapiens(sb);
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

	/* P: the pre-training checkpoints the adaptation starts from.  The
	 * released ones are shared (output/pretrain_E); an owner's own
	 * pre-training (pretrain=true) goes to output/U/pretrain_E, never
	 * over the shared ones, and is preferred when it is complete. */
	sb_addf(sb, "N=%d\nP=\"output/pretrain_$E\"\n"
	    "PO=\"output/$U/pretrain_$E\"\n", a->n_views > 0 ?
	    a->n_views : 250);
	if (strcmp(stage, "pretrain") != 0)
		sb_adds(sb, "if test -s \"$PO/chkpnt_ema_face_latest.pth\" && "
		    "test -s \"$PO/chkpnt_ema_mouth_latest.pth\"; then "
		    "P=\"$PO\"; fi\n");
	if (strcmp(stage, "pretrain") == 0)
		/* InsTaG's own pre-training script for the extractor, into
		 * the owner's directory. */
		sb_adds(sb, "case $E in\ndeepspeech) S=pretrain_con.sh ;;\n"
		    "ave) S=pretrain_con_ave.sh ;;\n"
		    "esperanto) S=pretrain_con_eo.sh ;;\n"
		    "hubert) S=pretrain_con_hu.sh ;;\nesac\n"
		    "conda run --no-capture-output -n instag bash "
		    "\"scripts/$S\" data/pretrain \"$PO\" "
		    "\"$CUDA_VISIBLE_DEVICES\" </dev/null\n"
		    "test -s \"$PO/chkpnt_ema_face_latest.pth\" && "
		    "test -s \"$PO/chkpnt_ema_mouth_latest.pth\"\n");
	else if (strcmp(stage, "features") == 0)
		sb_adds(sb, "case $E in\n"
		    "esperanto) $PY data_utils/wav2vec.py --wav \"$D/aud.wav\" "
		    "--save_feats </dev/null; test -s \"$D/aud_eo.npy\" ;;\n"
		    "hubert) $PY data_utils/hubert.py --wav \"$D/aud.wav\" "
		    "</dev/null; test -s \"$D/aud_hu.npy\" ;;\n"
		    "*) echo \"features: $E needs none beyond process.py\" ;;\n"
		    "esac\n");
	else if (strcmp(stage, "face") == 0)
		sb_addf(sb, "for k in face mouth; do test -s "
		    "\"$P/chkpnt_ema_${k}_latest.pth\" || { echo \"[agent] no "
		    "pre-training checkpoint $P/chkpnt_ema_${k}_latest.pth for "
		    "extractor $E: put the released one there, or train with "
		    "pretrain=true\"; exit 3; }; done\n"
		    "$PY train_face.py --type face -s \"$D\" -m \"$O\" "
		    "--init_num 2000 --densify_grad_threshold 0.0005 "
		    "--audio_extractor \"$E\" --pretrain_path "
		    "\"$P/chkpnt_ema_face_latest.pth\" --iterations %d "
		    "--sh_degree 1 --N_views \"$N\" </dev/null\n"
		    "test -s \"$O/chkpnt_face_latest.pth\"\n", it);
	else if (strcmp(stage, "mouth") == 0)
		sb_addf(sb, "$PY train_mouth.py --type mouth -s \"$D\" "
		    "-m \"$O\" --audio_extractor \"$E\" --pretrain_path "
		    "\"$P/chkpnt_ema_mouth_latest.pth\" --init_num 5000 "
		    "--iterations %d --sh_degree 1 --N_views \"$N\" "
		    "</dev/null\n"
		    "test -s \"$O/chkpnt_mouth_latest.pth\"\n", it);
	else if (strcmp(stage, "fuse") == 0)
		sb_addf(sb, "$PY train_fuse_con.py -s \"$D\" -m \"$O\" "
		    "--opacity_lr 0.001 --audio_extractor \"$E\" "
		    "--iterations %d --sh_degree 1 --N_views \"$N\" "
		    "</dev/null\n"
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
	    "deepspeech) F=\"data/$U/$A.npy\" ;;\n"
	    "esperanto) F=\"data/$U/${A}_eo.npy\" ;;\n"
	    "hubert) F=\"data/$U/${A}_hu.npy\" ;;\n"
	    "*) F=\"data/$U/$A.wav\" ;;\nesac\n");
	if (strcmp(stage, "features") == 0)
		sb_adds(sb, "case $E in\n"
		    "deepspeech) $PY data_utils/deepspeech_features/"
		    "extract_ds_features.py --input \"data/$U/$A.wav\" "
		    "</dev/null ;;\n"
		    "esperanto) $PY data_utils/wav2vec.py "
		    "--wav \"data/$U/$A.wav\" --save_feats </dev/null ;;\n"
		    "hubert) $PY data_utils/hubert.py "
		    "--wav \"data/$U/$A.wav\" "
		    "</dev/null ;;\nesac\ntest -s \"$F\"\n");
	else if (strcmp(stage, "render") == 0)
		sb_adds(sb, "$PY synthesize_fuse.py -S \"$D\" -M \"$O\" "
		    "--dilate --use_train --audio \"$F\" "
		    "--audio_extractor \"$E\" </dev/null\n"
		    "test -s \"$O/train/ours_None/renders/out.mp4\"\n");
	else if (strcmp(stage, "mux") == 0)
		/* The render has no audio track: mux the driving audio in. */
		sb_adds(sb, "ffmpeg -y "
		    "-i \"$O/train/ours_None/renders/out.mp4\" "
		    "-i \"data/$U/$A.wav\" -c:v copy -c:a aac -shortest "
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
	    a->subject == NULL || a->owner_dir == NULL) {
		*err = "the InsTaG directory, the owner and the subject are "
		    "required";
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

/* ---- progress ------------------------------------------------------------ */

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
	/* "[ITER n]": the digits are read within the segment only (the
	 * log may end right after them, with no terminator) */
	for (q = seg; q + 6 < seg + n; q++)
		if (memcmp(q, "[ITER ", 6) == 0) {
			const char *d = q + 6, *e = seg + n;
			long long v = 0;

			if (d >= e || !isdigit((unsigned char)*d))
				break;
			for (; d < e && isdigit((unsigned char)*d) &&
			    v < 1000000000000LL; d++)
				v = v * 10 + (*d - '0');
			p->iter = v;
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

/* The last line with text, for the progress message's log line. */
static void
keep_line(const char *seg, size_t n, struct instag_progress *p)
{
	size_t i, k = 0;

	while (n > 0 && (seg[n - 1] == ' ' || seg[n - 1] == '\t'))
		n--;
	while (n > 0 && (*seg == ' ' || *seg == '\t')) {
		seg++;
		n--;
	}
	if (n == 0)
		return;
	for (i = 0; i < n && k < sizeof(p->line) - 1; i++)
		p->line[k++] = (unsigned char)seg[i] < 0x20 ||
		    seg[i] == 0x7f ? '?' : seg[i];
	p->line[k] = '\0';
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
			keep_line(log + start, i - start, p);
			start = i + 1;
		}
	}
}

/* ---- setup, media -------------------------------------------------------- */

char *
instag_setup_script(const char *work_root, const char *repo_url,
    const char *commit, const char *env_init)
{
	struct strbuf sb = SB_INIT;

	sb_adds(&sb, "#!/bin/bash\n# Written by instag-agent.\n"
	    "set -euo pipefail\n");
	if (env_init != NULL) {
		sb_adds(&sb, ". ");
		sb_add_shquote(&sb, env_init);
		sb_addc(&sb, '\n');
	}
	var(&sb, "R", work_root);
	var(&sb, "U", repo_url);
	var(&sb, "C", commit);
	sb_adds(&sb,
	    "say() { echo \"[agent] $*\"; }\n"
	    "mkdir -p \"$R\"\ncd \"$R\"\n"
	    "[ -d \"$R/miniconda/bin\" ] && PATH=\"$R/miniconda/bin:$PATH\"\n"
	    /* the environments live in the work root, so whatever holds
	     * it (a network volume) holds them too */
	    "mkdir -p \"$R/conda/envs\"\n"
	    "export CONDA_ENVS_PATH=\"$R/conda/envs\"\n"
	    "if [ -f InsTaG/.instag-agent-ready ] && [ \"$(git -C InsTaG "
	    "rev-parse HEAD)\" = \"$(git -C InsTaG rev-parse --verify -q "
	    "\"$C^{commit}\" || true)\" ] && { { [ -d \"$R/conda/envs/instag/"
	    "conda-meta\" ] && [ -d \"$R/conda/envs/sapiens_lite/conda-meta\" ]"
	    "; } || { command -v conda >/dev/null && conda env list | grep -q "
	    "'^instag ' && conda env list | grep -q '^sapiens_lite '; }; }; "
	    "then\n"
	    "  say \"ready: InsTaG at $C is already set up\"; exit 0\nfi\n"
	    "if ! command -v conda >/dev/null; then\n"
	    "  say \"installing Miniconda in $R/miniconda\"\n"
	    "  curl -fsSL -o miniconda.sh "
	    "https://repo.anaconda.com/miniconda/"
	    "Miniconda3-latest-Linux-x86_64.sh\n"
	    "  bash miniconda.sh -b -p \"$R/miniconda\" && rm -f miniconda.sh\n"
	    "  PATH=\"$R/miniconda/bin:$PATH\"\nfi\n"
	    "if [ ! -d InsTaG/.git ]; then say \"cloning $U\"; "
	    "git clone -q \"$U\" InsTaG; fi\n"
	    "cd InsTaG\n"
	    /* the sapiens stage sets the GPUs in these: the commit's own
	     * text back, so that a checkout of another commit is clean */
	    "git checkout -q -- data_utils/sapiens/lite/scripts/depth.sh "
	    "data_utils/sapiens/lite/scripts/normal.sh 2>/dev/null || true\n"
	    "git rev-parse --verify -q \"$C^{commit}\" >/dev/null || "
	    "git fetch -q origin\n"
	    "git -c advice.detachedHead=false checkout -q \"$C\"\n"
	    "git submodule update --init --recursive\n"
	    "say \"InsTaG at $(git rev-parse HEAD)\"\n"
	    "if ! conda env list | grep -q '^instag '; then\n"
	    "  say 'creating the conda environment instag'\n"
	    "  conda env create --file environment.yml </dev/null\n"
	    "  conda run -n instag pip install "
	    "'git+https://github.com/facebookresearch/pytorch3d.git' "
	    "tensorflow-gpu==2.10.0 transformers==4.30.2 openmim </dev/null\n"
	    "  conda run -n instag mim install mmcv-full==1.7.1 prettytable "
	    "</dev/null\nfi\n"
	    "say 'fetching the tool weights (scripts/prepare.sh)'\n"
	    "bash scripts/prepare.sh </dev/null\n"
	    "if ! conda env list | grep -q '^sapiens_lite '; then\n"
	    "  say 'creating the conda environment sapiens_lite'\n"
	    "  conda create -n sapiens_lite python=3.10 -y </dev/null\n"
	    "  conda install -n sapiens_lite -y pytorch==2.2.1 "
	    "torchvision==0.17.1 torchaudio==2.2.1 pytorch-cuda=12.1 "
	    "-c pytorch -c nvidia </dev/null\n"
	    "  conda run -n sapiens_lite pip install opencv-python tqdm "
	    "json-tricks </dev/null\nfi\n"
	    "missing=\"\"\n"
	    "if [ ! -d data_utils/sapiens/checkpoint/"
	    "sapiens-depth-0.3b-torchscript ]; "
	    "then\n  if git lfs version >/dev/null 2>&1; then\n"
	    "    bash scripts/prepare_sapiens.sh </dev/null\n"
	    "  else missing=\"$missing "
	    "git-lfs(for-scripts/prepare_sapiens.sh)\"; fi\nfi\n"
	    "command -v FeatureExtraction >/dev/null || missing=\"$missing "
	    "OpenFace-FeatureExtraction(on-PATH)\"\n"
	    "M=data_utils/face_tracking/3DMM\n"
	    "if [ -f \"$M/01_MorphableModel.mat\" ] && "
	    "[ ! -f \"$M/3DMM_info.npy\" ]; "
	    "then\n  (cd data_utils/face_tracking && "
	    "conda run -n instag python convert_BFM.py </dev/null)\nfi\n"
	    "[ -f \"$M/01_MorphableModel.mat\" ] || missing=\"$missing "
	    "$M/01_MorphableModel.mat(Basel-Face-Model-2009:licence)\"\n"
	    "[ -f data_utils/easyportrait/fpn-fp-512.pth ] || "
	    "missing=\"$missing data_utils/easyportrait/fpn-fp-512.pth\"\n"
	    "for k in face mouth; do "
	    "f=output/pretrain_ave/chkpnt_ema_${k}_latest.pth\n"
	    "  [ -f \"$f\" ] || missing=\"$missing $f\"\ndone\n"
	    "for e in deepspeech ave esperanto hubert; do\n"
	    "  [ -f output/pretrain_$e/chkpnt_ema_face_latest.pth ] && "
	    "[ -f output/pretrain_$e/chkpnt_ema_mouth_latest.pth ] && "
	    "say \"extractor: $e\"\ndone\n"
	    "if [ -n \"$missing\" ]; then say \"missing:$missing\"; "
	    "exit 0; fi\n"
	    "touch .instag-agent-ready\nsay \"ready: InsTaG at $C\"\n");
	return sb_take(&sb);
}

char *
instag_fetch_url_script(const char *url, const char *dest, const char *env_init)
{
	struct strbuf sb = SB_INIT;

	sb_adds(&sb, "#!/bin/bash\nset -euo pipefail\n");
	if (env_init != NULL) {
		sb_adds(&sb, ". ");
		sb_add_shquote(&sb, env_init);
		sb_addc(&sb, '\n');
	}
	var(&sb, "URL", url);
	var(&sb, "OUT", dest);
	sb_adds(&sb, "mkdir -p \"$(dirname \"$OUT\")\"\n"
	    "curl -fsSL --proto =https --max-filesize 4294967296 "
	    "--retry 3 -o \"$OUT.part\" -- \"$URL\"\n"
	    "mv -f \"$OUT.part\" \"$OUT\"\nsha256sum \"$OUT\"\n");
	return sb_take(&sb);
}

char *
instag_media_script(const char *video, bool convert, const char *env_init)
{
	struct strbuf sb = SB_INIT;

	sb_adds(&sb, "#!/bin/bash\nset -euo pipefail\n");
	if (env_init != NULL) {
		sb_adds(&sb, ". ");
		sb_add_shquote(&sb, env_init);
		sb_addc(&sb, '\n');
	}
	var(&sb, "V", video);
	sb_addf(&sb, "CONVERT=%d\n", convert ? 1 : 0);
	/* InsTaG wants 25 fps, about 512x512, and enough frames: face
	 * tracking needs >= 32, a test split >= 12 s. */
	sb_adds(&sb,
	    "probe() { ffprobe -v error -select_streams v:0 -show_entries "
	    "stream=avg_frame_rate,width,height:format=duration "
	    "-of default=noprint_wrappers=1 \"$1\" </dev/null; }\n"
	    "info=$(probe \"$V\") || { echo \"[agent] not a video ffprobe "
	    "can read\"; exit 3; }\necho \"$info\"\n"
	    "fps=$(echo \"$info\" | sed -n 's/^avg_frame_rate=//p')\n"
	    "w=$(echo \"$info\" | sed -n 's/^width=//p')\n"
	    "h=$(echo \"$info\" | sed -n 's/^height=//p')\n"
	    "d=$(echo \"$info\" | sed -n 's/^duration=//p')\n"
	    "ok=1\n[ \"$fps\" = 25/1 ] || [ \"$fps\" = 25 ] || "
	    "{ echo \"[agent] frame rate $fps, InsTaG needs 25\"; ok=0; }\n"
	    "[ \"$w\" = 512 ] && [ \"$h\" = 512 ] || "
	    "{ echo \"[agent] size ${w}x$h, InsTaG wants 512x512\"; ok=0; }\n"
	    "awk -v d=\"$d\" 'BEGIN { exit !(d + 0 >= 1.28) }' || "
	    "{ echo \"[agent] only $d s: InsTaG needs at least 1.28 s "
	    "(32 frames)\"; exit 3; }\n"
	    "if [ $ok = 0 ]; then\n"
	    "  if [ $CONVERT = 0 ]; then echo '[agent] not converted "
	    "(params.convert is false)'; exit 3; fi\n"
	    "  ffmpeg -y -i \"$V\" -vf 'fps=25,scale=512:512:"
	    "force_original_aspect_ratio=increase,crop=512:512' "
	    "-c:v libx264 -c:a aac \"$V.conv.mp4\" </dev/null\n"
	    "  mv -f \"$V.conv.mp4\" \"$V\"\n  echo '[agent] converted'\n"
	    "  probe \"$V\"\nfi\n"
	    "echo \"[agent] duration=$d\"\n");
	return sb_take(&sb);
}

/* ---- relayed log text ---------------------------------------------------- */

char *
instag_log_text(const char *buf, size_t len, const char *secret)
{
	return redact_text(buf, len, secret);
}

json_object *
instag_log_tail(json_object *tail, const char *buf, size_t len,
    const char *secret)
{
	json_object *out = json_object_new_array();
	size_t i, n = tail ? json_object_array_length(tail) : 0, from = 0;
	char *text;
	const char *p, *e;

	for (i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(tail, i);
		if (json_object_is_type(v, json_type_string))
			json_object_array_add(out, json_object_get(v));
	}
	text = instag_log_text(buf, len, secret);
	for (p = text; *p != '\0'; p = *e ? e + 1 : e) {
		size_t l;
		e = p + strcspn(p, "\n");
		l = (size_t)(e - p);
		if (l == 0)
			continue;
		if (l > INSTAG_TAIL_LINE) {
			l = INSTAG_TAIL_LINE;
			while (l > 0 && ((unsigned char)p[l] & 0xc0) == 0x80)
				l--;
		}
		json_object_array_add(out, json_object_new_string_len(p,
		    (int)l));
	}
	free(text);
	n = json_object_array_length(out);
	if (n > INSTAG_TAIL_LINES)
		from = n - INSTAG_TAIL_LINES;
	if (from > 0)
		json_object_array_del_idx(out, 0, from);
	return out;
}
