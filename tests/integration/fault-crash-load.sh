#!/usr/bin/env bash
# Issue 8, fault injection 1 — crash under load.  sipp sends 2,000 IWF
# messages at 200/s through Kamailio, each with its own payload (a text
# token from an injection file), and logs every call's final status; the
# agent is killed with SIGKILL at ~3 s and ~6 s and restarted at once
# (ag_start --no-wait); tests/integration/fault-consumer ACKs everything and
# reconnects after each restart, logging each delivery and each confirmed
# ACK apart.  Asserts:
#   * every message sipp saw answered 200 reached the consumer (matched by
#     the payload's SHA-256): lost = 0 (one whose ACK got no reply because
#     the agent died, and that did not come again, was ACKed all the same:
#     counted as ack_unconfirmed);
#   * no message came again after an ACK the agent had confirmed; one
#     delivered again because the crash fell between its delivery and its
#     ACK's commit is at-least-once and counted apart (dup-before-ack);
#   * every delivery's fingerprint verified; the spool is empty at the end.
# Prints the count report line.  Kamailio runs with a 5 s fr_timer so a
# MESSAGE in flight when the agent dies is answered 408 in 5 s; sipp gives
# up on a call after 15 s; the whole test ends by itself within ~60 s.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init fault-crash-load
CONSUMER=$top_builddir/tests/integration/fault-consumer
[ -x "$CONSUMER" ] || tb_fail "$CONSUMER not built"
TOTAL=2000
RATE=200
ag_setup --kamailio "--fr-timer 5000"
ag_start

# The payload tokens (fixed width, so one payload IE header fits them all)
# and the interworking-data prefix carrying that header.
"$TB_PYTHON" - "$TB_DIR" "$TOTAL" "$AG_KMF" "$top_srcdir/tests/testbed" <<'PY' ||
import os, sys
d, total, kmf = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, sys.argv[4])
import tbsip
tokens = ["fault-load-%06d-%s" % (i, os.urandom(8).hex()) for i in range(total)]
with open(os.path.join(d, "tokens.csv"), "w") as f:
    f.write("SEQUENTIAL\n")
    f.writelines("%s;\n" % t for t in tokens)
n = len(tokens[0])
iw = tbsip.build_iwdata("TETRA", kmf, b"x" * n)
open(os.path.join(d, "iwprefix.bin"), "wb").write(iw[:-n])
with open(os.path.join(d, "tokens.sha"), "w") as f:
    f.writelines("%s %s\n" % (t, tbsip.sha256(t.encode())) for t in tokens)
PY
	tb_fail "cannot write the payload tokens"

"$CONSUMER" --socket "$AG_SOCK" >"$TB_DIR/consumer.out" 2>"$TB_DIR/consumer.err" &
cpid=$!
tb_track_pid "$cpid" fault-consumer
tb_wait_for 5 grep -q '^connected' "$TB_DIR/consumer.out" || tb_fail "the consumer did not connect"

# -recv_timeout ends a call that never gets an answer (a retransmission
# lost in a crash) after 15 s; -timeout 50 s is the hard stop of the run.
sipp_port=$(tb_free_port)
tb_sipp_bg load "$sipp_port" iwf-load-uac.xml \
	-key target "alice@$TB_KAM_DOMAIN" -key kmf "${AG_KMF#sip:}" -key iwprefix iwprefix.bin \
	-inf tokens.csv -m "$TOTAL" -r "$RATE" -rp 1000 -l 1000 \
	-recv_timeout 15000 -timeout 50s \
	"127.0.0.1:$TB_KAM_PORT"
sipp_pid=$TB_LAST_PID
t_start=${EPOCHREALTIME/[.,]/}
# crash_at SECONDS: SIGKILL the agent that many seconds after sipp started
# and start a new one at once, without waiting for its registration.
crash_at() {
	local at_us=$((t_start + $1 * 1000000)) now
	now=${EPOCHREALTIME/[.,]/}
	[ "$now" -lt "$at_us" ] && sleep "$(awk -v us=$((at_us - now)) 'BEGIN { printf "%.3f", us / 1e6 }')"
	tb_pid_alive "$sipp_pid" || tb_fail "sipp ended before the crash at ${1} s: $(tail -n 5 "$TB_DIR/load.out")"
	echo "${EPOCHREALTIME/,/.}" >>"$TB_DIR/kills"
	ag_kill9
	ag_start --no-wait
}
crash_at 3
crash_at 6
ag_wait_state registered 15 || tb_fail "the agent did not register after the second restart"

tb_wait_pid "$sipp_pid" 55
sipp_rc=$?
tb_log "sipp exited $sipp_rc after $(((${EPOCHREALTIME/[.,]/} - t_start) / 1000)) ms"
[ "$sipp_rc" -ne 124 ] || tb_fail "sipp did not finish within 55 s"

# Everything answered 200 must reach the consumer: wait until the spool is
# empty (the consumer ACKed all that was kept), at most 20 s.
tb_wait_for 20 eval '[ "$(ag_spool_depth 2>/dev/null)" = 0 ]' ||
	tb_log "spool still holds $(ag_spool_depth) messages"
sleep 0.5
kill -TERM "$cpid"
tb_wait_pid "$cpid" 5 >/dev/null

"$TB_PYTHON" - "$TB_DIR" "$TOTAL" <<'PY' >"$TB_DIR/report.out"
import re, sys
d, total = sys.argv[1], int(sys.argv[2])
sha_of = dict(l.split() for l in open(d + "/tokens.sha"))
status = {}
for line in open(d + "/load.log.log", errors="replace"):
    m = re.search(r"final (fault-load-\S+) (\d{3})", line)
    if m:
        status.setdefault(m.group(1), m.group(2))
ok = {sha_of[t] for t, s in status.items() if s == "200"}
other = {}
for t, s in status.items():
    if s != "200":
        other[s] = other.get(s, 0) + 1
kills = [float(l) for l in open(d + "/kills")]
delivered, acked = {}, {}
dup_before_ack = dup_after_ack = bad = 0
for line in open(d + "/consumer.out"):
    f = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    if line.startswith("delivered "):
        h = f["sha256"]
        if f.get("verified") != "1":
            bad += 1
        if h in acked:
            dup_after_ack += 1
            t_ack = acked[h]
            gap = min((k - t_ack for k in kills if k >= t_ack), default=None)
            print("DUPLICATE AFTER ACK id=%s sha256=%s: its ACK was confirmed %s"
                  % (f["id"], h, "%.1f ms before a SIGKILL" % (gap * 1000)
                     if gap is not None else "after the last SIGKILL"))
        elif h in delivered:
            dup_before_ack += 1
        delivered[h] = delivered.get(h, 0) + 1
    elif line.startswith("acked "):
        acked.setdefault(f["sha256"], float(f["t"]))
# Lost: answered 200 and never in the consumer's hands.  A delivery whose
# ACK got no reply (the agent died first) and that did not come again was
# ACKed all the same: the agent had the ACK and removed it.
lost = sorted(ok - set(delivered))
unconfirmed = len(set(delivered) - set(acked))
for h in lost[:20]:
    print("LOST sha256=%s" % h)
extra = len(set(delivered) - ok)
print("report sent=%d answered_200=%d answered_other=%d (%s) timeout_or_unexpected=%d "
      "delivered=%d acked=%d delivered_not_200=%d dup_before_ack=%d dup_after_ack=%d "
      "ack_unconfirmed=%d bad_fingerprint=%d lost=%d"
      % (total, len(ok), sum(other.values()),
         " ".join("%s:%d" % kv for kv in sorted(other.items())) or "none",
         total - len(status), len(delivered), len(acked), extra, dup_before_ack,
         dup_after_ack, unconfirmed, bad, len(lost)))
PY
sed 's/^/# /' "$TB_DIR/report.out"
report=$(grep '^report ' "$TB_DIR/report.out")
val() { printf '%s\n' "$report" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
[ "$(grep -c '^connected' "$TB_DIR/consumer.out")" -ge 3 ] ||
	tb_fail "the consumer did not reconnect after both restarts"
[ "$(val answered_200)" -ge 1 ] || tb_fail "no message was answered 200"
[ "$(val lost)" = 0 ] || tb_fail "$(val lost) messages answered 200 were never delivered"
[ "$(val dup_after_ack)" = 0 ] || tb_fail "$(val dup_after_ack) messages were delivered again after a confirmed ACK"
[ "$(val bad_fingerprint)" = 0 ] || tb_fail "$(val bad_fingerprint) deliveries failed their fingerprint"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "the spool is not empty at the end"
[ "$AG_START_COUNT" = 3 ] || tb_fail "the agent was started $AG_START_COUNT times, expected 3"
tb_log "2 crashes under load: nothing answered 200 lost, nothing delivered after its ACK"
ag_stop
tb_pass
