/* SPDX-License-Identifier: MIT */
/*
 * a2a: A2A JSON-RPC 2.0 on POST /a2a in both dialects (docs/api.md):
 * v0.3 slash method names and v1.0 PascalCase names, each answered in the
 * dialect asked.  Also the wire renderers the event hub and push
 * notifications share.
 */
#ifndef IA_A2A_H
#define IA_A2A_H

#include <json-c/json.h>

#include "core/config.h"
#include "http/http.h"
#include "core/task.h"

enum a2a_dialect { A2A_V03 = 0, A2A_V10 = 1 };

/* JSON-RPC and A2A error codes. */
#define RPC_PARSE_ERROR		-32700
#define RPC_INVALID_REQUEST	-32600
#define RPC_METHOD_NOT_FOUND	-32601
#define RPC_INVALID_PARAMS	-32602
#define RPC_INTERNAL_ERROR	-32603
#define A2A_TASK_NOT_FOUND	-32001
#define A2A_TASK_NOT_CANCELABLE	-32002
#define A2A_PUSH_NOT_SUPPORTED	-32003
#define A2A_UNSUPPORTED_OP	-32004
#define A2A_CONTENT_TYPE	-32005
#define A2A_VERSION_NOT_SUPPORTED -32009

int a2a_init(const struct config *cfg);

/* Handle POST /a2a.  Either answers r and returns 0 (caller frees r), or
 * hands r to the event hub and returns 1 (caller must not touch r). */
int a2a_handle(struct http_req *r);

/* The tasks listener: fan out to the hub and to push notifications. */
void a2a_task_changed(const struct task *t);

/* Renderers: new references. history_len < 0 means the default. */
json_object *a2a_render_task(const struct task *t, enum a2a_dialect d,
    int history_len);
/* The stream event for a status change (v0.3 status-update with "final";
 * v1.0 {"statusUpdate": ...}). */
json_object *a2a_render_status_event(const struct task *t, enum a2a_dialect d);
/* Artifact events for a finished task (array, possibly empty). */
json_object *a2a_render_artifact_events(const struct task *t,
    enum a2a_dialect d);
/* The first stream event: v0.3 the Task, v1.0 {"task": Task}. */
json_object *a2a_render_stream_task(const struct task *t, enum a2a_dialect d);
/* {"jsonrpc":"2.0","id":id,"result":result}; takes result, copies id. */
json_object *a2a_rpc_result(json_object *id, json_object *result);
/* {"jsonrpc":"2.0","id":id,"error":{...}} in the dialect's shape. */
json_object *a2a_rpc_error(json_object *id, enum a2a_dialect d, int code,
    const char *message);

#endif
