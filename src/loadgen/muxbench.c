/* muxbench.c -- the load generator's command line and the phases of a run.
 *
 * main parses the options, raises the descriptor limit, starts the load
 * threads (bench_worker.c) and leads them through the phases of bench.h:
 * set-up until every connection is open or has failed once, warm-up, the
 * measured interval, the end. Meanwhile it sleeps, waking each
 * --progress-interval for the progress line and at once for SIGINT or
 * SIGTERM, which end the run early with a summary of what was measured
 * until then.
 *
 * Exit status: 0 for a run without errors, 1 when an error was counted,
 * the run was interrupted or could not start, 2 for a usage error.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cli.h"
#include "loadgen/bench.h"

#define MAX_CONNECTIONS 1000000
#define MAX_THREADS 256
#define MAX_SIZE (16 * 1024 * 1024)
#define MAX_SECONDS 86400.0
#define MAX_RATE 100000000	/* requests a second */
#define MAX_DELAY_MS 60000	/* the delay service's own bound */
#define MAX_WORK_N 100000000	/* the work service's own bound */
#define MAX_WEIGHT 1000000
/* The default number of source addresses keeps each below this many
 * ports, well inside the usual ephemeral range (32768-60999). */
#define PORTS_PER_SOURCE 20000
#define MAX_SOURCES 255		/* 127.0.0.1 .. 127.0.0.255 */
#define SETTLE_S 0.5		/* idle: before the server's memory is read */
#define SPARE_FDS 16		/* standard streams and the like */

enum {
	OPT_SOURCES = 256, OPT_SERVER_PID, OPT_SERVER_STATS, OPT_JSON,
	OPT_PROGRESS, OPT_NO_PROGRESS, OPT_PROGRESS_INTERVAL, OPT_RATE,
	OPT_DELAY_MS, OPT_WORK_MIX,
};

static const struct option long_options[] = {
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "connections", required_argument, NULL, 'c' },
	{ "size", required_argument, NULL, 's' },
	{ "duration", required_argument, NULL, 'd' },
	{ "warmup", required_argument, NULL, 'w' },
	{ "threads", required_argument, NULL, 't' },
	{ "expect", required_argument, NULL, 'e' },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "delay-ms", required_argument, NULL, OPT_DELAY_MS },
	{ "work-mix", required_argument, NULL, OPT_WORK_MIX },
	{ "sources", required_argument, NULL, OPT_SOURCES },
	{ "server-pid", required_argument, NULL, OPT_SERVER_PID },
	{ "server-stats", no_argument, NULL, OPT_SERVER_STATS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "progress-interval", required_argument, NULL, OPT_PROGRESS_INTERVAL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* What the command line said before defaults that depend on the rest. */
struct args {
	struct bench_config cfg;
	bool port_given, size_given, sources_given, progress_given;
	bool delay_given, mix_given;
	const char *mode_text;
};

static void print_help(void)
{
	printf("Usage: muxbench [OPTION]... MODE\n"
	       "Load a muxd server (or any TCP server of the same services) and measure it.\n\n"
	       "MODE is one of:\n"
	       "  pingpong   N connections, each a closed loop: send S bytes, wait for the\n"
	       "             complete reply, verify it, repeat; messages/s and latency\n"
	       "  stream     N connections each writing S-byte chunks, at most 4 unanswered,\n"
	       "             reading and verifying every byte echoed back; MB/s\n"
	       "  connrate   C concurrent workers looping connect, read to EOF, close\n"
	       "             against a stamp listener; connections/s and latency\n"
	       "  idle       open N connections and hold them, sending nothing\n"
	       "  delay      N connections against a delay listener, each asking for\n"
	       "             --delay-ms per request, one request at a time\n"
	       "  work       N connections against a work listener, one request at a\n"
	       "             time, sizes drawn from --work-mix; latency by size\n\n"
	       "Options:\n"
	       "  -H, --host=ADDR         server IPv4 address (default 127.0.0.1)\n"
	       "  -p, --port=PORT         server port (required)\n"
	       "  -c, --connections=N     connections, or connrate's workers (default 1)\n"
	       "  -s, --size=BYTES        message size (pingpong 64, stream 16384)\n"
	       "  -d, --duration=SECONDS  measured time, decimals allowed (default 5); for\n"
	       "                          idle, how long the open connections are held\n"
	       "  -w, --warmup=SECONDS    unmeasured run first (default 1; 0 = none)\n"
	       "  -t, --threads=N         load threads, each with its own epoll loop and\n"
	       "                          its share of the connections (default 1)\n"
	       "  -e, --expect=upper|echo what a correct reply is (default upper)\n"
	       "      --rate=R            open loop: R requests a second in all (pingpong,\n"
	       "                          delay, work), each due at its time whatever the\n"
	       "                          replies do; latency counts from when it was due\n"
	       "      --delay-ms=D        delay: milliseconds a request asks (default 100)\n"
	       "      --work-mix=N:W,...  work: request sizes N (splitmix64 rounds) and\n"
	       "                          their weights, at most %d (default 1000:1)\n"
	       "      --sources=N         connect from 127.0.0.1 .. 127.0.0.N (default:\n"
	       "                          one per %d connections to a 127.x host, else 1)\n"
	       "      --server-pid=PID    also measure the server: CPU of PID and its\n"
	       "                          descendants while measuring; in idle and delay\n"
	       "                          mode, their RSS and PSS before the first\n"
	       "                          connection and once every one is open\n"
	       "      --server-stats      send SIGUSR1 to --server-pid as the measured\n"
	       "                          interval starts and as it ends (muxd --stats\n"
	       "                          then prints its counters)\n"
	       "      --json              print one JSON object instead of the summary\n"
	       "      --progress, --no-progress\n"
	       "                          a progress line each interval on standard error\n"
	       "                          (default: when it is a terminal)\n"
	       "      --progress-interval=SECONDS\n"
	       "                          the progress line's interval, decimals allowed\n"
	       "                          (default 1; implies --progress); muxd's\n"
	       "                          --stats-interval with the same value shows the\n"
	       "                          server's side of each interval\n"
	       "  -h, --help              show this help, then exit\n"
	       "  -V, --version           show the version, then exit\n\n"
	       "Exit status: 0 for a run without errors, 1 if any error was counted or\n"
	       "the run could not start, 2 for a usage error.\n"
	       "Report bugs: see muxd's README, \"Reporting bugs\".\n", MAX_CLASSES,
	       PORTS_PER_SOURCE);
}

/* Decimal seconds, up to a day. */
static double parse_seconds(const char *option, const char *text,
			    bool zero_allowed)
{
	return cli_parse_seconds(option, text, zero_allowed, MAX_SECONDS);
}

#define MODES "pingpong, stream, connrate, idle, delay or work"

static enum bench_mode parse_mode(const char *text)
{
	for (int m = MODE_PINGPONG; m <= MODE_WORK; m++)
		if (strcmp(text, mode_name((enum bench_mode)m)) == 0)
			return (enum bench_mode)m;
	cli_usage_error("unknown mode '%s': expected " MODES, text);
}

/* The first len bytes of text as a string in number[NUMBER_LEN]; a longer
 * one is cut, and its parse then says it is out of range. */
#define NUMBER_LEN 24
static const char *number_text(char *number, const char *text, size_t len)
{
	if (len >= NUMBER_LEN)
		len = NUMBER_LEN - 1;
	memcpy(number, text, len);
	number[len] = '\0';
	return number;
}

/* One "N:WEIGHT" of --work-mix, its end in *end. */
static void parse_class(const char *text, const char *item,
			struct work_class *k, const char **end)
{
	char number[NUMBER_LEN];
	size_t len = strcspn(item, ":,");

	if (item[len] != ':')
		cli_usage_error("bad --work-mix '%s': expected N:WEIGHT,... such "
				"as 100:99,5000000:1", text);
	k->n = cli_parse_number("work-mix", number_text(number, item, len), 1,
				MAX_WORK_N);
	item += len + 1;
	len = strcspn(item, ",");
	k->weight = (unsigned)cli_parse_number("work-mix",
					       number_text(number, item, len),
					       1, MAX_WEIGHT);
	*end = item + len;
}

/* "N:WEIGHT,N:WEIGHT,...": the request sizes of work mode. */
static void parse_work_mix(struct bench_config *cfg, const char *text)
{
	const char *p = text;

	cfg->n_classes = cfg->weight_total = 0;
	for (;;) {
		struct work_class *k = &cfg->classes[cfg->n_classes];

		if (cfg->n_classes == MAX_CLASSES)
			cli_usage_error("bad --work-mix '%s': at most %d sizes",
					text, MAX_CLASSES);
		parse_class(text, p, k, &p);
		for (unsigned i = 0; i < cfg->n_classes; i++)
			if (cfg->classes[i].n == k->n)
				cli_usage_error("bad --work-mix '%s': size %llu "
						"twice", text,
						(unsigned long long)k->n);
		cfg->weight_total += k->weight;
		cfg->n_classes++;
		if (*p++ != ',')
			return;
	}
}

static void parse_host(struct bench_config *cfg, const char *text)
{
	if (inet_pton(AF_INET, text, &cfg->server.sin_addr) != 1)
		cli_usage_error("bad --host '%s': expected an IPv4 address such as "
			    "127.0.0.1", text);
}

static pid_t parse_server_pid(const char *text)
{
	pid_t pid = (pid_t)cli_parse_number("server-pid", text, 1, 0x7fffffff);

	if (kill(pid, 0) < 0 && errno == ESRCH)
		cli_usage_error("bad --server-pid '%s': no such process", text);
	return pid;
}

/* Options that print and exit are handled where they are met. */
static void parse_option(struct args *a, int c, char *const argv[])
{
	struct bench_config *cfg = &a->cfg;

	switch (c) {
	case 'H': parse_host(cfg, optarg); break;
	case 'p':
		cfg->server.sin_port =
			htons((unsigned short)cli_parse_number("port", optarg, 1, 65535));
		a->port_given = true;
		break;
	case 'c':
		cfg->connections = (unsigned)cli_parse_number("connections", optarg, 1,
							 MAX_CONNECTIONS);
		break;
	case 's':
		cfg->size = cli_parse_number("size", optarg, 1, MAX_SIZE);
		a->size_given = true;
		break;
	case 'd': cfg->duration = parse_seconds("duration", optarg, false); break;
	case 'w': cfg->warmup = parse_seconds("warmup", optarg, true); break;
	case 't':
		cfg->threads = (unsigned)cli_parse_number("threads", optarg, 1, MAX_THREADS);
		break;
	case 'e':
		if (strcmp(optarg, "upper") != 0 && strcmp(optarg, "echo") != 0)
			cli_usage_error("bad --expect '%s': expected upper or echo", optarg);
		cfg->expect_upper = strcmp(optarg, "upper") == 0;
		break;
	case OPT_RATE:
		cfg->rate = cli_parse_number("rate", optarg, 1, MAX_RATE);
		break;
	case OPT_DELAY_MS:
		cfg->delay_ms = (unsigned)cli_parse_number("delay-ms", optarg, 0,
							   MAX_DELAY_MS);
		a->delay_given = true;
		break;
	case OPT_WORK_MIX:
		parse_work_mix(cfg, optarg);
		a->mix_given = true;
		break;
	case OPT_SOURCES:
		cfg->sources = (unsigned)cli_parse_number("sources", optarg, 1, MAX_SOURCES);
		a->sources_given = true;
		break;
	case OPT_SERVER_PID: cfg->server_pid = parse_server_pid(optarg); break;
	case OPT_SERVER_STATS: cfg->server_stats = true; break;
	case OPT_JSON: cfg->json = true; break;
	case OPT_PROGRESS:
	case OPT_NO_PROGRESS:
		cfg->progress = c == OPT_PROGRESS;
		a->progress_given = true;
		break;
	case OPT_PROGRESS_INTERVAL:
		cfg->progress_interval = parse_seconds("progress-interval", optarg,
						       false);
		cfg->progress = true;
		a->progress_given = true;
		break;
	case 'h': print_help(); exit(0);
	case 'V': printf("muxbench %s\n", PACKAGE_VERSION); exit(0);
	case ':': cli_usage_error("option '%s' needs a value", argv[optind - 1]);
	default:
		if (optopt)
			cli_usage_error("unknown option '-%c'", optopt);
		cli_usage_error("unknown option '%s'", argv[optind - 1]);
	}
}

/* Defaults that depend on the mode, the host or each other. */
static void complete_config(struct args *a)
{
	struct bench_config *cfg = &a->cfg;
	bool loopback = (ntohl(cfg->server.sin_addr.s_addr) >> 24) == 127;

	cfg->mode = parse_mode(a->mode_text);
	if (!a->port_given)
		cli_usage_error("--port is required");
	if (cfg->server_stats && !cfg->server_pid)
		cli_usage_error("--server-stats needs --server-pid");
	if (cfg->rate && !mode_has_requests(cfg->mode))
		cli_usage_error("--rate is for pingpong, delay and work, not %s",
				a->mode_text);
	if (a->delay_given && cfg->mode != MODE_DELAY)
		cli_usage_error("--delay-ms is for delay mode, not %s", a->mode_text);
	if (a->mix_given && cfg->mode != MODE_WORK)
		cli_usage_error("--work-mix is for work mode, not %s", a->mode_text);
	if (cfg->mode != MODE_DELAY)
		cfg->delay_ms = 0;
	if (cfg->mode != MODE_PINGPONG && cfg->mode != MODE_STREAM)
		cfg->size = 0;
	else if (!a->size_given)
		cfg->size = cfg->mode == MODE_STREAM ? 16384 : 64;
	if (a->sources_given && cfg->sources > 1 && !loopback)
		cli_usage_error("bad --sources %u: more than one source address needs "
			    "a 127.x --host", cfg->sources);
	if (!a->sources_given)
		cfg->sources = loopback ? (cfg->connections + PORTS_PER_SOURCE - 1)
					  / PORTS_PER_SOURCE : 1;
	if (cfg->threads > cfg->connections)
		cfg->threads = cfg->connections;	/* a thread with none is idle */
	if (!a->progress_given)
		cfg->progress = isatty(STDERR_FILENO);
}

static void parse_args(struct bench_config *cfg, int argc, char *argv[])
{
	struct args a = { .cfg = {
		.server = { .sin_family = AF_INET,
			    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
		.connections = 1, .duration = 5, .warmup = 1, .threads = 1,
		.expect_upper = true, .progress_interval = 1, .delay_ms = 100,
		.classes = { { .n = 1000, .weight = 1 } }, .n_classes = 1,
		.weight_total = 1,
	} };
	int c;

	opterr = 0;	/* our messages, with our prefix */
	while ((c = getopt_long(argc, argv, ":H:p:c:s:d:w:t:e:hV", long_options,
				NULL)) != -1)
		parse_option(&a, c, argv);
	if (optind == argc)
		cli_usage_error("no MODE given: expected " MODES);
	if (optind + 1 < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind + 1]);
	a.mode_text = argv[optind];
	complete_config(&a);
	*cfg = a.cfg;
}

/* ---- the run ---- */

struct run {
	const struct bench_config *cfg;
	struct bench_shared sh;
	struct worker **workers;
	unsigned n_workers;	/* started */
	sigset_t stop_signals;
	bool interrupted;
	double next_progress;	/* monotonic seconds */
	double last_time;	/* of the previous progress line, or the start */
	uint64_t last_done, last_bytes;
	double measure_start;
};

struct totals {
	uint64_t done, bytes, errors;
	unsigned open, open_at_setup;
};

static double now_s(void)
{
	return (double)clock_ns() / 1e9;
}

static void sum_progress(const struct run *run, struct totals *t)
{
	*t = (struct totals){ 0 };
	for (unsigned i = 0; i < run->n_workers; i++) {
		const struct bench_progress *p = worker_progress(run->workers[i]);

		t->done += atomic_load_explicit(&p->done, memory_order_relaxed);
		t->bytes += atomic_load_explicit(&p->bytes, memory_order_relaxed);
		t->errors += atomic_load_explicit(&p->errors, memory_order_relaxed);
		t->open += atomic_load_explicit(&p->open, memory_order_relaxed);
		t->open_at_setup += atomic_load_explicit(&p->open_at_setup,
							 memory_order_relaxed);
	}
}

static void print_progress(struct run *run, double now)
{
	const struct bench_config *cfg = run->cfg;
	int phase = atomic_load(&run->sh.phase);
	double dt = now - run->last_time;
	struct totals t;

	sum_progress(run, &t);
	if (phase == PHASE_SETUP)
		bench_log("set-up: %u of %u connections open, %llu errors", t.open,
			  cfg->connections, (unsigned long long)t.errors);
	else if (phase == PHASE_WARMUP && cfg->mode == MODE_CONNRATE)
		bench_log("warm-up: %llu errors", (unsigned long long)t.errors);
	else if (phase == PHASE_WARMUP)
		bench_log("warm-up: %u open, %llu errors", t.open,
			  (unsigned long long)t.errors);
	else if (cfg->mode == MODE_CONNRATE)
		bench_log("%.1f s: %.1f connections/s, %llu errors",
			  now - run->measure_start,
			  (double)(t.done - run->last_done) / dt,
			  (unsigned long long)t.errors);
	else
		bench_log("%.1f s: %.1f messages/s, %.2f MB/s, %u open, %llu "
			  "errors", now - run->measure_start,
			  (double)(t.done - run->last_done) / dt,
			  (double)(t.bytes - run->last_bytes) / dt / 1e6, t.open,
			  (unsigned long long)t.errors);
	run->last_done = t.done;
	run->last_bytes = t.bytes;
	run->last_time = now;
}

static bool setup_over(const struct run *run)
{
	return atomic_load_explicit(&run->sh.ready, memory_order_acquire) ==
	       run->n_workers;
}

/* Every connection tried once, every try failed: nobody listens there,
 * and waiting out the warm-up and the duration would only say so later. */
static bool nothing_connects(const struct run *run)
{
	unsigned tried = 0;
	bool reached = false;

	for (unsigned i = 0; i < run->n_workers; i++) {
		const struct bench_progress *p = worker_progress(run->workers[i]);

		tried += atomic_load_explicit(&p->tried, memory_order_relaxed);
		reached |= atomic_load_explicit(&p->reached, memory_order_relaxed);
	}
	return tried == run->cfg->connections && !reached;
}

/* Sleep until `until` (monotonic seconds), or until done(run) when it is
 * given, with a progress line each --progress-interval. false if a stop
 * signal came. */
static bool sleep_until(struct run *run, double until,
			bool (*done)(const struct run *))
{
	for (;;) {
		double now = now_s(), step = until - now;
		struct timespec ts;

		if ((done && done(run)) || step <= 0)
			return true;
		if (run->cfg->progress && now >= run->next_progress) {
			print_progress(run, now);
			run->next_progress = now + run->cfg->progress_interval;
		}
		if (run->cfg->progress && step > run->next_progress - now)
			step = run->next_progress - now;
		if (done && step > 0.01)
			step = 0.01;	/* polls the threads' set-up count */
		ts.tv_sec = (time_t)step;
		ts.tv_nsec = (long)((step - (double)ts.tv_sec) * 1e9);
		if (sigtimedwait(&run->stop_signals, NULL, &ts) > 0) {
			bench_log("interrupted: ending the run");
			run->interrupted = true;
			return false;
		}
	}
}

static void set_phase(struct run *run, enum bench_phase phase)
{
	atomic_store(&run->sh.phase, phase);
	for (unsigned i = 0; i < run->n_workers; i++)
		worker_wake(run->workers[i]);
}

/* Thread i gets connections [first, first + n), spread evenly. */
static int start_workers(struct run *run)
{
	const struct bench_config *cfg = run->cfg;
	unsigned first = 0;

	run->workers = calloc(cfg->threads, sizeof *run->workers);
	if (!run->workers) {
		bench_log("out of memory");
		return -1;
	}
	for (unsigned i = 0; i < cfg->threads; i++) {
		unsigned n = cfg->connections / cfg->threads +
			     (i < cfg->connections % cfg->threads);
		char err[256];
		struct worker *w = worker_create(&run->sh, first, n, err, sizeof err);
		int rc;

		if (!w) {
			bench_log("%s", err);
			return -1;
		}
		if ((rc = worker_start(w)) != 0) {
			bench_log("pthread_create: %s", strerror(rc));
			worker_destroy(w);
			return -1;
		}
		run->workers[run->n_workers++] = w;
		first += n;
	}
	return 0;
}

static void measure_server(struct run *run, struct bench_result *res,
			   double before)
{
	pid_t pid = run->cfg->server_pid;
	double after;

	if (proc_tree_cpu(pid, &after, &res->server_procs) < 0) {
		bench_log("--server-pid %d: the process is gone; no server "
			  "figures", (int)pid);
		return;
	}
	res->server_measured = true;
	res->server_cpu_s = after - before;
}

static void measure_memory(const struct run *run, struct bench_result *res)
{
	if (proc_tree_memory(run->cfg->server_pid, &res->rss_kib,
			     &res->pss_kib) < 0)
		bench_log("--server-pid %d: cannot read its smaps_rollup; no "
			  "memory figures", (int)run->cfg->server_pid);
}

/* --server-stats: the server's counters are snapshot at each end of the
 * measured interval, so that their difference is this interval's work. */
static void signal_server(const struct bench_config *cfg)
{
	if (cfg->server_stats && kill(cfg->server_pid, SIGUSR1) < 0)
		bench_log("--server-stats: kill %d: %s", (int)cfg->server_pid,
			  strerror(errno));
}

/* The measured interval. Idle and delay with --server-pid read the
 * server's memory after SETTLE_S, within the interval if it is long
 * enough (else the interval lasts that long). */
static void measure(struct run *run, struct bench_result *res,
		    bool (*cut)(const struct run *))
{
	const struct bench_config *cfg = run->cfg;
	double server_before = 0, t0;
	struct rusage before, after;
	unsigned procs;
	bool server = cfg->server_pid &&
		      proc_tree_cpu(cfg->server_pid, &server_before, &procs) == 0;

	getrusage(RUSAGE_SELF, &before);
	signal_server(cfg);
	t0 = now_s();
	set_phase(run, PHASE_MEASURE);
	run->measure_start = run->last_time = t0;	/* rates from here on */
	if (mode_reads_memory(cfg->mode) && cfg->server_pid) {
		if (sleep_until(run, t0 + SETTLE_S, NULL))
			measure_memory(run, res);
		if (!run->interrupted)
			sleep_until(run, t0 + (cfg->duration > SETTLE_S
					       ? cfg->duration : SETTLE_S), NULL);
	} else {
		sleep_until(run, t0 + cfg->duration, cut);
	}
	/* The server before the threads let go of their connections: a fork
	 * child that exits is a zombie whose CPU /proc shows nowhere until
	 * its parent reaps it. */
	if (server)
		measure_server(run, res, server_before);
	signal_server(cfg);
	set_phase(run, PHASE_DONE);
	res->measured_s = now_s() - t0;
	getrusage(RUSAGE_SELF, &after);
	res->user_s = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
		      (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6;
	res->sys_s = (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
		     (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
}

/* connrate connects only once the load runs, so its sleeps end early
 * when nothing connects; the other modes know it after the set-up. */
static void phases(struct run *run, struct bench_result *res)
{
	const struct bench_config *cfg = run->cfg;
	bool (*cut)(const struct run *) =
		cfg->mode == MODE_CONNRATE ? nothing_connects : NULL;

	if (!sleep_until(run, INFINITY, setup_over) || nothing_connects(run))
		return;
	res->open = 0;
	for (unsigned i = 0; i < run->n_workers; i++)
		res->open += atomic_load_explicit(
			&worker_progress(run->workers[i])->open_at_setup,
			memory_order_relaxed);
	if (cfg->mode == MODE_IDLE)
		bench_log("idle: %u connections open", res->open);
	if (cfg->mode != MODE_IDLE && cfg->warmup > 0) {
		double t = now_s();

		set_phase(run, PHASE_WARMUP);
		if (!sleep_until(run, t + cfg->warmup, cut) || nothing_connects(run))
			return;
		res->warmup_s = now_s() - t;
	}
	measure(run, res, cut);
}

/* Sum what every thread counted; the threads have been joined. */
static void collect(const struct run *run, struct bench_result *res)
{
	struct bench_stats *total = &res->total;

	hist_init(&total->latency);
	for (unsigned k = 0; k < MAX_CLASSES; k++)
		hist_init(&total->class_latency[k]);
	for (unsigned i = 0; i < run->n_workers; i++) {
		const struct bench_stats *s = worker_stats(run->workers[i]);

		total->messages += s->messages;
		total->bytes += s->bytes;
		total->connects += s->connects;
		total->late += s->late;
		if (s->late_max_ns > total->late_max_ns)
			total->late_max_ns = s->late_max_ns;
		total->unanswered += s->unanswered;
		for (int k = 0; k < ERR_KINDS; k++) {
			total->errors[k] += s->errors[k];
			if (!total->first_errno[k])
				total->first_errno[k] = s->first_errno[k];
		}
		hist_merge(&total->latency, &s->latency);
		for (unsigned k = 0; k < MAX_CLASSES; k++)
			hist_merge(&total->class_latency[k], &s->class_latency[k]);
	}
}

/* The payload: half lowercase letters, so that upper has work and a
 * wrong transformation shows at once, the rest any byte at all (CR, LF,
 * NUL, 0x80 and up), which upper must pass unchanged. */
static int make_patterns(struct bench_shared *sh, bool upper)
{
	unsigned char *pattern = malloc(2 * BENCH_PERIOD);
	unsigned char *expect = malloc(2 * BENCH_PERIOD);
	uint64_t x = 0x6d75786265ull;	/* "muxbe" */

	if (!pattern || !expect) {
		free(pattern);
		free(expect);
		return -1;
	}
	for (size_t i = 0; i < BENCH_PERIOD; i++) {
		unsigned b;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b = (unsigned)(x >> 32);
		pattern[i] = (unsigned char)(b & 1 ? 'a' + (b >> 8) % 26 : b >> 8);
		expect[i] = upper && pattern[i] >= 'a' && pattern[i] <= 'z'
			? (unsigned char)(pattern[i] - 'a' + 'A') : pattern[i];
	}
	memcpy(pattern + BENCH_PERIOD, pattern, BENCH_PERIOD);
	memcpy(expect + BENCH_PERIOD, expect, BENCH_PERIOD);
	sh->pattern = pattern;
	sh->expect = expect;
	return 0;
}

/* SIGINT and SIGTERM are blocked in every thread and taken by main's
 * sigtimedwait; SIGPIPE is ignored (sends use MSG_NOSIGNAL, and a closed
 * standard output must not kill the run before its summary). */
static int prepare(struct run *run)
{
	const struct bench_config *cfg = run->cfg;
	struct sigaction ignore = { .sa_handler = SIG_IGN };
	char err[256];
	int rc;

	if (raise_fd_limit(cfg->connections + 2ul * cfg->threads + SPARE_FDS,
			   err, sizeof err) < 0) {
		bench_log("--connections %u: %s", cfg->connections, err);
		return -1;
	}
	sigemptyset(&run->stop_signals);
	sigaddset(&run->stop_signals, SIGINT);
	sigaddset(&run->stop_signals, SIGTERM);
	sigaction(SIGPIPE, &ignore, NULL);
	rc = pthread_sigmask(SIG_BLOCK, &run->stop_signals, NULL);
	if (rc != 0 || make_patterns(&run->sh, cfg->expect_upper) < 0) {
		bench_log("cannot start: %s", rc ? strerror(rc) : "out of memory");
		return -1;
	}
	run->sh.cfg = cfg;
	atomic_init(&run->sh.phase, PHASE_SETUP);
	atomic_init(&run->sh.ready, 0);
	run->last_time = now_s();
	run->next_progress = run->last_time + cfg->progress_interval;
	return 0;
}

static void finish(struct run *run)
{
	set_phase(run, PHASE_DONE);
	for (unsigned i = 0; i < run->n_workers; i++)
		worker_join(run->workers[i]);
}

static void cleanup(struct run *run)
{
	for (unsigned i = 0; i < run->n_workers; i++)
		worker_destroy(run->workers[i]);
	free(run->workers);
	free((void *)run->sh.pattern);
	free((void *)run->sh.expect);
}

/* Why the run ended before its time, when no connect succeeded. */
static void say_unreachable(const struct run *run, const struct bench_result *res)
{
	const struct bench_config *cfg = run->cfg;
	int err = res->total.first_errno[ERR_CONNECT];
	char host[INET_ADDRSTRLEN];

	if (!nothing_connects(run))
		return;
	inet_ntop(AF_INET, &cfg->server.sin_addr, host, sizeof host);
	bench_log("no connection to %s:%u could be made (%s): the run ends "
		  "here", host, ntohs(cfg->server.sin_port),
		  err ? strerror(err) : "no reason given");
}

static bool any_broken(const struct run *run)
{
	for (unsigned i = 0; i < run->n_workers; i++)
		if (worker_broken(run->workers[i]))
			return true;
	return false;
}

int main(int argc, char *argv[])
{
	struct bench_config cfg;
	struct run run = { .cfg = &cfg };
	static struct bench_result res;	/* a histogram: keep it off the stack */
	bool failed;

	cli_set_program("muxbench");
	parse_args(&cfg, argc, argv);
	if (prepare(&run) < 0)
		return 1;
	/* The server's memory before our first connection, the baseline
	 * that per-connection figures are taken from. */
	if (mode_reads_memory(cfg.mode) && cfg.server_pid &&
	    proc_tree_memory(cfg.server_pid, &res.rss_before_kib,
			     &res.pss_before_kib) < 0)
		bench_log("--server-pid %d: cannot read its smaps_rollup",
			  (int)cfg.server_pid);
	failed = start_workers(&run) < 0;
	if (!failed)
		phases(&run, &res);
	finish(&run);
	if (!failed) {
		collect(&run, &res);
		say_unreachable(&run, &res);
		res.interrupted = run.interrupted;
		if (cfg.json)
			report_json(&cfg, &res);
		else
			report_text(&cfg, &res);
		failed = run.interrupted || any_broken(&run) ||
			 errors_total(&res.total) > 0;
	}
	cleanup(&run);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		bench_log("standard output: %s", strerror(errno));
		return 1;
	}
	return failed ? 1 : 0;
}
