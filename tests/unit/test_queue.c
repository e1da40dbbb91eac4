// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for queue.c, the bounded hand-off between Paho's thread and a writer: FIFO order and batch
 * pops, the capacity with its bounded wait (-ETIMEDOUT, the message still the caller's), close semantics
 * (-EPIPE, drain, queue_is_finished, waking blocked threads), and a producer and a consumer thread moving
 * 100,000 messages with none lost, duplicated or reordered.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "message.h"
#include "queue.h"
#include "unit.h"

/* A message tagged with seq (in received_us), so order and identity can be checked after the trip. */
static struct message *tagged(int64_t seq)
{
	return message_new_readings(1, 1, 0, seq);
}

static void free_chain(struct message *m)
{
	while (m) {
		struct message *next = m->next;
		message_free(m);
		m = next;
	}
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_fifo_order(void)
{
	struct queue *q = queue_new(8);
	struct message *chain;
	size_t count = 0;

	for (int i = 1; i <= 3; i++)
		CU_ASSERT_EQUAL(queue_push(q, tagged(i), 0), 0);
	CU_ASSERT_EQUAL(queue_depth(q), 3);
	chain = queue_pop(q, 10, 0, &count);
	CU_ASSERT_EQUAL(count, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(chain);
	CU_ASSERT_EQUAL(chain->received_us, 1);
	CU_ASSERT_EQUAL(chain->next->received_us, 2);
	CU_ASSERT_EQUAL(chain->next->next->received_us, 3);
	CU_ASSERT_PTR_NULL(chain->next->next->next);
	CU_ASSERT_EQUAL(queue_depth(q), 0);
	free_chain(chain);
	queue_free(q);
}

/* The queue_depth metric is counted by the queues themselves: pushes add, pops subtract, failures do not. */
static void test_depth_gauge_shared(void)
{
	atomic_uint_fast64_t gauge = 0;
	struct queue *a = queue_new(2), *b = queue_new(8);
	struct message *chain, *extra = tagged(9);
	size_t count = 0;

	queue_count_depth_in(a, &gauge);
	queue_count_depth_in(b, &gauge);
	CU_ASSERT_EQUAL(queue_push(a, tagged(1), 0), 0);
	CU_ASSERT_EQUAL(queue_push(a, tagged(2), 0), 0);
	CU_ASSERT_EQUAL(queue_push(a, extra, 0), -ETIMEDOUT); /* full: not counted */
	message_free(extra);
	for (int i = 3; i <= 5; i++)
		CU_ASSERT_EQUAL(queue_push(b, tagged(i), 0), 0);
	CU_ASSERT_EQUAL(atomic_load(&gauge), 5);
	chain = queue_pop(b, 2, 0, &count);
	CU_ASSERT_EQUAL(count, 2);
	CU_ASSERT_EQUAL(atomic_load(&gauge), 3);
	free_chain(chain);
	queue_close(a);
	extra = tagged(10);
	CU_ASSERT_EQUAL(queue_push(a, extra, 0), -EPIPE); /* closed: not counted */
	message_free(extra);
	chain = queue_pop(a, 10, 0, &count);
	free_chain(chain);
	CU_ASSERT_EQUAL(atomic_load(&gauge), 1);
	queue_free(a);
	queue_free(b);
}

static void test_pop_takes_at_most_max(void)
{
	struct queue *q = queue_new(8);
	struct message *chain;
	size_t count = 0;

	for (int i = 1; i <= 5; i++)
		CU_ASSERT_EQUAL(queue_push(q, tagged(i), 0), 0);
	chain = queue_pop(q, 2, 0, &count);
	CU_ASSERT_EQUAL(count, 2);
	CU_ASSERT_EQUAL(chain->received_us, 1);
	CU_ASSERT_EQUAL(chain->next->received_us, 2);
	CU_ASSERT_PTR_NULL(chain->next->next); /* the chain is cut after max */
	CU_ASSERT_EQUAL(queue_depth(q), 3);
	free_chain(chain);
	/* The rest, and pushes after a partial pop, keep their order. */
	CU_ASSERT_EQUAL(queue_push(q, tagged(6), 0), 0);
	chain = queue_pop(q, 100, 0, &count);
	CU_ASSERT_EQUAL(count, 4);
	CU_ASSERT_EQUAL(chain->received_us, 3);
	CU_ASSERT_EQUAL(chain->next->next->next->received_us, 6);
	CU_ASSERT_PTR_NULL(chain->next->next->next->next);
	free_chain(chain);
	queue_free(q);
}

static void test_pop_timeout_on_empty(void)
{
	struct queue *q = queue_new(4);
	size_t count = 99;
	int64_t start = monotonic_ms();

	CU_ASSERT_PTR_NULL(queue_pop(q, 10, 50, &count));
	CU_ASSERT(monotonic_ms() - start >= 45);
	CU_ASSERT_EQUAL(count, 0);
	CU_ASSERT_FALSE(queue_is_finished(q)); /* a timeout, not the end */
	count = 99;
	CU_ASSERT_PTR_NULL(queue_pop(q, 10, 0, &count));
	CU_ASSERT_EQUAL(count, 0);
	queue_free(q);
}

static void test_capacity_and_timeout(void)
{
	struct queue *q = queue_new(2);
	struct message *third = tagged(3), *chain;
	size_t count = 0;
	int64_t start;

	CU_ASSERT_EQUAL(queue_push(q, tagged(1), 0), 0);
	CU_ASSERT_EQUAL(queue_push(q, tagged(2), 0), 0);
	start = monotonic_ms();
	CU_ASSERT_EQUAL(queue_push(q, third, 50), -ETIMEDOUT);
	CU_ASSERT(monotonic_ms() - start >= 45);
	CU_ASSERT_EQUAL(queue_push(q, third, 0), -ETIMEDOUT);
	CU_ASSERT_EQUAL(queue_depth(q), 2);
	/* The refused message is still ours: it was not linked into the queue, and we may push it again. */
	chain = queue_pop(q, 1, 0, &count);
	CU_ASSERT_EQUAL(count, 1);
	free_chain(chain);
	CU_ASSERT_EQUAL(queue_push(q, third, 0), 0);
	chain = queue_pop(q, 10, 0, &count);
	CU_ASSERT_EQUAL(count, 2);
	CU_ASSERT_EQUAL(chain->received_us, 2);
	CU_ASSERT_PTR_EQUAL(chain->next, third);
	free_chain(chain);
	queue_free(q);
}

static void test_refused_message_freed_by_caller(void)
{
	struct queue *q = queue_new(1);
	struct message *refused = tagged(2);

	CU_ASSERT_EQUAL(queue_push(q, tagged(1), 0), 0);
	CU_ASSERT_EQUAL(queue_push(q, refused, 0), -ETIMEDOUT);
	/* If the queue had kept it, queue_free below would free it twice (ASan). */
	message_free(refused);
	queue_free(q); /* frees the queued message; LeakSanitizer checks */
}

static void test_close_semantics(void)
{
	struct queue *q = queue_new(8);
	struct message *late = tagged(9), *chain;
	size_t count = 0;
	int64_t start;

	CU_ASSERT_EQUAL(queue_push(q, tagged(1), 0), 0);
	CU_ASSERT_EQUAL(queue_push(q, tagged(2), 0), 0);
	CU_ASSERT_FALSE(queue_is_finished(q));
	queue_close(q);
	CU_ASSERT_EQUAL(queue_push(q, late, 1000), -EPIPE);
	CU_ASSERT_FALSE(queue_is_finished(q)); /* closed but not drained */
	chain = queue_pop(q, 1, 1000, &count);
	CU_ASSERT_EQUAL(count, 1);
	CU_ASSERT_EQUAL(chain->received_us, 1);
	free_chain(chain);
	chain = queue_pop(q, 10, 1000, &count);
	CU_ASSERT_EQUAL(count, 1);
	CU_ASSERT_EQUAL(chain->received_us, 2);
	free_chain(chain);
	CU_ASSERT_TRUE(queue_is_finished(q));
	/* Closed and empty: the end, at once rather than after the timeout. */
	start = monotonic_ms();
	count = 99;
	CU_ASSERT_PTR_NULL(queue_pop(q, 10, 5000, &count));
	CU_ASSERT_EQUAL(count, 0);
	CU_ASSERT(monotonic_ms() - start < 1000);
	CU_ASSERT_TRUE(queue_is_finished(q));
	message_free(late); /* -EPIPE left it with us */
	queue_free(q);
}

static void test_free_with_messages_inside(void)
{
	struct queue *q = queue_new(8);

	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(queue_push(q, tagged(i), 0), 0);
	queue_free(q); /* LeakSanitizer fails the run if the five leak */
	queue_free(NULL);
}

struct blocked_call {
	struct queue *q;
	struct message *m;
	int rc;
	size_t count;
	struct message *popped;
	int64_t returned_ms;
};

static void *blocked_push(void *arg)
{
	struct blocked_call *call = arg;

	call->rc = queue_push(call->q, call->m, 10000);
	call->returned_ms = monotonic_ms();
	return NULL;
}

static void *blocked_pop(void *arg)
{
	struct blocked_call *call = arg;

	call->popped = queue_pop(call->q, 10, 10000, &call->count);
	call->returned_ms = monotonic_ms();
	return NULL;
}

static void test_full_push_waits_for_pop(void)
{
	struct queue *q = queue_new(1);
	struct blocked_call call = { .q = q, .m = tagged(2) };
	struct message *chain;
	pthread_t thread;
	size_t count = 0;

	CU_ASSERT_EQUAL(queue_push(q, tagged(1), 0), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, blocked_push, &call), 0);
	sleep_ms(50);
	chain = queue_pop(q, 10, 0, &count);
	CU_ASSERT_EQUAL(count, 1);
	free_chain(chain);
	pthread_join(thread, NULL);
	CU_ASSERT_EQUAL(call.rc, 0);
	chain = queue_pop(q, 10, 1000, &count);
	CU_ASSERT_EQUAL(count, 1);
	CU_ASSERT_PTR_EQUAL(chain, call.m);
	free_chain(chain);
	queue_free(q);
}

static void test_close_wakes_blocked_push(void)
{
	struct queue *q = queue_new(1);
	struct blocked_call call = { .q = q, .m = tagged(2) };
	pthread_t thread;
	int64_t closed_ms;

	CU_ASSERT_EQUAL(queue_push(q, tagged(1), 0), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, blocked_push, &call), 0);
	sleep_ms(50);
	closed_ms = monotonic_ms();
	queue_close(q);
	pthread_join(thread, NULL);
	CU_ASSERT_EQUAL(call.rc, -EPIPE);
	CU_ASSERT(call.returned_ms - closed_ms < 2000);
	message_free(call.m);
	queue_free(q);
}

static void test_close_wakes_blocked_pop(void)
{
	struct queue *q = queue_new(4);
	struct blocked_call call = { .q = q, .count = 99 };
	pthread_t thread;
	int64_t closed_ms;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, blocked_pop, &call), 0);
	sleep_ms(50);
	closed_ms = monotonic_ms();
	queue_close(q);
	pthread_join(thread, NULL);
	CU_ASSERT_PTR_NULL(call.popped);
	CU_ASSERT_EQUAL(call.count, 0);
	CU_ASSERT(call.returned_ms - closed_ms < 2000);
	CU_ASSERT_TRUE(queue_is_finished(q));
	queue_free(q);
}

#define TRANSFER_COUNT 100000

struct transfer {
	struct queue *q;
	long timeouts;	  /* producer's -ETIMEDOUT retries */
	long push_errors; /* anything else */
	long received;
	long out_of_order; /* consumer: seq not the one expected next */
	long bad_counts;   /* consumer: *count disagrees with the chain */
};

static void *producer(void *arg)
{
	struct transfer *t = arg;

	for (int64_t seq = 0; seq < TRANSFER_COUNT; seq++) {
		struct message *m = tagged(seq);
		int rc;

		while ((rc = queue_push(t->q, m, 100)) == -ETIMEDOUT)
			t->timeouts++;
		if (rc != 0) {
			t->push_errors++;
			message_free(m);
		}
	}
	queue_close(t->q);
	return NULL;
}

static void *consumer(void *arg)
{
	struct transfer *t = arg;

	while (!queue_is_finished(t->q)) {
		size_t count = 0, seen = 0;
		struct message *chain = queue_pop(t->q, 128, 100, &count);

		for (struct message *m = chain; m; m = m->next, seen++) {
			if (m->received_us != t->received)
				t->out_of_order++;
			t->received++;
		}
		if (seen != count)
			t->bad_counts++;
		free_chain(chain);
	}
	return NULL;
}

static void test_producer_consumer_none_lost(void)
{
	struct transfer t = { .q = queue_new(64) };
	pthread_t producer_thread, consumer_thread;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&consumer_thread, NULL, consumer, &t), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&producer_thread, NULL, producer, &t), 0);
	pthread_join(producer_thread, NULL);
	pthread_join(consumer_thread, NULL);
	CU_ASSERT_EQUAL(t.push_errors, 0);
	CU_ASSERT_EQUAL(t.received, TRANSFER_COUNT);
	CU_ASSERT_EQUAL(t.out_of_order, 0);
	CU_ASSERT_EQUAL(t.bad_counts, 0);
	CU_ASSERT_EQUAL(queue_depth(t.q), 0);
	CU_ASSERT_TRUE(queue_is_finished(t.q));
	queue_free(t.q);
}

int main(void)
{
	static const struct unit_test tests[] = {
		UNIT_TEST(test_fifo_order),
		UNIT_TEST(test_depth_gauge_shared),
		UNIT_TEST(test_pop_takes_at_most_max),
		UNIT_TEST(test_pop_timeout_on_empty),
		UNIT_TEST(test_capacity_and_timeout),
		UNIT_TEST(test_refused_message_freed_by_caller),
		UNIT_TEST(test_close_semantics),
		UNIT_TEST(test_free_with_messages_inside),
		UNIT_TEST(test_full_push_waits_for_pop),
		UNIT_TEST(test_close_wakes_blocked_push),
		UNIT_TEST(test_close_wakes_blocked_pop),
		UNIT_TEST(test_producer_consumer_none_lost),
	};

	return unit_run("queue", NULL, NULL, tests, UNIT_COUNT(tests));
}
