/* cli.c -- usage errors and numbers, the same in muxd and muxbench. */
#include "common/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/logline.h"

static const char *program = "muxd";

void cli_set_program(const char *name)
{
	program = name;
}

/* log_vline takes a va_list: hand it the finished message. */
static void log_usage_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void log_usage_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(program, fmt, ap);
	va_end(ap);
}

_Noreturn void cli_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_usage_line("%s; see '%s --help'", msg, program);
	exit(EXIT_USAGE);
}

unsigned long cli_parse_number(const char *option, const char *text,
			       unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end || errno || v < min || v > max)
		cli_usage_error("bad --%s '%s': expected a whole number from %lu to %lu",
				option, text, min, max);
	return v;
}

double cli_parse_seconds(const char *option, const char *text,
			 bool zero_allowed, double max)
{
	size_t digits = strspn(text, "0123456789");
	double min = zero_allowed ? 0 : CLI_MIN_SECONDS;
	char *end;
	double v;

	if (text[digits] == '.')
		digits += 1 + strspn(text + digits + 1, "0123456789");
	v = strtod(text, &end);
	if (!digits || text[digits] || end != text + digits || v < min || v > max)
		cli_usage_error("bad --%s '%s': expected seconds from %g to %.0f, "
				"e.g. 2.5", option, text, min, max);
	return v;
}
