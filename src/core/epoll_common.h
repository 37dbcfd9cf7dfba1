/* epoll_common.h -- what the epoll engines share: the instance, the wait
 * and the translation of its events, and the level-triggered poller that
 * epoll-lt and multi-reactor's threads run. How epoll-et registers a
 * descriptor stays in engine_epoll_et.c. */
#ifndef MUXD_EPOLL_COMMON_H
#define MUXD_EPOLL_COMMON_H

#include <stdint.h>

#include "core/reactor.h"

void *epoll_common_create(int max_fds, int max_events);
/* EPOLL_CTL_ADD, _MOD or _DEL as old and new masks say. */
int epoll_common_ctl(void *p, int fd, unsigned old_mask, uint32_t events);
/* Closing a descriptor removes it from the interest list by itself. */
void epoll_common_forget(void *p, int fd, unsigned mask);
int epoll_common_wait(void *p, int timeout_ms, struct poller_event *events);
void epoll_common_destroy(void *p);

/* Level-triggered; takes POLLER_EXCLUSIVE. */
extern const struct poller epoll_lt_poller;

#endif
