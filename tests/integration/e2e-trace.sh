#!/usr/bin/env bash
# Issue 6, operator debugging: `lmrsecctl trace` (NDJSON with --json, and
# human text) streams the SIP messages the agent sends and receives: the
# REGISTER refreshes and their 200s, an IWF MESSAGE and the agent's 200, a
# client-initiated MESSAGE and the IWF's 200 -- direction, transport, peer,
# start lines and headers (Call-ID, From) in full, each body as its type,
# size and SHA-256, the payload IE's fingerprint and size among them.  The
# payload bytes appear nowhere: not in the trace output (raw, hex, base64)
# and not in the agent's debug log.  When the last tracer leaves, tracing
# stops.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-trace
iwf_port=$(tb_free_port)
# Kamailio grants 4 s, so REGISTER refreshes go by while the trace runs.
ag_setup --iwf-addr "127.0.0.1:$iwf_port" --kamailio "--max-expires 4"
ag_start

"$AG_CTL" --socket "$AG_SOCK" trace --json --timeout 60 >"$TB_DIR/trace.json" 2>"$TB_DIR/trace-json.err" &
jpid=$!
tb_track_pid "$jpid" "trace --json"
"$AG_CTL" --socket "$AG_SOCK" trace --timeout 60 >"$TB_DIR/trace.txt" 2>&1 &
hpid=$!
tb_track_pid "$hpid" "trace (human)"
tracers_up() { [ "$(grep -c 'SIP trace on connection' "$AG_LOG")" -ge 2 ]; }
tb_wait_for 5 tracers_up || tb_fail "the tracers did not connect: $(cat "$TB_DIR/trace-json.err")"

# A payload that is easy to find and hard to hit by chance.
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex("4b4559"*4) + b"\r\n\r\n" + bytes(range(200, 256)) + b"\x00LMRSEC-SECRET-KEY-MATERIAL")' >"$TB_DIR/key.bin"
size=$(stat -c %s "$TB_DIR/key.bin")
ag_send_iwf key 200 --payload-file "$TB_DIR/key.bin" || tb_fail "IWF message not answered 200"
sha=$(tb_value "$TB_DIR/key.out" payload_sha256)
call_id=$(tb_value "$TB_DIR/key.out" call_id)
[ "$sha" = "$(sha256sum "$TB_DIR/key.bin" | cut -d' ' -f1)" ] || tb_fail "iwf-send reports another fingerprint"
ag_receive "$TB_DIR/got" 1 5 >"$TB_DIR/receive.out" 2>&1 || tb_fail "not delivered"
tb_sink_start iwf "$iwf_port" --status 200 --count 1 --timeout 20
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" >"$TB_DIR/send.out" 2>&1 ||
	tb_fail "client-initiated send failed: $(cat "$TB_DIR/send.out")"

# Until the trace shows a REGISTER refresh after the send as well.
registers() { grep -c '"text":"REGISTER ' "$TB_DIR/trace.json"; }
seen_send=$(registers)
tb_wait_for 15 eval '[ "$(registers)" -gt '"$seen_send"' ]' || tb_fail "no REGISTER traced"
sleep 1
kill -TERM "$jpid" "$hpid"
tb_wait_pid "$jpid" 5 || tb_fail "trace --json did not exit 0 on SIGTERM"
tb_wait_pid "$hpid" 5 || tb_fail "trace did not exit 0 on SIGTERM"
tb_wait_for 5 grep -q 'SIP trace off' "$AG_LOG" || tb_fail "tracing not switched off after the last tracer left"

"$TB_PYTHON" - "$TB_DIR/trace.json" "$sha" "$size" "$call_id" "$TB_KAM_PORT" <<'PY' || tb_fail "wrong trace: $(head -c 3000 "$TB_DIR/trace.json")"
import json, re, sys
path, sha, size, call_id, kam_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
msgs = [json.loads(line) for line in open(path)]          # every line is JSON
def start(m): return m["text"].split("\n", 1)[0]
def header(m, name):
    for line in m["text"].split("\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None
for m in msgs:
    assert m["transport"] == "tcp", m
    assert m["peer"] == "127.0.0.1:" + kam_port, m
    assert m["direction"] in ("in", "out") and m["time_us"] > 0 and m["size"] > 0, m
    assert m["text"].endswith("\n"), m

regs = [m for m in msgs if m["direction"] == "out" and start(m).startswith("REGISTER sip:")]
assert regs, "no REGISTER sent"
reg_ok = [m for m in msgs if m["direction"] == "in" and start(m) == "SIP/2.0 200 OK"
          and (header(m, "CSeq") or "").endswith("REGISTER")]
assert reg_ok, "no 200 to a REGISTER"
for m in regs:
    auth = header(m, "Authorization")
    if auth:
        assert 'response="withheld"' in auth, auth

# the IWF's MESSAGE, and the agent's 200 to it
iwf = [m for m in msgs if m["direction"] == "in" and start(m).startswith("MESSAGE sip:")
       and header(m, "Call-ID") == call_id]
assert len(iwf) == 1, [start(m) for m in msgs]
t = iwf[0]["text"]
assert header(iwf[0], "From") and "sip:kmf@iwf.test" in header(iwf[0], "From"), t
assert re.search(r"^\[body: multipart/mixed, \d+ bytes, sha256 [0-9a-f]{64}\]$", t, re.M), t
assert "[  part 2: application/vnd.3gpp.interworking-data," in t, t
assert "[    payload IE: %d bytes, sha256 %s]" % (size, sha) in t, t
ok = [m for m in msgs if m["direction"] == "out" and start(m) == "SIP/2.0 200 OK"
      and header(m, "Call-ID") == call_id]
assert len(ok) == 1, "no 200 OK sent for the IWF's MESSAGE"

# the client-initiated MESSAGE and the IWF's 200
# (sent again with Proxy-Authorization after Kamailio's 407)
sent = [m for m in msgs if m["direction"] == "out" and start(m).startswith("MESSAGE sip:")]
assert sent, [start(m) for m in msgs]
for m in sent:
    assert "[    payload IE: %d bytes, sha256 %s]" % (size, sha) in m["text"], m["text"]
    assert "P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.mcptt" in m["text"], m["text"]
    auth = header(m, "Proxy-Authorization")
    if auth:
        assert 'response="withheld"' in auth, auth
sent_ids = {header(m, "Call-ID") for m in sent}
assert any(m["direction"] == "in" and start(m) == "SIP/2.0 200 OK" and header(m, "Call-ID") in sent_ids
           for m in msgs), "no 200 to the client-initiated MESSAGE"
print("# %d messages traced: %s" % (len(msgs), ", ".join(sorted({m["direction"] + " " + start(m).split(" ")[0] for m in msgs}))))
PY
tb_assert_grep "$TB_DIR/trace.txt" "^[0-9T:.-]+Z in tcp 127\\.0\\.0\\.1:$TB_KAM_PORT [0-9]+ bytes\$" "no human header line"
tb_assert_grep "$TB_DIR/trace.txt" "^Call-ID: $call_id\$" "no Call-ID in the human trace"
tb_assert_grep "$TB_DIR/trace.txt" "^\\[    payload IE: $size bytes, sha256 $sha\\]\$" "no payload fingerprint in the human trace"

ag_stop
python3 - "$TB_DIR/key.bin" "$TB_DIR/trace.json" "$TB_DIR/trace.txt" "$AG_LOG" <<'PY' || tb_fail "key material found in the trace or the log"
import base64, sys
key = open(sys.argv[1], "rb").read()
needles = {
    "raw": key[12:40],
    "raw-tail": key[-30:],
    "hex": key.hex().encode(),
    "HEX": key.hex().upper().encode(),
    "json-escaped": b"\\u00c8",
}
for off in range(3):
    needles["base64+%d" % off] = base64.b64encode(key[off:])[4:40]
bad = False
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    for name, needle in needles.items():
        if needle in data:
            print("# %s: payload (%s) found" % (path, name))
            bad = True
    print("# %s: %d bytes searched" % (path, len(data)))
sys.exit(1 if bad else 0)
PY
tb_log "trace: start lines, headers, fingerprints; no payload bytes anywhere"
tb_pass
