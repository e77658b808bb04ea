/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define KEY(n, t, d, lo, hi) { #n, t, offsetof(struct config, n), d, lo, hi }

const struct config_key config_keys[] = {
	KEY(listen,               CFG_STR,   "", 0, 0),
	KEY(listen_mode,          CFG_OCTAL, "0660", 0, 0777),
	KEY(listen_backlog,       CFG_INT,   "1024", 1, 65535),
	KEY(request_threads,      CFG_INT,   "8", 1, 256),
	KEY(executor_threads,     CFG_INT,   "4", 1, 256),
	KEY(shutdown_grace,       CFG_INT,   "20", 1, 600),
	KEY(store_path,           CFG_STR,   "/var/lib/instag-agent/tasks.db",
	    0, 0),
	KEY(store,                CFG_STR,   "", 0, 0),
	KEY(store_password_file,  CFG_STR,   "", 0, 0),
	KEY(lease_seconds,        CFG_INT,   "30", 2, 3600),
	KEY(artifact_dir,         CFG_STR,   "/var/lib/instag-agent/artifacts",
	    0, 0),
	KEY(ready_min_free_mb,    CFG_INT,   "64", 0, 1048576),
	KEY(public_url,           CFG_STR,   "https://localhost/agents/instag",
	    0, 0),
	KEY(agent_id,             CFG_STR,   "instag_runpod_agent", 0, 0),
	KEY(agent_name,           CFG_STR,   "InsTaG RunPod Agent", 0, 0),
	KEY(jwt_alg,              CFG_STR,   "HS256", 0, 0),
	KEY(jwt_key_file,         CFG_STR,   "/etc/instag-agent/jwt.key", 0, 0),
	KEY(jwt_signing_key_file, CFG_STR,   "", 0, 0),
	KEY(jwt_issuer,           CFG_STR,   "", 0, 0),
	KEY(jwt_audience,         CFG_STR,   "instag-agent", 0, 0),
	KEY(jwt_leeway,           CFG_INT,   "30", 0, 300),
	KEY(max_body_bytes,       CFG_INT,   "1048576", 1024, 1073741824),
	KEY(max_json_depth,       CFG_INT,   "32", 2, 1000),
	KEY(max_string_bytes,     CFG_INT,   "65536", 64, 16777216),
	KEY(max_params,           CFG_INT,   "64", 1, 4096),
	KEY(task_history_max,     CFG_INT,   "50", 1, 1000),
	KEY(input_required_timeout, CFG_INT, "3600", 1, 604800),
	KEY(blocking_wait_max,    CFG_INT,   "30", 0, 3600),
	KEY(sse_heartbeat,        CFG_INT,   "15", 1, 300),
	KEY(sse_max_streams,      CFG_INT,   "1024", 1, 100000),
	KEY(push_timeout,         CFG_INT,   "10", 1, 120),
	KEY(push_max_attempts,    CFG_INT,   "5", 1, 50),
	KEY(outbound_ca_file,     CFG_STR,   "", 0, 0),
	KEY(ssrf_allow,           CFG_STR,   "", 0, 0),
	KEY(runpod_url,           CFG_STR,   "https://api.runpod.io", 0, 0),
	KEY(runpod_api_key_file,  CFG_STR,   "", 0, 0),
	KEY(runpod_ca_file,       CFG_STR,   "", 0, 0),
	KEY(runpod_timeout,       CFG_INT,   "20", 1, 300),
	KEY(runpod_image,         CFG_STR,
	    "runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel-ubuntu22.04", 0, 0),
	KEY(pod_name_prefix,      CFG_STR,   "instag-agent", 0, 0),
	KEY(provision_timeout,    CFG_INT,   "900", 10, 86400),
	KEY(provision_poll_ms,    CFG_INT,   "2000", 10, 60000),
	KEY(max_runtime_minutes,  CFG_INT,   "240", 1, 10080),
	KEY(max_cost_usd,         CFG_STR,   "20", 0, 0),
	KEY(cost_guard_interval,  CFG_INT,   "60", 1, 3600),
	KEY(reaper_mode,          CFG_STR,   "report", 0, 0),
	KEY(reaper_interval,      CFG_INT,   "600", 0, 86400),
	KEY(pod_idle_minutes,     CFG_INT,   "30", 0, 10080),
	KEY(pod_idle_action,      CFG_STR,   "stop", 0, 0),
	KEY(pipeline_max_recoveries, CFG_INT, "2", 0, 10),
	KEY(pipeline_pod_check_s, CFG_INT,   "60", 1, 3600),
	KEY(ssh_key_file,         CFG_STR,   "", 0, 0),
	KEY(ssh_user,             CFG_STR,   "root", 0, 0),
	KEY(ssh_timeout,          CFG_INT,   "10", 1, 120),
	KEY(ssh_hosts,            CFG_STR,   "", 0, 0),
	KEY(ssh_known_hosts,      CFG_STR,   "", 0, 0),
	KEY(ssh_host_owners,      CFG_STR,   "", 0, 0),
	KEY(pod_work_root,        CFG_STR,   "/workspace/instag-agent", 0, 0),
	KEY(pod_env_init,         CFG_STR,   "", 0, 0),
	KEY(pod_volume_path,      CFG_STR,   "/workspace", 0, 0),
	KEY(instag_repo_url,      CFG_STR,
	    "https://github.com/Fictionarry/InsTaG.git", 0, 0),
	KEY(instag_commit,        CFG_STR,   "42f68f8", 0, 0),
	KEY(job_poll_ms,          CFG_INT,   "2000", 10, 60000),
	KEY(nats_url,             CFG_STR,   "", 0, 0),
	KEY(nats_token_file,      CFG_STR,   "", 0, 0),
	KEY(diagnostics,          CFG_BOOL,  "false", 0, 0),
	KEY(log_level,            CFG_STR,   "info", 0, 0),
	{ NULL, CFG_STR, 0, NULL, 0, 0 }
};

static const struct config_key *
config_find_key(const char *name)
{
	const struct config_key *k;

	for (k = config_keys; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Store text into the field described by k; -1 and *err on bad value. */
static int
config_set(struct config *cfg, const struct config_key *k, const char *text,
    const char *where, char **err)
{
	char *base = (char *)cfg + k->offset;
	char *end;
	long v;

	switch (k->type) {
	case CFG_STR:
		free(*(char **)base);
		*(char **)base = xstrdup(text);
		return 0;
	case CFG_BOOL:
		if (!strcmp(text, "true") || !strcmp(text, "yes") ||
		    !strcmp(text, "on") || !strcmp(text, "1"))
			*(bool *)base = true;
		else if (!strcmp(text, "false") || !strcmp(text, "no") ||
		    !strcmp(text, "off") || !strcmp(text, "0"))
			*(bool *)base = false;
		else
			goto bad;
		return 0;
	case CFG_INT:
	case CFG_OCTAL:
		errno = 0;
		v = strtol(text, &end, k->type == CFG_OCTAL ? 8 : 10);
		if (errno != 0 || end == text || *end != '\0')
			goto bad;
		if (v < k->min || v > k->max) {
			*err = xasprintf(k->type == CFG_OCTAL ?
			    "%s: %s must be between %lo and %lo (octal), "
			    "got '%s'" :
			    "%s: %s must be between %ld and %ld, got '%s'",
			    where, k->name, k->min, k->max, text);
			return -1;
		}
		*(long *)base = v;
		return 0;
	}
bad:
	*err = xasprintf("%s: %s: invalid %s value '%s'", where, k->name,
	    k->type == CFG_BOOL ? "boolean (true/false)" :
	    k->type == CFG_OCTAL ? "octal" : "integer", text);
	return -1;
}

static int
config_read_file(struct config *cfg, const char *path, char **err)
{
	FILE *fp;
	char line[4096];
	char where[512];
	unsigned char *seen;
	size_t nkeys = 0;
	int lineno = 0, rc = -1;

	for (const struct config_key *k = config_keys; k->name; k++)
		nkeys++;
	seen = xcalloc(nkeys, 1);

	fp = fopen(path, "r");
	if (fp == NULL) {
		*err = xasprintf("cannot open config file %s: %s", path,
		    strerror(errno));
		goto cleanup;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *p, *eq, *key, *val;
		const struct config_key *k;
		size_t vlen;

		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			*err = xasprintf("%s: line longer than %zu bytes",
			    where, sizeof(line) - 2);
			goto cleanup;
		}
		p = trim(line);
		if (*p == '\0' || *p == '#' || *p == ';')
			continue;
		eq = strchr(p, '=');
		if (eq == NULL) {
			*err = xasprintf("%s: expected 'key = value'", where);
			goto cleanup;
		}
		*eq = '\0';
		key = trim(p);
		val = trim(eq + 1);
		vlen = strlen(val);
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
			val[vlen - 1] = '\0';
			val++;
		}
		k = config_find_key(key);
		if (k == NULL) {
			*err = xasprintf("%s: unknown key '%s'", where, key);
			goto cleanup;
		}
		if (seen[k - config_keys]) {
			*err = xasprintf("%s: key '%s' given twice", where,
			    key);
			goto cleanup;
		}
		seen[k - config_keys] = 1;
		if (config_set(cfg, k, val, where, err) < 0)
			goto cleanup;
	}
	if (ferror(fp)) {
		*err = xasprintf("error reading %s", path);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (fp != NULL)
		fclose(fp);
	free(seen);
	return rc;
}

static int
config_apply_env(struct config *cfg, char **err)
{
	const struct config_key *k;
	char name[128], where[160];
	const char *v;
	size_t i;

	for (k = config_keys; k->name != NULL; k++) {
		snprintf(name, sizeof(name), "INSTAG_AGENT_%s", k->name);
		for (i = strlen("INSTAG_AGENT_"); name[i]; i++)
			name[i] = (char)toupper((unsigned char)name[i]);
		v = getenv(name);
		if (v == NULL)
			continue;
		snprintf(where, sizeof(where), "environment %s", name);
		if (config_set(cfg, k, v, where, err) < 0)
			return -1;
	}
	return 0;
}

int
config_parse_cidr(const char *s, unsigned char addr[16], int *family,
    int *prefix)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	long p;
	char *end;

	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, host, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, host, addr) == 1)
		*family = AF_INET6;
	else
		return -1;
	if (slash == NULL) {
		*prefix = *family == AF_INET ? 32 : 128;
		return 0;
	}
	errno = 0;
	p = strtol(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end != '\0' || p < 0 ||
	    p > (*family == AF_INET ? 32 : 128))
		return -1;
	*prefix = (int)p;
	return 0;
}

static bool
is_identifier(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' &&
		    *s != '.')
			return false;
	return n > 0 && n <= max;
}

/* An absolute path without "..", quotes or control characters: it goes
 * into remote command lines (quoted, but refused when odd anyway). */
static bool
is_remote_path(const char *p)
{
	const char *q;

	if (p[0] != '/' || strstr(p, "/../") || strstr(p, "/./") ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
		return false;
	for (q = p; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == '\'' ||
		    *q == '"' || *q == '\\' || *q == '`' || *q == '$')
			return false;
	return true;
}

static int
config_check_remote(struct config *cfg, char **err)
{
	const char *c = cfg->instag_commit;
	size_t i, n = strlen(c);

	if (!is_remote_path(cfg->pod_work_root)) {
		*err = xasprintf("pod_work_root: must be an absolute path "
		    "without '..', quotes, '$', '`' or control characters");
		return -1;
	}
	if (!is_remote_path(cfg->pod_volume_path)) {
		*err = xasprintf("pod_volume_path: must be an absolute path "
		    "like pod_work_root");
		return -1;
	}
	if (cfg->pod_env_init[0] != '\0' &&
	    !is_remote_path(cfg->pod_env_init)) {
		*err = xasprintf("pod_env_init: must be empty or an absolute "
		    "path like pod_work_root");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)c[i]))
			break;
	if (n < 7 || n > 40 || i != n) {
		*err = xasprintf("instag_commit: must be a commit id (7 to 40 "
		    "hex digits), got '%s'", c);
		return -1;
	}
	if (strncmp(cfg->instag_repo_url, "https://", 8) != 0 &&
	    !is_remote_path(cfg->instag_repo_url)) {
		*err = xasprintf("instag_repo_url: must be an https:// URL or "
		    "an absolute path on the pod");
		return -1;
	}
	for (i = 0; cfg->instag_repo_url[i]; i++)
		if ((unsigned char)cfg->instag_repo_url[i] <= 0x20 ||
		    strchr("'\"\\`$;|&<>", cfg->instag_repo_url[i])) {
			*err = xasprintf("instag_repo_url: invalid character");
			return -1;
		}
	return 0;
}

static int
config_validate_runpod(struct config *cfg, char **err)
{
	const char *u = cfg->runpod_url;
	char *end;
	size_t i;

	if (strncmp(u, "https://", 8) != 0 &&
	    strncmp(u, "http://127.0.0.1", 16) != 0 &&
	    strncmp(u, "http://[::1]", 12) != 0) {
		*err = xasprintf("runpod_url: must start with https:// (plain "
		    "http only to 127.0.0.1 or [::1], for tests), got '%s'", u);
		return -1;
	}
	errno = 0;
	cfg->max_cost = strtod(cfg->max_cost_usd, &end);
	if (errno != 0 || end == cfg->max_cost_usd || *end != '\0' ||
	    !(cfg->max_cost >= 0.01 && cfg->max_cost <= 10000)) {
		*err = xasprintf("max_cost_usd: must be a number from 0.01 to "
		    "10000, got '%s'", cfg->max_cost_usd);
		return -1;
	}
	if (strcmp(cfg->reaper_mode, "off") != 0 &&
	    strcmp(cfg->reaper_mode, "report") != 0 &&
	    strcmp(cfg->reaper_mode, "terminate") != 0) {
		*err = xasprintf("reaper_mode: must be off, report or "
		    "terminate; got '%s'", cfg->reaper_mode);
		return -1;
	}
	if (strcmp(cfg->pod_idle_action, "stop") != 0 &&
	    strcmp(cfg->pod_idle_action, "terminate") != 0) {
		*err = xasprintf("pod_idle_action: must be stop or terminate; "
		    "got '%s'", cfg->pod_idle_action);
		return -1;
	}
	/* The prefix names pods: <prefix>-<task id>, at most 191 bytes. */
	if (!is_identifier(cfg->pod_name_prefix, 64)) {
		*err = xasprintf("pod_name_prefix: must match "
		    "[A-Za-z0-9._-]{1,64}");
		return -1;
	}
	if (!is_identifier(cfg->ssh_user, 32) || cfg->ssh_user[0] == '-') {
		*err = xasprintf("ssh_user: must match [A-Za-z0-9._-]{1,32}");
		return -1;
	}
	if (config_check_remote(cfg, err) < 0)
		return -1;
	for (i = 0; cfg->runpod_image[i]; i++)
		if (!isalnum((unsigned char)cfg->runpod_image[i]) &&
		    !strchr("._-/:@", cfg->runpod_image[i]))
			break;
	if (i == 0 || cfg->runpod_image[i] != '\0' || i > 255) {
		*err = xasprintf("runpod_image: must be a container image "
		    "reference ([A-Za-z0-9._-/:@], up to 255)");
		return -1;
	}
	return 0;
}

/* Does HOST (name or name:port) of an ssh_host_owners entry name an
 * entry of ssh_hosts (by name, and by port when it gives one)? */
static bool
config_host_listed(const struct config *cfg, const char *host)
{
	char *list = xstrdup(cfg->ssh_hosts), *tok, *save = NULL;
	size_t hn = strcspn(host, ":");
	int hp = host[hn] == ':' ? atoi(host + hn + 1) : 0;
	bool found = false;

	for (tok = strtok_r(list, ", \t", &save); tok && !found;
	    tok = strtok_r(NULL, ", \t", &save)) {
		size_t tn = strcspn(tok, ":");
		int tp = tok[tn] == ':' ? atoi(tok + tn + 1) : 22;

		found = tn == hn && strncmp(tok, host, hn) == 0 &&
		    (hp == 0 || hp == tp);
	}
	free(list);
	return found;
}

/* ssh_host_owners: entries HOST=SUB separated by spaces, HOST naming an
 * entry of ssh_hosts. */
static int
config_check_host_owners(const struct config *cfg, char **err)
{
	char *list = xstrdup(cfg->ssh_host_owners), *tok, *save = NULL;
	int rc = 0;

	for (tok = strtok_r(list, " \t", &save); tok && rc == 0;
	    tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '='), *colon;
		long port = 22;

		if (eq == NULL || eq == tok || eq[1] == '\0') {
			*err = xasprintf("ssh_host_owners: '%s' is not "
			    "HOST=SUB (e.g. gpu1=alice gpu1=bob)", tok);
			rc = -1;
			break;
		}
		*eq = '\0';
		colon = strchr(tok, ':');
		if (colon != NULL) {
			char *end;
			errno = 0;
			port = strtol(colon + 1, &end, 10);
			if (errno != 0 || end == colon + 1 || *end != '\0')
				port = 0;
		}
		if (port < 1 || port > 65535 ||
		    !config_host_listed(cfg, tok)) {
			*err = xasprintf("ssh_host_owners: host '%s' is not "
			    "one of ssh_hosts", tok);
			rc = -1;
		}
	}
	free(list);
	return rc;
}

/* One server of nats_url: nats://HOST[:PORT], HOST a name, an IPv4
 * address or [IPv6]; no credentials in it (nats_token_file holds those). */
static bool
config_nats_server_ok(const char *u)
{
	const char *h = u + 7, *p;
	size_t hn;

	if (strncmp(u, "nats://", 7) != 0)
		return false;
	if (*h == '[') {
		p = strchr(h, ']');
		if (p == NULL || p == h + 1)
			return false;
		hn = (size_t)(p - h) + 1;
		for (p = h + 1; *p != ']'; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' &&
			    *p != '.')
				return false;
	} else {
		hn = strcspn(h, ":");
		if (hn == 0 || hn > 253)
			return false;
		for (p = h; p < h + hn; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' &&
			    *p != '-')
				return false;
	}
	p = h + hn;
	if (*p == '\0')
		return true;
	if (*p++ != ':' || strlen(p) < 1 || strlen(p) > 5 ||
	    strspn(p, "0123456789") != strlen(p))
		return false;
	return atoi(p) >= 1 && atoi(p) <= 65535;
}

const char *
config_store_spec(const struct config *cfg)
{
	return cfg->store[0] != '\0' ? cfg->store : cfg->store_path;
}

bool
config_store_is_postgresql(const struct config *cfg)
{
	return strncmp(cfg->store, "postgresql:", 11) == 0 ||
	    strncmp(cfg->store, "postgres://", 11) == 0;
}

/*
 * Whether a PostgreSQL spec carries a password: a URL's user:password@,
 * or a password parameter (URL query or key=value).  Conservative: a ':'
 * anywhere in a URL's user part counts.
 */
static bool
config_store_has_password(const char *spec)
{
	const char *p = strstr(spec, "://"), *at, *end;

	if (p != NULL) {
		p += 3;
		end = p + strcspn(p, "/?");
		at = memchr(p, '@', (size_t)(end - p));
		if (at != NULL && memchr(p, ':', (size_t)(at - p)) != NULL)
			return true;
	}
	return strstr(spec, "password") != NULL;
}

/* store: empty (SQLite at store_path), sqlite:/abs/path, or a PostgreSQL
 * URL without a password; store_password_file only with PostgreSQL. */
static int
config_check_store(const struct config *cfg, char **err)
{
	const char *s = cfg->store;

	if (s[0] == '\0' || strncmp(s, "sqlite:", 7) == 0) {
		const char *path = s[0] ? s + 7 : cfg->store_path;

		if (path[0] != '/') {
			*err = xasprintf("%s: the SQLite file must be an "
			    "absolute path", s[0] ? "store" : "store_path");
			return -1;
		}
		if (cfg->store_password_file[0] != '\0') {
			*err = xasprintf("store_password_file: only for a "
			    "PostgreSQL store (store = postgresql://...)");
			return -1;
		}
		return 0;
	}
	if (!config_store_is_postgresql(cfg)) {
		*err = xasprintf("store: expected sqlite:/PATH or "
		    "postgresql://USER@HOST:PORT/DATABASE");
		return -1;
	}
#ifndef HAVE_LIBPQ
	*err = xasprintf("store: this build has no PostgreSQL support "
	    "(configure found no libpq, or was given --without-postgresql); "
	    "use SQLite or rebuild with libpq-dev");
	return -1;
#endif
	if (config_store_has_password(s)) {
		/* Never echoed: it holds a password. */
		*err = xasprintf("store: the URL holds a password; put the "
		    "password in store_password_file instead");
		return -1;
	}
	if (cfg->store_password_file[0] != '\0' &&
	    cfg->store_password_file[0] != '/') {
		*err = xasprintf("store_password_file: must be an absolute "
		    "path");
		return -1;
	}
	return 0;
}

/* nats_url: empty (off) or nats://HOST[:PORT] servers separated by
 * commas; nats_token_file only with it. */
static int
config_check_nats(const struct config *cfg, char **err)
{
	char *list, *tok, *save = NULL;
	int rc = 0;

	if (cfg->nats_url[0] == '\0') {
		if (cfg->nats_token_file[0] != '\0') {
			*err = xasprintf("nats_token_file: set without "
			    "nats_url");
			return -1;
		}
		return 0;
	}
#ifndef HAVE_NATS
	*err = xasprintf("nats_url: this build has no NATS support "
	    "(configure found no libnats, or was given --without-nats); "
	    "leave nats_url empty or rebuild with libnats-dev");
	return -1;
#endif
	if (strlen(cfg->nats_url) > 1024) {
		*err = xasprintf("nats_url: longer than 1024 bytes");
		return -1;
	}
	list = xstrdup(cfg->nats_url);
	for (tok = strtok_r(list, ",", &save); tok && rc == 0;
	    tok = strtok_r(NULL, ",", &save))
		if (!config_nats_server_ok(trim(tok))) {
			/* Not echoed when it may hold a password. */
			*err = xasprintf("nats_url: expected nats://HOST:PORT "
			    "(several separated by commas; no user or "
			    "password: use nats_token_file), got '%s'",
			    strchr(tok, '@') ? "(not shown: it has a '@')" :
			    tok);
			rc = -1;
		}
	free(list);
	if (rc == 0 && cfg->nats_token_file[0] != '\0' &&
	    cfg->nats_token_file[0] != '/') {
		*err = xasprintf("nats_token_file: must be an absolute path");
		rc = -1;
	}
	return rc;
}

static int
config_validate(struct config *cfg, char **err)
{
	static const char *const algs[] = { "HS256", "HS384", "HS512",
	    "RS256", "RS384", "RS512", "ES256", "ES384", NULL };
	const char *p, *url = cfg->public_url;
	char *list = NULL, *tok, *save = NULL;
	int i, rc = -1;

	if (cfg->listen[0] != '\0' && strncmp(cfg->listen, "unix:/", 6) != 0 &&
	    strncmp(cfg->listen, "tcp:", 4) != 0) {
		*err = xasprintf("listen: expected empty (inherited socket), "
		    "'unix:/ABSOLUTE/PATH' or 'tcp:HOST:PORT', got '%s'",
		    cfg->listen);
		goto cleanup;
	}
	if (strncmp(cfg->listen, "tcp:", 4) == 0 &&
	    strrchr(cfg->listen + 4, ':') == NULL) {
		*err = xasprintf("listen: '%s' lacks a port (tcp:HOST:PORT)",
		    cfg->listen);
		goto cleanup;
	}
	if (strncmp(url, "https://", 8) != 0 &&
	    strncmp(url, "http://", 7) != 0) {
		*err = xasprintf("public_url: must start with https:// "
		    "(or http:// behind a trusted proxy), got '%s'", url);
		goto cleanup;
	}
	for (p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == '"' || *p == '\\' ||
		    *p == '?' || *p == '#') {
			*err = xasprintf("public_url: invalid "
			    "character in '%s'", url);
			goto cleanup;
		}
	while (strlen(url) > 8 && url[strlen(url) - 1] == '/')
		cfg->public_url[strlen(url) - 1] = '\0';
	p = strchr(url + (url[4] == 's' ? 8 : 7), '/');
	free(cfg->base_path);
	cfg->base_path = xstrdup(p ? p : "");
	while (cfg->base_path[0] &&
	    cfg->base_path[strlen(cfg->base_path) - 1] == '/')
		cfg->base_path[strlen(cfg->base_path) - 1] = '\0';
	if (!is_identifier(cfg->agent_id, 64)) {
		*err = xasprintf("agent_id: must match [A-Za-z0-9._-]{1,64}");
		goto cleanup;
	}
	if (cfg->agent_name[0] == '\0' || strlen(cfg->agent_name) > 128) {
		*err = xasprintf("agent_name: must be 1 to 128 characters");
		goto cleanup;
	}
	for (i = 0; algs[i]; i++)
		if (strcmp(cfg->jwt_alg, algs[i]) == 0)
			break;
	if (algs[i] == NULL) {
		*err = xasprintf("jwt_alg: must be one of HS256, HS384, HS512, "
		    "RS256, RS384, RS512, ES256, ES384; got '%s'",
		    cfg->jwt_alg);
		goto cleanup;
	}
	if (cfg->jwt_key_file[0] == '\0') {
		*err = xasprintf("jwt_key_file: required");
		goto cleanup;
	}
	if (cfg->jwt_issuer[0] == '\0' || cfg->jwt_audience[0] == '\0') {
		*err = xasprintf("jwt_issuer and jwt_audience: both required "
		    "(tokens must name who issued them and for whom)");
		goto cleanup;
	}
	if (cfg->store_path[0] != '/' || cfg->artifact_dir[0] != '/') {
		*err = xasprintf("store_path and artifact_dir: must "
		    "be absolute paths");
		goto cleanup;
	}
	{
		enum log_level lv;
		if (log_level_parse(cfg->log_level, &lv) < 0) {
			*err = xasprintf("log_level: must be debug, info, warn "
			    "or error; got '%s'", cfg->log_level);
			goto cleanup;
		}
	}
	if (config_validate_runpod(cfg, err) < 0)
		goto cleanup;
	if (config_check_host_owners(cfg, err) < 0)
		goto cleanup;
	if (config_check_nats(cfg, err) < 0)
		goto cleanup;
	if (config_check_store(cfg, err) < 0)
		goto cleanup;
	list = xstrdup(cfg->ssrf_allow);
	for (tok = strtok_r(list, ", \t", &save); tok;
	    tok = strtok_r(NULL, ", \t", &save)) {
		unsigned char a[16];
		int fam, pre;
		if (config_parse_cidr(tok, a, &fam, &pre) < 0) {
			*err = xasprintf("ssrf_allow: '%s' is not an address "
			    "or CIDR (e.g. 127.0.0.1/32, ::1)", tok);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	free(list);
	return rc;
}

int
config_load(const char *path, struct config **out, char **err)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	const struct config_key *k;

	*err = NULL;
	for (k = config_keys; k->name != NULL; k++)
		if (config_set(cfg, k, k->def, "default", err) < 0)
			goto fail;
	cfg->path = xstrdup(path ? path : "");
	if (path != NULL && config_read_file(cfg, path, err) < 0)
		goto fail;
	if (config_apply_env(cfg, err) < 0)
		goto fail;
	if (config_validate(cfg, err) < 0)
		goto fail;
	*out = cfg;
	return 0;
fail:
	config_free(cfg);
	*out = NULL;
	return -1;
}

void
config_free(struct config *cfg)
{
	const struct config_key *k;

	if (cfg == NULL)
		return;
	for (k = config_keys; k->name != NULL; k++)
		if (k->type == CFG_STR)
			free(*(char **)((char *)cfg + k->offset));
	free(cfg->path);
	free(cfg->base_path);
	free(cfg);
}
