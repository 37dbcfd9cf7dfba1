/* main.c -- options, listeners, signals, exit codes; then the engine runs.
 *
 * Exit status: 0 after a clean stop (or --help and the listings), 2 for a
 * usage error, 1 when start-up fails (a listener cannot be bound, ...).
 * Messages come from the helpers; this file adds nothing but the prefix
 * and the status.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/activation.h"
#include "base/log.h"
#include "base/net.h"
#include "base/signals.h"
#include "base/stats.h"
#include "base/trace.h"
#include "common/cli.h"
#include "main/inetd.h"
#include "main/stats_interval.h"
#include "core/server.h"
#include "base/buffer_cache.h"
#include "engines/engine.h"
#include "services/service.h"

#define DEFAULT_ENGINE "epoll-lt"
/* A pool as large as a thread-per-connection server's 10000 clients, and
 * more; the real bounds are the kernel's (pid_max, memory), and a pool
 * that cannot start every worker fails to start, saying why. */
#define MAX_WORKERS 65536

struct options {
	const struct engine *engine;
	struct server srv;
	size_t listeners_cap;
	bool accept_given;
	const char *threads_given;	/* --threads as typed, or NULL */
	const struct service *inetd;	/* --inetd: serve stdin's connection */
	bool stats;
	double stats_interval;	/* --stats-interval seconds; 0 = none */
	bool serving;		/* the engine said it was ready */
	const char *trace;	/* --trace FILE, or NULL */
	unsigned long trace_limit;
	const char *trace_limit_given;	/* as typed, or NULL */
};

static const struct server defaults = {
	.workers = 8,
	.min_spare = 2,
	.max_spare = 6,
	.max_conns = 1024,
	.idle_timeout = 300,
	.grace = 5,
	.backlog = 511,
};

enum {
	OPT_MAX_CONNS = 256, OPT_IDLE_TIMEOUT, OPT_BACKLOG, OPT_GRACE,
	OPT_LIST_ENGINES, OPT_LIST_SERVICES, OPT_ACCEPT, OPT_MIN_SPARE,
	OPT_MAX_SPARE, OPT_MAX_REQUESTS, OPT_STATS, OPT_THREADS, OPT_INETD,
	OPT_STATS_INTERVAL, OPT_TRACE, OPT_TRACE_LIMIT,
};

static const struct option long_options[] = {
	{ "engine", required_argument, NULL, 'e' },
	{ "listen", required_argument, NULL, 'l' },
	{ "workers", required_argument, NULL, 'w' },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "backlog", required_argument, NULL, OPT_BACKLOG },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "accept", required_argument, NULL, OPT_ACCEPT },
	{ "min-spare", required_argument, NULL, OPT_MIN_SPARE },
	{ "max-spare", required_argument, NULL, OPT_MAX_SPARE },
	{ "max-requests-per-worker", required_argument, NULL, OPT_MAX_REQUESTS },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "inetd", required_argument, NULL, OPT_INETD },
	{ "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "trace-limit", required_argument, NULL, OPT_TRACE_LIMIT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "list-engines", optional_argument, NULL, OPT_LIST_ENGINES },
	{ "list-services", no_argument, NULL, OPT_LIST_SERVICES },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* --threads' default: the CPUs this process may run on. */
static unsigned usable_cpus(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof set, &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

/* "  NAME             text", the text wrapped at HELP_WIDTH columns onto
 * lines indented under its start, GNU style. */
#define HELP_WIDTH 79
#define HELP_INDENT 19

static void print_entry(const char *name, const char *text)
{
	int column = printf("  %-16s", name);

	while (*text) {
		size_t word = strcspn(text, " ");

		if (column + 1 + (int)word > HELP_WIDTH && column > HELP_INDENT)
			column = printf("\n%*s", HELP_INDENT - 1, "") - 1;
		column += printf(" %.*s", (int)word, text);
		text += word;
		text += strspn(text, " ");
	}
	printf("\n");
}

static void print_help(void)
{
	printf("Usage: muxd [OPTION]...\n"
	       "Serve small line services over TCP with the concurrency model of your choice.\n\n"
	       "  -e, --engine=NAME          concurrency model (default %s; see below)\n"
	       "  -l, --listen=SERVICE=[HOST:]PORT\n"
	       "                             serve SERVICE on HOST:PORT; repeatable. HOST is an\n"
	       "                             IPv4 address, a bracketed IPv6 address or a name;\n"
	       "                             no HOST means every address (IPv6 and IPv4).\n"
	       "                             PORT 0 picks a free port. Without any --listen,\n"
	       "                             muxd serves stamp on 1989 and upper on 6666.\n"
	       "  -w, --workers=N            pool size for the pool engines (default %u)\n"
	       "      --threads=N            serving threads of the engines marked (--threads)\n"
	       "                             below (default: the CPUs muxd may run on, here %u;\n"
	       "                             at most %d)\n"
	       "      --max-conns=N          connections served at once (default %u); beyond\n"
	       "                             it a new connection is accepted and closed at once\n"
	       "      --idle-timeout=SECONDS close a connection after this long with no bytes\n"
	       "                             moving either way (default %u; 0 = never)\n"
	       "      --backlog=N            listen(2) backlog (default %d)\n"
	       "      --grace=SECONDS        how long open connections may finish after\n"
	       "                             SIGINT/SIGTERM (default %u; a second one ends it)\n"
	       "      --accept=STRATEGY      how an engine's workers or threads share the\n"
	       "                             listeners; each engine's strategies and\n"
	       "                             default: below\n"
	       "      --min-spare=N          prefork-dynamic: fewest idle workers (default %u)\n"
	       "      --max-spare=N          prefork-dynamic: most idle workers (default %u)\n"
	       "      --max-requests-per-worker=N\n"
	       "                             process-pool workers retire after N connections\n"
	       "                             (default 0: never)\n"
	       "      --stats                count connections, bytes and system calls over\n"
	       "                             all processes and threads; print them on\n"
	       "                             SIGUSR1 and at exit\n"
	       "      --stats-interval=SECONDS\n"
	       "                             also print their rates per second over each\n"
	       "                             interval (decimals allowed, 0.001 at least;\n"
	       "                             implies --stats)\n"
	       "      --trace=FILE           record what every thread and process does\n"
	       "                             and write it to FILE when muxd stops (and,\n"
	       "                             with --stats, on SIGUSR1): Chrome trace-event\n"
	       "                             JSON, for Perfetto or chrome://tracing\n"
	       "      --trace-limit=N        events recorded per thread (default %lu, at\n"
	       "                             most %lu); later ones are counted as dropped\n"
	       "      --inetd=SERVICE        serve SERVICE on the one connection open on\n"
	       "                             standard input and output (inetd nowait,\n"
	       "                             systemd Accept=yes), then exit; no --listen\n"
	       "  -v, --verbose              log every connection opened and closed\n"
	       "  -q, --quiet                log errors only\n"
	       "      --list-engines[=tsv]   print each engine with a one-line description;\n"
	       "                             =tsv: name, tags, strategies, threads|workers\n"
	       "      --list-services        print each service with a one-line description\n"
	       "  -h, --help                 show this help, then exit\n"
	       "  -V, --version              show the version, then exit\n\nEngines:\n",
	       DEFAULT_ENGINE, defaults.workers, usable_cpus(), MAX_THREADS,
	       defaults.max_conns,
	       defaults.idle_timeout, defaults.backlog, defaults.grace,
	       defaults.min_spare, defaults.max_spare, TRACE_LIMIT_DEFAULT,
	       TRACE_LIMIT_MAX);
	for (const struct engine *const *e = engines; *e; e++) {
		char text[512];

		engine_describe(*e, text, sizeof text);
		print_entry((*e)->name, text);
	}
	printf("\nServices:\n");
	for (const struct service *const *s = services; *s; s++)
		print_entry((*s)->name, (*s)->summary);
	printf("\nStarted by systemd with sockets (LISTEN_PID, LISTEN_FDS, and "
	       "LISTEN_FDNAMES\nnaming each socket's service), muxd serves "
	       "those instead of --listen.\n");
	printf("\nExit status: 0 after a clean stop, 1 if start-up fails, "
	       "2 for a usage error.\nReport bugs: see README, \"Reporting bugs\".\n");
}

/* One engine a line: for people (FORMAT none), or for programs ("tsv"). */
static void list_engines(const char *format)
{
	if (format && strcmp(format, "tsv") != 0)
		cli_usage_error("bad --list-engines=%s: the only format is tsv",
				format);
	for (const struct engine *const *e = engines; *e; e++) {
		char text[512];

		if (format) {
			engine_tsv_row(*e, text, sizeof text);
			printf("%s\n", text);
		} else {
			engine_describe(*e, text, sizeof text);
			printf("%-16s %s\n", (*e)->name, text);
		}
	}
}

static void list_services(void)
{
	for (const struct service *const *s = services; *s; s++) {
		char port[32] = "off by default";

		if ((*s)->default_port)
			snprintf(port, sizeof port, "default port %u",
				 (*s)->default_port);
		printf("%-10s %s (%s)\n", (*s)->name, (*s)->summary, port);
	}
}

/* --option's whole number, within unsigned's range by the callers' bounds. */
static unsigned parse_number(const char *option, const char *text,
			     unsigned long min, unsigned long max)
{
	return (unsigned)cli_parse_number(option, text, min, max);
}

static enum accept_strategy parse_accept(const char *text)
{
	if (strcmp(text, "pass") == 0)
		return ACCEPT_HANDOFF;	/* its name before 0.2 */
	for (int i = 0; accept_names[i]; i++)
		if (strcmp(accept_names[i], text) == 0)
			return (enum accept_strategy)i;
	cli_usage_error("bad --accept '%s': no engine has that strategy "
			"(see --list-engines)", text);
}

static void add_listener(struct options *o, const char *spec)
{
	char err[NET_ERR_LEN];
	struct server *srv = &o->srv;
	int n;

	if (srv->n_listeners + NET_MAX_ADDRS > o->listeners_cap) {
		size_t cap = 2 * o->listeners_cap + NET_MAX_ADDRS;
		struct listener *l = realloc(srv->listeners, cap * sizeof *l);

		if (!l)
			cli_usage_error("too many --listen");
		srv->listeners = l;
		o->listeners_cap = cap;
	}
	n = net_parse_listen(spec, &srv->listeners[srv->n_listeners], err);
	if (n < 0)
		cli_usage_error("%s", err);
	srv->n_listeners += (size_t)n;
}

static void add_default_listeners(struct options *o)
{
	for (const struct service *const *s = services; *s; s++) {
		char spec[64];

		if (!(*s)->default_port)
			continue;
		snprintf(spec, sizeof spec, "%s=%u", (*s)->name, (*s)->default_port);
		add_listener(o, spec);
	}
}

/* Options that print and exit are handled where they are met. */
static void parse_option(struct options *o, int c, char *const argv[])
{
	switch (c) {
	case 'e':
		o->engine = engine_find(optarg);
		if (!o->engine)
			cli_usage_error("unknown engine '%s' (see --list-engines)", optarg);
		break;
	case 'l': add_listener(o, optarg); break;
	case 'w': o->srv.workers = parse_number("workers", optarg, 1, MAX_WORKERS); break;
	case OPT_THREADS:
		o->srv.threads = parse_number("threads", optarg, 1, MAX_THREADS);
		o->threads_given = optarg;
		break;
	case OPT_MAX_CONNS:
		o->srv.max_conns = parse_number("max-conns", optarg, 1, 1000000);
		break;
	case OPT_IDLE_TIMEOUT:
		o->srv.idle_timeout = parse_number("idle-timeout", optarg, 0, 86400);
		break;
	case OPT_BACKLOG:
		o->srv.backlog = (int)parse_number("backlog", optarg, 1, 65535);
		break;
	case OPT_GRACE: o->srv.grace = parse_number("grace", optarg, 0, 3600); break;
	case OPT_ACCEPT:
		o->srv.accept = parse_accept(optarg);
		o->accept_given = true;
		break;
	case OPT_MIN_SPARE:
		o->srv.min_spare = parse_number("min-spare", optarg, 1, MAX_WORKERS);
		break;
	case OPT_MAX_SPARE:
		o->srv.max_spare = parse_number("max-spare", optarg, 1, MAX_WORKERS);
		break;
	case OPT_MAX_REQUESTS:
		o->srv.max_requests = parse_number("max-requests-per-worker",
						   optarg, 0, 1000000000);
		break;
	case OPT_STATS: o->stats = true; break;
	case OPT_STATS_INTERVAL:
		o->stats_interval = cli_parse_seconds("stats-interval", optarg,
						      false, 86400);
		o->stats = true;
		break;
	case OPT_TRACE:
		if (!*optarg)
			cli_usage_error("--trace needs a file name");
		o->trace = optarg;
		break;
	case OPT_TRACE_LIMIT:
		o->trace_limit = cli_parse_number("trace-limit", optarg, 1,
						  TRACE_LIMIT_MAX);
		o->trace_limit_given = optarg;
		break;
	case OPT_INETD:
		o->inetd = svc_find(optarg);
		if (!o->inetd)
			cli_usage_error("unknown service '%s' in --inetd "
					"(see --list-services)", optarg);
		break;
	case 'v': log_threshold = LOG_CONN; break;
	case 'q': log_threshold = LOG_ERROR; break;
	case OPT_LIST_ENGINES: list_engines(optarg); exit(0);
	case OPT_LIST_SERVICES: list_services(); exit(0);
	case 'h': print_help(); exit(0);
	case 'V': printf("muxd %s\n", PACKAGE_VERSION); exit(0);
	case ':':
		cli_usage_error("option '%s' needs a value", argv[optind - 1]);
	default:
		if (optopt)
			cli_usage_error("unknown option '-%c'", optopt);
		cli_usage_error("unknown option '%s'", argv[optind - 1]);
	}
}

static _Noreturn void refuse_accept(const struct engine *e, const char *name)
{
	char strategies[128];

	if (!e->accept_strategies)
		cli_usage_error("engine %s does not take --accept=%s: it has no "
				"strategies to choose from", e->name, name);
	engine_accept_list(e, strategies, sizeof strategies);
	cli_usage_error("engine %s does not take --accept=%s; it takes: %s",
			e->name, name, strategies);
}

/* The first handed socket without SO_REUSEPORT, or -1. */
static int activated_without_reuseport(const struct server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++)
		if (!net_reuseport(srv->listeners[i].fd))
			return srv->listeners[i].fd;
	return -1;
}

/* --accept=reuseport gives each worker a listener of its own, bound to
 * the same address: the kernel allows that only when the socket it was
 * handed already has SO_REUSEPORT (ReusePort=yes in the socket unit).
 * Asked for, that is a usage error; as an engine's default, the engine's
 * next strategy serves instead (multi-reactor's exclusive), and says so. */
static void check_activated_reuseport(struct options *o)
{
	int fd = activated_without_reuseport(&o->srv);

	if (fd < 0)
		return;
	if (o->accept_given)
		cli_usage_error("--accept=reuseport with socket activation: "
				"descriptor %d lacks SO_REUSEPORT; set "
				"ReusePort=yes in the socket unit", fd);
	for (int i = 0; accept_names[i]; i++)
		if (i != ACCEPT_REUSEPORT && o->engine->accept_strategies & 1u << i) {
			o->srv.accept = (enum accept_strategy)i;
			log_info("socket activation: descriptor %d lacks SO_REUSEPORT; "
				 "--accept=%s instead of reuseport", fd, accept_names[i]);
			return;
		}
	cli_usage_error("engine %s shares listeners only with SO_REUSEPORT, "
			"which descriptor %d lacks; set ReusePort=yes in the "
			"socket unit", o->engine->name, fd);
}

/* Socket activation replaces --listen and the defaults; with both, which
 * sockets to serve would be a guess. */
static void take_activated_listeners(struct options *o)
{
	char err[NET_ERR_LEN];
	struct listener *handed;
	int n = activation_listeners(&handed, err);

	if (n < 0)
		cli_usage_error("%s", err);
	if (n == 0)
		return;
	if (o->srv.n_listeners) {
		free(handed);
		cli_usage_error("--listen cannot be combined with socket activation "
				"(LISTEN_FDS=%d): the service manager's sockets "
				"say what to serve", n);
	}
	o->srv.listeners = handed;
	o->srv.n_listeners = (size_t)n;
	if (o->srv.accept == ACCEPT_REUSEPORT)
		check_activated_reuseport(o);
}

/* --inetd serves the connection it was started with, nothing else. */
static void check_inetd(struct options *o)
{
	char err[NET_ERR_LEN];

	if (o->srv.n_listeners)
		cli_usage_error("--inetd serves the connection on standard input: "
				"it takes no --listen");
	if (inetd_check(err) < 0)
		cli_usage_error("%s", err);
	activation_release();
}

static void parse_args(struct options *o, int argc, char *argv[])
{
	int c;

	o->srv = defaults;
	o->engine = engine_find(DEFAULT_ENGINE);
	opterr = 0;	/* our messages, with our prefix */
	while ((c = getopt_long(argc, argv, ":e:l:w:vqhV", long_options, NULL)) != -1)
		parse_option(o, c, argv);
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->accept_given)
		o->srv.accept = o->engine->default_accept;
	else if (!(o->engine->accept_strategies & 1u << o->srv.accept))
		refuse_accept(o->engine, accept_names[o->srv.accept]);
	if (o->threads_given && !o->engine->takes_threads)
		cli_usage_error("engine %s does not take --threads=%s; the "
				"engines marked (--threads) in --list-engines do",
				o->engine->name, o->threads_given);
	if (!o->threads_given)
		o->srv.threads = usable_cpus();
	if (o->trace_limit_given && !o->trace)
		cli_usage_error("--trace-limit=%s without --trace: nothing is "
				"recorded", o->trace_limit_given);
	if (!o->trace_limit_given)
		o->trace_limit = TRACE_LIMIT_DEFAULT;
	if (o->srv.min_spare > o->srv.max_spare)
		cli_usage_error("bad --min-spare %u: more than --max-spare %u",
			    o->srv.min_spare, o->srv.max_spare);
	if (o->inetd)
		check_inetd(o);
	else
		take_activated_listeners(o);
	if (!o->srv.n_listeners && !o->inetd)
		add_default_listeners(o);
}

/* Bind every listener or none: on failure, close those already bound.
 * Sockets a service manager handed over are open already. */
static int open_listeners(struct server *srv)
{
	char err[NET_ERR_LEN];

	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct listener *l = &srv->listeners[i];

		if (l->fd >= 0)
			continue;
		if (l->same_port_as_previous)
			l->port = l[-1].port;	/* PORT 0: the one just chosen */
		if (net_listen(l, srv->backlog, srv->accept == ACCEPT_REUSEPORT,
			       err) == 0)
			continue;
		log_error("%s", err);
		while (i-- > 0)
			close(srv->listeners[i].fd);
		return -1;
	}
	return 0;
}

/* The engine's server_ready(): the listening lines say "ready", so they
 * come only now, when nothing the engine needs can fail any more. */
static void announce(void *ctx)
{
	struct options *o = ctx;
	const struct server *srv = &o->srv;

	for (size_t i = 0; i < srv->n_listeners; i++) {
		const struct listener *l = &srv->listeners[i];
		char host[NET_ADDR_LEN];

		net_format_host((const struct sockaddr *)&l->addr, host, sizeof host);
		printf("listening %s %s %u\n", l->service->name, host, l->port);
	}
	fflush(stdout);
	if (o->stats_interval > 0 && (errno = stats_interval_start(o->stats_interval)) != 0)
		log_error("cannot start the --stats-interval thread: %s",
			  strerror(errno));
	if ((errno = trace_counters_start()) != 0)
		log_error("cannot start the --trace counters thread: %s",
			  strerror(errno));
	log_info("%s engine serving %zu listener%s, pid %d", o->engine->name,
		 srv->n_listeners, srv->n_listeners == 1 ? "" : "s", (int)getpid());
	o->serving = true;
}

/* --trace: FILE made before anything is served, or muxd does not start. */
static int start_trace(const struct options *o)
{
	char err[TRACE_ERR_LEN];

	if (!o->trace)
		return 0;
	if (trace_init(o->trace, o->trace_limit,
		       o->inetd ? "inetd" : o->engine->name,
		       (o->engine->features & ENGINE_PROCESSES) && !o->inetd,
		       err) == 0)
		return 0;
	log_error("%s", err);
	return -1;
}

/* The trace written when muxd stops: a trace asked for and lost is a
 * failure (exit 1), after whatever the engine served. */
static int finish_trace(int status)
{
	char err[TRACE_ERR_LEN];

	if (trace_finish(err) == 0)
		return status;
	log_error("%s", err);
	return status ? status : 1;
}

/* Everything after the command line; its exit status. */
static int serve(struct options *o)
{
	char err[NET_ERR_LEN];
	int status;

	if (o->stats &&
	    stats_init(o->engine->takes_threads ? o->srv.threads : 0) < 0) {
		log_error("cannot make the --stats counters: %s", strerror(errno));
		return 1;
	}
	if (start_trace(o) < 0)
		return 1;
	if (sig_init(o->srv.grace) < 0) {
		log_error("cannot install signal handlers: %s", strerror(errno));
		trace_abandon();
		return 1;
	}
	if (o->inetd) {
		status = inetd_serve(&o->srv, o->inetd);
		log_stats();
		return finish_trace(status);
	}
	if (o->engine->probe && o->engine->probe(err) < 0) {
		log_error("engine %s: %s", o->engine->name, err);
		trace_abandon();
		return 1;
	}
	if (open_listeners(&o->srv) < 0) {
		trace_abandon();
		return 1;
	}
	o->srv.ready = announce;
	o->srv.ready_ctx = o;
	status = engine_run(o->engine, &o->srv);
	if (!o->serving) {	/* the start failed: its one line is all */
		trace_abandon();
		return status;
	}
	log_stats();
	status = finish_trace(status);
	log_info("stopped");
	return status;
}

int main(int argc, char *argv[])
{
	struct options o = { 0 };
	int status;

	cli_set_program("muxd");
	parse_args(&o, argc, argv);
	buffer_cache_setup();
	status = serve(&o);
	free(o.srv.listeners);
	return status;
}
