/*
 * liblmrsec — talk to lmrsec-agent over its local socket.
 *
 * C99, libc only.  One handle per connection.  Every blocking call takes a
 * timeout in milliseconds (-1 waits forever, 0 polls) and never blocks past
 * it: the connect, every write and every read are bounded by one deadline.
 * Functions return 0 (or a positive count where documented) on success and a
 * negative errno on failure; lmrsec_strerror() turns it into text.  Payload
 * buffers handed to the caller are wiped when freed.  No signal is raised by
 * the library (no SIGPIPE).  The long waits, lmrsec_next_delivery(),
 * lmrsec_next_event(), lmrsec_send() and lmrsec_send_finish(), return
 * -EINTR when a signal handler runs, so a program can stop on
 * SIGINT/SIGTERM; the short request/reply calls carry on to their answer
 * or their timeout.
 *
 * Thread-compatible: no global state; a handle is used by one thread at a
 * time.  After the connection is lost (the agent closed it, a malformed
 * frame, a write cut short by its timeout) every call on the handle returns
 * that error; close it and connect again.
 *
 * Typical consumer:
 *     struct lmrsec *c;
 *     lmrsec_connect(NULL, &c);                  // default path, negotiates
 *     const char *types[] = { "TETRA", NULL };
 *     lmrsec_subscribe(c, types, 0, 5000);
 *     for (;;) {
 *         struct lmrsec_delivery *d;
 *         if (lmrsec_next_delivery(c, &d, -1) < 0) break;
 *         ... use d->payload, d->payload_len ...
 *         lmrsec_ack(c, d->id, 5000);
 *         lmrsec_delivery_free(d);
 *     }
 *     lmrsec_close(c);
 *
 * Your own poll loop.  lmrsec_fd() turns readable when the agent has sent
 * something.  lmrsec_process() then reads it without blocking and returns
 * what waits in the handle (a mask of LMRSEC_READY_*), to be taken with the
 * matching call and a timeout of 0.  The blocking calls read too, and keep
 * what arrives while they wait (a delivery, an event, the answer to
 * lmrsec_send_start()), which the fd then no longer shows: so call
 * lmrsec_process() before each poll() and poll only when it returned 0.
 *     lmrsec_send_start(c, "TETRA", NULL, key, key_len, 10000);
 *     for (;;) {
 *         int ready = lmrsec_process(c);
 *         if (ready < 0)
 *             break;                               // connection lost
 *         if (ready & LMRSEC_READY_SEND)
 *             lmrsec_send_finish(c, &result, 0);   // the final SIP answer
 *         if (ready & LMRSEC_READY_DELIVERY)
 *             ... lmrsec_next_delivery(c, &d, 0) ...
 *         if (ready & LMRSEC_READY_EVENT)
 *             ... lmrsec_next_event(c, &ev, 0) ...
 *         if (ready == 0)
 *             poll(&(struct pollfd) { lmrsec_fd(c), POLLIN, 0 }, 1, -1);
 *     }
 *
 * Reconnecting.  The agent restarts now and then (upgrade, crash, reboot):
 * the handle then returns -ECONNRESET, and lmrsec_connect() fails with
 * -ENOENT or -ECONNREFUSED until the new agent listens.  Nothing is lost
 * meanwhile: the agent keeps every message that was not ACKed and delivers
 * it again, with the same id, once the types are subscribed again.  So:
 *     delay = 100 ms
 *     for (;;) {
 *         if (lmrsec_connect(path, &c) < 0 ||
 *             lmrsec_subscribe(c, types, 0, 5000) < 0) {
 *             lmrsec_close(c); c = NULL;
 *             sleep delay plus up to 50 % random jitter;
 *             delay = min(2 * delay, 5 s);
 *             continue;
 *         }
 *         delay = 100 ms;
 *         consume until a call fails, then lmrsec_close(c);
 *     }
 * An application that installed a key but died before its ACK sees that
 * id again: install idempotently (or remember ids) and ACK it again.
 * A monitor simply calls lmrsec_monitor() again after reconnecting; events
 * of the gap are not replayed (lmrsec_queue() shows what the spool holds).
 * examples/reconnect.c is a complete consumer built this way.
 */
#ifndef LMRSEC_H
#define LMRSEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the socket protocol this library speaks (lmrsec-protocol(7)). */
#define LMRSEC_PROTOCOL_VERSION 1
/* Environment variable overriding the default socket path. */
#define LMRSEC_SOCKET_ENV "LMRSEC_SOCKET"
/* Timeout of lmrsec_connect(), in milliseconds. */
#define LMRSEC_DEFAULT_TIMEOUT_MS 5000

struct lmrsec;

/* One payload handed to a consumer.  The strings are never NULL ("" when
 * the agent did not send one). */
struct lmrsec_delivery {
	uint64_t id;
	char *lmr_type;
	char *kmf_uri;
	char *mc_service_id;
	char *sender;
	uint64_t received_us;        /* microseconds since the epoch */
	uint8_t fingerprint[32];     /* SHA-256 of the payload, computed by the agent */
	uint8_t *payload;
	size_t payload_len;
};

struct lmrsec_send_result {
	unsigned sip_status;         /* final SIP status, e.g. 200 or 403 */
	char sip_reason[128];
};

struct lmrsec_status {
	char reg_state[16];          /* registered|registering|unregistered|failed */
	char aor[256];
	char registrar[256];
	char transport[8];
	uint32_t expires_in;         /* seconds until the registration expires */
	uint32_t next_retry;         /* seconds until the next attempt, 0 if none */
	uint32_t last_status;        /* SIP status of the last REGISTER answer */
	char last_reason[128];
	uint64_t spool_messages;
	uint64_t spool_bytes;
	char consumers[512];         /* LMR types with a consumer, comma separated
	                                (truncated if longer) */
	uint64_t received, delivered, acked, rejected, sent;
	uint64_t expired;            /* dropped undelivered after message-ttl */
};

/* The socket path used when none is given:
 *   1. $LMRSEC_SOCKET when set and not empty;
 *   2. else $XDG_RUNTIME_DIR/lmrsec/agent.sock when XDG_RUNTIME_DIR is set
 *      and not empty and the effective uid is not 0 (the agent as a
 *      `systemd --user` service);
 *   3. else /run/lmrsec/agent.sock (the system service; root always talks
 *      to it unless LMRSEC_SOCKET says otherwise).
 * Writes into buf; returns 0, -EINVAL or -ENAMETOOLONG. */
int lmrsec_default_path(char *buf, size_t size);

/* Connects (path NULL = default) and negotiates the protocol version.
 * -ENOENT/-ECONNREFUSED: no agent; -EACCES: not allowed on the socket;
 * -EPROTONOSUPPORT: version mismatch; -ETIMEDOUT.  lmrsec_connect() waits
 * at most LMRSEC_DEFAULT_TIMEOUT_MS. */
int lmrsec_connect(const char *path, struct lmrsec **out);
int lmrsec_connect_timeout(const char *path, int timeout_ms, struct lmrsec **out);
/* Protocol version agreed with the agent, and the agent's version string. */
int lmrsec_protocol_version(const struct lmrsec *c);
const char *lmrsec_agent_version(const struct lmrsec *c);
/* File descriptor for the caller's own poll loop (readable = data waiting).
 * Deliveries, events and send answers that arrive while another call waits
 * for its reply are read and kept in the handle, where the fd no longer
 * shows them: call lmrsec_process() before polling ("Your own poll loop"
 * above). */
int lmrsec_fd(const struct lmrsec *c);
void lmrsec_close(struct lmrsec *c);

/* Consumer role.  types is a NULL-terminated list; "*" means every type.
 * takeover != 0 replaces a consumer already holding one of the types.
 * -EBUSY: another consumer holds a type. */
int lmrsec_subscribe(struct lmrsec *c, const char *const *types, int takeover, int timeout_ms);
/* Waits for the next payload, in the order the agent sent them.
 * -ETIMEDOUT when none came in time (0 polls).  An error the agent sent
 * unasked (e.g. -EBUSY "taken over by another consumer") is returned in its
 * place in the stream, its text in lmrsec_last_error(); -EPROTO for a
 * delivery that could not be parsed. */
int lmrsec_next_delivery(struct lmrsec *c, struct lmrsec_delivery **out, int timeout_ms);
/* Deliveries (and notices) already read and waiting in the handle. */
int lmrsec_pending(const struct lmrsec *c);
int lmrsec_ack(struct lmrsec *c, uint64_t id, int timeout_ms);
int lmrsec_nack(struct lmrsec *c, uint64_t id, int timeout_ms);
/* Pipelined ACKs, for a consumer that takes deliveries in bursts: the
 * agent commits the deletions of ACKs that arrive together in one
 * transaction.  lmrsec_ack_start() writes the ACK (bounded by timeout_ms)
 * and returns without waiting for the agent's answer; with
 * LMRSEC_ACKS_MAX unanswered it first waits for one.  lmrsec_ack_finish()
 * waits until every ACK started is answered (0 polls) and returns 0, or the
 * first failure among them (its text in lmrsec_last_error()), or
 * -ETIMEDOUT with some still unanswered.  As with lmrsec_ack(), a message
 * is gone only once its ACK is answered: after a reconnect the others may
 * be delivered again. */
#define LMRSEC_ACKS_MAX 64
int lmrsec_ack_start(struct lmrsec *c, uint64_t id, int timeout_ms);
int lmrsec_ack_finish(struct lmrsec *c, int timeout_ms);
/* 1 when type is an LMR type token, [A-Za-z0-9_-]{1,16}, else 0.  ("*",
 * every type, is accepted by lmrsec_subscribe() but is no token.) */
int lmrsec_lmr_type_valid(const char *type);
/* Wipes the payload and frees. */
void lmrsec_delivery_free(struct lmrsec_delivery *d);
/* 0 when SHA-256(payload) equals the agent's fingerprint, else -EBADMSG. */
int lmrsec_delivery_verify(const struct lmrsec_delivery *d);

/* Requester role. */
int lmrsec_status(struct lmrsec *c, struct lmrsec_status *out, int timeout_ms);
/* Sends a client-initiated message to the KMF (to NULL = the configured
 * KMF) and waits for the final SIP answer.  Returns 0 when the request was
 * carried out, whatever the SIP status (see result->sip_status); a negative
 * errno when the agent could not (-ENOTCONN: not registered in time).
 * lmr_type: [A-Za-z0-9_-]{1,16}; payload: 1 to 65535 bytes (else -EINVAL).
 * The agent is given most of timeout_ms (the rest is left for its answer to
 * come back), so "not registered" arrives as -ENOTCONN, not -ETIMEDOUT. */
int lmrsec_send(struct lmrsec *c, const char *lmr_type, const char *to,
		const void *payload, size_t payload_len,
		struct lmrsec_send_result *result, int timeout_ms);
/* Non-blocking form: lmrsec_send_start() writes the request (the write
 * bounded by timeout_ms) and returns; the agent has timeout_ms to get the
 * final answer (-1: the agent's default).  lmrsec_send_finish() collects
 * it: as lmrsec_send(), or -ETIMEDOUT when it has not come within its own
 * timeout_ms (0 polls), the send then still outstanding.  Deliveries that
 * arrive meanwhile are queued.  One send outstanding per handle: -EALREADY. */
int lmrsec_send_start(struct lmrsec *c, const char *lmr_type, const char *to,
		      const void *payload, size_t payload_len, int timeout_ms);
int lmrsec_send_finish(struct lmrsec *c, struct lmrsec_send_result *result,
		       int timeout_ms);

/* Spool listing (requester role): metadata of the messages the agent keeps,
 * never their payloads.  The strings are never NULL ("" when unknown). */
struct lmrsec_queue_entry {
	uint64_t id;
	char *lmr_type;
	char *kmf_uri;
	char *mc_service_id;
	char *sender;
	uint64_t received_us;        /* microseconds since the epoch */
	uint64_t size;               /* payload octets */
	uint8_t fingerprint[32];     /* SHA-256 of the payload */
	int in_flight;               /* 1: delivered to a consumer, not yet ACKed */
};

/* Lists the messages with an id above after_id (0: from the first), at
 * most max of them (0: all), in arrival order, asking the agent page by
 * page, all within timeout_ms.  *entries is an array of *count entries (NULL
 * when *count is 0); release it with lmrsec_queue_free(). */
int lmrsec_queue(struct lmrsec *c, uint64_t after_id, size_t max,
		 struct lmrsec_queue_entry **entries, size_t *count,
		 int timeout_ms);
void lmrsec_queue_free(struct lmrsec_queue_entry *entries, size_t count);

/* Monitor role: a stream of the agent's events, metadata only. */
enum lmrsec_event_kind {
	LMRSEC_EVENT_OTHER = 0,      /* a kind this library does not know: see name */
	LMRSEC_EVENT_REGISTRATION,   /* registration state or last answer changed */
	LMRSEC_EVENT_RECEIVED,       /* a message was accepted and spooled */
	LMRSEC_EVENT_DELIVERED,      /* handed to a consumer */
	LMRSEC_EVENT_ACKED,          /* ACKed: removed from the spool */
	LMRSEC_EVENT_NACKED,         /* NACKed: back in the queue */
	LMRSEC_EVENT_REJECTED,       /* an incoming message refused with a SIP error */
	LMRSEC_EVENT_EXPIRED,        /* dropped undelivered after the message TTL */
};

struct lmrsec_event {
	enum lmrsec_event_kind kind;
	char name[24];               /* the kind as the agent names it, e.g. "received" */
	uint64_t time_us;            /* when it happened, microseconds since the epoch */
	uint64_t id;                 /* message id, 0 when none (registration, rejected) */
	char lmr_type[17];           /* "" when none */
	uint64_t size;               /* payload octets, 0 when none */
	int has_fingerprint;
	uint8_t fingerprint[32];     /* SHA-256 of the payload, when has_fingerprint */
	unsigned sip_status;         /* rejected: the answer sent; registration:
	                                the last REGISTER answer; else 0 */
	char reason[128];            /* its reason phrase, "" when none */
	char reg_state[16];          /* registration: registered|registering|
	                                unregistered|failed; else "" */
};

/* Makes this connection a monitor: every later event comes to it, in order.
 * -EALREADY when it already is one. */
int lmrsec_monitor(struct lmrsec *c, int timeout_ms);
/* Waits for the next event (0 polls): -ETIMEDOUT when none came in time,
 * -EINTR on a signal, or the error that ended the connection.  Free it
 * with lmrsec_event_free(). */
int lmrsec_next_event(struct lmrsec *c, struct lmrsec_event **out, int timeout_ms);
/* Events already read and waiting in the handle. */
int lmrsec_pending_events(const struct lmrsec *c);
void lmrsec_event_free(struct lmrsec_event *e);

/* Operator role: the SIP trace and the agent's log level, for the agent's
 * own user and root only (-EPERM for anyone else).  An agent older than
 * them answers -EOPNOTSUPP. */

/* One SIP message the agent sent or received, as `lmrsecctl trace` shows
 * it: start line and headers in full, every body replaced by its content
 * type, size and SHA-256 (never its bytes). */
struct lmrsec_trace {
	uint64_t time_us;            /* when it went on or off the wire */
	int outgoing;                /* 1: sent by the agent, 0: received */
	char transport[8];           /* udp, tcp, tls */
	char peer[64];               /* the other end, ADDR:PORT or [ADDR]:PORT */
	uint64_t size;               /* octets of the message on the wire */
	uint64_t dropped;            /* messages not shown just before this one
	                                (the trace reader did not keep up) */
	char *text;                  /* lines ending in "\n"; never NULL */
};

/* Makes this connection a tracer: every later SIP message comes to it.
 * -EALREADY when it already is one. */
int lmrsec_trace(struct lmrsec *c, int timeout_ms);
/* Waits for the next message (0 polls), as lmrsec_next_event().  Free it
 * with lmrsec_trace_free(). */
int lmrsec_next_trace(struct lmrsec *c, struct lmrsec_trace **out, int timeout_ms);
void lmrsec_trace_free(struct lmrsec_trace *t);

/* Level names: error, warning, message, info, debug. */
#define LMRSEC_LOG_LEVEL_MAX 15
struct lmrsec_log_level {
	char previous[LMRSEC_LOG_LEVEL_MAX + 1];
	char current[LMRSEC_LOG_LEVEL_MAX + 1];
};
/* Sets the agent's log level until it stops (level NULL only asks, which
 * any connection may).  -EINVAL: not a level the agent knows. */
int lmrsec_log_level(struct lmrsec *c, const char *level, struct lmrsec_log_level *out,
		     int timeout_ms);

/* What lmrsec_process() reports waiting in the handle. */
#define LMRSEC_READY_DELIVERY	0x1  /* lmrsec_next_delivery(c, &d, 0) */
#define LMRSEC_READY_EVENT	0x2  /* lmrsec_next_event(c, &e, 0) */
#define LMRSEC_READY_SEND	0x4  /* lmrsec_send_finish(c, &r, 0) */
#define LMRSEC_READY_TRACE	0x8  /* lmrsec_next_trace(c, &t, 0) */

/* Reads whatever the agent has sent, never blocking, and returns the mask
 * of what waits in the handle (0: nothing yet); a negative errno once the
 * connection is lost and nothing is left to take.  See "Your own poll
 * loop" above. */
int lmrsec_process(struct lmrsec *c);

/* Text for a negative errno returned by this library, or for the last error
 * the agent sent (lmrsec_last_error). */
const char *lmrsec_strerror(int err);
/* The agent's own message for the last error it reported on this handle, or "".
 * Cleared when a request starts. */
const char *lmrsec_last_error(const struct lmrsec *c);

/* SHA-256 of data (FIPS 180-4), as the agent computes payload fingerprints,
 * and its lower-case hex form (64 digits and a NUL). */
void lmrsec_sha256(const void *data, size_t len, uint8_t out[32]);
void lmrsec_fingerprint_hex(const uint8_t fp[32], char out[65]);

#ifdef __cplusplus
}
#endif
#endif
