/*
 * Unit tests for the multipart/mixed body codec (agent/multipart.c).
 *
 * Built and run by hand from the top of the tree with:
 *   gcc -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes \
 *       -Wstrict-prototypes -Werror -g -Iagent \
 *       tests/unit/test-multipart.c agent/multipart.c \
 *       $(pkg-config --cflags --libs sofia-sip-ua cmocka) -o test-multipart
 * and the same with -fsanitize=address,undefined -fno-omit-frame-pointer
 * -fno-sanitize-recover=undefined added, run with
 * ASAN_OPTIONS=detect_leaks=1.
 */
#define _GNU_SOURCE 1		/* memmem */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

#define B		"xyz-boundary"
#define XML_TYPE	"application/vnd.3gpp.mcptt-info+xml"
#define IWD_TYPE	"application/vnd.3gpp.interworking-data"
#define XML		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"/>"

/* A body under construction. */
struct body {
	uint8_t *p;
	size_t len;
};

static void add(struct body *b, const void *data, size_t n)
{
	b->p = realloc(b->p, b->len + n + 1);
	assert_non_null(b->p);
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void add_str(struct body *b, const char *s)
{
	add(b, s, strlen(s));
}

static void body_free(struct body *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

/* "--" B CRLF "Content-Type: " type CRLF CRLF data CRLF */
static void add_part(struct body *b, const char *type, const void *data,
		     size_t n)
{
	add_str(b, "--" B "\r\nContent-Type: ");
	add_str(b, type);
	add_str(b, "\r\n\r\n");
	add(b, data, n);
	add_str(b, "\r\n");
}

static void add_close(struct body *b)
{
	add_str(b, "--" B "--\r\n");
}

static int split_str(const char *s, struct multipart *m)
{
	return multipart_split(B, (const uint8_t *) s, strlen(s), m);
}

/* Every byte value, then lines that look like delimiters but are not. */
static void binary_payload(struct body *b)
{
	static const char *near[] = {
		"\r\n--x", "\r\n--xyz-boundar", "\r\n---xyz-boundary",
		"a--xyz-boundary", "\r\n--XYZ-BOUNDARY", "\r\n--",
		"\r\n--\r\n", "x--xyz-boundary--", "\r\n-xyz-boundary",
		"\r\r\n--xyz", "\0\r\n--\0",
	};
	uint8_t all[256];
	size_t i;

	for (i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t) i;
	add(b, all, sizeof(all));

	for (i = 0; i < sizeof(near) / sizeof(near[0]); i++)
		add_str(b, near[i]);
	add(b, "\0\r\n--x\0", 7);
	add(b, all, sizeof(all));
}

static void test_split_two_parts_keeps_binary_intact(void **state)
{
	struct body bin = { 0 }, msg = { 0 };
	struct multipart m;

	(void) state;
	binary_payload(&bin);
	add_part(&msg, XML_TYPE, XML, strlen(XML));
	add_part(&msg, IWD_TYPE, bin.p, bin.len);
	add_close(&msg);

	assert_int_equal(multipart_split(B, msg.p, msg.len, &m), 0);
	assert_int_equal(m.n_parts, 2);
	assert_string_equal(m.part[0].content_type, XML_TYPE);
	assert_int_equal(m.part[0].len, strlen(XML));
	assert_memory_equal(m.part[0].body, XML, strlen(XML));
	assert_string_equal(m.part[1].content_type, IWD_TYPE);
	assert_int_equal(m.part[1].len, bin.len);
	assert_memory_equal(m.part[1].body, bin.p, bin.len);

	multipart_clear(&m);
	body_free(&bin);
	body_free(&msg);
}

static void test_split_lowercases_content_type_and_strips_params(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\n"
				   "content-type:  Application/VND.3GPP.MCPTT-Info+XML ; charset=UTF-8\r\n"
				   "\r\n" XML "\r\n--" B "--\r\n", &m), 0);
	assert_int_equal(m.n_parts, 1);
	assert_string_equal(m.part[0].content_type, XML_TYPE);
	multipart_clear(&m);
}

static void test_split_ignores_preamble_and_epilogue(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("This is a preamble.\r\n--not-it\r\n"
				   "--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "hello\r\n--" B "--\r\n"
				   "epilogue\r\n--" B "\r\nignored", &m), 0);
	assert_int_equal(m.n_parts, 1);
	assert_int_equal(m.part[0].len, 5);
	assert_memory_equal(m.part[0].body, "hello", 5);
	multipart_clear(&m);
}

static void test_split_accepts_transport_padding(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "   \r\nContent-Type: text/plain\r\n\r\n"
				   "hi\r\n--" B "--  ", &m), 0);
	assert_int_equal(m.n_parts, 1);
	assert_memory_equal(m.part[0].body, "hi", 2);
	multipart_clear(&m);
}

static void test_split_ignores_other_part_headers(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\n"
				   "Content-ID: <iwd@example.org>\r\n"
				   "Content-Disposition: render;handling=required\r\n"
				   "Content-Transfer-Encoding: binary\r\n"
				   "X-Unknown: whatever\r\n"
				   "Content-Type: " IWD_TYPE "\r\n"
				   "\r\n\x01\x02\r\n--" B "--\r\n", &m), 0);
	assert_int_equal(m.n_parts, 1);
	assert_string_equal(m.part[0].content_type, IWD_TYPE);
	assert_int_equal(m.part[0].len, 2);
	assert_memory_equal(m.part[0].body, "\x01\x02", 2);
	multipart_clear(&m);
}

static void test_split_empty_part_body(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "\r\n--" B "--\r\n", &m), 0);
	assert_int_equal(m.n_parts, 1);
	assert_int_equal(m.part[0].len, 0);
	assert_non_null(m.part[0].body);
	assert_int_equal(m.part[0].body[0], '\0');
	multipart_clear(&m);
}

static void many_parts(struct body *msg, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		add_part(msg, "text/plain", "p", 1);
	add_close(msg);
}

static void test_split_accepts_max_parts(void **state)
{
	struct body msg = { 0 };
	struct multipart m;

	(void) state;
	many_parts(&msg, MULTIPART_MAX_PARTS);
	assert_int_equal(multipart_split(B, msg.p, msg.len, &m), 0);
	assert_int_equal(m.n_parts, MULTIPART_MAX_PARTS);
	multipart_clear(&m);
	body_free(&msg);
}

static void test_split_rejects_too_many_parts(void **state)
{
	struct body msg = { 0 };
	struct multipart m;

	(void) state;
	many_parts(&msg, MULTIPART_MAX_PARTS + 1);
	assert_int_equal(multipart_split(B, msg.p, msg.len, &m),
			 MULTIPART_ERR_TOO_MANY_PARTS);
	body_free(&msg);
}

static void test_split_rejects_missing_close_delimiter(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "hello\r\n", &m),
			 MULTIPART_ERR_NO_CLOSE_DELIMITER);
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "hello\r\n--" B "\r\n", &m),
			 MULTIPART_ERR_NO_CLOSE_DELIMITER);
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "hello\r\n--" B, &m),
			 MULTIPART_ERR_NO_CLOSE_DELIMITER);
}

static void test_split_rejects_no_parts(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "--\r\n", &m), MULTIPART_ERR_NO_PARTS);
	assert_int_equal(split_str("preamble\r\n--" B "--", &m),
			 MULTIPART_ERR_NO_PARTS);
}

static void test_split_rejects_part_without_content_type(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-ID: <a@b>\r\n\r\n"
				   "data\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_PART_NO_CONTENT_TYPE);
	assert_int_equal(split_str("--" B "\r\n\r\ndata\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_PART_NO_CONTENT_TYPE);
}

static void test_split_rejects_boundary_not_in_body(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--other\r\nContent-Type: text/plain\r\n\r\n"
				   "x\r\n--other--\r\n", &m),
			 MULTIPART_ERR_BOUNDARY_NOT_FOUND);
	assert_int_equal(multipart_split(B, (const uint8_t *) "", 0, &m),
			 MULTIPART_ERR_BOUNDARY_NOT_FOUND);
}

static void test_split_rejects_empty_boundary(void **state)
{
	static const uint8_t body[] = "--\r\nContent-Type: a/b\r\n\r\nx\r\n----\r\n";
	struct multipart m;

	(void) state;
	assert_int_equal(multipart_split("", body, sizeof(body) - 1, &m),
			 MULTIPART_ERR_NO_BOUNDARY);
	assert_int_equal(multipart_split(NULL, body, sizeof(body) - 1, &m),
			 MULTIPART_ERR_NO_BOUNDARY);
}

static void test_split_rejects_invalid_boundary(void **state)
{
	static const uint8_t body[] = "--a\"b\r\n";
	char long_b[MULTIPART_BOUNDARY_MAX + 2];
	struct multipart m;

	(void) state;
	memset(long_b, 'a', sizeof(long_b) - 1);
	long_b[sizeof(long_b) - 1] = '\0';

	assert_int_equal(multipart_split("a\"b", body, sizeof(body) - 1, &m),
			 MULTIPART_ERR_BAD_BOUNDARY);
	assert_int_equal(multipart_split("ab ", body, sizeof(body) - 1, &m),
			 MULTIPART_ERR_BAD_BOUNDARY);
	assert_int_equal(multipart_split("a\r\nb", body, sizeof(body) - 1, &m),
			 MULTIPART_ERR_BAD_BOUNDARY);
	assert_int_equal(multipart_split(long_b, body, sizeof(body) - 1, &m),
			 MULTIPART_ERR_BAD_BOUNDARY);
}

/* One part whose whole body is exactly total bytes long. */
static void sized_body(struct body *msg, size_t total)
{
	static const char head[] = "--" B "\r\nContent-Type: a/b\r\n\r\n";
	static const char tail[] = "\r\n--" B "--\r\n";
	size_t fill = total - (sizeof(head) - 1) - (sizeof(tail) - 1);
	uint8_t *data = malloc(fill);

	assert_non_null(data);
	memset(data, 'a', fill);
	add_str(msg, head);
	add(msg, data, fill);
	add_str(msg, tail);
	free(data);
	assert_int_equal(msg->len, total);
}

static void test_split_rejects_body_too_large(void **state)
{
	struct body msg = { 0 };
	struct multipart m;

	(void) state;
	sized_body(&msg, MULTIPART_MAX_BODY + 1);
	assert_int_equal(multipart_split(B, msg.p, msg.len, &m),
			 MULTIPART_ERR_TOO_LARGE);
	body_free(&msg);
}

static void test_split_accepts_body_of_max_size(void **state)
{
	struct body msg = { 0 };
	struct multipart m;

	(void) state;
	sized_body(&msg, MULTIPART_MAX_BODY);
	assert_int_equal(multipart_split(B, msg.p, msg.len, &m), 0);
	assert_int_equal(m.n_parts, 1);
	multipart_clear(&m);
	body_free(&msg);
}

/* sofia-sip's parser aborts on this (assert in msg_multipart_parse). */
static void test_split_rejects_nul_in_part_header(void **state)
{
	static const char body[] = "--" B "\r\nContent-Type: a/b\0\r\n\r\n"
		"x\r\n--" B "--\r\n";
	static const char first[] = "--" B "\r\n\0\r\n\r\nx\r\n--" B "--\r\n";
	struct multipart m;

	(void) state;
	assert_int_equal(multipart_split(B, (const uint8_t *) body,
					 sizeof(body) - 1, &m),
			 MULTIPART_ERR_MALFORMED);
	assert_int_equal(multipart_split(B, (const uint8_t *) first,
					 sizeof(first) - 1, &m),
			 MULTIPART_ERR_MALFORMED);
}

static void test_split_rejects_part_without_blank_line(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n"
				   "--" B "--\r\n", &m), MULTIPART_ERR_MALFORMED);
	assert_int_equal(split_str("--" B "\r\n\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_MALFORMED);
}

static void test_split_rejects_text_after_boundary(void **state)
{
	struct multipart m;

	(void) state;
	/* RFC 2046: the boundary in its entirety after CRLF is a delimiter */
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "a\r\n--" B "xx\r\nb\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_MALFORMED);
	assert_int_equal(split_str("--" B "junk\r\nContent-Type: text/plain\r\n\r\n"
				   "a\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_MALFORMED);
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "a\r\n--" B "--junk", &m),
			 MULTIPART_ERR_MALFORMED);
}

/* sofia-sip splits at LF--boundary; we refuse rather than guess. */
static void test_split_rejects_bare_lf_before_boundary(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n\r\n"
				   "a\n--" B "\r\nb\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_MALFORMED);
	assert_int_equal(split_str("preamble\n--" B "\r\nContent-Type: a/b\r\n\r\n"
				   "b\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_MALFORMED);
}

static void test_split_rejects_lf_only_line_ends(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\nContent-Type: text/plain\n\n"
				   "hello\n--" B "--\n", &m),
			 MULTIPART_ERR_MALFORMED);
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\n\r\n\r\n"
				   "hello\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_MALFORMED);
}

static void test_split_rejects_bad_part_header(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: text/plain\r\n"
				   "Content-Type: text/html\r\n\r\n"
				   "a\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_PART_BAD_HEADER);
	assert_int_equal(split_str("--" B "\r\nContent-Type: garbage\r\n\r\n"
				   "a\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_PART_BAD_HEADER);
	assert_int_equal(split_str("--" B "\r\nnot a header line\r\n"
				   "Content-Type: a/b\r\n\r\na\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_PART_BAD_HEADER);
}

static void test_split_rejects_encoded_part(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: a/b\r\n"
				   "Content-Transfer-Encoding: base64\r\n\r\n"
				   "AAEC\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_PART_BAD_ENCODING);
}

static void test_split_error_leaves_result_empty(void **state)
{
	struct multipart m;

	(void) state;
	memset(&m, 0xa5, sizeof(m));
	/* the first part is fine, the second has no Content-Type */
	assert_int_equal(split_str("--" B "\r\nContent-Type: a/b\r\n\r\nx\r\n"
				   "--" B "\r\nX-A: b\r\n\r\ny\r\n--" B "--\r\n", &m),
			 MULTIPART_ERR_PART_NO_CONTENT_TYPE);
	assert_int_equal(m.n_parts, 0);
	assert_null(m.part[0].content_type);
	assert_null(m.part[0].body);
}

static uint32_t rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void mutate(struct body *b, uint32_t *rng)
{
	static const uint8_t interesting[] = { 0, '\r', '\n', '-', ' ', '\t',
		':', '"', 0xff, 'x' };
	size_t at = b->len ? rng_next(rng) % b->len : 0;

	switch (rng_next(rng) % 5) {
	case 0:
		if (b->len)
			b->p[at] = interesting[rng_next(rng) % sizeof(interesting)];
		break;
	case 1:
		if (b->len)
			b->p[at] = (uint8_t) rng_next(rng);
		break;
	case 2:
		b->len = at;
		break;
	case 3:
		if (b->len) {
			size_t n = rng_next(rng) % (b->len - at);
			memmove(b->p + at, b->p + at + n, b->len - at - n);
			b->len -= n;
		}
		break;
	case 4: {
		static const char dl[] = "\r\n--" B;
		size_t tail = b->len - at;

		add(b, dl, sizeof(dl) - 1);
		memmove(b->p + at + sizeof(dl) - 1, b->p + at, tail);
		memcpy(b->p + at, dl, sizeof(dl) - 1);
		break;
	}
	}
}

/* Damaged bodies give a known error or parts, never a crash or leak. */
static void test_split_survives_mutated_input(void **state)
{
	struct body base = { 0 }, bin = { 0 };
	struct multipart valid;
	uint32_t rng = 0x1234567;
	int i, j, ok = 0;

	(void) state;
	binary_payload(&bin);
	add_str(&base, "pre\r\n");
	add_part(&base, XML_TYPE "; a=\"b\"", XML, strlen(XML));
	add_str(&base, "--" B "\r\nContent-ID: <x@y>\r\n"
		"Content-Type: " IWD_TYPE "\r\n\r\n");
	add(&base, bin.p, bin.len);
	add_str(&base, "\r\n");
	add_close(&base);
	assert_int_equal(multipart_split(B, base.p, base.len, &valid), 0);
	assert_int_equal(valid.n_parts, 2);
	multipart_clear(&valid);

	for (i = 0; i < 20000; i++) {
		struct body b = { 0 };
		struct multipart m;
		int r;

		add(&b, base.p, base.len);
		for (j = 1 + (int) (rng_next(&rng) % 4); j > 0; j--)
			mutate(&b, &rng);

		r = multipart_split(B, b.p, b.len, &m);
		assert_true(r == 0 || (r <= MULTIPART_ERR_NO_BOUNDARY &&
				       r >= MULTIPART_ERR_INVALID_ARGUMENT));
		if (r == 0) {
			assert_in_range(m.n_parts, 1, MULTIPART_MAX_PARTS);
			assert_non_null(m.part[0].body);
			ok++;
		} else {
			assert_int_equal(m.n_parts, 0);
		}
		multipart_clear(&m);
		body_free(&b);
	}

	/* some mutations leave the body valid (e.g. in the preamble) */
	assert_true(ok > 0);
	body_free(&base);
	body_free(&bin);
}

static void assert_boundary_from(const char *ct, const char *want)
{
	char *b = (char *) 1;

	assert_int_equal(multipart_boundary_from_content_type(ct, &b), 0);
	assert_non_null(b);
	assert_string_equal(b, want);
	free(b);
}

static void assert_boundary_error(const char *ct, int err)
{
	char *b = (char *) 1;

	assert_int_equal(multipart_boundary_from_content_type(ct, &b), err);
	assert_null(b);
}

static void test_boundary_from_quoted(void **state)
{
	(void) state;
	assert_boundary_from("multipart/mixed; boundary=\"xyz\"", "xyz");
	assert_boundary_from("multipart/mixed;boundary=\"a b:c/d=e?'()+_,-.\"",
			     "a b:c/d=e?'()+_,-.");
	assert_boundary_from("multipart/mixed;boundary=\"a\\bc\"", "abc");
}

static void test_boundary_from_unquoted(void **state)
{
	(void) state;
	assert_boundary_from("multipart/mixed;boundary=xyz", "xyz");
	assert_boundary_from("multipart/mixed ; BOUNDARY = simple-1.2 ",
			     "simple-1.2");
	assert_boundary_from("multipart/mixed;boundary=xyz;", "xyz");
}

static void test_boundary_from_missing(void **state)
{
	(void) state;
	assert_boundary_error("multipart/mixed", MULTIPART_ERR_NO_BOUNDARY);
	assert_boundary_error("multipart/mixed; charset=utf-8",
			      MULTIPART_ERR_NO_BOUNDARY);
	assert_boundary_error("multipart/mixed; xboundary=abc",
			      MULTIPART_ERR_NO_BOUNDARY);
}

static void test_boundary_from_among_other_params(void **state)
{
	(void) state;
	assert_boundary_from("multipart/mixed; type=\"a/b\"; boundary=xyz; x=1",
			     "xyz");
	assert_boundary_from("multipart/mixed;foo=\"x; boundary=evil\";boundary=good",
			     "good");
	assert_boundary_from("multipart/mixed;foo=\"\\\"; boundary=evil\";boundary=\"good\"",
			     "good");
}

static void test_boundary_from_rejects_duplicate(void **state)
{
	(void) state;
	assert_boundary_error("multipart/mixed;boundary=a;boundary=b",
			      MULTIPART_ERR_BAD_BOUNDARY);
	assert_boundary_error("multipart/mixed;boundary=a;Boundary=a",
			      MULTIPART_ERR_BAD_BOUNDARY);
}

static void test_boundary_from_rejects_empty_and_invalid(void **state)
{
	(void) state;
	assert_boundary_error("multipart/mixed;boundary=\"\"",
			      MULTIPART_ERR_NO_BOUNDARY);
	assert_boundary_error("multipart/mixed;boundary=\"ab \"",
			      MULTIPART_ERR_BAD_BOUNDARY);
	assert_boundary_error("multipart/mixed;boundary=a!b",
			      MULTIPART_ERR_BAD_BOUNDARY);
	assert_boundary_error("multipart/mixed;boundary=\"a\\\"b\"",
			      MULTIPART_ERR_BAD_BOUNDARY);
	assert_boundary_error("multipart/mixed;boundary="
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			      "aaaaaaaaaaaaaaaaaaaaa", MULTIPART_ERR_BAD_BOUNDARY);
}

static void test_boundary_from_rejects_malformed_value(void **state)
{
	(void) state;
	assert_boundary_error("multipart/mixed;boundary=\"xyz",
			      MULTIPART_ERR_BAD_CONTENT_TYPE);
	assert_boundary_error("multipart/mixed;boundary",
			      MULTIPART_ERR_BAD_CONTENT_TYPE);
	assert_boundary_error("multipart/mixed;boundary=",
			      MULTIPART_ERR_BAD_CONTENT_TYPE);
	assert_boundary_error("multipart/mixed;boundary=a/b",
			      MULTIPART_ERR_BAD_CONTENT_TYPE);
	assert_boundary_error("multipart;boundary=a", MULTIPART_ERR_BAD_CONTENT_TYPE);
	assert_boundary_error("", MULTIPART_ERR_BAD_CONTENT_TYPE);
	assert_boundary_error(NULL, MULTIPART_ERR_BAD_CONTENT_TYPE);
}

static void test_build_split_round_trip_binary(void **state)
{
	struct body bin = { 0 };
	struct multipart_part parts[3];
	struct multipart m;
	uint8_t *body;
	size_t len;
	char *boundary;

	(void) state;
	binary_payload(&bin);
	parts[0] = (struct multipart_part) { XML_TYPE, (uint8_t *) XML, strlen(XML) };
	parts[1] = (struct multipart_part) { IWD_TYPE, bin.p, bin.len };
	parts[2] = (struct multipart_part) { "application/octet-stream", NULL, 0 };

	assert_int_equal(multipart_build(parts, 3, &body, &len, &boundary), 0);
	assert_true(strncmp(boundary, "lmrsec-", 7) == 0);
	assert_true(len >= 2 + strlen(boundary) &&
		    memcmp(body, "--", 2) == 0 &&
		    memcmp(body + 2, boundary, strlen(boundary)) == 0);

	assert_int_equal(multipart_split(boundary, body, len, &m), 0);
	assert_int_equal(m.n_parts, 3);
	assert_string_equal(m.part[0].content_type, XML_TYPE);
	assert_memory_equal(m.part[0].body, XML, strlen(XML));
	assert_string_equal(m.part[1].content_type, IWD_TYPE);
	assert_int_equal(m.part[1].len, bin.len);
	assert_memory_equal(m.part[1].body, bin.p, bin.len);
	assert_int_equal(m.part[2].len, 0);

	multipart_clear(&m);
	free(body);
	free(boundary);
	body_free(&bin);
}

static void test_build_repicks_boundary_found_in_part(void **state)
{
	struct multipart_part part = { IWD_TYPE, (uint8_t *) "k", 1 };
	struct body data = { 0 };
	struct multipart m;
	uint8_t *body;
	size_t len;
	char *first, *second;

	(void) state;
	assert_int_equal(multipart_build(&part, 1, &body, &len, &first), 0);
	free(body);

	/* the first candidate, as a whole delimiter line inside the data */
	add_str(&data, "\r\n--");
	add_str(&data, first);
	add_str(&data, "--\r\n");
	part.body = data.p;
	part.len = data.len;

	assert_int_equal(multipart_build(&part, 1, &body, &len, &second), 0);
	assert_string_not_equal(first, second);
	assert_non_null(memmem(data.p, data.len, first, strlen(first)));
	assert_null(memmem(data.p, data.len, second, strlen(second)));
	assert_int_equal(multipart_split(second, body, len, &m), 0);
	assert_int_equal(m.n_parts, 1);
	assert_int_equal(m.part[0].len, data.len);
	assert_memory_equal(m.part[0].body, data.p, data.len);

	multipart_clear(&m);
	free(body);
	free(first);
	free(second);
	body_free(&data);
}

static void assert_build_error(const struct multipart_part *parts, size_t n,
			       int err)
{
	uint8_t *body = (uint8_t *) 1;
	size_t len = 1;
	char *boundary = (char *) 1;

	assert_int_equal(multipart_build(parts, n, &body, &len, &boundary), err);
	assert_null(body);
	assert_null(boundary);
	assert_int_equal(len, 0);
}

static void test_build_rejects_bad_input(void **state)
{
	struct multipart_part parts[MULTIPART_MAX_PARTS + 1];
	struct multipart_part bad;
	uint8_t *big;
	size_t i;

	(void) state;
	for (i = 0; i < MULTIPART_MAX_PARTS + 1; i++)
		parts[i] = (struct multipart_part) { "a/b", (uint8_t *) "x", 1 };

	assert_build_error(parts, 0, MULTIPART_ERR_NO_PARTS);
	assert_build_error(parts, MULTIPART_MAX_PARTS + 1,
			   MULTIPART_ERR_TOO_MANY_PARTS);

	bad = (struct multipart_part) { NULL, (uint8_t *) "x", 1 };
	assert_build_error(&bad, 1, MULTIPART_ERR_PART_NO_CONTENT_TYPE);
	bad.content_type = "a/b\r\nX-Injected: 1";
	assert_build_error(&bad, 1, MULTIPART_ERR_BAD_CONTENT_TYPE);
	bad.content_type = "nothing";
	assert_build_error(&bad, 1, MULTIPART_ERR_BAD_CONTENT_TYPE);

	big = calloc(1, MULTIPART_MAX_BODY);
	assert_non_null(big);
	bad = (struct multipart_part) { "a/b", big, MULTIPART_MAX_BODY };
	assert_build_error(&bad, 1, MULTIPART_ERR_TOO_LARGE);
	free(big);
}

static void test_find_matches_case_insensitively(void **state)
{
	const struct multipart_part *p;
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: " XML_TYPE "\r\n\r\n"
				   XML "\r\n--" B "\r\nContent-Type: " IWD_TYPE
				   "\r\n\r\nIW\r\n--" B "--\r\n", &m), 0);

	p = multipart_find(&m, "Application/VND.3gpp.Interworking-Data");
	assert_ptr_equal(p, &m.part[1]);
	assert_ptr_equal(multipart_find(&m, XML_TYPE), &m.part[0]);
	assert_null(multipart_find(&m, "text/plain"));
	multipart_clear(&m);
}

static void test_clear_empties_result(void **state)
{
	struct multipart m;

	(void) state;
	assert_int_equal(split_str("--" B "\r\nContent-Type: a/b\r\n\r\n"
				   "secret\r\n--" B "--\r\n", &m), 0);
	multipart_clear(&m);
	assert_int_equal(m.n_parts, 0);
	assert_null(m.part[0].body);
	assert_null(m.part[0].content_type);
	multipart_clear(&m);
	multipart_clear(NULL);
}

static void test_errors_distinct_with_distinct_text(void **state)
{
	static const int errs[] = {
		MULTIPART_ERR_NO_BOUNDARY, MULTIPART_ERR_TOO_LARGE,
		MULTIPART_ERR_MALFORMED, MULTIPART_ERR_TOO_MANY_PARTS,
		MULTIPART_ERR_PART_NO_CONTENT_TYPE, MULTIPART_ERR_NO_MEMORY,
		MULTIPART_ERR_BAD_BOUNDARY, MULTIPART_ERR_BOUNDARY_NOT_FOUND,
		MULTIPART_ERR_NO_CLOSE_DELIMITER, MULTIPART_ERR_NO_PARTS,
		MULTIPART_ERR_PART_BAD_HEADER, MULTIPART_ERR_PART_BAD_ENCODING,
		MULTIPART_ERR_BAD_CONTENT_TYPE, MULTIPART_ERR_INVALID_ARGUMENT,
	};
	const char *unknown = multipart_strerror(0);
	size_t i, j, n = sizeof(errs) / sizeof(errs[0]);

	(void) state;
	for (i = 0; i < n; i++) {
		const char *text = multipart_strerror(errs[i]);

		assert_true(errs[i] < 0);
		assert_non_null(text);
		assert_string_not_equal(text, unknown);
		/* usable as a SIP reason phrase: one printable line */
		assert_null(strpbrk(text, "\r\n"));
		for (j = i + 1; j < n; j++) {
			assert_int_not_equal(errs[i], errs[j]);
			assert_string_not_equal(text, multipart_strerror(errs[j]));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_two_parts_keeps_binary_intact),
		cmocka_unit_test(test_split_lowercases_content_type_and_strips_params),
		cmocka_unit_test(test_split_ignores_preamble_and_epilogue),
		cmocka_unit_test(test_split_accepts_transport_padding),
		cmocka_unit_test(test_split_ignores_other_part_headers),
		cmocka_unit_test(test_split_empty_part_body),
		cmocka_unit_test(test_split_accepts_max_parts),
		cmocka_unit_test(test_split_rejects_too_many_parts),
		cmocka_unit_test(test_split_rejects_missing_close_delimiter),
		cmocka_unit_test(test_split_rejects_no_parts),
		cmocka_unit_test(test_split_rejects_part_without_content_type),
		cmocka_unit_test(test_split_rejects_boundary_not_in_body),
		cmocka_unit_test(test_split_rejects_empty_boundary),
		cmocka_unit_test(test_split_rejects_invalid_boundary),
		cmocka_unit_test(test_split_rejects_body_too_large),
		cmocka_unit_test(test_split_accepts_body_of_max_size),
		cmocka_unit_test(test_split_rejects_nul_in_part_header),
		cmocka_unit_test(test_split_rejects_part_without_blank_line),
		cmocka_unit_test(test_split_rejects_text_after_boundary),
		cmocka_unit_test(test_split_rejects_bare_lf_before_boundary),
		cmocka_unit_test(test_split_rejects_lf_only_line_ends),
		cmocka_unit_test(test_split_rejects_bad_part_header),
		cmocka_unit_test(test_split_rejects_encoded_part),
		cmocka_unit_test(test_split_error_leaves_result_empty),
		cmocka_unit_test(test_split_survives_mutated_input),
		cmocka_unit_test(test_boundary_from_quoted),
		cmocka_unit_test(test_boundary_from_unquoted),
		cmocka_unit_test(test_boundary_from_missing),
		cmocka_unit_test(test_boundary_from_among_other_params),
		cmocka_unit_test(test_boundary_from_rejects_duplicate),
		cmocka_unit_test(test_boundary_from_rejects_empty_and_invalid),
		cmocka_unit_test(test_boundary_from_rejects_malformed_value),
		cmocka_unit_test(test_build_split_round_trip_binary),
		cmocka_unit_test(test_build_repicks_boundary_found_in_part),
		cmocka_unit_test(test_build_rejects_bad_input),
		cmocka_unit_test(test_find_matches_case_insensitively),
		cmocka_unit_test(test_clear_empties_result),
		cmocka_unit_test(test_errors_distinct_with_distinct_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
