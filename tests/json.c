/* json.c -- recursive descent over RFC 8259's grammar. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct parser {
	const char *p, *start, *end;
	char *err;
	size_t err_len;
	bool failed;
};

static bool fail(struct parser *ps, const char *why)
{
	if (!ps->failed)
		snprintf(ps->err, ps->err_len, "%s at offset %zu", why,
			 (size_t)(ps->p - ps->start));
	ps->failed = true;
	return false;
}

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end && strchr(" \t\r\n", *ps->p) && *ps->p)
		ps->p++;
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, "bad literal");
	ps->p += n;
	return true;
}

static bool digits(struct parser *ps)
{
	const char *from = ps->p;

	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	return ps->p > from || fail(ps, "digit expected");
}

static bool number(struct parser *ps, struct json *v)
{
	const char *from = ps->p;
	char text[64];

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0')
		ps->p++;
	else if (!digits(ps))
		return false;
	if (ps->p < ps->end && *ps->p == '.' && (ps->p++, !digits(ps)))
		return false;
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!digits(ps))
			return false;
	}
	if ((size_t)(ps->p - from) >= sizeof text)
		return fail(ps, "number too long");
	memcpy(text, from, (size_t)(ps->p - from));
	text[ps->p - from] = '\0';
	v->type = JSON_NUMBER;
	v->number = strtod(text, NULL);
	return true;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* \uXXXX as UTF-8 (surrogate pairs are taken as they come: the tests
 * compare ASCII names only). */
static bool unicode(struct parser *ps, char *out, size_t *len)
{
	unsigned cp = 0;

	for (int i = 0; i < 4; i++) {
		int h = ps->p < ps->end ? hex(*ps->p++) : -1;

		if (h < 0)
			return fail(ps, "bad \\u escape");
		cp = cp << 4 | (unsigned)h;
	}
	if (cp < 0x80) {
		out[(*len)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*len)++] = (char)(0xc0 | cp >> 6);
		out[(*len)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*len)++] = (char)(0xe0 | cp >> 12);
		out[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*len)++] = (char)(0x80 | (cp & 0x3f));
	}
	return true;
}

static bool escape(struct parser *ps, char *out, size_t *len)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *at;

	if (ps->p >= ps->end)
		return fail(ps, "unterminated string");
	if (*ps->p == 'u') {
		ps->p++;
		return unicode(ps, out, len);
	}
	at = strchr(from, *ps->p);
	if (!at || !*ps->p)
		return fail(ps, "bad escape");
	out[(*len)++] = to[at - from];
	ps->p++;
	return true;
}

/* The bytes of a string's text as written, up to its closing quote (or
 * the end): its unescaped text is never longer, since every escape
 * shrinks (\u: at most three bytes for six, four for twelve). */
static size_t written_length(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && *q != '"')
		q += *q == '\\' && q + 1 < end ? 2 : 1;
	return (size_t)(q - p);
}

/* A string's text, unescaped, on the heap; NULL on failure. */
static char *string(struct parser *ps)
{
	char *out;
	size_t len = 0;

	if (ps->p >= ps->end || *ps->p != '"')
		return fail(ps, "string expected"), NULL;
	ps->p++;
	/* Sized to the string, not to the rest of the text: a trace has
	 * thousands of strings. */
	out = malloc(written_length(ps->p, ps->end) + 1);
	if (!out)
		return fail(ps, "out of memory"), NULL;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;

		if (c < 0x20) {
			fail(ps, "control character in string");
			break;
		}
		if (c == '\\') {
			ps->p++;
			if (!escape(ps, out, &len))
				break;
			continue;
		}
		out[len++] = (char)c;
		ps->p++;
	}
	if (!ps->failed && ps->p >= ps->end)
		fail(ps, "unterminated string");
	if (ps->failed) {
		free(out);
		return NULL;
	}
	ps->p++;
	out[len] = '\0';
	return out;
}

static bool value(struct parser *ps, struct json *v, int depth);

/* One more item (and key) in v, which grows as it needs. */
static struct json *add_item(struct parser *ps, struct json *v, char *key)
{
	if ((v->n & (v->n - 1)) == 0) {	/* 0, 1, 2, 4, ...: full */
		size_t cap = v->n ? 2 * v->n : 1;
		struct json *items = realloc(v->items, cap * sizeof *items);
		char **keys = v->type == JSON_OBJECT
			? realloc(v->keys, cap * sizeof *keys) : NULL;

		if (items)
			v->items = items;
		if (keys)
			v->keys = keys;
		if (!items || (v->type == JSON_OBJECT && !keys)) {
			free(key);
			return fail(ps, "out of memory"), NULL;
		}
	}
	if (v->type == JSON_OBJECT)
		v->keys[v->n] = key;
	memset(&v->items[v->n], 0, sizeof v->items[0]);
	return &v->items[v->n++];
}

static bool members(struct parser *ps, struct json *v, int depth, char close)
{
	ps->p++;
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return true;
	}
	for (;;) {
		char *key = NULL;
		struct json *item;

		skip_space(ps);
		if (close == '}') {
			if (!(key = string(ps)))
				return false;
			skip_space(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				return fail(ps, "':' expected");
			}
			ps->p++;
		}
		if (!(item = add_item(ps, v, key)) || !value(ps, item, depth + 1))
			return false;
		skip_space(ps);
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return true;
		}
		if (ps->p >= ps->end || *ps->p != ',')
			return fail(ps, close == '}' ? "',' or '}' expected"
						     : "',' or ']' expected");
		ps->p++;
	}
}

static bool value(struct parser *ps, struct json *v, int depth)
{
	if (depth > MAX_DEPTH)
		return fail(ps, "too deep");
	skip_space(ps);
	if (ps->p >= ps->end)
		return fail(ps, "value expected");
	switch (*ps->p) {
	case '{': v->type = JSON_OBJECT; return members(ps, v, depth, '}');
	case '[': v->type = JSON_ARRAY; return members(ps, v, depth, ']');
	case '"':
		v->type = JSON_STRING;
		return (v->string = string(ps)) != NULL;
	case 't': v->type = JSON_BOOL; v->boolean = true; return literal(ps, "true");
	case 'f': v->type = JSON_BOOL; return literal(ps, "false");
	case 'n': v->type = JSON_NULL; return literal(ps, "null");
	default: return number(ps, v);
	}
}

static void release(struct json *v)
{
	for (size_t i = 0; i < v->n; i++) {
		release(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->string);
}

void json_free(struct json *v)
{
	if (v)
		release(v);
	free(v);
}

struct json *json_parse(const char *text, size_t len, char *err, size_t err_len)
{
	struct parser ps = { text, text, text + len, err, err_len, false };
	struct json *v = calloc(1, sizeof *v);

	if (!v) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (value(&ps, v, 0)) {
		skip_space(&ps);
		if (ps.p == ps.end)
			return v;
		fail(&ps, "text after the value");
	}
	json_free(v);
	return NULL;
}

const struct json *json_get(const struct json *v, const char *key)
{
	if (!v || v->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->keys[i], key) == 0)
			return &v->items[i];
	return NULL;
}

double json_number(const struct json *v, double otherwise)
{
	return v && v->type == JSON_NUMBER ? v->number : otherwise;
}

const char *json_string(const struct json *v)
{
	return v && v->type == JSON_STRING ? v->string : "";
}
