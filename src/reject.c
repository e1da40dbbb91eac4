// SPDX-License-Identifier: Apache-2.0
/*
 * reject: the sampler that stores at most one rejection per second per reason and claimed device (see
 * reject.h). The reasons' names are payload/reason.c.
 */
#include "reject.h"

#include <stdlib.h>

#include "util/xalloc.h"

#define REJECT_SAMPLER_SLOTS	 4096 /* a power of two */
#define REJECT_SAMPLER_PROBES	 8
#define REJECT_SAMPLER_PERIOD_US 1000000

struct sampler_slot {
	uint64_t key_hash; /* 0: free */
	int64_t stored_us; /* when the last one of this key was stored */
	uint32_t suppressed;
};

struct reject_sampler {
	struct sampler_slot slots[REJECT_SAMPLER_SLOTS];
};

struct reject_sampler *reject_sampler_new(void)
{
	return xcalloc(1, sizeof(struct reject_sampler));
}

void reject_sampler_free(struct reject_sampler *s)
{
	free(s);
}

/* FNV-1a over the reason and the key: 64 bits, so two keys sharing a hash are not a practical concern. */
static uint64_t sampler_hash(enum reject_reason reason, const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)reason;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

bool reject_sampler_should_store(struct reject_sampler *s, enum reject_reason reason, const void *key,
				 size_t key_len, int64_t now_us, uint32_t *suppressed)
{
	uint64_t h = sampler_hash(reason, key, key_len);
	struct sampler_slot *free_slot = NULL;

	*suppressed = 0;
	for (size_t i = 0; i < REJECT_SAMPLER_PROBES; i++) {
		struct sampler_slot *slot = &s->slots[(h + i) & (REJECT_SAMPLER_SLOTS - 1)];
		if (slot->key_hash == h) {
			if (now_us - slot->stored_us < REJECT_SAMPLER_PERIOD_US) {
				slot->suppressed++;
				return false;
			}
			*suppressed = slot->suppressed;
			slot->suppressed = 0;
			slot->stored_us = now_us;
			return true;
		}
		/* A slot whose key has been quiet for a period has nothing left to say: reusable. */
		if (!free_slot &&
		    (slot->key_hash == 0 || now_us - slot->stored_us >= REJECT_SAMPLER_PERIOD_US))
			free_slot = slot;
	}
	if (free_slot)
		*free_slot = (struct sampler_slot){ .key_hash = h, .stored_us = now_us };
	return true;
}
