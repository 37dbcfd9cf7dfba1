/* conn_registry.h -- the set of sockets the thread engines are serving,
 * so that the main thread can count them (--max-conns) and reach them at
 * shutdown.
 */
#ifndef MUXD_CONN_REGISTRY_H
#define MUXD_CONN_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>

#include "base/intset.h"

struct conn_registry {
	pthread_mutex_t lock;
	pthread_cond_t all_done;	/* signalled when open_fds empties */
	struct intset open_fds;		/* one per connection being served */
};

void conn_registry_init(struct conn_registry *r);
void conn_registry_destroy(struct conn_registry *r);
/* Returns 0, or -1 when out of memory. */
int conn_registry_add(struct conn_registry *r, int fd);
/* The connection on fd is over: forget it and close it. A serving thread
 * calls it last: once it returns, conn_registry_finish() may have returned and
 * the engine's state may be gone. */
void conn_registry_close(struct conn_registry *r, int fd);
unsigned conn_registry_count(struct conn_registry *r);
/* After a stop: wait for the connections until the grace period is over,
 * then shut down the sockets still open (their threads' reads and writes
 * return at once) and wait until every one of them is closed. When it
 * returns, no serving thread touches the registry or the server again. */
void conn_registry_finish(struct conn_registry *r);

#endif
