/* crew.c -- serving threads that the main thread wakes and stops. */
#include "core/crew.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "core/threads.h"

int crew_init(struct crew *c, unsigned n)
{
	*c = (struct crew){ .n = n };
	c->members = calloc(n, sizeof *c->members);
	if (!c->members)
		return -1;
	for (unsigned i = 0; i < n; i++)
		c->members[i] = (struct crew_member){ .crew = c, .index = i,
						      .wake_fd = -1 };
	for (unsigned i = 0; i < n; i++) {
		c->members[i].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (c->members[i].wake_fd < 0)
			return -1;
	}
	return 0;
}

int crew_wake_fd(const struct crew *c, unsigned i)
{
	return c->members[i].wake_fd;
}

void crew_wake(struct crew *c, unsigned i)
{
	uint64_t one = 1;

	/* Fails only when the counter is full: it is readable already. */
	if (write(c->members[i].wake_fd, &one, sizeof one) < 0)
		return;
}

void crew_drain(struct crew *c, unsigned i)
{
	uint64_t count;

	if (read(c->members[i].wake_fd, &count, sizeof count) < 0)
		return;	/* EAGAIN: another report had emptied it */
}

void crew_wake_all(struct crew *c)
{
	for (unsigned i = 0; i < c->n; i++)
		crew_wake(c, i);
}

static void *member_main(void *p)
{
	struct crew_member *m = p;
	struct crew *c = m->crew;

	stats_use_thread_block(m->index);
	c->serve(c->ctx, m->index);
	atomic_fetch_sub(&c->running, 1);
	sig_notify();
	return NULL;
}

int crew_start(struct crew *c, void (*serve)(void *ctx, unsigned i), void *ctx)
{
	c->serve = serve;
	c->ctx = ctx;
	for (unsigned i = 0; i < c->n; i++) {
		int rc;

		atomic_fetch_add(&c->running, 1);
		rc = thread_start(&c->members[i].tid, false, member_main,
				  &c->members[i]);
		if (rc) {
			atomic_fetch_sub(&c->running, 1);
			log_error("cannot start serving thread %u of %u: %s",
				  i + 1, c->n, strerror(rc));
			/* A stop like any other: the threads started finish
			 * their connections, and the engine exits. */
			kill(getpid(), SIGTERM);
			errno = rc;
			return -1;
		}
		c->members[i].started = true;
	}
	return 0;
}

void crew_join(struct crew *c)
{
	struct pollfd wake = { .fd = sig_wakeup_fd(), .events = POLLIN };

	while (atomic_load(&c->running) > 0) {
		if (poll(&wake, 1, -1) < 0 && errno != EINTR)
			log_error("poll: %s", strerror(errno));
		sig_drain();
		crew_wake_all(c);
	}
	for (unsigned i = 0; i < c->n; i++)
		if (c->members[i].started)
			pthread_join(c->members[i].tid, NULL);
}

void crew_free(struct crew *c)
{
	for (unsigned i = 0; c->members && i < c->n; i++)
		if (c->members[i].wake_fd >= 0)
			close(c->members[i].wake_fd);
	free(c->members);
	c->members = NULL;
}
