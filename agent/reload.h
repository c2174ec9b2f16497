/*
 * reload — SIGHUP: the configuration file is read again and applied where
 * it can be applied while the agent runs (DESIGN §5).
 *
 * Applied: what the SIP side uses — [identity] mc-service-id and
 * public-identity, [server], [auth] (and the password, read again from its
 * source), [lmr], [tls], [registration], [delivery] max-payload and
 * max-body.  When any of it changed, the agent unregisters and registers
 * again with the new settings; when nothing did, a failed registration is
 * retried at once.
 *
 * Kept: [socket], [paths], [identity] instance-id, [delivery] ack-mode,
 * delivery-timeout and the spool bounds apply only at start.  Each change
 * is logged, one line naming the file and key, and the running value stays
 * in force (and in the configuration the agent holds) until a restart.
 *
 * A file that does not load, a password source that fails, or SIP settings
 * that cannot work (a missing TLS CA file) keep the whole running
 * configuration; one line says why.
 */
#ifndef LMRSEC_RELOAD_H
#define LMRSEC_RELOAD_H

#include "config.h"
#include "sip.h"

/* Reads path again and applies it to sip; on success *cfg is replaced (the
 * old one freed).  Returns 0, or a negative errno when the running
 * configuration stays. */
int reload_apply(const char *path, struct lmrsec_config **cfg, struct sip *sip,
		 const char *instance_urn);

#endif
