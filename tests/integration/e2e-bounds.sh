#!/usr/bin/env bash
# Issue 4, spool bounds (DESIGN §3): spool-max-messages and spool-max-bytes
# answer 503 with Retry-After when the spool is full (and take messages again
# once there is room); message-ttl drops an undelivered message: it is
# counted (counters.expired), logged, and never delivered afterwards.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-bounds
ag_setup

counter_is() { [ "$(ag_status_field "counters.$1" 2>/dev/null)" = "$2" ]; }
retry_after_set() {
	local v
	v=$(tb_value "$TB_DIR/$1.out" retry_after)
	[ -n "$v" ] && [ "$v" -gt 0 ] || tb_fail "$1: 503 without Retry-After"
}

# --- spool-max-messages = 2
ag_write_config tcp "[delivery]" "spool-max-messages = 2"
ag_start
ag_send_iwf m1 200 || tb_fail "message 1 not answered 200"
ag_send_iwf m2 200 || tb_fail "message 2 not answered 200"
ag_send_iwf m3 503 || tb_fail "third message in a spool of 2: not 503"
retry_after_set m3
[ "$(ag_spool_depth)" = 2 ] || tb_fail "spool holds $(ag_spool_depth) messages, bound is 2"
counter_is rejected 1 || tb_fail "the 503 was not counted as rejected"
ag_receive "$TB_DIR/got-m" 2 5 || tb_fail "the two spooled messages were not delivered"
ag_send_iwf m4 200 || tb_fail "not answered 200 once the spool had room again"
ag_receive "$TB_DIR/got-m4" 1 5 || tb_fail "message 4 not delivered"
tb_log "spool-max-messages 2: third message 503 Retry-After $(tb_value "$TB_DIR/m3.out" retry_after); room again after the ACKs"
ag_stop

# --- spool-max-bytes = 1000
ag_write_config tcp "[delivery]" "spool-max-bytes = 1000"
ag_start
head -c 600 /dev/urandom >"$TB_DIR/600.bin"
head -c 300 /dev/urandom >"$TB_DIR/300.bin"
ag_send_iwf b1 200 --payload-file "$TB_DIR/600.bin" || tb_fail "600 bytes in an empty spool of 1000: not 200"
ag_send_iwf b2 503 --payload-file "$TB_DIR/600.bin" || tb_fail "600 more bytes past 1000: not 503"
retry_after_set b2
ag_send_iwf b3 200 --payload-file "$TB_DIR/300.bin" || tb_fail "300 more bytes (900 of 1000): not 200"
[ "$(ag_status_field spool.bytes)" = 900 ] || tb_fail "spool holds $(ag_status_field spool.bytes) bytes, expected 900"
ag_receive "$TB_DIR/got-b" 2 5 || tb_fail "the spooled messages were not delivered"
tb_log "spool-max-bytes 1000: 600 + 600 -> 503 with Retry-After; 600 + 300 fit"
ag_stop

# --- message-ttl = 2: expired, counted, logged, not delivered
ag_write_config tcp "[delivery]" "message-ttl = 2"
ag_start
ag_send_iwf ttl 200 --lmr-type TETRA || tb_fail "message not answered 200"
[ "$(ag_spool_depth)" = 1 ] || tb_fail "message not in the spool"
tb_wait_for 8 counter_is expired 1 || tb_fail "message not expired 8 s after a 2 s TTL"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "expired message still in the spool"
tb_assert_grep "$AG_LOG" "message [0-9]+.*expired" "the agent log does not report the expiry"
mkdir -p "$TB_DIR/got-ttl"
ag_ctl receive --lmr-type '*' --count 1 --timeout 2 --output "$TB_DIR/got-ttl" >"$TB_DIR/ttl-recv.out" 2>&1
rc=$?
[ "$rc" = 4 ] || tb_fail "receive after the expiry: exit $rc, expected 4 (nothing to deliver)"
[ -z "$(ls -A "$TB_DIR/got-ttl" 2>/dev/null)" ] || tb_fail "an expired message was delivered"
counter_is delivered 0 || tb_fail "an expired message was delivered"
tb_log "message-ttl 2: expired and counted ($(grep -cE 'message [0-9]+.*expired' "$AG_LOG") log line), never delivered"

# --- a message that expires while the agent is down is reported at start
ag_send_iwf ttl-down 200 --lmr-type TETRA || tb_fail "message not answered 200"
ag_stop
sleep 3
ag_start
tb_wait_for 3 counter_is expired 1 || tb_fail "a message expired while the agent was down is not counted"
[ "$(grep -cE 'message [0-9]+.*expired' "$AG_LOG")" = 2 ] ||
	tb_fail "a message expired while the agent was down is not in the log"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "the message expired while down is still spooled"
tb_log "a message that expired while the agent was down: counted and logged at start"
ag_stop
tb_pass
