/* prefork_pass.c -- --accept=pass, the parent's half (UNP serv05): the
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

int prefork_pass_init(struct prefork *p)
{
	size_t n_fds = p->srv->n_listeners + p->n_slots + 1;
	struct prefork_pass *pass = calloc(1, sizeof *pass);

	p->pass = pass;
	if (!pass)
		return -1;
	pass->fd = malloc(p->n_slots * sizeof *pass->fd);
	pass->ready = calloc(p->n_slots, sizeof *pass->ready);
	pass->polled = calloc(p->n_slots, sizeof *pass->polled);
	pass->fds = calloc(n_fds, sizeof *pass->fds);
	if (!pass->fd || !pass->ready || !pass->polled || !pass->fds)
		return -1;
	for (unsigned i = 0; i < p->n_slots; i++)
		pass->fd[i] = -1;
	return 0;
}

void prefork_pass_free(struct prefork *p)
{
	struct prefork_pass *pass = p->pass;

	if (!pass)
		return;
	for (unsigned i = 0; pass->fd && i < p->n_slots; i++)
		if (pass->fd[i] >= 0)
			close(pass->fd[i]);
	free(pass->fd);
	free(pass->ready);
	free(pass->polled);
	free(pass->fds);
	free(pass);
	p->pass = NULL;
}

void prefork_pass_forget(struct prefork *p, unsigned slot)
{
	struct prefork_pass *pass = p->pass;

	if (pass->fd[slot] >= 0) {
		close(pass->fd[slot]);
		pass->fd[slot] = -1;
	}
}

/* Hand a connection to the first ready worker. The index of its listener
 * rides along as the message's data, so that the worker logs the right
 * service and serves it. */
static void pass_to_worker(struct prefork *p, int fd, size_t listener)
{
	struct prefork_pass *pass = p->pass;
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
		if (!pass->ready[i])
			continue;
		/* Not ready any more, whatever happens: it has its socket,
		 * or its end failed and it can take none. */
		pass->ready[i] = false;
		stat_add(STAT_SYS_WRITE, 1);
		if (sendmsg(pass->fd[i], &msg, MSG_NOSIGNAL) == sizeof index)
			break;
	}
	close(fd);	/* the worker has its own copy now, or nobody took it */
}

static bool any_ready(const struct prefork *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		if (p->pass->ready[i])
			return true;
	return false;
}

/* fds[k] is the parent's end for slot polled[k]. A notice is one byte per
 * message; a worker sends the next only after it was given a socket, so
 * one read per round drains it. */
static void read_ready_notices(struct prefork *p, const struct pollfd *fds,
			       size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char byte;

		if (!(fds[k].revents & POLLIN))
			continue;
		stat_add(STAT_SYS_READ, 1);
		if (read(fds[k].fd, &byte, 1) == 1)
			p->pass->ready[p->pass->polled[k]] = true;
	}
}

/* Accept from every listener poll found ready, one connection each, for
 * as long as a worker can take it. Out of descriptors, the rest waits out
 * the pause in the backlog: accepting in a loop would only fail again. */
static void accept_and_pass(struct prefork *p, const struct pollfd *fds,
			    size_t nl)
{
	for (size_t i = 0; i < nl && any_ready(p); i++) {
		struct sockaddr_storage peer;
		int fd;

		if (!(fds[i].revents & POLLIN))
			continue;
		fd = net_accept(fds[i].fd, false, &peer);
		if (fd >= 0) {
			accept_pause_end(&p->pass->pause);
			pass_to_worker(p, fd, i);
		} else if (net_out_of_resources(errno)) {
			accept_pause_start(&p->pass->pause, errno, clock_ms());
			return;
		}
	}
}

/* The listeners are polled only while a worker is ready and no EMFILE
 * pause runs; the notices of the live workers always; the signal pipe
 * last, so that a stop or a SIGCHLD ends the round. */
void prefork_pass_round(struct prefork *p, int timeout)
{
	struct prefork_pass *pass = p->pass;
	struct pollfd *fds = pass->fds;
	size_t nl = p->srv->n_listeners, n = 0, notices;
	int64_t now = clock_ms(), rest = pass->pause.until - now;
	bool accepting = any_ready(p) && rest <= 0;

	if (rest > 0 && rest < timeout)
		timeout = (int)rest;	/* accept again when the rest ends */
	for (size_t i = 0; accepting && i < nl; i++)
		fds[n++] = (struct pollfd){ p->srv->listeners[i].fd, POLLIN, 0 };
	notices = n;
	for (unsigned i = 0; i < p->n_slots; i++)
		if (pass->fd[i] >= 0) {		/* live workers only */
			pass->polled[n - notices] = i;
			fds[n++] = (struct pollfd){ pass->fd[i], POLLIN, 0 };
		}
	fds[n++] = (struct pollfd){ sig_wakeup_fd(), POLLIN, 0 };
	stat_add(STAT_SYS_WAIT, 1);
	if (poll(fds, n, timeout) < 0) {
		if (errno != EINTR)
			log_error("poll: %s", strerror(errno));
		return;
	}
	read_ready_notices(p, fds + notices, n - 1 - notices);
	if (accepting)
		accept_and_pass(p, fds, nl);
}
