// SPDX-License-Identifier: Apache-2.0
/*
 * decode: the JSON envelope decoder. It checks the bytes (size, UTF-8, no NUL), parses with cJSON, and
 * copies what it needs into owned samples, so that no cJSON object outlives this file. Every way a payload
 * can be wrong maps to one reject reason with a detail a person can act on.
 */
#include "payload/decode.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/json_arena.h"
#include "util/text.h"
#include "payload/timeparse.h"
#include "util/xalloc.h"

int decode_fail(struct decode_error *err, enum reject_reason reason, const char *fmt, ...)
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
	out->device_count = 0;
	out->ignored = IGNORE_NONE;
	memset(out->skipped, 0, sizeof(out->skipped));
}

void decode_clear(struct decoded_message *out)
{
	free(out->samples);
	free(out->devices);
	free(out->device_of);
	lp_scratch_free(&out->lp);
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

/* --- strict JSON (RFC 8259) ------------------------------------------------------------------------ */
/*
 * cJSON is lenient: it takes leading zeros ("01"), any byte <= 0x20 as whitespace, and raw control
 * characters inside strings. A device that sends such bytes is not speaking JSON, and what it meant is a
 * guess; so the payload is checked against the grammar first, in one pass, and only then parsed.
 */
#define JSON_MAX_DEPTH 64

struct json_scan {
	const unsigned char *p, *end;
};

static void skip_ws(struct json_scan *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool scan_value(struct json_scan *j, int depth);

static bool scan_string(struct json_scan *j)
{
	if (j->p >= j->end || *j->p != '"')
		return false;
	for (j->p++; j->p < j->end; j->p++) {
		unsigned char c = *j->p;
		if (c == '"') {
			j->p++;
			return true;
		}
		if (c < 0x20)
			return false; /* raw control character */
		if (c == '\\') {
			if (++j->p >= j->end)
				return false;
			if (*j->p == 'u') {
				for (int i = 0; i < 4; i++) {
					if (++j->p >= j->end || !((*j->p >= '0' && *j->p <= '9') ||
								  (*j->p >= 'a' && *j->p <= 'f') ||
								  (*j->p >= 'A' && *j->p <= 'F')))
						return false;
				}
			} else if (!strchr("\"\\/bfnrt", *j->p) || *j->p == '\0') {
				return false;
			}
		}
	}
	return false;
}

static bool scan_digits(struct json_scan *j)
{
	const unsigned char *start = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > start;
}

static bool scan_number(struct json_scan *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++; /* a leading zero stands alone */
	else if (!scan_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!scan_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!scan_digits(j))
			return false;
	}
	return true;
}

static bool scan_literal(struct json_scan *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return false;
	j->p += n;
	return true;
}

static bool scan_members(struct json_scan *j, int depth, bool object)
{
	char close = object ? '}' : ']';

	j->p++;
	skip_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		if (object) {
			if (!scan_string(j))
				return false;
			skip_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return false;
			j->p++;
		}
		if (!scan_value(j, depth + 1))
			return false;
		skip_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			skip_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return true;
		}
		return false;
	}
}

static bool scan_value(struct json_scan *j, int depth)
{
	if (depth > JSON_MAX_DEPTH)
		return false;
	skip_ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{':
		return scan_members(j, depth, true);
	case '[':
		return scan_members(j, depth, false);
	case '"':
		return scan_string(j);
	case 't':
		return scan_literal(j, "true");
	case 'f':
		return scan_literal(j, "false");
	case 'n':
		return scan_literal(j, "null");
	default:
		return scan_number(j);
	}
}

/* True when payload is exactly one JSON value (RFC 8259), optionally after one UTF-8 byte order mark. */
static bool json_is_strict(const char *payload, size_t len)
{
	struct json_scan j = { (const unsigned char *)payload, (const unsigned char *)payload + len };

	if (len >= 3 && memcmp(payload, "\xef\xbb\xbf", 3) == 0)
		j.p += 3; /* RFC 8259 section 8.1: a parser may ignore a BOM */
	if (!scan_value(&j, 0))
		return false;
	skip_ws(&j);
	return j.p == j.end;
}

/* Point names become database keys and log text: keep them to a plain, printable alphabet. */
static bool point_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > DECODE_MAX_POINT_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * cJSON keeps duplicate members; JSON leaves their meaning open, so we refuse them, at any depth. Sorting
 * the keys keeps a hostile object of thousands of members at n log n.
 */
#define SMALL_OBJECT 16 /* keys sorted on the stack; larger objects' keys in one malloc */

static const char *find_duplicate_key(const cJSON *node)
{
	const char *dup = NULL;

	if (cJSON_IsObject(node) && node->child && node->child->next) {
		size_t n = 0, i = 0;
		const char **keys, *few[SMALL_OBJECT];

		for (const cJSON *c = node->child; c; c = c->next)
			n++;
		keys = n <= SMALL_OBJECT ? few : xmalloc(n * sizeof(*keys));
		for (const cJSON *c = node->child; c; c = c->next)
			keys[i++] = c->string;
		qsort(keys, n, sizeof(*keys), compare_keys);
		for (i = 1; i < n && !dup; i++)
			if (strcmp(keys[i - 1], keys[i]) == 0)
				dup = keys[i];
		if (keys != few)
			free(keys);
	}
	for (const cJSON *c = node->child; c && !dup; c = c->next)
		if (cJSON_IsObject(c) || cJSON_IsArray(c))
			dup = find_duplicate_key(c);
	return dup;
}

static int decode_timestamp(const cJSON *ts, int64_t received_us, int64_t *out_us, struct decode_error *err)
{
	if (!ts) {
		*out_us = received_us;
		return 0;
	}
	if (cJSON_IsString(ts)) {
		if (!timeparse_rfc3339(ts->valuestring, strlen(ts->valuestring), out_us))
			return decode_fail(
				err, REJECT_BAD_TIMESTAMP,
				"timestamp is not an RFC 3339 date-time with a zone or is impossible");
		return 0;
	}
	if (cJSON_IsNumber(ts)) {
		if (!timeparse_epoch_seconds(ts->valuedouble, out_us))
			return decode_fail(err, REJECT_BAD_TIMESTAMP, "epoch timestamp %g is out of range",
					   ts->valuedouble);
		return 0;
	}
	return decode_fail(err, REJECT_WRONG_TYPE, "timestamp must be an RFC 3339 string or epoch seconds");
}

/* True when text is a strict decimal: an optional '-', digits, optionally '.' and digits (no exponent, no
 * '+', no spaces, no hex): what a device that writes numbers as text means by a number, nothing looser. */
static bool strict_decimal(const char *text)
{
	const char *p = text + (*text == '-');
	size_t whole = strspn(p, "0123456789"), frac = 0;

	if (whole == 0 || whole > 40)
		return false;
	p += whole;
	if (*p == '.') {
		frac = strspn(p + 1, "0123456789");
		if (frac == 0 || frac > 20)
			return false;
		p += 1 + frac;
	}
	return *p == '\0';
}

int decode_leaf_value(const struct payload_options *o, const cJSON *leaf, const char *name, double *value,
		      struct decoded_message *out, struct decode_error *err)
{
	if (cJSON_IsNumber(leaf)) {
		*value = leaf->valuedouble;
	} else if (cJSON_IsBool(leaf)) {
		if (!o || !o->booleans) {
			out->skipped[SKIP_BOOLEAN]++;
			return 0;
		}
		*value = cJSON_IsTrue(leaf) ? 1.0 : 0.0;
	} else if (cJSON_IsString(leaf) && o && o->numeric_strings && strict_decimal(leaf->valuestring)) {
		*value = strtod(leaf->valuestring, NULL);
	} else {
		out->skipped[cJSON_IsNull(leaf) ? SKIP_NULL : SKIP_STRING]++;
		return 0;
	}
	if (!isfinite(*value))
		return decode_fail(err, REJECT_NON_FINITE_VALUE, "'%.64s' is not a finite number", name);
	return 1;
}

int decode_emit(const struct payload_options *o, const char *name, double value, int64_t time_us,
		struct decoded_message *out, struct decode_error *err)
{
	char point[DECODE_MAX_POINT_NAME + 1];
	struct sample *s;

	if (strlen(name) > DECODE_MAX_POINT_NAME && !(o && o->points_map_count))
		return decode_fail(err, REJECT_INVALID_POINT_NAME,
				   "point name '%.64s...' is longer than %d characters", name,
				   DECODE_MAX_POINT_NAME);
	if (o) {
		char mapped[256];
		snprintf(mapped, sizeof(mapped), "%s", name);
		switch (payload_options_point(o, mapped, sizeof(mapped))) {
		case PAYLOAD_POINT_IGNORED:
			out->skipped[SKIP_IGNORED_POINT]++;
			return 0;
		case PAYLOAD_POINT_NOT_LISTED:
			out->skipped[SKIP_NOT_LISTED]++;
			return 0;
		case PAYLOAD_POINT_KEEP:
			break;
		}
		if (!point_name_ok(mapped))
			return decode_fail(
				err, REJECT_INVALID_POINT_NAME,
				"point names are 1-64 characters of A-Z a-z 0-9 _ . : / - ('%.64s'; points_map renames)",
				mapped);
		memcpy(point, mapped, strlen(mapped) + 1); /* point_name_ok: at most 64 bytes */
	} else {
		if (!point_name_ok(name))
			return decode_fail(err, REJECT_INVALID_POINT_NAME,
					   "point names are 1-64 characters of A-Z a-z 0-9 _ . : / -");
		memcpy(point, name, strlen(name) + 1);
	}
	s = append_sample(out);
	memcpy(s->point, point, strlen(point) + 1);
	s->value = value;
	s->time_us = time_us;
	return 0;
}

static int decode_measurements(const struct payload_options *o, const cJSON *measurements, int64_t time_us,
			       struct decoded_message *out, struct decode_error *err)
{
	if (!cJSON_IsObject(measurements))
		return decode_fail(err, REJECT_WRONG_TYPE, "measurements must be an object of point: number");
	for (const cJSON *m = measurements->child; m; m = m->next) {
		double value;
		int rc;

		if (!(o && o->points_map_count) && !point_name_ok(m->string))
			return decode_fail(err, REJECT_INVALID_POINT_NAME,
					   "point names are 1-64 characters of A-Z a-z 0-9 _ . : / -");
		if (!cJSON_IsNumber(m) && !cJSON_IsBool(m) && !cJSON_IsNull(m) &&
		    !(cJSON_IsString(m) && o && o->numeric_strings))
			return decode_fail(err, REJECT_WRONG_TYPE, "measurement '%s' is not a number",
					   m->string);
		rc = decode_leaf_value(o, m, m->string, &value, out, err);
		if (rc < 0)
			return -1;
		if (rc == 1 && decode_emit(o, m->string, value, time_us, out, err) < 0)
			return -1;
	}
	return 0;
}

static int decode_object(const struct payload_options *o, const cJSON *obj, const struct route_match *m,
			 int64_t received_us, struct decoded_message *out, struct decode_error *err)
{
	const cJSON *serial, *measurements;
	int64_t time_us;

	if (!cJSON_IsObject(obj))
		return decode_fail(err, REJECT_WRONG_TYPE,
				   "payload must be an object or an array of objects");
	serial = cJSON_GetObjectItemCaseSensitive(obj, "serial");
	if (serial) {
		if (!cJSON_IsString(serial))
			return decode_fail(err, REJECT_WRONG_TYPE, "serial must be a string");
		if (strlen(serial->valuestring) != m->serial.len ||
		    memcmp(serial->valuestring, m->serial.ptr, m->serial.len) != 0)
			return decode_fail(err, REJECT_SERIAL_MISMATCH,
					   "payload serial differs from the topic's serial");
	}
	if (decode_timestamp(cJSON_GetObjectItemCaseSensitive(obj, "timestamp"), received_us, &time_us, err) <
	    0)
		return -1;
	measurements = cJSON_GetObjectItemCaseSensitive(obj, "measurements");
	if (!measurements)
		return decode_fail(err, REJECT_WRONG_TYPE, "missing 'measurements'");
	return decode_measurements(o, measurements, time_us, out, err);
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
	return decode_json_route(NULL, payload, len, m, received_us, max_bytes, out, err);
}

int decode_json_route(const struct payload_options *o, const char *payload, size_t len,
		      const struct route_match *m, int64_t received_us, size_t max_bytes,
		      struct decoded_message *out, struct decode_error *err)
{
	const char *parse_end = NULL;
	cJSON *root = NULL;
	int rc = -1;

	decode_reset(out);
	if (len == 0)
		return decode_fail(err, REJECT_EMPTY_PAYLOAD, "empty payload");
	if (len > max_bytes)
		return decode_fail(err, REJECT_OVERSIZED_PAYLOAD,
				   "payload of %zu bytes exceeds the limit of %zu", len, max_bytes);
	if (!text_is_utf8(payload, len) || has_escaped_nul(payload, len))
		return decode_fail(err, REJECT_INVALID_UTF8,
				   "payload is not valid UTF-8 text (or contains NUL)");
	if (!json_is_strict(payload, len))
		return decode_fail(err, REJECT_MALFORMED_JSON, "not valid JSON (RFC 8259)");
	json_arena_begin(); /* cJSON's blocks from a reused arena, not a malloc each; ended after cJSON_Delete */
	root = cJSON_ParseWithLengthOpts(payload, len, &parse_end, false);
	if (!root || !parse_end || !only_whitespace(parse_end, payload + len)) {
		rc = decode_fail(err, REJECT_MALFORMED_JSON, "%s",
				 root ? "trailing data after the JSON value" : "not valid JSON");
		goto out;
	}
	{
		const char *dup = find_duplicate_key(root);
		if (dup) {
			rc = decode_fail(err, REJECT_MALFORMED_JSON, "duplicate key '%.64s'", dup);
			goto out;
		}
	}
	if (cJSON_IsArray(root)) {
		if (!root->child) {
			rc = decode_fail(err, REJECT_NO_MEASUREMENTS, "empty array");
			goto out;
		}
		for (const cJSON *item = root->child; item; item = item->next)
			if (decode_object(o, item, m, received_us, out, err) < 0)
				goto out;
	} else if (decode_object(o, root, m, received_us, out, err) < 0) {
		goto out;
	}
	if (out->count == 0) {
		bool skipped = false;
		for (int k = 0; k < SKIP_REASON_COUNT; k++)
			skipped = skipped || out->skipped[k] > 0;
		/* Values that were there but skipped (null, boolean, ignored points) make no error: ignored. */
		if (skipped) {
			out->ignored = IGNORE_SKIPPED;
			rc = 1;
		} else {
			rc = decode_fail(err, REJECT_NO_MEASUREMENTS, "no measurements");
		}
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	json_arena_end();
	return rc;
}

/* --- shared with the other formats (formats.c) ---------------------------------------------------- */

struct sample *decode_append(struct decoded_message *out)
{
	return append_sample(out);
}

bool decode_point_name_ok(const char *name)
{
	return point_name_ok(name);
}

cJSON *decode_json_root(const char *payload, size_t len, size_t max_bytes, struct decode_error *err)
{
	const char *parse_end = NULL, *dup;
	cJSON *root;

	if (len == 0) {
		decode_fail(err, REJECT_EMPTY_PAYLOAD, "empty payload");
		return NULL;
	}
	if (len > max_bytes) {
		decode_fail(err, REJECT_OVERSIZED_PAYLOAD, "payload of %zu bytes exceeds the limit of %zu",
			    len, max_bytes);
		return NULL;
	}
	if (!text_is_utf8(payload, len) || has_escaped_nul(payload, len)) {
		decode_fail(err, REJECT_INVALID_UTF8, "payload is not valid UTF-8 text (or contains NUL)");
		return NULL;
	}
	if (!json_is_strict(payload, len)) {
		decode_fail(err, REJECT_MALFORMED_JSON, "not valid JSON (RFC 8259)");
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(payload, len, &parse_end, false);
	if (!root || !parse_end || !only_whitespace(parse_end, payload + len)) {
		decode_fail(err, REJECT_MALFORMED_JSON, "%s",
			    root ? "trailing data after the JSON value" : "not valid JSON");
		cJSON_Delete(root);
		return NULL;
	}
	dup = find_duplicate_key(root);
	if (dup) {
		decode_fail(err, REJECT_MALFORMED_JSON, "duplicate key '%.64s'", dup);
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}
