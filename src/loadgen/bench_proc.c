/* bench_proc.c -- the server under test as /proc shows it, and the
 * descriptor limit.
 *
 * A server is a tree of processes: one for the thread and readiness
 * engines, a pool of workers, or a child per connection for fork. Each
 * /proc/PID/stat counts the CPU time of all the process's threads, and
 * its cutime/cstime hold what its reaped children used. So the root's
 * cutime+cstime plus utime+stime of the root and of every live
 * descendant counts each CPU second once, a child first while it lives,
 * then, once reaped, in its parent's figures. (Time of grandchildren
 * reaped by a descendant is not seen; no muxd engine has grandchildren.)
 *
 * /proc/PID/stat counts in clock ticks (10 ms), truncated per process:
 * a thousand fork children that each ran 2 ms would sum to nothing. A
 * single-threaded descendant is therefore read from /proc/PID/schedstat,
 * its run time in nanoseconds; the root, whose figure must include its
 * ended threads and reaped children, is one number of ticks either way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loadgen/bench.h"

struct proc_entry {
	pid_t pid, ppid;
	unsigned long long ticks;	/* utime + stime */
	unsigned long long child_ticks;	/* cutime + cstime */
	long threads;
	bool in_tree;
};

struct proc_table {
	struct proc_entry *e;
	size_t n, cap;
};

/* A small /proc file into buf, NUL-terminated; -1 if it is gone. */
static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -1;
	while (got < size - 1) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return got ? 0 : -1;
}

/* The command name may hold spaces and parentheses: parse after the
 * last ')'. Fields 3 (the state letter) to 20, all numbers but the
 * first; the wanted ones are 4 (ppid), 14 to 17 (utime, stime, cutime,
 * cstime) and 20 (threads). */
static int read_stat(pid_t pid, struct proc_entry *e)
{
	char path[64], text[1024], *p, *end;
	long long field[21];

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_small(path, text, sizeof text) < 0 ||
	    !(p = strrchr(text, ')')) || p[1] != ' ' || !p[2])
		return -1;
	p += 3;		/* past ") " and the state letter */
	for (int k = 4; k <= 20; k++, p = end) {
		errno = 0;
		field[k] = strtoll(p, &end, 10);
		if (end == p || errno)
			return -1;
	}
	e->pid = pid;
	e->ppid = (pid_t)field[4];
	e->ticks = (unsigned long long)(field[14] + field[15]);
	e->child_ticks = (unsigned long long)(field[16] + field[17]);
	e->threads = (long)field[20];
	e->in_tree = false;
	return 0;
}

static int push(struct proc_table *t, const struct proc_entry *e)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 512;
		struct proc_entry *more = realloc(t->e, cap * sizeof *more);

		if (!more)
			return -1;
		t->e = more;
		t->cap = cap;
	}
	t->e[t->n++] = *e;
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	const struct proc_entry *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Every process, sorted by pid for find(); processes that end meanwhile
 * are skipped. */
static int read_table(struct proc_table *t)
{
	DIR *dir = opendir("/proc");
	struct dirent *d;
	int rc = 0;

	if (!dir)
		return -1;
	while (rc == 0 && (d = readdir(dir))) {
		struct proc_entry e;
		char *end;
		long pid = strtol(d->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		if (read_stat((pid_t)pid, &e) == 0)
			rc = push(t, &e);
	}
	closedir(dir);
	if (rc == 0 && t->n > 0)
		qsort(t->e, t->n, sizeof *t->e, by_pid);
	return rc;
}

static struct proc_entry *find(struct proc_table *t, pid_t pid)
{
	struct proc_entry key = { .pid = pid };

	if (t->n == 0)
		return NULL;
	return bsearch(&key, t->e, t->n, sizeof *t->e, by_pid);
}

/* Mark root and its descendants, a generation per pass; returns root, or
 * NULL (and frees the table) if it is gone. */
static struct proc_entry *read_tree(struct proc_table *t, pid_t root_pid)
{
	struct proc_entry *root;
	bool grew = true;

	*t = (struct proc_table){ 0 };
	if (read_table(t) < 0 || !(root = find(t, root_pid))) {
		free(t->e);
		return NULL;
	}
	root->in_tree = true;
	while (grew) {
		grew = false;
		for (size_t i = 0; i < t->n; i++) {
			struct proc_entry *parent;

			if (t->e[i].in_tree)
				continue;
			parent = find(t, t->e[i].ppid);
			if (parent && parent->in_tree)
				t->e[i].in_tree = grew = true;
		}
	}
	return root;
}

/* A descendant's CPU seconds: to the nanosecond from schedstat when it
 * has one thread, else (or if that cannot be read) from its ticks. */
static double descendant_cpu(const struct proc_entry *e, double tick_s)
{
	char path[64], text[128], *end;
	unsigned long long ns;

	snprintf(path, sizeof path, "/proc/%d/schedstat", (int)e->pid);
	if (e->threads != 1 || read_small(path, text, sizeof text) < 0)
		return (double)e->ticks * tick_s;
	errno = 0;
	ns = strtoull(text, &end, 10);
	if (end == text || errno)
		return (double)e->ticks * tick_s;
	return (double)ns / 1e9;
}

int proc_tree_cpu(pid_t pid, double *cpu_s, unsigned *procs)
{
	struct proc_table t;
	struct proc_entry *root = read_tree(&t, pid);
	long hz = sysconf(_SC_CLK_TCK);
	double tick_s = 1.0 / (double)(hz > 0 ? hz : 100);

	if (!root)
		return -1;
	*cpu_s = (double)(root->ticks + root->child_ticks) * tick_s;
	*procs = 1;
	for (size_t i = 0; i < t.n; i++)
		if (t.e[i].in_tree && &t.e[i] != root) {
			*cpu_s += descendant_cpu(&t.e[i], tick_s);
			(*procs)++;
		}
	free(t.e);
	return 0;
}

/* The number after "\nNAME:" in a smaps_rollup text, in KiB; -1 if none. */
static long rollup_kib(const char *text, const char *name)
{
	const char *p = strstr(text, name);
	char *end;
	long v;

	if (!p)
		return -1;
	errno = 0;
	v = strtol(p + strlen(name), &end, 10);
	return end == p + strlen(name) || errno || v < 0 ? -1 : v;
}

/* Rss and Pss of one process in KiB, from its smaps_rollup. Rss is all
 * of it, as ps shows it. Pss is the anonymous and shared-memory part
 * (Pss_Anon + Pss_Shmem): what heaps, stacks and copied-on-write pages
 * cost. File-backed Pss is left out because it moves whenever any other
 * process maps the same libc, which would be noise in a difference. */
static int read_memory(pid_t pid, long *rss, long *pss)
{
	char path[64], text[2048];
	long anon, shmem;

	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
	if (read_small(path, text, sizeof text) < 0)
		return -1;
	*rss = rollup_kib(text, "\nRss:");
	anon = rollup_kib(text, "\nPss_Anon:");
	shmem = rollup_kib(text, "\nPss_Shmem:");
	*pss = anon + shmem;
	return *rss < 0 || anon < 0 || shmem < 0 ? -1 : 0;
}

/* A descendant that ends meanwhile is left out; the root may not be. */
int proc_tree_memory(pid_t pid, long *rss_kib, long *pss_kib)
{
	struct proc_table t;
	int rc = 0;

	if (!read_tree(&t, pid))
		return -1;
	*rss_kib = *pss_kib = 0;
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		long rss, pss;

		if (!t.e[i].in_tree)
			continue;
		if (read_memory(t.e[i].pid, &rss, &pss) == 0) {
			*rss_kib += rss;
			*pss_kib += pss;
		} else if (t.e[i].pid == pid) {
			rc = -1;
		}
	}
	free(t.e);
	return rc;
}

/* An infinite hard limit cannot be the soft one (fs.nr_open caps it):
 * then ask for what is needed. */
int raise_fd_limit(unsigned long need, char *err, size_t err_len)
{
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(err, err_len, "getrlimit RLIMIT_NOFILE: %s", strerror(errno));
		return -1;
	}
	want = rl;
	want.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur < rl.rlim_max && setrlimit(RLIMIT_NOFILE, &want) == 0)
		rl.rlim_cur = rl.rlim_max;
	want.rlim_cur = need;
	if (rl.rlim_cur < need && need <= rl.rlim_max &&
	    setrlimit(RLIMIT_NOFILE, &want) == 0)
		rl.rlim_cur = need;
	if (rl.rlim_cur >= need)
		return 0;
	snprintf(err, err_len, "%lu descriptors needed, but RLIMIT_NOFILE "
		 "allows %llu even raised to its hard limit: raise the hard "
		 "limit (ulimit -Hn) or use fewer connections", need,
		 (unsigned long long)rl.rlim_cur);
	return -1;
}
