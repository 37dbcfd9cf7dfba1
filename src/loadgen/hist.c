/* hist.c -- see hist.h.
 *
 * A value v whose highest set bit is bit m (m >= HIST_SUB_BITS) is shifted
 * right by s = m + 1 - HIST_SUB_BITS, which leaves its top HIST_SUB_BITS
 * bits, t in [2^(SUB-1), 2^SUB); its bucket is s * 2^(SUB-1) + t. Smaller
 * values are their own bucket (s = 0). The indexes run on without gaps.
 */
#include "loadgen/hist.h"

#include <string.h>

#define HALF (1u << (HIST_SUB_BITS - 1))

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
	unsigned shift;

	if (v < (1u << HIST_SUB_BITS))
		return (unsigned)v;
	shift = (unsigned)(64 - __builtin_clzll(v)) - HIST_SUB_BITS;
	if (shift > HIST_MAX_SHIFT)
		return HIST_BUCKETS - 1;
	return shift * HALF + (unsigned)(v >> shift);
}

/* The middle of bucket i's range of values. */
static uint64_t bucket_middle(unsigned i)
{
	unsigned shift;
	uint64_t top;

	if (i < 2 * HALF)
		return i;
	shift = i / HALF - 1;
	top = i - shift * HALF;
	return (top << shift) + ((1ull << shift) - 1) / 2;
}

void hist_record(struct hist *h, uint64_t value)
{
	h->buckets[bucket_of(value)]++;
	h->count++;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count || rank == 0)
		rank++;		/* the ceiling, and at least the first value */
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = bucket_middle(i);

			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}
