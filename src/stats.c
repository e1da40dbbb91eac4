// SPDX-License-Identifier: Apache-2.0
/*
 * stats: totals and the periodic throughput line an operator reads in the log.
 */
#include "stats.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

const double stats_latency_bounds[STATS_LATENCY_BUCKETS - 1] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
								 0.25,	0.5,	1,     2.5,  10,    60 };

void stats_observe(struct stats_histogram *h, int64_t us)
{
	int i = 0;

	if (us < 0)
		us = 0;
	while (i < STATS_LATENCY_BUCKETS - 1 && (double)us > stats_latency_bounds[i] * 1e6)
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

uint64_t stats_rejected_total(struct stats *s)
{
	uint64_t total = 0;

	for (int i = 0; i < REJECT_REASON_COUNT; i++)
		total += STATS_GET(s, messages_rejected[i]);
	return total;
}

void stats_log(struct stats *s, struct stats *prev, double seconds)
{
	uint64_t received = STATS_GET(s, messages_received);
	uint64_t accepted = STATS_GET(s, messages_accepted);
	uint64_t rejected = stats_rejected_total(s);
	uint64_t ignored = 0;
	uint64_t inserted = STATS_GET(s, rows_inserted);
	uint64_t duplicate = STATS_GET(s, rows_duplicate);
	uint64_t prev_received = STATS_GET(prev, messages_received);
	uint64_t prev_inserted = STATS_GET(prev, rows_inserted);
	char reasons[512] = "";
	size_t len = 0;

	if (received == prev_received && inserted == prev_inserted &&
	    duplicate == STATS_GET(prev, rows_duplicate) &&
	    STATS_GET(s, rejects_recorded) == STATS_GET(prev, rejects_recorded))
		return; /* nothing moved: keep the log quiet */

	for (int i = 1; i < IGNORE_REASON_COUNT; i++)
		ignored += STATS_GET(s, messages_ignored[i]);
	for (int i = 1; i < REJECT_REASON_COUNT; i++) {
		uint64_t n = STATS_GET(s, messages_rejected[i]);
		int w;
		if (n == 0 || len >= sizeof(reasons))
			continue;
		w = snprintf(reasons + len, sizeof(reasons) - len, "%s%s=%llu", len ? "," : " (",
			     reject_reason_name(i), (unsigned long long)n);
		if (w > 0)
			len += (size_t)w;
	}
	if (len > 0 && len < sizeof(reasons) - 1)
		strcat(reasons, ")");
	log_info(
		"stats",
		"received=%llu accepted=%llu rejected=%llu%s ignored=%llu rows_inserted=%llu rows_duplicate=%llu "
		"queued=%llu spool_backlog=%llu spool_bytes=%llu msgs/s=%.0f rows/s=%.0f aggregate_leader=%llu "
		"buckets_recomputed=%llu aggregate_lag_ms=%llu",
		(unsigned long long)received, (unsigned long long)accepted, (unsigned long long)rejected,
		reasons, (unsigned long long)ignored, (unsigned long long)inserted,
		(unsigned long long)duplicate, (unsigned long long)STATS_GET(s, queue_depth),
		(unsigned long long)STATS_GET(s, spool_backlog),
		(unsigned long long)STATS_GET(s, spool_bytes),
		seconds > 0 ? (double)(received - prev_received) / seconds : 0.0,
		seconds > 0 ? (double)(inserted - prev_inserted) / seconds : 0.0,
		(unsigned long long)STATS_GET(s, agg_leader), (unsigned long long)STATS_GET(s, agg_buckets),
		(unsigned long long)STATS_GET(s, agg_lag_ms));
	atomic_store(&prev->messages_received, received);
	atomic_store(&prev->rows_inserted, inserted);
	atomic_store(&prev->rows_duplicate, duplicate);
	atomic_store(&prev->rejects_recorded, STATS_GET(s, rejects_recorded));
}
