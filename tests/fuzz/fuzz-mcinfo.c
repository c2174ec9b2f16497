/*
 * fuzz-mcinfo — the mcptt-info XML codec (agent/mcinfo.c, over libxml2).
 *
 * Each input is used twice:
 *  1. as a document: mcinfo_parse() returns 0 or one of its codes, leaves
 *     the output zeroed on failure, and on success yields URIs within the
 *     limit that mcinfo_build() accepts and that parse back unchanged;
 *  2. as URIs: the bytes before the first NUL are a request URI, the bytes
 *     after it a calling user ID; whatever mcinfo_build() accepts must parse
 *     back to exactly those strings (escaping is complete) and stay within
 *     MCINFO_MAX_DOC.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "mcinfo.h"

FUZZ_HARNESS
static bool is_parse_error(int r)
{
	return r <= MCINFO_ERR_TOO_LARGE && r >= MCINFO_ERR_NO_MEMORY;
}

FUZZ_HARNESS
static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;

	return !strcmp(a, b);
}

FUZZ_HARNESS
static void check_uri(const char *uri)
{
	size_t n = strlen(uri);

	FUZZ_ASSERT(n >= 1 && n <= MCINFO_MAX_URI);
	FUZZ_ASSERT(!strpbrk(uri, " \t\r\n"));
}

/* build(in) must give a document parse() reads back as in. */
FUZZ_HARNESS
static void check_build_parses_back(const struct mcinfo *in)
{
	struct mcinfo back = { 0 };
	char *xml = NULL;
	size_t len = 0;
	int r;

	r = mcinfo_build(in, &xml, &len);
	FUZZ_ASSERT(fuzz_one_line(mcinfo_strerror(r)));
	if (r < 0) {
		FUZZ_ASSERT(is_parse_error(r));
		FUZZ_ASSERT(xml == NULL && len == 0);
		return;
	}

	FUZZ_ASSERT(xml && strlen(xml) == len && len <= MCINFO_MAX_DOC);
	FUZZ_ASSERT(mcinfo_parse((const uint8_t *) xml, len, &back) == 0);
	FUZZ_ASSERT(same_str(back.request_uri, in->request_uri));
	FUZZ_ASSERT(same_str(back.calling_user_id, in->calling_user_id));
	mcinfo_clear(&back);
	free(xml);
}

FUZZ_HARNESS
static void fuzz_document(const uint8_t *data, size_t size)
{
	struct mcinfo m;
	int r;

	r = mcinfo_parse(data, size, &m);
	FUZZ_ASSERT(fuzz_one_line(mcinfo_strerror(r)));
	if (r < 0) {
		FUZZ_ASSERT(is_parse_error(r));
		FUZZ_ASSERT(m.request_uri == NULL && m.calling_user_id == NULL);
		return;
	}

	FUZZ_ASSERT(r == 0 && m.request_uri);
	check_uri(m.request_uri);
	if (m.calling_user_id)
		check_uri(m.calling_user_id);

	check_build_parses_back(&m);
	mcinfo_clear(&m);
	FUZZ_ASSERT(m.request_uri == NULL && m.calling_user_id == NULL);
}

FUZZ_HARNESS
static void fuzz_uris(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t first = nul ? (size_t) (nul - data) : size;
	struct mcinfo in = { 0 };

	in.request_uri = strndup((const char *) data, first);
	if (nul)
		in.calling_user_id = strndup((const char *) nul + 1,
					     size - first - 1);

	if (in.request_uri && (!nul || in.calling_user_id))
		check_build_parses_back(&in);

	mcinfo_clear(&in);
}

FUZZ_HARNESS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_document(data, size);
	fuzz_uris(data, size);
	return 0;
}
