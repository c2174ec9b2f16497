/*
 * test-inbound.c — the IWF MESSAGE check: each row of DESIGN §2's answer
 * table, the order in which the checks run, and SIP URI comparison.
 * Bodies are built with the project's own codecs (mcinfo, iwdata, multipart).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "inbound.h"
#include "iwdata.h"
#include "mcinfo.h"
#include "multipart.h"

#define ME "sip:alice@mc.test"
#define KMF "sip:kmf@iwf.test"

static const char *const kmfs[] = { KMF, NULL };
static const char *const trusted[] = { KMF, "sip:iwf@iwf.test", NULL };
static const struct inbound_policy policy = {
	.mc_service_id = ME,
	.kmf_uris = kmfs,
	.trusted_senders = trusted,
	.max_body = 4096,
	.max_payload = 1000,
};

/* What goes into a test body; NULL fields are left out. */
struct shape {
	const char *request_uri;   /* mcptt-request-uri */
	const char *lmr_type;
	const char *kmf_uri;
	const char *mc_service_id;
	size_t payload_len;
	bool no_mcinfo, no_iwdata;
	const char *raw_xml;       /* replaces the mcptt-info document */
};

struct built {
	uint8_t *body;
	size_t len;
	char *content_type;
	uint8_t payload[4096];
};

static void build(const struct shape *sh, struct built *out)
{
	struct mcinfo info = { .request_uri = (char *)sh->request_uri };
	struct multipart_part parts[2];
	size_t n = 0, xml_len = 0, iw_len = 0;
	char *xml = NULL, *boundary = NULL;
	uint8_t iw[8192];
	struct iwdata_msg msg = { 0 };

	for (size_t i = 0; i < sizeof(out->payload); i++)
		out->payload[i] = (uint8_t)(i * 7);
	if (sh->lmr_type)
		msg.lmr_type = (struct iwdata_field){ (const uint8_t *)sh->lmr_type, strlen(sh->lmr_type) };
	if (sh->kmf_uri)
		msg.kmf_uri = (struct iwdata_field){ (const uint8_t *)sh->kmf_uri, strlen(sh->kmf_uri) };
	if (sh->mc_service_id)
		msg.mc_service_id = (struct iwdata_field){ (const uint8_t *)sh->mc_service_id,
							   strlen(sh->mc_service_id) };
	msg.payload = (struct iwdata_field){ out->payload, sh->payload_len };
	if (!sh->no_mcinfo) {
		if (sh->raw_xml)
			xml = strdup(sh->raw_xml), xml_len = strlen(sh->raw_xml);
		else
			assert_int_equal(mcinfo_build(&info, &xml, &xml_len), 0);
		parts[n++] = (struct multipart_part){ (char *)INBOUND_MCINFO_TYPE, (uint8_t *)xml, xml_len };
	}
	if (!sh->no_iwdata) {
		/* encode without the LMR-type requirement so "missing" shapes can be built */
		assert_int_equal(iwdata_encode(&msg, iw, sizeof(iw), &iw_len), 0);
		parts[n++] = (struct multipart_part){ (char *)INBOUND_IWDATA_TYPE, iw, iw_len };
	}
	assert_int_equal(multipart_build(parts, n, &out->body, &out->len, &boundary), 0);
	out->content_type = g_strdup_printf("multipart/mixed; boundary=\"%s\"", boundary);
	free(boundary);
	free(xml);
}

static void built_clear(struct built *b)
{
	free(b->body);
	g_free(b->content_type);
}

static const struct shape good = {
	.request_uri = ME, .lmr_type = "TETRA", .kmf_uri = KMF, .payload_len = 64,
};

/* Runs the check; returns the status (and leaves rec for the caller). */
static unsigned check(const struct shape *sh, const char *sender, const char *ctype_override,
		      struct inbound_verdict *v, struct spool_record *rec)
{
	struct built b;
	struct inbound_request req;
	int r;

	build(sh, &b);
	req = (struct inbound_request){
		.content_type = ctype_override ? ctype_override : b.content_type,
		.body = b.body, .body_len = b.len, .sender = sender,
		.dedupe_key = "call\n1\ntag", .received_us = 42,
	};
	memset(rec, 0, sizeof(*rec));
	r = inbound_check(&policy, &req, v, rec);
	assert_true((r == 0) == (v->status == 200));
	built_clear(&b);
	return v->status;
}

static unsigned status_of(const struct shape *sh, const char *sender, const char *ctype)
{
	struct inbound_verdict v;
	struct spool_record rec;
	unsigned s = check(sh, sender, ctype, &v, &rec);

	spool_record_clear(&rec);
	return s;
}

static void test_accepted_fills_record(void **state)
{
	struct inbound_verdict v;
	struct spool_record rec;
	uint8_t want[32];
	gsize n = sizeof(want);
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	struct built b;

	(void)state;
	assert_int_equal(check(&good, KMF, NULL, &v, &rec), 200);
	build(&good, &b);
	g_checksum_update(sum, b.payload, 64);
	g_checksum_get_digest(sum, want, &n);
	g_checksum_free(sum);
	assert_string_equal(rec.lmr_type, "TETRA");
	assert_string_equal(rec.kmf_uri, KMF);
	assert_string_equal(rec.mc_service_id, ME);
	assert_string_equal(rec.sender, KMF);
	assert_string_equal(rec.dedupe_key, "call\n1\ntag");
	assert_int_equal(rec.received_us, 42);
	assert_int_equal(rec.payload_len, 64);
	assert_memory_equal(rec.payload, b.payload, 64);
	assert_memory_equal(rec.fingerprint, want, 32);
	built_clear(&b);
	spool_record_clear(&rec);
}

static void test_415_wrong_or_missing_content_type(void **state)
{
	(void)state;
	assert_int_equal(status_of(&good, KMF, "application/sdp"), 415);
	assert_int_equal(status_of(&good, KMF, "multipart/mixedx; boundary=x"), 415);
	assert_int_equal(status_of(&good, KMF, NULL), 200);
	assert_int_equal(status_of(&good, KMF, "MULTIPART/Mixed;boundary=lmrsec-x"), 400);
}

static void test_415_when_absent(void **state)
{
	struct inbound_verdict v;
	struct spool_record rec = { 0 };
	const struct inbound_request req = { .content_type = NULL, .body = (const uint8_t *)"x",
					     .body_len = 1, .sender = KMF };

	(void)state;
	assert_int_equal(inbound_check(&policy, &req, &v, &rec), -EPROTONOSUPPORT);
	assert_int_equal(v.status, 415);
}

static void test_413_body_and_payload(void **state)
{
	struct shape big = good, over = good;

	(void)state;
	big.payload_len = 4000;      /* body over max_body 4096 */
	assert_int_equal(status_of(&big, KMF, NULL), 413);
	over.payload_len = 1001;     /* body fits, payload over max_payload 1000 */
	assert_int_equal(status_of(&over, KMF, NULL), 413);
	over.payload_len = 1000;
	assert_int_equal(status_of(&over, KMF, NULL), 200);
}

static void test_400_shapes(void **state)
{
	struct shape s;
	struct inbound_verdict v;
	struct spool_record rec;

	(void)state;
	s = good; s.no_mcinfo = true;
	assert_int_equal(check(&s, KMF, NULL, &v, &rec), 400);
	assert_non_null(strstr(v.reason, "mcptt-info"));
	s = good; s.no_iwdata = true;
	assert_int_equal(check(&s, KMF, NULL, &v, &rec), 400);
	assert_non_null(strstr(v.reason, "interworking-data"));
	s = good; s.raw_xml = "<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>";
	assert_int_equal(check(&s, KMF, NULL, &v, &rec), 400);
	s = good; s.lmr_type = NULL;
	assert_int_equal(check(&s, KMF, NULL, &v, &rec), 400);
	assert_non_null(strstr(v.reason, "LMR type"));
	assert_int_equal(status_of(&good, KMF, "multipart/mixed"), 400);  /* no boundary */
}

static void test_400_garbage_body(void **state)
{
	struct inbound_verdict v;
	struct spool_record rec = { 0 };
	const struct inbound_request req = { .content_type = "multipart/mixed;boundary=b",
					     .body = (const uint8_t *)"garbage", .body_len = 7,
					     .sender = KMF };

	(void)state;
	assert_int_equal(inbound_check(&policy, &req, &v, &rec), -EBADMSG);
	assert_int_equal(v.status, 400);
}

static void test_404_not_our_mc_service_id(void **state)
{
	struct shape s = good;

	(void)state;
	s.request_uri = "sip:bob@mc.test";
	assert_int_equal(status_of(&s, KMF, NULL), 404);
	s = good;
	s.mc_service_id = "sip:bob@mc.test";
	assert_int_equal(status_of(&s, KMF, NULL), 404);
	s.mc_service_id = "sip:alice@MC.TEST";
	assert_int_equal(status_of(&s, KMF, NULL), 200);
}

static void test_403_sender_and_kmf(void **state)
{
	struct shape s = good;

	(void)state;
	assert_int_equal(status_of(&good, "sip:intruder@iwf.test", NULL), 403);
	assert_int_equal(status_of(&good, NULL, NULL), 403);
	assert_int_equal(status_of(&good, "sip:iwf@iwf.test", NULL), 200);
	s.kmf_uri = "sip:iwf@iwf.test";   /* trusted sender, but not a KMF */
	assert_int_equal(status_of(&s, KMF, NULL), 403);
}

static void test_order_of_checks(void **state)
{
	struct shape s = good;

	(void)state;
	s.request_uri = "sip:bob@mc.test";    /* 404 beats 403 */
	assert_int_equal(status_of(&s, "sip:intruder@x", NULL), 404);
	s.lmr_type = NULL;                     /* 400 beats 404 */
	assert_int_equal(status_of(&s, "sip:intruder@x", NULL), 400);
	s = good;
	s.payload_len = 4000;                  /* 415 beats 413 */
	assert_int_equal(status_of(&s, KMF, "text/plain"), 415);
}

static void test_same_uri(void **state)
{
	(void)state;
	assert_true(inbound_same_uri("sip:alice@mc.test", "SIP:alice@MC.Test"));
	assert_true(inbound_same_uri("<sip:alice@mc.test>", "sip:alice@mc.test;transport=tcp"));
	assert_false(inbound_same_uri("sip:Alice@mc.test", "sip:alice@mc.test"));
	assert_false(inbound_same_uri("sip:alice@mc.test:5060", "sip:alice@mc.test"));
	assert_false(inbound_same_uri("sips:alice@mc.test", "sip:alice@mc.test"));
	assert_false(inbound_same_uri("alice@mc.test", "alice@mc.test"));
	assert_false(inbound_same_uri("sip:", "sip:"));
	assert_false(inbound_same_uri(NULL, "sip:a@b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted_fills_record),
		cmocka_unit_test(test_415_wrong_or_missing_content_type),
		cmocka_unit_test(test_415_when_absent),
		cmocka_unit_test(test_413_body_and_payload),
		cmocka_unit_test(test_400_shapes),
		cmocka_unit_test(test_400_garbage_body),
		cmocka_unit_test(test_404_not_our_mc_service_id),
		cmocka_unit_test(test_403_sender_and_kmf),
		cmocka_unit_test(test_order_of_checks),
		cmocka_unit_test(test_same_uri),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
