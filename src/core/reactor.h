/* reactor.h -- the non-blocking core shared by every readiness engine.
 *
 * reactor.c owns connections, their bounded buffers, the service calls,
 * accept pausing, idle timeouts and shutdown; it never knows which kernel
 * mechanism runs. A poller (engine_select.c, engine_poll.c, ...) only turns
 * kernel readiness into (fd, readable/writable) pairs, as redis's ae_*.c do.
 */
#ifndef MUXD_REACTOR_H
#define MUXD_REACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/poller.h"
#include "core/server.h"

/* What every single-threaded readiness engine runs (engines.c calls it
 * for a table row with a poller): one instance driving `poller`, woken
 * by the signal pipe; ready once it is made. `name` is the engine's. */
int reactor_run(const char *name, const struct poller *poller,
		const struct server *srv);

/* ---- several instances, one per thread (multi-reactor) ---- */

struct reactor;
struct conn;
struct sockaddr_storage;
struct svc_session;

/* What the instances of one engine share. */
struct reactor_shared {
	_Atomic unsigned open;		/* connections open in all (--max-conns) */
	_Atomic bool stop_logged;	/* the stop is logged once */
};

struct reactor_setup {
	const char *name;		/* the engine's, for messages */
	const struct poller *poller;
	const struct server *srv;
	/* The listeners this instance accepts from; none when it is handed
	 * its connections (reactor_adopt). */
	const struct listener *listeners;
	size_t n_listeners;
	/* They are watched by other instances too, with POLLER_EXCLUSIVE: a
	 * stop shuts them down (new connections are refused at once) instead
	 * of closing them, and the engine closes them once all have ended. */
	bool shared_listeners;
	/* Readable when the instance is to call woken() and look at the stop
	 * request and the grace period (sig_stop_requested ...). */
	int wake_fd;
	/* Empty wake_fd (and take what was handed over). NULL: sig_drain(),
	 * wake_fd being the signal pipe. */
	void (*woken)(struct reactor *r, void *ctx);
	/* An acceptor's: each connection accepted and admitted (--max-conns)
	 * goes here instead of being served by this instance. */
	void (*hand_off)(void *ctx, int fd, const struct listener *l,
			 const struct sockaddr_storage *peer);
	/* Half-sync: a request's wait or work is the engine's. Its session is
	 * handed over, away from the reactor, until the engine gives the
	 * connection back with reactor_resume(), from woken(). offload
	 * returns a token for cancel (NULL: it cannot take it, and the
	 * connection is closed), which the reactor calls when the connection
	 * ends while away; the session is freed once it is back. */
	void *(*offload)(void *ctx, struct conn *c, struct svc_session *s);
	void (*cancel)(void *ctx, void *token);
	void *ctx;
	struct reactor_shared *shared;
	/* This instance's open connections, decreased as each closes; NULL
	 * if nobody looks. */
	_Atomic unsigned *open_here;
};

/* Make one instance, in any thread: its tables, its poller, its wake_fd
 * and listeners watched. NULL once the reason is logged; the listeners
 * are then still the caller's, else the instance's to close (shared ones
 * excepted). */
struct reactor *reactor_create(const struct reactor_setup *setup);

/* Serve in the calling thread until stopped; returns the exit status. */
int reactor_serve(struct reactor *r);

/* Close what the instance still holds (connections past the grace
 * period, its listeners if no stop closed them) and free it. */
void reactor_destroy(struct reactor *r);

/* From woken(): serve fd, accepted and admitted by an acceptor (which
 * counted it in shared->open and in this instance's open_here). */
void reactor_adopt(struct reactor *r, int fd, const struct listener *l,
		   const struct sockaddr_storage *peer);

/* c's descriptor, which the engine's trace events carry. */
int reactor_conn_fd(const struct conn *c);

/* From woken(), or once the engine's threads are gone: c's session is
 * back from offload; its reply is sent next (or, if c ended meanwhile,
 * it is freed). */
void reactor_resume(struct reactor *r, struct conn *c);

#endif
