/* SPDX-License-Identifier: Apache-2.0 */
/*
 * options: what a decoder is told besides the payload's bytes. A route (route.h) carries a payload format and
 * a struct payload_options (the route's keys that say how to read its payloads: the line protocol mapping,
 * where the time is, which values and points become readings); route_match fills a struct route_match with
 * what the topic said (tenant, serial, point). The decoders read both and nothing else of the route, so that
 * payload/ never needs the daemon's headers.
 */
#ifndef MQTT2PG_OPTIONS_H
#define MQTT2PG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "payload/lineproto.h"
#include "util/topic.h"
#include "util/tz.h"

/* The payload formats, the configuration's routes[].format (formats.h says what each reads). */
enum route_format {
	ROUTE_FORMAT_JSON = 0,	 /* our envelope, see decode.h */
	ROUTE_FORMAT_VALUE,	 /* one reading per topic: the payload is a number */
	ROUTE_FORMAT_VALUE_JSON, /* one reading per topic: {"value": number} (Victron Venus OS dbus-mqtt) */
	ROUTE_FORMAT_INFLUX,	 /* InfluxDB line protocol (lineproto.h) */
	ROUTE_FORMAT_FLAT_JSON, /* a JSON object whose numeric leaves are the points (Tasmota, Shelly status) */
	ROUTE_FORMAT_SHELLY_RPC,    /* Shelly Gen2 NotifyStatus / NotifyFullStatus frames */
	ROUTE_FORMAT_TELEGRAF_JSON, /* Telegraf's JSON serializer: {"name","tags","fields","timestamp"} */
	ROUTE_FORMAT_AUTO,	    /* influx or telegraf_json, by the payload's first byte ('{': JSON) */
};

/* Where a payload's time is, and in what unit (never guessed). */
enum route_time_unit {
	ROUTE_TIME_S = 0,
	ROUTE_TIME_MS,
	ROUTE_TIME_US,
	ROUTE_TIME_NS,
	ROUTE_TIME_RFC3339, /* a string; without a zone it needs the route's timezone */
};

/* A time_field or json_root path is split at '.'; each step is 1..PAYLOAD_MAX_PATH_STEP bytes (config.c checks). */
#define PAYLOAD_MAX_PATH_STEP 127

/* A route's payload options (config keys of the route, or its preset's defaults); all owned by the route. */
struct payload_options {
	bool ignore_non_numeric; /* non_numeric = "ignore": text where a number belongs is counted, dropped */
	struct lp_mapping influx; /* influx: precision, serial_tag, point template, string policy;
				     telegraf_json: serial_tag, point, precision */
	char *time_field; /* JSON formats: member holding the time (dots for nesting); NULL: receive time */
	enum route_time_unit time_unit;
	struct tz *timezone; /* for RFC 3339 times without a zone; NULL: such times are rejected */
	char *json_root;     /* flat_json: dotted path of the object to flatten; NULL: the whole payload */
	/* What becomes a reading (formats.c applies them to every format, in this order: map, ignore, allow). */
	bool numeric_strings;	 /* a JSON string that is a strict decimal ("35.60") is that number */
	bool booleans;		 /* true/false are stored as 1/0; otherwise skipped and counted */
	char **points_map;	 /* pairs: source name (key path, may hold any text), point name */
	size_t points_map_count; /* pairs */
	char **ignore_points;	 /* filters over point names ('/' levels, + and #): skipped and counted */
	size_t ignore_points_count;
	char **points; /* allow-list of point filters; none: every point */
	size_t points_count;
	char **measurements; /* influx, telegraf_json, auto: allow-list of measurement names; none: all */
	size_t measurements_count;
};

/* What a received topic said, as route_match (route.h) found it; slices borrow the topic's (or the route's)
 * bytes. */
struct route_match {
	struct topic_slice tenant;
	struct topic_slice serial; /* empty when the payload names the device (serial_tag) */
	struct topic_slice point;  /* empty unless the template has {point} or {point+} */
	const char *alias_scope;   /* the route's alias scope ("" when none); borrows the route */
};

/*
 * What the options make of a value's name (flattened key path, topic point or line protocol point): name is
 * replaced by its points_map target (buffer of DECODE_MAX_POINT_NAME + 1 bytes; a target is at most that long,
 * config.c checks). Returns PAYLOAD_POINT_KEEP, or PAYLOAD_POINT_IGNORED / PAYLOAD_POINT_NOT_LISTED.
 */
enum payload_point_verdict {
	PAYLOAD_POINT_KEEP,
	PAYLOAD_POINT_IGNORED,
	PAYLOAD_POINT_NOT_LISTED
};
enum payload_point_verdict payload_options_point(const struct payload_options *o, char *name, size_t cap);

/* True when the options keep lines of this measurement (no measurements list: every one). */
bool payload_options_measurement_ok(const struct payload_options *o, const char *name, size_t len);

/* True when the two carry the same options (reload compares routes with it). */
bool payload_options_equal(const struct payload_options *a, const struct payload_options *b);

/* Frees what o owns (not o itself) and zeroes it; a zeroed o is a no-op. */
void payload_options_clear(struct payload_options *o);

#endif
