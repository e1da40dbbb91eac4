/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decode: a payload (plus what the topic said) to a list of samples, before any registry check.
 *
 * The JSON envelope:
 *   {"serial":"INV-0001","timestamp":"2026-11-21T10:30:00Z","measurements":{"total_output_power":5420}}
 * or a JSON array of such objects. "serial" is optional but, when present, must equal the topic's serial.
 * "timestamp" is RFC 3339 with a zone or a number of epoch seconds; absent means the time we received it.
 * Measurement values are numbers; null is skipped, true/false are 1/0 only on a route with booleans = true
 * (else skipped), each skip counted in decoded_message.skipped. Other top-level members are ignored.
 */
#ifndef MQTT2PG_DECODE_H
#define MQTT2PG_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "payload/lineproto.h"
#include "payload/options.h"
#include "payload/reason.h"

#define DECODE_MAX_POINT_NAME 64
#define DECODE_MAX_SERIAL     64 /* as the registry's CHECK on devices.serial */

struct cJSON;

struct sample {
	char point[DECODE_MAX_POINT_NAME + 1];
	double value;
	int64_t time_us;
};

/* A device the payload names (a line protocol or Telegraf tag): its samples are samples[first, first + count). */
struct decoded_device {
	char serial[DECODE_MAX_SERIAL + 1];
	size_t first;
	size_t count;
};

struct decoded_message {
	struct sample *samples; /* owned */
	size_t count;
	size_t capacity;
	/* The formats that name devices in the payload fill these (formats.c); 0 devices means every sample
	 * belongs to the device the route names. */
	struct decoded_device *devices; /* owned */
	size_t device_count;
	size_t device_capacity;
	uint32_t *device_of; /* owned, parallel to samples while decoding */
	size_t device_of_capacity;
	enum ignore_reason ignored;	     /* when a decoder returns 1: why the payload holds no reading */
	uint32_t skipped[SKIP_REASON_COUNT]; /* values passed over, by reason (counted by the caller) */
	struct lp_scratch lp;		     /* owned, reused by the line protocol reader */
};

struct decode_error {
	enum reject_reason reason;
	char detail[192];
};

/*
 * Decodes payload[0..len) of a message whose topic matched with *m. max_bytes bounds the payload.
 * On success fills out (which the caller frees with decode_clear; it may reuse it across calls) and
 * returns 0; 1 when every value was skipped (null, boolean: out->skipped, out->ignored = IGNORE_SKIPPED).
 * On failure returns -1 with err filled, and out holds nothing the caller needs.
 */
int decode_json(const char *payload, size_t len, const struct route_match *m, int64_t received_us,
		size_t max_bytes, struct decoded_message *out, struct decode_error *err)
	__attribute__((warn_unused_result));

/*
 * decode_json with a route's value options (booleans, numeric_strings, points_map, ignore_points, points);
 * o NULL: the defaults (nulls and booleans skipped and counted in out->skipped). decode_json is this with NULL.
 */
int decode_json_route(const struct payload_options *o, const char *payload, size_t len,
		      const struct route_match *m, int64_t received_us, size_t max_bytes,
		      struct decoded_message *out, struct decode_error *err)
	__attribute__((warn_unused_result));

/*
 * One JSON leaf as a reading under the route's options: a number is kept; null, a boolean (without
 * booleans), a string (unless numeric_strings and a strict decimal) are skipped and counted in out->skipped.
 * Returns 1 with *value set, 0 skipped, -1 (non-finite) with err filled. o NULL: the defaults.
 */
int decode_leaf_value(const struct payload_options *o, const struct cJSON *leaf, const char *name,
		      double *value, struct decoded_message *out, struct decode_error *err)
	__attribute__((warn_unused_result));

/*
 * Appends a sample named name (mapped and filtered by payload_options_point; o NULL: as is) unless the options skip
 * it (counted). Returns 0, or -1 with err for a name outside the point alphabet.
 */
int decode_emit(const struct payload_options *o, const char *name, double value, int64_t time_us,
		struct decoded_message *out, struct decode_error *err) __attribute__((warn_unused_result));

/* Empties out for reuse, keeping its buffer. */
void decode_reset(struct decoded_message *out);

/* Appends one sample to out (growing it) and returns it, for the other format decoders (formats.c). */
struct sample *decode_append(struct decoded_message *out);

/* Fills err with reason and a printf-style detail; returns -1, so that `return decode_fail(...)` reads well. */
int decode_fail(struct decode_error *err, enum reject_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* True when name is 1..64 characters of A-Z a-z 0-9 _ . : / - (the README's point alphabet). */
bool decode_point_name_ok(const char *name);

/*
 * The byte checks and strict parse decode_json starts with (size, UTF-8, no NUL or \u0000, RFC 8259, no
 * duplicate keys), for the other JSON formats. Returns the parsed root (owned by the caller: cJSON_Delete) or
 * NULL with err filled.
 */
struct cJSON *decode_json_root(const char *payload, size_t len, size_t max_bytes, struct decode_error *err)
	__attribute__((warn_unused_result));

/* Frees what out owns. */
void decode_clear(struct decoded_message *out);

#endif
