/* bench_report.c -- what muxbench prints: the summary for people, the
 * one-line JSON object for scripts, and its messages on standard error.
 *
 * Both outputs carry the same figures. Rates are per second of the
 * measured interval as main timed it; MB are 10^6 bytes. Every key of the
 * JSON object is present in every mode, 0 where it does not apply.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/logline.h"
#include "loadgen/bench.h"

/* The quantiles reported, as fractions and as JSON keys. */
static const struct {
	double q;
	const char *key, *label;
} quantiles[] = {
	{ 0.5, "p50", "p50" },
	{ 0.9, "p90", "p90" },
	{ 0.99, "p99", "p99" },
	{ 0.999, "p999", "p99.9" },
	{ 0.9999, "p9999", "p99.99" },
	{ 1.0, "max", "max" },
};
#define N_QUANTILES (sizeof quantiles / sizeof quantiles[0])

static const char *const error_names[ERR_KINDS] = {
	[ERR_CONNECT] = "connect",
	[ERR_RESET] = "reset",
	[ERR_EOF] = "eof",
	[ERR_WRONG] = "wrong",
	[ERR_TIMEOUT] = "timeout",
};

const char *mode_name(enum bench_mode mode)
{
	static const char *const names[] = {
		[MODE_PINGPONG] = "pingpong",
		[MODE_STREAM] = "stream",
		[MODE_CONNRATE] = "connrate",
		[MODE_IDLE] = "idle",
		[MODE_DELAY] = "delay",
		[MODE_WORK] = "work",
	};

	return names[mode];
}

bool mode_has_requests(enum bench_mode mode)
{
	return mode == MODE_PINGPONG || mode == MODE_DELAY || mode == MODE_WORK;
}

bool mode_reads_memory(enum bench_mode mode)
{
	return mode == MODE_IDLE || mode == MODE_DELAY;
}

uint64_t errors_total(const struct bench_stats *s)
{
	uint64_t n = 0;

	for (int k = 0; k < ERR_KINDS; k++)
		n += s->errors[k];
	return n;
}

void bench_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("muxbench", fmt, ap);
	va_end(ap);
}

static const char *plural(unsigned long long n)
{
	return n == 1 ? "" : "s";
}

static double per_second(uint64_t n, double seconds)
{
	return seconds > 0 ? (double)n / seconds : 0.0;
}

static double cpu_pct(const struct bench_result *r)
{
	return r->measured_s > 0
		? (r->user_s + r->sys_s) / r->measured_s * 100.0 : 0.0;
}

static unsigned long long us(uint64_t ns)
{
	return (ns + 500) / 1000;
}

/* {"p50":...,"max":...}, whole microseconds. */
static void json_latency(const struct hist *h)
{
	for (size_t i = 0; i < N_QUANTILES; i++)
		printf("%s\"%s\":%llu", i ? "," : "{", quantiles[i].key,
		       us(hist_quantile(h, quantiles[i].q)));
	printf("}");
}

/* The work mix, by size N: {"100":{"weight":99,"replies":...,
 * "latency_us":{...}},...}; {} in the other modes. */
static void json_classes(const struct bench_config *cfg,
			 const struct bench_stats *s)
{
	printf("\"classes\":{");
	for (unsigned k = 0; cfg->mode == MODE_WORK && k < cfg->n_classes; k++) {
		printf("%s\"%llu\":{\"weight\":%u,\"replies\":%llu,"
		       "\"latency_us\":", k ? "," : "",
		       (unsigned long long)cfg->classes[k].n,
		       cfg->classes[k].weight,
		       (unsigned long long)s->class_latency[k].count);
		json_latency(&s->class_latency[k]);
		printf("}");
	}
	printf("}");
}

/* The per-class latencies come before the overall ones, so that a
 * script taking the last "p99" of the line takes the overall one. */
void report_json(const struct bench_config *cfg, const struct bench_result *r)
{
	const struct bench_stats *s = &r->total;
	char host[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &cfg->server.sin_addr, host, sizeof host);
	printf("{\"mode\":\"%s\",\"host\":\"%s\",\"port\":%u,\"connections\":%u,"
	       "\"size\":%zu,\"threads\":%u,\"duration_s\":%.3f,"
	       "\"messages\":%llu,\"messages_per_s\":%.1f,\"bytes\":%llu,"
	       "\"mb_per_s\":%.2f,\"connects\":%llu,\"connects_per_s\":%.1f,"
	       "\"rate\":{\"target\":%llu,\"late\":%llu,\"late_max_us\":%llu,"
	       "\"unanswered\":%llu},\"delay_ms\":%u,", mode_name(cfg->mode),
	       host, ntohs(cfg->server.sin_port), cfg->connections, cfg->size,
	       cfg->threads, r->measured_s, (unsigned long long)s->messages,
	       per_second(s->messages, r->measured_s),
	       (unsigned long long)s->bytes,
	       per_second(s->bytes, r->measured_s) / 1e6,
	       (unsigned long long)s->connects,
	       per_second(s->connects, r->measured_s),
	       (unsigned long long)cfg->rate, (unsigned long long)s->late,
	       us(s->late_max_ns), (unsigned long long)s->unanswered,
	       cfg->delay_ms);
	json_classes(cfg, s);
	printf(",\"latency_us\":");
	json_latency(&s->latency);
	printf(",\"errors\":{\"total\":%llu",
	       (unsigned long long)errors_total(s));
	for (int k = 0; k < ERR_KINDS; k++)
		printf(",\"%s\":%llu", error_names[k],
		       (unsigned long long)s->errors[k]);
	printf("},\"open\":%u,\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,"
	       "\"pct\":%.1f},\"server\":{\"cpu_s\":%.3f,\"rss_kib\":%ld,"
	       "\"pss_kib\":%ld,\"rss_before_kib\":%ld,\"pss_before_kib\":%ld},"
	       "\"warmup_s\":%.3f,\"sources\":%u}\n",
	       r->open, r->user_s, r->sys_s, cpu_pct(r), r->server_cpu_s,
	       r->rss_kib, r->pss_kib, r->rss_before_kib, r->pss_before_kib,
	       r->warmup_s, cfg->sources);
}

/* Latency in the unit that suits it. */
static void format_ns(char *out, size_t len, uint64_t ns)
{
	if (ns < 1000000)
		snprintf(out, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(out, len, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(out, len, "%.2f s", (double)ns / 1e9);
}

/* One line: label, then the quantiles of h, then what they measure. */
static void print_latency(const char *label, const struct hist *h,
			  const char *what)
{
	printf("%-15s", label);
	if (!h->count) {
		printf("none measured\n");
		return;
	}
	for (size_t i = 0; i < N_QUANTILES; i++) {
		char text[32];

		format_ns(text, sizeof text, hist_quantile(h, quantiles[i].q));
		printf("%s %s%s", quantiles[i].label, text,
		       i + 1 < N_QUANTILES ? ", " : "");
	}
	printf(" (%s)\n", what);
}

/* work: a latency line per size, with its share and its replies. */
static void print_classes(const struct bench_config *cfg,
			  const struct bench_stats *s)
{
	for (unsigned k = 0; cfg->mode == MODE_WORK && k < cfg->n_classes; k++) {
		const struct hist *h = &s->class_latency[k];
		char label[32], what[64];

		snprintf(label, sizeof label, "  N=%llu",
			 (unsigned long long)cfg->classes[k].n);
		snprintf(what, sizeof what, "%.3g %% of requests, %llu repl%s",
			 100.0 * cfg->classes[k].weight / cfg->weight_total,
			 (unsigned long long)h->count, h->count == 1 ? "y" : "ies");
		print_latency(label, h, what);
	}
}

/* --rate: what was asked, what came of it, and how late the sends
 * were; a request late by more than LATE_NS counts. */
static void print_rate(const struct bench_config *cfg,
		       const struct bench_result *r)
{
	const struct bench_stats *s = &r->total;
	char late[32];

	if (!cfg->rate)
		return;
	format_ns(late, sizeof late, s->late_max_ns);
	printf("%-15s%llu/s asked, %.1f/s answered; %llu sent over %d ms "
	       "after due (at most %s); %llu due but unanswered at the end\n",
	       "rate", (unsigned long long)cfg->rate,
	       per_second(s->messages, r->measured_s),
	       (unsigned long long)s->late, LATE_NS / 1000000, late,
	       (unsigned long long)s->unanswered);
}

/* "0", or the total and each kind that happened, with the first reason
 * the system gave for it. */
static void print_errors(const struct bench_stats *s)
{
	const char *sep = ": ";

	printf("%-15s%llu", "errors", (unsigned long long)errors_total(s));
	for (int k = 0; k < ERR_KINDS; k++) {
		if (!s->errors[k])
			continue;
		printf("%s%s %llu", sep, error_names[k],
		       (unsigned long long)s->errors[k]);
		if (s->first_errno[k])
			printf(" (%s)", strerror(s->first_errno[k]));
		sep = ", ";
	}
	printf("%s\n", errors_total(s) ? ", over the whole run" : "");
}

static void print_what(const struct bench_config *cfg)
{
	const char *expect = cfg->expect_upper ? "upper case" : "unchanged";

	printf("%-15s%s: ", "mode", mode_name(cfg->mode));
	switch (cfg->mode) {
	case MODE_PINGPONG:
		printf("%u connection%s, %zu-byte messages, echoed %s\n",
		       cfg->connections, plural(cfg->connections), cfg->size,
		       expect);
		break;
	case MODE_STREAM:
		printf("%u connection%s, %zu-byte chunks, at most 4 unanswered "
		       "each, echoed %s\n", cfg->connections,
		       plural(cfg->connections), cfg->size, expect);
		break;
	case MODE_CONNRATE:
		printf("%u concurrent worker%s\n", cfg->connections,
		       plural(cfg->connections));
		break;
	case MODE_IDLE:
		printf("%u connection%s held\n", cfg->connections,
		       plural(cfg->connections));
		break;
	case MODE_DELAY:
		printf("%u connection%s, %u ms a request, one at a time each\n",
		       cfg->connections, plural(cfg->connections), cfg->delay_ms);
		break;
	case MODE_WORK:
		printf("%u connection%s, one request at a time each, sizes",
		       cfg->connections, plural(cfg->connections));
		for (unsigned k = 0; k < cfg->n_classes; k++)
			printf("%s N=%llu (weight %u)", k ? "," : "",
			       (unsigned long long)cfg->classes[k].n,
			       cfg->classes[k].weight);
		printf("\n");
		break;
	}
}

static void print_work(const struct bench_config *cfg,
		       const struct bench_result *r, double *units,
		       const char **unit)
{
	const struct bench_stats *s = &r->total;
	double t = r->measured_s;

	*units = 0;
	*unit = NULL;
	if (cfg->mode == MODE_PINGPONG || cfg->mode == MODE_STREAM) {
		printf("%-15s%llu %s, %.1f/s\n", "messages",
		       (unsigned long long)s->messages,
		       cfg->mode == MODE_STREAM ? "chunks echoed" : "replies",
		       per_second(s->messages, t));
		printf("%-15s%llu verified, %.2f MB/s\n", "bytes",
		       (unsigned long long)s->bytes, per_second(s->bytes, t) / 1e6);
		*units = cfg->mode == MODE_STREAM ? (double)s->bytes / 1e6
						  : (double)s->messages;
		*unit = cfg->mode == MODE_STREAM ? "MB" : "message";
	} else if (cfg->mode == MODE_CONNRATE) {
		printf("%-15s%llu verified, %.1f/s\n", "connections",
		       (unsigned long long)s->connects, per_second(s->connects, t));
		*units = (double)s->connects;
		*unit = "connection";
	} else if (mode_has_requests(cfg->mode)) {
		printf("%-15s%llu replies verified, %.1f/s\n", "requests",
		       (unsigned long long)s->messages, per_second(s->messages, t));
		*units = (double)s->messages;
		*unit = "request";
	}
	print_rate(cfg, r);
	if (cfg->mode == MODE_CONNRATE)
		print_latency("latency", &s->latency, "connect to end of reply");
	else if (mode_has_requests(cfg->mode))
		print_latency("latency", &s->latency, cfg->rate
			      ? "from when each request was due to its reply"
			      : "from each request's send to its reply");
	print_classes(cfg, s);
}

static void print_server(const struct bench_config *cfg,
			 const struct bench_result *r, double units,
			 const char *unit)
{
	if (!r->server_measured)
		return;
	printf("%-15s%.2f s in %u process%s (pid %d and descendants)",
	       "server CPU", r->server_cpu_s, r->server_procs,
	       r->server_procs == 1 ? "" : "es", (int)cfg->server_pid);
	if (unit && units > 0)
		printf(", %.1f us per %s", r->server_cpu_s * 1e6 / units, unit);
	printf("\n");
	if (mode_reads_memory(cfg->mode))
		printf("%-15sRSS %ld KiB, PSS %ld KiB with %u connections open "
		       "(before: RSS %ld, PSS %ld)\n", "server memory", r->rss_kib,
		       r->pss_kib, r->open, r->rss_before_kib, r->pss_before_kib);
	if (mode_reads_memory(cfg->mode) && r->open > 0)
		printf("%-15s%.2f KiB of PSS per connection\n", "",
		       (double)(r->pss_kib - r->pss_before_kib) / r->open);
}

void report_text(const struct bench_config *cfg, const struct bench_result *r)
{
	char host[INET_ADDRSTRLEN];
	double units;
	const char *unit;

	inet_ntop(AF_INET, &cfg->server.sin_addr, host, sizeof host);
	print_what(cfg);
	printf("%-15s%s:%u from %u source address%s, %u thread%s\n", "server",
	       host, ntohs(cfg->server.sin_port), cfg->sources,
	       cfg->sources == 1 ? "" : "es", cfg->threads,
	       plural(cfg->threads));
	if (cfg->mode != MODE_CONNRATE)
		printf("%-15s%u of %u after set-up\n", "open", r->open,
		       cfg->connections);
	printf("%-15s%.3f s, after %.1f s of warm-up%s\n", "measured",
	       r->measured_s, r->warmup_s,
	       r->interrupted ? " (interrupted)" : "");
	print_work(cfg, r, &units, &unit);
	print_errors(&r->total);
	printf("%-15s%.2f s user + %.2f s system = %.1f%% of one CPU\n",
	       "muxbench CPU", r->user_s, r->sys_s, cpu_pct(r));
	print_server(cfg, r, units, unit);
}
