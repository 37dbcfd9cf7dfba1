/* engine_io_uring.c -- completions instead of readiness, on io_uring(7).
 *
 * epoll-lt asks the kernel which sockets are ready, then calls accept,
 * read and write itself: at least two system calls per echoed message.
 * Here muxd queues the operations and the kernel performs them, posting
 * one completion each; a whole batch of receives, sends, accepts and
 * cancels costs one io_uring_enter, which also waits for the next batch.
 *
 * Each listener has one multishot accept and each connection one
 * multishot receive, re-armed whenever a completion comes without
 * IORING_CQE_F_MORE. Receives land in a ring of provided buffers shared
 * by all connections, so the ring must never be held by a client that
 * does not read: a ring buffer is back with the kernel within one round
 * of completions, whatever the client does.
 *
 * - The fast path copies nothing: when bytes come in and the connection
 *   has nothing else to send, the service rewrites them in place and
 *   they are sent from the ring buffer itself. That send carries
 *   MSG_DONTWAIT, so it never waits in the kernel for room (a waiting
 *   send would keep the buffer for as long as the client does not read).
 * - The slow path copies: what that send could not take at once, and
 *   whatever arrives while output is queued or a send is in flight, goes
 *   into the connection's own buffer of CONN_BUF_SIZE bytes, and the ring
 *   buffer goes back at once. The own buffer is taken from a few spares
 *   only while it holds bytes, as in the reactor, and sent from with
 *   ordinary sends that wait for room.
 * - A receive is armed with a cap on its total bytes (Linux 6.17), the
 *   room left in the own buffer less one ring buffer (a receive may take
 *   a whole buffer past the cap): whatever it brings always fits. Once
 *   the own buffer is full, no receive is armed until sends drain it,
 *   and TCP flow control holds the client back, as the reactor's full
 *   buffer does. The probe refuses a kernel without the cap.
 *
 * So a stalled client costs its own buffer and no ring buffer, and the
 * ring runs short only while that many fast-path sends are in flight:
 * a receive that finds it empty (-ENOBUFS) waits in line, first come
 * first served, and is re-armed when buffers come back.
 *
 * A connection has at most one send in flight, so its output can never
 * be reordered: the fast path's ring buffer, if any, goes out before the
 * own buffer, and what it could not send is put back in front.
 *
 * The invariant everything here keeps: no memory the kernel may still
 * read or write is moved, reused or given back before its request's
 * last completion. A send waiting for room reads its bytes only when
 * room comes, so the own buffer's owed bytes move to its front only
 * while no send reads them: a send from the own buffer starts at its
 * front, and what comes in meanwhile goes behind the tail, within the
 * receive cap (recv_cap counts that room, not the room compacting would
 * make). Ring buffers go back only after the completion that used them;
 * own buffers only once their last send completed; a connection's state
 * only after its last completion (below).
 *
 * The request services (delay, work) take their input a line at a time:
 * what a receive brings is queued in the own buffer, within the same
 * receive cap, and taken from there; a wait is a timeout in the ring
 * (IORING_OP_TIMEOUT, absolute on the monotonic clock), work is computed
 * inline, and the reply is sent from the session that holds it. A
 * client's end of file ends the connection at once, timer and all.
 *
 * A connection's state is freed only after the last completion of its
 * requests: closing cancels them first, a request's timer by its own
 * user_data (no descriptor names it). user_data names the request's
 * kind, slot and the slot's generation, so a late completion is never
 * taken for that of a newer connection in the same slot.
 *
 * Completions are handled in two steps: reaping only records what
 * happened and marks the connection dirty; then each dirty connection
 * decides what to queue next. Queuing may have to submit (a full SQ),
 * and that may reap, which is harmless since reaping only records.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"
#include "core/accept_pause.h"
#include "core/admission.h"
#include "base/buffer_cache.h"
#include "base/uring.h"
#include "engines/engine.h"
#include "services/service.h"

#define SQ_ENTRIES 4096
/* Multishot requests post many completions per submission: room for 8
 * per entry keeps the CQ from overflowing at any load we have measured;
 * overflow is still handled (IORING_FEAT_NODROP keeps them aside). */
#define CQ_ENTRIES (8 * SQ_ENTRIES)
#define BUF_COUNT 4096		/* provided buffers, a power of two */
#define BUF_SIZE 4096
#define BUF_GROUP 0
#define MAX_FDS_CAP (1 << 20)
#define PROBE_WAIT_MS 1000

/* Setup: the kernel runs completion work only when we enter to reap
 * (DEFER_TASKRUN, which requires SINGLE_ISSUER: only this thread
 * submits), so completions come in batches rather than interrupting us;
 * SUBMIT_ALL turns a bad entry into an error completion instead of
 * stopping the submission of the entries behind it. */
#define SETUP_FLAGS (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | \
		     IORING_SETUP_SUBMIT_ALL)
/* NODROP: no completion lost to overflow; EXT_ARG: a wait with a time
 * limit in the same call; FAST_POLL: a socket not ready is polled inside
 * the kernel, not handed to a worker thread; SINGLE_MMAP: both rings in
 * one mapping. */
#define REQUIRED_FEATURES (IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | \
			   IORING_FEAT_FAST_POLL | IORING_FEAT_SINGLE_MMAP)

static const unsigned char required_ops[] = {
	IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND,
	IORING_OP_ASYNC_CANCEL, IORING_OP_POLL_ADD, IORING_OP_TIMEOUT,
	IORING_OP_TIMEOUT_REMOVE,
};

enum op {
	OP_ACCEPT, OP_RECV, OP_SEND, OP_CANCEL, OP_SIGNAL, OP_STOP_ACCEPT,
	OP_TIMER,
};

#define NO_BUFFER (-1)

struct conn {
	struct conn *next_dead;	/* on engine.dead, once freed, until the round ends */
	int fd;
	unsigned slot;
	unsigned inflight;	/* requests whose last completion is to come */
	bool receiving;		/* multishot receive armed */
	bool sending;
	unsigned cancels;	/* closing: cancels queued, not yet completed */
	bool starved;		/* receive ended for want of buffers */
	bool read_eof;
	bool reset_if_stuck;
	const char *closing;	/* why, once closing; NULL while open */
	struct list dirty;	/* on engine.dirty: has something to decide */
	struct idle_mark idle;	/* in engine.idle while open, oldest first */
	struct list starving;	/* on engine.starved while starved */
	const struct listener *listener;
	union net_peer peer;	/* for the -v lines only */
	unsigned long long bytes_in, bytes_out;
	struct svc_session session;
	/* Output goes out in this order: ring buffer ring_id's ring_len
	 * bytes (the fast path), then own[own_head, own_tail). */
	int ring_id;
	unsigned ring_len;
	unsigned char *own;	/* CONN_BUF_SIZE bytes, or NULL while empty */
	size_t own_head, own_tail;
	/* Request services: the own buffer holds input not yet taken; what
	 * goes out is the session's reply (reply_sent of reply_len), and a
	 * request waiting to be due has a timer in the ring. */
	const unsigned char *reply;
	size_t reply_len, reply_sent;
	bool timer_armed;
	struct __kernel_timespec timer_at;	/* read by the kernel at submission */
};

struct uring_engine {
	const struct server *srv;
	struct uring ring;
	struct uring_buffers bufs;
	unsigned buffers_out;	/* taken by the kernel, not yet returned */
	struct buffer_cache cache;	/* own buffers not in use */
	struct conn **slots;
	uint32_t *gens;
	unsigned *free_slots, n_free, n_slots;
	unsigned n_conns;
	struct list dirty, starved;
	struct idle_list idle;
	/* Connections done with, freed when the round of decisions that
	 * ended them is over: a step of that round may still hold one. */
	struct conn *dead;
	bool *accepting;	/* per listener: its multishot accept is armed */
	bool signal_armed, signal_seen, stopping;
	int64_t short_logged;	/* when io_uring_enter last said it was short */
	struct accept_pause pause;
	int64_t now;
};

static uint64_t user_data(enum op op, unsigned slot, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | slot;
}

/* An entry, submitting what is queued first if the SQ is full. */
static struct io_uring_sqe *sqe_get(struct uring_engine *e);

static struct io_uring_sqe *conn_sqe(struct uring_engine *e, struct conn *c,
				     enum op op)
{
	struct io_uring_sqe *sqe = sqe_get(e);

	sqe->user_data = user_data(op, c->slot, e->gens[c->slot]);
	c->inflight++;
	return sqe;
}

/* ---- connections ---- */

static void mark_dirty(struct uring_engine *e, struct conn *c)
{
	list_remove(&c->dirty);
	list_append(&e->dirty, &c->dirty);
}

/* Bytes moved: the idle clock starts again. Only for an open
 * connection: a closing one left the idle list for good (conn_close). */
static void touch(struct uring_engine *e, struct conn *c)
{
	if (c->closing)
		return;
	idle_touch(&e->idle, &c->idle, e->now);
}

static void conn_close(struct uring_engine *e, struct conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = why;
	idle_forget(&c->idle);
	list_remove(&c->starving);
	mark_dirty(e, c);
}

/* ---- output ---- */

static size_t own_pending(const struct conn *c)
{
	return c->own_tail - c->own_head;
}

static size_t ring_pending(const struct conn *c)
{
	return c->ring_id == NO_BUFFER ? 0 : c->ring_len;
}

static size_t reply_pending(const struct conn *c)
{
	return c->reply_len - c->reply_sent;
}

static bool has_output(const struct conn *c)
{
	if (svc_is_request(&c->session))
		return reply_pending(c) > 0;
	return own_pending(c) || ring_pending(c);
}

/* A request service owes a reply: the connection waits on the server,
 * not on its client, so it is not idle. */
static bool owes_reply(const struct conn *c)
{
	return svc_is_request(&c->session) &&
	       (svc_need(&c->session) != SVC_INPUT || reply_pending(c));
}

static bool mark_owes_reply(struct idle_mark *m)
{
	return owes_reply(LIST_ENTRY(m, struct conn, idle));
}

static void give_back(struct uring_engine *e, unsigned id)
{
	uring_buffer_return(&e->bufs, id);
	e->buffers_out--;
}

static bool own_take(struct uring_engine *e, struct conn *c)
{
	if (!c->own && !(c->own = buffer_cache_get(&e->cache))) {
		conn_close(e, c, "out of memory");
		return false;
	}
	return true;
}

static void own_release(struct uring_engine *e, struct conn *c)
{
	buffer_cache_put(&e->cache, c->own);
	c->own = NULL;
	c->own_head = c->own_tail = 0;
}

/* A send from the own buffer is in flight: the kernel may read
 * own[own_head, own_tail) at any moment until it completes. */
static bool own_in_flight(const struct conn *c)
{
	return c->sending && c->ring_id == NO_BUFFER;
}

/* The own buffer's owed bytes to its start. Only while no send reads
 * them: a send waiting for room reads its memory when room comes. */
static void own_compact(struct conn *c)
{
	size_t pending = own_pending(c);

	memmove(c->own, c->own + c->own_head, pending);
	c->own_head = 0;
	c->own_tail = pending;
}

/* Copy output into the own buffer: behind what is there, or in front of
 * it for what the fast path could not send (it came first, and its send
 * was the one in flight, so nothing reads the own buffer meanwhile). */
static void own_queue(struct uring_engine *e, struct conn *c,
		      const unsigned char *data, size_t len, bool in_front)
{
	size_t pending = own_pending(c);

	/* Cannot happen while the receive cap holds (recv_cap): a kernel
	 * that broke it must not make us write past the buffer. */
	if (pending + len > CONN_BUF_SIZE ||
	    (c->own_tail + len > CONN_BUF_SIZE && own_in_flight(c))) {
		conn_close(e, c, "receive overran its cap");
		return;
	}
	if (!own_take(e, c))
		return;
	if (in_front) {
		memmove(c->own + len, c->own + c->own_head, pending);
		memcpy(c->own, data, len);
		c->own_head = 0;
		c->own_tail = pending + len;
		return;
	}
	if (c->own_tail + len > CONN_BUF_SIZE)
		own_compact(c);
	memcpy(c->own + c->own_tail, data, len);
	c->own_tail += len;
}

static void start_send(struct uring_engine *e, struct conn *c)
{
	struct io_uring_sqe *sqe = conn_sqe(e, c, OP_SEND);

	sqe->opcode = IORING_OP_SEND;
	sqe->fd = c->fd;
	if (c->ring_id != NO_BUFFER) {
		/* Never parked waiting for room: what the socket cannot take
		 * at once comes back as a short count or -EAGAIN, and the
		 * ring buffer with it. */
		sqe->addr = (uintptr_t)uring_buffer(&e->bufs, (unsigned)c->ring_id);
		sqe->len = c->ring_len;
		sqe->msg_flags = MSG_NOSIGNAL | MSG_DONTWAIT;
	} else if (c->reply_len) {
		/* The session holds the reply until svc_replied. */
		sqe->addr = (uintptr_t)(c->reply + c->reply_sent);
		sqe->len = (unsigned)reply_pending(c);
		sqe->msg_flags = MSG_NOSIGNAL;
	} else {
		/* From the start of the buffer, so that what comes in while
		 * it is in flight goes behind it and the owed bytes never
		 * move (recv_cap). */
		if (c->own_head)
			own_compact(c);
		sqe->addr = (uintptr_t)c->own;
		sqe->len = (unsigned)own_pending(c);
		sqe->msg_flags = MSG_NOSIGNAL;
	}
	c->sending = true;
}

/* ---- receiving ---- */

/* Total bytes the next receive may take: whatever it brings must fit in
 * the own buffer beside the output already owed, and its last receive
 * may take a whole buffer past the cap. The room really free is what
 * lies behind the tail: the owed bytes move to the front only when no
 * send reads them, and a send from the own buffer starts at its front
 * (start_send), so behind the tail is where everything that comes
 * while it is in flight goes. A producer's input is thrown away, never
 * owed. */
static size_t recv_cap(const struct conn *c)
{
	size_t room = CONN_BUF_SIZE;

	if (!svc_is_producer(&c->session))
		room -= (own_in_flight(c) ? c->own_tail : own_pending(c)) +
			ring_pending(c);
	return room > BUF_SIZE ? room - BUF_SIZE : 0;
}

static bool wants_input(const struct conn *c)
{
	return !c->closing && !c->read_eof && !c->starved &&
	       !c->session.close_after_flush && recv_cap(c) >= BUF_SIZE;
}

static void start_recv(struct uring_engine *e, struct conn *c)
{
	struct io_uring_sqe *sqe = conn_sqe(e, c, OP_RECV);

	sqe->opcode = IORING_OP_RECV;
	sqe->fd = c->fd;
	sqe->len = BUF_SIZE;
	uring_recv_cap(sqe, (unsigned)recv_cap(c));
	sqe->ioprio = IORING_RECV_MULTISHOT;
	sqe->flags = IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	c->receiving = true;
}

/* Every completion of the connection has come: nothing refers to it. */
static void conn_free(struct uring_engine *e, struct conn *c)
{
	log_conn_close(c->listener, &c->peer.sa, c->fd, c->closing, c->bytes_in,
		       c->bytes_out);
	trace_close(c->fd);
	if (c->reset_if_stuck)
		net_reset_if_stuck(c->fd);
	close(c->fd);
	if (c->ring_id != NO_BUFFER)
		give_back(e, (unsigned)c->ring_id);
	if (c->own)
		own_release(e, c);
	svc_close(&c->session);
	list_remove(&c->dirty);
	idle_forget(&c->idle);
	list_remove(&c->starving);
	e->slots[c->slot] = NULL;
	e->gens[c->slot]++;
	e->free_slots[e->n_free++] = c->slot;
	e->n_conns--;
	c->next_dead = e->dead;
	e->dead = c;
}

static void bury_dead(struct uring_engine *e)
{
	while (e->dead) {
		struct conn *c = e->dead;

		e->dead = c->next_dead;
		free(c);
	}
}

/* Cancel everything in flight: the requests on the descriptor, and a
 * request's timer, which no descriptor names. Once every cancel has
 * completed, whatever is still in flight is tried again. */
static void conn_wind_down(struct uring_engine *e, struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->inflight == 0) {
		conn_free(e, c);
		return;
	}
	if (c->cancels)
		return;
	sqe = conn_sqe(e, c, OP_CANCEL);
	sqe->opcode = IORING_OP_ASYNC_CANCEL;
	sqe->fd = c->fd;
	sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
	c->cancels++;
	if (c->timer_armed) {
		sqe = conn_sqe(e, c, OP_CANCEL);
		sqe->opcode = IORING_OP_TIMEOUT_REMOVE;
		sqe->addr = user_data(OP_TIMER, c->slot, e->gens[c->slot]);
		c->cancels++;
	}
}

static void refill(struct uring_engine *e, struct conn *c)
{
	if (!own_take(e, c))
		return;
	c->own_head = 0;
	c->own_tail = svc_fill(&c->session, c->own, CONN_BUF_SIZE);
}

/* A request's wait, as a timeout in the ring (CLOCK_MONOTONIC, as
 * clock_ms). */
static void arm_timer(struct uring_engine *e, struct conn *c, int64_t due)
{
	struct io_uring_sqe *sqe;

	if (c->timer_armed)
		return;
	c->timer_at.tv_sec = due / 1000;
	c->timer_at.tv_nsec = due % 1000 * 1000000;
	sqe = conn_sqe(e, c, OP_TIMER);
	sqe->opcode = IORING_OP_TIMEOUT;
	sqe->addr = (uintptr_t)&c->timer_at;
	sqe->len = 1;
	sqe->timeout_flags = IORING_TIMEOUT_ABS;
	c->timer_armed = true;
}

/* Request services: take lines from the input queued in the own buffer
 * until one waits for its time or has its reply to send. */
static void advance_request(struct uring_engine *e, struct conn *c)
{
	size_t taken;
	enum svc_next next;

	if (c->reply_len)
		return;
	next = svc_advance(&c->session, c->own ? c->own + c->own_head : NULL,
			   own_pending(c), &taken, e->now, true);
	c->own_head += taken;
	if (c->own && !own_pending(c))
		own_release(e, c);
	if (next == SVC_NEXT_WAIT) {
		arm_timer(e, c, svc_due(&c->session));
	} else if (next == SVC_NEXT_REPLY) {
		bool work = trace_on && svc_need(&c->session) == SVC_WORK;
		int64_t begin = trace_begin();

		c->reply_len = svc_reply(&c->session, &c->reply);
		c->reply_sent = 0;
		if (work)	/* done by svc_reply, here on the loop */
			trace_span(TRACE_WORK, begin, c->fd, 0);
	}
}

/* Decide what to queue next for a connection something happened to. */
static void conn_run(struct uring_engine *e, struct conn *c)
{
	if (svc_is_producer(&c->session) && !c->closing && !c->sending &&
	    !has_output(c) && !c->session.close_after_flush)
		refill(e, c);
	if (c->closing) {
		conn_wind_down(e, c);
		return;
	}
	if (svc_is_request(&c->session) && !c->sending)
		advance_request(e, c);
	if (!c->sending && has_output(c))
		start_send(e, c);
	if (!c->sending && !has_output(c) && c->session.close_after_flush) {
		conn_close(e, c, "done");
		conn_wind_down(e, c);
		return;
	}
	if (wants_input(c) && !c->receiving)
		start_recv(e, c);
}

static void conn_open(struct uring_engine *e, int fd, const struct listener *l)
{
	unsigned char greeting[SVC_GREETING_MAX];
	struct conn *c;
	size_t len = 0;

	if (!admission_check(e->srv, e->n_conns, fd, l))
		return;
	if (e->n_free == 0) {
		/* RLIMIT_NOFILE sized the slots at start-up, below
		 * --max-conns, and has been raised since. */
		admission_refuse(fd, l, e->n_conns,
				 "as many as RLIMIT_NOFILE allowed at start-up");
		return;
	}
	c = calloc(1, sizeof *c);
	if (c) {
		len = svc_open(&c->session, l->service, time(NULL), greeting);
		if (len && !(c->own = buffer_cache_get(&e->cache))) {
			free(c);
			c = NULL;
		}
	}
	if (!c) {
		log_error("refused %s connection: out of memory", l->service->name);
		close(fd);
		return;
	}
	if (len)
		memcpy(c->own, greeting, len);
	c->own_tail = len;
	c->fd = fd;
	c->listener = l;
	c->ring_id = NO_BUFFER;
	/* Multishot accept has no room for each peer's address: ask only
	 * when the --verbose log wants it. */
	if (log_threshold >= LOG_CONN) {
		socklen_t plen = sizeof c->peer;

		getpeername(fd, &c->peer.sa, &plen);
	}
	list_init(&c->dirty);
	idle_mark_init(&c->idle);
	list_init(&c->starving);
	c->slot = e->free_slots[--e->n_free];
	e->slots[c->slot] = c;
	e->n_conns++;
	stat_add(STAT_ACCEPTED, 1);
	touch(e, c);
	log_conn_open(l, &c->peer.sa, fd);
	mark_dirty(e, c);
}

/* ---- completions: record what happened, decide nothing ---- */

/* A fast-path buffer not yet sent joins the own buffer, so that what a
 * batch of completions brings goes out in one send. */
static void fold_unsent_ring(struct uring_engine *e, struct conn *c)
{
	unsigned id = (unsigned)c->ring_id;

	if (c->ring_id == NO_BUFFER || c->sending)
		return;
	c->ring_id = NO_BUFFER;
	own_queue(e, c, uring_buffer(&e->bufs, id), c->ring_len, false);
	give_back(e, id);
}

/* Bytes in ring buffer `id`: the service rewrites them in place; they
 * are sent from there when they are all there is (the fast path), else
 * copied behind what is owed, and the buffer goes back at once. "All
 * there is" means nothing owed, and the socket had no more
 * (IORING_CQE_F_SOCK_NONEMPTY clear): a client's write that fills several
 * buffers is sent as one, as a readiness engine writes what one read
 * brought. Sent in pieces, the second small send would wait behind the
 * first for the client's delayed ACK (Nagle): 40 ms a round, 1.5 MB/s
 * measured on a 16 KiB stream. */
static void take_input(struct uring_engine *e, struct conn *c, unsigned id,
		       int res, unsigned flags)
{
	unsigned char *data = uring_buffer(&e->bufs, id);
	size_t keep = 0;

	e->buffers_out++;
	if (res > 0 && !c->closing) {
		c->bytes_in += (unsigned)res;
		stat_add(STAT_BYTES_IN, (unsigned)res);
		trace_io(TRACE_READ, c->fd, res);
		touch(e, c);
		if (svc_is_request(&c->session)) {
			/* Queued for advance_request; recv_cap left it room. */
			own_queue(e, c, data, (size_t)res, false);
			give_back(e, id);
			return;
		}
		keep = svc_input(&c->session, data, (size_t)res);
	}
	if (keep && !c->sending && !has_output(c) &&
	    !(flags & IORING_CQE_F_SOCK_NONEMPTY)) {
		c->ring_id = (int)id;
		c->ring_len = (unsigned)keep;
		return;
	}
	if (keep) {
		fold_unsent_ring(e, c);
		own_queue(e, c, data, keep, false);
	}
	give_back(e, id);
}

static void on_received(struct uring_engine *e, struct conn *c, int res,
			unsigned flags)
{
	if (flags & IORING_CQE_F_BUFFER)
		take_input(e, c, flags >> IORING_CQE_BUFFER_SHIFT, res, flags);
	if (!(flags & IORING_CQE_F_MORE)) {
		c->receiving = false;
		c->inflight--;
	}
	if (c->closing)
		return;
	if (res == 0 && svc_is_request(&c->session)) {
		conn_close(e, c, owes_reply(c) || own_pending(c)
			   ? "client gone before its reply" : "done");
	} else if (res == 0) {
		trace_io(TRACE_READ, c->fd, 0);
		c->read_eof = true;
		svc_eof(&c->session);
	} else if (res == -ENOBUFS) {
		c->starved = true;
		list_append(&e->starved, &c->starving);
	} else if (res < 0 && res != -ECANCELED) {
		conn_close(e, c, strerror(-res));
	}
}

/* The fast path's send ended: what the socket did not take goes in
 * front of the own buffer, and the ring buffer goes back. */
static void on_ring_sent(struct uring_engine *e, struct conn *c, int res)
{
	unsigned id = (unsigned)c->ring_id;
	size_t sent = res > 0 ? (size_t)res : 0;

	c->ring_id = NO_BUFFER;
	if (res == 0 || (res < 0 && res != -EAGAIN))
		conn_close(e, c, res < 0 ? strerror(-res) : "send returned 0");
	else if (sent < c->ring_len && !c->closing)
		own_queue(e, c, uring_buffer(&e->bufs, id) + sent,
			  c->ring_len - sent, true);
	give_back(e, id);
}

static void on_sent(struct uring_engine *e, struct conn *c, int res)
{
	c->sending = false;
	c->inflight--;
	trace_event(TRACE_WRITE, c->fd, res > 0 ? (uint64_t)res : 0,
		    res < 0 ? (uint32_t)-res : 0);
	if (res > 0) {
		c->bytes_out += (unsigned)res;
		stat_add(STAT_BYTES_OUT, (unsigned)res);
		touch(e, c);
	}
	if (c->ring_id != NO_BUFFER) {
		on_ring_sent(e, c, res);
		return;
	}
	if (res <= 0) {
		conn_close(e, c, res < 0 ? strerror(-res) : "send returned 0");
		return;
	}
	if (c->reply_len) {
		c->reply_sent += (unsigned)res;
		if (!reply_pending(c)) {
			svc_replied(&c->session);
			c->reply_len = c->reply_sent = 0;
			c->reply = NULL;
		}
		return;
	}
	/* A short send leaves the rest in place: the next send starts there. */
	c->own_head += (unsigned)res;
	if (!own_pending(c))
		own_release(e, c);
}

static void on_cancelled(struct conn *c)
{
	c->inflight--;
	/* Nothing was found, or it was busy: try again if still wanted. */
	c->cancels--;
}

/* A request's time has come (-ETIME), or its timer was removed. */
static void on_timer(struct conn *c)
{
	c->inflight--;
	c->timer_armed = false;
}

static void on_conn_cqe(struct uring_engine *e, enum op op, unsigned slot,
			uint32_t gen, int res, unsigned flags)
{
	struct conn *c = slot < e->n_slots ? e->slots[slot] : NULL;

	if (!c || (e->gens[slot] & 0xffffff) != gen) {
		/* Cannot happen while state outlives its requests; if it
		 * did, the buffer must still go back. */
		if (flags & IORING_CQE_F_BUFFER)
			uring_buffer_return(&e->bufs, flags >> IORING_CQE_BUFFER_SHIFT);
		return;
	}
	if (op == OP_RECV)
		on_received(e, c, res, flags);
	else if (op == OP_SEND)
		on_sent(e, c, res);
	else if (op == OP_TIMER)
		on_timer(c);
	else
		on_cancelled(c);
	mark_dirty(e, c);
}

static void on_accepted(struct uring_engine *e, unsigned i, int res,
			unsigned flags)
{
	const struct listener *l = &e->srv->listeners[i];

	if (!(flags & IORING_CQE_F_MORE))
		e->accepting[i] = false;
	if (res >= 0) {
		trace_event(TRACE_ACCEPT, res, 0, (uint32_t)l->fd);
		accept_pause_end(&e->pause);
		if (e->stopping)
			close(res);
		else
			conn_open(e, res, l);
	} else if (net_out_of_resources(-res)) {
		accept_pause_start(&e->pause, -res, e->now);
	} else if (res != -ECANCELED && !net_connection_error(-res)) {
		log_error("accept %s: %s", l->service->name, strerror(-res));
		e->pause.until = e->now + ACCEPT_PAUSE_MS;	/* no spinning */
	}
}

static void on_cqe(struct uring_engine *e, const struct io_uring_cqe *cqe)
{
	enum op op = (enum op)(cqe->user_data >> 56);
	unsigned slot = (unsigned)(cqe->user_data & 0xffffffff);
	uint32_t gen = (uint32_t)(cqe->user_data >> 32) & 0xffffff;

	if (op == OP_ACCEPT)
		on_accepted(e, slot, cqe->res, cqe->flags);
	else if (op == OP_SIGNAL)
		e->signal_seen = true;
	else if (op != OP_STOP_ACCEPT)
		on_conn_cqe(e, op, slot, gen, cqe->res, cqe->flags);
}

/* Whether a failed io_uring_enter passes: a wait cut short (ETIME,
 * EINTR), completions to reap before more can be submitted (EBUSY), or
 * a kernel short of memory for the moment (EAGAIN, ENOMEM), which gets a
 * millisecond before the next try rather than ending every connection,
 * and a log line a second at most. Anything else is logged and does not
 * pass. */
static bool enter_passes(struct uring_engine *e, int err)
{
	static const struct timespec a_moment = { 0, 1000000 };
	int64_t now;

	if (err == ETIME || err == EINTR || err == EBUSY)
		return true;
	if (err != EAGAIN && err != ENOMEM) {
		log_error("io_uring_enter: %s", strerror(err));
		return false;
	}
	now = clock_ms();
	if (now - e->short_logged >= 1000) {
		log_error("io_uring_enter: %s; trying again", strerror(err));
		e->short_logged = now;
	}
	nanosleep(&a_moment, NULL);
	return true;
}

/* Enter the ring (see uring_enter); false when that failed for good. */
static bool enter(struct uring_engine *e, int timeout_ms)
{
	return uring_enter(&e->ring, timeout_ms) == 0 || enter_passes(e, errno);
}

/* Every completion there is, including those the kernel kept aside when
 * the CQ was full: entering flushes them back into the ring. */
static void reap(struct uring_engine *e)
{
	for (;;) {
		struct io_uring_cqe *cqe;

		while ((cqe = uring_cqe(&e->ring))) {
			struct io_uring_cqe copy = *cqe;

			uring_cqe_seen(&e->ring);
			on_cqe(e, &copy);
		}
		if (!uring_cq_overflowed(&e->ring))
			return;
		if (!enter(e, 0))
			return;
	}
}

static struct io_uring_sqe *sqe_get(struct uring_engine *e)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = uring_sqe(&e->ring))) {
		/* EBUSY: completions kept aside block submission; reaping
		 * them makes room. */
		enter(e, 0);
		reap(e);
	}
	return sqe;
}

/* ---- the loop ---- */

static void run_dirty(struct uring_engine *e)
{
	while (!list_empty(&e->dirty)) {
		struct conn *c = LIST_ENTRY(e->dirty.next, struct conn, dirty);

		list_remove(&c->dirty);
		conn_run(e, c);
	}
	bury_dead(e);
}

/* Buffers came back: connections that ran short may receive again, in
 * turn, as many as can each take their share. */
/* Buffers came back: connections whose receive found none may receive
 * again, first come first served, one for each buffer free. One that
 * finds none again goes to the back of the line. */
static void feed_starved(struct uring_engine *e)
{
	unsigned left = BUF_COUNT - e->buffers_out;

	while (left-- > 0 && !list_empty(&e->starved)) {
		struct conn *c = LIST_ENTRY(e->starved.next, struct conn, starving);

		list_remove(&c->starving);
		c->starved = false;
		mark_dirty(e, c);
	}
}


static void arm_listeners(struct uring_engine *e)
{
	if (e->stopping || e->now < e->pause.until)
		return;
	for (size_t i = 0; i < e->srv->n_listeners; i++) {
		struct io_uring_sqe *sqe;

		if (e->accepting[i])
			continue;
		sqe = sqe_get(e);
		sqe->opcode = IORING_OP_ACCEPT;
		sqe->fd = e->srv->listeners[i].fd;
		sqe->accept_flags = SOCK_CLOEXEC;
		sqe->ioprio = IORING_ACCEPT_MULTISHOT;
		sqe->user_data = user_data(OP_ACCEPT, (unsigned)i, 0);
		e->accepting[i] = true;
	}
}

static void arm_signal(struct uring_engine *e)
{
	struct io_uring_sqe *sqe = sqe_get(e);

	sqe->opcode = IORING_OP_POLL_ADD;
	sqe->fd = sig_wakeup_fd();
	sqe->poll32_events = POLLIN;
	sqe->user_data = user_data(OP_SIGNAL, 0, 0);
	e->signal_armed = true;
}

/* Stop accepting at once: the accepts are cancelled and submitted now,
 * so that closing the listeners really closes them. */
static void stop_listening(struct uring_engine *e)
{
	e->stopping = true;
	for (size_t i = 0; i < e->srv->n_listeners; i++) {
		struct io_uring_sqe *sqe = sqe_get(e);

		sqe->opcode = IORING_OP_ASYNC_CANCEL;
		sqe->fd = e->srv->listeners[i].fd;
		sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
		sqe->user_data = user_data(OP_STOP_ACCEPT, (unsigned)i, 0);
	}
	enter(e, 0);
	for (size_t i = 0; i < e->srv->n_listeners; i++)
		close(e->srv->listeners[i].fd);
	log_stopping(e->n_conns, e->srv->grace);
}

static void handle_signal(struct uring_engine *e)
{
	if (!e->signal_seen)
		return;
	e->signal_seen = false;
	e->signal_armed = false;	/* a one-shot poll: fired, so spent */
	sig_drain();
	if (sig_stop_requested() && !e->stopping)
		stop_listening(e);
}

static void expire_idle(struct uring_engine *e)
{
	struct idle_mark *m;

	while ((m = idle_expired(&e->idle, e->now, mark_owes_reply))) {
		struct conn *c = LIST_ENTRY(m, struct conn, idle);

		c->reset_if_stuck = true;
		conn_close(e, c, "idle timeout");
	}
}

static int next_timeout(const struct uring_engine *e)
{
	int t = -1;

	if (!list_empty(&e->dirty))
		return 0;
	t = idle_timeout_min(&e->idle, e->now, t);
	if (!e->stopping && e->pause.until > e->now)
		t = clock_timeout_min(t, e->pause.until - e->now);
	if (e->stopping)
		t = clock_timeout_min(t, sig_grace_left_ms());
	return t;
}

static bool finished(const struct uring_engine *e)
{
	return e->stopping && (e->n_conns == 0 || sig_grace_left_ms() == 0);
}

/* ---- setup and teardown ---- */

static unsigned slot_count(const struct server *srv)
{
	struct rlimit rl;
	rlim_t cap = MAX_FDS_CAP;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < cap)
		cap = rl.rlim_cur;
	return srv->max_conns < cap ? srv->max_conns : (unsigned)cap;
}

/* A receive brings what one provided buffer holds (BUF_SIZE), and each is
 * sent as it comes, where a readiness engine reads a client's whole write
 * and writes it back at once. A small send behind one not yet
 * acknowledged would wait for the client's delayed ACK (Nagle's
 * algorithm): a 16 KiB stream ran at 1.5 to 8 MB/s, 290 with this. The
 * accepted sockets inherit TCP_NODELAY from their listener, so it costs
 * no system call per connection. */
static void no_delay_on_accepted(const struct server *srv)
{
	int on = 1;

	for (size_t i = 0; i < srv->n_listeners; i++)
		if (setsockopt(srv->listeners[i].fd, IPPROTO_TCP, TCP_NODELAY,
			       &on, sizeof on) < 0)
			log_error("io_uring: TCP_NODELAY on listener fd %d: %s",
				  srv->listeners[i].fd, strerror(errno));
}

static int engine_init(struct uring_engine *e, const struct server *srv,
		       char *err)
{
	memset(e, 0, sizeof *e);
	e->srv = srv;
	e->ring.fd = -1;
	list_init(&e->dirty);
	idle_list_init(&e->idle, srv);
	list_init(&e->starved);
	e->now = clock_ms();
	e->short_logged = e->now - 1000;
	e->n_slots = slot_count(srv);
	e->slots = calloc(e->n_slots, sizeof *e->slots);
	e->gens = calloc(e->n_slots, sizeof *e->gens);
	e->free_slots = malloc(e->n_slots * sizeof *e->free_slots);
	e->accepting = calloc(srv->n_listeners, sizeof *e->accepting);
	if (!e->slots || !e->gens || !e->free_slots || !e->accepting) {
		snprintf(err, NET_ERR_LEN, "%s", strerror(ENOMEM));
		return -1;
	}
	/* Lowest slots first: they are the ones whose pages are touched. */
	for (unsigned i = 0; i < e->n_slots; i++)
		e->free_slots[i] = e->n_slots - 1 - i;
	e->n_free = e->n_slots;
	no_delay_on_accepted(srv);
	if (uring_init(&e->ring, SQ_ENTRIES, CQ_ENTRIES, SETUP_FLAGS,
		       REQUIRED_FEATURES, required_ops, sizeof required_ops,
		       err) < 0)
		return -1;
	return uring_buffers_init(&e->ring, &e->bufs, BUF_GROUP, BUF_COUNT,
				  BUF_SIZE, err);
}

/* The grace period is over (or start-up failed): the ring goes, and
 * with it every request; then each connection is closed. */
static void engine_free(struct uring_engine *e)
{
	if (e->ring.fd >= 0)
		uring_free(&e->ring);
	for (unsigned i = 0; e->slots && i < e->n_slots; i++) {
		struct conn *c = e->slots[i];

		if (!c)
			continue;
		if (!c->closing)
			c->closing = sig_stop_reason();
		c->reset_if_stuck = true;
		c->ring_id = NO_BUFFER;	/* the buffers go with the ring */
		conn_free(e, c);
	}
	bury_dead(e);
	if (!e->stopping)
		for (size_t i = 0; i < e->srv->n_listeners; i++)
			close(e->srv->listeners[i].fd);
	if (e->bufs.base)
		uring_buffers_free(&e->ring, &e->bufs);
	free(e->slots);
	free(e->gens);
	free(e->free_slots);
	buffer_cache_free(&e->cache);
	free(e->accepting);
}

static int io_uring_run(const struct engine *self, const struct server *srv)
{
	struct uring_engine e;
	char err[NET_ERR_LEN];
	int status = 0;

	if (engine_init(&e, srv, err) < 0) {
		log_error("%s: cannot start: %s", self->name, err);
		engine_free(&e);
		return 1;
	}
	server_ready(srv);
	while (!finished(&e)) {
		if (!e.signal_armed)
			arm_signal(&e);
		arm_listeners(&e);
		if (!enter(&e, next_timeout(&e))) {
			status = 1;
			break;
		}
		e.now = clock_ms();
		reap(&e);
		handle_signal(&e);
		expire_idle(&e);
		run_dirty(&e);
		/* After run_dirty, which frees closed connections' buffers:
		 * whoever it marks runs without waiting (next_timeout). */
		feed_starved(&e);
	}
	engine_free(&e);
	return status;
}

/* The receive cap (Linux 6.17), which older kernels ignore without an
 * error: on a socketpair holding more than the cap, a capped multishot
 * receive must end by itself, at most one buffer past the cap. */
static int probe_recv_cap(struct uring *ring, char *err)
{
	static const unsigned char data[4 * BUF_SIZE];
	struct io_uring_sqe *sqe;
	size_t got = 0;
	bool ended = false, failed = false;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, NET_ERR_LEN, "socketpair: %s", strerror(errno));
		return -1;
	}
	failed = write(sv[1], data, sizeof data) != (ssize_t)sizeof data;
	sqe = uring_sqe(ring);
	sqe->opcode = IORING_OP_RECV;
	sqe->fd = sv[0];
	sqe->len = BUF_SIZE;
	uring_recv_cap(sqe, BUF_SIZE);
	sqe->ioprio = IORING_RECV_MULTISHOT;
	sqe->flags = IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	/* The data is there: the receives complete at submission, and an
	 * uncapped one takes it all at once. */
	while (!failed && !ended && got <= 2 * BUF_SIZE) {
		struct io_uring_cqe *cqe;

		failed = uring_enter(ring, PROBE_WAIT_MS) < 0 && errno != EINTR;
		while ((cqe = uring_cqe(ring))) {
			failed |= cqe->res < 0;
			got += cqe->res > 0 ? (size_t)cqe->res : 0;
			ended |= !(cqe->flags & IORING_CQE_F_MORE);
			uring_cqe_seen(ring);
		}
	}
	close(sv[0]);
	close(sv[1]);
	if (failed || got > 2 * BUF_SIZE) {
		snprintf(err, NET_ERR_LEN, "multishot receive cap not supported "
			 "(Linux 6.17 or later needed)");
		return -1;
	}
	return 0;
}

/* A ring of our flags, features and opcodes, a buffer ring and the
 * receive cap: whatever the kernel or a policy refuses shows here,
 * before any listener. */
static int io_uring_probe(char *err)
{
	struct uring ring;
	struct uring_buffers bufs;
	int rc;

	if (uring_init(&ring, 8, 16, SETUP_FLAGS, REQUIRED_FEATURES,
		       required_ops, sizeof required_ops, err) < 0)
		return -1;
	rc = uring_buffers_init(&ring, &bufs, BUF_GROUP, 8, BUF_SIZE, err);
	if (rc == 0) {
		rc = probe_recv_cap(&ring, err);
		uring_buffers_free(&ring, &bufs);
	}
	uring_free(&ring);
	return rc;
}

const struct engine engine_io_uring = {
	.name = "io_uring",
	.summary = "completion-based: receives and sends queued on an io_uring; "
		   "the kernel performs them and posts completions",
	.features = ENGINE_COMPLETION | ENGINE_O1_WAIT,
	.probe = io_uring_probe,
	.run = io_uring_run,
};
