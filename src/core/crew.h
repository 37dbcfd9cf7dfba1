/* crew.h -- the serving threads of a multi-threaded engine, and the main
 * thread that passes the signals on to them.
 *
 * Signals reach the main thread only (thread_start blocks them in the
 * others). Each member has an eventfd of its own, which the main thread
 * makes readable after every signal (a stop, the second stop that ends
 * the grace period); a member woken reads sig_stop_requested() and
 * sig_grace_left_ms(), which any thread may. A member that returns wakes
 * the main thread through the signal pipe, so the main thread sleeps
 * until there is something to do.
 */
#ifndef MUXD_CREW_H
#define MUXD_CREW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct crew_member {
	struct crew *crew;
	unsigned index;
	int wake_fd;		/* eventfd */
	pthread_t tid;
	bool started;
};

struct crew {
	unsigned n;
	struct crew_member *members;
	void (*serve)(void *ctx, unsigned i);
	void *ctx;
	_Atomic unsigned running;
};

/* n members' eventfds, no thread yet. Returns 0, or -1 with errno. */
int crew_init(struct crew *c, unsigned n);

/* Member i's wake-up descriptor (readable when woken). */
int crew_wake_fd(const struct crew *c, unsigned i);
void crew_wake(struct crew *c, unsigned i);
/* In member i: empty its wake-up descriptor. */
void crew_drain(struct crew *c, unsigned i);

/* Start every member: member i runs serve(ctx, i), counting --stats in a
 * block of its own. Returns 0, or -1 with errno when one cannot start: the
 * members started are then asked to stop (as by SIGTERM) and crew_join()
 * waits for them. */
int crew_start(struct crew *c, void (*serve)(void *ctx, unsigned i), void *ctx);

/* In the main thread: until every member has returned, wait for signals
 * (printing --stats when asked) and wake every member after each; then
 * join them. */
void crew_join(struct crew *c);

/* In the main thread, after sig_drain(): pass a signal on. */
void crew_wake_all(struct crew *c);

void crew_free(struct crew *c);

#endif
