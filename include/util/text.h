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
 * control characters is kept, '\' becomes "\\", control characters (C0, DEL, C1) and invalid bytes become
 * "\xNN", and the characters that reorder or break what a reader sees (bidirectional overrides, embeddings,
 * isolates and marks U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C; U+2028/U+2029 line and
 * paragraph separators) become "\uNNNN". Output that does not fit ends in "...". The result is always valid
 * UTF-8 with none of those characters, so it is safe in a log line, on a terminal and in a PostgreSQL text
 * column. Returns dst.
 */
char *text_escape(char *dst, size_t cap, const char *src, size_t len);

/* An owned text_escape of the NUL-terminated s, never cut short: for operator- or file-supplied text in
 * messages. */
char *text_escape_dup(const char *s);

/*
 * As text_escape, but a backslash is kept as it is: the last pass over text that may already contain
 * text_escape's output (log.c runs every formatted line through it), where doubling would only add noise.
 * Its output is as safe as text_escape's; it is not reversible. Returns dst.
 */
char *text_sanitize(char *dst, size_t cap, const char *src, size_t len);

/* True when buf[0..len) holds anything text_sanitize would rewrite: invalid UTF-8, a control character or
 * one of the bidirectional and separator characters above. For refusing such text at the door (names). */
bool text_is_unsafe(const char *buf, size_t len);

#endif
