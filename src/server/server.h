/* SPDX-License-Identifier: MIT */
/*
 * server: the FastCGI side.  Opens (or inherits) the listening socket,
 * serves it with request_threads threads (conns.h: kept-alive FastCGI
 * connections), routes each request, and shuts down cleanly on
 * SIGTERM/SIGINT: stop accepting, finish in-flight
 * requests, close streams, stop the executor (tasks stay resumable).
 */
#ifndef IA_SERVER_H
#define IA_SERVER_H

#include "lib/attrs.h"
#include "core/config.h"

/* Run until a termination signal.  Returns the process exit status. */
WARN_UNUSED_RESULT
int server_run(struct config *cfg);

#endif
