// SPDX-License-Identifier: Apache-2.0
/*
 * test_reject: the rejection sampler (reject.c): at most one stored rejection a second per reason and key,
 * the count of those only counted handed to the next stored one, keys and reasons independent.
 */
#include <stdio.h>
#include <string.h>

#include "reject.h"
#include "unit.h"

#define SECOND 1000000

static bool store(struct reject_sampler *s, enum reject_reason reason, const char *key, int64_t now_us,
		  uint32_t *suppressed)
{
	return reject_sampler_should_store(s, reason, key, strlen(key), now_us, suppressed);
}

static void test_one_per_second_per_key(void)
{
	struct reject_sampler *s = reject_sampler_new();
	uint32_t suppressed = 99;
	int stored = 0;

	/* 3,000 rejections over 2.999 s: one at 0, one at 1 s, one at 2 s. */
	for (int i = 0; i < 3000; i++)
		stored += store(s, REJECT_MALFORMED_JSON, "acme/D-0", (int64_t)i * 1000, &suppressed);
	CU_ASSERT_EQUAL(stored, 3);
	reject_sampler_free(s);
}

static void test_suppressed_count_goes_to_the_next_record(void)
{
	struct reject_sampler *s = reject_sampler_new();
	uint32_t suppressed = 99;

	CU_ASSERT_TRUE(store(s, REJECT_MALFORMED_JSON, "acme/D-0", 0, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 0);
	for (int i = 1; i <= 41; i++)
		CU_ASSERT_FALSE(store(s, REJECT_MALFORMED_JSON, "acme/D-0", i * 1000, &suppressed));
	CU_ASSERT_TRUE(store(s, REJECT_MALFORMED_JSON, "acme/D-0", SECOND, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 41);
	CU_ASSERT_TRUE(store(s, REJECT_MALFORMED_JSON, "acme/D-0", 5 * SECOND, &suppressed));
	CU_ASSERT_EQUAL(suppressed, 0);
	reject_sampler_free(s);
}

static void test_keys_and_reasons_are_independent(void)
{
	struct reject_sampler *s = reject_sampler_new();
	uint32_t suppressed;

	CU_ASSERT_TRUE(store(s, REJECT_MALFORMED_JSON, "acme/D-0", 0, &suppressed));
	CU_ASSERT_TRUE(store(s, REJECT_MALFORMED_JSON, "acme/D-1", 0, &suppressed));
	CU_ASSERT_TRUE(store(s, REJECT_WRONG_TYPE, "acme/D-0", 0, &suppressed));
	CU_ASSERT_TRUE(store(s, REJECT_NO_ROUTE, "solar//x/telemetry", 0, &suppressed));
	CU_ASSERT_FALSE(store(s, REJECT_MALFORMED_JSON, "acme/D-0", 10, &suppressed));
	CU_ASSERT_FALSE(store(s, REJECT_NO_ROUTE, "solar//x/telemetry", 10, &suppressed));
	reject_sampler_free(s);
}

/* Many more keys than slots within one second: nothing is lost, the bound only loosens (stored, not dropped). */
static void test_many_keys_are_stored_not_lost(void)
{
	struct reject_sampler *s = reject_sampler_new();
	uint32_t suppressed;
	char key[32];
	int stored = 0;

	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "acme/D-%d", i);
		stored += store(s, REJECT_UNKNOWN_DEVICE, key, 0, &suppressed);
	}
	CU_ASSERT_EQUAL(stored, 20000);
	reject_sampler_free(s);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_one_per_second_per_key),
		UNIT_TEST(test_suppressed_count_goes_to_the_next_record),
		UNIT_TEST(test_keys_and_reasons_are_independent),
		UNIT_TEST(test_many_keys_are_stored_not_lost),
	};

	return unit_run("reject", NULL, NULL, tests, UNIT_COUNT(tests));
}
