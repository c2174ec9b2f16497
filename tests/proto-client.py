#!/usr/bin/env python3
"""proto-client -- a second implementation of the lmrsec socket protocol.

Written from docs/protocol.md (lmrsec-protocol(7)) alone, with nothing but
Python's standard library, to prove the document is enough to write a
client in another language.  It speaks protocol version 1:

  proto-client.py --socket PATH consume [--lmr-type T]... [--count N] [--out DIR]
      HELLO, SUBSCRIBE, then for each DELIVERY: check SHA-256(PAYLOAD) against
      FINGERPRINT, optionally write the payload to DIR/<id>.bin, ACK it.
      Prints  delivered id=N lmr_type=T size=N sha256=HEX verified
  proto-client.py --socket PATH status
      Prints the STATUS_REPLY fields as key=value lines.
  proto-client.py --socket PATH queue
      Walks the spool with QUEUE/LIST pages; prints one line per ENTRY:
      entry id=N lmr_type=T size=N sha256=HEX in_flight=0|1
  proto-client.py --socket PATH monitor [--count N]
      MONITOR, then prints one line per EVENT:
      event kind=K [id=N] [lmr_type=T] [size=N] [sha256=HEX] [state=S]
            [sip_status=N] [reason=...]

Exit status: 0 done, 1 protocol or agent error, 2 usage, 4 timeout.
"""

import argparse
import hashlib
import os
import socket
import struct
import sys

# Message types (docs/protocol.md, MESSAGE TYPES).
HELLO, SUBSCRIBE, ACK, NACK, STATUS, SEND, MONITOR, QUEUE = range(0x01, 0x09)
HELLO_OK, OK, ERROR, DELIVERY, STATUS_REPLY, SEND_RESULT, EVENT, LIST = range(0x81, 0x89)

# Field tags (FIELD TAGS).
T_VERSION_MIN, T_VERSION_MAX, T_VERSION = 0x01, 0x02, 0x03
T_CLIENT_NAME, T_AGENT_VERSION = 0x04, 0x05
T_LMR_TYPE, T_TAKEOVER, T_MESSAGE_ID = 0x06, 0x07, 0x08
T_KMF_URI, T_MC_SERVICE_ID, T_SENDER, T_RECEIVED_US = 0x09, 0x0a, 0x0b, 0x0c
T_FINGERPRINT, T_PAYLOAD = 0x0d, 0x0e
T_SIP_STATUS, T_SIP_REASON, T_ERROR_CODE, T_ERROR_TEXT = 0x11, 0x12, 0x13, 0x14
T_REG_STATE = 0x20
T_EVENT_KIND, T_EVENT_TIME_US, T_PAYLOAD_SIZE = 0x40, 0x41, 0x42
T_AFTER_ID, T_LIMIT, T_ENTRY, T_IN_FLIGHT, T_MORE = 0x43, 0x44, 0x45, 0x46, 0x47

STATUS_NAMES = {
    0x20: ("REG_STATE", "str"), 0x21: ("REG_AOR", "str"),
    0x22: ("REG_REGISTRAR", "str"), 0x23: ("REG_TRANSPORT", "str"),
    0x24: ("REG_EXPIRES_IN", "u32"), 0x25: ("REG_LAST_STATUS", "u32"),
    0x26: ("REG_LAST_REASON", "str"), 0x27: ("SPOOL_MESSAGES", "u64"),
    0x28: ("SPOOL_BYTES", "u64"), 0x29: ("CONSUMER", "str"),
    0x2a: ("COUNT_RECEIVED", "u64"), 0x2b: ("COUNT_DELIVERED", "u64"),
    0x2c: ("COUNT_ACKED", "u64"), 0x2d: ("COUNT_REJECTED", "u64"),
    0x2e: ("COUNT_SENT", "u64"), 0x2f: ("REG_NEXT_RETRY", "u32"),
    0x30: ("COUNT_EXPIRED", "u64"),
}

MAX_BODY = 262144


class ProtocolError(Exception):
    pass


class AgentError(Exception):
    def __init__(self, code, text):
        super().__init__("%s (errno %d)" % (text, code))
        self.code = code


# --- encoding (FRAMING) -------------------------------------------------------

def field(tag, value):
    return struct.pack(">BI", tag, len(value)) + value


def u32(tag, v):
    return field(tag, struct.pack(">I", v))


def u64(tag, v):
    return field(tag, struct.pack(">Q", v))


def text(tag, s):
    return field(tag, s.encode("utf-8"))


def frame(mtype, request_id, fields=()):
    body = struct.pack(">BI", mtype, request_id) + b"".join(fields)
    return struct.pack(">I", len(body)) + body


def parse_fields(data):
    """A body's fields (or a nested ENTRY's) as a list of (tag, value)."""
    out, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 5:
            raise ProtocolError("field header runs past the end")
        tag, length = struct.unpack_from(">BI", data, pos)
        pos += 5
        if length > len(data) - pos:
            raise ProtocolError("field value runs past the end")
        out.append((tag, data[pos:pos + length]))
        pos += length
    return out


def first(fields, tag):
    for t, v in fields:
        if t == tag:
            return v
    return None


def as_u32(v):
    if v is None or len(v) != 4:
        raise ProtocolError("u32 field of %s octets" % (None if v is None else len(v)))
    return struct.unpack(">I", v)[0]


def as_u64(v):
    if v is None or len(v) != 8:
        raise ProtocolError("u64 field of %s octets" % (None if v is None else len(v)))
    return struct.unpack(">Q", v)[0]


def as_str(v):
    return "" if v is None else v.decode("utf-8")


# --- the connection -----------------------------------------------------------

class Connection:
    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.unsolicited = []   # frames with request id 0, in order

    def close(self):
        self.sock.close()

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("the agent closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self):
        (length,) = struct.unpack(">I", self._read_exact(4))
        if length < 5 or length > MAX_BODY:
            raise ProtocolError("frame length %d out of range" % length)
        body = self._read_exact(length)
        mtype, request_id = struct.unpack_from(">BI", body, 0)
        return mtype, request_id, parse_fields(body[5:])

    def request(self, mtype, fields=()):
        """Sends a request; returns (type, fields) of its reply.  Frames
        with request id 0 met meanwhile are kept for later."""
        rid = self.next_id
        self.next_id = self.next_id % 0xffffffff + 1
        self.sock.sendall(frame(mtype, rid, fields))
        while True:
            t, i, f = self.read_frame()
            if i == 0:
                self.unsolicited.append((t, f))
                continue
            if i != rid:
                continue        # the late reply of something else
            if t == ERROR:
                raise AgentError(as_u32(first(f, T_ERROR_CODE)),
                                 as_str(first(f, T_ERROR_TEXT)))
            return t, f

    def next_unsolicited(self):
        if self.unsolicited:
            return self.unsolicited.pop(0)
        t, i, f = self.read_frame()
        while i != 0:           # no request outstanding: nothing else is due
            t, i, f = self.read_frame()
        return t, f

    def hello(self):
        t, f = self.request(HELLO, [u32(T_VERSION_MIN, 1), u32(T_VERSION_MAX, 1),
                                    text(T_CLIENT_NAME, "proto-client.py")])
        if t != HELLO_OK or as_u32(first(f, T_VERSION)) != 1:
            raise ProtocolError("unexpected answer to HELLO: type 0x%02x" % t)
        return as_str(first(f, T_AGENT_VERSION))


def notice_error(t, f):
    """An ERROR with request id 0 (a takeover, a full agent) ends the session."""
    if t == ERROR:
        raise AgentError(as_u32(first(f, T_ERROR_CODE)), as_str(first(f, T_ERROR_TEXT)))


# --- the modes ----------------------------------------------------------------

def consume(conn, args):
    types = args.lmr_type or ["*"]
    t, _ = conn.request(SUBSCRIBE, [text(T_LMR_TYPE, x) for x in types])
    if t != OK:
        raise ProtocolError("unexpected answer to SUBSCRIBE: 0x%02x" % t)
    print("subscribed %s" % ",".join(types), flush=True)
    for _ in range(args.count):
        t, f = conn.next_unsolicited()
        notice_error(t, f)
        if t != DELIVERY:
            continue
        msg_id = as_u64(first(f, T_MESSAGE_ID))
        payload = first(f, T_PAYLOAD) or b""
        fingerprint = first(f, T_FINGERPRINT)
        digest = hashlib.sha256(payload).digest()
        if fingerprint != digest:
            conn.request(NACK, [u64(T_MESSAGE_ID, msg_id)])
            raise ProtocolError("message %d fails its fingerprint (NACKed)" % msg_id)
        if args.out:
            path = os.path.join(args.out, "%d.bin" % msg_id)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
        t, _ = conn.request(ACK, [u64(T_MESSAGE_ID, msg_id)])
        if t != OK:
            raise ProtocolError("unexpected answer to ACK: 0x%02x" % t)
        print("delivered id=%d lmr_type=%s size=%d sha256=%s verified" % (
            msg_id, as_str(first(f, T_LMR_TYPE)), len(payload), digest.hex()), flush=True)


def status(conn, _args):
    t, f = conn.request(STATUS)
    if t != STATUS_REPLY:
        raise ProtocolError("unexpected answer to STATUS: 0x%02x" % t)
    for tag, value in f:
        if tag not in STATUS_NAMES:
            continue            # a field from a later release
        name, kind = STATUS_NAMES[tag]
        shown = {"str": as_str, "u32": as_u32, "u64": as_u64}[kind](value)
        print("%s=%s" % (name, shown))


def queue(conn, _args):
    after = 0
    while True:
        fields = [u64(T_AFTER_ID, after)] if after else []
        t, f = conn.request(QUEUE, fields)
        if t != LIST:
            raise ProtocolError("unexpected answer to QUEUE: 0x%02x" % t)
        entries = [parse_fields(v) for tag, v in f if tag == T_ENTRY]
        for e in entries:
            after = as_u64(first(e, T_MESSAGE_ID))
            print("entry id=%d lmr_type=%s size=%d sha256=%s in_flight=%d" % (
                after, as_str(first(e, T_LMR_TYPE)), as_u64(first(e, T_PAYLOAD_SIZE)),
                first(e, T_FINGERPRINT).hex(), as_u32(first(e, T_IN_FLIGHT))))
        if not entries or as_u32(first(f, T_MORE)) == 0:
            return


def monitor(conn, args):
    t, _ = conn.request(MONITOR)
    if t != OK:
        raise ProtocolError("unexpected answer to MONITOR: 0x%02x" % t)
    print("monitoring", flush=True)
    seen = 0
    while seen < args.count:
        t, f = conn.next_unsolicited()
        notice_error(t, f)
        if t != EVENT:
            continue
        parts = ["event kind=%s" % as_str(first(f, T_EVENT_KIND))]
        for tag, name, conv in ((T_MESSAGE_ID, "id", as_u64), (T_LMR_TYPE, "lmr_type", as_str),
                                (T_PAYLOAD_SIZE, "size", as_u64),
                                (T_FINGERPRINT, "sha256", lambda v: v.hex()),
                                (T_REG_STATE, "state", as_str),
                                (T_SIP_STATUS, "sip_status", as_u32),
                                (T_SIP_REASON, "reason", as_str)):
            value = first(f, tag)
            if value is not None:
                parts.append("%s=%s" % (name, conv(value)))
        print(" ".join(parts), flush=True)
        seen += 1


def main(argv):
    p = argparse.ArgumentParser(prog="proto-client.py")
    p.add_argument("--socket", required=True)
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds any one wait may take")
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("consume")
    c.add_argument("--lmr-type", action="append")
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--out")
    sub.add_parser("status")
    sub.add_parser("queue")
    m = sub.add_parser("monitor")
    m.add_argument("--count", type=int, default=1)
    args = p.parse_args(argv)

    try:
        conn = Connection(args.socket, args.timeout)
        agent = conn.hello()
        print("connected agent=%s" % agent, flush=True)
        {"consume": consume, "status": status, "queue": queue,
         "monitor": monitor}[args.mode](conn, args)
        conn.close()
    except socket.timeout:
        print("proto-client: timed out", file=sys.stderr)
        return 4
    except (ProtocolError, AgentError, OSError, UnicodeDecodeError) as e:
        print("proto-client: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
