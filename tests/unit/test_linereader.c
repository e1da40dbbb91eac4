// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for linereader.c on real files (plain and gzip, written to a temporary directory): every line
 * with its offset, CR kept, a last line without '\n', empty lines, lines across the 1 MiB read chunks, a line
 * over the limit cut to its first bytes with the next line intact, seeking to a recorded offset (the resume
 * path) in both kinds of file, and a truncated gzip file reported as an error instead of an early end.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/linereader.h"
#include "unit.h"

static char dir[] = "/tmp/test_linereader.XXXXXX";

static int setup(void)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes bytes to dir/name, gzip-compressed when gz; returns the path (static buffer). */
static const char *write_file(const char *name, const char *bytes, size_t len, bool gz)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (gz) {
		gzFile f = gzopen(path, "wb");
		CU_ASSERT_FATAL(f != NULL);
		CU_ASSERT_FATAL(len == 0 || gzwrite(f, bytes, (unsigned)len) == (int)len);
		gzclose(f);
	} else {
		FILE *f = fopen(path, "wb");
		CU_ASSERT_FATAL(f != NULL);
		CU_ASSERT_FATAL(fwrite(bytes, 1, len, f) == len);
		fclose(f);
	}
	return path;
}

static void expect_line(struct linereader *r, const char *text, int64_t at)
{
	const char *line;
	size_t len;
	int64_t got_at;
	bool too_long;

	CU_ASSERT_EQUAL_FATAL(linereader_next(r, &line, &len, &got_at, &too_long), 1);
	CU_ASSERT_FALSE(too_long);
	CU_ASSERT_EQUAL(len, strlen(text));
	CU_ASSERT(len == strlen(text) && memcmp(line, text, len) == 0);
	CU_ASSERT_EQUAL(got_at, at);
}

static void expect_end(struct linereader *r)
{
	const char *line;
	size_t len;
	int64_t at;
	bool too_long;

	CU_ASSERT_EQUAL(linereader_next(r, &line, &len, &at, &too_long), 0);
}

static void small_file(bool gz)
{
	static const char text[] = "a,b\r\n\nsecond line\nlast without newline";
	struct linereader *r =
		linereader_open(write_file(gz ? "small.gz" : "small", text, sizeof(text) - 1, gz));

	CU_ASSERT_FATAL(r != NULL);
	expect_line(r, "a,b\r", 0);
	expect_line(r, "", 5);
	expect_line(r, "second line", 6);
	CU_ASSERT_EQUAL(linereader_offset(r), 18);
	expect_line(r, "last without newline", 18);
	CU_ASSERT_EQUAL(linereader_offset(r), (int64_t)sizeof(text) - 1);
	expect_end(r);
	/* resume at a recorded line start */
	CU_ASSERT_EQUAL(linereader_seek(r, 6), 0);
	expect_line(r, "second line", 6);
	expect_line(r, "last without newline", 18);
	expect_end(r);
	linereader_close(r);
}

static void test_small_plain(void)
{
	small_file(false);
}

static void test_small_gzip(void)
{
	small_file(true);
}

static void test_empty_and_missing(void)
{
	struct linereader *r = linereader_open(write_file("empty", "", 0, false));

	CU_ASSERT_FATAL(r != NULL);
	expect_end(r);
	linereader_close(r);
	CU_ASSERT_PTR_NULL(linereader_open("/nonexistent/file"));
	linereader_close(NULL);
}

/* 300,000 numbered lines (~3.5 MB): lines cross the read chunks; offsets add up; a seek lands mid-file. */
static void many_lines(bool gz)
{
	size_t cap = 8 * 1024 * 1024, len = 0;
	char *text = malloc(cap);
	int64_t offset_of_250000 = 0;

	for (int i = 1; i <= 300000; i++) {
		if (i == 250000)
			offset_of_250000 = (int64_t)len;
		len += (size_t)snprintf(text + len, cap - len, "line number %d\n", i);
	}
	struct linereader *r = linereader_open(write_file(gz ? "many.gz" : "many", text, len, gz));
	CU_ASSERT_FATAL(r != NULL);
	int64_t expected_at = 0;
	for (int i = 1; i <= 300000; i++) {
		char want[32];
		snprintf(want, sizeof(want), "line number %d", i);
		const char *line;
		size_t n;
		int64_t at;
		bool too_long;
		if (linereader_next(r, &line, &n, &at, &too_long) != 1 || n != strlen(want) ||
		    memcmp(line, want, n) != 0 || at != expected_at) {
			CU_FAIL("wrong line or offset");
			break;
		}
		expected_at += (int64_t)n + 1;
	}
	expect_end(r);
	CU_ASSERT_EQUAL(linereader_seek(r, offset_of_250000), 0);
	expect_line(r, "line number 250000", offset_of_250000);
	CU_ASSERT(linereader_raw_position(r) > 0);
	linereader_close(r);
	free(text);
}

static void test_many_plain(void)
{
	many_lines(false);
}

static void test_many_gzip(void)
{
	many_lines(true);
}

/* Lines of 100 kB and 3 MB: each comes back as its first 256 bytes, flagged; the lines around them intact. */
static void test_too_long(void)
{
	size_t cap = 4 * 1024 * 1024, len = 0;
	char *text = malloc(cap);
	const char *line;
	size_t n;
	int64_t at;
	bool too_long;

	len += (size_t)snprintf(text, cap, "before\n");
	memset(text + len, 'x', 100000);
	len += 100000;
	text[len++] = '\n';
	len += (size_t)snprintf(text + len, cap - len, "between\n");
	memset(text + len, 'y', 3000000);
	len += 3000000;
	text[len++] = '\n';
	len += (size_t)snprintf(text + len, cap - len, "after\n");
	memset(text + len, 'z', 70000); /* the last line, too long and without a newline */
	len += 70000;

	struct linereader *r = linereader_open(write_file("long", text, len, false));
	CU_ASSERT_FATAL(r != NULL);
	expect_line(r, "before", 0);
	CU_ASSERT_EQUAL_FATAL(linereader_next(r, &line, &n, &at, &too_long), 1);
	CU_ASSERT_TRUE(too_long);
	CU_ASSERT_EQUAL(n, 256);
	CU_ASSERT_EQUAL(line[0], 'x');
	CU_ASSERT_EQUAL(at, 7);
	expect_line(r, "between", 7 + 100001);
	CU_ASSERT_EQUAL_FATAL(linereader_next(r, &line, &n, &at, &too_long), 1);
	CU_ASSERT_TRUE(too_long);
	CU_ASSERT_EQUAL(line[0], 'y');
	CU_ASSERT_EQUAL(at, 7 + 100001 + 8);
	expect_line(r, "after", 7 + 100001 + 8 + 3000001);
	CU_ASSERT_EQUAL_FATAL(linereader_next(r, &line, &n, &at, &too_long), 1);
	CU_ASSERT_TRUE(too_long);
	CU_ASSERT_EQUAL(line[0], 'z');
	CU_ASSERT_EQUAL(linereader_offset(r), (int64_t)len);
	expect_end(r);
	linereader_close(r);
	free(text);
}

/* A gzip file cut short: the lines before the cut, then -1 (not a quiet end of file). */
static void test_truncated_gzip(void)
{
	size_t cap = 2 * 1024 * 1024, len = 0;
	char *text = malloc(cap), path[256], cut[256];
	int rc;

	for (int i = 0; i < 100000; i++)
		len += (size_t)snprintf(text + len, cap - len, "%d,%d\n", i, i * 7919 % 100003);
	snprintf(path, sizeof(path), "%s", write_file("cut.gz", text, len, true));
	snprintf(cut, sizeof(cut), "%s/cut2.gz", dir);
	FILE *in = fopen(path, "rb"), *out = fopen(cut, "wb");
	char buf[20000];
	size_t got = fread(buf, 1, sizeof(buf), in);
	CU_ASSERT_FATAL(got == sizeof(buf));
	CU_ASSERT_FATAL(fwrite(buf, 1, got, out) == got);
	fclose(in);
	fclose(out);

	struct linereader *r = linereader_open(cut);
	const char *line;
	size_t n;
	int64_t at;
	bool too_long;
	int lines = 0;
	CU_ASSERT_FATAL(r != NULL);
	while ((rc = linereader_next(r, &line, &n, &at, &too_long)) == 1)
		lines++;
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT(lines > 0 && lines < 100000);
	linereader_close(r);
	free(text);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_small_plain),	UNIT_TEST(test_small_gzip), UNIT_TEST(test_empty_and_missing),
		UNIT_TEST(test_many_plain),	UNIT_TEST(test_many_gzip),  UNIT_TEST(test_too_long),
		UNIT_TEST(test_truncated_gzip),
	};

	return unit_run("linereader", setup, teardown, tests, UNIT_COUNT(tests));
}
