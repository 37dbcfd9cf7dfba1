/* spares.h -- connection buffers kept for reuse.
 *
 * A connection holds a CONN_BUF_SIZE buffer only while there is output in
 * it, so an idle connection costs no buffer. An emptied buffer waits on a
 * short free list for the next connection that needs one, rather than
 * going back to malloc at every message.
 */
#ifndef MUXD_SPARES_H
#define MUXD_SPARES_H

struct spare_buffer;

struct spares {
	struct spare_buffer *list;
	unsigned count;
};

/* A CONN_BUF_SIZE buffer, from the list or malloc; NULL when out of
 * memory. */
unsigned char *spares_get(struct spares *s);

/* Done with buf: kept for the next spares_get, or freed if enough are. */
void spares_put(struct spares *s, unsigned char *buf);

/* Free every buffer kept. */
void spares_free(struct spares *s);

#endif
