/* engine_leader_followers.c -- POSA2's leader/followers on one epoll set.
 *
 * What differs from multi-reactor: the --threads threads share one epoll
 * set, every descriptor in it armed EPOLLONESHOT, instead of each thread
 * owning its connections. One thread, the leader, waits; handed a
 * descriptor, it promotes the follower that has waited longest, serves
 * that descriptor for one turn, re-arms it and queues as a follower
 * again. The queue is first in, first out, each follower asleep on a
 * condition of its own, so leadership goes round and one promotion wakes
 * one thread (a mutex alone would let the thread that just served take
 * it back again and again). One-shot arming puts a descriptor in one
 * thread's hands at a time, so a connection needs no lock of its own, yet
 * its next turn may be any thread's (a striped hand-over lock makes that
 * order visible to ThreadSanitizer; last_active is atomic, for the sweep
 * reads it). The connection's turn is conn_io.c's, as in the reactor; a
 * connection that still has work is re-armed level-triggered and comes
 * back behind what is already waiting, which is this engine's round robin.
 *
 * A request service's line that waits for its time has a timer in a heap
 * under timer_lock, and stays armed in the set meanwhile, so that its
 * client's reset or end of file is seen at once. Either may then hand
 * the connection to a thread: the leader pops a timer that has come, a
 * report comes for the socket. Whoever takes it first (in_hand) serves
 * it; the other lets go, and what it had is not lost: the holder lets go
 * of the connection before it re-arms it, level-triggered, so a report it
 * took from another comes again; a timer popped meanwhile is marked
 * (due_in_hand), and the holder, which lets go under the same lock that
 * pops timers, turns again instead.
 *
 * Connections are kept by descriptor under table_lock, taken per
 * connection opened or closed and by the idle sweep, never per message.
 * The leader sweeps when the oldest connection may be due, up to the
 * highest descriptor open at the last sweep or opened since (not the
 * whole table, which RLIMIT_NOFILE may make a million long); it cannot
 * close one that a thread may be serving, so it marks it and shuts it
 * down, and the socket's hang-up makes whoever takes it close it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/timers.h"
#include "base/trace.h"
#include "core/accept_pause.h"
#include "core/admission.h"
#include "core/conn_io.h"
#include "core/thread_group.h"
#include "core/poller_epoll.h"
#include "engines/engine.h"
#include "services/service.h"

#define IO_BUDGET 16		/* system calls per connection per turn */
#define HANDOVER_STRIPES 64
#define ACCEPT_BUDGET 16	/* accepts per listener report */

struct lf_conn {
	struct conn_io io;
	_Atomic int64_t last_active;
	_Atomic bool expired;		/* shut down by the idle sweep */
	_Atomic bool in_hand;		/* a thread serves it: others let go */
	_Atomic bool owes_reply;	/* a request waits on us: not idle */
	struct timer timer;		/* under timer_lock */
	bool due_in_hand;		/* under timer_lock: it came due while
					 * in hand; the holder turns again */
	const struct listener *listener;
	union net_peer peer;		/* for the -v lines only */
};

struct follower {
	pthread_cond_t promoted_cond;
	bool promoted;
	struct follower *next;
};

struct lf {
	const struct server *srv;
	struct thread_group group;
	void *ep;			/* poller_epoll.c's */
	int wake_fd;			/* group member 0's eventfd, in the set */
	int max_fds;
	_Atomic(struct lf_conn *) *conns;	/* by descriptor */
	pthread_mutex_t table_lock;
	int conns_end;			/* under table_lock: none at or above */
	pthread_mutex_t leader_lock;	/* guards has_leader and the queue */
	bool has_leader;
	struct follower *first, *last;	/* waiting to lead, oldest first */
	int64_t next_sweep;		/* the leader's */
	pthread_mutex_t timer_lock;
	struct timers timers;		/* requests' waits, the earliest first */
	_Atomic unsigned open;		/* --max-conns */
	_Atomic bool stopping;
	_Atomic int64_t pause_until;	/* accept pause: 0 when none */
	_Atomic bool *paused;		/* per listener: not re-armed */
	_Atomic bool shortage;		/* pause.short_of_fds, for a lock-free look */
	pthread_mutex_t pause_lock;
	struct accept_pause pause;
	/* Held around each re-arming, and taken by the next thread to be
	 * handed the descriptor: the kernel orders the turn before the report
	 * it arms, but ThreadSanitizer does not know EPOLL_CTL_MOD, and a
	 * connection's next turn (or its close) on another thread must be
	 * seen to follow the last. Striped by descriptor, so that two
	 * threads rarely meet on one; two uncontended lock operations a turn. */
	pthread_mutex_t handover[HANDOVER_STRIPES];
	struct buffer_pool *pools;	/* one per thread: never shared */
};

/* Arm fd for one report of `events` (POLLER_* interest). */
static int arm(struct lf *l, int fd, bool first, unsigned interest)
{
	uint32_t events = EPOLLONESHOT |
			  ((interest & POLLER_READ) ? EPOLLIN : 0) |
			  ((interest & POLLER_WRITE) ? EPOLLOUT : 0);

	return poller_epoll_ctl(l->ep, fd, first ? 0 : POLLER_READ, events);
}

static void conn_close(struct lf *l, struct buffer_pool *pool,
		       struct lf_conn *c, const char *why)
{
	if (atomic_load(&c->expired)) {
		why = "idle timeout";
		net_reset_if_stuck(c->io.fd);
	}
	log_conn_close(c->listener, &c->peer.sa, c->io.fd, why, c->io.bytes_in,
		       c->io.bytes_out);
	trace_close(c->io.fd);
	pthread_mutex_lock(&l->timer_lock);
	timers_cancel(&l->timers, &c->timer);
	pthread_mutex_unlock(&l->timer_lock);
	pthread_mutex_lock(&l->table_lock);
	atomic_store(&l->conns[c->io.fd], NULL);
	/* Closed under the lock: the sweep never shuts down a reused number. */
	close(c->io.fd);
	pthread_mutex_unlock(&l->table_lock);
	conn_io_release(&c->io, pool);
	free(c);
	/* The last one out during the grace period wakes the leader. */
	if (atomic_fetch_sub(&l->open, 1) == 1 && atomic_load(&l->stopping))
		group_wake(&l->group, 0);
}

enum settled { LET_GO, TURN_AGAIN, NO_MEMORY };

/* The end of a turn: a request's line waiting for its time gets its timer
 * (or loses it), and the connection is let go, both under timer_lock,
 * unless a timer came due while it was in hand: timer_due() could not
 * take it and marked it, and it stays in hand for another turn (had the
 * holder let go first, nobody would serve that line). The leader may be
 * waiting with a longer timeout: it is woken. */
static enum settled settle(struct lf *l, struct lf_conn *c)
{
	int64_t due = conn_io_waiting_until(&c->io);
	enum settled how = LET_GO;
	bool earliest = false;

	atomic_store(&c->owes_reply, conn_io_owes_reply(&c->io));
	pthread_mutex_lock(&l->timer_lock);
	if (due < 0) {
		timers_cancel(&l->timers, &c->timer);
	} else if (!timer_armed(&c->timer) || c->timer.due != due) {
		if (timers_arm(&l->timers, &c->timer, due) < 0)
			how = NO_MEMORY;
		earliest = how == LET_GO && l->timers.heap[0] == &c->timer;
	}
	if (how == LET_GO && c->due_in_hand)
		how = TURN_AGAIN;
	c->due_in_hand = false;
	if (how == LET_GO)
		atomic_store(&c->in_hand, false);
	pthread_mutex_unlock(&l->timer_lock);
	if (earliest)
		group_wake(&l->group, 0);
	return how;
}

/* The connection is this thread's to serve, unless another has it. */
static bool take(struct lf_conn *c)
{
	bool free_now = false;

	return atomic_compare_exchange_strong(&c->in_hand, &free_now, true);
}

/* Turns while there is work, then back into the set (first: into it) for
 * what it waits for next; a connection with readiness left is armed for
 * it, and level-triggered epoll reports it again at once. */
static void conn_turn(struct lf *l, struct buffer_pool *pool, struct lf_conn *c,
		      bool first)
{
	enum settled how = LET_GO;
	const char *over;
	unsigned interest = 0;
	int fd = c->io.fd, rc;

	do {
		bool moved;

		over = conn_io_turn(&c->io, pool, IO_BUDGET, clock_ms(), &moved);
		if (over)
			break;
		if (moved)
			atomic_store_explicit(&c->last_active, clock_ms(),
					      memory_order_relaxed);
		interest = conn_io_interest(&c->io);
		if (conn_io_can_progress(&c->io))
			interest |= c->io.can_write ? POLLER_WRITE : POLLER_READ;
		/* Once let go, c is another thread's (a timer may hand it
		 * over): nothing of it is read after. */
		how = settle(l, c);
	} while (how == TURN_AGAIN);
	if (how == NO_MEMORY)
		over = strerror(ENOMEM);
	if (over) {
		conn_close(l, pool, c, over);
		return;
	}
	/* Let go, then armed: a report another thread took meanwhile
	 * comes again. */
	pthread_mutex_lock(&l->handover[fd % HANDOVER_STRIPES]);
	rc = arm(l, fd, first, interest);
	pthread_mutex_unlock(&l->handover[fd % HANDOVER_STRIPES]);
	if (rc < 0 && take(c))
		conn_close(l, pool, c, strerror(errno));
}

/* Handed fd: its last turn, on whichever thread, happened before. */
static void take_over(struct lf *l, int fd)
{
	pthread_mutex_lock(&l->handover[fd % HANDOVER_STRIPES]);
	pthread_mutex_unlock(&l->handover[fd % HANDOVER_STRIPES]);
}

/* --max-conns over every thread, and the table's bound. */
static bool admit(struct lf *l, int fd, const struct listener *li)
{
	if (fd >= l->max_fds) {
		log_error("refused %s connection: fd %d is beyond the table of %d",
			  li->service->name, fd, l->max_fds);
		close(fd);
		return false;
	}
	return admission_take(l->srv, &l->open, fd, li);
}

static void conn_open(struct lf *l, struct buffer_pool *pool, int fd,
		      const struct listener *li,
		      const struct sockaddr_storage *peer)
{
	struct lf_conn *c = calloc(1, sizeof *c);

	if (!c || conn_io_open(&c->io, pool, fd, li->service) < 0) {
		log_error("refused %s connection: out of memory", li->service->name);
		free(c);
		close(fd);
		atomic_fetch_sub(&l->open, 1);
		return;
	}
	c->listener = li;
	memcpy(&c->peer, peer, sizeof c->peer);	/* IPv4 and IPv6 fit */
	atomic_store(&c->last_active, clock_ms());
	atomic_store(&c->in_hand, true);
	timer_init(&c->timer);
	pthread_mutex_lock(&l->table_lock);
	atomic_store(&l->conns[fd], c);
	if (fd >= l->conns_end)
		l->conns_end = fd + 1;
	pthread_mutex_unlock(&l->table_lock);
	stat_add(STAT_ACCEPTED, 1);
	log_conn_open(li, &c->peer.sa, fd);
	conn_turn(l, pool, c, true);	/* the greeting, then into the set */
}

/* Out of descriptors: listener i stays disarmed until the leader re-arms
 * it after the pause, so that nobody spins on it. */
static void pause_listener(struct lf *l, size_t i, int err)
{
	pthread_mutex_lock(&l->pause_lock);
	accept_pause_start(&l->pause, err, clock_ms());
	atomic_store(&l->paused[i], true);
	atomic_store(&l->pause_until, l->pause.until);
	atomic_store(&l->shortage, true);
	pthread_mutex_unlock(&l->pause_lock);
	group_wake(&l->group, 0);	/* the leader's wait must end by then */
}

static void accepted(struct lf *l)
{
	if (!atomic_load_explicit(&l->shortage, memory_order_relaxed))
		return;
	pthread_mutex_lock(&l->pause_lock);
	accept_pause_end(&l->pause);
	atomic_store(&l->shortage, false);
	pthread_mutex_unlock(&l->pause_lock);
}

/* Up to ACCEPT_BUDGET connections per report: one alone would leave a
 * burst of new clients waiting behind every busy connection's turn. */
static void accept_on(struct lf *l, struct buffer_pool *pool, size_t i)
{
	const struct listener *li = &l->srv->listeners[i];

	for (int budget = ACCEPT_BUDGET; budget > 0; budget--) {
		struct sockaddr_storage peer;
		int fd = net_accept(li->fd, true, &peer);

		if (fd >= 0) {
			accepted(l);
			if (admit(l, fd, li))
				conn_open(l, pool, fd, li, &peer);
			continue;
		}
		if (net_out_of_resources(errno)) {
			pause_listener(l, i, errno);
			return;
		}
		if (atomic_load(&l->stopping))
			return;	/* shut down: left disarmed */
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_error("accept %s: %s", li->service->name, strerror(errno));
		break;
	}
	arm(l, li->fd, false, POLLER_READ);
}

/* ---- the leader's duties: one thread at a time ---- */

static void stop_listening(struct lf *l)
{
	atomic_store(&l->stopping, true);
	/* A thread may be accepting on one right now: shut down, it stops
	 * listening at once and keeps its number until lf_free(). */
	for (size_t i = 0; i < l->srv->n_listeners; i++)
		shutdown(l->srv->listeners[i].fd, SHUT_RD);
	log_stopping(atomic_load(&l->open), l->srv->grace);
}

static void woken(struct lf *l)
{
	group_drain(&l->group, 0);
	if (sig_stop_requested() && !atomic_load(&l->stopping))
		stop_listening(l);
	arm(l, l->wake_fd, false, POLLER_READ);
}

static void end_pause(struct lf *l, int64_t now)
{
	int64_t until = atomic_load(&l->pause_until);

	if (!until || now < until)
		return;
	atomic_store(&l->pause_until, 0);
	for (size_t i = 0; i < l->srv->n_listeners; i++)
		if (atomic_exchange(&l->paused[i], false) &&
		    !atomic_load(&l->stopping))
			arm(l, l->srv->listeners[i].fd, false, POLLER_READ);
}

/* Mark and shut down the connections idle too long; the next sweep is
 * when the oldest of the others is due (or a whole timeout away: any
 * connection opened later is due later still). */
static void sweep_idle(struct lf *l, int64_t now)
{
	int64_t timeout = (int64_t)l->srv->idle_timeout * 1000;
	int end = 0;

	if (!timeout || now < l->next_sweep)
		return;
	l->next_sweep = now + timeout;
	pthread_mutex_lock(&l->table_lock);
	for (int fd = 0; fd < l->conns_end; fd++) {
		/* Acquire: what conn_open() wrote before publishing it. */
		struct lf_conn *c = atomic_load_explicit(&l->conns[fd],
							 memory_order_acquire);
		int64_t due;

		if (!c)
			continue;
		end = fd + 1;
		if (atomic_load(&c->expired) || atomic_load(&c->owes_reply))
			continue;
		if (!idle_due(l->srv, atomic_load_explicit(&c->last_active,
							  memory_order_relaxed),
			      now, &due)) {
			l->next_sweep = due < l->next_sweep ? due : l->next_sweep;
			continue;
		}
		atomic_store(&c->expired, true);
		/* Counted now, before the client can see the end, as the
		 * other engines count it before they close. */
		idle_timed_out();
		shutdown(c->io.fd, SHUT_RDWR);	/* reported as a hang-up */
	}
	l->conns_end = end;	/* the closed ones above are not looked at again */
	pthread_mutex_unlock(&l->table_lock);
}

static int lead_timeout(struct lf *l, int64_t now)
{
	int64_t until = atomic_load(&l->pause_until);
	int t = -1;

	if (l->srv->idle_timeout)
		t = clock_timeout_min(t, l->next_sweep - now);
	if (until)
		t = clock_timeout_min(t, until - now);
	if (atomic_load(&l->stopping))
		t = clock_timeout_min(t, sig_grace_left_ms());
	pthread_mutex_lock(&l->timer_lock);
	if (l->timers.n)
		t = clock_timeout_min(t, timers_next_ms(&l->timers, now));
	pthread_mutex_unlock(&l->timer_lock);
	return t;
}

/* A request whose time has come, taken in hand; NULL if none. */
static struct lf_conn *timer_due(struct lf *l, int64_t now)
{
	struct lf_conn *c = NULL;
	struct timer *t;

	pthread_mutex_lock(&l->timer_lock);
	while (!c && (t = timers_expired(&l->timers, now))) {
		c = TIMER_OWNER(t, struct lf_conn, timer);
		c->due_in_hand = !take(c);	/* its holder turns again */
		if (c->due_in_hand)
			c = NULL;
	}
	pthread_mutex_unlock(&l->timer_lock);
	return c;
}

static bool finished(struct lf *l)
{
	return atomic_load(&l->stopping) &&
	       (atomic_load(&l->open) == 0 || sig_grace_left_ms() == 0);
}

/* Wait in the queue until there is no leader or this thread is promoted. */
static void join_followers(struct lf *l, struct follower *me)
{
	int64_t begin = trace_begin();
	bool waited = false;

	pthread_mutex_lock(&l->leader_lock);
	if (l->has_leader) {
		waited = true;
		me->promoted = false;
		me->next = NULL;
		if (l->last)
			l->last->next = me;
		else
			l->first = me;
		l->last = me;
		while (!me->promoted)
			pthread_cond_wait(&me->promoted_cond, &l->leader_lock);
	}
	l->has_leader = true;
	pthread_mutex_unlock(&l->leader_lock);
	if (waited)
		trace_span(TRACE_WAIT_LEAD, begin, -1, 0);
}

/* Hand leadership to the oldest follower, or leave the post empty. */
static void promote_follower(struct lf *l)
{
	struct follower *f;

	pthread_mutex_lock(&l->leader_lock);
	f = l->first;
	if (f) {
		l->first = f->next;
		if (!l->first)
			l->last = NULL;
		f->promoted = true;
		pthread_cond_signal(&f->promoted_cond);
		trace_event(TRACE_PROMOTE, -1, 0, 0);
	} else {
		l->has_leader = false;
	}
	pthread_mutex_unlock(&l->leader_lock);
}

enum { LEAD_STOP = -1, LEAD_FAILED = -2 };

/* Lead until handed a connection or a listener: returns its descriptor,
 * leadership passed on; or LEAD_STOP when it is time to stop, LEAD_FAILED
 * when the wait failed (which stops everyone: the thread group sees this thread
 * fail). A connection whose request's time has come is returned in *due,
 * already in hand. */
static int lead(struct lf *l, struct follower *me, unsigned *ready,
		struct lf_conn **due)
{
	struct poller_event ev;
	int why = LEAD_STOP;

	join_followers(l, me);
	*due = NULL;
	for (;;) {
		int64_t now = clock_ms();
		int n;

		end_pause(l, now);
		sweep_idle(l, now);
		if (finished(l))
			break;
		if ((*due = timer_due(l, now))) {
			promote_follower(l);
			return (*due)->io.fd;
		}
		n = poller_epoll_wait(l->ep, lead_timeout(l, now), &ev);
		stat_add(STAT_SYS_WAIT, 1);
		if (n < 0 && errno != EINTR) {
			log_error("leader-followers: wait: %s", strerror(errno));
			why = LEAD_FAILED;
			break;
		}
		if (n == 1 && ev.fd == l->wake_fd) {
			woken(l);
		} else if (n == 1) {
			promote_follower(l);
			*ready = ev.ready;
			return ev.fd;
		}
	}
	promote_follower(l);	/* it will see that it is time to stop */
	return why;
}

static int follow(void *ctx, unsigned index)
{
	struct lf *l = ctx;
	struct buffer_pool *pool = &l->pools[index];
	struct follower me = { .promoted = false };
	struct lf_conn *c;
	unsigned ready;
	int fd;

	pthread_cond_init(&me.promoted_cond, NULL);
	while ((fd = lead(l, &me, &ready, &c)) >= 0) {
		if (c) {	/* its request's time has come */
			conn_turn(l, pool, c, false);
			continue;
		}
		take_over(l, fd);
		c = atomic_load_explicit(&l->conns[fd], memory_order_relaxed);
		if (c && take(c)) {
			conn_io_ready(&c->io, ready);
			conn_turn(l, pool, c, false);
			continue;
		}
		if (c)
			continue;	/* in another's hand: it re-arms it */
		for (size_t i = 0; i < l->srv->n_listeners; i++)
			if (l->srv->listeners[i].fd == fd)
				accept_on(l, pool, i);
	}
	pthread_cond_destroy(&me.promoted_cond);
	return fd == LEAD_FAILED;
}

/* ---- start and end ---- */

/* Everything the threads need, before any listening line: the epoll
 * set, the tables, a buffer pool each. Returns 0, or -1 once the reason
 * is logged. */
static int lf_init(struct lf *l, const struct server *srv)
{
	*l = (struct lf){ .srv = srv, .max_fds = conn_table_size(),
			  .wake_fd = -1 };
	pthread_mutex_init(&l->table_lock, NULL);
	pthread_mutex_init(&l->leader_lock, NULL);
	pthread_mutex_init(&l->pause_lock, NULL);
	pthread_mutex_init(&l->timer_lock, NULL);
	for (int i = 0; i < HANDOVER_STRIPES; i++)
		pthread_mutex_init(&l->handover[i], NULL);
	l->next_sweep = clock_ms() + (int64_t)srv->idle_timeout * 1000;
	l->conns = calloc((size_t)l->max_fds, sizeof *l->conns);
	l->paused = calloc(srv->n_listeners + 1, sizeof *l->paused);
	l->pools = calloc(srv->threads, sizeof *l->pools);
	if (!l->conns || !l->paused || !l->pools) {
		log_error("leader-followers: cannot start: %s", strerror(ENOMEM));
		return -1;
	}
	if (group_init(&l->group, srv->threads, "leader-followers") < 0)
		return -1;
	l->ep = poller_epoll_create(l->max_fds, 1);	/* one at a time */
	if (!l->ep) {
		log_error("leader-followers: cannot start: epoll instance: %s",
			  strerror(errno));
		return -1;
	}
	l->wake_fd = group_wake_fd(&l->group, 0);
	if (arm(l, l->wake_fd, true, POLLER_READ) < 0) {
		log_error("leader-followers: cannot start: watch wake-up fd %d: "
			  "%s", l->wake_fd, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < srv->n_listeners; i++)
		if (arm(l, srv->listeners[i].fd, true, POLLER_READ) < 0) {
			log_error("leader-followers: cannot start: watch %s "
				  "listener fd %d: %s",
				  srv->listeners[i].service->name,
				  srv->listeners[i].fd, strerror(errno));
			return -1;
		}
	return 0;
}

/* After the threads: what the grace period left open is cut. */
static void lf_free(struct lf *l)
{
	struct buffer_pool pool = { .cache = { 0 } };	/* the main thread's */

	for (int fd = 0; l->conns && fd < l->max_fds; fd++) {
		struct lf_conn *c = atomic_load(&l->conns[fd]);

		if (c) {
			net_reset_if_stuck(fd);
			conn_close(l, &pool, c, sig_stop_reason());
		}
	}
	buffer_pool_free(&pool);
	net_close_listeners(l->srv->listeners, l->srv->n_listeners);
	if (l->ep)
		poller_epoll_destroy(l->ep);
	group_free(&l->group);
	for (unsigned i = 0; l->pools && i < l->srv->threads; i++)
		buffer_pool_free(&l->pools[i]);
	free(l->pools);
	free(l->conns);
	free(l->paused);
	timers_free(&l->timers);
	pthread_mutex_destroy(&l->timer_lock);
	pthread_mutex_destroy(&l->table_lock);
	pthread_mutex_destroy(&l->leader_lock);
	pthread_mutex_destroy(&l->pause_lock);
	for (int i = 0; i < HANDOVER_STRIPES; i++)
		pthread_mutex_destroy(&l->handover[i]);
}

static int leader_followers_run(const struct engine *self,
				const struct server *srv)
{
	struct lf l;
	int status = 1;

	(void)self;
	if (lf_init(&l, srv) == 0 && group_start(&l.group, follow, &l) == 0) {
		server_ready(srv);
		group_release(&l.group);
		status = group_join(&l.group);
	}
	lf_free(&l);
	return status;
}

const struct engine engine_leader_followers = {
	.name = "leader-followers",
	.summary = "threads share one epoll set armed EPOLLONESHOT; one waits "
		   "as leader, the others serve (POSA2)",
	.features = ENGINE_THREADS | ENGINE_READINESS | ENGINE_O1_WAIT,
	.takes_threads = true,
	.run = leader_followers_run,
};
