/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unit that flows from ingest to the writers: one MQTT message, either its validated readings (all
 * of one tenant and one device) or the record of why it was rejected. A message is owned by exactly one
 * stage at a time: ingest creates it, the queue holds it, a writer frees it once committed.
 */
#ifndef MQTT2PG_MESSAGE_H
#define MQTT2PG_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "reject.h"

enum message_kind {
	MESSAGE_READINGS,
	MESSAGE_REJECT,
};

/*
 * One row of measurements. point_id > 0 is a registered point; point_id < 0 names a point that the writer
 * must register first (policy "register"): its name is message->new_points[-point_id - 1].
 */
struct reading {
	int64_t time_us; /* microseconds since the Unix epoch, UTC */
	double value;
	int32_t point_id;
};

struct rejection {
	enum reject_reason reason;
	char *detail;		/* owned, escaped (text_escape) */
	char *topic;		/* owned, escaped */
	char *tenant_slug;	/* owned, escaped claimed tenant, may be NULL */
	char *serial;		/* owned, escaped claimed serial, may be NULL */
	unsigned char *payload; /* owned raw bytes, truncated to the configured size */
	size_t payload_len;
};

struct message {
	struct message *next; /* queue link, owned by whoever holds the message */
	uint64_t spool_seq;   /* the spool record it came from; 0 when not spooled (memory mode) */
	enum message_kind kind;
	int64_t received_us;
	int32_t tenant_id; /* 0 for rejections */
	int32_t device_id; /* 0 for rejections */
	char **new_points; /* owned names, for readings with point_id < 0 */
	uint32_t new_point_count;
	struct rejection *rejection; /* owned, MESSAGE_REJECT only */
	uint32_t reading_count;
	struct reading readings[]; /* MESSAGE_READINGS only */
};

/* Returns an owned message with room for reading_count readings (reading_count is set, readings are not). */
struct message *message_new_readings(int32_t tenant_id, int32_t device_id, uint32_t reading_count,
				     int64_t received_us);

/*
 * Where a rejected message came from: the MQTT topic, the tenant and serial it claimed (topic levels or
 * payload fields) and its payload, each as bytes with their length (not NUL-terminated, as Paho gives them).
 * A NULL pointer is "not known" (stored as NULL); the lengths of NULL fields are ignored.
 */
struct reject_source {
	const char *topic;
	size_t topic_len;
	const char *tenant;
	size_t tenant_len;
	const char *serial;
	size_t serial_len;
	const void *payload;
	size_t payload_len;
};

/*
 * Returns an owned rejection message. Borrows detail and source (NULL: nothing is known of where it came
 * from, as for a row the database refused): strings are copied and escaped (text_escape), the payload is
 * copied raw and truncated to max_payload bytes.
 */
struct message *message_new_reject(enum reject_reason reason, const char *detail,
				   const struct reject_source *source, size_t max_payload,
				   int64_t received_us);

/* Appends an owned copy of name to m->new_points and returns the point_id that refers to it (negative). */
int32_t message_add_new_point(struct message *m, const char *name);

/*
 * Serialises m (not its next/spool_seq) into *buf from byte offset on (the buffer grown as needed, the bytes
 * before offset kept; *cap is its size) and returns the length written. The format is the spool's record
 * payload: native byte order, the same machine reads it back.
 */
size_t message_encode(const struct message *m, unsigned char **buf, size_t *cap, size_t offset);

/* Decodes what message_encode wrote; returns an owned message, or NULL if the bytes are not well-formed. */
struct message *message_decode(const unsigned char *buf, size_t len) __attribute__((warn_unused_result));

/*
 * Which of n writers takes m: readings by device (so one device's readings stay in order on one connection),
 * rejections round-robin through *next_rejection.
 */
static inline size_t message_shard(const struct message *m, size_t n, size_t *next_rejection)
{
	return m->kind == MESSAGE_READINGS ? (size_t)m->device_id % n : (*next_rejection)++ % n;
}

/* Frees m and everything it owns; NULL is a no-op. Does not follow m->next. */
void message_free(struct message *m);

#endif
