// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for ratelimit.c: token buckets per key on a clock the test sets. Covers "no limit" (NULL), the
 * burst and the refill at the configured rate, the cap at the burst after a long idle, keys that do not share
 * a bucket (also ids far apart, which grow the array, and ids <= 0), a clock that goes backwards, and the
 * once-a-second recording of refusals with the count of those not recorded.
 */
#include <CUnit/Basic.h>
#include <stdint.h>

#include "ratelimit.h"
#include "unit.h"

#define SECOND INT64_C(1000000)
#define T0     (INT64_C(1795257000) * SECOND)

static void test_unlimited_is_null_and_allows(void)
{
	uint32_t suppressed = 7;

	CU_ASSERT_PTR_NULL(ratelimit_new(0, 10));
	CU_ASSERT_PTR_NULL(ratelimit_new(-1, 10));
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_TRUE(ratelimit_allow(NULL, 1, T0));
	CU_ASSERT_TRUE(ratelimit_should_record(NULL, 1, T0, &suppressed));
	ratelimit_free(NULL);
}

static void test_burst_then_refill_at_rate(void)
{
	struct ratelimit *rl = ratelimit_new(2.0, 3.0); /* 2 a second, 3 at once */

	CU_ASSERT_PTR_NOT_NULL_FATAL(rl);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_TRUE(ratelimit_allow(rl, 5, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 5, T0));
	/* Half a token after 0.25 s: still refused. */
	CU_ASSERT_FALSE(ratelimit_allow(rl, 5, T0 + SECOND / 4));
	/* Another half after 0.25 s more: one whole token, taken. */
	CU_ASSERT_TRUE(ratelimit_allow(rl, 5, T0 + SECOND / 2));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 5, T0 + SECOND / 2));
	/* One second later: two more. */
	CU_ASSERT_TRUE(ratelimit_allow(rl, 5, T0 + 3 * SECOND / 2));
	CU_ASSERT_TRUE(ratelimit_allow(rl, 5, T0 + 3 * SECOND / 2));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 5, T0 + 3 * SECOND / 2));
	ratelimit_free(rl);
}

static void test_idle_refills_only_up_to_the_burst(void)
{
	struct ratelimit *rl = ratelimit_new(100.0, 4.0);
	int allowed = 0;

	CU_ASSERT_TRUE(ratelimit_allow(rl, 1, T0));
	for (int i = 0; i < 10; i++)
		allowed += ratelimit_allow(rl, 1, T0 + 3600 * SECOND);
	CU_ASSERT_EQUAL(allowed, 4);
	ratelimit_free(rl);
}

static void test_burst_below_one_is_one(void)
{
	struct ratelimit *rl = ratelimit_new(1.0, 0.0);

	CU_ASSERT_TRUE(ratelimit_allow(rl, 1, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 1, T0));
	ratelimit_free(rl);
}

static void test_keys_have_their_own_buckets(void)
{
	struct ratelimit *rl = ratelimit_new(1.0, 1.0);

	CU_ASSERT_TRUE(ratelimit_allow(rl, 1, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 1, T0));
	CU_ASSERT_TRUE(ratelimit_allow(rl, 2, T0));
	/* Far past the initial array: it grows, and the buckets below keep their state. */
	CU_ASSERT_TRUE(ratelimit_allow(rl, 100000, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 100000, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 1, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 2, T0));
	/* Ids <= 0 share the bucket of 0 (ids are the registry's, always > 0). */
	CU_ASSERT_TRUE(ratelimit_allow(rl, 0, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, -3, T0));
	ratelimit_free(rl);
}

static void test_clock_going_back_adds_nothing(void)
{
	struct ratelimit *rl = ratelimit_new(1.0, 1.0);

	CU_ASSERT_TRUE(ratelimit_allow(rl, 1, T0));
	CU_ASSERT_FALSE(ratelimit_allow(rl, 1, T0 - 10 * SECOND));
	/* The clock's new origin: a second after it, one token. */
	CU_ASSERT_TRUE(ratelimit_allow(rl, 1, T0 - 9 * SECOND));
	ratelimit_free(rl);
}

static void test_should_record_once_a_second_with_count(void)
{
	struct ratelimit *rl = ratelimit_new(1.0, 1.0);
	uint32_t suppressed = 99;

	CU_ASSERT_TRUE(ratelimit_should_record(rl, 7, T0, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 0);
	suppressed = 99;
	CU_ASSERT_FALSE(ratelimit_should_record(rl, 7, T0 + 1, &suppressed));
	CU_ASSERT_FALSE(ratelimit_should_record(rl, 7, T0 + SECOND / 2, &suppressed));
	CU_ASSERT_FALSE(ratelimit_should_record(rl, 7, T0 + SECOND - 1, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 99); /* untouched while not recording */
	/* Another key records on its own. */
	CU_ASSERT_TRUE(ratelimit_should_record(rl, 8, T0 + 2, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 0);
	CU_ASSERT_TRUE(ratelimit_should_record(rl, 7, T0 + SECOND, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 3);
	CU_ASSERT_TRUE(ratelimit_should_record(rl, 7, T0 + 2 * SECOND, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 0);
	ratelimit_free(rl);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_unlimited_is_null_and_allows),
		UNIT_TEST(test_burst_then_refill_at_rate),
		UNIT_TEST(test_idle_refills_only_up_to_the_burst),
		UNIT_TEST(test_burst_below_one_is_one),
		UNIT_TEST(test_keys_have_their_own_buckets),
		UNIT_TEST(test_clock_going_back_adds_nothing),
		UNIT_TEST(test_should_record_once_a_second_with_count),
	};

	return unit_run("ratelimit", NULL, NULL, tests, UNIT_COUNT(tests));
}
