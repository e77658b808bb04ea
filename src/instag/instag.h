/* SPDX-License-Identifier: MIT */
/*
 * instag: InsTaG's command lines and progress output.  Prefix instag_.
 *
 * Everything here is pure (no I/O), so it is unit-tested on its own:
 * - values enter command lines only through sb_add_shquote (strbuf.h).
 * - instag_stage_script: the shell script of one stage of an operation,
 *   built only from fixed templates and validated, quoted values, following
 *   InsTaG's exact command lines (its README and scripts/; each stage
 *   is listed in docs/instag.md, "What each operation runs on the pod").
 * - instag_parse_progress: InsTaG's progress from a log: tqdm bars (on
 *   stderr, redrawn with '\r'), "[ITER n]" lines and "[INFO] ===== x ====="
 *   markers.
 */
#ifndef IA_INSTAG_H
#define IA_INSTAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/hash.h"
#include "lib/redact.h"
#include "lib/strbuf.h"


/*
 * The per-owner directory name of a JWT sub: "u-" and the first 32 hex
 * digits (lower case) of the SHA-256 of the sub's bytes.  Injective in
 * practice (128 bits), made of [0-9a-f-] only whatever the sub holds, so
 * it is safe in paths and command lines.  Every file of an owner on a pod
 * lives under data/<it>/, output/<it>/ (in the checkout) and
 * <pod_work_root>/jobs/<it>/.  out gets the NUL-terminated name.
 */
#define INSTAG_OWNER_DIR_LEN HASH_OWNER_DIR_LEN
void instag_owner_dir(const char *sub, char out[INSTAG_OWNER_DIR_LEN]);

/* What a stage's script needs; strings borrowed, already validated by
 * the operation's params (identifiers, enums, ranges). */
struct instag_args {
	const char *repo_dir;	/* absolute: the InsTaG checkout on the pod */
	const char *owner_dir;	/* instag_owner_dir() of the task's owner */
	const char *subject;	/* the person's <ID> */
	const char *output_name;	/* output/<name>; NULL: the subject */
	const char *extractor;	/* deepspeech, ave, esperanto, hubert */
	const char *audio_name;	/* driving audio data/<owner_dir>/<name>.wav
				   (synth) */
	const char *env_init;	/* NULL or a remote file sourced first */
	int gpu_id;
	int n_views;		/* <= 0: InsTaG's few-shot 250 */
	int iterations;		/* <= 0: 10000 (face, mouth); fuse 2000 */
};

/* The stages of an operation, in order; NULL-terminated static array,
 * NULL for an operation without stages here. */
const char *const *instag_stages(const char *operation);

/*
 * The bash script of stage (one of instag_stages(operation)), or NULL with
 * *err (static) for an unknown stage or missing argument.  Caller frees.
 */
char *instag_stage_script(const char *operation, const char *stage,
    const struct instag_args *a, const char **err);

/* The setup job: clone or update the checkout under work_root at commit,
 * conda environments, tool weights; prints "[agent] ready: ..." or
 * "[agent] missing: ..." (licensed or manual assets).  Caller frees. */
char *instag_setup_script(const char *work_root, const char *repo_url,
    const char *commit, const char *env_init);
/* A job that has the pod download an https URL to dest (absolute). */
char *instag_fetch_url_script(const char *url, const char *dest,
    const char *env_init);
/* A job that checks a video for InsTaG (25 fps, 512x512, >= 32 frames)
 * with ffprobe, and converts it when convert is set; exit 3 when it is
 * unusable (the log says why). */
char *instag_media_script(const char *video, bool convert,
    const char *env_init);

struct instag_progress {
	char label[48];		/* "Training progress", "Rendering progress",
				   "" for a bar without a description */
	int percent;		/* of the last bar, -1 when none */
	long long cur, total;	/* of the last bar, 0 when none */
	long long iter;		/* last "[ITER n]", -1 when none */
	char info[96];		/* last "[INFO] ===== x =====" text */
	char line[128];		/* the last line with text, control
				   characters as '?', cut to fit */
};

/* Scan len bytes of log (any bytes) and fill *p from the last markers. */
void instag_parse_progress(const char *log, size_t len,
    struct instag_progress *p);

/*
 * Log bytes made fit to relay: redact_text() (lib/redact.h), a new
 * NUL-terminated string (caller frees) with secret, "Bearer <token>" and
 * "rpa_..." keys replaced by INSTAG_REDACTED, invalid UTF-8 and control
 * characters replaced, '\r' made '\n'.  len bytes of buf (any bytes).
 */
#define INSTAG_REDACTED REDACT_MARK
char *instag_log_text(const char *buf, size_t len, const char *secret);

/*
 * The last lines of a log: tail (an array of strings, may be NULL) with
 * the lines of len bytes of buf appended (split at '\n' and '\r', empty
 * ones skipped, each made fit with instag_log_text and cut to
 * INSTAG_TAIL_LINE bytes on a UTF-8 boundary), keeping the last
 * INSTAG_TAIL_LINES.  A new array (caller puts it).
 */
#define INSTAG_TAIL_LINES 20
#define INSTAG_TAIL_LINE 200
struct json_object;
struct json_object *instag_log_tail(struct json_object *tail,
    const char *buf, size_t len, const char *secret);

#endif
