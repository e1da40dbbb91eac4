/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch: in disk-spool mode, the thread that reads records from the spool in order and hands each to
 * its writer's queue (readings by device, rejections round-robin), blocking when a queue is full. It is
 * the only reader of the spool, so the writers see messages in spool order per device.
 */
#ifndef MQTT2PG_DISPATCH_H
#define MQTT2PG_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"
#include "spool.h"
#include "stats.h"

struct dispatcher;

/* Borrows spool, queues and stats for its lifetime. NULL after logging if the thread cannot start. */
struct dispatcher *dispatch_start(struct spool *spool, struct queue **queues, size_t queue_count,
				  struct stats *stats) __attribute__((warn_unused_result));

/* Once nothing more is appended: asks the thread to hand out every remaining record and then stop. */
void dispatch_request_finish(struct dispatcher *d);

/* True once the thread has handed out everything and stopped. */
bool dispatch_is_finished(struct dispatcher *d);

/* Joins the (finished) thread and frees. NULL is a no-op. */
void dispatch_join(struct dispatcher *d);

#endif
