#!/usr/bin/env bash
# Issue 5: while the agent is not registered, a client-initiated send waits
# up to its timeout and then fails with "not registered": lmrsecctl exits 1
# and says so.  A send that is still waiting when the registration comes
# back goes out then and succeeds.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-not-registered
iwf_port=$(tb_free_port)
ag_setup --iwf-addr "127.0.0.1:$iwf_port"
ag_start
port=$TB_KAM_PORT
tb_stop_kamailio
ag_wait_state failed 5 || tb_fail "agent did not notice the server went away"

# --- waits its timeout (2 s), then "not registered", exit 1
printf 'key' >"$TB_DIR/key.bin"
t0=${EPOCHREALTIME/[.,]/}
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" --timeout 2 >"$TB_DIR/send1.out" 2>&1
rc=$?
ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
[ "$rc" -eq 1 ] || tb_fail "lmrsecctl send exited $rc while not registered, expected 1: $(cat "$TB_DIR/send1.out")"
grep -q "not registered" "$TB_DIR/send1.out" || tb_fail "no 'not registered' error: $(cat "$TB_DIR/send1.out")"
[ "$ms" -ge 1500 ] && [ "$ms" -lt 4000 ] || tb_fail "the send failed after $ms ms, expected its 2 s timeout"
tb_log "send while unregistered: exit 1 after $ms ms: $(head -n 1 "$TB_DIR/send1.out")"

# --- a send still waiting when the server comes back goes out
tb_sink_start iwf "$iwf_port" --status 200 --count 1 --timeout 30
sink_pid=$TB_LAST_PID
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" --timeout 15 >"$TB_DIR/send2.out" 2>&1 &
send_pid=$!
tb_track_pid "$send_pid" "lmrsecctl send (waiting)"
sleep 1
tb_pid_alive "$send_pid" || tb_fail "the send did not wait for the registration: $(cat "$TB_DIR/send2.out")"
tb_start_kamailio --users "alice:alice-pw bob:bob-pw" --iwf-addr "127.0.0.1:$iwf_port" \
	--iwf-transport udp --port "$port"
ag_wait_state registered 10 || tb_fail "not registered again"
tb_wait_pid "$send_pid" 10
rc=$?
[ "$rc" -eq 0 ] || tb_fail "the waiting send exited $rc after registration came back: $(cat "$TB_DIR/send2.out")"
tb_wait_pid "$sink_pid" 10 || tb_fail "the IWF did not get the MESSAGE"
tb_log "a waiting send went out once registered: $(head -n 1 "$TB_DIR/send2.out")"
ag_stop
tb_pass
