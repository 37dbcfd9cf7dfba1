/* coro.h -- stackful coroutines: a stack each, and a switch between them.
 *
 * One thread runs a scheduler that resumes coroutines; a coroutine runs
 * until it yields back (or returns). Each stack is its own mapping, with a
 * PROT_NONE guard page below it: an overflow faults there, and the
 * handler coro_guard_init() installs reports it on one line and aborts
 * instead of letting the stack run into other memory. A finished
 * coroutine's mapping, guard page and all, waits in its scheduler's pool
 * for the next one: mapping, guarding and unmapping a stack, and faulting
 * its first pages in, cost a short connection more than all its I/O.
 */
#ifndef MUXD_CORO_H
#define MUXD_CORO_H

#include <stdbool.h>
#include <stddef.h>

/* Each coroutine's stack, guard page not counted: deep enough for the
 * serve loop, its 4 KiB sink and a log line (a few KiB), with room to
 * spare for a sanitizer's red zones; only the pages touched cost memory,
 * one for an idle connection. */
#define CORO_STACK_SIZE (64 * 1024)

/* Stacks a pool keeps for reuse: enough for a burst's turnover between
 * two turns of the scheduler; beyond it a stack is unmapped, so that the
 * memory a burst touched goes back (at most 64 stacks and their extra
 * bytes stay). */
#define CORO_SPARE_STACKS 64

/* Mappings of finished coroutines, kept for the next ones; all zero is an
 * empty pool. Every coroutine of one pool has the same `extra`. */
struct coro_stacks {
	unsigned count;
	size_t map_size;	/* of each one kept */
	unsigned char *spare[CORO_SPARE_STACKS];	/* the last one freed last */
};

struct coro {
	void *sp;		/* saved stack pointer while switched out */
	unsigned char *map;	/* guard page, stack, then the extra bytes */
	unsigned char *stack;	/* the stack's lowest byte; the guard is below */
	size_t map_size;
	int id;			/* named in the overflow report */
	bool finished;		/* fn has returned; only coro_free is left */
	void (*fn)(void *);
	void *arg;
};

/* A stack of CORO_STACK_SIZE and `extra` bytes for the caller (coro_extra)
 * above it, taken from `stacks` or newly mapped, and fn(arg) ready to run
 * on it at the first coro_resume. id names it in an overflow report. A
 * stack from the pool holds what its last coroutine left there. Returns
 * 0, or -1 with errno when the mapping fails. */
int coro_init(struct coro *c, struct coro_stacks *stacks, size_t extra,
	      void (*fn)(void *), void *arg, int id);
void *coro_extra(const struct coro *c);
/* A coroutine that is finished or was never resumed gives its stack back
 * to `stacks`, or unmaps it when the pool is full. */
void coro_free(struct coro *c, struct coro_stacks *stacks);
/* Unmap every stack the pool keeps. */
void coro_stacks_free(struct coro_stacks *stacks);

/* Run c until it yields or finishes (c->finished). From the scheduler. */
void coro_resume(struct coro *c);
/* Back to the scheduler; returns when the coroutine is resumed. */
void coro_yield(void);

/* In the thread that resumes coroutines, before the first: an alternate
 * signal stack and the SIGSEGV handler that turns a fault in a guard page
 * into "muxd: coroutine stack overflow on fd ID" and abort(). Returns 0,
 * or -1 with errno. */
int coro_guard_init(void);

#endif
