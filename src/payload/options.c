// SPDX-License-Identifier: Apache-2.0
/*
 * options: a route's payload options as the decoders apply them to each value's name (points_map, then
 * ignore_points, then points) and to each line's measurement, plus their comparison and release for reload
 * (see options.h). Point filters are MQTT filters over point names, matched by topic.c like every other
 * filter.
 */
#include "payload/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool in_filters(char *const *filters, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (topic_matches(filters[i], name, strlen(name)))
			return true;
	return false;
}

enum payload_point_verdict payload_options_point(const struct payload_options *o, char *name, size_t cap)
{
	for (size_t i = 0; i < o->points_map_count; i++) {
		if (strcmp(o->points_map[2 * i], name) == 0) {
			snprintf(name, cap, "%s", o->points_map[2 * i + 1]);
			break;
		}
	}
	if (in_filters(o->ignore_points, o->ignore_points_count, name))
		return PAYLOAD_POINT_IGNORED;
	if (o->points_count > 0 && !in_filters(o->points, o->points_count, name))
		return PAYLOAD_POINT_NOT_LISTED;
	return PAYLOAD_POINT_KEEP;
}

bool payload_options_measurement_ok(const struct payload_options *o, const char *name, size_t len)
{
	if (o->measurements_count == 0)
		return true;
	for (size_t i = 0; i < o->measurements_count; i++)
		if (strlen(o->measurements[i]) == len && memcmp(o->measurements[i], name, len) == 0)
			return true;
	return false;
}

static bool same(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

static bool same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

bool payload_options_equal(const struct payload_options *a, const struct payload_options *b)
{
	return a->ignore_non_numeric == b->ignore_non_numeric &&
	       strcmp(a->influx.serial_tag, b->influx.serial_tag) == 0 &&
	       strcmp(a->influx.point, b->influx.point) == 0 && a->influx.precision == b->influx.precision &&
	       a->influx.strings == b->influx.strings && same(a->time_field, b->time_field) &&
	       a->time_unit == b->time_unit && same(a->json_root, b->json_root) &&
	       (a->timezone == NULL) == (b->timezone == NULL) &&
	       (!a->timezone || strcmp(tz_name(a->timezone), tz_name(b->timezone)) == 0) &&
	       a->numeric_strings == b->numeric_strings && a->booleans == b->booleans &&
	       same_list(a->points_map, a->points_map_count * 2, b->points_map, b->points_map_count * 2) &&
	       same_list(a->ignore_points, a->ignore_points_count, b->ignore_points,
			 b->ignore_points_count) &&
	       same_list(a->points, a->points_count, b->points, b->points_count) &&
	       same_list(a->measurements, a->measurements_count, b->measurements, b->measurements_count);
}

static void free_list(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

void payload_options_clear(struct payload_options *o)
{
	free(o->time_field);
	free(o->json_root);
	free_list(o->points_map, o->points_map_count * 2);
	free_list(o->ignore_points, o->ignore_points_count);
	free_list(o->points, o->points_count);
	free_list(o->measurements, o->measurements_count);
	tz_free(o->timezone);
	memset(o, 0, sizeof(*o));
}
