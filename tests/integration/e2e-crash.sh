#!/usr/bin/env bash
# Issue 3, test 4: the agent is killed with SIGKILL after its 200 OK and
# before any consumer took the message; restarted, it hands the message to
# the consumer. Nothing answered 200 is lost.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-crash
ag_setup
ag_start

for i in 1 2 3; do
	ag_send_iwf "key$i" 200 --lmr-type TETRA || tb_fail "message $i not answered 200"
done
[ "$(ag_spool_depth)" = 3 ] || tb_fail "3 messages not in the spool"
ag_kill9
ag_start
[ "$(ag_spool_depth)" = 3 ] || tb_fail "spool lost messages across SIGKILL"
ag_receive "$TB_DIR/got" 3 5 || tb_fail "consumer did not get 3 messages after restart"
for i in 1 2 3; do
	want=$(tb_value "$TB_DIR/key$i.out" payload_sha256)
	sha256sum "$TB_DIR"/got/*.bin | grep -q "^$want " ||
		tb_fail "message $i (sha256 $want) lost across the crash"
done
# Arrival order survives the restart: ids increase with the send order.
ids=$(ls "$TB_DIR/got" | sed 's/\.bin$//' | sort -n | tr '\n' ' ')
first=$(sha256sum "$TB_DIR/got/$(echo "$ids" | cut -d' ' -f1).bin" | cut -d' ' -f1)
[ "$first" = "$(tb_value "$TB_DIR/key1.out" payload_sha256)" ] || tb_fail "arrival order lost"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after ACKs"
tb_log "all 3 messages answered 200 before SIGKILL were delivered after restart"
ag_stop
tb_pass
