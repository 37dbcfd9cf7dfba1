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

/* The tags: " [a] [b]" for people, "a b" for programs. */
static void tags_as(const struct engine *e, bool bracketed, char *out,
		    size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof feature_tags / sizeof feature_tags[0]; i++) {
		const char *tag = feature_tags[i].tag;

		if (!(e->features & feature_tags[i].flag) || used >= len)
			continue;
		if (bracketed)
			used += (size_t)snprintf(out + used, len - used, " [%s]", tag);
		else
			used += (size_t)snprintf(out + used, len - used, "%s%s",
						 used ? " " : "", tag);
	}
}

void engine_feature_tags(const struct engine *e, char *out, size_t len)
{
	tags_as(e, true, out, len);
}

/* Its strategies, the default first if default_first. */
static void strategies_as(const struct engine *e, bool default_first,
			  char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	if (default_first && e->accept_strategies)
		used = (size_t)snprintf(out, len, "%s", accept_names[e->default_accept]);
	for (int i = 0; accept_names[i] && used < len; i++)
		if (e->accept_strategies & 1u << i &&
		    !(default_first && i == (int)e->default_accept))
			used += (size_t)snprintf(out + used, len - used, "%s%s",
						 used ? " " : "", accept_names[i]);
}

void engine_accept_list(const struct engine *e, char *out, size_t len)
{
	strategies_as(e, false, out, len);
}

void engine_tsv_row(const struct engine *e, char *out, size_t len)
{
	char tags[128], strategies[128];
	const char *option = e->takes_threads ? "threads"
		: e->features & (ENGINE_POOL | ENGINE_OFFLOAD) ? "workers" : "-";

	tags_as(e, false, tags, sizeof tags);
	strategies_as(e, true, strategies, sizeof strategies);
	snprintf(out, len, "%s\t%s\t%s\t%s", e->name, tags,
		 e->accept_strategies ? strategies : "-", option);
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
