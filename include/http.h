/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the operator's endpoints, served by libmicrohttpd on its own thread (a well-kept HTTP server is
 * better than one we would write): /healthz (the main loop is alive), /readyz (connected to the broker, at
 * least one database connection usable, registry loaded, not draining) and /metrics (Prometheus text).
 *
 * The server only reads: struct health (atomics the bridge's main thread updates every tick) and struct
 * stats (counters every stage updates). It never calls into the pipeline.
 *
 * It is reachable by whoever reaches its address, so it defends itself: loopback unless configured, a
 * deadline for each request to arrive (http.timeout, however slowly its bytes trickle), at most
 * http.max_connections open connections and http.max_connections_per_client per client address, where a
 * new connection beyond a limit closes the oldest one that has not sent a whole request yet (slowloris
 * clients, idle keep-alives) rather than being refused, so that a health probe always gets through; and,
 * with http.metrics_token_file, /metrics only for "Authorization: Bearer <token>".
 */
#ifndef MQTT2PG_HTTP_H
#define MQTT2PG_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct health {
	atomic_int_fast64_t loop_heartbeat_ms; /* monotonic ms of the main loop's last tick */
	atomic_bool mqtt_connected;
	atomic_int writers_connected;
	atomic_int writers_writable; /* connected, and the database accepts writes (not read-only) */
	atomic_int writers_total;
	atomic_bool registry_loaded;
	atomic_bool draining;
};

struct http_server;

struct config;

/*
 * Listens on cfg's http.listen:http.port with its connection limits, request timeout and /metrics token (all
 * copied: cfg may be freed afterwards). health and stats are borrowed for the server's lifetime. Returns NULL
 * after logging if the port cannot be bound.
 */
struct http_server *http_start(const struct config *cfg, struct health *health, struct stats *stats)
	__attribute__((warn_unused_result));

/* Stops serving and frees the server. NULL is a no-op. */
void http_stop(struct http_server *server);

/*
 * One readiness check: /readyz is ready when every check passes, and /metrics shows each as
 * mqtt2pg_ready{check="<name>"} 1 or 0. why says what a failing check means, for /readyz's body.
 */
struct http_ready_check {
	const char *name;
	const char *why;
	bool (*passes)(const struct health *h, struct stats *s); /* reads h or s, never changes them */
};

/* aggregates_ok fails after this many aggregate runs in a row failed (about this many intervals). */
#define AGGREGATE_FAILING_RUNS 3

/* The checks, in the order /readyz reports them; *count is set to how many. */
const struct http_ready_check *http_ready_checks(size_t *count);

/* Renders the Prometheus exposition into buf (cap bytes); returns the length (truncated output ends at a
 * line boundary). Exposed for tests. */
size_t http_render_metrics(const struct health *health, struct stats *stats, char *buf, size_t cap);

#endif
