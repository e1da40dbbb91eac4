// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for spool.c's read path (the dispatcher's side): records read back in order and intact across
 * segment boundaries and read-ahead windows, records larger than a window, a reader that is caught up
 * (waits, then takes what arrives), commits that let segments go, and records replayed after a reopen;
 * one process per directory (a second open is refused while the first holds it, allowed once it is
 * closed), and the CRC-32C check value; and the faults of issue 13: an empty segment's name not reused
 * after restarts, a removed directory rebuilt from the open files, committed segments deleted although the
 * checkpoint cannot be written, and max_bytes below two segments refused.
 */
#include <CUnit/Basic.h>
#include <errno.h>
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
		struct reject_source source = { .topic = "solar/t/x/telemetry",
						.topic_len = 19,
						.tenant = "t",
						.tenant_len = 1,
						.serial = "x",
						.serial_len = 1,
						.payload = payload,
						.payload_len = n };
		m = message_new_reject(REJECT_MALFORMED_JSON, "detail", &source, n, (int64_t)i);
		free(payload);
		return m;
	}
	struct message *m = message_new_readings(1, (int32_t)i, 1 + i % 8, (int64_t)i);
	for (uint32_t r = 0; r < m->reading_count; r++)
		m->readings[r] = (struct reading){ .time_us = (int64_t)i * 10 + r,
						   .value = i + r / 8.0,
						   .point_id = (int32_t)r };
	return m;
}

static bool same(const struct message *a, const struct message *b)
{
	if (a->kind != b->kind || a->received_us != b->received_us || a->reading_count != b->reading_count ||
	    a->device_id != b->device_id)
		return false;
	for (uint32_t r = 0; r < a->reading_count; r++)
		if (a->readings[r].time_us != b->readings[r].time_us ||
		    a->readings[r].value != b->readings[r].value ||
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
	struct spool_options o = { .directory = directory,
				   .max_bytes = 1ull << 30,
				   .segment_bytes = 256 * 1024,
				   .fsync_interval_ms = 1000 };
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

enum {
	COUNT = 3000
};

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
	second =
		open_spool(); /* a second open file description: flock refuses it as it would another process */
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

/* The parts of one MQTT message go in together or not at all: consecutive records, or none when full. */
static void test_append_all_is_all_or_none(void)
{
	char own[96];
	struct spool_options o = {
		.directory = own, .max_bytes = 4096, .segment_bytes = 1024, .fsync_interval_ms = 1000
	};
	struct message *parts[3] = { make(1), make(2), make(3) };
	struct message *big[40];
	struct spool *s;
	size_t n = 0;

	snprintf(own, sizeof(own), "%s/all-or-none", directory); /* a spool of its own: empty, 4 KiB */
	s = spool_open(&o, &stats);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(spool_append_all(s, (const struct message *const *)parts, 3, 0), 0);
	for (int i = 0; i < 3; i++) {
		struct message *got = spool_next(s, 1000);
		CU_ASSERT(got && same(got, parts[i]) && got->spool_seq == (uint64_t)i + 1);
		message_free(got);
	}
	/* 40 parts do not fit in what is left of 4 KiB: refused whole, nothing appended. */
	for (size_t i = 0; i < 40; i++)
		big[i] = make(10 + (uint32_t)i % 8);
	CU_ASSERT_EQUAL(spool_append_all(s, (const struct message *const *)big, 40, 10), -ETIMEDOUT);
	CU_ASSERT_PTR_NULL(spool_next(s, 10));
	CU_ASSERT_TRUE(spool_drained(s));
	/* Committed, the first three make room again; a part that fits now goes in as record 4. */
	for (uint64_t seq = 1; seq <= 3; seq++)
		spool_commit(s, seq);
	CU_ASSERT_EQUAL(spool_append_all(s, (const struct message *const *)big, 1, 0), 0);
	for (struct message *got; (got = spool_next(s, 100)) != NULL; n++) {
		CU_ASSERT_EQUAL(got->spool_seq, 4);
		spool_commit(s, got->spool_seq);
		message_free(got);
	}
	CU_ASSERT_EQUAL(n, 1);
	for (size_t i = 0; i < 40; i++)
		message_free(big[i]);
	for (int i = 0; i < 3; i++)
		message_free(parts[i]);
	spool_close(s);
}

/* Appends messages [from, to) (not read). */
static void append_range(struct spool *s, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		struct message *m = make(i);
		CU_ASSERT_EQUAL(spool_append(s, m, 0), 0);
		message_free(m);
	}
}

/* Reads what the spool replays, committing each; returns how many. */
static size_t replay_count(struct spool *s)
{
	size_t n = 0;

	for (struct message *got; (got = spool_next(s, 200)) != NULL; n++) {
		spool_commit(s, got->spool_seq);
		message_free(got);
	}
	return n;
}

/* A spool of its own below the suite's directory. */
static struct spool *open_own(char *own, size_t cap, const char *name, uint64_t max_bytes,
			      uint64_t segment_bytes)
{
	struct spool_options o = { .directory = own,
				   .max_bytes = max_bytes,
				   .segment_bytes = segment_bytes,
				   .fsync_interval_ms = 1000 };

	snprintf(own, cap, "%s/%s", directory, name);
	return spool_open(&o, &stats);
}

/*
 * Restarts without traffic leave an empty last segment named by the next sequence. The next start must not
 * create that name again: two entries for one file, and deleting the older one unlinked the file being
 * written, so its uncommitted records vanished at the next restart.
 */
static void test_empty_segment_name_not_reused(void)
{
	char own[96];
	struct spool *s = open_own(own, sizeof(own), "reuse", 1ull << 30, 256 * 1024);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	spool_close(s);
	s = open_own(own, sizeof(own), "reuse", 1ull << 30, 256 * 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	spool_close(s);
	s = open_own(own, sizeof(own), "reuse", 1ull << 30, 256 * 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	append_range(s, 0, 5);
	CU_ASSERT_EQUAL(replay_count(s), 5);
	spool_tick(s, 1000000); /* the checkpoint moves: committed segments are deleted */
	append_range(s, 5, 10); /* not committed */
	spool_close(s);
	s = open_own(own, sizeof(own), "reuse", 1ull << 30, 256 * 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(replay_count(s), 5);
	spool_close(s);
}

/* The directory removed at run time: the next tick rebuilds it from the open files; nothing is lost. */
static void test_removed_directory_rebuilt(void)
{
	char own[96], cmd[160];
	struct spool *s = open_own(own, sizeof(own), "removed", 1ull << 30, 64 * 1024);
	struct stat st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	append_range(s, 0, 300); /* several segments */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", own);
	CU_ASSERT_EQUAL(system(cmd), 0);
	spool_tick(s, 1000000);
	CU_ASSERT_EQUAL(stat(own, &st), 0);
	CU_ASSERT_EQUAL(atomic_load(&stats.spool_state), STATS_SPOOL_OK);
	CU_ASSERT(atomic_load(&stats.spool_problems[STATS_SPOOL_MISSING]) >= 1);
	append_range(s, 300, 310);
	/* Removed again, noticed by the next append (the file it writes to is unlinked) before any tick. */
	CU_ASSERT_EQUAL(system(cmd), 0);
	append_range(s, 310, 320);
	spool_close(s);
	s = open_own(own, sizeof(own), "removed", 1ull << 30, 64 * 1024);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(replay_count(s), 320);
	spool_close(s);
}

/* A checkpoint that cannot be written (here: its temporary name is a directory) does not keep segments. */
static void test_committed_segments_deleted_without_checkpoint(void)
{
	char own[96], blocker[128];
	struct spool *s = open_own(own, sizeof(own), "nocheckpoint", 1ull << 30, 64 * 1024);
	uint64_t before;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	snprintf(blocker, sizeof(blocker), "%s/checkpoint.tmp", own);
	CU_ASSERT_EQUAL(mkdir(blocker, 0700), 0);
	append_range(s, 0, 300);
	spool_tick(s, 1000000);
	before = atomic_load(&stats.spool_bytes);
	CU_ASSERT_EQUAL(replay_count(s), 300);
	spool_tick(s, 2000000);
	CU_ASSERT(atomic_load(&stats.spool_bytes) < before / 2);
	spool_close(s);
	rmdir(blocker);
}

/* Less than two segments of room could never free a byte: refused. */
static void test_max_bytes_below_two_segments_refused(void)
{
	char own[96];
	struct spool *s = open_own(own, sizeof(own), "small", 1024 * 1024, 1024 * 1024);

	CU_ASSERT_PTR_NULL(s);
	spool_close(s);
	s = open_own(own, sizeof(own), "small", 2 * 1024 * 1024, 1024 * 1024);
	CU_ASSERT_PTR_NOT_NULL(s);
	spool_close(s);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_round_trip_across_segments_and_windows),
		UNIT_TEST(test_uncommitted_records_replayed_after_reopen),
		UNIT_TEST(test_one_owner_per_directory),
		UNIT_TEST(test_append_all_is_all_or_none),
		UNIT_TEST(test_empty_segment_name_not_reused),
		UNIT_TEST(test_removed_directory_rebuilt),
		UNIT_TEST(test_committed_segments_deleted_without_checkpoint),
		UNIT_TEST(test_max_bytes_below_two_segments_refused),
		UNIT_TEST(test_crc32c_check_value),
	};

	return unit_run("spool", setup, teardown, tests, UNIT_COUNT(tests));
}
