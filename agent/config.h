/*
 * The agent's configuration file (DESIGN §5): a GLib key file, read once at
 * start and again on SIGHUP.
 *
 * config_load() hands back a plain C struct, so no other module needs GLib
 * types. Every default is already applied; the fields left NULL are the truly
 * optional ones, whose default depends on how the agent runs (socket path,
 * state directory) or which have none (participating PSI, realm, …).
 *
 * Decisions where DESIGN is silent (also written in docs/config-example.conf):
 * - A bad file is refused as a whole with ONE line, "FILE: [group] key:
 *   problem"; the agent prints it and stops (or keeps its old configuration
 *   on SIGHUP). Only the first problem is reported.
 * - Unknown groups and keys, and keys given twice (GKeyFile keeps the last),
 *   are not fatal: they become warning lines in lmrsec_config.warnings, same
 *   form, for the agent to log, so a typo is visible but does not stop a
 *   device. The same goes for "[tls] verify = false".
 * - Values are stripped of leading and trailing blanks. An empty value of an
 *   optional text, URI, path or list key means "not set"; an empty number,
 *   boolean or choice is an error; an empty mandatory key is an error.
 * - Lists are separated by ';' (GKeyFile). A ';' inside a URI in a list (a URI
 *   parameter) is written "\;". Empty list elements are skipped.
 * - Choices (transport, ack-mode, …) and booleans are case-insensitive;
 *   booleans are true/false, yes/no or 1/0.
 * - Numbers are decimal, no sign, each with a range stated in the error.
 * - Every path must be absolute: the agent runs from "/" under systemd.
 * - A password in the file ("[auth] password") is refused: credentials live
 *   elsewhere (password-source).
 * - The file must be UTF-8, without NUL bytes, at most CONFIG_MAX_FILE_SIZE.
 */
#ifndef LMRSEC_AGENT_CONFIG_H
#define LMRSEC_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_FILE_SIZE		(1024 * 1024)
#define CONFIG_MAX_URI			1024	/* as IWDATA_MAX_URI */
#define CONFIG_MAX_SOCKET_PATH		107	/* sun_path less its NUL */

/* Defaults, DESIGN §5 */
#define CONFIG_DEFAULT_EXPIRES			600
#define CONFIG_DEFAULT_TRANSACTION_TIMEOUT	32	/* RFC 3261: 64 x T1 */
#define CONFIG_DEFAULT_DELIVERY_TIMEOUT		5
#define CONFIG_DEFAULT_MAX_PAYLOAD		65535
#define CONFIG_DEFAULT_MAX_BODY			131072
#define CONFIG_DEFAULT_SPOOL_MAX_MESSAGES	1000
#define CONFIG_DEFAULT_SPOOL_MAX_BYTES		16777216
#define CONFIG_DEFAULT_MESSAGE_TTL		86400
#define CONFIG_DEFAULT_RETRY_MIN		1
#define CONFIG_DEFAULT_RETRY_MAX		300
#define CONFIG_DEFAULT_MAX_CONNECTIONS		256
#define CONFIG_DEFAULT_FRAME_TIMEOUT		10

enum config_transport {
	CONFIG_TRANSPORT_UDP,
	CONFIG_TRANSPORT_TCP,	/* default: see DESIGN §5 on UDP memory */
	CONFIG_TRANSPORT_TLS,
};

enum config_ack_mode {
	CONFIG_ACK_MODE_STORED,		/* 200 once durably spooled (default) */
	CONFIG_ACK_MODE_DELIVERED,	/* 200 once a consumer ACKed it */
};

enum config_password_source {
	CONFIG_PASSWORD_SECRET_SERVICE,
	CONFIG_PASSWORD_CREDENTIAL,	/* $CREDENTIALS_DIRECTORY/sip-password */
	CONFIG_PASSWORD_FILE,		/* config_auth.password_file */
};

/* Which header names the IWF that sent a MESSAGE. */
enum config_sender_identity {
	CONFIG_SENDER_IDENTITY_P_ASSERTED_IDENTITY,	/* PAI when present, else From (default) */
	CONFIG_SENDER_IDENTITY_FROM,
};

struct config_identity {
	char *mc_service_id;
	char *public_identity;		/* the AoR; mc_service_id when not set */
	char *instance_id;		/* urn:uuid:…; NULL: the agent's stored one */
};

struct config_server {
	char *registrar;
	char *outbound_proxy;		/* registrar when not set */
	char *participating_psi;	/* NULL: client-initiated MESSAGEs go to the KMF URI */
	enum config_transport transport;
	unsigned int expires;		/* 60..86400 s */
	char *local_address;		/* IP literal or host name; NULL: any */
	unsigned int local_port;	/* 0: any */
	unsigned int transaction_timeout; /* 4..32 s: sofia-sip's 64 x T1 */
};

struct config_auth {
	char *username;
	enum config_password_source password_source;
	char *password_file;		/* absolute; set only for CONFIG_PASSWORD_FILE */
	char *realm;			/* NULL: answer any realm */
};

struct config_lmr {
	char **kmf_uris;		/* one or more, NULL-terminated */
	char **trusted_senders;		/* NULL-terminated; a copy of kmf_uris when not set */
	enum config_sender_identity sender_identity;
};

struct config_tls {
	char *certificate_dir;		/* NULL: none */
	bool verify;
};

struct config_delivery {
	enum config_ack_mode ack_mode;
	unsigned int delivery_timeout;	/* 1..300 s */
	unsigned int max_payload;	/* 1..65535 octets */
	unsigned int max_body;		/* max_payload..16777216 octets; larger → 413 */
	unsigned int spool_max_messages;
	unsigned int spool_max_bytes;
	unsigned int message_ttl;	/* s */
};

struct config_socket {
	char *path;			/* NULL: the agent's default for its mode */
	char *group;			/* NULL: the agent's primary group */
	char **allowed_users;		/* NULL-terminated, possibly empty */
	char **allowed_groups;		/* NULL-terminated, possibly empty */
	unsigned int max_connections;	/* 1..65536 open at once */
	unsigned int frame_timeout;	/* 1..3600 s to send HELLO / finish a frame */
};

struct config_paths {
	char *state_dir;		/* NULL: the agent's default for its mode */
};

struct config_registration {
	unsigned int retry_min;		/* backoff bounds, s; retry_min <= retry_max */
	unsigned int retry_max;
};

struct lmrsec_config {
	struct config_identity identity;
	struct config_server server;
	struct config_auth auth;
	struct config_lmr lmr;
	struct config_tls tls;
	struct config_delivery delivery;
	struct config_socket socket;
	struct config_paths paths;
	struct config_registration registration;

	/* Non-fatal findings, one line each ("FILE: [group] key: …"), to log. */
	char **warnings;		/* NULL-terminated, possibly empty */
};

/*
 * Reads and checks the file at path. On success returns 0 and *out (free it
 * with config_free()). On failure returns a negative errno — the read error
 * (-ENOENT, -EACCES, …), -EFBIG for a file over CONFIG_MAX_FILE_SIZE, or
 * -EINVAL for any content problem — sets *out to NULL and, when error_line
 * is not NULL, *error_line to one line without '\n' naming the file, the key
 * and the problem (free it with free()). The file's bytes are wiped after
 * parsing.
 */
int config_load(const char *path, struct lmrsec_config **out,
		char **error_line);

/*
 * As config_load(), over len bytes of data (NUL bytes inside are an error);
 * filename only names the source in messages. No I/O.
 */
int config_parse_data(const char *data, size_t len, const char *filename,
		      struct lmrsec_config **out, char **error_line);

void config_free(struct lmrsec_config *config);

/*
 * The file read without --config: CONFIG_SYSTEM_PATH for root (a system
 * service), else $XDG_CONFIG_HOME/lmrsec/agent.conf. Free it with free().
 */
#define CONFIG_SYSTEM_PATH "/etc/lmrsec/agent.conf"
char *config_default_path(void);

/*
 * A SIP URI we accept: "sip:" or "sips:" (any case), a non-empty host, a
 * non-empty user when '@' is present, a numeric port 1..65535 when ':' is,
 * at most CONFIG_MAX_URI bytes, no blank or control character.
 */
bool config_uri_valid(const char *uri);

/* "udp", "tcp", "tls": as written in the file. */
const char *config_transport_name(enum config_transport transport);
/* "stored", "delivered" */
const char *config_ack_mode_name(enum config_ack_mode mode);

#endif
