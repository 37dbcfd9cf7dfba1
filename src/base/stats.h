/* stats.h -- the counters --stats prints: what the server did, summed over
 * all its processes and threads.
 *
 * They live in one shared mapping made before any fork: a block of
 * counters per serving thread of the multi-threaded engines, each on cache
 * lines of its own, and block 0 for everyone else (the main thread, the
 * process pools' workers, the per-connection threads). Each thread counts
 * through its own pointer with relaxed atomic adds, so threads that count
 * side by side never write the same cache line, and the processes that
 * share block 0 stay exact. Without --stats the pointer is NULL and each
 * count costs one predictable branch. The system call counters are what
 * separates the engines: calls per message, wakeups per accept. The
 * io_uring engine's receives and sends are requests, not system calls:
 * they are counted as submissions and completions, their bytes as bytes.
 */
#ifndef MUXD_STATS_H
#define MUXD_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum stat_counter {
	STAT_ACCEPTED,		/* connections served */
	STAT_REFUSED,		/* accepted and closed at once: --max-conns */
	STAT_TIMED_OUT,		/* closed by --idle-timeout */
	STAT_BYTES_IN,
	STAT_BYTES_OUT,
	STAT_SYS_ACCEPT,	/* accept4, EAGAIN included */
	STAT_SYS_READ,		/* read, recv, recvmsg */
	STAT_SYS_WRITE,		/* write, send, sendmsg */
	STAT_SYS_WAIT,		/* select, poll, epoll_wait; sigtimedwait and
				 * signalfd reads; io_getevents */
	STAT_SYS_CTL,		/* epoll_ctl; sigio's fcntl; io_submit, io_cancel */
	STAT_SYS_FORK,		/* fork */
	STAT_SYS_THREAD,	/* pthread_create (clone) */
	STAT_SYS_LOCK,		/* flock, accept mutex taken */
	STAT_SYS_URING_ENTER,	/* io_uring_enter */
	STAT_URING_SQES,	/* io_uring requests submitted */
	STAT_URING_CQES,	/* io_uring completions reaped */
	STAT_COUNT
};

struct stat_block {
	_Atomic unsigned long long count[STAT_COUNT];
} __attribute__((aligned(64)));

/* The calling thread's block; NULL without --stats. A thread started with
 * thread_start() begins with its creator's. */
extern _Thread_local struct stat_block *stat_mine;

/* Make the counters (before any fork or thread): block 0 and one block
 * for each of up to `threads` serving threads. Returns 0 or -1. */
int stats_init(unsigned threads);

/* The calling thread counts in serving thread i's block from now on, and
 * --stats shows the connections each such thread accepted. */
void stats_use_thread_block(unsigned i);

/* "accepted=N refused=N ...": every counter summed over the blocks,
 * NAME=VALUE, on one line, then the serving threads' accepted counts if
 * any thread has a block (stats must have been made). Returns the length
 * written or wanted. */
size_t stats_format(char *out, size_t len);

/* True once stats_init() has made the counters. */
bool stats_enabled(void);

/* Every counter's value now, summed (stats must have been made). */
void stats_read(unsigned long long out[STAT_COUNT]);

/* --stats-interval's line: "interval=S NAME=RATE ...", each counter's
 * change from `before` to `after` per second over `seconds`, rounded.
 * Returns the length written or wanted. */
size_t stats_format_rates(const unsigned long long before[STAT_COUNT],
			  const unsigned long long after[STAT_COUNT],
			  double seconds, char *out, size_t len);

static inline void stat_add(enum stat_counter s, unsigned long long n)
{
	struct stat_block *b = stat_mine;

	if (b)
		atomic_fetch_add_explicit(&b->count[s], n, memory_order_relaxed);
}

/* A read or write on a client socket that returned n: the call, and the
 * bytes as they move, so a SIGUSR1 snapshot counts open connections too. */
static inline void stat_read(long n)
{
	stat_add(STAT_SYS_READ, 1);
	if (n > 0)
		stat_add(STAT_BYTES_IN, (unsigned long long)n);
}

static inline void stat_write(long n)
{
	stat_add(STAT_SYS_WRITE, 1);
	if (n > 0)
		stat_add(STAT_BYTES_OUT, (unsigned long long)n);
}

#endif
