/* prefork_handoff.c -- --accept=handoff, the parent's half (UNP serv05): the
 * parent alone accepts, and hands each connection to a worker that has
 * said it is ready.
 *
 * Each worker has a SOCK_SEQPACKET socketpair with the parent. A worker
 * writes one byte, "ready", each time it goes back to waiting; the parent
 * answers with one message carrying the connection (SCM_RIGHTS) and the
 * index of its listener as data. Seqpacket keeps message boundaries, so a
 * notice and a socket are never merged or split. The parent polls the
 * listeners only while some worker is ready: a connection it cannot hand
 * on at once stays in the kernel's backlog, where the kernel bounds it,
 * instead of in the parent. The worker's half is accept_passed() in
 * prefork_worker.c.
 */
#include "core/prefork_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"

int prefork_handoff_init(struct prefork *p)
{
	size_t n_fds = p->srv->n_listeners + p->n_slots + 1;
	struct prefork_handoff *handoff = calloc(1, sizeof *handoff);

	p->handoff = handoff;
	if (!handoff)
		return -1;
	handoff->held_fd = -1;
	handoff->fd = malloc(p->n_slots * sizeof *handoff->fd);
	handoff->ready = calloc(p->n_slots, sizeof *handoff->ready);
	handoff->polled = calloc(p->n_slots, sizeof *handoff->polled);
	handoff->fds = calloc(n_fds, sizeof *handoff->fds);
	if (!handoff->fd || !handoff->ready || !handoff->polled || !handoff->fds)
		return -1;
	for (unsigned i = 0; i < p->n_slots; i++)
		handoff->fd[i] = -1;
	return 0;
}

void prefork_handoff_free(struct prefork *p)
{
	struct prefork_handoff *handoff = p->handoff;

	if (!handoff)
		return;
	if (handoff->held_fd >= 0) {
		log_error("stopping: a connection that waited for a worker "
			  "is closed unserved");
		close(handoff->held_fd);
	}
	for (unsigned i = 0; handoff->fd && i < p->n_slots; i++)
		if (handoff->fd[i] >= 0)
			close(handoff->fd[i]);
	free(handoff->fd);
	free(handoff->ready);
	free(handoff->polled);
	free(handoff->fds);
	free(handoff);
	p->handoff = NULL;
}

void prefork_handoff_forget(struct prefork *p, unsigned slot)
{
	struct prefork_handoff *handoff = p->handoff;

	if (handoff->fd[slot] >= 0) {
		close(handoff->fd[slot]);
		handoff->fd[slot] = -1;
	}
	handoff->ready[slot] = false;
}

/* Hand a connection to the first ready worker that takes it. The index
 * of its listener rides along as the message's data, so that the worker
 * serves the right service. A worker that died since it said "ready"
 * refuses it (EPIPE: its end is closed): the next one is tried. Returns
 * false when none took it; the connection is then still the caller's. */
static bool pass_to_worker(struct prefork *p, int fd, size_t listener)
{
	struct prefork_handoff *handoff = p->handoff;
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	uint32_t index = (uint32_t)listener;
	struct iovec iov = { &index, sizeof index };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof ctl };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof fd);
	memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
	for (unsigned i = 0; i < p->n_slots; i++) {
		int64_t begin;

		if (!handoff->ready[i])
			continue;
		/* Not ready any more, whatever happens: it has its socket,
		 * or its end failed and it can take none. */
		handoff->ready[i] = false;
		stat_add(STAT_SYS_WRITE, 1);
		begin = trace_begin();
		if (sendmsg(handoff->fd[i], &msg, MSG_NOSIGNAL) == sizeof index) {
			trace_hand_over(begin, fd, i + 1);
			close(fd);	/* the worker has its own copy now */
			return true;
		}
		log_error("passing a connection to worker %u: %s; trying "
			  "another", i, strerror(errno));
	}
	return false;
}

/* Pass fd, or keep it until a worker is ready. */
static void pass_or_hold(struct prefork *p, int fd, size_t listener)
{
	if (pass_to_worker(p, fd, listener))
		return;
	p->handoff->held_fd = fd;
	p->handoff->held_listener = listener;
}

/* A connection kept from an earlier round goes first, before any new one
 * is accepted: clients are served in the order they came. */
static void pass_held(struct prefork *p)
{
	struct prefork_handoff *handoff = p->handoff;
	int fd = handoff->held_fd;

	if (fd < 0)
		return;
	handoff->held_fd = -1;
	pass_or_hold(p, fd, handoff->held_listener);
}

static bool any_ready(const struct prefork *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		if (p->handoff->ready[i])
			return true;
	return false;
}

/* fds[k] is the parent's end for slot polled[k]. A notice is one byte per
 * message; a worker sends the next only after it was given a socket, so
 * one read per round drains it. A hang-up means the worker is gone, even
 * if not yet reaped: its end is closed at once, so that no socket is
 * passed to it and the dead end is not polled again (it would wake every
 * round until the SIGCHLD). A last "ready" read with the hang-up is
 * undone by the same close. */
static void read_ready_notices(struct prefork *p, const struct pollfd *fds,
			       size_t n)
{
	for (size_t k = 0; k < n; k++) {
		unsigned slot = p->handoff->polled[k];
		char byte;

		if (fds[k].revents & POLLIN) {
			stat_add(STAT_SYS_READ, 1);
			if (read(fds[k].fd, &byte, 1) == 1)
				p->handoff->ready[slot] = true;
		}
		if (fds[k].revents & (POLLHUP | POLLERR | POLLNVAL))
			prefork_handoff_forget(p, slot);
	}
}

/* Accept from every listener poll found ready, one connection each, for
 * as long as a worker can take it. Out of descriptors, the rest waits out
 * the pause in the backlog: accepting in a loop would only fail again. */
static void accept_and_pass(struct prefork *p, const struct pollfd *fds,
			    size_t nl)
{
	for (size_t i = 0; i < nl && any_ready(p) && p->handoff->held_fd < 0; i++) {
		struct sockaddr_storage peer;
		int fd;

		if (!(fds[i].revents & POLLIN))
			continue;
		fd = net_accept(fds[i].fd, false, &peer);
		if (fd >= 0) {
			accept_pause_end(&p->handoff->pause);
			pass_or_hold(p, fd, i);
		} else if (net_out_of_resources(errno)) {
			accept_pause_start(&p->handoff->pause, errno, clock_ms());
			return;
		}
	}
}

/* The listeners are polled only while a worker is ready and no EMFILE
 * pause runs; the notices of the live workers always; the signal pipe
 * last, so that a stop or a SIGCHLD ends the round. */
void prefork_handoff_round(struct prefork *p, int timeout)
{
	struct prefork_handoff *handoff = p->handoff;
	struct pollfd *fds = handoff->fds;
	size_t nl = p->srv->n_listeners, n = 0, notices;
	int64_t now = clock_ms(), rest = handoff->pause.until - now, begin;
	bool accepting = any_ready(p) && handoff->held_fd < 0 && rest <= 0;
	int ready;

	if (rest > 0 && rest < timeout)
		timeout = (int)rest;	/* accept again when the rest ends */
	for (size_t i = 0; accepting && i < nl; i++)
		fds[n++] = (struct pollfd){ p->srv->listeners[i].fd, POLLIN, 0 };
	notices = n;
	for (unsigned i = 0; i < p->n_slots; i++)
		if (handoff->fd[i] >= 0) {		/* live workers only */
			handoff->polled[n - notices] = i;
			fds[n++] = (struct pollfd){ handoff->fd[i], POLLIN, 0 };
		}
	fds[n++] = (struct pollfd){ sig_wakeup_fd(), POLLIN, 0 };
	stat_add(STAT_SYS_WAIT, 1);
	begin = trace_begin();
	ready = poll(fds, n, timeout);
	trace_wait(TRACE_POLL, begin, -1, ready);
	if (ready < 0) {
		if (errno != EINTR)
			log_error("poll: %s", strerror(errno));
		return;
	}
	read_ready_notices(p, fds + notices, n - 1 - notices);
	pass_held(p);
	if (accepting)
		accept_and_pass(p, fds, nl);
}
