/* conform.c -- the promises of muxd.1 (SERVICES, SIGNALS, EXIT STATUS)
 * against one engine.
 *
 * usage: conform ENGINE [extra muxd args...]
 *
 * Which cases apply is read from the engine's --list-engines line, never
 * from its name: an engine tagged [serial] serves one connection at a
 * time by design, so the cases that need two connections served at once
 * are run one client after another, or skipped with the reason. An
 * engine tagged [pool] may keep descriptors per worker (a dynamic pool need
 * not shrink back to its start-up size), so its resource case allows one
 * per worker beyond the start-up count, but no TCP socket beyond it.
 *
 * Clients never block the test itself: bulk transfers run as flows
 * (flow.c), non-blocking sockets in one poll loop, so a server that
 * deadlocks fails a bounded case instead of hanging the run.
 */
#include "harness.h"
#include "flow.h"
#include "oracle.h"
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024
#define MIB (1024 * 1024)
#define PATTERN_LEN (4 * MIB)
#define CLIENTS 50		/* at most FLOW_MAX */
#define CLIENT_BYTES (200 * KIB)
#define CHARGEN_CHECK (2 * 7030)
#define CHARGEN_LONG MIB
#define STALL_CAP (128 * MIB)	/* more than loopback's socket buffers hold */
/* "Promptly": an answer a misbehaving client must not delay. What delays
 * it lasts until the case ends, so any bound tells them apart; this one
 * leaves a loaded machine room. */
#define PROMPT_MS 3000
/* For what must happen at some point: only a hung server takes this long,
 * so it is never the bound a case asserts. */
#define SAFETY_MS 30000

static const char *const all_services[] = {
	"stamp", "upper", "echo", "discard", "chargen", "daytime", "time", NULL,
};
static const char *const no_options[] = { NULL };

static const char *engine;
static const char *const *extra_args;	/* NULL-ended, from our argv */
static bool serial;			/* engine tagged [serial] */
static bool pool;			/* engine tagged [pool] */
static bool processes;			/* engine tagged [processes] */
static bool readiness;			/* engine tagged [readiness] */
static bool completion;			/* engine tagged [completion] */
static unsigned char *pattern;		/* PATTERN_LEN pseudo-random bytes */
static unsigned char *pattern_upper;	/* the same through upper */

/* ---- test data ---- */

static void make_patterns(void)
{
	uint64_t state = 0x6d757864;	/* "muxd" */

	pattern = malloc(PATTERN_LEN);
	pattern_upper = malloc(PATTERN_LEN);
	if (!pattern || !pattern_upper)
		bail_out("out of memory");
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = (unsigned char)(prng_next(&state) >> 56);
	upcase_ascii(pattern_upper, pattern, PATTERN_LEN);
}

/* ---- starting servers ---- */

/* --engine ENGINE, the caller's extra args, case options, listeners. */
static int start_server(struct muxd_server *srv, const char *const services[],
			const char *const options[])
{
	return muxd_start_engine(srv, engine, extra_args, options, services);
}

static void ok_flow(bool passed, const struct flow *f, const char *name)
{
	if (!ok(passed, "%s", name))
		diag("%s", f->why);
}

/* ---- small blocking helpers ---- */

/* Connect, read the whole greeting until EOF; returns its length. */
static size_t fetch_greeting(unsigned short port, char *buf, size_t size,
			     long timeout_ms, enum read_end *end)
{
	int fd = tcp_connect(port);
	size_t n = 0;

	*end = READ_ERROR;
	if (fd == -1) {
		diag("connect to port %u: %s", port, strerror(errno));
	} else {
		n = read_until_eof(fd, buf, size - 1, timeout_ms, end);
		if (*end == READ_ERROR)
			diag("reading the greeting: %s", strerror(errno));
		close(fd);
	}
	buf[n] = '\0';
	return n;
}

static void diag_greeting(const char *buf, size_t n, enum read_end end)
{
	char text[256];

	diag("got %zu bytes \"%s\", then %s", n,
	     tap_escape(text, sizeof text, buf, n), describe_read_end(end));
}

/* Send until the socket takes no more for 200 ms (or cap bytes went):
 * the server has stopped reading. Returns the bytes sent. */
static size_t push_until_blocked(int fd, size_t cap)
{
	size_t sent = 0;

	set_nonblocking(fd);
	while (sent < cap) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		size_t at = sent % (PATTERN_LEN - 64 * KIB);
		ssize_t n = send(fd, pattern + at, 64 * KIB, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			sent += (size_t)n;
		else if (errno != EAGAIN && errno != EINTR)
			break;
		else if (poll(&p, 1, 200) == 0)
			break;
	}
	return sent;
}

/* ---- the service formats ---- */

static void case_stamp(unsigned short port)
{
	char buf[64];
	enum read_end end;
	size_t n = fetch_greeting(port, buf, sizeof buf, SAFETY_MS, &end);
	size_t digits = strspn(buf, "0123456789");
	bool shaped = end == READ_EOF && digits > 0 && digits < 20 &&
		      n == digits + 2 && strcmp(buf + digits, "\r\n") == 0;
	long long diff = atoll(buf) - (long long)time(NULL);

	if (!ok(shaped, "stamp: decimal digits, CRLF, then EOF"))
		diag_greeting(buf, n, end);
	if (!ok(shaped && diff >= -5 && diff <= 5, "stamp: within 5 s of the test's clock"))
		diag("stamp %s is %lld s off", buf, diff);
}

/* ctime(3) of some second within 5 s of now, in the local zone that
 * muxd inherited from us. */
static bool matches_recent_ctime(const char *text)
{
	time_t now = time(NULL);

	for (time_t t = now - 5; t <= now + 5; t++) {
		char expect[32];

		if (ctime_r(&t, expect) && strncmp(text, expect, 24) == 0)
			return true;
	}
	return false;
}

static void case_daytime(unsigned short port)
{
	char buf[64], now_text[32];
	time_t now = time(NULL);
	enum read_end end;
	size_t n = fetch_greeting(port, buf, sizeof buf, SAFETY_MS, &end);
	bool shaped = end == READ_EOF && n == 26 && strcmp(buf + 24, "\r\n") == 0;

	if (!ok(shaped && matches_recent_ctime(buf),
		"daytime: the 24 characters of ctime(3) for now, CRLF, then EOF")) {
		diag_greeting(buf, n, end);
		diag("test's ctime: %.24s", ctime_r(&now, now_text));
	}
}

static void case_time(unsigned short port)
{
	unsigned char buf[16];
	enum read_end end;
	size_t n = fetch_greeting(port, (char *)buf, sizeof buf, SAFETY_MS, &end);
	uint32_t got = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
		       (uint32_t)buf[2] << 8 | buf[3];
	/* RFC 868 counts from 1900, modulo 2^32. */
	uint32_t want = (uint32_t)((uint64_t)time(NULL) + 2208988800u);
	int32_t diff = (int32_t)(got - want);

	if (!ok(end == READ_EOF && n == 4, "time: exactly 4 bytes, then EOF"))
		diag_greeting((char *)buf, n, end);
	if (!ok(n == 4 && diff >= -5 && diff <= 5,
		"time: big-endian seconds since 1900 within 5 s"))
		diag("got %u, expected about %u", (unsigned)got, (unsigned)want);
}

/* chargen throws its input away as it comes: a client may send 8 MiB
 * before reading anything and is not blocked (the contract's pipelining
 * rule), then reads the ring from its start. */
static void case_chargen_input(unsigned short port)
{
	size_t size = 8 * MIB, sent = 0, n = 0;
	unsigned char *junk = calloc(1, size), got[CHARGEN_CHECK], want[CHARGEN_CHECK];
	enum read_end end = READ_ERROR;
	int fd = tcp_connect(port);

	if (!junk)
		bail_out("out of memory");
	/* Only a server that stops reading its input blocks the sender for
	 * good; when the kernel is short of socket memory, 8 MiB through
	 * small buffers and delayed ACKs may take seconds. */
	if (fd != -1) {
		sent = write_all(fd, junk, size, SAFETY_MS);
		n = read_until_eof(fd, got, sizeof got, SAFETY_MS, &end);
		close(fd);
	}
	expected_chargen(want, sizeof want);
	if (!ok(sent == size && n == sizeof got && memcmp(got, want, n) == 0,
		"chargen: 8 MiB sent before reading are swallowed, then the ring comes"))
		diag("sent %zu of %zu, then read %zu bytes (%s)", sent, size, n,
		     describe_read_end(end));
	free(junk);
}

/* The first two cycles exactly, then a long read: chargen must keep
 * producing for as long as the client reads. */
static void case_chargen(unsigned short port)
{
	unsigned char *got = malloc(CHARGEN_LONG), *want = malloc(CHARGEN_LONG);
	enum read_end end = READ_ERROR;
	size_t n = 0;
	int fd = tcp_connect(port);

	if (!got || !want)
		bail_out("out of memory");
	expected_chargen(want, CHARGEN_LONG);
	if (fd != -1) {
		n = read_until_eof(fd, got, CHARGEN_LONG, SAFETY_MS, &end);
		close(fd);
	}
	if (!is_mem(got, n < CHARGEN_CHECK ? n : CHARGEN_CHECK, want, CHARGEN_CHECK,
		    "chargen: first 2 x 7030 bytes are the RFC 864 ring"))
		diag("read ended with: %s", fd == -1 ? strerror(errno)
						      : describe_read_end(end));
	if (!is_mem(got, n, want, CHARGEN_LONG,
		    "chargen: streams on for 1 MiB while the client reads"))
		diag("read ended with: %s", fd == -1 ? strerror(errno)
						      : describe_read_end(end));
	free(got);
	free(want);
}

static void case_discard_echo(unsigned short discard_port, unsigned short echo_port)
{
	struct flow f;

	ok_flow(flow_exchange(discard_port, pattern, 64 * KIB, pattern, 0, true, SAFETY_MS, &f),
		&f, "discard: 64 KiB in, half-close, EOF with nothing back");
	ok_flow(flow_exchange(echo_port, pattern, 100 * KIB, pattern, 100 * KIB, true,
			 SAFETY_MS, &f),
		&f, "echo: 100 KiB of every byte value come back identical");
}

/* Data and FIN back to back, again and again, in sizes from one byte to
 * more than a buffer: the FIN often lands in the same receive queue as
 * the data, and an engine that takes a short read as "drained" must still
 * see it (epoll-et learns of it from EPOLLRDHUP) or the client waits for
 * ever. Each answer is checked in full. */
#define DATA_FIN_ROUNDS 200

static void case_data_then_fin(unsigned short port)
{
	static const size_t sizes[] = { 1, 5, 100, 1460, 4096, 70000 };
	static unsigned char got[80000];
	int failures = 0;
	char why[160] = "";

	for (int i = 0; i < DATA_FIN_ROUNDS; i++) {
		size_t len = sizes[i % (sizeof sizes / sizeof sizes[0])];
		const unsigned char *in = pattern + (size_t)i * 7;
		int fd = tcp_connect(port);
		enum read_end end = READ_ERROR;
		size_t n = 0;

		if (fd >= 0 && write_all(fd, in, len, 5000) == len &&
		    shutdown(fd, SHUT_WR) == 0)
			n = read_until_eof(fd, got, sizeof got, 10000, &end);
		if (fd >= 0)
			close(fd);
		if (end != READ_EOF || n != len ||
		    memcmp(got, pattern_upper + (size_t)i * 7, len) != 0) {
			if (!failures++)
				snprintf(why, sizeof why, "round %d, %zu bytes: %zu back, %s",
					 i, len, n, describe_read_end(end));
		}
	}
	if (!ok(failures == 0, "upper: data then FIN at once, %d times, 1 B to "
		"68 KiB: every answer whole, then EOF", DATA_FIN_ROUNDS))
		diag("%d failed; the first: %s", failures, why);
}

static void case_upper_all_bytes(unsigned short port)
{
	unsigned char in[16 * 256], want[sizeof in];
	struct flow f;

	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)i;
	upcase_ascii(want, in, sizeof in);
	ok_flow(flow_exchange(port, in, sizeof in, want, sizeof want, true, SAFETY_MS, &f),
		&f, "upper: all 256 byte values, only a-z changed");
}

/* ---- bulk, pipelining, half-close ---- */

static void case_pipelined(unsigned short upper_port)
{
	struct flow f;
	bool passed = flow_exchange(upper_port, pattern, PATTERN_LEN, pattern_upper,
			       PATTERN_LEN, false, SAFETY_MS, &f);

	ok_flow(passed, &f, "upper: 4 MiB pipelined before reading all come back");
	diag("the server took %zu bytes before the client read anything",
	     f.sent_before_read);
}

static void case_half_close(unsigned short echo_port)
{
	struct flow f;

	ok_flow(flow_exchange(echo_port, pattern, MIB, pattern, MIB, false, SAFETY_MS, &f),
		&f, "echo: 1 MiB, half-close, exactly 1 MiB back then EOF");
}

static void client_data(int i, unsigned short echo_port,
			unsigned short upper_port, unsigned short *port,
			const unsigned char **expect)
{
	size_t at = (size_t)i * 40503 % (PATTERN_LEN - CLIENT_BYTES);

	*port = i % 2 ? upper_port : echo_port;
	*expect = (i % 2 ? pattern_upper : pattern) + at;
}

static const unsigned char *client_out(int i)
{
	return pattern + (size_t)i * 40503 % (PATTERN_LEN - CLIENT_BYTES);
}

static void case_many_clients(unsigned short echo_port, unsigned short upper_port)
{
	struct flow flows[CLIENTS];
	int failed = 0;

	for (int i = 0; i < CLIENTS; i++) {
		unsigned short port;
		const unsigned char *expect;

		client_data(i, echo_port, upper_port, &port, &expect);
		if (serial) {
			flow_exchange(port, client_out(i), CLIENT_BYTES, expect,
				 CLIENT_BYTES, true, SAFETY_MS, &flows[i]);
			continue;
		}
		flow_init(&flows[i], tcp_connect(port), client_out(i),
			  CLIENT_BYTES, expect, CLIENT_BYTES, true);
	}
	if (!serial)
		run_flows(flows, CLIENTS, SAFETY_MS);
	for (int i = 0; i < CLIENTS; i++) {
		if (flows[i].failed && failed++ < 5)
			diag("client %d: %s", i, flows[i].why);
		if (!serial && flows[i].fd != -1)
			close(flows[i].fd);
	}
	ok(failed == 0, "%d clients x 200 KiB on echo and upper, %s: every byte verified",
	   CLIENTS, serial ? "one after another ([serial])" : "concurrently");
}

/* More connections ready at once than a readiness engine takes from one
 * wait (512): every one must still be served, turn by turn, none left to
 * starve behind those the kernel happens to list first. A completion
 * engine gets the same case: its connections share receive buffers. Each client keeps
 * upper's input full for FAIR_MS, reading everything back, so that all of
 * them are readable at every wait. */
#define FAIR_CLIENTS 700
#define FAIR_MS 1500	/* at least; on until each got a byte back (a starved
			 * one never would while the others stream) */
#define FAIR_AHEAD (64 * 1024)	/* bytes in flight per client */

struct fair_client {
	int fd;
	size_t sent, received;
	bool failed;
};

static int fair_open(unsigned short port, struct fair_client *c,
		     struct pollfd *p)
{
	int n = 0;

	for (; n < FAIR_CLIENTS; n++) {
		c[n] = (struct fair_client){ .fd = tcp_connect(port) };
		if (c[n].fd == -1)
			break;
		set_nonblocking(c[n].fd);
		p[n] = (struct pollfd){ c[n].fd, POLLIN | POLLOUT, 0 };
	}
	return n;
}

/* One client's turn: read what came back (all "A"), then top up. */
static void fair_turn(struct fair_client *c, struct pollfd *p)
{
	static unsigned char buf[16 * 1024], out[16 * 1024];
	ssize_t n;

	if (!out[0])
		memset(out, 'a', sizeof out);
	while ((n = recv(c->fd, buf, sizeof buf, 0)) > 0) {
		c->received += (size_t)n;
		if (buf[0] != 'A' || buf[n - 1] != 'A')
			c->failed = true;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		c->failed = true;
	while (!c->failed && c->sent - c->received < FAIR_AHEAD) {
		size_t room = FAIR_AHEAD - (c->sent - c->received);

		n = send(c->fd, out, room < sizeof out ? room : sizeof out,
			 MSG_NOSIGNAL);
		if (n <= 0)
			break;
		c->sent += (size_t)n;
	}
	if (c->failed)
		p->fd = -1;
}

/* Whether a client still waits for its first byte back. */
static bool fair_starved(const struct fair_client *c, int n)
{
	for (int i = 0; i < n; i++)
		if (!c[i].failed && c[i].received == 0)
			return true;
	return false;
}

static void case_fair_share(unsigned short upper_port)
{
	static struct fair_client c[FAIR_CLIENTS];
	static struct pollfd p[FAIR_CLIENTS];
	long long end, give_up;
	int n, failed = 0, worst = 0;

	if (!readiness && !completion) {
		skip(1, "%d clients at once: for [readiness] and [completion] engines",
		     FAIR_CLIENTS);
		return;
	}
	n = fair_open(upper_port, c, p);
	end = now_ms() + scaled_ms(FAIR_MS);
	give_up = now_ms() + scaled_ms(SAFETY_MS);
	while (n == FAIR_CLIENTS && now_ms() < give_up &&
	       (now_ms() < end || fair_starved(c, n)))
		if (poll(p, (nfds_t)n, 100) > 0)
			for (int i = 0; i < n; i++)
				if (p[i].revents)
					fair_turn(&c[i], &p[i]);
	for (int i = 0; i < n; i++) {
		failed += c[i].failed;
		if (c[i].received < c[worst].received)
			worst = i;
		close(c[i].fd);
	}
	if (!ok(n == FAIR_CLIENTS && failed == 0 && c[worst].received > 0,
		"%d clients streaming to upper at once for %.1f s: every one is "
		"served", FAIR_CLIENTS, FAIR_MS / 1000.0))
		diag("%d connected, %d failed; client %d got back the least: %zu "
		     "bytes", n, failed, worst, c[worst].received);
	else
		diag("the least served client got %zu bytes back", c[worst].received);
}

/* ---- misbehaving clients ---- */

/* A client that pushes data at upper without reading, then resets. */
static void reset_client(unsigned short upper_port)
{
	int fd = tcp_connect(upper_port);

	if (fd == -1) {
		diag("resetting client could not connect: %s", strerror(errno));
		return;
	}
	diag("resetting client sent %zu bytes before the RST",
	     push_until_blocked(fd, STALL_CAP));
	close_with_reset(fd);
	sleep_ms(100);
}

/* Client A is mid-exchange on echo (64 KiB sent, 32 KiB back) when
 * another client resets; A must then finish undisturbed. */
static void reset_beside_exchange(unsigned short echo_port,
				  unsigned short upper_port, struct flow *f)
{
	size_t total = 256 * KIB, first = 64 * KIB, half = 32 * KIB;
	unsigned char back[32 * KIB];
	enum read_end end;
	int fd = tcp_connect(echo_port);

	flow_init(f, fd, pattern, total, pattern, total, true);
	if (f->failed)
		return;
	if (write_all(fd, pattern, first, 3000) != first ||
	    read_until_eof(fd, back, half, SAFETY_MS, &end) != half ||
	    memcmp(back, pattern, half) != 0)
		flow_fail(f, "first 64 KiB / 32 KiB back failed before the reset");
	f->sent = first;
	f->got = half;
	reset_client(upper_port);
	run_flows(f, 1, SAFETY_MS);
	close(fd);
}

static void case_reset(struct muxd_server *srv, unsigned short echo_port,
		       unsigned short upper_port)
{
	struct flow f;
	bool passed;

	if (serial) {
		reset_client(upper_port);
		passed = flow_exchange(echo_port, pattern, 256 * KIB, pattern,
				  256 * KIB, true, SAFETY_MS, &f);
		ok_flow(passed, &f, "after a client reset mid-stream, the next client "
			"is served in full ([serial]: one after another)");
	} else {
		reset_beside_exchange(echo_port, upper_port, &f);
		ok_flow(!f.failed, &f, "a client reset mid-stream does not disturb "
			"another client mid-exchange");
	}
	passed = flow_exchange(upper_port, pattern, 10 * KIB, pattern_upper, 10 * KIB,
			  true, SAFETY_MS, &f);
	ok_flow(passed, &f, "the server keeps serving new clients after the reset");
	if (!muxd_alive(srv)) {
		char why[64];

		diag("muxd is gone: %s", describe_status(srv->wait_status, why, sizeof why));
	}
}

/* While one client is stalled (pipelines at upper, never reads), another
 * must get its echo within PROMPT_MS, and a silent connection must not
 * hold up a stamp client. Both stay until the end of the case, so a
 * server they delay would delay the other client for good. */
static void case_stalled(unsigned short echo_port, unsigned short upper_port,
			 unsigned short stamp_port)
{
	int stalled = tcp_connect(upper_port), other, silent;
	size_t pushed = stalled == -1 ? 0 : push_until_blocked(stalled, STALL_CAP);
	char why[256], buf[64];
	enum read_end end;
	long long start;

	if (!ok(stalled != -1 && pushed < STALL_CAP,
		"a client that never reads is pushed back (server stops reading)"))
		diag("it sent %zu bytes (%d MiB is more than the kernel buffers)",
		     pushed, STALL_CAP / MIB);
	diag("the stalled client sent %zu bytes before the server stopped reading",
	     pushed);
	if (serial) {
		skip(2, "[serial] engine serves one connection at a time by design");
		if (stalled != -1)
			close(stalled);
		return;
	}
	start = now_ms();
	other = tcp_connect(echo_port);
	if (!ok(other != -1 && round_trip(other, "ping\r\n", "ping\r\n", PROMPT_MS, why,
					  sizeof why),
		"while a client is stalled, another gets its echo within 3 s"))
		diag("%s after %lld ms", other == -1 ? strerror(errno) : why,
		     now_ms() - start);
	silent = tcp_connect(upper_port);
	start = now_ms();
	fetch_greeting(stamp_port, buf, sizeof buf, PROMPT_MS, &end);
	if (!ok(end == READ_EOF && buf[0] >= '0' && buf[0] <= '9',
		"a connected but silent client does not delay a stamp client"))
		diag("stamp: %s after %lld ms", describe_read_end(end), now_ms() - start);
	if (silent != -1)
		close(silent);
	if (other != -1)
		close(other);
	if (stalled != -1)
		close(stalled);
}

/* A client that floods discard at full speed must not starve another:
 * an edge-triggered engine, told "readable" once, must still come back to
 * the others instead of draining the flood. The flooder is a child
 * process, so the two clients really run at once. On loopback a server
 * usually reads faster than one client writes, so this checks the outcome;
 * the per-turn budget in reactor.c is what guarantees it. */
static void case_flood(unsigned short discard_port, unsigned short echo_port)
{
	char why[256] = "";
	long long worst = 0;
	bool all = true;
	pid_t flooder;
	int fd;

	if (serial) {
		skip(1, "[serial] engine serves one connection at a time by design");
		return;
	}
	flooder = fork();
	if (flooder == 0) {
		static char junk[64 * 1024];
		int sink = tcp_connect(discard_port);
		long long end = now_ms() + scaled_ms(SAFETY_MS);

		/* Until killed: an echo that waits for the flood to end fails. */
		while (sink != -1 && now_ms() < end && write(sink, junk, sizeof junk) > 0)
			continue;
		_exit(0);
	}
	sleep_ms(200);
	fd = tcp_connect(echo_port);
	for (int i = 0; i < 20 && all; i++) {
		long long start = now_ms();

		all = fd != -1 && round_trip(fd, "ping", "ping", PROMPT_MS, why, sizeof why);
		if (now_ms() - start > worst)
			worst = now_ms() - start;
	}
	if (!ok(all, "while a client floods discard, another's echoes each come back within 3 s"))
		diag("%s", fd == -1 ? strerror(errno) : why);
	diag("slowest echo during the flood: %lld ms", worst);
	if (fd != -1)
		close(fd);
	if (flooder > 0) {
		kill(flooder, SIGKILL);
		waitpid(flooder, NULL, 0);
	}
}

/* ---- resources: back to the start-up baseline ---- */

/* Descriptors a [pool] engine may hold beyond the start-up count: one per
 * worker more than it had then (--accept=handoff keeps a socket to each). */
static int pool_allowance(pid_t pid, const struct proc_counts *base)
{
	int grown = pool ? live_children(pid) - base->kids : 0;

	return grown > 0 ? grown : 0;
}

static void case_resources(struct muxd_server *srv, const struct proc_counts *base)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int fds, tcp_fds, allowance, threads, zombies;
	bool fds_ok;

	for (;;) {
		fds = proc_fd_count(srv->pid);
		tcp_fds = proc_tcp_fd_count(srv->pid);
		allowance = pool_allowance(srv->pid, base);
		threads = proc_thread_count(srv->pid);
		zombies = zombie_children(srv->pid);
		fds_ok = fds >= 0 && fds <= base->fds + allowance &&
			 tcp_fds <= base->tcp_fds;
		if ((fds_ok && threads <= base->threads && zombies == 0) ||
		    now_ms() >= deadline)
			break;
		sleep_ms(50);
	}
	if (!ok(fds_ok, "open fds back to the start-up baseline once clients are gone")) {
		diag("%d open (%d TCP), %d after start-up (%d TCP)", fds, tcp_fds,
		     base->fds, base->tcp_fds);
		if (pool)
			diag("[pool]: %d worker(s) now, %d after start-up: %d more allowed",
			     live_children(srv->pid), base->kids, allowance);
		diag_proc_fds(srv->pid);
	}
	if (!ok(threads >= 0 && threads <= base->threads,
		"threads back to the start-up baseline once clients are gone"))
		diag("%d threads, %d after start-up", threads, base->threads);
	if (!ok(zombies == 0, "no zombie children once clients are gone"))
		diag("%d zombie children", zombies);
}

/* ---- stopping: exit 0, nothing left behind ---- */

/* With nothing open, SIGTERM must end muxd at once: well before the
 * default grace of 5 s it would sit out otherwise. If it does not, wait
 * the grace out to learn how it ends after all. */
static void stop_and_check(struct muxd_server *srv, const char *label)
{
	struct family fam;
	bool alive = muxd_alive(srv), prompt;
	long long start = now_ms();
	char why[64];

	note_family(srv, &fam);
	if (alive)
		kill(srv->pid, SIGTERM);
	prompt = alive && muxd_wait(srv, 3000) == 0;
	if (!prompt)
		muxd_stop(srv, 8000);
	if (!ok(prompt && exit_code_of(srv->wait_status) == 0,
		"%s: SIGTERM with no connection open: exits 0 within 3 s", label))
		diag("%s with %s after %lld ms", alive ? "ended" : "had already ended",
		     describe_status(srv->wait_status, why, sizeof why),
		     now_ms() - start);
	muxd_stop(srv, 0);
	check_nothing_left(&fam, label);
}

/* ---- the main server: every service, every data case ---- */

static void cases_on_main_server(void)
{
	struct muxd_server srv;
	struct proc_counts base;
	unsigned short port[7];
	bool all_ports = true;

	if (start_server(&srv, all_services, no_options) != 0)
		bail_out("muxd --engine %s did not start", engine);
	for (int i = 0; i < 7; i++)
		all_ports &= (port[i] = muxd_port(&srv, all_services[i])) != 0;
	if (!ok(all_ports, "a listening line with a port for each of the seven services"))
		bail_out("cannot go on without every service's port");
	{	/* warm-up: one stamp connection served and gone, so that
		 * run-time helpers started lazily (ThreadSanitizer's background
		 * thread on the first pthread_create) are in the baseline */
		char buf[64];
		enum read_end end;
		int fd = tcp_connect(port[0]);

		if (fd >= 0) {
			read_until_eof(fd, buf, sizeof buf, SAFETY_MS, &end);
			close(fd);
		}
	}
	proc_counts_settled(srv.pid, SAFETY_MS, &base);
	diag("after start-up: %d fds (%d TCP), %d threads, %d children", base.fds,
	     base.tcp_fds, base.threads, base.kids);

	case_stamp(port[0]);
	case_daytime(port[5]);
	case_time(port[6]);
	case_chargen(port[4]);
	case_chargen_input(port[4]);
	case_discard_echo(port[3], port[2]);
	case_upper_all_bytes(port[1]);
	case_data_then_fin(port[1]);
	case_pipelined(port[1]);
	case_half_close(port[2]);
	case_many_clients(port[2], port[1]);
	case_fair_share(port[1]);
	case_reset(&srv, port[2], port[1]);
	case_stalled(port[2], port[1], port[0]);
	case_flood(port[3], port[2]);
	case_resources(&srv, &base);
	stop_and_check(&srv, "main server");
}

/* ---- servers of their own: idle timeout, SIGTERM, max-conns ---- */

static const char *const echo_only[] = { "echo", NULL };
static const char *const upper_only[] = { "upper", NULL };

/* Send a byte every 100 ms and expect it back, for duration_ms: with
 * --idle-timeout 1 that leaves the test 900 ms to be scheduled late. */
static bool keep_moving(int fd, long duration_ms, char *why, size_t why_size)
{
	long long start = now_ms();

	while (now_ms() - start < duration_ms) {
		if (!round_trip(fd, "m", "m", 1000, why, why_size))
			return false;
		sleep_ms(100);
	}
	return true;
}

static void case_idle_timeout(void)
{
	const char *const options[] = { "--idle-timeout", "1", NULL };
	struct muxd_server srv;
	char buf[16], why[256] = "connect failed";
	enum read_end end = READ_ERROR;
	long long start, took = -1;
	int fd;

	if (!ok(start_server(&srv, echo_only, options) == 0, "--idle-timeout 1: starts")) {
		skip(4, "no server");
		return;
	}
	fd = tcp_connect(muxd_port(&srv, "echo"));
	start = now_ms();
	if (fd != -1) {
		read_until_eof(fd, buf, sizeof buf, 8000, &end);
		took = now_ms() - start;
		close(fd);
	}
	if (!ok(end == READ_EOF && took >= 900 && took <= scaled_ms(5000),
		"--idle-timeout 1: an idle connection is closed after 1-5 s"))
		diag("%s after %lld ms", describe_read_end(end), took);
	fd = tcp_connect(muxd_port(&srv, "echo"));
	if (!ok(fd != -1 && keep_moving(fd, 2500, why, sizeof why),
		"--idle-timeout 1: a byte each 100 ms keeps a connection open for 2.5 s"))
		diag("%s", why);
	if (fd != -1)
		close(fd);
	stop_and_check(&srv, "--idle-timeout 1");
}

/* After SIGTERM the listener must go at once: a new connection is
 * refused by the kernel, not taken into a queue that nobody will accept
 * from (its handshake completed, then reset). Waiting for the port to
 * leave LISTEN tells when muxd has taken the signal, however loaded the
 * machine; a listener that stays says so after PROMPT_MS. */
static bool refused_after_sigterm(unsigned short port, char *how, size_t size)
{
	long long start = now_ms();
	int fd;

	while (port_listening(port) && now_ms() - start < scaled_ms(PROMPT_MS))
		sleep_ms(10);
	fd = tcp_connect(port);
	if (fd == -1) {
		snprintf(how, size, "connect: %s", strerror(errno));
		return errno == ECONNREFUSED;
	}
	close(fd);
	snprintf(how, size, "connected; the port %s listening %lld ms after SIGTERM",
		 port_listening(port) ? "was still" : "had stopped",
		 now_ms() - start);
	return false;
}

/* A new upper connection, served "abc" -> "ABC"; -1 otherwise. */
static int connect_and_greet(struct muxd_server *srv, char *why, size_t size)
{
	return served_connection(muxd_port(srv, "upper"), SAFETY_MS, why, size);
}

/* SIGTERM with a connection open that then finishes: the listener goes
 * at once, the open connection is served on, and muxd exits 0 once it is
 * done, without sitting out the rest of the grace period (10 s, so that
 * the bound on "once it is done" has room for a loaded machine). */
static void case_sigterm_finish(void)
{
	const char *const options[] = { "--grace", "10", NULL };
	struct muxd_server srv;
	struct family fam;
	char why[256] = "", buf[8];
	enum read_end end;
	long long closed_at;
	int fd;

	if (start_server(&srv, upper_only, options) != 0 ||
	    (fd = connect_and_greet(&srv, why, sizeof why)) == -1) {
		ok(false, "SIGTERM --grace 10: server starts and serves");
		diag("%s", why);
		muxd_stop(&srv, 5000);
		skip(4, "no server");
		return;
	}
	note_family(&srv, &fam);
	kill(srv.pid, SIGTERM);
	if (!ok(refused_after_sigterm(muxd_port(&srv, "upper"), why, sizeof why),
		"SIGTERM: new connections are refused at once"))
		diag("%s", why);
	if (!ok(round_trip(fd, "hello", "HELLO", PROMPT_MS, why, sizeof why),
		"SIGTERM: an open connection is still served during grace"))
		diag("%s", why);
	shutdown(fd, SHUT_WR);
	if (!ok(read_until_eof(fd, buf, sizeof buf, PROMPT_MS, &end) == 0 && end == READ_EOF,
		"SIGTERM: the open connection's half-close is answered with EOF"))
		diag("%s", describe_read_end(end));
	close(fd);
	closed_at = now_ms();
	if (!ok(muxd_wait(&srv, 12000) == 0 && exit_code_of(srv.wait_status) == 0 &&
		now_ms() - closed_at <= scaled_ms(5000),
		"SIGTERM: exits 0 within 5 s of its last connection closing (grace 10 s)"))
		diag("%s %lld ms after the close", muxd_alive(&srv) ? "still running"
		     : describe_status(srv.wait_status, why, sizeof why),
		     now_ms() - closed_at);
	muxd_stop(&srv, 1000);
	check_nothing_left(&fam, "SIGTERM --grace 10");
}

/* SIGTERM with a client holding its connection open: muxd closes it
 * when the grace period ends and exits 0. */
static void case_sigterm_holdout(void)
{
	const char *const options[] = { "--grace", "2", NULL };
	struct muxd_server srv;
	struct family fam;
	char why[256] = "", buf[8];
	enum read_end end;
	long long start, took;
	bool exited;
	int fd;

	if (start_server(&srv, upper_only, options) != 0 ||
	    (fd = connect_and_greet(&srv, why, sizeof why)) == -1) {
		ok(false, "SIGTERM --grace 2: server starts and serves");
		diag("%s", why);
		muxd_stop(&srv, 5000);
		skip(2, "no server");
		return;
	}
	note_family(&srv, &fam);
	diag("before SIGTERM muxd has %d child process(es)", fam.n);
	start = now_ms();
	kill(srv.pid, SIGTERM);
	exited = muxd_wait(&srv, 7000) == 0;
	took = now_ms() - start;
	if (!ok(exited && exit_code_of(srv.wait_status) == 0 && took >= 1700,
		"SIGTERM --grace 2 with a connection held open: exits 0 after the grace, within 7 s"))
		diag("%s after %lld ms", exited ? describe_status(srv.wait_status, why, sizeof why)
					       : "still running", took);
	read_until_eof(fd, buf, sizeof buf, PROMPT_MS, &end);
	if (!ok(end == READ_EOF || (end == READ_ERROR && errno == ECONNRESET),
		"SIGTERM --grace 2: the held connection is closed"))
		diag("%s", describe_read_end(end));
	close(fd);
	muxd_stop(&srv, 1000);
	check_nothing_left(&fam, "SIGTERM --grace 2");
}

/* Whether muxd's log holds a line with both `what` and `reason`. */
static bool log_has(FILE *log, const char *what, const char *reason)
{
	char line[1024];

	fflush(log);
	rewind(log);
	while (fgets(line, sizeof line, log))
		if (strstr(line, what) && strstr(line, reason))
			return true;
	return false;
}

/* SIGTERM --grace 1 while muxd is blocked writing chargen to a client that
 * has stopped reading. Given up on at the end of the grace period, the
 * connection is reset, not closed behind the megabytes queued for the
 * client: those would stay in the kernel after muxd exits, sent on for as
 * long as the client reads, and the client would never learn that the
 * server gave up (muxd.1, SIGNALS). */
static void case_sigterm_stuck_reader(void)
{
	const char *const options[] = { "--grace", "1", "-v", NULL };
	const char *const chargen_only[] = { "chargen", NULL };
	struct muxd_server srv;
	struct family fam;
	FILE *log = tmpfile();
	char buf[8 * KIB], why[64];
	enum read_end end = READ_ERROR;
	unsigned short port = 0;
	long long queued, deadline;
	size_t got = 0;
	int fd = -1;

	if (processes) {
		skip(5, "[processes]: the parent kills what the grace period left "
		     "with SIGKILL, not yet with a reset");
		return;
	}
	if (!log)
		bail_out("tmpfile: %s", strerror(errno));
	if (muxd_start_engine_logged(&srv, engine, extra_args, options,
				     chargen_only, log) == 0) {
		port = muxd_port(&srv, "chargen");
		fd = tcp_connect(port);
	}
	if (!ok(fd != -1 && read_until_eof(fd, buf, sizeof buf, PROMPT_MS, &end) ==
		sizeof buf, "SIGTERM --grace 1, a chargen client that stops "
		"reading: muxd starts and streams")) {
		diag("%s", fd == -1 ? "no server or no connection"
		     : describe_read_end(end));
		if (port)
			muxd_stop(&srv, 5000);
		skip(4, "no stream");
		fclose(log);
		return;
	}
	sleep_ms(300);		/* muxd fills the socket buffers and blocks */
	note_family(&srv, &fam);
	kill(srv.pid, SIGTERM);
	if (!ok(muxd_wait(&srv, 6000) == 0 && exit_code_of(srv.wait_status) == 0,
		"SIGTERM --grace 1, a stuck chargen reader: exits 0 after the grace"))
		diag("%s", muxd_alive(&srv) ? "still running"
		     : describe_status(srv.wait_status, why, sizeof why));
	muxd_stop(&srv, 1000);
	/* The kernel may close a socket a moment after the process is gone:
	 * io_uring's requests hold theirs until the ring's teardown, which
	 * runs in a kernel worker. An orphan holds its bytes for as long as
	 * the client does not read. */
	deadline = now_ms() + scaled_ms(PROMPT_MS);
	while ((queued = tcp_port_send_queued(port)) > 0 && now_ms() < deadline)
		sleep_ms(50);
	if (queued < 0)
		skip(1, "no /proc/net/tcp to look for sockets left behind");
	else if (!ok(queued == 0, "SIGTERM --grace 1, a stuck chargen reader: no "
		     "socket is left holding output for it once muxd has exited"))
		diag("%lld bytes still queued on port %u", queued, port);
	end = drain_until_end(fd, PROMPT_MS, &got);
	if (!ok(end == READ_ERROR && errno == ECONNRESET,
		"SIGTERM --grace 1, a stuck chargen reader: it reads what reached "
		"it, then a reset"))
		diag("%zu bytes, then %s", got, describe_read_end(end));
	if (!ok(log_has(log, "close chargen", "grace period over"),
		"SIGTERM --grace 1, a stuck chargen reader: the close is logged "
		"as \"grace period over\""))
		diag("no such line in muxd's log");
	close(fd);
	fclose(log);
	check_nothing_left(&fam, "SIGTERM --grace 1, a stuck chargen reader");
}

static void case_max_conns(void)
{
	const char *const options[] = { "--max-conns", "2", NULL };
	struct muxd_server srv;
	char why[256] = "";
	int a, b = -1;

	if (start_server(&srv, upper_only, options) != 0 ||
	    (a = connect_and_greet(&srv, why, sizeof why)) == -1) {
		ok(false, "--max-conns 2: starts and serves a connection");
		diag("%s", why);
		muxd_stop(&srv, 5000);
		skip(5, "no server");
		return;
	}
	ok(true, "--max-conns 2: starts and serves a connection");
	if (serial) {
		skip(3, "[serial] engine never holds two connections at once");
		close(a);
		stop_and_check(&srv, "--max-conns 2");
		return;
	}
	b = connect_and_greet(&srv, why, sizeof why);
	if (!ok(b != -1, "--max-conns 2: a second connection is served alongside"))
		diag("%s", why);
	if (!ok(closed_at_once(muxd_port(&srv, "upper"), why, sizeof why),
		"--max-conns 2: a third is accepted and closed at once"))
		diag("%s", why);
	close(a);
	ok(served_again(muxd_port(&srv, "upper")),
	   "--max-conns 2: once one closes, a new connection is served again");
	if (b != -1)
		close(b);
	stop_and_check(&srv, "--max-conns 2");
}

int main(int argc, char **argv)
{
	struct engine_tags tags;

	signal(SIGPIPE, SIG_IGN);
	adopt_orphans();
	engine = argv[1];
	extra_args = engine_under_test(argc, argv, &tags);
	serial = tags.serial;
	pool = tags.pool;
	processes = tags.processes;
	readiness = tags.readiness;
	completion = tags.completion;
	make_patterns();
	cases_on_main_server();
	case_idle_timeout();
	case_sigterm_finish();
	case_sigterm_holdout();
	case_sigterm_stuck_reader();
	case_max_conns();
	free(pattern);
	free(pattern_upper);
	return done_testing();
}
