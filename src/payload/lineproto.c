// SPDX-License-Identifier: Apache-2.0
/*
 * lineproto: an InfluxDB line protocol reader and the mapping of its lines to samples (see lineproto.h). A
 * hand-written scanner over pointer + length: MQTT payloads are not NUL-terminated, and strtod must never
 * run past a token, so numbers are checked against the grammar and copied into a bounded local buffer first.
 */
#include "payload/lineproto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define US_PER_SEC	 INT64_C(1000000)
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds, as timeparse.c bounds them. */
#define MIN_US		 (INT64_C(-62135596800) * US_PER_SEC)
#define MAX_US		 (INT64_C(253402300799) * US_PER_SEC + 999999)
/* Longest float token we accept: a double needs at most ~770 significant digits to round exactly; more is
 * not a measurement. */
#define MAX_NUMBER_TOKEN 400
/* Bounds on one line, so that the duplicate-key checks (quadratic) stay cheap on hostile input. */
#define MAX_TAGS	 256
#define MAX_FIELDS	 1024

void lp_scratch_free(struct lp_scratch *s)
{
	if (!s)
		return;
	free(s->bytes);
	free(s->tags);
	free(s->fields);
	memset(s, 0, sizeof(*s));
}

static int fail_at(struct lp_error *err, enum lp_error_kind kind, size_t line, size_t column, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));

static int fail_at(struct lp_error *err, enum lp_error_kind kind, size_t line, size_t column, const char *fmt,
		   ...)
{
	va_list ap;

	err->kind = kind;
	err->line = line;
	err->column = column;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* --- the scanner -------------------------------------------------------------------------------------- */

/* The state of one line: [start, end) without its LF and CR. */
struct lp_cursor {
	const char *start, *p, *end;
	size_t line_no;
	struct lp_scratch *scratch;
	size_t scratch_used;
	struct lp_error *err;
};

static int syntax(struct lp_cursor *c, const char *at, const char *what)
{
	return fail_at(c->err, LP_ERR_SYNTAX, c->line_no, (size_t)(at - c->start) + 1,
		       "line %zu, column %zu: %s", c->line_no, (size_t)(at - c->start) + 1, what);
}

/*
 * Reads a token up to an unescaped byte of stops (or the end of the line) and unescapes it: "\X" with X in
 * escapable becomes X; a backslash before anything else stays. A backslash always takes the next byte with
 * it, so an escaped stop never ends the token.
 */
static struct lp_span read_token(struct lp_cursor *c, const char *stops, const char *escapable)
{
	const char *start = c->p;
	bool escaped = false;
	struct lp_span out;

	while (c->p < c->end && !strchr(stops, *c->p)) {
		if (*c->p == '\\' && c->p + 1 < c->end) {
			escaped = escaped || strchr(escapable, c->p[1]) != NULL;
			c->p += 2;
		} else {
			c->p++;
		}
	}
	/* strchr(stops, '\0') matches the terminator, so a NUL byte ends every token, and the caller, finding no
	 * delimiter it expects there, reports it. */
	if (!escaped)
		return (struct lp_span){ start, (size_t)(c->p - start) };
	{
		char *dst = c->scratch->bytes + c->scratch_used;
		size_t n = 0;

		for (const char *q = start; q < c->p; q++) {
			if (*q == '\\' && q + 1 < c->p && strchr(escapable, q[1])) {
				dst[n++] = q[1];
				q++;
			} else {
				dst[n++] = *q;
			}
		}
		c->scratch_used += n;
		out = (struct lp_span){ dst, n };
	}
	return out;
}

static bool at(const struct lp_cursor *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

static void skip_spaces(struct lp_cursor *c)
{
	while (c->p < c->end && *c->p == ' ')
		c->p++;
}

static bool span_eq(struct lp_span a, struct lp_span b)
{
	return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static bool span_is(struct lp_span a, const char *text)
{
	return a.len == strlen(text) && memcmp(a.ptr, text, a.len) == 0;
}

/* Parses [-]digits into int64 (negative allowed when sign is true); false on overflow or no digits. */
static bool parse_int64(const char *p, const char *end, int64_t *out)
{
	bool negative = p < end && *p == '-';
	uint64_t v = 0, limit;

	if (negative)
		p++;
	if (p >= end)
		return false;
	limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (limit - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = negative ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

static bool parse_uint64(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (p >= end)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return true;
}

static size_t count_digits(const char *p, const char *end)
{
	size_t n = 0;

	while (p + n < end && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

/* [-](digits[.digits*] | .digits)([eE][+-]digits): the float grammar InfluxDB accepts, minus NaN and Inf. */
static bool float_grammar(const char *p, const char *end)
{
	size_t whole, frac = 0;

	if (p < end && *p == '-')
		p++;
	whole = count_digits(p, end);
	p += whole;
	if (p < end && *p == '.') {
		p++;
		frac = count_digits(p, end);
		p += frac;
	}
	if (whole == 0 && frac == 0)
		return false;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (count_digits(p, end) == 0)
			return false;
		p += count_digits(p, end);
	}
	return p == end;
}

static bool parse_bool(struct lp_span v, bool *out)
{
	static const char *const yes[] = { "t", "T", "true", "True", "TRUE" };
	static const char *const no[] = { "f", "F", "false", "False", "FALSE" };

	for (size_t i = 0; i < 5; i++) {
		if (span_is(v, yes[i])) {
			*out = true;
			return true;
		}
		if (span_is(v, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Reads a field value that is not a string: the bytes up to ',', ' ' or the end of the line. */
static int read_scalar(struct lp_cursor *c, struct lp_field *f)
{
	const char *start = c->p, *end;
	char number[MAX_NUMBER_TOKEN + 1];
	size_t len;

	while (c->p < c->end && *c->p != ',' && *c->p != ' ')
		c->p++;
	end = c->p;
	len = (size_t)(end - start);
	if (len == 0)
		return syntax(c, start, "missing field value");
	if (parse_bool((struct lp_span){ start, len }, &f->b)) {
		f->type = LP_FIELD_BOOL;
		f->value = f->b ? 1.0 : 0.0;
		return 0;
	}
	if (end[-1] == 'i') {
		if (!parse_int64(start, end - 1, &f->i))
			return syntax(c, start, "invalid or out-of-range integer (int64) field value");
		f->type = LP_FIELD_INT;
		f->value = (double)f->i;
		return 0;
	}
	if (end[-1] == 'u') {
		if (!parse_uint64(start, end - 1, &f->u))
			return syntax(c, start, "invalid or out-of-range unsigned (uint64) field value");
		f->type = LP_FIELD_UINT;
		f->value = (double)f->u;
		return 0;
	}
	if (!float_grammar(start, end))
		return syntax(c, start, "field value is not a number, boolean or quoted string");
	if (len > MAX_NUMBER_TOKEN)
		return syntax(c, start, "float field value is too long");
	memcpy(number, start, len);
	number[len] = '\0';
	f->type = LP_FIELD_FLOAT;
	f->value = strtod(number, NULL);
	if (!isfinite(f->value))
		return syntax(c, start, "float field value is beyond the range of a double");
	return 0;
}

/* Reads a quoted string value at c->p (on the opening quote): "\"" and "\\" are escapes. */
static int read_string(struct lp_cursor *c, struct lp_field *f)
{
	const char *open = c->p;
	struct lp_span s;

	c->p++;
	s = read_token(c, "\"", "\"\\");
	if (!at(c, '"'))
		return syntax(c, open, "unterminated string field value");
	c->p++;
	f->type = LP_FIELD_STRING;
	f->value = 0;
	f->str = s;
	return 0;
}

static void grow_arrays(struct lp_scratch *s, size_t tags, size_t fields)
{
	if (tags > s->tags_cap) {
		s->tags_cap = tags * 2;
		s->tags = xrealloc(s->tags, s->tags_cap * sizeof(*s->tags));
	}
	if (fields > s->fields_cap) {
		s->fields_cap = fields * 2;
		s->fields = xrealloc(s->fields, s->fields_cap * sizeof(*s->fields));
	}
}

static int read_tags(struct lp_cursor *c, size_t *count)
{
	while (at(c, ',')) {
		const char *key_at = ++c->p;
		struct lp_tag t;

		t.key = read_token(c, ",= ", ",= ");
		if (t.key.len == 0)
			return syntax(c, key_at, "empty tag key");
		if (!at(c, '='))
			return syntax(c, c->p, "tag key without '='");
		c->p++;
		t.value = read_token(c, ", ", ",= ");
		if (t.value.len == 0)
			return syntax(c, c->p, "empty tag value");
		if (*count == MAX_TAGS)
			return syntax(c, key_at, "more than 256 tags");
		for (size_t i = 0; i < *count; i++)
			if (span_eq(c->scratch->tags[i].key, t.key))
				return syntax(c, key_at, "duplicate tag key");
		grow_arrays(c->scratch, *count + 1, 0);
		c->scratch->tags[(*count)++] = t;
	}
	return 0;
}

static int read_fields(struct lp_cursor *c, size_t *count)
{
	for (;;) {
		const char *key_at = c->p;
		struct lp_field f = { 0 };

		f.key = read_token(c, ",= ", ",= ");
		if (f.key.len == 0)
			return syntax(c, key_at, "empty field key");
		if (!at(c, '='))
			return syntax(c, c->p, "field key without '=' and value");
		c->p++;
		if (at(c, '"') ? read_string(c, &f) < 0 : read_scalar(c, &f) < 0)
			return -1;
		if (*count == MAX_FIELDS)
			return syntax(c, key_at, "more than 1024 fields");
		for (size_t i = 0; i < *count; i++)
			if (span_eq(c->scratch->fields[i].key, f.key))
				return syntax(c, key_at, "duplicate field key");
		grow_arrays(c->scratch, 0, *count + 1);
		c->scratch->fields[(*count)++] = f;
		if (!at(c, ','))
			return 0;
		c->p++;
	}
}

static int parse_line(struct lp_cursor *c, struct lp_line *out)
{
	const char *here;
	size_t tag_count = 0, field_count = 0;

	out->measurement = read_token(c, ", ", ", ");
	if (out->measurement.len == 0)
		return syntax(c, c->p, "empty measurement");
	if (read_tags(c, &tag_count) < 0)
		return -1;
	if (!at(c, ' '))
		return syntax(c, c->p, c->p < c->end ? "unexpected byte after the tags" : "no fields");
	skip_spaces(c);
	if (c->p >= c->end)
		return syntax(c, c->p, "no fields");
	if (read_fields(c, &field_count) < 0)
		return -1;
	if (c->p < c->end && *c->p != ' ')
		return syntax(c, c->p, "unexpected byte after the fields");
	skip_spaces(c);
	out->has_time = false;
	if (c->p < c->end) {
		here = c->p;
		while (c->p < c->end && *c->p != ' ')
			c->p++;
		if (!parse_int64(here, c->p, &out->time))
			return syntax(c, here, "timestamp is not a decimal integer within int64");
		out->has_time = true;
		skip_spaces(c);
		if (c->p < c->end)
			return syntax(c, c->p, "unexpected data after the timestamp");
	}
	out->tags = c->scratch->tags;
	out->tag_count = tag_count;
	out->fields = c->scratch->fields;
	out->field_count = field_count;
	out->line_no = c->line_no;
	return 0;
}

int lp_next(const char *buf, size_t len, size_t *pos, size_t *line_no, struct lp_scratch *scratch,
	    struct lp_line *out, struct lp_error *err)
{
	while (*pos < len) {
		const char *start = buf + *pos, *nl = memchr(start, '\n', len - *pos);
		const char *end = nl ? nl : buf + len;
		struct lp_cursor c;

		*pos = (size_t)(end - buf) + (nl ? 1 : 0);
		(*line_no)++;
		if (end > start && end[-1] == '\r')
			end--;
		c = (struct lp_cursor){ start, start, end, *line_no, scratch, 0, err };
		while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
			c.p++;
		if (c.p == c.end || *c.p == '#')
			continue; /* blank line or comment */
		/* Unescaping only shrinks a token, so the line's length bounds what the scratch must hold. */
		if (scratch->bytes_cap < (size_t)(end - start) + 1) {
			scratch->bytes_cap = (size_t)(end - start) + 1;
			scratch->bytes = xrealloc(scratch->bytes, scratch->bytes_cap);
		}
		grow_arrays(scratch, 8, 8);
		return parse_line(&c, out) < 0 ? -1 : 1;
	}
	return 0;
}

/* --- mapping ------------------------------------------------------------------------------------------ */

static bool point_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == ':' || ch == '/' || ch == '-';
}

void lp_mapping_init(struct lp_mapping *map)
{
	memset(map, 0, sizeof(*map));
	memcpy(map->point, "{field}", sizeof("{field}"));
	map->precision = LP_PRECISION_NS;
	map->strings = LP_STRINGS_REJECT;
}

const char *lp_precision_name(enum lp_precision precision)
{
	switch (precision) {
	case LP_PRECISION_NS:
		return "ns";
	case LP_PRECISION_US:
		return "us";
	case LP_PRECISION_MS:
		return "ms";
	case LP_PRECISION_S:
		return "s";
	}
	return "unknown";
}

/* Checks a point template: placeholders {field}, {measurement}, {tag:NAME}; literals of the point alphabet. */
static bool point_template_ok(const char *t, char *err, size_t errlen)
{
	if (*t == '\0') {
		snprintf(err, errlen, "point template is empty");
		return false;
	}
	while (*t) {
		if (*t == '{') {
			const char *close = strchr(t, '}');
			size_t n = close ? (size_t)(close - t) + 1 : 0;

			if (!close) {
				snprintf(err, errlen, "point template: '{' without '}'");
				return false;
			}
			if (!((n == 7 && memcmp(t, "{field}", 7) == 0) ||
			      (n == 13 && memcmp(t, "{measurement}", 13) == 0) ||
			      (n > 6 && n - 6 <= LP_MAX_NAME && memcmp(t, "{tag:", 5) == 0 &&
			       !memchr(t + 5, '{', n - 6)))) {
				snprintf(
					err, errlen,
					"point template: unknown placeholder '%.*s' (known: {field}, {measurement}, {tag:NAME})",
					(int)n, t);
				return false;
			}
			t = close + 1;
		} else if (point_char(*t)) {
			t++;
		} else {
			snprintf(err, errlen, "point template: '%c' is outside A-Z a-z 0-9 _ . : / -", *t);
			return false;
		}
	}
	return true;
}

int lp_mapping_set(struct lp_mapping *map, const char *key, const char *value, char *err, size_t errlen)
{
	if (strcmp(key, "precision") == 0) {
		static const char *const names[] = { "ns", "us", "ms", "s" };
		for (int i = 0; i < 4; i++) {
			if (strcmp(value, names[i]) == 0) {
				map->precision = (enum lp_precision)i;
				return 0;
			}
		}
		snprintf(err, errlen, "precision must be \"ns\", \"us\", \"ms\" or \"s\", not '%.32s'",
			 value);
		return -EINVAL;
	}
	if (strcmp(key, "serial_tag") == 0) {
		if (strlen(value) > LP_MAX_NAME || strpbrk(value, "{}")) {
			snprintf(err, errlen, "serial_tag must be a tag key of at most %d bytes",
				 LP_MAX_NAME);
			return -EINVAL;
		}
		memcpy(map->serial_tag, value, strlen(value) + 1);
		return 0;
	}
	if (strcmp(key, "point") == 0) {
		if (strlen(value) > LP_MAX_POINT_NAME) {
			snprintf(err, errlen, "point template is longer than %d characters",
				 LP_MAX_POINT_NAME);
			return -EINVAL;
		}
		if (!point_template_ok(value, err, errlen))
			return -EINVAL;
		memcpy(map->point, value, strlen(value) + 1);
		return 0;
	}
	if (strcmp(key, "strings") == 0) {
		if (strcmp(value, "reject") == 0)
			map->strings = LP_STRINGS_REJECT;
		else if (strcmp(value, "ignore") == 0)
			map->strings = LP_STRINGS_IGNORE;
		else {
			snprintf(err, errlen, "strings must be \"reject\" or \"ignore\"");
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

bool lp_time_to_us(int64_t t, enum lp_precision precision, int64_t *out_us)
{
	int64_t us;

	switch (precision) {
	case LP_PRECISION_NS:
		/* Floor division: -1 ns is in the microsecond before the epoch, not at it. */
		us = t / 1000 - (t % 1000 < 0 ? 1 : 0);
		break;
	case LP_PRECISION_US:
		us = t;
		break;
	case LP_PRECISION_MS:
		if (t > MAX_US / 1000 || t < MIN_US / 1000)
			return false;
		us = t * 1000;
		break;
	case LP_PRECISION_S:
		if (t > MAX_US / US_PER_SEC || t < MIN_US / US_PER_SEC)
			return false;
		us = t * US_PER_SEC;
		break;
	default:
		return false;
	}
	if (us < MIN_US || us > MAX_US)
		return false;
	*out_us = us;
	return true;
}

static const struct lp_tag *find_tag(const struct lp_line *line, const char *key, size_t key_len)
{
	for (size_t i = 0; i < line->tag_count; i++)
		if (line->tags[i].key.len == key_len && memcmp(line->tags[i].key.ptr, key, key_len) == 0)
			return &line->tags[i];
	return NULL;
}

int lp_map_serial(const struct lp_line *line, const struct lp_mapping *map, struct lp_span *serial,
		  struct lp_error *err)
{
	const struct lp_tag *tag;

	*serial = (struct lp_span){ NULL, 0 };
	if (map->serial_tag[0] == '\0')
		return 0;
	tag = find_tag(line, map->serial_tag, strlen(map->serial_tag));
	if (!tag)
		return fail_at(err, LP_ERR_SERIAL, line->line_no, 0,
			       "line %zu has no tag '%s' naming the device", line->line_no, map->serial_tag);
	if (tag->value.len == 0)
		return fail_at(err, LP_ERR_SERIAL, line->line_no, 0,
			       "line %zu: tag '%s' naming the device is empty", line->line_no,
			       map->serial_tag);
	*serial = tag->value;
	return 0;
}

int lp_map_time(const struct lp_line *line, const struct lp_mapping *map, int64_t received_us,
		int64_t *time_us, struct lp_error *err)
{
	if (!line->has_time) {
		*time_us = received_us;
		return 0;
	}
	if (!lp_time_to_us(line->time, map->precision, time_us))
		return fail_at(err, LP_ERR_TIME, line->line_no, 0,
			       "line %zu: timestamp %lld (%s) is outside years 1..9999", line->line_no,
			       (long long)line->time, lp_precision_name(map->precision));
	return 0;
}

/* Appends span to point[*n] if it fits and every byte is of the point alphabet. */
static bool append_point(char *point, size_t *n, const char *text, size_t len)
{
	if (len > LP_MAX_POINT_NAME - *n)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!point_char(text[i]))
			return false;
	memcpy(point + *n, text, len);
	*n += len;
	return true;
}

int lp_map_field(const struct lp_line *line, size_t index, const struct lp_mapping *map,
		 char point[LP_MAX_POINT_NAME + 1], double *value, struct lp_error *err)
{
	const struct lp_field *f = &line->fields[index];
	const char *t = map->point;
	size_t n = 0;

	if (f->type == LP_FIELD_STRING) {
		if (map->strings == LP_STRINGS_IGNORE)
			return 0;
		return fail_at(err, LP_ERR_STRING, line->line_no, 0,
			       "line %zu: field '%.*s' is a string, not a number", line->line_no,
			       (int)(f->key.len > 64 ? 64 : f->key.len), f->key.ptr);
	}
	while (*t) {
		struct lp_span piece = { t, 1 };
		const char *next = t + 1;

		if (*t == '{') {
			const char *close = strchr(t, '}');
			next = close + 1;
			if (strncmp(t, "{field}", 7) == 0) {
				piece = f->key;
			} else if (strncmp(t, "{measurement}", 13) == 0) {
				piece = line->measurement;
			} else {
				const struct lp_tag *tag = find_tag(line, t + 5, (size_t)(close - t - 5));
				if (!tag)
					return fail_at(err, LP_ERR_POINT, line->line_no, 0,
						       "line %zu has no tag '%.*s' for the point name",
						       line->line_no, (int)(close - t - 5), t + 5);
				piece = tag->value;
			}
		}
		if (!append_point(point, &n, piece.ptr, piece.len))
			return fail_at(
				err, LP_ERR_POINT, line->line_no, 0,
				"line %zu: point name for field '%.*s' is longer than %d characters or has "
				"characters outside A-Z a-z 0-9 _ . : / -",
				line->line_no, (int)(f->key.len > 64 ? 64 : f->key.len), f->key.ptr,
				LP_MAX_POINT_NAME);
		t = next;
	}
	if (n == 0)
		return fail_at(err, LP_ERR_POINT, line->line_no, 0, "line %zu: empty point name",
			       line->line_no);
	point[n] = '\0';
	*value = f->value;
	return 1;
}
