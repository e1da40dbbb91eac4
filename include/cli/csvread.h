/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csvread: one line of a CSV history export to one reading, for `mqtt2pg import --format csv`. Pure: no
 * I/O, no registry; import.c feeds it lines and checks what it returns against the registry like any message.
 *
 * The file starts with a header naming the columns, in any order: time, serial, point, value (other columns
 * are ignored). Fields are separated by commas and may be quoted RFC 4180 style ("a ""b"""); a field cannot
 * span lines. time is RFC 3339 with a zone, or a number since the Unix epoch in the unit given by
 * --time-unit (s, ms, us or ns; s and ms may carry a fraction). value is a decimal number.
 */
#ifndef MQTT2PG_CSVREAD_H
#define MQTT2PG_CSVREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSVREAD_MAX_FIELDS 32
#define CSVREAD_MAX_SERIAL 64
#define CSVREAD_MAX_POINT  64

enum csvread_time_unit {
	CSVREAD_SECONDS,
	CSVREAD_MILLISECONDS,
	CSVREAD_MICROSECONDS,
	CSVREAD_NANOSECONDS,
};

/* Why a line is not a reading; import.c maps each to a rejection reason. */
enum csvread_status {
	CSVREAD_OK = 0,
	CSVREAD_MALFORMED,	/* wrong number of fields, bad quoting, empty serial/point/value, NUL byte */
	CSVREAD_BAD_TIME,	/* neither RFC 3339 with a zone nor an epoch number in range */
	CSVREAD_BAD_VALUE,	/* not a decimal number */
	CSVREAD_NON_FINITE,	/* NaN, Infinity, or beyond double range */
	CSVREAD_BAD_POINT_NAME, /* empty, longer than 64 or outside [A-Za-z0-9_.:/-] */
	CSVREAD_BAD_SERIAL,	/* longer than 64 bytes (no registered serial is) */
};

/* Column positions found in the header. */
struct csvread_columns {
	int time, serial, point, value;
	int count; /* fields in the header: every row must have as many */
};

struct csvread_row {
	int64_t time_us;
	double value;
	char serial[CSVREAD_MAX_SERIAL + 1];
	char point[CSVREAD_MAX_POINT + 1];
};

/* Parses parse_unit's name ("s", "ms", "us", "ns"); false if unknown. */
bool csvread_time_unit_parse(const char *name, enum csvread_time_unit *out)
	__attribute__((warn_unused_result));

/*
 * Reads the header line[0..len) (a trailing CR is ignored). Returns true and fills *cols, or false with a
 * message in err (cap bytes) when a column is missing, repeated, or the line is not CSV.
 */
bool csvread_header(const char *line, size_t len, struct csvread_columns *cols, char *err, size_t cap)
	__attribute__((warn_unused_result));

/*
 * Reads one data line (a trailing CR is ignored) into *row. Returns CSVREAD_OK, or the first fault found with
 * a short explanation in detail (cap bytes; device text escaped). Borrows everything.
 */
enum csvread_status csvread_row(const char *line, size_t len, const struct csvread_columns *cols,
				enum csvread_time_unit unit, struct csvread_row *row, char *detail,
				size_t cap) __attribute__((warn_unused_result));

/* True if name[0..len) is a valid point name (the alphabet and length the live path accepts). */
bool csvread_point_name_ok(const char *name, size_t len);

#endif
