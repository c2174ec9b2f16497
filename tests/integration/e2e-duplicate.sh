#!/usr/bin/env bash
# Issue 4, duplicate suppression (DESIGN §3): a MESSAGE re-sent with the same
# Call-ID, CSeq and From tag is answered 200 and delivered once — while the
# first copy is still spooled, after an agent restart (the `seen` table is in
# the spool file), and after the first copy was ACKed (also across a
# restart). Another CSeq in the same Call-ID is a new message.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-duplicate
ag_setup
ag_start

counter() { ag_status_field "counters.$1"; }
IDS=(--call-id "dup-$$@iwf.test" --cseq 7 --from-tag dupt4g)

ag_send_iwf first 200 "${IDS[@]}" || tb_fail "first copy not answered 200"
want=$(tb_value "$TB_DIR/first.out" payload_sha256)
ag_send_iwf again 200 "${IDS[@]}" || tb_fail "re-sent copy not answered 200"
[ "$(tb_value "$TB_DIR/again.out" branch)" != "$(tb_value "$TB_DIR/first.out" branch)" ] ||
	tb_fail "the re-send reused the branch (a retransmission, not a re-send)"
[ "$(ag_spool_depth)" = 1 ] || tb_fail "re-sent copy stored a second message"
[ "$(counter received)" = 1 ] || tb_fail "re-sent copy counted as received"
tb_log "re-send while the first copy is spooled: 200, one message"

ag_send_iwf other-cseq 200 --call-id "dup-$$@iwf.test" --cseq 8 --from-tag dupt4g --lmr-type P25 ||
	tb_fail "next CSeq not answered 200"
[ "$(ag_spool_depth)" = 2 ] || tb_fail "a new CSeq was taken for a duplicate"

ag_stop
ag_start
ag_send_iwf after-restart 200 "${IDS[@]}" || tb_fail "re-send after restart not answered 200"
[ "$(ag_spool_depth)" = 2 ] || tb_fail "re-send after restart stored a second message"
[ "$(counter received)" = 0 ] || tb_fail "re-send after restart counted as received"
tb_log "re-send after a restart: 200, still one message"

ag_receive "$TB_DIR/got" 2 5 || tb_fail "the two messages were not delivered"
[ "$(ls "$TB_DIR/got" | wc -l)" = 2 ] || tb_fail "expected 2 deliveries, got $(ls "$TB_DIR/got" | wc -l)"
sha256sum "$TB_DIR"/got/*.bin | grep -q "^$want " || tb_fail "the first copy's bytes were not delivered"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after the ACKs"

ag_send_iwf after-ack 200 "${IDS[@]}" || tb_fail "re-send after the ACK not answered 200"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "re-send after the ACK stored the message again"
ag_kill9
ag_start
ag_send_iwf after-ack-restart 200 "${IDS[@]}" || tb_fail "re-send after ACK and crash not answered 200"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "re-send after ACK and crash stored the message again"
mkdir -p "$TB_DIR/none"
ag_ctl receive --lmr-type '*' --count 1 --timeout 2 --output "$TB_DIR/none" >"$TB_DIR/none.out" 2>&1
rc=$?
[ "$rc" = 4 ] || tb_fail "receive after the re-sends: exit $rc, expected 4 (nothing to deliver)"
[ -z "$(ls -A "$TB_DIR/none" 2>/dev/null)" ] || tb_fail "a re-sent copy was delivered a second time"
[ "$(counter delivered)" = 0 ] || tb_fail "a re-sent copy was delivered after the restart"
tb_log "re-send after the ACK (and after a crash): 200, nothing delivered again"
ag_stop
tb_pass
