#!/usr/bin/env python3
"""rawclient -- misbehaving and low-level clients of lmrsec-agent's socket,
for the integration tests (python3 standard library only).

  rawclient.py --socket PATH MODE [args]

Modes, each printing key=value results on one line:
  hold --lmr-type T   subscribe, take deliveries and never ACK them; print
                      "delivery id=N sha256=HEX" per DELIVERY, "notice
                      code=N text=..." per unsolicited ERROR, "closed" at EOF
  garbage             send bytes that are no frame (an HTTP request)
  oversize            HELLO, then a frame header declaring 262145 octets
  half                HELLO, then half a STATUS frame, then silence
  silent              connect and send nothing
  flood               HELLO, then STATUS requests without reading a reply
      (these five print "closed=1 after=SECONDS replies=OCTETS" or closed=0)
  idle N              open N connections, HELLO on each, print "open=N",
                      then keep them (--hold seconds, or until a signal)
  burst N             open N connections at once, each sending HELLO, and
                      watch them --wait seconds: "accepted=A eusers=E
                      closed=C other=O silent=S failed=F slowest_refusal=SEC"
                      (accepted: HELLO_OK; eusers: told the agent is full;
                      closed: without a word; failed: connect() failed)
  swarm KIND N        open N connections as fast as it can, each misbehaving
                      as KIND, print "open=N", then watch them --hold
                      seconds and print "kind=K n=N opened=O failed=F
                      eusers=E closed=C still_open=S max_close_after=SEC"
                      (closed: by the agent, those told E not counted;
                      max_close_after: the longest connect -> close;
                      a nonreader's close is seen through POLLRDHUP, with
                      its input unread). KIND:
                        garbage   random bytes (64 octets)
                        oversize  HELLO, then a length of 0xFFFFFFF0
                        half      HELLO, then half a STATUS frame
                        nonreader HELLO + SUBSCRIBE to LMR type PREFIX<i>
                                  (--type-prefix, default H), then reads
                                  nothing at all
"""

import argparse
import hashlib
import os
import select
import socket
import struct
import sys
import time

HELLO, SUBSCRIBE, STATUS = 0x01, 0x02, 0x05
HELLO_OK, ERROR, DELIVERY = 0x81, 0x83, 0x84
T_VERSION_MIN, T_VERSION_MAX, T_LMR_TYPE = 0x01, 0x02, 0x06
T_MESSAGE_ID, T_FINGERPRINT, T_PAYLOAD = 0x08, 0x0d, 0x0e
T_ERROR_CODE, T_ERROR_TEXT = 0x13, 0x14
EUSERS = 87


def field(tag, value):
    return struct.pack(">BI", tag, len(value)) + value


def frame(mtype, rid, fields=b""):
    body = struct.pack(">BI", mtype, rid) + fields
    return struct.pack(">I", len(body)) + body


HELLO_FRAME = frame(HELLO, 1, field(T_VERSION_MIN, struct.pack(">I", 1)) +
                    field(T_VERSION_MAX, struct.pack(">I", 1)))
STATUS_FRAME = frame(STATUS, 2)


def fields_of(body):
    out, pos = {}, 5
    while pos + 5 <= len(body):
        tag, n = struct.unpack_from(">BI", body, pos)
        out.setdefault(tag, body[pos + 5:pos + 5 + n])
        pos += 5 + n
    return out


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_frame(s, buf):
    """(type, id, body, rest) or None at EOF."""
    while True:
        if len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) >= 4 + n:
                body = buf[4:4 + n]
                return body[0], struct.unpack(">I", body[1:5])[0], body, buf[4 + n:]
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk


def hello(s):
    s.sendall(HELLO_FRAME)
    r = read_frame(s, b"")
    if not r or r[0] != HELLO_OK:
        raise SystemExit("rawclient: no HELLO_OK")
    return r[3]


def wait_closed(s, limit):
    """Seconds until the agent closed the connection, and what it sent."""
    t0 = time.monotonic()
    got = 0
    s.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            data = b""
        if not data:
            return True, time.monotonic() - t0, got
        got += len(data)
    return False, limit, got


def report_closed(closed, after, got):
    print("closed=%d after=%.2f replies=%d" % (closed, after, got), flush=True)


def mode_hold(s, args):
    buf = hello(s)
    s.sendall(frame(SUBSCRIBE, 2, field(T_LMR_TYPE, args.lmr_type.encode())))
    s.settimeout(None)
    print("subscribed", flush=True)
    while True:
        r = read_frame(s, buf)
        if r is None:
            print("closed", flush=True)
            return
        mtype, rid, body, buf = r
        f = fields_of(body)
        if mtype == DELIVERY:
            payload = f.get(T_PAYLOAD, b"")
            ok = hashlib.sha256(payload).digest() == f.get(T_FINGERPRINT)
            print("delivery id=%d sha256=%s verified=%d" % (
                struct.unpack(">Q", f[T_MESSAGE_ID])[0],
                hashlib.sha256(payload).hexdigest(), ok), flush=True)
        elif mtype == ERROR and rid == 0:
            print("notice code=%d text=%s" % (struct.unpack(">I", f[T_ERROR_CODE])[0],
                                               f.get(T_ERROR_TEXT, b"").decode()), flush=True)


def mode_garbage(s, args):
    s.sendall(b"GET / HTTP/1.0\r\nHost: agent\r\n\r\n")
    report_closed(*wait_closed(s, args.limit))


def mode_oversize(s, args):
    hello(s)
    s.sendall(struct.pack(">I", 262145) + b"\x05\x00\x00\x00\x09")
    report_closed(*wait_closed(s, args.limit))


def mode_half(s, args):
    hello(s)
    s.sendall(STATUS_FRAME[:6])     # the length says 5 more octets; 2 come
    report_closed(*wait_closed(s, args.limit))


def mode_silent(s, args):
    report_closed(*wait_closed(s, args.limit))


def mode_flood(s, args):
    hello(s)
    s.settimeout(args.limit)
    t0, sent = time.monotonic(), 0
    batch = STATUS_FRAME * 256
    try:
        while time.monotonic() - t0 < args.limit:
            s.sendall(batch)
            sent += 256
    except (BrokenPipeError, ConnectionResetError):
        print("closed=1 after=%.2f requests=%d" % (time.monotonic() - t0, sent), flush=True)
        return
    except socket.timeout:
        pass
    print("closed=0 after=%.2f requests=%d" % (time.monotonic() - t0, sent), flush=True)


def mode_idle(args):
    conns = []
    for _ in range(args.n):
        s = connect(args.socket)
        hello(s)
        conns.append(s)
    print("open=%d" % len(conns), flush=True)
    time.sleep(args.hold)   # the test ends us with a signal before
    return 0


def first_frame_kind(buf):
    """'accepted' (HELLO_OK), 'eusers' (told the agent is full), 'other',
    or None while the first frame is incomplete."""
    if len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        return None
    if buf[4] == HELLO_OK:
        return "accepted"
    if buf[4] == ERROR:
        code = fields_of(buf[4:]).get(T_ERROR_CODE, b"\0\0\0\0")
        if struct.unpack(">I", code)[0] == EUSERS:
            return "eusers"
    return "other"


def mode_burst(args):
    t0 = time.monotonic()
    conns, failed = [], 0
    for _ in range(args.n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(args.socket)      # blocking: waits while the backlog is full
            s.sendall(HELLO_FRAME)
        except (BrokenPipeError, ConnectionResetError):
            pass                        # refused already: its notice is there
        except OSError:
            failed += 1
            continue
        s.setblocking(False)
        conns.append(s)

    bufs = {s: b"" for s in conns}
    result, slowest = {}, 0.0
    deadline = time.monotonic() + args.wait
    while len(result) < len(conns) and time.monotonic() < deadline:
        pending = [s for s in conns if s not in result]
        ready, _, _ = select.select(pending, [], [], 0.1)
        for s in ready:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            bufs[s] += data
            kind = first_frame_kind(bufs[s])
            if kind is None and not data:
                kind = "closed"         # closed without a word
            if kind is None:
                continue
            result[s] = kind
            if kind == "eusers":
                slowest = time.monotonic() - t0
    counts = {k: sum(1 for v in result.values() if v == k)
              for k in ("accepted", "eusers", "closed", "other")}
    print("accepted=%d eusers=%d closed=%d other=%d silent=%d failed=%d "
          "slowest_refusal=%.2f" % (counts["accepted"], counts["eusers"], counts["closed"],
                                    counts["other"], len(conns) - len(result), failed,
                                    slowest), flush=True)
    for s in conns:
        s.close()
    return 0


def swarm_act(kind, s, i, prefix):
    if kind == "garbage":
        s.sendall(os.urandom(64))
    elif kind == "oversize":
        s.sendall(HELLO_FRAME + struct.pack(">I", 0xFFFFFFF0) + b"\x05\x00\x00")
    elif kind == "half":
        s.sendall(HELLO_FRAME + STATUS_FRAME[:6])
    elif kind == "nonreader":
        s.sendall(HELLO_FRAME + frame(SUBSCRIBE, 2, field(
            T_LMR_TYPE, ("%s%d" % (prefix, i)).encode())))


def mode_swarm(args):
    conns, failed, opened_at = [], 0, {}
    for i in range(args.n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(args.socket)
            opened_at[s] = time.monotonic()
            swarm_act(args.kind, s, i, args.type_prefix)
        except (BrokenPipeError, ConnectionResetError):
            pass                        # closed already: seen below
        except OSError:
            failed += 1
            s.close()
            continue
        s.setblocking(False)
        conns.append(s)
    print("open=%d" % len(conns), flush=True)
    # A nonreader reads nothing: whether the agent closed it shows as
    # POLLRDHUP/POLLHUP from poll() alone.
    state = {s: None for s in conns}    # None: open; else (kind, seconds)
    deadline = time.monotonic() + args.hold
    poller = select.poll()
    for s in conns:
        poller.register(s, select.POLLIN if args.kind != "nonreader"
                        else getattr(select, "POLLRDHUP", 0))
    by_fd = {s.fileno(): s for s in conns}
    bufs = {s: b"" for s in conns}
    while time.monotonic() < deadline and any(v is None for v in state.values()):
        for fd, ev in poller.poll(100):
            s = by_fd[fd]
            if state[s] is not None:
                continue
            if args.kind == "nonreader":
                if ev & (select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)):
                    state[s] = ("closed", time.monotonic() - opened_at[s])
                    poller.unregister(fd)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            bufs[s] += data
            if not data:
                kind = "eusers" if first_frame_kind(bufs[s]) == "eusers" else "closed"
                state[s] = (kind, time.monotonic() - opened_at[s])
                poller.unregister(fd)
    counts = {k: sum(1 for v in state.values() if v and v[0] == k)
              for k in ("eusers", "closed")}
    closes = [v[1] for v in state.values() if v and v[0] == "closed"]
    print("kind=%s n=%d opened=%d failed=%d eusers=%d closed=%d still_open=%d "
          "max_close_after=%.2f" % (args.kind, args.n, len(conns), failed,
                                    counts["eusers"], counts["closed"],
                                    sum(1 for v in state.values() if v is None),
                                    max(closes) if closes else 0.0), flush=True)
    for s in conns:
        s.close()
    return 0


def main(argv):
    p = argparse.ArgumentParser(prog="rawclient.py")
    p.add_argument("--socket", required=True)
    p.add_argument("--limit", type=float, default=15.0,
                   help="seconds to wait for the agent to close")
    sub = p.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("hold")
    h.add_argument("--lmr-type", default="*")
    for name in ("garbage", "oversize", "half", "silent", "flood"):
        sub.add_parser(name)
    i = sub.add_parser("idle")
    i.add_argument("n", type=int)
    i.add_argument("--hold", type=float, default=120.0)
    b = sub.add_parser("burst")
    b.add_argument("n", type=int)
    b.add_argument("--wait", type=float, default=3.0,
                   help="seconds after the last connect to watch for refusals")
    w = sub.add_parser("swarm")
    w.add_argument("kind", choices=("garbage", "oversize", "half", "nonreader"))
    w.add_argument("n", type=int)
    w.add_argument("--hold", type=float, default=10.0)
    w.add_argument("--type-prefix", default="H")
    args = p.parse_args(argv)

    if args.mode == "swarm":
        return mode_swarm(args)
    if args.mode == "idle":
        return mode_idle(args)
    if args.mode == "burst":
        return mode_burst(args)
    s = connect(args.socket)
    {"hold": mode_hold, "garbage": mode_garbage, "oversize": mode_oversize,
     "half": mode_half, "silent": mode_silent, "flood": mode_flood}[args.mode](s, args)
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
