/* SPDX-License-Identifier: MIT */
/*
 * a2a: A2A JSON-RPC 2.0 on POST /a2a in both dialects (docs/api.md):
 * v0.3 slash method names and v1.0 PascalCase names, each answered in the
 * dialect asked.  The wire objects come from render.h.
 */
#ifndef IA_A2A_H
#define IA_A2A_H

#include <json-c/json.h>

#include "core/config.h"
#include "http/http.h"
#include "core/task.h"
#include "a2a/render.h"
#include "a2a/rpc.h"
#include "core/principal.h"

int a2a_init(const struct config *cfg);

/*
 * Run one JSON-RPC request for who: body is the request (len bytes), ver
 * the A2A-Version header (NULL when absent).  *out is the reply (caller
 * clears it with rpc_reply_clear); nothing is written anywhere, so this is
 * what unit tests call.
 */
void a2a_call(const struct principal *who, const char *ver,
    const char *body, size_t len, struct rpc_reply *out);

/* Handle POST /a2a.  Either answers r and returns 0 (caller frees r), or
 * hands r to the event hub and returns 1 (caller must not touch r). */
int a2a_handle(struct http_req *r);

#endif
