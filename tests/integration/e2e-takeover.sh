#!/usr/bin/env bash
# Issue 4, one consumer per LMR type: a second consumer is refused with a
# clear error; one that asks to take over gets the type, the old consumer is
# told ("taken over by another consumer") and closed, and what the old one
# had not ACKed goes to the new one (same id, same bytes).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-takeover
ag_setup
ag_start

consumers() { ag_status_field consumers; }

# --- an idle consumer of TETRA
mkdir -p "$TB_DIR/a"
"$AG_CTL" --socket "$AG_SOCK" receive --lmr-type TETRA --timeout 30 --output "$TB_DIR/a" \
	>"$TB_DIR/a.out" 2>&1 &
apid=$!
tb_track_pid "$apid" "receive A"
tb_wait_for 5 sh -c "[ \"\$('$AG_CTL' --socket '$AG_SOCK' status --json | '$TB_PYTHON' -c 'import json,sys; print(json.load(sys.stdin)[\"consumers\"])')\" = \"['TETRA']\" ]" ||
	tb_fail "consumer A did not subscribe"

# --- a second one is refused, clearly, and A keeps the type
mkdir -p "$TB_DIR/b"
ag_ctl receive --lmr-type TETRA --count 1 --timeout 3 --output "$TB_DIR/b" >"$TB_DIR/b.out" 2>&1
rc=$?
[ "$rc" = 1 ] || tb_fail "second consumer exited $rc, not 1"
tb_assert_grep "$TB_DIR/b.out" 'LMR type TETRA already has a consumer' "no clear error for the second consumer"
tb_pid_alive "$apid" || tb_fail "consumer A went away when B was refused"
tb_log "second consumer refused: $(cat "$TB_DIR/b.out")"

# --- with --takeover: A is told and closed, C gets the next message
mkdir -p "$TB_DIR/c"
"$AG_CTL" --socket "$AG_SOCK" receive --lmr-type TETRA --takeover --count 1 --timeout 15 \
	--output "$TB_DIR/c" >"$TB_DIR/c.out" 2>&1 &
cpid=$!
tb_track_pid "$cpid" "receive C (takeover)"
tb_wait_pid "$apid" 5
rc=$?
[ "$rc" = 1 ] || tb_fail "consumer A exited $rc after the takeover, not 1"
tb_assert_grep "$TB_DIR/a.out" 'taken over by another consumer' "A was not told about the takeover"
tb_assert_grep "$AG_LOG" 'lost LMR type TETRA to a takeover' "no log line for the takeover"
ag_send_iwf m1 200 || tb_fail "IWF message not answered 200"
want=$(tb_value "$TB_DIR/m1.out" payload_sha256)
tb_wait_pid "$cpid" 10 || tb_fail "consumer C did not get the message: $(cat "$TB_DIR/c.out")"
[ "$(sha256sum "$TB_DIR"/c/*.bin | cut -d' ' -f1)" = "$want" ] || tb_fail "C got other bytes"
tb_log "takeover: A told ($(tr '\n' ' ' <"$TB_DIR/a.out")), C got sha256 $want"

# --- a consumer holding a message unACKed loses it to the one taking over
HOLD=("$TB_PYTHON" "$top_srcdir/tests/integration/rawclient.py" --socket "$AG_SOCK" hold --lmr-type P25)
"${HOLD[@]}" >"$TB_DIR/hold.out" 2>&1 &
hpid=$!
tb_track_pid "$hpid" "raw consumer holding P25"
tb_wait_for 5 grep -q '^subscribed' "$TB_DIR/hold.out" || tb_fail "raw consumer did not subscribe"
ag_send_iwf p1 200 --lmr-type P25 || tb_fail "IWF message not answered 200"
want=$(tb_value "$TB_DIR/p1.out" payload_sha256)
tb_wait_for 5 grep -q "^delivery id=[0-9]* sha256=$want verified=1" "$TB_DIR/hold.out" ||
	tb_fail "raw consumer did not get the P25 message"
id=$(sed -n 's/^delivery id=\([0-9]*\) .*/\1/p' "$TB_DIR/hold.out")
ag_ctl queue --json | grep -q '"in_flight":true' || tb_fail "held message not in flight"

mkdir -p "$TB_DIR/d"
ag_ctl receive --lmr-type P25 --takeover --count 1 --timeout 10 --output "$TB_DIR/d" >"$TB_DIR/d.out" 2>&1 ||
	tb_fail "the consumer taking over did not get the held message: $(cat "$TB_DIR/d.out")"
[ -f "$TB_DIR/d/$id.bin" ] || tb_fail "the held message did not come with its id $id"
[ "$(sha256sum "$TB_DIR/d/$id.bin" | cut -d' ' -f1)" = "$want" ] || tb_fail "other bytes after the takeover"
tb_wait_pid "$hpid" 5 || tb_fail "raw consumer not closed after the takeover"
tb_assert_grep "$TB_DIR/hold.out" '^notice code=16 text=taken over by another consumer$' "raw consumer not told"
tb_assert_grep "$TB_DIR/hold.out" '^closed$' "raw consumer not closed"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty at the end"
tb_log "unACKed message $id went to the consumer that took over"
ag_stop
tb_pass
