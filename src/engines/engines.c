/* engines.c -- the dispatch table. Adding an engine is one file and one
 * line here; the options, the listings and the tests follow from it. */
#include "engines/engine.h"

#include <stdio.h>
#include <string.h>

#include "core/reactor.h"

extern const struct engine engine_iterative, engine_fork, engine_prefork,
	engine_prefork_dynamic, engine_pthread, engine_pthread_pool,
	engine_select, engine_poll, engine_epoll_lt, engine_epoll_et,
	engine_io_uring, engine_multi_reactor, engine_leader_followers,
	engine_sigio, engine_aio_poll, engine_coroutine, engine_half_sync;

const struct engine *const engines[] = {
	&engine_iterative,
	&engine_fork,
	&engine_prefork,
	&engine_prefork_dynamic,
	&engine_pthread,
	&engine_pthread_pool,
	&engine_select,
	&engine_poll,
	&engine_epoll_lt,
	&engine_epoll_et,
	&engine_io_uring,
	&engine_multi_reactor,
	&engine_leader_followers,
	&engine_sigio,
	&engine_aio_poll,
	&engine_coroutine,
	&engine_half_sync,
	NULL,
};

const char *const accept_names[] = {
	[ACCEPT_PLAIN] = "plain",
	[ACCEPT_FLOCK] = "flock",
	[ACCEPT_MUTEX] = "mutex",
	[ACCEPT_REUSEPORT] = "reuseport",
	[ACCEPT_EXCLUSIVE] = "exclusive",
	[ACCEPT_HANDOFF] = "handoff",
	NULL,
};

int engine_run(const struct engine *e, const struct server *srv)
{
	return e->run ? e->run(e, srv) : reactor_run(e->name, e->poller, srv);
}

const struct engine *engine_find(const char *name)
{
	for (const struct engine *const *e = engines; *e; e++)
		if (strcmp((*e)->name, name) == 0)
			return *e;
	return NULL;
}

/* One documented tag per feature flag, as --list-engines prints them. */
static const struct {
	unsigned flag;
	const char *tag;
} feature_tags[] = {
	{ ENGINE_SERIAL, "serial" },
	{ ENGINE_PROCESSES, "processes" },
	{ ENGINE_THREADS, "threads" },
	{ ENGINE_READINESS, "readiness" },
	{ ENGINE_EDGE, "edge-triggered" },
	{ ENGINE_O1_WAIT, "o1-wait" },
	{ ENGINE_FD_SETSIZE, "fd-setsize" },
	{ ENGINE_POOL, "pool" },
	{ ENGINE_COMPLETION, "completion" },
	{ ENGINE_OFFLOAD, "offload" },
};

void engine_feature_tags(const struct engine *e, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof feature_tags / sizeof feature_tags[0]; i++)
		if ((e->features & feature_tags[i].flag) && used < len)
			used += (size_t)snprintf(out + used, len - used, " [%s]",
						 feature_tags[i].tag);
}

void engine_accept_list(const struct engine *e, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; accept_names[i] && used < len; i++)
		if (e->accept_strategies & 1u << i)
			used += (size_t)snprintf(out + used, len - used, "%s%s",
						 used ? " " : "", accept_names[i]);
}

void engine_describe(const struct engine *e, char *out, size_t len)
{
	char tags[128], strategies[128], accept[192] = "";

	engine_feature_tags(e, tags, sizeof tags);
	engine_accept_list(e, strategies, sizeof strategies);
	if (e->accept_strategies)
		snprintf(accept, sizeof accept, " (--accept: %s; default %s)",
			 strategies, accept_names[e->default_accept]);
	snprintf(out, len, "%s%s%s%s", e->summary, accept,
		 e->takes_threads ? " (--threads)" : "", tags);
}
