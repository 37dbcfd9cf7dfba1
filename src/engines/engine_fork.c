/* engine_fork.c -- one child process per connection.
 *
 * The classic inetd model: the parent only accepts and forks; the child
 * closes the listeners, serves its one client and exits. The parent reaps
 * on every SIGCHLD, so no zombie outlives a wakeup, and keeps the pids to
 * end the children that are still serving when the grace period is over.
 * Children ignore SIGINT/SIGTERM (a Ctrl-C reaches the whole process
 * group) and die with the parent (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/intset.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"
#include "core/admission.h"
#include "core/blocking.h"
#include "core/children.h"
#include "engines/engine.h"

static _Noreturn void child_serve(const struct server *srv,
				  const struct accepted *conn, pid_t parent)
{
	trace_forked("child");
	sig_child_reset();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	for (size_t i = 0; i < srv->n_listeners; i++)
		close(srv->listeners[i].fd);
	blocking_serve(srv, conn, NULL);
	close(conn->fd);
	trace_child_exit();
	_exit(0);
}

static void spawn(const struct server *srv, const struct accepted *conn,
		  struct intset *children)
{
	pid_t parent = getpid();
	int64_t begin = trace_begin();
	pid_t pid;

	stat_add(STAT_SYS_FORK, 1);	/* before: the child would count it too */
	pid = fork();
	if (pid == 0)
		child_serve(srv, conn, parent);
	trace_span(TRACE_FORK, begin, conn->fd, pid > 0 ? (uint64_t)pid : 0);
	if (pid < 0)
		log_error("fork: %s; connection closed", strerror(errno));
	else if (intset_add(children, pid) < 0)
		log_error("out of memory tracking child %d", (int)pid);
	close(conn->fd);
}

static int fork_run(const struct engine *self, const struct server *srv)
{
	struct intset children = { 0 };
	struct acceptor acceptor;
	struct accepted conn;
	enum accept_result r;

	(void)self;
	if (acceptor_start(&acceptor, srv) < 0)
		return 1;
	/* The accept loop is written out in iterative, fork and pthread
	 * alike, on purpose: side by side, they differ in the one line that
	 * is the model (serve here, fork a child, start a thread). */
	while ((r = acceptor_next(&acceptor, &conn)) != ACCEPT_STOP) {
		children_reap(&children, NULL, NULL);
		if (r == ACCEPT_CONN &&
		    admission_check(srv, (unsigned)children.n, conn.fd, conn.listener))
			spawn(srv, &conn, &children);
	}
	acceptor_close(&acceptor);
	log_stopping((unsigned)children.n, srv->grace);
	/* No signal: the children ignore them; they get the grace period. */
	children_finish(&children, 0, NULL, NULL);
	intset_free(&children);
	return 0;
}

const struct engine engine_fork = {
	.name = "fork",
	.summary = "one child process per connection, reaped on SIGCHLD",
	.features = ENGINE_PROCESSES,
	.run = fork_run,
};
