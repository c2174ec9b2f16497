/*
 * frame.c — the local-socket frame codec (DESIGN §4). C99, libc only:
 * it is linked into liblmrsec as well as the agent.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE		/* explicit_bzero under -std=c99 */
#endif

#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* First allocation of a writer; doubles from here up to one full frame. */
#define FRAME_WRITER_MIN_CAP	256
#define FRAME_BUFFER_MAX	(FRAME_HEADER_LEN + FRAME_MAX_LEN)

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
		(uint32_t) p[2] << 8 | (uint32_t) p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t) (v >> 32));
	put_be32(p + 4, (uint32_t) v);
}

/* Frames carry key payloads: no buffer goes back to the allocator unwiped. */
static void wipe_free(void *p, size_t n)
{
	if (!p)
		return;

	explicit_bzero(p, n);
	free(p);
}

/* The declared body length, judged from the 4 header bytes alone so an
 * oversized frame is refused before any of its body is read. */
static int header_body_len(const uint8_t *header, size_t *body_len)
{
	uint32_t declared = get_be32(header);

	if (declared == 0)
		return FRAME_ERR_EMPTY;

	if (declared > FRAME_MAX_LEN)
		return FRAME_ERR_TOO_LARGE;

	*body_len = declared;
	return 0;
}

ssize_t frame_parse(const uint8_t *buf, size_t len,
			const uint8_t **body, size_t *body_len)
{
	size_t declared;
	int r;

	if (len < FRAME_HEADER_LEN)
		return 0;

	r = header_body_len(buf, &declared);
	if (r < 0)
		return r;

	if (len - FRAME_HEADER_LEN < declared)
		return 0;

	*body = buf + FRAME_HEADER_LEN;
	*body_len = declared;
	return (ssize_t) (FRAME_HEADER_LEN + declared);
}

void frame_decoder_init(struct frame_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

static int decoder_fail(struct frame_decoder *d, int err)
{
	d->error = err;
	return err;
}

/* Moves the pending bytes to the front and wipes the copies left behind. */
static void decoder_compact(struct frame_decoder *d)
{
	size_t pending = d->len - d->consumed;

	if (d->consumed == 0)
		return;

	memmove(d->buf, d->buf + d->consumed, pending);
	explicit_bzero(d->buf + pending, d->consumed);
	d->len = pending;
	d->consumed = 0;
}

/* A new buffer rather than realloc(), which could free the old one unwiped. */
static int decoder_resize(struct frame_decoder *d, size_t cap)
{
	uint8_t *buf = malloc(cap);

	if (!buf)
		return FRAME_ERR_NO_MEMORY;

	if (d->len)
		memcpy(buf, d->buf, d->len);

	wipe_free(d->buf, d->cap);
	d->buf = buf;
	d->cap = cap;
	return 0;
}

/* The capacity the frame at the front calls for: its full size once its
 * header is in, else the minimum. */
static int decoder_wanted_cap(const struct frame_decoder *d, size_t *cap)
{
	size_t body_len;
	int r;

	*cap = FRAME_DECODER_MIN_CAP;
	if (d->len < FRAME_HEADER_LEN)
		return 0;

	r = header_body_len(d->buf, &body_len);
	if (r < 0)
		return r;

	if (FRAME_HEADER_LEN + body_len > *cap)
		*cap = FRAME_HEADER_LEN + body_len;

	return 0;
}

int frame_decoder_space(struct frame_decoder *d, uint8_t **space, size_t *avail)
{
	size_t want;
	int r;

	if (d->error)
		return d->error;

	decoder_compact(d);

	r = decoder_wanted_cap(d, &want);
	if (r < 0)
		return decoder_fail(d, r);

	if (d->cap < want) {
		r = decoder_resize(d, want);
		if (r < 0)
			return r;
	} else if (d->cap > want && d->len < want) {
		/* Give back a large frame's buffer; if that fails, keep it. */
		(void) decoder_resize(d, want);
	}

	if (d->len == d->cap)
		return FRAME_ERR_NO_SPACE;

	*space = d->buf + d->len;
	*avail = d->cap - d->len;
	return 0;
}

void frame_decoder_commit(struct frame_decoder *d, size_t n)
{
	if (d->error)
		return;

	if (n > d->cap - d->len) {
		decoder_fail(d, FRAME_ERR_STATE);
		return;
	}

	d->len += n;
}

int frame_decoder_next(struct frame_decoder *d, const uint8_t **body, size_t *len)
{
	ssize_t r;

	if (d->error)
		return d->error;

	if (d->len == d->consumed)
		return 0;

	r = frame_parse(d->buf + d->consumed, d->len - d->consumed, body, len);
	if (r < 0)
		return decoder_fail(d, (int) r);

	if (r == 0)
		return 0;

	d->consumed += (size_t) r;
	return 1;
}

void frame_decoder_release(struct frame_decoder *d)
{
	if (d->buf)
		decoder_compact(d);
}

void frame_decoder_clear(struct frame_decoder *d)
{
	wipe_free(d->buf, d->cap);
	frame_decoder_init(d);
}

int frame_reader_init(struct frame_reader *r, const uint8_t *body, size_t len,
			uint8_t *type, uint32_t *request_id)
{
	if (len < FRAME_BODY_MIN)
		return FRAME_ERR_SHORT_BODY;

	if (type)
		*type = body[0];

	if (request_id)
		*request_id = get_be32(body + 1);

	r->p = body + FRAME_BODY_MIN;
	r->left = len - FRAME_BODY_MIN;
	return 0;
}

int frame_reader_field(struct frame_reader *r, uint8_t *tag,
			const uint8_t **value, uint32_t *len)
{
	uint32_t value_len;

	if (r->left == 0)
		return 0;

	if (r->left < FRAME_FIELD_HEADER_LEN)
		return FRAME_ERR_FIELD_TRUNCATED;

	value_len = get_be32(r->p + 1);
	if (value_len > r->left - FRAME_FIELD_HEADER_LEN)
		return FRAME_ERR_FIELD_TRUNCATED;

	*tag = r->p[0];
	*value = r->p + FRAME_FIELD_HEADER_LEN;
	*len = value_len;
	r->p += FRAME_FIELD_HEADER_LEN + value_len;
	r->left -= FRAME_FIELD_HEADER_LEN + value_len;
	return 1;
}

void frame_writer_init(struct frame_writer *w)
{
	memset(w, 0, sizeof(*w));
}

static int writer_fail(struct frame_writer *w, int err)
{
	w->error = err;
	return err;
}

/* Room for n more bytes; callers have already kept the frame within
 * FRAME_BUFFER_MAX, so the doubling is clamped there. */
static int writer_reserve(struct frame_writer *w, size_t n)
{
	size_t need = w->len + n;
	size_t cap = w->cap ? w->cap : FRAME_WRITER_MIN_CAP;
	uint8_t *buf;

	if (need <= w->cap)
		return 0;

	while (cap < need)
		cap *= 2;

	if (cap > FRAME_BUFFER_MAX)
		cap = FRAME_BUFFER_MAX;

	buf = malloc(cap);
	if (!buf)
		return FRAME_ERR_NO_MEMORY;

	if (w->len)
		memcpy(buf, w->buf, w->len);

	wipe_free(w->buf, w->cap);
	w->buf = buf;
	w->cap = cap;
	return 0;
}

int frame_writer_begin(struct frame_writer *w, uint8_t type, uint32_t request_id)
{
	if (w->buf)
		explicit_bzero(w->buf, w->len);

	w->len = 0;
	w->error = 0;

	if (writer_reserve(w, FRAME_HEADER_LEN + FRAME_BODY_MIN) < 0)
		return writer_fail(w, FRAME_ERR_NO_MEMORY);

	put_be32(w->buf, 0);	/* patched by frame_writer_end() */
	w->buf[FRAME_HEADER_LEN] = type;
	put_be32(w->buf + FRAME_HEADER_LEN + 1, request_id);
	w->len = FRAME_HEADER_LEN + FRAME_BODY_MIN;
	return 0;
}

int frame_writer_bytes(struct frame_writer *w, uint8_t tag,
			const void *value, size_t len)
{
	size_t body_len;
	uint8_t *field;

	if (w->error)
		return w->error;

	if (w->len < FRAME_HEADER_LEN + FRAME_BODY_MIN)
		return writer_fail(w, FRAME_ERR_STATE);

	/* body_len <= FRAME_MAX_LEN and len is bounded first: no overflow. */
	body_len = w->len - FRAME_HEADER_LEN;
	if (len > FRAME_MAX_LEN ||
			body_len + FRAME_FIELD_HEADER_LEN + len > FRAME_MAX_LEN)
		return writer_fail(w, FRAME_ERR_TOO_LARGE);

	if (writer_reserve(w, FRAME_FIELD_HEADER_LEN + len) < 0)
		return writer_fail(w, FRAME_ERR_NO_MEMORY);

	field = w->buf + w->len;
	field[0] = tag;
	put_be32(field + 1, (uint32_t) len);
	if (len)
		memcpy(field + FRAME_FIELD_HEADER_LEN, value, len);

	w->len += FRAME_FIELD_HEADER_LEN + len;
	return 0;
}

int frame_writer_str(struct frame_writer *w, uint8_t tag, const char *s)
{
	return frame_writer_bytes(w, tag, s, strlen(s));
}

int frame_writer_u32(struct frame_writer *w, uint8_t tag, uint32_t v)
{
	uint8_t value[4];

	put_be32(value, v);
	return frame_writer_bytes(w, tag, value, sizeof(value));
}

int frame_writer_u64(struct frame_writer *w, uint8_t tag, uint64_t v)
{
	uint8_t value[8];

	put_be64(value, v);
	return frame_writer_bytes(w, tag, value, sizeof(value));
}

int frame_writer_end(struct frame_writer *w, const uint8_t **frame, size_t *len)
{
	size_t body_len;

	if (w->error)
		return w->error;

	if (w->len < FRAME_HEADER_LEN + FRAME_BODY_MIN)
		return writer_fail(w, FRAME_ERR_STATE);

	body_len = w->len - FRAME_HEADER_LEN;
	if (body_len > FRAME_MAX_LEN)
		return writer_fail(w, FRAME_ERR_TOO_LARGE);

	put_be32(w->buf, (uint32_t) body_len);
	*frame = w->buf;
	*len = w->len;
	return 0;
}

void frame_writer_clear(struct frame_writer *w)
{
	wipe_free(w->buf, w->cap);
	frame_writer_init(w);
}

int frame_value_u32(const uint8_t *v, uint32_t len, uint32_t *out)
{
	if (len != 4)
		return FRAME_ERR_VALUE_LENGTH;

	*out = get_be32(v);
	return 0;
}

int frame_value_u64(const uint8_t *v, uint32_t len, uint64_t *out)
{
	if (len != 8)
		return FRAME_ERR_VALUE_LENGTH;

	*out = (uint64_t) get_be32(v) << 32 | get_be32(v + 4);
	return 0;
}

const char *frame_strerror(int err)
{
	if (err == 0)
		return "success";

	switch ((enum frame_error) err) {
	case FRAME_ERR_TOO_LARGE:
		return "frame longer than 262144 bytes";
	case FRAME_ERR_EMPTY:
		return "frame of length 0";
	case FRAME_ERR_SHORT_BODY:
		return "frame body shorter than type and request id";
	case FRAME_ERR_FIELD_TRUNCATED:
		return "frame field runs past the end of the body";
	case FRAME_ERR_NO_SPACE:
		return "frame buffer full of frames not yet taken";
	case FRAME_ERR_NO_MEMORY:
		return "out of memory for a frame";
	case FRAME_ERR_VALUE_LENGTH:
		return "frame field value has the wrong length";
	case FRAME_ERR_STATE:
		return "frame codec called out of order";
	}

	return "unknown frame error";
}
