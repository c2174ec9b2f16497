/*
 * liblmrsec — talk to lmrsec-agent over its local socket.
 *
 * C99, libc only.  One handle per connection.  Every blocking call takes a
 * timeout in milliseconds (-1 waits forever, 0 polls).  Functions return 0
 * (or a positive count where documented) on success and a negative errno on
 * failure; lmrsec_strerror() turns it into text.  Payload buffers handed to
 * the caller are wiped when freed.
 *
 * Typical consumer:
 *     struct lmrsec *c;
 *     lmrsec_connect(NULL, &c);                  // default path, negotiates
 *     const char *types[] = { "TETRA", NULL };
 *     lmrsec_subscribe(c, types, 0, 5000);
 *     for (;;) {
 *         struct lmrsec_delivery *d;
 *         if (lmrsec_next_delivery(c, &d, -1) < 0) break;
 *         ... use d->payload, d->payload_len ...
 *         lmrsec_ack(c, d->id, 5000);
 *         lmrsec_delivery_free(d);
 *     }
 *     lmrsec_close(c);
 */
#ifndef LMRSEC_H
#define LMRSEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the socket protocol this library speaks (lmrsec-protocol(7)). */
#define LMRSEC_PROTOCOL_VERSION 1
/* Environment variable overriding the default socket path. */
#define LMRSEC_SOCKET_ENV "LMRSEC_SOCKET"

struct lmrsec;

struct lmrsec_delivery {
	uint64_t id;
	char *lmr_type;
	char *kmf_uri;
	char *mc_service_id;
	char *sender;
	uint64_t received_us;        /* microseconds since the epoch */
	uint8_t fingerprint[32];     /* SHA-256 of the payload, computed by the agent */
	uint8_t *payload;
	size_t payload_len;
};

struct lmrsec_send_result {
	unsigned sip_status;         /* final SIP status, e.g. 200 or 403 */
	char sip_reason[128];
};

struct lmrsec_status {
	char reg_state[16];          /* registered|registering|unregistered|failed */
	char aor[256];
	char registrar[256];
	char transport[8];
	uint32_t expires_in;         /* seconds until the registration expires */
	uint32_t next_retry;         /* seconds until the next attempt, 0 if none */
	uint32_t last_status;        /* SIP status of the last REGISTER answer */
	char last_reason[128];
	uint64_t spool_messages;
	uint64_t spool_bytes;
	char consumers[512];         /* LMR types with a consumer, comma separated */
	uint64_t received, delivered, acked, rejected, sent;
};

/* The socket path used when none is given: $LMRSEC_SOCKET, else
 * $XDG_RUNTIME_DIR/lmrsec/agent.sock, else /run/lmrsec/agent.sock.
 * Writes into buf; returns 0 or -ENAMETOOLONG. */
int lmrsec_default_path(char *buf, size_t size);

/* Connects (path NULL = default) and negotiates the protocol version.
 * -ENOENT/-ECONNREFUSED: no agent; -EPROTONOSUPPORT: version mismatch. */
int lmrsec_connect(const char *path, struct lmrsec **out);
int lmrsec_connect_timeout(const char *path, int timeout_ms, struct lmrsec **out);
/* Protocol version agreed with the agent, and the agent's version string. */
int lmrsec_protocol_version(const struct lmrsec *c);
const char *lmrsec_agent_version(const struct lmrsec *c);
/* File descriptor for the caller's own poll loop (readable = data waiting). */
int lmrsec_fd(const struct lmrsec *c);
void lmrsec_close(struct lmrsec *c);

/* Consumer role.  types is a NULL-terminated list; "*" means every type.
 * takeover != 0 replaces a consumer already holding one of the types.
 * -EBUSY: another consumer holds a type. */
int lmrsec_subscribe(struct lmrsec *c, const char *const *types, int takeover, int timeout_ms);
/* Waits for the next payload.  -ETIMEDOUT when none came in time. */
int lmrsec_next_delivery(struct lmrsec *c, struct lmrsec_delivery **out, int timeout_ms);
int lmrsec_ack(struct lmrsec *c, uint64_t id, int timeout_ms);
int lmrsec_nack(struct lmrsec *c, uint64_t id, int timeout_ms);
/* Wipes the payload and frees. */
void lmrsec_delivery_free(struct lmrsec_delivery *d);

/* Requester role. */
int lmrsec_status(struct lmrsec *c, struct lmrsec_status *out, int timeout_ms);
/* Sends a client-initiated message to the KMF (to NULL = the configured
 * KMF) and waits for the final SIP answer.  Returns 0 when the request was
 * carried out, whatever the SIP status (see result->sip_status); a negative
 * errno when the agent could not (-ENOTCONN: not registered in time). */
int lmrsec_send(struct lmrsec *c, const char *lmr_type, const char *to,
		const void *payload, size_t payload_len,
		struct lmrsec_send_result *result, int timeout_ms);

/* Text for a negative errno returned by this library, or for the last error
 * the agent sent (lmrsec_last_error). */
const char *lmrsec_strerror(int err);
/* The agent's own message for the last error it reported on this handle, or "". */
const char *lmrsec_last_error(const struct lmrsec *c);

#ifdef __cplusplus
}
#endif
#endif
