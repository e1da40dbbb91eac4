// SPDX-License-Identifier: Apache-2.0
/*
 * registry: arrays of tenants, devices and points, with open-addressing hash indexes of uint32 positions
 * over them (tenant by slug and by id, device by serial and by id, point name by text). A serial is unique
 * within its tenant only (sql/013), so a device is found by (tenant, serial). It is built for
 * 100,000 devices in a small RSS (issue 5), so a point is 8 bytes:
 *
 *   - A point's name and limits form its "kind" (name, min, max), interned: 100,000 inverters of one
 *     model share 4 kinds. A point stores its id and its kind's index.
 *   - A device's points sit next to each other in the points array (first_point[device], point_count),
 *     so finding a device's point by name is: intern lookup of the name (a small table), then a scan of
 *     the device's few points comparing integers. Devices with more than BIG_DEVICE points also get
 *     entries in an index by (device, name), so a lookup stays O(1) whatever a device carries.
 *   - Points arrive grouped by device from the loader (ORDER BY device_id); a point for a device whose
 *     group is not at the end of the array moves that group to the end (leaving a hole), and the array
 *     is compacted when holes outnumber points, so any order works, grouped order costs nothing.
 *   - Strings live in an arena of fixed blocks that never move (the public structs point into it).
 *   - registry_reserve sizes the arrays and indexes exactly from the loader's row counts.
 *
 * With 4 points per device that is about 80 bytes per device (see README, Performance).
 */
#include "registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define NONE	   UINT32_MAX
#define BIG_DEVICE 16 /* a device with more points than this also gets point index entries */

/* Slots hold an entry's position + 1 (0 = empty); capacity is any size, slot = hash * capacity >> 32. */
struct hash_index {
	uint32_t *slots;
	uint32_t cap;
	uint32_t count;
};

#define ARENA_BLOCK 65536

struct arena_block {
	struct arena_block *next;
	size_t used;
	char bytes[];
};

struct point_kind {
	const char *name;
	uint32_t name_id;
	bool has_min, has_max;
	double min, max;
};

struct point_slot {
	int32_t id;
	uint32_t kind;
};

/* An entry of the big-device index: the point at first_point[device] + offset. */
struct big_entry {
	uint32_t device;
	uint32_t offset;
};

struct registry {
	atomic_int refs;
	struct arena_block *arena;
	struct registry_tenant *tenants;
	size_t tenant_count, tenant_cap;
	struct registry_device *devices;
	uint32_t *first_point; /* parallel to devices */
	size_t device_count, device_cap;
	const char **names; /* interned point names */
	size_t name_count, name_cap;
	struct point_kind *kinds;
	size_t kind_count, kind_cap;
	struct point_slot *points;
	size_t point_count;		/* live points */
	size_t points_used, points_cap; /* slots used (points and holes) and allocated */
	struct big_entry *big;
	size_t big_count, big_cap;
	struct hash_index tenant_by_slug, tenant_by_id, device_by_serial, device_by_id, name_by_text,
		kind_by_value, big_by_key;
	/* Device aliases (sql/011): few per site, looked up only when a name is no registered serial, so a
	 * plain array scanned in order is enough and costs nothing on the hot path. */
	struct registry_alias *aliases;
	size_t alias_count, alias_cap;
};

struct registry_alias {
	int32_t tenant_id;
	uint32_t device; /* position in devices */
	const char *scope;
	const char *alias;
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

static uint32_t fold(uint64_t h)
{
	/* Multiply-shift mixes the low bits upwards: the slot is taken from the high bits. */
	h ^= h >> 29;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	return (uint32_t)(h >> 32);
}

static uint32_t hash_string(const char *s, size_t len)
{
	return fold(hash_bytes(HASH_SEED, s, len));
}

static uint32_t hash_id(int32_t id)
{
	return fold(HASH_SEED ^ (uint32_t)id);
}

static uint32_t hash_pair(uint32_t a, uint32_t b)
{
	return fold(HASH_SEED ^ ((uint64_t)a << 32 | b));
}

static uint32_t hash_kind(uint32_t name_id, bool has_min, double min, bool has_max, double max)
{
	uint64_t h = hash_bytes(HASH_SEED, &name_id, sizeof(name_id));

	h = hash_bytes(h, &has_min, 1);
	h = hash_bytes(h, &has_max, 1);
	if (has_min)
		h = hash_bytes(h, &min, sizeof(min));
	if (has_max)
		h = hash_bytes(h, &max, sizeof(max));
	return fold(h);
}

static uint32_t home_slot(const struct hash_index *ix, uint32_t hash)
{
	return (uint32_t)(((uint64_t)hash * ix->cap) >> 32);
}

/* --- indexes ------------------------------------------------------------------------------------------ */

typedef uint32_t (*entry_hash_fn)(const struct registry *r, uint32_t position);

static void index_put(struct hash_index *ix, uint32_t hash, uint32_t position)
{
	uint32_t i = home_slot(ix, hash);

	while (ix->slots[i])
		i = i + 1 == ix->cap ? 0 : i + 1;
	ix->slots[i] = position + 1;
	ix->count++;
}

/* Makes room for n entries at a load factor under 0.7, rehashing what is there (hashes from rehash). */
static void index_reserve(const struct registry *r, struct hash_index *ix, size_t n, entry_hash_fn rehash)
{
	size_t want = n * 10 / 7 + 1;
	uint32_t *old = ix->slots, old_cap = ix->cap;

	if (want < 8)
		want = 8;
	if (want <= ix->cap)
		return;
	ix->cap = (uint32_t)want;
	ix->slots = xcalloc(ix->cap, sizeof(*ix->slots));
	ix->count = 0;
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i])
			index_put(ix, rehash(r, old[i] - 1), old[i] - 1);
	free(old);
}

static void index_add(const struct registry *r, struct hash_index *ix, uint32_t hash, size_t position,
		      entry_hash_fn rehash)
{
	if ((size_t)(ix->count + 1) * 10 >= (size_t)ix->cap * 7)
		index_reserve(r, ix, (size_t)ix->cap * 2 * 7 / 10 + 1, rehash);
	index_put(ix, hash, (uint32_t)position);
}

/*
 * Walks the probe sequence of hash: returns the next candidate position and advances *cursor, or NONE at
 * the first empty slot. Callers compare the candidate's key.
 */
static inline uint32_t index_next(const struct hash_index *ix, uint32_t *cursor)
{
	uint32_t slot;

	if (!ix->cap)
		return NONE;
	slot = ix->slots[*cursor];
	*cursor = *cursor + 1 == ix->cap ? 0 : *cursor + 1;
	return slot ? slot - 1 : NONE;
}

#define INDEX_FOR_EACH(ix, hash, pos, cursor)                                                            \
	for (uint32_t cursor = (ix)->cap ? home_slot((ix), (hash)) : 0, pos = index_next((ix), &cursor); \
	     pos != NONE; pos = index_next((ix), &cursor))

/* --- strings ------------------------------------------------------------------------------------------- */

static const char *arena_strndup(struct registry *r, const char *s, size_t len)
{
	struct arena_block *b = r->arena;
	char *dst;

	if (!b || b->used + len + 1 > ARENA_BLOCK) {
		size_t size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
		b = xmalloc(sizeof(*b) + size);
		b->next = r->arena;
		b->used = 0;
		r->arena = b;
	}
	dst = b->bytes + b->used;
	memcpy(dst, s, len);
	dst[len] = '\0';
	b->used += len + 1;
	return dst;
}

static bool key_equals(const char *stored, const char *key, size_t len)
{
	return strncmp(stored, key, len) == 0 && stored[len] == '\0';
}

/* Grows array to hold at least need elements (doubling); exact when registry_reserve came first. */
#define RESERVE(array, need, cap)                                              \
	do {                                                                   \
		if ((need) > (cap)) {                                          \
			size_t grown_ = (cap) ? (cap)*2 : 16;                  \
			(cap) = grown_ > (need) ? grown_ : (need);             \
			(array) = xrealloc((array), (cap) * sizeof(*(array))); \
		}                                                              \
	} while (0)

/* --- rehash functions (entry position -> its hash) ------------------------------------------------------ */

static uint32_t rehash_tenant_slug(const struct registry *r, uint32_t pos)
{
	return hash_string(r->tenants[pos].slug, strlen(r->tenants[pos].slug));
}

static uint32_t rehash_tenant_id(const struct registry *r, uint32_t pos)
{
	return hash_id(r->tenants[pos].id);
}

static uint32_t rehash_device_serial(const struct registry *r, uint32_t pos)
{
	return hash_string(r->devices[pos].serial, strlen(r->devices[pos].serial));
}

static uint32_t rehash_device_id(const struct registry *r, uint32_t pos)
{
	return hash_id(r->devices[pos].id);
}

static uint32_t rehash_name(const struct registry *r, uint32_t pos)
{
	return hash_string(r->names[pos], strlen(r->names[pos]));
}

static uint32_t rehash_kind(const struct registry *r, uint32_t pos)
{
	const struct point_kind *k = &r->kinds[pos];
	return hash_kind(k->name_id, k->has_min, k->min, k->has_max, k->max);
}

static uint32_t big_name_id(const struct registry *r, const struct big_entry *e)
{
	return r->kinds[r->points[r->first_point[e->device] + e->offset].kind].name_id;
}

static uint32_t rehash_big(const struct registry *r, uint32_t pos)
{
	return hash_pair(r->big[pos].device, big_name_id(r, &r->big[pos]));
}

/* --- building --------------------------------------------------------------------------------------------- */

struct registry *registry_new(void)
{
	struct registry *r = xcalloc(1, sizeof(*r));

	atomic_init(&r->refs, 1);
	return r;
}

void registry_reserve(struct registry *r, size_t tenants, size_t devices, size_t points)
{
	RESERVE(r->tenants, r->tenant_count + tenants, r->tenant_cap);
	index_reserve(r, &r->tenant_by_slug, r->tenant_count + tenants, rehash_tenant_slug);
	index_reserve(r, &r->tenant_by_id, r->tenant_count + tenants, rehash_tenant_id);
	if (r->device_count + devices > r->device_cap) {
		r->device_cap = r->device_count + devices;
		r->devices = xrealloc(r->devices, r->device_cap * sizeof(*r->devices));
		r->first_point = xrealloc(r->first_point, r->device_cap * sizeof(*r->first_point));
	}
	index_reserve(r, &r->device_by_serial, r->device_count + devices, rehash_device_serial);
	index_reserve(r, &r->device_by_id, r->device_count + devices, rehash_device_id);
	RESERVE(r->points, r->points_used + points, r->points_cap);
}

const struct registry_tenant *registry_find_tenant(const struct registry *r, const char *slug, size_t len)
{
	INDEX_FOR_EACH(&r->tenant_by_slug, hash_string(slug, len), pos, cursor)
	if (key_equals(r->tenants[pos].slug, slug, len))
		return &r->tenants[pos];
	return NULL;
}

const struct registry_tenant *registry_find_tenant_by_id(const struct registry *r, int32_t id)
{
	INDEX_FOR_EACH(&r->tenant_by_id, hash_id(id), pos, cursor)
	if (r->tenants[pos].id == id)
		return &r->tenants[pos];
	return NULL;
}

/*
 * The serial index hashes the serial alone: the devices of every tenant with one serial share a probe
 * sequence, so one walk answers both "this tenant's device" and "which tenants have this serial".
 */
const struct registry_device *registry_find_device(const struct registry *r, int32_t tenant_id,
						   const char *serial, size_t len)
{
	INDEX_FOR_EACH(&r->device_by_serial, hash_string(serial, len), pos, cursor)
	if (r->devices[pos].tenant_id == tenant_id && key_equals(r->devices[pos].serial, serial, len))
		return &r->devices[pos];
	return NULL;
}

const struct registry_device *registry_find_serial(const struct registry *r, const char *serial, size_t len,
						   size_t *tenants)
{
	const struct registry_device *first = NULL;
	size_t n = 0;

	INDEX_FOR_EACH(&r->device_by_serial, hash_string(serial, len), pos, cursor)
	if (key_equals(r->devices[pos].serial, serial, len)) {
		/* The lowest tenant id, so that the answer does not depend on the index's layout. */
		if (!first || r->devices[pos].tenant_id < first->tenant_id)
			first = &r->devices[pos];
		n++;
	}
	if (tenants)
		*tenants = n;
	return first;
}

static uint32_t device_position_by_id(const struct registry *r, int32_t id)
{
	INDEX_FOR_EACH(&r->device_by_id, hash_id(id), pos, cursor)
	if (r->devices[pos].id == id)
		return pos;
	return NONE;
}

bool registry_add_alias(struct registry *r, int32_t tenant_id, const char *scope, const char *alias,
			int32_t device_id)
{
	uint32_t device = device_position_by_id(r, device_id);

	if (device == NONE || r->devices[device].tenant_id != tenant_id)
		return false;
	if (r->alias_count == r->alias_cap) {
		r->alias_cap = r->alias_cap ? r->alias_cap * 2 : 8;
		r->aliases = xrealloc(r->aliases, r->alias_cap * sizeof(*r->aliases));
	}
	r->aliases[r->alias_count++] =
		(struct registry_alias){ tenant_id, device, arena_strndup(r, scope, strlen(scope)),
					 arena_strndup(r, alias, strlen(alias)) };
	return true;
}

const struct registry_device *registry_find_alias(const struct registry *r, int32_t tenant_id,
						  const char *scope, const char *alias, size_t len)
{
	for (size_t i = 0; i < r->alias_count; i++) {
		const struct registry_alias *a = &r->aliases[i];
		if (a->tenant_id == tenant_id && strcmp(a->scope, scope) == 0 &&
		    key_equals(a->alias, alias, len))
			return &r->devices[a->device];
	}
	return NULL;
}

size_t registry_alias_count(const struct registry *r)
{
	return r->alias_count;
}

static uint32_t find_name(const struct registry *r, const char *name, size_t len)
{
	INDEX_FOR_EACH(&r->name_by_text, hash_string(name, len), pos, cursor)
	if (key_equals(r->names[pos], name, len))
		return pos;
	return NONE;
}

/* The offset of the device's point named name_id within its group, or NONE. */
static uint32_t point_offset(const struct registry *r, uint32_t device, uint32_t name_id)
{
	const struct registry_device *d = &r->devices[device];
	const struct point_slot *group = r->points + r->first_point[device];

	if (d->point_count > BIG_DEVICE) {
		INDEX_FOR_EACH(&r->big_by_key, hash_pair(device, name_id), pos, cursor)
		if (r->big[pos].device == device && big_name_id(r, &r->big[pos]) == name_id)
			return r->big[pos].offset;
		return NONE;
	}
	for (uint32_t i = 0; i < d->point_count; i++)
		if (r->kinds[group[i].kind].name_id == name_id)
			return i;
	return NONE;
}

static bool fill_point(const struct registry *r, uint32_t device, const char *name, size_t len,
		       struct registry_point *out)
{
	uint32_t name_id = find_name(r, name, len), offset;
	const struct point_slot *p;
	const struct point_kind *k;

	if (name_id == NONE || (offset = point_offset(r, device, name_id)) == NONE)
		return false;
	if (out) {
		p = &r->points[r->first_point[device] + offset];
		k = &r->kinds[p->kind];
		*out = (struct registry_point){ .id = p->id,
						.device_id = r->devices[device].id,
						.has_min = k->has_min,
						.has_max = k->has_max,
						.min = k->min,
						.max = k->max,
						.name = k->name };
	}
	return true;
}

bool registry_find_device_point(const struct registry *r, const struct registry_device *device,
				const char *name, size_t len, struct registry_point *out)
{
	return fill_point(r, (uint32_t)(device - r->devices), name, len, out);
}

bool registry_find_point(const struct registry *r, int32_t device_id, const char *name, size_t len,
			 struct registry_point *out)
{
	uint32_t device = device_position_by_id(r, device_id);

	return device != NONE && fill_point(r, device, name, len, out);
}

bool registry_add_tenant(struct registry *r, int32_t id, const char *slug)
{
	if (registry_find_tenant(r, slug, strlen(slug)) || registry_find_tenant_by_id(r, id))
		return false;
	RESERVE(r->tenants, r->tenant_count + 1, r->tenant_cap);
	r->tenants[r->tenant_count] =
		(struct registry_tenant){ .id = id, .slug = arena_strndup(r, slug, strlen(slug)) };
	index_add(r, &r->tenant_by_slug, hash_string(slug, strlen(slug)), r->tenant_count,
		  rehash_tenant_slug);
	index_add(r, &r->tenant_by_id, hash_id(id), r->tenant_count, rehash_tenant_id);
	r->tenant_count++;
	return true;
}

bool registry_add_device(struct registry *r, int32_t id, int32_t tenant_id, const char *serial, bool enabled)
{
	size_t len = strlen(serial);

	if (!registry_find_tenant_by_id(r, tenant_id) || registry_find_device(r, tenant_id, serial, len) ||
	    device_position_by_id(r, id) != NONE)
		return false;
	if (r->device_count == r->device_cap)
		registry_reserve(r, 0, r->device_cap ? r->device_cap : 16, 0);
	r->devices[r->device_count] = (struct registry_device){
		.id = id, .tenant_id = tenant_id, .enabled = enabled, .serial = arena_strndup(r, serial, len)
	};
	r->first_point[r->device_count] = 0;
	index_add(r, &r->device_by_serial, hash_string(serial, len), r->device_count, rehash_device_serial);
	index_add(r, &r->device_by_id, hash_id(id), r->device_count, rehash_device_id);
	r->device_count++;
	return true;
}

static uint32_t intern_name(struct registry *r, const char *name, size_t len)
{
	uint32_t id = find_name(r, name, len);

	if (id != NONE)
		return id;
	RESERVE(r->names, r->name_count + 1, r->name_cap);
	r->names[r->name_count] = arena_strndup(r, name, len);
	index_add(r, &r->name_by_text, hash_string(name, len), r->name_count, rehash_name);
	return (uint32_t)r->name_count++;
}

static uint32_t intern_kind(struct registry *r, uint32_t name_id, bool has_min, double min, bool has_max,
			    double max)
{
	uint32_t h;

	/* Absent limits are 0, so that they compare (bitwise) equal whatever the caller passed. */
	min = has_min ? min : 0;
	max = has_max ? max : 0;
	h = hash_kind(name_id, has_min, min, has_max, max);
	INDEX_FOR_EACH(&r->kind_by_value, h, pos, cursor)
	{
		const struct point_kind *k = &r->kinds[pos];
		if (k->name_id == name_id && k->has_min == has_min && k->has_max == has_max &&
		    memcmp(&k->min, &min, sizeof(min)) == 0 && memcmp(&k->max, &max, sizeof(max)) == 0)
			return pos;
	}
	RESERVE(r->kinds, r->kind_count + 1, r->kind_cap);
	r->kinds[r->kind_count] = (struct point_kind){ .name = r->names[name_id],
						       .name_id = name_id,
						       .has_min = has_min,
						       .has_max = has_max,
						       .min = min,
						       .max = max };
	index_add(r, &r->kind_by_value, h, r->kind_count, rehash_kind);
	return (uint32_t)r->kind_count++;
}

static void add_big_entry(struct registry *r, uint32_t device, uint32_t offset)
{
	RESERVE(r->big, r->big_count + 1, r->big_cap);
	r->big[r->big_count] = (struct big_entry){ .device = device, .offset = offset };
	index_add(r, &r->big_by_key, rehash_big(r, (uint32_t)r->big_count), r->big_count, rehash_big);
	r->big_count++;
}

/* Rewrites the points array without holes, groups in device order. */
static void compact_points(struct registry *r)
{
	struct point_slot *packed = xmalloc((r->point_count ? r->point_count : 1) * sizeof(*packed));
	size_t used = 0;

	for (size_t d = 0; d < r->device_count; d++) {
		uint32_t n = r->devices[d].point_count;
		memcpy(packed + used, r->points + r->first_point[d], n * sizeof(*packed));
		r->first_point[d] = (uint32_t)used;
		used += n;
	}
	free(r->points);
	r->points = packed;
	r->points_used = r->points_cap = used;
}

bool registry_add_point(struct registry *r, int32_t id, int32_t device_id, const char *name, bool has_min,
			double min, bool has_max, double max)
{
	uint32_t device = device_position_by_id(r, device_id), name_id, count, kind;
	size_t len = strlen(name);
	struct registry_device *d;

	if (device == NONE)
		return false;
	name_id = find_name(r, name, len);
	if (name_id != NONE && point_offset(r, device, name_id) != NONE)
		return false;
	name_id = intern_name(r, name, len);
	d = &r->devices[device];
	count = d->point_count;
	if (count == 0) {
		r->first_point[device] = (uint32_t)r->points_used;
	} else if (r->first_point[device] + count != r->points_used) {
		/* The device's group is not at the end: move it there (the old place becomes a hole). */
		RESERVE(r->points, r->points_used + count + 1, r->points_cap);
		memcpy(r->points + r->points_used, r->points + r->first_point[device],
		       count * sizeof(*r->points));
		r->first_point[device] = (uint32_t)r->points_used;
		r->points_used += count;
	}
	kind = intern_kind(r, name_id, has_min, min, has_max, max);
	RESERVE(r->points, r->points_used + 1, r->points_cap);
	r->points[r->points_used++] = (struct point_slot){ .id = id, .kind = kind };
	d->point_count++;
	r->point_count++;
	if (d->point_count == BIG_DEVICE + 1) {
		for (uint32_t i = 0; i < d->point_count; i++)
			add_big_entry(r, device, i);
	} else if (d->point_count > BIG_DEVICE + 1) {
		add_big_entry(r, device, d->point_count - 1);
	}
	if (r->points_used - r->point_count > r->point_count)
		compact_points(r);
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
	free(r->aliases);
	free(r->first_point);
	free(r->names);
	free(r->kinds);
	free(r->points);
	free(r->big);
	free(r->tenant_by_slug.slots);
	free(r->tenant_by_id.slots);
	free(r->device_by_serial.slots);
	free(r->device_by_id.slots);
	free(r->name_by_text.slots);
	free(r->kind_by_value.slots);
	free(r->big_by_key.slots);
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
