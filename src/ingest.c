// SPDX-License-Identifier: Apache-2.0
/*
 * ingest: Paho client set-up and the per-message path (see ingest.h). Everything in on_message_arrived
 * runs on Paho's single receive thread, so the decode buffer it reuses needs no lock.
 */
#include "ingest.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "payload/decode.h"
#include "payload/formats.h"
#include "util/log.h"
#include "ratelimit.h"
#include "reject.h"
#include "util/text.h"
#include "validate.h"
#include "util/xalloc.h"

#define MODULE "mqtt"
#define DISCONNECT_TIMEOUT_MS 5000
#define MAX_PACKET_HEADROOM (1024u * 1024u)
#define ATTEMPT_WAIT_MS	      1000 /* one wait on a full spool or queue, between checks for a stop */
#define RETRY_MIN_MS	      50   /* back-off after a disk error or a missing directory... */
#define RETRY_MAX_MS	      2000 /* ...doubling up to this */

/*
 * What one MQTT message became: a pipeline message per device it names (readings or a rejection; NULL when
 * there is nothing to write) with its reject reason (REJECT_NONE: accepted), or the reason it was ignored.
 */
struct outcome {
	struct message **parts;      /* what there is to write (owned until handed over), part_count of them */
	enum reject_reason *reasons; /* per device part, count of them: REJECT_NONE = accepted */
	size_t part_count;
	size_t count;
	size_t capacity;
	uint32_t dropped;
	uint32_t skipped[SKIP_REASON_COUNT]; /* values passed over in the decoded payload */
	enum ignore_reason ignored;
};

struct ingest;

/* MQTT 5: each route's filter is its own SUBSCRIBE with subscription identifier index + 1 (see subscribe()). */
struct route_subscription {
	struct ingest *in;
	size_t route;
};

struct ingest {
	const struct config *cfg;
	struct registry_store *store;
	struct spool *spool; /* NULL in memory mode */
	struct queue **queues;
	size_t queue_count;
	struct stats *stats;
	MQTTAsync client;
	char **filters; /* owned, one per route, with $share/<group>/ when configured */
	int *qos;
	struct route_subscription
		*subs;		 /* owned, one per route: the callbacks' context of each SUBSCRIBE (MQTT 5) */
	atomic_int subs_pending; /* SUBSCRIBEs not yet answered in the current round */
	atomic_bool connected;
	atomic_bool disconnected; /* set by the disconnect callbacks during stop */
	_Atomic int64_t connected_at_ms; /* monotonic, the last successful connect */
	atomic_int short_connections;    /* consecutive connections the broker closed soon after they began */
	/* `mqtt2pg leave` only (see ingest.h): */
	bool leaving;
	atomic_bool unsubscribed;          /* the broker confirmed the UNSUBSCRIBE: no new messages are routed to us */
	atomic_bool busy;                  /* a message callback is running */
	atomic_bool refused; /* a message was left unacknowledged at stop: the session is not empty */
	/*
	 * The stop protocol (see park_if_stopping and ingest_stop), under gate: the callback runs with Paho's
	 * global mutex held, so a callback that blocks for good must never meet a main thread waiting inside
	 * a Paho call, and a stopping main thread must not free what a blocked callback uses.
	 */
	pthread_mutex_t gate;
	pthread_cond_t gate_changed;
	bool in_callback;		   /* a message callback is running */
	bool stopping;			   /* ingest_stop began */
	bool main_in_paho;		   /* ingest_stop committed to MQTTAsync_disconnect/destroy */
	bool parked;			   /* the callback stopped for good without taking its message */
	_Atomic int64_t last_activity_ms;  /* monotonic, the end of the last message callback */
	size_t next_reject_queue;
	struct decoded_message decoded; /* reused; receive thread only */
	struct outcome outcome;         /* reused; receive thread only */
	_Atomic(const struct config_validation *) policy; /* swapped by reload, read once per message */
	struct ratelimit *device_limit; /* receive thread only; NULL = unlimited */
	struct ratelimit *tenant_limit;
	struct reject_sampler *sampler; /* receive thread only */
	MQTTAsync_SSLOptions ssl;
};

/* --- the per-message path -------------------------------------------------------------------------- */

/* The route of the topic (route_select); NULL with *ignored set when a route's ignore filter claims it. */
static const struct route *match_route(const struct ingest *in, const char *topic, size_t len,
				       struct route_match *m, enum ignore_reason *ignored)
{
	bool status = false;
	const struct route *r = route_select(in->cfg->routes, in->cfg->route_count, topic, len, m, &status);

	if (status)
		*ignored = IGNORE_STATUS;
	return r;
}

static void outcome_add(struct outcome *out, struct message *m, enum reject_reason reason)
{
	if (out->count == out->capacity) {
		out->capacity = out->capacity ? out->capacity * 2 : 4;
		out->parts = xrealloc(out->parts, out->capacity * sizeof(*out->parts));
		out->reasons = xrealloc(out->reasons, out->capacity * sizeof(*out->reasons));
	}
	if (m) /* NULL: nothing to write (every point dropped, or a refusal only counted) */
		out->parts[out->part_count++] = m;
	out->reasons[out->count++] = reason;
}

/*
 * Whether a rejection is stored or only counted: per reason and claimed tenant/serial (per topic when there
 * is none, as for no_route) at most one a second, so a broken or hostile device costs a row a second, not a
 * row a message. Rate-limited refusals have their own sampling (rate_limited). On true, *detail is err's
 * detail with the count of those not stored since the last one.
 */
static bool sample_rejection(struct ingest *in, const struct decode_error *err, const char *topic, size_t topic_len,
			     const struct route_match *m, int64_t received_us, char *detail, size_t cap)
{
	char key[512];
	size_t key_len;
	uint32_t suppressed = 0;

	if (m && (m->tenant.len > 0 || m->serial.len > 0))
		key_len = (size_t)snprintf(key, sizeof(key), "%.*s/%.*s", (int)m->tenant.len, m->tenant.ptr,
					   (int)m->serial.len, m->serial.ptr);
	else
		key_len = (size_t)snprintf(key, sizeof(key), "%.*s", (int)topic_len, topic);
	if (key_len >= sizeof(key))
		key_len = sizeof(key) - 1;
	if (err->reason != REJECT_RATE_LIMITED &&
	    !reject_sampler_should_store(in->sampler, err->reason, key, key_len, received_us, &suppressed))
		return false;
	if (suppressed > 0)
		snprintf(detail, cap, "%s; %u more like it since the last record (counted, not stored)", err->detail,
			 suppressed);
	else
		snprintf(detail, cap, "%s", err->detail);
	return true;
}

/* A rejection to record, or NULL when the sampler only counts it (outcome_add takes NULL as "counted"). */
static struct message *make_rejection(struct ingest *in, const struct decode_error *err, const char *topic,
				      size_t topic_len, const struct route_match *m, const void *payload,
				      size_t payload_len, int64_t received_us)
{
	char detail[sizeof(err->detail) + 80];

	if (log_enabled(LOG_LEVEL_DEBUG)) {
		/* Both may hold device text (a topic level, a JSON key): escaped, or it could paint the log. */
		char safe_topic[256], safe_detail[400];
		text_escape(safe_topic, sizeof(safe_topic), topic, topic_len);
		text_escape(safe_detail, sizeof(safe_detail), err->detail, strlen(err->detail));
		log_debug(MODULE, "rejected message on topic %s: %s (%s)", safe_topic, reject_reason_name(err->reason),
			  safe_detail);
	}
	if (!sample_rejection(in, err, topic, topic_len, m, received_us, detail, sizeof(detail)))
		return NULL;
	return message_new_reject(err->reason, detail, topic, topic_len, m ? m->tenant.ptr : NULL,
				  m ? m->tenant.len : 0, m ? m->serial.ptr : NULL, m ? m->serial.len : 0, payload,
				  payload_len, (size_t)atomic_load(&in->policy)->reject_payload_bytes, received_us);
}

/*
 * Over a device's or tenant's rate: the message is refused. The refusal is recorded (at most once a second
 * per device or tenant, saying how many were not) or only counted: returns the rejection or NULL.
 */
static struct message *rate_limited(struct ingest *in, struct message *accepted, const char *topic,
				    size_t topic_len, const struct route_match *m, const void *payload,
				    size_t payload_len, int64_t received_us)
{
	bool device_over = !ratelimit_allow(in->device_limit, accepted->device_id, received_us);
	struct ratelimit *rl = device_over ? in->device_limit : in->tenant_limit;
	int32_t key = device_over ? accepted->device_id : accepted->tenant_id;
	const struct config_validation *v = &in->cfg->validation;
	struct decode_error err = {REJECT_RATE_LIMITED, ""};
	uint32_t suppressed = 0;
	struct message *rejection;

	if (!device_over && ratelimit_allow(in->tenant_limit, accepted->tenant_id, received_us))
		return accepted;
	if (!ratelimit_should_record(rl, key, received_us, &suppressed)) {
		message_free(accepted);
		return NULL;
	}
	snprintf(err.detail, sizeof(err.detail), "%s over %g messages/s (burst %g); %u more refused since the last record",
		 device_over ? "device" : "tenant", device_over ? v->device_rate : v->tenant_rate,
		 device_over ? v->device_burst : v->tenant_burst, suppressed);
	rejection = make_rejection(in, &err, topic, topic_len, m, payload, payload_len, received_us);
	rejection->tenant_id = accepted->tenant_id;
	rejection->device_id = accepted->device_id;
	message_free(accepted);
	return rejection;
}

/*
 * Checks one device's samples against the registry and the policy (and the rate limits), and adds what came
 * of it to out: the readings, a rejection, or nothing (every point dropped, or refusals only counted).
 */
static void validate_device(struct ingest *in, const struct config_validation *policy, const char *topic,
			    size_t topic_len, const void *payload, size_t payload_len, const struct route_match *m,
			    const struct decoded_message *samples, int64_t received_us, struct outcome *out)
{
	struct decode_error err = {REJECT_NONE, ""};
	struct validate_result result;
	struct registry *reg = registry_store_acquire(in->store);
	int rc = validate_message(reg, policy, m, samples, received_us, received_us, &result, &err);

	registry_unref(reg);
	if (rc < 0) {
		outcome_add(out, make_rejection(in, &err, topic, topic_len, m, payload, payload_len, received_us),
			    err.reason);
		return;
	}
	out->dropped += result.dropped_points;
	if (result.message && (in->device_limit || in->tenant_limit)) {
		struct message *limited = rate_limited(in, result.message, topic, topic_len, m, payload, payload_len,
						       received_us);
		outcome_add(out, limited, limited != result.message ? REJECT_RATE_LIMITED : REJECT_NONE);
		return;
	}
	outcome_add(out, result.message, REJECT_NONE);
}

/*
 * Whether every reading has a time from the payload. Decoders stamp a reading without one with received_us
 * (taken for this message, to the microsecond), so a reading carrying exactly that time has none of its own.
 */
static bool carries_own_time(const struct decoded_message *decoded, int64_t received_us)
{
	for (size_t i = 0; i < decoded->count; i++)
		if (decoded->samples[i].time_us == received_us)
			return false;
	return true;
}

/*
 * Turns one MQTT message into *out: route -> (ignore?) -> decode -> validate, per device the payload names.
 * Status and LWT topics, retained messages on routes that ignore them, and payloads that hold no reading are
 * only counted.
 */
/*
 * True when this delivery is a broker's extra copy of a message for an overlapping subscription (issue 15: it
 * was stored twice, with two receive times). Each route subscribed with its own identifier (index + 1); the
 * message is processed under the first route whose filter matches, other copies are ignored (overlap_copy).
 * A broker that sends one copy with every matching identifier has the owner's among them. Without identifiers
 * (MQTT 3.1.1) every copy is processed, as before.
 */
static bool overlap_copy(const struct ingest *in, const char *topic, size_t topic_len,
			 const MQTTAsync_message *msg)
{
	MQTTProperties *props = (MQTTProperties *)&msg->properties; /* Paho's getters take no const */
	int n = MQTTProperties_propertyCount(props, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER);
	int owner;

	if (n <= 0)
		return false;
	owner = route_owner(in->cfg->routes, in->cfg->route_count, topic, topic_len);
	if (owner < 0)
		return false;
	for (int k = 0; k < n; k++)
		if (MQTTProperties_getNumericValueAt(props, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, k) ==
		    owner + 1)
			return false;
	return true;
}

static void process(struct ingest *in, const char *topic, size_t topic_len, const MQTTAsync_message *msg,
		    struct outcome *out)
{
	int64_t received_us = clock_realtime_us();
	const void *payload = msg->payload;
	size_t payload_len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	struct decode_error err = {REJECT_NONE, ""};
	const struct config_validation *policy = atomic_load(&in->policy);
	const struct decoded_message *decoded = &in->decoded;
	const struct route *route;
	struct route_match m;
	int rc;

	out->count = 0;
	out->part_count = 0;
	out->dropped = 0;
	memset(out->skipped, 0, sizeof(out->skipped));
	out->ignored = IGNORE_NONE;
	if (overlap_copy(in, topic, topic_len, msg)) {
		out->ignored = IGNORE_OVERLAP_COPY;
		return;
	}
	route = match_route(in, topic, topic_len, &m, &out->ignored);
	if (out->ignored != IGNORE_NONE)
		return;
	if (!route) {
		err.reason = REJECT_NO_ROUTE;
		snprintf(err.detail, sizeof(err.detail), "topic matches no configured route");
		outcome_add(out, make_rejection(in, &err, topic, topic_len, NULL, payload, payload_len, received_us),
			    REJECT_NO_ROUTE);
		return;
	}
	if (msg->retained && route->ignore_retained) {
		out->ignored = IGNORE_RETAINED;
		return;
	}
	if (payload_len > (size_t)policy->max_payload_bytes) {
		/* Refused before any decoder copies it (with MQTT 5 the broker keeps the giants away already). */
		err.reason = REJECT_OVERSIZED_PAYLOAD;
		snprintf(err.detail, sizeof(err.detail),
			 "payload of %zu bytes exceeds validation.max_payload_bytes (%d)", payload_len,
			 policy->max_payload_bytes);
		outcome_add(out, make_rejection(in, &err, topic, topic_len, &m, payload, payload_len, received_us),
			    err.reason);
		return;
	}
	rc = formats_decode(route->format, &route->payload, payload, payload_len, &m, received_us,
			    (size_t)policy->max_payload_bytes, &in->decoded, &err);
	if (rc >= 0)
		memcpy(out->skipped, decoded->skipped, sizeof(out->skipped));
	if (rc > 0) {
		out->ignored = decoded->ignored;
		return;
	}
	if (rc < 0) {
		outcome_add(out, make_rejection(in, &err, topic, topic_len, &m, payload, payload_len, received_us),
			    err.reason);
		return;
	}
	if (msg->retained && route->retained_timestamped && !carries_own_time(decoded, received_us)) {
		out->ignored = IGNORE_RETAINED;
		return;
	}
	if (decoded->device_count == 0) {
		validate_device(in, policy, topic, topic_len, payload, payload_len, &m, decoded, received_us, out);
		return;
	}
	/* Lines of several devices: each is its own message, accepted or rejected on its own. */
	for (size_t d = 0; d < decoded->device_count; d++) {
		const struct decoded_device *dev = &decoded->devices[d];
		struct decoded_message one = {.samples = decoded->samples + dev->first, .count = dev->count};
		struct route_match dm = m;

		dm.serial = (struct topic_slice){dev->serial, strlen(dev->serial)};
		validate_device(in, policy, topic, topic_len, payload, payload_len, &dm, &one, received_us, out);
	}
}

/* --- making a message safe, or blocking until it is ---------------------------------------------------- */

/*
 * When the bridge stops while the callback cannot take its message, the callback stops here for good
 * without returning: Paho sends the PUBACK only after the callback returns, so the message stays
 * unacknowledged and the broker delivers it again after the restart. Not while the main thread is already
 * inside a Paho call (it waits for Paho's mutex, which this thread holds): then the callback goes on
 * trying, and the stop waits for the spool. Never returns when it parks.
 */
static void park_if_stopping(struct ingest *in)
{
	pthread_mutex_lock(&in->gate);
	if (in->stopping && !in->main_in_paho) {
		in->parked = true;
		atomic_store(&in->refused, true);
		pthread_cond_broadcast(&in->gate_changed);
		log_warn(
			MODULE,
			"stopping while intake is blocked: the message being taken stays unacknowledged, the "
			"broker delivers it again after the restart");
		for (;;)
			pthread_cond_wait(&in->gate_changed, &in->gate);
	}
	pthread_mutex_unlock(&in->gate);
}

/* One wait of the MQTT callback for a message that could not be made safe yet. */
struct intake_block {
	int64_t since_ms;   /* 0: not blocked */
	int64_t counted_ms; /* up to here added to intake_blocked_ms */
	int backoff_ms;
	int last_rc;
};

static const char *block_reason(const struct ingest *in, int rc)
{
	if (!in->spool)
		return "the writer queues are full: the database is not keeping up";
	if (rc == -ETIMEDOUT)
		return "the spool is full: the database is not keeping up";
	if (rc == -ENOENT)
		return "the spool directory is missing";
	return "the spool cannot be written";
}

/*
 * After a failed attempt: accounts the wait (intake_blocked, intake_blocks_total, intake_blocked_seconds),
 * logs the state when it begins or its reason changes (never per message), parks if stopping, and backs off
 * where the attempt itself did not wait (disk errors, a missing directory).
 */
static void intake_wait(struct ingest *in, struct intake_block *b, int rc)
{
	int64_t now = clock_monotonic_ms();

	if (b->since_ms == 0) {
		b->since_ms = b->counted_ms = now;
		b->backoff_ms = RETRY_MIN_MS;
		STATS_ADD(in->stats, intake_blocks, 1);
		atomic_store(&in->stats->intake_blocked, 1);
		log_warn(
			MODULE,
			"intake blocked: %s; nothing more is read from the broker until this message is safe "
			"(it is not acknowledged; keepalive pings pause too, so the broker may drop the connection: "
			"its persistent session keeps the rest and delivers it again)",
			block_reason(in, rc));
	} else if (rc != b->last_rc && strcmp(block_reason(in, rc), block_reason(in, b->last_rc)) != 0) {
		log_warn(MODULE, "intake still blocked: now %s", block_reason(in, rc));
	}
	b->last_rc = rc;
	STATS_ADD(in->stats, intake_blocked_ms, (uint64_t)(now - b->counted_ms));
	b->counted_ms = now;
	park_if_stopping(in);
	if (rc != -ETIMEDOUT) {
		clock_sleep_ms(b->backoff_ms);
		b->backoff_ms = b->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : b->backoff_ms * 2;
	}
}

static void intake_resumed(struct ingest *in, struct intake_block *b)
{
	int64_t now = clock_monotonic_ms();

	if (b->since_ms == 0)
		return;
	STATS_ADD(in->stats, intake_blocked_ms, (uint64_t)(now - b->counted_ms));
	atomic_store(&in->stats->intake_blocked, 0);
	log_info(MODULE, "intake resumed after %.1f s blocked", (double)(now - b->since_ms) / 1000.0);
}

/*
 * One attempt to make every part safe. Disk mode: one spool append of them all (all or none: the broker
 * would redeliver the message whole, and a part taken twice would be stored twice). Memory mode: the parts
 * go to their writers' queues in order; *next is the first one not handed over yet.
 */
static int attempt(struct ingest *in, struct outcome *out, size_t *next, int wait_ms)
{
	if (in->spool)
		return spool_append_all(in->spool, (const struct message *const *)out->parts, out->part_count,
					wait_ms);
	while (*next < out->part_count) {
		struct message *m = out->parts[*next];
		size_t index = message_shard(m, in->queue_count, &in->next_reject_queue);
		int rc = queue_push(in->queues[index], m, wait_ms);
		if (rc == -ETIMEDOUT)
			STATS_ADD(in->stats, enqueue_waits, 1);
		if (rc < 0) /* -EPIPE (closed) only at teardown, after the callbacks stopped: backed off, not spun */
			return rc;
		out->parts[(*next)++] = NULL;
	}
	return 0;
}

/*
 * Makes the parts of one MQTT message safe before Paho acknowledges it: Paho sends the PUBACK when this
 * callback returns, and once a callback has returned 0 it acknowledges ahead from its own memory (FACTS.md).
 * So it never gives up: a full spool or queue, a failed write or a missing directory blocks intake, retried
 * until the message is safe. The first wait lasts at most database.enqueue_timeout_ms. Frees every part.
 */
static void hand_over(struct ingest *in, struct outcome *out)
{
	struct intake_block block = { 0 };
	int wait_ms = in->cfg->database.enqueue_timeout_ms < ATTEMPT_WAIT_MS ?
			      in->cfg->database.enqueue_timeout_ms :
			      ATTEMPT_WAIT_MS;
	size_t next = 0;
	int rc;

	while ((rc = attempt(in, out, &next, wait_ms)) < 0) {
		intake_wait(in, &block, rc);
		wait_ms = ATTEMPT_WAIT_MS;
	}
	intake_resumed(in, &block);
	if (in->spool)
		for (size_t i = 0; i < out->part_count; i++)
			message_free(out->parts[i]);
	out->part_count = 0;
}

/* One MQTT message received; each device part accepted or rejected, or the whole message ignored. */
static void count(struct ingest *in, const struct outcome *out)
{
	STATS_ADD(in->stats, messages_received, 1);
	STATS_ADD(in->stats, points_dropped, out->dropped);
	for (int k = 0; k < SKIP_REASON_COUNT; k++)
		if (out->skipped[k])
			STATS_ADD(in->stats, values_skipped[k], out->skipped[k]);
	if (out->ignored != IGNORE_NONE)
		STATS_ADD(in->stats, messages_ignored[out->ignored], 1);
	for (size_t i = 0; i < out->count; i++) {
		if (out->reasons[i] == REJECT_NONE)
			STATS_ADD(in->stats, messages_accepted, 1);
		else
			STATS_ADD(in->stats, messages_rejected[out->reasons[i]], 1);
	}
}

/*
 * The callback begins. While ingest_stop waits for the previous callback to end, the next one lets it in
 * first (it then takes its message normally; Paho's disconnect waits for that).
 */
static void callback_enter(struct ingest *in)
{
	pthread_mutex_lock(&in->gate);
	while (in->stopping && !in->main_in_paho && !in->parked)
		pthread_cond_wait(&in->gate_changed, &in->gate);
	in->in_callback = true;
	pthread_mutex_unlock(&in->gate);
}

static void callback_leave(struct ingest *in)
{
	pthread_mutex_lock(&in->gate);
	in->in_callback = false;
	pthread_cond_broadcast(&in->gate_changed);
	pthread_mutex_unlock(&in->gate);
}

/*
 * Paho's receive thread calls this inline and sends the PUBACK after it returns. It returns only once the
 * message is safe (so always 1): returning 0 would make Paho acknowledge this and the following messages
 * from its memory, where a restart loses them.
 */
static int on_message_arrived(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct ingest *in = context;
	size_t len = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	struct outcome *out = &in->outcome;

	callback_enter(in);
	process(in, topic, len, msg, out);
	hand_over(in, out);
	count(in, out);
	callback_leave(in);
	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic);
	return 1;
}

/* --- connection and subscriptions ------------------------------------------------------------------ */

static void on_subscribe_success(void *context, MQTTAsync_successData *response)
{
	struct ingest *in = context;

	(void)response;
	atomic_store(&in->connected, true);
	log_info(MODULE, "subscribed to %zu route filter(s)", in->cfg->route_count);
}

static void on_subscribe_failure(void *context, MQTTAsync_failureData *response)
{
	(void)context;
	log_error(MODULE, "subscribe failed: %s (code %d)", response && response->message ? response->message : "",
		  response ? response->code : 0);
}

/* MQTT 5, one route's SUBSCRIBE answered; the last of the round marks the connection subscribed. */
static void on_route_subscribed5(void *context, MQTTAsync_successData5 *response)
{
	struct route_subscription *sub = context;
	struct ingest *in = sub->in;

	if (response && response->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
		log_error(MODULE, "broker refused subscription %s: %s", in->filters[sub->route],
			  MQTTReasonCode_toString(response->reasonCode));
	if (atomic_fetch_sub(&in->subs_pending, 1) == 1)
		on_subscribe_success(in, NULL);
}

static void on_route_subscribe_failed5(void *context, MQTTAsync_failureData5 *response)
{
	struct route_subscription *sub = context;

	log_error(MODULE, "subscribe to %s failed: %s (%s)", sub->in->filters[sub->route],
		  response && response->message ? response->message : "",
		  response ? MQTTReasonCode_toString(response->reasonCode) : "");
}

/* MQTT 5: one SUBSCRIBE per route, so that every delivery names the route's subscription (overlap_copy). */
static void subscribe_with_identifiers(struct ingest *in)
{
	atomic_store(&in->subs_pending, (int)in->cfg->route_count);
	for (size_t i = 0; i < in->cfg->route_count; i++) {
		MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
		MQTTProperty id = { .identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER,
				    .value.integer4 = (int)i + 1 };
		MQTTProperties props = MQTTProperties_initializer;
		int rc;

		in->subs[i] = (struct route_subscription){ in, i };
		opts.context = &in->subs[i];
		opts.onSuccess5 = on_route_subscribed5;
		opts.onFailure5 = on_route_subscribe_failed5;
		if (MQTTProperties_add(&props, &id) != 0) {
			log_error(MODULE, "cannot set the subscription identifier of %s", in->filters[i]);
			continue;
		}
		opts.properties = props;
		rc = MQTTAsync_subscribe(in->client, in->filters[i], in->qos[i], &opts);
		MQTTProperties_free(&props);
		if (rc != MQTTASYNC_SUCCESS)
			log_error(MODULE, "cannot send subscribe for %s: %s", in->filters[i],
				  MQTTAsync_strerror(rc));
	}
}

static void subscribe(struct ingest *in)
{
	MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
	int rc;

	if (in->cfg->mqtt.version == 5) {
		subscribe_with_identifiers(in);
		return;
	}
	opts.context = in;
	opts.onSuccess = on_subscribe_success;
	opts.onFailure = on_subscribe_failure;
	rc = MQTTAsync_subscribeMany(in->client, (int)in->cfg->route_count, in->filters, in->qos, &opts);
	if (rc != MQTTASYNC_SUCCESS)
		log_error(MODULE, "cannot send subscribe: %s", MQTTAsync_strerror(rc));
}

/* --- leaving the group (`mqtt2pg leave`) ------------------------------------------------------------- */

static void on_unsubscribe_success(void *context, MQTTAsync_successData *response)
{
	struct ingest *in = context;

	(void)response;
	atomic_store(&in->last_activity_ms, clock_monotonic_ms());
	atomic_store(&in->unsubscribed, true);
	atomic_store(&in->connected, true);
	log_info(MODULE, "unsubscribed from %zu filter(s): the broker routes nothing new to %s; taking what its "
		 "session still holds", in->cfg->route_count, in->cfg->mqtt.client_id);
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

static void unsubscribe(struct ingest *in)
{
	MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
	int rc;

	opts.context = in;
	if (in->cfg->mqtt.version == 5) {
		opts.onSuccess5 = on_unsubscribe_success5;
		opts.onFailure5 = on_unsubscribe_failure5;
	} else {
		opts.onSuccess = on_unsubscribe_success;
		opts.onFailure = on_unsubscribe_failure;
	}
	rc = MQTTAsync_unsubscribeMany(in->client, (int)in->cfg->route_count, in->filters, &opts);
	if (rc != MQTTASYNC_SUCCESS)
		log_error(MODULE, "cannot send unsubscribe: %s", MQTTAsync_strerror(rc));
}

/* The message callback while leaving: the same path, plus what ingest_has_left needs to know. */
static int on_message_leaving(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct ingest *in = context;
	int taken;

	atomic_store(&in->busy, true);
	taken = on_message_arrived(context, topic, topic_len, msg);
	if (!taken)
		atomic_store(&in->refused, true);
	atomic_store(&in->last_activity_ms, clock_monotonic_ms());
	atomic_store(&in->busy, false);
	return taken;
}

bool ingest_has_left(struct ingest *in, int quiet_ms)
{
	return in->leaving && atomic_load(&in->unsubscribed) && !atomic_load(&in->busy) &&
	       clock_monotonic_ms() - atomic_load(&in->last_activity_ms) >= quiet_ms;
}

/* Called after every successful connect, the first one and each automatic reconnect. */
static void on_connected(void *context, char *cause)
{
	struct ingest *in = context;

	STATS_ADD(in->stats, mqtt_connects, 1);
	atomic_store(&in->connected_at_ms, clock_monotonic_ms());
	(void)cause;
	log_info(MODULE, "connected to %s as %s", in->cfg->mqtt.uri, in->cfg->mqtt.client_id);
	/* Subscribing again is harmless when the session kept the subscriptions, and required when it did not. */
	if (in->leaving)
		unsubscribe(in);
	else
		subscribe(in);
}

/*
 * Two processes with one client id take the session from each other in turns, each connection closed a few
 * seconds after it began. Mosquitto 2.0 closes the old connection without a DISCONNECT reason (MQTT 5 brokers
 * that send one trigger on_broker_disconnect), so the pattern is all there is to go on: say so after 3 in a row.
 */
static void suspect_shared_client_id(struct ingest *in)
{
	enum { SHORT_MS = 15000, IN_A_ROW = 3 };
	int64_t lasted = clock_monotonic_ms() - atomic_load(&in->connected_at_ms);

	if (lasted >= SHORT_MS) {
		atomic_store(&in->short_connections, 0);
		return;
	}
	if (atomic_fetch_add(&in->short_connections, 1) + 1 == IN_A_ROW)
		log_error(MODULE, "the broker closed %d connections in a row within %d s of connecting: is another process "
			  "connecting as %s? Each replica needs its own mqtt.client_id (e.g. \"mqtt2pg-{hostname}\"); "
			  "Mosquitto logs \"Client <id> already connected, closing old connection\"",
			  IN_A_ROW, SHORT_MS / 1000, in->cfg->mqtt.client_id);
}

static void on_connection_lost(void *context, char *cause)
{
	struct ingest *in = context;

	atomic_store(&in->connected, false);
	STATS_ADD(in->stats, mqtt_connection_lost, 1);
	log_warn(MODULE, "connection to the broker lost (%s); reconnecting", cause ? cause : "no reason given");
	suspect_shared_client_id(in);
}

/*
 * MQTT 5: the broker said why it is closing the connection (on_connection_lost follows). The one an operator
 * must act on: "session taken over", another client connected with our client id, and the two will keep
 * taking the session from each other.
 */
static void on_broker_disconnect(void *context, MQTTProperties *properties, enum MQTTReasonCodes reason)
{
	struct ingest *in = context;

	(void)properties;
	if (reason == MQTTREASONCODE_SESSION_TAKEN_OVER)
		log_error(MODULE, "the broker closed our session: another client connected as %s; each replica needs "
			  "its own mqtt.client_id (e.g. \"mqtt2pg-{hostname}\")", in->cfg->mqtt.client_id);
	else
		log_warn(MODULE, "the broker is disconnecting us: %s (reason code %d)", MQTTReasonCode_toString(reason),
			 (int)reason);
}

static void on_connect_failure(void *context, MQTTAsync_failureData *response)
{
	struct ingest *in = context;

	log_warn(MODULE, "cannot connect to %s: %s (code %d); retrying", in->cfg->mqtt.uri,
		 response && response->message ? response->message : "", response ? response->code : 0);
}

static void on_connect_failure5(void *context, MQTTAsync_failureData5 *response)
{
	struct ingest *in = context;

	log_warn(MODULE, "cannot connect to %s: %s (%s); retrying", in->cfg->mqtt.uri,
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

static void build_filters(struct ingest *in)
{
	const struct config_mqtt *mq = &in->cfg->mqtt;

	in->filters = xcalloc(in->cfg->route_count, sizeof(*in->filters));
	in->subs = xcalloc(in->cfg->route_count, sizeof(*in->subs));
	in->qos = xcalloc(in->cfg->route_count, sizeof(*in->qos));
	for (size_t i = 0; i < in->cfg->route_count; i++) {
		const char *filter = in->cfg->routes[i].filter;
		if (mq->shared_group) {
			size_t n = strlen(mq->shared_group) + strlen(filter) + 9;
			in->filters[i] = xmalloc(n);
			snprintf(in->filters[i], n, "$share/%s/%s", mq->shared_group, filter);
		} else {
			in->filters[i] = xstrdup(filter);
		}
		in->qos[i] = mq->qos;
	}
}

static int start_connect(struct ingest *in)
{
	const struct config_mqtt *mq = &in->cfg->mqtt;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_connectOptions *o = mq->version == 5 ? &opts5 : &opts;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
	MQTTProperty max_packet = {.identifier = MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE};
	MQTTProperty receive_max = {.identifier = MQTTPROPERTY_CODE_RECEIVE_MAXIMUM};
	int rc;

	o->keepAliveInterval = mq->keepalive;
	o->connectTimeout = mq->connect_timeout;
	o->automaticReconnect = 1;
	o->minRetryInterval = mq->reconnect_min;
	o->maxRetryInterval = mq->reconnect_max;
	o->username = mq->username;
	o->password = mq->password;
	o->context = in;
	o->MQTTVersion = mq->version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	if (mq->version == 5) {
		o->cleanstart = mq->clean_session;
		expiry.value.integer4 = (unsigned)mq->session_expiry;
		MQTTProperties_add(&props, &expiry);
		/* The broker does not send us a packet past this (MQTT 5, 3.1.2.11.4): a giant payload is dropped
		 * there instead of costing us its size in memory. The MiB above max_payload_bytes leaves room for
		 * the topic and properties, so what is merely over the limit still arrives and is rejected with its
		 * reason. MQTT 3.1.1 has no such field: set the broker's message_size_limit (README). */
		max_packet.value.integer4 = (unsigned)atomic_load(&in->policy)->max_payload_bytes + MAX_PACKET_HEADROOM;
		MQTTProperties_add(&props, &max_packet);
		/* The broker's in-flight window towards us. Without it Mosquitto uses its max_inflight_messages (20 by
		 * default) and then waits for our PUBACKs, which we send one by one after each message is in the
		 * spool: the drain was bound by that round trip (issue 17). With it (Mosquitto 2.0
		 * property__process_connect) the broker keeps the socket full. Nothing is acknowledged sooner: a
		 * message in the window that we have not processed is redelivered after a restart. */
		receive_max.value.integer2 = (unsigned short)mq->receive_maximum;
		MQTTProperties_add(&props, &receive_max);
		o->connectProperties = &props;
		o->onFailure5 = on_connect_failure5;
	} else {
		o->cleansession = mq->clean_session;
		o->onFailure = on_connect_failure;
	}
	if (mq->ca_file || strncmp(mq->uri, "ssl://", 6) == 0 || strncmp(mq->uri, "mqtts://", 8) == 0) {
		MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
		ssl.trustStore = mq->ca_file;
		ssl.keyStore = mq->cert_file;
		ssl.privateKey = mq->key_file;
		ssl.enableServerCertAuth = mq->tls_verify;
		ssl.verify = mq->tls_verify;
		in->ssl = ssl;
		o->ssl = &in->ssl;
	}
	rc = MQTTAsync_connect(in->client, o);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error(MODULE, "cannot start connecting to %s: %s", mq->uri, MQTTAsync_strerror(rc));
		return -1;
	}
	return 0;
}

struct ingest *ingest_start(const struct config *cfg, struct registry_store *store, struct spool *spool,
			    struct queue **queues, size_t queue_count, struct stats *stats, enum ingest_mode mode)
{
	MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
	struct ingest *in = xcalloc(1, sizeof(*in));
	int rc;

	in->cfg = cfg;
	in->store = store;
	in->spool = spool;
	in->queues = queues;
	in->queue_count = queue_count;
	in->stats = stats;
	atomic_init(&in->connected, false);
	atomic_init(&in->disconnected, false);
	atomic_init(&in->connected_at_ms, 0);
	atomic_init(&in->short_connections, 0);
	in->leaving = mode == INGEST_LEAVE;
	atomic_init(&in->unsubscribed, false);
	atomic_init(&in->busy, false);
	atomic_init(&in->refused, false);
	atomic_init(&in->last_activity_ms, clock_monotonic_ms());
	atomic_init(&in->policy, &cfg->validation);
	pthread_mutex_init(&in->gate, NULL);
	pthread_cond_init(&in->gate_changed, NULL);
	build_filters(in);
	in->device_limit = ratelimit_new(cfg->validation.device_rate, cfg->validation.device_burst);
	in->tenant_limit = ratelimit_new(cfg->validation.tenant_rate, cfg->validation.tenant_burst);
	in->sampler = reject_sampler_new();
	MQTTAsync_setTraceCallback(on_trace);
	MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
	create.MQTTVersion = cfg->mqtt.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
	rc = MQTTAsync_createWithOptions(&in->client, cfg->mqtt.uri, cfg->mqtt.client_id, MQTTCLIENT_PERSISTENCE_NONE,
					 NULL, &create);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error(MODULE, "cannot create MQTT client for %s: %s", cfg->mqtt.uri, MQTTAsync_strerror(rc));
		goto fail;
	}
	/* Callbacks may only be set while disconnected: before the first connect. */
	if (MQTTAsync_setCallbacks(in->client, in, on_connection_lost,
				   in->leaving ? on_message_leaving : on_message_arrived, NULL) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setConnected(in->client, in, on_connected) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setDisconnected(in->client, in, on_broker_disconnect) != MQTTASYNC_SUCCESS) {
		log_error(MODULE, "cannot set MQTT callbacks");
		goto fail;
	}
	if (start_connect(in) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->route_count; i++)
		log_info(MODULE, "route %s (%s) -> subscription %s", cfg->routes[i].template_text,
			 route_format_name(cfg->routes[i].format), in->filters[i]);
	return in;
fail:
	ingest_stop(in);
	return NULL;
}

void ingest_set_policy(struct ingest *in, const struct config_validation *policy)
{
	atomic_store(&in->policy, policy);
}

bool ingest_is_connected(const struct ingest *in)
{
	return atomic_load(&in->connected);
}

static void on_disconnected(void *context, MQTTAsync_successData *response)
{
	struct ingest *in = context;
	(void)response;
	atomic_store(&in->disconnected, true);
}

static void on_disconnected5(void *context, MQTTAsync_successData5 *response)
{
	struct ingest *in = context;
	(void)response;
	atomic_store(&in->disconnected, true);
}

static void on_disconnect_failure(void *context, MQTTAsync_failureData *response)
{
	struct ingest *in = context;
	(void)response;
	atomic_store(&in->disconnected, true);
}

static void on_disconnect_failure5(void *context, MQTTAsync_failureData5 *response)
{
	struct ingest *in = context;
	(void)response;
	atomic_store(&in->disconnected, true);
}

/*
 * Leaving, MQTT 5, and everything the session held is ours: DISCONNECT with Session Expiry Interval 0 makes
 * the broker delete the session, and with it our place in the shared group. If a message was left
 * unacknowledged (intake blocked at the stop), the session is kept: ending it could drop that message. MQTT 3.1.1 has no such field;
 * the session stays, without subscriptions, so nothing more is routed to it.
 */
static bool end_session_on_disconnect(struct ingest *in, MQTTProperties *props)
{
	MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL, .value.integer4 = 0};

	if (!in->leaving || !atomic_load(&in->unsubscribed))
		return false;
	if (atomic_load(&in->refused) || atomic_load(&in->busy)) {
		log_warn(MODULE, "a message was left unacknowledged, or is still being taken, while leaving: keeping the session "
			 "(run leave again)");
		return false;
	}
	if (in->cfg->mqtt.version != 5) {
		log_info(MODULE, "MQTT 3.1.1: the session stays on the broker, without subscriptions");
		return false;
	}
	if (MQTTProperties_add(props, &expiry) != 0) {
		log_error(MODULE, "cannot set the session expiry on DISCONNECT; the session stays on the broker");
		return false;
	}
	log_info(MODULE, "ending the session of %s (DISCONNECT with session expiry 0)", in->cfg->mqtt.client_id);
	return true;
}

bool ingest_left_cleanly(struct ingest *in)
{
	return in->leaving && atomic_load(&in->unsubscribed) && !atomic_load(&in->refused);
}

/*
 * Begins the stop: waits until no callback runs, or the running one has parked (a blocked callback checks
 * at least every RETRY_MAX_MS). Returns false when it parked: then Paho's mutex stays taken for good, and
 * neither Paho nor what the callback uses may be touched again.
 */
static bool stop_callbacks(struct ingest *in)
{
	bool paho_usable;

	pthread_mutex_lock(&in->gate);
	in->stopping = true;
	while (in->in_callback && !in->parked)
		pthread_cond_wait(&in->gate_changed, &in->gate);
	in->main_in_paho = !in->parked;
	paho_usable = !in->parked;
	pthread_cond_broadcast(&in->gate_changed); /* a callback waiting in callback_enter goes on */
	pthread_mutex_unlock(&in->gate);
	return paho_usable;
}

void ingest_stop(struct ingest *in)
{
	if (!in)
		return;
	if (in->client && !stop_callbacks(in)) {
		/* Deliberately not freed: the parked callback holds in and Paho's mutex until the process exits. */
		log_warn(
			MODULE,
			"not disconnecting from the broker: intake was blocked; the connection closes at exit "
			"and the broker keeps what was not acknowledged");
		return;
	}
	if (in->client) {
		MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
		MQTTAsync_disconnectOptions opts5 = MQTTAsync_disconnectOptions_initializer5;
		MQTTAsync_disconnectOptions *o = in->cfg->mqtt.version == 5 ? &opts5 : &opts;
		MQTTProperties props = MQTTProperties_initializer;

		o->timeout = DISCONNECT_TIMEOUT_MS;
		if (end_session_on_disconnect(in, &props))
			o->properties = props;
		o->context = in;
		if (in->cfg->mqtt.version == 5) {
			o->onSuccess5 = on_disconnected5;
			o->onFailure5 = on_disconnect_failure5;
		} else {
			o->onSuccess = on_disconnected;
			o->onFailure = on_disconnect_failure;
		}
		if (MQTTAsync_disconnect(in->client, o) == MQTTASYNC_SUCCESS) {
			for (int waited = 0; !atomic_load(&in->disconnected) && waited < DISCONNECT_TIMEOUT_MS + 1000;
			     waited += 10)
				clock_sleep_ms(10);
		}
		MQTTProperties_free(&props);
		/* destroy joins Paho's threads: no callback runs after it. */
		MQTTAsync_destroy(&in->client);
		log_info(MODULE, "disconnected from the broker");
	}
	for (size_t i = 0; in->filters && i < in->cfg->route_count; i++)
		free(in->filters[i]);
	free(in->subs);
	free(in->filters);
	free(in->qos);
	decode_clear(&in->decoded);
	free(in->outcome.parts);
	free(in->outcome.reasons);
	ratelimit_free(in->device_limit);
	ratelimit_free(in->tenant_limit);
	reject_sampler_free(in->sampler);
	pthread_cond_destroy(&in->gate_changed);
	pthread_mutex_destroy(&in->gate);
	free(in);
}
