/*
 * fuzz-dispatch — the socket frame decoder (libclient/frame.c) and the
 * request decoder (agent/request.c) together: what server.c does with the
 * bytes a local client writes, up to the broker calls.
 *
 * The input is a byte stream as a client would write it to the socket.  It
 * goes through the incremental frame decoder as server.c's conn_read() runs
 * it; every complete frame body goes through request_decode() as on a
 * connection before HELLO and as on a negotiated one.  A session then
 * follows the server's rules: it becomes negotiated after an accepted HELLO
 * whose versions overlap the agent's, and ends where the agent closes the
 * connection (malformed framing, a refusal before HELLO).
 * Properties:
 *  - the verdict is one of the three; MALFORMED exactly when the field
 *    reader finds the body short or a field running past it, and the same
 *    whatever negotiated says;
 *  - REFUSED: an error code from the set docs/protocol.md gives a request,
 *    one line of text (static or in the request), the type and request id
 *    of the body (the reply echoes it); EPROTO for anything but HELLO
 *    before HELLO, EALREADY for HELLO after it, EOPNOTSUPP exactly for
 *    what is not a request type;
 *  - VALID: no code, no text; every decoded value within its documented
 *    range; every pointer inside the body, at the value of the field it
 *    names (zero-copy: the payload is not copied anywhere);
 *  - TO is accepted exactly when g_utf8_validate() would accept it, the
 *    rule server.c applied before the decoder was split out.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "frame.h"
#include "fuzz.h"
#include "proto.h"
#include "request.h"

FUZZ_HARNESS
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
		(uint32_t) p[2] << 8 | (uint32_t) p[3];
}

FUZZ_HARNESS
static bool inside(const uint8_t *p, size_t n, const uint8_t *body, size_t len)
{
	return p >= body && n <= len && (size_t) (p - body) <= len - n;
}

/* No default: a request type added to proto.h is named here by the
 * compiler, as in request.c and server.c. */
FUZZ_HARNESS
static bool is_request_type(uint8_t type)
{
	switch ((enum proto_msg) type) {
	case PROTO_MSG_HELLO:
	case PROTO_MSG_SUBSCRIBE:
	case PROTO_MSG_ACK:
	case PROTO_MSG_NACK:
	case PROTO_MSG_STATUS:
	case PROTO_MSG_SEND:
	case PROTO_MSG_MONITOR:
	case PROTO_MSG_QUEUE:
	case PROTO_MSG_TRACE:
	case PROTO_MSG_LOG_LEVEL:
		return true;
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
		break;
	}
	return false;
}

FUZZ_HARNESS
static bool known_error(int code)
{
	switch (code) {
	case EINVAL:		/* a missing, repeated or malformed field */
	case E2BIG:		/* SUBSCRIBE: more than 32 LMR types */
	case EMSGSIZE:		/* SEND: payload over 65535 octets */
	case EPROTO:		/* a request before HELLO */
	case EALREADY:		/* HELLO repeated */
	case EOPNOTSUPP:	/* not a request type */
		return true;
	}
	return false;
}

/* The field reader's view of the body: -1 malformed, else whether it holds
 * a field with this tag, and the first one's value. */
FUZZ_HARNESS
static int first_field(const uint8_t *body, size_t len, uint8_t want,
		       const uint8_t **value, uint32_t *vlen)
{
	struct frame_reader r;
	const uint8_t *v;
	uint32_t n;
	uint8_t tag;
	int k, found = 0;

	if (frame_reader_init(&r, body, len, NULL, NULL) < 0)
		return -1;

	while ((k = frame_reader_field(&r, &tag, &v, &n)) == 1) {
		if (tag == want && !found) {
			*value = v;
			*vlen = n;
			found = 1;
		}
	}
	return k < 0 ? -1 : found;
}

FUZZ_HARNESS
static bool lmr_type_ok(const char *s, bool star)
{
	size_t i, n = strlen(s);

	if (star && strcmp(s, PROTO_LMR_TYPE_ALL) == 0)
		return true;

	if (n == 0 || n > REQUEST_LMR_TYPE_MAX)
		return false;

	for (i = 0; i < n; i++) {
		if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	}
	return true;
}

FUZZ_HARNESS
static void check_hello(const struct hello_request *h, const uint8_t *body,
			size_t len)
{
	const uint8_t *v = NULL;
	uint32_t vlen = 0;

	FUZZ_ASSERT(h->version_min <= h->version_max);
	if (first_field(body, len, PROTO_TAG_CLIENT_NAME, &v, &vlen) == 1) {
		FUZZ_ASSERT(h->client_name == v && h->client_name_len == vlen);
		FUZZ_ASSERT(inside(v, vlen, body, len));
	} else {
		FUZZ_ASSERT(h->client_name == NULL && h->client_name_len == 0);
	}
}

FUZZ_HARNESS
static void check_subscribe(const struct subscribe_request *s)
{
	size_t i;

	FUZZ_ASSERT(s->n_types >= 1 && s->n_types <= PROTO_MAX_LMR_TYPES);
	for (i = 0; i < s->n_types; i++) {
		FUZZ_ASSERT(memchr(s->types[i], '\0', sizeof(s->types[i])));
		FUZZ_ASSERT(s->type_list[i] == s->types[i]);
		FUZZ_ASSERT(lmr_type_ok(s->types[i], true));
	}
	FUZZ_ASSERT(s->type_list[s->n_types] == NULL);
}

FUZZ_HARNESS
static void check_send(const struct send_request *s, const uint8_t *body,
		       size_t len)
{
	const uint8_t *v = NULL;
	uint32_t vlen = 0;

	FUZZ_ASSERT(memchr(s->lmr_type, '\0', sizeof(s->lmr_type)));
	FUZZ_ASSERT(lmr_type_ok(s->lmr_type, false));

	/* the payload is the PAYLOAD field's value itself, not a copy */
	FUZZ_ASSERT(first_field(body, len, PROTO_TAG_PAYLOAD, &v, &vlen) == 1);
	FUZZ_ASSERT(s->payload == v && s->payload_len == vlen);
	FUZZ_ASSERT(vlen >= 1 && vlen <= REQUEST_PAYLOAD_MAX);
	FUZZ_ASSERT(inside(v, vlen, body, len));

	if (first_field(body, len, PROTO_TAG_TO, &v, &vlen) == 1) {
		FUZZ_ASSERT(s->to == v && s->to_len == vlen);
		FUZZ_ASSERT(vlen >= 1 && vlen <= REQUEST_URI_MAX);
		FUZZ_ASSERT(inside(v, vlen, body, len));
		FUZZ_ASSERT(g_utf8_validate((const char *) v, vlen, NULL));
	} else {
		FUZZ_ASSERT(s->to == NULL && s->to_len == 0);
	}

	FUZZ_ASSERT(s->timeout_ms >= 1 && s->timeout_ms <= REQUEST_SEND_TIMEOUT_MAX_MS);
}

FUZZ_HARNESS
static void check_valid(const struct request *req, const uint8_t *body,
			size_t len)
{
	switch ((enum proto_msg) req->type) {
	case PROTO_MSG_HELLO:
		check_hello(&req->hello, body, len);
		return;
	case PROTO_MSG_SUBSCRIBE:
		check_subscribe(&req->subscribe);
		return;
	case PROTO_MSG_SEND:
		check_send(&req->send, body, len);
		return;
	case PROTO_MSG_QUEUE:
		FUZZ_ASSERT(req->queue.after_id >= 0);
		FUZZ_ASSERT(req->queue.limit >= 1 &&
			    req->queue.limit <= PROTO_LIST_MAX_ENTRIES);
		return;
	case PROTO_MSG_ACK:
	case PROTO_MSG_NACK:
	case PROTO_MSG_STATUS:
	case PROTO_MSG_MONITOR:
	case PROTO_MSG_TRACE:
		return;
	case PROTO_MSG_LOG_LEVEL:
		for (const char *l = req->log_level.level; *l; l++)
			FUZZ_ASSERT(*l >= 'a' && *l <= 'z');
		return;
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
		break;
	}
	FUZZ_ASSERT(!"a type that is not a request was accepted");
}

FUZZ_HARNESS
static void check_refused(bool negotiated, const struct request *req, int code,
			  const char *why, const uint8_t *body, size_t len)
{
	const uint8_t *v = NULL;
	uint32_t vlen = 0;

	FUZZ_ASSERT(known_error(code));
	FUZZ_ASSERT(fuzz_one_line(why));
	FUZZ_ASSERT(why != req->text || code == EOPNOTSUPP);

	if (!negotiated && req->type != PROTO_MSG_HELLO)
		FUZZ_ASSERT(code == EPROTO);
	if (negotiated && req->type == PROTO_MSG_HELLO)
		FUZZ_ASSERT(code == EALREADY);
	FUZZ_ASSERT((code == EOPNOTSUPP) ==
		    (negotiated && !is_request_type(req->type)));
	FUZZ_ASSERT(code != E2BIG || req->type == PROTO_MSG_SUBSCRIBE);
	FUZZ_ASSERT(code != EMSGSIZE || req->type == PROTO_MSG_SEND);

	/* TO refused: its first (only) occurrence is what g_utf8_validate()
	 * or the length refuses */
	if (strcmp(why, "TO must be a UTF-8 URI of 1 to 1024 octets") == 0) {
		FUZZ_ASSERT(req->type == PROTO_MSG_SEND);
		FUZZ_ASSERT(first_field(body, len, PROTO_TAG_TO, &v, &vlen) == 1);
		FUZZ_ASSERT(vlen == 0 || vlen > REQUEST_URI_MAX ||
			    !g_utf8_validate((const char *) v, vlen, NULL));
	}
}

/* Decodes one body and checks every property; returns the verdict. */
FUZZ_HARNESS
static int decode_checked(bool negotiated, const uint8_t *body, size_t len,
			  struct request *req)
{
	const uint8_t *v;
	const char *why = "unset";
	uint32_t vlen;
	int code = -1, r;

	r = request_decode(negotiated, body, len, req, &code, &why);
	FUZZ_ASSERT(r == REQUEST_VALID || r == REQUEST_REFUSED ||
		    r == REQUEST_MALFORMED);
	FUZZ_ASSERT((r == REQUEST_MALFORMED) ==
		    (first_field(body, len, 0, &v, &vlen) < 0));

	if (r == REQUEST_MALFORMED) {
		FUZZ_ASSERT(code == 0);
		FUZZ_ASSERT(why == frame_strerror(len < FRAME_BODY_MIN ?
						  FRAME_ERR_SHORT_BODY :
						  FRAME_ERR_FIELD_TRUNCATED));
		return r;
	}

	FUZZ_ASSERT(req->type == body[0] && req->id == be32(body + 1));
	if (r == REQUEST_REFUSED) {
		check_refused(negotiated, req, code, why, body, len);
		return r;
	}

	FUZZ_ASSERT(code == 0 && why == NULL);
	check_valid(req, body, len);
	return r;
}

struct session {
	bool negotiated;
	bool closed;
};

/* One frame as server.c's handle_frame() takes it: both decodes checked,
 * then the session moves on by the one that applies. */
FUZZ_HARNESS
static void dispatch(struct session *s, const uint8_t *body, size_t len)
{
	static struct request before, after;
	int r0, r1;

	r0 = decode_checked(false, body, len, &before);
	r1 = decode_checked(true, body, len, &after);
	FUZZ_ASSERT((r0 == REQUEST_MALFORMED) == (r1 == REQUEST_MALFORMED));

	if (r0 == REQUEST_MALFORMED) {
		s->closed = true;
		return;
	}

	if (s->negotiated)
		return;		/* every answer leaves the connection open */

	if (r0 == REQUEST_REFUSED) {
		s->closed = true;
		return;
	}

	/* a HELLO the agent answers with HELLO_OK, or with EPROTONOSUPPORT */
	if (before.hello.version_max < PROTO_VERSION_MIN ||
	    before.hello.version_min > PROTO_VERSION_MAX)
		s->closed = true;
	else
		s->negotiated = true;
}

FUZZ_HARNESS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session s = { false, false };
	struct frame_decoder d;
	const uint8_t *body;
	uint8_t *space;
	size_t off = 0, avail, len;
	int k = 0;

	frame_decoder_init(&d);
	while (off < size && !s.closed) {
		if (frame_decoder_space(&d, &space, &avail) < 0)
			break;
		if (avail > size - off)
			avail = size - off;
		memcpy(space, data + off, avail);
		frame_decoder_commit(&d, avail);
		off += avail;

		while (!s.closed && (k = frame_decoder_next(&d, &body, &len)) == 1) {
			FUZZ_ASSERT(inside(body, len, d.buf, d.len));
			dispatch(&s, body, len);
		}
		if (!s.closed && k < 0)
			break;
		frame_decoder_release(&d);
	}
	frame_decoder_clear(&d);
	return 0;
}
