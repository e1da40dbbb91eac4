// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for registry.c: adding and finding tenants, devices and points (by slug, tenant + serial (a serial
 * is unique per tenant only), device + name,
 * id; keys as unterminated slices), refusal of duplicates and dangling references, per-device point counts,
 * a 100,000-device registry where every lookup must hit, and the reference counting of snapshots and the
 * store's swap/acquire hand-off (including readers racing a swapper).
 */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "unit.h"

static bool find_tenant_text(const struct registry *r, const char *slug, int32_t want_id)
{
	const struct registry_tenant *t = registry_find_tenant(r, slug, strlen(slug));

	return t && t->id == want_id && strcmp(t->slug, slug) == 0;
}

/* The point lookup as a pointer (NULL when absent), so that the assertions read as before the lookup
 * returned a value: the struct is the last lookup's. */
static const struct registry_point *find_point(const struct registry *r, int32_t device_id, const char *name,
					       size_t len)
{
	static struct registry_point found;

	return registry_find_point(r, device_id, name, len, &found) ? &found : NULL;
}

static void test_empty_registry(void)
{
	struct registry *r = registry_new();

	CU_ASSERT_EQUAL(registry_tenant_count(r), 0);
	CU_ASSERT_EQUAL(registry_device_count(r), 0);
	CU_ASSERT_EQUAL(registry_point_count(r), 0);
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, "acme", 4));
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, "", 0));
	CU_ASSERT_PTR_NULL(registry_find_tenant_by_id(r, 1));
	CU_ASSERT_PTR_NULL(registry_find_device(r, 1, "INV-1", 5));
	CU_ASSERT_PTR_NULL(find_point(r, 1, "power", 5));
	registry_unref(r);
}

static void test_tenants(void)
{
	struct registry *r = registry_new();
	char slug[] = "acme";
	const struct registry_tenant *t;

	CU_ASSERT_TRUE(registry_add_tenant(r, 1, slug));
	CU_ASSERT_TRUE(registry_add_tenant(r, 2, "globex"));
	/* The registry keeps its own copy. */
	slug[0] = 'X';
	CU_ASSERT_TRUE(find_tenant_text(r, "acme", 1));
	CU_ASSERT_TRUE(find_tenant_text(r, "globex", 2));
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, "Xcme", 4));
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, "acm", 3));
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, "acmee", 5));
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, "ACME", 4));
	t = registry_find_tenant_by_id(r, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_STRING_EQUAL(t->slug, "globex");
	CU_ASSERT_PTR_NULL(registry_find_tenant_by_id(r, 3));
	CU_ASSERT_PTR_NULL(registry_find_tenant_by_id(r, 0));
	CU_ASSERT_EQUAL(registry_tenant_count(r), 2);
	registry_unref(r);
}

static void test_keys_are_slices(void)
{
	static const char topic[] = "solar/acme/INV-0001/telemetry";
	struct registry *r = registry_new();
	const struct registry_device *d;

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_TRUE_FATAL(registry_add_device(r, 7, 1, "INV-0001", true));
	CU_ASSERT_TRUE_FATAL(registry_add_point(r, 70, 7, "power", false, 0, false, 0));
	CU_ASSERT_TRUE(registry_find_tenant(r, topic + 6, 4) != NULL);
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, topic + 6, 5)); /* "acme/" */
	d = registry_find_device(r, 1, topic + 11, 8);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->id, 7);
	CU_ASSERT_PTR_NULL(registry_find_device(r, 1, topic + 11, 7));
	CU_ASSERT_PTR_NOT_NULL(find_point(r, 7, "power_total", 5));
	CU_ASSERT_PTR_NULL(find_point(r, 7, "power_total", 6));
	registry_unref(r);
}

static void test_devices(void)
{
	struct registry *r = registry_new();
	const struct registry_device *d;

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 2, "globex"));
	CU_ASSERT_TRUE(registry_add_device(r, 10, 1, "INV-A1", true));
	CU_ASSERT_TRUE(registry_add_device(r, 11, 1, "INV-A2", false));
	CU_ASSERT_TRUE(registry_add_device(r, 20, 2, "INV-B1", true));
	d = registry_find_device(r, 1, "INV-A2", 6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->id, 11);
	CU_ASSERT_EQUAL(d->tenant_id, 1);
	CU_ASSERT_FALSE(d->enabled);
	CU_ASSERT_EQUAL(d->point_count, 0);
	CU_ASSERT_STRING_EQUAL(d->serial, "INV-A2");
	d = registry_find_device(r, 2, "INV-B1", 6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->tenant_id, 2);
	CU_ASSERT_TRUE(d->enabled);
	CU_ASSERT_PTR_NULL(registry_find_device(r, 1, "INV-A", 5));
	CU_ASSERT_PTR_NULL(registry_find_device(r, 1, "inv-a1", 6));
	CU_ASSERT_PTR_NULL(registry_find_device(r, 1, "INV-B1", 6)); /* globex's, not acme's */
	CU_ASSERT_PTR_NULL(registry_find_device(r, 3, "INV-A1", 6)); /* no tenant 3 */
	CU_ASSERT_EQUAL(registry_device_count(r), 3);
	registry_unref(r);
}

static void test_points(void)
{
	struct registry *r = registry_new();
	const struct registry_point *p;

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_TRUE_FATAL(registry_add_device(r, 10, 1, "INV-A1", true));
	CU_ASSERT_TRUE_FATAL(registry_add_device(r, 11, 1, "INV-A2", true));
	CU_ASSERT_TRUE(registry_add_point(r, 100, 10, "power", true, -5.5, true, 10000.0));
	CU_ASSERT_TRUE(registry_add_point(r, 101, 10, "temp", false, 0, false, 0));
	/* The same name on another device is another point. */
	CU_ASSERT_TRUE(registry_add_point(r, 110, 11, "power", false, 0, true, 3.0));
	p = find_point(r, 10, "power", 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->id, 100);
	CU_ASSERT_EQUAL(p->device_id, 10);
	CU_ASSERT_TRUE(p->has_min);
	CU_ASSERT_EQUAL(p->min, -5.5);
	CU_ASSERT_TRUE(p->has_max);
	CU_ASSERT_EQUAL(p->max, 10000.0);
	CU_ASSERT_STRING_EQUAL(p->name, "power");
	p = find_point(r, 11, "power", 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->id, 110);
	CU_ASSERT_FALSE(p->has_min);
	CU_ASSERT_TRUE(p->has_max);
	CU_ASSERT_EQUAL(p->max, 3.0);
	p = find_point(r, 10, "temp", 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_FALSE(p->has_min);
	CU_ASSERT_FALSE(p->has_max);
	CU_ASSERT_PTR_NULL(find_point(r, 11, "temp", 4));
	CU_ASSERT_PTR_NULL(find_point(r, 12, "power", 5));
	CU_ASSERT_PTR_NULL(find_point(r, 10, "Power", 5));
	CU_ASSERT_EQUAL(registry_point_count(r), 3);
	registry_unref(r);
}

static void test_duplicates_refused(void)
{
	struct registry *r = registry_new();

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_FALSE(registry_add_tenant(r, 2, "acme"));  /* same slug */
	CU_ASSERT_FALSE(registry_add_tenant(r, 1, "other")); /* same id */
	CU_ASSERT_TRUE_FATAL(registry_add_device(r, 10, 1, "INV-A1", true));
	CU_ASSERT_FALSE(registry_add_device(r, 11, 1, "INV-A1", true)); /* same serial in the same tenant */
	CU_ASSERT_FALSE(registry_add_device(r, 10, 1, "INV-A9", true)); /* same id */
	CU_ASSERT_TRUE_FATAL(registry_add_point(r, 100, 10, "power", false, 0, false, 0));
	CU_ASSERT_FALSE(registry_add_point(r, 101, 10, "power", true, 1, true, 2)); /* same device + name */
	CU_ASSERT_EQUAL(registry_tenant_count(r), 1);
	CU_ASSERT_EQUAL(registry_device_count(r), 1);
	CU_ASSERT_EQUAL(registry_point_count(r), 1);
	/* The refused entries left nothing behind. */
	CU_ASSERT_PTR_NULL(registry_find_tenant(r, "other", 5));
	CU_ASSERT_PTR_NULL(registry_find_device(r, 1, "INV-A9", 6));
	CU_ASSERT_EQUAL(registry_find_tenant(r, "acme", 4)->id, 1);
	CU_ASSERT_EQUAL(registry_find_device(r, 1, "INV-A1", 6)->id, 10);
	CU_ASSERT_FALSE(find_point(r, 10, "power", 5)->has_min);
	CU_ASSERT_EQUAL(registry_find_device(r, 1, "INV-A1", 6)->point_count, 1);
	registry_unref(r);
}

/* A serial is unique within its tenant (sql/013): two tenants may each have one, found apart by tenant. */
static void test_serial_per_tenant(void)
{
	struct registry *r = registry_new();
	const struct registry_device *d;
	size_t tenants = 99;

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 2, "globex"));
	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 3, "initech"));
	CU_ASSERT_TRUE(registry_add_device(r, 20, 2, "inverter_1", true));
	CU_ASSERT_TRUE(registry_add_device(r, 10, 1, "inverter_1", false));
	CU_ASSERT_TRUE(registry_add_device(r, 11, 1, "total", true));
	CU_ASSERT_FALSE(registry_add_device(r, 12, 1, "inverter_1", true)); /* twice in acme */
	CU_ASSERT_EQUAL(registry_device_count(r), 3);
	CU_ASSERT_TRUE_FATAL(registry_add_point(r, 100, 10, "power", true, 0, true, 600));
	CU_ASSERT_TRUE_FATAL(registry_add_point(r, 200, 20, "power", false, 0, false, 0));

	d = registry_find_device(r, 1, "inverter_1", 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->id, 10);
	CU_ASSERT_FALSE(d->enabled);
	CU_ASSERT_TRUE(registry_find_device_point(r, d, "power", 5, NULL));
	d = registry_find_device(r, 2, "inverter_1", 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(d->id, 20);
	CU_ASSERT_TRUE(d->enabled);
	CU_ASSERT_PTR_NULL(registry_find_device(r, 3, "inverter_1", 10));
	CU_ASSERT_PTR_NULL(registry_find_device(r, 2, "total", 5));

	/* By serial alone: how many tenants have it, and the device of the lowest tenant id. */
	d = registry_find_serial(r, "inverter_1", 10, &tenants);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(tenants, 2);
	CU_ASSERT_EQUAL(d->id, 10);
	d = registry_find_serial(r, "total", 5, &tenants);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(tenants, 1);
	CU_ASSERT_EQUAL(d->tenant_id, 1);
	CU_ASSERT_PTR_NULL(registry_find_serial(r, "inverter_", 9, &tenants));
	CU_ASSERT_EQUAL(tenants, 0);
	CU_ASSERT_PTR_NOT_NULL(registry_find_serial(r, "inverter_1", 10, NULL));
	registry_unref(r);
}

static void test_dangling_refused(void)
{
	struct registry *r = registry_new();

	CU_ASSERT_FALSE(registry_add_device(r, 10, 1, "INV-A1", true)); /* no tenant 1 yet */
	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_FALSE(registry_add_device(r, 10, 2, "INV-A1", true));
	CU_ASSERT_FALSE(registry_add_point(r, 100, 10, "power", false, 0, false, 0)); /* no device 10 */
	CU_ASSERT_TRUE_FATAL(registry_add_device(r, 10, 1, "INV-A1", true));
	CU_ASSERT_FALSE(registry_add_point(r, 100, 11, "power", false, 0, false, 0));
	CU_ASSERT_TRUE(registry_add_point(r, 100, 10, "power", false, 0, false, 0));
	CU_ASSERT_EQUAL(registry_device_count(r), 1);
	CU_ASSERT_EQUAL(registry_point_count(r), 1);
	registry_unref(r);
}

static void test_point_count_per_device(void)
{
	struct registry *r = registry_new();

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_TRUE_FATAL(registry_add_device(r, 10, 1, "A", true));
	CU_ASSERT_TRUE_FATAL(registry_add_device(r, 11, 1, "B", true));
	CU_ASSERT_TRUE(registry_add_point(r, 1, 10, "p1", false, 0, false, 0));
	CU_ASSERT_TRUE(registry_add_point(r, 2, 10, "p2", false, 0, false, 0));
	CU_ASSERT_TRUE(registry_add_point(r, 3, 10, "p3", false, 0, false, 0));
	CU_ASSERT_TRUE(registry_add_point(r, 4, 11, "p1", false, 0, false, 0));
	CU_ASSERT_FALSE(registry_add_point(r, 5, 10, "p1", false, 0, false, 0));
	CU_ASSERT_EQUAL(registry_find_device(r, 1, "A", 1)->point_count, 3);
	CU_ASSERT_EQUAL(registry_find_device(r, 1, "B", 1)->point_count, 1);
	CU_ASSERT_EQUAL(registry_point_count(r), 4);
	registry_unref(r);
}

/* Points of one name with other limits on other devices stay distinct (interning shares only equal kinds). */
static void test_shared_names_keep_their_limits(void)
{
	struct registry *r = registry_new();
	const struct registry_point *p;

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	for (int d = 1; d <= 3; d++)
		CU_ASSERT_TRUE_FATAL(registry_add_device(r, d, 1, d == 1 ? "A" : d == 2 ? "B" : "C", true));
	CU_ASSERT_TRUE(registry_add_point(r, 11, 1, "power", true, 0, true, 100));
	CU_ASSERT_TRUE(registry_add_point(r, 21, 2, "power", true, 0, true, 200));
	CU_ASSERT_TRUE(registry_add_point(r, 31, 3, "power", true, 0, true, 100));
	/* Absent limits compare equal whatever value came with them. */
	CU_ASSERT_TRUE(registry_add_point(r, 12, 1, "temp", false, 7, false, 9));
	CU_ASSERT_TRUE(registry_add_point(r, 22, 2, "temp", false, 0, false, 0));
	p = find_point(r, 2, "power", 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->id, 21);
	CU_ASSERT_EQUAL(p->max, 200);
	p = find_point(r, 3, "power", 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->id, 31);
	CU_ASSERT_EQUAL(p->max, 100);
	p = find_point(r, 1, "temp", 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->id, 12);
	CU_ASSERT_FALSE(p->has_min);
	CU_ASSERT_FALSE(p->has_max);
	CU_ASSERT_PTR_NULL(find_point(r, 3, "temp", 4));
	registry_unref(r);
}

/* Points in any order (devices interleaved, as an unordered load would give them), with reserve or not. */
static void test_points_in_any_order(void)
{
	enum {
		DEVICES = 50,
		POINTS = 40 /* beyond BIG_DEVICE: the per-device index too */
	};
	for (int reserve = 0; reserve < 2; reserve++) {
		struct registry *r = registry_new();
		char name[16];
		size_t wrong = 0;

		if (reserve)
			registry_reserve(r, 1, DEVICES, (size_t)DEVICES * POINTS);
		CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
		for (int d = 1; d <= DEVICES; d++) {
			snprintf(name, sizeof(name), "D%d", d);
			CU_ASSERT_TRUE_FATAL(registry_add_device(r, d, 1, name, true));
		}
		/* Point p of every device, then p + 1 of every device, ...; device d has d % POINTS + 1 points. */
		for (int p = 0; p < POINTS; p++)
			for (int d = 1; d <= DEVICES; d++) {
				if (p > d % POINTS)
					continue;
				snprintf(name, sizeof(name), "p%d", p);
				CU_ASSERT_TRUE_FATAL(
					registry_add_point(r, d * 1000 + p, d, name, true, p, true, d));
			}
		for (int d = 1; d <= DEVICES; d++) {
			snprintf(name, sizeof(name), "D%d", d);
			const struct registry_device *dev = registry_find_device(r, 1, name, strlen(name));
			CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
			wrong += dev->point_count != (uint32_t)(d % POINTS + 1);
			for (int p = 0; p < POINTS; p++) {
				struct registry_point pt;
				snprintf(name, sizeof(name), "p%d", p);
				bool found = registry_find_device_point(r, dev, name, strlen(name), &pt);
				if (p > d % POINTS)
					wrong += found;
				else
					wrong += !found || pt.id != d * 1000 + p || pt.device_id != d ||
						 pt.min != p || pt.max != d || strcmp(pt.name, name) != 0;
			}
			/* A duplicate is refused also for a device with many points. */
			CU_ASSERT_FALSE(registry_add_point(r, 999999, d, "p0", false, 0, false, 0));
			CU_ASSERT_FALSE(registry_find_device_point(r, dev, "p", 1, NULL));
		}
		CU_ASSERT_EQUAL(wrong, 0);
		registry_unref(r);
	}
}

/* Sanity at the size the registry is built for; not timed. */
static void test_hundred_thousand_devices(void)
{
	enum {
		TENANTS = 10,
		DEVICES = 100000,
		POINTS = 4
	};
	static const char *const names[POINTS] = { "total_output_power", "temp", "soc", "grid.voltage:l1" };
	struct registry *r = registry_new();
	char key[32];
	size_t missing = 0, wrong = 0;
	bool ok = true;

	for (int t = 1; t <= TENANTS; t++) {
		snprintf(key, sizeof(key), "tenant-%d", t);
		ok = ok && registry_add_tenant(r, t, key);
	}
	for (int d = 1; d <= DEVICES && ok; d++) {
		snprintf(key, sizeof(key), "INV-%06d", d);
		ok = registry_add_device(r, d, 1 + d % TENANTS, key, d % 100 != 0);
		for (int p = 0; p < POINTS && ok; p++)
			ok = registry_add_point(r, d * POINTS + p, d, names[p], p == 0, 0.0, p == 0, 1e6);
	}
	CU_ASSERT_TRUE_FATAL(ok);
	CU_ASSERT_EQUAL(registry_tenant_count(r), TENANTS);
	CU_ASSERT_EQUAL(registry_device_count(r), DEVICES);
	CU_ASSERT_EQUAL(registry_point_count(r), (size_t)DEVICES * POINTS);

	for (int d = 1; d <= DEVICES; d++) {
		const struct registry_device *dev;
		int n = snprintf(key, sizeof(key), "INV-%06d", d);

		dev = registry_find_device(r, 1 + d % TENANTS, key, (size_t)n);
		if (!dev) {
			missing++;
			continue;
		}
		wrong += dev->id != d || dev->tenant_id != 1 + d % TENANTS ||
			 dev->enabled != (d % 100 != 0) || dev->point_count != POINTS;
		for (int p = 0; p < POINTS; p++) {
			const struct registry_point *pt = find_point(r, d, names[p], strlen(names[p]));
			if (!pt)
				missing++;
			else
				wrong += pt->id != d * POINTS + p || pt->device_id != d;
		}
	}
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(wrong, 0);
	for (int t = 1; t <= TENANTS; t++) {
		snprintf(key, sizeof(key), "tenant-%d", t);
		CU_ASSERT_TRUE(find_tenant_text(r, key, t));
	}
	/* And misses stay misses. */
	CU_ASSERT_PTR_NULL(registry_find_device(r, 1, "INV-000000", 10));
	CU_ASSERT_PTR_NULL(registry_find_device(r, 2, "INV-100001", 10));
	CU_ASSERT_PTR_NULL(find_point(r, 1, "temp2", 5));
	CU_ASSERT_PTR_NULL(find_point(r, DEVICES + 1, "temp", 4));
	registry_unref(r);
}

static void test_ref_unref(void)
{
	struct registry *r = registry_new();

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(r, 1, "acme"));
	CU_ASSERT_PTR_EQUAL(registry_ref(r), r);
	registry_unref(r);
	/* One reference left: still alive (ASan would report a use after free otherwise). */
	CU_ASSERT_TRUE(find_tenant_text(r, "acme", 1));
	registry_unref(r); /* the last one frees; LeakSanitizer checks that it did */
	registry_unref(NULL);
}

static void test_store_swap_and_acquire(void)
{
	struct registry_store *store = registry_store_new();
	struct registry *first = registry_new(), *second = registry_new(), *reader_a, *reader_b;

	CU_ASSERT_TRUE_FATAL(registry_add_tenant(first, 1, "first"));
	CU_ASSERT_TRUE_FATAL(registry_add_tenant(second, 2, "second"));
	CU_ASSERT_PTR_NULL(registry_store_acquire(store));

	registry_store_swap(store, first); /* the store now owns our reference */
	reader_a = registry_store_acquire(store);
	CU_ASSERT_PTR_EQUAL(reader_a, first);

	registry_store_swap(store, second);
	/* The reader keeps the old snapshot alive after the swap... */
	CU_ASSERT_TRUE(find_tenant_text(reader_a, "first", 1));
	reader_b = registry_store_acquire(store);
	CU_ASSERT_PTR_EQUAL(reader_b, second);
	CU_ASSERT_TRUE(find_tenant_text(reader_b, "second", 2));
	/* ...and its unref is the last one. */
	registry_unref(reader_a);
	registry_unref(reader_b);
	/* The store still holds the current snapshot. */
	reader_b = registry_store_acquire(store);
	CU_ASSERT_PTR_EQUAL(reader_b, second);
	registry_unref(reader_b);
	registry_store_free(store); /* releases "second" */
	registry_store_free(NULL);
}

struct race {
	struct registry_store *store;
	atomic_bool stop;
	atomic_long lookups;
	atomic_long bad;
};

static void *reader_thread(void *arg)
{
	struct race *race = arg;

	while (!atomic_load(&race->stop)) {
		struct registry *r = registry_store_acquire(race->store);
		const struct registry_tenant *t;

		if (!r)
			continue;
		/* Every snapshot has tenant "t" whose id is its generation (> 0). */
		t = registry_find_tenant(r, "t", 1);
		if (!t || t->id <= 0)
			atomic_fetch_add(&race->bad, 1);
		atomic_fetch_add(&race->lookups, 1);
		registry_unref(r);
	}
	return NULL;
}

static void test_store_readers_race_swapper(void)
{
	struct race race = { .store = registry_store_new() };
	pthread_t readers[2];

	atomic_init(&race.stop, false);
	atomic_init(&race.lookups, 0);
	atomic_init(&race.bad, 0);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&readers[i], NULL, reader_thread, &race), 0);
	/* At least 2000 swaps, and until the readers have looked up often enough to have raced them. */
	for (int generation = 1;
	     generation <= 2000 || (atomic_load(&race.lookups) < 2000 && generation < 1000000);
	     generation++) {
		struct registry *r = registry_new();
		if (!registry_add_tenant(r, generation, "t"))
			CU_FAIL("add_tenant");
		registry_store_swap(race.store, r);
	}
	atomic_store(&race.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(readers[i], NULL);
	CU_ASSERT_EQUAL(atomic_load(&race.bad), 0);
	CU_ASSERT(atomic_load(&race.lookups) >= 2000);
	registry_store_free(race.store);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_empty_registry),
		UNIT_TEST(test_tenants),
		UNIT_TEST(test_keys_are_slices),
		UNIT_TEST(test_devices),
		UNIT_TEST(test_points),
		UNIT_TEST(test_duplicates_refused),
		UNIT_TEST(test_serial_per_tenant),
		UNIT_TEST(test_dangling_refused),
		UNIT_TEST(test_point_count_per_device),
		UNIT_TEST(test_shared_names_keep_their_limits),
		UNIT_TEST(test_points_in_any_order),
		UNIT_TEST(test_hundred_thousand_devices),
		UNIT_TEST(test_ref_unref),
		UNIT_TEST(test_store_swap_and_acquire),
		UNIT_TEST(test_store_readers_race_swapper),
	};

	return unit_run("registry", NULL, NULL, tests, UNIT_COUNT(tests));
}
