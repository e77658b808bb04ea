/* SPDX-License-Identifier: MIT */
/*
 * fuzz_instag: the parsers of a pod's InsTaG log (bytes a remote job
 * wrote: any bytes, not NUL-terminated): instag_parse_progress,
 * instag_log_text and instag_log_tail.  Checked: the progress strings are
 * terminated inside their arrays, the relayed text and tail are valid
 * UTF-8 without the secret or control characters, and the tail keeps at
 * most INSTAG_TAIL_LINES lines of at most INSTAG_TAIL_LINE bytes.
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "instag/instag.h"
#include "lib/jsonutil.h"

#define SECRET "rpa_FUZZSECRETFUZZSECRET42"

static void
check_text(const char *s, size_t len)
{
	size_t i;

	if (ju_utf8_check(s, len) != len || strstr(s, SECRET) != NULL)
		abort();
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct instag_progress p;
	char *buf = fz_dup(data, size), *text;
	json_object *tail, *more;
	size_t i, n;

	memset(&p, 0x5a, sizeof(p));
	instag_parse_progress(buf, size, &p);
	if (memchr(p.label, '\0', sizeof(p.label)) == NULL ||
	    memchr(p.info, '\0', sizeof(p.info)) == NULL ||
	    memchr(p.line, '\0', sizeof(p.line)) == NULL)
		abort();
	text = instag_log_text(buf, size, SECRET);
	check_text(text, strlen(text));
	free(text);
	tail = instag_log_tail(NULL, buf, size, SECRET);
	n = json_object_array_length(tail);
	if (n > INSTAG_TAIL_LINES)
		abort();
	for (i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(tail, i);
		const char *s = json_object_get_string(x);
		size_t len = (size_t)json_object_get_string_len(x);

		if (len == 0 || len > INSTAG_TAIL_LINE)
			abort();
		check_text(s, len);
	}
	/* Appending to a tail keeps its bounds. */
	more = instag_log_tail(tail, buf, size, SECRET);
	if (json_object_array_length(more) > INSTAG_TAIL_LINES)
		abort();
	json_object_put(more);
	json_object_put(tail);
	free(buf);
	return 0;
}
