/*
 * Interworking Security Data codec (DESIGN §2).
 *
 * The body of the application/vnd.3gpp.interworking-data part: one message
 * type octet, then TS 24.007-style information elements, each
 * IEI (1 octet) | length (2 octets, big-endian) | value.
 *
 * TS 29.379 clause 14.2.1's exact byte layout was not available to us; this
 * module is the one place that knows the layout, so aligning it with the
 * specification is a local change.
 *
 * libc only, no allocation, no I/O: the decoder is the fuzz entry point.
 */
#ifndef LMRSEC_IWDATA_H
#define LMRSEC_IWDATA_H

#include <stddef.h>
#include <stdint.h>

#define IWDATA_MSG_NON3GPP_SECURITY	0x01

#define IWDATA_IEI_LMR_TYPE		0x01	/* ASCII token, mandatory toward the client */
#define IWDATA_IEI_KMF_URI		0x02	/* URI of LMR security functional entity, mandatory */
#define IWDATA_IEI_MC_SERVICE_ID	0x03	/* URI, optional */
#define IWDATA_IEI_PAYLOAD		0x04	/* opaque octets, mandatory */

#define IWDATA_IE_HEADER_LEN		3
#define IWDATA_MAX_LMR_TYPE		16
#define IWDATA_MAX_URI			1024
#define IWDATA_MAX_PAYLOAD		65535

/* The largest message iwdata_encode() can produce: every IE at its limit. */
#define IWDATA_MAX_ENCODED_SIZE \
	(1 + 4 * IWDATA_IE_HEADER_LEN + IWDATA_MAX_LMR_TYPE + \
	 2 * IWDATA_MAX_URI + IWDATA_MAX_PAYLOAD)

/* iwdata_decode() flags */
#define IWDATA_REQUIRE_LMR_TYPE		(1u << 0)	/* the IWF → client direction */

/* Every malformed shape has its own code, so a 400 can say which. */
enum iwdata_error {
	IWDATA_ERR_TRUNCATED_HEADER	= -1,	/* no message type octet */
	IWDATA_ERR_MESSAGE_TYPE		= -2,	/* unknown message type */
	IWDATA_ERR_TRAILING_BYTES	= -3,	/* 1-2 bytes left, too few for an IE header */
	IWDATA_ERR_LENGTH_PAST_END	= -4,	/* an IE's length runs past the end */
	IWDATA_ERR_REPEATED_IE		= -5,	/* a known IE appears twice */
	IWDATA_ERR_MISSING_LMR_TYPE	= -6,
	IWDATA_ERR_MISSING_KMF_URI	= -7,
	IWDATA_ERR_MISSING_PAYLOAD	= -8,
	IWDATA_ERR_BAD_LMR_TYPE		= -9,	/* not [A-Za-z0-9_-]{1,16} */
	IWDATA_ERR_BAD_URI		= -10,	/* empty, no scheme, bad UTF-8 or control character */
	IWDATA_ERR_URI_TOO_LONG		= -11,	/* over IWDATA_MAX_URI octets */
	IWDATA_ERR_EMPTY_PAYLOAD	= -12,
	IWDATA_ERR_PAYLOAD_TOO_LARGE	= -13,	/* encode only: over IWDATA_MAX_PAYLOAD */
	IWDATA_ERR_NO_SPACE		= -14,	/* encode only: output buffer too small */
	IWDATA_ERR_INVALID_ARGUMENT	= -15,	/* NULL where data is needed, unknown flag */
};

/* A view of one IE value; len 0 means the IE is absent. */
struct iwdata_field {
	const uint8_t *ptr;
	size_t len;
};

struct iwdata_msg {
	struct iwdata_field lmr_type;
	struct iwdata_field kmf_uri;
	struct iwdata_field mc_service_id;
	struct iwdata_field payload;
};

/*
 * Parses and validates buf. On success returns 0 and fills out with views
 * into buf (valid while buf is); on failure returns a negative
 * enum iwdata_error and zeroes out. Checks run in this order: framing
 * (message type, IE headers, lengths, repeats), then mandatory IEs, then
 * the content of each IE present. Unknown IEIs are skipped.
 */
int iwdata_decode(const uint8_t *buf, size_t len, unsigned int flags,
		  struct iwdata_msg *out);

/*
 * Bytes iwdata_encode() writes for msg, or 0 when msg breaks a rule
 * iwdata_encode() would refuse.
 */
size_t iwdata_encoded_size(const struct iwdata_msg *msg);

/*
 * Writes msg into buf (IEs in IEI order, absent ones left out) after
 * checking the same rules as the decoder; the LMR type is optional here
 * (the client → IWF direction). The fields must not overlap buf. Returns 0
 * and sets *written, or a negative enum iwdata_error; on
 * IWDATA_ERR_NO_SPACE *written is set to the size needed. written may be
 * NULL. buf may be NULL when cap is 0, to learn the size.
 */
int iwdata_encode(const struct iwdata_msg *msg, uint8_t *buf, size_t cap,
		  size_t *written);

/* A short phrase fit for a SIP reason phrase; never NULL. */
const char *iwdata_strerror(int err);

#endif /* LMRSEC_IWDATA_H */
