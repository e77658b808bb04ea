/* SPDX-License-Identifier: MIT */
/*
 * ops: the operation table (docs/api.md, "Operations").  Every operation has a
 * canonical name, aliases, the scopes it needs, a params validator run
 * before anything else, and either a synchronous handler or a task step.
 * The table is complete: operations whose provider is not configured yet
 * answer "not_configured", never a guess.
 */
#ifndef IA_OPS_H
#define IA_OPS_H

#include <stdbool.h>
#include <json-c/json.h>

#include "http/auth.h"
#include "core/config.h"
#include "tasks/tasks.h"

enum op_kind { OP_SYNC, OP_TASK };

/* Error codes shared by the envelope and A2A layers. */
#define OPERR_INVALID_PARAMS	"invalid_params"
#define OPERR_UNKNOWN_OP	"unknown_operation"
#define OPERR_FORBIDDEN		"forbidden"
#define OPERR_NOT_FOUND		"task_not_found"
#define OPERR_NOT_CANCELABLE	"task_not_cancelable"
#define OPERR_NOT_CONFIGURED	"not_configured"
#define OPERR_INTERNAL		"internal_error"

struct op_error {
	const char *code;	/* one of OPERR_* (static) */
	char *message;		/* owned */
};

struct op_ctx {
	const struct config *cfg;
	const struct auth_principal *who;
	json_object *message;	/* internal message that asked (borrowed,
				 * may be NULL): starts a new task's history */
};

enum param_type {
	P_STR,		/* string matching pattern */
	P_INT,		/* integer in [min, max] */
	P_NUM,		/* number in [min, max] */
	P_BOOL,
	P_ENUM,		/* one of choices */
	P_STR_ARRAY,	/* array of [min, max] strings matching pattern */
	P_STR_MAP	/* object of string values, keys matching pattern */
};

enum param_pattern {
	PAT_ANY,	/* printable text, no control characters */
	PAT_IDENT,	/* ^[A-Za-z0-9._-]{1,64}$ */
	PAT_UUID,
	PAT_GPU,	/* ^[A-Za-z0-9 ._-]{1,64}$ (RunPod GPU type ids) */
	PAT_IMAGE,	/* container image reference */
	PAT_HOST,	/* host name or address */
	PAT_ENVKEY,	/* ^[A-Za-z_][A-Za-z0-9_]{0,63}$ */
	PAT_SOURCE	/* upload id, or https:// URL */
};

struct param_spec {
	const char *name;
	enum param_type type;
	bool required;
	enum param_pattern pattern;
	double min, max;		/* range, or count for arrays/maps */
	const char *choices[9];		/* P_ENUM, NULL-terminated */
	const char *def;		/* default as JSON text, or NULL */
};

struct op_def {
	const char *name;
	const char *aliases[4];		/* NULL-terminated */
	const char *scopes[3];		/* all required; NULL-terminated */
	enum op_kind kind;
	const char *requires;		/* provider: "runpod", "runpod+ssh"
					 * (provisioning: also the SSH key),
					 * "ssh", "diagnostics" or NULL */
	const char *summary;
	const struct param_spec *params;	/* NULL-name terminated */
	/* Extra checks after the spec (may be NULL). */
	int (*validate)(json_object *params, const struct config *cfg,
	    char **err);
	/* OP_SYNC: produce *result (new reference). */
	int (*run)(const struct op_ctx *c, json_object *params,
	    json_object **result, struct op_error *e);
	/* OP_TASK: one short step. */
	enum step_result (*step)(struct task *t, const struct step_env *env);
	/* OP_TASK: clean up on cancel (NULL: nothing to clean up). */
	enum step_result (*cancel)(struct task *t, const struct step_env *env);
	/* OP_TASK: checks needing the caller, before a task is made, e.g.
	 * "the pod is yours" (NULL: none).  0, or -1 with *e set. */
	int (*admit)(const struct op_ctx *c, json_object *params,
	    struct op_error *e);
};

/* Look up by canonical name or alias; NULL when unknown. */
const struct op_def *ops_find(const char *name);
/* The whole table and its length. */
const struct op_def *ops_table(size_t *n);
/* Whether the operation can run with this configuration; when not,
 * *why (static text) says what is missing. */
bool ops_available(const struct op_def *op, const struct config *cfg,
    const char **why);

struct op_outcome {
	json_object *result;	/* OP_SYNC result (owned) */
	struct task *task;	/* OP_TASK: snapshot of the new task (owned) */
	struct op_error err;	/* set when ops_invoke returns -1 */
	int http_status;	/* 403 for a missing scope, else 200 */
};

/*
 * Resolve name, check scopes, validate params (borrowed; copied for the
 * task), then run a sync operation or submit a task owned by c->who->sub in
 * context_id (NULL: new context).  0 on success; -1 with out->err set.
 * Caller releases with ops_outcome_clear.
 */
int ops_invoke(const struct op_ctx *c, const char *name, json_object *params,
    const char *context_id, struct op_outcome *out);
void ops_outcome_clear(struct op_outcome *out);
void op_error_set(struct op_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Check params against spec, filling defaults. 0 or -1 with *err. */
int ops_validate_params(const struct param_spec *spec, json_object *params,
    size_t max_params, char **err);

/* A JSON description of every operation (for the agent's help message and
 * the cards): [{"operation","aliases","scopes","kind","params","summary"}]. */
json_object *ops_describe(const struct config *cfg);

#endif
