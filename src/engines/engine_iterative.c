/* engine_iterative.c -- one connection at a time, in the main process.
 *
 * The simplest server there is: accept, serve to the end, close, repeat.
 * Everyone else waits in the listen backlog, which is what the model is
 * here to show; --idle-timeout bounds how long one client can hold it.
 * Signals reach the thread that serves, so it waits for its socket and the
 * signal pipe together (one poll before each read or write): a stop closes
 * the listeners at once and gives the connection the grace period.
 */
#include <unistd.h>

#include "base/log.h"
#include "core/blocking.h"
#include "engines/engine.h"

static int iterative_run(const struct engine *self, const struct server *srv)
{
	struct acceptor acceptor;
	struct accepted conn;
	enum accept_result r;

	(void)self;
	if (acceptor_start(&acceptor, srv) < 0)
		return 1;
	/* The accept loop is written out in iterative, fork and pthread
	 * alike, on purpose: side by side, they differ in the one line that
	 * is the model (serve here, fork a child, start a thread). */
	while ((r = acceptor_next(&acceptor, &conn)) != ACCEPT_STOP) {
		if (r != ACCEPT_CONN)
			continue;
		blocking_serve(srv, &conn, &acceptor);
		close(conn.fd);
	}
	log_stopping(0, srv->grace);
	acceptor_close(&acceptor);
	return 0;
}

const struct engine engine_iterative = {
	.name = "iterative",
	.summary = "one connection at a time in the main process: accept, serve, close",
	.features = ENGINE_SERIAL,
	.run = iterative_run,
};
