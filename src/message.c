// SPDX-License-Identifier: Apache-2.0
/*
 * message: construction and destruction of the pipeline's unit of work. Readings live in the same
 * allocation as their header, so an accepted message costs one malloc.
 */
#include "message.h"

#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "xalloc.h"

struct message *message_new_readings(int32_t tenant_id, int32_t device_id, uint32_t reading_count,
				     int64_t received_us)
{
	struct message *m = xmalloc(sizeof(*m) + (size_t)reading_count * sizeof(struct reading));

	memset(m, 0, sizeof(*m));
	m->kind = MESSAGE_READINGS;
	m->tenant_id = tenant_id;
	m->device_id = device_id;
	m->reading_count = reading_count;
	m->received_us = received_us;
	return m;
}

static char *escaped_copy(const char *s, size_t len, size_t cap)
{
	char *dst;

	if (!s)
		return NULL;
	dst = xmalloc(cap);
	return text_escape(dst, cap, s, len);
}

struct message *message_new_reject(enum reject_reason reason, const char *detail, const char *topic,
				   size_t topic_len, const char *tenant, size_t tenant_len, const char *serial,
				   size_t serial_len, const void *payload, size_t payload_len, size_t max_payload,
				   int64_t received_us)
{
	struct message *m = xcalloc(1, sizeof(*m));
	struct rejection *r = xcalloc(1, sizeof(*r));

	m->kind = MESSAGE_REJECT;
	m->received_us = received_us;
	m->rejection = r;
	r->reason = reason;
	/* Escaping can grow a byte to four ("\xNN"); the caps keep rows small whatever a device sends. */
	r->detail = escaped_copy(detail ? detail : "", detail ? strlen(detail) : 0, 512);
	r->topic = escaped_copy(topic, topic_len, 1024);
	r->tenant_slug = escaped_copy(tenant, tenant_len, 256);
	r->serial = escaped_copy(serial, serial_len, 256);
	r->payload_len = payload_len < max_payload ? payload_len : max_payload;
	if (r->payload_len > 0) {
		r->payload = xmalloc(r->payload_len);
		memcpy(r->payload, payload, r->payload_len);
	}
	return m;
}

int32_t message_add_new_point(struct message *m, const char *name)
{
	m->new_points = xrealloc(m->new_points, (m->new_point_count + 1) * sizeof(*m->new_points));
	m->new_points[m->new_point_count++] = xstrdup(name);
	return -(int32_t)m->new_point_count;
}

void message_free(struct message *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->new_point_count; i++)
		free(m->new_points[i]);
	free(m->new_points);
	if (m->rejection) {
		free(m->rejection->detail);
		free(m->rejection->topic);
		free(m->rejection->tenant_slug);
		free(m->rejection->serial);
		free(m->rejection->payload);
		free(m->rejection);
	}
	free(m);
}
