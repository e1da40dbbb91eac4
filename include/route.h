/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Routes: which topics we subscribe to and how a topic names the tenant and the device.
 *
 * A route is a topic template such as "solar/{tenant}/{serial}/telemetry" plus a payload format. Each level of
 * the template is a literal, a placeholder ({tenant}, {serial}) or "+" (any one level, ignored). The MQTT
 * subscription filter is derived from the template by turning placeholders into "+". The format says which
 * decoder reads the payload; more formats (line protocol, one value per topic) plug in here.
 */
#ifndef MQTT2PG_ROUTE_H
#define MQTT2PG_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

enum route_format {
	ROUTE_FORMAT_JSON = 0, /* our envelope, see decode.h */
};

enum route_level_kind {
	ROUTE_LEVEL_LITERAL,
	ROUTE_LEVEL_TENANT,
	ROUTE_LEVEL_SERIAL,
	ROUTE_LEVEL_ANY,
};

struct route_level {
	enum route_level_kind kind;
	char *literal; /* owned; only for ROUTE_LEVEL_LITERAL */
};

struct route {
	char *template_text; /* owned, as configured */
	char *filter;        /* owned, the derived MQTT subscription filter */
	enum route_format format;
	struct route_level *levels; /* owned */
	size_t level_count;
};

/* A slice of the topic (not NUL-terminated); borrows the topic's bytes. */
struct topic_slice {
	const char *ptr;
	size_t len;
};

struct route_match {
	struct topic_slice tenant;
	struct topic_slice serial;
};

/*
 * Parses a template into *out (which the caller later passes to route_clear). Each placeholder must appear
 * exactly once, {tenant} and {serial} are required, and levels may not be empty or contain '#' or a '+'
 * mixed with other characters. On error returns false and writes a message to err.
 */
bool route_parse(const char *template_text, enum route_format format, struct route *out, char *err,
		 size_t errlen);

/* Frees what route_parse allocated in r (not r itself); route_clear of a zeroed route is a no-op. */
void route_clear(struct route *r);

/*
 * Matches a received topic (topic_len bytes, not necessarily NUL-terminated) against the route. On a match
 * fills *m with slices into the topic and returns true. Placeholder levels must be non-empty.
 */
bool route_match(const struct route *r, const char *topic, size_t topic_len, struct route_match *m);

bool route_format_parse(const char *name, enum route_format *out);
const char *route_format_name(enum route_format format);

#endif
