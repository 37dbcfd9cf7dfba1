/* conn_io.c -- a connection's bounded buffer and one turn of its I/O. */
#include "core/conn_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/buffer_cache.h"
#include "base/stats.h"
#include "base/trace.h"
#include "core/poller.h"

#define MAX_FDS_CAP (1 << 20)	/* fd table bound when RLIMIT_NOFILE is huge */

void buffer_pool_free(struct buffer_pool *p)
{
	buffer_cache_free(&p->cache);
}

/* Bytes in the buffer: output, or a request service's input. */
static size_t buffered(const struct conn_io *c)
{
	return c->tail - c->head;
}

static bool is_request(const struct conn_io *c)
{
	return c->request;
}

/* Bytes owed to the client, ready to write. */
static size_t pending(const struct conn_io *c)
{
	return is_request(c) ? c->reply_len - c->reply_sent : buffered(c);
}

static const unsigned char *pending_at(const struct conn_io *c)
{
	return is_request(c) ? c->reply + c->reply_sent : c->buf + c->head;
}

/* Free room at the tail; a half-drained buffer is compacted first so that
 * reads stay large. */
static size_t room(struct conn_io *c)
{
	if (!c->buf)
		return CONN_BUF_SIZE;
	if (c->head > 0 && c->tail > CONN_BUF_SIZE / 2) {
		memmove(c->buf, c->buf + c->head, buffered(c));
		c->tail -= c->head;
		c->head = 0;
	}
	return CONN_BUF_SIZE - c->tail;
}

/* A producer's input is read and thrown away (into the pool's scratch),
 * so a client that sends to chargen is never blocked by it. */
static bool wants_input(struct conn_io *c)
{
	return !c->read_eof && !c->session.close_after_flush &&
	       (svc_is_producer(&c->session) || room(c) > 0);
}

/* A request service can take its next line, or reply, with no readiness
 * at all: what it needs is in its buffer or its session. */
static bool request_can_advance(const struct conn_io *c)
{
	enum svc_need need;

	if (!is_request(c) || c->reply_len || c->away ||
	    c->session.close_after_flush)
		return false;
	need = svc_need(&c->session);
	return (need == SVC_INPUT && buffered(c)) || need == SVC_READY ||
	       (need == SVC_WORK && !c->offload);
}

bool conn_io_can_progress(struct conn_io *c)
{
	bool has_output = pending(c) || svc_is_producer(&c->session);

	return (has_output && c->can_write) || (c->can_read && wants_input(c)) ||
	       request_can_advance(c);
}

unsigned conn_io_interest(struct conn_io *c)
{
	unsigned mask = 0;

	if (wants_input(c))
		mask |= POLLER_READ;
	if (pending(c) && !c->can_write)
		mask |= POLLER_WRITE;
	return mask;
}

void conn_io_ready(struct conn_io *c, unsigned ready)
{
	c->can_read |= (ready & POLLER_READ) != 0;
	c->can_write |= (ready & POLLER_WRITE) != 0;
	c->peer_shut |= (ready & POLLER_HANGUP) != 0;
}

int conn_io_open(struct conn_io *c, struct buffer_pool *p, int fd,
		 const struct service *service)
{
	c->buf = buffer_cache_get(&p->cache);
	if (!c->buf)
		return -1;
	c->fd = fd;
	c->can_read = c->read_eof = c->peer_shut = false;
	c->can_write = true;	/* a new socket has room: greet at once */
	c->bytes_in = c->bytes_out = 0;
	c->head = 0;
	c->tail = svc_open(&c->session, service, time(NULL), c->buf);
	c->request = svc_is_request(&c->session);
	c->reply = NULL;
	c->reply_len = c->reply_sent = 0;
	c->offload = c->away = false;
	return 0;
}

void conn_io_release(struct conn_io *c, struct buffer_pool *p)
{
	if (c->buf)
		buffer_cache_put(&p->cache, c->buf);
	c->buf = NULL;
	if (!c->away)
		svc_close(&c->session);
}

int64_t conn_io_waiting_until(const struct conn_io *c)
{
	return is_request(c) && !c->offload && !c->reply_len &&
	       svc_need(&c->session) == SVC_WAIT ? svc_due(&c->session) : -1;
}

bool conn_io_owes_reply(const struct conn_io *c)
{
	return is_request(c) && (c->away || c->reply_len ||
				 svc_need(&c->session) != SVC_INPUT);
}

bool conn_io_to_offload(const struct conn_io *c)
{
	enum svc_need need;

	if (!is_request(c) || !c->offload || c->away || c->reply_len)
		return false;
	need = svc_need(&c->session);
	return need == SVC_WORK || need == SVC_WAIT;
}

/* Request services: take buffered input a line at a time until a line
 * waits (for its time, or for the caller where offload) or its reply is
 * out. An offloaded line is back with its wait over or its work done. */
static void advance_request(struct conn_io *c, int64_t now)
{
	size_t taken;

	if (c->reply_len || c->away)
		return;
	if (svc_advance(&c->session, c->buf ? c->buf + c->head : NULL,
			buffered(c), &taken, now, !c->offload) == SVC_NEXT_REPLY) {
		/* Work is done by svc_reply, here on the loop: traced. */
		bool work = trace_on && svc_need(&c->session) == SVC_WORK;
		int64_t begin = trace_begin();

		c->reply_len = svc_reply(&c->session, &c->reply);
		c->reply_sent = 0;
		if (work)
			trace_span(TRACE_WORK, begin, c->fd, 0);
	}
	c->head += taken;
	if (!buffered(c))
		c->head = c->tail = 0;
}

/* conn_read's end of a request service's connection by its client. */
#define CLIENT_GONE (-2)

/* Returns 0, or -1 when the connection is finished (error or reset), or
 * CLIENT_GONE. */
static int conn_read(struct conn_io *c, struct buffer_pool *p, bool *moved)
{
	bool producer = svc_is_producer(&c->session);
	unsigned char *into = producer ? p->scratch : c->buf + c->tail;
	size_t space = producer ? sizeof p->scratch : room(c);
	ssize_t n = read(c->fd, into, space);

	stat_read(n);
	trace_io(TRACE_READ, c->fd, n);
	if (n > 0) {
		c->bytes_in += (size_t)n;
		c->tail += is_request(c) ? (size_t)n
					 : svc_input(&c->session, into, (size_t)n);
		/* A short read has drained the socket: whatever comes next,
		 * data or a FIN, raises a new report, level- or edge-triggered.
		 * Only a FIN that came with this data has no report of its own
		 * to come, and the poller said so: read on to its end of file. */
		if ((size_t)n < space && !c->peer_shut)
			c->can_read = false;
		*moved = true;
		return 0;
	}
	if (n == 0) {
		c->read_eof = true;
		c->can_read = false;
		svc_eof(&c->session);
		/* A request service's client is gone: nothing more is sent. */
		if (is_request(c) && (conn_io_owes_reply(c) || buffered(c)))
			return CLIENT_GONE;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->can_read = false;
		return 0;
	}
	return errno == EINTR ? 0 : -1;
}

/* n bytes of the output are written. */
static void written(struct conn_io *c, size_t n)
{
	if (!is_request(c)) {
		c->head += n;
		if (c->head == c->tail)
			c->head = c->tail = 0;
		return;
	}
	c->reply_sent += n;
	if (c->reply_sent == c->reply_len) {
		svc_replied(&c->session);
		c->reply = NULL;
		c->reply_len = c->reply_sent = 0;
	}
}

static int conn_write(struct conn_io *c, bool *moved)
{
	size_t len = pending(c);
	ssize_t n = write(c->fd, pending_at(c), len);

	stat_write(n);
	trace_io(TRACE_WRITE, c->fd, n);
	if (n > 0) {
		c->bytes_out += (size_t)n;
		if ((size_t)n < len)
			c->can_write = false;	/* socket buffer full */
		written(c, (size_t)n);
		*moved = true;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->can_write = false;
		return 0;
	}
	return n < 0 && errno == EINTR ? 0 : -1;
}

const char *conn_io_turn(struct conn_io *c, struct buffer_pool *p, int budget,
			 int64_t now, bool *moved)
{
	*moved = false;
	if (!c->buf && (c->can_read || svc_is_producer(&c->session)) &&
	    !(c->buf = buffer_cache_get(&p->cache)))
		return "out of memory";
	for (; budget > 0; budget--) {
		int rc;

		if (svc_is_producer(&c->session)) {
			size_t space = room(c);

			c->tail += svc_fill(&c->session, c->buf + c->tail, space);
		}
		if (is_request(c))
			advance_request(c, now);
		if (pending(c) && c->can_write)
			rc = conn_write(c, moved);
		else if (c->can_read && wants_input(c))
			rc = conn_read(c, p, moved);
		else
			break;
		if (rc == CLIENT_GONE)
			return "client gone before its reply";
		if (rc < 0)
			return strerror(errno);
	}
	if (c->session.close_after_flush && !pending(c))
		return "done";
	if (c->buf && !buffered(c)) {
		buffer_cache_put(&p->cache, c->buf);
		c->buf = NULL;
		c->head = c->tail = 0;
	}
	return NULL;
}

int conn_table_size(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > MAX_FDS_CAP)
		return MAX_FDS_CAP;
	return (int)rl.rlim_cur;
}
