/* bench_worker.c -- one load thread: its own epoll instance, its share of
 * the connections, and the modes as small state machines.
 *
 * Level-triggered: an open connection is watched for input all the time,
 * and for output only while a send came back short. So a pingpong message
 * costs one send, one recv and a share of an epoll_wait, and no epoll_ctl.
 * Nothing is allocated once the thread runs: a connection is a slot in an
 * array, every byte sent comes from one shared pattern, and every reply
 * is read into the thread's one buffer and compared there with what the
 * pattern says must come back.
 *
 * A connection that fails is counted (enum err_kind), closed, and opened
 * again RETRY_MS later: the load keeps its shape, and a server that
 * refuses or resets is not hammered in a tight loop. Every retry waits
 * the same time, so the retry queue is a FIFO already in due order.
 *
 * Requests (pingpong messages, delay and work lines) are counted per
 * connection: issued, answered and, with --rate, due. Without --rate a
 * connection is a closed loop: it issues the next request when the last
 * one is answered. With --rate the thread's share of the rate comes due
 * on its connections in turn, one every `period`, whatever the replies
 * do; a pingpong connection sends each request as it comes due, behind
 * any still unanswered (the stream is pipelined), a delay or work
 * connection one at a time, so a due request waits there for the reply
 * before it. Either way its latency runs from when it was due. A failed
 * connection sends its unanswered requests again once it is open.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen/bench.h"

#define EVENT_BATCH 256
#define RECV_BUF (64 * 1024)
#define RETRY_MS 100
#define CONNECT_WINDOW 256	/* connects in flight, all threads together, */
#define CONNECT_MIN 16		/* but at least this many per thread */
#define STREAM_WINDOW 4		/* chunks unanswered per stream connection */
#define NS_PER_MS 1000000
#define NS_PER_S 1000000000

enum conn_state { CONN_CLOSED, CONN_CONNECTING, CONN_OPEN, CONN_RETRY };

/* How far a stamp reply ("1795000000\r\n") has been read. */
enum stamp_state { STAMP_DIGITS, STAMP_CR, STAMP_DONE };

struct conn {
	int fd;			/* -1 unless connecting or open */
	enum conn_state state;
	bool tried;		/* its first connect is over, either way */
	bool want_out;		/* EPOLLOUT is watched */
	unsigned char stamp;	/* enum stamp_state */
	unsigned char digits;
	unsigned char reply_len;	/* delay, work: of the reply line so far */
	uint64_t sent, received;	/* bytes since the connection opened */
	uint64_t chunk_end;	/* the message or chunk being sent ends here */
	uint64_t issued, answered, due;	/* requests, see the top */
	int64_t started;	/* ns: this message's send, or connrate's connect */
	int64_t since;		/* ns: the last progress; in CONN_RETRY, when due */
	struct conn *next;	/* on the retry queue */
	struct request req;	/* delay, work: the request in flight */
	char line[REQUEST_MAX];	/* its text */
	char reply[REPLY_MAX];
};

struct worker {
	struct bench_shared *sh;
	const struct bench_config *cfg;
	pthread_t thread;
	int epfd, wakefd;
	struct conn *conns;
	unsigned n_conns;
	unsigned first;		/* conns[0]'s number among all connections */
	unsigned next_first;	/* conns from here on were never opened */
	unsigned untried;	/* conns whose first connect is not over */
	bool reached;		/* a connect ever succeeded */
	unsigned connecting, max_connecting;
	unsigned open;
	unsigned next_source;
	struct conn *retry_head, *retry_tail;
	int phase;
	bool traffic;		/* warm-up or measurement: load runs */
	bool measuring;
	bool setup_reported;
	bool broken;
	int64_t now;		/* ns, as of the last wake-up or reply */
	int64_t next_sweep;
	/* --rate: request seq of the thread is due at t0 + seq * period_ns,
	 * on connection seq mod n_conns */
	double period_ns;
	int64_t t0, next_due;
	uint64_t seq;
	uint64_t rng;		/* work: classes and seeds (xorshift64) */
	struct bench_stats stats;
	struct bench_progress pub;
	struct epoll_event events[EVENT_BATCH];
	unsigned char buf[RECV_BUF];
};

static void conn_send(struct worker *w, struct conn *c);

static void count_error(struct worker *w, enum err_kind kind, int err)
{
	w->stats.errors[kind]++;
	if (!w->stats.first_errno[kind])
		w->stats.first_errno[kind] = err;
}

static int watch(struct worker *w, struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	return epoll_ctl(w->epfd, op, c->fd, &ev);
}

/* With reset, SO_LINGER {1, 0} makes close send a RST: when muxbench
 * closes first, a FIN would leave a TIME_WAIT socket here for a minute
 * per connection, and thousands of them would outlive the run. If the
 * option cannot be set, the FIN is the worst that happens. Linux frees
 * the descriptor even when close reports an error, so there is nothing
 * to retry. */
static void conn_close(struct worker *w, struct conn *c, bool reset)
{
	static const struct linger hard = { .l_onoff = 1, .l_linger = 0 };

	if (reset)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
	(void)close(c->fd);
	if (c->state == CONN_CONNECTING)
		w->connecting--;
	else if (c->state == CONN_OPEN)
		w->open--;
	c->fd = -1;
	c->state = CONN_CLOSED;
	c->want_out = false;
}

static void first_attempt_over(struct worker *w, struct conn *c)
{
	if (!c->tried) {
		c->tried = true;
		w->untried--;
	}
}

/* Count the error, close c and queue it to be opened again. What
 * muxbench gives up on (a wrong byte, a stall) is reset; what the server
 * closed or broke is closed plainly: any TIME_WAIT is then the server's. */
static void conn_fail(struct worker *w, struct conn *c, enum err_kind kind,
		      int err)
{
	count_error(w, kind, err);
	first_attempt_over(w, c);
	if (c->fd >= 0)
		conn_close(w, c, kind == ERR_WRONG || kind == ERR_TIMEOUT);
	c->state = CONN_RETRY;
	c->since = w->now + (int64_t)RETRY_MS * NS_PER_MS;
	c->next = NULL;
	if (w->retry_tail)
		w->retry_tail->next = c;
	else
		w->retry_head = c;
	w->retry_tail = c;
}

/* TCP_NODELAY: a message or chunk is one write and must not wait for
 * Nagle. Several sources: bind the address only; IP_BIND_ADDRESS_NO_PORT
 * leaves the port to connect, which may then reuse it towards other
 * destinations instead of reserving it for good. */
static int prepare_socket(struct worker *w, int fd)
{
	const struct bench_config *cfg = w->cfg;
	int one = 1;

	if (cfg->mode != MODE_CONNRATE && cfg->mode != MODE_IDLE &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		return -1;
	if (cfg->sources > 1) {
		struct sockaddr_in src = {
			.sin_family = AF_INET,
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK +
						 w->next_source++ % cfg->sources),
		};

		if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			       sizeof one) < 0 ||
		    bind(fd, (const struct sockaddr *)&src, sizeof src) < 0)
			return -1;
	}
	return 0;
}

/* Start a non-blocking connect. A persistent connection waits for
 * EPOLLOUT (connected); connrate waits for its reply and EOF directly.
 * EINTR from a non-blocking connect means it goes on in the background. */
static void conn_open(struct worker *w, struct conn *c)
{
	const struct bench_config *cfg = w->cfg;
	uint32_t events = cfg->mode == MODE_CONNRATE ? EPOLLIN | EPOLLRDHUP
						     : EPOLLOUT;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		conn_fail(w, c, ERR_CONNECT, errno);
		return;
	}
	c->fd = fd;
	c->state = CONN_CONNECTING;
	w->connecting++;
	c->sent = c->received = c->chunk_end = 0;
	c->issued = c->answered;	/* what was in flight goes again */
	c->reply_len = 0;
	c->stamp = STAMP_DIGITS;
	c->digits = 0;
	c->started = c->since = clock_ns();
	if (prepare_socket(w, fd) < 0 ||
	    (connect(fd, (const struct sockaddr *)&cfg->server,
		     sizeof cfg->server) < 0 &&
	     errno != EINPROGRESS && errno != EINTR) ||
	    watch(w, c, EPOLL_CTL_ADD, events) < 0)
		conn_fail(w, c, ERR_CONNECT, errno);
}

static bool want_out(struct worker *w, struct conn *c, bool on)
{
	if (c->want_out == on)
		return true;
	if (watch(w, c, EPOLL_CTL_MOD, on ? EPOLLIN | EPOLLOUT : EPOLLIN) < 0) {
		conn_fail(w, c, ERR_RESET, errno);
		return false;
	}
	c->want_out = on;
	return true;
}

static void conn_connected(struct worker *w, struct conn *c)
{
	w->connecting--;
	w->open++;
	c->state = CONN_OPEN;
	w->reached = true;
	first_attempt_over(w, c);
	w->now = clock_ns();
	c->since = w->now;
	if (watch(w, c, EPOLL_CTL_MOD, EPOLLIN) < 0) {
		conn_fail(w, c, ERR_CONNECT, errno);
		return;
	}
	if (w->traffic && w->cfg->mode != MODE_IDLE)
		conn_send(w, c);
}

static bool request_mode(const struct worker *w)
{
	return w->cfg->mode == MODE_DELAY || w->cfg->mode == MODE_WORK;
}

/* --rate: when request k of connection c was due. */
static int64_t due_time(const struct worker *w, const struct conn *c,
			uint64_t k)
{
	double seq = (double)k * w->n_conns + (double)(c - w->conns);

	return w->t0 + (int64_t)(seq * w->period_ns);
}

static void note_lateness(struct worker *w, const struct conn *c)
{
	int64_t late = w->now - due_time(w, c, c->issued);

	if (!w->measuring || late <= LATE_NS)
		return;
	w->stats.late++;
	if ((uint64_t)late > w->stats.late_max_ns)
		w->stats.late_max_ns = (uint64_t)late;
}

/* May c issue its next request? Closed loop: when nothing is owed;
 * --rate: when one is due, and for a request service nothing is owed. */
static bool may_issue(struct worker *w, struct conn *c)
{
	bool awaiting = c->issued != c->answered;

	if (awaiting && (w->cfg->rate == 0 || request_mode(w)))
		return false;		/* one at a time */
	if (w->cfg->rate && c->issued == c->due)
		return false;		/* none due yet */
	if (w->cfg->rate)
		note_lateness(w, c);
	if (!awaiting)
		c->since = w->now;	/* the stall clock starts now */
	c->started = w->now;
	c->issued++;
	return true;
}

static uint64_t xorshift64(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* work: a class drawn by weight, and a seed. */
static void draw_work(struct worker *w, struct request *req)
{
	const struct bench_config *cfg = w->cfg;
	uint64_t r = xorshift64(&w->rng) % cfg->weight_total;

	req->cls = 0;
	while (r >= cfg->classes[req->cls].weight)
		r -= cfg->classes[req->cls++].weight;
	req->seed = xorshift64(&w->rng);
}

/* delay, work: the next request's line. */
static size_t next_request(struct worker *w, struct conn *c)
{
	c->req.conn = w->first + (unsigned)(c - w->conns);
	c->req.number = c->issued;
	if (w->cfg->mode == MODE_WORK)
		draw_work(w, &c->req);
	return request_format(w->cfg, &c->req, c->line);
}

/* May c start another request, or chunk (stream: fewer than
 * STREAM_WINDOW are unanswered)? */
static bool next_chunk(struct worker *w, struct conn *c)
{
	uint64_t size = w->cfg->size;

	if (w->cfg->mode == MODE_STREAM) {
		if (c->sent - c->received > (STREAM_WINDOW - 1) * size)
			return false;
		if (c->sent == c->received)
			c->since = w->now;
	} else if (!may_issue(w, c)) {
		return false;
	}
	c->chunk_end += request_mode(w) ? next_request(w, c) : size;
	return true;
}

/* The bytes from c->sent on: the pattern, or the request line. */
static const void *send_from(const struct worker *w, const struct conn *c)
{
	if (request_mode(w))
		return c->line + strlen(c->line) - (c->chunk_end - c->sent);
	return w->sh->pattern + c->sent % BENCH_PERIOD;
}

/* Send what the mode allows. A short send means the socket buffer is
 * full: watch for EPOLLOUT instead of spending a send to hear EAGAIN. */
static void conn_send(struct worker *w, struct conn *c)
{
	for (;;) {
		size_t len;
		ssize_t n;

		if (c->sent == c->chunk_end && !next_chunk(w, c))
			break;
		len = (size_t)(c->chunk_end - c->sent);
		if (len > BENCH_PERIOD)
			len = BENCH_PERIOD;
		n = send(c->fd, send_from(w, c), len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			conn_fail(w, c, ERR_RESET, errno);
			return;
		}
		if (n > 0)
			c->sent += (uint64_t)n;
		if (n < (ssize_t)len) {
			want_out(w, c, true);
			return;
		}
	}
	want_out(w, c, false);
}

/* Compare n received bytes with what must come back at offset. */
static bool verify(const unsigned char *expect, uint64_t offset,
		   const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t len = n < BENCH_PERIOD ? n : BENCH_PERIOD;

		if (memcmp(p, expect + offset % BENCH_PERIOD, len) != 0)
			return false;
		p += len;
		offset += len;
		n -= len;
	}
	return true;
}

/* The oldest request owed on c is answered: its latency runs from its
 * send, or with --rate from when it was due. */
static void request_done(struct worker *w, struct conn *c)
{
	int64_t from = w->cfg->rate ? due_time(w, c, c->answered) : c->started;
	uint64_t latency;

	c->answered++;
	if (!w->measuring)
		return;
	latency = (uint64_t)(w->now - from);
	w->stats.messages++;
	hist_record(&w->stats.latency, latency);
	if (w->cfg->mode == MODE_WORK)
		hist_record(&w->stats.class_latency[c->req.cls], latency);
}

/* delay, work: n bytes of the reply line. Bytes past its LF, a line
 * longer than any right one, or a line other than the one the request
 * must get are wrong; so is a delay reply sooner than its milliseconds
 * after the send. */
static void line_received(struct worker *w, struct conn *c, size_t n)
{
	const char *lf = memchr(w->buf, '\n', n);
	int64_t delay_ns = (int64_t)w->cfg->delay_ms * NS_PER_MS;

	if (c->issued == c->answered || (lf && lf + 1 != (char *)w->buf + n) ||
	    c->reply_len + n > REPLY_MAX) {
		conn_fail(w, c, ERR_WRONG, 0);
		return;
	}
	memcpy(c->reply + c->reply_len, w->buf, n);
	c->reply_len += (unsigned char)n;
	if (!lf)
		return;
	w->now = clock_ns();
	if (!reply_ok(w->cfg, &c->req, c->reply, c->reply_len) ||
	    (w->cfg->mode == MODE_DELAY && w->now - c->started < delay_ns)) {
		conn_fail(w, c, ERR_WRONG, 0);
		return;
	}
	if (w->measuring)
		w->stats.bytes += c->reply_len;
	c->reply_len = 0;
	request_done(w, c);
	conn_send(w, c);
}

/* Bytes beyond those sent, or a byte other than the expected one: the
 * reply is wrong. A pingpong read may end several pipelined replies. */
static void pattern_received(struct worker *w, struct conn *c, size_t n)
{
	uint64_t size = w->cfg->size, before = c->received;

	if (before + n > c->sent || !verify(w->sh->expect, before, w->buf, n)) {
		conn_fail(w, c, ERR_WRONG, 0);
		return;
	}
	c->received += n;
	if (w->measuring)
		w->stats.bytes += n;
	if (w->cfg->mode == MODE_STREAM) {
		if (w->measuring)
			w->stats.messages += c->received / size - before / size;
	} else if (c->received / size > before / size) {
		w->now = clock_ns();
		for (uint64_t k = before / size; k < c->received / size; k++)
			request_done(w, c);
	}
	conn_send(w, c);
}

/* Any byte at all in idle mode is wrong. */
static void conn_received(struct worker *w, struct conn *c, size_t n)
{
	if (w->cfg->mode == MODE_IDLE) {
		conn_fail(w, c, ERR_WRONG, 0);
		return;
	}
	c->since = w->now;
	if (request_mode(w))
		line_received(w, c, n);
	else
		pattern_received(w, c, n);
}

/* One recv per readiness report: level-triggered epoll says again if
 * more is waiting, and EAGAIN or EINTR leave it to do so. */
static void conn_read(struct worker *w, struct conn *c)
{
	ssize_t n = recv(c->fd, w->buf, sizeof w->buf, 0);

	if (n > 0)
		conn_received(w, c, (size_t)n);
	else if (n == 0)
		conn_fail(w, c, ERR_EOF, 0);
	else if (errno != EAGAIN && errno != EINTR)
		conn_fail(w, c, ERR_RESET, errno);
}

/* connrate: ASCII digits (1 to 20 of them), CR LF, then nothing. */
static bool stamp_take(struct conn *c, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (c->stamp) {
		case STAMP_DIGITS:
			if (p[i] >= '0' && p[i] <= '9' && c->digits < 20)
				c->digits++;
			else if (p[i] == '\r' && c->digits > 0)
				c->stamp = STAMP_CR;
			else
				return false;
			break;
		case STAMP_CR:
			if (p[i] != '\n')
				return false;
			c->stamp = STAMP_DONE;
			break;
		default:
			return false;
		}
	}
	return true;
}

/* The server closed first, so TIME_WAIT is on its side and this close
 * leaves nothing behind; the worker connects again at once. */
static void connrate_done(struct worker *w, struct conn *c)
{
	if (c->stamp != STAMP_DONE) {
		conn_fail(w, c, ERR_EOF, 0);
		return;
	}
	w->now = clock_ns();
	if (w->measuring) {
		w->stats.connects++;
		hist_record(&w->stats.latency, (uint64_t)(w->now - c->started));
	}
	conn_close(w, c, false);
	conn_open(w, c);
}

/* Errors a connect reports, as opposed to a connection that broke. */
static bool connect_errno(int err)
{
	return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH ||
	       err == ENETUNREACH || err == EADDRNOTAVAIL;
}

/* A read that takes less than the buffer after a report with EPOLLRDHUP
 * took everything before the FIN: the next read could only say EOF, so
 * it is not made. */
static void connrate_event(struct worker *w, struct conn *c, uint32_t events)
{
	for (;;) {
		ssize_t n = recv(c->fd, w->buf, sizeof w->buf, 0);

		if (n >= 0) {
			w->reached = true;
			first_attempt_over(w, c);
		}
		if (n > 0) {
			if (!stamp_take(c, w->buf, (size_t)n)) {
				conn_fail(w, c, ERR_WRONG, 0);
				return;
			}
			c->received += (uint64_t)n;
			if (!(events & EPOLLRDHUP) || (size_t)n == sizeof w->buf)
				continue;
			n = 0;
		}
		if (n == 0) {
			connrate_done(w, c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			conn_fail(w, c, connect_errno(errno) ? ERR_CONNECT : ERR_RESET,
				  errno);
		return;
	}
}

static int socket_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err ? err : ECONNABORTED;
}

static void conn_event(struct worker *w, struct conn *c, uint32_t events)
{
	if (w->cfg->mode == MODE_CONNRATE) {
		connrate_event(w, c, events);
		return;
	}
	if (c->state == CONN_CONNECTING) {
		int err = (events & (EPOLLERR | EPOLLHUP)) ? socket_error(c->fd) : 0;

		/* A reset that came before the connect was seen to complete
		 * still broke an established connection. */
		if (err)
			conn_fail(w, c, connect_errno(err) ? ERR_CONNECT : ERR_RESET,
				  err);
		else
			conn_connected(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(w, c);
	if (c->state == CONN_OPEN && (events & EPOLLOUT))
		conn_send(w, c);
}

/* --rate: the requests that have come due, each on its connection. */
static void advance_schedule(struct worker *w)
{
	while (w->next_due <= w->now) {
		struct conn *c = &w->conns[w->seq % w->n_conns];

		c->due++;
		w->seq++;
		w->next_due = w->t0 + (int64_t)((double)w->seq * w->period_ns);
		if (c->state == CONN_OPEN)
			conn_send(w, c);
	}
}

/* The closed loops start at once; the schedule from now on. */
static void start_traffic(struct worker *w)
{
	w->traffic = true;
	if (w->cfg->mode == MODE_CONNRATE || w->cfg->mode == MODE_IDLE)
		return;
	w->now = clock_ns();
	if (w->cfg->rate) {
		w->t0 = w->next_due = w->now;
		advance_schedule(w);
		return;
	}
	for (unsigned i = 0; i < w->n_conns; i++) {
		if (w->conns[i].state != CONN_OPEN)
			continue;
		w->now = clock_ns();
		conn_send(w, &w->conns[i]);
	}
}

/* --rate: requests due and unanswered as the measurement ends. */
static void count_unanswered(struct worker *w)
{
	for (unsigned i = 0; i < w->n_conns; i++)
		w->stats.unanswered += w->conns[i].due - w->conns[i].answered;
}

/* The eventfd only wakes the thread; the phase itself is in sh. */
static void phase_changed(struct worker *w)
{
	uint64_t count;

	while (read(w->wakefd, &count, sizeof count) < 0 && errno == EINTR)
		;
	w->phase = atomic_load(&w->sh->phase);
	if (w->measuring && w->phase != PHASE_MEASURE && w->cfg->rate)
		count_unanswered(w);
	w->measuring = w->phase == PHASE_MEASURE;
	if (w->phase == PHASE_WARMUP || w->phase == PHASE_MEASURE)
		if (!w->traffic)
			start_traffic(w);
}

/* Due retries first, then connections never opened, while fewer than
 * max_connecting connects are in flight, so that a listen backlog is
 * not overrun. connrate starts its workers with the load. */
static void open_more(struct worker *w)
{
	while (w->retry_head && w->retry_head->since <= w->now &&
	       w->connecting < w->max_connecting) {
		struct conn *c = w->retry_head;

		w->retry_head = c->next;
		if (!w->retry_head)
			w->retry_tail = NULL;
		conn_open(w, c);
	}
	if (w->cfg->mode == MODE_CONNRATE && !w->traffic)
		return;
	while (w->next_first < w->n_conns && w->connecting < w->max_connecting)
		conn_open(w, &w->conns[w->next_first++]);
}

/* Is an answer owed on open connection c? */
static bool owed(const struct worker *w, const struct conn *c)
{
	if (w->cfg->mode == MODE_STREAM)
		return c->sent > c->received;
	return c->issued != c->answered;
}

/* Once a second: a connect, or an answer owed, with no progress for
 * BENCH_STALL_S (and a delay request's milliseconds) is a timeout. */
static void sweep(struct worker *w)
{
	int64_t limit = w->now - (int64_t)BENCH_STALL_S * NS_PER_S -
			(int64_t)w->cfg->delay_ms * NS_PER_MS;

	for (unsigned i = 0; i < w->n_conns; i++) {
		struct conn *c = &w->conns[i];
		bool stalled = c->state == CONN_CONNECTING ||
			       (c->state == CONN_OPEN && owed(w, c));

		if (stalled && c->since < limit)
			conn_fail(w, c, ERR_TIMEOUT, 0);
	}
	w->next_sweep = w->now + NS_PER_S;
}

/* Until the next sweep, due retry or due request; a retry held back by
 * the connect window waits for a connect to finish instead of spinning.
 * To the nanosecond: a schedule of requests a few microseconds apart
 * would be late by up to a millisecond with epoll_wait's timeout. */
static struct timespec wait_timeout(const struct worker *w)
{
	int64_t next = w->next_sweep, ns;

	if (w->retry_head && w->connecting < w->max_connecting &&
	    w->retry_head->since < next)
		next = w->retry_head->since;
	if (w->traffic && w->cfg->rate && w->next_due < next)
		next = w->next_due;
	ns = next > w->now ? next - w->now : 0;
	return (struct timespec){ .tv_sec = ns / NS_PER_S,
				  .tv_nsec = ns % NS_PER_S };
}

static void publish(struct worker *w)
{
	struct bench_progress *p = &w->pub;

	atomic_store_explicit(&p->done, w->stats.messages + w->stats.connects,
			      memory_order_relaxed);
	atomic_store_explicit(&p->bytes, w->stats.bytes, memory_order_relaxed);
	atomic_store_explicit(&p->errors, errors_total(&w->stats),
			      memory_order_relaxed);
	atomic_store_explicit(&p->open, w->open, memory_order_relaxed);
	atomic_store_explicit(&p->tried, w->n_conns - w->untried,
			      memory_order_relaxed);
	atomic_store_explicit(&p->reached, w->reached, memory_order_relaxed);
	/* connrate opens nothing before the load: no set-up to wait for */
	if (!w->setup_reported &&
	    (w->untried == 0 || w->cfg->mode == MODE_CONNRATE)) {
		atomic_store_explicit(&p->open_at_setup, w->open,
				      memory_order_relaxed);
		atomic_fetch_add_explicit(&w->sh->ready, 1, memory_order_release);
		w->setup_reported = true;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->now = clock_ns();
	w->next_sweep = w->now + NS_PER_S;
	phase_changed(w);
	while (w->phase != PHASE_DONE) {
		struct timespec timeout = wait_timeout(w);
		int n;

		open_more(w);
		publish(w);
		n = epoll_pwait2(w->epfd, w->events, EVENT_BATCH, &timeout, NULL);
		w->now = clock_ns();
		if (n < 0 && errno != EINTR) {
			bench_log("epoll_pwait2: %s", strerror(errno));
			w->broken = true;
			w->untried = 0;		/* main must not wait for setup */
			publish(w);
			break;
		}
		for (int i = 0; i < n; i++) {
			if (w->events[i].data.ptr)
				conn_event(w, w->events[i].data.ptr, w->events[i].events);
			else
				phase_changed(w);
		}
		if (w->traffic && w->cfg->rate && w->phase != PHASE_DONE)
			advance_schedule(w);
		if (w->now >= w->next_sweep)
			sweep(w);
	}
	for (unsigned i = 0; i < w->n_conns; i++)
		if (w->conns[i].fd >= 0)
			conn_close(w, &w->conns[i], true);
	return NULL;
}

static void init_progress(struct bench_progress *p)
{
	atomic_init(&p->done, 0);
	atomic_init(&p->bytes, 0);
	atomic_init(&p->errors, 0);
	atomic_init(&p->open, 0);
	atomic_init(&p->open_at_setup, 0);
	atomic_init(&p->tried, 0);
	atomic_init(&p->reached, false);
}

static void init_conns(struct worker *w, unsigned first)
{
	const struct bench_config *cfg = w->cfg;
	unsigned window = CONNECT_WINDOW / cfg->threads;

	for (unsigned i = 0; i < w->n_conns; i++)
		w->conns[i].fd = -1;
	w->first = first;
	/* the thread's share of the rate is its share of the connections */
	if (cfg->rate)
		w->period_ns = 1e9 * cfg->connections /
			       ((double)cfg->rate * w->n_conns);
	w->rng = 0x6d75786265ull + first;	/* never 0, which xorshift keeps */
	w->next_source = first;	/* slot k's first source is k mod sources */
	w->untried = w->n_conns;
	w->max_connecting = cfg->mode == MODE_CONNRATE ? w->n_conns
			  : window < CONNECT_MIN ? CONNECT_MIN : window;
}

struct worker *worker_create(struct bench_shared *sh, unsigned first,
			     unsigned n, char *err, size_t err_len)
{
	struct worker *w = calloc(1, sizeof *w);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (!w) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	w->epfd = w->wakefd = -1;
	w->sh = sh;
	w->cfg = sh->cfg;
	w->n_conns = n;
	w->conns = calloc(n ? n : 1, sizeof *w->conns);
	hist_init(&w->stats.latency);
	for (unsigned k = 0; k < MAX_CLASSES; k++)
		hist_init(&w->stats.class_latency[k]);
	init_progress(&w->pub);
	if (!w->conns) {
		snprintf(err, err_len, "out of memory for %u connections", n);
	} else if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		snprintf(err, err_len, "epoll_create1: %s", strerror(errno));
	} else if ((w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		snprintf(err, err_len, "eventfd: %s", strerror(errno));
	} else if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) < 0) {
		snprintf(err, err_len, "epoll_ctl: %s", strerror(errno));
	} else {
		init_conns(w, first);
		return w;
	}
	worker_destroy(w);
	return NULL;
}

int worker_start(struct worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w);
}

/* An eventfd counter cannot overflow from a handful of writes, so only
 * EINTR is worth a retry. */
void worker_wake(struct worker *w)
{
	uint64_t one = 1;

	while (write(w->wakefd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

const struct bench_stats *worker_stats(const struct worker *w)
{
	return &w->stats;
}

const struct bench_progress *worker_progress(const struct worker *w)
{
	return &w->pub;
}

bool worker_broken(const struct worker *w)
{
	return w->broken;
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->wakefd >= 0)
		close(w->wakefd);
	free(w->conns);
	free(w);
}
