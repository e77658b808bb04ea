/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a/card.h"
#include "a2a/envelope.h"
#include "lib/jsonutil.h"
#include "ops/ops.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

static const struct config *cfg;

void
envelope_init(const struct config *c)
{
	cfg = c;
}

static json_object *
response(const char *task_id, const char *status)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "type",
	    json_object_new_string("task_response"));
	json_object_object_add(o, "task_id", ju_new_str(task_id));
	json_object_object_add(o, "status", json_object_new_string(status));
	return o;
}

static void
send_error(struct http_req *r, int http_status, const char *task_id,
    const char *code, const char *msg)
{
	json_object *o = response(task_id, "error"),
	    *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	http_json(r, http_status, o, http_status == 403 ?
	    "WWW-Authenticate: Bearer error=\"insufficient_scope\"\r\n" : NULL);
	json_object_put(o);
}

/* The reply is spliced from the card's cached text: discovery is the
 * umbrella's hot path and needs no JSON objects at all. */
static void
discovery(struct http_req *r, const char *task_id)
{
	struct strbuf sb = SB_INIT;
	const char *card = card_umbrella_text();

	sb_adds(&sb, "{\"type\":\"agent_discovery_response\",\"task_id\":");
	if (task_id != NULL)
		sb_add_json_str(&sb, task_id);
	else
		sb_adds(&sb, "null");
	sb_adds(&sb, ",\"status\":\"ok\",\"agent_card\":");
	sb_adds(&sb, card);
	sb_adds(&sb, ",\"agents\":[");
	sb_adds(&sb, card);
	sb_adds(&sb, "]}");
	http_respond(r, 200, "application/json", NULL, sb.buf, sb.len);
	sb_free(&sb);
}

static void
task_request(struct http_req *r, json_object *payload, const char *client_id)
{
	struct op_ctx ctx = { cfg, &r->who, NULL };
	struct op_outcome oc;
	json_object *params = NULL, *o;
	const char *op = ju_str(payload, "operation");

	if (payload == NULL) {
		send_error(r, 400, client_id, "invalid_request",
		    "payload must be an object");
		return;
	}
	if (op == NULL) {
		send_error(r, 200, client_id, "invalid_request",
		    json_object_object_get_ex(payload, "operation", NULL) ?
		    "payload.operation must be a string" :
		    "Missing 'operation' field");
		return;
	}
	if (json_object_object_get_ex(payload, "params", &params) &&
	    params != NULL && !json_object_is_type(params, json_type_object)) {
		send_error(r, 200, client_id, ERRC_INVALID_PARAMS,
		    "payload.params must be an object");
		return;
	}
	if (ops_invoke(&ctx, op, params, NULL, &oc) < 0) {
		send_error(r, oc.err.category == ERRCAT_FORBIDDEN ? 403 : 200,
		    client_id, oc.err.code,
		    oc.err.message);
		ops_outcome_clear(&oc);
		return;
	}
	if (oc.task != NULL) {
		o = response(oc.task->id, "working");
		json_object_object_add(o, "result", task_to_json(oc.task));
	} else {
		o = response(client_id, "completed");
		json_object_object_add(o, "result", oc.result);
		oc.result = NULL;
	}
	if (client_id != NULL)
		json_object_object_add(o, "request_task_id",
		    json_object_new_string(client_id));
	http_json(r, 200, o, NULL);
	json_object_put(o);
	ops_outcome_clear(&oc);
}

void
envelope_handle(struct http_req *r)
{
	json_object *msg = NULL, *payload, *v;
	const char *type, *client_id;
	char *err = NULL, *text;
	static const char *const str_fields[] = { "sender", "recipient",
	    "task_id", "timestamp", NULL };
	size_t i;

	if (ju_parse(r->body, r->body_len, (int)cfg->max_json_depth,
	    (size_t)cfg->max_string_bytes, &msg, &err) < 0) {
		text = xasprintf("Invalid JSON payload: %s", err);
		send_error(r, 400, NULL, "invalid_json", text);
		free(text);
		free(err);
		return;
	}
	if (!json_object_is_type(msg, json_type_object)) {
		send_error(r, 400, NULL, "invalid_request",
		    "Invalid message format: expected a JSON object");
		goto cleanup;
	}
	for (i = 0; str_fields[i]; i++) {
		if (json_object_object_get_ex(msg, str_fields[i], &v) &&
		    v != NULL && !json_object_is_type(v, json_type_string)) {
			text = xasprintf("'%s' must be a string",
			    str_fields[i]);
			send_error(r, 400, NULL, "invalid_request", text);
			free(text);
			goto cleanup;
		}
	}
	type = ju_str(msg, "type");
	payload = ju_obj(msg, "payload");
	if (json_object_object_get_ex(msg, "payload", &v) && v != NULL &&
	    payload == NULL) {
		send_error(r, 400, NULL, "invalid_request",
		    "'payload' must be an object");
		goto cleanup;
	}
	client_id = ju_str(msg, "task_id");
	if (client_id == NULL)
		client_id = ju_str(payload, "task_id");
	if (client_id != NULL && strlen(client_id) > 128) {
		send_error(r, 400, NULL, "invalid_request",
		    "task_id longer than 128 bytes");
		goto cleanup;
	}
	if (type == NULL) {
		send_error(r, 400, client_id, "invalid_request",
		    "Missing or invalid 'type' field");
		goto cleanup;
	}
	if (!strcmp(type, "agent_discovery_request") ||
	    !strcmp(type, "agent_discovery"))
		discovery(r, client_id);
	else if (!strcmp(type, "task_request"))
		task_request(r, payload ? payload : NULL, client_id);
	else {
		text = xasprintf("Unsupported message type: %.*s (this agent "
		    "answers task_request, agent_discovery_request and "
		    "agent_discovery)", ju_utf8_prefix(type, 64), type);
		send_error(r, 400, client_id, "unsupported_type", text);
		free(text);
	}
cleanup:
	json_object_put(msg);
}
