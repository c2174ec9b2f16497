#!/usr/bin/env bash
# Issue 4, spool listing: `lmrsecctl queue` (table, and a JSON array with
# --json) lists every spooled message in arrival order with its metadata —
# id, LMR type, size, received time, whether a consumer holds it unacked,
# SHA-256 — and never its payload; --limit takes the first N.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-queue
ag_setup
ag_start

ag_ctl queue >"$TB_DIR/empty.txt" || tb_fail "queue failed on an empty spool"
tb_assert_grep "$TB_DIR/empty.txt" '^spool empty$' "empty spool not reported"
[ "$(ag_ctl queue --json)" = "[]" ] || tb_fail "queue --json of an empty spool is not []"

# Three messages; payloads with a marker that must never be listed.
i=0
for spec in TETRA:100 P25:200 TETRA:300; do
	i=$((i + 1))
	{ printf 'QUEUE-SECRET-%d-' "$i"; head -c $((${spec#*:} - 15)) /dev/zero | tr '\0' 'k'; } >"$TB_DIR/key$i.bin"
	ag_send_iwf "msg$i" 200 --lmr-type "${spec%:*}" --payload-file "$TB_DIR/key$i.bin" ||
		tb_fail "IWF message $i not answered 200"
done

# A consumer holds the P25 message without ACKing it.
"$AG_CTL" --socket "$AG_SOCK" receive --lmr-type P25 --count 1 --timeout 30 \
	--exec 'exec sleep 30' >"$TB_DIR/holder.out" 2>&1 &
hpid=$!
tb_track_pid "$hpid" "receive (holding P25)"
held() { ag_ctl queue --json | grep -q '"in_flight":true'; }
tb_wait_for 5 held || tb_fail "the held message is not shown in flight"

ag_ctl queue --json >"$TB_DIR/queue.json" || tb_fail "queue --json failed"
"$TB_PYTHON" - "$TB_DIR" "$AG_KMF" <<'PY' || tb_fail "wrong listing: $(cat "$TB_DIR/queue.json")"
import hashlib, json, sys
d, kmf = sys.argv[1], sys.argv[2]
entries = json.load(open(d + "/queue.json"))
assert len(entries) == 3, entries
ids = [e["id"] for e in entries]
assert ids == sorted(ids) and len(set(ids)) == 3, ids
for n, (e, t, flight) in enumerate(zip(entries, ["TETRA", "P25", "TETRA"], [False, True, False]), 1):
    payload = open("%s/key%d.bin" % (d, n), "rb").read()
    assert e["lmr_type"] == t and e["size"] == len(payload), e
    assert e["sha256"] == hashlib.sha256(payload).hexdigest(), e
    assert e["in_flight"] is flight and e["state"] == ("in-flight" if flight else "waiting"), e
    assert e["kmf_uri"] == kmf and e["received_us"] > 0 and e["received"].endswith("Z"), e
    assert "payload" not in e, e
PY
tb_log "queue --json: 3 entries in order, sizes, fingerprints, one in flight"

ag_ctl queue >"$TB_DIR/queue.txt" || tb_fail "queue failed"
tb_assert_grep "$TB_DIR/queue.txt" '^ID +LMR-TYPE +SIZE +RECEIVED +STATE +SHA256$' "no table header"
[ "$(grep -c ' waiting ' "$TB_DIR/queue.txt")" = 2 ] || tb_fail "not 2 waiting rows"
tb_assert_grep "$TB_DIR/queue.txt" "^[0-9]+ +P25 +200 +[0-9T:.-]+Z +in-flight +$(sha256sum "$TB_DIR/key2.bin" | cut -d' ' -f1)\$" \
	"no in-flight P25 row"

[ "$("$AG_CTL" --socket "$AG_SOCK" queue --json --limit 2 | "$TB_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
	tb_fail "--limit 2 did not list 2"

for f in "$TB_DIR/queue.json" "$TB_DIR/queue.txt"; do
	! grep -q 'QUEUE-SECRET' "$f" || tb_fail "payload bytes in $f"
done

# Let go of the held message; take all three; the spool lists empty again.
for c in $(cat /proc/"$hpid"/task/*/children 2>/dev/null); do tb_stop_pid "$c" 1; done
tb_wait_pid "$hpid" 5	# its command failed: it NACKs and exits 1
ag_receive "$TB_DIR/all" 3 10 || tb_fail "the three messages were not delivered"
[ "$(ag_ctl queue --json)" = "[]" ] || tb_fail "spool not empty after the ACKs"
tb_log "queue empty after every message was acked"
ag_stop
tb_pass
