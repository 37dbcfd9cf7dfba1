/* prefork_worker.c -- the worker side of the process pool: how a worker
 * waits for a connection (--accept), and the loop it runs until it is
 * stopped, retired or has served --max-requests-per-worker.
 *
 * A worker is an iterative server in a child process. It owns nothing of
 * the parent's but the listeners (or, with --accept=handoff, its end of one
 * socketpair) and its row of the scoreboard, which is how the parent sees
 * it: idle or busy, told to retire, connections served. Everything here
 * runs after fork(), in the child; the parent's side is prefork.c, and
 * the parent's accepting in handoff mode is prefork_handoff.c.
 */
#include "core/admission.h"
#include "core/prefork_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"
#include "core/blocking.h"

/* A worker waiting for the mutex wakes this often to look at its orders
 * (retire) and at the signals: a timed lock is the only way to do both,
 * since a blocked pthread_mutex_lock is not interrupted by a signal. */
#define LOCK_SLICE_S 1

struct worker {
	struct prefork *p;
	struct worker_slot *row;
	struct server srv;		/* with the listeners it waits on */
	struct acceptor acceptor;
	/* Its own, from the parent: with --accept=handoff its end of the
	 * socketpair, with flock its open file description of the lock. */
	int own_fd;
	bool announced;			/* --accept=handoff: told the parent it is ready */
};

/* A lock or a wait ended without a connection: a signal came. Only a
 * stop ends the loop; anything else (SIGUSR2, a retirement order) sends
 * the worker back to worker_done() to look at its orders. */
static enum accept_result after_interrupt(void)
{
	return sig_stop_requested() ? ACCEPT_STOP : ACCEPT_WAKEUP;
}

/* UNP serv03: only the worker holding the lock waits for a connection. */
static enum accept_result accept_flock(struct worker *w, struct accepted *conn)
{
	int64_t begin = trace_begin();
	enum accept_result r;
	int rc;

	stat_add(STAT_SYS_LOCK, 2);	/* the lock and the unlock */
	/* flock(2) sleeps interruptibly: a signal (stop, retire) ends the
	 * wait with EINTR, which is why no time slice is needed here. */
	rc = flock(w->own_fd, LOCK_EX);
	trace_wait(TRACE_FLOCK, begin, -1, rc);
	if (rc < 0)
		return after_interrupt();
	r = acceptor_next(&w->acceptor, conn);
	flock(w->own_fd, LOCK_UN);
	return r;
}

/* UNP serv04: the same with a process-shared mutex. Robust: a worker
 * killed while holding it does not stop the pool. Timed, so that a waiting
 * worker still sees a stop or a retirement. */
static enum accept_result accept_mutex(struct worker *w, struct accepted *conn)
{
	pthread_mutex_t *m = &w->p->board->accept_mutex;
	struct timespec until;
	int64_t begin = trace_begin();
	enum accept_result r;
	int rc;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LOCK_SLICE_S;
	stat_add(STAT_SYS_LOCK, 1);
	rc = pthread_mutex_timedlock(m, &until);
	trace_span(TRACE_MUTEX, begin, -1, 0);
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(m);
	if (rc != 0)
		return after_interrupt();
	r = atomic_load(&w->row->retire) ? ACCEPT_WAKEUP
					  : acceptor_next(&w->acceptor, conn);
	pthread_mutex_unlock(m);
	return r;
}

/* UNP serv05: say "ready" to the parent, then wait for a socket. The
 * listener's index rides along as the message's data. */
static enum accept_result accept_passed(struct worker *w, struct accepted *conn)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	uint32_t index;
	struct iovec iov = { &index, sizeof index };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof ctl };
	struct pollfd fds[2] = { { w->own_fd, POLLIN, 0 },
				 { sig_wakeup_fd(), POLLIN, 0 } };
	struct cmsghdr *cmsg;
	socklen_t peer_len;
	int64_t begin = trace_begin();
	int ready;
	ssize_t n;

	/* A socket already passed goes first: it was accepted before any
	 * stop, so it is an open connection the grace period is for. */
	stat_add(STAT_SYS_WAIT, 1);
	ready = poll(fds, 2, -1);
	trace_wait(TRACE_POLL, begin, -1, ready);
	if (ready < 0 || !fds[0].revents) {
		sig_drain();
		return after_interrupt();
	}
	stat_add(STAT_SYS_READ, 1);
	begin = trace_begin();
	n = recvmsg(w->own_fd, &msg, MSG_CMSG_CLOEXEC);
	if (n == 0)
		return ACCEPT_STOP;	/* the parent is gone */
	cmsg = CMSG_FIRSTHDR(&msg);
	if (n < 0 || !cmsg || cmsg->cmsg_type != SCM_RIGHTS)
		return ACCEPT_WAKEUP;
	memcpy(&conn->fd, CMSG_DATA(cmsg), sizeof conn->fd);
	if ((size_t)n != sizeof index || index >= w->p->srv->n_listeners) {
		close(conn->fd);
		return ACCEPT_WAKEUP;
	}
	trace_take(begin, conn->fd);
	conn->listener = &w->p->srv->listeners[index];
	memset(&conn->peer, 0, sizeof conn->peer);
	peer_len = sizeof conn->peer;
	getpeername(conn->fd, (struct sockaddr *)&conn->peer, &peer_len);
	return ACCEPT_CONN;
}

static enum accept_result worker_accept(struct worker *w, struct accepted *conn)
{
	switch (w->p->srv->accept) {
	case ACCEPT_FLOCK: return accept_flock(w, conn);
	case ACCEPT_MUTEX: return accept_mutex(w, conn);
	case ACCEPT_HANDOFF: return accept_passed(w, conn);
	default: return acceptor_next(&w->acceptor, conn);
	}
}

/* What a worker has of the parent's: its listeners as --accept says, its
 * own lock description or handoff socket, nothing of the other slots (the
 * parent's lock description included). */
static int worker_setup(struct worker *w)
{
	for (unsigned i = 0; w->p->handoff && i < w->p->n_slots; i++)
		if (w->p->handoff->fd[i] >= 0)
			close(w->p->handoff->fd[i]);
	if (w->srv.accept == ACCEPT_HANDOFF) {
		for (size_t i = 0; i < w->srv.n_listeners; i++)
			close(w->srv.listeners[i].fd);
		w->srv.n_listeners = 0;
	}
	if (w->p->lock_fd >= 0)
		close(w->p->lock_fd);
	return acceptor_init(&w->acceptor, &w->srv, sig_wakeup_fd());
}

static bool worker_done(const struct worker *w)
{
	unsigned max = w->srv.max_requests;

	/* A stop may already have been seen (and its wakeup drained) while
	 * the last connection was served. */
	return sig_stop_requested() || atomic_load(&w->row->retire) ||
	       (max && atomic_load(&w->row->served) >= max);
}

/* `active` counts the whole pool's connections for --max-conns; the
 * slot's state is what the parent's policy counts. Busy is set before
 * the spares are counted, so this worker is already not one of them. */
static void worker_serve(struct worker *w, struct accepted *conn)
{
	unsigned prev = atomic_fetch_add(&w->p->board->active, 1);

	atomic_store(&w->row->state, WORKER_BUSY);
	if (prefork_count(w->p, WORKER_IDLE) < atomic_load(&w->p->board->wake_below))
		kill(getppid(), SIGUSR2);	/* the spares ran out: top up now */
	if (admission_check(&w->srv, prev, conn->fd, conn->listener)) {
		blocking_serve(&w->srv, conn, &w->acceptor);
		close(conn->fd);
		atomic_fetch_add(&w->row->served, 1);
	}
	atomic_fetch_sub(&w->p->board->active, 1);
	atomic_store(&w->row->state, WORKER_IDLE);
}

static void worker_loop(struct worker *w)
{
	struct accepted conn = { .fd = -1 };

	while (!worker_done(w)) {
		enum accept_result r;

		/* One "ready" per connection: a stale one would make the
		 * parent handoff a socket to a busy worker. */
		if (w->srv.accept == ACCEPT_HANDOFF && !w->announced) {
			stat_add(STAT_SYS_WRITE, 1);
			if (write(w->own_fd, "", 1) != 1)
				return;
			w->announced = true;
		}
		r = worker_accept(w, &conn);
		if (r == ACCEPT_CONN)
			w->announced = false;
		if (r == ACCEPT_STOP)
			return;
		if (r == ACCEPT_CONN)
			worker_serve(w, &conn);
		else
			atomic_fetch_add(&w->row->empty_wakeups, 1);
	}
}

_Noreturn void prefork_worker_main(struct prefork *p, unsigned slot,
				   int own_fd, pid_t parent, sigset_t *saved)
{
	struct worker w = { .p = p, .row = &p->board->slot[slot],
			    .srv = *p->srv, .own_fd = own_fd };

	w.srv.listeners = p->listeners;
	w.srv.n_listeners = p->n_listeners;
	trace_forked("worker %u", slot + 1);

	/* PDEATHSIG, then getppid(): a parent that died before the prctl
	 * would never send the signal, and the worker is re-parented. */
	if (sig_worker_init(saved) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent ||
	    worker_setup(&w) < 0)
		_exit(1);
	worker_loop(&w);
	trace_child_exit();
	_exit(0);
}
