/* threads.c -- the engines that take --threads: every thread serves, and
 * a stop leaves none behind.
 *
 * usage: threads
 *
 * For each engine that --list-engines=tsv says takes --threads, and each
 * of its --accept strategies (or none): muxd --threads 4 --stats, then
 * CLIENTS echo clients connected together, each served a round trip while
 * all are open. The SIGUSR1 line must show four threads' accepted counts
 * (accepted_per_thread=a,b,c,d) that sum to CLIENTS, none of them 0, with
 * accepted_thread_min and _max agreeing; with handoff, which gives each
 * connection to the thread with the fewest open, every count is within
 * 10 % of an even share. Then SIGTERM with the clients still open: the
 * grace period keeps the threads that have clients serving (a client is
 * still answered); once they close, muxd exits 0 in time.
 * muxd joins every serving thread before it exits, so a thread that did
 * not stop would keep it from exiting.
 *
 * Then a stop that comes during a burst, BURST_ROUNDS times: THREADS - 1
 * idle clients keep muxd in its (long) grace period, BURST stamp clients
 * connect, and SIGTERM comes half-way. Within OUTCOME_MS muxd must hold
 * no connection but the idle ones: each stamp client it accepted was
 * served or closed, none left with nobody to serve it (handed to a thread
 * that had already stopped) until the grace period ends. (Counted on
 * muxd's side: a client whose handshake the kernel completed as the
 * listener closed may never hear from the kernel again, which says
 * nothing about muxd.)
 */
#include "harness.h"
#include "tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define THREADS 4
#define CLIENTS 400
#define EVEN_SHARE (CLIENTS / THREADS)
#define BALANCE_PCT 10
/* Only a hung server takes this long, so it is never the bound asserted. */
#define SAFETY_MS 30000
#define BURST 200		/* stamp clients connecting as the stop comes */
#define BURST_ROUNDS 10
#define OUTCOME_MS 3000		/* served or closed by then; the grace is 60 s */

/* The text after "NAME=" in the last stats line of log, or "". */
static void last_stats_field(FILE *log, const char *name, char *out,
			     size_t size)
{
	char line[4096], key[64];

	snprintf(key, sizeof key, " %s=", name);
	out[0] = '\0';
	fflush(log);
	rewind(log);
	while (fgets(line, sizeof line, log)) {
		const char *at = strstr(line, "muxd: stats:") ? strstr(line, key) : NULL;

		if (at)
			snprintf(out, size, "%.*s", (int)strcspn(at + strlen(key), " \n"),
				 at + strlen(key));
	}
}

/* "a,b,c" into counts; returns how many. */
static int parse_counts(const char *text, long long counts[], int max)
{
	int n = 0;

	while (*text && n < max) {
		char *end;

		counts[n++] = strtoll(text, &end, 10);
		if (end == text)
			return -1;
		text = *end == ',' ? end + 1 : end;
	}
	return n;
}

static bool sigusr1_line(FILE *log, pid_t pid)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int before = stats_lines(log);

	kill(pid, SIGUSR1);
	while (stats_lines(log) == before && now_ms() < deadline)
		sleep_ms(20);
	return stats_lines(log) > before;
}

/* How the connections reach the threads decides what the test can ask:
 * the kernel's hash (reuseport) and muxd's choice (handoff) give every
 * thread some of 400; EPOLLEXCLUSIVE wakes whichever threads are waiting
 * at that moment, and on a loaded machine a thread that does not get to
 * wait during the connects gets none, so there it asks that the
 * connections were shared at all. */
enum spread { SPREAD_ALL, SPREAD_EVEN, SPREAD_WAITERS };

static void check_balance(const char *label, FILE *log, enum spread spread)
{
	char text[512], least[32], most[32];
	long long counts[THREADS + 1], sum = 0, lo = -1, hi = -1;
	int n, serving = 0;

	last_stats_field(log, "accepted_per_thread", text, sizeof text);
	last_stats_field(log, "accepted_thread_min", least, sizeof least);
	last_stats_field(log, "accepted_thread_max", most, sizeof most);
	n = parse_counts(text, counts, THREADS + 1);
	diag("%s: accepted_per_thread=%s min=%s max=%s", label, text, least, most);
	if (!ok(n == THREADS, "%s: the stats line has %d threads' accepted counts",
		label, THREADS)) {
		skip(4, "no counts to look at");
		return;
	}
	for (int i = 0; i < n; i++) {
		sum += counts[i];
		serving += counts[i] > 0;
		lo = lo < 0 || counts[i] < lo ? counts[i] : lo;
		hi = counts[i] > hi ? counts[i] : hi;
	}
	is_int(sum, CLIENTS, "%s: they add up to the %d clients", label, CLIENTS);
	ok(lo == atoll(least) && hi == atoll(most), "%s: min and max agree with "
	   "the counts", label);
	if (spread == SPREAD_WAITERS)
		ok(serving >= 2, "%s: the threads waiting shared the connections "
		   "(%d of %d served some)", label, serving, THREADS);
	else
		ok(lo > 0, "%s: every thread served some connections", label);
	if (spread == SPREAD_EVEN)
		ok(lo * 100 >= EVEN_SHARE * (100 - BALANCE_PCT) &&
		   hi * 100 <= EVEN_SHARE * (100 + BALANCE_PCT),
		   "%s: each thread within %d %% of %d", label, BALANCE_PCT,
		   EVEN_SHARE);
	else
		skip(1, "%s: only handoff promises an even share", label);
}

/* Connect them all, then a round trip on each while all are open. */
static int open_clients(unsigned short port, int fds[])
{
	char why[256];
	int served = 0;

	for (int i = 0; i < CLIENTS; i++)
		fds[i] = tcp_connect(port);
	for (int i = 0; i < CLIENTS; i++)
		if (fds[i] >= 0 && round_trip(fds[i], "ping", "ping", SAFETY_MS,
					      why, sizeof why))
			served++;
	return served;
}

/* The serving threads are made before the listening lines but start
 * serving only after them: wait until they are counted (a sanitizer may
 * add a thread of its own) and a moment more, so that none misses the
 * clients. Returns the tasks counted. */
static int threads_up(struct muxd_server *srv)
{
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int tasks;

	while ((tasks = proc_thread_count(srv->pid)) >= 0 &&
	       tasks < THREADS + 1 && now_ms() < deadline)
		sleep_ms(10);
	sleep_ms(scaled_ms(100));	/* and into their first wait */
	return proc_thread_count(srv->pid);
}

/* A thread with nothing left to serve may end at once; those serving go
 * on through the grace period. */
static void check_stop(const char *label, struct muxd_server *srv, int fds[],
		       int tasks_up)
{
	char why[256], status[64];
	int tasks, exited;

	kill(srv->pid, SIGTERM);
	sleep_ms(scaled_ms(200));
	tasks = proc_thread_count(srv->pid);
	ok(tasks >= 2 && tasks <= tasks_up, "%s: during the grace period "
	   "muxd runs on with its clients (%d tasks of %d: the main thread and "
	   "those still serving)", label, tasks, tasks_up);
	ok(round_trip(fds[0], "still", "still", SAFETY_MS, why, sizeof why),
	   "%s: an open client is still served after SIGTERM", label);
	for (int i = 0; i < CLIENTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	exited = muxd_wait(srv, SAFETY_MS) == 0;
	ok(exited && exit_code_of(srv->wait_status) == 0,
	   "%s: once the clients close, every thread stops and muxd exits 0 (%s)",
	   label, exited ? describe_status(srv->wait_status, status,
					   sizeof status) : "still running");
}

/* muxd's connections OUTCOME_MS after the burst, once down to `idle`. */
static int connections_left(pid_t pid, int idle)
{
	long long deadline = now_ms() + scaled_ms(OUTCOME_MS);
	int n;

	while ((n = proc_tcp_conn_count(pid)) > idle && now_ms() < deadline)
		sleep_ms(20);
	return n;
}

/* One round; returns the connections muxd held beyond the idle ones. */
static int stop_burst_round(const char *label, const char *engine,
			    const char *const extra[])
{
	const char *const services[] = { "echo", "stamp", NULL };
	const char *const none[] = { NULL };
	static int burst[BURST];
	int idle[THREADS - 1], left;
	struct muxd_server srv;
	char why[256];

	if (muxd_start_engine(&srv, engine, extra, none, services) < 0)
		bail_out("%s: muxd did not start", label);
	for (int i = 0; i < THREADS - 1; i++) {
		idle[i] = tcp_connect(muxd_port(&srv, "echo"));
		if (idle[i] < 0 || !round_trip(idle[i], "x", "x", SAFETY_MS, why,
					       sizeof why))
			bail_out("%s: an idle client was not served: %s", label, why);
	}
	for (int i = 0; i < BURST; i++) {
		burst[i] = tcp_connect(muxd_port(&srv, "stamp"));
		if (i == BURST / 2)
			kill(srv.pid, SIGTERM);
	}
	left = connections_left(srv.pid, THREADS - 1);
	close_all(burst, BURST);
	close_all(idle, THREADS - 1);
	if (muxd_wait(&srv, SAFETY_MS) < 0 || exit_code_of(srv.wait_status) != 0)
		bail_out("%s: muxd did not exit 0 once its clients closed", label);
	return left - (THREADS - 1);
}

static void check_stop_burst(const char *engine, const char *strategy,
			     const char *label)
{
	const char *const extra[] = { "--threads", "4", "--grace", "60",
				      strategy ? "--accept" : NULL, strategy,
				      NULL };
	int stranded = 0;

	for (int round = 0; round < BURST_ROUNDS; round++)
		stranded += stop_burst_round(label, engine, extra);
	is_int(stranded, 0, "%s: a stop during a burst of %d connections, %d "
	       "times: each one accepted is served or closed within %d ms",
	       label, BURST, BURST_ROUNDS, OUTCOME_MS);
}

static void run(const char *engine, const char *strategy)
{
	const char *const extra[] = { "--stats", "--threads", "4", "--grace", "30",
				      strategy ? "--accept" : NULL, strategy, NULL };
	const char *const services[] = { "echo", NULL }, *const none[] = { NULL };
	static int fds[CLIENTS];
	struct muxd_server srv;
	char label[96];
	FILE *log = tmpfile();
	int tasks;

	snprintf(label, sizeof label, "%s%s%s", engine, strategy ? " --accept=" : "",
		 strategy ? strategy : "");
	if (!log)
		bail_out("tmpfile failed");
	if (muxd_start_engine_logged(&srv, engine, extra, none, services, log) < 0)
		bail_out("%s: muxd did not start", label);
	tasks = threads_up(&srv);
	ok(tasks >= THREADS + 1, "%s: %d serving threads and the main thread "
	   "are up (%d tasks)", label, THREADS, tasks);
	is_int(open_clients(muxd_port(&srv, "echo"), fds), CLIENTS,
	       "%s: %d clients open at once, each served", label, CLIENTS);
	ok(sigusr1_line(log, srv.pid), "%s: SIGUSR1 prints the stats line", label);
	check_balance(label, log,
		      !strategy ? SPREAD_ALL :
		      strcmp(strategy, "handoff") == 0 ? SPREAD_EVEN :
		      strcmp(strategy, "exclusive") == 0 ? SPREAD_WAITERS : SPREAD_ALL);
	check_stop(label, &srv, fds, tasks);
	if (!srv.reaped)
		muxd_stop(&srv, 5000);
	fclose(log);
	check_stop_burst(engine, strategy, label);
}

/* One engine: a run per --accept strategy, or one run. */
static void run_engine(const struct engine_info *e)
{
	char strategies[sizeof e->strategies], *save = NULL;

	snprintf(strategies, sizeof strategies, "%s", e->strategies);
	if (!strategies[0])
		run(e->name, NULL);
	for (char *s = strtok_r(strategies, " ", &save); s;
	     s = strtok_r(NULL, " ", &save))
		run(e->name, s);
}

int main(void)
{
	static struct engine_info all[64];
	int n = muxd_engines(all, 64), engines = 0;

	for (int i = 0; i < n; i++)
		if (all[i].takes_threads) {
			run_engine(&all[i]);
			engines++;
		}
	ok(engines > 0, "muxd lists engines that take --threads (%d)", engines);
	return done_testing();
}
