/* flow.c -- see flow.h. */
#include "flow.h"
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void flow_fail(struct flow *f, const char *fmt, ...)
{
	va_list ap;

	if (f->failed)
		return;
	f->failed = true;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof f->why, fmt, ap);
	va_end(ap);
}

static void flow_start_reading(struct flow *f)
{
	if (!f->may_read) {
		f->may_read = true;
		f->sent_before_read = f->sent;
	}
}

/* Everything sent: half-close, as a client that is done talking does. */
static void flow_finish_sending(struct flow *f)
{
	shutdown(f->fd, SHUT_WR);
	flow_start_reading(f);
}

void flow_init(struct flow *f, int fd, const unsigned char *out,
	       size_t out_len, const unsigned char *expect, size_t expect_len,
	       bool read_early)
{
	*f = (struct flow){
		.fd = fd, .out = out, .out_len = out_len,
		.expect = expect, .expect_len = expect_len,
	};
	if (read_early)
		flow_start_reading(f);
	if (fd == -1)
		flow_fail(f, "connect: %s", strerror(errno));
	else if (set_nonblocking(fd) == -1)
		flow_fail(f, "fcntl: %s", strerror(errno));
	else if (out_len == 0)
		flow_finish_sending(f);
}

static bool flow_done(const struct flow *f)
{
	return f->failed || f->eof;
}

static short flow_events(const struct flow *f)
{
	return (short)((f->sent < f->out_len ? POLLOUT : 0) |
		       (f->may_read ? POLLIN : 0));
}

static void flow_send(struct flow *f)
{
	size_t chunk = f->out_len - f->sent;
	ssize_t n;

	if (chunk > 64 * 1024)
		chunk = 64 * 1024;
	n = send(f->fd, f->out + f->sent, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		f->sent += (size_t)n;
	else if (errno != EAGAIN && errno != EINTR)
		flow_fail(f, "send after %zu of %zu bytes: %s", f->sent,
			  f->out_len, strerror(errno));
	if (!f->failed && f->sent == f->out_len)
		flow_finish_sending(f);
}

static void flow_check(struct flow *f, const unsigned char *buf, size_t n)
{
	size_t room = f->expect_len - f->got;
	char why[128];

	if (!bytes_as_expected(buf, n, f->expect, f->expect_len, f->got, why,
			       sizeof why))
		flow_fail(f, "%s", why);
	f->got += n < room ? n : room;
}

static void flow_receive(struct flow *f)
{
	unsigned char buf[64 * 1024];
	ssize_t n = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT);

	if (n > 0) {
		flow_check(f, buf, (size_t)n);
	} else if (n == 0) {
		f->eof = true;
		if (f->got < f->expect_len)
			flow_fail(f, "EOF after %zu of %zu bytes (sent %zu of %zu)",
				  f->got, f->expect_len, f->sent, f->out_len);
	} else if (errno != EAGAIN && errno != EINTR) {
		flow_fail(f, "recv after %zu of %zu bytes (sent %zu of %zu): %s",
			  f->got, f->expect_len, f->sent, f->out_len,
			  strerror(errno));
	}
}

static void flow_handle(struct flow *f, short revents)
{
	if (revents & (POLLERR | POLLHUP))
		flow_start_reading(f);
	if ((revents & POLLOUT) && f->sent < f->out_len)
		flow_send(f);
	if (!f->failed && f->may_read && (revents & (POLLIN | POLLERR | POLLHUP)))
		flow_receive(f);
}

static void flow_timed_out(struct flow *f, long ms)
{
	flow_fail(f, "no EOF after %ld ms: sent %zu of %zu%s, received %zu of %zu",
		  ms, f->sent, f->out_len,
		  f->sent == f->out_len ? " and half-closed" : "",
		  f->got, f->expect_len);
}

/* A 100 ms lull means the server stopped taking bytes: pipelining flows
 * then start reading, as a client that does not want to deadlock would. */
int run_flows(struct flow *flows, int n, long timeout_ms)
{
	struct pollfd pfd[FLOW_MAX];
	int which[FLOW_MAX], failed = 0;
	long long deadline = now_ms() + scaled_ms(timeout_ms);

	if (n > FLOW_MAX)
		bail_out("run_flows: %d flows, at most %d", n, FLOW_MAX);
	for (;;) {
		int active = 0, ready;

		for (int i = 0; i < n; i++) {
			if (flow_done(&flows[i]))
				continue;
			pfd[active] = (struct pollfd){ flows[i].fd, flow_events(&flows[i]), 0 };
			which[active++] = i;
		}
		if (active == 0)
			break;
		if (now_ms() >= deadline) {
			for (int k = 0; k < active; k++)
				flow_timed_out(&flows[which[k]], scaled_ms(timeout_ms));
			break;
		}
		ready = poll(pfd, (nfds_t)active, 100);
		for (int k = 0; k < active; k++) {
			if (ready == 0)
				flow_start_reading(&flows[which[k]]);
			else if (pfd[k].revents)
				flow_handle(&flows[which[k]], pfd[k].revents);
		}
	}
	for (int i = 0; i < n; i++)
		failed += flows[i].failed;
	return failed;
}

bool flow_exchange(unsigned short port, const unsigned char *out,
		   size_t out_len, const unsigned char *expect,
		   size_t expect_len, bool read_early, long timeout_ms,
		   struct flow *f)
{
	int fd = tcp_connect(port);

	flow_init(f, fd, out, out_len, expect, expect_len, read_early);
	run_flows(f, 1, timeout_ms);
	if (fd != -1)
		close(fd);
	return !f->failed;
}

