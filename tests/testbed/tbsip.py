"""Test-bed SIP helpers shared by iwf-send and sip-sink (python3 stdlib only).

Just enough SIP to be a peer in tests: build the IWF-originated MESSAGE body
(DESIGN.md §2), frame messages off UDP datagrams and TCP streams, and split
multipart bodies byte-exactly so a receiver can fingerprint each part.
Bodies are bytes throughout; nothing here assumes they are text.
"""

import hashlib
import re
import struct

CT_MCPTT_INFO = "application/vnd.3gpp.mcptt-info+xml"
CT_IWDATA = "application/vnd.3gpp.interworking-data"

# Interworking Security Data message (DESIGN.md §2).
IWDATA_MSG_NON3GPP_SECURITY = 0x01
IEI_LMR_TYPE = 0x01
IEI_KMF_URI = 0x02
IEI_MC_SERVICE_ID = 0x03
IEI_PAYLOAD = 0x04
IE_MAX_LEN = 0xFFFF

# Compact header forms (RFC 3261 §7.3.3) a peer may use.
COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding",
    "l": "content-length", "c": "content-type", "f": "from", "s": "subject",
    "k": "supported", "t": "to", "v": "via", "a": "accept-contact",
}

MAX_MESSAGE = 1 << 20


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def ie(iei, value):
    if not 0 <= len(value) <= IE_MAX_LEN:
        raise ValueError("IE 0x%02x: %d octets do not fit a 16-bit length"
                         % (iei, len(value)))
    return struct.pack(">BH", iei, len(value)) + value


def build_iwdata(lmr_type, kmf_uri, payload, mc_service_id=None,
                 msg_type=IWDATA_MSG_NON3GPP_SECURITY):
    """Encode the interworking-data body: type octet, then IEs."""
    out = bytes([msg_type])
    if lmr_type is not None:
        out += ie(IEI_LMR_TYPE, lmr_type.encode("ascii"))
    if kmf_uri is not None:
        out += ie(IEI_KMF_URI, kmf_uri.encode("utf-8"))
    if mc_service_id is not None:
        out += ie(IEI_MC_SERVICE_ID, mc_service_id.encode("utf-8"))
    if payload is not None:
        out += ie(IEI_PAYLOAD, payload)
    return out


def parse_iwdata(data):
    """Decode the interworking-data body into {iei: value}; None if malformed."""
    if len(data) < 1:
        return None
    ies = {}
    pos = 1
    while pos < len(data):
        if len(data) - pos < 3:
            return None
        iei, length = struct.unpack(">BH", data[pos:pos + 3])
        pos += 3
        if length > len(data) - pos or iei in ies:
            return None
        ies[iei] = data[pos:pos + length]
        pos += length
    return ies


def mcptt_info(request_uri, calling_user_id=None):
    calling = ""
    if calling_user_id:
        calling = ("<mcptt-calling-user-id><mcpttURI>%s</mcpttURI>"
                   "</mcptt-calling-user-id>" % calling_user_id)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params>'
            '<mcptt-request-uri><mcpttURI>%s</mcpttURI></mcptt-request-uri>'
            '%s</mcptt-Params></mcpttinfo>'
            % (request_uri, calling)).encode("utf-8")


def pick_boundary(parts, wanted=None):
    """A boundary that occurs in no part (RFC 2046 §5.1.1)."""
    n = 0
    while True:
        b = wanted if (wanted and n == 0) else "lmrsec-tb-%d" % n
        if not any(("--" + b).encode() in content for _, content in parts):
            return b
        if wanted and n == 0:
            raise ValueError("boundary %r occurs inside a part" % wanted)
        n += 1


def build_multipart(parts, boundary):
    """parts: [(content_type, bytes)] -> body. Each part's bytes are kept
    exactly: the CRLF before a delimiter belongs to the delimiter."""
    out = b""
    for ctype, content in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        out += b"Content-Type: " + ctype.encode() + b"\r\n\r\n"
        out += content + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


def param(value, name):
    """A ;name=value parameter of a header value (quotes removed)."""
    m = re.search(r";\s*%s\s*=\s*(\"[^\"]*\"|[^;\s]+)" % re.escape(name),
                  value, re.I)
    if not m:
        return None
    return m.group(1).strip('"')


def split_multipart(body, content_type):
    """[(part headers dict, content bytes)] or None when not parseable."""
    boundary = param(content_type or "", "boundary")
    if not boundary:
        return None
    delim = b"--" + boundary.encode()
    if body.startswith(delim):
        body = b"\r\n" + body
    pieces = body.split(b"\r\n" + delim)
    if len(pieces) < 3:
        return None
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        eol = piece.find(b"\r\n")
        if eol < 0:
            return None
        piece = piece[eol + 2:]
        if piece.startswith(b"\r\n"):
            head, content = b"", piece[2:]
        else:
            head, sep, content = piece.partition(b"\r\n\r\n")
            if not sep:
                return None
        hdrs = {}
        for line in head.split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                hdrs[k.strip().decode("latin-1").lower()] = \
                    v.strip().decode("latin-1")
        parts.append((hdrs, content))
    return parts


class Message:
    """A parsed SIP message: start line, ordered headers, body bytes."""

    def __init__(self, raw):
        self.raw = raw
        head, sep, self.body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("no end of headers")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
                continue
            if ":" not in line:
                continue
            name, value = line.split(":", 1)
            name = name.strip().lower()
            self.headers.append((COMPACT.get(name, name), value.strip()))
        parts = self.start.split(" ", 2)
        self.is_response = parts[0].startswith("SIP/")
        if self.is_response:
            self.status = int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            self.method = None
        else:
            self.method = parts[0]
            self.status = None
            self.reason = None

    def get(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def branch(self):
        return param(self.get("via") or "", "branch")


def content_length(head):
    m = re.search(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)", head, re.I)
    return int(m.group(1)) if m else None


def frame_stream(buf):
    """Split one message off a TCP stream buffer: (message bytes, rest) or
    (None, buf) when incomplete. Bare CRLF keep-alives are dropped."""
    while buf.startswith(b"\r\n"):
        buf = buf[2:]
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_MESSAGE:
            raise ValueError("header section too long")
        return None, buf
    length = content_length(buf[:end + 2])
    if length is None:
        raise ValueError("stream message without Content-Length")
    total = end + 4 + length
    if total > MAX_MESSAGE:
        raise ValueError("message too long")
    if len(buf) < total:
        return None, buf
    return buf[:total], buf[total:]


def response_for(req, status, reason, to_tag, extra=()):
    """A response echoing the request's Via/From/To/Call-ID/CSeq."""
    lines = ["SIP/2.0 %d %s" % (status, reason)]
    for via in req.get_all("via"):
        lines.append("Via: " + via)
    lines.append("From: " + (req.get("from") or ""))
    to = req.get("to") or ""
    if param(to, "tag") is None and status > 100:
        to += ";tag=" + to_tag
    lines.append("To: " + to)
    lines.append("Call-ID: " + (req.get("call-id") or ""))
    lines.append("CSeq: " + (req.get("cseq") or ""))
    lines.extend(extra)
    lines.append("Server: lmrsec-testbed")
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
