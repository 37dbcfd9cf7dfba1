/* tracefile.c -- a --trace file, parsed and summed. */
#include "tracefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* The whole file, NUL-ended; NULL on failure. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);

	while (f && buf) {
		size_t got = fread(buf + n, 1, cap - n, f);
		char *bigger;

		n += got;
		if (n < cap)
			break;
		bigger = realloc(buf, 2 * cap + 1);
		if (!bigger) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = bigger;
		cap *= 2;
	}
	if (!f || !buf || ferror(f)) {
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
	if (f)
		fclose(f);
	return buf;
}

static struct trace_track *track(struct trace_summary *s, int pid, int tid)
{
	for (size_t i = 0; i < s->n_tracks; i++)
		if (s->tracks[i].pid == pid && s->tracks[i].tid == tid)
			return &s->tracks[i];
	if (s->n_tracks == TRACE_MAX_TRACKS)
		return NULL;
	s->tracks[s->n_tracks] = (struct trace_track){ .pid = pid, .tid = tid };
	return &s->tracks[s->n_tracks++];
}

static unsigned long long arg(const struct json *e, const char *name)
{
	double v = json_number(json_get(json_get(e, "args"), name), 0);

	return v > 0 ? (unsigned long long)v : 0;
}

/* A span or an instant: what it is, counted by name. */
static void count_event(struct trace_summary *s, const struct json *e,
			const char *name, const char *cat)
{
	if (strcmp(cat, "wait") == 0)
		s->waits++;
	if (strcmp(name, "read") == 0) {
		s->reads++;
		s->bytes_in += arg(e, "bytes");
	} else if (strcmp(name, "write") == 0) {
		s->writes++;
		s->bytes_out += arg(e, "bytes");
	} else if (strcmp(name, "accept") == 0) {
		s->accepts++;
	} else if (strcmp(name, "close") == 0) {
		s->closes++;
	} else if (strcmp(name, "fork") == 0) {
		s->forks++;
	} else if (strcmp(name, "thread start") == 0) {
		s->thread_starts++;
	} else if (strcmp(name, "hand over") == 0) {
		s->hand_overs++;
	} else if (strcmp(name, "take") == 0) {
		s->takes++;
	} else if (strcmp(name, "trace events dropped") == 0) {
		s->drop_markers++;
		s->dropped_in_markers += arg(e, "dropped");
	}
}

static void metadata(struct trace_summary *s, const struct json *e,
		     const char *name, int pid, int tid)
{
	struct trace_track *t;

	if (strcmp(name, "thread_name") != 0 || !(t = track(s, pid, tid)))
		return;
	snprintf(t->name, sizeof t->name, "%s", json_string(json_get(json_get(
		e, "args"), "name")));
	if (strcmp(t->name, "main") == 0)
		s->main_pid = pid;
}

static void one(struct trace_summary *s, const struct json *e)
{
	const char *ph = json_string(json_get(e, "ph"));
	const char *name = json_string(json_get(e, "name"));
	double pid = json_number(json_get(e, "pid"), -1);
	double tid = json_number(json_get(e, "tid"), -1);
	struct trace_track *t;

	s->events++;
	if (!*ph || !*name || pid < 0 || tid < 0 ||
	    (*ph != 'M' && json_number(json_get(e, "ts"), -1) < 0)) {
		s->bad_events++;
		return;
	}
	if (*ph == 'M') {
		metadata(s, e, name, (int)pid, (int)tid);
		return;
	}
	if (*ph == 'C') {
		s->counters++;
		if (strcmp(name, "connections") == 0 &&
		    json_get(json_get(e, "args"), "accepted"))
			s->counter_accepted = arg(e, "accepted");
		return;
	}
	if (*ph == 'X') {
		s->spans++;
		if (json_number(json_get(e, "dur"), -1) < 0)
			s->bad_spans++;
	}
	if ((t = track(s, (int)pid, (int)tid)))
		t->events++;
	count_event(s, e, name, json_string(json_get(e, "cat")));
}

static void count_processes(struct trace_summary *s)
{
	for (size_t i = 0; i < s->n_tracks; i++) {
		size_t j = 0;

		while (j < i && s->tracks[j].pid != s->tracks[i].pid)
			j++;
		s->n_processes += j == i;
	}
}

int trace_read(const char *path, struct trace_summary **out, char *why,
	       size_t why_size)
{
	struct trace_summary *s = calloc(1, sizeof *s);
	const struct json *events, *other;
	struct json *doc = NULL;
	size_t len;
	char *text = slurp(path, &len);

	*out = s;
	if (!s || !text) {
		snprintf(why, why_size, "cannot read %s", path);
		free(text);
		return -1;
	}
	doc = json_parse(text, len, why, why_size);
	free(text);
	if (!doc)
		return -1;
	events = json_get(doc, "traceEvents");
	other = json_get(doc, "otherData");
	if (!events || events->type != JSON_ARRAY || !other) {
		snprintf(why, why_size, "not a trace: no traceEvents array "
			 "or no otherData");
		json_free(doc);
		return -1;
	}
	for (size_t i = 0; i < events->n; i++)
		one(s, &events->items[i]);
	s->dropped = (unsigned long long)json_number(json_get(other,
						"dropped_events"), -1);
	snprintf(s->engine, sizeof s->engine, "%s",
		 json_string(json_get(other, "engine")));
	count_processes(s);
	json_free(doc);
	return 0;
}

size_t trace_tracks_named(const struct trace_summary *s, const char *prefix)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_tracks; i++)
		n += strncmp(s->tracks[i].name, prefix, strlen(prefix)) == 0;
	return n;
}
