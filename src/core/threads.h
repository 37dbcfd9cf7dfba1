/* threads.h -- what the thread engines share: starting a serving thread
 * with the signals blocked, and the set of sockets being served, so that
 * the main thread can count them (--max-conns) and reach them at shutdown.
 */
#ifndef MUXD_THREADS_H
#define MUXD_THREADS_H

#include <pthread.h>
#include <stdbool.h>

#include "base/intset.h"

struct conn_registry {
	pthread_mutex_t lock;
	pthread_cond_t all_done;	/* signalled when open_fds empties */
	struct intset open_fds;		/* one per connection being served */
};

void registry_init(struct conn_registry *r);
void registry_destroy(struct conn_registry *r);
/* Returns 0, or -1 when out of memory. */
int registry_add(struct conn_registry *r, int fd);
/* The connection on fd is over: forget it and close it. A serving thread
 * calls it last: once it returns, registry_finish() may have returned and
 * the engine's state may be gone. */
void registry_close(struct conn_registry *r, int fd);
unsigned registry_count(struct conn_registry *r);
/* After a stop: wait for the connections until the grace period is over,
 * then shut down the sockets still open (their threads' reads and writes
 * return at once) and wait until every one of them is closed. When it
 * returns, no serving thread touches the registry or the server again. */
void registry_finish(struct conn_registry *r);

/* Start a thread that the stop signals never reach; detached or joinable.
 * Returns 0 or an error number. */
int thread_start(pthread_t *tid, bool detached, void *(*fn)(void *), void *arg);

#endif
