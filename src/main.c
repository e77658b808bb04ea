/*
 * instag-agent: entry point.  Parses the command line and hands over to the
 * server (run), the config checker or the token minter.
 */
#include "auto-config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "version.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: instag-agent [--config FILE]            run the FastCGI responder\n"
	    "       instag-agent --check-config [--config FILE]\n"
	    "       instag-agent --version\n"
	    "default config file: %s\n", CONFIG_DEFAULT_PATH);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = CONFIG_DEFAULT_PATH;
	struct config *cfg = NULL;
	char *err = NULL;
	int c, check = 0, rc = EXIT_FAILURE;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = 1; break;
		case 'V': printf("instag-agent %s\n", version_string()); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (config_load(path, &cfg, &err) < 0) {
		log_kv(LOG_ERROR, "config_invalid", err, "path", path, NULL);
		goto cleanup;
	}
	if (check) {
		printf("%s: configuration OK\n", path);
		rc = EXIT_SUCCESS;
		goto cleanup;
	}
	usage(stderr);
cleanup:
	free(err);
	config_free(cfg);
	return rc;
}
