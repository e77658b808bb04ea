/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "testutil.h"

START_TEST(test_add_and_take)
{
	struct strbuf sb = SB_INIT;
	char *s;

	ck_assert_str_eq(sb_str(&sb), "");
	sb_adds(&sb, "abc");
	sb_addc(&sb, '-');
	sb_addf(&sb, "%d/%s", 42, "x");
	ck_assert_str_eq(sb_str(&sb), "abc-42/x");
	ck_assert_uint_eq(sb.len, 8);
	s = sb_take(&sb);
	ck_assert_str_eq(s, "abc-42/x");
	ck_assert_ptr_null(sb.buf);
	free(s);
}
END_TEST

START_TEST(test_growth)
{
	struct strbuf sb = SB_INIT;
	int i;

	for (i = 0; i < 10000; i++)
		sb_addc(&sb, (char)('a' + i % 26));
	ck_assert_uint_eq(sb.len, 10000);
	ck_assert_uint_eq(strlen(sb_str(&sb)), 10000);
	ck_assert_int_eq(sb.buf[9999], 'a' + 9999 % 26);
	sb_free(&sb);
}
END_TEST

START_TEST(test_json_escape)
{
	struct strbuf sb = SB_INIT;

	sb_add_json_str(&sb, "a\"b\\c\n\x01\x7f\t");
	ck_assert_str_eq(sb_str(&sb), "\"a\\\"b\\\\c\\n\\u0001\\u007f\\t\"");
	sb_reset(&sb);
	sb_add_json_str(&sb, NULL);
	ck_assert_str_eq(sb_str(&sb), "\"\"");
	sb_reset(&sb);
	sb_add_json_str(&sb, "h\xc3\xa9");
	ck_assert_str_eq(sb_str(&sb), "\"h\xc3\xa9\"");
	sb_free(&sb);
}
END_TEST

static Suite *
strbuf_suite(void)
{
	Suite *s = suite_create("strbuf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_add_and_take);
	tcase_add_test(tc, test_growth);
	tcase_add_test(tc, test_json_escape);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { strbuf_suite })
