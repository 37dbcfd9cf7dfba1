/* requests.c -- the request services: delay, a call to a backend that
 * takes a while, and work, a request that burns CPU.
 *
 * Each takes a line at a time (service.h says how an engine drives one).
 * A line ends with LF; a CR before it is ignored; it may hold
 * SVC_LINE_MAX bytes before its LF, and one longer gets "ERR line too
 * long" and the connection closes after it. A line that does not parse
 * or is out of range gets "ERR <reason>" and the next line is taken.
 *
 *   delay: "D" or "D text", D whole milliseconds from 0 to 60000; the
 *          line comes back as it came, once D ms have passed since it
 *          was taken.
 *   work:  "N SEED", N from 1 to 100,000,000 and SEED an unsigned 64-bit
 *          number; the reply is the N-th output of splitmix64 seeded
 *          with SEED, in 16 lowercase hex digits, CR LF.
 */
#include "services/service.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELAY_MAX_MS 60000
#define WORK_MAX_N 100000000

struct svc_request {
	enum svc_need need;
	const char *error;	/* SVC_READY with "ERR <error>" */
	int64_t due;		/* delay: when its reply is due */
	uint64_t n, seed;	/* work: what it asks */
	uint64_t result;	/* work: once worked */
	bool replied;		/* line[0, len) holds the reply now */
	size_t len;
	unsigned char line[SVC_REPLY_MAX];	/* the line, then its reply */
};

/* A request that could not be given its buffer: its reply is ready,
 * and the connection closes after it. Never written to. */
#define OUT_OF_MEMORY "ERR out of memory\r\n"
static struct svc_request out_of_memory = {
	.need = SVC_READY, .replied = true,
	.len = sizeof OUT_OF_MEMORY - 1, .line = OUT_OF_MEMORY,
};

/* Lines come through take, never through input. */
static size_t no_stream_input(struct svc_session *s, unsigned char *data,
			      size_t len)
{
	(void)s; (void)data; (void)len;
	return 0;
}

/* The client's end of file: a client gone, whatever it was owed. */
static void close_now(struct svc_session *s)
{
	s->close_after_flush = true;
}

/* ---- parsing ---- */

/* A whole decimal number at *p, no sign, at most max: advances *p past
 * its digits. -1 when there are none, -2 when it is above max. */
static int parse_number(const char **p, const char *end, uint64_t max,
			uint64_t *out)
{
	const char *q = *p;
	uint64_t v = 0;
	bool over = false;

	while (q < end && *q >= '0' && *q <= '9') {
		unsigned d = (unsigned)(*q++ - '0');

		over |= v > (max - d) / 10;
		if (!over)
			v = v * 10 + d;
	}
	if (q == *p)
		return -1;
	*p = q;
	*out = v;
	return over ? -2 : 0;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The line's text: without its LF, nor a CR before it. */
static const char *text_end(const struct svc_request *r)
{
	size_t n = r->len - 1;	/* the LF */

	if (n > 0 && r->line[n - 1] == '\r')
		n--;
	return (const char *)r->line + n;
}

static void parse_delay(struct svc_request *r, int64_t now_ms)
{
	const char *p = (const char *)r->line, *end = text_end(r);
	uint64_t ms;
	int rc = parse_number(&p, end, DELAY_MAX_MS, &ms);

	if (rc == 0 && p < end && *p != ' ')
		rc = -1;
	if (rc < 0) {
		r->need = SVC_READY;
		r->error = rc == -2 ? "out of range: milliseconds from 0 to 60000"
				    : "not a number: milliseconds from 0 to 60000, "
				      "then optional text";
		return;
	}
	/* now_ms is whole milliseconds, the line came up to one later:
	 * one more, so that no reply comes before its time. */
	r->due = now_ms + (int64_t)ms + 1;
	r->need = SVC_WAIT;
}

static void parse_work(struct svc_request *r, int64_t now_ms)
{
	const char *p = (const char *)r->line, *end = text_end(r);
	int rc_n, rc_seed = 0;

	(void)now_ms;
	r->need = SVC_READY;
	r->n = 0;
	rc_n = parse_number(&p, end, WORK_MAX_N, &r->n);
	if (rc_n == 0 && r->n == 0)
		rc_n = -2;
	if (rc_n == 0 && p < end && *p != ' ' && *p != '\t')
		rc_n = -1;
	if (rc_n == 0) {
		p = skip_blanks(p, end);
		rc_seed = parse_number(&p, end, UINT64_MAX, &r->seed);
		if (rc_seed == 0 && skip_blanks(p, end) != end)
			rc_seed = -1;
	}
	if (rc_n == -1)
		r->error = "not a number: N SEED, N from 1 to 100000000";
	else if (rc_n == -2)
		r->error = "out of range: N from 1 to 100000000";
	else if (rc_seed < 0)
		r->error = "bad seed: an unsigned 64-bit decimal number";
	else
		r->need = SVC_WORK;
}

/* ---- taking lines ---- */

static struct svc_request *request_of(struct svc_session *s)
{
	struct svc_request *r = s->req;

	if (r)
		return r;
	r = malloc(sizeof *r);
	if (!r) {
		s->close_after_flush = true;
		return s->req = &out_of_memory;
	}
	r->need = SVC_INPUT;
	r->error = NULL;
	r->replied = false;
	r->len = 0;
	s->req = r;
	return r;
}

/* Take bytes up to the end of one line; parse it once whole. */
static size_t take_line(struct svc_session *s, const unsigned char *data,
			size_t len, int64_t now_ms,
			void (*parse)(struct svc_request *, int64_t))
{
	struct svc_request *r;
	const unsigned char *lf;
	size_t want, room;

	if (len == 0 || s->close_after_flush || svc_need(s) != SVC_INPUT)
		return 0;
	r = request_of(s);
	if (r == &out_of_memory)
		return 0;
	lf = memchr(data, '\n', len);
	want = lf ? (size_t)(lf - data) + 1 : len;
	room = SVC_LINE_MAX - r->len + (lf ? 1 : 0);
	if (want > room) {
		/* More than SVC_LINE_MAX before an LF: nothing more is taken. */
		r->need = SVC_READY;
		r->error = "line too long";
		s->close_after_flush = true;
		return 0;
	}
	memcpy(r->line + r->len, data, want);
	r->len += want;
	if (lf)
		parse(r, now_ms);
	return want;
}

static size_t delay_take(struct svc_session *s, const unsigned char *data,
			 size_t len, int64_t now_ms)
{
	return take_line(s, data, len, now_ms, parse_delay);
}

static size_t work_take(struct svc_session *s, const unsigned char *data,
			size_t len, int64_t now_ms)
{
	return take_line(s, data, len, now_ms, parse_work);
}

/* ---- the work ---- */

/* The N-th output of splitmix64 from SEED. The barrier keeps the
 * compiler from replacing the loop by its final value (the state is a
 * plain induction variable): the cost must grow with N. */
static void splitmix_nth(struct svc_request *r)
{
	uint64_t state = r->seed, z = 0;

	for (uint64_t i = 0; i < r->n; i++) {
		state += 0x9e3779b97f4a7c15u;
		z = state;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
		z ^= z >> 31;
		__asm__ volatile("" : "+r"(z));
	}
	r->result = z;
}

/* ---- the engine's side ---- */

enum svc_need svc_need(const struct svc_session *s)
{
	return s->req ? s->req->need : SVC_INPUT;
}

int64_t svc_due(const struct svc_session *s)
{
	return s->req ? s->req->due : 0;
}

void svc_work(struct svc_session *s)
{
	struct svc_request *r = s->req;

	if (!r || r->need != SVC_WORK)
		return;
	s->service->work(r);
	r->need = SVC_READY;
}

/* The reply, in place of the line: delay's is the line as it came. */
static void format_reply(const struct service *svc, struct svc_request *r)
{
	if (r->error)
		r->len = (size_t)snprintf((char *)r->line, sizeof r->line,
					  "ERR %s\r\n", r->error);
	else if (svc->work)
		r->len = (size_t)snprintf((char *)r->line, sizeof r->line,
					  "%016" PRIx64 "\r\n", r->result);
	r->replied = true;
}

size_t svc_reply(struct svc_session *s, const unsigned char **out)
{
	struct svc_request *r = s->req;

	if (!r || r->need == SVC_INPUT)
		return 0;
	svc_work(s);
	if (!r->replied)
		format_reply(s->service, r);
	*out = r->line;
	return r->len;
}

enum svc_next svc_advance(struct svc_session *s, const unsigned char *in,
			  size_t len, size_t *taken, int64_t now,
			  bool work_inline)
{
	*taken = 0;
	for (;;) {
		enum svc_need need = svc_need(s);
		size_t took;

		if (need == SVC_WAIT && svc_due(s) > now)
			return SVC_NEXT_WAIT;
		if (need == SVC_WORK && !work_inline)
			return SVC_NEXT_WORK;
		if (need != SVC_INPUT)
			return SVC_NEXT_REPLY;
		if (*taken == len)
			return SVC_NEXT_INPUT;
		took = svc_take(s, in + *taken, len - *taken, now);
		*taken += took;
		if (took == 0 && svc_need(s) == SVC_INPUT)
			return SVC_NEXT_INPUT;	/* closing: nothing more is taken */
	}
}

void svc_replied(struct svc_session *s)
{
	svc_close(s);
}

void svc_close(struct svc_session *s)
{
	if (s->req != &out_of_memory)
		free(s->req);
	s->req = NULL;
}

const struct service request_delay = {
	.name = "delay",
	.summary = "each line 'MS [text]' comes back after MS milliseconds "
		   "(0-60000): a backend call",
	.open = svc_greet_nothing, .input = no_stream_input, .eof = close_now,
	.take = delay_take,
};

const struct service request_work = {
	.name = "work",
	.summary = "each line 'N SEED' gets the N-th splitmix64 output of SEED "
		   "in hex: a request that burns CPU",
	.open = svc_greet_nothing, .input = no_stream_input, .eof = close_now,
	.take = work_take, .work = splitmix_nth,
};
