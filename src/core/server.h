/* server.h -- what every engine is handed: the listeners and the limits. */
#ifndef MUXD_SERVER_H
#define MUXD_SERVER_H

#include <stddef.h>

#include "base/buffer_cache.h"
#include "base/net.h"

/* CONN_BUF_SIZE, every engine's buffer per connection, is defined with
 * the cache that keeps them (base/buffer_cache.h). */

/* How prefork workers (UNP ch. 30) or the threads of multi-reactor share
 * the listeners (--accept). */
enum accept_strategy {
	ACCEPT_PLAIN,		/* each worker polls and accepts; the kernel serialises */
	ACCEPT_FLOCK,		/* a file lock around accept (UNP serv03) */
	ACCEPT_MUTEX,		/* a process-shared mutex around accept (serv04) */
	ACCEPT_REUSEPORT,	/* a SO_REUSEPORT listener per worker or thread */
	ACCEPT_EXCLUSIVE,	/* one listener in every thread's epoll, EPOLLEXCLUSIVE */
	/* One accepts and hands each socket over: prefork's parent passes it
	 * to an idle worker (serv05), pthread-pool's main thread queues it
	 * (serv08), multi-reactor's acceptor gives it to the least busy
	 * thread. "pass" is its older name, still taken. */
	ACCEPT_HANDOFF,
};

/* --threads: at most this many serving threads. */
#define MAX_THREADS 1024

struct server {
	struct listener *listeners;
	size_t n_listeners;
	unsigned workers;	/* pool size, for the pool engines */
	unsigned threads;	/* serving threads, for the engines that take --threads */
	unsigned max_conns;	/* connections served at once */
	unsigned idle_timeout;	/* seconds; 0 = never */
	unsigned grace;		/* seconds open connections get after SIGTERM */
	int backlog;
	enum accept_strategy accept;
	unsigned min_spare, max_spare;	/* prefork-dynamic: idle workers */
	unsigned max_requests;		/* per worker; 0 = no limit */
	/* The engine calls server_ready() once, in the thread that runs it,
	 * when it holds everything it needs to serve (its threads and their
	 * descriptors, per-thread listeners, rings, contexts, workers) and
	 * before it serves a connection; main prints the listening lines
	 * there. A failure before it is a start-up failure: one line, exit
	 * 1, nothing printed, nothing left running. */
	void (*ready)(void *ctx);
	void *ready_ctx;
};

static inline void server_ready(const struct server *srv)
{
	srv->ready(srv->ready_ctx);
}

#endif
