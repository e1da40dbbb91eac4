/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lineproto: the InfluxDB line protocol, parsed and mapped to samples. Pure: no I/O, no locale, no global
 * state; used by the `influx` route format (decode.c) and by `mqtt2pg import`.
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * Syntax (InfluxDB 2.x "Line protocol" reference, docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/):
 *  - lines end with LF; a CR before it is dropped (CRLF); blank lines and lines whose first non-blank byte is
 *    '#' (comments) are skipped. Leading spaces and tabs are skipped; sections are separated by one or more
 *    spaces; trailing spaces after the timestamp are allowed.
 *  - escapes: in the measurement "\," and "\ "; in tag keys, tag values and field keys "\,", "\=" and "\ ";
 *    in string field values "\"" and "\\". A backslash before any other byte is kept as it is (as InfluxDB
 *    does), and never ends a token.
 *  - field values: float (1, -1.5, 1e3, .5; no NaN or Inf, which line protocol cannot spell), integer (12i),
 *    unsigned (12u), boolean (t T true True TRUE f F false False FALSE), string ("..."). A string value cannot
 *    hold a raw newline (line protocol cannot carry one).
 *  - timestamp: optional, a signed decimal integer in the route's precision (default ns).
 *  - tag keys within a line, and field keys within a line, must be unique (we refuse rather than pick one).
 *
 * The parser never allocates per line: tokens without escapes point into the input, escaped tokens are
 * unescaped into the caller's struct lp_scratch, which grows to the longest line seen and is then reused.
 */
#ifndef MQTT2PG_LINEPROTO_H
#define MQTT2PG_LINEPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_MAX_POINT_NAME 64 /* as DECODE_MAX_POINT_NAME */
#define LP_MAX_NAME	  64 /* serial_tag and the tag names in a point template */

/* A run of bytes, not NUL-terminated; borrows the input or the scratch. */
struct lp_span {
	const char *ptr;
	size_t len;
};

struct lp_tag {
	struct lp_span key;
	struct lp_span value;
};

enum lp_field_type {
	LP_FIELD_FLOAT,
	LP_FIELD_INT,  /* 12i: int64 */
	LP_FIELD_UINT, /* 12u: uint64 */
	LP_FIELD_BOOL,
	LP_FIELD_STRING, /* unescaped text in str */
};

struct lp_field {
	struct lp_span key;
	enum lp_field_type type;
	double value;	    /* every type but STRING, as a double (int64/uint64 beyond 2^53 lose low bits) */
	int64_t i;	    /* LP_FIELD_INT */
	uint64_t u;	    /* LP_FIELD_UINT */
	bool b;		    /* LP_FIELD_BOOL */
	struct lp_span str; /* LP_FIELD_STRING */
};

/* One parsed line. Its spans and arrays borrow the input and the scratch until the next lp_next. */
struct lp_line {
	struct lp_span measurement;
	const struct lp_tag *tags;
	size_t tag_count;
	const struct lp_field *fields;
	size_t field_count; /* >= 1 */
	bool has_time;
	int64_t time;	/* raw, in the route's precision; see lp_time_to_us */
	size_t line_no; /* 1-based line in the payload */
};

/* Caller-owned, reusable working memory. Zero-initialise; free with lp_scratch_free. */
struct lp_scratch {
	char *bytes;
	size_t bytes_cap;
	struct lp_tag *tags;
	size_t tags_cap;
	struct lp_field *fields;
	size_t fields_cap;
};

void lp_scratch_free(struct lp_scratch *s);

enum lp_error_kind {
	LP_ERR_SYNTAX = 1, /* not line protocol; column says where */
	LP_ERR_STRING,	   /* a string field under strings = "reject" */
	LP_ERR_TIME,	   /* timestamp outside years 1..9999 after the precision is applied */
	LP_ERR_SERIAL,	   /* the serial tag is missing or empty */
	LP_ERR_POINT, /* the point name would be empty, too long, outside the alphabet, or names a missing tag */
};

struct lp_error {
	enum lp_error_kind kind;
	size_t line;   /* 1-based line in the payload, 0 if not about a line */
	size_t column; /* 1-based byte column in that line, 0 if not about a position */
	char message[160];
};

/*
 * Reads the next line of buf[0..len) starting at *pos (start with *pos = 0 and *line_no = 0); skips blank
 * lines and comments. Returns 1 with *out filled (borrowing buf and scratch) and *pos past the line, 0 when
 * no lines are left, or -1 with *err filled (kind LP_ERR_SYNTAX, line and column); after an error the caller
 * may go on with the next line (*pos is past the bad one) or stop. buf need not be NUL-terminated and may
 * hold any bytes; an unescaped NUL ends a token and is a syntax error, but the parser checks no UTF-8 (the
 * caller does, and refuses NUL bytes first). A line holds at most 256 tags and 1024 fields.
 */
int lp_next(const char *buf, size_t len, size_t *pos, size_t *line_no, struct lp_scratch *scratch,
	    struct lp_line *out, struct lp_error *err) __attribute__((warn_unused_result));

/* --- mapping a line to samples ------------------------------------------------------------------- */

enum lp_precision {
	LP_PRECISION_NS = 0, /* InfluxDB's default */
	LP_PRECISION_US,
	LP_PRECISION_MS,
	LP_PRECISION_S,
};

enum lp_string_policy {
	LP_STRINGS_REJECT = 0, /* a string field fails the line (LP_ERR_STRING) */
	LP_STRINGS_IGNORE,     /* string fields are skipped (lp_map_field returns 0) */
};

/*
 * How a line becomes samples. The point name is a template over the line (at most LP_MAX_POINT_NAME
 * characters): "{field}" (the default), "{measurement}", "{tag:NAME}" and literal characters of the point
 * alphabet A-Z a-z 0-9 _ . : / -; e.g. "{measurement}.{field}" or "{tag:channel}/{field}". The serial is the
 * value of tag serial_tag ("" = the serial comes from the route: the topic or a fixed one).
 */
struct lp_mapping {
	char serial_tag[LP_MAX_NAME + 1];
	char point[LP_MAX_POINT_NAME + 1];
	enum lp_precision precision;
	enum lp_string_policy strings;
};

/* Defaults: no serial tag, point "{field}", precision ns, strings reject. */
void lp_mapping_init(struct lp_mapping *map);

/*
 * Sets one mapping key from its text, as a config file or a command line gives it:
 *   precision  = "ns" | "us" | "ms" | "s"
 *   serial_tag = a tag key (1..64 bytes, no '{' '}'), or "" for none
 *   point      = a template as above
 *   strings    = "reject" | "ignore"
 * Returns 0, -ENOENT for an unknown key (so the caller can try its own keys), or -EINVAL with a message in err.
 */
int lp_mapping_set(struct lp_mapping *map, const char *key, const char *value, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Converts t in precision to microseconds since the epoch (ns and floor-divided toward minus infinity).
 * False when the result is outside years 1..9999 or the multiplication would overflow. */
bool lp_time_to_us(int64_t t, enum lp_precision precision, int64_t *out_us)
	__attribute__((warn_unused_result));

/* The line's serial: the value of map->serial_tag. Returns 0, or -1 with err (LP_ERR_SERIAL) when the tag is
 * missing or empty. With no serial_tag configured returns 0 and an empty span. */
int lp_map_serial(const struct lp_line *line, const struct lp_mapping *map, struct lp_span *serial,
		  struct lp_error *err) __attribute__((warn_unused_result));

/* The line's time in µs: its timestamp in map->precision, or received_us when it has none. Returns 0, or -1
 * with err (LP_ERR_TIME). */
int lp_map_time(const struct lp_line *line, const struct lp_mapping *map, int64_t received_us,
		int64_t *time_us, struct lp_error *err) __attribute__((warn_unused_result));

/*
 * Maps field index of line: writes its point name (NUL-terminated, checked against the point alphabet) into
 * point[LP_MAX_POINT_NAME + 1] and its value (bool = 1/0) into *value. Returns 1, 0 for a string field under
 * strings = "ignore" (nothing written), or -1 with err (LP_ERR_STRING, LP_ERR_POINT).
 */
int lp_map_field(const struct lp_line *line, size_t index, const struct lp_mapping *map,
		 char point[LP_MAX_POINT_NAME + 1], double *value, struct lp_error *err)
	__attribute__((warn_unused_result));

const char *lp_precision_name(enum lp_precision precision);

#endif
