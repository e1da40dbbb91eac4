/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging: one line per event on stderr, "time level module: message". Thread-safe (one write(2) per line).
 * Strings that come from devices (topics, serials, payload excerpts) must pass through text_escape()
 * (text.h) before they reach a log line, so that a device cannot forge log lines.
 */
#ifndef MQTT2PG_LOG_H
#define MQTT2PG_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Parses "error" | "warn" | "info" | "debug"; returns false on anything else. */
bool log_level_parse(const char *name, enum log_level *out) __attribute__((warn_unused_result));
void log_set_level(enum log_level level);

/* Text lines for humans (default) or JSON lines {"time","level","module","msg"} for log collectors. */
void log_set_json(bool json);
bool log_enabled(enum log_level level);

void log_write(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(module, ...) log_write(LOG_LEVEL_ERROR, module, __VA_ARGS__)
#define log_warn(module, ...)  log_write(LOG_LEVEL_WARN, module, __VA_ARGS__)
#define log_info(module, ...)  log_write(LOG_LEVEL_INFO, module, __VA_ARGS__)
#define log_debug(module, ...)                                           \
	do {                                                             \
		if (log_enabled(LOG_LEVEL_DEBUG))                        \
			log_write(LOG_LEVEL_DEBUG, module, __VA_ARGS__); \
	} while (0)

/* Prints a start-up error and exits(1). Only for start-up, never once the bridge runs. */
void die(const char *module, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#endif
