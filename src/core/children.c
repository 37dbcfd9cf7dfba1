/* children.c -- reaping and ending child processes. */
#include "core/children.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "base/signals.h"
#include "base/trace.h"

static void reaped(struct intset *kids, pid_t pid, int status,
		   child_ended_fn *ended, void *ctx)
{
	intset_remove(kids, pid);
	if (ended)
		ended(pid, status, ctx);
}

void children_reap(struct intset *kids, child_ended_fn *ended, void *ctx)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		reaped(kids, pid, status, ended, ctx);
}

void children_finish(struct intset *kids, int sig, child_ended_fn *ended,
		     void *ctx)
{
	struct pollfd wake = { sig_wakeup_fd(), POLLIN, 0 };
	int64_t left;

	for (size_t i = 0; sig && i < kids->n; i++)
		kill(kids->v[i], sig);
	children_reap(kids, ended, ctx);
	while (kids->n > 0 && (left = sig_grace_left_ms()) > 0) {
		int64_t begin = trace_begin();

		trace_wait(TRACE_POLL, begin, -1, poll(&wake, 1, (int)left));
		sig_drain();
		children_reap(kids, ended, ctx);
	}
	for (size_t i = 0; i < kids->n; i++)
		kill(kids->v[i], SIGKILL);
	while (kids->n > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);

		if (pid > 0)
			reaped(kids, pid, status, ended, ctx);
		else if (errno != EINTR)
			break;
	}
}
