/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock: the two clocks mqtt2pg reads. Wall time (UTC microseconds) stamps readings and judges their skew;
 * monotonic milliseconds time flushes, back-offs and intervals, immune to clock steps.
 */
#ifndef MQTT2PG_CLOCK_H
#define MQTT2PG_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t clock_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The CLOCK_MONOTONIC time timeout_ms from now, for pthread_cond_timedwait on a condition variable made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC) (a wall-clock step cannot stretch the wait).
 */
struct timespec clock_deadline_after_ms(int timeout_ms);

/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(int ms);

#endif
