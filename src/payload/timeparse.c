// SPDX-License-Identifier: Apache-2.0
/*
 * timeparse: our own strict RFC 3339 reader. strptime and timegm accept too much (and depend on TZ and
 * locale); a device's timestamp is either exactly right or rejected with a reason.
 */
#include "payload/timeparse.h"

#include <math.h>
#include <stdio.h>

#define US_PER_SEC    INT64_C(1000000)
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in seconds since the epoch. */
#define MIN_EPOCH_SEC INT64_C(-62135596800)
#define MAX_EPOCH_SEC INT64_C(253402300799)

int64_t timeparse_days_from_civil(int64_t year, unsigned month, unsigned day)
{
	/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar. */
	year -= month <= 2;
	const int64_t era = (year >= 0 ? year : year - 399) / 400;
	const unsigned yoe = (unsigned)(year - era * 400);
	const unsigned doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t year, unsigned month)
{
	static const unsigned days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Reads exactly n decimal digits at *p (bounded by end). */
static bool read_digits(const char **p, const char *end, int n, unsigned *out)
{
	unsigned v = 0;

	if (end - *p < n)
		return false;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, const char *end, char c1, char c2)
{
	if (*p >= end || (**p != c1 && **p != c2))
		return false;
	(*p)++;
	return true;
}

/* The date-time separator: 'T', 't', or a space (RFC 3339 section 5.6 allows it). */
static bool expect_separator(const char **p, const char *end)
{
	return expect(p, end, 'T', 't') || expect(p, end, ' ', ' ');
}

bool timeparse_rfc3339(const char *s, size_t len, int64_t *out_us)
{
	const char *p = s, *end = s + len;
	unsigned year, month, day, hour, minute, second, frac_us = 0;
	int64_t offset_sec = 0;

	if (!read_digits(&p, end, 4, &year) || !expect(&p, end, '-', '-') ||
	    !read_digits(&p, end, 2, &month) || !expect(&p, end, '-', '-') ||
	    !read_digits(&p, end, 2, &day) || !expect_separator(&p, end) || !read_digits(&p, end, 2, &hour) ||
	    !expect(&p, end, ':', ':') || !read_digits(&p, end, 2, &minute) || !expect(&p, end, ':', ':') ||
	    !read_digits(&p, end, 2, &second))
		return false;
	if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
	    minute > 59 || second > 59)
		return false; /* :60 too: folded onto :59 it would drop that second's genuine reading as a
			       * duplicate, and a device clock that names a leap second is not one we can place */
	if (p < end && *p == '.') {
		unsigned scale = 100000;
		int digits = 0;
		p++;
		while (p < end && *p >= '0' && *p <= '9') {
			frac_us += (unsigned)(*p - '0') * scale;
			scale /= 10;
			digits++;
			p++;
		}
		if (digits == 0)
			return false;
	}
	if (p < end && (*p == 'Z' || *p == 'z')) {
		p++;
	} else if (p < end && (*p == '+' || *p == '-')) {
		unsigned oh, om;
		int sign = *p == '-' ? -1 : 1;
		p++;
		if (!read_digits(&p, end, 2, &oh) || !expect(&p, end, ':', ':') ||
		    !read_digits(&p, end, 2, &om) || oh > 23 || om > 59)
			return false;
		offset_sec = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		return false; /* no zone: ambiguous, never guessed */
	}
	if (p != end)
		return false;

	int64_t sec = timeparse_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
		      second - offset_sec;
	if (sec < MIN_EPOCH_SEC || sec > MAX_EPOCH_SEC)
		return false;
	*out_us = sec * US_PER_SEC + frac_us;
	return true;
}

bool timeparse_epoch_seconds(double seconds, int64_t *out_us)
{
	if (!isfinite(seconds) || seconds < (double)MIN_EPOCH_SEC || seconds > (double)MAX_EPOCH_SEC)
		return false;
	*out_us = (int64_t)llround(seconds * 1e6);
	return true;
}

void timeparse_format(int64_t us, char *buf, size_t cap)
{
	int64_t sec = us >= 0 ? us / US_PER_SEC : -((-us + US_PER_SEC - 1) / US_PER_SEC);
	int64_t frac = us - sec * US_PER_SEC;
	int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
	int64_t rem = sec - days * 86400;

	/* civil_from_days (Hinnant) */
	int64_t z = days + 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	const unsigned d = doy - (153 * mp + 2) / 5 + 1;
	const unsigned m = mp < 10 ? mp + 3 : mp - 9;
	const int64_t y = (int64_t)yoe + era * 400 + (m <= 2);

	snprintf(buf, cap, "%04lld-%02u-%02uT%02u:%02u:%02u.%06lldZ", (long long)y, m, d,
		 (unsigned)(rem / 3600), (unsigned)(rem % 3600 / 60), (unsigned)(rem % 60), (long long)frac);
}
