#!/usr/bin/env bash
# Issue 4, ack-mode delivered (DESIGN §3): the 200 OK to the IWF waits for the
# consumer's ACK; with no consumer for the LMR type the answer is 480 with
# Retry-After at once, and the message is still kept and delivered to a
# consumer that comes later (the IWF's retry with the same Call-ID, CSeq and
# From tag is then answered 200 without a second delivery); a consumer that
# does not ACK within delivery-timeout gets the IWF a 480; an agent stopping
# with answers pending sends them (480) before it unregisters.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-delivered
ag_setup
ag_write_config tcp "[delivery]" "ack-mode = delivered" "delivery-timeout = 6"
ag_start

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
has_consumer() {
	ag_ctl status --json 2>/dev/null |
		python3 -c 'import json,sys; sys.exit(sys.argv[1] not in json.load(sys.stdin)["consumers"])' "$1"
}
counter_is() { [ "$(ag_status_field "counters.$1" 2>/dev/null)" = "$2" ]; }
retry_after_set() {
	local v
	v=$(tb_value "$TB_DIR/$1.out" retry_after)
	[ -n "$v" ] && [ "$v" -gt 0 ] || tb_fail "$1: answer without Retry-After"
}

# --- 1: the 200 comes only after the consumer's ACK
ag_ctl receive --lmr-type TETRA --count 1 --timeout 20 \
	--exec "sleep 2; cat >/dev/null; date +%s%6N >'$TB_DIR/exec-done'" \
	>"$TB_DIR/recv-acked.out" 2>&1 &
rpid=$!
tb_track_pid "$rpid" "receive (ACKs after 2 s)"
tb_wait_for 5 has_consumer TETRA || tb_fail "consumer did not subscribe"
t0=$(now_us)
ag_send_iwf acked 200 --timeout 15 || tb_fail "IWF message not answered 200 after the ACK"
t1=$(now_us)
ms=$(((t1 - t0) / 1000))
[ "$ms" -ge 2000 ] || tb_fail "200 after $ms ms: sooner than the consumer could ACK"
[ -s "$TB_DIR/exec-done" ] || tb_fail "the consumer's command did not finish"
[ "$t1" -gt "$(cat "$TB_DIR/exec-done")" ] || tb_fail "200 arrived before the consumer finished"
tb_wait_pid "$rpid" 10 || tb_fail "receive did not ACK (see recv-acked.out)"
counter_is acked 1 || tb_fail "the agent did not count the ACK"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after the ACK"
tb_log "200 OK reached the IWF $ms ms after the MESSAGE, after the consumer's ACK"

# --- 2: no consumer for the type: 480 + Retry-After at once, message kept
IDS=(--call-id "nocons-$$@iwf.test" --cseq 3 --from-tag nocons4)
t0=$(now_us)
ag_send_iwf no-consumer 480 --lmr-type P25 "${IDS[@]}" || tb_fail "no consumer: not answered 480"
ms=$((($(now_us) - t0) / 1000))
[ "$ms" -lt 2000 ] || tb_fail "no consumer: 480 took $ms ms, not at once"
retry_after_set no-consumer
[ "$(ag_spool_depth)" = 1 ] || tb_fail "a message answered 480 was not kept"
ag_receive "$TB_DIR/later" 1 5 || tb_fail "the kept message was not delivered to a later consumer"
[ "$(sha_of "$TB_DIR"/later/*.bin)" = "$(tb_value "$TB_DIR/no-consumer.out" payload_sha256)" ] ||
	tb_fail "the later consumer got other bytes"
delivered=$(ag_status_field counters.delivered)
ag_send_iwf no-consumer-retry 200 --lmr-type P25 "${IDS[@]}" ||
	tb_fail "the IWF's retry of a message since ACKed was not answered 200"
counter_is delivered "$delivered" || tb_fail "the retry was delivered a second time"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "the retry was stored again"
tb_log "480 + Retry-After $(tb_value "$TB_DIR/no-consumer.out" retry_after) at once; delivered later; the IWF's retry got 200"

# --- 3: a consumer that does not ACK within delivery-timeout = 2: 480
ag_stop
ag_write_config tcp "[delivery]" "ack-mode = delivered" "delivery-timeout = 2"
ag_start
ag_ctl receive --lmr-type TETRA --count 1 --timeout 20 --exec 'sleep 4; exit 1' \
	>"$TB_DIR/recv-slow.out" 2>&1 &
rpid=$!
tb_track_pid "$rpid" "receive (NACKs after 4 s)"
tb_wait_for 5 has_consumer TETRA || tb_fail "consumer did not subscribe"
t0=$(now_us)
ag_send_iwf no-ack 480 --timeout 15 || tb_fail "no ACK in time: not answered 480"
ms=$((($(now_us) - t0) / 1000))
[ "$ms" -ge 2000 ] && [ "$ms" -lt 3800 ] || tb_fail "480 after $ms ms, not at the 2 s delivery timeout"
retry_after_set no-ack
tb_wait_pid "$rpid" 10
[ "$(ag_spool_depth)" = 1 ] || tb_fail "the message answered 480 after the timeout was not kept"
ag_receive "$TB_DIR/after-timeout" 1 5 || tb_fail "the message was not delivered again"
[ "$(sha_of "$TB_DIR"/after-timeout/*.bin)" = "$(tb_value "$TB_DIR/no-ack.out" payload_sha256)" ] ||
	tb_fail "redelivery after the timeout has other bytes"
tb_log "no ACK within delivery-timeout: 480 after $ms ms; the message stayed and was delivered later"

# --- 4: stopping with an answer pending: 480 before the agent goes
ag_ctl receive --lmr-type TETRA --count 1 --timeout 20 --exec 'sleep 3; exit 1' \
	>"$TB_DIR/recv-stop.out" 2>&1 &
rpid=$!
tb_track_pid "$rpid" "receive (holds the message)"
tb_wait_for 5 has_consumer TETRA || tb_fail "consumer did not subscribe"
delivered=$(ag_status_field counters.delivered)
ag_send_iwf stopping 480 --timeout 15 &
spid=$!
tb_track_pid "$spid" "iwf-send (answer pending at stop)"
tb_wait_for 5 counter_is delivered $((delivered + 1)) || tb_fail "the message did not reach the consumer"
ag_stop
tb_wait_pid "$spid" 10 || tb_fail "pending answer at shutdown: not 480 ($(tb_value "$TB_DIR/stopping.out" status))"
retry_after_set stopping
tb_wait_pid "$rpid" 10
ag_start
[ "$(ag_spool_depth)" = 1 ] || tb_fail "the message pending at shutdown was not kept"
ag_receive "$TB_DIR/after-stop" 1 5 || tb_fail "the message pending at shutdown was not delivered after restart"
tb_log "an answer pending at shutdown went out as 480; the message was delivered after restart"
ag_stop
tb_pass
