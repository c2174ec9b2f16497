/*
 * client.c — liblmrsec: the application side of the agent's local socket
 * (DESIGN §4, §5; docs/protocol.md).  C99 + POSIX, libc only.
 *
 * One handle is one non-blocking AF_UNIX stream.  Every public call that
 * waits computes one CLOCK_MONOTONIC deadline and polls against it, for the
 * connect, each write and each read, so no call outlives its timeout.
 * Frames are read by one pump that dispatches each complete frame: the reply
 * being waited for goes to that request's parser, DELIVERY frames and
 * unsolicited ERROR notices (request id 0) go to an in-order queue that
 * lmrsec_next_delivery() drains, late replies to abandoned requests are
 * dropped.  Once the byte stream can no longer be trusted (peer closed, bad
 * framing, a write cut short) the handle keeps that error for good.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* explicit_bzero, program_invocation_short_name */
#endif

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "lmrsec.h"
#include "proto.h"
#include "sha256.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define LMRSEC_SYSTEM_SOCKET	"/run/lmrsec/agent.sock"
#define LMRSEC_USER_SOCKET	"/lmrsec/agent.sock"	/* under $XDG_RUNTIME_DIR */
#define LMRSEC_ERROR_TEXT_MAX	256
#define LMRSEC_AGENT_VERSION_MAX 64
#define LMRSEC_CLIENT_NAME_MAX	64
#define LMRSEC_LMR_TYPE_MAX	16		/* DESIGN §2: [A-Za-z0-9_-]{1,16} */
#define LMRSEC_PAYLOAD_MAX	65535
/* Deliveries read while a call waits for its reply are held here; an agent
 * that floods past this is misbehaving and the handle gives up. */
#define LMRSEC_QUEUE_MAX_ITEMS	4096
#define LMRSEC_QUEUE_MAX_BYTES	(32u * 1024 * 1024)
/* Retry interval while the agent's listen backlog is full. */
#define LMRSEC_CONNECT_RETRY_MS	10
/* lmrsec_send() leaves this share of its timeout for the answer to travel
 * back, so the agent's own "not registered" or timeout reaches us first. */
#define LMRSEC_SEND_MARGIN_MAX_MS 1000


/* A deadline in CLOCK_MONOTONIC milliseconds; DEADLINE_NEVER waits forever. */
#define DEADLINE_NEVER		INT64_MAX

/* One entry of a queue: a payload (delivery queue), an event (event
 * queue), or a notice in its place in the stream (an ERROR the agent sent
 * unasked, or a frame we could not parse). */
struct queued {
	struct queued *next;
	struct lmrsec_delivery *delivery;	/* NULL for a notice */
	struct lmrsec_event *event;		/* NULL for a notice */
	struct lmrsec_trace *trace;		/* NULL for a notice */
	int error;				/* negative errno of a notice */
	char text[LMRSEC_ERROR_TEXT_MAX];
};

struct queue {
	struct queued *head, *tail;
	size_t items;
	size_t bytes;		/* payload (trace text) bytes held */
};

enum send_state {
	SEND_STATE_IDLE,
	SEND_STATE_WAITING,
	SEND_STATE_DONE,
};

typedef int (*reply_parser)(struct lmrsec *c, uint8_t type,
			    struct frame_reader *r, void *ctx);

struct lmrsec {
	int fd;
	int broken;		/* sticky negative errno, 0 while the stream is sound */
	uint32_t last_id;
	int version;
	char agent_version[LMRSEC_AGENT_VERSION_MAX];
	char last_error[LMRSEC_ERROR_TEXT_MAX];
	char last_notice[LMRSEC_ERROR_TEXT_MAX];	/* of the last ERROR with id 0 */

	struct frame_decoder in;
	struct frame_writer out;

	struct queue deliveries;	/* and notices */
	struct queue events;
	struct queue traces;
	uint64_t traces_lost;	/* not queued (queue full) since the last one */

	/* The request a blocking call is waiting for. */
	uint32_t wait_id;
	reply_parser wait_parse;	/* NULL: waiting for nothing */
	void *wait_ctx;
	int wait_result;
	bool wait_done;

	/* ACKs written by lmrsec_ack_start() whose answer has not come. */
	uint32_t acks_out[LMRSEC_ACKS_MAX];
	unsigned int acks_count;
	int acks_error;		/* the first failure among them, until finish() */
	char acks_error_text[LMRSEC_ERROR_TEXT_MAX];

	/* The outstanding lmrsec_send_start(), if any. */
	enum send_state send_state;
	uint32_t send_id;
	int send_error;
	struct lmrsec_send_result send_result;
};

/* ---------- time ---------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(int timeout_ms)
{
	if (timeout_ms < 0)
		return DEADLINE_NEVER;

	return now_ms() + timeout_ms;
}

/* Milliseconds left for poll(): -1 forever, 0 when the deadline has passed. */
static int deadline_left(int64_t deadline)
{
	int64_t left;

	if (deadline == DEADLINE_NEVER)
		return -1;

	left = deadline - now_ms();
	if (left <= 0)
		return 0;

	return left > INT_MAX ? INT_MAX : (int) left;
}

/* ---------- small helpers ---------- */

static void wipe_free(void *p, size_t n)
{
	if (!p)
		return;

	explicit_bzero(p, n);
	free(p);
}

/* Marks the stream lost.  The agent often says why just before it closes
 * ("taken over by another consumer"): that becomes the last error. */
static int fail(struct lmrsec *c, int err)
{
	if (c->broken)
		return err;

	c->broken = err;
	if (err == -ECONNRESET && c->last_notice[0])
		memcpy(c->last_error, c->last_notice, sizeof(c->last_error));

	return err;
}

/* A socket errno as this library reports it: whatever way the kernel says
 * the peer is gone is -ECONNRESET (-ENOTCONN means "not registered"). */
static int stream_error(int err)
{
	if (err == EPIPE || err == ENOTCONN)
		return -ECONNRESET;

	return -err;
}

/* Copies a wire string into a fixed buffer, truncating; an embedded NUL
 * would make the C string say less than the agent sent, so it is refused. */
static int copy_text(char *dst, size_t size, const uint8_t *v, uint32_t len)
{
	size_t n = len < size - 1 ? len : size - 1;

	if (memchr(v, '\0', len))
		return -EPROTO;

	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

/* The caller has refused embedded NULs already (span_has_nul). */
static char *dup_text(const uint8_t *v, uint32_t len)
{
	char *s = malloc((size_t) len + 1);

	if (!s)
		return NULL;

	if (len)
		memcpy(s, v, len);
	s[len] = '\0';
	return s;
}

int lmrsec_lmr_type_valid(const char *type)
{
	size_t n, i;

	if (!type)
		return 0;

	n = strlen(type);
	if (n == 0 || n > LMRSEC_LMR_TYPE_MAX)
		return 0;

	for (i = 0; i < n; i++) {
		char ch = type[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return 0;
	}

	return 1;
}

/* Calls take() for every field of a body; a truncated field is -EPROTO. */
static int fields_each(struct frame_reader *r,
		       int (*take)(void *ctx, uint8_t tag, const uint8_t *v,
				   uint32_t len),
		       void *ctx)
{
	const uint8_t *v;
	uint32_t len;
	uint8_t tag;
	int k, e;

	while ((k = frame_reader_field(r, &tag, &v, &len)) == 1) {
		e = take(ctx, tag, v, len);
		if (e < 0)
			return e;
	}

	return k < 0 ? -EPROTO : 0;
}

static int take_u32(const uint8_t *v, uint32_t len, uint32_t *out)
{
	return frame_value_u32(v, len, out) < 0 ? -EPROTO : 0;
}

static int take_u64(const uint8_t *v, uint32_t len, uint64_t *out)
{
	return frame_value_u64(v, len, out) < 0 ? -EPROTO : 0;
}

/* ---------- the delivery queue ---------- */

void lmrsec_delivery_free(struct lmrsec_delivery *d)
{
	if (!d)
		return;

	wipe_free(d->payload, d->payload_len);
	free(d->lmr_type);
	free(d->kmf_uri);
	free(d->mc_service_id);
	free(d->sender);
	explicit_bzero(d, sizeof(*d));
	free(d);
}

void lmrsec_event_free(struct lmrsec_event *e)
{
	free(e);
}

void lmrsec_trace_free(struct lmrsec_trace *t)
{
	if (!t)
		return;
	free(t->text);
	free(t);
}

static size_t queued_bytes(const struct queued *q)
{
	if (q->delivery)
		return q->delivery->payload_len;
	if (q->trace)
		return strlen(q->trace->text);
	return 0;
}

/* Takes d or ev (or neither, for a notice) on success only. */
static int queue_push(struct queue *qu, struct lmrsec_delivery *d,
		      struct lmrsec_event *ev, int error, const char *text)
{
	size_t bytes = d ? d->payload_len : 0;
	struct queued *q;

	if (qu->items >= LMRSEC_QUEUE_MAX_ITEMS ||
	    bytes > LMRSEC_QUEUE_MAX_BYTES - qu->bytes)
		return -ENOBUFS;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;

	q->delivery = d;
	q->event = ev;
	q->error = error;
	if (text)
		snprintf(q->text, sizeof(q->text), "%s", text);

	if (qu->tail)
		qu->tail->next = q;
	else
		qu->head = q;
	qu->tail = q;
	qu->items++;
	qu->bytes += bytes;
	return 0;
}

static struct queued *queue_pop(struct queue *qu)
{
	struct queued *q = qu->head;

	if (!q)
		return NULL;

	qu->head = q->next;
	if (!qu->head)
		qu->tail = NULL;
	qu->items--;
	qu->bytes -= queued_bytes(q);
	return q;
}

static void queue_clear(struct queue *qu)
{
	struct queued *q;

	while ((q = queue_pop(qu))) {
		lmrsec_delivery_free(q->delivery);
		lmrsec_event_free(q->event);
		lmrsec_trace_free(q->trace);
		free(q);
	}
}

/* ---------- parsing agent frames ---------- */

struct error_fields {
	uint32_t code;
	char text[LMRSEC_ERROR_TEXT_MAX];
};

static int error_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct error_fields *e = ctx;

	switch (tag) {
	case PROTO_TAG_ERROR_CODE:
		return take_u32(v, len, &e->code);
	case PROTO_TAG_ERROR_TEXT:
		return copy_text(e->text, sizeof(e->text), v, len);
	default:
		return 0;	/* unknown tags are ignored */
	}
}

/* An ERROR frame as the negative errno it carries; its text becomes the
 * handle's last error.  A code that is no errno is a malformed reply. */
static int parse_error(struct lmrsec *c, struct frame_reader *r)
{
	struct error_fields e = { 0 };
	int k;

	k = fields_each(r, error_take, &e);
	if (k < 0)
		return k;

	if (e.code == 0 || e.code > 4095)
		return -EPROTO;

	snprintf(c->last_error, sizeof(c->last_error), "%s", e.text);
	return -(int) e.code;
}

/* The common head of every reply parser: ERROR becomes its errno, any
 * other type than the one expected is a malformed reply. */
static int reply_check(struct lmrsec *c, uint8_t type, uint8_t expected,
		       struct frame_reader *r)
{
	if (type == PROTO_MSG_ERROR)
		return parse_error(c, r);

	if (type != expected)
		return -EPROTO;

	return 0;
}

static int ignore_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	(void) ctx;
	(void) tag;
	(void) v;
	(void) len;
	return 0;
}

static int parse_ok(struct lmrsec *c, uint8_t type, struct frame_reader *r,
		    void *ctx)
{
	int e = reply_check(c, type, PROTO_MSG_OK, r);

	(void) ctx;
	if (e < 0)
		return e;

	return fields_each(r, ignore_take, NULL);
}

struct hello_fields {
	bool has_version;
	uint32_t version;
	char agent_version[LMRSEC_AGENT_VERSION_MAX];
};

static int hello_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct hello_fields *h = ctx;

	switch (tag) {
	case PROTO_TAG_VERSION:
		h->has_version = true;
		return take_u32(v, len, &h->version);
	case PROTO_TAG_AGENT_VERSION:
		return copy_text(h->agent_version, sizeof(h->agent_version), v, len);
	default:
		return 0;
	}
}

static int parse_hello_ok(struct lmrsec *c, uint8_t type,
			  struct frame_reader *r, void *ctx)
{
	struct hello_fields h = { 0 };
	int e;

	(void) ctx;
	e = reply_check(c, type, PROTO_MSG_HELLO_OK, r);
	if (e < 0)
		return e;

	e = fields_each(r, hello_take, &h);
	if (e < 0)
		return e;

	if (!h.has_version)
		return -EPROTO;

	/* The agent must pick from what we offered. */
	if (h.version < PROTO_VERSION_MIN || h.version > PROTO_VERSION_MAX)
		return -EPROTONOSUPPORT;

	c->version = (int) h.version;
	memcpy(c->agent_version, h.agent_version, sizeof(c->agent_version));
	return 0;
}

/* Appends one consumer's LMR type to the comma separated list. */
static int status_add_consumer(struct lmrsec_status *st, const uint8_t *v,
			       uint32_t len)
{
	size_t used = strlen(st->consumers);
	char type[LMRSEC_LMR_TYPE_MAX * 4 + 1];
	int e;

	e = copy_text(type, sizeof(type), v, len);
	if (e < 0)
		return e;

	snprintf(st->consumers + used, sizeof(st->consumers) - used, "%s%s",
		 used ? "," : "", type);
	return 0;
}

static int status_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct lmrsec_status *st = ctx;

	switch (tag) {
	case PROTO_TAG_REG_STATE:
		return copy_text(st->reg_state, sizeof(st->reg_state), v, len);
	case PROTO_TAG_REG_AOR:
		return copy_text(st->aor, sizeof(st->aor), v, len);
	case PROTO_TAG_REG_REGISTRAR:
		return copy_text(st->registrar, sizeof(st->registrar), v, len);
	case PROTO_TAG_REG_TRANSPORT:
		return copy_text(st->transport, sizeof(st->transport), v, len);
	case PROTO_TAG_REG_EXPIRES_IN:
		return take_u32(v, len, &st->expires_in);
	case PROTO_TAG_REG_NEXT_RETRY:
		return take_u32(v, len, &st->next_retry);
	case PROTO_TAG_REG_LAST_STATUS:
		return take_u32(v, len, &st->last_status);
	case PROTO_TAG_REG_LAST_REASON:
		return copy_text(st->last_reason, sizeof(st->last_reason), v, len);
	case PROTO_TAG_SPOOL_MESSAGES:
		return take_u64(v, len, &st->spool_messages);
	case PROTO_TAG_SPOOL_BYTES:
		return take_u64(v, len, &st->spool_bytes);
	case PROTO_TAG_CONSUMER:
		return status_add_consumer(st, v, len);
	case PROTO_TAG_COUNT_RECEIVED:
		return take_u64(v, len, &st->received);
	case PROTO_TAG_COUNT_DELIVERED:
		return take_u64(v, len, &st->delivered);
	case PROTO_TAG_COUNT_ACKED:
		return take_u64(v, len, &st->acked);
	case PROTO_TAG_COUNT_REJECTED:
		return take_u64(v, len, &st->rejected);
	case PROTO_TAG_COUNT_SENT:
		return take_u64(v, len, &st->sent);
	case PROTO_TAG_COUNT_EXPIRED:
		return take_u64(v, len, &st->expired);
	default:
		return 0;
	}
}

static int parse_status_reply(struct lmrsec *c, uint8_t type,
			      struct frame_reader *r, void *ctx)
{
	struct lmrsec_status *st = ctx;
	int e;

	e = reply_check(c, type, PROTO_MSG_STATUS_REPLY, r);
	if (e < 0)
		return e;

	memset(st, 0, sizeof(*st));
	e = fields_each(r, status_take, st);
	if (e < 0)
		return e;

	return st->reg_state[0] ? 0 : -EPROTO;
}

struct send_fields {
	bool has_status;
	struct lmrsec_send_result *result;
};

static int send_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct send_fields *s = ctx;
	uint32_t status;
	int e;

	switch (tag) {
	case PROTO_TAG_SIP_STATUS:
		e = take_u32(v, len, &status);
		if (e < 0)
			return e;

		s->has_status = true;
		s->result->sip_status = status;
		return 0;
	case PROTO_TAG_SIP_REASON:
		return copy_text(s->result->sip_reason,
				 sizeof(s->result->sip_reason), v, len);
	default:
		return 0;
	}
}

static int parse_send_result(struct lmrsec *c, uint8_t type,
			     struct frame_reader *r,
			     struct lmrsec_send_result *result)
{
	struct send_fields s = { .result = result };
	int e;

	e = reply_check(c, type, PROTO_MSG_SEND_RESULT, r);
	if (e < 0)
		return e;

	memset(result, 0, sizeof(*result));
	e = fields_each(r, send_take, &s);
	if (e < 0)
		return e;

	/* SIP final answers are 200..699. */
	if (!s.has_status || result->sip_status < 200 || result->sip_status > 699)
		return -EPROTO;

	return 0;
}

/* A field value kept as a slice of the frame body until the whole DELIVERY
 * has been checked; nothing is allocated for a frame that turns out bad. */
struct span {
	const uint8_t *v;
	uint32_t len;
	bool present;
};

struct delivery_fields {
	bool has_id;
	uint64_t id;
	uint64_t received_us;
	struct span lmr_type, kmf_uri, mc_service_id, sender, fingerprint, payload;
};

static int span_take(struct span *s, const uint8_t *v, uint32_t len)
{
	s->v = v;
	s->len = len;
	s->present = true;
	return 0;
}

static int delivery_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct delivery_fields *f = ctx;

	switch (tag) {
	case PROTO_TAG_MESSAGE_ID:
		f->has_id = true;
		return take_u64(v, len, &f->id);
	case PROTO_TAG_RECEIVED_US:
		return take_u64(v, len, &f->received_us);
	case PROTO_TAG_LMR_TYPE:
		return span_take(&f->lmr_type, v, len);
	case PROTO_TAG_KMF_URI:
		return span_take(&f->kmf_uri, v, len);
	case PROTO_TAG_MC_SERVICE_ID:
		return span_take(&f->mc_service_id, v, len);
	case PROTO_TAG_SENDER:
		return span_take(&f->sender, v, len);
	case PROTO_TAG_FINGERPRINT:
		return span_take(&f->fingerprint, v, len);
	case PROTO_TAG_PAYLOAD:
		return span_take(&f->payload, v, len);
	default:
		return 0;
	}
}

/* An absent optional string is "", so callers never meet NULL. */
static char *span_text(const struct span *s)
{
	return dup_text(s->v, s->present ? s->len : 0);
}

static bool span_has_nul(const struct span *s)
{
	return s->present && s->len && memchr(s->v, '\0', s->len);
}

static bool delivery_complete(const struct delivery_fields *f)
{
	if (!f->has_id || !f->lmr_type.present || f->lmr_type.len == 0 ||
	    !f->payload.present || f->fingerprint.len != 32)
		return false;

	return !span_has_nul(&f->lmr_type) && !span_has_nul(&f->kmf_uri) &&
	       !span_has_nul(&f->mc_service_id) && !span_has_nul(&f->sender);
}

static int delivery_build(const struct delivery_fields *f,
			  struct lmrsec_delivery **out)
{
	struct lmrsec_delivery *d;

	if (!delivery_complete(f))
		return -EPROTO;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;

	d->id = f->id;
	d->received_us = f->received_us;
	memcpy(d->fingerprint, f->fingerprint.v, 32);
	d->payload_len = f->payload.len;
	d->payload = malloc(f->payload.len ? f->payload.len : 1);
	d->lmr_type = span_text(&f->lmr_type);
	d->kmf_uri = span_text(&f->kmf_uri);
	d->mc_service_id = span_text(&f->mc_service_id);
	d->sender = span_text(&f->sender);
	if (!d->payload || !d->lmr_type || !d->kmf_uri || !d->mc_service_id ||
	    !d->sender) {
		lmrsec_delivery_free(d);
		return -ENOMEM;
	}

	if (f->payload.len)
		memcpy(d->payload, f->payload.v, f->payload.len);
	*out = d;
	return 0;
}

static int queue_delivery(struct lmrsec *c, struct frame_reader *r)
{
	struct delivery_fields f;
	struct lmrsec_delivery *d;
	int e;

	memset(&f, 0, sizeof(f));
	e = fields_each(r, delivery_take, &f);
	if (e == 0)
		e = delivery_build(&f, &d);

	/* A bad DELIVERY is reported in its place in the stream. */
	if (e == -EPROTO)
		return queue_push(&c->deliveries, NULL, NULL, -EPROTO,
				  "malformed delivery from the agent");

	if (e < 0)
		return e;

	e = queue_push(&c->deliveries, d, NULL, 0, NULL);
	if (e < 0)
		lmrsec_delivery_free(d);

	return e;
}

static int queue_notice(struct lmrsec *c, struct frame_reader *r)
{
	int e = parse_error(c, r);

	if (e == -EPROTO)
		return queue_push(&c->deliveries, NULL, NULL, -EPROTO,
				  "malformed error notice from the agent");

	memcpy(c->last_notice, c->last_error, sizeof(c->last_notice));
	return queue_push(&c->deliveries, NULL, NULL, e, c->last_error);
}

/* Event kinds by the agent's names; a name not here is LMRSEC_EVENT_OTHER. */
static const struct {
	const char *name;
	enum lmrsec_event_kind kind;
} event_kinds[] = {
	{ "registration", LMRSEC_EVENT_REGISTRATION },
	{ "received", LMRSEC_EVENT_RECEIVED },
	{ "delivered", LMRSEC_EVENT_DELIVERED },
	{ "acked", LMRSEC_EVENT_ACKED },
	{ "nacked", LMRSEC_EVENT_NACKED },
	{ "rejected", LMRSEC_EVENT_REJECTED },
	{ "expired", LMRSEC_EVENT_EXPIRED },
};

struct event_fields {
	struct lmrsec_event *ev;
	bool has_kind;
};

static int event_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct event_fields *f = ctx;
	struct lmrsec_event *ev = f->ev;

	switch (tag) {
	case PROTO_TAG_EVENT_KIND:
		f->has_kind = true;
		return copy_text(ev->name, sizeof(ev->name), v, len);
	case PROTO_TAG_EVENT_TIME_US:
		return take_u64(v, len, &ev->time_us);
	case PROTO_TAG_MESSAGE_ID:
		return take_u64(v, len, &ev->id);
	case PROTO_TAG_LMR_TYPE:
		return copy_text(ev->lmr_type, sizeof(ev->lmr_type), v, len);
	case PROTO_TAG_PAYLOAD_SIZE:
		return take_u64(v, len, &ev->size);
	case PROTO_TAG_FINGERPRINT:
		if (len != sizeof(ev->fingerprint))
			return -EPROTO;
		memcpy(ev->fingerprint, v, len);
		ev->has_fingerprint = 1;
		return 0;
	case PROTO_TAG_SIP_STATUS:
		return take_u32(v, len, &ev->sip_status);
	case PROTO_TAG_SIP_REASON:
		return copy_text(ev->reason, sizeof(ev->reason), v, len);
	case PROTO_TAG_REG_STATE:
		return copy_text(ev->reg_state, sizeof(ev->reg_state), v, len);
	default:
		return 0;
	}
}

static int event_parse(struct frame_reader *r, struct lmrsec_event *ev)
{
	struct event_fields f = { .ev = ev };
	size_t i;
	int e;

	e = fields_each(r, event_take, &f);
	if (e < 0)
		return e;

	if (!f.has_kind || !ev->name[0])
		return -EPROTO;

	for (i = 0; i < sizeof(event_kinds) / sizeof(event_kinds[0]); i++)
		if (strcmp(ev->name, event_kinds[i].name) == 0)
			ev->kind = event_kinds[i].kind;

	return 0;
}

static int queue_event(struct lmrsec *c, struct frame_reader *r)
{
	struct lmrsec_event *ev = calloc(1, sizeof(*ev));
	int e;

	if (!ev)
		return -ENOMEM;

	e = event_parse(r, ev);
	if (e == 0)
		e = queue_push(&c->events, NULL, ev, 0, NULL);
	if (e == 0)
		return 0;

	lmrsec_event_free(ev);
	/* A bad EVENT is reported in its place in the stream. */
	if (e == -EPROTO)
		return queue_push(&c->events, NULL, NULL, -EPROTO,
				  "malformed event from the agent");
	return e;
}

/* ---------- the trace queue ---------- */

struct trace_fields {
	struct lmrsec_trace *t;
	bool has_text;
};

static int trace_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct trace_fields *f = ctx;
	struct lmrsec_trace *t = f->t;
	char direction[8];
	int e;

	switch (tag) {
	case PROTO_TAG_TRACE_DIRECTION:
		e = copy_text(direction, sizeof(direction), v, len);
		t->outgoing = strcmp(direction, "out") == 0;
		return e;
	case PROTO_TAG_TRACE_TRANSPORT:
		return copy_text(t->transport, sizeof(t->transport), v, len);
	case PROTO_TAG_TRACE_PEER:
		return copy_text(t->peer, sizeof(t->peer), v, len);
	case PROTO_TAG_EVENT_TIME_US:
		return take_u64(v, len, &t->time_us);
	case PROTO_TAG_TRACE_SIZE:
		return take_u64(v, len, &t->size);
	case PROTO_TAG_TRACE_DROPPED:
		return take_u64(v, len, &t->dropped);
	case PROTO_TAG_TRACE_TEXT:
		if (f->has_text || memchr(v, '\0', len))
			return -EPROTO;
		t->text = dup_text(v, len);
		f->has_text = true;
		return t->text ? 0 : -ENOMEM;
	default:
		return 0;
	}
}

/* A trace event the caller has no room for is dropped and counted into
 * the next one's dropped, as the agent does: tracing never breaks the
 * connection. */
static int queue_trace(struct lmrsec *c, struct frame_reader *r)
{
	struct lmrsec_trace *t = calloc(1, sizeof(*t));
	struct trace_fields f = { .t = t };
	int e;

	if (!t)
		return -ENOMEM;

	e = fields_each(r, trace_take, &f);
	if (e == 0 && !f.has_text)
		e = -EPROTO;
	if (e == 0 && strlen(t->text) > LMRSEC_QUEUE_MAX_BYTES - c->traces.bytes)
		e = -ENOBUFS;
	if (e == 0) {
		t->dropped += c->traces_lost;
		e = queue_push(&c->traces, NULL, NULL, 0, NULL);
	}
	if (e == 0) {
		c->traces.tail->trace = t;
		c->traces.bytes += strlen(t->text);
		c->traces_lost = 0;
		return 0;
	}

	lmrsec_trace_free(t);
	if (e == -ENOBUFS) {
		c->traces_lost++;
		return 0;
	}
	/* A bad trace event is reported in its place in the stream. */
	if (e == -EPROTO)
		return queue_push(&c->traces, NULL, NULL, -EPROTO,
				  "malformed trace event from the agent");
	return e;
}

/* The answer to a pipelined ACK (lmrsec_ack_start): true when id was one. */
static bool ack_settle(struct lmrsec *c, uint32_t id, uint8_t type,
		       struct frame_reader *r)
{
	int e;

	for (unsigned int i = 0; i < c->acks_count; i++) {
		if (c->acks_out[i] != id)
			continue;
		c->acks_out[i] = c->acks_out[--c->acks_count];
		e = parse_ok(c, type, r, NULL);
		if (e < 0 && c->acks_error == 0) {
			c->acks_error = e;
			snprintf(c->acks_error_text, sizeof(c->acks_error_text), "%s",
				 c->last_error);
		}
		return true;
	}
	return false;
}

/* Frames with request id 0 are not replies: deliveries and notices. */
static int dispatch_unsolicited(struct lmrsec *c, uint8_t type,
				struct frame_reader *r)
{
	switch (type) {
	case PROTO_MSG_DELIVERY:
		return queue_delivery(c, r);
	case PROTO_MSG_ERROR:
		return queue_notice(c, r);
	case PROTO_MSG_EVENT:
		return queue_event(c, r);
	case PROTO_MSG_TRACE_EVENT:
		return queue_trace(c, r);
	default:
		return 0;	/* a kind of notice this version does not know */
	}
}

static int dispatch(struct lmrsec *c, const uint8_t *body, size_t len)
{
	struct frame_reader r;
	uint32_t id;
	uint8_t type;

	if (frame_reader_init(&r, body, len, &type, &id) < 0)
		return -EPROTO;

	if (id == 0)
		return dispatch_unsolicited(c, type, &r);

	if (c->wait_parse && id == c->wait_id) {
		c->wait_result = c->wait_parse(c, type, &r, c->wait_ctx);
		c->wait_parse = NULL;
		c->wait_done = true;
		return 0;
	}

	if (ack_settle(c, id, type, &r))
		return 0;

	if (c->send_state == SEND_STATE_WAITING && id == c->send_id) {
		c->send_error = parse_send_result(c, type, &r, &c->send_result);
		c->send_state = SEND_STATE_DONE;
		return 0;
	}

	return 0;	/* the late reply of a request given up on */
}

/* ---------- socket I/O ---------- */

/* Dispatches every complete frame already read. */
static int drain(struct lmrsec *c)
{
	const uint8_t *body;
	size_t len;
	int k, e;

	while ((k = frame_decoder_next(&c->in, &body, &len)) == 1) {
		e = dispatch(c, body, len);
		if (e < 0)
			return fail(c, e);
	}

	if (k < 0)
		return fail(c, -EPROTO);

	/* Taken frames may hold key payloads: wipe them now, not at the
	 * next read, which could be minutes away. */
	frame_decoder_release(&c->in);

	return 0;
}

/* One read into the decoder, then dispatch.  1: bytes were read; 0:
 * nothing there yet (a spurious wake-up); < 0: the stream is lost. */
static int read_once(struct lmrsec *c)
{
	uint8_t *space;
	size_t avail;
	ssize_t n;
	int e;

	e = frame_decoder_space(&c->in, &space, &avail);
	if (e == FRAME_ERR_NO_MEMORY)
		return fail(c, -ENOMEM);
	if (e < 0)
		return fail(c, -EPROTO);

	n = recv(c->fd, space, avail, 0);
	if (n == 0)
		return fail(c, -ECONNRESET);

	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;

		return fail(c, stream_error(errno));
	}

	frame_decoder_commit(&c->in, (size_t) n);
	e = drain(c);
	return e < 0 ? e : 1;
}

/* The agent may have said why before it closed (a takeover notice, say):
 * take in what it sent before the stream is declared lost. */
static int salvage(struct lmrsec *c, int err)
{
	while (!c->broken && read_once(c) == 1)
		;

	return fail(c, err);
}

/* poll() one fd until an event or the deadline.  1: ready; -ETIMEDOUT;
 * -EINTR only when interruptible, otherwise a signal just retries. */
static int wait_fd(int fd, short events, int64_t deadline, bool interruptible,
		   short *revents)
{
	struct pollfd p = { .fd = fd, .events = events };
	int k;

	for (;;) {
		k = poll(&p, 1, deadline_left(deadline));
		if (k > 0) {
			*revents = p.revents;
			return 1;
		}

		if (k == 0)
			return -ETIMEDOUT;

		if (errno != EINTR)
			return -errno;

		if (interruptible)
			return -EINTR;
	}
}

/* Reads and dispatches until done() holds.  Complete frames already in the
 * decoder are dispatched first, so done() is judged on everything read.
 * Only the long waits (for a delivery, for a send's answer) are
 * interruptible: a short request/reply exchange finishes, or times out. */
static int pump(struct lmrsec *c, int64_t deadline, bool interruptible,
		bool (*done)(const struct lmrsec *c))
{
	short revents;
	int e;

	for (;;) {
		e = drain(c);
		if (e < 0)
			return e;

		if (done(c))
			return 0;

		if (c->broken)
			return c->broken;

		e = wait_fd(c->fd, POLLIN, deadline, interruptible, &revents);
		if (e < 0)
			return e;

		e = read_once(c);
		if (e < 0)
			return e;
	}
}

/* Writes a whole frame.  While the socket is full, what the agent sends
 * meanwhile is read and queued, so neither side can block the other. */
static int write_all(struct lmrsec *c, const uint8_t *p, size_t len,
		     int64_t deadline)
{
	short revents = 0;
	size_t done = 0;
	ssize_t n;
	int e;

	while (done < len) {
		n = send(c->fd, p + done, len - done, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t) n;
			continue;
		}

		if (n < 0 && errno == EINTR)
			continue;

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return salvage(c, stream_error(errno));

		e = wait_fd(c->fd, POLLIN | POLLOUT, deadline, false, &revents);
		if (e < 0) {
			/* Half a frame on the wire: the stream is lost. */
			if (done > 0)
				fail(c, -EPIPE);
			return e;
		}

		if (revents & POLLIN) {
			e = read_once(c);
			if (e < 0)
				return e;
		}
	}

	return 0;
}

/* Starts a request frame with a fresh id; 0 is reserved for notices. */
static uint32_t request_begin(struct lmrsec *c, uint8_t type)
{
	if (++c->last_id == 0)
		c->last_id = 1;

	c->last_error[0] = '\0';
	frame_writer_begin(&c->out, type, c->last_id);
	return c->last_id;
}

/* Sends the frame built in c->out, then wipes it: a SEND carries a key. */
static int request_write(struct lmrsec *c, int64_t deadline)
{
	const uint8_t *frame;
	size_t len;
	int e;

	e = frame_writer_end(&c->out, &frame, &len);
	if (e == 0)
		e = write_all(c, frame, len, deadline);
	else
		e = e == FRAME_ERR_NO_MEMORY ? -ENOMEM : -EINVAL;

	frame_writer_clear(&c->out);
	return e;
}

static bool wait_is_done(const struct lmrsec *c)
{
	return c->wait_done;
}

/* Sends the built request and waits for its reply, which parse() reads. */
static int transact(struct lmrsec *c, uint32_t id, int64_t deadline,
		    reply_parser parse, void *ctx)
{
	int e;

	e = request_write(c, deadline);
	if (e < 0)
		return e;

	c->wait_id = id;
	c->wait_parse = parse;
	c->wait_ctx = ctx;
	c->wait_done = false;

	e = pump(c, deadline, false, wait_is_done);
	c->wait_parse = NULL;	/* a reply coming after a timeout is dropped */
	if (e < 0)
		return e;

	return c->wait_result;
}

/* ---------- connecting ---------- */

int lmrsec_default_path(char *buf, size_t size)
{
	const char *env = getenv(LMRSEC_SOCKET_ENV);
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (!buf || size == 0)
		return -EINVAL;

	if (env && env[0])
		n = snprintf(buf, size, "%s", env);
	else if (xdg && xdg[0] && geteuid() != 0)
		n = snprintf(buf, size, "%s%s", xdg, LMRSEC_USER_SOCKET);
	else
		n = snprintf(buf, size, "%s", LMRSEC_SYSTEM_SOCKET);

	if (n < 0 || (size_t) n >= size)
		return -ENAMETOOLONG;

	return 0;
}

/* The pending result of a non-blocking connect. */
static int connect_wait(int fd, int64_t deadline)
{
	socklen_t len = sizeof(int);
	short revents;
	int err = 0;
	int e;

	e = wait_fd(fd, POLLOUT, deadline, false, &revents);
	if (e < 0)
		return e;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;

	return -err;
}

/* Non-blocking connect bounded by the deadline.  Linux answers EAGAIN
 * (not EINPROGRESS) while a Unix listener's backlog is full: retry. */
static int connect_socket(int fd, const struct sockaddr_un *sa, int64_t deadline)
{
	int left;

	for (;;) {
		if (connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) == 0)
			return 0;

		if (errno == EINPROGRESS)
			return connect_wait(fd, deadline);

		if (errno != EAGAIN)
			return -errno;

		left = deadline_left(deadline);
		if (left == 0)
			return -ETIMEDOUT;

		/* Nothing to wait on but time: poll no fd for a short while. */
		if (left < 0 || left > LMRSEC_CONNECT_RETRY_MS)
			left = LMRSEC_CONNECT_RETRY_MS;
		poll(NULL, 0, left);
	}
}

static const char *client_name(void)
{
#ifdef __GLIBC__
	return program_invocation_short_name;
#else
	return "liblmrsec";
#endif
}

static int hello(struct lmrsec *c, int64_t deadline)
{
	char name[LMRSEC_CLIENT_NAME_MAX + 1];
	uint32_t id;

	snprintf(name, sizeof(name), "%s", client_name());
	id = request_begin(c, PROTO_MSG_HELLO);
	frame_writer_u32(&c->out, PROTO_TAG_VERSION_MIN, PROTO_VERSION_MIN);
	frame_writer_u32(&c->out, PROTO_TAG_VERSION_MAX, PROTO_VERSION_MAX);
	frame_writer_str(&c->out, PROTO_TAG_CLIENT_NAME, name);
	return transact(c, id, deadline, parse_hello_ok, NULL);
}

static struct lmrsec *handle_new(int fd)
{
	struct lmrsec *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;

	c->fd = fd;
	frame_decoder_init(&c->in);
	frame_writer_init(&c->out);
	return c;
}

int lmrsec_connect_timeout(const char *path, int timeout_ms,
			   struct lmrsec **out)
{
	int64_t deadline = deadline_after(timeout_ms);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct lmrsec *c;
	int fd, e;

	if (!out)
		return -EINVAL;

	*out = NULL;
	if (path) {
		if (!path[0])
			return -EINVAL;
		if (strlen(path) >= sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		memcpy(sa.sun_path, path, strlen(path) + 1);
	} else {
		e = lmrsec_default_path(sa.sun_path, sizeof(sa.sun_path));
		if (e < 0)
			return e;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;

	e = connect_socket(fd, &sa, deadline);
	if (e < 0) {
		close(fd);
		return e;
	}

	c = handle_new(fd);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}

	e = hello(c, deadline);
	/* Refused before HELLO_OK (too many connections): the agent said why
	 * in a notice just before it closed, and that is the answer. */
	if (e == -ECONNRESET && c->deliveries.head &&
	    !c->deliveries.head->delivery && c->deliveries.head->error < 0)
		e = c->deliveries.head->error;
	if (e < 0) {
		lmrsec_close(c);
		return e;
	}

	*out = c;
	return 0;
}

int lmrsec_connect(const char *path, struct lmrsec **out)
{
	return lmrsec_connect_timeout(path, LMRSEC_DEFAULT_TIMEOUT_MS, out);
}

int lmrsec_protocol_version(const struct lmrsec *c)
{
	return c ? c->version : -EINVAL;
}

const char *lmrsec_agent_version(const struct lmrsec *c)
{
	return c ? c->agent_version : "";
}

int lmrsec_fd(const struct lmrsec *c)
{
	return c ? c->fd : -EINVAL;
}

void lmrsec_close(struct lmrsec *c)
{
	if (!c)
		return;

	if (c->fd >= 0)
		close(c->fd);
	queue_clear(&c->deliveries);
	queue_clear(&c->events);
	queue_clear(&c->traces);
	frame_decoder_clear(&c->in);
	frame_writer_clear(&c->out);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

/* ---------- consumer role ---------- */

int lmrsec_subscribe(struct lmrsec *c, const char *const *types, int takeover,
		     int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	uint32_t id;
	size_t i;

	if (!c || !types || !types[0])
		return -EINVAL;

	if (c->broken)
		return c->broken;

	for (i = 0; types[i]; i++) {
		if (i == PROTO_MAX_LMR_TYPES)
			return -EINVAL;
		if (strcmp(types[i], PROTO_LMR_TYPE_ALL) != 0 &&
		    !lmrsec_lmr_type_valid(types[i]))
			return -EINVAL;
	}

	id = request_begin(c, PROTO_MSG_SUBSCRIBE);
	for (i = 0; types[i]; i++)
		frame_writer_str(&c->out, PROTO_TAG_LMR_TYPE, types[i]);
	frame_writer_u32(&c->out, PROTO_TAG_TAKEOVER, takeover ? 1 : 0);
	return transact(c, id, deadline, parse_ok, NULL);
}

static bool deliveries_ready(const struct lmrsec *c)
{
	return c->deliveries.head != NULL;
}

/*
 * Waits up to timeout_ms for the next entry of queue (deliveries or events)
 * and takes it off; NULL with *err when none came.  A notice (an unsolicited
 * error from the agent) comes back as an entry without an item: its text
 * becomes the handle's last error.  free() the entry.
 */
static struct queued *next_queued(struct lmrsec *c, struct queue *queue,
				  bool (*ready)(const struct lmrsec *), int timeout_ms,
				  int *err)
{
	struct queued *q;

	if (!queue->head && !c->broken) {
		int e = pump(c, deadline_after(timeout_ms), true, ready);

		if (e < 0 && !queue->head) {
			*err = e;
			return NULL;
		}
	}
	/* Whatever was read before the stream broke is still handed out. */
	q = queue_pop(queue);
	if (!q) {
		*err = c->broken;
		return NULL;
	}
	*err = q->error;
	if (!q->delivery && !q->event && !q->trace)
		snprintf(c->last_error, sizeof(c->last_error), "%s", q->text);
	return q;
}

int lmrsec_next_delivery(struct lmrsec *c, struct lmrsec_delivery **out,
			 int timeout_ms)
{
	struct queued *q;
	int e;

	if (!c || !out)
		return -EINVAL;
	*out = NULL;
	q = next_queued(c, &c->deliveries, deliveries_ready, timeout_ms, &e);
	if (q) {
		*out = q->delivery;
		free(q);
	}
	return e;
}

int lmrsec_pending(const struct lmrsec *c)
{
	if (!c)
		return -EINVAL;

	return c->deliveries.items > INT_MAX ? INT_MAX : (int) c->deliveries.items;
}

/* ---------- monitor role ---------- */

/* A request with no fields whose answer is OK or ERROR. */
static int request_plain(struct lmrsec *c, uint8_t type, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	uint32_t id;

	if (!c)
		return -EINVAL;

	if (c->broken)
		return c->broken;

	id = request_begin(c, type);
	return transact(c, id, deadline, parse_ok, NULL);
}

int lmrsec_monitor(struct lmrsec *c, int timeout_ms)
{
	return request_plain(c, PROTO_MSG_MONITOR, timeout_ms);
}

static bool events_ready(const struct lmrsec *c)
{
	return c->events.head != NULL;
}

int lmrsec_next_event(struct lmrsec *c, struct lmrsec_event **out, int timeout_ms)
{
	struct queued *q;
	int e;

	if (!c || !out)
		return -EINVAL;
	*out = NULL;
	q = next_queued(c, &c->events, events_ready, timeout_ms, &e);
	if (q) {
		*out = q->event;
		free(q);
	}
	return e;
}

int lmrsec_pending_events(const struct lmrsec *c)
{
	if (!c)
		return -EINVAL;

	return c->events.items > INT_MAX ? INT_MAX : (int) c->events.items;
}

/* ---------- operator role: SIP trace and log level ---------- */

int lmrsec_trace(struct lmrsec *c, int timeout_ms)
{
	return request_plain(c, PROTO_MSG_TRACE, timeout_ms);
}

static bool traces_ready(const struct lmrsec *c)
{
	return c->traces.head != NULL;
}

int lmrsec_next_trace(struct lmrsec *c, struct lmrsec_trace **out, int timeout_ms)
{
	struct queued *q;
	int e;

	if (!c || !out)
		return -EINVAL;
	*out = NULL;
	q = next_queued(c, &c->traces, traces_ready, timeout_ms, &e);
	if (q) {
		*out = q->trace;
		free(q);
	}
	return e;
}

static int log_level_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct lmrsec_log_level *out = ctx;

	switch (tag) {
	case PROTO_TAG_LOG_LEVEL:
		return copy_text(out->current, sizeof(out->current), v, len);
	case PROTO_TAG_LOG_LEVEL_PREVIOUS:
		return copy_text(out->previous, sizeof(out->previous), v, len);
	default:
		return 0;
	}
}

static int parse_log_level_reply(struct lmrsec *c, uint8_t type,
				 struct frame_reader *r, void *ctx)
{
	struct lmrsec_log_level *out = ctx;
	int e = reply_check(c, type, PROTO_MSG_LOG_LEVEL_REPLY, r);

	if (e < 0)
		return e;

	e = fields_each(r, log_level_take, out);
	if (e == 0 && !out->current[0])
		e = -EPROTO;
	return e;
}

int lmrsec_log_level(struct lmrsec *c, const char *level, struct lmrsec_log_level *out,
		     int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	uint32_t id;

	if (!c || !out || (level && (!*level || strlen(level) > LMRSEC_LOG_LEVEL_MAX)))
		return -EINVAL;

	if (c->broken)
		return c->broken;

	memset(out, 0, sizeof(*out));
	id = request_begin(c, PROTO_MSG_LOG_LEVEL);
	if (level)
		frame_writer_str(&c->out, PROTO_TAG_LOG_LEVEL, level);
	return transact(c, id, deadline, parse_log_level_reply, out);
}

/* At most this many reads per lmrsec_process(), so an agent that keeps
 * sending cannot hold the caller's loop. */
#define LMRSEC_PROCESS_MAX_READS 64

static int ready_mask(const struct lmrsec *c)
{
	int mask = 0;

	if (c->deliveries.head)
		mask |= LMRSEC_READY_DELIVERY;
	if (c->events.head)
		mask |= LMRSEC_READY_EVENT;
	if (c->send_state == SEND_STATE_DONE)
		mask |= LMRSEC_READY_SEND;
	if (c->traces.head)
		mask |= LMRSEC_READY_TRACE;
	return mask;
}

int lmrsec_process(struct lmrsec *c)
{
	int i, mask;

	if (!c)
		return -EINVAL;

	if (!c->broken && drain(c) == 0)
		for (i = 0; i < LMRSEC_PROCESS_MAX_READS && read_once(c) == 1; i++)
			;

	mask = ready_mask(c);
	return mask ? mask : c->broken;
}

/* Starts an ACK or NACK frame of message_id; returns its request id. */
static uint32_t verdict_begin(struct lmrsec *c, uint8_t type, uint64_t message_id)
{
	uint32_t id = request_begin(c, type);

	frame_writer_u64(&c->out, PROTO_TAG_MESSAGE_ID, message_id);
	return id;
}

static int acknowledge(struct lmrsec *c, uint8_t type, uint64_t message_id,
		       int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	uint32_t id;

	if (!c)
		return -EINVAL;

	if (c->broken)
		return c->broken;

	id = verdict_begin(c, type, message_id);
	return transact(c, id, deadline, parse_ok, NULL);
}

int lmrsec_ack(struct lmrsec *c, uint64_t id, int timeout_ms)
{
	return acknowledge(c, PROTO_MSG_ACK, id, timeout_ms);
}

int lmrsec_nack(struct lmrsec *c, uint64_t id, int timeout_ms)
{
	return acknowledge(c, PROTO_MSG_NACK, id, timeout_ms);
}

static bool acks_have_room(const struct lmrsec *c)
{
	return c->acks_count < LMRSEC_ACKS_MAX;
}

static bool acks_settled(const struct lmrsec *c)
{
	return c->acks_count == 0;
}

int lmrsec_ack_start(struct lmrsec *c, uint64_t id, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	uint32_t rid;
	int e;

	if (!c)
		return -EINVAL;

	if (c->broken)
		return c->broken;

	e = pump(c, deadline, false, acks_have_room);
	if (e < 0)
		return e;

	rid = verdict_begin(c, PROTO_MSG_ACK, id);
	e = request_write(c, deadline);
	if (e < 0)
		return e;

	c->acks_out[c->acks_count++] = rid;
	return 0;
}

int lmrsec_ack_finish(struct lmrsec *c, int timeout_ms)
{
	int e;

	if (!c)
		return -EINVAL;

	e = pump(c, deadline_after(timeout_ms), true, acks_settled);
	if (e < 0)
		return e;

	e = c->acks_error;
	if (e < 0)
		snprintf(c->last_error, sizeof(c->last_error), "%s", c->acks_error_text);
	c->acks_error = 0;
	c->acks_error_text[0] = '\0';
	return e;
}

int lmrsec_delivery_verify(const struct lmrsec_delivery *d)
{
	uint8_t fp[32];
	int e = 0;

	if (!d || (!d->payload && d->payload_len))
		return -EINVAL;

	lmrsec_sha256(d->payload, d->payload_len, fp);
	if (memcmp(fp, d->fingerprint, sizeof(fp)) != 0)
		e = -EBADMSG;

	explicit_bzero(fp, sizeof(fp));
	return e;
}

/* ---------- requester role ---------- */

int lmrsec_status(struct lmrsec *c, struct lmrsec_status *out, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	uint32_t id;

	if (!c || !out)
		return -EINVAL;

	if (c->broken)
		return c->broken;

	id = request_begin(c, PROTO_MSG_STATUS);
	return transact(c, id, deadline, parse_status_reply, out);
}

/* The entries gathered over the pages of one lmrsec_queue(). */
struct list_result {
	struct lmrsec_queue_entry *entries;
	size_t count, cap;
	size_t max;		/* 0: no limit */
	size_t page_count;	/* entries in the last page */
	uint64_t last_id;
	bool more;
};

struct entry_fields {
	bool has_id, has_received, has_size;
	uint64_t id, received_us, size;
	uint32_t in_flight;
	struct span lmr_type, kmf_uri, mc_service_id, sender, fingerprint;
};

static int entry_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct entry_fields *f = ctx;

	switch (tag) {
	case PROTO_TAG_MESSAGE_ID:
		f->has_id = true;
		return take_u64(v, len, &f->id);
	case PROTO_TAG_RECEIVED_US:
		f->has_received = true;
		return take_u64(v, len, &f->received_us);
	case PROTO_TAG_PAYLOAD_SIZE:
		f->has_size = true;
		return take_u64(v, len, &f->size);
	case PROTO_TAG_IN_FLIGHT:
		return take_u32(v, len, &f->in_flight);
	case PROTO_TAG_LMR_TYPE:
		return span_take(&f->lmr_type, v, len);
	case PROTO_TAG_KMF_URI:
		return span_take(&f->kmf_uri, v, len);
	case PROTO_TAG_MC_SERVICE_ID:
		return span_take(&f->mc_service_id, v, len);
	case PROTO_TAG_SENDER:
		return span_take(&f->sender, v, len);
	case PROTO_TAG_FINGERPRINT:
		return span_take(&f->fingerprint, v, len);
	default:
		return 0;
	}
}

static void queue_entry_clear(struct lmrsec_queue_entry *e)
{
	free(e->lmr_type);
	free(e->kmf_uri);
	free(e->mc_service_id);
	free(e->sender);
	memset(e, 0, sizeof(*e));
}

void lmrsec_queue_free(struct lmrsec_queue_entry *entries, size_t count)
{
	size_t i;

	if (!entries)
		return;

	for (i = 0; i < count; i++)
		queue_entry_clear(&entries[i]);
	free(entries);
}

static int entry_build(const struct entry_fields *f, struct lmrsec_queue_entry *e)
{
	if (!f->has_id || !f->lmr_type.present || f->fingerprint.len != 32 ||
	    span_has_nul(&f->lmr_type) || span_has_nul(&f->kmf_uri) ||
	    span_has_nul(&f->mc_service_id) || span_has_nul(&f->sender))
		return -EPROTO;

	memset(e, 0, sizeof(*e));
	e->id = f->id;
	e->received_us = f->received_us;
	e->size = f->size;
	e->in_flight = f->in_flight ? 1 : 0;
	memcpy(e->fingerprint, f->fingerprint.v, 32);
	e->lmr_type = span_text(&f->lmr_type);
	e->kmf_uri = span_text(&f->kmf_uri);
	e->mc_service_id = span_text(&f->mc_service_id);
	e->sender = span_text(&f->sender);
	if (!e->lmr_type || !e->kmf_uri || !e->mc_service_id || !e->sender) {
		queue_entry_clear(e);
		return -ENOMEM;
	}
	return 0;
}

/* One ENTRY: its value is a sequence of fields, read like a body's. */
static int list_add_entry(struct list_result *lr, const uint8_t *v, uint32_t len)
{
	struct frame_reader r = { .p = v, .left = len };
	struct lmrsec_queue_entry *grown;
	struct entry_fields f;
	size_t cap;
	int e;

	memset(&f, 0, sizeof(f));
	e = fields_each(&r, entry_take, &f);
	if (e < 0)
		return e;

	lr->page_count++;
	lr->last_id = f.id;
	if (lr->max && lr->count == lr->max)
		return f.has_id ? 0 : -EPROTO;

	if (lr->count == lr->cap) {
		cap = lr->cap ? 2 * lr->cap : 64;
		grown = realloc(lr->entries, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		lr->entries = grown;
		lr->cap = cap;
	}

	e = entry_build(&f, &lr->entries[lr->count]);
	if (e == 0)
		lr->count++;
	return e;
}

static int list_take(void *ctx, uint8_t tag, const uint8_t *v, uint32_t len)
{
	struct list_result *lr = ctx;
	uint32_t more;
	int e;

	switch (tag) {
	case PROTO_TAG_ENTRY:
		return list_add_entry(lr, v, len);
	case PROTO_TAG_MORE:
		e = take_u32(v, len, &more);
		lr->more = more != 0;
		return e;
	default:
		return 0;
	}
}

static int parse_list(struct lmrsec *c, uint8_t type, struct frame_reader *r,
		      void *ctx)
{
	struct list_result *lr = ctx;
	int e;

	e = reply_check(c, type, PROTO_MSG_LIST, r);
	if (e < 0)
		return e;

	lr->page_count = 0;
	lr->more = false;
	return fields_each(r, list_take, lr);
}

int lmrsec_queue(struct lmrsec *c, uint64_t after_id, size_t max,
		 struct lmrsec_queue_entry **entries, size_t *count,
		 int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	struct list_result lr = { .max = max, .last_id = after_id };
	size_t want;
	uint32_t id;
	int e;

	if (!c || !entries || !count)
		return -EINVAL;

	*entries = NULL;
	*count = 0;
	if (c->broken)
		return c->broken;

	do {
		want = max ? max - lr.count : 0;
		id = request_begin(c, PROTO_MSG_QUEUE);
		if (lr.last_id)
			frame_writer_u64(&c->out, PROTO_TAG_AFTER_ID, lr.last_id);
		if (want && want < PROTO_LIST_MAX_ENTRIES)
			frame_writer_u32(&c->out, PROTO_TAG_LIMIT, (uint32_t) want);
		e = transact(c, id, deadline, parse_list, &lr);
		if (e < 0) {
			lmrsec_queue_free(lr.entries, lr.count);
			return e;
		}
		/* An empty page ends the walk whatever MORE says. */
	} while (lr.more && lr.page_count > 0 && (!max || lr.count < max));

	*entries = lr.entries;
	*count = lr.count;
	return 0;
}

/* Writes a SEND request; agent_ms 0 leaves the timeout to the agent. */
static int send_begin(struct lmrsec *c, const char *lmr_type, const char *to,
		      const void *payload, size_t payload_len,
		      uint32_t agent_ms, int64_t deadline)
{
	uint32_t id;
	int e;

	if (!c || !lmr_type || !payload)
		return -EINVAL;

	if (!lmrsec_lmr_type_valid(lmr_type) || payload_len == 0 ||
	    payload_len > LMRSEC_PAYLOAD_MAX || (to && !to[0]))
		return -EINVAL;

	if (c->broken)
		return c->broken;

	if (c->send_state != SEND_STATE_IDLE)
		return -EALREADY;

	id = request_begin(c, PROTO_MSG_SEND);
	frame_writer_str(&c->out, PROTO_TAG_LMR_TYPE, lmr_type);
	frame_writer_bytes(&c->out, PROTO_TAG_PAYLOAD, payload, payload_len);
	if (to)
		frame_writer_str(&c->out, PROTO_TAG_TO, to);
	if (agent_ms)
		frame_writer_u32(&c->out, PROTO_TAG_TIMEOUT_MS, agent_ms);

	e = request_write(c, deadline);
	if (e < 0)
		return e;

	c->send_id = id;
	c->send_state = SEND_STATE_WAITING;
	return 0;
}

int lmrsec_send_start(struct lmrsec *c, const char *lmr_type, const char *to,
		      const void *payload, size_t payload_len, int timeout_ms)
{
	uint32_t agent_ms = timeout_ms > 0 ? (uint32_t) timeout_ms : 0;

	return send_begin(c, lmr_type, to, payload, payload_len, agent_ms,
			  deadline_after(timeout_ms));
}

static bool send_is_done(const struct lmrsec *c)
{
	return c->send_state == SEND_STATE_DONE;
}

int lmrsec_send_finish(struct lmrsec *c, struct lmrsec_send_result *result,
		       int timeout_ms)
{
	int e;

	if (!c || !result || c->send_state == SEND_STATE_IDLE)
		return -EINVAL;

	e = pump(c, deadline_after(timeout_ms), true, send_is_done);
	if (e < 0)
		return e;

	c->send_state = SEND_STATE_IDLE;
	if (c->send_error < 0)
		return c->send_error;

	*result = c->send_result;
	return 0;
}

int lmrsec_send(struct lmrsec *c, const char *lmr_type, const char *to,
		const void *payload, size_t payload_len,
		struct lmrsec_send_result *result, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	uint32_t agent_ms = 0;
	int margin, e;

	if (!result)
		return -EINVAL;

	if (timeout_ms > 0) {
		margin = timeout_ms / 10;
		if (margin > LMRSEC_SEND_MARGIN_MAX_MS)
			margin = LMRSEC_SEND_MARGIN_MAX_MS;
		agent_ms = (uint32_t) (timeout_ms - margin);
		if (agent_ms == 0)
			agent_ms = 1;
	}

	e = send_begin(c, lmr_type, to, payload, payload_len, agent_ms, deadline);
	if (e < 0)
		return e;

	e = lmrsec_send_finish(c, result, deadline_left(deadline));
	if (e == -ETIMEDOUT || e == -EINTR)
		c->send_state = SEND_STATE_IDLE;	/* drop a late answer */

	return e;
}

/* ---------- error text ---------- */

const char *lmrsec_strerror(int err)
{
	if (err > 0)
		err = -err;

	switch (-err) {
	case 0:
		return "success";
	case ENOENT:
		return "no agent socket at that path (is lmrsec-agent running?)";
	case ECONNREFUSED:
		return "nothing listens on the agent socket (is lmrsec-agent running?)";
	case EACCES:
		return "permission denied on the agent socket";
	case ENAMETOOLONG:
		return "socket path too long";
	case ETIMEDOUT:
		return "timed out waiting for the agent";
	case EPROTONOSUPPORT:
		return "the agent speaks no protocol version this library supports";
	case EBUSY:
		return "another consumer holds that LMR type";
	case EPROTO:
		return "malformed reply from the agent";
	case ECONNRESET:
		return "the agent closed the connection";
	case EPIPE:
		return "connection unusable after a write was cut short";
	case ENOTCONN:
		return "not registered with the MC service server";
	case EINVAL:
		return "invalid argument";
	case EALREADY:
		return "a send is already outstanding on this handle";
	case ENOBUFS:
		return "the agent sent more deliveries than the library holds";
	case EBADMSG:
		return "payload does not match its SHA-256 fingerprint";
	case EUSERS:
		return "the agent has too many connections open; try again later";
	case EINTR:
		return "interrupted by a signal";
	case ENOMEM:
		return "out of memory";
	default:
		return strerror(-err);
	}
}

const char *lmrsec_last_error(const struct lmrsec *c)
{
	return c ? c->last_error : "";
}

/* ---------- SHA-256, for payload fingerprints (sha256.c) ---------- */

void lmrsec_sha256(const void *data, size_t len, uint8_t out[32])
{
	sha256_digest(data, len, out);
}

void lmrsec_fingerprint_hex(const uint8_t fp[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = digits[fp[i] >> 4];
		out[2 * i + 1] = digits[fp[i] & 0x0f];
	}
	out[64] = '\0';
}
