/* SPDX-License-Identifier: Apache-2.0 */
/*
 * writer: one thread and one PostgreSQL connection, consuming one queue.
 *
 * It groups messages per tenant and writes each tenant's batch in one transaction that first sets the
 * tenant's RLS context (transaction-local, so a pooled connection can never carry it into another batch)
 * and then inserts all rows with ON CONFLICT DO NOTHING (redelivered messages do not duplicate rows).
 * A batch is written when it reaches batch_rows, when its oldest message waited flush_interval_ms, or, once
 * the queue is empty, linger_ms.
 *
 * Failures: a transient one (connection lost, shutdown, serialization, a read-only database, a missing
 * GRANT: db_error_is_transient) is retried with back-off, forever, on a new session when the failure asks for
 * one; a batch is never given up. A permanent one (a row the database refuses) is isolated by bisecting the
 * batch, the refused messages are recorded in rejected_messages with the database's message, and the rest
 * commit. Recording a rejection is itself retried until it succeeds: nothing leaves the spool unrecorded.
 */
#ifndef MQTT2PG_WRITER_H
#define MQTT2PG_WRITER_H

#include <stdbool.h>

#include "db.h"
#include "queue.h"
#include "spool.h"
#include "stats.h"

struct writer_options {
	const char *conninfo;	  /* borrowed for the writer's lifetime */
	struct db_secret *secret; /* borrowed: the password, re-read at SIGHUP; may be NULL */
	int batch_rows;
	int flush_interval_ms; /* a batch waits at most this long while more messages keep coming */
	int linger_ms;	       /* ... and this long once the queue is empty */
	int reconnect_max_ms;
	int max_points_per_device;
	struct spool *spool; /* borrowed; NULL in memory mode. Committed records are reported to it. */
	const char *origin;  /* borrowed; names this bridge in rejected_messages.origin (its client id) */
};

struct writer;

/*
 * Starts writer number index on queue (borrowed; the writer is its only consumer). Returns the owned
 * writer, or NULL if the thread could not start (logged).
 */
struct writer *writer_start(int index, const struct writer_options *options, struct queue *queue,
			    struct stats *stats) __attribute__((warn_unused_result));

/* True while the writer holds a working connection. */
bool writer_is_connected(const struct writer *w);

/* True while the writer holds a connection on which the database accepts writes (not read-only). */
bool writer_is_writable(const struct writer *w);

/* True once the thread has drained its (closed) queue and exited. */
bool writer_is_finished(const struct writer *w);

/* Waits for the thread (close its queue first, or this waits forever) and frees the writer. NULL: no-op. */
void writer_join(struct writer *w);

#endif
