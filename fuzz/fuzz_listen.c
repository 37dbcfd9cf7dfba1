/* fuzz_listen.c -- libFuzzer target for the --listen syntax
 * (net_split_listen in src/net.c: SERVICE=[HOST:]PORT, HOST unresolved).
 *
 * The input, cut at its first NUL, is the option's value. Whatever it is,
 * the parser must return 0 or -1 and leave only terminated strings behind;
 * what it accepts must name a real service and a port in 0-65535, and
 * must read back the same when written out again in canonical form.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/net.h"
#include "services/service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_listen: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	__builtin_trap(); } } while (0)

/* Parse spec with buffers poisoned beforehand, so a field left unwritten
 * or unterminated shows. */
static int parse(const char *spec, struct listener *l, bool *bracketed,
		 char *err)
{
	int rc;

	memset(l, 0xa5, sizeof *l);
	memset(err, 0xa5, NET_ERR_LEN);
	*bracketed = false;
	rc = net_split_listen(spec, l, bracketed, err);
	CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		CHECK(memchr(err, '\0', NET_ERR_LEN) != NULL);
		CHECK(err[0] != '\0');	/* a usage message, not silence */
		return rc;
	}
	CHECK(l->fd == -1);
	CHECK(l->service != NULL);
	CHECK(svc_find(l->service->name) == l->service);
	CHECK(memchr(l->host_arg, '\0', sizeof l->host_arg) != NULL);
	CHECK(!l->same_port_as_previous);
	/* An unbracketed host with a colon would be ambiguous with the port. */
	CHECK(*bracketed || strchr(l->host_arg, ':') == NULL);
	CHECK(!*bracketed || l->host_arg[0] != '\0');
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = malloc(size + 1), *again;
	struct listener *l = malloc(sizeof *l), *l2 = malloc(sizeof *l2);
	char *err = malloc(NET_ERR_LEN);
	bool bracketed, bracketed2;
	size_t len;

	CHECK(spec && l && l2 && err);
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (parse(spec, l, &bracketed, err) == 0) {
		/* SERVICE=PORT, SERVICE=HOST:PORT or SERVICE=[HOST]:PORT. */
		len = strlen(l->service->name) + strlen(l->host_arg) + 16;
		again = malloc(len);
		CHECK(again);
		if (!l->host_arg[0])
			snprintf(again, len, "%s=%u", l->service->name, l->port);
		else
			snprintf(again, len, bracketed ? "%s=[%s]:%u" : "%s=%s:%u",
				 l->service->name, l->host_arg, l->port);
		CHECK(parse(again, l2, &bracketed2, err) == 0);
		CHECK(l2->service == l->service);
		CHECK(strcmp(l2->host_arg, l->host_arg) == 0);
		CHECK(l2->port == l->port);
		CHECK(bracketed2 == bracketed);
		/* What was accepted was in the input: the name before '='. */
		CHECK(strncmp(spec, l->service->name, strlen(l->service->name)) == 0);
		CHECK(spec[strlen(l->service->name)] == '=');
		free(again);
	}
	free(spec);
	free(l);
	free(l2);
	free(err);
	return 0;
}
