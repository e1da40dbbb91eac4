// SPDX-License-Identifier: Apache-2.0
/*
 * message: construction and destruction of the pipeline's unit of work. Readings live in the same
 * allocation as their header, so an accepted message costs one malloc.
 */
#include "message.h"

#include <stdlib.h>
#include <string.h>

#include "util/text.h"
#include "util/xalloc.h"

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

struct message *message_new_reject(enum reject_reason reason, const char *detail,
				   const struct reject_source *source, size_t max_payload,
				   int64_t received_us)
{
	static const struct reject_source unknown = { 0 };
	const struct reject_source *src = source ? source : &unknown;
	struct message *m = xcalloc(1, sizeof(*m));
	struct rejection *r = xcalloc(1, sizeof(*r));

	m->kind = MESSAGE_REJECT;
	m->received_us = received_us;
	m->rejection = r;
	r->reason = reason;
	/* Escaping can grow a byte to four ("\xNN"); the caps keep rows small whatever a device sends. */
	r->detail = escaped_copy(detail ? detail : "", detail ? strlen(detail) : 0, 512);
	r->topic = escaped_copy(src->topic, src->topic_len, 1024);
	r->tenant_slug = escaped_copy(src->tenant, src->tenant_len, 256);
	r->serial = escaped_copy(src->serial, src->serial_len, 256);
	r->payload_len = src->payload_len < max_payload ? src->payload_len : max_payload;
	if (!src->payload)
		r->payload_len = 0;
	if (r->payload_len > 0) {
		r->payload = xmalloc(r->payload_len);
		memcpy(r->payload, src->payload, r->payload_len);
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

/* --- encoding (spool records) ------------------------------------------------------------------------ */

struct encoder {
	unsigned char **buf;
	size_t *cap;
	size_t len;
};

static void put(struct encoder *e, const void *data, size_t n)
{
	if (e->len + n > *e->cap) {
		*e->cap = *e->cap ? *e->cap * 2 : 512;
		while (e->len + n > *e->cap)
			*e->cap *= 2;
		*e->buf = xrealloc(*e->buf, *e->cap);
	}
	memcpy(*e->buf + e->len, data, n);
	e->len += n;
}

#define NULL_STRING 0xffffffffu

static void put_string(struct encoder *e, const char *s)
{
	uint32_t n = s ? (uint32_t)strlen(s) : NULL_STRING;

	put(e, &n, sizeof(n));
	if (s)
		put(e, s, n);
}

size_t message_encode(const struct message *m, unsigned char **buf, size_t *cap, size_t offset)
{
	struct encoder e = { buf, cap, offset };
	uint8_t kind = (uint8_t)m->kind;

	put(&e, &kind, 1);
	put(&e, &m->received_us, sizeof(m->received_us));
	put(&e, &m->tenant_id, sizeof(m->tenant_id));
	put(&e, &m->device_id, sizeof(m->device_id));
	put(&e, &m->reading_count, sizeof(m->reading_count));
	put(&e, &m->new_point_count, sizeof(m->new_point_count));
	for (uint32_t i = 0; i < m->reading_count; i++) {
		put(&e, &m->readings[i].time_us, sizeof(int64_t));
		put(&e, &m->readings[i].value, sizeof(double));
		put(&e, &m->readings[i].point_id, sizeof(int32_t));
	}
	for (uint32_t i = 0; i < m->new_point_count; i++)
		put_string(&e, m->new_points[i]);
	if (m->kind == MESSAGE_REJECT) {
		const struct rejection *r = m->rejection;
		uint8_t reason = (uint8_t)r->reason;
		uint32_t payload_len = (uint32_t)r->payload_len;

		put(&e, &reason, 1);
		put_string(&e, r->detail);
		put_string(&e, r->topic);
		put_string(&e, r->tenant_slug);
		put_string(&e, r->serial);
		put(&e, &payload_len, sizeof(payload_len));
		if (payload_len)
			put(&e, r->payload, payload_len);
	}
	return e.len - offset;
}

struct decoder {
	const unsigned char *p, *end;
	bool ok;
};

static void get(struct decoder *d, void *out, size_t n)
{
	if (!d->ok || (size_t)(d->end - d->p) < n) {
		d->ok = false;
		memset(out, 0, n);
		return;
	}
	memcpy(out, d->p, n);
	d->p += n;
}

static char *get_string(struct decoder *d)
{
	uint32_t n;
	char *s;

	get(d, &n, sizeof(n));
	if (!d->ok || n == NULL_STRING)
		return NULL;
	if ((size_t)(d->end - d->p) < n) {
		d->ok = false;
		return NULL;
	}
	s = xstrndup((const char *)d->p, n);
	d->p += n;
	return s;
}

struct message *message_decode(const unsigned char *buf, size_t len)
{
	struct decoder d = { buf, buf + len, true };
	struct message *m;
	uint8_t kind;
	int64_t received_us;
	int32_t tenant_id, device_id;
	uint32_t reading_count, new_point_count;

	get(&d, &kind, 1);
	get(&d, &received_us, sizeof(received_us));
	get(&d, &tenant_id, sizeof(tenant_id));
	get(&d, &device_id, sizeof(device_id));
	get(&d, &reading_count, sizeof(reading_count));
	get(&d, &new_point_count, sizeof(new_point_count));
	/* Each reading takes 20 bytes: a count the bytes cannot hold is corruption, not an allocation size. */
	if (!d.ok || kind > MESSAGE_REJECT || reading_count > len / 20 || new_point_count > len / 4)
		return NULL;
	m = message_new_readings(tenant_id, device_id, reading_count, received_us);
	m->kind = (enum message_kind)kind;
	for (uint32_t i = 0; i < reading_count; i++) {
		get(&d, &m->readings[i].time_us, sizeof(int64_t));
		get(&d, &m->readings[i].value, sizeof(double));
		get(&d, &m->readings[i].point_id, sizeof(int32_t));
	}
	for (uint32_t i = 0; i < new_point_count && d.ok; i++) {
		char *name = get_string(&d);
		if (!name) {
			d.ok = false;
			break;
		}
		m->new_points = xrealloc(m->new_points, (m->new_point_count + 1) * sizeof(*m->new_points));
		m->new_points[m->new_point_count++] = name;
	}
	if (d.ok && m->kind == MESSAGE_REJECT) {
		struct rejection *r = xcalloc(1, sizeof(*r));
		uint8_t reason;
		uint32_t payload_len;

		m->rejection = r;
		get(&d, &reason, 1);
		r->reason = reason < REJECT_REASON_COUNT ? (enum reject_reason)reason : REJECT_NONE;
		r->detail = get_string(&d);
		r->topic = get_string(&d);
		r->tenant_slug = get_string(&d);
		r->serial = get_string(&d);
		get(&d, &payload_len, sizeof(payload_len));
		if (d.ok && payload_len > 0) {
			if ((size_t)(d.end - d.p) < payload_len) {
				d.ok = false;
			} else {
				r->payload = xmalloc(payload_len);
				memcpy(r->payload, d.p, payload_len);
				r->payload_len = payload_len;
				d.p += payload_len;
			}
		}
		if (!r->detail)
			r->detail = xstrdup("");
	}
	if (!d.ok || d.p != d.end) {
		message_free(m);
		return NULL;
	}
	return m;
}
