// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for route.c: parsing topic templates (and every way a template is refused), the derived MQTT
 * subscription filter, and matching received topics, including the exact tenant/serial slices and topics
 * that are not NUL-terminated (Paho hands us a pointer and a length).
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "unit.h"

/* True when the slice holds exactly the bytes of text. */
static bool slice_is(struct topic_slice s, const char *text)
{
	return s.ptr && s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

/* Parses a template that must be refused; checks that err names the problem and out is untouched. */
static void assert_refused(const char *template_text, const char *err_fragment)
{
	struct route r = { 0 };
	char err[256] = "";

	CU_ASSERT_FALSE(route_parse(template_text, ROUTE_FORMAT_JSON, &r, err, sizeof(err)));
	if (!strstr(err, err_fragment))
		fprintf(stderr, "\n  template \"%s\": error \"%s\" lacks \"%s\"\n", template_text, err,
			err_fragment);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, err_fragment));
	CU_ASSERT_PTR_NULL(r.levels);
	CU_ASSERT_PTR_NULL(r.filter);
	CU_ASSERT_PTR_NULL(r.template_text);
	CU_ASSERT_EQUAL(r.level_count, 0);
	route_clear(&r);
}

static void test_parse_standard_template(void)
{
	struct route r = { 0 };
	char err[256] = "";

	CU_ASSERT_TRUE_FATAL(
		route_parse("solar/{tenant}/{serial}/telemetry", ROUTE_FORMAT_JSON, &r, err, sizeof(err)));
	ASSERT_STR(r.template_text, "solar/{tenant}/{serial}/telemetry");
	ASSERT_STR(r.filter, "solar/+/+/telemetry");
	CU_ASSERT_EQUAL(r.format, ROUTE_FORMAT_JSON);
	CU_ASSERT_EQUAL_FATAL(r.level_count, 4);
	CU_ASSERT_EQUAL(r.levels[0].kind, ROUTE_LEVEL_LITERAL);
	ASSERT_STR(r.levels[0].literal, "solar");
	CU_ASSERT_EQUAL(r.levels[1].kind, ROUTE_LEVEL_TENANT);
	CU_ASSERT_PTR_NULL(r.levels[1].literal);
	CU_ASSERT_EQUAL(r.levels[2].kind, ROUTE_LEVEL_SERIAL);
	CU_ASSERT_PTR_NULL(r.levels[2].literal);
	CU_ASSERT_EQUAL(r.levels[3].kind, ROUTE_LEVEL_LITERAL);
	ASSERT_STR(r.levels[3].literal, "telemetry");
	route_clear(&r);
	CU_ASSERT_PTR_NULL(r.levels);
	CU_ASSERT_EQUAL(r.level_count, 0);
}

static void test_parse_any_level_and_order(void)
{
	struct route r = { 0 };
	char err[256] = "";

	/* Placeholders may come in any order, and "+" stays "+" in the filter. */
	CU_ASSERT_TRUE_FATAL(
		route_parse("site/+/{serial}/x/{tenant}", ROUTE_FORMAT_JSON, &r, err, sizeof(err)));
	ASSERT_STR(r.filter, "site/+/+/x/+");
	CU_ASSERT_EQUAL_FATAL(r.level_count, 5);
	CU_ASSERT_EQUAL(r.levels[1].kind, ROUTE_LEVEL_ANY);
	CU_ASSERT_EQUAL(r.levels[2].kind, ROUTE_LEVEL_SERIAL);
	CU_ASSERT_EQUAL(r.levels[4].kind, ROUTE_LEVEL_TENANT);
	route_clear(&r);

	CU_ASSERT_TRUE_FATAL(route_parse("{tenant}/{serial}", ROUTE_FORMAT_JSON, &r, err, sizeof(err)));
	ASSERT_STR(r.filter, "+/+");
	CU_ASSERT_EQUAL(r.level_count, 2);
	route_clear(&r);
}

static void test_parse_refuses_missing_placeholder(void)
{
	assert_refused("solar/{tenant}/telemetry", "{serial}");
	assert_refused("solar/{serial}/telemetry", "{tenant}");
	assert_refused("solar/telemetry", "{tenant}");
}

static void test_parse_refuses_duplicate_placeholder(void)
{
	assert_refused("solar/{tenant}/{tenant}/{serial}", "exactly one");
	assert_refused("{tenant}/{serial}/{serial}", "exactly one");
}

static void test_parse_refuses_empty_level(void)
{
	assert_refused("", "empty");
	assert_refused("solar//{tenant}/{serial}", "empty");
	assert_refused("/{tenant}/{serial}", "empty");
	assert_refused("{tenant}/{serial}/", "empty");
	assert_refused("/", "empty");
}

static void test_parse_refuses_wildcard_inside_level(void)
{
	assert_refused("sol+ar/{tenant}/{serial}", "wildcard");
	assert_refused("solar/++/{tenant}/{serial}", "wildcard");
	assert_refused("solar/{tenant}/{serial}/#", "wildcard");
	assert_refused("solar/#/{tenant}/{serial}", "wildcard");
	assert_refused("solar/te#st/{tenant}/{serial}", "wildcard");
}

static void test_parse_refuses_unknown_placeholder(void)
{
	assert_refused("solar/{site}/{tenant}/{serial}", "unknown placeholder");
	assert_refused("solar/{Tenant}/{serial}", "unknown placeholder");
	assert_refused("solar/x{tenant}/{serial}", "unknown placeholder");
	assert_refused("solar/{tenant}y/{serial}", "unknown placeholder");
	assert_refused("solar/{tenant}/{serial}/}", "unknown placeholder");
}

static void test_route_clear_zeroed_is_noop(void)
{
	struct route r = { 0 };

	route_clear(&r);
	route_clear(&r);
	CU_ASSERT_EQUAL(r.level_count, 0);
}

static void test_format_names(void)
{
	enum route_format f = (enum route_format)42;

	CU_ASSERT_TRUE(route_format_parse("json", &f));
	CU_ASSERT_EQUAL(f, ROUTE_FORMAT_JSON);
	CU_ASSERT_FALSE(route_format_parse("JSON", &f));
	CU_ASSERT_FALSE(route_format_parse("", &f));
	CU_ASSERT_FALSE(route_format_parse("line", &f));
	ASSERT_STR(route_format_name(ROUTE_FORMAT_JSON), "json");
}

/* The standard route, parsed once per test that needs it. */
static void parse_standard(struct route *r)
{
	char err[256] = "";

	memset(r, 0, sizeof(*r));
	CU_ASSERT_TRUE_FATAL(
		route_parse("solar/{tenant}/{serial}/telemetry", ROUTE_FORMAT_JSON, r, err, sizeof(err)));
}

static bool match_text(const struct route *r, const char *topic, struct route_match *m)
{
	return route_match(r, topic, strlen(topic), m);
}

static void test_match_exact_slices(void)
{
	static const char topic[] = "solar/acme/INV-0001/telemetry";
	struct route r;
	struct route_match m;

	parse_standard(&r);
	CU_ASSERT_TRUE_FATAL(match_text(&r, topic, &m));
	CU_ASSERT(slice_is(m.tenant, "acme"));
	CU_ASSERT(slice_is(m.serial, "INV-0001"));
	/* Slices borrow the topic's bytes; they are not copies. */
	CU_ASSERT_PTR_EQUAL(m.tenant.ptr, topic + 6);
	CU_ASSERT_PTR_EQUAL(m.serial.ptr, topic + 11);
	route_clear(&r);
}

static void test_match_any_level(void)
{
	struct route r = { 0 };
	struct route_match m;
	char err[256] = "";

	CU_ASSERT_TRUE_FATAL(
		route_parse("site/+/{tenant}/{serial}", ROUTE_FORMAT_JSON, &r, err, sizeof(err)));
	CU_ASSERT_TRUE(match_text(&r, "site/roof-3/acme/S1", &m));
	CU_ASSERT(slice_is(m.tenant, "acme"));
	CU_ASSERT(slice_is(m.serial, "S1"));
	/* "+" matches any one level, as in MQTT, even an empty one; only placeholders must be non-empty. */
	CU_ASSERT_TRUE(match_text(&r, "site//acme/S1", &m));
	CU_ASSERT(slice_is(m.serial, "S1"));
	CU_ASSERT_FALSE(match_text(&r, "site/a/b/acme/S1", &m));
	CU_ASSERT_FALSE(match_text(&r, "site/acme/S1", &m));
	route_clear(&r);
}

static void test_match_placeholder_first_and_last(void)
{
	struct route r = { 0 };
	struct route_match m;
	char err[256] = "";

	CU_ASSERT_TRUE_FATAL(route_parse("{tenant}/{serial}", ROUTE_FORMAT_JSON, &r, err, sizeof(err)));
	CU_ASSERT_TRUE(match_text(&r, "t/s", &m));
	CU_ASSERT(slice_is(m.tenant, "t"));
	CU_ASSERT(slice_is(m.serial, "s"));
	CU_ASSERT_FALSE(match_text(&r, "t/", &m));
	CU_ASSERT_FALSE(match_text(&r, "/s", &m));
	CU_ASSERT_FALSE(match_text(&r, "/", &m));
	CU_ASSERT_FALSE(match_text(&r, "t", &m));
	CU_ASSERT_FALSE(match_text(&r, "", &m));
	CU_ASSERT_FALSE(match_text(&r, "t/s/", &m));
	route_clear(&r);
}

static void test_match_refuses_wrong_level_count(void)
{
	struct route r;
	struct route_match m;

	parse_standard(&r);
	CU_ASSERT_FALSE(match_text(&r, "solar/acme/INV-0001", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar", &m));
	CU_ASSERT_FALSE(match_text(&r, "", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme/INV-0001/", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme/INV-0001/telemetry/extra", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme/INV-0001/telemetry/", &m));
	CU_ASSERT_FALSE(match_text(&r, "/solar/acme/INV-0001/telemetry", &m));
	route_clear(&r);
}

static void test_match_refuses_empty_placeholder(void)
{
	struct route r;
	struct route_match m;

	parse_standard(&r);
	CU_ASSERT_FALSE(match_text(&r, "solar//INV-0001/telemetry", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme//telemetry", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar///telemetry", &m));
	route_clear(&r);
}

static void test_match_refuses_literal_mismatch(void)
{
	struct route r;
	struct route_match m;

	parse_standard(&r);
	CU_ASSERT_FALSE(match_text(&r, "Solar/acme/INV-0001/telemetry", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme/INV-0001/telemetrx", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme/INV-0001/telemetry2", &m));
	CU_ASSERT_FALSE(match_text(&r, "solar/acme/INV-0001/telemetr", &m));
	CU_ASSERT_FALSE(match_text(&r, "sola/acme/INV-0001/telemetry", &m));
	CU_ASSERT_FALSE(match_text(&r, "wind/acme/INV-0001/telemetry", &m));
	route_clear(&r);
}

static void test_match_topic_not_nul_terminated(void)
{
	static const char longer[] = "solar/acme/INV-0001/telemetry/extra";
	static const char exact[] = "solar/acme/INV-0001/telemetry";
	const size_t exact_len = sizeof(exact) - 1;
	struct route r;
	struct route_match m;
	char *heap;

	parse_standard(&r);
	/* A length shorter than strlen: only the first exact_len bytes are the topic. */
	CU_ASSERT_TRUE(route_match(&r, longer, exact_len, &m));
	CU_ASSERT(slice_is(m.tenant, "acme"));
	CU_ASSERT(slice_is(m.serial, "INV-0001"));
	/* Cut inside the last level: no longer the literal. */
	CU_ASSERT_FALSE(route_match(&r, longer, exact_len - 3, &m));
	/* Cut inside the serial: fewer levels. */
	CU_ASSERT_FALSE(route_match(&r, longer, 15, &m));
	/* One byte more keeps the slash after "telemetry": an extra, empty level. */
	CU_ASSERT_FALSE(route_match(&r, longer, exact_len + 1, &m));

	/* An exact-size heap copy without a terminator: AddressSanitizer catches any read past the end. */
	heap = malloc(exact_len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(heap);
	memcpy(heap, exact, exact_len);
	CU_ASSERT_TRUE(route_match(&r, heap, exact_len, &m));
	CU_ASSERT(slice_is(m.serial, "INV-0001"));
	CU_ASSERT_PTR_EQUAL(m.serial.ptr, heap + 11);
	CU_ASSERT_FALSE(route_match(&r, heap, exact_len - 1, &m));
	free(heap);
	route_clear(&r);
}

static void test_match_serial_with_odd_bytes(void)
{
	struct route r;
	struct route_match m;

	/* Matching is byte-wise: whatever the device puts in its level is left for validation to judge. */
	parse_standard(&r);
	CU_ASSERT_TRUE(match_text(&r, "solar/acme/INV 00\xc3\xa9/telemetry", &m));
	CU_ASSERT(slice_is(m.serial, "INV 00\xc3\xa9"));
	route_clear(&r);
}

/* clang-format off */

/* {point} and {point+}: one level, or the rest of the topic; the filter ends in '#' for {point+}. */
static void test_point_placeholders(void)
{
	struct route r = {0};
	struct route_match m;
	char err[256] = "";

	CU_ASSERT_TRUE_FATAL(route_parse_template("solar/{serial}/{point+}", ROUTE_FORMAT_VALUE, &r, err, sizeof(err)));
	r.tenant = strdup("acme");
	CU_ASSERT_TRUE(route_check(&r, err, sizeof(err)));
	ASSERT_STR(r.filter, "solar/+/#");
	CU_ASSERT_TRUE(route_match(&r, "solar/114172220003/0/power", 26, &m));
	CU_ASSERT(slice_is(m.serial, "114172220003"));
	CU_ASSERT(slice_is(m.point, "0/power"));
	CU_ASSERT(slice_is(m.tenant, "acme"));
	CU_ASSERT_TRUE(route_match(&r, "solar/S/x", 9, &m));
	CU_ASSERT(slice_is(m.point, "x"));
	CU_ASSERT_FALSE(route_match(&r, "solar/S", 7, &m));
	CU_ASSERT_FALSE(route_match(&r, "solar/S/", 8, &m));
	CU_ASSERT_FALSE(route_match(&r, "solar/S/a//b", 12, &m));
	CU_ASSERT_FALSE(route_match(&r, "solar/S/a/", 10, &m));
	route_clear(&r);
	CU_ASSERT_TRUE_FATAL(route_parse_template("solar/{tenant}/{serial}/{point+}", ROUTE_FORMAT_VALUE, &r, err, sizeof(err)));
	CU_ASSERT_TRUE(route_match(&r, "solar/t/s/0/power", 17, &m));
	CU_ASSERT(slice_is(m.point, "0/power"));
	route_clear(&r);
	CU_ASSERT_TRUE_FATAL(route_parse_template("{serial}/status/{point}", ROUTE_FORMAT_FLAT_JSON, &r, err, sizeof(err)));
	ASSERT_STR(r.filter, "+/status/+");
	CU_ASSERT_TRUE(route_match(&r, "shelly1/status/switch:0", 23, &m));
	CU_ASSERT(slice_is(m.point, "switch:0"));
	CU_ASSERT_FALSE(route_check(&r, err, sizeof(err))); /* no tenant */
	route_clear(&r);
	CU_ASSERT_FALSE(route_parse_template("a/{point+}/b", ROUTE_FORMAT_VALUE, &r, err, sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "last level"));
	CU_ASSERT_FALSE(route_parse_template("a/{point}/{point+}", ROUTE_FORMAT_VALUE, &r, err, sizeof(err)));
}

/* {point+} is one or more non-empty levels: an empty level anywhere in it, the first too, is no match. */
static void test_point_rest_refuses_empty_levels(void)
{
	static const char *const topics[] = { "solar/t/s//power", "solar/t/s//", "solar/t/s///x", "solar/t/s/a//b",
					      "solar/t/s/a/", "solar/t/s/" };
	struct route r = {0};
	struct route_match m;
	char err[256] = "";

	CU_ASSERT_TRUE_FATAL(route_parse_template("solar/{tenant}/{serial}/{point+}", ROUTE_FORMAT_VALUE, &r, err, sizeof(err)));
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		bool matched = route_match(&r, topics[i], strlen(topics[i]), &m);
		if (matched)
			fprintf(stderr, "\n  %s matched with point '%.*s'\n", topics[i], (int)m.point.len, m.point.ptr);
		CU_ASSERT_FALSE(matched);
	}
	route_clear(&r);
}

static void test_new_format_names(void)
{
	static const char *const names[] = {"value", "value_json", "influx", "flat_json", "shelly_rpc", "telegraf_json"};
	enum route_format f;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CU_ASSERT_TRUE(route_format_parse(names[i], &f));
		ASSERT_STR(route_format_name(f), names[i]);
	}
	ASSERT_STR(route_format_name((enum route_format)99), "unknown");
}

/* clang-format on */

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_parse_standard_template),
		UNIT_TEST(test_parse_any_level_and_order),
		UNIT_TEST(test_parse_refuses_missing_placeholder),
		UNIT_TEST(test_parse_refuses_duplicate_placeholder),
		UNIT_TEST(test_parse_refuses_empty_level),
		UNIT_TEST(test_parse_refuses_wildcard_inside_level),
		UNIT_TEST(test_parse_refuses_unknown_placeholder),
		UNIT_TEST(test_route_clear_zeroed_is_noop),
		UNIT_TEST(test_format_names),
		UNIT_TEST(test_match_exact_slices),
		UNIT_TEST(test_match_any_level),
		UNIT_TEST(test_match_placeholder_first_and_last),
		UNIT_TEST(test_match_refuses_wrong_level_count),
		UNIT_TEST(test_match_refuses_empty_placeholder),
		UNIT_TEST(test_match_refuses_literal_mismatch),
		UNIT_TEST(test_match_topic_not_nul_terminated),
		UNIT_TEST(test_match_serial_with_odd_bytes),
		UNIT_TEST(test_point_placeholders),
		UNIT_TEST(test_point_rest_refuses_empty_levels),
		UNIT_TEST(test_new_format_names),
	};

	return unit_run("route", NULL, NULL, tests, UNIT_COUNT(tests));
}
