/* net.c -- parsing --listen, binding listeners, accepting. */
#include "base/net.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/stats.h"
#include "base/trace.h"
#include "services/service.h"

/* Split "[HOST:]PORT" (HOST may be "[v6]") into host and port text. */
static int split_host_port(const char *rest, char *host, size_t host_len,
			   const char **port, char *err, const char *spec)
{
	const char *colon = strrchr(rest, ':');
	const char *start = rest, *end;

	if (!colon) {
		host[0] = '\0';
		*port = rest;
		return 0;
	}
	end = colon;
	if (rest[0] == '[') {
		if (colon == rest || colon[-1] != ']') {
			snprintf(err, NET_ERR_LEN, "bad address in --listen '%s': "
				 "write IPv6 as [ADDRESS]:PORT", spec);
			return -1;
		}
		start = rest + 1;
		end = colon - 1;
	} else if (memchr(rest, ':', (size_t)(colon - rest))) {
		snprintf(err, NET_ERR_LEN, "bad address in --listen '%s': "
			 "write IPv6 as [ADDRESS]:PORT", spec);
		return -1;
	}
	if (end == start || (size_t)(end - start) >= host_len) {
		snprintf(err, NET_ERR_LEN, "bad address in --listen '%s'", spec);
		return -1;
	}
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	*port = colon + 1;
	return 0;
}

static int parse_port(const char *text, unsigned short *port)
{
	char *end;
	unsigned long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v > 65535)
		return -1;
	*port = (unsigned short)v;
	return 0;
}

/* No host: every address, IPv6 and IPv4 on one dual-stack socket. */
static void any_address(struct listener *l)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;

	memset(&l->addr, 0, sizeof l->addr);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_any;
	l->addr_len = sizeof *sin6;
}

static bool seen_before(const struct listener *out, int n,
			const struct addrinfo *ai)
{
	for (int i = 0; i < n; i++)
		if (out[i].addr_len == ai->ai_addrlen &&
		    memcmp(&out[i].addr, ai->ai_addr, ai->ai_addrlen) == 0)
			return true;
	return false;
}

/* A name may have several addresses: serve them all, on one port, as
 * nginx does. AI_ADDRCONFIG leaves out a family the host cannot use. */
static int resolve_host(struct listener *out, bool bracketed, char *err,
			const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_ADDRCONFIG };
	struct addrinfo *res;
	int rc, n = 0;

	if (bracketed) {
		hints.ai_family = AF_INET6;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	}
	rc = getaddrinfo(out->host_arg, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, NET_ERR_LEN, "bad address '%s' in --listen '%s': %s",
			 out->host_arg, spec, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai && n < NET_MAX_ADDRS; ai = ai->ai_next) {
		if (seen_before(out, n, ai))
			continue;	/* /etc/hosts may say it twice */
		if (n > 0) {
			out[n] = out[0];
			out[n].same_port_as_previous = true;
		}
		memcpy(&out[n].addr, ai->ai_addr, ai->ai_addrlen);
		out[n].addr_len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	return n;
}

int net_split_listen(const char *spec, struct listener *l, bool *bracketed,
		     char *err)
{
	const char *eq = strchr(spec, '=');
	const char *port_text;
	char name[32];

	memset(l, 0, sizeof *l);
	l->fd = -1;
	if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof name) {
		snprintf(err, NET_ERR_LEN, "bad --listen '%s': expected "
			 "SERVICE=[HOST:]PORT, e.g. upper=127.0.0.1:6666", spec);
		return -1;
	}
	memcpy(name, spec, (size_t)(eq - spec));
	name[eq - spec] = '\0';
	l->service = svc_find(name);
	if (!l->service) {
		snprintf(err, NET_ERR_LEN, "unknown service '%s' in --listen '%s' "
			 "(see --list-services)", name, spec);
		return -1;
	}
	if (split_host_port(eq + 1, l->host_arg, sizeof l->host_arg,
			    &port_text, err, spec) < 0)
		return -1;
	if (parse_port(port_text, &l->port) < 0) {
		snprintf(err, NET_ERR_LEN, "bad port '%s' in --listen '%s' "
			 "(0 to 65535; 0 picks a free port)", port_text, spec);
		return -1;
	}
	*bracketed = eq[1] == '[';
	return 0;
}

int net_parse_listen(const char *spec, struct listener *out, char *err)
{
	bool bracketed;

	if (net_split_listen(spec, out, &bracketed, err) < 0)
		return -1;
	if (!out->host_arg[0]) {
		any_address(out);
		return 1;
	}
	return resolve_host(out, bracketed, err, spec);
}

static void set_port(struct sockaddr_storage *ss, unsigned short port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static unsigned short get_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

/* Without IPv6 in the kernel, "every address" falls back to IPv4's. */
static int open_socket(struct listener *l)
{
	int type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
	int fd = socket(l->addr.ss_family, type, 0);

	if (fd < 0 && errno == EAFNOSUPPORT && !l->host_arg[0]) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;

		memset(&l->addr, 0, sizeof l->addr);
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		l->addr_len = sizeof *sin;
		fd = socket(AF_INET, type, 0);
	}
	return fd;
}

static int fail(int fd, const char *call, const char *addr, char *err)
{
	int saved = errno;

	snprintf(err, NET_ERR_LEN, "%s %s: %s", call, addr, strerror(saved));
	if (fd >= 0)
		close(fd);
	return -1;
}

int net_listen(struct listener *l, int backlog, bool reuseport, char *err)
{
	char addr[NET_ADDR_LEN];
	int one = 1, zero = 0, fd;

	set_port(&l->addr, l->port);
	net_format_addr((const struct sockaddr *)&l->addr, addr, sizeof addr);
	fd = open_socket(l);
	if (fd < 0)
		return fail(fd, "socket", addr, err);
	/* Restarts must not wait for TIME_WAIT to pass. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		return fail(fd, "setsockopt SO_REUSEADDR", addr, err);
	/* Only when asked: with it, a second server on the port would not
	 * fail to start but share the connections. */
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		return fail(fd, "setsockopt SO_REUSEPORT", addr, err);
	if (l->addr.ss_family == AF_INET6 && !l->host_arg[0] &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
		return fail(fd, "setsockopt IPV6_V6ONLY", addr, err);
	if (bind(fd, (struct sockaddr *)&l->addr, l->addr_len) < 0)
		return fail(fd, "bind", addr, err);
	if (listen(fd, backlog) < 0)
		return fail(fd, "listen", addr, err);
	l->addr_len = sizeof l->addr;
	if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addr_len) < 0)
		return fail(fd, "getsockname", addr, err);
	l->port = get_port((const struct sockaddr *)&l->addr);
	l->fd = fd;
	return 0;
}

struct listener *net_listen_copies(const struct listener *base, size_t n,
				   unsigned copies, int backlog, char *err)
{
	size_t total = n * copies;
	struct listener *l = malloc(total * sizeof *l);

	if (!l) {
		snprintf(err, NET_ERR_LEN, "listeners: %s", strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < total; i++) {
		l[i] = base[i % n];
		if (i >= n && net_listen(&l[i], backlog, true, err) < 0) {
			while (i-- > n)
				close(l[i].fd);
			free(l);
			return NULL;
		}
	}
	return l;
}

void net_close_listeners(const struct listener *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(l[i].fd);
}

bool net_reuseport(int fd)
{
	int on = 0;
	socklen_t len = sizeof on;

	return getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 && on;
}

void net_format_host(const struct sockaddr *sa, char *out, size_t len)
{
	const void *a = sa->sa_family == AF_INET6
		? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
		: (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (!inet_ntop(sa->sa_family, a, out, (socklen_t)len))
		snprintf(out, len, "?");
}

void net_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
		snprintf(out, len, "local");
		return;
	}
	net_format_host(sa, host, sizeof host);
	snprintf(out, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 host, get_port(sa));
}

bool net_connection_error(int err)
{
	switch (err) {
	case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN:
	case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH:
	case EOPNOTSUPP: case ENETUNREACH: case EPERM:
		return true;
	default:
		return false;
	}
}

void net_reset_if_stuck(int fd)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	int queued = 0;

	if (ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
}

bool net_out_of_resources(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

int net_accept(int listen_fd, bool nonblocking, struct sockaddr_storage *peer)
{
	int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);

	for (;;) {
		socklen_t len = sizeof *peer;
		int fd = accept4(listen_fd, (struct sockaddr *)peer, &len, flags);

		stat_add(STAT_SYS_ACCEPT, 1);
		if (fd >= 0)
			trace_event(TRACE_ACCEPT, fd, 0, (uint32_t)listen_fd);
		if (fd >= 0 || !net_connection_error(errno))
			return fd;
	}
}
