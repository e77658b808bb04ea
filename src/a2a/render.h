/* SPDX-License-Identifier: MIT */
/*
 * render: A2A wire objects from the agent's task record, in both dialects
 * (v0.3 and v1.0; docs/api.md), and JSON-RPC envelopes.  Prefix render_.
 * Shared by the A2A methods, the event hub (stream events) and push
 * notifications; it knows no HTTP and no store.
 */
#ifndef IA_RENDER_H
#define IA_RENDER_H

#include <json-c/json.h>

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

/* Renderers: new references. history_len < 0 means the default. */
json_object *render_task(const struct task *t, enum a2a_dialect d,
    int history_len);
/* The stream event for a status change (v0.3 status-update with "final";
 * v1.0 {"statusUpdate": ...}). */
json_object *render_status_event(const struct task *t, enum a2a_dialect d);
/* Artifact events for a finished task (array, possibly empty). */
json_object *render_artifact_events(const struct task *t,
    enum a2a_dialect d);
/* The first stream event: v0.3 the Task, v1.0 {"task": Task}. */
json_object *render_stream_task(const struct task *t, enum a2a_dialect d);
/* {"jsonrpc":"2.0","id":id,"result":result}; takes result, copies id. */
json_object *render_rpc_result(json_object *id, json_object *result);
/*
 * A JSON value that serializes as text verbatim (text is taken: it must
 * be one JSON value, written with JSON_C_TO_STRING_PLAIN |
 * JSON_C_TO_STRING_NOSLASHESCAPE, as the answer is).  For a rendering
 * kept as text (tcache): placed into an answer without parsing it back.
 * It reads as an empty object; only its serialization holds text.
 */
json_object *render_raw(char *text);
/* {"jsonrpc":"2.0","id":id,"error":{...}} in the dialect's shape. */
json_object *render_rpc_error(json_object *id, enum a2a_dialect d, int code,
    const char *message);

#endif
