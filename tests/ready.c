/* ready.c -- a listening line means ready: an engine holds everything it
 * needs to serve before muxd prints its `listening` lines.
 *
 * usage: ready ENGINE
 *
 * For the engine with each of its --accept strategies (or none), four
 * listeners, --threads 64 where it takes --threads and --workers 16 for a
 * [pool]: find by bisection the smallest RLIMIT_NOFILE that muxd starts
 * with, N. Every limit tried below N (the LAST_BELOW just below it, and
 * some spread further down) must be a clean start-up failure: exit 1,
 * nothing on standard output, and one line on standard error (-q keeps
 * the errors only) giving the reason, EMFILE's text. Every limit tried
 * from N up must give a muxd that runs until SIGTERM and then exits 0;
 * at N + ROOM, with descriptors for clients (and one for each --threads
 * thread, which may all be in accept(2) at once: the kernel takes a
 * descriptor's number before it looks for a connection, so 64 threads
 * woken together by one client need 64 free), it must serve at once and
 * say nothing on standard error. With io_setup(2) granting only the 256
 * requests aio-poll needs at the least (fs.aio-max-nr nearly used up by
 * others), it must serve too; with no thread to be had, it must fail to
 * start cleanly or run saying nothing. The first start, under the
 * highest limit, must say nothing either. Last, no child of a failed start may be left. An engine that prints its lines and only then starts threads,
 * per-thread listeners, rings or contexts fails here: at some limit it
 * prints them and exits 1, or logs that a thread could not start.
 * Each muxd exits as soon as it fails or is told to stop, so a run takes
 * a few dozen short starts.
 */
#include "harness.h"
#include "tap.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LISTENERS 4
#define THREADS "64"
#define WORKERS "16"
/* The dynamic loader opens the libraries on descriptor 3 (sanitizer
 * runtimes a few more): limits below this test the loader, not muxd. */
#define FLOOR 8
#define HIGH 4096	/* enough for any engine here, if the hard limit allows */
#define LAST_BELOW 8	/* limits just below N, each tried */
#define SPREAD 8	/* limits between FLOOR and N, evenly spaced */
#define ROOM 16		/* descriptors for clients above N */
#define SAFETY_MS 30000	/* only a hung muxd takes this long */
/* fs.aio-max-nr nearly used up: room for the 256 requests that aio-poll
 * takes at the least, as its start-up check does, and no more. */
#define AIO_ROOM 256

static const char *const services[LISTENERS] = { "upper", "echo", "stamp",
						  "discard" };

struct run {
	char label[96];
	/* For every start from now on: what the system refuses, and the
	 * errno whose text a failed start must give. */
	unsigned aio_room;
	bool no_threads;
	bool loud;			/* without -q: info lines too */
	int reason;
	int instrumented;		/* -1 until a start shows */
	const char *args[32];
	char listen[LISTENERS][48];
	int refused, started;		/* limits tried, by outcome */
	int bad_refusals, bad_starts;	/* of those, how many broke a rule */
};

/* The rules broken are told once each kind, the first time: a broken
 * engine breaks them at many limits. */
static void complain(struct run *r, int *count, const char *fmt, ...)
	TAP_PRINTF(3, 4);

static void complain(struct run *r, int *count, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if ((*count)++ == 0)
		diag("%s: %s", r->label, text);
}

static void build_args(struct run *r, const char *engine, const char *strategy,
		       const struct engine_info *e)
{
	int n = 0;

	snprintf(r->label, sizeof r->label, "%s%s%s", engine,
		 strategy ? " --accept=" : "", strategy ? strategy : "");
	r->args[n++] = "-q";
	r->args[n++] = "--engine";
	r->args[n++] = engine;
	if (strategy) {
		r->args[n++] = "--accept";
		r->args[n++] = strategy;
	}
	if (e->takes_threads) {
		r->args[n++] = "--threads";
		r->args[n++] = THREADS;
	}
	if (engine_has_tag(e, "pool")) {
		r->args[n++] = "--workers";
		r->args[n++] = WORKERS;
	}
	for (int i = 0; i < LISTENERS; i++) {
		snprintf(r->listen[i], sizeof r->listen[i], "%s=127.0.0.1:0",
			 services[i]);
		r->args[n++] = "--listen";
		r->args[n++] = r->listen[i];
	}
	r->args[n] = NULL;
}

/* The log's lines, the first of them in first (without its newline). */
static int log_lines(FILE *log, char *first, size_t size)
{
	char line[1024];
	int n = 0;

	first[0] = '\0';
	fflush(log);
	rewind(log);
	while (fgets(line, sizeof line, log))
		if (n++ == 0)
			snprintf(first, size, "%.*s", (int)strcspn(line, "\n"), line);
	return n;
}

/* muxd reaped without all its lines: what a failed start must look like. */
static void check_refusal(struct run *r, rlim_t limit,
			  const struct muxd_server *srv, FILE *log)
{
	char first[1024], status[64];
	int lines = log_lines(log, first, sizeof first);

	r->refused++;
	if (srv->nlisteners > 0 || exit_code_of(srv->wait_status) != 1 ||
	    lines != 1 || strncmp(first, "muxd: ", 6) != 0 ||
	    !strstr(first, strerror(r->reason)))
		complain(r, &r->bad_refusals, "limit %lu: %d listening lines, "
			 "%s, %d lines on stderr, the first \"%s\"",
			 (unsigned long)limit, srv->nlisteners,
			 describe_status(srv->wait_status, status, sizeof status),
			 lines, first);
}

/* What a start must do beyond running until SIGTERM and exiting 0: say
 * nothing on standard error, and serve a client at once too. */
enum expect { RUNS, QUIET, SERVES };

static bool served(struct run *r, rlim_t limit, const struct muxd_server *srv)
{
	char why[256];
	int fd = served_connection(muxd_port(srv, "upper"), SAFETY_MS, why,
				   sizeof why);

	if (fd >= 0) {
		close(fd);
		return true;
	}
	complain(r, &r->bad_starts, "limit %lu: not served: %s",
		 (unsigned long)limit, why);
	return false;
}

static bool quiet(struct run *r, rlim_t limit, FILE *log)
{
	char first[1024];
	int lines = log_lines(log, first, sizeof first);

	if (lines == 0)
		return true;
	complain(r, &r->bad_starts, "limit %lu: %d lines on stderr, the "
		 "first \"%s\"", (unsigned long)limit, lines, first);
	return false;
}

/* All its lines: it must run until told to stop, then exit 0, having
 * written on stderr (-q: errors only) nothing at all if asked, even what
 * comes a moment after the lines. */
static bool check_start(struct run *r, rlim_t limit, struct muxd_server *srv,
			FILE *log, enum expect expect)
{
	char status[64], first[1024];
	bool good = expect < SERVES || served(r, limit, srv);
	int lines;

	r->started++;
	if (r->instrumented < 0)
		r->instrumented = muxd_instrumented(srv->pid);
	if (muxd_stop(srv, SAFETY_MS) < 0 || exit_code_of(srv->wait_status) != 0) {
		lines = log_lines(log, first, sizeof first);
		complain(r, &r->bad_starts, "limit %lu: after SIGTERM, %s; %d "
			 "lines on stderr, the first \"%s\"", (unsigned long)limit,
			 describe_status(srv->wait_status, status, sizeof status),
			 lines, first);
		return false;
	}
	return good && (expect < QUIET || quiet(r, limit, log));
}

/* Start muxd under `limit` and check what it did. Returns whether it
 * started (printed every listening line). */
static bool try_limit(struct run *r, rlim_t limit, enum expect expect)
{
	struct handover h = { .stdio_fd = -1, .nofile = limit,
			      .aio_room = r->aio_room,
			      .no_threads = r->no_threads };
	struct muxd_server srv;
	FILE *log = tmpfile();
	int lines;

	if (!log)
		bail_out("tmpfile: %s", strerror(errno));
	h.stderr_fd = fileno(log);
	/* args[0] is -q. */
	lines = muxd_try_start(&srv, r->args + r->loud, &h, LISTENERS);
	if (lines == LISTENERS)
		check_start(r, limit, &srv, log, expect);
	else if (lines >= 0)
		check_refusal(r, limit, &srv, log);
	else
		complain(r, &r->bad_refusals, "limit %lu: %d listening lines, "
			 "then it hung", (unsigned long)limit, srv.nlisteners);
	fclose(log);
	return lines == LISTENERS;
}

/* No thread to be had: an engine that needs threads must fail to start
 * cleanly (exit 1, one line giving EAGAIN's text, no listening line), one
 * that does not must run, saying nothing. A sanitizer's runtime needs threads of its
 * own, so an instrumented muxd is spared this. */
static void check_without_threads(struct run *r, rlim_t high)
{
	int bad = r->bad_refusals + r->bad_starts;

	if (r->instrumented) {
		skip(1, "%s: a sanitizer's runtime needs threads", r->label);
		return;
	}
	r->aio_room = 0;
	r->no_threads = true;
	r->reason = EAGAIN;
	try_limit(r, high, QUIET);
	ok(r->bad_refusals + r->bad_starts == bad, "%s: with no thread to be "
	   "had it fails to start cleanly, or runs quietly until SIGTERM",
	   r->label);
}

/* The smallest limit in (low, high] that muxd starts with; high does. */
static rlim_t bisect(struct run *r, rlim_t low, rlim_t high)
{
	while (high - low > 1) {
		rlim_t mid = low + (high - low) / 2;

		if (try_limit(r, mid, RUNS))
			high = mid;
		else
			low = mid;
	}
	return high;
}

static void run(const char *engine, const char *strategy,
		const struct engine_info *e, rlim_t high)
{
	struct run r = { .reason = EMFILE, .instrumented = -1 };
	struct family fam = { .server = -1 };
	rlim_t n;
	int bad, room = ROOM + (e->takes_threads ? atoi(THREADS) : 0);

	build_args(&r, engine, strategy, e);
	if (!ok(try_limit(&r, high, QUIET), "%s: starts under a limit of %lu",
		r.label, (unsigned long)high)) {
		skip(7, "%s: no start to compare with", r.label);
		return;
	}
	n = bisect(&r, FLOOR - 1, high);
	diag("%s: the smallest limit it starts with is %lu", r.label,
	     (unsigned long)n);
	for (rlim_t k = 1; k <= LAST_BELOW && n - k >= FLOOR; k++)
		try_limit(&r, n - k, RUNS);
	for (rlim_t k = 1; k <= SPREAD && n > FLOOR + SPREAD + 1; k++)
		try_limit(&r, FLOOR + k * (n - FLOOR) / (SPREAD + 1), RUNS);
	ok(r.refused > 0 && r.bad_refusals == 0, "%s: each of %d limits below "
	   "%lu fails to start cleanly: exit 1, no listening line, one error "
	   "line", r.label, r.refused, (unsigned long)n);
	r.loud = true;
	bad = r.bad_refusals;
	ok(!try_limit(&r, n - 1, RUNS) && r.bad_refusals == bad, "%s: at %lu "
	   "without -q too, that one line is all", r.label,
	   (unsigned long)(n - 1));
	r.loud = false;
	bad = r.bad_starts;
	ok(try_limit(&r, n + (rlim_t)room < high ? n + (rlim_t)room : high,
		     SERVES) && r.bad_starts == bad, "%s: with %d descriptors "
	   "more it serves at once, with nothing on stderr", r.label, room);
	ok(r.bad_starts == 0, "%s: each of %d limits from %lu up gives a muxd "
	   "that runs until SIGTERM, then exits 0", r.label, r.started,
	   (unsigned long)n);
	r.aio_room = AIO_ROOM;
	bad = r.bad_starts;
	ok(try_limit(&r, high, SERVES) && r.bad_starts == bad, "%s: with room "
	   "for only %d AIO requests it serves at once", r.label, AIO_ROOM);
	check_without_threads(&r, high);
	check_nothing_left(&fam, r.label);
}

int main(int argc, char **argv)
{
	struct engine_tags tags;
	struct engine_info e;
	char strategies[sizeof e.strategies], *save = NULL;
	rlim_t high = raise_own_nofile(HIGH);

	/* Its arguments are not used: each run sets its own. */
	engine_under_test(argc, argv, &tags);
	muxd_engine(argv[1], &e);
	snprintf(strategies, sizeof strategies, "%s", e.strategies);
	if (high > HIGH)	/* the soft limit was higher already */
		high = HIGH;
	if (high < FLOOR * 4)
		plan_skip_all("RLIMIT_NOFILE cannot be raised past %lu",
			      (unsigned long)high);
	adopt_orphans();
	if (!strategies[0])
		run(argv[1], NULL, &e, high);
	for (char *s = strtok_r(strategies, " ", &save); s;
	     s = strtok_r(NULL, " ", &save))
		run(argv[1], s, &e, high);
	return done_testing();
}
