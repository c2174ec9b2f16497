/*
 * test-request.c — unit tests for the socket request decoder (agent/request.c):
 * every request type in its valid shapes, and every malformed shape with the
 * exact ERROR code and text the agent answers (docs/protocol.md).
 *
 * Built and run by hand with (from the top of the tree):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -Iagent -Ilibclient \
 *       tests/unit/test-request.c agent/request.c libclient/frame.c \
 *       $(pkg-config --cflags --libs cmocka glib-2.0) -o /tmp/test-request && \
 *   /tmp/test-request
 *
 * GLib is here only for g_utf8_validate(), the rule TO followed before the
 * decoder left server.c: the decoder's own UTF-8 check must agree with it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "frame.h"
#include "proto.h"
#include "request.h"

#define TAG_UNKNOWN	0xee	/* no tag of this protocol version */

/* The body being built; valid until the next begin(). */
static struct frame_writer w;
static const uint8_t *body;
static size_t body_len;

static struct request req;
static int code;
static const char *why;

static void begin(uint8_t type, uint32_t id)
{
	assert_int_equal(frame_writer_begin(&w, type, id), 0);
}

static void add(uint8_t tag, const void *v, size_t len)
{
	assert_int_equal(frame_writer_bytes(&w, tag, v, len), 0);
}

static void add_str(uint8_t tag, const char *s)
{
	add(tag, s, strlen(s));
}

static void add_u32(uint8_t tag, uint32_t v)
{
	assert_int_equal(frame_writer_u32(&w, tag, v), 0);
}

static void add_u64(uint8_t tag, uint64_t v)
{
	assert_int_equal(frame_writer_u64(&w, tag, v), 0);
}

static void add_versions(uint32_t min, uint32_t max)
{
	add_u32(PROTO_TAG_VERSION_MIN, min);
	add_u32(PROTO_TAG_VERSION_MAX, max);
}

/* Ends the body and decodes it. */
static int decode(bool negotiated)
{
	const uint8_t *frame;
	size_t len;

	assert_int_equal(frame_writer_end(&w, &frame, &len), 0);
	body = frame + FRAME_HEADER_LEN;
	body_len = len - FRAME_HEADER_LEN;
	return request_decode(negotiated, body, body_len, &req, &code, &why);
}

static void assert_valid(bool negotiated, uint8_t type, uint32_t id)
{
	assert_int_equal(decode(negotiated), REQUEST_VALID);
	assert_int_equal(code, 0);
	assert_null(why);
	assert_int_equal(req.type, type);
	assert_int_equal(req.id, id);
}

static void assert_refused(bool negotiated, int want_code, const char *want_why)
{
	uint32_t id;

	assert_int_equal(decode(negotiated), REQUEST_REFUSED);
	id = (uint32_t) body[1] << 24 | (uint32_t) body[2] << 16 |
	     (uint32_t) body[3] << 8 | body[4];
	assert_int_equal(code, want_code);
	assert_non_null(why);
	assert_string_equal(why, want_why);
	assert_int_equal(req.type, body[0]);
	assert_int_equal(req.id, id);	/* the ERROR reply echoes it */
}

static bool inside_body(const uint8_t *p, size_t len)
{
	return p >= body && p + len <= body + body_len;
}

static int teardown(void **state)
{
	(void) state;
	frame_writer_clear(&w);
	return 0;
}

/* ---------- HELLO ---------- */

static void test_hello_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	add_versions(1, 1);
	add_str(PROTO_TAG_CLIENT_NAME, "lmrsecctl");
	assert_valid(false, PROTO_MSG_HELLO, 1);
	assert_int_equal(req.hello.version_min, 1);
	assert_int_equal(req.hello.version_max, 1);
	assert_int_equal(req.hello.client_name_len, 9);
	assert_memory_equal(req.hello.client_name, "lmrsecctl", 9);
	assert_true(inside_body(req.hello.client_name, 9));	/* zero-copy */
}

static void test_hello_without_name(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 0xfffffffe);
	add_versions(1, 3);
	assert_valid(false, PROTO_MSG_HELLO, 0xfffffffe);
	assert_null(req.hello.client_name);
	assert_int_equal(req.hello.client_name_len, 0);
	assert_int_equal(req.hello.version_max, 3);
}

/* Whether the versions overlap the agent's is the server's answer
 * (EPROTONOSUPPORT with both ranges in its text), not a malformed HELLO. */
static void test_hello_versions_not_overlapping_still_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 9);
	add_versions(2, 5);
	assert_valid(false, PROTO_MSG_HELLO, 9);
	assert_int_equal(req.hello.version_min, 2);
	assert_int_equal(req.hello.version_max, 5);
}

static void test_hello_unknown_tags_ignored(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	add(TAG_UNKNOWN, "x", 1);
	add_versions(1, 1);
	add(TAG_UNKNOWN, "yy", 2);
	add(0xff, NULL, 0);
	assert_valid(false, PROTO_MSG_HELLO, 1);
}

static void test_hello_missing_version_min(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	add_u32(PROTO_TAG_VERSION_MAX, 1);
	assert_refused(false, EINVAL, "HELLO needs VERSION_MIN and VERSION_MAX");
}

static void test_hello_missing_version_max(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	add_u32(PROTO_TAG_VERSION_MIN, 1);
	add_str(PROTO_TAG_CLIENT_NAME, "x");
	assert_refused(false, EINVAL, "HELLO needs VERSION_MIN and VERSION_MAX");
}

static void test_hello_no_fields(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	assert_refused(false, EINVAL, "HELLO needs VERSION_MIN and VERSION_MAX");
}

static void test_hello_inverted(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	add_versions(2, 1);
	assert_refused(false, EINVAL, "VERSION_MIN is above VERSION_MAX");
}

static void test_hello_repeated_field(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	add_u32(PROTO_TAG_VERSION_MIN, 1);
	add_u32(PROTO_TAG_VERSION_MIN, 1);
	add_u32(PROTO_TAG_VERSION_MAX, 1);
	assert_refused(false, EINVAL, "a HELLO field is repeated");

	begin(PROTO_MSG_HELLO, 1);
	add_versions(1, 1);
	add_str(PROTO_TAG_CLIENT_NAME, "a");
	add_str(PROTO_TAG_CLIENT_NAME, "b");
	assert_refused(false, EINVAL, "a HELLO field is repeated");
}

static void test_hello_wrong_lengths(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 1);
	add(PROTO_TAG_VERSION_MIN, "\0\0\1", 3);
	add_u32(PROTO_TAG_VERSION_MAX, 1);
	assert_refused(false, EINVAL, "VERSION_MIN must be 4 octets");

	begin(PROTO_MSG_HELLO, 1);
	add_u32(PROTO_TAG_VERSION_MIN, 1);
	add_u64(PROTO_TAG_VERSION_MAX, 1);
	assert_refused(false, EINVAL, "VERSION_MAX must be 4 octets");
}

static void test_hello_when_negotiated(void **state)
{
	(void) state;
	begin(PROTO_MSG_HELLO, 4);
	add_versions(1, 1);
	assert_refused(true, EALREADY, "protocol version already negotiated");

	/* whatever its fields */
	begin(PROTO_MSG_HELLO, 5);
	assert_refused(true, EALREADY, "protocol version already negotiated");
}

/* ---------- before HELLO ---------- */

static void test_request_before_hello(void **state)
{
	static const uint8_t types[] = {
		PROTO_MSG_SUBSCRIBE, PROTO_MSG_ACK, PROTO_MSG_NACK, PROTO_MSG_STATUS,
		PROTO_MSG_SEND, PROTO_MSG_MONITOR, PROTO_MSG_QUEUE, PROTO_MSG_TRACE,
		PROTO_MSG_LOG_LEVEL, 0x00, 0x7f,
		PROTO_MSG_OK, PROTO_MSG_DELIVERY, 0xff,
	};
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(types); i++) {
		begin(types[i], (uint32_t) i + 1);
		add_str(PROTO_TAG_LMR_TYPE, "TETRA");
		assert_refused(false, EPROTO, "the first request must be HELLO");
	}
}

/* ---------- SUBSCRIBE ---------- */

static void test_subscribe_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_SUBSCRIBE, 2);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	add_str(PROTO_TAG_LMR_TYPE, "P25");
	add_u32(PROTO_TAG_TAKEOVER, 1);
	assert_valid(true, PROTO_MSG_SUBSCRIBE, 2);
	assert_int_equal(req.subscribe.n_types, 2);
	assert_string_equal(req.subscribe.types[0], "TETRA");
	assert_string_equal(req.subscribe.types[1], "P25");
	assert_ptr_equal(req.subscribe.type_list[0], req.subscribe.types[0]);
	assert_ptr_equal(req.subscribe.type_list[1], req.subscribe.types[1]);
	assert_null(req.subscribe.type_list[2]);
	assert_true(req.subscribe.takeover);
}

static void test_subscribe_all_and_takeover_0(void **state)
{
	(void) state;
	begin(PROTO_MSG_SUBSCRIBE, 2);
	add_str(PROTO_TAG_LMR_TYPE, "*");
	add_u32(PROTO_TAG_TAKEOVER, 0);
	assert_valid(true, PROTO_MSG_SUBSCRIBE, 2);
	assert_int_equal(req.subscribe.n_types, 1);
	assert_string_equal(req.subscribe.type_list[0], "*");
	assert_false(req.subscribe.takeover);
}

static void test_subscribe_32_types_and_limits(void **state)
{
	char name[REQUEST_LMR_TYPE_MAX + 1];
	int i;

	(void) state;
	begin(PROTO_MSG_SUBSCRIBE, 2);
	for (i = 0; i < PROTO_MAX_LMR_TYPES - 1; i++) {
		snprintf(name, sizeof(name), "T%d", i);
		add_str(PROTO_TAG_LMR_TYPE, name);
	}
	add_str(PROTO_TAG_LMR_TYPE, "Az09_-bcdefghijk");	/* 16: the longest */
	assert_valid(true, PROTO_MSG_SUBSCRIBE, 2);
	assert_int_equal(req.subscribe.n_types, PROTO_MAX_LMR_TYPES);
	assert_string_equal(req.subscribe.types[31], "Az09_-bcdefghijk");
	assert_null(req.subscribe.type_list[PROTO_MAX_LMR_TYPES]);
}

static void test_subscribe_33_types(void **state)
{
	char name[REQUEST_LMR_TYPE_MAX + 1];
	int i;

	(void) state;
	begin(PROTO_MSG_SUBSCRIBE, 2);
	for (i = 0; i < PROTO_MAX_LMR_TYPES + 1; i++) {
		snprintf(name, sizeof(name), "T%d", i);
		add_str(PROTO_TAG_LMR_TYPE, name);
	}
	assert_refused(true, E2BIG, "too many LMR_TYPE fields (at most 32)");
}

static void test_subscribe_without_type(void **state)
{
	(void) state;
	begin(PROTO_MSG_SUBSCRIBE, 2);
	add_u32(PROTO_TAG_TAKEOVER, 1);
	assert_refused(true, EINVAL, "SUBSCRIBE needs at least one LMR_TYPE");
}

static void test_subscribe_bad_types(void **state)
{
	static const char *const bad[] = {
		"", "Az09_-bcdefghijkl", "TE TRA", "**", "TETRA*", "T.25", "é",
	};
	size_t i;

	(void) state;
	for (i = 0; i < G_N_ELEMENTS(bad); i++) {
		begin(PROTO_MSG_SUBSCRIBE, 2);
		add_str(PROTO_TAG_LMR_TYPE, "P25");
		add_str(PROTO_TAG_LMR_TYPE, bad[i]);
		assert_refused(true, EINVAL,
			       "LMR_TYPE must be \"*\" or 1 to 16 of A-Z a-z 0-9 _ -");
	}

	begin(PROTO_MSG_SUBSCRIBE, 2);
	add(PROTO_TAG_LMR_TYPE, "TE\0RA", 5);
	assert_refused(true, EINVAL,
		       "LMR_TYPE must be \"*\" or 1 to 16 of A-Z a-z 0-9 _ -");
}

static void test_subscribe_bad_takeover(void **state)
{
	(void) state;
	begin(PROTO_MSG_SUBSCRIBE, 2);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	add_u32(PROTO_TAG_TAKEOVER, 2);
	assert_refused(true, EINVAL, "TAKEOVER must be a u32 0 or 1");

	begin(PROTO_MSG_SUBSCRIBE, 2);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	add(PROTO_TAG_TAKEOVER, "\1", 1);
	assert_refused(true, EINVAL, "TAKEOVER must be a u32 0 or 1");
}

static void test_subscribe_repeated_takeover(void **state)
{
	(void) state;
	begin(PROTO_MSG_SUBSCRIBE, 2);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	add_u32(PROTO_TAG_TAKEOVER, 0);
	add_u32(PROTO_TAG_TAKEOVER, 0);
	assert_refused(true, EINVAL, "a SUBSCRIBE field is repeated");
}

/* ---------- ACK, NACK ---------- */

static void test_ack_nack_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_ACK, 7);
	add_u64(PROTO_TAG_MESSAGE_ID, 42);
	assert_valid(true, PROTO_MSG_ACK, 7);
	assert_int_equal(req.ack.message_id, 42);

	/* above INT64_MAX: no such message, which the server says (ENOENT) */
	begin(PROTO_MSG_NACK, 8);
	add(TAG_UNKNOWN, NULL, 0);
	add_u64(PROTO_TAG_MESSAGE_ID, UINT64_MAX);
	assert_valid(true, PROTO_MSG_NACK, 8);
	assert_true(req.ack.message_id == UINT64_MAX);
}

static void test_ack_missing_id(void **state)
{
	(void) state;
	begin(PROTO_MSG_ACK, 7);
	assert_refused(true, EINVAL, "missing field MESSAGE_ID");

	begin(PROTO_MSG_NACK, 7);
	add_u32(PROTO_TAG_LIMIT, 1);
	assert_refused(true, EINVAL, "missing field MESSAGE_ID");
}

static void test_ack_short_id(void **state)
{
	(void) state;
	begin(PROTO_MSG_ACK, 3);
	add_u32(PROTO_TAG_MESSAGE_ID, 1);
	assert_refused(true, EINVAL, "MESSAGE_ID must be 8 octets");
}

static void test_ack_repeated_field(void **state)
{
	(void) state;
	begin(PROTO_MSG_NACK, 3);
	add_u64(PROTO_TAG_MESSAGE_ID, 1);
	add_u64(PROTO_TAG_MESSAGE_ID, 2);
	assert_refused(true, EINVAL, "a field is repeated");
}

/* ---------- STATUS, MONITOR ---------- */

static void test_status_monitor_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_STATUS, 2);
	assert_valid(true, PROTO_MSG_STATUS, 2);

	begin(PROTO_MSG_MONITOR, 3);
	assert_valid(true, PROTO_MSG_MONITOR, 3);

	/* fields they do not take are ignored, repeated or not */
	begin(PROTO_MSG_STATUS, 4);
	add_u64(PROTO_TAG_MESSAGE_ID, 1);
	add_u64(PROTO_TAG_MESSAGE_ID, 1);
	assert_valid(true, PROTO_MSG_STATUS, 4);
}

/* ---------- SEND ---------- */

static const uint8_t key[] = { 0x00, 0x01, 0xfe, 0xff, 'k', 'e', 'y' };

static void begin_send(void)
{
	begin(PROTO_MSG_SEND, 4);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	add(PROTO_TAG_PAYLOAD, key, sizeof(key));
}

static void test_send_valid(void **state)
{
	(void) state;
	begin_send();
	add_str(PROTO_TAG_TO, "sip:kmf@iwf.test");
	add_u32(PROTO_TAG_TIMEOUT_MS, 5000);
	assert_valid(true, PROTO_MSG_SEND, 4);
	assert_string_equal(req.send.lmr_type, "TETRA");
	assert_int_equal(req.send.payload_len, sizeof(key));
	assert_memory_equal(req.send.payload, key, sizeof(key));
	/* key material is not copied: it stays in the body the caller wipes */
	assert_true(inside_body(req.send.payload, req.send.payload_len));
	assert_int_equal(req.send.to_len, 16);
	assert_memory_equal(req.send.to, "sip:kmf@iwf.test", 16);
	assert_true(inside_body(req.send.to, req.send.to_len));
	assert_int_equal(req.send.timeout_ms, 5000);
}

static void test_send_defaults(void **state)
{
	(void) state;
	begin_send();
	assert_valid(true, PROTO_MSG_SEND, 4);
	assert_null(req.send.to);
	assert_int_equal(req.send.timeout_ms, REQUEST_SEND_TIMEOUT_DEFAULT_MS);

	begin_send();
	add_u32(PROTO_TAG_TIMEOUT_MS, 0);
	assert_valid(true, PROTO_MSG_SEND, 4);
	assert_int_equal(req.send.timeout_ms, REQUEST_SEND_TIMEOUT_DEFAULT_MS);

	begin_send();
	add_u32(PROTO_TAG_TIMEOUT_MS, UINT32_MAX);
	assert_valid(true, PROTO_MSG_SEND, 4);
	assert_int_equal(req.send.timeout_ms, REQUEST_SEND_TIMEOUT_MAX_MS);
}

static void test_send_limits(void **state)
{
	uint8_t *big = calloc(REQUEST_PAYLOAD_MAX + 1, 1);
	char to[REQUEST_URI_MAX + 2];

	(void) state;
	assert_non_null(big);
	memset(to, 'a', sizeof(to) - 1);
	to[sizeof(to) - 1] = '\0';

	begin(PROTO_MSG_SEND, 4);
	add_str(PROTO_TAG_LMR_TYPE, "Az09_-bcdefghijk");
	add(PROTO_TAG_PAYLOAD, big, REQUEST_PAYLOAD_MAX);
	add(PROTO_TAG_TO, to, REQUEST_URI_MAX);
	assert_valid(true, PROTO_MSG_SEND, 4);
	assert_int_equal(req.send.payload_len, REQUEST_PAYLOAD_MAX);
	assert_int_equal(req.send.to_len, REQUEST_URI_MAX);

	begin(PROTO_MSG_SEND, 5);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	add(PROTO_TAG_PAYLOAD, big, REQUEST_PAYLOAD_MAX + 1);
	assert_refused(true, EMSGSIZE, "PAYLOAD is longer than 65535 octets");

	begin_send();
	add(PROTO_TAG_TO, to, REQUEST_URI_MAX + 1);
	assert_refused(true, EINVAL, "TO must be a UTF-8 URI of 1 to 1024 octets");
	free(big);
}

static void test_send_missing_fields(void **state)
{
	(void) state;
	begin(PROTO_MSG_SEND, 4);
	add(PROTO_TAG_PAYLOAD, key, sizeof(key));
	assert_refused(true, EINVAL, "missing field LMR_TYPE");

	begin(PROTO_MSG_SEND, 4);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	assert_refused(true, EINVAL, "missing or empty field PAYLOAD");

	begin(PROTO_MSG_SEND, 4);
	add_str(PROTO_TAG_LMR_TYPE, "TETRA");
	add(PROTO_TAG_PAYLOAD, NULL, 0);
	assert_refused(true, EINVAL, "missing or empty field PAYLOAD");

	begin(PROTO_MSG_SEND, 4);
	assert_refused(true, EINVAL, "missing field LMR_TYPE");
}

static void test_send_bad_lmr_type(void **state)
{
	(void) state;
	begin(PROTO_MSG_SEND, 4);
	add_str(PROTO_TAG_LMR_TYPE, "*");	/* not for a send */
	add(PROTO_TAG_PAYLOAD, key, sizeof(key));
	assert_refused(true, EINVAL, "LMR_TYPE must be 1 to 16 of A-Z a-z 0-9 _ -");

	begin(PROTO_MSG_SEND, 4);
	add_str(PROTO_TAG_LMR_TYPE, "");
	assert_refused(true, EINVAL, "LMR_TYPE must be 1 to 16 of A-Z a-z 0-9 _ -");
}

static void test_send_bad_to(void **state)
{
	static const struct { const char *v; size_t len; } bad[] = {
		{ "", 0 },
		{ "sip:\xc3\x00", 6 },		/* as the frame corpus seed */
		{ "sip:a\0b", 7 },		/* NUL */
		{ "sip:\xc3", 5 },		/* truncated sequence */
		{ "sip:\xc0\xaf", 6 },		/* overlong */
		{ "sip:\xed\xa0\x80", 7 },	/* surrogate */
		{ "sip:\xf4\x90\x80\x80", 8 },	/* past U+10FFFF */
		{ "sip:\xff", 5 },
	};
	size_t i;

	(void) state;
	for (i = 0; i < G_N_ELEMENTS(bad); i++) {
		begin_send();
		add(PROTO_TAG_TO, bad[i].v, bad[i].len);
		assert_refused(true, EINVAL, "TO must be a UTF-8 URI of 1 to 1024 octets");
	}

	begin_send();
	add_str(PROTO_TAG_TO, "sip:kmf@\xc3\xa9x.test\xf0\x9f\x94\x91");
	assert_valid(true, PROTO_MSG_SEND, 4);
}

static void test_send_bad_timeout(void **state)
{
	(void) state;
	begin_send();
	add(PROTO_TAG_TIMEOUT_MS, "\1\0", 2);
	assert_refused(true, EINVAL, "TIMEOUT_MS must be 4 octets");
}

static void test_send_repeated_field(void **state)
{
	(void) state;
	begin_send();
	add(PROTO_TAG_PAYLOAD, key, sizeof(key));
	assert_refused(true, EINVAL, "a SEND field is repeated");

	begin_send();
	add_str(PROTO_TAG_LMR_TYPE, "P25");
	assert_refused(true, EINVAL, "a SEND field is repeated");
}

/* TO follows g_utf8_validate() with a length, as server.c did: every
 * one- and two-octet value, and three- and four-octet ones around every
 * lead octet's edges. */
static bool to_accepted(const uint8_t *v, size_t len)
{
	begin_send();
	add(PROTO_TAG_TO, v, len);
	return decode(true) == REQUEST_VALID;
}

static void assert_to_as_glib(const uint8_t *v, size_t len)
{
	bool glib = g_utf8_validate((const char *) v, (gssize) len, NULL);

	if (to_accepted(v, len) != glib) {
		fprintf(stderr, "TO of %zu octets %02x %02x %02x %02x: glib %d\n", len,
			v[0], len > 1 ? v[1] : 0, len > 2 ? v[2] : 0,
			len > 3 ? v[3] : 0, glib);
		fail();
	}
}

static void test_send_to_utf8_as_glib(void **state)
{
	static const uint8_t trail[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
					 0xa0, 0xbf, 0xc0, 0xff };
	uint8_t v[4];
	unsigned a, b, c, d;

	(void) state;
	for (a = 0; a < 256; a++) {
		v[0] = (uint8_t) a;
		assert_to_as_glib(v, 1);
		for (b = 0; b < 256; b++) {
			v[1] = (uint8_t) b;
			assert_to_as_glib(v, 2);
		}
	}

	for (a = 0xc0; a < 256; a++) {
		v[0] = (uint8_t) a;
		for (b = 0; b < 256; b++) {
			v[1] = (uint8_t) b;
			for (c = 0; c < G_N_ELEMENTS(trail); c++) {
				v[2] = trail[c];
				assert_to_as_glib(v, 3);
				for (d = 0; d < G_N_ELEMENTS(trail); d += 3) {
					v[3] = trail[d];
					assert_to_as_glib(v, 4);
				}
			}
		}
	}
}

/* ---------- QUEUE ---------- */

static void test_queue_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_QUEUE, 6);
	add_u64(PROTO_TAG_AFTER_ID, 41);
	add_u32(PROTO_TAG_LIMIT, 10);
	assert_valid(true, PROTO_MSG_QUEUE, 6);
	assert_int_equal(req.queue.after_id, 41);
	assert_int_equal(req.queue.limit, 10);

	begin(PROTO_MSG_QUEUE, 6);
	assert_valid(true, PROTO_MSG_QUEUE, 6);
	assert_int_equal(req.queue.after_id, 0);
	assert_int_equal(req.queue.limit, PROTO_LIST_MAX_ENTRIES);
}

static void test_queue_limits(void **state)
{
	(void) state;
	begin(PROTO_MSG_QUEUE, 6);
	add_u64(PROTO_TAG_AFTER_ID, INT64_MAX);
	add_u32(PROTO_TAG_LIMIT, 0);
	assert_valid(true, PROTO_MSG_QUEUE, 6);
	assert_true(req.queue.after_id == INT64_MAX);
	assert_int_equal(req.queue.limit, PROTO_LIST_MAX_ENTRIES);

	begin(PROTO_MSG_QUEUE, 6);
	add_u32(PROTO_TAG_LIMIT, PROTO_LIST_MAX_ENTRIES + 1);
	assert_valid(true, PROTO_MSG_QUEUE, 6);
	assert_int_equal(req.queue.limit, PROTO_LIST_MAX_ENTRIES);

	begin(PROTO_MSG_QUEUE, 6);
	add_u64(PROTO_TAG_AFTER_ID, (uint64_t) INT64_MAX + 1);
	assert_refused(true, EINVAL, "AFTER_ID must be a u64 below 2^63");
}

static void test_queue_wrong_lengths(void **state)
{
	(void) state;
	begin(PROTO_MSG_QUEUE, 6);
	add_u32(PROTO_TAG_AFTER_ID, 1);
	assert_refused(true, EINVAL, "AFTER_ID must be a u64 below 2^63");

	begin(PROTO_MSG_QUEUE, 6);
	add_u64(PROTO_TAG_LIMIT, 1);
	assert_refused(true, EINVAL, "LIMIT must be 4 octets");
}

static void test_queue_repeated_field(void **state)
{
	(void) state;
	begin(PROTO_MSG_QUEUE, 6);
	add_u32(PROTO_TAG_LIMIT, 1);
	add_u32(PROTO_TAG_LIMIT, 1);
	assert_refused(true, EINVAL, "a QUEUE field is repeated");
}

/* ---------- TRACE, LOG_LEVEL ---------- */

static void test_trace_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_TRACE, 9);
	assert_valid(true, PROTO_MSG_TRACE, 9);

	begin(PROTO_MSG_TRACE, 10);
	add_str(PROTO_TAG_LOG_LEVEL, "x");
	add_str(PROTO_TAG_LOG_LEVEL, "y");
	assert_valid(true, PROTO_MSG_TRACE, 10);
}

static void test_log_level_valid(void **state)
{
	(void) state;
	begin(PROTO_MSG_LOG_LEVEL, 11);
	add_str(PROTO_TAG_LOG_LEVEL, "debug");
	assert_valid(true, PROTO_MSG_LOG_LEVEL, 11);
	assert_string_equal(req.log_level.level, "debug");

	/* absent: the request only asks */
	begin(PROTO_MSG_LOG_LEVEL, 12);
	add(TAG_UNKNOWN, "x", 1);
	assert_valid(true, PROTO_MSG_LOG_LEVEL, 12);
	assert_string_equal(req.log_level.level, "");

	/* a name of the right shape; whether the agent has it is server.c's */
	begin(PROTO_MSG_LOG_LEVEL, 13);
	add_str(PROTO_TAG_LOG_LEVEL, "abcdefghijklmno");
	assert_valid(true, PROTO_MSG_LOG_LEVEL, 13);
	assert_string_equal(req.log_level.level, "abcdefghijklmno");
}

static void test_log_level_bad(void **state)
{
	static const char *const bad[] = {
		"", "abcdefghijklmnop", "DEBUG", "de bug", "info1",
	};
	size_t i;

	(void) state;
	for (i = 0; i < G_N_ELEMENTS(bad); i++) {
		begin(PROTO_MSG_LOG_LEVEL, 11);
		add_str(PROTO_TAG_LOG_LEVEL, bad[i]);
		assert_refused(true, EINVAL,
			       "LOG_LEVEL must be error, warning, message, info or debug");
	}

	begin(PROTO_MSG_LOG_LEVEL, 11);
	add(PROTO_TAG_LOG_LEVEL, "in\0o", 4);
	assert_refused(true, EINVAL,
		       "LOG_LEVEL must be error, warning, message, info or debug");

	begin(PROTO_MSG_LOG_LEVEL, 11);
	add_str(PROTO_TAG_LOG_LEVEL, "info");
	add_str(PROTO_TAG_LOG_LEVEL, "info");
	assert_refused(true, EINVAL, "a LOG_LEVEL field is repeated");
}

/* ---------- types that are not requests ---------- */

static void test_unknown_type(void **state)
{
	static const struct { uint8_t type; const char *text; } cases[] = {
		{ 0x00, "unknown message type 0x00" },
		{ 0x0b, "unknown message type 0x0b" },
		{ 0x7f, "unknown message type 0x7f" },
		{ 0xff, "unknown message type 0xff" },
		/* the agent's own messages sent back to it */
		{ PROTO_MSG_HELLO_OK, "unknown message type 0x81" },
		{ PROTO_MSG_ERROR, "unknown message type 0x83" },
		{ PROTO_MSG_EVENT, "unknown message type 0x87" },
		{ PROTO_MSG_LIST, "unknown message type 0x88" },
		{ PROTO_MSG_TRACE_EVENT, "unknown message type 0x89" },
		{ PROTO_MSG_LOG_LEVEL_REPLY, "unknown message type 0x8a" },
	};
	size_t i;

	(void) state;
	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		begin(cases[i].type, 7);
		add_u64(PROTO_TAG_MESSAGE_ID, 1);
		assert_refused(true, EOPNOTSUPP, cases[i].text);
	}
}

/* ---------- malformed bodies: the connection closes, no reply ---------- */

static void assert_malformed(const uint8_t *b, size_t len, int frame_err)
{
	int r;

	for (r = 0; r < 2; r++) {
		assert_int_equal(request_decode(r, b, len, &req, &code, &why),
				 REQUEST_MALFORMED);
		assert_int_equal(code, 0);
		assert_non_null(why);
		assert_string_equal(why, frame_strerror(frame_err));
	}
}

static void test_malformed_short_body(void **state)
{
	static const uint8_t b[] = { PROTO_MSG_STATUS, 0, 0, 0 };
	size_t len;

	(void) state;
	for (len = 0; len < FRAME_BODY_MIN; len++)
		assert_malformed(len ? b : NULL, len, FRAME_ERR_SHORT_BODY);
}

static void test_malformed_fields(void **state)
{
	/* HELLO, id 1, VERSION_MIN = 1, then a field header cut after 3 */
	static const uint8_t cut_header[] = {
		1, 0, 0, 0, 1, 1, 0, 0, 0, 4, 0, 0, 0, 1, 2, 0, 0,
	};
	/* a value one octet short */
	static const uint8_t short_value[] = {
		1, 0, 0, 0, 1, 1, 0, 0, 0, 4, 0, 0, 1,
	};
	/* a length far past the body */
	static const uint8_t huge[] = {
		8, 0, 0, 0, 1, 0x43, 0xff, 0xff, 0xff, 0xff, 0,
	};

	(void) state;
	assert_malformed(cut_header, sizeof(cut_header), FRAME_ERR_FIELD_TRUNCATED);
	assert_malformed(short_value, sizeof(short_value), FRAME_ERR_FIELD_TRUNCATED);
	assert_malformed(huge, sizeof(huge), FRAME_ERR_FIELD_TRUNCATED);
}

/* Malformed framing wins over every other answer: it closes silently even
 * where a well-framed body would be refused (unknown type, before HELLO). */
static void test_malformed_before_other_errors(void **state)
{
	static const uint8_t unknown_type[] = { 0x7f, 0, 0, 0, 9, 1, 0 };

	(void) state;
	assert_malformed(unknown_type, sizeof(unknown_type), FRAME_ERR_FIELD_TRUNCATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hello_valid, teardown),
		cmocka_unit_test_teardown(test_hello_without_name, teardown),
		cmocka_unit_test_teardown(test_hello_versions_not_overlapping_still_valid, teardown),
		cmocka_unit_test_teardown(test_hello_unknown_tags_ignored, teardown),
		cmocka_unit_test_teardown(test_hello_missing_version_min, teardown),
		cmocka_unit_test_teardown(test_hello_missing_version_max, teardown),
		cmocka_unit_test_teardown(test_hello_no_fields, teardown),
		cmocka_unit_test_teardown(test_hello_inverted, teardown),
		cmocka_unit_test_teardown(test_hello_repeated_field, teardown),
		cmocka_unit_test_teardown(test_hello_wrong_lengths, teardown),
		cmocka_unit_test_teardown(test_hello_when_negotiated, teardown),
		cmocka_unit_test_teardown(test_request_before_hello, teardown),
		cmocka_unit_test_teardown(test_subscribe_valid, teardown),
		cmocka_unit_test_teardown(test_subscribe_all_and_takeover_0, teardown),
		cmocka_unit_test_teardown(test_subscribe_32_types_and_limits, teardown),
		cmocka_unit_test_teardown(test_subscribe_33_types, teardown),
		cmocka_unit_test_teardown(test_subscribe_without_type, teardown),
		cmocka_unit_test_teardown(test_subscribe_bad_types, teardown),
		cmocka_unit_test_teardown(test_subscribe_bad_takeover, teardown),
		cmocka_unit_test_teardown(test_subscribe_repeated_takeover, teardown),
		cmocka_unit_test_teardown(test_ack_nack_valid, teardown),
		cmocka_unit_test_teardown(test_ack_missing_id, teardown),
		cmocka_unit_test_teardown(test_ack_short_id, teardown),
		cmocka_unit_test_teardown(test_ack_repeated_field, teardown),
		cmocka_unit_test_teardown(test_status_monitor_valid, teardown),
		cmocka_unit_test_teardown(test_send_valid, teardown),
		cmocka_unit_test_teardown(test_send_defaults, teardown),
		cmocka_unit_test_teardown(test_send_limits, teardown),
		cmocka_unit_test_teardown(test_send_missing_fields, teardown),
		cmocka_unit_test_teardown(test_send_bad_lmr_type, teardown),
		cmocka_unit_test_teardown(test_send_bad_to, teardown),
		cmocka_unit_test_teardown(test_send_bad_timeout, teardown),
		cmocka_unit_test_teardown(test_send_repeated_field, teardown),
		cmocka_unit_test_teardown(test_send_to_utf8_as_glib, teardown),
		cmocka_unit_test_teardown(test_queue_valid, teardown),
		cmocka_unit_test_teardown(test_queue_limits, teardown),
		cmocka_unit_test_teardown(test_queue_wrong_lengths, teardown),
		cmocka_unit_test_teardown(test_queue_repeated_field, teardown),
		cmocka_unit_test_teardown(test_trace_valid, teardown),
		cmocka_unit_test_teardown(test_log_level_valid, teardown),
		cmocka_unit_test_teardown(test_log_level_bad, teardown),
		cmocka_unit_test_teardown(test_unknown_type, teardown),
		cmocka_unit_test_teardown(test_malformed_short_body, teardown),
		cmocka_unit_test_teardown(test_malformed_fields, teardown),
		cmocka_unit_test_teardown(test_malformed_before_other_errors, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
