/* SPDX-License-Identifier: MIT */
/*
 * conns: the request threads and the connections they wait on.  See
 * conns.h; docs/internals.md ("FastCGI connections") tells the whole life
 * of a connection.
 */
#include "auto-config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "server/conns.h"

#define CONNS_ACCEPT_BATCH 64	/* accepts per wake, so parked
				   connections get their turn */
#define CONNS_IO_TIMEOUT_S 30	/* a web server stalled mid-record or
				   not reading its answer */

struct conns_conn {
	int fd;
	uint64_t served;		/* requests read on it */
	bool parked;
	struct conns_conn *prev, *next;	/* parked list */
};

static char listen_tag, wake_tag;	/* epoll data for the two fds */

static struct {
	conns_handler_fn fn;
	int lfd, ep, wakefd;
	pthread_t *threads;
	int nthreads;
	bool started;

	pthread_mutex_t lock;
	struct conns_conn *parked;	/* waiting in epoll */
	bool stopped;		/* nothing is parked any more */
	struct conns_stats st;
	int64_t last_full_log_ms;
} C = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.lfd = -1, .ep = -1, .wakefd = -1,
};

/* ---- parked list and queue (C.lock held) --------------------------------- */

static void
park_locked(struct conns_conn *c)
{
	c->parked = true;
	c->prev = NULL;
	c->next = C.parked;
	if (C.parked)
		C.parked->prev = c;
	C.parked = c;
	C.st.idle++;
}

static void
unpark_locked(struct conns_conn *c)
{
	if (!c->parked)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		C.parked = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->parked = false;
	C.st.idle--;
}

/*
 * Park c and arm its descriptor (op: EPOLL_CTL_ADD for a new connection,
 * _MOD to re-arm a kept one) for its next request.  Parked first: once
 * armed, a thread may take it at once.  When epoll refuses, c is closed
 * and freed.
 */
static void
wait_locked(struct conns_conn *c, int op)
{
	struct epoll_event ev;

	park_locked(c);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.ptr = c;
	if (epoll_ctl(C.ep, op, c->fd, &ev) == 0)
		return;
	log_msg(LOG_WARN, "epoll_failed", "epoll_ctl %s: %s", op ==
	    EPOLL_CTL_ADD ? "ADD" : "MOD", strerror(errno));
	unpark_locked(c);
	C.st.open--;
	close(c->fd);
	free(c);
}

/* ---- accepting ----------------------------------------------------------- */

static void
set_io_timeouts(int fd)
{
	struct timeval tv = { CONNS_IO_TIMEOUT_S, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Park a new connection; it is queued when its first request arrives. */
static void
add_conn(int fd, const struct sockaddr_storage *sa)
{
	struct conns_conn *c = xcalloc(1, sizeof(*c));
	int one = 1;

	set_io_timeouts(fd);
	if (sa->ss_family == AF_INET || sa->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	c->fd = fd;
	pthread_mutex_lock(&C.lock);
	C.st.accepted++;
	C.st.open++;
	wait_locked(c, EPOLL_CTL_ADD);
	pthread_mutex_unlock(&C.lock);
}

static void
accept_some(void)
{
	int i;

	for (i = 0; i < CONNS_ACCEPT_BATCH; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd;

		memset(&sa, 0, sizeof(sa));
		fd = accept4(C.lfd, (struct sockaddr *)&sa, &len,
		    SOCK_CLOEXEC);
		if (fd >= 0) {
			add_conn(fd, &sa);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR || errno == ECONNABORTED ||
		    errno == EPROTO)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			int64_t now = clock_mono_ms();
			/* The listening socket stays readable: back off a
			 * little instead of spinning, and say so once in a
			 * while. */
			if (now - C.last_full_log_ms >= 10000) {
				C.last_full_log_ms = now;
				log_msg(LOG_WARN, "accept_failed",
				    "accept: %s (connections open: %llu)",
				    strerror(errno),
				    (unsigned long long)C.st.open);
			}
			usleep(10000);
			return;
		}
		log_msg(LOG_WARN, "accept_failed", "accept: %s",
		    strerror(errno));
		return;
	}
}

/* The listening socket is EPOLLONESHOT too: one thread accepts a batch,
 * then re-arms it. */
static void
rearm_listener(void)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.ptr = &listen_tag;
	if (epoll_ctl(C.ep, EPOLL_CTL_MOD, C.lfd, &ev) < 0)
		log_msg(LOG_ERROR, "epoll_failed", "epoll_ctl MOD (listening "
		    "socket): %s", strerror(errno));
}

/* ---- request threads ----------------------------------------------------- */

/* One request on c, whose next request has arrived. */
static void
serve_conn(struct conns_conn *c)
{
	FCGX_Request *fx;

	/*
	 * Read the request on c's descriptor.  keepConnection = 1 keeps
	 * FCGX_Accept_r's opening "finish the current request" from closing
	 * it, and listen_sock -1 makes it return instead of accepting when
	 * the connection turns out to be closed (the web server closed a
	 * kept connection) or not FastCGI: libfcgi has closed it then.
	 */
	fx = xcalloc(1, sizeof(*fx));
	FCGX_InitRequest(fx, -1, 0);
	fx->ipcFd = c->fd;
	fx->keepConnection = 1;
	if (FCGX_Accept_r(fx) < 0) {
		FCGX_Free(fx, 1);
		conns_release(c, -1);
		free(fx);
		return;
	}
	pthread_mutex_lock(&C.lock);
	C.st.requests++;
	if (c->served++ > 0)
		C.st.reused++;
	pthread_mutex_unlock(&C.lock);
	C.fn(fx, c);
}

/*
 * Every request thread waits in epoll_wait itself (leader/follower): the
 * thread woken for a connection serves it, so a request costs one wake-up
 * and no hand-off.  EPOLLONESHOT gives each ready descriptor to one
 * thread; the wake fd (level-triggered) wakes them all to leave.
 */
static void *
thread_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct epoll_event ev;
		int n = epoll_wait(C.ep, &ev, 1, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_ERROR, "epoll_failed", "epoll_wait: %s",
			    strerror(errno));
			usleep(10000);
			continue;
		}
		if (n == 0)
			continue;
		if (ev.data.ptr == &wake_tag)
			break;
		if (ev.data.ptr == &listen_tag) {
			accept_some();
			rearm_listener();
			continue;
		}
		pthread_mutex_lock(&C.lock);
		unpark_locked(ev.data.ptr);
		pthread_mutex_unlock(&C.lock);
		serve_conn(ev.data.ptr);
	}
	return NULL;
}

/* ---- public -------------------------------------------------------------- */

void
conns_release(struct conns_conn *c, int fd)
{
	if (c == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	pthread_mutex_lock(&C.lock);
	if (fd < 0 || C.stopped) {
		C.st.open--;
		pthread_mutex_unlock(&C.lock);
		if (fd >= 0)
			close(fd);
		free(c);
		return;
	}
	wait_locked(c, EPOLL_CTL_MOD);
	pthread_mutex_unlock(&C.lock);
}

int
conns_start(int listen_fd, int nthreads, conns_handler_fn fn, char **err)
{
	struct epoll_event ev;
	int fl, i;

	C.fn = fn;
	C.lfd = listen_fd;
	fl = fcntl(listen_fd, F_GETFL);
	if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		*err = xasprintf("listening socket: fcntl: %s",
		    strerror(errno));
		return -1;
	}
	C.ep = epoll_create1(EPOLL_CLOEXEC);
	C.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (C.ep < 0 || C.wakefd < 0) {
		*err = xasprintf("epoll/eventfd: %s", strerror(errno));
		goto fail;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.ptr = &listen_tag;
	if (epoll_ctl(C.ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		*err = xasprintf("epoll_ctl (listening socket): %s",
		    strerror(errno));
		goto fail;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &wake_tag;
	if (epoll_ctl(C.ep, EPOLL_CTL_ADD, C.wakefd, &ev) < 0) {
		*err = xasprintf("epoll_ctl (wake fd): %s", strerror(errno));
		goto fail;
	}
	C.threads = xcalloc((size_t)nthreads, sizeof(*C.threads));
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&C.threads[i], NULL, thread_main, NULL)
		    != 0)
			break;
		C.nthreads++;
	}
	if (C.nthreads == 0) {
		*err = xstrdup("cannot start the request threads");
		goto fail;
	}
	C.started = true;
	return 0;
fail:
	free(C.threads);
	C.threads = NULL;
	if (C.ep >= 0)
		close(C.ep);
	if (C.wakefd >= 0)
		close(C.wakefd);
	C.ep = C.wakefd = -1;
	return -1;
}

void
conns_stop(void)
{
	uint64_t one = 1;
	int i;

	if (!C.started)
		return;
	/* Every thread leaves after its current request. */
	(void)!write(C.wakefd, &one, sizeof(one));
	for (i = 0; i < C.nthreads; i++)
		pthread_join(C.threads[i], NULL);
	free(C.threads);
	C.threads = NULL;
	C.nthreads = 0;

	/* Idle connections are closed (a request that had arrived on one
	 * and was not taken is refused with it); connections the hub still
	 * holds are closed when it lets them go. */
	pthread_mutex_lock(&C.lock);
	C.stopped = true;
	while (C.parked != NULL) {
		struct conns_conn *c = C.parked;
		unpark_locked(c);
		C.st.open--;
		close(c->fd);
		free(c);
	}
	pthread_mutex_unlock(&C.lock);
	close(C.ep);
	close(C.wakefd);
	C.ep = C.wakefd = -1;
	C.started = false;
}

void
conns_get_stats(struct conns_stats *st)
{
	pthread_mutex_lock(&C.lock);
	*st = C.st;
	pthread_mutex_unlock(&C.lock);
}

void
conns_metrics(struct strbuf *sb)
{
	struct conns_stats st;

	conns_get_stats(&st);
	sb_addf(sb, "# TYPE instag_agent_fastcgi_connections gauge\n"
	    "instag_agent_fastcgi_connections %llu\n"
	    "# TYPE instag_agent_fastcgi_connections_idle gauge\n"
	    "instag_agent_fastcgi_connections_idle %llu\n"
	    "# TYPE instag_agent_fastcgi_connections_total counter\n"
	    "instag_agent_fastcgi_connections_total %llu\n"
	    "# TYPE instag_agent_fastcgi_requests_total counter\n"
	    "instag_agent_fastcgi_requests_total %llu\n"
	    "# TYPE instag_agent_fastcgi_requests_reused_total counter\n"
	    "instag_agent_fastcgi_requests_reused_total %llu\n",
	    (unsigned long long)st.open, (unsigned long long)st.idle,
	    (unsigned long long)st.accepted, (unsigned long long)st.requests,
	    (unsigned long long)st.reused);
}
