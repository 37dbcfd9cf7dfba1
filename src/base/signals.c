/* signals.c -- the self-pipe and the stop request. */
#include "base/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/trace.h"

static int wake_pipe[2] = { -1, -1 };
static int64_t grace_ms;
/* Written in handlers, read by any thread: lock-free atomics are both
 * async-signal-safe and race-free. */
static _Atomic int stop_signals;
static _Atomic bool stats_wanted;	/* SIGUSR1 */
static _Atomic int64_t stop_at_ms;
/* A second stop signal ends the grace period, except in a pool worker:
 * there it is the parent's copy of one the whole group got (Ctrl-C, or a
 * service manager), and the parent itself ends the grace. */
static bool second_stop_ends_grace = true;

static void wake(void)
{
	int saved = errno;

	/* A full pipe already holds a wakeup; nothing is lost. */
	if (write(wake_pipe[1], "", 1) < 0)
		errno = saved;
	errno = saved;
}

static void on_stop(int sig)
{
	(void)sig;
	if (atomic_load(&stop_signals) == 0)
		atomic_store(&stop_at_ms, clock_ms());
	atomic_fetch_add(&stop_signals, 1);
	wake();
}

static void on_stats(int sig)
{
	(void)sig;
	atomic_store(&stats_wanted, true);
	wake();
}

/* SIGCHLD in a parent, SIGUSR2 ("look at your orders") in a pool worker:
 * only a wakeup. */
static void on_wake(int sig)
{
	(void)sig;
	wake();
}

static int install(int sig, void (*handler)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int sig_init(unsigned grace_seconds)
{
	grace_ms = (int64_t)grace_seconds * 1000;
	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	/* No SA_RESTART for the stop signals: a blocked read must return
	 * EINTR so that the grace period can be applied to it. */
	if (install(SIGINT, on_stop, 0) < 0 || install(SIGTERM, on_stop, 0) < 0 ||
	    install(SIGCHLD, on_wake, SA_RESTART | SA_NOCLDSTOP) < 0 ||
	    install(SIGUSR2, on_wake, 0) < 0 ||
	    install(SIGUSR1, on_stats, SA_RESTART) < 0 ||
	    install(SIGPIPE, SIG_IGN, 0) < 0)
		return -1;
	return 0;
}

int sig_wakeup_fd(void)
{
	return wake_pipe[0];
}

void sig_drain(void)
{
	char sink[64];

	while (read(wake_pipe[0], sink, sizeof sink) > 0)
		continue;
	/* Printed here, by whichever loop drains the pipe: not in a handler. */
	if (atomic_exchange(&stats_wanted, false)) {
		char err[TRACE_ERR_LEN];

		log_stats();
		if (trace_snapshot(err) < 0)
			log_error("%s", err);
	}
}

void sig_notify(void)
{
	wake();
}

bool sig_stop_requested(void)
{
	return atomic_load(&stop_signals) > 0;
}

void sig_request_stop(void)
{
	int none = 0;

	/* A second one would end the grace period: only the first counts. */
	if (atomic_load(&stop_signals) == 0)
		atomic_store(&stop_at_ms, clock_ms());
	if (atomic_compare_exchange_strong(&stop_signals, &none, 1))
		wake();
}

int64_t sig_grace_left_ms(void)
{
	int n = atomic_load(&stop_signals);
	int64_t left;

	if (n == 0)
		return -1;
	if (n > 1 && second_stop_ends_grace)
		return 0;
	left = atomic_load(&stop_at_ms) + grace_ms - clock_ms();
	return left > 0 ? left : 0;
}

const char *sig_stop_reason(void)
{
	return sig_grace_left_ms() == 0 ? "grace period over" : "server stopped";
}

static void handled_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGUSR1);
}

void sig_block(sigset_t *saved)
{
	sigset_t set;

	handled_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, saved);
}

void sig_restore(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

int sig_worker_init(sigset_t *saved)
{
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	atomic_store(&stop_signals, 0);
	second_stop_ends_grace = false;
	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	install(SIGCHLD, SIG_DFL, 0);
	install(SIGUSR1, SIG_IGN, 0);	/* the parent prints the pool's --stats */
	sig_restore(saved);
	return 0;
}

void sig_child_reset(void)
{
	install(SIGINT, SIG_IGN, 0);
	install(SIGTERM, SIG_IGN, 0);
	install(SIGCHLD, SIG_DFL, 0);
	install(SIGUSR1, SIG_IGN, 0);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	wake_pipe[0] = wake_pipe[1] = -1;
}
