/* buffer_cache.c -- a LIFO of emptied connection buffers, the most recently
 * touched (and so most likely cached) first. */
#include "base/buffer_cache.h"

#include <malloc.h>
#include <stdlib.h>

#define CACHE_MAX 64		/* emptied buffers kept for reuse */

struct cached_buffer {
	struct cached_buffer *next;
};

void buffer_cache_setup(void)
{
	mallopt(M_MMAP_THRESHOLD, CONN_BUF_SIZE);
}

unsigned char *buffer_cache_get(struct buffer_cache *s)
{
	struct cached_buffer *b = s->list;

	if (!b)
		return malloc(CONN_BUF_SIZE);
	s->list = b->next;
	s->count--;
	return (unsigned char *)b;
}

void buffer_cache_put(struct buffer_cache *s, unsigned char *buf)
{
	struct cached_buffer *b = (struct cached_buffer *)(void *)buf;

	if (s->count >= CACHE_MAX) {
		free(buf);
		return;
	}
	b->next = s->list;
	s->list = b;
	s->count++;
}

void buffer_cache_free(struct buffer_cache *s)
{
	while (s->list) {
		struct cached_buffer *b = s->list;

		s->list = b->next;
		free(b);
	}
	s->count = 0;
}
