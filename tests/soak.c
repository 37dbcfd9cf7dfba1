/* soak.c -- data integrity under every way a client can read and write.
 *
 * usage: soak ENGINE [extra muxd args...]
 *
 * Several clients at once push seeded pseudo-random data through `upper`
 * and `echo` for MUXD_SOAK_SECONDS (default 2), each its own way: write
 * bursts of 1 byte to 256 KiB with random pauses; reads of random sizes
 * with random pauses, some through a 4 KiB to 16 KiB receive buffer, some
 * as the slowest reader (3,000 bytes every 0.5 ms); reading from the
 * first byte or only after a pipelined start; half-closing at once, or
 * only once everything came back; closing or resetting half-way. So the
 * server's sends block half-way, its buffers fill and drain, short writes
 * and resets happen, while the writer goes on.
 *
 * Every byte received is checked against what was sent, in order; the
 * first difference is reported with its offset, the client's number and
 * the run's seed. MUXD_SOAK_SEED=N replays a run's clients (the same
 * data, sizes, pauses and endings; the kernel's timing is its own).
 */
#include "harness.h"
#include "oracle.h"
#include "tap.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024
#define MIB (1024 * 1024)
#define MAX_CLIENTS 8
#define MAX_BURST (256 * KIB)
#define LONG_STREAM (6 * MIB)
#define MAX_READ (64 * KIB)
#define SLOW_READ 3000		/* the slowest reader: this many bytes... */
#define SLOW_PAUSE_US 500	/* ...every half millisecond */
/* Only a server that stopped serving a client takes this long to finish
 * one: never a bound on speed. */
#define SAFETY_MS 30000
#define DEFAULT_SECONDS 2

enum ending {
	HALF_CLOSE_AT_ONCE,	/* shutdown(SHUT_WR) once all is sent */
	HALF_CLOSE_LAST,	/* shutdown only once all came back */
	CLOSE_HALF_WAY,		/* close() with bytes still owed */
	RESET_HALF_WAY,		/* RST with bytes still owed */
	N_ENDINGS
};

static const char *const ending_names[] = {
	"half-close at once", "half-close last", "close half-way",
	"reset half-way",
};

enum reader { READ_FAST, READ_RANDOM, READ_SLOWEST, N_READERS };

static const char *const reader_names[] = { "fast", "random", "slowest" };

struct client {
	int fd;			/* -1: this slot is free */
	unsigned number;
	uint64_t rng;		/* sizes and pauses */
	bool upper;
	bool steady_writer;	/* no pauses between write bursts */
	enum ending ending;
	enum reader reader;
	int rcvbuf;		/* 0: the kernel's default */
	unsigned char *out;	/* what is sent */
	unsigned char *expect;	/* what must come back */
	size_t len, sent, got;
	size_t burst_left;	/* of the current write burst */
	size_t read_after;	/* reading starts once this much is sent */
	size_t end_at;		/* close or reset once this much came back */
	bool shut;
	long long write_at, read_at;	/* not before, in µs */
	long long last_sent;	/* when the server last took bytes, in µs */
	long long deadline_us;
	char why[256];		/* set once failed */
};

static const char *engine;
static const char *const *extra_args;
static uint64_t seed;
static unsigned long long bytes_checked;
static unsigned clients_done, clients_failed;

/* A number in [lo, hi], from the client's own generator. */
static size_t pick(struct client *c, size_t lo, size_t hi)
{
	return lo + (size_t)(prng_next(&c->rng) % (hi - lo + 1));
}

/* Sizes spread over every power of two up to max, so that one-byte and
 * 256 KiB writes both happen often. */
static size_t pick_size(struct client *c, size_t max)
{
	size_t top = pick(c, 0, 18);
	size_t size = pick(c, (size_t)1 << top, ((size_t)2 << top) - 1);

	return size < max ? size : max;
}

static long long pick_pause_us(struct client *c, unsigned max_us)
{
	return pick(c, 0, 3) == 0 ? (long long)pick(c, 0, max_us) : 0;
}

static void client_fail(struct client *c, const char *fmt, ...)
	TAP_PRINTF(2, 3);

static void client_fail(struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
}

static void client_describe(const struct client *c, char *buf, size_t size)
{
	snprintf(buf, size, "client %u (%s, %zu bytes, %s writer, %s reader%s, %s)",
		 c->number, c->upper ? "upper" : "echo", c->len,
		 c->steady_writer ? "steady" : "pausing",
		 reader_names[c->reader], c->rcvbuf ? ", small receive buffer" : "",
		 ending_names[c->ending]);
}

/* ---- a client's life ---- */

static int connect_with_rcvbuf(unsigned short port, int rcvbuf)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -1;
	/* Before connect, so that the window the server sees is small. */
	if ((rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				  sizeof rcvbuf) == -1) ||
	    connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    set_nonblocking(fd) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void client_plan(struct client *c, unsigned number)
{
	*c = (struct client){ .fd = -1, .number = number };
	c->rng = seed ^ (0x9e3779b97f4a7c15u * (number + 1));
	prng_next(&c->rng);
	c->upper = pick(c, 0, 1);
	c->ending = (enum ending)pick(c, 0, N_ENDINGS - 1);
	c->steady_writer = pick(c, 0, 1);
	/* The slowest reader behind a steady writer, over megabytes, is
	 * where a server's sends wait longest for room while input keeps
	 * coming: a quarter of the clients are that. */
	if (c->steady_writer && pick(c, 0, 1)) {
		c->reader = READ_SLOWEST;
		c->len = pick(c, 2 * MIB, LONG_STREAM);
	} else {
		c->reader = (enum reader)pick(c, 0, N_READERS - 1);
		c->len = pick(c, 0, 1) ? pick(c, 1, LONG_STREAM)
				       : pick_size(c, LONG_STREAM);
	}
	if (c->reader == READ_SLOWEST)
		c->rcvbuf = 16 * KIB;
	else if (pick(c, 0, 2) == 0)
		c->rcvbuf = (int)pick(c, 4 * KIB, 16 * KIB);
	c->read_after = pick(c, 0, 1) ? 0 : pick(c, 0, c->len);
	c->end_at = pick(c, 0, c->len);
}

static bool client_start(struct client *c, unsigned short port)
{
	c->out = malloc(c->len);
	c->expect = malloc(c->len);
	if (!c->out || !c->expect)
		bail_out("out of memory");
	for (size_t i = 0; i < c->len; i++)
		c->out[i] = (unsigned char)(prng_next(&c->rng) >> 56);
	if (c->upper)
		upcase_ascii(c->expect, c->out, c->len);
	else
		memcpy(c->expect, c->out, c->len);
	c->last_sent = now_us();
	c->deadline_us = c->last_sent + scaled_ms(SAFETY_MS) * 1000LL;
	c->fd = connect_with_rcvbuf(port, c->rcvbuf);
	if (c->fd == -1)
		client_fail(c, "connect: %s", strerror(errno));
	return c->fd != -1;
}

/* A pipelining client starts reading once the server stops taking
 * bytes for 100 ms, as one that does not want to deadlock must: the
 * server stops reading when it cannot write. */
#define PIPELINE_LULL_US 100000

static bool reading(struct client *c, long long now)
{
	if (c->sent < c->read_after && now - c->last_sent > PIPELINE_LULL_US)
		c->read_after = c->sent;
	return c->sent >= c->read_after || c->sent == c->len;
}

static void client_send(struct client *c, long long now)
{
	ssize_t n;

	if (c->burst_left == 0)
		c->burst_left = pick_size(c, MAX_BURST);
	if (c->burst_left > c->len - c->sent)
		c->burst_left = c->len - c->sent;
	n = send(c->fd, c->out + c->sent, c->burst_left,
		 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_fail(c, "send after %zu of %zu bytes: %s",
				    c->sent, c->len, strerror(errno));
		return;
	}
	c->sent += (size_t)n;
	c->last_sent = now;
	c->burst_left -= (size_t)n;
	if (c->burst_left == 0 && !c->steady_writer)
		c->write_at = now + pick_pause_us(c, 2000);
	if (c->sent == c->len && c->ending == HALF_CLOSE_AT_ONCE) {
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
	}
}

static void client_check(struct client *c, const unsigned char *buf, size_t n)
{
	size_t room = c->len - c->got;
	size_t common = n < room ? n : room;
	char why[128];

	if (!bytes_as_expected(buf, n, c->expect, c->len, c->got, why,
			       sizeof why)) {
		client_fail(c, "%s (sent %zu)", why, c->sent);
		return;
	}
	c->got += common;
	bytes_checked += common;
}

static size_t read_size(struct client *c)
{
	switch (c->reader) {
	case READ_SLOWEST:
		return SLOW_READ;
	case READ_RANDOM:
		return pick_size(c, MAX_READ);
	default:
		return MAX_READ;
	}
}

static long long read_pause_us(struct client *c)
{
	switch (c->reader) {
	case READ_SLOWEST:
		return SLOW_PAUSE_US;
	case READ_RANDOM:
		return pick_pause_us(c, 1000);
	default:
		return 0;
	}
}

/* true once the client has ended (well or not). */
static bool client_receive(struct client *c, long long now)
{
	static unsigned char buf[MAX_READ];
	ssize_t n = recv(c->fd, buf, read_size(c), MSG_DONTWAIT);

	if (n > 0) {
		client_check(c, buf, (size_t)n);
		c->read_at = now + read_pause_us(c);
		return c->why[0] != '\0';
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n < 0)
		client_fail(c, "recv after %zu of %zu bytes (sent %zu): %s",
			    c->got, c->len, c->sent, strerror(errno));
	else if (c->got < c->len)
		client_fail(c, "EOF after %zu of %zu bytes (sent %zu)", c->got,
			    c->len, c->sent);
	else if (!c->shut)
		client_fail(c, "EOF before the client half-closed");
	return true;
}

/* The endings that come once enough came back; true once ended. */
static bool client_ending(struct client *c)
{
	if ((c->ending == CLOSE_HALF_WAY || c->ending == RESET_HALF_WAY) &&
	    c->got >= c->end_at) {
		if (c->ending == RESET_HALF_WAY)
			close_with_reset(c->fd);
		else
			close(c->fd);
		c->fd = -1;
		return true;
	}
	if (c->got == c->len && !c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
	}
	return false;
}

static void client_end(struct client *c)
{
	char who[160];

	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	clients_done++;
	if (c->why[0] && clients_failed++ == 0) {
		client_describe(c, who, sizeof who);
		diag("%s: %s", who, c->why);
		diag("replay with MUXD_SOAK_SEED=%llu", (unsigned long long)seed);
	}
	free(c->out);
	free(c->expect);
	c->out = c->expect = NULL;
}

/* ---- the run ---- */

static short client_events(struct client *c, long long now)
{
	short events = 0;

	if (c->sent < c->len && now >= c->write_at)
		events |= POLLOUT;
	if (reading(c, now) && now >= c->read_at)
		events |= POLLIN;
	return events;
}

static long long client_wake(struct client *c, long long now, long long wake)
{
	if (c->sent < c->len && c->write_at < wake)
		wake = c->write_at;
	if (reading(c, now) && c->read_at < wake)
		wake = c->read_at;
	return wake;
}

/* One round of waiting and serving every client. */
static void run_round(struct client *cl, int n)
{
	struct pollfd pfd[MAX_CLIENTS];
	long long now = now_us(), wake = now + 10000;
	struct timespec ts;

	for (int i = 0; i < n; i++) {
		short events = cl[i].fd == -1 ? 0 : client_events(&cl[i], now);

		pfd[i] = (struct pollfd){ events ? cl[i].fd : -1, events, 0 };
		if (cl[i].fd != -1 && !events)
			wake = client_wake(&cl[i], now, wake);
	}
	wake = wake > now ? wake - now : 0;
	ts = (struct timespec){ wake / 1000000, wake % 1000000 * 1000 };
	if (ppoll(pfd, (nfds_t)n, &ts, NULL) < 0 && errno != EINTR)
		bail_out("ppoll: %s", strerror(errno));
	now = now_us();
	for (int i = 0; i < n; i++) {
		struct client *c = &cl[i];
		bool ended = false;

		if (c->fd == -1)
			continue;
		if (pfd[i].revents & POLLOUT)
			client_send(c, now);
		if (!c->why[0] && (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
			ended = client_receive(c, now);
		if (!ended && !c->why[0])
			ended = client_ending(c);
		if (!ended && !c->why[0] && now > c->deadline_us)
			client_fail(c, "stalled: sent %zu of %zu, received %zu",
				    c->sent, c->len, c->got);
		if (ended || c->why[0])
			client_end(c);
	}
}

static unsigned soak_seconds(void)
{
	const char *s = getenv("MUXD_SOAK_SECONDS");
	long v = s ? strtol(s, NULL, 10) : DEFAULT_SECONDS;

	return v > 0 ? (unsigned)v : DEFAULT_SECONDS;
}

static uint64_t soak_seed(void)
{
	const char *s = getenv("MUXD_SOAK_SEED");

	if (s && *s)
		return strtoull(s, NULL, 10);
	return (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
}

/* Clients, as many at once as the engine serves, until the time is up. */
static void soak(unsigned short upper, unsigned short echo, int at_once)
{
	struct client cl[MAX_CLIENTS];
	long long stop = now_us() + (long long)soak_seconds() * 1000000;
	unsigned next = 0;
	int active;

	for (int i = 0; i < at_once; i++)
		cl[i].fd = -1;
	do {
		active = 0;
		for (int i = 0; i < at_once; i++) {
			if (cl[i].fd == -1 && now_us() < stop) {
				client_plan(&cl[i], next++);
				if (!client_start(&cl[i], cl[i].upper ? upper : echo))
					client_end(&cl[i]);
			}
			active += cl[i].fd != -1;
		}
		if (active)
			run_round(cl, at_once);
	} while (active);
}

int main(int argc, char **argv)
{
	struct engine_tags tags;
	struct muxd_server srv;
	static const char *const services[] = { "upper", "echo", NULL };
	static const char *const no_options[] = { NULL };
	char why[256];
	int fd;

	extra_args = engine_under_test(argc, argv, &tags);
	engine = argv[1];
	seed = soak_seed();
	plan(3);
	diag("seed %llu, %u s", (unsigned long long)seed, soak_seconds());
	if (muxd_start_engine(&srv, engine, extra_args, no_options, services) < 0)
		bail_out("muxd did not start");
	soak(muxd_port(&srv, "upper"), muxd_port(&srv, "echo"),
	     tags.serial ? 1 : MAX_CLIENTS);
	if (!ok(clients_failed == 0 && clients_done > 0,
		"%u clients, %llu bytes back through upper and echo: every byte in order",
		clients_done, bytes_checked))
		diag("%u of %u clients failed (the first is above)",
		     clients_failed, clients_done);
	fd = served_connection(muxd_port(&srv, "upper"), 5000, why, sizeof why);
	if (!ok(fd != -1, "still serves a new client afterwards"))
		diag("%s", why);
	else
		close(fd);
	ok(muxd_stop(&srv, 30000) == 0 && exit_code_of(srv.wait_status) == 0,
	   "SIGTERM: exit 0");
	return exit_status();
}
