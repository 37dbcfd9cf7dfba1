/* inetd.h -- --inetd=SERVICE: one connection, already accepted by inetd,
 * xinetd or a systemd Accept=yes socket, on standard input and output.
 *
 * One connection needs no concurrency model, so whichever --engine is
 * given, it is served by the blocking serve loop (blocking.c) in the main
 * thread, as the iterative engine serves each of its clients: the same
 * service code, the same limits (--idle-timeout, the grace period after
 * SIGTERM), the same --stats counters.
 */
#ifndef MUXD_INETD_H
#define MUXD_INETD_H

#include "core/server.h"

struct service;

/* Is standard input a connected stream socket (or one its client has
 * reset already), and standard output the same socket? Returns 0, or -1
 * with a usage message in err (NET_ERR_LEN bytes). */
int inetd_check(char *err);

/* Serve the connection on standard input and output with `svc` to its
 * end, then close it. When standard error is that connection too (inetd
 * and xinetd hand it on 0, 1 and 2), logs go to /dev/null instead of to
 * the client. Returns the exit status: 0 once served, or once logged
 * that its client had gone before. */
int inetd_serve(const struct server *srv, const struct service *svc);

#endif
