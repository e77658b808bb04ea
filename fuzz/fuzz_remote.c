/* SPDX-License-Identifier: MIT */
/*
 * fuzz_remote: the parsers of what a pod answers about a detached job.
 * The input (any bytes, not NUL-terminated) goes to each of them:
 *
 *   remote_parse_report     the status line the shell prints ("IA-REMOTE
 *                           state rc log_size started canceled", among
 *                           whatever a login shell adds)
 *   remote_parse_pid        a pid file ("PGID BOOT_ID STARTTIME EPOCH"),
 *                           read over SFTP by remote_poll
 *   remote_parse_proc_stat  a /proc/PID/stat line (a command name may
 *                           hold anything, ") " included)
 *   remote_parse_exit       an exit file
 *
 * Checked: a report that parses is a known state with an exit status in
 * 0..255 exactly when it exited, and a refusal carries a protocol error
 * message of bounded length; the file parsers fill only their bounded
 * fields, with values in range, and NUL-terminated.  Reads past the
 * input show up under ASan (the copy is exactly size bytes).
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "providers/ssh/remote.h"
#include "providers/ssh/ssh.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void
check_report(const char *buf, size_t size)
{
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;

	if (remote_parse_report(buf, size, "job-1", &st, &e) == 0) {
		if (e.message != NULL)
			abort();
		if (st.state != REMOTE_UNKNOWN && st.state != REMOTE_RUNNING &&
		    st.state != REMOTE_EXITED && st.state != REMOTE_VANISHED)
			abort();
		if (st.state == REMOTE_EXITED ? st.exit_status < 0 ||
		    st.exit_status > 255 : st.exit_status != -1)
			abort();
	} else if (e.kind != SSH_ERR_PROTOCOL || e.message == NULL ||
	    strlen(e.message) > 512) {
		abort();
	}
	ssh_error_clear(&e);
}

static void
check_files(const char *buf, size_t size)
{
	struct remote_pid pid;
	char state, ticks[REMOTE_TICKS_MAX + 1];
	int status;

	if (remote_parse_pid(buf, size, &pid) == 0) {
		if (pid.pgid < 1 || pid.pgid > 99999999 ||
		    strlen(pid.boot_id) > REMOTE_BOOT_ID_MAX ||
		    !all_digits(pid.starttime) ||
		    strlen(pid.starttime) > REMOTE_TICKS_MAX)
			abort();
	} else if (pid.pgid != 0 || pid.boot_id[0] != '\0' ||
	    pid.starttime[0] != '\0') {
		abort();
	}
	if (pid.started_at < 0)
		abort();
	if (remote_parse_proc_stat(buf, size, &state, ticks) == 0) {
		if (!((state >= 'A' && state <= 'Z') ||
		    (state >= 'a' && state <= 'z')) || !all_digits(ticks) ||
		    strlen(ticks) > REMOTE_TICKS_MAX)
			abort();
	}
	if (remote_parse_exit(buf, size, &status) == 0 ?
	    status < 0 || status > 255 : status != -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fz_dup(data, size);

	check_report(buf, size);
	check_files(buf, size);
	free(buf);
	return 0;
}
