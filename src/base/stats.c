/* stats.c -- the shared counters and their one-line form. */
#include "base/stats.h"

#include <stdio.h>
#include <sys/mman.h>


_Atomic unsigned long long *stats;

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
};

int stats_init(void)
{
	void *m = mmap(NULL, STAT_COUNT * sizeof *stats, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return -1;
	stats = m;
	return 0;
}

size_t stats_format(char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < STAT_COUNT && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s=%llu",
					 i ? " " : "", stat_names[i],
					 atomic_load(&stats[i]));
	return used;
}

void stats_read(unsigned long long out[STAT_COUNT])
{
	for (int i = 0; i < STAT_COUNT; i++)
		out[i] = atomic_load_explicit(&stats[i], memory_order_relaxed);
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
