/*
 * lmrsec local socket protocol: message types and field tags.
 *
 * Shared by the agent (agent/server.c) and liblmrsec so both sides read one
 * definition.  Framing is in frame.h: every frame body is
 *   type (1 octet) | request id (4 octets, big-endian) | fields
 * and every field is  tag (1) | length (4, big-endian) | value.
 * Integers are big-endian; strings are UTF-8 without a terminating NUL.
 * Unknown field tags are ignored by both sides (forward compatibility);
 * an unknown message type gets PROTO_MSG_ERROR and the connection stays.
 * The full description is docs/protocol.md (lmrsec-protocol(7)).
 */
#ifndef LMRSEC_PROTO_H
#define LMRSEC_PROTO_H

/* Protocol versions this build speaks; negotiated by HELLO. */
#define PROTO_VERSION_MIN 1
#define PROTO_VERSION_MAX 1

enum proto_msg {
	/* client -> agent requests (request id chosen by the client, echoed) */
	PROTO_MSG_HELLO = 0x01,      /* VERSION_MIN, VERSION_MAX, CLIENT_NAME */
	PROTO_MSG_SUBSCRIBE = 0x02,  /* LMR_TYPE (repeated; "*" = all), TAKEOVER */
	PROTO_MSG_ACK = 0x03,        /* MESSAGE_ID */
	PROTO_MSG_NACK = 0x04,       /* MESSAGE_ID */
	PROTO_MSG_STATUS = 0x05,     /* no fields */
	PROTO_MSG_SEND = 0x06,       /* LMR_TYPE, PAYLOAD, TO (optional), TIMEOUT_MS */
	PROTO_MSG_MONITOR = 0x07,    /* no fields: EVENT frames follow the OK */
	PROTO_MSG_QUEUE = 0x08,      /* AFTER_ID, LIMIT (both optional) */
	PROTO_MSG_TRACE = 0x09,      /* no fields: TRACE_EVENT frames follow the OK;
	                                the agent's own uid and root only */
	PROTO_MSG_LOG_LEVEL = 0x0a,  /* LOG_LEVEL (optional: absent only asks);
	                                the agent's own uid and root only */

	/* agent -> client */
	PROTO_MSG_HELLO_OK = 0x81,   /* VERSION, AGENT_VERSION */
	PROTO_MSG_OK = 0x82,         /* generic success */
	PROTO_MSG_ERROR = 0x83,      /* ERROR_CODE (positive errno), ERROR_TEXT */
	PROTO_MSG_DELIVERY = 0x84,   /* request id 0; MESSAGE_ID, LMR_TYPE, KMF_URI,
	                                MC_SERVICE_ID, SENDER, RECEIVED_US,
	                                FINGERPRINT, PAYLOAD */
	PROTO_MSG_STATUS_REPLY = 0x85,
	PROTO_MSG_SEND_RESULT = 0x86, /* SIP_STATUS, SIP_REASON */
	PROTO_MSG_EVENT = 0x87,      /* request id 0; EVENT_KIND, EVENT_TIME_US,
	                                MESSAGE_ID, LMR_TYPE, PAYLOAD_SIZE,
	                                FINGERPRINT, SIP_STATUS, SIP_REASON,
	                                REG_STATE (as the kind has them) */
	PROTO_MSG_LIST = 0x88,       /* ENTRY (repeated), MORE */
	PROTO_MSG_TRACE_EVENT = 0x89, /* request id 0; TRACE_DIRECTION,
	                                TRACE_TRANSPORT, TRACE_PEER, EVENT_TIME_US,
	                                TRACE_SIZE, TRACE_TEXT, TRACE_DROPPED */
	PROTO_MSG_LOG_LEVEL_REPLY = 0x8a, /* LOG_LEVEL, LOG_LEVEL_PREVIOUS */
};

enum proto_tag {
	PROTO_TAG_VERSION_MIN = 0x01,    /* u32 */
	PROTO_TAG_VERSION_MAX = 0x02,    /* u32 */
	PROTO_TAG_VERSION = 0x03,        /* u32 */
	PROTO_TAG_CLIENT_NAME = 0x04,    /* str */
	PROTO_TAG_AGENT_VERSION = 0x05,  /* str */
	PROTO_TAG_LMR_TYPE = 0x06,       /* str */
	PROTO_TAG_TAKEOVER = 0x07,       /* u32, 0 or 1 */
	PROTO_TAG_MESSAGE_ID = 0x08,     /* u64 */
	PROTO_TAG_KMF_URI = 0x09,        /* str */
	PROTO_TAG_MC_SERVICE_ID = 0x0a,  /* str */
	PROTO_TAG_SENDER = 0x0b,         /* str */
	PROTO_TAG_RECEIVED_US = 0x0c,    /* u64, microseconds since the epoch */
	PROTO_TAG_FINGERPRINT = 0x0d,    /* 32 bytes, SHA-256 of the payload */
	PROTO_TAG_PAYLOAD = 0x0e,        /* bytes */
	PROTO_TAG_TO = 0x0f,             /* str, KMF URI for a send */
	PROTO_TAG_TIMEOUT_MS = 0x10,     /* u32 */
	PROTO_TAG_SIP_STATUS = 0x11,     /* u32 */
	PROTO_TAG_SIP_REASON = 0x12,     /* str */
	PROTO_TAG_ERROR_CODE = 0x13,     /* u32, positive errno */
	PROTO_TAG_ERROR_TEXT = 0x14,     /* str */
	/* status reply */
	PROTO_TAG_REG_STATE = 0x20,      /* str: registered|registering|unregistered|failed */
	PROTO_TAG_REG_AOR = 0x21,        /* str */
	PROTO_TAG_REG_REGISTRAR = 0x22,  /* str */
	PROTO_TAG_REG_TRANSPORT = 0x23,  /* str */
	PROTO_TAG_REG_EXPIRES_IN = 0x24, /* u32 seconds */
	PROTO_TAG_REG_LAST_STATUS = 0x25,/* u32 SIP status of the last REGISTER answer */
	PROTO_TAG_REG_LAST_REASON = 0x26,/* str */
	PROTO_TAG_SPOOL_MESSAGES = 0x27, /* u64 */
	PROTO_TAG_SPOOL_BYTES = 0x28,    /* u64 */
	PROTO_TAG_CONSUMER = 0x29,       /* str, one LMR type with a consumer (repeated) */
	PROTO_TAG_COUNT_RECEIVED = 0x2a, /* u64 */
	PROTO_TAG_COUNT_DELIVERED = 0x2b,/* u64 */
	PROTO_TAG_COUNT_ACKED = 0x2c,    /* u64 */
	PROTO_TAG_COUNT_REJECTED = 0x2d, /* u64 */
	PROTO_TAG_COUNT_SENT = 0x2e,     /* u64 */
	PROTO_TAG_REG_NEXT_RETRY = 0x2f, /* u32 seconds until the next attempt */
	PROTO_TAG_COUNT_EXPIRED = 0x30,  /* u64 */
	/* monitor events and the spool listing */
	PROTO_TAG_EVENT_KIND = 0x40,     /* str: registration|received|delivered|
	                                    acked|nacked|rejected|expired|... */
	PROTO_TAG_EVENT_TIME_US = 0x41,  /* u64, microseconds since the epoch */
	PROTO_TAG_PAYLOAD_SIZE = 0x42,   /* u64 payload octets */
	PROTO_TAG_AFTER_ID = 0x43,       /* u64, list messages with a greater id */
	PROTO_TAG_LIMIT = 0x44,          /* u32, entries wanted; 0: the maximum */
	PROTO_TAG_ENTRY = 0x45,          /* fields of one spooled message (nested):
	                                    MESSAGE_ID, LMR_TYPE, KMF_URI,
	                                    MC_SERVICE_ID, SENDER, RECEIVED_US,
	                                    PAYLOAD_SIZE, FINGERPRINT, IN_FLIGHT */
	PROTO_TAG_IN_FLIGHT = 0x46,      /* u32 1: delivered, not yet acked */
	PROTO_TAG_MORE = 0x47,           /* u32 1: more entries after the last */
	/* SIP trace and log level (operator requests) */
	PROTO_TAG_TRACE_DIRECTION = 0x50, /* str: in|out (as the agent sees it) */
	PROTO_TAG_TRACE_TRANSPORT = 0x51, /* str: udp|tcp|tls */
	PROTO_TAG_TRACE_PEER = 0x52,     /* str: the other end, ADDR:PORT or [ADDR]:PORT */
	PROTO_TAG_TRACE_SIZE = 0x53,     /* u64 octets of the message on the wire */
	PROTO_TAG_TRACE_TEXT = 0x54,     /* str: start line, headers, body summary */
	PROTO_TAG_TRACE_DROPPED = 0x55,  /* u64 trace events dropped just before */
	PROTO_TAG_LOG_LEVEL = 0x56,      /* str: error|warning|message|info|debug */
	PROTO_TAG_LOG_LEVEL_PREVIOUS = 0x57, /* str: the level before the change */
};

#define PROTO_LMR_TYPE_ALL "*"
#define PROTO_MAX_LMR_TYPES 32
/* Entries in one LIST reply at most; fewer when the frame would pass
 * FRAME_MAX_LEN (MORE says whether more follow). */
#define PROTO_LIST_MAX_ENTRIES 256

#endif
