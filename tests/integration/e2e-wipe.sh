#!/usr/bin/env bash
# Issue 4, deleted means gone (DESIGN §3, docs/security.md): after its ACK a
# payload's bytes are in no file of the state directory (spool.db,
# spool.db-wal, ...) — within a fraction of a second (the checkpoint runs
# 0.25 s after the first removal it purges, whether or not the queue drained;
# we allow 2 s on a loaded machine) — while the agent runs and after it stops.
# A scan before the ACK finds the payload, so the scan itself is shown to work.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-wipe
ag_setup
ag_start

# hits PAYLOAD  how many 16-octet slices of PAYLOAD (at 16-octet steps) occur
#               in the state directory's files: any fragment of 31 octets or
#               more that survived contains a whole slice
hits() {
	python3 - "$1" "$AG_STATE" <<'PY'
import os, sys
payload = open(sys.argv[1], "rb").read()
slices = {payload[i:i + 16] for i in range(0, len(payload) - 15, 16)}
found = 0
for name in sorted(os.listdir(sys.argv[2])):
    path = os.path.join(sys.argv[2], name)
    if not os.path.isfile(path):
        continue
    data = open(path, "rb").read()
    found += sum(1 for s in slices if s in data)
print(found)
PY
}
gone() { [ "$(hits "$1")" = 0 ]; }

head -c 4096 /dev/urandom >"$TB_DIR/canary1.bin"
head -c 4096 /dev/urandom >"$TB_DIR/canary2.bin"
head -c 1000 /dev/urandom >"$TB_DIR/filler.bin"

# --- the queue does not drain: purged within a few seconds of the ACK
ag_send_iwf canary1 200 --lmr-type TETRA --payload-file "$TB_DIR/canary1.bin" || tb_fail "canary 1 not answered 200"
ag_send_iwf filler 200 --lmr-type P25 --payload-file "$TB_DIR/filler.bin" || tb_fail "filler not answered 200"
n=$(hits "$TB_DIR/canary1.bin")
[ "$n" -gt 0 ] || tb_fail "the scan does not find a spooled payload (scan broken?)"
tb_log "spooled canary 1 found by the scan ($n slices)"
mkdir -p "$TB_DIR/got1"
ag_ctl receive --lmr-type TETRA --count 1 --timeout 5 --output "$TB_DIR/got1" >"$TB_DIR/got1.out" 2>&1 ||
	tb_fail "canary 1 not received"
cmp -s "$TB_DIR/canary1.bin" "$TB_DIR"/got1/*.bin || tb_fail "canary 1 received altered"
[ "$(ag_spool_depth)" = 1 ] || tb_fail "the filler should still be queued"
tb_wait_for 5 gone "$TB_DIR/canary1.bin" ||
	tb_fail "canary 1 still in the state directory ($(hits "$TB_DIR/canary1.bin") slices) 5 s after its ACK"
tb_log "canary 1 gone from the database files while another message stays queued"

# --- the queue drains: purged as soon
ag_send_iwf canary2 200 --lmr-type TETRA --payload-file "$TB_DIR/canary2.bin" || tb_fail "canary 2 not answered 200"
[ "$(hits "$TB_DIR/canary2.bin")" -gt 0 ] || tb_fail "the scan does not find canary 2"
ag_receive "$TB_DIR/got2" 2 5 || tb_fail "filler and canary 2 not received"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty"
tb_wait_for 2 gone "$TB_DIR/canary2.bin" ||
	tb_fail "canary 2 still in the state directory ($(hits "$TB_DIR/canary2.bin") slices) 2 s after the queue drained"
tb_log "canary 2 gone from the database files after the queue drained"

ag_stop
for c in canary1 canary2 filler; do
	gone "$TB_DIR/$c.bin" || tb_fail "$c in the state directory after the agent stopped"
done
tb_log "no payload bytes in $(ls "$AG_STATE" | tr '\n' ' ')after the agent stopped"
tb_pass
