/* SPDX-License-Identifier: MIT */
/*
 * fcgi-null: the "agent that costs nothing", for bench/request-path.  Not
 * a test, not installed.
 *
 *     fcgi-null [-t THREADS] [-b BACKLOG] SOCKET RESPONSE
 *
 * Listens on the Unix socket SOCKET (a path; removed first if it is a
 * socket) and answers every FastCGI request with the bytes of the file
 * RESPONSE, read once at start: a CGI response, i.e. header lines
 * ("Status: 200 OK", "Content-Type: ...", ...), an empty line, the body,
 * exactly as the agent writes it to libfcgi.  No routing, no parsing, no
 * authentication: the request's params are read by libfcgi's
 * FCGX_Accept_r (as in the agent), its body is read to its end and
 * dropped, and the answer goes out as prebuilt FastCGI records (STDOUT
 * records of at most 65535 bytes, the empty STDOUT, END_REQUEST) in one
 * write, as the agent's http_respond does; only the request id is filled
 * in per request.
 *
 * Its threads wait on its connections as the agent's request threads do
 * (src/server/conns.c): THREADS threads (default 4, the harness's
 * request_threads) all wait in epoll_wait on one epoll set holding the
 * listening socket and every idle connection, each armed EPOLLONESHOT;
 * the thread woken for a connection reads its next request with
 * FCGX_Accept_r (on that descriptor, a request of its own), answers it
 * and, when the web server asked to keep the connection (nginx's
 * `fastcgi_keep_conn on`), re-arms it; the thread woken for the
 * listening socket accepts what is there.  BACKLOG is listen()'s
 * (default 128).
 *
 * Runs until SIGTERM or SIGINT (then removes SOCKET; exit status 0).
 * Exit status 1, with the error on stderr, when it cannot start.
 */
#include "auto-config.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define NULL_REC_HEADER 8		/* FCGI_HEADER_LEN */
#define NULL_REC_MAX 65535		/* a record's largest content */
#define NULL_STDOUT 6			/* FCGI_STDOUT */
#define NULL_END_REQUEST 3		/* FCGI_END_REQUEST */
#define NULL_RESPONSE_MAX (16L << 20)	/* RESPONSE's largest size */
#define NULL_THREADS_MAX 1024

/* The answer as FastCGI records, and where each record header starts (its
 * request id is bytes 2 and 3 of each). */
struct null_answer {
	unsigned char *recs;
	size_t len;
	size_t *hdr_off;
	size_t nhdr;
};

static struct null_answer answer;
static int listen_fd = -1, ep = -1;

static void
null_usage(void)
{
	fprintf(stderr, "usage: fcgi-null [-t THREADS] [-b BACKLOG] SOCKET "
	    "RESPONSE\n");
	exit(1);
}

static long
null_number(const char *what, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "fcgi-null: %s must be a number from %ld to "
		    "%ld, not '%s'\n", what, lo, hi, s);
		exit(1);
	}
	return v;
}

/* A record header of type and content length len at p; request id 0
 * (filled in per request). */
static void
null_rec_header(unsigned char *p, int type, size_t len)
{
	p[0] = 1;	/* FCGI_VERSION_1 */
	p[1] = (unsigned char)type;
	p[2] = 0;
	p[3] = 0;
	p[4] = (unsigned char)((len >> 8) & 0xff);
	p[5] = (unsigned char)(len & 0xff);
	p[6] = 0;	/* no padding */
	p[7] = 0;
}

/*
 * Read the file at path (at most NULL_RESPONSE_MAX bytes) into *buf
 * (malloc'd, owned by the caller, who frees it) and its size into *len:
 * 0, or -1 with the error on stderr (nothing to free then).
 */
static int
null_read_file(const char *path, char **buf, size_t *len)
{
	FILE *f;
	char *b = NULL;
	size_t n = 0;
	int rc = -1;

	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "fcgi-null: cannot open %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	b = malloc((size_t)NULL_RESPONSE_MAX + 1);
	if (b == NULL) {
		fprintf(stderr, "fcgi-null: out of memory\n");
		goto cleanup;
	}
	n = fread(b, 1, (size_t)NULL_RESPONSE_MAX + 1, f);
	if (ferror(f)) {
		fprintf(stderr, "fcgi-null: cannot read %s\n", path);
		goto cleanup;
	}
	if (n > (size_t)NULL_RESPONSE_MAX) {
		fprintf(stderr, "fcgi-null: %s is larger than %ld bytes\n",
		    path, NULL_RESPONSE_MAX);
		goto cleanup;
	}
	*buf = b;
	*len = n;
	b = NULL;
	rc = 0;
cleanup:
	free(b);
	fclose(f);
	return rc;
}

/*
 * Build the global answer from the CGI response resp (len bytes): checks
 * that it has a header block ending in an empty line ("\r\n\r\n" or
 * "\n\n") with a Status line.  0, or -1 with the error on stderr.  The
 * records (answer.recs, answer.hdr_off) live until the process ends.
 */
static int
null_build(const char *resp, size_t len, const char *path)
{
	size_t nrec = len / NULL_REC_MAX + (len % NULL_REC_MAX != 0);
	size_t off = 0, out = 0, i = 0;
	const char *end;

	end = memmem(resp, len, "\r\n\r\n", 4);
	if (end == NULL)
		end = memmem(resp, len, "\n\n", 2);
	if (end == NULL || len < 8 || strncmp(resp, "Status: ", 8) != 0) {
		fprintf(stderr, "fcgi-null: %s is not a CGI response (\"Status:"
		    " ...\" and the other header lines, an empty line, the "
		    "body)\n", path);
		return -1;
	}
	answer.nhdr = nrec + 2;
	answer.len = len + answer.nhdr * NULL_REC_HEADER + 8;
	answer.recs = malloc(answer.len);
	answer.hdr_off = calloc(answer.nhdr, sizeof(*answer.hdr_off));
	if (answer.recs == NULL || answer.hdr_off == NULL) {
		fprintf(stderr, "fcgi-null: out of memory\n");
		return -1;
	}
	while (off < len) {
		size_t chunk = len - off > NULL_REC_MAX ? NULL_REC_MAX :
		    len - off;

		answer.hdr_off[i++] = out;
		null_rec_header(answer.recs + out, NULL_STDOUT, chunk);
		out += NULL_REC_HEADER;
		memcpy(answer.recs + out, resp + off, chunk);
		out += chunk;
		off += chunk;
	}
	answer.hdr_off[i++] = out;
	null_rec_header(answer.recs + out, NULL_STDOUT, 0);
	out += NULL_REC_HEADER;
	answer.hdr_off[i++] = out;
	null_rec_header(answer.recs + out, NULL_END_REQUEST, 8);
	out += NULL_REC_HEADER;
	/* appStatus 0, protocolStatus FCGI_REQUEST_COMPLETE (0), reserved */
	memset(answer.recs + out, 0, 8);
	out += 8;
	if (out != answer.len || i != answer.nhdr) {
		fprintf(stderr, "fcgi-null: internal error building the "
		    "records\n");
		return -1;
	}
	return 0;
}

/* Write all of buf (len bytes) to fd: 0, or -1. */
static int
null_write_all(int fd, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Read the request's body to its end and drop it: true when the end was
 * reached without an error. */
static bool
null_drain(FCGX_Stream *in)
{
	char buf[4096];

	while (FCGX_GetStr(buf, (int)sizeof(buf), in) > 0)
		;
	return FCGX_HasSeenEOF(in) && FCGX_GetError(in) == 0;
}

/* Arm fd (op: EPOLL_CTL_ADD or _MOD) for one wake-up: 0, or -1. */
static int
null_arm(int fd, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.fd = fd;
	return epoll_ctl(ep, op, fd, &ev);
}

/* Accept what is waiting on the listening socket (non-blocking) and arm
 * each new connection; then re-arm the listening socket. */
static void
null_accept(void)
{
	int i, fd;

	for (i = 0; i < 64; i++) {
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "fcgi-null: accept: %s\n",
				    strerror(errno));
			break;
		}
		if (null_arm(fd, EPOLL_CTL_ADD) < 0) {
			fprintf(stderr, "fcgi-null: epoll_ctl: %s\n",
			    strerror(errno));
			close(fd);
		}
	}
	if (null_arm(listen_fd, EPOLL_CTL_MOD) < 0)
		fprintf(stderr, "fcgi-null: epoll_ctl (listening socket): "
		    "%s\n", strerror(errno));
}

/*
 * The next request on connection fd: read it (FCGX_Accept_r on fd, with
 * no listening socket: it returns < 0, having closed fd, when the web
 * server has closed the connection), drain its body, write the answer
 * with its request id from recs (this thread's copy of the records), end
 * the request without libfcgi's own end records, then re-arm fd when it
 * is kept, else close it.
 */
static void
null_serve(int fd, unsigned char *recs)
{
	FCGX_Request fx;
	bool keep;
	size_t i;

	FCGX_InitRequest(&fx, -1, 0);
	fx.ipcFd = fd;
	/* FCGX_Accept_r's opening "finish the previous request" must not
	 * close fd. */
	fx.keepConnection = 1;
	if (FCGX_Accept_r(&fx) < 0) {
		FCGX_Free(&fx, 1);
		return;
	}
	keep = fx.keepConnection && null_drain(fx.in);
	for (i = 0; i < answer.nhdr; i++) {
		recs[answer.hdr_off[i] + 2] =
		    (unsigned char)((fx.requestId >> 8) & 0xff);
		recs[answer.hdr_off[i] + 3] =
		    (unsigned char)(fx.requestId & 0xff);
	}
	if (null_write_all(fd, recs, answer.len) < 0)
		keep = false;
	/* The end records are written: free the streams without libfcgi
	 * writing its own; close fd unless kept. */
	FCGX_Free(&fx, !keep);
	if (keep && null_arm(fd, EPOLL_CTL_MOD) < 0) {
		fprintf(stderr, "fcgi-null: epoll_ctl: %s\n", strerror(errno));
		close(fd);
	}
}

/* A thread: wait for a ready descriptor, serve it, again.  arg is the
 * thread's copy of the records (the request id differs between
 * connections). */
static void *
null_thread(void *arg)
{
	for (;;) {
		struct epoll_event ev;
		int n = epoll_wait(ep, &ev, 1, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "fcgi-null: epoll_wait: %s\n",
			    strerror(errno));
			usleep(10000);
			continue;
		}
		if (n == 0)
			continue;
		if (ev.data.fd == listen_fd)
			null_accept();
		else
			null_serve(ev.data.fd, arg);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	long threads = 4, backlog = 128, t;
	const char *sock_path, *resp_path;
	char *resp = NULL;
	size_t resp_len = 0;
	struct stat st;
	sigset_t stop;
	pthread_t tid;
	int opt, sig, fl, rc = 1;

	while ((opt = getopt(argc, argv, "t:b:")) != -1) {
		switch (opt) {
		case 't':
			threads = null_number("THREADS", optarg, 1,
			    NULL_THREADS_MAX);
			break;
		case 'b':
			backlog = null_number("BACKLOG", optarg, 1, INT_MAX);
			break;
		default:
			null_usage();
		}
	}
	if (argc - optind != 2)
		null_usage();
	sock_path = argv[optind];
	resp_path = argv[optind + 1];
	if (sock_path[0] != '/' || strchr(sock_path, ':') != NULL) {
		/* FCGX_OpenSocket would take ":PORT" or "HOST:PORT" for
		 * TCP: only an absolute path of a Unix socket here. */
		fprintf(stderr, "fcgi-null: SOCKET must be an absolute path "
		    "without ':', not '%s'\n", sock_path);
		goto cleanup;
	}

	if (null_read_file(resp_path, &resp, &resp_len) < 0 ||
	    null_build(resp, resp_len, resp_path) < 0)
		goto cleanup;

	if (lstat(sock_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "fcgi-null: %s exists and is not a "
			    "socket\n", sock_path);
			goto cleanup;
		}
		unlink(sock_path);
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "fcgi-null: FCGX_Init failed\n");
		goto cleanup;
	}
	listen_fd = FCGX_OpenSocket(sock_path, (int)backlog);
	if (listen_fd < 0) {
		fprintf(stderr, "fcgi-null: cannot listen on %s: %s\n",
		    sock_path, strerror(errno));
		goto cleanup;
	}
	fl = fcntl(listen_fd, F_GETFL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    ep < 0 || null_arm(listen_fd, EPOLL_CTL_ADD) < 0) {
		fprintf(stderr, "fcgi-null: fcntl/epoll: %s\n",
		    strerror(errno));
		goto cleanup;
	}
	/* libfcgi handles SIGTERM itself (it only notes it): every thread
	 * blocks SIGTERM and SIGINT, and main waits for them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	for (t = 0; t < threads; t++) {
		unsigned char *recs = malloc(answer.len);

		if (recs == NULL) {
			fprintf(stderr, "fcgi-null: out of memory\n");
			goto cleanup;
		}
		memcpy(recs, answer.recs, answer.len);
		/* recs belongs to the thread, for the process's life */
		if (pthread_create(&tid, NULL, null_thread, recs) != 0) {
			fprintf(stderr, "fcgi-null: cannot start a thread\n");
			free(recs);
			goto cleanup;
		}
		pthread_detach(tid);
	}
	fprintf(stderr, "fcgi-null: listening on %s, %ld threads, answering "
	    "%zu bytes (%s)\n", sock_path, threads, resp_len, resp_path);
	while (sigwait(&stop, &sig) != 0)
		;
	unlink(sock_path);
	rc = 0;
cleanup:
	free(resp);
	return rc;
}
