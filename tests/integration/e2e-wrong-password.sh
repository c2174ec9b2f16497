#!/usr/bin/env bash
# Issue 3, test 8: a wrong SIP password leaves the agent up, in state
# "failed" with the SIP status in `status`, and it keeps retrying.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-wrong-password
ag_setup --password not-alice-pw
ag_start --no-wait
ag_wait_state failed 10 || tb_fail "agent did not report failed (state: $(ag_state))"
code=$(ag_status_field registration.last_status)
case $code in
401 | 403) tb_log "status shows last_status=$code ($(ag_status_field registration.last_reason))" ;;
*) tb_fail "last_status is $code, expected 401 or 403" ;;
esac
refused() { grep -c "auth: REGISTER from .* refused" "$TB_KAM_LOG"; }
first=$(refused)
sleep 4
later=$(refused)
[ "$later" -gt "$first" ] || tb_fail "no new REGISTER attempt in 4 s ($first -> $later)"
tb_pid_alive "$AG_PID" || tb_fail "agent died"
tb_log "agent alive and retrying: $first -> $later refused attempts"
ag_stop
tb_pass
