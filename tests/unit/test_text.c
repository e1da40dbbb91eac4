// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for text.c: the UTF-8 validity table (RFC 3629 edges: overlongs, surrogates, the U+10FFFF
 * ceiling, truncated sequences, NUL) and text_escape (what is kept, what becomes "\xNN" or "\\", and
 * truncation with "..." that always leaves valid, NUL-terminated text within the capacity).
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"
#include "unit.h"

struct utf8_case {
	const char *bytes;
	size_t len;
	bool valid;
	const char *what;
};

/* clang-format off */
#define CASE(literal, valid, what) { literal, sizeof(literal) - 1, valid, what }
/* clang-format on */

static void test_utf8_table(void)
{
	static const struct utf8_case cases[] = {
		CASE("", true, "empty"),
		CASE("plain ascii ~\x7f", true, "ASCII incl. DEL"),
		CASE("\xc3\xa9", true, "U+00E9, 2 bytes"),
		CASE("\xc2\x80", true, "U+0080, smallest 2-byte"),
		CASE("\xdf\xbf", true, "U+07FF, largest 2-byte"),
		CASE("\xe0\xa0\x80", true, "U+0800, smallest 3-byte"),
		CASE("\xe2\x82\xac", true, "U+20AC euro"),
		CASE("\xed\x9f\xbf", true, "U+D7FF, just below the surrogates"),
		CASE("\xee\x80\x80", true, "U+E000, just above the surrogates"),
		CASE("\xef\xbf\xbf", true, "U+FFFF"),
		CASE("\xf0\x90\x80\x80", true, "U+10000, smallest 4-byte"),
		CASE("\xf0\x9f\x8c\x9e", true, "U+1F31E"),
		CASE("\xf4\x8f\xbf\xbf", true, "U+10FFFF, the ceiling"),
		CASE("\xc0\x80", false, "overlong NUL"),
		CASE("\xc0\xaf", false, "overlong '/'"),
		CASE("\xc1\xbf", false, "overlong 2-byte"),
		CASE("\xe0\x80\xaf", false, "overlong 3-byte '/'"),
		CASE("\xe0\x9f\xbf", false, "overlong 3-byte U+07FF"),
		CASE("\xf0\x80\x80\xaf", false, "overlong 4-byte '/'"),
		CASE("\xf0\x8f\xbf\xbf", false, "overlong 4-byte U+FFFF"),
		CASE("\xed\xa0\x80", false, "surrogate U+D800"),
		CASE("\xed\xbf\xbf", false, "surrogate U+DFFF"),
		CASE("\xed\xa0\xbd\xed\xb8\x80", false, "CESU-8 surrogate pair"),
		CASE("\xf4\x90\x80\x80", false, "U+110000, above the ceiling"),
		CASE("\xf5\x80\x80\x80", false, "lead byte F5"),
		CASE("\xf8\x88\x80\x80\x80", false, "5-byte form"),
		CASE("\xfe", false, "FE"),
		CASE("\xff", false, "FF"),
		CASE("\x80", false, "lone continuation"),
		CASE("a\xbf\x62", false, "continuation inside ASCII"),
		CASE("\xc3", false, "truncated 2-byte"),
		CASE("\xe2\x82", false, "truncated 3-byte"),
		CASE("\xf0\x9f\x8c", false, "truncated 4-byte"),
		CASE("\xc3\x28", false, "bad continuation"),
		CASE("\xe2\x28\xac", false, "bad second of 3"),
		CASE("\xe2\x82\x28", false, "bad third of 3"),
		CASE("\xf0\x9f\x28\x9e", false, "bad third of 4"),
		CASE("a\0b", false, "NUL inside"),
		CASE("\0", false, "only NUL"),
		CASE("ok\xc3\xa9\0", false, "NUL at the end"),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = text_is_utf8(cases[i].bytes, cases[i].len);

		if (got != cases[i].valid)
			fprintf(stderr, "\n  %s: got %s\n", cases[i].what, got ? "valid" : "invalid");
		CU_ASSERT_EQUAL(got, cases[i].valid);
	}
}

static void test_utf8_length_is_respected(void)
{
	static const char text[] = "caf\xc3\xa9\xff";

	CU_ASSERT_TRUE(text_is_utf8(text, 5));
	CU_ASSERT_FALSE(text_is_utf8(text, 4)); /* cuts the é in half */
	CU_ASSERT_FALSE(text_is_utf8(text, 6));
	CU_ASSERT_TRUE(text_is_utf8(text, 0));
}

/* Escapes src[0..len) into an exact-size heap buffer of cap bytes (overflows are caught by ASan). */
static char *escape(const char *src, size_t len, size_t cap)
{
	char *dst = malloc(cap);

	memset(dst, 'Z', cap);
	CU_ASSERT_PTR_EQUAL(text_escape(dst, cap, src, len), dst);
	return dst;
}

static void expect_escape(const char *src, size_t len, size_t cap, const char *want)
{
	char *got = escape(src, len, cap);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n  escape(cap %zu) = \"%s\", want \"%s\"\n", cap, got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

#define EXPECT_ESCAPE(literal, cap, want) expect_escape(literal, sizeof(literal) - 1, cap, want)

static void test_escape_keeps_printable_text(void)
{
	EXPECT_ESCAPE("", 8, "");
	EXPECT_ESCAPE("solar/acme/INV-0001", 64, "solar/acme/INV-0001");
	EXPECT_ESCAPE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\x9e", 64,
		      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\x9e");
	EXPECT_ESCAPE("quotes ' \" and %s stay", 64, "quotes ' \" and %s stay");
}

static void test_escape_control_characters(void)
{
	EXPECT_ESCAPE("a\nb", 64, "a\\x0ab");
	EXPECT_ESCAPE("\r\n", 64, "\\x0d\\x0a");
	EXPECT_ESCAPE("\t", 64, "\\x09");
	EXPECT_ESCAPE("\x1b[31m", 64, "\\x1b[31m");
	EXPECT_ESCAPE("\x7f", 64, "\\x7f");
	EXPECT_ESCAPE("\x01\x1f", 64, "\\x01\\x1f");
	EXPECT_ESCAPE("a\0b", 64, "a\\x00b");
	/* A forged log line stays on one line. */
	EXPECT_ESCAPE("x\n2026-01-01T00:00:00Z error forged", 64, "x\\x0a2026-01-01T00:00:00Z error forged");
}

static void test_escape_backslash(void)
{
	EXPECT_ESCAPE("a\\b", 64, "a\\\\b");
	EXPECT_ESCAPE("\\x41", 64, "\\\\x41"); /* cannot be confused with an escape we wrote */
	EXPECT_ESCAPE("\\\\", 64, "\\\\\\\\");
}

static void test_escape_invalid_bytes(void)
{
	EXPECT_ESCAPE("\xff", 64, "\\xff");
	EXPECT_ESCAPE("a\xc3", 64, "a\\xc3");
	EXPECT_ESCAPE("\xc0\xaf", 64, "\\xc0\\xaf");
	EXPECT_ESCAPE("\xed\xa0\x80", 64, "\\xed\\xa0\\x80");
	EXPECT_ESCAPE("\xf4\x90\x80\x80", 64, "\\xf4\\x90\\x80\\x80");
	/* After an invalid byte, decoding resynchronises on the next valid sequence. */
	EXPECT_ESCAPE("\xe2\x82\xc3\xa9", 64, "\\xe2\\x82\xc3\xa9");
}

/*
 * The C1 controls U+0080..U+009F are control characters too (U+0085 NEXT LINE breaks lines in some viewers);
 * text.h promises "no control characters" in the output.
 */
static void test_escape_c1_controls(void)
{
	static const char nel[] = "a\xc2\x85z"; /* U+0085 NEXT LINE */
	static const char csi[] = "\xc2\x9bm";	/* U+009B CONTROL SEQUENCE INTRODUCER */
	char *got = escape(nel, sizeof(nel) - 1, 64);

	if (strstr(got, "\xc2\x85"))
		fprintf(stderr, "\n  U+0085 kept as is in \"%s\"\n", got);
	CU_ASSERT_PTR_NULL(strstr(got, "\xc2\x85"));
	CU_ASSERT_TRUE(text_is_utf8(got, strlen(got)));
	free(got);
	got = escape(csi, sizeof(csi) - 1, 64);
	CU_ASSERT_PTR_NULL(strstr(got, "\xc2\x9b"));
	free(got);
	/* U+00A0 (the first character after C1) is printable and kept. */
	EXPECT_ESCAPE("\xc2\xa0", 64, "\xc2\xa0");
}

static void test_escape_truncates_with_ellipsis(void)
{
	EXPECT_ESCAPE("abcdefghijklmnop", 8, "abcd...");
	EXPECT_ESCAPE("abcdefghijklmnop", 12, "abcdefgh...");
	/* Escapes and multi-byte characters are never cut in half. */
	EXPECT_ESCAPE("ab\xe2\x82\xac\xe2\x82\xac", 8, "ab...");
	EXPECT_ESCAPE("\n\n\n", 8, "\\x0a...");
	/* 7 escaped bytes fit in cap 8 whole (see below); in cap 7 they do not. */
	EXPECT_ESCAPE("a\\\\\\", 7, "a\\\\...");
}

/* text.h: only output that does not fit ends in "...". Text that fits in cap - 1 bytes is kept whole. */
static void test_escape_exact_fit_is_not_truncated(void)
{
	EXPECT_ESCAPE("abcdefg", 8, "abcdefg");
	EXPECT_ESCAPE("abcde", 8, "abcde");
	EXPECT_ESCAPE("a\n", 8, "a\\x0a");
}

/* Whatever the input and capacity: NUL-terminated within cap, valid UTF-8, no C0 control characters. */
static void test_escape_always_safe(void)
{
	static const char mixed[] =
		"t\xc3\xa9l\xc3\xa9m\xc3\xa9trie\n\\\xff\x01 \xf0\x9f\x8c\x9e end\xe2\x82";
	const size_t len = sizeof(mixed) - 1;

	for (size_t cap = 8; cap <= 200; cap++) {
		char *got = escape(mixed, len, cap);
		const void *nul = memchr(got, '\0', cap);
		size_t out_len;
		bool controls = false;

		CU_ASSERT_PTR_NOT_NULL_FATAL(nul);
		out_len = (size_t)((const char *)nul - got);
		CU_ASSERT(out_len < cap);
		CU_ASSERT_TRUE(text_is_utf8(got, out_len));
		for (size_t i = 0; i < out_len; i++)
			controls = controls || (unsigned char)got[i] < 0x20 || got[i] == 0x7f;
		CU_ASSERT_FALSE(controls);
		/* Long enough for everything (4 bytes per input byte at worst): complete, no "...". */
		if (cap > 4 * len + 4)
			CU_ASSERT(out_len < 3 || strcmp(got + out_len - 3, "...") != 0);
		free(got);
	}
}

static void test_escape_truncated_output_ends_in_ellipsis(void)
{
	char long_text[300];

	memset(long_text, 'x', sizeof(long_text));
	for (size_t cap = 8; cap < 64; cap++) {
		char *got = escape(long_text, sizeof(long_text), cap);
		size_t out_len = strlen(got);

		CU_ASSERT(out_len < cap);
		CU_ASSERT(out_len >= 3 && strcmp(got + out_len - 3, "...") == 0);
		free(got);
	}
}

/* Bidirectional overrides, isolates and marks, and the Unicode line separators, are escaped as \uNNNN
 * (issue 12, finding 7: "gnp.exe" preceded by U+202E reads as "exe.png"). Their neighbours are kept. */
static void test_escape_bidi_and_separators(void)
{
	EXPECT_ESCAPE("a\xe2\x80\xaegnp.exe", 64, "a\\u202egnp.exe");
	EXPECT_ESCAPE("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", 64, "\\u202a\\u202b\\u202c\\u202d");
	EXPECT_ESCAPE("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", 64, "\\u2066\\u2067\\u2068\\u2069");
	EXPECT_ESCAPE("x\xe2\x80\xa8y\xe2\x80\xa9z", 64, "x\\u2028y\\u2029z");
	EXPECT_ESCAPE("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", 64, "\\u200e\\u200f\\u061c");
	/* Neighbours of the ranges stay: U+2027, U+202F, U+2065, U+206A, the euro sign. */
	EXPECT_ESCAPE("\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa\xe2\x82\xac", 64,
		      "\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa\xe2\x82\xac");
}

/* text_sanitize: as text_escape, except that a backslash stays single (it may be an escape already). */
static void test_sanitize_keeps_backslashes(void)
{
	char out[64];

	CU_ASSERT_STRING_EQUAL(text_sanitize(out, sizeof(out), "a\\x1b\x1b\xe2\x80\xae", 9),
			       "a\\x1b\\x1b\\u202e");
	CU_ASSERT_STRING_EQUAL(text_sanitize(out, sizeof(out), "plain caf\xc3\xa9", 11), "plain caf\xc3\xa9");
}

static void test_is_unsafe(void)
{
	CU_ASSERT_FALSE(text_is_unsafe("", 0));
	CU_ASSERT_FALSE(text_is_unsafe("Acme Solar GmbH", 15));
	CU_ASSERT_FALSE(text_is_unsafe("caf\xc3\xa9 \xe2\x82\xac \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
				       18)); /* Hebrew is fine */
	CU_ASSERT_FALSE(text_is_unsafe("back\\slash", 10));
	CU_ASSERT_TRUE(text_is_unsafe("\x1b[31mred", 8));
	CU_ASSERT_TRUE(text_is_unsafe("tab\there", 8));
	CU_ASSERT_TRUE(text_is_unsafe("a\xc2\x85", 3));
	CU_ASSERT_TRUE(text_is_unsafe("a\xe2\x80\xae", 4));
	CU_ASSERT_TRUE(text_is_unsafe("a\xe2\x81\xa9", 4));
	CU_ASSERT_TRUE(text_is_unsafe("a\xe2\x80\xa8", 4));
	CU_ASSERT_TRUE(text_is_unsafe("\xff", 1));
	CU_ASSERT_TRUE(text_is_unsafe("a\0b", 3));
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_utf8_table),
		UNIT_TEST(test_utf8_length_is_respected),
		UNIT_TEST(test_escape_keeps_printable_text),
		UNIT_TEST(test_escape_control_characters),
		UNIT_TEST(test_escape_backslash),
		UNIT_TEST(test_escape_invalid_bytes),
		UNIT_TEST(test_escape_c1_controls),
		UNIT_TEST(test_escape_truncates_with_ellipsis),
		UNIT_TEST(test_escape_exact_fit_is_not_truncated),
		UNIT_TEST(test_escape_always_safe),
		UNIT_TEST(test_escape_truncated_output_ends_in_ellipsis),
		UNIT_TEST(test_escape_bidi_and_separators),
		UNIT_TEST(test_sanitize_keeps_backslashes),
		UNIT_TEST(test_is_unsafe),
	};

	return unit_run("text", NULL, NULL, tests, UNIT_COUNT(tests));
}
