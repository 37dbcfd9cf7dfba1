/* thread_group.c -- serving threads that the main thread wakes and stops. */
#include "base/thread.h"
#include "core/thread_group.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"

int group_init(struct thread_group *c, unsigned n, const char *name)
{
	*c = (struct thread_group){ .name = name, .n = n };
	c->members = calloc(n, sizeof *c->members);
	if (!c->members) {
		log_error("%s: cannot start: %u threads: %s", name, n,
			  strerror(errno));
		return -1;
	}
	pthread_mutex_init(&c->gate_lock, NULL);
	pthread_cond_init(&c->gate_moved, NULL);
	for (unsigned i = 0; i < n; i++)
		c->members[i] = (struct group_member){ .group = c, .index = i,
						      .wake_fd = -1 };
	for (unsigned i = 0; i < n; i++) {
		c->members[i].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (c->members[i].wake_fd < 0) {
			log_error("%s: cannot start thread %u of %u: eventfd: %s",
				  name, i + 1, n, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int group_wake_fd(const struct thread_group *c, unsigned i)
{
	return c->members[i].wake_fd;
}

void group_wake(struct thread_group *c, unsigned i)
{
	uint64_t one = 1;

	/* Fails only when the counter is full: it is readable already. */
	if (write(c->members[i].wake_fd, &one, sizeof one) < 0)
		return;
}

void group_drain(struct thread_group *c, unsigned i)
{
	uint64_t count;

	if (read(c->members[i].wake_fd, &count, sizeof count) < 0)
		return;	/* EAGAIN: another report had emptied it */
}

void group_wake_all(struct thread_group *c)
{
	for (unsigned i = 0; i < c->n; i++)
		group_wake(c, i);
}

static void move_gate(struct thread_group *c, enum group_gate to)
{
	pthread_mutex_lock(&c->gate_lock);
	c->gate = to;
	pthread_cond_broadcast(&c->gate_moved);
	pthread_mutex_unlock(&c->gate_lock);
}

/* true once the group may serve, false when its start was abandoned. */
static bool pass_gate(struct thread_group *c)
{
	bool open;

	pthread_mutex_lock(&c->gate_lock);
	while (c->gate == GATE_SHUT)
		pthread_cond_wait(&c->gate_moved, &c->gate_lock);
	open = c->gate == GATE_OPEN;
	pthread_mutex_unlock(&c->gate_lock);
	return open;
}

static void *member_main(void *p)
{
	struct group_member *m = p;
	struct thread_group *c = m->group;

	stats_use_thread_block(m->index);
	trace_name_thread("%s thread %u", c->name, m->index + 1);
	if (pass_gate(c) && c->serve(c->ctx, m->index) != 0) {
		/* This thread cannot serve on: all stop, with the grace
		 * period, and muxd exits 1. */
		atomic_store(&c->failed, true);
		sig_request_stop();
	}
	atomic_fetch_sub(&c->running, 1);
	sig_notify();
	return NULL;
}

static void join_started(struct thread_group *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->members[i].started) {
			pthread_join(c->members[i].tid, NULL);
			c->members[i].started = false;
		}
}

int group_start(struct thread_group *c, int (*serve)(void *ctx, unsigned i), void *ctx)
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
			log_error("%s: cannot start thread %u of %u: %s",
				  c->name, i + 1, c->n, strerror(rc));
			move_gate(c, GATE_ABANDONED);
			join_started(c);
			return -1;
		}
		c->members[i].started = true;
	}
	return 0;
}

void group_release(struct thread_group *c)
{
	move_gate(c, GATE_OPEN);
}

int group_join(struct thread_group *c)
{
	struct pollfd wake = { .fd = sig_wakeup_fd(), .events = POLLIN };

	while (atomic_load(&c->running) > 0) {
		int64_t begin = trace_begin();
		int ready = poll(&wake, 1, -1);

		trace_wait(TRACE_POLL, begin, -1, ready);
		if (ready < 0 && errno != EINTR)
			log_error("poll: %s", strerror(errno));
		sig_drain();
		group_wake_all(c);
	}
	join_started(c);
	return atomic_load(&c->failed) ? 1 : 0;
}

void group_free(struct thread_group *c)
{
	if (!c->members)
		return;
	for (unsigned i = 0; i < c->n; i++)
		if (c->members[i].wake_fd >= 0)
			close(c->members[i].wake_fd);
	pthread_cond_destroy(&c->gate_moved);
	pthread_mutex_destroy(&c->gate_lock);
	free(c->members);
	c->members = NULL;
}
