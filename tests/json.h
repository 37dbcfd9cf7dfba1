/* json.h -- a strict JSON parser (RFC 8259) for the tests, so that a
 * trace is checked without python or any library: any text that is not
 * one JSON value, whitespace around it, is refused with the reason. */
#ifndef MUXD_TEST_JSON_H
#define MUXD_TEST_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
		 JSON_OBJECT };

struct json {
	enum json_type type;
	bool boolean;
	double number;
	char *string;		/* JSON_STRING, UTF-8, NUL-ended */
	size_t n;		/* items of an array or members of an object */
	struct json *items;
	char **keys;		/* an object's, by item */
};

/* The value in text[0, len); NULL with the reason and its offset in err. */
struct json *json_parse(const char *text, size_t len, char *err,
			size_t err_len);
void json_free(struct json *v);

/* An object's member, or NULL (also when v is not an object). */
const struct json *json_get(const struct json *v, const char *key);
/* Its number, or `otherwise` when v is missing or not a number. */
double json_number(const struct json *v, double otherwise);
/* Its string, or "" when v is missing or not a string. */
const char *json_string(const struct json *v);

#endif
