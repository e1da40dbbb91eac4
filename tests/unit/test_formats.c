// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the route formats (formats.c), the presets (preset.c, expanded by config.c) and the time
 * zone reader (tz.c). Payloads are copied to exact-size heap buffers, never NUL-terminated, as Paho hands them
 * over. The preset tests decode the examples of each project's own documentation, cited at each test, through
 * the routes `config_load` builds from a preset, and assert every sample (point, value, time) and every
 * topic the preset must ignore.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "payload/formats.h"
#include "route.h"
#include "util/tz.h"
#include "unit.h"

#define RECEIVED_US INT64_C(1795000000000000)
#define MAX_BYTES   65536

/* --- helpers ------------------------------------------------------------------------------------------- */

static struct config *load(const char *text, char *errors, size_t errlen)
{
	char path[] = "/tmp/mqtt2pg-test-formats-XXXXXX";
	int fd = mkstemp(path);
	struct config *cfg;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	cfg = config_load(path, errors, errlen);
	unlink(path);
	return cfg;
}

/* One route from config text "routes = ( {...} );": must load. */
static struct config *load_ok(const char *text)
{
	char errors[4096];
	struct config *cfg = load(text, errors, sizeof(errors));

	if (!cfg)
		fprintf(stderr, "\n  refused:\n%s\n", errors);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	return cfg;
}

static void load_refused(const char *text, const char *fragment)
{
	char errors[4096];
	struct config *cfg = load(text, errors, sizeof(errors));

	CU_ASSERT_PTR_NULL(cfg);
	if (!strstr(errors, fragment))
		fprintf(stderr, "\n  errors lack \"%s\":\n%s\n", fragment, errors);
	CU_ASSERT_PTR_NOT_NULL(strstr(errors, fragment));
	config_free(cfg);
}

struct result {
	int rc;
	struct decoded_message out;
	struct decode_error err;
	struct route_match m;
	bool ignored_by_topic;
};

/* Routes topic and payload (exact-size copies) through cfg's first matching route, as ingest.c does. */
static struct result run(const struct config *cfg, const char *topic, const char *payload)
{
	struct result res = { 0 };
	size_t tlen = strlen(topic), plen = strlen(payload);
	char *t = malloc(tlen ? tlen : 1), *p = malloc(plen ? plen : 1);
	const struct route *route = NULL;

	memcpy(t, topic, tlen);
	memcpy(p, payload, plen);
	for (size_t i = 0; i < cfg->route_count && !route; i++) {
		if (route_ignores(&cfg->routes[i], t, tlen)) {
			res.ignored_by_topic = true;
			break;
		}
		if (route_match(&cfg->routes[i], t, tlen, &res.m))
			route = &cfg->routes[i];
	}
	res.rc = route ? formats_decode(route->format, &route->payload, p, plen, &res.m, RECEIVED_US,
					MAX_BYTES, &res.out, &res.err) :
			 -2;
	/* The match borrows the topic: keep only what outlives it (lengths, and a fixed serial's route text). */
	if (!route || !route->serial)
		res.m.serial.ptr = NULL;
	res.m.tenant.ptr = NULL;
	res.m.point.ptr = NULL;
	free(t);
	free(p);
	return res;
}

static bool sample_is(const struct result *r, size_t i, const char *point, double value, int64_t time_us)
{
	bool ok = i < r->out.count && strcmp(r->out.samples[i].point, point) == 0 &&
		  fabs(r->out.samples[i].value - value) < 1e-9 && r->out.samples[i].time_us == time_us;
	if (!ok)
		fprintf(stderr, "\n  sample %zu: got %s = %g @ %lld, want %s = %g @ %lld\n", i,
			i < r->out.count ? r->out.samples[i].point : "(none)",
			i < r->out.count ? r->out.samples[i].value : 0.0,
			(long long)(i < r->out.count ? r->out.samples[i].time_us : 0), point, value,
			(long long)time_us);
	return ok;
}

static void expect_reject(const struct config *cfg, const char *topic, const char *payload,
			  enum reject_reason why, const char *fragment)
{
	struct result r = run(cfg, topic, payload);

	if (r.rc != -1 || r.err.reason != why || !strstr(r.err.detail, fragment))
		fprintf(stderr, "\n  %s %s: rc %d reason %s (%s), want %s with \"%s\"\n", topic, payload,
			r.rc, reject_reason_name(r.err.reason), r.err.detail, reject_reason_name(why),
			fragment);
	CU_ASSERT_EQUAL(r.rc, -1);
	CU_ASSERT_EQUAL(r.err.reason, why);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err.detail, fragment));
	decode_clear(&r.out);
}

static void expect_ignored(const struct config *cfg, const char *topic, const char *payload,
			   enum ignore_reason why)
{
	struct result r = run(cfg, topic, payload);
	bool ok = why == IGNORE_STATUS && r.ignored_by_topic ? true : r.rc == 1 && r.out.ignored == why;

	if (!ok)
		fprintf(stderr, "\n  %s %s: rc %d ignored %s, want ignored %s\n", topic, payload, r.rc,
			ignore_reason_name(r.out.ignored), ignore_reason_name(why));
	CU_ASSERT(ok);
	decode_clear(&r.out);
}

#define T(sec) ((int64_t)(sec)*INT64_C(1000000))

/* --- value ----------------------------------------------------------------------------------------------- */

static const char value_conf[] =
	"routes = ( { topic = \"v/{tenant}/{serial}/{point+}\"; format = \"value\"; },\n"
	"            { topic = \"t/{tenant}/{serial}/{point}\"; format = \"value\";\n"
	"              non_numeric = \"ignore\"; } );\n";

static void test_value_numbers(void)
{
	struct config *cfg = load_ok(value_conf);
	struct result r = run(cfg, "v/acme/INV-1/1/power", "230.4");

	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.out.count, 1);
	CU_ASSERT(sample_is(&r, 0, "1/power", 230.4, RECEIVED_US));
	CU_ASSERT_EQUAL(r.out.device_count, 0);
	decode_clear(&r.out);
	r = run(cfg, "v/acme/INV-1/yield", " \t-12.5e1 \r\n");
	CU_ASSERT(sample_is(&r, 0, "yield", -125, RECEIVED_US));
	decode_clear(&r.out);
	/* Issue 15: true/false only on a route with booleans = true; else skipped, the message ignored. */
	expect_ignored(cfg, "v/acme/INV-1/on", "true", IGNORE_SKIPPED);
	expect_ignored(cfg, "v/acme/INV-1/on", "false", IGNORE_SKIPPED);
	r = run(cfg, "v/acme/INV-1/x", ".5");
	CU_ASSERT(sample_is(&r, 0, "x", 0.5, RECEIVED_US));
	decode_clear(&r.out);
	config_free(cfg);
}

/* null, empty and whitespace are "no reading", never a 0; nan and inf are faults; text is not a number. */
static void test_value_not_numbers(void)
{
	struct config *cfg = load_ok(value_conf);

	expect_ignored(cfg, "v/acme/INV-1/p", "", IGNORE_NO_VALUE);
	expect_ignored(cfg, "v/acme/INV-1/p", "  \n", IGNORE_NO_VALUE);
	expect_ignored(cfg, "v/acme/INV-1/p", "null", IGNORE_NO_VALUE);
	expect_reject(cfg, "v/acme/INV-1/p", "nan", REJECT_NON_FINITE_VALUE, "finite");
	expect_reject(cfg, "v/acme/INV-1/p", "-Inf", REJECT_NON_FINITE_VALUE, "finite");
	expect_reject(cfg, "v/acme/INV-1/p", "1e999", REJECT_NON_FINITE_VALUE, "range");
	expect_reject(cfg, "v/acme/INV-1/p", "online", REJECT_MALFORMED_PAYLOAD, "not a number");
	expect_reject(cfg, "v/acme/INV-1/p", "12 W", REJECT_MALFORMED_PAYLOAD, "not a number");
	expect_reject(cfg, "v/acme/INV-1/p", "0x10", REJECT_MALFORMED_PAYLOAD, "not a number");
	expect_reject(cfg, "v/acme/INV-1/p", "TRUE", REJECT_MALFORMED_PAYLOAD, "not a number");
	expect_reject(cfg, "v/acme/INV-1/p", "1\xff", REJECT_INVALID_UTF8, "UTF-8");
	expect_reject(cfg, "v/acme/INV-1/bad name", "1", REJECT_INVALID_POINT_NAME, "point names");
	expect_reject(cfg, "v/acme/INV-1/a23456789012345678901234567890123456789012345678901234567890/12345",
		      "1", REJECT_INVALID_POINT_NAME, "longer");
	/* non_numeric = "ignore": text is counted, not rejected; nan still is. */
	expect_ignored(cfg, "t/acme/INV-1/name", "HM-600", IGNORE_NON_NUMERIC);
	expect_reject(cfg, "t/acme/INV-1/p", "NaN", REJECT_NON_FINITE_VALUE, "finite");
	config_free(cfg);
}

/* The envelope goes through formats_decode unchanged (decode_json). */
static void test_json_route_unchanged(void)
{
	struct config *cfg = load_ok(
		"routes = ( { topic = \"solar/{tenant}/{serial}/telemetry\"; format = \"json\"; } );\n");
	struct result r = run(
		cfg, "solar/acme/INV-1/telemetry",
		"{\"serial\":\"INV-1\",\"timestamp\":\"2026-11-21T10:30:00Z\",\"measurements\":{\"p\":5420}}");

	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(sample_is(&r, 0, "p", 5420, T(1795257000)));
	CU_ASSERT_EQUAL(r.out.device_count, 0);
	decode_clear(&r.out);
	expect_reject(cfg, "solar/acme/INV-1/telemetry", "{\"serial\":\"INV-2\",\"measurements\":{\"p\":1}}",
		      REJECT_SERIAL_MISMATCH, "serial");
	config_free(cfg);
}

/* --- influx ---------------------------------------------------------------------------------------------- */

static const char influx_conf[] =
	"routes = ( { topic = \"lp/{tenant}\"; format = \"influx\"; serial_tag = \"serial\"; },\n"
	"            { topic = \"lpms/{tenant}/{serial}\"; format = \"influx\"; precision = \"ms\";\n"
	"              point = \"{measurement}.{field}\"; strings = \"ignore\"; } );\n";

/* The old collector's protocol, as it is. */
static void test_influx_old_collector(void)
{
	struct config *cfg = load_ok(influx_conf);
	struct result r =
		run(cfg, "lp/acme", "grid,serial=ABC123 total_output_power=5420 1697551200000000000");

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(r.out.device_count, 1);
	CU_ASSERT_STRING_EQUAL(r.out.devices[0].serial, "ABC123");
	CU_ASSERT_EQUAL(r.out.devices[0].first, 0);
	CU_ASSERT_EQUAL(r.out.devices[0].count, 1);
	CU_ASSERT(sample_is(&r, 0, "total_output_power", 5420, T(1697551200)));
	decode_clear(&r.out);
	config_free(cfg);
}

/* Lines naming several devices: grouped per device, in order, each to be validated on its own. */
static void test_influx_several_devices(void)
{
	struct config *cfg = load_ok(influx_conf);
	struct result r = run(cfg, "lp/acme",
			      "# two inverters\r\n"
			      "grid,serial=A p=1i,q=2u 1697551200000000000\r\n"
			      "grid,serial=B p=3 1697551201000000000\r\n"
			      "\r\n"
			      "grid,serial=A p=4,on=t 1697551202000000000\r\n");

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(r.out.device_count, 2);
	CU_ASSERT_STRING_EQUAL(r.out.devices[0].serial, "A");
	CU_ASSERT_EQUAL(r.out.devices[0].first, 0);
	CU_ASSERT_EQUAL(r.out.devices[0].count, 3); /* on=t: a boolean, skipped without booleans = true */
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_BOOLEAN], 1);
	CU_ASSERT_STRING_EQUAL(r.out.devices[1].serial, "B");
	CU_ASSERT_EQUAL(r.out.devices[1].first, 3);
	CU_ASSERT_EQUAL(r.out.devices[1].count, 1);
	CU_ASSERT(sample_is(&r, 0, "p", 1, T(1697551200)));
	CU_ASSERT(sample_is(&r, 1, "q", 2, T(1697551200)));
	CU_ASSERT(sample_is(&r, 2, "p", 4, T(1697551202)));
	CU_ASSERT(sample_is(&r, 3, "p", 3, T(1697551201)));
	decode_clear(&r.out);
	config_free(cfg);
}

static void test_influx_mapping_options(void)
{
	struct config *cfg = load_ok(influx_conf);
	struct result r = run(cfg, "lpms/acme/INV-9", "grid fw=\"1.2\",power=5 1697551200123\ninv power=6\n");

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.out.device_count, 0); /* the device is the topic's */
	CU_ASSERT_EQUAL(r.out.count, 2);
	CU_ASSERT(sample_is(&r, 0, "grid.power", 5, INT64_C(1697551200123000)));
	CU_ASSERT(sample_is(&r, 1, "inv.power", 6, RECEIVED_US));
	decode_clear(&r.out);
	/* "no time" has a space: not a point name */
	expect_reject(cfg, "lpms/acme/INV-9", "grid p=1\nno\\ time power=6\n", REJECT_INVALID_POINT_NAME,
		      "line 2");
	config_free(cfg);
}

static void test_influx_rejections(void)
{
	struct config *cfg = load_ok(influx_conf);

	expect_reject(cfg, "lp/acme", "grid,serial=A p=1\ngrid,serial=A p=oops\n", REJECT_MALFORMED_PAYLOAD,
		      "line 2, column 17");
	expect_reject(cfg, "lp/acme", "grid,serial=A fw=\"1.2\"", REJECT_WRONG_TYPE, "string");
	expect_reject(cfg, "lp/acme", "grid p=1", REJECT_WRONG_TYPE, "no tag 'serial'");
	expect_reject(cfg, "lpms/acme/X", "grid p=1 9223372036854775807", REJECT_BAD_TIMESTAMP, "outside");
	expect_reject(cfg, "lp/acme", "", REJECT_EMPTY_PAYLOAD, "empty");
	expect_reject(cfg, "lp/acme", "# only a comment\n", REJECT_NO_MEASUREMENTS, "no numeric");
	expect_reject(cfg, "lpms/acme/X", "grid fw=\"x\"", REJECT_NO_MEASUREMENTS, "no numeric");
	expect_reject(cfg, "lp/acme", "grid,serial=A p=1\xc3", REJECT_INVALID_UTF8, "UTF-8");
	config_free(cfg);
}

/* --- flat JSON, time zones ------------------------------------------------------------------------------- */

static void test_tz_berlin(void)
{
	struct tz *tz = NULL;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(tz_load("Europe/Berlin", &tz, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(tz_offset_at(tz, 1705312800), 3600); /* 2024-01-15T10:00Z: CET */
	CU_ASSERT_EQUAL(tz_offset_at(tz, 1719828000), 7200); /* 2024-07-01T10:00Z: CEST */
	/* 2024-07-01T12:00 local = 10:00Z */
	CU_ASSERT_EQUAL(tz_local_to_utc(tz, 1719835200), 1719828000);
	/* 2024-10-27T02:30 local happens twice: the first (CEST) one, 00:30Z */
	CU_ASSERT_EQUAL(tz_local_to_utc(tz, 1729996200), 1729989000);
	/* 2024-03-31T02:30 local does not happen: read with the offset before the gap (CET), 01:30Z */
	CU_ASSERT_EQUAL(tz_local_to_utc(tz, 1711852200), 1711848600);
	tz_free(tz);
	CU_ASSERT_EQUAL(tz_load("../etc/passwd", &tz, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "zone name"));
	CU_ASSERT_EQUAL(tz_load("Mars/Olympus", &tz, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(tz_load("UTC", &tz, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(tz_local_to_utc(tz, 1719835200), 1719835200);
	tz_free(tz);
	tz_free(NULL);
}

static void test_time_conversions(void)
{
	int64_t us = 0;

	CU_ASSERT_TRUE(formats_time_number(1631266595.43, ROUTE_TIME_S, &us));
	CU_ASSERT_EQUAL(us, INT64_C(1631266595430000));
	CU_ASSERT_TRUE(formats_time_number(1697551200123.0, ROUTE_TIME_MS, &us));
	CU_ASSERT_EQUAL(us, INT64_C(1697551200123000));
	CU_ASSERT_FALSE(formats_time_number(1697551200123.5, ROUTE_TIME_MS, &us));
	CU_ASSERT_FALSE(formats_time_number(1e300, ROUTE_TIME_S, &us));
	CU_ASSERT_FALSE(formats_time_number(NAN, ROUTE_TIME_S, &us));
	CU_ASSERT_TRUE(formats_time_text("2024-07-01T12:00:00+02:00", 25, NULL, &us));
	CU_ASSERT_EQUAL(us, T(1719828000));
	CU_ASSERT_FALSE(
		formats_time_text("2024-07-01T12:00:00", 19, NULL, &us)); /* no zone, none configured */
}

/* --- presets --------------------------------------------------------------------------------------------- */

/* OpenDTU docs/MQTT_Topics.md: [serial]/0/power etc.; dtu/... and [serial]/status/... are not readings. */
static void test_preset_opendtu(void)
{
	struct config *cfg = load_ok("routes = ( { preset = \"opendtu\"; tenant = \"acme\"; } );\n");
	struct result r;

	CU_ASSERT_STRING_EQUAL(cfg->routes[0].filter, "solar/+/#");
	CU_ASSERT_TRUE(cfg->routes[0].ignore_retained);
	r = run(cfg, "solar/114172220003/0/power", "73.4");
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.m.serial.len, strlen("114172220003"));
	CU_ASSERT(sample_is(&r, 0, "0/power", 73.4, RECEIVED_US));
	decode_clear(&r.out);
	r = run(cfg, "solar/114172220003/1/yieldday", "1234");
	CU_ASSERT(sample_is(&r, 0, "1/yieldday", 1234, RECEIVED_US));
	decode_clear(&r.out);
	expect_ignored(cfg, "solar/dtu/status", "online", IGNORE_STATUS);
	expect_ignored(cfg, "solar/dtu/uptime", "1234", IGNORE_STATUS);
	expect_ignored(cfg, "solar/114172220003/status/reachable", "1", IGNORE_STATUS);
	expect_ignored(cfg, "solar/114172220003/status/last_update", "1697551200", IGNORE_STATUS);
	expect_ignored(cfg, "solar/114172220003/name", "Balkon", IGNORE_STATUS);
	expect_ignored(cfg, "solar/114172220003/device/hwversion", "H09", IGNORE_STATUS);
	expect_ignored(cfg, "solar/114172220003/cmd/limit_persistent_relative", "50", IGNORE_STATUS);
	expect_ignored(cfg, "solar/ac/power", "73.4", IGNORE_STATUS);
	config_free(cfg);
	/* prefix with the tenant in it */
	cfg = load_ok("routes = ( { preset = \"opendtu\"; prefix = \"site/{tenant}/pv\"; } );\n");
	CU_ASSERT_STRING_EQUAL(cfg->routes[0].template_text, "site/{tenant}/pv/{serial}/{point+}");
	CU_ASSERT_STRING_EQUAL(cfg->routes[0].ignore[0], "site/+/pv/dtu/#");
	r = run(cfg, "site/acme/pv/114172220003/0/power", "10");
	CU_ASSERT_EQUAL(r.m.tenant.len, 4);
	CU_ASSERT(sample_is(&r, 0, "0/power", 10, RECEIVED_US));
	decode_clear(&r.out);
	expect_ignored(cfg, "site/acme/pv/dtu/status", "offline", IGNORE_STATUS);
	config_free(cfg);
}

/* AhoyDTU User_Manual.md: <TOPIC>/<INVERTER_NAME>/ch0/P_AC = 71.000; available, uptime, ... are not. */
static void test_preset_ahoydtu(void)
{
	struct config *cfg = load_ok("routes = ( { preset = \"ahoydtu\"; tenant = \"acme\"; } );\n");
	struct result r = run(cfg, "inverter/HM-600/ch0/P_AC", "71.000");

	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.m.serial.len, 6);
	CU_ASSERT(sample_is(&r, 0, "ch0/P_AC", 71, RECEIVED_US));
	decode_clear(&r.out);
	r = run(cfg, "inverter/HM-600/ch1/U_DC", "33.400");
	CU_ASSERT(sample_is(&r, 0, "ch1/U_DC", 33.4, RECEIVED_US));
	decode_clear(&r.out);
	expect_ignored(cfg, "inverter/HM-600/available", "2", IGNORE_STATUS);
	expect_ignored(cfg, "inverter/HM-600/last_success", "1672155690", IGNORE_STATUS);
	expect_ignored(cfg, "inverter/uptime", "73630", IGNORE_STATUS);
	expect_ignored(cfg, "inverter/version", "0.5.61", IGNORE_STATUS);
	expect_ignored(cfg, "inverter/devcontrol/0/11", "300", IGNORE_STATUS);
	config_free(cfg);
}

/* deye-inverter-mqtt docs/metric_group_*.md: deye/ac/l1/voltage; the device comes from the route. */
static void test_preset_deye(void)
{
	struct config *cfg =
		load_ok("routes = ( { preset = \"deye\"; tenant = \"acme\"; serial = \"DEYE-1\"; } );\n");
	struct result r = run(cfg, "deye/ac/l1/voltage", "230.1");

	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.m.serial.len, 6);
	CU_ASSERT_PTR_NOT_NULL(r.m.serial.ptr);
	CU_ASSERT_EQUAL(memcmp(r.m.serial.ptr, "DEYE-1", 6), 0);
	CU_ASSERT(sample_is(&r, 0, "ac/l1/voltage", 230.1, RECEIVED_US));
	decode_clear(&r.out);
	r = run(cfg, "deye/day_energy", "12.3");
	CU_ASSERT(sample_is(&r, 0, "day_energy", 12.3, RECEIVED_US));
	decode_clear(&r.out);
	expect_ignored(cfg, "deye/status", "online", IGNORE_STATUS);
	expect_ignored(cfg, "deye/logger_status", "offline", IGNORE_STATUS);
	config_free(cfg);
	load_refused("routes = ( { preset = \"deye\"; tenant = \"acme\"; } );\n",
		     "routes[0]: preset deye needs serial");
}

/* Victron venus-html5-app TOPICS.md and dbus-mqtt README: N/e0ff50a097c0/system/0/Dc/Battery/Voltage {"value": 210}. */
static void test_preset_victron(void)
{
	struct config *cfg = load_ok("routes = ( { preset = \"victron\"; tenant = \"acme\"; } );\n");
	struct result r = run(cfg, "N/e0ff50a097c0/system/0/Dc/Battery/Voltage", "{\"value\": 210}");

	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.m.serial.len, 12);
	CU_ASSERT(sample_is(&r, 0, "system/0/Dc/Battery/Voltage", 210, RECEIVED_US));
	decode_clear(&r.out);
	expect_ignored(cfg, "N/e0ff50a097c0/system/0/Dc/Battery/TimeToGo", "{\"value\": null}",
		       IGNORE_NO_VALUE);
	expect_ignored(cfg, "N/e0ff50a097c0/system/0/Batteries",
		       "{\"value\": [{\"soc\": 100.0, \"id\": \"com.victronenergy.battery.ttyO0\"}]}",
		       IGNORE_NON_NUMERIC);
	expect_ignored(cfg, "N/e0ff50a097c0/vebus/257/ProductName", "{\"value\": \"MultiPlus\"}",
		       IGNORE_NON_NUMERIC);
	expect_ignored(cfg, "N/e0ff50a097c0/system/0/Dc/Pv/Power", "", IGNORE_NO_VALUE);
	expect_reject(cfg, "N/e0ff50a097c0/system/0/Dc/Pv/Power", "{\"val\": 1}", REJECT_WRONG_TYPE,
		      "\"value\"");
	expect_reject(cfg, "N/e0ff50a097c0/system/0/Dc/Pv/Power", "{\"value\": 1", REJECT_MALFORMED_JSON,
		      "JSON");
	config_free(cfg);
}

/* Tasmota (issue #1621's log): tele/SonoffPOW/SENSOR with a local "Time" and an ENERGY object. */
static void test_preset_tasmota(void)
{
	struct config *cfg = load_ok(
		"routes = ( { preset = \"tasmota\"; tenant = \"acme\"; timezone = \"Europe/Berlin\"; } );\n");
	struct result r = run(
		cfg, "tele/SonoffPOW/SENSOR",
		"{\"Time\":\"2018-01-17T18:59:50\",\"ENERGY\":{\"TotalStartTime\":\"2018-01-01T00:00:00\","
		"\"Total\":1.956,\"Yesterday\":0.054,\"Today\":0.049,\"Period\":0,\"Power\":9,"
		"\"Factor\":0.43,\"Voltage\":231,\"Current\":0.089}}");
	int64_t t = T(1516211990); /* 2018-01-17T17:59:50Z: CET is UTC+1 */

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.out.count, 8);
	CU_ASSERT(sample_is(&r, 0, "ENERGY/Total", 1.956, t));
	CU_ASSERT(sample_is(&r, 4, "ENERGY/Power", 9, t));
	CU_ASSERT(sample_is(&r, 7, "ENERGY/Current", 0.089, t));
	decode_clear(&r.out);
	/* summer time, and a zone in the time wins over the configured one */
	r = run(cfg, "tele/plug/SENSOR", "{\"Time\":\"2024-07-01T12:00:00\",\"ANALOG\":{\"A0\":512}}");
	CU_ASSERT(sample_is(&r, 0, "ANALOG/A0", 512, T(1719828000)));
	decode_clear(&r.out);
	r = run(cfg, "tele/plug/SENSOR", "{\"Time\":\"2024-07-01T12:00:00+00:00\",\"ANALOG\":{\"A0\":512}}");
	CU_ASSERT(sample_is(&r, 0, "ANALOG/A0", 512, T(1719835200)));
	decode_clear(&r.out);
	expect_reject(cfg, "tele/plug/SENSOR", "{\"Time\":\"yesterday\",\"A\":{\"B\":1}}",
		      REJECT_BAD_TIMESTAMP, "RFC 3339");
	expect_reject(cfg, "tele/plug/SENSOR", "{\"Time\":\"2024-07-01T12:00:00\",\"Switch1\":\"ON\"}",
		      REJECT_NO_MEASUREMENTS, "no number");
	config_free(cfg);
	load_refused("routes = ( { preset = \"tasmota\"; tenant = \"acme\"; } );\n", "needs timezone");
	cfg = load_ok("routes = ( { preset = \"tasmota\"; tenant = \"acme\"; time_field = \"\"; } );\n");
	r = run(cfg, "tele/plug/SENSOR", "{\"Time\":\"2024-07-01T12:00:00\",\"ANALOG\":{\"A0\":512}}");
	CU_ASSERT(sample_is(&r, 0, "ANALOG/A0", 512,
			    RECEIVED_US)); /* receive time; "Time" is a string: skipped */
	decode_clear(&r.out);
	config_free(cfg);
}

/* Shelly Gen2 "Notifications": NotifyStatus over <id>/events/rpc; "generic status" over <id>/status/<component>. */
static void test_preset_shelly(void)
{
	struct config *cfg = load_ok("routes = ( { preset = \"shelly\"; tenant = \"acme\"; },\n"
				     "            { preset = \"shelly_status\"; tenant = \"acme\"; } );\n");
	struct result r = run(
		cfg, "shellypro4pm-f008d1d8b8b8/events/rpc",
		"{\"src\":\"shellypro4pm-f008d1d8b8b8\",\"dst\":\"user_1\",\"method\":\"NotifyStatus\","
		"\"params\":{\"ts\":1631266595.43,\"switch:0\":{\"id\":0,\"output\":true,\"source\":\"button\"}}}");
	int64_t t = INT64_C(1631266595430000);

	CU_ASSERT_STRING_EQUAL(cfg->routes[0].filter, "+/events/rpc");
	/* Issue 15: "id" is bookkeeping (the preset's ignore_points), "output" a boolean: nothing is a reading. */
	CU_ASSERT_EQUAL_FATAL(r.rc, 1);
	CU_ASSERT_EQUAL(r.out.ignored, IGNORE_SKIPPED);
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_IGNORED_POINT], 1);
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_BOOLEAN], 1);
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_STRING], 1);
	decode_clear(&r.out);
	(void)t;
	expect_ignored(
		cfg, "shellypro4pm-f008d1d8b8b8/events/rpc",
		"{\"src\":\"shellypro4pm-f008d1d8b8b8\",\"method\":\"NotifyEvent\",\"params\":{\"ts\":1631266595.43,"
		"\"events\":[{\"component\":\"input:0\",\"event\":\"single_push\"}]}}",
		IGNORE_STATUS);
	r = run(cfg, "shellyplus1pm-a8032ab12345/status/switch:0",
		"{\"id\":0,\"source\":\"init\",\"output\":false,\"apower\":0.0,\"voltage\":225.9,\"current\":0.000,"
		"\"aenergy\":{\"total\":0.000,\"by_minute\":[0.000,0.000,0.000],\"minute_ts\":1654511972},"
		"\"temperature\":{\"tC\":48.4,\"tF\":119.1}}");
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	/* id, output (boolean), source (text), by_minute/0..2, minute_ts: not readings */
	CU_ASSERT_EQUAL(r.out.count, 6);
	CU_ASSERT(sample_is(&r, 0, "switch:0/apower", 0, RECEIVED_US));
	CU_ASSERT(sample_is(&r, 1, "switch:0/voltage", 225.9, RECEIVED_US));
	CU_ASSERT(sample_is(&r, 3, "switch:0/aenergy/total", 0, RECEIVED_US));
	CU_ASSERT(sample_is(&r, 4, "switch:0/temperature/tC", 48.4, RECEIVED_US));
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_IGNORED_POINT], 5);
	decode_clear(&r.out);
	expect_ignored(cfg, "shellyplus1pm-a8032ab12345/online", "true", IGNORE_STATUS);
	config_free(cfg);
}

/* Telegraf's MQTT output: telegraf/<host>/<plugin>, line protocol (ns) or its JSON serializer (s). */
static void test_preset_telegraf(void)
{
	struct config *cfg = load_ok(
		"routes = ( { preset = \"telegraf\"; tenant = \"acme\"; },\n"
		"            { preset = \"telegraf_json\"; prefix = \"tj\"; tenant = \"acme\"; } );\n");
	struct result r =
		run(cfg, "telegraf/host1/cpu",
		    "cpu,cpu=cpu-total,host=host1 usage_idle=98.5,usage_user=1.2 1697551200000000000\n");

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	/* Issue 15: the device is the metric's host tag (the preset's serial_tag), not a topic level */
	CU_ASSERT_EQUAL_FATAL(r.out.device_count, 1);
	CU_ASSERT_STRING_EQUAL(r.out.devices[0].serial, "host1");
	CU_ASSERT(sample_is(&r, 0, "cpu.usage_idle", 98.5, T(1697551200)));
	CU_ASSERT(sample_is(&r, 1, "cpu.usage_user", 1.2, T(1697551200)));
	decode_clear(&r.out);
	r = run(cfg, "tj/host1/cpu",
		"{\"fields\":{\"usage_idle\":98.5,\"usage_user\":1.2},\"name\":\"cpu\",\"tags\":{\"cpu\":\"cpu-total\","
		"\"host\":\"host1\"},\"timestamp\":1697551200}");
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT(sample_is(&r, 0, "cpu.usage_idle", 98.5, T(1697551200)));
	decode_clear(&r.out);
	r = run(cfg, "tj/host1/mem",
		"{\"metrics\":[{\"fields\":{\"used\":100},\"name\":\"mem\",\"tags\":{},\"timestamp\":1697551200},"
		"{\"fields\":{\"used\":200,\"state\":\"ok\"},\"name\":\"mem\",\"timestamp\":1697551201}]}");
	CU_ASSERT_EQUAL(r.rc, -1); /* a string field: strings = "reject" by default */
	CU_ASSERT_EQUAL(r.err.reason, REJECT_WRONG_TYPE);
	decode_clear(&r.out);
	expect_reject(cfg, "tj/host1/cpu", "{\"name\":\"cpu\",\"fields\":{\"a\":1},\"timestamp\":1.5}",
		      REJECT_BAD_TIMESTAMP, "not whole");
	config_free(cfg);
	/* serial_tag: the devices are named in the payload, one message per device */
	cfg = load_ok(
		"routes = ( { preset = \"telegraf_json\"; topic = \"tj/{tenant}/+/+\"; serial_tag = \"host\";"
		" strings = \"ignore\"; } );\n");
	r = run(cfg, "tj/acme/x/mem",
		"{\"metrics\":[{\"fields\":{\"used\":100},\"name\":\"mem\",\"tags\":{\"host\":\"h1\"},\"timestamp\":1697551200},"
		"{\"fields\":{\"used\":200,\"state\":\"ok\"},\"name\":\"mem\",\"tags\":{\"host\":\"h2\"},\"timestamp\":1697551201}]}");
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(r.out.device_count, 2);
	CU_ASSERT_STRING_EQUAL(r.out.devices[1].serial, "h2");
	CU_ASSERT(sample_is(&r, 1, "mem.used", 200, T(1697551201)));
	decode_clear(&r.out);
	config_free(cfg);
}


/* --- issue 15: every value real devices send, or a counted reason ------------------------------------------- */

/* A three-phase Tasmota energy monitor: arrays are Key/0..n; text and nulls are skipped and counted. */
static void test_arrays_named_by_index(void)
{
	struct config *cfg =
		load_ok("routes = ( { topic = \"t/{tenant}/{serial}\"; format = \"flat_json\"; } );\n");
	struct result r = run(cfg, "t/acme/M1",
			      "{\"ENERGY\":{\"Power\":[612,130,88],\"Phases\":[{\"V\":231.2},{\"V\":null}],"
			      "\"Unit\":\"W\",\"None\":[]}}");

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(r.out.count, 4);
	CU_ASSERT(sample_is(&r, 0, "ENERGY/Power/0", 612, RECEIVED_US));
	CU_ASSERT(sample_is(&r, 2, "ENERGY/Power/2", 88, RECEIVED_US));
	CU_ASSERT(sample_is(&r, 3, "ENERGY/Phases/0/V", 231.2, RECEIVED_US));
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_NULL], 1);
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_STRING], 1);
	decode_clear(&r.out);
	config_free(cfg);
}

/* A cloud poller's strings and key names: numeric_strings (strict decimals only), points_map, ignore_points. */
static void test_numeric_strings_and_points_map(void)
{
	struct config *cfg = load_ok(
		"routes = ( { topic = \"p/{tenant}/{serial}\"; format = \"flat_json\"; numeric_strings = true;\n"
		"  ignore_points = [\"SN\"]; points_map = ( [\"Total_AC_Output_Power(Active)\", \"ac_power\"] ); } );\n");
	struct result r = run(
		cfg, "p/acme/inverter_1",
		"{\"SN\":\"2106223344\",\"DC_Voltage_PV1\":\"35.60\",\"Total_AC_Output_Power(Active)\":\"612\","
		"\"hex\":\"0x10\",\"exp\":\"1e3\",\"plus\":\"+1\",\"space\":\" 1\",\"status\":\"Normal\"}");

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(r.out.count, 2);
	CU_ASSERT(sample_is(&r, 0, "DC_Voltage_PV1", 35.6, RECEIVED_US));
	CU_ASSERT(sample_is(&r, 1, "ac_power", 612, RECEIVED_US));
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_IGNORED_POINT], 1);
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_STRING], 5); /* 0x10, 1e3, +1, " 1", Normal: not strict decimals */
	decode_clear(&r.out);
	config_free(cfg);
	/* Without points_map the key is no point name: rejected, with the way out in the detail. */
	cfg = load_ok(
		"routes = ( { topic = \"p/{tenant}/{serial}\"; format = \"flat_json\"; numeric_strings = true; } );\n");
	expect_reject(cfg, "p/acme/inverter_1", "{\"Total_AC_Output_Power(Active)\":\"612\"}",
		      REJECT_INVALID_POINT_NAME, "points_map");
	config_free(cfg);
}

/* A preset's ignore_points are extended by the route's own, replaced only with ignore_points_replace; points
 * is an allow-list. */
static void test_ignore_points_extend_and_allow_list(void)
{
	const char *frame = "{\"id\":0,\"apower\":12.5,\"voltage\":231.4,\"current\":0.08}";
	struct config *cfg = load_ok(
		"routes = ( { preset = \"shelly_status\"; tenant = \"acme\"; ignore_points = [\"+/current\"]; } );\n");
	struct result r = run(cfg, "shellyplus1pm-a1/status/switch:0", frame);

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.out.count, 2); /* id (preset) and current (route) skipped */
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_IGNORED_POINT], 2);
	decode_clear(&r.out);
	config_free(cfg);
	cfg = load_ok(
		"routes = ( { preset = \"shelly_status\"; tenant = \"acme\"; ignore_points_replace = true;"
		" ignore_points = [\"+/current\"]; } );\n");
	r = run(cfg, "shellyplus1pm-a1/status/switch:0", frame);
	CU_ASSERT_EQUAL(r.out.count, 3); /* id kept: the preset's list replaced */
	decode_clear(&r.out);
	config_free(cfg);
	cfg = load_ok(
		"routes = ( { preset = \"shelly_status\"; tenant = \"acme\"; points = [\"+/apower\"]; } );\n");
	r = run(cfg, "shellyplus1pm-a1/status/switch:0", frame);
	CU_ASSERT_EQUAL_FATAL(r.out.count, 1);
	CU_ASSERT(sample_is(&r, 0, "switch:0/apower", 12.5, RECEIVED_US));
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_NOT_LISTED], 2);
	decode_clear(&r.out);
	config_free(cfg);
}

/* Telegraf's two serializers on one topic (format auto), a measurement allow-list, string fields counted. */
static void test_format_auto_and_measurements(void)
{
	struct config *cfg =
		load_ok("routes = ( { preset = \"telegraf\"; tenant = \"acme\"; format = \"auto\";"
			" serial_tag = \"name\"; measurements = [\"modbus\"]; strings = \"ignore\"; } );\n");
	struct result r = run(cfg, "telegraf/pi/modbus",
			      "cpu,host=pi usage_idle=97.5 1697551200000000000\n"
			      "modbus,host=pi,name=inv1 power=612i,state=\"run\" 1697551200000000000\n");

	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT_EQUAL_FATAL(r.out.device_count, 1);
	CU_ASSERT_STRING_EQUAL(r.out.devices[0].serial, "inv1");
	CU_ASSERT(sample_is(&r, 0, "modbus.power", 612, T(1697551200)));
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_MEASUREMENT], 1);
	CU_ASSERT_EQUAL(r.out.skipped[SKIP_STRING], 1);
	decode_clear(&r.out);
	r = run(cfg, "telegraf/pi/modbus",
		" {\"name\":\"modbus\",\"tags\":{\"name\":\"inv2\"},\"fields\":{\"power\":488},\"timestamp\":1697551200}");
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	CU_ASSERT(sample_is(&r, 0, "modbus.power", 488, T(1697551200))); /* JSON: seconds */
	decode_clear(&r.out);
	expect_ignored(cfg, "telegraf/pi/cpu", "cpu,host=pi usage_idle=97.5", IGNORE_SKIPPED);
	config_free(cfg);
}

/* Overlapping filters, with the example topic check-config prints; the owner of a topic is the first route. */
static void test_filters_overlap(void)
{
	char ex[128];
	struct config *cfg = load_ok("routes = ( { topic = \"solar/{tenant}/{serial}/telemetry\"; },\n"
				     "            { preset = \"opendtu\"; tenant = \"acme\"; } );\n");

	CU_ASSERT(route_filters_overlap("solar/+/+/telemetry", "solar/+/#", ex, sizeof(ex)));
	CU_ASSERT_STRING_EQUAL(ex, "solar/x/x/telemetry");
	CU_ASSERT(route_filters_overlap("a/#", "a", ex, sizeof(ex)));
	CU_ASSERT(route_filters_overlap("+/events/rpc", "+/status/+", ex, sizeof(ex)) == false);
	CU_ASSERT(route_filters_overlap("tele/+/SENSOR", "telegraf/+/+", ex, sizeof(ex)) == false);
	CU_ASSERT(route_filters_overlap("a/+/c", "a/b/+", ex, sizeof(ex)));
	CU_ASSERT_STRING_EQUAL(ex, "a/b/c");
	CU_ASSERT_EQUAL(route_owner(cfg->routes, cfg->route_count, "solar/acme/S/telemetry", 22), 0);
	CU_ASSERT_EQUAL(route_owner(cfg->routes, cfg->route_count, "solar/S/0/power", 15), 1);
	config_free(cfg);
}

/* --- configuration ----------------------------------------------------------------------------------------- */

static void test_config_mistakes_name_the_route(void)
{
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; },\n { topic = \"b/{tenant}/{serial}\"; colour = 1; } );\n",
		"routes[1]: unknown setting 'colour'");
	load_refused("routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"csv\"; } );\n",
		     "routes[0]: unknown format");
	load_refused("routes = ( { preset = \"sma\"; tenant = \"a\"; } );\n",
		     "routes[0]: unknown preset 'sma'");
	load_refused("routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"value\"; } );\n",
		     "needs {point}");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{point+}/x\"; format = \"value\"; serial = \"S\"; } );\n",
		"must be the last level");
	load_refused("routes = ( { topic = \"a/{serial}\"; } );\n", "needs exactly one {tenant}");
	load_refused("routes = ( { topic = \"a/{tenant}/{serial}\"; tenant = \"x\"; } );\n",
		     "exactly one place");
	load_refused(
		"routes = ( { topic = \"a/{tenant}\"; format = \"influx\"; serial_tag = \"s\"; serial = \"S\"; } );\n",
		"exactly one place");
	load_refused(
		"routes = ( { topic = \"a/{tenant}\"; format = \"influx\"; precision = \"h\"; serial_tag = \"s\"; } );\n",
		"routes[0]: precision must be");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"t\"; } );\n",
		"time_field needs time_unit");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"t\";"
		" time_unit = \"rfc3339\"; timezone = \"Europe/Nowhere\"; } );\n",
		"routes[0]: timezone 'Europe/Nowhere'");
	load_refused("routes = ( { topic = \"a/{tenant}/{serial}\"; retained = \"drop\"; } );\n",
		     "routes[0]: retained must be");
	load_refused("routes = ( { topic = \"a/{tenant}/{serial}\"; ignore = [ \"a/#/b\" ]; } );\n",
		     "routes[0]: ignore[0] is not an MQTT topic filter");
	load_refused("routes = ( { topic = \"a/{tenant}/{serial}\"; prefix = \"x\"; } );\n",
		     "prefix is for presets");
	load_refused("routes = ( { topic = \"a/{tenant}/{serial}\"; precision = \"ms\"; } );\n",
		     "routes[0]: precision does not apply to format json");
	load_refused("routes = ( { preset = \"opendtu\"; tenant = \"a\"; timezone = \"UTC\"; } );\n",
		     "routes[0]: timezone does not apply to format value");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_unit = \"s\"; } );\n",
		"routes[0]: time_unit needs time_field");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"t\";"
		" time_unit = \"s\"; timezone = \"UTC\"; } );\n",
		"routes[0]: timezone applies to a time_field with time_unit = \"rfc3339\"");
}

static void test_config_route_options(void)
{
	struct config *cfg = load_ok(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"meta.t\";"
		" time_unit = \"ms\"; json_root = \"data\"; retained = \"ignore\"; ignore = [ \"a/+/+/LWT\", \"cmnd/#\" ]; } );\n");
	const struct route *r = &cfg->routes[0];
	struct result res;

	CU_ASSERT_TRUE(r->ignore_retained);
	CU_ASSERT_EQUAL(r->ignore_count, 2);
	CU_ASSERT_TRUE(route_ignores(r, "cmnd/x/POWER", 12));
	CU_ASSERT_TRUE(route_ignores(r, "cmnd", 4));
	CU_ASSERT_FALSE(route_ignores(r, "a/acme/S1", 9));
	res = run(cfg, "a/acme/S1",
		  "{\"meta\":{\"t\":1697551200123},\"data\":{\"p\":1,\"q\":{\"r\":2}},\"other\":5}");
	CU_ASSERT_EQUAL_FATAL(res.rc, 0);
	CU_ASSERT_EQUAL(res.out.count, 2);
	CU_ASSERT(sample_is(&res, 0, "p", 1, INT64_C(1697551200123000)));
	CU_ASSERT(sample_is(&res, 1, "q/r", 2, INT64_C(1697551200123000)));
	decode_clear(&res.out);
	expect_reject(cfg, "a/acme/S1", "{\"meta\":{\"t\":\"now\"},\"data\":{\"p\":1}}", REJECT_WRONG_TYPE,
		      "number");
	expect_reject(cfg, "a/acme/S1", "{\"data\":[1]}", REJECT_WRONG_TYPE, "object");
	config_free(cfg);
}


/* --- review findings: long names, empty and non-object payloads, long numbers, path steps, slim zones ------ */

#define KEY60 "k23456789012345678901234567890123456789012345678901234567890"
#define KEY64 KEY60 "1234"

/* A {point} that cannot prefix any name is refused, never dropped ("apower" was stored). */
static void test_flat_json_long_topic_point(void)
{
	struct config *cfg = load_ok(
		"routes = ( { topic = \"{tenant}/{serial}/status/{point}\"; format = \"flat_json\"; } );\n");
	struct result r;

	expect_reject(cfg, "t/s/status/" KEY64, "{\"apower\":1}", REJECT_INVALID_POINT_NAME,
		      "longer than 64");
	expect_reject(cfg, "t/s/status/" KEY64 "5", "{\"apower\":1}", REJECT_INVALID_POINT_NAME,
		      "longer than 64");
	expect_reject(cfg, "t/s/status/" KEY60 "12", "{\"apower\":1}", REJECT_INVALID_POINT_NAME,
		      "longer than 64");
	/* 60 + "/" + 3 = 64 characters still fit */
	r = run(cfg, "t/s/status/" KEY60, "{\"abc\":1}");
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(sample_is(&r, 0, KEY60 "/abc", 1, RECEIVED_US));
	decode_clear(&r.out);
	config_free(cfg);
}

/* A long key over an object without readings is not a point: it does not reject the message. */
static void test_flat_json_long_key_without_readings(void)
{
	struct config *cfg =
		load_ok("routes = ( { topic = \"f/{tenant}/{serial}\"; format = \"flat_json\"; } );\n");
	struct result r =
		run(cfg, "f/acme/S1", "{\"apower\":5,\"" KEY64 "\":{\"ssid\":\"home\",\"x\":{\"y\":null}}}");

	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_EQUAL(r.out.count, 1);
	CU_ASSERT(sample_is(&r, 0, "apower", 5, RECEIVED_US));
	decode_clear(&r.out);
	r = run(cfg, "f/acme/S1", "{\"" KEY60 "\":{\"" KEY60 "\":{\"ssid\":\"home\"}},\"apower\":5}");
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(sample_is(&r, 0, "apower", 5, RECEIVED_US));
	decode_clear(&r.out);
	expect_reject(cfg, "f/acme/S1", "{\"apower\":5,\"" KEY64 "\":{\"ssid\":\"home\",\"rssi\":-60}}",
		      REJECT_INVALID_POINT_NAME, "longer than 64");
	/* ... but a reading under it still is a name too long */
	expect_reject(cfg, "f/acme/S1",
		      "{\"apower\":5,\"" KEY60 "\":{\"ssid\":\"home\",\"x\":{\"rssi\":-60}}}",
		      REJECT_INVALID_POINT_NAME, "longer than 64");
	expect_reject(cfg, "f/acme/S1", "{\"" KEY64 "5\":1}", REJECT_INVALID_POINT_NAME, "longer than 64");
	config_free(cfg);
}

/* README: empty, whitespace-only, null and {"value": null} are no_value for value_json too. */
static void test_value_json_no_value(void)
{
	struct config *cfg = load_ok(
		"routes = ( { topic = \"N/{tenant}/{serial}/{point+}\"; format = \"value_json\"; } );\n");

	expect_ignored(cfg, "N/acme/S1/p", "", IGNORE_NO_VALUE);
	expect_ignored(cfg, "N/acme/S1/p", "  ", IGNORE_NO_VALUE);
	expect_ignored(cfg, "N/acme/S1/p", " \r\n\t", IGNORE_NO_VALUE);
	expect_ignored(cfg, "N/acme/S1/p", "null", IGNORE_NO_VALUE);
	expect_ignored(cfg, "N/acme/S1/p", " null\n", IGNORE_NO_VALUE);
	expect_ignored(cfg, "N/acme/S1/p", "{\"value\":null}", IGNORE_NO_VALUE);
	expect_reject(cfg, "N/acme/S1/p", "nul", REJECT_MALFORMED_JSON, "");
	expect_reject(cfg, "N/acme/S1/p", "\"  \"", REJECT_WRONG_TYPE, "object");
	expect_reject(cfg, "N/acme/S1/p", " \xff ", REJECT_INVALID_UTF8, "UTF-8");
	config_free(cfg);
}

/* A decimal longer than 64 characters is refused as such, not as "not a number". */
static void test_value_long_number(void)
{
	struct config *cfg = load_ok(value_conf);

	expect_reject(cfg, "v/acme/INV-1/p", "1." KEY60 "0000", REJECT_MALFORMED_PAYLOAD, "not a number");
	expect_reject(cfg, "v/acme/INV-1/p",
		      "1.000000000000000000000000000000000000000000000000000000000000000001",
		      REJECT_MALFORMED_PAYLOAD, "number text longer than 64 characters");
	/* non_numeric = "ignore" does not hide it: it is a number, only too long */
	expect_reject(cfg, "t/acme/INV-1/p",
		      "1.000000000000000000000000000000000000000000000000000000000000000001",
		      REJECT_MALFORMED_PAYLOAD, "number text longer than 64 characters");
	config_free(cfg);
}

/* A Shelly RPC frame is an object; anything else is the wrong type, not a status message. */
static void test_shelly_non_object(void)
{
	struct config *cfg = load_ok("routes = ( { preset = \"shelly\"; tenant = \"acme\"; } );\n");

	expect_reject(cfg, "shelly1/events/rpc", "42", REJECT_WRONG_TYPE, "object");
	expect_reject(cfg, "shelly1/events/rpc", "[1]", REJECT_WRONG_TYPE, "object");
	expect_reject(cfg, "shelly1/events/rpc", "\"NotifyStatus\"", REJECT_WRONG_TYPE, "object");
	expect_ignored(cfg, "shelly1/events/rpc", "{\"id\":1,\"result\":{}}", IGNORE_STATUS);
	expect_ignored(cfg, "shelly1/events/rpc", "{\"method\":\"NotifyEvent\",\"params\":{}}",
		       IGNORE_STATUS);
	config_free(cfg);
}

/* An empty device tag names no device: refused with a detail saying so. */
static void test_empty_device_tag(void)
{
	struct config *cfg = load_ok(
		"routes = ( { topic = \"tj/{tenant}/+\"; format = \"telegraf_json\"; serial_tag = \"host\"; } );\n");

	expect_reject(cfg, "tj/acme/x", "{\"name\":\"cpu\",\"tags\":{\"host\":\"\"},\"fields\":{\"a\":1}}",
		      REJECT_WRONG_TYPE, "tag 'host' naming the device is empty");
	expect_reject(cfg, "tj/acme/x",
		      "{\"metrics\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"h1\"},\"fields\":{\"a\":1}},"
		      "{\"name\":\"cpu\",\"tags\":{\"host\":\"\"},\"fields\":{\"a\":1}}]}",
		      REJECT_WRONG_TYPE, "line 2: tag 'host' naming the device is empty");
	config_free(cfg);
}

/* A time_field or json_root step longer than the decoder's key buffer is a configuration error. */
static void test_config_json_path_steps(void)
{
	struct config *cfg;

	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"meta." KEY64
			KEY64 "\"; time_unit = \"s\"; } );\n",
		"routes[0]: time_field 'meta.k2345");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"meta." KEY64
			KEY64 "\"; time_unit = \"s\"; } );\n",
		"...': each '.'-separated step must be 1 to 127 bytes");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; json_root = \"a..b\"; } );\n",
		"routes[0]: json_root 'a..b': each");
	load_refused(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"t.\";"
		" time_unit = \"s\"; } );\n",
		"routes[0]: time_field 't.': each");
	/* 127 bytes is fine, and found */
	cfg = load_ok(
		"routes = ( { topic = \"a/{tenant}/{serial}\"; format = \"flat_json\"; time_field = \"m." KEY64
			KEY60 "123\"; time_unit = \"s\"; } );\n");
	{
		struct result r =
			run(cfg, "a/acme/S1", "{\"p\":1,\"m\":{\"" KEY64 KEY60 "123\":1697551200}}");
		CU_ASSERT_EQUAL(r.rc, 0);
		CU_ASSERT(sample_is(&r, 0, "p", 1, T(1697551200)));
		decode_clear(&r.out);
	}
	config_free(cfg);
}

/* A preset whose topic is overridden: its ignore filters follow the topic, or the config says they cannot. */
static void test_config_preset_topic_override_ignores(void)
{
	struct config *cfg = load_ok(
		"routes = ( { preset = \"opendtu\"; tenant = \"acme\"; topic = \"home/solar/{serial}/{point+}\"; } );\n");

	CU_ASSERT_TRUE(route_ignores(&cfg->routes[0], "home/solar/114172220003/status/producing", 40));
	CU_ASSERT_TRUE(route_ignores(&cfg->routes[0], "home/solar/dtu/uptime", 21));
	CU_ASSERT_FALSE(route_ignores(&cfg->routes[0], "home/solar/114172220003/0/power", 31));
	CU_ASSERT_FALSE(route_ignores(&cfg->routes[0], "solar/dtu/uptime", 16));
	config_free(cfg);
	cfg = load_ok(
		"routes = ( { preset = \"shelly\"; tenant = \"acme\"; topic = \"shellies/{serial}/events/rpc\"; } );\n");
	CU_ASSERT_TRUE(route_ignores(&cfg->routes[0], "shellies/plug1/online", 21));
	config_free(cfg);
	/* an explicit prefix still wins */
	cfg = load_ok("routes = ( { preset = \"opendtu\"; tenant = \"acme\"; prefix = \"pv\";"
		      " topic = \"x/{serial}/{point+}\"; } );\n");
	CU_ASSERT_TRUE(route_ignores(&cfg->routes[0], "pv/dtu/uptime", 13));
	config_free(cfg);
	/* a layout of its own: the route must say where its status topics are */
	load_refused(
		"routes = ( { preset = \"opendtu\"; tenant = \"acme\"; topic = \"pv/{serial}/x/{point}\"; } );\n",
		"routes[0]: topic does not end like preset opendtu's");
	cfg = load_ok(
		"routes = ( { preset = \"opendtu\"; tenant = \"acme\"; topic = \"pv/{serial}/x/{point+}\";"
		" ignore = [ \"pv/+/x/status/#\" ]; } );\n");
	CU_ASSERT_TRUE(route_ignores(&cfg->routes[0], "pv/1/x/status/a", 15));
	config_free(cfg);
}

/* A slim TZif file (one transition, a DST rule in the footer): the unused rule is detected. */
static void write_tzif(const char *path, int64_t transition, const char *footer)
{
	unsigned char buf[256];
	size_t n = 0;
	FILE *f;

	for (int block = 0; block < 2; block++) {
		uint32_t timecnt = block ? 1 : 0, counts[6] = { 0, 0, 0, timecnt, 1, 4 };
		memset(buf + n, 0, 44);
		memcpy(buf + n, "TZif2", 5);
		for (int k = 0; k < 6; k++) {
			buf[n + 20 + k * 4 + 3] = (unsigned char)counts[k];
		}
		n += 44;
		if (timecnt) {
			for (int k = 0; k < 8; k++)
				buf[n + k] = (unsigned char)((uint64_t)transition >> (56 - 8 * k));
			n += 8;
			buf[n++] = 0; /* type index */
		}
		/* one type: +3600, not DST, abbreviation 0 */
		memcpy(buf + n, "\x00\x00\x0e\x10\x00\x00", 6);
		n += 6;
		memcpy(buf + n, "CET", 4);
		n += 4;
	}
	n += (size_t)snprintf((char *)buf + n, sizeof(buf) - n, "\n%s\n", footer);
	f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(buf, 1, n, f), n);
	fclose(f);
}

static void test_tz_slim_file(void)
{
	char dir[] = "/tmp/mqtt2pg-test-tz-XXXXXX", path[64], err[256];
	const char *old = getenv("TZDIR");
	char *saved = old ? strdup(old) : NULL;
	struct tz *tz = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Slim", dir);
	write_tzif(path, 946684800, "CET-1CEST,M3.5.0,M10.5.0/3");
	setenv("TZDIR", dir, 1);
	CU_ASSERT_EQUAL_FATAL(tz_load("Slim", &tz, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(tz_offset_at(tz, 1719828000), 3600); /* the documented limit: the last offset stays */
	CU_ASSERT_TRUE(tz_footer_unused(tz, 1795000000));
	CU_ASSERT_FALSE(tz_footer_unused(tz, 0)); /* transitions reach 10 years past 1970 */
	tz_free(tz);
	write_tzif(path, 946684800, "<+03>-3"); /* a fixed offset: nothing is lost */
	CU_ASSERT_EQUAL_FATAL(tz_load("Slim", &tz, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(tz_footer_unused(tz, 1795000000));
	tz_free(tz);
	unlink(path);
	rmdir(dir);
	if (saved)
		setenv("TZDIR", saved, 1);
	else
		unsetenv("TZDIR");
	free(saved);
	/* Debian's fat Europe/Berlin lists transitions to 2037: nothing to warn about in 2026 */
	CU_ASSERT_EQUAL_FATAL(tz_load("Europe/Berlin", &tz, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(tz_footer_unused(tz, 1795000000));
	tz_free(tz);
}


/* An earlier route's ignore list (tasmota: tele/+/STATE, LWT) must not swallow a later route's topic. */
static void test_ignore_list_stays_with_its_route(void)
{
	struct config *cfg =
		load_ok("routes = (\n"
			"  { preset = \"tasmota\"; tenant = \"acme\"; timezone = \"Europe/Berlin\"; },\n"
			"  { topic = \"tele/{serial}/STATE\"; format = \"flat_json\"; tenant = \"acme\"; }\n"
			");\n");
	struct route_match m;
	bool ignored;
	const struct route *r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	r = route_select(cfg->routes, cfg->route_count, "tele/plug1/STATE", 16, &m, &ignored);
	CU_ASSERT_PTR_EQUAL(r, &cfg->routes[1]);
	CU_ASSERT_FALSE(ignored);
	r = route_select(cfg->routes, cfg->route_count, "tele/plug1/SENSOR", 17, &m, &ignored);
	CU_ASSERT_PTR_EQUAL(r, &cfg->routes[0]);
	r = route_select(cfg->routes, cfg->route_count, "tele/plug1/LWT", 14, &m, &ignored);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_FALSE(ignored); /* under no route's subscription: not the preset's to claim */
	config_free(cfg);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_value_numbers),
		UNIT_TEST(test_value_not_numbers),
		UNIT_TEST(test_json_route_unchanged),
		UNIT_TEST(test_influx_old_collector),
		UNIT_TEST(test_influx_several_devices),
		UNIT_TEST(test_influx_mapping_options),
		UNIT_TEST(test_influx_rejections),
		UNIT_TEST(test_tz_berlin),
		UNIT_TEST(test_time_conversions),
		UNIT_TEST(test_preset_opendtu),
		UNIT_TEST(test_preset_ahoydtu),
		UNIT_TEST(test_preset_deye),
		UNIT_TEST(test_preset_victron),
		UNIT_TEST(test_preset_tasmota),
		UNIT_TEST(test_preset_shelly),
		UNIT_TEST(test_preset_telegraf),
		UNIT_TEST(test_config_mistakes_name_the_route),
		UNIT_TEST(test_config_route_options),
		UNIT_TEST(test_flat_json_long_topic_point),
		UNIT_TEST(test_flat_json_long_key_without_readings),
		UNIT_TEST(test_value_json_no_value),
		UNIT_TEST(test_value_long_number),
		UNIT_TEST(test_shelly_non_object),
		UNIT_TEST(test_empty_device_tag),
		UNIT_TEST(test_config_json_path_steps),
		UNIT_TEST(test_config_preset_topic_override_ignores),
		UNIT_TEST(test_tz_slim_file),
		UNIT_TEST(test_ignore_list_stays_with_its_route),
		UNIT_TEST(test_arrays_named_by_index),
		UNIT_TEST(test_numeric_strings_and_points_map),
		UNIT_TEST(test_ignore_points_extend_and_allow_list),
		UNIT_TEST(test_format_auto_and_measurements),
		UNIT_TEST(test_filters_overlap),
	};

	return unit_run("formats", NULL, NULL, tests, UNIT_COUNT(tests));
}
