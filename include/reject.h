/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reject: which rejected messages are stored (the sampler below). The reasons themselves, with their stable
 * names, are payload/reason.h, included here for every stage that reports one.
 */
#ifndef MQTT2PG_REJECT_H
#define MQTT2PG_REJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "payload/reason.h"

/*
 * The sampler that keeps a flood of invalid messages from becoming a flood of rows: at most one stored
 * rejection per second per key (the reason with the claimed tenant and serial, or the topic for no_route),
 * each stored one saying how many like it were only counted since. Every rejection is counted in the metrics
 * either way. One thread (Paho's receive thread) owns it: no locks. Memory is fixed (REJECT_SAMPLER_SLOTS);
 * when every slot a key may use holds another key seen within the second, the rejection is stored (the bound
 * is then approximate, never a lost record).
 */
struct reject_sampler;

struct reject_sampler *reject_sampler_new(void);
void reject_sampler_free(struct reject_sampler *s);

/*
 * Whether to store a rejection with this reason and key (key_len bytes; any bytes) at now_us (microseconds,
 * any monotonic origin): true at most once a second per key, then with *suppressed set to how many were
 * refused storage since the last stored one.
 */
bool reject_sampler_should_store(struct reject_sampler *s, enum reject_reason reason, const void *key,
				 size_t key_len, int64_t now_us, uint32_t *suppressed);

#endif
