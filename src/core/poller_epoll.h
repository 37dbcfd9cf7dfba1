/* poller_epoll.h -- what the epoll engines share: the instance, the wait
 * and the translation of its events, and the level-triggered poller that
 * epoll-lt and multi-reactor's threads run. How epoll-et registers a
 * descriptor stays in engine_epoll_et.c. */
#ifndef MUXD_POLLER_EPOLL_H
#define MUXD_POLLER_EPOLL_H

#include <stdint.h>

#include "core/poller.h"

void *poller_epoll_create(int max_fds, int max_events);
/* EPOLL_CTL_ADD, _MOD or _DEL as old and new masks say. */
int poller_epoll_ctl(void *p, int fd, unsigned old_mask, uint32_t events);
/* Closing a descriptor removes it from the interest list by itself. */
void poller_epoll_forget(void *p, int fd, unsigned mask);
int poller_epoll_wait(void *p, int timeout_ms, struct poller_event *events);
void poller_epoll_destroy(void *p);

/* Level-triggered; takes POLLER_EXCLUSIVE. */
extern const struct poller epoll_lt_poller;

#endif
