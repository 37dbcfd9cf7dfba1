/* engine_multi_reactor.c -- one epoll reactor per thread (--threads).
 *
 * What differs from epoll-lt: N instances of the same reactor, each on its
 * own thread and epoll instance, a connection staying with the thread that
 * accepted it for its whole life. Only how a new connection reaches a
 * thread varies (--accept):
 *   reuseport  each thread its own SO_REUSEPORT listener per address; the
 *              kernel hashes connections to them (nginx reuseport, Envoy);
 *   exclusive  one listener per address in every thread's epoll, added
 *              with EPOLLEXCLUSIVE so that one waiter wakes (nginx);
 *   handoff    the main thread accepts and queues each socket to the
 *              thread with the fewest open connections, waking it with
 *              its eventfd (memcached, Seastar).
 * The threads share one count of open connections (--max-conns); the main
 * thread takes the signals and passes them on (thread_group.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/signals.h"
#include "base/trace.h"
#include "core/thread_group.h"
#include "core/poller_epoll.h"
#include "core/reactor.h"
#include "engines/engine.h"
#include "services/service.h"

/* A socket on its way from the acceptor to a thread. */
struct handed {
	struct handed *next;
	int fd;
	const struct listener *listener;
	struct sockaddr_storage peer;
};

struct mr_thread {
	struct multi_reactor *m;
	unsigned index;
	struct reactor_setup setup;
	struct reactor *r;
	_Atomic unsigned open;		/* handoff: its open connections */
	pthread_mutex_t lock;		/* handoff: guards queue and closed */
	struct handed *queue;
	bool closed;			/* handoff: takes nothing more */
} __attribute__((aligned(64)));	/* read by the acceptor: a line each */

struct multi_reactor {
	const struct server *srv;
	struct thread_group group;
	struct mr_thread *t;
	struct reactor *acceptor;	/* handoff: the main thread's */
	struct reactor_shared shared;
	struct listener *copies;	/* reuseport: srv's, then one set per thread */
	unsigned next_pick;		/* handoff: where the search starts */
};

/* ---- handoff ---- */

/* The thread with the fewest open connections; among equals, the search
 * starts one further each time, so that short connections, which leave
 * every thread at zero, still go round. */
static struct mr_thread *least_busy(struct multi_reactor *m)
{
	unsigned n = m->group.n, best = m->next_pick % n, fewest = ~0u;

	for (unsigned k = 0; k < n; k++) {
		unsigned i = (m->next_pick + k) % n;
		unsigned open = atomic_load_explicit(&m->t[i].open,
						     memory_order_relaxed);

		if (open < fewest) {
			fewest = open;
			best = i;
		}
	}
	m->next_pick = best + 1;
	return &m->t[best];
}

/* Queue h to `to`, unless it has closed its queue. */
static bool enqueue(struct mr_thread *to, struct handed *h)
{
	bool closed, was_empty;

	pthread_mutex_lock(&to->lock);
	closed = to->closed;
	was_empty = !to->queue;
	if (!closed) {
		h->next = to->queue;
		to->queue = h;
	}
	pthread_mutex_unlock(&to->lock);
	if (!closed && was_empty)	/* else a wake-up is on its way already */
		group_wake(&to->m->group, to->index);
	return !closed;
}

/* An accepted socket that goes to no thread. */
static void refuse(struct multi_reactor *m, int fd)
{
	close(fd);
	atomic_fetch_sub(&m->shared.open, 1);
}

/* The acceptor's hand_off: counted in its thread at once, so that the
 * next choice sees it. A thread that has closed its queue has stopped
 * (or failed, and muxd is stopping): the socket is closed at once, as
 * the listeners are about to be. */
static void hand_off(void *ctx, int fd, const struct listener *l,
		     const struct sockaddr_storage *peer)
{
	struct multi_reactor *m = ctx;
	struct mr_thread *to = least_busy(m);
	struct handed *h = malloc(sizeof *h);

	if (!h) {
		log_error("refused %s connection: out of memory", l->service->name);
		refuse(m, fd);
		return;
	}
	*h = (struct handed){ .fd = fd, .listener = l, .peer = *peer };
	atomic_fetch_add_explicit(&to->open, 1, memory_order_relaxed);
	/* Before: once queued, the thread may serve and close it. */
	trace_hand_over(trace_begin(), fd, to->index + 1);
	if (enqueue(to, h))
		return;
	log_conn("refused %s connection: thread %u has stopped",
		 l->service->name, to->index + 1);
	atomic_fetch_sub_explicit(&to->open, 1, memory_order_relaxed);
	free(h);
	refuse(m, fd);
}

/* The sockets queued to t, oldest first, as they were accepted; with
 * `last`, t takes nothing more. */
static struct handed *take_queue(struct mr_thread *t, bool last)
{
	struct handed *h, *out = NULL;

	pthread_mutex_lock(&t->lock);
	h = t->queue;
	t->queue = NULL;
	t->closed |= last;
	pthread_mutex_unlock(&t->lock);
	while (h) {
		struct handed *next = h->next;

		h->next = out;
		out = h;
		h = next;
	}
	return out;
}

static void adopt_all(struct reactor *r, struct handed *h)
{
	while (h) {
		struct handed *next = h->next;

		trace_take(trace_begin(), h->fd);
		reactor_adopt(r, h->fd, h->listener, &h->peer);
		free(h);
		h = next;
	}
}

/* A serving thread's woken(): its eventfd, then the sockets queued. */
static void take_handed(struct reactor *r, void *ctx)
{
	struct mr_thread *t = ctx;

	group_drain(&t->m->group, t->index);
	adopt_all(r, take_queue(t, false));
}

/* The main thread's woken() while it accepts: a signal, passed on. */
static void acceptor_woken(struct reactor *r, void *ctx)
{
	struct multi_reactor *m = ctx;

	(void)r;
	sig_drain();
	group_wake_all(&m->group);
}

static struct reactor *make_acceptor(struct multi_reactor *m)
{
	const struct reactor_setup s = {
		.name = "multi-reactor",
		.poller = &epoll_lt_poller,
		.srv = m->srv,
		.listeners = m->srv->listeners,
		.n_listeners = m->srv->n_listeners,
		.wake_fd = sig_wakeup_fd(),
		.woken = acceptor_woken,
		.hand_off = hand_off,
		.ctx = m,
		.shared = &m->shared,
	};

	return reactor_create(&s);
}

/* ---- reuseport and exclusive ---- */

static void own_woken(struct reactor *r, void *ctx)
{
	struct mr_thread *t = ctx;

	(void)r;
	group_drain(&t->m->group, t->index);
}

static void setup_thread(struct multi_reactor *m, unsigned i)
{
	const struct server *srv = m->srv;
	struct mr_thread *t = &m->t[i];
	struct reactor_setup *s = &t->setup;

	t->m = m;
	t->index = i;
	pthread_mutex_init(&t->lock, NULL);
	*s = (struct reactor_setup){
		.name = "multi-reactor",
		.poller = &epoll_lt_poller,
		.srv = srv,
		.wake_fd = group_wake_fd(&m->group, i),
		.woken = own_woken,
		.ctx = t,
		.shared = &m->shared,
	};
	if (srv->accept == ACCEPT_REUSEPORT) {
		s->listeners = m->copies + i * srv->n_listeners;
		s->n_listeners = srv->n_listeners;
	} else if (srv->accept == ACCEPT_EXCLUSIVE) {
		s->listeners = srv->listeners;
		s->n_listeners = srv->n_listeners;
		s->shared_listeners = true;
	} else {
		s->woken = take_handed;
		s->open_here = &t->open;
	}
}

/* Stopped with nothing open, a handoff thread may still have been handed
 * sockets: the acceptor, not yet woken by the stop, goes on with its
 * batch of accepts after this thread's last wake-up. So a thread that
 * has ended closes its queue under the lock (nothing is handed to it
 * after that) and takes what is there: after a stop it serves them in
 * the grace period like any other; after a failure its reactor's
 * destruction closes them. */
static int serve_thread(void *ctx, unsigned i)
{
	struct mr_thread *t = &((struct multi_reactor *)ctx)->t[i];

	for (;;) {
		int status = reactor_serve(t->r);
		struct handed *last = take_queue(t, true);

		adopt_all(t->r, last);
		if (status != 0 || !last)
			return status;
	}
}

/* Everything the threads need, made here, before any listening line:
 * their eventfds, listeners and reactors, the acceptor's. Returns 0, or
 * -1 once the reason is logged. */
static int mr_init(struct multi_reactor *m, const struct server *srv)
{
	size_t size = srv->threads * sizeof *m->t;

	*m = (struct multi_reactor){ .srv = srv };
	m->t = aligned_alloc(_Alignof(struct mr_thread), size);
	if (!m->t) {
		log_error("multi-reactor: cannot start: %s", strerror(errno));
		return -1;
	}
	memset(m->t, 0, size);
	if (group_init(&m->group, srv->threads, "multi-reactor") < 0)
		return -1;
	if (srv->accept == ACCEPT_REUSEPORT) {
		char err[NET_ERR_LEN];

		m->copies = net_listen_copies(srv->listeners, srv->n_listeners,
					      srv->threads, srv->backlog, err);
		if (!m->copies) {
			log_error("multi-reactor: cannot start: %s", err);
			return -1;
		}
	}
	for (unsigned i = 0; i < srv->threads; i++)
		setup_thread(m, i);
	for (unsigned i = 0; i < srv->threads; i++)
		if (!(m->t[i].r = reactor_create(&m->t[i].setup)))
			return -1;
	if (srv->accept == ACCEPT_HANDOFF && !(m->acceptor = make_acceptor(m)))
		return -1;
	return 0;
}

/* After the threads, or a failed start: each reactor closes what it
 * holds; the listeners that no reactor took, or that all shared, are
 * closed here. */
static void mr_free(struct multi_reactor *m)
{
	const struct server *srv = m->srv;

	for (unsigned i = 0; m->t && i < srv->threads && m->t[i].m; i++) {
		struct mr_thread *t = &m->t[i];

		if (t->r)
			reactor_destroy(t->r);
		else if (!t->setup.shared_listeners)
			net_close_listeners(t->setup.listeners, t->setup.n_listeners);
		pthread_mutex_destroy(&t->lock);
	}
	if (m->acceptor)
		reactor_destroy(m->acceptor);
	if ((srv->accept == ACCEPT_HANDOFF && !m->acceptor) ||
	    (srv->accept == ACCEPT_REUSEPORT && !m->copies) ||
	    srv->accept == ACCEPT_EXCLUSIVE)
		net_close_listeners(srv->listeners, srv->n_listeners);
	free(m->copies);
	free(m->t);
	group_free(&m->group);
}

static int multi_reactor_run(const struct engine *self, const struct server *srv)
{
	struct multi_reactor m;
	int status = 0;

	(void)self;
	if (mr_init(&m, srv) < 0 || group_start(&m.group, serve_thread, &m) < 0) {
		mr_free(&m);
		return 1;
	}
	server_ready(srv);
	group_release(&m.group);
	if (m.acceptor && reactor_serve(m.acceptor) != 0) {
		sig_request_stop();	/* nothing accepts: the threads stop too */
		status = 1;
	}
	if (group_join(&m.group) != 0)
		status = 1;
	mr_free(&m);
	return status;
}

const struct engine engine_multi_reactor = {
	.name = "multi-reactor",
	.summary = "one non-blocking epoll reactor per thread; a connection "
		   "stays with its thread",
	.features = ENGINE_THREADS | ENGINE_READINESS | ENGINE_O1_WAIT,
	.accept_strategies = 1u << ACCEPT_REUSEPORT | 1u << ACCEPT_EXCLUSIVE |
			     1u << ACCEPT_HANDOFF,
	.default_accept = ACCEPT_REUSEPORT,
	.takes_threads = true,
	.run = multi_reactor_run,
};
