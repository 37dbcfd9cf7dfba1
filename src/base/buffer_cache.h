/* buffer_cache.h -- connection buffers kept for reuse.
 *
 * A connection holds a CONN_BUF_SIZE buffer only while there is output in
 * it, so an idle connection costs no buffer. An emptied buffer waits on a
 * short free list for the next connection that needs one, rather than
 * going back to malloc at every message.
 *
 * Beyond that list, a buffer goes back to the system, not only to malloc:
 * after a burst (thousands of connections each holding a buffer, then
 * gone) a long-running server returns to its idle footprint. Freed 64 KiB
 * blocks would otherwise stay in malloc's heap for good.
 */
#ifndef MUXD_BUFFER_CACHE_H
#define MUXD_BUFFER_CACHE_H

/* Every engine's buffer per connection: input is read into it and output
 * sent from it, so it is also the ceiling of memory per connection. 64 KiB,
 * as libuv reads: a stream then costs one read and one write per 64 KiB
 * (16 KiB made four of each). The reactors hold it only while it holds
 * bytes, so an idle connection does not pay for its size. */
#define CONN_BUF_SIZE (64 * 1024)

struct cached_buffer;

/* Once per process, before the first buffer: blocks of CONN_BUF_SIZE and
 * more are mapped on their own (M_MMAP_THRESHOLD), so that free() unmaps
 * them. Only buffers beyond the list pay the map and unmap; a sanitizer's
 * allocator ignores it and keeps its checks. */
void buffer_cache_setup(void);

struct buffer_cache {
	struct cached_buffer *list;
	unsigned count;
};

/* A CONN_BUF_SIZE buffer, from the list or malloc; NULL when out of
 * memory. */
unsigned char *buffer_cache_get(struct buffer_cache *s);

/* Done with buf: kept for the next buffer_cache_get, or freed if enough are. */
void buffer_cache_put(struct buffer_cache *s, unsigned char *buf);

/* Free every buffer kept. */
void buffer_cache_free(struct buffer_cache *s);

#endif
