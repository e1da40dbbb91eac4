// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_lineproto: the line protocol reader and the mapping of its lines to samples (lineproto.c) on hostile
 * bytes, as decode_influx and `mqtt2pg import` drive them.
 *
 * Input: the payload, as an exact-size copy (never NUL-terminated). Properties:
 *  - lp_next terminates: every call moves *pos forward or returns 0, and never past the input.
 *  - every line it returns has a non-empty measurement, 1..1024 fields with non-empty keys, non-empty tag keys
 *    and values, and every span lies inside the input or the scratch buffer;
 *  - every error names a line (>= 1) and a column within that line (1..length + 1) and a NUL-terminated text;
 *  - mapped samples have a point name of 1..64 characters of the point alphabet, a finite value, and a time in
 *    years 1..9999 under every precision (or the receive time);
 *  - parsing is deterministic: a second pass with the same (now warm) scratch gives the same lines.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "payload/lineproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RECEIVED_US INT64_C(1795000000000000)
#define MIN_US	    (INT64_C(-62135596800) * 1000000)
#define MAX_US	    (INT64_C(253402300799) * 1000000 + 999999)

static bool inside(struct lp_span s, const char *buf, size_t len, const struct lp_scratch *scratch)
{
	if (s.len == 0)
		return true;
	if (s.ptr >= buf && s.ptr + s.len <= buf + len)
		return true;
	return scratch->bytes && s.ptr >= scratch->bytes &&
	       s.ptr + s.len <= scratch->bytes + scratch->bytes_cap;
}


/* One pass over the payload; returns a checksum of what was read, for the determinism check. */
static uint64_t pass(const char *buf, size_t len, struct lp_scratch *scratch, const struct lp_mapping *map)
{
	size_t pos = 0, line_no = 0;
	uint64_t sum = 0;

	for (;;) {
		struct lp_line line;
		struct lp_error err = { 0 };
		size_t before = pos;
		int rc = lp_next(buf, len, &pos, &line_no, scratch, &line, &err);

		FUZZ_CHECK(pos <= len, "pos %zu beyond %zu", pos, len);
		if (rc == 0)
			break;
		FUZZ_CHECK(pos > before, "no progress at %zu", pos);
		if (rc < 0) {
			FUZZ_CHECK(err.kind == LP_ERR_SYNTAX && err.line == line_no && err.column >= 1 &&
					   err.column <= pos - before + 1 &&
					   memchr(err.message, '\0', sizeof(err.message)),
				   "error line %zu column %zu", err.line, err.column);
			sum = sum * 31 + err.column;
			continue;
		}
		FUZZ_CHECK(rc == 1 && line.measurement.len > 0 && line.field_count >= 1 &&
				   line.field_count <= 1024 && line.tag_count <= 256 &&
				   inside(line.measurement, buf, len, scratch),
			   "bad line %zu", line.line_no);
		for (size_t i = 0; i < line.tag_count; i++)
			FUZZ_CHECK(line.tags[i].key.len > 0 && line.tags[i].value.len > 0 &&
					   inside(line.tags[i].key, buf, len, scratch) &&
					   inside(line.tags[i].value, buf, len, scratch),
				   "bad tag %zu", i);
		for (int p = LP_PRECISION_NS; p <= LP_PRECISION_S; p++) {
			struct lp_mapping m = *map;
			int64_t t;

			m.precision = (enum lp_precision)p;
			if (lp_map_time(&line, &m, RECEIVED_US, &t, &err) == 0)
				FUZZ_CHECK(t >= MIN_US && t <= MAX_US, "time %lld out of range",
					   (long long)t);
			else
				FUZZ_CHECK(err.kind == LP_ERR_TIME && line.has_time, "time error kind %d",
					   err.kind);
		}
		{
			struct lp_span serial;
			if (lp_map_serial(&line, map, &serial, &err) == 0)
				FUZZ_CHECK(serial.len > 0 && inside(serial, buf, len, scratch),
					   "empty serial");
		}
		for (size_t i = 0; i < line.field_count; i++) {
			char point[LP_MAX_POINT_NAME + 1];
			double value;
			int r;

			FUZZ_CHECK(line.fields[i].key.len > 0 &&
					   inside(line.fields[i].key, buf, len, scratch) &&
					   (line.fields[i].type != LP_FIELD_STRING ||
					    inside(line.fields[i].str, buf, len, scratch)),
				   "bad field %zu", i);
			r = lp_map_field(&line, i, map, point, &value, &err);
			if (r == 1) {
				FUZZ_CHECK(fuzz_point_name_ok(point) && isfinite(value), "bad sample '%s'",
					   point);
				sum = sum * 31 + strlen(point);
			} else {
				FUZZ_CHECK(r == -1 && (err.kind == LP_ERR_STRING || err.kind == LP_ERR_POINT),
					   "field result %d kind %d", r, err.kind);
			}
		}
		sum = sum * 31 + line.field_count + line.tag_count;
	}
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_copy(data, size);
	struct lp_scratch scratch = { 0 };
	struct lp_mapping map;
	char err[160];
	uint64_t first, second;

	lp_mapping_init(&map);
	if (lp_mapping_set(&map, "serial_tag", "serial", err, sizeof(err)) != 0 ||
	    lp_mapping_set(&map, "point", "{measurement}.{tag:ch}/{field}", err, sizeof(err)) != 0)
		abort();
	first = pass(buf, size, &scratch, &map);
	second = pass(buf, size, &scratch, &map);
	FUZZ_CHECK(first == second, "passes differ");
	lp_scratch_free(&scratch);
	free(buf);
	return 0;
}
