/* spares.c -- a LIFO of emptied connection buffers, the most recently
 * touched (and so most likely cached) first. */
#include "core/spares.h"

#include <malloc.h>
#include <stdlib.h>

#include "core/server.h"

#define SPARES_MAX 64		/* emptied buffers kept for reuse */

struct spare_buffer {
	struct spare_buffer *next;
};

void spares_setup(void)
{
	mallopt(M_MMAP_THRESHOLD, CONN_BUF_SIZE);
}

unsigned char *spares_get(struct spares *s)
{
	struct spare_buffer *b = s->list;

	if (!b)
		return malloc(CONN_BUF_SIZE);
	s->list = b->next;
	s->count--;
	return (unsigned char *)b;
}

void spares_put(struct spares *s, unsigned char *buf)
{
	struct spare_buffer *b = (struct spare_buffer *)(void *)buf;

	if (s->count >= SPARES_MAX) {
		free(buf);
		return;
	}
	b->next = s->list;
	s->list = b;
	s->count++;
}

void spares_free(struct spares *s)
{
	while (s->list) {
		struct spare_buffer *b = s->list;

		s->list = b->next;
		free(b);
	}
	s->count = 0;
}
