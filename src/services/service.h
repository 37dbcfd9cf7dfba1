/* service.h -- the line services, as I/O-free protocol handlers.
 *
 * A service never touches a socket. An engine owns the bytes and calls the
 * four hooks below; the service transforms, produces or swallows bytes and
 * says when the connection should close once its output is flushed. The
 * clock is handed in, so unit tests can fix it.
 *
 * Input is transformed in place: the engine reads into the free tail of the
 * connection's output buffer and asks the service how many of those bytes
 * are to be sent back. That keeps the echo path free of copies and bounds
 * every connection by one buffer.
 */
#ifndef MUXD_SERVICE_H
#define MUXD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Room a greeting needs at most: daytime's 26 bytes, with margin. */
#define SVC_GREETING_MAX 64

struct svc_session {
	const struct service *service;
	uint32_t offset;	/* chargen: position in its 7030-byte cycle */
	bool close_after_flush;	/* set by the service: send what is queued, then close */
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

#endif
