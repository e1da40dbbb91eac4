// SPDX-License-Identifier: Apache-2.0
/*
 * text: the guard between device-supplied bytes and anything a human or PostgreSQL reads.
 */
#include "text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (at most len bytes), or 0 if it is not well-formed. */
static size_t utf8_sequence_length(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (len >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (len < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0; /* overlong */
		if (c == 0xed && s[1] >= 0xa0)
			return 0; /* UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (len < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xf4 && s[1] >= 0x90)
			return 0; /* above U+10FFFF */
		return 4;
	}
	return 0;
}

bool text_is_utf8(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;

	while (i < len) {
		size_t n;
		if (s[i] == 0)
			return false;
		n = utf8_sequence_length(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

char *text_escape(char *dst, size_t cap, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t out = 0, i = 0;
	const size_t room = cap - 4; /* keep space for "..." and NUL */

	while (i < len) {
		char piece[5];
		size_t piece_len;
		size_t n = utf8_sequence_length(s + i, len - i);

		if (n == 1 && (s[i] < 0x20 || s[i] == 0x7f)) {
			snprintf(piece, sizeof(piece), "\\x%02x", s[i]);
			piece_len = 4;
		} else if (n == 1 && s[i] == '\\') {
			memcpy(piece, "\\\\", 2);
			piece_len = 2;
		} else if (n == 0) {
			snprintf(piece, sizeof(piece), "\\x%02x", s[i]);
			piece_len = 4;
			n = 1;
		} else {
			memcpy(piece, s + i, n);
			piece_len = n;
		}
		if (out + piece_len > room) {
			memcpy(dst + out, "...", 3);
			out += 3;
			break;
		}
		memcpy(dst + out, piece, piece_len);
		out += piece_len;
		i += n;
	}
	dst[out] = '\0';
	return dst;
}
