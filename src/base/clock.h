/* clock.h -- monotonic milliseconds, for timeouts that ignore clock steps. */
#ifndef MUXD_CLOCK_H
#define MUXD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Async-signal-safe: clock_gettime is, and nothing else is called. */
static inline int64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The shorter of a wait of `a` ms (-1: none) and one of `b` ms, b taken
 * as 0 when past and capped at a minute: for poll-style timeouts. */
static inline int clock_timeout_min(int a, int64_t b)
{
	if (b < 0)
		b = 0;
	if (b > 60000)
		b = 60000;
	return a < 0 || b < a ? (int)b : a;
}

#endif
