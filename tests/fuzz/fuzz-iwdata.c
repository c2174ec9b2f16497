/*
 * fuzz-iwdata — the Interworking Security Data decoder (agent/iwdata.c).
 *
 * The input is one interworking-data part, decoded both ways the agent can
 * (IWF → client requires the LMR type; the client → IWF direction does not).
 * Properties:
 *  - the result is 0 or one of the decoder's own error codes, and the output
 *    is all zero on failure;
 *  - on success every field is a view inside the input, within its limit;
 *  - requiring the LMR type never turns a failure into success;
 *  - encode(decode(x)) succeeds, is no longer than x (unknown IEs are
 *    dropped), decodes to the same fields and re-encodes to the same bytes.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "iwdata.h"

/* What the decoder may return for a non-NULL buffer and a known flag. */
FUZZ_HARNESS
static bool is_decode_error(int r)
{
	return r <= IWDATA_ERR_TRUNCATED_HEADER && r >= IWDATA_ERR_EMPTY_PAYLOAD;
}

FUZZ_HARNESS
static bool field_inside(const struct iwdata_field *f, const uint8_t *buf,
			 size_t len)
{
	if (f->len == 0)
		return f->ptr == NULL;

	return f->ptr >= buf && f->len <= len && f->ptr - buf <= (ptrdiff_t) (len - f->len);
}

FUZZ_HARNESS
static bool field_equal(const struct iwdata_field *a,
			const struct iwdata_field *b)
{
	return a->len == b->len && (a->len == 0 || !memcmp(a->ptr, b->ptr, a->len));
}

FUZZ_HARNESS
static bool msg_equal(const struct iwdata_msg *a, const struct iwdata_msg *b)
{
	return field_equal(&a->lmr_type, &b->lmr_type) &&
		field_equal(&a->kmf_uri, &b->kmf_uri) &&
		field_equal(&a->mc_service_id, &b->mc_service_id) &&
		field_equal(&a->payload, &b->payload);
}

FUZZ_HARNESS
static bool msg_is_zero(const struct iwdata_msg *m)
{
	static const struct iwdata_msg zero;

	return !memcmp(m, &zero, sizeof(zero));
}

/* Decodes with flags; checks the outcome; returns the decoder's result. */
FUZZ_HARNESS
static int decode_checked(const uint8_t *data, size_t size, unsigned int flags,
			  struct iwdata_msg *m)
{
	int r;

	memset(m, 0xa5, sizeof(*m));
	r = iwdata_decode(data, size, flags, m);
	FUZZ_ASSERT(fuzz_one_line(iwdata_strerror(r)));

	if (r < 0) {
		FUZZ_ASSERT(is_decode_error(r));
		FUZZ_ASSERT(msg_is_zero(m));
		return r;
	}

	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(field_inside(&m->lmr_type, data, size));
	FUZZ_ASSERT(field_inside(&m->kmf_uri, data, size));
	FUZZ_ASSERT(field_inside(&m->mc_service_id, data, size));
	FUZZ_ASSERT(field_inside(&m->payload, data, size));
	FUZZ_ASSERT(m->lmr_type.len <= IWDATA_MAX_LMR_TYPE);
	FUZZ_ASSERT(m->kmf_uri.len >= 1 && m->kmf_uri.len <= IWDATA_MAX_URI);
	FUZZ_ASSERT(m->mc_service_id.len <= IWDATA_MAX_URI);
	FUZZ_ASSERT(m->payload.len >= 1 && m->payload.len <= IWDATA_MAX_PAYLOAD);
	if (flags & IWDATA_REQUIRE_LMR_TYPE)
		FUZZ_ASSERT(m->lmr_type.len >= 1);
	return 0;
}

/* The canonical form: encoding is deterministic and a fixed point. */
FUZZ_HARNESS
static void check_round_trip(const struct iwdata_msg *m, size_t size)
{
	static uint8_t once[IWDATA_MAX_ENCODED_SIZE], twice[IWDATA_MAX_ENCODED_SIZE];
	struct iwdata_msg back;
	size_t n1 = 0, n2 = 0;

	FUZZ_ASSERT(iwdata_encode(m, once, sizeof(once), &n1) == 0);
	FUZZ_ASSERT(n1 == iwdata_encoded_size(m));
	FUZZ_ASSERT(n1 <= size);

	/* The LMR type may be absent (flags 0), so decode without requiring it. */
	FUZZ_ASSERT(iwdata_decode(once, n1, 0, &back) == 0);
	FUZZ_ASSERT(msg_equal(m, &back));

	FUZZ_ASSERT(iwdata_encode(&back, twice, sizeof(twice), &n2) == 0);
	FUZZ_ASSERT(n2 == n1 && !memcmp(once, twice, n1));
}

FUZZ_HARNESS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iwdata_msg any, toward_client;
	int r_any, r_client;

	r_any = decode_checked(data, size, 0, &any);
	r_client = decode_checked(data, size, IWDATA_REQUIRE_LMR_TYPE,
				  &toward_client);

	if (r_client == 0) {
		FUZZ_ASSERT(r_any == 0);
		FUZZ_ASSERT(msg_equal(&any, &toward_client));
	}

	if (r_any == 0)
		check_round_trip(&any, size);

	return 0;
}
