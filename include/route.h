/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Routes: which topics we subscribe to and how a topic names the tenant and the device.
 *
 * A route is a topic template such as "solar/{tenant}/{serial}/telemetry" plus a payload format. Each level of
 * the template is a literal, a placeholder ({tenant}, {serial}, {point}) or "+" (any one level, ignored); the
 * last level may be {point+}, the rest of the topic (one or more levels, joined with '/'). The MQTT subscription
 * filter is derived from the template by turning placeholders into "+" ({point+} into "#"). The format says
 * which decoder reads the payload (payload/formats.h) and the payload options how (payload/options.h: the
 * line protocol mapping, the time, which values become readings); the other options say where the tenant and the device come
 * from when the topic does not say, and which topics of the same tree are not readings at all. struct
 * route_match, what route_match finds in a topic, is declared with the payload options because the decoders
 * read it too.
 */
#ifndef MQTT2PG_ROUTE_H
#define MQTT2PG_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "payload/options.h"

enum route_level_kind {
	ROUTE_LEVEL_LITERAL,
	ROUTE_LEVEL_TENANT,
	ROUTE_LEVEL_SERIAL,
	ROUTE_LEVEL_ANY,
	ROUTE_LEVEL_POINT,	/* {point}: one level naming the point */
	ROUTE_LEVEL_POINT_REST, /* {point+}: the rest of the topic, last level only */
};

struct route_level {
	enum route_level_kind kind;
	char *literal; /* owned; only for ROUTE_LEVEL_LITERAL */
};

struct route {
	char *template_text; /* owned, as configured */
	char *filter;	     /* owned, the derived MQTT subscription filter */
	enum route_format format;
	struct route_level *levels; /* owned */
	size_t level_count;
	/* Options (config keys of the route, or its preset's defaults); all owned. */
	char *preset;		   /* the preset it was expanded from, NULL if none */
	char *tenant;		   /* fixed tenant slug; NULL: the topic's {tenant} */
	char *serial;		   /* fixed serial; NULL: the topic's {serial} or the payload's */
	bool ignore_retained;	   /* retained = "ignore": retained messages are counted and dropped */
	bool retained_timestamped; /* retained = "timestamped" (default): only retained messages whose every
				      reading carries its own timestamp are taken; the others as "ignore" */
	char **ignore; /* MQTT filters of status/LWT/command topics of this tree: counted, dropped */
	size_t ignore_count;
	struct payload_options payload; /* how its payloads are read (payload/options.h) */
	char *alias_scope; /* device aliases of this scope name the device ("": tenant-wide); NULL: "" */
	int sub_id;	   /* the MQTT 5 subscription identifier of the route's filter (index + 1) */
};

/*
 * Parses a template into *out (which the caller later passes to route_clear). Each placeholder must appear
 * exactly once, {tenant} and {serial} are required, and levels may not be empty or contain '#' or a '+'
 * mixed with other characters. On error returns false and writes a message to err.
 * (route_parse_template, then route_check, for a route with no options.)
 */
bool route_parse(const char *template_text, enum route_format format, struct route *out, char *err,
		 size_t errlen) __attribute__((warn_unused_result));

/* Parses only the template: each placeholder at most once, {point+} last. The options are left zeroed (and
 * influx mapped by lp_mapping_init) for the caller to set before route_check. */
bool route_parse_template(const char *template_text, enum route_format format, struct route *out, char *err,
			  size_t errlen) __attribute__((warn_unused_result));

/*
 * Checks that the route, with its options, can name a tenant (the topic's {tenant} or a fixed tenant, not
 * both), a device ({serial}, a fixed serial, or a serial_tag for the formats that read one from the payload)
 * and, for the one-value formats, a point ({point} or {point+}). False with a message in err otherwise.
 */
bool route_check(const struct route *r, char *err, size_t errlen) __attribute__((warn_unused_result));

/* True when the two routes have the same template, format and options (reload compares them). */
bool route_equal(const struct route *a, const struct route *b);

/* True when topic[0..len) is matched by one of the route's ignore filters (status, LWT, command topics). */
bool route_ignores(const struct route *r, const char *topic, size_t len);

/*
 * True when some topic matches both MQTT filters (a broker then delivers it once per subscription); writes one
 * such topic to example (a literal level where either filter has one, "x" for a level both leave open).
 */
bool route_filters_overlap(const char *a, const char *b, char *example, size_t cap);

/*
 * The index of the route whose subscription owns a received topic: the first whose filter matches (every
 * message is processed under that one subscription; copies the broker sends for later overlapping filters are
 * not). -1 when none matches.
 */
int route_owner(const struct route *routes, size_t count, const char *topic, size_t len);

/*
 * The route a received topic belongs to: the first of routes[0..count) whose template matches, with *m
 * filled. A route's ignore filters (status, LWT) speak for topics under its own subscription filter only,
 * never for another route's: a topic they claim gives NULL with *ignored set. NULL with *ignored false: no
 * route.
 */
const struct route *route_select(const struct route *routes, size_t count, const char *topic, size_t len,
				 struct route_match *m, bool *ignored);

/* Adds an ignore filter (copied). */
void route_add_ignore(struct route *r, const char *filter);

/* Appends a copy of text to a string list of the route (ignore_points, points, measurements, points_map). */
void route_list_add(char ***list, size_t *count, const char *text);

/* Frees what route_parse allocated in r (not r itself); route_clear of a zeroed route is a no-op. */
void route_clear(struct route *r);

/*
 * Matches a received topic (topic_len bytes, not necessarily NUL-terminated) against the route. On a match
 * fills *m with slices into the topic (or, for a fixed tenant or serial, into the route) and returns true.
 * Placeholder levels must be non-empty; {point+} takes one or more levels, none of them empty.
 */
bool route_match(const struct route *r, const char *topic, size_t topic_len, struct route_match *m);

bool route_format_parse(const char *name, enum route_format *out) __attribute__((warn_unused_result));
const char *route_format_name(enum route_format format);
const char *route_time_unit_name(enum route_time_unit unit); /* "s", "ms", "us", "ns", "rfc3339" */

#endif
