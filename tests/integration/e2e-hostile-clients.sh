#!/usr/bin/env bash
# Issue 4, hostile clients: garbage, an oversized length, half a frame then
# silence, no HELLO, requests never read, a burst over the connection cap —
# each such connection is closed (logged), quickly or after frame-timeout,
# while a consumer connected all along keeps working and 200 idle
# connections leave `status` answered within a second; memory stays bounded.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-hostile-clients
ag_setup
ag_write_config tcp "[socket]" "frame-timeout = 1" "max-connections = 230"
ag_start

RC=("$TB_PYTHON" "$top_srcdir/tests/integration/rawclient.py" --socket "$AG_SOCK")
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$AG_PID/status"; }
# field KEY "k=v k=v"  ->  v
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# lt A B  ->  true when the decimal A < B
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
log_count() { grep -c -- "$1" "$AG_LOG"; }

# A well-behaved consumer, connected through everything below.
[ -x "$AG_CONSUMER" ] || tb_fail "$AG_CONSUMER not built"
"$AG_CONSUMER" --socket "$AG_SOCK" --count 1 TETRA >"$TB_DIR/consumer.out" 2>&1 &
cpid=$!
tb_track_pid "$cpid" consumer
tb_wait_for 5 sh -c "'$AG_CTL' --socket '$AG_SOCK' status --json | grep -q '\"consumers\":\\[\"TETRA\"\\]'" ||
	tb_fail "the consumer did not subscribe"
rss0=$(rss)

# --- garbage: no frame length at all -> closed at once, nothing sent back
out=$("${RC[@]}" --limit 5 garbage)
[ "$(field closed "$out")" = 1 ] && lt "$(field after "$out")" 0.5 && [ "$(field replies "$out")" = 0 ] ||
	tb_fail "garbage: $out"
tb_log "garbage: $out"

# --- oversized length after a good HELLO -> closed at once, no reply
out=$("${RC[@]}" --limit 5 oversize)
[ "$(field closed "$out")" = 1 ] && lt "$(field after "$out")" 0.5 && [ "$(field replies "$out")" = 0 ] ||
	tb_fail "oversized length: $out"
tb_assert_grep "$AG_LOG" 'frame longer than 262144 bytes: closing' "no log line for the oversized frame"
tb_log "oversized length: $out"

# --- half a frame, then silence -> closed after frame-timeout (1 s)
out=$("${RC[@]}" --limit 5 half)
[ "$(field closed "$out")" = 1 ] && lt 0.8 "$(field after "$out")" && lt "$(field after "$out")" 3 ||
	tb_fail "half frame: $out"
tb_assert_grep "$AG_LOG" 'incomplete frame not finished within 1000 ms: closing' "no log line for the half frame"
tb_log "half frame then silence: $out"

# --- connected, never a HELLO -> closed after frame-timeout
out=$("${RC[@]}" --limit 5 silent)
[ "$(field closed "$out")" = 1 ] && lt 0.8 "$(field after "$out")" && lt "$(field after "$out")" 3 ||
	tb_fail "silent client: $out"
tb_assert_grep "$AG_LOG" 'no HELLO within 1000 ms: closing' "no log line for the silent client"
tb_log "no HELLO: $out"

# --- requests whose replies are never read -> closed at the output bound
out=$("${RC[@]}" --limit 20 flood)
[ "$(field closed "$out")" = 1 ] || tb_fail "flood: $out"
tb_assert_grep "$AG_LOG" 'stopped reading: .* bytes of output queued, closing it' "no log line for the flood"
tb_log "requests never read: $out"

ag_ctl status >/dev/null || tb_fail "status failed after the hostile clients"

# --- a burst over the cap: 300 at once, 230 allowed (1 is the consumer)
out=$("${RC[@]}" burst 300 --wait 2)
[ "$(field accepted "$out")" = 229 ] && [ "$(field eusers "$out")" = 71 ] &&
	lt "$(field slowest_refusal "$out")" 2 || tb_fail "burst over the cap: $out"
tb_assert_grep "$AG_LOG" 'connections already open' "no log line for the refused connections"
tb_log "300 at once with max-connections 230: $out"

# --- 200 idle connections: status within a second
"${RC[@]}" idle 200 >"$TB_DIR/idle.out" 2>&1 &
ipid=$!
tb_track_pid "$ipid" "200 idle connections"
tb_wait_for 20 grep -q '^open=200$' "$TB_DIR/idle.out" || tb_fail "200 idle connections not open: $(cat "$TB_DIR/idle.out")"
closings=$(log_count ': closing')
t0=${EPOCHREALTIME/[.,]/}
ag_ctl status >/dev/null || tb_fail "status failed with 200 idle connections"
ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
[ "$ms" -lt 1000 ] || tb_fail "status took $ms ms with 200 idle connections"
sleep 1.5	# past frame-timeout: idle between frames is no reason to close
[ "$(log_count ': closing')" = "$closings" ] || tb_fail "idle connections were closed"
tb_log "status answered in $ms ms with 200 idle connections open"
tb_stop_pid "$ipid" 2

# --- memory stayed bounded; the consumer still gets its message
rss1=$(rss)
[ $((rss1 - rss0)) -lt 65536 ] || tb_fail "agent RSS grew from $rss0 kB to $rss1 kB"
tb_log "agent RSS $rss0 kB before, $rss1 kB after"
ag_send_iwf after 200 || tb_fail "IWF message not answered 200"
tb_wait_pid "$cpid" 10 || tb_fail "the consumer did not get its message: $(cat "$TB_DIR/consumer.out")"
tb_assert_grep "$TB_DIR/consumer.out" '^received id=[0-9]+ lmr-type=TETRA size=256 .*\(verified\)$' \
	"the consumer did not get its message"
tb_log "the consumer connected all along still works"
ag_stop
tb_pass
