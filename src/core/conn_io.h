/* conn_io.h -- one non-blocking connection's bytes: its bounded buffer,
 * its readiness and one turn of reads, service calls and writes.
 *
 * What the reactor (one thread, its own connections) and leader-followers
 * (threads taking turns on shared connections) both do to a connection
 * once they have it in hand; where connections are kept, how readiness is
 * waited for and when they time out stays with each of them.
 *
 * Readiness is remembered (can_read, can_write) and used up only by a
 * short read or write or EAGAIN, so level- and edge-triggered pollers and
 * one-shot arming drive the same code. Each connection has one fixed
 * buffer. Input is read into its free tail and rewritten there by the
 * service, so a full buffer means "stop reading until the client takes
 * its output": TCP flow control does the rest, and memory per connection
 * never exceeds the struct plus one buffer. A connection holds its buffer
 * only while there is something in it, so an idle connection costs its
 * struct alone; emptied buffers wait on a short free list.
 *
 * A request service (delay, work) is driven a line at a time: its buffer
 * holds the input not yet taken, its output is the reply its session
 * holds, and a line waits for its time (the caller's timer, from
 * conn_io_waiting_until) or, where offload is set, goes to the caller for
 * its wait and work (conn_io_to_offload), the session away meanwhile.
 * Work is otherwise done inline: a reactor thread that computes stalls
 * its other connections, which is the model's lesson. The client's end
 * of file ends such a connection at once.
 */
#ifndef MUXD_CONN_IO_H
#define MUXD_CONN_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/server.h"
#include "base/buffer_cache.h"
#include "services/service.h"

struct conn_io {
	int fd;
	bool can_read, can_write;
	bool peer_shut;		/* the poller reported POLLER_HANGUP */
	bool read_eof;
	unsigned long long bytes_in, bytes_out;
	struct svc_session session;
	/* Unsent output is buf[head, tail); for a request service, input
	 * not yet taken. */
	size_t head, tail;
	unsigned char *buf;	/* CONN_BUF_SIZE bytes, or NULL while empty */
	/* Request services: the session's reply going out. */
	const unsigned char *reply;
	size_t reply_len, reply_sent;
	bool request;		/* a request service (svc_is_request), kept at hand */
	bool offload;		/* a line's wait and work are the caller's */
	bool away;		/* offloaded: the session is the caller's till back */
};

/* One thread's emptied buffers, and the scratch a producer's input is
 * read into and thrown away. Never shared between threads. */
struct buffer_pool {
	struct buffer_cache cache;
	unsigned char scratch[CONN_BUF_SIZE];
};

void buffer_pool_free(struct buffer_pool *p);

/* Entries of a table of connections by descriptor: RLIMIT_NOFILE's soft
 * limit, within reason. */
int conn_table_size(void);

/* Start serving fd with `service`: its greeting is queued at once.
 * Returns 0, or -1 when out of memory (fd is left open). */
int conn_io_open(struct conn_io *c, struct buffer_pool *p, int fd,
		 const struct service *service);

/* The connection is over: give its buffer back (the caller closes fd),
 * and its session's request, unless away (svc_close() once it is back). */
void conn_io_release(struct conn_io *c, struct buffer_pool *p);

/* One turn at `now` (clock_ms): at most `budget` reads and writes while
 * readiness lasts. Returns NULL while the connection goes on, else why it
 * is to be closed ("done", "out of memory" or the system's reason).
 * *moved says whether any byte went in or out (the connection was
 * active). */
const char *conn_io_turn(struct conn_io *c, struct buffer_pool *p, int budget,
			 int64_t now, bool *moved);

/* A request service's line waits for its time: until when (clock_ms),
 * else -1. The caller runs a turn once it has come. */
int64_t conn_io_waiting_until(const struct conn_io *c);

/* A request service owes its client a reply: the connection waits on the
 * server, so it is not idle. */
bool conn_io_owes_reply(const struct conn_io *c);

/* With offload: a line waits for its time or asks for work, which are
 * the caller's; it sets away until the session is back. */
bool conn_io_to_offload(const struct conn_io *c);

/* POLLER_READ and POLLER_WRITE: what it waits for now (input while it has
 * room, output while the socket refused some). */
unsigned conn_io_interest(struct conn_io *c);

/* It has readiness left that a turn would use. */
bool conn_io_can_progress(struct conn_io *c);

/* Take a poller's report (POLLER_* bits). */
void conn_io_ready(struct conn_io *c, unsigned ready);

#endif
