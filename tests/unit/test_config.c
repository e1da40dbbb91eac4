// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for config.c: the libconfig loader on temporary files. Covers the defaults, every key read with
 * a non-default value, the shipped example file, unknown keys, type and range errors (each reported as
 * "file:line: message", several at once), routes, password files and the environment overrides for secrets
 * and per-replica settings.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util/secret.h"
#include "util/log.h"
#include "route.h"
#include "unit.h"

static const char *const env_names[] = { "MQTT2PG_MQTT_PASSWORD", "MQTT2PG_DB_PASSWORD",
					 "MQTT2PG_CLIENT_ID",	  "MQTT2PG_MQTT_URI",
					 "MQTT2PG_DB_CONNINFO",	  "MQTT2PG_ADMIN_CONNINFO" };

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
}

static int suite_init(void)
{
	clear_env();
	return 0;
}

/* Writes text to a new temporary file whose name is stored in path (the caller unlinks it). */
static void write_temp(char path[64], const char *text)
{
	int fd;
	size_t len = strlen(text);

	snprintf(path, 64, "/tmp/mqtt2pg-test-config-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
	close(fd);
}

/* Loads text as a config file; *errors gets the loader's messages. */
static struct config *load_text(const char *text, char path[64], char *errors, size_t errlen)
{
	struct config *cfg;

	write_temp(path, text);
	cfg = config_load(path, errors, errlen);
	unlink(path);
	return cfg;
}

static size_t count_lines(const char *errors)
{
	size_t n = 0;

	for (const char *p = errors; *p; p++)
		n += *p == '\n';
	return n;
}

/* True when one line of errors starts with "path:line: " and contains fragment. */
static bool has_error(const char *errors, const char *path, int line, const char *fragment)
{
	char prefix[128];
	size_t prefix_len = (size_t)snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);

	for (const char *p = errors; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len >= prefix_len && memcmp(p, prefix, prefix_len) == 0) {
			char one[1024];
			snprintf(one, sizeof(one), "%.*s", (int)len, p);
			if (strstr(one, fragment))
				return true;
		}
		p += len + (eol ? 1 : 0);
	}
	return false;
}

#define ASSERT_ERROR_AT(errors, path, line, fragment)                                                     \
	do {                                                                                              \
		bool found_ = has_error((errors), (path), (line), (fragment));                            \
		if (!found_)                                                                              \
			fprintf(stderr, "\n  %s:%d: no error at line %d with \"%s\" in:\n%s\n", __FILE__, \
				__LINE__, (line), (fragment), (errors));                                  \
		CU_ASSERT(found_);                                                                        \
	} while (0)

/* Loads text that must be refused with one error, at line, containing fragment. */
static void expect_one_error(const char *text, int line, const char *fragment)
{
	char path[64], errors[4096];
	struct config *cfg = load_text(text, path, errors, sizeof(errors));

	CU_ASSERT_PTR_NULL(cfg);
	config_free(cfg);
	ASSERT_ERROR_AT(errors, path, line, fragment);
	if (count_lines(errors) != 1)
		fprintf(stderr, "\n  expected exactly one error:\n%s\n", errors);
	CU_ASSERT_EQUAL(count_lines(errors), 1);
}

/* Loads text that must be accepted. */
static struct config *expect_load(const char *text)
{
	char path[64], errors[4096];
	struct config *cfg = load_text(text, path, errors, sizeof(errors));

	if (!cfg)
		fprintf(stderr, "\n  refused:\n%s\n", errors);
	CU_ASSERT_PTR_NOT_NULL(cfg);
	CU_ASSERT_STRING_EQUAL(errors, "");
	return cfg;
}

static void assert_defaults(const struct config *cfg)
{
	ASSERT_STR(cfg->mqtt.uri, "tcp://127.0.0.1:1883");
	ASSERT_STR(cfg->mqtt.client_id, "mqtt2pg");
	CU_ASSERT_PTR_NULL(cfg->mqtt.username);
	CU_ASSERT_PTR_NULL(cfg->mqtt.password);
	CU_ASSERT_EQUAL(cfg->mqtt.version, 5);
	CU_ASSERT_EQUAL(cfg->mqtt.qos, 1);
	CU_ASSERT_FALSE(cfg->mqtt.clean_session);
	CU_ASSERT_EQUAL(cfg->mqtt.session_expiry, 604800);
	CU_ASSERT_EQUAL(cfg->mqtt.keepalive, 60);
	CU_ASSERT_EQUAL(cfg->mqtt.connect_timeout, 10);
	CU_ASSERT_EQUAL(cfg->mqtt.reconnect_min, 1);
	CU_ASSERT_EQUAL(cfg->mqtt.reconnect_max, 30);
	CU_ASSERT_PTR_NULL(cfg->mqtt.shared_group);
	CU_ASSERT_PTR_NULL(cfg->mqtt.ca_file);
	CU_ASSERT_PTR_NULL(cfg->mqtt.cert_file);
	CU_ASSERT_PTR_NULL(cfg->mqtt.key_file);
	CU_ASSERT_TRUE(cfg->mqtt.tls_verify);
	ASSERT_STR(cfg->database.conninfo, "host=127.0.0.1 dbname=mqtt2pg user=mqtt2pg_writer");
	CU_ASSERT_PTR_NULL(cfg->database.password);
	CU_ASSERT_PTR_NULL(cfg->database.admin_conninfo);
	CU_ASSERT_EQUAL(cfg->database.writers, 2);
	CU_ASSERT_EQUAL(cfg->database.batch_rows, 2000);
	CU_ASSERT_EQUAL(cfg->database.flush_interval_ms, 100);
	CU_ASSERT_EQUAL(cfg->database.queue_messages, 50000);
	CU_ASSERT_EQUAL(cfg->database.enqueue_timeout_ms, 20000);
	CU_ASSERT_EQUAL(cfg->database.reconnect_max_ms, 10000);
	CU_ASSERT_EQUAL(cfg->validation.max_payload_bytes, 65536);
	CU_ASSERT_EQUAL(cfg->validation.max_future_skew, 300);
	CU_ASSERT_EQUAL(cfg->validation.max_age, 604800);
	CU_ASSERT_EQUAL(cfg->validation.unknown_points, UNKNOWN_POINT_REJECT);
	CU_ASSERT_EQUAL(cfg->validation.max_points_per_device, 256);
	CU_ASSERT_EQUAL(cfg->validation.reject_payload_bytes, 1024);
	CU_ASSERT_EQUAL_FATAL(cfg->route_count, 1);
	ASSERT_STR(cfg->routes[0].template_text, "solar/{tenant}/{serial}/telemetry");
	ASSERT_STR(cfg->routes[0].filter, "solar/+/+/telemetry");
	CU_ASSERT_EQUAL(cfg->routes[0].format, ROUTE_FORMAT_JSON);
	CU_ASSERT_TRUE(cfg->aggregates.enabled);
	CU_ASSERT_EQUAL(cfg->aggregates.interval, 30);
	CU_ASSERT_EQUAL(cfg->aggregates.raw_retention_days, 0);
	CU_ASSERT_EQUAL(cfg->aggregates.partitions_ahead_days, 3);
	CU_ASSERT_EQUAL(cfg->registry_refresh_interval, 60);
	CU_ASSERT_EQUAL(cfg->stats_interval, 10);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_LEVEL_INFO);
}

static void test_defaults_when_path_null(void)
{
	char errors[1024] = "stale";
	struct config *cfg = config_load(NULL, errors, sizeof(errors));

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(errors, "");
	CU_ASSERT_PTR_NULL(cfg->path);
	assert_defaults(cfg);
	config_free(cfg);
}

static void test_empty_file_is_defaults(void)
{
	struct config *cfg = expect_load("# nothing but a comment\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_PTR_NOT_NULL(cfg->path);
	assert_defaults(cfg);
	config_free(cfg);
}

/* The example file documents every key with its default, so loading it must give exactly the defaults. */
static void test_example_file_is_defaults(void)
{
	char path[512], errors[4096];
	char *slash;
	struct config *cfg;

	snprintf(path, sizeof(path), "%s", __FILE__); /* .../tests/unit/test_config.c */
	for (int i = 0; i < 3; i++) {
		slash = strrchr(path, '/');
		CU_ASSERT_PTR_NOT_NULL_FATAL(slash);
		*slash = '\0';
	}
	strncat(path, "/conf/mqtt2pg.conf", sizeof(path) - strlen(path) - 1);
	cfg = config_load(path, errors, sizeof(errors));
	if (!cfg)
		fprintf(stderr, "\n  %s refused:\n%s\n", path, errors);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ASSERT_STR(cfg->path, path);
	assert_defaults(cfg);
	config_free(cfg);
}

static void test_every_key_read(void)
{
	char mqtt_pw[64], db_pw[64], text[4096];
	struct config *cfg;

	write_temp(mqtt_pw, "broker-secret\n");
	write_temp(db_pw, "db-secret");
	snprintf(text, sizeof(text),
		 "mqtt = {\n"
		 "  uri = \"ssl://broker.example:8883\";\n"
		 "  client_id = \"bridge-1\";\n"
		 "  username = \"bridge\";\n"
		 "  password_file = \"%s\";\n"
		 "  version = 4;\n"
		 "  qos = 2;\n"
		 "  clean_session = true;\n"
		 "  session_expiry = 3600;\n"
		 "  keepalive = 30;\n"
		 "  connect_timeout = 5;\n"
		 "  reconnect_min = 2;\n"
		 "  reconnect_max = 60;\n"
		 "  shared_group = \"ingest\";\n"
		 "  ca_file = \"/etc/mqtt/ca.pem\";\n"
		 "  cert_file = \"/etc/mqtt/cert.pem\";\n"
		 "  key_file = \"/etc/mqtt/key.pem\";\n"
		 "  tls_verify = false;\n"
		 "};\n"
		 "database = {\n"
		 "  conninfo = \"host=db dbname=telemetry user=writer\";\n"
		 "  password_file = \"%s\";\n"
		 "  admin_conninfo = \"host=db dbname=telemetry user=owner\";\n"
		 "  writers = 4;\n"
		 "  batch_rows = 500;\n"
		 "  flush_interval_ms = 250;\n"
		 "  queue_messages = 1000;\n"
		 "  enqueue_timeout_ms = 2000;\n"
		 "  reconnect_max_ms = 30000;\n"
		 "};\n"
		 "routes = (\n"
		 "  { topic = \"solar/{tenant}/{serial}/telemetry\"; format = \"json\"; },\n"
		 "  { topic = \"site/+/{tenant}/{serial}\"; }\n"
		 ");\n"
		 "validation = {\n"
		 "  max_payload_bytes = 4096;\n"
		 "  max_future_skew = 60;\n"
		 "  max_age = 86400;\n"
		 "  unknown_points = \"register\";\n"
		 "  max_points_per_device = 32;\n"
		 "  reject_payload_bytes = 0;\n"
		 "};\n"
		 "aggregates = {\n"
		 "  enabled = false;\n"
		 "  interval = 45;\n"
		 "  raw_retention_days = 90;\n"
		 "  partitions_ahead_days = 7;\n"
		 "};\n"
		 "registry = { refresh_interval = 120; };\n"
		 "log = { level = \"debug\"; };\n"
		 "stats_interval = 0;\n",
		 mqtt_pw, db_pw);
	cfg = expect_load(text);
	unlink(mqtt_pw);
	unlink(db_pw);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ASSERT_STR(cfg->mqtt.uri, "ssl://broker.example:8883");
	ASSERT_STR(cfg->mqtt.client_id, "bridge-1");
	ASSERT_STR(cfg->mqtt.username, "bridge");
	ASSERT_STR(cfg->mqtt.password, "broker-secret");
	CU_ASSERT_EQUAL(cfg->mqtt.version, 4);
	CU_ASSERT_EQUAL(cfg->mqtt.qos, 2);
	CU_ASSERT_TRUE(cfg->mqtt.clean_session);
	CU_ASSERT_EQUAL(cfg->mqtt.session_expiry, 3600);
	CU_ASSERT_EQUAL(cfg->mqtt.keepalive, 30);
	CU_ASSERT_EQUAL(cfg->mqtt.connect_timeout, 5);
	CU_ASSERT_EQUAL(cfg->mqtt.reconnect_min, 2);
	CU_ASSERT_EQUAL(cfg->mqtt.reconnect_max, 60);
	ASSERT_STR(cfg->mqtt.shared_group, "ingest");
	ASSERT_STR(cfg->mqtt.ca_file, "/etc/mqtt/ca.pem");
	ASSERT_STR(cfg->mqtt.cert_file, "/etc/mqtt/cert.pem");
	ASSERT_STR(cfg->mqtt.key_file, "/etc/mqtt/key.pem");
	CU_ASSERT_FALSE(cfg->mqtt.tls_verify);
	ASSERT_STR(cfg->database.conninfo, "host=db dbname=telemetry user=writer");
	ASSERT_STR(cfg->database.password, "db-secret");
	ASSERT_STR(cfg->database.admin_conninfo, "host=db dbname=telemetry user=owner");
	CU_ASSERT_EQUAL(cfg->database.writers, 4);
	CU_ASSERT_EQUAL(cfg->database.batch_rows, 500);
	CU_ASSERT_EQUAL(cfg->database.flush_interval_ms, 250);
	CU_ASSERT_EQUAL(cfg->database.queue_messages, 1000);
	CU_ASSERT_EQUAL(cfg->database.enqueue_timeout_ms, 2000);
	CU_ASSERT_EQUAL(cfg->database.reconnect_max_ms, 30000);
	CU_ASSERT_EQUAL(cfg->validation.max_payload_bytes, 4096);
	CU_ASSERT_EQUAL(cfg->validation.max_future_skew, 60);
	CU_ASSERT_EQUAL(cfg->validation.max_age, 86400);
	CU_ASSERT_EQUAL(cfg->validation.unknown_points, UNKNOWN_POINT_REGISTER);
	CU_ASSERT_EQUAL(cfg->validation.max_points_per_device, 32);
	CU_ASSERT_EQUAL(cfg->validation.reject_payload_bytes, 0);
	CU_ASSERT_EQUAL_FATAL(cfg->route_count, 2);
	ASSERT_STR(cfg->routes[0].filter, "solar/+/+/telemetry");
	ASSERT_STR(cfg->routes[1].template_text, "site/+/{tenant}/{serial}");
	ASSERT_STR(cfg->routes[1].filter, "site/+/+/+");
	CU_ASSERT_EQUAL(cfg->routes[1].format, ROUTE_FORMAT_JSON);
	CU_ASSERT_FALSE(cfg->aggregates.enabled);
	CU_ASSERT_EQUAL(cfg->aggregates.interval, 45);
	CU_ASSERT_EQUAL(cfg->aggregates.raw_retention_days, 90);
	CU_ASSERT_EQUAL(cfg->aggregates.partitions_ahead_days, 7);
	CU_ASSERT_EQUAL(cfg->registry_refresh_interval, 120);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_LEVEL_DEBUG);
	CU_ASSERT_EQUAL(cfg->stats_interval, 0);
	config_free(cfg);
}

static void test_empty_string_means_unset(void)
{
	struct config *cfg =
		expect_load("mqtt = { username = \"\"; shared_group = \"\"; password_file = \"\"; };\n"
			    "database = { admin_conninfo = \"\"; };\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_PTR_NULL(cfg->mqtt.username);
	CU_ASSERT_PTR_NULL(cfg->mqtt.shared_group);
	CU_ASSERT_PTR_NULL(cfg->mqtt.password);
	CU_ASSERT_PTR_NULL(cfg->database.admin_conninfo);
	config_free(cfg);
}

static void test_unknown_keys_with_line(void)
{
	expect_one_error("stats_interval = 5;\nfoo = 1;\n", 2, "unknown setting 'foo'");
	expect_one_error("mqtt = {\n  uri = \"tcp://x:1\";\n  urii = \"tcp://y:1\";\n};\n", 3,
			 "unknown setting 'mqtt.urii'");
	expect_one_error("\n\ndatabase = {\n  batch_size = 10;\n};\n", 4,
			 "unknown setting 'database.batch_size'");
	expect_one_error("validation = { max_payload = 10; };\n", 1, "validation.max_payload");
	expect_one_error("registry = {\n refresh = 10;\n};\n", 2, "registry.refresh");
	expect_one_error("aggregates = {\n  retention_days = 10;\n};\n", 2, "aggregates.retention_days");
	expect_one_error("log = {\n level = \"info\";\n file = \"x\";\n};\n", 3, "log.file");
	expect_one_error("routes = (\n  { topic = \"a/{tenant}/{serial}\";\n    qos = 1; }\n);\n", 3,
			 "unknown setting");
}

static void test_type_errors(void)
{
	expect_one_error("mqtt = {\n  uri = 5;\n};\n", 2, "'uri' must be a string");
	expect_one_error("mqtt = {\n  version = \"5\";\n};\n", 2, "'version' must be an integer");
	expect_one_error("database = {\n  writers = 2.5;\n};\n", 2, "'writers' must be an integer");
	expect_one_error("mqtt = {\n  clean_session = 1;\n};\n", 2, "'clean_session' must be true or false");
	expect_one_error("mqtt = {\n  tls_verify = \"yes\";\n};\n", 2, "'tls_verify' must be true or false");
	expect_one_error("validation = {\n  unknown_points = 1;\n};\n", 2,
			 "'unknown_points' must be a string");
	expect_one_error("stats_interval = \"10\";\n", 1, "'stats_interval' must be an integer");
	expect_one_error("log = { level = true; };\n", 1, "'level' must be a string");
	expect_one_error("aggregates = {\n  enabled = \"yes\";\n};\n", 2, "'enabled' must be true or false");
}

/*
 * A group written as a scalar ("log = \"debug\";" for "log = { level = \"debug\"; };") is a typo like an
 * unknown key: ignoring it would silently run with the defaults.
 */
static void test_group_of_wrong_type(void)
{
	char path[64], errors[4096];
	struct config *cfg;

	cfg = load_text("stats_interval = 5;\nlog = \"debug\";\n", path, errors, sizeof(errors));
	CU_ASSERT_PTR_NULL(cfg);
	ASSERT_ERROR_AT(errors, path, 2, "log");
	config_free(cfg);
	cfg = load_text("validation = 1024;\n", path, errors, sizeof(errors));
	CU_ASSERT_PTR_NULL(cfg);
	ASSERT_ERROR_AT(errors, path, 1, "validation");
	config_free(cfg);
}

static void test_range_errors(void)
{
	expect_one_error("mqtt = {\n  qos = 3;\n};\n", 2, "'qos' = 3 is out of range [0, 2]");
	expect_one_error("mqtt = {\n  version = 3;\n};\n", 2, "'version' = 3 is out of range [4, 5]");
	expect_one_error("mqtt = {\n  keepalive = 4;\n};\n", 2, "'keepalive' = 4 is out of range");
	expect_one_error("database = {\n  writers = 0;\n};\n", 2, "'writers' = 0 is out of range [1, 64]");
	expect_one_error("database = {\n  batch_rows = 100001;\n};\n", 2,
			 "'batch_rows' = 100001 is out of range");
	expect_one_error("validation = {\n  max_payload_bytes = 15;\n};\n", 2, "'max_payload_bytes' = 15");
	expect_one_error("validation = {\n  max_age = 0;\n};\n", 2, "'max_age' = 0");
	expect_one_error("stats_interval = -1;\n", 1, "'stats_interval' = -1 is out of range [0, 86400]");
	expect_one_error("registry = {\n  refresh_interval = 0;\n};\n", 2, "'refresh_interval' = 0");
	expect_one_error("aggregates = {\n  interval = 0;\n};\n", 2,
			 "'interval' = 0 is out of range [1, 86400]");
	expect_one_error("aggregates = {\n  partitions_ahead_days = 0;\n};\n", 2,
			 "'partitions_ahead_days' = 0");
	expect_one_error("aggregates = {\n  raw_retention_days = -1;\n};\n", 2, "'raw_retention_days' = -1");
	/* The segment being written is never deleted: less than two segments of room could fill for good. */
	expect_one_error("spool = {\n  max_bytes = 1048576;\n  segment_bytes = 1048576;\n};\n", 1,
			 "must be at least twice spool.segment_bytes");
	/* A 64-bit value is range-checked, not truncated to its low 32 bits (2^32 + 60 would read as 60). */
	expect_one_error("mqtt = {\n  keepalive = 4294967356L;\n};\n", 2,
			 "'keepalive' = 4294967356 is out of range");
}

static void test_range_limits_accepted(void)
{
	struct config *cfg =
		expect_load("mqtt = { qos = 0; keepalive = 5; session_expiry = 0; };\n"
			    "database = { writers = 64; batch_rows = 1; queue_messages = 16; };\n"
			    "validation = { max_payload_bytes = 16; max_future_skew = 0; };\n"
			    "stats_interval = 86400;\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->mqtt.qos, 0);
	CU_ASSERT_EQUAL(cfg->mqtt.keepalive, 5);
	CU_ASSERT_EQUAL(cfg->mqtt.session_expiry, 0);
	CU_ASSERT_EQUAL(cfg->database.writers, 64);
	CU_ASSERT_EQUAL(cfg->database.batch_rows, 1);
	CU_ASSERT_EQUAL(cfg->database.queue_messages, 16);
	CU_ASSERT_EQUAL(cfg->validation.max_payload_bytes, 16);
	CU_ASSERT_EQUAL(cfg->validation.max_future_skew, 0);
	CU_ASSERT_EQUAL(cfg->stats_interval, 86400);
	config_free(cfg);
}

static void test_several_errors_at_once(void)
{
	char path[64], errors[4096];
	struct config *cfg = load_text("mqtt = {\n"
				       "  qos = 3;\n"
				       "  version = \"5\";\n"
				       "  colour = \"blue\";\n"
				       "};\n"
				       "database = { writers = 0; };\n"
				       "stats_interval = 1;\n"
				       "log = {\n"
				       "  level = \"verbose\";\n"
				       "};\n",
				       path, errors, sizeof(errors));

	CU_ASSERT_PTR_NULL(cfg);
	config_free(cfg);
	CU_ASSERT_EQUAL(count_lines(errors), 5);
	ASSERT_ERROR_AT(errors, path, 2, "'qos' = 3");
	ASSERT_ERROR_AT(errors, path, 3, "'version' must be an integer");
	ASSERT_ERROR_AT(errors, path, 4, "mqtt.colour");
	ASSERT_ERROR_AT(errors, path, 6, "'writers' = 0");
	ASSERT_ERROR_AT(errors, path, 9, "log.level");
}

static void test_errors_buffer_is_bounded(void)
{
	char path[64], errors[40];
	struct config *cfg;

	memset(errors, 'x', sizeof(errors));
	cfg = load_text("mqtt = { qos = 3; version = 9; keepalive = 1; };\n", path, errors, sizeof(errors));
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT(memchr(errors, '\0', sizeof(errors)) != NULL);
	config_free(cfg);
}

static void test_cross_checks(void)
{
	expect_one_error("mqtt = {\n  reconnect_min = 10;\n  reconnect_max = 5;\n};\n", 1,
			 "reconnect_max must be >= mqtt.reconnect_min");
	expect_one_error("mqtt = {\n  shared_group = \"a/b\";\n};\n", 1, "shared_group may not contain");
	expect_one_error("mqtt = {\n  shared_group = \"a+\";\n};\n", 1, "shared_group may not contain");
	expect_one_error("mqtt = {\n  uri = \"\";\n};\n", 1, "mqtt.uri is required");
	expect_one_error("mqtt = {\n  client_id = \"\";\n};\n", 1, "mqtt.client_id is required");
	expect_one_error("database = {\n  conninfo = \"\";\n};\n", 1, "database.conninfo is required");
}

static void test_policies_and_levels(void)
{
	static const struct {
		const char *text;
		enum unknown_point_policy policy;
	} policies[] = {
		{ "reject", UNKNOWN_POINT_REJECT },
		{ "drop", UNKNOWN_POINT_DROP },
		{ "register", UNKNOWN_POINT_REGISTER },
	};
	static const struct {
		const char *text;
		enum log_level level;
	} levels[] = {
		{ "error", LOG_LEVEL_ERROR },
		{ "warn", LOG_LEVEL_WARN },
		{ "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		struct config *cfg;

		snprintf(text, sizeof(text), "validation = { unknown_points = \"%s\"; };\n",
			 policies[i].text);
		cfg = expect_load(text);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		CU_ASSERT_EQUAL(cfg->validation.unknown_points, policies[i].policy);
		ASSERT_STR(config_unknown_point_policy_name(policies[i].policy), policies[i].text);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct config *cfg;

		snprintf(text, sizeof(text), "log = { level = \"%s\"; };\n", levels[i].text);
		cfg = expect_load(text);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		CU_ASSERT_EQUAL(cfg->log_level, levels[i].level);
		config_free(cfg);
	}
	expect_one_error("validation = {\n  unknown_points = \"ignore\";\n};\n", 2, "unknown_points must be");
	expect_one_error("validation = {\n  unknown_points = \"Reject\";\n};\n", 2, "unknown_points must be");
	expect_one_error("log = {\n  level = \"verbose\";\n};\n", 2, "log.level must be");
}

static void test_routes(void)
{
	struct config *cfg = expect_load("routes = (\n"
					 "  { topic = \"a/{tenant}/{serial}\"; format = \"json\"; },\n"
					 "  { topic = \"b/{serial}/{tenant}/x\"; },\n"
					 "  { format = \"json\"; topic = \"{tenant}/{serial}\"; }\n"
					 ");\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->route_count, 3);
	ASSERT_STR(cfg->routes[0].template_text, "a/{tenant}/{serial}");
	ASSERT_STR(cfg->routes[0].filter, "a/+/+");
	ASSERT_STR(cfg->routes[1].filter, "b/+/+/x");
	CU_ASSERT_EQUAL(cfg->routes[1].levels[1].kind, ROUTE_LEVEL_SERIAL);
	ASSERT_STR(cfg->routes[2].filter, "+/+");
	config_free(cfg);
}

/* Retained: "timestamped" unless the route (or its preset) says otherwise; rejected rows kept 30 days. */
static void test_retained_policies(void)
{
	struct config *cfg =
		expect_load("validation = { rejected_retention_days = 7; };\n"
			    "routes = (\n"
			    "  { topic = \"a/{tenant}/{serial}\"; },\n"
			    "  { topic = \"b/{tenant}/{serial}\"; retained = \"accept\"; },\n"
			    "  { topic = \"c/{tenant}/{serial}\"; retained = \"ignore\"; },\n"
			    "  { topic = \"d/{tenant}/{serial}\"; retained = \"timestamped\"; }\n"
			    ");\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->route_count, 4);
	CU_ASSERT_TRUE(cfg->routes[0].retained_timestamped && !cfg->routes[0].ignore_retained);
	CU_ASSERT_TRUE(!cfg->routes[1].retained_timestamped && !cfg->routes[1].ignore_retained);
	CU_ASSERT_TRUE(!cfg->routes[2].retained_timestamped && cfg->routes[2].ignore_retained);
	CU_ASSERT_TRUE(cfg->routes[3].retained_timestamped && !cfg->routes[3].ignore_retained);
	CU_ASSERT_EQUAL(cfg->validation.rejected_retention_days, 7);
	config_free(cfg);
	cfg = expect_load("");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_TRUE(cfg->routes[0].retained_timestamped);
	CU_ASSERT_EQUAL(cfg->validation.rejected_retention_days, 30);
	config_free(cfg);
}

static void test_route_errors(void)
{
	expect_one_error(
		"routes = (\n  { topic = \"a/{tenant}/{serial}\"; },\n  { topic = \"b/{tenant}\"; }\n);\n", 3,
		"routes[1]: template 'b/{tenant}' needs exactly one");
	expect_one_error("routes = (\n  { topic = \"a/{tenant}/{serial}\"; format = \"xml\"; }\n);\n", 2,
			 "routes[0]: unknown format 'xml'");
	expect_one_error("routes = (\n  { format = \"json\"; }\n);\n", 2, "routes[0]: 'topic' is required");
	expect_one_error("routes = (\n  { topic = \"a/#/{tenant}/{serial}\"; }\n);\n", 2, "wildcard");
	expect_one_error("\nroutes = ();\n", 2, "'routes' is empty");
	expect_one_error("routes = { topic = \"a/{tenant}/{serial}\"; };\n", 1, "'routes' must be a list");
	expect_one_error("\nroutes = ( \"a/{tenant}/{serial}\" );\n", 2, "routes[0] must be a group");
}

static void test_password_files(void)
{
	char mqtt_pw[64], db_pw[64], text[512];
	struct config *cfg;

	/* First line only; "\n" and "\r\n" endings stripped. */
	write_temp(mqtt_pw, "s3cret pass\nsecond line\n");
	write_temp(db_pw, "db-pass\r\nmore\r\n");
	snprintf(text, sizeof(text),
		 "mqtt = { password_file = \"%s\"; };\ndatabase = { password_file = \"%s\"; };\n", mqtt_pw,
		 db_pw);
	cfg = expect_load(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	ASSERT_STR(cfg->mqtt.password, "s3cret pass");
	ASSERT_STR(cfg->database.password, "db-pass");
	config_free(cfg);
	unlink(mqtt_pw);
	unlink(db_pw);
}

static void test_password_file_missing(void)
{
	expect_one_error("mqtt = {\n  password_file = \"/nonexistent/mqtt2pg/pw\";\n};\n", 2,
			 "cannot read secret file '/nonexistent/mqtt2pg/pw'");
	expect_one_error("database = {\n\n  password_file = \"/nonexistent/mqtt2pg/pw\";\n};\n", 3,
			 "cannot read secret file");
}

/* Secret files: refused when others may read them (issue 12, finding 5), with a sentence naming the fix. */
static void test_secret_file_modes(void)
{
	char path[64], err[512];
	char *secret = NULL;

	write_temp(path, "tok\n");
	CU_ASSERT_EQUAL(secret_read_file(path, &secret, err, sizeof(err)), 0); /* mkstemp: 0600 */
	ASSERT_STR(secret, "tok");
	free(secret);
	CU_ASSERT_FATAL(chmod(path, 0644) == 0);
	CU_ASSERT_EQUAL(secret_read_file(path, &secret, err, sizeof(err)), -EPERM);
	CU_ASSERT_PTR_NULL(secret);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "mode 0644"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "chmod 600"));
	CU_ASSERT_FATAL(chmod(path, 0604) == 0);
	CU_ASSERT_EQUAL(secret_read_file(path, &secret, err, sizeof(err)), -EPERM);
	CU_ASSERT_FATAL(chmod(path, 0640) == 0);
	/* Group-readable is allowed only when root owns the file (the test may run as root or not). */
	CU_ASSERT_EQUAL(secret_read_file(path, &secret, err, sizeof(err)), geteuid() == 0 ? 0 : -EPERM);
	free(secret);
	secret = NULL;
	CU_ASSERT_FATAL(chmod(path, 0660) == 0);
	CU_ASSERT_EQUAL(secret_read_file(path, &secret, err, sizeof(err)), -EPERM);
	CU_ASSERT_FATAL(chmod(path, 0400) == 0);
	CU_ASSERT_EQUAL(secret_read_file(path, &secret, err, sizeof(err)), 0);
	free(secret);
	unlink(path);
	CU_ASSERT_EQUAL(secret_read_file("/tmp", &secret, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
}

static void expect_hidden(const char *given, const char *want, bool found)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", given);
	CU_ASSERT_EQUAL(config_conninfo_hide_password(buf), found);
	if (strcmp(buf, want) != 0)
		fprintf(stderr, "\n  hide(%s) = %s, want %s\n", given, buf, want);
	CU_ASSERT_STRING_EQUAL(buf, want);
}

static void test_conninfo_hide_password(void)
{
	expect_hidden("host=db user=o password=s3cret dbname=x", "host=db user=o password=****** dbname=x",
		      true);
	expect_hidden("password = 's3 \\'c' host=db", "password = '******' host=db", true);
	expect_hidden("host=db password=a\\ b", "host=db password=****", true);
	expect_hidden("host=db user=o", "host=db user=o", false);
	expect_hidden("host=db passwordx=keep", "host=db passwordx=keep", false);
	expect_hidden("postgresql://o:s3cret@db:5432/x", "postgresql://o:******@db:5432/x", true);
	expect_hidden("postgres://o@db/x?sslmode=require&password=pw&x=1",
		      "postgres://o@db/x?sslmode=require&password=**&x=1", true);
	expect_hidden("postgresql://db/x", "postgresql://db/x", false);
	expect_hidden("postgresql://o@db/x?a=b@c:d", "postgresql://o@db/x?a=b@c:d", false);
}

static void test_env_overrides(void)
{
	char mqtt_pw[64], text[512];
	struct config *cfg;

	write_temp(mqtt_pw, "from-file\n");
	snprintf(text, sizeof(text),
		 "mqtt = { client_id = \"from-file\"; uri = \"tcp://file:1883\"; password_file = \"%s\"; };\n"
		 "database = { conninfo = \"host=file\"; admin_conninfo = \"host=file-admin\"; };\n",
		 mqtt_pw);
	setenv("MQTT2PG_MQTT_PASSWORD", "env-mqtt-pw", 1);
	setenv("MQTT2PG_DB_PASSWORD", "env-db-pw", 1);
	setenv("MQTT2PG_CLIENT_ID", "mqtt2pg-pod-7", 1);
	setenv("MQTT2PG_MQTT_URI", "tcp://env:1883", 1);
	setenv("MQTT2PG_DB_CONNINFO", "host=env", 1);
	setenv("MQTT2PG_ADMIN_CONNINFO", "host=env-admin", 1);
	cfg = expect_load(text);
	CU_ASSERT_PTR_NOT_NULL(cfg);
	if (cfg) {
		ASSERT_STR(cfg->mqtt.password, "env-mqtt-pw");
		ASSERT_STR(cfg->database.password, "env-db-pw");
		ASSERT_STR(cfg->mqtt.client_id, "mqtt2pg-pod-7");
		ASSERT_STR(cfg->mqtt.uri, "tcp://env:1883");
		ASSERT_STR(cfg->database.conninfo, "host=env");
		ASSERT_STR(cfg->database.admin_conninfo, "host=env-admin");
	}
	config_free(cfg);

	/* The environment applies to the defaults as well. */
	cfg = config_load(NULL, text, sizeof(text));
	CU_ASSERT_PTR_NOT_NULL(cfg);
	if (cfg) {
		ASSERT_STR(cfg->mqtt.password, "env-mqtt-pw");
		ASSERT_STR(cfg->database.password, "env-db-pw");
		ASSERT_STR(cfg->mqtt.client_id, "mqtt2pg-pod-7");
	}
	config_free(cfg);
	clear_env();
	unlink(mqtt_pw);
}

static void test_env_empty_is_ignored(void)
{
	char errors[256];
	struct config *cfg;

	setenv("MQTT2PG_MQTT_PASSWORD", "", 1);
	setenv("MQTT2PG_CLIENT_ID", "", 1);
	setenv("MQTT2PG_DB_PASSWORD", "", 1);
	cfg = config_load(NULL, errors, sizeof(errors));
	CU_ASSERT_PTR_NOT_NULL(cfg);
	if (cfg) {
		CU_ASSERT_PTR_NULL(cfg->mqtt.password);
		CU_ASSERT_PTR_NULL(cfg->database.password);
		ASSERT_STR(cfg->mqtt.client_id, "mqtt2pg");
	}
	config_free(cfg);
	clear_env();
}

static void test_env_fills_required_client_id(void)
{
	struct config *cfg;

	/* client_id = "" in the file with the pod name from the environment: a Deployment's usual setup. */
	setenv("MQTT2PG_CLIENT_ID", "pod-3", 1);
	cfg = expect_load("mqtt = { client_id = \"\"; };\n");
	CU_ASSERT_PTR_NOT_NULL(cfg);
	if (cfg)
		ASSERT_STR(cfg->mqtt.client_id, "pod-3");
	config_free(cfg);
	clear_env();
}

/* One configuration for every replica: "{hostname}" in the client id becomes the host (pod) name. */
static void test_client_id_template(void)
{
	char host[256] = "", expected[300];
	struct config *cfg;

	CU_ASSERT_EQUAL_FATAL(gethostname(host, sizeof(host) - 1), 0);
	snprintf(expected, sizeof(expected), "mqtt2pg-%s-a", host);
	cfg = expect_load("mqtt = { client_id = \"mqtt2pg-{hostname}-a\"; };\n");
	CU_ASSERT_PTR_NOT_NULL(cfg);
	if (cfg)
		ASSERT_STR(cfg->mqtt.client_id, expected);
	config_free(cfg);
	expect_one_error("mqtt = {\n  client_id = \"x-{pod}\";\n};\n", 1,
			 "the only placeholder is {hostname}");
}

static void test_syntax_error_reports_file_and_line(void)
{
	char path[64], errors[1024];
	char prefix[96];
	struct config *cfg = load_text("mqtt = {\n  qos = 1;\n  uri = ;\n};\n", path, errors, sizeof(errors));

	CU_ASSERT_PTR_NULL(cfg);
	config_free(cfg);
	snprintf(prefix, sizeof(prefix), "%s:3: ", path);
	if (strncmp(errors, prefix, strlen(prefix)) != 0)
		fprintf(stderr, "\n  got: %s\n", errors);
	CU_ASSERT_EQUAL(strncmp(errors, prefix, strlen(prefix)), 0);
	CU_ASSERT(strlen(errors) > strlen(prefix) + 1);
}

static void test_missing_file(void)
{
	char errors[1024];
	struct config *cfg = config_load("/nonexistent/mqtt2pg.conf", errors, sizeof(errors));

	CU_ASSERT_PTR_NULL(cfg);
	config_free(cfg);
	CU_ASSERT_EQUAL(strncmp(errors, "/nonexistent/mqtt2pg.conf: ", 27), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(errors, "cannot read file"));
}

static void test_config_free_null(void)
{
	config_free(NULL);
	CU_PASS("config_free(NULL) is a no-op");
}

/* ---- the key table (config_keys) ---- */

/* The shipped example file, read whole (it documents every key). */
static char *example_file_text(void)
{
	char path[512];
	char *slash, *text;
	FILE *f;
	long len;

	snprintf(path, sizeof(path), "%s", __FILE__);
	for (int i = 0; i < 3; i++) {
		slash = strrchr(path, '/');
		*slash = '\0';
	}
	strncat(path, "/conf/mqtt2pg.conf", sizeof(path) - strlen(path) - 1);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	CU_ASSERT_FATAL(fread(text, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	return text;
}

/* Names unique, defaults within range, reloadable keys scalar, every key documented in the example file. */
static void test_key_table_shape(void)
{
	size_t count;
	const struct config_key *keys = config_keys(&count);
	char *example = example_file_text();

	CU_ASSERT(count >= 50);
	for (size_t i = 0; i < count; i++) {
		const struct config_key *k = &keys[i];
		char dotted[128], line[160];

		config_key_dotted(k, dotted, sizeof(dotted));
		CU_ASSERT_PTR_EQUAL(config_key_find(dotted), k);
		if (k->type == CONFIG_KEY_INT || k->type == CONFIG_KEY_INT64)
			CU_ASSERT(k->min <= k->def && k->def <= k->max);
		if (k->type == CONFIG_KEY_DOUBLE)
			CU_ASSERT(k->dmin <= k->ddef && k->ddef <= k->dmax);
		/* a reloadable string is replaced under whoever reads it: only admin_conninfo, which nothing running reads */
		if (k->reloadable && strcmp(dotted, "database.admin_conninfo") != 0)
			CU_ASSERT(k->type != CONFIG_KEY_STRING && k->type != CONFIG_KEY_SECRET_FILE &&
				  k->type != CONFIG_KEY_ROUTES);
		snprintf(line, sizeof(line), "\n%s%s = ", k->section ? "  " : "", k->name);
		if (!strstr(example, line))
			fprintf(stderr, "\n  %s is not in conf/mqtt2pg.conf\n", dotted);
		CU_ASSERT_PTR_NOT_NULL(strstr(example, line));
	}
	CU_ASSERT_PTR_NULL(config_key_find("mqtt.nope"));
	CU_ASSERT_PTR_NULL(config_key_find("uri"));
	free(example);
}

/* Every key's default is what a configuration without the key holds. */
static void test_key_table_defaults(void)
{
	char errors[1024];
	size_t count;
	const struct config_key *keys = config_keys(&count);
	struct config *cfg = config_load(NULL, errors, sizeof(errors));

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	for (size_t i = 0; i < count; i++) {
		const struct config_key *k = &keys[i];
		const char *at = (const char *)cfg + k->offset;

		switch (k->type) {
		case CONFIG_KEY_INT:
		case CONFIG_KEY_CHOICE:
			CU_ASSERT_EQUAL(*(const int *)at, k->def);
			break;
		case CONFIG_KEY_INT64:
			CU_ASSERT_EQUAL(*(const long long *)at, k->def);
			break;
		case CONFIG_KEY_DOUBLE:
			CU_ASSERT_DOUBLE_EQUAL(*(const double *)at, k->ddef, 0);
			break;
		case CONFIG_KEY_BOOL:
		case CONFIG_KEY_CHOICE_BOOL:
			CU_ASSERT_EQUAL(*(const bool *)at, k->def != 0);
			break;
		case CONFIG_KEY_STRING:
			if (k->sdef)
				ASSERT_STR(*(char *const *)at, k->sdef);
			else
				CU_ASSERT_PTR_NULL(*(char *const *)at);
			break;
		case CONFIG_KEY_SECRET_FILE:
			CU_ASSERT_PTR_NULL(*(char *const *)at);
			CU_ASSERT_PTR_NULL(*(char *const *)((const char *)cfg + k->secret_offset));
			break;
		case CONFIG_KEY_ROUTES:
			CU_ASSERT_EQUAL(cfg->route_count, 1);
			break;
		}
	}
	config_free(cfg);
}

/* "section = { name = value; };" or "name = value;" for a top-level key. */
static void key_text(const struct config_key *k, const char *value, char *text, size_t len)
{
	if (k->section)
		snprintf(text, len, "%s = {\n  %s = %s;\n};\n", k->section, k->name, value);
	else
		snprintf(text, len, "%s = %s;\n", k->name, value);
}

/* Loads "key = value" and says whether an "out of range" error names the key. */
static bool out_of_range(const struct config_key *k, const char *value)
{
	char text[256], path[64], errors[4096], needle[160];
	struct config *cfg;

	key_text(k, value, text, sizeof(text));
	cfg = load_text(text, path, errors, sizeof(errors));
	config_free(cfg);
	snprintf(needle, sizeof(needle), "'%s' = ", k->name);
	return strstr(errors, needle) && strstr(errors, "out of range");
}

/* Each numeric key's bounds: min and max pass, one beyond either is refused with the range. */
static void test_key_table_ranges(void)
{
	size_t count;
	const struct config_key *keys = config_keys(&count);

	for (size_t i = 0; i < count; i++) {
		const struct config_key *k = &keys[i];
		char lo[64], hi[64], below[64], above[64];

		if (k->type == CONFIG_KEY_INT || k->type == CONFIG_KEY_INT64) {
			snprintf(lo, sizeof(lo), "%lldL", k->min);
			snprintf(hi, sizeof(hi), "%lldL", k->max);
			snprintf(below, sizeof(below), "%lldL", k->min - 1);
			snprintf(above, sizeof(above), "%lldL", k->max + 1);
		} else if (k->type == CONFIG_KEY_DOUBLE) {
			snprintf(lo, sizeof(lo), "%.1f", k->dmin);
			snprintf(hi, sizeof(hi), "%.1f", k->dmax);
			snprintf(below, sizeof(below), "%.1f", k->dmin - 1);
			snprintf(above, sizeof(above), "%.1f", k->dmax * 2);
		} else {
			continue;
		}
		if (out_of_range(k, lo) || out_of_range(k, hi) || !out_of_range(k, below) ||
		    !out_of_range(k, above))
			fprintf(stderr, "\n  range of %s.%s is not [%s, %s]\n", k->section ? k->section : "",
				k->name, lo, hi);
		CU_ASSERT_FALSE(out_of_range(k, lo));
		CU_ASSERT_FALSE(out_of_range(k, hi));
		CU_ASSERT_TRUE(out_of_range(k, below));
		CU_ASSERT_TRUE(out_of_range(k, above));
	}
}

/* A name the table does not have is refused in every section and at the top level. */
static void test_key_table_unknown_keys(void)
{
	static const char *const sections[] = { "mqtt", "database",   "validation", "registry",
						"log",	"aggregates", "http",	    "spool" };
	char text[128], fragment[64];

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		snprintf(text, sizeof(text), "%s = {\n  no_such_key = 1;\n};\n", sections[i]);
		snprintf(fragment, sizeof(fragment), "unknown setting '%s.no_such_key'", sections[i]);
		expect_one_error(text, 2, fragment);
	}
	expect_one_error("no_such_key = 1;\n", 1, "unknown setting 'no_such_key'");
	/* a key of one section is unknown in another */
	expect_one_error("http = {\n  uri = \"tcp://x:1\";\n};\n", 2, "unknown setting 'http.uri'");
}

/* A value other than the default for k, as the file would spell it; secret files are written to file. */
static void changed_value(const struct config_key *k, char *value, size_t len, char file[64])
{
	long long n = k->def + 1 <= k->max ? k->def + 1 : k->def - 1;
	size_t words = 0;

	/* Raw retention must outlive validation.max_age (7 days by default): a cross-key rule, not the key's range. */
	if (k->section && strcmp(k->section, "aggregates") == 0 && strcmp(k->name, "raw_retention_days") == 0)
		n = 30;

	switch (k->type) {
	case CONFIG_KEY_INT:
	case CONFIG_KEY_INT64:
		snprintf(value, len, "%lldL", n);
		break;
	case CONFIG_KEY_DOUBLE:
		snprintf(value, len, "%.1f", k->ddef + 1);
		break;
	case CONFIG_KEY_BOOL:
		snprintf(value, len, "%s", k->def ? "false" : "true");
		break;
	case CONFIG_KEY_CHOICE:
	case CONFIG_KEY_CHOICE_BOOL:
		while (k->words[words])
			words++;
		snprintf(value, len, "\"%s\"", k->words[(k->def + 1) % (long long)words]);
		break;
	case CONFIG_KEY_STRING:
		snprintf(value, len, "\"changed-%s\"", k->name);
		break;
	case CONFIG_KEY_SECRET_FILE:
		write_temp(file, "changed-secret\n");
		snprintf(value, len, "\"%s\"", file);
		break;
	case CONFIG_KEY_ROUTES:
		snprintf(value, len, "( { topic = \"changed/{tenant}/{serial}\"; } )");
		break;
	}
}

struct diff_seen {
	const struct config_key *keys[8];
	size_t count;
};

static void note_change(const struct config_key *key, void *ctx)
{
	struct diff_seen *seen = ctx;

	if (seen->count < 8)
		seen->keys[seen->count] = key;
	seen->count++;
}

/*
 * Reload's diff from the table: changing any one key is reported as exactly that key, restart-required
 * keys counted; applying the reloadable ones leaves only the restart-required one different.
 */
static void test_key_table_diff_every_key(void)
{
	char errors[4096];
	size_t count;
	const struct config_key *keys = config_keys(&count);
	struct config *base = config_load(NULL, errors, sizeof(errors));

	CU_ASSERT_PTR_NOT_NULL_FATAL(base);
	for (size_t i = 0; i < count; i++) {
		const struct config_key *k = &keys[i];
		char value[160], text[512], path[64], file[64] = "", dotted[128];
		struct diff_seen seen = { .count = 0 };
		struct config_validation policy = base->validation;
		struct config *fresh;
		int restart;

		changed_value(k, value, sizeof(value), file);
		key_text(k, value, text, sizeof(text));
		fresh = load_text(text, path, errors, sizeof(errors));
		if (file[0])
			unlink(file);
		config_key_dotted(k, dotted, sizeof(dotted));
		if (!fresh)
			fprintf(stderr, "\n  %s = %s refused:\n%s\n", dotted, value, errors);
		CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
		restart = config_diff(base, NULL, fresh, note_change, &seen);
		if (seen.count != 1 || seen.keys[0] != k)
			fprintf(stderr, "\n  changing %s reported %zu key(s)\n", dotted, seen.count);
		CU_ASSERT_EQUAL(seen.count, 1);
		CU_ASSERT_PTR_EQUAL(seen.keys[0], k);
		CU_ASSERT_EQUAL(restart, k->reloadable ? 0 : 1);
		if (k->reloadable) {
			/* applied: to a copy of base and the policy; the diff against them is then empty */
			struct config running = *base;

			running.database.admin_conninfo =
				NULL; /* a string applied is replaced: not base's to free */
			config_apply_reloadable(&running, &policy, fresh);
			seen.count = 0;
			CU_ASSERT_EQUAL(config_diff(&running, &policy, fresh, note_change, &seen), 0);
			CU_ASSERT_EQUAL(seen.count, 0);
			/* validation keys go to the policy only: the started validation is not written */
			CU_ASSERT_EQUAL(
				memcmp(&running.validation, &base->validation, sizeof(base->validation)), 0);
			free(running.database.admin_conninfo);
		}
		config_free(fresh);
	}
	config_free(base);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_defaults_when_path_null),
		UNIT_TEST(test_empty_file_is_defaults),
		UNIT_TEST(test_example_file_is_defaults),
		UNIT_TEST(test_every_key_read),
		UNIT_TEST(test_empty_string_means_unset),
		UNIT_TEST(test_unknown_keys_with_line),
		UNIT_TEST(test_type_errors),
		UNIT_TEST(test_group_of_wrong_type),
		UNIT_TEST(test_range_errors),
		UNIT_TEST(test_range_limits_accepted),
		UNIT_TEST(test_several_errors_at_once),
		UNIT_TEST(test_errors_buffer_is_bounded),
		UNIT_TEST(test_cross_checks),
		UNIT_TEST(test_policies_and_levels),
		UNIT_TEST(test_routes),
		UNIT_TEST(test_retained_policies),
		UNIT_TEST(test_route_errors),
		UNIT_TEST(test_password_files),
		UNIT_TEST(test_password_file_missing),
		UNIT_TEST(test_secret_file_modes),
		UNIT_TEST(test_conninfo_hide_password),
		UNIT_TEST(test_env_overrides),
		UNIT_TEST(test_env_empty_is_ignored),
		UNIT_TEST(test_env_fills_required_client_id),
		UNIT_TEST(test_client_id_template),
		UNIT_TEST(test_syntax_error_reports_file_and_line),
		UNIT_TEST(test_missing_file),
		UNIT_TEST(test_config_free_null),
		UNIT_TEST(test_key_table_shape),
		UNIT_TEST(test_key_table_defaults),
		UNIT_TEST(test_key_table_ranges),
		UNIT_TEST(test_key_table_unknown_keys),
		UNIT_TEST(test_key_table_diff_every_key),
	};

	return unit_run("config", suite_init, NULL, tests, UNIT_COUNT(tests));
}
