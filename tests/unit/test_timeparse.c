// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for timeparse.c: the strict RFC 3339 reader (accepted forms with their exact microsecond values,
 * and the impossible or ambiguous ones it must refuse), epoch seconds and their range, formatting and its
 * round trip, and days_from_civil against known dates.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/timeparse.h"
#include "unit.h"

#define US	INT64_C(1000000)
/* 2026-11-21T10:30:00Z */
#define T_2026	INT64_C(1795257000)
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define MIN_SEC INT64_C(-62135596800)
#define MAX_SEC INT64_C(253402300799)

/* Parses text from an exact-size heap copy (no terminator), so reads past the end are caught. */
static bool parse(const char *text, int64_t *out_us)
{
	size_t len = strlen(text);
	char *copy = malloc(len ? len : 1);
	bool ok;

	memcpy(copy, text, len);
	ok = timeparse_rfc3339(copy, len, out_us);
	free(copy);
	return ok;
}

static void expect_time(const char *text, int64_t want_us)
{
	int64_t got = INT64_MIN;
	bool ok = parse(text, &got);

	if (!ok || got != want_us)
		fprintf(stderr, "\n  \"%s\": ok %d, got %lld, want %lld\n", text, ok, (long long)got,
			(long long)want_us);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(got, want_us);
}

static void expect_invalid(const char *text)
{
	int64_t got = 0;
	bool ok = parse(text, &got);

	if (ok)
		fprintf(stderr, "\n  \"%s\" accepted as %lld\n", text, (long long)got);
	CU_ASSERT_FALSE(ok);
}

static void test_zulu_forms(void)
{
	expect_time("2026-11-21T10:30:00Z", T_2026 * US);
	expect_time("2026-11-21t10:30:00z", T_2026 * US);
	expect_time("1970-01-01T00:00:00Z", 0);
	expect_time("2000-01-01T00:00:00Z", INT64_C(946684800) * US);
}

/* RFC 3339 section 5.6 allows a space instead of "T"; timeparse.h says it is accepted. */
static void test_space_separator(void)
{
	expect_time("2026-11-21 10:30:00Z", T_2026 * US);
	expect_time("2026-11-21 11:30:00+01:00", T_2026 * US);
}

static void test_offsets(void)
{
	expect_time("2026-11-21T11:30:00+01:00", T_2026 * US);
	expect_time("2026-11-21T05:00:00-05:30", T_2026 * US);
	expect_time("2026-11-21T10:30:00+00:00", T_2026 * US);
	expect_time("2026-11-21T10:30:00-00:00", T_2026 * US);
	expect_time("2026-11-22T10:29:00+23:59", T_2026 * US);
	/* An offset that crosses a day and a year. */
	expect_time("2027-01-01T00:30:00+01:00", INT64_C(1798759800) * US);
}

static void test_fractions(void)
{
	expect_time("2026-11-21T10:30:00.1Z", T_2026 * US + 100000);
	expect_time("2026-11-21T10:30:00.12Z", T_2026 * US + 120000);
	expect_time("2026-11-21T10:30:00.123Z", T_2026 * US + 123000);
	expect_time("2026-11-21T10:30:00.1234Z", T_2026 * US + 123400);
	expect_time("2026-11-21T10:30:00.12345Z", T_2026 * US + 123450);
	expect_time("2026-11-21T10:30:00.123456Z", T_2026 * US + 123456);
	/* Beyond microseconds: truncated, not rounded. */
	expect_time("2026-11-21T10:30:00.1234567Z", T_2026 * US + 123456);
	expect_time("2026-11-21T10:30:00.12345678Z", T_2026 * US + 123456);
	expect_time("2026-11-21T10:30:00.999999999Z", T_2026 * US + 999999);
	expect_time("2026-11-21T10:30:00.000001Z", T_2026 * US + 1);
	expect_time("2026-11-21T11:30:00.5+01:00", T_2026 * US + 500000);
	/* Before the epoch the fraction still counts forward from the second. */
	expect_time("1969-12-31T23:59:59.5Z", -500000);
}

static void test_leap_day_and_leap_second(void)
{
	expect_time("2024-02-29T00:00:00Z", INT64_C(1709164800) * US);
	expect_time("2000-02-29T12:00:00Z", INT64_C(951825600) * US);
	/* A second :60 is refused in any minute (bad_timestamp): folded onto :59 it took that second's genuine
	 * reading's place (issue 15). */
	expect_invalid("2016-12-31T23:59:60Z");
	expect_invalid("2016-12-31T23:59:60.5Z");
	expect_invalid("2026-11-21T10:30:60Z");
}

static void test_range_limits(void)
{
	expect_time("0001-01-01T00:00:00Z", MIN_SEC * US);
	expect_time("9999-12-31T23:59:59.999999Z", MAX_SEC * US + 999999);
	expect_invalid("0000-12-31T23:59:59Z");
	/* In range by its digits, out of range once the offset is applied. */
	expect_invalid("0001-01-01T00:30:00+01:00");
	expect_invalid("9999-12-31T23:59:59-01:00");
}

static void test_impossible_dates(void)
{
	expect_invalid("2023-02-29T00:00:00Z");
	expect_invalid("1900-02-29T00:00:00Z");
	expect_invalid("2026-02-30T00:00:00Z");
	expect_invalid("2026-04-31T00:00:00Z");
	expect_invalid("2026-13-01T00:00:00Z");
	expect_invalid("2026-00-10T00:00:00Z");
	expect_invalid("2026-01-00T00:00:00Z");
	expect_invalid("2026-01-32T00:00:00Z");
	expect_invalid("2026-11-21T24:00:00Z");
	expect_invalid("2026-11-21T10:60:00Z");
	expect_invalid("2026-11-21T10:30:61Z");
	expect_invalid("2026-11-21T10:30:00+24:00");
	expect_invalid("2026-11-21T10:30:00+01:60");
}

static void test_missing_zone_and_trailing_text(void)
{
	expect_invalid("2026-11-21T10:30:00");
	expect_invalid("2026-11-21T10:30:00.123");
	expect_invalid("2026-11-21T10:30:00Z ");
	expect_invalid("2026-11-21T10:30:00ZZ");
	expect_invalid("2026-11-21T10:30:00Zjunk");
	expect_invalid("2026-11-21T10:30:00+01:00Z");
	expect_invalid(" 2026-11-21T10:30:00Z");
	expect_invalid("2026-11-21T10:30:00 Z");
	expect_invalid("2026-11-21T10:30:00UTC");
}

static void test_short_and_malformed_fields(void)
{
	expect_invalid("");
	expect_invalid("2026");
	expect_invalid("2026-11-21");
	expect_invalid("2026-11-21T");
	expect_invalid("2026-1-21T10:30:00Z");
	expect_invalid("26-11-21T10:30:00Z");
	expect_invalid("2026-11-21T10:30Z");
	expect_invalid("2026-11-21T1:30:00Z");
	expect_invalid("2026-11-21T10:30:0Z");
	expect_invalid("2026-11-21T10:30:00.Z");
	expect_invalid("2026-11-21T10:30:00+0100");
	expect_invalid("2026-11-21T10:30:00+01");
	expect_invalid("2026-11-21T10:30:00+1:00");
	expect_invalid("2026/11/21T10:30:00Z");
	expect_invalid("2026-11-21X10:30:00Z");
	expect_invalid("2026-11-21T10.30.00Z");
	expect_invalid("+2026-11-21T10:30:00Z");
	expect_invalid("20261121T103000Z");
	expect_invalid("2026-11-21T10:30:00,5Z");
}

static void test_length_is_respected(void)
{
	static const char text[] = "2026-11-21T10:30:00Zjunk";
	int64_t got = 0;

	CU_ASSERT_TRUE(timeparse_rfc3339(text, 20, &got));
	CU_ASSERT_EQUAL(got, T_2026 * US);
	CU_ASSERT_FALSE(timeparse_rfc3339(text, 19, &got)); /* the zone is cut off */
	CU_ASSERT_FALSE(timeparse_rfc3339(text, 0, &got));
}

static void test_epoch_seconds(void)
{
	int64_t got = -1;

	CU_ASSERT_TRUE(timeparse_epoch_seconds(0.0, &got));
	CU_ASSERT_EQUAL(got, 0);
	CU_ASSERT_TRUE(timeparse_epoch_seconds(1.5, &got));
	CU_ASSERT_EQUAL(got, 1500000);
	CU_ASSERT_TRUE(timeparse_epoch_seconds(-1.5, &got));
	CU_ASSERT_EQUAL(got, -1500000);
	CU_ASSERT_TRUE(timeparse_epoch_seconds(1795257000.0, &got));
	CU_ASSERT_EQUAL(got, T_2026 * US);
	CU_ASSERT_TRUE(timeparse_epoch_seconds(1795257000.25, &got));
	CU_ASSERT_EQUAL(got, T_2026 * US + 250000);
	/* Microsecond fractions that have no exact binary form still land on the nearest microsecond. */
	CU_ASSERT_TRUE(timeparse_epoch_seconds(1700000000.123456, &got));
	CU_ASSERT_EQUAL(got, INT64_C(1700000000123456));
	CU_ASSERT_TRUE(timeparse_epoch_seconds(0.000001, &got));
	CU_ASSERT_EQUAL(got, 1);
}

static void test_epoch_range(void)
{
	int64_t got = 42;

	CU_ASSERT_TRUE(timeparse_epoch_seconds((double)MAX_SEC, &got));
	CU_ASSERT_EQUAL(got, MAX_SEC * US);
	CU_ASSERT_TRUE(timeparse_epoch_seconds((double)MIN_SEC, &got));
	CU_ASSERT_EQUAL(got, MIN_SEC * US);
	got = 42;
	CU_ASSERT_FALSE(timeparse_epoch_seconds((double)(MAX_SEC + 1), &got));
	CU_ASSERT_FALSE(timeparse_epoch_seconds((double)(MIN_SEC - 1), &got));
	CU_ASSERT_FALSE(timeparse_epoch_seconds(1e300, &got));
	CU_ASSERT_FALSE(timeparse_epoch_seconds(-1e300, &got));
	CU_ASSERT_FALSE(timeparse_epoch_seconds(NAN, &got));
	CU_ASSERT_FALSE(timeparse_epoch_seconds(INFINITY, &got));
	CU_ASSERT_FALSE(timeparse_epoch_seconds(-INFINITY, &got));
	CU_ASSERT_EQUAL(got, 42); /* untouched on failure */
}

static void expect_format(int64_t us, const char *want)
{
	char buf[40];

	memset(buf, 'x', sizeof(buf));
	timeparse_format(us, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fprintf(stderr, "\n  format(%lld) = \"%s\", want \"%s\"\n", (long long)us, buf, want);
	CU_ASSERT_STRING_EQUAL(buf, want);
}

static void test_format(void)
{
	expect_format(0, "1970-01-01T00:00:00.000000Z");
	expect_format(T_2026 * US + 123456, "2026-11-21T10:30:00.123456Z");
	expect_format(-1, "1969-12-31T23:59:59.999999Z");
	expect_format(-US, "1969-12-31T23:59:59.000000Z");
	expect_format(-86400 * US, "1969-12-31T00:00:00.000000Z");
	expect_format(INT64_C(1709164800) * US, "2024-02-29T00:00:00.000000Z");
	expect_format(MIN_SEC * US, "0001-01-01T00:00:00.000000Z");
	expect_format(MAX_SEC * US + 999999, "9999-12-31T23:59:59.999999Z");
}

static void test_format_exact_cap(void)
{
	char buf[32];

	timeparse_format(T_2026 * US, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2026-11-21T10:30:00.000000Z");
}

static void test_format_round_trip(void)
{
	static const int64_t values[] = {
		0,
		1,
		-1,
		T_2026 * US + 123456,
		INT64_C(951782400) * US,  /* 2000-02-29 */
		INT64_C(4107542400) * US, /* 2100-03-01 */
		INT64_C(-2208988800) * US + 7,
		MIN_SEC * US,
		MAX_SEC * US + 999999,
	};
	char buf[40];
	int64_t back;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		timeparse_format(values[i], buf, sizeof(buf));
		back = values[i] + 1;
		CU_ASSERT_TRUE(parse(buf, &back));
		if (back != values[i])
			fprintf(stderr, "\n  %lld -> %s -> %lld\n", (long long)values[i], buf,
				(long long)back);
		CU_ASSERT_EQUAL(back, values[i]);
	}
	/* And a stride through the whole range, landing on many days of many years. */
	for (int64_t sec = MIN_SEC; sec <= MAX_SEC; sec += INT64_C(8640000) * 7 + 12345) {
		int64_t us = sec * US + (sec & 0xfffff);

		timeparse_format(us, buf, sizeof(buf));
		back = us + 1;
		if (!parse(buf, &back) || back != us) {
			fprintf(stderr, "\n  %lld -> %s -> %lld\n", (long long)us, buf, (long long)back);
			CU_FAIL("round trip");
			break;
		}
	}
}

static void test_days_from_civil(void)
{
	CU_ASSERT_EQUAL(timeparse_days_from_civil(1970, 1, 1), 0);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(1969, 12, 31), -1);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(2000, 1, 1), 10957);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(2000, 3, 1), 11017);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(2024, 2, 29), 19782);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(2026, 11, 21), 20778);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(1600, 2, 29), -135081);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(1, 1, 1), -719162);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(9999, 12, 31), 2932896);
	/* Consecutive days across month and leap-year ends. */
	CU_ASSERT_EQUAL(timeparse_days_from_civil(2024, 3, 1) - timeparse_days_from_civil(2024, 2, 28), 2);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(2023, 3, 1) - timeparse_days_from_civil(2023, 2, 28), 1);
	CU_ASSERT_EQUAL(timeparse_days_from_civil(2027, 1, 1) - timeparse_days_from_civil(2026, 12, 31), 1);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_zulu_forms),
		UNIT_TEST(test_space_separator),
		UNIT_TEST(test_offsets),
		UNIT_TEST(test_fractions),
		UNIT_TEST(test_leap_day_and_leap_second),
		UNIT_TEST(test_range_limits),
		UNIT_TEST(test_impossible_dates),
		UNIT_TEST(test_missing_zone_and_trailing_text),
		UNIT_TEST(test_short_and_malformed_fields),
		UNIT_TEST(test_length_is_respected),
		UNIT_TEST(test_epoch_seconds),
		UNIT_TEST(test_epoch_range),
		UNIT_TEST(test_format),
		UNIT_TEST(test_format_exact_cap),
		UNIT_TEST(test_format_round_trip),
		UNIT_TEST(test_days_from_civil),
	};

	return unit_run("timeparse", NULL, NULL, tests, UNIT_COUNT(tests));
}
