/*
 * sip — the SIP adapter (see sip.h).  Nothing else in the agent includes
 * sofia-sip; what crosses this file's edges is plain C (inbound_request,
 * spool_record, broker calls).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

struct sip;
struct sip_op;
#define SU_ROOT_MAGIC_T struct sip
#define NUA_MAGIC_T struct sip
#define NUA_HMAGIC_T struct sip_op

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/url.h>

#include "inbound.h"
#include "outbound.h"
#include "sip.h"

#define SIP_FEATURES "+g.3gpp.mcptt;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt\""
#define SIP_MCPTT_HEADERS                                       \
	"Accept-Contact: " OUTBOUND_ACCEPT_CONTACT_MCPTT "\r\n" \
	"Accept-Contact: " OUTBOUND_ACCEPT_CONTACT_ICSI "\r\n"  \
	"P-Preferred-Service: " OUTBOUND_PREFERRED_SERVICE
#define SIP_UNREGISTER_WAIT_MS 3000
#define SIP_SHUTDOWN_WAIT_MS 5000
/* sofia-sip reports its own failures (no transport, no matching challenge)
 * with status codes from 900 up. */
#define SIP_INTERNAL_STATUS 900

enum sip_op_kind {
	SIP_OP_REGISTER,
	SIP_OP_SEND,
};

struct sip_op {
	enum sip_op_kind kind;
	struct sip *sip;
	nua_handle_t *nh;
	bool auth_tried;
	broker_send_done_fn done;  /* SIP_OP_SEND */
	void *done_ctx;
};

struct sip_incoming {
	struct sip *sip;
	nua_handle_t *nh;
	nua_saved_event_t saved[1];
};

struct sip {
	const struct lmrsec_config *cfg;
	struct broker *broker;
	su_home_t home[1];
	su_root_t *root;
	nua_t *nua;
	char *password;
	char *features;                 /* Contact feature tags */
	const char *const *kmf_uris;
	struct inbound_policy policy;

	struct sip_op reg;              /* the registration */
	struct broker_registration reg_state;
	char *reg_reason;
	unsigned backoff_s;
	guint retry_timer;

	bool stopping;
	guint stop_timer;
	sip_stopped_fn stopped;
	void *stopped_ctx;
};

/* --- registration --- */

static void reg_publish(struct sip *s, enum broker_reg_state state,
			unsigned status, const char *reason)
{
	s->reg_state.state = state;
	if (status) {
		s->reg_state.last_status = status;
		g_free(s->reg_reason);
		s->reg_reason = g_strdup(reason);
		s->reg_state.last_reason = s->reg_reason;
	}
	broker_set_registration(s->broker, &s->reg_state);
}

static void reg_send(struct sip *s);

static gboolean on_reg_retry(gpointer data)
{
	struct sip *s = data;

	s->retry_timer = 0;
	s->reg_state.next_retry_us = 0;
	reg_send(s);
	return G_SOURCE_REMOVE;
}

/* Exponential backoff with jitter, at least Retry-After when the server
 * gave one. */
static void reg_schedule_retry(struct sip *s, unsigned retry_after_s)
{
	unsigned lo = s->cfg->registration.retry_min, hi = s->cfg->registration.retry_max;
	guint delay_ms;

	s->backoff_s = s->backoff_s ? MIN(s->backoff_s * 2, hi) : lo;
	delay_ms = (guint)(s->backoff_s * 1000 * g_random_double_range(0.75, 1.0));
	if (retry_after_s * 1000 > delay_ms)
		delay_ms = MIN(retry_after_s, hi) * 1000;
	s->reg_state.next_retry_us = g_get_real_time() + (int64_t)delay_ms * 1000;
	if (s->retry_timer)
		g_source_remove(s->retry_timer);
	s->retry_timer = g_timeout_add(delay_ms, on_reg_retry, s);
	g_message("registration: next attempt in %.1f s", delay_ms / 1000.0);
}

static void reg_send(struct sip *s)
{
	char expires[16];

	if (s->reg.nh)
		nua_handle_destroy(s->reg.nh);
	s->reg.auth_tried = false;
	s->reg.nh = nua_handle(s->nua, &s->reg,
			       SIPTAG_TO_STR(s->reg_state.aor),
			       SIPTAG_FROM_STR(s->reg_state.aor), TAG_END());
	snprintf(expires, sizeof(expires), "%u", s->cfg->server.expires);
	nua_register(s->reg.nh,
		     NUTAG_REGISTRAR(URL_STRING_MAKE(s->cfg->server.registrar)),
		     NUTAG_M_FEATURES(s->features),
		     NUTAG_OUTBOUND("no-validate"),
		     SIPTAG_EXPIRES_STR(expires), TAG_END());
	reg_publish(s, BROKER_REG_REGISTERING, 0, NULL);
}

static unsigned retry_after_of(sip_t const *sip)
{
	return sip && sip->sip_retry_after ? (unsigned)sip->sip_retry_after->af_delta : 0;
}

static unsigned granted_expires(const struct sip *s, sip_t const *sip)
{
	if (sip && sip->sip_contact && sip->sip_contact->m_expires)
		return (unsigned)strtoul(sip->sip_contact->m_expires, NULL, 10);
	if (sip && sip->sip_expires)
		return (unsigned)sip->sip_expires->ex_delta;
	return s->cfg->server.expires;
}

/* Answers a 401/407 with the configured credentials; false when we may not
 * (already tried once for this request, or the realm is not ours). */
static bool authenticate(struct sip *s, struct sip_op *op, sip_t const *sip)
{
	msg_auth_t const *au = sip->sip_www_authenticate ? sip->sip_www_authenticate
							 : sip->sip_proxy_authenticate;
	const char *realm;
	char *cred;

	if (op->auth_tried || !au || !au->au_scheme)
		return false;
	realm = msg_params_find(au->au_params, "realm=");
	if (!realm)
		return false;
	if (s->cfg->auth.realm) {
		g_autofree char *quoted = g_strdup_printf("\"%s\"", s->cfg->auth.realm);

		if (strcmp(realm, quoted) && strcmp(realm, s->cfg->auth.realm)) {
			g_warning("SIP: challenge for realm %s, configured realm is %s",
				  realm, s->cfg->auth.realm);
			return false;
		}
	}
	op->auth_tried = true;
	g_debug("SIP: challenged for realm %s, answering as %s", realm, s->cfg->auth.username);
	cred = g_strdup_printf("%s:%s:%s:%s", au->au_scheme, realm,
			       s->cfg->auth.username, s->password);
	nua_authenticate(op->nh, NUTAG_AUTH(cred), TAG_END());
	explicit_bzero(cred, strlen(cred));
	g_free(cred);
	return true;
}

static void on_register(struct sip *s, int status, char const *phrase, sip_t const *sip)
{
	if (status < 200 || s->stopping)
		return;
	if (status < 300) {
		s->backoff_s = 0;
		s->reg_state.expires_at_us = g_get_real_time() +
			(int64_t)granted_expires(s, sip) * G_USEC_PER_SEC;
		reg_publish(s, BROKER_REG_REGISTERED, (unsigned)status, phrase);
		return;
	}
	if ((status == 401 || status == 407) && authenticate(s, &s->reg, sip)) {
		s->reg_state.last_status = (unsigned)status;
		return;
	}
	s->reg_state.expires_at_us = 0;
	if (status >= SIP_INTERNAL_STATUS && s->reg.auth_tried)
		/* sofia's "no matching challenge": the server refused our credentials */
		reg_publish(s, BROKER_REG_FAILED, s->reg_state.last_status,
			    "Unauthorized (credentials refused)");
	else
		reg_publish(s, BROKER_REG_FAILED, (unsigned)status, phrase);
	g_warning("registration failed: %d %s", status, phrase);
	reg_schedule_retry(s, retry_after_of(sip));
}

/* --- incoming MESSAGE --- */

static void answer_incoming(void *ctx, unsigned status, const char *reason,
			    unsigned retry_after_s)
{
	struct sip_incoming *in = ctx;
	char retry[16];

	snprintf(retry, sizeof(retry), "%u", retry_after_s);
	nua_respond(in->nh, (int)status, reason, NUTAG_WITH_SAVED(in->saved),
		    TAG_IF(retry_after_s, SIPTAG_RETRY_AFTER_STR(retry)),
		    TAG_IF(status == 415, SIPTAG_ACCEPT_STR(INBOUND_ACCEPT)),
		    TAG_END());
	nua_destroy_event(in->saved);
	nua_handle_destroy(in->nh);
	g_free(in);
}

/* The sender's URI: P-Asserted-Identity when present (unless configured
 * otherwise), else From. */
static char *sender_of(const struct sip *s, su_home_t *home, sip_t const *sip)
{
	if (s->cfg->lmr.sender_identity == CONFIG_SENDER_IDENTITY_P_ASSERTED_IDENTITY) {
		for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next) {
			const char *v = u->un_value, *lt;

			if (!u->un_name || g_ascii_strcasecmp(u->un_name, "P-Asserted-Identity"))
				continue;
			lt = strchr(v, '<');
			if (lt)
				return g_strndup(lt + 1, strcspn(lt + 1, ">"));
			return g_strndup(v, strcspn(v, ";, \t"));
		}
	}
	return sip->sip_from ? g_strdup(url_as_string(home, sip->sip_from->a_url)) : NULL;
}

static char *dedupe_key_of(sip_t const *sip)
{
	return g_strdup_printf("%s\n%u\n%s",
			       sip->sip_call_id ? sip->sip_call_id->i_id : "",
			       sip->sip_cseq ? (unsigned)sip->sip_cseq->cs_seq : 0,
			       sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "");
}

static void on_message(struct sip *s, nua_handle_t *nh, sip_t const *sip)
{
	struct sip_incoming *in = g_new0(struct sip_incoming, 1);
	su_home_t home[1] = { SU_HOME_INIT(home) };
	struct inbound_request req = { 0 };
	struct inbound_verdict verdict;
	struct spool_record rec = { 0 };
	g_autofree char *sender = sender_of(s, home, sip);
	g_autofree char *dedupe = dedupe_key_of(sip);

	in->sip = s;
	in->nh = nh;
	nua_save_event(s->nua, in->saved);
	if (sip->sip_content_type)
		req.content_type = sip_header_as_string(home, (sip_header_t const *)sip->sip_content_type);
	if (sip->sip_payload) {
		req.body = (const uint8_t *)sip->sip_payload->pl_data;
		req.body_len = sip->sip_payload->pl_len;
	}
	req.sender = sender;
	req.dedupe_key = dedupe;
	req.received_us = g_get_real_time();
	if (inbound_check(&s->policy, &req, &verdict, &rec) < 0) {
		g_message("MESSAGE from %s refused: %u %s", sender ? sender : "?",
			  verdict.status, verdict.reason);
		broker_rejected(s->broker, verdict.status, verdict.reason);
		answer_incoming(in, verdict.status, verdict.reason, 0);
	} else {
		broker_accept(s->broker, &rec, answer_incoming, in);
	}
	su_home_deinit(home);
}

/* --- client-initiated MESSAGE --- */

static void send_finish(struct sip_op *op, int err, unsigned status, const char *reason)
{
	op->done(op->done_ctx, err, status, reason);
	nua_handle_destroy(op->nh);
	g_free(op);
}

static void on_message_answer(struct sip *s, struct sip_op *op, int status,
			      char const *phrase, sip_t const *sip)
{
	if (status < 200)
		return;
	if ((status == 401 || status == 407) && authenticate(s, op, sip))
		return;
	if (status >= SIP_INTERNAL_STATUS)
		send_finish(op, -EHOSTUNREACH, 0, phrase);
	else
		send_finish(op, 0, (unsigned)status, phrase);
}

static void *sip_send(void *sipv, const struct broker_send_request *req,
		      broker_send_done_fn done, void *done_ctx)
{
	struct sip *s = sipv;
	struct outbound_params p = {
		.mc_service_id = s->cfg->identity.mc_service_id,
		.kmf_uri = req->to ? req->to : s->kmf_uris[0],
		.participating_psi = s->cfg->server.participating_psi,
		.lmr_type = req->lmr_type,
		.payload = req->payload,
		.payload_len = req->payload_len,
	};
	struct outbound_message msg;
	su_home_t home[1] = { SU_HOME_INIT(home) };
	const char *error;
	struct sip_op *op;

	if (outbound_build(&p, &msg, &error) < 0) {
		done(done_ctx, -EINVAL, 0, error);
		return NULL;
	}
	op = g_new0(struct sip_op, 1);
	op->kind = SIP_OP_SEND;
	op->sip = s;
	op->done = done;
	op->done_ctx = done_ctx;
	op->nh = nua_handle(s->nua, op, SIPTAG_TO_STR(msg.to), SIPTAG_FROM_STR(msg.from),
			    TAG_END());
	nua_message(op->nh, NUTAG_URL(URL_STRING_MAKE(msg.request_uri)),
		    SIPTAG_CONTENT_TYPE_STR(msg.content_type),
		    SIPTAG_PAYLOAD(sip_payload_create(home, msg.body, (isize_t)msg.body_len)),
		    SIPTAG_HEADER_STR(SIP_MCPTT_HEADERS), TAG_END());
	outbound_message_clear(&msg);
	su_home_deinit(home);
	return op;
}

static void sip_cancel(void *sipv, void *handle)
{
	struct sip_op *op = handle;

	(void)sipv;
	nua_handle_destroy(op->nh);
	g_free(op);
}

const struct broker_sip_ops sip_broker_ops = {
	.send = sip_send,
	.cancel = sip_cancel,
};

/* --- shutdown --- */

static void stop_done(struct sip *s)
{
	if (s->stop_timer)
		g_source_remove(s->stop_timer);
	s->stop_timer = 0;
	if (s->stopped) {
		sip_stopped_fn fn = s->stopped;

		s->stopped = NULL;
		fn(s->stopped_ctx);
	}
}

static gboolean on_stop_timeout(gpointer data)
{
	struct sip *s = data;

	s->stop_timer = 0;
	g_warning("SIP: shutdown did not complete in time");
	stop_done(s);
	return G_SOURCE_REMOVE;
}

static void stack_shutdown(struct sip *s)
{
	if (s->stop_timer)
		g_source_remove(s->stop_timer);
	s->stop_timer = g_timeout_add(SIP_SHUTDOWN_WAIT_MS, on_stop_timeout, s);
	nua_shutdown(s->nua);
}

static gboolean on_unregister_timeout(gpointer data)
{
	struct sip *s = data;

	s->stop_timer = 0;
	g_warning("SIP: no answer to the un-REGISTER in time");
	stack_shutdown(s);
	return G_SOURCE_REMOVE;
}

void sip_shutdown(struct sip *s, sip_stopped_fn done, void *ctx)
{
	s->stopping = true;
	s->stopped = done;
	s->stopped_ctx = ctx;
	if (s->retry_timer)
		g_source_remove(s->retry_timer);
	s->retry_timer = 0;
	if (s->reg.nh && s->reg_state.state == BROKER_REG_REGISTERED) {
		s->stop_timer = g_timeout_add(SIP_UNREGISTER_WAIT_MS, on_unregister_timeout, s);
		nua_unregister(s->reg.nh, TAG_END());
		return;
	}
	stack_shutdown(s);
}

/* --- the nua callback --- */

static void on_nua_event(nua_event_t event, int status, char const *phrase,
			 nua_t *nua, struct sip *s, nua_handle_t *nh,
			 struct sip_op *op, sip_t const *sip, tagi_t tags[])
{
	(void)nua;
	(void)tags;
	switch (event) {
	case nua_i_message:
		on_message(s, nh, sip);
		return;
	case nua_r_register:
		on_register(s, status, phrase, sip);
		return;
	case nua_r_unregister:
		if (status >= 200 && s->stopping) {
			g_message("registration: removed (%d %s)", status, phrase);
			stack_shutdown(s);
		}
		return;
	case nua_r_message:
		if (op && op->kind == SIP_OP_SEND)
			on_message_answer(s, op, status, phrase, sip);
		return;
	case nua_r_shutdown:
		if (status >= 200)
			stop_done(s);
		return;
	default:
		if (status >= 300)
			g_debug("SIP: %s: %d %s", nua_event_name(event), status, phrase);
		return;
	}
}

/* --- life cycle --- */

/* sofia-sip's own diagnostics go to the GLib log at debug level. */
static void sofia_log(void *stream, char const *fmt, va_list ap)
{
	g_autofree char *line = g_strdup_vprintf(fmt, ap);

	(void)stream;
	g_debug("sofia: %s", g_strchomp(line));
}

/* Contact feature tags of DESIGN §2, +sip.instance included. */
static char *contact_features(const char *instance_urn)
{
	return g_strdup_printf("%s;+sip.instance=\"<%s>\"", SIP_FEATURES, instance_urn);
}

static char *bind_url(const struct lmrsec_config *cfg)
{
	const char *addr = cfg->server.local_address ? cfg->server.local_address : "*";
	g_autofree char *port = cfg->server.local_port ? g_strdup_printf("%u", cfg->server.local_port)
						       : g_strdup("*");
	const char *transport = config_transport_name(cfg->server.transport);

	if (strchr(addr, ':'))  /* IPv6 literal */
		return g_strdup_printf("sip:[%s]:%s;transport=%s", addr, port, transport);
	return g_strdup_printf("sip:%s:%s;transport=%s", addr, port, transport);
}

static void policy_init(struct sip *s)
{
	s->kmf_uris = (const char *const *)s->cfg->lmr.kmf_uris;
	s->policy.mc_service_id = s->cfg->identity.mc_service_id;
	s->policy.kmf_uris = s->kmf_uris;
	s->policy.trusted_senders = (const char *const *)s->cfg->lmr.trusted_senders;
	s->policy.max_body = s->cfg->delivery.max_body;
	s->policy.max_payload = s->cfg->delivery.max_payload;
}

int sip_start(const struct lmrsec_config *cfg, const char *password,
	      const char *instance_urn, struct broker *broker,
	      struct sip **out, char **error)
{
	struct sip *s = g_new0(struct sip, 1);
	g_autofree char *url = bind_url(cfg);
	const char *proxy = cfg->server.outbound_proxy ? cfg->server.outbound_proxy
						       : cfg->server.registrar;

	su_init();
	su_log_redirect(su_log_default, sofia_log, NULL);
	su_log_redirect(su_log_global, sofia_log, NULL);
	su_home_init(s->home);
	s->features = contact_features(instance_urn);
	s->cfg = cfg;
	s->broker = broker;
	s->password = g_strdup(password);
	s->reg.kind = SIP_OP_REGISTER;
	s->reg.sip = s;
	s->reg_state.aor = cfg->identity.public_identity ? cfg->identity.public_identity
							 : cfg->identity.mc_service_id;
	s->reg_state.registrar = cfg->server.registrar;
	s->reg_state.transport = config_transport_name(cfg->server.transport);
	policy_init(s);
	s->root = su_glib_root_create(s);
	if (!s->root) {
		*error = g_strdup("cannot create the SIP event loop");
		sip_free(s);
		return -ENOMEM;
	}
	g_source_attach(su_glib_root_gsource(s->root), NULL);
	s->nua = nua_create(s->root, on_nua_event, s,
			    NUTAG_URL(URL_STRING_MAKE(url)),
			    NUTAG_PROXY(URL_STRING_MAKE(proxy)),
			    NUTAG_APPL_METHOD("MESSAGE"),
			    NUTAG_ALLOW("MESSAGE"),
			    NUTAG_OUTBOUND("no-validate"),
			    NUTAG_M_FEATURES(s->features),
			    NUTAG_M_USERNAME(cfg->auth.username),
			    TAG_END());
	if (!s->nua) {
		*error = g_strdup_printf("cannot start SIP on %s (address in use or not local?)", url);
		sip_free(s);
		return -EADDRNOTAVAIL;
	}
	reg_send(s);
	*out = s;
	return 0;
}

void sip_free(struct sip *s)
{
	if (!s)
		return;
	if (s->retry_timer)
		g_source_remove(s->retry_timer);
	if (s->stop_timer)
		g_source_remove(s->stop_timer);
	if (s->reg.nh)
		nua_handle_destroy(s->reg.nh);
	if (s->nua)
		nua_destroy(s->nua);
	if (s->root)
		su_root_destroy(s->root);
	if (s->password) {
		explicit_bzero(s->password, strlen(s->password));
		g_free(s->password);
	}
	g_free(s->reg_reason);
	g_free(s->features);
	su_home_deinit(s->home);
	su_deinit();
	g_free(s);
}
