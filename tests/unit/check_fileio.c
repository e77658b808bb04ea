/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "lib/xalloc.h"
#include "testutil.h"

static char dir[] = "/tmp/ia-fileio.XXXXXX";

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	strcpy(dir, "/tmp/ia-fileio.XXXXXX");
}

START_TEST(test_write_json_atomic)
{
	char *path = xasprintf("%s/rec.json", dir);
	char *tmp = xasprintf("%s/rec.json.tmp", dir);
	json_object *o = json_object_new_object();
	char *err = NULL, *text;
	struct stat st;
	int fd;

	/* a crash's leftover tmp does not block the write */
	fd = open(tmp, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	json_object_object_add(o, "a", json_object_new_string("x/y"));
	umask(0);
	ck_assert_int_eq(fio_write_json(path, o, 0600, &err), 0);
	umask(022);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_ne(access(tmp, F_OK), 0);
	text = fio_slurp(path, 1024);
	ck_assert_str_eq(text, "{\"a\":\"x/y\"}\n");
	free(text);

	/* a directory in the way: an error naming the file, no tmp left */
	free(path);
	path = xasprintf("%s/sub", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(fio_write_json(path, o, 0600, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "rename"));
	free(err);
	free(tmp);
	tmp = xasprintf("%s/sub.tmp", dir);
	ck_assert_int_ne(access(tmp, F_OK), 0);
	json_object_put(o);
	free(path);
	free(tmp);
}
END_TEST

START_TEST(test_slurp_bounds)
{
	char *path = xasprintf("%s/f", dir);
	char *link = xasprintf("%s/l", dir);
	char *text;
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fio_write_all(fd, "0123456789", 10), 0);
	close(fd);
	text = fio_slurp(path, 10);
	ck_assert_str_eq(text, "0123456789");
	free(text);
	errno = 0;
	ck_assert_ptr_null(fio_slurp(path, 9));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(fio_slurp(dir, 1 << 20));	/* not regular */
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_ptr_null(fio_slurp(link, 1 << 20));	/* not followed */
	ck_assert_ptr_null(fio_slurp("/nonexistent/x", 10));
	ck_assert_int_eq(errno, ENOENT);
	free(path);
	free(link);
}
END_TEST

START_TEST(test_sha256_copy)
{
	char *src = xasprintf("%s/src", dir), *dst = xasprintf("%s/dst", dir);
	char hex[65], *err = NULL, *copy;
	int64_t size = -1;
	int in, out;

	in = open(src, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(in, 0);
	ck_assert_int_eq(fio_write_all(in, "abc", 3), 0);
	close(in);
	in = open(src, O_RDONLY);
	out = open(dst, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_eq(fio_sha256_fd(in, out, src, hex, &size, &err), 0);
	close(in);
	close(out);
	/* FIPS 180-2's "abc" */
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	ck_assert_int_eq(size, 3);
	copy = fio_slurp(dst, 16);
	ck_assert_str_eq(copy, "abc");
	free(copy);
	/* a descriptor that cannot be read: an error naming the file */
	out = open(dst, O_WRONLY);
	ck_assert_int_eq(fio_sha256_fd(out, -1, "dst", hex, &size, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "read dst"));
	free(err);
	close(out);
	free(src);
	free(dst);
}
END_TEST

static Suite *
fileio_suite(void)
{
	Suite *s = suite_create("fileio");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_write_json_atomic);
	tcase_add_test(tc, test_slurp_bounds);
	tcase_add_test(tc, test_sha256_copy);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(.suites = { fileio_suite })
