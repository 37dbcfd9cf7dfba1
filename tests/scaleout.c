/* scaleout.c -- muxd behind an existing L4 balancer: HAProxy.
 *
 * usage: scaleout        (skipped, with the reason, without haproxy)
 *
 * Two muxd (upper, --stats) on loopback, and HAProxy in front of them in
 * TCP mode, round robin, health-checking each every 100 ms. 1000 clients
 * go through HAProxy, each sending its own bytes and verifying every byte
 * of the answer; both instances must have served some (their --stats
 * bytes_in, which health checks do not touch), and all of them together
 * every byte. Then one instance is stopped with SIGTERM, and 100 new
 * clients must still be served in full, by the other. Nothing is timed:
 * a deadline only keeps a broken set-up from hanging the run.
 */
#include "harness.h"
#include "tap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 1000
#define AFTER_STOP 100
#define MESSAGE 600
#define SAFETY_MS 30000

struct balancer {
	pid_t pid;
	unsigned short port;
	char config[64];
	FILE *log;
};

static void write_config(struct balancer *b, const struct muxd_server m[2])
{
	FILE *f;
	int fd;

	snprintf(b->config, sizeof b->config, "%s/muxd-haproxy.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(b->config);
	f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f)
		bail_out("haproxy config: %s", strerror(errno));
	fprintf(f, "defaults\n"
		"    mode tcp\n"
		"    timeout connect 5s\n"
		"    timeout client 30s\n"
		"    timeout server 30s\n"
		"    retries 3\n"
		"    option redispatch\n"
		"frontend clients\n"
		"    bind 127.0.0.1:%u\n"
		"    default_backend muxd\n"
		"backend muxd\n"
		"    balance roundrobin\n"
		"    server a 127.0.0.1:%u check inter 100ms fall 1 rise 1\n"
		"    server b 127.0.0.1:%u check inter 100ms fall 1 rise 1\n",
		b->port, muxd_port(&m[0], "upper"), muxd_port(&m[1], "upper"));
	fclose(f);
}

static void start_balancer(struct balancer *b, const struct muxd_server m[2])
{
	b->port = free_loopback_port();
	write_config(b, m);
	b->log = tmpfile();
	if (!b->log)
		bail_out("tmpfile: %s", strerror(errno));
	fflush(stdout);
	b->pid = fork();
	if (b->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fileno(b->log), STDOUT_FILENO);
		dup2(fileno(b->log), STDERR_FILENO);
		execlp("haproxy", "haproxy", "-db", "-f", b->config, (char *)NULL);
		_exit(127);
	}
	if (b->pid < 0)
		bail_out("fork: %s", strerror(errno));
}

static void stop_balancer(struct balancer *b)
{
	int status;

	kill(b->pid, SIGTERM);
	waitpid(b->pid, &status, 0);
	unlink(b->config);
	fclose(b->log);
}

/* Client i's message: its own bytes, lower and upper case, digits. */
static void message_of(int i, unsigned char *out)
{
	for (int k = 0; k < MESSAGE; k++)
		out[k] = (unsigned char)"abcdefghijklmnopqrstuvwxyz0123456789XYZ\n"
			[(i * 7 + k) % 40];
}

/* One client through the balancer: its message, half-close, the whole
 * answer in upper case, then the end. */
static bool client_served(unsigned short port, int i)
{
	unsigned char out[MESSAGE], want[MESSAGE], back[MESSAGE + 1];
	enum read_end end;
	size_t n = 0;
	int fd = tcp_connect(port);

	if (fd < 0)
		return false;
	message_of(i, out);
	for (int k = 0; k < MESSAGE; k++)
		want[k] = out[k] >= 'a' && out[k] <= 'z' ? out[k] - 32 : out[k];
	if (write_all(fd, out, MESSAGE, SAFETY_MS) == MESSAGE &&
	    shutdown(fd, SHUT_WR) == 0)
		n = read_until_eof(fd, back, sizeof back, SAFETY_MS, &end);
	close(fd);
	return n == MESSAGE && end == READ_EOF && memcmp(back, want, MESSAGE) == 0;
}

/* The balancer takes clients once it listens and a server is up. */
static bool balancer_ready(const struct balancer *b)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);

	while (now_ms() < deadline) {
		if (client_served(b->port, 0))
			return true;
		sleep_ms(50);
	}
	return false;
}

static int clients_served(unsigned short port, int first, int count)
{
	int served = 0;

	for (int i = first; i < first + count; i++)
		served += client_served(port, i);
	return served;
}

/* A fresh --stats line from m, and its bytes_in. */
static long long bytes_in(struct muxd_server *m, FILE *log)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int lines = stats_lines(log);

	kill(m->pid, SIGUSR1);
	while (stats_lines(log) == lines && now_ms() < deadline)
		sleep_ms(20);
	return stats_value(log, 0, "bytes_in");
}

int main(void)
{
	const char *const extra[] = { "--stats", NULL }, *const none[] = { NULL };
	const char *const services[] = { "upper", NULL };
	struct muxd_server m[2];
	FILE *logs[2] = { tmpfile(), tmpfile() };
	struct balancer b;
	long long a_bytes, b_bytes, b_before;
	int served;

	if (!program_in_path("haproxy"))
		plan_skip_all("haproxy is not installed");
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 2; i++)
		if (!logs[i] || muxd_start_engine_logged(&m[i], "epoll-lt", extra, none,
							 services, logs[i]) != 0)
			bail_out("muxd %d did not start", i);
	start_balancer(&b, m);
	if (!ok(balancer_ready(&b), "haproxy in front of two muxd serves a client")) {
		fflush(b.log);
		rewind(b.log);
		diag("haproxy could not serve on 127.0.0.1:%u; its log:", b.port);
		for (char line[512]; fgets(line, sizeof line, b.log);)
			diag("%s", line);
	}
	served = clients_served(b.port, 1, CLIENTS);
	is_int(served, CLIENTS, "%d clients through haproxy, every byte verified",
	       CLIENTS);
	a_bytes = bytes_in(&m[0], logs[0]);
	b_bytes = bytes_in(&m[1], logs[1]);
	ok(a_bytes > 0 && b_bytes > 0, "both instances served clients "
	   "(bytes_in %lld and %lld)", a_bytes, b_bytes);
	is_int(a_bytes + b_bytes, (long long)(CLIENTS + 1) * MESSAGE,
	       "between them, the instances received every byte sent");
	ok(muxd_stop(&m[0], 10000) == 0 && exit_code_of(m[0].wait_status) == 0,
	   "one instance stops on SIGTERM");
	b_before = b_bytes;
	served = clients_served(b.port, 0, AFTER_STOP);
	is_int(served, AFTER_STOP, "with one instance stopped, %d new clients "
	       "are served in full", AFTER_STOP);
	is_int(bytes_in(&m[1], logs[1]) - b_before, (long long)AFTER_STOP * MESSAGE,
	       "by the instance left");
	ok(muxd_alive(&m[1]), "the instance left is still serving");
	stop_balancer(&b);
	muxd_stop(&m[1], 10000);
	fclose(logs[0]);
	fclose(logs[1]);
	return done_testing();
}
