/* stats.h -- the counters --stats prints: what the server did, summed over
 * all its processes and threads.
 *
 * They live in one shared mapping made before any fork, and are bumped
 * with relaxed atomic adds; without --stats the pointer is NULL and each
 * count costs one predictable branch. The system call counters are what
 * separates the engines: calls per message, wakeups per accept.
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
	STAT_SYS_WAIT,		/* select, poll, epoll_wait */
	STAT_SYS_CTL,		/* epoll_ctl */
	STAT_SYS_FORK,		/* fork */
	STAT_SYS_THREAD,	/* pthread_create (clone) */
	STAT_SYS_LOCK,		/* flock, accept mutex taken */
	STAT_COUNT
};

extern _Atomic unsigned long long *stats;

/* Make the counters (before any fork or thread). Returns 0 or -1. */
int stats_init(void);

/* "accepted=N refused=N ...": every counter, NAME=VALUE, on one line
 * (stats must have been made). Returns the length written or wanted. */
size_t stats_format(char *out, size_t len);

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
	if (stats)
		atomic_fetch_add_explicit(&stats[s], n, memory_order_relaxed);
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
