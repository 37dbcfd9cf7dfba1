/* engine_coroutine.c -- one stackful coroutine per connection, scheduled
 * by one epoll thread.
 *
 * Each connection runs the blocking engines' own serve loop (blocking.c)
 * on a coroutine stack (coro.c), as a goroutine or a Java virtual thread
 * would: the loop's socket is non-blocking, and a read or poll that
 * would wait parks the coroutine instead, until the scheduler's epoll
 * reports the socket (registered once, edge-triggered) or the idle
 * timeout passes. Like the reactor, a short read means "drained" unless
 * the peer has shut down, so a message costs a read and a send, and
 * switches that are a few instructions each. A coroutine gives way to
 * the others after IO_BUDGET calls, so a flood cannot starve them.
 * The serve loop's buffer is mapped with the stack, above it: a page of
 * stack and the task are what an idle connection costs. Finished stacks
 * wait in a pool for the next connections (coro.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/coro.h"
#include "base/timers.h"
#include "base/trace.h"
#include "core/admission.h"
#include "core/blocking.h"
#include "engines/engine.h"
#include "services/service.h"

#define IO_BUDGET 16		/* reads and polls per coroutine per turn */
#define ACCEPT_BUDGET 64	/* accepts per listener per turn */
#define EVENT_BATCH 512		/* readiness reports per wait */

enum source_kind { SOURCE_TASK, SOURCE_LISTENER, SOURCE_SIGNALS };

/* What an epoll event points at. */
struct source {
	enum source_kind kind;
	size_t index;		/* listeners: which one */
};

struct sched;

struct task {
	struct serve_io io;	/* first: the serve loop hands it back to us */
	struct source src;
	struct coro coro;
	struct sched *s;
	struct accepted conn;
	struct list run;	/* on sched.runnable */
	struct timer timer;	/* in sched.timers while parked with a limit */
	struct list all;	/* on sched.tasks while alive */
	int64_t read_limit_ms;	/* a read parks this long at most; -1: no limit */
	uint32_t waiting;	/* EPOLL* bits it is parked for; 0: not parked */
	uint32_t woken;		/* the bits that woke it; 0: its time ran out */
	bool readable;		/* input may be queued: no short read since */
	bool peer_shut;		/* the client shut down its side */
	int budget;
};

struct sched {
	const struct server *srv;
	int epfd;
	struct list runnable;
	struct timers timers;	/* parked with a limit: the earliest first */
	struct list tasks;
	unsigned n_tasks;
	struct coro_stacks stacks;
	bool listening, stopping, abandoned;
	int64_t now;
	struct accept_pause pause;
	struct source signals;
	struct source *listener_src;
	struct epoll_event events[EVENT_BATCH];
};

static struct task *task_of(struct serve_io *io)
{
	return (struct task *)(void *)io;
}

static void wake(struct sched *s, struct task *t, uint32_t why)
{
	t->woken = why;
	t->waiting = 0;
	timers_cancel(&s->timers, &t->timer);
	list_append(&s->runnable, &t->run);
}

/* Park until one of `events` (or an error or hang-up) is seen on the
 * socket, or limit_ms passes (-1: no limit). Returns what woke it, 0 for
 * the time limit. */
static uint32_t park(struct task *t, uint32_t events, int64_t limit_ms)
{
	t->waiting = events | EPOLLERR | EPOLLHUP;
	t->woken = 0;
	/* The limits are the idle timeout and a request's wait, which
	 * interleave: a heap keeps them in order at O(log n) each. A heap
	 * that cannot grow leaves the task without its limit, which only a
	 * grace period's end then cuts short. */
	if (limit_ms >= 0 &&
	    timers_arm(&t->s->timers, &t->timer, t->s->now + limit_ms) < 0)
		log_error("coroutine: %s: a wait without its time limit",
			  strerror(ENOMEM));
	t->budget = IO_BUDGET;
	coro_yield();
	return t->woken;
}

/* After IO_BUDGET calls without parking, let the others run first. */
static void spend(struct task *t)
{
	if (--t->budget > 0)
		return;
	t->budget = IO_BUDGET;
	list_append(&t->s->runnable, &t->run);
	coro_yield();
}

static ssize_t task_read(struct serve_io *io, int fd, void *buf, size_t len)
{
	struct task *t = task_of(io);

	for (;;) {
		ssize_t n;

		if (!t->readable && !park(t, EPOLLIN | EPOLLRDHUP, t->read_limit_ms)) {
			errno = EAGAIN;
			return -1;
		}
		spend(t);
		n = read(fd, buf, len);
		stat_read(n);
		trace_io(TRACE_READ, fd, n);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			t->readable = false;
			continue;
		}
		/* Drained: what comes next raises an edge of its own, but for
		 * a FIN that came with this data, which was reported already. */
		if (n > 0 && (size_t)n < len && !t->peer_shut)
			t->readable = false;
		return n;
	}
}

static short poll_events(uint32_t e)
{
	return (short)(((e & (EPOLLIN | EPOLLRDHUP)) ? POLLIN : 0) |
		       ((e & EPOLLOUT) ? POLLOUT : 0) |
		       ((e & EPOLLHUP) ? POLLHUP : 0) | ((e & EPOLLERR) ? POLLERR : 0));
}

/* The serve loop polls its socket alone (only iterative adds the signal
 * pipe). A poll(2) that does not wait says how things stand now; if
 * nothing is ready, any change from here raises an edge, and the
 * coroutine parks for it. */
static int task_poll(struct serve_io *io, struct pollfd *fds, nfds_t n,
		     int timeout_ms)
{
	struct task *t = task_of(io);
	uint32_t want = ((fds->events & POLLIN) ? EPOLLIN | EPOLLRDHUP : 0) |
			((fds->events & POLLOUT) ? EPOLLOUT : 0);
	uint32_t seen;
	int64_t begin;
	int ready;

	(void)n;
	spend(t);
	stat_add(STAT_SYS_WAIT, 1);
	begin = trace_begin();
	ready = poll(fds, 1, 0);
	trace_wait(TRACE_POLL, begin, fds->fd, ready);
	if (ready != 0 || timeout_ms == 0)
		return ready;
	seen = park(t, want, timeout_ms);
	fds->revents = poll_events(seen);
	return seen ? 1 : 0;
}

static void task_limit_reads(struct serve_io *io, int fd, int64_t ms)
{
	(void)fd;
	task_of(io)->read_limit_ms = ms;
}

static void task_main(void *arg)
{
	struct task *t = arg;

	blocking_serve_io(t->s->srv, &t->conn, &t->io, coro_extra(&t->coro));
}

static void task_end(struct sched *s, struct task *t)
{
	close(t->conn.fd);	/* and out of the epoll set */
	coro_free(&t->coro, &s->stacks);
	list_remove(&t->all);
	timers_cancel(&s->timers, &t->timer);
	free(t);
	s->n_tasks--;
}

static int task_init(struct sched *s, struct task *t, const struct accepted *conn)
{
	struct epoll_event ev = { EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				  { .ptr = &t->src } };

	*t = (struct task){
		.io = { task_read, task_poll, task_limit_reads },
		.src = { SOURCE_TASK, 0 },
		.s = s,
		.conn = *conn,
		.read_limit_ms = -1,
		.budget = IO_BUDGET,
	};
	if (coro_init(&t->coro, &s->stacks, CONN_BUF_SIZE, task_main, t,
		      conn->fd) < 0)
		return -1;
	stat_add(STAT_SYS_CTL, 1);
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, conn->fd, &ev) < 0) {
		int saved = errno;

		coro_free(&t->coro, &s->stacks);
		errno = saved;
		return -1;
	}
	return 0;
}

/* A stack that cannot be mapped refuses this connection only. */
static void task_start(struct sched *s, const struct accepted *conn)
{
	struct task *t = malloc(sizeof *t);

	if (!t || task_init(s, t, conn) < 0) {
		log_error("refused %s connection: coroutine: %s",
			  conn->listener->service->name, strerror(errno));
		close(conn->fd);
		free(t);
		return;
	}
	list_init(&t->run);
	timer_init(&t->timer);
	list_append(&s->tasks, &t->all);
	list_append(&s->runnable, &t->run);
	s->n_tasks++;
}

static void run_runnable(struct sched *s)
{
	struct list turn;

	/* Tasks queued again during this turn wait for the next one. */
	list_take_all(&turn, &s->runnable);
	while (!list_empty(&turn)) {
		struct task *t = LIST_ENTRY(turn.next, struct task, run);
		int64_t begin = trace_begin();

		list_remove(&t->run);
		coro_resume(&t->coro);
		trace_span(TRACE_RUN, begin, t->conn.fd, 0);
		if (t->coro.finished)
			task_end(s, t);
	}
}

/* Returns 0, or -1 once the reason is logged; the listeners after the
 * one refused are left as they were. */
static int watch_listeners(struct sched *s, bool on)
{
	s->listening = on;
	for (size_t i = 0; i < s->srv->n_listeners; i++) {
		int fd = s->srv->listeners[i].fd;
		struct epoll_event ev = { EPOLLIN, { .ptr = &s->listener_src[i] } };

		stat_add(STAT_SYS_CTL, 1);
		if (epoll_ctl(s->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) < 0) {
			log_error("coroutine: watch %s listener fd %d: %s",
				  s->srv->listeners[i].service->name, fd,
				  strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void accept_from(struct sched *s, const struct listener *l)
{
	for (int budget = ACCEPT_BUDGET; budget > 0; budget--) {
		struct accepted conn = { .listener = l };

		conn.fd = net_accept(l->fd, true, &conn.peer);
		if (conn.fd < 0) {
			if (net_out_of_resources(errno)) {
				/* Out of descriptors: rest instead of spinning on
				 * a listener that stays readable. */
				accept_pause_start(&s->pause, errno, s->now);
				watch_listeners(s, false);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_error("accept %s: %s", l->service->name,
					  strerror(errno));
			}
			return;
		}
		accept_pause_end(&s->pause);
		if (admission_check(s->srv, s->n_tasks, conn.fd, conn.listener))
			task_start(s, &conn);
	}
}

static void stop_listening(struct sched *s)
{
	for (size_t i = 0; i < s->srv->n_listeners; i++)
		close(s->srv->listeners[i].fd);
	s->listening = false;
	s->stopping = true;
	log_stopping(s->n_tasks, s->srv->grace);
}

/* The grace period is over (or epoll failed): shut every socket down, so
 * that each serve loop ends at its next call (resetting, when the grace
 * is over, what is still queued for its client), and wake them all. */
static void abandon_all(struct sched *s)
{
	for (struct list *l = s->tasks.next; l != &s->tasks; l = l->next) {
		struct task *t = LIST_ENTRY(l, struct task, all);

		shutdown(t->conn.fd, SHUT_RDWR);
		t->readable = t->peer_shut = true;
		if (t->waiting)
			wake(s, t, EPOLLHUP);
	}
	s->abandoned = true;
}

static void dispatch(struct sched *s, const struct epoll_event *ev)
{
	struct source *src = ev->data.ptr;
	struct task *t;

	switch (src->kind) {
	case SOURCE_SIGNALS:
		sig_drain();
		if (sig_stop_requested() && !s->stopping)
			stop_listening(s);
		return;
	case SOURCE_LISTENER:
		if (s->listening)
			accept_from(s, &s->srv->listeners[src->index]);
		return;
	case SOURCE_TASK:
		t = LIST_ENTRY(src, struct task, src);
		if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			t->readable = true;
		if (ev->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			t->peer_shut = true;
		if (t->waiting & ev->events)
			wake(s, t, ev->events & t->waiting);
		return;
	}
}

static void expire_timers(struct sched *s)
{
	struct timer *due;

	while ((due = timers_expired(&s->timers, s->now)))
		wake(s, TIMER_OWNER(due, struct task, timer), 0);
}

static int next_timeout(const struct sched *s)
{
	int t = -1;

	if (!list_empty(&s->runnable))
		return 0;
	if (s->timers.n)
		t = clock_timeout_min(t, timers_next_ms(&s->timers, s->now));
	if (!s->listening && !s->stopping)
		t = clock_timeout_min(t, s->pause.until - s->now);
	if (s->stopping && !s->abandoned)
		t = clock_timeout_min(t, sig_grace_left_ms());
	return t;
}

static int start_failed(const char *what)
{
	log_error("coroutine: cannot start: %s: %s", what, strerror(errno));
	return -1;
}

/* Returns 0, or -1 once the reason is logged. */
static int sched_init(struct sched *s, const struct server *srv)
{
	struct epoll_event ev = { EPOLLIN, { .ptr = &s->signals } };

	memset(s, 0, sizeof *s);
	s->srv = srv;
	s->epfd = -1;
	list_init(&s->runnable);
	list_init(&s->tasks);
	s->now = clock_ms();
	s->signals.kind = SOURCE_SIGNALS;
	s->listener_src = calloc(srv->n_listeners, sizeof *s->listener_src);
	if (!s->listener_src)
		return start_failed("listener table");
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return start_failed("epoll instance");
	if (coro_guard_init() < 0)
		return start_failed("stack guard handler");
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, sig_wakeup_fd(), &ev) < 0)
		return start_failed("watch signal pipe");
	for (size_t i = 0; i < srv->n_listeners; i++)
		s->listener_src[i] = (struct source){ SOURCE_LISTENER, i };
	return watch_listeners(s, true);
}

/* One turn: wait, then everything that became ready runs until it parks. */
static int sched_turn(struct sched *s)
{
	int64_t begin = trace_begin();
	int n = epoll_wait(s->epfd, s->events, EVENT_BATCH, next_timeout(s));

	stat_add(STAT_SYS_WAIT, 1);
	trace_wait(TRACE_EPOLL_WAIT, begin, -1, n);
	if (n < 0 && errno != EINTR)
		return -1;
	s->now = clock_ms();
	for (int i = 0; i < n; i++)
		dispatch(s, &s->events[i]);
	if (!s->listening && !s->stopping && s->now >= s->pause.until)
		watch_listeners(s, true);
	expire_timers(s);
	if (s->stopping && !s->abandoned && sig_grace_left_ms() == 0)
		abandon_all(s);
	run_runnable(s);
	return 0;
}

static int coroutine_run(const struct engine *self, const struct server *srv)
{
	struct sched s;
	int status = 0;

	if (sched_init(&s, srv) < 0)
		status = 1;
	else
		server_ready(srv);
	while (status == 0 && !(s.stopping && s.n_tasks == 0)) {
		if (sched_turn(&s) < 0) {
			log_error("%s: wait: %s", self->name, strerror(errno));
			status = 1;
		}
	}
	/* After a failure, the tasks still open end on their shut sockets. */
	for (abandon_all(&s); s.n_tasks > 0; abandon_all(&s))
		run_runnable(&s);
	if (!s.stopping)
		for (size_t i = 0; i < srv->n_listeners; i++)
			close(srv->listeners[i].fd);
	if (s.epfd >= 0)
		close(s.epfd);
	free(s.listener_src);
	coro_stacks_free(&s.stacks);
	timers_free(&s.timers);
	return status;
}

const struct engine engine_coroutine = {
	.name = "coroutine",
	.summary = "one stackful coroutine per connection running a blocking-style "
		   "serve loop, scheduled by one epoll thread",
	.features = ENGINE_READINESS | ENGINE_O1_WAIT,
	.run = coroutine_run,
};
