// SPDX-License-Identifier: Apache-2.0
/*
 * clock: the one blocking sleep (back-offs), kept out of line so tests can see it in profiles, and the
 * deadline of a bounded condition wait (queue.c and spool.c each had their own copy).
 */
#include "util/clock.h"

#include <errno.h>

void clock_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

struct timespec clock_deadline_after_ms(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}
