#!/usr/bin/env bash
# Issue 3, test 1 (+ SIGTERM): the agent registers with digest auth, its
# Contact carries the MCPTT feature tags and the stored instance UUID, status
# says "registered"; SIGTERM unregisters (Kamailio forgets the contact) and
# the agent exits 0.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-register
ag_setup
ag_start

[ "$(ag_status_field registration.state)" = registered ] || tb_fail "status is not registered"
[ "$(ag_status_field registration.aor)" = "$AG_ID" ] || tb_fail "status shows the wrong AoR"
[ "$(ag_status_field registration.last_status)" = 200 ] || tb_fail "last REGISTER status is not 200"
tb_assert_grep "$AG_LOG" "challenged for realm \"mc.test\", answering as alice" "the agent never answered a digest challenge"
tb_log "status --json: registered as $AG_ID"

uuid=$(cat "$AG_STATE/instance-id")
tb_assert_grep "$TB_KAM_LOG" "registered contact .*\\+g\\.3gpp\\.mcptt" "Contact lacks +g.3gpp.mcptt"
tb_assert_grep "$TB_KAM_LOG" 'icsi-ref="urn%3Aurn-7%3A3gpp-service\.ims\.icsi\.mcptt"' "Contact lacks icsi-ref"
tb_assert_grep "$TB_KAM_LOG" "\\+sip\\.instance=\"<urn:uuid:$uuid>\"" "Contact lacks the stored instance UUID"
[ "$(stat -c %a "$AG_STATE/instance-id")" = 600 ] || tb_fail "instance-id is not mode 0600"
tb_log "Contact has the feature tags and instance $uuid"

# A second agent on the same state directory, or on the same socket, refuses to start.
"$AG_AGENT" --config "$AG_CONF" --socket "$TB_DIR/other.sock" >/dev/null 2>"$TB_DIR/second.err"
[ $? -eq 1 ] || tb_fail "a second agent on the same state directory did not exit 1"
tb_assert_grep "$TB_DIR/second.err" "another lmrsec-agent is using this state directory" "no clear refusal (state dir)"
sed "s|^state-dir = .*|state-dir = $TB_DIR/other-state|" "$AG_CONF" >"$TB_DIR/other.conf"
"$AG_AGENT" --config "$TB_DIR/other.conf" >/dev/null 2>"$TB_DIR/third.err"
[ $? -eq 1 ] || tb_fail "a second agent on the same socket did not exit 1"
tb_assert_grep "$TB_DIR/third.err" "already listening on $AG_SOCK" "no clear refusal (socket)"
[ "$(ag_state)" = registered ] || tb_fail "the first agent suffered from the refused ones"
tb_log "second agents refused: $(cat "$TB_DIR/second.err") / $(cat "$TB_DIR/third.err")"

# Reached through Kamailio while registered...
ag_send_iwf reg-msg 200
ag_stop
# ...and not any more: the un-REGISTER removed the contact (expires was 60 s).
ag_send_iwf unreg-msg 404
tb_log "after SIGTERM Kamailio no longer has a contact for alice"

# The instance UUID survives a restart.
ag_start
ag_stop
[ "$(cat "$AG_STATE/instance-id")" = "$uuid" ] || tb_fail "instance UUID changed across restart"
tb_assert_grep "$TB_KAM_LOG" "\\+sip\\.instance=\"<urn:uuid:$uuid>\"" "instance UUID not reused"
tb_pass
