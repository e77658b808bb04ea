/* SPDX-License-Identifier: MIT */
/*
 * config: the agent's configuration file (key = value lines) with every key
 * overridable by INSTAG_AGENT_<KEY> in the environment.  docs/configuration.md
 * documents each key; a unit test checks that the two agree.
 */
#ifndef IA_CONFIG_H
#define IA_CONFIG_H

#include "lib/attrs.h"

#include <stdbool.h>
#include <stddef.h>

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/instag-agent/agent.conf"

enum config_type {
	CFG_STR,
	CFG_INT,
	CFG_BOOL,
	CFG_OCTAL
};

struct config {
	char *path;		/* file it was read from */

	char *listen;		/* "", "unix:PATH" or "tcp:HOST:PORT" */
	long listen_mode;
	long listen_backlog;
	long request_threads;
	long executor_threads;
	long shutdown_grace;

	char *store_path;	/* the SQLite file when store is empty */
	char *store;		/* "", "sqlite:/path" or a PostgreSQL URL */
	char *store_password_file;	/* PostgreSQL only; "" none */
	long lease_seconds;	/* a task's lease on a shared store */
	char *artifact_dir;
	long ready_min_free_mb;

	char *public_url;
	char *agent_id;
	char *agent_name;

	char *jwt_alg;
	char *jwt_key_file;
	char *jwt_signing_key_file;
	char *jwt_issuer;
	char *jwt_audience;
	long jwt_leeway;

	long max_body_bytes;
	long max_json_depth;
	long max_string_bytes;
	long max_params;
	long task_history_max;
	long input_required_timeout;

	long blocking_wait_max;
	long sse_heartbeat;
	long sse_max_streams;

	long push_timeout;
	long push_max_attempts;
	char *outbound_ca_file;
	char *ssrf_allow;

	char *runpod_url;
	char *runpod_api_key_file;
	char *runpod_ca_file;
	long runpod_timeout;
	char *runpod_image;
	char *pod_name_prefix;
	long provision_timeout;
	long provision_poll_ms;
	long max_runtime_minutes;
	char *max_cost_usd;	/* decimal text; parsed into max_cost */
	long cost_guard_interval;
	char *reaper_mode;	/* "off", "report" or "terminate" */
	long reaper_interval;
	long pod_idle_minutes;	/* default idle limit; 0: none */
	char *pod_idle_action;	/* "stop" or "terminate" */
	long pipeline_max_recoveries;	/* new pods for a lost one */
	long pipeline_pod_check_s;	/* how often a pipeline asks RunPod
					 * whether its pod is still there */

	char *ssh_key_file;
	char *ssh_user;
	long ssh_timeout;
	char *ssh_hosts;	/* static hosts of the ssh provider */
	char *ssh_known_hosts;	/* their pinned host keys */
	char *ssh_host_owners;	/* "HOST=SUB ...": hosts kept for owners */

	char *pod_work_root;
	char *pod_volume_path;
	char *pod_env_init;
	char *instag_repo_url;
	char *instag_commit;
	long job_poll_ms;

	char *nats_url;		/* "" off, or nats://HOST:PORT[,...] */
	char *nats_token_file;	/* "" none */

	bool diagnostics;
	char *log_level;

	/* Derived by config_load, not keys. */
	char *base_path;	/* path part of public_url, no trailing '/' */
	double max_cost;	/* max_cost_usd as a number */
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	const char *def;	/* default as text */
	long min, max;		/* for CFG_INT / CFG_OCTAL */
};

/* The key table, terminated by an entry with name == NULL. */
extern const struct config_key config_keys[];

/*
 * Load path (or only defaults and the environment when path is NULL), apply
 * INSTAG_AGENT_* overrides, validate.  On success *out is a new config the
 * caller releases with config_free(); on failure returns -1 and *err is a
 * message naming the key and line (caller frees).
 */
WARN_UNUSED_RESULT
int config_load(const char *path, struct config **out, char **err);
void config_free(struct config *cfg);
/* The task store's spec (store_open): store when set, else store_path. */
const char *config_store_spec(const struct config *cfg);
/* True when the task store is PostgreSQL (several agents may share it). */
bool config_store_is_postgresql(const struct config *cfg);

/* Parse one ssrf_allow-style CIDR; 0 on success. For the outbound filter. */
WARN_UNUSED_RESULT
int config_parse_cidr(const char *s, unsigned char addr[16], int *family,
    int *prefix);

#endif
