// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for batch.c: a tenant's batch (add, due by rows or by age, take) and the four PostgreSQL
 * binary arrays built from its readings. Each array is decoded here independently (header, element type,
 * count, per-element length, network byte order) and shown as "{...}" text for exact comparison; the
 * doubles are also compared bit for bit.
 */
#include <CUnit/Basic.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "message.h"
#include "unit.h"

/* A message of count readings; reading i has time base_us + i, value values[i], point point_base + i. */
static struct message *readings(int32_t device_id, uint32_t count, int64_t base_us, int32_t point_base,
				const double *values)
{
	struct message *m = message_new_readings(1, device_id, count, 0);

	for (uint32_t i = 0; i < count; i++)
		m->readings[i] = (struct reading){ .time_us = base_us + i,
						   .value = values ? values[i] : (double)i,
						   .point_id = point_base + (int32_t)i };
	return m;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/*
 * Decodes a binary array as PostgreSQL's array_recv would and renders it as "{a,b,c}" (integers as %lld,
 * doubles as %.17g). Returns NULL (and fails the test) when the bytes are not a well-formed array of oid.
 * Also stores the doubles in doubles_out when given. The text lives in one of four rotating buffers.
 */
static const char *text_of(const struct batch_array *a, uint32_t oid, double *doubles_out)
{
	static char buffers[4][262144];
	static int next;
	char *out = buffers[next++ % 4];
	size_t len = 0, n, elem = oid == BATCH_OID_INT4 ? 4 : 8, pos = 20;

	CU_ASSERT_FATAL(a->bytes != NULL && a->len >= 20);
	CU_ASSERT_EQUAL(get_u32(a->bytes), 1);	   /* one dimension */
	CU_ASSERT_EQUAL(get_u32(a->bytes + 4), 0); /* no NULLs */
	CU_ASSERT_EQUAL(get_u32(a->bytes + 8), oid);
	CU_ASSERT_EQUAL(get_u32(a->bytes + 16), 1); /* lower bound */
	n = get_u32(a->bytes + 12);
	CU_ASSERT_EQUAL(a->len, 20 + n * (4 + elem));
	if (a->len != 20 + n * (4 + elem))
		return NULL;
	out[len++] = '{';
	for (size_t i = 0; i < n; i++, pos += 4 + elem) {
		CU_ASSERT_EQUAL(get_u32(a->bytes + pos), elem);
		if (i)
			out[len++] = ',';
		if (oid == BATCH_OID_INT4) {
			len += (size_t)sprintf(out + len, "%d", (int32_t)get_u32(a->bytes + pos + 4));
		} else if (oid == BATCH_OID_INT8) {
			len += (size_t)sprintf(out + len, "%lld",
					       (long long)(int64_t)get_u64(a->bytes + pos + 4));
		} else {
			uint64_t bits = get_u64(a->bytes + pos + 4);
			double v;
			memcpy(&v, &bits, sizeof(v));
			if (doubles_out)
				doubles_out[i] = v;
			len += (size_t)sprintf(out + len, "%.17g", v);
		}
	}
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

#define TIMES(a)   text_of(&(a).times, BATCH_OID_INT8, NULL)
#define DEVICES(a) text_of(&(a).devices, BATCH_OID_INT4, NULL)
#define POINTS(a)  text_of(&(a).points, BATCH_OID_INT4, NULL)
#define VALUES(a)  text_of(&(a).values, BATCH_OID_FLOAT8, NULL)

static void free_chain(struct message *m)
{
	while (m) {
		struct message *next = m->next;
		message_free(m);
		m = next;
	}
}

static void test_init_and_empty(void)
{
	struct batch b;
	size_t count = 99;

	memset(&b, 0xab, sizeof(b));
	batch_init(&b, 42);
	CU_ASSERT_EQUAL(b.tenant_id, 42);
	CU_ASSERT_PTR_NULL(b.head);
	CU_ASSERT_PTR_NULL(b.tail);
	CU_ASSERT_EQUAL(b.message_count, 0);
	CU_ASSERT_EQUAL(b.row_count, 0);
	/* An empty batch is never due, however old or small the limits. */
	CU_ASSERT_FALSE(batch_due(&b, 0, 0, INT64_MAX / 2));
	CU_ASSERT_FALSE(batch_due(&b, 1, 1, 1000000));
	CU_ASSERT_PTR_NULL(batch_take(&b, &count));
	CU_ASSERT_EQUAL(count, 0);
}

static void test_add_counts_and_links(void)
{
	struct batch b;
	struct message *m1 = readings(7, 2, 1000, 1, NULL), *m2 = readings(8, 3, 2000, 1, NULL);
	struct message *m3 = readings(9, 1, 3000, 1, NULL);

	batch_init(&b, 1);
	m1->next = m3; /* a stale link must not survive the add */
	batch_add(&b, m1, 5000);
	CU_ASSERT_PTR_EQUAL(b.head, m1);
	CU_ASSERT_PTR_EQUAL(b.tail, m1);
	CU_ASSERT_PTR_NULL(m1->next);
	CU_ASSERT_EQUAL(b.opened_ms, 5000);
	batch_add(&b, m2, 5050);
	batch_add(&b, m3, 5070);
	CU_ASSERT_PTR_EQUAL(b.head, m1);
	CU_ASSERT_PTR_EQUAL(m1->next, m2);
	CU_ASSERT_PTR_EQUAL(m2->next, m3);
	CU_ASSERT_PTR_EQUAL(b.tail, m3);
	CU_ASSERT_PTR_NULL(m3->next);
	CU_ASSERT_EQUAL(b.message_count, 3);
	CU_ASSERT_EQUAL(b.row_count, 6);
	CU_ASSERT_EQUAL(b.opened_ms, 5000); /* the oldest message's time */
	free_chain(b.head);
}

static void test_due_by_rows(void)
{
	struct batch b;

	batch_init(&b, 1);
	batch_add(&b, readings(7, 4, 0, 1, NULL), 1000);
	CU_ASSERT_FALSE(batch_due(&b, 5, 100, 1000));
	batch_add(&b, readings(7, 1, 0, 1, NULL), 1000);
	CU_ASSERT_TRUE(batch_due(&b, 5, 100, 1000)); /* reached exactly */
	batch_add(&b, readings(7, 3, 0, 1, NULL), 1000);
	CU_ASSERT_TRUE(batch_due(&b, 5, 100, 1000));
	free_chain(b.head);
}

static void test_due_by_age(void)
{
	struct batch b;

	batch_init(&b, 1);
	batch_add(&b, readings(7, 1, 0, 1, NULL), 1000);
	batch_add(&b, readings(7, 1, 0, 1, NULL), 1090);
	CU_ASSERT_FALSE(batch_due(&b, 100, 100, 1000));
	CU_ASSERT_FALSE(batch_due(&b, 100, 100, 1099));
	CU_ASSERT_TRUE(batch_due(&b, 100, 100, 1100)); /* the oldest waited exactly max_age */
	CU_ASSERT_TRUE(batch_due(&b, 100, 100, 5000));
	free_chain(b.head);
}

static void test_take_empties_and_reopens(void)
{
	struct batch b;
	struct message *m1 = readings(7, 2, 0, 1, NULL), *m2 = readings(8, 1, 0, 1, NULL), *chain;
	size_t count = 0;

	batch_init(&b, 3);
	batch_add(&b, m1, 1000);
	batch_add(&b, m2, 1010);
	chain = batch_take(&b, &count);
	CU_ASSERT_PTR_EQUAL(chain, m1);
	CU_ASSERT_PTR_EQUAL(chain->next, m2);
	CU_ASSERT_PTR_NULL(m2->next);
	CU_ASSERT_EQUAL(count, 2);
	CU_ASSERT_PTR_NULL(b.head);
	CU_ASSERT_PTR_NULL(b.tail);
	CU_ASSERT_EQUAL(b.message_count, 0);
	CU_ASSERT_EQUAL(b.row_count, 0);
	CU_ASSERT_EQUAL(b.tenant_id, 3);
	CU_ASSERT_FALSE(batch_due(&b, 1, 1, 100000));
	free_chain(chain);

	/* The next message opens a new batch: its age counts from its own arrival. */
	batch_add(&b, readings(7, 1, 0, 1, NULL), 90000);
	CU_ASSERT_EQUAL(b.opened_ms, 90000);
	CU_ASSERT_FALSE(batch_due(&b, 100, 100, 90050));
	CU_ASSERT_TRUE(batch_due(&b, 100, 100, 90100));
	chain = batch_take(&b, &count);
	CU_ASSERT_EQUAL(count, 1);
	free_chain(chain);
}

static void test_arrays_exact_text(void)
{
	static const double v1[] = { 1.5, -2.0, 5420.0 };
	static const double v2[] = { 0.1, -0.000123 };
	struct message *m1 = readings(7, 3, INT64_C(1795257000000000), 3, v1);
	struct message *m2 = readings(12, 2, -1500000, 40, v2);
	struct batch_arrays a = { 0 };

	m1->next = m2;
	batch_arrays_build(&a, m1, 2);
	CU_ASSERT_EQUAL(a.rows, 5);
	ASSERT_STR(TIMES(a), "{1795257000000000,1795257000000001,1795257000000002,-1500000,-1499999}");
	ASSERT_STR(DEVICES(a), "{7,7,7,12,12}");
	ASSERT_STR(POINTS(a), "{3,4,5,40,41}");
	ASSERT_STR(VALUES(a), "{1.5,-2,5420,0.10000000000000001,-0.00012300000000000001}");
	batch_arrays_free(&a);
	CU_ASSERT_PTR_NULL(a.values.bytes);
	free_chain(m1);
}

static void test_arrays_respect_count(void)
{
	struct message *m1 = readings(7, 1, 10, 3, NULL), *m2 = readings(8, 1, 20, 4, NULL);
	struct batch_arrays a = { 0 };

	m1->next = m2;
	batch_arrays_build(&a, m1, 1);
	CU_ASSERT_EQUAL(a.rows, 1);
	ASSERT_STR(TIMES(a), "{10}");
	ASSERT_STR(DEVICES(a), "{7}");
	batch_arrays_free(&a);
	free_chain(m1);
}

static void test_arrays_empty(void)
{
	struct message *m = readings(7, 1, 10, 3, NULL);
	struct message *none = readings(8, 0, 0, 0, NULL);
	struct batch_arrays a = { 0 };

	batch_arrays_build(&a, NULL, 0);
	CU_ASSERT_EQUAL(a.rows, 0);
	ASSERT_STR(TIMES(a), "{}");
	ASSERT_STR(DEVICES(a), "{}");
	ASSERT_STR(POINTS(a), "{}");
	ASSERT_STR(VALUES(a), "{}");
	batch_arrays_build(&a, m, 0);
	CU_ASSERT_EQUAL(a.rows, 0);
	ASSERT_STR(VALUES(a), "{}");
	/* A message with no readings adds nothing, not an empty element. */
	batch_arrays_build(&a, none, 1);
	CU_ASSERT_EQUAL(a.rows, 0);
	ASSERT_STR(TIMES(a), "{}");
	none->next = m;
	batch_arrays_build(&a, none, 2);
	CU_ASSERT_EQUAL(a.rows, 1);
	ASSERT_STR(TIMES(a), "{10}");
	ASSERT_STR(DEVICES(a), "{7}");
	batch_arrays_free(&a);
	free_chain(none);
}

static void test_arrays_buffers_reused(void)
{
	struct message *big = readings(7, 5000, 0, 1, NULL),
		       *small = readings(9, 1, 77, 2, (const double[]){ -3.25 });
	struct batch_arrays a = { 0 };

	batch_arrays_build(&a, big, 1);
	CU_ASSERT_EQUAL(a.rows, 5000);
	CU_ASSERT_PTR_NOT_NULL(strstr(VALUES(a), ",4999}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(POINTS(a), ",5000}"));
	batch_arrays_build(&a, small, 1);
	CU_ASSERT_EQUAL(a.rows, 1);
	ASSERT_STR(TIMES(a), "{77}");
	ASSERT_STR(DEVICES(a), "{9}");
	ASSERT_STR(POINTS(a), "{2}");
	ASSERT_STR(VALUES(a), "{-3.25}");
	batch_arrays_free(&a);
	message_free(big);
	message_free(small);
}

static void test_values_round_trip(void)
{
	static const double values[] = { 0.1,
					 1e-300,
					 -1e-300,
					 1.0 / 3.0,
					 -2.0 / 3.0,
					 DBL_MAX,
					 -DBL_MAX,
					 DBL_MIN,
					 5e-324,
					 -0.0,
					 123456789.123456789,
					 1e22,
					 0.30000000000000004 };
	const uint32_t count = sizeof(values) / sizeof(values[0]);
	struct message *m = readings(7, count, 0, 1, values);
	struct batch_arrays a = { 0 };
	double back[sizeof(values) / sizeof(values[0])];

	batch_arrays_build(&a, m, 1);
	CU_ASSERT_EQUAL_FATAL(a.rows, count);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text_of(&a.values, BATCH_OID_FLOAT8, back));
	for (uint32_t i = 0; i < count; i++) {
		if (memcmp(&back[i], &values[i], sizeof(double)) != 0)
			fprintf(stderr, "\n  value %.17g came back as %.17g\n", values[i], back[i]);
		CU_ASSERT_EQUAL(memcmp(&back[i], &values[i], sizeof(double)), 0);
	}
	batch_arrays_free(&a);
	message_free(m);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_init_and_empty),
		UNIT_TEST(test_add_counts_and_links),
		UNIT_TEST(test_due_by_rows),
		UNIT_TEST(test_due_by_age),
		UNIT_TEST(test_take_empties_and_reopens),
		UNIT_TEST(test_arrays_exact_text),
		UNIT_TEST(test_arrays_respect_count),
		UNIT_TEST(test_arrays_empty),
		UNIT_TEST(test_arrays_buffers_reused),
		UNIT_TEST(test_values_round_trip),
	};

	return unit_run("batch", NULL, NULL, tests, UNIT_COUNT(tests));
}
