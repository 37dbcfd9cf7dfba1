/* trace.c -- --trace on one engine: the timeline says what --stats says.
 *
 * usage: trace ENGINE [extra muxd args...]   (tests/trace.matrix)
 *
 * A fixed workload, CONNECTIONS echo exchanges of BYTES each ended by the
 * client's half-close, under --trace and --stats; then SIGTERM. The file
 * must be valid JSON (read by tests/json.c, a strict parser, no python),
 * every event whole and every span ending after it begins, with as many
 * accepts as --stats counted connections, the same bytes in and out, a
 * close per connection, nothing dropped, and the tracks the engine's tags
 * call for:
 *   neither [threads] nor [processes]  one track, the main thread's
 *   (--threads)                        the main thread and --threads more
 *   [threads] [pool] or [offload]      the main thread and --workers more
 *   [threads] alone                    the main thread and one per connection
 *   [processes] [pool]                 the main process and a process per
 *                                      worker forked, --workers at most
 *   [processes] alone                  the main process and one per connection
 * The counter tracks of --stats end with its own count of connections.
 *
 * Then the bounds and the failures, each with the same workload: with
 * --trace-limit=LOW_LIMIT, events are dropped, the file says how many
 * (in all, and on the tracks that dropped them), and every byte is still
 * served; with --trace=/dev/full, every byte is served and muxd exits 1
 * naming the file and "No space left on device"; a SIGTERM while a
 * client is in mid-stream lets it finish (the grace period), exits 0 and
 * leaves a whole trace with that client in it.
 */
#include "harness.h"
#include "tap.h"
#include "tracefile.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECTIONS 8
#define BYTES 1000
#define WORKERS "4"
#define THREADS "3"
#define LOW_LIMIT "10"
/* What must happen at some point: only a hung server takes this long. */
#define SAFETY_MS 30000

static const char *engine;
static const char *const *extra;
static struct engine_tags tags;
static char dir[] = "/tmp/muxd-trace.XXXXXX";

/* One echo exchange of BYTES, ended by our half-close, every byte back. */
static bool exchange(unsigned short port)
{
	static unsigned char out[BYTES];

	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (unsigned char)('a' + i % 26);
	return echoed_whole(port, out, sizeof out, SAFETY_MS);
}

/* muxd with --trace=path, --stats and the engine's sizes, its standard
 * error in log; runs the workload, stops it. Returns the connections
 * served whole, or -1 when muxd did not start. */
static int run_workload(struct muxd_server *srv, const char *trace,
			const char *limit, FILE *log)
{
	char trace_opt[128], limit_opt[64];
	const char *options[12] = { trace_opt, "--stats" };
	const char *const services[] = { "echo", NULL };
	int n = 2, served = 0;

	snprintf(trace_opt, sizeof trace_opt, "--trace=%s", trace);
	if (limit) {
		snprintf(limit_opt, sizeof limit_opt, "--trace-limit=%s", limit);
		options[n++] = limit_opt;
	}
	if (tags.pool || tags.offload) {
		options[n++] = "--workers";
		options[n++] = WORKERS;
	}
	if (tags.takes_threads) {
		options[n++] = "--threads";
		options[n++] = THREADS;
	}
	options[n] = NULL;
	if (muxd_start_engine_logged(srv, engine, extra, options, services, log) < 0)
		return -1;
	for (int i = 0; i < CONNECTIONS; i++)
		served += exchange(muxd_port(srv, "echo"));
	muxd_stop(srv, SAFETY_MS);
	return served;
}

static struct trace_summary *read_trace(const char *path, const char *what)
{
	struct trace_summary *s;
	char why[256];

	if (!ok(trace_read(path, &s, why, sizeof why) == 0,
		"%s: %s is valid JSON, a trace-event object", engine, what))
		diag("%s", why);
	return s;
}

/* The tracks the tags call for (see the top). */
static void check_tracks(const struct trace_summary *s)
{
	size_t others = s->n_tracks - (s->main_pid ? 1 : 0);
	size_t children = s->n_processes - 1;

	ok(s->main_pid > 0, "%s: the main thread's track is named \"main\"", engine);
	if (tags.processes) {
		ok(s->n_tracks == s->n_processes && children == s->forks &&
		   (tags.pool ? children >= 1 && children <= (size_t)atoi(WORKERS)
			      : children == CONNECTIONS),
		   "%s: a process track per %s (%zu forked, %zu processes, "
		   "%zu tracks)", engine, tags.pool ? "worker, --workers "
		   WORKERS " at most" : "connection", (size_t)s->forks,
		   s->n_processes, s->n_tracks);
	} else if (tags.threads) {
		bool workers = tags.pool || tags.offload;
		size_t want = tags.takes_threads ? (size_t)atoi(THREADS)
			    : workers ? (size_t)atoi(WORKERS) : CONNECTIONS;

		ok(s->n_processes == 1 && others == want,
		   "%s: the main thread's track and %zu more (%s), in one "
		   "process: %zu, in %zu", engine, want, tags.takes_threads
		   ? "--threads" : workers ? "--workers" : "a connection each",
		   others, s->n_processes);
	} else {
		ok(s->n_tracks == 1 && s->n_processes == 1,
		   "%s: one track, the main thread's (%zu tracks, %zu processes)",
		   engine, s->n_tracks, s->n_processes);
	}
}

static void check_full_trace(FILE *log, const char *path)
{
	struct trace_summary *s = read_trace(path, "the trace");
	long long accepted = stats_value(log, 0, "accepted");

	ok(s->bad_events == 0 && s->bad_spans == 0,
	   "%s: every event whole, each of %lu spans ending after it begins",
	   engine, s->spans);
	ok(accepted == CONNECTIONS && (long long)s->accepts == accepted +
	   stats_value(log, 0, "refused"),
	   "%s: %lu accepts, as --stats counted (%lld)", engine, s->accepts,
	   accepted);
	ok((long long)s->bytes_in == stats_value(log, 0, "bytes_in") &&
	   (long long)s->bytes_out == stats_value(log, 0, "bytes_out") &&
	   s->bytes_in == CONNECTIONS * BYTES,
	   "%s: bytes read %llu and written %llu, as --stats counted",
	   engine, s->bytes_in, s->bytes_out);
	is_int((long long)s->closes, CONNECTIONS, "%s: a close per connection",
	       engine);
	ok(s->dropped == 0 && s->drop_markers == 0,
	   "%s: nothing dropped below the limit", engine);
	ok(s->counters > 0 && (long long)s->counter_accepted == accepted,
	   "%s: --stats counter tracks, ending at its count (%llu)", engine,
	   s->counter_accepted);
	check_tracks(s);
	free(s);
}

static void case_workload(void)
{
	char path[64];
	struct muxd_server srv;
	FILE *log = tmpfile();

	snprintf(path, sizeof path, "%s/full.json", dir);
	if (!log || run_workload(&srv, path, NULL, log) != CONNECTIONS) {
		ok(false, "%s --trace: muxd serves %d echo connections", engine,
		   CONNECTIONS);
		skip(9, "no workload");
	} else {
		ok(exit_code_of(srv.wait_status) == 0,
		   "%s --trace: %d connections served whole, SIGTERM, exit 0",
		   engine, CONNECTIONS);
		check_full_trace(log, path);
	}
	if (log)
		fclose(log);
	unlink(path);
}

static void case_limit(void)
{
	char path[64];
	struct muxd_server srv;
	FILE *log = tmpfile();
	struct trace_summary *s;
	int served;

	snprintf(path, sizeof path, "%s/low.json", dir);
	served = log ? run_workload(&srv, path, LOW_LIMIT, log) : -1;
	ok(served == CONNECTIONS && exit_code_of(srv.wait_status) == 0,
	   "%s --trace-limit=%s: every connection still served whole, exit 0",
	   engine, LOW_LIMIT);
	s = read_trace(path, "the trace past its limit");
	ok(s->dropped > 0 && s->dropped_in_markers == s->dropped &&
	   s->drop_markers > 0,
	   "%s --trace-limit=%s: %llu dropped, said in all and on %lu tracks "
	   "(%llu)", engine, LOW_LIMIT, s->dropped, s->drop_markers,
	   s->dropped_in_markers);
	free(s);
	if (log)
		fclose(log);
	unlink(path);
}

/* Whether log has a line with both texts. */
static bool logged(FILE *log, const char *a, const char *b)
{
	char line[1024];
	bool found = false;

	rewind(log);
	while (!found && fgets(line, sizeof line, log))
		found = strstr(line, a) && strstr(line, b);
	return found;
}

static void case_full_disk(void)
{
	struct muxd_server srv;
	FILE *log = tmpfile();
	int served = log ? run_workload(&srv, "/dev/full", NULL, log) : -1;

	is_int(served, CONNECTIONS, "%s --trace=/dev/full: every connection "
	       "served whole", engine);
	ok(served >= 0 && exit_code_of(srv.wait_status) == 1 &&
	   logged(log, "/dev/full", "No space left on device"),
	   "%s --trace=/dev/full: exit 1, naming the file and the reason",
	   engine);
	if (log)
		fclose(log);
}

/* A client in mid-stream when SIGTERM comes finishes within the grace. */
static void case_sigterm(void)
{
	static const char *const services[] = { "echo", NULL };
	static unsigned char out[2 * BYTES], back[2 * BYTES + 1];
	char path[64], opt[96];
	const char *const options[] = { opt, NULL };
	struct muxd_server srv = { .pid = -1 };
	FILE *log = tmpfile();
	struct trace_summary *s;
	enum read_end end;
	size_t got = 0;
	bool started;
	int fd = -1;

	snprintf(path, sizeof path, "%s/term.json", dir);
	snprintf(opt, sizeof opt, "--trace=%s", path);
	memset(out, 'q', sizeof out);
	started = log && muxd_start_engine_logged(&srv, engine, extra, options,
						  services, log) == 0;
	if (started && (fd = tcp_connect(muxd_port(&srv, "echo"))) >= 0 &&
	    write_all(fd, out, BYTES, SAFETY_MS) == BYTES) {
		got = read_until_eof(fd, back, BYTES, SAFETY_MS, &end);
		kill(srv.pid, SIGTERM);
		sleep_ms(100);
		write_all(fd, out + BYTES, BYTES, SAFETY_MS);
		shutdown(fd, SHUT_WR);
		got += read_until_eof(fd, back + got, sizeof back - got,
				      SAFETY_MS, &end);
	}
	if (fd >= 0)
		close(fd);
	if (started && muxd_wait(&srv, SAFETY_MS) != 0)
		muxd_stop(&srv, SAFETY_MS);
	ok(got == sizeof out && memcmp(back, out, sizeof out) == 0 && started && exit_code_of(srv.wait_status) == 0,
	   "%s --trace, SIGTERM mid-stream: the client gets all %zu bytes, "
	   "exit 0 (got %zu)", engine, sizeof out, got);
	s = read_trace(path, "the trace stopped mid-stream");
	ok(s->accepts == 1 && s->bytes_in == sizeof out && s->closes == 1,
	   "%s --trace, SIGTERM mid-stream: the trace has the client's accept, "
	   "%zu bytes and close", engine, sizeof out);
	free(s);
	if (log)
		fclose(log);
	unlink(path);
}

int main(int argc, char **argv)
{
	adopt_orphans();
	extra = engine_under_test(argc, argv, &tags);
	engine = argv[1];
	if (!mkdtemp(dir))
		bail_out("mkdtemp: cannot make a directory for the traces");
	case_workload();
	case_limit();
	case_full_disk();
	case_sigterm();
	rmdir(dir);
	return done_testing();
}
