// SPDX-License-Identifier: Apache-2.0
/*
 * http: libmicrohttpd driven by our own thread (MHD_run_wait in a loop); each request is answered from
 * atomics, so a scrape never waits for the data path and the data path never waits for a scrape.
 *
 * Why our own loop rather than MHD's internal thread: MHD's timeout is an idle timeout (a client sending a
 * byte every few seconds keeps its connection forever) and its connection limits refuse the newcomer, so 64
 * slowloris connections made /healthz unreachable and the liveness probe would restart a healthy pod. Our
 * loop tracks every connection (MHD_OPTION_NOTIFY_CONNECTION) and closes the ones that have not delivered a
 * request within http.timeout, and the oldest unfinished one when a limit is exceeded. Every MHD callback
 * and every close runs on this one thread, so the connection list needs no lock, and a connection's socket
 * is still open while it is in the list (MHD notifies "closed" before it closes the socket): shutdown(2) on
 * it is safe and makes MHD close it in its next pass.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/clock.h"
#include "config.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MODULE		"http"
#define LOOP_STALL_MS	10000
#define METRICS_CAP	65536
#define POLL_MS		200 /* the loop's longest wait: deadlines and stop are checked at least this often */
#define EVICTION_LOG_MS 10000 /* evictions are logged in one summary line at most this often */

/* One TCP connection, from MHD's "started" to its "closed" notification. */
struct http_peer {
	struct http_peer *prev, *next;
	MHD_socket fd;
	struct sockaddr_storage addr;
	int64_t since_ms; /* when it was accepted, or when its last request was answered (keep-alive) */
	bool busy;	  /* a whole request has arrived and is being answered */
	bool closing;	  /* shut down by us; MHD will close it */
};

struct http_server {
	struct MHD_Daemon *daemon;
	struct health *health;
	struct stats *stats;
	pthread_t thread;
	atomic_bool stopping;
	char *listen_address;
	char *metrics_token; /* NULL: /metrics is open */
	int max_connections, max_per_client;
	int64_t timeout_ms;
	struct http_peer *oldest, *newest; /* every open connection, in the order they became idle */
	uint64_t logged_evictions;
	int64_t logged_evictions_ms;
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
	emit(w, "# HELP mqtt2pg_%s %s\n# TYPE mqtt2pg_%s gauge\nmqtt2pg_%s %.17g\n", name, help, name, name,
	     value);
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
			emit(w, "mqtt2pg_%s_bucket{le=\"+Inf\"} %llu\n", name,
			     (unsigned long long)cumulative);
	}
	emit(w, "mqtt2pg_%s_sum %.6f\nmqtt2pg_%s_count %llu\n", name,
	     (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
	     (unsigned long long)cumulative);
}

static void ready_gauges(struct writer_buf *w, const struct health *health, struct stats *s);

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
	struct writer_buf w = { buf, cap, 0 };

	buf[0] = '\0';
	emit(&w,
	     "# HELP mqtt2pg_build_info Build information.\n# TYPE mqtt2pg_build_info gauge\n"
	     "mqtt2pg_build_info{version=\"%s\"} 1\n",
	     MQTT2PG_VERSION);
	counter(&w, "messages_received_total", "MQTT messages taken from the broker.",
		STATS_GET(s, messages_received));
	counter(&w, "messages_accepted_total", "Messages that passed validation.",
		STATS_GET(s, messages_accepted));
	emit(&w, "# HELP mqtt2pg_messages_rejected_total Messages rejected, by reason.\n"
		 "# TYPE mqtt2pg_messages_rejected_total counter\n");
	for (int i = 1; i < REJECT_REASON_COUNT; i++)
		emit(&w, "mqtt2pg_messages_rejected_total{reason=\"%s\"} %llu\n", reject_reason_name(i),
		     (unsigned long long)STATS_GET(s, messages_rejected[i]));
	emit(&w,
	     "# HELP mqtt2pg_messages_ignored_total Messages recognised as no reading (status, LWT, retained, "
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
	counter(&w, "points_dropped_total", "Samples of unknown points dropped (policy drop).",
		STATS_GET(s, points_dropped));
	counter(&w, "rows_inserted_total", "Readings committed as new rows.", STATS_GET(s, rows_inserted));
	counter(&w, "rows_duplicate_total", "Readings that already existed (redelivery, replay).",
		STATS_GET(s, rows_duplicate));
	counter(&w, "batches_committed_total", "Batch transactions committed.",
		STATS_GET(s, batches_committed));
	histogram(&w, "batch_duration_seconds", "A batch transaction, BEGIN to COMMIT.", &s->batch_seconds);
	histogram(&w, "end_to_end_lag_seconds", "A message, received from the broker to committed.",
		  &s->lag_seconds);
	counter(&w, "rejects_recorded_total", "Rows committed to rejected_messages.",
		STATS_GET(s, rejects_recorded));
	emit(&w,
	     "# HELP mqtt2pg_db_errors_total Database errors, by kind.\n# TYPE mqtt2pg_db_errors_total counter\n"
	     "mqtt2pg_db_errors_total{kind=\"transient\"} %llu\nmqtt2pg_db_errors_total{kind=\"permanent\"} %llu\n",
	     (unsigned long long)STATS_GET(s, db_errors_transient),
	     (unsigned long long)STATS_GET(s, db_errors_permanent));
	counter(&w, "db_reconnects_total", "Writer reconnections to the database.",
		STATS_GET(s, db_reconnects));
	gauge(&w, "db_writers_connected", "Writer connections currently usable.",
	      (double)atomic_load(&health->writers_connected));
	gauge(&w, "db_writers_writable",
	      "Writer connections on which the database accepts writes (not read-only).",
	      (double)atomic_load(&health->writers_writable));
	gauge(&w, "db_writers", "Writer connections configured.",
	      (double)atomic_load(&health->writers_total));
	gauge(&w, "queue_depth", "Messages accepted and waiting for a writer.",
	      (double)STATS_GET(s, queue_depth));
	counter(&w, "enqueue_waits_total", "Times the MQTT callback found a writer queue full.",
		STATS_GET(s, enqueue_waits));
	gauge(&w, "mqtt_connected", "1 while connected and subscribed.",
	      atomic_load(&health->mqtt_connected) ? 1 : 0);
	counter(&w, "mqtt_connects_total", "Successful connects to the broker.", STATS_GET(s, mqtt_connects));
	counter(&w, "mqtt_connection_lost_total", "Connections to the broker lost.",
		STATS_GET(s, mqtt_connection_lost));
	counter(&w, "registry_reloads_total", "Registry snapshots loaded.", STATS_GET(s, registry_reloads));
	gauge(&w, "aggregate_leader",
	      "1 while this replica runs the aggregate housekeeping (partitions, retention).",
	      (double)STATS_GET(s, agg_leader));
	gauge(&w, "aggregate_shards",
	      "Shards this replica's aggregate connections drained in their last passes.",
	      (double)STATS_GET(s, agg_shards));
	counter(&w, "aggregate_runs_total", "Aggregate job runs.", STATS_GET(s, agg_runs));
	counter(&w, "aggregate_buckets_total", "Buckets recomputed by the aggregate job.",
		STATS_GET(s, agg_buckets));
	gauge(&w, "aggregate_last_run_timestamp_seconds", "Unix time of the last aggregate run.",
	      (double)STATS_GET(s, agg_last_run_unix));
	gauge(&w, "aggregate_lag_seconds", "Age of the oldest dirty bucket after the last run.",
	      (double)STATS_GET(s, agg_lag_ms) / 1000.0);
	gauge(&w, "aggregate_failing_runs", "Aggregate job runs in a row that failed (0 after a good one).",
	      (double)STATS_GET(s, agg_failing));
	gauge(&w, "aggregate_last_pass_seconds",
	      "Duration of the last aggregate run (partitions, retention, recompute).",
	      (double)STATS_GET(s, agg_last_pass_ms) / 1000.0);
	gauge(&w, "spool_bytes", "Bytes in the durable spool.", (double)STATS_GET(s, spool_bytes));
	gauge(&w, "spool_backlog", "Spooled records not yet committed to the database.",
	      (double)STATS_GET(s, spool_backlog));
	counter(&w, "spool_full_total", "Appends refused because the spool was full (intake paused).",
		STATS_GET(s, spool_full_waits));
	counter(&w, "spool_write_errors_total", "Spool writes that failed (disk errors).",
		STATS_GET(s, spool_write_errors));
	counter(&w, "spool_torn_records_total", "Torn records dropped at recovery.",
		STATS_GET(s, spool_torn_records));
	render_intake(&w, s);
	counter(&w, "http_connections_evicted_total",
		"HTTP connections closed to make room for a new one (http.max_connections, per client).",
		STATS_GET(s, http_evicted));
	counter(&w, "http_requests_timed_out_total",
		"HTTP connections closed because no whole request arrived in "
		"http.timeout.",
		STATS_GET(s, http_timed_out));
	gauge(&w, "draining", "1 while shutting down.", atomic_load(&health->draining) ? 1 : 0);
	ready_gauges(&w, health, s);
	return w.len;
}

static bool loop_alive(const struct health *h, struct stats *s)
{
	(void)s;
	return clock_monotonic_ms() - atomic_load(&h->loop_heartbeat_ms) < LOOP_STALL_MS;
}

static bool not_draining(const struct health *h, struct stats *s)
{
	(void)s;
	return !atomic_load(&h->draining);
}

static bool broker_connected(const struct health *h, struct stats *s)
{
	(void)s;
	return atomic_load(&h->mqtt_connected);
}

static bool writers_connected(const struct health *h, struct stats *s)
{
	(void)s;
	return atomic_load(&h->writers_connected) > 0;
}

/* A read-only database (failover to a standby, a managed service's "disk full" mode) takes no rows: what
 * arrives waits in the spool, and a load balancer should prefer a replica that can write. */
static bool writers_writable(const struct health *h, struct stats *s)
{
	(void)s;
	return atomic_load(&h->writers_writable) > 0;
}

static bool registry_loaded(const struct health *h, struct stats *s)
{
	(void)s;
	return atomic_load(&h->registry_loaded);
}

/* The spool takes records (not full, no disk error, its directory present): otherwise intake is paused. */
static bool spool_ok(const struct health *h, struct stats *s)
{
	(void)h;
	return STATS_GET(s, spool_state) == STATS_SPOOL_OK;
}

/* The MQTT callback is not waiting to make a message durable (while it waits, nothing more is read). */
static bool intake_flowing(const struct health *h, struct stats *s)
{
	(void)h;
	return STATS_GET(s, intake_blocked) == 0;
}

/* The aggregate job is not failing run after run (no database connection, or its pass failing). */
static bool aggregates_ok(const struct health *h, struct stats *s)
{
	(void)h;
	return STATS_GET(s, agg_failing) < AGGREGATE_FAILING_RUNS;
}

/* One row per check: adding one is adding a row (and the health or stats field it reads). */
static const struct http_ready_check ready_checks[] = {
	{ "not_draining", "draining", not_draining },
	{ "broker_connected", "broker not connected", broker_connected },
	{ "db_writers_connected", "no database connection", writers_connected },
	{ "db_writers_writable", "database read-only (db_writers_writable)", writers_writable },
	{ "spool_ok", "spool not accepting records (spool_state)", spool_ok },
	{ "intake_flowing", "intake blocked (intake_blocked)", intake_flowing },
	{ "registry_loaded", "registry not loaded", registry_loaded },
	{ "aggregates_ok", "aggregate job failing (aggregate_failing_runs)", aggregates_ok },
	{ "main_loop", "main loop stalled", loop_alive },
};

const struct http_ready_check *http_ready_checks(size_t *count)
{
	*count = sizeof(ready_checks) / sizeof(ready_checks[0]);
	return ready_checks;
}

/* Empty when ready, else the reasons, comma-separated. A database nobody is connected to is not also
 * reported as read-only. */
static void readiness(const struct health *h, struct stats *s, char *why, size_t cap)
{
	why[0] = '\0';
	for (size_t i = 0; i < sizeof(ready_checks) / sizeof(ready_checks[0]); i++) {
		const struct http_ready_check *c = &ready_checks[i];
		if (c->passes(h, s) || (c->passes == writers_writable && !writers_connected(h, s)))
			continue;
		strncat(why, c->why, cap - strlen(why) - 1);
		strncat(why, ",", cap - strlen(why) - 1);
	}
	if (why[0])
		why[strlen(why) - 1] = '\0';
}

static void ready_gauges(struct writer_buf *w, const struct health *health, struct stats *s)
{
	emit(w, "# HELP mqtt2pg_ready 1 while the readiness check passes (all must for /readyz).\n"
		"# TYPE mqtt2pg_ready gauge\n");
	for (size_t i = 0; i < sizeof(ready_checks) / sizeof(ready_checks[0]); i++)
		emit(w, "mqtt2pg_ready{check=\"%s\"} %d\n", ready_checks[i].name,
		     ready_checks[i].passes(health, s) ? 1 : 0);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn(MODULE, "%s", line);
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status, const char *type,
			       char *body, size_t len, bool owned)
{
	struct MHD_Response *response = MHD_create_response_from_buffer(
		len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	MHD_add_response_header(response, "Content-Type", type);
	rc = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return rc;
}

/* --- connection bookkeeping (all on the server's thread) ------------------------------------------------ */

static bool same_client(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return true;
}

static void unlink_peer(struct http_server *server, struct http_peer *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		server->oldest = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		server->newest = p->prev;
	p->prev = p->next = NULL;
}

/* Puts p at the young end (accepted, or idle again after answering a request). */
static void append_peer(struct http_server *server, struct http_peer *p)
{
	p->prev = server->newest;
	if (server->newest)
		server->newest->next = p;
	else
		server->oldest = p;
	server->newest = p;
}

/* Ends p's connection: MHD sees the shutdown in its next pass, closes the socket and notifies us. */
static void close_peer(struct http_peer *p)
{
	p->closing = true;
	shutdown(p->fd, SHUT_RDWR);
}

/* Open connections (not already closing), all or of one client. */
static int count_peers(const struct http_server *server, const struct sockaddr_storage *client)
{
	int n = 0;

	for (const struct http_peer *p = server->oldest; p; p = p->next)
		n += !p->closing && (!client || same_client(&p->addr, client));
	return n;
}

/* Closes the connection, of client or of anyone, that has waited longest without a request being answered.
 * A connection in the middle of being answered is never chosen. */
static void evict_oldest(struct http_server *server, const struct sockaddr_storage *client)
{
	for (struct http_peer *p = server->oldest; p; p = p->next) {
		if (p->closing || p->busy || (client && !same_client(&p->addr, client)))
			continue;
		close_peer(p);
		STATS_ADD(server->stats, http_evicted, 1);
		return;
	}
}

static struct http_peer *peer_of(struct MHD_Connection *connection)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *server = cls;
	struct http_peer *p = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (p) {
			unlink_peer(server, p);
			free(p);
			*socket_context = NULL;
		}
		return;
	}
	const union MHD_ConnectionInfo *fd =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *addr =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!fd)
		return; /* nothing to track it by; MHD's own limit and idle timeout still apply */
	p = xcalloc(1, sizeof(*p));
	p->fd = fd->connect_fd;
	p->since_ms = clock_monotonic_ms();
	if (addr && addr->client_addr)
		memcpy(&p->addr, addr->client_addr,
		       addr->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
								  sizeof(struct sockaddr_in));
	append_peer(server, p);
	*socket_context = p;
	/* The newcomer is the youngest: it is closed itself only when every other one is being answered. */
	if (count_peers(server, &p->addr) > server->max_per_client)
		evict_oldest(server, &p->addr);
	if (count_peers(server, NULL) > server->max_connections)
		evict_oldest(server, NULL);
}

/* A request has been answered: its connection (keep-alive) is idle again, with a new deadline. */
static void on_request_done(void *cls, struct MHD_Connection *connection, void **req_cls,
			    enum MHD_RequestTerminationCode toe)
{
	struct http_server *server = cls;
	struct http_peer *p = peer_of(connection);

	(void)req_cls;
	(void)toe;
	if (!p)
		return;
	p->busy = false;
	p->since_ms = clock_monotonic_ms();
	unlink_peer(server, p);
	append_peer(server, p);
}

/* Closes connections whose request has not arrived within http.timeout; logs evictions now and then. */
static void reap(struct http_server *server, int64_t now)
{
	uint64_t evicted;

	for (struct http_peer *p = server->oldest; p && now - p->since_ms > server->timeout_ms; p = p->next) {
		if (p->closing || p->busy)
			continue;
		close_peer(p);
		STATS_ADD(server->stats, http_timed_out, 1);
	}
	evicted = STATS_GET(server->stats, http_evicted) + STATS_GET(server->stats, http_timed_out);
	if (evicted != server->logged_evictions && now - server->logged_evictions_ms >= EVICTION_LOG_MS) {
		log_warn(MODULE,
			 "closed %llu connection(s) that sent no whole request in %lld s or held a slot a "
			 "newer client needed (slow or stuck clients, or a slowloris attack); %llu in all",
			 (unsigned long long)(evicted - server->logged_evictions),
			 (long long)server->timeout_ms / 1000, (unsigned long long)evicted);
		server->logged_evictions = evicted;
		server->logged_evictions_ms = now;
	}
}

static void *serve(void *arg)
{
	struct http_server *server = arg;

	while (!atomic_load(&server->stopping)) {
		MHD_run_wait(server->daemon, POLL_MS);
		reap(server, clock_monotonic_ms());
	}
	return NULL;
}

/* --- requests ------------------------------------------------------------------------------------------ */

/* Compares in time that depends only on the expected token's length, not on where a guess goes wrong. */
static bool token_matches(const char *given, const char *want)
{
	size_t given_len = strlen(given), want_len = strlen(want);
	volatile unsigned char diff = given_len != want_len;

	for (size_t i = 0; i < want_len; i++)
		diff |= (unsigned char)(want[i] ^ given[i < given_len ? i : 0]);
	return diff == 0;
}

static bool metrics_allowed(const struct http_server *server, struct MHD_Connection *connection)
{
	const char *auth;

	if (!server->metrics_token)
		return true;
	auth = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	return auth && strncmp(auth, "Bearer ", 7) == 0 && token_matches(auth + 7, server->metrics_token);
}

static enum MHD_Result unauthorized(struct MHD_Connection *connection)
{
	static const char body[] = "a bearer token is required for /metrics (http.metrics_token_file)\n";
	struct MHD_Response *response =
		MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	MHD_add_response_header(response, "Content-Type", "text/plain");
	MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"mqtt2pg\"");
	rc = MHD_queue_response(connection, MHD_HTTP_UNAUTHORIZED, response);
	MHD_destroy_response(response);
	return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct http_server *server = cls;
	char text[512]; /* a line of readiness reasons fits */

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	struct http_peer *peer = peer_of(connection);
	if (peer)
		peer->busy = true; /* its whole request is here: not evicted or timed out while we answer */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n",
			       19, false);
	if (strcmp(url, "/healthz") == 0) {
		bool alive = loop_alive(server->health, server->stats);
		snprintf(text, sizeof(text), "%s\n", alive ? "ok" : "main loop stalled");
		return respond(connection, alive ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
			       text, strlen(text), false);
	}
	if (strcmp(url, "/readyz") == 0) {
		char why[400];
		readiness(server->health, server->stats, why, sizeof(why));
		snprintf(text, sizeof(text), "%s\n", why[0] ? why : "ready");
		return respond(connection, why[0] ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, "text/plain",
			       text, strlen(text), false);
	}
	if (strcmp(url, "/metrics") == 0) {
		if (!metrics_allowed(server, connection))
			return unauthorized(connection);
		char *body = xmalloc(METRICS_CAP);
		size_t len = http_render_metrics(server->health, server->stats, body, METRICS_CAP);
		return respond(connection, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len, true);
	}
	return respond(connection, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10, false);
}

struct http_server *http_start(const struct config *cfg, struct health *health, struct stats *stats)
{
	struct http_server *server = xcalloc(1, sizeof(*server));
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->http_port) };
	int rc;

	if (inet_pton(AF_INET, cfg->http_listen, &addr.sin_addr) != 1) {
		log_error(MODULE, "http.listen '%s' is not an IPv4 address", cfg->http_listen);
		free(server);
		return NULL;
	}
	server->health = health;
	server->stats = stats;
	server->listen_address = xstrdup(cfg->http_listen);
	server->metrics_token = cfg->http_metrics_token ? xstrdup(cfg->http_metrics_token) : NULL;
	server->max_connections = cfg->http_max_connections;
	server->max_per_client = cfg->http_max_connections_per_client;
	server->timeout_ms = (int64_t)cfg->http_timeout * 1000;
	/* MHD's own limit only backs ours up: above it MHD refuses newcomers, which is what we avoid. It leaves
	 * room for connections we shut down and MHD has not closed yet. */
	server->daemon = MHD_start_daemon(
		MHD_USE_AUTO | MHD_USE_ERROR_LOG, (uint16_t)cfg->http_port, NULL, NULL, handle, server,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &addr,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)(2 * cfg->http_max_connections + 16), MHD_OPTION_NOTIFY_CONNECTION, on_connection,
		server, MHD_OPTION_NOTIFY_COMPLETED, on_request_done, server, MHD_OPTION_END);
	if (!server->daemon) {
		log_error(MODULE, "cannot listen on %s:%d for /healthz, /readyz, /metrics", cfg->http_listen,
			  cfg->http_port);
		goto fail;
	}
	rc = pthread_create(&server->thread, NULL, serve, server);
	if (rc != 0) {
		log_error(MODULE, "cannot start the HTTP thread: %s", strerror(rc));
		MHD_stop_daemon(server->daemon);
		goto fail;
	}
	log_info(MODULE,
		 "serving /healthz, /readyz and /metrics%s on %s:%d (at most %d connections, %d per client, "
		 "%d s per request)",
		 server->metrics_token ? " (bearer token)" : "", cfg->http_listen, cfg->http_port,
		 server->max_connections, server->max_per_client, cfg->http_timeout);
	return server;
fail:
	free(server->listen_address);
	free(server->metrics_token);
	free(server);
	return NULL;
}

void http_stop(struct http_server *server)
{
	if (!server)
		return;
	atomic_store(&server->stopping, true);
	pthread_join(server->thread, NULL);
	MHD_stop_daemon(server->daemon); /* notifies every connection still open: the list empties */
	if (server->metrics_token)
		explicit_bzero(server->metrics_token, strlen(server->metrics_token));
	free(server->metrics_token);
	free(server->listen_address);
	free(server);
}
