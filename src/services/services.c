/* services.c -- the service table, and the seven stream services after
 * inetd's built-ins.
 *
 * Each row is a protocol handler with no I/O of its own (see service.h):
 * stamp and upper are the classic seed servers; echo, discard, chargen,
 * daytime and time are the internal services of RFC 862, 863, 864, 867
 * and 868. The request services, delay and work, are in requests.c.
 */
#include "services/service.h"

#include <stdio.h>
#include <string.h>

size_t svc_greet_nothing(struct svc_session *s, time_t now, unsigned char *out)
{
	(void)s; (void)now; (void)out;
	return 0;
}

static size_t swallow_input(struct svc_session *s, unsigned char *data,
			    size_t len)
{
	(void)s; (void)data; (void)len;
	return 0;
}

static size_t echo_input(struct svc_session *s, unsigned char *data,
			 size_t len)
{
	(void)s; (void)data;
	return len;
}

static void close_on_eof(struct svc_session *s)
{
	s->close_after_flush = true;
}

/* stamp: the Unix time in decimal, then close. */
static size_t stamp_open(struct svc_session *s, time_t now, unsigned char *out)
{
	s->close_after_flush = true;
	return (size_t)snprintf((char *)out, SVC_GREETING_MAX, "%lld\r\n",
				(long long)now);
}

static const struct service svc_stamp = {
	.name = "stamp",
	.summary = "sends the Unix time in decimal seconds, then closes",
	.default_port = 1989,
	.open = stamp_open, .input = swallow_input, .eof = close_on_eof,
};

/* upper: echo with ASCII a-z raised; every other byte passes unchanged. */
static inline unsigned char raise_ascii(unsigned char c)
{
	/* No branch: 'a' to 'z' are the 26 bytes for which c - 'a' wraps
	 * below 26, and lose 0x20. */
	return (unsigned char)(c - (((unsigned char)(c - 'a') < 26) << 5));
}

/* Blocks of a fixed 32 bytes are what GCC's -O2 vectoriser takes on (it
 * leaves a loop of unknown count, which needs an epilogue, to -O3): with
 * them the transform costs about 60 us per MB here, against 1700 to 3200
 * for the byte-at-a-time loop with a branch, on random bytes. */
static size_t upper_input(struct svc_session *s, unsigned char *data,
			  size_t len)
{
	size_t i = 0;

	(void)s;
	for (; i + 32 <= len; i += 32)
		for (size_t j = 0; j < 32; j++)
			data[i + j] = raise_ascii(data[i + j]);
	for (; i < len; i++)
		data[i] = raise_ascii(data[i]);
	return len;
}

static const struct service svc_upper = {
	.name = "upper",
	.summary = "echoes every byte with ASCII a-z turned into A-Z",
	.default_port = 6666,
	.open = svc_greet_nothing, .input = upper_input, .eof = close_on_eof,
};

/* echo (RFC 862): every byte back, unchanged. */
static const struct service svc_echo = {
	.name = "echo",
	.summary = "RFC 862: echoes every byte back unchanged",
	.open = svc_greet_nothing, .input = echo_input, .eof = close_on_eof,
};

/* discard (RFC 863): reads and throws away. */
static const struct service svc_discard = {
	.name = "discard",
	.summary = "RFC 863: reads and throws away everything",
	.open = svc_greet_nothing, .input = swallow_input, .eof = close_on_eof,
};

/* chargen (RFC 864): line k is 72 characters of the printable ring from
 * position k mod 95, then CRLF; the stream repeats every 95 lines. */
#define CHARGEN_LINE 72
#define CHARGEN_STRIDE (CHARGEN_LINE + 2)
#define CHARGEN_RING 95
#define CHARGEN_CYCLE (CHARGEN_RING * CHARGEN_STRIDE)	/* 7030 bytes */

/* The ring twice over, so any line is one contiguous copy. */
static const char chargen_ring[2 * CHARGEN_RING + 1] =
	" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

static size_t chargen_fill(struct svc_session *s, unsigned char *out,
			   size_t room)
{
	size_t done = 0;

	while (done < room) {
		unsigned line = s->offset / CHARGEN_STRIDE;
		unsigned col = s->offset % CHARGEN_STRIDE;
		const char *src = col < CHARGEN_LINE
			? chargen_ring + line + col
			: &"\r\n"[col - CHARGEN_LINE];
		size_t n = (col < CHARGEN_LINE ? CHARGEN_LINE : CHARGEN_STRIDE) - col;

		if (n > room - done)
			n = room - done;
		memcpy(out + done, src, n);
		done += n;
		s->offset = (s->offset + (uint32_t)n) % CHARGEN_CYCLE;
	}
	return done;
}

/* A client's half-close does not stop chargen: it sends until the client
 * goes away, as inetd's does. */
static void ignore_eof(struct svc_session *s)
{
	(void)s;
}

static const struct service svc_chargen = {
	.name = "chargen",
	.summary = "RFC 864: sends lines of the printable ASCII ring until the client goes away",
	.open = svc_greet_nothing, .input = swallow_input, .fill = chargen_fill,
	.eof = ignore_eof,
};

/* daytime (RFC 867): the 24 characters of ctime(3), CRLF, then close.
 * strftime in the C locale gives ctime's exact layout without its
 * static buffer. */
static size_t daytime_open(struct svc_session *s, time_t now,
			   unsigned char *out)
{
	struct tm tm;
	size_t n = 0;

	s->close_after_flush = true;
	if (localtime_r(&now, &tm))
		n = strftime((char *)out, SVC_GREETING_MAX - 2,
			     "%a %b %e %H:%M:%S %Y", &tm);
	memcpy(out + n, "\r\n", 2);
	return n + 2;
}

static const struct service svc_daytime = {
	.name = "daytime",
	.summary = "RFC 867: sends the local date and time as ctime(3) does, then closes",
	.open = daytime_open, .input = swallow_input, .eof = close_on_eof,
};

/* time (RFC 868): seconds since 1900 as 32 bits, big-endian, then close. */
#define SECONDS_1900_TO_1970 2208988800u

static size_t time_open(struct svc_session *s, time_t now, unsigned char *out)
{
	/* Modulo 2^32: the RFC's counter wraps in 2036. */
	uint32_t t = (uint32_t)((uint64_t)now + SECONDS_1900_TO_1970);

	s->close_after_flush = true;
	out[0] = (unsigned char)(t >> 24);
	out[1] = (unsigned char)(t >> 16);
	out[2] = (unsigned char)(t >> 8);
	out[3] = (unsigned char)t;
	return 4;
}

static const struct service svc_time = {
	.name = "time",
	.summary = "RFC 868: sends seconds since 1900 as 32 bits big-endian, then closes",
	.open = time_open, .input = swallow_input, .eof = close_on_eof,
};

/* The request services, in requests.c. */
extern const struct service request_delay, request_work;

const struct service *const services[] = {
	&svc_stamp, &svc_upper, &svc_echo, &svc_discard,
	&svc_chargen, &svc_daytime, &svc_time, &request_delay, &request_work,
	NULL,
};

const struct service *svc_find(const char *name)
{
	for (const struct service *const *s = services; *s; s++)
		if (strcmp((*s)->name, name) == 0)
			return *s;
	return NULL;
}

size_t svc_open(struct svc_session *s, const struct service *service,
		time_t now, unsigned char *out)
{
	*s = (struct svc_session){ .service = service };
	return service->open(s, now, out);
}
