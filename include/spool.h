/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool: the durable hand-off between ingest and the writers. Paho sends the QoS 1 PUBACK when our callback
 * returns, and then the broker forgets the message; so every validated (or rejected) message is appended
 * to the spool with write(2) before the callback returns. From then on it survives a crash or SIGKILL of
 * the process; an fdatasync every spool.fsync_interval_ms bounds what a machine crash can cost.
 *
 * DESIGN. The spool is a directory of segment files, each a sequence of records
 *     u32 length | u32 CRC-32C of (seq, payload) | u64 seq | payload (message_encode)
 * numbered by a sequence that only grows. A dispatcher thread reads records in order (from the page cache,
 * normally just behind the appender) and hands them to the writers. A writer marks a record's sequence
 * committed after its transaction committed; the checkpoint is the highest sequence below which
 * everything is committed, and it is persisted (atomically, by rename) on every tick. On start-up every
 * record past the checkpoint is replayed: inserts are idempotent, so a record committed after the last
 * persisted checkpoint is absorbed. Segments wholly behind the checkpoint are deleted. A record whose
 * length or CRC does not check out at the end of a segment is a torn write: it and what follows in that
 * segment are dropped and reported, never misread.
 *
 * Segments wholly behind the in-memory checkpoint are deleted whether or not the checkpoint file could be
 * written (a full disk); the next sequence never goes back, because an empty segment's name carries it.
 * Every segment's file is held open: if the directory is removed (or replaced) at run time, the next tick
 * or append notices, and the uncommitted records are written back into a recreated directory.
 *
 * The spool has a size limit; when full, spool_append waits (bounded) for the writers to catch up, and the
 * MQTT callback tries again, and again: it never hands a message back to Paho (see ingest.c). TCP
 * back-pressure reaches the broker and the persistent session holds the rest there. The spool's state
 * (ok, full, write error, directory missing) is logged on each change and published in stats.
 */
#ifndef MQTT2PG_SPOOL_H
#define MQTT2PG_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "stats.h"

struct spool_options {
	const char *directory;	/* borrowed; created if missing */
	uint64_t max_bytes;	/* total size of the segments */
	uint64_t segment_bytes; /* a segment is closed when it reaches this size */
	int fsync_interval_ms;	/* 0: fdatasync after every append */
};

struct spool;

/*
 * Opens (creating or recovering) the spool. Reports what it recovered in the log. Returns NULL after logging
 * why if the directory cannot be used.
 */
struct spool *spool_open(const struct spool_options *options, struct stats *stats)
	__attribute__((warn_unused_result));

/*
 * Appends m durably (write(2) done when it returns 0; m stays the caller's). Waits up to timeout_ms while the
 * spool is full. Returns 0, -ETIMEDOUT (full), -ENOENT (the directory is missing and not rebuilt yet), or
 * the write's -errno (-ENOSPC, -EROFS, -EIO; logged once per state change; nothing half-written remains).
 */
int spool_append(struct spool *s, const struct message *m, int timeout_ms)
	__attribute__((warn_unused_result));

/*
 * Appends the n messages as consecutive records, all or none: they are the parts of one MQTT message (a
 * payload naming several devices), and the broker redelivers that message whole if we do not take it, so
 * taking some parts would store them twice. Returns as spool_append.
 */
int spool_append_all(struct spool *s, const struct message *const *messages, size_t n, int timeout_ms)
	__attribute__((warn_unused_result));

/*
 * For the dispatcher: the next record in sequence, decoded into an owned message whose spool_seq is set.
 * Waits up to timeout_ms for one; NULL on timeout. Also waits while too many records are in flight.
 */
struct message *spool_next(struct spool *s, int timeout_ms);

/* True when every appended record has been handed out by spool_next. */
bool spool_drained(struct spool *s);

/* For the writers: the record with this sequence is committed to the database. Thread-safe. */
void spool_commit(struct spool *s, uint64_t seq);

/* For the main thread: fdatasync by policy, persist the checkpoint, delete segments behind it, update
 * stats (spool_bytes, spool_backlog). now_ms is monotonic. */
void spool_tick(struct spool *s, int64_t now_ms);

/* Syncs, persists the checkpoint and frees the spool. Records not yet committed stay for the next start. */
void spool_close(struct spool *s);

/* CRC-32C (Castagnoli), exposed for tests. */
uint32_t spool_crc32c(uint32_t crc, const void *data, size_t len);

#endif
