/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: the first stage. An Eclipse Paho MQTTAsync client subscribed to every route's filter; for each
 * message, on Paho's receive thread: route -> decode -> validate -> hand to a writer queue.
 *
 * Paho 1.3 calls the message callback inline on its receive thread and sends the QoS 1 PUBACK after it
 * returns, whatever it returns; then the broker forgets the message. A callback that returns 0 is worse:
 * Paho keeps that message in its memory queue and, while the queue is not empty, acknowledges every further
 * message as soon as it has read it. So the callback never returns 0: it returns only once the message is
 * durably in the spool (disk mode) or in a writer queue (memory mode), and while the spool is full or cannot
 * be written it blocks (intake_blocked), so Paho reads and acknowledges nothing more and the broker keeps the
 * rest. Keepalive pings pause meanwhile (same thread): a long block costs one reconnect.
 */
#ifndef MQTT2PG_INGEST_H
#define MQTT2PG_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "queue.h"
#include "registry.h"
#include "spool.h"
#include "stats.h"

struct ingest;

enum ingest_mode {
	INGEST_CONSUME, /* `run`: subscribe to every route's filter */
	INGEST_LEAVE,   /* `leave`: retire this client id from a shared group without losing its queued share */
};

/*
 * Creates the client and starts connecting (asynchronously; reconnects forever). Borrows cfg, store, spool,
 * queues and stats for its lifetime. With a spool (disk mode) every message is appended to it before the
 * callback returns; without one (memory mode) it goes to the writer queues (queue_count of them, readings
 * spread by device).
 * Returns NULL after logging why if the client cannot be created.
 */
struct ingest *ingest_start(const struct config *cfg, struct registry_store *store, struct spool *spool,
			    struct queue **queues, size_t queue_count, struct stats *stats, enum ingest_mode mode);

/*
 * Replaces the validation policy the callback applies from the next message on (SIGHUP reload). Borrows
 * policy, which must stay valid until ingest_stop (the bridge keeps every policy it handed over). Rate
 * limits are read at start only.
 */
void ingest_set_policy(struct ingest *in, const struct config_validation *policy);

/* True while connected to the broker with the subscriptions in place. */
bool ingest_is_connected(const struct ingest *in);

/*
 * INGEST_LEAVE: a broker keeps a departed member of a shared group in its rotation (Mosquitto 2.0 does), so
 * stopping a replica leaves its share piling up in its session until the session expires and is dropped.
 * Leaving instead connects with the member's client id (and spool), takes what the session holds, sends
 * UNSUBSCRIBE for the shared filters, keeps taking what was in flight, and at ingest_stop ends the session
 * (MQTT 5: DISCONNECT with Session Expiry Interval 0).
 * ingest_has_left: the broker confirmed the UNSUBSCRIBE and no message has arrived for quiet_ms.
 * ingest_left_cleanly: unsubscribed and every message the session gave us was taken (none left
 * unacknowledged by a stop while intake was blocked).
 */
bool ingest_has_left(struct ingest *in, int quiet_ms);
bool ingest_left_cleanly(struct ingest *in);

/*
 * Stops consuming: disconnects (messages not yet handed to us stay with the broker's persistent session) and
 * destroys the client. When it returns, no callback is running or will run. If intake is blocked (the spool
 * cannot take the message in hand), the callback parks for good without returning, so that message stays
 * unacknowledged; then the client is neither disconnected nor destroyed (the connection closes at exit) and
 * in stays allocated. NULL is a no-op.
 */
void ingest_stop(struct ingest *in);

#endif
