/* SPDX-License-Identifier: MIT */
/*
 * conns: the dispatcher, its queue and the request threads.  See conns.h;
 * docs/internals.md ("FastCGI connections") tells the whole life of a
 * connection.
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
	struct conns_conn *qnext;	/* run queue */
};

static char listen_tag, wake_tag;	/* epoll data for the two fds */

static struct {
	conns_handler_fn fn;
	int lfd, ep, wakefd;
	pthread_t disp;
	pthread_t *threads;
	int nthreads;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct conns_conn *qhead, *qtail;	/* ready, for a thread */
	struct conns_conn *parked;		/* waiting in epoll */
	bool stopping;		/* the dispatcher is to leave */
	bool stopped;		/* nothing is parked any more */
	bool threads_exit;	/* threads leave once the queue is empty */
	struct conns_stats st;
	int64_t last_full_log_ms;
} C = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
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

static void
enqueue_locked(struct conns_conn *c)
{
	c->qnext = NULL;
	if (C.qtail)
		C.qtail->qnext = c;
	else
		C.qhead = c;
	C.qtail = c;
	pthread_cond_signal(&C.cond);
}

/* ---- dispatcher ---------------------------------------------------------- */

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
	struct epoll_event ev;
	int one = 1;

	set_io_timeouts(fd);
	if (sa->ss_family == AF_INET || sa->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	c->fd = fd;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.ptr = c;
	pthread_mutex_lock(&C.lock);
	C.st.accepted++;
	C.st.open++;
	park_locked(c);
	if (epoll_ctl(C.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_msg(LOG_WARN, "epoll_failed", "epoll_ctl ADD: %s",
		    strerror(errno));
		unpark_locked(c);
		C.st.open--;
		pthread_mutex_unlock(&C.lock);
		close(fd);
		free(c);
		return;
	}
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

static void *
disp_main(void *arg)
{
	struct epoll_event ev[64];

	(void)arg;
	for (;;) {
		int i, n = epoll_wait(C.ep, ev, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_ERROR, "epoll_failed", "epoll_wait: %s",
			    strerror(errno));
			usleep(10000);
			continue;
		}
		for (i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;

			if (p == &listen_tag)
				accept_some();
			else if (p != &wake_tag) {
				struct conns_conn *c = p;

				pthread_mutex_lock(&C.lock);
				unpark_locked(c);
				enqueue_locked(c);
				pthread_mutex_unlock(&C.lock);
			}
		}
		pthread_mutex_lock(&C.lock);
		if (C.stopping) {
			pthread_mutex_unlock(&C.lock);
			break;
		}
		pthread_mutex_unlock(&C.lock);
	}
	return NULL;
}

/* ---- request threads ----------------------------------------------------- */

static void *
thread_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct conns_conn *c;
		FCGX_Request *fx;

		pthread_mutex_lock(&C.lock);
		while (C.qhead == NULL && !C.threads_exit)
			pthread_cond_wait(&C.cond, &C.lock);
		c = C.qhead;
		if (c == NULL) {
			pthread_mutex_unlock(&C.lock);
			break;
		}
		C.qhead = c->qnext;
		if (C.qhead == NULL)
			C.qtail = NULL;
		pthread_mutex_unlock(&C.lock);

		/*
		 * Read the request on c's descriptor.  keepConnection = 1
		 * keeps FCGX_Accept_r's opening "finish the current request"
		 * from closing it, and listen_sock -1 makes it return instead
		 * of accepting when the connection turns out to be closed
		 * (the web server closed a kept connection) or not FastCGI:
		 * libfcgi has closed it then.
		 */
		fx = xcalloc(1, sizeof(*fx));
		FCGX_InitRequest(fx, -1, 0);
		fx->ipcFd = c->fd;
		fx->keepConnection = 1;
		if (FCGX_Accept_r(fx) < 0) {
			FCGX_Free(fx, 1);
			conns_release(c, -1);
			free(fx);
			continue;
		}
		pthread_mutex_lock(&C.lock);
		C.st.requests++;
		if (c->served++ > 0)
			C.st.reused++;
		pthread_mutex_unlock(&C.lock);
		C.fn(fx, c);
	}
	return NULL;
}

/* ---- public -------------------------------------------------------------- */

void
conns_release(struct conns_conn *c, int fd)
{
	struct epoll_event ev;

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
	/* Park first: once re-armed, the dispatcher may take it at once. */
	park_locked(c);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.ptr = c;
	if (epoll_ctl(C.ep, EPOLL_CTL_MOD, fd, &ev) < 0) {
		log_msg(LOG_WARN, "epoll_failed", "epoll_ctl MOD: %s",
		    strerror(errno));
		unpark_locked(c);
		C.st.open--;
		pthread_mutex_unlock(&C.lock);
		close(fd);
		free(c);
		return;
	}
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
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_tag;
	if (epoll_ctl(C.ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		*err = xasprintf("epoll_ctl (listening socket): %s",
		    strerror(errno));
		goto fail;
	}
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
	if (C.nthreads == 0 ||
	    pthread_create(&C.disp, NULL, disp_main, NULL) != 0) {
		*err = xstrdup("cannot start the request threads");
		pthread_mutex_lock(&C.lock);
		C.threads_exit = true;
		C.stopped = true;
		pthread_cond_broadcast(&C.cond);
		pthread_mutex_unlock(&C.lock);
		for (i = 0; i < C.nthreads; i++)
			pthread_join(C.threads[i], NULL);
		C.nthreads = 0;
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
	pthread_mutex_lock(&C.lock);
	C.stopping = true;
	pthread_mutex_unlock(&C.lock);
	(void)!write(C.wakefd, &one, sizeof(one));
	pthread_join(C.disp, NULL);

	/* Idle connections are closed; the threads serve what was queued
	 * (those requests had arrived) and leave. */
	pthread_mutex_lock(&C.lock);
	C.stopped = true;
	while (C.parked != NULL) {
		struct conns_conn *c = C.parked;
		unpark_locked(c);
		C.st.open--;
		close(c->fd);
		free(c);
	}
	C.threads_exit = true;
	pthread_cond_broadcast(&C.cond);
	pthread_mutex_unlock(&C.lock);
	for (i = 0; i < C.nthreads; i++)
		pthread_join(C.threads[i], NULL);
	free(C.threads);
	C.threads = NULL;
	C.nthreads = 0;
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
