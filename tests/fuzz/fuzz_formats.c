// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_formats: every route format but the JSON envelope (formats.c: value, value_json, influx, flat_json,
 * shelly_rpc, telegraf_json), behind route_match with {point}/{point+}, fixed tenants and serials, as ingest.c
 * chains them.
 *
 * Input: one byte choosing the route, then PAYLOAD or TOPIC NUL PAYLOAD (a NUL within the first 256 bytes
 * splits them). Topic and payload are exact-size copies, never NUL-terminated. A topic the route does not
 * match is replaced by one it does. Properties:
 *  - the result is 0 (samples), 1 (ignored, with a reason) or -1 (a reason a decoder may give, a
 *    NUL-terminated detail); empty, oversized and non-UTF-8 payloads are never accepted;
 *  - every sample has a point name of 1..64 characters of the README's alphabet, a finite value and a time in
 *    years 1..9999;
 *  - with devices, they are non-empty, each with a serial of 1..64 bytes, their samples contiguous and together
 *    exactly all samples;
 *  - decoding is deterministic: the same input, decoded again into the same (reused) output, gives the same.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "payload/formats.h"
#include "fuzz_util.h"
#include "route.h"
#include "util/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BYTES   4096
#define RECEIVED_US INT64_C(1795000000000000)
#define MIN_US	    (INT64_C(-62135596800) * 1000000)
#define MAX_US	    (INT64_C(253402300799) * 1000000 + 999999)
#define ROUTES	    8

static struct route routes[ROUTES];
static const char *const canned[ROUTES] = { "v/acme/INV-1/0/power",
					    "N/e0ff50a097c0/system/0/Dc/Battery/Voltage",
					    "lp/acme",
					    "lq/acme/INV-1",
					    "tele/plug/SENSOR",
					    "shellyplus1pm-a8/events/rpc",
					    "tj/acme/x",
					    "au/acme" };

static void set(struct route *r, const char *key, const char *value)
{
	char err[160];
	if (lp_mapping_set(&r->payload.influx, key, value, err, sizeof(err)) != 0)
		abort();
}

static void setup(void)
{
	static const struct {
		const char *topic;
		enum route_format format;
	} spec[ROUTES] = { { "v/{tenant}/{serial}/{point+}", ROUTE_FORMAT_VALUE },
			   { "N/{serial}/{point+}", ROUTE_FORMAT_VALUE_JSON },
			   { "lp/{tenant}", ROUTE_FORMAT_INFLUX },
			   { "lq/{tenant}/{serial}", ROUTE_FORMAT_INFLUX },
			   { "tele/{serial}/SENSOR", ROUTE_FORMAT_FLAT_JSON },
			   { "{serial}/events/rpc", ROUTE_FORMAT_SHELLY_RPC },
			   { "tj/{tenant}/+", ROUTE_FORMAT_TELEGRAF_JSON },
			   { "au/{tenant}", ROUTE_FORMAT_AUTO } };
	char err[256];

	for (int i = 0; i < ROUTES; i++)
		if (!route_parse_template(spec[i].topic, spec[i].format, &routes[i], err, sizeof(err)))
			abort();
	routes[1].tenant = strdup("acme");
	routes[1].payload.ignore_non_numeric = true;
	set(&routes[2], "serial_tag", "serial");
	set(&routes[3], "point", "{measurement}.{tag:ch}/{field}");
	set(&routes[3], "precision", "s");
	set(&routes[3], "strings", "ignore");
	routes[4].tenant = strdup("acme");
	routes[4].payload.time_field = strdup("Time");
	routes[4].payload.time_unit = ROUTE_TIME_RFC3339;
	if (tz_load("Europe/Berlin", &routes[4].payload.timezone, err, sizeof(err)) != 0)
		routes[4].payload.timezone =
			NULL; /* no tz database: zone-less times are rejected, still fuzzed */
	routes[5].tenant = strdup("acme");
	set(&routes[6], "serial_tag", "host");
	set(&routes[6], "point", "{measurement}.{field}");
	set(&routes[6], "precision", "ms");
	/* Issue 15's value options: strings as numbers, renames, skips and allow-lists, both serializers. */
	routes[4].payload.numeric_strings = true;
	routes[4].payload.points_map = calloc(2, sizeof(char *));
	routes[4].payload.points_map[0] = strdup("Total_AC_Output_Power(Active)");
	routes[4].payload.points_map[1] = strdup("ac_power");
	routes[4].payload.points_map_count = 1;
	route_list_add(&routes[4].payload.ignore_points, &routes[4].payload.ignore_points_count, "+/id");
	set(&routes[7], "serial_tag", "name");
	set(&routes[7], "strings", "ignore");
	routes[7].payload.booleans = true;
	route_list_add(&routes[7].payload.measurements, &routes[7].payload.measurements_count, "modbus");
	route_list_add(&routes[7].payload.points, &routes[7].payload.points_count, "#");
	for (int i = 0; i < ROUTES; i++)
		if (!route_check(&routes[i], err, sizeof(err)))
			abort();
}

static bool reason_from_decoder(enum reject_reason r)
{
	switch (r) {
	case REJECT_EMPTY_PAYLOAD:
	case REJECT_OVERSIZED_PAYLOAD:
	case REJECT_INVALID_UTF8:
	case REJECT_MALFORMED_JSON:
	case REJECT_MALFORMED_PAYLOAD:
	case REJECT_WRONG_TYPE:
	case REJECT_BAD_TIMESTAMP:
	case REJECT_NON_FINITE_VALUE:
	case REJECT_NO_MEASUREMENTS:
	case REJECT_INVALID_POINT_NAME:
		return true;
	default:
		return false;
	}
}


static void check(int rc, const struct decoded_message *out, const struct decode_error *err,
		  const char *payload, size_t len)
{
	FUZZ_CHECK(rc >= -1 && rc <= 1, "rc %d", rc);
	if (rc < 0) {
		FUZZ_CHECK(reason_from_decoder(err->reason), "reason %s", reject_reason_name(err->reason));
		FUZZ_CHECK(memchr(err->detail, '\0', sizeof(err->detail)) != NULL, "detail not terminated");
		return;
	}
	FUZZ_CHECK(len <= MAX_BYTES, "oversized payload of %zu bytes accepted", len);
	FUZZ_CHECK(ref_is_utf8(payload, len), "payload that is not UTF-8 accepted");
	if (rc == 1) {
		FUZZ_CHECK(out->ignored > IGNORE_NONE && out->ignored < IGNORE_REASON_COUNT, "ignored %d",
			   out->ignored);
		return;
	}
	FUZZ_CHECK(len > 0 && out->count > 0, "accepted with %zu samples", out->count);
	for (size_t i = 0; i < out->count; i++)
		FUZZ_CHECK(fuzz_point_name_ok(out->samples[i].point) && isfinite(out->samples[i].value) &&
				   out->samples[i].time_us >= MIN_US && out->samples[i].time_us <= MAX_US,
			   "bad sample %zu '%.70s'", i, out->samples[i].point);
	if (out->device_count > 0) {
		size_t next = 0;
		for (size_t d = 0; d < out->device_count; d++) {
			size_t n = strnlen(out->devices[d].serial, DECODE_MAX_SERIAL + 1);
			FUZZ_CHECK(n >= 1 && n <= DECODE_MAX_SERIAL && out->devices[d].count > 0 &&
					   out->devices[d].first == next,
				   "bad device %zu", d);
			next += out->devices[d].count;
		}
		FUZZ_CHECK(next == out->count, "devices cover %zu of %zu samples", next, out->count);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static struct decoded_message out;
	const struct route *r;
	const uint8_t *nul;
	char *topic, *payload;
	size_t topic_len, payload_len;
	struct route_match m;
	struct decode_error err = { 0 };
	int rc, again;
	size_t count;

	if (!ready) {
		setup();
		ready = true;
	}
	if (size == 0)
		return 0;
	r = &routes[data[0] % ROUTES];
	data++;
	size--;
	nul = memchr(data, '\0', size < 256 ? size : 256);
	if (nul) {
		topic_len = (size_t)(nul - data);
		topic = fuzz_copy(data, topic_len);
		payload_len = size - topic_len - 1;
		payload = fuzz_copy(nul + 1, payload_len);
	} else {
		topic_len = 0;
		topic = fuzz_copy(data, 0);
		payload_len = size;
		payload = fuzz_copy(data, size);
	}
	if (!route_match(r, topic, topic_len, &m)) {
		free(topic);
		topic_len = strlen(canned[r - routes]);
		topic = fuzz_copy((const uint8_t *)canned[r - routes], topic_len);
		FUZZ_CHECK(route_match(r, topic, topic_len, &m), "canned topic %s", canned[r - routes]);
	}
	rc = formats_decode(r->format, &r->payload, payload, payload_len, &m, RECEIVED_US, MAX_BYTES, &out,
			    &err);
	check(rc, &out, &err, payload, payload_len);
	count = out.count;
	again = formats_decode(r->format, &r->payload, payload, payload_len, &m, RECEIVED_US, MAX_BYTES, &out,
			       &err);
	FUZZ_CHECK(again == rc && (rc != 0 || out.count == count), "second decode differs: %d/%d", rc, again);
	free(topic);
	free(payload);
	return 0;
}
