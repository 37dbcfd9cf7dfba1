/* engine_prefork_dynamic.c -- a process pool that breathes, after
 * Apache's prefork MPM.
 *
 * The workers are prefork's; the policy differs. About once a second the
 * parent counts idle workers on the scoreboard. Too few (< --min-spare):
 * it starts 1, then 2, 4, ... up to 32 per step while the shortage lasts,
 * never more than --workers in all. Between steps, a worker that takes
 * the last spares wakes the parent, which tops them up at once. Too many (> --max-spare): it retires
 * idle ones, 1, then 2, 4, ... per step while the surplus lasts (Apache
 * retires one a second; doubling brings a pool back within a few seconds
 * after a burst). A retired worker finishes what it serves and exits:
 * nobody is cut off to shrink the pool.
 */
#include "base/log.h"
#include "core/prefork.h"
#include "engines/engine.h"

#define RATE_MAX 32

static unsigned grow(struct prefork *p, unsigned want)
{
	unsigned started = 0;

	for (unsigned i = 0; i < p->n_slots && started < want; i++)
		if (prefork_state(p, i) == WORKER_EMPTY && prefork_spawn(p, i) == 0)
			started++;
	return started;
}

static unsigned shrink(struct prefork *p, unsigned want)
{
	unsigned retired = 0;

	for (unsigned i = 0; i < p->n_slots && retired < want; i++)
		if (prefork_state(p, i) == WORKER_IDLE &&
		    !atomic_load(&p->board->slot[i].retire))
			retired += prefork_retire(p, i);
	return retired;
}

/* Workers alive and not told to retire: the pool's size after a step. */
static unsigned pool_size(const struct prefork *p)
{
	return prefork_count(p, WORKER_IDLE) + prefork_count(p, WORKER_BUSY);
}

static unsigned doubled(unsigned rate)
{
	return rate * 2 > RATE_MAX ? RATE_MAX : rate * 2;
}

/* With -v every step that finds too few or too many idle workers says so,
 * even when it could act on none (a full pool; with --accept=handoff, idle
 * workers that may have a socket on their way), so that the log shows
 * each step and its size, and the rate's doubling can be followed. */
static void breathe(struct prefork *p)
{
	unsigned idle = prefork_count(p, WORKER_IDLE);
	unsigned busy = prefork_count(p, WORKER_BUSY);
	const struct server *srv = p->srv;

	if (idle < srv->min_spare) {
		unsigned n = grow(p, p->spawn_rate);

		log_conn("pool: %u idle, %u busy: starting %u, now %u workers",
			 idle, busy, n, pool_size(p));
		p->spawn_rate = doubled(p->spawn_rate);
	} else {
		p->spawn_rate = 1;
	}
	if (idle > srv->max_spare) {
		unsigned surplus = idle - srv->max_spare;
		unsigned n = shrink(p, p->retire_rate < surplus ? p->retire_rate : surplus);

		log_conn("pool: %u idle, %u busy: retiring %u, now %u workers",
			 idle, busy, n, pool_size(p));
		p->retire_rate = doubled(p->retire_rate);
	} else {
		p->retire_rate = 1;
	}
}

/* Between steps, keep --min-spare idle workers at once, so that one busy
 * client never leaves the next one waiting for the step. */
static void top_up(struct prefork *p)
{
	unsigned idle = prefork_count(p, WORKER_IDLE), n;

	if (idle >= p->srv->min_spare)
		return;
	n = grow(p, p->srv->min_spare - idle);
	if (n)
		log_conn("pool: %u idle, %u busy: topping up %u, now %u workers",
			 idle, prefork_count(p, WORKER_BUSY), n, pool_size(p));
}

static void start_spares(struct prefork *p)
{
	p->spawn_rate = p->retire_rate = 1;
	atomic_store(&p->board->wake_below, p->srv->min_spare);
	grow(p, p->srv->min_spare);
}

static const struct prefork_policy dynamic_pool = {
	.start = start_spares,
	.maintain = breathe,
	.react = top_up,
};

static int prefork_dynamic_run(const struct engine *self, const struct server *srv)
{
	(void)self;
	return prefork_run(srv, &dynamic_pool);
}

const struct engine engine_prefork_dynamic = {
	.name = "prefork-dynamic",
	.summary = "process pool kept between --min-spare and --max-spare idle workers, Apache-prefork style",
	.features = ENGINE_PROCESSES | ENGINE_POOL,
	.accept_strategies = PREFORK_STRATEGIES,
	.default_accept = PREFORK_DEFAULT_ACCEPT,
	.run = prefork_dynamic_run,
};
