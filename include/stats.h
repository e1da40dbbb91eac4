/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats: the bridge's counters, updated lock-free by every stage and read by the periodic log line (and,
 * later, the /metrics endpoint). One instance per bridge, owned by the bridge and borrowed by the stages.
 */
#ifndef MQTT2PG_STATS_H
#define MQTT2PG_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "reject.h"

/* Upper bounds (seconds) of the latency histograms' buckets; the last bucket is +Inf. */
#define STATS_LATENCY_BUCKETS 14
extern const double stats_latency_bounds[STATS_LATENCY_BUCKETS - 1];

/* A Prometheus-style histogram: cumulative counts are derived when exported. */
struct stats_histogram {
	atomic_uint_fast64_t buckets[STATS_LATENCY_BUCKETS]; /* non-cumulative */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_us;
};

/* The spool's state (the spool_state{state} gauge); every state but OK blocks intake. */
enum stats_spool_state {
	STATS_SPOOL_OK,
	STATS_SPOOL_FULL,	 /* spool.max_bytes reached: the database is behind */
	STATS_SPOOL_WRITE_ERROR, /* append failed: ENOSPC, EROFS, EIO */
	STATS_SPOOL_MISSING,	 /* the directory was removed or replaced and is not back yet */
	STATS_SPOOL_STATE_COUNT
};

/* Why spooled records were lost (spool_records_lost_total{reason}). */
enum stats_lost_reason {
	STATS_LOST_TORN,	   /* a torn or corrupt tail dropped at recovery (counted once per tail) */
	STATS_LOST_UNDECODABLE,	   /* a record read back whole that does not decode (a bug) */
	STATS_LOST_DIRECTORY_GONE, /* uncommitted records held only in removed files at exit */
	STATS_LOST_REASON_COUNT
};

struct stats {
	atomic_uint_fast64_t messages_received;
	atomic_uint_fast64_t messages_accepted;
	atomic_uint_fast64_t messages_rejected[REJECT_REASON_COUNT];
	atomic_uint_fast64_t
		messages_ignored[IGNORE_REASON_COUNT];		/* status/LWT topics, retained, no value */
	atomic_uint_fast64_t values_skipped[SKIP_REASON_COUNT]; /* values passed over in accepted messages */
	atomic_uint_fast64_t points_dropped; /* samples of unknown points under policy "drop" */
	atomic_uint_fast64_t enqueue_waits;  /* times the MQTT callback found a queue full */
	atomic_uint_fast64_t rows_inserted;  /* committed new rows */
	atomic_uint_fast64_t rows_duplicate; /* rows that already existed (redelivery, replay) */
	atomic_uint_fast64_t batches_committed;
	atomic_uint_fast64_t rejects_recorded; /* rows committed to rejected_messages */
	atomic_uint_fast64_t db_errors_transient;
	atomic_uint_fast64_t db_errors_permanent;
	atomic_uint_fast64_t db_reconnects;
	atomic_uint_fast64_t registry_reloads;
	atomic_uint_fast64_t mqtt_connects;
	atomic_uint_fast64_t mqtt_connection_lost;
	atomic_uint_fast64_t queue_depth;      /* messages waiting across all writer queues */
	atomic_uint_fast64_t spool_bytes;      /* bytes in the spool's segments */
	atomic_uint_fast64_t spool_backlog;    /* records appended but not yet committed */
	atomic_uint_fast64_t spool_full_waits; /* appends refused because the spool was full */
	atomic_uint_fast64_t spool_write_errors;
	atomic_uint_fast64_t spool_torn_records;		      /* torn records dropped at recovery */
	atomic_uint_fast64_t spool_state;			      /* enum stats_spool_state */
	atomic_uint_fast64_t spool_problems[STATS_SPOOL_STATE_COUNT]; /* times each problem state began */
	atomic_uint_fast64_t spool_records_lost[STATS_LOST_REASON_COUNT];
	atomic_uint_fast64_t intake_blocked; /* 1 while the MQTT callback waits to make a message durable */
	atomic_uint_fast64_t intake_blocks;  /* times it began to wait */
	atomic_uint_fast64_t intake_blocked_ms; /* total time spent waiting, updated while it waits */
	atomic_uint_fast64_t agg_leader;	/* 1 while this replica runs the job's housekeeping */
	atomic_uint_fast64_t
		agg_shards; /* shards this replica's job connections drained in their last passes */
	atomic_uint_fast64_t agg_runs;
	atomic_uint_fast64_t agg_buckets; /* buckets recomputed */
	atomic_uint_fast64_t agg_last_run_unix;
	atomic_uint_fast64_t agg_lag_ms; /* age of the oldest dirty bucket after the last run */
	atomic_uint_fast64_t
		agg_last_pass_ms;	   /* duration of the last run: a long pass hides behind agg_lag_ms */
	atomic_uint_fast64_t agg_failing;  /* runs in a row that failed (no connection, or the pass failed) */
	atomic_uint_fast64_t http_evicted; /* HTTP connections closed to make room (connection limits) */
	atomic_uint_fast64_t http_timed_out;  /* HTTP requests that did not arrive within http.timeout */
	struct stats_histogram batch_seconds; /* a batch transaction, BEGIN to COMMIT */
	struct stats_histogram lag_seconds;   /* a message, received to committed */
};

#define STATS_ADD(stats, field, n) atomic_fetch_add_explicit(&(stats)->field, (n), memory_order_relaxed)
#define STATS_GET(stats, field)	   atomic_load_explicit(&(stats)->field, memory_order_relaxed)

uint64_t stats_rejected_total(struct stats *s);

/* "ok", "full", "write_error", "directory_missing" (inline: the spool, in the core library, logs them). */
static inline const char *stats_spool_state_name(int state)
{
	static const char *const names[STATS_SPOOL_STATE_COUNT] = { "ok", "full", "write_error",
								    "directory_missing" };

	return state >= 0 && state < STATS_SPOOL_STATE_COUNT ? names[state] : "unknown";
}

/* "torn", "undecodable", "directory_gone". */
static inline const char *stats_lost_reason_name(int reason)
{
	static const char *const names[STATS_LOST_REASON_COUNT] = { "torn", "undecodable", "directory_gone" };

	return reason >= 0 && reason < STATS_LOST_REASON_COUNT ? names[reason] : "unknown";
}

/* Records one observation of us microseconds (thread-safe, lock-free). */
void stats_observe(struct stats_histogram *h, int64_t us);

/* Logs one line with totals and rates since the previous call (prev is the caller's copy). */
void stats_log(struct stats *s, struct stats *prev, double seconds);

#endif
