// SPDX-License-Identifier: Apache-2.0
/*
 * queue: a mutex, two condition variables and an intrusive singly-linked list (see queue.h for the design).
 * Condition waits use CLOCK_MONOTONIC so that a wall-clock step cannot stretch a bounded wait.
 */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util/clock.h"
#include "util/xalloc.h"

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	struct message *head, *tail;
	size_t depth, capacity;
	bool closed;
	atomic_uint_fast64_t *gauge; /* the queue_depth metric, shared by every writer's queue; may be NULL */
};

struct queue *queue_new(size_t capacity)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	pthread_condattr_t attr;

	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->not_empty, &attr);
	pthread_cond_init(&q->not_full, &attr);
	pthread_condattr_destroy(&attr);
	q->capacity = capacity ? capacity : 1;
	return q;
}

void queue_free(struct queue *q)
{
	if (!q)
		return;
	while (q->head) {
		struct message *next = q->head->next;
		message_free(q->head);
		q->head = next;
	}
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

int queue_push(struct queue *q, struct message *m, int timeout_ms)
{
	struct timespec deadline = clock_deadline_after_ms(timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	while (!q->closed && q->depth >= q->capacity && rc == 0)
		rc = pthread_cond_timedwait(&q->not_full, &q->lock, &deadline);
	if (q->closed) {
		rc = -EPIPE;
	} else if (q->depth >= q->capacity) {
		rc = -ETIMEDOUT;
	} else {
		m->next = NULL;
		if (q->tail)
			q->tail->next = m;
		else
			q->head = m;
		q->tail = m;
		q->depth++;
		if (q->gauge)
			atomic_fetch_add_explicit(q->gauge, 1, memory_order_relaxed);
		rc = 0;
		pthread_cond_signal(&q->not_empty);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

struct message *queue_pop(struct queue *q, size_t max, int timeout_ms, size_t *count)
{
	struct timespec deadline = clock_deadline_after_ms(timeout_ms);
	struct message *first = NULL, *last = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->closed && rc == 0)
		rc = pthread_cond_timedwait(&q->not_empty, &q->lock, &deadline);
	while (q->head && n < max) {
		last = q->head;
		if (!first)
			first = last;
		q->head = last->next;
		n++;
	}
	if (last) {
		last->next = NULL;
		if (!q->head)
			q->tail = NULL;
		q->depth -= n;
		if (q->gauge)
			atomic_fetch_sub_explicit(q->gauge, n, memory_order_relaxed);
		pthread_cond_broadcast(&q->not_full);
	}
	pthread_mutex_unlock(&q->lock);
	*count = n;
	return first;
}

void queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

bool queue_is_finished(struct queue *q)
{
	bool finished;

	pthread_mutex_lock(&q->lock);
	finished = q->closed && !q->head;
	pthread_mutex_unlock(&q->lock);
	return finished;
}

size_t queue_depth(struct queue *q)
{
	size_t depth;

	pthread_mutex_lock(&q->lock);
	depth = q->depth;
	pthread_mutex_unlock(&q->lock);
	return depth;
}

void queue_count_depth_in(struct queue *q, atomic_uint_fast64_t *gauge)
{
	q->gauge = gauge;
}
