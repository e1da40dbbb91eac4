/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unit.h: the one main every CUnit test program shares, and the assertions CUnit lacks (ASSERT_STR). A test file lists its tests with UNIT_TEST and
 * returns unit_run(...) from main: one suite, verbose output, exit 0 when every test and the suite's set-up
 * and clean-up passed, 1 on a failure, 2 when CUnit itself could not run.
 */
#ifndef MQTT2PG_TESTS_UNIT_H
#define MQTT2PG_TESTS_UNIT_H

#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* CU_ASSERT_STRING_EQUAL that also prints what it got, and survives NULL. */
#define ASSERT_STR(actual, expected)                                                                \
	do {                                                                                        \
		const char *got_ = (actual);                                                        \
		if (!got_ || strcmp(got_, (expected)) != 0)                                         \
			fprintf(stderr, "\n  %s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
				got_ ? got_ : "(null)", (expected));                                \
		CU_ASSERT(got_ != NULL && strcmp(got_, (expected)) == 0);                           \
	} while (0)

struct unit_test {
	const char *name;
	CU_TestFunc fn;
};

/* clang-format off */
#define UNIT_TEST(fn) { #fn, fn }
/* clang-format on */
#define UNIT_COUNT(tests) (sizeof(tests) / sizeof((tests)[0]))

static inline int unit_run(const char *suite_name, CU_InitializeFunc setup, CU_CleanupFunc teardown,
			   const struct unit_test *tests, size_t count)
{
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	suite = CU_add_suite(suite_name, setup, teardown);
	if (!suite)
		goto error;
	for (size_t i = 0; i < count; i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto error;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto error;
	failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failures > 0 ? 1 : 0;
error:
	fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return 2;
}

#endif
