#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "frame.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void read_body(const uint8_t *b, size_t n)
{
	struct frame_reader r; uint8_t t, tag; uint32_t id, vl, u; uint64_t u64; const uint8_t *v;
	if (frame_reader_init(&r, b, n, &t, &id) < 0) return;
	while (frame_reader_field(&r, &tag, &v, &vl) == 1) { frame_value_u32(v, vl, &u); frame_value_u64(v, vl, &u64); }
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *body; size_t bl, off = 0; ssize_t r;
	struct frame_decoder d; size_t chunk = size ? (data[0] % 13) + 1 : 1;
	while ((r = frame_parse(data + off, size - off, &body, &bl)) > 0) { read_body(body, bl); off += r; }
	frame_decoder_init(&d); off = 0;
	while (off < size) {
		uint8_t *sp; size_t av, n;
		if (frame_decoder_space(&d, &sp, &av) < 0) break;
		n = size - off; if (n > chunk) n = chunk; if (n > av) n = av;
		memcpy(sp, data + off, n); frame_decoder_commit(&d, n); off += n;
		int k; while ((k = frame_decoder_next(&d, &body, &bl)) == 1) read_body(body, bl);
		if (k < 0) break;
		if (d.cap > FRAME_HEADER_LEN + FRAME_MAX_LEN) __builtin_trap();
	}
	frame_decoder_clear(&d);
	return 0;
}
