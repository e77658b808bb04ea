/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "lib/log.h"
#include "http/outbound.h"
#include "testutil.h"

/* A config with ssrf_allow set (and not overridden from the environment);
 * caller frees with config_free. */
static struct config *
make_config(const char *allow)
{
	unsetenv("INSTAG_AGENT_SSRF_ALLOW");
	return tu_configf("ssrf_allow = %s\n", allow);
}

static void
expect_reject(const struct config *cfg, const char *url, const char *needle)
{
	struct outbound_target t;
	char *err = NULL;

	ck_assert_msg(outbound_check_url(cfg, url, &t, &err) == -1,
	    "%s was accepted", url);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, needle) != NULL, "%s: error '%s' lacks '%s'",
	    url, err, needle);
	ck_assert_str_eq(t.addr, "");
	free(err);
}

static void
expect_accept(const struct config *cfg, const char *url, const char *host,
    int port, const char *addr)
{
	struct outbound_target t;
	char *err = NULL;

	ck_assert_msg(outbound_check_url(cfg, url, &t, &err) == 0,
	    "%s rejected: %s", url, err ? err : "?");
	ck_assert_ptr_null(err);
	ck_assert_str_eq(t.host, host);
	ck_assert_int_eq(t.port, port);
	ck_assert_str_eq(t.addr, addr);
}

START_TEST(test_ranges_rejected)
{
	struct config *cfg = make_config("");

	expect_reject(cfg, "https://10.1.2.3/", "private address 10.1.2.3");
	expect_reject(cfg, "https://172.16.0.1/", "private");
	expect_reject(cfg, "https://172.31.255.254/", "private");
	expect_reject(cfg, "https://192.168.1.1/", "private");
	expect_reject(cfg, "https://100.64.0.1/", "private (CGNAT)");
	expect_reject(cfg, "https://100.127.255.255/", "CGNAT");
	expect_reject(cfg, "https://127.0.0.1:8443/x",
	    "loopback address 127.0.0.1");
	expect_reject(cfg, "https://127.9.9.9/", "loopback");
	expect_reject(cfg, "https://169.254.169.254/latest", "link-local");
	expect_reject(cfg, "https://0.0.0.0/", "unspecified");
	expect_reject(cfg, "https://0.1.2.3/", "0/8");
	expect_reject(cfg, "https://224.0.0.1/", "multicast");
	expect_reject(cfg, "https://239.255.255.250/", "multicast");
	expect_reject(cfg, "https://255.255.255.255/", "broadcast");
	expect_reject(cfg, "https://240.0.0.1/", "reserved");
	expect_reject(cfg, "https://[::1]/", "loopback address ::1");
	expect_reject(cfg, "https://[::]/", "unspecified");
	expect_reject(cfg, "https://[fc00::1]/", "private");
	expect_reject(cfg, "https://[fd12:3456::1]:8443/", "private");
	expect_reject(cfg, "https://[fe80::1]/", "link-local");
	expect_reject(cfg, "https://[febf::1]/", "link-local");
	expect_reject(cfg, "https://[ff02::1]/", "multicast");
	expect_reject(cfg, "https://[::ffff:127.0.0.1]/", "loopback");
	expect_reject(cfg, "https://[::ffff:10.0.0.5]/", "private");
	expect_reject(cfg, "https://[::ffff:169.254.169.254]/", "link-local");
	expect_reject(cfg, "https://[::127.0.0.1]/", "IPv4-compatible");
	expect_reject(cfg, "https://[64:ff9b::a00:1]/", "private");
	expect_reject(cfg, "https://[2002:7f00:1::]/", "loopback");
	expect_reject(cfg, "https://localhost/", "loopback");
	expect_reject(cfg, "https://localhost:9000/hook", "loopback");
	config_free(cfg);
}
END_TEST

START_TEST(test_syntax_rejected)
{
	struct config *cfg = make_config("");
	char *big;

	expect_reject(cfg, "", "empty");
	expect_reject(cfg, "http://93.184.216.34/", "https://");
	expect_reject(cfg, "ftp://93.184.216.34/", "https://");
	expect_reject(cfg, "93.184.216.34/x", "https://");
	expect_reject(cfg, "https://user:pw@93.184.216.34/",
	    "user information");
	expect_reject(cfg, "https://user@93.184.216.34/", "user information");
	expect_reject(cfg, "https://93.184.216.34/a\r\nX: y", "control");
	expect_reject(cfg, "https://93.184.216.34/a\nb", "control");
	expect_reject(cfg, "https://93.184.216.34/a b", "space");
	expect_reject(cfg, "https://93.184.216.34/\xc3\xa9", "non-ASCII");
	expect_reject(cfg, "https://93.184.216.34\\@10.0.0.1/", "backslash");
	expect_reject(cfg, "https:///path", "no host");
	expect_reject(cfg, "https://:443/", "no host");
	expect_reject(cfg, "https://93.184.216.34:0/", "port");
	expect_reject(cfg, "https://93.184.216.34:65536/", "port");
	expect_reject(cfg, "https://93.184.216.34:/", "port");
	expect_reject(cfg, "https://93.184.216.34:12a/", "port");
	expect_reject(cfg, "https://93.184.216.34:1234567/", "port");
	expect_reject(cfg, "https://[::1/", "IPv6");
	expect_reject(cfg, "https://[zz::1]/", "IPv6");
	expect_reject(cfg, "https://[fe80::1%25eth0]/", "percent");
	expect_reject(cfg, "https://%31%32%37.0.0.1/", "percent");
	expect_reject(cfg, "https://exa$mple.com/", "invalid character");
	/* Odd IPv4 spellings that resolvers read as 127.0.0.1. */
	expect_reject(cfg, "https://2130706433/", "");
	expect_reject(cfg, "https://0x7f.1/", "");
	expect_reject(cfg, "https://127.1/", "");

	big = malloc(OUTBOUND_URL_MAX + 2);
	ck_assert_ptr_nonnull(big);
	strcpy(big, "https://93.184.216.34/");
	memset(big + strlen(big), 'a', OUTBOUND_URL_MAX + 1 - strlen(big));
	big[OUTBOUND_URL_MAX + 1] = '\0';
	expect_reject(cfg, big, "longer than 2048");
	big[OUTBOUND_URL_MAX] = '\0';	/* exactly the limit is fine */
	expect_accept(cfg, big, "93.184.216.34", 443, "93.184.216.34");
	free(big);
	config_free(cfg);
}
END_TEST

START_TEST(test_public_accepted)
{
	struct config *cfg = make_config("");
	struct outbound_target t;
	char *err = NULL;

	expect_accept(cfg, "https://93.184.216.34/", "93.184.216.34", 443,
	    "93.184.216.34");
	expect_accept(cfg, "HTTPS://93.184.216.34:8443/hook?token=x#frag",
	    "93.184.216.34", 8443, "93.184.216.34");
	expect_accept(cfg, "https://93.184.216.34?q", "93.184.216.34", 443,
	    "93.184.216.34");
	expect_accept(cfg, "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
	    "2606:2800:220:1:248:1893:25c8:1946", 443,
	    "2606:2800:220:1:248:1893:25c8:1946");
	/* 172.32/16 and 100.128/16 are just outside the private ranges. */
	expect_accept(cfg, "https://172.32.0.1/", "172.32.0.1", 443,
	    "172.32.0.1");
	expect_accept(cfg, "https://100.128.0.1/", "100.128.0.1", 443,
	    "100.128.0.1");

	ck_assert_int_eq(outbound_check_url(cfg, "https://93.184.216.34:444/p",
	    &t, &err), 0);
	ck_assert_str_eq(t.resolve, "93.184.216.34:444:93.184.216.34");
	ck_assert_int_eq(outbound_check_url(cfg, "https://[2001:db8::1]/p",
	    &t, &err), 0);
	ck_assert_str_eq(t.resolve, "");
	config_free(cfg);
}
END_TEST

START_TEST(test_allowlist)
{
	struct config *cfg =
	    make_config("127.0.0.1/32, 10.0.0.0/8 fd00::/8,::1");
	struct outbound_target t;
	char *err = NULL;

	expect_accept(cfg, "https://127.0.0.1:8443/x", "127.0.0.1", 8443,
	    "127.0.0.1");
	expect_accept(cfg, "https://10.1.2.3/", "10.1.2.3", 443, "10.1.2.3");
	expect_accept(cfg, "https://[fd12::1]/", "fd12::1", 443, "fd12::1");
	expect_accept(cfg, "https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1",
	    443, "::ffff:127.0.0.1");
	/* localhost may be 127.0.0.1 or ::1 first, depending on /etc/hosts. */
	ck_assert_int_eq(outbound_check_url(cfg, "https://localhost:9/", &t,
	    &err), 0);
	ck_assert_str_eq(t.host, "localhost");
	ck_assert_msg(!strcmp(t.addr, "127.0.0.1") || !strcmp(t.addr, "::1"),
	    "localhost is %s", t.addr);
	expect_reject(cfg, "https://127.0.0.2/", "loopback");
	expect_reject(cfg, "https://192.168.0.1/", "private");
	expect_reject(cfg, "https://[fc00::1]/", "private");
	config_free(cfg);
}
END_TEST

START_TEST(test_error_names_no_secrets)
{
	struct config *cfg = make_config("");
	struct outbound_target t;
	char *err = NULL;

	ck_assert_int_eq(outbound_check_url(cfg,
	    "https://10.0.0.5/hook?token=SECRET", &t, &err), -1);
	ck_assert_str_eq(err,
	    "URL host resolves to a private address 10.0.0.5");
	free(err);
	ck_assert_int_eq(outbound_check_url(cfg,
	    "https://alice:SECRET@93.184.216.34/", &t, &err), -1);
	ck_assert_ptr_null(strstr(err, "SECRET"));
	free(err);
	config_free(cfg);
}
END_TEST

START_TEST(test_curl_setup)
{
	struct config *cfg = make_config("");
	struct outbound_target t;
	struct curl_slist *rl = (struct curl_slist *)1;
	char *err = NULL;
	CURL *h;

	ck_assert_int_eq(outbound_check_url(cfg, "https://93.184.216.34/",
	    &t, &err), 0);
	h = curl_easy_init();
	ck_assert_ptr_nonnull(h);
	outbound_curl_setup(cfg, h, &t, 7, &rl);
	ck_assert_ptr_nonnull(rl);
	ck_assert_ptr_nonnull(strstr(rl->data,
	    "93.184.216.34:443:93.184.216.34"));
	ck_assert_ptr_null(rl->next);
	curl_easy_cleanup(h);
	curl_slist_free_all(rl);

	/* IPv6 literal: nothing to pin. */
	ck_assert_int_eq(outbound_check_url(cfg, "https://[2001:db8::1]/",
	    &t, &err), 0);
	h = curl_easy_init();
	outbound_curl_setup(cfg, h, &t, 7, &rl);
	ck_assert_ptr_null(rl);
	curl_easy_cleanup(h);
	config_free(cfg);
}
END_TEST

/* Run one transfer to t (port 1: nothing listens); return whether the
   open-socket check refused the address (seen in the log). */
static int
refused_by_pin(const struct config *cfg, const struct outbound_target *t)
{
	char path[] = "/tmp/ia-outbound-log-XXXXXX", buf[4096];
	struct curl_slist *rl = NULL;
	CURL *h = curl_easy_init();
	ssize_t n;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	log_set_fd(fd);
	curl_easy_setopt(h, CURLOPT_URL, "https://localhost:1/");
	outbound_curl_setup(cfg, h, t, 5, &rl);
	ck_assert_int_ne(curl_easy_perform(h), CURLE_OK);
	curl_easy_cleanup(h);
	curl_slist_free_all(rl);
	log_set_fd(2);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, "outbound_refused") != NULL;
}

START_TEST(test_pinned_address)
{
	struct config *cfg = make_config("127.0.0.0/8 ::1");
	struct outbound_target t;
	char *err = NULL;

	ck_assert_int_eq(outbound_check_url(cfg, "https://localhost:1/", &t,
	    &err), 0);
	if (strcmp(t.addr, "::1") == 0)
		ck_assert_str_eq(t.resolve, "localhost:1:[::1]");
	else
		ck_assert_str_eq(t.resolve, "localhost:1:127.0.0.1");
	ck_assert(!refused_by_pin(cfg, &t));
	/* curl would connect to 127.0.0.1, but 127.0.0.2 was "checked". */
	strcpy(t.addr, "127.0.0.2");
	ck_assert(refused_by_pin(cfg, &t));
	config_free(cfg);
}
END_TEST

static void
program_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool
program_teardown(void)
{
	curl_global_cleanup();
	return true;
}

static Suite *
outbound_suite(void)
{
	Suite *s = suite_create("outbound");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_ranges_rejected);
	tcase_add_test(tc, test_syntax_rejected);
	tcase_add_test(tc, test_public_accepted);
	tcase_add_test(tc, test_allowlist);
	tcase_add_test(tc, test_error_names_no_secrets);
	tcase_add_test(tc, test_curl_setup);
	tcase_add_test(tc, test_pinned_address);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { outbound_suite }, .setup = program_setup,
    .teardown = program_teardown)
