#!/usr/bin/env bash
# Issue 5: the MC service server (Kamailio) goes away and comes back on the
# same port.  The agent notices the lost connection, reports "failed" with
# the last status and the next retry time in status and as monitor events,
# keeps retrying, and is registered again within 10 s of the restart, with
# no restart of the agent; messages reach it again.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-server-restart
ag_setup
ag_start
port=$TB_KAM_PORT
agent_pid=$AG_PID
ag_ctl monitor --json >"$TB_DIR/monitor.out" 2>"$TB_DIR/monitor.err" &
monitor_pid=$!
tb_track_pid "$monitor_pid" "lmrsecctl monitor"
sleep 0.3

tb_stop_kamailio
ag_wait_state failed 5 || tb_fail "agent did not notice the server went away (state: $(ag_state))"
tb_log "status while the server is down: $(ag_status_field registration.last_status) $(ag_status_field registration.last_reason)"
# A retry is always pending while failed (retry-max 2 s in this config).
retry_seen=
for _ in 1 2 3 4 5 6 7 8 9 10; do
	if [ "$(ag_state)" = failed ] && [ "$(ag_status_field registration.next_retry)" -ge 1 ]; then
		retry_seen=yes
		break
	fi
	sleep 0.2
done
[ -n "$retry_seen" ] || tb_fail "status never showed a next retry time while failed"
sleep 3  # a few attempts against the closed port
tb_pid_alive "$agent_pid" || tb_fail "agent died while the server was down"

tb_start_kamailio --users "alice:alice-pw bob:bob-pw" --iwf-addr 127.0.0.1:9 \
	--iwf-transport udp --port "$port"
t0=${EPOCHREALTIME/[.,]/}
ag_wait_state registered 10 || tb_fail "not registered again within 10 s of the server restart"
ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
[ "$AG_PID" = "$agent_pid" ] && tb_pid_alive "$agent_pid" || tb_fail "the agent was restarted"
tb_log "registered again ${ms} ms after the server came back (same agent, pid $agent_pid)"
[ "$(ag_status_field registration.last_status)" = 200 ] || tb_fail "last_status is not 200"
ag_send_iwf after-restart 200 || tb_fail "the server cannot reach the agent after its restart"

# The monitor saw it all: registered -> failed ... -> registered.
sleep 0.3
python3 - "$TB_DIR/monitor.out" <<'PY' || tb_fail "monitor events do not show the registration changes"
import json, sys
states = []
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("event") == "registration":
        states.append((ev.get("state"), ev.get("sip_status")))
print("# monitor registration events:", states)
names = [s for s, _ in states]
assert "failed" in names, names
last_fail = max(i for i, s in enumerate(names) if s == "failed")
assert "registered" in names[last_fail:], names
PY
ag_stop
tb_pass
