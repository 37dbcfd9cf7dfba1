/* logline.h -- one message, one line, one write(2) on standard error. */
#ifndef MUXD_LOGLINE_H
#define MUXD_LOGLINE_H

#include <stdarg.h>

/* Write "PREFIX: message\n" with a single write, so that lines from
 * several processes or threads never interleave; a message too long for
 * the line buffer (1 KiB) is cut. Shared by muxd and muxbench. */
void log_vline(const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#endif
