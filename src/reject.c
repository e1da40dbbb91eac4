// SPDX-License-Identifier: Apache-2.0
/*
 * reject: the names of the rejection reasons, kept beside the enum's order, and the sampler that stores
 * at most one rejection per second per reason and claimed device (see reject.h).
 */
#include "reject.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define REJECT_SAMPLER_SLOTS 4096 /* a power of two */
#define REJECT_SAMPLER_PROBES 8
#define REJECT_SAMPLER_PERIOD_US 1000000

struct sampler_slot {
	uint64_t key_hash; /* 0: free */
	int64_t stored_us; /* when the last one of this key was stored */
	uint32_t suppressed;
};

struct reject_sampler {
	struct sampler_slot slots[REJECT_SAMPLER_SLOTS];
};

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

struct reject_sampler *reject_sampler_new(void)
{
	return xcalloc(1, sizeof(struct reject_sampler));
}

void reject_sampler_free(struct reject_sampler *s)
{
	free(s);
}

/* FNV-1a over the reason and the key: 64 bits, so two keys sharing a hash are not a practical concern. */
static uint64_t sampler_hash(enum reject_reason reason, const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)reason;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

bool reject_sampler_should_store(struct reject_sampler *s, enum reject_reason reason, const void *key, size_t key_len,
				 int64_t now_us, uint32_t *suppressed)
{
	uint64_t h = sampler_hash(reason, key, key_len);
	struct sampler_slot *free_slot = NULL;

	*suppressed = 0;
	for (size_t i = 0; i < REJECT_SAMPLER_PROBES; i++) {
		struct sampler_slot *slot = &s->slots[(h + i) & (REJECT_SAMPLER_SLOTS - 1)];
		if (slot->key_hash == h) {
			if (now_us - slot->stored_us < REJECT_SAMPLER_PERIOD_US) {
				slot->suppressed++;
				return false;
			}
			*suppressed = slot->suppressed;
			slot->suppressed = 0;
			slot->stored_us = now_us;
			return true;
		}
		/* A slot whose key has been quiet for a period has nothing left to say: reusable. */
		if (!free_slot && (slot->key_hash == 0 || now_us - slot->stored_us >= REJECT_SAMPLER_PERIOD_US))
			free_slot = slot;
	}
	if (free_slot)
		*free_slot = (struct sampler_slot){.key_hash = h, .stored_us = now_us};
	return true;
}
