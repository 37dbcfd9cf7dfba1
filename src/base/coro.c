/* coro.c -- the stacks and the context switch of the coroutine engine.
 *
 * The switch is a few lines of assembly that save the callee-saved
 * registers on the current stack, swap stack pointers and restore the
 * other side's: the C calling convention has saved everything else
 * already. glibc's swapcontext would do the same plus an rt_sigprocmask
 * system call per switch, which is a system call per message here.
 * Floating-point control state is not switched: nothing in muxd changes
 * it.
 */
#include "base/coro.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALT_STACK_SIZE (64 * 1024)	/* the SIGSEGV handler's own stack */

/* muxd_coro_switch(save_sp, to_sp): save this side's callee-saved
 * registers and stack pointer (*save_sp), then continue on to_sp, which a
 * previous switch saved or start_frame() made. muxd_coro_start is where a
 * new coroutine's first switch returns to: it calls coro_main(coroutine),
 * both taken from the registers start_frame() filled. */
void muxd_coro_switch(void **save_sp, void *to_sp);
void muxd_coro_start(void);

#if defined(__x86_64__)
__asm__(".text\n"
	".globl muxd_coro_switch\n"
	".hidden muxd_coro_switch\n"
	".type muxd_coro_switch, @function\n"
	"muxd_coro_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size muxd_coro_switch, .-muxd_coro_switch\n"
	".globl muxd_coro_start\n"
	".hidden muxd_coro_start\n"
	".type muxd_coro_start, @function\n"
	"muxd_coro_start:\n"
	"	movq %r12, %rdi\n"
	"	callq *%r13\n"
	"	ud2\n"
	".size muxd_coro_start, .-muxd_coro_start\n");

/* What muxd_coro_switch pops: r15 r14 r13 r12 rbx rbp, then the return
 * address. r12 = c, r13 = entry; the stack is 16-byte aligned once all
 * seven are popped, as the call in muxd_coro_start needs. */
static void *start_frame(unsigned char *top, struct coro *c,
			 void (*entry)(struct coro *))
{
	void **frame = (void **)(void *)(top - 16) - 7;

	memset(frame, 0, 7 * sizeof *frame);
	frame[2] = (void *)entry;
	frame[3] = c;
	frame[6] = (void *)muxd_coro_start;
	return frame;
}
#elif defined(__aarch64__)
__asm__(".text\n"
	".globl muxd_coro_switch\n"
	".hidden muxd_coro_switch\n"
	".type muxd_coro_switch, %function\n"
	"muxd_coro_switch:\n"
	"	sub sp, sp, #160\n"
	"	stp x19, x20, [sp, #0]\n"
	"	stp x21, x22, [sp, #16]\n"
	"	stp x23, x24, [sp, #32]\n"
	"	stp x25, x26, [sp, #48]\n"
	"	stp x27, x28, [sp, #64]\n"
	"	stp x29, x30, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mov x9, sp\n"
	"	str x9, [x0]\n"
	"	mov sp, x1\n"
	"	ldp x19, x20, [sp, #0]\n"
	"	ldp x21, x22, [sp, #16]\n"
	"	ldp x23, x24, [sp, #32]\n"
	"	ldp x25, x26, [sp, #48]\n"
	"	ldp x27, x28, [sp, #64]\n"
	"	ldp x29, x30, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	add sp, sp, #160\n"
	"	ret\n"
	".size muxd_coro_switch, .-muxd_coro_switch\n"
	".globl muxd_coro_start\n"
	".hidden muxd_coro_start\n"
	".type muxd_coro_start, %function\n"
	"muxd_coro_start:\n"
	"	mov x0, x19\n"
	"	blr x20\n"
	"	brk #0\n"
	".size muxd_coro_start, .-muxd_coro_start\n");

/* What muxd_coro_switch loads: x19..x28, x29 (frame), x30 (return
 * address), d8..d15. x19 = c, x20 = entry, x30 = muxd_coro_start. */
static void *start_frame(unsigned char *top, struct coro *c,
			 void (*entry)(struct coro *))
{
	void **frame = (void **)(void *)top - 20;

	memset(frame, 0, 20 * sizeof *frame);
	frame[0] = c;
	frame[1] = (void *)entry;
	frame[11] = (void *)muxd_coro_start;
	return frame;
}
#else
#error "coro.c: the context switch is written for x86-64 and aarch64 only"
#endif

/* The scheduler's side of the switch, and the coroutine running now:
 * per thread, and the SIGSEGV handler has no other way to find it. */
static _Thread_local void *scheduler_sp;
static _Thread_local struct coro *running;
static struct sigaction previous_segv;

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

/* Never returns: the last switch leaves this stack for good. */
static void coro_main(struct coro *c)
{
	c->fn(c->arg);
	c->finished = true;
	muxd_coro_switch(&c->sp, scheduler_sp);
}

/* A new mapping of `size` bytes whose first page is the guard; NULL with
 * errno when the system refuses. */
static unsigned char *map_stack(size_t size, size_t page)
{
	unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	if (map == MAP_FAILED)
		return NULL;
	if (mprotect(map, page, PROT_NONE) < 0) {
		int saved = errno;

		munmap(map, size);
		errno = saved;
		return NULL;
	}
	return map;
}

int coro_init(struct coro *c, struct coro_stacks *stacks, size_t extra,
	      void (*fn)(void *), void *arg, int id)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = page + CORO_STACK_SIZE + round_up(extra, page);
	unsigned char *map = stacks->count > 0 ? stacks->spare[--stacks->count]
					       : map_stack(size, page);

	if (!map)
		return -1;
	*c = (struct coro){ .map = map, .stack = map + page, .map_size = size,
			    .id = id, .fn = fn, .arg = arg };
	c->sp = start_frame(c->stack + CORO_STACK_SIZE, c, coro_main);
	return 0;
}

void *coro_extra(const struct coro *c)
{
	return c->stack + CORO_STACK_SIZE;
}

void coro_free(struct coro *c, struct coro_stacks *stacks)
{
	if (stacks->count < CORO_SPARE_STACKS) {
		stacks->spare[stacks->count++] = c->map;
		stacks->map_size = c->map_size;
	} else {
		munmap(c->map, c->map_size);
	}
	c->map = NULL;
}

void coro_stacks_free(struct coro_stacks *stacks)
{
	while (stacks->count > 0)
		munmap(stacks->spare[--stacks->count], stacks->map_size);
}

void coro_resume(struct coro *c)
{
	running = c;
	muxd_coro_switch(&scheduler_sp, c->sp);
	running = NULL;
}

void coro_yield(void)
{
	muxd_coro_switch(&running->sp, scheduler_sp);
}

/* "muxd: coroutine stack overflow on fd N" with write(2) alone: the
 * handler may call nothing that is not async-signal-safe. */
static void report_overflow(int id)
{
	static const char head[] = "muxd: coroutine stack overflow on fd ";
	char line[sizeof head + 16];
	char digits[12];
	size_t len = sizeof head - 1, n = 0;
	unsigned v = id < 0 ? 0u - (unsigned)id : (unsigned)id;

	memcpy(line, head, len);
	if (id < 0)
		line[len++] = '-';
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		line[len++] = digits[--n];
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

static void on_segv(int sig, siginfo_t *info, void *context)
{
	const struct coro *c = running;
	const unsigned char *addr = info->si_addr;

	(void)sig;
	(void)context;
	if (c && addr >= c->map && addr < c->stack) {
		report_overflow(c->id);
		abort();
	}
	/* Not a guard page: the fault repeats, for the handler that was
	 * there before (the default, or a sanitizer's). */
	sigaction(SIGSEGV, &previous_segv, NULL);
}

int coro_guard_init(void)
{
	stack_t alt = { .ss_size = ALT_STACK_SIZE };
	struct sigaction sa;

	alt.ss_sp = mmap(NULL, ALT_STACK_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (alt.ss_sp == MAP_FAILED)
		return -1;
	/* Kept for the life of the thread: a handler may run at any time. */
	if (sigaltstack(&alt, NULL) < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSEGV, &sa, &previous_segv);
}
