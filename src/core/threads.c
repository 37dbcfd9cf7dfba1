/* threads.c -- thread start-up and the registry of served connections. */
#include "core/threads.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/signals.h"
#include "base/stats.h"

#define WAIT_SLICE_MS 100	/* a second stop signal is noticed this fast */
/* A serving thread needs its 16 KiB buffer and little else; 8 MiB of
 * address space each would make thousands of idle connections costly. */
#define THREAD_STACK_SIZE (256 * 1024)

void registry_init(struct conn_registry *r)
{
	pthread_condattr_t attr;

	*r = (struct conn_registry){ .open_fds = { 0 } };
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->all_done, &attr);
	pthread_condattr_destroy(&attr);
}

void registry_destroy(struct conn_registry *r)
{
	pthread_cond_destroy(&r->all_done);
	pthread_mutex_destroy(&r->lock);
	intset_free(&r->open_fds);
}

int registry_add(struct conn_registry *r, int fd)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = intset_add(&r->open_fds, fd);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void registry_close(struct conn_registry *r, int fd)
{
	pthread_mutex_lock(&r->lock);
	intset_remove(&r->open_fds, fd);
	/* Closed under the lock: shutdown never meets a reused number. */
	close(fd);
	if (r->open_fds.n == 0)
		pthread_cond_broadcast(&r->all_done);
	pthread_mutex_unlock(&r->lock);
}

unsigned registry_count(struct conn_registry *r)
{
	unsigned n;

	pthread_mutex_lock(&r->lock);
	n = (unsigned)r->open_fds.n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Wait on all_done until `until` (monotonic ms) at most. Called locked. */
static void wait_until(struct conn_registry *r, int64_t until)
{
	struct timespec ts = { (time_t)(until / 1000),
			       (long)(until % 1000) * 1000000 };

	pthread_cond_timedwait(&r->all_done, &r->lock, &ts);
}

/* The wait after the shutdown has no time limit, on purpose. The
 * registry, the server and its listeners belong to the engine's caller,
 * and a serving thread reads them until its registry_close(): returning
 * while one has not got there would leave it a dead stack frame and freed
 * listeners. It is short all the same: on a shut-down socket every read,
 * write and poll returns at once, so each thread only resets what is
 * still queued for its client (blocking.c), logs its line and closes. The sockets are shut down again every slice: one registered
 * after the first pass (accepted just before the stop) is cut too. */
void registry_finish(struct conn_registry *r)
{
	int64_t left;

	pthread_mutex_lock(&r->lock);
	while (r->open_fds.n > 0 && (left = sig_grace_left_ms()) > 0)
		wait_until(r, clock_ms() + (left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS));
	while (r->open_fds.n > 0) {
		for (size_t i = 0; i < r->open_fds.n; i++)
			shutdown(r->open_fds.v[i], SHUT_RDWR);
		wait_until(r, clock_ms() + WAIT_SLICE_MS);
	}
	pthread_mutex_unlock(&r->lock);
}

struct thread_entry {
	void *(*fn)(void *);
	void *arg;
	struct stat_block *stats;
};

/* The new thread counts where its creator did, until it takes a block of
 * its own. */
static void *thread_main(void *p)
{
	struct thread_entry e = *(struct thread_entry *)p;

	free(p);
	stat_mine = e.stats;
	return e.fn(e.arg);
}

int thread_start(pthread_t *tid, bool detached, void *(*fn)(void *), void *arg)
{
	struct thread_entry *e = malloc(sizeof *e);
	pthread_attr_t attr;
	sigset_t saved;
	int rc;

	if (!e)
		return ENOMEM;
	*e = (struct thread_entry){ fn, arg, stat_mine };
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sig_block(&saved);	/* the new thread inherits the mask */
	rc = pthread_create(tid, &attr, thread_main, e);
	stat_add(STAT_SYS_THREAD, 1);
	sig_restore(&saved);
	pthread_attr_destroy(&attr);
	if (rc)
		free(e);
	return rc;
}
