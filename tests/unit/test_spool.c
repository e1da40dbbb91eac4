// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for spool.c's read path (the dispatcher's side): records read back in order and intact across
 * segment boundaries and read-ahead windows, records larger than a window, a reader that is caught up
 * (waits, then takes what arrives), commits that let segments go, and records replayed after a reopen;
 * one process per directory (a second open is refused while the first holds it, allowed once it is
 * closed), and the CRC-32C check value.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "message.h"
#include "spool.h"
#include "stats.h"
#include "unit.h"

static struct stats stats;
static char directory[64];

/* Message i: readings or (every 97th) a rejection with a payload larger than a read-ahead window. */
static struct message *make(uint32_t i)
{
	if (i % 97 == 5) {
		size_t n = 70000 + i;
		unsigned char *payload = malloc(n);
		struct message *m;

		for (size_t k = 0; k < n; k++)
			payload[k] = (unsigned char)(k * 7 + i);
		m = message_new_reject(REJECT_MALFORMED_JSON, "detail", "solar/t/x/telemetry", 19, "t", 1, "x", 1,
				       payload, n, n, (int64_t)i);
		free(payload);
		return m;
	}
	struct message *m = message_new_readings(1, (int32_t)i, 1 + i % 8, (int64_t)i);
	for (uint32_t r = 0; r < m->reading_count; r++)
		m->readings[r] = (struct reading){.time_us = (int64_t)i * 10 + r, .value = i + r / 8.0, .point_id = (int32_t)r};
	return m;
}

static bool same(const struct message *a, const struct message *b)
{
	if (a->kind != b->kind || a->received_us != b->received_us || a->reading_count != b->reading_count ||
	    a->device_id != b->device_id)
		return false;
	for (uint32_t r = 0; r < a->reading_count; r++)
		if (a->readings[r].time_us != b->readings[r].time_us || a->readings[r].value != b->readings[r].value ||
		    a->readings[r].point_id != b->readings[r].point_id)
			return false;
	if (a->kind == MESSAGE_REJECT)
		return a->rejection->payload_len == b->rejection->payload_len &&
		       memcmp(a->rejection->payload, b->rejection->payload, a->rejection->payload_len) == 0 &&
		       strcmp(a->rejection->topic, b->rejection->topic) == 0;
	return true;
}

static struct spool *open_spool(void)
{
	struct spool_options o = {.directory = directory, .max_bytes = 1ull << 30, .segment_bytes = 256 * 1024,
				  .fsync_interval_ms = 1000};
	return spool_open(&o, &stats);
}

static int setup(void)
{
	snprintf(directory, sizeof(directory), "/tmp/test_spool.XXXXXX");
	return mkdtemp(directory) ? 0 : -1;
}

static int teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", directory);
	return system(cmd) == 0 ? 0 : -1;
}

enum { COUNT = 3000 };

/* Appends [from, to), reads them back in order, compares; returns how many differed or were missing. */
static size_t append_and_read(struct spool *s, uint32_t from, uint32_t to, uint64_t *seqs)
{
	size_t bad = 0;

	for (uint32_t i = from; i < to; i++) {
		struct message *m = make(i);
		CU_ASSERT_EQUAL(spool_append(s, m, 0), 0);
		message_free(m);
	}
	for (uint32_t i = from; i < to; i++) {
		struct message *got = spool_next(s, 1000), *want = make(i);
		if (!got || !same(got, want))
			bad++;
		else
			seqs[i] = got->spool_seq;
		message_free(got);
		message_free(want);
	}
	return bad;
}

static void test_round_trip_across_segments_and_windows(void)
{
	static uint64_t seqs[COUNT];
	struct spool *s = open_spool();

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* In one go (the reader far behind: whole windows), then a record at a time (the reader caught up). */
	CU_ASSERT_EQUAL(append_and_read(s, 0, COUNT / 2, seqs), 0);
	for (uint32_t i = COUNT / 2; i < COUNT; i++)
		CU_ASSERT_EQUAL(append_and_read(s, i, i + 1, seqs), 0);
	CU_ASSERT_TRUE(spool_drained(s));
	CU_ASSERT_PTR_NULL(spool_next(s, 10)); /* nothing more: times out */
	for (uint32_t i = 0; i < COUNT; i++)
		CU_ASSERT_EQUAL(seqs[i], (uint64_t)i + 1);
	/* Committing everything lets every segment but the one appended to go. */
	for (uint32_t i = 0; i < COUNT; i++)
		spool_commit(s, seqs[i]);
	spool_tick(s, 1000000);
	CU_ASSERT(atomic_load(&stats.spool_bytes) <= 256 * 1024 + 80000);
	CU_ASSERT_EQUAL(atomic_load(&stats.spool_backlog), 0);
	/* Reading goes on in the new segments after the deletion. */
	CU_ASSERT_EQUAL(append_and_read(s, 0, 500, seqs), 0);
	for (uint32_t i = 0; i < 500; i++)
		spool_commit(s, seqs[i]);
	spool_close(s);
}

static void test_uncommitted_records_replayed_after_reopen(void)
{
	static uint64_t seqs[COUNT];
	struct spool *s = open_spool();
	size_t bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (uint32_t i = 0; i < 1000; i++) {
		struct message *m = make(i);
		CU_ASSERT_EQUAL(spool_append(s, m, 0), 0);
		message_free(m);
	}
	spool_close(s);
	s = open_spool();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (uint32_t i = 0; i < 1000; i++) {
		struct message *got = spool_next(s, 1000), *want = make(i);
		bad += !got || !same(got, want);
		if (got)
			seqs[i] = got->spool_seq;
		message_free(got);
		message_free(want);
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (uint32_t i = 0; i < 1000; i++)
		spool_commit(s, seqs[i]);
	spool_close(s);
}

/* Two processes on one directory would delete each other's acknowledged records: the second is refused. */
static void test_one_owner_per_directory(void)
{
	struct spool *first = open_spool(), *second;
	struct message *m = make(1), *got;

	CU_ASSERT_PTR_NOT_NULL_FATAL(first);
	second = open_spool(); /* a second open file description: flock refuses it as it would another process */
	CU_ASSERT_PTR_NULL(second);
	CU_ASSERT_EQUAL(spool_append(first, m, 0), 0); /* the owner is unaffected */
	spool_close(first);
	second = open_spool();
	CU_ASSERT_PTR_NOT_NULL_FATAL(second);
	got = spool_next(second, 1000);
	CU_ASSERT(got && same(got, m));
	if (got)
		spool_commit(second, got->spool_seq);
	message_free(got);
	message_free(m);
	spool_close(second);
}

static void test_crc32c_check_value(void)
{
	CU_ASSERT_EQUAL(spool_crc32c(0, "123456789", 9), 0xE3069283u);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_round_trip_across_segments_and_windows),
		UNIT_TEST(test_uncommitted_records_replayed_after_reopen),
		UNIT_TEST(test_one_owner_per_directory),
		UNIT_TEST(test_crc32c_check_value),
	};

	return unit_run("spool", setup, teardown, tests, UNIT_COUNT(tests));
}
