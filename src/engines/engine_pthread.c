/* engine_pthread.c -- one detached thread per connection.
 *
 * The main thread accepts and starts a thread that serves the connection
 * and ends; the threads share nothing but the registry of open sockets
 * (threads.c), which counts them for --max-conns and lets the main thread,
 * the only one the stop signals reach, shut down those still open when the
 * grace period is over and wait until every thread has closed its own.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/thread.h"
#include "base/trace.h"
#include "core/admission.h"
#include "core/blocking.h"
#include "core/conn_registry.h"
#include "engines/engine.h"

struct job {
	const struct server *srv;
	struct conn_registry *registry;
	struct accepted conn;
};

static void *serve_thread(void *arg)
{
	struct job *job = arg;

	trace_name_thread("serving fd %d", job->conn.fd);
	blocking_serve(job->srv, &job->conn, NULL);
	conn_registry_close(job->registry, job->conn.fd);
	free(job);
	return NULL;
}

static void spawn(const struct server *srv, struct conn_registry *registry,
		  const struct accepted *conn)
{
	struct job *job = malloc(sizeof *job);
	pthread_t tid;
	int rc;

	if (!job || conn_registry_add(registry, conn->fd) < 0) {
		log_error("out of memory; connection closed");
		close(conn->fd);
		free(job);
		return;
	}
	*job = (struct job){ srv, registry, *conn };
	rc = thread_start(&tid, true, serve_thread, job);
	if (rc != 0) {
		log_error("pthread_create: %s; connection closed", strerror(rc));
		conn_registry_close(registry, conn->fd);
		free(job);
	}
}

static int pthread_run(const struct engine *self, const struct server *srv)
{
	struct conn_registry registry;
	struct acceptor acceptor;
	struct accepted conn;
	enum accept_result r;

	(void)self;
	if (acceptor_start(&acceptor, srv) < 0)
		return 1;
	conn_registry_init(&registry);
	/* The accept loop is written out in iterative, fork and pthread
	 * alike, on purpose: side by side, they differ in the one line that
	 * is the model (serve here, fork a child, start a thread). */
	while ((r = acceptor_next(&acceptor, &conn)) != ACCEPT_STOP)
		if (r == ACCEPT_CONN &&
		    admission_check(srv, conn_registry_count(&registry), conn.fd,
				    conn.listener))
			spawn(srv, &registry, &conn);
	acceptor_close(&acceptor);
	log_stopping(conn_registry_count(&registry), srv->grace);
	/* Returns once every serving thread is past its conn_registry_close():
	 * the registry on this stack and srv's listeners outlive them all. */
	conn_registry_finish(&registry);
	conn_registry_destroy(&registry);
	return 0;
}

const struct engine engine_pthread = {
	.name = "pthread",
	.summary = "one detached thread per connection",
	.features = ENGINE_THREADS,
	.run = pthread_run,
};
