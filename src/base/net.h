/* net.h -- listeners and accepted connections.
 *
 * Helpers report, main prints: every function that can fail fills `err`
 * (NET_ERR_LEN bytes) with a message naming the call and its arguments.
 */
#ifndef MUXD_NET_H
#define MUXD_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#define NET_ERR_LEN 256
/* "[" IPv6 "]:" port, or IPv4:port; NI_MAXHOST is needlessly large. */
#define NET_ADDR_LEN (INET6_ADDRSTRLEN + 8)

struct service;

struct listener {
	int fd;
	const struct service *service;
	struct sockaddr_storage addr;	/* resolved, then the bound address */
	socklen_t addr_len;
	char host_arg[256];		/* as given on the command line; "" = any */
	unsigned short port;		/* requested; the bound one after net_listen */
	bool same_port_as_previous;	/* another address of the same name */
};

/* Addresses served for one --listen HOST name, at most. */
#define NET_MAX_ADDRS 8

/* The syntax of "SERVICE=[HOST:]PORT" alone, HOST left unresolved: fills
 * l's service, host_arg ("" = every address) and port, and says whether
 * HOST was an [IPv6] literal. Returns 0, or -1 with a usage message. */
int net_split_listen(const char *spec, struct listener *l, bool *bracketed,
		     char *err);

/* Parse "SERVICE=[HOST:]PORT" and resolve HOST into listeners (service,
 * host, port, address): one per address of HOST, at most NET_MAX_ADDRS in
 * out. Returns how many, or -1 with a usage message in err. */
int net_parse_listen(const char *spec, struct listener *out, char *err);

/* Bind and listen (non-blocking, close-on-exec, SO_REUSEADDR, and
 * SO_REUSEPORT if asked) on l->addr; on success l->fd, l->addr and l->port
 * hold what the kernel chose. Returns 0, or -1 with the address and the
 * system's reason in err. */
int net_listen(struct listener *l, int backlog, bool reuseport, char *err);

/* --accept=reuseport: `copies` sets of the n listeners in base (bound
 * with SO_REUSEPORT), the first set base's own and the others opened here
 * on the same addresses, for the kernel to spread connections over.
 * Returns the n * copies listeners (free() them; close those past n), or
 * NULL with the reason in err and nothing left open. */
struct listener *net_listen_copies(const struct listener *base, size_t n,
				   unsigned copies, int backlog, char *err);

/* Close the n listeners' descriptors. */
void net_close_listeners(const struct listener *l, size_t n);

/* Whether the socket has SO_REUSEPORT set (false if it cannot be read). */
bool net_reuseport(int fd);

/* A TCP peer, IPv4 or IPv6: what a connection keeps of its address for
 * the -v log lines, 28 bytes where a sockaddr_storage takes 128. */
union net_peer {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Numeric address (no port) of an IPv4 or IPv6 socket address, for the
 * listening line. */
void net_format_host(const struct sockaddr *sa, char *out, size_t len);
/* "host:port", with IPv6 in brackets, for logs; "local" for a peer of
 * another family (an inetd connection over a Unix socket). */
void net_format_addr(const struct sockaddr *sa, char *out, size_t len);

/* accept4 with close-on-exec (and O_NONBLOCK when asked), retried on EINTR
 * and on the errors that belong to the connection rather than the
 * listener (ECONNABORTED, EPROTO, network errors). Returns the descriptor,
 * or -1 with errno: EAGAIN when nothing is pending, EMFILE/ENFILE/ENOBUFS/
 * ENOMEM when out of resources. */
int net_accept(int listen_fd, bool nonblocking, struct sockaddr_storage *peer);

/* For a connection given up on (idle, or the grace period over): if bytes
 * its client has not taken are still queued, make close() reset it
 * (SO_LINGER 0), or they would keep kernel memory, and the client would
 * never see the close, for as long as it does not read. A connection with
 * nothing queued gets the ordinary FIN. */
void net_reset_if_stuck(int fd);

/* Errors accept(2) reports for a connection that already failed; the
 * listener is fine and the next connection may be waiting. */
bool net_connection_error(int err);

/* True for the accept errors that mean "out of descriptors or memory". */
bool net_out_of_resources(int err);

#endif
