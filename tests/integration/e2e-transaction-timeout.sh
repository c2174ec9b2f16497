#!/usr/bin/env bash
# Issue 7, [server] transaction-timeout (lmrsec.conf(5)): over UDP the SIP
# stack keeps each answered MESSAGE that long to absorb retransmissions; a
# retransmission that comes later is answered by the agent from the spool's
# duplicate record: 200 again, delivered once.  And the price: a request the
# agent sends that gets no answer fails with 408 after that long.
#   1. transaction-timeout = 4: a retransmission (same branch) 0.5 s after the
#      200 is absorbed by the stack (the agent never sees it); one 5.5 s after
#      is answered 200 by the agent ("re-sent; not delivered twice"); one
#      message in the spool, one delivery.
#   2. A client-initiated MESSAGE into a black hole (Kamailio relays it, the
#      IWF never answers, Kamailio's own timer is 30 s): `lmrsecctl send`
#      exits 1 with 408 after about 4 s.
#   3. The default (32): a retransmission 5.5 s after the 200 is still
#      absorbed by the stack.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-transaction-timeout
iwf_port=$(tb_free_port)
ag_setup --transport udp --iwf-addr "127.0.0.1:$iwf_port"

# with_timeout VALUE: the agent's configuration with [server] transaction-timeout
with_timeout() {
	ag_write_config udp
	[ -n "$1" ] && sed -i "s/^local-port = .*/&\ntransaction-timeout = $1/" "$AG_CONF"
	return 0
}
resent() { grep -c 're-sent; not delivered twice' "$AG_LOG"; }
resent_above() { [ "$(resent)" -gt "$1" ]; }
# direct NAME ID BRANCH: the IWF's MESSAGE straight to the agent over UDP,
# always from the same port: a retransmission has the same Via as the first
# (from another port sofia-sip sees a merged request and answers 482).
iwf_src=$(tb_free_port)
direct() {
	tb_iwf_send "$1" --proxy "127.0.0.1:$AG_SIP_PORT" --transport udp --to "$AG_ID" \
		--local-port "$iwf_src" \
		--from "$AG_KMF" --call-id "$2" --cseq 1 --from-tag tt-$$ --branch "$3" --expect 200
}

# --- 1. transaction-timeout = 4: the stack, then the agent, answers
with_timeout 4
grep -q '^transaction-timeout = 4$' "$AG_CONF" || tb_fail "config not written"
ag_start
id="tt4-$$@iwf.test" branch="z9hG4bK-tt4-$$"
direct first "$id" "$branch" || tb_fail "MESSAGE over UDP not answered 200"
sleep 0.5
before=$(resent)
direct early "$id" "$branch" || tb_fail "retransmission after 0.5 s not answered 200"
sleep 0.3
[ "$(resent)" = "$before" ] ||
	tb_fail "retransmission after 0.5 s reached the agent: the stack should have answered it"
sleep 5.5
direct late "$id" "$branch" || tb_fail "retransmission after 6 s not answered 200"
tb_wait_for 3 resent_above "$before" ||
	tb_fail "retransmission after 6 s was not answered from the duplicate record (transaction still held?)"
[ "$(ag_spool_depth)" = 1 ] || tb_fail "spool holds $(ag_spool_depth) messages, expected 1"
[ "$(ag_status_field counters.received)" = 1 ] || tb_fail "retransmission counted as received"
ag_receive "$TB_DIR/got" 1 5 || tb_fail "the message was not delivered"
[ "$(ls "$TB_DIR/got" | wc -l)" = 1 ] || tb_fail "expected 1 delivery, got $(ls "$TB_DIR/got" | wc -l)"
tb_log "transaction-timeout = 4: retransmission at 0.5 s absorbed by the stack, at 6 s answered 200 by the agent; delivered once"

# --- 2. the price: an unanswered send fails with 408 after ~4 s
"$TB_PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("listening", flush=True)
end = time.time() + 30
while time.time() < end:
    s.settimeout(1.0)
    try:
        s.recv(65536)
    except socket.timeout:
        pass
' "$iwf_port" >"$TB_DIR/blackhole.out" 2>&1 &
tb_track_pid $! "UDP black hole"
tb_wait_for 5 grep -qs listening "$TB_DIR/blackhole.out" || tb_fail "black hole did not start"
head -c 32 /dev/urandom >"$TB_DIR/key.bin"
t0=${EPOCHREALTIME/./}
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" --timeout 25 >"$TB_DIR/send.out" 2>&1
rc=$?
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
sed 's/^/#   /' "$TB_DIR/send.out"
[ "$rc" = 1 ] || tb_fail "send into the black hole exited $rc, expected 1"
grep -q '408' "$TB_DIR/send.out" || tb_fail "send into the black hole did not report 408"
[ "$ms" -ge 3500 ] && [ "$ms" -le 9000 ] ||
	tb_fail "send into the black hole failed after $ms ms, expected about 4000 (Timer F = 4 s)"
tb_log "transaction-timeout = 4: unanswered send -> 408 after $ms ms"
ag_stop

# --- 3. the default: the stack still holds the transaction at 6 s
with_timeout ""
! grep -q '^transaction-timeout' "$AG_CONF" || tb_fail "config still sets transaction-timeout"
ag_start
id="tt32-$$@iwf.test" branch="z9hG4bK-tt32-$$"
direct first32 "$id" "$branch" || tb_fail "MESSAGE over UDP not answered 200 (default)"
before=$(resent)
sleep 6
direct late32 "$id" "$branch" || tb_fail "retransmission after 6 s not answered 200 (default)"
sleep 0.5
[ "$(resent)" = "$before" ] ||
	tb_fail "default transaction-timeout: retransmission after 6 s reached the agent (stack let go early)"
tb_log "default (32 s): retransmission after 6 s absorbed by the stack"
ag_stop
tb_pass
