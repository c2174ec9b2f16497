#!/usr/bin/env bash
# Issue 5: password-source = secret-service, against a real gnome-keyring on
# a private session bus (dbus-run-session, no service activation) with a
# temporary HOME.
#  1. `lmrsecctl credentials set` stores it: from a terminal without echo
#     (asked twice), or from stdin; the agent registers with it.
#  2. `credentials clear` removes it (a second clear says nothing was
#     there); the agent then refuses to start: nothing stored, naming the
#     other sources.
#  3. The keyring locked: the agent says so.
#  4. The keyring hangs (SIGSTOP): the agent gives up after 5 s, says so.
#  5. No Secret Service on the bus, and no session bus at all: a clear error
#     within 2 s, from the agent and from lmrsecctl.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-secret-service
tb_require dbus-run-session gnome-keyring-daemon dbus-send secret-tool
ag_setup
sed -i 's|^password-source = .*|password-source = secret-service|' "$AG_CONF"

# --- a private session bus: no .service files, so nothing is activated
bus=$TB_DIR/bus
mkdir -p "$bus" "$TB_DIR/home"
cat >"$bus/session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=$bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
# The session lasts as long as its child, a sleep that tells its pid and the
# bus address; stopping the sleep (first, being tracked last) ends it all.
dbus-run-session --config-file="$bus/session.conf" -- \
	sh -c 'echo $$ >"$1.pid" && echo "$DBUS_SESSION_BUS_ADDRESS" >"$1.tmp" &&
		mv "$1.tmp" "$1" && exec sleep 600' sh "$bus/address" >"$TB_DIR/dbus.log" 2>&1 &
tb_track_pid $! dbus-run-session
tb_wait_for 5 test -s "$bus/address" || tb_fail "dbus-run-session did not start"
tb_track_pid "$(cat "$bus/address.pid")" "session bus holder"
DBUS_SESSION_BUS_ADDRESS=$(cat "$bus/address")
export DBUS_SESSION_BUS_ADDRESS
tb_log "session bus $DBUS_SESSION_BUS_ADDRESS"

secrets_owned() {
	dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
		org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
		grep -q 'boolean true'
}
# gnome-keyring with a fresh login keyring, unlocked by the password on stdin
printf 'keyring-pw' | HOME=$TB_DIR/home gnome-keyring-daemon --foreground --unlock \
	--components=secrets >"$TB_DIR/gnome-keyring.log" 2>&1 &
keyring=$!
tb_track_pid "$keyring" gnome-keyring-daemon
tb_wait_for 5 secrets_owned || tb_fail "gnome-keyring did not take org.freedesktop.secrets"
tb_log "gnome-keyring-daemon (pid $keyring) serves the Secret Service, HOME=$TB_DIR/home"

# ag_refused NAME: the agent must exit 1 at start; its stderr in NAME.err, ms in $ms
ag_refused() {
	local t0 rc
	t0=${EPOCHREALTIME/[.,]/}
	"$AG_AGENT" --config "$AG_CONF" >/dev/null 2>"$TB_DIR/$1.err"
	rc=$?
	ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
	[ "$rc" -eq 1 ] || tb_fail "$1: the agent exited $rc, expected 1: $(cat "$TB_DIR/$1.err")"
}
names_fallbacks() {
	grep -q "password-source = credential" "$TB_DIR/$1.err" && grep -q "file:PATH" "$TB_DIR/$1.err" ||
		tb_fail "$1: the error does not name the other sources: $(cat "$TB_DIR/$1.err")"
}

# --- 1. set from a terminal: no echo, asked twice; stored as typed
python3 - "$AG_CTL" "$AG_CONF" <<'PY' >"$TB_DIR/tty.out" 2>&1 || tb_fail "credentials set on a terminal: $(cat "$TB_DIR/tty.out")"
import os, pty, select, sys, time
ctl, conf = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(ctl, [ctl, "credentials", "set", "--config", conf])
seen = b""
def until(text, secs=10):
    global seen
    end = time.time() + secs
    while text not in seen:
        left = end - time.time()
        assert left > 0, "no %r in %r" % (text, seen)
        if select.select([fd], [], [], left)[0]:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
until(b"SIP password for alice: ")
os.write(fd, b"typed-pw\n")
until(b"The same again: ")
os.write(fd, b"typed-pw\n")
until(b"stored the SIP password")
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0, seen
assert b"typed-pw" not in seen, "the password was echoed: %r" % seen
print("# terminal:", seen.decode(errors="replace").replace("\r\n", " | "))
PY
sed 's/^/  /' "$TB_DIR/tty.out"
stored=$(secret-tool lookup xdg:schema org.lmrsec.SipPassword mc-service-id "$AG_ID" username alice)
[ "$stored" = typed-pw ] || tb_fail "the Secret Service holds '$stored', not what was typed"
tb_log "credentials set on a terminal: no echo, asked twice, stored as typed"

# --- 1b. set from stdin, then the agent registers with it
echo alice-pw | ag_ctl credentials set --config "$AG_CONF" >"$TB_DIR/set.out" 2>&1 ||
	tb_fail "credentials set failed: $(cat "$TB_DIR/set.out")"
tb_log "$(cat "$TB_DIR/set.out")"
ag_start
[ "$(ag_status_field registration.last_status)" = 200 ] || tb_fail "not registered with 200"
ag_stop
tb_log "the agent registered with the password from the Secret Service"

# --- 2. clear: nothing stored any more, the agent says so
ag_ctl credentials clear --config "$AG_CONF" >"$TB_DIR/clear.out" 2>&1 ||
	tb_fail "credentials clear failed: $(cat "$TB_DIR/clear.out")"
ag_ctl credentials clear --config "$AG_CONF" >"$TB_DIR/clear2.out" 2>&1
[ $? -eq 1 ] || tb_fail "a second clear did not exit 1"
grep -q "no SIP password stored" "$TB_DIR/clear2.out" || tb_fail "second clear: $(cat "$TB_DIR/clear2.out")"
ag_refused cleared
grep -q 'secret-service: no SIP password stored in the Secret Service for sip:alice@mc.test (user alice)' \
	"$TB_DIR/cleared.err" || tb_fail "no clear error once cleared: $(cat "$TB_DIR/cleared.err")"
names_fallbacks cleared
[ "$(grep -c . "$TB_DIR/cleared.err")" -eq 1 ] || tb_fail "the error is not one line: $(cat "$TB_DIR/cleared.err")"
tb_log "cleared: $(cat "$TB_DIR/cleared.err")"

# --- 3. locked
echo alice-pw | ag_ctl credentials set --config "$AG_CONF" >/dev/null 2>&1 || tb_fail "set again failed"
dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
	org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login \
	>"$TB_DIR/lock.out" 2>&1 || tb_fail "cannot lock the keyring: $(cat "$TB_DIR/lock.out")"
ag_refused locked
grep -q "secret-service: .*is locked" "$TB_DIR/locked.err" || tb_fail "no 'locked' error: $(cat "$TB_DIR/locked.err")"
names_fallbacks locked
tb_log "locked: $(cat "$TB_DIR/locked.err")"

# --- 4. a Secret Service that does not answer: bounded
kill -STOP "$keyring"
ag_refused hung
kill -CONT "$keyring"
grep -q "did not answer within 5 s" "$TB_DIR/hung.err" || tb_fail "no timeout error: $(cat "$TB_DIR/hung.err")"
[ "$ms" -lt 8000 ] || tb_fail "a hanging Secret Service held the agent $ms ms"
tb_log "hanging service: gave up after $ms ms"

# --- 5. no Secret Service on the bus; no session bus at all
dbus-run-session --config-file="$bus/session.conf" -- \
	"$AG_AGENT" --config "$AG_CONF" >/dev/null 2>"$TB_DIR/no-service.err" &
pid=$!
tb_track_pid "$pid" "agent on an empty bus"
t0=${EPOCHREALTIME/[.,]/}
tb_wait_pid "$pid" 5
rc=$?
ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
[ "$rc" -eq 1 ] || tb_fail "on a bus without Secret Service the agent exited $rc: $(cat "$TB_DIR/no-service.err")"
[ "$ms" -lt 2000 ] || tb_fail "the error took $ms ms (more than 2 s)"
grep -q "no Secret Service on the D-Bus session bus" "$TB_DIR/no-service.err" ||
	tb_fail "no clear error without Secret Service: $(cat "$TB_DIR/no-service.err")"
cp "$TB_DIR/no-service.err" "$TB_DIR/no-service-agent.err"
names_fallbacks no-service-agent
tb_log "no Secret Service ($ms ms): $(grep secret-service "$TB_DIR/no-service.err")"

t0=${EPOCHREALTIME/[.,]/}
env -u DBUS_SESSION_BUS_ADDRESS -u DISPLAY "$AG_AGENT" --config "$AG_CONF" >/dev/null 2>"$TB_DIR/no-bus.err"
rc=$?
ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
[ "$rc" -eq 1 ] && [ "$ms" -lt 2000 ] || tb_fail "without a session bus: exit $rc after $ms ms"
grep -q "secret-service: no D-Bus session bus" "$TB_DIR/no-bus.err" ||
	tb_fail "no clear error without a session bus: $(cat "$TB_DIR/no-bus.err")"
tb_log "no session bus ($ms ms): $(grep secret-service "$TB_DIR/no-bus.err")"

dbus-run-session --config-file="$bus/session.conf" -- \
	sh -c 'echo pw | "$1" credentials set --config "$2"' sh "$AG_CTL" "$AG_CONF" \
	>"$TB_DIR/ctl-no-service.out" 2>&1
[ $? -eq 1 ] || tb_fail "credentials set without Secret Service did not exit 1"
grep -q "no Secret Service on the D-Bus session bus" "$TB_DIR/ctl-no-service.out" ||
	tb_fail "lmrsecctl: $(cat "$TB_DIR/ctl-no-service.out")"
tb_log "lmrsecctl without Secret Service: $(grep lmrsecctl "$TB_DIR/ctl-no-service.out")"
tb_pass
