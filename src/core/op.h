/* SPDX-License-Identifier: MIT */
/*
 * op: the contract between an operation and the layers around it.  Prefix
 * op_.
 *
 * A synchronous operation gets an op_ctx (who asks, the configuration)
 * and answers a result or an op_error.  A task operation is a step
 * function: it does one short piece of work on the task and returns
 * STEP_DONE (the task is terminal) or STEP_WAIT (run again at
 * t->next_wake_ms); see docs/internals.md for the whole step contract.
 * Providers (providers/, instag/) implement these; the operation table
 * (ops/) lists them; the executor (tasks/) runs the steps.  This header
 * knows none of them.
 */
#ifndef IA_OP_H
#define IA_OP_H

#include <stdint.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/errcode.h"
#include "core/principal.h"
#include "core/task.h"

struct store;

struct op_error {
	const char *code;	/* one of ERRC_* (static) */
	enum errcat category;	/* errcode_category(code) */
	char *message;		/* owned */
};

struct op_ctx {
	const struct config *cfg;
	const struct principal *who;
	json_object *message;	/* internal message that asked (borrowed,
				 * may be NULL): starts a new task's history */
};

enum step_result {
	STEP_DONE,	/* the step put the task in a terminal state */
	STEP_WAIT	/* run again at t->next_wake_ms */
};

struct step_env {
	const struct config *cfg;
	struct store *store;
	int64_t now_ms;
	/* Commit the task as it stands now (and tell listeners) before
	 * doing something that must not be done twice, e.g. a create whose
	 * answer a crash could lose.  0, or -1 with *err (caller frees):
	 * then do not go on with the risky call.  Called as
	 * env->checkpoint(env, t, &err): a step that runs another
	 * operation's steps (pipeline/) embeds its own step_env and commits
	 * through it. */
	int (*checkpoint)(const struct step_env *env, struct task *t,
	    char **err);
};

typedef enum step_result (*op_step_fn)(struct task *t,
    const struct step_env *env);

/* Set e's code (static), its category and a formatted message (owned by
 * e; a previous message is freed). */
void op_error_set(struct op_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Free e's message and zero e. */
void op_error_clear(struct op_error *e);

#endif
