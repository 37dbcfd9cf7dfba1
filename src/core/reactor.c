/* reactor.c -- one thread, many non-blocking connections.
 *
 * Connections with readiness left go on a ready list and get at most
 * IO_BUDGET system calls per turn, round robin: a client that floods
 * cannot starve the others, and nothing waits for a notification the
 * kernel will not send again. What a turn does to a connection, and how
 * its buffer stays bounded, is conn_io.c's.
 *
 * All state is in struct reactor, so that multi-reactor can run one
 * instance per thread: each its own poller, connections, idle list,
 * accept pause and stop. What the instances share is named in their setup
 * (the open-connection count that --max-conns bounds, a listener watched
 * by all); the signals reach the main thread, which wakes each instance
 * through its wake_fd.
 */
#include "core/reactor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/timers.h"
#include "base/trace.h"
#include "core/accept_pause.h"
#include "core/admission.h"
#include "core/conn_io.h"

#define IO_BUDGET 16		/* system calls per connection per turn */
#define ACCEPT_BUDGET 64	/* accepts per listener per turn */
#define EVENT_BATCH 512		/* readiness reports per wait */

struct conn {
	struct conn_io io;
	unsigned watched;	/* mask registered with the poller */
	struct list ready;	/* on reactor.ready while readiness is left */
	struct idle_mark idle;	/* in reactor.idle, oldest first */
	struct timer timer;	/* a request's line waiting for its time */
	void *offloaded;	/* the engine's token while io.away */
	const struct listener *listener;
	union net_peer peer;	/* for the -v lines only */
};

struct reactor {
	struct reactor_setup s;
	const struct poller *ops;
	void *poller;
	const struct server *srv;
	struct conn **conns;	/* by descriptor */
	int max_fds;
	struct poller_event *events;
	bool *listener_ready;
	struct list ready;
	struct idle_list idle;	/* every connection, the least active first */
	struct timers timers;	/* requests' waits, the earliest first */
	unsigned n_conns;	/* this instance's */
	bool listening;		/* listeners watched (not paused or closed) */
	bool stopping;
	int64_t now;
	struct accept_pause pause;
	struct buffer_pool buffers;
};

static void touch(struct reactor *r, struct conn *c)
{
	idle_touch(&r->idle, &c->idle, r->now);
}

/* A connection admitted is counted until it closes. */
static void uncount(struct reactor *r)
{
	atomic_fetch_sub_explicit(&r->s.shared->open, 1, memory_order_relaxed);
	if (r->s.open_here)
		atomic_fetch_sub_explicit(r->s.open_here, 1, memory_order_relaxed);
}

static void conn_close(struct reactor *r, struct conn *c, const char *why)
{
	log_conn_close(c->listener, &c->peer.sa, c->io.fd, why, c->io.bytes_in,
		       c->io.bytes_out);
	trace_close(c->io.fd);
	r->ops->forget(r->poller, c->io.fd, c->watched);
	r->conns[c->io.fd] = NULL;
	list_remove(&c->ready);
	idle_forget(&c->idle);
	timers_cancel(&r->timers, &c->timer);
	close(c->io.fd);
	conn_io_release(&c->io, &r->buffers);
	r->n_conns--;
	uncount(r);
	/* Its session is with the engine: freed when it is back. */
	if (c->io.away) {
		c->io.fd = -1;
		r->s.cancel(r->s.ctx, c->offloaded);
		return;
	}
	free(c);
}

int reactor_conn_fd(const struct conn *c)
{
	return c->io.fd;
}

void reactor_resume(struct reactor *r, struct conn *c)
{
	c->io.away = false;
	c->offloaded = NULL;
	if (c->io.fd < 0) {
		svc_close(&c->io.session);
		free(c);
		return;
	}
	list_remove(&c->ready);
	list_append(&r->ready, &c->ready);
}

/* Half-sync: a line's wait or work goes to the engine. */
static bool offload(struct reactor *r, struct conn *c)
{
	if (!r->s.offload || !conn_io_to_offload(&c->io))
		return true;
	c->offloaded = r->s.offload(r->s.ctx, c, &c->io.session);
	c->io.away = c->offloaded != NULL;
	return c->io.away;
}

/* Register what the connection waits for now. */
static int update_watch(struct reactor *r, struct conn *c)
{
	unsigned mask = conn_io_interest(&c->io);

	if (mask == c->watched)
		return 0;
	if (r->ops->watch(r->poller, c->io.fd, c->watched, mask) < 0)
		return -1;
	c->watched = mask;
	return 0;
}

/* A request service's line waits for its time: the connection runs
 * again when the timer fires. */
static int update_timer(struct reactor *r, struct conn *c)
{
	int64_t due = conn_io_waiting_until(&c->io);

	if (due < 0)
		timers_cancel(&r->timers, &c->timer);
	else if (!timer_armed(&c->timer) || c->timer.due != due)
		return timers_arm(&r->timers, &c->timer, due);
	return 0;
}

static void conn_run(struct reactor *r, struct conn *c)
{
	bool moved;
	const char *over = conn_io_turn(&c->io, &r->buffers, IO_BUDGET, r->now,
					&moved);

	if (over) {
		conn_close(r, c, over);
		return;
	}
	if (moved)
		touch(r, c);
	if (update_watch(r, c) < 0 ||
	    (c->io.request && (update_timer(r, c) < 0 || !offload(r, c)))) {
		conn_close(r, c, strerror(errno));
		return;
	}
	if (conn_io_can_progress(&c->io))
		list_append(&r->ready, &c->ready);
}

static void run_ready(struct reactor *r)
{
	struct list turn;

	/* Connections queued again during this turn wait for the next one. */
	list_take_all(&turn, &r->ready);
	while (!list_empty(&turn)) {
		struct conn *c = LIST_ENTRY(turn.next, struct conn, ready);

		list_remove(&c->ready);
		conn_run(r, c);
	}
}

/* --max-conns over every instance, and the descriptor table's bound.
 * Returns false, fd closed, when the connection is refused. */
static bool admit(struct reactor *r, int fd, const struct listener *l)
{
	if (fd >= r->max_fds) {
		log_error("refused %s connection: fd %d is beyond the table of %d",
			  l->service->name, fd, r->max_fds);
		close(fd);
		return false;
	}
	return admission_take(r->srv, &r->s.shared->open, fd, l);
}

void reactor_adopt(struct reactor *r, int fd, const struct listener *l,
		   const struct sockaddr_storage *peer)
{
	struct conn *c = malloc(sizeof *c);

	if (!c || conn_io_open(&c->io, &r->buffers, fd, l->service) < 0) {
		log_error("refused %s connection: out of memory", l->service->name);
		free(c);
		close(fd);
		uncount(r);
		return;
	}
	c->watched = 0;
	c->io.offload = r->s.offload != NULL;
	c->offloaded = NULL;
	c->listener = l;
	memcpy(&c->peer, peer, sizeof c->peer);	/* IPv4 and IPv6 fit */
	list_init(&c->ready);
	idle_mark_init(&c->idle);
	timer_init(&c->timer);
	r->conns[fd] = c;
	r->n_conns++;
	stat_add(STAT_ACCEPTED, 1);
	touch(r, c);
	log_conn_open(l, &c->peer.sa, fd);
	conn_run(r, c);
}

/* Returns 0, or -1 once the reason is logged; the listeners after the
 * one refused are left as they were. */
static int watch_listeners(struct reactor *r, bool on)
{
	unsigned mask = POLLER_READ | (r->s.shared_listeners ? POLLER_EXCLUSIVE : 0);

	r->listening = on;
	for (size_t i = 0; i < r->s.n_listeners; i++) {
		const struct listener *l = &r->s.listeners[i];

		if (r->ops->watch(r->poller, l->fd, on ? 0 : mask, on ? mask : 0) < 0) {
			log_error("%s: watch %s listener fd %d: %s", r->s.name,
				  l->service->name, l->fd, strerror(errno));
			return -1;
		}
		/* Edge-triggered pollers report only new connections: after a
		 * pause, look for the ones that queued meanwhile. */
		r->listener_ready[i] = on;
	}
	return 0;
}

/* Out of descriptors: stop accepting for a moment instead of spinning on a
 * listener that stays readable; open connections go on being served. */
static void pause_accepting(struct reactor *r, int err)
{
	accept_pause_start(&r->pause, err, r->now);
	watch_listeners(r, false);
}

static void stop_listening(struct reactor *r);

/* A listener shared with EPOLLEXCLUSIVE wakes the first idle instance in
 * its wait queue, which is the order they were added in: the same few
 * would take every connection. Added again after it accepted, this
 * instance goes to the back, and the wake-ups go round. */
static void requeue_listener(struct reactor *r, size_t i)
{
	unsigned mask = POLLER_READ | POLLER_EXCLUSIVE;
	int fd = r->s.listeners[i].fd;

	if (r->ops->watch(r->poller, fd, mask, 0) < 0 ||
	    r->ops->watch(r->poller, fd, 0, mask) < 0)
		log_error("watch listener fd %d: %s", fd, strerror(errno));
}

static void accept_from(struct reactor *r, size_t i)
{
	const struct listener *l = &r->s.listeners[i];

	/* A shared listener: one connection per wake-up, the next for the
	 * next instance in the queue. */
	int budget = r->s.shared_listeners ? 1 : ACCEPT_BUDGET;

	for (; budget > 0; budget--) {
		struct sockaddr_storage peer;
		int fd = net_accept(l->fd, true, &peer);

		if (fd >= 0 && r->s.shared_listeners)
			requeue_listener(r, i);
		if (fd >= 0) {
			accept_pause_end(&r->pause);
			if (!admit(r, fd, l))
				continue;
			if (r->s.hand_off)
				r->s.hand_off(r->s.ctx, fd, l, &peer);
			else
				reactor_adopt(r, fd, l, &peer);
			continue;
		}
		r->listener_ready[i] = false;
		if (net_out_of_resources(errno))
			pause_accepting(r, errno);
		else if (sig_stop_requested())	/* another instance shut it down */
			stop_listening(r);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_error("accept %s: %s", l->service->name, strerror(errno));
		return;
	}
	/* Level-triggered, re-added: epoll reports it again while the
	 * backlog holds connections. */
	if (r->s.shared_listeners)
		r->listener_ready[i] = false;
}

static void accept_ready(struct reactor *r)
{
	if (!r->listening && !r->stopping && r->now >= r->pause.until)
		watch_listeners(r, true);
	for (size_t i = 0; i < r->s.n_listeners && r->listening; i++)
		if (r->listener_ready[i])
			accept_from(r, i);
}

static bool any_listener_ready(const struct reactor *r)
{
	for (size_t i = 0; r->listening && i < r->s.n_listeners; i++)
		if (r->listener_ready[i])
			return true;
	return false;
}

/* Shared listeners are shut down, not closed: another instance may be
 * accepting on one this very moment, and its number must not be reused
 * under it. A listening socket shut down for reading stops listening. */
static void stop_listening(struct reactor *r)
{
	if (r->listening)
		watch_listeners(r, false);
	for (size_t i = 0; i < r->s.n_listeners; i++)
		if (r->s.shared_listeners)
			shutdown(r->s.listeners[i].fd, SHUT_RD);
		else
			close(r->s.listeners[i].fd);
	r->stopping = true;
	if (!atomic_exchange(&r->s.shared->stop_logged, true))
		log_stopping(atomic_load(&r->s.shared->open), r->srv->grace);
}

static bool owes_reply(struct idle_mark *m)
{
	return conn_io_owes_reply(&LIST_ENTRY(m, struct conn, idle)->io);
}

static void expire_idle(struct reactor *r)
{
	struct idle_mark *m;

	while ((m = idle_expired(&r->idle, r->now, owes_reply))) {
		struct conn *c = LIST_ENTRY(m, struct conn, idle);

		net_reset_if_stuck(c->io.fd);
		conn_close(r, c, "idle timeout");
	}
}

static int next_timeout(const struct reactor *r)
{
	int t = -1;

	if (!list_empty(&r->ready) || any_listener_ready(r))
		return 0;
	t = idle_timeout_min(&r->idle, r->now, t);
	if (r->timers.n)
		t = clock_timeout_min(t, timers_next_ms(&r->timers, r->now));
	if (!r->listening && !r->stopping)
		t = clock_timeout_min(t, r->pause.until - r->now);
	if (r->stopping)
		t = clock_timeout_min(t, sig_grace_left_ms());
	return t;
}

/* Requests whose time has come run in this turn. */
static void fire_timers(struct reactor *r)
{
	struct timer *t;

	while ((t = timers_expired(&r->timers, r->now))) {
		struct conn *c = TIMER_OWNER(t, struct conn, timer);

		list_remove(&c->ready);
		list_append(&r->ready, &c->ready);
	}
}

static void woken(struct reactor *r)
{
	if (r->s.woken)
		r->s.woken(r, r->s.ctx);
	else
		sig_drain();
	if (sig_stop_requested() && !r->stopping)
		stop_listening(r);
}

static void dispatch(struct reactor *r, const struct poller_event *ev)
{
	struct conn *c = r->conns[ev->fd];

	if (ev->fd == r->s.wake_fd) {
		woken(r);
	} else if (c) {
		conn_io_ready(&c->io, ev->ready);
		list_remove(&c->ready);
		list_append(&r->ready, &c->ready);
	} else {
		for (size_t i = 0; i < r->s.n_listeners; i++)
			if (r->s.listeners[i].fd == ev->fd)
				r->listener_ready[i] = true;
	}
}

static bool finished(const struct reactor *r)
{
	return r->stopping && (r->n_conns == 0 || sig_grace_left_ms() == 0);
}

/* Returns 0, or -1 once the reason is logged. */
static int reactor_init(struct reactor *r, const struct reactor_setup *s)
{
	r->s = *s;
	r->ops = s->poller;
	r->srv = s->srv;
	r->max_fds = conn_table_size();
	list_init(&r->ready);
	idle_list_init(&r->idle, s->srv);
	r->now = clock_ms();
	r->conns = calloc((size_t)r->max_fds, sizeof *r->conns);
	r->events = calloc(EVENT_BATCH, sizeof *r->events);
	r->listener_ready = calloc(s->n_listeners + 1, sizeof *r->listener_ready);
	if (!r->conns || !r->events || !r->listener_ready) {
		log_error("%s: cannot start: %s", s->name, strerror(ENOMEM));
		return -1;
	}
	r->poller = r->ops->create(r->max_fds, EVENT_BATCH);
	if (!r->poller) {
		log_error("%s: cannot start: %s: %s", s->name, r->ops->what,
			  strerror(errno));
		return -1;
	}
	if (r->ops->watch(r->poller, s->wake_fd, 0, POLLER_READ) < 0) {
		log_error("%s: cannot start: watch wake-up fd %d: %s", s->name,
			  s->wake_fd, strerror(errno));
		return -1;
	}
	return watch_listeners(r, true);
}

static void reactor_free(struct reactor *r)
{
	buffer_pool_free(&r->buffers);
	timers_free(&r->timers);
	if (r->poller)
		r->ops->destroy(r->poller);
	free(r->conns);
	free(r->events);
	free(r->listener_ready);
	free(r);
}

struct reactor *reactor_create(const struct reactor_setup *setup)
{
	/* On the heap: the buffer pool's scratch is as large as a buffer. */
	struct reactor *r = calloc(1, sizeof *r);

	if (!r) {
		log_error("%s: cannot start: %s", setup->name, strerror(errno));
		return NULL;
	}
	if (reactor_init(r, setup) < 0) {
		reactor_free(r);
		return NULL;
	}
	return r;
}

void reactor_destroy(struct reactor *r)
{
	while (!list_empty(&r->idle.oldest_first)) {
		struct conn *c = LIST_ENTRY(r->idle.oldest_first.next, struct conn,
					    idle.link);

		net_reset_if_stuck(c->io.fd);
		conn_close(r, c, sig_stop_reason());
	}
	if (!r->stopping && !r->s.shared_listeners)
		net_close_listeners(r->s.listeners, r->s.n_listeners);
	reactor_free(r);
}

int reactor_serve(struct reactor *r)
{
	while (!finished(r)) {
		int n = r->ops->wait(r->poller, next_timeout(r), r->events);

		stat_add(STAT_SYS_WAIT, 1);
		if (n < 0 && errno != EINTR) {
			log_error("%s: wait: %s", r->s.name, strerror(errno));
			return 1;
		}
		r->now = clock_ms();
		for (int i = 0; i < n; i++)
			dispatch(r, &r->events[i]);
		accept_ready(r);
		fire_timers(r);
		run_ready(r);
		expire_idle(r);
	}
	return 0;
}

int reactor_run(const char *name, const struct poller *poller,
		const struct server *srv)
{
	struct reactor_shared shared = { 0 };
	const struct reactor_setup setup = {
		.name = name,
		.poller = poller,
		.srv = srv,
		.listeners = srv->listeners,
		.n_listeners = srv->n_listeners,
		.wake_fd = sig_wakeup_fd(),
		.shared = &shared,
	};
	struct reactor *r = reactor_create(&setup);
	int status;

	if (!r) {
		net_close_listeners(srv->listeners, srv->n_listeners);
		return 1;
	}
	server_ready(srv);
	status = reactor_serve(r);
	reactor_destroy(r);
	return status;
}
