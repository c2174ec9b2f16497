/*
 * server — the key-delivery socket (DESIGN §4): the adapter between local
 * applications (liblmrsec, lmrsecctl) and the broker.
 *
 * Owns the listening AF_UNIX socket and every connection on it: checks each
 * peer's credentials, decodes frames (libclient/frame.h), speaks protocol
 * version 1 (libclient/proto.h, docs/protocol.md) and turns requests into
 * broker calls.  Runs on the default GLib main context.  It never includes
 * the SIP side: the two adapters meet only in the broker.
 */
#ifndef LMRSEC_SERVER_H
#define LMRSEC_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct broker;
struct server;

/* Output one connection may have queued (unsent) before it is closed as a
 * client that stopped reading. */
#define SERVER_DEFAULT_MAX_OUTPUT	(4u * 1024 * 1024)
/* The smallest bound accepted: room for a full delivery frame on top of
 * another one still queued. */
#define SERVER_MIN_MAX_OUTPUT		(2u * (4 + 262144))
/* Deliveries pause while more than this is queued for a consumer
 * (min(this, max_output_bytes - one frame)). */
#define SERVER_OUTPUT_SOFT_LIMIT	(1u * 1024 * 1024)
/* Connections open at once by default ([socket] max-connections); more
 * are told EUSERS, closed and logged. */
#define SERVER_DEFAULT_MAX_CONNECTIONS	256
/* How long a connection may take to send its HELLO, or to finish a frame
 * it started, by default ([socket] frame-timeout); then it is closed. */
#define SERVER_DEFAULT_FRAME_TIMEOUT_MS	10000

struct server_config {
	const char *path;		/* socket path (already resolved by main.c) */
	const char *group;		/* optional group owning the socket (chgrp), NULL: none */
	char **allowed_users;		/* NULL-terminated names, may be NULL */
	char **allowed_groups;		/* NULL-terminated names, may be NULL */
	int listen_fd;			/* >= 0: a listening socket from systemd (LISTEN_FDS), else -1 */
	const char *agent_version;	/* sent in HELLO_OK */
	size_t max_output_bytes;	/* per connection; 0: SERVER_DEFAULT_MAX_OUTPUT */
	unsigned max_connections;	/* 0: SERVER_DEFAULT_MAX_CONNECTIONS */
	unsigned frame_timeout_ms;	/* 0: SERVER_DEFAULT_FRAME_TIMEOUT_MS */
};

/*
 * Creates (or adopts, with listen_fd >= 0) the listening socket and starts
 * serving on the default main context.  Without listen_fd: the directory of
 * path is created 0750 when missing (its parent must exist), a stale socket
 * at path is replaced, the socket is made 0660 and given to group.  With
 * allowed_users or allowed_groups set, the file modes cannot express who
 * may connect, so the directory is created 0711 and the socket made 0666:
 * the peer-credential check is then the gate (docs/behaviour.md).  User and
 * group names are resolved here; an unknown one is an error.  The soft
 * open-file limit is raised to fit max_connections when it is lower.
 * The server observes the broker's events for its monitor connections.
 *
 * Returns 0 and *out, or a negative errno and *error (one line, g_free() it):
 * -EADDRINUSE another agent listens on path; -EEXIST path is not a socket;
 * -ENOENT the directory's parent is missing; -EINVAL a bad configuration
 * (unknown user or group, bound too small, path too long, listen_fd not a
 * listening socket); another errno for a failed system call.
 * b must outlive the server.
 */
int server_start(const struct server_config *cfg, struct broker *b,
		 struct server **out, char **error);

/*
 * Operator requests, wired by main.c (the socket side does not know the
 * SIP side or the log): without them TRACE and LOG_LEVEL get EOPNOTSUPP.
 * trace_switch: on when the first connection starts tracing, off when the
 *   last one closes.
 * log_level: level NULL only asks; else sets it (-EINVAL: unknown name);
 *   *previous and *current: static names.
 */
struct server_operator_ops {
	void (*trace_switch)(void *ctx, bool on);
	int (*log_level)(void *ctx, const char *level, const char **previous,
			 const char **current);
};
void server_set_operator_ops(struct server *s, const struct server_operator_ops *ops,
			     void *ctx);

/* One SIP message for every tracing connection: rec's metadata and text,
 * the message as trace_sanitise() showed it; dropped: messages the SIP side
 * dropped just before it. */
struct trace_record;
void server_trace(struct server *s, const struct trace_record *rec, const char *text,
		  unsigned dropped);

/* Closes every connection (unsubscribing consumers, cancelling their
 * pending sends), stops listening and unlinks the socket it created (when it
 * is still the same file).  NULL is fine. */
void server_stop(struct server *s);

#endif
