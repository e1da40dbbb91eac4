// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for csvread.c: the header (any column order, extra columns, BOM, CRLF, missing and repeated
 * columns), rows (RFC 3339 and epoch times in each unit, quoted fields, exact values) and every fault with
 * its own status, each line read from an exact-size heap copy so reads past its end are caught.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/csvread.h"
#include "unit.h"

#define US    INT64_C(1000000)
/* 2026-10-01T00:00:00Z */
#define T_OCT INT64_C(1790812800)

static bool header(const char *text, struct csvread_columns *cols)
{
	size_t len = strlen(text);
	char *copy = malloc(len ? len : 1), err[256];
	bool ok;

	memcpy(copy, text, len);
	ok = csvread_header(copy, len, cols, err, sizeof(err));
	free(copy);
	return ok;
}

static enum csvread_status row(const char *text, const struct csvread_columns *cols,
			       enum csvread_time_unit unit, struct csvread_row *out)
{
	size_t len = strlen(text);
	char *copy = malloc(len ? len : 1), detail[256];
	enum csvread_status st;

	memcpy(copy, text, len);
	st = csvread_row(copy, len, cols, unit, out, detail, sizeof(detail));
	free(copy);
	return st;
}

static struct csvread_columns standard(void)
{
	struct csvread_columns cols;

	CU_ASSERT_FATAL(header("time,serial,point,value", &cols));
	return cols;
}

static void test_header(void)
{
	struct csvread_columns cols;

	CU_ASSERT_TRUE(header("time,serial,point,value", &cols));
	CU_ASSERT_EQUAL(cols.time, 0);
	CU_ASSERT_EQUAL(cols.value, 3);
	CU_ASSERT_EQUAL(cols.count, 4);
	CU_ASSERT_TRUE(header("value,unit,point,serial,time\r", &cols)); /* any order, extra columns, CRLF */
	CU_ASSERT_EQUAL(cols.value, 0);
	CU_ASSERT_EQUAL(cols.point, 2);
	CU_ASSERT_EQUAL(cols.serial, 3);
	CU_ASSERT_EQUAL(cols.time, 4);
	CU_ASSERT_EQUAL(cols.count, 5);
	CU_ASSERT_TRUE(header("\xEF\xBB\xBFtime,serial,point,value", &cols)); /* a BOM */
	CU_ASSERT_EQUAL(cols.time, 0);
	CU_ASSERT_TRUE(header("\"time\",\"serial\",point,value", &cols)); /* quoted names */
	CU_ASSERT_FALSE(header("time,serial,point", &cols));
	CU_ASSERT_FALSE(header("time,serial,point,value,time", &cols));
	CU_ASSERT_FALSE(header("", &cols));
	CU_ASSERT_FALSE(header("time,serial,\"point,value", &cols));
}

static void test_rows(void)
{
	struct csvread_columns cols = standard();
	struct csvread_row r;

	CU_ASSERT_EQUAL(row("2026-10-01T00:00:00Z,INV-1,power,5420.5", &cols, CSVREAD_SECONDS, &r),
			CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, T_OCT * US);
	CU_ASSERT_STRING_EQUAL(r.serial, "INV-1");
	CU_ASSERT_STRING_EQUAL(r.point, "power");
	CU_ASSERT_EQUAL(r.value, 5420.5);
	CU_ASSERT_EQUAL(row("2026-10-01T02:00:00.25+02:00,INV-1,power,-1e3\r", &cols, CSVREAD_SECONDS, &r),
			CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, T_OCT * US + 250000);
	CU_ASSERT_EQUAL(r.value, -1000.0);
	CU_ASSERT_EQUAL(row("\"2026-10-01 00:00:00Z\",\"INV \"\"1\"\"\",\"grid.voltage\",\"230\"", &cols,
			    CSVREAD_SECONDS, &r),
			CSVREAD_OK);
	CU_ASSERT_STRING_EQUAL(r.serial, "INV \"1\"");
	CU_ASSERT_STRING_EQUAL(r.point, "grid.voltage");
}

static void test_epoch_units(void)
{
	struct csvread_columns cols = standard();
	struct csvread_row r;

	CU_ASSERT_EQUAL(row("1790812800,S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, T_OCT * US);
	CU_ASSERT_EQUAL(row("1790812800.5,S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, T_OCT * US + 500000);
	CU_ASSERT_EQUAL(row("1790812800123,S,p,1", &cols, CSVREAD_MILLISECONDS, &r), CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, T_OCT * US + 123000);
	CU_ASSERT_EQUAL(row("1790812800123456,S,p,1", &cols, CSVREAD_MICROSECONDS, &r), CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, T_OCT * US + 123456);
	CU_ASSERT_EQUAL(row("1790812800123456789,S,p,1", &cols, CSVREAD_NANOSECONDS, &r), CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, T_OCT * US + 123456);
	CU_ASSERT_EQUAL(row("-1500,S,p,1", &cols, CSVREAD_NANOSECONDS, &r), CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, -2); /* floor, not toward zero */
	CU_ASSERT_EQUAL(row("0,S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_OK);
	CU_ASSERT_EQUAL(r.time_us, 0);
	/* out of range (year 10000 and beyond), overflow, fractions where the unit has none */
	CU_ASSERT_EQUAL(row("253402300800,S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_TIME);
	CU_ASSERT_EQUAL(row("99999999999999999999,S,p,1", &cols, CSVREAD_NANOSECONDS, &r), CSVREAD_BAD_TIME);
	CU_ASSERT_EQUAL(row("1790812800.5,S,p,1", &cols, CSVREAD_NANOSECONDS, &r), CSVREAD_BAD_TIME);
	CU_ASSERT_EQUAL(row("12abc,S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_TIME);
}

static void test_faults(void)
{
	struct csvread_columns cols = standard();
	struct csvread_row r;

	CU_ASSERT_EQUAL(row("garbage,line", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED);
	CU_ASSERT_EQUAL(row("1,S,p,1,extra", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED);
	CU_ASSERT_EQUAL(row("1,\"S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED);    /* open quote */
	CU_ASSERT_EQUAL(row("1,\"S\"x,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED); /* after quote */
	CU_ASSERT_EQUAL(row("1,S\"x,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED); /* quote inside */
	CU_ASSERT_EQUAL(row("1,,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED);
	CU_ASSERT_EQUAL(row("1,S,,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED);
	CU_ASSERT_EQUAL(row("1,S,p,", &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED);
	CU_ASSERT_EQUAL(row(",S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_TIME);
	CU_ASSERT_EQUAL(row("2026-02-30T00:00:00Z,S,p,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_TIME);
	CU_ASSERT_EQUAL(row("2026-10-01T00:00:00,S,p,1", &cols, CSVREAD_SECONDS, &r),
			CSVREAD_BAD_TIME); /* no zone */
	CU_ASSERT_EQUAL(row("1,S,bad point!,1", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_POINT_NAME);
	CU_ASSERT_EQUAL(row("1,S,p,abc", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_VALUE);
	CU_ASSERT_EQUAL(row("1,S,p,0x10", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_VALUE);
	CU_ASSERT_EQUAL(row("1,S,p,1.2.3", &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_VALUE);
	CU_ASSERT_EQUAL(row("1,S,p,1e999", &cols, CSVREAD_SECONDS, &r), CSVREAD_NON_FINITE);
	CU_ASSERT_EQUAL(row("1,S,p,NaN", &cols, CSVREAD_SECONDS, &r), CSVREAD_NON_FINITE);
	CU_ASSERT_EQUAL(row("1,S,p,inf", &cols, CSVREAD_SECONDS, &r), CSVREAD_NON_FINITE);
	CU_ASSERT_EQUAL(row("1,S,p,1e-400", &cols, CSVREAD_SECONDS, &r), CSVREAD_OK); /* underflow is ~0 */
	char longserial[200];
	snprintf(longserial, sizeof(longserial), "1,%065d,p,1", 0);
	CU_ASSERT_EQUAL(row(longserial, &cols, CSVREAD_SECONDS, &r), CSVREAD_BAD_SERIAL);
	char nul[] = "1,S\0,p,1";
	char detail[64];
	CU_ASSERT_EQUAL(csvread_row(nul, sizeof(nul) - 1, &cols, CSVREAD_SECONDS, &r, detail, sizeof(detail)),
			CSVREAD_MALFORMED);
	/* a line of many short fields stops at CSVREAD_MAX_FIELDS instead of overrunning */
	char many[256] = "";
	for (int i = 0; i < 40; i++)
		strcat(many, "a,");
	CU_ASSERT_EQUAL(row(many, &cols, CSVREAD_SECONDS, &r), CSVREAD_MALFORMED);
}

static void test_point_names_and_units(void)
{
	enum csvread_time_unit unit;

	CU_ASSERT_TRUE(csvread_point_name_ok("a.b:c/d-e_F9", 12));
	CU_ASSERT_FALSE(csvread_point_name_ok("", 0));
	CU_ASSERT_FALSE(csvread_point_name_ok("a b", 3));
	char p65[66];
	memset(p65, 'a', 65);
	CU_ASSERT_TRUE(csvread_point_name_ok(p65, 64));
	CU_ASSERT_FALSE(csvread_point_name_ok(p65, 65));
	CU_ASSERT_TRUE(csvread_time_unit_parse("ns", &unit));
	CU_ASSERT_EQUAL(unit, CSVREAD_NANOSECONDS);
	CU_ASSERT_TRUE(csvread_time_unit_parse("s", &unit));
	CU_ASSERT_EQUAL(unit, CSVREAD_SECONDS);
	CU_ASSERT_FALSE(csvread_time_unit_parse("h", &unit));
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_header),
		UNIT_TEST(test_rows),
		UNIT_TEST(test_epoch_units),
		UNIT_TEST(test_faults),
		UNIT_TEST(test_point_names_and_units),
	};

	return unit_run("csvread", NULL, NULL, tests, UNIT_COUNT(tests));
}
