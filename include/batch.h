/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch: one tenant's accepted messages waiting to be written in one transaction, and the encoding of
 * their readings into the four array parameters of the insert statement (see writer.c):
 *   times (bigint microseconds since the epoch), device ids, point ids, values (float8).
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

/*
 * The four array parameters in PostgreSQL's binary array format (what array_recv reads: a header, then per
 * element its length and its value in network byte order), reusable from one flush to the next. Binary,
 * not text: no number formatting on our side and no number parsing on the server's, and a double arrives
 * bit for bit.
 */
struct batch_array {
	unsigned char *bytes;
	size_t len, cap;
};

struct batch_arrays {
	struct batch_array times;   /* int8[]: microseconds since the Unix epoch */
	struct batch_array devices; /* int4[] */
	struct batch_array points;  /* int4[] */
	struct batch_array values;  /* float8[] */
	size_t rows;
};

#define BATCH_OID_INT8	 20
#define BATCH_OID_INT4	 23
#define BATCH_OID_FLOAT8 701

/*
 * Fills the arrays with the readings of count messages starting at first. Every reading must already have a
 * registered point (point_id > 0).
 */
void batch_arrays_build(struct batch_arrays *a, const struct message *first, size_t count);

void batch_arrays_free(struct batch_arrays *a);

#endif
