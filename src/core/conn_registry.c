/* conn_registry.c -- the registry of connections served by threads. */
#include "core/conn_registry.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/signals.h"
#include "base/stats.h"

#define WAIT_SLICE_MS 100	/* a second stop signal is noticed this fast */

void conn_registry_init(struct conn_registry *r)
{
	pthread_condattr_t attr;

	*r = (struct conn_registry){ .open_fds = { 0 } };
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->all_done, &attr);
	pthread_condattr_destroy(&attr);
}

void conn_registry_destroy(struct conn_registry *r)
{
	pthread_cond_destroy(&r->all_done);
	pthread_mutex_destroy(&r->lock);
	intset_free(&r->open_fds);
}

int conn_registry_add(struct conn_registry *r, int fd)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = intset_add(&r->open_fds, fd);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void conn_registry_close(struct conn_registry *r, int fd)
{
	pthread_mutex_lock(&r->lock);
	intset_remove(&r->open_fds, fd);
	/* Closed under the lock: shutdown never meets a reused number. */
	close(fd);
	if (r->open_fds.n == 0)
		pthread_cond_broadcast(&r->all_done);
	pthread_mutex_unlock(&r->lock);
}

unsigned conn_registry_count(struct conn_registry *r)
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
 * and a serving thread reads them until its conn_registry_close(): returning
 * while one has not got there would leave it a dead stack frame and freed
 * listeners. It is short all the same: on a shut-down socket every read,
 * write and poll returns at once, so each thread only resets what is
 * still queued for its client (blocking.c), logs its line and closes. The sockets are shut down again every slice: one registered
 * after the first pass (accepted just before the stop) is cut too. */
void conn_registry_finish(struct conn_registry *r)
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
