/* ref_libevent.c -- muxd's upper and stamp services written against
 * libevent 2.1.
 *
 * It exists only as a reference row for `make bench`: it is not part of
 * muxd, not installed and not tested. It takes muxd's --listen
 * SERVICE=HOST:PORT (upper or stamp; HOST a numeric IPv4 or [IPv6]
 * address; PORT 0 picks one), prints muxd's "listening SERVICE ADDRESS
 * PORT" line for each, and exits 0 on SIGTERM or SIGINT.
 *
 * Written the usual way: an evconnlistener, one bufferevent per
 * connection. upper uppercases the input buffer in place and moves it to
 * the output buffer without copying it; reading is disabled while more than
 * MAX_QUEUED bytes wait to be sent, as muxd stops at a full 64 KiB
 * buffer, and enabled again once the output drains to the low write
 * watermark. stamp and a client's end of input close after the flush.
 * TCP_NODELAY on every connection, unlike muxd: libevent 2.1 reads at most
 * 4 KiB a call, so it echoes a 16 KiB write in pieces, and Nagle holds
 * each piece after the first until the client's delayed ACK, 40 ms later
 * (1.5 MB/s where it should be near 100); libevent echo servers set it for
 * that reason. muxd reads and echoes whole 64 KiB chunks. SIGUSR1, which muxbench --server-stats
 * sends at each end of its measured interval, is caught and does nothing
 * (its default action would kill us).
 */
#include "ref_upper.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QUEUED (64 * 1024)	/* muxd's per-connection buffer */
#define BACKLOG 511		/* muxd's default */
#define MAX_LISTENERS 16

enum service { UPPER, STAMP };

static void close_when_flushed(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING)) {
		/* The client is done sending: owe it the rest, then close. */
		bufferevent_disable(bev, EV_READ);
		bufferevent_setcb(bev, NULL, close_when_flushed, on_event, NULL);
		close_when_flushed(bev, NULL);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(bev);
	}
}

/* The input is one or two chains, as a read left it: pulling it up
 * into one rarely copies. */
static void uppercase(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	unsigned char *p = evbuffer_pullup(buf, -1);

	if (p)
		ref_upper(p, len);
}

static void on_upper_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);

	(void)arg;
	uppercase(in);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) > MAX_QUEUED)
		bufferevent_disable(bev, EV_READ);
}

static void on_upper_drained(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (!(bufferevent_get_enabled(bev) & EV_READ))
		bufferevent_enable(bev, EV_READ);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(
		evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	const enum service *service = arg;
	char text[24];

	(void)sa;
	(void)salen;
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	if (*service == STAMP) {
		snprintf(text, sizeof text, "%lld\r\n", (long long)time(NULL));
		bufferevent_setcb(bev, NULL, close_when_flushed, on_event, NULL);
		bufferevent_write(bev, text, strlen(text));
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	bufferevent_setcb(bev, on_upper_read, on_upper_drained, on_event, NULL);
	bufferevent_setwatermark(bev, EV_WRITE, MAX_QUEUED / 2, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* "SERVICE=HOST:PORT" into service and addr; 0, or -1 if malformed.
 * The port is read apart: evutil_parse_sockaddr_port refuses port 0. */
static int parse_listen(const char *spec, enum service *service,
			struct sockaddr_storage *addr, int *addr_len)
{
	const char *eq = strchr(spec, '='), *colon = strrchr(spec, ':');
	char host[64];
	int port;

	if (!eq || !colon || colon < eq || colon - eq - 1 >= (int)sizeof host ||
	    sscanf(colon + 1, "%d", &port) != 1 || port < 0 || port > 65535)
		return -1;
	if (eq - spec == 5 && !strncmp(spec, "upper", 5))
		*service = UPPER;
	else if (eq - spec == 5 && !strncmp(spec, "stamp", 5))
		*service = STAMP;
	else
		return -1;
	memcpy(host, eq + 1, (size_t)(colon - eq - 1));
	host[colon - eq - 1] = '\0';
	if (evutil_parse_sockaddr_port(host, (struct sockaddr *)addr, addr_len) < 0)
		return -1;
	if (addr->ss_family == AF_INET6)
		((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
	return 0;
}

static struct evconnlistener *start_listener(struct event_base *base,
	enum service *service, const struct sockaddr_storage *addr, int addr_len)
{
	struct evconnlistener *l = evconnlistener_new_bind(base, on_accept,
		service, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, BACKLOG,
		(const struct sockaddr *)addr, addr_len);
	struct sockaddr_storage bound;
	socklen_t len = sizeof bound;
	const void *ip;
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	if (!l || getsockname(evconnlistener_get_fd(l),
			      (struct sockaddr *)&bound, &len) < 0) {
		perror("ref-libevent: listen");
		exit(1);
	}
	if (bound.ss_family == AF_INET6) {
		ip = &((struct sockaddr_in6 *)&bound)->sin6_addr;
		port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	} else {
		ip = &((struct sockaddr_in *)&bound)->sin_addr;
		port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	}
	evutil_inet_ntop(bound.ss_family, ip, host, sizeof host);
	printf("listening %s %s %u\n", *service == STAMP ? "stamp" : "upper",
	       host, port);
	return l;
}

static void on_stop_signal(evutil_socket_t sig, short what, void *base)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(base);
}

static void on_usr1(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
}

static int usage(void)
{
	fprintf(stderr, "usage: ref-libevent --listen {upper|stamp}=HOST:PORT...\n");
	return 2;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "listen", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 }
	};
	static enum service services[MAX_LISTENERS];
	struct evconnlistener *listeners[MAX_LISTENERS];
	struct event_base *base = event_base_new();
	struct event *term, *intr, *usr1;
	struct sockaddr_storage addr;
	int n = 0, opt, addr_len;

	if (!base) {
		fprintf(stderr, "ref-libevent: event_base_new failed\n");
		return 1;
	}
	while ((opt = getopt_long(argc, argv, "l:", options, NULL)) != -1) {
		addr_len = sizeof addr;
		if (opt != 'l' || n == MAX_LISTENERS ||
		    parse_listen(optarg, &services[n], &addr, &addr_len) < 0)
			return usage();
		listeners[n] = start_listener(base, &services[n], &addr, addr_len);
		n++;
	}
	if (n == 0 || optind < argc)
		return usage();
	fflush(stdout);
	term = evsignal_new(base, SIGTERM, on_stop_signal, base);
	intr = evsignal_new(base, SIGINT, on_stop_signal, base);
	usr1 = evsignal_new(base, SIGUSR1, on_usr1, NULL);
	if (!term || !intr || !usr1 || evsignal_add(term, NULL) < 0 ||
	    evsignal_add(intr, NULL) < 0 || evsignal_add(usr1, NULL) < 0) {
		fprintf(stderr, "ref-libevent: cannot watch signals\n");
		return 1;
	}
	event_base_dispatch(base);
	while (n-- > 0)
		evconnlistener_free(listeners[n]);
	event_free(term);
	event_free(intr);
	event_free(usr1);
	event_base_free(base);
	return 0;
}
