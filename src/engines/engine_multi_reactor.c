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
 * thread takes the signals and passes them on (crew.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/signals.h"
#include "core/crew.h"
#include "core/epoll_common.h"
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
	_Atomic unsigned open;		/* handoff: its open connections */
	pthread_mutex_t lock;		/* handoff: guards queue */
	struct handed *queue;
} __attribute__((aligned(64)));	/* read by the acceptor: a line each */

struct multi_reactor {
	const struct server *srv;
	struct crew crew;
	struct mr_thread *t;
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
	unsigned n = m->crew.n, best = m->next_pick % n, fewest = ~0u;

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

/* The acceptor's hand_off: counted in its thread at once, so that the
 * next choice sees it. */
static void hand_off(void *ctx, int fd, const struct listener *l,
		     const struct sockaddr_storage *peer)
{
	struct multi_reactor *m = ctx;
	struct mr_thread *to = least_busy(m);
	struct handed *h = malloc(sizeof *h);
	bool was_empty;

	if (!h) {
		log_error("refused %s connection: out of memory", l->service->name);
		close(fd);
		atomic_fetch_sub(&m->shared.open, 1);
		return;
	}
	*h = (struct handed){ .fd = fd, .listener = l, .peer = *peer };
	atomic_fetch_add_explicit(&to->open, 1, memory_order_relaxed);
	pthread_mutex_lock(&to->lock);
	h->next = to->queue;
	was_empty = !to->queue;
	to->queue = h;
	pthread_mutex_unlock(&to->lock);
	if (was_empty)	/* else a wake-up is on its way already */
		crew_wake(&m->crew, to->index);
}

/* Oldest first, as they were accepted. */
static struct handed *reversed(struct handed *h)
{
	struct handed *out = NULL;

	while (h) {
		struct handed *next = h->next;

		h->next = out;
		out = h;
		h = next;
	}
	return out;
}

/* A serving thread's woken(): its eventfd, then the sockets queued. */
static void take_handed(struct reactor *r, void *ctx)
{
	struct mr_thread *t = ctx;
	struct handed *h;

	crew_drain(&t->m->crew, t->index);
	pthread_mutex_lock(&t->lock);
	h = t->queue;
	t->queue = NULL;
	pthread_mutex_unlock(&t->lock);
	for (h = reversed(h); h;) {
		struct handed *next = h->next;

		reactor_adopt(r, h->fd, h->listener, &h->peer);
		free(h);
		h = next;
	}
}

/* The main thread's woken() while it accepts: a signal, passed on. */
static void acceptor_woken(struct reactor *r, void *ctx)
{
	struct multi_reactor *m = ctx;

	(void)r;
	sig_drain();
	crew_wake_all(&m->crew);
}

static int run_acceptor(struct multi_reactor *m)
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

	return reactor_serve(&s);
}

/* ---- reuseport and exclusive ---- */

static void own_woken(struct reactor *r, void *ctx)
{
	struct mr_thread *t = ctx;

	(void)r;
	crew_drain(&t->m->crew, t->index);
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
		.wake_fd = crew_wake_fd(&m->crew, i),
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

static void serve_thread(void *ctx, unsigned i)
{
	struct multi_reactor *m = ctx;

	if (reactor_serve(&m->t[i].setup) != 0)
		raise(SIGTERM);	/* a thread lost: all stop, with the grace */
}

/* Returns 0, or -1 once the reason is logged. */
static int mr_init(struct multi_reactor *m, const struct server *srv)
{
	size_t size = srv->threads * sizeof *m->t;

	*m = (struct multi_reactor){ .srv = srv };
	m->t = aligned_alloc(_Alignof(struct mr_thread), size);
	if (m->t)
		memset(m->t, 0, size);
	if (!m->t || crew_init(&m->crew, srv->threads) < 0) {
		log_error("multi-reactor: cannot start: %s", strerror(errno));
		return -1;
	}
	if (srv->accept == ACCEPT_REUSEPORT) {
		char err[NET_ERR_LEN];

		m->copies = net_listen_copies(srv->listeners, srv->n_listeners,
					      srv->threads, srv->backlog, err);
		if (!m->copies) {
			log_error("%s", err);
			return -1;
		}
	}
	for (unsigned i = 0; i < srv->threads; i++)
		setup_thread(m, i);
	return 0;
}

/* What no thread took: sockets still queued (handoff), the listeners the
 * threads shared (exclusive) or the main thread kept (a failed start). */
static void mr_free(struct multi_reactor *m, bool listeners_open)
{
	for (unsigned i = 0; m->t && i < m->crew.n && m->t[i].m; i++) {
		for (struct handed *h = m->t[i].queue, *next; h; h = next) {
			next = h->next;
			close(h->fd);
			free(h);
		}
		pthread_mutex_destroy(&m->t[i].lock);
	}
	if (listeners_open)
		for (size_t i = 0; i < m->srv->n_listeners; i++)
			close(m->srv->listeners[i].fd);
	free(m->copies);
	free(m->t);
	crew_free(&m->crew);
}

static int multi_reactor_run(const struct engine *self, const struct server *srv)
{
	struct multi_reactor m;
	bool handoff = srv->accept == ACCEPT_HANDOFF;
	int status = 0;

	(void)self;
	if (mr_init(&m, srv) < 0) {
		mr_free(&m, true);
		return 1;
	}
	if (crew_start(&m.crew, serve_thread, &m) < 0) {
		crew_join(&m.crew);
		mr_free(&m, srv->accept != ACCEPT_REUSEPORT);
		return 1;
	}
	if (handoff)	/* its reactor closes the listeners */
		status = run_acceptor(&m);
	crew_join(&m.crew);
	mr_free(&m, srv->accept == ACCEPT_EXCLUSIVE);
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
