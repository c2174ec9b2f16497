/*
 * request.c — decoding one request frame body (request.h, docs/protocol.md).
 *
 * Pure: libc and the frame codec only.  Each parse_ function returns 0, or a
 * negative errno with *why a static text for the ERROR reply.  A field given
 * twice is refused (except LMR_TYPE in SUBSCRIBE): two values for one thing
 * is a client bug, not something to guess at.  Unknown tags are ignored
 * however often they come (forward compatibility).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "proto.h"
#include "request.h"

/* ---------- values ---------- */

static bool ascii_alnum(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	       (c >= 'a' && c <= 'z');
}

/* An LMR type as DESIGN §2 defines it: [A-Za-z0-9_-]{1,16}. */
static bool lmr_type_valid(const uint8_t *v, uint32_t len)
{
	uint32_t i;

	if (len == 0 || len > REQUEST_LMR_TYPE_MAX)
		return false;

	for (i = 0; i < len; i++) {
		if (!ascii_alnum(v[i]) && v[i] != '_' && v[i] != '-')
			return false;
	}
	return true;
}

static bool value_is(const uint8_t *v, uint32_t len, const char *s)
{
	return len == strlen(s) && memcmp(v, s, len) == 0;
}

/*
 * Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF) without NUL bytes, which would cut the C string the URI
 * becomes: what g_utf8_validate() with a length accepts.
 */
static bool utf8_valid(const uint8_t *s, uint32_t len)
{
	uint32_t i = 0, n, k, cp, min;

	while (i < len) {
		if (s[i] == 0)
			return false;

		if (s[i] < 0x80) {
			i++;
			continue;
		}

		/* n continuation octets; min: the smallest code point of that
		 * length, below which the form is overlong */
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else {
			return false;
		}

		if (len - i - 1 < n)
			return false;

		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}

		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* ---------- fields ---------- */

/* The tags met in one request, to refuse a field given twice. */
struct tag_set {
	uint64_t bits[4];
};

static bool tag_seen(const struct tag_set *set, uint8_t tag)
{
	return set->bits[tag / 64] & (UINT64_C(1) << (tag % 64));
}

/* A tag of this protocol version, as opposed to one from a later release,
 * which is ignored however often it comes (forward compatibility). */
static bool tag_known(uint8_t tag)
{
	return (tag >= PROTO_TAG_VERSION_MIN && tag <= PROTO_TAG_ERROR_TEXT) ||
	       (tag >= PROTO_TAG_REG_STATE && tag <= PROTO_TAG_COUNT_EXPIRED) ||
	       (tag >= PROTO_TAG_EVENT_KIND && tag <= PROTO_TAG_MORE) ||
	       (tag >= PROTO_TAG_TRACE_DIRECTION && tag <= PROTO_TAG_LOG_LEVEL_PREVIOUS);
}

/* Marks a known tag seen; false when it was already. */
static bool field_first(struct tag_set *seen, uint8_t tag)
{
	if (!tag_known(tag))
		return true;

	if (tag_seen(seen, tag))
		return false;

	seen->bits[tag / 64] |= UINT64_C(1) << (tag % 64);
	return true;
}

/* 0, or the frame_error of the first field that runs past the body. */
static int body_fields_check(const uint8_t *body, size_t len)
{
	struct frame_reader r;
	const uint8_t *v;
	uint32_t vlen;
	uint8_t tag;
	int k;

	k = frame_reader_init(&r, body, len, NULL, NULL);
	if (k < 0)
		return k;

	while ((k = frame_reader_field(&r, &tag, &v, &vlen)) == 1)
		;
	return k;
}

/* Takes one field of a request: 0, or a negative errno with *why. */
typedef int (*field_take_fn)(void *req, uint8_t tag, const uint8_t *v,
			     uint32_t vlen, const char **why);

/*
 * Hands each field of a request body to take(), refusing a known tag
 * given twice (*why = repeated) unless it is `repeatable`; seen gets the
 * tags met.  -EBADMSG for a field running past the body.
 */
static int fields_take(const uint8_t *body, size_t len, uint8_t repeatable,
		       const char *repeated, struct tag_set *seen,
		       field_take_fn take, void *req, const char **why)
{
	struct frame_reader r;
	const uint8_t *v;
	uint32_t vlen;
	uint8_t tag;
	int k, e;

	if (frame_reader_init(&r, body, len, NULL, NULL) < 0)
		return -EBADMSG;

	while ((k = frame_reader_field(&r, &tag, &v, &vlen)) == 1) {
		if (tag != repeatable && !field_first(seen, tag)) {
			*why = repeated;
			return -EINVAL;
		}

		e = take(req, tag, v, vlen, why);
		if (e < 0)
			return e;
	}
	return k < 0 ? -EBADMSG : 0;
}

/* ---------- one parser per request type with fields ---------- */

/*
 * The body's field framing was already checked (body_fields_check), so a
 * truncated field in a parser is still reported (EBADMSG), never trusted;
 * it cannot happen through request_decode().
 */

static int hello_take_field(void *out, uint8_t tag, const uint8_t *v,
			    uint32_t vlen, const char **why)
{
	struct hello_request *req = out;

	switch (tag) {
	case PROTO_TAG_VERSION_MIN:
		if (frame_value_u32(v, vlen, &req->version_min) < 0) {
			*why = "VERSION_MIN must be 4 octets";
			return -EINVAL;
		}
		return 0;
	case PROTO_TAG_VERSION_MAX:
		if (frame_value_u32(v, vlen, &req->version_max) < 0) {
			*why = "VERSION_MAX must be 4 octets";
			return -EINVAL;
		}
		return 0;
	case PROTO_TAG_CLIENT_NAME:
		req->client_name = v;
		req->client_name_len = vlen;
		return 0;
	}
	return 0;	/* another tag: ignored */
}

static int parse_hello(const uint8_t *body, size_t len,
		       struct hello_request *req, const char **why)
{
	struct tag_set seen = { { 0 } };
	int e;

	memset(req, 0, sizeof(*req));
	*why = "malformed HELLO";
	e = fields_take(body, len, 0, "a HELLO field is repeated", &seen,
			hello_take_field, req, why);
	if (e < 0)
		return e;

	if (!tag_seen(&seen, PROTO_TAG_VERSION_MIN) ||
	    !tag_seen(&seen, PROTO_TAG_VERSION_MAX)) {
		*why = "HELLO needs VERSION_MIN and VERSION_MAX";
		return -EINVAL;
	}

	if (req->version_min > req->version_max) {
		*why = "VERSION_MIN is above VERSION_MAX";
		return -EINVAL;
	}
	return 0;
}

static int subscribe_add_type(struct subscribe_request *req,
			      const uint8_t *v, uint32_t vlen, const char **why)
{
	if (req->n_types == PROTO_MAX_LMR_TYPES) {
		*why = "too many LMR_TYPE fields (at most 32)";
		return -E2BIG;
	}

	if (!value_is(v, vlen, PROTO_LMR_TYPE_ALL) && !lmr_type_valid(v, vlen)) {
		*why = "LMR_TYPE must be \"*\" or 1 to 16 of A-Z a-z 0-9 _ -";
		return -EINVAL;
	}

	memcpy(req->types[req->n_types], v, vlen);
	req->types[req->n_types][vlen] = '\0';
	req->type_list[req->n_types] = req->types[req->n_types];
	req->n_types++;
	req->type_list[req->n_types] = NULL;
	return 0;
}

static int subscribe_take_field(void *out, uint8_t tag, const uint8_t *v,
				uint32_t vlen, const char **why)
{
	struct subscribe_request *req = out;
	uint32_t takeover;

	switch (tag) {
	case PROTO_TAG_LMR_TYPE:
		return subscribe_add_type(req, v, vlen, why);
	case PROTO_TAG_TAKEOVER:
		if (frame_value_u32(v, vlen, &takeover) < 0 || takeover > 1) {
			*why = "TAKEOVER must be a u32 0 or 1";
			return -EINVAL;
		}
		req->takeover = takeover == 1;
		return 0;
	}
	return 0;	/* another tag: ignored */
}

static int parse_subscribe(const uint8_t *body, size_t len,
			   struct subscribe_request *req, const char **why)
{
	struct tag_set seen = { { 0 } };
	int e;

	memset(req, 0, sizeof(*req));
	*why = "malformed SUBSCRIBE";
	e = fields_take(body, len, PROTO_TAG_LMR_TYPE, "a SUBSCRIBE field is repeated",
			&seen, subscribe_take_field, req, why);
	if (e < 0)
		return e;

	if (req->n_types == 0) {
		*why = "SUBSCRIBE needs at least one LMR_TYPE";
		return -EINVAL;
	}
	return 0;
}

/* ACK and NACK: one MESSAGE_ID. */
static int message_id_take_field(void *out, uint8_t tag, const uint8_t *v,
				 uint32_t vlen, const char **why)
{
	struct ack_request *req = out;

	if (tag == PROTO_TAG_MESSAGE_ID &&
	    frame_value_u64(v, vlen, &req->message_id) < 0) {
		*why = "MESSAGE_ID must be 8 octets";
		return -EINVAL;
	}
	return 0;	/* another tag: ignored */
}

static int parse_message_id(const uint8_t *body, size_t len,
			    struct ack_request *req, const char **why)
{
	struct tag_set seen = { { 0 } };
	int e;

	memset(req, 0, sizeof(*req));
	*why = "malformed request";
	e = fields_take(body, len, 0, "a field is repeated", &seen,
			message_id_take_field, req, why);
	if (e < 0)
		return e;

	if (!tag_seen(&seen, PROTO_TAG_MESSAGE_ID)) {
		*why = "missing field MESSAGE_ID";
		return -EINVAL;
	}
	return 0;
}

static int send_take_field(void *out, uint8_t tag, const uint8_t *v,
			   uint32_t vlen, const char **why)
{
	struct send_request *req = out;

	switch (tag) {
	case PROTO_TAG_LMR_TYPE:
		if (!lmr_type_valid(v, vlen)) {
			*why = "LMR_TYPE must be 1 to 16 of A-Z a-z 0-9 _ -";
			return -EINVAL;
		}
		memcpy(req->lmr_type, v, vlen);
		req->lmr_type[vlen] = '\0';
		return 0;
	case PROTO_TAG_PAYLOAD:
		if (vlen > REQUEST_PAYLOAD_MAX) {
			*why = "PAYLOAD is longer than 65535 octets";
			return -EMSGSIZE;
		}
		req->payload = v;	/* into the body: key material is not copied */
		req->payload_len = vlen;
		return 0;
	case PROTO_TAG_TO:
		if (vlen == 0 || vlen > REQUEST_URI_MAX || !utf8_valid(v, vlen)) {
			*why = "TO must be a UTF-8 URI of 1 to 1024 octets";
			return -EINVAL;
		}
		req->to = v;
		req->to_len = vlen;
		return 0;
	case PROTO_TAG_TIMEOUT_MS:
		if (frame_value_u32(v, vlen, &req->timeout_ms) < 0) {
			*why = "TIMEOUT_MS must be 4 octets";
			return -EINVAL;
		}
		return 0;
	}
	return 0;	/* another tag: ignored */
}

static int parse_send(const uint8_t *body, size_t len,
		      struct send_request *req, const char **why)
{
	struct tag_set seen = { { 0 } };
	int e;

	memset(req, 0, sizeof(*req));
	*why = "malformed SEND";
	e = fields_take(body, len, 0, "a SEND field is repeated", &seen,
			send_take_field, req, why);
	if (e < 0)
		return e;

	if (req->lmr_type[0] == '\0') {
		*why = "missing field LMR_TYPE";
		return -EINVAL;
	}

	if (!req->payload || req->payload_len == 0) {
		*why = "missing or empty field PAYLOAD";
		return -EINVAL;
	}

	if (req->timeout_ms == 0)
		req->timeout_ms = REQUEST_SEND_TIMEOUT_DEFAULT_MS;
	if (req->timeout_ms > REQUEST_SEND_TIMEOUT_MAX_MS)
		req->timeout_ms = REQUEST_SEND_TIMEOUT_MAX_MS;
	return 0;
}

static int queue_take_field(void *out, uint8_t tag, const uint8_t *v,
			    uint32_t vlen, const char **why)
{
	struct queue_request *req = out;
	uint64_t after;

	switch (tag) {
	case PROTO_TAG_AFTER_ID:
		if (frame_value_u64(v, vlen, &after) < 0 || after > INT64_MAX) {
			*why = "AFTER_ID must be a u64 below 2^63";
			return -EINVAL;
		}
		req->after_id = (int64_t) after;
		return 0;
	case PROTO_TAG_LIMIT:
		if (frame_value_u32(v, vlen, &req->limit) < 0) {
			*why = "LIMIT must be 4 octets";
			return -EINVAL;
		}
		return 0;
	}
	return 0;	/* another tag: ignored */
}

static int parse_queue(const uint8_t *body, size_t len,
		       struct queue_request *req, const char **why)
{
	struct tag_set seen = { { 0 } };
	int e;

	memset(req, 0, sizeof(*req));
	*why = "malformed QUEUE";
	e = fields_take(body, len, 0, "a QUEUE field is repeated", &seen,
			queue_take_field, req, why);
	if (e < 0)
		return e;

	if (req->limit == 0 || req->limit > PROTO_LIST_MAX_ENTRIES)
		req->limit = PROTO_LIST_MAX_ENTRIES;
	return 0;
}

/* LOG_LEVEL: one optional short name of lower-case letters; whether it is
 * a level the agent knows is server.c's (log.c's) to say. */
static int log_level_take_field(void *out, uint8_t tag, const uint8_t *v,
				uint32_t vlen, const char **why)
{
	struct log_level_request *req = out;
	uint32_t i;

	if (tag != PROTO_TAG_LOG_LEVEL)
		return 0;	/* another tag: ignored */

	if (vlen == 0 || vlen > REQUEST_LOG_LEVEL_MAX) {
		*why = "LOG_LEVEL must be error, warning, message, info or debug";
		return -EINVAL;
	}
	for (i = 0; i < vlen; i++) {
		if (v[i] < 'a' || v[i] > 'z') {
			*why = "LOG_LEVEL must be error, warning, message, info or debug";
			return -EINVAL;
		}
		req->level[i] = (char) v[i];
	}
	return 0;
}

static int parse_log_level(const uint8_t *body, size_t len,
			   struct log_level_request *req, const char **why)
{
	struct tag_set seen = { { 0 } };

	memset(req, 0, sizeof(*req));
	*why = "malformed LOG_LEVEL";
	return fields_take(body, len, 0, "a LOG_LEVEL field is repeated", &seen,
			   log_level_take_field, req, why);
}

/* ---------- dispatch ---------- */

/*
 * The fields of a request whose framing is sound, by its type: 0, or a
 * negative errno with *why.  One case per enum proto_msg value and no
 * default, so a request type added to proto.h does not build until it is
 * decided here.
 */
static int request_decode_fields(bool negotiated, const uint8_t *body,
				 size_t len, struct request *req,
				 const char **why)
{
	switch ((enum proto_msg) req->type) {
	case PROTO_MSG_HELLO:
		if (negotiated) {
			*why = "protocol version already negotiated";
			return -EALREADY;
		}
		return parse_hello(body, len, &req->hello, why);
	case PROTO_MSG_SUBSCRIBE:
		return parse_subscribe(body, len, &req->subscribe, why);
	case PROTO_MSG_ACK:
	case PROTO_MSG_NACK:
		return parse_message_id(body, len, &req->ack, why);
	case PROTO_MSG_STATUS:
	case PROTO_MSG_MONITOR:
	case PROTO_MSG_TRACE:
		return 0;	/* no fields; any given are ignored */
	case PROTO_MSG_LOG_LEVEL:
		return parse_log_level(body, len, &req->log_level, why);
	case PROTO_MSG_SEND:
		return parse_send(body, len, &req->send, why);
	case PROTO_MSG_QUEUE:
		return parse_queue(body, len, &req->queue, why);
	case PROTO_MSG_HELLO_OK:
	case PROTO_MSG_OK:
	case PROTO_MSG_ERROR:
	case PROTO_MSG_DELIVERY:
	case PROTO_MSG_STATUS_REPLY:
	case PROTO_MSG_SEND_RESULT:
	case PROTO_MSG_EVENT:
	case PROTO_MSG_LIST:
	case PROTO_MSG_TRACE_EVENT:
	case PROTO_MSG_LOG_LEVEL_REPLY:
		break;		/* the agent's own messages are not requests */
	}

	snprintf(req->text, sizeof(req->text), "unknown message type 0x%02x",
		 req->type);
	*why = req->text;
	return -EOPNOTSUPP;
}

int request_decode(bool negotiated, const uint8_t *body, size_t len,
		   struct request *req, int *err_code, const char **why)
{
	int e;

	memset(req, 0, sizeof(*req));
	*err_code = 0;
	*why = NULL;

	e = frame_reader_init(&(struct frame_reader) { 0 }, body, len,
			      &req->type, &req->id);
	if (e == 0)
		e = body_fields_check(body, len);
	if (e < 0) {
		*why = frame_strerror(e);
		return REQUEST_MALFORMED;
	}

	if (!negotiated && req->type != PROTO_MSG_HELLO) {
		*err_code = EPROTO;
		*why = "the first request must be HELLO";
		return REQUEST_REFUSED;
	}

	e = request_decode_fields(negotiated, body, len, req, why);
	if (e < 0) {
		*err_code = -e;
		return REQUEST_REFUSED;
	}

	*why = NULL;
	return REQUEST_VALID;
}
