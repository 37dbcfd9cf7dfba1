/* pool.c -- what only the pool engines promise (prefork, prefork-dynamic,
 * pthread-pool), beyond the conformance matrix they share with the others.
 *
 * usage: pool
 *
 * The pools are watched from outside, through /proc: a process pool's
 * workers are the children of muxd, a thread pool's threads are the tasks
 * of its process. Every wait is bounded and scaled by
 * MUXD_TEST_TIMEOUT_MULT (harness.c), so a server that hangs fails a case
 * instead of the run.
 *
 * A child is a zombie for a moment between its exit and its parent's
 * waitpid(); what must never happen is one left unreaped. A zombie seen
 * in a sample therefore fails only once it has been one for longer than
 * ZOMBIE_MS.
 */
#include "harness.h"
#include "tap.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_HELD 32
#define SAMPLE_MS 20		/* between two looks at the pool */
/* Longest a worker may wait to be reaped: a parent on a loaded machine
 * may be scheduled late, one that never reaps leaves it for good. */
#define ZOMBIE_MS 2000
/* Waits for what must happen at some point (a worker replaced, a client
 * served): only a hung server takes this long, so it is never the bound
 * a case asserts. */
#define SAFETY_MS 30000

static const char *const strategies[] = {
	"plain", "flock", "mutex", "handoff", "reuseport", NULL,
};

/* ---- the pool as /proc shows it ---- */

/* Both records hold up to MAX_KIDS pids, too much for the stack: every
 * one lives in static storage (this test runs one case at a time). */

/* Zombies seen so far, and for how long the oldest one lasted. */
struct zombie_watch {
	pid_t pid[MAX_KIDS];
	long long since[MAX_KIDS];
	int n;
	int sightings;		/* samples that caught any zombie */
	long long worst_ms;	/* the longest one lasted, so far */
	pid_t worst_pid;
};

struct census {
	pid_t live[MAX_KIDS];	/* children of muxd that are not zombies */
	int n;
	int zombies;
};

static void watch_zombies(struct zombie_watch *zw, const pid_t *zombies, int n)
{
	long long now = now_ms();
	int kept = 0;

	if (n > 0)
		zw->sightings++;
	/* Forget the ones reaped since; age the others. */
	for (int i = 0; i < zw->n; i++) {
		bool still = false;

		for (int j = 0; j < n; j++)
			still |= zombies[j] == zw->pid[i];
		if (!still)
			continue;
		zw->pid[kept] = zw->pid[i];
		zw->since[kept++] = zw->since[i];
	}
	zw->n = kept;
	for (int j = 0; j < n; j++) {
		bool known = false;

		for (int i = 0; i < zw->n; i++)
			known |= zw->pid[i] == zombies[j];
		if (!known && zw->n < MAX_KIDS) {
			zw->pid[zw->n] = zombies[j];
			zw->since[zw->n++] = now;
		}
	}
	for (int i = 0; i < zw->n; i++) {
		if (now - zw->since[i] > zw->worst_ms) {
			zw->worst_ms = now - zw->since[i];
			zw->worst_pid = zw->pid[i];
		}
	}
}

/* One look at muxd's children; zw (may be NULL) keeps the zombie record. */
static void take_census(pid_t server, struct census *c, struct zombie_watch *zw)
{
	static pid_t kids[MAX_KIDS], zombies[MAX_KIDS];
	int n = proc_children(server, kids, MAX_KIDS);

	c->n = c->zombies = 0;
	for (int i = 0; i < n; i++) {
		char state = proc_state(kids[i]);

		if (state == 'Z')
			zombies[c->zombies++] = kids[i];
		else if (state)
			c->live[c->n++] = kids[i];
	}
	if (zw)
		watch_zombies(zw, zombies, c->zombies);
}

static bool has_pid(const pid_t *set, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return true;
	return false;
}

static bool ok_zombies(const struct zombie_watch *zw, const char *label)
{
	bool passed = zw->worst_ms <= scaled_ms(ZOMBIE_MS);

	if (!ok(passed, "%s: no zombie child at any sample (none unreaped > %d ms)",
		label, ZOMBIE_MS))
		diag("pid %d was a zombie for %lld ms", (int)zw->worst_pid, zw->worst_ms);
	else if (zw->sightings)
		diag("%s: %d sample(s) caught a worker between exit and reaping, "
		     "longest %lld ms", label, zw->sightings, zw->worst_ms);
	return passed;
}

static void diag_pids(const char *what, const pid_t *pids, int n)
{
	char line[1024];
	size_t used = 0;

	line[0] = '\0';
	for (int i = 0; i < n && used < sizeof line - 16; i++)
		used += (size_t)snprintf(line + used, sizeof line - used, " %d",
					 (int)pids[i]);
	diag("%s (%d):%s", what, n, line);
}

/* ---- starting servers ---- */

/* muxd --engine ENGINE OPTIONS... --listen SERVICE=127.0.0.1:0 */
static int start(struct muxd_server *srv, const char *engine,
		 const char *service, const char *const options[])
{
	const char *const services[] = { service, NULL };

	return muxd_start_engine(srv, engine, NULL, options, services);
}

static void stop(struct muxd_server *srv, const char *label)
{
	char why[64];

	if (muxd_stop(srv, 8000) != 0 || exit_code_of(srv->wait_status) != 0)
		diag("%s: muxd ended with %s", label,
		     describe_status(srv->wait_status, why, sizeof why));
}

/* ---- clients ---- */

/* Each of fds[0..n) has sent one byte to upper: wait (up to timeout_ms,
 * scaled) until every one has its upper-cased byte back. got[i] says which
 * did; census samples go to server/zw/max_seen when server > 0. Returns
 * how many were answered. */
static int await_echoes(int *fds, int n, char sent, bool *got,
			long timeout_ms, pid_t server, struct zombie_watch *zw,
			int *max_seen)
{
	long long deadline = now_ms() + scaled_ms(timeout_ms);
	char want = sent >= 'a' && sent <= 'z' ? (char)(sent - 'a' + 'A') : sent;
	int answered = 0;

	for (int i = 0; i < n; i++)
		got[i] = false;
	while (answered < n && now_ms() < deadline) {
		struct pollfd p[MAX_HELD];
		int map[MAX_HELD], np = 0;

		for (int i = 0; i < n; i++) {
			if (got[i] || fds[i] == -1)
				continue;
			map[np] = i;
			p[np++] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		}
		if (np == 0)
			break;
		if (poll(p, (nfds_t)np, SAMPLE_MS) > 0) {
			for (int k = 0; k < np; k++) {
				char c;

				if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				if (recv(fds[map[k]], &c, 1, MSG_DONTWAIT) == 1 && c == want) {
					got[map[k]] = true;
					answered++;
				} else {
					/* EOF, error or a wrong byte: not served. */
					close(fds[map[k]]);
					fds[map[k]] = -1;
				}
			}
		}
		if (server > 0) {
			static struct census c;

			take_census(server, &c, zw);
			if (max_seen && c.n > *max_seen)
				*max_seen = c.n;
		}
	}
	return answered;
}

/* ---- a. prefork: a fixed number of workers, supervised ---- */

static void case_prefork_supervision(const char *strategy)
{
	char accept[32], label[64], why[256] = "";
	const char *const options[] = { "--workers", "4", accept, NULL };
	static struct zombie_watch zw;
	static struct census first, c;
	struct muxd_server srv;
	long long start_at, deadline;
	pid_t victim;
	bool replaced = false;
	int fd;

	memset(&zw, 0, sizeof zw);
	c.n = 0;
	snprintf(accept, sizeof accept, "--accept=%s", strategy);
	snprintf(label, sizeof label, "prefork --workers 4 %s", accept);
	if (start(&srv, "prefork", "upper", options) != 0) {
		ok(false, "%s: starts", label);
		skip(3, "no server");
		return;
	}
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	do {
		take_census(srv.pid, &first, &zw);
		if (first.n == 4)
			break;
		sleep_ms(SAMPLE_MS);
	} while (now_ms() < deadline);
	if (!ok(first.n == 4, "%s: exactly 4 worker children", label)) {
		diag_pids("children of muxd", first.live, first.n);
		stop(&srv, label);
		skip(3, "no pool of 4 to watch");
		return;
	}
	victim = first.live[first.n / 2];
	kill(victim, SIGKILL);
	start_at = now_ms();
	deadline = start_at + scaled_ms(SAFETY_MS);
	do {
		bool fresh = false;

		sleep_ms(SAMPLE_MS);
		take_census(srv.pid, &c, &zw);
		for (int i = 0; i < c.n; i++)
			fresh |= !has_pid(first.live, first.n, c.live[i]);
		replaced = c.n == 4 && !has_pid(c.live, c.n, victim) && fresh;
	} while (!replaced && now_ms() < deadline);
	if (ok(replaced, "%s: a worker killed with SIGKILL is replaced by a new one",
	       label)) {
		diag("%s: replaced after %lld ms", label, now_ms() - start_at);
	} else {
		diag("killed pid %d", (int)victim);
		diag_pids("workers before", first.live, first.n);
		diag_pids("workers at the end", c.live, c.n);
	}
	fd = served_connection(muxd_port(&srv, "upper"), SAFETY_MS, why, sizeof why);
	if (!ok(fd != -1, "%s: a client is served after the replacement", label))
		diag("%s", why);
	if (fd != -1)
		close(fd);
	take_census(srv.pid, &c, &zw);
	ok_zombies(&zw, label);
	stop(&srv, label);
}

/* ---- b. prefork-dynamic: the pool breathes between its bounds ---- */

/* How the pool moves is proved from muxd's -v log, which has a line for
 * each maintenance step ("pool: 19 idle, 0 busy: retiring 4, now 15
 * workers"), not from how soon a busy machine lets the steps run: the
 * deadlines of this case only keep a hung server from hanging the run. */
#define DYN_HELD 20
#define DYN_WORKERS 32
#define DYN_MAX_SPARE 6
#define DYN_RATE_MAX 32		/* the most one step starts or retires */
#define DYN_MAX_STEPS 4096

struct pool_step {
	char action[16];	/* "starting", "retiring" or "topping up" */
	unsigned idle, busy, n, size;
};

/* muxd's pool lines, read as the log grows. */
struct pool_log {
	FILE *file;
	long read_to;		/* the end of the last whole line read */
	int n;
	struct pool_step step[DYN_MAX_STEPS];
};

/* The shrink as the retiring steps tell it. */
struct shrink {
	int done;		/* the step that left --max-spare idle, or -1 */
	unsigned steps, largest;
	char why[128];		/* the step that went too far, if one did */
};

static bool parse_pool_step(const char *line, struct pool_step *s)
{
	const char *at = strstr(line, "muxd: pool: ");
	char action[32];
	size_t len;

	if (!at || sscanf(at, "muxd: pool: %u idle, %u busy: %31[a-z ] %u, now %u workers",
		   &s->idle, &s->busy, action, &s->n, &s->size) != 5)
		return false;
	len = strlen(action);
	while (len > 0 && action[len - 1] == ' ')
		action[--len] = '\0';
	snprintf(s->action, sizeof s->action, "%s", action);
	return true;
}

/* Add the pool lines muxd has logged since the last call; a line still
 * being written is left for the next. */
static void read_pool_log(struct pool_log *pl)
{
	char line[512];

	fflush(pl->file);
	fseek(pl->file, pl->read_to, SEEK_SET);
	while (pl->n < DYN_MAX_STEPS && fgets(line, sizeof line, pl->file) &&
	       strchr(line, '\n')) {
		pl->n += parse_pool_step(line, &pl->step[pl->n]);
		pl->read_to = ftell(pl->file);
	}
}

/* Follows the retiring steps from steps[from] on. Each may retire at most
 * its rate, 1 at the first and doubling at each step after it, and never
 * so many that fewer than --max-spare stay idle; it may retire fewer (a
 * worker went busy, or with --accept=handoff one may have a client on its
 * way). A step without surplus resets the rate, which only lowers it. */
static bool follow_shrink(const struct pool_log *pl, int from, struct shrink *sh)
{
	unsigned rate = 1;

	*sh = (struct shrink){ .done = -1 };
	for (int i = from; i < pl->n && sh->done < 0; i++) {
		const struct pool_step *s = &pl->step[i];
		unsigned surplus, most;

		if (strcmp(s->action, "retiring") != 0)
			continue;
		sh->steps++;
		surplus = s->idle > DYN_MAX_SPARE ? s->idle - DYN_MAX_SPARE : 0;
		most = rate < surplus ? rate : surplus;
		if (s->n > most || surplus == 0) {
			snprintf(sh->why, sizeof sh->why, "step %u: %u idle, "
				 "retired %u, at most %u", sh->steps, s->idle,
				 s->n, most);
			return false;
		}
		sh->largest = s->n > sh->largest ? s->n : sh->largest;
		rate = rate * 2 > DYN_RATE_MAX ? DYN_RATE_MAX : rate * 2;
		if (s->idle - s->n <= DYN_MAX_SPARE)
			sh->done = i;
	}
	return true;
}

static void diag_pool_log(const struct pool_log *pl, int from)
{
	for (int i = from; i < pl->n; i++) {
		const struct pool_step *s = &pl->step[i];

		diag("pool: %u idle, %u busy: %s %u, now %u workers", s->idle,
		     s->busy, s->action, s->n, s->size);
	}
}

/* With no client, the pool settles within [2, 6] workers and stays there
 * over more than one maintenance step. */
static void dyn_settles(pid_t server, struct zombie_watch *zw, const char *label)
{
	static struct census c;
	long long deadline = now_ms() + scaled_ms(SAFETY_MS);
	int lo = MAX_KIDS, hi = 0;
	bool settled;

	do {
		take_census(server, &c, zw);
		settled = c.n >= 2 && c.n <= DYN_MAX_SPARE;
		if (!settled)
			sleep_ms(SAMPLE_MS);
	} while (!settled && now_ms() < deadline);
	deadline = now_ms() + 1200;
	while (settled && now_ms() < deadline) {
		sleep_ms(SAMPLE_MS);
		take_census(server, &c, zw);
		lo = c.n < lo ? c.n : lo;
		hi = c.n > hi ? c.n : hi;
		settled = c.n >= 2 && c.n <= DYN_MAX_SPARE;
	}
	if (!ok(settled, "%s: with no client, the idle pool settles within [2, 6] "
		"workers and stays there", label))
		diag_pids("workers", c.live, c.n);
	else
		diag("idle pool: %d to %d workers over 1.2 s", lo, hi);
}

/* 20 held clients, each really served (one byte there and back), make the
 * pool grow to 20 busy and at least 2 spare, never beyond --workers. */
static void dyn_grows(pid_t server, unsigned short port, int *fds,
		      struct pool_log *pl, struct zombie_watch *zw, const char *label)
{
	static struct census c;
	long long start_at = now_ms(), deadline;
	int answered, max_seen = 0;
	unsigned logged_max = 0;
	bool got[DYN_HELD], grown = false;

	for (int i = 0; i < DYN_HELD; i++) {
		fds[i] = tcp_connect(port);
		if (fds[i] == -1 || write_all(fds[i], "h", 1, 1000) != 1) {
			diag("client %d: %s", i, strerror(errno));
			if (fds[i] != -1)
				close(fds[i]);
			fds[i] = -1;
		}
	}
	answered = await_echoes(fds, DYN_HELD, 'h', got, SAFETY_MS, server, zw,
				&max_seen);
	if (!ok(answered == DYN_HELD, "%s: 20 held clients are all served", label))
		diag("%d of 20 answered", answered);
	else
		diag("all 20 served after %lld ms", now_ms() - start_at);

	deadline = now_ms() + scaled_ms(SAFETY_MS);
	do {
		take_census(server, &c, zw);
		max_seen = c.n > max_seen ? c.n : max_seen;
		grown = c.n >= DYN_HELD + 2;
		if (!grown)
			sleep_ms(SAMPLE_MS);
	} while (!grown && now_ms() < deadline);
	if (!ok(grown, "%s: with 20 busy, the pool grows to at least 22 workers", label))
		diag("%d workers after %lld ms", c.n, now_ms() - start_at);
	else
		diag("22 or more workers after %lld ms", now_ms() - start_at);

	/* Another full step: growth must stop at --workers. */
	deadline = now_ms() + 1200;
	while (now_ms() < deadline) {
		sleep_ms(SAMPLE_MS);
		take_census(server, &c, zw);
		max_seen = c.n > max_seen ? c.n : max_seen;
	}
	read_pool_log(pl);
	for (int i = 0; i < pl->n; i++)
		if (pl->step[i].size > logged_max)
			logged_max = pl->step[i].size;
	if (!ok(max_seen <= DYN_WORKERS && logged_max <= DYN_WORKERS,
		"%s: never more than 32 workers", label))
		diag("%d workers seen at once, %u logged", max_seen, logged_max);
	else
		diag("at most %d workers seen, %u logged", max_seen, logged_max);

	/* Shrinking never cuts a busy worker's client off. */
	for (int i = 0; i < DYN_HELD; i++)
		if (fds[i] != -1 && write_all(fds[i], "k", 1, 1000) != 1) {
			close(fds[i]);
			fds[i] = -1;
		}
	answered = await_echoes(fds, DYN_HELD, 'k', got, SAFETY_MS, server, zw,
				NULL);
	if (!ok(answered == DYN_HELD, "%s: the 20 held clients are still served once "
		"the pool has grown", label))
		diag("%d of 20 answered", answered);
}

/* New clients one after another until the log shows the pool back at
 * --max-spare idle workers: a worker retired with a socket on its way to
 * it would drop one of them. */
static void dyn_shrinks(pid_t server, unsigned short port, struct pool_log *pl,
			struct zombie_watch *zw, const char *label)
{
	static struct census c;
	int from = pl->n;
	long long start_at = now_ms(), deadline = start_at + scaled_ms(SAFETY_MS);
	struct shrink sh = { .done = -1 };
	int churned = 0, dropped = 0;
	bool sane = true, shrunk;
	char why[256] = "";

	do {
		long long sample_at = now_ms() + SAMPLE_MS;

		while (now_ms() < sample_at) {
			int fd = served_connection(port, SAFETY_MS, why, sizeof why);

			churned++;
			if (fd == -1)
				dropped++;
			else
				close(fd);
		}
		take_census(server, &c, zw);
		read_pool_log(pl);
		sane = follow_shrink(pl, from, &sh);
	} while (sane && sh.done < 0 && now_ms() < deadline);
	diag("%d clients while the pool shrank, %lld ms", churned, now_ms() - start_at);
	if (!ok(dropped == 0, "%s: while the pool shrinks, every new client is served",
		label))
		diag("%d of %d not served; the last: %s", dropped, churned, why);
	if (!ok(sane, "%s: each step retires at most 1, 2, 4, ... idle workers and "
		"never leaves fewer than 6 idle", label)) {
		diag("%s", sh.why);
		diag_pool_log(pl, from);
	}
	if (!ok(sh.done >= 0 && sh.largest > 1, "%s: once the clients leave, steps "
		"retiring more at each step bring the pool back to 6 idle", label))
		diag_pool_log(pl, from);
	else
		diag("back to 6 idle in %u steps, the largest retiring %u", sh.steps,
		     sh.largest);

	/* With no client left, the retired workers are gone. */
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	do {
		take_census(server, &c, zw);
		shrunk = c.n <= DYN_MAX_SPARE;
		if (!shrunk)
			sleep_ms(SAMPLE_MS);
	} while (!shrunk && now_ms() < deadline);
	if (!ok(shrunk, "%s: with no client, back to 6 workers or fewer", label))
		diag_pids("workers", c.live, c.n);
}

static void case_dynamic_breathes(void)
{
	const char *const options[] = {
		"--verbose", "--workers", "32", "--min-spare", "2", "--max-spare", "6",
		NULL,
	};
	const char *const services[] = { "upper", NULL };
	const char *label = "prefork-dynamic --workers 32 --min-spare 2 --max-spare 6";
	static struct pool_log pl;
	static struct zombie_watch zw;
	struct muxd_server srv;
	int fds[DYN_HELD];
	unsigned short port;

	memset(&zw, 0, sizeof zw);
	pl = (struct pool_log){ .file = tmpfile() };
	if (!pl.file)
		bail_out("tmpfile: %s", strerror(errno));
	if (muxd_start_engine_logged(&srv, "prefork-dynamic", NULL, options,
				     services, pl.file) != 0) {
		ok(false, "%s: starts", label);
		skip(9, "no server");
		fclose(pl.file);
		return;
	}
	port = muxd_port(&srv, "upper");
	dyn_settles(srv.pid, &zw, label);
	dyn_grows(srv.pid, port, fds, &pl, &zw, label);
	read_pool_log(&pl);
	close_all(fds, DYN_HELD);
	dyn_shrinks(srv.pid, port, &pl, &zw, label);
	if (!served_again(port))
		diag("%s: not served after shrinking", label);
	ok_zombies(&zw, label);
	stop(&srv, label);
	fclose(pl.file);
}

/* ---- c. --max-requests-per-worker recycles workers ---- */

static bool stamp_served(unsigned short port, long timeout_ms, char *why,
			 size_t why_size)
{
	char buf[64];
	enum read_end end;
	size_t n = 0, digits;
	int fd = tcp_connect(port);

	if (fd == -1) {
		snprintf(why, why_size, "connect: %s", strerror(errno));
		return false;
	}
	n = read_until_eof(fd, buf, sizeof buf - 1, timeout_ms, &end);
	close(fd);
	buf[n] = '\0';
	digits = strspn(buf, "0123456789");
	if (end == READ_EOF && digits > 0 && n == digits + 2 &&
	    strcmp(buf + digits, "\r\n") == 0)
		return true;
	snprintf(why, why_size, "%zu bytes, then %s", n, describe_read_end(end));
	return false;
}

static void case_max_requests(void)
{
	const char *const options[] = {
		"--max-requests-per-worker", "3", "--workers", "4",
		"--min-spare", "1", "--max-spare", "2", NULL,
	};
	const char *label = "prefork-dynamic --max-requests-per-worker 3";
	static struct zombie_watch zw;
	static struct census first, c;
	static pid_t seen[MAX_KIDS];
	struct muxd_server srv;
	int served = 0, nseen = 0, gone = 0;
	char why[256] = "";
	unsigned short port;
	long long start_at = now_ms(), deadline;

	memset(&zw, 0, sizeof zw);
	c.n = 0;

	if (start(&srv, "prefork-dynamic", "stamp", options) != 0) {
		ok(false, "%s: starts", label);
		skip(3, "no server");
		return;
	}
	port = muxd_port(&srv, "stamp");
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	do {
		take_census(srv.pid, &first, &zw);
		if (first.n == 0)
			sleep_ms(SAMPLE_MS);
	} while (first.n == 0 && now_ms() < deadline);
	diag_pids("workers at start", first.live, first.n);
	for (int i = 0; i < 10; i++) {
		if (stamp_served(port, 5000, why, sizeof why))
			served++;
		else
			diag("stamp %d: %s", i + 1, why);
		take_census(srv.pid, &c, &zw);
		for (int k = 0; k < c.n && nseen < MAX_KIDS; k++)
			if (!has_pid(seen, nseen, c.live[k]))
				seen[nseen++] = c.live[k];
	}
	for (int i = 0; i < first.n; i++)
		gone += !has_pid(c.live, c.n, first.live[i]);
	if (!ok(served == 10, "%s: 10 sequential stamp clients are served", label))
		diag("%d of 10 served", served);
	diag("10 stamps took %lld ms", now_ms() - start_at);
	if (!ok(first.n > 0 && gone > 0,
		"%s: after 10 connections a worker was recycled (the pid set changed)",
		label)) {
		diag_pids("workers at start", first.live, first.n);
		diag_pids("workers now", c.live, c.n);
	}
	diag_pids("every worker pid seen", seen, nseen);
	if (!ok(stamp_served(port, 5000, why, sizeof why),
		"%s: service continues after the recycling", label))
		diag("%s", why);
	take_census(srv.pid, &c, &zw);
	ok_zombies(&zw, label);
	stop(&srv, label);
}

/* ---- d. pthread-pool: a fixed pool of threads ---- */

#define TP_WORKERS 6

static void case_thread_pool(const char *strategy)
{
	char accept[32], label[64], extra;
	const char *const options[] = { "--workers", "6", accept, NULL };
	struct muxd_server srv;
	int fds[TP_WORKERS], threads = -1, answered, seventh;
	bool got[TP_WORKERS], early = false, seventh_served;
	long long deadline;
	unsigned short port;

	snprintf(accept, sizeof accept, "--accept=%s", strategy);
	snprintf(label, sizeof label, "pthread-pool --workers 6 %s", accept);
	if (start(&srv, "pthread-pool", "upper", options) != 0) {
		ok(false, "%s: starts", label);
		skip(2, "no server");
		return;
	}
	port = muxd_port(&srv, "upper");
	deadline = now_ms() + scaled_ms(SAFETY_MS);
	do {
		threads = proc_thread_count(srv.pid);
		if (threads < TP_WORKERS + 1)
			sleep_ms(SAMPLE_MS);
	} while (threads < TP_WORKERS + 1 && now_ms() < deadline);
	if (!ok(threads >= TP_WORKERS + 1, "%s: at least 6 + 1 threads once started",
		label))
		diag("%d threads", threads);
	else
		diag("%s: %d threads", label, threads);

	for (int i = 0; i < TP_WORKERS; i++)
		fds[i] = tcp_connect(port);
	for (int i = 0; i < TP_WORKERS; i++)
		if (fds[i] != -1 && write_all(fds[i], "p", 1, 1000) != 1) {
			close(fds[i]);
			fds[i] = -1;
		}
	answered = await_echoes(fds, TP_WORKERS, 'p', got, SAFETY_MS, 0, NULL, NULL);
	if (!ok(answered == TP_WORKERS, "%s: 6 concurrent clients are all served "
		"while all 6 stay open", label))
		diag("%d of 6 answered", answered);

	/* A 7th: served once a thread is free (it may wait until then). */
	seventh = tcp_connect(port);
	if (seventh != -1 && write_all(seventh, "s", 1, 1000) == 1) {
		struct pollfd p = { .fd = seventh, .events = POLLIN };

		early = poll(&p, 1, 300) > 0;
	}
	diag("%s: the 7th client was %s while 6 were held", label,
	     early ? "answered" : "not answered (it waits for a free thread)");
	threads = proc_thread_count(srv.pid);
	if (fds[0] != -1)
		close(fds[0]);
	fds[0] = -1;
	seventh_served = seventh != -1 &&
			 await_echoes(&seventh, 1, 's', got, SAFETY_MS, 0, NULL, NULL) == 1;
	if (!ok(seventh_served, "%s: a 7th client is served once one of the 6 closes",
		label))
		diag("%s", seventh == -1 ? strerror(errno) : "no echo");
	if (seventh_served && recv(seventh, &extra, 1, MSG_DONTWAIT) > 0)
		diag("the 7th client got more than its one byte back");
	diag("%s: %d threads with 7 clients", label, threads);
	if (seventh != -1)
		close(seventh);
	close_all(fds, TP_WORKERS);
	stop(&srv, label);
}

/* ---- e. --max-conns counts across the whole pool ---- */

#define MC_HELD 3

static void case_max_conns(const char *engine)
{
	const char *const options[] = { "--workers", "8", "--max-conns", "3", NULL };
	char label[64], why[256] = "";
	struct muxd_server srv;
	int fds[MC_HELD], held = 0;
	unsigned short port;

	snprintf(label, sizeof label, "%s --workers 8 --max-conns 3", engine);
	if (start(&srv, engine, "upper", options) != 0) {
		ok(false, "%s: starts", label);
		skip(2, "no server");
		return;
	}
	port = muxd_port(&srv, "upper");
	for (int i = 0; i < MC_HELD; i++) {
		fds[i] = served_connection(port, SAFETY_MS, why, sizeof why);
		if (fds[i] != -1)
			held++;
		else
			diag("held client %d: %s", i + 1, why);
	}
	ok(held == MC_HELD, "%s: 3 held connections are served", label);
	if (!ok(closed_at_once(port, why, sizeof why),
		"%s: a 4th is accepted and closed at once (no data, EOF within 3 s)",
		label))
		diag("%s", why);
	if (fds[0] != -1)
		close(fds[0]);
	fds[0] = -1;
	ok(served_again(port), "%s: once one closes, a new connection is served", label);
	close_all(fds, MC_HELD);
	stop(&srv, label);
}

/* ---- f. SIGTERM and SIGINT: graceful, nothing left behind ---- */

/* A stop must end muxd within the grace period and this much (scaled):
 * room for a loaded machine to schedule the parent and its workers. */
#define STOP_SLACK_MS 5000

static void case_stop_held(const char *engine)
{
	const char *const options[] = { "--grace", "2", NULL };
	char label[64], why[256] = "", buf[8];
	struct muxd_server srv;
	struct family fam;
	enum read_end end;
	long long start_at, took;
	bool exited;
	int fd, err;

	snprintf(label, sizeof label, "%s SIGTERM --grace 2", engine);
	if (start(&srv, engine, "upper", options) != 0 ||
	    (fd = served_connection(muxd_port(&srv, "upper"), SAFETY_MS, why,
				    sizeof why)) == -1) {
		ok(false, "%s: starts and serves a connection", label);
		diag("%s", why);
		muxd_stop(&srv, 5000);
		skip(2, "no server");
		return;
	}
	note_family(&srv, &fam);
	diag("%s: %d child process(es), %d thread(s) before the signal", label,
	     fam.n, proc_thread_count(srv.pid));
	start_at = now_ms();
	kill(srv.pid, SIGTERM);
	exited = muxd_wait(&srv, 2000 + STOP_SLACK_MS) == 0;
	took = now_ms() - start_at;
	if (!ok(exited && exit_code_of(srv.wait_status) == 0,
		"%s, a connection held open: exits 0 within grace + 5 s", label))
		diag("%s after %lld ms", exited ? describe_status(srv.wait_status, why, sizeof why)
					       : "still running", took);
	else
		diag("%s: exited after %lld ms", label, took);
	read_until_eof(fd, buf, sizeof buf, SAFETY_MS, &end);
	err = errno;
	if (!ok(end == READ_EOF || (end == READ_ERROR && err == ECONNRESET),
		"%s: the held connection is closed", label))
		diag("%s", describe_read_end(end));
	close(fd);
	muxd_stop(&srv, 1000);
	check_nothing_left(&fam, label);
}

static void case_sigint_idle(const char *engine)
{
	const char *const options[] = { NULL };
	char label[64], why[64];
	struct muxd_server srv;
	struct family fam;
	long long start_at;
	bool exited;

	snprintf(label, sizeof label, "%s SIGINT", engine);
	if (start(&srv, engine, "upper", options) != 0) {
		ok(false, "%s: starts", label);
		skip(1, "no server");
		return;
	}
	sleep_ms(200);	/* the pool is up */
	note_family(&srv, &fam);
	start_at = now_ms();
	kill(srv.pid, SIGINT);
	exited = muxd_wait(&srv, STOP_SLACK_MS) == 0;
	if (!ok(exited && exit_code_of(srv.wait_status) == 0,
		"%s with no connection open: exits 0 within 5 s", label))
		diag("%s after %lld ms", exited ? describe_status(srv.wait_status, why, sizeof why)
					       : "still running", now_ms() - start_at);
	muxd_stop(&srv, 1000);
	check_nothing_left(&fam, label);
}

/* ---- g. prefork --accept=handoff: the socketpairs to the workers ---- */

#define MAX_SOCKETS 64

/* Wait up to 2 s (scaled) for muxd to have `want` live workers, none of
 * them `gone`; fills c. */
static bool await_workers(pid_t server, int want, pid_t gone, struct census *c)
{
	long long deadline = now_ms() + scaled_ms(2000);

	for (;;) {
		take_census(server, c, NULL);
		if (c->n == want && !has_pid(c->live, c->n, gone))
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(SAMPLE_MS);
	}
}

/* Wait up to 1 s (scaled) until pid is a zombie or gone. */
static bool await_death(pid_t pid)
{
	long long deadline = now_ms() + scaled_ms(1000);
	char state;

	while ((state = proc_state(pid)) != 0 && state != 'Z') {
		if (now_ms() >= deadline)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* A worker keeps its own end of its socketpair and nothing else of the
 * parent's: no listener, no other worker's end, and not the parent's end
 * of its own pair, which would hide the parent's death from it (its
 * recvmsg could never see end-of-file) and cost a descriptor per worker.
 * Each end of a socketpair is a socket of its own, so a socket open in
 * both the parent and a worker is one too many. */
static void case_pass_worker_sockets(void)
{
	const char *const options[] = { "--workers", "3", "--accept=handoff", NULL };
	const char *label = "prefork --workers 3 --accept=handoff";
	static struct census c;
	unsigned long parent[MAX_SOCKETS], worker[MAX_SOCKETS];
	struct muxd_server srv;
	int n_parent, shared = 0, checked = 0;

	if (start(&srv, "prefork", "upper", options) != 0) {
		ok(false, "%s: starts", label);
		return;
	}
	if (!await_workers(srv.pid, 3, 0, &c)) {
		ok(false, "%s: 3 workers within 2 s", label);
		stop(&srv, label);
		return;
	}
	sleep_ms(100);	/* a worker closes what it inherited just after fork */
	n_parent = proc_socket_inodes(srv.pid, parent, MAX_SOCKETS);
	for (int i = 0; i < c.n; i++) {
		int n = proc_socket_inodes(c.live[i], worker, MAX_SOCKETS);

		if (n < 0)
			continue;
		checked++;
		for (int k = 0; k < n; k++)
			for (int j = 0; j < n_parent; j++)
				if (worker[k] == parent[j]) {
					diag("worker pid %d holds socket:[%lu] of the parent",
					     (int)c.live[i], worker[k]);
					shared++;
				}
	}
	if (!ok(checked == 3 && n_parent > 3 && shared == 0,
		"%s: no worker holds a socket the parent holds", label))
		diag("%d workers looked at, parent has %d sockets, %d shared",
		     checked, n_parent, shared);
	stop(&srv, label);
}

/* A worker that has died, reaped or not, is ready for nothing: a client
 * that arrives just then waits for another worker and is served, never
 * accepted and dropped. With one worker, killed just after it served a
 * client (so it had said "ready" again), the next client must wait for
 * the replacement; three rounds, each killing the worker of the round
 * before (dying young, they also make the parent back off first, which
 * leaves the dead worker's slot empty for a while). */
static void case_pass_dead_worker(void)
{
	const char *const options[] = { "--workers", "1", "--accept=handoff", NULL };
	const char *label = "prefork --workers 1 --accept=handoff";
	static struct census c;
	struct muxd_server srv;
	char why[256] = "";
	int served = 0, rounds = 3;
	unsigned short port;

	if (start(&srv, "prefork", "stamp", options) != 0) {
		ok(false, "%s: starts", label);
		return;
	}
	port = muxd_port(&srv, "stamp");
	for (int r = 0; r < rounds; r++) {
		pid_t victim;

		if (!await_workers(srv.pid, 1, 0, &c) ||
		    !stamp_served(port, 3000, why, sizeof why)) {
			diag("round %d: no worker to kill: %s", r + 1, why);
			break;
		}
		take_census(srv.pid, &c, NULL);
		victim = c.live[0];
		kill(victim, SIGKILL);
		/* Dead first (a zombie, or reaped): a socket passed while it
		 * still ran would be lost with it, as one it was serving. */
		if (!await_death(victim))
			diag("round %d: pid %d still running 1 s after SIGKILL",
			     r + 1, (int)victim);
		if (stamp_served(port, 3000, why, sizeof why))
			served++;
		else
			diag("round %d: the client after killing pid %d: %s",
			     r + 1, (int)victim, why);
	}
	ok(served == rounds, "%s: a client that comes as the only worker is "
	   "killed is served by its replacement (%d of %d)", label, served,
	   rounds);
	stop(&srv, label);
}

static const char *const pool_engines[] = {
	"prefork", "prefork-dynamic", "pthread-pool", NULL,
};

/* Every pool engine this test knows must be listed by muxd. */
static void require_engines(void)
{
	struct engine_info e;

	for (int i = 0; pool_engines[i]; i++)
		muxd_engine(pool_engines[i], &e);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	adopt_orphans();
	require_engines();

	for (int i = 0; strategies[i]; i++)
		case_prefork_supervision(strategies[i]);
	case_dynamic_breathes();
	case_max_requests();
	case_thread_pool("handoff");
	case_thread_pool("mutex");
	case_max_conns("prefork");
	case_max_conns("pthread-pool");
	for (int i = 0; pool_engines[i]; i++)
		case_stop_held(pool_engines[i]);
	for (int i = 0; pool_engines[i]; i++)
		case_sigint_idle(pool_engines[i]);
	case_pass_worker_sockets();
	case_pass_dead_worker();
	return done_testing();
}
