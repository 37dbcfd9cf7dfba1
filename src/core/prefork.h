/* prefork.h -- the process pool behind prefork and prefork-dynamic.
 *
 * The mechanics, as in UNP ch. 30 and Apache's prefork MPM, are in three
 * files: prefork.c supervises (a scoreboard in shared memory, spawning,
 * reaping with back-off, retiring, shutdown), prefork_worker.c is a
 * worker serving one connection at a time and the five ways workers share
 * the listeners (--accept), prefork_handoff.c the parent's accepting for
 * --accept=handoff. An engine is a policy: which slots to fill
 * at start and what to do at each maintenance step (about once a second,
 * and whenever a worker ends).
 */
#ifndef MUXD_PREFORK_H
#define MUXD_PREFORK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/intset.h"
#include "core/server.h"

enum worker_state { WORKER_EMPTY, WORKER_IDLE, WORKER_BUSY };

/* One worker's row, written by the worker and read by the parent. */
struct worker_slot {
	_Atomic int pid;			/* 0 while empty */
	_Atomic int state;			/* enum worker_state */
	_Atomic bool retire;			/* parent's order: finish, then exit */
	_Atomic unsigned long served;		/* connections served */
	_Atomic unsigned long empty_wakeups;	/* woken, but another worker took it */
};

struct scoreboard {
	_Atomic unsigned active;		/* connections served by the whole pool */
	_Atomic unsigned wake_below;		/* a worker going busy wakes the parent
						 * when fewer are left idle */
	pthread_mutex_t accept_mutex;		/* --accept=mutex */
	struct worker_slot slot[];
};

struct prefork {
	const struct server *srv;
	struct scoreboard *board;		/* shared with the workers */
	unsigned n_slots;			/* --workers */
	struct listener *listeners;		/* what workers wait on: srv's, or */
	size_t n_listeners;			/* with reuseport, one set per worker */
	struct intset pids;			/* live workers */
	int64_t *started_at;			/* per slot, for the back-off */
	struct prefork_handoff *handoff;		/* --accept=handoff: the parent's side */
	int lock_fd;				/* --accept=flock */
	unsigned fast_deaths;			/* workers in a row that died young */
	bool spawn_failing;			/* fork or socketpair failing: said once */
	bool starting;				/* in the policy's start() */
	bool start_failed;			/* a worker of start() could not be made */
	int64_t next_spawn_at;
	unsigned spawn_rate, retire_rate;	/* the policy's, per step */
};

struct prefork_policy {
	/* The workers to make before serving: each must start, or muxd
	 * fails to start. */
	void (*start)(struct prefork *p);
	void (*maintain)(struct prefork *p);	/* about once a second */
	/* After every wakeup: a worker ended, or went busy with fewer than
	 * wake_below left idle. Optional. */
	void (*react)(struct prefork *p);
};

/* Every --accept strategy but exclusive (an epoll flag) works for the
 * process pools. */
#define PREFORK_STRATEGIES (1u << ACCEPT_PLAIN | 1u << ACCEPT_FLOCK | \
			    1u << ACCEPT_MUTEX | 1u << ACCEPT_HANDOFF | \
			    1u << ACCEPT_REUSEPORT)
#define PREFORK_DEFAULT_ACCEPT ACCEPT_HANDOFF	/* fastest here: muxd.1, prefork */

/* The run function of a process-pool engine. */
int prefork_run(const struct server *srv, const struct prefork_policy *policy);

/* Start a worker in an empty slot. Returns 0, or -1 when the back-off says
 * not yet or fork failed. */
int prefork_spawn(struct prefork *p, unsigned slot);

/* Ask an idle worker to finish and exit (it is never cut off
 * mid-connection). Returns false, asking nothing, when a connection may be
 * on its way to it. */
bool prefork_retire(struct prefork *p, unsigned slot);

static inline int prefork_state(const struct prefork *p, unsigned slot)
{
	return atomic_load(&p->board->slot[slot].state);
}

/* Workers in `state`, leaving out those told to retire. */
unsigned prefork_count(const struct prefork *p, enum worker_state state);

#endif
