/* log.c -- logging to standard error, one line per message (logline.c). */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* Longer than other lines may be: 1024 threads' accepted counts. */
#define STATS_LINE_LEN 16384

void log_stats(void)
{
	static const char prefix[] = "muxd: stats: ";
	char line[STATS_LINE_LEN];
	size_t n = sizeof prefix - 1;

	if (!stats_enabled())
		return;
	memcpy(line, prefix, n);
	n += stats_format(line + n, sizeof line - n - 1);
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* Shown even with --quiet: it was asked for. Nothing sensible to do
	 * if standard error is gone. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
