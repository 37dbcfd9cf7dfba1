/* log.c -- logging to standard error.
 *
 * Each message is formatted into one buffer and written with one write(2),
 * so lines from several processes or threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "net.h"
#include "service.h"

enum log_level log_threshold = LOG_INFO;

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (level > log_threshold)
		return;
	n = snprintf(line, sizeof line, "muxd: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* Nothing sensible to do if standard error is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void log_conn_open(const struct listener *l,
		   const struct sockaddr_storage *peer, int fd)
{
	char addr[NET_ADDR_LEN];

	if (log_threshold < LOG_CONN)
		return;
	net_format_addr(peer, addr, sizeof addr);
	log_msg(LOG_CONN, "open %s %s fd %d", l->service->name, addr, fd);
}

void log_conn_close(const struct listener *l,
		    const struct sockaddr_storage *peer, int fd,
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
