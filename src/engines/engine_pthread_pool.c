/* engine_pthread_pool.c -- a fixed pool of --workers threads.
 *
 * Two designs, chosen with --accept (UNP ch. 30 compares both):
 *   mutex    every thread accepts for itself, one at a time under a
 *            mutex, then serves what it accepted (serv07);
 *   handoff  the main thread accepts and queues the sockets in a bounded
 *            queue that the threads take them from (serv08).
 * Serving is blocking_serve(), as for the pthread engine, with the same
 * registry for --max-conns and shutdown (conn_registry.c). Only the main thread
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
#include "base/thread.h"
#include "base/trace.h"
#include "core/admission.h"
#include "core/blocking.h"
#include "core/conn_registry.h"
#include "engines/engine.h"

struct pool_thread {
	struct thread_pool *pool;
	pthread_t tid;
	struct acceptor acceptor;	/* mutex: its own */
};

struct thread_pool {
	const struct server *srv;
	struct pool_thread *threads;	/* --workers */
	struct acceptor acceptor;	/* handoff: the main thread's */
	struct conn_registry registry;
	pthread_mutex_t lock;		/* accepting (mutex) or the queue (handoff) */
	/* handoff: one waiter woken per change, never the whole pool: with
	 * thousands of idle threads a broadcast per socket costs thousands
	 * of wakeups for one connection. */
	/* handoff: a socket was queued, or closed; mutex: open or closed */
	pthread_cond_t work;
	pthread_cond_t room;		/* handoff: a socket was taken */
	bool open;			/* mutex: the listening lines are out */
	bool closed;			/* listeners closed: no more accepting */
	int stop_fd;			/* mutex: readable once the pool must stop */
	struct accepted *queue;		/* handoff: a ring of --workers sockets */
	unsigned head, count;
};

/* The calling pool thread's track: "worker 1" to "worker N". */
static void name_worker(const struct pool_thread *t)
{
	trace_name_thread("worker %u", (unsigned)(t - t->pool->threads) + 1);
}

static void serve(struct thread_pool *pool, const struct accepted *conn)
{
	blocking_serve(pool->srv, conn, NULL);
	conn_registry_close(&pool->registry, conn->fd);
}

/* Within --max-conns, and registered for shutdown; else closed. */
static bool admit(struct thread_pool *pool, const struct accepted *conn)
{
	if (!admission_check(pool->srv, conn_registry_count(&pool->registry),
			     conn->fd, conn->listener))
		return false;
	if (conn_registry_add(&pool->registry, conn->fd) == 0)
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
	int64_t begin = trace_begin();

	pthread_mutex_lock(&pool->lock);
	trace_span(TRACE_MUTEX, begin, -1, 0);
	while (!pool->open && !pool->closed)
		pthread_cond_wait(&pool->work, &pool->lock);
	if (!pool->closed)
		r = acceptor_next(acceptor, conn);
	pthread_mutex_unlock(&pool->lock);
	return r;
}

static void *accepting_thread(void *arg)
{
	struct pool_thread *t = arg;
	struct thread_pool *pool = t->pool;
	struct accepted conn;
	enum accept_result r;

	name_worker(t);
	while ((r = accept_locked(pool, &t->acceptor, &conn)) != ACCEPT_STOP) {
		if (r == ACCEPT_CONN && admit(pool, &conn))
			serve(pool, &conn);
	}
	return NULL;
}

/* handoff: take the oldest queued socket; false once closed and empty. */
static bool dequeue(struct thread_pool *pool, struct accepted *conn)
{
	int64_t begin = trace_begin();
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
	trace_span(TRACE_WAIT_WORK, begin, got ? conn->fd : -1, 0);
	if (got)
		trace_take(trace_begin(), conn->fd);
	return got;
}

static void *queued_thread(void *arg)
{
	struct thread_pool *pool = ((struct pool_thread *)arg)->pool;
	struct accepted conn;

	name_worker(arg);
	while (dequeue(pool, &conn))
		serve(pool, &conn);
	return NULL;
}

/* handoff: wait for room in the queue; false when a stop came first. The
 * wait is sliced because the stop arrives as a signal, not a broadcast. */
static bool wait_for_room(struct thread_pool *pool)
{
	int64_t begin = trace_begin();
	bool room, waited = false;

	pthread_mutex_lock(&pool->lock);
	while (pool->count == pool->srv->workers && !sig_stop_requested()) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&pool->room, &pool->lock, &ts);
		waited = true;
	}
	room = pool->count < pool->srv->workers;
	pthread_mutex_unlock(&pool->lock);
	if (waited)
		trace_span(TRACE_WAIT_ROOM, begin, -1, 0);
	return room;
}

/* Traced before it is queued: a thread may take it, serve it and close
 * it before the lock is let go. */
static void enqueue(struct thread_pool *pool, const struct accepted *conn)
{
	trace_hand_over(trace_begin(), conn->fd, 0);
	pthread_mutex_lock(&pool->lock);
	pool->queue[(pool->head + pool->count) % pool->srv->workers] = *conn;
	pool->count++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

static void accept_and_queue(struct thread_pool *pool)
{
	struct accepted conn;
	enum accept_result r;

	while (wait_for_room(pool) &&
	       (r = acceptor_next(&pool->acceptor, &conn)) != ACCEPT_STOP) {
		if (r == ACCEPT_CONN && admit(pool, &conn))
			enqueue(pool, &conn);
	}
	acceptor_close(&pool->acceptor);
}

/* mutex: the main thread only waits for the stop, then ends accepting:
 * the eventfd wakes the thread in poll, the lock waits for it to leave. */
static void wait_and_close(struct thread_pool *pool)
{
	struct pollfd wake = { sig_wakeup_fd(), POLLIN, 0 };

	while (!sig_stop_requested()) {
		int64_t begin = trace_begin();

		trace_wait(TRACE_POLL, begin, -1, poll(&wake, 1, -1));
		sig_drain();
	}
	if (eventfd_write(pool->stop_fd, 1) < 0)
		log_error("eventfd_write: %s", strerror(errno));
	pthread_mutex_lock(&pool->lock);
	pool->closed = true;
	net_close_listeners(pool->srv->listeners, pool->srv->n_listeners);
	pthread_mutex_unlock(&pool->lock);
}

static void close_queue(struct thread_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->closed = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

/* What the pool needs before any listening line, but its threads: each
 * acceptor, the queue or the stop eventfd. Returns 0, or -1 once the
 * reason is logged; pool_free() is due either way. */
static int pool_init(struct thread_pool *pool, const struct server *srv)
{
	bool handoff = srv->accept == ACCEPT_HANDOFF;

	*pool = (struct thread_pool){ .srv = srv, .stop_fd = -1 };
	conn_registry_init(&pool->registry);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->room, NULL);
	pool->threads = calloc(srv->workers, sizeof *pool->threads);
	if (handoff)
		pool->queue = calloc(srv->workers, sizeof *pool->queue);
	if (!pool->threads || (handoff && !pool->queue)) {
		log_error("pthread-pool: cannot start: %s", strerror(ENOMEM));
		return -1;
	}
	if (handoff)
		return acceptor_init(&pool->acceptor, srv, sig_wakeup_fd());
	pool->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (pool->stop_fd < 0) {
		log_error("pthread-pool: cannot start: eventfd: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < srv->workers; i++)
		if (acceptor_init(&pool->threads[i].acceptor, srv, pool->stop_fd) < 0)
			return -1;
	return 0;
}

/* Every thread, or none. None accepts (mutex) before the pool is open,
 * nor takes a socket (handoff) before the main thread queues one after the
 * listening lines; a pool that cannot be whole is closed before it
 * served. Returns whether it is whole; if not, its threads are joined. */
static bool start_threads(struct thread_pool *pool)
{
	bool handoff = pool->srv->accept == ACCEPT_HANDOFF;
	unsigned n = pool->srv->workers, started = 0;
	int rc = 0;

	while (started < n && rc == 0) {
		struct pool_thread *t = &pool->threads[started];

		t->pool = pool;
		rc = thread_start(&t->tid, false,
				  handoff ? queued_thread : accepting_thread, t);
		started += rc == 0;
	}
	if (rc == 0)
		return true;
	log_error("pthread-pool: cannot start thread %u of %u: %s",
		  started + 1, n, strerror(rc));
	pthread_mutex_lock(&pool->lock);
	pool->closed = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(pool->threads[i].tid, NULL);
	return false;
}

/* After the listening lines: the threads may accept. */
static void open_pool(struct thread_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->open = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

static void pool_free(struct thread_pool *pool)
{
	conn_registry_destroy(&pool->registry);
	if (pool->stop_fd >= 0)
		close(pool->stop_fd);
	for (unsigned i = 0; pool->threads && i < pool->srv->workers; i++)
		acceptor_free(&pool->threads[i].acceptor);
	acceptor_free(&pool->acceptor);
	free(pool->threads);
	free(pool->queue);
}

static int pthread_pool_run(const struct engine *self, const struct server *srv)
{
	bool handoff = srv->accept == ACCEPT_HANDOFF;
	struct thread_pool pool;

	(void)self;
	if (pool_init(&pool, srv) < 0 || !start_threads(&pool)) {
		net_close_listeners(srv->listeners, srv->n_listeners);
		pool_free(&pool);
		return 1;
	}
	server_ready(srv);
	open_pool(&pool);
	if (handoff)
		accept_and_queue(&pool);
	else
		wait_and_close(&pool);
	log_stopping(conn_registry_count(&pool.registry), srv->grace);
	if (handoff)
		close_queue(&pool);
	conn_registry_finish(&pool.registry);
	for (unsigned i = 0; i < srv->workers; i++)
		pthread_join(pool.threads[i].tid, NULL);
	pool_free(&pool);
	return 0;
}

const struct engine engine_pthread_pool = {
	.name = "pthread-pool",
	.summary = "fixed pool of --workers threads",
	.features = ENGINE_THREADS | ENGINE_POOL,
	.accept_strategies = 1 << ACCEPT_MUTEX | 1 << ACCEPT_HANDOFF,
	.default_accept = ACCEPT_HANDOFF,	/* as prefork: muxd.1 */
	.run = pthread_pool_run,
};
