// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_decode: the JSON envelope decoder (decode.c) on hostile bytes, plus the route match in front of it and
 * the rejection record behind it, as ingest.c chains them.
 *
 * Input: PAYLOAD, or TOPIC NUL PAYLOAD (a NUL within the first 512 bytes splits them; MQTT topics never hold
 * NUL). Topic and payload are exact-size copies, never NUL-terminated, as Paho hands them over.
 *  - The payload is decoded against a fixed match (tenant "acme", serial "INV-0001"); when the topic matches
 *    solar/{tenant}/{serial}/telemetry it is decoded again with the topic's own match, reusing the output.
 *  - Every failure carries a reason the decoder may give and a NUL-terminated detail; empty, oversized and
 *    non-UTF-8 payloads get their own reasons (checked with the independent UTF-8 reader of fuzz_util.h), and
 *    a \u0000 escape counts as a NUL byte: never accepted (it would cut names and serials short).
 *  - An ignored message (1) has no sample, and says which values it skipped (null, boolean, ignored point).
 *  - Every success (0) has at least one sample, each with a point name of 1..64 characters of the README's
 *    alphabet, a finite value and a time in years 1..9999 (or the receive time).
 *  - Decoding is deterministic: the same input decodes to the same samples twice.
 *  - The rejection record built from the failure (message_new_reject, as ingest.c does) holds printable UTF-8
 *    only, whatever the topic, tenant, serial and detail contained.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload/decode.h"
#include "fuzz_util.h"
#include "message.h"
#include "reject.h"
#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BYTES    4096
#define RECEIVED_US  INT64_C(1795000000000000)
#define MIN_US	     (INT64_C(-62135596800) * 1000000)
#define MAX_US	     (INT64_C(253402300799) * 1000000 + 999999)
#define REJECT_BYTES 256

static bool reason_from_decoder(enum reject_reason r)
{
	switch (r) {
	case REJECT_EMPTY_PAYLOAD:
	case REJECT_OVERSIZED_PAYLOAD:
	case REJECT_INVALID_UTF8:
	case REJECT_MALFORMED_JSON:
	case REJECT_WRONG_TYPE:
	case REJECT_BAD_TIMESTAMP:
	case REJECT_SERIAL_MISMATCH:
	case REJECT_NON_FINITE_VALUE:
	case REJECT_NO_MEASUREMENTS:
	case REJECT_INVALID_POINT_NAME:
		return true;
	default:
		return false;
	}
}


/* True when payload holds the JSON escape \u0000: "u0000" after an odd run of backslashes (an even run is
 * escaped backslashes followed by plain text). cJSON would decode it to a NUL that cuts C strings short. */
static bool has_escaped_nul(const char *payload, size_t len)
{
	for (size_t i = 0; i + 5 <= len; i++) {
		size_t run = 0;

		if (memcmp(payload + i, "u0000", 5) != 0)
			continue;
		while (run < i && payload[i - 1 - run] == '\\')
			run++;
		if (run % 2 == 1)
			return true;
	}
	return false;
}

static bool printable(const char *s)
{
	return s == NULL || ref_is_printable_utf8(s, strlen(s));
}

/* Decodes and checks every property of one result. Returns rc; out and err hold the result. */
static int decode_checked(const char *payload, size_t len, const struct route_match *m,
			  struct decoded_message *out, struct decode_error *err)
{
	int rc;

	memset(err, 0, sizeof(*err));
	memset(err->detail, 'D', sizeof(err->detail));
	rc = decode_json(payload, len, m, RECEIVED_US, MAX_BYTES, out, err);
	FUZZ_CHECK(rc == 0 || rc == 1 || rc == -1, "decode_json returned %d", rc);
	if (rc < 0) {
		FUZZ_CHECK(reason_from_decoder(err->reason), "reason %d (%s) is not a decoder's",
			   (int)err->reason, reject_reason_name(err->reason));
		FUZZ_CHECK(memchr(err->detail, '\0', sizeof(err->detail)) != NULL,
			   "detail not NUL-terminated");
		if (len == 0)
			FUZZ_CHECK(err->reason == REJECT_EMPTY_PAYLOAD, "empty payload rejected as %s",
				   reject_reason_name(err->reason));
		else if (len > MAX_BYTES)
			FUZZ_CHECK(err->reason == REJECT_OVERSIZED_PAYLOAD,
				   "oversized payload rejected as %s", reject_reason_name(err->reason));
		else if (!ref_is_utf8(payload, len))
			FUZZ_CHECK(err->reason == REJECT_INVALID_UTF8, "non-UTF-8 payload rejected as %s",
				   reject_reason_name(err->reason));
		else if (err->reason == REJECT_INVALID_UTF8)
			FUZZ_CHECK(has_escaped_nul(payload, len),
				   "UTF-8 payload without NUL rejected as invalid_utf8");
		return rc;
	}
	FUZZ_CHECK(len > 0 && len <= MAX_BYTES && ref_is_utf8(payload, len),
		   "accepted a payload that is empty, oversized or not UTF-8");
	FUZZ_CHECK(!has_escaped_nul(payload, len), "accepted a payload holding a \\u0000 escape");
	if (rc == 1) {
		/* Ignored: every value was there but skipped (null, boolean, an ignored point); no sample. */
		bool skipped = false;
		for (int k = 0; k < SKIP_REASON_COUNT; k++)
			skipped = skipped || out->skipped[k] > 0;
		FUZZ_CHECK(out->count == 0 && out->ignored == IGNORE_SKIPPED && skipped,
			   "ignored with %zu samples, reason %d, nothing skipped: %d", out->count,
			   (int)out->ignored, !skipped);
		return rc;
	}
	FUZZ_CHECK(out->count > 0 && out->count <= out->capacity, "accepted with %zu samples (capacity %zu)",
		   out->count, out->capacity);
	for (size_t i = 0; i < out->count; i++) {
		const struct sample *s = &out->samples[i];
		FUZZ_CHECK(fuzz_point_name_ok(s->point), "sample %zu has point name \"%.65s\"", i, s->point);
		FUZZ_CHECK(isfinite(s->value), "sample %zu (%s) is not finite", i, s->point);
		FUZZ_CHECK(s->time_us == RECEIVED_US || (s->time_us >= MIN_US && s->time_us <= MAX_US),
			   "sample %zu time %lld out of range", i, (long long)s->time_us);
	}
	return rc;
}

static void check_same(int rc_a, const struct decoded_message *a, const struct decode_error *ea, int rc_b,
		       const struct decoded_message *b, const struct decode_error *eb)
{
	FUZZ_CHECK(rc_a == rc_b, "second decode returned %d, first %d", rc_b, rc_a);
	if (rc_a < 0) {
		FUZZ_CHECK(ea->reason == eb->reason && strcmp(ea->detail, eb->detail) == 0,
			   "second decode failed differently");
		return;
	}
	FUZZ_CHECK(a->count == b->count, "second decode has %zu samples, first %zu", b->count, a->count);
	for (size_t i = 0; i < a->count; i++)
		FUZZ_CHECK(strcmp(a->samples[i].point, b->samples[i].point) == 0 &&
				   memcmp(&a->samples[i].value, &b->samples[i].value, sizeof(double)) == 0 &&
				   a->samples[i].time_us == b->samples[i].time_us,
			   "sample %zu differs between two decodes", i);
}

/* The rejection record ingest.c would build: every string in it printable, the payload kept raw and capped. */
static void check_rejection(const struct decode_error *err, const char *topic, size_t topic_len,
			    const struct route_match *m, const char *payload, size_t len)
{
	struct reject_source source = { .topic = topic,
					.topic_len = topic_len,
					.tenant = m ? m->tenant.ptr : NULL,
					.tenant_len = m ? m->tenant.len : 0,
					.serial = m ? m->serial.ptr : NULL,
					.serial_len = m ? m->serial.len : 0,
					.payload = payload,
					.payload_len = len };
	struct message *msg =
		message_new_reject(err->reason, err->detail, &source, REJECT_BYTES, RECEIVED_US);
	const struct rejection *r = msg->rejection;
	size_t kept = len < REJECT_BYTES ? len : REJECT_BYTES;

	FUZZ_CHECK(msg->kind == MESSAGE_REJECT && r && r->reason == err->reason,
		   "rejection record lost its reason");
	FUZZ_CHECK(printable(r->detail) && printable(r->topic) && printable(r->tenant_slug) &&
			   printable(r->serial),
		   "rejection record holds non-printable text");
	FUZZ_CHECK(r->payload_len == kept && (kept == 0 || memcmp(r->payload, payload, kept) == 0),
		   "rejection record payload is not the first %zu raw bytes", kept);
	message_free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char fixed_topic[] = "solar/acme/INV-0001/telemetry";
	static struct route standard;
	static bool ready;
	const uint8_t *nul = memchr(data, 0, size < 512 ? size : 512);
	size_t topic_len = nul ? (size_t)(nul - data) : 0;
	size_t len = nul ? size - topic_len - 1 : size;
	char *topic = fuzz_copy(data, topic_len);
	char *payload = fuzz_copy(nul ? nul + 1 : data, len);
	char *fixed = fuzz_copy((const uint8_t *)fixed_topic, sizeof(fixed_topic) - 1);
	struct decoded_message a = { 0 }, b = { 0 };
	struct decode_error ea, eb;
	struct route_match fixed_match, topic_match;
	int rc_a, rc_b;

	if (!ready) {
		char err[128];
		if (!route_parse("solar/{tenant}/{serial}/telemetry", ROUTE_FORMAT_JSON, &standard, err,
				 sizeof(err)))
			abort();
		ready = true;
	}
	/* The fixed match: slices into an exact-size topic buffer, so the serial is not NUL-terminated either. */
	FUZZ_CHECK(route_match(&standard, fixed, sizeof(fixed_topic) - 1, &fixed_match),
		   "fixed topic must match");

	rc_a = decode_checked(payload, len, &fixed_match, &a, &ea);
	rc_b = decode_checked(payload, len, &fixed_match, &b, &eb);
	check_same(rc_a, &a, &ea, rc_b, &b, &eb);
	if (rc_a < 0)
		check_rejection(&ea, fixed, sizeof(fixed_topic) - 1, &fixed_match, payload, len);

	if (nul) {
		if (route_match(&standard, topic, topic_len, &topic_match)) {
			/* Reuses a's buffer, as ingest.c reuses one decoded_message for every message. */
			if (decode_checked(payload, len, &topic_match, &a, &ea) < 0)
				check_rejection(&ea, topic, topic_len, &topic_match, payload, len);
		} else {
			struct decode_error no_route = { REJECT_NO_ROUTE,
							 "topic matches no configured route" };
			check_rejection(&no_route, topic, topic_len, NULL, payload, len);
		}
	}

	decode_clear(&a);
	decode_clear(&b);
	free(fixed);
	free(payload);
	free(topic);
	return 0;
}
