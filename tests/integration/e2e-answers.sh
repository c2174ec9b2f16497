#!/usr/bin/env bash
# Issue 3, test 6: every row of DESIGN §2's answer table that a crafted IWF
# request can reach (415, 413, each 400 shape, 404, 403), answered with the
# exact status; the agent keeps working afterwards and delivers a valid
# message sent right after. Also: P-Asserted-Identity is the sender when
# present, and a re-sent MESSAGE is answered 200 without a second delivery.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-answers
ag_setup
ag_write_config tcp "[delivery]" "max-payload = 1000" "max-body = 2000"
ag_start

# craft NAME PYTHON-EXPR-FOR-(parts)  write a multipart body built with tbsip
craft() {
	python3 - "$TB_DIR/$1.body" "$top_srcdir/tests/testbed" "$AG_ID" "$AG_KMF" "$2" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import tbsip
me, kmf = sys.argv[3], sys.argv[4]
good_info = tbsip.mcptt_info(me)
good_iw = tbsip.build_iwdata("TETRA", kmf, bytes(range(256)))
parts = eval(sys.argv[5])
open(sys.argv[1], "wb").write(tbsip.build_multipart(parts, "b0undary"))
PY
}
MP="multipart/mixed;boundary=b0undary"

# row NAME STATUS [iwf-send args]  one crafted request, its exact answer
row() {
	local name=$1 status=$2
	shift 2
	ag_send_iwf "$name" "$status" "$@" || tb_fail "$name: expected $status, got $(tb_value "$TB_DIR/$name.out" status)"
	tb_log "$name -> $status $(sed -n 's/^status=[0-9]* reason=//p' "$TB_DIR/$name.out")"
}

printf 'not a multipart body' >"$TB_DIR/text.body"
row unsupported-type 415 --raw-body-file "$TB_DIR/text.body" --content-type text/plain
[ "$(tb_value "$TB_DIR/unsupported-type.out" accept)" = multipart/mixed ] || tb_fail "415 without Accept: multipart/mixed"

head -c 3000 /dev/urandom >"$TB_DIR/big.bin"
row body-too-large 413 --payload-file "$TB_DIR/big.bin"
head -c 1500 /dev/urandom >"$TB_DIR/bigpayload.bin"
row payload-too-large 413 --payload-file "$TB_DIR/bigpayload.bin"

row garbage-multipart 400 --raw-body-file "$TB_DIR/text.body" --content-type "$MP"
row no-boundary 400 --content-type multipart/mixed
row missing-mcptt-info 400 --omit-part mcptt-info
row missing-iwdata 400 --omit-part iwdata
craft bad-xml '[(tbsip.CT_MCPTT_INFO, b"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"><mcptt-Params>"), (tbsip.CT_IWDATA, good_iw)]'
row malformed-xml 400 --raw-body-file "$TB_DIR/bad-xml.body" --content-type "$MP"
craft no-request-uri '[(tbsip.CT_MCPTT_INFO, b"<mcpttinfo xmlns=\"urn:3gpp:ns:mcpttInfo:1.0\"/>"), (tbsip.CT_IWDATA, good_iw)]'
row missing-request-uri 400 --raw-body-file "$TB_DIR/no-request-uri.body" --content-type "$MP"
printf '\001\001\000\020TE' >"$TB_DIR/short.iw"
row malformed-iwdata 400 --iwdata-file "$TB_DIR/short.iw"
row missing-lmr-type 400 --lmr-type -
row missing-kmf-uri 400 --kmf-uri -
grep -q 'interworking-data' "$TB_DIR/malformed-iwdata.out" || tb_fail "400 reason does not say which part is malformed"

row wrong-mc-service-id 404 --mcptt-uri "sip:bob@$TB_KAM_DOMAIN"
row wrong-mc-service-id-ie 404 --mc-service-id "sip:bob@$TB_KAM_DOMAIN"
row untrusted-sender 403 --from sip:intruder@iwf.test --kmf-uri "$AG_KMF"
row unknown-kmf 403 --kmf-uri sip:other-kmf@iwf.test
for n in pai first valid; do head -c 300 /dev/urandom >"$TB_DIR/$n.bin"; done
row pai-is-the-sender 200 --payload-file "$TB_DIR/pai.bin" --from sip:intruder@iwf.test --pai "$AG_KMF" --kmf-uri "$AG_KMF"

# A re-sent MESSAGE (same Call-ID, CSeq, From tag) is answered 200 again, once kept.
row first 200 --payload-file "$TB_DIR/first.bin" --call-id resend-1@iwf --cseq 7 --from-tag ft1
row resent 200 --payload-file "$TB_DIR/first.bin" --call-id resend-1@iwf --cseq 7 --from-tag ft1

# Still working: the refusals left nothing behind, a valid message goes through.
row valid-after 200 --payload-file "$TB_DIR/valid.bin"
[ "$(ag_spool_depth)" = 3 ] || tb_fail "spool holds $(ag_spool_depth) messages, expected 3 (pai, first, valid-after)"
ag_receive "$TB_DIR/got" 3 5 || tb_fail "valid messages not delivered after the refusals"
for n in pai first valid; do
	want=$(sha256sum "$TB_DIR/$n.bin" | cut -d' ' -f1)
	[ "$(sha256sum "$TB_DIR"/got/*.bin | grep -c "^$want ")" = 1 ] ||
		tb_fail "$n not delivered exactly once"
done
[ "$(ag_status_field counters.rejected)" -ge 15 ] || tb_fail "rejected counter not counting"
tb_pid_alive "$AG_PID" || tb_fail "agent died"
ag_stop
tb_pass
