#!/usr/bin/env bash
# Key bytes never reach a log: the agent runs with --verbose (debug level,
# sofia-sip's own diagnostics included) and TPORT_LOG off as shipped; a known
# payload is received, delivered and sent back; the agent's whole log and the
# CLI's output are then searched for the payload in hex (both cases), base64
# and raw bytes -- none may appear. Its SHA-256 fingerprint may.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-no-key-in-logs
iwf_port=$(tb_free_port)
ag_setup --iwf-addr "127.0.0.1:$iwf_port"
ag_start
# A payload that is easy to find and hard to hit by chance.
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex("4b4559"*4) + bytes(range(200, 256)) + b"LMRSEC-SECRET-KEY-MATERIAL")' >"$TB_DIR/key.bin"
ag_send_iwf key 200 --payload-file "$TB_DIR/key.bin" || tb_fail "message not answered 200"
ag_receive "$TB_DIR/got" 1 5 >"$TB_DIR/receive.out" 2>&1 || tb_fail "not delivered"
tb_sink_start iwf "$iwf_port" --status 200 --count 1 --timeout 20
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" >"$TB_DIR/send.out" 2>&1 || tb_fail "send failed"
ag_stop
sha=$(sha256sum "$TB_DIR/key.bin" | cut -d' ' -f1)
grep -q "$sha" "$TB_DIR/receive.out" || tb_fail "receive output lacks the fingerprint (test is not looking at the right output)"
python3 - "$TB_DIR/key.bin" "$AG_LOG" "$TB_DIR/receive.out" "$TB_DIR/send.out" <<'PY' || tb_fail "key material found in a log"
import base64, sys
key = open(sys.argv[1], "rb").read()
needles = {
    "raw": key[12:40],
    "hex": key.hex().encode(),
    "HEX": key.hex().upper().encode(),
    "base64": base64.b64encode(key)[4:40],
    "marker": b"LMRSEC-SECRET-KEY-MATERIAL",
}
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
[ "$(wc -l <"$AG_LOG")" -gt 10 ] || tb_fail "the agent log is too short to mean anything"
tb_log "no payload bytes in the debug log or CLI output; fingerprints only"
tb_pass
