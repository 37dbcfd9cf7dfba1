/* admission.c -- see admission.h. */
#include "core/admission.h"

#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/stats.h"
#include "services/service.h"

void admission_refuse(int fd, const struct listener *l, unsigned open,
		      const char *why)
{
	stat_add(STAT_REFUSED, 1);
	log_conn("refused %s connection: %u open (%s)", l->service->name, open,
		 why);
	close(fd);
}

bool admission_check(const struct server *srv, unsigned open, int fd,
		     const struct listener *l)
{
	if (open < srv->max_conns)
		return true;
	admission_refuse(fd, l, open, "--max-conns");
	return false;
}

bool admission_take(const struct server *srv, _Atomic unsigned *open, int fd,
		    const struct listener *l)
{
	unsigned was = atomic_fetch_add_explicit(open, 1, memory_order_relaxed);

	if (was < srv->max_conns)
		return true;
	atomic_fetch_sub_explicit(open, 1, memory_order_relaxed);
	admission_refuse(fd, l, was, "--max-conns");
	return false;
}

void idle_list_init(struct idle_list *il, const struct server *srv)
{
	list_init(&il->oldest_first);
	il->timeout_ms = (int64_t)srv->idle_timeout * 1000;
}

void idle_forget(struct idle_mark *m)
{
	list_remove(&m->link);
}

void idle_timed_out(void)
{
	stat_add(STAT_TIMED_OUT, 1);
}

struct idle_mark *idle_expire_oldest(struct idle_list *il, int64_t now,
				     bool (*owed)(struct idle_mark *m))
{
	while (il->timeout_ms && !list_empty(&il->oldest_first)) {
		struct idle_mark *m = LIST_ENTRY(il->oldest_first.next,
						 struct idle_mark, link);

		if (now - m->last_active < il->timeout_ms)
			return NULL;
		if (owed && owed(m)) {
			idle_touch(il, m, now);
			continue;
		}
		idle_forget(m);
		idle_timed_out();
		return m;
	}
	return NULL;
}

int idle_timeout_min(const struct idle_list *il, int64_t now, int t)
{
	const struct idle_mark *oldest;

	if (!il->timeout_ms || list_empty(&il->oldest_first))
		return t;
	oldest = LIST_ENTRY(il->oldest_first.next, struct idle_mark, link);
	return clock_timeout_min(t, oldest->last_active + il->timeout_ms - now);
}

bool idle_due(const struct server *srv, int64_t last_active, int64_t now,
	      int64_t *due)
{
	*due = last_active + (int64_t)srv->idle_timeout * 1000;
	return srv->idle_timeout && *due <= now;
}
