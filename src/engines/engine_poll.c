/* engine_poll.c -- the reactor on poll(2).
 *
 * Unlike select, no FD_SETSIZE bound: an array of pollfd as long as the
 * watched set, with a slot index per descriptor so that a change is O(1).
 * Each wait still hands the whole array to the kernel and scans it back,
 * from where the last scan stopped: when more are ready than one wait
 * reports, those at the end of the array get their turn next time instead
 * of starving behind the first ones, as epoll's ready list rotates too.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "base/trace.h"
#include "core/reactor.h"
#include "engines/engine.h"

struct poll_state {
	struct pollfd *fds;	/* watched descriptors, packed */
	int *slot;		/* by descriptor: index in fds, or -1 */
	int count;
	int max_events;
	int next;		/* where the next scan starts */
};

static void *poll_create(int max_fds, int max_events)
{
	struct poll_state *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->fds = calloc((size_t)max_fds, sizeof *s->fds);
	s->slot = malloc((size_t)max_fds * sizeof *s->slot);
	if (!s->fds || !s->slot) {
		free(s->fds);
		free(s->slot);
		free(s);
		return NULL;
	}
	for (int fd = 0; fd < max_fds; fd++)
		s->slot[fd] = -1;
	s->max_events = max_events;
	return s;
}

static short poll_bits(unsigned mask)
{
	return (short)(((mask & POLLER_READ) ? POLLIN : 0) |
		       ((mask & POLLER_WRITE) ? POLLOUT : 0));
}

static void remove_slot(struct poll_state *s, int fd)
{
	int i = s->slot[fd];
	struct pollfd last = s->fds[--s->count];

	s->fds[i] = last;
	s->slot[last.fd] = i;
	s->slot[fd] = -1;
}

static int poll_watch(void *p, int fd, unsigned old_mask, unsigned mask)
{
	struct poll_state *s = p;

	(void)old_mask;
	if (s->slot[fd] < 0) {
		if (!mask)
			return 0;
		s->slot[fd] = s->count;
		s->fds[s->count++] = (struct pollfd){ .fd = fd };
	}
	if (!mask)
		remove_slot(s, fd);
	else
		s->fds[s->slot[fd]].events = poll_bits(mask);
	return 0;
}

static void poll_forget(void *p, int fd, unsigned mask)
{
	if (mask)
		poll_watch(p, fd, mask, 0);
}

static int poll_wait(void *p, int timeout_ms, struct poller_event *events)
{
	struct poll_state *s = p;
	int64_t begin = trace_begin();
	int n = poll(s->fds, (nfds_t)s->count, timeout_ms);
	int count = 0, k = 0;

	trace_wait(TRACE_POLL, begin, -1, n);

	if (s->next >= s->count)
		s->next = 0;	/* the set shrank since */
	for (; n > 0 && k < s->count && count < s->max_events; k++) {
		int i = s->next + k < s->count ? s->next + k : s->next + k - s->count;
		short re = s->fds[i].revents;
		unsigned ready = 0;

		if (re & (POLLIN | POLLHUP | POLLERR))
			ready |= POLLER_READ;
		if (re & (POLLOUT | POLLHUP | POLLERR))
			ready |= POLLER_WRITE;
		if (ready)
			events[count++] = (struct poller_event){ s->fds[i].fd, ready };
	}
	s->next = s->next + k < s->count ? s->next + k : s->next + k - s->count;
	return n < 0 ? -1 : count;
}

static void poll_destroy(void *p)
{
	struct poll_state *s = p;

	free(s->fds);
	free(s->slot);
	free(s);
}

static const struct poller poll_poller = {
	.what = "pollfd table",
	.create = poll_create,
	.watch = poll_watch,
	.forget = poll_forget,
	.wait = poll_wait,
	.destroy = poll_destroy,
};

const struct engine engine_poll = {
	.name = "poll",
	.summary = "single-threaded non-blocking reactor on poll(2)",
	.features = ENGINE_READINESS,
	.poller = &poll_poller,
};
