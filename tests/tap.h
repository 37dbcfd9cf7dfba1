/* tap.h -- a small Test Anything Protocol emitter for muxd's C tests.
 *
 * Every result line and every diagnostic goes to standard output, so the
 * TAP driver sees them in order; diagnostics are "# " lines. Either call
 * plan(n) first, or call done_testing() at the end to print the plan
 * after the fact. main() returns exit_status() (or done_testing()):
 * 0 when every test passed and the plan was kept, 1 otherwise.
 *
 * Not thread-safe: call it from one thread.
 */
#ifndef MUXD_TAP_H
#define MUXD_TAP_H

#include <stdbool.h>
#include <stddef.h>

#define TAP_PRINTF(fmt_index, first_arg) \
	__attribute__((format(printf, fmt_index, first_arg)))

/* Announce n tests up front. */
void plan(int n);
/* Nothing to test here (e.g. a missing prerequisite): "1..0 # SKIP". */
_Noreturn void plan_skip_all(const char *fmt, ...) TAP_PRINTF(1, 2);

/* One result line; returns cond so callers can chain diagnostics. */
bool ok(bool cond, const char *fmt, ...) TAP_PRINTF(2, 3);
/* ok(got == want), with both values printed on failure. */
bool is_int(long long got, long long want, const char *fmt, ...)
	TAP_PRINTF(3, 4);
/* ok(strcmp(got, want) == 0), both strings printed (escaped) on failure. */
bool is_str(const char *got, const char *want, const char *fmt, ...)
	TAP_PRINTF(3, 4);
/* ok(byte-identical), with lengths, first differing offset and a hex
 * excerpt of both sides around it on failure. */
bool is_mem(const void *got, size_t got_len, const void *want,
	    size_t want_len, const char *fmt, ...) TAP_PRINTF(5, 6);

/* A "# " diagnostic; embedded newlines start new "# " lines. */
void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
/* Count n tests as skipped, each with the reason. */
void skip(int n, const char *fmt, ...) TAP_PRINTF(2, 3);
/* Stop the whole run: "Bail out! reason", exit 1. */
_Noreturn void bail_out(const char *fmt, ...) TAP_PRINTF(1, 2);

/* Print the plan if none was announced; returns exit_status(). */
int done_testing(void);
/* 0 if every test passed and the plan (if any) was kept, else 1. */
int exit_status(void);

/* Escape bytes for a diagnostic (\r, \n, \xNN); returns dst. */
char *tap_escape(char *dst, size_t dst_size, const void *src, size_t len);

#endif
