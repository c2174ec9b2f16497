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
#include <unistd.h>

#include <glib.h>

struct sip;
struct sip_op;
#define SU_ROOT_MAGIC_T struct sip
#define NUA_MAGIC_T struct sip
#define NUA_HMAGIC_T struct sip_op

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_uniqueid.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#include "inbound.h"
#include "log.h"
#include "outbound.h"
#include "sip.h"

#define SIP_FEATURES "+g.3gpp.mcptt;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mcptt\""
#define SIP_MCPTT_HEADERS                                       \
	"Accept-Contact: " OUTBOUND_ACCEPT_CONTACT_MCPTT "\r\n" \
	"Accept-Contact: " OUTBOUND_ACCEPT_CONTACT_ICSI "\r\n"  \
	"P-Preferred-Service: " OUTBOUND_PREFERRED_SERVICE
#define SIP_UNREGISTER_WAIT_MS 3000
#define SIP_SHUTDOWN_WAIT_MS 5000
#define SIP_INCOMPLETE_TIMEOUT_MS 3000	/* a message must arrive whole within 3 s */
/* sofia-sip reports its own failures (no transport, no matching challenge)
 * with status codes from 900 up. */
#define SIP_INTERNAL_STATUS 900
/* A Retry-After longer than this is not believed. */
#define SIP_RETRY_AFTER_MAX_S 3600
/* A 423 Min-Expires above this is not followed (config's expires bound). */
#define SIP_MAX_EXPIRES 86400
/* TPTAG_CERTIFICATE layout: the CAs the server must chain to. */
#define SIP_TLS_CA_FILE "cafile.pem"
/* The status reported for a failure below SIP (transport, TLS, binding),
 * as sofia itself does for a connection it cannot make. */
#define SIP_TRANSPORT_FAILURE 503
/* sofia's transport log level that shows TLS handshake failures. */
#define SIP_TPORT_LOG_LEVEL "3"

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
	guint fail_idle;           /* SIP_OP_SEND refused before sending */
	int fail_err;
	const char *fail_reason;   /* static */
};

struct sip_incoming {
	struct sip *sip;
	nua_handle_t *nh;          /* NULL once answered for a stack going down */
	nua_saved_event_t saved[1];
};

/* What the adapter uses of the configuration, copied so a reload may free
 * the configuration it came from. */
struct sip_profile {
	char *mc_service_id;
	char *aor;
	char *registrar;
	char *proxy;
	char *participating_psi;
	enum config_transport transport;
	unsigned expires;
	char *local_address;
	unsigned local_port;
	unsigned transaction_timeout;	/* s; sofia-sip's 64 x T1 */
	char *username;
	char *realm;
	char *password;
	char *instance_urn;
	char **kmf_uris;
	char **trusted_senders;
	enum config_sender_identity sender_identity;
	unsigned max_body;
	unsigned max_payload;
	char *certificate_dir;
	bool verify;
	unsigned retry_min;
	unsigned retry_max;
};

enum sip_phase {
	SIP_PHASE_RUNNING,
	SIP_PHASE_RESTARTING,   /* the stack goes down, to come back with s->next */
	SIP_PHASE_STOPPING,     /* the stack goes down for good */
};

struct sip {
	struct sip_profile *profile;
	struct sip_profile *next;       /* SIP_PHASE_RESTARTING: the new settings */
	struct broker *broker;
	su_root_t *root;
	nua_t *nua;                     /* NULL between two stacks */
	char *features;                 /* Contact feature tags */
	struct inbound_policy policy;
	GList *sends;                   /* struct sip_op, client-initiated */
	GList *incoming;                /* struct sip_incoming, not answered yet */

	struct sip_op reg;              /* the registration */
	struct broker_registration reg_state;
	char *reg_reason;
	unsigned expires;               /* asked for; raised by a 423 */
	unsigned backoff_s;
	guint retry_timer;
	guint reg_deadline;             /* an attempt without final answer */
	char *tls_error;                /* last TLS handshake failure seen */

	enum sip_phase phase;
	guint stop_timer;
	guint rebuild_idle;
	sip_stopped_fn stopped;
	void *stopped_ctx;
};

/* --- settings --- */

static char **strv_dup0(char **v)
{
	return v ? g_strdupv(v) : g_new0(char *, 1);
}

static struct sip_profile *profile_new(const struct lmrsec_config *cfg, const char *password,
				       const char *instance_urn)
{
	struct sip_profile *p = g_new0(struct sip_profile, 1);
	const struct config_server *srv = &cfg->server;

	p->mc_service_id = g_strdup(cfg->identity.mc_service_id);
	p->aor = g_strdup(cfg->identity.public_identity ? cfg->identity.public_identity
							: cfg->identity.mc_service_id);
	p->registrar = g_strdup(srv->registrar);
	p->proxy = g_strdup(srv->outbound_proxy ? srv->outbound_proxy : srv->registrar);
	p->participating_psi = g_strdup(srv->participating_psi);
	p->transport = srv->transport;
	p->expires = srv->expires;
	p->local_address = g_strdup(srv->local_address);
	p->local_port = srv->local_port;
	p->transaction_timeout = srv->transaction_timeout;
	p->username = g_strdup(cfg->auth.username);
	p->realm = g_strdup(cfg->auth.realm);
	p->password = g_strdup(password);
	p->instance_urn = g_strdup(instance_urn);
	p->kmf_uris = strv_dup0(cfg->lmr.kmf_uris);
	p->trusted_senders = strv_dup0(cfg->lmr.trusted_senders);
	p->sender_identity = cfg->lmr.sender_identity;
	p->max_body = cfg->delivery.max_body;
	p->max_payload = cfg->delivery.max_payload;
	p->certificate_dir = g_strdup(cfg->tls.certificate_dir);
	p->verify = cfg->tls.verify;
	p->retry_min = cfg->registration.retry_min;
	p->retry_max = cfg->registration.retry_max;
	return p;
}

static void profile_free(struct sip_profile *p)
{
	if (!p)
		return;
	g_free(p->mc_service_id);
	g_free(p->aor);
	g_free(p->registrar);
	g_free(p->proxy);
	g_free(p->participating_psi);
	g_free(p->local_address);
	g_free(p->username);
	g_free(p->realm);
	if (p->password)
		explicit_bzero(p->password, strlen(p->password));
	g_free(p->password);
	g_free(p->instance_urn);
	g_strfreev(p->kmf_uris);
	g_strfreev(p->trusted_senders);
	g_free(p->certificate_dir);
	g_free(p);
}

static bool profile_equal(const struct sip_profile *a, const struct sip_profile *b)
{
	return !g_strcmp0(a->mc_service_id, b->mc_service_id) &&
	       !g_strcmp0(a->aor, b->aor) &&
	       !g_strcmp0(a->registrar, b->registrar) &&
	       !g_strcmp0(a->proxy, b->proxy) &&
	       !g_strcmp0(a->participating_psi, b->participating_psi) &&
	       a->transport == b->transport && a->expires == b->expires &&
	       !g_strcmp0(a->local_address, b->local_address) &&
	       a->local_port == b->local_port &&
	       a->transaction_timeout == b->transaction_timeout &&
	       !g_strcmp0(a->username, b->username) &&
	       !g_strcmp0(a->realm, b->realm) &&
	       !g_strcmp0(a->password, b->password) &&
	       !g_strcmp0(a->instance_urn, b->instance_urn) &&
	       g_strv_equal((const char *const *)a->kmf_uris, (const char *const *)b->kmf_uris) &&
	       g_strv_equal((const char *const *)a->trusted_senders,
			    (const char *const *)b->trusted_senders) &&
	       a->sender_identity == b->sender_identity &&
	       a->max_body == b->max_body && a->max_payload == b->max_payload &&
	       !g_strcmp0(a->certificate_dir, b->certificate_dir) &&
	       a->verify == b->verify &&
	       a->retry_min == b->retry_min && a->retry_max == b->retry_max;
}

/* transport = tls must be able to verify the server: sofia's default policy
 * would accept any certificate (DESIGN §6), so the CA file must be there. */
static int profile_check(const struct sip_profile *p, char **error)
{
	g_autofree char *ca = NULL;

	if (p->transport != CONFIG_TRANSPORT_TLS || !p->verify)
		return 0;
	if (!p->certificate_dir) {
		*error = g_strdup("[tls] certificate-dir: not set, but transport = tls needs its "
				  SIP_TLS_CA_FILE " to verify the server");
		return -EINVAL;
	}
	ca = g_build_filename(p->certificate_dir, SIP_TLS_CA_FILE, NULL);
	if (access(ca, R_OK) < 0) {
		int err = errno;

		*error = g_strdup_printf("[tls] certificate-dir: %s: %s (the CA certificates "
					 "the server's certificate must chain to)",
					 ca, g_strerror(err));
		return -err;
	}
	return 0;
}

/* Points the registration record and the inbound policy at the profile. */
static void profile_apply(struct sip *s)
{
	const struct sip_profile *p = s->profile;

	g_free(s->features);
	s->features = g_strdup_printf("%s;+sip.instance=\"<%s>\"", SIP_FEATURES,
				      p->instance_urn);
	s->reg_state.aor = p->aor;
	s->reg_state.registrar = p->registrar;
	s->reg_state.transport = config_transport_name(p->transport);
	s->expires = p->expires;
	s->backoff_s = 0;
	s->policy.mc_service_id = p->mc_service_id;
	s->policy.kmf_uris = (const char *const *)p->kmf_uris;
	s->policy.trusted_senders = (const char *const *)p->trusted_senders;
	s->policy.max_body = p->max_body;
	s->policy.max_payload = p->max_payload;
}

/* --- registration --- */

/* A reason replaces the last one; a status of 0 keeps the last status. */
static void reg_publish(struct sip *s, enum broker_reg_state state,
			unsigned status, const char *reason)
{
	s->reg_state.state = state;
	if (status)
		s->reg_state.last_status = status;
	if (reason) {
		g_free(s->reg_reason);
		s->reg_reason = g_strdup(reason);
		s->reg_state.last_reason = s->reg_reason;
	}
	broker_set_registration(s->broker, &s->reg_state);
}

static void clear_source(guint *id)
{
	if (*id)
		g_source_remove(*id);
	*id = 0;
}

static void reg_send(struct sip *s);
static void stack_start(struct sip *s);

static gboolean on_reg_retry(gpointer data)
{
	struct sip *s = data;

	s->retry_timer = 0;
	s->reg_state.next_retry_us = 0;
	if (s->nua)
		reg_send(s);
	else
		stack_start(s);
	return G_SOURCE_REMOVE;
}

/* Exponential backoff with jitter, at least Retry-After when the server
 * gave one. */
static void reg_schedule_retry(struct sip *s, unsigned retry_after_s)
{
	const struct sip_profile *p = s->profile;
	guint delay_ms;

	s->backoff_s = s->backoff_s ? MIN(s->backoff_s * 2, p->retry_max) : p->retry_min;
	delay_ms = (guint)(s->backoff_s * 1000 * g_random_double_range(0.75, 1.0));
	retry_after_s = MIN(retry_after_s, SIP_RETRY_AFTER_MAX_S);
	if (retry_after_s * 1000 > delay_ms)
		delay_ms = retry_after_s * 1000;
	s->reg_state.next_retry_us = g_get_real_time() + (int64_t)delay_ms * 1000;
	clear_source(&s->retry_timer);
	s->retry_timer = g_timeout_add(delay_ms, on_reg_retry, s);
	g_message("registration: next attempt in %.1f s%s", delay_ms / 1000.0,
		  retry_after_s * 1000 >= delay_ms ? " (the server's Retry-After)" : "");
}

/* The attempt is over: logged, published with the time of the next one. */
static void reg_failed(struct sip *s, unsigned status, const char *reason,
		       unsigned retry_after_s)
{
	clear_source(&s->reg_deadline);
	s->reg_state.expires_at_us = 0;
	if (status)
		g_warning("registration failed: %u %s", status, reason);
	else
		g_warning("registration failed: %s", reason);
	reg_schedule_retry(s, retry_after_s);
	reg_publish(s, BROKER_REG_FAILED, status, reason);
}

/* Without this, a REGISTER the transport silently lost (a TLS handshake
 * sofia refused) is reported only after 32 s. */
static gboolean on_reg_deadline(gpointer data)
{
	struct sip *s = data;
	g_autofree char *reason = NULL;

	s->reg_deadline = 0;
	if (s->reg.nh)
		nua_handle_destroy(s->reg.nh);
	s->reg.nh = NULL;
	if (s->tls_error)
		reason = g_strdup(s->tls_error);
	else
		reason = g_strdup_printf("Request Timeout (no answer from the server in %d s)",
					 SIP_REGISTER_ANSWER_S);
	reg_failed(s, 408, reason, 0);
	return G_SOURCE_REMOVE;
}

static void reg_send(struct sip *s)
{
	char expires[16];

	if (s->reg.nh)
		nua_handle_destroy(s->reg.nh);
	s->reg.auth_tried = false;
	g_clear_pointer(&s->tls_error, g_free);
	s->reg.nh = nua_handle(s->nua, &s->reg,
			       SIPTAG_TO_STR(s->reg_state.aor),
			       SIPTAG_FROM_STR(s->reg_state.aor), TAG_END());
	snprintf(expires, sizeof(expires), "%u", s->expires);
	nua_register(s->reg.nh,
		     NUTAG_REGISTRAR(URL_STRING_MAKE(s->profile->registrar)),
		     NUTAG_M_FEATURES(s->features),
		     NUTAG_OUTBOUND("no-validate"),
		     SIPTAG_EXPIRES_STR(expires), TAG_END());
	clear_source(&s->reg_deadline);
	s->reg_deadline = g_timeout_add_seconds(SIP_REGISTER_ANSWER_S, on_reg_deadline, s);
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
	return s->expires;
}

/* RFC 3261 10.2.8: a 423 names the shortest expiry the registrar takes;
 * every later REGISTER asks for at least that.  True when it went up. */
static bool note_min_expires(struct sip *s, sip_t const *sip)
{
	unsigned min;

	if (!sip || !sip->sip_status || sip->sip_status->st_status != 423 ||
	    !sip->sip_min_expires)
		return false;
	min = (unsigned)MIN(sip->sip_min_expires->me_delta, SIP_MAX_EXPIRES);
	if (min <= s->expires)
		return false;
	g_message("registration: 423, the registrar wants at least %u s; asking %u s from now on",
		  min, min);
	s->expires = min;
	return true;
}

/* Answers a 401/407 with the configured credentials; false when we may not
 * (already tried once for this request, or the realm is not ours). */
static bool authenticate(struct sip *s, struct sip_op *op, sip_t const *sip)
{
	const struct sip_profile *p = s->profile;
	msg_auth_t const *au = sip->sip_www_authenticate ? sip->sip_www_authenticate
							 : sip->sip_proxy_authenticate;
	const char *realm;
	char *cred;

	if (op->auth_tried || !au || !au->au_scheme)
		return false;
	realm = msg_params_find(au->au_params, "realm=");
	if (!realm)
		return false;
	if (p->realm) {
		g_autofree char *quoted = g_strdup_printf("\"%s\"", p->realm);

		if (strcmp(realm, quoted) && strcmp(realm, p->realm)) {
			g_warning("SIP: challenge for realm %s, configured realm is %s",
				  realm, p->realm);
			return false;
		}
	}
	op->auth_tried = true;
	g_debug("SIP: challenged for realm %s, answering as %s", realm, p->username);
	cred = g_strdup_printf("%s:%s:%s:%s", au->au_scheme, realm, p->username, p->password);
	nua_authenticate(op->nh, NUTAG_AUTH(cred), TAG_END());
	explicit_bzero(cred, strlen(cred));
	g_free(cred);
	return true;
}

static void on_registered(struct sip *s, int status, char const *phrase, sip_t const *sip)
{
	clear_source(&s->reg_deadline);
	s->backoff_s = 0;
	s->reg.auth_tried = false;  /* a later challenge (refresh) may be answered */
	s->reg_state.expires_at_us = g_get_real_time() +
		(int64_t)granted_expires(s, sip) * G_USEC_PER_SEC;
	reg_publish(s, BROKER_REG_REGISTERED, (unsigned)status, phrase);
}

static void on_register(struct sip *s, int status, char const *phrase, sip_t const *sip)
{
	bool raised = note_min_expires(s, sip);

	if (status < 200 || s->phase != SIP_PHASE_RUNNING)
		return;
	if (status < 300) {
		on_registered(s, status, phrase, sip);
		return;
	}
	if ((status == 401 || status == 407) && authenticate(s, &s->reg, sip)) {
		s->reg_state.last_status = (unsigned)status;
		return;
	}
	if (status == 423 && raised) {
		reg_send(s);  /* at once, with the expiry the registrar asked for */
		return;
	}
	if (s->reg.auth_tried && (status >= SIP_INTERNAL_STATUS || status == 401 || status == 407))
		/* challenged again, or sofia's "no matching challenge" (904):
		 * the server refused our credentials */
		reg_failed(s, status < SIP_INTERNAL_STATUS ? (unsigned)status : s->reg_state.last_status,
			   "Unauthorized (credentials refused)", 0);
	else if (s->tls_error)
		reg_failed(s, (unsigned)status, s->tls_error, retry_after_of(sip));
	else
		reg_failed(s, (unsigned)status, phrase, retry_after_of(sip));
}

/* A failed registration is tried again now (SIGHUP without changes). */
static void reg_retry_now(struct sip *s)
{
	if (s->phase != SIP_PHASE_RUNNING || !s->retry_timer)
		return;
	clear_source(&s->retry_timer);
	s->backoff_s = 0;
	on_reg_retry(s);
}

/* --- TLS diagnostics --- */

/* The instance sofia's log reports TLS failures to (main thread only). */
static struct sip *log_sip;

/* sofia's transport log is where a refused TLS handshake shows (and only
 * there); the REGISTER would then wait for its 32 s timeout.  The reason is
 * kept for status and the attempt fails now.  reason: short, for status
 * (liblmrsec keeps 127 bytes); the log line names the server and CA file. */
static void note_tls_failure(struct sip *s, const char *reason)
{
	const struct sip_profile *p = s->profile;

	if (p->transport != CONFIG_TRANSPORT_TLS || s->tls_error || s->phase != SIP_PHASE_RUNNING)
		return;
	s->tls_error = g_strdup_printf("TLS: %s", reason);
	g_warning("TLS handshake with %s refused: %s (CA file %s/" SIP_TLS_CA_FILE ")",
		  p->proxy, reason, p->certificate_dir ? p->certificate_dir : "(none)");
	if (!s->reg_deadline)
		return;  /* no attempt of ours pending (sofia's own refresh) */
	if (s->reg.nh)
		nua_handle_destroy(s->reg.nh);
	s->reg.nh = NULL;
	reg_failed(s, SIP_TRANSPORT_FAILURE, s->tls_error, 0);
}

static gboolean on_tls_failure_logged(gpointer data)
{
	char *reason = data;

	if (log_sip)
		note_tls_failure(log_sip, reason);
	g_free(reason);
	return G_SOURCE_REMOVE;
}

/* --- SIP trace (lmrsecctl trace) --- */

/* Set from the main thread; the stack thread reads `on` and adds to the
 * counters.  Messages copied and not yet handed on are bounded: past
 * SIP_TRACE_PENDING_MAX bytes a message is dropped and counted. */
#define SIP_TRACE_PENDING_MAX	(4 * 1024 * 1024)
#define SIP_TRACE_IOV_MAX	80	/* as sofia's own message log */
static struct {
	gint on;
	gint pending;		/* bytes copied, not yet handed on */
	gint dropped;		/* messages dropped since the last handed on */
	sip_trace_fn fn;	/* main thread only */
	void *ctx;
} trace_hook;

static void trace_record_free(gpointer data)
{
	struct trace_record *rec = data;

	explicit_bzero(rec->bytes, rec->len);	/* bodies carry keys */
	g_free(rec->bytes);
	g_free(rec);
}

/* In the main loop: the message goes to whoever traces, if anyone still does. */
static gboolean trace_hand_on(gpointer data)
{
	struct trace_record *rec = data;

	g_atomic_int_add(&trace_hook.pending, -(gint) rec->len);
	if (trace_hook.fn)
		trace_hook.fn(trace_hook.ctx, rec,
			      (unsigned) g_atomic_int_and((guint *) &trace_hook.dropped, 0));
	return G_SOURCE_REMOVE;
}

static void trace_peer(msg_t *msg, char *out, size_t size)
{
	su_sockaddr_t const *su = msg_addr(msg);
	char host[64] = "?";

	if (!su) {
		snprintf(out, size, "?");
		return;
	}
	su_inet_ntop(su->su_family, SU_ADDR(su), host, sizeof(host));
	snprintf(out, size, su->su_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
		 (unsigned) ntohs(su->su_port));
}

/*
 * sofia-sip's transport calls tport_log_msg() for every whole message it
 * sends or receives while its message log is on (TPTAG_LOG, switched by
 * sip_set_trace()), in the stack thread, with the message and its peer;
 * its own version prints the message, body and all, to its log.  This one
 * replaces it (the library calls it through its PLT): it copies the bytes
 * for the main loop, where trace.c sanitises them, and prints nothing.
 * Should a sofia-sip build not let it be replaced, sofia_message_dump()
 * keeps sofia's printout out of our log.
 */
void tport_log_msg(tport_t *self, msg_t *msg, char const *what, char const *via,
		   su_time_t now);
void tport_log_msg(tport_t *self, msg_t *msg, char const *what, char const *via,
		   su_time_t now)
{
	msg_iovec_t iov[SIP_TRACE_IOV_MAX];
	struct trace_record *rec;
	isize_t n, i;
	size_t len = 0, off = 0;

	(void)via;
	(void)now;
	if (!g_atomic_int_get(&trace_hook.on) || !msg)
		return;
	n = msg_iovec(msg, iov, SIP_TRACE_IOV_MAX);
	for (i = 0; i < n && i < SIP_TRACE_IOV_MAX; i++)
		len += iov[i].mv_len;
	if (len > SIP_TRACE_PENDING_MAX ||
	    g_atomic_int_add(&trace_hook.pending, (gint) len) > SIP_TRACE_PENDING_MAX - (gint) len) {
		if (len <= SIP_TRACE_PENDING_MAX)
			g_atomic_int_add(&trace_hook.pending, -(gint) len);
		g_atomic_int_inc(&trace_hook.dropped);
		return;
	}

	rec = g_new0(struct trace_record, 1);
	rec->direction = what && what[0] == 'r' ? TRACE_DIRECTION_IN : TRACE_DIRECTION_OUT;
	g_strlcpy(rec->transport, self ? tport_name(self)->tpn_proto : "?", sizeof(rec->transport));
	trace_peer(msg, rec->peer, sizeof(rec->peer));
	rec->time_us = g_get_real_time();
	rec->bytes = g_malloc(len ? len : 1);
	rec->len = len;
	for (i = 0; i < n && i < SIP_TRACE_IOV_MAX; i++) {
		memcpy(rec->bytes + off, iov[i].mv_base, iov[i].mv_len);
		off += iov[i].mv_len;
	}
	g_idle_add_full(G_PRIORITY_DEFAULT, trace_hand_on, rec, trace_record_free);
}

/* sofia's own message printout ("recv 512 bytes from tcp/[...]:5060 at
 * ...", the message's lines, a closing line of dashes): dropped, since it
 * holds bodies.  Stack thread. */
static bool sofia_message_dump(const char *text)
{
	static _Thread_local bool in_dump;
	static gint warned;

	if ((g_str_has_prefix(text, "recv ") || g_str_has_prefix(text, "send ") ||
	     g_str_has_prefix(text, "sent ")) && strstr(text, " bytes ")) {
		in_dump = true;
		if (g_atomic_int_compare_and_exchange(&warned, 0, 1))
			g_warning("SIP: sofia-sip prints SIP messages itself (TPORT_LOG set, or "
				  "its tport_log_msg not replaceable); not logged, trace unavailable");
		return true;
	}
	if (!in_dump)
		return false;
	if (g_str_has_prefix(text, "------"))
		in_dump = false;
	return true;
}

void sip_set_trace(struct sip *s, sip_trace_fn fn, void *ctx)
{
	trace_hook.fn = fn;
	trace_hook.ctx = ctx;
	g_atomic_int_set(&trace_hook.on, fn != NULL);
	if (s && s->nua)
		nua_set_params(s->nua, TPTAG_LOG(fn != NULL), TAG_END());
}

/* sofia-sip's own diagnostics go to the GLib log at debug level.  They come
 * from the stack's own thread (nua runs in a clone of the root), so what
 * matters to the adapter is handed to the main loop.  A server certificate
 * that fails verification shows as "-Error with certificate at depth: N",
 * then "  err CODE:TEXT" (tport_tls.c). */
static void sofia_log(void *stream, char const *fmt, va_list ap)
{
	static _Thread_local bool cert_error;
	g_autofree char *line = g_strdup_vprintf(fmt, ap);
	const char *text = line + strspn(line, " ");

	(void)stream;
	g_strchomp(line);
	if (sofia_message_dump(text))
		return;
	g_debug("sofia: %s", line);
	if (g_str_has_prefix(text, "-Error with certificate")) {
		cert_error = true;
		return;
	}
	if (!cert_error || !g_str_has_prefix(text, "err ") || !strchr(text, ':'))
		return;
	cert_error = false;
	g_idle_add(on_tls_failure_logged,
		   g_strdup_printf("server certificate not trusted (%s)", strchr(text, ':') + 1));
}

/* --- incoming MESSAGE --- */

static void answer_incoming(void *ctx, unsigned status, const char *reason,
			    unsigned retry_after_s)
{
	struct sip_incoming *in = ctx;
	char retry[16];

	if (in->nh) {
		snprintf(retry, sizeof(retry), "%u", retry_after_s);
		/* nua_respond() hands the phrase pointer, not a copy, to the stack
		 * thread, which uses it after we return: the reason often lives in
		 * the caller's stack frame. Interned strings live for the process;
		 * the set is small (fixed templates, configured limits). */
		nua_respond(in->nh, (int)status, g_intern_string(reason),
			    NUTAG_WITH_SAVED(in->saved),
			    TAG_IF(retry_after_s, SIPTAG_RETRY_AFTER_STR(retry)),
			    TAG_IF(status == 415, SIPTAG_ACCEPT_STR(INBOUND_ACCEPT)),
			    TAG_END());
		nua_destroy_event(in->saved);
		nua_handle_destroy(in->nh);
		in->sip->incoming = g_list_remove(in->sip->incoming, in);
	}
	g_free(in);
}

/* The stack goes down before the broker answered (ack-mode delivered):
 * the IWF is told to come back; the broker's later answer only frees. */
static void incoming_abandon(struct sip *s)
{
	for (GList *l = s->incoming; l; l = l->next) {
		struct sip_incoming *in = l->data;

		nua_respond(in->nh, 503, "Service Unavailable", NUTAG_WITH_SAVED(in->saved),
			    SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
		nua_destroy_event(in->saved);
		nua_handle_destroy(in->nh);
		in->nh = NULL;
	}
	g_list_free(s->incoming);
	s->incoming = NULL;
}

/* The sender's URI: P-Asserted-Identity when present (unless configured
 * otherwise), else From. */
static char *sender_of(const struct sip *s, su_home_t *home, sip_t const *sip)
{
	if (s->profile->sender_identity == CONFIG_SENDER_IDENTITY_P_ASSERTED_IDENTITY) {
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
	s->incoming = g_list_prepend(s->incoming, in);
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
		struct log_fields f = {
			.event = "rejected", .sip_status = verdict.status, .sender = sender,
		};

		log_message(G_LOG_LEVEL_MESSAGE, &f, "MESSAGE from %s refused: %u %s",
			    sender ? sender : "?", verdict.status, verdict.reason);
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
	struct sip *s = op->sip;

	s->sends = g_list_remove(s->sends, op);
	clear_source(&op->fail_idle);
	op->done(op->done_ctx, err, status, reason);
	if (op->nh)
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

static gboolean on_send_refused(gpointer data)
{
	struct sip_op *op = data;

	op->fail_idle = 0;
	send_finish(op, op->fail_err, 0, op->fail_reason);
	return G_SOURCE_REMOVE;
}

/* A send that cannot go out is answered from the main loop, never from
 * within send(): the caller is still storing the handle we return. */
static struct sip_op *send_refuse(struct sip_op *op, int err, const char *reason)
{
	op->fail_err = err;
	op->fail_reason = reason;
	op->fail_idle = g_idle_add(on_send_refused, op);
	return op;
}

static void *sip_send(void *sipv, const struct broker_send_request *req,
		      broker_send_done_fn done, void *done_ctx)
{
	struct sip *s = sipv;
	struct outbound_params p = {
		.mc_service_id = s->profile->mc_service_id,
		.kmf_uri = req->to ? req->to : s->profile->kmf_uris[0],
		.participating_psi = s->profile->participating_psi,
		.lmr_type = req->lmr_type,
		.payload = req->payload,
		.payload_len = req->payload_len,
	};
	struct outbound_message msg;
	su_home_t home[1] = { SU_HOME_INIT(home) };
	struct sip_op *op = g_new0(struct sip_op, 1);
	const char *error;

	op->kind = SIP_OP_SEND;
	op->sip = s;
	op->done = done;
	op->done_ctx = done_ctx;
	s->sends = g_list_prepend(s->sends, op);
	if (s->phase != SIP_PHASE_RUNNING || !s->nua)
		return send_refuse(op, -ENOTCONN, "not registered (SIP stack restarting)");
	if (outbound_build(&p, &msg, &error) < 0)
		return send_refuse(op, -EINVAL, error);
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
	struct sip *s = sipv;
	struct sip_op *op = handle;

	s->sends = g_list_remove(s->sends, op);
	clear_source(&op->fail_idle);
	if (op->nh)
		nua_handle_destroy(op->nh);
	g_free(op);
}

/* The stack goes down: every send still out fails now. */
static void sends_abort(struct sip *s)
{
	while (s->sends)
		send_finish(s->sends->data, -ECONNRESET, 0,
			    "the SIP stack was restarted before an answer came");
}

const struct broker_sip_ops sip_broker_ops = {
	.send = sip_send,
	.cancel = sip_cancel,
};

/* --- the stack: start, take down, rebuild --- */

static void on_nua_event(nua_event_t event, int status, char const *phrase,
			 nua_t *nua, struct sip *s, nua_handle_t *nh,
			 struct sip_op *op, sip_t const *sip, tagi_t tags[]);

static char *bind_url(const struct sip_profile *p)
{
	const char *addr = p->local_address ? p->local_address : "*";
	g_autofree char *port = p->local_port ? g_strdup_printf("%u", p->local_port)
					      : g_strdup("*");
	const char *transport = config_transport_name(p->transport);
	bool v6 = strchr(addr, ':') != NULL;

	if (p->transport == CONFIG_TRANSPORT_TLS)
		return g_strdup_printf(v6 ? "sips:[%s]:%s" : "sips:%s:%s", addr, port);
	return g_strdup_printf(v6 ? "sip:[%s]:%s;transport=%s" : "sip:%s:%s;transport=%s",
			       addr, port, transport);
}

/* Over TLS only a sips: transport is bound, so nothing can leave in plain
 * text; the server's certificate is checked against cafile.pem. */
static int stack_create(struct sip *s, char **error)
{
	const struct sip_profile *p = s->profile;
	g_autofree char *url = bind_url(p);
	bool tls = p->transport == CONFIG_TRANSPORT_TLS;

	s->nua = nua_create(s->root, on_nua_event, s,
			    TAG_IF(!tls, NUTAG_URL(URL_STRING_MAKE(url))),
			    TAG_IF(tls, NUTAG_SIPS_URL(URL_STRING_MAKE(url))),
			    TAG_IF(tls && p->certificate_dir, TPTAG_CERTIFICATE(p->certificate_dir)),
			    TAG_IF(tls, TPTAG_TLS_VERIFY_POLICY(p->verify ? TPTLS_VERIFY_OUT
									: TPTLS_VERIFY_NONE)),
			    NUTAG_PROXY(URL_STRING_MAKE(p->proxy)),
			    NUTAG_APPL_METHOD("MESSAGE"),
			    NUTAG_ALLOW("MESSAGE"),
			    NUTAG_OUTBOUND("no-validate"),
			    NUTAG_M_FEATURES(s->features),
			    NUTAG_M_USERNAME(p->username),
			    TAG_IF(g_atomic_int_get(&trace_hook.on), TPTAG_LOG(1)),
			    /* A NUL in a header leaves sofia's parser waiting for
			     * the rest of a message that never comes; with no
			     * timeout that stalls the whole connection — with
			     * Kamailio, the one we are registered on.  After 3 s
			     * sofia answers 400 or closes it (fault-hostile-sip). */
			    TPTAG_TIMEOUT(SIP_INCOMPLETE_TIMEOUT_MS),
			    /* 64 x T1: Timer F of what we send, and Timer J —
			     * how long an answered MESSAGE that came over UDP
			     * is held (~10 kB each) to absorb retransmissions.
			     * A later retransmission is answered from the
			     * spool's dedupe record instead (docs/behaviour.md). */
			    NTATAG_SIP_T1X64(p->transaction_timeout * 1000),
			    TAG_END());
	if (!s->nua) {
		*error = g_strdup_printf("cannot start SIP on %s (address in use or not local?)", url);
		return -EADDRNOTAVAIL;
	}
	if (tls && !p->verify)
		g_warning("SIP: [tls] verify = false: any server certificate is accepted");
	return 0;
}

static void stack_start(struct sip *s)
{
	g_autofree char *error = NULL;

	if (stack_create(s, &error) < 0) {
		reg_failed(s, SIP_TRANSPORT_FAILURE, error, 0);
		return;
	}
	reg_send(s);
}

static void stack_destroy(struct sip *s)
{
	if (s->reg.nh)
		nua_handle_destroy(s->reg.nh);
	s->reg.nh = NULL;
	if (s->nua)
		nua_destroy(s->nua);
	s->nua = NULL;
}

/* nua_destroy may not run inside the nua callback that said it is down. */
static gboolean on_rebuild(gpointer data)
{
	struct sip *s = data;

	s->rebuild_idle = 0;
	stack_destroy(s);
	profile_free(s->profile);
	s->profile = s->next;
	s->next = NULL;
	profile_apply(s);
	s->phase = SIP_PHASE_RUNNING;
	g_message("SIP: registering with the new settings (%s via %s, %s)", s->profile->aor,
		  s->profile->proxy, config_transport_name(s->profile->transport));
	stack_start(s);
	return G_SOURCE_REMOVE;
}

static void stack_down(struct sip *s)
{
	clear_source(&s->stop_timer);
	switch (s->phase) {
	case SIP_PHASE_STOPPING:
		if (s->stopped) {
			sip_stopped_fn fn = s->stopped;

			s->stopped = NULL;
			fn(s->stopped_ctx);
		}
		return;
	case SIP_PHASE_RESTARTING:
		if (!s->rebuild_idle)
			s->rebuild_idle = g_idle_add(on_rebuild, s);
		return;
	case SIP_PHASE_RUNNING:
		return;
	}
}

static gboolean on_stop_timeout(gpointer data)
{
	struct sip *s = data;

	s->stop_timer = 0;
	g_warning("SIP: shutdown did not complete in time");
	stack_down(s);
	return G_SOURCE_REMOVE;
}

static void stack_shutdown(struct sip *s)
{
	/* Not registered (any more): a failed registration's handle would
	 * hold nua_shutdown up for its full timeout. */
	if (s->reg.nh && s->reg_state.state != BROKER_REG_REGISTERED) {
		nua_handle_destroy(s->reg.nh);
		s->reg.nh = NULL;
	}
	incoming_abandon(s);
	clear_source(&s->stop_timer);
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

/* Unregisters when registered, then shuts the stack down; stack_down()
 * follows in any case. */
static void stack_teardown(struct sip *s)
{
	bool registered = s->reg.nh && s->reg_state.state == BROKER_REG_REGISTERED;

	clear_source(&s->retry_timer);
	clear_source(&s->reg_deadline);
	s->reg_state.next_retry_us = 0;
	s->reg_state.expires_at_us = 0;
	sends_abort(s);
	if (s->phase == SIP_PHASE_RESTARTING)
		reg_publish(s, BROKER_REG_UNREGISTERED, 0, NULL);
	if (!s->nua) {
		stack_down(s);
		return;
	}
	if (registered) {
		s->stop_timer = g_timeout_add(SIP_UNREGISTER_WAIT_MS, on_unregister_timeout, s);
		nua_unregister(s->reg.nh, TAG_END());
		return;
	}
	stack_shutdown(s);
}

void sip_shutdown(struct sip *s, sip_stopped_fn done, void *ctx)
{
	enum sip_phase was = s->phase;

	s->phase = SIP_PHASE_STOPPING;
	s->stopped = done;
	s->stopped_ctx = ctx;
	switch (was) {
	case SIP_PHASE_RUNNING:
		stack_teardown(s);
		return;
	case SIP_PHASE_RESTARTING:
		/* already going down; when it was down, now it stays down */
		if (s->rebuild_idle) {
			clear_source(&s->rebuild_idle);
			stack_down(s);
		}
		return;
	case SIP_PHASE_STOPPING:
		return;
	}
}

int sip_reconfigure(struct sip *s, const struct lmrsec_config *cfg,
		    const char *password, const char *instance_urn, char **error)
{
	struct sip_profile *p = profile_new(cfg, password, instance_urn);
	int r = profile_check(p, error);

	if (r < 0 || s->phase == SIP_PHASE_STOPPING) {
		profile_free(p);
		return r;
	}
	if (s->phase == SIP_PHASE_RESTARTING) {
		profile_free(s->next);
		s->next = p;
		return 1;
	}
	if (profile_equal(p, s->profile)) {
		profile_free(p);
		reg_retry_now(s);
		return 0;
	}
	s->next = p;
	s->phase = SIP_PHASE_RESTARTING;
	g_message("SIP: settings changed: unregistering, then registering with the new ones");
	stack_teardown(s);
	return 1;
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
		if (op == &s->reg)
			on_register(s, status, phrase, sip);
		return;
	case nua_r_unregister:
		if (status >= 200 && s->phase != SIP_PHASE_RUNNING && op == &s->reg) {
			g_message("registration: removed (%d %s)", status, phrase);
			clear_source(&s->stop_timer);
			stack_shutdown(s);
		}
		return;
	case nua_r_message:
		if (op && op->kind == SIP_OP_SEND)
			on_message_answer(s, op, status, phrase, sip);
		return;
	case nua_r_shutdown:
		if (status >= 200)
			stack_down(s);
		return;
	default:
		if (status >= 300)
			g_debug("SIP: %s: %d %s", nua_event_name(event), status, phrase);
		return;
	}
}

/* --- life cycle --- */

void sip_global_init(void)
{
	(void)su_random();  /* creates su_uniqueid's thread key (see sip.h) */
}

int sip_start(const struct lmrsec_config *cfg, const char *password,
	      const char *instance_urn, struct broker *broker,
	      struct sip **out, char **error)
{
	struct sip *s = g_new0(struct sip, 1);
	int r;

	s->profile = profile_new(cfg, password, instance_urn);
	r = profile_check(s->profile, error);
	if (r < 0) {
		profile_free(s->profile);
		g_free(s);
		return r;
	}
	su_init();
	/* the transport log (TLS failures) falls back to the default log */
	g_setenv("TPORT_DEBUG", SIP_TPORT_LOG_LEVEL, FALSE);
	su_log_redirect(su_log_default, sofia_log, NULL);
	su_log_redirect(su_log_global, sofia_log, NULL);
	log_sip = s;
	s->broker = broker;
	s->reg.kind = SIP_OP_REGISTER;
	s->reg.sip = s;
	profile_apply(s);
	s->root = su_glib_root_create(s);
	if (!s->root) {
		*error = g_strdup("cannot create the SIP event loop");
		sip_free(s);
		return -ENOMEM;
	}
	g_source_attach(su_glib_root_gsource(s->root), NULL);
	r = stack_create(s, error);
	if (r < 0) {
		sip_free(s);
		return r;
	}
	reg_send(s);
	*out = s;
	return 0;
}

void sip_free(struct sip *s)
{
	if (!s)
		return;
	clear_source(&s->retry_timer);
	clear_source(&s->reg_deadline);
	clear_source(&s->stop_timer);
	clear_source(&s->rebuild_idle);
	sends_abort(s);
	if (s->nua)
		incoming_abandon(s);
	stack_destroy(s);
	if (s->root)
		su_root_destroy(s->root);
	if (log_sip == s)
		log_sip = NULL;
	profile_free(s->profile);
	profile_free(s->next);
	g_free(s->reg_reason);
	g_free(s->tls_error);
	g_free(s->features);
	su_deinit();
	g_free(s);
}
