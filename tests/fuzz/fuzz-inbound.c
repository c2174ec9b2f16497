/*
 * fuzz-inbound — the whole validation path of an IWF-originated MESSAGE:
 * inbound_check() over the Content-Type, the multipart split (sofia-sip's
 * MIME parser behind our framing check), the mcptt-info XML and the
 * interworking data, the identity checks and the record it fills.
 *
 * Input layout (text-friendly, so seeds stay readable):
 *   SENDER LF CONTENT-TYPE LF BODY
 * An empty SENDER or CONTENT-TYPE line stands for an absent header (NULL);
 * without a second LF the rest is the Content-Type and the body is empty.
 * The policy is fixed and its limits are small, so every row of DESIGN §2's
 * answer table is reachable within libFuzzer's input sizes.
 *
 * Properties:
 *  - the answer is one of 200 400 403 404 413 415 and its reason phrase is
 *    one printable line;
 *  - inbound_check() returns 0 exactly when it answers 200;
 *  - 200 only with a filled record: LMR type, a configured KMF, our MC
 *    service ID, the sender and dedupe key given, a payload within
 *    max_payload that occurs in the body, its SHA-256 fingerprint;
 *  - any other answer leaves the record untouched (nothing to spool).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1		/* memmem */
#endif

#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "inbound.h"
#include "iwdata.h"

#define ME		"sip:alice@mc.test"
#define KMF		"sip:kmf@iwf.test"
#define IWF		"sip:iwf@iwf.test"
#define DEDUPE_KEY	"call-id\n1\nfrom-tag"
#define RECEIVED_US	INT64_C(1700000000000000)

static const char *const kmf_uris[] = { KMF, NULL };
static const char *const trusted_senders[] = { KMF, IWF, NULL };

static const struct inbound_policy policy = {
	.mc_service_id = ME,
	.kmf_uris = kmf_uris,
	.trusted_senders = trusted_senders,
	.max_body = 8192,
	.max_payload = 2048,
};

/* One line of the input (up to LF or the end) as a C string, NULL when it
 * is empty; the header values sofia-sip hands the agent are C strings too. */
FUZZ_HARNESS
static char *take_line(const uint8_t **p, size_t *left)
{
	const uint8_t *lf = memchr(*p, '\n', *left);
	size_t n = lf ? (size_t) (lf - *p) : *left;
	char *line = n ? g_strndup((const char *) *p, n) : NULL;

	*p += lf ? n + 1 : n;
	*left -= lf ? n + 1 : n;
	return line;
}

FUZZ_HARNESS
static bool status_allowed(unsigned status)
{
	switch (status) {
	case 200: case 400: case 403: case 404: case 413: case 415:
		return true;
	}
	return false;
}

FUZZ_HARNESS
static bool lmr_type_token(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= IWDATA_MAX_LMR_TYPE &&
		strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		       "0123456789_-") == n;
}

/* Checked against GLib's SHA-256, an implementation independent of the
 * agent's own (libclient/sha256.c). */
FUZZ_HARNESS
static bool fingerprint_matches(const struct spool_record *rec)
{
	uint8_t want[SPOOL_FINGERPRINT_LEN];
	gsize n = sizeof(want);
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(sum, rec->payload, rec->payload_len);
	g_checksum_get_digest(sum, want, &n);
	g_checksum_free(sum);
	return n == sizeof(want) && !memcmp(want, rec->fingerprint, n);
}

FUZZ_HARNESS
static void check_accepted(const struct inbound_request *req,
			   const struct spool_record *rec)
{
	FUZZ_ASSERT(rec->lmr_type && lmr_type_token(rec->lmr_type));
	FUZZ_ASSERT(rec->kmf_uri && inbound_same_uri(rec->kmf_uri, KMF));
	FUZZ_ASSERT(rec->mc_service_id && inbound_same_uri(rec->mc_service_id, ME));
	FUZZ_ASSERT(req->sender && rec->sender && !strcmp(rec->sender, req->sender));
	FUZZ_ASSERT(rec->dedupe_key && !strcmp(rec->dedupe_key, DEDUPE_KEY));
	FUZZ_ASSERT(rec->received_us == RECEIVED_US && rec->id == 0);
	FUZZ_ASSERT(rec->payload && rec->payload_len >= 1 &&
		    rec->payload_len <= policy.max_payload);
	FUZZ_ASSERT(req->body_len <= policy.max_body);
	FUZZ_ASSERT(memmem(req->body, req->body_len, rec->payload, rec->payload_len));
	FUZZ_ASSERT(fingerprint_matches(rec));
}

FUZZ_HARNESS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct spool_record untouched;
	struct inbound_request req;
	struct inbound_verdict v;
	struct spool_record rec;
	char *sender, *content_type;
	int r;

	sender = take_line(&data, &size);
	content_type = take_line(&data, &size);

	req = (struct inbound_request) {
		.content_type = content_type,
		.body = data,
		.body_len = size,
		.sender = sender,
		.dedupe_key = DEDUPE_KEY,
		.received_us = RECEIVED_US,
	};
	memset(&rec, 0, sizeof(rec));
	memset(&v, 0xa5, sizeof(v));

	r = inbound_check(&policy, &req, &v, &rec);

	FUZZ_ASSERT(status_allowed(v.status));
	FUZZ_ASSERT(memchr(v.reason, '\0', sizeof(v.reason)));
	FUZZ_ASSERT(fuzz_one_line(v.reason));
	FUZZ_ASSERT((r == 0) == (v.status == 200));
	if (r == 0) {
		FUZZ_ASSERT(!strcmp(v.reason, "OK"));
		check_accepted(&req, &rec);
	} else {
		FUZZ_ASSERT(r < 0);
		FUZZ_ASSERT(!memcmp(&rec, &untouched, sizeof(rec)));
	}

	spool_record_clear(&rec);
	g_free(sender);
	g_free(content_type);
	return 0;
}
