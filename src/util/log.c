// SPDX-License-Identifier: Apache-2.0
/*
 * log: formats a line into a stack buffer and writes it with one write(2), so lines from different threads
 * never interleave. The level is the only state, an atomic that reload may change.
 *
 * Every message passes through text_sanitize() before it is written, whatever its arguments: a topic, a
 * client id, a payload excerpt or a library's message cannot put a newline, a terminal escape sequence or a
 * bidirectional override into the log, even where a caller forgot text_escape().
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/text.h"

static atomic_int current_level = LOG_LEVEL_INFO;
static atomic_bool json_lines = false;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

bool log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

void log_set_level(enum log_level level)
{
	atomic_store(&current_level, (int)level);
}

void log_set_json(bool json)
{
	atomic_store(&json_lines, json);
}

/* Appends s to line[*len..cap) as a JSON string body (quotes not included). */
static void append_json_escaped(char *line, size_t *len, size_t cap, const char *s)
{
	for (; *s && *len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			line[(*len)++] = '\\';
			line[(*len)++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			*len += (size_t)snprintf(line + *len, cap - *len, "\\u%04x", c);
		} else {
			line[(*len)++] = (char)c;
		}
	}
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load_explicit(&current_level, memory_order_relaxed);
}

static void log_vwrite(enum log_level level, const char *module, const char *fmt, va_list ap)
{
	char line[2048], raw[1800], msg[1800], stamp[40];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + len, sizeof(stamp) - len, ".%03ldZ", ts.tv_nsec / 1000000);
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n < 0)
		raw[0] = '\0';
	else if ((size_t)n >= sizeof(raw))
		memcpy(raw + sizeof(raw) - 4, "...", 4);
	text_sanitize(msg, sizeof(msg), raw, strlen(raw));
	if (atomic_load_explicit(&json_lines, memory_order_relaxed)) {
		len = (size_t)snprintf(line, sizeof(line),
				       "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"",
				       stamp, level_names[level], module);
		append_json_escaped(line, &len, sizeof(line) - 3, msg);
		line[len++] = '"';
		line[len++] = '}';
	} else {
		len = (size_t)snprintf(line, sizeof(line) - 1, "%s %-5s %s: %s", stamp, level_names[level],
				       module, msg);
		if (len >= sizeof(line) - 1)
			len = sizeof(line) - 2;
	}
	line[len++] = '\n';
	/* One write per line: the kernel keeps it whole against other threads' lines. */
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report it. */
	}
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vwrite(level, module, fmt, ap);
	va_end(ap);
}

void die(const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, module, fmt, ap);
	va_end(ap);
	exit(1);
}
