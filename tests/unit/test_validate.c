// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for validate.c: decoded samples against a registry built by hand (three tenants, one serial in
 * two of them, enabled and
 * disabled devices, points with and without bounds). Covers the identity checks in their documented order,
 * the timestamp window and value bounds at their exact edges, the three unknown-point policies, and the
 * accepted message's identity and readings.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "payload/decode.h"
#include "message.h"
#include "registry.h"
#include "reject.h"
#include "route.h"
#include "validate.h"
#include "unit.h"

#define US	    INT64_C(1000000)
/* The bridge's clock in these tests: 2026-11-21T10:30:00Z. */
#define NOW_US	    INT64_C(1795257000000000)
#define RECEIVED_US (NOW_US - 1234)

enum {
	TENANT_ACME = 1,
	TENANT_GLOBEX = 2,
	TENANT_UMBRELLA = 3,  /* no devices */
	DEVICE_A1 = 10,	      /* acme, enabled, four points */
	DEVICE_A2 = 11,	      /* acme, disabled */
	DEVICE_B1 = 20,	      /* globex, enabled, one point */
	POINT_A1_POWER = 100, /* [0, 10000] */
	POINT_A1_TEMP = 101,  /* unbounded */
	POINT_A1_SOC = 102,   /* >= 0 */
	POINT_A1_DELTA = 103, /* <= 5 */
	POINT_A2_POWER = 110,
	POINT_B1_POWER = 200,
	DEVICE_A_SHARED = 12, /* acme's SHARED-1: a serial globex has too (sql/013) */
	DEVICE_B_SHARED = 21, /* globex's SHARED-1 */
	POINT_A_SHARED_POWER = 120,
	POINT_B_SHARED_POWER = 210,
};

static struct registry *reg;

static int build_registry(void)
{
	bool ok = true;

	reg = registry_new();
	ok = ok && registry_add_tenant(reg, TENANT_ACME, "acme");
	ok = ok && registry_add_tenant(reg, TENANT_GLOBEX, "globex");
	ok = ok && registry_add_device(reg, DEVICE_A1, TENANT_ACME, "INV-A1", true);
	ok = ok && registry_add_device(reg, DEVICE_A2, TENANT_ACME, "INV-A2", false);
	ok = ok && registry_add_device(reg, DEVICE_B1, TENANT_GLOBEX, "INV-B1", true);
	ok = ok && registry_add_tenant(reg, TENANT_UMBRELLA, "umbrella");
	ok = ok && registry_add_device(reg, DEVICE_A_SHARED, TENANT_ACME, "SHARED-1", true);
	ok = ok && registry_add_device(reg, DEVICE_B_SHARED, TENANT_GLOBEX, "SHARED-1", true);
	ok = ok &&
	     registry_add_point(reg, POINT_A_SHARED_POWER, DEVICE_A_SHARED, "power", true, 0.0, true, 100.0);
	ok = ok &&
	     registry_add_point(reg, POINT_B_SHARED_POWER, DEVICE_B_SHARED, "power", false, 0.0, false, 0.0);
	/* Issue 15: names a topic may use for a device besides its serial, per tenant and scope. */
	ok = ok && registry_add_alias(reg, TENANT_ACME, "",
				      "Balkon_S\xc3\xbc"
				      "d",
				      DEVICE_A1);
	ok = ok && registry_add_alias(reg, TENANT_ACME, "site-b", "inverter_1", DEVICE_A2);
	ok = ok && registry_add_alias(reg, TENANT_GLOBEX, "", "inverter_1", DEVICE_B1);
	ok = ok &&
	     !registry_add_alias(reg, TENANT_GLOBEX, "", "stolen", DEVICE_A1); /* another tenant's device */
	ok = ok && registry_add_point(reg, POINT_A1_POWER, DEVICE_A1, "power", true, 0.0, true, 10000.0);
	ok = ok && registry_add_point(reg, POINT_A1_TEMP, DEVICE_A1, "temp", false, 0.0, false, 0.0);
	ok = ok && registry_add_point(reg, POINT_A1_SOC, DEVICE_A1, "soc", true, 0.0, false, 0.0);
	ok = ok && registry_add_point(reg, POINT_A1_DELTA, DEVICE_A1, "delta", false, 0.0, true, 5.0);
	ok = ok && registry_add_point(reg, POINT_A2_POWER, DEVICE_A2, "power", false, 0.0, false, 0.0);
	ok = ok && registry_add_point(reg, POINT_B1_POWER, DEVICE_B1, "power", false, 0.0, false, 0.0);
	return ok ? 0 : -1;
}

static int free_registry(void)
{
	registry_unref(reg);
	reg = NULL;
	return 0;
}

static struct config_validation policy(enum unknown_point_policy unknown)
{
	return (struct config_validation){
		.max_payload_bytes = 65536,
		.max_future_skew = 300,
		.max_age = 3600,
		.unknown_points = unknown,
		.max_points_per_device = 6,
		.reject_payload_bytes = 1024,
	};
}

static struct route_match topic(const char *tenant, const char *serial)
{
	return (struct route_match){ .tenant = { tenant, strlen(tenant) },
				     .serial = { serial, strlen(serial) } };
}

static struct sample sample(const char *point, double value, int64_t time_us)
{
	struct sample s = { .value = value, .time_us = time_us };

	snprintf(s.point, sizeof(s.point), "%s", point);
	return s;
}

/* Runs validate_message on count samples; the caller checks and frees result->message. */
static int run(const struct config_validation *pol, struct route_match m, struct sample *samples,
	       size_t count, struct validate_result *result, struct decode_error *err)
{
	struct decoded_message decoded = { .samples = samples, .count = count, .capacity = count };

	memset(err, 0, sizeof(*err));
	return validate_message(reg, pol, &m, &decoded, NOW_US, RECEIVED_US, result, err);
}

/* Expects a rejection for exactly this reason, with no message left behind. */
static void expect_reject(const struct config_validation *pol, struct route_match m, struct sample *samples,
			  size_t count, enum reject_reason want)
{
	struct validate_result result;
	struct decode_error err;
	int rc = run(pol, m, samples, count, &result, &err);

	if (rc != -1 || err.reason != want)
		fprintf(stderr, "\n  rc %d reason %s (%s), want %s\n", rc,
			rc ? reject_reason_name(err.reason) : "-", err.detail, reject_reason_name(want));
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_EQUAL(err.reason, want);
	CU_ASSERT(err.detail[0] != '\0');
	CU_ASSERT_PTR_NULL(result.message);
	message_free(result.message);
}

/* Expects acceptance of every sample; returns the message (the caller frees it). */
static struct message *expect_accept(const struct config_validation *pol, struct route_match m,
				     struct sample *samples, size_t count, struct validate_result *result)
{
	struct decode_error err;
	int rc = run(pol, m, samples, count, result, &err);

	if (rc != 0)
		fprintf(stderr, "\n  refused as %s (%s)\n", reject_reason_name(err.reason), err.detail);
	CU_ASSERT_EQUAL(rc, 0);
	return rc == 0 ? result->message : NULL;
}

static void test_accepts_with_identity_and_readings_in_order(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 5420, NOW_US), sample("temp", -3.5, NOW_US - US),
			      sample("soc", 80.25, NOW_US - 2 * US) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("acme", "INV-A1"), s, 3, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->kind, MESSAGE_READINGS);
	CU_ASSERT_EQUAL(m->tenant_id, TENANT_ACME);
	CU_ASSERT_EQUAL(m->device_id, DEVICE_A1);
	CU_ASSERT_EQUAL(m->received_us, RECEIVED_US);
	CU_ASSERT_EQUAL(m->new_point_count, 0);
	CU_ASSERT_PTR_NULL(m->rejection);
	CU_ASSERT_EQUAL_FATAL(m->reading_count, 3);
	CU_ASSERT_EQUAL(m->readings[0].point_id, POINT_A1_POWER);
	CU_ASSERT_EQUAL(m->readings[0].value, 5420.0);
	CU_ASSERT_EQUAL(m->readings[0].time_us, NOW_US);
	CU_ASSERT_EQUAL(m->readings[1].point_id, POINT_A1_TEMP);
	CU_ASSERT_EQUAL(m->readings[1].value, -3.5);
	CU_ASSERT_EQUAL(m->readings[1].time_us, NOW_US - US);
	CU_ASSERT_EQUAL(m->readings[2].point_id, POINT_A1_SOC);
	CU_ASSERT_EQUAL(m->readings[2].value, 80.25);
	CU_ASSERT_EQUAL(m->readings[2].time_us, NOW_US - 2 * US);
	CU_ASSERT_EQUAL(result.dropped_points, 0);
	CU_ASSERT_EQUAL(result.new_points, 0);
	message_free(m);
}

static void test_same_point_name_on_other_tenant(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("globex", "INV-B1"), s, 1, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->tenant_id, TENANT_GLOBEX);
	CU_ASSERT_EQUAL(m->device_id, DEVICE_B1);
	CU_ASSERT_EQUAL(m->readings[0].point_id, POINT_B1_POWER);
	message_free(m);
}

static void test_topic_slices_need_no_terminator(void)
{
	static const char topic_text[] = "solar/acmeX/INV-A1Y/telemetry";
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US) };
	struct route_match m = { .tenant = { topic_text + 6, 4 }, .serial = { topic_text + 12, 6 } };
	struct validate_result result;
	struct message *msg = expect_accept(&pol, m, s, 1, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	CU_ASSERT_EQUAL(msg->device_id, DEVICE_A1);
	message_free(msg);
}

/* An alias names a device of the topic's tenant, in the route's scope; never another tenant's device. */
static void test_device_aliases(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US) };
	struct validate_result result;
	struct route_match m = topic("acme", "Balkon_S\xc3\xbc"
					     "d");
	struct message *msg = expect_accept(&pol, m, s, 1, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	CU_ASSERT_EQUAL(msg->device_id, DEVICE_A1);
	message_free(msg);
	m = topic("globex", "inverter_1");
	msg = expect_accept(&pol, m, s, 1, &result);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	CU_ASSERT_EQUAL(msg->device_id, DEVICE_B1);
	message_free(msg);
	/* acme's inverter_1 is only in scope site-b: unknown without it; found with it (and then disabled). */
	expect_reject(&pol, topic("acme", "inverter_1"), s, 1, REJECT_UNKNOWN_DEVICE);
	m = topic("acme", "inverter_1");
	m.alias_scope = "site-b";
	expect_reject(&pol, m, s, 1, REJECT_DEVICE_DISABLED);
	/* Another tenant's alias is no name in this one. */
	expect_reject(&pol,
		      topic("globex", "Balkon_S\xc3\xbc"
				      "d"),
		      s, 1, REJECT_UNKNOWN_DEVICE);
	expect_reject(&pol, topic("globex", "stolen"), s, 1, REJECT_UNKNOWN_DEVICE);
}

static void test_unknown_tenant(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US) };

	expect_reject(&pol, topic("initech", "INV-A1"), s, 1, REJECT_UNKNOWN_TENANT);
	expect_reject(&pol, topic("acm", "INV-A1"), s, 1, REJECT_UNKNOWN_TENANT);
	expect_reject(&pol, topic("ACME", "INV-A1"), s, 1, REJECT_UNKNOWN_TENANT);
	/* The tenant is checked first: an unknown serial on an unknown tenant is "unknown_tenant". */
	expect_reject(&pol, topic("initech", "NOPE"), s, 1, REJECT_UNKNOWN_TENANT);
}

static void test_unknown_device(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US) };

	expect_reject(&pol, topic("acme", "INV-ZZ"), s, 1, REJECT_UNKNOWN_DEVICE);
	expect_reject(&pol, topic("acme", "INV-A"), s, 1, REJECT_UNKNOWN_DEVICE);
	expect_reject(&pol, topic("acme", "INV-A10"), s, 1, REJECT_UNKNOWN_DEVICE);
	expect_reject(&pol, topic("acme", "inv-a1"), s, 1, REJECT_UNKNOWN_DEVICE);
}

static void test_tenant_mismatch(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US) };

	/* acme's device publishing in globex's tree, and the other way round: spoofing. */
	expect_reject(&pol, topic("globex", "INV-A1"), s, 1, REJECT_TENANT_MISMATCH);
	expect_reject(&pol, topic("acme", "INV-B1"), s, 1, REJECT_TENANT_MISMATCH);
	/* Ownership is checked before enabled: a disabled device of acme on globex's topic is a mismatch. */
	expect_reject(&pol, topic("globex", "INV-A2"), s, 1, REJECT_TENANT_MISMATCH);
}

/* One serial in two tenants (sql/013): each tenant's topic finds its own device, with its own points. */
static void test_serial_in_two_tenants(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 500, NOW_US) };
	struct validate_result result;
	struct decode_error err;
	struct message *m = expect_accept(&pol, topic("globex", "SHARED-1"), s, 1, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->tenant_id, TENANT_GLOBEX);
	CU_ASSERT_EQUAL(m->device_id, DEVICE_B_SHARED);
	CU_ASSERT_EQUAL(m->readings[0].point_id, POINT_B_SHARED_POWER);
	message_free(m);
	/* acme's SHARED-1 has its own limits: 500 is above its max of 100 (globex's has none). */
	expect_reject(&pol, topic("acme", "SHARED-1"), s, 1, REJECT_VALUE_OUT_OF_RANGE);
	s[0].value = 50;
	m = expect_accept(&pol, topic("acme", "SHARED-1"), s, 1, &result);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->tenant_id, TENANT_ACME);
	CU_ASSERT_EQUAL(m->device_id, DEVICE_A_SHARED);
	CU_ASSERT_EQUAL(m->readings[0].point_id, POINT_A_SHARED_POWER);
	message_free(m);
	/* A third tenant's tree: the serial is other tenants' devices, so spoofing, and the detail says so. */
	CU_ASSERT_EQUAL(run(&pol, topic("umbrella", "SHARED-1"), s, 1, &result, &err), -1);
	CU_ASSERT_EQUAL(err.reason, REJECT_TENANT_MISMATCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "2 other tenants"));
}

static void test_device_disabled(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US) };

	expect_reject(&pol, topic("acme", "INV-A2"), s, 1, REJECT_DEVICE_DISABLED);
}

static void test_timestamp_future_bound(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample at_bound[] = { sample("power", 1, NOW_US + 300 * US) };
	struct sample past_bound[] = { sample("power", 1, NOW_US),
				       sample("power", 1, NOW_US + 300 * US + 1) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("acme", "INV-A1"), at_bound, 1, &result);

	CU_ASSERT_PTR_NOT_NULL(m);
	message_free(m);
	expect_reject(&pol, topic("acme", "INV-A1"), past_bound, 2, REJECT_TIMESTAMP_FUTURE);

	pol.max_future_skew = 0;
	m = expect_accept(&pol, topic("acme", "INV-A1"), past_bound, 1, &result);
	CU_ASSERT_PTR_NOT_NULL(m);
	message_free(m);
	past_bound[0].time_us = NOW_US + 1;
	expect_reject(&pol, topic("acme", "INV-A1"), past_bound, 1, REJECT_TIMESTAMP_FUTURE);
}

static void test_timestamp_stale_bound(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample at_bound[] = { sample("power", 1, NOW_US - 3600 * US) };
	struct sample past_bound[] = { sample("power", 1, NOW_US - 3600 * US - 1) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("acme", "INV-A1"), at_bound, 1, &result);

	CU_ASSERT_PTR_NOT_NULL(m);
	message_free(m);
	expect_reject(&pol, topic("acme", "INV-A1"), past_bound, 1, REJECT_TIMESTAMP_STALE);
	past_bound[0].time_us = 0; /* 1970: a device whose clock never synced */
	expect_reject(&pol, topic("acme", "INV-A1"), past_bound, 1, REJECT_TIMESTAMP_STALE);
}

static void test_value_range_inclusive(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample edges[] = { sample("power", 0.0, NOW_US), sample("power", 10000.0, NOW_US),
				  sample("soc", 1e12, NOW_US),	sample("delta", -1e12, NOW_US),
				  sample("delta", 5.0, NOW_US), sample("temp", -1e300, NOW_US),
				  sample("temp", 1e300, NOW_US) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("acme", "INV-A1"), edges, 7, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->reading_count, 7);
	message_free(m);
}

static void test_value_out_of_range(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample below[] = { sample("power", -0.001, NOW_US) };
	struct sample above[] = { sample("power", 10000.5, NOW_US) };
	struct sample below_min_only[] = { sample("soc", -1, NOW_US) };
	struct sample above_max_only[] = { sample("delta", 5.0001, NOW_US) };
	/* One bad sample rejects the whole message. */
	struct sample mixed[] = { sample("temp", 20, NOW_US), sample("power", 20000, NOW_US) };

	expect_reject(&pol, topic("acme", "INV-A1"), below, 1, REJECT_VALUE_OUT_OF_RANGE);
	expect_reject(&pol, topic("acme", "INV-A1"), above, 1, REJECT_VALUE_OUT_OF_RANGE);
	expect_reject(&pol, topic("acme", "INV-A1"), below_min_only, 1, REJECT_VALUE_OUT_OF_RANGE);
	expect_reject(&pol, topic("acme", "INV-A1"), above_max_only, 1, REJECT_VALUE_OUT_OF_RANGE);
	expect_reject(&pol, topic("acme", "INV-A1"), mixed, 2, REJECT_VALUE_OUT_OF_RANGE);
}

static void test_unknown_point_reject(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REJECT);
	struct sample s[] = { sample("power", 1, NOW_US), sample("mystery", 1, NOW_US) };
	/* "temp" is acme's INV-A1's point, not globex's INV-B1's: points belong to a device. */
	struct sample other_device[] = { sample("temp", 1, NOW_US) };

	expect_reject(&pol, topic("acme", "INV-A1"), s, 2, REJECT_UNKNOWN_POINT);
	expect_reject(&pol, topic("globex", "INV-B1"), other_device, 1, REJECT_UNKNOWN_POINT);
}

static void test_unknown_point_drop(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_DROP);
	struct sample s[] = { sample("power", 1, NOW_US), sample("mystery", 2, NOW_US),
			      sample("temp", 3, NOW_US), sample("other", 4, NOW_US) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("acme", "INV-A1"), s, 4, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(result.dropped_points, 2);
	CU_ASSERT_EQUAL(result.new_points, 0);
	CU_ASSERT_EQUAL(m->new_point_count, 0);
	CU_ASSERT_EQUAL_FATAL(m->reading_count, 2);
	CU_ASSERT_EQUAL(m->readings[0].point_id, POINT_A1_POWER);
	CU_ASSERT_EQUAL(m->readings[0].value, 1.0);
	CU_ASSERT_EQUAL(m->readings[1].point_id, POINT_A1_TEMP);
	CU_ASSERT_EQUAL(m->readings[1].value, 3.0);
	message_free(m);
}

static void test_unknown_point_drop_everything(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_DROP);
	struct sample s[] = { sample("mystery", 2, NOW_US), sample("other", 4, NOW_US) };
	struct validate_result result;
	struct decode_error err;

	/* Accepted (nothing wrong with the message) but nothing left to write. */
	CU_ASSERT_EQUAL(run(&pol, topic("acme", "INV-A1"), s, 2, &result, &err), 0);
	CU_ASSERT_PTR_NULL(result.message);
	CU_ASSERT_EQUAL(result.dropped_points, 2);
	CU_ASSERT_EQUAL(result.new_points, 0);
	message_free(result.message);
}

static void test_unknown_point_drop_still_checks_known_points(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_DROP);
	struct sample s[] = { sample("mystery", 2, NOW_US), sample("power", -5, NOW_US) };

	expect_reject(&pol, topic("acme", "INV-A1"), s, 2, REJECT_VALUE_OUT_OF_RANGE);
}

static void test_unknown_point_register(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REGISTER);
	struct sample s[] = { sample("power", 1, NOW_US), sample("new_a", 2, NOW_US),
			      sample("new_b", 3, NOW_US), sample("new_a", 4, NOW_US - US) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("acme", "INV-A1"), s, 4, &result);

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(result.new_points, 2);
	CU_ASSERT_EQUAL(result.dropped_points, 0);
	CU_ASSERT_EQUAL_FATAL(m->new_point_count, 2);
	CU_ASSERT_STRING_EQUAL(m->new_points[0], "new_a");
	CU_ASSERT_STRING_EQUAL(m->new_points[1], "new_b");
	CU_ASSERT_EQUAL_FATAL(m->reading_count, 4);
	CU_ASSERT_EQUAL(m->readings[0].point_id, POINT_A1_POWER);
	CU_ASSERT_EQUAL(m->readings[1].point_id, -1);
	CU_ASSERT_EQUAL(m->readings[1].value, 2.0);
	CU_ASSERT_EQUAL(m->readings[2].point_id, -2);
	CU_ASSERT_EQUAL(m->readings[2].value, 3.0);
	/* The same new name again reuses its id rather than registering it twice. */
	CU_ASSERT_EQUAL(m->readings[3].point_id, -1);
	CU_ASSERT_EQUAL(m->readings[3].value, 4.0);
	CU_ASSERT_EQUAL(m->readings[3].time_us, NOW_US - US);
	/* The contract of message.h: point_id < 0 names new_points[-point_id - 1]. */
	CU_ASSERT_STRING_EQUAL(m->new_points[-m->readings[2].point_id - 1], "new_b");
	message_free(m);
}

static void test_unknown_point_register_cap(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REGISTER);
	/* INV-A1 has 4 points and the cap is 6: two new points fit, a third does not. */
	struct sample fits[] = { sample("n1", 1, NOW_US), sample("n2", 2, NOW_US), sample("n1", 3, NOW_US),
				 sample("n2", 4, NOW_US) };
	struct sample over[] = { sample("n1", 1, NOW_US), sample("n2", 2, NOW_US), sample("n3", 3, NOW_US) };
	struct validate_result result;
	struct message *m = expect_accept(&pol, topic("acme", "INV-A1"), fits, 4, &result);

	CU_ASSERT_PTR_NOT_NULL(m);
	CU_ASSERT_EQUAL(result.new_points, 2);
	message_free(m);
	expect_reject(&pol, topic("acme", "INV-A1"), over, 3, REJECT_POINT_LIMIT);

	/* A device already at the cap may register nothing, but its known points still pass. */
	pol.max_points_per_device = 4;
	expect_reject(&pol, topic("acme", "INV-A1"), over, 1, REJECT_POINT_LIMIT);
	m = expect_accept(&pol, topic("acme", "INV-A1"), (struct sample[]){ sample("power", 1, NOW_US) }, 1,
			  &result);
	CU_ASSERT_PTR_NOT_NULL(m);
	message_free(m);
}

static void test_register_still_checks_time(void)
{
	struct config_validation pol = policy(UNKNOWN_POINT_REGISTER);
	struct sample s[] = { sample("n1", 1, NOW_US), sample("n2", 1, NOW_US + 301 * US) };

	expect_reject(&pol, topic("acme", "INV-A1"), s, 2, REJECT_TIMESTAMP_FUTURE);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_accepts_with_identity_and_readings_in_order),
		UNIT_TEST(test_same_point_name_on_other_tenant),
		UNIT_TEST(test_topic_slices_need_no_terminator),
		UNIT_TEST(test_unknown_tenant),
		UNIT_TEST(test_unknown_device),
		UNIT_TEST(test_tenant_mismatch),
		UNIT_TEST(test_serial_in_two_tenants),
		UNIT_TEST(test_device_disabled),
		UNIT_TEST(test_timestamp_future_bound),
		UNIT_TEST(test_timestamp_stale_bound),
		UNIT_TEST(test_value_range_inclusive),
		UNIT_TEST(test_value_out_of_range),
		UNIT_TEST(test_unknown_point_reject),
		UNIT_TEST(test_unknown_point_drop),
		UNIT_TEST(test_unknown_point_drop_everything),
		UNIT_TEST(test_unknown_point_drop_still_checks_known_points),
		UNIT_TEST(test_unknown_point_register),
		UNIT_TEST(test_unknown_point_register_cap),
		UNIT_TEST(test_register_still_checks_time),
		UNIT_TEST(test_device_aliases),
	};

	return unit_run("validate", build_registry, free_registry, tests, UNIT_COUNT(tests));
}
