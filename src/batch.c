// SPDX-License-Identifier: Apache-2.0
/*
 * batch: accumulation per tenant and array encoding. Encoding is on the hot path (every reading passes
 * through it once), so it writes into buffers that are reused from one flush to the next, sized once.
 */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void batch_init(struct batch *b, int32_t tenant_id)
{
	memset(b, 0, sizeof(*b));
	b->tenant_id = tenant_id;
}

void batch_add(struct batch *b, struct message *m, int64_t now_ms)
{
	m->next = NULL;
	if (b->tail)
		b->tail->next = m;
	else {
		b->head = m;
		b->opened_ms = now_ms;
	}
	b->tail = m;
	b->message_count++;
	b->row_count += m->reading_count;
}

bool batch_due(const struct batch *b, size_t max_rows, int64_t max_age_ms, int64_t now_ms)
{
	if (b->message_count == 0)
		return false;
	return b->row_count >= max_rows || now_ms - b->opened_ms >= max_age_ms;
}

struct message *batch_take(struct batch *b, size_t *message_count)
{
	struct message *chain = b->head;

	*message_count = b->message_count;
	b->head = b->tail = NULL;
	b->message_count = 0;
	b->row_count = 0;
	return chain;
}

static void reserve(struct batch_array *a, size_t bytes)
{
	if (bytes <= a->cap)
		return;
	a->cap = a->cap ? a->cap : 4096;
	while (a->cap < bytes)
		a->cap *= 2;
	a->bytes = xrealloc(a->bytes, a->cap);
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

/* The 20-byte header of a one-dimensional array without NULLs. Returns the room its elements need. */
static void start_array(struct batch_array *a, uint32_t element_oid, size_t rows, size_t element_bytes)
{
	reserve(a, 20 + rows * (4 + element_bytes));
	put_u32(a->bytes, 1);	  /* dimensions */
	put_u32(a->bytes + 4, 0); /* no NULLs */
	put_u32(a->bytes + 8, element_oid);
	put_u32(a->bytes + 12, (uint32_t)rows);
	put_u32(a->bytes + 16, 1); /* lower bound */
	a->len = 20;
}

static void put_int8(struct batch_array *a, int64_t v)
{
	put_u32(a->bytes + a->len, 8);
	put_u64(a->bytes + a->len + 4, (uint64_t)v);
	a->len += 12;
}

static void put_int4(struct batch_array *a, int32_t v)
{
	put_u32(a->bytes + a->len, 4);
	put_u32(a->bytes + a->len + 4, (uint32_t)v);
	a->len += 8;
}

static void put_float8(struct batch_array *a, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	put_u32(a->bytes + a->len, 8);
	put_u64(a->bytes + a->len + 4, bits);
	a->len += 12;
}

void batch_arrays_build(struct batch_arrays *a, const struct message *first, size_t count)
{
	const struct message *m = first;
	size_t rows = 0;

	for (size_t i = 0; i < count && m; i++, m = m->next)
		rows += m->reading_count;
	start_array(&a->times, BATCH_OID_INT8, rows, 8);
	start_array(&a->devices, BATCH_OID_INT4, rows, 4);
	start_array(&a->points, BATCH_OID_INT4, rows, 4);
	start_array(&a->values, BATCH_OID_FLOAT8, rows, 8);
	m = first;
	for (size_t i = 0; i < count && m; i++, m = m->next) {
		for (uint32_t r = 0; r < m->reading_count; r++) {
			put_int8(&a->times, m->readings[r].time_us);
			put_int4(&a->devices, m->device_id);
			put_int4(&a->points, m->readings[r].point_id);
			put_float8(&a->values, m->readings[r].value);
		}
	}
	a->rows = rows;
}

void batch_arrays_free(struct batch_arrays *a)
{
	free(a->times.bytes);
	free(a->devices.bytes);
	free(a->points.bytes);
	free(a->values.bytes);
	memset(a, 0, sizeof(*a));
}
