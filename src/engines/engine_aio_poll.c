/* engine_aio_poll.c -- the reactor on Linux native AIO's IOCB_CMD_POLL.
 *
 * A poll request per watched descriptor is submitted to an AIO context
 * (io_submit) and completes once, with the descriptor's poll mask, when it
 * is ready; io_getevents collects the completions in batches. One-shot:
 * each reported descriptor is armed again at the start of the next wait,
 * after the reactor has had its turn, all of them in one io_submit. Unlike
 * epoll, a request in flight holds its file: a descriptor that is closed,
 * no longer watched (a listener at a stop) or wants more than its request
 * asks for is cancelled (io_cancel), and the cancelled request's
 * completion, which comes later, is known stale by its generation. The
 * kernel's own poll reports readiness as it stands (level), so the
 * reactor needs no hang-up hint. Called through syscall(2): no libaio.
 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/stats.h"
#include "base/trace.h"
#include "core/reactor.h"
#include "engines/engine.h"

/* Requests in flight at most, completions not yet collected included,
 * is the context's size: one per descriptor the reactor's table can hold,
 * so that every connection it can take can be watched, up to
 * AIO_MAX_INFLIGHT. The kernel counts twice the size against the
 * system-wide fs.aio-max-nr (65536 by default): when that has not enough
 * left, half is asked for, down to AIO_MIN_INFLIGHT; a descriptor beyond
 * the size granted is refused (EAGAIN) and its connection closed. */
#define AIO_MAX_INFLIGHT 12288	/* 10,000 connections; two muxd at full size */
#define AIO_MIN_INFLIGHT 256
/* What the start-up probe asks for: enough to tell a working kernel, so
 * little that servers already running leave room for it. */
#define AIO_PROBE_INFLIGHT AIO_MIN_INFLIGHT

struct aio_slot {
	struct iocb cb;		/* the request in flight: io_cancel finds it here */
	unsigned want;		/* POLLER_* the reactor waits for */
	unsigned armed;		/* POLLER_* the request in flight asks, 0: none */
	unsigned gen;		/* completions of older requests are stale */
	bool rearm;		/* on the re-arm list */
};

struct aio_state {
	aio_context_t ctx;
	int capacity;		/* the context's size: requests in flight at most */
	int inflight;
	int max_events;
	struct aio_slot *slots;	/* by descriptor */
	int *rearm;		/* reported descriptors to arm again */
	int n_rearm;
	struct iocb **batch;	/* one io_submit's requests */
	struct io_event done[];
};

static long sys_io_setup(unsigned nr, aio_context_t *ctx)
{
	return syscall(SYS_io_setup, nr, ctx);
}

static long sys_io_submit(aio_context_t ctx, long n, struct iocb **cbs)
{
	stat_add(STAT_SYS_CTL, 1);
	return syscall(SYS_io_submit, ctx, n, cbs);
}

static void sys_io_cancel(aio_context_t ctx, struct iocb *cb)
{
	struct io_event ignored;

	/* EINPROGRESS is success: the completion comes later, stale. EINVAL:
	 * it had completed already. Either way the file is let go. */
	stat_add(STAT_SYS_CTL, 1);
	syscall(SYS_io_cancel, ctx, cb, &ignored);
}

static short poll_bits(unsigned mask)
{
	return (short)(((mask & POLLER_READ) ? POLLIN | POLLRDHUP : 0) |
		       ((mask & POLLER_WRITE) ? POLLOUT : 0));
}

/* Fill fd's request for mask under a new generation; the caller submits. */
static struct iocb *prepare(struct aio_state *s, int fd, unsigned mask)
{
	struct aio_slot *slot = &s->slots[fd];

	slot->gen++;
	slot->armed = mask;
	slot->cb = (struct iocb){
		.aio_data = (uint64_t)slot->gen << 32 | (uint32_t)fd,
		.aio_lio_opcode = IOCB_CMD_POLL,
		.aio_fildes = (uint32_t)fd,
		.aio_buf = (uint64_t)(unsigned short)poll_bits(mask),
	};
	s->inflight++;
	return &slot->cb;
}

/* A context of `wanted` requests, capped, or as much of it as
 * fs.aio-max-nr has left, halving down to AIO_MIN_INFLIGHT itself: the
 * size the probe was granted, so that a system that passed the probe
 * gets a context too (halving 12288 alone stops at 384); its size, or
 * -1 with errno. */
static int setup_context(int wanted, aio_context_t *ctx)
{
	int nr = wanted < AIO_MAX_INFLIGHT ? wanted : AIO_MAX_INFLIGHT;

	while (sys_io_setup((unsigned)nr, ctx) < 0) {
		if (errno != EAGAIN || nr <= AIO_MIN_INFLIGHT)
			return -1;
		nr = nr / 2 > AIO_MIN_INFLIGHT ? nr / 2 : AIO_MIN_INFLIGHT;
	}
	return nr;
}

static void *aio_create(int max_fds, int max_events)
{
	struct aio_state *s = calloc(1, sizeof *s +
				     (size_t)max_events * sizeof s->done[0]);

	if (!s)
		return NULL;
	s->slots = calloc((size_t)max_fds, sizeof *s->slots);
	s->rearm = malloc((size_t)max_events * sizeof *s->rearm);
	s->batch = malloc((size_t)max_events * sizeof *s->batch);
	if (!s->slots || !s->rearm || !s->batch ||
	    (s->capacity = setup_context(max_fds + 16, &s->ctx)) < 0) {
		free(s->slots);
		free(s->rearm);
		free(s->batch);
		free(s);
		return NULL;
	}
	s->max_events = max_events;
	return s;
}

static void aio_forget(void *p, int fd, unsigned mask)
{
	struct aio_state *s = p;
	struct aio_slot *slot = &s->slots[fd];

	(void)mask;
	if (slot->armed)
		sys_io_cancel(s->ctx, &slot->cb);
	slot->gen++;
	slot->armed = slot->want = 0;
}

static int aio_watch(void *p, int fd, unsigned old_mask, unsigned mask)
{
	struct aio_state *s = p;
	struct aio_slot *slot = &s->slots[fd];
	struct iocb *cb;

	/* Not watched at all: the request in flight would hold the file, and
	 * a listener closed at a stop would go on taking handshakes. */
	if (!mask) {
		aio_forget(p, fd, old_mask);
		return 0;
	}
	slot->want = mask;
	if (!(mask & ~slot->armed))
		return 0;	/* the request in flight covers it */
	if (s->inflight >= s->capacity) {
		errno = EAGAIN;
		return -1;
	}
	if (slot->armed)
		sys_io_cancel(s->ctx, &slot->cb);
	cb = prepare(s, fd, mask);
	if (sys_io_submit(s->ctx, 1, &cb) == 1)
		return 0;
	slot->armed = 0;
	s->inflight--;
	return -1;
}

/* A request the kernel refused at re-arm time: the connection can no
 * longer be watched, so it is shut down and reported, and the reactor
 * ends it on the reads and writes that now fail. */
static void give_up(struct aio_state *s, int fd, struct poller_event *ev)
{
	log_error("aio-poll: cannot watch fd %d again: %s; connection shut down",
		  fd, strerror(errno));
	s->slots[fd].armed = 0;
	s->inflight--;
	shutdown(fd, SHUT_RDWR);
	*ev = (struct poller_event){ fd, POLLER_READ | POLLER_WRITE | POLLER_HANGUP };
}

/* Arm again, in one io_submit, what was reported and is still wanted.
 * Returns how many were given up (written to events). */
static int rearm_reported(struct aio_state *s, struct poller_event *events)
{
	long n = 0, done = 0;
	int failed = 0;

	for (int i = 0; i < s->n_rearm; i++) {
		struct aio_slot *slot = &s->slots[s->rearm[i]];

		slot->rearm = false;
		if (slot->want && !slot->armed)
			s->batch[n++] = prepare(s, s->rearm[i], slot->want);
	}
	s->n_rearm = 0;
	while (done < n) {
		long r = sys_io_submit(s->ctx, n - done, s->batch + done);

		if (r > 0) {
			done += r;
			continue;
		}
		/* The first of the rest was refused; the others are retried. */
		give_up(s, (int)s->batch[done]->aio_fildes, &events[failed++]);
		done++;
	}
	return failed;
}

static unsigned ready_bits(long res)
{
	return ((res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) ? POLLER_READ : 0) |
	       ((res & (POLLOUT | POLLHUP | POLLERR)) ? POLLER_WRITE : 0) |
	       ((res & (POLLRDHUP | POLLHUP | POLLERR)) ? POLLER_HANGUP : 0);
}

static int aio_wait(void *p, int timeout_ms, struct poller_event *events)
{
	struct aio_state *s = p;
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	int count = rearm_reported(s, events);
	int64_t begin;
	long n;

	if (count > 0)
		timeout_ms = 0;
	begin = trace_begin();
	n = syscall(SYS_io_getevents, s->ctx, timeout_ms == 0 ? 0L : 1L,
		    (long)(s->max_events - count), s->done,
		    timeout_ms < 0 ? NULL : &ts);
	trace_wait(TRACE_IO_GETEVENTS, begin, -1, n);
	for (long i = 0; i < n; i++) {
		int fd = (int)(uint32_t)s->done[i].data;
		struct aio_slot *slot = &s->slots[fd];

		s->inflight--;
		if ((unsigned)(s->done[i].data >> 32) != slot->gen)
			continue;	/* cancelled, or its descriptor closed */
		slot->armed = 0;
		if (slot->want && !slot->rearm) {
			slot->rearm = true;
			s->rearm[s->n_rearm++] = fd;
		}
		events[count++] = (struct poller_event){
			fd, ready_bits((long)s->done[i].res) };
	}
	return n < 0 ? -1 : count;
}

static void aio_destroy(void *p)
{
	struct aio_state *s = p;

	syscall(SYS_io_destroy, s->ctx);
	free(s->slots);
	free(s->rearm);
	free(s->batch);
	free(s);
}

/* A context the size of the engine's and a poll request on a pipe: an
 * exhausted fs.aio-max-nr, or a kernel without IOCB_CMD_POLL (before
 * 4.18), shows here, before any listener. */
static int aio_probe(char *err)
{
	aio_context_t ctx = 0;
	struct iocb cb = { .aio_lio_opcode = IOCB_CMD_POLL, .aio_buf = POLLIN };
	struct iocb *cbs[1] = { &cb };
	int fds[2];
	long rc;

	if (sys_io_setup(AIO_PROBE_INFLIGHT, &ctx) < 0) {
		snprintf(err, NET_ERR_LEN, "io_setup %d: %s%s", AIO_PROBE_INFLIGHT,
			 strerror(errno), errno == EAGAIN ? " (fs.aio-max-nr reached)" : "");
		return -1;
	}
	if (pipe(fds) < 0) {
		snprintf(err, NET_ERR_LEN, "pipe: %s", strerror(errno));
		syscall(SYS_io_destroy, ctx);
		return -1;
	}
	cb.aio_fildes = (uint32_t)fds[0];
	rc = syscall(SYS_io_submit, ctx, 1L, cbs);
	if (rc < 0)
		snprintf(err, NET_ERR_LEN, "io_submit IOCB_CMD_POLL: %s%s", strerror(errno),
			 errno == EINVAL ? " (no AIO poll before Linux 4.18)" : "");
	syscall(SYS_io_destroy, ctx);	/* cancels the request */
	close(fds[0]);
	close(fds[1]);
	return rc < 0 ? -1 : 0;
}

static const struct poller aio_poller = {
	.what = "AIO context",
	.create = aio_create,
	.watch = aio_watch,
	.forget = aio_forget,
	.wait = aio_wait,
	.destroy = aio_destroy,
};

const struct engine engine_aio_poll = {
	.name = "aio-poll",
	.summary = "readiness through Linux native AIO's IOCB_CMD_POLL, one-shot, "
		   "re-armed in batches",
	.features = ENGINE_READINESS | ENGINE_O1_WAIT,
	.probe = aio_probe,
	.poller = &aio_poller,
};
