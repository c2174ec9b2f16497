/*
 * trace — one SIP message as an operator may see it (`lmrsecctl trace`).
 *
 * trace_sanitise() turns the raw bytes of a SIP message, as they went on or
 * off the wire, into text: the start line and the headers in full, every
 * body replaced by its content type, size and SHA-256 fingerprint (each
 * part of a multipart body too, and the payload IE of an interworking-data
 * part), so that key bytes never leave the agent this way.  The digest
 * `response` of an Authorization or Proxy-Authorization header is withheld
 * as well: with the nonce it would allow guessing the SIP password offline.
 *
 * It fails closed: when the bytes do not parse far enough to tell where
 * the body starts (no well-formed start line, no end of the header block)
 * the text is the start line, if there is a well-formed one, and
 * "body withheld (N bytes, unparsed)" — never bytes of the message.
 *
 * A pure function over (const uint8_t *, size_t): libc, sha256.c and
 * iwdata.c only; unit-tested (tests/unit/test-trace.c) and fuzzed
 * (tests/fuzz/fuzz-trace.c).
 */
#ifndef LMRSEC_AGENT_TRACE_H
#define LMRSEC_AGENT_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The text never grows past this; headers beyond it are counted, not shown. */
#define TRACE_TEXT_MAX		(64 * 1024)
/* A start line longer than this is not believed to be one. */
#define TRACE_START_LINE_MAX	2048
/* Parts of a multipart body listed at most (the rest are counted). */
#define TRACE_MAX_PARTS		16

enum trace_direction {
	TRACE_DIRECTION_IN,	/* received by the agent */
	TRACE_DIRECTION_OUT,	/* sent by the agent */
};

/* One message as the SIP adapter hands it over (sip.c → main loop). */
struct trace_record {
	enum trace_direction direction;
	char transport[8];	/* udp, tcp, tls */
	char peer[64];		/* the other end: "127.0.0.1:5060", "[::1]:5060" */
	int64_t time_us;	/* when it went on or off the wire */
	uint8_t *bytes;		/* the raw message: key material, wiped on free */
	size_t len;
};

/*
 * msg, len: one whole SIP message.  stream: it came over a stream transport
 * (TCP, TLS), where Content-Length is mandatory (RFC 3261 §18.3); without
 * it the body's end is unknown and the rest is withheld.  On a datagram the
 * body is the rest of the datagram.
 *
 * *out: the sanitised text, NUL-terminated, valid UTF-8, lines ending in
 * "\n", at most TRACE_TEXT_MAX bytes and a short summary; free() it.
 * Returns 0 or -ENOMEM.
 */
int trace_sanitise(const uint8_t *msg, size_t len, bool stream, char **out);

static inline const char *trace_direction_name(enum trace_direction d)
{
	switch (d) {
	case TRACE_DIRECTION_IN:
		return "in";
	case TRACE_DIRECTION_OUT:
		return "out";
	}
	return "?";
}

#endif
