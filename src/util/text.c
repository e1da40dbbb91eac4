// SPDX-License-Identifier: Apache-2.0
/*
 * text: the guard between device-supplied bytes and anything a human or PostgreSQL reads.
 */
#include "util/text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/xalloc.h"

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

/*
 * Characters that are valid, printable UTF-8 and still lie to a reader: the bidirectional embeddings and
 * overrides U+202A..U+202E and isolates U+2066..U+2069 reorder what a terminal or an editor shows (U+202E
 * makes "gnp.exe" read as "exe.png"), U+200E/U+200F/U+061C are the invisible direction marks, and
 * U+2028/U+2029 end a line in JSON viewers and log collectors that our newline escaping does not cover.
 * Returns the code point when s (a well-formed n-byte sequence) is one of them, else 0.
 */
static unsigned deceptive_code_point(const unsigned char *s, size_t n)
{
	unsigned cp;

	if (n == 2 && s[0] == 0xd8 && s[1] == 0x9c)
		return 0x061c;
	if (n != 3 || s[0] != 0xe2)
		return 0;
	cp = 0x2000u | ((unsigned)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
	if (cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return cp;
	return 0;
}

/* The escaped form of the character at s (len bytes left) into piece (>= 9 bytes); returns its length and
 * sets *consumed to the bytes of s it stands for. backslash: also double '\' (text_escape; text_sanitize
 * leaves it, as its input may already hold our escapes). */
static size_t escape_one(const unsigned char *s, size_t len, char piece[9], size_t *consumed, bool backslash)
{
	size_t n = utf8_sequence_length(s, len);
	unsigned cp;

	if (n == 0 || (n == 1 && (s[0] < 0x20 || s[0] == 0x7f))) {
		*consumed = 1;
		snprintf(piece, 9, "\\x%02x", s[0]);
		return 4;
	}
	if (backslash && n == 1 && s[0] == '\\') {
		*consumed = 1;
		memcpy(piece, "\\\\", 2);
		return 2;
	}
	if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0) {
		/* C1 controls (U+0080..U+009F): NEL and CSI move cursors and break lines too. */
		*consumed = 2;
		snprintf(piece, 9, "\\x%02x\\x%02x", s[0], s[1]);
		return 8;
	}
	if ((cp = deceptive_code_point(s, n)) != 0) {
		*consumed = n;
		snprintf(piece, 9, "\\u%04x", cp & 0xffffu);
		return 6;
	}
	*consumed = n;
	memcpy(piece, s, n);
	return n;
}

bool text_is_unsafe(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t consumed;
	char piece[9];

	for (size_t i = 0; i < len; i += consumed) {
		size_t n = utf8_sequence_length(s + i, len - i);
		/* Anything escape_one would not copy as is (apart from a backslash) makes the text unsafe. */
		if (escape_one(s + i, len - i, piece, &consumed, false) != n || memcmp(piece, s + i, n) != 0)
			return true;
	}
	return false;
}

static char *escape_into(char *dst, size_t cap, const char *src, size_t len, bool backslash)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t out = 0, i = 0, total = 0, consumed;
	char piece[9];

	/* First the full length, so that "..." appears only when the text really does not fit. */
	for (i = 0; i < len; i += consumed)
		total += escape_one(s + i, len - i, piece, &consumed, backslash);
	const size_t room = total < cap ? cap - 1 : cap - 4;

	for (i = 0; i < len; i += consumed) {
		size_t piece_len = escape_one(s + i, len - i, piece, &consumed, backslash);
		if (out + piece_len > room) {
			memcpy(dst + out, "...", 3);
			out += 3;
			break;
		}
		memcpy(dst + out, piece, piece_len);
		out += piece_len;
	}
	dst[out] = '\0';
	return dst;
}

char *text_escape(char *dst, size_t cap, const char *src, size_t len)
{
	return escape_into(dst, cap, src, len, true);
}

char *text_escape_dup(const char *s)
{
	/* Each byte becomes at most 4 (a \xNN), so len * 4 + 8 always holds the whole escape. */
	size_t len = strlen(s), cap = len * 4 + 8;

	return text_escape(xmalloc(cap), cap, s, len);
}

char *text_sanitize(char *dst, size_t cap, const char *src, size_t len)
{
	return escape_into(dst, cap, src, len, false);
}
