/*
 * Interworking Security Data codec: see iwdata.h for the layout.
 */
#include "iwdata.h"

#include <stdbool.h>
#include <string.h>

/* One bit per known IEI, to tell "seen empty" from "absent" and catch repeats. */
#define IE_BIT(iei)	(1u << (iei))

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static struct iwdata_field *field_for_iei(struct iwdata_msg *msg, uint8_t iei)
{
	switch (iei) {
	case IWDATA_IEI_LMR_TYPE:
		return &msg->lmr_type;
	case IWDATA_IEI_KMF_URI:
		return &msg->kmf_uri;
	case IWDATA_IEI_MC_SERVICE_ID:
		return &msg->mc_service_id;
	case IWDATA_IEI_PAYLOAD:
		return &msg->payload;
	}

	return NULL;
}

/* Splits the IEs after the message type octet; records which known ones it saw. */
static int walk_ies(const uint8_t *buf, size_t len, struct iwdata_msg *msg,
		    unsigned int *seen)
{
	size_t pos = 1;

	while (pos < len) {
		struct iwdata_field *field;
		uint8_t iei;
		size_t ie_len;

		if (len - pos < IWDATA_IE_HEADER_LEN)
			return IWDATA_ERR_TRAILING_BYTES;

		iei = buf[pos];
		ie_len = get_be16(buf + pos + 1);
		pos += IWDATA_IE_HEADER_LEN;

		if (ie_len > len - pos)
			return IWDATA_ERR_LENGTH_PAST_END;

		field = field_for_iei(msg, iei);
		if (field) {
			if (*seen & IE_BIT(iei))
				return IWDATA_ERR_REPEATED_IE;

			*seen |= IE_BIT(iei);
			field->ptr = buf + pos;
			field->len = ie_len;
		}

		pos += ie_len;
	}

	return 0;
}

static int check_presence(unsigned int seen, bool require_lmr_type)
{
	if (require_lmr_type && !(seen & IE_BIT(IWDATA_IEI_LMR_TYPE)))
		return IWDATA_ERR_MISSING_LMR_TYPE;

	if (!(seen & IE_BIT(IWDATA_IEI_KMF_URI)))
		return IWDATA_ERR_MISSING_KMF_URI;

	if (!(seen & IE_BIT(IWDATA_IEI_PAYLOAD)))
		return IWDATA_ERR_MISSING_PAYLOAD;

	return 0;
}

/* Spelled out rather than isalnum(): the token is ASCII whatever the locale. */
static bool is_token_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int check_lmr_type(const struct iwdata_field *f)
{
	size_t i;

	if (f->len == 0 || f->len > IWDATA_MAX_LMR_TYPE)
		return IWDATA_ERR_BAD_LMR_TYPE;

	for (i = 0; i < f->len; i++)
		if (!is_token_char(f->ptr[i]))
			return IWDATA_ERR_BAD_LMR_TYPE;

	return 0;
}

static bool is_alpha(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'. */
static bool has_scheme(const uint8_t *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alpha(s[0]))
		return false;

	for (i = 1; i < len; i++) {
		uint8_t c = s[i];

		if (c == ':')
			return true;

		if (!is_alpha(c) && !(c >= '0' && c <= '9') &&
				c != '+' && c != '-' && c != '.')
			return false;
	}

	return false;
}

/*
 * Decodes one well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). Returns its length, 0 if ill-formed.
 */
static size_t utf8_next(const uint8_t *s, size_t len, uint32_t *cp)
{
	uint8_t b0 = s[0];
	uint32_t c, min;
	size_t n, i;

	if (b0 < 0x80) {
		*cp = b0;
		return 1;
	}

	if (b0 >= 0xc2 && b0 <= 0xdf) {
		n = 2;
		c = b0 & 0x1f;
		min = 0x80;
	} else if (b0 >= 0xe0 && b0 <= 0xef) {
		n = 3;
		c = b0 & 0x0f;
		min = 0x800;
	} else if (b0 >= 0xf0 && b0 <= 0xf4) {
		n = 4;
		c = b0 & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}

	if (len < n)
		return 0;

	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;

		c = c << 6 | (s[i] & 0x3f);
	}

	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;

	*cp = c;
	return n;
}

/*
 * C0, DEL and C1 controls: never part of a URI or IRI (RFC 3987 ucschar
 * starts at U+00A0), and a NUL would cut the string callers copy it into.
 */
static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static bool is_printable_utf8(const uint8_t *s, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		uint32_t cp;
		size_t n = utf8_next(s + pos, len - pos, &cp);

		if (n == 0 || is_control(cp))
			return false;

		pos += n;
	}

	return true;
}

static int check_uri(const struct iwdata_field *f)
{
	if (f->len == 0)
		return IWDATA_ERR_BAD_URI;

	if (f->len > IWDATA_MAX_URI)
		return IWDATA_ERR_URI_TOO_LONG;

	if (!has_scheme(f->ptr, f->len) || !is_printable_utf8(f->ptr, f->len))
		return IWDATA_ERR_BAD_URI;

	return 0;
}

static int check_payload(const struct iwdata_field *f)
{
	if (f->len == 0)
		return IWDATA_ERR_EMPTY_PAYLOAD;

	if (f->len > IWDATA_MAX_PAYLOAD)
		return IWDATA_ERR_PAYLOAD_TOO_LARGE;

	return 0;
}

/* The content rules for every IE in seen, shared by decode and encode. */
static int check_content(const struct iwdata_msg *msg, unsigned int seen)
{
	int r;

	if (seen & IE_BIT(IWDATA_IEI_LMR_TYPE)) {
		r = check_lmr_type(&msg->lmr_type);
		if (r < 0)
			return r;
	}

	if (seen & IE_BIT(IWDATA_IEI_KMF_URI)) {
		r = check_uri(&msg->kmf_uri);
		if (r < 0)
			return r;
	}

	if (seen & IE_BIT(IWDATA_IEI_MC_SERVICE_ID)) {
		r = check_uri(&msg->mc_service_id);
		if (r < 0)
			return r;
	}

	if (seen & IE_BIT(IWDATA_IEI_PAYLOAD))
		return check_payload(&msg->payload);

	return 0;
}

static int check_msg(const struct iwdata_msg *msg, unsigned int seen,
		     bool require_lmr_type)
{
	int r = check_presence(seen, require_lmr_type);

	if (r < 0)
		return r;

	return check_content(msg, seen);
}

int iwdata_decode(const uint8_t *buf, size_t len, unsigned int flags,
		  struct iwdata_msg *out)
{
	struct iwdata_msg msg = { 0 };
	unsigned int seen = 0;
	int r;

	if (!out)
		return IWDATA_ERR_INVALID_ARGUMENT;

	memset(out, 0, sizeof(*out));

	if ((!buf && len > 0) || (flags & ~IWDATA_REQUIRE_LMR_TYPE))
		return IWDATA_ERR_INVALID_ARGUMENT;

	if (len == 0)
		return IWDATA_ERR_TRUNCATED_HEADER;

	if (buf[0] != IWDATA_MSG_NON3GPP_SECURITY)
		return IWDATA_ERR_MESSAGE_TYPE;

	r = walk_ies(buf, len, &msg, &seen);
	if (r < 0)
		return r;

	r = check_msg(&msg, seen, flags & IWDATA_REQUIRE_LMR_TYPE);
	if (r < 0)
		return r;

	*out = msg;
	return 0;
}

static bool field_usable(const struct iwdata_field *f)
{
	return f->len == 0 || f->ptr;
}

/* An encoder's field is present when it has bytes: len 0 is absent. */
static int check_encodable(const struct iwdata_msg *msg)
{
	unsigned int seen = 0;

	if (!msg || !field_usable(&msg->lmr_type) ||
			!field_usable(&msg->kmf_uri) ||
			!field_usable(&msg->mc_service_id) ||
			!field_usable(&msg->payload))
		return IWDATA_ERR_INVALID_ARGUMENT;

	if (msg->lmr_type.len)
		seen |= IE_BIT(IWDATA_IEI_LMR_TYPE);
	if (msg->kmf_uri.len)
		seen |= IE_BIT(IWDATA_IEI_KMF_URI);
	if (msg->mc_service_id.len)
		seen |= IE_BIT(IWDATA_IEI_MC_SERVICE_ID);
	if (msg->payload.len)
		seen |= IE_BIT(IWDATA_IEI_PAYLOAD);

	return check_msg(msg, seen, false);
}

static size_t ie_size(const struct iwdata_field *f)
{
	return f->len ? IWDATA_IE_HEADER_LEN + f->len : 0;
}

/* Only for a msg check_encodable() accepted, so the sum cannot overflow. */
static size_t message_size(const struct iwdata_msg *msg)
{
	return 1 + ie_size(&msg->lmr_type) + ie_size(&msg->kmf_uri) +
		ie_size(&msg->mc_service_id) + ie_size(&msg->payload);
}

size_t iwdata_encoded_size(const struct iwdata_msg *msg)
{
	if (check_encodable(msg) < 0)
		return 0;

	return message_size(msg);
}

static uint8_t *put_ie(uint8_t *p, uint8_t iei, const struct iwdata_field *f)
{
	if (f->len == 0)
		return p;

	p[0] = iei;
	p[1] = (uint8_t)(f->len >> 8);
	p[2] = (uint8_t)(f->len & 0xff);
	memcpy(p + IWDATA_IE_HEADER_LEN, f->ptr, f->len);

	return p + IWDATA_IE_HEADER_LEN + f->len;
}

int iwdata_encode(const struct iwdata_msg *msg, uint8_t *buf, size_t cap,
		  size_t *written)
{
	size_t need;
	uint8_t *p;
	int r;

	if (!buf && cap > 0)
		return IWDATA_ERR_INVALID_ARGUMENT;

	r = check_encodable(msg);
	if (r < 0)
		return r;

	need = message_size(msg);
	if (written)
		*written = need;

	if (cap < need)
		return IWDATA_ERR_NO_SPACE;

	p = buf;
	*p++ = IWDATA_MSG_NON3GPP_SECURITY;
	p = put_ie(p, IWDATA_IEI_LMR_TYPE, &msg->lmr_type);
	p = put_ie(p, IWDATA_IEI_KMF_URI, &msg->kmf_uri);
	p = put_ie(p, IWDATA_IEI_MC_SERVICE_ID, &msg->mc_service_id);
	put_ie(p, IWDATA_IEI_PAYLOAD, &msg->payload);

	return 0;
}

const char *iwdata_strerror(int err)
{
	switch ((enum iwdata_error) err) {
	case IWDATA_ERR_TRUNCATED_HEADER:
		return "interworking-data: missing message type";
	case IWDATA_ERR_MESSAGE_TYPE:
		return "interworking-data: unknown message type";
	case IWDATA_ERR_TRAILING_BYTES:
		return "interworking-data: trailing bytes";
	case IWDATA_ERR_LENGTH_PAST_END:
		return "interworking-data: IE length past end";
	case IWDATA_ERR_REPEATED_IE:
		return "interworking-data: repeated IE";
	case IWDATA_ERR_MISSING_LMR_TYPE:
		return "interworking-data: missing LMR type";
	case IWDATA_ERR_MISSING_KMF_URI:
		return "interworking-data: missing LMR security entity URI";
	case IWDATA_ERR_MISSING_PAYLOAD:
		return "interworking-data: missing payload";
	case IWDATA_ERR_BAD_LMR_TYPE:
		return "interworking-data: invalid LMR type";
	case IWDATA_ERR_BAD_URI:
		return "interworking-data: invalid URI";
	case IWDATA_ERR_URI_TOO_LONG:
		return "interworking-data: URI too long";
	case IWDATA_ERR_EMPTY_PAYLOAD:
		return "interworking-data: empty payload";
	case IWDATA_ERR_PAYLOAD_TOO_LARGE:
		return "interworking-data: payload too large";
	case IWDATA_ERR_NO_SPACE:
		return "interworking-data: buffer too small";
	case IWDATA_ERR_INVALID_ARGUMENT:
		return "interworking-data: invalid argument";
	}

	return "interworking-data: unknown error";
}
