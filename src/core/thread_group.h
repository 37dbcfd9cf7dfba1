/* thread_group.h -- the serving threads of a multi-threaded engine, and the main
 * thread that passes the signals on to them.
 *
 * Signals reach the main thread only (thread_start blocks them in the
 * others). Each member has an eventfd of its own, which the main thread
 * makes readable after every signal (a stop, the second stop that ends
 * the grace period); a member woken reads sig_stop_requested() and
 * sig_grace_left_ms(), which any thread may. A member that returns wakes
 * the main thread through the signal pipe, so the main thread sleeps
 * until there is something to do.
 *
 * Start-up is all or nothing: the members start held at a gate, and are
 * let through to serve only once every one of them runs and the engine
 * has said it is ready (the listening lines are out); if one cannot
 * start, the others return without serving. A member whose serve()
 * fails later stops the whole server (sig_request_stop), and muxd then
 * exits 1.
 */
#ifndef MUXD_THREAD_GROUP_H
#define MUXD_THREAD_GROUP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct group_member {
	struct thread_group *group;
	unsigned index;
	int wake_fd;		/* eventfd */
	pthread_t tid;
	bool started;
};

enum group_gate { GATE_SHUT, GATE_OPEN, GATE_ABANDONED };

struct thread_group {
	const char *name;	/* the engine's, for messages */
	unsigned n;
	struct group_member *members;
	int (*serve)(void *ctx, unsigned i);
	void *ctx;
	_Atomic unsigned running;
	_Atomic bool failed;	/* a member's serve() returned non-zero */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_moved;
	enum group_gate gate;
};

/* n members' eventfds, no thread yet. Returns 0, or -1 once the reason
 * is logged (a group_free() is still due). */
int group_init(struct thread_group *c, unsigned n, const char *name);

/* Member i's wake-up descriptor (readable when woken). */
int group_wake_fd(const struct thread_group *c, unsigned i);
void group_wake(struct thread_group *c, unsigned i);
/* In member i: empty its wake-up descriptor. */
void group_drain(struct thread_group *c, unsigned i);

/* Start every member, each held before serve(ctx, i) until
 * group_release(); each counts --stats in a block of its own. Returns 0,
 * or -1 once the reason is logged: a member could not start, and those
 * that did have returned without serving and are joined. */
int group_start(struct thread_group *c, int (*serve)(void *ctx, unsigned i), void *ctx);

/* Let every member serve: after server_ready(). */
void group_release(struct thread_group *c);

/* In the main thread: until every member has returned, wait for signals
 * (printing --stats when asked) and wake every member after each; then
 * join them. Returns 1 if a member's serve() failed, else 0. */
int group_join(struct thread_group *c);

/* In the main thread, after sig_drain(): pass a signal on. */
void group_wake_all(struct thread_group *c);

void group_free(struct thread_group *c);

#endif
