/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: the per-message chain, the first stage after the broker. For one MQTT message (a topic and a
 * payload): route match -> decode -> validate (registry) -> rate limit -> made safe (spool append in disk
 * mode, a writer queue in memory mode) -> counted, each device part accepted or rejected exactly once, or the
 * whole message ignored. mqtt.c (the Paho client) calls it from its message callback; it knows nothing of
 * Paho, so it runs as well from a unit test.
 *
 * DESIGN. Threads and ownership:
 * - One thread runs the chain: Paho's receive thread, which calls the message callback inline. The decode
 *   buffers, the rate limiters and the rejection sampler are that thread's alone: no locks. The main thread
 *   only swaps the validation policy (ingest_set_policy, an atomic pointer read once per message).
 * - Paho 1.3 calls the message callback inline on its receive thread and sends the QoS 1 PUBACK after it
 *   returns, whatever it returns; then the broker forgets the message. A callback that returns 0 is worse:
 *   Paho keeps that message in its memory queue and, while the queue is not empty, acknowledges every further
 *   message as soon as it has read it. So ingest_message returns only once the message is durably in the
 *   spool (disk mode) or in a writer queue (memory mode), and mqtt.c's callback then returns 1. While the
 *   spool is full or cannot be written it blocks (intake_blocked), so Paho reads and acknowledges nothing
 *   more and the broker keeps the rest. Keepalive pings pause meanwhile (same thread): a long block costs one
 *   reconnect.
 * - While blocked it calls the caller's `blocked` hook after every failed attempt; mqtt.c parks the receive
 *   thread there for good when the bridge stops, so the message in hand stays with the broker (see mqtt.h).
 * - What the chain builds (struct message) is owned by it until handed over: the spool copies it (and the
 *   chain frees it), a queue takes it. Nothing it was given (topic, payload) is kept after it returns.
 */
#ifndef MQTT2PG_INGEST_H
#define MQTT2PG_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "queue.h"
#include "registry.h"
#include "spool.h"
#include "stats.h"

struct ingest;

/* What the chain needs, all borrowed for the chain's lifetime. */
struct ingest_deps {
	/* Routes, rate limits (read once, by ingest_new), database.enqueue_timeout_ms, and the validation
	 * policy until ingest_set_policy replaces it. */
	const struct config *cfg;
	struct registry_store *store; /* the device registry validation consults */
	struct spool *spool;	      /* disk mode: every message is appended here; NULL: memory mode */
	struct queue **queues;	      /* memory mode: the writer queues (readings spread by device) */
	size_t queue_count;
	struct stats *stats; /* the counters each message is counted in */
	/*
	 * Called on the chain's thread after every failed attempt to make a message safe (its wait already
	 * accounted), with blocked_context. It may never return (mqtt.c parks there at a stop). NULL: none.
	 */
	void (*blocked)(void *context);
	void *blocked_context;
};

/* How a message arrived, besides its topic and payload. */
struct ingest_arrival {
	int64_t received_us; /* realtime clock (microseconds since the epoch) when the callback began */
	bool retained;	     /* the broker's retained copy (the RETAIN flag of the PUBLISH) */
	/*
	 * MQTT 5: the Subscription Identifiers the broker sent with this delivery (each route subscribes with
	 * its index + 1; see mqtt.c). None (count 0) with MQTT 3.1.1: every copy is then processed.
	 */
	const int *subscription_ids;
	size_t subscription_id_count;
};

/* Returns an owned chain that uses what deps names (deps itself is copied). Never fails (allocation aborts). */
struct ingest *ingest_new(const struct ingest_deps *deps);

/*
 * Replaces the validation policy applied from the next message on (SIGHUP reload). Borrows policy, which must
 * stay valid until ingest_free (the bridge keeps every policy it handed over). Rate limits are read at start
 * only. Any thread.
 */
void ingest_set_policy(struct ingest *in, const struct config_validation *policy);

/*
 * Runs one MQTT message through the chain: topic (topic_len bytes) and payload (payload_len bytes), both
 * borrowed, exactly as delivered (not NUL-terminated; payload may be NULL when payload_len is 0). Returns when
 * every part is safe (see DESIGN: it may block until then) and the message is counted in stats:
 * messages_received, then per device part messages_accepted or messages_rejected[reason] (once each), or
 * messages_ignored[reason]; plus points_dropped and values_skipped. One thread at a time.
 */
void ingest_message(struct ingest *in, const char *topic, size_t topic_len, const void *payload,
		    size_t payload_len, const struct ingest_arrival *arrival);

/* Frees the chain (none of what deps borrowed). NULL is a no-op. Not while ingest_message runs. */
void ingest_free(struct ingest *in);

#endif
