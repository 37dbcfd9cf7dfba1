/* trace_internal.h -- what trace.c (recording) and trace_write.c (the
 * JSON) share; nothing outside them needs it. */
#ifndef MUXD_TRACE_INTERNAL_H
#define MUXD_TRACE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/trace.h"

/* 32 bytes. */
struct trace_event {
	int64_t ts;		/* ns, CLOCK_MONOTONIC: one clock for all processes */
	uint64_t dur_kind;	/* a span's ns << 16 | kind */
	uint64_t value;
	int32_t fd;		/* -1: no connection */
	uint32_t aux;
};

#define TRACE_KIND(e) ((enum trace_kind)((e)->dur_kind & 0xffff))
#define TRACE_DUR(e) ((int64_t)((e)->dur_kind >> 16))

/* Appended to by its thread only; a reader takes n (acquire) events. */
struct trace_chunk {
	struct trace_chunk *_Atomic next;
	_Atomic size_t n;
	size_t cap;
	struct trace_event ev[];
};

/* One thread's track. */
struct trace_thread {
	struct trace_thread *next;	/* the process's tracks, newest first */
	int pid, tid;
	char name[48];
	bool counters;			/* the sampler's: no track of its own */
	struct trace_chunk *first, *last;
	uint64_t recorded;		/* its thread's alone */
	_Atomic uint64_t dropped;
	_Atomic int64_t first_drop;	/* ns; 0: none dropped */
};

/* Shared by every process: mapped before the first fork. */
struct trace_shared {
	_Atomic unsigned tracks;		/* threads and processes recording */
	_Atomic unsigned long long closed;	/* connections ended */
	_Atomic unsigned long long dropped;	/* by children, and past the tracks */
};

/* trace.c's state, read by the writer. */
extern struct trace_thread *_Atomic trace_threads;
extern struct trace_shared *trace_shared;
extern unsigned long trace_limit;

/* Write this process's tracks to fd as JSON lines, its name `process`.
 * With `engine` (the main process): the whole file, the children's parts
 * from parts_fd included. Without (a child): its part, each line ending
 * in ",". Returns 0, or -1 with errno. */
int trace_write_json(int fd, const char *process, int parts_fd,
		     const char *engine);

#endif
