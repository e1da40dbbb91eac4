// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for ingest.c, the per-message chain, without a broker or a database: a configuration loaded from
 * a file, a registry built by hand, and a real spool in a temporary directory (or, for memory mode, real
 * writer queues). Each test hands the chain a topic and a payload as Paho would (exact length, not
 * NUL-terminated) and then reads back what was spooled and what was counted: an accepted message reaches the
 * spool with the right samples; each rejection reason is recorded once and counted once; an ignored message
 * (every value null, a status topic, a broker's overlap copy, a retained message where ignored) is counted as
 * ignored and spools nothing; the device and tenant rate limits; several devices in one payload, each counted
 * on its own; and a full writer queue that blocks intake until there is room.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "config.h"
#include "ingest.h"
#include "message.h"
#include "queue.h"
#include "registry.h"
#include "reject.h"
#include "spool.h"
#include "stats.h"
#include "unit.h"

enum {
	TENANT_ACME = 1,
	TENANT_GLOBEX = 2,
	DEVICE_INV1 = 10, /* acme, enabled: power [0, 10000], temp */
	DEVICE_OFF = 11,  /* acme, disabled */
	DEVICE_RL = 12,	  /* acme, enabled: power (the rate-limit tests' device) */
	DEVICE_RL2 = 13,  /* acme, enabled: power */
	DEVICE_G1 = 20,	  /* globex, enabled: power */
	POINT_INV1_POWER = 100,
	POINT_INV1_TEMP = 101,
	POINT_OFF_POWER = 110,
	POINT_RL_POWER = 120,
	POINT_RL2_POWER = 130,
	POINT_G1_POWER = 200,
	MAX_SPOOLED = 16,
	REJECT_BYTES = 24, /* validation.reject_payload_bytes */
};

static char directory[64];
static struct config *cfg;
static struct registry_store *store;

/* One chain with its own spool directory, counters and what it spooled. */
static struct fixture {
	struct stats stats;
	struct spool *spool;
	struct ingest *chain;
	struct message *spooled[MAX_SPOOLED];
	size_t spooled_count;
	int blocked_calls;
	struct queue *queue; /* memory mode only */
} fx;

static const char config_text[] =
	"routes = (\n"
	"  { topic = \"solar/{tenant}/{serial}/telemetry\"; format = \"json\"; retained = \"ignore\"; },\n"
	"  { topic = \"solar/{tenant}/{serial}/{point}\"; format = \"value\"; ignore = [ \"solar/+/+/status\" ]; },\n"
	"  { topic = \"lp/{tenant}\"; format = \"influx\"; serial_tag = \"serial\"; }\n"
	");\n"
	"validation = {\n"
	"  max_payload_bytes = 200;\n"
	"  reject_payload_bytes = 24;\n"
	"};\n"
	"database = {\n"
	"  enqueue_timeout_ms = 10;\n"
	"};\n";

static int build_registry(void)
{
	struct registry *reg = registry_new();
	bool ok = true;

	ok = ok && registry_add_tenant(reg, TENANT_ACME, "acme");
	ok = ok && registry_add_tenant(reg, TENANT_GLOBEX, "globex");
	ok = ok && registry_add_device(reg, DEVICE_INV1, TENANT_ACME, "INV-1", true);
	ok = ok && registry_add_device(reg, DEVICE_OFF, TENANT_ACME, "INV-OFF", false);
	ok = ok && registry_add_device(reg, DEVICE_RL, TENANT_ACME, "RL-1", true);
	ok = ok && registry_add_device(reg, DEVICE_RL2, TENANT_ACME, "RL-2", true);
	ok = ok && registry_add_device(reg, DEVICE_G1, TENANT_GLOBEX, "G-1", true);
	ok = ok && registry_add_point(reg, POINT_INV1_POWER, DEVICE_INV1, "power", true, 0.0, true, 10000.0);
	ok = ok && registry_add_point(reg, POINT_INV1_TEMP, DEVICE_INV1, "temp", false, 0.0, false, 0.0);
	ok = ok && registry_add_point(reg, POINT_OFF_POWER, DEVICE_OFF, "power", false, 0.0, false, 0.0);
	ok = ok && registry_add_point(reg, POINT_RL_POWER, DEVICE_RL, "power", false, 0.0, false, 0.0);
	ok = ok && registry_add_point(reg, POINT_RL2_POWER, DEVICE_RL2, "power", false, 0.0, false, 0.0);
	ok = ok && registry_add_point(reg, POINT_G1_POWER, DEVICE_G1, "power", false, 0.0, false, 0.0);
	if (!ok) {
		registry_unref(reg);
		return -1;
	}
	store = registry_store_new();
	registry_store_swap(store, reg);
	return 0;
}

static int suite_init(void)
{
	char path[128], errors[4096];
	FILE *f;

	snprintf(directory, sizeof(directory), "/tmp/test_ingest.XXXXXX");
	if (!mkdtemp(directory))
		return -1;
	snprintf(path, sizeof(path), "%s/mqtt2pg.conf", directory);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(config_text, f);
	if (fclose(f) != 0)
		return -1;
	cfg = config_load(path, errors, sizeof(errors));
	if (!cfg) {
		fprintf(stderr, "config refused:\n%s\n", errors);
		return -1;
	}
	return build_registry();
}

static int suite_cleanup(void)
{
	char cmd[128];

	registry_store_free(store);
	config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", directory);
	return system(cmd) == 0 ? 0 : -1;
}

/* --- the fixture -------------------------------------------------------------------------------------- */

/* A chain in disk mode over a fresh spool in its own directory (name), with cfg's rate limits. */
static void start(const char *name)
{
	char dir[128];
	struct spool_options o = {
		.directory = dir, .max_bytes = 1u << 22, .segment_bytes = 1u << 20, .fsync_interval_ms = 1000
	};

	memset(&fx, 0, sizeof(fx));
	snprintf(dir, sizeof(dir), "%s/%s", directory, name);
	fx.spool = spool_open(&o, &fx.stats);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx.spool);
	fx.chain = ingest_new(
		&(struct ingest_deps){ .cfg = cfg, .store = store, .spool = fx.spool, .stats = &fx.stats });
}

/* Reads back every record the chain spooled so far into fx.spooled. */
static void read_spool(void)
{
	struct message *m;

	while (fx.spooled_count < MAX_SPOOLED && (m = spool_next(fx.spool, 0)) != NULL)
		fx.spooled[fx.spooled_count++] = m;
	CU_ASSERT_TRUE(spool_drained(fx.spool));
}

static void finish(void)
{
	for (size_t i = 0; i < fx.spooled_count; i++)
		message_free(fx.spooled[i]);
	ingest_free(fx.chain);
	spool_close(fx.spool);
	if (fx.queue) {
		queue_close(fx.queue);
		queue_free(fx.queue);
	}
	memset(&fx, 0, sizeof(fx));
}

/*
 * Hands topic and payload to the chain as Paho does: copied into buffers of exactly their length (no NUL
 * after them, so ASan catches a read past the end), with the subscription identifiers given (may be none).
 */
static void deliver_as(const char *topic, const char *payload, bool retained, const int *ids, size_t id_count)
{
	size_t topic_len = strlen(topic), payload_len = strlen(payload);
	char *t = malloc(topic_len);
	char *p = payload_len ? malloc(payload_len) : NULL;
	struct ingest_arrival arrival = { .received_us = clock_realtime_us(),
					  .retained = retained,
					  .subscription_ids = ids,
					  .subscription_id_count = id_count };

	memcpy(t, topic, topic_len);
	if (p)
		memcpy(p, payload, payload_len);
	ingest_message(fx.chain, t, topic_len, p, payload_len, &arrival);
	free(t);
	free(p);
}

static void deliver(const char *topic, const char *payload)
{
	deliver_as(topic, payload, false, NULL, 0);
}

static uint64_t rejected_total(void)
{
	uint64_t n = 0;

	for (int r = 0; r < REJECT_REASON_COUNT; r++)
		n += STATS_GET(&fx.stats, messages_rejected[r]);
	return n;
}

static uint64_t ignored_total(void)
{
	uint64_t n = 0;

	for (int r = 0; r < IGNORE_REASON_COUNT; r++)
		n += STATS_GET(&fx.stats, messages_ignored[r]);
	return n;
}

/* The reading of point_id in m, or NULL. */
static const struct reading *reading_of(const struct message *m, int32_t point_id)
{
	for (uint32_t i = 0; i < m->reading_count; i++)
		if (m->readings[i].point_id == point_id)
			return &m->readings[i];
	return NULL;
}

/*
 * One message on topic with payload, rejected for reason: counted once under that reason and under no other,
 * nothing accepted, and one rejection record spooled with the claimed tenant and serial and the first
 * REJECT_BYTES of the payload.
 */
static void expect_rejected(const char *name, const char *topic, const char *payload,
			    enum reject_reason reason, const char *tenant, const char *serial)
{
	const struct rejection *r;

	start(name);
	deliver(topic, payload);
	read_spool();
	if (STATS_GET(&fx.stats, messages_rejected[reason]) != 1)
		fprintf(stderr, "\n  %s: %s counted %llu times\n", name, reject_reason_name(reason),
			(unsigned long long)STATS_GET(&fx.stats, messages_rejected[reason]));
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_received), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_rejected[reason]), 1);
	CU_ASSERT_EQUAL(rejected_total(), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 0);
	CU_ASSERT_EQUAL(ignored_total(), 0);
	CU_ASSERT_EQUAL_FATAL(fx.spooled_count, 1);
	CU_ASSERT_EQUAL(fx.spooled[0]->kind, MESSAGE_REJECT);
	r = fx.spooled[0]->rejection;
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->reason, reason);
	ASSERT_STR(r->topic, topic);
	if (tenant)
		ASSERT_STR(r->tenant_slug, tenant);
	else
		CU_ASSERT_PTR_NULL(r->tenant_slug);
	if (serial)
		ASSERT_STR(r->serial, serial);
	else
		CU_ASSERT_PTR_NULL(r->serial);
	CU_ASSERT_EQUAL(r->payload_len, strlen(payload) < REJECT_BYTES ? strlen(payload) : REJECT_BYTES);
	CU_ASSERT(r->payload_len == 0 || memcmp(r->payload, payload, r->payload_len) == 0);
	CU_ASSERT_TRUE(r->detail && r->detail[0] != '\0');
	finish();
}

/* One message on topic with payload, ignored for reason: counted as ignored only, nothing spooled. */
static void expect_ignored_as(const char *name, const char *topic, const char *payload, bool retained,
			      const int *ids, size_t id_count, enum ignore_reason reason)
{
	start(name);
	deliver_as(topic, payload, retained, ids, id_count);
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_received), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_ignored[reason]), 1);
	CU_ASSERT_EQUAL(ignored_total(), 1);
	CU_ASSERT_EQUAL(rejected_total(), 0);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 0);
	CU_ASSERT_EQUAL(fx.spooled_count, 0);
	finish();
}

/* --- accepted ------------------------------------------------------------------------------------------- */

static void test_accepted_reaches_the_spool(void)
{
	const struct reading *power, *temp;
	const struct message *m;
	int64_t before = clock_realtime_us(), after;

	start("accepted");
	deliver("solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":1500.5,\"temp\":-3.25}}");
	after = clock_realtime_us();
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_received), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 1);
	CU_ASSERT_EQUAL(rejected_total(), 0);
	CU_ASSERT_EQUAL(ignored_total(), 0);
	CU_ASSERT_EQUAL_FATAL(fx.spooled_count, 1);
	m = fx.spooled[0];
	CU_ASSERT_EQUAL(m->kind, MESSAGE_READINGS);
	CU_ASSERT_EQUAL(m->tenant_id, TENANT_ACME);
	CU_ASSERT_EQUAL(m->device_id, DEVICE_INV1);
	CU_ASSERT(m->received_us >= before && m->received_us <= after);
	CU_ASSERT_EQUAL_FATAL(m->reading_count, 2);
	power = reading_of(m, POINT_INV1_POWER);
	temp = reading_of(m, POINT_INV1_TEMP);
	CU_ASSERT_PTR_NOT_NULL_FATAL(power);
	CU_ASSERT_PTR_NOT_NULL_FATAL(temp);
	CU_ASSERT_DOUBLE_EQUAL(power->value, 1500.5, 0.0);
	CU_ASSERT_DOUBLE_EQUAL(temp->value, -3.25, 0.0);
	/* No timestamp in the payload: the readings carry the receive time. */
	CU_ASSERT_EQUAL(power->time_us, m->received_us);
	CU_ASSERT_EQUAL(temp->time_us, m->received_us);
	finish();
}

/* A timestamp in the payload (a minute ago, inside max_age) is the readings' time, not the receive time. */
static void test_accepted_with_its_own_timestamp(void)
{
	int64_t when_s = clock_realtime_us() / 1000000 - 60;
	char payload[128];

	snprintf(payload, sizeof(payload), "{\"timestamp\":%lld,\"measurements\":{\"power\":7}}",
		 (long long)when_s);
	start("timestamped");
	deliver("solar/acme/INV-1/telemetry", payload);
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 1);
	CU_ASSERT_EQUAL_FATAL(fx.spooled_count, 1);
	CU_ASSERT_EQUAL_FATAL(fx.spooled[0]->kind, MESSAGE_READINGS);
	CU_ASSERT_EQUAL_FATAL(fx.spooled[0]->reading_count, 1);
	CU_ASSERT_EQUAL(fx.spooled[0]->readings[0].time_us, when_s * 1000000);
	CU_ASSERT_DOUBLE_EQUAL(fx.spooled[0]->readings[0].value, 7.0, 0.0);
	finish();
}

/* --- rejected: each reason recorded once and counted once ---------------------------------------------- */

static void test_rejected_no_route(void)
{
	expect_rejected("no_route", "elsewhere/acme/INV-1", "{\"measurements\":{\"power\":1}}",
			REJECT_NO_ROUTE, NULL, NULL);
}

static void test_rejected_oversized(void)
{
	char big[260];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_rejected("oversized", "solar/acme/INV-1/telemetry", big, REJECT_OVERSIZED_PAYLOAD, "acme",
			"INV-1");
}

static void test_rejected_malformed_json(void)
{
	expect_rejected("malformed", "solar/acme/INV-1/telemetry",
			"{\"measurements\":{\"power\":", REJECT_MALFORMED_JSON, "acme", "INV-1");
}

static void test_rejected_unknown_tenant(void)
{
	expect_rejected("unknown_tenant", "solar/nobody/INV-1/telemetry", "{\"measurements\":{\"power\":1}}",
			REJECT_UNKNOWN_TENANT, "nobody", "INV-1");
}

static void test_rejected_unknown_device(void)
{
	expect_rejected("unknown_device", "solar/acme/NOPE-9/telemetry", "{\"measurements\":{\"power\":1}}",
			REJECT_UNKNOWN_DEVICE, "acme", "NOPE-9");
}

static void test_rejected_device_disabled(void)
{
	expect_rejected("disabled", "solar/acme/INV-OFF/telemetry", "{\"measurements\":{\"power\":1}}",
			REJECT_DEVICE_DISABLED, "acme", "INV-OFF");
}

static void test_rejected_unknown_point(void)
{
	expect_rejected("unknown_point", "solar/acme/INV-1/telemetry", "{\"measurements\":{\"voltage\":230}}",
			REJECT_UNKNOWN_POINT, "acme", "INV-1");
}

static void test_rejected_out_of_range(void)
{
	expect_rejected("out_of_range", "solar/acme/INV-1/telemetry",
			"{\"measurements\":{\"power\":10000.5}}", REJECT_VALUE_OUT_OF_RANGE, "acme", "INV-1");
}

/* The same refusal again within the second: counted each time, recorded once (the sampler). */
static void test_repeated_rejection_counted_each_time_recorded_once(void)
{
	start("repeated");
	for (int i = 0; i < 5; i++)
		deliver("solar/acme/NOPE-9/telemetry", "{\"measurements\":{\"power\":1}}");
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_received), 5);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_rejected[REJECT_UNKNOWN_DEVICE]), 5);
	CU_ASSERT_EQUAL(rejected_total(), 5);
	CU_ASSERT_EQUAL(fx.spooled_count, 1);
	finish();
}

/* --- ignored ------------------------------------------------------------------------------------------- */

/* Every value null: nothing to store, no error either; the values are counted as skipped. */
static void test_ignored_all_null(void)
{
	start("all_null");
	deliver("solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":null,\"temp\":null}}");
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_received), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_ignored[IGNORE_SKIPPED]), 1);
	CU_ASSERT_EQUAL(ignored_total(), 1);
	CU_ASSERT_EQUAL(rejected_total(), 0);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 0);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, values_skipped[SKIP_NULL]), 2);
	CU_ASSERT_EQUAL(fx.spooled_count, 0);
	finish();
}

static void test_ignored_status_topic(void)
{
	expect_ignored_as("status", "solar/acme/INV-1/status", "offline", false, NULL, 0, IGNORE_STATUS);
}

static void test_ignored_retained(void)
{
	expect_ignored_as("retained", "solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":1}}", true,
			  NULL, 0, IGNORE_RETAINED);
}

/*
 * MQTT 5: the telemetry topic matches the first route (identifier 1) and the second (2, solar/+/+/+). The copy
 * the broker sent for the second subscription only is ignored; a delivery naming the owner's is processed.
 */
static void test_overlap_copy_ignored(void)
{
	static const int second_only[] = { 2 }, both[] = { 2, 1 };

	expect_ignored_as("overlap", "solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":1}}", false,
			  second_only, 1, IGNORE_OVERLAP_COPY);
	start("overlap_owner");
	deliver_as("solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":1}}", false, both, 2);
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 1);
	CU_ASSERT_EQUAL(ignored_total(), 0);
	CU_ASSERT_EQUAL(fx.spooled_count, 1);
	finish();
}

/* --- several devices in one payload -------------------------------------------------------------------- */

/* Line protocol naming two devices: one accepted, one rejected, each counted once; one message received. */
static void test_two_devices_each_counted(void)
{
	const struct message *readings = NULL, *rejection = NULL;

	start("two_devices");
	deliver("lp/acme", "m,serial=INV-1 power=5\nm,serial=NOPE-9 power=6\n");
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_received), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_rejected[REJECT_UNKNOWN_DEVICE]), 1);
	CU_ASSERT_EQUAL(rejected_total(), 1);
	CU_ASSERT_EQUAL_FATAL(fx.spooled_count, 2);
	for (size_t i = 0; i < fx.spooled_count; i++) {
		if (fx.spooled[i]->kind == MESSAGE_READINGS)
			readings = fx.spooled[i];
		else
			rejection = fx.spooled[i];
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(readings);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rejection);
	CU_ASSERT_EQUAL(readings->device_id, DEVICE_INV1);
	CU_ASSERT_EQUAL_FATAL(readings->reading_count, 1);
	CU_ASSERT_EQUAL(readings->readings[0].point_id, POINT_INV1_POWER);
	CU_ASSERT_DOUBLE_EQUAL(readings->readings[0].value, 5.0, 0.0);
	ASSERT_STR(rejection->rejection->serial, "NOPE-9");
	finish();
}

/* --- rate limits --------------------------------------------------------------------------------------- */

/*
 * device_rate so low that no token comes back during the test, burst 2: two messages pass, the third is
 * refused and recorded (once a second per device, with the count not recorded), the fourth only counted.
 * Another device keeps its own bucket.
 */
static void test_device_rate_limited(void)
{
	const struct rejection *r;
	size_t accepted = 0, refused = 0;

	cfg->validation.device_rate = 0.001;
	cfg->validation.device_burst = 2;
	start("device_rate");
	cfg->validation.device_rate = 0; /* read by ingest_new only: the other tests run unlimited */
	for (int i = 0; i < 4; i++)
		deliver("solar/acme/RL-1/telemetry", "{\"measurements\":{\"power\":1}}");
	deliver("solar/acme/RL-2/telemetry", "{\"measurements\":{\"power\":2}}");
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_received), 5);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 3);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_rejected[REJECT_RATE_LIMITED]), 2);
	CU_ASSERT_EQUAL(rejected_total(), 2);
	CU_ASSERT_EQUAL_FATAL(fx.spooled_count, 4);
	for (size_t i = 0; i < fx.spooled_count; i++) {
		const struct message *m = fx.spooled[i];
		if (m->kind == MESSAGE_READINGS) {
			accepted++;
			continue;
		}
		refused++;
		r = m->rejection;
		CU_ASSERT_EQUAL(r->reason, REJECT_RATE_LIMITED);
		CU_ASSERT_EQUAL(m->device_id, DEVICE_RL);
		CU_ASSERT_EQUAL(m->tenant_id, TENANT_ACME);
		ASSERT_STR(r->serial, "RL-1");
		CU_ASSERT_PTR_NOT_NULL(strstr(r->detail, "device over"));
	}
	CU_ASSERT_EQUAL(accepted, 3);
	CU_ASSERT_EQUAL(refused, 1);
	finish();
}

/* tenant_rate: the tenant's bucket is shared by its devices; another tenant is not limited by it. */
static void test_tenant_rate_limited(void)
{
	cfg->validation.tenant_rate = 0.001;
	cfg->validation.tenant_burst = 1;
	start("tenant_rate");
	cfg->validation.tenant_rate = 0;
	deliver("solar/acme/RL-1/telemetry", "{\"measurements\":{\"power\":1}}");
	deliver("solar/acme/RL-2/telemetry", "{\"measurements\":{\"power\":1}}");
	deliver("solar/globex/G-1/telemetry", "{\"measurements\":{\"power\":1}}");
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 2);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_rejected[REJECT_RATE_LIMITED]), 1);
	CU_ASSERT_EQUAL(rejected_total(), 1);
	CU_ASSERT_EQUAL_FATAL(fx.spooled_count, 3);
	CU_ASSERT_EQUAL(fx.spooled[1]->kind, MESSAGE_REJECT);
	CU_ASSERT_EQUAL(fx.spooled[1]->device_id, DEVICE_RL2);
	CU_ASSERT_PTR_NOT_NULL(strstr(fx.spooled[1]->rejection->detail, "tenant over"));
	CU_ASSERT_EQUAL(fx.spooled[2]->kind, MESSAGE_READINGS);
	CU_ASSERT_EQUAL(fx.spooled[2]->tenant_id, TENANT_GLOBEX);
	finish();
}

/* --- the policy swap ----------------------------------------------------------------------------------- */

/* A reloaded policy applies from the next message on (here: a lower max_payload_bytes). */
static void test_policy_swap(void)
{
	struct config_validation strict = cfg->validation;

	strict.max_payload_bytes = 10;
	start("policy");
	deliver("solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":1}}");
	ingest_set_policy(fx.chain, &strict);
	deliver("solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":1}}");
	read_spool();
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_rejected[REJECT_OVERSIZED_PAYLOAD]), 1);
	finish();
}

/* --- memory mode: the writer queue, and intake blocked while it is full --------------------------------- */

/* The blocked hook: the writer takes one message, making room (as the writer thread would). */
static void make_room(void *context)
{
	size_t count = 0;
	struct message *m = queue_pop(context, 1, 0, &count);

	fx.blocked_calls++;
	CU_ASSERT_EQUAL(count, 1);
	message_free(m);
}

static void test_memory_mode_blocks_until_the_queue_has_room(void)
{
	struct message *filler = message_new_readings(TENANT_ACME, DEVICE_INV1, 0, 0);
	struct message *m;
	size_t count = 0;

	memset(&fx, 0, sizeof(fx));
	fx.queue = queue_new(1);
	CU_ASSERT_EQUAL_FATAL(queue_push(fx.queue, filler, 0), 0); /* full */
	fx.chain = ingest_new(&(struct ingest_deps){ .cfg = cfg,
						     .store = store,
						     .queues = &fx.queue,
						     .queue_count = 1,
						     .stats = &fx.stats,
						     .blocked = make_room,
						     .blocked_context = fx.queue });
	deliver("solar/acme/INV-1/telemetry", "{\"measurements\":{\"power\":42}}");
	CU_ASSERT_EQUAL(fx.blocked_calls, 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, intake_blocks), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, intake_blocked), 0); /* resumed */
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, enqueue_waits), 1);
	CU_ASSERT_EQUAL(STATS_GET(&fx.stats, messages_accepted), 1);
	m = queue_pop(fx.queue, 1, 0, &count);
	CU_ASSERT_EQUAL_FATAL(count, 1);
	CU_ASSERT_EQUAL(m->device_id, DEVICE_INV1);
	CU_ASSERT_EQUAL_FATAL(m->reading_count, 1);
	CU_ASSERT_DOUBLE_EQUAL(m->readings[0].value, 42.0, 0.0);
	message_free(m);
	finish();
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_accepted_reaches_the_spool),
		UNIT_TEST(test_accepted_with_its_own_timestamp),
		UNIT_TEST(test_rejected_no_route),
		UNIT_TEST(test_rejected_oversized),
		UNIT_TEST(test_rejected_malformed_json),
		UNIT_TEST(test_rejected_unknown_tenant),
		UNIT_TEST(test_rejected_unknown_device),
		UNIT_TEST(test_rejected_device_disabled),
		UNIT_TEST(test_rejected_unknown_point),
		UNIT_TEST(test_rejected_out_of_range),
		UNIT_TEST(test_repeated_rejection_counted_each_time_recorded_once),
		UNIT_TEST(test_ignored_all_null),
		UNIT_TEST(test_ignored_status_topic),
		UNIT_TEST(test_ignored_retained),
		UNIT_TEST(test_overlap_copy_ignored),
		UNIT_TEST(test_two_devices_each_counted),
		UNIT_TEST(test_device_rate_limited),
		UNIT_TEST(test_tenant_rate_limited),
		UNIT_TEST(test_policy_swap),
		UNIT_TEST(test_memory_mode_blocks_until_the_queue_has_room),
	};

	return unit_run("ingest", suite_init, suite_cleanup, tests, UNIT_COUNT(tests));
}
