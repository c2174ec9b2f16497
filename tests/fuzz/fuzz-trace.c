/*
 * fuzz-trace — the SIP trace sanitiser (agent/trace.c), which turns every
 * SIP message the agent sends or receives into text for `lmrsecctl trace`.
 *
 * Input: one flag octet (bit 0: the message came over a stream transport),
 * then the message bytes.  Properties:
 *  - trace_sanitise() succeeds and gives one NUL-terminated string of at
 *    most TRACE_TEXT_MAX bytes plus a few summary lines, made of text lines
 *    only (no control character but LF and TAB);
 *  - no body byte leaves: the body is everything after the first empty line
 *    (everything after the first line when there is none), and no 9-byte run
 *    of it appears in a line the sanitiser copied from the head (every line
 *    not starting with '[') unless the same run is in the head too (as is,
 *    or with its CRLFs turned into the LFs the text ends lines with).  Runs
 *    made only of characters the sanitiser's own words use (lower-case
 *    letters, digits, " ,.;:=()/+_-[]", the double quote and the line feed)
 *    are skipped, and so are runs overlapping the `"withheld"` that replaces
 *    an Authorization response.  The
 *    generated '[' lines are built from head values, numbers and constants
 *    only; tests/unit/test-trace.c checks their content.
 */
#define _GNU_SOURCE		/* memmem */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "trace.h"

#define RUN 9
#define SUMMARY_SLACK 4096

FUZZ_HARNESS
static bool template_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr(" ,.;:=()/+_-[]\"\n", c) != NULL);
}

FUZZ_HARNESS
static bool template_run(const uint8_t *p)
{
	for (size_t i = 0; i < RUN; i++)
		if (!template_char(p[i]))
			return false;
	return true;
}

/* Where the head ends: after the first empty line, else after the first
 * line, else 0. */
FUZZ_HARNESS
static size_t head_len(const uint8_t *msg, size_t len)
{
	const uint8_t *lf;

	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (msg[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 3;
	}
	lf = memchr(msg, '\n', len);
	return lf ? (size_t) (lf - msg) + 1 : 0;
}

/* The head with its CRLFs as the text shows them: LF. */
FUZZ_HARNESS
static uint8_t *lf_only(const uint8_t *head, size_t len, size_t *out_len)
{
	uint8_t *out = malloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (!(head[i] == '\r' && i + 1 < len && head[i + 1] == '\n'))
			out[n++] = head[i];
	*out_len = n;
	return out;
}

/* The body's RUN-byte windows, by hash, so that the text's windows are
 * looked up in linear time. */
struct windows {
	const uint8_t *body;
	size_t *slot;		/* body offset + 1; 0: empty */
	size_t mask;
};

FUZZ_HARNESS
static size_t window_hash(const uint8_t *p)
{
	size_t h = 1469598103934665603u;

	for (size_t i = 0; i < RUN; i++)
		h = (h ^ p[i]) * 1099511628211u;
	return h;
}

FUZZ_HARNESS
static void windows_init(struct windows *w, const uint8_t *body, size_t len)
{
	size_t cap = 16;

	while (cap < 2 * len + 16)
		cap *= 2;
	w->body = body;
	w->mask = cap - 1;
	w->slot = calloc(cap, sizeof(size_t));
	for (size_t i = 0; i + RUN <= len; i++) {
		size_t k = window_hash(body + i) & w->mask;

		while (w->slot[k])
			k = (k + 1) & w->mask;
		w->slot[k] = i + 1;
	}
}

FUZZ_HARNESS
static bool windows_has(const struct windows *w, const uint8_t *p)
{
	size_t k = window_hash(p) & w->mask;

	for (; w->slot[k]; k = (k + 1) & w->mask)
		if (memcmp(w->body + w->slot[k] - 1, p, RUN) == 0)
			return true;
	return false;
}

/* A window that overlaps the `"withheld"` the sanitiser puts in place of
 * an Authorization response: head text around a constant. */
FUZZ_HARNESS
static bool near_withheld(const char *line, const char *p)
{
	static const char word[] = "\"withheld\"";
	const size_t n = sizeof(word) - 1;
	size_t at = (size_t) (p - line);
	size_t from = at + 1 > n ? at + 1 - n : 0;

	for (size_t k = from; k < at + RUN; k++)
		if (strncmp(line + k, word, n) == 0)
			return true;
	return false;
}

/* Every line of the text that is a copy of a head line (the generated
 * ones, built from head values, numbers and constants, start with '['):
 * none may hold a window of the body that the head does not hold too. */
FUZZ_HARNESS
static void check_copied_lines(const char *text, const uint8_t *msg, size_t len,
			       size_t head)
{
	struct windows w;
	size_t head_lf_len;
	uint8_t *head_lf = lf_only(msg, head, &head_lf_len);
	const char *line = text, *end;

	windows_init(&w, msg + head, len - head);
	for (; *line; line = end + 1) {
		end = strchr(line, '\n');
		FUZZ_ASSERT(end != NULL);	/* every line ends in LF */
		if (line[0] == '[')
			continue;
		for (const char *p = line; p + RUN <= end; p++) {
			const uint8_t *q = (const uint8_t *) p;

			if (template_run(q) || near_withheld(line, p) || !windows_has(&w, q))
				continue;
			FUZZ_ASSERT(memmem(msg, head, q, RUN) != NULL ||
				    memmem(head_lf, head_lf_len, q, RUN) != NULL);
		}
	}
	free(w.slot);
	free(head_lf);
}

FUZZ_HARNESS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *msg;
	size_t len, tlen;
	char *text = NULL;
	bool stream;

	if (size < 1)
		return 0;
	stream = data[0] & 1;
	msg = data + 1;
	len = size - 1;

	FUZZ_ASSERT(trace_sanitise(msg, len, stream, &text) == 0);
	FUZZ_ASSERT(text != NULL);
	tlen = strlen(text);
	FUZZ_ASSERT(tlen <= TRACE_TEXT_MAX + SUMMARY_SLACK);
	for (size_t i = 0; i < tlen; i++)
		FUZZ_ASSERT((uint8_t) text[i] >= 0x20 || text[i] == '\n' || text[i] == '\t');

	check_copied_lines(text, msg, len, head_len(msg, len));
	free(text);
	return 0;
}
