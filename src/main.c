/* SPDX-License-Identifier: MIT */
/*
 * instag-agent: entry point.  Parses the command line and hands over to the
 * server (run), the config checker or the token minter.  The libraries'
 * global state (curl, libssh2) is set up here, once, before the server
 * starts any thread, and torn down after it has stopped them all.
 */
#include "auto-config.h"

#include <curl/curl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/auth.h"
#include "core/config.h"
#include "providers/runpod/pods.h"
#include "providers/ssh/ssh.h"
#include "lib/log.h"
#include "server/server.h"
#include "lib/version.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: instag-agent [--config FILE]            "
	    "run the FastCGI responder\n"
	    "       instag-agent --check-config [--config FILE]\n"
	    "       instag-agent --version\n"
	    "       instag-agent token [--config FILE] --sub NAME "
	    "--scope \"S1 S2\" [--ttl SECONDS]\n"
	    "                   print a JWT signed with the configured key\n"
	    "default config file: %s\n", CONFIG_DEFAULT_PATH);
}

/* instag-agent token ...: mint a token for administrators and tests. */
static int
cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "sub", required_argument, NULL, 's' },
		{ "scope", required_argument, NULL, 'S' },
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = CONFIG_DEFAULT_PATH, *sub = NULL, *scope = "";
	struct config *cfg = NULL;
	struct auth_ctx *auth = NULL;
	char *err = NULL, *tok = NULL, *end;
	long ttl = 3600;
	int c, rc = EXIT_FAILURE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 's': sub = optarg; break;
		case 'S': scope = optarg; break;
		case 't':
			ttl = strtol(optarg, &end, 10);
			if (*end != '\0' || ttl <= 0) {
				fprintf(stderr, "token: --ttl must be a "
				    "positive number of seconds\n");
				return 2;
			}
			break;
		default: usage(stderr); return 2;
		}
	}
	if (sub == NULL) {
		fprintf(stderr, "token: --sub NAME is required\n");
		return 2;
	}
	if (config_load(path, &cfg, &err) < 0 ||
	    auth_ctx_new(cfg, &auth, &err) < 0) {
		fprintf(stderr, "token: %s\n", err);
		goto cleanup;
	}
	tok = auth_mint(auth, sub, scope, ttl, time(NULL), &err);
	if (tok == NULL) {
		fprintf(stderr, "token: %s\n", err);
		goto cleanup;
	}
	printf("%s\n", tok);
	rc = EXIT_SUCCESS;
cleanup:
	free(tok);
	free(err);
	auth_ctx_free(auth);
	config_free(cfg);
	return rc;
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
	bool curl_up = false, ssh_up = false;

	if (argc > 1 && strcmp(argv[1], "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = 1; break;
		case 'V':
			printf("instag-agent %s\n", version_string());
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (config_load(path, &cfg, &err) < 0) {
		log_kv(LOG_ERROR, "config_invalid", err, "path", path, NULL);
		goto cleanup;
	}
	if (check) {
		/* Also load the keys: a missing, short or world-readable key
		 * file is a configuration error too. */
		struct auth_ctx *auth = NULL;
		if (auth_ctx_new(cfg, &auth, &err) < 0) {
			log_kv(LOG_ERROR, "config_invalid", err, "path", path,
			    NULL);
			goto cleanup;
		}
		auth_ctx_free(auth);
		if (pods_init(cfg, NULL, &err) < 0) {
			log_kv(LOG_ERROR, "config_invalid", err, "path", path,
			    NULL);
			goto cleanup;
		}
		pods_shutdown();
		printf("%s: configuration OK\n", path);
		rc = EXIT_SUCCESS;
		goto cleanup;
	}
	if (optind < argc) {
		usage(stderr);
		rc = 2;
		goto cleanup;
	}
#ifdef M_ARENA_MAX
	/*
	 * glibc gives each thread that allocates its own arena, up to 8 per
	 * core; the agent's dozen threads (request, executor, hub, push,
	 * checkpointer...) then keep a dozen partly used heaps.  Four arenas
	 * hold its memory flat: bench/request-path after a million requests,
	 * VmRSS 24.1 MiB with glibc's default, 20.3 MiB with 2 arenas.  An
	 * operator's MALLOC_ARENA_MAX still wins.
	 */
	if (getenv("MALLOC_ARENA_MAX") == NULL)
		(void)mallopt(M_ARENA_MAX, 4);
#endif
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl_up = true;
	if (ssh_global_init() < 0) {
		log_kv(LOG_ERROR, "startup_failed",
		    "libssh2 failed to initialise", NULL);
		goto cleanup;
	}
	ssh_up = true;
	rc = server_run(cfg);
cleanup:
	if (ssh_up)
		ssh_global_cleanup();
	if (curl_up)
		curl_global_cleanup();
	free(err);
	config_free(cfg);
	return rc;
}
