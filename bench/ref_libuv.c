/* ref_libuv.c -- muxd's upper and stamp services written against libuv.
 *
 * It exists only as a reference row for `make bench`: it is not part of
 * muxd, not installed and not tested. It takes muxd's --listen
 * SERVICE=HOST:PORT (upper or stamp; HOST a numeric IPv4 or [IPv6]
 * address; PORT 0 picks one), prints muxd's "listening SERVICE ADDRESS
 * PORT" line for each, and exits 0 on SIGTERM or SIGINT.
 *
 * Written the way libuv's documentation shows: a 64 KiB buffer for every
 * read, uppercased in place and written with uv_try_write, the rest (if
 * any) handed to uv_write and the buffer given back when that completes. Given back to a short free list, not to free(): a
 * 64 KiB malloc and free per message made glibc move the heap's end, a
 * brk(2) every third message (strace -c), which is malloc's cost, not
 * libuv's. Reading stops while more than MAX_QUEUED bytes wait to be
 * sent, as muxd stops at a full 64 KiB buffer, so memory stays bounded.
 * No TCP_NODELAY: muxd sets none. SIGUSR1, which muxbench --server-stats
 * sends at each end of its measured interval, is caught and does nothing
 * (its default action would kill us).
 */
#include "ref_upper.h"

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define READ_SIZE (64 * 1024)	/* what libuv's examples allocate */
#define MAX_QUEUED (64 * 1024)	/* muxd's per-connection buffer */
#define BACKLOG 511		/* muxd's default */
#define MAX_LISTENERS 16
#define SPARE_BUFFERS 64	/* as muxd keeps */

enum service { UPPER, STAMP };

struct listener {
	uv_tcp_t tcp;
	enum service service;
};

struct conn {
	uv_tcp_t tcp;			/* first: the handle is the conn */
	bool paused;			/* reading stopped for a full queue */
	uv_write_t stamp_write;
	char stamp[24];			/* "SECONDS\r\n" */
	uv_shutdown_t shutdown;
};

struct write_req {
	uv_write_t req;
	uv_buf_t buf;		/* what is left to write */
	char *base;		/* the buffer it lies in */
};

static void die(const char *what, int err)
{
	fprintf(stderr, "ref-libuv: %s: %s\n", what, uv_strerror(err));
	exit(1);
}

static void free_conn(uv_handle_t *h)
{
	free(h);
}

static void close_conn(uv_stream_t *s)
{
	if (!uv_is_closing((uv_handle_t *)s))
		uv_close((uv_handle_t *)s, free_conn);
}

static char *spares[SPARE_BUFFERS];
static unsigned n_spares;

static void alloc_buffer(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = n_spares ? spares[--n_spares] : malloc(READ_SIZE);
	buf->len = buf->base ? READ_SIZE : 0;
}

static void release_buffer(char *base)
{
	if (base && n_spares < SPARE_BUFFERS)
		spares[n_spares++] = base;
	else
		free(base);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_upper_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	uv_stream_t *s = req->handle;
	struct conn *c = (struct conn *)s;

	release_buffer(w->base);
	free(w);
	if (status < 0) {
		close_conn(s);
	} else if (c->paused && s->write_queue_size < MAX_QUEUED / 2 &&
		   !uv_is_closing((uv_handle_t *)s)) {
		c->paused = false;
		uv_read_start(s, alloc_buffer, on_read);
	}
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	close_conn(req->handle);
}

/* uv_try_write first, as Node.js does: a reply the socket takes at once
 * needs no write request, and its buffer is free again at once; only what
 * it does not take is queued with uv_write. */
static void send_upper(uv_stream_t *s, char *base, size_t len)
{
	uv_buf_t buf = uv_buf_init(base, (unsigned)len);
	struct write_req *w;
	int n;

	ref_upper((unsigned char *)base, len);
	if (!s->write_queue_size) {
		n = uv_try_write(s, &buf, 1);
		if (n == (int)len) {
			release_buffer(base);
			return;
		}
		if (n > 0) {
			buf.base += n;
			buf.len -= (size_t)n;
		} else if (n != UV_EAGAIN) {
			release_buffer(base);
			close_conn(s);
			return;
		}
	}
	w = malloc(sizeof *w);
	if (!w) {
		release_buffer(base);
		close_conn(s);
		return;
	}
	w->base = base;
	w->buf = buf;
	if (uv_write(&w->req, s, &w->buf, 1, on_upper_written) < 0) {
		release_buffer(base);
		free(w);
		close_conn(s);
	}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = (struct conn *)s;

	if (n > 0) {
		send_upper(s, buf->base, (size_t)n);
		if (s->write_queue_size > MAX_QUEUED) {
			c->paused = true;
			uv_read_stop(s);
		}
		return;
	}
	release_buffer(buf->base);
	if (n == UV_EOF) {	/* deliver what is owed, then close */
		uv_read_stop(s);
		if (uv_shutdown(&c->shutdown, s, on_shutdown) < 0)
			close_conn(s);
	} else if (n < 0) {
		close_conn(s);
	}
}

static void on_stamp_written(uv_write_t *req, int status)
{
	(void)status;
	close_conn(req->handle);
}

static void start_stamp(struct conn *c)
{
	int len = snprintf(c->stamp, sizeof c->stamp, "%lld\r\n",
			   (long long)time(NULL));
	uv_buf_t buf = uv_buf_init(c->stamp, (unsigned)len);

	if (uv_write(&c->stamp_write, (uv_stream_t *)c, &buf, 1,
		     on_stamp_written) < 0)
		close_conn((uv_stream_t *)c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = (struct listener *)server;
	struct conn *c;

	if (status < 0 || !(c = calloc(1, sizeof *c)))
		return;
	uv_tcp_init(server->loop, &c->tcp);
	c->tcp.data = c;	/* marks the handles to free at exit */
	if (uv_accept(server, (uv_stream_t *)c) < 0) {
		close_conn((uv_stream_t *)c);
		return;
	}
	if (l->service == STAMP)
		start_stamp(c);
	else if (uv_read_start((uv_stream_t *)c, alloc_buffer, on_read) < 0)
		close_conn((uv_stream_t *)c);
}

/* "SERVICE=HOST:PORT" into l's service and addr; false if malformed. */
static bool parse_listen(const char *spec, struct listener *l,
			 struct sockaddr_storage *addr)
{
	char host[64];
	const char *eq = strchr(spec, '='), *colon = strrchr(spec, ':');
	size_t hlen;
	int port;

	if (!eq || !colon || colon < eq)
		return false;
	if (eq - spec == 5 && !strncmp(spec, "upper", 5))
		l->service = UPPER;
	else if (eq - spec == 5 && !strncmp(spec, "stamp", 5))
		l->service = STAMP;
	else
		return false;
	hlen = (size_t)(colon - eq - 1);
	if (hlen >= sizeof host || sscanf(colon + 1, "%d", &port) != 1 ||
	    port < 0 || port > 65535)
		return false;
	memcpy(host, eq + 1, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)addr) == 0;
	}
	return uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0;
}

static void start_listener(uv_loop_t *loop, struct listener *l,
			   const struct sockaddr_storage *addr)
{
	struct sockaddr_storage bound;
	int len = sizeof bound, err;
	char host[64];

	uv_tcp_init(loop, &l->tcp);
	if ((err = uv_tcp_bind(&l->tcp, (const struct sockaddr *)addr, 0)) < 0 ||
	    (err = uv_listen((uv_stream_t *)&l->tcp, BACKLOG, on_connection)) < 0 ||
	    (err = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len)) < 0)
		die("listen", err);
	if (bound.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof host);
	else
		uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof host);
	printf("listening %s %s %u\n", l->service == STAMP ? "stamp" : "upper",
	       host, ntohs(bound.ss_family == AF_INET6
			   ? ((struct sockaddr_in6 *)&bound)->sin6_port
			   : ((struct sockaddr_in *)&bound)->sin_port));
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
	(void)signum;
	uv_stop(sig->loop);
}

static void on_usr1(uv_signal_t *sig, int signum)
{
	(void)sig;
	(void)signum;
}

static void close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, h->data ? free_conn : NULL);
}

static int usage(void)
{
	fprintf(stderr, "usage: ref-libuv --listen {upper|stamp}=HOST:PORT...\n");
	return 2;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "listen", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 }
	};
	static struct listener listeners[MAX_LISTENERS];
	struct sockaddr_storage addr;
	static uv_signal_t term, intr, usr1;
	uv_loop_t *loop = uv_default_loop();
	int n = 0, opt;

	while ((opt = getopt_long(argc, argv, "l:", options, NULL)) != -1) {
		memset(&addr, 0, sizeof addr);
		if (opt != 'l' || n == MAX_LISTENERS ||
		    !parse_listen(optarg, &listeners[n], &addr))
			return usage();
		start_listener(loop, &listeners[n++], &addr);
	}
	if (n == 0 || optind < argc)
		return usage();
	fflush(stdout);
	uv_signal_init(loop, &term);
	uv_signal_init(loop, &intr);
	uv_signal_init(loop, &usr1);
	uv_signal_start(&term, on_stop_signal, SIGTERM);
	uv_signal_start(&intr, on_stop_signal, SIGINT);
	uv_signal_start(&usr1, on_usr1, SIGUSR1);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_walk(loop, close_handle, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	return uv_loop_close(loop) == 0 ? 0 : 1;
}
