// SPDX-License-Identifier: Apache-2.0
/*
 * json_arena: cJSON's allocations from a per-thread block while a decode runs (see json_arena.h).
 */
#include "payload/json_arena.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/xalloc.h"

#define ARENA_BYTES 16384 /* a ~170-byte envelope takes ~1 KB; a larger payload spills to malloc */
#define ALIGNMENT   16

struct arena {
	unsigned char *base;
	size_t used;
	bool active;
};

static _Thread_local struct arena arena;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static pthread_key_t block_key; /* frees a thread's block when the thread exits */

static void *arena_malloc(size_t n)
{
	size_t rounded = (n + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);

	if (arena.active && rounded <= ARENA_BYTES - arena.used) {
		void *p = arena.base + arena.used;
		arena.used += rounded;
		return p;
	}
	return malloc(n); /* cJSON checks for NULL itself */
}

/* A block from this thread's arena is released at json_arena_end; anything else came from malloc. */
static void arena_free(void *p)
{
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)arena.base;

	if (arena.base && a >= base && a < base + ARENA_BYTES)
		return;
	free(p);
}

static void install_hooks(void)
{
	cJSON_Hooks hooks = { .malloc_fn = arena_malloc, .free_fn = arena_free };

	if (pthread_key_create(&block_key, free) != 0)
		abort();
	cJSON_InitHooks(&hooks);
}

void json_arena_init(void)
{
	pthread_once(&hooks_once, install_hooks);
}

void json_arena_begin(void)
{
	json_arena_init();
	if (!arena.base) {
		arena.base = xmalloc(ARENA_BYTES);
		pthread_setspecific(block_key, arena.base);
	}
	arena.used = 0;
	arena.active = true;
}

void json_arena_end(void)
{
	arena.active = false;
	arena.used = 0;
}
