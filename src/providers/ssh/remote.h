/* SPDX-License-Identifier: MIT */
/*
 * remote: detached jobs on a pod that survive SSH drops and agent
 * restarts.  Prefix remote_.
 *
 * A job lives in <jobs_root>/<job_id>/ on the pod:
 *   script.sh  the script, exactly as given
 *   run.sh     the wrapper (a fixed template) that runs it
 *   started/   made by the wrapper with mkdir(2): the atomic marker that
 *              lets one run, and only one, ever happen
 *   pid        "PGID BOOT_ID STARTTIME EPOCH": the wrapper's process group
 *              (it is the group leader, under setsid), the kernel boot id
 *              and the leader's start time in clock ticks (so a pid reused
 *              after a reboot or later is not mistaken for the job), and
 *              the start in epoch seconds; written tmp + mv
 *   log        stdout and stderr of the job, appended
 *   exit       the exit status, 128+N after signal N (as bash reports it);
 *              written tmp + mv by the wrapper, or by remote_cancel when it
 *              had to SIGKILL the wrapper too
 *   canceled   made by remote_cancel
 *
 * The wrapper runs `setsid -f bash run.sh` with stdin from /dev/null and
 * every descriptor redirected (stdout and stderr appended to log), so the
 * SSH channel does not wait for it; it cd's to workdir (a failure is
 * logged and recorded as status 126) and runs `bash script.sh`.
 *
 * A shell is started only to change something: remote_start,
 * remote_cancel and remote_cleanup are one ssh_exec each.  remote_poll
 * and remote_read_log start none: they stat and read the job's files,
 * /proc/<PGID>/stat and the boot id over the session's own SFTP channel
 * (ssh_session_sftp, through podfs), opened once and kept with the
 * session, so that polling costs SFTP round trips (about 14 for a
 * running job, 4 for a log read), not the account's shell start-up (a
 * ~/.bashrc running conda init costs every exec most of a second).  The
 * pod's SFTP server (internal-sftp or sftp-server) must be enabled.
 * Every call is bounded (REMOTE_EXEC_TIMEOUT_MS; remote_cancel grace_s +
 * 5 s), so a task step can call it and go back on the timer queue.  The
 * commands are POSIX sh for the login shell, and need bash, coreutils
 * (base64, setsid -f from util-linux >= 2.31) and a Linux /proc on the
 * pod.
 *
 * Validation: job_id must match ^[A-Za-z0-9._-]{1,64}$, not start with
 * '-' and not be "." or ".."; jobs_root and workdir must be absolute, at
 * most REMOTE_PATH_MAX bytes, without control characters or ".."
 * components.  Anything else fails with SSH_ERR_PROTOCOL before anything
 * is sent; values are always single-quoted in commands, and the script
 * travels base64-encoded (at most REMOTE_SCRIPT_MAX bytes, any bytes).
 *
 * Errors: as in ssh.h: 0, or -1 with *e filled (kind and message).  A
 * failure reported by the pod side (cannot create a directory, a job
 * still running for remote_cleanup, unexpected output) is
 * SSH_ERR_PROTOCOL; transport failures keep ssh_exec's kind (and may leave
 * the session broken: see ssh_session_broken()).
 */
#ifndef IA_REMOTE_H
#define IA_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "providers/ssh/ssh.h"
#include "lib/attrs.h"

#define REMOTE_EXEC_TIMEOUT_MS 15000	/* every exec but remote_cancel */
#define REMOTE_SCRIPT_MAX 65536		/* bytes of script text */
#define REMOTE_PATH_MAX 1024		/* bytes of jobs_root or workdir */
#define REMOTE_READ_MAX (4 * 1024 * 1024)	/* remote_read_log max cap */
#define REMOTE_GRACE_MAX 10		/* remote_cancel grace_s cap */
#define REMOTE_VANISH_S 30	/* "started" without "pid" this long:
				   the wrapper died before recording */

enum remote_state {
	REMOTE_UNKNOWN = 0,	/* never started (no such job) */
	REMOTE_RUNNING,		/* the wrapper (our process group) lives */
	REMOTE_EXITED,		/* exit recorded: see exit_status */
	REMOTE_VANISHED		/* started, no exit recorded, and the
				   wrapper is gone (reboot, SIGKILL) */
};

struct remote_status {
	enum remote_state state;
	int exit_status;	/* REMOTE_EXITED: 0..255; else -1 */
	int64_t log_size;	/* bytes in log now (0 when none) */
	int64_t started_at;	/* epoch s, 0 when not (yet) known */
	bool canceled;		/* remote_cancel was called on it */
};

#define REMOTE_STATUS_INIT { REMOTE_UNKNOWN, -1, 0, 0, false }

/*
 * Create <jobs_root>/<job_id>/ and, unless the job was ever started, write
 * script to script.sh and launch it detached in workdir (which must
 * exist on the pod).  Idempotent: a second call (after a retry, an agent
 * restart) never runs the script again, it only reports.  Waits at most
 * about 2 s (inside the exec) for the wrapper to record its pid.  On
 * success *st (may be NULL) is the job's status, as remote_poll gives it.
 */
WARN_UNUSED_RESULT
int remote_start(struct ssh_session *s, const char *jobs_root,
    const char *job_id, const char *workdir, const char *script,
    struct remote_status *st, struct ssh_error *e);

/*
 * The job's status into *st, over SFTP (no shell): canceled exists;
 * started_at from pid; REMOTE_UNKNOWN without the started/ directory;
 * REMOTE_EXITED with exit; REMOTE_RUNNING while the wrapper lives (pid's
 * PGID has a /proc/PGID/stat, not a zombie, with pid's start time, and
 * the boot id is pid's), or while pid is not written yet and started/ is
 * younger than REMOTE_VANISH_S by the pod's clock (/proc/stat's btime +
 * /proc/uptime); else REMOTE_VANISHED; log_size is the log's size taken
 * after the state (an exited job's log is whole).  A job that was never
 * started is REMOTE_UNKNOWN (a success).
 */
WARN_UNUSED_RESULT
int remote_poll(struct ssh_session *s, const char *jobs_root,
    const char *job_id, struct remote_status *st, struct ssh_error *e);

/*
 * The same status as remote_poll, decided on the pod by the shell report
 * remote_start and remote_cancel end with, in one ssh_exec (so it pays
 * the account's shell start-up).  bench/poll compares the two; the tests
 * check that they agree.
 */
WARN_UNUSED_RESULT
int remote_poll_exec(struct ssh_session *s, const char *jobs_root,
    const char *job_id, struct remote_status *st, struct ssh_error *e);

/*
 * The status report the shell prints (remote_start, remote_cancel,
 * remote_poll_exec): the first line of len bytes of output (any bytes,
 * not NUL-terminated) that starts with "IA-REMOTE " and holds "state rc
 * log_size started canceled", into *st (may be NULL).  0, or -1 with *e
 * (SSH_ERR_PROTOCOL, naming job_id and the output's first printable
 * bytes).  Public for the fuzz harness (fuzz/fuzz_remote.c), as are the
 * parsers of the files remote_poll reads below.
 */
WARN_UNUSED_RESULT
int remote_parse_report(const char *output, size_t len, const char *job_id,
    struct remote_status *st, struct ssh_error *e);

#define REMOTE_BOOT_ID_MAX 64	/* bytes of a boot id kept */
#define REMOTE_TICKS_MAX 20	/* digits of a start time (u64) */

/* The pid file's "PGID BOOT_ID STARTTIME EPOCH". */
struct remote_pid {
	long pgid;		/* 1..99999999 */
	char boot_id[REMOTE_BOOT_ID_MAX + 1];	/* "none": unreadable */
	char starttime[REMOTE_TICKS_MAX + 1];	/* clock ticks, decimal */
	int64_t started_at;	/* EPOCH, 0 when missing or not a number */
};

/*
 * Parse the first line of len bytes of a pid file (any bytes, not
 * NUL-terminated; fields split on blanks, as the shell's read does) into
 * *pid (zeroed first).  0 when PGID, BOOT_ID and STARTTIME are all there
 * and well-formed; else -1, with pid->started_at still set when EPOCH is.
 */
int remote_parse_pid(const char *text, size_t len, struct remote_pid *pid);

/*
 * From the first line of len bytes of /proc/PID/stat (any bytes): the
 * state (field 3, one letter) into *state and the start time (field 22,
 * decimal clock ticks) into starttime (REMOTE_TICKS_MAX + 1 bytes).
 * Fields are counted after the last ") ", which ends the command name
 * (that may hold anything).  0, or -1 when malformed.
 */
int remote_parse_proc_stat(const char *text, size_t len, char *state,
    char *starttime);

/* The exit file's status (its first word, 0..255) into *status: 0, or
 * -1 when it is not one. */
int remote_parse_exit(const char *text, size_t len, int *status);

/*
 * Bytes [offset, offset + max) of the job's log, fewer at its end (none
 * past it, or when there is no log yet); max is capped at
 * REMOTE_READ_MAX.  Binary-safe.  On success *data is a NUL-terminated
 * buffer of *len bytes (may hold NULs); caller frees.
 */
WARN_UNUSED_RESULT
int remote_read_log(struct ssh_session *s, const char *jobs_root,
    const char *job_id, int64_t offset, size_t max, char **data,
    size_t *len, struct ssh_error *e);

/*
 * Cancel a running job: mark it canceled, SIGTERM its whole process
 * group, wait up to grace_s (0..REMOTE_GRACE_MAX) seconds for it to go,
 * then SIGKILL what is left.  The wrapper records 143 after SIGTERM; when
 * it had to be killed itself, 137 is recorded for it.  A job that has
 * finished, vanished (remaining processes of its group are still killed)
 * or never started is a no-op success.
 */
WARN_UNUSED_RESULT
int remote_cancel(struct ssh_session *s, const char *jobs_root,
    const char *job_id, int grace_s, struct ssh_error *e);

/* Remove the job's directory.  Refused (SSH_ERR_PROTOCOL) while the job
 * runs; a job that does not exist is a success. */
WARN_UNUSED_RESULT
int remote_cleanup(struct ssh_session *s, const char *jobs_root,
    const char *job_id, struct ssh_error *e);

#endif
