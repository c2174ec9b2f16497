#!/bin/bash
#
# Self-test of the real-peer test bed (tests/testbed/): Kamailio as the MC
# service server stand-in, sipp and the Python peers as users and IWF.
# No lmrsec code is involved; this proves the bed itself before the agent's
# integration tests rely on it.
#
#   1. bob registers (REGISTER -> 401 -> 200), then a UAS listens on his contact
#   2. alice registers (401, 200) and sends a MESSAGE to bob (407, 200); bob's
#      UAS gets it
#   3. a wrong password is refused (401 again, never 200)
#   4. the IWF sends IWF-originated MESSAGEs to bob over UDP and TCP (iwf-send)
#      and with sipp's [file] body; bob's sip-sink receives the binary
#      interworking-data (bytes 0x00..0xFF) intact (SHA-256 and cmp)
#  4b. carol registers over TCP and gets the same over TCP
#   5. a MESSAGE to a user who is not registered gets 404 (iwf-send and sipp,
#      and sipp's status check really fails on a mismatch)
#   6. alice's client-initiated MESSAGE to the KMF URI reaches the IWF UAS,
#      which checks the DESIGN §2 headers; answered 200, then 403; a MESSAGE
#      without those headers makes the IWF UAS fail
#   7. everything is stopped and no started process is left
#
# Exit 0 pass, 1 fail, 77 skip (kamailio, sipp or python3 missing).
# Runs from the source or the build tree: automake sets $srcdir.

here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${srcdir:-}" ] && [ -r "$srcdir/tests/testbed/testbed.sh" ]; then
	TB_TESTBED_DIR=$(cd "$srcdir/tests/testbed" && pwd)
else
	TB_TESTBED_DIR=$(cd "$here/../testbed" && pwd)
fi
# shellcheck source-path=SCRIPTDIR source=../testbed/testbed.sh
. "$TB_TESTBED_DIR/testbed.sh"

tb_require kamailio sipp python3 sha256sum cmp
tb_init selftest
started=$(date +%s%N)

DOMAIN=mc.test
KMF=kmf@iwf.test
IWF_PORT=$(tb_free_port)
BOB_PORT=$(tb_free_port)
ALICE_PORT=$(tb_free_port)
CAROL_PORT=$(tb_free_port)
SIPP_PORT=$(tb_free_port)

tb_start_kamailio --users "alice:alice-secret bob:bob-secret carol:carol-secret dave:dave-secret" \
	--domain "$DOMAIN" --iwf-uri "sip:$KMF" \
	--iwf-addr "127.0.0.1:$IWF_PORT" --iwf-transport udp
KAM=127.0.0.1:$TB_KAM_PORT

# The interworking-data part the sipp scenarios carry: LMR type TETRA, the
# KMF URI, payload 0x00..0xFF.
"$TB_PYTHON" "$TB_TESTBED_DIR/iwf-send" --dry-run --kmf-uri "sip:$KMF" \
	--write-iwdata "$TB_DIR/iwdata.bin" >"$TB_DIR/iwdata.out" || tb_fail "iwf-send could not build a body"
payload_sha=$("$TB_PYTHON" -c 'import hashlib; print(hashlib.sha256(bytes(range(256))).hexdigest())')
[ "$(tb_value "$TB_DIR/iwdata.out" payload_sha256)" = "$payload_sha" ] ||
	tb_fail "iwf-send's default payload is not the bytes 0x00..0xFF"
iwdata_sha=$(sha256sum <"$TB_DIR/iwdata.bin" | cut -d' ' -f1)

# --- 1. bob registers, then listens on his contact ---------------------------
tb_log "1. bob registers from 127.0.0.1:$BOB_PORT"
tb_sipp bob-register "$BOB_PORT" register-only-uac.xml \
	-key user bob -key password bob-secret -key domain "$DOMAIN" "$KAM" ||
	tb_fail "bob could not register"
tb_expect_statuses bob-register "401 200"

tb_sipp_bg bob-uas "$BOB_PORT" message-uas.xml
bob_uas=$TB_LAST_PID
tb_sipp_wait_ready "$BOB_PORT" udp || tb_fail "bob's UAS did not bind $BOB_PORT"

# --- 2. alice registers and sends a MESSAGE to bob ---------------------------
tb_log "2. alice registers and sends a MESSAGE to bob"
tb_sipp alice-to-bob "$ALICE_PORT" register-uac.xml \
	-key user alice -key password alice-secret -key domain "$DOMAIN" \
	-key peer "bob@$DOMAIN" -key iwdata iwdata.bin -key expected 200 "$KAM" ||
	tb_fail "alice's MESSAGE to bob failed"
tb_expect_statuses alice-to-bob "401 200 407 200"
tb_wait_pid "$bob_uas" 10 || tb_fail "bob's UAS did not complete its call"
tb_assert_grep "$(tb_trace bob-uas)" "^MESSAGE sip:bob@127\\.0\\.0\\.1:$BOB_PORT" \
	"bob's UAS did not get a MESSAGE on its contact"
tb_assert_grep "$(tb_trace bob-uas)" "^From: <sip:alice@$DOMAIN>" \
	"bob's MESSAGE is not from alice"
tb_log "bob's UAS got alice's MESSAGE and answered 200"

# --- 3. a wrong password is refused ------------------------------------------
tb_log "3. alice registers with a wrong password"
if tb_sipp alice-bad-password "$ALICE_PORT" register-only-uac.xml \
	-key user alice -key password wrong -key domain "$DOMAIN" "$KAM"; then
	tb_fail "a wrong password registered"
fi
bad=$(tb_statuses "$(tb_trace alice-bad-password)")
case " $bad " in
*" 200 "*) tb_fail "a wrong password got 200 (responses: $bad)" ;;
" 401 401 "* | " 401 403 "*) tb_log "wrong password refused (responses: $bad)" ;;
*) tb_fail "unexpected responses to a wrong password: $bad" ;;
esac

# --- 4. IWF-originated MESSAGEs reach bob byte-exact -------------------------
tb_log "4. the IWF sends binary interworking-data to bob (udp, tcp, sipp)"
tb_sink_start bob-sink "$BOB_PORT" --transport udp --count 3
bob_sink=$TB_LAST_PID
tb_iwf_send iwf-udp --to "sip:bob@$DOMAIN" --from "sip:$KMF" --expect 200 \
	--write-body "$TB_DIR/sent-udp.body" ||
	tb_fail "IWF MESSAGE over UDP was not answered 200"
tb_iwf_send iwf-tcp --transport tcp --to "sip:bob@$DOMAIN" --from "sip:$KMF" \
	--expect 200 --write-body "$TB_DIR/sent-tcp.body" || tb_fail "IWF MESSAGE over TCP was not answered 200"
tb_sipp iwf-sipp "$SIPP_PORT" iwf-message-uac.xml -key target "bob@$DOMAIN" \
	-key kmf "$KMF" -key iwdata iwdata.bin -key expected 200 "$KAM" ||
	tb_fail "sipp's IWF MESSAGE was not answered 200"
tb_wait_pid "$bob_sink" 10 || tb_fail "bob's sip-sink did not get 3 MESSAGEs"
sed 's/^/#   /' "$TB_DIR/bob-sink.out"
for n in 1 2 3; do
	got=$(sed -n "s/^part n=$n index=2 content_type=application\\/vnd\\.3gpp\\.interworking-data .*sha256=\\([0-9a-f]*\\)\$/\\1/p" \
		"$TB_DIR/bob-sink.out")
	[ "$got" = "$iwdata_sha" ] ||
		tb_fail "MESSAGE $n: interworking-data sha256 '$got', sent $iwdata_sha"
	grep -q "^iwdata n=$n type=0x01 lmr_type=TETRA kmf_uri=sip:$KMF payload_len=256 payload_sha256=$payload_sha\$" \
		"$TB_DIR/bob-sink.out" || tb_fail "MESSAGE $n: payload IE not intact"
done
cmp "$TB_DIR/sent-udp.body" "$TB_DIR/bob-sink/1.body" ||
	tb_fail "the UDP MESSAGE body changed on its way"
cmp "$TB_DIR/sent-tcp.body" "$TB_DIR/bob-sink/2.body" ||
	tb_fail "the TCP MESSAGE body changed on its way"
tb_log "interworking-data arrived intact (sha256 $iwdata_sha)"

tb_log "4b. carol registers over TCP; the IWF's MESSAGE reaches her over TCP"
tb_sipp carol-register "$CAROL_PORT" register-only-uac.xml -t t1 \
	-key user carol -key password carol-secret -key domain "$DOMAIN" "$KAM" ||
	tb_fail "carol could not register over TCP"
tb_expect_statuses carol-register "401 200"
tb_sink_start carol-sink "$CAROL_PORT" --transport tcp --count 1
carol_sink=$TB_LAST_PID
tb_iwf_send iwf-carol --to "sip:carol@$DOMAIN" --from "sip:$KMF" --expect 200 ||
	tb_fail "IWF MESSAGE to carol (TCP contact) was not answered 200"
tb_wait_pid "$carol_sink" 10 || tb_fail "carol's sip-sink did not get the MESSAGE"
grep -q "^part n=1 index=2 content_type=application/vnd\.3gpp\.interworking-data len=[0-9]* sha256=$iwdata_sha\$" \
	"$TB_DIR/carol-sink.out" || tb_fail "carol's interworking-data is not intact"
tb_log "carol got the interworking-data intact over TCP"

# --- 5. not registered: 404 --------------------------------------------------
tb_log "5. MESSAGE to dave, who is not registered"
tb_iwf_send iwf-404 --to "sip:dave@$DOMAIN" --expect 404 ||
	tb_fail "MESSAGE to an unregistered user was not answered 404"
tb_sipp iwf-sipp-404 "$SIPP_PORT" iwf-message-uac.xml -key target "dave@$DOMAIN" \
	-key kmf "$KMF" -key iwdata iwdata.bin -key expected 404 "$KAM" ||
	tb_fail "sipp did not accept the expected 404"
if tb_sipp iwf-sipp-mismatch "$SIPP_PORT" iwf-message-uac.xml \
	-key target "dave@$DOMAIN" -key kmf "$KMF" -key iwdata iwdata.bin \
	-key expected 200 "$KAM"; then
	tb_fail "sipp passed although 404 came and 200 was expected"
fi
tb_log "404 seen; sipp fails when the status differs from -key expected"

# --- 6. client-initiated MESSAGE to the IWF ----------------------------------
tb_log "6. alice sends a client-initiated MESSAGE to sip:$KMF"
for answer in 200 403; do
	tb_sipp_bg "iwf-uas-$answer" "$IWF_PORT" "iwf-uas-$answer.xml"
	iwf_uas=$TB_LAST_PID
	tb_sipp_wait_ready "$IWF_PORT" udp || tb_fail "IWF UAS did not bind $IWF_PORT"
	tb_sipp "alice-to-iwf-$answer" "$ALICE_PORT" register-uac.xml \
		-key user alice -key password alice-secret -key domain "$DOMAIN" \
		-key peer "$KMF" -key iwdata iwdata.bin -key expected "$answer" "$KAM" ||
		tb_fail "alice's MESSAGE to the IWF did not end in $answer"
	tb_expect_statuses "alice-to-iwf-$answer" "401 200 407 $answer"
	tb_wait_pid "$iwf_uas" 10 || tb_fail "the IWF UAS ($answer) failed its header checks"
	tb_assert_grep "$TB_DIR/iwf-uas-$answer.log.log" \
		"mcptt-request-uri sip:$KMF;" "the IWF UAS did not log the mcptt-request-uri"
done

tb_log "6b. a MESSAGE to the IWF without the DESIGN §2 headers"
tb_sipp_bg iwf-uas-check "$IWF_PORT" iwf-uas-200.xml
iwf_uas=$TB_LAST_PID
tb_sipp_wait_ready "$IWF_PORT" udp || tb_fail "IWF UAS did not bind $IWF_PORT"
tb_iwf_send iwf-no-headers --from sip:someone@elsewhere.test --to "sip:$KMF" \
	--timeout 5 >/dev/null
if tb_wait_pid "$iwf_uas" 10; then
	tb_fail "the IWF UAS accepted a MESSAGE without Accept-Contact"
fi
tb_assert_grep "$TB_DIR/iwf-uas-check.err.log" "Accept-Contact" \
	"the IWF UAS failed, but not on the missing Accept-Contact"
tb_log "the IWF UAS rejects a MESSAGE without the required headers"

# --- 7. stop everything --------------------------------------------------------
tb_log "7. stopping"
# Checked before the stop: at shutdown Kamailio always logs a CRITICAL
# "receive_fd(): EOF" from its TCP processes.
if grep -aE 'CRITICAL|BUG:' "$TB_KAM_LOG"; then
	tb_fail "kamailio logged a critical error"
fi
tb_stop_kamailio
tb_stop_all
tb_check_all_stopped
elapsed=$((($(date +%s%N) - started) / 1000000))
tb_pass "test bed self-test in ${elapsed} ms"
