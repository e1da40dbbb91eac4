/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Timestamps on the wire: RFC 3339 text and epoch seconds, to microseconds since the Unix epoch (UTC).
 */
#ifndef MQTT2PG_TIMEPARSE_H
#define MQTT2PG_TIMEPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses an RFC 3339 date-time with a zone ("2026-11-21T10:30:00Z", "...T10:30:00.123+01:00"; 't', 'z' and a
 * space separator are accepted as RFC 3339 allows). Impossible dates (2026-02-30), a missing zone, or
 * trailing bytes are errors. Fractions beyond microseconds are truncated. Returns false on any error.
 */
bool timeparse_rfc3339(const char *s, size_t len, int64_t *out_us) __attribute__((warn_unused_result));

/* Converts epoch seconds (fraction allowed) to microseconds; false if not finite or out of range
 * (years 1..9999). */
bool timeparse_epoch_seconds(double seconds, int64_t *out_us) __attribute__((warn_unused_result));

/* Formats microseconds since the epoch as RFC 3339 UTC with microseconds into buf (cap >= 32). */
void timeparse_format(int64_t us, char *buf, size_t cap);

/* Days since 1970-01-01 of a proleptic Gregorian date (no range check). */
int64_t timeparse_days_from_civil(int64_t year, unsigned month, unsigned day);

#endif
