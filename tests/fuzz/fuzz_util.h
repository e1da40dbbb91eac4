/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the libFuzzer targets in tests/fuzz: exact-size copies of the input (so AddressSanitizer
 * sees any read past a length that is not NUL-terminated, as Paho's topics and payloads are not), a property
 * check that aborts with a message, and an independent RFC 3629 reader that decodes code points
 * arithmetically (not with text.c's byte-range table), used as the reference the real code is compared with.
 */
#ifndef MQTT2PG_FUZZ_UTIL_H
#define MQTT2PG_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property that must hold for every input: print what broke and abort, which libFuzzer reports as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                          \
	do {                                                                                           \
		if (!(cond)) {                                                                         \
			fprintf(stderr, "\nPROPERTY FAILED %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                                  \
			fprintf(stderr, "\n");                                                         \
			abort();                                                                       \
		}                                                                                      \
	} while (0)

/* An owned copy of exactly n bytes, not NUL-terminated: reading s[n] is a heap overflow ASan reports. */
static inline char *fuzz_copy(const uint8_t *data, size_t n)
{
	char *p = malloc(n ? n : 1);

	if (!p)
		abort();
	if (n)
		memcpy(p, data, n);
	return p;
}

/* An owned NUL-terminated copy of n bytes (for APIs that take a C string). */
static inline char *fuzz_cstr(const uint8_t *data, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		abort();
	if (n)
		memcpy(p, data, n);
	p[n] = '\0';
	return p;
}

/*
 * Reference UTF-8 reader: the length of the well-formed sequence at s (len bytes available) and its code
 * point, or 0 when it is not well-formed (bad lead byte, missing or bad continuation, overlong form,
 * UTF-16 surrogate, beyond U+10FFFF).
 */
static inline size_t ref_utf8_next(const unsigned char *s, size_t len, uint32_t *cp_out)
{
	static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t n;
	uint32_t cp;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		n = 1;
		cp = s[0];
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min_cp[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	*cp_out = cp;
	return n;
}

/* Reference for text_is_utf8: well-formed UTF-8 and no NUL. */
static inline bool ref_is_utf8(const void *buf, size_t len)
{
	const unsigned char *s = buf;
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		size_t n = ref_utf8_next(s + i, len - i, &cp);
		if (n == 0 || cp == 0)
			return false;
		i += n;
	}
	return true;
}

/* C0 controls, DEL and C1 controls: the code points that move cursors or break lines in a terminal or log. */
static inline bool ref_is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* True when buf[0..len) is valid UTF-8 without NUL and without any control code point. */
static inline bool ref_is_printable_utf8(const void *buf, size_t len)
{
	const unsigned char *s = buf;
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		size_t n = ref_utf8_next(s + i, len - i, &cp);
		if (n == 0 || ref_is_control(cp))
			return false;
		i += n;
	}
	return true;
}

/*
 * The README's point alphabet, written here independently of decode_point_name_ok so that a target checks
 * the decoders against the documentation rather than against themselves: 1..64 of A-Z a-z 0-9 _ . : / -.
 */
static inline bool fuzz_point_name_ok(const char *name)
{
	size_t len = strnlen(name, 65);

	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-", name[i]))
			return false;
	return true;
}

#endif
