// SPDX-License-Identifier: Apache-2.0
/*
 * test_http: the readiness checks as /metrics shows them (mqtt2pg_ready{check}), one gauge per row of the
 * table, and db_writers_writable going to 0 while the writers see a read-only database.
 */
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "http.h"
#include "unit.h"

#define CAP 65536

static void healthy(struct health *h)
{
	memset(h, 0, sizeof(*h));
	atomic_store(&h->loop_heartbeat_ms, clock_monotonic_ms());
	atomic_store(&h->mqtt_connected, true);
	atomic_store(&h->writers_connected, 2);
	atomic_store(&h->writers_writable, 2);
	atomic_store(&h->writers_total, 2);
	atomic_store(&h->registry_loaded, true);
}

static struct stats stats; /* zero: spool ok, intake flowing */

static char *render(const struct health *h)
{
	char *buf = malloc(CAP);

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	http_render_metrics(h, &stats, buf, CAP);
	return buf;
}

static void test_every_check_has_a_gauge(void)
{
	struct health h;
	size_t count;
	const struct http_ready_check *checks = http_ready_checks(&count);
	char *text, line[128];

	healthy(&h);
	text = render(&h);
	CU_ASSERT(count >= 6);
	for (size_t i = 0; i < count; i++) {
		snprintf(line, sizeof(line), "mqtt2pg_ready{check=\"%s\"} 1\n", checks[i].name);
		CU_ASSERT_PTR_NOT_NULL(strstr(text, line));
		CU_ASSERT_TRUE(checks[i].passes(&h, &stats));
	}
	free(text);
}

static void test_read_only_database_is_not_ready(void)
{
	struct health h;
	char *text;

	healthy(&h);
	atomic_store(&h.writers_writable, 0);
	text = render(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"db_writers_writable\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"db_writers_connected\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_db_writers_writable 0\n"));
	free(text);
}

static void test_broker_down_is_its_own_check(void)
{
	struct health h;
	char *text;

	healthy(&h);
	atomic_store(&h.mqtt_connected, false);
	text = render(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"broker_connected\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"db_writers_writable\"} 1\n"));
	free(text);
}

/* A spool that takes no records, or a callback waiting on one, is not ready: each is its own check. */
static void test_blocked_intake_is_not_ready(void)
{
	struct health h;
	char *text;

	healthy(&h);
	atomic_store(&stats.spool_state, STATS_SPOOL_WRITE_ERROR);
	atomic_store(&stats.intake_blocked, 1);
	text = render(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"spool_ok\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"intake_flowing\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"broker_connected\"} 1\n"));
	free(text);
	atomic_store(&stats.spool_state, STATS_SPOOL_OK);
	atomic_store(&stats.intake_blocked, 0);
	text = render(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"spool_ok\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"intake_flowing\"} 1\n"));
	free(text);
}

/* The aggregate job failing run after run is its own check, after AGGREGATE_FAILING_RUNS runs, not at once. */
static void test_failing_aggregates_are_not_ready(void)
{
	struct health h;
	char *text;

	healthy(&h);
	atomic_store(&stats.agg_failing, AGGREGATE_FAILING_RUNS - 1);
	text = render(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"aggregates_ok\"} 1\n"));
	free(text);
	atomic_store(&stats.agg_failing, AGGREGATE_FAILING_RUNS);
	text = render(&h);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_ready{check=\"aggregates_ok\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mqtt2pg_aggregate_failing_runs 3\n"));
	free(text);
	atomic_store(&stats.agg_failing, 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_every_check_has_a_gauge),
		UNIT_TEST(test_read_only_database_is_not_ready),
		UNIT_TEST(test_broker_down_is_its_own_check),
		UNIT_TEST(test_blocked_intake_is_not_ready),
		UNIT_TEST(test_failing_aggregates_are_not_ready),
	};

	return unit_run("http", NULL, NULL, tests, UNIT_COUNT(tests));
}
