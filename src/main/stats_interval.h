/* stats_interval.h -- --stats-interval: the live view of the --stats counters.
 *
 * A thread of muxd's main process wakes every interval, reads the
 * counters (shared by every process and thread, so the pools' workers
 * count too) and logs how fast each one moved since its last line:
 *   muxd: rates: interval=1.000 accepted=120 ... sys_read=240 ...
 * every value per second. Switching engines under the same load shows
 * the system-call mix change as it happens.
 */
#ifndef MUXD_STATS_INTERVAL_H
#define MUXD_STATS_INTERVAL_H

/* Start the thread (the counters must exist); it lives as long as the
 * process and takes no signal. Returns 0 or an error number. */
int stats_interval_start(double interval_seconds);

#endif
