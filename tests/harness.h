/* harness.h -- the tests' harness: start muxd, talk to it over loopback,
 * read what /proc says of it, and what its listing says of each engine.
 *
 * The server binary is $MUXD (the harness exports its absolute path).
 * Tests never pick ports: they listen on 127.0.0.1:0 and read the real
 * port from muxd's "listening SERVICE ADDRESS PORT" lines. Every timeout
 * given here in milliseconds is multiplied by $MUXD_TEST_TIMEOUT_MULT, so
 * slow runs (valgrind, sanitizers) need no edits. With $MUXD_TEST_KEEP
 * set, servers run with --verbose and every command line is printed, so
 * the test's log shows each connection.
 *
 * Every descriptor made here is close-on-exec: a client socket inherited
 * by a later server would keep its connection open behind the test's back.
 */
#ifndef MUXD_TEST_HARNESS_H
#define MUXD_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#define MUXD_MAX_LISTENERS 16
/* The most children of one muxd the tests record: abuse.c gives a
 * process-per-connection engine hundreds at once, so leave ample room.
 * An array of this many pids is 16 KiB: keep such arrays off the stack. */
#define MAX_KIDS 4096

struct muxd_listener {
	char service[32];
	char address[64];
	unsigned short port;
};

struct muxd_server {
	pid_t pid;
	int stdout_fd;		/* read end of its standard output */
	bool reaped;		/* waitpid already collected it */
	int wait_status;	/* valid once reaped */
	int nlisteners;
	struct muxd_listener listeners[MUXD_MAX_LISTENERS];
};

/* Clock and time scaling. */
long long now_ms(void);				/* CLOCK_MONOTONIC */
long long now_us(void);				/* the same in microseconds */
long scaled_ms(long ms);			/* ms * MUXD_TEST_TIMEOUT_MULT */
void sleep_ms(long ms);				/* not scaled */

/* The server binary, from $MUXD; bails out when unset. */
const char *muxd_path(void);

/* Start muxd with args (NULL-ended, without argv[0]) and wait until it
 * printed one listening line per --listen (two without any). Returns 0,
 * or -1 after printing why as diagnostics (and reaping the child). */
int muxd_start(struct muxd_server *srv, const char *const args[]);
/* What a service manager or inetd hands the muxd it starts. */
struct handover {
	const int *fds;		/* become descriptors 3, 4, ... (at most 16) */
	int n_fds;
	/* "NAME=VALUE" added to muxd's environment, NULL-ended, in place of
	 * the test's LISTEN_* variables; "LISTEN_PID=" alone gets muxd's
	 * own pid, as a service manager sets it. */
	const char *const *env;
	int stdio_fd;		/* >= 0: muxd's standard input and output */
	int stderr_fd;		/* >= 0: muxd's standard error */
	rlim_t nofile;		/* > 0: muxd's soft RLIMIT_NOFILE, as a
				 * service manager's LimitNOFILE= sets it */
	unsigned aio_room;	/* > 0: io_setup(2) grants at most this
				 * many requests (fs.aio-max-nr nearly
				 * used up by others) */
	bool no_threads;	/* no thread can be created (EAGAIN, as
				 * when RLIMIT_NPROC is reached) */
};

/* muxd_start, with h's descriptors and environment, waiting for
 * `expected` listening lines (0 for none: stdout is then h->stdio_fd). */
int muxd_start_handed(struct muxd_server *srv, const char *const args[],
		      const struct handover *h, int expected);
/* muxd_start_handed for a test in which a start that fails is an
 * outcome, not a problem: nothing is said when muxd prints fewer lines.
 * Returns the listening lines read: `expected`, or fewer when muxd closed
 * its standard output first (it is then reaped, or killed when it has not
 * exited within 5 s, scaled); -1 when it printed too few and hung. */
int muxd_try_start(struct muxd_server *srv, const char *const args[],
		   const struct handover *h, int expected);
/* The port muxd printed for service, or 0. */
unsigned short muxd_port(const struct muxd_server *srv, const char *service);
/* false once the server has exited (it is then reaped). */
bool muxd_alive(struct muxd_server *srv);
/* Wait up to timeout_ms (scaled) for it to exit; 0 when it did. */
int muxd_wait(struct muxd_server *srv, long timeout_ms);
/* SIGTERM, wait up to timeout_ms (scaled), else SIGKILL. Returns 0 when it
 * exited on its own in time, -1 when it had to be killed. */
int muxd_stop(struct muxd_server *srv, long timeout_ms);
/* "exit 0", "signal 9", ... for diagnostics. */
const char *describe_status(int wait_status, char *buf, size_t size);
/* WIFEXITED and its code, else -1. */
int exit_code_of(int wait_status);

/* Run muxd with args to completion (timeout_ms, scaled) and capture its
 * standard output, NUL-terminated. Returns the wait status, -1 on error. */
int muxd_capture(const char *const args[], char *out, size_t size,
		 long timeout_ms);

/* Blocking TCP connection to 127.0.0.1:port with 5 s (scaled) send and
 * receive timeouts; -1 with errno set on failure. */
int tcp_connect(unsigned short port);
int set_nonblocking(int fd);
/* Close with SO_LINGER {1, 0}: the peer gets a RST, not a FIN. */
void close_with_reset(int fd);

/* Send everything, waiting up to timeout_ms (scaled) in all; returns the
 * bytes sent (short on timeout or error, with errno set). */
size_t write_all(int fd, const void *buf, size_t len, long timeout_ms);

enum read_end { READ_EOF, READ_FULL, READ_TIMEOUT, READ_ERROR };
/* Read until EOF, until buf is full, or until timeout_ms (scaled) passed.
 * Returns the bytes read; *end says why it stopped (errno on error). */
size_t read_until_eof(int fd, void *buf, size_t size, long timeout_ms,
		      enum read_end *end);
const char *describe_read_end(enum read_end end);
/* Read and throw away until EOF, an error (errno says which) or
 * timeout_ms (scaled); how it ended, and the bytes read in *bytes unless
 * bytes is NULL. */
enum read_end drain_until_end(int fd, long timeout_ms, size_t *bytes);

/* /proc views of a process; -1 if it is gone. */
int proc_fd_count(pid_t pid);
int proc_thread_count(pid_t pid);
/* The number after `key` at the start of a line of /proc/PID/FILE
 * ("VmRSS:  1234 kB", "Max open files  1024  4096  files"), or -1. */
long proc_field(pid_t pid, const char *file, const char *key);
/* Our own soft RLIMIT_NOFILE raised to `want`, or to the hard limit if
 * that is lower, never lowered; a muxd started afterwards inherits it.
 * Returns the soft limit in force, 0 if it cannot be read. */
rlim_t raise_own_nofile(rlim_t want);
/* Its state letter (R, S, Z, ...), or 0 if it is gone. */
char proc_state(pid_t pid);
/* Its parent's pid, or -1 if it is gone. */
pid_t proc_parent(pid_t pid);
/* Processes whose parent is `parent`; fills up to max, returns the count. */
int proc_children(pid_t parent, pid_t *out, int max);
/* The inodes of pid's open sockets (its "socket:[N]" descriptors), at most
 * max of them; how many, or -1 when it is gone. */
int proc_socket_inodes(pid_t pid, unsigned long *out, int max);
/* Its open descriptors that are TCP sockets (IPv4 or IPv6), -1 if it is
 * gone: a leaked connection shows here, a pipe or a Unix socket does not. */
int proc_tcp_fd_count(pid_t pid);
/* Those of them that are connections, not listeners. */
int proc_tcp_conn_count(pid_t pid);
/* Bytes queued to send, summed over this host's TCP sockets (IPv4 and
 * IPv6) on local port `port`, from /proc/net/tcp and tcp6: once a server
 * on that port has exited, a socket it left to the kernel still holding
 * output for its client shows here. -1 when neither file can be read. */
long long tcp_port_send_queued(unsigned short port);
/* Is its memory its own? Not under valgrind, nor with a sanitizer's
 * runtime (shadow memory, redzones, a quarantine of freed blocks): then
 * memory bounds can only be reported, not checked. */
bool muxd_instrumented(pid_t pid);

/* ---- shared by the test programs; failures are reported with tap.h ---- */

/* An engine as `muxd --list-engines=tsv` gives it (muxd.1, OPTIONS). */
struct engine_info {
	char name[32];
	char tags[160];		/* space-separated, without brackets */
	char strategies[128];	/* --accept's, the default first; "" if none */
	bool takes_threads, takes_workers;
};

/* Every engine muxd lists, in its order: how many (at most max). Bails
 * out when muxd fails. */
int muxd_engines(struct engine_info *out, int max);
/* One engine's; bails out when muxd does not list it. */
void muxd_engine(const char *name, struct engine_info *out);
bool engine_has_tag(const struct engine_info *e, const char *tag);

/* What an engine's tags say; tests decide what to expect from these,
 * never from the engine's name. */
struct engine_tags {
	bool serial, pool, processes, threads, readiness, completion,
	     fd_setsize;
	bool takes_threads;	/* --threads applies */
	bool offload;		/* waits and work run on a pool of --workers */
};

void engine_tags_of(const char *engine, struct engine_tags *tags);

/* The pool size every test gives a [pool] engine unless told otherwise:
 * conform and abuse hold up to 64 clients at once, which the default pool
 * of 8 would serve 8 at a time. */
#define POOL_TEST_WORKERS "64"

/* A test program's engine from its argv, "ENGINE [extra muxd args...]":
 * fills tags and returns the NULL-ended args every server of it gets
 * (--workers POOL_TEST_WORKERS for a [pool], then argv's, which win).
 * Skips the whole program, with muxd's reason, when this system refuses
 * the engine (see engine_refused). */
const char *const *engine_under_test(int argc, char **argv,
				     struct engine_tags *tags);

/* True, with muxd's one line in why, when muxd --engine ENGINE exits 1
 * at start-up naming the engine: the kernel refuses its mechanism (the
 * contract's way, e.g. io_uring switched off). Any other failure is not a
 * refusal: the tests that follow will show it. */
bool engine_refused(const char *engine, const char *const extra[],
		    char *why, size_t why_size);

/* muxd --engine ENGINE EXTRA... OPTIONS... then --listen S=127.0.0.1:0 for
 * each of services; options come after extra so that a case's own
 * --workers wins over a wrapper's. extra may be NULL. Returns as
 * muxd_start does. */
int muxd_start_engine(struct muxd_server *srv, const char *engine,
		      const char *const extra[], const char *const options[],
		      const char *const services[]);

/* muxd_start_engine, with muxd's standard error going to `log` (a file
 * the test reads afterwards, e.g. for --stats lines). */
int muxd_start_engine_logged(struct muxd_server *srv, const char *engine,
			     const char *const extra[],
			     const char *const options[],
			     const char *const services[], FILE *log);
/* How many "muxd: stats:" lines the log holds. */
int stats_lines(FILE *log);
/* The value of NAME in the nth such line (1 the first, 0 the last), or
 * -1 when there is no such line or key. */
long long stats_value(FILE *log, int nth, const char *name);

/* Send text and expect `want` (at most 256 bytes) back within timeout_ms
 * (scaled). false with the reason in why otherwise. */
bool round_trip(int fd, const char *text, const char *want, long timeout_ms,
		char *why, size_t why_size);
/* A new connection to an upper listener that answers "abc" with "ABC"
 * within timeout_ms (scaled); -1 with the reason in why otherwise. */
int served_connection(unsigned short port, long timeout_ms, char *why,
		      size_t why_size);
/* Try served_connection (1 s each) for up to 10 s (scaled), since a
 * server may need a moment to take clients again; says why when not. */
bool served_again(unsigned short port);
/* One exchange with an echo listener on a new connection: len bytes of
 * out, our half-close, and every byte back then end of file, each step
 * within timeout_ms (scaled). */
bool echoed_whole(unsigned short port, const void *out, size_t len,
		  long timeout_ms);
/* A connection "accepted and closed at once": no data, then EOF (or a
 * reset), within 3 s (scaled); one being served would stay open. */
bool closed_at_once(unsigned short port, char *why, size_t why_size);
/* Close every descriptor in fds that is not -1, and set it to -1. */
void close_all(int *fds, int n);

/* n bytes got, which should be expect[at, ...) of expect_len bytes: true,
 * or false with why (the first byte that differs, or the bytes beyond
 * expect_len). Either way at most expect_len - at of them are checked. */
bool bytes_as_expected(const unsigned char *got, size_t n,
		       const unsigned char *expect, size_t expect_len,
		       size_t at, char *why, size_t why_size);

/* Whether PATH has an executable of that name. */
bool program_in_path(const char *program);
/* A port of 127.0.0.1 that was free a moment ago, for programs that take
 * a number rather than port 0 (haproxy, systemd-socket-activate); one
 * may take it in the meantime, which the caller sees as a bind error. */
unsigned short free_loopback_port(void);

/* Whether any socket of this network namespace (any process, IPv4 or IPv6)
 * listens on TCP port: what `ss -ltn` shows. */
bool port_listening(unsigned short port);

/* Children of pid that are running (not zombies, not gone), and those
 * that are zombies: exited but not yet reaped by pid. */
int live_children(pid_t pid);
int zombie_children(pid_t pid);

/* What muxd holds after start-up, to compare with once clients are gone. */
struct proc_counts {
	int fds, tcp_fds, threads;
	int kids;		/* live children: a process pool's workers */
};
/* pid's counts once they have stood still for a while (up to
 * timeout_ms, scaled). The listening lines come once a pool or a thread
 * set is made, but its members may still be setting themselves up, and
 * a dynamic pool grows at its first step: counts read then are a moving
 * target, and descriptors read before the children were (a worker
 * started between the two) would make a baseline one short. */
void proc_counts_settled(pid_t pid, long timeout_ms, struct proc_counts *out);
/* Each of pid's descriptors and what it is, as diagnostics. */
void diag_proc_fds(pid_t pid);

/* "Nothing left behind": note muxd's children while it runs, and once it
 * is reaped, check that none of them, and no orphan of muxd, is still
 * around. Orphans are seen only if the test made itself a child subreaper
 * (prctl PR_SET_CHILD_SUBREAPER), so that they come to it, not to init. */
struct family {
	pid_t server;
	pid_t *kids;		/* on the heap, freed by check_nothing_left */
	int n;
};
/* Become that subreaper; call it once, before the first server. */
void adopt_orphans(void);
void note_family(const struct muxd_server *srv, struct family *fam);
/* One test, "LABEL: no child process outlives muxd". A leftover is killed
 * and reaped so the run goes on. Releases fam. */
void check_nothing_left(struct family *fam, const char *label);

#endif
