/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation that cannot fail. Running out of memory in a daemon that Kubernetes restarts is best handled
 * by dying loudly at once (as Redis' zmalloc does), not by threading ENOMEM through every stage.
 */
#ifndef MQTT2PG_XALLOC_H
#define MQTT2PG_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Returns an owned NUL-terminated copy of s. */
char *xstrdup(const char *s);
/* Returns an owned NUL-terminated copy of the first len bytes of s (s need not be terminated). */
char *xstrndup(const char *s, size_t len);
/* Returns an owned string formatted like printf. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable NUL-terminated text; zero-initialise it, append with xbuf_printf, free(buf) when done. */
struct xbuf {
	char *buf; /* owned; NULL until the first append */
	size_t len, cap;
};

/* Appends printf-formatted text to b (an empty format still allocates, so b->buf is a string after it). */
void xbuf_printf(struct xbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
