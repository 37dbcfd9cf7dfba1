/* timers.c -- see timers.h. */
#include "base/timers.h"

#include <stdlib.h>

static void place(struct timers *ts, size_t i, struct timer *t)
{
	ts->heap[i] = t;
	t->slot = i;
}

static void sift_up(struct timers *ts, size_t i)
{
	struct timer *t = ts->heap[i];

	while (i > 0 && ts->heap[(i - 1) / 2]->due > t->due) {
		place(ts, i, ts->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(ts, i, t);
}

static void sift_down(struct timers *ts, size_t i)
{
	struct timer *t = ts->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= ts->n)
			break;
		if (child + 1 < ts->n && ts->heap[child + 1]->due < ts->heap[child]->due)
			child++;
		if (ts->heap[child]->due >= t->due)
			break;
		place(ts, i, ts->heap[child]);
		i = child;
	}
	place(ts, i, t);
}

static int grow(struct timers *ts)
{
	size_t cap = ts->cap ? 2 * ts->cap : 64;
	struct timer **heap = realloc(ts->heap, cap * sizeof *heap);

	if (!heap)
		return -1;
	ts->heap = heap;
	ts->cap = cap;
	return 0;
}

int timers_arm(struct timers *ts, struct timer *t, int64_t due)
{
	timers_cancel(ts, t);
	if (ts->n == ts->cap && grow(ts) < 0)
		return -1;
	t->due = due;
	place(ts, ts->n++, t);
	sift_up(ts, t->slot);
	return 0;
}

void timers_cancel(struct timers *ts, struct timer *t)
{
	size_t i = t->slot;
	struct timer *last;

	if (i == TIMER_OFF)
		return;
	t->slot = TIMER_OFF;
	last = ts->heap[--ts->n];
	if (i == ts->n)
		return;
	/* The last one takes the hole, then finds its place either way. */
	place(ts, i, last);
	sift_up(ts, i);
	sift_down(ts, last->slot);
}

struct timer *timers_expired(struct timers *ts, int64_t now)
{
	struct timer *t;

	if (ts->n == 0 || ts->heap[0]->due > now)
		return NULL;
	t = ts->heap[0];
	timers_cancel(ts, t);
	return t;
}

int64_t timers_next_ms(const struct timers *ts, int64_t now)
{
	if (ts->n == 0)
		return -1;
	return ts->heap[0]->due > now ? ts->heap[0]->due - now : 0;
}

void timers_free(struct timers *ts)
{
	free(ts->heap);
	*ts = (struct timers){ 0 };
}
