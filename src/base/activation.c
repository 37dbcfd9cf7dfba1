/* activation.c -- the sockets a service manager handed over. */
#include "base/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/service.h"

/* Beyond this a LISTEN_FDS value is a mistake, not a configuration. */
#define MAX_ACTIVATED 1024

/* LISTEN_PID names us and LISTEN_FDS is a count: how many, else 0. */
static long activated_count(char *err)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long n;

	if (!pid || !fds || strtol(pid, &end, 10) != (long)getpid() || *end)
		return 0;
	errno = 0;
	n = strtol(fds, &end, 10);
	if (errno || *end || fds[0] < '0' || fds[0] > '9' || n > MAX_ACTIVATED) {
		snprintf(err, NET_ERR_LEN, "socket activation: bad LISTEN_FDS '%s': "
			 "expected a count from 0 to %d", fds, MAX_ACTIVATED);
		return -1;
	}
	return n;
}

static int sockopt(int fd, int level, int name)
{
	int value = -1;
	socklen_t len = sizeof value;

	if (getsockopt(fd, level, name, &value, &len) < 0)
		return -1;
	return value;
}

/* A listening TCP socket, over IPv4 or IPv6, or a message saying why not. */
static int check_socket(int fd, char *err)
{
	int domain = sockopt(fd, SOL_SOCKET, SO_DOMAIN);
	const char *why = NULL;

	if (fcntl(fd, F_GETFD) < 0)
		why = "is not open";
	else if (domain < 0)
		why = errno == ENOTSOCK ? "is not a socket" : strerror(errno);
	else if ((domain != AF_INET && domain != AF_INET6) ||
		 sockopt(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM ||
		 sockopt(fd, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_TCP)
		why = "is not a TCP socket (ListenStream= with an address and port)";
	else if (sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN) != 1)
		why = "is a TCP socket that is not listening";
	if (!why)
		return 0;
	snprintf(err, NET_ERR_LEN, "socket activation: descriptor %d %s", fd, why);
	return -1;
}

/* The name of descriptor i in LISTEN_FDNAMES, copied into name. */
static int fd_name(const char *names, long i, char *name, size_t size,
		   char *err)
{
	const char *p = names;
	size_t len;

	for (long k = 0; p && k < i; k++) {
		p = strchr(p, ':');
		p = p ? p + 1 : NULL;
	}
	len = p ? strcspn(p, ":") : 0;
	if (!len || len >= size) {
		snprintf(err, NET_ERR_LEN, "socket activation: descriptor %ld has "
			 "no service name in LISTEN_FDNAMES; give each socket one "
			 "with FileDescriptorName=SERVICE", ACTIVATION_FIRST_FD + i);
		return -1;
	}
	memcpy(name, p, len);
	name[len] = '\0';
	return 0;
}

/* Where the socket is bound; an IPv6 socket that also takes IPv4 stands
 * for "every address", as --listen without a host does, so that a
 * per-worker copy (--accept=reuseport) is made the same way. */
static int describe_listener(struct listener *l, int fd, const char *name,
			     char *err)
{
	memset(l, 0, sizeof *l);
	l->fd = fd;
	l->service = svc_find(name);
	if (!l->service) {
		snprintf(err, NET_ERR_LEN, "socket activation: descriptor %d is "
			 "named '%s' (LISTEN_FDNAMES), which is no service "
			 "(see --list-services)", fd, name);
		return -1;
	}
	l->addr_len = sizeof l->addr;
	if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addr_len) < 0) {
		snprintf(err, NET_ERR_LEN, "socket activation: getsockname "
			 "descriptor %d: %s", fd, strerror(errno));
		return -1;
	}
	l->port = ntohs(l->addr.ss_family == AF_INET6
			? ((struct sockaddr_in6 *)&l->addr)->sin6_port
			: ((struct sockaddr_in *)&l->addr)->sin_port);
	if (l->addr.ss_family != AF_INET6 ||
	    sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY) != 0)
		net_format_host((struct sockaddr *)&l->addr, l->host_arg,
				sizeof l->host_arg);
	return 0;
}

/* The engines expect what net_listen makes: non-blocking, close-on-exec. */
static int adopt(int fd, char *err)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(err, NET_ERR_LEN, "socket activation: fcntl descriptor "
			 "%d: %s", fd, strerror(errno));
		return -1;
	}
	return 0;
}

static int take_listeners(struct listener *out, long n, const char *names,
			  char *err)
{
	char name[32];

	for (long i = 0; i < n; i++) {
		int fd = ACTIVATION_FIRST_FD + (int)i;

		if (check_socket(fd, err) < 0 ||
		    fd_name(names, i, name, sizeof name, err) < 0 ||
		    describe_listener(&out[i], fd, name, err) < 0 ||
		    adopt(fd, err) < 0)
			return -1;
	}
	return 0;
}

static void forget(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

void activation_release(void)
{
	char err[NET_ERR_LEN];
	long n = activated_count(err);

	for (long i = 0; i < n; i++)
		close(ACTIVATION_FIRST_FD + (int)i);
	forget();
}

int activation_listeners(struct listener **out, char *err)
{
	long n = activated_count(err);
	const char *names = getenv("LISTEN_FDNAMES");

	*out = NULL;
	if (n > 0) {
		*out = calloc((size_t)n, sizeof **out);
		if (!*out) {
			snprintf(err, NET_ERR_LEN, "socket activation: out of memory");
			n = -1;
		} else if (take_listeners(*out, n, names, err) < 0) {
			free(*out);
			*out = NULL;
			n = -1;
		}
	}
	forget();
	return (int)n;
}
