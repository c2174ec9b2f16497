#!/usr/bin/env bash
# Issue 5: the registrar wants a longer registration than the agent asks
# (Kamailio min_expires 120 s, the agent asks 60 s): it answers 423 with
# Min-Expires: 120, the next REGISTER asks 120 s and succeeds, and every
# later REGISTER (here after the server restarted) asks 120 s at once,
# without another 423.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-min-expires
ag_setup --kamailio "--min-expires 120"
ag_start
# Expires of each authenticated REGISTER, in order, as Kamailio saw them.
asks() {
	sed -n "s/.*registrar: REGISTER from $AG_ID asks expires \\([0-9]*\\).*/\\1/p" "$TB_KAM_LOG" |
		tr '\n' ' ' | sed 's/ $//'
}
[ "$(asks)" = "60 120" ] || tb_fail "REGISTERs asked '$(asks)', expected '60 120' (423 then Min-Expires)"
tb_assert_grep "$AG_LOG" "423, the registrar wants at least 120 s" "the agent did not note the 423"
exp=$(ag_status_field registration.expires_in)
[ "$exp" -gt 60 ] && [ "$exp" -le 120 ] || tb_fail "status shows expires_in=$exp, expected 61..120"
tb_log "first REGISTER asked 60 s, got 423, the next asked 120 s (expires in $exp s)"

port=$TB_KAM_PORT
tb_stop_kamailio
ag_wait_state failed 5 || tb_fail "agent did not notice the server went away"
tb_start_kamailio --users "alice:alice-pw bob:bob-pw" --iwf-addr 127.0.0.1:9 \
	--iwf-transport udp --port "$port" --min-expires 120
ag_wait_state registered 10 || tb_fail "not registered again"
[ "$(asks)" = 120 ] || tb_fail "after the restart REGISTERs asked '$(asks)', expected '120' only"
tb_log "the next REGISTER asked 120 s directly"
ag_stop
tb_pass
