/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "a2a/a2a.h"
#include "a2a/card.h"
#include "a2a/envelope.h"
#include "a2a/notify.h"
#include "fuzzutil.h"
#include "lib/log.h"
#include "ops/ops.h"
#include "store/store.h"
#include "tasks/tasks.h"

static char dir[256];

char *
fz_dup(const uint8_t *data, size_t size)
{
	char *p = malloc(size > 0 ? size : 1);

	if (p == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	return p;
}

char *
fz_str(const uint8_t *data, size_t size)
{
	char *p = malloc(size + 1);

	if (p == NULL)
		abort();
	if (size > 0)
		memcpy(p, data, size);
	p[size] = '\0';
	return p;
}

static void
fz_cleanup(void)
{
	char cmd[300];

	if (dir[0] == '\0')
		return;
	/* The directory holds only what the harness made in it. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *
fz_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (dir[0] != '\0')
		return dir;
	snprintf(dir, sizeof(dir), "%s/ia-fuzz-XXXXXX",
	    tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(fz_cleanup);
	return dir;
}

void
fz_write(const char *name, const char *text, size_t len, int mode,
    char *out, size_t outlen)
{
	int fd;

	snprintf(out, outlen, "%s/%s", fz_dir(), name);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || (len > 0 && write(fd, text, len) != (ssize_t)len) ||
	    fchmod(fd, (mode_t)mode) != 0 || close(fd) != 0) {
		perror("fuzz: write");
		abort();
	}
}

struct config *
fz_config(const char *extra)
{
	static const char secret[] = "fuzz-secret-0123456789abcdef0123456789";
	char key[300], path[300], *text = NULL, *err = NULL;
	struct config *cfg = NULL;

	fz_write("jwt.key", secret, sizeof(secret) - 1, 0600, key,
	    sizeof(key));
	if (asprintf(&text, "jwt_issuer = fuzz-issuer\njwt_key_file = %s\n"
	    "store_path = %s/tasks.db\nartifact_dir = %s\n%s", key, fz_dir(),
	    fz_dir(), extra != NULL ? extra : "") < 0)
		abort();
	fz_write("agent.conf", text, strlen(text), 0600, path, sizeof(path));
	free(text);
	if (config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "fuzz: config: %s\n", err ? err : "?");
		abort();
	}
	return cfg;
}

void
fz_principal(struct principal *p, const char *sub, const char *scopes)
{
	char *copy = strdup(scopes), *tok, *save = NULL;

	memset(p, 0, sizeof(*p));
	p->sub = strdup(sub);
	p->scopes = calloc(16, sizeof(*p->scopes));
	if (copy == NULL || p->sub == NULL || p->scopes == NULL)
		abort();
	for (tok = strtok_r(copy, " ", &save); tok != NULL && p->nscopes < 16;
	    tok = strtok_r(NULL, " ", &save))
		p->scopes[p->nscopes++] = strdup(tok);
	p->exp = 4102444800L;
	free(copy);
}

void
fz_quiet(void)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (fd >= 0)
		log_set_fd(fd);
	log_set_level(LOG_ERROR);
}

/* ---- the request path's state ------------------------------------------ */

static struct config *agent_cfg;
static struct store *agent_store;
static unsigned long agent_requests;

static void
fz_listener(const struct task *t)
{
	(void)t;
}

static void
fz_agent_open(void)
{
	char *err = NULL;

	if (store_open(agent_cfg->store_path, NULL, &agent_store, &err) < 0 ||
	    tasks_start(agent_cfg, agent_store, fz_listener, ops_resolve,
	    &err) < 0) {
		fprintf(stderr, "fuzz: agent: %s\n", err ? err : "?");
		abort();
	}
	notify_init(agent_store);
}

static void
fz_agent_close(void)
{
	char path[400];

	tasks_stop(2);
	notify_init(NULL);
	store_close(agent_store);
	agent_store = NULL;
	unlink(agent_cfg->store_path);
	snprintf(path, sizeof(path), "%s-wal", agent_cfg->store_path);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", agent_cfg->store_path);
	unlink(path);
}

const struct config *
fz_agent_start(const char *extra)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	agent_cfg = fz_config(extra);
	fz_agent_open();
	card_init(agent_cfg);
	a2a_init(agent_cfg);
	envelope_init(agent_cfg);
	atexit(fz_agent_close);
	return agent_cfg;
}

void
fz_agent_tick(void)
{
	if (++agent_requests % FZ_RECYCLE != 0)
		return;
	fz_agent_close();
	fz_agent_open();
}
