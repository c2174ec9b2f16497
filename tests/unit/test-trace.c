/*
 * Unit tests for the SIP trace sanitiser (agent/trace.c): start lines and
 * headers in full, bodies only as type, size and SHA-256, and nothing of a
 * message that does not parse.
 */
#define _GNU_SOURCE		/* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iwdata.h"
#include "sha256.h"
#include "trace.h"

#define KEY "\x00\x01\xfe\xff" "SECRETKEYBYTES" "\x00\r\n\r\n" "MORESECRET"
#define KEY_LEN (sizeof(KEY) - 1)

static char *sanitise(const void *msg, size_t len, bool stream)
{
	char *text = NULL;

	assert_int_equal(trace_sanitise(msg, len, stream, &text), 0);
	assert_non_null(text);
	return text;
}

static void hex_of(const void *p, size_t n, char hex[65])
{
	uint8_t d[SHA256_DIGEST_LEN];

	sha256_digest(p, n, d);
	for (size_t i = 0; i < SHA256_DIGEST_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* No run of 6 bytes of the secret appears in the text. */
static void assert_no_run_of(const char *text, const void *secret, size_t n)
{
	const uint8_t *s = secret;

	for (size_t i = 0; i + 6 <= n; i++)
		assert_null(memmem(text, strlen(text), s + i, 6));
}

static size_t build(char *buf, size_t cap, const char *head, const void *body, size_t blen)
{
	size_t hl = strlen(head);

	assert_true(hl + blen <= cap);
	memcpy(buf, head, hl);
	memcpy(buf + hl, body, blen);
	return hl + blen;
}

#define HEAD_MESSAGE(len) \
	"MESSAGE sip:alice@127.0.0.1:5070;transport=tcp SIP/2.0\r\n" \
	"Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\n" \
	"From: <sip:kmf@iwf.test>;tag=abc\r\n" \
	"To: <sip:alice@mc.test>\r\n" \
	"Call-ID: call-1@iwf.test\r\n" \
	"CSeq: 7 MESSAGE\r\n" \
	"Content-Type: application/octet-stream\r\n" \
	"Content-Length: " len "\r\n" \
	"\r\n"

static void test_headers_in_full_body_summarised(void **state)
{
	char msg[1024], hex[65], line[128];
	size_t len = build(msg, sizeof(msg), HEAD_MESSAGE("33"), KEY, KEY_LEN);
	char *text;

	(void) state;
	assert_int_equal(KEY_LEN, 33);
	text = sanitise(msg, len, true);
	assert_non_null(strstr(text, "MESSAGE sip:alice@127.0.0.1:5070;transport=tcp SIP/2.0\n"));
	assert_non_null(strstr(text, "Call-ID: call-1@iwf.test\n"));
	assert_non_null(strstr(text, "From: <sip:kmf@iwf.test>;tag=abc\n"));
	assert_non_null(strstr(text, "Content-Length: 33\n"));
	hex_of(KEY, KEY_LEN, hex);
	snprintf(line, sizeof(line), "[body: application/octet-stream, 33 bytes, sha256 %s]", hex);
	assert_non_null(strstr(text, line));
	assert_no_run_of(text, KEY, KEY_LEN);
	free(text);
}

/* CRLFCRLF inside the payload: the head ends at the first empty line, the
 * body at Content-Length; nothing after the inner CRLFCRLF shows. */
static void test_crlfcrlf_inside_body(void **state)
{
	static const char body[] = "abc\r\n\r\nFake-Header: SECRETSECRET\r\n\r\nxyz";
	char msg[1024], hex[65], cl[8];
	char head[512];
	size_t len;
	char *text;

	(void) state;
	snprintf(cl, sizeof(cl), "%zu", sizeof(body) - 1);
	snprintf(head, sizeof(head),
		 "SIP/2.0 200 OK\r\nCall-ID: c2\r\nContent-Type: text/plain\r\n"
		 "Content-Length: %s\r\n\r\n", cl);
	len = build(msg, sizeof(msg), head, body, sizeof(body) - 1);
	text = sanitise(msg, len, false);
	assert_non_null(strstr(text, "SIP/2.0 200 OK\n"));
	assert_null(strstr(text, "Fake-Header"));
	assert_null(strstr(text, "SECRET"));
	hex_of(body, sizeof(body) - 1, hex);
	assert_non_null(strstr(text, hex));
	free(text);
}

/* RFC 3261 §18.3: on a stream, no Content-Length means the body's end is
 * unknown: the rest is withheld, with its size. */
static void test_missing_content_length_on_tcp(void **state)
{
	static const char msg[] =
		"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: c3\r\nContent-Type: text/plain\r\n\r\n"
		"SECRETPAYLOAD";
	char *text;

	(void) state;
	text = sanitise(msg, sizeof(msg) - 1, true);
	assert_non_null(strstr(text, "MESSAGE sip:a@b SIP/2.0\n"));
	assert_non_null(strstr(text, "Call-ID: c3\n"));
	assert_non_null(strstr(text, "body withheld (13 bytes, unparsed: no content-length"));
	assert_null(strstr(text, "SECRET"));
	free(text);

	/* on UDP the datagram's end is the body's end */
	text = sanitise(msg, sizeof(msg) - 1, false);
	assert_non_null(strstr(text, "[body: text/plain, 13 bytes, sha256 "));
	assert_null(strstr(text, "SECRET"));
	free(text);
}

static void test_binary_body_with_nuls(void **state)
{
	uint8_t body[300];
	char msg[2048], hex[65], line[128];
	size_t len;
	char *text;

	(void) state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t) (i * 7 + (i % 3 == 0 ? 0 : 1)) & (i % 5 ? 0xff : 0x00);
	len = build(msg, sizeof(msg), HEAD_MESSAGE("300"), body, sizeof(body));
	text = sanitise(msg, len, true);
	hex_of(body, sizeof(body), hex);
	snprintf(line, sizeof(line), "[body: application/octet-stream, 300 bytes, sha256 %s]\n", hex);
	assert_non_null(strstr(text, line));
	assert_no_run_of(text, body, sizeof(body));
	/* the text is a C string: no NUL before its end */
	assert_true(strlen(text) > 100);
	free(text);
}

/* Cut in the middle of the head: the start line and the size only. */
static void test_truncated_head(void **state)
{
	static const char msg[] =
		"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: c4\r\nContent-Type: te";
	char *text;

	(void) state;
	text = sanitise(msg, sizeof(msg) - 1, true);
	assert_string_equal(text, "MESSAGE sip:a@b SIP/2.0\n"
			    "[body withheld (29 bytes, unparsed: no end of the headers)]\n");
	free(text);
}

/* Cut in the body: its size, never its bytes. */
static void test_truncated_body(void **state)
{
	char msg[1024];
	size_t len = build(msg, sizeof(msg), HEAD_MESSAGE("33"), KEY, 20);
	char *text;

	(void) state;
	text = sanitise(msg, len, true);
	assert_non_null(strstr(text, "[body withheld (20 of 33 bytes, truncated)]"));
	assert_no_run_of(text, KEY, 20);
	free(text);
}

/* Not SIP at all (a stray piece of a body): nothing of it. */
static void test_garbled(void **state)
{
	static const char msg[] = "SECRETKEY\r\nMORE: SECRET\r\n\r\nbody";
	static const uint8_t bin[] = { 0x01, 0x00, 'S', 'I', 'P', '/', '2', '.', '0', '\r', '\n' };
	char *text;

	(void) state;
	text = sanitise(msg, sizeof(msg) - 1, false);
	assert_string_equal(text, "[message withheld (31 bytes, unparsed: no sip start line)]\n");
	free(text);
	text = sanitise(bin, sizeof(bin), false);
	assert_string_equal(text, "[message withheld (11 bytes, unparsed: no sip start line)]\n");
	free(text);
	text = sanitise("", 0, true);
	assert_string_equal(text, "[message withheld (0 bytes, unparsed: no sip start line)]\n");
	free(text);
}

/* A header line with control bytes is not shown; a bad Content-Length
 * withholds the body. */
static void test_binary_header_and_bad_length(void **state)
{
	static const char msg[] =
		"MESSAGE sip:a@b SIP/2.0\r\nX-Bad: SEC\x01RET\r\nContent-Length: 4x\r\n\r\nSECRETBODY";
	char *text;

	(void) state;
	text = sanitise(msg, sizeof(msg) - 1, true);
	assert_non_null(strstr(text, "[header line withheld: 14 bytes, not text]"));
	assert_non_null(strstr(text, "body withheld (10 bytes, unparsed: bad content-length)"));
	assert_null(strstr(text, "SEC"));
	free(text);
}

static void test_authorization_response_withheld(void **state)
{
	static const char msg[] =
		"REGISTER sip:mc.test SIP/2.0\r\n"
		"Authorization: Digest username=\"alice\", realm=\"mc.test\", nonce=\"n1\", "
		"uri=\"sip:mc.test\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5\r\n"
		"Content-Length: 0\r\n\r\n";
	char *text;

	(void) state;
	text = sanitise(msg, sizeof(msg) - 1, true);
	assert_non_null(strstr(text, "username=\"alice\""));
	assert_non_null(strstr(text, "response=\"withheld\", algorithm=MD5\n"));
	assert_null(strstr(text, "0123456789abcdef"));
	assert_null(strstr(text, "[body"));
	free(text);
}

/* The IWF's multipart MESSAGE: the whole body, each part, and the payload
 * IE with the fingerprint events and the spool show. */
static void test_multipart_parts_and_payload(void **state)
{
	static const char xml[] = "<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"/>";
	struct iwdata_msg m = {
		.lmr_type = { (const uint8_t *) "TETRA", 5 },
		.kmf_uri = { (const uint8_t *) "sip:kmf@iwf.test", 16 },
		.payload = { (const uint8_t *) KEY, KEY_LEN },
	};
	uint8_t iw[256];
	char body[1024], msg[2048], head[512], hex[65], line[160];
	size_t iwlen, blen = 0, len;
	char *text;

	(void) state;
	assert_int_equal(iwdata_encode(&m, iw, sizeof(iw), &iwlen), 0);
	blen += (size_t) sprintf(body, "--b1\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml"
				 "\r\n\r\n%s\r\n--b1\r\nContent-Type: "
				 "application/vnd.3gpp.interworking-data\r\n\r\n", xml);
	memcpy(body + blen, iw, iwlen);
	blen += iwlen;
	memcpy(body + blen, "\r\n--b1--\r\n", 10);
	blen += 10;
	snprintf(head, sizeof(head), "MESSAGE sip:alice@mc.test SIP/2.0\r\n"
		 "Content-Type: multipart/mixed;boundary=b1\r\nContent-Length: %zu\r\n\r\n", blen);
	len = build(msg, sizeof(msg), head, body, blen);
	text = sanitise(msg, len, true);

	hex_of(body, blen, hex);
	snprintf(line, sizeof(line), "[body: multipart/mixed, %zu bytes, sha256 %s]", blen, hex);
	assert_non_null(strstr(text, line));
	hex_of(xml, sizeof(xml) - 1, hex);
	snprintf(line, sizeof(line), "[  part 1: application/vnd.3gpp.mcptt-info+xml, %zu bytes, "
		 "sha256 %s]", sizeof(xml) - 1, hex);
	assert_non_null(strstr(text, line));
	hex_of(iw, iwlen, hex);
	snprintf(line, sizeof(line), "[  part 2: application/vnd.3gpp.interworking-data, %zu "
		 "bytes, sha256 %s]", iwlen, hex);
	assert_non_null(strstr(text, line));
	hex_of(KEY, KEY_LEN, hex);
	snprintf(line, sizeof(line), "[    payload IE: %zu bytes, sha256 %s]", KEY_LEN, hex);
	assert_non_null(strstr(text, line));
	assert_null(strstr(text, "mcpttinfo"));
	assert_no_run_of(text, KEY, KEY_LEN);
	free(text);
}

static void test_keepalive_and_trailing(void **state)
{
	char msg[1024];
	size_t len;
	char *text;

	(void) state;
	text = sanitise("\r\n\r\n", 4, true);
	assert_string_equal(text, "[keep-alive: 4 bytes]\n");
	free(text);

	len = build(msg, sizeof(msg), HEAD_MESSAGE("10"), KEY, KEY_LEN);
	text = sanitise(msg, len, true);
	assert_non_null(strstr(text, "[body: application/octet-stream, 10 bytes"));
	assert_non_null(strstr(text, "[23 bytes after the message withheld]"));
	assert_no_run_of(text, KEY, KEY_LEN);
	free(text);
}

/* Headers past TRACE_TEXT_MAX are counted, not shown; the text stays
 * bounded whatever the head holds (lines of text or of control bytes). */
static void test_huge_head_bounded(void **state)
{
	const size_t n = 40000;
	char *msg = malloc(32 + 2 * n * 2 + 32);
	size_t len = 0;
	char *text;

	(void) state;
	len += (size_t) sprintf(msg, "MESSAGE sip:a@b SIP/2.0\r\n");
	for (size_t i = 0; i < n; i++) {
		memcpy(msg + len, i % 2 ? "\x01\n" : "X:\n", i % 2 ? 2 : 3);
		len += i % 2 ? 2 : 3;
	}
	len += (size_t) sprintf(msg + len, "\r\n");
	text = sanitise(msg, len, true);
	assert_true(strlen(text) <= TRACE_TEXT_MAX + 256);
	assert_non_null(strstr(text, "more header bytes not shown]"));
	free(text);
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_in_full_body_summarised),
		cmocka_unit_test(test_crlfcrlf_inside_body),
		cmocka_unit_test(test_missing_content_length_on_tcp),
		cmocka_unit_test(test_binary_body_with_nuls),
		cmocka_unit_test(test_truncated_head),
		cmocka_unit_test(test_truncated_body),
		cmocka_unit_test(test_garbled),
		cmocka_unit_test(test_binary_header_and_bad_length),
		cmocka_unit_test(test_authorization_response_withheld),
		cmocka_unit_test(test_multipart_parts_and_payload),
		cmocka_unit_test(test_keepalive_and_trailing),
		cmocka_unit_test(test_huge_head_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
