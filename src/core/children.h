/* children.h -- child processes of the process engines: reaping, and
 * ending them all at shutdown. */
#ifndef MUXD_CHILDREN_H
#define MUXD_CHILDREN_H

#include <sys/types.h>

#include "base/intset.h"

/* Called for each child reaped, with its wait status. */
typedef void child_ended_fn(pid_t pid, int status, void *ctx);

/* Reap every child that has ended (never blocks), dropping it from kids. */
void children_reap(struct intset *kids, child_ended_fn *ended, void *ctx);

/* After a stop: send `sig` (0: none) to every child, wait for them until
 * the grace period is over (SIGCHLD and a second stop signal wake the
 * wait), SIGKILL those left and reap them all. */
void children_finish(struct intset *kids, int sig, child_ended_fn *ended,
		     void *ctx);

#endif
