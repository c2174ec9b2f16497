/*
 * sip — the SIP adapter, the only file that calls sofia-sip.
 *
 * Owns the su_root (attached to the GLib default main context), its GSource
 * and the nua: registration with digest authentication, incoming MESSAGEs
 * (checked by inbound.c, kept by the broker, answered from the broker's
 * verdict) and client-initiated MESSAGEs (built by outbound.c).
 */
#ifndef LMRSEC_SIP_H
#define LMRSEC_SIP_H

#include "broker.h"
#include "config.h"

struct sip;

/* Creates the stack and starts registering.  password is copied (and the
 * copy wiped on sip_free).  Returns 0 or a negative errno with *error. */
int sip_start(const struct lmrsec_config *cfg, const char *password,
	      const char *instance_urn, struct broker *broker,
	      struct sip **out, char **error);

/* Unregisters (REGISTER with Expires: 0), shuts the stack down and calls
 * done once it is down (or after a bounded wait). */
typedef void (*sip_stopped_fn)(void *ctx);
void sip_shutdown(struct sip *s, sip_stopped_fn done, void *ctx);

/* Destroys the stack; after sip_shutdown completed. */
void sip_free(struct sip *s);

/* The broker's view of this adapter (sends), for broker_set_sip(). */
extern const struct broker_sip_ops sip_broker_ops;

#endif
