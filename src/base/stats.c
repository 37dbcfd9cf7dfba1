/* stats.c -- the shared counters and their one-line form. */
#include "base/stats.h"

#include <stdio.h>
#include <sys/mman.h>

_Thread_local struct stat_block *stat_mine;

static struct stat_block *blocks;	/* block 0, then one per serving thread */
static unsigned thread_blocks;
/* Serving threads that took a block: set while the threads start, read
 * when the line is printed. */
static _Atomic unsigned threads_counting;

static const char *const stat_names[STAT_COUNT] = {
	[STAT_ACCEPTED] = "accepted",
	[STAT_REFUSED] = "refused",
	[STAT_TIMED_OUT] = "timed_out",
	[STAT_BYTES_IN] = "bytes_in",
	[STAT_BYTES_OUT] = "bytes_out",
	[STAT_SYS_ACCEPT] = "sys_accept",
	[STAT_SYS_READ] = "sys_read",
	[STAT_SYS_WRITE] = "sys_write",
	[STAT_SYS_WAIT] = "sys_wait",
	[STAT_SYS_CTL] = "sys_epoll_ctl",
	[STAT_SYS_FORK] = "sys_fork",
	[STAT_SYS_THREAD] = "sys_thread",
	[STAT_SYS_LOCK] = "sys_lock",
	[STAT_SYS_URING_ENTER] = "sys_uring_enter",
	[STAT_URING_SQES] = "uring_sqes",
	[STAT_URING_CQES] = "uring_cqes",
};

int stats_init(unsigned threads)
{
	void *m = mmap(NULL, (1 + threads) * sizeof *blocks,
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return -1;
	blocks = m;
	thread_blocks = threads;
	stat_mine = &blocks[0];
	return 0;
}

bool stats_enabled(void)
{
	return blocks != NULL;
}

void stats_use_thread_block(unsigned i)
{
	unsigned seen = atomic_load(&threads_counting);

	if (!blocks || i >= thread_blocks)
		return;
	stat_mine = &blocks[1 + i];
	while (seen < i + 1 &&
	       !atomic_compare_exchange_weak(&threads_counting, &seen, i + 1))
		continue;
}

static unsigned long long sum(enum stat_counter s)
{
	unsigned long long total = 0;

	for (unsigned b = 0; b <= thread_blocks; b++)
		total += atomic_load_explicit(&blocks[b].count[s],
					      memory_order_relaxed);
	return total;
}

/* " accepted_per_thread=a,b,c accepted_thread_min=N accepted_thread_max=N":
 * how evenly the serving threads shared the connections. */
static size_t format_balance(char *out, size_t len, unsigned n)
{
	unsigned long long least = ~0ULL, most = 0;
	size_t used = (size_t)snprintf(out, len, " accepted_per_thread=");

	for (unsigned i = 0; i < n; i++) {
		unsigned long long a = atomic_load_explicit(
			&blocks[1 + i].count[STAT_ACCEPTED], memory_order_relaxed);

		least = a < least ? a : least;
		most = a > most ? a : most;
		if (used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%llu",
						 i ? "," : "", a);
	}
	if (used < len)
		used += (size_t)snprintf(out + used, len - used,
					 " accepted_thread_min=%llu accepted_thread_max=%llu",
					 least, most);
	return used;
}

size_t stats_format(char *out, size_t len)
{
	unsigned n = atomic_load(&threads_counting);
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < STAT_COUNT && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s=%llu",
					 i ? " " : "", stat_names[i],
					 sum((enum stat_counter)i));
	if (n && used < len)
		used += format_balance(out + used, len - used, n);
	return used;
}

void stats_read(unsigned long long out[STAT_COUNT])
{
	for (int i = 0; i < STAT_COUNT; i++)
		out[i] = sum((enum stat_counter)i);
}

size_t stats_format_rates(const unsigned long long before[STAT_COUNT],
			  const unsigned long long after[STAT_COUNT],
			  double seconds, char *out, size_t len)
{
	size_t used = (size_t)snprintf(out, len, "interval=%.3f", seconds);

	for (int i = 0; i < STAT_COUNT && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, " %s=%.0f",
					 stat_names[i],
					 (double)(after[i] - before[i]) / seconds);
	return used;
}
