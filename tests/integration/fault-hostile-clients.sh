#!/usr/bin/env bash
# Issue 8, fault injection 5 — hostile local clients at scale.  1,000
# connections are opened at once by four clients running side by side
# (rawclient.py swarm, 250 each): random bytes, an oversized frame length
# after HELLO, half a frame after HELLO then silence, and subscribers (one
# LMR type each, H0..H249) that never read a byte.  Meanwhile IWF messages
# flow: 100 large ones (60,000-octet payloads; 6 MB, below the spool's 16
# MiB) to twenty of the non-reading subscribers' types, and every 0.3 s a small one to the TETRA consumer
# (tests/integration/fault-consumer), which is well-behaved and connected
# all along.  max-connections is 1100 so that the agent really holds all
# 1,000 (a refusal would be well-behaved too, but would spare it the work);
# frame-timeout is 2 s.  Asserts:
#   * the consumer receives every TETRA message within 1 s of it being sent
#     (sender's clock just before the MESSAGE goes out -> consumer's clock
#     at the delivery, same host clock), each exactly the payload sent;
#   * every random-bytes and oversized-length connection is closed by the
#     agent, every half frame within 2 x frame-timeout + 3 s of its connect
#     (the timer starts at accept and the HELLO, being progress, grants the
#     half frame one more frame-timeout: server.c conn_frame_expired); the non-readers
#     cost it nothing but their queued output (they are not closed: their
#     deliveries wait in the spool behind the per-connection soft limit);
#   * the agent's peak RSS (VmHWM) stays under RSS_BOUND_KB; `status` still
#     answers; the agent is alive and stops cleanly.
# RSS_BOUND_KB: measured on this machine (2 cores, Debian 12, -O2 build):
# the agent idles at ~12 MB RSS and peaks at ~21 MB in this run (1,000
# connection structures with their read buffers, the twenty non-readers'
# queued deliveries, SQLite's page cache); with three times the large
# messages (until the spool was full) the peak was ~30 MB.  The bound,
# 64 MB, is idle + ~5x the measured growth, so allocator noise on a loaded
# machine does not trip it, while a broken bound does: the non-readers
# alone could pin 250 x 4 MiB = 1 GB of output if the per-connection
# limit failed, 1,000 connections x a 256 kB frame buffer another 256 MB.
# Under AddressSanitizer (the agent linked with libasan: .ci/run's
# sanitizer pass) shadow memory and the 256 MB free quarantine come on
# top, so the bound there is 512 MB.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init fault-hostile-clients
CONSUMER=$top_builddir/tests/integration/fault-consumer
[ -x "$CONSUMER" ] || tb_fail "$CONSUMER not built"
RSS_BOUND_KB=$((64 * 1024))
ldd "$AG_AGENT" 2>/dev/null | grep -q libasan && RSS_BOUND_KB=$((512 * 1024))
LATENCY_MAX=1.0
FRAME_TIMEOUT=2
PER_KIND=250
ag_setup
ag_write_config tcp "[socket]" "frame-timeout = $FRAME_TIMEOUT" "max-connections = 1100"
ag_start
RC=("$TB_PYTHON" "$top_srcdir/tests/integration/rawclient.py" --socket "$AG_SOCK")
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$AG_PID/status"; }
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

"$CONSUMER" --socket "$AG_SOCK" TETRA >"$TB_DIR/consumer.out" 2>"$TB_DIR/consumer.err" &
cpid=$!
tb_track_pid "$cpid" fault-consumer
tb_wait_for 5 grep -q '^connected' "$TB_DIR/consumer.out" || tb_fail "the consumer did not connect"
rss0=$(status_kb VmRSS)
tb_log "agent RSS before: $rss0 kB (peak so far $(status_kb VmHWM) kB)"

# The IWF: one process sending for FLOW_SECS, through Kamailio over TCP.
# Prints "good sha256=H t=SENT status=S" per TETRA message and a summary
# of the large ones.
FLOW_SECS=10
"$TB_PYTHON" - "$top_srcdir/tests/testbed" "$TB_KAM_PORT" "$AG_ID" "$AG_KMF" "$TB_DIR" "$FLOW_SECS" \
	>"$TB_DIR/flow.out" 2>&1 <<'PY' &
import contextlib, hashlib, importlib.machinery, importlib.util, io, os, sys, time
tbdir, port, me, kmf, work, secs = sys.argv[1:7]
loader = importlib.machinery.SourceFileLoader("iwfsend", os.path.join(tbdir, "iwf-send"))
spec = importlib.util.spec_from_loader("iwfsend", loader)
iwf = importlib.util.module_from_spec(spec)
loader.exec_module(iwf)

def send(lmr_type, payload):
    path = os.path.join(work, "flow-payload.bin")
    with open(path, "wb") as f:
        f.write(payload)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        iwf.main(["--proxy", "127.0.0.1:" + port, "--transport", "tcp", "--to", me,
                  "--from", kmf, "--lmr-type", lmr_type, "--payload-file", path,
                  "--timeout", "10"])
    for line in out.getvalue().splitlines():
        if line.startswith("status="):
            return line.split()[0][7:]
    return "none"

print("flow started", flush=True)
end = time.time() + float(secs)
big = {"200": 0}
n = 0
next_good = time.time() + 0.3
while time.time() < end:
    if time.time() >= next_good:
        payload = os.urandom(256)
        t = time.time()
        st = send("TETRA", payload)
        print("good sha256=%s t=%.6f status=%s" % (hashlib.sha256(payload).hexdigest(), t, st),
              flush=True)
        next_good = t + 0.3
    elif n < 100:
        st = send("H%d" % (n % 20), os.urandom(60000))
        big[st] = big.get(st, 0) + 1
        n += 1
        time.sleep(0.02)
    else:
        time.sleep(0.02)
print("big " + " ".join("%s:%d" % kv for kv in sorted(big.items())), flush=True)
PY
flow_pid=$!
tb_track_pid "$flow_pid" "IWF flow"
tb_wait_for 10 grep -q '^flow started' "$TB_DIR/flow.out" || tb_fail "the IWF flow did not start"
sleep 1

# --- 1,000 hostile connections at once
spids=()
for kind in garbage oversize half nonreader; do
	"${RC[@]}" swarm "$kind" "$PER_KIND" --hold 10 >"$TB_DIR/swarm-$kind.out" 2>&1 &
	spids+=("$!")
	tb_track_pid "$!" "swarm $kind"
done
t_swarm=${EPOCHREALTIME/[.,]/}
tb_wait_for 20 eval '[ "$(cat "$TB_DIR"/swarm-*.out | grep -c "^open=")" = 4 ]' ||
	tb_fail "the swarms did not open their connections: $(cat "$TB_DIR"/swarm-*.out)"
opened=$(cat "$TB_DIR"/swarm-*.out | sed -n 's/^open=//p' | awk '{ s += $1 } END { print s }')
tb_log "$opened hostile connections opened in $(((${EPOCHREALTIME/[.,]/} - t_swarm) / 1000)) ms"
peak_conns=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
	n=$(ls "/proc/$AG_PID/fd" | wc -l)
	[ "$n" -gt "$peak_conns" ] && peak_conns=$n
	sleep 0.2
done
t0=${EPOCHREALTIME/[.,]/}
ag_ctl status >/dev/null || tb_fail "status failed under the swarm"
tb_log "status answered in $(((${EPOCHREALTIME/[.,]/} - t0) / 1000)) ms under the swarm; agent fds peaked at >= $peak_conns"

for i in "${!spids[@]}"; do
	tb_wait_pid "${spids[i]}" 40 >/dev/null || tb_fail "swarm $i did not end"
done
tb_wait_pid "$flow_pid" 30 || tb_fail "the IWF flow did not end: $(tail -n 3 "$TB_DIR/flow.out")"
sleep 1.2	# the last TETRA message's delivery
kill -TERM "$cpid"
tb_wait_pid "$cpid" 5 >/dev/null

# --- what the hostile clients saw
for kind in garbage oversize half nonreader; do
	out=$(grep '^kind=' "$TB_DIR/swarm-$kind.out")
	tb_log "swarm: $out"
	[ "$(field opened "$out")" = "$PER_KIND" ] || tb_fail "$kind: not all $PER_KIND connections were opened: $out"
	[ "$(field eusers "$out")" = 0 ] || tb_fail "$kind: refused under max-connections 1100: $out"
	case $kind in
	garbage | oversize)
		[ "$(field closed "$out")" = "$PER_KIND" ] || tb_fail "$kind: not every connection was closed: $out" ;;
	half)
		# The frame timer starts at accept; the HELLO is progress, which
		# grants the half frame after it one more frame-timeout.
		[ "$(field closed "$out")" = "$PER_KIND" ] && lt "$(field max_close_after "$out")" $((2 * FRAME_TIMEOUT + 3)) ||
			tb_fail "half frames: not all closed within 2 x frame-timeout + 3 s: $out" ;;
	nonreader)
		[ "$(field closed "$out")" = 0 ] || tb_fail "non-readers were closed: $out" ;;
	esac
done
tb_assert_grep "$AG_LOG" 'frame longer than 262144 bytes: closing' "no log line for the oversized frames"
tb_assert_grep "$AG_LOG" 'incomplete frame not finished within 2000 ms: closing' "no log line for the half frames"

# --- the well-behaved consumer kept being served
"$TB_PYTHON" - "$TB_DIR/flow.out" "$TB_DIR/consumer.out" "$LATENCY_MAX" <<'PY' >"$TB_DIR/latency.out"
import sys
sent = {}
for line in open(sys.argv[1]):
    if line.startswith("good "):
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        sent[f["sha256"]] = (float(f["t"]), f["status"])
got = {}
for line in open(sys.argv[2]):
    if line.startswith("delivered "):
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        got.setdefault(f["sha256"], float(f["t"]))
lat = sorted(got[h] - t for h, (t, st) in sent.items() if h in got)
missing = [h for h in sent if h not in got]
not200 = [h for h, (t, st) in sent.items() if st != "200"]
late = [x for x in lat if x >= float(sys.argv[3])]
print("good sent=%d not_200=%d delivered=%d missing=%d late=%d min=%.3f p50=%.3f max=%.3f"
      % (len(sent), len(not200), len(lat), len(missing), len(late),
         lat[0] if lat else -1, lat[len(lat) // 2] if lat else -1, lat[-1] if lat else -1))
PY
lat=$(cat "$TB_DIR/latency.out")
tb_log "TETRA consumer: $lat (seconds, send -> delivery)"
tb_log "IWF flow to the non-readers: $(grep '^big ' "$TB_DIR/flow.out")"
[ "$(field sent "$lat")" -ge 20 ] || tb_fail "too few TETRA messages sent: $lat"
[ "$(field not_200 "$lat")" = 0 ] || tb_fail "TETRA messages not answered 200: $lat"
[ "$(field missing "$lat")" = 0 ] || tb_fail "TETRA messages not delivered: $lat"
[ "$(field late "$lat")" = 0 ] || tb_fail "TETRA messages delivered later than $LATENCY_MAX s after sending: $lat"
grep -q '^lost ' "$TB_DIR/consumer.out" && tb_fail "the consumer lost its connection: $(grep '^lost ' "$TB_DIR/consumer.out")"
! grep -q 'verified=0' "$TB_DIR/consumer.out" || tb_fail "a delivery failed its fingerprint"

# --- memory
hwm=$(status_kb VmHWM)
rss1=$(status_kb VmRSS)
tb_log "agent RSS: before $rss0 kB, peak $hwm kB, after $rss1 kB; bound $RSS_BOUND_KB kB"
[ "$hwm" -lt "$RSS_BOUND_KB" ] || tb_fail "agent peak RSS $hwm kB is over the bound $RSS_BOUND_KB kB"
ag_ctl status >/dev/null || tb_fail "status failed after the swarm"
ag_stop
tb_pass
