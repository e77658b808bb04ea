/* SPDX-License-Identifier: MIT */
/*
 * conns: the agent's FastCGI connections.  Prefix conns_.
 *
 * One epoll set holds the listening socket and every connection that
 * waits for its next request: a new one, and one the web server kept open
 * after a request (FCGI_KEEP_CONN: nginx's `fastcgi_keep_conn on` with an
 * upstream `keepalive` pool).  Every request thread waits in epoll_wait
 * on it; the thread woken for a connection whose next request has arrived
 * reads it with libfcgi and runs the handler (the one woken for the
 * listening socket accepts).  When the request is finished the connection
 * comes back (conns_release()): parked in epoll again when the web server
 * asked to keep it, closed otherwise.  So an idle kept connection holds no
 * thread, and any number of nginx workers may keep connections open
 * however many request threads there are.
 *
 * The hand-over to the event hub (SSE streams, blocking waits) works
 * unchanged: the hub finishes the request whenever it is done, and the
 * connection comes back then.
 */
#ifndef IA_CONNS_H
#define IA_CONNS_H

#include <fcgiapp.h>
#include <stdint.h>

#include "lib/attrs.h"
#include "lib/strbuf.h"

struct conns_conn;

/*
 * Serve one request: fx is a heap FCGX_Request, accepted (its params
 * read); the handler takes ownership of fx and must end it, at once or
 * later from another thread, with FCGX_Finish_r and then
 * conns_release(c, fx->ipcFd) before freeing fx.
 */
typedef void (*conns_handler_fn)(FCGX_Request *fx, struct conns_conn *c);

/*
 * Start nthreads request threads on listen_fd (made non-blocking).  0,
 * or -1 with *err (a new string, caller frees).
 */
WARN_UNUSED_RESULT
int conns_start(int listen_fd, int nthreads, conns_handler_fn fn,
    char **err);

/*
 * Stop: the request threads finish the request they hold and are joined;
 * no new connection is accepted and idle connections are closed.
 * Requests still held elsewhere (the hub) may call
 * conns_release() afterwards: their connections are closed.
 */
void conns_stop(void);

/*
 * A request on c is finished.  fd is the connection's descriptor when the
 * web server asked to keep it and it is still usable (the FCGX_Request's
 * ipcFd after FCGX_Finish_r), or -1 when libfcgi closed it.  Frees c
 * unless it is parked for the next request.  Any thread.
 */
void conns_release(struct conns_conn *c, int fd);

struct conns_stats {
	uint64_t accepted;	/* connections accepted */
	uint64_t requests;	/* requests read */
	uint64_t reused;	/* of those, on a kept connection */
	uint64_t open;		/* connections open now */
	uint64_t idle;		/* of those, parked between requests */
};
void conns_get_stats(struct conns_stats *st);
/* Metrics collector: the figures above as instag_agent_fastcgi_*. */
void conns_metrics(struct strbuf *sb);

#endif
