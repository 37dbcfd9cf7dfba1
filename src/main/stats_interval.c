/* stats_interval.c -- the thread behind --stats-interval. */
#include "base/thread.h"
#include "main/stats_interval.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "base/stats.h"

static double seconds_of(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/* Wake on a fixed schedule (absolute deadlines, so lines do not drift),
 * but divide by the time really passed: a late wakeup on a loaded
 * machine gives a longer interval, not a wrong rate. */
static void *rates_loop(void *interval)
{
	unsigned long long before[STAT_COUNT], after[STAT_COUNT];
	long long step_ns = (long long)(*(double *)interval * 1e9);
	struct timespec due, last, now;
	char line[768];

	free(interval);
	clock_gettime(CLOCK_MONOTONIC, &due);
	last = due;
	stats_read(before);
	for (;;) {
		long long ns = due.tv_nsec + step_ns;

		due.tv_sec += (time_t)(ns / 1000000000);
		due.tv_nsec = (long)(ns % 1000000000);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		stats_read(after);
		stats_format_rates(before, after, seconds_of(&now) - seconds_of(&last),
				   line, sizeof line);
		/* Shown even with --quiet: it was asked for. */
		log_msg(LOG_ERROR, "rates: %s", line);
		last = now;
		for (int i = 0; i < STAT_COUNT; i++)
			before[i] = after[i];
	}
	return NULL;
}

int stats_interval_start(double interval_seconds)
{
	double *interval = malloc(sizeof *interval);
	pthread_t tid;
	int rc;

	if (!interval)
		return ENOMEM;
	*interval = interval_seconds;
	rc = thread_start(&tid, true, rates_loop, interval);
	if (rc != 0)
		free(interval);
	return rc;
}
