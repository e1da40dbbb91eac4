// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for lineproto.c: the line protocol grammar (every field type, every escape of the InfluxDB 2.x
 * reference, comments, blank lines, CRLF), errors with their line and column, input that is not
 * NUL-terminated, and the mapping of lines to samples (serial tag, point templates, string policy, precision
 * and its overflow).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/lineproto.h"
#include "unit.h"

static bool span_is(struct lp_span s, const char *text)
{
	bool ok = s.len == strlen(text) && (s.len == 0 || memcmp(s.ptr, text, s.len) == 0);
	if (!ok)
		fprintf(stderr, "\n  got \"%.*s\", want \"%s\"\n", (int)s.len, s.ptr ? s.ptr : "", text);
	return ok;
}

/* A heap copy of text without its NUL, so ASan catches any read past the end. */
static char *exact_copy(const char *text, size_t *len)
{
	char *p;

	*len = strlen(text);
	p = malloc(*len ? *len : 1);
	memcpy(p, text, *len);
	return p;
}

/* Parses text that must hold exactly one line; returns its lp_next result. */
static int parse_one(const char *text, struct lp_scratch *s, struct lp_line *line, struct lp_error *err,
		     char **keep)
{
	size_t len, pos = 0, line_no = 0;
	char *buf = exact_copy(text, &len);
	int rc = lp_next(buf, len, &pos, &line_no, s, line, err);

	*keep = buf; /* the line borrows it */
	return rc;
}

static void test_old_collector_line(void)
{
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	char *buf;

	CU_ASSERT_EQUAL_FATAL(
		parse_one("grid,serial=ABC123 total_output_power=5420 1697551200000000000", &s, &l, &e, &buf),
		1);
	CU_ASSERT(span_is(l.measurement, "grid"));
	CU_ASSERT_EQUAL_FATAL(l.tag_count, 1);
	CU_ASSERT(span_is(l.tags[0].key, "serial"));
	CU_ASSERT(span_is(l.tags[0].value, "ABC123"));
	CU_ASSERT_EQUAL_FATAL(l.field_count, 1);
	CU_ASSERT(span_is(l.fields[0].key, "total_output_power"));
	CU_ASSERT_EQUAL(l.fields[0].type, LP_FIELD_FLOAT);
	CU_ASSERT_DOUBLE_EQUAL(l.fields[0].value, 5420, 0);
	CU_ASSERT_TRUE(l.has_time);
	CU_ASSERT_EQUAL(l.time, INT64_C(1697551200000000000));
	free(buf);
	lp_scratch_free(&s);
}

static void test_field_types(void)
{
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	char *buf;

	CU_ASSERT_EQUAL_FATAL(
		parse_one("m a=1.5,b=-3i,c=18446744073709551615u,d=t,e=FALSE,f=\"on\",g=-1.5e3,h=.5,"
			  "i=9223372036854775807i,j=-9223372036854775808i,k=1",
			  &s, &l, &e, &buf),
		1);
	CU_ASSERT_EQUAL_FATAL(l.field_count, 11);
	CU_ASSERT_FALSE(l.has_time);
	CU_ASSERT_EQUAL(l.fields[0].type, LP_FIELD_FLOAT);
	CU_ASSERT_DOUBLE_EQUAL(l.fields[0].value, 1.5, 0);
	CU_ASSERT_EQUAL(l.fields[1].type, LP_FIELD_INT);
	CU_ASSERT_EQUAL(l.fields[1].i, -3);
	CU_ASSERT_EQUAL(l.fields[2].type, LP_FIELD_UINT);
	CU_ASSERT_EQUAL(l.fields[2].u, UINT64_MAX);
	CU_ASSERT_EQUAL(l.fields[3].type, LP_FIELD_BOOL);
	CU_ASSERT_DOUBLE_EQUAL(l.fields[3].value, 1, 0);
	CU_ASSERT_EQUAL(l.fields[4].type, LP_FIELD_BOOL);
	CU_ASSERT_DOUBLE_EQUAL(l.fields[4].value, 0, 0);
	CU_ASSERT_EQUAL(l.fields[5].type, LP_FIELD_STRING);
	CU_ASSERT(span_is(l.fields[5].str, "on"));
	CU_ASSERT_DOUBLE_EQUAL(l.fields[6].value, -1500, 0);
	CU_ASSERT_DOUBLE_EQUAL(l.fields[7].value, 0.5, 0);
	CU_ASSERT_EQUAL(l.fields[8].i, INT64_MAX);
	CU_ASSERT_EQUAL(l.fields[9].i, INT64_MIN);
	CU_ASSERT_DOUBLE_EQUAL(l.fields[10].value, 1, 0);
	free(buf);
	lp_scratch_free(&s);
}

/* The escapes of the InfluxDB 2.x line protocol reference, one per context. */
static void test_escapes(void)
{
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	char *buf;

	CU_ASSERT_EQUAL_FATAL(parse_one("my\\ meas\\,ure=x,tag\\ key\\,\\==tag\\ val\\,\\= "
					"field\\ k\\,\\==\"say \\\"hi\\\" \\\\ \\n\",f2=1i 1",
					&s, &l, &e, &buf),
			      1);
	CU_ASSERT(span_is(l.measurement, "my meas,ure=x"));
	CU_ASSERT_EQUAL_FATAL(l.tag_count, 1);
	CU_ASSERT(span_is(l.tags[0].key, "tag key,="));
	CU_ASSERT(span_is(l.tags[0].value, "tag val,="));
	CU_ASSERT_EQUAL_FATAL(l.field_count, 2);
	CU_ASSERT(span_is(l.fields[0].key, "field k,="));
	/* \" and \\ are escapes in a string; \n is not, and stays as the two bytes. */
	CU_ASSERT(span_is(l.fields[0].str, "say \"hi\" \\ \\n"));
	CU_ASSERT(span_is(l.fields[1].key, "f2"));
	CU_ASSERT_EQUAL(l.time, 1);
	free(buf);
	lp_scratch_free(&s);
}

static void test_backslash_kept_before_other_bytes(void)
{
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	char *buf;

	CU_ASSERT_EQUAL_FATAL(parse_one("C:\\path,t=a\\b f=1", &s, &l, &e, &buf), 1);
	CU_ASSERT(span_is(l.measurement, "C:\\path"));
	CU_ASSERT(span_is(l.tags[0].value, "a\\b"));
	free(buf);
	lp_scratch_free(&s);
}

static void test_comments_blank_crlf_and_count(void)
{
	const char *text = "# a comment\r\n\r\n   \n"
			   "grid,serial=A p=1 10\r\n"
			   "  # indented comment\n"
			   "grid,serial=B p=2 20   \r\n"
			   "grid,serial=C p=3"; /* no final newline */
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	size_t len, pos = 0, line_no = 0;
	char *buf = exact_copy(text, &len);

	CU_ASSERT_EQUAL_FATAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), 1);
	CU_ASSERT(span_is(l.tags[0].value, "A"));
	CU_ASSERT_EQUAL(l.line_no, 4);
	CU_ASSERT_EQUAL(l.time, 10);
	CU_ASSERT_EQUAL_FATAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), 1);
	CU_ASSERT(span_is(l.tags[0].value, "B"));
	CU_ASSERT_EQUAL(l.line_no, 6);
	CU_ASSERT_EQUAL(l.time, 20);
	CU_ASSERT_EQUAL_FATAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), 1);
	CU_ASSERT(span_is(l.tags[0].value, "C"));
	CU_ASSERT_FALSE(l.has_time);
	CU_ASSERT_EQUAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), 0);
	free(buf);
	lp_scratch_free(&s);
}

/* Each bad line is refused with its column (1-based, in the line). */
static void assert_syntax_error(const char *text, size_t column, const char *fragment)
{
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e = { 0 };
	char *buf;
	int rc = parse_one(text, &s, &l, &e, &buf);

	if (rc != -1 || e.column != column || !strstr(e.message, fragment))
		fprintf(stderr, "\n  \"%s\": rc %d, column %zu (want %zu), \"%s\" (want \"%s\")\n", text, rc,
			e.column, column, e.message, fragment);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_EQUAL(e.kind, LP_ERR_SYNTAX);
	CU_ASSERT_EQUAL(e.line, 1);
	CU_ASSERT_EQUAL(e.column, column);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.message, fragment));
	free(buf);
	lp_scratch_free(&s);
}

static void test_syntax_errors(void)
{
	assert_syntax_error("grid", 5, "no fields");
	assert_syntax_error("grid ", 6, "no fields");
	assert_syntax_error(",t=1 f=1", 1, "empty measurement");
	assert_syntax_error("m,=v f=1", 3, "empty tag key");
	assert_syntax_error("m,t= f=1", 5, "empty tag value");
	assert_syntax_error("m,t f=1", 4, "tag key without '='");
	assert_syntax_error("m,t=1,t=2 f=1", 7, "duplicate tag key");
	assert_syntax_error("m f", 4, "field key without '='");
	assert_syntax_error("m f=", 5, "missing field value");
	assert_syntax_error("m =1", 3, "empty field key");
	assert_syntax_error("m f=1,f=2", 7, "duplicate field key");
	assert_syntax_error("m f=1,", 7, "empty field key");
	assert_syntax_error("m f=abc", 5, "not a number");
	assert_syntax_error("m f=NaN", 5, "not a number");
	assert_syntax_error("m f=inf", 5, "not a number");
	assert_syntax_error("m f=1e999", 5, "beyond the range");
	assert_syntax_error("m f=9223372036854775808i", 5, "integer");
	assert_syntax_error("m f=-1u", 5, "unsigned");
	assert_syntax_error("m f=18446744073709551616u", 5, "unsigned");
	assert_syntax_error("m f=\"open", 5, "unterminated string");
	assert_syntax_error("m f=1 12x", 7, "timestamp");
	assert_syntax_error("m f=1 9223372036854775808", 7, "timestamp");
	assert_syntax_error("m f=1 1 2", 9, "after the timestamp");
	assert_syntax_error("m f=1\t1", 5, "not a number");
}

static void test_error_on_second_line_and_continue(void)
{
	const char *text = "m f=1\nm f=oops\nm f=3";
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	size_t len, pos = 0, line_no = 0;
	char *buf = exact_copy(text, &len);

	CU_ASSERT_EQUAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), 1);
	CU_ASSERT_EQUAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), -1);
	CU_ASSERT_EQUAL(e.line, 2);
	CU_ASSERT_EQUAL(e.column, 5);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "line 2, column 5"));
	CU_ASSERT_EQUAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), 1);
	CU_ASSERT_DOUBLE_EQUAL(l.fields[0].value, 3, 0);
	CU_ASSERT_EQUAL(lp_next(buf, len, &pos, &line_no, &s, &l, &e), 0);
	free(buf);
	lp_scratch_free(&s);
}

static void test_nul_byte_is_an_error(void)
{
	static const char text[] = { 'm', ' ', 'f', '=', '1', '\0', '2' };
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	size_t pos = 0, line_no = 0;

	CU_ASSERT_EQUAL(lp_next(text, sizeof(text), &pos, &line_no, &s, &l, &e), -1);
	lp_scratch_free(&s);
}

static void test_only_comments_yield_nothing(void)
{
	struct lp_scratch s = { 0 };
	struct lp_line l;
	struct lp_error e;
	size_t pos = 0, line_no = 0;

	CU_ASSERT_EQUAL(lp_next("# x\n\n", 5, &pos, &line_no, &s, &l, &e), 0);
	pos = 0;
	CU_ASSERT_EQUAL(lp_next("", 0, &pos, &line_no, &s, &l, &e), 0);
	lp_scratch_free(&s);
	lp_scratch_free(NULL);
}

/* --- mapping --------------------------------------------------------------------------------------------- */

static void test_mapping_set(void)
{
	struct lp_mapping m;
	char err[160];

	lp_mapping_init(&m);
	CU_ASSERT_STRING_EQUAL(m.point, "{field}");
	CU_ASSERT_EQUAL(m.precision, LP_PRECISION_NS);
	CU_ASSERT_EQUAL(m.strings, LP_STRINGS_REJECT);
	CU_ASSERT_STRING_EQUAL(m.serial_tag, "");
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "precision", "ms", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(m.precision, LP_PRECISION_MS);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "precision", "h", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "precision"));
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "serial_tag", "serial", err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(m.serial_tag, "serial");
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "strings", "ignore", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(m.strings, LP_STRINGS_IGNORE);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "strings", "keep", err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "{measurement}.{field}", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "{tag:channel}/{field}", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "{fields}", err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown placeholder"));
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "{tag:}", err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "a b", err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "{field", err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "", err, sizeof(err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(m.point, "{tag:channel}/{field}");
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "colour", "red", err, sizeof(err)), -ENOENT);
}

static void test_time_to_us(void)
{
	int64_t us = 0;

	CU_ASSERT_TRUE(lp_time_to_us(INT64_C(1697551200000000000), LP_PRECISION_NS, &us));
	CU_ASSERT_EQUAL(us, INT64_C(1697551200000000));
	CU_ASSERT_TRUE(lp_time_to_us(INT64_C(1697551200123456789), LP_PRECISION_NS, &us));
	CU_ASSERT_EQUAL(us, INT64_C(1697551200123456));
	CU_ASSERT_TRUE(lp_time_to_us(-1, LP_PRECISION_NS, &us));
	CU_ASSERT_EQUAL(us, -1); /* floor, not toward zero */
	CU_ASSERT_TRUE(lp_time_to_us(INT64_C(1697551200123456), LP_PRECISION_US, &us));
	CU_ASSERT_EQUAL(us, INT64_C(1697551200123456));
	CU_ASSERT_TRUE(lp_time_to_us(INT64_C(1697551200123), LP_PRECISION_MS, &us));
	CU_ASSERT_EQUAL(us, INT64_C(1697551200123000));
	CU_ASSERT_TRUE(lp_time_to_us(INT64_C(1697551200), LP_PRECISION_S, &us));
	CU_ASSERT_EQUAL(us, INT64_C(1697551200000000));
	/* Overflow and beyond year 9999 are refused, never wrapped. */
	CU_ASSERT_FALSE(lp_time_to_us(INT64_MAX, LP_PRECISION_S, &us));
	CU_ASSERT_FALSE(lp_time_to_us(INT64_MIN, LP_PRECISION_S, &us));
	CU_ASSERT_FALSE(lp_time_to_us(INT64_MAX, LP_PRECISION_MS, &us));
	CU_ASSERT_FALSE(lp_time_to_us(INT64_C(253402300800), LP_PRECISION_S, &us));
	CU_ASSERT_TRUE(lp_time_to_us(INT64_C(253402300799), LP_PRECISION_S, &us));
	CU_ASSERT_FALSE(lp_time_to_us(INT64_MAX, LP_PRECISION_US, &us));
	/* ns fits in int64 only up to 2262: always inside the range. */
	CU_ASSERT_TRUE(lp_time_to_us(INT64_MAX, LP_PRECISION_NS, &us));
	CU_ASSERT_TRUE(lp_time_to_us(INT64_MIN, LP_PRECISION_NS, &us));
}

static void test_map_line(void)
{
	struct lp_scratch s = { 0 };
	struct lp_mapping m;
	struct lp_line l;
	struct lp_error e;
	struct lp_span serial;
	char point[LP_MAX_POINT_NAME + 1], err[160], *buf;
	double value;
	int64_t t;

	lp_mapping_init(&m);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "serial_tag", "serial", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(
		parse_one("grid,serial=ABC123,channel=1 total_output_power=5420,on=true,fw=\"1.2\" "
			  "1697551200000000000",
			  &s, &l, &e, &buf),
		1);
	CU_ASSERT_EQUAL(lp_map_serial(&l, &m, &serial, &e), 0);
	CU_ASSERT(span_is(serial, "ABC123"));
	CU_ASSERT_EQUAL(lp_map_time(&l, &m, 7, &t, &e), 0);
	CU_ASSERT_EQUAL(t, INT64_C(1697551200000000));
	CU_ASSERT_EQUAL(lp_map_field(&l, 0, &m, point, &value, &e), 1);
	CU_ASSERT_STRING_EQUAL(point, "total_output_power");
	CU_ASSERT_DOUBLE_EQUAL(value, 5420, 0);
	CU_ASSERT_EQUAL(lp_map_field(&l, 1, &m, point, &value, &e), 1);
	CU_ASSERT_DOUBLE_EQUAL(value, 1, 0);
	CU_ASSERT_EQUAL(lp_map_field(&l, 2, &m, point, &value, &e), -1);
	CU_ASSERT_EQUAL(e.kind, LP_ERR_STRING);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "strings", "ignore", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_map_field(&l, 2, &m, point, &value, &e), 0);

	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "{measurement}.{tag:channel}/{field}", err, sizeof(err)),
			0);
	CU_ASSERT_EQUAL(lp_map_field(&l, 0, &m, point, &value, &e), 1);
	CU_ASSERT_STRING_EQUAL(point, "grid.1/total_output_power");
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "point", "{tag:phase}/{field}", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_map_field(&l, 0, &m, point, &value, &e), -1);
	CU_ASSERT_EQUAL(e.kind, LP_ERR_POINT);

	CU_ASSERT_EQUAL(lp_mapping_set(&m, "serial_tag", "device", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_map_serial(&l, &m, &serial, &e), -1);
	CU_ASSERT_EQUAL(e.kind, LP_ERR_SERIAL);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "serial_tag", "", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_map_serial(&l, &m, &serial, &e), 0);
	CU_ASSERT_EQUAL(serial.len, 0);

	CU_ASSERT_EQUAL(lp_mapping_set(&m, "precision", "s", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_map_time(&l, &m, 7, &t, &e), -1);
	CU_ASSERT_EQUAL(e.kind, LP_ERR_TIME);
	free(buf);
	lp_scratch_free(&s);
}

static void test_map_point_name_checks(void)
{
	struct lp_scratch s = { 0 };
	struct lp_mapping m;
	struct lp_line l;
	struct lp_error e;
	char point[LP_MAX_POINT_NAME + 1], *buf;
	double value;
	int64_t t;

	lp_mapping_init(&m);
	CU_ASSERT_EQUAL_FATAL(parse_one("m bad\\ name=1,"
					"x1234567890123456789012345678901234567890123456789012345678901234=2,"
					"x123456789012345678901234567890123456789012345678901234567890123=3",
					&s, &l, &e, &buf),
			      1);
	CU_ASSERT_EQUAL(lp_map_field(&l, 0, &m, point, &value, &e), -1);
	CU_ASSERT_EQUAL(e.kind, LP_ERR_POINT);
	CU_ASSERT_EQUAL(lp_map_field(&l, 1, &m, point, &value, &e), -1);
	CU_ASSERT_EQUAL(lp_map_field(&l, 2, &m, point, &value, &e), 1);
	CU_ASSERT_EQUAL(strlen(point), 64);
	CU_ASSERT_EQUAL(lp_map_time(&l, &m, 42, &t, &e), 0);
	CU_ASSERT_EQUAL(t, 42); /* no timestamp: the receive time */
	free(buf);
	lp_scratch_free(&s);
}

/* The device tag must name a device: an empty value (Telegraf JSON "tags":{"host":""}) is refused. */
static void test_map_serial_refuses_empty(void)
{
	struct lp_tag tags[] = { { { "host", 4 }, { "", 0 } } };
	struct lp_line l = { .line_no = 3, .tags = tags, .tag_count = 1 };
	struct lp_mapping m;
	struct lp_error e;
	struct lp_span serial;
	char err[160];

	lp_mapping_init(&m);
	CU_ASSERT_EQUAL(lp_mapping_set(&m, "serial_tag", "host", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(lp_map_serial(&l, &m, &serial, &e), -1);
	CU_ASSERT_EQUAL(e.kind, LP_ERR_SERIAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "line 3: tag 'host' naming the device is empty"));
	tags[0].value = (struct lp_span){ "h1", 2 };
	CU_ASSERT_EQUAL(lp_map_serial(&l, &m, &serial, &e), 0);
	CU_ASSERT_EQUAL(serial.len, 2);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_old_collector_line),
		UNIT_TEST(test_field_types),
		UNIT_TEST(test_escapes),
		UNIT_TEST(test_backslash_kept_before_other_bytes),
		UNIT_TEST(test_comments_blank_crlf_and_count),
		UNIT_TEST(test_syntax_errors),
		UNIT_TEST(test_error_on_second_line_and_continue),
		UNIT_TEST(test_nul_byte_is_an_error),
		UNIT_TEST(test_only_comments_yield_nothing),
		UNIT_TEST(test_mapping_set),
		UNIT_TEST(test_time_to_us),
		UNIT_TEST(test_map_line),
		UNIT_TEST(test_map_point_name_checks),
		UNIT_TEST(test_map_serial_refuses_empty),
	};

	return unit_run("lineproto", NULL, NULL, tests, UNIT_COUNT(tests));
}
