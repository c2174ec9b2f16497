#!/usr/bin/env bash
# Issue 4: tests/proto-client.py, written from docs/protocol.md alone in a
# second language (Python's standard library), talks to the real agent:
# HELLO, SUBSCRIBE, a DELIVERY whose fingerprint it checks, ACK; also
# STATUS, QUEUE/LIST and MONITOR/EVENT.  It proves the document is enough.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-proto-client
ag_setup
ag_start

PC=("$TB_PYTHON" "$top_srcdir/tests/proto-client.py" --socket "$AG_SOCK")

# --- STATUS
"${PC[@]}" status >"$TB_DIR/status.out" 2>&1 || tb_fail "proto-client status failed"
tb_assert_grep "$TB_DIR/status.out" '^REG_STATE=registered$' "STATUS_REPLY without REG_STATE=registered"
tb_assert_grep "$TB_DIR/status.out" '^SPOOL_MESSAGES=0$' "STATUS_REPLY without SPOOL_MESSAGES"

# --- a monitor for what follows
"${PC[@]}" monitor --count 4 >"$TB_DIR/monitor.out" 2>&1 &
mpid=$!
tb_track_pid "$mpid" "proto-client monitor"
tb_wait_for 5 grep -q '^monitoring' "$TB_DIR/monitor.out" || tb_fail "proto-client monitor did not start"

# --- QUEUE: a message waiting, listed with its metadata
head -c 3000 /dev/urandom >"$TB_DIR/key.bin"
want=$(sha256sum "$TB_DIR/key.bin" | cut -d' ' -f1)
ag_send_iwf key 200 --lmr-type P25 --payload-file "$TB_DIR/key.bin" || tb_fail "IWF message not answered 200"
"${PC[@]}" queue >"$TB_DIR/queue.out" 2>&1 || tb_fail "proto-client queue failed"
tb_assert_grep "$TB_DIR/queue.out" "^entry id=[0-9]+ lmr_type=P25 size=3000 sha256=$want in_flight=0\$" \
	"QUEUE did not list the waiting message"

# --- consume: DELIVERY, fingerprint checked, ACK
mkdir -p "$TB_DIR/out"
"${PC[@]}" consume --lmr-type P25 --count 1 --out "$TB_DIR/out" >"$TB_DIR/consume.out" 2>&1 ||
	tb_fail "proto-client consume failed: $(cat "$TB_DIR/consume.out")"
tb_assert_grep "$TB_DIR/consume.out" "^delivered id=[0-9]+ lmr_type=P25 size=3000 sha256=$want verified\$" \
	"proto-client did not receive and verify the payload"
cmp -s "$TB_DIR/key.bin" "$TB_DIR"/out/*.bin || tb_fail "payload bytes differ"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after proto-client's ACK"
tb_log "proto-client received sha256 $want and ACKed it"

# --- EVENT: received, delivered, acked (and a rejection) seen by the monitor
ag_send_iwf stranger 403 --from sip:stranger@evil.test || tb_fail "untrusted sender not answered 403"
tb_wait_pid "$mpid" 10 || tb_fail "proto-client monitor did not see 4 events: $(cat "$TB_DIR/monitor.out")"
for kind in received delivered acked; do
	tb_assert_grep "$TB_DIR/monitor.out" "^event kind=$kind id=[0-9]+ lmr_type=P25 size=3000 sha256=$want\$" \
		"no $kind event with the payload's fingerprint"
done
tb_assert_grep "$TB_DIR/monitor.out" '^event kind=rejected sip_status=403 reason=' "no rejected event"
ag_stop
tb_pass
