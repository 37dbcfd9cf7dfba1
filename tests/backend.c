/* backend.c -- see backend.h.
 *
 * One poll(2) loop over the two listeners and the clients, as plain as
 * the contract allows: a client's lines are taken one at a time, the next
 * only once the reply to the last has gone out; a delay reply is held
 * until its milliseconds have passed since the line was read; a work
 * reply is computed at once, round by round, as muxd does. Replies are a
 * few dozen bytes, written whole or kept until the socket takes them.
 */
#include "backend.h"
#include "oracle.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define LINE_MAX_BYTES 1024	/* the contract's bound on a request line */

enum service { DELAY, WORK };

struct client {
	int fd;			/* -1: a free slot */
	enum service service;
	char in[LINE_MAX_BYTES];
	size_t in_len;
	char out[64];		/* the reply being held or sent */
	size_t out_len, out_sent;
	long long reply_at;	/* us: when a held delay reply may go */
};

struct backend {
	int listeners[2];	/* indexed by enum service */
	struct client clients[MAX_CLIENTS];
	bool lie;
};

/* Microseconds: whole milliseconds would let a reply go up to one early. */
static long long clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int listen_loopback(unsigned short *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		bail_out("backend: a loopback listener: %s", strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

/* The reply to one request line (without its LF) into c->out. */
static void answer(struct backend *b, struct client *c, const char *line,
		   size_t len)
{
	unsigned long long n, seed;
	unsigned ms;

	c->out_sent = 0;
	if (c->service == WORK) {
		if (sscanf(line, "%llu %llu", &n, &seed) != 2) {
			c->out_len = (size_t)snprintf(c->out, sizeof c->out,
						      "ERR bad request\r\n");
			return;
		}
		c->out_len = (size_t)snprintf(c->out, sizeof c->out,
					      "%016" PRIx64 "\r\n",
					      splitmix64_nth(seed, n));
		if (b->lie)
			c->out[15] ^= 1;	/* '0' <-> '1', 'a' <-> '`' ... */
		return;
	}
	if (sscanf(line, "%u", &ms) != 1 || len + 2 > sizeof c->out) {
		c->out_len = (size_t)snprintf(c->out, sizeof c->out,
					      "ERR bad request\r\n");
		return;
	}
	c->out_len = (size_t)snprintf(c->out, sizeof c->out, "%.*s\r\n",
				      (int)len, line);
	c->reply_at = clock_us() + (b->lie ? 0 : ms * 1000ll);
}

static void drop(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Take the next line if no reply is owed; send a reply that is due.
 * true if a whole reply went out, so that the next line may be taken. */
static bool step(struct backend *b, struct client *c, long long now)
{
	char *lf;
	ssize_t n;

	if (c->out_len == 0 && (lf = memchr(c->in, '\n', c->in_len))) {
		size_t len = (size_t)(lf - c->in);

		answer(b, c, c->in, len > 0 && c->in[len - 1] == '\r' ? len - 1 : len);
		memmove(c->in, lf + 1, c->in_len - len - 1);
		c->in_len -= len + 1;
	}
	if (c->out_len == 0 || (c->service == DELAY && now < c->reply_at))
		return false;
	n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
		 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		drop(c);
		return false;
	}
	if (n <= 0 || (c->out_sent += (size_t)n) < c->out_len)
		return false;
	c->out_len = 0;
	return true;
}

static void take_input(struct client *c)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len,
			 MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
	    (n > 0 && (c->in_len += (size_t)n) == sizeof c->in))
		drop(c);	/* gone, broken, or a line past the bound */
}

static void accept_on(struct backend *b, enum service service)
{
	int fd = accept4(b->listeners[service], NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (b->clients[i].fd < 0) {
			b->clients[i] = (struct client){ .fd = fd,
							 .service = service };
			return;
		}
	close(fd);
}

/* Until the first held reply is due, rounded up to the millisecond;
 * forever if none is. */
static int poll_timeout(const struct backend *b, long long now)
{
	long long first = -1;

	for (int i = 0; i < MAX_CLIENTS; i++) {
		const struct client *c = &b->clients[i];

		if (c->fd >= 0 && c->out_len > 0 && c->out_sent == 0 &&
		    (first < 0 || c->reply_at < first))
			first = c->reply_at;
	}
	return first < 0 ? -1 : first > now ? (int)((first - now + 999) / 1000) : 0;
}

static _Noreturn void serve(struct backend *b)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		struct pollfd p[2 + MAX_CLIENTS];
		long long now = clock_us();

		for (int s = 0; s < 2; s++)
			p[s] = (struct pollfd){ b->listeners[s], POLLIN, 0 };
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &b->clients[i];

			p[2 + i] = (struct pollfd){ c->fd, POLLIN, 0 };
			if (c->fd >= 0 && c->out_sent > 0)
				p[2 + i].events |= POLLOUT;
		}
		if (poll(p, 2 + MAX_CLIENTS, poll_timeout(b, now)) < 0 &&
		    errno != EINTR)
			_exit(1);
		now = clock_us();
		for (int s = 0; s < 2; s++)
			if (p[s].revents)
				accept_on(b, (enum service)s);
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &b->clients[i];

			if (c->fd >= 0 && (p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				take_input(c);
			while (c->fd >= 0 && step(b, c, now))
				;
		}
	}
}

void backend_start(struct muxd_server *srv, bool lie)
{
	static const char *const names[2] = { [DELAY] = "delay", [WORK] = "work" };
	struct backend b = { .lie = lie };

	*srv = (struct muxd_server){ .stdout_fd = -1, .nlisteners = 2 };
	for (int s = 0; s < 2; s++) {
		b.listeners[s] = listen_loopback(&srv->listeners[s].port);
		snprintf(srv->listeners[s].service, sizeof srv->listeners[s].service,
			 "%s", names[s]);
		snprintf(srv->listeners[s].address, sizeof srv->listeners[s].address,
			 "127.0.0.1");
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		b.clients[i].fd = -1;
	fflush(stdout);
	srv->pid = fork();
	if (srv->pid < 0)
		bail_out("backend: fork: %s", strerror(errno));
	if (srv->pid == 0)
		serve(&b);
	close(b.listeners[DELAY]);
	close(b.listeners[WORK]);
}
