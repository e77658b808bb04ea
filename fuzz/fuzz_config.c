/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config: config_load on an arbitrary configuration file (the
 * input, written to the harness's private directory as it is).  Checked:
 * a file that is refused says why; one that loads is freed cleanly.  The
 * INSTAG_AGENT_* environment is cleared first so that only the file
 * counts.
 */
#include "auto-config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzzutil.h"

extern char **environ;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char **e;

	fz_quiet();
	for (e = environ; *e != NULL;) {
		if (strncmp(*e, "INSTAG_AGENT_", 13) == 0) {
			char name[128];
			size_t n = strcspn(*e, "=");

			if (n >= sizeof(name))
				abort();
			memcpy(name, *e, n);
			name[n] = '\0';
			unsetenv(name);
			e = environ;
		} else {
			e++;
		}
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char path[300], *err = NULL;

	fz_write("fuzz.conf", (const char *)data, size, 0600, path,
	    sizeof(path));
	if (config_load(path, &cfg, &err) == 0) {
		if (cfg == NULL || err != NULL)
			abort();
		config_free(cfg);
	} else if (cfg != NULL || err == NULL || err[0] == '\0') {
		abort();
	}
	free(err);
	return 0;
}
