/*
 * Unit tests for the key-delivery socket (agent/server.c) against a fake
 * broker defined below (the only fake in the tree: broker.c is real
 * elsewhere).  Real AF_UNIX sockets in a mkdtemp directory; the server runs
 * on the default GLib main context, which the client helpers iterate.
 *
 * Built and run by hand from the top of the tree with:
 *   gcc -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes \
 *       -Wstrict-prototypes -Werror -g -Iagent -Ilibclient \
 *       $(pkg-config --cflags glib-2.0 cmocka) \
 *       agent/server.c agent/request.c libclient/frame.c tests/unit/test-server.c \
 *       -o /tmp/test-server $(pkg-config --libs glib-2.0 cmocka)
 * and the same with -fsanitize=address,undefined -fno-omit-frame-pointer
 * -fno-sanitize-recover=undefined added.
 * The peer-credential tests need root (they fork a child that becomes
 * nobody, uid 65534); they are skipped otherwise.  TEST_VERBOSE=1 prints
 * the server's log lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "broker.h"
#include "frame.h"
#include "proto.h"
#include "server.h"
#include "trace.h"

#define NOBODY_UID	65534
#define NOGROUP_GID	65534
#define WAIT_MS		3000

/* ---------- the fake broker ---------- */

#define FAKE_MAX_SENDS 4

struct fake_send {
	broker_send_done_fn done;
	void *ctx;
	char *lmr_type;
	char *to;
	uint8_t *payload;
	size_t payload_len;
	unsigned timeout_ms;
};

static struct fake_broker {
	/* behaviour */
	int subscribe_result;
	const char *holder;
	int ack_result;
	const struct spool_record *deliver_on_subscribe;

	/* what the server did */
	int n_subscribe;
	char *types[PROTO_MAX_LMR_TYPES + 1];
	bool takeover;
	void *consumer;
	broker_deliver_fn deliver;
	broker_lost_fn lost;
	int sync_deliver_result;
	int n_unsubscribe;
	void *unsubscribed;
	int n_ready;
	int n_ack, n_nack;
	int64_t acked_id, nacked_id;
	broker_ack_done_fn ack_done;	/* the last ACK, waiting for its commit */
	void *ack_ctx;
	int n_ack_cancel;
	int n_send;
	struct fake_send sends[FAKE_MAX_SENDS];
	int n_cancel;
	struct broker_send *cancelled;

	struct broker_status status;

	/* events: the server's one observer */
	broker_event_fn observer;
	void *observer_ctx;
	int n_observers;

	/* the spool listing */
	const struct spool_record *records;
	const bool *in_flight;
	size_t n_records;
	int list_result;
	int n_list;
	int64_t list_after;
	size_t list_limit;
} fake;

static struct broker *const fake_b = (struct broker *) &fake;

static void fake_reset(void)
{
	int i;

	for (i = 0; fake.types[i]; i++)
		g_free(fake.types[i]);
	for (i = 0; i < FAKE_MAX_SENDS; i++) {
		g_free(fake.sends[i].lmr_type);
		g_free(fake.sends[i].to);
		g_free(fake.sends[i].payload);
	}
	memset(&fake, 0, sizeof(fake));
}

/* The handle of send i, as broker_send returned it. */
static struct broker_send *fake_handle(int i)
{
	return (struct broker_send *) &fake.sends[i];
}

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
	return "?";
}

int broker_subscribe(struct broker *b, void *consumer, const char *const *types,
		     bool takeover, broker_deliver_fn deliver, broker_lost_fn lost,
		     const char **holder_type)
{
	int i;

	assert_ptr_equal(b, fake_b);
	fake.n_subscribe++;
	for (i = 0; types[i]; i++)
		fake.types[i] = g_strdup(types[i]);
	fake.takeover = takeover;
	if (fake.subscribe_result < 0) {
		*holder_type = fake.holder;
		return fake.subscribe_result;
	}

	fake.consumer = consumer;
	fake.deliver = deliver;
	fake.lost = lost;
	if (fake.deliver_on_subscribe)
		fake.sync_deliver_result = deliver(consumer, fake.deliver_on_subscribe);
	return 0;
}

void broker_unsubscribe(struct broker *b, void *consumer)
{
	assert_ptr_equal(b, fake_b);
	fake.n_unsubscribe++;
	fake.unsubscribed = consumer;
}

void broker_consumer_ready(struct broker *b, void *consumer)
{
	assert_ptr_equal(b, fake_b);
	assert_ptr_equal(consumer, fake.consumer);
	fake.n_ready++;
	if (fake.deliver_on_subscribe) {
		fake.deliver(consumer, fake.deliver_on_subscribe);
		fake.deliver_on_subscribe = NULL;
	}
}

int broker_ack(struct broker *b, void *consumer, int64_t id,
	       broker_ack_done_fn done, void *ctx, struct broker_ack **handle)
{
	assert_ptr_equal(b, fake_b);
	assert_ptr_equal(consumer, fake.consumer);
	fake.n_ack++;
	fake.acked_id = id;
	if (fake.ack_result < 0)
		return fake.ack_result;
	fake.ack_done = done;
	fake.ack_ctx = ctx;
	if (handle)
		*handle = (struct broker_ack *) &fake.ack_done;
	return 0;
}

void broker_ack_cancel(struct broker *b, struct broker_ack *a)
{
	assert_ptr_equal(b, fake_b);
	assert_ptr_equal(a, (struct broker_ack *) &fake.ack_done);
	fake.n_ack_cancel++;
	fake.ack_done = NULL;
}

/* The group commit of the last ACK ends with err. */
static void fake_ack_commit(int err)
{
	broker_ack_done_fn done = fake.ack_done;

	assert_non_null(done);
	fake.ack_done = NULL;
	done(fake.ack_ctx, err);
}

int broker_nack(struct broker *b, void *consumer, int64_t id)
{
	assert_ptr_equal(b, fake_b);
	assert_ptr_equal(consumer, fake.consumer);
	fake.n_nack++;
	fake.nacked_id = id;
	return fake.ack_result;
}

struct broker_send *broker_send(struct broker *b, const struct broker_send_request *req,
				broker_send_done_fn done, void *ctx)
{
	struct fake_send *s;

	assert_ptr_equal(b, fake_b);
	assert_true(fake.n_send < FAKE_MAX_SENDS);
	s = &fake.sends[fake.n_send];
	s->done = done;
	s->ctx = ctx;
	s->lmr_type = g_strdup(req->lmr_type);
	s->to = g_strdup(req->to);
	s->payload = g_memdup2(req->payload, req->payload_len);
	s->payload_len = req->payload_len;
	s->timeout_ms = req->timeout_ms;
	return fake_handle(fake.n_send++);
}

void broker_send_cancel(struct broker *b, struct broker_send *s)
{
	assert_ptr_equal(b, fake_b);
	fake.n_cancel++;
	fake.cancelled = s;
}

void broker_get_status(struct broker *b, struct broker_status *out)
{
	assert_ptr_equal(b, fake_b);
	*out = fake.status;
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
	assert_ptr_equal(b, fake_b);
	assert_int_equal(fake.n_observers, 0);	/* one, fanned out by the server */
	fake.observer = fn;
	fake.observer_ctx = ctx;
	fake.n_observers++;
}

void broker_remove_observer(struct broker *b, broker_event_fn fn, void *ctx)
{
	assert_ptr_equal(b, fake_b);
	assert_ptr_equal(fn, fake.observer);
	assert_ptr_equal(ctx, fake.observer_ctx);
	fake.n_observers--;
}

int broker_list(struct broker *b, int64_t after_id, size_t limit,
		broker_list_fn fn, void *ctx)
{
	size_t i, visited = 0;
	int r;

	assert_ptr_equal(b, fake_b);
	fake.n_list++;
	fake.list_after = after_id;
	fake.list_limit = limit;
	if (fake.list_result < 0)
		return fake.list_result;

	for (i = 0; i < fake.n_records; i++) {
		if (fake.records[i].id <= after_id)
			continue;
		if (limit && visited == limit)
			break;
		visited++;
		r = fn(ctx, &fake.records[i], fake.in_flight ? fake.in_flight[i] : false);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Calls the server's observer as the broker would. */
static void fake_emit(const struct broker_event *ev)
{
	assert_int_equal(fake.n_observers, 1);
	fake.observer(fake.observer_ctx, ev);
}

/* ---------- log capture ---------- */

static char last_warning[512];

static void capture_log(const gchar *domain, GLogLevelFlags level,
			const gchar *message, gpointer data)
{
	(void) domain;
	(void) data;
	if (level & G_LOG_LEVEL_WARNING)
		g_strlcpy(last_warning, message, sizeof(last_warning));
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "  [server] %s\n", message);
}

/* ---------- fixture ---------- */

struct fixture {
	char dir[64];
	char sockdir[128];
	char path[192];
	struct server *server;
};

static int setup(void **state)
{
	struct fixture *fx = g_new0(struct fixture, 1);

	g_strlcpy(fx->dir, "/tmp/test-server-XXXXXX", sizeof(fx->dir));
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->sockdir, sizeof(fx->sockdir), "%s/lmrsec", fx->dir);
	snprintf(fx->path, sizeof(fx->path), "%s/agent.sock", fx->sockdir);
	fake_reset();
	last_warning[0] = '\0';
	*state = fx;
	return 0;
}

static void pump(void)
{
	int i;

	for (i = 0; i < 50 && g_main_context_iteration(NULL, FALSE); i++)
		;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char *cmd;

	server_stop(fx->server);
	pump();
	cmd = g_strdup_printf("rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	g_free(cmd);
	fake_reset();
	g_free(fx);
	return 0;
}

static struct server_config default_config(const struct fixture *fx)
{
	return (struct server_config) {
		.path = fx->path,
		.listen_fd = -1,
		.agent_version = "test-1.0",
	};
}

static int start_with(struct fixture *fx, const struct server_config *cfg)
{
	char *error = NULL;
	int r;

	r = server_start(cfg, fake_b, &fx->server, &error);
	if (r < 0)
		fprintf(stderr, "  server_start: %s\n", error);
	g_free(error);
	return r;
}

static void start(struct fixture *fx)
{
	struct server_config cfg = default_config(fx);

	assert_int_equal(start_with(fx, &cfg), 0);
}

/* ---------- client side ---------- */

struct client {
	int fd;
	struct frame_decoder dec;
};

struct reply {
	uint8_t type;
	uint32_t id;
	uint8_t *body;
	size_t len;
};

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static struct client *client_new(const struct fixture *fx)
{
	struct client *c = g_new0(struct client, 1);

	c->fd = connect_to(fx->path);
	assert_true(c->fd >= 0);
	frame_decoder_init(&c->dec);
	pump();
	return c;
}

static void client_free(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	frame_decoder_clear(&c->dec);
	g_free(c);
}

static void reply_clear(struct reply *r)
{
	g_free(r->body);
	memset(r, 0, sizeof(*r));
}

static void send_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		p += n;
		len -= (size_t) n;
	}
}

static void client_send(struct client *c, struct frame_writer *w)
{
	const uint8_t *frame;
	size_t len;

	assert_int_equal(frame_writer_end(w, &frame, &len), 0);
	send_all(c->fd, frame, len);
	frame_writer_clear(w);
	pump();
}

/* Next frame from the agent: 0, -ECONNRESET on end of stream, -ETIMEDOUT. */
static int client_recv(struct client *c, struct reply *out)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;
	const uint8_t *body;
	uint8_t *space;
	size_t avail, len;
	ssize_t n;
	int r;

	memset(out, 0, sizeof(*out));
	while (g_get_monotonic_time() < deadline) {
		r = frame_decoder_next(&c->dec, &body, &len);
		assert_true(r >= 0);
		if (r == 1) {
			frame_reader_init(&(struct frame_reader) { 0 }, body, len,
					  &out->type, &out->id);
			out->body = g_memdup2(body, len);
			out->len = len;
			return 0;
		}

		pump();
		assert_int_equal(frame_decoder_space(&c->dec, &space, &avail), 0);
		n = recv(c->fd, space, avail, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == ECONNRESET)
			return -ECONNRESET;
		if (n < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			g_usleep(1000);
			continue;
		}
		frame_decoder_commit(&c->dec, (size_t) n);
	}
	return -ETIMEDOUT;
}

static void client_expect(struct client *c, uint8_t type, uint32_t id,
			  struct reply *out)
{
	assert_int_equal(client_recv(c, out), 0);
	assert_int_equal(out->type, type);
	assert_int_equal(out->id, id);
}

/* Nothing from the agent now (what the main loop had to do is done). */
static void client_expect_quiet(struct client *c)
{
	uint8_t byte;

	pump();
	assert_int_equal(recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void client_expect_eof(struct client *c)
{
	struct reply r;

	assert_int_equal(client_recv(c, &r), -ECONNRESET);
}

/* Count of fields with tag; the first one's value in *v, *len. */
static int reply_field(const struct reply *r, uint8_t tag,
		       const uint8_t **v, uint32_t *len)
{
	struct frame_reader rd;
	const uint8_t *fv;
	uint32_t flen;
	uint8_t ftag;
	int n = 0;

	assert_int_equal(frame_reader_init(&rd, r->body, r->len, NULL, NULL), 0);
	while (frame_reader_field(&rd, &ftag, &fv, &flen) == 1) {
		if (ftag != tag)
			continue;
		if (n++ == 0 && v) {
			*v = fv;
			*len = flen;
		}
	}
	return n;
}

static uint32_t reply_u32(const struct reply *r, uint8_t tag)
{
	const uint8_t *v;
	uint32_t len, x;

	assert_true(reply_field(r, tag, &v, &len) >= 1);
	assert_int_equal(frame_value_u32(v, len, &x), 0);
	return x;
}

static uint64_t reply_u64(const struct reply *r, uint8_t tag)
{
	const uint8_t *v;
	uint32_t len;
	uint64_t x;

	assert_true(reply_field(r, tag, &v, &len) >= 1);
	assert_int_equal(frame_value_u64(v, len, &x), 0);
	return x;
}

/* A copy of the first field with tag as a string; g_free() it. */
static char *reply_str(const struct reply *r, uint8_t tag)
{
	const uint8_t *v;
	uint32_t len;

	assert_true(reply_field(r, tag, &v, &len) >= 1);
	return g_strndup((const char *) v, len);
}

static void assert_error(const struct reply *r, uint32_t id, int code,
			 const char *text_part)
{
	char *text;

	assert_int_equal(r->type, PROTO_MSG_ERROR);
	assert_int_equal(r->id, id);
	assert_int_equal(reply_u32(r, PROTO_TAG_ERROR_CODE), code);
	text = reply_str(r, PROTO_TAG_ERROR_TEXT);
	if (!strstr(text, text_part))
		fail_msg("error text \"%s\" lacks \"%s\"", text, text_part);
	g_free(text);
}

static void send_hello(struct client *c, uint32_t id, uint32_t vmin, uint32_t vmax)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_HELLO, id);
	frame_writer_u32(&w, PROTO_TAG_VERSION_MIN, vmin);
	frame_writer_u32(&w, PROTO_TAG_VERSION_MAX, vmax);
	frame_writer_str(&w, PROTO_TAG_CLIENT_NAME, "test-server");
	client_send(c, &w);
}

static struct client *client_ready(const struct fixture *fx)
{
	struct client *c = client_new(fx);
	struct reply r;

	send_hello(c, 1, 1, 1);
	client_expect(c, PROTO_MSG_HELLO_OK, 1, &r);
	reply_clear(&r);
	return c;
}

static void send_empty(struct client *c, uint8_t type, uint32_t id)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, type, id);
	client_send(c, &w);
}

static void send_message_id(struct client *c, uint8_t type, uint32_t id,
			    uint64_t msg_id)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, type, id);
	frame_writer_u64(&w, PROTO_TAG_MESSAGE_ID, msg_id);
	client_send(c, &w);
}

static struct client *consumer_ready(const struct fixture *fx)
{
	struct client *c = client_ready(fx);
	struct frame_writer w;
	struct reply r;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SUBSCRIBE, 2);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TETRA");
	client_send(c, &w);
	client_expect(c, PROTO_MSG_OK, 2, &r);
	reply_clear(&r);
	assert_non_null(fake.consumer);
	return c;
}

static void send_payload(struct client *c, uint32_t id, const char *to,
			 size_t payload_len, uint32_t timeout_ms)
{
	uint8_t *payload = g_malloc(payload_len + 1);
	struct frame_writer w;
	size_t i;

	for (i = 0; i < payload_len; i++)
		payload[i] = (uint8_t) i;
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND, id);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TETRA");
	frame_writer_bytes(&w, PROTO_TAG_PAYLOAD, payload, payload_len);
	if (to)
		frame_writer_str(&w, PROTO_TAG_TO, to);
	if (timeout_ms)
		frame_writer_u32(&w, PROTO_TAG_TIMEOUT_MS, timeout_ms);
	client_send(c, &w);
	g_free(payload);
}

/* A record as the broker would hand it over. */
static void make_record(struct spool_record *rec, int64_t id, size_t payload_len)
{
	static char lmr_type[] = "TETRA";
	static char kmf_uri[] = "sip:kmf@iwf.example.org";
	static char mc_service_id[] = "sip:alice@mc.example.org";
	static char sender[] = "sip:iwf@iwf.example.org";
	size_t i;

	memset(rec, 0, sizeof(*rec));
	rec->id = id;
	rec->received_us = INT64_C(1700000000123456);
	rec->lmr_type = lmr_type;
	rec->kmf_uri = kmf_uri;
	rec->mc_service_id = mc_service_id;
	rec->sender = sender;
	rec->payload = g_malloc(payload_len);
	rec->payload_len = payload_len;
	for (i = 0; i < payload_len; i++)
		rec->payload[i] = (uint8_t) (i * 7);
	for (i = 0; i < SPOOL_FINGERPRINT_LEN; i++)
		rec->fingerprint[i] = (uint8_t) (0xa0 + i);
}

static void pump_until_child_exits(pid_t pid, int *status)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	pid_t r;

	while ((r = waitpid(pid, status, WNOHANG)) == 0) {
		assert_true(g_get_monotonic_time() < deadline);
		pump();
		g_usleep(1000);
	}
	assert_int_equal(r, pid);
}

/* ---------- the socket file ---------- */

static void test_socket_and_dir_modes(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	start(fx);
	assert_int_equal(stat(fx->sockdir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
}

static void test_existing_dir_left_alone(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	assert_int_equal(mkdir(fx->sockdir, 0700), 0);
	start(fx);
	assert_int_equal(stat(fx->sockdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_socket_group_applied(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct stat st;

	if (geteuid() != 0) {
		print_message("skipped: needs root to give the socket to another group\n");
		skip();
	}

	cfg.group = "nogroup";
	assert_int_equal(start_with(fx, &cfg), 0);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_int_equal(st.st_gid, NOGROUP_GID);
	assert_int_equal(stat(fx->sockdir, &st), 0);
	assert_int_equal(st.st_gid, NOGROUP_GID);
}

static void test_missing_parent_refused(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *path = g_strdup_printf("%s/missing/lmrsec/agent.sock", fx->dir);
	char *error = NULL;

	cfg.path = path;
	assert_int_equal(server_start(&cfg, fake_b, &fx->server, &error), -ENOENT);
	assert_null(fx->server);
	assert_non_null(strstr(error, "parent directory does not exist"));
	g_free(error);
	g_free(path);
}

static void test_stale_socket_replaced(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client *c;
	struct stat st;
	int fd;

	/* A socket bound and closed without unlinking: what a crash leaves. */
	assert_int_equal(mkdir(fx->sockdir, 0750), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_strlcpy(sa.sun_path, fx->path, sizeof(sa.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(connect_to(fx->path), -ECONNREFUSED);

	start(fx);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	c = client_ready(fx);
	client_free(c);
}

static void test_live_socket_refused(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct server *second = NULL;
	char *error = NULL;
	char *expected;
	struct client *c;

	start(fx);
	assert_int_equal(server_start(&cfg, fake_b, &second, &error), -EADDRINUSE);
	assert_null(second);
	expected = g_strdup_printf("another lmrsec-agent is already listening on %s",
				   fx->path);
	assert_string_equal(error, expected);
	g_free(expected);
	g_free(error);

	/* The first agent is untouched. */
	c = client_ready(fx);
	client_free(c);
}

static void test_non_socket_refused(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *error = NULL;
	struct stat st;

	assert_int_equal(mkdir(fx->sockdir, 0750), 0);
	assert_true(g_file_set_contents(fx->path, "keep me", -1, NULL));
	assert_int_equal(server_start(&cfg, fake_b, &fx->server, &error), -EEXIST);
	assert_non_null(strstr(error, "is not a socket"));
	g_free(error);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_stop_unlinks_socket(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	start(fx);
	server_stop(fx->server);
	fx->server = NULL;
	assert_int_equal(lstat(fx->path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_unknown_allowed_user_refused(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *users[] = { "no-such-user-lmrsec", NULL };
	char *error = NULL;

	cfg.allowed_users = users;
	assert_int_equal(server_start(&cfg, fake_b, &fx->server, &error), -EINVAL);
	assert_non_null(strstr(error, "no-such-user-lmrsec"));
	g_free(error);
}

static void test_small_output_bound_refused(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *error = NULL;

	cfg.max_output_bytes = 4096;
	assert_int_equal(server_start(&cfg, fake_b, &fx->server, &error), -EINVAL);
	assert_non_null(error);
	g_free(error);
}

static void test_listen_fd_adopted(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client *c;
	struct stat st;
	int fd;

	/* What systemd hands over: bound and listening already. */
	assert_int_equal(mkdir(fx->sockdir, 0755), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_strlcpy(sa.sun_path, fx->path, sizeof(sa.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);

	cfg.listen_fd = fd;
	assert_int_equal(start_with(fx, &cfg), 0);
	c = client_ready(fx);
	client_free(c);

	/* systemd owns the file: stopping leaves it. */
	server_stop(fx->server);
	fx->server = NULL;
	assert_int_equal(lstat(fx->path, &st), 0);
}

/* ---------- negotiation and framing ---------- */

static void test_hello_negotiates_version(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;
	char *version;

	start(fx);
	c = client_new(fx);
	send_hello(c, 0x01020304, 1, 7);
	client_expect(c, PROTO_MSG_HELLO_OK, 0x01020304, &r);
	assert_int_equal(reply_u32(&r, PROTO_TAG_VERSION), 1);
	version = reply_str(&r, PROTO_TAG_AGENT_VERSION);
	assert_string_equal(version, "test-1.0");
	g_free(version);
	reply_clear(&r);
	client_free(c);
}

static void test_hello_version_mismatch(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_new(fx);
	send_hello(c, 9, 2, 5);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 9, EPROTONOSUPPORT, "2..5");
	assert_error(&r, 9, EPROTONOSUPPORT, "1..1");
	reply_clear(&r);
	client_expect_eof(c);
	client_free(c);
}

static void test_request_before_hello(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_new(fx);
	send_empty(c, PROTO_MSG_STATUS, 5);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 5, EPROTO, "HELLO");
	reply_clear(&r);
	client_expect_eof(c);
	client_free(c);
}

static void test_unknown_type_keeps_connection(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	send_empty(c, 0x7f, 3);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 3, EOPNOTSUPP, "unknown message type 0x7f");
	reply_clear(&r);

	send_empty(c, PROTO_MSG_STATUS, 4);
	client_expect(c, PROTO_MSG_STATUS_REPLY, 4, &r);
	reply_clear(&r);
	client_free(c);
}

static void test_unknown_field_ignored(void **state)
{
	struct fixture *fx = *state;
	struct frame_writer w;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_new(fx);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_HELLO, 1);
	frame_writer_str(&w, 0xee, "from the future");
	frame_writer_str(&w, 0xee, "repeated, and still ignored");
	frame_writer_u32(&w, PROTO_TAG_VERSION_MIN, 1);
	frame_writer_u32(&w, PROTO_TAG_VERSION_MAX, 1);
	client_send(c, &w);
	client_expect(c, PROTO_MSG_HELLO_OK, 1, &r);
	reply_clear(&r);
	client_free(c);
}

static void test_oversized_frame_closes_only_that_connection(void **state)
{
	static const uint8_t too_long[] = { 0x00, 0x04, 0x00, 0x01 }; /* 262145 */
	struct fixture *fx = *state;
	struct client *bad, *good;
	struct reply r;

	start(fx);
	good = client_ready(fx);
	bad = client_ready(fx);
	send_all(bad->fd, too_long, sizeof(too_long));
	client_expect_eof(bad);
	assert_non_null(strstr(last_warning, "262144"));

	send_empty(good, PROTO_MSG_STATUS, 8);
	client_expect(good, PROTO_MSG_STATUS_REPLY, 8, &r);
	reply_clear(&r);
	client_free(bad);
	client_free(good);
}

static void test_truncated_field_closes_connection(void **state)
{
	/* Body of 9: type STATUS, id 1, then a field header claiming 16
	 * value bytes with none there. */
	static const uint8_t frame[] = {
		0x00, 0x00, 0x00, 0x0a,
		PROTO_MSG_STATUS, 0x00, 0x00, 0x00, 0x01,
		0x20, 0x00, 0x00, 0x00, 0x10,
	};
	struct fixture *fx = *state;
	struct client *c;

	start(fx);
	c = client_ready(fx);
	send_all(c->fd, frame, sizeof(frame));
	client_expect_eof(c);
	client_free(c);
}

/* ---------- requester ---------- */

static void test_status_reply_has_every_field(void **state)
{
	struct fixture *fx = *state;
	int64_t now = g_get_real_time();
	struct client *c;
	struct reply r;
	char *s;

	fake.status.reg = (struct broker_registration) {
		.state = BROKER_REG_REGISTERED,
		.aor = "sip:alice@mc.example.org",
		.registrar = "sip:mc.example.org;transport=tcp",
		.transport = "tcp",
		.expires_at_us = now + 100 * G_USEC_PER_SEC,
		.next_retry_us = now - G_USEC_PER_SEC,	/* past: 0 */
		.last_status = 200,
		.last_reason = "OK",
	};
	fake.status.spool_messages = 3;
	fake.status.spool_bytes = 300;
	fake.status.consumer_types[0] = "TETRA";
	fake.status.consumer_types[1] = "P25";
	fake.status.received = 10;
	fake.status.delivered = 9;
	fake.status.acked = 8;
	fake.status.rejected = 2;
	fake.status.sent = 5;

	start(fx);
	c = client_ready(fx);
	send_empty(c, PROTO_MSG_STATUS, 77);
	client_expect(c, PROTO_MSG_STATUS_REPLY, 77, &r);

	s = reply_str(&r, PROTO_TAG_REG_STATE);
	assert_string_equal(s, "registered");
	g_free(s);
	s = reply_str(&r, PROTO_TAG_REG_AOR);
	assert_string_equal(s, "sip:alice@mc.example.org");
	g_free(s);
	s = reply_str(&r, PROTO_TAG_REG_REGISTRAR);
	assert_string_equal(s, "sip:mc.example.org;transport=tcp");
	g_free(s);
	s = reply_str(&r, PROTO_TAG_REG_TRANSPORT);
	assert_string_equal(s, "tcp");
	g_free(s);
	assert_in_range(reply_u32(&r, PROTO_TAG_REG_EXPIRES_IN), 99, 100);
	assert_int_equal(reply_u32(&r, PROTO_TAG_REG_NEXT_RETRY), 0);
	assert_int_equal(reply_u32(&r, PROTO_TAG_REG_LAST_STATUS), 200);
	s = reply_str(&r, PROTO_TAG_REG_LAST_REASON);
	assert_string_equal(s, "OK");
	g_free(s);
	assert_int_equal(reply_u64(&r, PROTO_TAG_SPOOL_MESSAGES), 3);
	assert_int_equal(reply_u64(&r, PROTO_TAG_SPOOL_BYTES), 300);
	assert_int_equal(reply_field(&r, PROTO_TAG_CONSUMER, NULL, NULL), 2);
	assert_int_equal(reply_u64(&r, PROTO_TAG_COUNT_RECEIVED), 10);
	assert_int_equal(reply_u64(&r, PROTO_TAG_COUNT_DELIVERED), 9);
	assert_int_equal(reply_u64(&r, PROTO_TAG_COUNT_ACKED), 8);
	assert_int_equal(reply_u64(&r, PROTO_TAG_COUNT_REJECTED), 2);
	assert_int_equal(reply_u64(&r, PROTO_TAG_COUNT_SENT), 5);
	reply_clear(&r);
	client_free(c);
}

static void test_send_result_when_broker_completes(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;
	char *reason;
	size_t i;

	start(fx);
	c = client_ready(fx);
	send_payload(c, 21, "sip:kmf@iwf.example.org", 100, 0);
	assert_int_equal(fake.n_send, 1);
	assert_string_equal(fake.sends[0].lmr_type, "TETRA");
	assert_string_equal(fake.sends[0].to, "sip:kmf@iwf.example.org");
	assert_int_equal(fake.sends[0].payload_len, 100);
	for (i = 0; i < 100; i++)
		assert_int_equal(fake.sends[0].payload[i], (uint8_t) i);
	assert_int_equal(fake.sends[0].timeout_ms, 30000);

	fake.sends[0].done(fake.sends[0].ctx, 0, 202, "Accepted");
	client_expect(c, PROTO_MSG_SEND_RESULT, 21, &r);
	assert_int_equal(reply_u32(&r, PROTO_TAG_SIP_STATUS), 202);
	reason = reply_str(&r, PROTO_TAG_SIP_REASON);
	assert_string_equal(reason, "Accepted");
	g_free(reason);
	reply_clear(&r);

	/* Finished sends are not cancelled on close. */
	client_free(c);
	pump();
	assert_int_equal(fake.n_cancel, 0);
}

static void test_send_error_without_sip_status(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	send_payload(c, 22, NULL, 10, 0);
	assert_int_equal(fake.n_send, 1);
	assert_null(fake.sends[0].to);

	fake.sends[0].done(fake.sends[0].ctx, -ENOTCONN, 0, NULL);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 22, ENOTCONN, "not registered");
	reply_clear(&r);
	client_free(c);
}

static void test_send_timeout_capped(void **state)
{
	struct fixture *fx = *state;
	struct client *c;

	start(fx);
	c = client_ready(fx);
	send_payload(c, 23, NULL, 10, 10000000);
	assert_int_equal(fake.n_send, 1);
	assert_int_equal(fake.sends[0].timeout_ms, 300000);
	client_free(c);
}

static void test_send_invalid_payload_refused(void **state)
{
	struct fixture *fx = *state;
	struct frame_writer w;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	send_payload(c, 24, NULL, 65536, 0);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 24, EMSGSIZE, "65535");
	reply_clear(&r);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND, 25);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TETRA");
	client_send(c, &w);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 25, EINVAL, "PAYLOAD");
	reply_clear(&r);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND, 26);
	frame_writer_bytes(&w, PROTO_TAG_PAYLOAD, "k", 1);
	client_send(c, &w);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 26, EINVAL, "LMR_TYPE");
	reply_clear(&r);

	assert_int_equal(fake.n_send, 0);
	client_free(c);
}

static void test_several_sends_outstanding(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	send_payload(c, 31, NULL, 10, 0);
	send_payload(c, 32, NULL, 10, 0);
	assert_int_equal(fake.n_send, 2);

	fake.sends[1].done(fake.sends[1].ctx, 0, 403, "Forbidden");
	client_expect(c, PROTO_MSG_SEND_RESULT, 32, &r);
	assert_int_equal(reply_u32(&r, PROTO_TAG_SIP_STATUS), 403);
	reply_clear(&r);
	fake.sends[0].done(fake.sends[0].ctx, 0, 200, "OK");
	client_expect(c, PROTO_MSG_SEND_RESULT, 31, &r);
	assert_int_equal(reply_u32(&r, PROTO_TAG_SIP_STATUS), 200);
	reply_clear(&r);
	client_free(c);
}

static void test_disconnect_cancels_pending_send(void **state)
{
	struct fixture *fx = *state;
	struct client *c;

	start(fx);
	c = client_ready(fx);
	send_payload(c, 41, NULL, 10, 0);
	assert_int_equal(fake.n_send, 1);
	client_free(c);
	pump();
	assert_int_equal(fake.n_cancel, 1);
	assert_ptr_equal(fake.cancelled, fake_handle(0));
}

/* ---------- consumer ---------- */

static void test_subscribe_passes_types_to_broker(void **state)
{
	struct fixture *fx = *state;
	struct frame_writer w;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SUBSCRIBE, 11);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TETRA");
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "P25");
	frame_writer_u32(&w, PROTO_TAG_TAKEOVER, 1);
	client_send(c, &w);
	client_expect(c, PROTO_MSG_OK, 11, &r);
	reply_clear(&r);

	assert_int_equal(fake.n_subscribe, 1);
	assert_string_equal(fake.types[0], "TETRA");
	assert_string_equal(fake.types[1], "P25");
	assert_null(fake.types[2]);
	assert_true(fake.takeover);
	client_free(c);
}

static void test_subscribe_all_types(void **state)
{
	struct fixture *fx = *state;
	struct frame_writer w;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SUBSCRIBE, 12);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "*");
	client_send(c, &w);
	client_expect(c, PROTO_MSG_OK, 12, &r);
	reply_clear(&r);
	assert_string_equal(fake.types[0], "*");
	assert_false(fake.takeover);
	client_free(c);
}

static void test_subscribe_busy_type_refused(void **state)
{
	struct fixture *fx = *state;
	struct frame_writer w;
	struct client *c;
	struct reply r;

	fake.subscribe_result = -EBUSY;
	fake.holder = "TETRA";
	start(fx);
	c = client_ready(fx);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SUBSCRIBE, 13);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TETRA");
	client_send(c, &w);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 13, EBUSY, "LMR type TETRA already has a consumer");
	reply_clear(&r);

	/* Not a consumer: closing it unsubscribes nothing. */
	client_free(c);
	pump();
	assert_int_equal(fake.n_unsubscribe, 0);
}

static void test_subscribe_bad_type_refused(void **state)
{
	struct fixture *fx = *state;
	struct frame_writer w;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SUBSCRIBE, 14);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TE TRA");
	client_send(c, &w);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 14, EINVAL, "LMR_TYPE");
	reply_clear(&r);
	assert_int_equal(fake.n_subscribe, 0);
	client_free(c);
}

static void test_delivery_frame_has_all_fields(void **state)
{
	struct fixture *fx = *state;
	struct spool_record rec;
	const uint8_t *v;
	struct client *c;
	struct reply r;
	uint32_t len;
	char *s;

	start(fx);
	c = consumer_ready(fx);
	make_record(&rec, 42, 1000);
	assert_int_equal(fake.deliver(fake.consumer, &rec), 0);
	client_expect(c, PROTO_MSG_DELIVERY, 0, &r);

	assert_int_equal(reply_u64(&r, PROTO_TAG_MESSAGE_ID), 42);
	s = reply_str(&r, PROTO_TAG_LMR_TYPE);
	assert_string_equal(s, "TETRA");
	g_free(s);
	s = reply_str(&r, PROTO_TAG_KMF_URI);
	assert_string_equal(s, "sip:kmf@iwf.example.org");
	g_free(s);
	s = reply_str(&r, PROTO_TAG_MC_SERVICE_ID);
	assert_string_equal(s, "sip:alice@mc.example.org");
	g_free(s);
	s = reply_str(&r, PROTO_TAG_SENDER);
	assert_string_equal(s, "sip:iwf@iwf.example.org");
	g_free(s);
	assert_int_equal(reply_u64(&r, PROTO_TAG_RECEIVED_US),
			 UINT64_C(1700000000123456));
	assert_int_equal(reply_field(&r, PROTO_TAG_FINGERPRINT, &v, &len), 1);
	assert_int_equal(len, 32);
	assert_memory_equal(v, rec.fingerprint, 32);
	assert_int_equal(reply_field(&r, PROTO_TAG_PAYLOAD, &v, &len), 1);
	assert_int_equal(len, 1000);
	assert_memory_equal(v, rec.payload, 1000);
	reply_clear(&r);
	g_free(rec.payload);
	client_free(c);
}

static void test_subscribe_ok_precedes_first_delivery(void **state)
{
	struct fixture *fx = *state;
	struct spool_record rec;
	struct frame_writer w;
	struct client *c;
	struct reply r;

	make_record(&rec, 7, 16);
	fake.deliver_on_subscribe = &rec;
	start(fx);
	c = client_ready(fx);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SUBSCRIBE, 15);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TETRA");
	client_send(c, &w);

	assert_int_equal(fake.sync_deliver_result, -EAGAIN);
	client_expect(c, PROTO_MSG_OK, 15, &r);
	reply_clear(&r);
	assert_int_equal(fake.n_ready, 1);
	client_expect(c, PROTO_MSG_DELIVERY, 0, &r);
	assert_int_equal(reply_u64(&r, PROTO_TAG_MESSAGE_ID), 7);
	reply_clear(&r);
	g_free(rec.payload);
	client_free(c);
}

static void test_ack_reaches_broker(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = consumer_ready(fx);
	send_message_id(c, PROTO_MSG_ACK, 51, 42);
	assert_int_equal(fake.n_ack, 1);
	assert_int_equal(fake.acked_id, 42);
	/* not confirmed before the broker committed the deletion */
	client_expect_quiet(c);
	fake_ack_commit(0);
	client_expect(c, PROTO_MSG_OK, 51, &r);
	reply_clear(&r);
	client_free(c);
	pump();
	assert_int_equal(fake.n_ack_cancel, 0);
}

/* A deletion whose commit failed: ERROR, never OK. */
static void test_ack_commit_failure_is_error(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = consumer_ready(fx);
	send_message_id(c, PROTO_MSG_ACK, 54, 44);
	client_expect_quiet(c);
	fake_ack_commit(-EIO);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 54, EIO, "44");
	reply_clear(&r);
	client_free(c);
}

/* The consumer went away before its ACK's commit: the broker must not
 * call back into the freed connection. */
static void test_disconnect_cancels_pending_ack(void **state)
{
	struct fixture *fx = *state;
	struct client *c;

	start(fx);
	c = consumer_ready(fx);
	send_message_id(c, PROTO_MSG_ACK, 55, 45);
	assert_int_equal(fake.n_ack, 1);
	client_free(c);
	pump();
	assert_int_equal(fake.n_unsubscribe, 1);
	assert_int_equal(fake.n_ack_cancel, 1);
	assert_null(fake.ack_done);
}

static void test_nack_reaches_broker(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = consumer_ready(fx);
	send_message_id(c, PROTO_MSG_NACK, 52, 43);
	client_expect(c, PROTO_MSG_OK, 52, &r);
	reply_clear(&r);
	assert_int_equal(fake.n_nack, 1);
	assert_int_equal(fake.nacked_id, 43);
	client_free(c);
}

static void test_ack_unknown_id_is_enoent(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	fake.ack_result = -ENOENT;
	start(fx);
	c = consumer_ready(fx);
	send_message_id(c, PROTO_MSG_ACK, 53, 99);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 53, ENOENT, "99");
	reply_clear(&r);
	client_free(c);
}

static void test_disconnect_unsubscribes(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	void *consumer;

	start(fx);
	c = consumer_ready(fx);
	consumer = fake.consumer;
	client_free(c);
	pump();
	assert_int_equal(fake.n_unsubscribe, 1);
	assert_ptr_equal(fake.unsubscribed, consumer);
}

static void test_takeover_closes_old_consumer(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = consumer_ready(fx);
	fake.lost(fake.consumer, "TETRA");
	assert_int_equal(fake.n_unsubscribe, 0);	/* not from inside the broker */
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 0, EBUSY, "taken over by another consumer");
	reply_clear(&r);
	client_expect_eof(c);
	pump();
	assert_int_equal(fake.n_unsubscribe, 1);
	client_free(c);
}

static void test_slow_consumer_pauses_deliveries(void **state)
{
	struct fixture *fx = *state;
	struct spool_record rec;
	struct client *c;
	struct reply r;
	int queued = 0, got = 0, result = 0;

	start(fx);
	c = consumer_ready(fx);
	make_record(&rec, 1, 60000);
	while (queued < 100 && (result = fake.deliver(fake.consumer, &rec)) == 0)
		queued++;
	assert_int_equal(result, -EAGAIN);
	assert_true(queued > 1);
	assert_int_equal(fake.n_ready, 0);

	while (got < queued) {
		client_expect(c, PROTO_MSG_DELIVERY, 0, &r);
		reply_clear(&r);
		got++;
	}
	pump();
	assert_int_equal(fake.n_ready, 1);
	g_free(rec.payload);
	client_free(c);
}

static void test_client_not_reading_is_disconnected(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct pollfd pfd;
	struct client *c, *other;
	struct reply r;
	uint8_t frame[9] = { 0, 0, 0, 5, PROTO_MSG_STATUS, 0, 0, 0, 1 };
	int i, sent = 0;
	bool hup = false;

	fake.status.reg.aor = "sip:alice@mc.example.org";
	cfg.max_output_bytes = SERVER_MIN_MAX_OUTPUT;
	assert_int_equal(start_with(fx, &cfg), 0);
	c = consumer_ready(fx);

	for (i = 0; i < 2000 && !hup; i++) {
		while (sent < 200000 && send(c->fd, frame, sizeof(frame),
					     MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(frame))
			sent++;
		pump();
		pfd = (struct pollfd) { .fd = c->fd, .events = 0 };
		hup = poll(&pfd, 1, 1) == 1 && (pfd.revents & POLLHUP);
	}
	assert_true(hup);
	assert_non_null(strstr(last_warning, "stopped reading"));
	pump();
	assert_int_equal(fake.n_unsubscribe, 1);

	other = client_ready(fx);
	send_empty(other, PROTO_MSG_STATUS, 2);
	client_expect(other, PROTO_MSG_STATUS_REPLY, 2, &r);
	reply_clear(&r);
	client_free(other);
	client_free(c);
}

/* ---------- monitor ---------- */

static const uint8_t test_fp[SPOOL_FINGERPRINT_LEN] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
	0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
};

static struct client *monitor_ready(const struct fixture *fx)
{
	struct client *c = client_ready(fx);
	struct reply r;

	send_empty(c, PROTO_MSG_MONITOR, 2);
	client_expect(c, PROTO_MSG_OK, 2, &r);
	reply_clear(&r);
	return c;
}

static void assert_str_field(const struct reply *r, uint8_t tag, const char *want)
{
	char *s = reply_str(r, tag);

	assert_string_equal(s, want);
	g_free(s);
}

static void test_monitor_gets_message_event(void **state)
{
	struct fixture *fx = *state;
	struct broker_event ev = {
		.kind = BROKER_EVENT_RECEIVED, .time_us = INT64_C(1700000000000001),
		.id = 5, .lmr_type = "TETRA", .size = 300, .fingerprint = test_fp,
	};
	const uint8_t *v;
	struct client *c;
	struct reply r;
	uint32_t len;

	start(fx);
	c = monitor_ready(fx);
	fake_emit(&ev);
	client_expect(c, PROTO_MSG_EVENT, 0, &r);
	assert_str_field(&r, PROTO_TAG_EVENT_KIND, "received");
	assert_int_equal(reply_u64(&r, PROTO_TAG_EVENT_TIME_US), 1700000000000001);
	assert_int_equal(reply_u64(&r, PROTO_TAG_MESSAGE_ID), 5);
	assert_str_field(&r, PROTO_TAG_LMR_TYPE, "TETRA");
	assert_int_equal(reply_u64(&r, PROTO_TAG_PAYLOAD_SIZE), 300);
	assert_int_equal(reply_field(&r, PROTO_TAG_FINGERPRINT, &v, &len), 1);
	assert_int_equal(len, SPOOL_FINGERPRINT_LEN);
	assert_memory_equal(v, test_fp, SPOOL_FINGERPRINT_LEN);
	/* metadata only */
	assert_int_equal(reply_field(&r, PROTO_TAG_PAYLOAD, NULL, NULL), 0);
	assert_int_equal(reply_field(&r, PROTO_TAG_SIP_STATUS, NULL, NULL), 0);
	reply_clear(&r);
	client_free(c);
}

static void test_monitor_gets_registration_and_rejected(void **state)
{
	struct fixture *fx = *state;
	struct broker_event reg = {
		.kind = BROKER_EVENT_REGISTRATION, .time_us = 1,
		.reg_state = BROKER_REG_FAILED, .sip_status = 403,
		.reason = "Forbidden \xff",	/* not UTF-8: made valid */
	};
	struct broker_event rej = {
		.kind = BROKER_EVENT_REJECTED, .time_us = 2,
		.sip_status = 503, .reason = "Service Unavailable (spool full)",
	};
	struct client *c;
	struct reply r;
	char *s;

	start(fx);
	c = monitor_ready(fx);
	fake_emit(&reg);
	fake_emit(&rej);

	client_expect(c, PROTO_MSG_EVENT, 0, &r);
	assert_str_field(&r, PROTO_TAG_EVENT_KIND, "registration");
	assert_str_field(&r, PROTO_TAG_REG_STATE, "failed");
	assert_int_equal(reply_u32(&r, PROTO_TAG_SIP_STATUS), 403);
	s = reply_str(&r, PROTO_TAG_SIP_REASON);
	assert_true(g_utf8_validate(s, -1, NULL));
	assert_true(g_str_has_prefix(s, "Forbidden "));
	g_free(s);
	assert_int_equal(reply_field(&r, PROTO_TAG_MESSAGE_ID, NULL, NULL), 0);
	reply_clear(&r);

	client_expect(c, PROTO_MSG_EVENT, 0, &r);
	assert_str_field(&r, PROTO_TAG_EVENT_KIND, "rejected");
	assert_int_equal(reply_u32(&r, PROTO_TAG_SIP_STATUS), 503);
	assert_str_field(&r, PROTO_TAG_SIP_REASON, "Service Unavailable (spool full)");
	assert_int_equal(reply_field(&r, PROTO_TAG_MESSAGE_ID, NULL, NULL), 0);
	assert_int_equal(reply_field(&r, PROTO_TAG_FINGERPRINT, NULL, NULL), 0);
	reply_clear(&r);
	client_free(c);
}

static void test_only_monitors_get_events(void **state)
{
	struct fixture *fx = *state;
	struct broker_event ev = {
		.kind = BROKER_EVENT_ACKED, .id = 9, .lmr_type = "P25",
		.size = 3, .fingerprint = test_fp,
	};
	struct client *plain, *mon;
	struct reply r;

	start(fx);
	plain = client_ready(fx);
	mon = monitor_ready(fx);
	fake_emit(&ev);
	client_expect(mon, PROTO_MSG_EVENT, 0, &r);
	reply_clear(&r);

	/* The plain connection's next frame is its own reply, not an event. */
	send_empty(plain, PROTO_MSG_STATUS, 5);
	client_expect(plain, PROTO_MSG_STATUS_REPLY, 5, &r);
	reply_clear(&r);
	client_free(plain);
	client_free(mon);
}

static void test_monitor_twice_is_ealready(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = monitor_ready(fx);
	send_empty(c, PROTO_MSG_MONITOR, 3);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 3, EALREADY, "already a monitor");
	reply_clear(&r);
	client_free(c);
}

static void test_monitor_not_reading_is_disconnected(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct broker_event ev = {
		.kind = BROKER_EVENT_DELIVERED, .id = 1, .lmr_type = "TETRA",
		.size = 10, .fingerprint = test_fp,
		.reason = NULL,
	};
	struct client *mon, *other;
	struct pollfd pfd;
	struct reply r;
	bool hup = false;
	int i;

	cfg.max_output_bytes = SERVER_MIN_MAX_OUTPUT;
	assert_int_equal(start_with(fx, &cfg), 0);
	mon = monitor_ready(fx);
	for (i = 0; i < 200000 && !hup; i++) {
		fake_emit(&ev);
		if (i % 1000 == 0) {
			pfd = (struct pollfd) { .fd = mon->fd, .events = 0 };
			hup = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP);
		}
	}
	pump();
	pfd = (struct pollfd) { .fd = mon->fd, .events = 0 };
	hup = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP);
	assert_true(hup);
	assert_non_null(strstr(last_warning, "stopped reading"));

	/* Gone from the fan-out; others are served. */
	fake_emit(&ev);
	other = client_ready(fx);
	send_empty(other, PROTO_MSG_STATUS, 2);
	client_expect(other, PROTO_MSG_STATUS_REPLY, 2, &r);
	reply_clear(&r);
	client_free(other);
	client_free(mon);
}

/* ---------- spool listing ---------- */

#define LIST_RECORDS 5

static struct spool_record list_records[LIST_RECORDS];
static const bool list_in_flight[LIST_RECORDS] = { true, false, false, true, false };

static void fake_records(void)
{
	size_t i;

	for (i = 0; i < LIST_RECORDS; i++) {
		list_records[i] = (struct spool_record) {
			.id = (int64_t) (i + 1),
			.received_us = INT64_C(1700000000000000) + (int64_t) i,
			.lmr_type = i % 2 ? "P25" : "TETRA",
			.kmf_uri = "sip:kmf@iwf.example.org",
			.sender = i == 0 ? "sip:iwf@iwf.example.org" : NULL,
			.payload_len = 100 + i,
		};
		memcpy(list_records[i].fingerprint, test_fp, SPOOL_FINGERPRINT_LEN);
	}
	fake.records = list_records;
	fake.in_flight = list_in_flight;
	fake.n_records = LIST_RECORDS;
}

static void send_queue(struct client *c, uint32_t id, uint64_t after, uint32_t limit)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_QUEUE, id);
	if (after)
		frame_writer_u64(&w, PROTO_TAG_AFTER_ID, after);
	if (limit)
		frame_writer_u32(&w, PROTO_TAG_LIMIT, limit);
	client_send(c, &w);
}

/* The ENTRY fields of a LIST, as fake replies of their own. */
static int list_entries(const struct reply *r, struct reply *out, int max)
{
	struct frame_reader rd;
	const uint8_t *v;
	uint32_t len;
	uint8_t tag;
	int n = 0;

	assert_int_equal(frame_reader_init(&rd, r->body, r->len, NULL, NULL), 0);
	while (frame_reader_field(&rd, &tag, &v, &len) == 1) {
		if (tag != PROTO_TAG_ENTRY)
			continue;
		assert_true(n < max);
		/* A body is type + id + fields: prefix 5 octets. */
		out[n].len = len + FRAME_BODY_MIN;
		out[n].body = g_malloc0(out[n].len);
		memcpy(out[n].body + FRAME_BODY_MIN, v, len);
		n++;
	}
	return n;
}

static void test_queue_lists_metadata(void **state)
{
	struct fixture *fx = *state;
	struct reply r, e[LIST_RECORDS];
	const uint8_t *v;
	struct client *c;
	uint32_t len;
	int n, i;

	fake_records();
	start(fx);
	c = client_ready(fx);
	send_queue(c, 4, 0, 0);
	client_expect(c, PROTO_MSG_LIST, 4, &r);
	assert_int_equal(reply_u32(&r, PROTO_TAG_MORE), 0);
	n = list_entries(&r, e, LIST_RECORDS);
	assert_int_equal(n, LIST_RECORDS);
	assert_int_equal(fake.list_after, 0);
	assert_int_equal(fake.list_limit, PROTO_LIST_MAX_ENTRIES + 1);

	assert_int_equal(reply_u64(&e[0], PROTO_TAG_MESSAGE_ID), 1);
	assert_str_field(&e[0], PROTO_TAG_LMR_TYPE, "TETRA");
	assert_str_field(&e[0], PROTO_TAG_KMF_URI, "sip:kmf@iwf.example.org");
	assert_str_field(&e[0], PROTO_TAG_SENDER, "sip:iwf@iwf.example.org");
	assert_int_equal(reply_u64(&e[0], PROTO_TAG_RECEIVED_US), 1700000000000000);
	assert_int_equal(reply_u64(&e[0], PROTO_TAG_PAYLOAD_SIZE), 100);
	assert_int_equal(reply_u32(&e[0], PROTO_TAG_IN_FLIGHT), 1);
	assert_int_equal(reply_field(&e[0], PROTO_TAG_FINGERPRINT, &v, &len), 1);
	assert_memory_equal(v, test_fp, SPOOL_FINGERPRINT_LEN);
	assert_int_equal(reply_field(&e[0], PROTO_TAG_PAYLOAD, NULL, NULL), 0);
	assert_int_equal(reply_field(&e[1], PROTO_TAG_SENDER, NULL, NULL), 0);
	assert_int_equal(reply_u32(&e[1], PROTO_TAG_IN_FLIGHT), 0);
	for (i = 0; i < n; i++)
		reply_clear(&e[i]);
	reply_clear(&r);
	client_free(c);
}

static void test_queue_pages(void **state)
{
	struct fixture *fx = *state;
	struct reply r, e[LIST_RECORDS];
	struct client *c;
	int n, i;

	fake_records();
	start(fx);
	c = client_ready(fx);
	send_queue(c, 5, 0, 2);
	client_expect(c, PROTO_MSG_LIST, 5, &r);
	assert_int_equal(fake.list_limit, 3);	/* one more, to know MORE */
	assert_int_equal(reply_u32(&r, PROTO_TAG_MORE), 1);
	n = list_entries(&r, e, LIST_RECORDS);
	assert_int_equal(n, 2);
	assert_int_equal(reply_u64(&e[1], PROTO_TAG_MESSAGE_ID), 2);
	for (i = 0; i < n; i++)
		reply_clear(&e[i]);
	reply_clear(&r);

	send_queue(c, 6, 4, 2);
	client_expect(c, PROTO_MSG_LIST, 6, &r);
	assert_int_equal(fake.list_after, 4);
	assert_int_equal(reply_u32(&r, PROTO_TAG_MORE), 0);
	n = list_entries(&r, e, LIST_RECORDS);
	assert_int_equal(n, 1);
	assert_int_equal(reply_u64(&e[0], PROTO_TAG_MESSAGE_ID), 5);
	reply_clear(&e[0]);
	reply_clear(&r);
	client_free(c);
}

#define BIG_RECORDS 300

/* Entries with 1 KiB URIs: the page ends before the frame limit. */
static void test_queue_reply_fits_frame(void **state)
{
	static struct spool_record big[BIG_RECORDS];
	struct fixture *fx = *state;
	char *uri = g_strnfill(1024, 'u');
	struct client *c;
	struct reply r;
	int i, n;

	for (i = 0; i < BIG_RECORDS; i++)
		big[i] = (struct spool_record) {
			.id = i + 1, .lmr_type = "TETRA", .kmf_uri = uri,
			.mc_service_id = uri, .sender = uri, .payload_len = 1,
		};
	fake.records = big;
	fake.n_records = BIG_RECORDS;

	start(fx);
	c = client_ready(fx);
	send_queue(c, 7, 0, 0);
	client_expect(c, PROTO_MSG_LIST, 7, &r);
	assert_true(r.len <= FRAME_MAX_LEN);
	n = reply_field(&r, PROTO_TAG_ENTRY, NULL, NULL);
	assert_true(n > 10 && n < BIG_RECORDS);
	assert_int_equal(reply_u32(&r, PROTO_TAG_MORE), 1);
	reply_clear(&r);
	client_free(c);
	g_free(uri);
}

static void test_queue_spool_error_is_eio(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	fake.list_result = -EIO;
	start(fx);
	c = client_ready(fx);
	send_queue(c, 8, 0, 0);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 8, EIO, "cannot read the spool");
	reply_clear(&r);
	client_free(c);
}

static void test_queue_bad_after_id_refused(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	send_queue(c, 9, UINT64_MAX, 0);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 9, EINVAL, "AFTER_ID");
	reply_clear(&r);
	assert_int_equal(fake.n_list, 0);
	client_free(c);
}

/* ---------- limits ---------- */

#define SHORT_FRAME_TIMEOUT_MS 200

static void test_half_frame_then_silence_is_closed(void **state)
{
	static const uint8_t half[] = { 0x00, 0x00, 0x00, 0x20, PROTO_MSG_STATUS, 0 };
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct client *bad, *good;
	struct reply r;

	cfg.frame_timeout_ms = SHORT_FRAME_TIMEOUT_MS;
	assert_int_equal(start_with(fx, &cfg), 0);
	good = client_ready(fx);
	bad = client_ready(fx);
	send_all(bad->fd, half, sizeof(half));
	client_expect_eof(bad);
	assert_non_null(strstr(last_warning, "incomplete frame"));

	/* An idle connection with no frame begun is not affected. */
	send_empty(good, PROTO_MSG_STATUS, 3);
	client_expect(good, PROTO_MSG_STATUS_REPLY, 3, &r);
	reply_clear(&r);
	client_free(bad);
	client_free(good);
}

static void test_no_hello_in_time_is_closed(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct client *c;

	cfg.frame_timeout_ms = SHORT_FRAME_TIMEOUT_MS;
	assert_int_equal(start_with(fx, &cfg), 0);
	c = client_new(fx);
	client_expect_eof(c);
	assert_non_null(strstr(last_warning, "no HELLO"));
	client_free(c);
}

static void test_connection_cap_tells_eusers(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct client *a, *b, *over;
	struct reply r;

	cfg.max_connections = 2;
	assert_int_equal(start_with(fx, &cfg), 0);
	a = client_ready(fx);
	b = client_ready(fx);
	over = client_new(fx);
	assert_int_equal(client_recv(over, &r), 0);
	assert_error(&r, 0, EUSERS, "too many connections");
	reply_clear(&r);
	client_expect_eof(over);
	assert_non_null(strstr(last_warning, "2 connections already open"));

	send_empty(a, PROTO_MSG_STATUS, 4);
	client_expect(a, PROTO_MSG_STATUS_REPLY, 4, &r);
	reply_clear(&r);

	/* A slot freed is a slot for the next one. */
	client_free(b);
	pump();
	client_free(over);
	over = client_ready(fx);
	client_free(over);
	client_free(a);
}

static void test_allowed_peers_open_socket_modes(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *users[] = { "nobody", NULL };
	struct stat st;

	cfg.allowed_users = users;
	assert_int_equal(start_with(fx, &cfg), 0);
	assert_int_equal(stat(fx->sockdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0711);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0666);
}

static void test_agent_types_sent_back_are_unknown(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	send_empty(c, PROTO_MSG_EVENT, 3);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 3, EOPNOTSUPP, "unknown message type 0x87");
	reply_clear(&r);
	send_empty(c, PROTO_MSG_LIST, 4);
	assert_int_equal(client_recv(c, &r), 0);
	assert_error(&r, 4, EOPNOTSUPP, "unknown message type 0x88");
	reply_clear(&r);
	client_free(c);
}

/* ---------- peer credentials (root only) ---------- */

/* In a child: become nobody, connect, optionally HELLO, and report by exit
 * status: 0 = closed without a byte, 1 = HELLO_OK came back, 2+ = trouble. */
static int child_as_nobody(const char *path, bool say_hello)
{
	static const uint8_t hello[] = {
		0, 0, 0, 23, PROTO_MSG_HELLO, 0, 0, 0, 1,
		PROTO_TAG_VERSION_MIN, 0, 0, 0, 4, 0, 0, 0, 1,
		PROTO_TAG_VERSION_MAX, 0, 0, 0, 4, 0, 0, 0, 1,
	};
	struct pollfd pfd;
	uint8_t buf[256];
	ssize_t n;
	int fd;

	if (setgroups(0, NULL) < 0 || setgid(NOGROUP_GID) < 0 ||
	    setuid(NOBODY_UID) < 0)
		return 2;

	fd = connect_to(path);
	if (fd < 0)
		return 3;

	if (say_hello && send(fd, hello, sizeof(hello), MSG_NOSIGNAL) < 0 &&
	    errno != EPIPE && errno != ECONNRESET)
		return 4;

	pfd = (struct pollfd) { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 5000) != 1)
		return 5;

	n = recv(fd, buf, sizeof(buf), 0);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 0;
	if (n >= 5 && buf[4] == PROTO_MSG_HELLO_OK)
		return 1;
	return 6;
}

/* Lets nobody reach the socket, so that only the credential check stands
 * between it and the agent. */
static void open_path_to_everyone(const struct fixture *fx)
{
	assert_int_equal(chmod(fx->dir, 0755), 0);
	assert_int_equal(chmod(fx->sockdir, 0755), 0);
	assert_int_equal(chmod(fx->path, 0666), 0);
}

static int run_nobody(struct fixture *fx, bool say_hello)
{
	int status = -1;
	pid_t pid;

	open_path_to_everyone(fx);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_as_nobody(fx->path, say_hello));

	pump_until_child_exits(pid, &status);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_peer_not_allowed_closed_without_reply(void **state)
{
	struct fixture *fx = *state;

	if (geteuid() != 0) {
		print_message("skipped: needs root to connect as another uid\n");
		skip();
	}

	start(fx);
	assert_int_equal(run_nobody(fx, true), 0);
	assert_non_null(strstr(last_warning, "uid 65534"));
}

static void test_allowed_user_accepted(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *users[] = { "nobody", NULL };

	if (geteuid() != 0) {
		print_message("skipped: needs root to connect as another uid\n");
		skip();
	}

	cfg.allowed_users = users;
	assert_int_equal(start_with(fx, &cfg), 0);
	assert_int_equal(run_nobody(fx, true), 1);
}

static void test_allowed_group_accepted(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *groups[] = { "nogroup", NULL };

	if (geteuid() != 0) {
		print_message("skipped: needs root to connect as another uid\n");
		skip();
	}

	cfg.allowed_groups = groups;
	assert_int_equal(start_with(fx, &cfg), 0);
	assert_int_equal(run_nobody(fx, true), 1);
}

/* ---------- operator requests: TRACE and LOG_LEVEL ---------- */

static struct {
	int n_on, n_off;
	const char *level;	/* the fake log level */
} ops_seen;

static void fake_trace_switch(void *ctx, bool on)
{
	assert_ptr_equal(ctx, &ops_seen);
	if (on)
		ops_seen.n_on++;
	else
		ops_seen.n_off++;
}

static int fake_log_level(void *ctx, const char *level, const char **previous,
			  const char **current)
{
	assert_ptr_equal(ctx, &ops_seen);
	*previous = ops_seen.level;
	if (level) {
		if (strcmp(level, "debug") != 0 && strcmp(level, "warning") != 0)
			return -EINVAL;
		ops_seen.level = g_intern_string(level);
	}
	*current = ops_seen.level;
	return 0;
}

static const struct server_operator_ops fake_ops = {
	.trace_switch = fake_trace_switch,
	.log_level = fake_log_level,
};

static void start_with_ops(struct fixture *fx, const struct server_config *cfg)
{
	memset(&ops_seen, 0, sizeof(ops_seen));
	ops_seen.level = "message";
	assert_int_equal(start_with(fx, cfg), 0);
	server_set_operator_ops(fx->server, &fake_ops, &ops_seen);
}

static struct client *tracer_ready(const struct fixture *fx)
{
	struct client *c = client_ready(fx);
	struct reply r;

	send_empty(c, PROTO_MSG_TRACE, 2);
	client_expect(c, PROTO_MSG_OK, 2, &r);
	reply_clear(&r);
	return c;
}

static void send_log_level(struct client *c, uint32_t id, const char *level)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_LOG_LEVEL, id);
	if (level)
		frame_writer_str(&w, PROTO_TAG_LOG_LEVEL, level);
	client_send(c, &w);
}

static void test_operator_requests_without_ops(void **state)
{
	struct fixture *fx = *state;
	struct client *c;
	struct reply r;

	start(fx);
	c = client_ready(fx);
	send_empty(c, PROTO_MSG_TRACE, 2);
	client_expect(c, PROTO_MSG_ERROR, 2, &r);
	assert_error(&r, 2, EOPNOTSUPP, "SIP trace is not available");
	reply_clear(&r);
	send_log_level(c, 3, "debug");
	client_expect(c, PROTO_MSG_ERROR, 3, &r);
	assert_error(&r, 3, EOPNOTSUPP, "cannot be changed");
	reply_clear(&r);
	client_free(c);
}

static void test_trace_events_reach_tracers_only(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct trace_record rec = {
		.direction = TRACE_DIRECTION_IN, .transport = "tcp",
		.peer = "127.0.0.1:5060", .time_us = INT64_C(1700000000000002),
		.len = 512,
	};
	struct client *tracer, *other;
	struct reply r;

	start_with_ops(fx, &cfg);
	tracer = tracer_ready(fx);
	other = client_ready(fx);
	assert_int_equal(ops_seen.n_on, 1);

	server_trace(fx->server, &rec, "MESSAGE sip:a@b SIP/2.0\n[body: x, 1 bytes]\n", 2);
	client_expect(tracer, PROTO_MSG_TRACE_EVENT, 0, &r);
	assert_str_field(&r, PROTO_TAG_TRACE_DIRECTION, "in");
	assert_str_field(&r, PROTO_TAG_TRACE_TRANSPORT, "tcp");
	assert_str_field(&r, PROTO_TAG_TRACE_PEER, "127.0.0.1:5060");
	assert_int_equal(reply_u64(&r, PROTO_TAG_EVENT_TIME_US), 1700000000000002);
	assert_int_equal(reply_u64(&r, PROTO_TAG_TRACE_SIZE), 512);
	assert_int_equal(reply_u64(&r, PROTO_TAG_TRACE_DROPPED), 2);
	assert_str_field(&r, PROTO_TAG_TRACE_TEXT, "MESSAGE sip:a@b SIP/2.0\n[body: x, 1 bytes]\n");
	reply_clear(&r);

	/* none for the other connection: its next frame is its own reply */
	send_empty(other, PROTO_MSG_STATUS, 3);
	client_expect(other, PROTO_MSG_STATUS_REPLY, 3, &r);
	reply_clear(&r);

	send_empty(tracer, PROTO_MSG_TRACE, 4);
	client_expect(tracer, PROTO_MSG_ERROR, 4, &r);
	assert_error(&r, 4, EALREADY, "already traces");
	reply_clear(&r);
	assert_int_equal(ops_seen.n_on, 1);

	/* the last tracer gone: tracing off */
	client_free(tracer);
	pump();
	pump();
	assert_int_equal(ops_seen.n_off, 1);
	client_free(other);
}

/* A tracer that does not read loses trace events, counted, and stays. */
static void test_slow_tracer_drops_not_closed(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct trace_record rec = { .transport = "udp", .peer = "[::1]:5060", .len = 1 };
	char *text = g_malloc(60001);
	struct client *c;
	struct reply r;
	int i, got = 0;

	memset(text, 'h', 60000);
	text[60000] = '\0';
	cfg.max_output_bytes = SERVER_MIN_MAX_OUTPUT;
	start_with_ops(fx, &cfg);
	c = tracer_ready(fx);
	for (i = 0; i < 200; i++)
		server_trace(fx->server, &rec, text, 0);
	pump();
	/* read what was queued (until none comes for WAIT_MS), then one more
	 * comes with the count of the others */
	while (client_recv(c, &r) == 0) {
		assert_int_equal(r.type, PROTO_MSG_TRACE_EVENT);
		assert_int_equal(reply_field(&r, PROTO_TAG_TRACE_DROPPED, NULL, NULL), 0);
		reply_clear(&r);
		got++;
	}
	assert_true(got > 0 && got < 200);
	server_trace(fx->server, &rec, "SIP/2.0 200 OK\n", 0);
	client_expect(c, PROTO_MSG_TRACE_EVENT, 0, &r);
	assert_int_equal(reply_u64(&r, PROTO_TAG_TRACE_DROPPED), (uint64_t) (200 - got));
	reply_clear(&r);
	g_free(text);
	client_free(c);
}

static void test_log_level_set_and_ask(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	struct client *c;
	struct reply r;

	start_with_ops(fx, &cfg);
	c = client_ready(fx);
	send_log_level(c, 2, NULL);
	client_expect(c, PROTO_MSG_LOG_LEVEL_REPLY, 2, &r);
	assert_str_field(&r, PROTO_TAG_LOG_LEVEL, "message");
	assert_str_field(&r, PROTO_TAG_LOG_LEVEL_PREVIOUS, "message");
	reply_clear(&r);

	send_log_level(c, 3, "debug");
	client_expect(c, PROTO_MSG_LOG_LEVEL_REPLY, 3, &r);
	assert_str_field(&r, PROTO_TAG_LOG_LEVEL, "debug");
	assert_str_field(&r, PROTO_TAG_LOG_LEVEL_PREVIOUS, "message");
	reply_clear(&r);

	send_log_level(c, 4, "loud");
	client_expect(c, PROTO_MSG_ERROR, 4, &r);
	assert_error(&r, 4, EINVAL, "unknown log level \"loud\"");
	reply_clear(&r);
	assert_string_equal(ops_seen.level, "debug");
	client_free(c);
}

/* In a child: become nobody, HELLO, send one request of type (LOG_LEVEL
 * with "debug"), and exit with the ERROR_CODE of the answer (0: not an
 * error, 200+: trouble). */
static int child_operator_request(const char *path, uint8_t type)
{
	struct client c = { .fd = -1 };
	struct frame_writer w;
	const uint8_t *frame, *v;
	struct reply r;
	size_t len;
	uint32_t vlen, code = 0;

	if (setgroups(0, NULL) < 0 || setgid(NOGROUP_GID) < 0 || setuid(NOBODY_UID) < 0)
		return 200;
	c.fd = connect_to(path);
	if (c.fd < 0)
		return 201;
	frame_decoder_init(&c.dec);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_HELLO, 1);
	frame_writer_u32(&w, PROTO_TAG_VERSION_MIN, 1);
	frame_writer_u32(&w, PROTO_TAG_VERSION_MAX, 1);
	frame_writer_end(&w, &frame, &len);
	if (send(c.fd, frame, len, MSG_NOSIGNAL) != (ssize_t) len)
		return 202;
	frame_writer_begin(&w, type, 2);
	if (type == PROTO_MSG_LOG_LEVEL)
		frame_writer_str(&w, PROTO_TAG_LOG_LEVEL, "debug");
	frame_writer_end(&w, &frame, &len);
	if (send(c.fd, frame, len, MSG_NOSIGNAL) != (ssize_t) len)
		return 203;
	frame_writer_clear(&w);
	if (client_recv(&c, &r) < 0 || r.type != PROTO_MSG_HELLO_OK)
		return 204;
	reply_clear(&r);
	if (client_recv(&c, &r) < 0 || r.id != 2)
		return 205;
	if (r.type == PROTO_MSG_ERROR && reply_field(&r, PROTO_TAG_ERROR_CODE, &v, &vlen) == 1)
		frame_value_u32(v, vlen, &code);
	return (int) code;
}

static void test_operator_requests_refused_for_other_users(void **state)
{
	struct fixture *fx = *state;
	struct server_config cfg = default_config(fx);
	char *users[] = { "nobody", NULL };
	const uint8_t types[] = { PROTO_MSG_TRACE, PROTO_MSG_LOG_LEVEL };
	int status;
	pid_t pid;

	if (geteuid() != 0) {
		print_message("skipped: needs root to connect as another uid\n");
		skip();
	}

	cfg.allowed_users = users;
	start_with_ops(fx, &cfg);
	open_path_to_everyone(fx);
	for (size_t i = 0; i < sizeof(types); i++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_operator_request(fx->path, types[i]));
		pump_until_child_exits(pid, &status);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), EPERM);
	}
	assert_int_equal(ops_seen.n_on, 0);
	assert_string_equal(ops_seen.level, "message");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_socket_and_dir_modes),
		T(test_existing_dir_left_alone),
		T(test_socket_group_applied),
		T(test_missing_parent_refused),
		T(test_stale_socket_replaced),
		T(test_live_socket_refused),
		T(test_non_socket_refused),
		T(test_stop_unlinks_socket),
		T(test_unknown_allowed_user_refused),
		T(test_small_output_bound_refused),
		T(test_listen_fd_adopted),
		T(test_hello_negotiates_version),
		T(test_hello_version_mismatch),
		T(test_request_before_hello),
		T(test_unknown_type_keeps_connection),
		T(test_unknown_field_ignored),
		T(test_oversized_frame_closes_only_that_connection),
		T(test_truncated_field_closes_connection),
		T(test_status_reply_has_every_field),
		T(test_send_result_when_broker_completes),
		T(test_send_error_without_sip_status),
		T(test_send_timeout_capped),
		T(test_send_invalid_payload_refused),
		T(test_several_sends_outstanding),
		T(test_disconnect_cancels_pending_send),
		T(test_subscribe_passes_types_to_broker),
		T(test_subscribe_all_types),
		T(test_subscribe_busy_type_refused),
		T(test_subscribe_bad_type_refused),
		T(test_delivery_frame_has_all_fields),
		T(test_subscribe_ok_precedes_first_delivery),
		T(test_ack_reaches_broker),
		T(test_nack_reaches_broker),
		T(test_ack_unknown_id_is_enoent),
		T(test_ack_commit_failure_is_error),
		T(test_disconnect_cancels_pending_ack),
		T(test_disconnect_unsubscribes),
		T(test_takeover_closes_old_consumer),
		T(test_slow_consumer_pauses_deliveries),
		T(test_client_not_reading_is_disconnected),
		T(test_peer_not_allowed_closed_without_reply),
		T(test_allowed_user_accepted),
		T(test_allowed_group_accepted),
		T(test_monitor_gets_message_event),
		T(test_monitor_gets_registration_and_rejected),
		T(test_only_monitors_get_events),
		T(test_monitor_twice_is_ealready),
		T(test_monitor_not_reading_is_disconnected),
		T(test_queue_lists_metadata),
		T(test_queue_pages),
		T(test_queue_reply_fits_frame),
		T(test_queue_spool_error_is_eio),
		T(test_queue_bad_after_id_refused),
		T(test_half_frame_then_silence_is_closed),
		T(test_no_hello_in_time_is_closed),
		T(test_connection_cap_tells_eusers),
		T(test_allowed_peers_open_socket_modes),
		T(test_agent_types_sent_back_are_unknown),
		T(test_operator_requests_without_ops),
		T(test_trace_events_reach_tracers_only),
		T(test_slow_tracer_drops_not_closed),
		T(test_log_level_set_and_ask),
		T(test_operator_requests_refused_for_other_users),
	};

	g_log_set_handler("lmrsec-server", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL |
			  G_LOG_FLAG_RECURSION, capture_log, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
