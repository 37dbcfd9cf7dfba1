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
	};

	return names[mode];
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

static unsigned long long quantile_us(const struct bench_stats *s, double q)
{
	return (hist_quantile(&s->latency, q) + 500) / 1000;
}

void report_json(const struct bench_config *cfg, const struct bench_result *r)
{
	const struct bench_stats *s = &r->total;
	bool sized = cfg->mode == MODE_PINGPONG || cfg->mode == MODE_STREAM;
	char host[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &cfg->server.sin_addr, host, sizeof host);
	printf("{\"mode\":\"%s\",\"host\":\"%s\",\"port\":%u,\"connections\":%u,"
	       "\"size\":%zu,\"threads\":%u,\"duration_s\":%.3f,"
	       "\"messages\":%llu,\"messages_per_s\":%.1f,\"bytes\":%llu,"
	       "\"mb_per_s\":%.2f,\"connects\":%llu,\"connects_per_s\":%.1f,"
	       "\"latency_us\":{", mode_name(cfg->mode), host,
	       ntohs(cfg->server.sin_port), cfg->connections,
	       sized ? cfg->size : 0, cfg->threads, r->measured_s,
	       (unsigned long long)s->messages,
	       per_second(s->messages, r->measured_s),
	       (unsigned long long)s->bytes,
	       per_second(s->bytes, r->measured_s) / 1e6,
	       (unsigned long long)s->connects,
	       per_second(s->connects, r->measured_s));
	for (size_t i = 0; i < N_QUANTILES; i++)
		printf("%s\"%s\":%llu", i ? "," : "", quantiles[i].key,
		       quantile_us(s, quantiles[i].q));
	printf("},\"errors\":{\"total\":%llu",
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

static void print_latency(const struct bench_stats *s, const char *what)
{
	printf("%-15s", "latency");
	if (!s->latency.count) {
		printf("none measured\n");
		return;
	}
	for (size_t i = 0; i < N_QUANTILES; i++) {
		char text[32];

		format_ns(text, sizeof text, hist_quantile(&s->latency,
							   quantiles[i].q));
		printf("%s %s%s", quantiles[i].label, text,
		       i + 1 < N_QUANTILES ? ", " : "");
	}
	printf(" (%s)\n", what);
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
	}
	if (cfg->mode == MODE_PINGPONG)
		print_latency(s, "message round trip");
	else if (cfg->mode == MODE_CONNRATE)
		print_latency(s, "connect to end of reply");
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
	if (cfg->mode == MODE_IDLE)
		printf("%-15sRSS %ld KiB, PSS %ld KiB with %u connections open "
		       "(before: RSS %ld, PSS %ld)\n", "server memory", r->rss_kib,
		       r->pss_kib, r->open, r->rss_before_kib, r->pss_before_kib);
	if (cfg->mode == MODE_IDLE && r->open > 0)
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
