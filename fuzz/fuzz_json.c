/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json: ju_parse and ju_utf8_check, the parser every request body,
 * RunPod answer and stored task goes through.  The input is one body, not
 * NUL-terminated.  Checked: a value that parses is valid UTF-8 throughout
 * (ju_parse validates strictly), and what ju_dump prints of it parses
 * again to the same text.
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzzutil.h"
#include "lib/jsonutil.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fz_dup(data, size), *err = NULL, *text = NULL,
	    *again_text = NULL;
	json_object *o = NULL, *again = NULL;

	(void)ju_utf8_check(buf, size);
	if (ju_parse(buf, size, 32, 65536, &o, &err) < 0) {
		if (err == NULL)	/* a failure always says why */
			abort();
		goto cleanup;
	}
	if (ju_utf8_check(buf, size) != size)
		abort();
	text = ju_dump(o);
	if (ju_parse(text, strlen(text), 33, 65536 * 6, &again, &err) < 0)
		abort();
	again_text = ju_dump(again);
	if (strcmp(text, again_text) != 0)
		abort();
cleanup:
	free(err);
	free(text);
	free(again_text);
	json_object_put(o);
	json_object_put(again);
	free(buf);
	return 0;
}
