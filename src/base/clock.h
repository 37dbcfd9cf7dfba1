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

#endif
