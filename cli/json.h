/*
 * json.h — the small JSON writer behind `lmrsecctl --json`: one object per
 * line (NDJSON for streams), strings escaped per RFC 8259, invalid UTF-8
 * replaced by U+FFFD so the output always parses.
 */
#ifndef LMRSEC_CLI_JSON_H
#define LMRSEC_CLI_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 8

struct json {
	FILE *out;
	int depth;
	bool first[JSON_MAX_DEPTH];	/* nothing written yet at this level */
};

/* Starts a top-level object on out. */
void json_begin(struct json *j, FILE *out);
/* Ends the top-level object, the line, and flushes: one record is out. */
void json_end(struct json *j);
/* The same for a top-level array (its elements: json_object_begin(j, NULL)). */
void json_begin_array(struct json *j, FILE *out);
void json_end_array(struct json *j);

/* key is NULL inside an array. */
void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);
void json_string(struct json *j, const char *key, const char *value);
void json_uint(struct json *j, const char *key, uint64_t value);
void json_bool(struct json *j, const char *key, bool value);

/* A quoted, escaped JSON string for s. */
void json_write_string(FILE *out, const char *s);

#endif
