/*
 * mcinfo — the application/vnd.3gpp.mcptt-info+xml codec (TS 24.379).
 *
 * Parsing goes through a libxml2 DOM: documents are capped at
 * MCINFO_MAX_DOC bytes, so the tree stays small, and matching by namespace
 * URI and local name is what the tree gives directly.  Building is plain
 * string assembly with escaping, so the output is exact and predictable.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "mcinfo.h"

/*
 * No entity substitution (NOENT), no DTD loading or validation, no network;
 * errors and warnings are not printed.  Anything not listed stays off.
 * The document is read as UTF-8 whatever it declares (IGNORE_ENC): 3GPP
 * XML bodies are UTF-8, and libxml2's charset converters report their
 * errors process-wide, on stderr, bypassing the context's handler.
 */
#define MCINFO_XML_OPTIONS \
	(XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | \
	 XML_PARSE_IGNORE_ENC)
#define MCINFO_XML_ENCODING "UTF-8"

/* What the SAX hooks learn during one parse; lives on mcinfo_read()'s stack. */
struct mcinfo_reader {
	bool doctype_seen;
};

/*
 * libxml2 2.9 has no xmlCtxtSetErrorHandler(); a structured handler in the
 * context's own SAX table takes precedence over the process-wide one, so
 * this keeps errors off stderr without touching global state.
 */
static void mcinfo_xml_error_discard(void *ctx, xmlErrorPtr error)
{
	(void) ctx;
	(void) error;
}

/*
 * Called as soon as "<!DOCTYPE name ...>" is read, before any internal
 * subset: stopping here means no entity is ever declared, expanded or
 * fetched (billion laughs, XXE).
 */
static void mcinfo_doctype_refuse(void *ctx, const xmlChar *name,
				  const xmlChar *external_id,
				  const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct mcinfo_reader *reader = ctxt->_private;

	(void) name;
	(void) external_id;
	(void) system_id;

	reader->doctype_seen = true;
	xmlStopParser(ctxt);
}

static int mcinfo_read(const uint8_t *buf, size_t len, xmlDocPtr *doc_out)
{
	struct mcinfo_reader reader = { .doctype_seen = false };
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc;
	int r = 0;

	xmlInitParser();

	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return MCINFO_ERR_NO_MEMORY;

	/* The context owns a private copy of the SAX table: safe to patch. */
	ctxt->sax->serror = mcinfo_xml_error_discard;
	ctxt->sax->internalSubset = mcinfo_doctype_refuse;
	ctxt->_private = &reader;

	doc = xmlCtxtReadMemory(ctxt, (const char *) buf, (int) len, NULL,
				MCINFO_XML_ENCODING, MCINFO_XML_OPTIONS);

	if (reader.doctype_seen)
		r = MCINFO_ERR_DTD_FORBIDDEN;
	else if (ctxt->errNo == XML_ERR_NO_MEMORY)
		r = MCINFO_ERR_NO_MEMORY;
	else if (!doc || !ctxt->wellFormed || !ctxt->nsWellFormed)
		r = MCINFO_ERR_MALFORMED_XML;

	xmlFreeParserCtxt(ctxt);

	if (r < 0) {
		xmlFreeDoc(doc);
		return r;
	}

	*doc_out = doc;
	return 0;
}

static bool mcinfo_is(const xmlNode *node, const char *local_name)
{
	if (node->type != XML_ELEMENT_NODE)
		return false;

	if (!node->ns || !node->ns->href)
		return false;

	return xmlStrEqual(node->ns->href, (const xmlChar *) MCINFO_NS) &&
		xmlStrEqual(node->name, (const xmlChar *) local_name);
}

/*
 * The one child of @parent called @local_name, or NULL.  A repeated element
 * is refused: picking one of them would be a guess.
 */
static int mcinfo_child(const xmlNode *parent, const char *local_name,
			const xmlNode **found)
{
	const xmlNode *child;

	*found = NULL;

	for (child = parent->children; child; child = child->next) {
		if (!mcinfo_is(child, local_name))
			continue;

		if (*found)
			return MCINFO_ERR_DUPLICATE_ELEMENT;

		*found = child;
	}

	return 0;
}

static bool mcinfo_is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Decodes one UTF-8 sequence strictly (no overlong forms, surrogates or
 * values past U+10FFFF).  Returns its length in bytes, 0 when invalid.
 */
static size_t mcinfo_utf8_next(const uint8_t *s, size_t len, uint32_t *cp)
{
	static const uint32_t min_value[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t n, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}

	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}

	if (n > len)
		return 0;

	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;

		c = (c << 6) | (s[i] & 0x3f);
	}

	if (c < min_value[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;

	*cp = c;
	return n;
}

/*
 * A URI goes into SIP headers and reason phrases later, so beyond the
 * length bound no whitespace or control character may pass (header
 * injection), nor anything XML 1.0 could not carry back.
 */
static bool mcinfo_uri_char_ok(uint32_t c)
{
	if (c <= 0x20 || (c >= 0x7f && c <= 0x9f))
		return false;

	return c != 0xfffe && c != 0xffff;
}

/* RFC 3986 scheme ":" followed by something. */
static bool mcinfo_uri_has_scheme(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') ||
			  (s[0] >= 'A' && s[0] <= 'Z')))
		return false;

	for (i = 1; i < len; i++) {
		char c = s[i];

		if (c == ':')
			return i + 1 < len;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '-' ||
		      c == '.'))
			return false;
	}

	return false;
}

static int mcinfo_uri_check(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *) s;
	size_t off = 0;

	if (len == 0 || len > MCINFO_MAX_URI)
		return MCINFO_ERR_BAD_URI;

	if (!mcinfo_uri_has_scheme(s, len))
		return MCINFO_ERR_BAD_URI;

	while (off < len) {
		uint32_t c;
		size_t n = mcinfo_utf8_next(p + off, len - off, &c);

		if (n == 0 || !mcinfo_uri_char_ok(c))
			return MCINFO_ERR_BAD_URI;

		off += n;
	}

	return 0;
}

/*
 * The text directly inside @elem (text and CDATA children; text of nested
 * elements does not count), surrounding XML whitespace trimmed, validated.
 */
static int mcinfo_uri_text(const xmlNode *elem, char **uri)
{
	const xmlNode *child;
	size_t total = 0, start = 0, end;
	char *text;
	int r;

	for (child = elem->children; child; child = child->next) {
		if (child->type == XML_TEXT_NODE ||
		    child->type == XML_CDATA_SECTION_NODE)
			total += (size_t) xmlStrlen(child->content);
	}

	/* Unreachable with a capped document, but never trust a sum. */
	if (total > MCINFO_MAX_DOC)
		return MCINFO_ERR_BAD_URI;

	text = malloc(total + 1);
	if (!text)
		return MCINFO_ERR_NO_MEMORY;

	end = 0;
	for (child = elem->children; child; child = child->next) {
		size_t n;

		if (child->type != XML_TEXT_NODE &&
		    child->type != XML_CDATA_SECTION_NODE)
			continue;

		n = (size_t) xmlStrlen(child->content);
		memcpy(text + end, child->content, n);
		end += n;
	}

	while (start < end && mcinfo_is_xml_space(text[start]))
		start++;

	while (end > start && mcinfo_is_xml_space(text[end - 1]))
		end--;

	r = mcinfo_uri_check(text + start, end - start);
	if (r == 0) {
		*uri = strndup(text + start, end - start);
		if (!*uri)
			r = MCINFO_ERR_NO_MEMORY;
	}

	free(text);
	return r;
}

/*
 * The URI of mcptt-Params/@name/mcpttURI into *uri; *uri stays NULL when
 * @name or its mcpttURI is absent.
 */
static int mcinfo_param_uri(const xmlNode *params, const char *name,
			    char **uri)
{
	const xmlNode *param, *value;
	int r;

	r = mcinfo_child(params, name, &param);
	if (r < 0 || !param)
		return r;

	r = mcinfo_child(param, "mcpttURI", &value);
	if (r < 0 || !value)
		return r;

	return mcinfo_uri_text(value, uri);
}

static int mcinfo_from_doc(xmlDocPtr doc, struct mcinfo *out)
{
	const xmlNode *root = xmlDocGetRootElement(doc);
	const xmlNode *params;
	int r;

	if (!root || !mcinfo_is(root, "mcpttinfo"))
		return MCINFO_ERR_WRONG_ROOT;

	r = mcinfo_child(root, "mcptt-Params", &params);
	if (r < 0)
		return r;

	if (!params)
		return MCINFO_ERR_MISSING_REQUEST_URI;

	r = mcinfo_param_uri(params, "mcptt-request-uri", &out->request_uri);
	if (r < 0)
		return r;

	if (!out->request_uri)
		return MCINFO_ERR_MISSING_REQUEST_URI;

	return mcinfo_param_uri(params, "mcptt-calling-user-id",
				&out->calling_user_id);
}

int mcinfo_parse(const uint8_t *buf, size_t len, struct mcinfo *out)
{
	xmlDocPtr doc;
	int r;

	memset(out, 0, sizeof(*out));

	if (len > MCINFO_MAX_DOC)
		return MCINFO_ERR_TOO_LARGE;

	if (!buf || len == 0)
		return MCINFO_ERR_MALFORMED_XML;

	r = mcinfo_read(buf, len, &doc);
	if (r < 0)
		return r;

	r = mcinfo_from_doc(doc, out);
	xmlFreeDoc(doc);

	if (r < 0)
		mcinfo_clear(out);

	return r;
}

/* Writes into buf when it is set; otherwise only counts, to size it. */
struct mcinfo_writer {
	char *buf;
	size_t len;
};

static void mcinfo_put(struct mcinfo_writer *w, const char *s, size_t n)
{
	if (w->buf)
		memcpy(w->buf + w->len, s, n);

	w->len += n;
}

static void mcinfo_put_str(struct mcinfo_writer *w, const char *s)
{
	mcinfo_put(w, s, strlen(s));
}

static void mcinfo_put_escaped(struct mcinfo_writer *w, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			mcinfo_put_str(w, "&amp;");
			break;
		case '<':
			mcinfo_put_str(w, "&lt;");
			break;
		case '>':
			mcinfo_put_str(w, "&gt;");
			break;
		default:
			mcinfo_put(w, s, 1);
			break;
		}
	}
}

static void mcinfo_put_param(struct mcinfo_writer *w, const char *name,
			     const char *uri)
{
	mcinfo_put_str(w, "    <");
	mcinfo_put_str(w, name);
	mcinfo_put_str(w, " type=\"Normal\"><mcpttURI>");
	mcinfo_put_escaped(w, uri);
	mcinfo_put_str(w, "</mcpttURI></");
	mcinfo_put_str(w, name);
	mcinfo_put_str(w, ">\n");
}

static void mcinfo_write(struct mcinfo_writer *w, const struct mcinfo *in)
{
	mcinfo_put_str(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<mcpttinfo xmlns=\"" MCINFO_NS "\">\n"
		       "  <mcptt-Params>\n");

	mcinfo_put_param(w, "mcptt-request-uri", in->request_uri);

	if (in->calling_user_id)
		mcinfo_put_param(w, "mcptt-calling-user-id",
				 in->calling_user_id);

	mcinfo_put_str(w, "  </mcptt-Params>\n"
		       "</mcpttinfo>\n");
}

int mcinfo_build(const struct mcinfo *in, char **xml, size_t *len)
{
	struct mcinfo_writer w = { .buf = NULL, .len = 0 };
	size_t size;
	int r;

	*xml = NULL;
	*len = 0;

	if (!in->request_uri)
		return MCINFO_ERR_MISSING_REQUEST_URI;

	r = mcinfo_uri_check(in->request_uri, strlen(in->request_uri));
	if (r < 0)
		return r;

	if (in->calling_user_id) {
		r = mcinfo_uri_check(in->calling_user_id,
				     strlen(in->calling_user_id));
		if (r < 0)
			return r;
	}

	mcinfo_write(&w, in);
	size = w.len;

	/* Two escaped maximum-length URIs still fit; keep parse's promise. */
	if (size > MCINFO_MAX_DOC)
		return MCINFO_ERR_TOO_LARGE;

	w.buf = malloc(size + 1);
	if (!w.buf)
		return MCINFO_ERR_NO_MEMORY;

	w.len = 0;
	mcinfo_write(&w, in);
	w.buf[size] = '\0';

	*xml = w.buf;
	*len = size;
	return 0;
}

void mcinfo_clear(struct mcinfo *m)
{
	if (!m)
		return;

	free(m->request_uri);
	free(m->calling_user_id);
	memset(m, 0, sizeof(*m));
}

const char *mcinfo_strerror(int err)
{
	if (err == 0)
		return "mcptt-info: ok";

	switch ((enum mcinfo_error) err) {
	case MCINFO_ERR_TOO_LARGE:
		return "mcptt-info: document too large";
	case MCINFO_ERR_MALFORMED_XML:
		return "mcptt-info: malformed XML";
	case MCINFO_ERR_DTD_FORBIDDEN:
		return "mcptt-info: DOCTYPE not allowed";
	case MCINFO_ERR_WRONG_ROOT:
		return "mcptt-info: root element is not mcpttinfo";
	case MCINFO_ERR_MISSING_REQUEST_URI:
		return "mcptt-info: missing mcptt-request-uri";
	case MCINFO_ERR_BAD_URI:
		return "mcptt-info: invalid mcpttURI";
	case MCINFO_ERR_DUPLICATE_ELEMENT:
		return "mcptt-info: repeated element";
	case MCINFO_ERR_NO_MEMORY:
		return "mcptt-info: out of memory";
	}

	return "mcptt-info: unknown error";
}
