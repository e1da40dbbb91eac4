/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch: one tenant's accepted messages waiting to be written in one transaction, and the formatting of
 * their readings into the four array parameters of the insert statement (see writer.c):
 *   times (bigint microseconds since the epoch), device ids, point ids, values (float8, exact round-trip).
 * Pure: no I/O, so it is unit-tested without a database.
 */
#ifndef MQTT2PG_BATCH_H
#define MQTT2PG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct batch {
	int32_t tenant_id;
	struct message *head, *tail; /* owned, linked by ->next */
	size_t message_count;
	size_t row_count;
	int64_t opened_ms; /* monotonic time the oldest message was added */
};

void batch_init(struct batch *b, int32_t tenant_id);

/* Appends m (takes ownership). */
void batch_add(struct batch *b, struct message *m, int64_t now_ms);

/* True when the batch should be written: max_rows reached or its oldest message waited max_age_ms. */
bool batch_due(const struct batch *b, size_t max_rows, int64_t max_age_ms, int64_t now_ms);

/* Hands the messages to the caller (the chain, ->next linked) and empties the batch. */
struct message *batch_take(struct batch *b, size_t *message_count);

/* Reusable text buffers for the array parameters. */
struct batch_arrays {
	char *times, *devices, *points, *values;
	size_t times_cap, devices_cap, points_cap, values_cap;
	size_t rows;
};

/*
 * Formats the readings of count messages starting at first as PostgreSQL array literals ("{1,2,3}").
 * Every reading must already have a registered point (point_id > 0).
 */
void batch_arrays_build(struct batch_arrays *a, const struct message *first, size_t count);

void batch_arrays_free(struct batch_arrays *a);

#endif
