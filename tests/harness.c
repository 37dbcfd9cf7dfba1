/* harness.c -- see harness.h. */
#include "harness.h"
#include "tap.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAX_ARGS 64

long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long now_ms(void)
{
	return now_us() / 1000;
}

static double timeout_mult(void)
{
	const char *text = getenv("MUXD_TEST_TIMEOUT_MULT");
	double mult = text ? strtod(text, NULL) : 1.0;

	return mult > 0 ? mult : 1.0;
}

long scaled_ms(long ms)
{
	return (long)((double)ms * timeout_mult());
}

void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static long remaining_ms(long long deadline)
{
	long long left = deadline - now_ms();

	return left > 0 ? (long)left : 0;
}

const char *muxd_path(void)
{
	const char *path = getenv("MUXD");

	if (!path || !*path)
		bail_out("MUXD is not set: export the absolute path of src/muxd");
	return path;
}

static bool keep_mode(void)
{
	const char *keep = getenv("MUXD_TEST_KEEP");

	return keep && *keep;
}

/* In the child, between fork and exec: only async-signal-safe calls.
 * The server must see SIGPIPE at its default (the tests ignore it, and an
 * ignored signal survives exec, which would hide a server that forgot to
 * ignore it), and must die with the test rather than hang the harness,
 * which waits for every holder of the log pipe to go. */
/* The environment of a handed-over muxd, made before fork: the test's,
 * without LISTEN_* variables, then h->env. "LISTEN_PID=" alone points at
 * pid_var, which the child completes with its own pid. */
#define MAX_ENV 512
static char *handed_env[MAX_ENV];
static char pid_var[32];

static void make_handed_env(const struct handover *h)
{
	extern char **environ;
	int n = 0;

	for (char **e = environ; *e && n < MAX_ENV - 8; e++)
		if (strncmp(*e, "LISTEN_", 7) != 0)
			handed_env[n++] = *e;
	for (int i = 0; h->env && h->env[i] && n < MAX_ENV - 1; i++)
		handed_env[n++] = strcmp(h->env[i], "LISTEN_PID=") == 0
				  ? pid_var : (char *)h->env[i];
	handed_env[n] = NULL;
}

/* In the child: "LISTEN_PID=" and its pid, with no stdio. */
static void fill_pid_var(void)
{
	char digits[16];
	int n = 0, at = 11;
	long pid = getpid();

	memcpy(pid_var, "LISTEN_PID=", 11);
	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) > 0);
	while (n > 0)
		pid_var[at++] = digits[--n];
	pid_var[at] = '\0';
}

/* In the child: a soft limit, or exit 127. */
static void set_soft_nofile(rlim_t soft)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || soft > rl.rlim_max)
		_exit(127);
	rl.rlim_cur = soft;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		_exit(127);
}

/* In the child: what h says the system refuses, as a seccomp filter,
 * which no sanitizer's runtime minds: io_setup(2) for more than
 * h->aio_room requests fails with EAGAIN, as when others hold nearly all
 * of fs.aio-max-nr; with h->no_threads every new thread does (clone3
 * fails with ENOSYS, so that glibc falls back to clone(2), and a clone
 * with CLONE_THREAD with EAGAIN, as when RLIMIT_NPROC is reached). Exits
 * 127 if the filter is refused. */
static void refuse_in_kernel(const struct handover *h)
{
	/* The flags and nr_events are 32 bits wide: the low word of args[0]. */
	const unsigned arg0 = offsetof(struct seccomp_data, args[0]) +
			      (htonl(1) == 1 ? 4 : 0);
	const unsigned eagain = SECCOMP_RET_ERRNO | EAGAIN;
	struct sock_filter code[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
				 offsetof(struct seccomp_data, nr)),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_setup, 0, 3),
		/* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K,
				 h->aio_room ? h->aio_room : ~0u, 0, 7),
		/* 4 */ BPF_STMT(BPF_RET | BPF_K, eagain),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
		/* 6 */ BPF_STMT(BPF_RET | BPF_K, h->no_threads ?
				 SECCOMP_RET_ERRNO | ENOSYS : SECCOMP_RET_ALLOW),
		/* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
		/* 8 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0),
		/* 9 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K,
				 h->no_threads ? CLONE_THREAD : 0, 0, 1),
		/* 10 */ BPF_STMT(BPF_RET | BPF_K, eagain),
		/* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof code / sizeof code[0], code };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == -1)
		_exit(127);
}

/* In the child: the handed descriptors moved out of the way first (one
 * may already sit where another goes), then into place. */
static void hand_over(const struct handover *h)
{
	int moved[16], stdio = -1;

	for (int i = 0; i < h->n_fds && i < 16; i++)
		if ((moved[i] = fcntl(h->fds[i], F_DUPFD_CLOEXEC, 100)) == -1)
			_exit(127);
	if (h->stdio_fd >= 0 &&
	    (stdio = fcntl(h->stdio_fd, F_DUPFD_CLOEXEC, 100)) == -1)
		_exit(127);
	if (h->stderr_fd >= 0 && dup2(h->stderr_fd, STDERR_FILENO) == -1)
		_exit(127);
	for (int i = 0; i < h->n_fds && i < 16; i++)
		if (dup2(moved[i], 3 + i) == -1)
			_exit(127);
	if (stdio >= 0 && (dup2(stdio, STDIN_FILENO) == -1 ||
			   dup2(stdio, STDOUT_FILENO) == -1))
		_exit(127);
	fill_pid_var();
	if (h->aio_room || h->no_threads)
		refuse_in_kernel(h);
	if (h->nofile)	/* last: the moves above need descriptors up to 100+ */
		set_soft_nofile(h->nofile);
}

/* In the child, between fork and exec: only async-signal-safe calls.
 * The server must see SIGPIPE at its default (the tests ignore it, and an
 * ignored signal survives exec, which would hide a server that forgot to
 * ignore it), and must die with the test rather than hang the harness,
 * which waits for every holder of the log pipe to go. */
static _Noreturn void exec_child(const char *const argv[], int stdout_fd,
				 pid_t test_pid, const struct handover *h)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != test_pid)
		_exit(127);
	if (dup2(stdout_fd, STDOUT_FILENO) == -1)
		_exit(127);
	if (h) {
		hand_over(h);
		execve(argv[0], (char *const *)argv, handed_env);
	} else {
		execv(argv[0], (char *const *)argv);
	}
	_exit(127);
}

/* fork+exec muxd with args; its stdout on a pipe whose read end is
 * returned in *stdout_fd. Returns the pid or -1. */
static pid_t spawn_muxd(const char *const args[], bool verbose, int *stdout_fd,
			const struct handover *h)
{
	const char *argv[MAX_ARGS];
	int n = 0, pipefd[2];
	pid_t pid, test_pid = getpid();

	argv[n++] = muxd_path();
	if (verbose)
		argv[n++] = "--verbose";
	for (size_t i = 0; args[i] && n < MAX_ARGS - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (h)
		make_handed_env(h);
	if (pipe2(pipefd, O_CLOEXEC) == -1)
		bail_out("pipe2: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		exec_child(argv, pipefd[1], test_pid, h);
	close(pipefd[1]);
	if (pid == -1) {
		close(pipefd[0]);
		bail_out("fork: %s", strerror(errno));
	}
	*stdout_fd = pipefd[0];
	return pid;
}

static void print_command(const char *const args[])
{
	char line[1024];
	size_t used = (size_t)snprintf(line, sizeof line, "%s", muxd_path());

	for (size_t i = 0; args[i] && used < sizeof line; i++)
		used += (size_t)snprintf(line + used, sizeof line - used, " %s", args[i]);
	diag("starting: %s", line);
}

/* One listening line per --listen/-l; muxd's defaults are two. */
static int expected_listeners(const char *const args[])
{
	int n = 0;

	for (size_t i = 0; args[i]; i++) {
		const char *a = args[i];

		if (strcmp(a, "--listen") == 0 || strncmp(a, "--listen=", 9) == 0 ||
		    strncmp(a, "-l", 2) == 0)
			n++;
	}
	return n ? n : 2;
}

/* "listening SERVICE ADDRESS PORT", nothing more. */
static bool parse_listening(struct muxd_server *srv, const char *line)
{
	struct muxd_listener *l = &srv->listeners[srv->nlisteners];
	char port[8];
	int end = -1;
	unsigned long value;

	if (srv->nlisteners >= MUXD_MAX_LISTENERS)
		return false;
	if (sscanf(line, "listening %31s %63s %7[0-9]%n", l->service, l->address,
		   port, &end) != 3 || line[end] != '\0')
		return false;
	value = strtoul(port, NULL, 10);
	if (value == 0 || value > 65535)
		return false;
	l->port = (unsigned short)value;
	srv->nlisteners++;
	return true;
}

/* Take every complete line out of buf; returns the bytes left over. */
static size_t take_lines(struct muxd_server *srv, char *buf, size_t used)
{
	char *line = buf, *nl;

	while ((nl = memchr(line, '\n', used - (size_t)(line - buf)))) {
		*nl = '\0';
		if (!parse_listening(srv, line))
			diag("unexpected line on muxd's stdout: \"%s\"", line);
		line = nl + 1;
	}
	used -= (size_t)(line - buf);
	memmove(buf, line, used);
	return used;
}

/* How long a muxd may take to print its lines, or to exit once its
 * standard output closed: only a hung one takes this long, but a start
 * of 64 threads on a loaded 2-core machine may take seconds. */
#define START_MS 20000

/* quiet: a muxd that prints fewer lines is no problem to report. */
static int read_listening_lines(struct muxd_server *srv, int expected,
				bool quiet)
{
	char buf[4096];
	size_t used = 0;
	long long deadline = now_ms() + scaled_ms(START_MS);

	while (srv->nlisteners < expected) {
		struct pollfd p = { .fd = srv->stdout_fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, (int)remaining_ms(deadline)) == 0) {
			diag("no listening lines within %ld ms (%d of %d)",
			     scaled_ms(START_MS), srv->nlisteners, expected);
			return -1;
		}
		n = read(srv->stdout_fd, buf + used, sizeof buf - 1 - used);
		if (n <= 0) {
			if (!quiet)
				diag("muxd closed its stdout after %d of %d "
				     "listening lines", srv->nlisteners, expected);
			return -1;
		}
		used = take_lines(srv, buf, used + (size_t)n);
		if (used == sizeof buf - 1)
			used = 0;	/* an absurd line: drop it */
	}
	return 0;
}

static int start_and_read(struct muxd_server *srv, const char *const args[],
			  const struct handover *h, int expected)
{
	bool verbose = keep_mode();

	*srv = (struct muxd_server){ .pid = -1, .stdout_fd = -1 };
	print_command(args);
	srv->pid = spawn_muxd(args, verbose, &srv->stdout_fd, h);
	if (read_listening_lines(srv, expected, false) == 0)
		return 0;
	if (muxd_stop(srv, 2000) == 0) {
		char why[64];

		diag("muxd ended with %s",
		     describe_status(srv->wait_status, why, sizeof why));
	}
	return -1;
}

int muxd_start(struct muxd_server *srv, const char *const args[])
{
	return start_and_read(srv, args, NULL, expected_listeners(args));
}

int muxd_start_handed(struct muxd_server *srv, const char *const args[],
		      const struct handover *h, int expected)
{
	return start_and_read(srv, args, h, expected);
}

int muxd_try_start(struct muxd_server *srv, const char *const args[],
		   const struct handover *h, int expected)
{
	*srv = (struct muxd_server){ .pid = -1, .stdout_fd = -1 };
	if (keep_mode())
		print_command(args);
	srv->pid = spawn_muxd(args, keep_mode(), &srv->stdout_fd, h);
	if (read_listening_lines(srv, expected, true) == 0)
		return srv->nlisteners;
	/* Its standard output closed: it is on its way out. */
	if (muxd_wait(srv, START_MS) == 0) {
		muxd_stop(srv, 0);	/* closes the pipe */
		return srv->nlisteners;
	}
	muxd_stop(srv, 0);
	return -1;
}

unsigned short muxd_port(const struct muxd_server *srv, const char *service)
{
	for (int i = 0; i < srv->nlisteners; i++)
		if (strcmp(srv->listeners[i].service, service) == 0)
			return srv->listeners[i].port;
	return 0;
}

bool muxd_alive(struct muxd_server *srv)
{
	if (!srv->reaped && waitpid(srv->pid, &srv->wait_status, WNOHANG) == srv->pid)
		srv->reaped = true;
	return !srv->reaped;
}

int muxd_wait(struct muxd_server *srv, long timeout_ms)
{
	long long deadline = now_ms() + scaled_ms(timeout_ms);

	while (muxd_alive(srv)) {
		if (now_ms() >= deadline)
			return -1;
		sleep_ms(5);
	}
	return 0;
}

int muxd_stop(struct muxd_server *srv, long timeout_ms)
{
	int rc = 0;

	if (muxd_alive(srv))
		kill(srv->pid, SIGTERM);
	if (muxd_wait(srv, timeout_ms) == -1) {
		diag("muxd (pid %d) still running %ld ms after SIGTERM: SIGKILL",
		     (int)srv->pid, scaled_ms(timeout_ms));
		kill(srv->pid, SIGKILL);
		waitpid(srv->pid, &srv->wait_status, 0);
		srv->reaped = true;
		rc = -1;
	}
	if (srv->stdout_fd >= 0)
		close(srv->stdout_fd);
	srv->stdout_fd = -1;
	return rc;
}

const char *describe_status(int wait_status, char *buf, size_t size)
{
	if (WIFEXITED(wait_status))
		snprintf(buf, size, "exit %d", WEXITSTATUS(wait_status));
	else if (WIFSIGNALED(wait_status))
		snprintf(buf, size, "signal %d (%s)", WTERMSIG(wait_status),
			 strsignal(WTERMSIG(wait_status)));
	else
		snprintf(buf, size, "wait status 0x%x", (unsigned)wait_status);
	return buf;
}

int exit_code_of(int wait_status)
{
	return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

int muxd_capture(const char *const args[], char *out, size_t size,
		 long timeout_ms)
{
	struct muxd_server srv = { .stdout_fd = -1 };
	enum read_end end;
	size_t n;

	srv.pid = spawn_muxd(args, false, &srv.stdout_fd, NULL);
	n = read_until_eof(srv.stdout_fd, out, size - 1, timeout_ms, &end);
	out[n] = '\0';
	if (end != READ_EOF)
		diag("muxd output: %s", describe_read_end(end));
	muxd_stop(&srv, end == READ_EOF ? timeout_ms : 0);
	return srv.wait_status;
}

int tcp_connect(unsigned short port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	long ms = scaled_ms(5000);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int saved;

	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags == -1 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void close_with_reset(int fd)
{
	struct linger hard = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
	close(fd);
}

/* Wait until fd is ready for events or the deadline passed. */
static bool wait_ready(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, (int)remaining_ms(deadline));
	while (n == -1 && errno == EINTR);
	return n > 0;
}

size_t write_all(int fd, const void *buf, size_t len, long timeout_ms)
{
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = send(fd, (const char *)buf + sent, len - sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			sent += (size_t)n;
		} else if (errno != EAGAIN && errno != EINTR) {
			break;
		} else if (!wait_ready(fd, POLLOUT, deadline)) {
			errno = ETIMEDOUT;
			break;
		}
	}
	return sent;
}

size_t read_until_eof(int fd, void *buf, size_t size, long timeout_ms,
		      enum read_end *end)
{
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	size_t got = 0;

	for (;;) {
		ssize_t n;

		if (got == size) {
			*end = READ_FULL;
			return got;
		}
		/* poll first: fd may be a blocking socket or a pipe. */
		if (!wait_ready(fd, POLLIN, deadline)) {
			*end = READ_TIMEOUT;
			return got;
		}
		n = read(fd, (char *)buf + got, size - got);
		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			*end = READ_EOF;
			return got;
		} else if (errno != EAGAIN && errno != EINTR) {
			*end = READ_ERROR;
			return got;
		}
	}
}

enum read_end drain_until_end(int fd, long timeout_ms, size_t *bytes)
{
	static char sink[64 * 1024];
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	enum read_end end = READ_TIMEOUT;
	size_t got = 0;

	while (wait_ready(fd, POLLIN, deadline)) {
		ssize_t n = read(fd, sink, sizeof sink);

		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			end = READ_EOF;
			break;
		} else if (errno != EAGAIN && errno != EINTR) {
			end = READ_ERROR;
			break;
		}
	}
	if (bytes)
		*bytes = got;
	return end;
}

const char *describe_read_end(enum read_end end)
{
	switch (end) {
	case READ_EOF:
		return "EOF";
	case READ_FULL:
		return "buffer full, no EOF yet";
	case READ_TIMEOUT:
		return "timed out";
	case READ_ERROR:
		return strerror(errno);
	}
	return "?";
}

static int count_dir_entries(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dir);
	return n;
}

int proc_fd_count(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	return count_dir_entries(path);
}

int proc_thread_count(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	return count_dir_entries(path);
}

long proc_field(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t key_len = strlen(key);
	long value = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, key_len) == 0) {
			sscanf(line + key_len, "%ld", &value);
			break;
		}
	fclose(f);
	return value;
}

rlim_t raise_own_nofile(rlim_t want)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == -1)
		return 0;
	if (lim.rlim_cur < want) {
		lim.rlim_cur = lim.rlim_max < want ? lim.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &lim);
		getrlimit(RLIMIT_NOFILE, &lim);
	}
	return lim.rlim_cur;
}

/* State and parent from /proc/PID/stat; the command name may hold
 * spaces and parentheses, so parse after the last ')'. */
static bool read_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], text[1024], *close_paren;
	FILE *f;
	size_t n;
	int parent;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	close_paren = strrchr(text, ')');
	if (!close_paren || sscanf(close_paren + 1, " %c %d", state, &parent) != 2)
		return false;
	*ppid = parent;
	return true;
}

char proc_state(pid_t pid)
{
	char state;
	pid_t ppid;

	return read_stat(pid, &state, &ppid) ? state : 0;
}

pid_t proc_parent(pid_t pid)
{
	char state;
	pid_t ppid;

	return read_stat(pid, &state, &ppid) ? ppid : -1;
}

int proc_children(pid_t parent, pid_t *out, int max)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!dir)
		bail_out("opendir /proc: %s", strerror(errno));
	while ((e = readdir(dir))) {
		char state;
		pid_t pid, ppid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)atoi(e->d_name);
		if (read_stat(pid, &state, &ppid) && ppid == parent && n < max)
			out[n++] = pid;
	}
	closedir(dir);
	return n;
}

#define TCP_LISTEN_STATE 0x0A	/* "st" in /proc/net/tcp */

/* The inodes of every TCP socket in /proc/net/FILE (or only those that
 * are connections, not listening), appended to *inodes. */
static void read_tcp_inodes(const char *file, bool connections,
			    unsigned long **inodes, size_t *n, size_t *cap)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof path, "/proc/net/%s", file);
	f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(line, sizeof line, f)) {	/* the header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned long inode;
		unsigned state;

		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %lu",
			   &state, &inode) != 2 ||
		    (connections && state == TCP_LISTEN_STATE))
			continue;
		if (*n == *cap) {
			unsigned long *more;

			*cap = *cap ? *cap * 2 : 256;
			more = realloc(*inodes, *cap * sizeof *more);
			if (!more)
				bail_out("out of memory");
			*inodes = more;
		}
		(*inodes)[(*n)++] = inode;
	}
	fclose(f);
}

int proc_socket_inodes(pid_t pid, unsigned long *out, int max)
{
	char dir[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((e = readdir(d)) && n < max) {
		char path[384], target[64];
		ssize_t len;

		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		len = readlink(path, target, sizeof target - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &out[n]) == 1)
			n++;
	}
	closedir(d);
	return n;
}

static int tcp_fds(pid_t pid, bool connections)
{
	unsigned long *inodes = NULL, sockets[4096];
	size_t n = 0, cap = 0;
	int count = 0;
	int n_sockets = proc_socket_inodes(pid, sockets, 4096);

	if (n_sockets < 0)
		return -1;
	read_tcp_inodes("tcp", connections, &inodes, &n, &cap);
	read_tcp_inodes("tcp6", connections, &inodes, &n, &cap);
	for (int s = 0; s < n_sockets; s++)
		for (size_t i = 0; i < n; i++)
			if (inodes[i] == sockets[s]) {
				count++;
				break;
			}
	free(inodes);
	return count;
}

int proc_tcp_fd_count(pid_t pid)
{
	return tcp_fds(pid, false);
}

int proc_tcp_conn_count(pid_t pid)
{
	return tcp_fds(pid, true);
}

/* Adds to *queued the send queues of /proc/net/FILE's sockets on local
 * port `port`; false if the file cannot be read. */
static bool add_send_queues(const char *file, unsigned short port,
			    long long *queued)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof path, "/proc/net/%s", file);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		unsigned local;
		unsigned long tx;

		/* "sl local_address rem_address st tx_queue:rx_queue ..."; an
		 * address is HEX:PORT (hex too), IPv6's 32 digits long. */
		if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %*x %lx:",
			   &local, &tx) == 2 && local == port)
			*queued += (long long)tx;
	}
	fclose(f);
	return true;
}

long long tcp_port_send_queued(unsigned short port)
{
	long long queued = 0;
	bool v4 = add_send_queues("tcp", port, &queued);
	bool v6 = add_send_queues("tcp6", port, &queued);

	return v4 || v6 ? queued : -1;
}

/* ---- shared by the test programs ---- */

/* One tab-separated field of line into out; the rest after it. */
static char *tsv_field(char *line, char *out, size_t size)
{
	size_t len = strcspn(line, "\t");

	snprintf(out, size, "%.*s", (int)len, line);
	return line[len] ? line + len + 1 : line + len;
}

static void engine_info_of(char *line, struct engine_info *e)
{
	char option[16];

	line = tsv_field(line, e->name, sizeof e->name);
	line = tsv_field(line, e->tags, sizeof e->tags);
	line = tsv_field(line, e->strategies, sizeof e->strategies);
	tsv_field(line, option, sizeof option);
	if (strcmp(e->strategies, "-") == 0)
		e->strategies[0] = '\0';
	e->takes_threads = strcmp(option, "threads") == 0;
	e->takes_workers = strcmp(option, "workers") == 0;
}

int muxd_engines(struct engine_info *out, int max)
{
	const char *args[] = { "--list-engines=tsv", NULL };
	static char listing[16384];
	char *save = NULL;
	int n = 0;

	if (exit_code_of(muxd_capture(args, listing, sizeof listing, 5000)) != 0)
		bail_out("muxd --list-engines=tsv failed");
	for (char *line = strtok_r(listing, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save))
		engine_info_of(line, &out[n++]);
	return n;
}

void muxd_engine(const char *name, struct engine_info *out)
{
	static struct engine_info all[64];
	int n = muxd_engines(all, 64);

	for (int i = 0; i < n; i++)
		if (strcmp(all[i].name, name) == 0) {
			*out = all[i];
			return;
		}
	bail_out("engine %s is not listed by muxd --list-engines=tsv", name);
}

bool engine_has_tag(const struct engine_info *e, const char *tag)
{
	size_t len = strlen(tag);

	for (const char *p = e->tags; (p = strstr(p, tag)); p += len)
		if ((p == e->tags || p[-1] == ' ') && (p[len] == ' ' || !p[len]))
			return true;
	return false;
}

void engine_tags_of(const char *engine, struct engine_tags *tags)
{
	struct engine_info e;

	muxd_engine(engine, &e);
	diag("engine %s: tags %s; --accept %s; %s", e.name, e.tags,
	     e.strategies[0] ? e.strategies : "-",
	     e.takes_threads ? "--threads" : e.takes_workers ? "--workers" : "");
	tags->serial = engine_has_tag(&e, "serial");
	tags->pool = engine_has_tag(&e, "pool");
	tags->processes = engine_has_tag(&e, "processes");
	tags->threads = engine_has_tag(&e, "threads");
	tags->readiness = engine_has_tag(&e, "readiness");
	tags->completion = engine_has_tag(&e, "completion");
	tags->fd_setsize = engine_has_tag(&e, "fd-setsize");
	tags->offload = engine_has_tag(&e, "offload");
	tags->takes_threads = e.takes_threads;
}

bool engine_refused(const char *engine, const char *const extra[],
		    char *why, size_t why_size)
{
	const char *const services[] = { "echo", NULL }, *const none[] = { NULL };
	struct muxd_server srv;
	FILE *log = tmpfile();
	char line[512];
	bool refused = false;
	int name_len = (int)strlen(engine);

	if (!log)
		bail_out("tmpfile: %s", strerror(errno));
	if (muxd_start_engine_logged(&srv, engine, extra, none, services, log) == 0) {
		muxd_stop(&srv, 5000);
		fclose(log);
		return false;
	}
	rewind(log);
	while (!refused && fgets(line, sizeof line, log)) {
		char *engine_at = strstr(line, "engine ");

		line[strcspn(line, "\n")] = '\0';
		refused = srv.reaped && exit_code_of(srv.wait_status) == 1 &&
			  engine_at && strncmp(engine_at + 7, engine, name_len) == 0 &&
			  strchr(": ", engine_at[7 + name_len]);
	}
	if (refused)
		snprintf(why, why_size, "%s", line);
	fclose(log);
	return refused;
}

const char *const *engine_under_test(int argc, char **argv,
				     struct engine_tags *tags)
{
	static const char *args[MAX_ARGS];
	char why[512];
	int n = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s ENGINE [extra muxd args...]\n", argv[0]);
		exit(2);
	}
	engine_tags_of(argv[1], tags);
	if (tags->pool) {
		args[n++] = "--workers";
		args[n++] = POOL_TEST_WORKERS;
	}
	for (int i = 2; i < argc && n < MAX_ARGS - 1; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	if (engine_refused(argv[1], args, why, sizeof why))
		plan_skip_all("muxd refuses engine %s here: %s", argv[1], why);
	return args;
}

int muxd_start_engine(struct muxd_server *srv, const char *engine,
		      const char *const extra[], const char *const options[],
		      const char *const services[])
{
	/* spawn_muxd adds argv[0] and maybe --verbose: leave room for both,
	 * rather than have it drop the last listeners. */
	const char *args[MAX_ARGS - 2];
	char listen[MUXD_MAX_LISTENERS][48];
	size_t nservices = 0, room;
	int n = 0;

	while (services[nservices])
		nservices++;
	if (nservices > MUXD_MAX_LISTENERS)
		bail_out("%zu services: at most %d listeners", nservices,
			 MUXD_MAX_LISTENERS);
	room = sizeof args / sizeof args[0] - 1 - 2 * nservices;
	args[n++] = "--engine";
	args[n++] = engine;
	for (size_t i = 0; extra && extra[i]; i++) {
		if ((size_t)n == room)
			bail_out("too many arguments for muxd");
		args[n++] = extra[i];
	}
	for (size_t i = 0; options[i]; i++) {
		if ((size_t)n == room)
			bail_out("too many arguments for muxd");
		args[n++] = options[i];
	}
	for (size_t i = 0; i < nservices; i++) {
		snprintf(listen[i], sizeof listen[i], "%s=127.0.0.1:0", services[i]);
		args[n++] = "--listen";
		args[n++] = listen[i];
	}
	args[n] = NULL;
	return muxd_start(srv, args);
}

int muxd_start_engine_logged(struct muxd_server *srv, const char *engine,
			     const char *const extra[],
			     const char *const options[],
			     const char *const services[], FILE *log)
{
	int saved = dup(STDERR_FILENO), rc;

	if (saved < 0)
		bail_out("dup: %s", strerror(errno));
	/* muxd shares the log's file offset with the test, which rewinds it
	 * to read: appending, muxd never writes over what is being read. */
	if (fcntl(fileno(log), F_SETFL, fcntl(fileno(log), F_GETFL) | O_APPEND) < 0)
		bail_out("fcntl O_APPEND: %s", strerror(errno));
	fflush(stderr);
	dup2(fileno(log), STDERR_FILENO);
	rc = muxd_start_engine(srv, engine, extra, options, services);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return rc;
}

/* Calls fn(line) for each "muxd: stats:" line of the log, in order, with
 * the line's text from "stats:" on; stops when fn returns true. */
static int each_stats_line(FILE *log, bool (*fn)(const char *, void *),
			   void *ctx)
{
	char line[1024];
	int n = 0;

	fflush(log);
	rewind(log);
	while (fgets(line, sizeof line, log)) {
		const char *at = strstr(line, "muxd: stats:");

		if (!at)
			continue;
		n++;
		if (fn && fn(at, ctx))
			break;
	}
	return n;
}

int stats_lines(FILE *log)
{
	return each_stats_line(log, NULL, NULL);
}

struct stats_query {
	int nth, seen;
	char key[64];
	long long value;
};

static bool stats_match(const char *line, void *ctx)
{
	struct stats_query *q = ctx;
	const char *at = strstr(line, q->key);

	q->seen++;
	if (q->nth && q->seen != q->nth)
		return false;
	q->value = at ? strtoll(at + strlen(q->key), NULL, 10) : -1;
	return q->nth != 0;
}

long long stats_value(FILE *log, int nth, const char *name)
{
	struct stats_query q = { .nth = nth, .value = -1 };

	snprintf(q.key, sizeof q.key, " %s=", name);
	each_stats_line(log, stats_match, &q);
	return q.value;
}

bool round_trip(int fd, const char *text, const char *want, long timeout_ms,
		char *why, size_t why_size)
{
	char back[256];
	size_t len = strlen(want), n;
	enum read_end end;

	if (len > sizeof back)
		bail_out("round_trip: \"%s\" is longer than %zu bytes", want,
			 sizeof back);
	if (write_all(fd, text, strlen(text), timeout_ms) != strlen(text)) {
		snprintf(why, why_size, "send: %s", strerror(errno));
		return false;
	}
	n = read_until_eof(fd, back, len, timeout_ms, &end);
	if (n == len && memcmp(back, want, len) == 0)
		return true;
	snprintf(why, why_size, "expected \"%s\", got %zu bytes then %s", want, n,
		 describe_read_end(end));
	return false;
}

int served_connection(unsigned short port, long timeout_ms, char *why,
		      size_t why_size)
{
	int fd = tcp_connect(port);

	if (fd == -1) {
		snprintf(why, why_size, "connect: %s", strerror(errno));
		return -1;
	}
	if (!round_trip(fd, "abc", "ABC", timeout_ms, why, why_size)) {
		close(fd);
		return -1;
	}
	return fd;
}

bool echoed_whole(unsigned short port, const void *out, size_t len,
		  long timeout_ms)
{
	unsigned char *back = malloc(len + 1);
	enum read_end end = READ_TIMEOUT;
	int fd = tcp_connect(port);
	size_t n = 0;
	bool whole;

	if (fd >= 0 && back && write_all(fd, out, len, timeout_ms) == len) {
		shutdown(fd, SHUT_WR);
		n = read_until_eof(fd, back, len + 1, timeout_ms, &end);
	}
	whole = back && n == len && end == READ_EOF && memcmp(back, out, len) == 0;
	if (fd >= 0)
		close(fd);
	free(back);
	return whole;
}

bool served_again(unsigned short port)
{
	long long deadline = now_ms() + scaled_ms(10000);
	char why[256] = "";

	do {
		int fd = served_connection(port, 1000, why, sizeof why);

		if (fd != -1) {
			close(fd);
			return true;
		}
		sleep_ms(50);
	} while (now_ms() < deadline);
	diag("last try: %s", why);
	return false;
}

bool closed_at_once(unsigned short port, char *why, size_t why_size)
{
	char buf[8];
	enum read_end end;
	size_t n;
	int err, fd = tcp_connect(port);

	if (fd == -1) {
		snprintf(why, why_size, "connect: %s", strerror(errno));
		return false;
	}
	n = read_until_eof(fd, buf, sizeof buf, 3000, &end);
	err = errno;	/* close may change it */
	close(fd);
	snprintf(why, why_size, "%zu bytes, then %s", n, describe_read_end(end));
	return n == 0 && (end == READ_EOF || (end == READ_ERROR && err == ECONNRESET));
}

void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] != -1)
			close(fds[i]);
		fds[i] = -1;
	}
}

bool program_in_path(const char *program)
{
	const char *p = getenv("PATH");
	char path[4096];

	while (p && *p) {
		size_t len = strcspn(p, ":");

		snprintf(path, sizeof path, "%.*s/%s", (int)len, p, program);
		if (len && access(path, X_OK) == 0)
			return true;
		p += len + (p[len] == ':');
	}
	return false;
}

unsigned short free_loopback_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		bail_out("a free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

/* A socket of /proc/net/FILE in LISTEN state on local port. */
static bool listed_as_listening(const char *file, unsigned short port)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof path, "/proc/net/%s", file);
	f = fopen(path, "re");
	if (!f)
		return false;	/* no IPv6 here */
	while (!found && fgets(line, sizeof line, f)) {
		unsigned local_port, state;

		found = sscanf(line, " %*d: %*x:%x %*x:%*x %x", &local_port,
			       &state) == 2 &&
			local_port == port && state == 0x0A;	/* TCP_LISTEN */
	}
	fclose(f);
	return found;
}

bool port_listening(unsigned short port)
{
	return listed_as_listening("tcp", port) ||
	       listed_as_listening("tcp6", port);
}

int live_children(pid_t pid)
{
	static pid_t kids[MAX_KIDS];
	int n = proc_children(pid, kids, MAX_KIDS), live = 0;

	for (int i = 0; i < n; i++) {
		char state = proc_state(kids[i]);

		live += state != 'Z' && state != 0;
	}
	return live;
}

int zombie_children(pid_t pid)
{
	static pid_t kids[MAX_KIDS];
	int n = proc_children(pid, kids, MAX_KIDS), zombies = 0;

	for (int i = 0; i < n; i++)
		zombies += proc_state(kids[i]) == 'Z';
	return zombies;
}

/* False if a child started while the others were read. */
static bool proc_counts_read(pid_t pid, struct proc_counts *c)
{
	int kids = live_children(pid);

	/* One by one: an initializer list's calls come in any order. */
	c->fds = proc_fd_count(pid);
	c->tcp_fds = proc_tcp_fd_count(pid);
	c->threads = proc_thread_count(pid);
	c->kids = live_children(pid);
	return c->kids == kids;
}

void proc_counts_settled(pid_t pid, long timeout_ms, struct proc_counts *out)
{
	enum { STEP_MS = 50, STILL_MS = 200 };
	long long deadline = now_ms() + scaled_ms(timeout_ms), still_since;
	struct proc_counts last;

	proc_counts_read(pid, &last);
	still_since = now_ms();
	for (;;) {
		sleep_ms(STEP_MS);
		if (!proc_counts_read(pid, out) ||
		    memcmp(out, &last, sizeof last) != 0)
			still_since = now_ms();
		else if (now_ms() - still_since >= scaled_ms(STILL_MS))
			return;
		if (now_ms() >= deadline) {
			diag("muxd's descriptors, threads or children still "
			     "change after %ld ms", scaled_ms(timeout_ms));
			return;
		}
		last = *out;
	}
}

void diag_proc_fds(pid_t pid)
{
	char dir[64];
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		char path[384], target[256];
		ssize_t n;

		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		n = readlink(path, target, sizeof target - 1);
		if (n >= 0)
			diag("  fd %s -> %.*s", e->d_name, (int)n, target);
	}
	if (d)
		closedir(d);
}

void adopt_orphans(void)
{
	/* Without it the check still runs, blind to orphans: say so. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		diag("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
}

void note_family(const struct muxd_server *srv, struct family *fam)
{
	fam->server = srv->pid;
	fam->kids = malloc(MAX_KIDS * sizeof *fam->kids);
	if (!fam->kids)
		bail_out("out of memory");
	fam->n = proc_children(srv->pid, fam->kids, MAX_KIDS);
}

/* A process that survived muxd: one of its children seen before, or any
 * process adopted by us (a child subreaper: muxd's orphans come to us). */
static int collect_leftovers(const struct family *fam, pid_t *left, int max)
{
	int n = proc_children(getpid(), left, max);

	for (int i = 0; i < fam->n && n < max; i++) {
		pid_t parent = proc_parent(fam->kids[i]);
		bool listed = false;

		for (int j = 0; j < n; j++)
			listed |= left[j] == fam->kids[i];
		if (!listed && (parent == 1 || parent == fam->server))
			left[n++] = fam->kids[i];
	}
	return n;
}

void check_nothing_left(struct family *fam, const char *label)
{
	static pid_t left[MAX_KIDS];
	long long deadline = now_ms() + scaled_ms(5000);
	int n;

	/* An orphan that is just exiting is a zombie of ours for a moment, a
	 * little longer on a loaded machine. */
	while ((n = collect_leftovers(fam, left, MAX_KIDS)) > 0 &&
	       now_ms() < deadline) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		sleep_ms(20);
	}
	if (!ok(n == 0, "%s: no child process outlives muxd", label))
		for (int i = 0; i < n && i < 10; i++)
			diag("pid %d (state %c) outlived muxd", (int)left[i],
			     proc_state(left[i]) ? proc_state(left[i]) : '-');
	for (int i = 0; i < n; i++) {
		kill(left[i], SIGKILL);
		if (proc_parent(left[i]) == getpid())
			waitpid(left[i], NULL, 0);
	}
	free(fam->kids);
	fam->kids = NULL;
	fam->n = 0;
}

static bool binary_has(const char *path, const char *const needles[])
{
	static char buf[1 << 20];
	size_t keep = 64, have = 0, n;
	bool found = false;
	FILE *f = fopen(path, "re");

	if (!f)
		return false;
	while (!found && (n = fread(buf + have, 1, sizeof buf - have, f)) > 0) {
		have += n;
		for (size_t i = 0; needles[i] && !found; i++)
			found = memmem(buf, have, needles[i], strlen(needles[i])) != NULL;
		memmove(buf, buf + have - keep, keep);	/* a needle across reads */
		have = keep;
	}
	fclose(f);
	return found;
}

bool muxd_instrumented(pid_t pid)
{
	static const char *const runtimes[] = {
		"__asan_init", "__tsan_init", "__msan_init", NULL,
	};
	char path[64], exe[512];
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	return strstr(exe, "valgrind") || strstr(exe, "memcheck") ||
	       binary_has(path, runtimes);
}

bool bytes_as_expected(const unsigned char *got, size_t n,
		       const unsigned char *expect, size_t expect_len,
		       size_t at, char *why, size_t why_size)
{
	size_t room = expect_len - at, common = n < room ? n : room, i = 0;

	if (memcmp(got, expect + at, common) != 0) {
		while (got[i] == expect[at + i])
			i++;
		snprintf(why, why_size, "byte %zu: got 0x%02x, expected 0x%02x",
			 at + i, got[i], expect[at + i]);
		return false;
	}
	if (n > room) {
		snprintf(why, why_size, "%zu bytes more than the %zu expected",
			 n - room, expect_len);
		return false;
	}
	return true;
}
