/* stats.c -- the shared counters and their one-line report. */
#include "base/stats.h"

#include <stdio.h>
#include <sys/mman.h>

#include "base/log.h"

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
	[STAT_SYS_URING_ENTER] = "sys_uring_enter",
	[STAT_URING_SQES] = "uring_sqes",
	[STAT_URING_CQES] = "uring_cqes",
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

void stats_print(void)
{
	char line[768];
	size_t used = 0;

	if (!stats)
		return;
	for (int i = 0; i < STAT_COUNT && used < sizeof line; i++)
		used += (size_t)snprintf(line + used, sizeof line - used, "%s%s=%llu",
					 i ? " " : "", stat_names[i],
					 atomic_load(&stats[i]));
	/* Shown even with --quiet: it was asked for. */
	log_msg(LOG_ERROR, "stats: %s", line);
}
