/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "testutil.h"

static char tmpl[64];

/* Write text to a fresh temporary file; returns its path (static). */
static const char *
write_conf(const char *text)
{
	strcpy(tmpl, "/tmp/ia-config-XXXXXX");
	tu_write_temp(tmpl, text, strlen(text), 0600);
	return tmpl;
}

static const char *base = TU_CONFIG_BASE;

START_TEST(test_defaults)
{
	struct config *cfg = NULL;
	char *err = NULL;
	const char *p = write_conf(base);

	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert_ptr_null(err);
	ck_assert_str_eq(cfg->listen, "");
	ck_assert_int_eq(cfg->listen_mode, 0660);
	ck_assert_int_eq(cfg->request_threads, 8);
	ck_assert_str_eq(cfg->jwt_alg, "HS256");
	ck_assert_str_eq(cfg->jwt_issuer, "test-issuer");
	ck_assert_str_eq(cfg->base_path, "/agents/instag");
	ck_assert(!cfg->diagnostics);
	config_free(cfg);
	unlink(p);
}
END_TEST

START_TEST(test_values_and_comments)
{
	struct config *cfg = NULL;
	char *err = NULL;
	const char *p = write_conf(
	    "# comment\n\n"
	    "jwt_issuer = \"quoted issuer\"\n"
	    "jwt_key_file=/dev/null\n"
	    "  listen = unix:/run/x.sock  \n"
	    "listen_mode = 0600\n"
	    "diagnostics = yes\n"
	    "public_url = https://example.org/a/b/\n");

	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert_str_eq(cfg->jwt_issuer, "quoted issuer");
	ck_assert_str_eq(cfg->listen, "unix:/run/x.sock");
	ck_assert_int_eq(cfg->listen_mode, 0600);
	ck_assert(cfg->diagnostics);
	ck_assert_str_eq(cfg->base_path, "/a/b");
	config_free(cfg);
	unlink(p);
}
END_TEST

static void
expect_error(const char *text, const char *needle)
{
	struct config *cfg = NULL;
	char *err = NULL;
	const char *p = write_conf(text);

	ck_assert_int_eq(config_load(p, &cfg, &err), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, needle) != NULL, "error '%s' lacks '%s'",
	    err, needle);
	free(err);
	unlink(p);
}

START_TEST(test_errors)
{
	char text[512];

	snprintf(text, sizeof(text), "%snot_a_key = 1\n", base);
	expect_error(text, "unknown key 'not_a_key'");
	snprintf(text, sizeof(text), "%srequest_threads = 0\n", base);
	expect_error(text, "request_threads must be between 1 and 256");
	snprintf(text, sizeof(text), "%srequest_threads = 4x\n", base);
	expect_error(text, "invalid integer");
	snprintf(text, sizeof(text), "%sdiagnostics = maybe\n", base);
	expect_error(text, "invalid boolean");
	snprintf(text, sizeof(text), "%slisten = 127.0.0.1:9000\n", base);
	expect_error(text, "listen:");
	snprintf(text, sizeof(text), "%sjwt_alg = none\n", base);
	expect_error(text, "jwt_alg");
	snprintf(text, sizeof(text), "%sjwt_alg = HS256\njwt_alg = HS512\n",
	    base);
	expect_error(text, "given twice");
	snprintf(text, sizeof(text), "%sssrf_allow = 10.0.0.0/33\n", base);
	expect_error(text, "ssrf_allow");
	snprintf(text, sizeof(text), "%sjust words\n", base);
	expect_error(text, ":3: expected 'key = value'");
	expect_error("jwt_key_file = /dev/null\n", "jwt_issuer");
	snprintf(text, sizeof(text), "%spublic_url = ftp://x/\n", base);
	expect_error(text, "public_url");
	snprintf(text, sizeof(text), "%sstore_path = relative.db\n", base);
	expect_error(text, "absolute");
}
END_TEST

/* ssh_host_owners: HOST=SUB entries naming hosts of ssh_hosts. */
START_TEST(test_host_owners)
{
	struct config *cfg = NULL;
	char text[512], *err = NULL;
	const char *p;

	snprintf(text, sizeof(text), "%sssh_hosts = gpu1, gpu2:2222\n"
	    "ssh_host_owners = gpu1=alice gpu1=auth0|b=c gpu2:2222=carol "
	    "gpu2=dan\n", base);
	p = write_conf(text);
	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert_str_eq(cfg->ssh_host_owners, "gpu1=alice gpu1=auth0|b=c "
	    "gpu2:2222=carol gpu2=dan");
	config_free(cfg);
	unlink(p);
	snprintf(text, sizeof(text), "%sssh_hosts = gpu1\n"
	    "ssh_host_owners = gpu3=alice\n", base);
	expect_error(text, "ssh_host_owners: host 'gpu3' is not one of "
	    "ssh_hosts");
	snprintf(text, sizeof(text), "%sssh_hosts = gpu1\n"
	    "ssh_host_owners = gpu1:2222=alice\n", base);
	expect_error(text, "host 'gpu1:2222' is not one of ssh_hosts");
	snprintf(text, sizeof(text), "%sssh_hosts = gpu1\n"
	    "ssh_host_owners = gpu1\n", base);
	expect_error(text, "'gpu1' is not HOST=SUB");
	snprintf(text, sizeof(text), "%sssh_hosts = gpu1\n"
	    "ssh_host_owners = gpu1=\n", base);
	expect_error(text, "is not HOST=SUB");
	snprintf(text, sizeof(text), "%sssh_host_owners = =bob\n", base);
	expect_error(text, "is not HOST=SUB");
}
END_TEST

/* nats_url: nats://HOST[:PORT] servers, no credentials (never echoed);
 * a build without libnats refuses any value. */
START_TEST(test_nats_url)
{
	struct config *cfg = NULL;
	char text[512], *err = NULL;
	const char *p;

	snprintf(text, sizeof(text), "%snats_url = nats://127.0.0.1:4222, "
	    "nats://[::1]:4223,nats://nats-1.internal\n", base);
#ifdef HAVE_NATS
	p = write_conf(text);
	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert_str_eq(cfg->nats_url, "nats://127.0.0.1:4222, "
	    "nats://[::1]:4223,nats://nats-1.internal");
	config_free(cfg);
	unlink(p);
	snprintf(text, sizeof(text), "%snats_url = nats://u:hunter2@h:4222\n",
	    base);
	p = write_conf(text);
	ck_assert_int_eq(config_load(p, &cfg, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "nats_token_file"));
	ck_assert_ptr_null(strstr(err, "hunter2"));
	free(err);
	err = NULL;
	unlink(p);
	snprintf(text, sizeof(text), "%snats_url = tls://h:4222\n", base);
	expect_error(text, "nats_url: expected nats://HOST:PORT");
	snprintf(text, sizeof(text), "%snats_url = nats://h:99999\n", base);
	expect_error(text, "got 'nats://h:99999'");
	snprintf(text, sizeof(text), "%snats_url = nats://h:1\n"
	    "nats_token_file = rel/tok\n", base);
	expect_error(text, "nats_token_file: must be an absolute path");
#else
	expect_error(text, "nats_url: this build has no NATS support");
#endif
	snprintf(text, sizeof(text), "%snats_token_file = /etc/tok\n", base);
	expect_error(text, "nats_token_file: set without nats_url");
	(void)cfg;
	(void)err;
	(void)p;
}
END_TEST

/* store: empty or sqlite:/PATH (SQLite), or a PostgreSQL URL without a
 * password (never echoed); store_password_file only with PostgreSQL. */
START_TEST(test_store)
{
	struct config *cfg = NULL;
	char text[512], *err = NULL;
	const char *p;

	p = write_conf(base);
	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert_str_eq(config_store_spec(cfg), cfg->store_path);
	ck_assert(!config_store_is_postgresql(cfg));
	config_free(cfg);
	unlink(p);
	snprintf(text, sizeof(text), "%sstore = sqlite:/var/x/t.db\n", base);
	p = write_conf(text);
	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert_str_eq(config_store_spec(cfg), "sqlite:/var/x/t.db");
	config_free(cfg);
	unlink(p);
	snprintf(text, sizeof(text), "%sstore = sqlite:x.db\n", base);
	expect_error(text, "store: the SQLite file must be an absolute path");
	snprintf(text, sizeof(text), "%sstore = mysql://h/db\n", base);
	expect_error(text, "store: expected sqlite:/PATH or postgresql://");
	snprintf(text, sizeof(text), "%sstore_password_file = /etc/pw\n",
	    base);
	expect_error(text, "store_password_file: only for a PostgreSQL");
#ifdef HAVE_LIBPQ
	snprintf(text, sizeof(text), "%sstore = postgresql://ia@127.0.0.1:5432"
	    "/instag?sslmode=disable\nstore_password_file = /etc/pw\n", base);
	p = write_conf(text);
	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert(config_store_is_postgresql(cfg));
	ck_assert_str_eq(cfg->store_password_file, "/etc/pw");
	config_free(cfg);
	unlink(p);
	snprintf(text, sizeof(text), "%sstore = postgresql://ia:hunter2@h/db\n",
	    base);
	p = write_conf(text);
	ck_assert_int_eq(config_load(p, &cfg, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "store_password_file"));
	ck_assert_ptr_null(strstr(err, "hunter2"));
	free(err);
	err = NULL;
	unlink(p);
	snprintf(text, sizeof(text), "%sstore = postgres://h/db?"
	    "password=hunter2\n", base);
	expect_error(text, "store: the URL holds a password");
	snprintf(text, sizeof(text), "%sstore = postgresql://h/db\n"
	    "store_password_file = rel/pw\n", base);
	expect_error(text, "store_password_file: must be an absolute path");
#else
	snprintf(text, sizeof(text), "%sstore = postgresql://h/db\n", base);
	expect_error(text, "store: this build has no PostgreSQL support");
#endif
	(void)cfg;
	(void)err;
	(void)p;
}
END_TEST

START_TEST(test_missing_file)
{
	struct config *cfg = NULL;
	char *err = NULL;

	ck_assert_int_eq(config_load("/nonexistent/agent.conf", &cfg, &err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot open config file"));
	free(err);
}
END_TEST

START_TEST(test_env_override)
{
	struct config *cfg = NULL;
	char *err = NULL;
	const char *p = write_conf(base);

	setenv("INSTAG_AGENT_REQUEST_THREADS", "3", 1);
	setenv("INSTAG_AGENT_JWT_ISSUER", "from-env", 1);
	ck_assert_int_eq(config_load(p, &cfg, &err), 0);
	ck_assert_int_eq(cfg->request_threads, 3);
	ck_assert_str_eq(cfg->jwt_issuer, "from-env");
	config_free(cfg);
	setenv("INSTAG_AGENT_REQUEST_THREADS", "-1", 1);
	ck_assert_int_eq(config_load(p, &cfg, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "INSTAG_AGENT_REQUEST_THREADS"));
	free(err);
	unsetenv("INSTAG_AGENT_REQUEST_THREADS");
	unsetenv("INSTAG_AGENT_JWT_ISSUER");
	unlink(p);
}
END_TEST

START_TEST(test_cidr)
{
	unsigned char a[16];
	int fam, pre;

	ck_assert_int_eq(config_parse_cidr("127.0.0.1", a, &fam, &pre), 0);
	ck_assert_int_eq(pre, 32);
	ck_assert_int_eq(config_parse_cidr("10.0.0.0/8", a, &fam, &pre), 0);
	ck_assert_int_eq(pre, 8);
	ck_assert_int_eq(config_parse_cidr("::1/128", a, &fam, &pre), 0);
	ck_assert_int_eq(config_parse_cidr("fe80::/10", a, &fam, &pre), 0);
	ck_assert_int_eq(pre, 10);
	ck_assert_int_eq(config_parse_cidr("", a, &fam, &pre), -1);
	ck_assert_int_eq(config_parse_cidr("host.example", a, &fam, &pre), -1);
	ck_assert_int_eq(config_parse_cidr("1.2.3.4/", a, &fam, &pre), -1);
}
END_TEST

/* Every key in the table is documented in docs/configuration.md. */
START_TEST(test_keys_documented)
{
	const char *top = getenv("top_srcdir");
	char path[1024], needle[128];
	const struct config_key *k;
	char *text;

	snprintf(path, sizeof(path), "%s/docs/configuration.md",
	    top ? top : ".");
	text = tu_read_file(path);
	for (k = config_keys; k->name; k++) {
		snprintf(needle, sizeof(needle), "`%s`", k->name);
		ck_assert_msg(strstr(text, needle) != NULL,
		    "docs/configuration.md does not document %s", k->name);
	}
	free(text);
}
END_TEST

/* Every key is in etc/agent.conf.example as a "key = value" line, and one
 * left commented out ("#key = value") shows the key's default. */
START_TEST(test_keys_in_example)
{
	const char *top = getenv("top_srcdir");
	char path[1024], needle[128];
	const struct config_key *k;
	char *text, *p, *eol;
	size_t n;

	snprintf(path, sizeof(path), "%s/etc/agent.conf.example",
	    top ? top : ".");
	text = tu_read_file(path);
	for (k = config_keys; k->name; k++) {
		snprintf(needle, sizeof(needle), "\n#%s =", k->name);
		p = strstr(text, needle);
		if (p == NULL) {
			snprintf(needle, sizeof(needle), "\n%s =", k->name);
			p = strstr(text, needle);
			ck_assert_msg(p != NULL,
			    "etc/agent.conf.example lacks %s", k->name);
			continue;
		}
		p += strlen(needle);
		p += strspn(p, " ");
		eol = strchr(p, '\n');
		n = eol ? (size_t)(eol - p) : strlen(p);
		ck_assert_msg(n == strlen(k->def) && !strncmp(p, k->def, n),
		    "etc/agent.conf.example: #%s = %.*s, but the default is "
		    "'%s'", k->name, (int)n, p, k->def);
	}
	free(text);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_values_and_comments);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_host_owners);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_env_override);
	tcase_add_test(tc, test_cidr);
	tcase_add_test(tc, test_nats_url);
	tcase_add_test(tc, test_store);
	tcase_add_test(tc, test_keys_documented);
	tcase_add_test(tc, test_keys_in_example);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { config_suite })
