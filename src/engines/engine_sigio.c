/* engine_sigio.c -- the reactor on queued real-time signals (F_SETSIG).
 *
 * Each descriptor is given to this thread (F_SETOWN_EX), told to raise a
 * real-time signal instead of SIGIO (F_SETSIG) and switched to O_ASYNC:
 * from then on the kernel queues one siginfo naming the descriptor and
 * its poll band at every change, as nginx's rtsig module used it. The
 * signals stay blocked and are read in batches from a signalfd, with
 * sigtimedwait for the blocking wait. What differs from epoll-et:
 * - the band of a half-close is POLL_IN alone (the kernel raises POLL_HUP
 *   only when both directions are shut), so a FIN that came with the last
 *   data cannot be told apart: every input report carries POLLER_HANGUP
 *   and the reactor reads until EAGAIN or EOF, one read more per turn;
 * - arming is three fcntl calls, and it reports nothing already ready, so
 *   a descriptor newly watched is reported once without a signal;
 * - the queue is bounded (RLIMIT_SIGPENDING); when it overflows the kernel
 *   sends a plain SIGIO, and every watched descriptor is polled once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/stats.h"
#include "base/trace.h"
#include "core/reactor.h"
#include "engines/engine.h"

#define ARMED (1u << 4)		/* fcntl'd: O_ASYNC, our signal, our thread */
#define QUEUED (1u << 5)	/* on the queue of reports without a signal */
#define WATCHED (POLLER_READ | POLLER_WRITE)
#define RESCAN_CHUNK 256	/* descriptors per poll(2) after an overflow */

struct sigio_state {
	int sigfd;		/* the real-time signal and SIGIO, non-blocking */
	sigset_t set;
	pid_t tid;
	int max_events;
	int top;		/* above every descriptor ever armed */
	unsigned char *flags;	/* by descriptor: WATCHED bits, ARMED, QUEUED */
	int *queue;		/* reports owed without a signal */
	int queued;
	struct signalfd_siginfo batch[];
};

static int sigio_signal(void)
{
	return SIGRTMIN;
}

/* Our descriptors are all non-blocking already, so F_SETFL needs no
 * F_GETFL first. Returns 0, or -1 with errno and the refused call. */
static int arm(int fd, pid_t tid, const char **call)
{
	struct f_owner_ex owner = { F_OWNER_TID, tid };

	*call = "fcntl F_SETOWN_EX";
	stat_add(STAT_SYS_CTL, 1);
	if (fcntl(fd, F_SETOWN_EX, &owner) < 0)
		return -1;
	*call = "fcntl F_SETSIG";
	stat_add(STAT_SYS_CTL, 1);
	if (fcntl(fd, F_SETSIG, sigio_signal()) < 0)
		return -1;
	*call = "fcntl F_SETFL O_ASYNC";
	stat_add(STAT_SYS_CTL, 1);
	return fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) < 0 ? -1 : 0;
}

static int open_signalfd(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, sigio_signal());
	sigaddset(set, SIGIO);
	/* Left blocked for good: signals still queued for descriptors
	 * closed since must not end the process. */
	pthread_sigmask(SIG_BLOCK, set, NULL);
	return signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void *sigio_create(int max_fds, int max_events)
{
	struct sigio_state *s = calloc(1, sizeof *s +
				       (size_t)max_events * sizeof s->batch[0]);

	if (!s)
		return NULL;
	s->flags = calloc((size_t)max_fds, sizeof *s->flags);
	s->queue = malloc((size_t)max_fds * sizeof *s->queue);
	s->sigfd = open_signalfd(&s->set);
	if (!s->flags || !s->queue || s->sigfd < 0) {
		int saved = errno;

		if (s->sigfd >= 0)
			close(s->sigfd);
		free(s->flags);
		free(s->queue);
		free(s);
		errno = saved;
		return NULL;
	}
	s->tid = gettid();
	s->max_events = max_events;
	return s;
}

static void enqueue(struct sigio_state *s, int fd)
{
	if (s->flags[fd] & QUEUED)
		return;
	s->flags[fd] |= QUEUED;
	s->queue[s->queued++] = fd;
}

static int sigio_watch(void *p, int fd, unsigned old_mask, unsigned mask)
{
	struct sigio_state *s = p;
	const char *call;

	if (mask && !(s->flags[fd] & ARMED)) {
		if (arm(fd, s->tid, &call) < 0)
			return -1;
		s->flags[fd] |= ARMED;
		if (fd >= s->top)
			s->top = fd + 1;
	}
	if (!old_mask && mask)
		enqueue(s, fd);
	s->flags[fd] = (unsigned char)((s->flags[fd] & ~WATCHED) | mask);
	return 0;
}

/* The number may come back as another file, not armed; a place on the
 * queue is kept, and skipped if still unwatched when its turn comes. */
static void sigio_forget(void *p, int fd, unsigned mask)
{
	struct sigio_state *s = p;

	(void)mask;
	s->flags[fd] &= QUEUED;
}

/* SIGIO: the queue overflowed and signals were lost. Poll every watched
 * descriptor once and queue those ready. */
static void rescan(struct sigio_state *s)
{
	struct pollfd chunk[RESCAN_CHUNK];
	int n = 0;

	for (int fd = 0; fd < s->top; fd++) {
		int64_t begin;
		int ready;

		if (s->flags[fd] & WATCHED)
			chunk[n++] = (struct pollfd){ fd, POLLIN | POLLOUT, 0 };
		if (n < RESCAN_CHUNK && fd + 1 < s->top)
			continue;
		stat_add(STAT_SYS_WAIT, 1);
		begin = trace_begin();
		ready = n > 0 ? poll(chunk, (nfds_t)n, 0) : 0;
		trace_wait(TRACE_POLL, begin, -1, ready);
		if (ready > 0)
			for (int i = 0; i < n; i++)
				if (chunk[i].revents)
					enqueue(s, chunk[i].fd);
		n = 0;
	}
}

static unsigned band_ready(long band)
{
	unsigned ready = 0;

	if (band & (POLLIN | POLLRDNORM | POLLPRI))
		ready |= POLLER_READ | POLLER_HANGUP;
	if (band & (POLLOUT | POLLWRNORM))
		ready |= POLLER_WRITE;
	if (band & (POLLERR | POLLHUP))
		ready |= POLLER_READ | POLLER_WRITE | POLLER_HANGUP;
	return ready;
}

static int take_queued(struct sigio_state *s, struct poller_event *events,
		       int room)
{
	int count = 0;

	while (s->queued > 0 && count < room) {
		int fd = s->queue[--s->queued];

		s->flags[fd] &= (unsigned char)~QUEUED;
		if (s->flags[fd] & WATCHED)
			events[count++] = (struct poller_event){
				fd, POLLER_READ | POLLER_WRITE | POLLER_HANGUP };
	}
	return count;
}

/* One batch from the signalfd; when it is empty and the caller may wait,
 * sigtimedwait for the first signal. Returns how many siginfos, or -1. */
static int collect(struct sigio_state *s, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
	siginfo_t info;
	ssize_t n = read(s->sigfd, s->batch,
			 (size_t)s->max_events * sizeof s->batch[0]);
	int64_t begin;
	int sig;

	if (n >= 0 || errno != EAGAIN || timeout_ms == 0)
		return n < 0 ? (errno == EAGAIN ? 0 : -1)
			     : (int)((size_t)n / sizeof s->batch[0]);
	stat_add(STAT_SYS_WAIT, 1);
	begin = trace_begin();
	sig = sigtimedwait(&s->set, &info, timeout_ms < 0 ? NULL : &ts);
	trace_wait(TRACE_SIGTIMEDWAIT, begin, sig < 0 ? -1 : info.si_fd,
		   sig < 0 ? sig : 1);
	if (sig < 0)
		return errno == EAGAIN ? 0 : -1;
	s->batch[0] = (struct signalfd_siginfo){ .ssi_signo = (uint32_t)info.si_signo,
						 .ssi_fd = info.si_fd,
						 .ssi_band = (uint32_t)info.si_band };
	return 1;
}

static int sigio_wait(void *p, int timeout_ms, struct poller_event *events)
{
	struct sigio_state *s = p;
	int count = take_queued(s, events, s->max_events);
	int n;

	if (count > 0)
		return count;
	n = collect(s, timeout_ms);
	for (int i = 0; i < n; i++) {
		const struct signalfd_siginfo *si = &s->batch[i];
		int fd = si->ssi_fd;

		if ((int)si->ssi_signo == SIGIO)
			rescan(s);
		else if (fd >= 0 && fd < s->top && (s->flags[fd] & WATCHED))
			events[count++] = (struct poller_event){
				fd, band_ready((long)si->ssi_band) };
	}
	return n < 0 ? -1
		     : count + take_queued(s, events + count, s->max_events - count);
}

static void sigio_destroy(void *p)
{
	struct sigio_state *s = p;

	close(s->sigfd);
	free(s->flags);
	free(s->queue);
	free(s);
}

/* A pipe armed as a connection would be, and a signalfd: whatever the
 * kernel or a policy refuses shows here, before any listener. */
static int sigio_probe(char *err)
{
	const char *call = "pipe2";
	int fds[2], rc = -1;
	sigset_t set;
	int sigfd;

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
		rc = arm(fds[0], gettid(), &call);
		close(fds[0]);
		close(fds[1]);
	}
	if (rc == 0 && (sigfd = open_signalfd(&set)) >= 0) {
		close(sigfd);
		return 0;
	}
	if (rc == 0)
		call = "signalfd";
	snprintf(err, NET_ERR_LEN, "%s: %s", call, strerror(errno));
	return -1;
}

static const struct poller sigio_poller = {
	.what = "signalfd",
	.create = sigio_create,
	.watch = sigio_watch,
	.forget = sigio_forget,
	.wait = sigio_wait,
	.destroy = sigio_destroy,
};

const struct engine engine_sigio = {
	.name = "sigio",
	.summary = "readiness delivered as queued real-time signals (F_SETSIG); "
		   "a poll(2) rescan when the signal queue overflows",
	.features = ENGINE_READINESS | ENGINE_EDGE | ENGINE_O1_WAIT,
	.probe = sigio_probe,
	.poller = &sigio_poller,
};
