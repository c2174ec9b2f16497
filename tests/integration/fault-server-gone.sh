#!/usr/bin/env bash
# Issue 8, fault injection 4 — the server goes away during client-initiated
# sends.  Kamailio relays `lmrsecctl send` MESSAGEs to an IWF that takes
# them and never answers (a bound UDP socket that reads and drops), so each
# send is in flight — the agent's client transaction open, Kamailio's too —
# when Kamailio is killed with SIGKILL (its main process and every child, by
# PID).  Meanwhile a loop of further sends keeps starting.  Asserts:
#   * every requester ends by itself with a non-zero exit and one specific
#     line on stderr (no hang): the sends in flight within SIP_TIMER_F
#     (the non-INVITE transaction timeout, 64*T1 = 32 s, RFC 3261 17.1.2.2)
#     although their --timeout is 60 s; the sends started while the server
#     is down within their --timeout (8 s) plus a margin, as "not
#     registered" (DESIGN §2: a request waits for registration up to its
#     timeout, then fails with a clear "not registered" error);
#   * the agent survives; once Kamailio is back on the same port it
#     registers again (no agent restart), and parallel sends to an IWF that
#     answers (sip-sink) succeed again, each payload arriving intact.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init fault-server-gone
SIP_TIMER_F=32
INFLIGHT=4
LOOP_TIMEOUT=8
iwf_port=$(tb_free_port)
ag_setup --iwf-addr "127.0.0.1:$iwf_port"
ag_start
agent_pid=$AG_PID

# The IWF that never answers: holds the UDP port, reads and drops.
"$TB_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("listening", flush=True)
while True:
    s.recv(65536)
' "$iwf_port" >"$TB_DIR/blackhole.out" 2>&1 &
bh_pid=$!
tb_track_pid "$bh_pid" "silent IWF"
tb_wait_for 5 grep -q '^listening' "$TB_DIR/blackhole.out" || tb_fail "the silent IWF did not start"

now_ms() { echo $((${EPOCHREALTIME/[.,]/} / 1000)); }
# send_bg NAME TIMEOUT: lmrsecctl send in the background; NAME.out holds
# its stdout+stderr, NAME.rc its exit code and NAME.ms its run time.
send_bg() {
	local name=$1 secs=$2
	head -c 200 /dev/urandom >"$TB_DIR/$name.bin"
	(
		t0=$(now_ms)
		timeout -k 2 $((secs + 10)) "$AG_CTL" --socket "$AG_SOCK" send --lmr-type TETRA \
			--timeout "$secs" --file "$TB_DIR/$name.bin" >"$TB_DIR/$name.out" 2>&1
		echo $? >"$TB_DIR/$name.rc"
		echo $(($(now_ms) - t0)) >"$TB_DIR/$name.ms"
		now_ms >"$TB_DIR/$name.end"
	) &
	TB_LAST_PID=$!
	tb_track_pid "$TB_LAST_PID" "send $name"
}
relayed() { grep -c 'iwf: MESSAGE from' "$TB_KAM_LOG"; }

# --- sends in flight when the server dies
pids=()
for i in $(seq 1 "$INFLIGHT"); do
	send_bg "inflight$i" 60
	pids+=("$TB_LAST_PID")
done
tb_wait_for 15 eval '[ "$(relayed)" -ge '"$INFLIGHT"' ]' ||
	tb_fail "Kamailio relayed $(relayed) of $INFLIGHT MESSAGEs to the IWF"
sleep 0.5
for i in $(seq 1 "$INFLIGHT"); do
	[ ! -e "$TB_DIR/inflight$i.rc" ] || tb_fail "send $i ended before the server died: $(cat "$TB_DIR/inflight$i.out")"
done
tb_log "$INFLIGHT sends in flight (relayed to the silent IWF); killing Kamailio"

# --- a loop of sends, two at a time, that keeps starting while it is down
(
	for n in 1 2 3; do
		for k in 1 2; do
			head -c 100 /dev/urandom >"$TB_DIR/loop$n-$k.bin"
			(
				t0=$(now_ms)
				timeout -k 2 $((LOOP_TIMEOUT + 10)) "$AG_CTL" --socket "$AG_SOCK" send \
					--lmr-type TETRA --timeout "$LOOP_TIMEOUT" --file "$TB_DIR/loop$n-$k.bin" \
					>"$TB_DIR/loop$n-$k.out" 2>&1
				echo $? >"$TB_DIR/loop$n-$k.rc"
				echo $(($(now_ms) - t0)) >"$TB_DIR/loop$n-$k.ms"
				now_ms >"$TB_DIR/loop$n-$k.end"
			) &
		done
		wait
	done
) &
loop_pid=$!
tb_track_pid "$loop_pid" "send loop"

kill_ms=$(now_ms)
kam_pids=("$TB_KAM_PID" "${TB_KAM_CHILD_PIDS[@]}")
{ kill -KILL "${kam_pids[@]}"; wait "$TB_KAM_PID"; } 2>/dev/null
for p in "${kam_pids[@]}"; do
	tb_wait_for 5 eval '! tb_pid_alive '"$p" || tb_fail "kamailio process $p survived SIGKILL"
done
tb_log "Kamailio (pid $TB_KAM_PID and ${#TB_KAM_CHILD_PIDS[@]} children) killed with SIGKILL"

# Each in-flight send fails by itself, clearly, before Timer F.
for i in $(seq 1 "$INFLIGHT"); do
	tb_wait_pid "${pids[i - 1]}" $((SIP_TIMER_F + 15)) >/dev/null
	[ -e "$TB_DIR/inflight$i.rc" ] || tb_fail "in-flight send $i did not end"
	rc=$(cat "$TB_DIR/inflight$i.rc")
	out=$(tr '\n' ' ' <"$TB_DIR/inflight$i.out")
	after=$(($(cat "$TB_DIR/inflight$i.end") - kill_ms))
	tb_log "in-flight send $i: exit $rc, $after ms after the kill: $out"
	[ "$rc" != 0 ] || tb_fail "in-flight send $i succeeded without a server"
	[ "$rc" != 124 ] && [ "$rc" != 137 ] || tb_fail "in-flight send $i hung (ended by timeout(1))"
	[[ $out =~ ^lmrsecctl:\ send:\ [3-6][0-9][0-9]\ [A-Za-z] ]] ||
		tb_fail "in-flight send $i: no SIP status line: $out"
	[ "$after" -lt $((SIP_TIMER_F * 1000)) ] ||
		tb_fail "in-flight send $i took $after ms to fail, longer than Timer F (${SIP_TIMER_F} s)"
done

# The sends started while the server was down fail within their timeout.
tb_wait_pid "$loop_pid" $((3 * (LOOP_TIMEOUT + 12))) >/dev/null || tb_fail "the send loop did not end"
for f in "$TB_DIR"/loop*.rc; do
	n=$(basename "$f" .rc)
	rc=$(cat "$f")
	out=$(tr '\n' ' ' <"$TB_DIR/$n.out")
	ms=$(cat "$TB_DIR/$n.ms")
	tb_log "send $n while down: exit $rc after $ms ms: $out"
	[ "$rc" != 0 ] || tb_fail "send $n succeeded without a server"
	[ "$rc" != 124 ] && [ "$rc" != 137 ] || tb_fail "send $n hung (ended by timeout(1))"
	[[ $out =~ ^lmrsecctl:\ send:\ ([3-6][0-9][0-9]\ [A-Za-z]|.*not\ registered) ]] ||
		tb_fail "send $n: neither a SIP status nor 'not registered': $out"
	[ "$ms" -lt $(((LOOP_TIMEOUT + 5) * 1000)) ] || tb_fail "send $n took $ms ms, its timeout is $LOOP_TIMEOUT s"
done
tb_pid_alive "$agent_pid" || tb_fail "the agent died with the server"

# Once the agent knows it is not registered, a send waits for registration
# up to its timeout, then says so.
ag_wait_state failed 10 || tb_fail "the agent did not notice the server went away (state $(ag_state))"
send_bg down 3
tb_wait_pid "$TB_LAST_PID" 20 >/dev/null
rc=$(cat "$TB_DIR/down.rc") out=$(tr '\n' ' ' <"$TB_DIR/down.out") ms=$(cat "$TB_DIR/down.ms")
tb_log "send while 'failed', --timeout 3: exit $rc after $ms ms: $out"
[ "$rc" = 1 ] && [[ $out == *"not registered"* ]] || tb_fail "send while not registered: exit $rc: $out"
[ "$ms" -ge 2000 ] && [ "$ms" -lt 8000 ] || tb_fail "send while not registered ended after $ms ms, its timeout is 3 s"

# --- the server comes back on the same port; sends work again
tb_stop_pid "$bh_pid" 2
tb_start_kamailio --users "alice:alice-pw bob:bob-pw" --iwf-addr "127.0.0.1:$iwf_port" \
	--iwf-transport udp --port "$TB_KAM_PORT"
ag_wait_state registered 15 || tb_fail "not registered again within 15 s of the server's return"
[ "$AG_PID" = "$agent_pid" ] && tb_pid_alive "$agent_pid" || tb_fail "the agent was restarted"
tb_sink_start iwf "$iwf_port" --status 200 --count 4 --timeout 40
sink_pid=$TB_LAST_PID
pids=()
for i in 1 2 3 4; do
	send_bg "again$i" 20
	pids+=("$TB_LAST_PID")
done
for i in 1 2 3 4; do
	tb_wait_pid "${pids[i - 1]}" 35 >/dev/null
	rc=$(cat "$TB_DIR/again$i.rc" 2>/dev/null)
	[ "$rc" = 0 ] || tb_fail "send $i after the server's return: exit $rc: $(cat "$TB_DIR/again$i.out")"
	grep -q '^200' "$TB_DIR/again$i.out" || tb_fail "send $i after the return did not print 200"
done
tb_wait_pid "$sink_pid" 10 || tb_fail "sip-sink did not get the 4 MESSAGEs"
for i in 1 2 3 4; do
	tb_assert_grep "$TB_DIR/iwf.out" "payload_sha256=$(sha256sum "$TB_DIR/again$i.bin" | cut -d' ' -f1)" \
		"payload of send $i after the return not intact"
done
tb_log "4 parallel sends after the server's return: 200, payloads intact"
ag_stop
tb_pass
