/* stats.c -- muxd --stats counts exactly, on every engine.
 *
 * usage: stats
 *
 * A known exchange: 10 echo connections of 1000 bytes each, each ended by
 * the client's half-close. It must give accepted=10, bytes_in = bytes_out
 * = 10000, refused = timed_out = 0, and at least one accept, two reads
 * (the data, the end) and one write per connection, whatever the engine's
 * processes and threads. A [completion] engine makes none of those calls:
 * the kernel does the work and posts completions, so it must count at
 * least those four completions and two submissions (the receive, the
 * send) per connection, some io_uring_enter calls, and no accept, read or
 * write. SIGUSR1 prints the line while the server runs
 * (with one connection still open, whose bytes count already), and the
 * exit prints it again.
 *
 * The limits: with --max-conns 1 --idle-timeout 1, one connection served
 * and left silent, a second one refused, must give accepted=1, refused=1
 * and, once the first has timed out, timed_out=1. [serial] engines have no
 * --max-conns (one at a time is their nature): they skip that case.
 *
 * --stats-interval: "muxd: rates:" lines come while it runs, each with its
 * interval and every counter, and over all of them each rate times its
 * interval adds up to what was done (the 10 connections, their bytes),
 * within the rounding of the printed rates.
 */
#include "harness.h"
#include "tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECTIONS 10
#define BYTES 1000
#define OPEN_BYTES 13		/* "abc", then "0123456789", on the one left open */
/* For what must happen at some point (an answer, a stats line): only a
 * hung server takes this long, so it is never the bound asserted. */
#define SAFETY_MS 30000

/* Start muxd --stats serving `service`, its standard error going to log. */
static int start_with_log(struct muxd_server *srv, const char *engine,
			  const char *service, const char *const options[],
			  FILE *log)
{
	const char *const extra[] = { "--stats", "--workers", "4", NULL };
	const char *const services[] = { service, NULL };

	return muxd_start_engine_logged(srv, engine, extra, options, services,
					log);
}

/* One echo exchange of BYTES, ended by our half-close. */
static bool exchange(unsigned short port)
{
	static unsigned char out[BYTES];

	memset(out, 'x', sizeof out);
	return echoed_whole(port, out, sizeof out, SAFETY_MS);
}

/* Send SIGUSR1 and wait for stats line number `want`. */
static bool snapshot(FILE *log, pid_t pid, int want)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int lines;

	kill(pid, SIGUSR1);
	do {
		sleep_ms(20);
		lines = stats_lines(log);
	} while (lines < want && now_ms() < deadline);
	return lines == want;
}

/* The system calls, or for [completion] the requests, of the exchange. */
static void check_calls(FILE *log, const char *engine, bool completion)
{
	if (!completion) {
		ok(stats_value(log, 0, "sys_accept") >= CONNECTIONS + 1 &&
		   stats_value(log, 0, "sys_read") >= 2 * CONNECTIONS &&
		   stats_value(log, 0, "sys_write") >= CONNECTIONS,
		   "%s --stats: at least an accept, two reads and a write counted "
		   "per connection", engine);
		return;
	}
	ok(stats_value(log, 0, "uring_cqes") >= 4 * CONNECTIONS &&
	   stats_value(log, 0, "uring_sqes") >= 2 * CONNECTIONS &&
	   stats_value(log, 0, "sys_uring_enter") >= 1,
	   "%s --stats: at least four completions and two submissions per "
	   "connection, and io_uring_enter calls", engine);
	is_int(stats_value(log, 0, "sys_accept") + stats_value(log, 0, "sys_read") +
	       stats_value(log, 0, "sys_write"), 0,
	       "%s --stats: no accept, read or write system call counted", engine);
}

static void check_exchange(const char *engine, bool completion)
{
	const char *const options[] = { NULL };
	FILE *log = tmpfile();
	struct muxd_server srv;
	int served = 0, held;
	char why[256] = "";

	if (!log || start_with_log(&srv, engine, "echo", options, log) != 0) {
		ok(false, "%s --stats: muxd starts", engine);
		if (log)
			fclose(log);
		return;
	}
	for (int i = 0; i < CONNECTIONS; i++)
		served += exchange(muxd_port(&srv, "echo"));
	held = tcp_connect(muxd_port(&srv, "echo"));
	ok(held != -1 && round_trip(held, "abc", "abc", SAFETY_MS, why, sizeof why) &&
	   round_trip(held, "0123456789", "0123456789", SAFETY_MS, why, sizeof why),
	   "%s: a connection is open and has moved bytes%s%s", engine,
	   why[0] ? ": " : "", why);
	ok(snapshot(log, srv.pid, 1), "%s --stats: SIGUSR1 prints the line while it runs",
	   engine);
	is_int(stats_value(log, 0, "bytes_in"), CONNECTIONS * BYTES + OPEN_BYTES,
	       "%s --stats: SIGUSR1's bytes_in counts the open connection's bytes",
	       engine);
	if (held != -1)
		close(held);
	ok(muxd_stop(&srv, 5000) == 0 && exit_code_of(srv.wait_status) == 0,
	   "%s --stats: exits 0", engine);
	ok(served == CONNECTIONS, "%s: %d echo exchanges of %d bytes served",
	   engine, CONNECTIONS, BYTES);
	is_int(stats_value(log, 0, "accepted"), CONNECTIONS + 1,
	       "%s --stats: accepted", engine);
	ok(stats_lines(log) == 2, "%s --stats: the line is printed again at exit",
	   engine);
	is_int(stats_value(log, 0, "bytes_in"), CONNECTIONS * BYTES + OPEN_BYTES,
	       "%s --stats: bytes_in", engine);
	is_int(stats_value(log, 0, "bytes_out"), CONNECTIONS * BYTES + OPEN_BYTES,
	       "%s --stats: bytes_out", engine);
	is_int(stats_value(log, 0, "refused") + stats_value(log, 0, "timed_out"),
	       0, "%s --stats: nothing refused or timed out", engine);
	check_calls(log, engine, completion);
	fclose(log);
}

static void check_limits(const char *engine)
{
	const char *const options[] = { "--max-conns", "1", "--idle-timeout", "1",
					NULL };
	FILE *log = tmpfile();
	struct muxd_server srv;
	int first = -1;
	char why[256] = "";
	enum read_end end;
	bool refused;

	if (!log || start_with_log(&srv, engine, "upper", options, log) != 0) {
		ok(false, "%s --stats --max-conns 1: muxd starts", engine);
		if (log)
			fclose(log);
		return;
	}
	first = served_connection(muxd_port(&srv, "upper"), SAFETY_MS, why, sizeof why);
	refused = first != -1 && closed_at_once(muxd_port(&srv, "upper"), why, sizeof why);
	ok(first != -1 && refused, "%s --max-conns 1: one served, a second refused%s%s",
	   engine, why[0] ? ": " : "", why);
	/* The first one's idle timeout: muxd counts it before it closes. */
	if (first != -1)
		read_until_eof(first, why, sizeof why, SAFETY_MS, &end);
	ok(snapshot(log, srv.pid, 1), "%s --stats: SIGUSR1 prints the line", engine);
	is_int(stats_value(log, 0, "accepted"), 1, "%s --stats: accepted=1", engine);
	is_int(stats_value(log, 0, "refused"), 1, "%s --stats: refused=1", engine);
	is_int(stats_value(log, 0, "timed_out"), 1, "%s --stats: timed_out=1", engine);
	if (first != -1)
		close(first);
	muxd_stop(&srv, 5000);
	fclose(log);
}

#define RATE_INTERVAL "0.2"

/* The "muxd: rates:" lines of the log, and for key (if not NULL) the sum
 * of rate x interval over them in *total. */
static int rates_lines(FILE *log, const char *key, double *total,
		       double *seconds)
{
	char line[1024], pattern[64];
	int n = 0;

	snprintf(pattern, sizeof pattern, " %s=", key ? key : "accepted");
	*total = *seconds = 0;
	fflush(log);
	rewind(log);
	while (fgets(line, sizeof line, log)) {
		const char *at = strstr(line, "muxd: rates: interval=");
		const char *value = strstr(line, pattern);

		if (!at || !value)
			continue;
		n++;
		*seconds += strtod(at + 22, NULL);
		*total += strtod(value + strlen(pattern), NULL) * strtod(at + 22, NULL);
	}
	return n;
}

/* Wait for the log to hold `want` rates lines. */
static bool await_rates(FILE *log, int want)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	double total, seconds;

	while (rates_lines(log, NULL, &total, &seconds) < want &&
	       now_ms() < deadline)
		sleep_ms(20);
	return rates_lines(log, NULL, &total, &seconds) >= want;
}

/* Rates are printed rounded to whole units per second; the interval to
 * the millisecond. */
static bool adds_up(FILE *log, const char *key, double want)
{
	double total, seconds;

	rates_lines(log, key, &total, &seconds);
	if (total >= want - (0.5 * seconds + 0.01 * want + 0.5) &&
	    total <= want + (0.5 * seconds + 0.01 * want + 0.5))
		return true;
	diag("%s: rates x intervals add up to %.1f over %.3f s, not %.0f",
	     key, total, seconds, want);
	return false;
}

/* Every rates line names each kind of call; shutdown may read after the
 * last line, so the reads are bounded below only. */
/* Every line has each kind; and over the lines at least two of `io` (a
 * read, or for a [completion] engine a completion) per connection. */
static bool system_calls_by_kind(FILE *log, const char *io)
{
	double reads, other, seconds, secs;
	int lines = rates_lines(log, io, &reads, &seconds);

	return lines > 0 && rates_lines(log, "sys_write", &other, &secs) == lines &&
	       rates_lines(log, "sys_wait", &other, &secs) == lines &&
	       rates_lines(log, "sys_accept", &other, &secs) == lines &&
	       rates_lines(log, "sys_lock", &other, &secs) == lines &&
	       reads >= 2 * CONNECTIONS - (0.5 * seconds + 0.5);
}

static void check_interval(const char *engine, bool completion)
{
	const char *const options[] = { "--stats-interval", RATE_INTERVAL, NULL };
	FILE *log = tmpfile();
	struct muxd_server srv;
	int served = 0, before;
	double total, seconds;

	if (!log || start_with_log(&srv, engine, "echo", options, log) != 0) {
		ok(false, "%s --stats-interval: muxd starts", engine);
		if (log)
			fclose(log);
		return;
	}
	ok(await_rates(log, 1), "%s --stats-interval: a rates line comes while "
	   "nothing happens", engine);
	for (int i = 0; i < CONNECTIONS; i++)
		served += exchange(muxd_port(&srv, "echo"));
	/* Two more lines: the second covers only time after the exchanges. */
	before = rates_lines(log, NULL, &total, &seconds);
	ok(await_rates(log, before + 2), "%s --stats-interval: lines go on", engine);
	ok(muxd_stop(&srv, 5000) == 0 && exit_code_of(srv.wait_status) == 0,
	   "%s --stats-interval: exits 0", engine);
	ok(served == CONNECTIONS && adds_up(log, "accepted", CONNECTIONS) &&
	   adds_up(log, "bytes_in", CONNECTIONS * BYTES) &&
	   adds_up(log, "bytes_out", CONNECTIONS * BYTES),
	   "%s --stats-interval: connections and bytes per second, times each "
	   "interval, add up to the %d exchanges", engine, CONNECTIONS);
	ok(system_calls_by_kind(log, completion ? "uring_cqes" : "sys_read"),
	   "%s --stats-interval: every line has the system calls by kind; at "
	   "least two %s per connection over the lines", engine,
	   completion ? "completions" : "reads");
	fclose(log);
}

int main(void)
{
	static struct engine_info all[64];
	int engines = muxd_engines(all, 64);

	adopt_orphans();
	for (int i = 0; i < engines; i++) {
		const char *name = all[i].name;
		char why[512];

		if (engine_refused(name, NULL, why, sizeof why)) {
			skip(1, "muxd refuses engine %s here: %s", name, why);
			continue;
		}
		check_exchange(name, engine_has_tag(&all[i], "completion"));
		check_interval(name, engine_has_tag(&all[i], "completion"));
		if (engine_has_tag(&all[i], "serial"))
			skip(5, "%s: [serial] has no --max-conns", name);
		else
			check_limits(name);
	}
	ok(engines >= 10, "every engine of --list-engines was checked (%d)", engines);
	return done_testing();
}
