/* server.h -- what every engine is handed: the listeners and the limits. */
#ifndef MUXD_SERVER_H
#define MUXD_SERVER_H

#include <stddef.h>

#include "net.h"

/* Every engine's buffer per connection: input is read into it and output
 * sent from it, so it is also the ceiling of memory per connection. */
#define CONN_BUF_SIZE (16 * 1024)

struct server {
	struct listener *listeners;
	size_t n_listeners;
	unsigned workers;	/* pool size, for the pool engines */
	unsigned max_conns;	/* connections served at once */
	unsigned idle_timeout;	/* seconds; 0 = never */
	unsigned grace;		/* seconds open connections get after SIGTERM */
	int backlog;
};

#endif
