/* muxbench.c -- the load generator against a real muxd.
 *
 * One muxd (epoll-lt) serves upper, echo and stamp; muxbench ($MUXBENCH)
 * runs against it in each mode for one second with --json, and the JSON
 * is parsed strictly (one object on one line, every documented key) and
 * checked against what muxbench(1) promises: work done and verified, no
 * errors on a correct server, errors counted by kind when the server is
 * wrong (wrong), absent (connect), closes (eof) or resets (reset), the
 * server's CPU and memory, the exit statuses, the progress lines. (A
 * timeout takes 5 s of silence to provoke, and is left to manual runs.)
 *
 * The delay and work modes, and --rate's open loop, run against a server
 * of known behaviour (backend.c): its replies come exactly when the
 * contract says, it can be paused with SIGSTOP, and it can lie. Started
 * by one line in main, it can be a muxd serving delay and work instead.
 *
 * Every muxbench run is bounded (BENCH_LIMIT_MS, scaled by
 * MUXD_TEST_TIMEOUT_MULT) and killed beyond it, so a hang fails a case
 * instead of the harness.
 */
#include "backend.h"
#include "harness.h"
#include "tap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#define BENCH_LIMIT_MS 20000
#define OUT_MAX 8192
#define JSON_MAX 128

/* ---- running muxbench ---- */

struct bench {
	pid_t pid;
	int out_fd, err_fd;	/* -1 once at EOF */
	char out[OUT_MAX], err[OUT_MAX];
	size_t out_len, err_len;
	int status;		/* wait status, once reaped */
};

static const char *bench_path(void)
{
	const char *path = getenv("MUXBENCH");

	if (!path || !*path)
		bail_out("MUXBENCH is not set: export the absolute path of "
			 "src/muxbench");
	return path;
}

/* Between fork and exec: async-signal-safe calls only. */
static _Noreturn void exec_bench(const char *const argv[], int out, int err)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	sigaction(SIGPIPE, &dfl, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
		_exit(127);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static void bench_spawn(struct bench *b, const char *const args[])
{
	const char *argv[32];
	char line[1024];
	int out[2], err[2], n = 0;
	size_t used;

	argv[n++] = bench_path();
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	used = (size_t)snprintf(line, sizeof line, "running: muxbench");
	for (int i = 1; i < n && used < sizeof line; i++)
		used += (size_t)snprintf(line + used, sizeof line - used, " %s",
					 argv[i]);
	diag("%s", line);
	*b = (struct bench){ .pid = -1 };
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		bail_out("pipe2: %s", strerror(errno));
	fflush(stdout);
	b->pid = fork();
	if (b->pid == 0)
		exec_bench(argv, out[1], err[1]);
	if (b->pid < 0)
		bail_out("fork: %s", strerror(errno));
	close(out[1]);
	close(err[1]);
	b->out_fd = out[0];
	b->err_fd = err[0];
}

/* Read what is ready on fd into buf; -1 at EOF (fd is then closed). */
static int drain(int fd, char *buf, size_t *len)
{
	char scrap[4096];
	ssize_t n;

	if (*len < OUT_MAX - 1)
		n = read(fd, buf + *len, OUT_MAX - 1 - *len);
	else
		n = read(fd, scrap, sizeof scrap);	/* keep the start only */
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return fd;
	if (n <= 0) {
		close(fd);
		return -1;
	}
	if (*len < OUT_MAX - 1)
		*len += (size_t)n;
	buf[*len] = '\0';
	return fd;
}

/* Read both outputs until both end or, if want is given, until standard
 * error holds it. false at the deadline. */
static bool bench_pump(struct bench *b, long long deadline, const char *want)
{
	while (b->out_fd >= 0 || b->err_fd >= 0) {
		struct pollfd p[2] = { { b->out_fd, POLLIN, 0 },
				       { b->err_fd, POLLIN, 0 } };
		long long left = deadline - now_ms();

		if (want && strstr(b->err, want))
			return true;
		if (left <= 0)
			return false;
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			bail_out("poll: %s", strerror(errno));
		if (p[0].revents)
			b->out_fd = drain(b->out_fd, b->out, &b->out_len);
		if (p[1].revents)
			b->err_fd = drain(b->err_fd, b->err, &b->err_len);
	}
	return !want || strstr(b->err, want);
}

/* Collect the rest and reap; a run past the deadline is killed. Returns
 * the exit code, or -1 (said why) if it did not exit normally. */
static int bench_finish(struct bench *b, long long deadline)
{
	char why[64];

	if (!bench_pump(b, deadline, NULL)) {
		diag("muxbench still running after %ld ms: SIGKILL",
		     scaled_ms(BENCH_LIMIT_MS));
		kill(b->pid, SIGKILL);
	}
	if (b->out_fd >= 0)
		close(b->out_fd);
	if (b->err_fd >= 0)
		close(b->err_fd);
	while (waitpid(b->pid, &b->status, 0) < 0 && errno == EINTR)
		;
	if (exit_code_of(b->status) < 0)
		diag("muxbench ended with %s",
		     describe_status(b->status, why, sizeof why));
	return exit_code_of(b->status);
}

static int bench_run(struct bench *b, const char *const args[])
{
	bench_spawn(b, args);
	return bench_finish(b, now_ms() + scaled_ms(BENCH_LIMIT_MS));
}

static void diag_outputs(const struct bench *b)
{
	diag("exit: %d\nstdout: %s\nstderr: %s", exit_code_of(b->status),
	     b->out, b->err);
}

/* ---- a strict reader for the JSON muxbench prints ---- */

/* One number or string, by its dotted path ("errors.total"). */
struct json_field {
	char path[64];
	bool is_string;
	double number;
	char text[64];
};

struct json {
	struct json_field f[JSON_MAX];
	int n;
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *parse_string(const char *p, char *out, size_t size)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && !*++p)
			return NULL;
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (n + 1 < size)
			out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

static const char *skip_digits(const char *p)
{
	if (!isdigit((unsigned char)*p))
		return NULL;
	while (isdigit((unsigned char)*p))
		p++;
	return p;
}

/* JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *parse_number(const char *p, double *out)
{
	const char *start = p;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (!(p = skip_digits(p)))
		return NULL;
	if (*p == '.' && !(p = skip_digits(p + 1)))
		return NULL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(p = skip_digits(p)))
			return NULL;
	}
	*out = strtod(start, NULL);
	return p;
}

static const char *parse_value(struct json *j, const char *p,
			       const char *path, int depth);

static const char *parse_object(struct json *j, const char *p,
				const char *path, int depth)
{
	if (*p != '{' || depth > 3)
		return NULL;
	p = skip_ws(p + 1);
	if (*p == '}')
		return p + 1;
	for (;;) {
		char key[64], sub[160];

		if (!(p = parse_string(skip_ws(p), key, sizeof key)))
			return NULL;
		p = skip_ws(p);
		if (*p++ != ':')
			return NULL;
		snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
		if (!(p = parse_value(j, skip_ws(p), sub, depth + 1)))
			return NULL;
		p = skip_ws(p);
		if (*p == '}')
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *parse_value(struct json *j, const char *p,
			       const char *path, int depth)
{
	struct json_field *f;

	if (*p == '{')
		return parse_object(j, p, path, depth);
	if (j->n == JSON_MAX)
		return NULL;
	f = &j->f[j->n];
	snprintf(f->path, sizeof f->path, "%s", path);
	f->is_string = *p == '"';
	p = f->is_string ? parse_string(p, f->text, sizeof f->text)
			 : parse_number(p, &f->number);
	if (p)
		j->n++;
	return p;
}

/* All of text must be one object on one line, then the newline. */
static bool json_parse(const char *text, struct json *j)
{
	const char *end;

	j->n = 0;
	end = parse_object(j, text, "", 0);
	return end && strcmp(end, "\n") == 0;
}

static const struct json_field *json_get(const struct json *j,
					 const char *path)
{
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->f[i].path, path) == 0)
			return &j->f[i];
	return NULL;
}

/* The number at path; NAN (which fails every comparison) if absent. */
static double num(const struct json *j, const char *path)
{
	const struct json_field *f = json_get(j, path);

	return f && !f->is_string ? f->number : (double)NAN;
}

static const char *const json_keys[] = {
	"mode", "host", "port", "connections", "size", "threads", "duration_s",
	"messages", "messages_per_s", "bytes", "mb_per_s", "connects",
	"connects_per_s", "rate.target", "rate.late", "rate.late_max_us",
	"rate.unanswered", "delay_ms", "latency_us.p50", "latency_us.p90",
	"latency_us.p99", "latency_us.p999", "latency_us.p9999",
	"latency_us.max", "errors.total", "errors.connect",
	"errors.reset", "errors.eof", "errors.wrong", "errors.timeout", "open",
	"cpu.user_s", "cpu.sys_s", "cpu.pct", "server.cpu_s", "server.rss_kib",
	"server.pss_kib", "server.rss_before_kib", "server.pss_before_kib", NULL,
};

/* One test: stdout is one JSON object with every key, for this mode. */
static bool json_ok(const struct bench *b, const char *mode, struct json *j)
{
	const struct json_field *m;
	bool parsed = json_parse(b->out, j), all = parsed;

	for (size_t i = 0; parsed && json_keys[i]; i++)
		if (!json_get(j, json_keys[i])) {
			diag("key %s is missing", json_keys[i]);
			all = false;
		}
	m = json_get(j, "mode");
	if (!ok(all && m && strcmp(m->text, mode) == 0,
		"%s: stdout is one JSON object with every key", mode)) {
		diag_outputs(b);
		return false;
	}
	return true;
}

/* ---- the cases ---- */

static struct muxd_server srv;
static char upper_port[8], echo_port[8], stamp_port[8], server_pid[16];

static bool near(double got, double want, double slack)
{
	return got >= want - slack && got <= want + slack;
}

/* Rates are per second of the measured interval the JSON gives. */
static void check_rate(const struct json *j, const char *count,
		       const char *rate, double scale, const char *label)
{
	double want = num(j, count) / num(j, "duration_s") / scale;

	if (!ok(near(num(j, rate), want, want * 0.005 + 0.05),
		"%s: %s is %s over duration_s", label, rate, count))
		diag("%s %.2f, expected %.2f", rate, num(j, rate), want);
}

/* Client sockets to the port in TIME_WAIT, from /proc/net/tcp: the local
 * side is muxbench's, the remote one the server's port. Earlier tests'
 * clients of another server that had the same port may still be there,
 * so cases compare the count before and after a run. (A pingpong run
 * shows nothing either way: a reply always in flight when muxbench
 * closes makes the kernel reset the connection.) */
static int client_time_waits(const char *port_text)
{
	unsigned port = (unsigned)strtoul(port_text, NULL, 10);
	FILE *f = fopen("/proc/net/tcp", "re");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned rem_port, state;

		if (sscanf(line, " %*d: %*x:%*x %*x:%x %x", &rem_port, &state) == 2 &&
		    rem_port == port && state == 0x06)
			n++;
	}
	fclose(f);
	return n;
}

static void case_pingpong(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", upper_port,
			       "-c", "4", "--server-pid", server_pid,
			       "pingpong", NULL };
	struct bench b;
	struct json j;
	int code = bench_run(&b, args);

	if (!is_int(code, 0, "pingpong: exit status 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "pingpong", &j)) {
		skip(6, "no JSON");
		return;
	}
	ok(num(&j, "messages") > 0, "pingpong: messages > 0");
	ok(num(&j, "errors.total") == 0 && num(&j, "open") == 4,
	   "pingpong: no errors, 4 connections open");
	ok(num(&j, "latency_us.p50") <= num(&j, "latency_us.p99") &&
	   num(&j, "latency_us.p99") <= num(&j, "latency_us.max") &&
	   num(&j, "latency_us.max") > 0, "pingpong: latency p50 <= p99 <= max");
	check_rate(&j, "messages", "messages_per_s", 1, "pingpong");
	ok(num(&j, "bytes") == 64 * num(&j, "messages"),
	   "pingpong: bytes are 64 per message");
	if (!ok(num(&j, "server.cpu_s") > 0, "pingpong: --server-pid: cpu_s > 0"))
		diag("%s", b.out);
}

static void case_stream(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", upper_port,
			       "-c", "2", "stream", NULL };
	struct bench b;
	struct json j;
	double slack;

	if (!is_int(bench_run(&b, args), 0, "stream: exit status 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "stream", &j)) {
		skip(4, "no JSON");
		return;
	}
	ok(num(&j, "bytes") > 0 && num(&j, "errors.total") == 0,
	   "stream: bytes > 0, no errors");
	check_rate(&j, "bytes", "mb_per_s", 1e6, "stream");
	/* Chunks at the edges of the interval are partly counted in bytes. */
	slack = 2 * 2 * 4 * 16384;
	ok(near(num(&j, "messages") * 16384, num(&j, "bytes"), slack),
	   "stream: messages are the 16384-byte chunks echoed");
	ok(num(&j, "server.cpu_s") == 0 && num(&j, "server.rss_kib") == 0 &&
	   num(&j, "server.pss_kib") == 0, "stream: no --server-pid, server all 0");
}

static void case_connrate(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", stamp_port,
			       "-c", "4", "connrate", NULL };
	int time_waits = client_time_waits(stamp_port);
	struct bench b;
	struct json j;

	if (!is_int(bench_run(&b, args), 0, "connrate: exit status 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "connrate", &j)) {
		skip(4, "no JSON");
		return;
	}
	ok(num(&j, "connects") > 0 && num(&j, "errors.total") == 0,
	   "connrate: connects > 0, no errors");
	check_rate(&j, "connects", "connects_per_s", 1, "connrate");
	ok(num(&j, "latency_us.p50") <= num(&j, "latency_us.max") &&
	   num(&j, "latency_us.max") > 0, "connrate: latency p50 <= max");
	ok(client_time_waits(stamp_port) <= time_waits,
	   "connrate: the server closes first, no TIME_WAIT on this side");
}

/* While the connections are held, muxd really has them. */
static void case_idle(void)
{
	const char *args[] = { "--json", "-d", "3", "-p", upper_port, "-c", "50",
			       "--server-pid", server_pid, "idle", NULL };
	const char *line = "muxbench: idle: 50 connections open\n";
	long long deadline = now_ms() + scaled_ms(BENCH_LIMIT_MS);
	int time_waits = client_time_waits(upper_port);
	struct bench b;
	struct json j;
	bool announced;
	int held = -1;

	bench_spawn(&b, args);
	announced = bench_pump(&b, deadline, line);
	/* muxbench counts a connection open when its connect completes,
	 * which can be before a loaded muxd has accepted it: look again
	 * while muxbench holds them (3 s). */
	for (long long until = now_ms() + 2500; announced && held != 50 &&
	     now_ms() < until; sleep_ms(20))
		held = proc_tcp_fd_count(srv.pid) - srv.nlisteners;
	if (!is_int(bench_finish(&b, deadline), 0, "idle: exit status 0"))
		diag_outputs(&b);
	ok(announced, "idle: says '%.35s' on stderr", line);
	is_int(held, 50, "idle: muxd holds 50 connections meanwhile");
	ok(client_time_waits(upper_port) <= time_waits,
	   "idle: closed with a reset, no TIME_WAIT left behind");
	if (!json_ok(&b, "idle", &j)) {
		skip(2, "no JSON");
		return;
	}
	ok(num(&j, "open") == 50 && num(&j, "errors.total") == 0,
	   "idle: open is 50, no errors");
	ok(num(&j, "server.rss_kib") > 0 && num(&j, "server.pss_kib") > 0,
	   "idle: --server-pid: rss_kib and pss_kib > 0");
	if (!ok(num(&j, "server.pss_before_kib") > 0 &&
		num(&j, "server.rss_before_kib") > 0 &&
		num(&j, "server.pss_before_kib") <= num(&j, "server.pss_kib"),
		"idle: --server-pid: memory before the first connection, "
		"0 < pss_before_kib <= pss_kib"))
		diag("%s", b.out);
}

/* --server-stats against a muxd --stats of its own: the two SIGUSR1
 * snapshots bracket the measured interval, so the bytes muxd counted
 * between them are (about) the bytes muxbench verified meanwhile. muxd
 * prints each line when its loop next drains the signal, a moment after
 * the signal: hence the slack. */
static void case_server_stats(void)
{
	const char *const extra[] = { "--stats", NULL }, *const none[] = { NULL };
	const char *const services[] = { "upper", NULL };
	char port[8], pid[16];
	const char *args[] = { "--json", "-d", "1", "-w", "0.2", "-p", port,
			       "-c", "4", "--server-pid", pid, "--server-stats",
			       "pingpong", NULL };
	FILE *log = tmpfile();
	struct muxd_server own;
	long long deadline, bytes, reads;
	struct bench b;
	struct json j;

	if (!log || muxd_start_engine_logged(&own, "epoll-lt", extra, none,
					     services, log) < 0) {
		ok(false, "--server-stats: a muxd --stats starts");
		skip(2, "no server");
		return;
	}
	snprintf(port, sizeof port, "%u", muxd_port(&own, "upper"));
	snprintf(pid, sizeof pid, "%d", (int)own.pid);
	if (!is_int(bench_run(&b, args), 0, "--server-stats: exit status 0") ||
	    !json_parse(b.out, &j)) {
		diag_outputs(&b);
		skip(2, "no JSON");
		muxd_stop(&own, 5000);
		fclose(log);
		return;
	}
	deadline = now_ms() + scaled_ms(BENCH_LIMIT_MS);	/* only if hung */
	while (stats_lines(log) < 2 && now_ms() < deadline)
		sleep_ms(20);
	ok(stats_lines(log) == 2, "--server-stats: muxd printed two stats lines");
	bytes = stats_value(log, 2, "bytes_in") - stats_value(log, 1, "bytes_in");
	reads = stats_value(log, 2, "sys_read") - stats_value(log, 1, "sys_read");
	if (!ok(num(&j, "bytes") > 0 &&
		near((double)bytes, num(&j, "bytes"), 0.1 * num(&j, "bytes")) &&
		(double)reads >= 0.9 * num(&j, "messages"),
		"--server-stats: between them, muxd's bytes_in is muxbench's bytes "
		"(within 10%%), with a read or more per message"))
		diag("muxd: %lld bytes in %lld reads; muxbench: %.0f bytes, %.0f "
		     "messages", bytes, reads, num(&j, "bytes"), num(&j, "messages"));
	muxd_stop(&own, 5000);
	fclose(log);
}

/* Lowercase payload, expected upper, sent to echo: every reply is
 * wrong, and each connection is reset and opened again. */
static void case_wrong(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", echo_port,
			       "-c", "4", "--expect", "upper", "pingpong", NULL };
	struct bench b;
	struct json j;

	if (!is_int(bench_run(&b, args), 1, "wrong replies: exit status 1"))
		diag_outputs(&b);
	if (!json_ok(&b, "pingpong", &j)) {
		skip(2, "no JSON");
		return;
	}
	ok(num(&j, "errors.wrong") > 0 &&
	   num(&j, "errors.total") == num(&j, "errors.wrong") &&
	   num(&j, "messages") == 0, "wrong replies: counted in errors.wrong");
	ok(num(&j, "errors.wrong") >= 8,
	   "wrong replies: connections are opened again (%g wrong from 4)",
	   num(&j, "errors.wrong"));
}

static void case_echo(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", echo_port,
			       "-c", "2", "--expect", "echo", "pingpong", NULL };
	struct bench b;
	struct json j;

	if (!is_int(bench_run(&b, args), 0, "--expect echo: exit status 0"))
		diag_outputs(&b);
	if (json_ok(&b, "pingpong", &j))
		ok(num(&j, "messages") > 0 && num(&j, "errors.total") == 0,
		   "--expect echo: messages > 0, no errors");
	else
		skip(1, "no JSON");
}

/* A TCP socket on 127.0.0.1 and a free port, listening if asked; the
 * port as text in port[8]. */
static int loopback_socket(bool listening, char port[8])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    (listening && listen(fd, 64) < 0) ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		bail_out("a loopback socket: %s", strerror(errno));
	snprintf(port, 8, "%u", ntohs(a.sin_port));
	return fd;
}

/* A port bound but not listening refuses every connection: muxbench
 * says so at once, without waiting out its 3 s of warm-up and 5 s of
 * measurement, in a mode with a set-up and in connrate, which has none. */
static void refused_case(const char *mode)
{
	char port[8];
	int fd = loopback_socket(false, port);
	const char *args[] = { "--json", "-d", "5", "-w", "3", "-p", port,
			       "-c", "2", mode, NULL };
	long long start = now_ms(), took;
	struct bench b;
	struct json j;

	if (!is_int(bench_run(&b, args), 1, "refused %s: exit status 1, no crash",
		    mode))
		diag_outputs(&b);
	took = now_ms() - start;
	close(fd);
	if (!ok(took < 5000 && strstr(b.err, "Connection refused"),
		"refused %s: says 'Connection refused' at once, not after 8 s",
		mode))
		diag("%lld ms; stderr: %s", took, b.err);
	if (!json_ok(&b, mode, &j)) {
		skip(1, "no JSON");
		return;
	}
	ok(num(&j, "errors.connect") > 0 && num(&j, "open") == 0,
	   "refused %s: errors.connect > 0, nothing open", mode);
}

static void case_refused(void)
{
	refused_case("pingpong");
	refused_case("connrate");
}

/* A second muxd closes connections idle for 1 s: end-of-file from the
 * server, counted as eof, on each connection and again after each
 * re-open. */
static void case_eof(void)
{
	const char *const services[] = { "upper", NULL };
	const char *const options[] = { "--idle-timeout", "1", NULL };
	struct muxd_server closer;
	char port[8];
	/* 3 s: room for a loaded machine to run the 1 s timeout in time */
	const char *args[] = { "--json", "-d", "3", "-p", port, "-c", "2",
			       "idle", NULL };
	struct bench b;
	struct json j;

	if (muxd_start_engine(&closer, "epoll-lt", NULL, options, services) < 0)
		bail_out("muxd --idle-timeout 1 did not start");
	snprintf(port, sizeof port, "%u", muxd_port(&closer, "upper"));
	if (!is_int(bench_run(&b, args), 1, "eof: exit status 1"))
		diag_outputs(&b);
	muxd_stop(&closer, 5000);
	if (!json_ok(&b, "idle", &j)) {
		skip(1, "no JSON");
		return;
	}
	ok(num(&j, "errors.eof") >= 2 &&
	   num(&j, "errors.total") == num(&j, "errors.eof"),
	   "eof: connections the server closed are counted in errors.eof");
}

/* The child: accept and reset at once, until killed. */
static _Noreturn void reset_forever(int listener)
{
	struct linger hard = { .l_onoff = 1, .l_linger = 0 };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		int fd = accept(listener, NULL, NULL);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
		close(fd);
	}
}

/* Connections that are accepted, then reset: errors.reset, and never
 * errors.connect, since every connect succeeded. */
static void case_reset(void)
{
	char port[8];
	int fd = loopback_socket(true, port);
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", port,
			       "-c", "2", "pingpong", NULL };
	struct bench b;
	struct json j;
	pid_t child;

	fflush(stdout);
	child = fork();
	if (child == 0)
		reset_forever(fd);
	close(fd);
	if (child < 0)
		bail_out("fork: %s", strerror(errno));
	if (!is_int(bench_run(&b, args), 1, "reset: exit status 1"))
		diag_outputs(&b);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (!json_ok(&b, "pingpong", &j)) {
		skip(1, "no JSON");
		return;
	}
	ok(num(&j, "errors.reset") > 0 && num(&j, "errors.connect") == 0 &&
	   num(&j, "errors.total") == num(&j, "errors.reset"),
	   "reset: connections reset by the server are counted in errors.reset");
}

/* Exit 2, nothing on stdout, one "muxbench: " line naming the value. */
static void usage_case(const char *name, const char *word,
		       const char *const args[])
{
	struct bench b;
	int code = bench_run(&b, args);
	const char *nl = strchr(b.err, '\n');
	bool one_line = nl && nl[1] == '\0';

	if (!ok(code == 2 && b.out_len == 0 && one_line &&
		strncmp(b.err, "muxbench: ", 10) == 0 && strstr(b.err, word),
		"usage: %s exits 2 naming %s", name, word))
		diag_outputs(&b);
}

/* Lines of text that contain word. */
static int lines_with(const char *text, const char *word)
{
	int n = 0;

	for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
		n++;
	return n;
}

/* --progress-interval: progress lines on standard error, the elapsed time
 * in tenths; it implies --progress, which is otherwise off for a pipe. */
static void case_progress_interval(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", upper_port,
			       "--progress-interval", "0.25", "pingpong", NULL };
	const char *bad[] = { "-p", "1", "--progress-interval", "0", "pingpong",
			      NULL };
	struct bench b;
	int code = bench_run(&b, args);

	/* One line at least: how many depends on the machine's load. */
	if (!ok(code == 0 && lines_with(b.err, " messages/s, ") >= 1 &&
		strstr(b.err, "muxbench: 0.") != NULL,
		"--progress-interval 0.25: progress lines, with tenths of seconds"))
		diag_outputs(&b);
	usage_case("a zero --progress-interval", "'0'", bad);
}

static void case_usage(void)
{
	const char *mode[] = { "-p", "1", "bogus", NULL };
	const char *number[] = { "-p", "1", "-c", "12x", "pingpong", NULL };
	const char *seconds[] = { "-p", "1", "-d", "0", "pingpong", NULL };
	const char *port[] = { "-c", "2", "pingpong", NULL };
	const char *stats[] = { "-p", "1", "--server-stats", "pingpong", NULL };
	const char *help[] = { "--help", NULL };
	struct bench b;

	usage_case("a bad mode", "'bogus'", mode);
	usage_case("a bad number", "'12x'", number);
	usage_case("a zero duration", "'0'", seconds);
	usage_case("no --port", "--port", port);
	usage_case("--server-stats alone", "--server-pid", stats);
	ok(bench_run(&b, help) == 0 && strstr(b.out, "pingpong") &&
	   strstr(b.out, "stream") && strstr(b.out, "connrate") &&
	   strstr(b.out, "idle") && strstr(b.out, "delay") &&
	   strstr(b.out, "work"), "--help exits 0 and names the modes");
}

static void case_usage_requests(void)
{
	const char *rate[] = { "-p", "1", "--rate", "100", "stream", NULL };
	const char *zero[] = { "-p", "1", "--rate", "0", "pingpong", NULL };
	const char *delay[] = { "-p", "1", "--delay-ms", "60001", "delay", NULL };
	const char *where[] = { "-p", "1", "--delay-ms", "5", "work", NULL };
	const char *mix[] = { "-p", "1", "--work-mix", "100:99,5000", "work", NULL };
	const char *twice[] = { "-p", "1", "--work-mix", "100:1,100:2", "work",
				NULL };
	const char *big[] = { "-p", "1", "--work-mix", "100000001:1", "work",
			      NULL };

	usage_case("--rate with stream", "stream", rate);
	usage_case("--rate 0", "'0'", zero);
	usage_case("--delay-ms past 60000", "'60001'", delay);
	usage_case("--delay-ms with work", "work", where);
	usage_case("a --work-mix size without weight", "'100:99,5000'", mix);
	usage_case("a --work-mix size twice", "twice", twice);
	usage_case("a --work-mix size past 10^8", "'100000001'", big);
}

/* ---- the open loop, and the request services ---- */

static struct muxd_server backend;
static char delay_port[8], work_port[8];

static bool latency_ordered(const struct json *j, const char *prefix)
{
	static const char *const q[] = { "p50", "p90", "p99", "p999", "p9999",
					 "max" };
	char path[96];
	double last = 0;

	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		snprintf(path, sizeof path, "%slatency_us.%s", prefix, q[i]);
		if (!(num(j, path) >= last))
			return false;
		last = num(j, path);
	}
	return last > 0;
}

/* Requests go out on a schedule: the answered rate is the one asked,
 * pipelined behind the replies still owed. */
static void case_rate_pingpong(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0.2", "-p", upper_port,
			       "-c", "5", "--rate", "500", "pingpong", NULL };
	struct bench b;
	struct json j;

	if (!is_int(bench_run(&b, args), 0, "--rate pingpong: exit status 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "pingpong", &j)) {
		skip(2, "no JSON");
		return;
	}
	/* replies still in flight at either end of the interval, on a
	 * loaded machine, make the slack */
	if (!ok(num(&j, "rate.target") == 500 &&
		near(num(&j, "messages_per_s"), 475, 75),
		"--rate 500 pingpong: 500 asked, 400 to 550 answered a second"))
		diag("%s", b.out);
	ok(latency_ordered(&j, "") && num(&j, "errors.total") == 0,
	   "--rate pingpong: p50 <= p90 <= p99 <= p99.9 <= p99.99 <= max, "
	   "no errors");
}

/* delay 50 at a rate far below what 4 connections carry: each reply
 * comes 50 ms after its request was due, plus a loaded machine's wake-up. */
static void case_delay_rate(void)
{
	const char *args[] = { "--json", "-d", "2", "-w", "0.3", "-p", delay_port,
			       "-c", "4", "--rate", "20", "--delay-ms", "50",
			       "delay", NULL };
	struct bench b;
	struct json j;
	double p50;

	if (!is_int(bench_run(&b, args), 0, "delay 50 at 20/s: exit status 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "delay", &j)) {
		skip(2, "no JSON");
		return;
	}
	p50 = num(&j, "latency_us.p50") / 1000;
	if (!ok(p50 >= 49 && p50 <= 50 + scaled_ms(8),
		"delay 50 at 20/s: p50 %.1f ms, within a few ms of 50", p50))
		diag("%s", b.out);
	ok(num(&j, "delay_ms") == 50 && num(&j, "errors.total") == 0 &&
	   near(num(&j, "messages_per_s"), 20, 4),
	   "delay 50 at 20/s: delay_ms 50, no errors, about 20 replies a second");
}

/* Closed loops: each connection waits for its reply, which is never
 * sooner than the milliseconds asked. */
static void case_delay_closed(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", delay_port,
			       "-c", "3", "--delay-ms", "20", "delay", NULL };
	struct bench b;
	struct json j;

	if (!is_int(bench_run(&b, args), 0, "delay 20, closed loops: exit 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "delay", &j)) {
		skip(1, "no JSON");
		return;
	}
	if (!ok(num(&j, "messages") > 0 && num(&j, "latency_us.p50") >= 20000 &&
		num(&j, "messages_per_s") <= 3 * 50 + 1 &&
		num(&j, "rate.target") == 0 && num(&j, "rate.late") == 0,
		"delay 20, closed loops: replies after 20 ms, at most 50 a "
		"second a connection, nothing scheduled"))
		diag("%s", b.out);
}

/* The server stops for a second in the middle of the run. An open loop
 * keeps the schedule: the requests due meanwhile wait and are sent late,
 * the latency shows the pause, and the rate answered stays the one asked. */
static void case_pause(void)
{
	const char *args[] = { "--json", "-d", "3", "-w", "0", "-p", delay_port,
			       "-c", "4", "--rate", "100", "--delay-ms", "10",
			       "delay", NULL };
	long long deadline = now_ms() + scaled_ms(BENCH_LIMIT_MS);
	long long stopped;
	struct bench b;
	struct json j;

	bench_spawn(&b, args);
	sleep_ms(800);
	kill(backend.pid, SIGSTOP);
	stopped = now_ms();
	sleep_ms(1000);
	kill(backend.pid, SIGCONT);
	diag("the server was stopped for %lld ms", now_ms() - stopped);
	if (!is_int(bench_finish(&b, deadline), 0, "paused server: exit status 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "delay", &j)) {
		skip(2, "no JSON");
		return;
	}
	if (!ok(num(&j, "latency_us.max") >= 1000000 && num(&j, "rate.late") > 0 &&
		num(&j, "rate.late_max_us") >= 500000,
		"paused server: max latency >= 1 s, requests sent late"))
		diag("%s", b.out);
	if (!ok(num(&j, "messages_per_s") >= 80,
		"paused server: the rate answered stays near the 100 asked"))
		diag("%s", b.out);
}

/* Two sizes, each reply checked against splitmix64, latency by size. */
static void case_work(void)
{
	const char *args[] = { "--json", "-d", "1", "-w", "0", "-p", work_port,
			       "-c", "2", "--work-mix", "1000:3,100000:1", "work",
			       NULL };
	struct bench b;
	struct json j;

	if (!is_int(bench_run(&b, args), 0, "work: exit status 0"))
		diag_outputs(&b);
	if (!json_ok(&b, "work", &j)) {
		skip(2, "no JSON");
		return;
	}
	ok(num(&j, "errors.total") == 0 &&
	   num(&j, "classes.1000.replies") + num(&j, "classes.100000.replies") ==
	   num(&j, "messages") && num(&j, "classes.100000.replies") > 0 &&
	   num(&j, "classes.1000.replies") > num(&j, "classes.100000.replies"),
	   "work: every reply right, counted by size, the light ones more often");
	if (!ok(num(&j, "classes.1000.weight") == 3 &&
		latency_ordered(&j, "classes.1000.") &&
		latency_ordered(&j, "classes.100000."),
		"work: each size has its weight and its latency percentiles"))
		diag("%s", b.out);
}

/* A server whose every reply is wrong: a work reply with a digit
 * changed, a delay reply sent at once instead of after the delay. */
static void case_lies(void)
{
	const char *work[] = { "--json", "-d", "0.5", "-w", "0", "-p", NULL,
			       "-c", "2", "--work-mix", "100:1", "work", NULL };
	const char *delay[] = { "--json", "-d", "0.5", "-w", "0", "-p", NULL,
				"-c", "2", "--delay-ms", "200", "delay", NULL };
	struct muxd_server liar;
	char wport[8], dport[8];
	struct bench b;
	struct json j;

	backend_start(&liar, true);
	snprintf(wport, sizeof wport, "%u", muxd_port(&liar, "work"));
	snprintf(dport, sizeof dport, "%u", muxd_port(&liar, "delay"));
	work[6] = wport;
	delay[6] = dport;
	if (!ok(bench_run(&b, work) == 1 && json_parse(b.out, &j) &&
		num(&j, "errors.wrong") > 0 && num(&j, "messages") == 0,
		"a wrong work reply: errors.wrong, exit status 1"))
		diag_outputs(&b);
	if (!ok(bench_run(&b, delay) == 1 && json_parse(b.out, &j) &&
		num(&j, "errors.wrong") > 0 && num(&j, "messages") == 0,
		"a delay reply sooner than asked: errors.wrong, exit status 1"))
		diag_outputs(&b);
	muxd_stop(&liar, 5000);
}

int main(void)
{
	const char *const services[] = { "upper", "echo", "stamp", NULL };
	const char *const options[] = { NULL };

	signal(SIGPIPE, SIG_IGN);
	bench_path();
	if (muxd_start_engine(&srv, "epoll-lt", NULL, options, services) < 0)
		bail_out("muxd did not start");
	snprintf(upper_port, sizeof upper_port, "%u", muxd_port(&srv, "upper"));
	snprintf(echo_port, sizeof echo_port, "%u", muxd_port(&srv, "echo"));
	snprintf(stamp_port, sizeof stamp_port, "%u", muxd_port(&srv, "stamp"));
	snprintf(server_pid, sizeof server_pid, "%d", (int)srv.pid);
	/* muxd serving delay and work: muxd_start_engine(&backend, "epoll-lt",
	 * NULL, options, (const char *[]){ "delay", "work", NULL }) */
	backend_start(&backend, false);
	snprintf(delay_port, sizeof delay_port, "%u", muxd_port(&backend, "delay"));
	snprintf(work_port, sizeof work_port, "%u", muxd_port(&backend, "work"));
	case_pingpong();
	case_progress_interval();
	case_stream();
	case_connrate();
	case_idle();
	case_server_stats();
	case_wrong();
	case_echo();
	case_refused();
	case_eof();
	case_reset();
	case_usage();
	case_usage_requests();
	case_rate_pingpong();
	case_delay_rate();
	case_delay_closed();
	case_pause();
	case_work();
	case_lies();
	ok(muxd_alive(&srv), "muxd is still serving");
	muxd_stop(&srv, 5000);
	muxd_stop(&backend, 5000);
	return done_testing();
}
