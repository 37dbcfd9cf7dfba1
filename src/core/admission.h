/* admission.h -- who is served, once for every engine: --max-conns and
 * --idle-timeout.
 *
 * An engine counts its connections its own way (a plain count in one
 * thread, an atomic one shared by threads) and waits and closes its own
 * way; what is decided, said and counted is here, so that a connection
 * over the limit is refused alike on every engine (closed at once, one
 * -v line, the `refused` counter), and an idle one is judged alike: no
 * byte moved either way for --idle-timeout, unless the server owes it a
 * reply (a request service's wait or work), which is the server's delay,
 * not the client's.
 */
#ifndef MUXD_ADMISSION_H
#define MUXD_ADMISSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/list.h"
#include "core/server.h"

/* Refuse fd, which `why` forbids ("--max-conns"), with `open` served:
 * counted, logged with -v, closed. */
void admission_refuse(int fd, const struct listener *l, unsigned open,
		      const char *why);

/* With `open` served, may fd be served too? If not it is refused. */
bool admission_check(const struct server *srv, unsigned open, int fd,
		     const struct listener *l);

/* The same for a count shared by threads: true with fd counted in
 * *open, or false once it is refused. */
bool admission_take(const struct server *srv, _Atomic unsigned *open, int fd,
		    const struct listener *l);

/* ---- --idle-timeout, for an engine that keeps its connections in one
 * thread: a list oldest first, each moved to the end as bytes move ---- */

struct idle_list {
	struct list oldest_first;
	int64_t timeout_ms;	/* 0: never */
};

struct idle_mark {
	struct list link;
	int64_t last_active;
};

void idle_list_init(struct idle_list *il, const struct server *srv);
static inline void idle_mark_init(struct idle_mark *m)
{
	list_init(&m->link);
}

/* Bytes moved at `now`: the clock starts again. */
static inline void idle_touch(struct idle_list *il, struct idle_mark *m,
			      int64_t now)
{
	m->last_active = now;
	list_remove(&m->link);
	list_append(&il->oldest_first, &m->link);
}
/* The connection is closing: no longer judged. */
void idle_forget(struct idle_mark *m);

/* The oldest connection idle past --idle-timeout at `now`, taken off the
 * list and counted as timed out (the caller closes it, resetting what is
 * stuck), or NULL when none is. One that owed(m) says the server owes a
 * reply is not idle: its clock starts again. */
struct idle_mark *idle_expire_oldest(struct idle_list *il, int64_t now,
				     bool (*owed)(struct idle_mark *m));

/* Called every turn of a loop: the common case, nothing due, inline. */
static inline struct idle_mark *idle_expired(struct idle_list *il, int64_t now,
					     bool (*owed)(struct idle_mark *m))
{
	const struct idle_mark *oldest;

	if (!il->timeout_ms || list_empty(&il->oldest_first))
		return NULL;
	oldest = LIST_ENTRY(il->oldest_first.next, struct idle_mark, link);
	if (now - oldest->last_active < il->timeout_ms)
		return NULL;
	return idle_expire_oldest(il, now, owed);
}

/* A poll timeout t (-1: none) shortened to when the oldest is due. */
int idle_timeout_min(const struct idle_list *il, int64_t now, int t);

/* For an engine that sweeps instead (leader-followers): is a connection
 * last active at last_active due at now? *due says when it will be. */
bool idle_due(const struct server *srv, int64_t last_active, int64_t now,
	      int64_t *due);

/* Count one connection closed for idleness, as idle_expired does. */
void idle_timed_out(void);

#endif
