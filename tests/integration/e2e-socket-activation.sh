#!/usr/bin/env bash
# Issue 4, systemd socket activation: started by systemd-socket-activate
# (which binds the socket and execs the agent on the first connection with
# LISTEN_FDS=1, LISTEN_PID), the agent serves that socket — status and a key
# message work through it — creates no socket of its own, and leaves the
# socket file to its owner.  LISTEN_FDS=2 is
# refused at start; LISTEN_PID of another process is ignored.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_require systemd-socket-activate
tb_init e2e-socket-activation
ag_setup

CONFIG_SOCK=$AG_SOCK
ACT_SOCK=$AG_DIR/activated.sock
env_args=()
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
	[ -n "${!v:-}" ] && env_args+=(-E "$v")
done

systemd-socket-activate -l "$ACT_SOCK" "${env_args[@]}" \
	"$AG_AGENT" --config "$AG_CONF" --verbose >>"$AG_LOG" 2>&1 &
AG_PID=$!
tb_track_pid "$AG_PID" "systemd-socket-activate / lmrsec-agent"
tb_wait_for 5 test -S "$ACT_SOCK" || tb_fail "systemd-socket-activate did not listen"
[ "$(cat /proc/$AG_PID/comm)" != lmrsec-agent ] || tb_fail "the agent ran before the first connection"

# The first connection starts the agent, which serves it.
AG_SOCK=$ACT_SOCK
ag_ctl status --json >"$TB_DIR/first.json" 2>&1 || tb_fail "status through the activated socket failed: $(cat "$TB_DIR/first.json")"
[ "$(cat /proc/$AG_PID/comm)" = lmrsec-agent ] || tb_fail "pid $AG_PID is not the agent"
tb_log "first status through the activated socket: $(head -c 80 "$TB_DIR/first.json")..."
ag_wait_state registered 10 || tb_fail "agent did not register"
[ ! -e "$CONFIG_SOCK" ] || tb_fail "the agent bound its configured socket too"
tb_assert_grep "$AG_LOG" "listening on the socket from systemd" "the agent did not adopt the socket"
tb_assert_grep "$AG_LOG" "socket $ACT_SOCK, state" "the agent does not name the adopted socket"

ag_send_iwf key 200 || tb_fail "IWF message not answered 200"
ag_receive "$TB_DIR/recv" 1 5 || tb_fail "no delivery through the activated socket"
[ "$(sha256sum "$TB_DIR"/recv/*.bin | cut -d' ' -f1)" = "$(tb_value "$TB_DIR/key.out" payload_sha256)" ] ||
	tb_fail "other bytes through the activated socket"
ag_stop
[ -S "$ACT_SOCK" ] || tb_fail "the agent removed the socket file it did not create"
tb_log "served the activated socket; left it in place when stopping"

# LISTEN_FDS other than 1 for this process: one clear line, exit 1.
LISTEN_FDS=2 "$BASH" -c 'LISTEN_PID=$$ exec "$@"' sh "$AG_AGENT" --config "$AG_CONF" \
	>"$TB_DIR/two.out" 2>&1
rc=$?
[ "$rc" = 1 ] || tb_fail "LISTEN_FDS=2: exit $rc, not 1"
tb_assert_grep "$TB_DIR/two.out" 'LISTEN_FDS=2: socket activation must pass exactly one socket' \
	"no clear error for LISTEN_FDS=2"

# LISTEN_PID of another process: not ours, the agent binds its own socket.
AG_SOCK=$CONFIG_SOCK
LISTEN_PID=1 LISTEN_FDS=1 ag_start
[ -S "$CONFIG_SOCK" ] || tb_fail "the agent did not bind its configured socket"
ag_stop
tb_log "LISTEN_FDS=2 refused; LISTEN_PID of another process ignored"
tb_pass
