#!/usr/bin/env bash
# Issue 8: the agent's whole life under valgrind memcheck -- register with
# Kamailio, receive an IWF key message (200), deliver it to a consumer (ACK),
# send a client-initiated message (200 from a UAS), shut down on SIGTERM --
# with zero memcheck errors and no definitely lost block.  Possibly lost and
# still-reachable blocks (GLib's type system, sofia-sip and libxml2 one-time
# state) are not errors; the suppressions in valgrind.supp say why each is
# there.  Skipped for a sanitizer build (ASan and valgrind exclude each
# other) or when valgrind is missing.  Everything runs ~20x slower under
# memcheck, so this test widens the helpers' timeouts for itself only.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-valgrind
tb_require valgrind
[ -x "$AG_AGENT" ] || tb_skip "$AG_AGENT not built"
if grep -q __asan_init "$AG_AGENT" 2>/dev/null; then
	tb_skip "the agent is built with AddressSanitizer, which valgrind cannot run"
fi

SLOW=120
vg_log=$TB_DIR/valgrind.log
AG_WRAPPER="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
	--show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40
	--suppressions=$top_srcdir/tests/integration/valgrind.supp
	--gen-suppressions=all --log-file=$vg_log"
AG_START_TIMEOUT=$SLOW
AG_STOP_TIMEOUT=$SLOW
# GLib allocates through malloc so memcheck sees every block; freed memory
# is cleared, so nothing survives by accident in a recycled block.
export G_SLICE=always-malloc G_DEBUG=gc-friendly

iwf_port=$(tb_free_port)
ag_setup --iwf-addr "127.0.0.1:$iwf_port"
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# --- register
ag_start
tb_log "registered under valgrind"

# --- receive: an IWF key message through Kamailio is answered 200
head -c 2048 /dev/urandom >"$TB_DIR/key.bin"
ag_send_iwf receive 200 --payload-file "$TB_DIR/key.bin" --timeout "$SLOW" ||
	tb_fail "IWF message not answered 200 under valgrind"

# --- deliver: a consumer gets exactly those bytes and ACKs them
ag_receive "$TB_DIR/got" 1 "$SLOW" || tb_fail "message not delivered under valgrind"
[ "$(sha_of "$TB_DIR"/got/*.bin)" = "$(sha_of "$TB_DIR/key.bin")" ] ||
	tb_fail "delivered payload differs from the one sent"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after the ACK"
tb_log "received, delivered and acked under valgrind"

# --- send: a client-initiated MESSAGE reaches the IWF and is answered 200
tb_sink_start iwf "$iwf_port" --status 200 --count 1 --timeout $((SLOW * 2))
sink_pid=$TB_LAST_PID
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" --timeout "$SLOW" \
	>"$TB_DIR/send.out" 2>&1 || tb_fail "lmrsecctl send failed: $(cat "$TB_DIR/send.out")"
tb_wait_pid "$sink_pid" "$SLOW" || tb_fail "sip-sink did not get the MESSAGE"
tb_assert_grep "$TB_DIR/iwf.out" "payload_sha256=$(sha_of "$TB_DIR/key.bin")" \
	"the IWF did not get the payload"
tb_log "sent under valgrind"

# --- shutdown: SIGTERM, exit 0 (memcheck exits 99 on any error or definite leak)
ag_stop

grep -q 'ERROR SUMMARY: 0 errors' "$vg_log" ||
	tb_fail "memcheck reported errors: $(grep 'ERROR SUMMARY' "$vg_log")"
if grep -qE 'definitely lost: [1-9]' "$vg_log"; then
	tb_fail "memcheck found definitely lost memory: $(grep 'definitely lost:' "$vg_log")"
fi
tb_log "memcheck: $(sed -n 's/^==[0-9]*== //p' "$vg_log" | grep -E 'ERROR SUMMARY|definitely lost|in use at exit' | tr '\n' ';')"
tb_pass
