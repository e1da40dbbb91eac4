// SPDX-License-Identifier: Apache-2.0
/*
 * batch: accumulation per tenant and array formatting. Formatting is on the hot path (every reading
 * passes through it once), so it appends into buffers that are reused from one flush to the next.
 */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

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

/* Appends text to a growing buffer at *len. */
static void append(char **buf, size_t *cap, size_t *len, const char *text, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		while (*len + n + 1 > *cap)
			*cap *= 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, text, n);
	*len += n;
	(*buf)[*len] = '\0';
}

void batch_arrays_build(struct batch_arrays *a, const struct message *first, size_t count)
{
	size_t tl = 0, dl = 0, pl = 0, vl = 0;
	const struct message *m = first;
	char num[40];
	int n;

	a->rows = 0;
	append(&a->times, &a->times_cap, &tl, "{", 1);
	append(&a->devices, &a->devices_cap, &dl, "{", 1);
	append(&a->points, &a->points_cap, &pl, "{", 1);
	append(&a->values, &a->values_cap, &vl, "{", 1);
	for (size_t i = 0; i < count && m; i++, m = m->next) {
		for (uint32_t r = 0; r < m->reading_count; r++) {
			const struct reading *rd = &m->readings[r];
			const char *sep = a->rows ? "," : "";

			n = snprintf(num, sizeof(num), "%s%lld", sep, (long long)rd->time_us);
			append(&a->times, &a->times_cap, &tl, num, (size_t)n);
			n = snprintf(num, sizeof(num), "%s%d", sep, (int)m->device_id);
			append(&a->devices, &a->devices_cap, &dl, num, (size_t)n);
			n = snprintf(num, sizeof(num), "%s%d", sep, (int)rd->point_id);
			append(&a->points, &a->points_cap, &pl, num, (size_t)n);
			/* %.17g round-trips every finite double exactly. */
			n = snprintf(num, sizeof(num), "%s%.17g", sep, rd->value);
			append(&a->values, &a->values_cap, &vl, num, (size_t)n);
			a->rows++;
		}
	}
	append(&a->times, &a->times_cap, &tl, "}", 1);
	append(&a->devices, &a->devices_cap, &dl, "}", 1);
	append(&a->points, &a->points_cap, &pl, "}", 1);
	append(&a->values, &a->values_cap, &vl, "}", 1);
}

void batch_arrays_free(struct batch_arrays *a)
{
	free(a->times);
	free(a->devices);
	free(a->points);
	free(a->values);
	memset(a, 0, sizeof(*a));
}
