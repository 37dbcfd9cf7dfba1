/* completion_cases.c -- what a [completion] engine must get right on top of the
 * contract's cases: the kernel holds its buffers and requests, so scale,
 * late completions and buffer shortage are where such servers break.
 *
 * usage: completion_cases ENGINE [extra muxd args...]
 *
 * The cases, each with every byte checked:
 *   - MANY (10,000) upper connections open at once, each served its own
 *     reply (skipped, saying why, when RLIMIT_NOFILE's hard limit is too
 *     low for the test and muxd to hold them);
 *   - a client resets while the server's send to it is stuck in flight,
 *     and a new connection made at once (which may get the same
 *     descriptor) receives exactly its own bytes, nothing of the other's;
 *   - BUSY echo connections moving data at once, more than the engine
 *     has receive buffers: each is slowed, none stalls or loses a byte;
 *   - STALLERS clients send to upper and never read: muxd's resident
 *     memory stays within a bound per client, and NEWCOMERS new clients
 *     are each served within a deadline while the stallers hold on (a
 *     server whose shared receive buffers they could hold would make
 *     the newcomers wait for an idle timeout);
 *   - io_uring_enter failing now and then with EAGAIN or ENOMEM (the
 *     kernel short of memory for the moment, made so by tests/fault.c):
 *     muxd waits and tries again, serves every byte, and stops with
 *     exit 0;
 *   - RLIMIT_NOFILE at start-up (LOW_NOFILE) below --max-conns, raised
 *     while muxd runs (prlimit --pid, as an operator would): a client
 *     the engine has no room for is refused with a line that names the
 *     descriptor limit, not --max-conns, which is far from reached.
 * Every wait is scaled by MUXD_TEST_TIMEOUT_MULT (harness.c).
 */
#include "harness.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MANY 10000
#define REUSE_ROUNDS 10
#define BUSY 4500		/* more than any buffer ring we would size */
#define BUSY_BYTES 16384	/* each busy connection's echo */
#define STALLERS 200
/* At most, per never-reading client: enough to fill the socket buffers
 * on both sides and back the server's output up (about 4 MiB on
 * loopback), while 200 of them stay well below the kernel's TCP memory
 * pressure threshold on a shared machine. */
#define STALL_PUSH (4 << 20)
#define NEWCOMERS 20
/* A never-reading client may cost the server its connection state and
 * one connection buffer (64 KiB at most): 100 KiB each is generous, and
 * far below what the clients push (megabytes each). */
#define STALLER_KIB 100
#define FD_MARGIN 64		/* the test's and muxd's other descriptors */
#define LOW_NOFILE 32
#define RAISED_NOFILE 128
#define LATE_CLIENTS (LOW_NOFILE + 16)	/* beyond what the first limit held */

static const char *engine;
static const char *const *extra_args;

static int start(struct muxd_server *srv, const char *service,
		 const char *const options[])
{
	const char *const services[] = { service, NULL };

	return muxd_start_engine(srv, engine, extra_args, options, services);
}

/* Read exactly len bytes (blocking socket, its own timeouts). */
static bool read_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0 && !(n < 0 && errno == EINTR))
			return false;
		if (n > 0)
			got += (size_t)n;
	}
	return true;
}

static void upper_case(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

/* ---- MANY connections at once ---- */

static int serve_many(int *fds, unsigned short port)
{
	int good = 0;

	for (int i = 0; i < MANY; i++)
		if ((fds[i] = tcp_connect(port)) == -1) {
			diag("connection %d: %s", i, strerror(errno));
			return 0;
		}
	for (int i = 0; i < MANY; i++) {
		char msg[64];
		size_t len = (size_t)snprintf(msg, sizeof msg, "client %05d here\n", i);

		if (write_all(fds[i], msg, len, 5000) != len)
			diag("connection %d: write: %s", i, strerror(errno));
	}
	for (int i = 0; i < MANY; i++) {
		char want[64], got[64] = "";
		size_t len = (size_t)snprintf(want, sizeof want, "client %05d here\n", i);

		upper_case(want);
		if (read_exact(fds[i], got, len) && memcmp(got, want, len) == 0)
			good++;
		else if (MANY - good < 5)
			diag("connection %d: wrong or no reply", i);
	}
	return good;
}

static void case_many(rlim_t nofile)
{
	const char *const options[] = { "--max-conns", "10100", "--backlog", "4096",
					NULL };
	struct muxd_server srv;
	int *fds, good;

	if (nofile < MANY + FD_MARGIN) {
		skip(3, "%d connections at once: RLIMIT_NOFILE allows only %lu "
		     "descriptors", MANY, (unsigned long)nofile);
		return;
	}
	fds = malloc(MANY * sizeof *fds);
	if (!fds || start(&srv, "upper", options) != 0) {
		ok(false, "%d connections: muxd starts", MANY);
		skip(2, "no server");
		free(fds);
		return;
	}
	for (int i = 0; i < MANY; i++)
		fds[i] = -1;
	good = serve_many(fds, muxd_port(&srv, "upper"));
	is_int(good, MANY, "%d connections open at once each get their own reply",
	       MANY);
	ok(proc_fd_count(srv.pid) >= MANY,
	   "muxd held them all at once (%d descriptors)", proc_fd_count(srv.pid));
	close_all(fds, MANY);
	ok(served_again(muxd_port(&srv, "upper")) && muxd_stop(&srv, 5000) == 0 &&
	   exit_code_of(srv.wait_status) == 0,
	   "after %d connections muxd serves again and exits 0", MANY);
	free(fds);
}

/* ---- a reset during a send, and the next connection ---- */

/* Push lowercase 'a's until the server stops taking them (its send to
 * us is stuck, since we never read), then reset. */
static void reset_while_stuck(unsigned short port)
{
	static char junk[4 << 20];
	int fd = tcp_connect(port);

	if (fd == -1)
		return;
	memset(junk, 'a', sizeof junk);
	for (int i = 0; i < 4; i++)
		if (write_all(fd, junk, sizeof junk, 300) < sizeof junk)
			break;
	close_with_reset(fd);
}

static bool only_own_bytes(unsigned short port, int round)
{
	char msg[64], want[64], got[256];
	enum read_end end;
	size_t n, len;
	int fd = tcp_connect(port);

	if (fd == -1)
		return false;
	len = (size_t)snprintf(msg, sizeof msg, "round %d: mine and only mine\n", round);
	memcpy(want, msg, len + 1);
	upper_case(want);
	n = write_all(fd, msg, len, 2000);
	shutdown(fd, SHUT_WR);
	n = n == len ? read_until_eof(fd, got, sizeof got, 3000, &end) : 0;
	close(fd);
	if (n == len && end == READ_EOF && memcmp(got, want, len) == 0)
		return true;
	diag("round %d: %zu bytes back, %s", round, n, describe_read_end(end));
	return false;
}

static void case_reuse(void)
{
	const char *const options[] = { NULL };
	struct muxd_server srv;
	int exact = 0;

	if (start(&srv, "upper", options) != 0) {
		ok(false, "reset during a send: muxd starts");
		return;
	}
	for (int round = 0; round < REUSE_ROUNDS; round++) {
		reset_while_stuck(muxd_port(&srv, "upper"));
		exact += only_own_bytes(muxd_port(&srv, "upper"), round);
	}
	is_int(exact, REUSE_ROUNDS, "after a reset during a send, the next "
	       "connection gets exactly its own bytes, %d rounds", REUSE_ROUNDS);
	muxd_stop(&srv, 5000);
}

/* ---- more busy connections than receive buffers ---- */

struct busy {
	int fd;
	size_t sent, got;
	bool wrong;
};

static unsigned char pattern(size_t conn, size_t offset)
{
	return (unsigned char)(conn * 131 + offset * 7 + offset / 251);
}

static void busy_send(struct busy *b, size_t i)
{
	unsigned char out[4096];
	size_t len = BUSY_BYTES - b->sent;
	ssize_t n;

	if (len > sizeof out)
		len = sizeof out;
	for (size_t k = 0; k < len; k++)
		out[k] = pattern(i, b->sent + k);
	n = send(b->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		b->sent += (size_t)n;
}

static void busy_receive(struct busy *b, size_t i)
{
	unsigned char in[4096];
	ssize_t n = recv(b->fd, in, sizeof in, MSG_DONTWAIT);

	for (ssize_t k = 0; k < n; k++)
		b->wrong |= in[k] != pattern(i, b->got + (size_t)k);
	if (n > 0)
		b->got += (size_t)n;
}

/* Level-triggered: write while there is something to send, read always. */
static int run_busy(struct busy *b, int ep)
{
	long long deadline = now_ms() + scaled_ms(30000);
	int done = 0;

	while (done < BUSY && now_ms() < deadline) {
		struct epoll_event ev[256];
		int n = epoll_wait(ep, ev, 256, 200);

		for (int k = 0; k < n; k++) {
			size_t i = ev[k].data.u32;
			bool was_done = b[i].got == BUSY_BYTES;

			if ((ev[k].events & EPOLLOUT) && b[i].sent < BUSY_BYTES)
				busy_send(&b[i], i);
			if (ev[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				busy_receive(&b[i], i);
			if (b[i].sent == BUSY_BYTES && b[i].got < BUSY_BYTES) {
				struct epoll_event in = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

				epoll_ctl(ep, EPOLL_CTL_MOD, b[i].fd, &in);
			}
			done += !was_done && b[i].got == BUSY_BYTES;
		}
	}
	return done;
}

static void check_busy(struct busy *b, unsigned short port)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), done, wrong = 0;

	for (size_t i = 0; i < BUSY && ep != -1; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i };

		b[i].fd = tcp_connect(port);
		if (b[i].fd == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, b[i].fd, &ev) == -1) {
			diag("busy connection %zu: %s", i, strerror(errno));
			ok(false, "%d busy connections connect", BUSY);
			if (ep != -1)
				close(ep);
			return;
		}
	}
	done = run_busy(b, ep);
	for (size_t i = 0; i < BUSY; i++)
		wrong += b[i].wrong;
	is_int(done, BUSY, "%d echo connections moving %d bytes each at once all "
	       "complete", BUSY, BUSY_BYTES);
	is_int(wrong, 0, "... and every byte comes back in order");
	close(ep);
}

static void case_busy(rlim_t nofile)
{
	const char *const options[] = { "--max-conns", "5000", "--backlog", "4096",
					NULL };
	struct muxd_server srv;
	struct busy *b;

	if (nofile < BUSY + FD_MARGIN) {
		skip(2, "%d busy connections: RLIMIT_NOFILE allows only %lu "
		     "descriptors", BUSY, (unsigned long)nofile);
		return;
	}
	b = calloc(BUSY, sizeof *b);
	if (!b || start(&srv, "echo", options) != 0) {
		ok(false, "busy connections: muxd starts");
		free(b);
		return;
	}
	for (size_t i = 0; i < BUSY; i++)
		b[i].fd = -1;
	check_busy(b, muxd_port(&srv, "echo"));
	for (size_t i = 0; i < BUSY; i++)
		if (b[i].fd != -1)
			close(b[i].fd);
	muxd_stop(&srv, 5000);
	free(b);
}

/* ---- clients that never read ---- */

/* Round robin over the clients until none has taken a byte for 500 ms
 * (scaled) or each has pushed STALL_PUSH; returns the bytes pushed. */
static unsigned long long push_until_stalled(int *fds)
{
	static char junk[64 * 1024];
	size_t pushed[STALLERS] = { 0 };
	unsigned long long total = 0;
	long long quiet_since = now_ms();

	memset(junk, 'q', sizeof junk);
	while (now_ms() - quiet_since < scaled_ms(500)) {
		bool moved = false;

		for (int i = 0; i < STALLERS; i++) {
			ssize_t n;

			if (fds[i] == -1 || pushed[i] >= STALL_PUSH)
				continue;
			n = send(fds[i], junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				pushed[i] += (size_t)n;
				total += (size_t)n;
				moved = true;
			}
		}
		if (moved)
			quiet_since = now_ms();
		else
			sleep_ms(10);
	}
	return total;
}

/* Each on a connection of its own, with a deadline of its own: none
 * may wait for a stalled client to give anything back. */
static int newcomers_served(unsigned short port)
{
	int served = 0;

	for (int i = 0; i < NEWCOMERS; i++) {
		char why[256];
		int fd = served_connection(port, 2000, why, sizeof why);

		if (fd == -1) {
			diag("newcomer %d: %s", i, why);
			continue;
		}
		served++;
		close(fd);
	}
	return served;
}

static void case_never_read(rlim_t nofile)
{
	const char *const options[] = { NULL };
	struct muxd_server srv;
	int fds[STALLERS];
	unsigned long long pushed;
	long before, after;

	if (nofile < STALLERS + NEWCOMERS + FD_MARGIN) {
		skip(5, "%d never-reading clients: RLIMIT_NOFILE allows only %lu "
		     "descriptors", STALLERS, (unsigned long)nofile);
		return;
	}
	if (start(&srv, "upper", options) != 0) {
		ok(false, "never-reading clients: muxd starts");
		return;
	}
	/* The listening lines come before the engine has set up: measure
	 * once it has served someone. */
	ok(served_again(muxd_port(&srv, "upper")), "muxd serves a first client");
	before = proc_field(srv.pid, "status", "VmRSS:");
	for (int i = 0; i < STALLERS; i++)
		fds[i] = tcp_connect(muxd_port(&srv, "upper"));
	pushed = push_until_stalled(fds);
	after = proc_field(srv.pid, "status", "VmRSS:");
	diag("%d never-reading clients pushed %llu MiB; muxd's VmRSS %ld -> %ld KiB",
	     STALLERS, pushed >> 20, before, after);
	ok(pushed >= (unsigned long long)STALLERS << 20,
	   "%d never-reading clients pushed at least 1 MiB each", STALLERS);
	if (muxd_instrumented(srv.pid))
		skip(1, "muxd runs under valgrind or a sanitizer: memory is "
		     "reported, not checked");
	else
		ok(before > 0 && after - before < STALLERS * STALLER_KIB,
		   "muxd's memory grew by less than %d KiB per never-reading "
		   "client", STALLER_KIB);
	is_int(newcomers_served(muxd_port(&srv, "upper")), NEWCOMERS,
	       "while they stall, %d new clients are each served within 2 s",
	       NEWCOMERS);
	ok(proc_tcp_fd_count(srv.pid) >= STALLERS,
	   "... and the never-reading clients are still connected (%d sockets)",
	   proc_tcp_fd_count(srv.pid));
	close_all(fds, STALLERS);
	muxd_stop(&srv, 5000);
}

/* ---- the kernel short of memory now and then ---- */

/* Preload tests/libfault.so into the next muxd started, making every
 * `every`th io_uring_enter fail; false when the library is not there. */
static bool preload_faults(const char *every)
{
	char lib[4096], asan[1024];
	const char *dir = getenv("MUXD_TESTS_BUILDDIR"),
		   *old_asan = getenv("ASAN_OPTIONS");

	snprintf(lib, sizeof lib, "%s/libfault.so", dir ? dir : "tests");
	if (access(lib, R_OK) != 0) {
		diag("%s: %s", lib, strerror(errno));
		return false;
	}
	/* A sanitizer's runtime wants to come first; the library uses
	 * nothing of it. */
	snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0",
		 old_asan ? old_asan : "", old_asan ? ":" : "");
	return setenv("LD_PRELOAD", lib, 1) == 0 &&
	       setenv("MUXD_FAULT_URING_ENTER", every, 1) == 0 &&
	       setenv("ASAN_OPTIONS", asan, 1) == 0;
}

static void case_enter_fails(void)
{
	const char *const options[] = { NULL };
	const char *old_asan = getenv("ASAN_OPTIONS");
	char saved_asan[1024];
	struct muxd_server srv;
	char why[256] = "";
	int fd, rounds = 0;
	bool started;

	snprintf(saved_asan, sizeof saved_asan, "%s", old_asan ? old_asan : "");
	if (!preload_faults("3")) {
		skip(3, "tests/libfault.so is not built");
		return;
	}
	started = start(&srv, "upper", options) == 0;
	unsetenv("LD_PRELOAD");
	unsetenv("MUXD_FAULT_URING_ENTER");
	if (old_asan)
		setenv("ASAN_OPTIONS", saved_asan, 1);
	else
		unsetenv("ASAN_OPTIONS");
	if (!ok(started, "io_uring_enter failing every third time: muxd starts")) {
		skip(2, "no server");
		return;
	}
	fd = tcp_connect(muxd_port(&srv, "upper"));
	while (fd != -1 && rounds < 200 &&
	       round_trip(fd, "again and again", "AGAIN AND AGAIN", 5000, why,
			  sizeof why))
		rounds++;
	if (!ok(rounds == 200 && muxd_alive(&srv),
		"... 200 round trips, every byte as sent, while it fails"))
		diag("%d round trips; %s", rounds, why);
	if (fd != -1)
		close(fd);
	ok(muxd_stop(&srv, 10000) == 0 && exit_code_of(srv.wait_status) == 0,
	   "... and SIGTERM ends it with exit 0");
}

/* ---- RLIMIT_NOFILE raised under a running muxd ---- */

/* muxd started with a soft RLIMIT_NOFILE of `nofile` (the test's own is
 * lowered around the start, and muxd inherits it). */
static int start_limited(struct muxd_server *srv, rlim_t nofile,
			 const char *const options[], FILE *log)
{
	const char *const services[] = { "upper", NULL };
	struct rlimit saved, low;
	int rc;

	if (getrlimit(RLIMIT_NOFILE, &saved) < 0)
		bail_out("getrlimit: %s", strerror(errno));
	low = (struct rlimit){ nofile, saved.rlim_max };
	if (setrlimit(RLIMIT_NOFILE, &low) < 0)
		bail_out("setrlimit %lu: %s", (unsigned long)nofile, strerror(errno));
	rc = muxd_start_engine_logged(srv, engine, extra_args, options, services, log);
	if (setrlimit(RLIMIT_NOFILE, &saved) < 0)
		bail_out("setrlimit back: %s", strerror(errno));
	return rc;
}

/* The log's "refused" lines: how many, how many name `reason`, and how
 * many blame --max-conns. */
static void count_refusals(FILE *log, const char *reason, int *all,
			   int *named, int *max_conns)
{
	char line[512];

	*all = *named = *max_conns = 0;
	fflush(log);
	rewind(log);
	while (fgets(line, sizeof line, log)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strstr(line, "refused upper connection"))
			continue;
		(*all)++;
		*named += strstr(line, reason) != NULL;
		*max_conns += strstr(line, "(--max-conns)") != NULL;
		if (*all == 1)
			diag("first refusal: %s", line);
	}
}

static void case_nofile_raised(rlim_t nofile)
{
	const char *const options[] = { "--max-conns", "1000", "--verbose", NULL };
	struct rlimit raised = { RAISED_NOFILE, nofile };
	struct muxd_server srv;
	int fds[LATE_CLIENTS], served = 0, all, named, max_conns;
	FILE *log = tmpfile();
	char why[256];

	if (nofile < RAISED_NOFILE + FD_MARGIN) {
		skip(2, "RLIMIT_NOFILE raised under muxd: the hard limit allows "
		     "only %lu descriptors", (unsigned long)nofile);
		return;
	}
	if (!log || start_limited(&srv, LOW_NOFILE, options, log) != 0) {
		ok(false, "RLIMIT_NOFILE %d: muxd starts", LOW_NOFILE);
		skip(1, "no server");
		return;
	}
	/* The listening lines may come before the engine has set up: raise
	 * the limit once it has served someone. */
	if (!served_again(muxd_port(&srv, "upper")) ||
	    prlimit(srv.pid, RLIMIT_NOFILE, &raised, NULL) < 0) {
		skip(2, "RLIMIT_NOFILE raised under muxd: %s", strerror(errno));
		muxd_stop(&srv, 5000);
		fclose(log);
		return;
	}
	for (int i = 0; i < LATE_CLIENTS; i++) {
		fds[i] = tcp_connect(muxd_port(&srv, "upper"));
		served += fds[i] != -1 &&
			  round_trip(fds[i], "abc", "ABC", 5000, why, sizeof why);
	}
	close_all(fds, LATE_CLIENTS);
	muxd_stop(&srv, 5000);
	count_refusals(log, "RLIMIT_NOFILE", &all, &named, &max_conns);
	diag("RLIMIT_NOFILE %d, raised to %d: %d of %d clients served, %d refused",
	     LOW_NOFILE, RAISED_NOFILE, served, LATE_CLIENTS, all);
	ok(served + all >= LATE_CLIENTS,
	   "RLIMIT_NOFILE raised under muxd: each client is served or refused");
	ok(max_conns == 0 && named == all,
	   "RLIMIT_NOFILE raised under muxd: a refusal names RLIMIT_NOFILE, not "
	   "--max-conns (1000, far from reached)");
	fclose(log);
}

int main(int argc, char *argv[])
{
	struct engine_tags tags;
	rlim_t nofile;

	engine = argv[1];
	extra_args = engine_under_test(argc, argv, &tags);
	if (!tags.completion)
		plan_skip_all("%s has no [completion] tag", engine);
	nofile = raise_own_nofile(RLIM_INFINITY);
	case_many(nofile);
	case_reuse();
	case_busy(nofile);
	case_never_read(nofile);
	case_enter_fails();
	case_nofile_raised(nofile);
	return done_testing();
}
