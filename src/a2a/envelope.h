/* SPDX-License-Identifier: MIT */
/*
 * envelope: the hypergraph umbrella's message format on POST /api/a2a
 * (docs/api.md, "POST /api/a2a"; the message types are fixed names):
 *   agent_discovery_request / agent_discovery -> the umbrella card
 *   task_request {payload: {operation, params, task_id?}} -> task_response
 */
#ifndef IA_ENVELOPE_H
#define IA_ENVELOPE_H

#include "core/config.h"
#include "http/http.h"

void envelope_init(const struct config *cfg);
/* Answer r (the caller frees it). */
void envelope_handle(struct http_req *r);

#endif
