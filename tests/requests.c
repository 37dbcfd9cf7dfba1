/* requests.c -- the request services, delay and work (muxd.1, SERVICES),
 * against one engine.
 *
 * usage: requests ENGINE [extra muxd args...]
 *
 *   - work's replies against splitmix64 computed here (tests/oracle.c),
 *     pipelined and one at a time, in order;
 *   - bad input: "ERR <reason>" and the connection goes on; a line too
 *     long: "ERR line too long", then the connection closes;
 *   - delay: a reply never comes before its milliseconds (timed to the
 *     microsecond), and pipelined lines wait one after another, each
 *     from the previous reply;
 *   - 1,000 clients each waiting a second at once are all answered within
 *     that second and a slack that holds on a loaded machine: no engine
 *     blocks its loop on a wait (not for [serial] engines, nor where a
 *     pool of workers bounds how many wait at once: [pool], [offload]);
 *   - head-of-line blocking: on an engine whose one thread runs every
 *     connection ([readiness] or [completion], not [threads]), a light
 *     request sent while a heavy one computes is answered after it; where
 *     work goes to a pool ([offload]), before it;
 *   - 1,000 clients that leave while their request waits or works: muxd
 *     is back to its descriptors, threads, children and memory, and
 *     serves on.
 * Which case applies is read from the engine's tags, never its name.
 */
#include "harness.h"
#include "oracle.h"
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SAFETY_MS 30000		/* only a hung server takes this long */
#define SHORT_WAITS 50
#define RUSH_CLIENTS 16
#define RUSH_LINES 250
#define RUSH_ROUNDS 4
#define RUSH_LINE_MAX 8		/* "0 249\n" */
#define CONCURRENT 1000
#define CONCURRENT_MS 1000
/* Above the second the clients wait: what a loaded machine may add, and
 * far below what an engine that slept in its loop would take (1,000 s). */
#define CONCURRENT_SLACK_MS 5000
#define HEAVY_N "100000000"	/* the most work a line may ask: ~0.1 s here */
#define HEAVY_LINES 10
#define LEAVERS 1000
#define LEAVER_BATCH 100
/* What may stay in muxd's memory once every leaver is gone. */
#define LEAVERS_KEPT_KIB (8 * 1024)

static const char *engine;
static const char *const *extra_args;
static struct engine_tags tags;

/* ---- small helpers ---- */

/* Read until `lines` LF-ended lines have come (or timeout_ms, scaled),
 * into buf (NUL-terminated); returns the bytes read. */
static size_t read_lines(int fd, char *buf, size_t size, int lines,
			 long timeout_ms)
{
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	size_t got = 0;
	int seen = 0;

	while (seen < lines && got < size - 1 && now_ms() < deadline) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		n = recv(fd, buf + got, size - 1 - got, 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			seen += buf[got + (size_t)i] == '\n';
		got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

static bool send_text(int fd, const char *text)
{
	return write_all(fd, text, strlen(text), 5000) == strlen(text);
}

static void diag_text(const char *what, const char *text)
{
	char shown[512];

	diag("%s: \"%s\"", what, tap_escape(shown, sizeof shown, text, strlen(text)));
}

/* ---- work ---- */

static void append_request(char *in, size_t in_size, char *want,
			   size_t want_size, uint64_t n, uint64_t seed)
{
	size_t at = strlen(in), wat = strlen(want);

	snprintf(in + at, in_size - at, "%llu %llu\n", (unsigned long long)n,
		 (unsigned long long)seed);
	snprintf(want + wat, want_size - wat, "%016llx\r\n",
		 (unsigned long long)splitmix64_nth(seed, n));
}

static void case_work(unsigned short port)
{
	static char in[8192], want[8192], got[8192];
	uint64_t rng = 0x776f726b;	/* "work" */
	int fd = tcp_connect(port), ok_one_by_one = 0;

	in[0] = want[0] = '\0';
	append_request(in, sizeof in, want, sizeof want, 1, 0);
	for (int i = 1; i < 40; i++)
		append_request(in, sizeof in, want, sizeof want,
			       1 + prng_next(&rng) % 100000, prng_next(&rng));
	if (fd == -1 || !send_text(fd, in)) {
		ok(false, "work: 40 requests pipelined on one connection");
		skip(1, "no connection");
	} else {
		read_lines(fd, got, sizeof got, 40, SAFETY_MS);
		if (!is_str(got, want, "work: 40 pipelined requests, each the "
			    "N-th splitmix64 output, in order"))
			diag_text("sent", in);
		for (int i = 0; i < 10; i++) {
			in[0] = want[0] = '\0';
			append_request(in, sizeof in, want, sizeof want,
				       1 + prng_next(&rng) % 1000, prng_next(&rng));
			ok_one_by_one += send_text(fd, in) &&
					 read_lines(fd, got, sizeof got, 1, SAFETY_MS) &&
					 strcmp(got, want) == 0;
		}
		is_int(ok_one_by_one, 10, "work: 10 more, one at a time, each right");
	}
	if (fd != -1)
		close(fd);
}

/* ---- bad input ---- */

/* Send `bad`, expect one "ERR ..." line, then that the connection still
 * answers `good` with `good_reply`. */
static void case_bad_line(unsigned short port, const char *service,
			  const char *bad, const char *good,
			  const char *good_reply)
{
	char got[512], shown[64];
	int fd = tcp_connect(port);
	bool err = false, on = false;

	if (fd != -1 && send_text(fd, bad)) {
		read_lines(fd, got, sizeof got, 1, SAFETY_MS);
		err = strncmp(got, "ERR ", 4) == 0 &&
		      strlen(got) > 6 && strcmp(got + strlen(got) - 2, "\r\n") == 0;
		if (!err)
			diag_text("got", got);
		on = send_text(fd, good) &&
		     read_lines(fd, got, sizeof got, 1, SAFETY_MS) &&
		     strcmp(got, good_reply) == 0;
	}
	tap_escape(shown, sizeof shown, bad, strlen(bad));
	ok(err && on, "%s: \"%s\" gets ERR <reason> CR LF, and the connection "
	   "goes on", service, shown);
	if (fd != -1)
		close(fd);
}

static void case_too_long(unsigned short port, const char *service)
{
	static char line[2000], got[512];
	enum read_end end = READ_ERROR;
	int fd = tcp_connect(port);
	size_t n = 0;

	memset(line, '7', sizeof line);
	if (fd != -1 && write_all(fd, line, sizeof line, 5000) == sizeof line)
		n = read_until_eof(fd, got, sizeof got - 1, SAFETY_MS, &end);
	got[n] = '\0';
	if (!ok(end == READ_EOF && strcmp(got, "ERR line too long\r\n") == 0,
		"%s: 2,000 bytes without an LF get ERR line too long, then "
		"the connection closes", service)) {
		diag_text("got", got);
		diag("then %s", describe_read_end(end));
	}
	if (fd != -1)
		close(fd);
}

static void cases_bad_input(unsigned short work, unsigned short delay)
{
	case_bad_line(work, "work", "0 5\n", "1 0\n", "e220a8397b1dcdaf\r\n");
	case_bad_line(work, "work", "100000001 5\n", "1 0\n", "e220a8397b1dcdaf\r\n");
	case_bad_line(work, "work", "x 5\n", "1 0\n", "e220a8397b1dcdaf\r\n");
	case_bad_line(work, "work", "5 18446744073709551616\n", "1 0\n",
		      "e220a8397b1dcdaf\r\n");
	case_bad_line(delay, "delay", "abc\n", "5 ok\n", "5 ok\n");
	case_bad_line(delay, "delay", "60001\n", "5 ok\r\n", "5 ok\r\n");
	case_too_long(work, "work");
	case_too_long(delay, "delay");
}

/* ---- delay: never early, one after another ---- */

/* Pipelined: "300 a", "100 b", "0 c". The second waits from the first
 * reply, so no line may come before the sum of the waits before it and
 * its own: 300, 400 and 400 ms after sending. */
static void case_delay_times(unsigned short port)
{
	static const long at_least[] = { 300, 400, 400 };
	char got[64] = "";
	size_t have = 0;
	int fd = tcp_connect(port), lines = 0;
	long long sent = now_us();
	bool never_early = true;

	if (fd != -1 && send_text(fd, "300 a\n100 b\n0 c\n"))
		while (lines < 3 && have < sizeof got - 1) {
			size_t more = read_lines(fd, got + have, sizeof got - have,
						 1, SAFETY_MS);
			long long at = now_us() - sent;

			/* Every line this read brought had come by now. */
			for (size_t i = have; i < have + more; i++)
				if (got[i] == '\n' && lines < 3 &&
				    at < at_least[lines++] * 1000)
					never_early = false;
			if (more == 0)
				break;
			have += more;
		}
	is_str(got, "300 a\n100 b\n0 c\n", "delay: pipelined lines come back "
	       "as they came, in order");
	ok(lines == 3 && never_early, "delay: each after its own wait, which "
	   "starts when the previous reply is out");
	if (fd != -1)
		close(fd);
}

/* Short waits one after another, each timed from its own send to the
 * microsecond: a server whose clock is whole milliseconds must not
 * answer in the millisecond before the wait is over. */
static void case_never_early(unsigned short port)
{
	int fd = tcp_connect(port), early = 0, answered = 0;
	long long least = -1;

	for (int i = 0; fd != -1 && i < SHORT_WAITS; i++) {
		char got[32];
		long long sent = now_us(), took;

		if (!send_text(fd, "3 short\n") ||
		    read_lines(fd, got, sizeof got, 1, SAFETY_MS) == 0 ||
		    strcmp(got, "3 short\n") != 0)
			break;
		took = now_us() - sent;
		answered++;
		early += took < 3000;
		if (least < 0 || took < least)
			least = took;
	}
	if (!ok(answered == SHORT_WAITS && early == 0, "delay: %d waits of 3 ms "
		"one after another, none answered before 3 ms", SHORT_WAITS))
		diag("%d answered, %d early, the shortest after %lld us", answered,
		     early, least);
	if (fd != -1)
		close(fd);
}

/* ---- waits that come due while their connection is in hand ---- */

static size_t common_prefix(const char *a, size_t a_len, const char *b,
			    size_t b_len)
{
	size_t n = 0;

	while (n < a_len && n < b_len && a[n] == b[n])
		n++;
	return n;
}

/* RUSH_CLIENTS clients at once, each pipelining RUSH_LINES waits of 0 ms,
 * in RUSH_ROUNDS rounds: every line comes due a millisecond after the
 * reply before it, often while a thread is still at the connection's
 * turn. Leader-followers once dropped a wait that came due between the
 * turn setting its timer and letting go of the connection: that line
 * was never answered. One client on a [serial] engine, which would
 * serve them one after another. */
static void case_zero_waits(unsigned short port)
{
	static char want[RUSH_LINES * RUSH_LINE_MAX + 1];
	static char got[RUSH_CLIENTS][sizeof want];
	int fds[RUSH_CLIENTS], clients = tags.serial ? 1 : RUSH_CLIENTS;
	size_t have[RUSH_CLIENTS], want_len = 0;
	int round, wrong = -1;

	for (int i = 0; i < RUSH_LINES; i++)
		want_len += (size_t)snprintf(want + want_len, sizeof want - want_len,
					     "0 %d\n", i);
	for (round = 0; round < RUSH_ROUNDS && wrong < 0; round++) {
		long long deadline = now_ms() + scaled_ms(SAFETY_MS);
		int done = 0;

		for (int c = 0; c < clients; c++) {
			fds[c] = tcp_connect(port);
			have[c] = 0;
			if (fds[c] == -1 || !send_text(fds[c], want)) {
				have[c] = sizeof want;	/* counted wrong below */
				done++;
			}
		}
		while (done < clients && now_ms() < deadline) {
			struct pollfd p[RUSH_CLIENTS];

			for (int c = 0; c < clients; c++)
				p[c] = (struct pollfd){ have[c] < want_len ?
							fds[c] : -1, POLLIN, 0 };
			if (poll(p, (nfds_t)clients, 100) <= 0)
				continue;
			for (int c = 0; c < clients; c++) {
				ssize_t n;

				if (!p[c].revents)
					continue;
				n = recv(fds[c], got[c] + have[c],
					 sizeof want - 1 - have[c], 0);
				have[c] = n > 0 ? have[c] + (size_t)n : sizeof want;
				done += have[c] >= want_len;
			}
		}
		for (int c = 0; c < clients && wrong < 0; c++)
			if (have[c] != want_len || memcmp(got[c], want, want_len))
				wrong = c;
		close_all(fds, clients);
	}
	if (!ok(wrong < 0, "delay: %d client%s each pipelining %d waits of "
		"0 ms, %d times: every line answered, in order", clients,
		clients == 1 ? "" : "s", RUSH_LINES, RUSH_ROUNDS))
		diag("round %d, client %d: %zu bytes of %zu, the first %zu as "
		     "sent", round, wrong + 1, have[wrong], want_len,
		     common_prefix(got[wrong], have[wrong], want, want_len));
}

/* ---- 1,000 waits at once ---- */

static void case_concurrent(unsigned short port)
{
	static int fds[CONCURRENT];
	static bool answered[CONCURRENT];
	static struct pollfd p[CONCURRENT];
	long long start, deadline, last_us = 0;
	int connected = 0, done = 0, early = 0;

	if (tags.serial || tags.pool || tags.offload) {
		skip(1, "[serial], [pool] or [offload]: a pool or one thread "
		     "bounds how many clients wait at once");
		return;
	}
	for (int i = 0; i < CONCURRENT; i++) {
		fds[i] = tcp_connect(port);
		connected += fds[i] != -1;
		answered[i] = false;
	}
	start = now_us();
	for (int i = 0; i < CONCURRENT; i++)
		if (fds[i] != -1 && !send_text(fds[i], "1000 wait\n")) {
			close(fds[i]);
			fds[i] = -1;
		}
	deadline = start / 1000 + CONCURRENT_MS + scaled_ms(CONCURRENT_SLACK_MS);
	while (done < connected && now_ms() < deadline + scaled_ms(SAFETY_MS)) {
		int k = 0, map[CONCURRENT];

		for (int i = 0; i < CONCURRENT; i++)
			if (fds[i] != -1 && !answered[i]) {
				p[k] = (struct pollfd){ fds[i], POLLIN, 0 };
				map[k++] = i;
			}
		if (k == 0 || poll(p, (nfds_t)k, 100) <= 0)
			continue;
		for (int j = 0; j < k; j++) {
			char got[32];

			if (!p[j].revents)
				continue;
			answered[map[j]] = true;
			if (recv(fds[map[j]], got, sizeof got, 0) > 0) {
				done++;
				last_us = now_us() - start;
				early += last_us < CONCURRENT_MS * 1000;
			}
		}
	}
	if (!ok(connected == CONCURRENT && done == CONCURRENT && !early &&
		last_us <= (CONCURRENT_MS + scaled_ms(CONCURRENT_SLACK_MS)) * 1000,
		"%d clients each waiting 1 s at once: all answered, none early, "
		"within 1 s and %ld ms of slack", CONCURRENT,
		scaled_ms(CONCURRENT_SLACK_MS)))
		diag("%d connected, %d answered (%d early), the last after %lld us",
		     connected, done, early, last_us);
	close_all(fds, CONCURRENT);
}

/* ---- head-of-line blocking ---- */

static void case_head_of_line(unsigned short port)
{
	char heavy[HEAVY_LINES * 16] = "", got[512];
	bool one_loop = (tags.readiness || tags.completion) && !tags.threads;
	int a, b;
	bool light_first = false, order_seen = false;

	if (!one_loop && !tags.offload) {
		skip(1, "neither one thread for every connection nor [offload]: "
		     "connections are served apart");
		return;
	}
	for (int i = 0; i < HEAVY_LINES; i++)
		strcat(heavy, HEAVY_N " 1\n");
	a = tcp_connect(port);
	b = tcp_connect(port);
	/* Once the first heavy reply is out, the second is being computed. */
	if (a != -1 && b != -1 && send_text(a, heavy) &&
	    read_lines(a, got, sizeof got, 1, SAFETY_MS) > 0) {
		struct pollfd p[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };

		sleep_ms(20);
		send_text(b, "1 0\n");
		if (poll(p, 2, (int)scaled_ms(SAFETY_MS)) > 0) {
			order_seen = true;
			light_first = (p[1].revents & POLLIN) && !(p[0].revents & POLLIN);
		}
	}
	if (one_loop)
		ok(order_seen && !light_first, "one thread for every connection: "
		   "a light request sent while a heavy one computes is answered "
		   "after it (head-of-line blocking)");
	else
		ok(order_seen && light_first, "[offload]: a light request sent while "
		   "a heavy one computes is answered first");
	close(a);
	close(b);
}

/* ---- clients that leave with a request pending ---- */

static long private_kib(pid_t pid)
{
	long anon = proc_field(pid, "smaps_rollup", "Pss_Anon:");

	return anon >= 0 ? anon : proc_field(pid, "status", "VmRSS:");
}

/* LEAVERS clients, in batches: each sends a request (a long wait to
 * delay, or some work) and closes at once. */
static int send_and_leave(unsigned short delay, unsigned short work)
{
	int left = 0;

	for (int i = 0; i < LEAVERS; i += LEAVER_BATCH) {
		int fds[LEAVER_BATCH];

		for (int j = 0; j < LEAVER_BATCH; j++) {
			bool waits = (i + j) % 2 == 0;

			fds[j] = tcp_connect(waits ? delay : work);
			if (fds[j] != -1 &&
			    send_text(fds[j], waits ? "60000 never\n" : "1000000 1\n"))
				left++;
		}
		close_all(fds, LEAVER_BATCH);
	}
	return left;
}

static void case_leavers(struct muxd_server *srv, unsigned short delay,
			 unsigned short work)
{
	struct proc_counts base, after = { 0, 0, 0, 0 };
	long long deadline;
	long mem_before, mem_after;
	int left, allowance = 0;
	bool back = false;

	proc_counts_settled(srv->pid, SAFETY_MS, &base);
	mem_before = private_kib(srv->pid);
	left = send_and_leave(delay, work);
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	while (!back && now_ms() < deadline) {
		sleep_ms(100);
		after.fds = proc_fd_count(srv->pid);
		after.threads = proc_thread_count(srv->pid);
		after.kids = live_children(srv->pid);
		/* A pool that grew may keep a descriptor per worker more. */
		allowance = tags.pool && after.kids > base.kids
			? after.kids - base.kids : 0;
		back = after.fds <= base.fds + allowance &&
		       after.threads <= base.threads &&
		       (tags.pool || after.kids <= base.kids) &&
		       zombie_children(srv->pid) == 0;
	}
	if (!ok(left == LEAVERS && back, "%d clients leave while their request "
		"waits or works: muxd's descriptors, threads and children are "
		"back", LEAVERS)) {
		diag("%d sent and left; %d fds (%d), %d threads (%d), %d children "
		     "(%d)", left, after.fds, base.fds, after.threads, base.threads,
		     after.kids, base.kids);
		diag_proc_fds(srv->pid);
	}
	mem_after = private_kib(srv->pid);
	diag("muxd's memory: %ld KiB before, %ld KiB after", mem_before, mem_after);
	if (muxd_instrumented(srv->pid))
		skip(1, "muxd runs under valgrind or a sanitizer");
	else
		ok(mem_after <= mem_before + LEAVERS_KEPT_KIB, "... and its memory "
		   "is back within %d KiB", LEAVERS_KEPT_KIB);
	ok(served_again(muxd_port(srv, "upper")), "... and it serves a new client");
}

int main(int argc, char **argv)
{
	static const char *const services[] = { "work", "delay", "upper", NULL };
	const char *const options[] = { "--max-conns", "4096", NULL };
	struct muxd_server srv;
	unsigned short work, delay;

	/* 1,000 clients at once, and muxd holding as many. */
	raise_own_nofile(4096);
	extra_args = engine_under_test(argc, argv, &tags);
	engine = argv[1];
	if (muxd_start_engine(&srv, engine, extra_args, options, services) < 0)
		bail_out("muxd --engine %s did not start", engine);
	work = muxd_port(&srv, "work");
	delay = muxd_port(&srv, "delay");
	case_work(work);
	cases_bad_input(work, delay);
	case_delay_times(delay);
	case_never_early(delay);
	case_zero_waits(delay);
	case_concurrent(delay);
	case_head_of_line(work);
	case_leavers(&srv, delay, work);
	ok(muxd_stop(&srv, SAFETY_MS) == 0 && exit_code_of(srv.wait_status) == 0,
	   "SIGTERM: exit 0");
	return done_testing();
}
