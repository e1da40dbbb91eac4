// SPDX-License-Identifier: Apache-2.0
/*
 * decode: the JSON envelope decoder. It checks the bytes (size, UTF-8, no NUL), parses with cJSON, and
 * copies what it needs into owned samples, so that no cJSON object outlives this file. Every way a payload
 * can be wrong maps to one reject reason with a detail a person can act on.
 */
#include "decode.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "timeparse.h"
#include "xalloc.h"

static int fail(struct decode_error *err, enum reject_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct decode_error *err, enum reject_reason reason, const char *fmt, ...)
{
	va_list ap;

	err->reason = reason;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

void decode_reset(struct decoded_message *out)
{
	out->count = 0;
}

void decode_clear(struct decoded_message *out)
{
	free(out->samples);
	memset(out, 0, sizeof(*out));
}

static struct sample *append_sample(struct decoded_message *out)
{
	if (out->count == out->capacity) {
		out->capacity = out->capacity ? out->capacity * 2 : 16;
		out->samples = xrealloc(out->samples, out->capacity * sizeof(*out->samples));
	}
	return &out->samples[out->count++];
}

/* Point names become database keys and log text: keep them to a plain, printable alphabet. */
static bool point_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > DECODE_MAX_POINT_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

/* cJSON keeps duplicate members; JSON leaves their meaning open, so we refuse them. */
static const char *find_duplicate_key(const cJSON *object)
{
	for (const cJSON *a = object->child; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return a->string;
	return NULL;
}

static int decode_timestamp(const cJSON *ts, int64_t received_us, int64_t *out_us, struct decode_error *err)
{
	if (!ts) {
		*out_us = received_us;
		return 0;
	}
	if (cJSON_IsString(ts)) {
		if (!timeparse_rfc3339(ts->valuestring, strlen(ts->valuestring), out_us))
			return fail(err, REJECT_BAD_TIMESTAMP,
				    "timestamp is not an RFC 3339 date-time with a zone or is impossible");
		return 0;
	}
	if (cJSON_IsNumber(ts)) {
		if (!timeparse_epoch_seconds(ts->valuedouble, out_us))
			return fail(err, REJECT_BAD_TIMESTAMP, "epoch timestamp %g is out of range", ts->valuedouble);
		return 0;
	}
	return fail(err, REJECT_WRONG_TYPE, "timestamp must be an RFC 3339 string or epoch seconds");
}

static int decode_measurements(const cJSON *measurements, int64_t time_us, struct decoded_message *out,
			       struct decode_error *err)
{
	const char *dup;

	if (!cJSON_IsObject(measurements))
		return fail(err, REJECT_WRONG_TYPE, "measurements must be an object of point: number");
	dup = find_duplicate_key(measurements);
	if (dup)
		return fail(err, REJECT_MALFORMED_JSON, "duplicate measurement '%.64s'", dup);
	for (const cJSON *m = measurements->child; m; m = m->next) {
		struct sample *s;
		double value;

		if (!point_name_ok(m->string))
			return fail(err, REJECT_INVALID_POINT_NAME,
				    "point names are 1-64 characters of A-Z a-z 0-9 _ . : / -");
		if (cJSON_IsNumber(m))
			value = m->valuedouble;
		else if (cJSON_IsBool(m))
			value = cJSON_IsTrue(m) ? 1.0 : 0.0;
		else
			return fail(err, REJECT_WRONG_TYPE, "measurement '%s' is not a number", m->string);
		if (!isfinite(value))
			return fail(err, REJECT_NON_FINITE_VALUE, "measurement '%s' is not a finite number",
				    m->string);
		s = append_sample(out);
		memcpy(s->point, m->string, strlen(m->string) + 1);
		s->value = value;
		s->time_us = time_us;
	}
	return 0;
}

static int decode_object(const cJSON *obj, const struct route_match *m, int64_t received_us,
			 struct decoded_message *out, struct decode_error *err)
{
	const cJSON *serial, *measurements;
	const char *dup;
	int64_t time_us;

	if (!cJSON_IsObject(obj))
		return fail(err, REJECT_WRONG_TYPE, "payload must be an object or an array of objects");
	dup = find_duplicate_key(obj);
	if (dup)
		return fail(err, REJECT_MALFORMED_JSON, "duplicate member '%.64s'", dup);
	serial = cJSON_GetObjectItemCaseSensitive(obj, "serial");
	if (serial) {
		if (!cJSON_IsString(serial))
			return fail(err, REJECT_WRONG_TYPE, "serial must be a string");
		if (strlen(serial->valuestring) != m->serial.len ||
		    memcmp(serial->valuestring, m->serial.ptr, m->serial.len) != 0)
			return fail(err, REJECT_SERIAL_MISMATCH, "payload serial differs from the topic's serial");
	}
	if (decode_timestamp(cJSON_GetObjectItemCaseSensitive(obj, "timestamp"), received_us, &time_us, err) < 0)
		return -1;
	measurements = cJSON_GetObjectItemCaseSensitive(obj, "measurements");
	if (!measurements)
		return fail(err, REJECT_WRONG_TYPE, "missing 'measurements'");
	return decode_measurements(measurements, time_us, out, err);
}

/*
 * True if a JSON string in payload holds the escape \u0000. cJSON would turn it into a real NUL, and every C
 * string after that would silently end early ("power\u0000; DROP" read as "power"). Escapes occur only
 * inside strings, so a scan that skips each escaped character is exact.
 */
static bool has_escaped_nul(const char *payload, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (payload[i] != '\\')
			continue;
		if (payload[i + 1] == 'u' && i + 5 < len && memcmp(payload + i + 2, "0000", 4) == 0)
			return true;
		i++; /* skip the escaped character (it may be another backslash) */
	}
	return false;
}

/* True when only JSON whitespace is left in [p, end). */
static bool only_whitespace(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
	return true;
}

int decode_json(const char *payload, size_t len, const struct route_match *m, int64_t received_us,
		size_t max_bytes, struct decoded_message *out, struct decode_error *err)
{
	const char *parse_end = NULL;
	cJSON *root = NULL;
	int rc = -1;

	decode_reset(out);
	if (len == 0)
		return fail(err, REJECT_EMPTY_PAYLOAD, "empty payload");
	if (len > max_bytes)
		return fail(err, REJECT_OVERSIZED_PAYLOAD, "payload of %zu bytes exceeds the limit of %zu", len,
			    max_bytes);
	if (!text_is_utf8(payload, len) || has_escaped_nul(payload, len))
		return fail(err, REJECT_INVALID_UTF8, "payload is not valid UTF-8 text (or contains NUL)");
	root = cJSON_ParseWithLengthOpts(payload, len, &parse_end, false);
	if (!root || !parse_end || !only_whitespace(parse_end, payload + len)) {
		rc = fail(err, REJECT_MALFORMED_JSON, "%s", root ? "trailing data after the JSON value" : "not valid JSON");
		goto out;
	}
	if (cJSON_IsArray(root)) {
		if (!root->child) {
			rc = fail(err, REJECT_NO_MEASUREMENTS, "empty array");
			goto out;
		}
		for (const cJSON *item = root->child; item; item = item->next)
			if (decode_object(item, m, received_us, out, err) < 0)
				goto out;
	} else if (decode_object(root, m, received_us, out, err) < 0) {
		goto out;
	}
	if (out->count == 0) {
		rc = fail(err, REJECT_NO_MEASUREMENTS, "no measurements");
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}
