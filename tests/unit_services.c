/* unit_services.c -- the services without sockets.
 *
 * The engines feed a service whatever chunk sizes the kernel hands them,
 * so every service must give the same bytes however its input is cut and
 * however much output room it is given. Expected values (the chargen
 * ring, dates, RFC 868 counters) are written out here independently of
 * src/services.c, so a shared mistake cannot pass.
 */
#include "services/service.h"
#include "oracle.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_LEN (64 * 1024)
#define SEED_COUNT 5
#define CHARGEN_CYCLE_BYTES 7030

static const char *const service_names[] = {
	"stamp", "upper", "echo", "discard", "chargen", "daytime", "time",
	"delay", "work",
};
#define SERVICE_COUNT (sizeof service_names / sizeof service_names[0])

static size_t prng_range(uint64_t *state, size_t lo, size_t hi)
{
	return lo + (size_t)(prng_next(state) % (hi - lo + 1));
}

static void fill_random(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t state = seed * 0x9e3779b97f4a7c15u + 1;

	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(prng_next(&state) >> 56);
}

static void expected_stream(const char *name, const unsigned char *in,
			    size_t len, unsigned char *out, size_t *out_len)
{
	*out_len = 0;
	if (strcmp(name, "discard") == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];

		if (strcmp(name, "upper") == 0 && c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		out[i] = c;
	}
	*out_len = len;
}

static void test_table(void)
{
	size_t listed = 0;

	for (size_t i = 0; i < SERVICE_COUNT; i++) {
		const struct service *svc = svc_find(service_names[i]);

		ok(svc && strcmp(svc->name, service_names[i]) == 0,
		   "svc_find(\"%s\") finds it", service_names[i]);
	}
	ok(svc_find("nosuch") == NULL, "svc_find of an unknown name is NULL");
	ok(svc_find("") == NULL, "svc_find(\"\") is NULL");
	ok(svc_find("UPPER") == NULL, "svc_find is case-sensitive");
	while (services[listed])
		listed++;
	is_int((long long)listed, (long long)SERVICE_COUNT,
	       "services[] lists exactly the nine services");
}

/* Feed `in` in random chunks; append each returned prefix to out. */
static size_t run_chunked(const struct service *svc, const unsigned char *in,
			  size_t len, uint64_t seed, unsigned char *out,
			  bool *prefix_ok)
{
	struct svc_session session;
	unsigned char greeting[SVC_GREETING_MAX];
	uint64_t state = seed;
	size_t done = 0, produced = svc_open(&session, svc, 0, greeting);

	*prefix_ok = produced == 0;
	while (done < len) {
		size_t chunk = prng_range(&state, 1, 5000);
		unsigned char *data = out + produced;
		size_t keep;

		if (chunk > len - done)
			chunk = len - done;
		/* In place, as the engines do: the chunk lands in the output. */
		memmove(data, in + done, chunk);
		keep = svc_input(&session, data, chunk);
		if (keep > chunk) {
			*prefix_ok = false;
			keep = chunk;
		}
		produced += keep;
		done += chunk;
	}
	return produced;
}

static size_t run_one_shot(const struct service *svc, const unsigned char *in,
			   size_t len, unsigned char *out)
{
	struct svc_session session;
	unsigned char greeting[SVC_GREETING_MAX];

	svc_open(&session, svc, 0, greeting);
	memcpy(out, in, len);
	return svc_input(&session, out, len);
}

static void test_stream_service(const char *name)
{
	const struct service *svc = svc_find(name);
	unsigned char *in = malloc(STREAM_LEN), *want = malloc(STREAM_LEN);
	unsigned char *whole = malloc(STREAM_LEN), *pieces = malloc(STREAM_LEN);
	size_t want_len, whole_len;

	if (!svc || !in || !want || !whole || !pieces)
		bail_out("no service %s or out of memory", name);
	fill_random(in, STREAM_LEN, 42);
	expected_stream(name, in, STREAM_LEN, want, &want_len);
	whole_len = run_one_shot(svc, in, STREAM_LEN, whole);
	is_mem(whole, whole_len, want, want_len,
	       "%s: one-shot output is the contract's transformation", name);
	for (uint64_t seed = 1; seed <= SEED_COUNT; seed++) {
		bool prefix_ok;
		size_t n = run_chunked(svc, in, STREAM_LEN, seed, pieces, &prefix_ok);

		ok(prefix_ok, "%s seed %llu: no greeting, input returns a prefix",
		   name, (unsigned long long)seed);
		is_mem(pieces, n, whole, whole_len,
		       "%s seed %llu: random chunks give the one-shot bytes",
		       name, (unsigned long long)seed);
	}
	free(in); free(want); free(whole); free(pieces);
}

/* All 256 byte values, so no byte outside a-z is touched by upper. */
static void test_upper_all_bytes(void)
{
	unsigned char in[256], got[256], want[256];
	size_t want_len;

	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	expected_stream("upper", in, sizeof in, want, &want_len);
	is_mem(got, run_one_shot(svc_find("upper"), in, sizeof in, got),
	       want, want_len, "upper: only a-z change, in all 256 byte values");
}

/* Pull `len` bytes through fill with random room sizes (seed 0: every
 * size from 1 to 160 in turn, to hit each line boundary), with input fed
 * in between, which chargen must ignore. */
static bool run_chargen(unsigned char *out, size_t len, uint64_t seed)
{
	struct svc_session session;
	unsigned char junk[100];
	uint64_t state = seed;
	size_t done = svc_open(&session, svc_find("chargen"), 0, out);

	for (size_t turn = 0; done < len; turn++) {
		size_t room = seed ? prng_range(&state, 1, 9000) : turn % 160 + 1;
		size_t filled;

		if (room > len - done)
			room = len - done;
		filled = svc_fill(&session, out + done, room);
		if (filled == 0 || filled > room)
			return false;
		done += filled;
		memset(junk, 'x', sizeof junk);
		svc_input(&session, junk, prng_range(&state, 1, sizeof junk));
	}
	return true;
}

static void test_chargen(void)
{
	size_t len = 3 * CHARGEN_CYCLE_BYTES + 123;
	unsigned char *want = malloc(len), *got = malloc(len);
	struct svc_session session;
	size_t greeting;

	if (!want || !got)
		bail_out("out of memory");
	expected_chargen(want, len);
	ok(want[0] == ' ' && want[71] == 'g' && want[72] == '\r' &&
	   want[74] == '!' && want[CHARGEN_CYCLE_BYTES] == ' ',
	   "chargen: the test's own ring has the RFC 864 landmarks");
	greeting = svc_open(&session, svc_find("chargen"), 0, got);
	is_int((long long)greeting, 0, "chargen: no greeting");
	ok(svc_is_producer(&session), "chargen is a producer");
	for (size_t done = 0, n = 1; done < len && n > 0; done += n)
		n = svc_fill(&session, got + done, len - done);
	is_mem(got, CHARGEN_CYCLE_BYTES, want, CHARGEN_CYCLE_BYTES,
	       "chargen: first 7030 bytes are the RFC 864 ring");
	is_mem(got, len, want, len, "chargen: the pattern repeats every 7030 bytes");
	for (uint64_t seed = 0; seed <= SEED_COUNT; seed++) {
		memset(got, 0, len);
		ok(run_chargen(got, len, seed),
		   "chargen seed %llu: fill makes progress and stays within its room",
		   (unsigned long long)seed);
		is_mem(got, len, want, len,
		       "chargen seed %llu: varied room sizes give the same stream",
		       (unsigned long long)seed);
	}
	free(want); free(got);
}

static void test_greeting(const char *name, time_t now, const void *want,
			  size_t want_len, const char *label)
{
	struct svc_session session;
	unsigned char out[SVC_GREETING_MAX];
	size_t n = svc_open(&session, svc_find(name), now, out);

	is_mem(out, n, want, want_len, "%s at %lld: %s", name, (long long)now, label);
}

static void test_stamp(void)
{
	test_greeting("stamp", 1795000000, "1795000000\r\n", 12, "decimal, CRLF");
	test_greeting("stamp", 0, "0\r\n", 3, "zero is \"0\"");
}

static void test_time(void)
{
	static const unsigned char at_epoch[] = { 0x83, 0xaa, 0x7e, 0x80 };
	static const unsigned char in_2026[] = { 0xee, 0xa8, 0x05, 0x40 };
	static const unsigned char wrapped[] = { 0, 0, 0, 0 };
	static const unsigned char after_wrap[] = { 0, 0, 0, 1 };

	test_greeting("time", 0, at_epoch, 4, "2208988800 big-endian");
	test_greeting("time", 1795000000, in_2026, 4, "big-endian");
	/* 2085978496 + 2208988800 = 2^32: the RFC 868 counter wraps. */
	test_greeting("time", 2085978496, wrapped, 4, "wraps to 0 in 2036");
	test_greeting("time", 2085978497, after_wrap, 4, "1 after the wrap");
}

static void test_daytime_in(const char *tz, time_t now, const char *want)
{
	char label[64];

	setenv("TZ", tz, 1);
	tzset();
	snprintf(label, sizeof label, "ctime layout in TZ=%s", tz);
	test_greeting("daytime", now, want, strlen(want), label);
}

static void test_daytime(void)
{
	const char *saved = getenv("TZ");
	char *saved_copy = saved ? strdup(saved) : NULL;

	test_daytime_in("UTC0", 1795000000, "Wed Nov 18 11:06:40 2026\r\n");
	test_daytime_in("UTC0", 1000000000, "Sun Sep  9 01:46:40 2001\r\n");
	test_daytime_in("UTC0", 0, "Thu Jan  1 00:00:00 1970\r\n");
	/* Local time, not UTC: a POSIX TZ string needs no zoneinfo files. */
	test_daytime_in("EST5", 1795000000, "Wed Nov 18 06:06:40 2026\r\n");
	if (saved_copy)
		setenv("TZ", saved_copy, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved_copy);
}

/* Greeters close once the greeting is out; stream services close once
 * the client's half-close is answered; chargen only when the client
 * goes away. */
static void test_close_after_flush(const char *name, bool on_open, bool on_eof)
{
	struct svc_session session;
	unsigned char buf[SVC_GREETING_MAX] = "abc";
	bool after_open, after_input;

	svc_open(&session, svc_find(name), 1795000000, buf);
	after_open = session.close_after_flush;
	memcpy(buf, "abc", 3);
	svc_input(&session, buf, 3);
	after_input = session.close_after_flush;
	svc_eof(&session);
	ok(after_open == on_open && after_input == on_open &&
	   session.close_after_flush == on_eof,
	   "%s: close_after_flush %s after open, %s after eof", name,
	   on_open ? "set" : "clear", on_eof ? "set" : "clear");
	if (after_open != on_open || after_input != on_open)
		diag("after open: %d, after input: %d", after_open, after_input);
}

/* Engines may reuse a session's memory: svc_open starts afresh. */
static void test_session_reuse(void)
{
	struct svc_session session;
	unsigned char out[200], want[100];

	svc_open(&session, svc_find("chargen"), 0, out);
	svc_fill(&session, out, 150);
	svc_open(&session, svc_find("chargen"), 0, out);
	expected_chargen(want, sizeof want);
	is_mem(out, svc_fill(&session, out, sizeof want), want, sizeof want,
	       "svc_open restarts chargen at line 0 on a reused session");
	svc_open(&session, svc_find("stamp"), 0, out);
	svc_open(&session, svc_find("upper"), 0, out);
	ok(!session.close_after_flush,
	   "svc_open clears close_after_flush on a reused session");
}

static void test_producers(void)
{
	for (size_t i = 0; i < SERVICE_COUNT; i++) {
		struct svc_session session;
		unsigned char out[SVC_GREETING_MAX];
		bool want = strcmp(service_names[i], "chargen") == 0;

		svc_open(&session, svc_find(service_names[i]), 0, out);
		ok(svc_is_producer(&session) == want, "%s %s a producer",
		   service_names[i], want ? "is" : "is not");
	}
}

/* ---- the request services ---- */

/* An engine's part, with a clock that jumps to each reply's due time:
 * `in` offered in random chunks (or whole, seed 0), each reply appended
 * to out with the time it waited before it in waits[]. */
struct requests_run {
	unsigned char out[64 * 1024];
	size_t out_len;
	long long waits[256];
	int replies;
	bool one_line_a_time;	/* take never went past an LF */
	bool closed_before_eof;	/* close_after_flush before the half-close */
	bool closing;		/* close_after_flush at the end */
};

/* The reply as an engine sends it: from the session, then released. */
static size_t copy_reply(struct svc_session *s, unsigned char *to)
{
	const unsigned char *reply;
	size_t n = svc_reply(s, &reply);

	memcpy(to, reply, n);
	svc_replied(s);
	return n;
}

static void take_all(struct svc_session *s, const unsigned char *in, size_t len,
		     uint64_t seed, int64_t *now, struct requests_run *run)
{
	uint64_t state = seed;
	size_t done = 0;

	while (done < len && !s->close_after_flush) {
		size_t chunk = seed ? prng_range(&state, 1, 300) : len - done;
		size_t took;

		if (chunk > len - done)
			chunk = len - done;
		took = svc_take(s, in + done, chunk, *now);
		if (memchr(in + done, '\n', took) &&
		    memchr(in + done, '\n', took) != in + done + took - 1)
			run->one_line_a_time = false;
		done += took;
		if (svc_need(s) == SVC_INPUT && took == chunk)
			continue;
		if (svc_need(s) == SVC_INPUT)
			break;		/* took nothing more: a line too long */
		if (svc_need(s) == SVC_WAIT) {
			run->waits[run->replies] = svc_due(s) - *now;
			*now = svc_due(s);
		} else {
			run->waits[run->replies] = 0;
		}
		run->out_len += copy_reply(s, run->out + run->out_len);
		run->replies++;
	}
}

static void run_requests(const char *name, const char *in, uint64_t seed,
			 struct requests_run *run)
{
	struct svc_session s;
	unsigned char greeting[SVC_GREETING_MAX];
	int64_t now = 1000000;

	memset(run, 0, sizeof *run);
	run->one_line_a_time = true;
	if (svc_open(&s, svc_find(name), 0, greeting) != 0)
		run->one_line_a_time = false;
	take_all(&s, (const unsigned char *)in, strlen(in), seed, &now, run);
	run->closed_before_eof = s.close_after_flush;
	/* Then the client's half-close, as an engine reports it. */
	if (svc_need(&s) == SVC_INPUT)
		svc_eof(&s);
	run->closing = s.close_after_flush;
	svc_close(&s);
}

static void is_replies(const char *name, const char *in, const char *want,
		       const char *what)
{
	for (uint64_t seed = 0; seed <= SEED_COUNT; seed++) {
		struct requests_run run;

		run_requests(name, in, seed, &run);
		if (!is_mem(run.out, run.out_len, want, strlen(want),
			    "%s, %s: %s", name,
			    seed ? "input in random pieces" : "input at once", what))
			return;
	}
}

static void test_work(void)
{
	char in[4096] = "", want[4096] = "";
	uint64_t state = 7;
	struct requests_run run;

	/* splitmix64's published first outputs from seed 0. */
	is_replies("work", "1 0\n2 0\n3 0\r\n",
		   "e220a8397b1dcdaf\r\n6e789e6aa1b965f4\r\n06c45d188009454f\r\n",
		   "splitmix64's first outputs from seed 0");
	for (int i = 0; i < 50; i++) {
		uint64_t n = prng_range(&state, 1, 2000), seed = prng_next(&state);
		size_t at = strlen(in), wat = strlen(want);

		snprintf(in + at, sizeof in - at, "%llu %llu\n",
			 (unsigned long long)n, (unsigned long long)seed);
		snprintf(want + wat, sizeof want - wat, "%016llx\r\n",
			 (unsigned long long)splitmix64_nth(seed, n));
	}
	is_replies("work", in, want, "50 random requests, each the N-th output");
	snprintf(want, sizeof want, "%016llx\r\n",
		 (unsigned long long)splitmix64_nth(UINT64_MAX, 5));
	is_replies("work", "5  18446744073709551615 \n", want,
		   "the largest seed, blanks around it");
	run_requests("work", "100000000 1\n", 0, &run);
	is_int(run.replies, 1, "work: N = 100,000,000 is served");
	is_replies("work", "0 5\n100000001 5\n",
		   "ERR out of range: N from 1 to 100000000\r\n"
		   "ERR out of range: N from 1 to 100000000\r\n",
		   "N out of range");
	is_replies("work", "x 5\n5x 6\n\n",
		   "ERR not a number: N SEED, N from 1 to 100000000\r\n"
		   "ERR not a number: N SEED, N from 1 to 100000000\r\n"
		   "ERR not a number: N SEED, N from 1 to 100000000\r\n",
		   "N not a number");
	is_replies("work", "5\n5 18446744073709551616\n5 6 7\n5 -1\n",
		   "ERR bad seed: an unsigned 64-bit decimal number\r\n"
		   "ERR bad seed: an unsigned 64-bit decimal number\r\n"
		   "ERR bad seed: an unsigned 64-bit decimal number\r\n"
		   "ERR bad seed: an unsigned 64-bit decimal number\r\n",
		   "a seed missing, too large or not alone");
}

static void test_delay(void)
{
	struct requests_run run;
	char line[SVC_LINE_MAX + 2];

	run_requests("delay", "250 hello\r\n0\n60000 x\n", 3, &run);
	is_mem(run.out, run.out_len, "250 hello\r\n0\n60000 x\n", 21,
	       "delay: each line comes back as it came");
	/* One more: the clock is whole milliseconds, and the line may
	 * have come at the end of one. */
	ok(run.replies == 3 && run.waits[0] == 251 && run.waits[1] == 1 &&
	   run.waits[2] == 60001, "delay: each after its own milliseconds, "
	   "and one more");
	ok(run.one_line_a_time, "delay: input is taken one line at a time");
	ok(run.closing, "delay: the client's half-close closes after the replies");
	is_replies("delay", "60001\n99999999999999999999\n",
		   "ERR out of range: milliseconds from 0 to 60000\r\n"
		   "ERR out of range: milliseconds from 0 to 60000\r\n",
		   "milliseconds out of range");
	is_replies("delay", "abc\n-1\n5x\n 5\n\n",
		   "ERR not a number: milliseconds from 0 to 60000, then optional text\r\n"
		   "ERR not a number: milliseconds from 0 to 60000, then optional text\r\n"
		   "ERR not a number: milliseconds from 0 to 60000, then optional text\r\n"
		   "ERR not a number: milliseconds from 0 to 60000, then optional text\r\n"
		   "ERR not a number: milliseconds from 0 to 60000, then optional text\r\n",
		   "lines that are not a number");
	/* SVC_LINE_MAX bytes and the LF: the longest line taken. */
	memset(line, 'x', sizeof line);
	memcpy(line, "7 ", 2);
	line[SVC_LINE_MAX] = '\n';
	line[SVC_LINE_MAX + 1] = '\0';
	run_requests("delay", line, 1, &run);
	ok(run.replies == 1 && run.out_len == SVC_LINE_MAX + 1 &&
	   !run.closed_before_eof,
	   "delay: a line of %d bytes before its LF comes back whole",
	   SVC_LINE_MAX);
	line[SVC_LINE_MAX] = 'x';
	run_requests("delay", line, 1, &run);
	ok(run.closed_before_eof,
	   "delay: one byte more without an LF closes the connection");
	is_mem(run.out, run.out_len, "ERR line too long\r\n", 19,
	       "... after ERR line too long");
	run_requests("delay", "12 partial", 2, &run);
	ok(run.out_len == 0 && run.closing,
	   "delay: a half-close after a partial line closes without a reply");
}

int main(void)
{
	test_table();
	test_stream_service("upper");
	test_stream_service("echo");
	test_stream_service("discard");
	test_upper_all_bytes();
	test_chargen();
	test_stamp();
	test_time();
	test_daytime();
	test_close_after_flush("stamp", true, true);
	test_close_after_flush("daytime", true, true);
	test_close_after_flush("time", true, true);
	test_close_after_flush("upper", false, true);
	test_close_after_flush("echo", false, true);
	test_close_after_flush("discard", false, true);
	test_close_after_flush("chargen", false, false);
	test_close_after_flush("delay", false, true);
	test_close_after_flush("work", false, true);
	test_producers();
	test_session_reuse();
	test_work();
	test_delay();
	return done_testing();
}
