// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for message.c: the spool record format on its own. message_encode then message_decode gives back
 * the same message (readings with points to register, a rejection with every field, a rejection that knows
 * nothing of its source, a record written after other bytes in the same buffer); every truncation of a record,
 * a byte too many, and corrupt counts, kinds and lengths are refused (NULL) without reading past the bytes
 * given (ASan) or allocating what a corrupt count claims. And message_new_reject: the source's text escaped,
 * the payload kept raw and capped.
 */
#include <CUnit/Basic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "reject.h"
#include "unit.h"

#define RECEIVED_US INT64_C(1795257000123456)

static struct message *make_readings(void)
{
	struct message *m = message_new_readings(3, 42, 3, RECEIVED_US);

	m->readings[0] = (struct reading){ .time_us = RECEIVED_US - 1, .value = 1.5, .point_id = 7 };
	m->readings[1] = (struct reading){ .time_us = RECEIVED_US, .value = -0.0, .point_id = 8 };
	m->readings[2] = (struct reading){ .time_us = 0, .value = 1e300, .point_id = 0 };
	m->readings[2].point_id = message_add_new_point(m, "inverter.temp");
	CU_ASSERT_EQUAL(m->readings[2].point_id, -1);
	CU_ASSERT_EQUAL(message_add_new_point(m, "p/ac:l1"), -2);
	return m;
}

/* The payload holds a NUL and bytes that are not UTF-8: kept raw. */
static const unsigned char raw_payload[] = { '{', 0x00, 0xff, 0xc3, 0x28, '}', '\n' };

static struct message *make_rejection(void)
{
	struct reject_source source = { .topic = "solar/acme/INV-1/telemetry",
					.topic_len = 26,
					.tenant = "acme",
					.tenant_len = 4,
					.serial = "INV-1",
					.serial_len = 5,
					.payload = raw_payload,
					.payload_len = sizeof(raw_payload) };
	struct message *m =
		message_new_reject(REJECT_MALFORMED_JSON, "unexpected end", &source, 1024, RECEIVED_US);

	m->tenant_id = 3;
	m->device_id = 42;
	return m;
}

/* a and b are the same message (next and spool_seq aside). */
static void assert_same(const struct message *a, const struct message *b)
{
	CU_ASSERT_EQUAL_FATAL(a->kind, b->kind);
	CU_ASSERT_EQUAL(a->received_us, b->received_us);
	CU_ASSERT_EQUAL(a->tenant_id, b->tenant_id);
	CU_ASSERT_EQUAL(a->device_id, b->device_id);
	CU_ASSERT_EQUAL_FATAL(a->reading_count, b->reading_count);
	for (uint32_t i = 0; i < a->reading_count; i++) {
		CU_ASSERT_EQUAL(a->readings[i].time_us, b->readings[i].time_us);
		CU_ASSERT(memcmp(&a->readings[i].value, &b->readings[i].value, sizeof(double)) == 0);
		CU_ASSERT_EQUAL(a->readings[i].point_id, b->readings[i].point_id);
	}
	CU_ASSERT_EQUAL_FATAL(a->new_point_count, b->new_point_count);
	for (uint32_t i = 0; i < a->new_point_count; i++)
		ASSERT_STR(b->new_points[i], a->new_points[i]);
	if (a->kind != MESSAGE_REJECT)
		return;
	CU_ASSERT_PTR_NOT_NULL_FATAL(b->rejection);
	CU_ASSERT_EQUAL(a->rejection->reason, b->rejection->reason);
	ASSERT_STR(b->rejection->detail, a->rejection->detail);
	if (a->rejection->topic)
		ASSERT_STR(b->rejection->topic, a->rejection->topic);
	else
		CU_ASSERT_PTR_NULL(b->rejection->topic);
	if (a->rejection->tenant_slug)
		ASSERT_STR(b->rejection->tenant_slug, a->rejection->tenant_slug);
	else
		CU_ASSERT_PTR_NULL(b->rejection->tenant_slug);
	if (a->rejection->serial)
		ASSERT_STR(b->rejection->serial, a->rejection->serial);
	else
		CU_ASSERT_PTR_NULL(b->rejection->serial);
	CU_ASSERT_EQUAL_FATAL(a->rejection->payload_len, b->rejection->payload_len);
	CU_ASSERT(a->rejection->payload_len == 0 ||
		  memcmp(a->rejection->payload, b->rejection->payload, a->rejection->payload_len) == 0);
}

/* Encodes m, decodes it from an exact-size copy, compares; returns the record's length. */
static size_t round_trip(const struct message *m)
{
	unsigned char *buf = NULL, *exact;
	size_t cap = 0, len = message_encode(m, &buf, &cap, 0);
	struct message *back;

	exact = malloc(len);
	memcpy(exact, buf, len);
	back = message_decode(exact, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(m, back);
	message_free(back);
	free(exact);
	free(buf);
	return len;
}

static void test_round_trip_readings(void)
{
	struct message *m = make_readings();

	/* kind 1, received 8, tenant 4, device 4, counts 4 + 4, readings 3 x 20, names 4 + 13 and 4 + 7. */
	CU_ASSERT_EQUAL(round_trip(m), 1 + 8 + 4 + 4 + 4 + 4 + 3 * 20 + (4 + 13) + (4 + 7));
	message_free(m);
}

static void test_round_trip_rejection(void)
{
	struct message *m = make_rejection();

	ASSERT_STR(m->rejection->topic, "solar/acme/INV-1/telemetry");
	ASSERT_STR(m->rejection->tenant_slug, "acme");
	ASSERT_STR(m->rejection->serial, "INV-1");
	CU_ASSERT_EQUAL(m->rejection->payload_len, sizeof(raw_payload));
	round_trip(m);
	message_free(m);
}

/* No source (a row the database refused): no topic, tenant, serial or payload; NULL stays NULL. */
static void test_round_trip_rejection_without_source(void)
{
	struct message *m = message_new_reject(REJECT_DATABASE, "check constraint", NULL, 1024, RECEIVED_US);

	CU_ASSERT_PTR_NULL(m->rejection->topic);
	CU_ASSERT_PTR_NULL(m->rejection->tenant_slug);
	CU_ASSERT_PTR_NULL(m->rejection->serial);
	CU_ASSERT_PTR_NULL(m->rejection->payload);
	CU_ASSERT_EQUAL(m->rejection->payload_len, 0);
	ASSERT_STR(m->rejection->detail, "check constraint");
	round_trip(m);
	message_free(m);
}

/* Encoding after other bytes keeps them; the record decodes from its offset. */
static void test_encode_at_offset(void)
{
	struct message *a = make_readings(), *b = make_rejection(), *back;
	unsigned char *buf = NULL;
	size_t cap = 0;
	size_t len_a = message_encode(a, &buf, &cap, 0);
	size_t len_b = message_encode(b, &buf, &cap, len_a);

	CU_ASSERT(cap >= len_a + len_b);
	back = message_decode(buf, len_a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(a, back);
	message_free(back);
	back = message_decode(buf + len_a, len_b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	assert_same(b, back);
	message_free(back);
	/* The two records read as one are not one record. */
	CU_ASSERT_PTR_NULL(message_decode(buf, len_a + len_b));
	free(buf);
	message_free(a);
	message_free(b);
}

/* Every proper prefix of a record, and the record with a byte more, is refused. */
static void expect_truncations_refused(const struct message *m)
{
	unsigned char *buf = NULL, *longer;
	size_t cap = 0, len = message_encode(m, &buf, &cap, 0);

	for (size_t n = 0; n < len; n++) {
		unsigned char *exact = malloc(n ? n : 1);
		struct message *back;

		memcpy(exact, buf, n);
		back = message_decode(exact, n);
		if (back)
			fprintf(stderr, "\n  a record cut to %zu of %zu bytes decoded\n", n, len);
		CU_ASSERT_PTR_NULL(back);
		message_free(back);
		free(exact);
	}
	longer = calloc(1, len + 1);
	memcpy(longer, buf, len);
	CU_ASSERT_PTR_NULL(message_decode(longer, len + 1));
	free(longer);
	free(buf);
}

static void test_truncated_records_refused(void)
{
	struct message *a = make_readings(), *b = make_rejection();

	expect_truncations_refused(a);
	expect_truncations_refused(b);
	message_free(a);
	message_free(b);
}

/* Offsets of the header fields (see message_encode). */
enum {
	AT_KIND = 0,
	AT_READING_COUNT = 17,
	AT_NEW_POINT_COUNT = 21,
	AT_FIRST_READING = 25
};

static void put_u32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void test_corrupt_records_refused(void)
{
	struct message *m = make_readings(), *r = make_rejection();
	unsigned char *buf = NULL, *rbuf = NULL;
	size_t cap = 0, rcap = 0, len = message_encode(m, &buf, &cap, 0),
	       rlen = message_encode(r, &rbuf, &rcap, 0);
	unsigned char *copy = malloc(len > rlen ? len : rlen);
	size_t name_at = AT_FIRST_READING + 3 * 20;

	/* An unknown kind. */
	memcpy(copy, buf, len);
	copy[AT_KIND] = 7;
	CU_ASSERT_PTR_NULL(message_decode(copy, len));
	/* Counts the bytes cannot hold: refused before anything that size is allocated. */
	memcpy(copy, buf, len);
	put_u32(copy + AT_READING_COUNT, UINT32_MAX);
	CU_ASSERT_PTR_NULL(message_decode(copy, len));
	memcpy(copy, buf, len);
	put_u32(copy + AT_NEW_POINT_COUNT, UINT32_MAX);
	CU_ASSERT_PTR_NULL(message_decode(copy, len));
	/* A count one too high or one too low. */
	memcpy(copy, buf, len);
	put_u32(copy + AT_READING_COUNT, 4);
	CU_ASSERT_PTR_NULL(message_decode(copy, len));
	memcpy(copy, buf, len);
	put_u32(copy + AT_NEW_POINT_COUNT, 1);
	CU_ASSERT_PTR_NULL(message_decode(copy, len));
	/* A point name longer than the record, and a NULL one (names are never NULL). */
	memcpy(copy, buf, len);
	put_u32(copy + name_at, 1000);
	CU_ASSERT_PTR_NULL(message_decode(copy, len));
	memcpy(copy, buf, len);
	put_u32(copy + name_at, UINT32_MAX);
	CU_ASSERT_PTR_NULL(message_decode(copy, len));
	/* A rejection's payload length past the end. */
	memcpy(copy, rbuf, rlen);
	put_u32(copy + rlen - sizeof(raw_payload) - 4, (uint32_t)sizeof(raw_payload) + 1);
	CU_ASSERT_PTR_NULL(message_decode(copy, rlen));
	free(copy);
	free(buf);
	free(rbuf);
	message_free(m);
	message_free(r);
}

/* Device text is escaped (it could paint a log or a terminal), the payload capped but kept raw. */
static void test_new_reject_escapes_and_caps(void)
{
	static const char topic[] = "solar/ac\x1bme/INV\n1";
	struct reject_source source = { .topic = topic,
					.topic_len = sizeof(topic) - 1,
					.tenant = "ac\x1bme",
					.tenant_len = 5,
					.serial = "INV-1 and more",
					.serial_len = 5, /* a slice: only its length counts */
					.payload = raw_payload,
					.payload_len = sizeof(raw_payload) };
	struct message *m = message_new_reject(REJECT_WRONG_TYPE, NULL, &source, 3, RECEIVED_US);

	CU_ASSERT_EQUAL(m->kind, MESSAGE_REJECT);
	CU_ASSERT_EQUAL(m->received_us, RECEIVED_US);
	CU_ASSERT_EQUAL(m->rejection->reason, REJECT_WRONG_TYPE);
	ASSERT_STR(m->rejection->detail, "");
	CU_ASSERT_PTR_NULL(strchr(m->rejection->topic, '\x1b'));
	CU_ASSERT_PTR_NULL(strchr(m->rejection->topic, '\n'));
	CU_ASSERT_PTR_NULL(strchr(m->rejection->tenant_slug, '\x1b'));
	ASSERT_STR(m->rejection->serial, "INV-1");
	CU_ASSERT_EQUAL_FATAL(m->rejection->payload_len, 3);
	CU_ASSERT(memcmp(m->rejection->payload, raw_payload, 3) == 0);
	message_free(m);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_round_trip_readings),
		UNIT_TEST(test_round_trip_rejection),
		UNIT_TEST(test_round_trip_rejection_without_source),
		UNIT_TEST(test_encode_at_offset),
		UNIT_TEST(test_truncated_records_refused),
		UNIT_TEST(test_corrupt_records_refused),
		UNIT_TEST(test_new_reject_escapes_and_caps),
	};

	return unit_run("message", NULL, NULL, tests, UNIT_COUNT(tests));
}
