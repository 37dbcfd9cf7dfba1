/* intset.c -- append, swap-remove; sizes here are at most --max-conns. */
#include "base/intset.h"

#include <stdlib.h>

int intset_add(struct intset *s, int x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		int *v = realloc(s->v, cap * sizeof *v);

		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

void intset_remove(struct intset *s, int x)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == x) {
			s->v[i] = s->v[--s->n];
			return;
		}
}

void intset_free(struct intset *s)
{
	free(s->v);
	*s = (struct intset){ 0 };
}
