/* SPDX-License-Identifier: Apache-2.0 */
/*
 * preset: named route mappings for the MQTT layouts of common solar and energy software, so that
 *   routes = ( { preset = "opendtu"; tenant = "acme"; } );
 * subscribes to what OpenDTU publishes and knows which of its topics are readings. A preset supplies the topic
 * template (with "{prefix}" standing for its configurable first levels), the format, the status/LWT/command
 * topics to ignore, and the time and retained policies; every key the route sets itself overrides it. README
 * "Presets" has each preset's mapping table and the documents it was built from.
 */
#ifndef MQTT2PG_PRESET_H
#define MQTT2PG_PRESET_H

#include <stdbool.h>

#include "payload/options.h"

struct preset {
	const char *name;
	const char *topic;  /* template; "{prefix}" is replaced by the route's prefix */
	const char *prefix; /* default prefix */
	enum route_format format;
	const char *const *ignore; /* NULL-terminated filters, "{prefix}" replaced too */
	bool ignore_retained;
	bool ignore_non_numeric;
	const char *point;	/* influx/telegraf point template, NULL = "{field}" */
	const char *precision;	/* influx/telegraf precision, NULL = "ns" */
	const char *time_field; /* JSON formats, NULL = receive time */
	enum route_time_unit time_unit;
	bool needs_serial;   /* the device is in neither topic nor payload: serial = "..." is required */
	bool needs_timezone; /* the payload's times carry no zone: timezone (or time_field = "") is required */
	const char *const
		*ignore_points; /* NULL or NULL-terminated point filters: the firmware's bookkeeping */
	const char *serial_tag; /* influx/telegraf: the tag naming the device, NULL = none */
};

/* The preset called name, or NULL. */
const struct preset *preset_find(const char *name);

/* The known names, comma-separated, for error messages. */
const char *preset_names(void);

/* An owned copy of text with every "{prefix}" replaced by prefix. */
char *preset_expand(const char *text, const char *prefix);

#endif
