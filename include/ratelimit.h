/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit: token buckets keyed by a small integer id (device id, tenant id), so one misbehaving device
 * or tenant cannot starve the others. Owned and used by one thread (Paho's receive thread): no locks.
 * Memory grows with the highest id seen (16 bytes per id): ids are the registry's dense identities.
 */
#ifndef MQTT2PG_RATELIMIT_H
#define MQTT2PG_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* rate: messages per second allowed on average; burst: how many may come at once. rate <= 0: unlimited
 * (ratelimit_new returns NULL, and the functions below accept NULL as "always allow"). */
struct ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(struct ratelimit *rl);

/* Takes one token for key at now_us (microseconds, any monotonic origin); false when over the limit. */
bool ratelimit_allow(struct ratelimit *rl, int32_t key, int64_t now_us);

/*
 * For recording refusals without flooding: returns true at most once per second per key (and then sets
 * *suppressed to the refusals not recorded since the last time), false otherwise (counting one more).
 */
bool ratelimit_should_record(struct ratelimit *rl, int32_t key, int64_t now_us, uint32_t *suppressed);

#endif
