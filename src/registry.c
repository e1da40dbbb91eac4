// SPDX-License-Identifier: Apache-2.0
/*
 * registry: arrays of tenants, devices and points, with open-addressing hash indexes over them (tenant by
 * slug and by id, device by serial and by id, point by device id + name). Strings live in an arena of
 * fixed blocks that never move, so a device or point costs its entry, its name and two index slots,
 * not a malloc each (issue: 100,000 devices must fit in a small RSS).
 */
#include "registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* A slot holds an entry's position + 1 (0 = empty) and the entry's hash, so growing needs no rehash input. */
struct index_slot {
	uint32_t position_plus1;
	uint32_t hash;
};

struct hash_index {
	struct index_slot *slots;
	size_t mask; /* capacity - 1; capacity is a power of two */
	size_t count;
};

#define ARENA_BLOCK 65536

struct arena_block {
	struct arena_block *next;
	size_t used;
	char bytes[];
};

struct registry {
	atomic_int refs;
	struct arena_block *arena;
	struct registry_tenant *tenants;
	size_t tenant_count, tenant_cap;
	struct registry_device *devices;
	size_t device_count, device_cap;
	struct registry_point *points;
	size_t point_count, point_cap;
	struct hash_index tenant_by_slug, tenant_by_id, device_by_serial, device_by_id, point_by_key;
};

#define HASH_SEED UINT64_C(0xcbf29ce484222325)

/* FNV-1a. Keys are short; their set is the operator's registry, not attacker-chosen. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static uint32_t hash_string(const char *s, size_t len)
{
	uint64_t h = hash_bytes(HASH_SEED, s, len);
	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_id(int32_t id)
{
	uint64_t h = hash_bytes(HASH_SEED, &id, sizeof(id));
	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_point_key(int32_t device_id, const char *name, size_t len)
{
	uint64_t h = hash_bytes(hash_bytes(HASH_SEED, &device_id, sizeof(device_id)), name, len);
	return (uint32_t)(h ^ (h >> 32));
}

static void index_put(struct hash_index *ix, uint32_t hash, uint32_t position_plus1)
{
	size_t i = hash & ix->mask;

	while (ix->slots[i].position_plus1)
		i = (i + 1) & ix->mask;
	ix->slots[i].position_plus1 = position_plus1;
	ix->slots[i].hash = hash;
	ix->count++;
}

static void index_add(struct hash_index *ix, uint32_t hash, size_t position)
{
	size_t cap = ix->slots ? ix->mask + 1 : 0;

	if ((ix->count + 1) * 10 >= cap * 7) { /* keep the load factor under 0.7 */
		struct index_slot *old = ix->slots;
		size_t old_cap = cap;

		cap = cap ? cap * 2 : 64;
		ix->slots = xcalloc(cap, sizeof(*ix->slots));
		ix->mask = cap - 1;
		ix->count = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].position_plus1)
				index_put(ix, old[i].hash, old[i].position_plus1);
		free(old);
	}
	index_put(ix, hash, (uint32_t)position + 1);
}

/* Iterates the positions whose slot hash equals hash; returns SIZE_MAX when the chain ends. */
static size_t index_next(const struct hash_index *ix, uint32_t hash, size_t *cursor)
{
	if (!ix->slots)
		return SIZE_MAX;
	for (size_t i = *cursor; ix->slots[i & ix->mask].position_plus1; i++) {
		const struct index_slot *s = &ix->slots[i & ix->mask];
		if (s->hash == hash) {
			*cursor = i + 1;
			return s->position_plus1 - 1;
		}
	}
	return SIZE_MAX;
}

static const char *arena_strdup(struct registry *r, const char *s)
{
	size_t len = strlen(s) + 1;
	struct arena_block *b = r->arena;
	char *dst;

	if (!b || b->used + len > ARENA_BLOCK) {
		size_t size = len > ARENA_BLOCK ? len : ARENA_BLOCK;
		b = xmalloc(sizeof(*b) + size);
		b->next = r->arena;
		b->used = 0;
		r->arena = b;
	}
	dst = b->bytes + b->used;
	memcpy(dst, s, len);
	b->used += len;
	return dst;
}

static bool key_equals(const char *stored, const char *key, size_t len)
{
	return strncmp(stored, key, len) == 0 && stored[len] == '\0';
}

#define GROW(array, count, cap)                                                                             \
	do {                                                                                                \
		if ((count) == (cap)) {                                                                     \
			(cap) = (cap) ? (cap)*2 : 64;                                                       \
			(array) = xrealloc((array), (cap) * sizeof(*(array)));                              \
		}                                                                                           \
	} while (0)

struct registry *registry_new(void)
{
	struct registry *r = xcalloc(1, sizeof(*r));

	atomic_init(&r->refs, 1);
	return r;
}

const struct registry_tenant *registry_find_tenant(const struct registry *r, const char *slug, size_t len)
{
	uint32_t h = hash_string(slug, len);
	size_t cursor = h & r->tenant_by_slug.mask, pos;

	while ((pos = index_next(&r->tenant_by_slug, h, &cursor)) != SIZE_MAX)
		if (key_equals(r->tenants[pos].slug, slug, len))
			return &r->tenants[pos];
	return NULL;
}

const struct registry_tenant *registry_find_tenant_by_id(const struct registry *r, int32_t id)
{
	uint32_t h = hash_id(id);
	size_t cursor = h & r->tenant_by_id.mask, pos;

	while ((pos = index_next(&r->tenant_by_id, h, &cursor)) != SIZE_MAX)
		if (r->tenants[pos].id == id)
			return &r->tenants[pos];
	return NULL;
}

const struct registry_device *registry_find_device(const struct registry *r, const char *serial, size_t len)
{
	uint32_t h = hash_string(serial, len);
	size_t cursor = h & r->device_by_serial.mask, pos;

	while ((pos = index_next(&r->device_by_serial, h, &cursor)) != SIZE_MAX)
		if (key_equals(r->devices[pos].serial, serial, len))
			return &r->devices[pos];
	return NULL;
}

static struct registry_device *find_device_by_id(struct registry *r, int32_t id)
{
	uint32_t h = hash_id(id);
	size_t cursor = h & r->device_by_id.mask, pos;

	while ((pos = index_next(&r->device_by_id, h, &cursor)) != SIZE_MAX)
		if (r->devices[pos].id == id)
			return &r->devices[pos];
	return NULL;
}

const struct registry_point *registry_find_point(const struct registry *r, int32_t device_id, const char *name,
						 size_t len)
{
	uint32_t h = hash_point_key(device_id, name, len);
	size_t cursor = h & r->point_by_key.mask, pos;

	while ((pos = index_next(&r->point_by_key, h, &cursor)) != SIZE_MAX)
		if (r->points[pos].device_id == device_id && key_equals(r->points[pos].name, name, len))
			return &r->points[pos];
	return NULL;
}

bool registry_add_tenant(struct registry *r, int32_t id, const char *slug)
{
	if (registry_find_tenant(r, slug, strlen(slug)) || registry_find_tenant_by_id(r, id))
		return false;
	GROW(r->tenants, r->tenant_count, r->tenant_cap);
	r->tenants[r->tenant_count] = (struct registry_tenant){.id = id, .slug = arena_strdup(r, slug)};
	index_add(&r->tenant_by_slug, hash_string(slug, strlen(slug)), r->tenant_count);
	index_add(&r->tenant_by_id, hash_id(id), r->tenant_count);
	r->tenant_count++;
	return true;
}

bool registry_add_device(struct registry *r, int32_t id, int32_t tenant_id, const char *serial, bool enabled)
{
	if (!registry_find_tenant_by_id(r, tenant_id) || registry_find_device(r, serial, strlen(serial)) ||
	    find_device_by_id(r, id))
		return false;
	GROW(r->devices, r->device_count, r->device_cap);
	r->devices[r->device_count] = (struct registry_device){
		.id = id, .tenant_id = tenant_id, .enabled = enabled, .serial = arena_strdup(r, serial)};
	index_add(&r->device_by_serial, hash_string(serial, strlen(serial)), r->device_count);
	index_add(&r->device_by_id, hash_id(id), r->device_count);
	r->device_count++;
	return true;
}

bool registry_add_point(struct registry *r, int32_t id, int32_t device_id, const char *name, bool has_min,
			double min, bool has_max, double max)
{
	struct registry_device *device = find_device_by_id(r, device_id);

	if (!device || registry_find_point(r, device_id, name, strlen(name)))
		return false;
	GROW(r->points, r->point_count, r->point_cap);
	r->points[r->point_count] = (struct registry_point){.id = id,
							    .device_id = device_id,
							    .has_min = has_min,
							    .has_max = has_max,
							    .min = min,
							    .max = max,
							    .name = arena_strdup(r, name)};
	index_add(&r->point_by_key, hash_point_key(device_id, name, strlen(name)), r->point_count);
	r->point_count++;
	device->point_count++;
	return true;
}

size_t registry_tenant_count(const struct registry *r)
{
	return r->tenant_count;
}

size_t registry_device_count(const struct registry *r)
{
	return r->device_count;
}

size_t registry_point_count(const struct registry *r)
{
	return r->point_count;
}

struct registry *registry_ref(struct registry *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

static void registry_destroy(struct registry *r)
{
	struct arena_block *b = r->arena;

	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(r->tenants);
	free(r->devices);
	free(r->points);
	free(r->tenant_by_slug.slots);
	free(r->tenant_by_id.slots);
	free(r->device_by_serial.slots);
	free(r->device_by_id.slots);
	free(r->point_by_key.slots);
	free(r);
}

void registry_unref(struct registry *r)
{
	if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		registry_destroy(r);
}

struct registry_store {
	pthread_mutex_t lock;
	struct registry *current;
};

struct registry_store *registry_store_new(void)
{
	struct registry_store *store = xcalloc(1, sizeof(*store));

	pthread_mutex_init(&store->lock, NULL);
	return store;
}

void registry_store_free(struct registry_store *store)
{
	if (!store)
		return;
	registry_unref(store->current);
	pthread_mutex_destroy(&store->lock);
	free(store);
}

void registry_store_swap(struct registry_store *store, struct registry *r)
{
	struct registry *old;

	pthread_mutex_lock(&store->lock);
	old = store->current;
	store->current = r;
	pthread_mutex_unlock(&store->lock);
	registry_unref(old); /* freed here, or by the last reader still holding it */
}

struct registry *registry_store_acquire(struct registry_store *store)
{
	struct registry *r;

	pthread_mutex_lock(&store->lock);
	r = store->current ? registry_ref(store->current) : NULL;
	pthread_mutex_unlock(&store->lock);
	return r;
}
