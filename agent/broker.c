/*
 * broker — the core of lmrsec-agent (see broker.h).
 *
 * In memory the broker keeps only metadata of spooled messages; payloads
 * stay in the spool and are read back just for the delivery, so key bytes
 * live in agent memory only while a message is on its way to a consumer.
 *
 * A message's life, named in "state:" comments where it changes (a model of
 * this file uses the same names):
 *   stored    committed to the spool, in the queue, waiting for a consumer
 *   offered   read back and handed to its consumer's deliver callback
 *   in flight the consumer has it and owes an ACK or a NACK
 *   acking    the consumer ACKed: the deletion waits for the group commit
 *             (the ACK is confirmed to the consumer only after it)
 *   acked     the deletion is committed (terminal)
 *   nacked    the consumer NACKed: stored again, offered after a delay
 *   expired   dropped undelivered after message-ttl (terminal)
 * A consumer that goes away (disconnect, takeover) returns its in-flight
 * messages to stored ("released"); a restart queues every spooled message
 * again ("reloaded").  tests/model/delivery.pml models these states in
 * capitals; expiry and the deferred answers below are outside that model.
 * In ack-mode delivered the IWF's MESSAGE also has an answer state, in
 * "answer:" comments: deferred (a waiter holds it), then answered 200
 * (acked) or 480 (no consumer, NACK, timeout, expiry, stop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "broker.h"
#include "log.h"

/* A NACKed message is offered again after this delay, so a consumer that
 * keeps refusing cannot spin the agent. */
#define BROKER_NACK_DELAY_US (1 * G_USEC_PER_SEC)
/* Expiry runs every min(this, message-ttl / 2) seconds, at least every 1 s. */
#define BROKER_EXPIRE_PERIOD_MAX_S 60
#define BROKER_RETRY_AFTER_S 30
/* A removed message's bytes stay in the SQLite WAL until a checkpoint: at
 * most this long.  Not at once: at a low rate the queue drains after every
 * message, and a checkpoint per message costs more fsyncs than its store. */
#define BROKER_PURGE_DELAY_MS 250
/* Group commit: at most this many MESSAGEs share one durable commit (it
 * bounds the answers a slow commit holds back). */
#define BROKER_BATCH_MAX 256
#define BROKER_ALL_TYPES "*"

#define BROKER_480 "Temporarily Unavailable"

struct consumer_slot;

struct entry {
	int64_t id;
	int64_t received_us;
	int64_t not_before_us;        /* after a NACK */
	char *lmr_type;
	size_t payload_len;
	uint8_t fingerprint[SPOOL_FINGERPRINT_LEN];
	struct consumer_slot *in_flight;
	bool acking;                  /* its deletion waits for the group commit */
};

struct consumer_slot {
	void *consumer;
	broker_deliver_fn deliver;
	broker_lost_fn lost;
	GPtrArray *types;             /* char *, may contain "*" */
	bool blocked;                 /* its output is full: wait for ready */
};

/* An accepted MESSAGE waiting for the group commit; answered after it. */
struct pending {
	struct spool_record rec;
	broker_answer_fn answer;
	void *ctx;
};

/* A consumer's ACK waiting for the group commit that deletes its message. */
struct broker_ack {
	int64_t id;
	broker_ack_done_fn done;      /* NULL once cancelled */
	void *ctx;
};

/* ack-mode delivered: one IWF MESSAGE waiting for the ACK of message id. */
struct waiter {
	struct broker *broker;
	int64_t id;
	broker_answer_fn answer;
	void *ctx;
	guint timer;                  /* delivery-timeout */
};

struct observer {
	broker_event_fn fn;
	void *ctx;
};

struct broker_send {
	struct broker *broker;
	struct broker_send_request req;  /* strings and payload owned */
	broker_send_done_fn done;
	void *ctx;
	void *sip_handle;             /* in flight at the SIP side */
	guint timer;
	bool starting;                /* inside sip_ops->send() */
	bool done_early;              /* send() answered before it returned */
	int early_err;
	unsigned early_status;
	char *early_reason;
};

struct broker {
	struct spool *spool;
	struct broker_limits limits;
	GQueue entries;               /* struct entry *, in id order */
	GHashTable *by_id;            /* id -> GList link in entries */
	GHashTable *holders;          /* LMR type -> struct consumer_slot * */
	GHashTable *slots;            /* consumer -> struct consumer_slot * */
	GQueue waiters;               /* struct waiter *, deferred answers */
	GPtrArray *batch;             /* struct pending *, not yet committed */
	size_t batch_bytes;
	GPtrArray *acks;              /* struct broker_ack *, not yet committed */
	guint flush_idle;
	GList *sends;                 /* struct broker_send * waiting or in flight */
	GArray *observers;            /* struct observer */
	const struct broker_sip_ops *sip_ops;
	void *sip;
	struct {
		enum broker_reg_state state;
		char *aor, *registrar, *transport, *last_reason;
		int64_t expires_at_us, next_retry_us;
		unsigned last_status;
	} reg;
	uint64_t spool_messages, spool_bytes;
	uint64_t received, delivered, acked, rejected, sent, expired;
	guint retry_timer, expire_timer, purge_timer;
	bool stopping;                /* broker_shutdown ran */
	const char *status_types[64];
};

const char *broker_reg_state_name(enum broker_reg_state s)
{
	switch (s) {
	case BROKER_REG_UNREGISTERED:
		return "unregistered";
	case BROKER_REG_REGISTERING:
		return "registering";
	case BROKER_REG_REGISTERED:
		return "registered";
	case BROKER_REG_FAILED:
		return "failed";
	}
	return "unknown";
}

const char *broker_event_name(enum broker_event_kind kind)
{
	switch (kind) {
	case BROKER_EVENT_REGISTRATION:
		return "registration";
	case BROKER_EVENT_RECEIVED:
		return "received";
	case BROKER_EVENT_DELIVERED:
		return "delivered";
	case BROKER_EVENT_ACKED:
		return "acked";
	case BROKER_EVENT_NACKED:
		return "nacked";
	case BROKER_EVENT_REJECTED:
		return "rejected";
	case BROKER_EVENT_EXPIRED:
		return "expired";
	}
	return "unknown";
}

void broker_add_observer(struct broker *b, broker_event_fn fn, void *ctx)
{
	struct observer o = { fn, ctx };

	g_array_append_val(b->observers, o);
}

void broker_remove_observer(struct broker *b, broker_event_fn fn, void *ctx)
{
	for (guint i = 0; i < b->observers->len; i++) {
		struct observer *o = &g_array_index(b->observers, struct observer, i);

		if (o->fn == fn && o->ctx == ctx) {
			g_array_remove_index(b->observers, i);
			return;
		}
	}
}

static void emit(struct broker *b, struct broker_event *ev)
{
	ev->time_us = g_get_real_time();
	for (guint i = 0; i < b->observers->len; i++) {
		struct observer o = g_array_index(b->observers, struct observer, i);

		o.fn(o.ctx, ev);
	}
}

static void emit_message(struct broker *b, enum broker_event_kind kind, int64_t id,
			 const char *lmr_type, size_t size, const uint8_t *fingerprint)
{
	struct broker_event ev = {
		.kind = kind, .id = id, .lmr_type = lmr_type, .size = size,
		.fingerprint = fingerprint,
	};

	emit(b, &ev);
}

static void emit_entry(struct broker *b, enum broker_event_kind kind, const struct entry *e)
{
	emit_message(b, kind, e->id, e->lmr_type, e->payload_len, e->fingerprint);
}

static void entry_free(struct entry *e)
{
	g_free(e->lmr_type);
	g_free(e);
}

static struct entry *entry_lookup(struct broker *b, int64_t id)
{
	GList *link = g_hash_table_lookup(b->by_id, &id);

	return link ? link->data : NULL;
}

static void entry_add(struct broker *b, const struct spool_record *rec)
{
	struct entry *e = g_new0(struct entry, 1);

	e->id = rec->id;
	e->received_us = rec->received_us;
	e->lmr_type = g_strdup(rec->lmr_type);
	e->payload_len = rec->payload_len;
	memcpy(e->fingerprint, rec->fingerprint, sizeof(e->fingerprint));
	g_queue_push_tail(&b->entries, e);
	g_hash_table_insert(b->by_id, &e->id, b->entries.tail);
	b->spool_messages++;
	b->spool_bytes += e->payload_len;
}

static void entry_drop(struct broker *b, struct entry *e)
{
	GList *link = g_hash_table_lookup(b->by_id, &e->id);

	g_hash_table_remove(b->by_id, &e->id);
	g_queue_delete_link(&b->entries, link);
	b->spool_messages--;
	b->spool_bytes -= e->payload_len;
	entry_free(e);
}

/* --- routing --- */

static struct consumer_slot *holder_for(struct broker *b, const char *lmr_type)
{
	struct consumer_slot *slot = g_hash_table_lookup(b->holders, lmr_type);

	return slot ? slot : g_hash_table_lookup(b->holders, BROKER_ALL_TYPES);
}

static void schedule_dispatch(struct broker *b, int64_t delay_us);

/* Reads the payload back and hands it over; false when the consumer could
 * not take it now (it is then blocked until broker_consumer_ready). */
static bool offer(struct broker *b, struct entry *e, struct consumer_slot *slot)
{
	struct spool_record rec = { 0 };
	int r;

	r = spool_get(b->spool, e->id, &rec);
	if (r < 0) {
		g_warning("spool: cannot read message %" G_GINT64_FORMAT ": %s",
			  e->id, spool_errmsg(b->spool));
		return true;
	}
	/* state: offered */
	r = slot->deliver(slot->consumer, &rec);
	spool_record_clear(&rec);  /* wipes the payload copy */
	if (r < 0) {
		/* state: stored (the consumer cannot take it now) */
		slot->blocked = true;
		return false;
	}
	/* state: in flight */
	e->in_flight = slot;
	b->delivered++;
	emit_entry(b, BROKER_EVENT_DELIVERED, e);
	return true;
}

static void dispatch(struct broker *b)
{
	int64_t now = g_get_real_time(), next_due = 0;

	for (GList *l = b->entries.head; l; l = l->next) {
		struct entry *e = l->data;
		struct consumer_slot *slot;

		if (e->in_flight || e->acking)
			continue;
		if (e->not_before_us > now) {
			if (!next_due || e->not_before_us < next_due)
				next_due = e->not_before_us;
			continue;
		}
		slot = holder_for(b, e->lmr_type);
		if (!slot || slot->blocked)
			continue;
		offer(b, e, slot);
	}
	if (next_due)
		schedule_dispatch(b, next_due - now);
}

static gboolean on_retry_timer(gpointer data)
{
	struct broker *b = data;

	b->retry_timer = 0;
	dispatch(b);
	return G_SOURCE_REMOVE;
}

static void schedule_dispatch(struct broker *b, int64_t delay_us)
{
	if (b->retry_timer)
		return;
	b->retry_timer = g_timeout_add((guint)(delay_us / 1000) + 1, on_retry_timer, b);
}

/* --- purging removed payloads from the database files --- */

static void purge_now(struct broker *b)
{
	int r;

	if (b->purge_timer)
		g_source_remove(b->purge_timer);
	b->purge_timer = 0;
	r = spool_checkpoint(b->spool);
	if (r < 0)
		g_warning("spool: checkpoint failed, removed payloads may linger in the "
			  "WAL until the next one: %s", spool_errmsg(b->spool));
}

static gboolean on_purge_timer(gpointer data)
{
	struct broker *b = data;

	b->purge_timer = 0;
	purge_now(b);
	return G_SOURCE_REMOVE;
}

/* After a removal: secure_delete zeroed the rows, but the WAL keeps the
 * frames they were written in until a checkpoint, BROKER_PURGE_DELAY_MS
 * after the first removal not yet purged.  The checkpoint also makes the
 * non-durable deletions (spool_remove_batch) durable. */
static void purge_soon(struct broker *b)
{
	if (!b->purge_timer)
		b->purge_timer = g_timeout_add(BROKER_PURGE_DELAY_MS, on_purge_timer, b);
}

/* --- deferred answers (ack-mode delivered) --- */

static void waiter_finish(struct waiter *w, unsigned status, const char *reason,
			  unsigned retry_after_s)
{
	struct broker *b = w->broker;

	g_queue_remove(&b->waiters, w);
	if (w->timer)
		g_source_remove(w->timer);
	w->answer(w->ctx, status, reason, retry_after_s);
	g_free(w);
}

static gboolean on_waiter_timeout(gpointer data)
{
	struct waiter *w = data;

	w->timer = 0;
	g_message("message %" G_GINT64_FORMAT ": no consumer ACK within %u s, "
		  "answered 480; it stays in the spool", w->id,
		  w->broker->limits.delivery_timeout_s);
	/* answer: 480 (timeout) */
	waiter_finish(w, 480, BROKER_480 " (no consumer ACK in time)", BROKER_RETRY_AFTER_S);
	return G_SOURCE_REMOVE;
}

static void waiter_add(struct broker *b, int64_t id, broker_answer_fn answer, void *ctx)
{
	struct waiter *w = g_new0(struct waiter, 1);

	/* answer: deferred */
	w->broker = b;
	w->id = id;
	w->answer = answer;
	w->ctx = ctx;
	w->timer = g_timeout_add((guint)b->limits.delivery_timeout_s * 1000,
				 on_waiter_timeout, w);
	g_queue_push_tail(&b->waiters, w);
}

/* Answers every MESSAGE waiting for message id (a re-sent copy waits too). */
static void waiters_answer(struct broker *b, int64_t id, unsigned status,
			   const char *reason, unsigned retry_after_s)
{
	GList *l = b->waiters.head;

	while (l) {
		struct waiter *w = l->data;

		l = l->next;
		if (w->id == id)
			waiter_finish(w, status, reason, retry_after_s);
	}
}

/* The MESSAGE of stored (or still spooled) message e: in ack-mode stored
 * 200 now; in ack-mode delivered 200 only on its consumer's ACK. */
static void answer_kept(struct broker *b, const struct entry *e,
			broker_answer_fn answer, void *ctx)
{
	if (b->limits.ack_mode == BROKER_ACK_STORED) {
		/* answer: 200 (stored) */
		answer(ctx, 200, "OK", 0);
		return;
	}
	if (b->stopping || !holder_for(b, e->lmr_type)) {
		const char *why = b->stopping ? "agent stopping" : "no consumer for this LMR type";
		char reason[96];

		g_message("message %" G_GINT64_FORMAT ": answered 480 (%s); it stays in "
			  "the spool", e->id, why);
		snprintf(reason, sizeof(reason), BROKER_480 " (%s)", why);
		/* answer: 480 (no consumer, or stopping) */
		answer(ctx, 480, reason, BROKER_RETRY_AFTER_S);
		return;
	}
	waiter_add(b, e->id, answer, ctx);
}

/* --- incoming messages --- */

/* Counts what waits for the group commit as spooled already. */
static bool spool_has_room(struct broker *b, size_t payload_len)
{
	return b->spool_messages + b->batch->len < b->limits.max_messages &&
	       b->spool_bytes + b->batch_bytes + payload_len <= b->limits.max_bytes;
}

static void refuse(struct broker *b, struct spool_record *rec, unsigned status,
		   const char *reason, broker_answer_fn answer, void *ctx)
{
	struct log_fields f = {
		.event = "rejected", .lmr_type = rec->lmr_type, .fingerprint = rec->fingerprint,
		.size = rec->payload_len, .sip_status = status,
	};

	log_message(G_LOG_LEVEL_WARNING, &f, "message refused (LMR type %s, %zu bytes): %u %s",
		    rec->lmr_type ? rec->lmr_type : "?", rec->payload_len, status, reason);
	spool_record_clear(rec);
	broker_rejected(b, status, reason);
	answer(ctx, status, reason, BROKER_RETRY_AFTER_S);
}

/* rec's dedupe key was accepted before: rec->id is the earlier message. */
static void accept_duplicate(struct broker *b, struct spool_record *rec,
			     broker_answer_fn answer, void *ctx)
{
	struct entry *e = entry_lookup(b, rec->id);

	g_debug("message %" G_GINT64_FORMAT " re-sent; not delivered twice", rec->id);
	spool_record_clear(rec);
	if (e) {
		answer_kept(b, e, answer, ctx);
		return;
	}
	/* answer: 200 (already ACKed, so also right in ack-mode delivered) */
	answer(ctx, 200, "OK", 0);
}

/* rec was committed: it is in the queue from now on. */
static void accept_stored(struct broker *b, struct spool_record *rec,
			  broker_answer_fn answer, void *ctx)
{
	/* state: stored */
	b->received++;
	entry_add(b, rec);
	emit_message(b, BROKER_EVENT_RECEIVED, rec->id, rec->lmr_type, rec->payload_len,
		     rec->fingerprint);
	spool_record_clear(rec);
	answer_kept(b, b->entries.tail->data, answer, ctx);
}

static void pending_free(struct pending *p)
{
	spool_record_clear(&p->rec);
	g_free(p);
}

/* Answers each MESSAGE of a batch by the outcome of its commit (r) and of
 * its record (result): never 200 for one that is not durably stored. */
static void batch_answer(struct broker *b, GPtrArray *batch, int r, const int *results)
{
	for (guint i = 0; i < batch->len; i++) {
		struct pending *p = g_ptr_array_index(batch, i);

		if (r < 0)
			refuse(b, &p->rec, 500, "Server Internal Error (cannot store message)",
			       p->answer, p->ctx);
		else if (results[i] == -EEXIST)
			accept_duplicate(b, &p->rec, p->answer, p->ctx);
		else
			accept_stored(b, &p->rec, p->answer, p->ctx);
	}
}

/* After the commit (r) that deleted its message: the ACK takes effect and
 * is confirmed, or on failure the message stays as it was. */
static void ack_finish(struct broker *b, struct broker_ack *a, int r)
{
	struct entry *e = entry_lookup(b, a->id);

	if (r < 0) {
		/* state: in flight again (stored if its consumer left meanwhile) */
		if (e)
			e->acking = false;
		if (a->done)
			a->done(a->ctx, r);
		return;
	}
	/* state: acked (e is gone already if it expired meanwhile) */
	if (e) {
		b->acked++;
		emit_entry(b, BROKER_EVENT_ACKED, e);
	}
	/* answer: 200 (acked) */
	waiters_answer(b, a->id, 200, "OK", 0);
	if (e)
		entry_drop(b, e);
	if (a->done)
		a->done(a->ctx, 0);
}

/* The ACKs of one pass: their deletes in one transaction that is not
 * fsync'd (spool_remove_batch) — a kill -9 after it keeps them, a power
 * loss may bring them back (at-least-once, docs/behaviour.md) — so a
 * consumer's ACK never waits for the disk; then each is confirmed. */
static void acks_commit(struct broker *b, GPtrArray *acks)
{
	g_autofree int64_t *ids = g_new(int64_t, acks->len + 1);
	int r;

	for (guint i = 0; i < acks->len; i++)
		ids[i] = ((struct broker_ack *)g_ptr_array_index(acks, i))->id;
	r = spool_remove_batch(b->spool, ids, acks->len);
	if (r < 0)
		g_warning("spool: cannot commit %u ACK(s): %s", acks->len,
			  spool_errmsg(b->spool));
	for (guint i = 0; i < acks->len; i++)
		ack_finish(b, g_ptr_array_index(acks, i), r < 0 ? r : 0);
	if (r >= 0)
		purge_soon(b);
}

/* The MESSAGEs of one pass: stored in one durable transaction, then each
 * answered by its outcome. */
static void stores_commit(struct broker *b, GPtrArray *batch)
{
	g_autofree struct spool_record **recs = g_new(struct spool_record *, batch->len + 1);
	g_autofree int *results = g_new0(int, batch->len + 1);
	int r;

	for (guint i = 0; i < batch->len; i++)
		recs[i] = &((struct pending *)g_ptr_array_index(batch, i))->rec;
	r = spool_store_batch(b->spool, recs, batch->len, results);
	if (r < 0)
		g_warning("spool: cannot commit %u message(s): %s", batch->len,
			  spool_errmsg(b->spool));
	batch_answer(b, batch, r < 0 ? r : 0, results);
}

/* Group commit: every ACK received since the last one, then every MESSAGE
 * accepted, each set in one transaction, then their confirmations and
 * answers, then one dispatch. */
static void batch_commit(struct broker *b)
{
	GPtrArray *batch = b->batch, *acks = b->acks;

	if (!batch->len && !acks->len)
		return;
	/* Answers run foreign code: later arrivals start a new batch. */
	b->batch = g_ptr_array_new_with_free_func((GDestroyNotify)pending_free);
	b->batch_bytes = 0;
	b->acks = g_ptr_array_new_with_free_func(g_free);
	if (acks->len)
		acks_commit(b, acks);
	if (batch->len)
		stores_commit(b, batch);
	g_ptr_array_unref(acks);
	g_ptr_array_unref(batch);
	dispatch(b);
}

/* The group commit, now (stopping, or the batch is full). */
static void flush_now(struct broker *b)
{
	if (b->flush_idle)
		g_source_remove(b->flush_idle);
	b->flush_idle = 0;
	batch_commit(b);
}

static gboolean on_flush(gpointer data)
{
	struct broker *b = data;

	b->flush_idle = 0;
	flush_now(b);
	return G_SOURCE_REMOVE;
}

/* Once per main-loop iteration: the SIP source delivers every MESSAGE the
 * stack thread queued (more pile up while a commit runs) and the socket
 * source every ACK, then this idle commits them together. */
static void flush_soon(struct broker *b)
{
	if (!b->flush_idle)
		b->flush_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_flush, b, NULL);
}

void broker_accept(struct broker *b, struct spool_record *rec,
		   broker_answer_fn answer, void *ctx)
{
	struct pending *p;

	if (spool_record_check(rec) < 0) {
		refuse(b, rec, 500, "Server Internal Error (cannot store message)", answer, ctx);
		return;
	}
	if (!spool_has_room(b, rec->payload_len)) {
		refuse(b, rec, 503, "Service Unavailable (spool full)", answer, ctx);
		return;
	}
	p = g_new0(struct pending, 1);
	p->rec = *rec;  /* takes the contents */
	memset(rec, 0, sizeof(*rec));
	p->answer = answer;
	p->ctx = ctx;
	g_ptr_array_add(b->batch, p);
	b->batch_bytes += p->rec.payload_len;
	if (b->stopping || b->batch->len >= BROKER_BATCH_MAX)
		flush_now(b);
	else
		flush_soon(b);
}

void broker_rejected(struct broker *b, unsigned status, const char *reason)
{
	struct broker_event ev = {
		.kind = BROKER_EVENT_REJECTED, .sip_status = status, .reason = reason,
	};

	b->rejected++;
	emit(b, &ev);
}

/* --- consumers --- */

static void slot_release_messages(struct broker *b, struct consumer_slot *slot)
{
	for (GList *l = b->entries.head; l; l = l->next) {
		struct entry *e = l->data;

		if (e->in_flight == slot)
			e->in_flight = NULL;  /* state: stored (released: consumer gone) */
	}
}

static void slot_free(gpointer data)
{
	struct consumer_slot *slot = data;

	g_ptr_array_unref(slot->types);
	g_free(slot);
}

/* Takes lmr_type away from its current holder (takeover). */
static void slot_forget_type(struct consumer_slot *slot, const char *type)
{
	for (guint i = 0; i < slot->types->len; i++)
		if (!strcmp(g_ptr_array_index(slot->types, i), type)) {
			g_ptr_array_remove_index_fast(slot->types, i);
			return;
		}
}

static void take_type(struct broker *b, struct consumer_slot *old, const char *type)
{
	g_hash_table_remove(b->holders, type);
	slot_forget_type(old, type);
	for (GList *l = b->entries.head; l; l = l->next) {
		struct entry *e = l->data;

		if (e->in_flight == old && holder_for(b, e->lmr_type) != old)
			e->in_flight = NULL;  /* state: stored (released: taken over) */
	}
	if (old->lost)
		old->lost(old->consumer, type);
}

static int check_holders(struct broker *b, const char *const *types,
			 struct consumer_slot *self, bool takeover,
			 const char **holder_type)
{
	for (const char *const *t = types; *t; t++) {
		struct consumer_slot *h = g_hash_table_lookup(b->holders, *t);

		if (h && h != self && !takeover) {
			if (holder_type)
				*holder_type = *t;
			return -EBUSY;
		}
	}
	return 0;
}

static struct consumer_slot *slot_get(struct broker *b, void *consumer)
{
	struct consumer_slot *slot = g_hash_table_lookup(b->slots, consumer);

	if (slot)
		return slot;
	slot = g_new0(struct consumer_slot, 1);
	slot->consumer = consumer;
	slot->types = g_ptr_array_new_with_free_func(g_free);
	g_hash_table_insert(b->slots, consumer, slot);
	return slot;
}

int broker_subscribe(struct broker *b, void *consumer, const char *const *types,
		     bool takeover, broker_deliver_fn deliver, broker_lost_fn lost,
		     const char **holder_type)
{
	struct consumer_slot *slot;
	int r;

	if (!types || !*types)
		return -EINVAL;
	r = check_holders(b, types, g_hash_table_lookup(b->slots, consumer), takeover,
			  holder_type);
	if (r < 0)
		return r;
	slot = slot_get(b, consumer);
	slot->deliver = deliver;
	slot->lost = lost;
	for (const char *const *t = types; *t; t++) {
		struct consumer_slot *h = g_hash_table_lookup(b->holders, *t);
		char *type;

		if (h == slot)
			continue;
		if (h)
			take_type(b, h, *t);
		type = g_strdup(*t);
		g_ptr_array_add(slot->types, type);
		g_hash_table_insert(b->holders, type, slot);
	}
	dispatch(b);
	return 0;
}

void broker_unsubscribe(struct broker *b, void *consumer)
{
	struct consumer_slot *slot = g_hash_table_lookup(b->slots, consumer);

	if (!slot)
		return;
	/* After a takeover the types are another slot's: leave those alone. */
	for (guint i = 0; i < slot->types->len; i++) {
		const char *type = g_ptr_array_index(slot->types, i);

		if (g_hash_table_lookup(b->holders, type) == slot)
			g_hash_table_remove(b->holders, type);
	}
	slot_release_messages(b, slot);
	g_hash_table_remove(b->slots, consumer);
	dispatch(b);
}

void broker_consumer_ready(struct broker *b, void *consumer)
{
	struct consumer_slot *slot = g_hash_table_lookup(b->slots, consumer);

	if (!slot || !slot->blocked)
		return;
	slot->blocked = false;
	dispatch(b);
}

static struct entry *in_flight_to(struct broker *b, void *consumer, int64_t id)
{
	struct consumer_slot *slot = g_hash_table_lookup(b->slots, consumer);
	struct entry *e = entry_lookup(b, id);

	return slot && e && e->in_flight == slot && !e->acking ? e : NULL;
}

int broker_ack(struct broker *b, void *consumer, int64_t id,
	       broker_ack_done_fn done, void *ctx, struct broker_ack **handle)
{
	struct entry *e = in_flight_to(b, consumer, id);
	struct broker_ack *a;

	if (!e)
		return -ENOENT;
	/* The deletion is committed before done confirms the ACK, so a crash
	 * of the agent after a confirmed ACK never brings the message back;
	 * the ACKs of one main-loop iteration share that commit (acks_commit). */
	/* state: acking */
	e->acking = true;
	a = g_new0(struct broker_ack, 1);
	a->id = id;
	a->done = done;
	a->ctx = ctx;
	g_ptr_array_add(b->acks, a);
	if (handle)
		*handle = a;
	flush_soon(b);  /* never at once: done must not run inside broker_ack */
	return 0;
}

void broker_ack_cancel(struct broker *b, struct broker_ack *a)
{
	(void)b;
	a->done = NULL;
	a->ctx = NULL;
}

int broker_nack(struct broker *b, void *consumer, int64_t id)
{
	struct entry *e = in_flight_to(b, consumer, id);

	if (!e)
		return -ENOENT;
	/* state: nacked */
	e->in_flight = NULL;
	e->not_before_us = g_get_real_time() + BROKER_NACK_DELAY_US;
	emit_entry(b, BROKER_EVENT_NACKED, e);
	/* answer: 480 (NACK) — the IWF's retry finds it spooled and waits again */
	waiters_answer(b, id, 480, BROKER_480 " (consumer refused the message)",
		       BROKER_RETRY_AFTER_S);
	schedule_dispatch(b, BROKER_NACK_DELAY_US);
	return 0;
}

/* --- expiry (message-ttl) --- */

static int on_expired(const struct spool_record *rec, void *user)
{
	struct broker *b = user;
	struct entry *e = entry_lookup(b, rec->id);

	/* state: expired (logged by the log observer, log.c) */
	b->expired++;
	emit_message(b, BROKER_EVENT_EXPIRED, rec->id, rec->lmr_type, rec->payload_len,
		     rec->fingerprint);
	/* answer: 480 (expired) */
	waiters_answer(b, rec->id, 480, BROKER_480 " (message expired)",
		       BROKER_RETRY_AFTER_S);
	if (e)
		entry_drop(b, e);
	return 0;
}

static void expire_now(struct broker *b)
{
	int64_t cutoff = g_get_real_time() - (int64_t)b->limits.message_ttl_s * G_USEC_PER_SEC;
	int n;

	n = spool_expire(b->spool, cutoff, on_expired, b);
	if (n < 0)
		g_warning("spool: expiry failed: %s", spool_errmsg(b->spool));
	if (spool_prune_seen(b->spool, cutoff) < 0)
		g_warning("spool: cannot forget old dedupe keys: %s", spool_errmsg(b->spool));
	if (n > 0)
		purge_soon(b);
}

static gboolean on_expire_timer(gpointer data)
{
	expire_now(data);
	return G_SOURCE_CONTINUE;
}

/* Often enough that a message outlives its TTL by at most half of it (and
 * at most a minute). */
static unsigned expire_period_s(const struct broker_limits *limits)
{
	return CLAMP(limits->message_ttl_s / 2, 1, BROKER_EXPIRE_PERIOD_MAX_S);
}

static gboolean on_first_expiry(gpointer data)
{
	struct broker *b = data;

	expire_now(b);
	b->expire_timer = g_timeout_add(expire_period_s(&b->limits) * 1000, on_expire_timer, b);
	return G_SOURCE_REMOVE;
}

/* --- sends --- */

static void send_free(struct broker_send *s)
{
	g_free(s->early_reason);
	if (s->timer)
		g_source_remove(s->timer);
	g_free((char *)s->req.lmr_type);
	g_free((char *)s->req.to);
	if (s->req.payload)
		explicit_bzero((uint8_t *)s->req.payload, s->req.payload_len);
	g_free((uint8_t *)s->req.payload);
	g_free(s);
}

static void send_finish(struct broker_send *s, int err, unsigned status,
			const char *reason)
{
	struct broker *b = s->broker;

	b->sends = g_list_remove(b->sends, s);
	if (status >= 200 && status < 300)
		b->sent++;
	s->done(s->ctx, err, status, reason);
	send_free(s);
}

static void on_sip_done(void *ctx, int err, unsigned status, const char *reason)
{
	struct broker_send *s = ctx;

	s->sip_handle = NULL;
	if (s->starting) {
		/* answered from inside send(): finish once send() has returned */
		s->done_early = true;
		s->early_err = err;
		s->early_status = status;
		s->early_reason = g_strdup(reason);
		return;
	}
	send_finish(s, err, status, reason);
}

static void send_start(struct broker *b, struct broker_send *s)
{
	void *handle;

	s->starting = true;
	handle = b->sip_ops->send(b->sip, &s->req, on_sip_done, s);
	s->starting = false;
	if (s->done_early) {
		g_autofree char *reason = g_steal_pointer(&s->early_reason);

		send_finish(s, s->early_err, s->early_status, reason);
		return;
	}
	s->sip_handle = handle;
}

static gboolean on_send_timeout(gpointer data)
{
	struct broker_send *s = data;
	struct broker *b = s->broker;

	s->timer = 0;
	if (s->sip_handle) {
		b->sip_ops->cancel(b->sip, s->sip_handle);
		s->sip_handle = NULL;
		send_finish(s, -ETIMEDOUT, 0, "no final SIP answer in time");
	} else {
		send_finish(s, -ENOTCONN, 0, "not registered");
	}
	return G_SOURCE_REMOVE;
}

struct broker_send *broker_send(struct broker *b, const struct broker_send_request *req,
				broker_send_done_fn done, void *ctx)
{
	struct broker_send *s = g_new0(struct broker_send, 1);

	s->broker = b;
	s->req = *req;
	s->req.lmr_type = g_strdup(req->lmr_type);
	s->req.to = g_strdup(req->to);
	s->req.payload = g_memdup2(req->payload, req->payload_len);
	s->done = done;
	s->ctx = ctx;
	s->timer = g_timeout_add(req->timeout_ms ? req->timeout_ms : 1, on_send_timeout, s);
	b->sends = g_list_append(b->sends, s);
	if (broker_is_registered(b) && b->sip_ops)
		send_start(b, s);
	return s;
}

void broker_send_cancel(struct broker *b, struct broker_send *s)
{
	if (s->sip_handle && b->sip_ops)
		b->sip_ops->cancel(b->sip, s->sip_handle);
	b->sends = g_list_remove(b->sends, s);
	send_free(s);
}

static void sends_resume(struct broker *b)
{
	GList *waiting = NULL;

	for (GList *l = b->sends; l; l = l->next)
		if (!((struct broker_send *)l->data)->sip_handle)
			waiting = g_list_append(waiting, l->data);
	for (GList *l = waiting; l; l = l->next)
		send_start(b, l->data);
	g_list_free(waiting);
}

/* --- registration and status --- */

static void replace_str(char **dst, const char *src)
{
	if (*dst == src)
		return;
	g_free(*dst);
	*dst = g_strdup(src);
}

void broker_set_registration(struct broker *b, const struct broker_registration *reg)
{
	enum broker_reg_state was = b->reg.state;
	bool changed = was != reg->state || b->reg.last_status != reg->last_status;

	b->reg.state = reg->state;
	replace_str(&b->reg.aor, reg->aor);
	replace_str(&b->reg.registrar, reg->registrar);
	replace_str(&b->reg.transport, reg->transport);
	replace_str(&b->reg.last_reason, reg->last_reason);
	b->reg.expires_at_us = reg->expires_at_us;
	b->reg.next_retry_us = reg->next_retry_us;
	b->reg.last_status = reg->last_status;
	if (was != reg->state)
		g_message("registration: %s -> %s (last answer %u %s)",
			  broker_reg_state_name(was), broker_reg_state_name(reg->state),
			  reg->last_status, reg->last_reason ? reg->last_reason : "");
	if (changed) {
		struct broker_event ev = {
			.kind = BROKER_EVENT_REGISTRATION, .reg_state = reg->state,
			.sip_status = reg->last_status, .reason = reg->last_reason,
		};

		emit(b, &ev);
	}
	if (reg->state == BROKER_REG_REGISTERED && b->sip_ops)
		sends_resume(b);
}

bool broker_is_registered(const struct broker *b)
{
	return b->reg.state == BROKER_REG_REGISTERED;
}

void broker_get_status(struct broker *b, struct broker_status *out)
{
	GHashTableIter it;
	gpointer key;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	out->reg.state = b->reg.state;
	out->reg.aor = b->reg.aor;
	out->reg.registrar = b->reg.registrar;
	out->reg.transport = b->reg.transport;
	out->reg.expires_at_us = b->reg.expires_at_us;
	out->reg.next_retry_us = b->reg.next_retry_us;
	out->reg.last_status = b->reg.last_status;
	out->reg.last_reason = b->reg.last_reason;
	out->spool_messages = b->spool_messages;
	out->spool_bytes = b->spool_bytes;
	out->received = b->received;
	out->delivered = b->delivered;
	out->acked = b->acked;
	out->rejected = b->rejected;
	out->sent = b->sent;
	out->expired = b->expired;
	g_hash_table_iter_init(&it, b->holders);
	while (n + 1 < G_N_ELEMENTS(out->consumer_types) &&
	       g_hash_table_iter_next(&it, &key, NULL))
		out->consumer_types[n++] = key;
	out->consumer_types[n] = NULL;
}

/* --- spool listing --- */

struct list_walk {
	struct broker *broker;
	broker_list_fn fn;
	void *ctx;
};

static int list_one(const struct spool_record *rec, void *user)
{
	struct list_walk *w = user;
	struct entry *e = entry_lookup(w->broker, rec->id);

	return w->fn(w->ctx, rec, e && (e->in_flight || e->acking));
}

int broker_list(struct broker *b, int64_t after_id, size_t limit,
		broker_list_fn fn, void *ctx)
{
	struct list_walk w = { b, fn, ctx };
	int r = spool_list(b->spool, after_id, limit, list_one, &w);

	return r < 0 ? r : 0;
}

/* --- life cycle --- */

static int reload_one(const struct spool_record *rec, void *user)
{
	/* state: stored (reloaded after a restart) */
	entry_add(user, rec);
	return 0;
}

int broker_new(struct spool *spool, const struct broker_limits *limits,
	       struct broker **out, char **error)
{
	struct broker *b = g_new0(struct broker, 1);
	int r;

	b->spool = spool;
	b->limits = *limits;
	g_queue_init(&b->entries);
	g_queue_init(&b->waiters);
	b->batch = g_ptr_array_new_with_free_func((GDestroyNotify)pending_free);
	b->acks = g_ptr_array_new_with_free_func(g_free);
	b->by_id = g_hash_table_new(g_int64_hash, g_int64_equal);
	b->holders = g_hash_table_new(g_str_hash, g_str_equal);
	b->slots = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, slot_free);
	b->observers = g_array_new(FALSE, FALSE, sizeof(struct observer));
	r = spool_foreach(spool, reload_one, b);
	if (r < 0) {
		*error = g_strdup_printf("cannot reload the spool: %s", spool_errmsg(spool));
		broker_free(b);
		return r;
	}
	if (b->spool_messages)
		g_message("spool: %" G_GUINT64_FORMAT " message(s) kept from before, "
			  "waiting for their consumers", b->spool_messages);
	purge_now(b);  /* what a crash left in the WAL after an ACK */
	/* First thing in the main loop, once the caller added its observers:
	 * what expired while the agent was down is reported, not dropped
	 * silently, and never delivered. */
	b->expire_timer = g_idle_add_full(G_PRIORITY_HIGH, on_first_expiry, b, NULL);
	*out = b;
	return 0;
}

void broker_set_sip(struct broker *b, const struct broker_sip_ops *ops, void *sip)
{
	b->sip_ops = ops;
	b->sip = sip;
}

void broker_shutdown(struct broker *b)
{
	guint n;

	b->stopping = true;
	flush_now(b);  /* answered now: 200, or 480 in ack-mode delivered */
	n = b->waiters.length;
	if (n)
		g_message("stopping: answering %u waiting MESSAGE(s) 480; their messages "
			  "stay in the spool", n);
	while (b->waiters.head)
		/* answer: 480 (agent stopping) */
		waiter_finish(b->waiters.head->data, 480, BROKER_480 " (agent stopping)",
			      BROKER_RETRY_AFTER_S);
}

/* Without broker_shutdown first the SIP side is gone: nobody to answer. */
static void waiters_drop(struct broker *b)
{
	struct waiter *w;

	if (b->waiters.length)
		g_warning("%u deferred answer(s) dropped unanswered", b->waiters.length);
	while ((w = g_queue_pop_head(&b->waiters))) {
		if (w->timer)
			g_source_remove(w->timer);
		g_free(w);
	}
}

/* Without broker_shutdown first: MESSAGEs not committed yet are neither
 * stored nor answered (the IWF will send them again). */
static void batch_drop(struct broker *b)
{
	if (b->flush_idle)
		g_source_remove(b->flush_idle);
	b->flush_idle = 0;
	if (b->batch->len)
		g_warning("%u MESSAGE(s) dropped before their commit, unanswered",
			  b->batch->len);
	g_ptr_array_set_size(b->batch, 0);
	b->batch_bytes = 0;
	/* unconfirmed ACKs: their messages come back after a restart */
	g_ptr_array_set_size(b->acks, 0);
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	while (b->sends)
		broker_send_cancel(b, b->sends->data);
	waiters_drop(b);
	batch_drop(b);
	if (b->purge_timer)
		purge_now(b);
	if (b->retry_timer)
		g_source_remove(b->retry_timer);
	if (b->expire_timer)
		g_source_remove(b->expire_timer);
	if (b->purge_timer)
		g_source_remove(b->purge_timer);
	g_hash_table_destroy(b->holders);
	g_hash_table_destroy(b->slots);
	g_hash_table_destroy(b->by_id);
	g_queue_clear_full(&b->entries, (GDestroyNotify)entry_free);
	g_array_unref(b->observers);
	g_ptr_array_unref(b->batch);
	g_ptr_array_unref(b->acks);
	g_free(b->reg.aor);
	g_free(b->reg.registrar);
	g_free(b->reg.transport);
	g_free(b->reg.last_reason);
	spool_close(b->spool);  /* the broker owns it, also after a failed start */
	g_free(b);
}
