/* flow.h -- one client's bulk exchange with muxd, driven by poll.
 *
 * A flow sends `out`, half-closes, and expects exactly `expect` back and
 * then EOF, checking every byte as it arrives. Flows use non-blocking
 * sockets and run together in one poll loop, so the test itself never
 * deadlocks: a server that does is caught by the flow's time limit.
 */
#ifndef MUXD_TEST_FLOW_H
#define MUXD_TEST_FLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "tap.h"

#define FLOW_MAX 64	/* flows run_flows drives at once */

struct flow {
	int fd;
	const unsigned char *out;
	size_t out_len, sent;
	const unsigned char *expect;
	size_t expect_len, got;
	bool may_read;		/* reading has begun */
	size_t sent_before_read;	/* sent when reading began */
	bool eof, failed;
	char why[256];		/* what went wrong, once failed */
};

/* Set up a flow on a connected fd (-1: the connect failed, errno says
 * why). A pipelining flow (read_early false) reads only once everything
 * is sent or the server stopped taking bytes. */
void flow_init(struct flow *f, int fd, const unsigned char *out,
	       size_t out_len, const unsigned char *expect, size_t expect_len,
	       bool read_early);
/* Mark the flow failed; the first reason is kept. */
void flow_fail(struct flow *f, const char *fmt, ...) TAP_PRINTF(2, 3);
/* Drive up to FLOW_MAX flows until each has ended or timeout_ms (scaled)
 * passed; returns how many failed. The caller closes the fds. */
int run_flows(struct flow *flows, int n, long timeout_ms);
/* Connect to 127.0.0.1:port, run one flow, close; true if it passed. */
bool flow_exchange(unsigned short port, const unsigned char *out,
		   size_t out_len, const unsigned char *expect,
		   size_t expect_len, bool read_early, long timeout_ms,
		   struct flow *f);

#endif
