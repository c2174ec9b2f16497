/*
 * server.c — the key-delivery socket (DESIGN §4, docs/protocol.md).
 *
 * One listening AF_UNIX stream socket; each accepted connection is checked
 * (SO_PEERCRED), then speaks length-prefixed frames.  Requests become broker
 * calls; the broker calls back (deliver, lost, send done) to queue frames.
 *
 * Re-entrancy: broker callbacks may run inside any broker_* call.  Inside
 * them this file only queues output and marks state; a connection is torn
 * down (which calls back into the broker) only from an idle source, never
 * from inside a broker call.
 */
#define _GNU_SOURCE		/* accept4, struct ucred, getgrouplist */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#define G_LOG_DOMAIN "lmrsec-server"
#include <glib.h>
#include <glib-unix.h>

#include "broker.h"
#include "frame.h"
#include "proto.h"
#include "request.h"
#include "server.h"
#include "trace.h"

/* Room for a burst of clients connecting at once; the kernel caps it at
 * net.core.somaxconn. */
#define SERVER_LISTEN_BACKLOG		128
#define SERVER_ACCEPT_BURST		32	/* accepts per wake-up, for fairness */
/* Out of file descriptors: the listening socket stays readable, so stop
 * polling it for a while instead of spinning. */
#define SERVER_ACCEPT_PAUSE_MS		100
/* File descriptors kept for the rest of the agent (spool, SIP, logs). */
#define SERVER_FD_RESERVE		64
/* Refused peers are logged, but at most this many lines per window, so a
 * local user cannot flood the journal through us. */
#define SERVER_REFUSAL_LOG_BURST	10
#define SERVER_REFUSAL_LOG_WINDOW_US	(10 * G_USEC_PER_SEC)
#define SERVER_MAX_SENDS		16	/* outstanding per connection */
#define SERVER_CLIENT_NAME_MAX		64	/* kept for log lines */
#define SERVER_DRAIN_TIMEOUT_S		10	/* for a last reply nobody reads */
#define SERVER_FRAME_BUFFER_MAX		(FRAME_HEADER_LEN + FRAME_MAX_LEN)
#define SERVER_DIR_MODE			0750
#define SERVER_SOCKET_MODE		0660
/* With allowed-users / allowed-groups: anyone may reach the socket, and
 * the peer-credential check decides (docs/behaviour.md). */
#define SERVER_DIR_MODE_OPEN		0711
#define SERVER_SOCKET_MODE_OPEN		0666

enum conn_state {
	CONN_STATE_NEW,		/* accepted, waiting for HELLO */
	CONN_STATE_READY,	/* version negotiated */
	CONN_STATE_DRAINING,	/* flushing a last frame, then closes */
	CONN_STATE_DEAD,	/* closed; freed by an idle source */
};

struct out_frame {
	size_t len;
	size_t off;		/* bytes already written */
	uint8_t data[];
};

struct conn {
	struct server *server;
	unsigned serial;	/* names the connection in log lines */
	int fd;
	pid_t pid;
	uid_t uid;
	enum conn_state state;
	GSource *source;
	gpointer fd_tag;
	guint reap_id;
	guint drain_id;
	char client_name[SERVER_CLIENT_NAME_MAX + 1];

	struct frame_decoder in;
	GQueue out;		/* struct out_frame */
	size_t out_bytes;	/* queued and not yet written */

	guint frame_timer;	/* armed while a HELLO or a frame is incomplete */
	bool frame_progress;	/* a frame was completed since it was armed */

	bool monitor;		/* receives EVENT frames */
	bool tracer;		/* receives TRACE_EVENT frames */
	uint64_t trace_dropped;	/* trace events not queued for it since the last one */
	bool subscribed;
	bool subscribing;	/* inside broker_subscribe: hold deliveries */
	bool want_ready;	/* a delivery was refused; tell the broker on drain */
	GQueue sends;		/* struct pending_send */
	GQueue acks;		/* struct pending_ack */
};

struct pending_send {
	struct conn *conn;
	struct broker_send *handle;
	uint32_t request_id;
	bool starting;		/* inside broker_send(): done may come first */
	bool finished;
};

/* An ACK whose deletion waits for the broker's group commit: OK is
 * replied only after it. */
struct pending_ack {
	struct conn *conn;
	struct broker_ack *handle;
	uint32_t request_id;
	uint64_t message_id;
};

struct server {
	struct broker *broker;
	int listen_fd;
	guint listen_id;
	char *path;		/* the socket file we created, NULL if adopted */
	dev_t path_dev;
	ino_t path_ino;
	char *agent_version;
	size_t max_output;
	size_t soft_output;
	unsigned max_connections;
	unsigned frame_timeout_ms;
	bool open_access;	/* socket reachable by all, credentials decide */
	guint accept_pause_id;
	unsigned n_monitors;
	unsigned n_tracers;
	struct server_operator_ops ops;	/* trace switch, log level (main.c) */
	void *ops_ctx;
	bool observing;
	int64_t refusal_window_us;	/* start of the current log window */
	unsigned refusals_logged;	/* in this window */
	unsigned refusals_unlogged;	/* in this window, beyond the burst */
	guint refusal_summary_id;	/* logs the unlogged count at the window end */
	uid_t own_uid;
	uid_t *allowed_uids;
	size_t n_allowed_uids;
	gid_t *allowed_gids;
	size_t n_allowed_gids;
	GQueue conns;		/* struct conn */
	unsigned next_serial;
};

struct conn_source {
	GSource base;
	struct conn *conn;
};

static void conn_io(struct conn *c, GIOCondition revents);

/* ---------- small pure helpers ---------- */

static void fingerprint_hex(const uint8_t fp[SPOOL_FINGERPRINT_LEN],
			    char out[2 * SPOOL_FINGERPRINT_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < SPOOL_FINGERPRINT_LEN; i++) {
		out[2 * i] = hex[fp[i] >> 4];
		out[2 * i + 1] = hex[fp[i] & 0x0f];
	}
	out[2 * SPOOL_FINGERPRINT_LEN] = '\0';
}

/* A client-chosen name is only for log lines: printable ASCII, bounded. */
static void copy_log_name(char *dst, const uint8_t *v, uint32_t len)
{
	uint32_t i;

	if (len > SERVER_CLIENT_NAME_MAX)
		len = SERVER_CLIENT_NAME_MAX;

	for (i = 0; i < len; i++)
		dst[i] = g_ascii_isprint(v[i]) ? (char) v[i] : '?';
	dst[len] = '\0';
}

static uint32_t seconds_until(int64_t when_us, int64_t now_us)
{
	int64_t s;

	if (when_us <= 0 || when_us <= now_us)
		return 0;

	s = (when_us - now_us + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
	return s > UINT32_MAX ? UINT32_MAX : (uint32_t) s;
}

/* ---------- output ---------- */

static void out_frame_free(gpointer data)
{
	struct out_frame *f = data;

	explicit_bzero(f->data, f->len);	/* deliveries carry keys */
	g_free(f);
}

static void conn_update_watch(struct conn *c)
{
	GIOCondition cond = 0;

	switch (c->state) {
	case CONN_STATE_NEW:
	case CONN_STATE_READY:
		cond = G_IO_IN;
		break;
	case CONN_STATE_DRAINING:
		break;
	case CONN_STATE_DEAD:
		return;		/* its source is gone */
	}

	if (c->out_bytes > 0)
		cond |= G_IO_OUT;

	g_source_modify_unix_fd(c->source, c->fd_tag, cond);
}

static gboolean conn_reap(gpointer data);

/* Closes now as far as the peer is concerned; the memory and the broker's
 * view go later, in conn_reap(), outside whatever callback we are in. */
static void conn_close(struct conn *c)
{
	if (c->state == CONN_STATE_DEAD)
		return;

	/* Off the poll set at once: a shut-down socket polls as HUP forever
	 * and would starve the idle source that frees it. */
	c->state = CONN_STATE_DEAD;
	g_source_destroy(c->source);
	shutdown(c->fd, SHUT_RDWR);
	c->reap_id = g_idle_add(conn_reap, c);
}

static gboolean conn_drain_expired(gpointer data)
{
	struct conn *c = data;

	c->drain_id = 0;
	g_debug("connection %u: last reply not read in time", c->serial);
	conn_close(c);
	return G_SOURCE_REMOVE;
}

/* Stops reading and closes once the queued output is written, or after a
 * while if the peer does not read it. */
static void conn_finish(struct conn *c)
{
	if (c->state == CONN_STATE_DEAD || c->state == CONN_STATE_DRAINING)
		return;

	c->state = CONN_STATE_DRAINING;
	if (c->out_bytes == 0) {
		conn_close(c);
		return;
	}
	conn_update_watch(c);
	c->drain_id = g_timeout_add_seconds(SERVER_DRAIN_TIMEOUT_S,
					    conn_drain_expired, c);
}

static void conn_flush(struct conn *c)
{
	struct out_frame *f;
	ssize_t n;

	while (c->state != CONN_STATE_DEAD && (f = g_queue_peek_head(&c->out))) {
		n = send(c->fd, f->data + f->off, f->len - f->off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;

		if (n < 0) {
			g_debug("connection %u: write: %s", c->serial,
				g_strerror(errno));
			conn_close(c);
			return;
		}

		f->off += (size_t) n;
		c->out_bytes -= (size_t) n;
		if (f->off == f->len)
			out_frame_free(g_queue_pop_head(&c->out));
	}

	if (c->state == CONN_STATE_DRAINING && c->out_bytes == 0)
		conn_close(c);
}

/* Queues one frame and tries to write it at once.  A peer whose unread
 * output would pass the bound is closed: its memory must not grow. */
static int conn_queue(struct conn *c, const uint8_t *frame, size_t len)
{
	struct out_frame *f;

	if (c->state == CONN_STATE_DEAD)
		return -ECONNRESET;

	if (c->out_bytes + len > c->server->max_output) {
		g_warning("connection %u (pid %d, uid %u) stopped reading: "
			  "%zu bytes of output queued, closing it", c->serial,
			  (int) c->pid, (unsigned) c->uid, c->out_bytes);
		conn_close(c);
		return -ENOBUFS;
	}

	f = g_malloc(sizeof(*f) + len);
	f->len = len;
	f->off = 0;
	memcpy(f->data, frame, len);
	g_queue_push_tail(&c->out, f);
	c->out_bytes += len;

	conn_flush(c);
	conn_update_watch(c);
	return 0;
}

/* Ends the frame in w, queues it and wipes w. */
static int conn_queue_writer(struct conn *c, struct frame_writer *w)
{
	const uint8_t *frame;
	size_t len;
	int r;

	r = frame_writer_end(w, &frame, &len);
	if (r < 0) {
		g_warning("connection %u: cannot build a reply: %s", c->serial,
			  frame_strerror(r));
		frame_writer_clear(w);
		return r == FRAME_ERR_NO_MEMORY ? -ENOMEM : -EMSGSIZE;
	}

	r = conn_queue(c, frame, len);
	frame_writer_clear(w);
	return r;
}

static void reply_error(struct conn *c, uint32_t request_id, int code,
			const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void reply_error(struct conn *c, uint32_t request_id, int code,
			const char *fmt, ...)
{
	struct frame_writer w;
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_ERROR, request_id);
	frame_writer_u32(&w, PROTO_TAG_ERROR_CODE, (uint32_t) code);
	frame_writer_str(&w, PROTO_TAG_ERROR_TEXT, text);
	conn_queue_writer(c, &w);
	g_free(text);
}

static void reply_ok(struct conn *c, uint32_t request_id)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_OK, request_id);
	conn_queue_writer(c, &w);
}

/* The broker may hold deliveries back for this consumer; let it resume once
 * the output is below the soft limit.  Only from the top of the main loop. */
static void conn_maybe_ready(struct conn *c)
{
	if (!c->want_ready || c->state != CONN_STATE_READY ||
	    c->out_bytes > c->server->soft_output)
		return;

	c->want_ready = false;
	broker_consumer_ready(c->server->broker, c);
}

/* ---------- broker callbacks ---------- */

static void write_delivery(struct frame_writer *w, const struct spool_record *m)
{
	frame_writer_begin(w, PROTO_MSG_DELIVERY, 0);
	frame_writer_u64(w, PROTO_TAG_MESSAGE_ID, (uint64_t) m->id);
	frame_writer_str(w, PROTO_TAG_LMR_TYPE, m->lmr_type ? m->lmr_type : "");
	frame_writer_str(w, PROTO_TAG_KMF_URI, m->kmf_uri ? m->kmf_uri : "");
	if (m->mc_service_id)
		frame_writer_str(w, PROTO_TAG_MC_SERVICE_ID, m->mc_service_id);
	if (m->sender)
		frame_writer_str(w, PROTO_TAG_SENDER, m->sender);
	frame_writer_u64(w, PROTO_TAG_RECEIVED_US,
			 m->received_us > 0 ? (uint64_t) m->received_us : 0);
	frame_writer_bytes(w, PROTO_TAG_FINGERPRINT, m->fingerprint,
			   SPOOL_FINGERPRINT_LEN);
	frame_writer_bytes(w, PROTO_TAG_PAYLOAD, m->payload, m->payload_len);
}

static int conn_deliver(void *consumer, const struct spool_record *msg)
{
	char fp[2 * SPOOL_FINGERPRINT_LEN + 1];
	struct conn *c = consumer;
	struct frame_writer w;
	int r;

	if (c->state != CONN_STATE_READY)
		return -ECONNRESET;

	/* Held back while subscribing (OK goes first) or while the peer is
	 * slow; the broker keeps the message and we call ready later. */
	if (c->subscribing || c->out_bytes > c->server->soft_output) {
		c->want_ready = true;
		return -EAGAIN;
	}

	frame_writer_init(&w);
	write_delivery(&w, msg);
	r = conn_queue_writer(c, &w);
	if (r < 0)
		return r;

	fingerprint_hex(msg->fingerprint, fp);
	g_debug("connection %u: delivered message %" PRId64 " (%s, %zu bytes, "
		"sha256 %s)", c->serial, msg->id, msg->lmr_type,
		msg->payload_len, fp);
	return 0;
}

static void conn_lost(void *consumer, const char *lmr_type)
{
	struct conn *c = consumer;

	if (c->state != CONN_STATE_READY)
		return;

	g_message("consumer on connection %u (pid %d, uid %u) lost LMR type %s "
		  "to a takeover", c->serial, (int) c->pid, (unsigned) c->uid,
		  lmr_type);
	reply_error(c, 0, EBUSY, "taken over by another consumer");
	conn_finish(c);
}

static const char *send_error_text(int err)
{
	switch (err) {
	case -ENOTCONN:
		return "not registered";
	case -ETIMEDOUT:
		return "no final SIP answer in time";
	}
	return g_strerror(-err);
}

static void send_reply(struct conn *c, uint32_t request_id, int err,
		       unsigned sip_status, const char *reason)
{
	struct frame_writer w;

	if (sip_status == 0) {
		if (err >= 0)
			err = -EIO;
		reply_error(c, request_id, -err, "%s",
			    reason ? reason : send_error_text(err));
		return;
	}

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND_RESULT, request_id);
	frame_writer_u32(&w, PROTO_TAG_SIP_STATUS, sip_status);
	frame_writer_str(&w, PROTO_TAG_SIP_REASON, reason ? reason : "");
	conn_queue_writer(c, &w);
}

static void send_done(void *ctx, int err, unsigned sip_status,
		      const char *reason)
{
	struct pending_send *ps = ctx;
	struct conn *c = ps->conn;

	if (c->state == CONN_STATE_READY || c->state == CONN_STATE_DRAINING)
		send_reply(c, ps->request_id, err, sip_status, reason);

	g_debug("connection %u: send %" PRIu32 " done: err %d, SIP %u",
		c->serial, ps->request_id, err, sip_status);
	ps->finished = true;
	if (ps->starting)
		return;		/* handle_send() frees it */

	g_queue_remove(&c->sends, ps);
	g_free(ps);
}

/* ---------- events, for monitors ---------- */

/* Text that may come from the SIP network (reason phrases) is still UTF-8
 * on our wire. */
static void write_text(struct frame_writer *w, uint8_t tag, const char *s)
{
	char *valid;

	if (g_utf8_validate(s, -1, NULL)) {
		frame_writer_str(w, tag, s);
		return;
	}

	valid = g_utf8_make_valid(s, -1);
	frame_writer_str(w, tag, valid);
	g_free(valid);
}

/* Metadata only: the broker never hands payload bytes to observers. */
static void write_event(struct frame_writer *w, const struct broker_event *ev)
{
	frame_writer_begin(w, PROTO_MSG_EVENT, 0);
	frame_writer_str(w, PROTO_TAG_EVENT_KIND, broker_event_name(ev->kind));
	frame_writer_u64(w, PROTO_TAG_EVENT_TIME_US,
			 ev->time_us > 0 ? (uint64_t) ev->time_us : 0);
	if (ev->id > 0)
		frame_writer_u64(w, PROTO_TAG_MESSAGE_ID, (uint64_t) ev->id);
	if (ev->lmr_type)
		write_text(w, PROTO_TAG_LMR_TYPE, ev->lmr_type);
	if (ev->id > 0 || ev->fingerprint)
		frame_writer_u64(w, PROTO_TAG_PAYLOAD_SIZE, ev->size);
	if (ev->fingerprint)
		frame_writer_bytes(w, PROTO_TAG_FINGERPRINT, ev->fingerprint,
				   SPOOL_FINGERPRINT_LEN);
	if (ev->kind == BROKER_EVENT_REGISTRATION)
		frame_writer_str(w, PROTO_TAG_REG_STATE,
				 broker_reg_state_name(ev->reg_state));
	if (ev->sip_status)
		frame_writer_u32(w, PROTO_TAG_SIP_STATUS, ev->sip_status);
	if (ev->reason)
		write_text(w, PROTO_TAG_SIP_REASON, ev->reason);
}

/* The one broker observer: the frame is built once and queued to every
 * monitor.  A monitor that does not read is closed by conn_queue() when
 * its output passes the bound, like any other connection. */
static void server_on_event(void *ctx, const struct broker_event *ev)
{
	struct server *s = ctx;
	struct frame_writer w;
	const uint8_t *frame;
	size_t len;

	if (s->n_monitors == 0)
		return;

	frame_writer_init(&w);
	write_event(&w, ev);
	if (frame_writer_end(&w, &frame, &len) < 0) {
		g_warning("cannot build a %s event frame", broker_event_name(ev->kind));
		frame_writer_clear(&w);
		return;
	}

	for (GList *l = s->conns.head; l; l = l->next) {
		struct conn *c = l->data;

		if (c->monitor && c->state == CONN_STATE_READY)
			conn_queue(c, frame, len);
	}
	frame_writer_clear(&w);
}

/* ---------- requests ---------- */

/* A HELLO that request_decode() accepted: a well-formed one on a
 * connection not negotiated yet. */
static void handle_hello(struct conn *c, uint32_t id,
			 const struct hello_request *req)
{
	struct frame_writer w;
	uint32_t version;

	if (req->version_max < PROTO_VERSION_MIN ||
	    req->version_min > PROTO_VERSION_MAX) {
		g_message("connection %u: client speaks protocol %" PRIu32
			  "..%" PRIu32 ", agent %d..%d: closing", c->serial,
			  req->version_min, req->version_max,
			  PROTO_VERSION_MIN, PROTO_VERSION_MAX);
		reply_error(c, id, EPROTONOSUPPORT,
			    "client protocol versions %" PRIu32 "..%" PRIu32
			    " do not overlap agent versions %d..%d",
			    req->version_min, req->version_max,
			    PROTO_VERSION_MIN, PROTO_VERSION_MAX);
		conn_finish(c);
		return;
	}

	version = MIN(req->version_max, (uint32_t) PROTO_VERSION_MAX);
	copy_log_name(c->client_name, req->client_name, req->client_name_len);
	c->state = CONN_STATE_READY;
	g_debug("connection %u: client \"%s\" speaks protocol %" PRIu32,
		c->serial, c->client_name, version);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_HELLO_OK, id);
	frame_writer_u32(&w, PROTO_TAG_VERSION, version);
	frame_writer_str(&w, PROTO_TAG_AGENT_VERSION, c->server->agent_version);
	conn_queue_writer(c, &w);
}

/* A connection subscribes once: its second SUBSCRIBE is refused whatever
 * its fields say, so this comes before request_decode()'s verdict. */
static bool conn_refuse_subscribe(struct conn *c, uint32_t id)
{
	if (!c->subscribed)
		return false;

	reply_error(c, id, EALREADY, "this connection is already a consumer");
	return true;
}

static void handle_subscribe(struct conn *c, uint32_t id,
			     const struct subscribe_request *req)
{
	const char *holder = NULL;
	GString *list;
	size_t i;
	int r;

	if (conn_refuse_subscribe(c, id))
		return;

	c->subscribing = true;
	r = broker_subscribe(c->server->broker, c, req->type_list, req->takeover,
			     conn_deliver, conn_lost, &holder);
	c->subscribing = false;

	if (r == -EBUSY) {
		reply_error(c, id, EBUSY, "LMR type %s already has a consumer",
			    holder ? holder : "?");
		return;
	}
	if (r < 0) {
		reply_error(c, id, -r, "cannot subscribe: %s", g_strerror(-r));
		return;
	}

	c->subscribed = true;
	list = g_string_new(NULL);
	for (i = 0; i < req->n_types; i++)
		g_string_append_printf(list, "%s%s", i ? "," : "", req->types[i]);
	g_message("consumer on connection %u (pid %d, uid %u, \"%s\") takes %s%s",
		  c->serial, (int) c->pid, (unsigned) c->uid, c->client_name,
		  list->str, req->takeover ? " (takeover)" : "");
	g_string_free(list, TRUE);
	reply_ok(c, id);
	conn_maybe_ready(c);
}

/* The broker committed (or failed to commit) an ACK's deletion. */
static void ack_done(void *ctx, int err)
{
	struct pending_ack *pa = ctx;
	struct conn *c = pa->conn;

	if (c->state == CONN_STATE_READY || c->state == CONN_STATE_DRAINING) {
		if (err < 0)
			reply_error(c, pa->request_id, -err,
				    "cannot remove message %" PRIu64 ": %s",
				    pa->message_id, g_strerror(-err));
		else
			reply_ok(c, pa->request_id);
	}

	g_debug("connection %u: acked message %" PRIu64 ": err %d", c->serial,
		pa->message_id, err);
	g_queue_remove(&c->acks, pa);
	g_free(pa);
}

/* 0 with the reply to come from ack_done, or a negative errno. */
static int ack_start(struct conn *c, uint32_t id, uint64_t msg_id)
{
	struct pending_ack *pa = g_new0(struct pending_ack, 1);
	int r;

	pa->conn = c;
	pa->request_id = id;
	pa->message_id = msg_id;
	r = broker_ack(c->server->broker, c, (int64_t) msg_id, ack_done, pa,
		       &pa->handle);
	if (r < 0) {
		g_free(pa);
		return r;
	}

	g_queue_push_tail(&c->acks, pa);
	return 0;
}

static void handle_ack(struct conn *c, uint32_t id, bool ack,
		       const struct ack_request *req)
{
	uint64_t msg_id = req->message_id;
	int r;

	if (!c->subscribed || msg_id > INT64_MAX) {
		r = -ENOENT;
	} else if (ack) {
		r = ack_start(c, id, msg_id);
		if (r == 0)
			return;		/* confirmed after the commit */
	} else {
		r = broker_nack(c->server->broker, c, (int64_t) msg_id);
	}

	if (r == -ENOENT) {
		reply_error(c, id, ENOENT, "message %" PRIu64
			    " is not in flight to this connection", msg_id);
		return;
	}
	if (r < 0) {
		reply_error(c, id, -r, "%s", g_strerror(-r));
		return;
	}

	g_debug("connection %u: nacked message %" PRIu64, c->serial, msg_id);
	reply_ok(c, id);
}

static void write_status(struct frame_writer *w, uint32_t id,
			 const struct broker_status *st, int64_t now_us)
{
	const struct broker_registration *reg = &st->reg;
	size_t i;

	frame_writer_begin(w, PROTO_MSG_STATUS_REPLY, id);
	frame_writer_str(w, PROTO_TAG_REG_STATE, broker_reg_state_name(reg->state));
	if (reg->aor)
		frame_writer_str(w, PROTO_TAG_REG_AOR, reg->aor);
	if (reg->registrar)
		frame_writer_str(w, PROTO_TAG_REG_REGISTRAR, reg->registrar);
	if (reg->transport)
		frame_writer_str(w, PROTO_TAG_REG_TRANSPORT, reg->transport);
	frame_writer_u32(w, PROTO_TAG_REG_EXPIRES_IN,
			 seconds_until(reg->expires_at_us, now_us));
	frame_writer_u32(w, PROTO_TAG_REG_NEXT_RETRY,
			 seconds_until(reg->next_retry_us, now_us));
	frame_writer_u32(w, PROTO_TAG_REG_LAST_STATUS, reg->last_status);
	if (reg->last_reason)
		frame_writer_str(w, PROTO_TAG_REG_LAST_REASON, reg->last_reason);
	frame_writer_u64(w, PROTO_TAG_SPOOL_MESSAGES, st->spool_messages);
	frame_writer_u64(w, PROTO_TAG_SPOOL_BYTES, st->spool_bytes);
	for (i = 0; i < G_N_ELEMENTS(st->consumer_types) && st->consumer_types[i]; i++)
		frame_writer_str(w, PROTO_TAG_CONSUMER, st->consumer_types[i]);
	frame_writer_u64(w, PROTO_TAG_COUNT_RECEIVED, st->received);
	frame_writer_u64(w, PROTO_TAG_COUNT_DELIVERED, st->delivered);
	frame_writer_u64(w, PROTO_TAG_COUNT_ACKED, st->acked);
	frame_writer_u64(w, PROTO_TAG_COUNT_REJECTED, st->rejected);
	frame_writer_u64(w, PROTO_TAG_COUNT_SENT, st->sent);
	frame_writer_u64(w, PROTO_TAG_COUNT_EXPIRED, st->expired);
}

static void handle_status(struct conn *c, uint32_t id)
{
	struct broker_status st;
	struct frame_writer w;

	memset(&st, 0, sizeof(st));
	broker_get_status(c->server->broker, &st);

	frame_writer_init(&w);
	write_status(&w, id, &st, g_get_real_time());
	if (conn_queue_writer(c, &w) == -EMSGSIZE)
		reply_error(c, id, EMSGSIZE, "status does not fit in one frame");
}

static void handle_monitor(struct conn *c, uint32_t id)
{
	if (c->monitor) {
		reply_error(c, id, EALREADY, "this connection is already a monitor");
		return;
	}

	c->monitor = true;
	c->server->n_monitors++;
	g_message("monitor on connection %u (pid %d, uid %u, \"%s\")", c->serial,
		  (int) c->pid, (unsigned) c->uid, c->client_name);
	reply_ok(c, id);
}

/* ---------- operator requests: SIP trace and log level ---------- */

/* A trace shows SIP identities, Call-IDs and the registrar's challenges,
 * and the log level changes what the daemon writes: only the agent's own
 * user and root may, not the users and groups allowed to consume keys. */
static bool conn_is_operator(const struct conn *c)
{
	return c->uid == 0 || c->uid == c->server->own_uid;
}

static bool conn_refuse_operator(struct conn *c, uint32_t id, const char *what)
{
	if (conn_is_operator(c))
		return false;

	g_message("connection %u (pid %d, uid %u): %s refused: not the agent's user or root",
		  c->serial, (int) c->pid, (unsigned) c->uid, what);
	reply_error(c, id, EPERM, "%s is for the agent's own user and root only", what);
	return true;
}

static void handle_trace(struct conn *c, uint32_t id)
{
	struct server *s = c->server;

	if (conn_refuse_operator(c, id, "SIP trace"))
		return;
	if (c->tracer) {
		reply_error(c, id, EALREADY, "this connection already traces");
		return;
	}
	if (!s->ops.trace_switch) {
		reply_error(c, id, EOPNOTSUPP, "SIP trace is not available");
		return;
	}

	c->tracer = true;
	g_message("SIP trace on connection %u (pid %d, uid %u, \"%s\")", c->serial,
		  (int) c->pid, (unsigned) c->uid, c->client_name);
	reply_ok(c, id);
	if (s->n_tracers++ == 0)
		s->ops.trace_switch(s->ops_ctx, true);
}

static void handle_log_level(struct conn *c, uint32_t id,
			     const struct log_level_request *req)
{
	struct server *s = c->server;
	const char *previous = NULL, *current = NULL;
	struct frame_writer w;
	int r;

	if (req->level[0] && conn_refuse_operator(c, id, "changing the log level"))
		return;
	if (!s->ops.log_level) {
		reply_error(c, id, EOPNOTSUPP, "the log level cannot be changed");
		return;
	}

	r = s->ops.log_level(s->ops_ctx, req->level[0] ? req->level : NULL, &previous, &current);
	if (r < 0) {
		reply_error(c, id, -r, "unknown log level \"%s\" (error, warning, message, "
			    "info or debug)", req->level);
		return;
	}
	if (req->level[0])
		g_log(G_LOG_DOMAIN, strcmp(current, "warning") == 0 || strcmp(current, "error") == 0
		      ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_MESSAGE,
		      "log level %s (was %s), set by connection %u (pid %d, uid %u)",
		      current, previous, c->serial, (int) c->pid, (unsigned) c->uid);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_LOG_LEVEL_REPLY, id);
	frame_writer_str(&w, PROTO_TAG_LOG_LEVEL, current);
	frame_writer_str(&w, PROTO_TAG_LOG_LEVEL_PREVIOUS, previous);
	conn_queue_writer(c, &w);
}

void server_set_operator_ops(struct server *s, const struct server_operator_ops *ops,
			     void *ctx)
{
	s->ops = *ops;
	s->ops_ctx = ctx;
}

static void write_trace(struct frame_writer *w, const struct trace_record *rec,
			const char *text, uint64_t dropped)
{
	frame_writer_begin(w, PROTO_MSG_TRACE_EVENT, 0);
	frame_writer_str(w, PROTO_TAG_TRACE_DIRECTION, trace_direction_name(rec->direction));
	write_text(w, PROTO_TAG_TRACE_TRANSPORT, rec->transport);
	write_text(w, PROTO_TAG_TRACE_PEER, rec->peer);
	frame_writer_u64(w, PROTO_TAG_EVENT_TIME_US,
			 rec->time_us > 0 ? (uint64_t) rec->time_us : 0);
	frame_writer_u64(w, PROTO_TAG_TRACE_SIZE, rec->len);
	write_text(w, PROTO_TAG_TRACE_TEXT, text);
	if (dropped)
		frame_writer_u64(w, PROTO_TAG_TRACE_DROPPED, dropped);
}

/* A tracer that does not keep up loses trace events, counted and told with
 * the next one it gets; it is not closed, and never holds more than the
 * soft output limit of them. */
void server_trace(struct server *s, const struct trace_record *rec, const char *text,
		  unsigned dropped)
{
	for (GList *l = s->conns.head; l; l = l->next) {
		struct conn *c = l->data;
		struct frame_writer w;

		if (!c->tracer || c->state != CONN_STATE_READY)
			continue;
		if (c->out_bytes > s->soft_output) {
			c->trace_dropped += 1 + dropped;
			continue;
		}
		frame_writer_init(&w);
		write_trace(&w, rec, text, c->trace_dropped + dropped);
		if (conn_queue_writer(c, &w) == 0)
			c->trace_dropped = 0;
	}
}

/* One LIST reply being filled. */
struct list_page {
	struct frame_writer *w;
	struct frame_writer entry;	/* scratch, reused for each entry */
	uint32_t limit;
	uint32_t count;
	bool more;
	bool full;		/* stopped the walk: not an error */
};

/* The MORE field that ends every LIST. */
#define LIST_MORE_FIELD_LEN	(FRAME_FIELD_HEADER_LEN + 4)

/* An ENTRY's nested fields, built as the body of a scratch frame (whose
 * header, type and request id the caller skips). */
static void write_entry(struct frame_writer *e, const struct spool_record *m,
			bool in_flight)
{
	frame_writer_begin(e, 0, 0);
	frame_writer_u64(e, PROTO_TAG_MESSAGE_ID, (uint64_t) m->id);
	frame_writer_str(e, PROTO_TAG_LMR_TYPE, m->lmr_type ? m->lmr_type : "");
	frame_writer_str(e, PROTO_TAG_KMF_URI, m->kmf_uri ? m->kmf_uri : "");
	if (m->mc_service_id)
		write_text(e, PROTO_TAG_MC_SERVICE_ID, m->mc_service_id);
	if (m->sender)
		write_text(e, PROTO_TAG_SENDER, m->sender);
	frame_writer_u64(e, PROTO_TAG_RECEIVED_US,
			 m->received_us > 0 ? (uint64_t) m->received_us : 0);
	frame_writer_u64(e, PROTO_TAG_PAYLOAD_SIZE, m->payload_len);
	frame_writer_bytes(e, PROTO_TAG_FINGERPRINT, m->fingerprint,
			   SPOOL_FINGERPRINT_LEN);
	frame_writer_u32(e, PROTO_TAG_IN_FLIGHT, in_flight ? 1 : 0);
}

/* Adds one message to the page; stops the walk when the page is full by
 * count or by the frame limit (the entry is then left for the next page). */
static int list_visit(void *ctx, const struct spool_record *m, bool in_flight)
{
	const size_t skip = FRAME_HEADER_LEN + FRAME_BODY_MIN;
	struct list_page *p = ctx;
	const uint8_t *frame;
	size_t len;

	if (p->count == p->limit) {
		p->more = p->full = true;
		return -ENOBUFS;
	}

	write_entry(&p->entry, m, in_flight);
	if (frame_writer_end(&p->entry, &frame, &len) < 0) {
		/* Cannot happen with spool fields; never let it stall paging. */
		g_warning("message %" PRId64 ": too large for a LIST entry, left out",
			  m->id);
		return 0;
	}

	len -= skip;
	if (p->w->len + FRAME_FIELD_HEADER_LEN + len + LIST_MORE_FIELD_LEN >
	    SERVER_FRAME_BUFFER_MAX) {
		p->more = p->full = true;
		return -ENOBUFS;
	}

	frame_writer_bytes(p->w, PROTO_TAG_ENTRY, frame + skip, len);
	p->count++;
	return 0;
}

static void handle_queue(struct conn *c, uint32_t id,
			 const struct queue_request *req)
{
	struct list_page page = { 0 };
	struct frame_writer w;
	int r;

	frame_writer_init(&w);
	frame_writer_init(&page.entry);
	frame_writer_begin(&w, PROTO_MSG_LIST, id);
	page.w = &w;
	page.limit = req->limit;
	/* One more than wanted, to know whether MORE is true. */
	r = broker_list(c->server->broker, req->after_id, (size_t) req->limit + 1,
			list_visit, &page);
	frame_writer_clear(&page.entry);
	if (r < 0 && !page.full) {
		frame_writer_clear(&w);
		reply_error(c, id, EIO, "cannot read the spool: %s", g_strerror(-r));
		return;
	}

	frame_writer_u32(&w, PROTO_TAG_MORE, page.more ? 1 : 0);
	g_debug("connection %u: listed %" PRIu32 " message(s) after id %" PRId64 "%s",
		c->serial, page.count, req->after_id, page.more ? ", more follow" : "");
	conn_queue_writer(c, &w);
}

/* req->payload points into the frame body, which frame_decoder_release()
 * wipes; the broker copies what it keeps. */
static void handle_send(struct conn *c, uint32_t id,
			const struct send_request *req)
{
	struct broker_send_request breq;
	struct pending_send *ps;
	char *to = NULL;

	if (g_queue_get_length(&c->sends) >= SERVER_MAX_SENDS) {
		reply_error(c, id, EAGAIN, "too many sends in progress on this "
			    "connection (at most %d)", SERVER_MAX_SENDS);
		return;
	}

	if (req->to)
		to = g_strndup((const char *) req->to, req->to_len);

	breq = (struct broker_send_request) {
		.lmr_type = req->lmr_type,
		.to = to,
		.payload = req->payload,
		.payload_len = req->payload_len,
		.timeout_ms = req->timeout_ms,
	};

	ps = g_new0(struct pending_send, 1);
	ps->conn = c;
	ps->request_id = id;
	ps->starting = true;
	g_queue_push_tail(&c->sends, ps);

	g_debug("connection %u: send %" PRIu32 " (%s, %" PRIu32 " bytes) to %s",
		c->serial, id, req->lmr_type, req->payload_len, to ? to : "default KMF");
	ps->handle = broker_send(c->server->broker, &breq, send_done, ps);
	ps->starting = false;
	g_free(to);

	if (!ps->finished && !ps->handle)
		reply_error(c, id, EIO, "the send could not be started");

	if (ps->finished || !ps->handle) {
		g_queue_remove(&c->sends, ps);
		g_free(ps);
	}
}

/* A request refused by request_decode(): its ERROR reply, and the end of a
 * connection that had not negotiated (docs/protocol.md, SESSION START). */
static void handle_refused(struct conn *c, const struct request *req,
			   int code, const char *why)
{
	if (req->type == PROTO_MSG_SUBSCRIBE && conn_refuse_subscribe(c, req->id))
		return;

	reply_error(c, req->id, code, "%s", why);
	if (c->state == CONN_STATE_NEW)
		conn_finish(c);
}

/* One complete frame body.  Returns false when the connection must close
 * because the frame itself is malformed. */
static bool handle_frame(struct conn *c, const uint8_t *body, size_t len)
{
	struct request req;
	const char *why;
	int code, r;

	r = request_decode(c->state == CONN_STATE_READY, body, len, &req,
			   &code, &why);
	if (r == REQUEST_MALFORMED) {
		g_debug("connection %u: %s", c->serial, why);
		return false;
	}

	if (r == REQUEST_REFUSED) {
		handle_refused(c, &req, code, why);
		return true;
	}

	/* request_decode() refused every other type */
	switch ((enum proto_msg) req.type) {
	case PROTO_MSG_HELLO:
		handle_hello(c, req.id, &req.hello);
		break;
	case PROTO_MSG_SUBSCRIBE:
		handle_subscribe(c, req.id, &req.subscribe);
		break;
	case PROTO_MSG_ACK:
		handle_ack(c, req.id, true, &req.ack);
		break;
	case PROTO_MSG_NACK:
		handle_ack(c, req.id, false, &req.ack);
		break;
	case PROTO_MSG_STATUS:
		handle_status(c, req.id);
		break;
	case PROTO_MSG_SEND:
		handle_send(c, req.id, &req.send);
		break;
	case PROTO_MSG_MONITOR:
		handle_monitor(c, req.id);
		break;
	case PROTO_MSG_QUEUE:
		handle_queue(c, req.id, &req.queue);
		break;
	case PROTO_MSG_TRACE:
		handle_trace(c, req.id);
		break;
	case PROTO_MSG_LOG_LEVEL:
		handle_log_level(c, req.id, &req.log_level);
		break;
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
	return true;
}

/* ---------- input ---------- */

/* Waiting for the HELLO, or for the rest of a frame already begun. */
static bool conn_incomplete(const struct conn *c)
{
	return c->state == CONN_STATE_NEW || c->in.len > c->in.consumed;
}

static gboolean conn_frame_expired(gpointer data);

static void conn_frame_timer_arm(struct conn *c)
{
	c->frame_progress = false;
	c->frame_timer = g_timeout_add(c->server->frame_timeout_ms,
				       conn_frame_expired, c);
}

/* A peer that leaves a frame half sent (or never says HELLO) holds a
 * buffer and a slot: it gets frame_timeout_ms, restarted while it
 * completes frames, then it is closed. */
static gboolean conn_frame_expired(gpointer data)
{
	struct conn *c = data;

	c->frame_timer = 0;
	if ((c->state != CONN_STATE_NEW && c->state != CONN_STATE_READY) ||
	    !conn_incomplete(c))
		return G_SOURCE_REMOVE;

	if (c->frame_progress) {
		conn_frame_timer_arm(c);
		return G_SOURCE_REMOVE;
	}

	g_warning("connection %u (pid %d, uid %u): %s within %u ms: closing",
		  c->serial, (int) c->pid, (unsigned) c->uid,
		  c->in.len > c->in.consumed ? "incomplete frame not finished"
					     : "no HELLO",
		  c->server->frame_timeout_ms);
	conn_close(c);
	return G_SOURCE_REMOVE;
}

static void conn_watch_frames(struct conn *c)
{
	if (!conn_incomplete(c)) {
		if (c->frame_timer)
			g_source_remove(c->frame_timer);
		c->frame_timer = 0;
		return;
	}

	if (!c->frame_timer)
		conn_frame_timer_arm(c);
}

static void conn_frame_error(struct conn *c, int err)
{
	g_warning("connection %u (pid %d, uid %u): %s: closing", c->serial,
		  (int) c->pid, (unsigned) c->uid,
		  err == 0 ? "malformed frame body" : frame_strerror(err));
	conn_close(c);
}

/* One read, bounded by the decoder (at most one frame being received),
 * then every complete frame it brought. */
static void conn_read(struct conn *c)
{
	const uint8_t *body;
	uint8_t *space;
	size_t avail, len;
	ssize_t n;
	int r;

	r = frame_decoder_space(&c->in, &space, &avail);
	if (r < 0) {
		conn_frame_error(c, r);
		return;
	}

	n = recv(c->fd, space, avail, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;

	if (n < 0) {
		g_debug("connection %u: read: %s", c->serial, g_strerror(errno));
		conn_close(c);
		return;
	}

	if (n == 0) {
		g_debug("connection %u: end of input", c->serial);
		conn_finish(c);
		return;
	}

	frame_decoder_commit(&c->in, (size_t) n);
	while (c->state == CONN_STATE_NEW || c->state == CONN_STATE_READY) {
		r = frame_decoder_next(&c->in, &body, &len);
		if (r == 0) {
			/* a SEND's payload must not wait for the next read to be wiped */
			frame_decoder_release(&c->in);
			return;
		}

		if (r < 0) {
			conn_frame_error(c, r);
			return;
		}

		if (!handle_frame(c, body, len)) {
			conn_frame_error(c, 0);
			return;
		}
		c->frame_progress = true;
	}
}

static void conn_io(struct conn *c, GIOCondition revents)
{
	if (c->state == CONN_STATE_DEAD)
		return;

	if (revents & G_IO_OUT)
		conn_flush(c);

	switch (c->state) {
	case CONN_STATE_NEW:
	case CONN_STATE_READY:
		if (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR))
			conn_read(c);
		break;
	case CONN_STATE_DRAINING:
		/* The peer is gone: what is left cannot be written. */
		if (revents & (G_IO_HUP | G_IO_ERR))
			conn_close(c);
		break;
	case CONN_STATE_DEAD:
		break;
	}

	if (c->state == CONN_STATE_DEAD)
		return;

	conn_watch_frames(c);
	conn_maybe_ready(c);
	conn_update_watch(c);
}

static gboolean conn_source_dispatch(GSource *source, GSourceFunc callback,
				     gpointer user_data)
{
	struct conn_source *cs = (struct conn_source *) source;
	struct conn *c = cs->conn;

	(void) callback;
	(void) user_data;
	conn_io(c, g_source_query_unix_fd(source, c->fd_tag));
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = {
	.dispatch = conn_source_dispatch,
};

/* ---------- connection life cycle ---------- */

static void conn_destroy(struct conn *c)
{
	struct server *s = c->server;
	struct pending_send *ps;
	struct pending_ack *pa;

	if (c->subscribed)
		broker_unsubscribe(s->broker, c);

	while ((pa = g_queue_pop_head(&c->acks))) {
		broker_ack_cancel(s->broker, pa->handle);
		g_free(pa);
	}

	while ((ps = g_queue_pop_head(&c->sends))) {
		if (ps->handle)
			broker_send_cancel(s->broker, ps->handle);
		g_free(ps);
	}

	if (c->drain_id)
		g_source_remove(c->drain_id);
	if (c->frame_timer)
		g_source_remove(c->frame_timer);
	if (c->monitor)
		s->n_monitors--;
	if (c->tracer && --s->n_tracers == 0 && s->ops.trace_switch) {
		g_message("SIP trace off: no connection traces any more");
		s->ops.trace_switch(s->ops_ctx, false);
	}
	g_queue_remove(&s->conns, c);
	g_source_destroy(c->source);
	g_source_unref(c->source);
	close(c->fd);
	frame_decoder_clear(&c->in);
	g_queue_clear_full(&c->out, out_frame_free);
	g_debug("connection %u closed", c->serial);
	g_free(c);
}

static gboolean conn_reap(gpointer data)
{
	struct conn *c = data;

	c->reap_id = 0;
	conn_destroy(c);
	return G_SOURCE_REMOVE;
}

static struct conn *conn_new(struct server *s, int fd, const struct ucred *cred)
{
	struct conn_source *cs;
	struct conn *c;

	c = g_new0(struct conn, 1);
	c->server = s;
	c->serial = ++s->next_serial;
	c->fd = fd;
	c->pid = cred->pid;
	c->uid = cred->uid;
	c->state = CONN_STATE_NEW;
	frame_decoder_init(&c->in);
	g_queue_init(&c->out);
	g_queue_init(&c->sends);
	g_queue_init(&c->acks);

	c->source = g_source_new(&conn_source_funcs, sizeof(struct conn_source));
	cs = (struct conn_source *) c->source;
	cs->conn = c;
	c->fd_tag = g_source_add_unix_fd(c->source, fd, G_IO_IN);
	g_source_attach(c->source, NULL);
	g_queue_push_tail(&s->conns, c);
	conn_frame_timer_arm(c);	/* the HELLO must come in time */
	return c;
}

/* ---------- peer credentials ---------- */

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (ids[i] == id)
			return true;
	}
	return false;
}

static char *passwd_buffer(size_t *len)
{
	long n = sysconf(_SC_GETPW_R_SIZE_MAX);

	*len = n > 0 ? (size_t) n : 16384;
	return g_malloc(*len);
}

/* The groups the user database gives uid, its primary group first. */
static gid_t *user_groups(uid_t uid, int *n_groups)
{
	struct passwd pw, *found = NULL;
	gid_t *groups;
	size_t buflen;
	char *buf;
	int n = 32;

	buf = passwd_buffer(&buflen);
	while (getpwuid_r(uid, &pw, buf, buflen, &found) == ERANGE) {
		buflen *= 2;
		buf = g_realloc(buf, buflen);
	}

	if (!found) {
		g_free(buf);
		*n_groups = 0;
		return NULL;
	}

	groups = g_new(gid_t, n);
	while (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		groups = g_renew(gid_t, groups, n);

	g_free(buf);
	*n_groups = n;
	return groups;
}

static bool peer_in_allowed_group(const struct server *s, const struct ucred *cred)
{
	gid_t *groups;
	bool found = false;
	int i, n;

	if (s->n_allowed_gids == 0)
		return false;

	if (id_in(s->allowed_gids, s->n_allowed_gids, cred->gid))
		return true;

	groups = user_groups(cred->uid, &n);
	for (i = 0; i < n && !found; i++)
		found = id_in(s->allowed_gids, s->n_allowed_gids, groups[i]);
	g_free(groups);
	return found;
}

static bool peer_allowed(const struct server *s, const struct ucred *cred)
{
	if (cred->uid == 0 || cred->uid == s->own_uid)
		return true;

	if (id_in(s->allowed_uids, s->n_allowed_uids, cred->uid))
		return true;

	return peer_in_allowed_group(s, cred);
}

static void refusal_summary(struct server *s)
{
	if (s->refusals_unlogged)
		g_warning("%u more refused connections were not logged",
			  s->refusals_unlogged);
	s->refusals_unlogged = 0;
}

static gboolean refusal_window_end(gpointer data)
{
	struct server *s = data;

	s->refusal_summary_id = 0;
	refusal_summary(s);
	return G_SOURCE_REMOVE;
}

/* Refusals are logged, but at most SERVER_REFUSAL_LOG_BURST per window:
 * a local user must not be able to flood the log through the agent.  The
 * ones left out are counted in one line when the window ends. */
static bool refusal_log_allowed(struct server *s)
{
	int64_t now = g_get_monotonic_time();
	int64_t left;

	if (now - s->refusal_window_us >= SERVER_REFUSAL_LOG_WINDOW_US) {
		refusal_summary(s);
		s->refusal_window_us = now;
		s->refusals_logged = 0;
	}

	if (s->refusals_logged < SERVER_REFUSAL_LOG_BURST) {
		s->refusals_logged++;
		return true;
	}

	if (s->refusals_unlogged++ == 0 && !s->refusal_summary_id) {
		left = s->refusal_window_us + SERVER_REFUSAL_LOG_WINDOW_US - now;
		s->refusal_summary_id = g_timeout_add((guint) (left / 1000) + 1,
						      refusal_window_end, s);
	}
	return false;
}

/* An allowed peer over the connection cap is told why (the socket is new,
 * so the small frame fits its buffer) and closed at once. */
static void refuse_busy(struct server *s, int fd, const struct ucred *cred)
{
	struct frame_writer w;
	const uint8_t *frame;
	char *text;
	size_t len;

	if (refusal_log_allowed(s))
		g_warning("refused a connection from pid %d uid %u: %u "
			  "connections already open", (int) cred->pid,
			  (unsigned) cred->uid, s->max_connections);

	text = g_strdup_printf("too many connections to the agent (at most %u)",
			       s->max_connections);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_ERROR, 0);
	frame_writer_u32(&w, PROTO_TAG_ERROR_CODE, EUSERS);
	frame_writer_str(&w, PROTO_TAG_ERROR_TEXT, text);
	if (frame_writer_end(&w, &frame, &len) == 0 &&
	    send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		g_debug("cannot tell a refused peer why: %s", g_strerror(errno));
	frame_writer_clear(&w);
	g_free(text);
	close(fd);
}

static void server_accept_one(struct server *s, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		g_warning("refused a connection: SO_PEERCRED: %s", g_strerror(errno));
		close(fd);
		return;
	}

	/* Not a byte is read from a peer that is not allowed. */
	if (!peer_allowed(s, &cred)) {
		if (refusal_log_allowed(s))
			g_warning("refused a connection from pid %d uid %u gid %u: "
				  "not root, the agent's user, an allowed user or "
				  "in an allowed group", (int) cred.pid,
				  (unsigned) cred.uid, (unsigned) cred.gid);
		close(fd);
		return;
	}

	if (g_queue_get_length(&s->conns) >= s->max_connections) {
		refuse_busy(s, fd, &cred);
		return;
	}

	c = conn_new(s, fd, &cred);
	g_debug("connection %u from pid %d uid %u", c->serial, (int) cred.pid,
		(unsigned) cred.uid);
}

static gboolean server_on_listen(gint fd, GIOCondition cond, gpointer data);

static gboolean server_resume_accept(gpointer data)
{
	struct server *s = data;

	s->accept_pause_id = 0;
	s->listen_id = g_unix_fd_add(s->listen_fd, G_IO_IN, server_on_listen, s);
	return G_SOURCE_REMOVE;
}

/* Out of descriptors or memory: the pending connection stays in the
 * backlog and the socket stays readable, so stop polling it a while. */
static gboolean server_pause_accept(struct server *s, int err)
{
	if (refusal_log_allowed(s))
		g_warning("accept on %s: %s: not accepting for %d ms",
			  s->path ? s->path : "socket", g_strerror(err),
			  SERVER_ACCEPT_PAUSE_MS);
	s->listen_id = 0;
	s->accept_pause_id = g_timeout_add(SERVER_ACCEPT_PAUSE_MS,
					   server_resume_accept, s);
	return G_SOURCE_REMOVE;
}

static gboolean server_on_listen(gint fd, GIOCondition cond, gpointer data)
{
	struct server *s = data;
	int i, cfd;

	(void) cond;
	for (i = 0; i < SERVER_ACCEPT_BURST; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			server_accept_one(s, cfd);
			continue;
		}

		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			return server_pause_accept(s, errno);

		if (errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR && errno != ECONNABORTED)
			g_warning("accept on %s: %s", s->path ? s->path : "socket",
				  g_strerror(errno));
		break;
	}
	return G_SOURCE_CONTINUE;
}

/* ---------- names from the configuration ---------- */

static int lookup_uid(const char *name, uid_t *uid)
{
	struct passwd pw, *found = NULL;
	size_t buflen;
	char *buf;

	buf = passwd_buffer(&buflen);
	while (getpwnam_r(name, &pw, buf, buflen, &found) == ERANGE) {
		buflen *= 2;
		buf = g_realloc(buf, buflen);
	}
	if (found)
		*uid = pw.pw_uid;
	g_free(buf);
	return found ? 0 : -ENOENT;
}

static int lookup_gid(const char *name, gid_t *gid)
{
	struct group gr, *found = NULL;
	long n = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t buflen = n > 0 ? (size_t) n : 16384;
	char *buf = g_malloc(buflen);

	while (getgrnam_r(name, &gr, buf, buflen, &found) == ERANGE) {
		buflen *= 2;
		buf = g_realloc(buf, buflen);
	}
	if (found)
		*gid = gr.gr_gid;
	g_free(buf);
	return found ? 0 : -ENOENT;
}

static int resolve_allowed(struct server *s, const struct server_config *cfg,
			   char **error)
{
	size_t i, n;

	n = cfg->allowed_users ? g_strv_length(cfg->allowed_users) : 0;
	s->allowed_uids = g_new0(uid_t, n + 1);
	for (i = 0; i < n; i++) {
		if (lookup_uid(cfg->allowed_users[i], &s->allowed_uids[i]) < 0) {
			*error = g_strdup_printf("socket allowed-users: no user "
						 "named \"%s\"", cfg->allowed_users[i]);
			return -EINVAL;
		}
	}
	s->n_allowed_uids = n;

	n = cfg->allowed_groups ? g_strv_length(cfg->allowed_groups) : 0;
	s->allowed_gids = g_new0(gid_t, n + 1);
	for (i = 0; i < n; i++) {
		if (lookup_gid(cfg->allowed_groups[i], &s->allowed_gids[i]) < 0) {
			*error = g_strdup_printf("socket allowed-groups: no group "
						 "named \"%s\"", cfg->allowed_groups[i]);
			return -EINVAL;
		}
	}
	s->n_allowed_gids = n;
	return 0;
}

/* ---------- the socket file ---------- */

/* An existing directory is left as it is (systemd's RuntimeDirectory=, an
 * administrator's choice), but a mode that keeps allowed peers out is
 * worth a warning. */
static void check_dir_reachable(const char *dir, const struct stat *st,
				bool open_access)
{
	if (open_access && !(st->st_mode & S_IXOTH))
		g_warning("socket directory %s has mode %04o: allowed-users and "
			  "allowed-groups outside its group cannot reach the socket",
			  dir, (unsigned) (st->st_mode & 07777));
}

/* Creates the last component only: a missing parent is a configuration
 * mistake better reported than papered over. */
static int prepare_dir(const char *path, gid_t gid, bool open_access,
		       char **error)
{
	mode_t mode = open_access ? SERVER_DIR_MODE_OPEN : SERVER_DIR_MODE;
	char *dir = g_path_get_dirname(path);
	struct stat st;
	int r = 0;

	if (mkdir(dir, mode) == 0) {
		if (chmod(dir, mode) < 0 ||
		    (gid != (gid_t) -1 && chown(dir, (uid_t) -1, gid) < 0)) {
			r = -errno;
			*error = g_strdup_printf("socket directory %s: %s", dir,
						 g_strerror(errno));
		}
	} else if (errno == ENOENT) {
		r = -ENOENT;
		*error = g_strdup_printf("cannot create socket directory %s: its "
					 "parent directory does not exist", dir);
	} else if (errno != EEXIST) {
		r = -errno;
		*error = g_strdup_printf("cannot create socket directory %s: %s",
					 dir, g_strerror(errno));
	} else if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
		*error = g_strdup_printf("socket directory %s is not a directory",
					 dir);
	} else {
		check_dir_reachable(dir, &st, open_access);
	}

	g_free(dir);
	return r;
}

static int sockaddr_for(const char *path, struct sockaddr_un *sa, char **error)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		*error = g_strdup_printf("socket path %s is longer than %zu bytes",
					 path, sizeof(sa->sun_path) - 1);
		return -EINVAL;
	}
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* A socket file nobody listens on is left by a crash: replace it.  One
 * somebody listens on is another agent: refuse to start. */
static int clear_stale(const char *path, const struct sockaddr_un *sa,
		       char **error)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		*error = g_strdup_printf("%s: %s", path, g_strerror(errno));
		return -errno;
	}

	if (!S_ISSOCK(st.st_mode)) {
		*error = g_strdup_printf("%s exists and is not a socket; refusing "
					 "to replace it", path);
		return -EEXIST;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error = g_strdup_printf("socket: %s", g_strerror(errno));
		return -errno;
	}

	r = connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) < 0 ? errno : 0;
	close(fd);

	/* EAGAIN: a listener whose backlog is full is still a listener. */
	if (r == 0 || r == EAGAIN) {
		*error = g_strdup_printf("another lmrsec-agent is already "
					 "listening on %s", path);
		return -EADDRINUSE;
	}

	if (r != ECONNREFUSED) {
		*error = g_strdup_printf("cannot tell whether %s is in use: %s",
					 path, g_strerror(r));
		return -r;
	}

	if (unlink(path) < 0 && errno != ENOENT) {
		*error = g_strdup_printf("cannot remove stale socket %s: %s",
					 path, g_strerror(errno));
		return -errno;
	}
	g_message("removed stale socket %s", path);
	return 0;
}

/* Bound under umask 0177 so that nobody else can connect before the group
 * and mode are set. */
static int bind_socket(struct server *s, const char *path,
		       const struct sockaddr_un *sa, gid_t gid, char **error)
{
	struct stat st;
	mode_t old_mask;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error = g_strdup_printf("socket: %s", g_strerror(errno));
		return -errno;
	}

	old_mask = umask(0177);
	r = bind(fd, (const struct sockaddr *) sa, sizeof(*sa));
	umask(old_mask);
	if (r < 0) {
		r = -errno;
		*error = g_strdup_printf("cannot bind %s: %s", path, g_strerror(errno));
		close(fd);
		return r;
	}

	if ((gid != (gid_t) -1 && chown(path, (uid_t) -1, gid) < 0) ||
	    chmod(path, s->open_access ? SERVER_SOCKET_MODE_OPEN
				       : SERVER_SOCKET_MODE) < 0 ||
	    stat(path, &st) < 0 ||
	    listen(fd, SERVER_LISTEN_BACKLOG) < 0) {
		r = -errno;
		*error = g_strdup_printf("socket %s: %s", path, g_strerror(errno));
		unlink(path);
		close(fd);
		return r;
	}

	s->path = g_strdup(path);
	s->path_dev = st.st_dev;
	s->path_ino = st.st_ino;
	s->listen_fd = fd;
	return 0;
}

static int create_socket(struct server *s, const struct server_config *cfg,
			 char **error)
{
	struct sockaddr_un sa;
	gid_t gid = (gid_t) -1;
	int r;

	if (!cfg->path || !*cfg->path) {
		*error = g_strdup("no socket path");
		return -EINVAL;
	}

	r = sockaddr_for(cfg->path, &sa, error);
	if (r < 0)
		return r;

	if (cfg->group && lookup_gid(cfg->group, &gid) < 0) {
		*error = g_strdup_printf("socket group: no group named \"%s\"",
					 cfg->group);
		return -EINVAL;
	}

	r = prepare_dir(cfg->path, gid, s->open_access, error);
	if (r < 0)
		return r;

	r = clear_stale(cfg->path, &sa, error);
	if (r < 0)
		return r;

	return bind_socket(s, cfg->path, &sa, gid, error);
}

/* systemd made and bound it (mode, group from the .socket unit). */
static int adopt_socket(struct server *s, int fd, char **error)
{
	int listening = 0, flags;
	socklen_t len = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
	    !listening) {
		*error = g_strdup_printf("file descriptor %d from systemd is not "
					 "a listening socket", fd);
		return -EINVAL;
	}

	flags = fcntl(fd, F_GETFD);
	if (!g_unix_set_fd_nonblocking(fd, TRUE, NULL) || flags < 0 ||
	    fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
		*error = g_strdup_printf("socket from systemd: %s", g_strerror(errno));
		return -errno;
	}

	s->listen_fd = fd;
	return 0;
}

/* ---------- life cycle ---------- */

static size_t soft_output_for(size_t max_output)
{
	return MIN((size_t) SERVER_OUTPUT_SOFT_LIMIT,
		   max_output - SERVER_FRAME_BUFFER_MAX);
}

/* Every connection is a file descriptor; the usual soft limit (1024) is
 * below what max-connections may ask for, the hard limit rarely is. */
static void raise_fd_limit(unsigned max_connections)
{
	rlim_t want = (rlim_t) max_connections + SERVER_FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;

	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want
		      ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		g_warning("open-file limit %llu is below max-connections %u + %d: "
			  "connections may be refused before the cap",
			  (unsigned long long) rl.rlim_cur, max_connections,
			  SERVER_FD_RESERVE);
}

int server_start(const struct server_config *cfg, struct broker *b,
		 struct server **out, char **error)
{
	struct server *s;
	int r;

	*out = NULL;
	*error = NULL;

	s = g_new0(struct server, 1);
	s->broker = b;
	s->listen_fd = -1;
	s->own_uid = geteuid();
	s->agent_version = g_strdup(cfg->agent_version ? cfg->agent_version : "");
	s->max_output = cfg->max_output_bytes ? cfg->max_output_bytes
					      : SERVER_DEFAULT_MAX_OUTPUT;
	s->max_connections = cfg->max_connections ? cfg->max_connections
						  : SERVER_DEFAULT_MAX_CONNECTIONS;
	s->frame_timeout_ms = cfg->frame_timeout_ms ? cfg->frame_timeout_ms
						    : SERVER_DEFAULT_FRAME_TIMEOUT_MS;
	g_queue_init(&s->conns);

	if (s->max_output < SERVER_MIN_MAX_OUTPUT) {
		*error = g_strdup_printf("socket output bound %zu is below the "
					 "minimum %u", s->max_output,
					 SERVER_MIN_MAX_OUTPUT);
		r = -EINVAL;
		goto fail;
	}
	s->soft_output = soft_output_for(s->max_output);

	r = resolve_allowed(s, cfg, error);
	if (r < 0)
		goto fail;
	s->open_access = s->n_allowed_uids + s->n_allowed_gids > 0;

	r = cfg->listen_fd >= 0 ? adopt_socket(s, cfg->listen_fd, error)
				: create_socket(s, cfg, error);
	if (r < 0)
		goto fail;

	raise_fd_limit(s->max_connections);
	broker_add_observer(b, server_on_event, s);
	s->observing = true;
	s->listen_id = g_unix_fd_add(s->listen_fd, G_IO_IN, server_on_listen, s);
	g_message("listening on %s (at most %u connections)",
		  s->path ? s->path : "the socket from systemd", s->max_connections);
	*out = s;
	return 0;

fail:
	server_stop(s);
	return r;
}

/* Unlinks the socket only while it is still ours: a newer agent may have
 * replaced it. */
static void remove_socket_file(const struct server *s)
{
	struct stat st;

	if (!s->path || lstat(s->path, &st) < 0)
		return;

	if (st.st_dev == s->path_dev && st.st_ino == s->path_ino)
		unlink(s->path);
}

void server_stop(struct server *s)
{
	struct conn *c;

	if (!s)
		return;

	if (s->observing)
		broker_remove_observer(s->broker, server_on_event, s);
	if (s->listen_id)
		g_source_remove(s->listen_id);
	if (s->accept_pause_id)
		g_source_remove(s->accept_pause_id);
	if (s->refusal_summary_id)
		g_source_remove(s->refusal_summary_id);
	if (s->listen_fd >= 0) {
		remove_socket_file(s);
		close(s->listen_fd);
	}

	/* Dead first: unsubscribing one makes the broker offer its messages
	 * to the others, which must refuse them now. */
	for (GList *l = s->conns.head; l; l = l->next)
		((struct conn *) l->data)->state = CONN_STATE_DEAD;

	while ((c = g_queue_peek_head(&s->conns))) {
		if (c->reap_id)
			g_source_remove(c->reap_id);
		conn_destroy(c);
	}

	g_free(s->path);
	g_free(s->agent_version);
	g_free(s->allowed_uids);
	g_free(s->allowed_gids);
	g_free(s);
}
