/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reason: why a message is not a reading, in three kinds. A rejection (reject_reason) refuses the whole message
 * and is recorded; an ignored message (ignore_reason) is recognised, counted and dropped; a skipped value
 * (skip_reason) is passed over inside a message that is otherwise kept. Each reason has a stable snake_case
 * name: it is what rejected_messages.reason holds, what metrics are labelled with, and what operators grep
 * for. Append new reasons; never renumber.
 *
 * The decoders are the first stage that speaks this vocabulary, so it lives with them (payload/); validate,
 * the rate limiter and the writer add their own reasons to the same lists. The sampler that decides which
 * rejections are stored is the daemon's (reject.h).
 */
#ifndef MQTT2PG_REASON_H
#define MQTT2PG_REASON_H

#include <stdbool.h>

enum reject_reason {
	REJECT_NONE = 0,
	REJECT_NO_ROUTE,	   /* topic matches no configured route */
	REJECT_EMPTY_PAYLOAD,	   /* zero bytes */
	REJECT_OVERSIZED_PAYLOAD,  /* over validation.max_payload_bytes */
	REJECT_INVALID_UTF8,	   /* not UTF-8, or contains NUL */
	REJECT_MALFORMED_JSON,	   /* not parseable JSON, or duplicate keys */
	REJECT_WRONG_TYPE,	   /* JSON of the wrong shape or member types */
	REJECT_BAD_TIMESTAMP,	   /* not RFC 3339 with zone / not epoch seconds / impossible date */
	REJECT_SERIAL_MISMATCH,	   /* payload serial differs from the topic's */
	REJECT_NON_FINITE_VALUE,   /* NaN, Infinity, or beyond double range */
	REJECT_UNKNOWN_TENANT,	   /* topic tenant slug not registered */
	REJECT_UNKNOWN_DEVICE,	   /* serial not registered */
	REJECT_DEVICE_DISABLED,	   /* device registered but disabled */
	REJECT_TENANT_MISMATCH,	   /* device belongs to another tenant than the topic's: spoofing */
	REJECT_UNKNOWN_POINT,	   /* point not registered and policy is reject */
	REJECT_POINT_LIMIT,	   /* policy register, but the device reached max_points_per_device */
	REJECT_VALUE_OUT_OF_RANGE, /* outside the point's registered min/max */
	REJECT_TIMESTAMP_FUTURE,   /* later than now + max_future_skew */
	REJECT_TIMESTAMP_STALE,	   /* earlier than now - max_age */
	REJECT_NO_MEASUREMENTS,	   /* no readings in the message */
	REJECT_INVALID_POINT_NAME, /* empty, too long, or characters outside [A-Za-z0-9_.:/-] */
	REJECT_DATABASE,	   /* PostgreSQL refused the row permanently (constraint, policy) */
	REJECT_RATE_LIMITED,	   /* over the device's or the tenant's configured rate */
	REJECT_MALFORMED_PAYLOAD, /* not the route's format: line protocol syntax, a value that is no number */
	REJECT_BEYOND_RETENTION, /* older than the raw retention horizon (a replay after its chunk was dropped) */
	REJECT_REASON_COUNT
};

/*
 * Why a message was recognised and dropped without being an error: counted (mqtt2pg_messages_ignored_total),
 * acknowledged, never recorded or spooled.
 */
enum ignore_reason {
	IGNORE_NONE = 0,
	IGNORE_STATUS, /* availability, LWT, status or command topic sharing the tree, or a non-status RPC frame */
	IGNORE_RETAINED,     /* a retained message on a route with retained = "ignore" */
	IGNORE_NO_VALUE,     /* a one-value payload that says "no reading": empty, null, {"value": null} */
	IGNORE_NON_NUMERIC,  /* text where a number belongs, on a route with non_numeric = "ignore" */
	IGNORE_OVERLAP_COPY, /* a second copy of a message the broker sent for another route's subscription */
	IGNORE_SKIPPED,	     /* every value of the message was skipped (values_skipped_total says why) */
	IGNORE_REASON_COUNT
};

/*
 * Why one value of an otherwise good message was passed over (mqtt2pg_values_skipped_total{reason}): never
 * silently, never as a rejection of the whole message.
 */
enum skip_reason {
	SKIP_NULL = 0,	    /* JSON null: "no value" */
	SKIP_BOOLEAN,	    /* true/false on a route without booleans = true */
	SKIP_STRING,	    /* text where a number belongs (numeric_strings off, or not a strict decimal) */
	SKIP_IGNORED_POINT, /* the route's (or its preset's) ignore_points */
	SKIP_NOT_LISTED,    /* not in the route's points allow-list */
	SKIP_MEASUREMENT,   /* line protocol / Telegraf: a measurement outside the route's measurements */
	SKIP_ARRAY,	    /* an array element that is not a number (objects and arrays in arrays) */
	SKIP_REASON_COUNT
};

/* The stable name of a skip reason ("null"). */
const char *skip_reason_name(enum skip_reason reason);

/* The stable name of an ignore reason ("status"). */
const char *ignore_reason_name(enum ignore_reason reason);

/* The stable name of a reason ("unknown_device"). */
const char *reject_reason_name(enum reject_reason reason);

/* Parses a name back; false if unknown. */
bool reject_reason_parse(const char *name, enum reject_reason *out) __attribute__((warn_unused_result));

#endif
