/*
 * sip — the SIP adapter, the only file that calls sofia-sip.
 *
 * Owns the su_root (attached to the GLib default main context), its GSource
 * and the nua: registration with digest authentication, incoming MESSAGEs
 * (checked by inbound.c, kept by the broker, answered from the broker's
 * verdict) and client-initiated MESSAGEs (built by outbound.c).
 *
 * The adapter keeps its own copy of what it uses of the configuration, so
 * the caller may free its lmrsec_config at any time (a SIGHUP reload does).
 *
 * Registration life cycle (DESIGN §2): a failed REGISTER is retried after
 * retry-min seconds, doubling up to retry-max, each delay shortened by up to
 * 25 % of jitter, never sooner than the server's Retry-After; a 423 raises
 * the requested expiry to the server's Min-Expires for every later REGISTER;
 * a lost connection re-registers at once; a REGISTER without a final answer
 * in SIP_REGISTER_ANSWER_S counts as failed (sofia alone waits 32 s, e.g.
 * after a TLS handshake it refused).  Every change goes to the broker.
 */
#ifndef LMRSEC_SIP_H
#define LMRSEC_SIP_H

#include "broker.h"
#include "config.h"
#include "trace.h"

#define SIP_REGISTER_ANSWER_S 10

struct sip;

/* Once, first thing in main().  sofia-sip's su_uniqueid.c deletes its
 * thread key in a library destructor whether or not it ever created one;
 * never created, that is key 0 (GLib's GSlice key), and a GLib thread still
 * running at exit (GDBus's, after a Secret Service lookup) then aborts in
 * pthread_setspecific.  This creates sofia's own key. */
void sip_global_init(void);

/* Checks the settings, creates the stack and starts registering.  password
 * is copied (and the copy wiped on sip_free).  Returns 0 or a negative errno
 * with *error, one line. */
int sip_start(const struct lmrsec_config *cfg, const char *password,
	      const char *instance_urn, struct broker *broker,
	      struct sip **out, char **error);

/* Applies a reloaded configuration and password.  When nothing the SIP side
 * uses changed, returns 0 and only retries a failed registration at once.
 * Otherwise returns 1: the current stack unregisters and is replaced by one
 * with the new settings, which registers again; client-initiated sends still
 * waiting for their answer fail (-ECONNRESET).  Returns a negative errno
 * with *error, keeping the running settings, when the new ones cannot work
 * (e.g. the TLS CA file is missing). */
int sip_reconfigure(struct sip *s, const struct lmrsec_config *cfg,
		    const char *password, const char *instance_urn, char **error);

/* Unregisters (REGISTER with Expires: 0), shuts the stack down and calls
 * done once it is down (or after a bounded wait). */
typedef void (*sip_stopped_fn)(void *ctx);
void sip_shutdown(struct sip *s, sip_stopped_fn done, void *ctx);

/* Destroys the stack; after sip_shutdown completed. */
void sip_free(struct sip *s);

/*
 * SIP trace: with fn set, every SIP message the stack sends or receives is
 * copied (in sofia's thread) and handed to fn in the main loop, with the
 * number of messages dropped just before it (more than 4 MiB waiting);
 * rec and its bytes are the adapter's, wiped and freed after fn returns.
 * fn NULL turns it off: sofia's message log is switched off too, so
 * nothing is copied while nobody traces.  One sink per process.
 */
typedef void (*sip_trace_fn)(void *ctx, const struct trace_record *rec, unsigned dropped);
void sip_set_trace(struct sip *s, sip_trace_fn fn, void *ctx);

/* The broker's view of this adapter (sends), for broker_set_sip(). */
extern const struct broker_sip_ops sip_broker_ops;

#endif
