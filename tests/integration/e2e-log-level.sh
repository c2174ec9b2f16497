#!/usr/bin/env bash
# Issue 6, operator debugging: `lmrsecctl log-level LEVEL` changes the
# agent's verbosity at run time.  The agent starts at debug (--verbose);
# at warning its debug and message lines stop, at debug they are back;
# the change is logged and printed (previous and new level); a SIGHUP
# reload keeps it; an unknown level is a usage error (exit 2) and changes
# nothing.  A second local user allowed on the socket may ask for the
# level but may neither change it nor trace (exit 1, agent unchanged).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-log-level
ag_setup
ag_start

debug_lines() { grep -c 'connection [0-9]* closed' "$AG_LOG"; }
one_status() { ag_ctl status >/dev/null || tb_fail "status failed"; }

out=$(ag_ctl log-level) || tb_fail "log-level (ask) failed"
[ "$out" = "log level debug" ] || tb_fail "agent with --verbose: '$out', not debug"

out=$(ag_ctl log-level warning) || tb_fail "log-level warning failed"
[ "$out" = "log level warning (was debug)" ] || tb_fail "log-level warning printed '$out'"
tb_assert_grep "$AG_LOG" "log level warning \\(was debug\\), set by connection [0-9]+ \\(pid [0-9]+, uid $(id -u)\\)" \
	"the change to warning is not logged"
one_status
sleep 0.5
before=$(debug_lines)
for _ in 1 2 3; do one_status; done
sleep 0.5
[ "$(debug_lines)" -eq "$before" ] || tb_fail "debug lines still logged at warning"

out=$(ag_ctl log-level --json debug) || tb_fail "log-level debug failed"
[ "$out" = '{"level":"debug","previous":"warning"}' ] || tb_fail "log-level --json printed '$out'"
before=$(debug_lines)
one_status
tb_wait_for 5 eval '[ "$(debug_lines)" -gt '"$before"' ]' || tb_fail "no debug lines back at debug"
tb_log "debug -> warning silenced the debug lines, debug brought them back"

# unknown level: usage error, nothing changes
ag_ctl log-level verbose >"$TB_DIR/bad.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || tb_fail "unknown level: exit $rc, not 2"
tb_assert_grep "$TB_DIR/bad.out" "unknown log level 'verbose'" "no clear error for an unknown level"
[ "$(ag_ctl log-level)" = "log level debug" ] || tb_fail "an unknown level changed the agent's level"

# SIGHUP keeps the level set at run time
ag_ctl log-level info >/dev/null || tb_fail "log-level info failed"
reloads() { grep -c 'SIGHUP: .* applied' "$AG_LOG"; }
before=$(reloads)
kill -HUP "$AG_PID"
tb_wait_for 5 eval '[ "$(reloads)" -gt '"$before"' ]' || tb_fail "no reload logged after SIGHUP"
tb_pid_alive "$AG_PID" || tb_fail "agent died on SIGHUP"
[ "$(ag_ctl log-level)" = "log level info" ] || tb_fail "SIGHUP did not keep the run-time level"
ag_ctl log-level debug >/dev/null || tb_fail "log-level debug failed"
ag_stop

# --- another user, allowed on the socket, is no operator
if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null || ! command -v setpriv >/dev/null; then
	tb_log "not root (or no useradd/setpriv): the second-user part is not run"
	tb_pass
fi
TEST_USER=lmrsec-ll-$$
created=
remove_user() {
	[ -n "$created" ] && userdel "$TEST_USER" >/dev/null 2>&1
	created=
}
trap 'rc=$?; remove_user; tb__cleanup $rc' EXIT
useradd -M -r -U -s /usr/sbin/nologin -d /nonexistent "$TEST_USER" || tb_skip "useradd $TEST_USER failed"
created=1
chmod 0711 "$TB_DIR" "$AG_DIR"
as_user() { setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups "$@"; }
as_user test -x "$AG_CTL" || tb_skip "$AG_CTL is not reachable by another user (build tree permissions)"
ag_write_config tcp "[socket]" "allowed-users = $TEST_USER"
ag_start
out=$(as_user "$AG_CTL" --socket "$AG_SOCK" log-level) || tb_fail "the allowed user cannot ask the level"
[ "$out" = "log level debug" ] || tb_fail "the allowed user read '$out'"
as_user "$AG_CTL" --socket "$AG_SOCK" log-level warning >"$TB_DIR/user-set.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || tb_fail "another user setting the level: exit $rc, not 1"
tb_assert_grep "$TB_DIR/user-set.out" "for the agent's own user and root only" "no clear refusal"
[ "$(ag_ctl log-level)" = "log level debug" ] || tb_fail "another user changed the level"
as_user "$AG_CTL" --socket "$AG_SOCK" trace --timeout 2 >"$TB_DIR/user-trace.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || tb_fail "another user tracing: exit $rc, not 1"
tb_assert_grep "$TB_DIR/user-trace.out" "for the agent's own user and root only" "no clear trace refusal"
tb_log "another user: $(cat "$TB_DIR/user-set.out") / $(cat "$TB_DIR/user-trace.out")"
ag_stop
tb_pass
