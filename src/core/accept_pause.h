/* accept_pause.h -- the rest every core takes when accept runs out of
 * descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).
 *
 * The listener stays readable while the backlog holds connections, so
 * retrying at once would spin; nginx and inetd rest instead, and so do we.
 */
#ifndef MUXD_ACCEPT_PAUSE_H
#define MUXD_ACCEPT_PAUSE_H

#include <stdbool.h>
#include <stdint.h>

/* How long to rest before accepting again. */
#define ACCEPT_PAUSE_MS 100

/* Each shortage is logged once when it starts and once when it ends, not
 * every ACCEPT_PAUSE_MS. */
struct accept_pause {
	int64_t until;		/* monotonic ms; accept again from then on */
	bool short_of_fds;	/* a shortage is under way */
};

/* accept failed with err at monotonic time now: rest from now on. */
void accept_pause_start(struct accept_pause *p, int err, int64_t now);
/* An accept succeeded: a shortage, if any, is over. */
void accept_pause_end(struct accept_pause *p);

#endif
