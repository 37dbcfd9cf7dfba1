/* blocking.h -- what the blocking engines share.
 *
 * iterative, fork and pthread differ only in who accepts and where a
 * connection is served; the accept loop over every listener and the
 * read -> service -> write loop are here, once. The coroutine engine runs
 * the same serve loop, reaching its socket through struct serve_io.
 */
#ifndef MUXD_BLOCKING_H
#define MUXD_BLOCKING_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/accept_pause.h"
#include "core/server.h"

struct accepted {
	int fd;
	const struct listener *listener;
	struct sockaddr_storage peer;
};

struct acceptor {
	const struct server *srv;
	struct pollfd *fds;	/* the listeners, then the wakeup descriptor */
	size_t next;		/* listener to try first: round robin */
	struct accept_pause pause;
};

enum accept_result {
	ACCEPT_CONN,	/* *out holds a new blocking connection */
	ACCEPT_WAKEUP,	/* a signal other than a stop came (SIGCHLD) */
	ACCEPT_STOP,	/* SIGINT/SIGTERM: stop accepting */
};

/* Wait on srv's listeners and wake_fd: the signal pipe in the thread that
 * takes the signals, else a descriptor that becomes readable at a stop.
 * Returns 0, or -1 once the reason is logged. */
int acceptor_init(struct acceptor *a, const struct server *srv, int wake_fd);

/* The start of an engine that accepts in the main thread: acceptor_init
 * on the signal pipe, then server_ready(). Returns 0, or -1 once the
 * reason is logged and srv's listeners are closed. */
int acceptor_start(struct acceptor *a, const struct server *srv);

/* Wait on every listener and the signal pipe, then accept one connection.
 * Non-blocking listeners: a worker that loses the race for a connection
 * goes back to waiting. ACCEPT_STOP once the acceptor is closed. */
enum accept_result acceptor_next(struct acceptor *a, struct accepted *out);

/* Close the listeners (new connections are refused from now on); again is
 * harmless. */
void acceptor_close(struct acceptor *a);
/* Forget the acceptor but leave the listeners open: another thread owns
 * them. */
void acceptor_free(struct acceptor *a);


/* How the serve loop reaches its socket: the blocking engines' calls wait
 * in the kernel; the coroutine engine's park the coroutine until its
 * scheduler sees the socket ready. Sends never wait: the loop sends with
 * MSG_DONTWAIT and polls for room itself. */
struct serve_io {
	/* read(2) on a blocking socket: waits for a byte or the end of input;
	 * -1 with EAGAIN once the time limit_reads set is over. */
	ssize_t (*read)(struct serve_io *io, int fd, void *buf, size_t len);
	/* poll(2). */
	int (*poll)(struct serve_io *io, struct pollfd *fds, nfds_t n,
		    int timeout_ms);
	/* From now on a read waits at most ms without a byte (--idle-timeout). */
	void (*limit_reads)(struct serve_io *io, int fd, int64_t ms);
};

/* Serve one connection to its end; the caller closes it. The socket is
 * blocking; --idle-timeout becomes its receive and send timeouts. When a
 * stop signal interrupts a read or write in this thread, the grace period
 * shortens them and `listeners` (if not NULL: the serving thread is also
 * the accepting one) are closed; other threads and processes are ended by
 * their engine. */
void blocking_serve(const struct server *srv, const struct accepted *conn,
		    struct acceptor *listeners);

/* The same loop on a non-blocking socket reached through io, its buffer
 * buf (CONN_BUF_SIZE bytes) the caller's. The caller closes the socket. */
void blocking_serve_io(const struct server *srv, const struct accepted *conn,
		       struct serve_io *io, unsigned char *buf);

#endif
