/* bench_request.c -- the delay and work services from the client's side:
 * the request line muxbench writes, and the one reply line it must get.
 *
 * A delay request carries its connection's and its own number as the
 * text after the milliseconds, so that a reply to another request (late,
 * doubled, sent to the wrong connection) does not match. A work reply is
 * checked against the N-th output of splitmix64, which muxbench computes
 * in constant time (see splitmix64_nth) while the server iterates N times:
 * every reply is checked, heavy ones included, at no cost to the load.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "loadgen/bench.h"

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ull

/* splitmix64 adds the same gamma to its state each round and outputs a
 * mix of the state alone, so its N-th output (N from 1) is the mix of
 * SEED + N * gamma, modulo 2^64. */
uint64_t splitmix64_nth(uint64_t seed, uint64_t n)
{
	uint64_t z = seed + n * GOLDEN_GAMMA;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

size_t request_format(const struct bench_config *cfg,
		      const struct request *req, char *buf)
{
	int n;

	if (cfg->mode == MODE_DELAY)
		n = snprintf(buf, REQUEST_MAX, "%u %u.%" PRIu64 "\n",
			     cfg->delay_ms, req->conn, req->number);
	else
		n = snprintf(buf, REQUEST_MAX, "%" PRIu64 " %" PRIu64 "\n",
			     cfg->classes[req->cls].n, req->seed);
	return (size_t)n;
}

/* delay: the request's line comes back as it was, ended by LF or CR LF;
 * work: 16 lowercase hex digits and CR LF. */
bool reply_ok(const struct bench_config *cfg, const struct request *req,
	      const char *line, size_t len)
{
	char want[REQUEST_MAX];
	size_t n;

	if (cfg->mode == MODE_WORK) {
		n = (size_t)snprintf(want, sizeof want, "%016" PRIx64 "\r\n",
				     splitmix64_nth(req->seed,
						    cfg->classes[req->cls].n));
		return len == n && memcmp(line, want, n) == 0;
	}
	n = request_format(cfg, req, want) - 1;		/* without its LF */
	len--;						/* the line's LF */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len == n && memcmp(line, want, n) == 0;
}
