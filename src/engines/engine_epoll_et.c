/* engine_epoll_et.c -- the reactor on epoll(7), edge-triggered.
 *
 * Each descriptor is registered once, for input and output with EPOLLET,
 * and never modified: the kernel reports only changes, so no epoll_ctl
 * per backpressure turn, but a readiness once reported is not repeated.
 * The reactor keeps it (can_read/can_write) until a read or write comes
 * back short or with EAGAIN, and its ready list lets it come back to a
 * flooding client later instead of draining it at the others' expense.
 */
#include <sys/epoll.h>

#include "core/poller_epoll.h"
#include "engines/engine.h"

static int epoll_et_watch(void *p, int fd, unsigned old_mask, unsigned mask)
{
	if (old_mask && mask)
		return 0;	/* registered once for everything */
	return poller_epoll_ctl(p, fd, old_mask,
				mask ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : 0);
}

static const struct poller epoll_et_poller = {
	.what = "epoll instance",
	.create = poller_epoll_create,
	.watch = epoll_et_watch,
	.forget = poller_epoll_forget,
	.wait = poller_epoll_wait,
	.destroy = poller_epoll_destroy,
};

const struct engine engine_epoll_et = {
	.name = "epoll-et",
	.summary = "single-threaded non-blocking reactor on epoll(7), edge-triggered",
	.features = ENGINE_READINESS | ENGINE_O1_WAIT | ENGINE_EDGE,
	.poller = &epoll_et_poller,
};
