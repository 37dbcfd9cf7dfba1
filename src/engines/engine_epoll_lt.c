/* engine_epoll_lt.c -- the reactor on epoll(7), level-triggered.
 *
 * The kernel keeps the interest list, so a wait costs what is ready, not
 * what is watched. Level-triggered: a descriptor is reported for as long
 * as it stays ready, so interest is changed (EPOLL_CTL_MOD) whenever the
 * connection starts or stops waiting for input or for room to write. The
 * poller is in poller_epoll.c: multi-reactor's threads run it too.
 */
#include "core/poller_epoll.h"
#include "engines/engine.h"

const struct engine engine_epoll_lt = {
	.name = "epoll-lt",
	.summary = "single-threaded non-blocking reactor on epoll(7), level-triggered",
	.features = ENGINE_READINESS | ENGINE_O1_WAIT,
	.poller = &epoll_lt_poller,
};
