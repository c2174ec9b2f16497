/*
 * multipart/mixed body codec.
 *
 * Splitting is done by sofia-sip's msg_multipart_parse().  That parser is
 * lax and, on some inputs, unsafe, so framing_scan() first walks the body
 * the same way it does and rejects what it would mis-handle:
 *  - a NUL in a part's header block trips an assert(m > 0) (abort) or, in a
 *    build without asserts, an endless loop;
 *  - a part without a blank line after its headers leaves the last header
 *    value unterminated after the parser restores the byte it borrowed;
 *  - "\n--boundary" anywhere counts as a delimiter, whatever follows it,
 *    and a bare LF before it is accepted;
 *  - the leading delimiter is never checked for "--" (no parts at all).
 * After parsing, each payload sofia-sip returns is checked against the
 * span the scan computed, so both must agree on every byte.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1		/* memmem */
#endif

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/msg_types.h>
#include <sofia-sip/msg_protos.h>
#include <sofia-sip/msg_mime.h>
#include <sofia-sip/msg_mime_protos.h>

#include "multipart.h"

/* RFC 2046 bchars; the last character may not be a space */
#define BOUNDARY_CHARS \
	"'()+_,-./:=?0123456789" \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz "

/* "\n--" boundary, the string sofia-sip searches for */
#define LF_DASH_MAX (3 + MULTIPART_BOUNDARY_MAX)

/* Zero bytes after the parser's copy of the body: sofia-sip peeks past
 * the end (two bytes after a delimiter, a dash-boundary at the start). */
#define PARSE_PAD (LF_DASH_MAX + 8)

#define BUILD_BOUNDARY_PREFIX "lmrsec-"
#define BUILD_BOUNDARY_LEN (sizeof(BUILD_BOUNDARY_PREFIX) - 1 + 16)
#define BUILD_BOUNDARY_TRIES 64

struct part_span {
	size_t start;		/* first byte after the delimiter line */
	size_t body;		/* first byte after the blank line */
	size_t end;		/* the CR of the next delimiter */
};

struct framing {
	char lf_dash[LF_DASH_MAX + 1];
	size_t lf_dash_len;
	size_t n_parts;
	struct part_span part[MULTIPART_MAX_PARTS];
};

static int boundary_check(const char *b)
{
	size_t n;

	if (!b || !b[0])
		return MULTIPART_ERR_NO_BOUNDARY;

	n = strnlen(b, MULTIPART_BOUNDARY_MAX + 1);
	if (n > MULTIPART_BOUNDARY_MAX)
		return MULTIPART_ERR_BAD_BOUNDARY;

	if (strspn(b, BOUNDARY_CHARS) != n || b[n - 1] == ' ')
		return MULTIPART_ERR_BAD_BOUNDARY;

	return 0;
}

static bool starts_with(const uint8_t *p, size_t len, const char *s)
{
	size_t n = strlen(s);

	return len >= n && memcmp(p, s, n) == 0;
}

static size_t spaces_len(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] == ' ')
		i++;

	return i;
}

/*
 * Where the first dash-boundary ends, found as sofia-sip finds it: at the
 * very start of the body, else at the first "\n--boundary".
 */
static int framing_first(const struct framing *f, const uint8_t *body,
			 size_t len, size_t *pos)
{
	const char *dash = f->lf_dash + 1;
	size_t dash_len = f->lf_dash_len - 1;
	const uint8_t *p;

	if (len == 0)
		return MULTIPART_ERR_BOUNDARY_NOT_FOUND;

	if (starts_with(body, len, dash)) {
		*pos = dash_len;
		return 0;
	}

	p = memmem(body, len, f->lf_dash, f->lf_dash_len);
	if (!p)
		return MULTIPART_ERR_BOUNDARY_NOT_FOUND;

	if (p == body || p[-1] != '\r')
		return MULTIPART_ERR_MALFORMED;

	*pos = (size_t) (p - body) + f->lf_dash_len;
	return 0;
}

/* RFC 2046: close-delimiter transport-padding [CRLF epilogue] */
static bool framing_closed(const uint8_t *body, size_t len, size_t pos)
{
	if (!starts_with(body + pos, len - pos, "--"))
		return false;

	pos += 2;
	while (pos < len && (body[pos] == ' ' || body[pos] == '\t'))
		pos++;

	return pos == len || starts_with(body + pos, len - pos, "\r\n");
}

/*
 * The part's headers must be CRLF lines without NUL, ended by a blank line:
 * sofia-sip ends the header block at any lone CR or LF and aborts on NUL.
 */
static int part_split_headers(const uint8_t *p, size_t len, size_t *body_off)
{
	const uint8_t *blank;
	size_t hlen, i;

	if (starts_with(p, len, "\r\n")) {
		*body_off = 2;
		return 0;
	}

	blank = memmem(p, len, "\r\n\r\n", 4);
	if (!blank)
		return MULTIPART_ERR_MALFORMED;

	/* header lines with their CRLFs; the blank line's CRLF follows */
	hlen = (size_t) (blank - p) + 2;
	for (i = 0; i < hlen; i++) {
		if (p[i] == '\0')
			return MULTIPART_ERR_MALFORMED;
		if (p[i] == '\r' && p[i + 1] != '\n')
			return MULTIPART_ERR_MALFORMED;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return MULTIPART_ERR_MALFORMED;
	}

	*body_off = hlen + 2;
	return 0;
}

/* One part starting at *pos; on return *pos is past the next boundary. */
static int framing_part(struct framing *f, const uint8_t *body, size_t len,
			size_t *pos)
{
	struct part_span *span;
	const uint8_t *next;
	size_t start = *pos, end, body_off;
	int r;

	next = memmem(body + start, len - start, f->lf_dash, f->lf_dash_len);
	if (!next)
		return MULTIPART_ERR_NO_CLOSE_DELIMITER;

	end = (size_t) (next - body);
	if (end == start || body[end - 1] != '\r')
		return MULTIPART_ERR_MALFORMED;
	end--;

	if (f->n_parts == MULTIPART_MAX_PARTS)
		return MULTIPART_ERR_TOO_MANY_PARTS;

	r = part_split_headers(body + start, end - start, &body_off);
	if (r < 0)
		return r;

	span = &f->part[f->n_parts++];
	span->start = start;
	span->body = start + body_off;
	span->end = end;

	*pos = end + 1 + f->lf_dash_len;
	return 0;
}

/*
 * Walk the delimiters the way msg_multipart_parse() will, accepting only
 * what RFC 2046 allows and the parser handles safely.
 */
static int framing_scan(const char *boundary, const uint8_t *body,
			size_t len, struct framing *f)
{
	size_t pos;
	int r;

	memset(f, 0, sizeof(*f));
	f->lf_dash_len = (size_t) snprintf(f->lf_dash, sizeof(f->lf_dash),
					   "\n--%s", boundary);

	r = framing_first(f, body, len, &pos);
	if (r < 0)
		return r;

	if (framing_closed(body, len, pos))
		return MULTIPART_ERR_NO_PARTS;

	while (!framing_closed(body, len, pos)) {
		/* transport-padding: sofia-sip skips spaces only */
		pos += spaces_len(body + pos, len - pos);
		if (pos == len)
			return MULTIPART_ERR_NO_CLOSE_DELIMITER;
		if (!starts_with(body + pos, len - pos, "\r\n"))
			return MULTIPART_ERR_MALFORMED;
		pos += 2;

		r = framing_part(f, body, len, &pos);
		if (r < 0)
			return r;
	}

	return 0;
}

static char *media_type_lower(const char *type)
{
	char *s = strdup(type);
	size_t i;

	for (i = 0; s && s[i]; i++)
		s[i] = (char) tolower((unsigned char) s[i]);

	return s;
}

/* We hand out the bytes as they are; anything encoded would need decoding. */
static bool transfer_encoding_is_identity(const msg_multipart_t *mp)
{
	const char *cte;

	if (!mp->mp_content_transfer_encoding)
		return true;

	cte = mp->mp_content_transfer_encoding->g_string;
	if (!cte)
		return false;

	return !strcasecmp(cte, "binary") || !strcasecmp(cte, "8bit") ||
		!strcasecmp(cte, "7bit");
}

/* The payload sofia-sip found must be exactly the span the scan found. */
static bool payload_matches(const msg_multipart_t *mp, const char *buf,
			    const struct part_span *span)
{
	size_t want = span->end - span->body;

	if (!mp->mp_payload)
		return want == 0;

	return mp->mp_payload->pl_data == buf + span->body &&
		mp->mp_payload->pl_len == want;
}

static int part_copy_out(const msg_multipart_t *mp, const char *buf,
			 const struct part_span *span, const uint8_t *body,
			 struct multipart_part *out)
{
	size_t len = span->end - span->body;

	if (mp->mp_error)
		return MULTIPART_ERR_PART_BAD_HEADER;

	if (!mp->mp_content_type || !mp->mp_content_type->c_type)
		return MULTIPART_ERR_PART_NO_CONTENT_TYPE;

	if (!transfer_encoding_is_identity(mp))
		return MULTIPART_ERR_PART_BAD_ENCODING;

	if (!payload_matches(mp, buf, span))
		return MULTIPART_ERR_MALFORMED;

	out->content_type = media_type_lower(mp->mp_content_type->c_type);
	out->body = malloc(len + 1);
	if (!out->content_type || !out->body)
		return MULTIPART_ERR_NO_MEMORY;

	/* from the caller's const buffer, which the parser never wrote to */
	if (len)
		memcpy(out->body, body + span->body, len);
	out->body[len] = '\0';
	out->len = len;
	return 0;
}

static int parts_copy_out(const msg_multipart_t *all, const char *buf,
			  const struct framing *f, const uint8_t *body,
			  struct multipart *out)
{
	const msg_multipart_t *mp;
	size_t i = 0;
	int r;

	for (mp = all; mp; mp = mp->mp_next, i++) {
		if (i == f->n_parts)
			return MULTIPART_ERR_MALFORMED;

		/* counted first so that clear frees a half-copied part */
		out->n_parts = i + 1;
		r = part_copy_out(mp, buf, &f->part[i], body, &out->part[i]);
		if (r < 0)
			return r;
	}

	return i == f->n_parts ? 0 : MULTIPART_ERR_MALFORMED;
}

/*
 * Run msg_multipart_parse() over a private, padded copy (it writes NULs
 * into its input) inside a temporary home; everything is gone on return.
 */
static int sofia_split(const char *boundary, const uint8_t *body, size_t len,
		       const struct framing *f, struct multipart *out)
{
	su_home_t home[1] = { SU_HOME_INIT(home) };
	msg_content_type_t *c;
	msg_multipart_t *all;
	msg_payload_t pl[1];
	char *buf;
	int r = MULTIPART_ERR_NO_MEMORY;

	buf = calloc(1, len + PARSE_PAD);
	if (!buf)
		return MULTIPART_ERR_NO_MEMORY;

	if (len)
		memcpy(buf, body, len);

	/* boundary_check() allowed no '"' or '\\', so quoting is safe */
	c = msg_content_type_format(home, "multipart/mixed;boundary=\"%s\"",
				    boundary);
	if (c) {
		msg_payload_init(pl);
		pl->pl_data = buf;
		pl->pl_len = len;

		all = msg_multipart_parse(home, c, pl);
		if (all)
			r = parts_copy_out(all, buf, f, body, out);
		else
			r = MULTIPART_ERR_MALFORMED;
	}

	su_home_deinit(home);
	explicit_bzero(buf, len + PARSE_PAD);
	free(buf);
	return r;
}

int multipart_split(const char *boundary, const uint8_t *body, size_t len,
		    struct multipart *out)
{
	struct framing f;
	int r;

	if (!out)
		return MULTIPART_ERR_INVALID_ARGUMENT;

	memset(out, 0, sizeof(*out));

	if (!body && len)
		return MULTIPART_ERR_INVALID_ARGUMENT;

	r = boundary_check(boundary);
	if (r < 0)
		return r;

	if (len > MULTIPART_MAX_BODY)
		return MULTIPART_ERR_TOO_LARGE;

	r = framing_scan(boundary, body, len, &f);
	if (r < 0)
		return r;

	r = sofia_split(boundary, body, len, &f, out);
	if (r < 0)
		multipart_clear(out);

	return r;
}

/* RFC 7230 tchar */
static bool is_tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		(c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static size_t token_len(const char *s)
{
	size_t n = 0;

	while (is_tchar(s[n]))
		n++;

	return n;
}

static const char *skip_lwsp(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;

	return s;
}

/* A parameter value, token or quoted-string; *value (malloc'd, unquoted)
 * only when value is not NULL. */
static int param_value(const char **s, char **value)
{
	const char *p = *s;
	char *v = NULL;
	size_t n = 0;

	if (value) {
		v = malloc(strlen(p) + 1);
		if (!v)
			return MULTIPART_ERR_NO_MEMORY;
	}

	if (*p != '"') {
		n = token_len(p);
		if (!n) {
			free(v);
			return MULTIPART_ERR_BAD_CONTENT_TYPE;
		}
		if (v)
			memcpy(v, p, n);
		p += n;
	} else {
		for (p++; *p && *p != '"'; p++, n++) {
			if (*p == '\\' && p[1])
				p++;
			if (v)
				v[n] = *p;
		}
		if (*p++ != '"') {
			free(v);
			return MULTIPART_ERR_BAD_CONTENT_TYPE;
		}
	}

	if (v) {
		v[n] = '\0';
		*value = v;
	}

	*s = p;
	return 0;
}

/* One ";name=value"; *s is past it. */
static int param_next(const char **s, char **boundary)
{
	const char *p = *s, *name;
	size_t name_len;
	char **value = NULL;
	int r;

	name = p;
	name_len = token_len(p);
	if (!name_len)
		return MULTIPART_ERR_BAD_CONTENT_TYPE;

	p = skip_lwsp(p + name_len);
	if (*p++ != '=')
		return MULTIPART_ERR_BAD_CONTENT_TYPE;
	p = skip_lwsp(p);

	if (name_len == 8 && !strncasecmp(name, "boundary", 8)) {
		if (*boundary)
			return MULTIPART_ERR_BAD_BOUNDARY;
		value = boundary;
	}

	r = param_value(&p, value);
	if (r < 0)
		return r;

	*s = skip_lwsp(p);
	return 0;
}

static int content_type_params(const char *s, char **boundary)
{
	size_t n;
	int r;

	s = skip_lwsp(s);
	n = token_len(s);
	if (!n || s[n] != '/' || !token_len(s + n + 1))
		return MULTIPART_ERR_BAD_CONTENT_TYPE;
	s = skip_lwsp(s + n + 1 + token_len(s + n + 1));

	while (*s) {
		if (*s++ != ';')
			return MULTIPART_ERR_BAD_CONTENT_TYPE;
		s = skip_lwsp(s);
		if (!*s)
			break;	/* a trailing ';' is harmless */

		r = param_next(&s, boundary);
		if (r < 0)
			return r;
	}

	return 0;
}

int multipart_boundary_from_content_type(const char *content_type,
					 char **boundary)
{
	char *b = NULL;
	int r;

	if (!boundary)
		return MULTIPART_ERR_INVALID_ARGUMENT;

	*boundary = NULL;

	if (!content_type)
		return MULTIPART_ERR_BAD_CONTENT_TYPE;

	r = content_type_params(content_type, &b);
	if (r == 0)
		r = boundary_check(b);

	if (r < 0) {
		free(b);
		return r;
	}

	*boundary = b;
	return 0;
}

const struct multipart_part *multipart_find(const struct multipart *m,
					    const char *media_type)
{
	size_t i;

	if (!m || !media_type)
		return NULL;

	for (i = 0; i < m->n_parts && i < MULTIPART_MAX_PARTS; i++)
		if (m->part[i].content_type &&
		    !strcasecmp(m->part[i].content_type, media_type))
			return &m->part[i];

	return NULL;
}

/* A value we may write after "Content-Type: ": printable, one line. */
static int build_check_content_type(const char *ct)
{
	size_t i;

	if (!ct || !ct[0])
		return MULTIPART_ERR_PART_NO_CONTENT_TYPE;

	for (i = 0; ct[i]; i++)
		if ((unsigned char) ct[i] < 0x20 || (unsigned char) ct[i] > 0x7e)
			return MULTIPART_ERR_BAD_CONTENT_TYPE;

	if (!strchr(ct, '/'))
		return MULTIPART_ERR_BAD_CONTENT_TYPE;

	return 0;
}

/* Exact output size for a boundary of BUILD_BOUNDARY_LEN characters. */
static int build_size(const struct multipart_part *parts, size_t n,
		      size_t *size)
{
	size_t i, total;
	int r;

	if (!parts)
		return MULTIPART_ERR_INVALID_ARGUMENT;
	if (n == 0)
		return MULTIPART_ERR_NO_PARTS;
	if (n > MULTIPART_MAX_PARTS)
		return MULTIPART_ERR_TOO_MANY_PARTS;

	/* "--" b "--\r\n" */
	total = 2 + BUILD_BOUNDARY_LEN + 4;

	for (i = 0; i < n; i++) {
		r = build_check_content_type(parts[i].content_type);
		if (r < 0)
			return r;
		if (!parts[i].body && parts[i].len)
			return MULTIPART_ERR_INVALID_ARGUMENT;

		/* each term is bounded, so the sum cannot wrap */
		if (parts[i].len > MULTIPART_MAX_BODY ||
		    strlen(parts[i].content_type) > MULTIPART_MAX_BODY)
			return MULTIPART_ERR_TOO_LARGE;

		/* "--" b "\r\nContent-Type: " ct "\r\n\r\n" body "\r\n" */
		total += 2 + BUILD_BOUNDARY_LEN + 16 +
			strlen(parts[i].content_type) + 4 + parts[i].len + 2;
		if (total > MULTIPART_MAX_BODY)
			return MULTIPART_ERR_TOO_LARGE;
	}

	*size = total;
	return 0;
}

/* splitmix64: spreads a counter into well-mixed, distinct values. */
static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static bool build_boundary_unused(const struct multipart_part *parts,
				  size_t n, const char *b)
{
	size_t i, blen = strlen(b);

	for (i = 0; i < n; i++) {
		if (parts[i].len && memmem(parts[i].body, parts[i].len, b, blen))
			return false;
		if (strstr(parts[i].content_type, b))
			return false;
	}

	return true;
}

/*
 * Deterministic candidates, re-picked while one occurs in a part.  The
 * candidate cannot overlap itself ("\r\n--" starts it once), so a part
 * ending in a near-boundary cannot join with the delimiter after it.
 */
static int build_pick_boundary(const struct multipart_part *parts, size_t n,
			       char b[BUILD_BOUNDARY_LEN + 1])
{
	uint64_t i;

	for (i = 0; i < BUILD_BOUNDARY_TRIES; i++) {
		snprintf(b, BUILD_BOUNDARY_LEN + 1,
			 BUILD_BOUNDARY_PREFIX "%016" PRIx64, mix64(i));
		if (build_boundary_unused(parts, n, b))
			return 0;
	}

	return MULTIPART_ERR_NO_BOUNDARY;
}

static uint8_t *put(uint8_t *p, const void *s, size_t n)
{
	if (n)
		memcpy(p, s, n);

	return p + n;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
	return put(p, s, strlen(s));
}

static size_t build_write(const struct multipart_part *parts, size_t n,
			  const char *b, uint8_t *out)
{
	uint8_t *p = out;
	size_t i;

	for (i = 0; i < n; i++) {
		p = put_str(p, "--");
		p = put_str(p, b);
		p = put_str(p, "\r\nContent-Type: ");
		p = put_str(p, parts[i].content_type);
		p = put_str(p, "\r\n\r\n");
		p = put(p, parts[i].body, parts[i].len);
		p = put_str(p, "\r\n");
	}

	p = put_str(p, "--");
	p = put_str(p, b);
	p = put_str(p, "--\r\n");

	return (size_t) (p - out);
}

int multipart_build(const struct multipart_part *parts, size_t n,
		    uint8_t **body, size_t *len, char **boundary)
{
	char b[BUILD_BOUNDARY_LEN + 1];
	size_t size;
	uint8_t *out;
	char *bdup;
	int r;

	if (!body || !len || !boundary)
		return MULTIPART_ERR_INVALID_ARGUMENT;

	*body = NULL;
	*len = 0;
	*boundary = NULL;

	r = build_size(parts, n, &size);
	if (r < 0)
		return r;

	r = build_pick_boundary(parts, n, b);
	if (r < 0)
		return r;

	out = malloc(size);
	bdup = strdup(b);
	if (!out || !bdup) {
		free(out);
		free(bdup);
		return MULTIPART_ERR_NO_MEMORY;
	}

	*len = build_write(parts, n, b, out);
	*body = out;
	*boundary = bdup;
	return 0;
}

void multipart_clear(struct multipart *m)
{
	size_t i;

	if (!m)
		return;

	for (i = 0; i < m->n_parts && i < MULTIPART_MAX_PARTS; i++) {
		if (m->part[i].body)
			explicit_bzero(m->part[i].body, m->part[i].len);
		free(m->part[i].body);
		free(m->part[i].content_type);
	}

	memset(m, 0, sizeof(*m));
}

const char *multipart_strerror(int err)
{
	switch ((enum multipart_error) err) {
	case MULTIPART_ERR_NO_BOUNDARY:
		return "Multipart boundary missing";
	case MULTIPART_ERR_TOO_LARGE:
		return "Multipart body too large";
	case MULTIPART_ERR_MALFORMED:
		return "Malformed multipart body";
	case MULTIPART_ERR_TOO_MANY_PARTS:
		return "Too many body parts";
	case MULTIPART_ERR_PART_NO_CONTENT_TYPE:
		return "Body part without Content-Type";
	case MULTIPART_ERR_NO_MEMORY:
		return "Out of memory";
	case MULTIPART_ERR_BAD_BOUNDARY:
		return "Invalid multipart boundary";
	case MULTIPART_ERR_BOUNDARY_NOT_FOUND:
		return "Multipart boundary not found in body";
	case MULTIPART_ERR_NO_CLOSE_DELIMITER:
		return "Multipart close delimiter missing";
	case MULTIPART_ERR_NO_PARTS:
		return "Multipart body has no parts";
	case MULTIPART_ERR_PART_BAD_HEADER:
		return "Malformed body part header";
	case MULTIPART_ERR_PART_BAD_ENCODING:
		return "Unsupported Content-Transfer-Encoding";
	case MULTIPART_ERR_BAD_CONTENT_TYPE:
		return "Malformed Content-Type";
	case MULTIPART_ERR_INVALID_ARGUMENT:
		return "Invalid argument";
	}

	return "Unknown multipart error";
}
