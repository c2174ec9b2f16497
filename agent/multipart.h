/*
 * multipart/mixed body codec (RFC 2046 section 5.1) for the SIP MESSAGE
 * bodies of DESIGN §2: an mcptt-info XML part and a binary
 * interworking-data part.  Pure functions over byte buffers; splitting is
 * done by sofia-sip's MIME parser behind a strict framing check.
 */
#ifndef LMRSEC_MULTIPART_H
#define LMRSEC_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define MULTIPART_MAX_PARTS 8
#define MULTIPART_MAX_BODY (256 * 1024)
/* RFC 2046: boundary := 0*69<bchars> bcharsnospace */
#define MULTIPART_BOUNDARY_MAX 70

enum multipart_error {
	MULTIPART_ERR_NO_BOUNDARY = -1,		/* boundary missing or empty */
	MULTIPART_ERR_TOO_LARGE = -2,		/* over MULTIPART_MAX_BODY */
	MULTIPART_ERR_MALFORMED = -3,		/* bad delimiter line, part
						   without blank line, NUL or
						   bare CR/LF in part headers */
	MULTIPART_ERR_TOO_MANY_PARTS = -4,	/* over MULTIPART_MAX_PARTS */
	MULTIPART_ERR_PART_NO_CONTENT_TYPE = -5,
	MULTIPART_ERR_NO_MEMORY = -6,
	MULTIPART_ERR_BAD_BOUNDARY = -7,	/* not RFC 2046 bchars, too
						   long, or given twice */
	MULTIPART_ERR_BOUNDARY_NOT_FOUND = -8,	/* no delimiter in the body */
	MULTIPART_ERR_NO_CLOSE_DELIMITER = -9,
	MULTIPART_ERR_NO_PARTS = -10,		/* close delimiter first */
	MULTIPART_ERR_PART_BAD_HEADER = -11,	/* unparsable or repeated
						   part header */
	MULTIPART_ERR_PART_BAD_ENCODING = -12,	/* Content-Transfer-Encoding
						   other than binary/8bit/7bit */
	MULTIPART_ERR_BAD_CONTENT_TYPE = -13,	/* unparsable Content-Type
						   value, or one that cannot
						   be written in a header */
	MULTIPART_ERR_INVALID_ARGUMENT = -14,
};

struct multipart_part {
	char *content_type;	/* split: lower-cased type/subtype, no
				   parameters; build: written as given */
	uint8_t *body;		/* split: never NULL, NUL-terminated past len */
	size_t len;
};

struct multipart {
	size_t n_parts;
	struct multipart_part part[MULTIPART_MAX_PARTS];
};

/*
 * Split body by boundary (the value of the boundary= parameter, unquoted)
 * and copy each part out; *out is always initialised and owns the copies
 * (free with multipart_clear), and is empty on error.  Strict: every
 * delimiter line is CRLF "--" boundary [SP*] CRLF, the close delimiter is
 * required, every part has a blank line after its headers.  Preamble and
 * epilogue are ignored.
 */
int multipart_split(const char *boundary, const uint8_t *body, size_t len,
		    struct multipart *out);

/*
 * Extract the boundary parameter from a whole Content-Type value such as
 * `multipart/mixed; boundary="xyz"`; *boundary is malloc'd.  Does not check
 * the media type: the caller decides about 415.
 */
int multipart_boundary_from_content_type(const char *content_type,
					 char **boundary);

/* First part whose media type matches (case-insensitive), or NULL. */
const struct multipart_part *multipart_find(const struct multipart *m,
					    const char *media_type);

/*
 * Assemble parts into a multipart body under a boundary that occurs in no
 * part.  The boundary is deterministic ("lmrsec-" + 16 hex digits); both
 * *body and *boundary are malloc'd, the caller frees them (wipe *body
 * first: it holds the key material).  The result is at most
 * MULTIPART_MAX_BODY bytes, so it always splits back.
 */
int multipart_build(const struct multipart_part *parts, size_t n,
		    uint8_t **body, size_t *len, char **boundary);

/* Wipe part bodies (explicit_bzero), free everything, leave *m empty. */
void multipart_clear(struct multipart *m);

/* A phrase usable as a SIP 400 reason. */
const char *multipart_strerror(int err);

#endif /* LMRSEC_MULTIPART_H */
