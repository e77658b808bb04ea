/* SPDX-License-Identifier: MIT */
/*
 * NATS events end to end: a real nats-server on loopback, the harness
 * agent with nats_url pointing at it, and a subscriber (libnats) on
 * a2a.>.  A diag.timer task's state changes arrive on a2a.events with its
 * id and owner; a broker that goes away, or was never there, neither
 * blocks nor fails a task (and what could not be sent is counted).
 * Skips (77) without nats-server or a build without libnats, unless
 * IA_REQUIRE_INTEGRATION=1.
 */
#include "auto-config.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/itest.h"
#include "unit/testutil.h"

#define NATS_SERVER "/usr/sbin/nats-server"

#ifdef HAVE_NATS
#include <nats/nats.h>

static int nats_port;
static pid_t nats_pid = -1;

/* A port free on 127.0.0.1 now (the kernel's pick). */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("free_port");
		exit(EXIT_FAILURE);
	}
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void
url_of(int port, char *buf, size_t len)
{
	snprintf(buf, len, "nats://127.0.0.1:%d", port);
}

/* Connect a subscriber to a2a.> (bounded: 10 s of tries); NULL when the
 * broker does not answer. */
static natsConnection *
subscribe(natsSubscription **sub)
{
	natsConnection *nc = NULL;
	char url[64];
	int i;

	url_of(nats_port, url, sizeof(url));
	for (i = 0; i < 100; i++) {
		if (natsConnection_ConnectTo(&nc, url) == NATS_OK)
			break;
		nc = NULL;
		usleep(100 * 1000);
	}
	if (nc == NULL)
		return NULL;
	if (natsConnection_SubscribeSync(sub, nc, "a2a.>") != NATS_OK ||
	    natsConnection_Flush(nc) != NATS_OK) {
		natsConnection_Destroy(nc);
		return NULL;
	}
	return nc;
}

/* Start nats-server on 127.0.0.1:nats_port and wait until it answers. */
static void
broker_start(void)
{
	natsConnection *nc;
	natsSubscription *sub = NULL;
	char port[16];

	snprintf(port, sizeof(port), "%d", nats_port);
	nats_pid = fork();
	if (nats_pid == 0) {
		execl(NATS_SERVER, NATS_SERVER, "-a", "127.0.0.1", "-p", port,
		    (char *)NULL);
		_exit(127);
	}
	nc = subscribe(&sub);
	if (nc == NULL) {
		fprintf(stderr, "nats-server did not answer on %s\n", port);
		exit(EXIT_FAILURE);
	}
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
}

static void
broker_stop(void)
{
	int st;

	if (nats_pid <= 0)
		return;
	kill(nats_pid, SIGKILL);
	while (waitpid(nats_pid, &st, 0) < 0 && errno == EINTR)
		;
	nats_pid = -1;
}

static void
nats_setup(void)
{
	char url[64];

	tu_require(access(NATS_SERVER, X_OK) == 0, "%s not found (install "
	    "the Debian package 'nats-server')", NATS_SERVER);
	nats_port = free_port();
	broker_start();
	url_of(nats_port, url, sizeof(url));
	setenv("INSTAG_AGENT_NATS_URL", url, 1);
	itest_harness_up();
}

static bool
nats_teardown(void)
{
	bool ok = itest_harness_down();

	broker_stop();
	return ok;
}

/* Wait (bounded: 30 s) until metric name has value want. */
static void
wait_metric(const char *name, unsigned long long want)
{
	int i;

	for (i = 0; i < 300 && itest_metric(name) != want; i++)
		usleep(100 * 1000);
	ck_assert_msg(itest_metric(name) == want, "%s stayed at %llu, not %llu",
	    name, itest_metric(name), want);
}

/* Run a short diag.timer task as a fresh owner and wait for its end. */
static char *
run_diag(const char *owner)
{
	char *tok = itest_token(owner, "diag:run tasks:read", 600), *id;

	id = itest_start_task(tok, "diag.timer",
	    "{\"steps\":2,\"interval_ms\":50}");
	ck_assert_str_eq(itest_wait_task(tok, id, 60000), "completed");
	free(tok);
	return id;
}

/* Read task_id's task_status events until its "completed" one (bounded:
 * 200 messages, 30 s each); their states joined by ',' into states. */
static void
collect_states(natsSubscription *sub, const char *task_id,
    const char *owner, char *states, size_t len)
{
	int i;

	states[0] = '\0';
	for (i = 0; i < 200; i++) {
		natsMsg *m = NULL;
		json_object *o;
		const char *st;
		bool done;

		ck_assert_msg(natsSubscription_NextMsg(&m, sub, 30000) ==
		    NATS_OK, "no event after: %s", states);
		o = json_tokener_parse(natsMsg_GetData(m));
		ck_assert_msg(o != NULL, "not JSON: %s", natsMsg_GetData(m));
		if (strcmp(natsMsg_GetSubject(m), "a2a.events") != 0 ||
		    itest_jstr(o, "task_id") == NULL ||
		    strcmp(itest_jstr(o, "task_id"), task_id) != 0) {
			json_object_put(o);
			natsMsg_Destroy(m);
			continue;
		}
		ck_assert_str_eq(itest_jstr(o, "type"), "task_status");
		ck_assert_str_eq(itest_jstr(o, "owner"), owner);
		ck_assert_str_eq(itest_jstr(o, "operation"), "diag.timer");
		ck_assert_str_eq(itest_jstr(o, "agent_id"),
		    "instag_runpod_agent");
		ck_assert_int_eq(json_object_object_length(o), 7);
		st = itest_jstr(o, "state");
		snprintf(states + strlen(states), len - strlen(states), "%s%s",
		    states[0] ? "," : "", st);
		done = strcmp(st, "completed") == 0;
		json_object_put(o);
		natsMsg_Destroy(m);
		if (done)
			return;
	}
	ck_abort_msg("no completed event for %s: %s", task_id, states);
}

START_TEST(test_task_events)
{
	natsSubscription *sub = NULL;
	natsConnection *nc = subscribe(&sub);
	unsigned long long before =
	    itest_metric("instag_agent_nats_published_total");
	char states[256];
	char *id;

	ck_assert_ptr_nonnull(nc);
	wait_metric("instag_agent_nats_connected", 1);
	id = run_diag("nats-alice");
	collect_states(sub, id, "nats-alice", states, sizeof(states));
	/* One event per state, in order, none for progress alone. */
	ck_assert_str_eq(states, "submitted,working,completed");
	ck_assert_uint_ge(itest_metric("instag_agent_nats_published_total"),
	    before + 3);
	free(id);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
}
END_TEST

/* The broker goes away: tasks still complete; it comes back on the same
 * port: the agent reconnects by itself and events flow again. */
START_TEST(test_broker_lost_and_back)
{
	natsSubscription *sub = NULL;
	natsConnection *nc;
	char states[256];
	char *id;

	broker_stop();
	wait_metric("instag_agent_nats_connected", 0);
	id = run_diag("nats-bob");
	free(id);
	broker_start();
	nc = subscribe(&sub);
	ck_assert_ptr_nonnull(nc);
	wait_metric("instag_agent_nats_connected", 1);
	id = run_diag("nats-carol");
	collect_states(sub, id, "nats-carol", states, sizeof(states));
	ck_assert_str_eq(states, "submitted,working,completed");
	free(id);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
}
END_TEST

/* A broker that never answers (nothing listens on the port): the agent
 * starts, tasks complete, and their events are counted as dropped. */
START_TEST(test_broker_never_there)
{
	const char *top = getenv("top_srcdir"), *dir = getenv("HARNESS_DIR");
	unsigned long long dropped;
	char *id;
	int port = free_port();

	ck_assert_int_eq(itest_sh("INSTAG_AGENT_NATS_URL=nats://127.0.0.1:%d "
	    "'%s/tests/harness/agent' '%s' restart >&2", port, top, dir), 0);
	ck_assert_int_eq(itest_metric("instag_agent_nats_connected"), 0);
	dropped = itest_metric("instag_agent_nats_dropped_total");
	id = run_diag("nats-dave");
	free(id);
	/* submitted, working, completed: each dropped (bounded wait: the
	 * publisher thread takes them off its queue). */
	wait_metric("instag_agent_nats_dropped_total", dropped + 3);
	ck_assert_int_eq(itest_metric("instag_agent_nats_published_total"), 0);
	ck_assert_int_eq(itest_metric("instag_agent_nats_connected"), 0);
}
END_TEST

static Suite *
nats_suite(void)
{
	Suite *s = suite_create("nats");
	TCase *tc = tcase_create("events");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_task_events);
	tcase_add_test(tc, test_broker_lost_and_back);
	tcase_add_test(tc, test_broker_never_there);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { nats_suite }, .setup = nats_setup,
    .teardown = nats_teardown, .nofork = true)

#else /* built without libnats */

int
main(void)
{
	tu_require(false, "built without NATS support (configure found no "
	    "libnats, or --without-nats)");
	return EXIT_FAILURE;
}

#endif
