/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decode: a payload (plus what the topic said) to a list of samples, before any registry check.
 *
 * The JSON envelope:
 *   {"serial":"INV-0001","timestamp":"2026-11-21T10:30:00Z","measurements":{"total_output_power":5420}}
 * or a JSON array of such objects. "serial" is optional but, when present, must equal the topic's serial.
 * "timestamp" is RFC 3339 with a zone or a number of epoch seconds; absent means the time we received it.
 * Measurement values are numbers (true/false count as 1/0). Other top-level members are ignored.
 */
#ifndef MQTT2PG_DECODE_H
#define MQTT2PG_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "reject.h"
#include "route.h"

#define DECODE_MAX_POINT_NAME 64

struct sample {
	char point[DECODE_MAX_POINT_NAME + 1];
	double value;
	int64_t time_us;
};

struct decoded_message {
	struct sample *samples; /* owned */
	size_t count;
	size_t capacity;
};

struct decode_error {
	enum reject_reason reason;
	char detail[192];
};

/*
 * Decodes payload[0..len) of a message whose topic matched with *m. max_bytes bounds the payload.
 * On success fills out (which the caller frees with decode_clear; it may reuse it across calls) and
 * returns 0. On failure returns -1 with err filled, and out holds nothing the caller needs.
 */
int decode_json(const char *payload, size_t len, const struct route_match *m, int64_t received_us,
		size_t max_bytes, struct decoded_message *out, struct decode_error *err);

/* Empties out for reuse, keeping its buffer. */
void decode_reset(struct decoded_message *out);

/* Frees what out owns. */
void decode_clear(struct decoded_message *out);

#endif
