/* trace.c -- recording: each thread's memory, the tracks' names, the
 * child processes' parts and the counter sampler. The JSON is
 * trace_write.c's. */
#include "base/trace_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/stats.h"

/* A thread's first chunk is small (a thread per connection records a
 * few dozen events); each next one twice as large, up to this. */
#define CHUNK_FIRST 64
#define CHUNK_MAX 65536
/* Tracks (threads and child processes) that record, over the whole run:
 * a thread or a process per connection would otherwise make the file
 * grow with every connection. Later ones count their events as dropped. */
#define MAX_TRACKS 65536

bool trace_flag;
struct trace_thread *_Atomic trace_threads;
struct trace_shared *trace_shared;
unsigned long trace_limit;

static _Thread_local struct trace_thread *mine;
/* A thread past MAX_TRACKS, or out of memory: every event is dropped. */
static struct trace_thread untracked = { .recorded = UINT64_MAX };

static struct {
	const char *path;
	const char *engine;
	char process[64];	/* the process's track name */
	int fd;			/* FILE */
	bool created;		/* by trace_init: removed if muxd does not start */
	bool child;		/* a forked child: its part, not FILE */
	int parts_fd;		/* the children's parts, O_APPEND; -1: none */
	pthread_mutex_t writing;
	/* The parent's tracks, in a child: kept reachable, never written. */
	struct trace_thread *inherited;
	pthread_t sampler;
	bool sampling;
	_Atomic bool sampler_stop;
} tr = { .fd = -1, .parts_fd = -1, .writing = PTHREAD_MUTEX_INITIALIZER };

int64_t trace_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct trace_chunk *chunk_new(size_t cap)
{
	struct trace_chunk *c = malloc(sizeof *c + cap * sizeof c->ev[0]);

	if (c) {
		atomic_init(&c->next, NULL);
		atomic_init(&c->n, 0);
		c->cap = cap;
	}
	return c;
}

/* The calling thread's track, made and published (a lock-free push: the
 * writer may be walking the list). Past MAX_TRACKS or out of memory, the
 * untracked one. */
static struct trace_thread *thread_new(const char *name, bool counters)
{
	struct trace_thread *t;

	if (atomic_fetch_add(&trace_shared->tracks, 1) >= MAX_TRACKS)
		return mine = &untracked;
	t = calloc(1, sizeof *t);
	if (!t || !(t->first = t->last = chunk_new(CHUNK_FIRST))) {
		free(t);
		return mine = &untracked;
	}
	t->pid = (int)getpid();
	t->tid = (int)syscall(SYS_gettid);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->counters = counters;
	t->next = atomic_load(&trace_threads);
	while (!atomic_compare_exchange_weak(&trace_threads, &t->next, t))
		continue;
	return mine = t;
}

static void drop(struct trace_thread *t, int64_t now)
{
	if (t == &untracked) {
		atomic_fetch_add_explicit(&trace_shared->dropped, 1,
					  memory_order_relaxed);
		return;
	}
	if (!atomic_load_explicit(&t->first_drop, memory_order_relaxed))
		atomic_store_explicit(&t->first_drop, now, memory_order_relaxed);
	atomic_store_explicit(&t->dropped, atomic_load_explicit(
		&t->dropped, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* The next chunk, twice the last one's size; NULL when out of memory. */
static struct trace_chunk *grow(struct trace_thread *t)
{
	size_t cap = t->last->cap * 2;
	struct trace_chunk *c = chunk_new(cap < CHUNK_MAX ? cap : CHUNK_MAX);

	if (c) {
		atomic_store_explicit(&t->last->next, c, memory_order_release);
		t->last = c;
	}
	return c;
}

void trace_record(enum trace_kind kind, int64_t begin, int fd,
		  uint64_t value, uint32_t aux)
{
	int saved = errno;
	int64_t now = trace_clock();
	struct trace_thread *t = mine ? mine : thread_new("thread", false);
	struct trace_chunk *c = t->last;
	size_t n;

	if (t->recorded >= trace_limit ||
	    (atomic_load_explicit(&c->n, memory_order_relaxed) == c->cap &&
	     !(c = grow(t)))) {
		drop(t, now);
		errno = saved;
		return;
	}
	n = atomic_load_explicit(&c->n, memory_order_relaxed);
	c->ev[n] = (struct trace_event){
		.ts = begin < 0 ? now : begin,
		.dur_kind = (uint64_t)(begin < 0 ? 0 : now - begin) << 16 | kind,
		.value = value,
		.fd = fd,
		.aux = aux,
	};
	atomic_store_explicit(&c->n, n + 1, memory_order_release);
	t->recorded++;
	errno = saved;
}

/* The flow joining a hand-over to its take is the socket's inode, the
 * same in every process the descriptor is passed to. */
void trace_record_flow(enum trace_kind kind, int64_t begin, int fd,
		       uint32_t to)
{
	int saved = errno;
	struct stat st;

	if (fstat(fd, &st) < 0)
		st.st_ino = 0;
	trace_record(kind, begin, fd, (uint64_t)st.st_ino, to);
	errno = saved;
}

void trace_record_close(int fd)
{
	atomic_fetch_add_explicit(&trace_shared->closed, 1, memory_order_relaxed);
	trace_record(TRACE_CLOSE, -1, fd, 0, 0);
}

void trace_name_thread(const char *fmt, ...)
{
	char name[sizeof untracked.name];
	va_list ap;

	if (!trace_on || mine)
		return;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	thread_new(name, false);
}

void trace_forked(const char *fmt, ...)
{
	char name[sizeof untracked.name];
	va_list ap;

	if (!trace_on)
		return;
	tr.child = true;
	tr.sampling = false;	/* the sampler stayed in the parent */
	tr.inherited = atomic_exchange(&trace_threads, NULL);
	mine = NULL;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	snprintf(tr.process, sizeof tr.process, "muxd %s %s", tr.engine, name);
	thread_new(name, false);
}

void trace_child_exit(void)
{
	if (!trace_on || !tr.child || tr.parts_fd < 0)
		return;
	/* Nobody would see an error: the part is lost, the exit goes on. */
	trace_write_json(tr.parts_fd, tr.process, -1, NULL);
}

/* ---- the --stats counters, sampled ---- */

/* Each counter that changed since the last sample, and the connections
 * open (served and not yet ended), as TRACE_COUNTER events: aux is the
 * counter, STAT_COUNT for the open ones. */
static void sample(unsigned long long last[STAT_COUNT + 1])
{
	unsigned long long now[STAT_COUNT + 1];

	stats_read(now);
	now[STAT_COUNT] = now[STAT_ACCEPTED] -
		atomic_load_explicit(&trace_shared->closed, memory_order_relaxed);
	for (unsigned i = 0; i <= STAT_COUNT; i++)
		if (now[i] != last[i]) {
			trace_record(TRACE_COUNTER, -1, -1, now[i], i);
			last[i] = now[i];
		}
}

static void *sampler_loop(void *arg)
{
	unsigned long long last[STAT_COUNT + 1];
	struct timespec due;

	(void)arg;
	memset(last, 0xff, sizeof last);	/* the first sample has them all */
	thread_new("counters", true);
	clock_gettime(CLOCK_MONOTONIC, &due);
	while (!atomic_load(&tr.sampler_stop)) {
		sample(last);
		due.tv_nsec += TRACE_COUNTER_MS * 1000000L;
		if (due.tv_nsec >= 1000000000L) {
			due.tv_sec++;
			due.tv_nsec -= 1000000000L;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due,
				       NULL) == EINTR)
			continue;
	}
	sample(last);	/* the values at the end */
	return NULL;
}

int trace_counters_start(void)
{
	sigset_t all, saved;
	int rc;

	if (!trace_on || !stats_enabled())
		return 0;
	/* The signals are the main thread's: the sampler takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	rc = pthread_create(&tr.sampler, NULL, sampler_loop, NULL);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	tr.sampling = rc == 0;
	return rc;
}

static void sampler_stop(void)
{
	if (!tr.sampling)
		return;
	atomic_store(&tr.sampler_stop, true);
	pthread_join(tr.sampler, NULL);
	tr.sampling = false;
}

/* ---- the file ---- */

/* An unnamed file in $TMPDIR (or /tmp) for the children's parts: gone
 * with the last descriptor, whatever way muxd ends. */
static int open_parts(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd;
	/* A file system without O_TMPFILE: a named one, unlinked at once. */
	snprintf(path, sizeof path, "%s/muxd-trace-XXXXXX", dir);
	fd = mkostemp(path, O_APPEND | O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* FILE is created now, so that a path that cannot be written fails the
 * start; an existing one keeps its contents until the first write. */
static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	tr.created = fd >= 0;
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd;
}

int trace_init(const char *path, unsigned long limit, const char *engine,
	       bool processes, char *err)
{
	void *shared;

	tr.path = path;
	tr.engine = engine;
	snprintf(tr.process, sizeof tr.process, "muxd %s", engine);
	trace_limit = limit;
	tr.fd = open_file(path);
	if (tr.fd < 0) {
		snprintf(err, TRACE_ERR_LEN, "cannot write trace file %s: %s",
			 path, strerror(errno));
		return -1;
	}
	shared = mmap(NULL, sizeof *trace_shared, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED ||
	    (processes && (tr.parts_fd = open_parts()) < 0)) {
		snprintf(err, TRACE_ERR_LEN, "trace file %s: %s %s", path,
			 shared == MAP_FAILED ? "shared memory:"
			 : "a temporary file for the child processes:",
			 strerror(errno));
		trace_abandon();
		return -1;
	}
	trace_shared = shared;
	trace_flag = true;
	thread_new("main", false);
	return 0;
}

void trace_abandon(void)
{
	if (tr.fd < 0)
		return;
	if (tr.created)
		unlink(tr.path);
	close(tr.fd);
	tr.fd = -1;
	trace_flag = false;
}

/* Written from the start each time: a regular file is emptied first (a
 * device or a pipe cannot be, and takes each write after the last). */
static int write_file(char *err)
{
	struct stat st;
	int rc = 0;

	pthread_mutex_lock(&tr.writing);
	if (fstat(tr.fd, &st) < 0 ||
	    (S_ISREG(st.st_mode) && (ftruncate(tr.fd, 0) < 0 ||
				     lseek(tr.fd, 0, SEEK_SET) < 0)) ||
	    trace_write_json(tr.fd, tr.process, tr.parts_fd, tr.engine) < 0) {
		snprintf(err, TRACE_ERR_LEN, "cannot write trace file %s: %s",
			 tr.path, strerror(errno));
		rc = -1;
	}
	pthread_mutex_unlock(&tr.writing);
	return rc;
}

int trace_snapshot(char *err)
{
	if (!trace_on || tr.child || tr.fd < 0)
		return 0;
	return write_file(err);
}

int trace_finish(char *err)
{
	int rc;

	if (!trace_on || tr.child || tr.fd < 0)
		return 0;
	sampler_stop();
	rc = write_file(err);
	if (close(tr.fd) < 0 && rc == 0) {
		snprintf(err, TRACE_ERR_LEN, "cannot write trace file %s: %s",
			 tr.path, strerror(errno));
		rc = -1;
	}
	tr.fd = -1;
	if (tr.parts_fd >= 0)
		close(tr.parts_fd);
	tr.parts_fd = -1;
	return rc;
}
