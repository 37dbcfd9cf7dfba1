/* fault.c -- a preloaded library that makes the kernel look short of
 * memory, for the tests of what muxd does then.
 *
 * LD_PRELOAD=tests/libfault.so MUXD_FAULT_URING_ENTER=N muxd ...
 * makes every Nth io_uring_enter after the first 16 (a start-up probe's
 * among them) fail without entering the kernel, with EAGAIN and ENOMEM
 * in turn: what io_uring_enter(2) returns when the kernel cannot
 * allocate for the moment. muxd makes its io_uring system calls through
 * syscall(2), so that is what is wrapped; every other call goes through.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define SPARED 16	/* the first calls always pass */

long syscall(long number, ...);

static long (*real_syscall(void))(long, ...)
{
	static long (*real)(long, ...);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "syscall");
	return real;
}

/* Whether this io_uring_enter fails, and with which error. */
static int enter_fault(void)
{
	static unsigned long calls;
	const char *every = getenv("MUXD_FAULT_URING_ENTER");
	unsigned long n = every ? strtoul(every, NULL, 10) : 0;

	if (n == 0 || ++calls <= SPARED || calls % n != 0)
		return 0;
	return calls / n % 2 ? EAGAIN : ENOMEM;
}

long syscall(long number, ...)
{
	long a[6];
	va_list ap;
	int err;

	/* Six arguments, as the kernel takes: the callee reads only its own. */
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_io_uring_enter && (err = enter_fault()) != 0) {
		errno = err;
		return -1;
	}
	return real_syscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
