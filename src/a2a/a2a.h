/*
 * a2a: A2A JSON-RPC 2.0 on POST /a2a in both dialects (reference/a2a.md):
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

int a2a_init(const struct config *cfg);

/* Handle POST /a2a.  Either answers r and returns 0 (caller frees r), or
 * hands r to the event hub and returns 1 (caller must not touch r). */
int a2a_handle(struct http_req *r);

#endif
