#!/usr/bin/env bash
# Issue 4, reconnect guidance: examples/reconnect (the pattern lmrsec.h
# documents) keeps consuming across an agent restart — it notices the lost
# connection, retries with backoff while the agent is away, subscribes
# again once it is back, and gets the message sent after the restart.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-reconnect
RECONNECT=$top_builddir/examples/reconnect
[ -x "$RECONNECT" ] || tb_fail "$RECONNECT not built"
ag_setup
ag_start

"$RECONNECT" --socket "$AG_SOCK" --count 2 TETRA >"$TB_DIR/reconnect.out" 2>&1 &
rpid=$!
tb_track_pid "$rpid" reconnect
tb_wait_for 5 grep -q '^connected' "$TB_DIR/reconnect.out" || tb_fail "reconnect did not connect"

ag_send_iwf before 200 || tb_fail "IWF message not answered 200"
tb_wait_for 5 grep -q '^received ' "$TB_DIR/reconnect.out" || tb_fail "first message not received"

ag_stop
tb_wait_for 5 grep -q '^connection lost: ' "$TB_DIR/reconnect.out" || tb_fail "lost connection not noticed"
tb_wait_for 5 grep -q '^cannot connect: .*; retrying in [0-9]* ms$' "$TB_DIR/reconnect.out" ||
	tb_fail "no retry while the agent was away"
sleep 1
ag_start
tb_wait_for 10 sh -c "[ \$(grep -c '^connected' '$TB_DIR/reconnect.out') -ge 2 ]" ||
	tb_fail "reconnect did not come back: $(cat "$TB_DIR/reconnect.out")"

head -c 512 /dev/urandom >"$TB_DIR/after.bin"
ag_send_iwf after 200 --payload-file "$TB_DIR/after.bin" || tb_fail "IWF message not answered 200"
tb_wait_pid "$rpid" 10 || tb_fail "reconnect did not finish: $(cat "$TB_DIR/reconnect.out")"
tb_assert_grep "$TB_DIR/reconnect.out" "^received id=[0-9]+ lmr-type=TETRA size=512 sha256=$(sha256sum "$TB_DIR/after.bin" | cut -d' ' -f1) \\(verified\\)\$" \
	"message after the restart not received"
# The delays grew while the agent was away.
delays=$(sed -n 's/^cannot connect: .*; retrying in \([0-9]*\) ms$/\1/p' "$TB_DIR/reconnect.out" | tr '\n' ' ')
tb_log "retry delays while the agent was away: $delays"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty"
ag_stop
tb_pass
