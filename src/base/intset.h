/* intset.h -- a small unordered set of ints (child pids, open descriptors)
 * for engines that must find every live connection at shutdown. */
#ifndef MUXD_INTSET_H
#define MUXD_INTSET_H

#include <stddef.h>

struct intset {
	int *v;
	size_t n, cap;
};

/* Returns 0, or -1 when out of memory. */
int intset_add(struct intset *s, int x);
void intset_remove(struct intset *s, int x);
void intset_free(struct intset *s);

#endif
