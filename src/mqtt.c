// SPDX-License-Identifier: Apache-2.0
/*
 * mqtt: the Paho MQTTAsync client's lifecycle (see mqtt.h): create, connect, subscribe (again after each
 * reconnect), the message callback that runs the chain (ingest.c) on Paho's receive thread, `leave`, and the
 * stop protocol that keeps a callback blocked at a stop from meeting a main thread inside Paho.
 */
#include "mqtt.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "ingest.h"
#include "util/log.h"
#include "route.h"
#include "util/xalloc.h"

#define MODULE		      "mqtt"
#define DISCONNECT_TIMEOUT_MS 5000
#define MAX_PACKET_HEADROOM   (1024u * 1024u)

struct mqtt;

/* MQTT 5: each route's filter is its own SUBSCRIBE with subscription identifier index + 1 (see subscribe()). */
struct route_subscription {
	struct mqtt *mq;
	size_t route;
};

struct mqtt {
	const struct config *cfg;
	struct stats *stats;
	struct ingest
		*chain; /* owned; run on the receive thread only (and its policy swapped by the main one) */
	MQTTAsync client;
	char **filters; /* owned, one per route, with $share/<group>/ when configured */
	int *qos;
	struct route_subscription
		*subs;		 /* owned, one per route: the callbacks' context of each SUBSCRIBE (MQTT 5) */
	atomic_int subs_pending; /* SUBSCRIBEs not yet answered in the current round */
	atomic_bool connected;
	atomic_bool disconnected;	 /* set by the disconnect callbacks during stop */
	_Atomic int64_t connected_at_ms; /* monotonic, the last successful connect */
	atomic_int short_connections;	 /* consecutive connections the broker closed soon after they began */
	/* `mqtt2pg leave` only (see mqtt.h): */
	bool leaving;
	atomic_bool unsubscribed; /* the broker confirmed the UNSUBSCRIBE: no new messages are routed to us */
	atomic_bool busy;	  /* a message callback is running */
	atomic_bool refused;	  /* a message was left unacknowledged at stop: the session is not empty */
	/*
	 * The stop protocol (see park_if_stopping and mqtt_stop), under gate: the callback runs with Paho's
	 * global mutex held, so a callback that blocks for good must never meet a main thread waiting inside
	 * a Paho call, and a stopping main thread must not free what a blocked callback uses.
	 */
	pthread_mutex_t gate;
	pthread_cond_t gate_changed;
	bool in_callback;		  /* a message callback is running */
	bool stopping;			  /* mqtt_stop began */
	bool main_in_paho;		  /* mqtt_stop committed to MQTTAsync_disconnect/destroy */
	bool parked;			  /* the callback stopped for good without taking its message */
	_Atomic int64_t last_activity_ms; /* monotonic, the end of the last message callback */
	int *subscription_ids; /* reused; receive thread only: a delivery's Subscription Identifiers */
	size_t subscription_id_cap;
	MQTTAsync_SSLOptions ssl;
};

/* --- the message callback ------------------------------------------------------------------------------ */

/*
 * When the bridge stops while the callback cannot take its message, the callback stops here for good
 * without returning: Paho sends the PUBACK only after the callback returns, so the message stays
 * unacknowledged and the broker delivers it again after the restart. Not while the main thread is already
 * inside a Paho call (it waits for Paho's mutex, which this thread holds): then the callback goes on
 * trying, and the stop waits for the spool. Never returns when it parks. The chain calls it after every
 * failed attempt to make a message safe (ingest_deps.blocked).
 */
static void park_if_stopping(void *context)
{
	struct mqtt *mq = context;

	pthread_mutex_lock(&mq->gate);
	if (mq->stopping && !mq->main_in_paho) {
		mq->parked = true;
		atomic_store(&mq->refused, true);
		pthread_cond_broadcast(&mq->gate_changed);
		log_warn(
			MODULE,
			"stopping while intake is blocked: the message being taken stays unacknowledged, the "
			"broker delivers it again after the restart");
		for (;;)
			pthread_cond_wait(&mq->gate_changed, &mq->gate);
	}
	pthread_mutex_unlock(&mq->gate);
}

/*
 * The callback begins. While mqtt_stop waits for the previous callback to end, the next one lets it in
 * first (it then takes its message normally; Paho's disconnect waits for that).
 */
static void callback_enter(struct mqtt *mq)
{
	pthread_mutex_lock(&mq->gate);
	while (mq->stopping && !mq->main_in_paho && !mq->parked)
		pthread_cond_wait(&mq->gate_changed, &mq->gate);
	mq->in_callback = true;
	pthread_mutex_unlock(&mq->gate);
}

static void callback_leave(struct mqtt *mq)
{
	pthread_mutex_lock(&mq->gate);
	mq->in_callback = false;
	pthread_cond_broadcast(&mq->gate_changed);
	pthread_mutex_unlock(&mq->gate);
}

/*
 * The Subscription Identifiers of one delivery (MQTT 5; none with 3.1.1), into a buffer reused across
 * messages: the chain tells a broker's extra copy for an overlapping subscription by them.
 */
static void read_subscription_ids(struct mqtt *mq, const MQTTAsync_message *msg,
				  struct ingest_arrival *arrival)
{
	MQTTProperties *props = (MQTTProperties *)&msg->properties; /* Paho's getters take no const */
	int n = MQTTProperties_propertyCount(props, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER);

	arrival->subscription_ids = NULL;
	arrival->subscription_id_count = 0;
	if (n <= 0)
		return;
	if ((size_t)n > mq->subscription_id_cap) {
		mq->subscription_id_cap = (size_t)n;
		mq->subscription_ids =
			xrealloc(mq->subscription_ids, (size_t)n * sizeof(*mq->subscription_ids));
	}
	for (int k = 0; k < n; k++)
		mq->subscription_ids[k] =
			MQTTProperties_getNumericValueAt(props, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, k);
	arrival->subscription_ids = mq->subscription_ids;
	arrival->subscription_id_count = (size_t)n;
}

/*
 * Paho's receive thread calls this inline and sends the PUBACK after it returns. It returns only once the
 * message is safe (so always 1): returning 0 would make Paho acknowledge this and the following messages
 * from its memory, where a restart loses them.
 */
static int on_message_arrived(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct mqtt *mq = context;
	size_t len = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	struct ingest_arrival arrival = { 0 };

	callback_enter(mq);
	arrival.received_us = clock_realtime_us();
	arrival.retained = msg->retained != 0;
	read_subscription_ids(mq, msg, &arrival);
	ingest_message(mq->chain, topic, len, msg->payload, msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
		       &arrival);
	callback_leave(mq);
	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic);
	return 1;
}

/* --- connection and subscriptions ------------------------------------------------------------------ */

static void on_subscribe_success(void *context, MQTTAsync_successData *response)
{
	struct mqtt *mq = context;

	(void)response;
	atomic_store(&mq->connected, true);
	log_info(MODULE, "subscribed to %zu route filter(s)", mq->cfg->route_count);
}

static void on_subscribe_failure(void *context, MQTTAsync_failureData *response)
{
	(void)context;
	log_error(MODULE, "subscribe failed: %s (code %d)",
		  response && response->message ? response->message : "", response ? response->code : 0);
}

/* MQTT 5, one route's SUBSCRIBE answered; the last of the round marks the connection subscribed. */
static void on_route_subscribed5(void *context, MQTTAsync_successData5 *response)
{
	struct route_subscription *sub = context;
	struct mqtt *mq = sub->mq;

	if (response && response->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
		log_error(MODULE, "broker refused subscription %s: %s", mq->filters[sub->route],
			  MQTTReasonCode_toString(response->reasonCode));
	if (atomic_fetch_sub(&mq->subs_pending, 1) == 1)
		on_subscribe_success(mq, NULL);
}

static void on_route_subscribe_failed5(void *context, MQTTAsync_failureData5 *response)
{
	struct route_subscription *sub = context;

	log_error(MODULE, "subscribe to %s failed: %s (%s)", sub->mq->filters[sub->route],
		  response && response->message ? response->message : "",
		  response ? MQTTReasonCode_toString(response->reasonCode) : "");
}

/* MQTT 5: one SUBSCRIBE per route, so that every delivery names the route's subscription (overlap_copy). */
static void subscribe_with_identifiers(struct mqtt *mq)
{
	atomic_store(&mq->subs_pending, (int)mq->cfg->route_count);
	for (size_t i = 0; i < mq->cfg->route_count; i++) {
		MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
		MQTTProperty id = { .identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER,
				    .value.integer4 = (int)i + 1 };
		MQTTProperties props = MQTTProperties_initializer;
		int rc;

		mq->subs[i] = (struct route_subscription){ mq, i };
		opts.context = &mq->subs[i];
		opts.onSuccess5 = on_route_subscribed5;
		opts.onFailure5 = on_route_subscribe_failed5;
		if (MQTTProperties_add(&props, &id) != 0) {
			log_error(MODULE, "cannot set the subscription identifier of %s", mq->filters[i]);
			continue;
		}
		opts.properties = props;
		rc = MQTTAsync_subscribe(mq->client, mq->filters[i], mq->qos[i], &opts);
		MQTTProperties_free(&props);
		if (rc != MQTTASYNC_SUCCESS)
			log_error(MODULE, "cannot send subscribe for %s: %s", mq->filters[i],
				  MQTTAsync_strerror(rc));
	}
}

static void subscribe(struct mqtt *mq)
{
	MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
	int rc;

	if (mq->cfg->mqtt.version == 5) {
		subscribe_with_identifiers(mq);
		return;
	}
	opts.context = mq;
	opts.onSuccess = on_subscribe_success;
	opts.onFailure = on_subscribe_failure;
	rc = MQTTAsync_subscribeMany(mq->client, (int)mq->cfg->route_count, mq->filters, mq->qos, &opts);
	if (rc != MQTTASYNC_SUCCESS)
		log_error(MODULE, "cannot send subscribe: %s", MQTTAsync_strerror(rc));
}

/* --- leaving the group (`mqtt2pg leave`) ------------------------------------------------------------- */

static void on_unsubscribe_success(void *context, MQTTAsync_successData *response)
{
	struct mqtt *mq = context;

	(void)response;
	atomic_store(&mq->last_activity_ms, clock_monotonic_ms());
	atomic_store(&mq->unsubscribed, true);
	atomic_store(&mq->connected, true);
	log_info(MODULE,
		 "unsubscribed from %zu filter(s): the broker routes nothing new to %s; taking what its "
		 "session still holds",
		 mq->cfg->route_count, mq->cfg->mqtt.client_id);
}

static void on_unsubscribe_success5(void *context, MQTTAsync_successData5 *response)
{
	(void)response;
	on_unsubscribe_success(context, NULL);
}

static void on_unsubscribe_failure(void *context, MQTTAsync_failureData *response)
{
	(void)context;
	log_error(MODULE, "unsubscribe failed: %s (code %d); retried at the next connect",
		  response && response->message ? response->message : "", response ? response->code : 0);
}

static void on_unsubscribe_failure5(void *context, MQTTAsync_failureData5 *response)
{
	(void)context;
	log_error(MODULE, "unsubscribe failed: %s (%s); retried at the next connect",
		  response && response->message ? response->message : "",
		  response ? MQTTReasonCode_toString(response->reasonCode) : "");
}

static void unsubscribe(struct mqtt *mq)
{
	MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
	int rc;

	opts.context = mq;
	if (mq->cfg->mqtt.version == 5) {
		opts.onSuccess5 = on_unsubscribe_success5;
		opts.onFailure5 = on_unsubscribe_failure5;
	} else {
		opts.onSuccess = on_unsubscribe_success;
		opts.onFailure = on_unsubscribe_failure;
	}
	rc = MQTTAsync_unsubscribeMany(mq->client, (int)mq->cfg->route_count, mq->filters, &opts);
	if (rc != MQTTASYNC_SUCCESS)
		log_error(MODULE, "cannot send unsubscribe: %s", MQTTAsync_strerror(rc));
}

/* The message callback while leaving: the same path, plus what mqtt_has_left needs to know. */
static int on_message_leaving(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct mqtt *mq = context;
	int taken;

	atomic_store(&mq->busy, true);
	taken = on_message_arrived(context, topic, topic_len, msg);
	if (!taken)
		atomic_store(&mq->refused, true);
	atomic_store(&mq->last_activity_ms, clock_monotonic_ms());
	atomic_store(&mq->busy, false);
	return taken;
}

bool mqtt_has_left(struct mqtt *mq, int quiet_ms)
{
	return mq->leaving && atomic_load(&mq->unsubscribed) && !atomic_load(&mq->busy) &&
	       clock_monotonic_ms() - atomic_load(&mq->last_activity_ms) >= quiet_ms;
}

/* Called after every successful connect, the first one and each automatic reconnect. */
static void on_connected(void *context, char *cause)
{
	struct mqtt *mq = context;

	STATS_ADD(mq->stats, mqtt_connects, 1);
	atomic_store(&mq->connected_at_ms, clock_monotonic_ms());
	(void)cause;
	log_info(MODULE, "connected to %s as %s", mq->cfg->mqtt.uri, mq->cfg->mqtt.client_id);
	/* Subscribing again is harmless when the session kept the subscriptions, and required when it did not. */
	if (mq->leaving)
		unsubscribe(mq);
	else
		subscribe(mq);
}

/*
 * Two processes with one client id take the session from each other in turns, each connection closed a few
 * seconds after it began. Mosquitto 2.0 closes the old connection without a DISCONNECT reason (MQTT 5 brokers
 * that send one trigger on_broker_disconnect), so the pattern is all there is to go on: say so after 3 in a row.
 */
static void suspect_shared_client_id(struct mqtt *mq)
{
	enum {
		SHORT_MS = 15000,
		IN_A_ROW = 3
	};
	int64_t lasted = clock_monotonic_ms() - atomic_load(&mq->connected_at_ms);

	if (lasted >= SHORT_MS) {
		atomic_store(&mq->short_connections, 0);
		return;
	}
	if (atomic_fetch_add(&mq->short_connections, 1) + 1 == IN_A_ROW)
		log_error(
			MODULE,
			"the broker closed %d connections in a row within %d s of connecting: is another process "
			"connecting as %s? Each replica needs its own mqtt.client_id (e.g. \"mqtt2pg-{hostname}\"); "
			"Mosquitto logs \"Client <id> already connected, closing old connection\"",
			IN_A_ROW, SHORT_MS / 1000, mq->cfg->mqtt.client_id);
}

static void on_connection_lost(void *context, char *cause)
{
	struct mqtt *mq = context;

	atomic_store(&mq->connected, false);
	STATS_ADD(mq->stats, mqtt_connection_lost, 1);
	log_warn(MODULE, "connection to the broker lost (%s); reconnecting",
		 cause ? cause : "no reason given");
	suspect_shared_client_id(mq);
}

/*
 * MQTT 5: the broker said why it is closing the connection (on_connection_lost follows). The one an operator
 * must act on: "session taken over", another client connected with our client id, and the two will keep
 * taking the session from each other.
 */
static void on_broker_disconnect(void *context, MQTTProperties *properties, enum MQTTReasonCodes reason)
{
	struct mqtt *mq = context;

	(void)properties;
	if (reason == MQTTREASONCODE_SESSION_TAKEN_OVER)
		log_error(MODULE,
			  "the broker closed our session: another client connected as %s; each replica needs "
			  "its own mqtt.client_id (e.g. \"mqtt2pg-{hostname}\")",
			  mq->cfg->mqtt.client_id);
	else
		log_warn(MODULE, "the broker is disconnecting us: %s (reason code %d)",
			 MQTTReasonCode_toString(reason), (int)reason);
}

static void on_connect_failure(void *context, MQTTAsync_failureData *response)
{
	struct mqtt *mq = context;

	log_warn(MODULE, "cannot connect to %s: %s (code %d); retrying", mq->cfg->mqtt.uri,
		 response && response->message ? response->message : "", response ? response->code : 0);
}

static void on_connect_failure5(void *context, MQTTAsync_failureData5 *response)
{
	struct mqtt *mq = context;

	log_warn(MODULE, "cannot connect to %s: %s (%s); retrying", mq->cfg->mqtt.uri,
		 response && response->message ? response->message : "",
		 response ? MQTTReasonCode_toString(response->reasonCode) : "");
}

static void on_trace(enum MQTTASYNC_TRACE_LEVELS level, char *message)
{
	/* Paho prints a version banner through the trace at start-up; only its errors are news. */
	if (level < MQTTASYNC_TRACE_ERROR)
		return;
	log_write(level >= MQTTASYNC_TRACE_SEVERE ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, "paho", "%s", message);
}

static void build_filters(struct mqtt *mq)
{
	const struct config_mqtt *conf = &mq->cfg->mqtt;

	mq->filters = xcalloc(mq->cfg->route_count, sizeof(*mq->filters));
	mq->subs = xcalloc(mq->cfg->route_count, sizeof(*mq->subs));
	mq->qos = xcalloc(mq->cfg->route_count, sizeof(*mq->qos));
	for (size_t i = 0; i < mq->cfg->route_count; i++) {
		const char *filter = mq->cfg->routes[i].filter;
		if (conf->shared_group) {
			size_t n = strlen(conf->shared_group) + strlen(filter) + 9;
			mq->filters[i] = xmalloc(n);
			snprintf(mq->filters[i], n, "$share/%s/%s", conf->shared_group, filter);
		} else {
			mq->filters[i] = xstrdup(filter);
		}
		mq->qos[i] = conf->qos;
	}
}

static int start_connect(struct mqtt *mq)
{
	const struct config_mqtt *conf = &mq->cfg->mqtt;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_connectOptions *o = conf->version == 5 ? &opts5 : &opts;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty expiry = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL };
	MQTTProperty max_packet = { .identifier = MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE };
	MQTTProperty receive_max = { .identifier = MQTTPROPERTY_CODE_RECEIVE_MAXIMUM };
	int rc;

	o->keepAliveInterval = conf->keepalive;
	o->connectTimeout = conf->connect_timeout;
	o->automaticReconnect = 1;
	o->minRetryInterval = conf->reconnect_min;
	o->maxRetryInterval = conf->reconnect_max;
	o->username = conf->username;
	o->password = conf->password;
	o->context = mq;
	o->MQTTVersion = conf->version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	if (conf->version == 5) {
		o->cleanstart = conf->clean_session;
		expiry.value.integer4 = (unsigned)conf->session_expiry;
		MQTTProperties_add(&props, &expiry);
		/* The broker does not send us a packet past this (MQTT 5, 3.1.2.11.4): a giant payload is dropped
		 * there instead of costing us its size in memory. The MiB above max_payload_bytes leaves room for
		 * the topic and properties, so what is merely over the limit still arrives and is rejected with its
		 * reason. MQTT 3.1.1 has no such field: set the broker's message_size_limit (README). */
		max_packet.value.integer4 =
			(unsigned)mq->cfg->validation.max_payload_bytes + MAX_PACKET_HEADROOM;
		MQTTProperties_add(&props, &max_packet);
		/* The broker's in-flight window towards us. Without it Mosquitto uses its max_inflight_messages (20 by
		 * default) and then waits for our PUBACKs, which we send one by one after each message is in the
		 * spool: the drain was bound by that round trip (issue 17). With it (Mosquitto 2.0
		 * property__process_connect) the broker keeps the socket full. Nothing is acknowledged sooner: a
		 * message in the window that we have not processed is redelivered after a restart. */
		receive_max.value.integer2 = (unsigned short)conf->receive_maximum;
		MQTTProperties_add(&props, &receive_max);
		o->connectProperties = &props;
		o->onFailure5 = on_connect_failure5;
	} else {
		o->cleansession = conf->clean_session;
		o->onFailure = on_connect_failure;
	}
	if (conf->ca_file || strncmp(conf->uri, "ssl://", 6) == 0 || strncmp(conf->uri, "mqtts://", 8) == 0) {
		MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
		ssl.trustStore = conf->ca_file;
		ssl.keyStore = conf->cert_file;
		ssl.privateKey = conf->key_file;
		ssl.enableServerCertAuth = conf->tls_verify;
		ssl.verify = conf->tls_verify;
		mq->ssl = ssl;
		o->ssl = &mq->ssl;
	}
	rc = MQTTAsync_connect(mq->client, o);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error(MODULE, "cannot start connecting to %s: %s", conf->uri, MQTTAsync_strerror(rc));
		return -1;
	}
	return 0;
}

struct mqtt *mqtt_start(const struct config *cfg, struct registry_store *store, struct spool *spool,
			struct queue **queues, size_t queue_count, struct stats *stats, enum mqtt_mode mode)
{
	MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
	struct mqtt *mq = xcalloc(1, sizeof(*mq));
	int rc;

	mq->cfg = cfg;
	mq->stats = stats;
	atomic_init(&mq->connected, false);
	atomic_init(&mq->disconnected, false);
	atomic_init(&mq->connected_at_ms, 0);
	atomic_init(&mq->short_connections, 0);
	mq->leaving = mode == MQTT_LEAVE;
	atomic_init(&mq->unsubscribed, false);
	atomic_init(&mq->busy, false);
	atomic_init(&mq->refused, false);
	atomic_init(&mq->last_activity_ms, clock_monotonic_ms());
	pthread_mutex_init(&mq->gate, NULL);
	pthread_cond_init(&mq->gate_changed, NULL);
	build_filters(mq);
	mq->chain = ingest_new(&(struct ingest_deps){ .cfg = cfg,
						      .store = store,
						      .spool = spool,
						      .queues = queues,
						      .queue_count = queue_count,
						      .stats = stats,
						      .blocked = park_if_stopping,
						      .blocked_context = mq });
	MQTTAsync_setTraceCallback(on_trace);
	MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
	create.MQTTVersion = cfg->mqtt.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	rc = MQTTAsync_createWithOptions(&mq->client, cfg->mqtt.uri, cfg->mqtt.client_id,
					 MQTTCLIENT_PERSISTENCE_NONE, NULL, &create);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error(MODULE, "cannot create MQTT client for %s: %s", cfg->mqtt.uri,
			  MQTTAsync_strerror(rc));
		goto fail;
	}
	/* Callbacks may only be set while disconnected: before the first connect. */
	if (MQTTAsync_setCallbacks(mq->client, mq, on_connection_lost,
				   mq->leaving ? on_message_leaving : on_message_arrived,
				   NULL) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setConnected(mq->client, mq, on_connected) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setDisconnected(mq->client, mq, on_broker_disconnect) != MQTTASYNC_SUCCESS) {
		log_error(MODULE, "cannot set MQTT callbacks");
		goto fail;
	}
	if (start_connect(mq) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->route_count; i++)
		log_info(MODULE, "route %s (%s) -> subscription %s", cfg->routes[i].template_text,
			 route_format_name(cfg->routes[i].format), mq->filters[i]);
	return mq;
fail:
	mqtt_stop(mq);
	return NULL;
}

void mqtt_set_policy(struct mqtt *mq, const struct config_validation *policy)
{
	ingest_set_policy(mq->chain, policy);
}

bool mqtt_is_connected(const struct mqtt *mq)
{
	return atomic_load(&mq->connected);
}

static void on_disconnected(void *context, MQTTAsync_successData *response)
{
	struct mqtt *mq = context;
	(void)response;
	atomic_store(&mq->disconnected, true);
}

static void on_disconnected5(void *context, MQTTAsync_successData5 *response)
{
	struct mqtt *mq = context;
	(void)response;
	atomic_store(&mq->disconnected, true);
}

static void on_disconnect_failure(void *context, MQTTAsync_failureData *response)
{
	struct mqtt *mq = context;
	(void)response;
	atomic_store(&mq->disconnected, true);
}

static void on_disconnect_failure5(void *context, MQTTAsync_failureData5 *response)
{
	struct mqtt *mq = context;
	(void)response;
	atomic_store(&mq->disconnected, true);
}

/*
 * Leaving, MQTT 5, and everything the session held is ours: DISCONNECT with Session Expiry Interval 0 makes
 * the broker delete the session, and with it our place in the shared group. If a message was left
 * unacknowledged (intake blocked at the stop), the session is kept: ending it could drop that message. MQTT 3.1.1 has no such field;
 * the session stays, without subscriptions, so nothing more is routed to it.
 */
static bool end_session_on_disconnect(struct mqtt *mq, MQTTProperties *props)
{
	MQTTProperty expiry = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL,
				.value.integer4 = 0 };

	if (!mq->leaving || !atomic_load(&mq->unsubscribed))
		return false;
	if (atomic_load(&mq->refused) || atomic_load(&mq->busy)) {
		log_warn(
			MODULE,
			"a message was left unacknowledged, or is still being taken, while leaving: keeping the session "
			"(run leave again)");
		return false;
	}
	if (mq->cfg->mqtt.version != 5) {
		log_info(MODULE, "MQTT 3.1.1: the session stays on the broker, without subscriptions");
		return false;
	}
	if (MQTTProperties_add(props, &expiry) != 0) {
		log_error(MODULE,
			  "cannot set the session expiry on DISCONNECT; the session stays on the broker");
		return false;
	}
	log_info(MODULE, "ending the session of %s (DISCONNECT with session expiry 0)",
		 mq->cfg->mqtt.client_id);
	return true;
}

bool mqtt_left_cleanly(struct mqtt *mq)
{
	return mq->leaving && atomic_load(&mq->unsubscribed) && !atomic_load(&mq->refused);
}

/*
 * Begins the stop: waits until no callback runs, or the running one has parked (a blocked callback checks
 * at least every RETRY_MAX_MS). Returns false when it parked: then Paho's mutex stays taken for good, and
 * neither Paho nor what the callback uses may be touched again.
 */
static bool stop_callbacks(struct mqtt *mq)
{
	bool paho_usable;

	pthread_mutex_lock(&mq->gate);
	mq->stopping = true;
	while (mq->in_callback && !mq->parked)
		pthread_cond_wait(&mq->gate_changed, &mq->gate);
	mq->main_in_paho = !mq->parked;
	paho_usable = !mq->parked;
	pthread_cond_broadcast(&mq->gate_changed); /* a callback waiting in callback_enter goes on */
	pthread_mutex_unlock(&mq->gate);
	return paho_usable;
}

void mqtt_stop(struct mqtt *mq)
{
	if (!mq)
		return;
	if (mq->client && !stop_callbacks(mq)) {
		/* Deliberately not freed: the parked callback holds mq and Paho's mutex until the process exits. */
		log_warn(
			MODULE,
			"not disconnecting from the broker: intake was blocked; the connection closes at exit "
			"and the broker keeps what was not acknowledged");
		return;
	}
	if (mq->client) {
		MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
		MQTTAsync_disconnectOptions opts5 = MQTTAsync_disconnectOptions_initializer5;
		MQTTAsync_disconnectOptions *o = mq->cfg->mqtt.version == 5 ? &opts5 : &opts;
		MQTTProperties props = MQTTProperties_initializer;

		o->timeout = DISCONNECT_TIMEOUT_MS;
		if (end_session_on_disconnect(mq, &props))
			o->properties = props;
		o->context = mq;
		if (mq->cfg->mqtt.version == 5) {
			o->onSuccess5 = on_disconnected5;
			o->onFailure5 = on_disconnect_failure5;
		} else {
			o->onSuccess = on_disconnected;
			o->onFailure = on_disconnect_failure;
		}
		if (MQTTAsync_disconnect(mq->client, o) == MQTTASYNC_SUCCESS) {
			for (int waited = 0;
			     !atomic_load(&mq->disconnected) && waited < DISCONNECT_TIMEOUT_MS + 1000;
			     waited += 10)
				clock_sleep_ms(10);
		}
		MQTTProperties_free(&props);
		/* destroy joins Paho's threads: no callback runs after it. */
		MQTTAsync_destroy(&mq->client);
		log_info(MODULE, "disconnected from the broker");
	}
	for (size_t i = 0; mq->filters && i < mq->cfg->route_count; i++)
		free(mq->filters[i]);
	free(mq->subs);
	free(mq->filters);
	free(mq->qos);
	free(mq->subscription_ids);
	ingest_free(mq->chain);
	pthread_cond_destroy(&mq->gate_changed);
	pthread_mutex_destroy(&mq->gate);
	free(mq);
}
