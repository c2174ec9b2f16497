/*
 * broker — the core of lmrsec-agent.
 *
 * Keeps every key message until its consumer ACKs it, routes messages by LMR
 * type in arrival order, suppresses duplicates and enforces the spool bounds;
 * it also queues client-initiated sends.  It owns the spool.  The SIP adapter
 * (sip.c) and the socket adapter (server.c) never include each other: each
 * talks only to the broker, and the broker calls back into them through the
 * function pointers main.c installs.
 */
#ifndef LMRSEC_BROKER_H
#define LMRSEC_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"

struct broker;

enum broker_ack_mode {
	BROKER_ACK_STORED,     /* 200 once durably spooled */
	BROKER_ACK_DELIVERED,  /* 200 once a consumer ACKed, within the
	                          delivery timeout; else 480 (kept spooled) */
};

struct broker_limits {
	enum broker_ack_mode ack_mode;
	unsigned delivery_timeout_s;
	uint64_t max_messages;
	uint64_t max_bytes;
	unsigned message_ttl_s;
};

/* --- registration state, reported by the SIP side --- */
enum broker_reg_state {
	BROKER_REG_UNREGISTERED,
	BROKER_REG_REGISTERING,
	BROKER_REG_REGISTERED,
	BROKER_REG_FAILED,
};

struct broker_registration {
	enum broker_reg_state state;
	const char *aor;
	const char *registrar;
	const char *transport;
	int64_t expires_at_us;     /* monotonic-free wall clock, 0 if not registered */
	int64_t next_retry_us;     /* 0 if no retry pending */
	unsigned last_status;      /* last REGISTER final status, 0 if none */
	const char *last_reason;
};

const char *broker_reg_state_name(enum broker_reg_state s);

/* --- incoming (IWF-initiated) messages --- */

/* The answer for an incoming MESSAGE: a SIP status, its reason phrase and an
 * optional Retry-After (0 = none).  Called exactly once per broker_accept:
 * before broker_accept returns for a refusal (503 spool full) and while
 * stopping; else from the main loop after the group commit that stored it
 * (every MESSAGE accepted in one main-loop iteration shares one durable
 * commit; 500 to all of them if it fails), and in ack-mode delivered later
 * still (the consumer's ACK, NACK, delivery timeout, expiry, or
 * broker_shutdown).  reason may live on the caller's stack: copy or intern
 * it if it must outlive the call. */
typedef void (*broker_answer_fn)(void *ctx, unsigned status, const char *reason,
				 unsigned retry_after_s);

/* Takes an accepted record (inbound validation already passed): the broker
 * takes ownership of rec's contents (it is cleared on return). */
void broker_accept(struct broker *b, struct spool_record *rec,
		   broker_answer_fn answer, void *ctx);

/* --- consumers (the socket side) --- */

/* Hands one message to a consumer connection.  Return 0 when queued for the
 * peer, a negative errno when it cannot take more now (the message stays
 * pending for that consumer and is offered again on broker_consumer_ready). */
typedef int (*broker_deliver_fn)(void *consumer, const struct spool_record *msg);

/* Registers consumer for the NULL-terminated LMR types ("*" = all).
 * -EBUSY (with *holder_type set to the contested type) when another consumer
 * holds one and takeover is false; with takeover, the old holder loses those
 * types (its unacked messages return to the queue) and is told through
 * lost_fn. */
typedef void (*broker_lost_fn)(void *consumer, const char *lmr_type);
int broker_subscribe(struct broker *b, void *consumer, const char *const *types,
		     bool takeover, broker_deliver_fn deliver, broker_lost_fn lost,
		     const char **holder_type);
/* The consumer went away: everything it had unacked returns to the queue. */
void broker_unsubscribe(struct broker *b, void *consumer);
/* The consumer can take messages again (its output drained). */
void broker_consumer_ready(struct broker *b, void *consumer);
/* The outcome of an ACK: 0 once the message's deletion is committed (only
 * then may the consumer be told), or a negative errno when that commit
 * failed (the message stays, still in flight to the consumer). */
typedef void (*broker_ack_done_fn)(void *ctx, int err);
struct broker_ack;  /* an ACK waiting for its commit, cancellable */
/* -ENOENT when id is not a message in flight to this consumer (or its ACK
 * is already waiting); done is then never called.  Else 0: the deletion
 * is committed with the other ACKs of this main-loop iteration, in one
 * transaction that is not fsync'd (docs/behaviour.md: what a power loss
 * may bring back), just before the iteration's MESSAGEs are stored; done
 * is called from the main loop after it, never before broker_ack returns.  *handle (may be NULL) is valid until
 * done is called. */
int broker_ack(struct broker *b, void *consumer, int64_t id,
	       broker_ack_done_fn done, void *ctx, struct broker_ack **handle);
/* The ACKer went away: done will not be called (the deletion still
 * happens; an unconfirmed ACK may or may not take effect). */
void broker_ack_cancel(struct broker *b, struct broker_ack *a);
int broker_nack(struct broker *b, void *consumer, int64_t id);

/* --- client-initiated sends --- */
struct broker_send_request {
	const char *lmr_type;
	const char *to;            /* NULL = first configured KMF URI */
	const uint8_t *payload;
	size_t payload_len;
	unsigned timeout_ms;
};

/* Final outcome of a send: sip_status > 0 with its reason, or sip_status 0
 * and err < 0 when it never reached a final SIP answer (-ENOTCONN: not
 * registered in time, -ETIMEDOUT, ...). */
typedef void (*broker_send_done_fn)(void *ctx, int err, unsigned sip_status,
				    const char *reason);
struct broker_send;  /* a pending send, cancellable */
/* The SIP side's send, installed by main.c; it answers through done. */
struct broker_sip_ops {
	/* Builds and sends the MESSAGE; returns a handle for cancel or NULL
	 * after calling done with an error. */
	void *(*send)(void *sip, const struct broker_send_request *req,
		      broker_send_done_fn done, void *done_ctx);
	void (*cancel)(void *sip, void *handle);
};
struct broker_send *broker_send(struct broker *b, const struct broker_send_request *req,
				broker_send_done_fn done, void *ctx);
/* The requester went away: done will not be called. */
void broker_send_cancel(struct broker *b, struct broker_send *s);

/* --- events, for monitors --- */
enum broker_event_kind {
	BROKER_EVENT_REGISTRATION,  /* state or last REGISTER answer changed */
	BROKER_EVENT_RECEIVED,      /* accepted and spooled */
	BROKER_EVENT_DELIVERED,     /* handed to a consumer */
	BROKER_EVENT_ACKED,         /* consumer ACKed: removed from the spool */
	BROKER_EVENT_NACKED,        /* consumer NACKed: back in the queue */
	BROKER_EVENT_REJECTED,      /* refused with a SIP error (no id) */
	BROKER_EVENT_EXPIRED,       /* dropped undelivered after message-ttl */
};

/* Metadata only: never payload bytes. Pointers valid during the call. */
struct broker_event {
	enum broker_event_kind kind;
	int64_t time_us;             /* wall clock */
	int64_t id;                  /* message id, 0 when none */
	const char *lmr_type;        /* NULL when unknown */
	size_t size;                 /* payload bytes */
	const uint8_t *fingerprint;  /* 32 bytes (SHA-256), NULL when unknown */
	unsigned sip_status;         /* REJECTED: the answer; REGISTRATION: last status */
	const char *reason;          /* REJECTED / REGISTRATION: the reason phrase */
	enum broker_reg_state reg_state;  /* REGISTRATION */
};

const char *broker_event_name(enum broker_event_kind kind);

typedef void (*broker_event_fn)(void *ctx, const struct broker_event *ev);
/* Observers are called in the order added, synchronously. */
void broker_add_observer(struct broker *b, broker_event_fn fn, void *ctx);
void broker_remove_observer(struct broker *b, broker_event_fn fn, void *ctx);

/* --- status --- */
struct broker_status {
	struct broker_registration reg;   /* strings owned by the broker */
	uint64_t spool_messages, spool_bytes;
	uint64_t received, delivered, acked, rejected, sent, expired;
	const char *consumer_types[64];   /* NULL-terminated, owned by the broker */
};
void broker_get_status(struct broker *b, struct broker_status *out);

/* --- spool listing, for requesters (metadata only) --- */
/* Called once per spooled message: msg->payload is NULL, payload_len and
 * the fingerprint are set; in_flight while a consumer has it unacked.
 * Return 0 to go on, a negative errno to stop (broker_list returns it). */
typedef int (*broker_list_fn)(void *ctx, const struct spool_record *msg,
			      bool in_flight);
/* Visits up to limit messages (0: all) with an id above after_id, in id
 * (arrival) order.  0, or a negative errno from the spool or from fn. */
int broker_list(struct broker *b, int64_t after_id, size_t limit,
		broker_list_fn fn, void *ctx);
/* Records a message the inbound validation refused: counted for status and
 * reported to observers. */
void broker_rejected(struct broker *b, unsigned status, const char *reason);

/* --- the SIP side reports registration changes --- */
void broker_set_registration(struct broker *b, const struct broker_registration *reg);
bool broker_is_registered(const struct broker *b);

/* --- life cycle --- */
/* Opens nothing itself: takes an open spool (owns it from then on) and
 * reloads pending messages from it. */
int broker_new(struct spool *spool, const struct broker_limits *limits,
	       struct broker **out, char **error);
void broker_set_sip(struct broker *b, const struct broker_sip_ops *ops, void *sip);
/* The agent is stopping: commits and answers the MESSAGEs (and confirms
 * the ACKs) waiting for the group commit, answers every deferred MESSAGE now (480, the messages stay
 * spooled) and later arrivals at once.  Call it while the SIP
 * side can still send, before sip_shutdown. */
void broker_shutdown(struct broker *b);
/* Answers nothing any more: deferred answers not given by broker_shutdown
 * are dropped.  Closes the spool. */
void broker_free(struct broker *b);

#endif
