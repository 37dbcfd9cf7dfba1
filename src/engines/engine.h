/* engine.h -- the concurrency models, one row each in one table.
 *
 * Each engine is one file exporting one `struct engine`; engines.c lists
 * them. --engine, --list-engines, --help and the tests all read that list,
 * and tests decide what to expect from the feature flags, never the names.
 */
#ifndef MUXD_ENGINE_H
#define MUXD_ENGINE_H

#include <stdbool.h>

#include "core/server.h"

enum engine_feature {
	ENGINE_SERIAL = 1 << 0,		/* serves one connection at a time */
	ENGINE_PROCESSES = 1 << 1,	/* connections served in child processes */
	ENGINE_THREADS = 1 << 2,	/* connections served in threads */
	ENGINE_READINESS = 1 << 3,	/* one thread multiplexes non-blocking sockets */
	ENGINE_EDGE = 1 << 4,		/* edge-triggered: drains until EAGAIN */
	ENGINE_O1_WAIT = 1 << 5,	/* wait cost independent of idle connections */
	ENGINE_FD_SETSIZE = 1 << 6,	/* descriptors must stay below FD_SETSIZE */
	ENGINE_POOL = 1 << 7,		/* a pool of workers made before serving (--workers) */
	ENGINE_COMPLETION = 1 << 8,	/* the kernel performs the I/O and reports what completed */
	ENGINE_OFFLOAD = 1 << 9,	/* request services' waits and work run on --workers threads */
};

struct poller;

struct engine {
	const char *name;
	const char *summary;
	unsigned features;
	/* Single-threaded readiness engines: the kernel mechanism reactor.c
	 * drives, which is then the whole engine (run is NULL). */
	const struct poller *poller;
	/* Pool engines: the --accept strategies they offer, as a mask of
	 * 1 << enum accept_strategy, and the one they use by default. */
	unsigned accept_strategies;
	enum accept_strategy default_accept;
	/* Optional: can this kernel run the engine at all? 0, or -1 with
	 * the system's reason in err (NET_ERR_LEN bytes). main calls it
	 * before binding the listeners. */
	int (*probe)(char *err);
	/* Serves in --threads threads (shown as "(--threads)"). */
	bool takes_threads;
	/* Serve until stopped; returns the exit status. */
	int (*run)(const struct engine *self, const struct server *srv);
};

/* Serve srv with e until stopped (its run, or the reactor on its
 * poller); returns the exit status. */
int engine_run(const struct engine *e, const struct server *srv);

/* --accept's names by enum accept_strategy, NULL-ended. */
extern const char *const accept_names[];

/* NULL-ended, in --list-engines order. */
extern const struct engine *const engines[];

const struct engine *engine_find(const char *name);

/* " [serial] [processes]"-style tags for the engine's features. */
void engine_feature_tags(const struct engine *e, char *out, size_t len);

/* "plain flock mutex": the --accept strategies the engine takes. */
void engine_accept_list(const struct engine *e, char *out, size_t len);

/* Its --list-engines=tsv line, for programs: name, tags (space-
 * separated, no brackets), --accept strategies with the default first
 * (or "-"), and which of --threads and --workers applies ("threads",
 * "workers" or "-"), tab-separated. */
void engine_tsv_row(const struct engine *e, char *out, size_t len);

/* The engine's --list-engines text after its name: the summary, its
 * --accept strategies if it has any ("(--accept: handoff mutex; default
 * pass)", so that scripts can derive the variants), "(--threads)" if it
 * takes that option, then its tags. */
void engine_describe(const struct engine *e, char *out, size_t len);

#endif
