/*
 * test-broker.c — the broker (agent/broker.c) against a real spool in a
 * mkdtemp directory; the test plays both adapters (fake consumers, a fake
 * SIP answer) and iterates the GLib default main context itself, so the
 * broker's timers (NACK delay, delivery timeout, expiry, purge) really run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "broker.h"
#include "spool.h"

#define TTL_DAY (24 * 3600)
#define MAX_SEEN 16

/* --- fake consumers --- */

struct consumer {
	const char *name;
	int64_t got[MAX_SEEN];      /* ids delivered, in order */
	size_t n_got;
	uint8_t first_byte[MAX_SEEN];
	bool refuse;                /* deliver returns -EAGAIN */
	char lost[32];              /* last type lost to a takeover */
};

static int deliver(void *cv, const struct spool_record *msg)
{
	struct consumer *c = cv;

	if (c->refuse)
		return -EAGAIN;
	assert_true(c->n_got < MAX_SEEN);
	assert_non_null(msg->payload);
	c->first_byte[c->n_got] = msg->payload[0];
	c->got[c->n_got++] = msg->id;
	return 0;
}

static void lost(void *cv, const char *type)
{
	struct consumer *c = cv;

	g_strlcpy(c->lost, type, sizeof(c->lost));
}

/* --- the SIP side's answer --- */

struct answer {
	int count;
	unsigned status;
	char reason[128];
	unsigned retry_after;
};

static void on_answer(void *ctx, unsigned status, const char *reason,
		      unsigned retry_after_s)
{
	struct answer *a = ctx;

	a->count++;
	a->status = status;
	g_strlcpy(a->reason, reason, sizeof(a->reason));
	a->retry_after = retry_after_s;
}

/* --- events --- */

struct seen_event {
	enum broker_event_kind kind;
	int64_t id;
	char lmr_type[32];
	size_t size;
	bool has_fingerprint;
	unsigned sip_status;
};

struct events {
	struct seen_event ev[64];
	size_t n;
};

static void on_event(void *ctx, const struct broker_event *ev)
{
	struct events *e = ctx;
	struct seen_event *s;

	assert_true(e->n < G_N_ELEMENTS(e->ev));
	s = &e->ev[e->n++];
	s->kind = ev->kind;
	s->id = ev->id;
	g_strlcpy(s->lmr_type, ev->lmr_type ? ev->lmr_type : "", sizeof(s->lmr_type));
	s->size = ev->size;
	s->has_fingerprint = ev->fingerprint != NULL;
	s->sip_status = ev->sip_status;
	assert_true(ev->time_us > 0);
}

static const struct seen_event *find_event(const struct events *e,
					   enum broker_event_kind kind, size_t nth)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->ev[i].kind == kind && nth-- == 0)
			return &e->ev[i];
	return NULL;
}

static size_t count_events(const struct events *e, enum broker_event_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += e->ev[i].kind == kind;
	return n;
}

/* --- fixture --- */

struct fx {
	char dir[64];
	char path[128];
	struct broker_limits limits;
	struct broker *b;
	struct events events;
};

static const struct broker_limits default_limits = {
	.ack_mode = BROKER_ACK_STORED,
	.delivery_timeout_s = 1,
	.max_messages = 100,
	.max_bytes = 1 << 20,
	.message_ttl_s = TTL_DAY,
};

static void fx_open(struct fx *f)
{
	struct spool *spool;
	char *err = NULL;

	assert_int_equal(spool_open(f->path, &spool, &err), 0);
	assert_int_equal(broker_new(spool, &f->limits, &f->b, &err), 0);
	broker_add_observer(f->b, on_event, &f->events);
}

static int setup_with(void **state, const struct broker_limits *limits)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/test-broker.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/spool.db", f->dir);
	f->limits = *limits;
	fx_open(f);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, &default_limits);
}

static int setup_delivered(void **state)
{
	struct broker_limits l = default_limits;

	l.ack_mode = BROKER_ACK_DELIVERED;
	return setup_with(state, &l);
}

static int setup_small(void **state)
{
	struct broker_limits l = default_limits;

	l.max_messages = 2;
	l.max_bytes = 300;
	return setup_with(state, &l);
}

static int setup_ttl(void **state)
{
	struct broker_limits l = default_limits;

	l.message_ttl_s = 2;
	return setup_with(state, &l);
}

static void remove_dir(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		char *p = g_build_filename(dir, name, NULL);

		g_unlink(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(dir);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->b)
		broker_shutdown(f->b);
	broker_free(f->b);
	remove_dir(f->dir);
	free(f);
	return 0;
}

/* Restart: the broker and its spool connection go, a new one reloads. */
static void fx_restart(struct fx *f)
{
	broker_shutdown(f->b);
	broker_free(f->b);
	f->b = NULL;
	fx_open(f);
}

/* --- the main loop --- */

static gboolean on_deadline(gpointer data)
{
	*(bool *)data = true;
	return G_SOURCE_REMOVE;
}

/* Runs the default main context for ms milliseconds. */
static void run_for(unsigned ms)
{
	bool done = false;

	g_timeout_add(ms, on_deadline, &done);
	while (!done)
		g_main_context_iteration(NULL, TRUE);
}

/* Runs what is ready now without waiting: the group commit's idle (the
 * accepted MESSAGEs are stored and answered) and the deletes of ACKs. */
static void settle(void)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
}

/* Runs the main context until *counter reaches want or ms pass; true when
 * it did. */
static bool run_until(const size_t *counter, size_t want, unsigned ms)
{
	bool done = false;
	guint id = g_timeout_add(ms, on_deadline, &done);

	while (!done && *counter < want)
		g_main_context_iteration(NULL, TRUE);
	if (!done)
		g_source_remove(id);
	return *counter >= want;
}

/* --- incoming messages --- */

/* A record as inbound.c makes one: payload of len bytes valued fill. */
static void make_record(struct spool_record *rec, const char *type,
			const char *dedupe_key, uint8_t fill, size_t len)
{
	memset(rec, 0, sizeof(*rec));
	rec->received_us = g_get_real_time();
	rec->lmr_type = strdup(type);
	rec->kmf_uri = strdup("sip:kmf@iwf.test");
	rec->mc_service_id = strdup("sip:alice@mc.test");
	rec->sender = strdup("sip:kmf@iwf.test");
	rec->dedupe_key = dedupe_key ? strdup(dedupe_key) : NULL;
	rec->payload = malloc(len);
	memset(rec->payload, fill, len);
	rec->payload_len = len;
	memset(rec->fingerprint, fill, sizeof(rec->fingerprint));
}

/* Accepted, not yet committed: the answer waits for the group commit. */
static void queue_msg(struct fx *f, const char *type, const char *key, uint8_t fill,
		      broker_answer_fn answer, void *ctx)
{
	struct spool_record rec;

	make_record(&rec, type, key, fill, 100);
	broker_accept(f->b, &rec, answer, ctx);
	assert_null(rec.payload);  /* the broker took and cleared it */
}

/* One MESSAGE and the main-loop iteration that commits it. */
static void send_sized(struct fx *f, const char *type, const char *key,
		       uint8_t fill, size_t len, struct answer *a)
{
	struct spool_record rec;

	make_record(&rec, type, key, fill, len);
	broker_accept(f->b, &rec, on_answer, a);
	assert_null(rec.payload);  /* the broker took and cleared it */
	settle();
}

static void send_msg(struct fx *f, const char *type, const char *key, uint8_t fill,
		     struct answer *a)
{
	send_sized(f, type, key, fill, 100, a);
}

static void subscribe(struct fx *f, struct consumer *c, const char *type)
{
	const char *types[] = { type, NULL };

	assert_int_equal(broker_subscribe(f->b, c, types, false, deliver, lost, NULL), 0);
}

/* --- ACKs --- */

struct ack_result {
	int count;
	int err;
	const char *path;           /* set: count committed rows at confirmation */
	int64_t rows_at_done;
};

static int64_t committed_rows(const char *path);

static void on_ack_done(void *ctx, int err)
{
	struct ack_result *r = ctx;

	r->count++;
	r->err = err;
	if (r->path)
		r->rows_at_done = committed_rows(r->path);
}

/* An ACK and the main-loop iteration that commits it: its outcome, or
 * broker_ack's refusal. */
static int ack_now(struct fx *f, struct consumer *c, int64_t id)
{
	struct ack_result r = { 0 };
	int e;

	e = broker_ack(f->b, c, id, on_ack_done, &r, NULL);
	if (e < 0) {
		assert_int_equal(r.count, 0);
		return e;
	}
	assert_int_equal(r.count, 0);  /* never inside broker_ack */
	settle();
	assert_int_equal(r.count, 1);
	return r.err;
}

static struct broker_status status_of(struct fx *f)
{
	struct broker_status st;

	broker_get_status(f->b, &st);
	return st;
}

/* --- routing and order --- */

static void test_routes_by_type_and_star(void **state)
{
	struct fx *f = *state;
	struct consumer tetra = { .name = "tetra" }, any = { .name = "any" };
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };

	subscribe(f, &tetra, "TETRA");
	subscribe(f, &any, "*");
	send_msg(f, "TETRA", "k1", 1, &a1);
	send_msg(f, "P25", "k2", 2, &a2);
	send_msg(f, "DMR", "k3", 3, &a3);
	assert_int_equal(a1.status, 200);
	assert_int_equal(a2.status, 200);
	assert_int_equal(tetra.n_got, 1);
	assert_int_equal(tetra.first_byte[0], 1);
	assert_int_equal(any.n_got, 2);
	assert_int_equal(any.first_byte[0], 2);
	assert_int_equal(any.first_byte[1], 3);
}

static void test_arrival_order(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a[4] = { 0 };

	for (int i = 0; i < 4; i++)
		send_msg(f, "TETRA", NULL, (uint8_t)(10 + i), &a[i]);
	assert_int_equal(status_of(f).spool_messages, 4);
	subscribe(f, &c, "TETRA");
	assert_int_equal(c.n_got, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(c.first_byte[i], 10 + i);
		if (i)
			assert_true(c.got[i] > c.got[i - 1]);
	}
}

static void test_order_survives_restart(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a[3] = { 0 };

	for (int i = 0; i < 3; i++)
		send_msg(f, "TETRA", NULL, (uint8_t)(20 + i), &a[i]);
	fx_restart(f);
	assert_int_equal(status_of(f).spool_messages, 3);
	subscribe(f, &c, "TETRA");
	assert_int_equal(c.n_got, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c.first_byte[i], 20 + i);
}

/* --- ACK, NACK, disconnect --- */

static void test_ack_removes(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 5, &a);
	assert_int_equal(c.n_got, 1);
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	assert_int_equal(ack_now(f, &c, c.got[0]), -ENOENT);
	assert_int_equal(status_of(f).spool_messages, 0);
	assert_int_equal(status_of(f).acked, 1);
	fx_restart(f);
	assert_int_equal(status_of(f).spool_messages, 0);
}

static void test_ack_by_other_consumer_refused(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" }, other = { .name = "other" };
	struct answer a = { 0 };

	subscribe(f, &c, "TETRA");
	subscribe(f, &other, "P25");
	send_msg(f, "TETRA", "k", 5, &a);
	assert_int_equal(ack_now(f, &other, c.got[0]), -ENOENT);
	assert_int_equal(broker_nack(f->b, &other, c.got[0]), -ENOENT);
	assert_int_equal(status_of(f).spool_messages, 1);
}

static void test_nack_reoffers_after_delay(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };
	int64_t id;

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 7, &a);
	id = c.got[0];
	assert_int_equal(broker_nack(f->b, &c, id), 0);
	run_for(300);
	assert_int_equal(c.n_got, 1);  /* not at once: a refusing consumer cannot spin us */
	assert_true(run_until(&c.n_got, 2, 3000));
	assert_int_equal(c.got[1], id);
	assert_int_equal(status_of(f).spool_messages, 1);
	assert_int_equal(ack_now(f, &c, id), 0);
}

static void test_disconnect_returns_in_flight(void **state)
{
	struct fx *f = *state;
	struct consumer c1 = { .name = "c1" }, c2 = { .name = "c2" };
	struct answer a1 = { 0 }, a2 = { 0 };

	subscribe(f, &c1, "TETRA");
	send_msg(f, "TETRA", "k1", 1, &a1);
	send_msg(f, "TETRA", "k2", 2, &a2);
	assert_int_equal(c1.n_got, 2);
	assert_int_equal(ack_now(f, &c1, c1.got[0]), 0);
	broker_unsubscribe(f->b, &c1);
	subscribe(f, &c2, "TETRA");
	assert_int_equal(c2.n_got, 1);
	assert_int_equal(c2.got[0], c1.got[1]);
	assert_int_equal(ack_now(f, &c1, c1.got[1]), -ENOENT);
	assert_int_equal(ack_now(f, &c2, c2.got[0]), 0);
}

static void test_blocked_consumer_resumes_when_ready(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c", .refuse = true };
	struct answer a = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 1, &a);
	assert_int_equal(c.n_got, 0);
	c.refuse = false;
	broker_consumer_ready(f->b, &c);
	assert_int_equal(c.n_got, 1);
}

/* --- one consumer per type --- */

static void test_second_consumer_busy_without_takeover(void **state)
{
	struct fx *f = *state;
	struct consumer c1 = { .name = "c1" }, c2 = { .name = "c2" };
	const char *types[] = { "P25", "TETRA", NULL };
	const char *holder = NULL;

	subscribe(f, &c1, "TETRA");
	assert_int_equal(broker_subscribe(f->b, &c2, types, false, deliver, lost, &holder),
			 -EBUSY);
	assert_string_equal(holder, "TETRA");
	/* refused whole: c2 did not get P25 either */
	assert_null(status_of(f).consumer_types[1]);
}

static void test_takeover(void **state)
{
	struct fx *f = *state;
	struct consumer old = { .name = "old" }, new = { .name = "new" };
	const char *types[] = { "TETRA", NULL };
	struct answer a1 = { 0 }, a2 = { 0 };
	struct broker_status st;

	subscribe(f, &old, "TETRA");
	send_msg(f, "TETRA", "k1", 1, &a1);
	assert_int_equal(old.n_got, 1);
	assert_int_equal(broker_subscribe(f->b, &new, types, true, deliver, lost, NULL), 0);
	assert_string_equal(old.lost, "TETRA");
	/* the old holder's unacked message goes to the new one */
	assert_int_equal(new.n_got, 1);
	assert_int_equal(new.got[0], old.got[0]);
	assert_int_equal(ack_now(f, &old, old.got[0]), -ENOENT);

	/* regression: the old consumer leaving must not remove the new holder */
	broker_unsubscribe(f->b, &old);
	st = status_of(f);
	assert_non_null(st.consumer_types[0]);
	assert_string_equal(st.consumer_types[0], "TETRA");
	send_msg(f, "TETRA", "k2", 2, &a2);
	assert_int_equal(new.n_got, 2);
	assert_int_equal(old.n_got, 1);
}

/* --- duplicates and bounds --- */

static void test_duplicate_answered_200_not_delivered_twice(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "call-1\n1\ntag", 1, &a1);
	send_msg(f, "TETRA", "call-1\n1\ntag", 1, &a2);  /* -EEXIST path */
	assert_int_equal(a1.status, 200);
	assert_int_equal(a2.status, 200);
	assert_int_equal(c.n_got, 1);
	assert_int_equal(status_of(f).received, 1);
	assert_int_equal(status_of(f).spool_messages, 1);

	/* after the ACK, and after a restart */
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	send_msg(f, "TETRA", "call-1\n1\ntag", 1, &a3);
	assert_int_equal(a3.status, 200);
	fx_restart(f);
	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "call-1\n1\ntag", 1, &a4);
	assert_int_equal(a4.status, 200);
	assert_int_equal(c.n_got, 1);
	assert_int_equal(status_of(f).spool_messages, 0);
}

static void test_full_spool_503(void **state)
{
	struct fx *f = *state;
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 };
	struct consumer c = { .name = "c" };

	send_sized(f, "TETRA", "k1", 1, 100, &a1);
	send_sized(f, "TETRA", "k2", 2, 100, &a2);
	send_sized(f, "TETRA", "k3", 3, 10, &a3);  /* max-messages 2 */
	assert_int_equal(a1.status, 200);
	assert_int_equal(a2.status, 200);
	assert_int_equal(a3.status, 503);
	assert_true(a3.retry_after > 0);
	assert_int_equal(status_of(f).rejected, 1);
	assert_non_null(find_event(&f->events, BROKER_EVENT_REJECTED, 0));
	assert_int_equal(find_event(&f->events, BROKER_EVENT_REJECTED, 0)->sip_status, 503);

	/* room for one message again, but not for 200 more bytes (max-bytes 300) */
	subscribe(f, &c, "TETRA");
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	send_sized(f, "TETRA", "k4", 4, 201, &a4);
	assert_int_equal(a4.status, 503);
	send_sized(f, "TETRA", "k4", 4, 200, &a4);
	assert_int_equal(a4.status, 200);
	assert_int_equal(status_of(f).spool_bytes, 300);
}

/* --- group commit --- */

/* Messages in the spool file, seen from a second connection: what is
 * committed, not what the broker's own transaction holds. */
static int64_t committed_rows(const char *path)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	int64_t n = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM message", -1, &st,
					    NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

struct checked_answer {
	struct answer a;
	const char *path;
	int64_t rows_at_answer;     /* committed messages when the answer came */
};

static void on_answer_checked(void *ctx, unsigned status, const char *reason,
			      unsigned retry_after_s)
{
	struct checked_answer *c = ctx;

	on_answer(&c->a, status, reason, retry_after_s);
	c->rows_at_answer = committed_rows(c->path);
}

/* MESSAGEs of one main-loop iteration share one commit, and none is
 * answered before it: at the first answer all three are committed. */
static void test_batch_answers_only_after_commit(void **state)
{
	struct fx *f = *state;
	struct checked_answer m[3];

	for (int i = 0; i < 3; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].path = f->path;
		m[i].rows_at_answer = -1;
		queue_msg(f, "TETRA", (const char *[]) { "k0", "k1", "k2" }[i],
			  (uint8_t)i, on_answer_checked, &m[i]);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(m[i].a.count, 0);
	assert_int_equal(committed_rows(f->path), 0);
	settle();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(m[i].a.count, 1);
		assert_int_equal(m[i].a.status, 200);
		assert_int_equal(m[i].rows_at_answer, 3);
	}
	assert_int_equal(status_of(f).received, 3);
	assert_int_equal(status_of(f).spool_messages, 3);
}

/* A failed commit answers 500 to every MESSAGE of its batch, 200 to none,
 * and keeps none of their dedupe keys: the IWF's re-send is new. */
static void test_batch_commit_failure_answers_500_to_all(void **state)
{
	struct fx *f = *state;
	struct answer a[3] = { 0 }, again = { 0 };
	const char *keys[] = { "k0", "k1", "k2" };
	sqlite3 *other = NULL;

	/* another writer holds the database past the spool's busy timeout */
	assert_int_equal(sqlite3_open_v2(f->path, &other, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 3; i++)
		queue_msg(f, "TETRA", keys[i], (uint8_t)i, on_answer, &a[i]);
	settle();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(a[i].count, 1);
		assert_int_equal(a[i].status, 500);
	}
	assert_int_equal(status_of(f).received, 0);
	assert_int_equal(status_of(f).rejected, 3);
	assert_int_equal(status_of(f).spool_messages, 0);
	assert_int_equal(count_events(&f->events, BROKER_EVENT_REJECTED), 3);
	assert_int_equal(count_events(&f->events, BROKER_EVENT_RECEIVED), 0);

	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	send_msg(f, "TETRA", keys[1], 1, &again);
	assert_int_equal(again.status, 200);
	assert_int_equal(status_of(f).received, 1);
}

/* A re-sent MESSAGE in the same batch as its first copy: both 200, one
 * message stored and delivered. */
static void test_batch_duplicate_inside(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };

	subscribe(f, &c, "TETRA");
	queue_msg(f, "TETRA", "call-1\n1\ntag", 1, on_answer, &a1);
	queue_msg(f, "TETRA", "call-1\n1\ntag", 1, on_answer, &a2);
	queue_msg(f, "TETRA", "call-2\n1\ntag", 2, on_answer, &a3);
	assert_int_equal(c.n_got, 0);
	settle();
	assert_int_equal(a1.status, 200);
	assert_int_equal(a2.status, 200);
	assert_int_equal(a3.status, 200);
	assert_int_equal(c.n_got, 2);
	assert_int_equal(c.first_byte[0], 1);
	assert_int_equal(c.first_byte[1], 2);
	assert_int_equal(status_of(f).received, 2);
	assert_int_equal(status_of(f).spool_messages, 2);
	assert_int_equal(committed_rows(f->path), 2);
}

/* MESSAGEs waiting for the commit count against the bounds. */
static void test_batch_counts_against_bounds(void **state)
{
	struct fx *f = *state;
	struct answer a[3] = { 0 };

	for (int i = 0; i < 3; i++)
		queue_msg(f, "TETRA", (const char *[]) { "k0", "k1", "k2" }[i],
			  (uint8_t)i, on_answer, &a[i]);
	assert_int_equal(a[2].count, 1);  /* max-messages 2: refused at once */
	assert_int_equal(a[2].status, 503);
	settle();
	assert_int_equal(a[0].status, 200);
	assert_int_equal(a[1].status, 200);
	assert_int_equal(status_of(f).spool_messages, 2);
}

/* An ACK is confirmed only after the commit that deleted its message, so
 * a crash after a confirmed ACK cannot bring the message back. */
static void test_ack_confirmed_only_after_commit(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 };
	struct ack_result r = { .path = f->path, .rows_at_done = -1 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k1", 1, &a1);
	send_msg(f, "TETRA", "k2", 2, &a2);
	assert_int_equal(committed_rows(f->path), 2);
	assert_int_equal(broker_ack(f->b, &c, c.got[0], on_ack_done, &r, NULL), 0);
	assert_int_equal(r.count, 0);
	assert_int_equal(committed_rows(f->path), 2);
	/* a second ACK (or a NACK) of it while the first waits: refused */
	assert_int_equal(broker_ack(f->b, &c, c.got[0], on_ack_done, &r, NULL), -ENOENT);
	assert_int_equal(broker_nack(f->b, &c, c.got[0]), -ENOENT);
	assert_int_equal(status_of(f).acked, 0);
	settle();
	assert_int_equal(r.count, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.rows_at_done, 1);
	assert_int_equal(status_of(f).acked, 1);
	assert_int_equal(status_of(f).spool_messages, 1);
	assert_int_equal(ack_now(f, &c, c.got[0]), -ENOENT);
}

/* ACKs of one main-loop iteration share one commit, made before the
 * durable commit of the MESSAGEs waiting with them (an ACK never waits
 * for the disk): at each confirmation all three deletes are committed and
 * the new MESSAGE not yet; it is answered 200 after its own commit. */
static void test_acks_commit_together_before_messages(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a[3] = { 0 }, late = { 0 };
	struct ack_result r[3];

	subscribe(f, &c, "TETRA");
	for (int i = 0; i < 3; i++)
		send_msg(f, "TETRA", (const char *[]) { "k0", "k1", "k2" }[i],
			 (uint8_t)i, &a[i]);
	assert_int_equal(c.n_got, 3);
	for (int i = 0; i < 3; i++) {
		r[i] = (struct ack_result) { .path = f->path, .rows_at_done = -1 };
		assert_int_equal(broker_ack(f->b, &c, c.got[i], on_ack_done, &r[i], NULL), 0);
	}
	queue_msg(f, "TETRA", "k3", 3, on_answer, &late);
	assert_int_equal(committed_rows(f->path), 3);
	settle();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].count, 1);
		assert_int_equal(r[i].err, 0);
		assert_int_equal(r[i].rows_at_done, 0);  /* k0..k2 gone, k3 not yet */
	}
	assert_int_equal(late.status, 200);
	assert_int_equal(status_of(f).acked, 3);
	assert_int_equal(status_of(f).spool_messages, 1);
	assert_int_equal(count_events(&f->events, BROKER_EVENT_ACKED), 3);
}

/* A failed commit fails each ACK in it: an error to each, no ACKED event,
 * the messages kept and still in flight (a retried ACK works). */
static void test_ack_commit_failure_keeps_messages(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a[2] = { 0 };
	struct ack_result r[2] = { 0 };
	sqlite3 *other = NULL;

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k0", 0, &a[0]);
	send_msg(f, "TETRA", "k1", 1, &a[1]);
	assert_int_equal(sqlite3_open_v2(f->path, &other, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 2; i++)
		assert_int_equal(broker_ack(f->b, &c, c.got[i], on_ack_done, &r[i], NULL), 0);
	settle();
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].count, 1);
		assert_true(r[i].err < 0);
	}
	assert_int_equal(status_of(f).acked, 0);
	assert_int_equal(status_of(f).spool_messages, 2);
	assert_int_equal(count_events(&f->events, BROKER_EVENT_ACKED), 0);
	assert_int_equal(c.n_got, 2);  /* not offered again: still in flight */
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(committed_rows(f->path), 2);
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	assert_int_equal(ack_now(f, &c, c.got[1]), 0);
	assert_int_equal(status_of(f).spool_messages, 0);
}

/* The consumer went away before its ACK's commit: no confirmation, and
 * the ACKed message is not offered to the next consumer meanwhile. */
static void test_ack_cancelled_when_consumer_leaves(void **state)
{
	struct fx *f = *state;
	struct consumer c1 = { .name = "c1" }, c2 = { .name = "c2" };
	struct answer a = { 0 };
	struct ack_result r = { 0 };
	struct broker_ack *h = NULL;

	subscribe(f, &c1, "TETRA");
	send_msg(f, "TETRA", "k0", 0, &a);
	assert_int_equal(broker_ack(f->b, &c1, c1.got[0], on_ack_done, &r, &h), 0);
	assert_non_null(h);
	broker_unsubscribe(f->b, &c1);
	broker_ack_cancel(f->b, h);
	subscribe(f, &c2, "TETRA");
	assert_int_equal(c2.n_got, 0);
	settle();
	assert_int_equal(r.count, 0);
	assert_int_equal(c2.n_got, 0);
	assert_int_equal(status_of(f).spool_messages, 0);
}

/* --- ack-mode delivered --- */

static void test_delivered_200_only_after_ack(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };
	struct ack_result r = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 1, &a);
	assert_int_equal(c.n_got, 1);
	assert_int_equal(a.count, 0);  /* deferred */
	run_for(200);
	assert_int_equal(a.count, 0);
	assert_int_equal(broker_ack(f->b, &c, c.got[0], on_ack_done, &r, NULL), 0);
	assert_int_equal(a.count, 0);  /* the 200 waits for the deletion's commit */
	settle();
	assert_int_equal(r.count, 1);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.status, 200);
	run_for(1300);  /* the delivery timer is gone: no second answer */
	assert_int_equal(a.count, 1);
}

static void test_delivered_480_without_consumer(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };

	send_msg(f, "P25", "k", 9, &a);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.status, 480);
	assert_true(a.retry_after > 0);
	/* kept: a consumer that comes later gets it */
	assert_int_equal(status_of(f).spool_messages, 1);
	subscribe(f, &c, "P25");
	assert_int_equal(c.n_got, 1);
	assert_int_equal(c.first_byte[0], 9);
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	assert_int_equal(a.count, 1);
}

static void test_delivered_480_after_timeout(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 1, &a);
	assert_int_equal(a.count, 0);
	run_for(1500);  /* delivery-timeout 1 s */
	assert_int_equal(a.count, 1);
	assert_int_equal(a.status, 480);
	assert_true(a.retry_after > 0);
	/* still spooled and in flight: a late ACK removes it, no second answer */
	assert_int_equal(status_of(f).spool_messages, 1);
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	assert_int_equal(a.count, 1);
}

static void test_delivered_nack_480(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 1, &a);
	assert_int_equal(broker_nack(f->b, &c, c.got[0]), 0);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.status, 480);
	assert_int_equal(status_of(f).spool_messages, 1);
}

static void test_delivered_resend_waits_with_first(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 1, &a1);
	send_msg(f, "TETRA", "k", 1, &a2);
	assert_int_equal(a1.count + a2.count, 0);
	assert_int_equal(c.n_got, 1);
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	assert_int_equal(a1.status, 200);
	assert_int_equal(a2.status, 200);
	/* re-sent once more after the ACK: 200 at once, nothing delivered */
	send_msg(f, "TETRA", "k", 1, &a3);
	assert_int_equal(a3.count, 1);
	assert_int_equal(a3.status, 200);
	assert_int_equal(c.n_got, 1);
}

static void test_delivered_shutdown_answers_480(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k1", 1, &a1);
	assert_int_equal(a1.count, 0);
	broker_shutdown(f->b);
	assert_int_equal(a1.count, 1);
	assert_int_equal(a1.status, 480);
	send_msg(f, "TETRA", "k2", 2, &a2);  /* while stopping: at once */
	assert_int_equal(a2.count, 1);
	assert_int_equal(a2.status, 480);
	assert_int_equal(status_of(f).spool_messages, 2);
}

/* --- expiry --- */

static void test_expiry_counted_and_reported(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 };
	const struct seen_event *ev;

	send_msg(f, "TETRA", "k", 1, &a1);
	assert_int_equal(a1.status, 200);
	assert_true(run_until(&f->events.n, 2, 5000));  /* RECEIVED, then EXPIRED */
	ev = find_event(&f->events, BROKER_EVENT_EXPIRED, 0);
	assert_non_null(ev);
	assert_string_equal(ev->lmr_type, "TETRA");
	assert_int_equal(ev->size, 100);
	assert_true(ev->has_fingerprint);
	assert_int_equal(status_of(f).expired, 1);
	assert_int_equal(status_of(f).spool_messages, 0);
	subscribe(f, &c, "TETRA");
	assert_int_equal(c.n_got, 0);  /* nothing delivered after expiry */

	/* the seen table was pruned on the same timer: a re-send is new */
	send_msg(f, "TETRA", "k", 1, &a2);
	assert_int_equal(a2.status, 200);
	assert_int_equal(status_of(f).received, 2);
	assert_int_equal(c.n_got, 1);
}

static void test_expired_at_start(void **state)
{
	struct fx *f = *state;
	struct spool_record rec;
	struct spool *spool;
	char *err = NULL;

	broker_free(f->b);
	f->b = NULL;
	assert_int_equal(spool_open(f->path, &spool, &err), 0);
	make_record(&rec, "TETRA", "old", 1, 10);
	rec.received_us -= 10 * G_USEC_PER_SEC;  /* older than the 2 s TTL */
	assert_int_equal(spool_store(spool, &rec), 0);
	spool_record_clear(&rec);
	spool_close(spool);
	memset(&f->events, 0, sizeof(f->events));
	fx_open(f);  /* observers are added after broker_new ... */
	assert_int_equal(status_of(f).expired, 0);
	/* ... and still see the expiry: it runs first thing in the main loop */
	assert_true(run_until(&f->events.n, 1, 1000));
	assert_non_null(find_event(&f->events, BROKER_EVENT_EXPIRED, 0));
	assert_int_equal(status_of(f).expired, 1);
	assert_int_equal(status_of(f).spool_messages, 0);
}

/* --- events --- */

static void test_events_carry_metadata(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };
	const struct seen_event *ev;
	int64_t id;

	subscribe(f, &c, "TETRA");
	send_sized(f, "TETRA", "k1", 1, 42, &a);
	id = c.got[0];
	assert_int_equal(broker_nack(f->b, &c, id), 0);
	assert_true(run_until(&c.n_got, 2, 3000));
	assert_int_equal(ack_now(f, &c, id), 0);
	broker_rejected(f->b, 403, "Forbidden (sender is not a trusted sender)");

	for (enum broker_event_kind k = BROKER_EVENT_RECEIVED; k <= BROKER_EVENT_NACKED; k++) {
		ev = find_event(&f->events, k, 0);
		assert_non_null(ev);
		assert_int_equal(ev->id, id);
		assert_string_equal(ev->lmr_type, "TETRA");
		assert_int_equal(ev->size, 42);
		assert_true(ev->has_fingerprint);
	}
	assert_int_equal(count_events(&f->events, BROKER_EVENT_DELIVERED), 2);
	assert_int_equal(count_events(&f->events, BROKER_EVENT_NACKED), 1);
	ev = find_event(&f->events, BROKER_EVENT_REJECTED, 0);
	assert_non_null(ev);
	assert_int_equal(ev->sip_status, 403);
	assert_int_equal(ev->id, 0);
	assert_string_equal(broker_event_name(BROKER_EVENT_EXPIRED), "expired");
}

/* --- purging removed payloads --- */

static off_t wal_size(const struct fx *f)
{
	char wal[160];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	return stat(wal, &st) == 0 ? st.st_size : 0;
}

static void test_wal_purged_soon_when_drained(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k", 1, &a);
	assert_true(wal_size(f) > 0);
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	run_for(600);  /* BROKER_PURGE_DELAY_MS, 250 ms */
	assert_int_equal(wal_size(f), 0);
}

static void test_wal_purged_soon_when_busy(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 };

	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k1", 1, &a1);
	send_msg(f, "TETRA", "k2", 2, &a2);
	assert_int_equal(ack_now(f, &c, c.got[0]), 0);
	assert_true(wal_size(f) > 0);  /* the queue did not drain */
	run_for(600);
	assert_int_equal(wal_size(f), 0);
	assert_int_equal(status_of(f).spool_messages, 1);
}

/* --- listing --- */

struct listing {
	int64_t ids[8];
	bool in_flight[8];
	size_t n;
};

static int list_one(void *ctx, const struct spool_record *msg, bool in_flight)
{
	struct listing *l = ctx;

	assert_null(msg->payload);
	l->in_flight[l->n] = in_flight;
	l->ids[l->n++] = msg->id;
	return 0;
}

static void test_list_metadata(void **state)
{
	struct fx *f = *state;
	struct consumer c = { .name = "c" };
	struct answer a1 = { 0 }, a2 = { 0 };
	struct listing l = { 0 };

	send_msg(f, "P25", "k1", 1, &a1);
	subscribe(f, &c, "TETRA");
	send_msg(f, "TETRA", "k2", 2, &a2);
	assert_int_equal(broker_list(f->b, 0, 0, list_one, &l), 0);
	assert_int_equal(l.n, 2);
	assert_false(l.in_flight[0]);
	assert_true(l.in_flight[1]);
	assert_int_equal(l.ids[1], c.got[0]);
}

/* --- client-initiated sends --- */

struct send_result {
	int calls;
	int err;
	unsigned status;
	char reason[64];
};

static void on_send_done(void *ctx, int err, unsigned status, const char *reason)
{
	struct send_result *r = ctx;

	r->calls++;
	r->err = err;
	r->status = status;
	g_strlcpy(r->reason, reason ? reason : "", sizeof(r->reason));
}

/* A SIP side that refuses at once, answering from inside send(). */
static void *send_refused_inline(void *sip, const struct broker_send_request *req,
				 broker_send_done_fn done, void *done_ctx)
{
	(void)sip;
	(void)req;
	done(done_ctx, -EINVAL, 0, "bad LMR type");
	return NULL;
}

/* A SIP side that answers 202 later, from the main loop. */
struct later {
	broker_send_done_fn done;
	void *ctx;
};

static gboolean answer_later(gpointer data)
{
	struct later *l = data;

	l->done(l->ctx, 0, 202, "Accepted");
	g_free(l);
	return G_SOURCE_REMOVE;
}

static void *send_answers_later(void *sip, const struct broker_send_request *req,
				broker_send_done_fn done, void *done_ctx)
{
	struct later *l = g_new0(struct later, 1);

	(void)sip;
	(void)req;
	l->done = done;
	l->ctx = done_ctx;
	g_idle_add(answer_later, l);
	return l;
}

static void no_cancel(void *sip, void *handle)
{
	(void)sip;
	(void)handle;
}

static void registered(struct fx *f)
{
	struct broker_registration reg = { .state = BROKER_REG_REGISTERED };

	broker_set_registration(f->b, &reg);
}

static void test_send_refused_inside_send(void **state)
{
	static const struct broker_sip_ops ops = { send_refused_inline, no_cancel };
	struct fx *f = *state;
	struct send_result r = { 0 };
	const uint8_t payload[] = "k";
	struct broker_send_request req = {
		.lmr_type = "TETRA", .payload = payload, .payload_len = 1, .timeout_ms = 1000,
	};

	registered(f);
	broker_set_sip(f->b, &ops, NULL);
	broker_send(f->b, &req, on_send_done, &r);   /* must not touch freed memory */
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, -EINVAL);
	assert_string_equal(r.reason, "bad LMR type");
}

static void test_send_answered_later(void **state)
{
	static const struct broker_sip_ops ops = { send_answers_later, no_cancel };
	struct fx *f = *state;
	struct send_result r = { 0 };
	const uint8_t payload[] = "k";
	struct broker_send_request req = {
		.lmr_type = "TETRA", .payload = payload, .payload_len = 1, .timeout_ms = 1000,
	};
	struct broker_status st;

	registered(f);
	broker_set_sip(f->b, &ops, NULL);
	broker_send(f->b, &req, on_send_done, &r);
	assert_int_equal(r.calls, 0);
	for (int i = 0; i < 100 && !r.calls; i++)
		g_main_context_iteration(NULL, TRUE);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 202);
	broker_get_status(f->b, &st);
	assert_int_equal(st.sent, 1);
}

#define T(fn, set) cmocka_unit_test_setup_teardown(fn, set, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_routes_by_type_and_star, setup),
		T(test_arrival_order, setup),
		T(test_order_survives_restart, setup),
		T(test_ack_removes, setup),
		T(test_ack_by_other_consumer_refused, setup),
		T(test_nack_reoffers_after_delay, setup),
		T(test_disconnect_returns_in_flight, setup),
		T(test_blocked_consumer_resumes_when_ready, setup),
		T(test_second_consumer_busy_without_takeover, setup),
		T(test_takeover, setup),
		T(test_duplicate_answered_200_not_delivered_twice, setup),
		T(test_full_spool_503, setup_small),
		T(test_batch_answers_only_after_commit, setup),
		T(test_batch_commit_failure_answers_500_to_all, setup),
		T(test_acks_commit_together_before_messages, setup),
		T(test_ack_commit_failure_keeps_messages, setup),
		T(test_ack_cancelled_when_consumer_leaves, setup),
		T(test_batch_duplicate_inside, setup),
		T(test_batch_counts_against_bounds, setup_small),
		T(test_ack_confirmed_only_after_commit, setup),
		T(test_delivered_200_only_after_ack, setup_delivered),
		T(test_delivered_480_without_consumer, setup_delivered),
		T(test_delivered_480_after_timeout, setup_delivered),
		T(test_delivered_nack_480, setup_delivered),
		T(test_delivered_resend_waits_with_first, setup_delivered),
		T(test_delivered_shutdown_answers_480, setup_delivered),
		T(test_expiry_counted_and_reported, setup_ttl),
		T(test_expired_at_start, setup_ttl),
		T(test_events_carry_metadata, setup),
		T(test_wal_purged_soon_when_drained, setup),
		T(test_wal_purged_soon_when_busy, setup),
		T(test_list_metadata, setup),
		T(test_send_refused_inside_send, setup),
		T(test_send_answered_later, setup),
	};

	spool_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
