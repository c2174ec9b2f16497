#!/usr/bin/env bash
# Issue 3: the agent refreshes its registration before it expires. Kamailio
# grants at most 4 s (the agent asks for 60), so within 12 s the agent must
# have re-registered at least twice more and still be "registered", with an
# expiry in status no longer than what was granted.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-refresh
ag_setup --kamailio "--max-expires 4"
ag_start
registrations() { grep -c 'registrar: sip:alice@mc.test registered contact' "$TB_KAM_LOG"; }
first=$(registrations)
exp=$(ag_status_field registration.expires_in)
[ "$exp" -le 4 ] || tb_fail "status shows expires_in=$exp, Kamailio granted 4"
sleep 12
later=$(registrations)
[ "$later" -ge $((first + 2)) ] || tb_fail "only $first -> $later REGISTERs in 12 s with a 4 s expiry"
[ "$(ag_status_field registration.state)" = registered ] || tb_fail "registration lapsed"
tb_log "refreshed: $first -> $later REGISTERs in 12 s, still registered"
ag_stop
tb_pass
