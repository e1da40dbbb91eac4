/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue: the bounded hand-off between Paho's receive thread (producer) and one writer thread (consumer).
 *
 * DESIGN. Producers push owned messages; when the queue holds `capacity` messages the push blocks for at
 * most its timeout, so a slow database slows the broker down (TCP back-pressure, persistent session)
 * instead of growing memory without bound or dropping anything. The consumer takes everything queued (up
 * to a maximum) in one lock round-trip. Closing the queue lets the consumer drain what is left and then see
 * the end. This is the seam where the durable spool sits (a later issue): same contract, on disk.
 */
#ifndef MQTT2PG_QUEUE_H
#define MQTT2PG_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "message.h"

struct queue;

struct queue *queue_new(size_t capacity);
/* Frees the queue and any messages still in it. NULL is a no-op. */
void queue_free(struct queue *q);

/*
 * Appends m. Takes ownership of m on success (0). Returns -ETIMEDOUT if the queue stayed full for
 * timeout_ms, -EPIPE if the queue is closed; in both cases m still belongs to the caller.
 */
int queue_push(struct queue *q, struct message *m, int timeout_ms) __attribute__((warn_unused_result));

/*
 * Takes up to max messages (oldest first, linked by ->next; the caller owns them) and stores their count in
 * *count. Waits up to timeout_ms for the first one. Returns NULL with *count 0 on timeout or when the queue
 * is closed and empty (queue_is_finished tells which).
 */
struct message *queue_pop(struct queue *q, size_t max, int timeout_ms, size_t *count);

/* No more pushes; the consumer drains what is left. Wakes everyone waiting. */
void queue_close(struct queue *q);

/* True once the queue is closed and empty. */
bool queue_is_finished(struct queue *q);

size_t queue_depth(struct queue *q);

/*
 * From now on every push adds to *gauge and every pop subtracts from it, under the queue's lock: the one
 * place the queue_depth metric (stats.h, summed over every writer's queue) is counted. Borrows gauge, which
 * must outlive q. Call before the queue is shared.
 */
void queue_count_depth_in(struct queue *q, atomic_uint_fast64_t *gauge);

#endif
