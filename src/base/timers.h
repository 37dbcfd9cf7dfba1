/* timers.h -- deadlines in a binary min-heap: the earliest first, O(log n)
 * to add or cancel any of them.
 *
 * A timer is embedded in what it times (a connection waiting for a
 * request's reply is due), so arming and cancelling allocate nothing but
 * the heap's array, which grows by doubling and never shrinks below what
 * a burst needed.
 */
#ifndef MUXD_TIMERS_H
#define MUXD_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timer {
	int64_t due;		/* clock_ms() when it fires */
	size_t slot;		/* its place in the heap; TIMER_OFF when not armed */
};

#define TIMER_OFF ((size_t)-1)

/* What a timer is embedded in, as member of type. */
#define TIMER_OWNER(t, type, member) \
	((type *)(void *)((char *)(t) - offsetof(type, member)))

struct timers {
	struct timer **heap;
	size_t n, cap;
};

static inline void timer_init(struct timer *t)
{
	t->slot = TIMER_OFF;
}

static inline bool timer_armed(const struct timer *t)
{
	return t->slot != TIMER_OFF;
}

/* Arm t for `due` (re-arming moves it). Returns 0, or -1 when out of
 * memory (t is then not armed). */
int timers_arm(struct timers *ts, struct timer *t, int64_t due);

/* Disarm t if armed. */
void timers_cancel(struct timers *ts, struct timer *t);

/* The earliest timer due at or before `now`, disarmed; NULL if none. */
struct timer *timers_expired(struct timers *ts, int64_t now);

/* Milliseconds until the earliest is due (0 if past), or -1 if none. */
int64_t timers_next_ms(const struct timers *ts, int64_t now);

void timers_free(struct timers *ts);

#endif
