/* poller_epoll.c -- the epoll instance behind epoll-lt, epoll-et and
 * multi-reactor. */
#include "base/stats.h"
#include "base/trace.h"
#include "core/poller_epoll.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct epoll_state {
	int epfd;
	int max_events;
	struct epoll_event events[];
};

void *poller_epoll_create(int max_fds, int max_events)
{
	struct epoll_state *s;

	(void)max_fds;
	s = malloc(sizeof *s + (size_t)max_events * sizeof s->events[0]);
	if (!s)
		return NULL;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		free(s);
		return NULL;
	}
	s->max_events = max_events;
	return s;
}

int poller_epoll_ctl(void *p, int fd, unsigned old_mask, uint32_t events)
{
	struct epoll_state *s = p;
	struct epoll_event ev = { .events = events, .data.fd = fd };
	int op = !old_mask ? EPOLL_CTL_ADD
		: !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

	stat_add(STAT_SYS_CTL, 1);
	return epoll_ctl(s->epfd, op, fd, &ev);
}

void poller_epoll_forget(void *p, int fd, unsigned mask)
{
	(void)p; (void)fd; (void)mask;
}

int poller_epoll_wait(void *p, int timeout_ms, struct poller_event *events)
{
	struct epoll_state *s = p;
	int64_t begin = trace_begin();
	int n = epoll_wait(s->epfd, s->events, s->max_events, timeout_ms);

	trace_wait(TRACE_EPOLL_WAIT, begin, -1, n);

	for (int i = 0; i < n; i++) {
		uint32_t e = s->events[i].events;

		events[i].fd = s->events[i].data.fd;
		events[i].ready =
			((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ? POLLER_READ : 0) |
			((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ? POLLER_WRITE : 0) |
			((e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ? POLLER_HANGUP : 0);
	}
	return n;
}

void poller_epoll_destroy(void *p)
{
	struct epoll_state *s = p;

	close(s->epfd);
	free(s);
}

/* Level-triggered: interest follows what the connection waits for, and a
 * listener shared by several instances wakes one of them (EPOLLEXCLUSIVE,
 * which epoll takes only with EPOLL_CTL_ADD: listeners are only ever added
 * and deleted). */
static int epoll_lt_watch(void *p, int fd, unsigned old_mask, unsigned mask)
{
	uint32_t events = ((mask & POLLER_READ) ? EPOLLIN : 0) |
			  ((mask & POLLER_WRITE) ? EPOLLOUT : 0) |
			  ((mask & POLLER_EXCLUSIVE) ? EPOLLEXCLUSIVE : 0);

	return poller_epoll_ctl(p, fd, old_mask, events);
}

const struct poller epoll_lt_poller = {
	.what = "epoll instance",
	.create = poller_epoll_create,
	.watch = epoll_lt_watch,
	.forget = poller_epoll_forget,
	.wait = poller_epoll_wait,
	.destroy = poller_epoll_destroy,
};
