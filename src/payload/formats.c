// SPDX-License-Identifier: Apache-2.0
/*
 * formats: the decoders for every route format but our JSON envelope (see formats.h for each format's rules).
 * They share decode.c's byte checks and strict JSON parse, lineproto.c's reader and mapping, and one rule from
 * the envelope: a message is accepted whole or rejected whole, and a number is never invented (a "null", an
 * empty payload or a text is not a 0).
 */
#include "payload/formats.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"
#include "payload/timeparse.h"
#include "util/tz.h"
#include "util/xalloc.h"

#define US_PER_SEC	INT64_C(1000000)
#define MIN_US		(INT64_C(-62135596800) * US_PER_SEC)
#define MAX_US		(INT64_C(253402300799) * US_PER_SEC + 999999)
/* A one-value payload longer than this is not a number anyone sends (and strtod gets a bounded copy). */
#define MAX_NUMBER_TEXT 64

static int ignored(struct decoded_message *out, enum ignore_reason reason)
{
	out->ignored = reason;
	return 1;
}

/* The size and UTF-8 checks every text format starts with; an empty payload is the caller's business. */
static int check_bytes(const char *payload, size_t len, size_t max_bytes, struct decode_error *err)
{
	if (len > max_bytes)
		return decode_fail(err, REJECT_OVERSIZED_PAYLOAD,
				   "payload of %zu bytes exceeds the limit of %zu", len, max_bytes);
	if (!text_is_utf8(payload, len))
		return decode_fail(err, REJECT_INVALID_UTF8,
				   "payload is not valid UTF-8 text (or contains NUL)");
	return 0;
}

/* --- times ------------------------------------------------------------------------------------------- */

static enum lp_precision precision_of(enum route_time_unit unit)
{
	switch (unit) {
	case ROUTE_TIME_MS:
		return LP_PRECISION_MS;
	case ROUTE_TIME_US:
		return LP_PRECISION_US;
	case ROUTE_TIME_NS:
		return LP_PRECISION_NS;
	default:
		return LP_PRECISION_S;
	}
}

bool formats_time_number(double value, enum route_time_unit unit, int64_t *out_us)
{
	if (!isfinite(value) || unit == ROUTE_TIME_RFC3339)
		return false;
	/* Whole numbers are converted exactly; a fraction is allowed for seconds only (Shelly's "ts"). */
	if (value == floor(value) && fabs(value) < 9.0e18)
		return lp_time_to_us((int64_t)value, precision_of(unit), out_us);
	return unit == ROUTE_TIME_S && timeparse_epoch_seconds(value, out_us);
}

bool formats_time_text(const char *text, size_t len, const struct tz *tz, int64_t *out_us)
{
	char zoned[48];
	int64_t local_us, local_sec, utc_us;

	if (timeparse_rfc3339(text, len, out_us))
		return true;
	if (!tz || len + 1 >= sizeof(zoned))
		return false;
	/* A date-time without a zone is read as UTC, then moved by the zone's offset at that wall-clock time. */
	memcpy(zoned, text, len);
	zoned[len] = 'Z';
	if (!timeparse_rfc3339(zoned, len + 1, &local_us))
		return false;
	local_sec = local_us >= 0 ? local_us / US_PER_SEC : -((-local_us + US_PER_SEC - 1) / US_PER_SEC);
	utc_us = tz_local_to_utc(tz, local_sec) * US_PER_SEC + (local_us - local_sec * US_PER_SEC);
	if (utc_us < MIN_US || utc_us > MAX_US)
		return false;
	*out_us = utc_us;
	return true;
}

/* A JSON time member in the route's unit. */
static int json_time(const struct payload_options *o, const cJSON *node, enum route_time_unit unit,
		     int64_t *out_us, struct decode_error *err)
{
	if (unit == ROUTE_TIME_RFC3339) {
		if (!cJSON_IsString(node))
			return decode_fail(err, REJECT_WRONG_TYPE, "time member must be an RFC 3339 string");
		if (!formats_time_text(node->valuestring, strlen(node->valuestring), o->timezone, out_us))
			return decode_fail(err, REJECT_BAD_TIMESTAMP,
					   "time '%.40s' is not an RFC 3339 date-time%s", node->valuestring,
					   o->timezone ? "" : " with a zone (no timezone configured)");
		return 0;
	}
	if (!cJSON_IsNumber(node))
		return decode_fail(err, REJECT_WRONG_TYPE, "time member must be a number of epoch units");
	if (!formats_time_number(node->valuedouble, unit, out_us))
		return decode_fail(err, REJECT_BAD_TIMESTAMP, "epoch time %.17g is out of range or not whole",
				   node->valuedouble);
	return 0;
}

/* The member at a dotted path ("params.ts"); NULL if any step is missing or not an object. config.c refuses
 * a path with a step longer than the key buffer, so a NULL here is always "not in this payload". */
static const cJSON *json_path(const cJSON *node, const char *path)
{
	char key[PAYLOAD_MAX_PATH_STEP + 1];

	while (node && *path) {
		size_t n = strcspn(path, ".");
		if (n >= sizeof(key) || !cJSON_IsObject(node))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		node = cJSON_GetObjectItemCaseSensitive(node, key);
		path += n + (path[n] == '.');
	}
	return node;
}

/* --- one value per topic ----------------------------------------------------------------------------- */

/* The topic's {point} as a C string for decode_emit; longer than a point name is refused. */
static int topic_point(const struct route_match *m, char name[DECODE_MAX_POINT_NAME + 1],
		       struct decode_error *err)
{
	if (m->point.len > DECODE_MAX_POINT_NAME)
		return decode_fail(err, REJECT_INVALID_POINT_NAME,
				   "point from the topic is longer than %d characters",
				   DECODE_MAX_POINT_NAME);
	memcpy(name, m->point.ptr, m->point.len);
	name[m->point.len] = '\0';
	return 0;
}

/*
 * The end of a decode that emitted nothing: values that were there and skipped on purpose (null, boolean,
 * ignored or unlisted point, measurement) make it "ignored"; text alone keeps the format's verdict
 * (no_measurements, or non_numeric), as before strings were counted.
 */
static bool any_skipped(const struct decoded_message *out)
{
	for (int k = 0; k < SKIP_REASON_COUNT; k++)
		if (k != SKIP_STRING && out->skipped[k] > 0)
			return true;
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool text_is(const char *p, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(p, word, n) == 0;
}

/* [+-](digits[.digits*] | .digits)([eE][+-]digits): a decimal number, nothing else. */
static bool number_grammar(const char *p, size_t n)
{
	size_t i = 0, whole = 0, frac = 0;

	if (i < n && (p[i] == '-' || p[i] == '+'))
		i++;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		i++, whole++;
	if (i < n && p[i] == '.') {
		i++;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++, frac++;
	}
	if (whole + frac == 0)
		return false;
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		size_t digits = 0;
		i++;
		if (i < n && (p[i] == '-' || p[i] == '+'))
			i++;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++, digits++;
		if (digits == 0)
			return false;
	}
	return i == n;
}

static bool spells_non_finite(const char *p, size_t n)
{
	char lower[12];

	if (n > 0 && (p[0] == '-' || p[0] == '+'))
		p++, n--;
	if (n == 0 || n >= sizeof(lower))
		return false;
	for (size_t i = 0; i < n; i++)
		lower[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
	return text_is(lower, n, "nan") || text_is(lower, n, "inf") || text_is(lower, n, "infinity");
}

static int decode_value(const struct payload_options *o, const char *payload, size_t len,
			const struct route_match *m, int64_t received_us, size_t max_bytes,
			struct decoded_message *out, struct decode_error *err)
{
	const char *p = payload, *end = payload + len;
	char number[MAX_NUMBER_TEXT + 1], name[DECODE_MAX_POINT_NAME + 1];
	double value;
	size_t n;

	if (check_bytes(payload, len, max_bytes, err) < 0)
		return -1;
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	n = (size_t)(end - p);
	if (n == 0 || text_is(p, n, "null"))
		return ignored(out, IGNORE_NO_VALUE); /* empty: also how a retained message is cleared */
	if (text_is(p, n, "true") || text_is(p, n, "false")) {
		if (!o->booleans) {
			out->skipped[SKIP_BOOLEAN]++;
			return ignored(out, IGNORE_SKIPPED);
		}
		value = p[0] == 't' ? 1.0 : 0.0;
	} else if (number_grammar(p, n)) {
		if (n > MAX_NUMBER_TEXT)
			return decode_fail(err, REJECT_MALFORMED_PAYLOAD,
					   "number text longer than %d characters", MAX_NUMBER_TEXT);
		memcpy(number, p, n);
		number[n] = '\0';
		value = strtod(number, NULL);
		if (!isfinite(value))
			return decode_fail(err, REJECT_NON_FINITE_VALUE,
					   "value %.64s is beyond the range of a double", number);
	} else if (spells_non_finite(p, n)) {
		return decode_fail(err, REJECT_NON_FINITE_VALUE, "value is not a finite number");
	} else if (o->ignore_non_numeric) {
		return ignored(out, IGNORE_NON_NUMERIC);
	} else {
		return decode_fail(err, REJECT_MALFORMED_PAYLOAD,
				   "payload is not a number (nor true, false or null)");
	}
	if (topic_point(m, name, err) < 0 || decode_emit(o, name, value, received_us, out, err) < 0)
		return -1;
	return out->count == 0 ? ignored(out, IGNORE_SKIPPED) : 0;
}

/* {"value": X}: Victron Venus OS dbus-mqtt wraps every D-Bus value so. */
static int decode_value_json(const struct payload_options *o, const char *payload, size_t len,
			     const struct route_match *m, int64_t received_us, size_t max_bytes,
			     struct decoded_message *out, struct decode_error *err)
{
	const char *p = payload, *end = payload + len;
	cJSON *root;
	const cJSON *v;
	int rc = -1;

	/* As for value: empty, only whitespace or a bare null is "no value" (README), not a JSON error. */
	if (check_bytes(payload, len, max_bytes, err) < 0)
		return -1;
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	if (p == end || text_is(p, (size_t)(end - p), "null"))
		return ignored(out, IGNORE_NO_VALUE);
	root = decode_json_root(payload, len, max_bytes, err);
	if (!root)
		return -1;
	v = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "value") : NULL;
	if (!v) {
		rc = decode_fail(err, REJECT_WRONG_TYPE, "payload must be an object with a \"value\" member");
	} else if (cJSON_IsNull(v)) {
		rc = ignored(out, IGNORE_NO_VALUE);
	} else if (cJSON_IsNumber(v) || cJSON_IsBool(v) || (cJSON_IsString(v) && o->numeric_strings)) {
		char name[DECODE_MAX_POINT_NAME + 1];
		double value;
		int got = decode_leaf_value(o, v, "value", &value, out, err);
		if (got < 0 || (got == 1 && (topic_point(m, name, err) < 0 ||
					     decode_emit(o, name, value, received_us, out, err) < 0)))
			rc = -1;
		else if (out->count == 0 && any_skipped(out))
			rc = ignored(out, IGNORE_SKIPPED);
		else if (out->count == 0)
			rc = o->ignore_non_numeric ?
				     ignored(out, IGNORE_NON_NUMERIC) :
				     decode_fail(err, REJECT_WRONG_TYPE, "\"value\" is not a number");
		else
			rc = 0;
	} else if (o->ignore_non_numeric) {
		rc = ignored(out, IGNORE_NON_NUMERIC);
	} else {
		rc = decode_fail(err, REJECT_WRONG_TYPE, "\"value\" is not a number");
	}
	cJSON_Delete(root);
	return rc;
}

/* --- JSON objects flattened to points ---------------------------------------------------------------- */

/* What a flattening walk needs besides the node and the name so far. */
struct flat_walk {
	const struct payload_options *o;
	const cJSON *skip; /* the time member */
	int64_t time_us;
	struct decoded_message *out;
	struct decode_error *err;
};

static bool is_container(const cJSON *c)
{
	return cJSON_IsObject(c) || cJSON_IsArray(c);
}

/* Whether obj holds a leaf that could be a reading (number, boolean, string, null) at any depth. */
static bool has_leaf(const cJSON *obj, const cJSON *skip)
{
	for (const cJSON *c = obj->child; c; c = c->next)
		if (c != skip && (!is_container(c) || has_leaf(c, skip)))
			return true;
	return false;
}

/*
 * Appends every leaf of obj (an object, or an array whose elements are named 0, 1, ...) as a sample named
 * prefix + path ("ENERGY/Total", "ENERGY/Power/0"), skipping the time member. A leaf is a reading as
 * decode_leaf_value says (null, booleans, strings skipped and counted) and as the route's point options say
 * (decode_emit). Names are built in a buffer of NAME_CAP bytes: a source name may be longer than a point name
 * when points_map renames it; a source name longer than the buffer rejects the message (invalid_point_name),
 * except over an object with no leaf at all ({"<long key>":{}}), which names nothing.
 */
#define NAME_CAP 256

static int flatten(const struct flat_walk *w, const cJSON *obj, char *name, size_t name_len)
{
	size_t index = 0;

	for (const cJSON *c = obj->child; c; c = c->next, index++) {
		char key_buf[24];
		const char *key = c->string;
		size_t key_len;
		double value;
		int got;

		if (cJSON_IsArray(obj)) {
			snprintf(key_buf, sizeof(key_buf), "%zu", index);
			key = key_buf;
		}
		key_len = strlen(key);
		if (c == w->skip)
			continue;
		if (name_len + key_len + 2 > NAME_CAP) {
			if (is_container(c) && !has_leaf(c, w->skip))
				continue;
			return decode_fail(
				w->err, REJECT_INVALID_POINT_NAME,
				"point name '%.*s%.32s' is longer than %d characters",
				(int)(name_len < DECODE_MAX_POINT_NAME ? name_len : DECODE_MAX_POINT_NAME),
				name, key, DECODE_MAX_POINT_NAME);
		}
		memcpy(name + name_len, key, key_len + 1);
		if (is_container(c)) {
			name[name_len + key_len] = '/';
			name[name_len + key_len + 1] = '\0';
			if (flatten(w, c, name, name_len + key_len + 1) < 0)
				return -1;
			continue;
		}
		got = decode_leaf_value(w->o, c, name, &value, w->out, w->err);
		if (got < 0 || (got == 1 && decode_emit(w->o, name, value, w->time_us, w->out, w->err) < 0))
			return -1;
	}
	return 0;
}

/*
 * The topic's {point} as the prefix of every flattened name ("switch:0/"), or "" without one; its length in
 * *prefix_len. A {point} longer than a point name is refused here (it used to be dropped from the names); a
 * prefix that leaves no room for a key is refused by flatten when a reading would carry it.
 */
static int name_prefix(const struct route_match *m, char name[NAME_CAP], size_t *prefix_len,
		       struct decode_error *err)
{
	*prefix_len = 0;
	if (m->point.len == 0)
		return 0;
	if (m->point.len > DECODE_MAX_POINT_NAME)
		return decode_fail(err, REJECT_INVALID_POINT_NAME,
				   "point from the topic is longer than %d characters",
				   DECODE_MAX_POINT_NAME);
	memcpy(name, m->point.ptr, m->point.len);
	name[m->point.len] = '/';
	name[m->point.len + 1] = '\0';
	*prefix_len = m->point.len + 1;
	return 0;
}

static int decode_flat_json(const struct payload_options *o, const char *payload, size_t len,
			    const struct route_match *m, int64_t received_us, size_t max_bytes,
			    struct decoded_message *out, struct decode_error *err)
{
	char name[NAME_CAP] = "";
	const cJSON *obj, *time_node = NULL;
	int64_t time_us = received_us;
	size_t prefix_len;
	cJSON *root = decode_json_root(payload, len, max_bytes, err);
	int rc = -1;

	if (!root)
		return -1;
	obj = o->json_root ? json_path(root, o->json_root) : root;
	if (!cJSON_IsObject(obj)) {
		rc = decode_fail(err, REJECT_WRONG_TYPE, "payload%s%s must be a JSON object",
				 o->json_root ? " member " : "", o->json_root ? o->json_root : "");
		goto out;
	}
	if (o->time_field && (time_node = json_path(root, o->time_field)) != NULL &&
	    json_time(o, time_node, o->time_unit, &time_us, err) < 0)
		goto out;
	if (name_prefix(m, name, &prefix_len, err) < 0 ||
	    flatten(&(struct flat_walk){ o, time_node, time_us, out, err }, obj, name, prefix_len) < 0)
		goto out;
	if (out->count == 0 && any_skipped(out) && !o->ignore_non_numeric)
		rc = ignored(out, IGNORE_SKIPPED);
	else if (out->count == 0)
		rc = o->ignore_non_numeric ?
			     ignored(out, IGNORE_NON_NUMERIC) :
			     decode_fail(err, REJECT_NO_MEASUREMENTS, "no number or boolean in the object");
	else
		rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/*
 * Shelly Gen2: "<id>/events/rpc" carries {"src":..,"method":"NotifyStatus","params":{"ts":..,"switch:0":{..}}}.
 * Shelly's Gen2 API, "Notifications": https://shelly-api-docs.shelly.cloud/gen2/General/Notifications
 */
static int decode_shelly_rpc(const struct payload_options *o, const char *payload, size_t len,
			     const struct route_match *m, int64_t received_us, size_t max_bytes,
			     struct decoded_message *out, struct decode_error *err)
{
	char name[NAME_CAP] = "";
	const cJSON *method, *params, *ts;
	int64_t time_us = received_us;
	size_t prefix_len;
	cJSON *root = decode_json_root(payload, len, max_bytes, err);
	int rc = -1;

	if (!root)
		return -1;
	if (!cJSON_IsObject(root)) {
		rc = decode_fail(err, REJECT_WRONG_TYPE,
				 "payload must be a Shelly RPC frame (a JSON object)");
		goto out;
	}
	method = cJSON_GetObjectItemCaseSensitive(root, "method");
	if (!cJSON_IsString(method) || (strcmp(method->valuestring, "NotifyStatus") != 0 &&
					strcmp(method->valuestring, "NotifyFullStatus") != 0)) {
		rc = ignored(out, IGNORE_STATUS); /* NotifyEvent, responses: not readings */
		goto out;
	}
	params = cJSON_GetObjectItemCaseSensitive(root, "params");
	if (!cJSON_IsObject(params)) {
		rc = decode_fail(err, REJECT_WRONG_TYPE, "%s without a \"params\" object",
				 method->valuestring);
		goto out;
	}
	ts = cJSON_GetObjectItemCaseSensitive(params, "ts");
	if (ts && json_time(o, ts, ROUTE_TIME_S, &time_us, err) < 0)
		goto out;
	if (name_prefix(m, name, &prefix_len, err) < 0 ||
	    flatten(&(struct flat_walk){ o, ts, time_us, out, err }, params, name, prefix_len) < 0)
		goto out;
	rc = out->count == 0 ? ignored(out, any_skipped(out) ? IGNORE_SKIPPED : IGNORE_NON_NUMERIC) : 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* --- line protocol and Telegraf JSON: lines of possibly several devices --------------------------------- */

static size_t device_index(struct decoded_message *out, struct lp_span serial)
{
	for (size_t i = 0; i < out->device_count; i++)
		if (strlen(out->devices[i].serial) == serial.len &&
		    memcmp(out->devices[i].serial, serial.ptr, serial.len) == 0)
			return i;
	if (out->device_count == out->device_capacity) {
		out->device_capacity = out->device_capacity ? out->device_capacity * 2 : 4;
		out->devices = xrealloc(out->devices, out->device_capacity * sizeof(*out->devices));
	}
	memcpy(out->devices[out->device_count].serial, serial.ptr, serial.len);
	out->devices[out->device_count].serial[serial.len] = '\0';
	out->devices[out->device_count].first = 0;
	out->devices[out->device_count].count = 0;
	return out->device_count++;
}

/* Maps one parsed line to samples (and, with a serial tag, to its device). */
static int emit_line(const struct payload_options *o, const struct lp_line *line, int64_t received_us,
		     struct decoded_message *out, struct decode_error *err)
{
	struct lp_error lerr;
	struct lp_span serial;
	size_t device = 0;
	int64_t time_us;

	if (!payload_options_measurement_ok(o, line->measurement.ptr, line->measurement.len)) {
		out->skipped[SKIP_MEASUREMENT] += (uint32_t)line->field_count;
		return 0;
	}
	if (lp_map_serial(line, &o->influx, &serial, &lerr) < 0)
		return decode_fail(err, REJECT_WRONG_TYPE, "%s", lerr.message);
	if (o->influx.serial_tag[0]) {
		if (serial.len > DECODE_MAX_SERIAL || memchr(serial.ptr, '\0', serial.len))
			return decode_fail(err, REJECT_WRONG_TYPE,
					   "line %zu: device tag value is longer than %d bytes",
					   line->line_no, DECODE_MAX_SERIAL);
		device = device_index(out, serial);
	}
	if (lp_map_time(line, &o->influx, received_us, &time_us, &lerr) < 0)
		return decode_fail(err, REJECT_BAD_TIMESTAMP, "%s", lerr.message);
	for (size_t i = 0; i < line->field_count; i++) {
		char point[LP_MAX_POINT_NAME + 1];
		double value;
		size_t before = out->count;
		int rc;

		if (line->fields[i].type == LP_FIELD_BOOL && !o->booleans) {
			out->skipped[SKIP_BOOLEAN]++;
			continue;
		}
		rc = lp_map_field(line, i, &o->influx, point, &value, &lerr);
		if (rc < 0)
			return decode_fail(err,
					   lerr.kind == LP_ERR_STRING ? REJECT_WRONG_TYPE :
									REJECT_INVALID_POINT_NAME,
					   "%s", lerr.message);
		if (rc == 0) {
			out->skipped[SKIP_STRING]++; /* a string field under strings = "ignore" */
			continue;
		}
		if (decode_emit(o, point, value, time_us, out, err) < 0)
			return -1;
		if (out->count == before)
			continue; /* skipped by the route's point options */
		if (out->device_of_capacity < out->capacity) {
			out->device_of_capacity = out->capacity;
			out->device_of =
				xrealloc(out->device_of, out->device_of_capacity * sizeof(*out->device_of));
		}
		out->device_of[out->count - 1] = (uint32_t)device;
	}
	return 0;
}

/* Makes each device's samples contiguous, in their original order (a stable counting sort). */
static void group_by_device(struct decoded_message *out)
{
	size_t *next = xcalloc(out->device_count, sizeof(*next));
	struct sample *sorted = xmalloc((out->count ? out->count : 1) * sizeof(*sorted));
	size_t at = 0;

	for (size_t i = 0; i < out->count; i++)
		out->devices[out->device_of[i]].count++;
	for (size_t d = 0; d < out->device_count; d++) {
		out->devices[d].first = at;
		next[d] = at;
		at += out->devices[d].count;
	}
	for (size_t i = 0; i < out->count; i++)
		sorted[next[out->device_of[i]]++] = out->samples[i];
	memcpy(out->samples, sorted, out->count * sizeof(*sorted));
	free(sorted);
	free(next);
}

/* The end of a multi-line decode: no readings is an error; devices grouped; devices without samples go. */
static int finish_lines(const struct payload_options *o, struct decoded_message *out,
			struct decode_error *err)
{
	size_t kept = 0;

	if (out->count == 0 && any_skipped(out))
		return ignored(out, IGNORE_SKIPPED);
	if (out->count == 0)
		return decode_fail(err, REJECT_NO_MEASUREMENTS, "no numeric fields");
	if (!o->influx.serial_tag[0])
		return 0;
	group_by_device(out);
	for (size_t d = 0; d < out->device_count; d++)
		if (out->devices[d].count > 0)
			out->devices[kept++] = out->devices[d];
	out->device_count = kept;
	return 0;
}

static int decode_influx(const struct payload_options *o, const char *payload, size_t len,
			 int64_t received_us, size_t max_bytes, struct decoded_message *out,
			 struct decode_error *err)
{
	size_t pos = 0, line_no = 0;
	struct lp_line line;
	struct lp_error lerr;
	int rc;

	if (len == 0)
		return decode_fail(err, REJECT_EMPTY_PAYLOAD, "empty payload");
	if (check_bytes(payload, len, max_bytes, err) < 0)
		return -1;
	while ((rc = lp_next(payload, len, &pos, &line_no, &out->lp, &line, &lerr)) != 0) {
		if (rc < 0)
			return decode_fail(err, REJECT_MALFORMED_PAYLOAD, "line protocol: %s", lerr.message);
		if (emit_line(o, &line, received_us, out, err) < 0)
			return -1;
	}
	return finish_lines(o, out, err);
}

/* One Telegraf JSON metric as a line: {"name":..,"tags":{..},"fields":{..},"timestamp":..}. */
static int telegraf_metric(const struct payload_options *o, const cJSON *metric, size_t index,
			   int64_t received_us, enum lp_precision precision, struct decoded_message *out,
			   struct decode_error *err)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(metric, "name");
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(metric, "tags");
	const cJSON *fields = cJSON_GetObjectItemCaseSensitive(metric, "fields");
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(metric, "timestamp");
	struct lp_line line = { .line_no = index + 1 };
	struct lp_tag *tag_array = NULL;
	struct lp_field *field_array = NULL;
	size_t n;
	int rc = -1;

	if (!cJSON_IsString(name) || !cJSON_IsObject(fields) || (tags && !cJSON_IsObject(tags)))
		return decode_fail(err, REJECT_WRONG_TYPE,
				   "metric %zu needs a \"name\" string and a \"fields\" object", index + 1);
	line.measurement = (struct lp_span){ name->valuestring, strlen(name->valuestring) };
	n = (size_t)cJSON_GetArraySize(tags);
	tag_array = xcalloc(n ? n : 1, sizeof(*tag_array));
	for (const cJSON *t = tags ? tags->child : NULL; t; t = t->next) {
		if (!cJSON_IsString(t)) {
			rc = decode_fail(err, REJECT_WRONG_TYPE, "metric %zu: tag values must be strings",
					 index + 1);
			goto out;
		}
		tag_array[line.tag_count++] = (struct lp_tag){ { t->string, strlen(t->string) },
							       { t->valuestring, strlen(t->valuestring) } };
	}
	n = (size_t)cJSON_GetArraySize(fields);
	field_array = xcalloc(n ? n : 1, sizeof(*field_array));
	for (const cJSON *f = fields->child; f; f = f->next) {
		struct lp_field *lf = &field_array[line.field_count];

		lf->key = (struct lp_span){ f->string, strlen(f->string) };
		if (cJSON_IsNumber(f)) {
			lf->type = LP_FIELD_FLOAT;
			lf->value = f->valuedouble;
		} else if (cJSON_IsBool(f)) {
			lf->type = LP_FIELD_BOOL;
			lf->value = cJSON_IsTrue(f) ? 1.0 : 0.0;
		} else if (cJSON_IsString(f)) {
			lf->type = LP_FIELD_STRING;
			lf->str = (struct lp_span){ f->valuestring, strlen(f->valuestring) };
		} else {
			out->skipped[cJSON_IsNull(f) ? SKIP_NULL :
						       SKIP_ARRAY]++; /* not a field Telegraf writes */
			continue;
		}
		if (!isfinite(lf->value)) {
			rc = decode_fail(err, REJECT_NON_FINITE_VALUE,
					 "metric %zu: field '%.64s' is not finite", index + 1, f->string);
			goto out;
		}
		line.field_count++;
	}
	line.tags = tag_array;
	line.fields = field_array;
	if (ts) {
		int64_t us;
		if (!cJSON_IsNumber(ts)) {
			rc = decode_fail(err, REJECT_WRONG_TYPE, "metric %zu: \"timestamp\" must be a number",
					 index + 1);
			goto out;
		}
		/* Telegraf writes a whole number in json_timestamp_units (the route's precision). */
		if (ts->valuedouble != floor(ts->valuedouble) || fabs(ts->valuedouble) >= 9.0e18 ||
		    !lp_time_to_us((int64_t)ts->valuedouble, precision, &us)) {
			rc = decode_fail(err, REJECT_BAD_TIMESTAMP,
					 "metric %zu: timestamp %.17g (%s) is out of range or not whole",
					 index + 1, ts->valuedouble, lp_precision_name(precision));
			goto out;
		}
		line.has_time = true;
		line.time = (int64_t)ts->valuedouble;
	}
	if (line.has_time && precision != o->influx.precision) {
		/* format auto: the JSON's seconds, not the route's line protocol precision */
		struct payload_options copy = *o;
		copy.influx.precision = precision;
		rc = emit_line(&copy, &line, received_us, out, err);
	} else {
		rc = emit_line(o, &line, received_us, out, err);
	}
out:
	free(tag_array);
	free(field_array);
	return rc;
}

static int decode_telegraf_json(const struct payload_options *o, const char *payload, size_t len,
				int64_t received_us, size_t max_bytes, enum lp_precision precision,
				struct decoded_message *out, struct decode_error *err)
{
	cJSON *root = decode_json_root(payload, len, max_bytes, err);
	const cJSON *metrics;
	size_t index = 0;
	int rc = -1;

	if (!root)
		return -1;
	if (!cJSON_IsObject(root)) {
		rc = decode_fail(err, REJECT_WRONG_TYPE,
				 "payload must be a Telegraf JSON metric or {\"metrics\": [...]}");
		goto out;
	}
	metrics = cJSON_GetObjectItemCaseSensitive(root, "metrics");
	if (metrics && cJSON_IsArray(metrics)) {
		for (const cJSON *item = metrics->child; item; item = item->next, index++) {
			if (!cJSON_IsObject(item)) {
				rc = decode_fail(err, REJECT_WRONG_TYPE, "metric %zu is not an object",
						 index + 1);
				goto out;
			}
			if (telegraf_metric(o, item, index, received_us, precision, out, err) < 0)
				goto out;
		}
	} else if (telegraf_metric(o, root, 0, received_us, precision, out, err) < 0) {
		goto out;
	}
	rc = finish_lines(o, out, err);
out:
	cJSON_Delete(root);
	return rc;
}

int formats_decode(enum route_format format, const struct payload_options *o, const char *payload, size_t len,
		   const struct route_match *m, int64_t received_us, size_t max_bytes,
		   struct decoded_message *out, struct decode_error *err)
{
	decode_reset(out);
	switch (format) {
	case ROUTE_FORMAT_JSON:
		return decode_json_route(o, payload, len, m, received_us, max_bytes, out, err);
	case ROUTE_FORMAT_VALUE:
		return decode_value(o, payload, len, m, received_us, max_bytes, out, err);
	case ROUTE_FORMAT_VALUE_JSON:
		return decode_value_json(o, payload, len, m, received_us, max_bytes, out, err);
	case ROUTE_FORMAT_INFLUX:
		return decode_influx(o, payload, len, received_us, max_bytes, out, err);
	case ROUTE_FORMAT_FLAT_JSON:
		return decode_flat_json(o, payload, len, m, received_us, max_bytes, out, err);
	case ROUTE_FORMAT_SHELLY_RPC:
		return decode_shelly_rpc(o, payload, len, m, received_us, max_bytes, out, err);
	case ROUTE_FORMAT_TELEGRAF_JSON:
		return decode_telegraf_json(o, payload, len, received_us, max_bytes, o->influx.precision, out,
					    err);
	case ROUTE_FORMAT_AUTO:
		/* Telegraf's two serializers on one topic: JSON starts with '{' (after blanks), line protocol
		 * with a measurement name, which cannot. JSON timestamps are Telegraf's default seconds. */
		for (size_t i = 0; i < len; i++) {
			if (is_space(payload[i]))
				continue;
			if (payload[i] == '{')
				return decode_telegraf_json(o, payload, len, received_us, max_bytes,
							    LP_PRECISION_S, out, err);
			break;
		}
		return decode_influx(o, payload, len, received_us, max_bytes, out, err);
	}
	return decode_fail(err, REJECT_NO_ROUTE, "route has an unknown format");
}
