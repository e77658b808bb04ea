/* SPDX-License-Identifier: MIT */
/*
 * router: a request to its handler, by path and method.  Prefix router_.
 *
 * Public routes (cards, health, readiness, metrics) answer at once; every
 * other route is authenticated first (401 with WWW-Authenticate otherwise)
 * and JSON bodies are read within max_body_bytes.  /a2a goes to a2a.h,
 * /api/a2a to envelope.h, /artifacts and /uploads to files.h.
 */
#ifndef IA_ROUTER_H
#define IA_ROUTER_H

#include "core/config.h"
#include "core/metrics.h"
#include "http/auth.h"
#include "http/http.h"
#include "store/store.h"

/* Keep cfg, auth and st (borrowed for the life of the process); set up
 * the readiness checks (ready.h) with cfg and st. */
void router_init(const struct config *cfg, struct auth_ctx *auth,
    struct store *st);
/* From now on /readyz answers 503 (check "serving"). */
void router_stopping(void);

/* Answer r, or hand it to the event hub (then return 1: the caller must
 * not touch r).  *mr is the route, for the metrics. */
int router_dispatch(struct http_req *r, enum metrics_route *mr);

#endif
