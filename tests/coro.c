/* coro.c -- the coroutine engine's stacks and switch (src/base/coro.c),
 * linked alone: switches keep each side's state, a stack holds what it is
 * documented to hold, finished stacks are reused up to the pool's bound,
 * and an overflow ends in the one-line report and abort(), never in
 * silent corruption of the memory below. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/coro.h"
#include "tap.h"

#define OVERFLOW_ID 42		/* the "fd" the report must name */

struct counter {
	int steps;
	double mixed;		/* a callee-saved float register's worth */
};

static void count_steps(void *arg)
{
	struct counter *c = arg;

	for (int i = 0; i < 5; i++) {
		c->steps++;
		c->mixed = c->mixed * 2.0 + 1.0;
		coro_yield();
	}
}

/* Interleave two coroutines with the scheduler's own locals alive. */
static void test_switches(void)
{
	struct counter a = { 0, 0.0 }, b = { 0, 1.0 };
	struct coro_stacks stacks = { 0 };
	struct coro ca, cb;
	volatile long local = 12345;
	int turns = 0;

	if (coro_init(&ca, &stacks, 0, count_steps, &a, 1) < 0 ||
	    coro_init(&cb, &stacks, 0, count_steps, &b, 2) < 0) {
		ok(false, "coro_init: %s", strerror(errno));
		return;
	}
	while (!ca.finished || !cb.finished) {
		if (!ca.finished)
			coro_resume(&ca);
		if (!cb.finished)
			coro_resume(&cb);
		turns++;
	}
	is_int(a.steps, 5, "a coroutine runs between its yields, to its end");
	is_int(b.steps, 5, "two coroutines interleave");
	ok(a.mixed == 31.0 && b.mixed == 63.0, "each keeps its own state across switches");
	is_int(turns, 6, "a finished coroutine says so");
	is_int(local, 12345, "the scheduler's stack is untouched");
	coro_free(&ca, &stacks);
	coro_free(&cb, &stacks);
	coro_stacks_free(&stacks);
}

/* Fills most of the stack, then yields: what it wrote is still there. */
static void fill_stack(void *arg)
{
	unsigned char block[CORO_STACK_SIZE - 8 * 1024];
	int *intact = arg;

	memset(block, 0x5a, sizeof block);
	coro_yield();
	*intact = 1;
	for (size_t i = 0; i < sizeof block; i++)
		if (block[i] != 0x5a)
			*intact = 0;
}

static void test_stack_size(void)
{
	struct coro_stacks stacks = { 0 };
	struct coro c;
	int intact = -1;
	unsigned char *extra;

	if (coro_init(&c, &stacks, 4096, fill_stack, &intact, 3) < 0) {
		ok(false, "coro_init: %s", strerror(errno));
		return;
	}
	extra = coro_extra(&c);
	memset(extra, 0xa5, 4096);
	coro_resume(&c);
	coro_resume(&c);
	ok(c.finished && intact == 1,
	   "a stack holds CORO_STACK_SIZE less 8 KiB across a switch");
	ok(extra[0] == 0xa5 && extra[4095] == 0xa5,
	   "the caller's extra bytes sit apart from the stack");
	coro_free(&c, &stacks);
	coro_stacks_free(&stacks);
}

static void do_nothing(void *arg)
{
	(void)arg;
}

/* Is the page at addr (page-aligned) mapped? mincore(2) fails with ENOMEM
 * if not. */
static bool mapped(unsigned char *addr)
{
	unsigned char resident;

	return mincore(addr, 1, &resident) == 0;
}

/* A finished coroutine's stack serves the next one; the pool keeps
 * CORO_SPARE_STACKS, unmaps the rest, and gives every one back at the
 * end. */
static void test_pool(void)
{
	enum { N = CORO_SPARE_STACKS + 8 };
	static struct coro c[N];
	struct coro_stacks stacks = { 0 };
	unsigned char *first;
	int made = 0, kept = 0, left = 0;

	if (coro_init(&c[0], &stacks, 4096, do_nothing, NULL, 0) < 0) {
		ok(false, "coro_init: %s", strerror(errno));
		return;
	}
	first = c[0].stack;
	coro_resume(&c[0]);
	coro_free(&c[0], &stacks);
	made += coro_init(&c[0], &stacks, 4096, do_nothing, NULL, 0) == 0;
	ok(made == 1 && c[0].stack == first && mapped(first),
	   "a finished coroutine's stack serves the next one");
	for (int i = 1; i < N; i++)
		made += coro_init(&c[i], &stacks, 4096, do_nothing, NULL, i) == 0;
	for (int i = 0; i < made; i++)
		coro_free(&c[i], &stacks);
	for (int i = 0; i < made; i++)
		kept += mapped(c[i].stack);
	coro_stacks_free(&stacks);
	for (int i = 0; i < made; i++)
		left += mapped(c[i].stack);
	ok(made == N && kept == CORO_SPARE_STACKS,
	   "of %d stacks freed, the pool keeps %d", N, CORO_SPARE_STACKS);
	if (made != N || kept != CORO_SPARE_STACKS)
		diag("%d made, %d still mapped", made, kept);
	is_int(left, 0, "coro_stacks_free unmaps every stack kept");
}

/* Each frame keeps a block the compiler cannot drop, and the recursion is
 * not a tail call: the stack runs out long before `limit`, 1 GiB deep. */
static int recurse(int depth, int limit)
{
	volatile unsigned char frame[512];

	if (depth >= limit)
		return 0;
	frame[0] = (unsigned char)depth;
	frame[511] = frame[0];
	return recurse(depth + 1, limit) + frame[511];
}

static void overflow(void *arg)
{
	volatile int limit = 1 << 21;

	(void)arg;
	recurse(0, limit);
}

/* One frame larger than the whole stack, written at its far end first:
 * built with -fstack-clash-protection (configure), the frame's pages are
 * probed one by one on the way down, and the guard page catches it;
 * without, the write jumps the guard into whatever lies below. */
static void jump_guard(void *arg)
{
	volatile unsigned char frame[CORO_STACK_SIZE + 16 * 1024];

	(void)arg;
	frame[0] = 1;
	frame[sizeof frame - 1] = frame[0];
}

/* In a child: overflow a coroutine's stack with fn, on a stack that a
 * coroutine used before. Its standard error comes back through a pipe. */
static void test_overflow(void (*fn)(void *), const char *how)
{
	char report[256] = "";
	int fds[2], status = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0 || (pid = fork()) < 0) {
		ok(false, "pipe/fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		struct coro_stacks stacks = { 0 };
		struct coro c;

		dup2(fds[1], STDERR_FILENO);
		/* On a stack from the pool: it keeps its guard page. */
		if (coro_guard_init() < 0 ||
		    coro_init(&c, &stacks, 0, fn, NULL, OVERFLOW_ID) < 0)
			_exit(3);
		coro_free(&c, &stacks);
		if (coro_init(&c, &stacks, 0, fn, NULL, OVERFLOW_ID) < 0)
			_exit(3);
		coro_resume(&c);
		_exit(4);	/* the overflow went unseen */
	}
	close(fds[1]);
	n = read(fds[0], report, sizeof report - 1);
	report[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	   "%s: ends in abort() (status %#x)", how, status);
	ok(strncmp(report, "muxd: coroutine stack overflow on fd 42\n", 40) == 0,
	   "%s: the report is one line naming the connection", how);
	if (strncmp(report, "muxd: coroutine stack overflow", 30) != 0)
		diag("the child said: %s", report);
}

int main(void)
{
	plan(14);
	test_switches();
	test_stack_size();
	test_pool();
	test_overflow(overflow, "an overflow, 512 bytes a frame");
	test_overflow(jump_guard, "one frame larger than the stack");
	return exit_status();
}
