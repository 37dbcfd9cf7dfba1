/* trace_write.c -- the trace as Chrome trace-event JSON.
 *
 * The JSON Object form: {"traceEvents":[...], "otherData":{...}}, one
 * event a line. Waits and hand-overs are complete events ("ph":"X", a
 * start and a duration), the rest instants ("i") or counters ("C"); the
 * names of processes and threads are metadata ("M"). Times are in
 * microseconds of CLOCK_MONOTONIC, with nanoseconds as decimals. A
 * child's part is the same lines, each ending in a comma, appended to
 * the parts file in writes of whole lines, so that parts written at once
 * by several children never cut into each other's lines; the main
 * process copies them between its head and its own lines.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/stats.h"
#include "base/trace_internal.h"

#define OUT_SIZE 65536
#define LINE_MAX_LEN 512	/* no line is longer */

/* An event kind is a span ("X", with a duration) or an instant ("i");
 * an aux that is an errno is written only when not 0. */
enum { SPAN = 1, AUX_IF_SET = 2 };

static const struct kind {
	const char *name, *cat;
	unsigned flags;		/* SPAN, AUX_IF_SET */
	const char *value;	/* the argument value is, or NULL */
	const char *aux;	/* the argument aux is, or NULL */
	const char *flow;	/* "flow_out", "flow_in": value is its id */
} kinds[TRACE_KINDS] = {
	[TRACE_EPOLL_WAIT] = { "epoll_wait", "wait", SPAN | AUX_IF_SET, "ready", "errno" },
	[TRACE_POLL] = { "poll", "wait", SPAN | AUX_IF_SET, "ready", "errno" },
	[TRACE_SELECT] = { "select", "wait", SPAN | AUX_IF_SET, "ready", "errno" },
	[TRACE_IO_GETEVENTS] = { "io_getevents", "wait", SPAN | AUX_IF_SET, "ready", "errno" },
	[TRACE_SIGTIMEDWAIT] = { "sigtimedwait", "wait", SPAN | AUX_IF_SET, "ready", "errno" },
	[TRACE_URING_ENTER] = { "io_uring_enter", "wait", SPAN, "submitted", "completions" },
	[TRACE_READ_WAIT] = { "read", "wait", SPAN | AUX_IF_SET, "bytes", "errno" },
	[TRACE_FLOCK] = { "flock", "wait", SPAN | AUX_IF_SET, NULL, "errno" },
	[TRACE_MUTEX] = { "mutex", "wait", SPAN | AUX_IF_SET, NULL, "errno" },
	[TRACE_WAIT_WORK] = { "wait for work", "wait", SPAN },
	[TRACE_WAIT_ROOM] = { "wait for room", "wait", SPAN },
	[TRACE_WAIT_LEAD] = { "wait to lead", "wait", SPAN },
	[TRACE_SLEEP] = { "sleep", "wait", SPAN },
	[TRACE_RUN] = { "coroutine", "run", SPAN },
	[TRACE_WORK] = { "work", "run", SPAN },
	[TRACE_HAND_OVER] = { "hand over", "conn", SPAN | AUX_IF_SET, NULL, "to", "flow_out" },
	[TRACE_TAKE] = { "take", "conn", SPAN, NULL, NULL, "flow_in" },
	[TRACE_ACCEPT] = { "accept", "conn", 0, NULL, "listener" },
	[TRACE_READ] = { "read", "io", AUX_IF_SET, "bytes", "errno" },
	[TRACE_WRITE] = { "write", "io", AUX_IF_SET, "bytes", "errno" },
	[TRACE_CLOSE] = { "close", "conn", 0 },
	[TRACE_FORK] = { "fork", "proc", SPAN, "pid" },
	[TRACE_THREAD] = { "thread start", "proc", SPAN },
	[TRACE_PROMOTE] = { "promote", "conn", 0 },
};

/* The counter tracks: a --stats counter by group, as Perfetto names them
 * ("bytes in", "connections open"). Index STAT_COUNT is the open ones. */
static const struct {
	const char *group, *name;
} counters[STAT_COUNT + 1] = {
	[STAT_ACCEPTED] = { "connections", "accepted" },
	[STAT_REFUSED] = { "connections", "refused" },
	[STAT_TIMED_OUT] = { "connections", "timed_out" },
	[STAT_COUNT] = { "connections", "open" },
	[STAT_BYTES_IN] = { "bytes", "in" },
	[STAT_BYTES_OUT] = { "bytes", "out" },
	[STAT_SYS_ACCEPT] = { "system calls", "accept" },
	[STAT_SYS_READ] = { "system calls", "read" },
	[STAT_SYS_WRITE] = { "system calls", "write" },
	[STAT_SYS_WAIT] = { "system calls", "wait" },
	[STAT_SYS_CTL] = { "system calls", "epoll_ctl" },
	[STAT_SYS_FORK] = { "system calls", "fork" },
	[STAT_SYS_THREAD] = { "system calls", "thread" },
	[STAT_SYS_LOCK] = { "system calls", "lock" },
	[STAT_SYS_URING_ENTER] = { "system calls", "io_uring_enter" },
	[STAT_URING_SQES] = { "io_uring", "submitted" },
	[STAT_URING_CQES] = { "io_uring", "completions" },
};

struct out {
	int fd;
	int err;		/* the first write's failure */
	size_t len;
	char buf[OUT_SIZE];
};

/* The buffer holds whole lines only, so each write(2) is whole lines. */
static void flush(struct out *o)
{
	size_t done = 0;

	while (done < o->len && !o->err) {
		ssize_t n = write(o->fd, o->buf + done, o->len - done);

		if (n > 0)
			done += (size_t)n;
		else if (n == 0 || errno != EINTR)
			o->err = n < 0 ? errno : EIO;
	}
	o->len = 0;
}

static void line(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void line(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len + LINE_MAX_LEN > sizeof o->buf)
		flush(o);
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, LINE_MAX_LEN, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n < LINE_MAX_LEN ? (size_t)n : LINE_MAX_LEN - 1;
}

/* ns as microseconds with three decimals. */
#define US(ns) (long long)((ns) / 1000), (long long)((ns) % 1000)

static void metadata(struct out *o, const char *what, int pid, int tid,
		     const char *name, const char *end)
{
	line(o, "{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
	     "\"args\":{\"name\":\"%s\"}}%s\n", what, pid, tid, name, end);
}

/* An event is put together piece by piece, without printf: a trace
 * holds millions of them, and this is what writing it costs. */
static char *put(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *put_uint(char *p, unsigned long long v, unsigned base)
{
	char digits[24];
	int n = 0;

	do
		digits[n++] = "0123456789abcdef"[v % base];
	while ((v /= base) > 0);
	while (n > 0)
		*p++ = digits[--n];
	return p;
}

/* "KEY":N, after a comma unless it is the first. */
static char *put_arg(char *p, bool first, const char *key,
		     unsigned long long v)
{
	p = put(p, first ? "\"" : ",\"");
	p = put(p, key);
	p = put(p, "\":");
	return put_uint(p, v, 10);
}

/* ns as microseconds with three decimals. */
static char *put_us(char *p, int64_t ns)
{
	p = put_uint(p, (unsigned long long)(ns / 1000), 10);
	*p++ = '.';
	*p++ = (char)('0' + ns % 1000 / 100);
	*p++ = (char)('0' + ns % 100 / 10);
	*p++ = (char)('0' + ns % 10);
	return p;
}

/* ,"args":{...}: fd, then the kind's arguments that apply; a flow's id
 * after them. */
static char *put_args(char *p, const struct kind *k,
		      const struct trace_event *e)
{
	bool first = true;

	p = put(p, ",\"args\":{");
	if (e->fd >= 0) {
		p = put_arg(p, first, "fd", (unsigned long long)e->fd);
		first = false;
	}
	if (k->value) {
		p = put_arg(p, first, k->value, (unsigned long long)e->value);
		first = false;
	}
	if (k->aux && (e->aux || !(k->flags & AUX_IF_SET)))
		p = put_arg(p, first, k->aux, e->aux);
	p = put(p, "}");
	if (k->flow) {
		p = put(p, ",\"bind_id\":\"0x");
		p = put_uint(p, (unsigned long long)e->value, 16);
		p = put(p, "\",\"");
		p = put(p, k->flow);
		p = put(p, "\":true");
	}
	return p;
}

static void counter(struct out *o, const struct trace_thread *t,
		    const struct trace_event *e)
{
	if (e->aux > STAT_COUNT || !counters[e->aux].group)
		return;
	line(o, "{\"name\":\"%s\",\"ph\":\"C\",\"ts\":%lld.%03lld,\"pid\":%d,"
	     "\"tid\":%d,\"args\":{\"%s\":%llu}},\n", counters[e->aux].group,
	     US(e->ts), t->pid, t->pid, counters[e->aux].name,
	     (unsigned long long)e->value);
}

/* {"name":..,"cat":..,"ph":"X","ts":..,"dur":..,"pid":..,"tid":..,
 * "args":{..}} for a span, "ph":"i","s":"t" and no dur for an instant. */
static void event(struct out *o, const struct trace_thread *t,
		  const struct trace_event *e)
{
	const struct kind *k = &kinds[TRACE_KIND(e)];
	char *p;

	if (TRACE_KIND(e) == TRACE_COUNTER) {
		counter(o, t, e);
		return;
	}
	if (o->len + LINE_MAX_LEN > sizeof o->buf)
		flush(o);
	p = put(o->buf + o->len, "{\"name\":\"");
	p = put(p, k->name);
	p = put(p, "\",\"cat\":\"");
	p = put(p, k->cat);
	p = put(p, (k->flags & SPAN) ? "\",\"ph\":\"X\",\"ts\":"
			   : "\",\"ph\":\"i\",\"s\":\"t\",\"ts\":");
	p = put_us(p, e->ts);
	if (k->flags & SPAN) {
		p = put(p, ",\"dur\":");
		p = put_us(p, TRACE_DUR(e));
	}
	p = put(p, ",\"pid\":");
	p = put_uint(p, (unsigned long long)t->pid, 10);
	p = put(p, ",\"tid\":");
	p = put_uint(p, (unsigned long long)t->tid, 10);
	p = put_args(p, k, e);
	p = put(p, "},\n");
	o->len = (size_t)(p - o->buf);
}

/* A track: its name, its events, and what it dropped. The sampler's
 * counters belong to the process, not to a thread track of their own. */
static unsigned long long thread(struct out *o, const struct trace_thread *t)
{
	unsigned long long dropped = atomic_load(&t->dropped);
	int tid = t->counters ? t->pid : t->tid;

	if (!t->counters)
		metadata(o, "thread_name", t->pid, t->tid, t->name, ",");
	for (struct trace_chunk *c = t->first; c;
	     c = atomic_load_explicit(&c->next, memory_order_acquire)) {
		size_t n = atomic_load_explicit(&c->n, memory_order_acquire);

		for (size_t i = 0; i < n; i++)
			event(o, t, &c->ev[i]);
	}
	if (dropped)
		line(o, "{\"name\":\"trace events dropped\",\"cat\":\"trace\","
		     "\"ph\":\"i\",\"s\":\"t\",\"ts\":%lld.%03lld,\"pid\":%d,"
		     "\"tid\":%d,\"args\":{\"dropped\":%llu}},\n",
		     US(atomic_load(&t->first_drop)), t->pid, tid, dropped);
	return dropped;
}

/* The process's tracks; returns the events they dropped. */
static unsigned long long tracks(struct out *o)
{
	unsigned long long dropped = 0;

	for (struct trace_thread *t = atomic_load(&trace_threads); t; t = t->next)
		dropped += thread(o, t);
	return dropped;
}

/* The children's parts written so far: up to the last whole line, as a
 * child may be appending this very moment. */
static void parts(struct out *o, int fd)
{
	struct stat st;
	off_t end, at = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	for (end = st.st_size; end > 0; end--) {
		char c;

		if (pread(fd, &c, 1, end - 1) != 1 || c == '\n')
			break;
	}
	flush(o);
	while (at < end && !o->err) {
		size_t want = (size_t)(end - at) < sizeof o->buf
			? (size_t)(end - at) : sizeof o->buf;
		ssize_t n = pread(fd, o->buf, want, at);

		if (n <= 0) {
			o->err = n < 0 ? errno : EIO;
			break;
		}
		o->len = (size_t)n;
		at += n;
		flush(o);
	}
}

int trace_write_json(int fd, const char *process, int parts_fd,
		     const char *engine)
{
	static struct out o;	/* 64 KiB: not on a thread's stack */
	unsigned long long dropped;
	int pid = (int)getpid();

	o.fd = fd;
	o.err = 0;
	o.len = 0;
	if (engine) {
		line(&o, "{\"traceEvents\":[\n");
		parts(&o, parts_fd);
	}
	dropped = tracks(&o);
	if (!engine) {
		metadata(&o, "process_name", pid, pid, process, ",");
		atomic_fetch_add(&trace_shared->dropped, dropped);
		flush(&o);
		return o.err ? (errno = o.err, -1) : 0;
	}
	dropped += atomic_load(&trace_shared->dropped);
	metadata(&o, "process_name", pid, pid, process, "");
	line(&o, "],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"version\":"
	     "\"muxd %s\",\"engine\":\"%s\",\"trace_limit\":%lu,"
	     "\"dropped_events\":%llu}}\n", PACKAGE_VERSION, engine,
	     trace_limit, dropped);
	flush(&o);
	return o.err ? (errno = o.err, -1) : 0;
}
