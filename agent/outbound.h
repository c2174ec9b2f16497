/*
 * outbound — a client-initiated send request becomes the SIP MESSAGE of
 * DESIGN §2: Request-URI, From, To, the fixed MCPTT headers, and the
 * multipart/mixed body (mcptt-info + interworking data).  Pure: the SIP
 * adapter only copies the result onto the wire.
 */
#ifndef LMRSEC_OUTBOUND_H
#define LMRSEC_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#define OUTBOUND_ACCEPT_CONTACT_MCPTT "*;+g.3gpp.mcptt;require;explicit"
#define OUTBOUND_ACCEPT_CONTACT_ICSI \
	"*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt\";require;explicit"
#define OUTBOUND_PREFERRED_SERVICE "urn:urn-7:3gpp-service.ims.icsi.mcptt"

struct outbound_params {
	const char *mc_service_id;      /* ours: From, calling user */
	const char *kmf_uri;            /* To, mcptt-request-uri, KMF URI IE */
	const char *participating_psi;  /* Request-URI when set, else kmf_uri */
	const char *lmr_type;
	const uint8_t *payload;
	size_t payload_len;
};

struct outbound_message {
	char *request_uri;
	char *from;
	char *to;
	char *content_type;             /* multipart/mixed;boundary=... */
	uint8_t *body;
	size_t body_len;
};

/* 0, or a negative errno with *error a static phrase (bad LMR type, payload
 * size, URI) suitable for the requester. */
int outbound_build(const struct outbound_params *p, struct outbound_message *out,
		   const char **error);
/* Wipes the body (it holds the payload) and frees everything. */
void outbound_message_clear(struct outbound_message *m);

#endif
