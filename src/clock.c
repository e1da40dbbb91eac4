// SPDX-License-Identifier: Apache-2.0
/*
 * clock: the one blocking sleep (back-offs), kept out of line so tests can see it in profiles.
 */
#include "clock.h"

#include <errno.h>

void clock_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}
