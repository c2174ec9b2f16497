/*
 * log — the agent's message-lifecycle log lines, as GLib structured log
 * records (DESIGN §5).
 *
 * Each line carries, besides its readable MESSAGE, fields a journal query
 * can select on:
 *
 *   LMRSEC_EVENT        received, delivered, acked, nacked, expired, rejected
 *   LMRSEC_MESSAGE_ID   the spool id of the message
 *   LMRSEC_LMR_TYPE     TETRA, P25, ...
 *   LMRSEC_SIZE         payload octets
 *   LMRSEC_FINGERPRINT  SHA-256 of the payload, lower-case hex
 *   LMRSEC_SIP_STATUS   the SIP answer given or received
 *   LMRSEC_SENDER       the SIP sender of an incoming MESSAGE
 *
 * e.g. `journalctl -u lmrsec-agent LMRSEC_FINGERPRINT=ab12...`.  GLib's
 * default writer sends the fields to journald when stderr is the journal,
 * and prints the MESSAGE alone on stderr otherwise (the agent in the
 * foreground).  Payload bytes are never logged: sizes and fingerprints only.
 */
#ifndef LMRSEC_AGENT_LOG_H
#define LMRSEC_AGENT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "broker.h"

#define LOG_DOMAIN "lmrsec"

/* The fields of one line; zero / NULL members are left out. */
struct log_fields {
	const char *event;
	int64_t id;
	const char *lmr_type;
	const uint8_t *fingerprint;	/* 32 bytes; LMRSEC_SIZE goes with it */
	size_t size;
	unsigned sip_status;
	const char *sender;
};

void log_message(GLogLevelFlags level, const struct log_fields *f,
		 const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/*
 * A broker observer (broker_add_observer) that logs each message's way
 * through the broker: received, delivered, acked, nacked, expired.
 * Refusals are logged where they are decided (sip.c knows the sender);
 * here only at debug level.  Registration changes are the broker's own
 * lines.
 */
void log_broker_event(void *ctx, const struct broker_event *ev);

/*
 * The agent's verbosity, changed at run time by `lmrsecctl log-level`
 * (docs/operations.md).  Levels from the most to the least severe; each
 * shows its own lines and those above it.  `message`, the default, is
 * GLib's own behaviour: info and debug lines only for the domains in
 * G_MESSAGES_DEBUG.  The level is the process's: it lasts until the agent
 * stops (a SIGHUP reload keeps it; a restart goes back to the start level).
 */
enum log_level {
	LOG_LEVEL_ERROR,	/* errors and criticals */
	LOG_LEVEL_WARNING,
	LOG_LEVEL_MESSAGE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Installs the level filter in front of GLib's default writer, once, in
 * main(); the start level is debug with --verbose, else message. */
void log_init(bool verbose);
enum log_level log_get_level(void);
void log_set_level(enum log_level level);
const char *log_level_name(enum log_level level);
/* 0, or -EINVAL when name is not one of the names above. */
int log_level_from_name(const char *name, enum log_level *out);

#endif
