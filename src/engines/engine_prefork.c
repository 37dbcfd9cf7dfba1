/* engine_prefork.c -- a static pool of N worker processes.
 *
 * Stevens' preforked server (UNP ch. 30): N workers made before serving,
 * each an iterative server sharing the listeners as --accept says. The
 * policy is only "every slot has a worker": one that dies is replaced at
 * once (prefork.c backs off when they keep dying at start-up).
 */
#include "core/prefork.h"
#include "engines/engine.h"

static void fill_every_slot(struct prefork *p)
{
	for (unsigned i = 0; i < p->n_slots; i++)
		if (prefork_state(p, i) == WORKER_EMPTY)
			prefork_spawn(p, i);
}

static const struct prefork_policy static_pool = {
	.start = fill_every_slot,
	.maintain = fill_every_slot,
	.react = fill_every_slot,	/* a worker that ends is replaced at once */
};

static int prefork_static_run(const struct engine *self, const struct server *srv)
{
	(void)self;
	return prefork_run(srv, &static_pool);
}

const struct engine engine_prefork = {
	.name = "prefork",
	.summary = "static pool of --workers processes, each serving one connection at a time",
	.features = ENGINE_PROCESSES | ENGINE_POOL,
	.accept_strategies = PREFORK_STRATEGIES,
	.default_accept = PREFORK_DEFAULT_ACCEPT,
	.run = prefork_static_run,
};
