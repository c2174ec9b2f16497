#!/usr/bin/env bash
# Issue 4, monitor role: `lmrsecctl monitor` (NDJSON with --json, and human
# lines) sees registration changes and a message received, delivered,
# nacked (receive --exec CMD exiting 3), delivered again and acked (CMD
# exiting 0) — each with id, LMR type, size and the payload's SHA-256 — and
# a rejected one with its SIP status; the payload bytes never appear in what
# a monitor gets.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-monitor

# --- registration events: a wrong password keeps the agent failing and retrying
ag_setup --password wrong-password
ag_start --no-wait
tb_wait_for 10 test -S "$AG_SOCK" || tb_fail "agent socket did not appear"
ag_ctl monitor --json --count 2 --timeout 20 >"$TB_DIR/reg.json" 2>"$TB_DIR/reg.err" ||
	tb_fail "monitor did not see 2 events: $(cat "$TB_DIR/reg.err")"
"$TB_PYTHON" - "$TB_DIR/reg.json" <<'PY' || tb_fail "no registration events: $(cat "$TB_DIR/reg.json")"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert len(events) == 2, events
assert all(e["event"] == "registration" for e in events), events
assert {e["state"] for e in events} <= {"registering", "failed"}, events
assert any(e["state"] == "failed" and e.get("sip_status", 0) >= 400 for e in events), events
PY
tb_log "monitor saw registration events: $(tr '\n' ' ' <"$TB_DIR/reg.json")"
ag_stop

# --- message events, with the right password
(umask 077 && printf 'alice-pw\n' >"$AG_DIR/password")
ag_start

"$AG_CTL" --socket "$AG_SOCK" monitor --json --timeout 60 >"$TB_DIR/events.json" 2>"$TB_DIR/events.err" &
jpid=$!
tb_track_pid "$jpid" "monitor --json"
"$AG_CTL" --socket "$AG_SOCK" monitor --timeout 60 >"$TB_DIR/events.txt" 2>&1 &
hpid=$!
tb_track_pid "$hpid" "monitor (human)"
monitors_up() { [ "$(grep -c 'monitor on connection' "$AG_LOG")" -ge 2 ]; }
tb_wait_for 5 monitors_up || tb_fail "the monitors did not connect"

# A payload whose bytes are easy to look for (text, hex and base64).
secret="SECRET-KEY-MATERIAL-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$secret" >"$TB_DIR/key.bin"
size=$(stat -c %s "$TB_DIR/key.bin")
ag_send_iwf key 200 --payload-file "$TB_DIR/key.bin" || tb_fail "IWF message not answered 200"
sha=$(tb_value "$TB_DIR/key.out" payload_sha256)

ag_ctl receive --lmr-type TETRA --count 1 --timeout 5 --exec 'cat >/dev/null; exit 3' \
	>"$TB_DIR/nack.out" 2>&1
# --exec: NACKed above (CMD exited 3), ACKed now that CMD exits 0
ag_ctl receive --lmr-type TETRA --count 1 --timeout 5 --exec "cat >'$TB_DIR/exec.bin'" \
	>"$TB_DIR/ack.out" 2>&1 || tb_fail "the message was not delivered again after its NACK"
cmp -s "$TB_DIR/key.bin" "$TB_DIR/exec.bin" || tb_fail "--exec CMD got other bytes"
ag_send_iwf stranger 403 --from sip:stranger@evil.test || tb_fail "untrusted sender not answered 403"

tb_wait_for 10 grep -q '"event":"rejected"' "$TB_DIR/events.json" || tb_fail "no rejected event"
tb_wait_for 5 grep -q ' rejected ' "$TB_DIR/events.txt" || tb_fail "no rejected line"
kill -TERM "$jpid" "$hpid"
tb_wait_pid "$jpid" 5 || tb_fail "monitor --json did not exit 0 on SIGTERM"
tb_wait_pid "$hpid" 5 || tb_fail "monitor did not exit 0 on SIGTERM"

"$TB_PYTHON" - "$TB_DIR/events.json" "$sha" "$size" <<'PY' || tb_fail "wrong message events: $(cat "$TB_DIR/events.json")"
import json, sys
path, sha, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
events = [json.loads(line) for line in open(path)]        # every line is JSON
mine = [e for e in events if e.get("sha256") == sha]
kinds = [e["event"] for e in mine]
assert kinds == ["received", "delivered", "nacked", "delivered", "acked"], kinds
assert len({e["id"] for e in mine}) == 1, mine
for e in mine:
    assert e["lmr_type"] == "TETRA" and e["size"] == size and e["time_us"] > 0, e
rejected = [e for e in events if e["event"] == "rejected"]
assert len(rejected) == 1 and rejected[0]["sip_status"] == 403, rejected
assert "id" not in rejected[0] and "sha256" not in rejected[0], rejected
assert "Forbidden" in rejected[0]["reason"], rejected
PY
for kind in received delivered nacked acked; do
	tb_assert_grep "$TB_DIR/events.txt" " $kind id=[0-9]+ lmr-type=TETRA size=$size sha256=$sha\$" \
		"no human $kind line"
done
tb_assert_grep "$TB_DIR/events.txt" ' rejected status=403 reason="Forbidden' "no human rejected line"
tb_log "monitors saw received, delivered, nacked, delivered, acked (sha256 $sha) and rejected 403"

# Metadata only: not the payload, nor its hex or base64 form.
hex=$(od -An -tx1 "$TB_DIR/key.bin" | tr -d ' \n')
b64=$(base64 -w0 "$TB_DIR/key.bin")
for f in "$TB_DIR/events.json" "$TB_DIR/events.txt" "$TB_DIR/reg.json"; do
	! grep -qF -e "$secret" -e "$hex" -e "$b64" -e "SECRET-KEY-MATERIAL" "$f" ||
		tb_fail "payload bytes appear in $f"
done
tb_log "no payload bytes in the monitor output"
ag_stop
tb_pass
