/* tap.c -- see tap.h. */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tests_run;
static int tests_failed;
static int tests_planned = -1;	/* -1: no plan printed yet */

/* Each line is flushed at once: the server under test writes to the
 * same log, and a crash must not lose what was already decided. */
static void emit_line_end(void)
{
	putchar('\n');
	fflush(stdout);
}

/* Print text as "# " lines, one per embedded newline. */
static void emit_diag_text(const char *text)
{
	const char *line = text;

	for (;;) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		printf("# %.*s", len, line);
		emit_line_end();
		if (!nl || nl[1] == '\0')
			break;
		line = nl + 1;
	}
}

__attribute__((format(printf, 1, 0)))
static void vdiag(const char *fmt, va_list ap)
{
	char text[4096];

	vsnprintf(text, sizeof text, fmt, ap);
	emit_diag_text(text);
}

void diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(fmt, ap);
	va_end(ap);
}

void plan(int n)
{
	tests_planned = n;
	printf("1..%d", n);
	emit_line_end();
}

void plan_skip_all(const char *fmt, ...)
{
	va_list ap;

	printf("1..0 # SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	emit_line_end();
	exit(0);
}

/* The result line itself; the name must not start with a digit or the
 * driver would read it as the test number, hence the "- ". */
__attribute__((format(printf, 2, 0)))
static bool vresult(bool cond, const char *fmt, va_list ap)
{
	tests_run++;
	if (!cond)
		tests_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tests_run);
	vprintf(fmt, ap);
	emit_line_end();
	return cond;
}

bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vresult(cond, fmt, ap);
	va_end(ap);
	return cond;
}

bool is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	bool same = got == want;

	va_start(ap, fmt);
	vresult(same, fmt, ap);
	va_end(ap);
	if (!same)
		diag("     got: %lld\nexpected: %lld", got, want);
	return same;
}

char *tap_escape(char *dst, size_t dst_size, const void *src, size_t len)
{
	const unsigned char *p = src;
	size_t used = 0;

	dst[0] = '\0';
	for (size_t i = 0; i < len && used + 5 < dst_size; i++) {
		if (p[i] == '\r')
			used += (size_t)snprintf(dst + used, dst_size - used, "\\r");
		else if (p[i] == '\n')
			used += (size_t)snprintf(dst + used, dst_size - used, "\\n");
		else if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\')
			used += (size_t)snprintf(dst + used, dst_size - used,
						 "\\x%02x", p[i]);
		else
			dst[used++] = (char)p[i];
		dst[used] = '\0';
	}
	return dst;
}

bool is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	bool same = got && want && strcmp(got, want) == 0;
	char got_text[512], want_text[512];

	va_start(ap, fmt);
	vresult(same, fmt, ap);
	va_end(ap);
	if (!same)
		diag("     got: \"%s\"\nexpected: \"%s\"",
		     got ? tap_escape(got_text, sizeof got_text, got, strlen(got)) : "(null)",
		     want ? tap_escape(want_text, sizeof want_text, want, strlen(want)) : "(null)");
	return same;
}

/* Up to 16 bytes of hex starting at from, or "(end)" past the end. */
static void hex_excerpt(char *dst, size_t dst_size, const unsigned char *p,
			size_t len, size_t from)
{
	size_t used = 0;

	dst[0] = '\0';
	for (size_t i = from; i < len && i < from + 16; i++)
		used += (size_t)snprintf(dst + used, dst_size - used, "%02x ", p[i]);
	if (from + 16 > len)
		snprintf(dst + used, dst_size - used, "(end)");
}

static size_t first_difference(const unsigned char *a, size_t a_len,
			       const unsigned char *b, size_t b_len)
{
	size_t i = 0;

	while (i < a_len && i < b_len && a[i] == b[i])
		i++;
	return i;
}

bool is_mem(const void *got, size_t got_len, const void *want,
	    size_t want_len, const char *fmt, ...)
{
	va_list ap;
	bool same = got_len == want_len &&
		    (got_len == 0 || memcmp(got, want, got_len) == 0);

	va_start(ap, fmt);
	vresult(same, fmt, ap);
	va_end(ap);
	if (!same) {
		size_t at = first_difference(got, got_len, want, want_len);
		size_t from = at < 8 ? 0 : at - 8;
		char got_hex[80], want_hex[80];

		hex_excerpt(got_hex, sizeof got_hex, got, got_len, from);
		hex_excerpt(want_hex, sizeof want_hex, want, want_len, from);
		diag("got %zu bytes, expected %zu; first difference at offset %zu\n"
		     "     got [%zu..]: %s\nexpected [%zu..]: %s",
		     got_len, want_len, at, from, got_hex, from, want_hex);
	}
	return same;
}

void skip(int n, const char *fmt, ...)
{
	char reason[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	for (int i = 0; i < n; i++) {
		tests_run++;
		printf("ok %d # SKIP %s", tests_run, reason);
		emit_line_end();
	}
}

void bail_out(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	emit_line_end();
	exit(1);
}

int exit_status(void)
{
	if (tests_planned >= 0 && tests_planned != tests_run) {
		diag("planned %d tests but ran %d", tests_planned, tests_run);
		return 1;
	}
	return tests_failed != 0;
}

int done_testing(void)
{
	if (tests_planned < 0)
		plan(tests_run);
	if (tests_failed)
		diag("failed %d of %d tests", tests_failed, tests_run);
	return exit_status();
}
