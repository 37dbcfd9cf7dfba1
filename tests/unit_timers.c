/* unit_timers.c -- the deadline heap (src/base/timers.c) against a plain
 * array: random arms, re-arms and cancels, then every timer comes out in
 * the order of its deadline, each exactly once. */
#include "base/timers.h"
#include "oracle.h"
#include "tap.h"

#include <stdlib.h>

#define COUNT 2000
#define STEPS 20000

static struct timer timer[COUNT];
static bool armed[COUNT];

/* The first armed timer in the array with the least deadline. */
static int64_t least_due(void)
{
	int64_t least = INT64_MAX;

	for (int i = 0; i < COUNT; i++)
		if (armed[i] && timer[i].due < least)
			least = timer[i].due;
	return least;
}

static void random_steps(struct timers *ts, uint64_t *rng, bool *consistent)
{
	for (int step = 0; step < STEPS; step++) {
		int i = (int)(prng_next(rng) % COUNT);

		if (prng_next(rng) % 3 == 0) {
			timers_cancel(ts, &timer[i]);
			armed[i] = false;
		} else if (timers_arm(ts, &timer[i], (int64_t)(prng_next(rng) % 5000)) == 0) {
			armed[i] = true;
		}
		if (timer_armed(&timer[i]) != armed[i])
			*consistent = false;
	}
}

int main(void)
{
	struct timers ts = { 0 };
	uint64_t rng = 12345;
	bool consistent = true, ordered = true;
	int64_t last = -1, now = 0, next;
	int armed_count = 0, popped = 0;

	for (int i = 0; i < COUNT; i++)
		timer_init(&timer[i]);
	ok(timers_next_ms(&ts, 0) == -1 && !timers_expired(&ts, 1000),
	   "an empty heap: nothing due, no wait");
	random_steps(&ts, &rng, &consistent);
	ok(consistent, "arming and cancelling %d times: each timer knows whether "
	   "it is armed", STEPS);
	for (int i = 0; i < COUNT; i++)
		armed_count += armed[i];
	next = timers_next_ms(&ts, now);
	is_int(next, least_due() - now, "the wait is until the least deadline");
	for (now = 0; now <= 5000; now += 7) {
		struct timer *t;

		while ((t = timers_expired(&ts, now))) {
			int i = (int)(t - timer);

			ordered &= armed[i] && t->due <= now && t->due >= last &&
				   !timer_armed(t);
			armed[i] = false;
			last = t->due;
			popped++;
		}
		ordered &= least_due() > now;
	}
	ok(ordered, "each comes out once, when due, in the order of its deadline");
	is_int(popped, armed_count, "every armed timer came out");
	timers_cancel(&ts, &timer[0]);
	ok(timers_next_ms(&ts, now) == -1, "then nothing is left");
	timers_free(&ts);
	return done_testing();
}
