/* SPDX-License-Identifier: MIT */
/* remote: detached jobs on a pod; see remote.h. */
#include "auto-config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "providers/ssh/podfs.h"
#include "providers/ssh/remote.h"
#include "providers/ssh/ssh.h"

#define JOB_ID_MAX 64
#define REPORT_MAX 4096		/* output kept from a status command */
#define SMALL_MAX 4096		/* bytes read of pid, exit, a /proc line */
#define PROC_STAT_MAX (1024 * 1024)	/* bytes read of /proc/stat */
#define PGID_DIGITS 8
#define EPOCH_DIGITS 18
#define ERR_EXIT 3		/* our commands' "IA-REMOTE-ERR" status */
#define REPORT_TAG "IA-REMOTE "
#define ERR_TAG "IA-REMOTE-ERR "
#define STR2(x) #x
#define STR(x) STR2(x)

/*
 * Shell functions every command starts with (POSIX sh; $d is the job
 * directory).  ia_alive: the wrapper (the pid file's process, same boot,
 * same start time) lives.  ia_group_live: some process of its group
 * lives; when the pid was reused (a process with another start time has
 * it) the group is not ours: the kernel does not hand out a pid while a
 * group of that id exists.  Fields of /proc/PID/stat are counted after
 * the ") " that ends the command name: $1 is the state (field 3), $3 the
 * process group (field 5), $20 the start time (field 22).  A zombie is
 * not alive: in a container nobody may ever reap it.
 */
static const char prelude[] =
	"ia_fail() { printf 'IA-REMOTE-ERR %s\\n' \"$1\"; exit 3; }\n"
	"ia_pidinfo() {\n"
	"	p= b= t= s=0\n"
	"	[ -f \"$d/pid\" ] || return 1\n"
	"	read -r p b t s _ <\"$d/pid\" || return 1\n"
	"	case $s in ''|*[!0-9]*) s=0;; esac\n"
	"	case $p in ''|*[!0-9]*) return 1;; esac\n"
	"	read -r ia_b 2>/dev/null </proc/sys/kernel/random/boot_id ||"
	" ia_b=none\n"
	"	[ \"$b\" = \"$ia_b\" ]\n"
	"}\n"
	"ia_alive() {\n"
	"	ia_pidinfo || return 1\n"
	"	read -r ia_x 2>/dev/null <\"/proc/$p/stat\" || return 1\n"
	"	ia_x=${ia_x##*) }\n"
	"	set -- $ia_x\n"
	"	[ \"$1\" != Z ] && [ \"${20}\" = \"$t\" ]\n"
	"}\n"
	"ia_group_live() {\n"
	"	ia_pidinfo || return 1\n"
	"	if read -r ia_x 2>/dev/null <\"/proc/$p/stat\"; then\n"
	"		ia_x=${ia_x##*) }\n"
	"		set -- $ia_x\n"
	"		[ \"${20}\" = \"$t\" ] || return 1\n"
	"	fi\n"
	"	kill -s 0 -- \"-$p\" 2>/dev/null || return 1\n"
	"	for ia_f in /proc/[0-9]*/stat; do\n"
	"		read -r ia_x 2>/dev/null <\"$ia_f\" || continue\n"
	"		ia_x=${ia_x##*) }\n"
	"		set -- $ia_x\n"
	"		[ \"$3\" = \"$p\" ] && [ \"$1\" != Z ] && return 0\n"
	"	done\n"
	"	return 1\n"
	"}\n"
	"ia_young() {\n"
	"	ia_m=$(stat -c %Y \"$d/started\" 2>/dev/null) || return 1\n"
	"	[ $(( $(date +%s) - ia_m )) -lt " STR(REMOTE_VANISH_S) " ]\n"
	"}\n"
	"ia_report() {\n"
	"	ia_c=0; [ -e \"$d/canceled\" ] && ia_c=1\n"
	"	ia_pidinfo; ia_s=$s; ia_rc=-1\n"
	"	if [ ! -d \"$d/started\" ]; then ia_st=unknown\n"
	"	elif [ -f \"$d/exit\" ]; then ia_st=exited\n"
	"	elif ia_alive; then ia_st=running\n"
	"	elif [ -f \"$d/exit\" ]; then ia_st=exited\n"
	"	elif [ ! -f \"$d/pid\" ] && ia_young; then ia_st=running\n"
	"	else ia_st=vanished\n"
	"	fi\n"
	"	[ $ia_st = exited ] && read -r ia_rc _ <\"$d/exit\"\n"
	/* the log's size after the state: an exited job's log is whole
	 * (the wrapper writes exit once the script's output is in it) */
	"	ia_l=0; [ -f \"$d/log\" ] && ia_l=$(wc -c <\"$d/log\")\n"
	"	printf 'IA-REMOTE %s %s %s %s %s\\n' \"$ia_st\" "
	"\"${ia_rc:--1}\" $ia_l \"$ia_s\" $ia_c\n"
	"}\n";

/*
 * The wrapper, run as `setsid -f bash run.sh DIR WORKDIR NONCE` with
 * stdout and stderr appended to the log.  It takes the "started" marker
 * (or leaves, removing its copy of the script), records its pid, runs the
 * script and records the exit status.  SIGTERM is trapped (not ignored,
 * so the script still gets the default) so that a canceled job's status
 * is recorded once the script is gone.
 */
static const char wrapper[] =
	"#!/bin/bash\n"
	"# instag-agent remote job wrapper: run.sh DIR WORKDIR NONCE\n"
	"d=$1 w=$2 n=$3\n"
	"if ! mkdir -- \"$d/started\" 2>/dev/null; then\n"
	"	rm -f -- \"$d/script.sh.$n\"\n"
	"	exit 0\n"
	"fi\n"
	"mv -f -- \"$d/script.sh.$n\" \"$d/script.sh\"\n"
	"read -r boot </proc/sys/kernel/random/boot_id || boot=none\n"
	"st=$(</proc/$$/stat)\n"
	"st=${st##*) }\n"
	"read -r -a f <<<\"$st\"\n"
	"printf -v now '%(%s)T' -1\n"
	"printf '%s %s %s %s\\n' \"$$\" \"$boot\" \"${f[19]}\" \"$now\" "
	">\"$d/pid.tmp\" &&\n"
	"    mv -f -- \"$d/pid.tmp\" \"$d/pid\"\n"
	"export IA_REMOTE_JOB=$d\n"
	"trap 'ia_term=1' TERM\n"
	"if cd -- \"$w\"; then\n"
	"	bash -- \"$d/script.sh\" </dev/null\n"
	"	rc=$?\n"
	"else\n"
	"	printf 'instag-agent: cannot cd to %s\\n' \"$w\"\n"
	"	rc=126\n"
	"fi\n"
	"printf '%s\\n' \"$rc\" >\"$d/exit.tmp\" && mv -f -- \"$d/exit.tmp\" "
	"\"$d/exit\"\n";

/* ---- errors and validation ---------------------------------------------- */


static bool
id_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static int
check_job_id(const char *id, struct ssh_error *e)
{
	size_t i, n;

	if (id == NULL || (n = strlen(id)) == 0 || n > JOB_ID_MAX) {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "remote: job id must be 1 to %d characters", JOB_ID_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!id_char((unsigned char)id[i])) {
			ssh_error_set(e, SSH_ERR_PROTOCOL,
			    "remote: job id has a character (0x%02x at %zu) "
			    "outside [A-Za-z0-9._-]", (unsigned char)id[i], i);
			return -1;
		}
	}
	if (id[0] == '-' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "remote: job id '%s' is not "
		    "allowed (leading '-', '.' or '..')", id);
		return -1;
	}
	return 0;
}

/* An absolute path without control characters or ".." components. */
static int
check_path(const char *what, const char *path, struct ssh_error *e)
{
	const char *p, *seg;
	size_t n;

	if (path == NULL || path[0] != '/') {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "remote: %s must be an absolute path", what);
		return -1;
	}
	if ((n = strlen(path)) > REMOTE_PATH_MAX) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "remote: %s is "
		    "longer than %d bytes", what, REMOTE_PATH_MAX);
		return -1;
	}
	for (p = path; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			ssh_error_set(e, SSH_ERR_PROTOCOL, "remote: %s has a "
			    "control character (0x%02x at %zu)", what,
			    (unsigned char)*p, (size_t)(p - path));
			return -1;
		}
	}
	for (seg = path; seg != NULL; seg = strchr(seg + 1, '/')) {
		if (strncmp(seg, "/..", 3) == 0 &&
		    (seg[3] == '/' || seg[3] == '\0')) {
			ssh_error_set(e, SSH_ERR_PROTOCOL,
			    "remote: %s '%s' has a '..' component", what, path);
			return -1;
		}
	}
	return 0;
}

/* ---- building commands -------------------------------------------------- */


static void
add_base64(struct strbuf *sb, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	uint32_t v;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		q[0] = tab[v >> 18 & 63];
		q[1] = tab[v >> 12 & 63];
		q[2] = tab[v >> 6 & 63];
		q[3] = tab[v & 63];
		sb_addn(sb, q, 4);
	}
	if (i < n) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		q[0] = tab[v >> 18 & 63];
		q[1] = tab[v >> 12 & 63];
		q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		q[3] = '=';
		sb_addn(sb, q, 4);
	}
}

/* Validate jobs_root and job_id: "<jobs_root>/<job_id>" (caller frees),
 * or NULL with *e. */
static char *
job_dir(const char *jobs_root, const char *job_id, struct ssh_error *e)
{
	struct strbuf dir = SB_INIT;

	if (check_path("jobs_root", jobs_root, e) != 0 ||
	    check_job_id(job_id, e) != 0)
		return NULL;
	sb_adds(&dir, jobs_root);
	if (dir.buf[dir.len - 1] != '/')
		sb_addc(&dir, '/');
	sb_adds(&dir, job_id);
	return sb_take(&dir);
}

/*
 * Validate jobs_root and job_id and start cmd with "d='<jobs_root>/<job_id>'"
 * (quoted) and, when with_prelude, the shell functions.
 */
static int
cmd_begin(struct strbuf *sb, const char *jobs_root, const char *job_id,
    bool with_prelude, struct ssh_error *e)
{
	char *dir;

	if ((dir = job_dir(jobs_root, job_id, e)) == NULL)
		return -1;
	sb_adds(sb, "d=");
	sb_add_shquote(sb, dir);
	sb_adds(sb, "\n");
	if (with_prelude)
		sb_adds(sb, prelude);
	free(dir);
	return 0;
}

/* ---- running them ------------------------------------------------------- */

/* The first line of out that starts with tag, past the tag, up to its end
 * (*n bytes); NULL when none. */
static const char *
find_line(const struct ssh_exec_result *r, const char *tag, size_t *n)
{
	const char *p = r->output, *end = r->output + r->output_len, *nl;
	size_t tl = strlen(tag);

	while (p != NULL && p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if ((size_t)(end - p) >= tl && memcmp(p, tag, tl) == 0) {
			*n = (size_t)((nl != NULL ? nl : end) - p) - tl;
			return p + tl;
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
	return NULL;
}

/* The output's first printable bytes (at most 200) for a message, into
 * out (len bytes). */
static void
output_excerpt(const struct ssh_exec_result *r, char *out, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < r->output_len && i < 200 && o + 1 < len; i++) {
		unsigned char c = (unsigned char)r->output[i];

		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '.';
	}
	out[o] = '\0';
}

/*
 * Run cmd for job_id; a status other than 0 is an error: the
 * "IA-REMOTE-ERR" line's message when there is one.  On success r holds
 * the result (caller clears it).
 */
static int
run(struct ssh_session *s, const char *what, const char *job_id,
    const char *cmd, size_t max_output, long timeout_ms,
    struct ssh_exec_result *r, struct ssh_error *e)
{
	char excerpt[256];
	const char *msg;
	size_t n;

	if (ssh_exec(s, cmd, max_output, timeout_ms, r, e) != 0)
		return -1;
	if (r->exit_status == 0)
		return 0;
	if (r->exit_status == ERR_EXIT &&
	    (msg = find_line(r, ERR_TAG, &n)) != NULL) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "remote: %s of job %s: %.*s",
		    what, job_id, (int)n, msg);
	} else {
		output_excerpt(r, excerpt, sizeof(excerpt));
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "remote: %s of job %s: status %d%s%s: %s", what, job_id,
		    r->exit_status, r->exit_signal != NULL ? ", signal " : "",
		    r->exit_signal != NULL ? r->exit_signal : "", excerpt);
	}
	ssh_exec_result_clear(r);
	return -1;
}

static int
parse_state(const char *word, enum remote_state *state)
{
	if (strcmp(word, "unknown") == 0)
		*state = REMOTE_UNKNOWN;
	else if (strcmp(word, "running") == 0)
		*state = REMOTE_RUNNING;
	else if (strcmp(word, "exited") == 0)
		*state = REMOTE_EXITED;
	else if (strcmp(word, "vanished") == 0)
		*state = REMOTE_VANISHED;
	else
		return -1;
	return 0;
}

/* The "IA-REMOTE state rc log started canceled" line into *st. */
static int
parse_report(const struct ssh_exec_result *r, const char *job_id,
    struct remote_status *st, struct ssh_error *e)
{
	struct remote_status tmp = REMOTE_STATUS_INIT;
	char line[256], word[16], excerpt[256];
	long long log_size, started;
	const char *p;
	int rc, canceled;
	size_t n;

	if ((p = find_line(r, REPORT_TAG, &n)) == NULL || n >= sizeof(line))
		goto bad;
	memcpy(line, p, n);
	line[n] = '\0';
	if (sscanf(line, "%15s %d %lld %lld %d", word, &rc, &log_size,
	    &started, &canceled) != 5 || parse_state(word, &tmp.state) != 0)
		goto bad;
	if (tmp.state == REMOTE_EXITED && (rc < 0 || rc > 255))
		goto bad;
	tmp.exit_status = tmp.state == REMOTE_EXITED ? rc : -1;
	tmp.log_size = log_size;
	tmp.started_at = started;
	tmp.canceled = canceled != 0;
	if (st != NULL)
		*st = tmp;
	return 0;
bad:
	output_excerpt(r, excerpt, sizeof(excerpt));
	ssh_error_set(e, SSH_ERR_PROTOCOL, "remote: job %s: no status in the "
	    "pod's answer: %s", job_id, excerpt);
	return -1;
}

int
remote_parse_report(const char *output, size_t len, const char *job_id,
    struct remote_status *st, struct ssh_error *e)
{
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;

	r.output = (char *)output;	/* read only */
	r.output_len = len;
	r.output_total = len;
	return parse_report(&r, job_id, st, e);
}

/* ---- the job's files, as remote_poll reads them ------------------------- */

/* The length of the first line of text (len bytes). */
static size_t
first_line(const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len);

	return nl != NULL ? (size_t)(nl - text) : len;
}

/* Up to max blank-separated words of [p, p + n) into w[] and wl[] (the
 * shell's read splits on blanks); how many were stored. */
static size_t
split_words(const char *p, size_t n, const char **w, size_t *wl, size_t max)
{
	size_t i = 0, k = 0, start;

	while (k < max) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		w[k] = p + start;
		wl[k++] = i - start;
	}
	return k;
}

/* Are the n bytes at p 1..max decimal digits? */
static bool
all_digits(const char *p, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/* The value of n digits (all_digits, at most 18 of them). */
static int64_t
digits_value(const char *p, size_t n)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

int
remote_parse_pid(const char *text, size_t len, struct remote_pid *pid)
{
	const char *w[4];
	size_t wl[4], n;

	memset(pid, 0, sizeof(*pid));
	if (text == NULL)
		return -1;
	n = split_words(text, first_line(text, len), w, wl, 4);
	if (n == 4 && all_digits(w[3], wl[3], EPOCH_DIGITS))
		pid->started_at = digits_value(w[3], wl[3]);
	if (n < 3 || !all_digits(w[0], wl[0], PGID_DIGITS) ||
	    wl[1] > REMOTE_BOOT_ID_MAX ||
	    !all_digits(w[2], wl[2], REMOTE_TICKS_MAX))
		return -1;
	pid->pgid = (long)digits_value(w[0], wl[0]);
	if (pid->pgid < 1)
		return -1;
	memcpy(pid->boot_id, w[1], wl[1]);
	pid->boot_id[wl[1]] = '\0';
	memcpy(pid->starttime, w[2], wl[2]);
	pid->starttime[wl[2]] = '\0';
	return 0;
}

int
remote_parse_proc_stat(const char *text, size_t len, char *state,
    char *starttime)
{
	const char *w[20], *p = NULL;
	size_t wl[20], n, i;

	*state = '\0';
	starttime[0] = '\0';
	if (text == NULL)
		return -1;
	n = first_line(text, len);
	/* The last ") ": the command name before it may hold anything. */
	for (i = n; i >= 2; i--) {
		if (text[i - 2] == ')' && text[i - 1] == ' ') {
			p = text + i;
			break;
		}
	}
	if (p == NULL)
		return -1;
	if (split_words(p, n - (size_t)(p - text), w, wl, 20) != 20 ||
	    wl[0] != 1 || !((w[0][0] >= 'A' && w[0][0] <= 'Z') ||
	    (w[0][0] >= 'a' && w[0][0] <= 'z')) ||
	    !all_digits(w[19], wl[19], REMOTE_TICKS_MAX))
		return -1;
	*state = w[0][0];
	memcpy(starttime, w[19], wl[19]);
	starttime[wl[19]] = '\0';
	return 0;
}

int
remote_parse_exit(const char *text, size_t len, int *status)
{
	const char *w[1];
	size_t wl[1];
	int64_t v;

	*status = -1;
	if (text == NULL || split_words(text, first_line(text, len), w, wl,
	    1) != 1 || !all_digits(w[0], wl[0], 3))
		return -1;
	if ((v = digits_value(w[0], wl[0])) > 255)
		return -1;
	*status = (int)v;
	return 0;
}

/* The pod's files: the job directory's, and /proc's.  Each is bounded by
 * the poll's deadline. */
struct pollctx {
	struct ssh_session *s;
	const char *dir;	/* <jobs_root>/<job_id> */
	const char *job_id;
	int64_t deadline;
	struct ssh_error *e;
};

/* stat <dir>/<name>. */
static int
job_stat(struct pollctx *c, const char *name, struct podfs_stat *fs)
{
	char *path = xasprintf("%s/%s", c->dir, name);
	int rc = podfs_stat(c->s, path, c->deadline, fs, c->e);

	free(path);
	return rc;
}

/* The first SMALL_MAX bytes of <dir>/<name> when it is a regular file
 * (the shell's [ -f ]) into *text (caller frees), else NULL. */
static int
job_small(struct pollctx *c, const char *name, char **text, size_t *len)
{
	struct podfs_stat fs;
	char *path = xasprintf("%s/%s", c->dir, name);
	bool found;
	int rc = -1;

	*text = NULL;
	*len = 0;
	if (podfs_stat(c->s, path, c->deadline, &fs, c->e) != 0)
		goto cleanup;
	rc = 0;
	if (!fs.is_reg)
		goto cleanup;
	if (fs.size == 0) {
		*text = xstrdup("");
		goto cleanup;
	}
	/* Its size is known: no round trip to find the end.  pid and exit
	 * are written once (tmp + mv). */
	rc = podfs_read(c->s, path, 0, fs.size < SMALL_MAX ?
	    (size_t)fs.size : SMALL_MAX, c->deadline, text, len, &found,
	    c->e);
	if (rc == 0 && !found) {
		free(*text);
		*text = NULL;
	}
cleanup:
	free(path);
	return rc;
}

/* The exit file's status into *status (-1: no exit file). */
static int
job_exit(struct pollctx *c, int *status)
{
	char *text, excerpt[64];
	size_t len, i;

	*status = -1;
	if (job_small(c, "exit", &text, &len) != 0)
		return -1;
	if (text == NULL)
		return 0;
	if (remote_parse_exit(text, len, status) != 0) {
		for (i = 0; i < len && i + 1 < sizeof(excerpt); i++)
			excerpt[i] = text[i] >= 0x20 && text[i] < 0x7f ?
			    text[i] : '.';
		excerpt[i] = '\0';
		ssh_error_set(c->e, SSH_ERR_PROTOCOL, "remote: job %s: its "
		    "exit file holds no status: %s", c->job_id, excerpt);
		free(text);
		return -1;
	}
	free(text);
	return 0;
}

/*
 * The first line of a /proc file into *text (caller frees), NULL when
 * the pod does not let us read it (no such process, hidepid): that is
 * an answer, not an error.
 */
static int
proc_line(struct pollctx *c, const char *path, char **text, size_t *len)
{
	bool found;

	if (podfs_read_line(c->s, path, SMALL_MAX, c->deadline, text, len,
	    &found, c->e) != 0) {
		if (ssh_session_broken(c->s))
			return -1;
		ssh_error_clear(c->e);
		found = false;
	}
	if (!found) {
		free(*text);
		*text = NULL;
	}
	return 0;
}

/* Does the wrapper of pid live: the same boot, /proc/PGID/stat with
 * its start time, not a zombie (in a container nobody may ever reap
 * it)? */
static int
wrapper_alive(struct pollctx *c, const struct remote_pid *pid, bool *alive)
{
	char *text = NULL, path[64], st, ticks[REMOTE_TICKS_MAX + 1];
	const char *boot = "none";
	size_t len, n;
	int rc = -1;

	*alive = false;
	if (proc_line(c, "/proc/sys/kernel/random/boot_id", &text, &len) != 0)
		goto cleanup;
	if (text != NULL) {
		n = first_line(text, len);
		while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
			n--;
		text[n] = '\0';
		boot = text;
	}
	if (strcmp(boot, pid->boot_id) != 0) {
		rc = 0;
		goto cleanup;
	}
	free(text);
	text = NULL;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid->pgid);
	if (proc_line(c, path, &text, &len) != 0)
		goto cleanup;
	*alive = text != NULL && remote_parse_proc_stat(text, len, &st,
	    ticks) == 0 && st != 'Z' && st != 'X' &&
	    strcmp(ticks, pid->starttime) == 0;
	rc = 0;
cleanup:
	free(text);
	return rc;
}

/* The first number of the line of text that starts with key, or -1. */
static int64_t
line_value(const char *text, size_t len, const char *key)
{
	size_t kl = strlen(key), i = 0, n;

	while (i < len) {
		n = first_line(text + i, len - i);
		if (n > kl && memcmp(text + i, key, kl) == 0) {
			const char *p = text + i + kl;
			size_t m = 0;

			while (m < n - kl && p[m] >= '0' && p[m] <= '9')
				m++;
			if (all_digits(p, m, EPOCH_DIGITS))
				return digits_value(p, m);
			return -1;
		}
		i += n + 1;
	}
	return -1;
}

/*
 * The pod's clock (epoch seconds) into *now: /proc/stat's btime plus the
 * whole seconds of /proc/uptime, within a second; this machine's clock
 * when the pod's /proc does not tell.
 */
static int
pod_now(struct pollctx *c, int64_t *now)
{
	char *text = NULL;
	int64_t btime = -1, up = -1;
	size_t len;
	bool found;
	int rc = -1;

	*now = (int64_t)time(NULL);
	if (podfs_read(c->s, "/proc/stat", 0, PROC_STAT_MAX, c->deadline,
	    &text, &len, &found, c->e) != 0) {
		if (ssh_session_broken(c->s))
			goto cleanup;
		ssh_error_clear(c->e);
	} else if (found) {
		btime = line_value(text, len, "btime ");
	}
	free(text);
	text = NULL;
	if (proc_line(c, "/proc/uptime", &text, &len) != 0)
		goto cleanup;
	if (text != NULL)
		up = line_value(text, len, "");
	if (btime > 0 && up >= 0)
		*now = btime + up;
	rc = 0;
cleanup:
	free(text);
	return rc;
}

/* The state of a started job that has no exit file (yet); have_pid: the
 * pid file was there. */
static int
started_state(struct pollctx *c, const struct remote_pid *pid, bool pid_ok,
    bool have_pid, const struct podfs_stat *started,
    struct remote_status *st)
{
	bool alive = false;
	int64_t now;

	if (pid_ok && wrapper_alive(c, pid, &alive) != 0)
		return -1;
	if (alive) {
		st->state = REMOTE_RUNNING;
		return 0;
	}
	/* It may have ended since exit was looked at. */
	if (job_exit(c, &st->exit_status) != 0)
		return -1;
	if (st->exit_status >= 0) {
		st->state = REMOTE_EXITED;
		return 0;
	}
	st->state = REMOTE_VANISHED;
	if (!have_pid) {
		/* The wrapper may not have recorded itself yet. */
		if (pod_now(c, &now) != 0)
			return -1;
		if (now - started->mtime < REMOTE_VANISH_S)
			st->state = REMOTE_RUNNING;
	}
	return 0;
}

int
remote_poll(struct ssh_session *s, const char *jobs_root,
    const char *job_id, struct remote_status *st, struct ssh_error *e)
{
	struct remote_status tmp = REMOTE_STATUS_INIT;
	struct pollctx c;
	struct podfs_stat fs, started;
	struct remote_pid pid;
	char *dir, *text = NULL;
	bool have_pid, pid_ok;
	size_t len;
	int rc = -1;

	ssh_error_clear(e);
	if ((dir = job_dir(jobs_root, job_id, e)) == NULL)
		return -1;
	c.s = s;
	c.dir = dir;
	c.job_id = job_id;
	c.deadline = clock_mono_ms() + REMOTE_EXEC_TIMEOUT_MS;
	c.e = e;
	if (job_stat(&c, "canceled", &fs) != 0)
		goto cleanup;
	tmp.canceled = fs.exists;
	if (job_small(&c, "pid", &text, &len) != 0)
		goto cleanup;
	have_pid = text != NULL;
	pid_ok = remote_parse_pid(text, len, &pid) == 0;
	tmp.started_at = pid.started_at;
	if (job_stat(&c, "started", &started) != 0)
		goto cleanup;
	if (!started.is_dir) {
		tmp.state = REMOTE_UNKNOWN;
	} else {
		if (job_exit(&c, &tmp.exit_status) != 0)
			goto cleanup;
		if (tmp.exit_status >= 0)
			tmp.state = REMOTE_EXITED;
		else if (started_state(&c, &pid, pid_ok, have_pid, &started,
		    &tmp) != 0)
			goto cleanup;
	}
	/* The log's size after the state: an exited job's log is whole
	 * (the wrapper writes exit once the script's output is in it). */
	if (job_stat(&c, "log", &fs) != 0)
		goto cleanup;
	tmp.log_size = fs.is_reg ? fs.size : 0;
	if (st != NULL)
		*st = tmp;
	rc = 0;
cleanup:
	free(text);
	free(dir);
	return rc;
}

/* ---- the API ------------------------------------------------------------- */

int
remote_start(struct ssh_session *s, const char *jobs_root,
    const char *job_id, const char *workdir, const char *script,
    struct remote_status *st, struct ssh_error *e)
{
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct strbuf cmd = SB_INIT;
	size_t n;
	int rc = -1;

	ssh_error_clear(e);
	if (cmd_begin(&cmd, jobs_root, job_id, true, e) != 0 ||
	    check_path("workdir", workdir, e) != 0)
		goto cleanup;
	if (script == NULL || (n = strlen(script)) > REMOTE_SCRIPT_MAX) {
		ssh_error_set(e, SSH_ERR_PROTOCOL,
		    "remote: the script of job %s is missing or "
		    "longer than %d bytes", job_id, REMOTE_SCRIPT_MAX);
		goto cleanup;
	}
	sb_adds(&cmd, "w=");
	sb_add_shquote(&cmd, workdir);
	sb_adds(&cmd, "\nia_n=$$\n"
	    "(umask 077 && mkdir -p -- \"$d\") || ia_fail 'cannot create the "
	    "job directory'\n"
	    "if [ ! -d \"$d/started\" ]; then\n"
	    "printf '%s' '");
	add_base64(&cmd, (const unsigned char *)script, n);
	sb_adds(&cmd, "' | base64 -d >\"$d/script.sh.$ia_n\" ||"
	    " { rm -f -- \"$d/script.sh.$ia_n\"; ia_fail 'cannot write "
	    "script.sh'; }\n"
	    "cat >\"$d/run.sh.$ia_n\" <<'IA_REMOTE_WRAPPER_EOF' || ia_fail "
	    "'cannot write run.sh'\n");
	sb_adds(&cmd, wrapper);
	sb_adds(&cmd, "IA_REMOTE_WRAPPER_EOF\n"
	    "mv -f -- \"$d/run.sh.$ia_n\" \"$d/run.sh\" || ia_fail 'cannot "
	    "write run.sh'\n"
	    "(cd / && exec setsid -f bash \"$d/run.sh\" \"$d\" \"$w\" "
	    "\"$ia_n\" </dev/null >>\"$d/log\" 2>&1) || ia_fail 'cannot "
	    "launch the job (setsid -f)'\n"
	    "ia_i=0\n"
	    "while [ ! -f \"$d/pid\" ] && [ ! -f \"$d/exit\" ] && "
	    "[ $ia_i -lt 100 ]; do sleep 0.02; ia_i=$((ia_i + 1)); done\n"
	    "fi\n"
	    "ia_report\n");
	if (run(s, "start", job_id, sb_str(&cmd), REPORT_MAX,
	    REMOTE_EXEC_TIMEOUT_MS, &r, e) != 0)
		goto cleanup;
	rc = parse_report(&r, job_id, st, e);
cleanup:
	ssh_exec_result_clear(&r);
	sb_free(&cmd);
	return rc;
}

int
remote_poll_exec(struct ssh_session *s, const char *jobs_root,
    const char *job_id, struct remote_status *st, struct ssh_error *e)
{
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct strbuf cmd = SB_INIT;
	int rc = -1;

	ssh_error_clear(e);
	if (cmd_begin(&cmd, jobs_root, job_id, true, e) != 0)
		goto cleanup;
	sb_adds(&cmd, "ia_report\n");
	if (run(s, "poll", job_id, sb_str(&cmd), REPORT_MAX,
	    REMOTE_EXEC_TIMEOUT_MS, &r, e) != 0)
		goto cleanup;
	rc = parse_report(&r, job_id, st, e);
cleanup:
	ssh_exec_result_clear(&r);
	sb_free(&cmd);
	return rc;
}

int
remote_read_log(struct ssh_session *s, const char *jobs_root,
    const char *job_id, int64_t offset, size_t max, char **data,
    size_t *len, struct ssh_error *e)
{
	struct podfs_stat fs;
	char *dir = NULL, *path = NULL;
	int64_t deadline;
	bool found;
	int rc = -1;

	ssh_error_clear(e);
	*data = NULL;
	*len = 0;
	if (offset < 0 || offset > INT64_MAX - 1) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "remote: invalid log offset "
		    "%" PRId64 " for job %s", offset, job_id ? job_id : "?");
		goto cleanup;
	}
	if ((dir = job_dir(jobs_root, job_id, e)) == NULL)
		goto cleanup;
	if (max > REMOTE_READ_MAX)
		max = REMOTE_READ_MAX;
	deadline = clock_mono_ms() + REMOTE_EXEC_TIMEOUT_MS;
	path = xasprintf("%s/log", dir);
	/* A regular file only (a FIFO would block the SFTP server), up to
	 * its size now: no round trip to learn where it ends. */
	if (podfs_stat(s, path, deadline, &fs, e) != 0)
		goto cleanup;
	if (!fs.is_reg || offset >= fs.size) {
		*data = xstrdup("");
		rc = 0;
		goto cleanup;
	}
	if ((uint64_t)(fs.size - offset) < max)
		max = (size_t)(fs.size - offset);
	rc = podfs_read(s, path, offset, max, deadline, data, len, &found, e);
cleanup:
	free(path);
	free(dir);
	return rc;
}

int
remote_cancel(struct ssh_session *s, const char *jobs_root,
    const char *job_id, int grace_s, struct ssh_error *e)
{
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct strbuf cmd = SB_INIT;
	int rc = -1;

	ssh_error_clear(e);
	if (grace_s < 0 || grace_s > REMOTE_GRACE_MAX) {
		ssh_error_set(e, SSH_ERR_PROTOCOL, "remote: cancel grace %d s "
		    "is outside 0..%d", grace_s, REMOTE_GRACE_MAX);
		goto cleanup;
	}
	if (cmd_begin(&cmd, jobs_root, job_id, true, e) != 0)
		goto cleanup;
	/* Wait (1 s at most) for a wrapper that is just starting to record
	 * its pid; then signal whatever of the group lives. */
	sb_addf(&cmd, "ia_g=%d\n", grace_s * 10);
	sb_adds(&cmd,
	    "if [ -d \"$d/started\" ] && [ ! -f \"$d/exit\" ]; then\n"
	    "ia_i=0\n"
	    "while [ ! -f \"$d/pid\" ] && [ ! -f \"$d/exit\" ] && ia_young && "
	    "[ $ia_i -lt 50 ]; do sleep 0.02; ia_i=$((ia_i + 1)); done\n"
	    "if ia_group_live; then\n"
	    ": >\"$d/canceled\"\n"
	    "ia_sig=15\n"
	    "kill -s TERM -- \"-$p\" 2>/dev/null\n"
	    "ia_i=0\n"
	    "while ia_group_live && [ $ia_i -lt $ia_g ]; do sleep 0.1; "
	    "ia_i=$((ia_i + 1)); done\n"
	    "if ia_group_live; then\n"
	    "ia_sig=9\n"
	    "kill -s KILL -- \"-$p\" 2>/dev/null\n"
	    "ia_i=0\n"
	    "while ia_group_live && [ $ia_i -lt 20 ]; do sleep 0.1; "
	    "ia_i=$((ia_i + 1)); done\n"
	    "fi\n"
	    "if [ ! -f \"$d/exit\" ] && ! ia_alive; then\n"
	    "printf '%s\\n' $((128 + ia_sig)) >\"$d/exit.tmp.c\" && "
	    "mv -f -- \"$d/exit.tmp.c\" \"$d/exit\"\n"
	    "fi\n"
	    "fi\n"
	    "fi\n"
	    "ia_report\n");
	if (run(s, "cancel", job_id, sb_str(&cmd), REPORT_MAX,
	    (long)(grace_s + 5) * 1000 + REMOTE_EXEC_TIMEOUT_MS, &r, e) != 0)
		goto cleanup;
	rc = parse_report(&r, job_id, NULL, e);
cleanup:
	ssh_exec_result_clear(&r);
	sb_free(&cmd);
	return rc;
}

int
remote_cleanup(struct ssh_session *s, const char *jobs_root,
    const char *job_id, struct ssh_error *e)
{
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct strbuf cmd = SB_INIT;
	int rc = -1;

	ssh_error_clear(e);
	if (cmd_begin(&cmd, jobs_root, job_id, true, e) != 0)
		goto cleanup;
	sb_adds(&cmd,
	    "[ -e \"$d\" ] || exit 0\n"
	    "if [ -d \"$d/started\" ] && [ ! -f \"$d/exit\" ]; then\n"
	    "if ia_alive || ia_group_live || "
	    "{ [ ! -f \"$d/pid\" ] && ia_young; }; then\n"
	    "ia_fail 'the job is still running'\n"
	    "fi\n"
	    "fi\n"
	    "rm -rf -- \"$d\" || ia_fail 'cannot remove the job directory'\n");
	if (run(s, "cleanup", job_id, sb_str(&cmd), REPORT_MAX,
	    REMOTE_EXEC_TIMEOUT_MS, &r, e) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	ssh_exec_result_clear(&r);
	sb_free(&cmd);
	return rc;
}
