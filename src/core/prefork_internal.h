/* prefork_internal.h -- what the three parts of the process pool share,
 * and no engine needs: prefork.c (the supervisor), prefork_worker.c (a
 * worker, after fork) and prefork_handoff.c (the parent's accepting in
 * --accept=handoff mode). The engines' view is prefork.h.
 */
#ifndef MUXD_PREFORK_INTERNAL_H
#define MUXD_PREFORK_INTERNAL_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/net.h"
#include "core/accept_pause.h"
#include "core/prefork.h"

/* --accept=handoff: the parent's state. Per slot, indexed like the board. */
struct prefork_handoff {
	int *fd;			/* parent's end of the socketpair, or -1 */
	bool *ready;			/* the worker said "ready" and was sent
					 * nothing since: a socket may go to it */
	unsigned *polled;		/* slot of each notice polled, in order */
	struct pollfd *fds;		/* listeners, notices, signal pipe */
	struct accept_pause pause;	/* the parent's EMFILE rest */
	/* A connection accepted for a worker that turned out to be gone:
	 * kept for the next ready one, and no other accepted meanwhile. */
	int held_fd;			/* -1: none */
	size_t held_listener;
};

/* ---- prefork_worker.c ---- */

/* The child's side of prefork_spawn(): set the worker up (its signals,
 * death with the parent, only the descriptors it needs) and serve until
 * it is done. `own_fd` is the descriptor the parent made for it alone
 * (--accept=handoff: its end of the socketpair; flock: its lock
 * description), or -1; `saved` the signal mask the parent had before it
 * blocked the signals for fork(). */
_Noreturn void prefork_worker_main(struct prefork *p, unsigned slot,
				   int own_fd, pid_t parent,
				   sigset_t *saved);

/* ---- prefork_handoff.c ---- */

/* Allocate p->handoff for p->n_slots workers and p->srv's listeners.
 * Returns 0, or -1 (out of memory) leaving what it made for
 * prefork_handoff_free(). */
int prefork_handoff_init(struct prefork *p);
void prefork_handoff_free(struct prefork *p);

/* The worker in slot is gone (its end hung up, it was reaped, or fork
 * failed): close the parent's end; it is ready for nothing any more. */
void prefork_handoff_forget(struct prefork *p, unsigned slot);

/* One round of the parent's wait: read the workers' notices and, while
 * one is ready, accept and hand over; returns after `timeout` ms or on
 * any event, the signal pipe's included (the caller drains it). */
void prefork_handoff_round(struct prefork *p, int timeout);

#endif
