// SPDX-License-Identifier: Apache-2.0
/*
 * csvread: the CSV side of `mqtt2pg import` (see csvread.h). A line is split into fields first (quotes
 * removed into a small per-call buffer), then the four columns the header named are converted. Every fault
 * has its own status so that import's report can say why a line was refused.
 */
#include "cli/csvread.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/timeparse.h"

#define US_PER_SEC  INT64_C(1000000)
/* 0001-01-01 and 10000-01-01 in seconds since the epoch: the range timeparse accepts. */
#define EPOCH_MIN_S INT64_C(-62135596800)
#define EPOCH_MAX_S INT64_C(253402300800)

struct field {
	const char *ptr;
	size_t len;
};

/* Unquoted copies of quoted fields live here for the duration of one call. */
struct fields {
	struct field f[CSVREAD_MAX_FIELDS];
	int count;
	char scratch[4096];
	size_t used;
};

static size_t trim_cr(const char *line, size_t len)
{
	return len > 0 && line[len - 1] == '\r' ? len - 1 : len;
}

/* Splits line into fields. False on bad quoting, a NUL byte, or more than CSVREAD_MAX_FIELDS fields. */
static bool split(const char *line, size_t len, struct fields *out)
{
	size_t i = 0;

	out->count = 0;
	out->used = 0;
	if (memchr(line, '\0', len))
		return false;
	for (;;) {
		struct field *f;

		if (out->count == CSVREAD_MAX_FIELDS)
			return false;
		f = &out->f[out->count++];
		if (i < len && line[i] == '"') {
			char *dst = out->scratch + out->used;
			size_t n = 0;
			i++;
			for (;;) {
				if (i >= len)
					return false; /* unterminated quote */
				if (line[i] == '"') {
					if (i + 1 < len && line[i + 1] == '"') {
						i++;
					} else {
						i++;
						break;
					}
				}
				if (out->used + n + 1 > sizeof(out->scratch))
					return false;
				dst[n++] = line[i++];
			}
			f->ptr = dst;
			f->len = n;
			out->used += n;
			if (i < len && line[i] != ',')
				return false; /* text after the closing quote */
		} else {
			size_t start = i;
			while (i < len && line[i] != ',') {
				if (line[i] == '"')
					return false; /* a quote inside an unquoted field */
				i++;
			}
			f->ptr = line + start;
			f->len = i - start;
		}
		if (i >= len)
			return true;
		i++; /* the comma */
	}
}

static bool field_is(const struct field *f, const char *name)
{
	return f->len == strlen(name) && memcmp(f->ptr, name, f->len) == 0;
}

bool csvread_time_unit_parse(const char *name, enum csvread_time_unit *out)
{
	static const char *const names[] = { "s", "ms", "us", "ns" };

	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (enum csvread_time_unit)i;
			return true;
		}
	return false;
}

bool csvread_header(const char *line, size_t len, struct csvread_columns *cols, char *err, size_t cap)
{
	static const char *const names[] = { "time", "serial", "point", "value" };
	struct fields fields;
	int pos[4] = { -1, -1, -1, -1 };

	len = trim_cr(line, len);
	/* A UTF-8 byte order mark before the header is not part of the first name. */
	if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
		len -= 3;
	}
	if (!split(line, len, &fields)) {
		snprintf(err, cap, "the header is not a CSV line of at most %d fields", CSVREAD_MAX_FIELDS);
		return false;
	}
	for (int i = 0; i < fields.count; i++)
		for (int c = 0; c < 4; c++)
			if (field_is(&fields.f[i], names[c])) {
				if (pos[c] >= 0) {
					snprintf(err, cap, "the header names column '%s' twice", names[c]);
					return false;
				}
				pos[c] = i;
			}
	for (int c = 0; c < 4; c++)
		if (pos[c] < 0) {
			snprintf(err, cap,
				 "the header has no column '%s' (it needs time, serial, point, value)",
				 names[c]);
			return false;
		}
	cols->time = pos[0];
	cols->serial = pos[1];
	cols->point = pos[2];
	cols->value = pos[3];
	cols->count = fields.count;
	return true;
}

bool csvread_point_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > CSVREAD_MAX_POINT)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

/* Parses an optionally signed decimal integer that fills the whole field; false on overflow or junk. */
static bool parse_int64(const char *s, size_t len, int64_t *out)
{
	char buf[32];
	char *end;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!((buf[0] >= '0' && buf[0] <= '9') || ((buf[0] == '-' || buf[0] == '+') && len > 1)))
		return false;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool parse_time(const struct field *f, enum csvread_time_unit unit, int64_t *out_us)
{
	static const int64_t per_second[] = { 1, 1000, 1000000, 1000000000 };
	int64_t n, seconds;

	if (f->len == 0)
		return false;
	if (memchr(f->ptr, 'T', f->len) || memchr(f->ptr, 't', f->len) || memchr(f->ptr, ' ', f->len) ||
	    (f->len > 4 && f->ptr[4] == '-'))
		return timeparse_rfc3339(f->ptr, f->len, out_us);
	if (parse_int64(f->ptr, f->len, &n)) {
		seconds = floor_div(n, per_second[unit]);
		if (seconds < EPOCH_MIN_S || seconds >= EPOCH_MAX_S)
			return false;
		switch (unit) {
		case CSVREAD_SECONDS:
			*out_us = n * US_PER_SEC;
			break;
		case CSVREAD_MILLISECONDS:
			*out_us = n * 1000;
			break;
		case CSVREAD_MICROSECONDS:
			*out_us = n;
			break;
		case CSVREAD_NANOSECONDS:
			*out_us = floor_div(n, 1000);
			break;
		}
		return true;
	}
	if (unit == CSVREAD_SECONDS || unit == CSVREAD_MILLISECONDS) {
		char buf[48];
		char *end;
		if (f->len >= sizeof(buf) || !memchr(f->ptr, '.', f->len))
			return false;
		memcpy(buf, f->ptr, f->len);
		buf[f->len] = '\0';
		for (size_t i = 0; i < f->len; i++)
			if (!((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '.' ||
			      (i == 0 && (buf[i] == '-' || buf[i] == '+'))))
				return false;
		double v = strtod(buf, &end);
		if (*end != '\0')
			return false;
		return timeparse_epoch_seconds(unit == CSVREAD_SECONDS ? v : v / 1000.0, out_us);
	}
	return false;
}

static enum csvread_status parse_value(const struct field *f, double *out)
{
	char buf[64];
	char *end;

	if (f->len == 0 || f->len >= sizeof(buf))
		return f->len == 0 ? CSVREAD_MALFORMED : CSVREAD_BAD_VALUE;
	memcpy(buf, f->ptr, f->len);
	buf[f->len] = '\0';
	/* strtod also reads hex, "nan" and "inf"; a history export has plain decimals. */
	for (size_t i = 0; i < f->len; i++) {
		char c = buf[i];
		if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) {
			bool word = (c == 'n' || c == 'N' || c == 'i' || c == 'I');
			return word ? CSVREAD_NON_FINITE : CSVREAD_BAD_VALUE;
		}
	}
	errno = 0;
	*out = strtod(buf, &end);
	if (end == buf || *end != '\0')
		return CSVREAD_BAD_VALUE;
	if (!isfinite(*out) || errno == ERANGE) {
		if (isfinite(*out) && fabs(*out) < 1.0)
			return CSVREAD_OK; /* underflow to (almost) zero is a fine value */
		return CSVREAD_NON_FINITE;
	}
	return CSVREAD_OK;
}

static enum csvread_status fault(enum csvread_status status, char *detail, size_t cap, const char *text)
{
	snprintf(detail, cap, "%s", text);
	return status;
}

enum csvread_status csvread_row(const char *line, size_t len, const struct csvread_columns *cols,
				enum csvread_time_unit unit, struct csvread_row *row, char *detail,
				size_t cap)
{
	struct fields fields;
	const struct field *serial, *point, *time, *value;
	enum csvread_status status;

	len = trim_cr(line, len);
	if (!split(line, len, &fields))
		return fault(CSVREAD_MALFORMED, detail, cap,
			     "not a CSV line (quoting, NUL byte or too many fields)");
	if (fields.count != cols->count) {
		snprintf(detail, cap, "%d field(s), the header has %d", fields.count, cols->count);
		return CSVREAD_MALFORMED;
	}
	serial = &fields.f[cols->serial];
	point = &fields.f[cols->point];
	time = &fields.f[cols->time];
	value = &fields.f[cols->value];
	if (serial->len == 0)
		return fault(CSVREAD_MALFORMED, detail, cap, "empty serial");
	if (serial->len > CSVREAD_MAX_SERIAL)
		return fault(CSVREAD_BAD_SERIAL, detail, cap, "serial longer than 64 bytes");
	if (!parse_time(time, unit, &row->time_us))
		return fault(
			CSVREAD_BAD_TIME, detail, cap,
			"time is neither RFC 3339 with a zone nor an epoch number (in the --time-unit) in range");
	if (!csvread_point_name_ok(point->ptr, point->len))
		return fault(point->len == 0 ? CSVREAD_MALFORMED : CSVREAD_BAD_POINT_NAME, detail, cap,
			     point->len == 0 ? "empty point" :
					       "point name is not 1-64 characters of A-Z a-z 0-9 _ . : / -");
	status = parse_value(value, &row->value);
	if (status != CSVREAD_OK)
		return fault(status, detail, cap,
			     status == CSVREAD_NON_FINITE ? "value is not finite" :
			     status == CSVREAD_MALFORMED  ? "empty value" :
							    "value is not a decimal number");
	memcpy(row->serial, serial->ptr, serial->len);
	row->serial[serial->len] = '\0';
	memcpy(row->point, point->ptr, point->len);
	row->point[point->len] = '\0';
	return CSVREAD_OK;
}
