/* log.c -- logging to standard error, one line per message (logline.c). */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "base/net.h"
#include "base/stats.h"
#include "common/logline.h"
#include "services/service.h"

enum log_level log_threshold = LOG_INFO;

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	log_vline("muxd", fmt, ap);
	va_end(ap);
}

void log_conn_open(const struct listener *l,
		   const struct sockaddr *peer, int fd)
{
	char addr[NET_ADDR_LEN];

	if (log_threshold < LOG_CONN)
		return;
	net_format_addr(peer, addr, sizeof addr);
	log_msg(LOG_CONN, "open %s %s fd %d", l->service->name, addr, fd);
}

void log_conn_close(const struct listener *l,
		    const struct sockaddr *peer, int fd,
		    const char *why, unsigned long long in,
		    unsigned long long out)
{
	char addr[NET_ADDR_LEN];

	if (log_threshold < LOG_CONN)
		return;
	net_format_addr(peer, addr, sizeof addr);
	log_msg(LOG_CONN, "close %s %s fd %d: %s (in %llu B, out %llu B)",
		l->service->name, addr, fd, why, in, out);
}

void log_stopping(unsigned open_conns, unsigned grace)
{
	log_info("stopping: %u connection%s may finish within %u s",
		 open_conns, open_conns == 1 ? "" : "s", grace);
}

void log_stats(void)
{
	char line[768];

	if (!stats)
		return;
	stats_format(line, sizeof line);
	/* Shown even with --quiet: it was asked for. */
	log_msg(LOG_ERROR, "stats: %s", line);
}
