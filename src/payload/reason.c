// SPDX-License-Identifier: Apache-2.0
/*
 * reason: the stable names of the rejection, ignore and skip reasons, kept beside the enums' order (see
 * reason.h).
 */
#include "payload/reason.h"

#include <string.h>

static const char *const reason_names[REJECT_REASON_COUNT] = {
	[REJECT_NONE] = "none",
	[REJECT_NO_ROUTE] = "no_route",
	[REJECT_EMPTY_PAYLOAD] = "empty_payload",
	[REJECT_OVERSIZED_PAYLOAD] = "oversized_payload",
	[REJECT_INVALID_UTF8] = "invalid_utf8",
	[REJECT_MALFORMED_JSON] = "malformed_json",
	[REJECT_WRONG_TYPE] = "wrong_type",
	[REJECT_BAD_TIMESTAMP] = "bad_timestamp",
	[REJECT_SERIAL_MISMATCH] = "serial_mismatch",
	[REJECT_NON_FINITE_VALUE] = "non_finite_value",
	[REJECT_UNKNOWN_TENANT] = "unknown_tenant",
	[REJECT_UNKNOWN_DEVICE] = "unknown_device",
	[REJECT_DEVICE_DISABLED] = "device_disabled",
	[REJECT_TENANT_MISMATCH] = "tenant_mismatch",
	[REJECT_UNKNOWN_POINT] = "unknown_point",
	[REJECT_POINT_LIMIT] = "point_limit",
	[REJECT_VALUE_OUT_OF_RANGE] = "value_out_of_range",
	[REJECT_TIMESTAMP_FUTURE] = "timestamp_future",
	[REJECT_TIMESTAMP_STALE] = "timestamp_stale",
	[REJECT_NO_MEASUREMENTS] = "no_measurements",
	[REJECT_INVALID_POINT_NAME] = "invalid_point_name",
	[REJECT_DATABASE] = "database_refused",
	[REJECT_RATE_LIMITED] = "rate_limited",
	[REJECT_MALFORMED_PAYLOAD] = "malformed_payload",
	[REJECT_BEYOND_RETENTION] = "beyond_retention",
};

static const char *const ignore_names[IGNORE_REASON_COUNT] = {
	[IGNORE_NONE] = "none",
	[IGNORE_STATUS] = "status",
	[IGNORE_RETAINED] = "retained",
	[IGNORE_NO_VALUE] = "no_value",
	[IGNORE_NON_NUMERIC] = "non_numeric",
	[IGNORE_OVERLAP_COPY] = "overlap_copy",
	[IGNORE_SKIPPED] = "all_skipped",
};

static const char *const skip_names[SKIP_REASON_COUNT] = {
	[SKIP_NULL] = "null",
	[SKIP_BOOLEAN] = "boolean",
	[SKIP_STRING] = "string",
	[SKIP_IGNORED_POINT] = "ignored_point",
	[SKIP_NOT_LISTED] = "not_listed",
	[SKIP_MEASUREMENT] = "measurement",
	[SKIP_ARRAY] = "array_element",
};

const char *skip_reason_name(enum skip_reason reason)
{
	if ((unsigned)reason >= SKIP_REASON_COUNT)
		return "unknown";
	return skip_names[reason];
}

const char *ignore_reason_name(enum ignore_reason reason)
{
	if ((unsigned)reason >= IGNORE_REASON_COUNT)
		return "unknown";
	return ignore_names[reason];
}

const char *reject_reason_name(enum reject_reason reason)
{
	if ((unsigned)reason >= REJECT_REASON_COUNT)
		return "unknown";
	return reason_names[reason];
}

bool reject_reason_parse(const char *name, enum reject_reason *out)
{
	for (int i = 0; i < REJECT_REASON_COUNT; i++) {
		if (strcmp(reason_names[i], name) == 0) {
			*out = (enum reject_reason)i;
			return true;
		}
	}
	return false;
}
