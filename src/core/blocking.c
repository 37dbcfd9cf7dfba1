/* blocking.c -- the accept loop and serve loop of the blocking engines. */
#include "core/blocking.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"
#include "core/admission.h"
#include "services/service.h"

int acceptor_init(struct acceptor *a, const struct server *srv, int wake_fd)
{
	size_t n = srv->n_listeners;

	memset(a, 0, sizeof *a);
	a->srv = srv;
	a->fds = calloc(n + 1, sizeof *a->fds);
	if (!a->fds) {
		log_error("cannot start accepting: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		a->fds[i] = (struct pollfd){ srv->listeners[i].fd, POLLIN, 0 };
	a->fds[n] = (struct pollfd){ wake_fd, POLLIN, 0 };
	return 0;
}

int acceptor_start(struct acceptor *a, const struct server *srv)
{
	if (acceptor_init(a, srv, sig_wakeup_fd()) < 0) {
		net_close_listeners(srv->listeners, srv->n_listeners);
		return -1;
	}
	server_ready(srv);
	return 0;
}

void acceptor_free(struct acceptor *a)
{
	free(a->fds);
	a->fds = NULL;
}

void acceptor_close(struct acceptor *a)
{
	if (!a->fds)
		return;
	net_close_listeners(a->srv->listeners, a->srv->n_listeners);
	acceptor_free(a);
}

/* Try the listeners poll found ready, starting after the last one served
 * so that a busy listener does not starve the others. */
static int try_accept(struct acceptor *a, struct accepted *out)
{
	size_t n = a->srv->n_listeners;

	for (size_t k = 0; k < n; k++) {
		size_t i = (a->next + k) % n;

		if (!(a->fds[i].revents & POLLIN))
			continue;
		out->fd = net_accept(a->fds[i].fd, false, &out->peer);
		if (out->fd >= 0) {
			accept_pause_end(&a->pause);
			out->listener = &a->srv->listeners[i];
			a->next = i + 1;
			return 0;
		}
		if (net_out_of_resources(errno)) {
			accept_pause_start(&a->pause, errno, clock_ms());
			return -1;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_error("accept %s: %s",
				  a->srv->listeners[i].service->name, strerror(errno));
	}
	return -1;
}

/* poll(2) the listeners and the signal pipe; while accepting is paused,
 * only the pipe. Returns what the pipe said, or ACCEPT_CONN to try. */
static enum accept_result wait_ready(struct acceptor *a)
{
	size_t n = a->srv->n_listeners;
	int64_t pause = a->pause.until - clock_ms();
	struct pollfd *fds = pause > 0 ? &a->fds[n] : a->fds;
	nfds_t count = pause > 0 ? 1 : (nfds_t)n + 1;
	int64_t begin = trace_begin();
	int ready;

	for (size_t i = 0; i <= n; i++)
		a->fds[i].revents = 0;
	stat_add(STAT_SYS_WAIT, 1);
	ready = poll(fds, count, pause > 0 ? (int)pause : -1);
	trace_wait(TRACE_POLL, begin, -1, ready);
	if (ready < 0 && errno != EINTR)
		log_error("poll: %s", strerror(errno));
	if (a->fds[n].revents) {
		if (a->fds[n].fd == sig_wakeup_fd())
			sig_drain();
		return sig_stop_requested() ? ACCEPT_STOP : ACCEPT_WAKEUP;
	}
	return sig_stop_requested() ? ACCEPT_STOP : ACCEPT_CONN;
}

enum accept_result acceptor_next(struct acceptor *a, struct accepted *out)
{
	for (;;) {
		enum accept_result r = a->fds ? wait_ready(a) : ACCEPT_STOP;

		if (r != ACCEPT_CONN || try_accept(a, out) == 0)
			return r;
	}
}

struct blocking_conn {
	int fd;
	const struct server *srv;
	struct serve_io *io;
	struct acceptor *listeners;	/* to close at a stop, or NULL */
	bool input_closed;		/* the client shut down its side */
	const char *gone;		/* why it ended, when no errno says */
	struct svc_session session;
	/* A producer's unsent output, or a request service's input not yet
	 * taken: buf[head, tail). */
	size_t head, tail;
	unsigned long long bytes_in, bytes_out;
	unsigned char *buf;		/* CONN_BUF_SIZE bytes */
};

/* The blocking engines' I/O: the thread waits in the kernel. */
static ssize_t blocking_read(struct serve_io *io, int fd, void *buf, size_t len)
{
	int64_t begin = trace_begin();
	ssize_t n = read(fd, buf, len);

	(void)io;
	stat_read(n);
	trace_read_wait(begin, fd, n);
	return n;
}

/* fds[0] is the connection's socket. */
static int blocking_poll(struct serve_io *io, struct pollfd *fds, nfds_t n,
			 int timeout_ms)
{
	int64_t begin = trace_begin();
	int ready = poll(fds, n, timeout_ms);

	(void)io;
	stat_add(STAT_SYS_WAIT, 1);
	trace_wait(TRACE_POLL, begin, fds[0].fd, ready);
	return ready;
}

/* --idle-timeout for a blocking read: no byte for this long, EAGAIN. */
static void blocking_limit_reads(struct serve_io *io, int fd, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	(void)io;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Wait until the socket is ready for `events` (which of them: *ready), at
 * most --idle-timeout, or until `due` (clock_ms; -1: none), when *ready
 * is 0. In a thread that also takes the signals (iterative, where
 * `listeners` is set) the signal pipe is watched too, as a stop that
 * comes just before a blocking call would otherwise go unseen until the
 * client moves. Returns 0, or -1 with errno EAGAIN (idle) or EINTR (grace
 * over). */
static int wait_socket_until(struct blocking_conn *c, short events,
			     short *ready, int64_t due)
{
	struct pollfd fds[2] = { { c->fd, events, 0 },
				 { sig_wakeup_fd(), POLLIN, 0 } };
	int64_t idle = c->srv->idle_timeout && due < 0
		? (int64_t)c->srv->idle_timeout * 1000 : -1;

	for (;;) {
		int64_t left = c->listeners ? sig_grace_left_ms() : -1;
		int64_t timeout = due >= 0 ? due - clock_ms() : idle;
		int n;

		if (due >= 0 && timeout <= 0) {
			*ready = 0;
			return 0;
		}
		if (left >= 0) {
			acceptor_close(c->listeners);
			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		n = c->io->poll(c->io, fds, c->listeners ? 2 : 1, (int)timeout);
		if (n == 0 && due >= 0 && !(c->listeners && sig_grace_left_ms() == 0))
			continue;
		if (n == 0) {
			errno = c->listeners && sig_grace_left_ms() == 0 ? EINTR : EAGAIN;
			return -1;
		}
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0 && fds[1].revents)
			sig_drain();
		if (n > 0 && fds[0].revents) {
			*ready = fds[0].revents;
			return 0;
		}
	}
}

static int wait_socket(struct blocking_conn *c, short events, short *ready)
{
	return wait_socket_until(c, events, ready, -1);
}

/* Send without blocking, and wait for room only when the socket has none:
 * the idle timeout then counts from the last byte that moved, which a
 * blocking write under SO_SNDTIMEO would not do (it returns a partial
 * count only when its whole timeout is spent). */
static int send_bytes(struct blocking_conn *c, const unsigned char *p,
		      size_t len)
{
	short ready;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		stat_write(n);
		trace_io(TRACE_WRITE, c->fd, n);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			c->bytes_out += (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_socket(c, POLLOUT, &ready) < 0)
				return -1;
		} else if (n == 0 || errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

static int send_all(struct blocking_conn *c, size_t len)
{
	return send_bytes(c, c->buf, len);
}

/* ---- request services: a line at a time ---- */

/* The client's end of file, with a request pending or input left: it is
 * gone, and nothing more is sent. */
static int client_gone(struct blocking_conn *c)
{
	if (svc_need(&c->session) == SVC_INPUT && c->head == c->tail) {
		svc_eof(&c->session);
		return 0;
	}
	c->gone = "client gone before its reply";
	return -1;
}

/* Read what comes into the free tail of the buffer. */
static int read_more(struct blocking_conn *c)
{
	ssize_t n;

	if (c->head == c->tail)
		c->head = c->tail = 0;
	n = c->io->read(c->io, c->fd, c->buf + c->tail, CONN_BUF_SIZE - c->tail);
	if (n > 0) {
		c->bytes_in += (size_t)n;
		c->tail += (size_t)n;
		return 0;
	}
	if (n == 0)
		return client_gone(c);
	return errno == EINTR ? 0 : -1;
}

/* Sleep until the line's reply is due, watching the socket meanwhile: a
 * client that goes is seen at once, and what it sends is kept for the
 * next lines while the buffer has room. */
static int wait_due(struct blocking_conn *c)
{
	int64_t due = svc_due(&c->session);
	short ready;

	for (;;) {
		bool room = c->tail < CONN_BUF_SIZE;

		if (wait_socket_until(c, room ? POLLIN : 0, &ready, due) < 0)
			return -1;
		if (!ready)
			return 0;
		if ((ready & (POLLHUP | POLLERR)) && !room)
			return client_gone(c);
		if (read_more(c) < 0)
			return -1;
	}
}

/* One step of a request service: take lines, and wait for a line's time
 * (or do its work) right here, as a blocking call would, and send its
 * reply; or read more. */
static int request_step(struct blocking_conn *c)
{
	struct svc_session *s = &c->session;
	const unsigned char *reply;
	size_t taken, len;
	short ready;
	enum svc_next next = svc_advance(s, c->buf + c->head, c->tail - c->head,
					 &taken, clock_ms(), true);
	bool work;
	int64_t begin;

	c->head += taken;
	if (next == SVC_NEXT_WAIT)
		return wait_due(c);
	if (next == SVC_NEXT_INPUT) {
		if (s->close_after_flush)
			return 0;
		return (c->listeners && wait_socket(c, POLLIN, &ready) < 0) ||
		       read_more(c) < 0 ? -1 : 0;
	}
	/* Work is done by svc_reply, here, as a blocking call would. */
	work = trace_on && svc_need(s) == SVC_WORK;
	begin = trace_begin();
	len = svc_reply(s, &reply);
	if (work)
		trace_span(TRACE_WORK, begin, c->fd, 0);
	if (send_bytes(c, reply, len) < 0)
		return -1;
	svc_replied(s);
	return 0;
}

/* A producer's input is thrown away as it comes, so that a client that
 * sends to chargen before reading is never blocked by it; one read per
 * step, through io as every other read, so that a client that never stops
 * sending holds neither the output nor, in the coroutine engine, the
 * other connections (the read counts against the coroutine's turn). The
 * socket was ready: the read does not wait. */
static int discard_input(struct blocking_conn *c)
{
	unsigned char sink[4096];
	ssize_t n = c->io->read(c->io, c->fd, sink, sizeof sink);

	if (n > 0)
		c->bytes_in += (size_t)n;
	else if (n == 0)
		c->input_closed = true;
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return -1;
	return 0;
}

/* A producer writes whatever fits, never blocking in write, and reads
 * whenever input comes. */
static int produce_step(struct blocking_conn *c)
{
	short want = POLLOUT | (c->input_closed ? 0 : POLLIN), ready;
	ssize_t n;

	if (c->head == c->tail) {
		c->head = 0;
		c->tail = svc_fill(&c->session, c->buf, CONN_BUF_SIZE);
	}
	if (wait_socket(c, want, &ready) < 0)
		return -1;
	if ((ready & (POLLIN | POLLHUP | POLLERR)) && !c->input_closed &&
	    discard_input(c) < 0)
		return -1;
	if (!(ready & (POLLOUT | POLLHUP | POLLERR)))
		return 0;
	n = send(c->fd, c->buf + c->head, c->tail - c->head, MSG_DONTWAIT);
	stat_write(n);
	trace_io(TRACE_WRITE, c->fd, n);
	if (n > 0) {
		c->head += (size_t)n;
		c->bytes_out += (size_t)n;
		return 0;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}

/* One step: produce, or read and send. Returns 0 to go on, -1 with errno
 * when the connection is over. */
static int serve_step(struct blocking_conn *c)
{
	short ready;
	ssize_t n;

	if (svc_is_producer(&c->session))
		return produce_step(c);
	if (svc_is_request(&c->session))
		return request_step(c);
	/* Elsewhere signals never reach this thread and SO_RCVTIMEO bounds
	 * the read: a read returns as soon as any byte comes. */
	if (c->listeners && wait_socket(c, POLLIN, &ready) < 0)
		return -1;
	n = c->io->read(c->io, c->fd, c->buf, CONN_BUF_SIZE);
	if (n > 0) {
		c->bytes_in += (size_t)n;
		return send_all(c, svc_input(&c->session, c->buf, (size_t)n));
	}
	if (n == 0)
		svc_eof(&c->session);
	return n == 0 || errno == EINTR ? 0 : -1;
}

/* Why the connection ends; one given up on for idleness is reset when
 * closed. */
static const char *end_reason(const struct blocking_conn *c, int err)
{
	if (c->gone)
		return c->gone;
	if (err == EAGAIN || err == EWOULDBLOCK) {
		net_reset_if_stuck(c->fd);
		idle_timed_out();
		return "idle timeout";
	}
	return strerror(err);
}

/* Still open when the grace period is over: the engine shut the socket
 * down, and the loop saw an end of input or EPIPE; or wait_socket gave
 * up with EINTR. Given up on, so reset when closed: a client that does
 * not read would otherwise leave the kernel holding what is queued for
 * it long after muxd exits. */
static const char *cut_at_grace_end(const struct blocking_conn *c)
{
	net_reset_if_stuck(c->fd);
	return sig_stop_reason();
}

static void serve(const struct server *srv, const struct accepted *conn,
		  struct acceptor *listeners, struct serve_io *io,
		  unsigned char *buf)
{
	struct blocking_conn c = { .fd = conn->fd, .srv = srv, .io = io,
				   .listeners = listeners, .buf = buf };
	const char *why = NULL;
	size_t greeting;

	log_conn_open(conn->listener, (const struct sockaddr *)&conn->peer,
		      conn->fd);
	stat_add(STAT_ACCEPTED, 1);
	greeting = svc_open(&c.session, conn->listener->service, time(NULL),
			    c.buf);
	if (send_all(&c, greeting) < 0)
		why = end_reason(&c, errno);
	else if (!c.session.close_after_flush && srv->idle_timeout && !listeners)
		io->limit_reads(io, c.fd, (int64_t)srv->idle_timeout * 1000);
	/* A request service closing has its last reply to send. */
	while (!why && (!c.session.close_after_flush ||
			svc_need(&c.session) != SVC_INPUT))
		if (serve_step(&c) < 0)
			why = end_reason(&c, errno);
	if (sig_grace_left_ms() == 0)
		why = cut_at_grace_end(&c);
	svc_close(&c.session);
	log_conn_close(conn->listener, (const struct sockaddr *)&conn->peer,
		       conn->fd, why ? why : "done", c.bytes_in, c.bytes_out);
	trace_close(conn->fd);
}

void blocking_serve(const struct server *srv, const struct accepted *conn,
		    struct acceptor *listeners)
{
	struct serve_io io = { blocking_read, blocking_poll, blocking_limit_reads };
	unsigned char buf[CONN_BUF_SIZE];

	serve(srv, conn, listeners, &io, buf);
}

void blocking_serve_io(const struct server *srv, const struct accepted *conn,
		       struct serve_io *io, unsigned char *buf)
{
	serve(srv, conn, NULL, io, buf);
}
