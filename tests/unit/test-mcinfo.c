/*
 * Unit tests for agent/mcinfo.c, the mcptt-info XML codec.
 *
 * Built and run by hand with:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -Iagent $(pkg-config --cflags libxml-2.0 cmocka) \
 *       -o /tmp/test-mcinfo tests/unit/test-mcinfo.c agent/mcinfo.c \
 *       $(pkg-config --libs libxml-2.0 cmocka)
 *   /tmp/test-mcinfo
 * and under the sanitizers:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -fsanitize=address,undefined -fno-omit-frame-pointer \
 *       -Iagent $(pkg-config --cflags libxml-2.0 cmocka) \
 *       -o /tmp/test-mcinfo-asan tests/unit/test-mcinfo.c agent/mcinfo.c \
 *       $(pkg-config --libs libxml-2.0 cmocka)
 *   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
 *       /tmp/test-mcinfo-asan
 *
 * libxml2 headers are used only to install a counting external-entity
 * loader in this test process, to prove that no entity is ever fetched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parserInternals.h>

#include "mcinfo.h"

#define ALICE "sip:alice@mc.example.org"
#define KMF "sip:kmf@iwf.example.org"

static const char doc_default_ns[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\">\n"
	"  <mcptt-Params>\n"
	"    <mcptt-request-uri type=\"Normal\"><mcpttURI>" ALICE "</mcpttURI></mcptt-request-uri>\n"
	"    <mcptt-calling-user-id type=\"Normal\"><mcpttURI>" KMF "</mcpttURI></mcptt-calling-user-id>\n"
	"  </mcptt-Params>\n"
	"</mcpttinfo>\n";

static int parse_str(const char *doc, struct mcinfo *out)
{
	return mcinfo_parse((const uint8_t *) doc, strlen(doc), out);
}

/* Parses @doc, expecting @err, and checks the out struct stayed zeroed. */
static void assert_parse_fails(const char *doc, int err)
{
	struct mcinfo m = { NULL, NULL };

	assert_int_equal(parse_str(doc, &m), err);
	assert_null(m.request_uri);
	assert_null(m.calling_user_id);
}

static void test_parse_default_namespace(void **state)
{
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(doc_default_ns, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	assert_string_equal(m.calling_user_id, KMF);
	mcinfo_clear(&m);
}

static void test_parse_prefixed_namespace(void **state)
{
	static const char doc[] =
		"<m:mcpttinfo xmlns:m=\"urn:3gpp:ns:mcpttInfo:1.0\">"
		"<m:mcptt-Params>"
		"<m:mcptt-request-uri type=\"Normal\"><m:mcpttURI>" ALICE "</m:mcpttURI></m:mcptt-request-uri>"
		"<m:mcptt-calling-user-id><m:mcpttURI>" KMF "</m:mcpttURI></m:mcptt-calling-user-id>"
		"</m:mcptt-Params>"
		"</m:mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(doc, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	assert_string_equal(m.calling_user_id, KMF);
	mcinfo_clear(&m);
}

/* Prefixes differ per element, all bound to the same namespace URI. */
static void test_parse_mixed_prefixes_same_namespace(void **state)
{
	static const char doc[] =
		"<a:mcpttinfo xmlns:a=\"urn:3gpp:ns:mcpttInfo:1.0\">"
		"<mcptt-Params xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\">"
		"<b:mcptt-request-uri xmlns:b=\"urn:3gpp:ns:mcpttInfo:1.0\">"
		"<a:mcpttURI>" ALICE "</a:mcpttURI></b:mcptt-request-uri>"
		"</mcptt-Params></a:mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(doc, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	assert_null(m.calling_user_id);
	mcinfo_clear(&m);
}

static void test_parse_wrong_namespace_request_uri_is_missing(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\" xmlns:x=\"urn:example:other\">"
		"<mcptt-Params>"
		"<x:mcptt-request-uri><x:mcpttURI>" ALICE "</x:mcpttURI></x:mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_MISSING_REQUEST_URI);
}

static void test_parse_wrong_namespace_uri_element_is_missing(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\">"
		"<mcptt-Params><mcptt-request-uri>"
		"<mcpttURI xmlns=\"urn:3gpp:ns:mcpttInfo:2.0\">" ALICE "</mcpttURI>"
		"</mcptt-request-uri></mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_MISSING_REQUEST_URI);
}

static void test_parse_wrong_root_namespace(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:2.0\">"
		"<mcptt-Params><mcptt-request-uri><mcpttURI>" ALICE
		"</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_WRONG_ROOT);
}

static void test_parse_no_namespace_is_wrong_root(void **state)
{
	static const char doc[] =
		"<mcpttinfo><mcptt-Params><mcptt-request-uri><mcpttURI>" ALICE
		"</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_WRONG_ROOT);
}

static void test_parse_wrong_root_name(void **state)
{
	static const char doc[] =
		"<mcptt-Params xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\">"
		"<mcptt-request-uri><mcpttURI>" ALICE
		"</mcpttURI></mcptt-request-uri></mcptt-Params>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_WRONG_ROOT);
}

static void test_parse_undeclared_prefix_is_malformed(void **state)
{
	static const char doc[] =
		"<m:mcpttinfo><m:mcptt-Params><m:mcptt-request-uri><m:mcpttURI>" ALICE
		"</m:mcpttURI></m:mcptt-request-uri></m:mcptt-Params></m:mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_MALFORMED_XML);
}

static void test_parse_unknown_elements_and_attributes_ignored(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>"
		"<!-- a comment --><?some-pi data?>"
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\" xmlns:o=\"urn:example:other\" o:attr=\"1\" extra=\"x\">"
		"<mcptt-Params foo=\"bar\">"
		"<mcptt-calling-group-id><mcpttURI>sip:group@example.org</mcpttURI></mcptt-calling-group-id>"
		"<o:mcptt-request-uri><o:mcpttURI>sip:decoy@example.org</o:mcpttURI></o:mcptt-request-uri>"
		"<unknown-thing><deep><mcpttURI>sip:nested@example.org</mcpttURI></deep></unknown-thing>"
		"<mcptt-request-uri type=\"Normal\" future=\"yes\">"
		"<o:note>ignored</o:note><mcpttString>s</mcpttString>"
		"<mcpttURI o:x=\"y\">" ALICE "</mcpttURI>"
		"<anything-else/>"
		"</mcptt-request-uri>"
		"<o:between>text</o:between>"
		"<mcptt-calling-user-id><mcpttURI>" KMF "</mcpttURI></mcptt-calling-user-id>"
		"<anyExt><o:ext/></anyExt>"
		"</mcptt-Params>"
		"<mcptt-Params-ext/><o:mcptt-Params><mcptt-request-uri><mcpttURI>sip:x@y</mcpttURI>"
		"</mcptt-request-uri></o:mcptt-Params>"
		"</mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(doc, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	assert_string_equal(m.calling_user_id, KMF);
	mcinfo_clear(&m);
}

static void test_parse_calling_user_id_optional(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>" ALICE "</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(doc, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	assert_null(m.calling_user_id);
	mcinfo_clear(&m);
}

static void test_parse_whitespace_trimmed(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>\n\t  " ALICE " \r\n</mcpttURI></mcptt-request-uri>"
		"<mcptt-calling-user-id><mcpttURI>   <![CDATA[" KMF "]]>\n</mcpttURI></mcptt-calling-user-id>"
		"</mcptt-Params></mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(doc, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	assert_string_equal(m.calling_user_id, KMF);
	mcinfo_clear(&m);
}

static void test_parse_escaped_characters_unescaped(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:a&amp;b&lt;c&gt;&#x64;@example.org</mcpttURI>"
		"</mcptt-request-uri></mcptt-Params></mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(doc, &m), 0);
	assert_string_equal(m.request_uri, "sip:a&b<c>d@example.org");
	mcinfo_clear(&m);
}

static void test_parse_utf8_bom_accepted(void **state)
{
	struct mcinfo m = { NULL, NULL };
	char doc[sizeof(doc_default_ns) + 3] = "\xef\xbb\xbf";

	(void) state;

	memcpy(doc + 3, doc_default_ns, sizeof(doc_default_ns));
	assert_int_equal(parse_str(doc, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	mcinfo_clear(&m);
}

static void test_parse_declared_encoding_ignored_as_utf8(void **state)
{
	/* Read as UTF-8 whatever is declared: ASCII passes, Latin-1 does not. */
	static const char ascii[] =
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>" ALICE "</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";
	static const char latin1[] =
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:j\xfcrgen@example.org</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(parse_str(ascii, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	mcinfo_clear(&m);

	assert_parse_fails(latin1, MCINFO_ERR_MALFORMED_XML);
}

static void test_parse_missing_params(void **state)
{
	(void) state;

	assert_parse_fails("<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"/>",
			   MCINFO_ERR_MISSING_REQUEST_URI);
}

static void test_parse_missing_request_uri(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-calling-user-id><mcpttURI>" KMF "</mcpttURI></mcptt-calling-user-id>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_MISSING_REQUEST_URI);
}

static void test_parse_request_uri_without_mcptturi_is_missing(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttString>" ALICE "</mcpttString></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_MISSING_REQUEST_URI);
}

static void test_parse_empty_uri_rejected(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>  \n </mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_BAD_URI);
}

static void test_parse_uri_with_inner_whitespace_rejected(void **state)
{
	/* A CR LF inside would let a URI inject SIP header lines later. */
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:alice@mc.example.org&#13;&#10;Via: x</mcpttURI>"
		"</mcptt-request-uri></mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_BAD_URI);
}

static void test_parse_uri_without_scheme_rejected(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>alice@mc.example.org</mcpttURI>"
		"</mcptt-request-uri></mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_BAD_URI);
}

static void test_parse_bad_calling_user_id_rejected(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>" ALICE "</mcpttURI></mcptt-request-uri>"
		"<mcptt-calling-user-id><mcpttURI></mcpttURI></mcptt-calling-user-id>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_BAD_URI);
}

static void test_parse_uri_at_max_length_accepted(void **state)
{
	static const char head[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:";
	static const char tail[] =
		"</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>";
	char doc[sizeof(head) + MCINFO_MAX_URI + sizeof(tail)];
	struct mcinfo m = { NULL, NULL };
	size_t fill = MCINFO_MAX_URI - 4;

	(void) state;

	memcpy(doc, head, sizeof(head) - 1);
	memset(doc + sizeof(head) - 1, 'a', fill);
	memcpy(doc + sizeof(head) - 1 + fill, tail, sizeof(tail));

	assert_int_equal(parse_str(doc, &m), 0);
	assert_int_equal(strlen(m.request_uri), MCINFO_MAX_URI);
	mcinfo_clear(&m);
}

static void test_parse_uri_over_max_length_rejected(void **state)
{
	static const char head[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:";
	static const char tail[] =
		"</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>";
	char doc[sizeof(head) + MCINFO_MAX_URI + sizeof(tail)];
	size_t fill = MCINFO_MAX_URI - 3;

	(void) state;

	memcpy(doc, head, sizeof(head) - 1);
	memset(doc + sizeof(head) - 1, 'a', fill);
	memcpy(doc + sizeof(head) - 1 + fill, tail, sizeof(tail));

	assert_parse_fails(doc, MCINFO_ERR_BAD_URI);
}

static void test_parse_duplicate_request_uri_rejected(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>" ALICE "</mcpttURI></mcptt-request-uri>"
		"<mcptt-request-uri><mcpttURI>sip:mallory@example.org</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_DUPLICATE_ELEMENT);
}

static void test_parse_malformed_xml(void **state)
{
	(void) state;

	assert_parse_fails("<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>",
			   MCINFO_ERR_MALFORMED_XML);
	assert_parse_fails("<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"></mcptt-Params>",
			   MCINFO_ERR_MALFORMED_XML);
	assert_parse_fails("not xml at all", MCINFO_ERR_MALFORMED_XML);
	assert_parse_fails("<a>&undefined;</a>", MCINFO_ERR_MALFORMED_XML);
	assert_parse_fails("<a/><b/>", MCINFO_ERR_MALFORMED_XML);
}

static void test_parse_embedded_nul_is_malformed(void **state)
{
	static const char doc[] =
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:a\0b@example.org</mcpttURI>"
		"</mcptt-request-uri></mcptt-Params></mcpttinfo>";
	struct mcinfo m = { NULL, NULL };

	(void) state;

	assert_int_equal(mcinfo_parse((const uint8_t *) doc, sizeof(doc) - 1, &m),
			 MCINFO_ERR_MALFORMED_XML);
	assert_null(m.request_uri);
}

static void test_parse_empty_buffer(void **state)
{
	struct mcinfo m = { NULL, NULL };
	uint8_t byte = '<';

	(void) state;

	assert_int_equal(mcinfo_parse(&byte, 0, &m), MCINFO_ERR_MALFORMED_XML);
	assert_int_equal(mcinfo_parse(NULL, 0, &m), MCINFO_ERR_MALFORMED_XML);
	assert_null(m.request_uri);
}

static void test_parse_oversize_doc_rejected(void **state)
{
	struct mcinfo m = { NULL, NULL };
	size_t len = MCINFO_MAX_DOC + 1;
	size_t pad = len - (sizeof(doc_default_ns) - 1);
	uint8_t *buf = malloc(len);

	(void) state;

	assert_non_null(buf);
	/* A valid document padded with trailing whitespace, one byte over. */
	memcpy(buf, doc_default_ns, sizeof(doc_default_ns) - 1);
	memset(buf + sizeof(doc_default_ns) - 1, ' ', pad);

	assert_int_equal(mcinfo_parse(buf, len, &m), MCINFO_ERR_TOO_LARGE);
	assert_null(m.request_uri);

	/* The same at exactly the limit is accepted. */
	assert_int_equal(mcinfo_parse(buf, len - 1, &m), 0);
	assert_string_equal(m.request_uri, ALICE);
	mcinfo_clear(&m);
	free(buf);
}

static void test_parse_doctype_rejected(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE mcpttinfo>\n"
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>" ALICE "</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_DTD_FORBIDDEN);
}

static void test_parse_billion_laughs_rejected(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE lolz [\n"
		" <!ENTITY lol \"lol\">\n"
		" <!ELEMENT lolz (#PCDATA)>\n"
		" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
		" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		" <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
		" <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
		" <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
		" <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
		" <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
		" <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
		"]>\n"
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:&lol9;@example.org</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";

	(void) state;

	assert_parse_fails(doc, MCINFO_ERR_DTD_FORBIDDEN);
}

static int entity_loads;

static xmlParserInputPtr counting_entity_loader(const char *url, const char *id,
						xmlParserCtxtPtr ctxt)
{
	(void) url;
	(void) id;
	(void) ctxt;

	entity_loads++;
	return NULL;
}

static void test_parse_external_entity_rejected_not_read(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE mcpttinfo [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n"
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>sip:&xxe;@example.org</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";
	static const char doc_external_dtd[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE mcpttinfo SYSTEM \"file:///etc/passwd\">\n"
		"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"
		"<mcptt-request-uri><mcpttURI>" ALICE "</mcpttURI></mcptt-request-uri>"
		"</mcptt-Params></mcpttinfo>";
	xmlExternalEntityLoader saved = xmlGetExternalEntityLoader();

	(void) state;

	entity_loads = 0;
	xmlSetExternalEntityLoader(counting_entity_loader);

	assert_parse_fails(doc, MCINFO_ERR_DTD_FORBIDDEN);
	assert_parse_fails(doc_external_dtd, MCINFO_ERR_DTD_FORBIDDEN);

	xmlSetExternalEntityLoader(saved);
	assert_int_equal(entity_loads, 0);
}

static void test_parse_errors_are_silent(void **state)
{
	static const char *const docs[] = {
		"<mcpttinfo", "not xml", "<a>&undefined;</a>", "<m:a/>",
		"<a xmlns=\"relative\"/>", "<?xml version=\"9\" encoding=\"bogus\"?><a/>",
		"<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x.dtd\"><a/>",
		"<a>\xff\xfe</a>", "<a b=\"1\" b=\"2\"/>",
		/* Charset converter errors bypass the context's handler. */
		"<?xml version=\"1.0\" encoding=\"SHIFT_JIS\"?><a>\x81\xff\xff</a>",
		"<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>",
		"\xfe\xff<a/>",
	};
	FILE *capture = tmpfile();
	int saved_fd;
	size_t i;

	(void) state;

	assert_non_null(capture);
	fflush(stderr);
	saved_fd = dup(STDERR_FILENO);
	assert_true(saved_fd >= 0);
	assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct mcinfo m = { NULL, NULL };

		assert_true(parse_str(docs[i], &m) < 0);
	}

	fflush(stderr);
	assert_true(dup2(saved_fd, STDERR_FILENO) >= 0);
	close(saved_fd);

	assert_int_equal(fseek(capture, 0, SEEK_END), 0);
	assert_int_equal(ftell(capture), 0);
	fclose(capture);
}

static void test_parse_repeated_calls_release_memory(void **state)
{
	int i;

	(void) state;

	/* LeakSanitizer reports at exit if any path keeps memory. */
	for (i = 0; i < 200; i++) {
		struct mcinfo m = { NULL, NULL };

		assert_int_equal(parse_str(doc_default_ns, &m), 0);
		mcinfo_clear(&m);
		assert_parse_fails("<mcpttinfo", MCINFO_ERR_MALFORMED_XML);
		assert_parse_fails("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
				   MCINFO_ERR_DTD_FORBIDDEN);
	}
}

static void test_build_parse_round_trip(void **state)
{
	struct mcinfo in = {
		.request_uri = (char *) ALICE,
		.calling_user_id = (char *) KMF,
	};
	struct mcinfo out = { NULL, NULL };
	char *xml;
	size_t len;

	(void) state;

	assert_int_equal(mcinfo_build(&in, &xml, &len), 0);
	assert_int_equal(strlen(xml), len);
	assert_non_null(strstr(xml, "xmlns=\"" MCINFO_NS "\""));

	assert_int_equal(mcinfo_parse((const uint8_t *) xml, len, &out), 0);
	assert_string_equal(out.request_uri, ALICE);
	assert_string_equal(out.calling_user_id, KMF);

	mcinfo_clear(&out);
	free(xml);
}

static void test_build_escapes_markup_characters(void **state)
{
	static const char uri[] = "sip:a&b<c>d\"e'f@example.org;x=]]>";
	struct mcinfo in = {
		.request_uri = (char *) uri,
		.calling_user_id = (char *) "sips:<kmf>&amp;@iwf.example.org",
	};
	struct mcinfo out = { NULL, NULL };
	char *xml;
	size_t len;

	(void) state;

	assert_int_equal(mcinfo_build(&in, &xml, &len), 0);
	assert_non_null(strstr(xml, "sip:a&amp;b&lt;c&gt;d\"e'f@example.org;x=]]&gt;"));
	assert_null(strstr(xml, "<c>"));

	assert_int_equal(mcinfo_parse((const uint8_t *) xml, len, &out), 0);
	assert_string_equal(out.request_uri, uri);
	assert_string_equal(out.calling_user_id, "sips:<kmf>&amp;@iwf.example.org");

	mcinfo_clear(&out);
	free(xml);
}

static void test_build_without_calling_user_id(void **state)
{
	struct mcinfo in = { .request_uri = (char *) ALICE, .calling_user_id = NULL };
	struct mcinfo out = { NULL, NULL };
	char *xml;
	size_t len;

	(void) state;

	assert_int_equal(mcinfo_build(&in, &xml, &len), 0);
	assert_null(strstr(xml, "mcptt-calling-user-id"));

	assert_int_equal(mcinfo_parse((const uint8_t *) xml, len, &out), 0);
	assert_string_equal(out.request_uri, ALICE);
	assert_null(out.calling_user_id);

	mcinfo_clear(&out);
	free(xml);
}

static void test_build_max_length_uris_round_trip(void **state)
{
	/* Worst case for size: every character escaped to "&amp;". */
	char a[MCINFO_MAX_URI + 1], b[MCINFO_MAX_URI + 1];
	struct mcinfo in = { .request_uri = a, .calling_user_id = b };
	struct mcinfo out = { NULL, NULL };
	char *xml;
	size_t len;

	(void) state;

	memcpy(a, "sip:", 4);
	memset(a + 4, '&', MCINFO_MAX_URI - 4);
	a[MCINFO_MAX_URI] = '\0';
	memcpy(b, a, sizeof(b));

	assert_int_equal(mcinfo_build(&in, &xml, &len), 0);
	assert_true(len <= MCINFO_MAX_DOC);

	assert_int_equal(mcinfo_parse((const uint8_t *) xml, len, &out), 0);
	assert_string_equal(out.request_uri, a);
	assert_string_equal(out.calling_user_id, b);

	mcinfo_clear(&out);
	free(xml);
}

static void test_build_rejects_missing_or_bad_uri(void **state)
{
	struct mcinfo in = { NULL, NULL };
	char *xml = (char *) "untouched";
	size_t len = 1;

	(void) state;

	assert_int_equal(mcinfo_build(&in, &xml, &len), MCINFO_ERR_MISSING_REQUEST_URI);
	assert_null(xml);
	assert_int_equal(len, 0);

	in.request_uri = (char *) "sip:alice@example.org\r\nVia: x";
	assert_int_equal(mcinfo_build(&in, &xml, &len), MCINFO_ERR_BAD_URI);
	assert_null(xml);

	in.request_uri = (char *) ALICE;
	in.calling_user_id = (char *) "";
	assert_int_equal(mcinfo_build(&in, &xml, &len), MCINFO_ERR_BAD_URI);

	in.calling_user_id = (char *) "sip:\xc0\xafoverlong@example.org";
	assert_int_equal(mcinfo_build(&in, &xml, &len), MCINFO_ERR_BAD_URI);
	assert_null(xml);
}

static void test_build_accepts_utf8_uri(void **state)
{
	static const char uri[] = "sip:j\xc3\xbcrgen@example.org";
	struct mcinfo in = { .request_uri = (char *) uri, .calling_user_id = NULL };
	struct mcinfo out = { NULL, NULL };
	char *xml;
	size_t len;

	(void) state;

	assert_int_equal(mcinfo_build(&in, &xml, &len), 0);
	assert_int_equal(mcinfo_parse((const uint8_t *) xml, len, &out), 0);
	assert_string_equal(out.request_uri, uri);

	mcinfo_clear(&out);
	free(xml);
}

static const int all_errors[] = {
	MCINFO_ERR_TOO_LARGE,
	MCINFO_ERR_MALFORMED_XML,
	MCINFO_ERR_DTD_FORBIDDEN,
	MCINFO_ERR_WRONG_ROOT,
	MCINFO_ERR_MISSING_REQUEST_URI,
	MCINFO_ERR_BAD_URI,
	MCINFO_ERR_DUPLICATE_ELEMENT,
	MCINFO_ERR_NO_MEMORY,
};

#define N_ERRORS (sizeof(all_errors) / sizeof(all_errors[0]))

static void test_error_codes_distinct_and_negative(void **state)
{
	size_t i, j;

	(void) state;

	for (i = 0; i < N_ERRORS; i++) {
		assert_true(all_errors[i] < 0);

		for (j = i + 1; j < N_ERRORS; j++)
			assert_int_not_equal(all_errors[i], all_errors[j]);
	}
}

static void test_strerror_distinct_per_code(void **state)
{
	const char *unknown = mcinfo_strerror(-1000);
	size_t i, j;

	(void) state;

	for (i = 0; i < N_ERRORS; i++) {
		const char *s = mcinfo_strerror(all_errors[i]);

		assert_non_null(s);
		assert_non_null(strstr(s, "mcptt-info: "));
		/* Usable as a SIP reason phrase: one line. */
		assert_null(strpbrk(s, "\r\n"));
		assert_string_not_equal(s, unknown);

		for (j = i + 1; j < N_ERRORS; j++)
			assert_string_not_equal(s, mcinfo_strerror(all_errors[j]));
	}

	assert_string_equal(mcinfo_strerror(MCINFO_ERR_MISSING_REQUEST_URI),
			    "mcptt-info: missing mcptt-request-uri");
}

static void test_clear_leaves_zeroed(void **state)
{
	struct mcinfo m = { strdup(ALICE), strdup(KMF) };

	(void) state;

	mcinfo_clear(&m);
	assert_null(m.request_uri);
	assert_null(m.calling_user_id);
	mcinfo_clear(&m);
	mcinfo_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_default_namespace),
		cmocka_unit_test(test_parse_prefixed_namespace),
		cmocka_unit_test(test_parse_mixed_prefixes_same_namespace),
		cmocka_unit_test(test_parse_wrong_namespace_request_uri_is_missing),
		cmocka_unit_test(test_parse_wrong_namespace_uri_element_is_missing),
		cmocka_unit_test(test_parse_wrong_root_namespace),
		cmocka_unit_test(test_parse_no_namespace_is_wrong_root),
		cmocka_unit_test(test_parse_wrong_root_name),
		cmocka_unit_test(test_parse_undeclared_prefix_is_malformed),
		cmocka_unit_test(test_parse_unknown_elements_and_attributes_ignored),
		cmocka_unit_test(test_parse_calling_user_id_optional),
		cmocka_unit_test(test_parse_whitespace_trimmed),
		cmocka_unit_test(test_parse_escaped_characters_unescaped),
		cmocka_unit_test(test_parse_utf8_bom_accepted),
		cmocka_unit_test(test_parse_declared_encoding_ignored_as_utf8),
		cmocka_unit_test(test_parse_missing_params),
		cmocka_unit_test(test_parse_missing_request_uri),
		cmocka_unit_test(test_parse_request_uri_without_mcptturi_is_missing),
		cmocka_unit_test(test_parse_empty_uri_rejected),
		cmocka_unit_test(test_parse_uri_with_inner_whitespace_rejected),
		cmocka_unit_test(test_parse_uri_without_scheme_rejected),
		cmocka_unit_test(test_parse_bad_calling_user_id_rejected),
		cmocka_unit_test(test_parse_uri_at_max_length_accepted),
		cmocka_unit_test(test_parse_uri_over_max_length_rejected),
		cmocka_unit_test(test_parse_duplicate_request_uri_rejected),
		cmocka_unit_test(test_parse_malformed_xml),
		cmocka_unit_test(test_parse_embedded_nul_is_malformed),
		cmocka_unit_test(test_parse_empty_buffer),
		cmocka_unit_test(test_parse_oversize_doc_rejected),
		cmocka_unit_test(test_parse_doctype_rejected),
		cmocka_unit_test(test_parse_billion_laughs_rejected),
		cmocka_unit_test(test_parse_external_entity_rejected_not_read),
		cmocka_unit_test(test_parse_errors_are_silent),
		cmocka_unit_test(test_parse_repeated_calls_release_memory),
		cmocka_unit_test(test_build_parse_round_trip),
		cmocka_unit_test(test_build_escapes_markup_characters),
		cmocka_unit_test(test_build_without_calling_user_id),
		cmocka_unit_test(test_build_max_length_uris_round_trip),
		cmocka_unit_test(test_build_rejects_missing_or_bad_uri),
		cmocka_unit_test(test_build_accepts_utf8_uri),
		cmocka_unit_test(test_error_codes_distinct_and_negative),
		cmocka_unit_test(test_strerror_distinct_per_code),
		cmocka_unit_test(test_clear_leaves_zeroed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
