/*
 * fuzz-frame — the local-socket frame codec (libclient/frame.c), the first
 * thing every byte from a local client meets.
 *
 * The input is a byte stream as a client would write it to the socket.
 * frame_parse() over the whole stream is the reference; the incremental
 * decoder is then fed the same stream in four read patterns (one byte at a
 * time over the first 128 bytes, 7-byte reads, as much as it offers, and
 * pseudo-random lengths derived from the input) and must yield exactly the
 * same frames and stop at the same error.  Every frame body goes through the field reader, and
 * a body the reader accepts is rebuilt with the writer byte for byte.
 * Properties besides equality:
 *  - the decoder never holds more than one frame plus what one read brought:
 *    its capacity stays at FRAME_DECODER_MIN_CAP unless a frame declared
 *    more, and never exceeds FRAME_HEADER_LEN + FRAME_MAX_LEN;
 *  - a truncated field does not move the reader; typed values accept
 *    exactly 4 or 8 octets; every error has one line of text.
 */
#include <stdbool.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"

/* Frames a stream of libFuzzer's sizes can hold; more are not compared. */
#define MAX_FRAMES	4096

struct frames {
	size_t n;
	size_t off[MAX_FRAMES];		/* of each body in the stream */
	size_t len[MAX_FRAMES];
	int end;			/* 0: stream ended (maybe mid-frame), else the error */
	size_t rest;			/* bytes after the last frame when end is 0 */
	size_t max_declared;		/* largest body length a header announced */
};

static struct frames reference;

FUZZ_HARNESS
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
		(uint32_t) p[2] << 8 | (uint32_t) p[3];
}

FUZZ_HARNESS
static void reference_parse(const uint8_t *data, size_t size, struct frames *f)
{
	const uint8_t *body;
	size_t off = 0, body_len;
	ssize_t r;

	memset(f, 0, sizeof(*f));
	while ((r = frame_parse(data + off, size - off, &body, &body_len)) > 0) {
		FUZZ_ASSERT((size_t) r == FRAME_HEADER_LEN + body_len);
		FUZZ_ASSERT(body == data + off + FRAME_HEADER_LEN);
		FUZZ_ASSERT(body_len >= 1 && body_len <= FRAME_MAX_LEN);
		if (f->n < MAX_FRAMES) {
			f->off[f->n] = off + FRAME_HEADER_LEN;
			f->len[f->n] = body_len;
		}
		f->n++;
		if (body_len > f->max_declared)
			f->max_declared = body_len;
		off += (size_t) r;
	}

	f->end = (int) r;
	f->rest = size - off;
	if (r == 0 && f->rest >= FRAME_HEADER_LEN && be32(data + off) > f->max_declared)
		f->max_declared = be32(data + off);

	FUZZ_ASSERT(r == 0 || r == FRAME_ERR_EMPTY || r == FRAME_ERR_TOO_LARGE);
	FUZZ_ASSERT(fuzz_one_line(frame_strerror(f->end)));
}

/* Rebuilds a body the reader accepts; the writer must give the same bytes. */
FUZZ_HARNESS
static void check_rewrite(const uint8_t *body, size_t len, uint8_t type,
			  uint32_t id)
{
	struct frame_writer w = { 0 };
	struct frame_reader r;
	const uint8_t *value, *frame;
	size_t frame_len;
	uint32_t vlen;
	uint8_t tag;

	FUZZ_ASSERT(frame_writer_begin(&w, type, id) == 0);
	FUZZ_ASSERT(frame_reader_init(&r, body, len, NULL, NULL) == 0);
	while (frame_reader_field(&r, &tag, &value, &vlen) == 1)
		FUZZ_ASSERT(frame_writer_bytes(&w, tag, value, vlen) == 0);

	FUZZ_ASSERT(frame_writer_end(&w, &frame, &frame_len) == 0);
	FUZZ_ASSERT(frame_len == FRAME_HEADER_LEN + len);
	FUZZ_ASSERT(be32(frame) == len);
	FUZZ_ASSERT(!memcmp(frame + FRAME_HEADER_LEN, body, len));
	frame_writer_clear(&w);
}

FUZZ_HARNESS
static void check_typed_value(const uint8_t *value, uint32_t vlen)
{
	uint32_t u32;
	uint64_t u64;

	FUZZ_ASSERT((frame_value_u32(value, vlen, &u32) == 0) == (vlen == 4));
	FUZZ_ASSERT((frame_value_u64(value, vlen, &u64) == 0) == (vlen == 8));
}

FUZZ_HARNESS
static void check_body(const uint8_t *body, size_t len)
{
	struct frame_reader r, before;
	const uint8_t *value;
	uint32_t id, vlen;
	size_t tiled = FRAME_BODY_MIN;
	uint8_t type, tag;
	int k;

	if (frame_reader_init(&r, body, len, &type, &id) < 0) {
		FUZZ_ASSERT(len < FRAME_BODY_MIN);
		return;
	}
	FUZZ_ASSERT(type == body[0] && id == be32(body + 1));

	for (;;) {
		before = r;
		k = frame_reader_field(&r, &tag, &value, &vlen);
		if (k != 1)
			break;
		FUZZ_ASSERT(value == body + tiled + FRAME_FIELD_HEADER_LEN);
		FUZZ_ASSERT(tag == body[tiled]);
		tiled += FRAME_FIELD_HEADER_LEN + vlen;
		FUZZ_ASSERT(tiled <= len);
		check_typed_value(value, vlen);
	}

	if (k < 0) {
		FUZZ_ASSERT(k == FRAME_ERR_FIELD_TRUNCATED);
		FUZZ_ASSERT(r.p == before.p && r.left == before.left);
		return;
	}

	FUZZ_ASSERT(k == 0 && tiled == len);
	check_rewrite(body, len, type, id);
}

enum read_pattern {
	READ_ONE_BYTE,
	READ_SEVEN,
	READ_ALL_OFFERED,
	READ_RANDOM,
};

/* Byte-at-a-time costs one decoder round per byte under full
 * instrumentation; past ONE_BYTE_SPAN it reads 64 at a time, the random
 * pattern covering later split points. */
#define ONE_BYTE_SPAN	128

FUZZ_HARNESS
static size_t read_length(enum read_pattern pattern, size_t off, uint32_t *rng)
{
	switch (pattern) {
	case READ_ONE_BYTE:
		return off < ONE_BYTE_SPAN ? 1 : 64;
	case READ_SEVEN:
		return 7;
	case READ_ALL_OFFERED:
		return SIZE_MAX;
	case READ_RANDOM:
		*rng ^= *rng << 13;
		*rng ^= *rng >> 17;
		*rng ^= *rng << 5;
		/* mostly short reads, sometimes a big one */
		return (*rng & 7) ? 1 + (*rng >> 8) % 23 : 1 + (*rng >> 8) % 5000;
	}
	return 1;
}

FUZZ_HARNESS
static size_t cap_bound(void)
{
	size_t want = FRAME_HEADER_LEN + reference.max_declared;

	return want > FRAME_DECODER_MIN_CAP ? want : FRAME_DECODER_MIN_CAP;
}

/* Takes every complete frame; checks each against the reference. */
FUZZ_HARNESS
static int drain(struct frame_decoder *d, const uint8_t *data, size_t *n)
{
	const uint8_t *body;
	size_t len;
	int k;

	while ((k = frame_decoder_next(d, &body, &len)) == 1) {
		FUZZ_ASSERT(*n < reference.n);
		if (*n < MAX_FRAMES) {
			FUZZ_ASSERT(len == reference.len[*n]);
			FUZZ_ASSERT(!memcmp(body, data + reference.off[*n], len));
		}
		(*n)++;
	}
	return k;
}

FUZZ_HARNESS
static void decode_stream(const uint8_t *data, size_t size,
			  enum read_pattern pattern, uint32_t rng)
{
	struct frame_decoder d;
	size_t off = 0, n = 0, avail, want;
	uint8_t *space;
	int k = 0;

	frame_decoder_init(&d);
	while (off < size) {
		k = frame_decoder_space(&d, &space, &avail);
		if (k < 0)
			break;
		FUZZ_ASSERT(avail >= 1 && d.cap <= cap_bound());

		want = read_length(pattern, off, &rng);
		if (want > avail)
			want = avail;
		if (want > size - off)
			want = size - off;
		memcpy(space, data + off, want);
		frame_decoder_commit(&d, want);
		off += want;

		k = drain(&d, data, &n);
		if (k < 0)
			break;
	}

	FUZZ_ASSERT(d.cap <= cap_bound());
	FUZZ_ASSERT(d.cap <= FRAME_HEADER_LEN + FRAME_MAX_LEN);
	FUZZ_ASSERT(n == reference.n);
	FUZZ_ASSERT(k == reference.end);
	FUZZ_ASSERT(k != FRAME_ERR_NO_SPACE);
	if (k == 0)
		FUZZ_ASSERT(d.len - d.consumed == reference.rest);
	frame_decoder_clear(&d);
	FUZZ_ASSERT(d.buf == NULL && d.cap == 0);
}

/* FNV-1a: a read pattern that follows the input without using its bytes. */
FUZZ_HARNESS
static uint32_t seed_of(const uint8_t *data, size_t size)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	return h ? h : 1;
}

FUZZ_HARNESS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i;

	reference_parse(data, size, &reference);
	for (i = 0; i < reference.n && i < MAX_FRAMES; i++)
		check_body(data + reference.off[i], reference.len[i]);

	decode_stream(data, size, READ_ONE_BYTE, 1);
	decode_stream(data, size, READ_SEVEN, 1);
	decode_stream(data, size, READ_ALL_OFFERED, 1);
	decode_stream(data, size, READ_RANDOM, seed_of(data, size));
	return 0;
}
