/*
 * inbound — an IWF-originated MESSAGE (headers + body bytes) becomes either a
 * record to spool or the exact SIP answer of DESIGN §2.  Pure: no I/O, no
 * sofia-sip, no main loop; the SIP adapter hands in plain strings and bytes.
 *
 * Checks run in the order the design fixes, first failure wins:
 *   415 Content-Type is not multipart/mixed (the answer carries Accept)
 *   413 body (or payload) larger than the configured maximum
 *   400 malformed multipart, missing part, malformed XML or interworking data,
 *       missing mandatory IE (the reason phrase says which)
 *   404 mcptt-request-uri (or the MC service ID IE) is not our MC service ID
 *   403 sender not trusted, or KMF URI not a configured KMF
 */
#ifndef LMRSEC_INBOUND_H
#define LMRSEC_INBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

#define INBOUND_ACCEPT "multipart/mixed"
#define INBOUND_MCINFO_TYPE "application/vnd.3gpp.mcptt-info+xml"
#define INBOUND_IWDATA_TYPE "application/vnd.3gpp.interworking-data"
#define INBOUND_REASON_MAX 128

struct inbound_policy {
	const char *mc_service_id;          /* ours */
	const char *const *kmf_uris;        /* NULL-terminated */
	const char *const *trusted_senders; /* NULL-terminated */
	size_t max_body;
	size_t max_payload;
};

struct inbound_request {
	const char *content_type;   /* full header value; NULL when absent */
	const uint8_t *body;
	size_t body_len;
	const char *sender;         /* URI of P-Asserted-Identity or From */
	const char *dedupe_key;     /* Call-ID, CSeq and From tag */
	int64_t received_us;
};

struct inbound_verdict {
	unsigned status;            /* 200 when accepted */
	char reason[INBOUND_REASON_MAX];
};

/* Returns 0 and fills rec (owned by the caller: spool_record_clear) when the
 * message is accepted; otherwise a negative errno with verdict set to the
 * answer.  verdict is always set (200 "OK" on acceptance). */
int inbound_check(const struct inbound_policy *policy,
		  const struct inbound_request *req,
		  struct inbound_verdict *verdict, struct spool_record *rec);

/* True when two SIP URIs name the same identity: scheme and host compared
 * without case, user part exactly, port as written; URI parameters, headers
 * and surrounding <> ignored. */
int inbound_same_uri(const char *a, const char *b);

#endif
