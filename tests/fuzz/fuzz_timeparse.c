// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_timeparse: the strict RFC 3339 reader and its formatter (timeparse.c).
 *
 *  - The input as a (not NUL-terminated) timestamp: timeparse_rfc3339 accepts it exactly when an independent
 *    reference does (the grammar of timeparse.h, valid fields, years 1..9999 after the offset), and then to the
 *    same microsecond, computed with libc's timegm instead of our calendar code.
 *  - Round trip: a parsed time formats as 27 characters of RFC 3339 UTC and parses back to the same value.
 *  - The first 8 bytes as a microsecond count in range and as a double of epoch seconds: both format and parse
 *    back exactly; epoch seconds are accepted only when finite and within years 1..9999.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz_util.h"
#include "payload/timeparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define US_PER_SEC    INT64_C(1000000)
#define MIN_EPOCH_SEC INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define MAX_EPOCH_SEC INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define MIN_US	      (MIN_EPOCH_SEC * US_PER_SEC)
#define MAX_US	      (MAX_EPOCH_SEC * US_PER_SEC + 999999)

struct fields {
	int year, month, day, hour, minute, second;
	int64_t frac_us;
	int offset_sec;
};

static bool digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
	int v = 0;

	if (len - *pos < (size_t)n)
		return false;
	for (int i = 0; i < n; i++) {
		char c = s[*pos + (size_t)i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*pos += (size_t)n;
	*out = v;
	return true;
}

static bool one_of(const char *s, size_t len, size_t *pos, const char *set)
{
	if (*pos >= len || !strchr(set, s[*pos]) || s[*pos] == '\0')
		return false;
	(*pos)++;
	return true;
}

/* The grammar: YYYY-MM-DD[Tt ]hh:mm:ss[.f+]([Zz]|[+-]hh:mm), nothing before or after. */
static bool ref_grammar(const char *s, size_t len, struct fields *f)
{
	size_t pos = 0;
	int oh, om;

	memset(f, 0, sizeof(*f));
	if (!digits(s, len, &pos, 4, &f->year) || !one_of(s, len, &pos, "-") ||
	    !digits(s, len, &pos, 2, &f->month) || !one_of(s, len, &pos, "-") ||
	    !digits(s, len, &pos, 2, &f->day) || !one_of(s, len, &pos, "Tt ") ||
	    !digits(s, len, &pos, 2, &f->hour) || !one_of(s, len, &pos, ":") ||
	    !digits(s, len, &pos, 2, &f->minute) || !one_of(s, len, &pos, ":") ||
	    !digits(s, len, &pos, 2, &f->second))
		return false;
	if (pos < len && s[pos] == '.') {
		int64_t scale = 100000;
		size_t start = ++pos;
		while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
			f->frac_us += (s[pos] - '0') * scale; /* truncated beyond microseconds */
			scale /= 10;
			pos++;
		}
		if (pos == start)
			return false;
	}
	if (one_of(s, len, &pos, "Zz")) {
		f->offset_sec = 0;
	} else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
		int sign = s[pos] == '-' ? -1 : 1;
		pos++;
		if (!digits(s, len, &pos, 2, &oh) || !one_of(s, len, &pos, ":") ||
		    !digits(s, len, &pos, 2, &om))
			return false;
		if (oh > 23 || om > 59)
			return false;
		f->offset_sec = sign * (oh * 3600 + om * 60);
	} else {
		return false;
	}
	return pos == len;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The reference value, or false when the text is not an acceptable timestamp. */
static bool ref_parse(const char *s, size_t len, int64_t *out_us)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	struct fields f;
	struct tm tm;
	time_t t;
	int64_t sec;

	if (!ref_grammar(s, len, &f))
		return false;
	if (f.year < 1 || f.month < 1 || f.month > 12 || f.day < 1 ||
	    f.day > dim[f.month - 1] + (f.month == 2 && leap_year(f.year)) || f.hour > 23 || f.minute > 59 ||
	    f.second > 59)
		return false; /* :60 is refused in any minute (issue 15) */
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = f.year - 1900;
	tm.tm_mon = f.month - 1;
	tm.tm_mday = f.day;
	tm.tm_hour = f.hour;
	tm.tm_min = f.minute;
	tm.tm_sec = f.second;
	t = timegm(&tm);
	sec = (int64_t)t - f.offset_sec;
	if (sec < MIN_EPOCH_SEC || sec > MAX_EPOCH_SEC)
		return false;
	*out_us = sec * US_PER_SEC + f.frac_us;
	return true;
}

/* Formats us and checks that the text is 27 characters that parse back to us. */
static void check_round_trip(int64_t us)
{
	char buf[64], *copy;
	int64_t again = 0;
	size_t n;

	memset(buf, 'X', sizeof(buf));
	timeparse_format(us, buf, sizeof(buf));
	n = strnlen(buf, sizeof(buf));
	FUZZ_CHECK(n == 27, "format(%lld) = \"%.64s\" (%zu characters, want 27)", (long long)us, buf, n);
	copy = fuzz_copy((const uint8_t *)buf, n);
	FUZZ_CHECK(timeparse_rfc3339(copy, n, &again), "format(%lld) = \"%s\" does not parse", (long long)us,
		   buf);
	FUZZ_CHECK(again == us, "format(%lld) = \"%s\" parses as %lld", (long long)us, buf, (long long)again);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_copy(data, size);
	int64_t us = 0, want = 0;
	bool ok = timeparse_rfc3339(text, size, &us);
	bool want_ok = ref_parse(text, size, &want);

	FUZZ_CHECK(ok == want_ok, "timeparse_rfc3339(\"%.*s\") = %d, reference %d", (int)size, text, (int)ok,
		   (int)want_ok);
	if (ok) {
		FUZZ_CHECK(us == want, "\"%.*s\" parsed as %lld, reference %lld", (int)size, text,
			   (long long)us, (long long)want);
		FUZZ_CHECK(us >= MIN_US && us <= MAX_US, "%lld out of range", (long long)us);
		check_round_trip(us);
	}
	free(text);

	if (size >= 8) {
		uint64_t raw;
		double seconds;
		int64_t from_epoch = 0;

		memcpy(&raw, data, 8);
		/* Any microsecond of years 1..9999 formats and parses back. */
		check_round_trip(MIN_US + (int64_t)(raw % (uint64_t)(MAX_US - MIN_US + 1)));

		memcpy(&seconds, data, 8);
		ok = timeparse_epoch_seconds(seconds, &from_epoch);
		want_ok = isfinite(seconds) && seconds >= (double)MIN_EPOCH_SEC &&
			  seconds <= (double)MAX_EPOCH_SEC;
		FUZZ_CHECK(ok == want_ok, "timeparse_epoch_seconds(%.17g) = %d", seconds, (int)ok);
		if (ok) {
			FUZZ_CHECK(from_epoch >= MIN_US && from_epoch <= MAX_US,
				   "epoch %.17g -> %lld out of range", seconds, (long long)from_epoch);
			FUZZ_CHECK(llabs(from_epoch - (int64_t)llround(seconds * 1e6)) <= 1,
				   "epoch %.17g -> %lld", seconds, (long long)from_epoch);
			check_round_trip(from_epoch);
		}
	}
	return 0;
}
