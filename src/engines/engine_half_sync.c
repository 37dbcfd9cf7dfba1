/* engine_half_sync.c -- POSA2's half-sync/half-async: one reactor thread
 * for all socket I/O, a fixed pool of --workers threads for what blocks.
 *
 * What differs from epoll-lt, whose reactor this is: a request service's
 * line that waits (delay) or works (work) is not served on the loop. Its
 * session goes through a queue to a worker, which sleeps until the reply
 * is due or computes it, as a blocking library call would; the result
 * comes back through a second queue, the worker making the signal pipe
 * readable, and the reactor sends the reply. Meanwhile the loop goes on
 * serving every other connection: a light request is never stuck behind
 * a heavy one, which the single-threaded reactors show as head-of-line
 * blocking. The cheap services (upper, echo, stamp, ...) stay on the loop.
 * It is the structure of libuv's uv_queue_work and nginx's thread pools.
 *
 * A client that goes while its request is with a worker: a worker asleep
 * on its wait is woken at once (each sleeps on a condition of its own);
 * work under way runs to its end (at most about 0.1 s); the session is
 * freed when it is back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/thread.h"
#include "base/trace.h"
#include "core/poller_epoll.h"
#include "core/reactor.h"
#include "engines/engine.h"
#include "services/service.h"

struct worker;

struct job {
	struct list link;	/* on the pool's queue, or its done list */
	struct conn *conn;	/* the reactor's, handed back when done */
	struct svc_session *session;
	int fd;			/* the connection's, for the trace */
	struct worker *worker;	/* taking it, once taken */
	bool cancelled;		/* its connection is gone */
};

struct worker {
	struct pool *pool;
	pthread_t tid;
	pthread_cond_t woken;	/* its wait is cut short */
	bool started;
};

struct pool {
	pthread_mutex_t lock;	/* everything below, and each job's fields */
	pthread_cond_t queued;
	struct list queue, done;
	bool stopping;
	struct worker *workers;
	unsigned n;
	struct reactor *r;
};

/* ---- the workers: the synchronous half ---- */

static void sleep_until_due(struct pool *p, struct job *j)
{
	int64_t due = svc_due(j->session), begin = trace_begin();
	struct timespec at = { due / 1000, due % 1000 * 1000000 };

	while (!j->cancelled && !p->stopping && clock_ms() < due &&
	       pthread_cond_timedwait(&j->worker->woken, &p->lock, &at) != ETIMEDOUT)
		;
	trace_span(TRACE_SLEEP, begin, j->fd, 0);
}

/* Wait for the line's time, or do its work, as a blocking call would. */
static void run_job(struct pool *p, struct job *j)
{
	if (svc_need(j->session) == SVC_WORK) {
		int64_t begin = trace_begin();

		pthread_mutex_unlock(&p->lock);
		svc_work(j->session);
		trace_span(TRACE_WORK, begin, j->fd, 0);
		pthread_mutex_lock(&p->lock);
	} else {
		sleep_until_due(p, j);
	}
}

static void *work_loop(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;

	trace_name_thread("worker %u", (unsigned)(w - p->workers) + 1);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		int64_t begin = trace_begin();
		struct job *j;

		while (list_empty(&p->queue) && !p->stopping)
			pthread_cond_wait(&p->queued, &p->lock);
		j = list_empty(&p->queue) ? NULL
			: LIST_ENTRY(p->queue.next, struct job, link);
		trace_span(TRACE_WAIT_WORK, begin, j ? j->fd : -1, 0);
		if (!j)
			break;
		list_remove(&j->link);
		trace_take(trace_begin(), j->fd);
		j->worker = w;
		run_job(p, j);
		trace_hand_over(trace_begin(), j->fd, 0);
		j->worker = NULL;
		list_append(&p->done, &j->link);
		sig_notify();
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- the reactor's side: the asynchronous half ---- */

static void *offload(void *ctx, struct conn *c, struct svc_session *s)
{
	struct pool *p = ctx;
	struct job *j = malloc(sizeof *j);

	if (!j)
		return NULL;
	*j = (struct job){ .conn = c, .session = s, .fd = reactor_conn_fd(c) };
	trace_hand_over(trace_begin(), j->fd, 0);
	pthread_mutex_lock(&p->lock);
	list_append(&p->queue, &j->link);
	pthread_cond_signal(&p->queued);
	pthread_mutex_unlock(&p->lock);
	return j;
}

static void cancel(void *ctx, void *token)
{
	struct pool *p = ctx;
	struct job *j = token;

	pthread_mutex_lock(&p->lock);
	j->cancelled = true;
	if (j->worker) {
		pthread_cond_signal(&j->worker->woken);
	} else {
		/* Still queued: back at once, nobody ran it. */
		list_remove(&j->link);
		list_append(&p->done, &j->link);
		sig_notify();
	}
	pthread_mutex_unlock(&p->lock);
}

/* Every job back from the workers, to the reactor. */
static void take_done(struct pool *p, struct reactor *r)
{
	struct list done;

	pthread_mutex_lock(&p->lock);
	list_take_all(&done, &p->done);
	pthread_mutex_unlock(&p->lock);
	while (!list_empty(&done)) {
		struct job *j = LIST_ENTRY(done.next, struct job, link);

		list_remove(&j->link);
		trace_take(trace_begin(), j->fd);
		reactor_resume(r, j->conn);
		free(j);
	}
}

static void woken(struct reactor *r, void *ctx)
{
	sig_drain();
	take_done(ctx, r);
}

/* ---- start and end ---- */

static void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->queued);
	for (unsigned i = 0; i < p->n; i++)
		pthread_cond_signal(&p->workers[i].woken);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		if (p->workers[i].started)
			pthread_join(p->workers[i].tid, NULL);
}

/* Every worker, or none: returns 0, or -1 once the reason is logged. */
static int pool_start(struct pool *p, unsigned n)
{
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->queued, NULL);
	list_init(&p->queue);
	list_init(&p->done);
	p->workers = calloc(n, sizeof *p->workers);
	if (!p->workers) {
		log_error("half-sync: cannot start: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &p->workers[p->n++];
		pthread_condattr_t monotonic;
		int err;

		w->pool = p;
		/* The sleeps are until a clock_ms() deadline: that clock. */
		pthread_condattr_init(&monotonic);
		pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
		pthread_cond_init(&w->woken, &monotonic);
		pthread_condattr_destroy(&monotonic);
		err = thread_start(&w->tid, false, work_loop, w);
		if (err) {
			log_error("half-sync: cannot start worker %u of %u: %s",
				  i + 1, n, strerror(err));
			return -1;
		}
		w->started = true;
	}
	return 0;
}

static void pool_free(struct pool *p)
{
	for (unsigned i = 0; p->workers && i < p->n; i++)
		pthread_cond_destroy(&p->workers[i].woken);
	free(p->workers);
	pthread_cond_destroy(&p->queued);
	pthread_mutex_destroy(&p->lock);
}

static int half_sync_run(const struct engine *self, const struct server *srv)
{
	struct pool p = { .n = 0 };
	struct reactor_shared shared = { 0 };
	const struct reactor_setup setup = {
		.name = self->name,
		.poller = &epoll_lt_poller,
		.srv = srv,
		.listeners = srv->listeners,
		.n_listeners = srv->n_listeners,
		.wake_fd = sig_wakeup_fd(),
		.woken = woken,
		.offload = offload,
		.cancel = cancel,
		.ctx = &p,
		.shared = &shared,
	};
	int status = 1;

	if (pool_start(&p, srv->workers) == 0 && (p.r = reactor_create(&setup))) {
		server_ready(srv);
		status = reactor_serve(p.r);
	} else {
		net_close_listeners(srv->listeners, srv->n_listeners);
	}
	pool_stop(&p);
	if (p.r) {
		take_done(&p, p.r);	/* what the workers had, freed if gone */
		reactor_destroy(p.r);
	}
	pool_free(&p);
	return status;
}

const struct engine engine_half_sync = {
	.name = "half-sync",
	.summary = "half-sync/half-async (POSA2): one epoll reactor does all "
		   "socket I/O; delay and work go to a pool of --workers threads",
	.features = ENGINE_READINESS | ENGINE_THREADS | ENGINE_O1_WAIT |
		    ENGINE_OFFLOAD,
	.run = half_sync_run,
};
