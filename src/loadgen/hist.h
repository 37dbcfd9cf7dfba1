/* hist.h -- a latency histogram with log-linear buckets, after HdrHistogram.
 *
 * Values below 2^HIST_SUB_BITS are counted exactly. Above, each power of
 * two is cut into 2^(HIST_SUB_BITS - 1) buckets of equal width, so any
 * value is known to within 1/64 (1.6 %) whatever its size. Recording is
 * a count of leading zeros, a shift and an add, with no allocation: each
 * load thread keeps its own histogram and they are merged at the end.
 */
#ifndef MUXBENCH_HIST_H
#define MUXBENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
/* Buckets are 2^HIST_MAX_SHIFT wide at most: values up to 2^43 (in ns,
 * over two hours) are kept; larger ones land in the last bucket. */
#define HIST_MAX_SHIFT 36
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) << (HIST_SUB_BITS - 1))

struct hist {
	uint64_t count;
	uint64_t min, max;	/* exact; min is UINT64_MAX while empty */
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
void hist_merge(struct hist *into, const struct hist *from);
/* The value below which a fraction q (0 to 1) of the values lie, as the
 * middle of its bucket kept within [min, max]; q = 1 gives the exact max.
 * 0 when the histogram is empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
