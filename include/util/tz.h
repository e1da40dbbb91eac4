/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tz: local wall-clock times of a named zone ("Europe/Berlin") to UTC, for devices that send times without a
 * zone (Tasmota's "Time":"2024-06-01T12:00:00"). localtime/mktime would need TZ set for the whole process, which
 * other threads read at the same moment; so the zone's TZif file (RFC 8536) is read once, at configuration
 * time, into an immutable table that any thread may use without a lock.
 *
 * Limits, documented for operators: the table holds the file's transitions (Debian's "fat" files list them up
 * to 2037); after the last one its offset stays: the file's footer rule (TZif v2+) is not applied, and
 * tz_load warns when a file with such a rule ends within ten years ("slim" files). A local time that occurs twice (the hour the clocks go back)
 * is read as the first occurrence; one that does not occur (the hour they go forward) with the offset before
 * the gap. Leap seconds are ignored, as POSIX time does.
 */
#ifndef MQTT2PG_TZ_H
#define MQTT2PG_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tz;

/*
 * Loads zone name ("Europe/Berlin", "UTC") from $TZDIR or /usr/share/zoneinfo. The name must be a relative
 * path of A-Z a-z 0-9 _ + - / without "..". Returns 0 and an owned zone in *out, or -1 with a message in err.
 */
int tz_load(const char *name, struct tz **out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Frees a zone; NULL is a no-op. */
void tz_free(struct tz *tz);

/* The name it was loaded by (borrowed). */
const char *tz_name(const struct tz *tz);

/* The zone's UTC offset in seconds at the instant utc_sec. */
int32_t tz_offset_at(const struct tz *tz, int64_t utc_sec);

/*
 * Whether the zone's file carries a daylight-saving rule for the times after its last transition (the TZif
 * footer) that this table does not apply, and its transitions end before now_sec + 10 years: a "slim" file,
 * where later times would get the last offset. tz_load logs a warning naming the zone when this is true.
 */
bool tz_footer_unused(const struct tz *tz, int64_t now_sec);
/* Converts local_sec (a wall-clock time counted as if it were UTC) to seconds since the epoch. */
int64_t tz_local_to_utc(const struct tz *tz, int64_t local_sec);

#endif
