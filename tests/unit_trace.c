/* unit_trace.c -- the trace machinery (src/base/trace.c, trace_write.c)
 * without a server: threads and child processes record known events,
 * and the file must be valid JSON (tests/json.c, a strict parser) with
 * each of them in it, on the right track, once.
 *
 * The main thread, WORKERS named threads and CHILDREN forked processes
 * record what they are told; one thread records past the limit, and its
 * surplus must be counted as dropped, on its track and in all. Threads
 * record on while SIGUSR1's snapshot is written: every snapshot must be
 * a whole, valid trace too. The JSON parser is checked first on text it
 * must refuse, so that "valid" means something.
 */
#include "base/trace.h"
#include "json.h"
#include "tap.h"
#include "tracefile.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIMIT 1000
#define WORKERS 4
#define PER_WORKER 500		/* reads of 1 byte each */
#define OVER 1500		/* the thread past the limit: LIMIT kept */
#define CHILDREN 3
#define PER_CHILD 20		/* writes of 10 bytes each */
#define MAIN_READS 10		/* of 100 bytes each */

static void check_parser(void)
{
	static const char *const bad[] = {
		"", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "\"open",
		"01", "1.", "-", "[\"\x01\"]", "{} {}", "tru", "[\"\\x\"]",
	};
	static const char good[] =
		" {\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\\n\"],\"b\":{}} ";
	char err[128];
	struct json *v;
	int refused = 0;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = json_parse(bad[i], strlen(bad[i]), err, sizeof err);
		refused += v == NULL;
		json_free(v);
	}
	is_int(refused, sizeof bad / sizeof bad[0],
	       "the test's JSON parser refuses every malformed text");
	v = json_parse(good, sizeof good - 1, err, sizeof err);
	ok(v && json_get(v, "a") && json_get(v, "a")->n == 6 &&
	   json_number(&json_get(v, "a")->items[1], 0) == -2500,
	   "... and reads a well-formed one");
	json_free(v);
}

/* Paced, so that the main thread's snapshots are written meanwhile. */
static void *worker(void *arg)
{
	long i = (long)arg;

	trace_name_thread("worker %ld", i);
	for (int k = 0; k < PER_WORKER; k++) {
		trace_io(TRACE_READ, 100 + (int)i, 1);
		if (k % 25 == 0)
			usleep(1000);
	}
	return NULL;
}

static void *over_limit(void *arg)
{
	(void)arg;
	trace_name_thread("over the limit");
	for (int k = 0; k < OVER; k++)
		trace_event(TRACE_CLOSE, k, 0, 0);
	return NULL;
}

static void fork_children(void)
{
	int reaped = 0;

	for (int i = 0; i < CHILDREN; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			trace_forked("child %d", i);
			for (int k = 0; k < PER_CHILD; k++)
				trace_io(TRACE_WRITE, 7, 10);
			trace_child_exit();
			_exit(0);
		}
		if (pid > 0)
			trace_event(TRACE_FORK, -1, (uint64_t)pid, 0);
	}
	while (wait(NULL) > 0)
		reaped++;
	is_int(reaped, CHILDREN, "%d children forked and reaped", CHILDREN);
}

/* Spans of each wait, and a hand-over joined to its take. */
static void main_events(void)
{
	int sv[2];

	for (int k = 0; k < MAIN_READS; k++)
		trace_io(TRACE_READ, 5, 100);
	for (int kind = TRACE_EPOLL_WAIT; kind <= TRACE_RUN; kind++)
		trace_wait((enum trace_kind)kind, trace_begin(), -1, 1);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		trace_hand_over(trace_begin(), sv[0], 1);
		trace_take(trace_begin(), sv[0]);
		close(sv[0]);
		close(sv[1]);
	}
}

static struct trace_summary *read_back(const char *path, const char *what)
{
	struct trace_summary *s;
	char why[256];

	if (!ok(trace_read(path, &s, why, sizeof why) == 0,
		"%s: valid JSON, a trace-event object", what))
		diag("%s", why);
	return s;
}

static void check_final(const struct trace_summary *s)
{
	ok(s->bad_events == 0 && s->bad_spans == 0,
	   "every event has its fields, every span ends after it begins");
	is_int((long long)s->n_tracks, 1 + WORKERS + 1 + CHILDREN,
	       "a track for the main thread, each thread and each child");
	is_int((long long)s->n_processes, 1 + CHILDREN,
	       "the children are processes of their own");
	is_int((long long)trace_tracks_named(s, "worker "), WORKERS,
	       "threads carry their names");
	is_int((long long)trace_tracks_named(s, "child "), CHILDREN,
	       "children carry theirs");
	/* And the blocking read's span of main_events(), with its 1 byte. */
	is_int((long long)s->bytes_in, MAIN_READS * 100 + WORKERS * PER_WORKER + 1,
	       "every read's bytes are there once");
	is_int((long long)s->bytes_out, CHILDREN * PER_CHILD * 10,
	       "every child's writes are there once");
	is_int((long long)s->closes, LIMIT,
	       "the thread past the limit kept --trace-limit events");
	is_int((long long)s->dropped, OVER - LIMIT,
	       "the events past the limit are counted as dropped");
	ok(s->drop_markers == 1 && s->dropped_in_markers == OVER - LIMIT,
	   "... on the track that dropped them");
	ok(s->hand_overs == 1 && s->takes == 1 && s->forks == CHILDREN,
	   "hand-over, take and forks recorded");
	is_int((long long)s->waits, TRACE_RUN - TRACE_EPOLL_WAIT,
	       "a span for each kind of wait");
}

int main(void)
{
	char dir[] = "/tmp/unit_trace.XXXXXX", path[64], err[TRACE_ERR_LEN];
	pthread_t t[WORKERS + 1];
	struct trace_summary *s;

	check_parser();
	if (!mkdtemp(dir))
		bail_out("mkdtemp: cannot make a directory for the trace");
	snprintf(path, sizeof path, "%s/trace.json", dir);
	if (trace_init(path, LIMIT, "unit", true, err) < 0)
		bail_out("%s", err);
	fork_children();
	for (long i = 0; i < WORKERS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	pthread_create(&t[WORKERS], NULL, over_limit, NULL);
	main_events();
	for (int k = 0; k < 3; k++) {
		ok(trace_snapshot(err) == 0, "snapshot %d written", k + 1);
		free(read_back(path, "a snapshot taken while threads record"));
	}
	for (int i = 0; i <= WORKERS; i++)
		pthread_join(t[i], NULL);
	ok(trace_finish(err) == 0, "the trace is written at the end");
	s = read_back(path, "the final trace");
	check_final(s);
	free(s);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
