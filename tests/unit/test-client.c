/*
 * test-client.c — unit tests for liblmrsec (libclient/client.c) against a
 * scripted fake agent: a forked child on a socket in a temporary directory
 * that speaks frames through frame.h and checks what the library sends.
 * A script that sees something it did not expect exits non-zero, and the
 * test fails on the child's exit status.
 *
 * Built and run by hand with (from the top of the tree):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -Ilibclient \
 *       libclient/frame.c libclient/client.c tests/unit/test-client.c \
 *       $(pkg-config --cflags --libs cmocka) -o /tmp/test-client && /tmp/test-client
 * and under the sanitizers:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -fsanitize=address,undefined \
 *       -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Ilibclient \
 *       libclient/frame.c libclient/client.c tests/unit/test-client.c \
 *       $(pkg-config --cflags --libs cmocka) -o /tmp/test-client-san && \
 *   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 /tmp/test-client-san
 */
#define _GNU_SOURCE		/* setresuid */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "lmrsec.h"
#include "proto.h"

#define AGENT_VERSION		"fake-agent 1.0"
#define CHILD_ALARM_S		10
#define NOBODY_UID		65534

/* ---------- the fake agent (runs in the forked child) ---------- */

struct fake {
	char dir[32];
	char path[96];
	pid_t pid;
};

/* Inside the child: a failed check ends the script with a non-zero status. */
#define AGENT_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fake agent: line %d: %s\n", __LINE__, #cond); \
		_exit(1); \
	} \
} while (0)

struct agent_frame {
	uint8_t body[FRAME_MAX_LEN];
	size_t len;
	uint8_t type;
	uint32_t id;
};

static bool read_exact(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t) n;
	}

	return true;
}

static void write_exact(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		AGENT_CHECK(n > 0);
		p += n;
		len -= (size_t) n;
	}
}

static void agent_read(int fd, struct agent_frame *f)
{
	uint8_t header[FRAME_HEADER_LEN];

	AGENT_CHECK(read_exact(fd, header, sizeof(header)));
	f->len = (size_t) header[0] << 24 | (size_t) header[1] << 16 |
		 (size_t) header[2] << 8 | header[3];
	AGENT_CHECK(f->len >= FRAME_BODY_MIN && f->len <= FRAME_MAX_LEN);
	AGENT_CHECK(read_exact(fd, f->body, f->len));
	f->type = f->body[0];
	f->id = (uint32_t) f->body[1] << 24 | (uint32_t) f->body[2] << 16 |
		(uint32_t) f->body[3] << 8 | f->body[4];
}

/* The value of the first field with this tag, or NULL. */
static const uint8_t *agent_field(const struct agent_frame *f, uint8_t want,
				  uint32_t *len)
{
	struct frame_reader r;
	const uint8_t *v;
	uint8_t tag;

	AGENT_CHECK(frame_reader_init(&r, f->body, f->len, NULL, NULL) == 0);
	while (frame_reader_field(&r, &tag, &v, len) == 1)
		if (tag == want)
			return v;

	return NULL;
}

static uint32_t agent_field_u32(const struct agent_frame *f, uint8_t tag)
{
	const uint8_t *v;
	uint32_t len, out;

	v = agent_field(f, tag, &len);
	AGENT_CHECK(v && frame_value_u32(v, len, &out) == 0);
	return out;
}

static uint64_t agent_field_u64(const struct agent_frame *f, uint8_t tag)
{
	const uint8_t *v;
	uint32_t len;
	uint64_t out;

	v = agent_field(f, tag, &len);
	AGENT_CHECK(v && frame_value_u64(v, len, &out) == 0);
	return out;
}

static bool agent_field_is(const struct agent_frame *f, uint8_t tag,
			   const char *s)
{
	const uint8_t *v;
	uint32_t len;

	v = agent_field(f, tag, &len);
	return v && len == strlen(s) && memcmp(v, s, len) == 0;
}

static void agent_write(int fd, struct frame_writer *w)
{
	const uint8_t *frame;
	size_t len;

	AGENT_CHECK(frame_writer_end(w, &frame, &len) == 0);
	write_exact(fd, frame, len);
	frame_writer_clear(w);
}

static void agent_expect(int fd, struct agent_frame *f, uint8_t type)
{
	agent_read(fd, f);
	AGENT_CHECK(f->type == type);
	AGENT_CHECK(f->id != 0);
}

static void agent_reply_ok(int fd, uint32_t id)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_OK, id);
	agent_write(fd, &w);
}

static void agent_reply_error(int fd, uint32_t id, int code, const char *text)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_ERROR, id);
	frame_writer_u32(&w, PROTO_TAG_ERROR_CODE, (uint32_t) code);
	frame_writer_str(&w, PROTO_TAG_ERROR_TEXT, text);
	agent_write(fd, &w);
}

static void agent_hello_version(int fd, uint32_t version)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;

	AGENT_CHECK(f);
	agent_expect(fd, f, PROTO_MSG_HELLO);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_VERSION_MIN) == PROTO_VERSION_MIN);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_VERSION_MAX) == PROTO_VERSION_MAX);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_HELLO_OK, f->id);
	frame_writer_u32(&w, PROTO_TAG_VERSION, version);
	frame_writer_str(&w, PROTO_TAG_AGENT_VERSION, AGENT_VERSION);
	agent_write(fd, &w);
	free(f);
}

static void agent_hello(int fd)
{
	agent_hello_version(fd, PROTO_VERSION_MAX);
}

/* A payload of n bytes, byte i = seed + i, with its fingerprint. */
static void make_payload(uint8_t *p, size_t n, uint8_t seed, uint8_t fp[32])
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t) (seed + i);
	lmrsec_sha256(p, n, fp);
}

static void agent_deliver(int fd, uint64_t id, const char *type, size_t n)
{
	uint8_t payload[512], fp[32];
	struct frame_writer w;

	AGENT_CHECK(n <= sizeof(payload));
	make_payload(payload, n, (uint8_t) id, fp);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_DELIVERY, 0);
	frame_writer_u64(&w, PROTO_TAG_MESSAGE_ID, id);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, type);
	frame_writer_str(&w, PROTO_TAG_KMF_URI, "sip:kmf@iwf.example.org");
	frame_writer_str(&w, PROTO_TAG_MC_SERVICE_ID, "sip:alice@mc.example.org");
	frame_writer_str(&w, PROTO_TAG_SENDER, "sip:kmf@iwf.example.org");
	frame_writer_u64(&w, PROTO_TAG_RECEIVED_US, 1700000000000000ull + id);
	frame_writer_bytes(&w, PROTO_TAG_FINGERPRINT, fp, sizeof(fp));
	frame_writer_bytes(&w, PROTO_TAG_PAYLOAD, payload, n);
	agent_write(fd, &w);
}

/* Holds the connection until the library closes it. */
static void agent_wait_close(int fd)
{
	uint8_t buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

typedef void (*agent_script)(int fd);

static void fake_bind(struct fake *f, int *listen_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-client-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/agent.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);

	*listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*listen_fd >= 0);
	assert_int_equal(bind(*listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
}

/* Starts the fake agent: it accepts one connection and runs the script. */
static void fake_start(struct fake *f, agent_script script)
{
	int listen_fd, fd;

	fake_bind(f, &listen_fd);
	assert_int_equal(listen(listen_fd, 4), 0);

	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		alarm(CHILD_ALARM_S);
		fd = accept(listen_fd, NULL, NULL);
		AGENT_CHECK(fd >= 0);
		close(listen_fd);
		script(fd);
		close(fd);
		_exit(0);
	}

	close(listen_fd);
}

static void fake_remove(struct fake *f)
{
	unlink(f->path);
	rmdir(f->dir);
}

/* Waits for the script and fails the test unless it ran to its end. */
static void fake_finish(struct fake *f)
{
	int status;

	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	fake_remove(f);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static struct lmrsec *connect_to(const struct fake *f)
{
	struct lmrsec *c = NULL;

	assert_int_equal(lmrsec_connect_timeout(f->path, 2000, &c), 0);
	assert_non_null(c);
	return c;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void assert_delivery(const struct lmrsec_delivery *d, uint64_t id,
			    const char *type, size_t n)
{
	uint8_t payload[512], fp[32];

	assert_non_null(d);
	make_payload(payload, n, (uint8_t) id, fp);
	assert_int_equal(d->id, id);
	assert_string_equal(d->lmr_type, type);
	assert_int_equal(d->payload_len, n);
	assert_memory_equal(d->payload, payload, n);
	assert_memory_equal(d->fingerprint, fp, 32);
}

/* ---------- connecting ---------- */

static void script_hello_checks_client_name(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;
	uint32_t len;

	AGENT_CHECK(f);
	agent_expect(fd, f, PROTO_MSG_HELLO);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_VERSION_MIN) == PROTO_VERSION_MIN);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_VERSION_MAX) == PROTO_VERSION_MAX);
	AGENT_CHECK(agent_field(f, PROTO_TAG_CLIENT_NAME, &len) && len > 0);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_HELLO_OK, f->id);
	frame_writer_u32(&w, PROTO_TAG_VERSION, PROTO_VERSION_MAX);
	frame_writer_str(&w, PROTO_TAG_AGENT_VERSION, AGENT_VERSION);
	agent_write(fd, &w);
	free(f);
	agent_wait_close(fd);
}

static void test_connect_hello_ok(void **state)
{
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_hello_checks_client_name);
	c = connect_to(&f);
	assert_int_equal(lmrsec_protocol_version(c), PROTO_VERSION_MAX);
	assert_string_equal(lmrsec_agent_version(c), AGENT_VERSION);
	assert_true(lmrsec_fd(c) >= 0);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_hello_version_99(int fd)
{
	agent_hello_version(fd, 99);
	agent_wait_close(fd);
}

static void test_connect_agent_picks_unknown_version_is_eprotonosupport(void **state)
{
	struct fake f;
	struct lmrsec *c = (struct lmrsec *) &f;	/* any non-NULL value */

	(void) state;
	fake_start(&f, script_hello_version_99);
	assert_int_equal(lmrsec_connect_timeout(f.path, 2000, &c), -EPROTONOSUPPORT);
	assert_null(c);
	fake_finish(&f);
}

static void script_hello_refused(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_expect(fd, f, PROTO_MSG_HELLO);
	agent_reply_error(fd, f->id, EPROTONOSUPPORT, "agent speaks versions 2 to 3");
	free(f);
	agent_wait_close(fd);
}

static void test_connect_agent_refuses_version_is_eprotonosupport(void **state)
{
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_hello_refused);
	assert_int_equal(lmrsec_connect_timeout(f.path, 2000, &c), -EPROTONOSUPPORT);
	fake_finish(&f);
}

static void test_connect_missing_path_is_enoent(void **state)
{
	struct lmrsec *c;

	(void) state;
	assert_int_equal(lmrsec_connect_timeout("/nonexistent-lmrsec/agent.sock",
						1000, &c), -ENOENT);
	assert_null(c);
}

static void test_connect_stale_socket_is_econnrefused(void **state)
{
	struct fake f;
	struct lmrsec *c;
	int fd;

	(void) state;
	fake_bind(&f, &fd);
	close(fd);	/* the socket file stays, nobody listens */
	assert_int_equal(lmrsec_connect_timeout(f.path, 1000, &c), -ECONNREFUSED);
	fake_remove(&f);
}

static void test_connect_path_too_long_is_enametoolong(void **state)
{
	char path[200];
	struct lmrsec *c;

	(void) state;
	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(lmrsec_connect_timeout(path, 1000, &c), -ENAMETOOLONG);
}

/* Nobody accepts and the backlog is full: connect itself must time out. */
static void test_connect_full_backlog_times_out(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int listen_fd, fds[8], n = 0, i;
	struct lmrsec *c;
	struct fake f;
	int64_t t0, elapsed;

	(void) state;
	fake_bind(&f, &listen_fd);
	assert_int_equal(listen(listen_fd, 0), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f.path);
	for (n = 0; n < 8; n++) {
		fds[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(fds[n] >= 0);
		if (connect(fds[n], (struct sockaddr *) &sa, sizeof(sa)) < 0) {
			assert_int_equal(errno, EAGAIN);
			break;
		}
	}
	assert_true(n < 8);

	t0 = mono_ms();
	assert_int_equal(lmrsec_connect_timeout(f.path, 200, &c), -ETIMEDOUT);
	elapsed = mono_ms() - t0;
	assert_true(elapsed >= 190 && elapsed < 1000);

	for (i = 0; i <= n; i++)
		close(fds[i]);
	close(listen_fd);
	fake_remove(&f);
}

static void script_hello_silent(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_expect(fd, f, PROTO_MSG_HELLO);
	free(f);
	agent_wait_close(fd);
}

static void test_connect_silent_agent_times_out(void **state)
{
	struct fake f;
	struct lmrsec *c;
	int64_t t0, elapsed;

	(void) state;
	fake_start(&f, script_hello_silent);
	t0 = mono_ms();
	assert_int_equal(lmrsec_connect_timeout(f.path, 200, &c), -ETIMEDOUT);
	elapsed = mono_ms() - t0;
	assert_true(elapsed >= 190 && elapsed < 1000);
	fake_finish(&f);
}

/* ---------- status ---------- */

static void script_status(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_STATUS);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_STATUS_REPLY, f->id);
	frame_writer_str(&w, PROTO_TAG_REG_STATE, "registered");
	frame_writer_str(&w, PROTO_TAG_REG_AOR, "sip:alice@mc.example.org");
	frame_writer_str(&w, PROTO_TAG_REG_REGISTRAR, "sip:mc.example.org;transport=tcp");
	frame_writer_str(&w, PROTO_TAG_REG_TRANSPORT, "tcp");
	frame_writer_u32(&w, PROTO_TAG_REG_EXPIRES_IN, 542);
	frame_writer_u32(&w, PROTO_TAG_REG_NEXT_RETRY, 7);
	frame_writer_u32(&w, PROTO_TAG_REG_LAST_STATUS, 200);
	frame_writer_str(&w, PROTO_TAG_REG_LAST_REASON, "OK");
	frame_writer_str(&w, 0xee, "a tag from a newer agent");
	frame_writer_u64(&w, PROTO_TAG_SPOOL_MESSAGES, 3);
	frame_writer_u64(&w, PROTO_TAG_SPOOL_BYTES, 5000000000ull);
	frame_writer_str(&w, PROTO_TAG_CONSUMER, "TETRA");
	frame_writer_str(&w, PROTO_TAG_CONSUMER, "P25");
	frame_writer_u64(&w, PROTO_TAG_COUNT_RECEIVED, 10);
	frame_writer_u64(&w, PROTO_TAG_COUNT_DELIVERED, 9);
	frame_writer_u64(&w, PROTO_TAG_COUNT_ACKED, 8);
	frame_writer_u64(&w, PROTO_TAG_COUNT_REJECTED, 1);
	frame_writer_u64(&w, PROTO_TAG_COUNT_SENT, 2);
	agent_write(fd, &w);
	free(f);
	agent_wait_close(fd);
}

static void test_status_fields_parsed(void **state)
{
	struct lmrsec_status st;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_status);
	c = connect_to(&f);
	assert_int_equal(lmrsec_status(c, &st, 2000), 0);
	assert_string_equal(st.reg_state, "registered");
	assert_string_equal(st.aor, "sip:alice@mc.example.org");
	assert_string_equal(st.registrar, "sip:mc.example.org;transport=tcp");
	assert_string_equal(st.transport, "tcp");
	assert_int_equal(st.expires_in, 542);
	assert_int_equal(st.next_retry, 7);
	assert_int_equal(st.last_status, 200);
	assert_string_equal(st.last_reason, "OK");
	assert_int_equal(st.spool_messages, 3);
	assert_int_equal(st.spool_bytes, 5000000000ull);
	assert_string_equal(st.consumers, "TETRA,P25");
	assert_int_equal(st.received, 10);
	assert_int_equal(st.delivered, 9);
	assert_int_equal(st.acked, 8);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.sent, 2);
	lmrsec_close(c);
	fake_finish(&f);
}

/* ---------- consumer role ---------- */

static void script_deliveries_during_ack(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_SUBSCRIBE);
	AGENT_CHECK(agent_field_is(f, PROTO_TAG_LMR_TYPE, "TETRA"));
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_TAKEOVER) == 0);
	agent_reply_ok(fd, f->id);
	agent_deliver(fd, 1, "TETRA", 32);

	agent_expect(fd, f, PROTO_MSG_ACK);
	AGENT_CHECK(agent_field_u64(f, PROTO_TAG_MESSAGE_ID) == 1);
	/* Two more payloads overtake the ACK's reply. */
	agent_deliver(fd, 2, "TETRA", 100);
	agent_deliver(fd, 3, "TETRA", 7);
	agent_reply_ok(fd, f->id);
	agent_deliver(fd, 4, "TETRA", 1);
	free(f);
	agent_wait_close(fd);
}

/* Three ACKs arrive before any is answered (the client did not wait);
 * they are answered out of order, the second with an error. */
static void script_pipelined_acks(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	uint32_t rid[3];

	AGENT_CHECK(f);
	agent_hello(fd);
	for (int i = 0; i < 3; i++) {
		agent_expect(fd, f, PROTO_MSG_ACK);
		AGENT_CHECK(agent_field_u64(f, PROTO_TAG_MESSAGE_ID) == (uint64_t) (11 + i));
		rid[i] = f->id;
	}
	usleep(200 * 1000);	/* the client's finish(c, 0) sees none answered */
	agent_reply_ok(fd, rid[2]);
	agent_deliver(fd, 14, "TETRA", 5);
	agent_reply_error(fd, rid[1], ENOENT, "message 12 is not in flight");
	agent_reply_ok(fd, rid[0]);
	agent_expect(fd, f, PROTO_MSG_ACK);
	AGENT_CHECK(agent_field_u64(f, PROTO_TAG_MESSAGE_ID) == 14);
	agent_reply_ok(fd, f->id);
	free(f);
	agent_wait_close(fd);
}

static void test_pipelined_acks_settle_out_of_order(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_pipelined_acks);
	c = connect_to(&f);
	assert_int_equal(lmrsec_ack_finish(c, 0), 0);	/* none started */
	for (uint64_t id = 11; id <= 13; id++)
		assert_int_equal(lmrsec_ack_start(c, id, 2000), 0);
	assert_int_equal(lmrsec_ack_finish(c, 0), -ETIMEDOUT);
	assert_int_equal(lmrsec_ack_finish(c, 2000), -ENOENT);
	assert_string_equal(lmrsec_last_error(c), "message 12 is not in flight");
	/* The delivery that came between the answers waits in the handle. */
	assert_int_equal(lmrsec_next_delivery(c, &d, 0), 0);
	assert_delivery(d, 14, "TETRA", 5);
	assert_int_equal(lmrsec_ack_start(c, d->id, 2000), 0);
	lmrsec_delivery_free(d);
	assert_int_equal(lmrsec_ack_finish(c, 2000), 0);
	assert_int_equal(lmrsec_ack_finish(c, 0), 0);
	lmrsec_close(c);
	fake_finish(&f);
}

/* LMRSEC_ACKS_MAX unanswered: the next start waits for an answer. */
static void script_acks_bounded(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	uint32_t rid[LMRSEC_ACKS_MAX];

	AGENT_CHECK(f);
	agent_hello(fd);
	for (int i = 0; i < LMRSEC_ACKS_MAX; i++) {
		agent_expect(fd, f, PROTO_MSG_ACK);
		rid[i] = f->id;
	}
	usleep(500 * 1000);	/* the 65th start(…, 100 ms) gives up meanwhile */
	for (int i = 0; i < LMRSEC_ACKS_MAX; i++)
		agent_reply_ok(fd, rid[i]);
	agent_expect(fd, f, PROTO_MSG_ACK);
	AGENT_CHECK(agent_field_u64(f, PROTO_TAG_MESSAGE_ID) == 1000);
	agent_reply_ok(fd, f->id);
	free(f);
	agent_wait_close(fd);
}

static void test_pipelined_acks_are_bounded(void **state)
{
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_acks_bounded);
	c = connect_to(&f);
	for (uint64_t id = 1; id <= LMRSEC_ACKS_MAX; id++)
		assert_int_equal(lmrsec_ack_start(c, id, 2000), 0);
	assert_int_equal(lmrsec_ack_start(c, 1000, 100), -ETIMEDOUT);
	assert_int_equal(lmrsec_ack_start(c, 1000, 3000), 0);
	assert_int_equal(lmrsec_ack_finish(c, 2000), 0);
	lmrsec_close(c);
	fake_finish(&f);
}

static void test_deliveries_during_ack_wait_are_queued_in_order(void **state)
{
	const char *types[] = { "TETRA", NULL };
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_deliveries_during_ack);
	c = connect_to(&f);
	assert_int_equal(lmrsec_subscribe(c, types, 0, 2000), 0);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_delivery(d, 1, "TETRA", 32);
	assert_int_equal(lmrsec_ack(c, d->id, 2000), 0);
	lmrsec_delivery_free(d);

	assert_true(lmrsec_pending(c) >= 2);
	assert_int_equal(lmrsec_next_delivery(c, &d, 0), 0);
	assert_delivery(d, 2, "TETRA", 100);
	lmrsec_delivery_free(d);
	assert_int_equal(lmrsec_next_delivery(c, &d, 0), 0);
	assert_delivery(d, 3, "TETRA", 7);
	lmrsec_delivery_free(d);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_delivery(d, 4, "TETRA", 1);
	lmrsec_delivery_free(d);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_delivery_metadata(int fd)
{
	agent_hello(fd);
	agent_deliver(fd, 9, "P25", 16);
	agent_wait_close(fd);
}

static void test_delivery_metadata_parsed(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_delivery_metadata);
	c = connect_to(&f);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_delivery(d, 9, "P25", 16);
	assert_string_equal(d->kmf_uri, "sip:kmf@iwf.example.org");
	assert_string_equal(d->mc_service_id, "sip:alice@mc.example.org");
	assert_string_equal(d->sender, "sip:kmf@iwf.example.org");
	assert_int_equal(d->received_us, 1700000000000009ull);
	lmrsec_delivery_free(d);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_delivery_minimal(int fd)
{
	uint8_t payload[4] = { 1, 2, 3, 4 }, fp[32];
	struct frame_writer w;

	agent_hello(fd);
	lmrsec_sha256(payload, sizeof(payload), fp);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_DELIVERY, 0);
	frame_writer_u64(&w, PROTO_TAG_MESSAGE_ID, 5);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "DMR");
	frame_writer_bytes(&w, PROTO_TAG_FINGERPRINT, fp, sizeof(fp));
	frame_writer_bytes(&w, PROTO_TAG_PAYLOAD, payload, sizeof(payload));
	agent_write(fd, &w);
	agent_wait_close(fd);
}

static void test_delivery_absent_strings_are_empty(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_delivery_minimal);
	c = connect_to(&f);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_string_equal(d->kmf_uri, "");
	assert_string_equal(d->mc_service_id, "");
	assert_string_equal(d->sender, "");
	lmrsec_delivery_free(d);
	lmrsec_close(c);
	fake_finish(&f);
}

static void test_delivery_verify_matches_and_mismatches(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_delivery_metadata);
	c = connect_to(&f);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_int_equal(lmrsec_delivery_verify(d), 0);
	d->payload[0] ^= 1;
	assert_int_equal(lmrsec_delivery_verify(d), -EBADMSG);
	lmrsec_delivery_free(d);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_ack_ignored(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_ACK);
	free(f);
	agent_wait_close(fd);
}

static void test_ack_without_reply_times_out_within_bounds(void **state)
{
	struct fake f;
	struct lmrsec *c;
	int64_t t0, elapsed;

	(void) state;
	fake_start(&f, script_ack_ignored);
	c = connect_to(&f);
	t0 = mono_ms();
	assert_int_equal(lmrsec_ack(c, 1, 300), -ETIMEDOUT);
	elapsed = mono_ms() - t0;
	assert_true(elapsed >= 290);
	assert_true(elapsed < 1000);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_late_reply(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	uint32_t late;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_ACK);
	late = f->id;
	agent_expect(fd, f, PROTO_MSG_NACK);
	/* The ACK's error comes after the library gave up on it. */
	agent_reply_error(fd, late, ENOENT, "no such message");
	agent_reply_ok(fd, f->id);
	free(f);
	agent_wait_close(fd);
}

static void test_late_reply_after_timeout_is_dropped(void **state)
{
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_late_reply);
	c = connect_to(&f);
	assert_int_equal(lmrsec_ack(c, 1, 100), -ETIMEDOUT);
	assert_int_equal(lmrsec_nack(c, 2, 2000), 0);
	assert_string_equal(lmrsec_last_error(c), "");
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_idle(int fd)
{
	agent_hello(fd);
	agent_wait_close(fd);
}

static void test_next_delivery_poll_returns_etimedout_at_once(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;
	int64_t t0;

	(void) state;
	fake_start(&f, script_idle);
	c = connect_to(&f);
	t0 = mono_ms();
	assert_int_equal(lmrsec_next_delivery(c, &d, 0), -ETIMEDOUT);
	assert_null(d);
	assert_true(mono_ms() - t0 < 100);
	assert_int_equal(lmrsec_pending(c), 0);
	lmrsec_close(c);
	fake_finish(&f);
}

static void on_alarm(int sig)
{
	(void) sig;
}

/* SIGALRM in ms, with a handler installed without SA_RESTART. */
static void alarm_in(int ms)
{
	struct itimerval it = { .it_value = { 0, ms * 1000 } };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void test_next_delivery_signal_is_eintr(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;
	int64_t t0;

	(void) state;
	fake_start(&f, script_idle);
	c = connect_to(&f);
	t0 = mono_ms();
	alarm_in(100);
	assert_int_equal(lmrsec_next_delivery(c, &d, 3000), -EINTR);
	assert_true(mono_ms() - t0 < 1000);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_ack_slow_ok(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_ACK);
	usleep(300 * 1000);
	agent_reply_ok(fd, f->id);
	free(f);
	agent_wait_close(fd);
}

static void test_ack_is_not_cut_short_by_a_signal(void **state)
{
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_ack_slow_ok);
	c = connect_to(&f);
	alarm_in(100);
	assert_int_equal(lmrsec_ack(c, 1, 3000), 0);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_subscribe_busy(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_SUBSCRIBE);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_TAKEOVER) == 0);
	agent_reply_error(fd, f->id, EBUSY, "LMR type TETRA already has a consumer");
	agent_expect(fd, f, PROTO_MSG_SUBSCRIBE);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_TAKEOVER) == 1);
	agent_reply_ok(fd, f->id);
	free(f);
	agent_wait_close(fd);
}

static void test_subscribe_busy_is_ebusy_then_takeover_works(void **state)
{
	const char *types[] = { "TETRA", "P25", NULL };
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_subscribe_busy);
	c = connect_to(&f);
	assert_int_equal(lmrsec_subscribe(c, types, 0, 2000), -EBUSY);
	assert_string_equal(lmrsec_last_error(c), "LMR type TETRA already has a consumer");
	assert_int_equal(lmrsec_subscribe(c, types, 1, 2000), 0);
	assert_string_equal(lmrsec_last_error(c), "");
	lmrsec_close(c);
	fake_finish(&f);
}

static void test_subscribe_rejects_bad_types(void **state)
{
	const char *bad[] = { "TE TRA", NULL };
	const char *long_type[] = { "ABCDEFGHIJKLMNOPQ", NULL };
	const char *none[] = { NULL };
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_idle);
	c = connect_to(&f);
	assert_int_equal(lmrsec_subscribe(c, bad, 0, 1000), -EINVAL);
	assert_int_equal(lmrsec_subscribe(c, long_type, 0, 1000), -EINVAL);
	assert_int_equal(lmrsec_subscribe(c, none, 0, 1000), -EINVAL);
	assert_int_equal(lmrsec_subscribe(c, NULL, 0, 1000), -EINVAL);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_takeover_notice(int fd)
{
	agent_hello(fd);
	agent_deliver(fd, 1, "TETRA", 8);
	agent_reply_error(fd, 0, EBUSY, "taken over by another consumer");
	/* and the agent closes the connection */
}

static void test_unsolicited_error_comes_from_next_delivery_in_order(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_takeover_notice);
	c = connect_to(&f);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_delivery(d, 1, "TETRA", 8);
	lmrsec_delivery_free(d);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), -EBUSY);
	assert_null(d);
	assert_string_equal(lmrsec_last_error(c), "taken over by another consumer");
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), -ECONNRESET);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_close_after_hello(int fd)
{
	agent_hello(fd);
}

static void test_peer_close_is_econnreset(void **state)
{
	struct lmrsec_status st;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_close_after_hello);
	c = connect_to(&f);
	fake_finish(&f);	/* the agent has closed its end */
	assert_int_equal(lmrsec_status(c, &st, 2000), -ECONNRESET);
	lmrsec_close(c);
}

static void test_peer_close_is_sticky(void **state)
{
	struct lmrsec_delivery *d;
	struct lmrsec_status st;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_close_after_hello);
	c = connect_to(&f);
	fake_finish(&f);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), -ECONNRESET);
	assert_int_equal(lmrsec_status(c, &st, 2000), -ECONNRESET);
	assert_int_equal(lmrsec_ack(c, 1, 2000), -ECONNRESET);
	lmrsec_close(c);
}

static void script_notice_then_close(int fd)
{
	agent_hello(fd);
	agent_reply_error(fd, 0, EBUSY, "taken over by another consumer");
}

static void test_peer_close_after_notice_keeps_its_text(void **state)
{
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_notice_then_close);
	c = connect_to(&f);
	fake_finish(&f);
	assert_int_equal(lmrsec_ack(c, 1, 2000), -ECONNRESET);
	assert_string_equal(lmrsec_last_error(c), "taken over by another consumer");
	lmrsec_close(c);
}

/* ---------- malformed replies ---------- */

static void script_status_truncated_field(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	uint8_t frame[] = {
		0, 0, 0, 12,			/* body length */
		PROTO_MSG_STATUS_REPLY, 0, 0, 0, 0,	/* id patched below */
		PROTO_TAG_REG_STATE, 0, 0, 0, 200,	/* 200 bytes promised */
		'r', 'e',
	};

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_STATUS);
	frame[5] = (uint8_t) (f->id >> 24);
	frame[6] = (uint8_t) (f->id >> 16);
	frame[7] = (uint8_t) (f->id >> 8);
	frame[8] = (uint8_t) f->id;
	write_exact(fd, frame, sizeof(frame));
	free(f);
	agent_wait_close(fd);
}

static void test_truncated_field_is_eproto(void **state)
{
	struct lmrsec_status st;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_status_truncated_field);
	c = connect_to(&f);
	assert_int_equal(lmrsec_status(c, &st, 2000), -EPROTO);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_status_answered_with_ok(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_STATUS);
	agent_reply_ok(fd, f->id);
	free(f);
	agent_wait_close(fd);
}

static void test_reply_of_wrong_type_is_eproto(void **state)
{
	struct lmrsec_status st;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_status_answered_with_ok);
	c = connect_to(&f);
	assert_int_equal(lmrsec_status(c, &st, 2000), -EPROTO);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_status_u32_wrong_size(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_STATUS);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_STATUS_REPLY, f->id);
	frame_writer_str(&w, PROTO_TAG_REG_STATE, "registered");
	frame_writer_bytes(&w, PROTO_TAG_REG_EXPIRES_IN, "\1\2", 2);
	agent_write(fd, &w);
	free(f);
	agent_wait_close(fd);
}

static void test_integer_of_wrong_size_is_eproto(void **state)
{
	struct lmrsec_status st;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_status_u32_wrong_size);
	c = connect_to(&f);
	assert_int_equal(lmrsec_status(c, &st, 2000), -EPROTO);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_oversized_frame(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	uint8_t header[] = { 0x00, 0x10, 0x00, 0x00 };	/* 1 MiB declared */

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_STATUS);
	write_exact(fd, header, sizeof(header));
	free(f);
	agent_wait_close(fd);
}

static void test_oversized_frame_is_eproto_and_sticky(void **state)
{
	struct lmrsec_status st;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_oversized_frame);
	c = connect_to(&f);
	assert_int_equal(lmrsec_status(c, &st, 2000), -EPROTO);
	assert_int_equal(lmrsec_ack(c, 1, 2000), -EPROTO);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_delivery_without_fingerprint(int fd)
{
	struct frame_writer w;

	agent_hello(fd);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_DELIVERY, 0);
	frame_writer_u64(&w, PROTO_TAG_MESSAGE_ID, 1);
	frame_writer_str(&w, PROTO_TAG_LMR_TYPE, "TETRA");
	frame_writer_bytes(&w, PROTO_TAG_PAYLOAD, "key", 3);
	agent_write(fd, &w);
	agent_deliver(fd, 2, "TETRA", 5);
	agent_wait_close(fd);
}

static void test_malformed_delivery_is_eproto_in_its_place(void **state)
{
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_delivery_without_fingerprint);
	c = connect_to(&f);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), -EPROTO);
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_delivery(d, 2, "TETRA", 5);
	lmrsec_delivery_free(d);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_error_code_zero(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_ACK);
	agent_reply_error(fd, f->id, 0, "no code");
	free(f);
	agent_wait_close(fd);
}

static void test_error_without_errno_is_eproto(void **state)
{
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_error_code_zero);
	c = connect_to(&f);
	assert_int_equal(lmrsec_ack(c, 1, 2000), -EPROTO);
	lmrsec_close(c);
	fake_finish(&f);
}

/* ---------- requester role: send ---------- */

static void script_send_403(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;
	uint8_t payload[300], fp[32];
	const uint8_t *v;
	uint32_t len;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_SEND);
	make_payload(payload, sizeof(payload), 0, fp);
	AGENT_CHECK(agent_field_is(f, PROTO_TAG_LMR_TYPE, "P25"));
	AGENT_CHECK(agent_field_is(f, PROTO_TAG_TO, "sip:kmf2@iwf.example.org"));
	v = agent_field(f, PROTO_TAG_PAYLOAD, &len);
	AGENT_CHECK(v && len == sizeof(payload) && memcmp(v, payload, len) == 0);
	/* The agent gets less than the caller's 10 s, to answer in time. */
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_TIMEOUT_MS) == 9000);

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND_RESULT, f->id);
	frame_writer_u32(&w, PROTO_TAG_SIP_STATUS, 403);
	frame_writer_str(&w, PROTO_TAG_SIP_REASON, "Forbidden");
	agent_write(fd, &w);
	free(f);
	agent_wait_close(fd);
}

static void test_send_result_parsed(void **state)
{
	struct lmrsec_send_result res;
	uint8_t payload[300], fp[32];
	struct fake f;
	struct lmrsec *c;

	(void) state;
	make_payload(payload, sizeof(payload), 0, fp);
	fake_start(&f, script_send_403);
	c = connect_to(&f);
	assert_int_equal(lmrsec_send(c, "P25", "sip:kmf2@iwf.example.org",
				     payload, sizeof(payload), &res, 10000), 0);
	assert_int_equal(res.sip_status, 403);
	assert_string_equal(res.sip_reason, "Forbidden");
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_send_not_registered(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	uint32_t len;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_SEND);
	AGENT_CHECK(agent_field(f, PROTO_TAG_TO, &len) == NULL);
	agent_reply_error(fd, f->id, ENOTCONN, "not registered");
	free(f);
	agent_wait_close(fd);
}

static void test_send_not_registered_is_enotconn_with_text(void **state)
{
	struct lmrsec_send_result res;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_send_not_registered);
	c = connect_to(&f);
	assert_int_equal(lmrsec_send(c, "TETRA", NULL, "k", 1, &res, 5000), -ENOTCONN);
	assert_string_equal(lmrsec_last_error(c), "not registered");
	lmrsec_close(c);
	fake_finish(&f);
}

static void test_send_rejects_bad_arguments(void **state)
{
	static uint8_t big[65536];
	struct lmrsec_send_result res;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_idle);
	c = connect_to(&f);
	assert_int_equal(lmrsec_send(c, "TETRA", NULL, big, 0, &res, 1000), -EINVAL);
	assert_int_equal(lmrsec_send(c, "TETRA", NULL, big, sizeof(big), &res, 1000), -EINVAL);
	assert_int_equal(lmrsec_send(c, "bad type", NULL, big, 1, &res, 1000), -EINVAL);
	assert_int_equal(lmrsec_send(c, "TETRA", "", big, 1, &res, 1000), -EINVAL);
	assert_int_equal(lmrsec_send(c, "TETRA", NULL, big, 1, NULL, 1000), -EINVAL);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_send_nonblocking(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_SEND);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_TIMEOUT_MS) == 4000);
	agent_deliver(fd, 7, "TETRA", 3);
	usleep(100 * 1000);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND_RESULT, f->id);
	frame_writer_u32(&w, PROTO_TAG_SIP_STATUS, 202);
	frame_writer_str(&w, PROTO_TAG_SIP_REASON, "Accepted");
	agent_write(fd, &w);
	free(f);
	agent_wait_close(fd);
}

static void test_send_start_finish_nonblocking(void **state)
{
	struct lmrsec_send_result res;
	struct lmrsec_delivery *d;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_send_nonblocking);
	c = connect_to(&f);
	assert_int_equal(lmrsec_send_start(c, "TETRA", NULL, "key", 3, 4000), 0);
	assert_int_equal(lmrsec_send_start(c, "TETRA", NULL, "key", 3, 4000), -EALREADY);
	assert_int_equal(lmrsec_send_finish(c, &res, 0), -ETIMEDOUT);
	/* A delivery meanwhile is queued, the answer kept for finish(). */
	assert_int_equal(lmrsec_next_delivery(c, &d, 2000), 0);
	assert_delivery(d, 7, "TETRA", 3);
	lmrsec_delivery_free(d);
	assert_int_equal(lmrsec_send_finish(c, &res, 2000), 0);
	assert_int_equal(res.sip_status, 202);
	assert_string_equal(res.sip_reason, "Accepted");
	assert_int_equal(lmrsec_send_finish(c, &res, 0), -EINVAL);
	lmrsec_close(c);
	fake_finish(&f);
}

#define FLOOD_DELIVERIES	600

static void script_flood_before_reading_send(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;
	uint64_t i;

	AGENT_CHECK(f);
	agent_hello(fd);
	/* Blocks until the library reads, which it must do while it is
	 * itself blocked writing a SEND nobody reads yet. */
	for (i = 1; i <= FLOOD_DELIVERIES; i++)
		agent_deliver(fd, i, "TETRA", 500);
	agent_expect(fd, f, PROTO_MSG_SEND);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND_RESULT, f->id);
	frame_writer_u32(&w, PROTO_TAG_SIP_STATUS, 200);
	frame_writer_str(&w, PROTO_TAG_SIP_REASON, "OK");
	agent_write(fd, &w);
	free(f);
	agent_wait_close(fd);
}

static void test_send_while_agent_floods_does_not_deadlock(void **state)
{
	static uint8_t payload[65535];
	struct lmrsec_send_result res;
	struct lmrsec_delivery *d;
	int small = 4096;
	struct fake f;
	struct lmrsec *c;
	uint64_t i;

	(void) state;
	fake_start(&f, script_flood_before_reading_send);
	c = connect_to(&f);
	/* A small send buffer so the SEND cannot be written in one go. */
	assert_int_equal(setsockopt(lmrsec_fd(c), SOL_SOCKET, SO_SNDBUF,
				    &small, sizeof(small)), 0);
	assert_int_equal(lmrsec_send(c, "TETRA", NULL, payload, sizeof(payload),
				     &res, 5000), 0);
	assert_int_equal(res.sip_status, 200);
	assert_int_equal(lmrsec_pending(c), FLOOD_DELIVERIES);
	for (i = 1; i <= FLOOD_DELIVERIES; i++) {
		assert_int_equal(lmrsec_next_delivery(c, &d, 0), 0);
		assert_int_equal(d->id, i);
		lmrsec_delivery_free(d);
	}
	lmrsec_close(c);
	fake_finish(&f);
}

/* ---------- monitor role ---------- */

static void agent_event(int fd, const char *kind, uint64_t id, const char *type,
			bool with_fp)
{
	uint8_t fp[32];
	struct frame_writer w;

	memset(fp, 0xab, sizeof(fp));
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_EVENT, 0);
	frame_writer_str(&w, PROTO_TAG_EVENT_KIND, kind);
	frame_writer_u64(&w, PROTO_TAG_EVENT_TIME_US, 1700000000000000ull + id);
	if (id)
		frame_writer_u64(&w, PROTO_TAG_MESSAGE_ID, id);
	if (type)
		frame_writer_str(&w, PROTO_TAG_LMR_TYPE, type);
	if (with_fp) {
		frame_writer_u64(&w, PROTO_TAG_PAYLOAD_SIZE, 256);
		frame_writer_bytes(&w, PROTO_TAG_FINGERPRINT, fp, sizeof(fp));
	}
	agent_write(fd, &w);
}

static void script_monitor(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_MONITOR);
	agent_reply_ok(fd, f->id);
	agent_event(fd, "received", 3, "TETRA", true);
	/* a delivery on the same connection goes to its own queue */
	agent_deliver(fd, 3, "TETRA", 16);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_EVENT, 0);
	frame_writer_str(&w, PROTO_TAG_EVENT_KIND, "registration");
	frame_writer_u64(&w, PROTO_TAG_EVENT_TIME_US, 5);
	frame_writer_str(&w, PROTO_TAG_REG_STATE, "registered");
	frame_writer_u32(&w, PROTO_TAG_SIP_STATUS, 200);
	frame_writer_str(&w, PROTO_TAG_SIP_REASON, "OK");
	agent_write(fd, &w);
	agent_event(fd, "teleported", 0, NULL, false);	/* a later kind */
	free(f);
	agent_wait_close(fd);
}

static void test_monitor_events_parsed_in_order(void **state)
{
	struct lmrsec_delivery *d;
	struct lmrsec_event *ev;
	uint8_t fp[32];
	struct fake f;
	struct lmrsec *c;

	(void) state;
	memset(fp, 0xab, sizeof(fp));
	fake_start(&f, script_monitor);
	c = connect_to(&f);
	assert_int_equal(lmrsec_monitor(c, 2000), 0);

	assert_int_equal(lmrsec_next_event(c, &ev, 2000), 0);
	assert_int_equal(ev->kind, LMRSEC_EVENT_RECEIVED);
	assert_string_equal(ev->name, "received");
	assert_int_equal(ev->time_us, 1700000000000003ull);
	assert_int_equal(ev->id, 3);
	assert_string_equal(ev->lmr_type, "TETRA");
	assert_int_equal(ev->size, 256);
	assert_true(ev->has_fingerprint);
	assert_memory_equal(ev->fingerprint, fp, 32);
	assert_int_equal(ev->sip_status, 0);
	lmrsec_event_free(ev);

	assert_int_equal(lmrsec_next_event(c, &ev, 2000), 0);
	assert_int_equal(ev->kind, LMRSEC_EVENT_REGISTRATION);
	assert_string_equal(ev->reg_state, "registered");
	assert_int_equal(ev->sip_status, 200);
	assert_string_equal(ev->reason, "OK");
	assert_int_equal(ev->id, 0);
	assert_false(ev->has_fingerprint);
	lmrsec_event_free(ev);

	assert_int_equal(lmrsec_next_event(c, &ev, 2000), 0);
	assert_int_equal(ev->kind, LMRSEC_EVENT_OTHER);
	assert_string_equal(ev->name, "teleported");
	lmrsec_event_free(ev);
	assert_int_equal(lmrsec_next_event(c, &ev, 0), -ETIMEDOUT);

	/* The delivery read meanwhile waits in its own queue. */
	assert_int_equal(lmrsec_pending(c), 1);
	assert_int_equal(lmrsec_next_delivery(c, &d, 0), 0);
	assert_delivery(d, 3, "TETRA", 16);
	lmrsec_delivery_free(d);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_event_without_kind(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_MONITOR);
	agent_reply_ok(fd, f->id);
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_EVENT, 0);
	frame_writer_u64(&w, PROTO_TAG_MESSAGE_ID, 1);
	agent_write(fd, &w);
	agent_event(fd, "acked", 1, "TETRA", true);
	free(f);
	agent_wait_close(fd);
}

static void test_malformed_event_is_eproto_in_its_place(void **state)
{
	struct lmrsec_event *ev;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_event_without_kind);
	c = connect_to(&f);
	assert_int_equal(lmrsec_monitor(c, 2000), 0);
	assert_int_equal(lmrsec_next_event(c, &ev, 2000), -EPROTO);
	assert_null(ev);
	assert_int_equal(lmrsec_next_event(c, &ev, 2000), 0);
	assert_int_equal(ev->kind, LMRSEC_EVENT_ACKED);
	lmrsec_event_free(ev);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_monitor_then_close(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_MONITOR);
	agent_reply_ok(fd, f->id);
	agent_event(fd, "expired", 8, "DMR", true);
	free(f);
}

static void test_events_read_before_close_are_handed_out(void **state)
{
	struct lmrsec_event *ev;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_monitor_then_close);
	c = connect_to(&f);
	assert_int_equal(lmrsec_monitor(c, 2000), 0);
	fake_finish(&f);
	assert_int_equal(lmrsec_next_event(c, &ev, 2000), 0);
	assert_int_equal(ev->kind, LMRSEC_EVENT_EXPIRED);
	lmrsec_event_free(ev);
	assert_int_equal(lmrsec_next_event(c, &ev, 2000), -ECONNRESET);
	assert_int_equal(lmrsec_process(c), -ECONNRESET);
	lmrsec_close(c);
}

/* ---------- operator role: trace and log level ---------- */

static void agent_trace(int fd, const char *direction, const char *text, uint64_t dropped)
{
	struct frame_writer w;

	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_TRACE_EVENT, 0);
	frame_writer_str(&w, PROTO_TAG_TRACE_DIRECTION, direction);
	frame_writer_str(&w, PROTO_TAG_TRACE_TRANSPORT, "tcp");
	frame_writer_str(&w, PROTO_TAG_TRACE_PEER, "127.0.0.1:5060");
	frame_writer_u64(&w, PROTO_TAG_EVENT_TIME_US, 1700000000000009ull);
	frame_writer_u64(&w, PROTO_TAG_TRACE_SIZE, 700);
	if (text)
		frame_writer_str(&w, PROTO_TAG_TRACE_TEXT, text);
	if (dropped)
		frame_writer_u64(&w, PROTO_TAG_TRACE_DROPPED, dropped);
	agent_write(fd, &w);
}

static void script_trace_and_level(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	struct frame_writer w;
	uint32_t len;

	AGENT_CHECK(f);
	agent_hello(fd);
	agent_expect(fd, f, PROTO_MSG_TRACE);
	agent_reply_ok(fd, f->id);
	agent_trace(fd, "in", "MESSAGE sip:a@b SIP/2.0\n", 0);
	agent_trace(fd, "out", NULL, 0);		/* no text: malformed */
	agent_trace(fd, "out", "SIP/2.0 200 OK\n", 3);
	agent_expect(fd, f, PROTO_MSG_LOG_LEVEL);
	AGENT_CHECK(agent_field_is(f, PROTO_TAG_LOG_LEVEL, "debug"));
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_LOG_LEVEL_REPLY, f->id);
	frame_writer_str(&w, PROTO_TAG_LOG_LEVEL, "debug");
	frame_writer_str(&w, PROTO_TAG_LOG_LEVEL_PREVIOUS, "message");
	agent_write(fd, &w);
	agent_expect(fd, f, PROTO_MSG_LOG_LEVEL);
	AGENT_CHECK(agent_field(f, PROTO_TAG_LOG_LEVEL, &len) == NULL);
	agent_reply_error(fd, f->id, EPERM, "changing the log level is for the agent's own user and root only");
	free(f);
	agent_wait_close(fd);
}

static void test_trace_and_log_level(void **state)
{
	struct lmrsec_log_level level;
	struct lmrsec_trace *t;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_trace_and_level);
	c = connect_to(&f);
	assert_int_equal(lmrsec_trace(c, 2000), 0);

	assert_int_equal(lmrsec_next_trace(c, &t, 2000), 0);
	assert_false(t->outgoing);
	assert_string_equal(t->transport, "tcp");
	assert_string_equal(t->peer, "127.0.0.1:5060");
	assert_int_equal(t->time_us, 1700000000000009ull);
	assert_int_equal(t->size, 700);
	assert_int_equal(t->dropped, 0);
	assert_string_equal(t->text, "MESSAGE sip:a@b SIP/2.0\n");
	lmrsec_trace_free(t);
	assert_int_equal(lmrsec_next_trace(c, &t, 2000), -EPROTO);
	assert_null(t);
	assert_int_equal(lmrsec_next_trace(c, &t, 2000), 0);
	assert_true(t->outgoing);
	assert_int_equal(t->dropped, 3);
	lmrsec_trace_free(t);
	assert_int_equal(lmrsec_process(c) & LMRSEC_READY_TRACE, 0);

	assert_int_equal(lmrsec_log_level(c, "debug", &level, 2000), 0);
	assert_string_equal(level.current, "debug");
	assert_string_equal(level.previous, "message");
	assert_int_equal(lmrsec_log_level(c, NULL, &level, 2000), -EPERM);
	assert_non_null(strstr(lmrsec_last_error(c), "own user and root"));
	assert_int_equal(lmrsec_log_level(c, "", &level, 2000), -EINVAL);
	lmrsec_close(c);
	fake_finish(&f);
}

/* ---------- spool listing ---------- */

static void agent_list_page(int fd, uint32_t id, uint64_t first, uint64_t n,
			    bool more)
{
	struct frame_writer w, e;
	const uint8_t *frame;
	uint8_t fp[32];
	size_t len;
	uint64_t i;

	memset(fp, 0x5a, sizeof(fp));
	frame_writer_init(&w);
	frame_writer_init(&e);
	frame_writer_begin(&w, PROTO_MSG_LIST, id);
	for (i = first; i < first + n; i++) {
		frame_writer_begin(&e, 0, 0);
		frame_writer_u64(&e, PROTO_TAG_MESSAGE_ID, i);
		frame_writer_str(&e, PROTO_TAG_LMR_TYPE, i % 2 ? "TETRA" : "P25");
		frame_writer_str(&e, PROTO_TAG_KMF_URI, "sip:kmf@iwf.example.org");
		frame_writer_u64(&e, PROTO_TAG_RECEIVED_US, 1700000000000000ull + i);
		frame_writer_u64(&e, PROTO_TAG_PAYLOAD_SIZE, 100 + i);
		frame_writer_bytes(&e, PROTO_TAG_FINGERPRINT, fp, sizeof(fp));
		frame_writer_u32(&e, PROTO_TAG_IN_FLIGHT, i == first ? 1 : 0);
		AGENT_CHECK(frame_writer_end(&e, &frame, &len) == 0);
		frame_writer_bytes(&w, PROTO_TAG_ENTRY, frame + 9, len - 9);
	}
	frame_writer_u32(&w, PROTO_TAG_MORE, more ? 1 : 0);
	frame_writer_clear(&e);
	agent_write(fd, &w);
}

static void script_queue_pages(int fd)
{
	struct agent_frame *f = malloc(sizeof(*f));
	uint32_t len;

	AGENT_CHECK(f);
	agent_hello(fd);
	/* first: everything, two pages */
	agent_expect(fd, f, PROTO_MSG_QUEUE);
	AGENT_CHECK(!agent_field(f, PROTO_TAG_AFTER_ID, &len));
	AGENT_CHECK(!agent_field(f, PROTO_TAG_LIMIT, &len));
	agent_list_page(fd, f->id, 1, 3, true);
	agent_expect(fd, f, PROTO_MSG_QUEUE);
	AGENT_CHECK(agent_field_u64(f, PROTO_TAG_AFTER_ID) == 3);
	agent_list_page(fd, f->id, 4, 2, false);
	/* then at most 2 after id 1 */
	agent_expect(fd, f, PROTO_MSG_QUEUE);
	AGENT_CHECK(agent_field_u64(f, PROTO_TAG_AFTER_ID) == 1);
	AGENT_CHECK(agent_field_u32(f, PROTO_TAG_LIMIT) == 2);
	agent_list_page(fd, f->id, 2, 2, true);
	free(f);
	agent_wait_close(fd);
}

static void test_queue_walks_pages(void **state)
{
	struct lmrsec_queue_entry *e;
	struct fake f;
	struct lmrsec *c;
	size_t n, i;

	(void) state;
	fake_start(&f, script_queue_pages);
	c = connect_to(&f);
	assert_int_equal(lmrsec_queue(c, 0, 0, &e, &n, 2000), 0);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++)
		assert_int_equal(e[i].id, i + 1);
	assert_string_equal(e[0].lmr_type, "TETRA");
	assert_string_equal(e[0].kmf_uri, "sip:kmf@iwf.example.org");
	assert_string_equal(e[0].sender, "");
	assert_string_equal(e[0].mc_service_id, "");
	assert_int_equal(e[0].size, 101);
	assert_int_equal(e[0].received_us, 1700000000000001ull);
	assert_int_equal(e[0].in_flight, 1);
	assert_int_equal(e[1].in_flight, 0);
	assert_int_equal(e[3].in_flight, 1);
	lmrsec_queue_free(e, n);

	assert_int_equal(lmrsec_queue(c, 1, 2, &e, &n, 2000), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].id, 2);
	assert_int_equal(e[1].id, 3);
	lmrsec_queue_free(e, n);
	lmrsec_close(c);
	fake_finish(&f);
}

/* ---------- your own poll loop ---------- */

static void script_send_answer_during_ack(int fd)
{
	struct agent_frame *send = malloc(sizeof(*send));
	struct agent_frame *ack = malloc(sizeof(*ack));
	struct frame_writer w;

	AGENT_CHECK(send && ack);
	agent_hello(fd);
	agent_expect(fd, send, PROTO_MSG_SEND);
	agent_expect(fd, ack, PROTO_MSG_ACK);
	/* the send's answer comes while the library waits for the ACK's */
	frame_writer_init(&w);
	frame_writer_begin(&w, PROTO_MSG_SEND_RESULT, send->id);
	frame_writer_u32(&w, PROTO_TAG_SIP_STATUS, 200);
	frame_writer_str(&w, PROTO_TAG_SIP_REASON, "OK");
	agent_write(fd, &w);
	agent_event(fd, "acked", 4, "TETRA", true);
	agent_reply_ok(fd, ack->id);
	usleep(100 * 1000);
	agent_deliver(fd, 5, "TETRA", 8);
	free(send);
	free(ack);
	agent_wait_close(fd);
}

static void test_process_reports_what_waits(void **state)
{
	struct lmrsec_send_result res;
	struct lmrsec_delivery *d;
	struct pollfd p;
	struct fake f;
	struct lmrsec *c;

	(void) state;
	fake_start(&f, script_send_answer_during_ack);
	c = connect_to(&f);
	assert_int_equal(lmrsec_process(c), 0);
	assert_int_equal(lmrsec_send_start(c, "TETRA", NULL, "key", 3, 4000), 0);
	assert_int_equal(lmrsec_ack(c, 4, 2000), 0);
	/* The answer and the event were read by lmrsec_ack(): the fd does
	 * not show them, lmrsec_process() does. */
	assert_int_equal(lmrsec_process(c), LMRSEC_READY_SEND | LMRSEC_READY_EVENT);
	assert_int_equal(lmrsec_send_finish(c, &res, 0), 0);
	assert_int_equal(res.sip_status, 200);
	assert_int_equal(lmrsec_pending_events(c), 1);
	assert_int_equal(lmrsec_process(c), LMRSEC_READY_EVENT);

	/* The delivery arrives later: the fd turns readable. */
	p = (struct pollfd) { .fd = lmrsec_fd(c), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(lmrsec_process(c) & LMRSEC_READY_DELIVERY, LMRSEC_READY_DELIVERY);
	assert_int_equal(lmrsec_next_delivery(c, &d, 0), 0);
	assert_int_equal(d->id, 5);
	lmrsec_delivery_free(d);
	lmrsec_close(c);
	fake_finish(&f);
}

static void script_too_many(int fd)
{
	/* as the agent over its connection cap: a notice, then close */
	agent_reply_error(fd, 0, EUSERS, "too many connections to the agent (at most 2)");
}

static void test_connect_over_cap_is_eusers(void **state)
{
	struct fake f;
	struct lmrsec *c = NULL;

	(void) state;
	fake_start(&f, script_too_many);
	assert_int_equal(lmrsec_connect_timeout(f.path, 2000, &c), -EUSERS);
	assert_null(c);
	fake_finish(&f);
}

/* ---------- default path ---------- */

static void default_path_env(const char *socket_env, const char *xdg)
{
	if (socket_env)
		setenv(LMRSEC_SOCKET_ENV, socket_env, 1);
	else
		unsetenv(LMRSEC_SOCKET_ENV);

	if (xdg)
		setenv("XDG_RUNTIME_DIR", xdg, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");
}

/* lmrsec_default_path() as seen by an unprivileged uid: when the test runs
 * as root, a child drops to nobody and reports back through a pipe. */
static void default_path_as_user(char *buf, size_t size)
{
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (geteuid() != 0) {
		assert_int_equal(lmrsec_default_path(buf, size), 0);
		return;
	}

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char path[256] = "";

		close(p[0]);
		if (setresuid(NOBODY_UID, NOBODY_UID, NOBODY_UID) != 0 ||
		    lmrsec_default_path(path, sizeof(path)) != 0)
			_exit(1);
		_exit(write(p[1], path, strlen(path) + 1) > 0 ? 0 : 1);
	}

	close(p[1]);
	n = read(p[0], buf, size);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(n > 0);
}

static void test_default_path_env_var_wins(void **state)
{
	char buf[256];

	(void) state;
	default_path_env("/tmp/custom.sock", "/run/user/1000");
	assert_int_equal(lmrsec_default_path(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/tmp/custom.sock");
	default_path_as_user(buf, sizeof(buf));
	assert_string_equal(buf, "/tmp/custom.sock");
}

static void test_default_path_xdg_for_non_root(void **state)
{
	char buf[256];

	(void) state;
	default_path_env(NULL, "/run/user/1000");
	default_path_as_user(buf, sizeof(buf));
	assert_string_equal(buf, "/run/user/1000/lmrsec/agent.sock");
}

static void test_default_path_root_ignores_xdg(void **state)
{
	char buf[256];

	(void) state;
	if (geteuid() != 0)
		skip();
	default_path_env(NULL, "/run/user/0");
	assert_int_equal(lmrsec_default_path(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/run/lmrsec/agent.sock");
}

static void test_default_path_without_env_is_system(void **state)
{
	char buf[256];

	(void) state;
	default_path_env("", "");	/* empty counts as unset */
	assert_int_equal(lmrsec_default_path(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/run/lmrsec/agent.sock");
	default_path_env(NULL, NULL);
	default_path_as_user(buf, sizeof(buf));
	assert_string_equal(buf, "/run/lmrsec/agent.sock");
}

static void test_default_path_too_small_buffer(void **state)
{
	char buf[8];

	(void) state;
	default_path_env(NULL, NULL);
	assert_int_equal(lmrsec_default_path(buf, sizeof(buf)), -ENAMETOOLONG);
}

/* ---------- SHA-256 and error text ---------- */

static void assert_sha256_hex(const void *data, size_t len, const char *hex)
{
	uint8_t fp[32];
	char out[65];

	lmrsec_sha256(data, len, fp);
	lmrsec_fingerprint_hex(fp, out);
	assert_string_equal(out, hex);
}

static void test_sha256_fips_vectors(void **state)
{
	static const char two_blocks[] =
		"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		"hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	static const char one_block[] =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char *million;

	(void) state;
	assert_sha256_hex("", 0,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_sha256_hex("abc", 3,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_sha256_hex(one_block, strlen(one_block),
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_sha256_hex(two_blocks, strlen(two_blocks),
		"cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

	million = malloc(1000000);
	assert_non_null(million);
	memset(million, 'a', 1000000);
	assert_sha256_hex(million, 1000000,
		"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);
}

/* Lengths around the padding edges: 55 fits one block, 56 needs two. */
static void test_sha256_padding_boundaries(void **state)
{
	static const struct { size_t n; const char *hex; } v[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
	};
	char a[128];
	size_t i;

	(void) state;
	memset(a, 'a', sizeof(a));
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_sha256_hex(a, v[i].n, v[i].hex);
}

static void test_fingerprint_hex_is_lower_case_64_digits(void **state)
{
	uint8_t fp[32];
	char out[65];
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(fp); i++)
		fp[i] = (uint8_t) (0xf0 + i);
	memset(out, 'X', sizeof(out));
	lmrsec_fingerprint_hex(fp, out);
	assert_int_equal(strlen(out), 64);
	assert_memory_equal(out, "f0f1f2f3", 8);
	assert_memory_equal(out + 56, "0c0d0e0f", 8);
}

static void test_strerror_covers_library_errors(void **state)
{
	static const int errs[] = {
		ENOENT, ECONNREFUSED, ETIMEDOUT, EPROTONOSUPPORT, EBUSY, EPROTO,
		ECONNRESET, ENOTCONN, EINVAL, EPIPE, EALREADY, ENOBUFS, EBADMSG,
		ENAMETOOLONG, EACCES, EINTR, EUSERS,
	};
	size_t i, j;

	(void) state;
	assert_string_equal(lmrsec_strerror(0), "success");
	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *s = lmrsec_strerror(-errs[i]);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (j = 0; j < i; j++)
			assert_string_not_equal(s, lmrsec_strerror(-errs[j]));
	}
	assert_string_equal(lmrsec_strerror(-ENOTCONN),
			    "not registered with the MC service server");
}

static void test_null_handle_is_harmless(void **state)
{
	struct lmrsec_delivery *d;

	(void) state;
	lmrsec_close(NULL);
	lmrsec_delivery_free(NULL);
	assert_int_equal(lmrsec_next_delivery(NULL, &d, 0), -EINVAL);
	assert_int_equal(lmrsec_fd(NULL), -EINVAL);
	assert_string_equal(lmrsec_last_error(NULL), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_hello_ok),
		cmocka_unit_test(test_connect_agent_picks_unknown_version_is_eprotonosupport),
		cmocka_unit_test(test_connect_agent_refuses_version_is_eprotonosupport),
		cmocka_unit_test(test_connect_missing_path_is_enoent),
		cmocka_unit_test(test_connect_stale_socket_is_econnrefused),
		cmocka_unit_test(test_connect_path_too_long_is_enametoolong),
		cmocka_unit_test(test_connect_silent_agent_times_out),
		cmocka_unit_test(test_connect_full_backlog_times_out),
		cmocka_unit_test(test_status_fields_parsed),
		cmocka_unit_test(test_deliveries_during_ack_wait_are_queued_in_order),
		cmocka_unit_test(test_pipelined_acks_settle_out_of_order),
		cmocka_unit_test(test_pipelined_acks_are_bounded),
		cmocka_unit_test(test_delivery_metadata_parsed),
		cmocka_unit_test(test_delivery_absent_strings_are_empty),
		cmocka_unit_test(test_delivery_verify_matches_and_mismatches),
		cmocka_unit_test(test_ack_without_reply_times_out_within_bounds),
		cmocka_unit_test(test_late_reply_after_timeout_is_dropped),
		cmocka_unit_test(test_next_delivery_poll_returns_etimedout_at_once),
		cmocka_unit_test(test_next_delivery_signal_is_eintr),
		cmocka_unit_test(test_ack_is_not_cut_short_by_a_signal),
		cmocka_unit_test(test_subscribe_busy_is_ebusy_then_takeover_works),
		cmocka_unit_test(test_subscribe_rejects_bad_types),
		cmocka_unit_test(test_unsolicited_error_comes_from_next_delivery_in_order),
		cmocka_unit_test(test_peer_close_is_econnreset),
		cmocka_unit_test(test_peer_close_is_sticky),
		cmocka_unit_test(test_peer_close_after_notice_keeps_its_text),
		cmocka_unit_test(test_truncated_field_is_eproto),
		cmocka_unit_test(test_reply_of_wrong_type_is_eproto),
		cmocka_unit_test(test_integer_of_wrong_size_is_eproto),
		cmocka_unit_test(test_oversized_frame_is_eproto_and_sticky),
		cmocka_unit_test(test_malformed_delivery_is_eproto_in_its_place),
		cmocka_unit_test(test_error_without_errno_is_eproto),
		cmocka_unit_test(test_send_result_parsed),
		cmocka_unit_test(test_send_not_registered_is_enotconn_with_text),
		cmocka_unit_test(test_send_rejects_bad_arguments),
		cmocka_unit_test(test_send_start_finish_nonblocking),
		cmocka_unit_test(test_send_while_agent_floods_does_not_deadlock),
		cmocka_unit_test(test_default_path_env_var_wins),
		cmocka_unit_test(test_default_path_xdg_for_non_root),
		cmocka_unit_test(test_default_path_root_ignores_xdg),
		cmocka_unit_test(test_default_path_without_env_is_system),
		cmocka_unit_test(test_default_path_too_small_buffer),
		cmocka_unit_test(test_sha256_fips_vectors),
		cmocka_unit_test(test_sha256_padding_boundaries),
		cmocka_unit_test(test_fingerprint_hex_is_lower_case_64_digits),
		cmocka_unit_test(test_strerror_covers_library_errors),
		cmocka_unit_test(test_null_handle_is_harmless),
		cmocka_unit_test(test_monitor_events_parsed_in_order),
		cmocka_unit_test(test_malformed_event_is_eproto_in_its_place),
		cmocka_unit_test(test_events_read_before_close_are_handed_out),
		cmocka_unit_test(test_trace_and_log_level),
		cmocka_unit_test(test_queue_walks_pages),
		cmocka_unit_test(test_process_reports_what_waits),
		cmocka_unit_test(test_connect_over_cap_is_eusers),
	};

	/* SIGPIPE stays at its default: the library must never raise it when
	 * the fake agent closes first. */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
