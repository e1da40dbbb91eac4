/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Byte strings that arrive from devices: UTF-8 validation and escaping for logs and the database.
 */
#ifndef MQTT2PG_TEXT_H
#define MQTT2PG_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when buf[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF)
 * and contains no NUL byte. */
bool text_is_utf8(const char *buf, size_t len);

/*
 * Writes a printable, NUL-terminated copy of src[0..len) into dst (capacity cap >= 8): valid UTF-8 other than
 * control characters is kept, '\' becomes "\\", control characters and invalid bytes become "\xNN". Output
 * that does not fit ends in "...". The result is always valid UTF-8 with no control characters, so it is safe
 * in a log line and in a PostgreSQL text column. Returns dst.
 */
char *text_escape(char *dst, size_t cap, const char *src, size_t len);

#endif
