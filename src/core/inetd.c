/* inetd.c -- serving the one connection inetd hands over. */
#include "core/inetd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/signals.h"
#include "core/blocking.h"

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int inetd_check(char *err)
{
	int type = 0;
	socklen_t len = sizeof type;
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof peer;

	if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_STREAM)
		snprintf(err, NET_ERR_LEN, "--inetd: standard input is not a "
			 "stream socket (%s); inetd, xinetd or a systemd "
			 "Accept=yes socket starts muxd this way",
			 type ? "not SOCK_STREAM" : strerror(errno));
	else if (getpeername(STDIN_FILENO, (struct sockaddr *)&peer, &peer_len) < 0)
		snprintf(err, NET_ERR_LEN, "--inetd: standard input is a socket "
			 "with no peer: %s", strerror(errno));
	else if (!same_file(STDIN_FILENO, STDOUT_FILENO))
		snprintf(err, NET_ERR_LEN, "--inetd: standard output is not the "
			 "socket on standard input");
	else
		return 0;
	return -1;
}

/* The client must never read a log line as service output. */
static void keep_logs_off_the_connection(void)
{
	int null;

	if (!same_file(STDERR_FILENO, STDIN_FILENO))
		return;
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, STDERR_FILENO) < 0)
		close(STDERR_FILENO);
	if (null >= 0)
		close(null);
}

int inetd_serve(const struct server *srv, const struct service *svc)
{
	struct listener origin = { .fd = -1, .service = svc };
	struct accepted conn = { .fd = STDIN_FILENO, .listener = &origin };
	struct server alone = *srv;
	struct acceptor signals_only;
	socklen_t peer_len = sizeof conn.peer;

	keep_logs_off_the_connection();
	/* For the -v lines; a failure leaves the peer unknown, no more. */
	getpeername(conn.fd, (struct sockaddr *)&conn.peer, &peer_len);
	/* No listener: the acceptor only makes the serve loop watch the
	 * signal pipe, so that SIGTERM brings the grace period. */
	alone.n_listeners = 0;
	if (acceptor_init(&signals_only, &alone, sig_wakeup_fd()) < 0)
		return 1;
	blocking_serve(&alone, &conn, &signals_only);
	acceptor_close(&signals_only);
	/* Standard output holds the socket too: the client sees the end
	 * only once both are closed. */
	close(STDOUT_FILENO);
	close(STDIN_FILENO);
	return 0;
}
