/* activation.h -- systemd socket activation, read from the environment as
 * the published sd_listen_fds(3) protocol defines it, without libsystemd.
 *
 * When LISTEN_PID is this process's pid, LISTEN_FDS=N says descriptors 3
 * to 3+N-1 are listening sockets handed over by the service manager, and
 * LISTEN_FDNAMES their colon-separated names (FileDescriptorName=): muxd
 * reads each name as the service to run on that socket.
 */
#ifndef MUXD_ACTIVATION_H
#define MUXD_ACTIVATION_H

#include <stddef.h>

#include "base/net.h"

/* The first descriptor a service manager hands over (SD_LISTEN_FDS_START). */
#define ACTIVATION_FIRST_FD 3

/* The listeners muxd was handed, in *out (malloc'd, one per descriptor,
 * each made non-blocking and close-on-exec, with its bound address and
 * port). Returns how many, 0 when muxd was not socket-activated, or -1
 * with a usage message in err (NET_ERR_LEN bytes): a descriptor that is
 * not a listening TCP socket, or a name that is no service. LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES are removed from the environment in every
 * case, so that no child takes them for its own. */
int activation_listeners(struct listener **out, char *err);

/* For a server that takes no listeners (--inetd): close the descriptors
 * handed over, if any (a systemd Accept=yes service gets its connection
 * there as well as on standard input), and remove the variables. */
void activation_release(void);

#endif
