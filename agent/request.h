/*
 * request.h — one request from a local client, decoded from its frame body
 * (docs/protocol.md, DESIGN §4).
 *
 * A pure function over a byte buffer: no I/O, no GLib, no globals; libc and
 * the frame codec only, so the same code runs in the agent (server.c), in
 * tests/unit/test-request.c and under libFuzzer (tests/fuzz/fuzz-dispatch.c).
 * It checks everything a request says on its own: framing, field sizes and
 * values, repeated and missing fields, HELLO first. What depends on the
 * connection beyond "negotiated" (already a consumer or monitor, sends
 * outstanding) and on the rest of the agent (the broker) stays in server.c.
 *
 * A new request type: add its PROTO_MSG_ value in proto.h; the switches in
 * request.c (request_decode_fields) and server.c (handle_frame) have no
 * default, so the compiler names both.  Give it a struct below and a member
 * of the union when it has fields, and a parse_ function in request.c.
 */
#ifndef LMRSEC_REQUEST_H
#define LMRSEC_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define REQUEST_LMR_TYPE_MAX		16	/* as IWDATA_MAX_LMR_TYPE */
#define REQUEST_URI_MAX			1024	/* as IWDATA_MAX_URI */
#define REQUEST_PAYLOAD_MAX		65535	/* as IWDATA_MAX_PAYLOAD */
#define REQUEST_SEND_TIMEOUT_DEFAULT_MS	30000
#define REQUEST_SEND_TIMEOUT_MAX_MS	300000

/*
 * Memory: pointers in a decoded request (client_name, to, payload) point
 * into the frame body given to request_decode(), zero-copy; they are valid
 * as long as the body is (for the agent: until frame_decoder_release(),
 * which wipes it).  A SEND's payload is key material: it is never copied
 * here, so the wipe of the decoder buffer is the only one it needs.  LMR
 * types are short, checked names and are copied into the request.
 */
struct hello_request {
	uint32_t version_min;
	uint32_t version_max;
	const uint8_t *client_name;	/* NULL when absent; not NUL-terminated */
	uint32_t client_name_len;
};

struct subscribe_request {
	char types[PROTO_MAX_LMR_TYPES][REQUEST_LMR_TYPE_MAX + 1];
	/* NULL-terminated; points into types, so a struct request is not
	 * copied by value once decoded */
	const char *type_list[PROTO_MAX_LMR_TYPES + 1];
	size_t n_types;			/* 1 .. PROTO_MAX_LMR_TYPES */
	bool takeover;
};

/* ACK and NACK. */
struct ack_request {
	uint64_t message_id;		/* any u64: server.c answers ENOENT above INT64_MAX */
};

struct send_request {
	char lmr_type[REQUEST_LMR_TYPE_MAX + 1];
	const uint8_t *to;		/* NULL: the broker's default KMF; UTF-8, no NUL */
	uint32_t to_len;		/* 1 .. REQUEST_URI_MAX */
	const uint8_t *payload;		/* key material, 1 .. REQUEST_PAYLOAD_MAX octets */
	uint32_t payload_len;
	uint32_t timeout_ms;		/* 1 .. REQUEST_SEND_TIMEOUT_MAX_MS, default filled in */
};

struct queue_request {
	int64_t after_id;		/* 0 .. INT64_MAX */
	uint32_t limit;			/* 1 .. PROTO_LIST_MAX_ENTRIES */
};

/* LOG_LEVEL: the level asked for, a name server.c checks against the
 * agent's levels (log.h); empty when the request only asks. */
#define REQUEST_LOG_LEVEL_MAX	15
struct log_level_request {
	char level[REQUEST_LOG_LEVEL_MAX + 1];
};

/* Text of "unknown message type 0xNN". */
#define REQUEST_TEXT_LEN	32

struct request {
	uint8_t type;			/* enum proto_msg, or an unknown value */
	uint32_t id;			/* echoed by the reply, whatever the verdict */
	union {
		struct hello_request hello;		/* PROTO_MSG_HELLO */
		struct subscribe_request subscribe;	/* PROTO_MSG_SUBSCRIBE */
		struct ack_request ack;			/* PROTO_MSG_ACK, PROTO_MSG_NACK */
		struct send_request send;		/* PROTO_MSG_SEND */
		struct queue_request queue;		/* PROTO_MSG_QUEUE */
		struct log_level_request log_level;	/* PROTO_MSG_LOG_LEVEL */
	};					/* STATUS, MONITOR, TRACE: no fields */
	char text[REQUEST_TEXT_LEN];		/* where *why may point */
};

enum request_verdict {
	REQUEST_VALID = 0,	/* act on *req */
	REQUEST_REFUSED = -1,	/* answer ERROR *err_code / *why to req->id */
	REQUEST_MALFORMED = -2,	/* the body's framing: close without a reply */
};

/*
 * Decodes one frame body (as frame_decoder_next() gives it: type, request
 * id, fields).  negotiated: HELLO was answered on this connection.
 *
 * REQUEST_VALID: req->type is a request type and its union member is
 * filled; *err_code is 0 and *why NULL.
 * REQUEST_REFUSED: req->type and req->id are set; *err_code is a positive
 * errno for the ERROR reply and *why its one-line text: a static string or
 * req->text, so valid as long as *req.  The protocol closes the connection
 * after that reply when negotiated was false (a request before HELLO, a
 * malformed HELLO); otherwise it stays open.
 * REQUEST_MALFORMED: body shorter than type + request id, or a field running
 * past its end; *why says which (static), *err_code is 0.
 */
int request_decode(bool negotiated, const uint8_t *body, size_t len,
		   struct request *req, int *err_code, const char **why);

#endif /* LMRSEC_REQUEST_H */
