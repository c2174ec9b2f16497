#!/usr/bin/env bash
# Issue 6, sd_notify: the real agent, given $NOTIFY_SOCKET and
# $WATCHDOG_USEC as systemd would (Type=notify, WatchdogSec=), sends READY=1,
# STATUS= lines that follow its registration (registering, then
# registered), WATCHDOG=1 at half the interval, and
# RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM -- to a datagram socket this test binds.  It also
# takes its state directory from $STATE_DIRECTORY (StateDirectory=) when the
# configuration names none.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-notify
ag_setup

# The "service manager": one line per datagram, its newlines shown as '|'.
notify=$TB_DIR/notify.sock
"$TB_PYTHON" - "$notify" "$TB_DIR/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(65536).decode().replace("\n", "|") + "\n")
EOF
tb_track_pid $! notify-listener
tb_wait_for 5 test -S "$notify" || tb_fail "the notify listener did not start"

# No [paths] state-dir: $STATE_DIRECTORY decides.
grep -v '^state-dir = ' "$AG_CONF" >"$AG_CONF.new" && mv "$AG_CONF.new" "$AG_CONF"
export STATE_DIRECTORY=$TB_DIR/systemd-state
export NOTIFY_SOCKET=$notify WATCHDOG_USEC=1000000
ag_start
unset NOTIFY_SOCKET WATCHDOG_USEC STATE_DIRECTORY

got() { grep -qx -- "$1" "$TB_DIR/notify.log" 2>/dev/null; }
tb_wait_for 5 got 'READY=1' || tb_fail "no READY=1"
tb_wait_for 5 got 'STATUS=registration: registered (last answer 200 OK)' ||
	tb_fail "no STATUS for the registration"
[ -f "$TB_DIR/systemd-state/spool.db" ] || tb_fail "the spool is not in \$STATE_DIRECTORY"
sleep 1.6
pings=$(grep -cx 'WATCHDOG=1' "$TB_DIR/notify.log")
[ "$pings" -ge 3 ] || tb_fail "$pings WATCHDOG=1 in 1.6 s with WATCHDOG_USEC=1000000 (want one every 0.5 s)"
tb_log "READY, STATUS registered, $pings watchdog pings"

# The STATUS lines follow the registration's changes, in order.
first_registering=$(grep -n '^STATUS=registration: registering' "$TB_DIR/notify.log" | head -n 1 | cut -d: -f1)
first_registered=$(grep -n '^STATUS=registration: registered' "$TB_DIR/notify.log" | head -n 1 | cut -d: -f1)
[ -n "$first_registering" ] && [ "$first_registering" -lt "$first_registered" ] ||
	tb_fail "no STATUS registering before registered: $(grep '^STATUS' "$TB_DIR/notify.log" | tr '\n' ' ')"
tb_log "STATUS lines: $(grep '^STATUS=' "$TB_DIR/notify.log" | cut -d= -f2- | tr '\n' ';')"

# SIGHUP (ExecReload=): RELOADING=1 with a CLOCK_MONOTONIC stamp, then READY=1.
kill -HUP "$AG_PID"
reloading() { grep -q '^RELOADING=1|MONOTONIC_USEC=[0-9]\+$' "$TB_DIR/notify.log"; }
tb_wait_for 5 reloading || tb_fail "no RELOADING=1 with MONOTONIC_USEC on SIGHUP"
ready_after() {
	local r
	r=$(grep -n '^RELOADING=1' "$TB_DIR/notify.log" | head -n 1 | cut -d: -f1)
	grep -n '^READY=1$' "$TB_DIR/notify.log" | cut -d: -f1 | awk -v r="$r" '$1 > r { f = 1 } END { exit !f }'
}
tb_wait_for 5 ready_after || tb_fail "no READY=1 after RELOADING=1"
tb_log "SIGHUP: RELOADING=1, then READY=1"

kill -TERM "$AG_PID"
tb_wait_pid "$AG_PID" 15 || tb_fail "the agent did not stop cleanly"
got 'STOPPING=1' || tb_fail "no STOPPING=1 on SIGTERM"
[ "$(head -n 1 "$TB_DIR/notify.log" | cut -c1-7)" != 'STOPPIN' ] || tb_fail "STOPPING=1 came first"
tb_log "STOPPING=1 on SIGTERM"
tb_pass
