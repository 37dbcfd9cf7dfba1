/* engine_select.c -- the reactor on select(2).
 *
 * The oldest readiness interface: two bitmaps rebuilt by the kernel on
 * every call, so each wait copies and scans them up to the highest
 * descriptor. An fd_set holds FD_SETSIZE bits and FD_SET beyond that
 * corrupts memory, so descriptors at or above it are refused and logged
 * here, where the limit lives; the reactor closes such a connection.
 * The bitmaps are scanned from where the last scan stopped, as in
 * engine_poll.c, so that no descriptor starves behind lower ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>

#include "base/log.h"
#include "base/trace.h"
#include "core/reactor.h"
#include "engines/engine.h"

struct select_state {
	fd_set readable, writable;	/* what is watched */
	int max_fd;			/* highest watched, -1 if none */
	int max_events;
	int next;			/* where the next scan starts */
};

static void *select_create(int max_fds, int max_events)
{
	struct select_state *s = malloc(sizeof *s);

	(void)max_fds;
	if (!s)
		return NULL;
	FD_ZERO(&s->readable);
	FD_ZERO(&s->writable);
	s->max_fd = -1;
	s->max_events = max_events;
	s->next = 0;
	return s;
}

static void lower_max_fd(struct select_state *s)
{
	while (s->max_fd >= 0 && !FD_ISSET(s->max_fd, &s->readable) &&
	       !FD_ISSET(s->max_fd, &s->writable))
		s->max_fd--;
}

static int select_watch(void *p, int fd, unsigned old_mask, unsigned mask)
{
	struct select_state *s = p;

	(void)old_mask;
	if (fd >= FD_SETSIZE) {
		log_error("select: fd %d is not below FD_SETSIZE (%d); "
			  "connection closed", fd, FD_SETSIZE);
		errno = EBADF;
		return -1;
	}
	if (mask & POLLER_READ)
		FD_SET(fd, &s->readable);
	else
		FD_CLR(fd, &s->readable);
	if (mask & POLLER_WRITE)
		FD_SET(fd, &s->writable);
	else
		FD_CLR(fd, &s->writable);
	if (mask && fd > s->max_fd)
		s->max_fd = fd;
	lower_max_fd(s);
	return 0;
}

static void select_forget(void *p, int fd, unsigned mask)
{
	if (mask)
		select_watch(p, fd, mask, 0);
}

static int select_wait(void *p, int timeout_ms, struct poller_event *events)
{
	struct select_state *s = p;
	fd_set r = s->readable, w = s->writable;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int64_t begin = trace_begin();
	int n = select(s->max_fd + 1, &r, &w, NULL, timeout_ms < 0 ? NULL : &tv);
	int count = 0, span = s->max_fd + 1, k = 0;

	trace_wait(TRACE_SELECT, begin, -1, n);

	if (s->next >= span)
		s->next = 0;	/* the highest descriptor went since */
	for (; n > 0 && k < span && count < s->max_events; k++) {
		int fd = s->next + k < span ? s->next + k : s->next + k - span;
		unsigned ready = (FD_ISSET(fd, &r) ? POLLER_READ : 0) |
				 (FD_ISSET(fd, &w) ? POLLER_WRITE : 0);

		if (ready)
			events[count++] = (struct poller_event){ fd, ready };
	}
	s->next = s->next + k < span ? s->next + k : s->next + k - span;
	return n < 0 ? -1 : count;
}

static void select_destroy(void *p)
{
	free(p);
}

static const struct poller select_poller = {
	.what = "fd_sets",
	.create = select_create,
	.watch = select_watch,
	.forget = select_forget,
	.wait = select_wait,
	.destroy = select_destroy,
};

const struct engine engine_select = {
	.name = "select",
	.summary = "single-threaded non-blocking reactor on select(2)",
	.features = ENGINE_READINESS | ENGINE_FD_SETSIZE,
	.poller = &select_poller,
};
