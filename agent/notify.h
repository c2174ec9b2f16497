/*
 * notify — the systemd service notification protocol (sd_notify(3)),
 * without libsystemd: one datagram of "KEY=value" lines to the AF_UNIX
 * socket named by $NOTIFY_SOCKET (a path, or "@name" in the abstract
 * namespace).  Outside systemd ($NOTIFY_SOCKET unset) every call is a
 * no-op, so the agent runs the same in the foreground.
 *
 * The agent sends READY=1 once its socket is up and the SIP stack started
 * (Type=notify), STATUS= with the registration state whenever it changes,
 * WATCHDOG=1 at half of $WATCHDOG_USEC from its main loop (so a stuck loop
 * gets it restarted), and STOPPING=1 on SIGTERM.
 */
#ifndef LMRSEC_AGENT_NOTIFY_H
#define LMRSEC_AGENT_NOTIFY_H

#include <stdint.h>

#include "broker.h"

#define NOTIFY_MAX_STATE 4096

/* Sends state ("READY=1\nSTATUS=...").  1 when sent, 0 when there is no
 * $NOTIFY_SOCKET, a negative errno when it could not be sent (-EINVAL for
 * an unusable socket address or an empty or oversized state). */
int notify_send(const char *state);

/* printf form of notify_send(). */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* $WATCHDOG_USEC when set, valid and meant for this process
 * ($WATCHDOG_PID unset or our pid), else 0. */
uint64_t notify_watchdog_usec(void);

/* Sends WATCHDOG=1 now and then every half watchdog interval from the
 * default GLib main context.  Returns the source id, 0 when systemd asked
 * for no watchdog. */
unsigned notify_watchdog_start(void);

/* The STATUS= text for a registration state, e.g. "registration: failed
 * (last answer 403 Forbidden)", into buf (always NUL-terminated). */
void notify_status_text(enum broker_reg_state state, unsigned last_status,
			const char *reason, char *buf, size_t size);

/* A broker observer (broker_add_observer): STATUS= on each registration
 * change. */
void notify_broker_event(void *ctx, const struct broker_event *ev);

#endif
