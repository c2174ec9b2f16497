/*
 * Unit tests for the Interworking Security Data codec (agent/iwdata.c).
 *
 * Built and run by hand from the top of the tree with:
 *   gcc -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes \
 *       -Wstrict-prototypes -Werror -g -Iagent \
 *       tests/unit/test-iwdata.c agent/iwdata.c -lcmocka -o test-iwdata
 * and the same with -fsanitize=address,undefined -fno-omit-frame-pointer
 * -fno-sanitize-recover=undefined added.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "iwdata.h"

#define KMF_URI		"sip:kmf@iwf.example.org"
#define MC_SERVICE_ID	"sip:alice@mc.example.org"
#define LMR_TYPE	"TETRA"
#define PAYLOAD		"\x00\x01\xfe\xffkey"
#define PAYLOAD_LEN	(sizeof(PAYLOAD) - 1)

/* A message under construction, big enough for any test message. */
struct wire {
	uint8_t buf[IWDATA_MAX_ENCODED_SIZE + 256];
	size_t len;
};

static int wire_setup(void **state)
{
	*state = calloc(1, sizeof(struct wire));
	return *state ? 0 : -1;
}

static int wire_teardown(void **state)
{
	free(*state);
	return 0;
}

static void wire_raw(struct wire *w, const void *p, size_t n)
{
	assert_true(n <= sizeof(w->buf) - w->len);
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void wire_byte(struct wire *w, uint8_t b)
{
	wire_raw(w, &b, 1);
}

/* An IE whose length field says len and whose value is exactly len bytes. */
static void wire_ie(struct wire *w, uint8_t iei, const void *val, size_t len)
{
	assert_true(len <= 0xffff);
	wire_byte(w, iei);
	wire_byte(w, (uint8_t)(len >> 8));
	wire_byte(w, (uint8_t)len);
	wire_raw(w, val, len);
}

static void wire_ie_str(struct wire *w, uint8_t iei, const char *s)
{
	wire_ie(w, iei, s, strlen(s));
}

static struct wire *wire_message(void **state)
{
	struct wire *w = *state;

	w->len = 0;
	wire_byte(w, IWDATA_MSG_NON3GPP_SECURITY);
	return w;
}

/* A valid message toward the client: LMR type, KMF URI, payload. */
static struct wire *wire_valid(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	return w;
}

static int decode(const struct wire *w, struct iwdata_msg *out)
{
	return iwdata_decode(w->buf, w->len, IWDATA_REQUIRE_LMR_TYPE, out);
}

static int decode_status(const struct wire *w)
{
	struct iwdata_msg out;

	return decode(w, &out);
}

static struct iwdata_field str_field(const char *s)
{
	return (struct iwdata_field) { (const uint8_t *) s, strlen(s) };
}

static struct iwdata_field bytes_field(const void *p, size_t len)
{
	return (struct iwdata_field) { p, len };
}

static struct iwdata_msg valid_msg(void)
{
	return (struct iwdata_msg) {
		.lmr_type = str_field(LMR_TYPE),
		.kmf_uri = str_field(KMF_URI),
		.payload = bytes_field(PAYLOAD, PAYLOAD_LEN),
	};
}

static void assert_field_equal(const struct iwdata_field *got,
			       const struct iwdata_field *want)
{
	assert_int_equal(got->len, want->len);
	if (want->len)
		assert_memory_equal(got->ptr, want->ptr, want->len);
}

static void assert_round_trip(const struct iwdata_msg *in, unsigned int flags)
{
	size_t need = iwdata_encoded_size(in);
	size_t written = 0;
	struct iwdata_msg out;
	uint8_t *buf;

	assert_true(need > 0);
	buf = malloc(need);
	assert_non_null(buf);

	assert_int_equal(iwdata_encode(in, buf, need, &written), 0);
	assert_int_equal(written, need);
	assert_int_equal(iwdata_decode(buf, written, flags, &out), 0);

	assert_field_equal(&out.lmr_type, &in->lmr_type);
	assert_field_equal(&out.kmf_uri, &in->kmf_uri);
	assert_field_equal(&out.mc_service_id, &in->mc_service_id);
	assert_field_equal(&out.payload, &in->payload);
	free(buf);
}

/* A string of n copies of c after prefix, in a buffer the caller frees. */
static char *padded(const char *prefix, char c, size_t n)
{
	size_t plen = strlen(prefix);
	char *s = malloc(plen + n + 1);

	assert_non_null(s);
	memcpy(s, prefix, plen);
	memset(s + plen, c, n);
	s[plen + n] = '\0';
	return s;
}

/* --- round trips --- */

static void test_round_trip_without_mc_service_id(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
}

static void test_round_trip_with_mc_service_id(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.mc_service_id = str_field(MC_SERVICE_ID);
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
}

static void test_round_trip_without_lmr_type(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.lmr_type = bytes_field(NULL, 0);
	assert_round_trip(&in, 0);
}

static void test_round_trip_payload_with_every_byte_value(void **state)
{
	struct iwdata_msg in = valid_msg();
	uint8_t payload[256];
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;

	in.payload = bytes_field(payload, sizeof(payload));
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
}

static void test_round_trip_max_payload(void **state)
{
	struct iwdata_msg in = valid_msg();
	uint8_t *payload = malloc(IWDATA_MAX_PAYLOAD);
	size_t i;

	(void) state;
	assert_non_null(payload);
	for (i = 0; i < IWDATA_MAX_PAYLOAD; i++)
		payload[i] = (uint8_t)(i * 7 + 3);

	in.payload = bytes_field(payload, IWDATA_MAX_PAYLOAD);
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
	free(payload);
}

static void test_round_trip_16_char_lmr_type(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.lmr_type = str_field("Az09_-TETRA-P25_");
	assert_int_equal(in.lmr_type.len, IWDATA_MAX_LMR_TYPE);
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
}

static void test_round_trip_1024_octet_uris(void **state)
{
	struct iwdata_msg in = valid_msg();
	char *kmf = padded("sip:", 'k', IWDATA_MAX_URI - 4);
	char *mc = padded("sip:", 'm', IWDATA_MAX_URI - 4);

	(void) state;
	in.kmf_uri = str_field(kmf);
	in.mc_service_id = str_field(mc);
	assert_int_equal(in.kmf_uri.len, IWDATA_MAX_URI);
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
	free(kmf);
	free(mc);
}

static void test_round_trip_largest_message(void **state)
{
	struct iwdata_msg in = valid_msg();
	char *kmf = padded("sip:", 'k', IWDATA_MAX_URI - 4);
	char *mc = padded("sip:", 'm', IWDATA_MAX_URI - 4);
	uint8_t *payload = calloc(1, IWDATA_MAX_PAYLOAD);

	(void) state;
	assert_non_null(payload);
	in.lmr_type = str_field("ABCDEFGHIJKLMNOP");
	in.kmf_uri = str_field(kmf);
	in.mc_service_id = str_field(mc);
	in.payload = bytes_field(payload, IWDATA_MAX_PAYLOAD);
	assert_int_equal(iwdata_encoded_size(&in), IWDATA_MAX_ENCODED_SIZE);
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
	free(kmf);
	free(mc);
	free(payload);
}

static void test_round_trip_utf8_uri(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	/* ü (2 octets), € (3), 😀 (4), U+00A0 (first non-control after C1) */
	in.kmf_uri = str_field("sip:j\xc3\xbcrgen\xe2\x82\xac\xf0\x9f\x98\x80\xc2\xa0@x.org");
	assert_round_trip(&in, IWDATA_REQUIRE_LMR_TYPE);
}

static void test_encode_writes_documented_layout(void **state)
{
	static const uint8_t want[] = {
		0x01,
		0x01, 0x00, 0x03, 'P', '2', '5',
		0x02, 0x00, 0x05, 's', 'i', 'p', ':', 'k',
		0x03, 0x00, 0x05, 's', 'i', 'p', ':', 'a',
		0x04, 0x00, 0x02, 0x00, 0xff,
	};
	struct iwdata_msg in = {
		.lmr_type = str_field("P25"),
		.kmf_uri = str_field("sip:k"),
		.mc_service_id = str_field("sip:a"),
		.payload = bytes_field("\x00\xff", 2),
	};
	uint8_t buf[64];
	size_t written = 0;

	(void) state;
	assert_int_equal(iwdata_encoded_size(&in), sizeof(want));
	assert_int_equal(iwdata_encode(&in, buf, sizeof(buf), &written), 0);
	assert_int_equal(written, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

/* --- decoding valid input --- */

static void test_decode_views_point_into_buffer(void **state)
{
	struct wire *w = wire_valid(state);
	struct iwdata_msg out;

	assert_int_equal(decode(w, &out), 0);
	assert_ptr_equal(out.lmr_type.ptr, w->buf + 1 + 3);
	assert_ptr_equal(out.kmf_uri.ptr, out.lmr_type.ptr + strlen(LMR_TYPE) + 3);
	assert_ptr_equal(out.payload.ptr, w->buf + w->len - PAYLOAD_LEN);
	assert_int_equal(out.mc_service_id.len, 0);
}

static void test_decode_accepts_ies_in_any_order(void **state)
{
	struct wire *w = wire_message(state);
	struct iwdata_msg out;

	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	wire_ie_str(w, IWDATA_IEI_MC_SERVICE_ID, MC_SERVICE_ID);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);

	assert_int_equal(decode(w, &out), 0);
	assert_int_equal(out.payload.len, PAYLOAD_LEN);
	assert_memory_equal(out.payload.ptr, PAYLOAD, PAYLOAD_LEN);
	assert_int_equal(out.mc_service_id.len, strlen(MC_SERVICE_ID));
	assert_int_equal(out.kmf_uri.len, strlen(KMF_URI));
	assert_int_equal(out.lmr_type.len, strlen(LMR_TYPE));
}

static void test_decode_skips_unknown_iei(void **state)
{
	struct wire *w = wire_message(state);
	struct iwdata_msg out;

	wire_ie_str(w, 0x00, "ignored");
	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie(w, 0x05, "", 0);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie(w, 0x7f, "\x02\x00\x05", 3);	/* looks like an IE inside */
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	wire_ie_str(w, 0xff, "last");

	assert_int_equal(decode(w, &out), 0);
	assert_int_equal(out.kmf_uri.len, strlen(KMF_URI));
	assert_memory_equal(out.kmf_uri.ptr, KMF_URI, strlen(KMF_URI));
	assert_int_equal(out.payload.len, PAYLOAD_LEN);
	assert_int_equal(out.lmr_type.len, strlen(LMR_TYPE));
	assert_int_equal(out.mc_service_id.len, 0);
}

static void test_decode_skips_repeated_unknown_iei(void **state)
{
	struct wire *w = wire_valid(state);

	wire_ie_str(w, 0x42, "one");
	wire_ie_str(w, 0x42, "two");
	assert_int_equal(decode_status(w), 0);
}

static void test_decode_accepts_missing_lmr_type_without_flag(void **state)
{
	struct wire *w = wire_message(state);
	struct iwdata_msg out;

	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);

	assert_int_equal(iwdata_decode(w->buf, w->len, 0, &out), 0);
	assert_int_equal(out.lmr_type.len, 0);
}

/* --- malformed framing --- */

static void test_decode_empty_buffer_is_truncated_header(void **state)
{
	struct iwdata_msg out;
	uint8_t byte = IWDATA_MSG_NON3GPP_SECURITY;

	(void) state;
	assert_int_equal(iwdata_decode(&byte, 0, 0, &out),
			 IWDATA_ERR_TRUNCATED_HEADER);
	assert_int_equal(iwdata_decode(NULL, 0, 0, &out),
			 IWDATA_ERR_TRUNCATED_HEADER);
}

static void test_decode_unknown_message_type(void **state)
{
	static const uint8_t types[] = { 0x00, 0x02, 0x80, 0xff };
	struct wire *w = wire_valid(state);
	size_t i;

	for (i = 0; i < sizeof(types); i++) {
		w->buf[0] = types[i];
		assert_int_equal(decode_status(w), IWDATA_ERR_MESSAGE_TYPE);
	}
}

static void test_decode_one_trailing_byte(void **state)
{
	struct wire *w = wire_valid(state);

	wire_byte(w, IWDATA_IEI_PAYLOAD);
	assert_int_equal(decode_status(w), IWDATA_ERR_TRAILING_BYTES);
}

static void test_decode_two_trailing_bytes(void **state)
{
	struct wire *w = wire_valid(state);

	wire_raw(w, "\x04\x00", 2);
	assert_int_equal(decode_status(w), IWDATA_ERR_TRAILING_BYTES);
}

static void test_decode_length_past_end(void **state)
{
	struct wire *w = wire_valid(state);

	/* The payload IE is last: claim one octet more than is there. */
	w->buf[w->len - PAYLOAD_LEN - 1] = (uint8_t)(PAYLOAD_LEN + 1);
	assert_int_equal(decode_status(w), IWDATA_ERR_LENGTH_PAST_END);
}

static void test_decode_unknown_iei_length_past_end(void **state)
{
	struct wire *w = wire_valid(state);

	wire_raw(w, "\x99\xff\xff" "abc", 6);
	assert_int_equal(decode_status(w), IWDATA_ERR_LENGTH_PAST_END);
}

static void test_decode_header_only_ie_past_end(void **state)
{
	struct wire *w = wire_valid(state);

	wire_raw(w, "\x04\x00\x01", 3);
	assert_int_equal(decode_status(w), IWDATA_ERR_LENGTH_PAST_END);
}

static void test_decode_repeated_lmr_type(void **state)
{
	struct wire *w = wire_valid(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, "P25");
	assert_int_equal(decode_status(w), IWDATA_ERR_REPEATED_IE);
}

static void test_decode_repeated_kmf_uri(void **state)
{
	struct wire *w = wire_valid(state);

	wire_ie_str(w, IWDATA_IEI_KMF_URI, "sip:other@iwf.example.org");
	assert_int_equal(decode_status(w), IWDATA_ERR_REPEATED_IE);
}

static void test_decode_repeated_mc_service_id(void **state)
{
	struct wire *w = wire_valid(state);

	wire_ie_str(w, IWDATA_IEI_MC_SERVICE_ID, MC_SERVICE_ID);
	wire_ie_str(w, IWDATA_IEI_MC_SERVICE_ID, MC_SERVICE_ID);
	assert_int_equal(decode_status(w), IWDATA_ERR_REPEATED_IE);
}

static void test_decode_repeated_payload(void **state)
{
	struct wire *w = wire_valid(state);

	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	assert_int_equal(decode_status(w), IWDATA_ERR_REPEATED_IE);
}

/* An empty first copy must not let a second one slip through as "the" IE. */
static void test_decode_repeated_ie_after_empty_copy(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie(w, IWDATA_IEI_LMR_TYPE, "", 0);
	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	assert_int_equal(decode_status(w), IWDATA_ERR_REPEATED_IE);
}

/* The payload IE comes last, so no proper prefix is a whole message. */
static void test_decode_every_truncation_fails(void **state)
{
	struct wire *w = wire_message(state);
	struct iwdata_msg out;
	size_t full;

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie_str(w, IWDATA_IEI_MC_SERVICE_ID, MC_SERVICE_ID);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	full = w->len;
	assert_int_equal(decode(w, &out), 0);
	for (w->len = 0; w->len < full; w->len++)
		assert_true(decode(w, &out) < 0);
}

/* --- missing mandatory IEs --- */

static void test_decode_missing_lmr_type_when_required(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	assert_int_equal(decode_status(w), IWDATA_ERR_MISSING_LMR_TYPE);
}

static void test_decode_missing_kmf_uri(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie_str(w, IWDATA_IEI_MC_SERVICE_ID, MC_SERVICE_ID);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	assert_int_equal(decode_status(w), IWDATA_ERR_MISSING_KMF_URI);
}

static void test_decode_missing_payload(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	assert_int_equal(decode_status(w), IWDATA_ERR_MISSING_PAYLOAD);
}

static void test_decode_type_octet_only_misses_kmf_uri(void **state)
{
	struct wire *w = wire_message(state);

	assert_int_equal(iwdata_decode(w->buf, w->len, 0, &(struct iwdata_msg){ 0 }),
			 IWDATA_ERR_MISSING_KMF_URI);
}

/* --- bad IE content --- */

static int decode_with_lmr_type(void **state, const void *lmr_type, size_t len)
{
	struct wire *w = wire_message(state);

	wire_ie(w, IWDATA_IEI_LMR_TYPE, lmr_type, len);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	return decode_status(w);
}

static int decode_with_kmf_uri(void **state, const void *uri, size_t len)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie(w, IWDATA_IEI_KMF_URI, uri, len);
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	return decode_status(w);
}

static int decode_with_mc_service_id(void **state, const void *uri, size_t len)
{
	struct wire *w = wire_valid(state);

	wire_ie(w, IWDATA_IEI_MC_SERVICE_ID, uri, len);
	return decode_status(w);
}

static void test_decode_empty_lmr_type(void **state)
{
	assert_int_equal(decode_with_lmr_type(state, "", 0),
			 IWDATA_ERR_BAD_LMR_TYPE);
}

static void test_decode_17_char_lmr_type(void **state)
{
	assert_int_equal(decode_with_lmr_type(state, "ABCDEFGHIJKLMNOPQ", 17),
			 IWDATA_ERR_BAD_LMR_TYPE);
}

static void test_decode_lmr_type_with_space(void **state)
{
	assert_int_equal(decode_with_lmr_type(state, "TETRA 2", 7),
			 IWDATA_ERR_BAD_LMR_TYPE);
}

static void test_decode_non_ascii_lmr_type(void **state)
{
	assert_int_equal(decode_with_lmr_type(state, "T\xc3\x89TRA", 6),
			 IWDATA_ERR_BAD_LMR_TYPE);
}

static void test_decode_lmr_type_with_nul(void **state)
{
	assert_int_equal(decode_with_lmr_type(state, "P25\0", 4),
			 IWDATA_ERR_BAD_LMR_TYPE);
}

static void test_decode_kmf_uri_1025_octets_too_long(void **state)
{
	char *uri = padded("sip:", 'k', IWDATA_MAX_URI + 1 - 4);

	assert_int_equal(decode_with_kmf_uri(state, uri, strlen(uri)),
			 IWDATA_ERR_URI_TOO_LONG);
	free(uri);
}

static void test_decode_mc_service_id_1025_octets_too_long(void **state)
{
	char *uri = padded("sip:", 'm', IWDATA_MAX_URI + 1 - 4);

	assert_int_equal(decode_with_mc_service_id(state, uri, strlen(uri)),
			 IWDATA_ERR_URI_TOO_LONG);
	free(uri);
}

static void test_decode_uri_invalid_utf8(void **state)
{
	static const char *const bad[] = {
		"sip:a\x80",			/* lone continuation octet */
		"sip:a\xc3",			/* sequence cut at the end */
		"sip:a\xc3(b",			/* lead octet without continuation */
		"sip:a\xc0\xaf",		/* overlong '/' */
		"sip:a\xe0\x80\xaf",		/* overlong, 3 octets */
		"sip:a\xed\xa0\x80",		/* UTF-16 surrogate */
		"sip:a\xf4\x90\x80\x80",	/* past U+10FFFF */
		"sip:a\xff",			/* never valid */
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode_with_kmf_uri(state, bad[i], strlen(bad[i])),
				 IWDATA_ERR_BAD_URI);
}

static void test_decode_uri_with_control_character(void **state)
{
	static const struct { const char *s; size_t len; } bad[] = {
		{ "sip:a\0b", 7 },
		{ "sip:a\r\nb", 8 },
		{ "sip:a\tb", 7 },
		{ "sip:a\x7f", 6 },
		{ "sip:a\xc2\x85", 7 },		/* U+0085, a C1 control */
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode_with_kmf_uri(state, bad[i].s, bad[i].len),
				 IWDATA_ERR_BAD_URI);
}

static void test_decode_uri_without_scheme(void **state)
{
	static const char *const bad[] = {
		"kmf@iwf.example.org",
		":kmf@iwf.example.org",
		"1sip:kmf@iwf.example.org",
		"s p:kmf",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode_with_kmf_uri(state, bad[i], strlen(bad[i])),
				 IWDATA_ERR_BAD_URI);
}

static void test_decode_empty_kmf_uri(void **state)
{
	assert_int_equal(decode_with_kmf_uri(state, "", 0), IWDATA_ERR_BAD_URI);
}

static void test_decode_empty_mc_service_id(void **state)
{
	assert_int_equal(decode_with_mc_service_id(state, "", 0),
			 IWDATA_ERR_BAD_URI);
}

static void test_decode_invalid_mc_service_id(void **state)
{
	assert_int_equal(decode_with_mc_service_id(state, "sip:\xc3", 5),
			 IWDATA_ERR_BAD_URI);
}

static void test_decode_zero_length_payload(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, LMR_TYPE);
	wire_ie_str(w, IWDATA_IEI_KMF_URI, KMF_URI);
	wire_ie(w, IWDATA_IEI_PAYLOAD, "", 0);
	assert_int_equal(decode_status(w), IWDATA_ERR_EMPTY_PAYLOAD);
}

/* --- order of checks and the output on failure --- */

static void test_decode_reports_framing_before_content(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, "bad type");
	wire_raw(w, "\x02\x00\x09sip:", 7);
	assert_int_equal(decode_status(w), IWDATA_ERR_LENGTH_PAST_END);
}

static void test_decode_reports_missing_before_content(void **state)
{
	struct wire *w = wire_message(state);

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, "bad type");
	wire_ie(w, IWDATA_IEI_PAYLOAD, PAYLOAD, PAYLOAD_LEN);
	assert_int_equal(decode_status(w), IWDATA_ERR_MISSING_KMF_URI);
}

static void test_decode_clears_output_on_error(void **state)
{
	struct wire *w = wire_valid(state);
	struct iwdata_msg out;

	wire_ie_str(w, IWDATA_IEI_LMR_TYPE, "P25");
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(decode(w, &out), IWDATA_ERR_REPEATED_IE);
	assert_null(out.lmr_type.ptr);
	assert_int_equal(out.lmr_type.len, 0);
	assert_null(out.kmf_uri.ptr);
	assert_int_equal(out.kmf_uri.len, 0);
	assert_null(out.mc_service_id.ptr);
	assert_null(out.payload.ptr);
	assert_int_equal(out.payload.len, 0);
}

static void test_decode_rejects_unknown_flags(void **state)
{
	struct wire *w = wire_valid(state);
	struct iwdata_msg out;

	assert_int_equal(iwdata_decode(w->buf, w->len, 1u << 7, &out),
			 IWDATA_ERR_INVALID_ARGUMENT);
}

/* --- encoding --- */

static void assert_encode_refuses(const struct iwdata_msg *in, int err)
{
	uint8_t buf[256];
	size_t written = 12345;

	assert_int_equal(iwdata_encode(in, buf, sizeof(buf), &written), err);
	assert_int_equal(written, 12345);
	assert_int_equal(iwdata_encoded_size(in), 0);
}

static void test_encode_refuses_bad_lmr_type(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.lmr_type = str_field("TETRA 2");
	assert_encode_refuses(&in, IWDATA_ERR_BAD_LMR_TYPE);
	in.lmr_type = str_field("ABCDEFGHIJKLMNOPQ");
	assert_encode_refuses(&in, IWDATA_ERR_BAD_LMR_TYPE);
}

static void test_encode_refuses_bad_uri(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.kmf_uri = str_field("sip:\xc3");
	assert_encode_refuses(&in, IWDATA_ERR_BAD_URI);
	in.kmf_uri = str_field(KMF_URI);
	in.mc_service_id = str_field("alice");
	assert_encode_refuses(&in, IWDATA_ERR_BAD_URI);
}

static void test_encode_refuses_uri_too_long(void **state)
{
	struct iwdata_msg in = valid_msg();
	char *uri = padded("sip:", 'k', IWDATA_MAX_URI + 1 - 4);

	(void) state;
	in.kmf_uri = str_field(uri);
	assert_encode_refuses(&in, IWDATA_ERR_URI_TOO_LONG);
	free(uri);
}

static void test_encode_refuses_missing_kmf_uri(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.kmf_uri = bytes_field(NULL, 0);
	assert_encode_refuses(&in, IWDATA_ERR_MISSING_KMF_URI);
}

static void test_encode_refuses_missing_payload(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.payload = bytes_field(PAYLOAD, 0);
	assert_encode_refuses(&in, IWDATA_ERR_MISSING_PAYLOAD);
}

static void test_encode_refuses_payload_too_large(void **state)
{
	struct iwdata_msg in = valid_msg();
	uint8_t *payload = calloc(1, IWDATA_MAX_PAYLOAD + 1);

	(void) state;
	assert_non_null(payload);
	in.payload = bytes_field(payload, IWDATA_MAX_PAYLOAD + 1);
	assert_encode_refuses(&in, IWDATA_ERR_PAYLOAD_TOO_LARGE);
	free(payload);
}

static void test_encode_refuses_field_without_pointer(void **state)
{
	struct iwdata_msg in = valid_msg();

	(void) state;
	in.payload = bytes_field(NULL, 4);
	assert_encode_refuses(&in, IWDATA_ERR_INVALID_ARGUMENT);
	assert_encode_refuses(NULL, IWDATA_ERR_INVALID_ARGUMENT);
}

static void test_encode_too_small_buffer(void **state)
{
	struct iwdata_msg in = valid_msg();
	size_t need = iwdata_encoded_size(&in);
	uint8_t buf[256];
	size_t written = 0;
	size_t i;

	(void) state;
	assert_true(need > 1 && need <= sizeof(buf));
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(iwdata_encode(&in, buf, need - 1, &written),
			 IWDATA_ERR_NO_SPACE);
	assert_int_equal(written, need);
	for (i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
}

static void test_encode_exact_buffer(void **state)
{
	struct iwdata_msg in = valid_msg();
	size_t need = iwdata_encoded_size(&in);
	uint8_t buf[256];

	(void) state;
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(iwdata_encode(&in, buf, need, NULL), 0);
	assert_int_equal(buf[need], 0xa5);
}

static void test_encode_null_buffer_reports_size(void **state)
{
	struct iwdata_msg in = valid_msg();
	size_t written = 0;

	(void) state;
	assert_int_equal(iwdata_encode(&in, NULL, 0, &written),
			 IWDATA_ERR_NO_SPACE);
	assert_int_equal(written, iwdata_encoded_size(&in));
	assert_int_equal(iwdata_encode(&in, NULL, 1, &written),
			 IWDATA_ERR_INVALID_ARGUMENT);
}

/* --- error text --- */

static void test_strerror_distinct_for_each_code(void **state)
{
	static const int codes[] = {
		IWDATA_ERR_TRUNCATED_HEADER, IWDATA_ERR_MESSAGE_TYPE,
		IWDATA_ERR_TRAILING_BYTES, IWDATA_ERR_LENGTH_PAST_END,
		IWDATA_ERR_REPEATED_IE, IWDATA_ERR_MISSING_LMR_TYPE,
		IWDATA_ERR_MISSING_KMF_URI, IWDATA_ERR_MISSING_PAYLOAD,
		IWDATA_ERR_BAD_LMR_TYPE, IWDATA_ERR_BAD_URI,
		IWDATA_ERR_URI_TOO_LONG, IWDATA_ERR_EMPTY_PAYLOAD,
		IWDATA_ERR_PAYLOAD_TOO_LARGE, IWDATA_ERR_NO_SPACE,
		IWDATA_ERR_INVALID_ARGUMENT,
	};
	const char *unknown = iwdata_strerror(1000);
	size_t n = sizeof(codes) / sizeof(codes[0]);
	size_t i, j;

	(void) state;
	assert_non_null(unknown);
	for (i = 0; i < n; i++) {
		const char *text = iwdata_strerror(codes[i]);

		assert_true(codes[i] < 0);
		assert_non_null(text);
		/* Goes into a SIP reason phrase: one printable line. */
		assert_null(strpbrk(text, "\r\n"));
		assert_string_not_equal(text, unknown);
		for (j = 0; j < i; j++) {
			assert_int_not_equal(codes[i], codes[j]);
			assert_string_not_equal(text, iwdata_strerror(codes[j]));
		}
	}
}

static void test_strerror_unknown_code(void **state)
{
	(void) state;
	assert_non_null(iwdata_strerror(0));
	assert_non_null(iwdata_strerror(-1000));
	assert_non_null(iwdata_strerror(42));
}

#define T(f) cmocka_unit_test_setup_teardown(f, wire_setup, wire_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip_without_mc_service_id),
		T(test_round_trip_with_mc_service_id),
		T(test_round_trip_without_lmr_type),
		T(test_round_trip_payload_with_every_byte_value),
		T(test_round_trip_max_payload),
		T(test_round_trip_16_char_lmr_type),
		T(test_round_trip_1024_octet_uris),
		T(test_round_trip_largest_message),
		T(test_round_trip_utf8_uri),
		T(test_encode_writes_documented_layout),
		T(test_decode_views_point_into_buffer),
		T(test_decode_accepts_ies_in_any_order),
		T(test_decode_skips_unknown_iei),
		T(test_decode_skips_repeated_unknown_iei),
		T(test_decode_accepts_missing_lmr_type_without_flag),
		T(test_decode_empty_buffer_is_truncated_header),
		T(test_decode_unknown_message_type),
		T(test_decode_one_trailing_byte),
		T(test_decode_two_trailing_bytes),
		T(test_decode_length_past_end),
		T(test_decode_unknown_iei_length_past_end),
		T(test_decode_header_only_ie_past_end),
		T(test_decode_repeated_lmr_type),
		T(test_decode_repeated_kmf_uri),
		T(test_decode_repeated_mc_service_id),
		T(test_decode_repeated_payload),
		T(test_decode_repeated_ie_after_empty_copy),
		T(test_decode_every_truncation_fails),
		T(test_decode_missing_lmr_type_when_required),
		T(test_decode_missing_kmf_uri),
		T(test_decode_missing_payload),
		T(test_decode_type_octet_only_misses_kmf_uri),
		T(test_decode_empty_lmr_type),
		T(test_decode_17_char_lmr_type),
		T(test_decode_lmr_type_with_space),
		T(test_decode_non_ascii_lmr_type),
		T(test_decode_lmr_type_with_nul),
		T(test_decode_kmf_uri_1025_octets_too_long),
		T(test_decode_mc_service_id_1025_octets_too_long),
		T(test_decode_uri_invalid_utf8),
		T(test_decode_uri_with_control_character),
		T(test_decode_uri_without_scheme),
		T(test_decode_empty_kmf_uri),
		T(test_decode_empty_mc_service_id),
		T(test_decode_invalid_mc_service_id),
		T(test_decode_zero_length_payload),
		T(test_decode_reports_framing_before_content),
		T(test_decode_reports_missing_before_content),
		T(test_decode_clears_output_on_error),
		T(test_decode_rejects_unknown_flags),
		T(test_encode_refuses_bad_lmr_type),
		T(test_encode_refuses_bad_uri),
		T(test_encode_refuses_uri_too_long),
		T(test_encode_refuses_missing_kmf_uri),
		T(test_encode_refuses_missing_payload),
		T(test_encode_refuses_payload_too_large),
		T(test_encode_refuses_field_without_pointer),
		T(test_encode_too_small_buffer),
		T(test_encode_exact_buffer),
		T(test_encode_null_buffer_reports_size),
		T(test_strerror_distinct_for_each_code),
		T(test_strerror_unknown_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
