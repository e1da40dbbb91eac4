// SPDX-License-Identifier: Apache-2.0
/*
 * http: libmicrohttpd with its internal polling thread; each request is answered from atomics, so a
 * scrape never waits for the data path and the data path never waits for a scrape.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define MODULE "http"
#define LOOP_STALL_MS 10000
#define METRICS_CAP 65536

struct http_server {
	struct MHD_Daemon *daemon;
	struct health *health;
	struct stats *stats;
};

struct writer_buf {
	char *buf;
	size_t cap, len;
};

static void emit(struct writer_buf *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct writer_buf *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->len >= w->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->cap - w->len) {
		w->buf[w->len] = '\0'; /* drop the partial line */
		w->cap = w->len;
		return;
	}
	w->len += (size_t)n;
}

static void counter(struct writer_buf *w, const char *name, const char *help, uint64_t value)
{
	emit(w, "# HELP mqtt2pg_%s %s\n# TYPE mqtt2pg_%s counter\nmqtt2pg_%s %llu\n", name, help, name, name,
	     (unsigned long long)value);
}

static void gauge(struct writer_buf *w, const char *name, const char *help, double value)
{
	emit(w, "# HELP mqtt2pg_%s %s\n# TYPE mqtt2pg_%s gauge\nmqtt2pg_%s %.17g\n", name, help, name, name, value);
}

static void histogram(struct writer_buf *w, const char *name, const char *help, struct stats_histogram *h)
{
	uint64_t cumulative = 0;

	emit(w, "# HELP mqtt2pg_%s %s\n# TYPE mqtt2pg_%s histogram\n", name, help, name);
	for (int i = 0; i < STATS_LATENCY_BUCKETS; i++) {
		cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < STATS_LATENCY_BUCKETS - 1)
			emit(w, "mqtt2pg_%s_bucket{le=\"%g\"} %llu\n", name, stats_latency_bounds[i],
			     (unsigned long long)cumulative);
		else
			emit(w, "mqtt2pg_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
	}
	emit(w, "mqtt2pg_%s_sum %.6f\nmqtt2pg_%s_count %llu\n", name,
	     (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name, (unsigned long long)cumulative);
}

static void ready_gauges(struct writer_buf *w, const struct health *health);

/* The spool's state and the MQTT callback's waits (issue 13): intake blocks instead of dropping. */
static void render_intake(struct writer_buf *w, struct stats *s)
{
	uint64_t state = STATS_GET(s, spool_state);

	emit(w,
	     "# HELP mqtt2pg_spool_state 1 for the spool's current state; every state but ok blocks intake.\n"
	     "# TYPE mqtt2pg_spool_state gauge\n");
	for (int i = 0; i < STATS_SPOOL_STATE_COUNT; i++)
		emit(w, "mqtt2pg_spool_state{state=\"%s\"} %d\n", stats_spool_state_name(i),
		     state == (uint64_t)i);
	emit(w, "# HELP mqtt2pg_spool_problems_total Times the spool entered each problem state.\n"
		"# TYPE mqtt2pg_spool_problems_total counter\n");
	for (int i = 1; i < STATS_SPOOL_STATE_COUNT; i++)
		emit(w, "mqtt2pg_spool_problems_total{state=\"%s\"} %llu\n", stats_spool_state_name(i),
		     (unsigned long long)STATS_GET(s, spool_problems[i]));
	emit(w,
	     "# HELP mqtt2pg_spool_records_lost_total Spooled records lost, by reason (each one is logged).\n"
	     "# TYPE mqtt2pg_spool_records_lost_total counter\n");
	for (int i = 0; i < STATS_LOST_REASON_COUNT; i++)
		emit(w, "mqtt2pg_spool_records_lost_total{reason=\"%s\"} %llu\n", stats_lost_reason_name(i),
		     (unsigned long long)STATS_GET(s, spool_records_lost[i]));
	gauge(w, "intake_blocked",
	      "1 while the MQTT callback waits to make a message durable (nothing more is read).",
	      (double)STATS_GET(s, intake_blocked));
	counter(w, "intake_blocks_total", "Times the MQTT callback began to wait.",
		STATS_GET(s, intake_blocks));
	emit(w,
	     "# HELP mqtt2pg_intake_blocked_seconds_total Time the MQTT callback spent waiting.\n"
	     "# TYPE mqtt2pg_intake_blocked_seconds_total counter\nmqtt2pg_intake_blocked_seconds_total %.3f\n",
	     (double)STATS_GET(s, intake_blocked_ms) / 1000.0);
}

size_t http_render_metrics(const struct health *health, struct stats *s, char *buf, size_t cap)
{
	struct writer_buf w = {buf, cap, 0};

	buf[0] = '\0';
	emit(&w, "# HELP mqtt2pg_build_info Build information.\n# TYPE mqtt2pg_build_info gauge\n"
		 "mqtt2pg_build_info{version=\"%s\"} 1\n",
	     MQTT2PG_VERSION);
	counter(&w, "messages_received_total", "MQTT messages taken from the broker.", STATS_GET(s, messages_received));
	counter(&w, "messages_accepted_total", "Messages that passed validation.", STATS_GET(s, messages_accepted));
	emit(&w, "# HELP mqtt2pg_messages_rejected_total Messages rejected, by reason.\n"
		 "# TYPE mqtt2pg_messages_rejected_total counter\n");
	for (int i = 1; i < REJECT_REASON_COUNT; i++)
		emit(&w, "mqtt2pg_messages_rejected_total{reason=\"%s\"} %llu\n", reject_reason_name(i),
		     (unsigned long long)STATS_GET(s, messages_rejected[i]));
	emit(&w, "# HELP mqtt2pg_messages_ignored_total Messages recognised as no reading (status, LWT, retained, "
		 "no value) and dropped, by reason.\n# TYPE mqtt2pg_messages_ignored_total counter\n");
	for (int i = 1; i < IGNORE_REASON_COUNT; i++)
		emit(&w, "mqtt2pg_messages_ignored_total{reason=\"%s\"} %llu\n", ignore_reason_name(i),
		     (unsigned long long)STATS_GET(s, messages_ignored[i]));
	emit(&w,
	     "# HELP mqtt2pg_values_skipped_total Values passed over inside a message (null, boolean, string, "
	     "ignored or unlisted point, measurement), by reason.\n# TYPE mqtt2pg_values_skipped_total counter\n");
	for (int i = 0; i < SKIP_REASON_COUNT; i++)
		emit(&w, "mqtt2pg_values_skipped_total{reason=\"%s\"} %llu\n", skip_reason_name(i),
		     (unsigned long long)STATS_GET(s, values_skipped[i]));
	counter(&w, "points_dropped_total", "Samples of unknown points dropped (policy drop).", STATS_GET(s, points_dropped));
	counter(&w, "rows_inserted_total", "Readings committed as new rows.", STATS_GET(s, rows_inserted));
	counter(&w, "rows_duplicate_total", "Readings that already existed (redelivery, replay).",
		STATS_GET(s, rows_duplicate));
	counter(&w, "batches_committed_total", "Batch transactions committed.", STATS_GET(s, batches_committed));
	histogram(&w, "batch_duration_seconds", "A batch transaction, BEGIN to COMMIT.", &s->batch_seconds);
	histogram(&w, "end_to_end_lag_seconds", "A message, received from the broker to committed.", &s->lag_seconds);
	counter(&w, "rejects_recorded_total", "Rows committed to rejected_messages.", STATS_GET(s, rejects_recorded));
	emit(&w, "# HELP mqtt2pg_db_errors_total Database errors, by kind.\n# TYPE mqtt2pg_db_errors_total counter\n"
		 "mqtt2pg_db_errors_total{kind=\"transient\"} %llu\nmqtt2pg_db_errors_total{kind=\"permanent\"} %llu\n",
	     (unsigned long long)STATS_GET(s, db_errors_transient), (unsigned long long)STATS_GET(s, db_errors_permanent));
	counter(&w, "db_reconnects_total", "Writer reconnections to the database.", STATS_GET(s, db_reconnects));
	gauge(&w, "db_writers_connected", "Writer connections currently usable.",
	      (double)atomic_load(&health->writers_connected));
	gauge(&w, "db_writers_writable", "Writer connections on which the database accepts writes (not read-only).",
	      (double)atomic_load(&health->writers_writable));
	gauge(&w, "db_writers", "Writer connections configured.", (double)atomic_load(&health->writers_total));
	gauge(&w, "queue_depth", "Messages accepted and waiting for a writer.", (double)STATS_GET(s, queue_depth));
	counter(&w, "enqueue_waits_total", "Times the MQTT callback found a writer queue full.",
		STATS_GET(s, enqueue_waits));
	gauge(&w, "mqtt_connected", "1 while connected and subscribed.", atomic_load(&health->mqtt_connected) ? 1 : 0);
	counter(&w, "mqtt_connects_total", "Successful connects to the broker.", STATS_GET(s, mqtt_connects));
	counter(&w, "mqtt_connection_lost_total", "Connections to the broker lost.", STATS_GET(s, mqtt_connection_lost));
	counter(&w, "registry_reloads_total", "Registry snapshots loaded.", STATS_GET(s, registry_reloads));
	gauge(&w, "aggregate_leader", "1 while this replica runs the aggregate job.", (double)STATS_GET(s, agg_leader));
	counter(&w, "aggregate_runs_total", "Aggregate job runs.", STATS_GET(s, agg_runs));
	counter(&w, "aggregate_buckets_total", "Buckets recomputed by the aggregate job.", STATS_GET(s, agg_buckets));
	gauge(&w, "aggregate_last_run_timestamp_seconds", "Unix time of the last aggregate run.",
	      (double)STATS_GET(s, agg_last_run_unix));
	gauge(&w, "aggregate_lag_seconds", "Age of the oldest dirty bucket after the last run.",
	      (double)STATS_GET(s, agg_lag_ms) / 1000.0);
	gauge(&w, "aggregate_last_pass_seconds", "Duration of the last aggregate run (partitions, retention, recompute).",
	      (double)STATS_GET(s, agg_last_pass_ms) / 1000.0);
	gauge(&w, "spool_bytes", "Bytes in the durable spool.", (double)STATS_GET(s, spool_bytes));
	gauge(&w, "spool_backlog", "Spooled records not yet committed to the database.", (double)STATS_GET(s, spool_backlog));
	counter(&w, "spool_full_total", "Appends refused because the spool was full (intake paused).",
		STATS_GET(s, spool_full_waits));
	counter(&w, "spool_write_errors_total", "Spool writes that failed (disk errors).", STATS_GET(s, spool_write_errors));
	counter(&w, "spool_torn_records_total", "Torn records dropped at recovery.", STATS_GET(s, spool_torn_records));
	render_intake(&w, s);
	gauge(&w, "draining", "1 while shutting down.", atomic_load(&health->draining) ? 1 : 0);
	ready_gauges(&w, health);
	return w.len;
}

static bool loop_alive(const struct health *h)
{
	return clock_monotonic_ms() - atomic_load(&h->loop_heartbeat_ms) < LOOP_STALL_MS;
}

static bool not_draining(const struct health *h)
{
	return !atomic_load(&h->draining);
}

static bool broker_connected(const struct health *h)
{
	return atomic_load(&h->mqtt_connected);
}

static bool writers_connected(const struct health *h)
{
	return atomic_load(&h->writers_connected) > 0;
}

/* A read-only database (failover to a standby, a managed service's "disk full" mode) takes no rows: what
 * arrives waits in the spool, and a load balancer should prefer a replica that can write. */
static bool writers_writable(const struct health *h)
{
	return atomic_load(&h->writers_writable) > 0;
}

static bool registry_loaded(const struct health *h)
{
	return atomic_load(&h->registry_loaded);
}

/* One row per check: adding one is adding a row (and the health field it reads). */
static const struct http_ready_check ready_checks[] = {
	{"not_draining", "draining", not_draining},
	{"broker_connected", "broker not connected", broker_connected},
	{"db_writers_connected", "no database connection", writers_connected},
	{"db_writers_writable", "database read-only (db_writers_writable)", writers_writable},
	{"registry_loaded", "registry not loaded", registry_loaded},
	{"main_loop", "main loop stalled", loop_alive},
};

const struct http_ready_check *http_ready_checks(size_t *count)
{
	*count = sizeof(ready_checks) / sizeof(ready_checks[0]);
	return ready_checks;
}

/* Empty when ready, else the reasons, comma-separated. A database nobody is connected to is not also
 * reported as read-only. */
static void readiness(const struct health *h, char *why, size_t cap)
{
	why[0] = '\0';
	for (size_t i = 0; i < sizeof(ready_checks) / sizeof(ready_checks[0]); i++) {
		const struct http_ready_check *c = &ready_checks[i];
		if (c->passes(h) || (c->passes == writers_writable && !writers_connected(h)))
			continue;
		strncat(why, c->why, cap - strlen(why) - 1);
		strncat(why, ",", cap - strlen(why) - 1);
	}
	if (why[0])
		why[strlen(why) - 1] = '\0';
}

static void ready_gauges(struct writer_buf *w, const struct health *health)
{
	emit(w, "# HELP mqtt2pg_ready 1 while the readiness check passes (all must for /readyz).\n"
		"# TYPE mqtt2pg_ready gauge\n");
	for (size_t i = 0; i < sizeof(ready_checks) / sizeof(ready_checks[0]); i++)
		emit(w, "mqtt2pg_ready{check=\"%s\"} %d\n", ready_checks[i].name,
		     ready_checks[i].passes(health) ? 1 : 0);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn(MODULE, "%s", line);
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status, const char *type, char *body,
			       size_t len, bool owned)
{
	struct MHD_Response *response = MHD_create_response_from_buffer(
		len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	MHD_add_response_header(response, "Content-Type", type);
	rc = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct http_server *server = cls;
	char text[256];

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n", 19, false);
	if (strcmp(url, "/healthz") == 0) {
		bool alive = loop_alive(server->health);
		snprintf(text, sizeof(text), "%s\n", alive ? "ok" : "main loop stalled");
		return respond(connection, alive ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", text,
			       strlen(text), false);
	}
	if (strcmp(url, "/readyz") == 0) {
		char why[200];
		readiness(server->health, why, sizeof(why));
		snprintf(text, sizeof(text), "%s\n", why[0] ? why : "ready");
		return respond(connection, why[0] ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, "text/plain", text,
			       strlen(text), false);
	}
	if (strcmp(url, "/metrics") == 0) {
		char *body = xmalloc(METRICS_CAP);
		size_t len = http_render_metrics(server->health, server->stats, body, METRICS_CAP);
		return respond(connection, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len, true);
	}
	return respond(connection, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10, false);
}

struct http_server *http_start(const char *listen_address, int port, struct health *health, struct stats *stats)
{
	struct http_server *server = xcalloc(1, sizeof(*server));
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	if (inet_pton(AF_INET, listen_address, &addr.sin_addr) != 1) {
		log_error(MODULE, "http.listen '%s' is not an IPv4 address", listen_address);
		free(server);
		return NULL;
	}
	server->health = health;
	server->stats = stats;
	server->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
					  NULL, handle, server, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
					  MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
					  MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
	if (!server->daemon) {
		log_error(MODULE, "cannot listen on %s:%d for /healthz, /readyz, /metrics", listen_address, port);
		free(server);
		return NULL;
	}
	log_info(MODULE, "serving /healthz, /readyz and /metrics on %s:%d", listen_address, port);
	return server;
}

void http_stop(struct http_server *server)
{
	if (!server)
		return;
	MHD_stop_daemon(server->daemon);
	free(server);
}
