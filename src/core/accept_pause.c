/* accept_pause.c -- resting after accept runs out of descriptors. */
#include "core/accept_pause.h"

#include <string.h>

#include "base/log.h"

void accept_pause_start(struct accept_pause *p, int err, int64_t now)
{
	if (!p->short_of_fds)
		log_error("accept: %s; pausing accepts, %d ms at a time, "
			  "until descriptors free up", strerror(err),
			  ACCEPT_PAUSE_MS);
	p->short_of_fds = true;
	p->until = now + ACCEPT_PAUSE_MS;
}

void accept_pause_end(struct accept_pause *p)
{
	if (p->short_of_fds)
		log_info("accepting again");
	p->short_of_fds = false;
}
