/* cli.h -- what muxd's and muxbench's command lines share: one way to say
 * "usage error" and one strict number parser. */
#ifndef MUXD_CLI_H
#define MUXD_CLI_H

#include <stdbool.h>

/* The exit status of a usage error, in both programs. */
#define EXIT_USAGE 2

/* The program's name in messages ("muxd", "muxbench"); set before any
 * option is parsed. */
void cli_set_program(const char *name);

/* "PROGRAM: message; see 'PROGRAM --help'" on standard error, exit 2. */
_Noreturn void cli_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* A whole decimal number from min to max for --option, or a usage error
 * naming the option and the text: no sign, no blanks, nothing after. */
unsigned long cli_parse_number(const char *option, const char *text,
			       unsigned long min, unsigned long max);

/* The shortest period a seconds option takes (0 aside, where it means
 * "none"): a reporter or a timer ticking faster would only spin. */
#define CLI_MIN_SECONDS 0.001

/* Decimal seconds for --option ("2", "0.5", "2.5"): digits with an
 * optional fraction, nothing else, at least CLI_MIN_SECONDS (or any
 * value from 0 when zero_allowed) and at most max; else a usage error. */
double cli_parse_seconds(const char *option, const char *text,
			 bool zero_allowed, double max);

#endif
