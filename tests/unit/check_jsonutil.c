/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/jsonutil.h"
#include "testutil.h"

/* Parse a C string; returns rc and fills *o / *err. */
static int
parse(const char *s, int depth, size_t max_str, json_object **o, char **err)
{
	*o = NULL;
	*err = NULL;
	return ju_parse(s, strlen(s), depth, max_str, o, err);
}

/* Expect s to be rejected with an error containing needle. */
static void
expect_reject(const char *s, int depth, size_t max_str, const char *needle)
{
	json_object *o = NULL;
	char *err = NULL;

	ck_assert_msg(parse(s, depth, max_str, &o, &err) == -1,
	    "'%s' was accepted", s);
	ck_assert_ptr_null(o);
	ck_assert_msg(err != NULL, "no error text for '%s'", s);
	ck_assert_msg(strstr(err, needle) != NULL,
	    "error for '%s' is '%s', lacks '%s'", s, err, needle);
	free(err);
}

/* n nested arrays around leaf: "[[[leaf]]]". */
static char *
nested(int n, const char *leaf)
{
	size_t ll = strlen(leaf), k = 0;
	char *s = malloc(2 * (size_t)n + ll + 1);
	int i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++)
		s[k++] = '[';
	memcpy(s + k, leaf, ll);
	k += ll;
	for (i = 0; i < n; i++)
		s[k++] = ']';
	s[k] = '\0';
	return s;
}

/* Nested objects: {"a":{"a":...leaf...}} n deep. */
static char *
nested_obj(int n, const char *leaf)
{
	size_t ll = strlen(leaf), k = 0;
	char *s = malloc(6 * (size_t)n + ll + 1);
	int i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++) {
		memcpy(s + k, "{\"a\":", 5);
		k += 5;
	}
	memcpy(s + k, leaf, ll);
	k += ll;
	for (i = 0; i < n; i++)
		s[k++] = '}';
	s[k] = '\0';
	return s;
}

static int
depth_ok(const char *s, int max_depth)
{
	json_object *o = NULL;
	char *err = NULL;
	int rc = ju_parse(s, strlen(s), max_depth, 1024, &o, &err);

	if (rc == 0) {
		ck_assert_ptr_nonnull(o);
		ck_assert_ptr_null(err);
		json_object_put(o);
	} else {
		ck_assert_ptr_null(o);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, "deeper") != NULL,
		    "depth error '%s' does not say too deep", err);
		free(err);
	}
	return rc;
}

START_TEST(test_parse_valid)
{
	json_object *o, *v;
	char *err;
	const char *text = " {\"a\":1,\"b\":[true,null,\"x\"],"
	    "\"c\":{\"d\":1.5},\"e\":\"\\u00fc\\n\\\"q\\\"\","
	    "\"f\":-9007199254740993} \r\n";

	ck_assert_int_eq(parse(text, 32, 64, &o, &err), 0);
	ck_assert_ptr_null(err);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_is_type(o, json_type_object));
	ck_assert_int_eq(json_object_object_length(o), 5);
	ck_assert(json_object_object_get_ex(o, "a", &v));
	ck_assert_int_eq(json_object_get_int64(v), 1);
	v = ju_arr(o, "b");
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(json_object_array_length(v), 3);
	ck_assert(json_object_get_boolean(json_object_array_get_idx(v, 0)));
	ck_assert_ptr_null(json_object_array_get_idx(v, 1));
	ck_assert_str_eq(
	    json_object_get_string(json_object_array_get_idx(v, 2)), "x");
	ck_assert(json_object_object_get_ex(ju_obj(o, "c"), "d", &v));
	ck_assert(json_object_get_double(v) == 1.5);
	ck_assert_str_eq(ju_str(o, "e"), "\xc3\xbc\n\"q\"");
	ck_assert(json_object_object_get_ex(o, "f", &v));
	ck_assert(json_object_get_int64(v) == -9007199254740993LL);
	json_object_put(o);

	/* Other top-level values and whitespace. */
	ck_assert_int_eq(parse("[]", 32, 64, &o, &err), 0);
	ck_assert(json_object_is_type(o, json_type_array));
	json_object_put(o);
	ck_assert_int_eq(parse("\t\"s\"\n", 32, 64, &o, &err), 0);
	ck_assert_str_eq(json_object_get_string(o), "s");
	json_object_put(o);
	ck_assert_int_eq(parse("true", 32, 64, &o, &err), 0);
	ck_assert(json_object_get_boolean(o));
	json_object_put(o);
	/* A bare number is a complete JSON text. */
	ck_assert_int_eq(parse("12", 32, 64, &o, &err), 0);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(json_object_get_int(o), 12);
	json_object_put(o);
	ck_assert_int_eq(parse("-1.5e2 ", 32, 64, &o, &err), 0);
	ck_assert(json_object_get_double(o) == -150.0);
	json_object_put(o);
	/* The top-level null parses to a NULL object but succeeds. */
	ck_assert_int_eq(parse("null", 32, 64, &o, &err), 0);
	ck_assert_ptr_null(o);
	ck_assert_ptr_null(err);
}
END_TEST

START_TEST(test_parse_len_not_nul)
{
	/* Only text[0..len) is read: the tail after len is ignored. */
	const char buf[] = "{\"a\":1}GARBAGE";
	json_object *o = NULL;
	char *err = NULL;

	ck_assert_int_eq(ju_parse(buf, 7, 32, 64, &o, &err), 0);
	ck_assert_ptr_nonnull(o);
	json_object_put(o);
	ck_assert_int_eq(ju_parse(buf, 9, 32, 64, &o, &err), -1);
	ck_assert_ptr_nonnull(err);
	free(err);
}
END_TEST

START_TEST(test_depth_bomb)
{
	char *s = nested(10000, "");
	char *s2 = nested_obj(10000, "1");

	ck_assert_int_eq(depth_ok(s, 32), -1);
	ck_assert_int_eq(depth_ok(s, 1000), -1);
	ck_assert_int_eq(depth_ok(s2, 32), -1);
	free(s);
	free(s2);
	/* Unclosed: still reported (as too deep or incomplete), no crash. */
	s = malloc(10001);
	memset(s, '[', 10000);
	s[10000] = '\0';
	{
		json_object *o;
		char *err;
		ck_assert_int_eq(parse(s, 32, 64, &o, &err), -1);
		ck_assert_ptr_nonnull(err);
		free(err);
	}
	free(s);
}
END_TEST

START_TEST(test_depth_exact)
{
	int md;

	/* Nesting exactly max_depth deep is accepted, one more is not,
	 * whether the innermost container is empty or holds a scalar. */
	for (md = 2; md <= 40; md += 19) {
		char *a = nested(md, ""), *b = nested(md, "1");
		char *c = nested(md + 1, ""), *d = nested(md + 1, "1");
		char *e = nested_obj(md, "\"x\""), *f = nested_obj(md + 1, "2");

		ck_assert_msg(depth_ok(a, md) == 0, "%d empty arrays", md);
		ck_assert_msg(depth_ok(b, md) == 0, "%d arrays + scalar", md);
		ck_assert_msg(depth_ok(e, md) == 0, "%d objects", md);
		ck_assert_msg(depth_ok(c, md) == -1, "%d empty arrays", md + 1);
		ck_assert_msg(depth_ok(d, md) == -1, "%d arrays + scalar",
		    md + 1);
		ck_assert_msg(depth_ok(f, md) == -1, "%d objects", md + 1);
		free(a);
		free(b);
		free(c);
		free(d);
		free(e);
		free(f);
	}
	/* The usual request shape fits a limit of 2. */
	ck_assert_int_eq(depth_ok("{\"params\":{\"x\":1}}", 2), 0);
	ck_assert_int_eq(depth_ok("{\"params\":{\"x\":[1]}}", 2), -1);
	/* Brackets inside strings do not count. */
	ck_assert_int_eq(depth_ok("[\"[[[[[[[[[[{{{{{{\"]", 2), 0);
	ck_assert_int_eq(depth_ok("[\"\\\"[[[[\"]", 2), 0);
}
END_TEST

START_TEST(test_trailing)
{
	expect_reject("{\"a\":1} x", 32, 64, "byte");
	expect_reject("{\"a\":1}{}", 32, 64, "byte 7");
	expect_reject("[1] [2]", 32, 64, "byte");
	expect_reject("true false", 32, 64, "byte");
	expect_reject("\"a\"\"b\"", 32, 64, "byte");
	expect_reject("[1],", 32, 64, "byte");
	expect_reject("{} \n x", 32, 64, "byte");
	/* A NUL inside the buffer is trailing data, not an end. */
	{
		const char buf[] = "{}\0{}";
		json_object *o = NULL;
		char *err = NULL;
		ck_assert_int_eq(ju_parse(buf, 5, 32, 64, &o, &err), -1);
		ck_assert_ptr_null(o);
		ck_assert_ptr_nonnull(err);
		free(err);
	}
}
END_TEST

START_TEST(test_truncated)
{
	expect_reject("", 32, 64, "incomplete");
	expect_reject("   ", 32, 64, "incomplete");
	expect_reject("{", 32, 64, "incomplete");
	expect_reject("{\"a\":1", 32, 64, "incomplete");
	expect_reject("{\"a\":", 32, 64, "incomplete");
	expect_reject("{\"a\":\"x", 32, 64, "incomplete");
	expect_reject("[1,2", 32, 64, "incomplete");
	expect_reject("tru", 32, 64, "incomplete");
	expect_reject("\"abc", 32, 64, "incomplete");
	expect_reject("\"\\u00", 32, 64, "incomplete");
}
END_TEST

START_TEST(test_syntax_errors)
{
	expect_reject("[1,]", 32, 64, "invalid JSON");
	expect_reject("{\"a\" 1}", 32, 64, "invalid JSON");
	expect_reject("{a:1}", 32, 64, "invalid JSON");
	expect_reject("['a']", 32, 64, "invalid JSON");
	expect_reject("{'a':1}", 32, 64, "invalid JSON");
	expect_reject("[TRUE]", 32, 64, "invalid JSON");
	expect_reject("[01]", 32, 64, "invalid JSON");
	expect_reject("[.5]", 32, 64, "invalid JSON");
	expect_reject("[+1]", 32, 64, "invalid JSON");
	expect_reject("[NaN]", 32, 64, "invalid JSON");
	expect_reject("[Infinity]", 32, 64, "invalid JSON");
	expect_reject("[-Infinity]", 32, 64, "invalid JSON");
	expect_reject("[1]/**/", 32, 64, "invalid JSON");
	expect_reject("[\"\\x41\"]", 32, 64, "invalid JSON");
	/* Raw control characters inside strings (RFC 8259 section 7). */
	expect_reject("[\"a\nb\"]", 32, 64, "invalid JSON");
	expect_reject("[\"a\tb\"]", 32, 64, "invalid JSON");
	/* Invalid UTF-8. */
	expect_reject("[\"\xff\"]", 32, 64, "invalid JSON");
	expect_reject("[\"\xc3\"]", 32, 64, "invalid JSON");
	/* A byte order mark is not JSON. */
	expect_reject("\xef\xbb\xbf[1]", 32, 64, "invalid JSON");
	/* Strict UTF-8: overlong forms, surrogates, beyond U+10FFFF. */
	expect_reject("[\"\xc0\xaf\"]", 32, 64, "not UTF-8");
	expect_reject("[\"\xe0\x80\xaf\"]", 32, 64, "not UTF-8");
	expect_reject("[\"\xf0\x80\x80\xaf\"]", 32, 64, "not UTF-8");
	expect_reject("[\"\xed\xa0\x80\"]", 32, 64, "not UTF-8");
	expect_reject("[\"\xf4\x90\x80\x80\"]", 32, 64, "not UTF-8");
	expect_reject("[\"\xf5\x80\x80\x80\"]", 32, 64, "not UTF-8");
	expect_reject("[\"\xe2\x82\"]", 32, 64, "not UTF-8");
	/* U+0000 would cut the string short for C. */
	expect_reject("[\"a\\u0000b\"]", 32, 64, "u0000");
}
END_TEST

START_TEST(test_utf8_check)
{
	static const char ok[] = "a\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f"
	    "\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";
	json_object *o = NULL;
	char *err = NULL;

	ck_assert_uint_eq(ju_utf8_check(ok, sizeof(ok) - 1), sizeof(ok) - 1);
	ck_assert_uint_eq(ju_utf8_check("ab\xc0\xaf", 4), 2);
	ck_assert_uint_eq(ju_utf8_check("\xf4\x8f\xbf", 3), 0);
	ck_assert_uint_eq(ju_utf8_check("", 0), 0);
	/* an escaped backslash before u0000 is text, not U+0000 */
	ck_assert_int_eq(ju_parse("[\"\\\\u0000\"]", 11, 32, 64, &o,
	    &err), 0);
	ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(o,
	    0)), "\\u0000");
	json_object_put(o);
}
END_TEST

/* Quoting a cut client string keeps a message valid UTF-8 (found by
 * fuzz/fuzz_envelope: "%.64s" split a 3-byte character). */
START_TEST(test_utf8_prefix)
{
	/* 62 ASCII bytes, then U+D3DA twice (3 bytes each). */
	char s[80];
	char *msg;

	memset(s, ';', 62);
	memcpy(s + 62, "\xed\x8f\x9a\xed\x8f\x9a", 7);
	ck_assert_int_eq(ju_utf8_prefix(s, 64), 62);
	ck_assert_int_eq(ju_utf8_prefix(s, 65), 65);
	ck_assert_int_eq(ju_utf8_prefix(s, 68), 68);
	ck_assert_int_eq(ju_utf8_prefix(s, 1000), 68);
	ck_assert_int_eq(ju_utf8_prefix("", 64), 0);
	ck_assert_int_eq(ju_utf8_prefix("\xf0\x9f\x98\x80", 3), 0);
	ck_assert_int_eq(ju_utf8_prefix("ab", 0), 0);
	ck_assert_int_ge(asprintf(&msg, "type: %.*s", ju_utf8_prefix(s, 64),
	    s), 0);
	ck_assert_uint_eq(ju_utf8_check(msg, strlen(msg)), strlen(msg));
	free(msg);
}
END_TEST

START_TEST(test_long_strings)
{
	char *big = malloc(300), *doc = malloc(400);
	json_object *o;
	char *err;

	/* Exactly max_str bytes is accepted. */
	memset(big, 'a', 100);
	big[100] = '\0';
	snprintf(doc, 400, "{\"k\":\"%s\"}", big);
	ck_assert_int_eq(parse(doc, 32, 100, &o, &err), 0);
	ck_assert_uint_eq(strlen(ju_str(o, "k")), 100);
	json_object_put(o);
	/* One more byte is not: as a value ... */
	memset(big, 'a', 101);
	big[101] = '\0';
	snprintf(doc, 400, "{\"k\":\"%s\"}", big);
	expect_reject(doc, 32, 100, "longer than the limit of 100");
	/* ... as a key ... */
	snprintf(doc, 400, "{\"%s\":1}", big);
	expect_reject(doc, 32, 100, "key is longer");
	/* ... nested in arrays and objects ... */
	snprintf(doc, 400, "{\"a\":[1,{\"b\":[\"%s\"]}]}", big);
	expect_reject(doc, 32, 100, "longer");
	/* ... a top-level string ... */
	snprintf(doc, 400, "\"%s\"", big);
	expect_reject(doc, 32, 100, "longer");
	/* ... counting decoded bytes: 51 x "\u00fc" = 102 bytes. */
	{
		size_t k = 0;
		int i;
		doc[k++] = '"';
		for (i = 0; i < 51; i++) {
			memcpy(doc + k, "\\u00fc", 6);
			k += 6;
		}
		doc[k++] = '"';
		doc[k] = '\0';
		expect_reject(doc, 32, 100, "longer");
		ck_assert_int_eq(parse(doc, 32, 102, &o, &err), 0);
		ck_assert_int_eq(json_object_get_string_len(o), 102);
		json_object_put(o);
	}
	free(big);
	free(doc);
}
END_TEST

START_TEST(test_accessors)
{
	json_object *o, *nested;
	char *err;
	int64_t i = 77;
	bool b = false;

	ck_assert_int_eq(parse("{\"s\":\"str\",\"i\":42,\"neg\":-3,"
	    "\"d\":2.5,\"b\":true,\"f\":false,\"n\":null,\"o\":{\"x\":1},"
	    "\"a\":[1],\"is\":\"42\"}", 32, 64, &o, &err), 0);

	/* ju_str */
	ck_assert_str_eq(ju_str(o, "s"), "str");
	ck_assert_str_eq(ju_str(o, "is"), "42");
	ck_assert_ptr_null(ju_str(o, "i"));
	ck_assert_ptr_null(ju_str(o, "n"));
	ck_assert_ptr_null(ju_str(o, "o"));
	ck_assert_ptr_null(ju_str(o, "missing"));
	ck_assert_ptr_null(ju_str(NULL, "s"));
	ck_assert_ptr_null(ju_str(ju_arr(o, "a"), "s"));

	/* ju_obj / ju_arr */
	nested = ju_obj(o, "o");
	ck_assert_ptr_nonnull(nested);
	ck_assert_int_eq(json_object_object_length(nested), 1);
	ck_assert_ptr_null(ju_obj(o, "a"));
	ck_assert_ptr_null(ju_obj(o, "s"));
	ck_assert_ptr_null(ju_obj(o, "n"));
	ck_assert_ptr_null(ju_obj(o, "missing"));
	ck_assert_ptr_null(ju_obj(NULL, "o"));
	ck_assert_ptr_nonnull(ju_arr(o, "a"));
	ck_assert_ptr_null(ju_arr(o, "o"));
	ck_assert_ptr_null(ju_arr(o, "s"));
	ck_assert_ptr_null(ju_arr(NULL, "a"));

	/* ju_int: 0 present, 1 absent (or null), -1 other type */
	ck_assert_int_eq(ju_int(o, "i", &i), 0);
	ck_assert(i == 42);
	ck_assert_int_eq(ju_int(o, "neg", &i), 0);
	ck_assert(i == -3);
	i = 77;
	ck_assert_int_eq(ju_int(o, "missing", &i), 1);
	ck_assert(i == 77);
	ck_assert_int_eq(ju_int(o, "n", &i), 1);
	ck_assert_int_eq(ju_int(o, "d", &i), -1);
	ck_assert_int_eq(ju_int(o, "is", &i), -1);
	ck_assert_int_eq(ju_int(o, "b", &i), -1);
	ck_assert_int_eq(ju_int(o, "o", &i), -1);
	ck_assert(i == 77);
	ck_assert_int_eq(ju_int(NULL, "i", &i), 1);
	ck_assert_int_eq(ju_int(ju_arr(o, "a"), "i", &i), 1);

	/* ju_bool */
	ck_assert_int_eq(ju_bool(o, "b", &b), 0);
	ck_assert(b);
	ck_assert_int_eq(ju_bool(o, "f", &b), 0);
	ck_assert(!b);
	b = true;
	ck_assert_int_eq(ju_bool(o, "missing", &b), 1);
	ck_assert_int_eq(ju_bool(o, "n", &b), 1);
	ck_assert_int_eq(ju_bool(o, "i", &b), -1);
	ck_assert_int_eq(ju_bool(o, "s", &b), -1);
	ck_assert(b);
	ck_assert_int_eq(ju_bool(NULL, "b", &b), 1);
	json_object_put(o);
}
END_TEST

START_TEST(test_dump_copy_newstr)
{
	json_object *o = json_object_new_object(), *c, *s;
	char *d;

	json_object_object_add(o, "u", json_object_new_string("a/b"));
	json_object_object_add(o, "n", json_object_new_int(1));
	d = ju_dump(o);
	ck_assert_str_eq(d, "{\"u\":\"a/b\",\"n\":1}");
	free(d);
	d = ju_dump(NULL);
	ck_assert_str_eq(d, "null");
	free(d);

	c = ju_copy(o);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(c, o);
	ck_assert(json_object_equal(c, o));
	json_object_object_add(c, "n", json_object_new_int(2));
	ck_assert(!json_object_equal(c, o));
	ck_assert_str_eq(ju_str(o, "u"), "a/b");
	json_object_put(c);
	ck_assert_ptr_null(ju_copy(NULL));

	s = ju_new_str("x");
	ck_assert_str_eq(json_object_get_string(s), "x");
	json_object_put(s);
	ck_assert_ptr_null(ju_new_str(NULL));
	json_object_put(o);
}
END_TEST

START_TEST(test_iso8601)
{
	char buf[32];

	ju_iso8601(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	ju_iso8601(1700000000123LL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2023-11-14T22:13:20.123Z");
	ju_iso8601(951782400007LL, buf, sizeof(buf));	/* leap day 2000 */
	ck_assert_str_eq(buf, "2000-02-29T00:00:00.007Z");
	ju_iso8601(4102444799999LL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2099-12-31T23:59:59.999Z");
	ck_assert_uint_eq(strlen(buf), 24);

	/* The current time formats with the same shape. */
	ju_iso8601(clock_wall_ms(), buf, sizeof(buf));
	ck_assert_uint_eq(strlen(buf), 24);
	ck_assert(buf[4] == '-' && buf[7] == '-' && buf[10] == 'T' &&
	    buf[13] == ':' && buf[16] == ':' && buf[19] == '.' &&
	    buf[23] == 'Z');
}
END_TEST

START_TEST(test_clocks)
{
	struct timespec ts = { 0, 20 * 1000000L }, b, a;
	int64_t before, now, after, m1, m2;

	/*
	 * The wall clock in ms, read between two CLOCK_REALTIME reads.
	 * Not time(): glibc serves it from the coarse clock, which lags
	 * the fine one by up to a tick, so a read just past a second
	 * boundary could see time() still in the second before.
	 */
	clock_gettime(CLOCK_REALTIME, &b);
	now = clock_wall_ms();
	clock_gettime(CLOCK_REALTIME, &a);
	before = (int64_t)b.tv_sec * 1000 + b.tv_nsec / 1000000;
	after = (int64_t)a.tv_sec * 1000 + a.tv_nsec / 1000000;
	ck_assert_msg(now >= before && now <= after,
	    "clock_wall_ms %lld vs CLOCK_REALTIME %lld..%lld",
	    (long long)now, (long long)before, (long long)after);
	/* The monotonic clock advances by at least the time slept. */
	m1 = clock_mono_ms();
	nanosleep(&ts, NULL);
	m2 = clock_mono_ms();
	ck_assert(m2 - m1 >= 19);
	ck_assert(m2 - m1 < TU_HANG_MS);
}
END_TEST

static Suite *
jsonutil_suite(void)
{
	Suite *s = suite_create("jsonutil");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_valid);
	tcase_add_test(tc, test_parse_len_not_nul);
	tcase_add_test(tc, test_depth_bomb);
	tcase_add_test(tc, test_depth_exact);
	tcase_add_test(tc, test_trailing);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_long_strings);
	tcase_add_test(tc, test_accessors);
	tcase_add_test(tc, test_dump_copy_newstr);
	tcase_add_test(tc, test_iso8601);
	tcase_add_test(tc, test_clocks);
	tcase_add_test(tc, test_utf8_check);
	tcase_add_test(tc, test_utf8_prefix);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { jsonutil_suite })
