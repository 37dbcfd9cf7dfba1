/* poller.h -- what a readiness mechanism gives the cores: (fd, readable,
 * writable) reports and nothing else.
 *
 * Each readiness engine's file holds one (select, poll, epoll-et, sigio,
 * aio-poll; epoll's level-triggered one is poller_epoll.c, which several
 * engines run); reactor.c drives it, conn_io.c reads its report bits.
 */
#ifndef MUXD_POLLER_H
#define MUXD_POLLER_H

enum {
	POLLER_READ = 1 << 0,
	POLLER_WRITE = 1 << 1,
	/* The peer has shut down its sending side (EPOLLRDHUP), or the
	 * socket has failed: what is queued is all the input there is. The
	 * reactor takes a short read as "drained" unless it was told this, so
	 * an edge-triggered poller must report it, or a FIN that came with the
	 * last data would never be read. */
	POLLER_HANGUP = 1 << 2,
	/* With POLLER_READ on a listener shared by several instances: wake
	 * one waiter, not all (EPOLLEXCLUSIVE). Only epoll's level-triggered
	 * poller takes it, and only when it starts watching. */
	POLLER_EXCLUSIVE = 1 << 3,
};

struct poller_event {
	int fd;
	unsigned ready;		/* POLLER_*; errors set all three */
};

struct poller {
	/* What create() makes, for messages: "epoll instance". */
	const char *what;
	/* State for descriptors below max_fds, reporting at most max_events
	 * per wait; NULL with errno on failure. */
	void *(*create)(int max_fds, int max_events);
	/* Watch fd for new_mask instead of old_mask (0: not watched).
	 * -1 with errno when the mechanism cannot take fd. */
	int (*watch)(void *p, int fd, unsigned old_mask, unsigned new_mask);
	/* fd, watched for mask, is about to be closed. */
	void (*forget)(void *p, int fd, unsigned mask);
	/* Wait up to timeout_ms (-1: no limit); fills events, returns how many,
	 * or -1 with errno. */
	int (*wait)(void *p, int timeout_ms, struct poller_event *events);
	void (*destroy)(void *p);
};

#endif
