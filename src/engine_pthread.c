/* engine_pthread.c -- one detached thread per connection.
 *
 * The main thread accepts and starts a thread that serves the connection
 * and ends; the threads share nothing but the count and the set of open
 * descriptors, kept under one mutex so that shutdown can reach them. Stop
 * signals are blocked in the serving threads and handled by the main one,
 * which, when the grace period is over, shuts down the sockets still open:
 * their blocked reads return and the threads end on their own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocking.h"
#include "clock.h"
#include "engine.h"
#include "intset.h"
#include "log.h"
#include "signals.h"

#define SHUTDOWN_WAIT_MS 1000	/* for threads to notice their shut sockets */

struct pool {
	const struct server *srv;
	pthread_mutex_t lock;
	pthread_cond_t all_done;
	struct intset open_fds;	/* one per serving thread */
};

struct job {
	struct pool *pool;
	struct accepted conn;
};

static void *serve_thread(void *arg)
{
	struct job *job = arg;
	struct pool *pool = job->pool;

	blocking_serve(pool->srv, &job->conn, NULL);
	pthread_mutex_lock(&pool->lock);
	intset_remove(&pool->open_fds, job->conn.fd);
	/* Closed under the lock: shutdown never meets a reused number. */
	close(job->conn.fd);
	if (pool->open_fds.n == 0)
		pthread_cond_signal(&pool->all_done);
	pthread_mutex_unlock(&pool->lock);
	free(job);
	return NULL;
}

static int start_thread(struct job *job)
{
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t saved;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sig_block(&saved);	/* the new thread inherits the mask */
	rc = pthread_create(&tid, &attr, serve_thread, job);
	sig_restore(&saved);
	pthread_attr_destroy(&attr);
	return rc;
}

static void spawn(struct pool *pool, const struct accepted *conn)
{
	struct job *job = malloc(sizeof *job);
	int rc = ENOMEM;

	pthread_mutex_lock(&pool->lock);
	if (job && intset_add(&pool->open_fds, conn->fd) == 0) {
		*job = (struct job){ pool, *conn };
		rc = start_thread(job);
		if (rc != 0)
			intset_remove(&pool->open_fds, conn->fd);
	}
	pthread_mutex_unlock(&pool->lock);
	if (rc != 0) {
		log_error("pthread_create: %s; connection closed", strerror(rc));
		close(conn->fd);
		free(job);
	}
}

static unsigned open_count(struct pool *pool)
{
	unsigned n;

	pthread_mutex_lock(&pool->lock);
	n = (unsigned)pool->open_fds.n;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

/* Wait, in slices so that a second stop signal is noticed, until every
 * thread is done or `until_ms` (monotonic) has passed. Called locked. */
static void wait_threads(struct pool *pool, int64_t until_ms)
{
	int64_t now;

	while (pool->open_fds.n > 0 && (now = clock_ms()) < until_ms &&
	       sig_grace_left_ms() != 0) {
		int64_t slice = until_ms - now < 100 ? until_ms - now : 100;
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)slice * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&pool->all_done, &pool->lock, &ts);
	}
}

static void finish_threads(struct pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	wait_threads(pool, clock_ms() + sig_grace_left_ms());
	for (size_t i = 0; i < pool->open_fds.n; i++)
		shutdown(pool->open_fds.v[i], SHUT_RDWR);
	/* The grace is over; threads now end at once, wait for that only. */
	while (pool->open_fds.n > 0) {
		int64_t until = clock_ms() + SHUTDOWN_WAIT_MS;
		struct timespec ts = { (time_t)(until / 1000),
				       (long)(until % 1000) * 1000000 };

		if (pthread_cond_timedwait(&pool->all_done, &pool->lock, &ts)
		    == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&pool->lock);
}

static void pool_init(struct pool *pool, const struct server *srv)
{
	pthread_condattr_t attr;

	memset(pool, 0, sizeof *pool);
	pool->srv = srv;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->all_done, &attr);
	pthread_condattr_destroy(&attr);
}

static int pthread_run(const struct engine *self, const struct server *srv)
{
	struct acceptor acceptor;
	struct accepted conn;
	struct pool pool;
	enum accept_result r;

	(void)self;
	if (acceptor_init(&acceptor, srv) < 0)
		return 1;
	pool_init(&pool, srv);
	while ((r = acceptor_next(&acceptor, &conn)) != ACCEPT_STOP)
		if (r == ACCEPT_CONN && blocking_admit(srv, open_count(&pool), &conn))
			spawn(&pool, &conn);
	acceptor_close(&acceptor);
	log_stopping(open_count(&pool), srv->grace);
	finish_threads(&pool);
	return 0;
}

const struct engine engine_pthread = {
	.name = "pthread",
	.summary = "one detached thread per connection",
	.features = ENGINE_THREADS,
	.run = pthread_run,
};
