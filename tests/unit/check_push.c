/* SPDX-License-Identifier: MIT */
/*
 * push against a real HTTPS receiver: a thread in this process serving TLS
 * (OpenSSL) on 127.0.0.1 with a throwaway self-signed certificate, which
 * answers each request with the next status from a plan and records what
 * it received.
 */
#include "auto-config.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "lib/log.h"
#include "a2a/push.h"
#include "testutil.h"

#define MAXREQ 32

static char tmpdir[64];
static char cert_path[128], key_path[128];

struct req {
	char line[512];		/* "POST /path HTTP/1.1" */
	char *headers;		/* raw header lines */
	char *body;
	int64_t at_ms;
};

struct plan {
	int status;
	const char *extra;	/* extra header lines, "\r\n" terminated */
};

static struct {
	SSL_CTX *ctx;
	int lfd, port;
	pthread_t thread;
	volatile int stop;
	pthread_mutex_t mu;
	struct req reqs[MAXREQ];
	int nreq;
	struct plan plan[MAXREQ];
	int nplan;
	int repeat_last;	/* answer the last planned status forever */
} R;

static struct config *cfg;
static char log_path[160];
static int log_fd = -1;
static char url[128];

/* ------------------------------------------------------------ receiver -- */

/* Read one request on ssl; 0 and filled r, or -1. */
static int
read_request(SSL *ssl, struct req *r)
{
	char buf[16384];
	size_t len = 0, need;
	char *end, *cl, *p;
	long clen = 0;
	int n;

	for (;;) {
		if (len >= sizeof(buf) - 1)
			return -1;
		n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len));
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	r->at_ms = tu_now_ms();
	p = strstr(buf, "\r\n");
	snprintf(r->line, sizeof(r->line), "%.*s", (int)(p - buf), buf);
	r->headers = strndup(p + 2, (size_t)(end + 2 - (p + 2)));
	for (cl = r->headers; cl != NULL; cl = strstr(cl, "\r\n")) {
		if (cl != r->headers)
			cl += 2;
		if (strncasecmp(cl, "Content-Length:", 15) == 0) {
			clen = atol(cl + 15);
			break;
		}
	}
	if (clen < 0 || clen > 8192)
		return -1;
	need = (size_t)(end + 4 - buf) + (size_t)clen;
	while (len < need) {
		n = SSL_read(ssl, buf + len, (int)(need - len));
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
	r->body = strndup(end + 4, (size_t)clen);
	return 0;
}

static void *
receiver_thread(void *arg)
{
	while (!R.stop) {
		struct pollfd pfd = { R.lfd, POLLIN, 0 };
		struct timeval tv = { 3, 0 };
		struct plan pl = { 200, "" };
		struct req r;
		char resp[512];
		SSL *ssl;
		int fd, idx;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept(R.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		ssl = SSL_new(R.ctx);
		SSL_set_fd(ssl, fd);
		memset(&r, 0, sizeof(r));
		if (SSL_accept(ssl) == 1 && read_request(ssl, &r) == 0) {
			pthread_mutex_lock(&R.mu);
			idx = R.nreq;
			if (R.nreq < MAXREQ)
				R.reqs[R.nreq++] = r;
			else {
				free(r.headers);
				free(r.body);
			}
			if (idx < R.nplan)
				pl = R.plan[idx];
			else if (R.repeat_last && R.nplan > 0)
				pl = R.plan[R.nplan - 1];
			pthread_mutex_unlock(&R.mu);
			snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\n"
			    "Content-Length: 2\r\nConnection: close\r\n"
			    "%s\r\nok", pl.status, pl.extra ? pl.extra : "");
			SSL_write(ssl, resp, (int)strlen(resp));
			SSL_shutdown(ssl);
		} else {
			free(r.headers);
			free(r.body);
		}
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

static void
receiver_start(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(&R, 0, sizeof(R));
	pthread_mutex_init(&R.mu, NULL);
	R.ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(R.ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate_file(R.ctx, cert_path,
	    SSL_FILETYPE_PEM), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(R.ctx, key_path,
	    SSL_FILETYPE_PEM), 1);
	R.lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(R.lfd, 0);
	setsockopt(R.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(R.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(R.lfd, 16), 0);
	ck_assert_int_eq(getsockname(R.lfd, (struct sockaddr *)&sa, &sl), 0);
	R.port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&R.thread, NULL, receiver_thread,
	    NULL), 0);
}

static void
receiver_stop(void)
{
	int i;

	R.stop = 1;
	pthread_join(R.thread, NULL);
	close(R.lfd);
	SSL_CTX_free(R.ctx);
	for (i = 0; i < R.nreq; i++) {
		free(R.reqs[i].headers);
		free(R.reqs[i].body);
	}
}

static void
plan(int status, const char *extra)
{
	pthread_mutex_lock(&R.mu);
	R.plan[R.nplan].status = status;
	R.plan[R.nplan].extra = extra;
	R.nplan++;
	pthread_mutex_unlock(&R.mu);
}

static int
nreq(void)
{
	int n;

	pthread_mutex_lock(&R.mu);
	n = R.nreq;
	pthread_mutex_unlock(&R.mu);
	return n;
}

/* Value of header name in r (static buffer), or NULL. */
static const char *
header(const struct req *r, const char *name)
{
	static char val[512];
	const char *p = r->headers, *e;
	size_t n = strlen(name);

	while (p != NULL && *p) {
		e = strstr(p, "\r\n");
		if (e == NULL)
			break;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			snprintf(val, sizeof(val), "%.*s", (int)(e - p), p);
			return val;
		}
		p = e + 2;
	}
	return NULL;
}

/* ------------------------------------------------------------ helpers -- */

static struct push_stats
stats(void)
{
	struct push_stats s;

	push_get_stats(&s);
	return s;
}

static bool
reached(void *arg)
{
	struct push_stats s = stats();

	return s.delivered + s.failed >= *(unsigned long *)arg;
}

/* Wait (bounded) until delivered + failed reaches n; true if it did. */
static int
wait_done(unsigned long n, long timeout_ms)
{
	return tu_poll(reached, &n, timeout_ms);
}

/* The log written so far (caller frees). */
static char *
read_log(void)
{
	return tu_read_file(log_path);
}

static void
setup(void)
{
	char *err = NULL;

	receiver_start();
	cfg = tu_configf("ssrf_allow = 127.0.0.1/32\noutbound_ca_file = %s\n"
	    "push_timeout = 5\npush_max_attempts = 5\n", cert_path);

	snprintf(log_path, sizeof(log_path), "%s/log-%d", tmpdir,
	    (int)getpid());
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	ck_assert_int_ge(log_fd, 0);
	log_set_fd(log_fd);
	log_set_level(LOG_DEBUG);

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/hook?sig=QUERYSECRET",
	    R.port);
	push_set_backoff_base_ms(50);
	ck_assert_msg(push_start(cfg, &err) == 0, "push_start: %s", err);
}

static void
teardown(void)
{
	push_stop();
	receiver_stop();
	config_free(cfg);
	log_set_fd(2);
	close(log_fd);
	unlink(log_path);
}

/* -------------------------------------------------------------- tests -- */

START_TEST(test_headers_and_body)
{
	const char *body = "{\"statusUpdate\":{\"taskId\":\"task-1\"}}";
	struct push_stats s;
	char *log;

	push_deliver("task-1", url, "TOKSECRET", "Bearer", "CREDSECRET",
	    "application/a2a+json", body);
	ck_assert(wait_done(1, TU_HANG_MS));
	s = stats();
	ck_assert_uint_eq(s.queued, 1);
	ck_assert_uint_eq(s.delivered, 1);
	ck_assert_uint_eq(s.failed, 0);
	ck_assert_uint_eq(s.retried, 0);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_int_eq(nreq(), 1);
	ck_assert_str_eq(R.reqs[0].line, "POST /hook?sig=QUERYSECRET HTTP/1.1");
	ck_assert_str_eq(R.reqs[0].body, body);
	ck_assert_pstr_eq(header(&R.reqs[0], "Content-Type"),
	    "application/a2a+json");
	ck_assert_pstr_eq(header(&R.reqs[0], "X-A2A-Notification-Token"),
	    "TOKSECRET");
	ck_assert_pstr_eq(header(&R.reqs[0], "Authorization"),
	    "Bearer CREDSECRET");
	ck_assert_ptr_null(header(&R.reqs[0], "Expect"));

	log = read_log();
	ck_assert_ptr_nonnull(strstr(log, "push_delivered"));
	ck_assert_ptr_null(strstr(log, "TOKSECRET"));
	ck_assert_ptr_null(strstr(log, "CREDSECRET"));
	ck_assert_ptr_null(strstr(log, "QUERYSECRET"));
	free(log);
}
END_TEST

START_TEST(test_no_optional_headers)
{
	push_deliver("task-2", url, "", NULL, NULL, NULL, "{}");
	ck_assert(wait_done(1, TU_HANG_MS));
	ck_assert_uint_eq(stats().delivered, 1);
	ck_assert_int_eq(nreq(), 1);
	ck_assert_pstr_eq(header(&R.reqs[0], "Content-Type"),
	    "application/json");
	ck_assert_ptr_null(header(&R.reqs[0], "X-A2A-Notification-Token"));
	ck_assert_ptr_null(header(&R.reqs[0], "Authorization"));
}
END_TEST

START_TEST(test_retry_5xx)
{
	struct push_stats s;

	plan(503, NULL);
	plan(503, NULL);
	plan(200, NULL);
	push_deliver("task-3", url, "t", NULL, NULL, NULL, "{\"n\":1}");
	ck_assert(wait_done(1, TU_HANG_MS));
	s = stats();
	ck_assert_int_eq(nreq(), 3);
	ck_assert_uint_eq(s.delivered, 1);
	ck_assert_uint_eq(s.retried, 2);
	ck_assert_uint_eq(s.failed, 0);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_str_eq(R.reqs[2].body, "{\"n\":1}");
}
END_TEST

START_TEST(test_retry_after)
{
	int64_t gap;

	plan(429, "Retry-After: 1\r\n");
	plan(200, NULL);
	push_deliver("task-4", url, "t", NULL, NULL, NULL, "{}");
	ck_assert(wait_done(1, TU_HANG_MS));
	ck_assert_uint_eq(stats().delivered, 1);
	ck_assert_uint_eq(stats().retried, 1);
	ck_assert_int_eq(nreq(), 2);
	gap = R.reqs[1].at_ms - R.reqs[0].at_ms;
	/* Retry-After (1 s) honoured; the upper bound is a hang guard. */
	ck_assert_msg(gap >= 900 && gap < TU_HANG_MS, "second attempt after "
	    "%lld ms", (long long)gap);
}
END_TEST

START_TEST(test_permanent_4xx)
{
	struct push_stats s;
	char *log;

	plan(400, NULL);
	push_deliver("task-5", url, "t", NULL, NULL, NULL, "{}");
	ck_assert(wait_done(1, TU_HANG_MS));
	tu_sleep_ms(300);		/* a retry would come after ~50 ms */
	s = stats();
	ck_assert_int_eq(nreq(), 1);
	ck_assert_uint_eq(s.failed, 1);
	ck_assert_uint_eq(s.delivered, 0);
	ck_assert_uint_eq(s.retried, 0);
	ck_assert_uint_eq(s.pending, 0);
	log = read_log();
	ck_assert_ptr_nonnull(strstr(log, "HTTP 400"));
	free(log);
}
END_TEST

START_TEST(test_give_up)
{
	struct push_stats s;

	plan(500, NULL);
	R.repeat_last = 1;
	push_deliver("task-6", url, "t", NULL, NULL, NULL, "{}");
	ck_assert(wait_done(1, TU_HANG_MS));
	tu_sleep_ms(200);
	s = stats();
	ck_assert_int_eq(nreq(), 5);	/* push_max_attempts */
	ck_assert_uint_eq(s.failed, 1);
	ck_assert_uint_eq(s.retried, 4);
	ck_assert_uint_eq(s.pending, 0);
}
END_TEST

START_TEST(test_task_order)
{
	int i;
	const char *want[] = { "e1", "e1", "e2", "e3" };

	plan(503, NULL);	/* e1 fails once: e2 must wait for it */
	push_deliver("task-7", url, "t", NULL, NULL, NULL, "e1");
	push_deliver("task-7", url, "t", NULL, NULL, NULL, "e2");
	push_deliver("task-7", url, "t", NULL, NULL, NULL, "e3");
	ck_assert(wait_done(3, TU_HANG_MS));
	ck_assert_uint_eq(stats().delivered, 3);
	ck_assert_int_eq(nreq(), 4);
	for (i = 0; i < nreq(); i++)
		ck_assert_str_eq(R.reqs[i].body, want[i]);
}
END_TEST

START_TEST(test_other_tasks_not_blocked)
{
	int i;

	/* task-8's first event waits out a 3 s Retry-After; task-9 goes on:
	 * its event is the second request, before task-8's retry. */
	plan(429, "Retry-After: 3\r\n");
	push_deliver("task-8", url, "t", NULL, NULL, NULL, "a1");
	push_deliver("task-8", url, "t", NULL, NULL, NULL, "a2");
	for (i = 0; i < 500 && nreq() < 1; i++)
		tu_sleep_ms(10);
	ck_assert_int_eq(nreq(), 1);
	push_deliver("task-9", url, "t", NULL, NULL, NULL, "b1");
	ck_assert(wait_done(1, TU_HANG_MS));
	ck_assert_uint_eq(stats().delivered, 1);
	ck_assert_str_eq(R.reqs[1].body, "b1");
	ck_assert(wait_done(3, TU_HANG_MS));
	ck_assert_int_eq(nreq(), 4);
	ck_assert_str_eq(R.reqs[2].body, "a1");
	ck_assert_str_eq(R.reqs[3].body, "a2");
}
END_TEST

START_TEST(test_crlf_refused)
{
	struct push_stats s;
	char *log;

	push_deliver("task-10", url, "tok\r\nX-Evil: 1", NULL, NULL, NULL,
	    "{}");
	push_deliver("task-10", url, "tok", "Bearer", "cred\nX-Evil: 2", NULL,
	    "{}");
	push_deliver("task-10", url, "tok", "Bearer\r", "cred", NULL, "{}");
	push_deliver("task-10", url, "tok", NULL, NULL, "text/x\r\nX-Evil: 3",
	    "{}");
	s = stats();
	ck_assert_uint_eq(s.failed, 4);
	ck_assert_uint_eq(s.queued, 0);
	ck_assert_uint_eq(s.pending, 0);
	tu_sleep_ms(300);
	ck_assert_int_eq(nreq(), 0);
	log = read_log();
	ck_assert_ptr_nonnull(strstr(log, "push_refused"));
	ck_assert_ptr_null(strstr(log, "X-Evil"));
	free(log);
}
END_TEST

START_TEST(test_ssrf_blocked)
{
	struct push_stats s;
	char *log;

	push_deliver("task-11", "https://10.0.0.1/hook?sig=QUERYSECRET", "t",
	    NULL, NULL, NULL, "{}");
	ck_assert(wait_done(1, TU_HANG_MS));
	/* Rejected by the filter before any connect: failed at once, never
	 * retried, and the log names the private address. */
	s = stats();
	ck_assert_uint_eq(s.failed, 1);
	ck_assert_uint_eq(s.delivered, 0);
	ck_assert_uint_eq(s.retried, 0);
	ck_assert_uint_eq(s.pending, 0);
	log = read_log();
	ck_assert_ptr_nonnull(strstr(log, "private address 10.0.0.1"));
	ck_assert_ptr_null(strstr(log, "QUERYSECRET"));
	free(log);
}
END_TEST

START_TEST(test_stop_abandons)
{
	int64_t t0, i;
	char *log;

	plan(503, NULL);
	R.repeat_last = 1;
	push_set_backoff_base_ms(20000);
	push_deliver("task-12", url, "t", NULL, NULL, NULL, "{}");
	push_deliver("task-12", url, "t", NULL, NULL, NULL, "{}");
	for (i = 0; i < 500 && stats().retried < 1; i++)
		tu_sleep_ms(10);
	ck_assert_uint_eq(stats().retried, 1);
	ck_assert_uint_eq(stats().pending, 2);
	/* Stop does not sit out the 20 s backoff. */
	t0 = tu_now_ms();
	push_stop();
	ck_assert_int_lt(tu_now_ms() - t0, TU_HANG_MS);
	ck_assert_uint_eq(stats().pending, 0);
	log = read_log();
	ck_assert_ptr_nonnull(strstr(log,
	    "2 pending notification(s) abandoned"));
	free(log);
	/* After stop, deliveries are dropped. */
	push_deliver("task-12", url, "t", NULL, NULL, NULL, "{}");
	ck_assert_uint_eq(stats().pending, 0);
	ck_assert_int_eq(nreq(), 1);
}
END_TEST

/* Before push_start deliveries wait; the queue holds at most
   PUSH_QUEUE_MAX and drops the oldest. */
START_TEST(test_queue_cap)
{
	struct push_stats s;
	char id[32];
	int i;

	log_set_level(LOG_ERROR);
	for (i = 0; i < PUSH_QUEUE_MAX + 3; i++) {
		snprintf(id, sizeof(id), "t%d", i % 500);
		push_deliver(id, "https://10.0.0.1/", NULL, NULL, NULL, NULL,
		    "{}");
	}
	s = stats();
	ck_assert_uint_eq(s.queued, PUSH_QUEUE_MAX + 3);
	ck_assert_uint_eq(s.pending, PUSH_QUEUE_MAX);
	ck_assert_uint_eq(s.failed, 3);
	push_stop();	/* frees nothing (never started); state stopped */
}
END_TEST

/* A throwaway certificate for the receiver, in a directory removed at the
 * end (with a failed test's log). */
static void
program_setup(void)
{
	char cmd[1024];

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tu_tmpdir_make(tmpdir, sizeof(tmpdir), "push");
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
	    "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
	    "-keyout %s -out %s >/dev/null 2>&1", key_path, cert_path);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot create a test certificate with the "
		    "openssl command (Debian package 'openssl')\n");
		exit(EXIT_FAILURE);
	}
}

static bool
program_teardown(void)
{
	tu_tmpdir_remove(tmpdir);
	curl_global_cleanup();
	return true;
}

static Suite *
push_suite(void)
{
	Suite *s = suite_create("push");
	TCase *tc = tcase_create("receiver");
	TCase *tq = tcase_create("queue");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_headers_and_body);
	tcase_add_test(tc, test_no_optional_headers);
	tcase_add_test(tc, test_retry_5xx);
	tcase_add_test(tc, test_retry_after);
	tcase_add_test(tc, test_permanent_4xx);
	tcase_add_test(tc, test_give_up);
	tcase_add_test(tc, test_task_order);
	tcase_add_test(tc, test_other_tasks_not_blocked);
	tcase_add_test(tc, test_crlf_refused);
	tcase_add_test(tc, test_ssrf_blocked);
	tcase_add_test(tc, test_stop_abandons);
	suite_add_tcase(s, tc);
	tcase_add_test(tq, test_queue_cap);
	suite_add_tcase(s, tq);
	return s;
}

TU_MAIN(.suites = { push_suite }, .setup = program_setup,
    .teardown = program_teardown)
