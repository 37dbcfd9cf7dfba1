/* service.h -- the services, as I/O-free protocol handlers.
 *
 * A service never touches a socket. An engine owns the bytes and calls the
 * hooks below; the service transforms, produces or swallows bytes and
 * says when the connection should close once its output is flushed. The
 * clock is handed in, so unit tests can fix it.
 *
 * Stream services (stamp, upper, echo, discard, chargen, daytime, time):
 * input is transformed in place: the engine reads into the free tail of
 * the connection's output buffer and asks the service how many of those
 * bytes are to be sent back. That keeps the echo path free of copies and
 * bounds every connection by one buffer.
 *
 * Request services (delay, work): input is taken a line at a time, and a
 * line is answered before the next is taken, so what a client pipelines
 * waits in the engine's buffer and in TCP, never in a queue here. An
 * engine runs a request in four steps:
 *   1. svc_take() takes input up to the end of one line and says how much
 *      it took; the rest stays with the engine;
 *   2. svc_need() then says what the line needs: more input (SVC_INPUT),
 *      time (SVC_WAIT, until svc_due()), CPU (SVC_WORK: svc_work(), on
 *      whichever thread the engine chooses), or nothing (SVC_READY);
 *   3. svc_reply() gives the reply, held by the session, for the engine
 *      to send from (work not done by then is done inline);
 *   4. svc_replied(), once the reply is sent: the session takes lines
 *      again (or, after a line too long, closes after flush).
 * Waiting is the engine's: a blocking engine sleeps, a reactor arms a
 * timer. A request holds its line, then its reply (about 1 KiB), from its
 * first byte until svc_replied, not longer; svc_close() gives it back if
 * the connection ends first. A client's end of file ends the connection
 * at once, replies owed or not: a client gone, as redis and nginx take
 * it, whose wait, work and buffer are released (the engine closes; the
 * service's eof hook says the same).
 */
#ifndef MUXD_SERVICE_H
#define MUXD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Room a greeting needs at most: daytime's 26 bytes, with margin. */
#define SVC_GREETING_MAX 64
/* A request line's most bytes before its LF, and the room a reply needs
 * at most: delay's line echoed whole. */
#define SVC_LINE_MAX 1024
#define SVC_REPLY_MAX (SVC_LINE_MAX + 2)

/* What a request service's line needs before its reply (svc_need). */
enum svc_need { SVC_INPUT, SVC_WAIT, SVC_WORK, SVC_READY };

struct svc_request;

struct svc_session {
	const struct service *service;
	uint32_t offset;	/* chargen: position in its 7030-byte cycle */
	bool close_after_flush;	/* set by the service: send what is queued, then close */
	struct svc_request *req;	/* a request service's line, while it has one */
};

struct service {
	const char *name;
	const char *summary;
	unsigned short default_port;	/* 0: off unless --listen names it */

	/* Connection opened at `now`: write a greeting (at most
	 * SVC_GREETING_MAX bytes) into out, return its length. */
	size_t (*open)(struct svc_session *s, time_t now, unsigned char *out);
	/* `len` bytes arrived in data: rewrite them in place, return how many
	 * of them (a prefix) are to be sent back. */
	size_t (*input)(struct svc_session *s, unsigned char *data, size_t len);
	/* Producers only (else NULL): the output has `room` free bytes; fill
	 * some and return how many. Called whenever there is room. */
	size_t (*fill)(struct svc_session *s, unsigned char *out, size_t room);
	/* The client shut down its sending side. */
	void (*eof)(struct svc_session *s);
	/* Request services only (else NULL): take input at `now_ms`
	 * (CLOCK_MONOTONIC) up to the end of one line; returns how much. */
	size_t (*take)(struct svc_session *s, const unsigned char *data,
		       size_t len, int64_t now_ms);
	/* Request services: the computation a whole line asks for. */
	void (*work)(struct svc_request *r);
};

/* The service table, NULL-ended, in --list-services order. */
extern const struct service *const services[];

const struct service *svc_find(const char *name);

/* Start a session of `service`; returns the greeting length written to out. */
size_t svc_open(struct svc_session *s, const struct service *service,
		time_t now, unsigned char *out);

static inline size_t svc_input(struct svc_session *s, unsigned char *data,
			       size_t len)
{
	return s->service->input(s, data, len);
}

static inline bool svc_is_producer(const struct svc_session *s)
{
	return s->service->fill != NULL;
}

static inline size_t svc_fill(struct svc_session *s, unsigned char *out,
			      size_t room)
{
	return s->service->fill ? s->service->fill(s, out, room) : 0;
}

static inline void svc_eof(struct svc_session *s)
{
	s->service->eof(s);
}

/* ---- request services (see the top of this file) ---- */

static inline bool svc_is_request(const struct svc_session *s)
{
	return s->service->take != NULL;
}

static inline size_t svc_take(struct svc_session *s, const unsigned char *data,
			      size_t len, int64_t now_ms)
{
	return s->service->take(s, data, len, now_ms);
}

/* What the session's line needs now; SVC_INPUT when it has none. */
enum svc_need svc_need(const struct svc_session *s);

/* SVC_WAIT: when the reply is due, in CLOCK_MONOTONIC milliseconds. */
int64_t svc_due(const struct svc_session *s);

/* SVC_WORK: do the work, on any thread, while nothing else touches the
 * session; the need becomes SVC_READY. */
void svc_work(struct svc_session *s);

/* SVC_WAIT once due, SVC_WORK or SVC_READY: the reply, in memory the
 * session holds until svc_replied (or svc_close); *out points at it.
 * Returns its length, at most SVC_REPLY_MAX; 0 without a request. */
size_t svc_reply(struct svc_session *s, const unsigned char **out);

/* The reply is sent: the session takes lines again. */
void svc_replied(struct svc_session *s);

/* The connection is over: give back what a request holds. */
void svc_close(struct svc_session *s);

/* What svc_advance stopped at. */
enum svc_next {
	SVC_NEXT_INPUT,		/* all it was given is taken: more input */
	SVC_NEXT_WAIT,		/* a line waits for svc_due() */
	SVC_NEXT_WORK,		/* a line asks for work (only when told not to do it) */
	SVC_NEXT_REPLY,		/* a reply is ready: svc_reply() */
};

/* An engine's step 1 and 2 at once: take lines from in[0, len) at `now`
 * (*taken says how much) until one waits for its time, or asks for work
 * and work_inline is false, or has its reply ready, or the input runs
 * out (or the service closes). */
enum svc_next svc_advance(struct svc_session *s, const unsigned char *in,
			  size_t len, size_t *taken, int64_t now,
			  bool work_inline);

/* For a service row: a greeting of nothing. */
size_t svc_greet_nothing(struct svc_session *s, time_t now, unsigned char *out);

#endif
