/* engine_pthread_pool.c -- a fixed pool of --workers threads.
 *
 * Two designs, chosen with --accept (UNP ch. 30 compares both):
 *   mutex  every thread accepts for itself, one at a time under a mutex,
 *          then serves what it accepted (serv07);
 *   pass   the main thread accepts and queues the sockets in a bounded
 *          queue that the threads take them from (serv08).
 * Serving is blocking_serve(), as for the pthread engine, with the same
 * registry for --max-conns and shutdown (threads.c). Only the main thread
 * takes the signals; at a stop it makes the pool stop accepting (an
 * eventfd the accepting thread polls, or closing the queue), then gives
 * the connections being served the grace period.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/signals.h"
#include "core/blocking.h"
#include "core/threads.h"
#include "engines/engine.h"

struct thread_pool {
	const struct server *srv;
	struct conn_registry registry;
	pthread_mutex_t lock;		/* accepting (mutex) or the queue (pass) */
	/* pass: one waiter woken per change, never the whole pool: with
	 * thousands of idle threads a broadcast per socket costs thousands
	 * of wakeups for one connection. */
	pthread_cond_t work;		/* pass: a socket was queued, or closed */
	pthread_cond_t room;		/* pass: a socket was taken */
	bool closed;			/* listeners closed: no more accepting */
	int stop_fd;			/* mutex: readable once the pool must stop */
	struct accepted *queue;		/* pass: a ring of --workers sockets */
	unsigned head, count;
};

static void serve(struct thread_pool *pool, const struct accepted *conn)
{
	blocking_serve(pool->srv, conn, NULL);
	registry_close(&pool->registry, conn->fd);
}

/* Within --max-conns, and registered for shutdown; else closed. */
static bool admit(struct thread_pool *pool, const struct accepted *conn)
{
	if (!blocking_admit(pool->srv, registry_count(&pool->registry), conn))
		return false;
	if (registry_add(&pool->registry, conn->fd) == 0)
		return true;
	log_error("out of memory; connection closed");
	close(conn->fd);
	return false;
}

/* mutex: take the lock, accept, let go, serve. */
static enum accept_result accept_locked(struct thread_pool *pool,
					struct acceptor *acceptor,
					struct accepted *conn)
{
	enum accept_result r = ACCEPT_STOP;

	pthread_mutex_lock(&pool->lock);
	if (!pool->closed)
		r = acceptor_next(acceptor, conn);
	pthread_mutex_unlock(&pool->lock);
	return r;
}

static void *accepting_thread(void *arg)
{
	struct thread_pool *pool = arg;
	struct acceptor acceptor;
	struct accepted conn;
	enum accept_result r;

	if (acceptor_init(&acceptor, pool->srv, pool->stop_fd) < 0)
		return NULL;
	while ((r = accept_locked(pool, &acceptor, &conn)) != ACCEPT_STOP) {
		if (r == ACCEPT_CONN && admit(pool, &conn))
			serve(pool, &conn);
	}
	acceptor_free(&acceptor);
	return NULL;
}

/* pass: take the oldest queued socket; false once closed and empty. */
static bool dequeue(struct thread_pool *pool, struct accepted *conn)
{
	bool got = false;

	pthread_mutex_lock(&pool->lock);
	while (pool->count == 0 && !pool->closed)
		pthread_cond_wait(&pool->work, &pool->lock);
	if (pool->count > 0) {
		*conn = pool->queue[pool->head];
		pool->head = (pool->head + 1) % pool->srv->workers;
		pool->count--;
		pthread_cond_signal(&pool->room);
		got = true;
	}
	pthread_mutex_unlock(&pool->lock);
	return got;
}

static void *queued_thread(void *arg)
{
	struct thread_pool *pool = arg;
	struct accepted conn;

	while (dequeue(pool, &conn))
		serve(pool, &conn);
	return NULL;
}

/* pass: wait for room in the queue; false when a stop came first. The
 * wait is sliced because the stop arrives as a signal, not a broadcast. */
static bool wait_for_room(struct thread_pool *pool)
{
	bool room;

	pthread_mutex_lock(&pool->lock);
	while (pool->count == pool->srv->workers && !sig_stop_requested()) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&pool->room, &pool->lock, &ts);
	}
	room = pool->count < pool->srv->workers;
	pthread_mutex_unlock(&pool->lock);
	return room;
}

static void enqueue(struct thread_pool *pool, const struct accepted *conn)
{
	pthread_mutex_lock(&pool->lock);
	pool->queue[(pool->head + pool->count) % pool->srv->workers] = *conn;
	pool->count++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

static void accept_and_queue(struct thread_pool *pool)
{
	struct acceptor acceptor;
	struct accepted conn;
	enum accept_result r;

	if (acceptor_init(&acceptor, pool->srv, sig_wakeup_fd()) < 0)
		return;
	while (wait_for_room(pool) &&
	       (r = acceptor_next(&acceptor, &conn)) != ACCEPT_STOP) {
		if (r == ACCEPT_CONN && admit(pool, &conn))
			enqueue(pool, &conn);
	}
	acceptor_close(&acceptor);
}

/* mutex: the main thread only waits for the stop, then ends accepting:
 * the eventfd wakes the thread in poll, the lock waits for it to leave. */
static void wait_and_close(struct thread_pool *pool)
{
	struct pollfd wake = { sig_wakeup_fd(), POLLIN, 0 };

	while (!sig_stop_requested()) {
		poll(&wake, 1, -1);
		sig_drain();
	}
	if (eventfd_write(pool->stop_fd, 1) < 0)
		log_error("eventfd_write: %s", strerror(errno));
	pthread_mutex_lock(&pool->lock);
	pool->closed = true;
	for (size_t i = 0; i < pool->srv->n_listeners; i++)
		close(pool->srv->listeners[i].fd);
	pthread_mutex_unlock(&pool->lock);
}

static void close_queue(struct thread_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->closed = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

static int pool_init(struct thread_pool *pool, const struct server *srv)
{
	*pool = (struct thread_pool){ .srv = srv, .stop_fd = -1 };
	registry_init(&pool->registry);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->room, NULL);
	if (srv->accept == ACCEPT_PASS) {
		pool->queue = calloc(srv->workers, sizeof *pool->queue);
		return pool->queue ? 0 : -1;
	}
	pool->stop_fd = eventfd(0, EFD_CLOEXEC);
	return pool->stop_fd < 0 ? -1 : 0;
}

static int pthread_pool_run(const struct engine *self, const struct server *srv)
{
	bool pass = srv->accept == ACCEPT_PASS;
	pthread_t *tids = calloc(srv->workers, sizeof *tids);
	struct thread_pool pool;
	unsigned started = 0;

	(void)self;
	if (!tids || pool_init(&pool, srv) < 0) {
		log_error("cannot set up the thread pool: %s", strerror(errno));
		free(tids);
		return 1;
	}
	while (started < srv->workers &&
	       thread_start(&tids[started], false,
			    pass ? queued_thread : accepting_thread, &pool) == 0)
		started++;
	if (started < srv->workers)
		log_error("only %u of %u threads started", started, srv->workers);
	if (pass)
		accept_and_queue(&pool);
	else
		wait_and_close(&pool);
	log_stopping(registry_count(&pool.registry), srv->grace);
	if (pass)
		close_queue(&pool);
	registry_finish(&pool.registry);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	registry_destroy(&pool.registry);
	if (pool.stop_fd >= 0)
		close(pool.stop_fd);
	free(pool.queue);
	free(tids);
	return 0;
}

const struct engine engine_pthread_pool = {
	.name = "pthread-pool",
	.summary = "fixed pool of --workers threads",
	.features = ENGINE_THREADS | ENGINE_POOL,
	.accept_strategies = 1 << ACCEPT_MUTEX | 1 << ACCEPT_PASS,
	.default_accept = ACCEPT_PASS,	/* fastest here: README */
	.run = pthread_pool_run,
};
