/*
 * outbound — building a client-initiated MESSAGE (see outbound.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "iwdata.h"
#include "mcinfo.h"
#include "multipart.h"
#include "outbound.h"

/* The interworking-data part: LMR type, KMF URI, our MC service ID, payload. */
static int encode_iwdata(const struct outbound_params *p, uint8_t **out,
			 size_t *len, const char **error)
{
	struct iwdata_msg msg = {
		.lmr_type = { (const uint8_t *)p->lmr_type, strlen(p->lmr_type) },
		.kmf_uri = { (const uint8_t *)p->kmf_uri, strlen(p->kmf_uri) },
		.mc_service_id = { (const uint8_t *)p->mc_service_id,
				   strlen(p->mc_service_id) },
		.payload = { p->payload, p->payload_len },
	};
	size_t cap = iwdata_encoded_size(&msg);
	uint8_t *buf = malloc(cap ? cap : 1);
	int r;

	if (!buf)
		return -ENOMEM;
	r = iwdata_encode(&msg, buf, cap, len);
	if (r < 0) {
		explicit_bzero(buf, cap);
		free(buf);
		*error = iwdata_strerror(r);
		return -EINVAL;
	}
	*out = buf;
	return 0;
}

static int assemble(const struct outbound_params *p, struct outbound_message *out,
		    const char **error)
{
	struct mcinfo info = {
		.request_uri = (char *)p->kmf_uri,
		.calling_user_id = (char *)p->mc_service_id,
	};
	struct multipart_part parts[2] = {
		{ .content_type = (char *)"application/vnd.3gpp.mcptt-info+xml" },
		{ .content_type = (char *)"application/vnd.3gpp.interworking-data" },
	};
	char *xml = NULL, *boundary = NULL;
	size_t xml_len = 0;
	int r;

	r = mcinfo_build(&info, &xml, &xml_len);
	if (r < 0) {
		*error = mcinfo_strerror(r);
		return -EINVAL;
	}
	r = encode_iwdata(p, &parts[1].body, &parts[1].len, error);
	if (r == 0) {
		parts[0].body = (uint8_t *)xml;
		parts[0].len = xml_len;
		r = multipart_build(parts, 2, &out->body, &out->body_len, &boundary);
		if (r < 0) {
			*error = multipart_strerror(r);
			r = -EINVAL;
		}
		explicit_bzero(parts[1].body, parts[1].len);
		free(parts[1].body);
	}
	free(xml);
	if (r == 0)
		out->content_type = g_strdup_printf("multipart/mixed;boundary=\"%s\"", boundary);
	free(boundary);
	return r;
}

int outbound_build(const struct outbound_params *p, struct outbound_message *out,
		   const char **error)
{
	int r;

	memset(out, 0, sizeof(*out));
	*error = NULL;
	if (!p->kmf_uri || !p->mc_service_id || !p->lmr_type) {
		*error = "no KMF URI, MC service ID or LMR type";
		return -EINVAL;
	}
	r = assemble(p, out, error);
	if (r < 0)
		return r;
	out->request_uri = g_strdup(p->participating_psi ? p->participating_psi : p->kmf_uri);
	out->from = g_strdup(p->mc_service_id);
	out->to = g_strdup(p->kmf_uri);
	return 0;
}

void outbound_message_clear(struct outbound_message *m)
{
	if (m->body)
		explicit_bzero(m->body, m->body_len);
	free(m->body);
	g_free(m->request_uri);
	g_free(m->from);
	g_free(m->to);
	g_free(m->content_type);
	memset(m, 0, sizeof(*m));
}
