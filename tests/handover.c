/* handover.c -- sockets muxd is handed rather than opens: systemd socket
 * activation and --inetd, on every engine.
 *
 * usage: handover
 *
 * Socket activation is tested as systemd performs it, without systemd:
 * the test makes listening sockets, and muxd starts with them as
 * descriptors 3, 4, ... and LISTEN_PID (its own pid), LISTEN_FDS and
 * LISTEN_FDNAMES in its environment. Each engine must print a listening
 * line per socket, with the socket's own port, and serve on it. Engines
 * with --accept=reuseport serve a socket that has SO_REUSEPORT, and refuse
 * one without it, clearly. Then the refusals, once: a descriptor that is
 * not a listening TCP socket, a missing or unknown name, --listen with
 * activation, and a LISTEN_PID that is not muxd's (ignored, as the
 * protocol says). Where systemd-socket-activate is installed, each engine
 * is also started by it.
 *
 * The shipped examples (examples/) are run as written: muxd.service's
 * command line on a socket named as muxd.socket names it, and every
 * inetd.conf, xinetd and Accept=yes command line on a connection of its
 * own.
 *
 * --inetd: the test accepts a connection itself and starts muxd with it
 * on standard input and output, as inetd does. Each engine serves it and
 * exits 0 after the client's half-close. Then once: logs never reach the
 * client when standard error is the connection too (inetd hands it on 0,
 * 1 and 2), a one-shot service ends by itself, SIGTERM ends an idle one
 * within the grace period, and the refusals (not a socket, --listen);
 * a connection whose client reset before muxd started is no refusal: one
 * line, exit 0.
 */
#include "harness.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
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

/* For what must happen at some point: only a hung server takes this long,
 * so it is never the bound asserted. */
#define SAFETY_MS 30000
#define MAX_ENGINES 64

struct engine_row {
	char name[32];
	bool pool, reuseport;
};

/* A TCP socket on 127.0.0.1, port 0, listening unless told otherwise. */
static int tcp_socket(bool listening, bool reuseport)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    (listening && listen(fd, 128) < 0))
		bail_out("listening socket: %s", strerror(errno));
	return fd;
}

static unsigned short port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;

	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		bail_out("getsockname: %s", strerror(errno));
	return ntohs(a.sin_port);
}

/* A connected pair over loopback TCP: *client ours, the return value the
 * server side, as inetd's accept gives it. */
static int accepted_pair(int *client)
{
	int l = tcp_socket(true, false), s;

	*client = tcp_connect(port_of(l));
	s = *client < 0 ? -1 : accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		bail_out("loopback connection: %s", strerror(errno));
	close(l);
	return s;
}

static void read_engines(struct engine_row *rows, int *n)
{
	static struct engine_info all[MAX_ENGINES];

	*n = muxd_engines(all, MAX_ENGINES);
	for (int i = 0; i < *n; i++) {
		snprintf(rows[i].name, sizeof rows[i].name, "%s", all[i].name);
		rows[i].pool = engine_has_tag(&all[i], "pool");
		rows[i].reuseport = strstr(all[i].strategies, "reuseport") != NULL;
	}
}

/* "--engine NAME", a small pool for a [pool], then extra; NULL-ended. */
static void engine_args(const struct engine_row *e, const char *const extra[],
			const char **args)
{
	int n = 0;

	args[n++] = "--engine";
	args[n++] = e->name;
	if (e->pool) {
		args[n++] = "--workers";
		args[n++] = "4";
	}
	for (int i = 0; extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
}

static bool stamp_served(unsigned short port, char *why, size_t why_size)
{
	char got[64];
	enum read_end end;
	int fd = tcp_connect(port);
	size_t n = fd < 0 ? 0 : read_until_eof(fd, got, sizeof got - 1, SAFETY_MS, &end);

	if (fd >= 0)
		close(fd);
	got[n] = '\0';
	if (n >= 3 && strspn(got, "0123456789") == n - 2 &&
	    strcmp(got + n - 2, "\r\n") == 0)
		return true;
	snprintf(why, why_size, "stamp sent %zu bytes: '%.20s'", n, got);
	return false;
}

static bool listed_as(const struct muxd_server *srv, const char *service,
		      unsigned short port)
{
	for (int i = 0; i < srv->nlisteners; i++)
		if (strcmp(srv->listeners[i].service, service) == 0)
			return srv->listeners[i].port == port &&
			       strcmp(srv->listeners[i].address, "127.0.0.1") == 0;
	return false;
}

static const char *const upper_stamp_env[] = {
	"LISTEN_PID=", "LISTEN_FDS=2", "LISTEN_FDNAMES=upper:stamp", NULL
};

static void check_activation(const struct engine_row *e)
{
	int fds[2] = { tcp_socket(true, false), tcp_socket(true, false) };
	struct handover h = { .fds = fds, .n_fds = 2, .env = upper_stamp_env,
			      .stdio_fd = -1, .stderr_fd = -1 };
	const char *const none[] = { NULL };
	const char *args[16];
	struct muxd_server srv;
	char why[256] = "";
	int served = 0;

	engine_args(e, none, args);
	if (muxd_start_handed(&srv, args, &h, 2) != 0) {
		ok(false, "%s, socket-activated: starts with two listening lines", e->name);
		close_all(fds, 2);
		return;
	}
	ok(listed_as(&srv, "upper", port_of(fds[0])) &&
	   listed_as(&srv, "stamp", port_of(fds[1])),
	   "%s, socket-activated: a listening line per handed socket, "
	   "with its service, address and port", e->name);
	for (int i = 0; i < 3; i++) {
		int c = served_connection(port_of(fds[0]), SAFETY_MS, why, sizeof why);

		served += c >= 0;
		if (c >= 0)
			close(c);
	}
	ok(served == 3, "%s, socket-activated: upper served on descriptor 3%s%s",
	   e->name, why[0] ? ": " : "", why);
	ok(stamp_served(port_of(fds[1]), why, sizeof why),
	   "%s, socket-activated: stamp served on descriptor 4%s%s", e->name,
	   why[0] ? ": " : "", why);
	ok(muxd_stop(&srv, 10000) == 0 && exit_code_of(srv.wait_status) == 0,
	   "%s, socket-activated: exits 0 on SIGTERM", e->name);
	close_all(fds, 2);
}

/* Start muxd with h and no listening line expected; its exit status once
 * it ends (SAFETY_MS at most), its standard error in log. */
static int run_handed(const char *const args[], struct handover *h, FILE *log)
{
	struct muxd_server srv;

	h->stderr_fd = fileno(log);
	if (muxd_start_handed(&srv, args, h, 0) != 0)
		return -1;
	if (muxd_wait(&srv, SAFETY_MS) != 0)
		muxd_stop(&srv, 1000);
	close(srv.stdout_fd);
	return exit_code_of(srv.wait_status);
}

static bool log_says(FILE *log, const char *words)
{
	char text[2048];
	size_t n;

	fflush(log);
	rewind(log);
	n = fread(text, 1, sizeof text - 1, log);
	text[n] = '\0';
	if (strstr(text, words))
		return true;
	diag("wanted '%s' in muxd's log:\n%s", words, text);
	return false;
}

static void check_reuseport(const struct engine_row *e)
{
	const char *const extra[] = { "--accept=reuseport", NULL };
	const char *const env[] = { "LISTEN_PID=", "LISTEN_FDS=1",
				    "LISTEN_FDNAMES=upper", NULL };
	int fd = tcp_socket(true, true), plain = tcp_socket(true, false);
	struct handover h = { .fds = &fd, .n_fds = 1, .env = env,
			      .stdio_fd = -1, .stderr_fd = -1 };
	const char *args[16];
	struct muxd_server srv;
	FILE *log = tmpfile();
	char why[256] = "";
	int served = 0;

	engine_args(e, extra, args);
	if (muxd_start_handed(&srv, args, &h, 1) == 0) {
		for (int i = 0; i < 8; i++) {
			int c = served_connection(port_of(fd), SAFETY_MS, why, sizeof why);

			served += c >= 0;
			if (c >= 0)
				close(c);
		}
		muxd_stop(&srv, 10000);
	}
	ok(served == 8, "%s --accept=reuseport: a handed SO_REUSEPORT socket is "
	   "served by the workers' own listeners too%s%s", e->name,
	   why[0] ? ": " : "", why);
	h.fds = &plain;
	ok(log && run_handed(args, &h, log) == 2 && log_says(log, "ReusePort=yes"),
	   "%s --accept=reuseport: a handed socket without SO_REUSEPORT is a "
	   "usage error naming ReusePort=yes", e->name);
	if (log)
		fclose(log);
	close(fd);
	close(plain);
}

static void check_inetd(const struct engine_row *e)
{
	const char *const extra[] = { "--inetd", "upper", NULL };
	const char *args[16];
	int client, server = accepted_pair(&client);
	struct handover h = { .stdio_fd = server, .stderr_fd = -1 };
	struct muxd_server srv;
	char back[64];
	enum read_end end;
	size_t n = 0;

	engine_args(e, extra, args);
	if (muxd_start_handed(&srv, args, &h, 0) == 0) {
		close(server);
		server = -1;
		write_all(client, "hello, inetd\n", 13, SAFETY_MS);
		shutdown(client, SHUT_WR);
		n = read_until_eof(client, back, sizeof back, SAFETY_MS, &end);
		if (muxd_wait(&srv, SAFETY_MS) != 0)
			muxd_stop(&srv, 1000);
		close(srv.stdout_fd);
	}
	ok(n == 13 && memcmp(back, "HELLO, INETD\n", 13) == 0 && end == READ_EOF,
	   "%s --inetd upper: the connection on standard input is served, then "
	   "closed", e->name);
	ok(srv.reaped && exit_code_of(srv.wait_status) == 0,
	   "%s --inetd upper: exits 0 once the client is done", e->name);
	close(client);
	if (server >= 0)
		close(server);
}

/* muxd handed fd as descriptor 3 with env and args: a usage error (exit
 * 2) whose line says words. fd is closed. */
static bool refused_with(int fd, const char *const env[],
			 const char *const args[], const char *words)
{
	struct handover h = { .fds = &fd, .n_fds = 1, .env = env, .stdio_fd = -1 };
	FILE *log = tmpfile();
	bool refused = log && run_handed(args, &h, log) == 2 && log_says(log, words);

	if (log)
		fclose(log);
	close(fd);
	return refused;
}

/* A descriptor 3 that is no listening TCP socket, and what muxd must say. */
static void check_refused_descriptor(int fd, const char *what, const char *words)
{
	const char *const env[] = { "LISTEN_PID=", "LISTEN_FDS=1",
				    "LISTEN_FDNAMES=upper", NULL };
	const char *const args[] = { "--engine", "poll", NULL };

	ok(refused_with(fd, env, args, words),
	   "socket activation: %s as descriptor 3 is a usage error naming it", what);
}

static void check_refused_env(const char *const env[], const char *const args[],
			      const char *what, const char *words)
{
	ok(refused_with(tcp_socket(true, false), env, args, words),
	   "socket activation: %s is a usage error", what);
}

static void check_activation_refusals(void)
{
	const char *const poll_args[] = { "--engine", "poll", NULL };
	const char *const with_listen[] = { "--listen", "upper=127.0.0.1:0", NULL };
	const char *const no_names[] = { "LISTEN_PID=", "LISTEN_FDS=1", NULL };
	const char *const unit_name[] = { "LISTEN_PID=", "LISTEN_FDS=1",
					  "LISTEN_FDNAMES=muxd.socket", NULL };
	const char *const upper_env[] = { "LISTEN_PID=", "LISTEN_FDS=1",
					  "LISTEN_FDNAMES=upper", NULL };
	int pipefd[2];

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		bail_out("pipe2: %s", strerror(errno));
	close(pipefd[1]);
	check_refused_descriptor(pipefd[0], "a pipe", "descriptor 3 is not a socket");
	check_refused_descriptor(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0),
				 "a UDP socket", "descriptor 3 is not a TCP socket");
	check_refused_descriptor(tcp_socket(false, false), "a TCP socket not listening",
				 "descriptor 3 is a TCP socket that is not listening");
	check_refused_env(no_names, poll_args, "no LISTEN_FDNAMES",
			  "FileDescriptorName=SERVICE");
	check_refused_env(unit_name, poll_args, "a name that is no service",
			  "named 'muxd.socket'");
	check_refused_env(upper_env, with_listen, "--listen with activation",
			  "--listen cannot be combined with socket activation");
}

/* LISTEN_PID names another process: the sockets are not for muxd. */
static void check_other_pid(void)
{
	const char *const env[] = { "LISTEN_PID=1", "LISTEN_FDS=1",
				    "LISTEN_FDNAMES=stamp", NULL };
	const char *const args[] = { "--listen", "upper=127.0.0.1:0", NULL };
	int fd = tcp_socket(true, false);
	struct handover h = { .fds = &fd, .n_fds = 1, .env = env,
			      .stdio_fd = -1, .stderr_fd = -1 };
	struct muxd_server srv;
	char why[256] = "";
	int c = -1;

	if (muxd_start_handed(&srv, args, &h, 1) == 0) {
		c = served_connection(muxd_port(&srv, "upper"), SAFETY_MS, why,
				      sizeof why);
		ok(c >= 0 && srv.nlisteners == 1 && muxd_port(&srv, "stamp") == 0,
		   "socket activation: LISTEN_PID of another process is ignored; "
		   "--listen is served%s%s", why[0] ? ": " : "", why);
		muxd_stop(&srv, 10000);
	} else {
		ok(false, "socket activation: LISTEN_PID of another process is ignored");
	}
	if (c >= 0)
		close(c);
	close(fd);
}

/* inetd hands the connection on 0, 1 and 2: with -v, muxd would log the
 * connection to the client itself. */
static void check_inetd_stderr(void)
{
	const char *const args[] = { "-v", "--inetd", "upper", NULL };
	int client, server = accepted_pair(&client);
	struct handover h = { .stdio_fd = server, .stderr_fd = server };
	struct muxd_server srv;
	char back[256];
	enum read_end end;
	size_t n = 0;

	if (muxd_start_handed(&srv, args, &h, 0) == 0) {
		close(server);
		write_all(client, "abc", 3, SAFETY_MS);
		shutdown(client, SHUT_WR);
		n = read_until_eof(client, back, sizeof back, SAFETY_MS, &end);
		if (muxd_wait(&srv, SAFETY_MS) != 0)
			muxd_stop(&srv, 1000);
		close(srv.stdout_fd);
	}
	ok(n == 3 && memcmp(back, "ABC", 3) == 0,
	   "--inetd -v with standard error on the connection: the client gets "
	   "the service's bytes only (%zu bytes)", n);
	close(client);
}

static void check_inetd_daytime(void)
{
	const char *const args[] = { "--inetd", "daytime", NULL };
	int client, server = accepted_pair(&client);
	struct handover h = { .stdio_fd = server, .stderr_fd = -1 };
	struct muxd_server srv;
	char back[64];
	enum read_end end = READ_ERROR;
	size_t n = 0;

	if (muxd_start_handed(&srv, args, &h, 0) == 0) {
		close(server);
		n = read_until_eof(client, back, sizeof back, SAFETY_MS, &end);
		if (muxd_wait(&srv, SAFETY_MS) != 0)
			muxd_stop(&srv, 1000);
		close(srv.stdout_fd);
	}
	ok(n == 26 && end == READ_EOF && memcmp(back + 24, "\r\n", 2) == 0 &&
	   exit_code_of(srv.wait_status) == 0,
	   "--inetd daytime: 26 bytes, the close, exit 0 with no help from the client");
	close(client);
}

static void check_inetd_stop(void)
{
	const char *const args[] = { "--inetd", "echo", "--grace", "1", NULL };
	int client, server = accepted_pair(&client);
	struct handover h = { .stdio_fd = server, .stderr_fd = -1 };
	struct muxd_server srv;
	char why[256] = "";
	bool alive = false;

	if (muxd_start_handed(&srv, args, &h, 0) == 0) {
		close(server);
		alive = round_trip(client, "ping", "ping", SAFETY_MS, why, sizeof why);
		ok(alive && muxd_stop(&srv, 10000) == 0 &&
		   exit_code_of(srv.wait_status) == 0,
		   "--inetd echo: SIGTERM on an idle connection ends it after the "
		   "grace period, exit 0%s%s", why[0] ? ": " : "", why);
		close(srv.stdout_fd);
	} else {
		ok(false, "--inetd echo: starts");
	}
	close(client);
}

/* Lines in muxd's log. */
static int log_line_count(FILE *log)
{
	int lines = 0, c;

	fflush(log);
	rewind(log);
	while ((c = getc(log)) != EOF)
		lines += c == '\n';
	return lines;
}

/* A client that resets before muxd starts (inetd accepted, then the
 * client went): a connection gone, not a misconfigured muxd. One line,
 * exit 0, as for a client that disconnects at once; a service manager
 * must not mark the instance failed. A listening socket instead (a
 * service with Accept=no) stays a usage error. */
static void check_inetd_gone(void)
{
	const char *const args[] = { "--inetd", "upper", NULL };
	int client, server = accepted_pair(&client);
	struct handover h = { .stderr_fd = -1, .stdio_fd = server };
	struct pollfd reset = { .fd = server, .events = POLLIN };
	FILE *log = tmpfile();
	int status;

	if (!log)
		bail_out("tmpfile: %s", strerror(errno));
	close_with_reset(client);
	if (poll(&reset, 1, (int)scaled_ms(SAFETY_MS)) != 1)
		bail_out("the reset never reached the server side");
	status = run_handed(args, &h, log);
	ok(status == 0 && log_says(log, "peer gone before serving") &&
	   log_line_count(log) == 1,
	   "--inetd on a connection its client reset already: one line, exit 0 "
	   "(exit %d, %d lines)", status, log_line_count(log));
	close(server);
	fclose(log);
	log = tmpfile();
	h.stdio_fd = tcp_socket(true, false);
	ok(log && run_handed(args, &h, log) == 2 && log_says(log, "no peer"),
	   "--inetd with a listening socket on standard input is a usage error");
	close(h.stdio_fd);
	if (log)
		fclose(log);
}

static void check_inetd_refusals(void)
{
	const char *const args[] = { "--inetd", "upper", NULL };
	const char *const with_listen[] = { "--inetd", "upper", "--listen",
					    "upper=127.0.0.1:0", NULL };
	int pipefd[2], client, server;
	struct handover h = { .stderr_fd = -1 };
	FILE *log = tmpfile();

	if (!log || pipe2(pipefd, O_CLOEXEC) < 0)
		bail_out("pipe2: %s", strerror(errno));
	h.stdio_fd = pipefd[0];
	ok(run_handed(args, &h, log) == 2 && log_says(log, "not a stream socket"),
	   "--inetd with a pipe on standard input is a usage error");
	close_all(pipefd, 2);
	server = accepted_pair(&client);
	h.stdio_fd = server;
	ok(run_handed(with_listen, &h, log) == 2 && log_says(log, "no --listen"),
	   "--inetd with --listen is a usage error");
	close(server);
	close(client);
	fclose(log);
}

/* ---- systemd-socket-activate, where it is installed ---- */

/* Connect, retrying while the activator is not yet listening. */
static int connect_when_ready(unsigned short port)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int fd;

	while ((fd = tcp_connect(port)) < 0 && errno == ECONNREFUSED &&
	       now_ms() < deadline)
		sleep_ms(20);
	return fd;
}

static pid_t start_activator(const char *engine, unsigned short port, int *out)
{
	char listen[32], engine_arg[48];
	int pipefd[2];
	pid_t pid;

	snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
	snprintf(engine_arg, sizeof engine_arg, "--engine=%s", engine);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		bail_out("pipe2: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pipefd[1], STDOUT_FILENO);
		execlp("systemd-socket-activate", "systemd-socket-activate", "-l",
		       listen, "--fdname=upper", muxd_path(), engine_arg,
		       "--workers=4", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	if (pid < 0)
		bail_out("fork: %s", strerror(errno));
	*out = pipefd[0];
	return pid;
}

static void check_activator(const char *engine)
{
	unsigned short port = free_loopback_port();
	struct muxd_server srv = { .pid = -1 };
	char line[128] = "", want[64], why[256] = "";
	int fd;
	bool served;

	srv.pid = start_activator(engine, port, &srv.stdout_fd);
	fd = connect_when_ready(port);
	served = fd >= 0 && round_trip(fd, "abc", "ABC", SAFETY_MS, why, sizeof why);
	if (served) {
		struct pollfd p = { srv.stdout_fd, POLLIN, 0 };
		ssize_t n = poll(&p, 1, (int)scaled_ms(5000)) == 1
			? read(srv.stdout_fd, line, sizeof line - 1) : 0;

		line[n > 0 ? n : 0] = '\0';
	}
	snprintf(want, sizeof want, "listening upper 127.0.0.1 %u\n", port);
	ok(served && strcmp(line, want) == 0,
	   "%s under systemd-socket-activate: served, and its listening line "
	   "names the activator's socket%s%s", engine, why[0] ? ": " : "", why);
	if (!served || strcmp(line, want) != 0)
		diag("port %u, stdout: '%s'", port, line);
	if (fd >= 0)
		close(fd);
	ok(muxd_stop(&srv, 10000) == 0 && exit_code_of(srv.wait_status) == 0,
	   "%s under systemd-socket-activate: exits 0 on SIGTERM", engine);
	close(srv.stdout_fd);
}

/* ---- the shipped examples, as written ---- */

/* The rest of the first line of examples/FILE that starts with key
 * (leading blanks skipped), in out. Bails out when there is none. */
static void example_value(const char *file, const char *key, char *out,
			  size_t size)
{
	const char *top = getenv("top_srcdir");
	char path[4096], line[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/examples/%s", top ? top : ".", file);
	f = fopen(path, "r");
	if (!f)
		bail_out("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		const char *p = line + strspn(line, " \t");

		if (strncmp(p, key, strlen(key)) == 0) {
			snprintf(out, size, "%s", p + strlen(key));
			out[strcspn(out, "\n")] = '\0';
			fclose(f);
			return;
		}
	}
	fclose(f);
	bail_out("%s: no line starting '%s'", path, key);
}

/* Split text into words, in place, NULL-ended; returns how many. */
static int split_words(char *text, const char **words, int max)
{
	int n = 0;

	for (char *w = strtok(text, " \t"); w && n < max - 1; w = strtok(NULL, " \t"))
		words[n++] = w;
	words[n] = NULL;
	return n;
}

/* What each service answers a client that sends "abc", then its FIN, and
 * reads at most 64 bytes: how many bytes, and the first ones. */
static const struct {
	const char *service;
	size_t bytes;
	const char *start;
} answers[] = {
	{ "upper", 3, "ABC" }, { "echo", 3, "abc" }, { "discard", 0, "" },
	{ "chargen", 64, " !\"#$%" }, { "daytime", 26, "" }, { "time", 4, "" },
	{ "stamp", 12, "" },
};

/* args run as inetd runs them, on a connection of their own. */
static void check_inetd_example(const char *what, const char *const args[],
				const char *service, bool stderr_too)
{
	int client, server = accepted_pair(&client);
	struct handover h = { .stdio_fd = server,
			      .stderr_fd = stderr_too ? server : -1 };
	struct muxd_server srv;
	char back[64];
	enum read_end end;
	size_t n = 0, k = 0;

	while (k + 1 < sizeof answers / sizeof answers[0] &&
	       strcmp(answers[k].service, service) != 0)
		k++;
	if (muxd_start_handed(&srv, args, &h, 0) == 0) {
		close(server);
		write_all(client, "abc", 3, SAFETY_MS);
		shutdown(client, SHUT_WR);
		n = read_until_eof(client, back, sizeof back, SAFETY_MS, &end);
		close(client);
		if (muxd_wait(&srv, SAFETY_MS) != 0)
			muxd_stop(&srv, 1000);
		close(srv.stdout_fd);
	}
	ok(n == answers[k].bytes &&
	   memcmp(back, answers[k].start, strlen(answers[k].start)) == 0 &&
	   exit_code_of(srv.wait_status) == 0,
	   "example %s: %s served (%zu bytes), exit 0", what, service, n);
}

static void check_service_example(void)
{
	char exec[256], name[64], env_name[96];
	const char *args[16], *env[] = { "LISTEN_PID=", "LISTEN_FDS=1", env_name, NULL };
	int fd = tcp_socket(true, false);
	struct handover h = { .fds = &fd, .n_fds = 1, .env = env,
			      .stdio_fd = -1, .stderr_fd = -1 };
	struct muxd_server srv;
	char why[256] = "";
	int c = -1;

	example_value("muxd.service.in", "ExecStart=@bindir@/muxd", exec, sizeof exec);
	example_value("muxd.socket", "FileDescriptorName=", name, sizeof name);
	snprintf(env_name, sizeof env_name, "LISTEN_FDNAMES=%s", name);
	split_words(exec, args, 16);
	if (muxd_start_handed(&srv, args, &h, 1) == 0) {
		c = served_connection(port_of(fd), SAFETY_MS, why, sizeof why);
		muxd_stop(&srv, 10000);
	}
	ok(strcmp(name, "upper") == 0 && c >= 0 && exit_code_of(srv.wait_status) == 0,
	   "example muxd.service on muxd.socket's %s socket: served, exit 0%s%s",
	   name, why[0] ? ": " : "", why);
	if (c >= 0)
		close(c);
	close(fd);
}

/* Every line of inetd.conf, xinetd's server_args, Accept=yes's ExecStart. */
static void check_inetd_examples(void)
{
	static const char *const services[] = { "echo", "discard", "chargen",
		"daytime", "time", "upper", "stamp", NULL };
	char text[256], key[32];
	const char *args[16];

	for (int i = 0; services[i]; i++) {
		snprintf(key, sizeof key, "%s ", services[i]);
		example_value("inetd.conf.in", key, text, sizeof text);
		/* stream tcp nowait user server argv[0] ARGS... */
		if (split_words(text, args, 16) < 7)
			bail_out("inetd.conf.in: short line for %s", services[i]);
		check_inetd_example("inetd.conf", args + 6, services[i], true);
	}
	example_value("xinetd.muxd-upper.in", "server_args =", text, sizeof text);
	split_words(text, args, 16);
	check_inetd_example("xinetd.muxd-upper", args, "upper", true);
	example_value("muxd-echo@.service.in", "ExecStart=@bindir@/muxd", text,
		      sizeof text);
	split_words(text, args, 16);
	check_inetd_example("muxd-echo@.service", args, "echo", false);
}

int main(void)
{
	static struct engine_row rows[MAX_ENGINES];
	bool activator = program_in_path("systemd-socket-activate");
	int n;

	signal(SIGPIPE, SIG_IGN);
	adopt_orphans();
	read_engines(rows, &n);
	for (int i = 0; i < n; i++) {
		char why[512];

		if (engine_refused(rows[i].name, NULL, why, sizeof why)) {
			skip(1, "muxd refuses engine %s here: %s", rows[i].name, why);
			continue;
		}
		check_activation(&rows[i]);
		if (rows[i].reuseport)
			check_reuseport(&rows[i]);
		check_inetd(&rows[i]);
		if (activator)
			check_activator(rows[i].name);
		else
			skip(2, "%s: systemd-socket-activate is not installed",
			     rows[i].name);
	}
	ok(n >= 10, "every engine of --list-engines was checked (%d)", n);
	check_activation_refusals();
	check_other_pid();
	check_inetd_stderr();
	check_inetd_daytime();
	check_inetd_stop();
	check_inetd_refusals();
	check_inetd_gone();
	check_service_example();
	check_inetd_examples();
	return done_testing();
}
