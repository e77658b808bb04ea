/* SPDX-License-Identifier: MIT */
/*
 * fuzz_remote: remote_parse_report, the parser of the status line a pod
 * prints for a detached job ("IA-REMOTE state rc log_size started
 * canceled", among whatever a login shell adds).  The input is the
 * command's output, not NUL-terminated.  Checked: a report that parses is
 * a known state with an exit status in 0..255 exactly when it exited; a
 * refusal always carries a protocol error message of bounded length.
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remote_status st = REMOTE_STATUS_INIT;
	struct ssh_error e = SSH_ERROR_INIT;
	char *buf = fz_dup(data, size);

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
	free(buf);
	return 0;
}
