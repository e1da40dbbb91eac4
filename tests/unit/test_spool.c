// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for spool.c on a throw-away directory: records come back in order with their sequence numbers,
 * committed records are not replayed after a reopen and uncommitted ones are, one process at a time per
 * directory (a second open is refused while the first holds it, allowed once it is closed), and the CRC-32C
 * check value.
 */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "message.h"
#include "spool.h"
#include "stats.h"

static char directory[] = "/tmp/mqtt2pg-unit-spool.XXXXXX";
static struct stats stats;

static struct spool *open_spool(void)
{
	struct spool_options o = {
		.directory = directory,
		.max_bytes = 1 << 20,
		.segment_bytes = 4096,
		.fsync_interval_ms = 1000,
	};
	return spool_open(&o, &stats);
}

/* A message whose received_us carries n, so identity survives the trip through the file. */
static void append_tagged(struct spool *s, int64_t n)
{
	struct message *m = message_new_readings(1, 2, 1, n);

	m->readings[0].point_id = 3;
	m->readings[0].time_us = n;
	m->readings[0].value = (double)n;
	CU_ASSERT_EQUAL(spool_append(s, m, 0), 0);
	message_free(m);
}

static void empty_directory(void)
{
	DIR *dir = opendir(directory);
	struct dirent *e;
	char path[512];

	while (dir && (e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", directory, e->d_name);
		unlink(path);
	}
	if (dir)
		closedir(dir);
}

static void test_records_come_back_in_order(void)
{
	struct spool *s;

	empty_directory();
	s = open_spool();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int64_t n = 1; n <= 300; n++) /* several 4 KiB segments */
		append_tagged(s, n);
	for (int64_t n = 1; n <= 300; n++) {
		struct message *m = spool_next(s, 100);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL(m->received_us, n);
		CU_ASSERT_EQUAL(m->readings[0].value, (double)n);
		spool_commit(s, m->spool_seq);
		message_free(m);
	}
	CU_ASSERT_PTR_NULL(spool_next(s, 10));
	CU_ASSERT_TRUE(spool_drained(s));
	spool_close(s);
}

static void test_only_uncommitted_records_replay(void)
{
	struct spool *s;
	struct message *m;

	empty_directory();
	s = open_spool();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int64_t n = 1; n <= 10; n++)
		append_tagged(s, n);
	for (int n = 1; n <= 10; n++) {
		m = spool_next(s, 100);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		if (m->received_us <= 4) /* the first four reach the database, the rest do not */
			spool_commit(s, m->spool_seq);
		message_free(m);
	}
	spool_close(s);

	s = open_spool();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int64_t n = 5; n <= 10; n++) {
		m = spool_next(s, 100);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL(m->received_us, n);
		spool_commit(s, m->spool_seq);
		message_free(m);
	}
	CU_ASSERT_PTR_NULL(spool_next(s, 10));
	spool_close(s);
}

/* Two processes on one directory would delete each other's acknowledged records: the second is refused. */
static void test_one_owner_per_directory(void)
{
	struct spool *first, *second;

	empty_directory();
	first = open_spool();
	CU_ASSERT_PTR_NOT_NULL_FATAL(first);
	second = open_spool(); /* a second open file description: flock refuses it as it would another process */
	CU_ASSERT_PTR_NULL(second);
	append_tagged(first, 1); /* the owner is unaffected */
	spool_close(first);
	second = open_spool();
	CU_ASSERT_PTR_NOT_NULL_FATAL(second);
	struct message *m = spool_next(second, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->received_us, 1);
	message_free(m);
	spool_close(second);
}

static void test_crc32c_check_value(void)
{
	CU_ASSERT_EQUAL(spool_crc32c(0, "123456789", 9), 0xE3069283u);
}

#define TEST(fn) {#fn, fn}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		TEST(test_records_come_back_in_order),
		TEST(test_only_uncommitted_records_replay),
		TEST(test_one_owner_per_directory),
		TEST(test_crc32c_check_value),
	};
	CU_pSuite suite;
	unsigned failures;

	if (!mkdtemp(directory))
		return 2;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	suite = CU_add_suite("spool", NULL, NULL);
	if (!suite)
		goto error;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto error;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto error;
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	empty_directory();
	rmdir(directory);
	return failures ? 1 : 0;
error:
	CU_cleanup_registry();
	return 2;
}
