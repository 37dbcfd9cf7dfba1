/* fuzz_services.c -- libFuzzer target for the services (src/services.c).
 *
 * A service must not care how the engine slices the stream: the bytes a
 * client gets may not depend on how its input arrived or on how much room
 * the output had. The fuzzer runs one session with everything at once
 * and a second with the same input in random pieces and with random room,
 * and traps when the two differ in any byte. It also checks what each
 * service must produce (upper raises a-z, echo echoes, chargen's ring,
 * the greetings of stamp, daytime and time) and that no hook writes past
 * the room it was given (every buffer is allocated to its exact size, so
 * AddressSanitizer sees an overrun).
 *
 * Input: byte 0 picks the service, bytes 1-8 are the clock (`now`), bytes
 * 9-12 seed the slicing, bytes 13-14 how much (up to 16 KiB) a producer is
 * asked to fill, byte 15 how many times (1-16) the client sends the rest,
 * so that streams longer than the engines' 16 KiB buffers are cheap to
 * reach.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "services/service.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 16
#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_services: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	__builtin_trap(); } } while (0)

/* What one session sent: greeting, replies to input, then fill output. */
struct transcript {
	unsigned char greeting[SVC_GREETING_MAX];
	size_t greeting_len;
	unsigned char *out;	/* replies to input, out_cap bytes */
	size_t out_len, out_cap;
	unsigned char *fill;	/* producer output */
	size_t fill_len;
	bool close_after_eof;
};

/* xorshift32: the slicing is a function of the input alone. */
static uint32_t next(uint32_t *state)
{
	uint32_t x = *state ? *state : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* Mostly small sizes, sometimes large ones: engines read into whatever
 * room is left in a 16 KiB buffer. */
static size_t random_size(uint32_t *state)
{
	uint32_t r = next(state);

	switch (r & 3) {
	case 0: return 1;
	case 1: return 1 + (r >> 8) % 8;
	case 2: return 1 + (r >> 8) % 256;
	default: return 1 + (r >> 8) % 16384;
	}
}

static size_t greet(struct svc_session *s, const struct service *svc,
		    time_t now, struct transcript *t)
{
	unsigned char *buf = malloc(SVC_GREETING_MAX);
	size_t n;

	CHECK(buf);
	n = svc_open(s, svc, now, buf);
	CHECK(n <= SVC_GREETING_MAX);
	CHECK(s->service == svc);
	memcpy(t->greeting, buf, n);
	t->greeting_len = n;
	free(buf);
	return n;
}

/* n more bytes of replies to input. t->out grows as they come: a request
 * service's reply may be many times its line ("ERR ..." for a bare LF). */
static void append_out(struct transcript *t, const unsigned char *bytes,
		       size_t n)
{
	if (n > t->out_cap - t->out_len) {
		t->out_cap = 2 * (t->out_len + n);
		t->out = realloc(t->out, t->out_cap);
		CHECK(t->out);
	}
	memcpy(t->out + t->out_len, bytes, n);
	t->out_len += n;
}

/* A request service: offered `len` bytes as an engine does, a line at a
 * time, each reply appended to t->out. Returns how much was taken: less than len only
 * once the service closes. */
static size_t feed_request(struct svc_session *s, const uint8_t *data,
			   size_t len, struct transcript *t)
{
	size_t at = 0;

	while (at < len && !s->close_after_flush) {
		size_t took = svc_take(s, data + at, len - at, 0);

		CHECK(took <= len - at);
		at += took;
		if (svc_need(s) != SVC_INPUT) {
			const unsigned char *reply;
			size_t n = svc_reply(s, &reply);

			CHECK(n > 0 && n <= SVC_REPLY_MAX && reply[n - 1] == '\n');
			CHECK(svc_reply(s, &reply) == n);	/* held until replied */
			append_out(t, reply, n);
			svc_replied(s);
		} else if (took == 0) {
			break;
		}
	}
	return at;
}

/* Hand `len` bytes to the service in a buffer of exactly that size; append
 * the prefix it returns to t->out. */
static void feed(struct svc_session *s, const uint8_t *data, size_t len,
		 struct transcript *t)
{
	unsigned char *buf;
	size_t n;

	if (svc_is_request(s)) {
		feed_request(s, data, len, t);
		return;
	}
	buf = malloc(len ? len : 1);
	CHECK(buf);
	memcpy(buf, data, len);
	n = svc_input(s, buf, len);
	CHECK(n <= len);
	append_out(t, buf, n);
	free(buf);
}

/* Ask a producer for `room` bytes in a buffer of exactly that size. */
static size_t produce(struct svc_session *s, size_t room, struct transcript *t)
{
	unsigned char *buf = malloc(room);
	size_t n;

	CHECK(buf);
	n = svc_fill(s, buf, room);
	CHECK(n <= room);
	memcpy(t->fill + t->fill_len, buf, n);
	t->fill_len += n;
	free(buf);
	return n;
}

/* The client's half-close, then the connection's end. */
static void end_session(struct svc_session *s, struct transcript *t)
{
	if (!svc_is_request(s) || svc_need(s) == SVC_INPUT)
		svc_eof(s);
	t->close_after_eof = s->close_after_flush;
	svc_close(s);
}

/* Everything at once: one read of the whole input, one fill of it all. */
static void whole(const struct service *svc, time_t now, const uint8_t *in,
		  size_t len, size_t fill_total, struct transcript *t)
{
	struct svc_session s;

	greet(&s, svc, now, t);
	feed(&s, in, len, t);
	if (svc_is_producer(&s) && fill_total)
		while (t->fill_len < fill_total &&
		       produce(&s, fill_total - t->fill_len, t) > 0)
			;
	end_session(&s, t);
}

/* The same in random pieces, fills interleaved with reads. */
static void sliced(const struct service *svc, time_t now, const uint8_t *in,
		   size_t len, size_t fill_total, uint32_t seed,
		   struct transcript *t)
{
	struct svc_session s;
	size_t at = 0;
	bool producer;

	greet(&s, svc, now, t);
	producer = svc_is_producer(&s);
	while (at < len || (producer && t->fill_len < fill_total)) {
		if (at < len && (!producer || next(&seed) & 1)) {
			size_t n = random_size(&seed);

			if (n > len - at)
				n = len - at;
			feed(&s, in + at, n, t);
			at += n;
		} else if (producer && t->fill_len < fill_total) {
			size_t room = random_size(&seed);

			if (room > fill_total - t->fill_len)
				room = fill_total - t->fill_len;
			if (produce(&s, room, t) == 0)
				break;
		}
	}
	end_session(&s, t);
}

static bool same(const struct transcript *a, const struct transcript *b)
{
	return a->greeting_len == b->greeting_len &&
	       memcmp(a->greeting, b->greeting, a->greeting_len) == 0 &&
	       a->out_len == b->out_len &&
	       memcmp(a->out, b->out, a->out_len) == 0 &&
	       a->fill_len == b->fill_len &&
	       memcmp(a->fill, b->fill, a->fill_len) == 0 &&
	       a->close_after_eof == b->close_after_eof;
}

/* ---- what each service must send, independent of services.c ---- */

static void expect_stream(const char *name, const uint8_t *in, size_t len,
			  const struct transcript *t)
{
	if (strcmp(name, "echo") == 0) {
		CHECK(t->out_len == len && memcmp(t->out, in, len) == 0);
	} else if (strcmp(name, "upper") == 0) {
		CHECK(t->out_len == len);
		for (size_t i = 0; i < len; i++)
			CHECK(t->out[i] == (in[i] >= 'a' && in[i] <= 'z'
					    ? in[i] - 'a' + 'A' : in[i]));
	} else if (strcmp(name, "delay") != 0 && strcmp(name, "work") != 0) {
		CHECK(t->out_len == 0);	/* every other stream swallows input */
	}
}

/* work's N at most 4 digits (a line's leading digits past the fourth
 * become 'x', a line that is not a number): its cost grows with N, and
 * its range is the unit tests' business. */
static void keep_work_cheap(uint8_t *in, size_t len)
{
	size_t digits = 0;
	bool line_start = true;

	for (size_t i = 0; i < len; i++) {
		if (line_start && in[i] >= '0' && in[i] <= '9') {
			if (++digits > 4)
				in[i] = 'x';
			continue;
		}
		line_start = in[i] == '\n';
		digits = 0;
	}
}

/* RFC 864 as inetd does it: line k is 72 characters of the printable
 * ring starting at k mod 95, then CRLF. */
static void expect_chargen(const struct transcript *t, size_t fill_total)
{
	CHECK(t->fill_len == fill_total);
	for (size_t p = 0; p < t->fill_len; p++) {
		size_t line = p / 74, col = p % 74;
		unsigned char want = col < 72 ? (unsigned char)(' ' + (line + col) % 95)
				   : col == 72 ? '\r' : '\n';

		CHECK(t->fill[p] == want);
	}
}

static void expect_greeting(const char *name, time_t now,
			    const struct transcript *t)
{
	char want[SVC_GREETING_MAX + 64];

	if (strcmp(name, "stamp") == 0) {
		snprintf(want, sizeof want, "%lld\r\n", (long long)now);
		CHECK(t->greeting_len == strlen(want) &&
		      memcmp(t->greeting, want, t->greeting_len) == 0);
	} else if (strcmp(name, "time") == 0) {
		uint32_t v = (uint32_t)((uint64_t)now + 2208988800u);

		CHECK(t->greeting_len == 4);
		CHECK(t->greeting[0] == (v >> 24 & 0xff) &&
		      t->greeting[1] == (v >> 16 & 0xff) &&
		      t->greeting[2] == (v >> 8 & 0xff) &&
		      t->greeting[3] == (v & 0xff));
	} else if (strcmp(name, "daytime") == 0) {
		struct tm tm;

		/* ctime(3)'s layout, where asctime is defined (4-digit years). */
		CHECK(t->greeting_len >= 2 &&
		      memcmp(t->greeting + t->greeting_len - 2, "\r\n", 2) == 0);
		if (localtime_r(&now, &tm) && tm.tm_year >= 1000 - 1900 &&
		    tm.tm_year <= 9999 - 1900) {
			char buf[64];

			CHECK(ctime_r(&now, buf));
			CHECK(strlen(buf) == 25 && buf[24] == '\n');
			memcpy(want, buf, 24);
			memcpy(want + 24, "\r\n", 2);
			CHECK(t->greeting_len == 26 &&
			      memcmp(t->greeting, want, 26) == 0);
		}
	} else {
		CHECK(t->greeting_len == 0);
	}
}

/* Same day and clock text whatever the machine's zone. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n_services = 0, len, fill_total, reps;
	const struct service *svc;
	struct transcript a = { 0 }, b = { 0 };
	uint64_t clock = 0;
	uint32_t seed = 0;
	time_t now;
	uint8_t *in;

	if (size < HEADER)
		return -1;	/* not worth keeping in the corpus */
	while (services[n_services])
		n_services++;
	svc = services[data[0] % n_services];
	for (int i = 0; i < 8; i++)
		clock = clock << 8 | data[1 + i];
	now = (time_t)(int64_t)clock;
	for (int i = 0; i < 4; i++)
		seed = seed << 8 | data[9 + i];
	fill_total = ((size_t)data[13] << 8 | data[14]) & 0x3fff;	/* 2+ cycles */
	reps = 1 + data[15] % 16;
	len = (size - HEADER) * reps;
	in = malloc(len + 1);
	CHECK(in);
	for (size_t i = 0; i < reps; i++)
		memcpy(in + i * (size - HEADER), data + HEADER, size - HEADER);

	CHECK(svc_find(svc->name) == svc);
	if (strcmp(svc->name, "work") == 0)
		keep_work_cheap(in, len);
	a.out_cap = b.out_cap = len + 1;	/* grown for long replies */
	a.out = malloc(a.out_cap);
	b.out = malloc(b.out_cap);
	a.fill = malloc(fill_total + 1);
	b.fill = malloc(fill_total + 1);
	CHECK(a.out && b.out && a.fill && b.fill);

	whole(svc, now, in, len, fill_total, &a);
	sliced(svc, now, in, len, fill_total, seed, &b);
	if (!same(&a, &b)) {
		fprintf(stderr, "fuzz_services: %s: whole and sliced sessions differ "
			"(greeting %zu/%zu, out %zu/%zu, fill %zu/%zu, close %d/%d)\n",
			svc->name, a.greeting_len, b.greeting_len, a.out_len,
			b.out_len, a.fill_len, b.fill_len, a.close_after_eof,
			b.close_after_eof);
		__builtin_trap();
	}

	expect_stream(svc->name, in, len, &a);
	expect_greeting(svc->name, now, &a);
	if (strcmp(svc->name, "chargen") == 0) {
		expect_chargen(&a, fill_total);
		CHECK(!a.close_after_eof);	/* chargen sends on after a half-close */
	} else {
		CHECK(a.fill_len == 0);
		CHECK(a.close_after_eof);	/* everyone else closes on EOF */
	}

	free(in);
	free(a.out);
	free(b.out);
	free(a.fill);
	free(b.fill);
	return 0;
}
