/* signals.h -- SIGINT/SIGTERM stop the server, SIGCHLD and SIGUSR2 wake
 * it, SIGUSR1 asks for the --stats line, SIGPIPE is ignored.
 *
 * Handlers only record and write one byte to a self-pipe, so every engine
 * can wait for "a signal came" together with its sockets, in poll, select
 * or epoll alike.
 */
#ifndef MUXD_SIGNALS_H
#define MUXD_SIGNALS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Install the handlers; grace is --grace in seconds. Returns 0 or -1. */
int sig_init(unsigned grace_seconds);

/* Readable when a signal has arrived since the last sig_drain(). */
int sig_wakeup_fd(void);
/* Empty the pipe; print the --stats line if SIGUSR1 asked for it. */
void sig_drain(void);

/* Make sig_wakeup_fd() readable, from any thread: a serving thread that
 * has ended tells the main thread so. */
void sig_notify(void);

bool sig_stop_requested(void);

/* From any thread: a stop as SIGTERM would ask for it (the grace period
 * starts now), unless one was asked for already. A thread of the server
 * that cannot go on stops the whole server so; raise(3) would not do, as
 * it signals the calling thread, where the stop signals are blocked. */
void sig_request_stop(void);

/* Milliseconds left of the grace period after a stop (0 once over; a
 * second SIGINT/SIGTERM ends it at once); -1 while no stop is requested. */
int64_t sig_grace_left_ms(void);

/* Why a connection that the engine cuts as it stops is closed, for its
 * log line: "grace period over", or "server stopped" when the engine
 * stops before that (it failed). */
const char *sig_stop_reason(void);

/* Block the handled signals in the calling thread (and in threads it then
 * creates), so that they reach the main thread only. */
void sig_block(sigset_t *saved);
void sig_restore(const sigset_t *saved);

/* In a pool worker just forked with the signals blocked (sig_block): a
 * pipe of its own, no stop seen yet, then the signals unblocked; a stop
 * sent before this point is delivered now. SIGUSR2 wakes it up. A second
 * stop signal does not end its grace period: the parent's does that. */
int sig_worker_init(sigset_t *saved);

/* In a forked child that serves one connection: the parent decides when it
 * ends, so terminal and group signals are ignored, and the pipe closed. */
void sig_child_reset(void);

#endif
