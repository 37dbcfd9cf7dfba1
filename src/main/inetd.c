/* inetd.c -- serving the one connection inetd hands over. */
#include "main/inetd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/signals.h"
#include "core/blocking.h"
#include "services/service.h"

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* 0 when fd is connected, or was until its client reset it: then it has
 * no peer any more but the reset's error is still pending, a connection
 * gone (inetd_serve() says so), not a socket that never had a peer, such
 * as a listener. Else why it has no peer. */
static int no_peer_error(int fd)
{
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof peer, len = sizeof(int);
	int pending = 0;

	if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0)
		return 0;
	if (errno != ENOTCONN)
		return errno;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &len) == 0 && pending)
		return 0;
	return ENOTCONN;
}

int inetd_check(char *err)
{
	int type = 0, no_peer;
	socklen_t len = sizeof type;

	if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_STREAM)
		snprintf(err, NET_ERR_LEN, "--inetd: standard input is not a "
			 "stream socket (%s); inetd, xinetd or a systemd "
			 "Accept=yes socket starts muxd this way",
			 type ? "not SOCK_STREAM" : strerror(errno));
	else if ((no_peer = no_peer_error(STDIN_FILENO)) != 0)
		snprintf(err, NET_ERR_LEN, "--inetd: standard input is a socket "
			 "with no peer: %s", strerror(no_peer));
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
	/* For the -v lines; a failure other than a client gone leaves the
	 * peer unknown, no more. */
	if (getpeername(conn.fd, (struct sockaddr *)&conn.peer, &peer_len) < 0 &&
	    errno == ENOTCONN) {
		log_info("--inetd %s: peer gone before serving", svc->name);
		return 0;
	}
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
