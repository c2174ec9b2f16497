#!/usr/bin/env bash
# Issue 3: when the spool cannot commit (disk full), the IWF gets 500 with
# Retry-After — never 200 — and once space is back the agent accepts again.
# The state directory is a 4 MiB tmpfs that the test fills up; this needs
# root (mount), so the test is skipped, saying so, without it.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-store-failure
[ "$(id -u)" = 0 ] || tb_skip "needs root to mount a small tmpfs for the spool"
ag_setup
mkdir -p "$AG_STATE"
mount -t tmpfs -o size=4m,mode=0700 lmrsec-test "$AG_STATE" ||
	tb_skip "cannot mount a tmpfs here (container without CAP_SYS_ADMIN?)"
cleanup_mount() { umount "$AG_STATE" 2>/dev/null; }
trap 'rc=$?; tb_stop_all; cleanup_mount; tb__cleanup $rc' EXIT
ag_start

ag_send_iwf before 200 || tb_fail "first message not answered 200"
# Fill the file system; SQLite's next WAL frame cannot be written.
dd if=/dev/zero of="$AG_STATE/filler" bs=64k 2>/dev/null
head -c 40000 /dev/urandom >"$TB_DIR/big.bin"
ag_send_iwf full 500 --payload-file "$TB_DIR/big.bin" ||
	tb_fail "disk full: expected 500, got $(tb_value "$TB_DIR/full.out" status)"
[ -n "$(tb_value "$TB_DIR/full.out" retry_after)" ] || tb_fail "500 without Retry-After"
tb_log "disk full answered 500 with Retry-After $(tb_value "$TB_DIR/full.out" retry_after)"
rm -f "$AG_STATE/filler"
ag_send_iwf after 200 --payload-file "$TB_DIR/big.bin" || tb_fail "no 200 once space was freed"
ag_receive "$TB_DIR/got" 2 5 || tb_fail "the two accepted messages were not delivered"
for n in before after; do
	want=$(tb_value "$TB_DIR/$n.out" payload_sha256)
	sha256sum "$TB_DIR"/got/*.bin | grep -q "^$want " || tb_fail "$n lost"
done
ag_stop
tb_pass
