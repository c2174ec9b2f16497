/*
 * fuzz.h — what every libFuzzer target in tests/fuzz/ shares.
 *
 * A harness states the properties its parser promises (round trips, error
 * codes in range, outputs zeroed on failure) with FUZZ_ASSERT; a broken
 * property aborts, so libFuzzer saves the input as a crash artifact exactly
 * as it does for a sanitizer report.  Build and run: tests/fuzz/README.md.
 */
#ifndef LMRSEC_FUZZ_H
#define LMRSEC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The harness's own code is not what is being explored: its loops and
 * comparisons stay out of libFuzzer's feedback, where they would only cost
 * time and add features that mean nothing about the parser.
 */
#define FUZZ_HARNESS __attribute__((no_sanitize("coverage")))

FUZZ_HARNESS
static inline void fuzz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
	abort();
}

#define FUZZ_ASSERT(cond) \
	do { \
		if (!(cond)) \
			fuzz_fail(#cond, __FILE__, __LINE__); \
	} while (0)

/* A reason phrase or error text goes into a SIP status line or an ERROR
 * frame: it must be one printable line. */
FUZZ_HARNESS
static inline int fuzz_one_line(const char *s)
{
	if (!s || !*s)
		return 0;

	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return 0;

	return 1;
}

#endif /* LMRSEC_FUZZ_H */
