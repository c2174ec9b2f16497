#!/usr/bin/env bash
# Issue 4, peer credentials: a second local user made by the test runs
# lmrsecctl against the agent (which runs as root).  Not allowed: its
# connection is closed without a byte and the agent logs it; named in
# allowed-users, or in a group named in allowed-groups: served.  Without
# either list the socket keeps mode 0660 and the user cannot even connect.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
[ "$(id -u)" = 0 ] || tb_skip "needs root to create a second user (useradd) and run as it"
tb_require useradd userdel setpriv
tb_init e2e-peers

TEST_USER=lmrsec-test-$$
created=
remove_user() {
	[ -n "$created" ] && userdel "$TEST_USER" >/dev/null 2>&1
	created=
}
trap 'rc=$?; remove_user; tb__cleanup $rc' EXIT
useradd -M -r -U -s /usr/sbin/nologin -d /nonexistent "$TEST_USER" ||
	tb_skip "useradd $TEST_USER failed"
created=1
uid=$(id -u "$TEST_USER")
tb_log "created user $TEST_USER (uid $uid)"

ag_setup
# The user must be able to walk to the socket; the agent decides the rest.
chmod 0711 "$TB_DIR" "$AG_DIR"
as_user() { setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups "$@"; }
as_user test -x "$AG_CTL" || tb_skip "$AG_CTL is not reachable by another user (build tree permissions)"
user_status() { as_user "$AG_CTL" --socket "$AG_SOCK" status --json; }

# --- no allowed lists: 0660 socket, the user is stopped by the file mode
ag_start
[ "$(stat -c %a "$AG_SOCK")" = 660 ] || tb_fail "socket mode $(stat -c %a "$AG_SOCK"), not 660"
user_status >"$TB_DIR/default.out" 2>&1 && tb_fail "an unlisted user got a status through a 0660 socket"
tb_assert_grep "$TB_DIR/default.out" 'permission denied' "no EACCES for the unlisted user"
tb_log "default: socket 0660, $TEST_USER gets: $(cat "$TB_DIR/default.out")"
ag_stop

# --- allowed-users names someone else: the socket opens, the check refuses
ag_write_config tcp "[socket]" "allowed-users = nobody"
ag_start
[ "$(stat -c %a "$AG_SOCK")" = 666 ] || tb_fail "socket mode $(stat -c %a "$AG_SOCK"), not 666"
before=$(grep -c "refused a connection from pid [0-9]* uid $uid " "$AG_LOG")
user_status >"$TB_DIR/refused.out" 2>&1
rc=$?
[ "$rc" = 3 ] || tb_fail "refused user: lmrsecctl exited $rc, not 3 ($(cat "$TB_DIR/refused.out"))"
tb_assert_grep "$TB_DIR/refused.out" 'the agent closed the connection' "refused user not told the connection was closed"
after=$(grep -c "refused a connection from pid [0-9]* uid $uid " "$AG_LOG")
[ "$after" -gt "$before" ] || tb_fail "no agent log line for uid $uid"
grep -q "connection [0-9]* from pid [0-9]* uid $uid\$" "$AG_LOG" && tb_fail "the refused peer was served"
# Not even a byte: a raw HELLO gets no answer, just the end of the stream.
as_user "$TB_PYTHON" - "$AG_SOCK" <<'PY' || tb_fail "the refused peer got bytes back"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
body = bytes([1]) + struct.pack(">I", 1) + bytes([1]) + struct.pack(">II", 4, 1) + bytes([2]) + struct.pack(">II", 4, 1)
try:
    s.sendall(struct.pack(">I", len(body)) + body)
except OSError:
    pass
try:
    data = s.recv(100)
except ConnectionResetError:
    data = b""
sys.exit(1 if data else 0)
PY
tb_log "not allowed: closed before any data, logged: $(grep "uid $uid " "$AG_LOG" | tail -n 1)"
ag_stop

# --- allowed-users names the user: served
ag_write_config tcp "[socket]" "allowed-users = $TEST_USER"
ag_start
user_status >"$TB_DIR/user.json" 2>&1 || tb_fail "allowed user refused: $(cat "$TB_DIR/user.json")"
grep -q '"state":"registered"' "$TB_DIR/user.json" || tb_fail "allowed user got no status"
tb_log "allowed-users = $TEST_USER: served"
ag_stop

# --- allowed-groups names the user's group: served
ag_write_config tcp "[socket]" "allowed-groups = $TEST_USER"
ag_start
user_status >"$TB_DIR/group.json" 2>&1 || tb_fail "user of an allowed group refused: $(cat "$TB_DIR/group.json")"
tb_log "allowed-groups = $TEST_USER: served"
ag_stop
tb_pass
