/*
 * json.c — the JSON writer for `lmrsecctl --json`.  The strings come from
 * the agent and the SIP network, so nothing about them is assumed: control
 * characters are escaped and bytes that are not UTF-8 become U+FFFD.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "json.h"

#define JSON_REPLACEMENT "\\ufffd"

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 if invalid:
 * overlong forms, surrogates and code points past U+10FFFF included. */
static size_t utf8_sequence(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t len, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}

	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}

	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;

	return len;
}

static void write_escaped_ascii(FILE *out, unsigned char c)
{
	switch (c) {
	case '"':
		fputs("\\\"", out);
		return;
	case '\\':
		fputs("\\\\", out);
		return;
	case '\b':
		fputs("\\b", out);
		return;
	case '\f':
		fputs("\\f", out);
		return;
	case '\n':
		fputs("\\n", out);
		return;
	case '\r':
		fputs("\\r", out);
		return;
	case '\t':
		fputs("\\t", out);
		return;
	default:
		break;
	}

	if (c < 0x20 || c == 0x7f)
		fprintf(out, "\\u%04x", c);
	else
		fputc(c, out);
}

void json_write_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *) (s ? s : "");
	size_t n;

	fputc('"', out);
	while (*p) {
		n = utf8_sequence(p);
		if (n == 0) {
			fputs(JSON_REPLACEMENT, out);
			p++;
		} else if (n == 1) {
			write_escaped_ascii(out, *p);
			p++;
		} else {
			fwrite(p, 1, n, out);
			p += n;
		}
	}
	fputc('"', out);
}

/* The separator and key before a value at the current level. */
static void json_member(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->out);
	j->first[j->depth] = false;

	if (key) {
		json_write_string(j->out, key);
		fputc(':', j->out);
	}
}

static void json_open(struct json *j, const char *key, char bracket)
{
	json_member(j, key);
	fputc(bracket, j->out);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct json *j, char bracket)
{
	fputc(bracket, j->out);
	if (j->depth > 0)
		j->depth--;
}

void json_begin(struct json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	fputc('{', out);
	j->first[0] = true;
}

void json_end(struct json *j)
{
	fputs("}\n", j->out);
	fflush(j->out);
}

void json_begin_array(struct json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	fputc('[', out);
	j->first[0] = true;
}

void json_end_array(struct json *j)
{
	fputs("]\n", j->out);
	fflush(j->out);
}

void json_object_begin(struct json *j, const char *key)
{
	json_open(j, key, '{');
}

void json_object_end(struct json *j)
{
	json_close(j, '}');
}

void json_array_begin(struct json *j, const char *key)
{
	json_open(j, key, '[');
}

void json_array_end(struct json *j)
{
	json_close(j, ']');
}

void json_string(struct json *j, const char *key, const char *value)
{
	json_member(j, key);
	json_write_string(j->out, value);
}

void json_uint(struct json *j, const char *key, uint64_t value)
{
	json_member(j, key);
	fprintf(j->out, "%" PRIu64, value);
}

void json_bool(struct json *j, const char *key, bool value)
{
	json_member(j, key);
	fputs(value ? "true" : "false", j->out);
}
