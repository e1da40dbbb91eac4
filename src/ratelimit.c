// SPDX-License-Identifier: Apache-2.0
/*
 * ratelimit: see ratelimit.h. Buckets live in an array indexed by id, grown on demand.
 */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct bucket {
	double tokens;
	int64_t last_us; /* 0: never used (starts full) */
	int64_t last_record_us;
	uint32_t suppressed;
};

struct ratelimit {
	double rate, burst;
	struct bucket *buckets;
	size_t count;
};

struct ratelimit *ratelimit_new(double rate, double burst)
{
	struct ratelimit *rl;

	if (rate <= 0)
		return NULL;
	rl = xcalloc(1, sizeof(*rl));
	rl->rate = rate;
	rl->burst = burst >= 1 ? burst : 1;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->buckets);
	free(rl);
}

static struct bucket *bucket_for(struct ratelimit *rl, int32_t key)
{
	size_t index = key > 0 ? (size_t)key : 0;

	if (index >= rl->count) {
		size_t count = rl->count ? rl->count : 1024;
		while (count <= index)
			count *= 2;
		rl->buckets = xrealloc(rl->buckets, count * sizeof(*rl->buckets));
		memset(rl->buckets + rl->count, 0, (count - rl->count) * sizeof(*rl->buckets));
		rl->count = count;
	}
	return &rl->buckets[index];
}

bool ratelimit_allow(struct ratelimit *rl, int32_t key, int64_t now_us)
{
	struct bucket *b;

	if (!rl)
		return true;
	b = bucket_for(rl, key);
	if (b->last_us == 0) {
		b->tokens = rl->burst;
	} else if (now_us > b->last_us) {
		b->tokens += (double)(now_us - b->last_us) * rl->rate / 1e6;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
	}
	b->last_us = now_us;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

bool ratelimit_should_record(struct ratelimit *rl, int32_t key, int64_t now_us, uint32_t *suppressed)
{
	struct bucket *b;

	if (!rl)
		return true;
	b = bucket_for(rl, key);
	if (b->last_record_us != 0 && now_us - b->last_record_us < 1000000) {
		b->suppressed++;
		return false;
	}
	*suppressed = b->suppressed;
	b->suppressed = 0;
	b->last_record_us = now_us;
	return true;
}
