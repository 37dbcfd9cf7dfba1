/* engine_epoll_lt.c -- the reactor on epoll(7), level-triggered.
 *
 * The kernel keeps the interest list, so a wait costs what is ready, not
 * what is watched. Level-triggered: a descriptor is reported for as long
 * as it stays ready, so interest is changed (EPOLL_CTL_MOD) whenever the
 * connection starts or stops waiting for input or for room to write.
 */
#include <sys/epoll.h>

#include "core/epoll_common.h"

static int epoll_lt_watch(void *p, int fd, unsigned old_mask, unsigned mask)
{
	uint32_t events = ((mask & POLLER_READ) ? EPOLLIN : 0) |
			  ((mask & POLLER_WRITE) ? EPOLLOUT : 0);

	return epoll_common_ctl(p, fd, old_mask, events);
}

static const struct poller epoll_lt_poller = {
	.create = epoll_common_create,
	.watch = epoll_lt_watch,
	.forget = epoll_common_forget,
	.wait = epoll_common_wait,
	.destroy = epoll_common_destroy,
};

const struct engine engine_epoll_lt = {
	.name = "epoll-lt",
	.summary = "single-threaded non-blocking reactor on epoll(7), level-triggered",
	.features = ENGINE_READINESS | ENGINE_O1_WAIT,
	.poller = &epoll_lt_poller,
	.run = reactor_run,
};
