/* tracefile.h -- what a muxd --trace file says, read with json.c: the
 * checks every trace must pass, and the sums the tests compare with
 * --stats and with the engine's tags. */
#ifndef MUXD_TEST_TRACEFILE_H
#define MUXD_TEST_TRACEFILE_H

#include <stdbool.h>
#include <stddef.h>

#define TRACE_MAX_TRACKS 4096

struct trace_track {
	int pid, tid;
	char name[64];		/* its thread_name, or "" */
	unsigned long events;	/* X and i events on it */
};

struct trace_summary {
	unsigned long events;		/* in traceEvents, all phases */
	unsigned long spans;		/* "X" */
	unsigned long bad_spans;	/* a duration missing or below 0 */
	unsigned long bad_events;	/* no name, ph, pid, tid or ts */
	unsigned long accepts, closes, reads, writes, forks, thread_starts,
		      hand_overs, takes, waits;
	unsigned long long bytes_in, bytes_out;	/* "read" and "write" args */
	unsigned long counters;		/* "C" */
	unsigned long long counter_accepted;	/* the last "connections accepted" */
	unsigned long drop_markers;	/* "trace events dropped" */
	unsigned long long dropped_in_markers;
	unsigned long long dropped;	/* otherData.dropped_events, or -1 */
	int main_pid;			/* the pid of the "main" thread */
	size_t n_tracks;
	struct trace_track tracks[TRACE_MAX_TRACKS];
	size_t n_processes;		/* distinct pids with a track */
	char engine[64];		/* otherData.engine */
};

/* Read and check path. Returns 0, or -1 with the reason in why (not valid
 * JSON, not the trace-event object, ...). The summary is on the heap
 * (it is large): free() it. */
int trace_read(const char *path, struct trace_summary **out, char *why,
	       size_t why_size);

/* Tracks whose name begins with prefix. */
size_t trace_tracks_named(const struct trace_summary *s, const char *prefix);

#endif
