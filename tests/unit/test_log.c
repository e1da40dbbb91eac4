// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for log.c: whatever a message's arguments hold (a topic, a client id, a payload excerpt from a
 * device), the line written is one line, with no terminal escape sequence, no bidirectional override and no
 * Unicode line separator, in text and in JSON format (issue 12, finding 7). stderr is redirected to a
 * temporary file for the duration of each test.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "unit.h"

#define RLO  "\xe2\x80\xae" /* U+202E RIGHT-TO-LEFT OVERRIDE */
#define LRI  "\xe2\x81\xa6" /* U+2066 LEFT-TO-RIGHT ISOLATE */
#define LSEP "\xe2\x80\xa8" /* U+2028 LINE SEPARATOR */
#define PSEP "\xe2\x80\xa9" /* U+2029 PARAGRAPH SEPARATOR */
#define NEL  "\xc2\x85"	    /* U+0085 NEXT LINE */

/* Runs log_write(level, "test", "%s", text) with stderr captured; returns what was written (malloc'd). */
static char *logged(const char *text)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	char *out = calloc(1, 8192);
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(tmp);
	CU_ASSERT_TRUE_FATAL(saved >= 0);
	CU_ASSERT_TRUE_FATAL(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	log_write(LOG_LEVEL_ERROR, "test", "device said %s", text);
	CU_ASSERT_TRUE_FATAL(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, 8191, tmp);
	out[n] = '\0';
	fclose(tmp);
	return out;
}

static void expect_clean(const char *line)
{
	static const char *const raw[] = { "\x1b", "\r", RLO, LRI, LSEP, PSEP, NEL, "\x07" };

	/* Exactly one newline, at the end: the event cannot start a forged line. */
	CU_ASSERT_PTR_NOT_NULL(strchr(line, '\n'));
	CU_ASSERT_PTR_EQUAL(strchr(line, '\n'), line + strlen(line) - 1);
	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		if (strstr(line, raw[i]))
			fprintf(stderr, "\n  raw character %zu kept in: %s", i, line);
		CU_ASSERT_PTR_NULL(strstr(line, raw[i]));
	}
}

static void test_text_line_escapes_control_and_bidi(void)
{
	char *line;

	log_set_json(false);
	line = logged("INV-1" RLO "gnp.exe\x1b[2J\x1b]0;title\x07" LSEP "x" PSEP NEL
		      "\n2026-01-01T00:00:00Z error forged");
	expect_clean(line);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "INV-1\\u202egnp.exe\\x1b[2J"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\\u2028x\\u2029"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\\x0a2026-01-01T00:00:00Z error forged"));
	free(line);
}

static void test_json_line_escapes_control_and_bidi(void)
{
	char *line;

	log_set_json(true);
	line = logged("a" RLO "b" LRI "c" LSEP "d\r\n\"}");
	log_set_json(false);
	expect_clean(line);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"msg\":\"device said a\\\\u202eb\\\\u2066c\\\\u2028d"));
	/* The quote stays escaped, so the JSON object is not closed early. */
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\\\"}\"}\n"));
	free(line);
}

/* Text that is already safe is logged as it is: UTF-8 letters, and backslashes a caller's text_escape wrote. */
static void test_safe_text_is_unchanged(void)
{
	char *line;

	log_set_json(false);
	line = logged("caf\xc3\xa9 \xe2\x82\xac topic solar/acme/\\x1b");
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "device said caf\xc3\xa9 \xe2\x82\xac topic solar/acme/\\x1b\n"));
	free(line);
}

/* Invalid UTF-8 (a device's bytes) becomes \xNN: the log file stays valid UTF-8 for collectors. */
static void test_invalid_utf8_is_escaped(void)
{
	char *line;

	log_set_json(false);
	line = logged("\xff\xfe"
		      "ok\xc3");
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "device said \\xff\\xfeok\\xc3\n"));
	free(line);
}

/* A message longer than the line still ends in one newline, with nothing raw. */
static void test_long_message_stays_one_clean_line(void)
{
	char big[5000];
	char *line;

	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (i % 7 == 0) ? '\x1b' : 'a';
	big[sizeof(big) - 1] = '\0';
	log_set_json(false);
	line = logged(big);
	expect_clean(line);
	CU_ASSERT_TRUE(strlen(line) <= 2048);
	free(line);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_text_line_escapes_control_and_bidi),
		UNIT_TEST(test_json_line_escapes_control_and_bidi),
		UNIT_TEST(test_safe_text_is_unchanged),
		UNIT_TEST(test_invalid_utf8_is_escaped),
		UNIT_TEST(test_long_message_stays_one_clean_line),
	};

	return unit_run("log", NULL, NULL, tests, UNIT_COUNT(tests));
}
