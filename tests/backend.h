/* backend.h -- a server of known behaviour for the contract's delay and
 * work services, to test clients of them (muxbench) against.
 *
 * It runs in a child process and is described by a struct muxd_server,
 * as a muxd serving "delay" and "work" would be: muxd_port, muxd_stop and
 * SIGSTOP/SIGCONT work on both alike, so a test may switch to muxd by
 * changing the one line that starts the server.
 */
#ifndef MUXD_TEST_BACKEND_H
#define MUXD_TEST_BACKEND_H

#include <stdbool.h>

#include "harness.h"

/* Listen on 127.0.0.1:0 for delay and for work, and serve them in a child
 * process until it is stopped. With lie, every reply is wrong: a delay
 * request is answered at once, a work reply has its last digit changed.
 * Bails out if it cannot start. */
void backend_start(struct muxd_server *srv, bool lie);

#endif
