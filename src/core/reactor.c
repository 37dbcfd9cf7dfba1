/* reactor.c -- one thread, many non-blocking connections.
 *
 * Readiness is remembered per connection (can_read, can_write) and used up
 * only by a short read or write or EAGAIN, so level- and edge-triggered
 * pollers drive the same code. Connections with readiness left go on a
 * ready list and get at most IO_BUDGET system calls per turn, round robin:
 * a client that floods cannot starve the others, and nothing waits for a
 * notification the kernel will not send again.
 *
 * Each connection has one fixed buffer. Input is read into its free tail
 * and rewritten there by the service, so a full buffer means "stop reading
 * until the client takes its output": TCP flow control does the rest, and
 * memory per connection never exceeds sizeof(struct conn) plus one buffer.
 * A connection holds its buffer only while there is something in it, so an
 * idle connection costs its struct conn alone; emptied buffers wait on a
 * short free list for the next connection that needs one.
 */
#include "core/reactor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "core/accept_pause.h"
#include "core/spares.h"
#include "services/service.h"

#define IO_BUDGET 16		/* system calls per connection per turn */
#define ACCEPT_BUDGET 64	/* accepts per listener per turn */
#define EVENT_BATCH 512		/* readiness reports per wait */
#define MAX_FDS_CAP (1 << 20)	/* fd table bound when RLIMIT_NOFILE is huge */

struct conn {
	int fd;
	unsigned watched;	/* mask registered with the poller */
	bool can_read, can_write;
	bool peer_shut;		/* the poller reported POLLER_HANGUP */
	bool read_eof;
	struct list ready;	/* on reactor.ready while readiness is left */
	struct list idle;	/* reactor.idle is ordered by last_active */
	int64_t last_active;
	const struct listener *listener;
	union net_peer peer;	/* for the -v lines only */
	unsigned long long bytes_in, bytes_out;
	struct svc_session session;
	size_t head, tail;	/* unsent output is buf[head, tail) */
	unsigned char *buf;	/* CONN_BUF_SIZE bytes, or NULL while empty */
};

struct reactor {
	const struct poller *ops;
	void *poller;
	const struct server *srv;
	struct conn **conns;	/* by descriptor */
	int max_fds;
	struct poller_event *events;
	bool *listener_ready;
	struct list ready;
	struct list idle;
	unsigned n_conns;
	bool listening;		/* listeners watched (not paused or closed) */
	bool stopping;
	int64_t now;
	struct accept_pause pause;
	struct spares spares;
	unsigned char scratch[CONN_BUF_SIZE];	/* producers' input, thrown away */
};

static size_t pending(const struct conn *c)
{
	return c->tail - c->head;
}

/* Free room at the tail; a half-drained buffer is compacted first so that
 * reads stay large. */
static size_t room(struct conn *c)
{
	if (!c->buf)
		return CONN_BUF_SIZE;
	if (c->head > 0 && c->tail > CONN_BUF_SIZE / 2) {
		memmove(c->buf, c->buf + c->head, pending(c));
		c->tail -= c->head;
		c->head = 0;
	}
	return CONN_BUF_SIZE - c->tail;
}

/* A producer's input is read and thrown away (into the reactor's
 * scratch), so a client that sends to chargen is never blocked by it. */
static bool wants_input(struct conn *c)
{
	return !c->read_eof && !c->session.close_after_flush &&
	       (svc_is_producer(&c->session) || room(c) > 0);
}

static bool can_progress(struct conn *c)
{
	bool has_output = pending(c) || svc_is_producer(&c->session);

	return (has_output && c->can_write) || (c->can_read && wants_input(c));
}

static void touch(struct reactor *r, struct conn *c)
{
	c->last_active = r->now;
	list_remove(&c->idle);
	list_append(&r->idle, &c->idle);
}

static void conn_close(struct reactor *r, struct conn *c, const char *why)
{
	log_conn_close(c->listener, &c->peer.sa, c->fd, why, c->bytes_in,
		       c->bytes_out);
	r->ops->forget(r->poller, c->fd, c->watched);
	r->conns[c->fd] = NULL;
	list_remove(&c->ready);
	list_remove(&c->idle);
	close(c->fd);
	if (c->buf)
		spares_put(&r->spares, c->buf);
	free(c);
	r->n_conns--;
}

/* Returns 0, or -1 when the connection is finished (error or reset). */
static int conn_read(struct reactor *r, struct conn *c)
{
	bool producer = svc_is_producer(&c->session);
	unsigned char *into = producer ? r->scratch : c->buf + c->tail;
	size_t space = producer ? sizeof r->scratch : room(c);
	ssize_t n = read(c->fd, into, space);

	stat_read(n);
	if (n > 0) {
		c->bytes_in += (size_t)n;
		c->tail += svc_input(&c->session, into, (size_t)n);
		/* A short read has drained the socket: whatever comes next,
		 * data or a FIN, raises a new report, level- or edge-triggered.
		 * Only a FIN that came with this data has no report of its own
		 * to come, and the poller said so: read on to its end of file. */
		if ((size_t)n < space && !c->peer_shut)
			c->can_read = false;
		touch(r, c);
		return 0;
	}
	if (n == 0) {
		c->read_eof = true;
		c->can_read = false;
		svc_eof(&c->session);
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->can_read = false;
		return 0;
	}
	return errno == EINTR ? 0 : -1;
}

static int conn_write(struct reactor *r, struct conn *c)
{
	ssize_t n = write(c->fd, c->buf + c->head, pending(c));

	stat_write(n);
	if (n > 0) {
		c->bytes_out += (size_t)n;
		c->head += (size_t)n;
		if (c->head == c->tail)
			c->head = c->tail = 0;
		else
			c->can_write = false;	/* socket buffer full */
		touch(r, c);
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->can_write = false;
		return 0;
	}
	return n < 0 && errno == EINTR ? 0 : -1;
}

/* Register what the connection waits for now: input while it has room,
 * output while the socket refused some. */
static int update_watch(struct reactor *r, struct conn *c)
{
	unsigned mask = 0;

	if (wants_input(c))
		mask |= POLLER_READ;
	if (pending(c) && !c->can_write)
		mask |= POLLER_WRITE;
	if (mask == c->watched)
		return 0;
	if (r->ops->watch(r->poller, c->fd, c->watched, mask) < 0)
		return -1;
	c->watched = mask;
	return 0;
}

static void conn_run(struct reactor *r, struct conn *c)
{
	if (!c->buf && (c->can_read || svc_is_producer(&c->session)) &&
	    !(c->buf = spares_get(&r->spares))) {
		conn_close(r, c, "out of memory");
		return;
	}
	for (int budget = IO_BUDGET; budget > 0; budget--) {
		int rc;

		if (svc_is_producer(&c->session)) {
			size_t space = room(c);

			c->tail += svc_fill(&c->session, c->buf + c->tail, space);
		}
		if (pending(c) && c->can_write)
			rc = conn_write(r, c);
		else if (c->can_read && wants_input(c))
			rc = conn_read(r, c);
		else
			break;
		if (rc < 0) {
			conn_close(r, c, strerror(errno));
			return;
		}
	}
	if (c->session.close_after_flush && !pending(c)) {
		conn_close(r, c, "done");
		return;
	}
	if (c->buf && !pending(c)) {
		spares_put(&r->spares, c->buf);
		c->buf = NULL;
		c->head = c->tail = 0;
	}
	if (update_watch(r, c) < 0) {
		conn_close(r, c, strerror(errno));
		return;
	}
	if (can_progress(c))
		list_append(&r->ready, &c->ready);
}

static void run_ready(struct reactor *r)
{
	struct list turn;

	/* Connections queued again during this turn wait for the next one. */
	if (list_empty(&r->ready))
		return;
	turn = r->ready;
	turn.next->prev = &turn;
	turn.prev->next = &turn;
	list_init(&r->ready);
	while (!list_empty(&turn)) {
		struct conn *c = LIST_ENTRY(turn.next, struct conn, ready);

		list_remove(&c->ready);
		conn_run(r, c);
	}
}

static void conn_open(struct reactor *r, int fd, const struct listener *l,
		      const struct sockaddr_storage *peer)
{
	struct conn *c;

	if (fd >= r->max_fds) {
		log_error("refused %s connection: fd %d is beyond the table of %d",
			  l->service->name, fd, r->max_fds);
		close(fd);
		return;
	}
	if (r->n_conns >= r->srv->max_conns) {
		stat_add(STAT_REFUSED, 1);
		log_conn("refused %s connection: %u open (--max-conns)",
			 l->service->name, r->n_conns);
		close(fd);
		return;
	}
	c = malloc(sizeof *c);
	if (c && !(c->buf = spares_get(&r->spares))) {
		free(c);
		c = NULL;
	}
	if (!c) {
		log_error("refused %s connection: out of memory", l->service->name);
		close(fd);
		return;
	}
	c->fd = fd;
	c->watched = 0;
	c->can_read = c->read_eof = c->peer_shut = false;
	c->can_write = true;	/* a new socket has room: greet at once */
	c->listener = l;
	memcpy(&c->peer, peer, sizeof c->peer);	/* IPv4 and IPv6 fit */
	c->bytes_in = c->bytes_out = 0;
	c->head = 0;
	c->tail = svc_open(&c->session, l->service, time(NULL), c->buf);
	list_init(&c->ready);
	list_init(&c->idle);
	r->conns[fd] = c;
	r->n_conns++;
	stat_add(STAT_ACCEPTED, 1);
	touch(r, c);
	log_conn_open(l, &c->peer.sa, fd);
	conn_run(r, c);
}

static void watch_listeners(struct reactor *r, bool on)
{
	for (size_t i = 0; i < r->srv->n_listeners; i++) {
		int fd = r->srv->listeners[i].fd;

		if (r->ops->watch(r->poller, fd, on ? 0 : POLLER_READ,
				  on ? POLLER_READ : 0) < 0)
			log_error("watch listener fd %d: %s", fd, strerror(errno));
		/* Edge-triggered pollers report only new connections: after a
		 * pause, look for the ones that queued meanwhile. */
		r->listener_ready[i] = on;
	}
	r->listening = on;
}

/* Out of descriptors: stop accepting for a moment instead of spinning on a
 * listener that stays readable; open connections go on being served. */
static void pause_accepting(struct reactor *r, int err)
{
	accept_pause_start(&r->pause, err, r->now);
	watch_listeners(r, false);
}

static void accept_from(struct reactor *r, size_t i)
{
	const struct listener *l = &r->srv->listeners[i];

	for (int budget = ACCEPT_BUDGET; budget > 0; budget--) {
		struct sockaddr_storage peer;
		int fd = net_accept(l->fd, true, &peer);

		if (fd >= 0) {
			accept_pause_end(&r->pause);
			conn_open(r, fd, l, &peer);
			continue;
		}
		if (net_out_of_resources(errno))
			pause_accepting(r, errno);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_error("accept %s: %s", l->service->name, strerror(errno));
		r->listener_ready[i] = false;
		return;
	}
}

static void accept_ready(struct reactor *r)
{
	if (!r->listening && !r->stopping && r->now >= r->pause.until)
		watch_listeners(r, true);
	for (size_t i = 0; i < r->srv->n_listeners && r->listening; i++)
		if (r->listener_ready[i])
			accept_from(r, i);
}

static bool any_listener_ready(const struct reactor *r)
{
	for (size_t i = 0; r->listening && i < r->srv->n_listeners; i++)
		if (r->listener_ready[i])
			return true;
	return false;
}

static void stop_listening(struct reactor *r)
{
	if (r->listening)
		watch_listeners(r, false);
	for (size_t i = 0; i < r->srv->n_listeners; i++)
		close(r->srv->listeners[i].fd);
	r->stopping = true;
	log_stopping(r->n_conns, r->srv->grace);
}

static void expire_idle(struct reactor *r)
{
	int64_t timeout = (int64_t)r->srv->idle_timeout * 1000;

	while (timeout && !list_empty(&r->idle)) {
		struct conn *c = LIST_ENTRY(r->idle.next, struct conn, idle);

		if (r->now - c->last_active < timeout)
			return;
		net_reset_if_stuck(c->fd);
		stat_add(STAT_TIMED_OUT, 1);
		conn_close(r, c, "idle timeout");
	}
}

static int min_timeout(int a, int64_t b)
{
	if (b < 0)
		b = 0;
	if (b > 60000)
		b = 60000;
	return a < 0 || b < a ? (int)b : a;
}

static int next_timeout(const struct reactor *r)
{
	int t = -1;

	if (!list_empty(&r->ready) || any_listener_ready(r))
		return 0;
	if (r->srv->idle_timeout && !list_empty(&r->idle)) {
		const struct conn *oldest =
			LIST_ENTRY(r->idle.next, struct conn, idle);

		t = min_timeout(t, oldest->last_active +
				   (int64_t)r->srv->idle_timeout * 1000 - r->now);
	}
	if (!r->listening && !r->stopping)
		t = min_timeout(t, r->pause.until - r->now);
	if (r->stopping)
		t = min_timeout(t, sig_grace_left_ms());
	return t;
}

static void dispatch(struct reactor *r, const struct poller_event *ev)
{
	struct conn *c = r->conns[ev->fd];

	if (ev->fd == sig_wakeup_fd()) {
		sig_drain();
		if (sig_stop_requested() && !r->stopping)
			stop_listening(r);
	} else if (c) {
		c->can_read |= (ev->ready & POLLER_READ) != 0;
		c->can_write |= (ev->ready & POLLER_WRITE) != 0;
		c->peer_shut |= (ev->ready & POLLER_HANGUP) != 0;
		list_remove(&c->ready);
		list_append(&r->ready, &c->ready);
	} else {
		for (size_t i = 0; i < r->srv->n_listeners; i++)
			if (r->srv->listeners[i].fd == ev->fd)
				r->listener_ready[i] = true;
	}
}

static bool finished(const struct reactor *r)
{
	return r->stopping && (r->n_conns == 0 || sig_grace_left_ms() == 0);
}

static int table_size(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > MAX_FDS_CAP)
		return MAX_FDS_CAP;
	return (int)rl.rlim_cur;
}

static int reactor_init(struct reactor *r, const struct engine *self,
			const struct server *srv)
{
	memset(r, 0, sizeof *r);
	r->ops = self->poller;
	r->srv = srv;
	r->max_fds = table_size();
	list_init(&r->ready);
	list_init(&r->idle);
	r->now = clock_ms();
	r->conns = calloc((size_t)r->max_fds, sizeof *r->conns);
	r->events = calloc(EVENT_BATCH, sizeof *r->events);
	r->listener_ready = calloc(srv->n_listeners, sizeof *r->listener_ready);
	if (!r->conns || !r->events || !r->listener_ready)
		return -1;
	r->poller = r->ops->create(r->max_fds, EVENT_BATCH);
	if (!r->poller)
		return -1;
	if (r->ops->watch(r->poller, sig_wakeup_fd(), 0, POLLER_READ) < 0)
		return -1;
	watch_listeners(r, true);
	return 0;
}

static void reactor_free(struct reactor *r)
{
	while (!list_empty(&r->idle)) {
		struct conn *c = LIST_ENTRY(r->idle.next, struct conn, idle);

		net_reset_if_stuck(c->fd);	/* the grace period is over */
		conn_close(r, c, "server stopped");
	}
	if (!r->stopping)
		for (size_t i = 0; i < r->srv->n_listeners; i++)
			close(r->srv->listeners[i].fd);
	spares_free(&r->spares);
	if (r->poller)
		r->ops->destroy(r->poller);
	free(r->conns);
	free(r->events);
	free(r->listener_ready);
}

int reactor_run(const struct engine *self, const struct server *srv)
{
	struct reactor r;
	int status = 0;

	if (reactor_init(&r, self, srv) < 0) {
		log_error("%s: cannot start: %s", self->name, strerror(errno));
		reactor_free(&r);
		return 1;
	}
	while (!finished(&r)) {
		int n = r.ops->wait(r.poller, next_timeout(&r), r.events);

		stat_add(STAT_SYS_WAIT, 1);
		if (n < 0 && errno != EINTR) {
			log_error("%s: wait: %s", self->name, strerror(errno));
			status = 1;
			break;
		}
		r.now = clock_ms();
		for (int i = 0; i < n; i++)
			dispatch(&r, &r.events[i]);
		accept_ready(&r);
		run_ready(&r);
		expire_idle(&r);
	}
	reactor_free(&r);
	return status;
}
