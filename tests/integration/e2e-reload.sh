#!/usr/bin/env bash
# Issue 5: SIGHUP reloads the configuration.
#  1. an invalid file, or a password source that fails, keeps the running
#     configuration (one line naming the file and key), the agent stays
#     registered;
#  2. a socket change cannot apply live: it is reported, the socket stays
#     where it was, SIP is not touched (no new REGISTER);
#  3. an identity/auth change re-registers: alice's contact is removed,
#     bob's registered, and messages to bob are accepted.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-reload
ag_setup
ag_start
registrations() { grep -c "registrar: $1 registered contact" "$TB_KAM_LOG"; }
# hup: SIGHUP, then wait until the agent logged the outcome of this reload.
reloads() { grep -cE 'SIGHUP: .*(applied|keeping the running configuration)' "$AG_LOG"; }
hup() {
	local before
	before=$(reloads)
	kill -HUP "$AG_PID"
	tb_wait_for 5 eval '[ "$(reloads)" -gt '"$before"' ]' || tb_fail "no reload outcome logged after SIGHUP"
}
good=$TB_DIR/good.conf
cp "$AG_CONF" "$good"
alice_regs=$(registrations "$AG_ID")

# --- 1. invalid file: kept, one line names file and key
sed -i 's/^expires = .*/expires = 10/' "$AG_CONF"
hup
tb_assert_grep "$AG_LOG" "SIGHUP: $AG_CONF: \\[server\\] expires: .*keeping the running configuration" \
	"no line naming the file and key of the invalid configuration"
[ "$(grep -c "SIGHUP: $AG_CONF: \\[server\\] expires" "$AG_LOG")" -eq 1 ] || tb_fail "not exactly one line"
tb_pid_alive "$AG_PID" || tb_fail "agent died on an invalid configuration"
[ "$(ag_state)" = registered ] || tb_fail "agent left registered state on an invalid configuration"
tb_log "invalid file kept the running configuration: $(grep -o "SIGHUP: $AG_CONF: \[server\] expires.*" "$AG_LOG")"

# --- 1b. a password source that fails: kept as well
sed "s|^password-source = .*|password-source = file:$TB_DIR/no-such-file|" "$good" >"$AG_CONF"
hup
tb_assert_grep "$AG_LOG" "SIGHUP: $AG_CONF: $TB_DIR/no-such-file: cannot open password file: .*keeping the running configuration" \
	"no line saying the new password source fails"
[ "$(ag_state)" = registered ] || tb_fail "agent left registered state on a failing password source"

# --- 2. socket change: reported, not applied, SIP untouched
cp "$good" "$AG_CONF"
sed -i "s|^path = .*|path = $TB_DIR/elsewhere.sock|" "$AG_CONF"
hup
tb_assert_grep "$AG_LOG" "SIGHUP: $AG_CONF: \\[socket\\] path: changed, but it applies only at start" \
	"socket change not reported"
[ -S "$AG_SOCK" ] || tb_fail "the socket moved away from $AG_SOCK"
[ ! -e "$TB_DIR/elsewhere.sock" ] || tb_fail "a socket appeared at the new path (half-applied)"
[ "$(ag_state)" = registered ] || tb_fail "not registered after a socket-only change"
sleep 0.5
[ "$(registrations "$AG_ID")" -eq "$alice_regs" ] || tb_fail "a socket-only change re-registered"
tb_log "socket change reported and not applied; no REGISTER sent"

# --- 3. identity and auth change: re-register as bob
(umask 077 && echo bob-pw >"$AG_DIR/bob-password")
sed -e "s|^mc-service-id = .*|mc-service-id = sip:bob@$TB_KAM_DOMAIN|" \
	-e "s|^username = .*|username = bob|" \
	-e "s|^password-source = .*|password-source = file:$AG_DIR/bob-password|" "$good" >"$AG_CONF"
hup
tb_wait_for 10 eval '[ "$(registrations sip:bob@$TB_KAM_DOMAIN)" -ge 1 ]' || tb_fail "bob was not registered"
ag_wait_state registered 10 || tb_fail "not registered again after the identity change"
[ "$(ag_status_field registration.aor)" = "sip:bob@$TB_KAM_DOMAIN" ] || tb_fail "status still shows the old AoR"
tb_assert_grep "$AG_LOG" "registration: removed" "alice was not unregistered first"
tb_iwf_send to-bob --transport tcp --to "sip:bob@$TB_KAM_DOMAIN" --from "$AG_KMF" --expect 200 ||
	tb_fail "a message to bob was not accepted after the reload"
tb_iwf_send to-alice --transport tcp --to "$AG_ID" --from "$AG_KMF" --expect 404 ||
	tb_fail "alice is still registered after the reload"
tb_log "identity change: alice unregistered, bob registered and reachable"
ag_stop
tb_pass
