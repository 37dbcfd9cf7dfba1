/* reactor.h -- the non-blocking core shared by every readiness engine.
 *
 * reactor.c owns connections, their bounded buffers, the service calls,
 * accept pausing, idle timeouts and shutdown; it never knows which kernel
 * mechanism runs. A poller (engine_select.c, engine_poll.c, ...) only turns
 * kernel readiness into (fd, readable/writable) pairs, as redis's ae_*.c do.
 */
#ifndef MUXD_REACTOR_H
#define MUXD_REACTOR_H

#include "engines/engine.h"

enum {
	POLLER_READ = 1 << 0,
	POLLER_WRITE = 1 << 1,
	/* The peer has shut down its sending side (EPOLLRDHUP), or the
	 * socket has failed: what is queued is all the input there is. The
	 * reactor takes a short read as "drained" unless it was told this, so
	 * an edge-triggered poller must report it, or a FIN that came with the
	 * last data would never be read. */
	POLLER_HANGUP = 1 << 2,
};

struct poller_event {
	int fd;
	unsigned ready;		/* POLLER_*; errors set all three */
};

struct poller {
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

/* The run function of every readiness engine: drive self->poller. */
int reactor_run(const struct engine *self, const struct server *srv);

#endif
