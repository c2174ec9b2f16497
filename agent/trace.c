/*
 * trace — a SIP message sanitised for `lmrsecctl trace` (see trace.h).
 *
 * Everything written to the output comes from one of three places: a
 * line of the message head that passed the text check, a number or hex
 * digest computed here, or a constant string of this file (lower case, so
 * that tests/fuzz/fuzz-trace.c can tell them from copied bytes).  Body
 * bytes are only ever hashed and counted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iwdata.h"
#include "sha256.h"
#include "trace.h"

/* Part content types named in the text; any other is "other type", since
 * a part's headers are body bytes. */
static const char *const known_part_types[] = {
	"application/vnd.3gpp.mcptt-info+xml",
	"application/vnd.3gpp.interworking-data",
	"application/vnd.3gpp.mcptt-location-info+xml",
	"application/resource-lists+xml",
	"application/sdp",
	"application/xml",
	"text/plain",
};

#define TRACE_IWDATA_TYPE "application/vnd.3gpp.interworking-data"
#define TRACE_BOUNDARY_MAX 70	/* RFC 2046 §5.1.1 */

struct out {
	char *buf;
	size_t len, cap;
	bool failed;		/* out of memory */
	bool full;		/* TRACE_TEXT_MAX reached: later head lines counted */
	size_t hidden;		/* head bytes not shown because full */
};

/* A span of the input. */
struct span {
	const uint8_t *p;
	size_t len;
};

/* ---------- output ---------- */

static void out_add(struct out *o, const char *s, size_t n)
{
	char *nb;
	size_t cap;

	if (o->failed)
		return;

	if (o->len + n + 1 > o->cap) {
		cap = o->cap ? o->cap : 1024;
		while (cap < o->len + n + 1)
			cap *= 2;
		nb = realloc(o->buf, cap);
		if (!nb) {
			o->failed = true;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void out_printf(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	out_add(o, line, (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1);
}

/* A line of the head, unless the text is full. */
static void out_head_line(struct out *o, const uint8_t *p, size_t n)
{
	if (o->full || o->len + n + 1 > TRACE_TEXT_MAX) {
		o->full = true;
		o->hidden += n;
		return;
	}
	out_add(o, (const char *) p, n);
	out_add(o, "\n", 1);
}

static void hex_of(const uint8_t d[SHA256_DIGEST_LEN], char hex[2 * SHA256_DIGEST_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < SHA256_DIGEST_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 0xf];
	}
	hex[2 * SHA256_DIGEST_LEN] = '\0';
}

static void fingerprint(const uint8_t *p, size_t n, char hex[2 * SHA256_DIGEST_LEN + 1])
{
	uint8_t d[SHA256_DIGEST_LEN];

	sha256_digest(p, n, d);
	hex_of(d, hex);
}

/* ---------- small pure checks ---------- */

static bool span_ieq(struct span s, const char *word)
{
	size_t n = strlen(word);

	return s.len == n && strncasecmp((const char *) s.p, word, n) == 0;
}

static struct span span_trim(struct span s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

/* Text a header line may hold: printable ASCII, HTAB and well-formed
 * UTF-8; no control characters (NUL, CR, LF, ESC ...). */
static bool line_is_text(const uint8_t *p, size_t n)
{
	size_t i = 0, k, more;

	while (i < n) {
		uint8_t c = p[i];

		if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3;
		else
			return false;
		if (n - i - 1 < more)
			return false;
		for (k = 1; k <= more; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		i += more + 1;
	}
	return true;
}

static bool is_token_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || strchr("-.!%*_+`'~", c) != NULL;
}

/* "METHOD SP Request-URI SP SIP/2.0" or "SIP/2.0 SP 3DIGIT SP Reason". */
static bool start_line_valid(const uint8_t *p, size_t n)
{
	static const char version[] = "SIP/2.0";
	const size_t vlen = sizeof(version) - 1;
	size_t i = 0, uri;

	if (n == 0 || n > TRACE_START_LINE_MAX || !line_is_text(p, n))
		return false;

	if (n >= vlen + 4 && memcmp(p, version, vlen) == 0 && p[vlen] == ' ')
		return p[vlen + 1] >= '1' && p[vlen + 1] <= '6' &&
		       p[vlen + 2] >= '0' && p[vlen + 2] <= '9' &&
		       p[vlen + 3] >= '0' && p[vlen + 3] <= '9' &&
		       (n == vlen + 4 || p[vlen + 4] == ' ');

	while (i < n && is_token_char(p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return false;
	uri = ++i;
	while (i < n && p[i] != ' ' && p[i] != '\t')
		i++;
	if (i == uri || i == n)
		return false;
	i++;
	return n - i == vlen && memcmp(p + i, version, vlen) == 0;
}

/* The end of the line at p (CRLF or a bare LF); *next after it.  false
 * when no line end is within n. */
static bool line_end(const uint8_t *p, size_t n, size_t *len, size_t *next)
{
	const uint8_t *lf = memchr(p, '\n', n);

	if (!lf)
		return false;
	*len = (size_t) (lf - p);
	*next = *len + 1;
	if (*len && p[*len - 1] == '\r')
		(*len)--;
	return true;
}

/* ---------- the head ---------- */

struct head {
	struct span start;
	struct span content_type;	/* whole value, trimmed; len 0 if none */
	struct span content_length;
	bool has_length;
	int n_lengths;			/* more than one: the body's end is unknown */
	size_t body_off;		/* where the body starts */
	size_t after_start;		/* input offset after the start line */
	size_t out_after_start;		/* output length after the start line */
	bool complete;			/* the empty line ending the head was found */
};

/* Splits "Name: value"; false when the line is no header. */
static bool header_split(struct span line, struct span *name, struct span *value)
{
	const uint8_t *colon = memchr(line.p, ':', line.len);

	if (!colon)
		return false;
	name->p = line.p;
	name->len = (size_t) (colon - line.p);
	*name = span_trim(*name);
	value->p = colon + 1;
	value->len = (size_t) (line.p + line.len - value->p);
	*value = span_trim(*value);
	return name->len > 0;
}

static bool name_is(struct span name, const char *full, const char *compact)
{
	return span_ieq(name, full) || (compact && span_ieq(name, compact));
}

/* Where the value of the parameter word= in s starts: the first word (any
 * case) at the start of s or after one of seps, then '=' with blanks
 * around it.  NULL when there is none. */
static const uint8_t *param_value(struct span s, const char *word, const char *seps)
{
	const size_t wlen = strlen(word);
	const uint8_t *end = s.p + s.len, *q, *v;

	for (q = s.p; q + wlen <= end; q++) {
		if (strncasecmp((const char *) q, word, wlen) != 0 ||
		    (q > s.p && (q[-1] == '\0' || !strchr(seps, q[-1]))))
			continue;
		v = q + wlen;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		if (v == end || *v != '=')
			continue;
		v++;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		return v;
	}
	return NULL;
}

/* Authorization: Digest username="a", ..., response="<32 hex>" — the
 * response, with the nonce, allows an offline guess of the password. */
static const uint8_t *auth_response_value(struct span line, const uint8_t **value_end)
{
	const uint8_t *end = line.p + line.len, *v, *ve;

	v = param_value(line, "response", " ,\t");
	if (!v)
		return NULL;
	ve = v;
	if (ve < end && *ve == '"') {
		ve++;
		while (ve < end && *ve != '"')
			ve++;
		if (ve < end)
			ve++;
	} else {
		while (ve < end && *ve != ',' && *ve != ' ' && *ve != '\t')
			ve++;
	}
	*value_end = ve;
	return v;
}

static void out_auth_line(struct out *o, struct span line)
{
	const uint8_t *v, *ve = NULL;

	v = auth_response_value(line, &ve);
	if (!v) {
		out_head_line(o, line.p, line.len);
		return;
	}
	if (o->full || o->len + line.len + 16 > TRACE_TEXT_MAX) {
		o->full = true;
		o->hidden += line.len;
		return;
	}
	out_add(o, (const char *) line.p, (size_t) (v - line.p));
	out_add(o, "\"withheld\"", 10);
	out_add(o, (const char *) ve, (size_t) (line.p + line.len - ve));
	out_add(o, "\n", 1);
}

static void head_take(struct head *h, struct span name, struct span value)
{
	if (name_is(name, "Content-Type", "c"))
		h->content_type = value;
	if (name_is(name, "Content-Length", "l")) {
		h->content_length = value;
		h->has_length = true;
		h->n_lengths++;
	}
}

/* Reads the start line and the header lines, writing the ones that are
 * text.  Returns false when there is no well-formed start line. */
static bool head_parse(const uint8_t *msg, size_t len, struct head *h, struct out *o)
{
	size_t off = 0, n, next;

	memset(h, 0, sizeof(*h));
	if (!line_end(msg, len, &n, &next) || !start_line_valid(msg, n))
		return false;
	h->start = (struct span) { msg, n };
	out_head_line(o, msg, n);
	off = next;
	h->after_start = next;
	h->out_after_start = o->len;

	while (off < len) {
		struct span line, name, value;

		if (!line_end(msg + off, len - off, &n, &next))
			return true;	/* no end of the head: incomplete */
		line = (struct span) { msg + off, n };
		off += next;
		if (n == 0) {
			h->complete = true;
			h->body_off = off;
			return true;
		}
		if (!line_is_text(line.p, line.len)) {
			if (o->full || o->len + 64 > TRACE_TEXT_MAX) {
				o->full = true;
				o->hidden += n;
			} else {
				out_printf(o, "[header line withheld: %zu bytes, not text]\n", n);
			}
			continue;
		}
		if (line.p[0] == ' ' || line.p[0] == '\t' || !header_split(line, &name, &value)) {
			out_head_line(o, line.p, line.len);	/* folded, or no colon */
			continue;
		}
		head_take(h, name, value);
		if (name_is(name, "Authorization", NULL) ||
		    name_is(name, "Proxy-Authorization", NULL))
			out_auth_line(o, line);
		else
			out_head_line(o, line.p, line.len);
	}
	return true;
}

/* Content-Length as a number; false when it is not one. */
static bool length_value(struct span v, size_t *out)
{
	size_t i, n = 0;

	if (v.len == 0 || v.len > 10)
		return false;
	for (i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		n = n * 10 + (size_t) (v.p[i] - '0');
	}
	*out = n;
	return true;
}

/* ---------- the body ---------- */

/* The media type of a Content-Type value, without parameters. */
static struct span media_type(struct span ct)
{
	const uint8_t *semi;

	if (ct.len == 0)
		return ct;
	semi = memchr(ct.p, ';', ct.len);
	if (semi)
		ct.len = (size_t) (semi - ct.p);
	return span_trim(ct);
}

/* boundary= of a Content-Type value (quoted or token). */
static bool boundary_of(struct span ct, struct span *b)
{
	const uint8_t *end = ct.p + ct.len, *v, *ve;

	v = param_value(ct, "boundary", "; \t");
	if (!v)
		return false;
	if (v < end && *v == '"') {
		ve = memchr(v + 1, '"', (size_t) (end - v - 1));
		if (!ve)
			return false;
		*b = (struct span) { v + 1, (size_t) (ve - v - 1) };
	} else {
		ve = v;
		while (ve < end && *ve != ';' && *ve != ' ' && *ve != '\t')
			ve++;
		*b = (struct span) { v, (size_t) (ve - v) };
	}
	return b->len > 0 && b->len <= TRACE_BOUNDARY_MAX;
}

/* "--boundary" at the start of a line at or after from; its offset. */
static bool find_delimiter(struct span body, size_t from, struct span b, size_t *at)
{
	size_t i;

	for (i = from; i + 2 + b.len <= body.len; i++) {
		if ((i == 0 || body.p[i - 1] == '\n') && body.p[i] == '-' &&
		    body.p[i + 1] == '-' && memcmp(body.p + i + 2, b.p, b.len) == 0) {
			*at = i;
			return true;
		}
	}
	return false;
}

/* A part's Content-Type, by name from the known list only. */
static const char *part_type_name(struct span headers)
{
	size_t off = 0, n, next, i;

	while (off < headers.len && line_end(headers.p + off, headers.len - off, &n, &next)) {
		struct span line = { headers.p + off, n }, name, value;

		off += next;
		if (!header_split(line, &name, &value) || !name_is(name, "Content-Type", "c"))
			continue;
		value = media_type(value);
		for (i = 0; i < sizeof(known_part_types) / sizeof(known_part_types[0]); i++)
			if (span_ieq(value, known_part_types[i]))
				return known_part_types[i];
		return "other type";
	}
	return "no type";
}

/* A part: its MIME headers up to the first empty line, then its content
 * (RFC 2046 §5.1.1); a part that opens with an empty line has no headers. */
static void part_split(struct span part, struct span *headers, struct span *content)
{
	size_t i;

	*headers = (struct span) { part.p, 0 };
	*content = part;
	for (i = 0; i < part.len; i++) {
		size_t n = 0;

		if (part.p[i] == '\n')
			n = 1;
		else if (part.p[i] == '\r' && i + 1 < part.len && part.p[i + 1] == '\n')
			n = 2;
		if (n == 0)
			continue;
		if (i == 0 || (i >= 1 && part.p[i - 1] == '\n')) {
			headers->len = i;
			*content = (struct span) { part.p + i + n, part.len - i - n };
			return;
		}
		i += n - 1;
	}
}

static void out_part(struct out *o, unsigned index, struct span part)
{
	char hex[2 * SHA256_DIGEST_LEN + 1];
	struct span headers, content;
	struct iwdata_msg m;
	const char *type;

	part_split(part, &headers, &content);
	type = part_type_name(headers);
	fingerprint(content.p, content.len, hex);
	out_printf(o, "[  part %u: %s, %zu bytes, sha256 %s]\n", index, type, content.len, hex);
	if (strcmp(type, TRACE_IWDATA_TYPE) != 0)
		return;

	/* the payload IE's fingerprint is the one events and the spool show */
	if (iwdata_decode(content.p, content.len, 0, &m) == 0) {
		fingerprint(m.payload.ptr, m.payload.len, hex);
		out_printf(o, "[    payload IE: %zu bytes, sha256 %s]\n", m.payload.len, hex);
	} else {
		out_printf(o, "[    payload IE: not decodable]\n");
	}
	memset(&m, 0, sizeof(m));
}

/* Lists the parts of a multipart body (RFC 2046 §5.1); a summary line
 * when the structure is not what it should be. */
static void out_parts(struct out *o, struct span body, struct span b)
{
	size_t at, next_at, start;
	unsigned index = 0, unlisted = 0;

	if (!find_delimiter(body, 0, b, &at)) {
		out_printf(o, "[  parts: no boundary delimiter found]\n");
		return;
	}
	for (;;) {
		size_t end;

		start = at + 2 + b.len;
		if (start + 2 <= body.len && body.p[start] == '-' && body.p[start + 1] == '-')
			return;	/* the close delimiter */
		/* the rest of the delimiter line (transport padding) */
		while (start < body.len && body.p[start] != '\n')
			start++;
		if (start < body.len)
			start++;
		if (!find_delimiter(body, start, b, &next_at)) {
			out_printf(o, "[  parts: no close delimiter after part %u]\n", index);
			return;
		}
		/* the CRLF before the next delimiter belongs to it */
		end = next_at;
		if (end > start && body.p[end - 1] == '\n')
			end--;
		if (end > start && body.p[end - 1] == '\r')
			end--;
		if (++index <= TRACE_MAX_PARTS)
			out_part(o, index, (struct span) { body.p + start, end - start });
		else
			unlisted++;
		at = next_at;
	}
	if (unlisted)
		out_printf(o, "[  %u more parts not listed]\n", unlisted);
}

static void out_body(struct out *o, const struct head *h, struct span body)
{
	char hex[2 * SHA256_DIGEST_LEN + 1];
	struct span type = media_type(h->content_type), b;
	char shown[256];

	if (type.len == 0 || type.len >= sizeof(shown) || !line_is_text(type.p, type.len))
		snprintf(shown, sizeof(shown), "no type");
	else
		snprintf(shown, sizeof(shown), "%.*s", (int) type.len, (const char *) type.p);

	fingerprint(body.p, body.len, hex);
	out_printf(o, "[body: %s, %zu bytes, sha256 %s]\n", shown, body.len, hex);
	if (type.len > 10 && strncasecmp((const char *) type.p, "multipart/", 10) == 0 &&
	    boundary_of(h->content_type, &b))
		out_parts(o, body, b);
}

/* What follows the head, by Content-Length (or the datagram's end). */
static void out_rest(struct out *o, const struct head *h, const uint8_t *msg,
		     size_t len, bool stream)
{
	struct span rest = { msg + h->body_off, len - h->body_off };
	size_t clen;

	if (h->n_lengths > 1 ||
	    (h->has_length && !length_value(h->content_length, &clen))) {
		if (rest.len)
			out_printf(o, "[body withheld (%zu bytes, unparsed: bad content-length)]\n",
				   rest.len);
		return;
	}
	if (!h->has_length) {
		if (stream && rest.len) {
			out_printf(o, "[body withheld (%zu bytes, unparsed: no content-length "
				   "on a stream transport)]\n", rest.len);
			return;
		}
		clen = rest.len;
	}
	if (clen > rest.len) {
		out_printf(o, "[body withheld (%zu of %zu bytes, truncated)]\n", rest.len, clen);
		return;
	}
	if (clen > 0)
		out_body(o, h, (struct span) { rest.p, clen });
	if (rest.len > clen)
		out_printf(o, "[%zu bytes after the message withheld]\n", rest.len - clen);
}

static bool only_line_ends(const uint8_t *msg, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (msg[i] != '\r' && msg[i] != '\n')
			return false;
	return true;
}

int trace_sanitise(const uint8_t *msg, size_t len, bool stream, char **out)
{
	struct out o = { 0 };
	struct head h;

	*out = NULL;
	if (len > 0 && only_line_ends(msg, len)) {
		out_printf(&o, "[keep-alive: %zu bytes]\n", len);
	} else if (!head_parse(msg, len, &h, &o)) {
		o.len = 0;	/* nothing of a message without a start line */
		if (o.buf)
			o.buf[0] = '\0';
		out_printf(&o, "[message withheld (%zu bytes, unparsed: no sip start line)]\n", len);
	} else if (!h.complete) {
		/* where the head ends is unknown: its lines may be body bytes */
		o.len = h.out_after_start;
		if (o.buf)
			o.buf[o.len] = '\0';
		out_printf(&o, "[body withheld (%zu bytes, unparsed: no end of the headers)]\n",
			   len - h.after_start);
	} else {
		if (o.full)
			out_printf(&o, "[%zu more header bytes not shown]\n", o.hidden);
		out_rest(&o, &h, msg, len, stream);
	}
	if (!o.failed && !o.buf)
		out_add(&o, "", 0);
	if (o.failed) {
		free(o.buf);
		return -ENOMEM;
	}
	*out = o.buf;
	return 0;
}
