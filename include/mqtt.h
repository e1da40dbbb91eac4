/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mqtt: the Eclipse Paho MQTTAsync client in front of the chain (ingest.h). It creates the client, connects
 * (MQTT 5 session expiry, maximum packet size and receive maximum; TLS), subscribes to every route's filter
 * (again after each automatic reconnect), hands each message to ingest_message on Paho's receive thread,
 * and at the end disconnects, or (`mqtt2pg leave`) unsubscribes and ends the session.
 *
 * DESIGN. Threads: Paho runs the callbacks (message, connect, connection lost, subscribe answers) on its own
 * threads; the main thread calls the functions below. The message callback returns only once ingest_message
 * has made the message safe (ingest.h's DESIGN says why), and it runs with Paho's global mutex held. The stop
 * protocol (mqtt_stop) therefore never lets the main thread wait inside a Paho call while a callback is
 * blocked for good, and never frees what such a callback still uses: a callback blocked at a stop parks
 * (never returns), its message stays unacknowledged, and the client is left to the process exit.
 */
#ifndef MQTT2PG_MQTT_H
#define MQTT2PG_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "queue.h"
#include "registry.h"
#include "spool.h"
#include "stats.h"

struct mqtt;

enum mqtt_mode {
	MQTT_CONSUME, /* `run`: subscribe to every route's filter */
	MQTT_LEAVE,   /* `leave`: retire this client id from a shared group without losing its queued share */
};

/*
 * Creates the client with its chain (ingest_new) and starts connecting (asynchronously; reconnects forever).
 * Borrows cfg, store, spool, queues and stats for its lifetime. With a spool (disk mode) every message is
 * appended to it before the callback returns; without one (memory mode) it goes to the writer queues
 * (queue_count of them, readings spread by device).
 * Returns NULL after logging why if the client cannot be created.
 */
struct mqtt *mqtt_start(const struct config *cfg, struct registry_store *store, struct spool *spool,
			struct queue **queues, size_t queue_count, struct stats *stats, enum mqtt_mode mode)
	__attribute__((warn_unused_result));

/*
 * Replaces the validation policy the chain applies from the next message on (SIGHUP reload; see
 * ingest_set_policy). Borrows policy, which must stay valid until mqtt_stop.
 */
void mqtt_set_policy(struct mqtt *mq, const struct config_validation *policy);

/* True while connected to the broker with the subscriptions in place. */
bool mqtt_is_connected(const struct mqtt *mq);

/*
 * MQTT_LEAVE: a broker keeps a departed member of a shared group in its rotation (Mosquitto 2.0 does), so
 * stopping a replica leaves its share piling up in its session until the session expires and is dropped.
 * Leaving instead connects with the member's client id (and spool), takes what the session holds, sends
 * UNSUBSCRIBE for the shared filters, keeps taking what was in flight, and at mqtt_stop ends the session
 * (MQTT 5: DISCONNECT with Session Expiry Interval 0).
 * mqtt_has_left: the broker confirmed the UNSUBSCRIBE and no message has arrived for quiet_ms.
 * mqtt_left_cleanly: unsubscribed and every message the session gave us was taken (none left
 * unacknowledged by a stop while intake was blocked).
 */
bool mqtt_has_left(struct mqtt *mq, int quiet_ms);
bool mqtt_left_cleanly(struct mqtt *mq);

/*
 * Stops consuming: disconnects (messages not yet handed to us stay with the broker's persistent session) and
 * destroys the client and its chain. When it returns, no callback is running or will run. If intake is
 * blocked (the spool cannot take the message in hand), the callback parks for good without returning, so
 * that message stays unacknowledged; then the client is neither disconnected nor destroyed (the connection
 * closes at exit) and mq stays allocated. NULL is a no-op.
 */
void mqtt_stop(struct mqtt *mq);

#endif
