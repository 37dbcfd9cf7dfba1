/* thread.c -- see thread.h. */
#include "base/thread.h"

#include <errno.h>
#include <stdlib.h>

#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"

/* A serving thread needs its 64 KiB buffer and little else; 8 MiB of
 * address space each would make thousands of idle connections costly. */
#define THREAD_STACK_SIZE (256 * 1024)

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
	int64_t begin = trace_begin();
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
	trace_span(TRACE_THREAD, begin, -1, 0);
	sig_restore(&saved);
	pthread_attr_destroy(&attr);
	if (rc)
		free(e);
	return rc;
}
