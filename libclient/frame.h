/*
 * frame.h — the local-socket frame codec shared by lmrsec-agent and liblmrsec
 * (DESIGN §4). C99, libc only. Internal to the library: the version script
 * exports lmrsec_* only, so nothing here is public ABI.
 *
 * A frame on the socket:
 *   length (4 octets BE, counts the body only, 1..FRAME_MAX_LEN) | body
 * A body:
 *   type (1 octet) | request id (4 octets BE) | field*
 * A field:
 *   tag (1 octet) | length (4 octets BE) | value
 * Tags and message types belong to the protocol layer; this codec only
 * moves them with bounds checks.
 */
#ifndef LMRSEC_FRAME_H
#define LMRSEC_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FRAME_HEADER_LEN	4
#define FRAME_MAX_LEN		262144	/* body bytes */
#define FRAME_BODY_MIN		5	/* type + request id */
#define FRAME_FIELD_HEADER_LEN	5	/* tag + length */
/* The decoder never holds less than this once it has a buffer, so a stream
 * of small frames is read in few syscalls without growing the buffer. */
#define FRAME_DECODER_MIN_CAP	4096

enum frame_error {
	FRAME_ERR_TOO_LARGE = -1,	/* declared or built body > FRAME_MAX_LEN */
	FRAME_ERR_EMPTY = -2,		/* declared length 0 */
	FRAME_ERR_SHORT_BODY = -3,	/* body < FRAME_BODY_MIN */
	FRAME_ERR_FIELD_TRUNCATED = -4,	/* field header or value runs past the body */
	FRAME_ERR_NO_SPACE = -5,	/* decoder full of frames not yet taken */
	FRAME_ERR_NO_MEMORY = -6,
	FRAME_ERR_VALUE_LENGTH = -7,	/* typed value of the wrong size */
	FRAME_ERR_STATE = -8,		/* call out of order (commit > space, end before begin) */
};

/*
 * Pure parse of the front of a byte stream. Returns > 0: total bytes of one
 * complete frame (header + body), with *body / *body_len set; 0: need more
 * bytes; < 0: enum frame_error (declared length 0 or > FRAME_MAX_LEN, found
 * as soon as the 4 header bytes are there, before any body arrives).
 * The body is not checked against FRAME_BODY_MIN here; frame_reader_init()
 * does that. This is the fuzz entry point.
 */
ssize_t frame_parse(const uint8_t *buf, size_t len,
			const uint8_t **body, size_t *body_len);

/*
 * Incremental decoder for partial reads. Loop:
 *   frame_decoder_space(d, &p, &n); k = read(fd, p, n); frame_decoder_commit(d, k);
 *   while ((r = frame_decoder_next(d, &body, &len)) == 1) handle(body, len);
 *   if (r < 0) close the connection.
 * The buffer holds at most one frame being received plus what one read
 * brought beyond it: its capacity is max(FRAME_DECODER_MIN_CAP, header +
 * declared length of the frame in front), never above FRAME_HEADER_LEN +
 * FRAME_MAX_LEN, and shrinks back once a large frame has been taken.
 * A framing error (TOO_LARGE, EMPTY, STATE) is sticky: every later call
 * returns it. NO_MEMORY and NO_SPACE leave the decoder as it was.
 * Zero-initialisation is equivalent to frame_decoder_init().
 */
struct frame_decoder {
	uint8_t *buf;
	size_t len;		/* bytes received into buf */
	size_t cap;		/* bytes allocated */
	size_t consumed;	/* bytes at the front already returned as frames */
	int error;		/* sticky enum frame_error, 0 when healthy */
};

void frame_decoder_init(struct frame_decoder *d);
/* Compacts, sizes the buffer for the frame in front and returns where to
 * read: *avail >= 1 on success. NO_SPACE means complete frames fill the
 * buffer: take them with frame_decoder_next() first. */
int frame_decoder_space(struct frame_decoder *d, uint8_t **space, size_t *avail);
/* Records n bytes read into the space; n > *avail puts the decoder in
 * FRAME_ERR_STATE. */
void frame_decoder_commit(struct frame_decoder *d, size_t n);
/* 1: one frame, *body valid until the next frame_decoder_space() or
 * frame_decoder_clear(); 0: need more bytes; < 0: enum frame_error. */
int frame_decoder_next(struct frame_decoder *d, const uint8_t **body, size_t *len);
/* Wipes the frames already taken (they carry key payloads) without waiting
 * for the next read; bodies returned by frame_decoder_next() become invalid.
 * Call it after the last frame of a read was handled. */
void frame_decoder_release(struct frame_decoder *d);
/* Wipes (frames carry key payloads) and frees; d is then as after init. */
void frame_decoder_clear(struct frame_decoder *d);

/* Reading a body. Values point into the body; strings are not NUL-terminated. */
struct frame_reader {
	const uint8_t *p;
	size_t left;
};

/* type and request_id may be NULL. FRAME_ERR_SHORT_BODY if len < 5. */
int frame_reader_init(struct frame_reader *r, const uint8_t *body, size_t len,
			uint8_t *type, uint32_t *request_id);
/* 1: one field; 0: end of body; FRAME_ERR_FIELD_TRUNCATED: a field header or
 * value runs past the end (the reader does not advance). */
int frame_reader_field(struct frame_reader *r, uint8_t *tag,
			const uint8_t **value, uint32_t *len);

/*
 * Writing one frame into a growable buffer, reused from frame to frame.
 * Errors are sticky until the next frame_writer_begin(), so a caller may add
 * every field and check only frame_writer_end(). A field that would take the
 * body past FRAME_MAX_LEN is refused at once (FRAME_ERR_TOO_LARGE), so the
 * buffer never exceeds FRAME_HEADER_LEN + FRAME_MAX_LEN.
 * Zero-initialisation is equivalent to frame_writer_init().
 */
struct frame_writer {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int error;
};

void frame_writer_init(struct frame_writer *w);
int frame_writer_begin(struct frame_writer *w, uint8_t type, uint32_t request_id);
int frame_writer_bytes(struct frame_writer *w, uint8_t tag,
			const void *value, size_t len);
int frame_writer_str(struct frame_writer *w, uint8_t tag, const char *s); /* without NUL */
int frame_writer_u32(struct frame_writer *w, uint8_t tag, uint32_t v);   /* 4 octets BE */
int frame_writer_u64(struct frame_writer *w, uint8_t tag, uint64_t v);   /* 8 octets BE */
/* Patches the length; *frame (header + body) is valid until the next
 * frame_writer_begin() or frame_writer_clear(). */
int frame_writer_end(struct frame_writer *w, const uint8_t **frame, size_t *len);
/* Wipes and frees; w is then as after init. */
void frame_writer_clear(struct frame_writer *w);

/* Typed field values: FRAME_ERR_VALUE_LENGTH unless len is exactly 4 / 8. */
int frame_value_u32(const uint8_t *v, uint32_t len, uint32_t *out);
int frame_value_u64(const uint8_t *v, uint32_t len, uint64_t *out);

/* A static string for 0 or any enum frame_error; never NULL. */
const char *frame_strerror(int err);

#endif /* LMRSEC_FRAME_H */
