/* prefork.c -- the supervisor of the process pool: the parent's side.
 *
 * The parent serves nobody. It fills the scoreboard's slots with workers
 * (prefork_worker.c) as the engine's policy asks, reaps them, and restarts
 * those that die, backing off when they die young, so that a worker that
 * cannot start does not become a fork loop. It runs the policy about once
 * a second and whenever a worker ends or the spares run out, and in
 * --accept=handoff mode it also accepts and hands the sockets over
 * (prefork_handoff.c). At a stop it closes the listeners and lets the
 * workers finish within the grace period.
 *
 * The scoreboard is shared memory, written by the workers without locks:
 * each field is one atomic, and the parent only ever needs a recent view
 * (a count one step stale costs one worker too many or too few for a
 * second, never a lost connection).
 */
#include "core/prefork_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"
#include "core/children.h"

#define MAINTENANCE_MS 1000	/* the policy's step, as Apache's */
#define YOUNG_MS 1000		/* a worker dying younger died at start-up */
#define BACKOFF_MAX_MS 10000
#define SPAWN_RETRY_MS 1000	/* after fork or socketpair failed */

static bool backing_off(struct prefork *p)
{
	return clock_ms() < p->next_spawn_at;
}

/* Out of processes or descriptors: try again in a second, not in a loop;
 * said once per shortage. The pool serves on with the workers it has.
 * At start-up, the pool is not made at all: said once, and noted. */
static int spawn_failed(struct prefork *p, unsigned slot, const char *call)
{
	if (p->starting && !p->start_failed)
		log_error("cannot start worker %u of %u: %s: %s", slot + 1,
			  p->n_slots, call, strerror(errno));
	else if (!p->starting && !p->spawn_failing)
		log_error("%s: %s; the pool cannot grow for now, retrying "
			  "every second", call, strerror(errno));
	p->start_failed |= p->starting;
	p->spawn_failing = true;
	p->next_spawn_at = clock_ms() + SPAWN_RETRY_MS;
	return -1;
}

/* The descriptor the worker gets of its own, made here in the parent,
 * so that a shortage is the parent's to see: with --accept=handoff its end
 * of a new socketpair (the parent's end goes in the table before the
 * fork, so that the worker closes it with the others': kept, it would
 * hide the parent's death from the worker's recvmsg; a slot refilled
 * before its last worker's end was forgotten closes that end first);
 * with flock an open file description of the lock of its own, as flock
 * belongs to the description. Sets *theirs (-1: none); 0, or -1 with
 * errno and the refused call. */
static int worker_descriptor(struct prefork *p, unsigned slot, int *theirs,
			     const char **call)
{
	char path[64];
	int pair[2];

	*theirs = -1;
	if (p->handoff) {
		*call = "socketpair";
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
			return -1;
		prefork_handoff_forget(p, slot);
		p->handoff->fd[slot] = pair[0];
		p->handoff->ready[slot] = false;
		*theirs = pair[1];
	} else if (p->lock_fd >= 0) {
		*call = "open lock";
		snprintf(path, sizeof path, "/proc/self/fd/%d", p->lock_fd);
		if ((*theirs = open(path, O_RDWR | O_CLOEXEC)) < 0)
			return -1;
	}
	return 0;
}

int prefork_spawn(struct prefork *p, unsigned slot)
{
	struct worker_slot *row = &p->board->slot[slot];
	pid_t parent = getpid(), pid;
	const char *call;
	sigset_t saved;
	int64_t begin;
	int theirs;

	if (backing_off(p))
		return -1;
	if (worker_descriptor(p, slot, &theirs, &call) < 0)
		return spawn_failed(p, slot, call);
	/* Idle before the fork, not when the worker gets going: the policy
	 * counts a worker being started as a spare, or it would start
	 * another one for the same shortage at the next wakeup. */
	*row = (struct worker_slot){ .state = WORKER_IDLE };
	/* Blocked until the worker has its own signal pipe: a stop sent
	 * meanwhile is delivered to it then, not lost. */
	sig_block(&saved);
	begin = trace_begin();
	stat_add(STAT_SYS_FORK, 1);	/* before: the child would count it too */
	pid = fork();
	if (pid == 0)
		prefork_worker_main(p, slot, theirs, parent, &saved);
	trace_span(TRACE_FORK, begin, -1, pid > 0 ? (uint64_t)pid : 0);
	sig_restore(&saved);
	if (theirs >= 0)
		close(theirs);
	if (pid < 0) {
		if (p->handoff)
			prefork_handoff_forget(p, slot);
		atomic_store(&row->state, WORKER_EMPTY);
		return spawn_failed(p, slot, "fork");
	}
	p->spawn_failing = false;
	atomic_store(&row->pid, pid);
	intset_add(&p->pids, pid);
	p->started_at[slot] = clock_ms();
	log_conn("worker %u started, pid %d", slot, (int)pid);
	return 0;
}

bool prefork_retire(struct prefork *p, unsigned slot)
{
	struct worker_slot *row = &p->board->slot[slot];

	/* --accept=handoff: a worker still marked idle may have a socket on its
	 * way to it (passed, not yet received); retired now, it would exit
	 * and drop that client. Only one that has said "ready" since its last
	 * socket is truly empty-handed, and it is sent nothing more. */
	if (p->handoff) {
		if (!p->handoff->ready[slot])
			return false;
		p->handoff->ready[slot] = false;
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
	/* A retired worker was asked to go: its exit says nothing about
	 * whether workers can start, so it never feeds the back-off. */
	if (!atomic_load(&row->retire))
		note_death(p, (unsigned)slot, status);
	atomic_store(&row->pid, 0);
	atomic_store(&row->state, WORKER_EMPTY);
	if (p->handoff)
		prefork_handoff_forget(p, (unsigned)slot);
}

static void reap_workers(struct prefork *p)
{
	children_reap(&p->pids, worker_ended, p);
}

/* Sleep until a signal or `timeout`, or in handoff mode do the accepting. */
static void parent_wait(struct prefork *p, int timeout)
{
	struct pollfd wake = { sig_wakeup_fd(), POLLIN, 0 };
	int64_t begin = trace_begin();

	if (p->handoff)
		prefork_handoff_round(p, timeout);
	else
		trace_wait(TRACE_POLL, begin, -1, poll(&wake, 1, timeout));
	sig_drain();
}

/* --accept=reuseport: one SO_REUSEPORT listener per worker and address
 * (the parent's own first), the kernel spreading new connections over
 * them. A worker serves one client at a time, so every idle worker waits
 * on all of them: the share of a busy worker is not left waiting. */
static int open_reuseport_listeners(struct prefork *p)
{
	char err[NET_ERR_LEN];

	p->listeners = net_listen_copies(p->srv->listeners, p->srv->n_listeners,
					 p->n_slots, p->srv->backlog, err);
	if (!p->listeners) {
		p->listeners = p->srv->listeners;
		log_error("%s", err);
		return -1;
	}
	p->n_listeners = p->srv->n_listeners * p->n_slots;
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
	if (p->board == MAP_FAILED || !p->started_at) {
		log_error("cannot set up the worker pool: scoreboard: %s",
			  strerror(errno));
		return -1;
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&p->board->accept_mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	if (srv->accept == ACCEPT_REUSEPORT && open_reuseport_listeners(p) < 0)
		return -1;
	if (srv->accept == ACCEPT_FLOCK) {
		p->lock_fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (p->lock_fd < 0) {
			log_error("cannot set up the worker pool: lock file in "
				  "/tmp: %s", strerror(errno));
			return -1;
		}
	}
	if (srv->accept == ACCEPT_HANDOFF && prefork_handoff_init(p) < 0) {
		log_error("cannot set up the worker pool: %s", strerror(ENOMEM));
		return -1;
	}
	return 0;
}

/* The policy's first workers, every one of them, before any listening
 * line. Returns 0, or -1 once the reason is logged and the workers made
 * are gone: they have served nothing, and go unheard. */
static int start_pool(struct prefork *p, const struct prefork_policy *policy)
{
	p->starting = true;
	policy->start(p);
	p->starting = false;
	if (!p->start_failed)
		return 0;
	children_finish(&p->pids, SIGKILL, NULL, NULL);
	return -1;
}

static void prefork_free(struct prefork *p)
{
	size_t size = sizeof *p->board + p->n_slots * sizeof p->board->slot[0];

	prefork_handoff_free(p);
	if (p->listeners != p->srv->listeners)
		free(p->listeners);
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	if (p->board != MAP_FAILED && p->board)
		munmap(p->board, size);
	free(p->started_at);
	intset_free(&p->pids);
}

int prefork_run(const struct server *srv, const struct prefork_policy *policy)
{
	struct prefork p;
	int64_t next_step = clock_ms();

	if (prefork_init(&p, srv) < 0 || start_pool(&p, policy) < 0) {
		net_close_listeners(p.listeners, p.n_listeners);
		prefork_free(&p);
		return 1;
	}
	server_ready(srv);
	while (!sig_stop_requested()) {
		int64_t now = clock_ms();

		if (now >= next_step) {
			policy->maintain(&p);
			next_step = now + MAINTENANCE_MS;
		}
		/* A start held back by the back-off is retried when it ends. */
		if (p.next_spawn_at > now && p.next_spawn_at < next_step)
			next_step = p.next_spawn_at;
		parent_wait(&p, (int)(next_step - now));
		reap_workers(&p);
		if (policy->react && !sig_stop_requested())
			policy->react(&p);
	}
	net_close_listeners(p.listeners, p.n_listeners);
	log_stopping(atomic_load(&p.board->active), srv->grace);
	children_finish(&p.pids, SIGTERM, worker_ended, &p);
	prefork_free(&p);
	return 0;
}
