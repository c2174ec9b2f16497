#!/usr/bin/env bash
# Issue 3, tests 2, 3 and 5: an IWF key message through Kamailio gets 200;
# the consumer receives exactly the bytes sent (SHA-256) and after its ACK the
# spool is empty; a message that arrives with no consumer connected waits for
# one; a NACK, or a consumer that disconnects without ACK, gets the message
# delivered again.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-receive
ag_setup
ag_start

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# --- 2: live consumer (the example program), exact bytes, spool empty after ACK
[ -x "$AG_CONSUMER" ] || tb_fail "$AG_CONSUMER not built"
"$AG_CONSUMER" --socket "$AG_SOCK" --count 1 TETRA >"$TB_DIR/consumer.out" 2>&1 &
cpid=$!
tb_track_pid "$cpid" consumer
tb_wait_for 5 sh -c "[ \"\$($AG_CTL --socket $AG_SOCK status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"consumers\"])')\" = \"['TETRA']\" ]" ||
	tb_fail "example consumer did not subscribe"
head -c 4096 /dev/urandom >"$TB_DIR/key1.bin"
ag_send_iwf live 200 --payload-file "$TB_DIR/key1.bin" || tb_fail "IWF message not answered 200"
want=$(sha_of "$TB_DIR/key1.bin")
tb_wait_pid "$cpid" 10 || tb_fail "example consumer did not finish"
tb_assert_grep "$TB_DIR/consumer.out" "lmr-type=TETRA size=4096 sha256=$want \\(verified\\)" \
	"consumer did not get exactly the bytes sent"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after ACK"
tb_log "live consumer got sha256 $want; spool empty after ACK"

# --- 3: no consumer connected: kept, then delivered to a consumer that comes later
ag_send_iwf later 200 --lmr-type P25 || tb_fail "IWF message not answered 200"
want=$(tb_value "$TB_DIR/later.out" payload_sha256)
[ "$(ag_spool_depth)" = 1 ] || tb_fail "message not in the spool"
ag_receive "$TB_DIR/later" 1 5 || tb_fail "lmrsecctl receive failed"
got=$(sha_of "$TB_DIR"/later/*.bin)
[ "$got" = "$want" ] || tb_fail "late consumer got $got, sent $want"
[ "$(stat -c %a "$TB_DIR"/later/*.bin)" = 600 ] || tb_fail "received payload file is not 0600"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after ACK"
tb_log "message kept until a consumer came; sha256 matches"

# --- the largest payload (65535 octets) crosses Kamailio and the agent intact
head -c 65535 /dev/urandom >"$TB_DIR/max.bin"
ag_send_iwf max 200 --payload-file "$TB_DIR/max.bin" || tb_fail "65535-octet payload not answered 200"
ag_receive "$TB_DIR/max" 1 5 || tb_fail "65535-octet payload not delivered"
[ "$(sha_of "$TB_DIR"/max/*.bin)" = "$(sha_of "$TB_DIR/max.bin")" ] || tb_fail "65535-octet payload altered"
tb_log "65535-octet payload delivered intact"

# --- 5a: NACK -> delivered again
ag_send_iwf nack 200 || tb_fail "IWF message not answered 200"
want=$(tb_value "$TB_DIR/nack.out" payload_sha256)
ag_ctl receive --lmr-type TETRA --count 1 --timeout 5 --exec 'cat >/dev/null; exit 3' \
	>"$TB_DIR/nack-recv.out" 2>&1
[ "$(ag_spool_depth)" = 1 ] || tb_fail "NACKed message left the spool"
ag_receive "$TB_DIR/after-nack" 1 5 || tb_fail "NACKed message not delivered again"
[ "$(sha_of "$TB_DIR"/after-nack/*.bin)" = "$want" ] || tb_fail "redelivery after NACK has other bytes"
tb_log "NACKed message delivered again"

# --- 5b: consumer disconnects without ACK -> delivered again
ag_send_iwf drop 200 || tb_fail "IWF message not answered 200"
want=$(tb_value "$TB_DIR/drop.out" payload_sha256)
ag_ctl receive --lmr-type TETRA --count 1 --timeout 30 --exec 'exec sleep 30' \
	>"$TB_DIR/drop-recv.out" 2>&1 &
dpid=$!
tb_track_pid "$dpid" "receive (to be killed)"
children() { cat /proc/"$dpid"/task/*/children 2>/dev/null; }
tb_wait_for 10 sh -c "[ -n \"\$(cat /proc/$dpid/task/*/children 2>/dev/null)\" ]" ||
	tb_fail "receive never started its command"
child=$(children)
kill -KILL "$dpid"
wait "$dpid" 2>/dev/null
for c in $child; do tb_stop_pid "$c" 1; done
ag_receive "$TB_DIR/after-drop" 1 5 || tb_fail "message not delivered again after the consumer vanished"
[ "$(sha_of "$TB_DIR"/after-drop/*.bin)" = "$want" ] || tb_fail "redelivery after disconnect has other bytes"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty at the end"
tb_log "message delivered again after the consumer disconnected without ACK"
ag_stop
tb_pass
