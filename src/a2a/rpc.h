/* SPDX-License-Identifier: MIT */
/*
 * rpc: one JSON-RPC call of an A2A method and the reply it makes.  Prefix
 * rpc_.
 *
 * A method reads a struct rpc (who asks, the id, the params, the dialect)
 * and fills c->out with helpers that return 0, so that a method can end
 * with "return rpc_error(c, ...)".  Methods never write to HTTP: a2a.c
 * delivers the reply (a2a_handle), which is how the methods are tested
 * without FastCGI (a2a_call).  A reply that needs the event hub (a stream,
 * or a blocking wait) names the task and keeps a fallback answer for when
 * the hub cannot take the request.
 */
#ifndef IA_RPC_H
#define IA_RPC_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "a2a/render.h"
#include "core/config.h"
#include "core/principal.h"
#include "core/task.h"
#include "lib/uuid.h"

enum rpc_reply_kind {
	RPC_REPLY_NONE = 0,
	RPC_REPLY_JSON,		/* body: the JSON-RPC response (HTTP 200) */
	RPC_REPLY_FORBIDDEN,	/* HTTP 403 insufficient_scope: message */
	RPC_REPLY_STREAM,	/* stream task_id's events over SSE */
	RPC_REPLY_WAIT		/* answer when task_id ends or after wait_s */
};

struct rpc_reply {
	enum rpc_reply_kind kind;
	json_object *body;	/* JSON; STREAM and WAIT: the answer when
				 * the hub cannot take the request (owned) */
	int rpc_error;		/* body's JSON-RPC error code, 0 if none */
	char *message;		/* FORBIDDEN (owned) */
	char task_id[UUID_STR_LEN];	/* STREAM, WAIT */
	int wait_s;		/* WAIT */
	int history_len;	/* WAIT */
	int64_t version;	/* WAIT: the task's version the fallback
				 * body shows, or -1 when unknown */
	enum a2a_dialect d;	/* STREAM, WAIT: the dialect of the events */
	json_object *id;	/* STREAM, WAIT: the JSON-RPC id (owned) */
	bool sse;		/* a streaming method: its errors go out as
				 * one SSE event, not as a JSON body */
};

struct rpc {
	const struct config *cfg;
	const struct principal *who;
	json_object *id;	/* borrowed */
	json_object *params;	/* borrowed, may be NULL */
	enum a2a_dialect d;
	const char *method;
	struct rpc_reply out;
};

/* Free what r owns and zero it. */
void rpc_reply_clear(struct rpc_reply *r);

/* Reply with result (taken; may be NULL for JSON null).  Returns 0. */
int rpc_reply(struct rpc *c, json_object *result);
/* Reply with a JSON-RPC error in the dialect's shape.  Returns 0. */
int rpc_error(struct rpc *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An operation's error: code plus the agent's own code (agent_code) in
 * "data" (v0.3) or the ErrorInfo's "metadata" (v1.0).  Returns 0. */
int rpc_op_error(struct rpc *c, int code, const char *agent_code,
    const char *message);
/* HTTP 403 insufficient_scope.  Returns 0. */
int rpc_forbidden(struct rpc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when the caller holds scope; else replies 403 and is false. */
bool rpc_need_scope(struct rpc *c, const char *scope);
/* Turn the reply made so far into a hand-over to the hub (kind STREAM or
 * WAIT) for task_id; the reply made so far becomes the fallback.
 * Returns 0. */
int rpc_handover(struct rpc *c, enum rpc_reply_kind kind,
    const char *task_id, int wait_s, int history_len);

/*
 * historyLength of obj (params, or a send's configuration) into *out:
 * clamped to 0..1000, or -1 when absent.  A value that is not a
 * non-negative integer is answered -32602 and makes this return -1.
 */
WARN_UNUSED_RESULT
int rpc_history_len(struct rpc *c, json_object *obj, int *out);
/* The task id of the params: "id", or "taskId" (v0.3 without "id", v1.0
 * push config methods); NULL when absent. */
const char *rpc_task_id_param(struct rpc *c);
/* t as a result: the Task, wrapped as {"task": Task} for v1.0 when wrap.
 * New reference. */
json_object *rpc_task_result(struct rpc *c, const struct task *t, int hl,
    bool wrap);

#endif
