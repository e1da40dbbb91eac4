/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aggregate: the scheduled job that keeps measurements_5m (and the hourly, daily and monthly rollups derived
 * from it in the same transaction, sql/014_energy.sql) equal to what a query over the raw readings would
 * give. The writers mark (device, bucket) dirty in the same transaction as the rows (sql/003_aggregates.sql);
 * the job claims dirty keys per tenant, under that tenant's RLS context, and recomputes exactly those
 * buckets. Nothing depends on one process's memory: a bucket days old that receives late data is dirty
 * like any other, and a crash between claim and commit leaves the claim rolled back.
 *
 * Every replica runs the job on aggregates.connections connections of its own. The keys are split into 64
 * shards (sql/016); each connection takes the free shards with a session advisory lock, drains them in
 * set-based batches and lets them go, so the connections of all replicas share the work and no one is
 * needed (src/aggregate.c's DESIGN comment). One replica at a time, the leader by another advisory lock,
 * also creates partitions ahead of need and applies raw-data retention; when it dies its session ends and
 * another replica takes over at its next interval.
 */
#ifndef MQTT2PG_AGGREGATE_H
#define MQTT2PG_AGGREGATE_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

struct db_secret; /* db.h */

struct aggregator_options {
	const char *conninfo; /* borrowed for the aggregator's lifetime */
	const char *password;
	struct db_secret *secret; /* borrowed; when set, its current password instead (re-read at SIGHUP) */
	int interval_s;		/* how often each job connection makes a pass (and non-leaders try to lead) */
	int raw_retention_days; /* 0: keep raw readings forever */
	int rejected_retention_days; /* 0: keep rejected_messages forever */
	int partitions_ahead_days;
	int connections; /* job connections (threads), each draining free shards; < 1 is taken as 1 */
};

struct aggregator;

/* Starts the job thread. Returns NULL after logging if the thread cannot start. */
struct aggregator *aggregator_start(const struct aggregator_options *options, struct stats *stats)
	__attribute__((warn_unused_result));

/* Stops the thread (finishing the transaction in progress) and frees it. NULL is a no-op. */
void aggregator_stop(struct aggregator *a);

/* Progress callback for aggregate_recompute_dirty: buckets done so far for the tenant. */
typedef void (*aggregate_progress_fn)(void *arg, int32_t tenant_id, uint64_t buckets_done);

/*
 * Recomputes every dirty bucket of tenant_id (0: of every tenant) on conn, in transactions of at most
 * batch_keys keys. Returns the number of buckets recomputed, or -1 after logging a database error.
 * *stop, when set by another thread, ends the loop between transactions.
 */
int64_t aggregate_recompute_dirty(PGconn *conn, int32_t tenant_id, int batch_keys,
				  aggregate_progress_fn progress, void *progress_arg, atomic_bool *stop)
	__attribute__((warn_unused_result));

/*
 * Marks dirty every (device, bucket) of tenant_id with readings in [from_us, to_us) (and the bucket after
 * each, per the edge rule), for a rebuild. Returns the number of keys marked, or -1 after logging.
 */
int64_t aggregate_mark_range(PGconn *conn, int32_t tenant_id, int64_t from_us, int64_t to_us)
	__attribute__((warn_unused_result));

/*
 * Rebuilds tenant_id's hourly, daily and monthly rollups (sql/014_energy.sql) of the local periods that start
 * in [from_us, to_us) or hold a 5-minute row of it, from the 5-minute rows (frozen ones included), in one
 * transaction: after `aggregate rebuild` recomputed the 5-minute rows, or after tenants.timezone changed.
 * Returns the number of 5-minute rows read, or -1 after logging.
 */
int64_t aggregate_rebuild_rollups(PGconn *conn, int32_t tenant_id, int64_t from_us, int64_t to_us)
	__attribute__((warn_unused_result));

#endif
