// SPDX-License-Identifier: Apache-2.0
/*
 * tz: a reader of TZif files (RFC 8536, versions 1 to 4) into an immutable transition table, and the
 * conversion of local times to UTC with it (see tz.h for why not localtime/mktime).
 */
#include "util/tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/xalloc.h"

#define TZIF_MAX_BYTES (1024 * 1024)
#define DAY_SEC	       INT64_C(86400)
#define FOOTER_HORIZON (10 * 366 * DAY_SEC) /* how far ahead of now the transition table must reach */

struct tz {
	char *name;
	size_t count;	       /* transitions */
	int64_t *at;	       /* transition instants, ascending */
	int32_t *offset_after; /* the UTC offset from at[i] on */
	int32_t initial;       /* the offset before the first transition */
	char *footer; /* the version 2+ footer's POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"), or NULL */
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool name_ok(const char *name)
{
	if (!*name || *name == '/' || strstr(name, "..") || strlen(name) > 128)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("_+-/", *p)))
			return false;
	return true;
}

/* Parses the TZif bytes into tz; false if they are not a TZif file we understand. */
static bool parse_tzif(const unsigned char *buf, size_t len, struct tz *tz)
{
	const unsigned char *p = buf, *end = buf + len;
	uint32_t isut, isstd, leap, timecnt, typecnt, charcnt;
	size_t tsize = 4, lsize = 8;
	const unsigned char *times, *idx, *types;

	if (len < 44 || memcmp(buf, "TZif", 4) != 0)
		return false;
	for (int pass = 0; pass < 2; pass++) {
		if (end - p < 44 || memcmp(p, "TZif", 4) != 0)
			return false;
		isut = be32(p + 20);
		isstd = be32(p + 24);
		leap = be32(p + 28);
		timecnt = be32(p + 32);
		typecnt = be32(p + 36);
		charcnt = be32(p + 40);
		if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || leap > 100000 || charcnt > 100000 ||
		    isut > typecnt || isstd > typecnt)
			return false;
		if (pass == 0 && buf[4] >= '2') {
			/* Skip the 32-bit block: version 2+ files repeat the data with 64-bit times. */
			size_t skip = 44 + (size_t)timecnt * 5 + (size_t)typecnt * 6 + charcnt +
				      (size_t)leap * 8 + isstd + isut;
			if ((size_t)(end - p) < skip)
				return false;
			p += skip;
			tsize = 8;
			lsize = 12;
			continue;
		}
		break;
	}
	p += 44;
	if ((size_t)(end - p) < (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6)
		return false;
	times = p;
	idx = times + (size_t)timecnt * tsize;
	types = idx + timecnt;
	tz->count = timecnt;
	tz->at = xcalloc(timecnt ? timecnt : 1, sizeof(*tz->at));
	tz->offset_after = xcalloc(timecnt ? timecnt : 1, sizeof(*tz->offset_after));
	/* Before the first transition: the first standard-time type (RFC 8536 section 3.2), else type 0. */
	tz->initial = (int32_t)be32(types);
	for (uint32_t t = 0; t < typecnt; t++) {
		if (types[t * 6 + 4] == 0) {
			tz->initial = (int32_t)be32(types + t * 6);
			break;
		}
	}
	for (uint32_t i = 0; i < timecnt; i++) {
		if (idx[i] >= typecnt)
			return false;
		tz->at[i] = tsize == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
		if (i > 0 && tz->at[i] <= tz->at[i - 1])
			return false;
		tz->offset_after[i] = (int32_t)be32(types + idx[i] * 6);
		if (tz->offset_after[i] < -26 * 3600 || tz->offset_after[i] > 26 * 3600)
			return false;
	}
	/* Version 2+: after the 64-bit block, "\n<POSIX TZ rule>\n" for the times after the last transition. */
	if (buf[4] >= '2') {
		const unsigned char *footer = types + (size_t)typecnt * 6;
		size_t rest = (size_t)charcnt + (size_t)leap * lsize + isstd + isut;
		const unsigned char *nl;

		if ((size_t)(end - footer) >= rest + 2 && footer[rest] == '\n' &&
		    (nl = memchr(footer + rest + 1, '\n', (size_t)(end - footer) - rest - 1)) != NULL) {
			size_t n = (size_t)(nl - footer - rest - 1);
			tz->footer = xmalloc(n + 1);
			memcpy(tz->footer, footer + rest + 1, n);
			tz->footer[n] = '\0';
		}
	}
	return true;
}

bool tz_footer_unused(const struct tz *tz, int64_t now_sec)
{
	/* A rule without ',' is a fixed offset ("<+03>-3", "UTC0"): the last transition's offset already is it. */
	if (!tz->footer || !strchr(tz->footer, ','))
		return false;
	return tz->count == 0 || tz->at[tz->count - 1] < now_sec + FOOTER_HORIZON;
}

int tz_load(const char *name, struct tz **out, char *err, size_t errlen)
{
	const char *dir = getenv("TZDIR");
	char path[512];
	unsigned char *buf = NULL;
	struct tz *tz = NULL;
	size_t len;
	FILE *f;
	int rc = -1;

	*out = NULL;
	if (!name_ok(name)) {
		snprintf(err, errlen, "timezone '%.64s' is not a zone name such as \"Europe/Berlin\"", name);
		return -1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name) >=
	    sizeof(path)) {
		snprintf(err, errlen, "timezone '%s': the path under TZDIR is longer than %zu bytes", name,
			 sizeof(path) - 1);
		return -1;
	}
	f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "timezone '%s': cannot read %s: %s", name, path, strerror(errno));
		return -1;
	}
	buf = xmalloc(TZIF_MAX_BYTES);
	len = fread(buf, 1, TZIF_MAX_BYTES, f);
	fclose(f);
	tz = xcalloc(1, sizeof(*tz));
	tz->name = xstrdup(name);
	if (len == TZIF_MAX_BYTES ||
	    !parse_tzif(buf, len, tz)) { /* a cut-off file is not read as a whole one */
		snprintf(err, errlen, "timezone '%s': %s is not a TZif file", name, path);
		goto out;
	}
	if (tz_footer_unused(tz, (int64_t)time(NULL))) {
		time_t last = tz->count ? (time_t)tz->at[tz->count - 1] : 0;
		struct tm tm;
		char when[32] = "its start";

		if (tz->count && gmtime_r(&last, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d", &tm);
		log_warn(
			"tz",
			"timezone '%s': %s lists transitions only up to %s; its rule \"%s\" for later times is "
			"not applied (the last offset stays): install the \"fat\" tzdata files (zic -b fat)",
			name, path, when, tz->footer);
	}
	*out = tz;
	tz = NULL;
	rc = 0;
out:
	tz_free(tz);
	free(buf);
	return rc;
}

void tz_free(struct tz *tz)
{
	if (!tz)
		return;
	free(tz->name);
	free(tz->at);
	free(tz->offset_after);
	free(tz->footer);
	free(tz);
}

const char *tz_name(const struct tz *tz)
{
	return tz->name;
}

int32_t tz_offset_at(const struct tz *tz, int64_t utc_sec)
{
	size_t lo = 0, hi = tz->count;

	if (tz->count == 0 || utc_sec < tz->at[0])
		return tz->initial;
	/* The last transition at or before utc_sec. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->at[mid] <= utc_sec)
			lo = mid;
		else
			hi = mid;
	}
	return tz->offset_after[lo];
}

int64_t tz_local_to_utc(const struct tz *tz, int64_t local_sec)
{
	/* The offsets in force a day either side; transitions are further apart than that in every zone. */
	int32_t before = tz_offset_at(tz, local_sec - DAY_SEC), after = tz_offset_at(tz, local_sec + DAY_SEC);
	int64_t first = local_sec - before, second = local_sec - after;
	bool first_ok = tz_offset_at(tz, first) == before, second_ok = tz_offset_at(tz, second) == after;

	if (first_ok && second_ok)
		return first < second ? first : second; /* occurs twice: the first occurrence */
	if (first_ok)
		return first;
	if (second_ok)
		return second;
	return first; /* in the gap: the offset before it */
}
