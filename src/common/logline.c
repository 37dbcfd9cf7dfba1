/* logline.c -- the line writer behind muxd's and muxbench's logs. */
#include "common/logline.h"

#include <stdio.h>
#include <unistd.h>

void log_vline(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	n = snprintf(line, sizeof line, "%s: ", prefix);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* Nothing sensible to do if standard error is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
