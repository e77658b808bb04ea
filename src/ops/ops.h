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

#include "lib/attrs.h"
#include "core/config.h"
#include "core/op.h"
#include "ops/params.h"
#include "tasks/tasks.h"

enum op_kind { OP_SYNC, OP_TASK };

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
/* The executor's view of a task operation (a tasks_resolve_fn). */
bool ops_resolve(const char *name, const struct config *cfg,
    struct tasks_runner *out);
/* Whether the operation can run with this configuration; when not,
 * *why (static text) says what is missing. */
bool ops_available(const struct op_def *op, const struct config *cfg,
    const char **why);

struct op_outcome {
	json_object *result;	/* OP_SYNC result (owned) */
	struct task *task;	/* OP_TASK: snapshot of the new task (owned) */
	struct op_error err;	/* set when ops_invoke returns -1 */
};

/*
 * Resolve name, check scopes, validate params (borrowed; copied for the
 * task), then run a sync operation or submit a task owned by c->who->sub in
 * context_id (NULL: new context).  0 on success; -1 with out->err set.
 * Caller releases with ops_outcome_clear.
 */
WARN_UNUSED_RESULT
int ops_invoke(const struct op_ctx *c, const char *name, json_object *params,
    const char *context_id, struct op_outcome *out);
void ops_outcome_clear(struct op_outcome *out);

/* The operation of a task made from a message that names none: it waits
 * in input-required for a follow-up that does (ops_continue). */
#define OPS_ASK_INPUT "agent.help"

/*
 * A follow-up that names an operation, to waiting (a task of the
 * caller's that waits for input): the same checks as ops_invoke, then
 * the task becomes that operation (params copied, c->message added to
 * its history): a task operation runs on it, a sync one completes it
 * with its result.  0 and out->task (the task now); -1 with out->err
 * (task_not_found, not_waiting, or the operation's own errors).
 */
WARN_UNUSED_RESULT
int ops_continue(const struct op_ctx *c, const struct task *waiting,
    const char *name, json_object *params, struct op_outcome *out);

/* A JSON description of every operation (for the agent's help message and
 * the cards): [{"operation","aliases","scopes","kind","params","summary"}]. */
json_object *ops_describe(const struct config *cfg);

#endif
