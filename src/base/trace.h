/* trace.h -- --trace FILE: a timeline of what every thread and process
 * does, written as Chrome trace-event JSON (Perfetto, chrome://tracing).
 *
 * Each thread records into memory of its own: chunks that only it
 * appends to, published to readers by a release store of their count, so
 * recording takes no lock and no system call but the clock's (vDSO). A
 * thread records at most --trace-limit events; later ones are only
 * counted, and the count is written into the trace. A child process
 * (fork, prefork) starts with empty memory and writes its part when it
 * exits, appending whole lines to one unnamed file that every process
 * shares; the main process writes FILE when muxd stops (and, with
 * --stats, on SIGUSR1) from its own threads' memory and those parts.
 *
 * Without --trace every call below is one branch on trace_on, a global
 * set once before any thread or child starts, and never taken.
 */
#ifndef MUXD_TRACE_H
#define MUXD_TRACE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an event says. Spans have a start and an end; the others are
 * instants. Each kind's name and arguments are in trace_write.c. */
enum trace_kind {
	/* Waits: what the call returned (ready descriptors, events). */
	TRACE_EPOLL_WAIT,
	TRACE_POLL,
	TRACE_SELECT,
	TRACE_IO_GETEVENTS,
	TRACE_SIGTIMEDWAIT,
	TRACE_URING_ENTER,	/* submitted, and completions waiting after */
	TRACE_READ_WAIT,	/* a blocking read: fd, bytes */
	TRACE_FLOCK,		/* a pool worker waits for the accept lock */
	TRACE_MUTEX,
	TRACE_WAIT_WORK,	/* ... for a queued socket */
	TRACE_WAIT_ROOM,	/* an acceptor waits for room in the queue */
	TRACE_WAIT_LEAD,	/* a follower waits to lead */
	TRACE_SLEEP,		/* a pool worker sleeps until a line's time */
	TRACE_RUN,		/* a coroutine runs until it parks (not a wait) */
	TRACE_WORK,		/* a request's work computed (not a wait) */
	TRACE_FORK,		/* fork(2): fd it serves (-1: none), the child's pid */
	TRACE_THREAD,		/* pthread_create(3) */
	/* A connection goes from one thread or process to another: a span
	 * each side, joined by a flow arrow (the socket's inode). */
	TRACE_HAND_OVER,	/* fd, to: the receiving worker or thread,
				 * counted from 1 (0: whichever takes it) */
	TRACE_TAKE,		/* fd */
	/* Instants. */
	TRACE_ACCEPT,		/* fd, listener */
	TRACE_READ,		/* fd, bytes, errno when it failed */
	TRACE_WRITE,
	TRACE_CLOSE,		/* fd */
	TRACE_PROMOTE,		/* leadership passed on */
	TRACE_COUNTER,		/* a --stats counter's value (the sampler's) */
	TRACE_KINDS
};

/* --trace-limit's default and bounds: events per thread. */
#define TRACE_LIMIT_DEFAULT 1000000UL
#define TRACE_LIMIT_MAX 100000000UL
/* Error messages, as net.h's NET_ERR_LEN. */
#define TRACE_ERR_LEN 512

/* Set once by trace_init, before any thread or child. make bench also
 * builds a muxd with MUXD_TRACE_COMPILED_OUT, where every call below
 * tests a constant and the compiler drops it: the baseline that the
 * branch on the flag is measured against. */
extern bool trace_flag;
#ifdef MUXD_TRACE_COMPILED_OUT
#define trace_on false
#else
#define trace_on trace_flag
#endif

/* ---- set-up and output, in the main process ---- */

/* Create FILE (a start-up failure if it cannot be: -1 with the path and
 * the reason in err) and make the memory every process shares. `engine`
 * names the main process; `processes`: the engine forks children, which
 * get a shared file for their parts. Call before any thread or child. */
int trace_init(const char *path, unsigned long limit, const char *engine,
	       bool processes, char *err);

/* With --stats: sample its counters every TRACE_COUNTER_MS into counter
 * tracks, from a thread of its own. Returns 0 or an error number. */
#define TRACE_COUNTER_MS 10
int trace_counters_start(void);

/* Muxd did not start after all: remove FILE if trace_init made it. */
void trace_abandon(void);

/* Write FILE: everything recorded so far, while the threads go on
 * recording (SIGUSR1); or the last time, at exit. Returns 0, or -1 with
 * the path and the reason in err. Without --trace, 0 at once. */
int trace_snapshot(char *err);
int trace_finish(char *err);

/* ---- names: the tracks as Perfetto shows them ---- */

/* The calling thread's track name ("reactor 2", "worker 17"); before it
 * records anything (a thread that never does is "thread"). */
void trace_name_thread(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* In a child process just forked: forget the parent's events, record the
 * child's own from now on, and name it (process and thread). */
void trace_forked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A child process about to _exit: its part goes to the shared file. */
void trace_child_exit(void);

/* ---- recording: the calls to make, each one branch without --trace ---- */

int64_t trace_clock(void);
/* begin < 0: an instant. Keeps errno. */
void trace_record(enum trace_kind kind, int64_t begin, int fd,
		  uint64_t value, uint32_t aux);
void trace_record_flow(enum trace_kind kind, int64_t begin, int fd,
		       uint32_t to);
void trace_record_close(int fd);

/* The start of a span: 0 without --trace. */
static inline int64_t trace_begin(void)
{
	return __builtin_expect(trace_on, 0) ? trace_clock() : 0;
}

/* A span from `begin` to now. */
static inline void trace_span(enum trace_kind kind, int64_t begin, int fd,
			      uint64_t value)
{
	if (__builtin_expect(trace_on, 0))
		trace_record(kind, begin, fd, value, 0);
}

/* An instant, now. */
static inline void trace_event(enum trace_kind kind, int fd, uint64_t value,
			       uint32_t aux)
{
	if (__builtin_expect(trace_on, 0))
		trace_record(kind, -1, fd, value, aux);
}

/* A wait from `begin` that returned n (-1: failed, with errno); fd is the
 * one connection waited for, or -1. Call it before errno changes. */
static inline void trace_wait(enum trace_kind kind, int64_t begin, int fd,
			      long n)
{
	if (__builtin_expect(trace_on, 0))
		trace_record(kind, begin, fd, n < 0 ? 0 : (uint64_t)n,
			     n < 0 ? (uint32_t)errno : 0);
}

/* A non-blocking read or write (TRACE_READ, TRACE_WRITE) on fd that
 * returned n; call it before errno changes. */
static inline void trace_io(enum trace_kind kind, int fd, long n)
{
	trace_wait(kind, -1, fd, n);
}

/* A blocking read, from begin, that returned n. */
static inline void trace_read_wait(int64_t begin, int fd, long n)
{
	trace_wait(TRACE_READ_WAIT, begin, fd, n);
}

/* An io_uring_enter from begin: entries submitted, completions waiting
 * in the ring after it. */
static inline void trace_enter(int64_t begin, unsigned submitted,
			       unsigned completions)
{
	if (__builtin_expect(trace_on, 0))
		trace_record(TRACE_URING_ENTER, begin, -1, submitted, completions);
}

/* A connection handed to worker or thread `to` (from 1; 0: the first
 * that takes it), from begin to now. */
static inline void trace_hand_over(int64_t begin, int fd, unsigned to)
{
	if (__builtin_expect(trace_on, 0))
		trace_record_flow(TRACE_HAND_OVER, begin, fd, to);
}

/* A connection taken from another thread or process. */
static inline void trace_take(int64_t begin, int fd)
{
	if (__builtin_expect(trace_on, 0))
		trace_record_flow(TRACE_TAKE, begin, fd, 0);
}

/* A connection's end (it counts in the "open" counter track). */
static inline void trace_close(int fd)
{
	if (__builtin_expect(trace_on, 0))
		trace_record_close(fd);
}

#endif
