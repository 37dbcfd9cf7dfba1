/* log.h -- one line per message on standard error, prefixed "muxd: ". */
#ifndef MUXD_LOG_H
#define MUXD_LOG_H

enum log_level {
	LOG_ERROR,	/* always shown */
	LOG_INFO,	/* start-up, shutdown, pool changes; hidden by --quiet */
	LOG_CONN,	/* every connection opened and closed; shown by --verbose */
};

extern enum log_level log_threshold;

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
/* Checked before the call so the hot path formats nothing. */
#define log_conn(...) \
	do { if (log_threshold >= LOG_CONN) log_msg(LOG_CONN, __VA_ARGS__); } while (0)

#include <sys/socket.h>

struct listener;

/* The --verbose lines for a connection opened and closed. */
void log_conn_open(const struct listener *l,
		   const struct sockaddr *peer, int fd);
void log_conn_close(const struct listener *l,
		    const struct sockaddr *peer, int fd,
		    const char *why, unsigned long long in,
		    unsigned long long out);

/* With --stats: "stats: accepted=N ...", the counters on one line. */
void log_stats(void);

/* The line every engine logs when a stop signal ends accepting. */
void log_stopping(unsigned open_conns, unsigned grace);

#endif
