/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry: the in-memory snapshot of tenants, devices and points that validation consults for every
 * message, so that validating costs hash lookups and no query.
 *
 * Memory: 100,000 devices of 4 points must fit in a small RSS (issue 5). A device costs its
 * struct registry_device, its serial and two 4-byte index slots; a point costs 8 bytes (its id and the
 * index of its interned "kind": name, min, max, which thousands of devices share). struct registry_point
 * is therefore not stored but filled in by the lookup.
 *
 * A snapshot is built once (registry_new + registry_add_*), then never changes: it is shared read-only
 * between threads and reference-counted. A registry_store holds the current snapshot; the refresher swaps
 * in a new one, readers take a reference for as long as they use it.
 */
#ifndef MQTT2PG_REGISTRY_H
#define MQTT2PG_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct registry_tenant {
	int32_t id;
	const char *slug; /* owned by the registry */
};

struct registry_device {
	int32_t id;
	int32_t tenant_id;
	bool enabled;
	uint32_t point_count;
	const char *serial;
};

/* A point as a lookup returns it (a value, not stored as such); name borrows from the snapshot. */
struct registry_point {
	int32_t id;
	int32_t device_id;
	bool has_min, has_max;
	double min, max;
	const char *name;
};

struct registry;

/* Returns an empty, owned snapshot under construction (reference count 1). */
struct registry *registry_new(void);

/* Optional: the number of rows about to be added, so that arrays and indexes are sized once, exactly
 * (a loader that knows the counts avoids the doubling slack and the rehashes). */
void registry_reserve(struct registry *r, size_t tenants, size_t devices, size_t points);

/* Adders copy their strings. They return false for a duplicate key (slug, tenant+serial, device+name) or a
 * reference to an unknown tenant/device, which the database's constraints make impossible. */
bool registry_add_tenant(struct registry *r, int32_t id, const char *slug)
	__attribute__((warn_unused_result));
bool registry_add_device(struct registry *r, int32_t id, int32_t tenant_id, const char *serial, bool enabled)
	__attribute__((warn_unused_result));
bool registry_add_point(struct registry *r, int32_t id, int32_t device_id, const char *name, bool has_min,
			double min, bool has_max, double max) __attribute__((warn_unused_result));

/* A device alias (sql/011): alias names device_id in tenant_id under scope ("" = tenant-wide). Strings copied.
 * False when the device is unknown or of another tenant (the database's trigger makes that impossible). */
bool registry_add_alias(struct registry *r, int32_t tenant_id, const char *scope, const char *alias,
			int32_t device_id) __attribute__((warn_unused_result));

/* The device alias[0..len) names in tenant_id under scope, or NULL. */
const struct registry_device *registry_find_alias(const struct registry *r, int32_t tenant_id,
						  const char *scope, const char *alias, size_t len);
size_t registry_alias_count(const struct registry *r);

/* Lookups borrow from the snapshot; keys are byte slices (not NUL-terminated). NULL when absent. */
const struct registry_tenant *registry_find_tenant(const struct registry *r, const char *slug, size_t len);
const struct registry_tenant *registry_find_tenant_by_id(const struct registry *r, int32_t id);
/* A serial is unique within its tenant (sql/013): the device of tenant_id with this serial, or NULL. */
const struct registry_device *registry_find_device(const struct registry *r, int32_t tenant_id,
						   const char *serial, size_t len);
/* A device with this serial in any tenant (the one of the lowest tenant id), or NULL; *tenants (may be NULL)
 * is set to how many tenants have a device with this serial (more than one: the serial alone is ambiguous). */
const struct registry_device *registry_find_serial(const struct registry *r, const char *serial, size_t len,
						   size_t *tenants);

/* Point lookups fill *out (which may be NULL: an existence check) and return whether the point exists.
 * registry_find_device_point takes a device this snapshot returned (the hot path: no lookup by id). */
bool registry_find_point(const struct registry *r, int32_t device_id, const char *name, size_t len,
			 struct registry_point *out);
bool registry_find_device_point(const struct registry *r, const struct registry_device *device,
				const char *name, size_t len, struct registry_point *out);

size_t registry_tenant_count(const struct registry *r);
size_t registry_device_count(const struct registry *r);
size_t registry_point_count(const struct registry *r);

/* Reference counting (thread-safe). registry_unref(NULL) is a no-op; the last unref frees. */
struct registry *registry_ref(struct registry *r);
void registry_unref(struct registry *r);

/* The holder of the current snapshot. */
struct registry_store;

struct registry_store *registry_store_new(void);
void registry_store_free(struct registry_store *store);
/* Replaces the current snapshot; takes ownership of the caller's reference to r. */
void registry_store_swap(struct registry_store *store, struct registry *r);
/* Returns a new reference to the current snapshot (NULL before the first swap); release with registry_unref. */
struct registry *registry_store_acquire(struct registry_store *store);

#endif
