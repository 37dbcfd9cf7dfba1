/* abuse.c -- hostile clients against one engine: the "Limits muxd holds
 * under abuse" in muxd.1 (LIMITS), as README's Limits section gives them.
 *
 * usage: abuse ENGINE [extra muxd args...]
 *
 * What applies is read from the engine's --list-engines tags, never from
 * its name:
 *   [serial]      serves one client at a time by design (muxd.1: only
 *                 --idle-timeout bounds the wait), so no case asks it to
 *                 serve a client "during" an attack; it must still serve
 *                 everyone once the attackers are gone, and never die,
 *                 spin or leak;
 *   [pool]        serves at most --workers clients at once: cases that
 *                 need more pass their own --workers (each says so in a
 *                 diagnostic), the others keep POOL_TEST_WORKERS (harness.h);
 *   [processes]   serves in child processes: memory and CPU are summed
 *                 over muxd and its children, and a descriptor limit
 *                 applies to each process on its own;
 *   [threads]     serves in threads of one process;
 *   [fd-setsize]  must never FD_SET a descriptor >= FD_SETSIZE: only such
 *                 engines get the 1100-connection select case.
 *
 * Memory is the proportional set size of anonymous and shared memory
 * (Pss_Anon + Pss_Shmem, /proc/PID/smaps_rollup) summed over muxd and its
 * children. Rss would not do: a forked child's Rss counts every page it
 * shares with its parent (libc, the parent's heap) once more per child,
 * charging 500 children for 500 copies of pages that exist once; Pss
 * splits each shared page among its sharers, so the sum over the family is
 * what the family really uses. File-backed pages are left out because
 * their Pss also moves with every other process that maps libc (other
 * tests running beside this one), and buffering, stacks and heaps are all
 * anonymous. Rss is printed beside it. Descriptors come from /proc/PID/fd,
 * CPU time from /proc/PID/stat (utime + stime of the family).
 *
 * The cases, each followed by a check that muxd is back to its start-up
 * descriptors, threads and children (no leak):
 *   on one long-lived server (upper, echo, chargen):
 *     a client that sends 64 MiB and never reads (memory grows < 4 MiB);
 *     500 idle connections, 32 of them then stalled with full buffers
 *       (per connection: < 256 KiB with a process each, < 64 KiB else;
 *       measured on a 2-core machine: reactors 0.2 KiB idle and 16 KiB
 *       stalled, pthread 28, pthread-pool 18, fork 55-60, prefork 21,
 *       prefork-dynamic 62-71);
 *     slowloris, 2000 connect-and-reset, half-open connections, resets
 *       while chargen writes, 20000 1-byte writes: each with a normal
 *       client served promptly during (not [serial]) and after;
 *     a client flooding chargen with input for 3 s while another does
 *       echo round trips (not [serial]): they are never held up for long;
 *   on servers of their own: RLIMIT_NOFILE 64 and 100 clients (EMFILE),
 *     --max-conns 4, --idle-timeout 1, --backlog 4 and a 300-connect
 *     flood, select with 1100 connections, SIGTERM with 1000 connections
 *     (200 for [processes]) and --grace 2.
 *
 * Every wait is bounded and scaled by MUXD_TEST_TIMEOUT_MULT (harness.c);
 * a server that hangs fails a case instead of hanging the run. The whole
 * run for one engine is sized to stay well under 25 s on a 2-core machine.
 */
#include "harness.h"
#include "tap.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sockios.h>

#define KIB 1024
#define MIB (1024 * 1024)
#define MAX_CONNS 2048		/* client sockets one case holds */

/* The bounds, with what they are measured against. */
#define STALL_CAP (64 * MIB)		/* a never-reading sender stops here */
#define STALL_GROWTH_KIB (4 * 1024)	/* 64 KiB buffer + a process or thread */
#define SMALL_RCVBUF 4096		/* so that a server's buffer really fills */
#define IDLE_CONNS 500
#define STALLED 32			/* of them, made to fill their buffers */
#define IDLE_KIB_PROCESSES 256		/* per connection, all children summed */
#define IDLE_KIB_OTHERS 96		/* threads and reactors: a 64 KiB buffer */
#define BURST_CONNS 2000
#define BURST_HELD_KIB (BURST_CONNS * 32)	/* half a buffer each, at least */
/* What may stay once a burst is gone: per thread (two), 64 spare 64 KiB
 * buffers (or stacks), and 4 MiB of slack for the heap's own. */
#define BURST_KEPT_KIB (2 * 64 * 64 + 4 * 1024)
#define EMFILE_NOFILE 64
#define EMFILE_CONNS 100
#define EMFILE_CPU_PCT 30
#define SETSIZE_CONNS 1100
#define SETSIZE_NOFILE 4096
/* "Promptly": a round trip within, while a client misbehaves. What it
 * would be delayed by lasts at least as long, so any bound tells them
 * apart; this one leaves a loaded machine room. */
#define PROMPT_MS 3000
/* For what must happen at some point (served again, back to the baseline):
 * only a hung server takes this long, so it is never the bound asserted. */
#define SAFETY_MS 30000

static const char *engine;
static long long run_start;		/* for the timings in the log */
static const char *const *extra_args;	/* NULL-ended, from our argv */
static bool serial, pool, processes, threads, fd_setsize, readiness,
	    completion, takes_threads;

/* Each case starts with a line that says when, so a slow one shows. */
static void begin(const char *name)
{
	diag("---- %s (at %.1f s)", name, (double)(now_ms() - run_start) / 1000);
}

/* ---- starting servers ---- */

/* --engine ENGINE, the engine's test args, then the case's options (so
 * a case's --workers wins over the test's), then the listeners. */
static int start_server(struct muxd_server *srv, const char *const services[],
			const char *const options[])
{
	return muxd_start_engine(srv, engine, extra_args, options, services);
}

/* Start muxd with RLIMIT_NOFILE's soft limit at `nofile`: the limit is
 * set in this process around the fork in muxd_start and restored at once,
 * so muxd (and every child it makes) inherits it from birth. The test
 * holds only a few descriptors at that moment. */
static int start_server_nofile(struct muxd_server *srv,
			       const char *const services[],
			       const char *const options[], rlim_t nofile)
{
	struct rlimit saved, lim;
	int rc;

	if (getrlimit(RLIMIT_NOFILE, &saved) == -1)
		bail_out("getrlimit: %s", strerror(errno));
	lim = saved;
	lim.rlim_cur = nofile;
	if (setrlimit(RLIMIT_NOFILE, &lim) == -1) {
		diag("setrlimit(RLIMIT_NOFILE, %lu): %s", (unsigned long)nofile,
		     strerror(errno));
		return -1;
	}
	rc = start_server(srv, services, options);
	if (setrlimit(RLIMIT_NOFILE, &saved) == -1)
		bail_out("restoring RLIMIT_NOFILE: %s", strerror(errno));
	return rc;
}

/* The pool size muxd will use: the last --workers/-w among the test's
 * args and the case's options, else muxd's default of 8. */
static unsigned workers_of(const char *const options[])
{
	const char *const *lists[2] = { extra_args, options };
	unsigned workers = 8;

	for (int l = 0; l < 2; l++)
		for (size_t i = 0; lists[l][i]; i++) {
			const char *a = lists[l][i];

			if ((strcmp(a, "--workers") == 0 || strcmp(a, "-w") == 0) &&
			    lists[l][i + 1])
				workers = (unsigned)atoi(lists[l][++i]);
			else if (strncmp(a, "--workers=", 10) == 0)
				workers = (unsigned)atoi(a + 10);
		}
	return workers;
}

static rlim_t own_nofile(bool hard)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == -1)
		return 0;
	return hard ? lim.rlim_max : lim.rlim_cur;
}

/* ---- the family as /proc shows it ---- */

/* muxd itself, then its children (live ones and zombies alike). */
static int family_of(pid_t pid, pid_t *out, int max)
{
	out[0] = pid;
	return 1 + proc_children(pid, out + 1, max - 1);
}

struct memory {
	long pss_kib;		/* Pss_Anon + Pss_Shmem, summed */
	long rss_kib;		/* VmRSS, summed: for the log only */
	int procs;
};

/* A process's anonymous and shared-memory Pss from smaps_rollup (its
 * whole Pss on kernels without the split, its VmRSS without
 * smaps_rollup), in KiB; -1 if it is gone. */
static long proc_private_kib(pid_t pid)
{
	char path[64], line[256];
	long pss = -1, anon = -1, shmem = 0, value;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return proc_field(pid, "status", "VmRSS:");
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "Pss: %ld", &value) == 1)
			pss = value;
		else if (sscanf(line, "Pss_Anon: %ld", &value) == 1)
			anon = value;
		else if (sscanf(line, "Pss_Shmem: %ld", &value) == 1)
			shmem = value;
	}
	fclose(f);
	return anon >= 0 ? anon + shmem : pss;
}

/* muxd runs under valgrind or a sanitizer: its memory bounds are not
 * checked, only reported. */
static bool instrumented;

static void note_instrumented(pid_t pid)
{
	instrumented = muxd_instrumented(pid);
	if (instrumented)
		diag("muxd runs under valgrind or a sanitizer: memory is "
		     "reported, not checked");
}

static bool have_smaps_rollup(void)
{
	return proc_field(getpid(), "smaps_rollup", "Pss_Anon:") >= 0;
}

/* Memory summed over the family. */
static struct memory family_memory(pid_t pid)
{
	static pid_t fam[MAX_KIDS + 1];	/* muxd, then its children */
	struct memory m = { 0, 0, 0 };
	int n = family_of(pid, fam, MAX_KIDS + 1);

	for (int i = 0; i < n; i++) {
		long p = proc_private_kib(fam[i]);
		long r = proc_field(fam[i], "status", "VmRSS:");

		if (p < 0 || r < 0)
			continue;	/* a zombie or gone */
		m.pss_kib += p;
		m.rss_kib += r;
		m.procs++;
	}
	return m;
}

/* utime + stime of one process (all its threads), in clock ticks. */
static unsigned long long proc_cpu_ticks(pid_t pid)
{
	char path[64], text[1024], *close_paren;
	unsigned long long utime = 0, stime = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	close_paren = strrchr(text, ')');
	if (!close_paren ||
	    sscanf(close_paren + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &utime, &stime) != 2)
		return 0;
	return utime + stime;
}

static unsigned long long family_cpu_ticks(pid_t pid)
{
	static pid_t fam[MAX_KIDS + 1];	/* muxd, then its children */
	int n = family_of(pid, fam, MAX_KIDS + 1);
	unsigned long long ticks = 0;

	for (int i = 0; i < n; i++)
		ticks += proc_cpu_ticks(fam[i]);
	return ticks;
}

/* ---- clients ---- */

/* Milliseconds until deadline, never negative (poll's -1 is "for ever"). */
static int left_ms(long long deadline)
{
	long long left = deadline - now_ms();

	return left > 0 ? (int)left : 0;
}

/* A non-blocking connect to 127.0.0.1:port, under way or done; -1 when
 * it failed at once. A receive buffer of rcvbuf bytes (0: the kernel's
 * default) keeps what the server sends from piling up on our side. */
static int connect_nb_rcvbuf(unsigned short port, int rcvbuf)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -1;
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ||
	    errno == EINPROGRESS)
		return fd;
	close(fd);
	return -1;
}

static int connect_nb(unsigned short port)
{
	return connect_nb_rcvbuf(port, 0);
}

/* Wait until every connect under way in fds has finished (timeout_ms,
 * scaled); a failed one is closed and set to -1. Returns how many are
 * connected. */
static int wait_connected(int *fds, int n, long timeout_ms)
{
	static struct pollfd p[MAX_CONNS];
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	bool pending[MAX_CONNS] = { false };
	int left = 0, connected = 0;

	for (int i = 0; i < n; i++)
		if (fds[i] != -1) {
			pending[i] = true;
			left++;
		}
	while (left > 0 && now_ms() < deadline) {
		int k = 0, map[MAX_CONNS];

		for (int i = 0; i < n; i++)
			if (pending[i]) {
				p[k] = (struct pollfd){ fds[i], POLLOUT, 0 };
				map[k++] = i;
			}
		if (poll(p, (nfds_t)k, left_ms(deadline)) <= 0)
			continue;
		for (int j = 0; j < k; j++) {
			int i = map[j], err = 0;
			socklen_t len = sizeof err;

			if (!p[j].revents)
				continue;
			pending[i] = false;
			left--;
			getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
			if (err) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
	}
	for (int i = 0; i < n; i++)
		connected += fds[i] != -1 && !pending[i];
	return connected;
}

/* Open n connections to port, all at once, and wait for them (up to
 * timeout_ms). Returns how many are connected; fds[i] is -1 for a failure. */
static int open_many(int *fds, int n, unsigned short port, long timeout_ms)
{
	for (int i = 0; i < n; i++)
		fds[i] = connect_nb(port);
	return wait_connected(fds, n, timeout_ms);
}

/* A normal client on upper: connect, "abc" -> "ABC", close. */
static bool normal_client(unsigned short port, long timeout_ms, char *why,
			  size_t why_size)
{
	int fd = served_connection(port, timeout_ms, why, why_size);

	if (fd == -1)
		return false;
	close(fd);
	return true;
}

/* A normal client is served within ms (scaled): tried again and again,
 * since the server may need a moment (a paused accept, a worker freeing). */
static bool served_within(unsigned short port, long ms, long long *took)
{
	long long start = now_ms(), deadline = start + scaled_ms(ms);
	char why[256];

	do {
		long left = (long)(deadline - now_ms());

		if (normal_client(port, left < 300 ? 300 : left, why, sizeof why)) {
			if (took)
				*took = now_ms() - start;
			return true;
		}
		sleep_ms(20);
	} while (now_ms() < deadline);
	if (took)
		*took = now_ms() - start;
	diag("no normal client served within %ld ms: %s", scaled_ms(ms), why);
	return false;
}

/* "during": one normal client, timed; *worst keeps the slowest. */
static bool prompt_client(unsigned short port, long long *worst, char *why,
			  size_t why_size)
{
	long long start = now_ms();
	bool served = normal_client(port, PROMPT_MS, why, why_size);

	if (now_ms() - start > *worst)
		*worst = now_ms() - start;
	return served && now_ms() - start <= scaled_ms(PROMPT_MS);
}

/* Has the peer closed or reset (FIN or RST seen), without reading? */
static bool peer_closed(int fd, long wait_ms)
{
	struct pollfd p = { fd, POLLRDHUP, 0 };

	if (poll(&p, 1, (int)wait_ms) <= 0)
		return false;
	return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Wait up to timeout_ms (scaled) for each fd in fds to be closed by the
 * peer; returns how many were. */
static int wait_all_closed(const int *fds, int n, long timeout_ms)
{
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	int closed = 0;

	for (int i = 0; i < n; i++) {
		long left = (long)(deadline - now_ms());

		closed += fds[i] != -1 && peer_closed(fds[i], left > 0 ? left : 0);
	}
	return closed;
}

/* Read and throw away until EOF or a reset (true), or timeout_ms (scaled). */
static bool drained_to_end(int fd, long timeout_ms)
{
	enum read_end end = drain_until_end(fd, timeout_ms, NULL);

	return end == READ_EOF || (end == READ_ERROR && errno == ECONNRESET);
}

/* Send one byte on each connection, then collect the echoes: returns how
 * many came back right within timeout_ms (scaled). */
static int echo_each(const int *fds, int n, long timeout_ms)
{
	static struct pollfd p[MAX_CONNS];
	static bool answered[MAX_CONNS];
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	int got = 0;

	for (int i = 0; i < n; i++) {
		char c = (char)('a' + i % 26);

		answered[i] = fds[i] == -1;
		if (fds[i] != -1 && send(fds[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
			answered[i] = true;	/* counted as not served */
	}
	for (;;) {
		int k = 0, map[MAX_CONNS];

		for (int i = 0; i < n; i++)
			if (!answered[i]) {
				p[k] = (struct pollfd){ fds[i], POLLIN, 0 };
				map[k++] = i;
			}
		if (k == 0 || now_ms() >= deadline)
			break;
		if (poll(p, (nfds_t)k, left_ms(deadline)) <= 0)
			continue;
		for (int j = 0; j < k; j++) {
			int i = map[j];
			char c;

			if (!p[j].revents)
				continue;
			answered[i] = true;
			if (recv(fds[i], &c, 1, MSG_DONTWAIT) == 1 &&
			    c == (char)('a' + i % 26))
				got++;
		}
	}
	return got;
}

/* Send until the socket takes no more for quiet_ms, or cap bytes went:
 * the server has stopped reading. Returns the bytes sent. */
static size_t push_until_blocked(int fd, size_t cap, long quiet_ms)
{
	static unsigned char junk[64 * KIB];
	long long give_up = now_ms() + scaled_ms(20000);
	size_t sent = 0;

	memset(junk, 'q', sizeof junk);
	set_nonblocking(fd);
	while (sent < cap && now_ms() < give_up) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		size_t want = cap - sent < sizeof junk ? cap - sent : sizeof junk;
		ssize_t n = send(fd, junk, want, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			sent += (size_t)n;
		else if (errno != EAGAIN && errno != EINTR)
			break;
		else if (poll(&p, 1, (int)quiet_ms) == 0)
			break;
	}
	return sent;
}

/* ---- the baseline, and no leaks ---- */

struct baseline {
	struct proc_counts at;	/* muxd's own, after start-up */
	int worker_tcp;		/* most TCP sockets any worker held then */
};

static int max_worker_tcp(pid_t pid)
{
	static pid_t kids[MAX_KIDS];
	int n = proc_children(pid, kids, MAX_KIDS), most = 0;

	for (int i = 0; i < n; i++) {
		int t = proc_tcp_fd_count(kids[i]);

		if (t > most)
			most = t;
	}
	return most;
}

static void take_baseline(struct muxd_server *srv, struct baseline *b)
{
	proc_counts_settled(srv->pid, SAFETY_MS, &b->at);
	b->worker_tcp = max_worker_tcp(srv->pid);
	diag("after start-up: %d fds (%d TCP), %d threads, %d children "
	     "(at most %d TCP sockets each)", b->at.fds, b->at.tcp_fds, b->at.threads,
	     b->at.kids, b->worker_tcp);
}

/* Back to the baseline (within SAFETY_MS, scaled). muxd's own descriptors must
 * come back to their number; a [pool] may keep one more descriptor per
 * worker it grew (a pass socket) but no TCP socket beyond its listeners,
 * and no worker may keep a client's socket; a per-connection process
 * must be gone, a per-connection thread too. */
static void check_no_leak(struct muxd_server *srv, const struct baseline *b,
			  const char *label)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int fds, tcp, thr, kids, wtcp, zombies, allowance;
	bool fds_ok, kids_ok, thr_ok;

	for (;;) {
		fds = proc_fd_count(srv->pid);
		tcp = proc_tcp_fd_count(srv->pid);
		thr = proc_thread_count(srv->pid);
		kids = live_children(srv->pid);
		wtcp = max_worker_tcp(srv->pid);
		zombies = zombie_children(srv->pid);
		allowance = pool && kids > b->at.kids ? kids - b->at.kids : 0;
		fds_ok = fds >= 0 && fds <= b->at.fds + allowance && tcp <= b->at.tcp_fds;
		kids_ok = (pool || kids <= b->at.kids) && wtcp <= b->worker_tcp &&
			  zombies == 0;
		thr_ok = thr >= 0 && thr <= b->at.threads;
		if ((fds_ok && kids_ok && thr_ok) || now_ms() >= deadline)
			break;
		sleep_ms(50);
	}
	if (!ok(fds_ok && kids_ok && thr_ok,
		"%s: muxd's descriptors, threads and children back to the "
		"baseline", label)) {
		diag("%d fds (%d TCP; %d fds, %d TCP after start-up; %d more "
		     "allowed for %d grown worker(s))", fds, tcp, b->at.fds,
		     b->at.tcp_fds, allowance, allowance);
		diag_proc_fds(srv->pid);
		diag("%d threads (%d after start-up); %d live children (%d), "
		     "%d zombies; a worker holds %d TCP sockets (%d)", thr,
		     b->at.threads, kids, b->at.kids, zombies, wtcp, b->worker_tcp);
		if (!muxd_alive(srv)) {
			char why[64];

			diag("muxd is gone: %s",
			     describe_status(srv->wait_status, why, sizeof why));
		}
	}
}

static void check_alive(struct muxd_server *srv, const char *label)
{
	char why[64];

	if (!ok(muxd_alive(srv), "%s: muxd is still running", label))
		diag("muxd ended with %s",
		     describe_status(srv->wait_status, why, sizeof why));
}

/* ---- stopping: nothing left behind ---- */

/* End a case's own server: SIGTERM (nothing is open any more). */
static void stop_server(struct muxd_server *srv, const char *label)
{
	struct family fam;
	char why[64];

	note_family(srv, &fam);
	if (muxd_stop(srv, 5000) != 0 || exit_code_of(srv->wait_status) != 0) {
		ok(false, "%s: muxd stops with exit 0 after the case", label);
		diag("it ended with %s",
		     describe_status(srv->wait_status, why, sizeof why));
	}
	check_nothing_left(&fam, label);
}

/* ---- the long-lived server: memory and hostile clients ---- */

static const char *const main_services[] = { "upper", "echo", "chargen", NULL };
static const char *const no_options[] = { NULL };

/* One client sends to upper and never reads: the server stops reading
 * from it (the 16 KiB buffer is full and the output cannot go), so the
 * client is pushed back long before STALL_CAP, and muxd's memory does not
 * grow by what the client sent. */
static void case_stalled_writer(struct muxd_server *srv, const struct baseline *b,
				unsigned short upper)
{
	struct memory before = family_memory(srv->pid), after;
	int fd = tcp_connect(upper);
	size_t sent = fd == -1 ? 0 : push_until_blocked(fd, STALL_CAP, 1000);
	long long worst = 0;
	char why[256] = "";
	long growth;

	sleep_ms(100);
	after = family_memory(srv->pid);
	growth = after.pss_kib - before.pss_kib;
	if (!ok(fd != -1 && sent < STALL_CAP,
		"stalled writer: a client that sends to upper and never reads is "
		"pushed back before %d MiB", STALL_CAP / MIB))
		diag("it sent %zu bytes%s", sent, fd == -1 ? " (connect failed)" : "");
	diag("stalled writer: %zu bytes taken (kernel buffers on both sides) "
	     "before the client blocked for 1 s", sent);
	if (instrumented)
		skip(1, "muxd runs under valgrind or a sanitizer");
	else if (!ok(growth < STALL_GROWTH_KIB,
		     "stalled writer: muxd's memory grows by less than %d KiB",
		     STALL_GROWTH_KIB))
		diag("grew by %ld KiB", growth);
	diag("stalled writer: memory %ld -> %ld KiB Pss anon+shmem (Rss %ld -> "
	     "%ld KiB, %d processes): %+ld KiB", before.pss_kib, after.pss_kib,
	     before.rss_kib, after.rss_kib, after.procs, growth);
	if (serial) {
		skip(1, "[serial] engine serves one connection at a time by design");
	} else if (!ok(prompt_client(upper, &worst, why, sizeof why),
		       "stalled writer: another client is served within 3 s meanwhile")) {
		diag("%s after %lld ms", why, worst);
	}
	if (fd != -1)
		close(fd);
	check_no_leak(srv, b, "stalled writer");
}

/* Send on every connection until none of them takes a byte for quiet_ms
 * (or each sent cap): the server has stopped reading from all of them.
 * Returns the bytes sent in all. */
static size_t push_all_until_blocked(const int *fds, int n, size_t cap,
				     long quiet_ms)
{
	static struct pollfd p[MAX_CONNS];
	static size_t sent[MAX_CONNS];
	static unsigned char junk[16 * KIB];
	long long give_up = now_ms() + scaled_ms(10000);
	size_t total = 0;

	memset(junk, 'z', sizeof junk);
	for (int i = 0; i < n; i++)
		sent[i] = fds[i] == -1 ? cap : 0;
	while (now_ms() < give_up) {
		int k = 0, map[MAX_CONNS];

		for (int i = 0; i < n; i++)
			if (sent[i] < cap) {
				p[k] = (struct pollfd){ fds[i], POLLOUT, 0 };
				map[k++] = i;
			}
		if (k == 0 || poll(p, (nfds_t)k, (int)quiet_ms) <= 0)
			break;
		for (int j = 0; j < k; j++) {
			int i = map[j];
			size_t want = cap - sent[i] < sizeof junk ? cap - sent[i]
								   : sizeof junk;
			ssize_t got;

			if (!p[j].revents)
				continue;
			got = send(fds[i], junk, want, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (got > 0) {
				sent[i] += (size_t)got;
				total += (size_t)got;
			} else if (errno != EAGAIN && errno != EINTR) {
				sent[i] = cap;	/* reset or closed: done with it */
			}
		}
	}
	return total;
}

/* Growth per connection, in KiB; returns it. */
static double report_memory(const char *label, int n, const struct memory *before,
			    const struct memory *after, long ceiling)
{
	double per = (double)(after->pss_kib - before->pss_kib) / n;

	diag("%s: memory %ld -> %ld KiB (Pss anon+shmem) over %d -> %d "
	     "processes (Rss %ld -> %ld KiB): %.1f KiB per connection", label,
	     before->pss_kib, after->pss_kib, before->procs, after->procs,
	     before->rss_kib, after->rss_kib, per);
	if (instrumented)
		skip(1, "muxd runs under valgrind or a sanitizer");
	else if (!ok(per <= (double)ceiling,
		     "%s: memory per connection under %ld KiB (%s)", label, ceiling,
		     processes ? "a process each, all summed"
		     : threads ? "a thread each, its stack holding the 16 KiB buffer"
		     : "the 16 KiB buffer while it holds bytes, and bookkeeping"))
		diag("measured %.1f KiB per connection", per);
	return per;
}

/* Many connections, first idle (each served once: a byte echoed, then
 * silence), then stalled (each sends to upper without ever reading, so
 * that every one fills its 16 KiB buffer and stays stuck there): what
 * each costs muxd, all its processes summed. The client's receive buffer
 * is made small, so little of the echo fits there and the server's
 * buffer really fills. */
static void case_many_connections(struct muxd_server *srv,
				  const struct baseline *b, unsigned short upper)
{
	static int fds[IDLE_CONNS];
	unsigned workers = workers_of(no_options);
	int n = IDLE_CONNS, connected, served, small = SMALL_RCVBUF;
	long ceiling = processes ? IDLE_KIB_PROCESSES : IDLE_KIB_OTHERS;
	struct memory before, idle, stalled;
	double per_idle, per_stalled;
	int stalling;
	char label[64];
	size_t pushed;

	if (serial) {
		skip(3, "[serial] engine holds one connection; the others wait in "
		     "the kernel's backlog, not in muxd");
		return;
	}
	if (pool && workers < (unsigned)n) {
		n = (int)workers;
		diag("[pool]: %d connections, one per worker (--workers %u); more "
		     "would wait in the backlog, costing muxd nothing", n, workers);
	}
	before = family_memory(srv->pid);
	for (int i = 0; i < n; i++)
		fds[i] = connect_nb_rcvbuf(upper, small);
	connected = wait_connected(fds, n, 5000);
	served = 0;
	for (int i = 0; i < n; i++) {
		char c = 'i', back = 0;
		enum read_end end;

		if (fds[i] != -1 && send(fds[i], &c, 1, MSG_NOSIGNAL) == 1 &&
		    read_until_eof(fds[i], &back, 1, 5000, &end) == 1 && back == 'I')
			served++;
	}
	if (!ok(connected == n && served == n,
		"%d connections: each is served (a byte through upper)", n))
		diag("%d connected, %d served", connected, served);
	sleep_ms(200);
	idle = family_memory(srv->pid);
	snprintf(label, sizeof label, "%d idle connections", n);
	per_idle = report_memory(label, n, &before, &idle, ceiling);
	/* Loopback's socket buffers grow to megabytes each before a sender
	 * blocks, so only the first STALLED are made to stall. */
	stalling = n < STALLED ? n : STALLED;
	pushed = push_all_until_blocked(fds, stalling, 16 * MIB, 200);
	sleep_ms(100);
	stalled = family_memory(srv->pid);
	diag("%d of them stalled: %zu KiB sent in all, never read", stalling,
	     pushed / KIB);
	per_stalled = per_idle +
		      (double)(stalled.pss_kib - idle.pss_kib) / stalling;
	diag("a stalled connection: %.1f KiB (%.1f idle + %.1f for what it holds)",
	     per_stalled, per_idle, per_stalled - per_idle);
	if (instrumented)
		skip(1, "muxd runs under valgrind or a sanitizer");
	else if (!ok(per_stalled <= (double)ceiling,
		"%d stalled connections: memory per connection under %ld KiB",
		stalling, ceiling))
		diag("measured %.1f KiB per stalled connection", per_stalled);
	close_all(fds, n);
	check_no_leak(srv, b, "many connections");
}

/* Slowloris: 10 clients send one byte each every 200 ms to upper; another
 * client is not delayed, and each trickled byte comes back. */
static void case_slowloris(struct muxd_server *srv, const struct baseline *b,
			   unsigned short upper)
{
	enum { SLOW = 10, ROUNDS = 8 };
	int slow[SLOW], connected;
	bool during = true, echoed = true;
	long long worst = 0;
	char why[256] = "", want[ROUNDS + 1];

	connected = open_many(slow, SLOW, upper, 3000);
	for (int round = 0; round < ROUNDS; round++) {
		long long start = now_ms();
		char c = (char)('a' + round);

		want[round] = (char)toupper(c);
		for (int i = 0; i < SLOW; i++)
			if (slow[i] != -1)
				send(slow[i], &c, 1, MSG_NOSIGNAL);
		if (!serial && during && !prompt_client(upper, &worst, why, sizeof why))
			during = false;
		if (now_ms() - start < 200)
			sleep_ms(200 - (long)(now_ms() - start));
	}
	want[ROUNDS] = '\0';
	/* [serial]: only the first is served while they all hold on. */
	for (int i = 0; i < (serial ? 1 : SLOW); i++) {
		char back[ROUNDS];
		enum read_end end = READ_ERROR;
		size_t got = slow[i] == -1 ? 0
			: read_until_eof(slow[i], back, ROUNDS, 2000, &end);

		if (got != ROUNDS || memcmp(back, want, ROUNDS) != 0) {
			if (echoed)
				diag("slow client %d: %zu of %d bytes back (%s)", i,
				     got, ROUNDS, describe_read_end(end));
			echoed = false;
		}
	}
	ok(connected == SLOW && echoed,
	   "slowloris: %d clients trickling a byte per 200 ms are each served%s",
	   SLOW, serial ? " ([serial]: the first, while they hold on)" : "");
	if (serial)
		skip(1, "[serial] engine serves one connection at a time by design");
	else if (!ok(during, "slowloris: meanwhile another client is served within 3 s, "
		     "each time"))
		diag("%s; slowest %lld ms", why, worst);
	diag("slowloris: slowest normal client %lld ms", worst);
	close_all(slow, SLOW);
	ok(served_within(upper, SAFETY_MS, NULL),
	   "slowloris: once they are gone a new client is served");
	check_no_leak(srv, b, "slowloris");
}

/* Up to 2000 connect-and-reset (SO_LINGER 0), some after a few bytes, in
 * a loop bounded in time: 3 s, or longer until 200 have been made, since a
 * loaded machine may make fewer in that time. */
static void case_connect_reset(struct muxd_server *srv, const struct baseline *b,
			       unsigned short upper)
{
	long long start = now_ms(), deadline = start + scaled_ms(3000), worst = 0;
	long long give_up = start + scaled_ms(SAFETY_MS);
	int count = 0, failed = 0, served = 0;
	bool during = true;
	char why[256] = "";

	while (count < 2000 && (count < 200 || now_ms() < deadline) &&
	       now_ms() < give_up) {
		int fd = tcp_connect(upper);

		if (fd == -1) {
			if (failed++ == 0)
				diag("connect %d: %s", count, strerror(errno));
			count++;
			continue;
		}
		/* Most reset at once (often before muxd accepted them); some
		 * after a few bytes; every tenth once it is being served. */
		if (count % 10 == 5)
			served += round_trip(fd, "hello", "HELLO", SAFETY_MS, why, sizeof why);
		else if (count % 3 == 1)
			send(fd, "hello", 5, MSG_NOSIGNAL);
		close_with_reset(fd);
		count++;
		if (count % 400 == 0 && !serial && during &&
		    !prompt_client(upper, &worst, why, sizeof why))
			during = false;
	}
	diag("connect-and-reset: %d connections in %lld ms, %d failed to connect, "
	     "%d served before their reset", count, now_ms() - start, failed, served);
	if (!ok(count >= 200 && failed == 0 && served == (count + 4) / 10,
		"connect-and-reset: every connect succeeds, every tenth is served "
		"before its reset (at least 200)"))
		diag("%s", why);
	check_alive(srv, "connect-and-reset");
	if (serial)
		skip(1, "[serial] engine serves one connection at a time by design");
	else if (!ok(during, "connect-and-reset: meanwhile a normal client is "
		     "served within 3 s, each time"))
		diag("%s; slowest %lld ms", why, worst);
	ok(served_within(upper, SAFETY_MS, NULL),
	   "connect-and-reset: afterwards a new client is served");
	check_no_leak(srv, b, "connect-and-reset");
}

/* Half-open connections: clients that shut down their sending side and
 * never read (the server owes them a little, delivers it and closes), and
 * clients that vanish with a reset. */
static void case_half_open(struct muxd_server *srv, const struct baseline *b,
			   unsigned short upper)
{
	enum { HALF = 20 };
	int fds[HALF], connected, closed, intact = 0;
	long long worst = 0;
	char why[256] = "";

	connected = open_many(fds, HALF, upper, 3000);
	for (int i = 0; i < HALF; i++)
		if (fds[i] != -1) {
			send(fds[i], "hello", 5, MSG_NOSIGNAL);
			shutdown(fds[i], SHUT_WR);
		}
	if (serial)
		skip(1, "[serial] engine serves one connection at a time by design");
	else if (!ok(prompt_client(upper, &worst, why, sizeof why),
		     "half-closed clients that never read: meanwhile another client "
		     "is served within 3 s"))
		diag("%s after %lld ms", why, worst);
	closed = wait_all_closed(fds, HALF, SAFETY_MS);
	if (!ok(connected == HALF && closed == HALF,
		"half-closed clients that never read: the server closes all %d",
		HALF))
		diag("%d connected, %d closed by the server", connected, closed);
	for (int i = 0; i < HALF; i++) {
		char back[16];
		enum read_end end = READ_ERROR;
		size_t n = fds[i] == -1 ? 0
			: read_until_eof(fds[i], back, sizeof back, 1000, &end);

		intact += n == 5 && memcmp(back, "HELLO", 5) == 0 && end == READ_EOF;
	}
	if (!ok(intact == HALF, "half-closed clients: each gets exactly HELLO, "
		"then EOF, when it reads at last"))
		diag("%d of %d intact", intact, HALF);
	close_all(fds, HALF);

	connected = open_many(fds, HALF, upper, 3000);
	for (int i = 0; i < HALF; i++) {
		if (fds[i] == -1)
			continue;
		if (i % 2)
			send(fds[i], "gone", 4, MSG_NOSIGNAL);
		close_with_reset(fds[i]);
	}
	diag("%d clients connected and vanished with a reset", connected);
	ok(served_within(upper, SAFETY_MS, NULL),
	   "clients that vanish with a reset: a new client is served");
	check_no_leak(srv, b, "half-open");
}

/* Clients that reset while the server writes to them: chargen, read a
 * little (or nothing, so the server blocks writing), then RST. */
static void case_chargen_reset(struct muxd_server *srv, const struct baseline *b,
			       unsigned short chargen, unsigned short upper)
{
	enum { RESETTERS = 12 };
	int fds[RESETTERS], connected = 0, short_reads = 0;
	long long worst = 0;
	char why[256] = "";
	bool during = true;

	for (int i = 0; i < RESETTERS; i++)
		fds[i] = -1;
	/* [serial]: one after another, as it would serve them anyway. */
	for (int i = 0; i < RESETTERS; i++) {
		fds[i] = tcp_connect(chargen);
		connected += fds[i] != -1;
		if (fds[i] != -1 && i % 2 == 0) {
			char buf[8 * KIB];
			enum read_end end;

			short_reads += read_until_eof(fds[i], buf, sizeof buf, 2000,
						      &end) != sizeof buf;
		}
		if (serial) {
			sleep_ms(50);	/* the server is blocked writing */
			if (fds[i] != -1)
				close_with_reset(fds[i]);
			fds[i] = -1;
		}
	}
	if (!serial) {
		sleep_ms(100);
		during = prompt_client(upper, &worst, why, sizeof why);
		for (int i = 0; i < RESETTERS; i++)
			if (fds[i] != -1)
				close_with_reset(fds[i]);
	}
	ok(connected == RESETTERS && short_reads == 0,
	   "chargen: %d clients connect, half read 8 KiB", RESETTERS);
	if (serial)
		skip(1, "[serial] engine serves one connection at a time by design");
	else if (!ok(during, "chargen resetters: while they stream, another client "
		     "is served within 3 s"))
		diag("%s after %lld ms", why, worst);
	check_alive(srv, "resets while the server writes");
	ok(served_within(upper, SAFETY_MS, NULL),
	   "resets while the server writes: a new client is served");
	check_no_leak(srv, b, "resets while writing");
}

/* A child that sends to chargen without end and never reads, until it is
 * killed or muxd goes; its pid, or -1. It sends with sendfile(2) from a
 * memfd, which copies nothing on its side, so that it outpaces muxd's
 * reads: a server that reads such input until it runs dry is held for as
 * long as the flood goes on. */
static pid_t start_flooder(unsigned short chargen)
{
	size_t size = 4 * MIB;
	pid_t pid = fork();
	int fd, mem;

	if (pid != 0)
		return pid;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		_exit(1);
	mem = memfd_create("flood", MFD_CLOEXEC);
	if (mem < 0 || ftruncate(mem, (off_t)size) < 0 ||
	    (fd = tcp_connect(chargen)) == -1)
		_exit(1);
	for (;;) {
		off_t off = 0;

		if (sendfile(fd, mem, &off, size) < 0)
			_exit(0);
	}
}

/* A client floods chargen with input for FLOOD_MS while another does echo
 * round trips: chargen throws the input away a share at a time, so the
 * round trips go on promptly, not only when the flood happens to pause.
 * Measured on a 2-core machine: a server that read the flood until it ran
 * dry held them 0.9-2.7 s of the 3 s in round trips over 100 ms (the
 * slowest 0.3-3 s); bounded, none took over 30 ms. */
static void case_chargen_flood(struct muxd_server *srv, const struct baseline *b,
			       unsigned short chargen, unsigned short echo)
{
	enum { FLOOD_MS = 3000, SLOW_MS = 100, HELD_MS = 500 };
	long long start, worst = 0, held = 0;
	char why[256] = "";
	int fd, trips = 0;
	pid_t flooder;
	bool served;

	if (serial) {
		skip(1, "[serial] engine serves one connection at a time by design");
		return;
	}
	flooder = start_flooder(chargen);
	fd = tcp_connect(echo);
	served = fd != -1 && flooder > 0;
	sleep_ms(300);		/* for the flood to be under way */
	start = now_ms();
	while (served && now_ms() - start < FLOOD_MS) {
		long long t = now_ms(), took;

		served = round_trip(fd, "e", "e", PROMPT_MS, why, sizeof why);
		took = now_ms() - t;
		if (took > worst)
			worst = took;
		if (took > scaled_ms(SLOW_MS))
			held += took;
		trips += served;
	}
	if (flooder > 0) {
		kill(flooder, SIGKILL);
		waitpid(flooder, NULL, 0);
	}
	if (!ok(served && held <= scaled_ms(HELD_MS),
			   "chargen flooded with input: meanwhile echo round trips "
			   "are served, those over %ld ms adding up to less than "
			   "%ld ms in %d s", scaled_ms(SLOW_MS), scaled_ms(HELD_MS),
			   FLOOD_MS / 1000))
		diag("%s", served ? "held too long" : why);
	diag("chargen flood: %d round trips in %lld ms, the slowest %lld ms; "
	     "%lld ms in round trips over %ld ms", trips, now_ms() - start, worst,
	     held, scaled_ms(SLOW_MS));
	if (fd != -1)
		close(fd);
	check_no_leak(srv, b, "chargen flood");
}

/* 20000 single-byte writes to upper with TCP_NODELAY, read back one byte
 * at a time and each verified; a second client midway for "during". */
static void case_one_byte(struct muxd_server *srv, const struct baseline *b,
			  unsigned short upper)
{
	enum { BYTES = 20000 };
	long long start = now_ms(), deadline = start + scaled_ms(SAFETY_MS), worst = 0;
	int fd = tcp_connect(upper), one = 1;
	size_t sent = 0, got = 0, wrong_at = (size_t)-1;
	bool during = true, probed = false;
	char why[256] = "";

	if (fd != -1) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		set_nonblocking(fd);
	}
	while (fd != -1 && got < BYTES && wrong_at == (size_t)-1 &&
	       now_ms() < deadline) {
		struct pollfd p = { fd, POLLIN | (sent < BYTES ? POLLOUT : 0), 0 };
		unsigned char c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((p.revents & POLLOUT) && sent < BYTES) {
			c = (unsigned char)('a' + sent % 26);
			if (send(fd, &c, 1, MSG_NOSIGNAL) == 1)
				sent++;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(fd, &c, 1, 0);

			if (n == 1 && c == (unsigned char)('A' + got % 26))
				got++;
			else if (n == 1 || n == 0 || (errno != EAGAIN && errno != EINTR))
				wrong_at = got;
		}
		if (!serial && !probed && got >= BYTES / 2) {
			probed = true;
			during = prompt_client(upper, &worst, why, sizeof why);
		}
	}
	if (!ok(fd != -1 && got == BYTES,
		"1-byte writes: %d single bytes to upper, each read back alone and "
		"verified", BYTES))
		diag("sent %zu, got %zu right%s in %lld ms", sent, got,
		     wrong_at != (size_t)-1 ? ", then a wrong byte, EOF or error" : "",
		     now_ms() - start);
	diag("1-byte writes: %d bytes in %lld ms", BYTES, now_ms() - start);
	if (serial)
		skip(1, "[serial] engine serves one connection at a time by design");
	else if (!ok(during, "1-byte writes: midway another client is served within 3 s"))
		diag("%s after %lld ms", why, worst);
	if (fd != -1)
		close(fd);
	ok(served_within(upper, SAFETY_MS, NULL),
	   "1-byte writes: afterwards a new client is served");
	check_no_leak(srv, b, "1-byte writes");
}

static void cases_on_main_server(void)
{
	struct muxd_server srv;
	struct baseline b;
	unsigned short upper, echo, chargen;

	if (start_server(&srv, main_services, no_options) != 0)
		bail_out("muxd --engine %s did not start", engine);
	upper = muxd_port(&srv, "upper");
	echo = muxd_port(&srv, "echo");
	chargen = muxd_port(&srv, "chargen");
	if (!upper || !echo || !chargen)
		bail_out("no port for upper, echo or chargen");
	note_instrumented(srv.pid);
	/* Warm up: the first connections touch code and heap that every
	 * later one shares; that is not a per-connection cost. */
	for (int i = 0; i < 3; i++)
		served_within(upper, SAFETY_MS, NULL);
	take_baseline(&srv, &b);

	begin("a stalled writer");
	case_stalled_writer(&srv, &b, upper);
	begin("many connections: memory");
	case_many_connections(&srv, &b, upper);
	begin("slowloris");
	case_slowloris(&srv, &b, upper);
	begin("connect and reset");
	case_connect_reset(&srv, &b, upper);
	begin("half-open connections");
	case_half_open(&srv, &b, upper);
	begin("resets while the server writes");
	case_chargen_reset(&srv, &b, chargen, upper);
	begin("chargen flooded with input");
	case_chargen_flood(&srv, &b, chargen, echo);
	begin("1-byte writes and reads");
	case_one_byte(&srv, &b, upper);
	check_alive(&srv, "after every hostile client");
	stop_server(&srv, "long-lived server");
}

/* ---- servers of their own ---- */

static const char *const upper_only[] = { "upper", NULL };

/* Memory back after a burst: BURST_CONNS chargen clients that never
 * read, so that the server fills a buffer for each and holds it, then
 * all gone. A long-running server must come back to its idle footprint,
 * give or take the few buffers (or stacks) it keeps for reuse: the
 * engines that keep per-connection memory in one process, tagged
 * [readiness] or [completion]. Threaded ones run two threads, so that
 * what each thread keeps is bounded here. */
static void case_burst_memory(void)
{
	static int fds[BURST_CONNS];
	const char *const chargen_only[] = { "chargen", NULL };
	const char *const options[] = { "--max-conns", "4096", takes_threads ?
					"--threads=2" : NULL, NULL };
	struct muxd_server srv;
	struct baseline b;
	long idle, held = 0, after;
	long long deadline;
	int connected;

	if (!readiness && !completion) {
		skip(3, "not [readiness] or [completion]: no per-connection "
		     "memory kept in one process");
		return;
	}
	if (start_server(&srv, chargen_only, options) != 0) {
		ok(false, "burst: muxd starts");
		skip(2, "no server");
		return;
	}
	take_baseline(&srv, &b);
	idle = proc_private_kib(srv.pid);
	for (int i = 0; i < BURST_CONNS; i++)
		fds[i] = connect_nb_rcvbuf(muxd_port(&srv, "chargen"), SMALL_RCVBUF);
	connected = wait_connected(fds, BURST_CONNS, 10000);
	/* Each holds a full buffer once its socket is full: wait for most. */
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	while (now_ms() < deadline &&
	       (held = proc_private_kib(srv.pid) - idle) < BURST_HELD_KIB)
		sleep_ms(100);
	if (!ok(connected == BURST_CONNS && held >= BURST_HELD_KIB,
		"burst: %d chargen clients that never read: muxd holds their "
		"buffers", BURST_CONNS))
		diag("%d connected; %ld KiB more than idle (%ld KiB), %d KiB "
		     "expected", connected, held, idle, BURST_HELD_KIB);
	close_all(fds, BURST_CONNS);
	check_no_leak(&srv, &b, "burst");
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	while ((after = proc_private_kib(srv.pid)) > idle + BURST_KEPT_KIB &&
	       now_ms() < deadline)
		sleep_ms(100);
	diag("burst: %ld KiB idle, %ld KiB more while held, %ld KiB once gone",
	     idle, held, after);
	if (instrumented)
		skip(1, "muxd runs under valgrind or a sanitizer");
	else if (!ok(after <= idle + BURST_KEPT_KIB, "burst: once they are gone, "
		     "memory is back within %d KiB of idle", BURST_KEPT_KIB))
		diag("%ld KiB above idle", after - idle);
	stop_server(&srv, "burst");
}

/* Descriptor exhaustion: muxd under RLIMIT_NOFILE 64 and 100 clients.
 * The limit is per process: a reactor or a thread engine holds every
 * connection in one process and runs out; fork, prefork and iterative hold
 * one connection per process (or serve one at a time), so they never
 * reach it and the case checks that they keep going all the same. */
static void case_emfile(void)
{
	static int fds[EMFILE_CONNS];
	const char *const pool_processes[] = { "--workers", "16", NULL };
	const char *const pool_threads[] = { "--workers", "64", NULL };
	const char *const *options = !pool ? no_options
		: processes ? pool_processes : pool_threads;
	bool exhausts = !serial && !processes;
	struct muxd_server srv;
	struct baseline b;
	unsigned long long t0, t1;
	long long m0, m1, took = -1;
	long hz = sysconf(_SC_CLK_TCK), limit, pct;
	char why[256] = "";
	int early, fd_count, connected;
	unsigned short upper;

	if (pool)
		diag("EMFILE: --workers %s: %s", options[1], processes
		     ? "the parent keeps a socket per worker (--accept=handoff); "
		       "16 leave room under 64"
		     : "64 threads and a queue of 64 go past 64 descriptors");
	if (start_server_nofile(&srv, upper_only, options, EMFILE_NOFILE) != 0) {
		ok(false, "EMFILE: muxd starts under RLIMIT_NOFILE %d", EMFILE_NOFILE);
		skip(6, "no server");
		return;
	}
	upper = muxd_port(&srv, "upper");
	limit = proc_field(srv.pid, "limits", "Max open files");
	if (!ok(limit == EMFILE_NOFILE, "EMFILE: muxd starts under RLIMIT_NOFILE %d",
		EMFILE_NOFILE))
		diag("its soft limit is %ld", limit);
	take_baseline(&srv, &b);
	early = tcp_connect(upper);
	if (early == -1 || !round_trip(early, "early", "EARLY", 2000, why, sizeof why))
		diag("the early client was not served: %s",
		     early == -1 ? strerror(errno) : why);
	connected = open_many(fds, EMFILE_CONNS - 1, upper, 3000);
	sleep_ms(300);
	fd_count = proc_fd_count(srv.pid);
	diag("EMFILE: %d more clients connected; muxd holds %d descriptors of %ld%s",
	     connected, fd_count, limit,
	     exhausts ? "" : " (one connection per process, or one at a time: "
			     "the limit is never reached)");
	if (exhausts) {
		if (!ok(fd_count >= EMFILE_NOFILE - 4,
			"EMFILE: muxd ran out of descriptors (holds %d of %d)",
			fd_count, EMFILE_NOFILE))
			diag("the case did not exhaust muxd: %d connected", connected);
	} else {
		skip(1, "one connection per process or one at a time: %d descriptors "
		     "each are never reached", EMFILE_NOFILE);
	}
	t0 = family_cpu_ticks(srv.pid);
	m0 = now_ms();
	sleep_ms(1000);
	t1 = family_cpu_ticks(srv.pid);
	m1 = now_ms();
	pct = (long)((t1 - t0) * 1000 * 100 / (unsigned long long)hz /
		     (unsigned long long)(m1 - m0 > 0 ? m1 - m0 : 1));
	diag("EMFILE: muxd used %llu ticks (%ld%% of a core) in %lld ms",
	     t1 - t0, pct, m1 - m0);
	if (!ok(muxd_alive(&srv) && pct < EMFILE_CPU_PCT,
		"EMFILE: muxd does not die and does not spin (< %d%% CPU over 1 s)",
		EMFILE_CPU_PCT))
		diag("alive: %s, CPU %ld%%", muxd_alive(&srv) ? "yes" : "no", pct);
	if (!ok(early != -1 && round_trip(early, "still", "STILL", PROMPT_MS, why,
					  sizeof why),
		"EMFILE: an established connection is still served"))
		diag("%s", early == -1 ? "it never connected" : why);
	close_all(fds, EMFILE_CONNS - 1);
	if (serial && early != -1) {
		close(early);	/* it holds the one connection served */
		early = -1;
	}
	if (!ok(served_within(upper, SAFETY_MS, &took),
		"EMFILE: once the excess is closed, a new client is served"))
		diag("after %lld ms", took);
	diag("EMFILE: recovered in %lld ms", took);
	if (early != -1)
		close(early);
	check_no_leak(&srv, &b, "EMFILE");
	stop_server(&srv, "EMFILE");
}

/* A process pool's parent keeps descriptors of its own per worker (with
 * --accept=handoff a socket to each). Under RLIMIT_NOFILE 64 with --workers
 * 64 it runs out of them itself: it may refuse to start (exit 1, "a pool
 * that cannot be set up"), or run with what it could start, but it must
 * not spin and must serve. */
static void case_pool_emfile(void)
{
	const char *const options[] = { "--workers", "64", NULL };
	struct muxd_server srv;
	unsigned long long t0, t1;
	long long m0, m1, took = -1;
	long hz = sysconf(_SC_CLK_TCK), pct;
	char why[64];
	bool served;

	if (!pool || !processes) {
		skip(1, "not a process pool");
		return;
	}
	if (start_server_nofile(&srv, upper_only, options, EMFILE_NOFILE) != 0) {
		ok(exit_code_of(srv.wait_status) == 1,
		   "pool past RLIMIT_NOFILE: --workers 64 under a limit of %d "
		   "descriptors: refused at start-up (exit 1) or served",
		   EMFILE_NOFILE);
		return;
	}
	sleep_ms(500);
	if (!muxd_alive(&srv)) {
		if (!ok(exit_code_of(srv.wait_status) == 1,
			"pool past RLIMIT_NOFILE: --workers 64 under a limit of %d "
			"descriptors: refused at start-up (exit 1) or served",
			EMFILE_NOFILE))
			diag("muxd ended with %s",
			     describe_status(srv.wait_status, why, sizeof why));
		return;
	}
	t0 = family_cpu_ticks(srv.pid);
	m0 = now_ms();
	sleep_ms(1000);
	t1 = family_cpu_ticks(srv.pid);
	m1 = now_ms();
	pct = (long)((t1 - t0) * 1000 * 100 / (unsigned long long)hz /
		     (unsigned long long)(m1 - m0 > 0 ? m1 - m0 : 1));
	diag("pool past RLIMIT_NOFILE: %d workers started, the parent holds %d "
	     "descriptors and used %ld%% of a core over 1 s",
	     live_children(srv.pid), proc_fd_count(srv.pid), pct);
	served = served_within(muxd_port(&srv, "upper"), 2000, &took);
	if (!ok(pct < EMFILE_CPU_PCT && served,
		"pool past RLIMIT_NOFILE: --workers 64 under a limit of %d "
		"descriptors: refused at start-up (exit 1) or served, without "
		"spinning", EMFILE_NOFILE))
		diag("CPU %ld%% (< %d%% wanted); a client %s", pct, EMFILE_CPU_PCT,
		     served ? "was served" : "was not served");
	stop_server(&srv, "pool past RLIMIT_NOFILE");
}

/* --max-conns 4: connections beyond it are accepted and closed at once,
 * again and again, while the four are served. */
static void case_max_conns(void)
{
	enum { HOLD = 4, EXCESS = 20 };
	const char *const options[] = { "--max-conns", "4", NULL };
	struct muxd_server srv;
	struct baseline b;
	int hold[HOLD], refused = 0, served = 0;
	long long worst = 0;
	char why[256] = "";
	unsigned short upper;

	if (serial) {
		skip(4, "[serial] engine: --max-conns has no effect (the limit is "
		     "always one)");
		return;
	}
	if (start_server(&srv, upper_only, options) != 0) {
		ok(false, "--max-conns 4: muxd starts");
		skip(3, "no server");
		return;
	}
	upper = muxd_port(&srv, "upper");
	take_baseline(&srv, &b);
	for (int i = 0; i < HOLD; i++) {
		hold[i] = tcp_connect(upper);
		served += hold[i] != -1 &&
			  round_trip(hold[i], "hold", "HOLD", 2000, why, sizeof why);
	}
	if (!ok(served == HOLD, "--max-conns 4: four clients are served"))
		diag("%d served; %s", served, why);
	for (int i = 0; i < EXCESS; i++) {
		long long start = now_ms();

		refused += closed_at_once(upper, why, sizeof why);
		if (now_ms() - start > worst)
			worst = now_ms() - start;
	}
	if (!ok(refused == EXCESS, "--max-conns 4: %d more are each accepted and "
		"closed at once (EOF or reset within 3 s)", EXCESS))
		diag("%d of %d were; slowest %lld ms", refused, EXCESS, worst);
	served = 0;
	for (int i = 0; i < HOLD; i++)
		served += hold[i] != -1 &&
			  round_trip(hold[i], "on", "ON", PROMPT_MS, why, sizeof why);
	if (!ok(served == HOLD, "--max-conns 4: the four are still served"))
		diag("%d served; %s", served, why);
	close(hold[0]);
	ok(served_within(upper, SAFETY_MS, NULL),
	   "--max-conns 4: once one closes, a new client is served");
	for (int i = 1; i < HOLD; i++)
		if (hold[i] != -1)
			close(hold[i]);
	stop_server(&srv, "--max-conns 4");
}

/* Bytes queued on a client socket: unread input (SIOCINQ) and sent but
 * not yet acknowledged output (SIOCOUTQ). While either changes, bytes are
 * moving between the client and the server. */
static long long socket_queues(int fd)
{
	int in = 0, out = 0;

	ioctl(fd, SIOCINQ, &in);
	ioctl(fd, SIOCOUTQ, &out);
	return (long long)in << 32 | (unsigned)out;
}

/* --idle-timeout 1: a silent client and one that sent megabytes and never
 * reads cannot hold a worker (a fork child, a pool worker, the iterative
 * server) for ever; a third client waiting behind them is served. Pools
 * get --workers 2, so the two stalled clients hold every worker.
 *
 * The stalled client's queues are watched from its side: the server goes
 * on reading what the client sent for as long as it can write the echo,
 * so "idle" starts when those queues stop changing, not when the client
 * stopped sending; from then, --idle-timeout 1 must close it within 1 s
 * (+ 3 s for timers and a loaded machine's scheduling). */
static void case_idle_timeout(void)
{
	const char *const options[] = { "--idle-timeout", "1", NULL };
	const char *const pool_options[] = { "--idle-timeout", "1", "--workers", "2",
					     NULL };
	struct muxd_server srv;
	struct baseline b;
	long long t_silent, t_waiting, last_move, deadline, queues,
		  closed_silent = -1, closed_stalled = -1, served_waiting = -1;
	int silent, stalled, waiting;
	unsigned short upper;
	size_t pushed = 0, got = 0;
	char back[8];

	if (pool)
		diag("--idle-timeout: --workers 2, so that the two stalled clients "
		     "hold every worker");
	if (start_server(&srv, upper_only, pool ? pool_options : options) != 0) {
		ok(false, "--idle-timeout 1: muxd starts");
		skip(3, "no server");
		return;
	}
	upper = muxd_port(&srv, "upper");
	take_baseline(&srv, &b);
	silent = tcp_connect(upper);
	t_silent = now_ms();
	stalled = tcp_connect(upper);
	if (stalled != -1)
		pushed = push_until_blocked(stalled, STALL_CAP, 300);
	waiting = tcp_connect(upper);
	t_waiting = now_ms();
	if (waiting != -1) {
		write_all(waiting, "next", 4, 1000);
		set_nonblocking(waiting);
	}
	diag("--idle-timeout: the stalled client sent %zu bytes, then never read",
	     pushed);
	last_move = now_ms();
	queues = stalled == -1 ? 0 : socket_queues(stalled);
	deadline = now_ms() + scaled_ms(12000);
	while (now_ms() < deadline &&
	       ((silent != -1 && closed_silent < 0) ||
		(stalled != -1 && closed_stalled < 0) ||
		(waiting != -1 && served_waiting < 0))) {
		long long now = now_ms();

		if (silent != -1 && closed_silent < 0 && peer_closed(silent, 0))
			closed_silent = now - t_silent;
		if (stalled != -1 && closed_stalled < 0) {
			long long q = socket_queues(stalled);

			if (peer_closed(stalled, 0)) {
				closed_stalled = now - last_move;
			} else if (q != queues) {
				queues = q;
				last_move = now;
			}
		}
		if (waiting != -1 && served_waiting < 0) {
			ssize_t n = recv(waiting, back + got, 4 - got, MSG_DONTWAIT);

			if (n > 0)
				got += (size_t)n;
			if (got == 4)
				served_waiting = now - t_waiting;
		}
		sleep_ms(10);
	}
	if (!ok(closed_silent >= 900 && closed_silent <= scaled_ms(5000),
		"--idle-timeout 1: a silent client is closed within 1-5 s"))
		diag("closed after %lld ms (-1: not within 12 s)", closed_silent);
	if (!ok(closed_stalled >= 0 && closed_stalled <= 1000 + scaled_ms(3000),
		"--idle-timeout 1: a client that sent %zu bytes and never reads is "
		"closed within 4 s of its last byte moving", pushed))
		diag("closed %lld ms after the last byte moved (-1: not within 12 s)",
		     closed_stalled);
	if (!ok(served_waiting >= 0 && served_waiting <= scaled_ms(8000) &&
		memcmp(back, "NEXT", 4) == 0,
		"--idle-timeout 1: the client waiting behind them is served within 8 s"))
		diag("%zu bytes of NEXT after %lld ms", got, now_ms() - t_waiting);
	diag("--idle-timeout: silent closed after %lld ms, stalled %lld ms after its "
	     "last byte moved, the waiting client served after %lld ms",
	     closed_silent, closed_stalled, served_waiting);
	if (silent != -1)
		close(silent);
	if (stalled != -1)
		close(stalled);
	if (waiting != -1)
		close(waiting);
	stop_server(&srv, "--idle-timeout 1");
}

/* --backlog 4 and 300 non-blocking connects at once: the kernel drops
 * SYNs beyond the queue and the clients retry; muxd must stay up and
 * serve new clients (during the flood where the engine can hold them all,
 * after it everywhere). */
static void case_backlog_flood(void)
{
	enum { FLOOD = 300 };
	static int fds[FLOOD];
	const char *const options[] = { "--backlog", "4", NULL };
	bool holds_all = !serial && !pool;
	struct muxd_server srv;
	struct baseline b;
	long long took = -1, start;
	unsigned short upper;
	int opened = 0;
	char why[256] = "";

	if (start_server(&srv, upper_only, options) != 0) {
		ok(false, "--backlog 4: muxd starts");
		skip(3, "no server");
		return;
	}
	upper = muxd_port(&srv, "upper");
	take_baseline(&srv, &b);
	start = now_ms();
	for (int i = 0; i < FLOOD; i++) {
		fds[i] = connect_nb(upper);
		opened += fds[i] != -1;
	}
	diag("--backlog 4: %d connects started in %lld ms", opened, now_ms() - start);
	sleep_ms(200);
	check_alive(&srv, "--backlog 4 flood");
	if (!holds_all) {
		skip(1, "%s: the flood holds what it can serve at once; new clients "
		     "are checked once it is gone",
		     serial ? "[serial]" : "[pool]");
	} else {
		/* A SYN dropped by the full queue is retried after 1, 3 and
		 * 7 s: 10 s leaves room for three drops. */
		start = now_ms();
		if (!ok(normal_client(upper, 10000, why, sizeof why) &&
			now_ms() - start <= scaled_ms(10000),
			"--backlog 4: during the flood a new client is served within 10 s"))
			diag("%s", why);
		diag("--backlog 4: served during the flood after %lld ms",
		     now_ms() - start);
	}
	close_all(fds, FLOOD);
	if (!ok(served_within(upper, SAFETY_MS, &took),
		"--backlog 4: after the flood a new client is served"))
		diag("after %lld ms", took);
	check_no_leak(&srv, &b, "--backlog 4 flood");
	stop_server(&srv, "--backlog 4");
}

/* select: RLIMIT_NOFILE 4096 and 1100 connections. Those that land on a
 * descriptor >= FD_SETSIZE are closed by muxd, the others are served, new
 * clients beyond it are closed, and it serves again once low descriptors
 * free up. */
static void case_fd_setsize(void)
{
	static int fds[SETSIZE_CONNS];
	const char *const options[] = { "--max-conns", "2000", NULL };
	struct muxd_server srv;
	struct baseline b;
	int connected, closed = 0, expect_kept, expect_closed, checked = 0,
	    served = 0, fd, freed = 0;
	long long deadline;
	char why[256] = "", buf[8];
	enum read_end end = READ_ERROR;
	unsigned short port;
	size_t n = 1;

	if (!fd_setsize) {
		skip(6, "not an [fd-setsize] engine");
		return;
	}
	if (own_nofile(true) < SETSIZE_NOFILE || own_nofile(false) < SETSIZE_CONNS + 64) {
		skip(6, "the hard RLIMIT_NOFILE (%lu) is below %d",
		     (unsigned long)own_nofile(true), SETSIZE_NOFILE);
		return;
	}
	if (start_server_nofile(&srv, upper_only, options, SETSIZE_NOFILE) != 0) {
		ok(false, "FD_SETSIZE: muxd starts under RLIMIT_NOFILE %d", SETSIZE_NOFILE);
		skip(5, "no server");
		return;
	}
	port = muxd_port(&srv, "upper");
	take_baseline(&srv, &b);
	/* Descriptors are handed out lowest first: b.at.fds are taken. */
	expect_kept = 1024 - b.at.fds;
	expect_closed = SETSIZE_CONNS - expect_kept;
	connected = open_many(fds, SETSIZE_CONNS, port, 5000);
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	do {
		sleep_ms(100);
		closed = 0;
		for (int i = 0; i < SETSIZE_CONNS; i++)
			closed += fds[i] != -1 && peer_closed(fds[i], 0);
	} while (closed < expect_closed && now_ms() < deadline);
	diag("FD_SETSIZE: %d connected, %d closed by muxd (%d expected: it had %d "
	     "descriptors open)", connected, closed, expect_closed, b.at.fds);
	check_alive(&srv, "FD_SETSIZE");
	if (!ok(connected == SETSIZE_CONNS && closed >= expect_closed - 2 &&
		closed <= expect_closed + 2,
		"FD_SETSIZE: of %d connections, those past descriptor 1023 are "
		"closed by muxd", SETSIZE_CONNS))
		diag("connected %d, closed %d, expected about %d", connected, closed,
		     expect_closed);
	/* The first five (the lowest descriptors) and five more kept ones. */
	for (int i = 0; i < SETSIZE_CONNS && checked < 10; i++) {
		if (fds[i] == -1 || peer_closed(fds[i], 0) ||
		    (checked >= 5 && i % 97 != 0))
			continue;
		checked++;
		served += round_trip(fds[i], "low", "LOW", PROMPT_MS, why, sizeof why);
	}
	if (!ok(checked == 10 && served == 10,
		"FD_SETSIZE: the connections below it are still served"))
		diag("%d of %d served; %s", served, checked, why);
	fd = tcp_connect(port);
	if (fd != -1) {
		write_all(fd, "x", 1, 1000);
		n = read_until_eof(fd, buf, sizeof buf, 2000, &end);
		close(fd);
	}
	if (!ok(fd != -1 && n == 0 &&
		(end == READ_EOF || (end == READ_ERROR && errno == ECONNRESET)),
		"FD_SETSIZE: a new client past it is closed unserved"))
		diag("%zu bytes, then %s", n, describe_read_end(end));
	for (int i = 0; i < SETSIZE_CONNS && freed < 10; i++)
		if (fds[i] != -1 && !peer_closed(fds[i], 0)) {
			close(fds[i]);
			fds[i] = -1;
			freed++;
		}
	if (!ok(served_within(port, SAFETY_MS, NULL),
		"FD_SETSIZE: once 10 low descriptors free up, a new client is "
		"served"))
		diag("closed %d low connections first", freed);
	close_all(fds, SETSIZE_CONNS);
	check_no_leak(&srv, &b, "FD_SETSIZE");
	stop_server(&srv, "FD_SETSIZE");
}

/* SIGTERM with many connections open and served (1000 in one process;
 * 200 for process engines, a process each; [serial]: one served and ten
 * in the backlog), two of them chargen streams the server is blocked
 * writing to: exit 0 within the grace period (2 s) + 3 s, no child left
 * behind, every client's connection closed. */
static void case_shutdown(void)
{
	static int fds[1000];
	int count = serial ? 11 : processes ? 200 : 1000;
	int streams[2] = { -1, -1 }, connected, served, expect_served, closed,
	    streaming = 0;
	const char *options[12] = { "--grace", "2", "--backlog", "2048", NULL };
	const char *const services[] = { "echo", "chargen", NULL };
	struct muxd_server srv;
	struct family fam;
	char workers[16], why[64];
	long long start, took;
	bool exited;

	if (own_nofile(false) < (rlim_t)count + 100) {
		count = (int)own_nofile(false) - 100;
		diag("shutdown: RLIMIT_NOFILE %lu: only %d connections",
		     (unsigned long)own_nofile(false), count);
	}
	snprintf(workers, sizeof workers, "%d", count + 2);	/* and 2 streams */
	if (pool) {
		options[4] = "--workers";
		options[5] = workers;
		options[6] = NULL;
	}
	diag("shutdown: %d connections%s", count,
	     serial ? " ([serial]: one served, the rest in the backlog)"
	     : processes ? " (a process each: 200, not 1000)" : "");
	if (pool)
		diag("shutdown: [pool] with --workers %d, one worker per connection",
		     count + 2);
	if (start_server(&srv, services, options) != 0) {
		ok(false, "shutdown: muxd starts");
		skip(3, "no server");
		return;
	}
	start = now_ms();
	connected = open_many(fds, count, muxd_port(&srv, "echo"), 5000);
	expect_served = serial ? 1 : count;
	served = echo_each(fds, expect_served, 5000);
	diag("shutdown: %d connected and %d served in %lld ms", connected, served,
	     now_ms() - start);
	if (!serial)
		for (int i = 0; i < 2; i++) {
			char buf[4 * KIB];
			enum read_end end;

			streams[i] = tcp_connect(muxd_port(&srv, "chargen"));
			streaming += streams[i] != -1 &&
				     read_until_eof(streams[i], buf, sizeof buf, 2000,
						    &end) == sizeof buf;
		}
	if (!ok(connected == count && served == expect_served &&
		streaming == (serial ? 0 : 2),
		"shutdown: %d connections open, %d of them served%s", count,
		expect_served, serial ? "" : ", 2 chargen streams blocked writing"))
		diag("%d connected, %d served, %d streams", connected, served,
		     streaming);
	note_family(&srv, &fam);
	diag("shutdown: muxd has %d threads and %d child processes", 
	     proc_thread_count(srv.pid), fam.n);
	start = now_ms();
	kill(srv.pid, SIGTERM);
	exited = muxd_wait(&srv, 7000) == 0;
	took = now_ms() - start;
	if (!ok(exited && exit_code_of(srv.wait_status) == 0 && took <= scaled_ms(7000),
		"shutdown: SIGTERM with %d open connections: exit 0 within the "
		"grace (2 s) + 5 s", count))
		diag("%s after %lld ms", exited ? describe_status(srv.wait_status, why,
								 sizeof why)
			 : "still running", took);
	diag("shutdown: exited after %lld ms", took);
	muxd_stop(&srv, 0);
	check_nothing_left(&fam, "shutdown");
	/* A stream's FIN waits behind the chargen bytes still queued for it:
	 * read them away. */
	closed = wait_all_closed(fds, count, SAFETY_MS);
	for (int i = 0; i < 2; i++)
		closed += streams[i] != -1 && drained_to_end(streams[i], 2000);
	if (!ok(closed == connected + (serial ? 0 : 2),
		"shutdown: every client's connection is closed"))
		diag("%d of %d closed", closed, connected + (serial ? 0 : 2));
	close_all(fds, count);
	close_all(streams, 2);
}

int main(int argc, char **argv)
{
	struct engine_tags tags;

	run_start = now_ms();
	signal(SIGPIPE, SIG_IGN);
	adopt_orphans();
	/* It holds up to ~2300 sockets at once (its clients and, on
	 * loopback, nothing else); muxd inherits the limit unless a case
	 * sets its own. */
	raise_own_nofile(8192);
	engine = argv[1];
	extra_args = engine_under_test(argc, argv, &tags);
	serial = tags.serial;
	pool = tags.pool;
	processes = tags.processes;
	threads = tags.threads;
	fd_setsize = tags.fd_setsize;
	readiness = tags.readiness;
	completion = tags.completion;
	takes_threads = tags.takes_threads;
	if (!have_smaps_rollup())
		diag("no Pss_Anon in /proc/PID/smaps_rollup: memory is summed Pss "
		     "(or Rss), which moves with other processes mapping libc");
	cases_on_main_server();
	begin("descriptor exhaustion");
	case_emfile();
	begin("a process pool past its descriptor limit");
	case_pool_emfile();
	begin("memory back after a burst");
	case_burst_memory();
	begin("--max-conns");
	case_max_conns();
	begin("--idle-timeout");
	case_idle_timeout();
	begin("a flood beyond --backlog");
	case_backlog_flood();
	begin("select past FD_SETSIZE");
	case_fd_setsize();
	begin("SIGTERM under load");
	case_shutdown();
	return done_testing();
}
