/*
 * mcinfo — the application/vnd.3gpp.mcptt-info+xml codec (TS 24.379).
 *
 * Only the two elements lmrsec needs are read and written:
 *   mcpttinfo/mcptt-Params/mcptt-request-uri/mcpttURI      (mandatory)
 *   mcpttinfo/mcptt-Params/mcptt-calling-user-id/mcpttURI  (optional)
 * Elements are matched by namespace URI and local name, so any prefix works;
 * unknown elements and attributes are ignored.  A document carrying a DOCTYPE
 * is refused outright: no DTD, no entity, no network is ever processed.
 *
 * Pure functions over a byte buffer: no I/O, no global state touched
 * (libxml2 errors are silenced per parser context, not process-wide).
 */
#ifndef LMRSEC_MCINFO_H
#define LMRSEC_MCINFO_H

#include <stddef.h>
#include <stdint.h>

#define MCINFO_NS "urn:3gpp:ns:mcpttInfo:1.0"
#define MCINFO_MAX_DOC 16384	/* bytes of one mcptt-info document */
#define MCINFO_MAX_URI 1024	/* bytes of one URI, after trimming */

enum mcinfo_error {
	MCINFO_ERR_TOO_LARGE = -1,		/* document over MCINFO_MAX_DOC */
	MCINFO_ERR_MALFORMED_XML = -2,		/* empty or not well-formed */
	MCINFO_ERR_DTD_FORBIDDEN = -3,		/* DOCTYPE present */
	MCINFO_ERR_WRONG_ROOT = -4,		/* root is not MCINFO_NS:mcpttinfo */
	MCINFO_ERR_MISSING_REQUEST_URI = -5,	/* no mcptt-request-uri/mcpttURI */
	MCINFO_ERR_BAD_URI = -6,		/* empty, too long or not a URI */
	MCINFO_ERR_DUPLICATE_ELEMENT = -7,	/* a known element repeated */
	MCINFO_ERR_NO_MEMORY = -8,
};

struct mcinfo {
	char *request_uri;	/* mcptt-request-uri; never NULL after a parse */
	char *calling_user_id;	/* mcptt-calling-user-id; NULL when absent */
};

/*
 * Parses one mcptt-info document.  On success returns 0 and fills @out with
 * malloc'd, NUL-terminated UTF-8 strings (release with mcinfo_clear()).
 * On failure returns a negative enum mcinfo_error and leaves @out zeroed.
 * @out is overwritten, not freed: pass a zeroed or cleared struct.
 */
int mcinfo_parse(const uint8_t *buf, size_t len, struct mcinfo *out);

/*
 * Builds a document from @in (request_uri mandatory, calling_user_id
 * optional; both are validated as mcinfo_parse() would).  On success *@xml
 * is a malloc'd NUL-terminated UTF-8 document of *@len bytes (NUL not
 * counted) that mcinfo_parse() accepts; release it with free().
 */
int mcinfo_build(const struct mcinfo *in, char **xml, size_t *len);

/* Frees both strings and leaves @m zeroed; NULL is allowed. */
void mcinfo_clear(struct mcinfo *m);

/*
 * A short phrase for @err, fit for a SIP reason phrase (e.g. "mcptt-info:
 * missing mcptt-request-uri").  Never NULL; static storage.
 */
const char *mcinfo_strerror(int err);

#endif /* LMRSEC_MCINFO_H */
