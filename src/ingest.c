// SPDX-License-Identifier: Apache-2.0
/*
 * ingest: the per-message chain (see ingest.h): route -> decode -> validate -> rate limit -> spool or writer
 * queue -> counters. Everything here runs on one thread (Paho's receive thread in the daemon), so the
 * decode buffer, the outcome, the rate limiters and the sampler it reuses need no lock. It has no Paho in
 * it: mqtt.c hands it each message's topic and payload.
 */
#include "ingest.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "payload/decode.h"
#include "payload/formats.h"
#include "util/log.h"
#include "message.h"
#include "ratelimit.h"
#include "reject.h"
#include "route.h"
#include "util/text.h"
#include "validate.h"
#include "util/xalloc.h"

/* The chain's log lines kept the module name they had when it lived with the client: operators grep it. */
#define MODULE		"mqtt"
#define ATTEMPT_WAIT_MS 1000 /* one wait on a full spool or queue, between checks for a stop */
#define RETRY_MIN_MS	50   /* back-off after a disk error or a missing directory... */
#define RETRY_MAX_MS	2000 /* ...doubling up to this */

/*
 * What one MQTT message became: a pipeline message per device it names (readings or a rejection; NULL when
 * there is nothing to write) with its reject reason (REJECT_NONE: accepted), or the reason it was ignored.
 */
struct outcome {
	struct message **parts; /* what there is to write (owned until handed over), part_count of them */
	enum reject_reason *reasons; /* per device part, count of them: REJECT_NONE = accepted */
	size_t part_count;
	size_t count;
	size_t capacity;
	uint32_t dropped;
	uint32_t skipped[SKIP_REASON_COUNT]; /* values passed over in the decoded payload */
	enum ignore_reason ignored;
};

struct ingest {
	struct ingest_deps deps; /* what it borrows (ingest.h) */
	size_t next_reject_queue;
	struct decoded_message decoded;			  /* reused; chain thread only */
	struct outcome outcome;				  /* reused; chain thread only */
	_Atomic(const struct config_validation *) policy; /* swapped by reload, read once per message */
	struct ratelimit *device_limit;			  /* chain thread only; NULL = unlimited */
	struct ratelimit *tenant_limit;
	struct reject_sampler *sampler; /* chain thread only */
};

/* --- the per-message path -------------------------------------------------------------------------- */

/* The route of the topic (route_select); NULL with *ignored set when a route's ignore filter claims it. */
static const struct route *match_route(const struct ingest *in, const char *topic, size_t len,
				       struct route_match *m, enum ignore_reason *ignored)
{
	bool status = false;
	const struct route *r =
		route_select(in->deps.cfg->routes, in->deps.cfg->route_count, topic, len, m, &status);

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
static bool sample_rejection(struct ingest *in, const struct decode_error *err, const char *topic,
			     size_t topic_len, const struct route_match *m, int64_t received_us, char *detail,
			     size_t cap)
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
		snprintf(detail, cap, "%s; %u more like it since the last record (counted, not stored)",
			 err->detail, suppressed);
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
	struct reject_source source;

	if (log_enabled(LOG_LEVEL_DEBUG)) {
		/* Both may hold device text (a topic level, a JSON key): escaped, or it could paint the log. */
		char safe_topic[256], safe_detail[400];
		text_escape(safe_topic, sizeof(safe_topic), topic, topic_len);
		text_escape(safe_detail, sizeof(safe_detail), err->detail, strlen(err->detail));
		log_debug(MODULE, "rejected message on topic %s: %s (%s)", safe_topic,
			  reject_reason_name(err->reason), safe_detail);
	}
	if (!sample_rejection(in, err, topic, topic_len, m, received_us, detail, sizeof(detail)))
		return NULL;
	source = (struct reject_source){ .topic = topic,
					 .topic_len = topic_len,
					 .tenant = m ? m->tenant.ptr : NULL,
					 .tenant_len = m ? m->tenant.len : 0,
					 .serial = m ? m->serial.ptr : NULL,
					 .serial_len = m ? m->serial.len : 0,
					 .payload = payload,
					 .payload_len = payload_len };
	return message_new_reject(err->reason, detail, &source,
				  (size_t)atomic_load(&in->policy)->reject_payload_bytes, received_us);
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
	const struct config_validation *v = &in->deps.cfg->validation;
	struct decode_error err = { REJECT_RATE_LIMITED, "" };
	uint32_t suppressed = 0;
	struct message *rejection;

	if (!device_over && ratelimit_allow(in->tenant_limit, accepted->tenant_id, received_us))
		return accepted;
	if (!ratelimit_should_record(rl, key, received_us, &suppressed)) {
		message_free(accepted);
		return NULL;
	}
	snprintf(err.detail, sizeof(err.detail),
		 "%s over %g messages/s (burst %g); %u more refused since the last record",
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
			    size_t topic_len, const void *payload, size_t payload_len,
			    const struct route_match *m, const struct decoded_message *samples,
			    int64_t received_us, struct outcome *out)
{
	struct decode_error err = { REJECT_NONE, "" };
	struct validate_result result;
	struct registry *reg = registry_store_acquire(in->deps.store);
	int rc = validate_message(reg, policy, m, samples, received_us, received_us, &result, &err);

	registry_unref(reg);
	if (rc < 0) {
		outcome_add(out,
			    make_rejection(in, &err, topic, topic_len, m, payload, payload_len, received_us),
			    err.reason);
		return;
	}
	out->dropped += result.dropped_points;
	if (result.message && (in->device_limit || in->tenant_limit)) {
		struct message *limited = rate_limited(in, result.message, topic, topic_len, m, payload,
						       payload_len, received_us);
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
 * True when this delivery is a broker's extra copy of a message for an overlapping subscription (issue 15: it
 * was stored twice, with two receive times). Each route subscribed with its own identifier (index + 1); the
 * message is processed under the first route whose filter matches, other copies are ignored (overlap_copy).
 * A broker that sends one copy with every matching identifier has the owner's among them. Without identifiers
 * (MQTT 3.1.1) every copy is processed, as before.
 */
static bool overlap_copy(const struct ingest *in, const char *topic, size_t topic_len,
			 const struct ingest_arrival *arrival)
{
	int owner;

	if (arrival->subscription_id_count == 0)
		return false;
	owner = route_owner(in->deps.cfg->routes, in->deps.cfg->route_count, topic, topic_len);
	if (owner < 0)
		return false;
	for (size_t k = 0; k < arrival->subscription_id_count; k++)
		if (arrival->subscription_ids[k] == owner + 1)
			return false;
	return true;
}

/*
 * Turns one MQTT message into *out: route -> (ignore?) -> decode -> validate, per device the payload names.
 * Status and LWT topics, retained messages on routes that ignore them, and payloads that hold no reading are
 * only counted.
 */
static void process(struct ingest *in, const char *topic, size_t topic_len, const void *payload,
		    size_t payload_len, const struct ingest_arrival *arrival, struct outcome *out)
{
	int64_t received_us = arrival->received_us;
	struct decode_error err = { REJECT_NONE, "" };
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
	if (overlap_copy(in, topic, topic_len, arrival)) {
		out->ignored = IGNORE_OVERLAP_COPY;
		return;
	}
	route = match_route(in, topic, topic_len, &m, &out->ignored);
	if (out->ignored != IGNORE_NONE)
		return;
	if (!route) {
		err.reason = REJECT_NO_ROUTE;
		snprintf(err.detail, sizeof(err.detail), "topic matches no configured route");
		outcome_add(
			out,
			make_rejection(in, &err, topic, topic_len, NULL, payload, payload_len, received_us),
			REJECT_NO_ROUTE);
		return;
	}
	if (arrival->retained && route->ignore_retained) {
		out->ignored = IGNORE_RETAINED;
		return;
	}
	if (payload_len > (size_t)policy->max_payload_bytes) {
		/* Refused before any decoder copies it (with MQTT 5 the broker keeps the giants away already). */
		err.reason = REJECT_OVERSIZED_PAYLOAD;
		snprintf(err.detail, sizeof(err.detail),
			 "payload of %zu bytes exceeds validation.max_payload_bytes (%d)", payload_len,
			 policy->max_payload_bytes);
		outcome_add(out,
			    make_rejection(in, &err, topic, topic_len, &m, payload, payload_len, received_us),
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
		outcome_add(out,
			    make_rejection(in, &err, topic, topic_len, &m, payload, payload_len, received_us),
			    err.reason);
		return;
	}
	if (arrival->retained && route->retained_timestamped && !carries_own_time(decoded, received_us)) {
		out->ignored = IGNORE_RETAINED;
		return;
	}
	if (decoded->device_count == 0) {
		validate_device(in, policy, topic, topic_len, payload, payload_len, &m, decoded, received_us,
				out);
		return;
	}
	/* Lines of several devices: each is its own message, accepted or rejected on its own. */
	for (size_t d = 0; d < decoded->device_count; d++) {
		const struct decoded_device *dev = &decoded->devices[d];
		struct decoded_message one = { .samples = decoded->samples + dev->first,
					       .count = dev->count };
		struct route_match dm = m;

		dm.serial = (struct topic_slice){ dev->serial, strlen(dev->serial) };
		validate_device(in, policy, topic, topic_len, payload, payload_len, &dm, &one, received_us,
				out);
	}
}

/* --- making a message safe, or blocking until it is ---------------------------------------------------- */

/* One wait of the chain for a message that could not be made safe yet. */
struct intake_block {
	int64_t since_ms;   /* 0: not blocked */
	int64_t counted_ms; /* up to here added to intake_blocked_ms */
	int backoff_ms;
	int last_rc;
};

static const char *block_reason(const struct ingest *in, int rc)
{
	if (!in->deps.spool)
		return "the writer queues are full: the database is not keeping up";
	if (rc == -ETIMEDOUT)
		return "the spool is full: the database is not keeping up";
	if (rc == -ENOENT)
		return "the spool directory is missing";
	return "the spool cannot be written";
}

/*
 * After a failed attempt: accounts the wait (intake_blocked, intake_blocks_total, intake_blocked_seconds),
 * logs the state when it begins or its reason changes (never per message), calls the blocked hook (mqtt.c
 * parks there when the bridge is stopping), and backs off
 * where the attempt itself did not wait (disk errors, a missing directory).
 */
static void intake_wait(struct ingest *in, struct intake_block *b, int rc)
{
	int64_t now = clock_monotonic_ms();

	if (b->since_ms == 0) {
		b->since_ms = b->counted_ms = now;
		b->backoff_ms = RETRY_MIN_MS;
		STATS_ADD(in->deps.stats, intake_blocks, 1);
		atomic_store(&in->deps.stats->intake_blocked, 1);
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
	STATS_ADD(in->deps.stats, intake_blocked_ms, (uint64_t)(now - b->counted_ms));
	b->counted_ms = now;
	if (in->deps.blocked)
		in->deps.blocked(in->deps.blocked_context);
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
	STATS_ADD(in->deps.stats, intake_blocked_ms, (uint64_t)(now - b->counted_ms));
	atomic_store(&in->deps.stats->intake_blocked, 0);
	log_info(MODULE, "intake resumed after %.1f s blocked", (double)(now - b->since_ms) / 1000.0);
}

/*
 * One attempt to make every part safe. Disk mode: one spool append of them all (all or none: the broker
 * would redeliver the message whole, and a part taken twice would be stored twice). Memory mode: the parts
 * go to their writers' queues in order; *next is the first one not handed over yet.
 */
static int attempt(struct ingest *in, struct outcome *out, size_t *next, int wait_ms)
{
	if (in->deps.spool)
		return spool_append_all(in->deps.spool, (const struct message *const *)out->parts,
					out->part_count, wait_ms);
	while (*next < out->part_count) {
		struct message *m = out->parts[*next];
		size_t index = message_shard(m, in->deps.queue_count, &in->next_reject_queue);
		int rc = queue_push(in->deps.queues[index], m, wait_ms);
		if (rc == -ETIMEDOUT)
			STATS_ADD(in->deps.stats, enqueue_waits, 1);
		if (rc <
		    0) /* -EPIPE (closed) only at teardown, after the callbacks stopped: backed off, not spun */
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
	int wait_ms = in->deps.cfg->database.enqueue_timeout_ms < ATTEMPT_WAIT_MS ?
			      in->deps.cfg->database.enqueue_timeout_ms :
			      ATTEMPT_WAIT_MS;
	size_t next = 0;
	int rc;

	while ((rc = attempt(in, out, &next, wait_ms)) < 0) {
		intake_wait(in, &block, rc);
		wait_ms = ATTEMPT_WAIT_MS;
	}
	intake_resumed(in, &block);
	if (in->deps.spool)
		for (size_t i = 0; i < out->part_count; i++)
			message_free(out->parts[i]);
	out->part_count = 0;
}

/* One MQTT message received; each device part accepted or rejected, or the whole message ignored. */
static void count(struct ingest *in, const struct outcome *out)
{
	STATS_ADD(in->deps.stats, messages_received, 1);
	STATS_ADD(in->deps.stats, points_dropped, out->dropped);
	for (int k = 0; k < SKIP_REASON_COUNT; k++)
		if (out->skipped[k])
			STATS_ADD(in->deps.stats, values_skipped[k], out->skipped[k]);
	if (out->ignored != IGNORE_NONE)
		STATS_ADD(in->deps.stats, messages_ignored[out->ignored], 1);
	for (size_t i = 0; i < out->count; i++) {
		if (out->reasons[i] == REJECT_NONE)
			STATS_ADD(in->deps.stats, messages_accepted, 1);
		else
			STATS_ADD(in->deps.stats, messages_rejected[out->reasons[i]], 1);
	}
}

/* --- the chain's entry points -------------------------------------------------------------------------- */

struct ingest *ingest_new(const struct ingest_deps *deps)
{
	struct ingest *in = xcalloc(1, sizeof(*in));

	in->deps = *deps;
	atomic_init(&in->policy, &deps->cfg->validation);
	in->device_limit =
		ratelimit_new(deps->cfg->validation.device_rate, deps->cfg->validation.device_burst);
	in->tenant_limit =
		ratelimit_new(deps->cfg->validation.tenant_rate, deps->cfg->validation.tenant_burst);
	in->sampler = reject_sampler_new();
	return in;
}

void ingest_set_policy(struct ingest *in, const struct config_validation *policy)
{
	atomic_store(&in->policy, policy);
}

void ingest_message(struct ingest *in, const char *topic, size_t topic_len, const void *payload,
		    size_t payload_len, const struct ingest_arrival *arrival)
{
	struct outcome *out = &in->outcome;

	process(in, topic, topic_len, payload, payload_len, arrival, out);
	hand_over(in, out);
	count(in, out);
}

void ingest_free(struct ingest *in)
{
	if (!in)
		return;
	decode_clear(&in->decoded);
	free(in->outcome.parts);
	free(in->outcome.reasons);
	ratelimit_free(in->device_limit);
	ratelimit_free(in->tenant_limit);
	reject_sampler_free(in->sampler);
	free(in);
}
