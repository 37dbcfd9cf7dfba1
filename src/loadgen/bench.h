/* bench.h -- muxbench's parts: the settings of a run, what the load
 * threads count, and the calls between muxbench.c (options, phases),
 * bench_worker.c (the load threads), bench_request.c (the delay and work
 * lines), bench_proc.c (/proc and limits) and bench_report.c (the summary
 * and the JSON).
 */
#ifndef MUXBENCH_BENCH_H
#define MUXBENCH_BENCH_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "loadgen/hist.h"

enum bench_mode {
	MODE_PINGPONG, MODE_STREAM, MODE_CONNRATE, MODE_IDLE,
	MODE_DELAY, MODE_WORK,	/* the request services: a line, a reply */
};

/* The run goes through these in order; a phase may be skipped. */
enum bench_phase {
	PHASE_SETUP,	/* persistent connections are opened, nothing sent */
	PHASE_WARMUP,	/* load runs, nothing is counted but errors */
	PHASE_MEASURE,	/* load runs and is counted */
	PHASE_DONE,	/* threads close everything and end */
};

enum err_kind {
	ERR_CONNECT,	/* socket, bind or connect failed */
	ERR_RESET,	/* ECONNRESET, EPIPE, any other error once connected */
	ERR_EOF,	/* the server closed before it should have */
	ERR_WRONG,	/* a byte other than the one expected */
	ERR_TIMEOUT,	/* no progress for BENCH_STALL_S */
	ERR_KINDS,
};

/* A connect or a reply making no progress this long is an error (a
 * delay request is given its milliseconds on top). */
#define BENCH_STALL_S 5

/* --rate: a request sent more than this after it was due is late. */
#define LATE_NS 1000000

/* --work-mix: request sizes and how often each is drawn. */
#define MAX_CLASSES 8
struct work_class {
	uint64_t n;		/* splitmix64 rounds */
	unsigned weight;
};

struct bench_config {
	enum bench_mode mode;
	struct sockaddr_in server;
	unsigned connections;	/* or connrate's concurrent workers */
	size_t size;		/* pingpong and stream; 0 for the others */
	double duration, warmup;	/* seconds */
	unsigned threads;
	bool expect_upper;	/* else echo */
	uint64_t rate;		/* requests a second in all; 0: closed loops */
	unsigned delay_ms;	/* delay mode's request */
	struct work_class classes[MAX_CLASSES];	/* work mode's mix */
	unsigned n_classes, weight_total;
	unsigned sources;	/* 127.0.0.1 .. 127.0.0.sources; 1: no bind */
	pid_t server_pid;	/* 0: not measured */
	bool server_stats;	/* SIGUSR1 to it at each end of the measurement */
	bool json;
	bool progress;
	double progress_interval;	/* seconds between progress lines */
};

/* What one thread counted; merged into one at the end. Work is counted
 * in PHASE_MEASURE only, errors in every phase. */
struct bench_stats {
	uint64_t messages;	/* pingpong replies, stream chunks, verified */
	uint64_t bytes;		/* payload bytes received back and verified */
	uint64_t connects;	/* connrate connections completed and verified */
	uint64_t errors[ERR_KINDS];
	int first_errno[ERR_KINDS];	/* the first reason of each kind, or 0 */
	uint64_t late;		/* --rate: sent more than LATE_NS after due */
	uint64_t late_max_ns;	/* the latest send after its due time */
	uint64_t unanswered;	/* --rate: due, no reply when measuring ended */
	/* ns: message round trips (from when each was due, with --rate),
	 * connect to EOF; work mode also by class */
	struct hist latency;
	struct hist class_latency[MAX_CLASSES];
};

/* What main reads while the threads run, for progress lines and the
 * setup count; each thread stores its own, relaxed, once per wake-up. */
struct bench_progress {
	_Atomic uint64_t done;		/* messages or connects so far */
	_Atomic uint64_t bytes;
	_Atomic uint64_t errors;
	_Atomic unsigned open;		/* persistent connections open now */
	_Atomic unsigned open_at_setup;	/* set before `ready` counts it */
	_Atomic unsigned tried;		/* connections whose first connect is over */
	_Atomic bool reached;		/* a connect of this thread ever succeeded */
};

/* Shared by main and every thread. The patterns are read-only once the
 * threads run. */
struct bench_shared {
	const struct bench_config *cfg;
	_Atomic int phase;		/* enum bench_phase */
	atomic_uint ready;		/* threads whose setup is over */
	const unsigned char *pattern;	/* what is sent, see BENCH_PERIOD */
	const unsigned char *expect;	/* what must come back */
};

/* The payload repeats with this period, a prime, so that a chunk lost,
 * doubled or swapped shows as a wrong byte; the buffers hold two periods,
 * so any window of at most BENCH_PERIOD bytes is contiguous. */
#define BENCH_PERIOD 65521

static inline int64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- bench_worker.c: one load thread, its epoll loop and its share ---- */
struct worker;

/* A thread's state for n connections (or workers) starting at global
 * number first; NULL with a message in err. */
struct worker *worker_create(struct bench_shared *sh, unsigned first,
			     unsigned n, char *err, size_t err_len);
int worker_start(struct worker *w);	/* pthread_create's result */
/* Tell the thread that sh->phase changed. */
void worker_wake(struct worker *w);
void worker_join(struct worker *w);
const struct bench_stats *worker_stats(const struct worker *w);
const struct bench_progress *worker_progress(const struct worker *w);
/* True if the thread stopped on an error of its own (it said why). */
bool worker_broken(const struct worker *w);
void worker_destroy(struct worker *w);

/* ---- bench_request.c: the delay and work lines ---- */
#define REQUEST_MAX 40	/* longest request line, LF and NUL included */
#define REPLY_MAX 40	/* a reply line longer than this is wrong */

/* What a request line says, and so what its reply must be. */
struct request {
	unsigned conn;		/* delay: the connection's global number */
	uint64_t number;	/* delay: the request's number on it */
	unsigned cls;		/* work: its class in cfg->classes */
	uint64_t seed;		/* work */
};

/* The N-th output (n from 1) of splitmix64 seeded with seed. */
uint64_t splitmix64_nth(uint64_t seed, uint64_t n);
/* The line for req, LF-ended, in buf (REQUEST_MAX bytes); its length. */
size_t request_format(const struct bench_config *cfg,
		      const struct request *req, char *buf);
/* Is line (len bytes, the last one its LF) the reply req must get? */
bool reply_ok(const struct bench_config *cfg, const struct request *req,
	      const char *line, size_t len);

/* ---- bench_proc.c: the server seen from /proc, descriptor limits ---- */
/* CPU seconds of pid and its live descendants plus pid's reaped children;
 * *procs is how many processes were summed. -1 if pid is gone. */
int proc_tree_cpu(pid_t pid, double *cpu_s, unsigned *procs);
/* Rss, and Pss of anonymous and shared memory (smaps_rollup), summed
 * over pid and its descendants, KiB. */
int proc_tree_memory(pid_t pid, long *rss_kib, long *pss_kib);
/* Raise RLIMIT_NOFILE's soft limit to the hard one; -1 with a message if
 * fewer than need descriptors are allowed even then. */
int raise_fd_limit(unsigned long need, char *err, size_t err_len);

/* ---- bench_report.c: what is printed ---- */
struct bench_result {
	double measured_s;	/* wall time of PHASE_MEASURE */
	double warmup_s;
	unsigned open;		/* persistent connections open after setup */
	struct bench_stats total;
	double user_s, sys_s;	/* muxbench's own CPU while measuring */
	bool interrupted;
	bool server_measured;
	double server_cpu_s;
	unsigned server_procs;
	long rss_kib, pss_kib;		/* all connections open */
	long rss_before_kib, pss_before_kib;	/* before the first */
};

const char *mode_name(enum bench_mode mode);
/* The modes whose requests --rate may schedule. */
bool mode_has_requests(enum bench_mode mode);
/* The modes in which --server-pid also reads the server's memory. */
bool mode_reads_memory(enum bench_mode mode);
uint64_t errors_total(const struct bench_stats *s);
void report_text(const struct bench_config *cfg, const struct bench_result *r);
void report_json(const struct bench_config *cfg, const struct bench_result *r);
/* One line on standard error, "muxbench: " first, in one write. */
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
