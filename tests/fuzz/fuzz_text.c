// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_text: the guard between device bytes and logs/text columns (text.c).
 *
 *  - text_is_utf8 agrees with an independent RFC 3629 reader (fuzz_util.h) on every input;
 *  - text_escape, for several capacities (the minimum 8, small ones chosen by the input, and one that always
 *    fits), writes inside dst[0..cap) only (dst is exactly cap bytes, so ASan sees any overflow), leaves a
 *    NUL-terminated string that is valid UTF-8 without any control character (C0, DEL, C1), and equals the
 *    reference escaping of the header's contract ('\' -> "\\", control characters and invalid bytes ->
 *    "\xNN" per byte, bidi controls and U+2028/2029 -> "\uNNNN", everything else kept) when that fits; when it
 *    does not fit, the output is a prefix of the reference cut between two escaped characters, followed by
 *    "...", and nothing more would have fit.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "util/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reference {
	char *text; /* the full escaped form, NUL-terminated */
	size_t len;
	size_t *piece_end; /* piece_end[k]: offset in text where the k-th escaped character ends */
	size_t pieces;
};

static void ref_append(struct reference *r, const char *piece, size_t n)
{
	memcpy(r->text + r->len, piece, n);
	r->len += n;
	r->piece_end[r->pieces++] = r->len;
}

/* Printable code points that lie to a reader (bidi embeddings, overrides, isolates and marks; the Unicode line
 * and paragraph separators): escaped as \uNNNN by the contract. */
static bool ref_is_deceptive(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
	       cp == 0x200f || cp == 0x061c || cp == 0x2028 || cp == 0x2029;
}

/* The header's contract, written independently of text.c. Each input byte costs at most 4 output bytes (a 2- or 3-byte
 * sequence escaped as \uNNNN costs 6). */
static void ref_escape(struct reference *r, const unsigned char *s, size_t len)
{
	size_t i = 0;

	r->text = malloc(4 * len + 1);
	r->piece_end = malloc((len + 1) * sizeof(*r->piece_end));
	if (!r->text || !r->piece_end)
		abort();
	r->len = 0;
	r->pieces = 0;
	while (i < len) {
		uint32_t cp = 0;
		size_t n = ref_utf8_next(s + i, len - i, &cp);
		char piece[8];

		if (n == 0) {
			snprintf(piece, sizeof(piece), "\\x%02x", s[i]);
			ref_append(r, piece, 4);
			i += 1;
		} else if (ref_is_control(cp)) {
			/* One escaped character: every byte of it as \xNN (C1 controls take two). */
			char both[16];
			size_t m = 0;
			for (size_t k = 0; k < n; k++)
				m += (size_t)snprintf(both + m, sizeof(both) - m, "\\x%02x", s[i + k]);
			ref_append(r, both, m);
			i += n;
		} else if (ref_is_deceptive(cp)) {
			char u[8];
			snprintf(u, sizeof(u), "\\u%04x", (unsigned)cp);
			ref_append(r, u, 6);
			i += n;
		} else if (cp == '\\') {
			ref_append(r, "\\\\", 2);
			i += 1;
		} else {
			ref_append(r, (const char *)s + i, n);
			i += n;
		}
	}
	r->text[r->len] = '\0';
}

static void check_escape(const unsigned char *src, size_t len, size_t cap, const struct reference *ref)
{
	char *dst = malloc(cap);
	size_t n;

	if (!dst)
		abort();
	memset(dst, 'Z', cap);
	FUZZ_CHECK(text_escape(dst, cap, (const char *)src, len) == dst, "text_escape must return dst");
	n = strnlen(dst, cap);
	FUZZ_CHECK(n < cap, "no NUL within cap %zu", cap);
	FUZZ_CHECK(ref_is_printable_utf8(dst, n),
		   "escaped text (cap %zu, %zu bytes) is not printable UTF-8: %s", cap, n, dst);
	if (ref->len < cap) {
		/* Fits: exactly the reference, never cut. */
		FUZZ_CHECK(n == ref->len && memcmp(dst, ref->text, n) == 0,
			   "cap %zu: got \"%s\" (%zu bytes), reference \"%s\" (%zu bytes)", cap, dst, n,
			   ref->text, ref->len);
	} else {
		size_t prefix, k = 0;

		FUZZ_CHECK(n >= 3 && memcmp(dst + n - 3, "...", 3) == 0,
			   "cap %zu: %zu-byte reference does not fit but output \"%s\" lacks the \"...\"",
			   cap, ref->len, dst);
		prefix = n - 3;
		FUZZ_CHECK(memcmp(dst, ref->text, prefix) == 0, "cap %zu: \"%s\" is not a prefix of \"%s\"",
			   cap, dst, ref->text);
		/* The cut lies between two escaped characters ... */
		while (k < ref->pieces && ref->piece_end[k] < prefix)
			k++;
		FUZZ_CHECK(prefix == 0 || (k < ref->pieces && ref->piece_end[k] == prefix),
			   "cap %zu: cut at %zu splits an escaped character of \"%s\"", cap, prefix,
			   ref->text);
		/* ... and the next one would not have fit together with "..." and the NUL. */
		if (prefix > 0)
			k++;
		FUZZ_CHECK(k < ref->pieces && ref->piece_end[k] + 3 + 1 > cap,
			   "cap %zu: cut at %zu of \"%s\" although the next character fits", cap, prefix,
			   ref->text);
	}
	free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *src = fuzz_copy(data, size);
	struct reference ref;
	size_t caps[4];

	FUZZ_CHECK(text_is_utf8(src, size) == ref_is_utf8(src, size),
		   "text_is_utf8 = %d, reference = %d (%zu bytes)", (int)text_is_utf8(src, size),
		   (int)ref_is_utf8(src, size), size);

	ref_escape(&ref, (const unsigned char *)src, size);
	caps[0] = 8;
	caps[1] = 8 + (size ? data[0] % 32 : 0);
	caps[2] = 8 + (size > 1 ? data[size - 1] : 0) + size;
	caps[3] = 4 * size + 1 > 8 ? 4 * size + 1 : 8; /* always fits */
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		check_escape((const unsigned char *)src, size, caps[i], &ref);

	free(ref.text);
	free(ref.piece_end);
	free(src);
	return 0;
}
