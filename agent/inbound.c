/*
 * inbound — validation of an IWF-originated MESSAGE (see inbound.h).
 */
#include <stdarg.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "inbound.h"
#include "iwdata.h"
#include "mcinfo.h"
#include "multipart.h"
#include "sha256.h"

struct uri_parts {
	const char *scheme, *user, *host;
	size_t scheme_len, user_len, host_len;
};

static void verdict_set(struct inbound_verdict *v, unsigned status,
			const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void verdict_set(struct inbound_verdict *v, unsigned status,
			const char *fmt, ...)
{
	va_list ap;

	v->status = status;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

static int uri_split(const char *uri, struct uri_parts *p)
{
	const char *s = uri, *colon, *end, *at;

	while (*s == ' ' || *s == '\t' || *s == '<')
		s++;
	colon = strchr(s, ':');
	if (!colon || colon == s)
		return -EINVAL;
	end = colon + 1 + strcspn(colon + 1, ";?> \t");
	at = memchr(colon + 1, '@', (size_t)(end - colon - 1));
	p->scheme = s;
	p->scheme_len = (size_t)(colon - s);
	p->user = at ? colon + 1 : "";
	p->user_len = at ? (size_t)(at - colon - 1) : 0;
	p->host = at ? at + 1 : colon + 1;
	p->host_len = (size_t)(end - p->host);
	return p->host_len ? 0 : -EINVAL;
}

int inbound_same_uri(const char *a, const char *b)
{
	struct uri_parts pa, pb;

	if (!a || !b || uri_split(a, &pa) < 0 || uri_split(b, &pb) < 0)
		return 0;
	return pa.scheme_len == pb.scheme_len &&
	       !g_ascii_strncasecmp(pa.scheme, pb.scheme, pa.scheme_len) &&
	       pa.user_len == pb.user_len &&
	       !memcmp(pa.user, pb.user, pa.user_len) &&
	       pa.host_len == pb.host_len &&
	       !g_ascii_strncasecmp(pa.host, pb.host, pa.host_len);
}

static bool uri_in_list(const char *uri, const char *const *list)
{
	for (; list && *list; list++)
		if (inbound_same_uri(uri, *list))
			return true;
	return false;
}

/* "multipart/mixed" with optional parameters, any case. */
static bool is_multipart_mixed(const char *content_type)
{
	const char *s = content_type;
	size_t n = strlen(INBOUND_ACCEPT);

	if (!s)
		return false;
	while (*s == ' ' || *s == '\t')
		s++;
	if (g_ascii_strncasecmp(s, INBOUND_ACCEPT, n))
		return false;
	s += n;
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0' || *s == ';';
}

static char *field_strdup(const struct iwdata_field *f)
{
	return f->len ? g_strndup((const char *)f->ptr, f->len) : NULL;
}

/* The body's two parts, or a 400 naming what is wrong. */
static int split_body(const struct inbound_request *req, struct multipart *mp,
		      struct inbound_verdict *v)
{
	char *boundary = NULL;
	int r;

	r = multipart_boundary_from_content_type(req->content_type, &boundary);
	if (r == 0)
		r = multipart_split(boundary, req->body, req->body_len, mp);
	free(boundary);
	if (r == MULTIPART_ERR_TOO_LARGE) {
		verdict_set(v, 413, "Request Entity Too Large (%s)", multipart_strerror(r));
		return -EMSGSIZE;
	}
	if (r < 0) {
		verdict_set(v, 400, "Bad Request (%s)", multipart_strerror(r));
		return -EBADMSG;
	}
	return 0;
}

static int check_mcinfo(const struct inbound_policy *policy,
			const struct multipart *mp, struct inbound_verdict *v)
{
	const struct multipart_part *part = multipart_find(mp, INBOUND_MCINFO_TYPE);
	struct mcinfo info = { 0 };
	int r;

	if (!part) {
		verdict_set(v, 400, "Bad Request (missing mcptt-info part)");
		return -EBADMSG;
	}
	r = mcinfo_parse(part->body, part->len, &info);
	if (r < 0) {
		verdict_set(v, 400, "Bad Request (%s)", mcinfo_strerror(r));
		return -EBADMSG;
	}
	r = inbound_same_uri(info.request_uri, policy->mc_service_id);
	mcinfo_clear(&info);
	if (!r) {
		verdict_set(v, 404, "Not Found (mcptt-request-uri is not this MC service ID)");
		return -ENOENT;
	}
	return 0;
}

static int decode_iwdata(const struct multipart *mp, struct iwdata_msg *msg,
			 struct inbound_verdict *v)
{
	const struct multipart_part *part = multipart_find(mp, INBOUND_IWDATA_TYPE);
	int r;

	if (!part) {
		verdict_set(v, 400, "Bad Request (missing interworking-data part)");
		return -EBADMSG;
	}
	r = iwdata_decode(part->body, part->len, IWDATA_REQUIRE_LMR_TYPE, msg);
	if (r < 0) {
		verdict_set(v, 400, "Bad Request (%s)", iwdata_strerror(r));
		return -EBADMSG;
	}
	return 0;
}

/* 404 for a foreign MC service ID IE, 403 for an untrusted sender or KMF. */
static int check_identities(const struct inbound_policy *policy,
			    const struct inbound_request *req,
			    const struct iwdata_msg *msg, struct inbound_verdict *v)
{
	g_autofree char *kmf = field_strdup(&msg->kmf_uri);
	g_autofree char *mcid = field_strdup(&msg->mc_service_id);

	if (mcid && !inbound_same_uri(mcid, policy->mc_service_id)) {
		verdict_set(v, 404, "Not Found (MC service ID is not this device's)");
		return -ENOENT;
	}
	if (!req->sender || !uri_in_list(req->sender, policy->trusted_senders)) {
		verdict_set(v, 403, "Forbidden (sender is not a trusted sender)");
		return -EPERM;
	}
	if (!uri_in_list(kmf, policy->kmf_uris)) {
		verdict_set(v, 403, "Forbidden (LMR security entity is not a configured KMF)");
		return -EPERM;
	}
	return 0;
}

static void record_fill(const struct inbound_policy *policy,
			const struct inbound_request *req,
			const struct iwdata_msg *msg, struct spool_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->received_us = req->received_us;
	rec->lmr_type = field_strdup(&msg->lmr_type);
	rec->kmf_uri = field_strdup(&msg->kmf_uri);
	rec->mc_service_id = msg->mc_service_id.len ? field_strdup(&msg->mc_service_id)
						    : g_strdup(policy->mc_service_id);
	rec->sender = g_strdup(req->sender);
	rec->dedupe_key = g_strdup(req->dedupe_key);
	rec->payload = g_memdup2(msg->payload.ptr, msg->payload.len);
	rec->payload_len = msg->payload.len;
	/* Not GChecksum: it frees its state, payload bytes included, unwiped. */
	sha256_digest(rec->payload, rec->payload_len, rec->fingerprint);
}

int inbound_check(const struct inbound_policy *policy,
		  const struct inbound_request *req,
		  struct inbound_verdict *v, struct spool_record *rec)
{
	struct multipart mp = { 0 };
	struct iwdata_msg msg;
	int r;

	if (!is_multipart_mixed(req->content_type)) {
		verdict_set(v, 415, "Unsupported Media Type");
		return -EPROTONOSUPPORT;
	}
	if (req->body_len > policy->max_body) {
		verdict_set(v, 413, "Request Entity Too Large (body over %zu bytes)",
			    policy->max_body);
		return -EMSGSIZE;
	}
	r = split_body(req, &mp, v);
	if (r == 0)
		r = decode_iwdata(&mp, &msg, v);
	if (r == 0)
		r = check_mcinfo(policy, &mp, v);
	if (r == 0 && msg.payload.len > policy->max_payload) {
		verdict_set(v, 413, "Request Entity Too Large (payload over %zu bytes)",
			    policy->max_payload);
		r = -EMSGSIZE;
	}
	if (r == 0)
		r = check_identities(policy, req, &msg, v);
	if (r == 0) {
		record_fill(policy, req, &msg, rec);
		verdict_set(v, 200, "OK");
	}
	multipart_clear(&mp);
	return r;
}
