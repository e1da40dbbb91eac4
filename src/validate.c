// SPDX-License-Identifier: Apache-2.0
/*
 * validate: the registry and policy checks. Identity first (tenant, device, ownership: a device that
 * publishes in another tenant's tree is spoofing and never reaches the database), then each sample.
 */
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "payload/timeparse.h"
#include "util/text.h"

#define US_PER_SEC INT64_C(1000000)

/*
 * A serial is unique within its tenant (sql/013), and every route names the tenant (its {tenant} level or a
 * fixed tenant: route_check), so the device is looked up by (tenant, serial), then as an alias of that
 * tenant. A serial that only another tenant has is a device publishing into a tree not its own: spoofing.
 */
static int check_identity(const struct registry *reg, const struct route_match *m,
			  const struct registry_device **out_device, struct decode_error *err)
{
	const struct registry_tenant *tenant = registry_find_tenant(reg, m->tenant.ptr, m->tenant.len);
	const struct registry_device *device, *elsewhere;
	size_t tenants = 0;

	if (!tenant)
		return decode_fail(err, REJECT_UNKNOWN_TENANT, "tenant in topic is not registered");
	device = registry_find_device(reg, tenant->id, m->serial.ptr, m->serial.len);
	/* Not a serial of this tenant: an alias of the tenant (and the route's scope) may name the device (sql/011). */
	if (!device)
		device = registry_find_alias(reg, tenant->id, m->alias_scope ? m->alias_scope : "",
					     m->serial.ptr, m->serial.len);
	if (!device) {
		elsewhere = registry_find_serial(reg, m->serial.ptr, m->serial.len, &tenants);
		if (!elsewhere)
			return decode_fail(err, REJECT_UNKNOWN_DEVICE, "device serial is not registered");
		if (tenants == 1)
			return decode_fail(
				err, REJECT_TENANT_MISMATCH,
				"device is registered to tenant id %d, not to the topic's tenant id %d",
				(int)elsewhere->tenant_id, (int)tenant->id);
		return decode_fail(
			err, REJECT_TENANT_MISMATCH,
			"device serial is registered to %zu other tenants, not to the topic's tenant id %d",
			tenants, (int)tenant->id);
	}
	if (!device->enabled)
		return decode_fail(err, REJECT_DEVICE_DISABLED, "device is disabled");
	*out_device = device;
	return 0;
}

static int check_time(const struct config_validation *policy, int64_t time_us, int64_t now_us,
		      struct decode_error *err)
{
	char when[40];

	if (time_us > now_us + (int64_t)policy->max_future_skew * US_PER_SEC) {
		timeparse_format(time_us, when, sizeof(when));
		return decode_fail(err, REJECT_TIMESTAMP_FUTURE,
				   "timestamp %s is more than %d s ahead of the bridge's clock", when,
				   policy->max_future_skew);
	}
	if (time_us < now_us - (int64_t)policy->max_age * US_PER_SEC) {
		timeparse_format(time_us, when, sizeof(when));
		return decode_fail(err, REJECT_TIMESTAMP_STALE, "timestamp %s is older than max_age (%d s)",
				   when, policy->max_age);
	}
	return 0;
}

static int check_range(const struct registry_point *point, double value, struct decode_error *err)
{
	if ((point->has_min && value < point->min) || (point->has_max && value > point->max))
		return decode_fail(err, REJECT_VALUE_OUT_OF_RANGE, "%s = %g is outside its range [%g, %g]",
				   point->name, value, point->has_min ? point->min : -1.0 / 0.0,
				   point->has_max ? point->max : 1.0 / 0.0);
	return 0;
}

/* Index of an earlier sample in this message with the same unknown point name, or -1. */
static int32_t earlier_new_point(const struct message *msg, const char *name)
{
	for (uint32_t i = 0; i < msg->new_point_count; i++)
		if (strcmp(msg->new_points[i], name) == 0)
			return -(int32_t)(i + 1);
	return 0;
}

/* Decides what an unknown point becomes: 0 = drop, < 0 = register (new point id), or -1 return = reject. */
static int resolve_unknown_point(const struct config_validation *policy, const struct registry_device *device,
				 struct message *msg, const char *name, int32_t *point_id,
				 struct decode_error *err)
{
	int32_t existing;

	switch (policy->unknown_points) {
	case UNKNOWN_POINT_REJECT:
		return decode_fail(err, REJECT_UNKNOWN_POINT, "point '%s' is not registered for this device",
				   name);
	case UNKNOWN_POINT_DROP:
		*point_id = 0;
		return 0;
	case UNKNOWN_POINT_REGISTER:
		existing = earlier_new_point(msg, name);
		if (existing) {
			*point_id = existing;
			return 0;
		}
		if (device->point_count + msg->new_point_count >= (uint32_t)policy->max_points_per_device)
			return decode_fail(err, REJECT_POINT_LIMIT,
					   "point '%s' would exceed the device's limit of %d points", name,
					   policy->max_points_per_device);
		*point_id = message_add_new_point(msg, name);
		return 0;
	}
	return decode_fail(err, REJECT_UNKNOWN_POINT, "point '%s' is not registered", name);
}

int validate_message(const struct registry *reg, const struct config_validation *policy,
		     const struct route_match *m, const struct decoded_message *decoded, int64_t now_us,
		     int64_t received_us, struct validate_result *result, struct decode_error *err)
{
	const struct registry_device *device = NULL;
	struct message *msg;
	uint32_t kept = 0;

	memset(result, 0, sizeof(*result));
	if (check_identity(reg, m, &device, err) < 0)
		return -1;
	msg = message_new_readings(device->tenant_id, device->id, (uint32_t)decoded->count, received_us);
	for (size_t i = 0; i < decoded->count; i++) {
		const struct sample *s = &decoded->samples[i];
		struct registry_point point;
		int32_t point_id = 0;

		if (check_time(policy, s->time_us, now_us, err) < 0)
			goto reject;
		if (registry_find_device_point(reg, device, s->point, strlen(s->point), &point)) {
			if (check_range(&point, s->value, err) < 0)
				goto reject;
			point_id = point.id;
		} else {
			if (resolve_unknown_point(policy, device, msg, s->point, &point_id, err) < 0)
				goto reject;
			if (point_id == 0) {
				result->dropped_points++;
				continue;
			}
		}
		msg->readings[kept++] =
			(struct reading){ .time_us = s->time_us, .value = s->value, .point_id = point_id };
	}
	msg->reading_count = kept;
	result->new_points = msg->new_point_count;
	if (kept == 0) {
		message_free(msg);
		return 0;
	}
	result->message = msg;
	return 0;
reject:
	message_free(msg);
	return -1;
}
