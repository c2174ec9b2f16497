/*
 * test-frame.c — unit tests for the local-socket frame codec (libclient/frame.c).
 *
 * Built and run by hand with (from the top of the tree):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -Ilibclient \
 *       tests/unit/test-frame.c libclient/frame.c -Wl,--wrap=malloc \
 *       $(pkg-config --cflags --libs cmocka) -o /tmp/test-frame && /tmp/test-frame
 * and under the sanitizers:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -fsanitize=address,undefined \
 *       -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Ilibclient \
 *       tests/unit/test-frame.c libclient/frame.c -Wl,--wrap=malloc \
 *       $(pkg-config --cflags --libs cmocka) -o /tmp/test-frame-san && \
 *   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 /tmp/test-frame-san
 *
 * -Wl,--wrap=malloc routes frame.c's malloc() through __wrap_malloc() below so
 * the out-of-memory paths can be tested; automake: test_frame_LDFLAGS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define FIELD_PAYLOAD	0x04

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

static bool fail_next_malloc;

void *__wrap_malloc(size_t size)
{
	if (fail_next_malloc) {
		fail_next_malloc = false;
		return NULL;
	}

	return __real_malloc(size);
}

/* A raw frame: header declaring body_len, then body_len patterned bytes. */
static uint8_t *raw_frame(uint32_t declared, size_t body_len, size_t *len)
{
	uint8_t *f = malloc(FRAME_HEADER_LEN + body_len);
	size_t i;

	assert_non_null(f);
	f[0] = (uint8_t) (declared >> 24);
	f[1] = (uint8_t) (declared >> 16);
	f[2] = (uint8_t) (declared >> 8);
	f[3] = (uint8_t) declared;
	for (i = 0; i < body_len; i++)
		f[FRAME_HEADER_LEN + i] = (uint8_t) (i * 7 + 3);

	*len = FRAME_HEADER_LEN + body_len;
	return f;
}

/* A stream of frames built by the writer, with where each body lies. */
#define STREAM_MAX_FRAMES 256

struct stream {
	uint8_t *bytes;
	size_t len;
	size_t nframes;
	size_t body_off[STREAM_MAX_FRAMES];
	size_t body_len[STREAM_MAX_FRAMES];
};

static void stream_add(struct stream *s, size_t payload_len)
{
	struct frame_writer w = { 0 };
	uint8_t *payload = malloc(payload_len + 1);
	const uint8_t *frame;
	size_t frame_len, i;

	assert_non_null(payload);
	assert_true(s->nframes < STREAM_MAX_FRAMES);
	for (i = 0; i < payload_len; i++)
		payload[i] = (uint8_t) (s->nframes + i);

	assert_int_equal(frame_writer_begin(&w, 0x10, (uint32_t) s->nframes), 0);
	assert_int_equal(frame_writer_bytes(&w, FIELD_PAYLOAD, payload, payload_len), 0);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), 0);

	s->bytes = realloc(s->bytes, s->len + frame_len);
	assert_non_null(s->bytes);
	memcpy(s->bytes + s->len, frame, frame_len);
	s->body_off[s->nframes] = s->len + FRAME_HEADER_LEN;
	s->body_len[s->nframes] = frame_len - FRAME_HEADER_LEN;
	s->len += frame_len;
	s->nframes++;

	frame_writer_clear(&w);
	free(payload);
}

static void stream_free(struct stream *s)
{
	free(s->bytes);
}

/* Feeds the stream in reads of at most chunk bytes; checks every frame
 * against what was written and the capacity against max_cap after every
 * call. Returns the number of frames decoded. */
static size_t decode_in_chunks(struct frame_decoder *d, const struct stream *s,
				size_t chunk, size_t max_cap)
{
	const uint8_t *body;
	size_t off = 0, nframes = 0, body_len, avail, n;
	uint8_t *space;

	while (off < s->len) {
		assert_int_equal(frame_decoder_space(d, &space, &avail), 0);
		assert_true(avail >= 1);
		assert_true(d->cap <= max_cap);

		n = s->len - off;
		if (n > chunk)
			n = chunk;
		if (n > avail)
			n = avail;

		memcpy(space, s->bytes + off, n);
		frame_decoder_commit(d, n);
		off += n;

		while (frame_decoder_next(d, &body, &body_len) == 1) {
			assert_true(nframes < s->nframes);
			assert_int_equal(body_len, s->body_len[nframes]);
			assert_memory_equal(body, s->bytes + s->body_off[nframes], body_len);
			nframes++;
		}

		assert_int_equal(d->error, 0);
	}

	return nframes;
}

static void commit_bytes(struct frame_decoder *d, const uint8_t *bytes, size_t len)
{
	uint8_t *space;
	size_t avail;

	assert_int_equal(frame_decoder_space(d, &space, &avail), 0);
	assert_true(avail >= len);
	memcpy(space, bytes, len);
	frame_decoder_commit(d, len);
}

/* ---- frame_parse ---- */

static void test_parse_exact_frame(void **state)
{
	static const uint8_t f[] = { 0, 0, 0, 7, 0x10, 0, 0, 0, 42, 0xaa, 0xbb };
	const uint8_t *body = NULL;
	size_t body_len = 0;

	(void) state;
	assert_int_equal(frame_parse(f, sizeof(f), &body, &body_len), sizeof(f));
	assert_ptr_equal(body, f + FRAME_HEADER_LEN);
	assert_int_equal(body_len, 7);
}

static void test_parse_needs_more_at_every_split(void **state)
{
	const uint8_t *body;
	size_t len, body_len, k;
	uint8_t *f = raw_frame(300, 300, &len);

	(void) state;
	for (k = 0; k < len; k++)
		assert_int_equal(frame_parse(f, k, &body, &body_len), 0);

	assert_int_equal(frame_parse(f, len, &body, &body_len), len);
	free(f);
}

static void test_parse_two_frames_back_to_back(void **state)
{
	static const uint8_t f[] = {
		0, 0, 0, 5, 0x01, 0, 0, 0, 1,
		0, 0, 0, 6, 0x02, 0, 0, 0, 2, 0xcc,
	};
	const uint8_t *body;
	size_t body_len;
	ssize_t first;

	(void) state;
	first = frame_parse(f, sizeof(f), &body, &body_len);
	assert_int_equal(first, 9);
	assert_ptr_equal(body, f + 4);
	assert_int_equal(body_len, 5);

	assert_int_equal(frame_parse(f + first, sizeof(f) - first, &body, &body_len), 10);
	assert_ptr_equal(body, f + 13);
	assert_int_equal(body_len, 6);
}

static void test_parse_rejects_length_zero(void **state)
{
	static const uint8_t f[] = { 0, 0, 0, 0, 0x01, 0, 0, 0, 1 };
	const uint8_t *body;
	size_t body_len;

	(void) state;
	assert_int_equal(frame_parse(f, 4, &body, &body_len), FRAME_ERR_EMPTY);
	assert_int_equal(frame_parse(f, sizeof(f), &body, &body_len), FRAME_ERR_EMPTY);
}

static void test_parse_accepts_max_length(void **state)
{
	const uint8_t *body;
	size_t len, body_len;
	uint8_t *f = raw_frame(FRAME_MAX_LEN, FRAME_MAX_LEN, &len);

	(void) state;
	assert_int_equal(frame_parse(f, len, &body, &body_len),
			FRAME_HEADER_LEN + FRAME_MAX_LEN);
	assert_int_equal(body_len, FRAME_MAX_LEN);
	free(f);
}

static void test_parse_max_length_header_alone_needs_more(void **state)
{
	static const uint8_t header[] = { 0x00, 0x04, 0x00, 0x00 };	/* 262144 */
	const uint8_t *body;
	size_t body_len;

	(void) state;
	assert_int_equal(frame_parse(header, sizeof(header), &body, &body_len), 0);
}

static void test_parse_rejects_oversize_from_header_alone(void **state)
{
	static const uint8_t just_over[] = { 0x00, 0x04, 0x00, 0x01 };	/* 262145 */
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff };
	const uint8_t *body;
	size_t body_len;

	(void) state;
	assert_int_equal(frame_parse(just_over, sizeof(just_over), &body, &body_len),
			FRAME_ERR_TOO_LARGE);
	assert_int_equal(frame_parse(huge, sizeof(huge), &body, &body_len),
			FRAME_ERR_TOO_LARGE);
}

/* ---- frame_decoder ---- */

static void test_decoder_byte_at_a_time_yields_same_frames(void **state)
{
	struct frame_decoder d;
	struct stream s = { 0 };

	(void) state;
	stream_add(&s, 0);
	stream_add(&s, 17);
	stream_add(&s, 5000);	/* beyond FRAME_DECODER_MIN_CAP */
	stream_add(&s, 1);

	frame_decoder_init(&d);
	assert_int_equal(decode_in_chunks(&d, &s, 1, FRAME_HEADER_LEN + FRAME_MAX_LEN),
			s.nframes);
	frame_decoder_clear(&d);
	stream_free(&s);
}

static void test_decoder_many_frames_in_one_chunk(void **state)
{
	struct frame_decoder d;
	struct stream s = { 0 };
	const uint8_t *body;
	size_t body_len, n = 0, i;

	(void) state;
	for (i = 0; i < 100; i++)
		stream_add(&s, i % 20);
	assert_true(s.len <= FRAME_DECODER_MIN_CAP);

	frame_decoder_init(&d);
	commit_bytes(&d, s.bytes, s.len);
	while (frame_decoder_next(&d, &body, &body_len) == 1) {
		assert_int_equal(body_len, s.body_len[n]);
		assert_memory_equal(body, s.bytes + s.body_off[n], body_len);
		n++;
	}

	assert_int_equal(n, 100);
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), 0);
	frame_decoder_clear(&d);
	stream_free(&s);
}

static void test_decoder_cap_stays_small_for_small_frames(void **state)
{
	struct frame_decoder d;
	struct stream s = { 0 };
	size_t i;

	(void) state;
	for (i = 0; i < STREAM_MAX_FRAMES; i++)
		stream_add(&s, (i * 37) % 200);
	assert_true(s.len > 4 * FRAME_DECODER_MIN_CAP);

	frame_decoder_init(&d);
	assert_int_equal(decode_in_chunks(&d, &s, 7, FRAME_DECODER_MIN_CAP), s.nframes);
	assert_int_equal(decode_in_chunks(&d, &s, SIZE_MAX, FRAME_DECODER_MIN_CAP),
			s.nframes);
	frame_decoder_clear(&d);
	stream_free(&s);
}

static void test_decoder_cap_never_exceeds_header_plus_max(void **state)
{
	struct frame_decoder d;
	struct stream s = { 0 };
	size_t max_payload = FRAME_MAX_LEN - FRAME_BODY_MIN - 5;

	(void) state;
	stream_add(&s, 10);
	stream_add(&s, max_payload);
	stream_add(&s, max_payload);
	stream_add(&s, 3);
	stream_add(&s, max_payload);

	frame_decoder_init(&d);
	assert_int_equal(decode_in_chunks(&d, &s, 65536,
			FRAME_HEADER_LEN + FRAME_MAX_LEN), s.nframes);
	assert_int_equal(decode_in_chunks(&d, &s, SIZE_MAX,
			FRAME_HEADER_LEN + FRAME_MAX_LEN), s.nframes);
	frame_decoder_clear(&d);
	stream_free(&s);
}

static void test_decoder_silent_max_peer_gets_exactly_one_frame(void **state)
{
	static const uint8_t header[] = { 0x00, 0x04, 0x00, 0x00 };	/* 262144 */
	struct frame_decoder d;
	const uint8_t *body;
	uint8_t *space;
	size_t avail, body_len;

	(void) state;
	frame_decoder_init(&d);
	commit_bytes(&d, header, sizeof(header));
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), 0);

	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);
	assert_int_equal(d.cap, FRAME_HEADER_LEN + FRAME_MAX_LEN);
	assert_int_equal(avail, FRAME_MAX_LEN);

	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);
	assert_int_equal(d.cap, FRAME_HEADER_LEN + FRAME_MAX_LEN);
	frame_decoder_clear(&d);
}

static void test_decoder_grows_only_to_declared_length(void **state)
{
	static const uint8_t header[] = { 0x00, 0x00, 0x27, 0x10 };	/* 10000 */
	struct frame_decoder d;
	uint8_t *space;
	size_t avail;

	(void) state;
	frame_decoder_init(&d);
	commit_bytes(&d, header, sizeof(header));
	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);
	assert_int_equal(d.cap, FRAME_HEADER_LEN + 10000);
	assert_int_equal(avail, 10000);
	frame_decoder_clear(&d);
}

static void test_decoder_shrinks_after_large_frame(void **state)
{
	struct frame_decoder d;
	struct stream s = { 0 };
	const uint8_t *body;
	uint8_t *space;
	size_t body_len, avail, frame0_len;

	(void) state;
	stream_add(&s, 100000);
	stream_add(&s, 10);
	frame0_len = s.body_off[1] - FRAME_HEADER_LEN;

	frame_decoder_init(&d);
	commit_bytes(&d, s.bytes, FRAME_HEADER_LEN);
	commit_bytes(&d, s.bytes + FRAME_HEADER_LEN, frame0_len - FRAME_HEADER_LEN);
	assert_int_equal(d.cap, frame0_len);
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), 1);
	assert_int_equal(body_len, s.body_len[0]);

	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);
	assert_int_equal(d.cap, FRAME_DECODER_MIN_CAP);
	assert_int_equal(d.len, 0);

	commit_bytes(&d, s.bytes + frame0_len, s.len - frame0_len);
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), 1);
	assert_int_equal(body_len, s.body_len[1]);
	assert_memory_equal(body, s.bytes + s.body_off[1], body_len);
	frame_decoder_clear(&d);
	stream_free(&s);
}

static void test_decoder_rejects_oversize_header_before_body(void **state)
{
	static const uint8_t header[] = { 0x00, 0x04, 0x00, 0x01 };	/* 262145 */
	struct frame_decoder d;
	const uint8_t *body;
	size_t body_len;

	(void) state;
	frame_decoder_init(&d);
	commit_bytes(&d, header, sizeof(header));
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), FRAME_ERR_TOO_LARGE);
	assert_true(d.cap <= FRAME_DECODER_MIN_CAP);
	frame_decoder_clear(&d);
}

static void test_decoder_space_rejects_oversize_header(void **state)
{
	static const uint8_t header[] = { 0x10, 0x00, 0x00, 0x00 };
	struct frame_decoder d;
	uint8_t *space;
	size_t avail;

	(void) state;
	frame_decoder_init(&d);
	commit_bytes(&d, header, sizeof(header));
	assert_int_equal(frame_decoder_space(&d, &space, &avail), FRAME_ERR_TOO_LARGE);
	assert_true(d.cap <= FRAME_DECODER_MIN_CAP);
	frame_decoder_clear(&d);
}

static void test_decoder_error_is_sticky(void **state)
{
	static const uint8_t empty[] = { 0, 0, 0, 0 };
	static const uint8_t good[] = { 0, 0, 0, 5, 0x01, 0, 0, 0, 1 };
	struct frame_decoder d;
	const uint8_t *body;
	uint8_t *space;
	size_t body_len, avail;

	(void) state;
	frame_decoder_init(&d);
	commit_bytes(&d, empty, sizeof(empty));
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), FRAME_ERR_EMPTY);
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), FRAME_ERR_EMPTY);
	assert_int_equal(frame_decoder_space(&d, &space, &avail), FRAME_ERR_EMPTY);

	/* Bytes written behind its back do not revive it. */
	memcpy(d.buf + d.len, good, sizeof(good));
	frame_decoder_commit(&d, sizeof(good));
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), FRAME_ERR_EMPTY);
	assert_int_equal(d.error, FRAME_ERR_EMPTY);
	frame_decoder_clear(&d);
}

static void test_decoder_space_full_of_pending_frames_is_no_space(void **state)
{
	struct frame_decoder d;
	const uint8_t *body;
	uint8_t *space;
	size_t len, avail, body_len;
	uint8_t *f = raw_frame(FRAME_DECODER_MIN_CAP - FRAME_HEADER_LEN,
				FRAME_DECODER_MIN_CAP - FRAME_HEADER_LEN, &len);

	(void) state;
	frame_decoder_init(&d);
	commit_bytes(&d, f, len);
	assert_int_equal(d.len, d.cap);
	assert_int_equal(frame_decoder_space(&d, &space, &avail), FRAME_ERR_NO_SPACE);

	/* Not sticky: taking the frame makes room. */
	assert_int_equal(d.error, 0);
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), 1);
	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);
	assert_int_equal(avail, FRAME_DECODER_MIN_CAP);
	frame_decoder_clear(&d);
	free(f);
}

static void test_decoder_commit_past_space_is_state_error(void **state)
{
	struct frame_decoder d;
	const uint8_t *body;
	uint8_t *space;
	size_t avail, body_len;

	(void) state;
	frame_decoder_init(&d);
	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);
	frame_decoder_commit(&d, avail + 1);
	assert_int_equal(d.error, FRAME_ERR_STATE);
	assert_int_equal(d.len, 0);
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), FRAME_ERR_STATE);
	frame_decoder_clear(&d);
}

static void test_decoder_compaction_wipes_consumed_bytes(void **state)
{
	static const uint8_t f[] = {
		0, 0, 0, 8, 0x01, 0, 0, 0, 1, 0xde, 0xad, 0xbe,	/* one frame */
		0, 0, 0,					/* next header */
	};
	static const uint8_t zero[12] = { 0 };
	struct frame_decoder d;
	const uint8_t *body;
	uint8_t *space;
	size_t avail, body_len;

	(void) state;
	frame_decoder_init(&d);
	commit_bytes(&d, f, sizeof(f));
	assert_int_equal(frame_decoder_next(&d, &body, &body_len), 1);
	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);

	assert_int_equal(d.len, 3);
	assert_int_equal(d.consumed, 0);
	assert_memory_equal(d.buf, f + 12, 3);
	assert_memory_equal(d.buf + 3, zero, sizeof(zero));
	frame_decoder_clear(&d);
}

static void test_decoder_clear_frees_and_resets(void **state)
{
	struct frame_decoder d;
	struct stream s = { 0 };

	(void) state;
	stream_add(&s, 40);
	frame_decoder_init(&d);
	assert_int_equal(decode_in_chunks(&d, &s, 3, FRAME_DECODER_MIN_CAP), 1);

	frame_decoder_clear(&d);
	assert_null(d.buf);
	assert_int_equal(d.len, 0);
	assert_int_equal(d.cap, 0);
	assert_int_equal(d.consumed, 0);
	assert_int_equal(d.error, 0);

	assert_int_equal(decode_in_chunks(&d, &s, 3, FRAME_DECODER_MIN_CAP), 1);
	frame_decoder_clear(&d);
	stream_free(&s);
}

static void test_decoder_no_memory_is_not_sticky(void **state)
{
	struct frame_decoder d;
	uint8_t *space;
	size_t avail;

	(void) state;
	frame_decoder_init(&d);
	fail_next_malloc = true;
	assert_int_equal(frame_decoder_space(&d, &space, &avail), FRAME_ERR_NO_MEMORY);
	assert_int_equal(d.error, 0);
	assert_null(d.buf);

	assert_int_equal(frame_decoder_space(&d, &space, &avail), 0);
	assert_int_equal(avail, FRAME_DECODER_MIN_CAP);
	frame_decoder_clear(&d);
}

/* ---- frame_reader ---- */

static void test_reader_fields_round_trip_via_writer(void **state)
{
	static const uint8_t blob[] = { 0x00, 0xff, 0x10, 0x00 };
	struct frame_writer w = { 0 };
	struct frame_reader r;
	const uint8_t *frame, *body, *value;
	size_t frame_len, body_len;
	uint32_t id, value_len, u32;
	uint64_t u64;
	uint8_t type, tag;

	(void) state;
	assert_int_equal(frame_writer_begin(&w, 0x42, 0xdeadbeef), 0);
	assert_int_equal(frame_writer_bytes(&w, 0x01, blob, sizeof(blob)), 0);
	assert_int_equal(frame_writer_str(&w, 0x02, "TETRA"), 0);
	assert_int_equal(frame_writer_u32(&w, 0x03, 0x01020304), 0);
	assert_int_equal(frame_writer_u64(&w, 0x04, UINT64_C(0x1122334455667788)), 0);
	assert_int_equal(frame_writer_bytes(&w, 0x05, NULL, 0), 0);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), 0);

	assert_int_equal(frame_parse(frame, frame_len, &body, &body_len), frame_len);
	assert_int_equal(frame_reader_init(&r, body, body_len, &type, &id), 0);
	assert_int_equal(type, 0x42);
	assert_int_equal(id, 0xdeadbeef);

	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 1);
	assert_int_equal(tag, 0x01);
	assert_int_equal(value_len, sizeof(blob));
	assert_memory_equal(value, blob, sizeof(blob));

	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 1);
	assert_int_equal(tag, 0x02);
	assert_int_equal(value_len, 5);
	assert_memory_equal(value, "TETRA", 5);

	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 1);
	assert_int_equal(tag, 0x03);
	assert_int_equal(frame_value_u32(value, value_len, &u32), 0);
	assert_int_equal(u32, 0x01020304);

	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 1);
	assert_int_equal(tag, 0x04);
	assert_int_equal(frame_value_u64(value, value_len, &u64), 0);
	assert_true(u64 == UINT64_C(0x1122334455667788));

	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 1);
	assert_int_equal(tag, 0x05);
	assert_int_equal(value_len, 0);

	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 0);
	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 0);
	frame_writer_clear(&w);
}

static void test_reader_body_without_fields_ends_at_once(void **state)
{
	static const uint8_t body[] = { 0x07, 0, 0, 0, 9 };
	struct frame_reader r;
	const uint8_t *value;
	uint32_t value_len;
	uint8_t tag;

	(void) state;
	assert_int_equal(frame_reader_init(&r, body, sizeof(body), NULL, NULL), 0);
	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 0);
}

static void test_reader_truncated_field_header(void **state)
{
	static const uint8_t body[] = { 0x07, 0, 0, 0, 9, 0x01, 0, 0, 0 };
	struct frame_reader r;
	const uint8_t *value;
	uint32_t value_len;
	uint8_t tag;
	size_t cut;

	(void) state;
	/* One to four bytes of a five-byte field header. */
	for (cut = FRAME_BODY_MIN + 1; cut <= sizeof(body); cut++) {
		assert_int_equal(frame_reader_init(&r, body, cut, NULL, NULL), 0);
		assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len),
				FRAME_ERR_FIELD_TRUNCATED);
	}
}

static void test_reader_field_length_past_end(void **state)
{
	static const uint8_t short_by_one[] = {
		0x07, 0, 0, 0, 9, 0x01, 0, 0, 0, 3, 0xaa, 0xbb,
	};
	static const uint8_t huge[] = {
		0x07, 0, 0, 0, 9, 0x01, 0xff, 0xff, 0xff, 0xff, 0xaa,
	};
	static const uint8_t second_truncated[] = {
		0x07, 0, 0, 0, 9, 0x01, 0, 0, 0, 1, 0xaa, 0x02, 0, 0, 0, 2, 0xbb,
	};
	struct frame_reader r;
	const uint8_t *value;
	uint32_t value_len;
	uint8_t tag;

	(void) state;
	assert_int_equal(frame_reader_init(&r, short_by_one, sizeof(short_by_one),
					NULL, NULL), 0);
	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len),
			FRAME_ERR_FIELD_TRUNCATED);

	assert_int_equal(frame_reader_init(&r, huge, sizeof(huge), NULL, NULL), 0);
	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len),
			FRAME_ERR_FIELD_TRUNCATED);

	assert_int_equal(frame_reader_init(&r, second_truncated,
					sizeof(second_truncated), NULL, NULL), 0);
	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len), 1);
	assert_int_equal(frame_reader_field(&r, &tag, &value, &value_len),
			FRAME_ERR_FIELD_TRUNCATED);
}

static void test_reader_body_shorter_than_minimum(void **state)
{
	static const uint8_t body[] = { 0x07, 0, 0, 0 };
	struct frame_reader r;
	uint32_t id;
	uint8_t type;
	size_t len;

	(void) state;
	for (len = 0; len < FRAME_BODY_MIN; len++)
		assert_int_equal(frame_reader_init(&r, body, len, &type, &id),
				FRAME_ERR_SHORT_BODY);
}

/* ---- frame_writer ---- */

static void test_writer_accepts_body_of_exactly_max(void **state)
{
	size_t payload_len = FRAME_MAX_LEN - FRAME_BODY_MIN - FRAME_FIELD_HEADER_LEN;
	uint8_t *payload = calloc(1, payload_len);
	struct frame_writer w = { 0 };
	const uint8_t *frame, *body;
	size_t frame_len, body_len;

	(void) state;
	assert_non_null(payload);
	assert_int_equal(frame_writer_begin(&w, 0x01, 1), 0);
	assert_int_equal(frame_writer_bytes(&w, FIELD_PAYLOAD, payload, payload_len), 0);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), 0);
	assert_int_equal(frame_len, FRAME_HEADER_LEN + FRAME_MAX_LEN);
	assert_int_equal(w.cap, FRAME_HEADER_LEN + FRAME_MAX_LEN);
	assert_int_equal(frame_parse(frame, frame_len, &body, &body_len), frame_len);
	frame_writer_clear(&w);
	free(payload);
}

static void test_writer_refuses_frame_over_max(void **state)
{
	size_t payload_len = FRAME_MAX_LEN - FRAME_BODY_MIN - FRAME_FIELD_HEADER_LEN + 1;
	uint8_t *payload = calloc(1, payload_len);
	struct frame_writer w = { 0 };
	const uint8_t *frame = NULL;
	size_t frame_len = 0;

	(void) state;
	assert_non_null(payload);
	assert_int_equal(frame_writer_begin(&w, 0x01, 1), 0);
	assert_int_equal(frame_writer_bytes(&w, FIELD_PAYLOAD, payload, payload_len),
			FRAME_ERR_TOO_LARGE);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), FRAME_ERR_TOO_LARGE);
	assert_null(frame);
	assert_true(w.cap <= FRAME_HEADER_LEN + FRAME_MAX_LEN);

	/* Many fields adding up past the max are refused the same way. */
	assert_int_equal(frame_writer_begin(&w, 0x01, 2), 0);
	while (frame_writer_bytes(&w, FIELD_PAYLOAD, payload, 1000) == 0)
		;
	assert_int_equal(w.error, FRAME_ERR_TOO_LARGE);
	assert_true(w.len <= FRAME_HEADER_LEN + FRAME_MAX_LEN);
	assert_true(w.cap <= FRAME_HEADER_LEN + FRAME_MAX_LEN);

	/* A length that would overflow the arithmetic. */
	assert_int_equal(frame_writer_begin(&w, 0x01, 3), 0);
	assert_int_equal(frame_writer_bytes(&w, FIELD_PAYLOAD, payload, SIZE_MAX),
			FRAME_ERR_TOO_LARGE);
	frame_writer_clear(&w);
	free(payload);
}

static void test_writer_u32_is_big_endian(void **state)
{
	static const uint8_t expected[] = {
		0, 0, 0, 14,			/* body length */
		0x22, 0x01, 0x02, 0x03, 0x04,	/* type, request id */
		0x07, 0, 0, 0, 4,		/* tag, value length */
		0xa1, 0xb2, 0xc3, 0xd4,
	};
	struct frame_writer w = { 0 };
	const uint8_t *frame;
	size_t frame_len;

	(void) state;
	assert_int_equal(frame_writer_begin(&w, 0x22, 0x01020304), 0);
	assert_int_equal(frame_writer_u32(&w, 0x07, 0xa1b2c3d4), 0);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), 0);
	assert_int_equal(frame_len, sizeof(expected));
	assert_memory_equal(frame, expected, sizeof(expected));
	frame_writer_clear(&w);
}

static void test_writer_u64_is_big_endian(void **state)
{
	static const uint8_t expected[] = {
		0, 0, 0, 18,
		0x23, 0xff, 0xfe, 0xfd, 0xfc,
		0x08, 0, 0, 0, 8,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	};
	struct frame_writer w = { 0 };
	const uint8_t *frame;
	size_t frame_len;

	(void) state;
	assert_int_equal(frame_writer_begin(&w, 0x23, 0xfffefdfc), 0);
	assert_int_equal(frame_writer_u64(&w, 0x08, UINT64_C(0x0102030405060708)), 0);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), 0);
	assert_int_equal(frame_len, sizeof(expected));
	assert_memory_equal(frame, expected, sizeof(expected));
	frame_writer_clear(&w);
}

static void test_writer_str_omits_nul(void **state)
{
	static const uint8_t expected[] = {
		0, 0, 0, 13,
		0x01, 0, 0, 0, 0,
		0x02, 0, 0, 0, 3, 'P', '2', '5',
	};
	struct frame_writer w = { 0 };
	const uint8_t *frame;
	size_t frame_len;

	(void) state;
	assert_int_equal(frame_writer_begin(&w, 0x01, 0), 0);
	assert_int_equal(frame_writer_str(&w, 0x02, "P25"), 0);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), 0);
	assert_int_equal(frame_len, sizeof(expected));
	assert_memory_equal(frame, expected, sizeof(expected));
	frame_writer_clear(&w);
}

static void test_writer_use_before_begin_is_state_error(void **state)
{
	struct frame_writer w;
	const uint8_t *frame;
	size_t frame_len;

	(void) state;
	frame_writer_init(&w);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), FRAME_ERR_STATE);

	frame_writer_init(&w);
	assert_int_equal(frame_writer_u32(&w, 0x01, 1), FRAME_ERR_STATE);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), FRAME_ERR_STATE);
	assert_null(w.buf);
}

static void test_writer_error_is_sticky_until_begin(void **state)
{
	static const uint8_t expected[] = { 0, 0, 0, 5, 0x02, 0, 0, 0, 2 };
	uint8_t *payload = calloc(1, FRAME_MAX_LEN);
	struct frame_writer w = { 0 };
	const uint8_t *frame;
	size_t len, frame_len;

	(void) state;
	assert_non_null(payload);
	assert_int_equal(frame_writer_begin(&w, 0x01, 1), 0);
	assert_int_equal(frame_writer_bytes(&w, FIELD_PAYLOAD, payload, FRAME_MAX_LEN),
			FRAME_ERR_TOO_LARGE);
	len = w.len;
	assert_int_equal(frame_writer_u32(&w, 0x01, 7), FRAME_ERR_TOO_LARGE);
	assert_int_equal(w.len, len);

	/* The next frame starts clean, without the old one's bytes. */
	assert_int_equal(frame_writer_begin(&w, 0x02, 2), 0);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), 0);
	assert_int_equal(frame_len, sizeof(expected));
	assert_memory_equal(frame, expected, sizeof(expected));
	frame_writer_clear(&w);
	free(payload);
}

static void test_writer_no_memory(void **state)
{
	uint8_t payload[1000] = { 0 };
	struct frame_writer w = { 0 };
	const uint8_t *frame;
	size_t frame_len;

	(void) state;
	fail_next_malloc = true;
	assert_int_equal(frame_writer_begin(&w, 0x01, 1), FRAME_ERR_NO_MEMORY);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), FRAME_ERR_NO_MEMORY);

	/* Growing for a field: the frame so far stays owned and freed. */
	assert_int_equal(frame_writer_begin(&w, 0x01, 1), 0);
	fail_next_malloc = true;
	assert_int_equal(frame_writer_bytes(&w, FIELD_PAYLOAD, payload, sizeof(payload)),
			FRAME_ERR_NO_MEMORY);
	assert_int_equal(frame_writer_end(&w, &frame, &frame_len), FRAME_ERR_NO_MEMORY);
	frame_writer_clear(&w);
	assert_null(w.buf);
}

/* ---- typed values and errors ---- */

static void test_value_u32_wrong_length(void **state)
{
	static const uint8_t v[] = { 0x01, 0x02, 0x03, 0x04, 0x05 };
	uint32_t out = 0;

	(void) state;
	assert_int_equal(frame_value_u32(v, 0, &out), FRAME_ERR_VALUE_LENGTH);
	assert_int_equal(frame_value_u32(v, 3, &out), FRAME_ERR_VALUE_LENGTH);
	assert_int_equal(frame_value_u32(v, 5, &out), FRAME_ERR_VALUE_LENGTH);
	assert_int_equal(out, 0);
	assert_int_equal(frame_value_u32(v, 4, &out), 0);
	assert_int_equal(out, 0x01020304);
}

static void test_value_u64_wrong_length(void **state)
{
	static const uint8_t v[] = { 0x80, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09 };
	uint64_t out = 0;

	(void) state;
	assert_int_equal(frame_value_u64(v, 4, &out), FRAME_ERR_VALUE_LENGTH);
	assert_int_equal(frame_value_u64(v, 7, &out), FRAME_ERR_VALUE_LENGTH);
	assert_int_equal(frame_value_u64(v, 9, &out), FRAME_ERR_VALUE_LENGTH);
	assert_true(out == 0);
	assert_int_equal(frame_value_u64(v, 8, &out), 0);
	assert_true(out == UINT64_C(0x8002030405060708));
}

static void test_strerror_distinct(void **state)
{
	static const int codes[] = {
		0, FRAME_ERR_TOO_LARGE, FRAME_ERR_EMPTY, FRAME_ERR_SHORT_BODY,
		FRAME_ERR_FIELD_TRUNCATED, FRAME_ERR_NO_SPACE, FRAME_ERR_NO_MEMORY,
		FRAME_ERR_VALUE_LENGTH, FRAME_ERR_STATE, -1000,
	};
	size_t n = sizeof(codes) / sizeof(codes[0]), i, j;

	(void) state;
	for (i = 0; i < n; i++) {
		assert_non_null(frame_strerror(codes[i]));
		assert_true(strlen(frame_strerror(codes[i])) > 0);
		for (j = 0; j < i; j++)
			assert_string_not_equal(frame_strerror(codes[i]),
						frame_strerror(codes[j]));
	}
}

/* A taken frame's bytes are wiped by frame_decoder_release(), not left
 * for the next read; a frame still arriving is kept. */
static void test_decoder_release_wipes_taken_frames(void **state)
{
	static const uint8_t stream[] = {
		0, 0, 0, 7, 0x06, 0, 0, 0, 1, 0xAA, 0xBB,   /* a whole frame */
		0, 0, 0, 6, 0x05, 0, 0,                      /* the next, in part */
	};
	struct frame_decoder d;
	const uint8_t *body;
	size_t len;

	(void)state;
	frame_decoder_init(&d);
	commit_bytes(&d, stream, sizeof(stream));
	assert_int_equal(frame_decoder_next(&d, &body, &len), 1);
	assert_int_equal(frame_decoder_next(&d, &body, &len), 0);
	frame_decoder_release(&d);
	assert_int_equal(d.consumed, 0);
	assert_int_equal(d.len, 7);
	assert_memory_equal(d.buf, stream + 11, 7);
	for (size_t i = d.len; i < sizeof(stream); i++)
		assert_int_equal(d.buf[i], 0);
	frame_decoder_clear(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_exact_frame),
		cmocka_unit_test(test_parse_needs_more_at_every_split),
		cmocka_unit_test(test_parse_two_frames_back_to_back),
		cmocka_unit_test(test_parse_rejects_length_zero),
		cmocka_unit_test(test_parse_accepts_max_length),
		cmocka_unit_test(test_parse_max_length_header_alone_needs_more),
		cmocka_unit_test(test_parse_rejects_oversize_from_header_alone),
		cmocka_unit_test(test_decoder_byte_at_a_time_yields_same_frames),
		cmocka_unit_test(test_decoder_many_frames_in_one_chunk),
		cmocka_unit_test(test_decoder_cap_stays_small_for_small_frames),
		cmocka_unit_test(test_decoder_cap_never_exceeds_header_plus_max),
		cmocka_unit_test(test_decoder_silent_max_peer_gets_exactly_one_frame),
		cmocka_unit_test(test_decoder_grows_only_to_declared_length),
		cmocka_unit_test(test_decoder_shrinks_after_large_frame),
		cmocka_unit_test(test_decoder_rejects_oversize_header_before_body),
		cmocka_unit_test(test_decoder_space_rejects_oversize_header),
		cmocka_unit_test(test_decoder_error_is_sticky),
		cmocka_unit_test(test_decoder_space_full_of_pending_frames_is_no_space),
		cmocka_unit_test(test_decoder_commit_past_space_is_state_error),
		cmocka_unit_test(test_decoder_compaction_wipes_consumed_bytes),
		cmocka_unit_test(test_decoder_clear_frees_and_resets),
		cmocka_unit_test(test_decoder_no_memory_is_not_sticky),
		cmocka_unit_test(test_reader_fields_round_trip_via_writer),
		cmocka_unit_test(test_reader_body_without_fields_ends_at_once),
		cmocka_unit_test(test_reader_truncated_field_header),
		cmocka_unit_test(test_reader_field_length_past_end),
		cmocka_unit_test(test_reader_body_shorter_than_minimum),
		cmocka_unit_test(test_writer_accepts_body_of_exactly_max),
		cmocka_unit_test(test_writer_refuses_frame_over_max),
		cmocka_unit_test(test_writer_u32_is_big_endian),
		cmocka_unit_test(test_writer_u64_is_big_endian),
		cmocka_unit_test(test_writer_str_omits_nul),
		cmocka_unit_test(test_writer_use_before_begin_is_state_error),
		cmocka_unit_test(test_writer_error_is_sticky_until_begin),
		cmocka_unit_test(test_writer_no_memory),
		cmocka_unit_test(test_value_u32_wrong_length),
		cmocka_unit_test(test_value_u64_wrong_length),
		cmocka_unit_test(test_strerror_distinct),
		cmocka_unit_test(test_decoder_release_wipes_taken_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
