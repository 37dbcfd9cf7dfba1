/* prefork.c -- a pool of worker processes, each serving one connection
 * at a time, supervised by the parent.
 *
 * A worker is an iterative server in a child process: it waits for a
 * connection in the way --accept says, serves it with blocking_serve()
 * (which also watches its own signal pipe, so a stop is never missed) and
 * goes back to waiting. The parent only supervises: it restarts workers
 * that die, backing off when they die young, runs the policy about once a
 * second, and in --accept=pass mode accepts and hands the sockets over.
 */
#include "core/prefork.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "core/blocking.h"
#include "core/children.h"
#include "services/service.h"

#define MAINTENANCE_MS 1000	/* the policy's step, as Apache's */
#define YOUNG_MS 1000		/* a worker dying younger died at start-up */
#define BACKOFF_MAX_MS 10000
#define SPAWN_RETRY_MS 1000	/* after fork or socketpair failed */
#define LOCK_SLICE_S 1		/* a worker waiting for the mutex checks its orders */

/* ---- the worker side ---- */

struct worker {
	struct prefork *p;
	struct worker_slot *row;
	struct server srv;		/* with the listeners it waits on */
	struct acceptor acceptor;
	int lock_fd;			/* --accept=flock: this worker's own open file */
	int pass_fd;			/* --accept=pass: this worker's end */
	bool announced;			/* --accept=pass: told the parent it is ready */
};

static enum accept_result after_interrupt(void)
{
	return sig_stop_requested() ? ACCEPT_STOP : ACCEPT_WAKEUP;
}

/* UNP serv03: only the worker holding the lock waits for a connection. */
static enum accept_result accept_flock(struct worker *w, struct accepted *conn)
{
	enum accept_result r;

	stat_add(STAT_SYS_LOCK, 2);	/* the lock and the unlock */
	if (flock(w->lock_fd, LOCK_EX) < 0)
		return after_interrupt();
	r = acceptor_next(&w->acceptor, conn);
	flock(w->lock_fd, LOCK_UN);
	return r;
}

/* UNP serv04: the same with a process-shared mutex. Robust: a worker
 * killed while holding it does not stop the pool. Timed, so that a waiting
 * worker still sees a stop or a retirement. */
static enum accept_result accept_mutex(struct worker *w, struct accepted *conn)
{
	pthread_mutex_t *m = &w->p->board->accept_mutex;
	struct timespec until;
	enum accept_result r;
	int rc;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LOCK_SLICE_S;
	stat_add(STAT_SYS_LOCK, 1);
	rc = pthread_mutex_timedlock(m, &until);
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
	struct pollfd fds[2] = { { w->pass_fd, POLLIN, 0 },
				 { sig_wakeup_fd(), POLLIN, 0 } };
	struct cmsghdr *cmsg;
	socklen_t peer_len;
	ssize_t n;

	/* A socket already passed goes first: it was accepted before any
	 * stop, so it is an open connection the grace period is for. */
	stat_add(STAT_SYS_WAIT, 1);
	if (poll(fds, 2, -1) < 0 || !fds[0].revents) {
		sig_drain();
		return after_interrupt();
	}
	stat_add(STAT_SYS_READ, 1);
	n = recvmsg(w->pass_fd, &msg, MSG_CMSG_CLOEXEC);
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
	case ACCEPT_PASS: return accept_passed(w, conn);
	default: return acceptor_next(&w->acceptor, conn);
	}
}

/* What a worker has of the parent's: its listeners as --accept says, its
 * own lock description and pass socket, nothing of the other slots. */
static int worker_setup(struct worker *w)
{
	for (unsigned i = 0; w->p->pass_fd && i < w->p->n_slots; i++)
		if (w->p->pass_fd[i] >= 0)
			close(w->p->pass_fd[i]);
	if (w->srv.accept == ACCEPT_PASS) {
		for (size_t i = 0; i < w->srv.n_listeners; i++)
			close(w->srv.listeners[i].fd);
		w->srv.n_listeners = 0;
	}
	if (w->srv.accept == ACCEPT_FLOCK) {
		/* flock belongs to the open file description: each worker
		 * needs its own, not the one inherited from the parent. */
		char path[64];

		snprintf(path, sizeof path, "/proc/self/fd/%d", w->p->lock_fd);
		w->lock_fd = open(path, O_RDWR | O_CLOEXEC);
		close(w->p->lock_fd);
		if (w->lock_fd < 0)
			return -1;
	}
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

static void worker_serve(struct worker *w, struct accepted *conn)
{
	unsigned prev = atomic_fetch_add(&w->p->board->active, 1);

	atomic_store(&w->row->state, WORKER_BUSY);
	if (prefork_count(w->p, WORKER_IDLE) < atomic_load(&w->p->board->wake_below))
		kill(getppid(), SIGUSR2);	/* the spares ran out: top up now */
	if (blocking_admit(&w->srv, prev, conn)) {
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
		 * parent pass a socket to a busy worker. */
		if (w->srv.accept == ACCEPT_PASS && !w->announced) {
			stat_add(STAT_SYS_WRITE, 1);
			if (write(w->pass_fd, "", 1) != 1)
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

static _Noreturn void worker_main(struct prefork *p, unsigned slot,
				  int pass_fd, pid_t parent, sigset_t *saved)
{
	struct worker w = { .p = p, .row = &p->board->slot[slot],
			    .srv = *p->srv, .lock_fd = -1, .pass_fd = pass_fd };

	w.srv.listeners = p->listeners;
	w.srv.n_listeners = p->n_listeners;

	if (sig_worker_init(saved) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent ||
	    worker_setup(&w) < 0)
		_exit(1);
	worker_loop(&w);
	_exit(0);
}

/* ---- the parent side ---- */

static bool backing_off(struct prefork *p)
{
	return clock_ms() < p->next_spawn_at;
}

/* Out of processes or descriptors: try again in a second, not in a loop;
 * said once per shortage. The pool serves on with the workers it has. */
static int spawn_failed(struct prefork *p, const char *call)
{
	if (!p->spawn_failing)
		log_error("%s: %s; the pool cannot grow for now, retrying "
			  "every second", call, strerror(errno));
	p->spawn_failing = true;
	p->next_spawn_at = clock_ms() + SPAWN_RETRY_MS;
	return -1;
}

int prefork_spawn(struct prefork *p, unsigned slot)
{
	struct worker_slot *row = &p->board->slot[slot];
	int pair[2] = { -1, -1 };
	pid_t parent = getpid(), pid;
	sigset_t saved;

	if (backing_off(p))
		return -1;
	if (p->srv->accept == ACCEPT_PASS &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		return spawn_failed(p, "socketpair");
	*row = (struct worker_slot){ .state = WORKER_IDLE };
	/* Blocked until the worker has its own signal pipe: a stop sent
	 * meanwhile is delivered to it then, not lost. */
	sig_block(&saved);
	stat_add(STAT_SYS_FORK, 1);	/* before: the child would count it too */
	pid = fork();
	if (pid == 0)
		worker_main(p, slot, pair[1], parent, &saved);
	sig_restore(&saved);
	if (pair[1] >= 0)
		close(pair[1]);
	if (pid < 0) {
		if (pair[0] >= 0)
			close(pair[0]);
		atomic_store(&row->state, WORKER_EMPTY);
		return spawn_failed(p, "fork");
	}
	p->spawn_failing = false;
	atomic_store(&row->pid, pid);
	intset_add(&p->pids, pid);
	p->started_at[slot] = clock_ms();
	if (p->pass_fd) {
		p->pass_fd[slot] = pair[0];
		p->ready[slot] = false;
	}
	log_conn("worker %u started, pid %d", slot, (int)pid);
	return 0;
}

bool prefork_retire(struct prefork *p, unsigned slot)
{
	struct worker_slot *row = &p->board->slot[slot];

	/* --accept=pass: a worker still marked idle may have a socket on its
	 * way to it (passed, not yet received); retired now, it would exit
	 * and drop that client. Only one that has said "ready" since its last
	 * socket is truly empty-handed, and it is sent nothing more. */
	if (p->pass_fd) {
		if (!p->ready[slot])
			return false;
		p->ready[slot] = false;
	}
	atomic_store(&row->retire, true);
	kill(atomic_load(&row->pid), SIGUSR2);	/* wake it to read the order */
	return true;
}

unsigned prefork_count(const struct prefork *p, enum worker_state state)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->n_slots; i++)
		n += prefork_state(p, i) == (int)state &&
		     !atomic_load(&p->board->slot[i].retire);
	return n;
}

static int slot_of(const struct prefork *p, pid_t pid)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		if (atomic_load(&p->board->slot[i].pid) == pid)
			return (int)i;
	return -1;
}

/* Workers that die young, one after another, are starting in a loop:
 * wait 100 ms, 200 ms, ... up to 10 s before the next start. */
static void note_death(struct prefork *p, unsigned slot, int status)
{
	bool young = clock_ms() - p->started_at[slot] < YOUNG_MS;
	int64_t wait;

	if (sig_stop_requested())
		return;		/* ended by the shutdown */
	if (WIFSIGNALED(status))
		log_error("worker %u (pid %d) killed by signal %d",
			  slot, atomic_load(&p->board->slot[slot].pid),
			  WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		log_error("worker %u (pid %d) exited with status %d",
			  slot, atomic_load(&p->board->slot[slot].pid),
			  WEXITSTATUS(status));
	if (!young || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		p->fast_deaths = 0;
		return;
	}
	wait = 100LL << (p->fast_deaths < 7 ? p->fast_deaths : 7);
	if (wait > BACKOFF_MAX_MS)
		wait = BACKOFF_MAX_MS;
	if (p->fast_deaths++ > 0)
		log_error("workers keep dying at start-up; next start in %lld ms",
			  (long long)wait);
	p->next_spawn_at = clock_ms() + wait;
}

static void worker_ended(pid_t pid, int status, void *ctx)
{
	struct prefork *p = ctx;
	int slot = slot_of(p, pid);
	struct worker_slot *row;

	if (slot < 0)
		return;
	row = &p->board->slot[slot];
	log_conn("worker %d (pid %d) ended: served %lu, woken for nothing %lu",
		 slot, (int)pid, atomic_load(&row->served),
		 atomic_load(&row->empty_wakeups));
	if (!atomic_load(&row->retire))
		note_death(p, (unsigned)slot, status);
	atomic_store(&row->pid, 0);
	atomic_store(&row->state, WORKER_EMPTY);
	if (p->pass_fd && p->pass_fd[slot] >= 0) {
		close(p->pass_fd[slot]);
		p->pass_fd[slot] = -1;
	}
}

static void reap_workers(struct prefork *p)
{
	children_reap(&p->pids, worker_ended, p);
}

/* --accept=pass: hand a connection to a ready worker. */
static void pass_to_worker(struct prefork *p, int fd, size_t listener)
{
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	uint32_t index = (uint32_t)listener;
	struct iovec iov = { &index, sizeof index };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof ctl };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof fd);
	memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
	for (unsigned i = 0; i < p->n_slots; i++) {
		if (!p->ready[i])
			continue;
		p->ready[i] = false;
		stat_add(STAT_SYS_WRITE, 1);
		if (sendmsg(p->pass_fd[i], &msg, MSG_NOSIGNAL) == sizeof index)
			break;
	}
	close(fd);	/* the worker has its own copy now, or nobody took it */
}

static bool any_ready(const struct prefork *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		if (p->ready[i])
			return true;
	return false;
}

/* One round of the parent's poll in pass mode: listeners while a worker is
 * ready, every worker's "ready" byte, and the signal pipe (last). */
/* fds[k] is the pass socket of slot p->polled[k]. */
static void read_ready_notices(struct prefork *p, const struct pollfd *fds,
			       size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char byte;

		if (!(fds[k].revents & POLLIN))
			continue;
		stat_add(STAT_SYS_READ, 1);
		if (read(fds[k].fd, &byte, 1) == 1)
			p->ready[p->polled[k]] = true;
	}
}

static void accept_and_pass(struct prefork *p, const struct pollfd *fds,
			    size_t nl)
{
	for (size_t i = 0; i < nl && any_ready(p); i++) {
		struct sockaddr_storage peer;
		int fd;

		if (!(fds[i].revents & POLLIN))
			continue;
		fd = net_accept(fds[i].fd, false, &peer);
		if (fd >= 0) {
			accept_pause_end(&p->pause);
			pass_to_worker(p, fd, i);
		} else if (net_out_of_resources(errno)) {
			accept_pause_start(&p->pause, errno, clock_ms());
			return;
		}
	}
}

/* One round of the parent's poll in pass mode: the listeners while a
 * worker is ready, the live workers' "ready" notices, the signal pipe. */
static void pass_round(struct prefork *p, struct pollfd *fds, int timeout)
{
	size_t nl = p->srv->n_listeners, n = 0, notices;
	bool accepting = any_ready(p) && clock_ms() >= p->pause.until;

	for (size_t i = 0; accepting && i < nl; i++)
		fds[n++] = (struct pollfd){ p->srv->listeners[i].fd, POLLIN, 0 };
	notices = n;
	for (unsigned i = 0; i < p->n_slots; i++)
		if (p->pass_fd[i] >= 0) {	/* live workers only */
			p->polled[n - notices] = i;
			fds[n++] = (struct pollfd){ p->pass_fd[i], POLLIN, 0 };
		}
	fds[n++] = (struct pollfd){ sig_wakeup_fd(), POLLIN, 0 };
	stat_add(STAT_SYS_WAIT, 1);
	if (poll(fds, n, timeout) < 0) {
		if (errno != EINTR)
			log_error("poll: %s", strerror(errno));
		return;
	}
	read_ready_notices(p, fds + notices, n - 1 - notices);
	if (accepting)
		accept_and_pass(p, fds, nl);
}

/* Sleep until a signal or `timeout`, or in pass mode do the accepting. */
static void parent_wait(struct prefork *p, struct pollfd *fds, int timeout)
{
	struct pollfd wake = { sig_wakeup_fd(), POLLIN, 0 };
	int64_t rest = p->pause.until - clock_ms();

	if (rest > 0 && rest < timeout)
		timeout = (int)rest;	/* accept again when an EMFILE rest ends */
	if (p->pass_fd)
		pass_round(p, fds, timeout);
	else
		poll(&wake, 1, timeout);
	sig_drain();
}

/* --accept=reuseport: one SO_REUSEPORT listener per worker and address
 * (the parent's own first), the kernel spreading new connections over
 * them. A worker serves one client at a time, so every idle worker waits
 * on all of them: the share of a busy worker is not left waiting. */
static int open_reuseport_listeners(struct prefork *p)
{
	size_t n = p->srv->n_listeners, total = n * p->n_slots;
	char err[NET_ERR_LEN];

	p->listeners = malloc(total * sizeof *p->listeners);
	if (!p->listeners)
		return -1;
	for (p->n_listeners = 0; p->n_listeners < total; p->n_listeners++) {
		struct listener *l = &p->listeners[p->n_listeners];

		*l = p->srv->listeners[p->n_listeners % n];
		if (p->n_listeners >= n &&
		    net_listen(l, p->srv->backlog, true, err) < 0) {
			log_error("%s", err);
			return -1;
		}
	}
	return 0;
}

static int prefork_init(struct prefork *p, const struct server *srv)
{
	size_t size = sizeof *p->board + srv->workers * sizeof p->board->slot[0];
	pthread_mutexattr_t attr;

	*p = (struct prefork){ .srv = srv, .n_slots = srv->workers, .lock_fd = -1,
			       .listeners = srv->listeners,
			       .n_listeners = srv->n_listeners };
	p->board = mmap(NULL, size, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	p->started_at = calloc(srv->workers, sizeof *p->started_at);
	if (p->board == MAP_FAILED || !p->started_at)
		return -1;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&p->board->accept_mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	if (srv->accept == ACCEPT_REUSEPORT && open_reuseport_listeners(p) < 0)
		return -1;
	if (srv->accept == ACCEPT_FLOCK) {
		p->lock_fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (p->lock_fd < 0)
			return -1;
	}
	if (srv->accept == ACCEPT_PASS) {
		p->pass_fd = malloc(srv->workers * sizeof *p->pass_fd);
		if (!p->pass_fd)
			return -1;
		for (unsigned i = 0; i < srv->workers; i++)
			p->pass_fd[i] = -1;
		p->ready = calloc(srv->workers, sizeof *p->ready);
		p->polled = calloc(srv->workers, sizeof *p->polled);
		if (!p->ready || !p->polled)
			return -1;
	}
	return 0;
}

static void prefork_free(struct prefork *p)
{
	size_t size = sizeof *p->board + p->n_slots * sizeof p->board->slot[0];

	for (unsigned i = 0; p->pass_fd && i < p->n_slots; i++)
		if (p->pass_fd[i] >= 0)
			close(p->pass_fd[i]);
	if (p->listeners != p->srv->listeners)
		free(p->listeners);
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	if (p->board != MAP_FAILED && p->board)
		munmap(p->board, size);
	free(p->started_at);
	free(p->pass_fd);
	free(p->ready);
	free(p->polled);
	intset_free(&p->pids);
}

int prefork_run(const struct server *srv, const struct prefork_policy *policy)
{
	struct prefork p;
	struct pollfd *fds = calloc(srv->n_listeners + srv->workers + 1, sizeof *fds);
	int64_t next_step = clock_ms();

	if (!fds || prefork_init(&p, srv) < 0) {
		log_error("cannot set up the worker pool: %s", strerror(errno));
		if (fds)
			prefork_free(&p);
		free(fds);
		return 1;
	}
	policy->start(&p);
	while (!sig_stop_requested()) {
		int64_t now = clock_ms();

		if (now >= next_step) {
			policy->maintain(&p);
			next_step = now + MAINTENANCE_MS;
		}
		/* A start held back by the back-off is retried when it ends. */
		if (p.next_spawn_at > now && p.next_spawn_at < next_step)
			next_step = p.next_spawn_at;
		parent_wait(&p, fds, (int)(next_step - now));
		reap_workers(&p);
		if (policy->react && !sig_stop_requested())
			policy->react(&p);
	}
	for (size_t i = 0; i < p.n_listeners; i++)
		close(p.listeners[i].fd);
	log_stopping(atomic_load(&p.board->active), srv->grace);
	children_finish(&p.pids, SIGTERM, worker_ended, &p);
	prefork_free(&p);
	free(fds);
	return 0;
}
