/* SPDX-License-Identifier: MIT */
/*
 * fake-runpod: the HTTP/1.1 side.  One process, one thread, poll(2), on
 * 127.0.0.1 only, plain HTTP.  Keep-alive and pipelining (one request at a
 * time per connection), Content-Length bodies only: a Transfer-Encoding
 * gets 411, a body over 1 MiB gets 413, a header block over 16 KiB gets
 * 431; each of those closes the connection.  "Expect: 100-continue" is
 * answered with "100 Continue".  An event stream (GET /v2/pods/{id}/logs)
 * is sent chunked and keeps its connection: every STREAM_TICK_MS the
 * loop adds the events that are new; it ends when the client closes.
 *
 *   fake-runpod --port N --api-key-file F [--read-only-key-file F]
 *               [--ssh-host H] [--ssh-port P] [--state-delay-ms N]
 *               [--volume-dir DIR] [--log FILE]
 *
 * Prints "PORT=<n>" on stdout once listening; exits 0 on SIGTERM/SIGINT.
 */
#include "auto-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_runpod.h"
#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"

#define MAX_CONNS 128
#define MAX_HEADER (16 * 1024)
#define MAX_BODY (1024 * 1024)
#define READ_CHUNK (64 * 1024)
#define STREAM_TICK_MS 50

struct conn {
	int fd;
	struct strbuf in;
	struct strbuf out;
	size_t out_off;
	int64_t send_at;	/* monotonic ms before which out is held */
	bool close_after;
	bool sent_continue;
	bool draining;		/* answered and shut down: discard input */
	int64_t drain_until;	/* monotonic ms */
	struct fake_stream *stream;	/* an open event stream, or NULL */
};

static struct conn conns[MAX_CONNS];
static int sig_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(sig_pipe[1], &c, 1) < 0) {
		/* nothing to do: the pipe is full, a stop is pending */
	}
	errno = saved;
}

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sb_free(&c->in);
	sb_free(&c->out);
	c->out_off = 0;
	c->send_at = 0;
	c->close_after = false;
	c->sent_continue = false;
	c->draining = false;
	c->drain_until = 0;
	fake_logs_stream_free(c->stream);
	c->stream = NULL;
}

/* text as one chunk of a chunked body. */
static void
add_chunk(struct strbuf *out, const char *text, size_t len)
{
	if (len == 0)
		return;
	sb_addf(out, "%zx\r\n", len);
	sb_addn(out, text, len);
	sb_adds(out, "\r\n");
}

/* The events of c's stream that are new, as a chunk. */
static void
stream_more(struct conn *c)
{
	struct strbuf ev = SB_INIT;

	if (fake_logs_stream_more(c->stream, &ev))
		add_chunk(&c->out, ev.buf, ev.len);
	sb_free(&ev);
}

/* Queue a complete answer on c. */
static void
queue_resp(struct conn *c, struct fake_resp *r)
{
	size_t blen = r->body ? strlen(r->body) : 0;

	if (r->stream != NULL) {
		/* getPodLogs' headers; the body goes chunked and stays
		 * open */
		sb_addf(&c->out, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
		    "Cache-Control: no-cache\r\nConnection: keep-alive\r\n"
		    "X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n",
		    r->content_type);
		sb_addn(&c->out, r->headers.buf, r->headers.len);
		sb_adds(&c->out, "\r\n");
		add_chunk(&c->out, r->body ? r->body : "", blen);
		c->stream = r->stream;
		r->stream = NULL;
		c->close_after = false;
		c->send_at = r->delay_ms > 0 ? clock_mono_ms() + r->delay_ms :
		    0;
		free(r->body);
		r->body = NULL;
		sb_free(&r->headers);
		return;
	}
	sb_addf(&c->out, "HTTP/1.1 %d %s\r\n", r->status,
	    fake_reason(r->status));
	if (r->status != 204 && r->status != 304) {
		if (r->body != NULL && r->content_type != NULL)
			sb_addf(&c->out, "Content-Type: %s\r\n",
			    r->content_type);
		sb_addf(&c->out, "Content-Length: %zu\r\n", blen);
	}
	sb_adds(&c->out, "Cache-Control: no-store\r\n");
	if (r->headers.len > 0)
		sb_addn(&c->out, r->headers.buf, r->headers.len);
	if (c->close_after)
		sb_adds(&c->out, "Connection: close\r\n");
	sb_adds(&c->out, "\r\n");
	if (blen > 0 && r->status != 204 && r->status != 304)
		sb_addn(&c->out, r->body, blen);
	c->send_at = r->delay_ms > 0 ? clock_mono_ms() + r->delay_ms : 0;
	free(r->body);
	r->body = NULL;
	sb_free(&r->headers);
}

/* A problem answer made here (not by the API), closing the connection. */
static void
queue_error(struct conn *c, int status, const char *detail)
{
	struct fake_resp r;
	struct strbuf b = SB_INIT;

	memset(&r, 0, sizeof(r));
	sb_addf(&b, "{\"title\":");
	sb_add_json_str(&b, fake_reason(status));
	sb_addf(&b, ",\"status\":%d,\"detail\":", status);
	sb_add_json_str(&b, detail);
	sb_adds(&b, "}");
	r.status = status;
	r.content_type = "application/problem+json";
	r.body = sb_take(&b);
	c->close_after = true;
	queue_resp(c, &r);
	log_kv(LOG_INFO, "http_error", detail, "status",
	    fake_reason(status), NULL);
}

static const char *
find_crlfcrlf(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i + 3 < len; i++)
		if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' &&
		    s[i + 3] == '\n')
			return s + i;
	return NULL;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/*
 * Try to take one request off c->in.  Returns true if something was
 * queued on c->out (an answer or "100 Continue"), false when more input
 * is needed.
 */
static bool
process_one(struct conn *c)
{
	const char *end;
	char *head, *line, *save = NULL, *method, *target, *version, *p;
	char *auth = NULL, *last_id = NULL;
	size_t hlen, clen = 0;
	bool have_clen = false, expect_continue = false, keep = true;
	bool te = false, bad = false;
	struct fake_req req;
	struct fake_resp resp;
	char *body, *path, *query;

	end = find_crlfcrlf(sb_str(&c->in), c->in.len);
	if (end == NULL) {
		if (c->in.len > MAX_HEADER) {
			queue_error(c, 431, "request header block too large");
			return true;
		}
		return false;
	}
	hlen = (size_t)(end - c->in.buf) + 4;
	if (hlen > MAX_HEADER) {
		queue_error(c, 431, "request header block too large");
		return true;
	}
	head = xstrndup(c->in.buf, hlen - 4);
	line = strtok_r(head, "\r\n", &save);
	if (line == NULL) {
		free(head);
		queue_error(c, 400, "empty request line");
		return true;
	}
	method = strtok_r(line, " ", &p);
	target = method ? strtok_r(NULL, " ", &p) : NULL;
	version = target ? strtok_r(NULL, " ", &p) : NULL;
	if (method == NULL || target == NULL || version == NULL ||
	    strncmp(version, "HTTP/1.", 7) != 0 || target[0] != '/') {
		free(head);
		queue_error(c, 400, "malformed request line");
		return true;
	}
	if (strcmp(version, "HTTP/1.0") == 0)
		keep = false;
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		char *colon = strchr(line, ':');
		char *name, *val;

		if (colon == NULL) {
			bad = true;
			break;
		}
		*colon = '\0';
		name = line;
		val = trim(colon + 1);
		if (strcasecmp(name, "Content-Length") == 0) {
			char *e;
			unsigned long long v;

			errno = 0;
			v = strtoull(val, &e, 10);
			if (e == val || *e != '\0' || errno != 0 ||
			    val[0] == '-' || (have_clen && v != clen)) {
				bad = true;
				break;
			}
			have_clen = true;
			clen = v > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)v;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			te = true;
		} else if (strcasecmp(name, "Authorization") == 0) {
			auth = val;
		} else if (strcasecmp(name, "Last-Event-ID") == 0) {
			last_id = val;
		} else if (strcasecmp(name, "Connection") == 0) {
			if (strcasecmp(val, "close") == 0)
				keep = false;
			else if (strcasecmp(val, "keep-alive") == 0)
				keep = true;
		} else if (strcasecmp(name, "Expect") == 0) {
			if (strcasecmp(val, "100-continue") == 0)
				expect_continue = true;
		}
	}
	if (bad) {
		free(head);
		queue_error(c, 400, "malformed header field");
		return true;
	}
	if (te) {
		free(head);
		queue_error(c, 411, "chunked or other transfer codings are "
		    "not accepted; send Content-Length");
		return true;
	}
	if (clen > MAX_BODY) {
		free(head);
		queue_error(c, 413, "request body larger than 1 MiB");
		return true;
	}
	if (c->in.len < hlen + clen) {
		free(head);
		if (expect_continue && !c->sent_continue) {
			c->sent_continue = true;
			sb_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
			c->send_at = 0;
			return true;
		}
		return false;
	}

	body = xstrndup(c->in.buf + hlen, clen);
	path = xstrdup(target);
	query = strchr(path, '?');
	if (query != NULL)
		*query++ = '\0';
	else
		query = path + strlen(path);
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.query = query;
	req.authorization = auth;
	req.last_event_id = last_id;
	req.body = body;
	req.body_len = clen;
	memset(&resp, 0, sizeof(resp));
	c->close_after = !keep;
	fake_api_handle(&req, &resp);
	queue_resp(c, &resp);
	free(body);
	free(path);
	free(head);

	/* drop the request from the input */
	memmove(c->in.buf, c->in.buf + hlen + clen, c->in.len - hlen - clen);
	c->in.len -= hlen + clen;
	c->in.buf[c->in.len] = '\0';
	c->sent_continue = false;
	return true;
}

/* Read what is there; false when the connection is finished. */
static bool
conn_read(struct conn *c)
{
	char buf[READ_CHUNK];
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n == 0)
		return false;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR;
	sb_addn(&c->in, buf, (size_t)n);
	if (c->in.len > MAX_HEADER + MAX_BODY + READ_CHUNK) {
		/* a peer that pipelines without reading: stop it */
		return false;
	}
	return true;
}

/* Write what can be written; false when the connection is finished. */
static bool
conn_write(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.buf + c->out_off,
		    c->out.len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		c->out_off += (size_t)n;
	}
	sb_reset(&c->out);
	c->out_off = 0;
	c->send_at = 0;
	if (c->close_after) {
		/*
		 * Lingering close: the peer may still be sending (a body we
		 * refused); closing now would reset the connection and could
		 * destroy the answer in flight.  Half-close and discard input
		 * until EOF or 2 s.
		 */
		shutdown(c->fd, SHUT_WR);
		c->draining = true;
		c->drain_until = clock_mono_ms() + 2000;
	}
	return true;
}

static char *
read_key_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[4096];
	char *s;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "fake-runpod: cannot open %s: %s\n", path,
		    strerror(errno));
		exit(2);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	s = trim(buf);
	if (*s == '\0') {
		fprintf(stderr, "fake-runpod: %s holds no key\n", path);
		exit(2);
	}
	return xstrdup(s);
}

static long
parse_num(const char *s, const char *what, long min, long max)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if (e == s || *e != '\0' || errno != 0 || v < min || v > max) {
		fprintf(stderr, "fake-runpod: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: fake-runpod --port N --api-key-file F "
	    "[--read-only-key-file F]\n"
	    "       [--ssh-host H] [--ssh-port P] [--state-delay-ms N] "
	    "[--volume-dir DIR] [--log FILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "api-key-file", required_argument, NULL, 'k' },
		{ "read-only-key-file", required_argument, NULL, 'r' },
		{ "ssh-host", required_argument, NULL, 'H' },
		{ "ssh-port", required_argument, NULL, 'P' },
		{ "state-delay-ms", required_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'l' },
		{ "volume-dir", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct fake_options opt;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct sigaction act;
	struct pollfd pfd[MAX_CONNS + 2];
	int cidx[MAX_CONNS + 2];
	long port = 0;
	int lfd, ch, one = 1, log_fd = -1, i;
	const char *key_file = NULL, *ro_file = NULL, *log_file = NULL;
	bool running = true;

	memset(&opt, 0, sizeof(opt));
	opt.ssh_port = 22;
	opt.state_delay_ms = 200;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = parse_num(optarg, "port", 0, 65535);
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'r':
			ro_file = optarg;
			break;
		case 'H':
			free(opt.ssh_host);
			opt.ssh_host = xstrdup(optarg);
			break;
		case 'P':
			opt.ssh_port = (int)parse_num(optarg, "ssh port", 1,
			    65535);
			break;
		case 'v':
			free(opt.volume_dir);
			opt.volume_dir = xstrdup(optarg);
			break;
		case 'd':
			opt.state_delay_ms = parse_num(optarg,
			    "state delay", 0, 3600L * 1000);
			break;
		case 'l':
			log_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || key_file == NULL)
		usage();
	opt.api_key = read_key_file(key_file);
	if (ro_file != NULL)
		opt.ro_key = read_key_file(ro_file);
	if (opt.ssh_host == NULL)
		opt.ssh_host = xstrdup("127.0.0.1");
	if (log_file != NULL) {
		log_fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND |
		    O_CLOEXEC, 0600);
		if (log_fd < 0) {
			fprintf(stderr, "fake-runpod: cannot open %s: %s\n",
			    log_file, strerror(errno));
			return 2;
		}
		log_set_fd(log_fd);
	}

	if (pipe(sig_pipe) < 0) {
		perror("fake-runpod: pipe");
		return 1;
	}
	set_nonblock(sig_pipe[0]);
	set_nonblock(sig_pipe[1]);
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigemptyset(&act.sa_mask);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0) {
		perror("fake-runpod: socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0) {
		perror("fake-runpod: bind/listen");
		return 1;
	}
	set_nonblock(lfd);
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;

	fake_api_init(&opt);
	printf("PORT=%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	log_msg(LOG_INFO, "listening", "fake-runpod on 127.0.0.1:%d",
	    ntohs(sa.sin_port));

	while (running) {
		int n = 0, timeout = -1, rc;
		int64_t now = clock_mono_ms();

		pfd[n].fd = sig_pipe[0];
		pfd[n].events = POLLIN;
		cidx[n++] = -1;
		pfd[n].fd = lfd;
		pfd[n].events = POLLIN;
		cidx[n++] = -1;
		for (i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			if (c->fd < 0)
				continue;
			pfd[n].fd = c->fd;
			if (c->draining) {
				int64_t w = c->drain_until - now;

				if (w < 0)
					w = 0;
				pfd[n].events = POLLIN;
				if (timeout < 0 || w < timeout)
					timeout = (int)w;
			} else if (c->stream != NULL && (c->out.len == 0 ||
			    c->send_at <= now)) {
				/* watch for the peer going away; look for
				 * new events every tick */
				pfd[n].events = POLLIN | (c->out.len > 0 ?
				    POLLOUT : 0);
				if (timeout < 0 || timeout > STREAM_TICK_MS)
					timeout = STREAM_TICK_MS;
			} else if (c->out.len > 0) {
				if (c->send_at > now) {
					int64_t w = c->send_at - now;

					pfd[n].events = 0;
					if (timeout < 0 || w < timeout)
						timeout = (int)(w > INT_MAX ?
						    INT_MAX : w);
				} else {
					pfd[n].events = POLLOUT;
				}
			} else {
				pfd[n].events = POLLIN;
			}
			cidx[n++] = i;
		}
		rc = poll(pfd, (nfds_t)n, timeout);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			perror("fake-runpod: poll");
			break;
		}
		if (pfd[0].revents & POLLIN)
			running = false;
		if (pfd[1].revents & POLLIN) {
			for (;;) {
				int fd = accept(lfd, NULL, NULL);

				if (fd < 0)
					break;
				for (i = 0; i < MAX_CONNS; i++)
					if (conns[i].fd < 0)
						break;
				if (i == MAX_CONNS) {
					close(fd);
					continue;
				}
				set_nonblock(fd);
				conns[i].fd = fd;
			}
		}
		now = clock_mono_ms();
		for (i = 2; i < n; i++) {
			struct conn *c = &conns[cidx[i]];
			bool ok = true;

			if (c->fd < 0)
				continue;
			if (pfd[i].revents & (POLLERR | POLLNVAL)) {
				conn_close(c);
				continue;
			}
			if (c->draining) {
				char junk[4096];
				ssize_t r = 1;

				if (pfd[i].revents & (POLLIN | POLLHUP))
					r = recv(c->fd, junk, sizeof(junk), 0);
				if (r == 0 || (r < 0 && errno != EAGAIN &&
				    errno != EINTR) || now >= c->drain_until)
					conn_close(c);
				continue;
			}
			if (c->stream != NULL) {
				char junk[4096];
				ssize_t r = 1;

				/* input after the request is discarded; EOF
				 * or an error ends the stream */
				if (pfd[i].revents & (POLLIN | POLLHUP))
					r = recv(c->fd, junk, sizeof(junk), 0);
				if (r == 0 || (r < 0 && errno != EAGAIN &&
				    errno != EWOULDBLOCK && errno != EINTR)) {
					conn_close(c);
					continue;
				}
				if (c->send_at > now)
					continue;
				if (c->out.len == 0)
					stream_more(c);
				if (c->out.len > 0 && !conn_write(c))
					conn_close(c);
				continue;
			}
			if (c->out.len > 0 && c->send_at > now &&
			    (pfd[i].revents & POLLHUP)) {
				/* the peer is gone while its answer is held */
				conn_close(c);
				continue;
			}
			if (c->out.len > 0) {
				if (c->send_at <= now &&
				    (pfd[i].revents & (POLLOUT | POLLHUP)))
					ok = conn_write(c);
			} else if (pfd[i].revents & (POLLIN | POLLHUP)) {
				ok = conn_read(c);
			}
			/*
			 * Answer what is complete, one request at a time, so
			 * pipelined requests are served without new input.
			 */
			while (ok && !c->draining && c->out.len == 0 &&
			    !c->close_after && c->stream == NULL &&
			    process_one(c)) {
				if (c->send_at > clock_mono_ms())
					break;
				ok = conn_write(c);
			}
			if (ok && c->stream != NULL)
				sb_reset(&c->in);	/* no more requests */
			if (!ok)
				conn_close(c);
		}
	}

	log_msg(LOG_INFO, "stopping", "fake-runpod stopping");
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i].fd >= 0)
			conn_close(&conns[i]);
	close(lfd);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	fake_api_free();
	free(opt.api_key);
	free(opt.ro_key);
	free(opt.ssh_host);
	free(opt.volume_dir);
	if (log_fd >= 0) {
		log_set_fd(2);
		close(log_fd);
	}
	return 0;
}
