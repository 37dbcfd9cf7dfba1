/* thread.h -- starting a thread of muxd: the stop signals never reach it
 * (they go to the main thread, which passes them on), it counts --stats
 * where its creator does, and its stack is 256 KiB, not 8 MiB.
 */
#ifndef MUXD_THREAD_H
#define MUXD_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/* Detached or joinable. Returns 0 or an error number. */
int thread_start(pthread_t *tid, bool detached, void *(*fn)(void *), void *arg);

#endif
