#!/usr/bin/env bash
# Issue 8, fault injection 6 — hostile SIP input.  A batch of malformed IWF
# MESSAGEs (tests/testbed/iwf-send, crafted bodies and --escapes for raw
# octets in headers), each answered with the status DESIGN §2 names, and
# after each one a valid MESSAGE that must reach the consumer
# (tests/integration/fault-consumer) within 5 s.
#
# Path: through Kamailio over TCP, as an IWF's messages come, except
#   * the 1 MB body: Kamailio cannot carry it (its TCP reader refuses a SIP
#     message over 64 kB and closes the connection, so it never reaches the
#     agent): the test checks it is not answered 200 through Kamailio and
#     sends it straight to the agent's own TCP port, where it must get 413;
#   * NUL bytes in header values: a NUL in Subject both ways, through
#     Kamailio and straight to the agent; a NUL in From straight only.
# Kamailio does not look into bodies and passes the non-UTF-8 From and
# P-Asserted-Identity through as they are.
#
#   truncated multipart, wrong boundary, missing close delimiter  -> 400
#   XML bomb (billion laughs) and XXE in the mcptt-info part       -> 400
#     (DOCTYPE refused before any entity is declared: answered within
#      2 s, the agent's peak RSS grows by less than 8 MB)
#   non-UTF-8 mcpttURI (XML), non-UTF-8 KMF URI IE                 -> 400
#   non-UTF-8 From (no PAI), non-UTF-8 P-Asserted-Identity         -> 403
#   1 MB body                                                      -> 413
#   NUL byte in a header value (Subject)                           -> 400
#   NUL byte in From (straight to the agent: Kamailio answers such a
#     From itself, 407)           -> 400, or the connection closed unanswered
# and in each NUL case the connection must not be left stuck: the next
# valid MESSAGE through Kamailio (the same proxy connection) is delivered.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init fault-hostile-sip
CONSUMER=$top_builddir/tests/integration/fault-consumer
[ -x "$CONSUMER" ] || tb_fail "$CONSUMER not built"
ag_setup
ag_start
DIRECT=127.0.0.1:$AG_SIP_PORT
MP="multipart/mixed;boundary=bnd"
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$AG_PID/status"; }

"$CONSUMER" --socket "$AG_SOCK" >"$TB_DIR/consumer.out" 2>"$TB_DIR/consumer.err" &
cpid=$!
tb_track_pid "$cpid" fault-consumer
tb_wait_for 5 grep -q '^connected' "$TB_DIR/consumer.out" || tb_fail "the consumer did not connect"

# The crafted bodies.
"$TB_PYTHON" - "$TB_DIR" "$AG_ID" "$AG_KMF" "$top_srcdir/tests/testbed" <<'PY' || tb_fail "cannot craft the bodies"
import sys
d, me, kmf = sys.argv[1:4]
sys.path.insert(0, sys.argv[4])
import tbsip
info = tbsip.mcptt_info(me)
iw = tbsip.build_iwdata("TETRA", kmf, bytes(range(256)))
good = tbsip.build_multipart([(tbsip.CT_MCPTT_INFO, info), (tbsip.CT_IWDATA, iw)], "bnd")
def put(name, data):
    open("%s/%s" % (d, name), "wb").write(data)
def mp(*parts):
    return tbsip.build_multipart(list(parts), "bnd")
put("truncated.body", good[:len(good) - 150])          # cut inside the iwdata part
put("no-close.body", good[:good.rindex(b"--bnd--")])   # no close delimiter
put("no-close-crlf.body", good[:good.rindex(b"\r\n--bnd--")])
lols = b"".join(b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1)) * 10) for i in range(1, 10))
bomb = (b'<?xml version="1.0"?>\n<!DOCTYPE mcpttinfo [\n<!ENTITY lol0 "lol">\n' + lols +
        b']>\n<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-request-uri>'
        b'<mcpttURI>&lol9;</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>')
put("bomb.body", mp((tbsip.CT_MCPTT_INFO, bomb), (tbsip.CT_IWDATA, iw)))
xxe = (b'<?xml version="1.0"?>\n<!DOCTYPE mcpttinfo [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
       b'<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0"><mcptt-Params><mcptt-request-uri>'
       b'<mcpttURI>&x;</mcpttURI></mcptt-request-uri></mcptt-Params></mcpttinfo>')
put("xxe.body", mp((tbsip.CT_MCPTT_INFO, xxe), (tbsip.CT_IWDATA, iw)))
bad_xml_uri = info.replace(me.encode(), me.encode()[:-4] + b"\xff\xfe" + me.encode()[-4:])
put("xml-non-utf8.body", mp((tbsip.CT_MCPTT_INFO, bad_xml_uri), (tbsip.CT_IWDATA, iw)))
bad_kmf = (bytes([1]) + tbsip.ie(1, b"TETRA") + tbsip.ie(2, b"sip:kmf\xff\xfe@iwf.test") +
           tbsip.ie(4, bytes(range(256))))
put("kmf-non-utf8.body", mp((tbsip.CT_MCPTT_INFO, info), (tbsip.CT_IWDATA, bad_kmf)))
put("1mb.body", mp((tbsip.CT_MCPTT_INFO, info), (tbsip.CT_IWDATA, iw),
                   ("application/octet-stream", b"\xa5" * (1 << 20))))
PY

# refuse NAME PROXY STATUS REASON-ERE [iwf-send args]: one hostile MESSAGE
# and its exact answer
refuse() {
	local name=$1 proxy=$2 status=$3 reason=$4 got
	shift 4
	tb_iwf_send "$name" --proxy "$proxy" --transport tcp --to "$AG_ID" --from "$AG_KMF" \
		--timeout 8 --expect "$status" "$@" >/dev/null
	got=$(grep '^status=' "$TB_DIR/$name.out")
	[[ $got =~ ^status=$status\ reason=$reason ]] ||
		tb_fail "$name: expected $status /$reason/, got '${got:-nothing}'"
	tb_log "$name -> ${got#status=}"
}
# valid_try: a valid MESSAGE through Kamailio; 0 when it was answered 200
# and reached the consumer within 5 s, else 1 with the reason in VALID_WHY
VALID_WHY=
valid_try() {
	local n sha
	n=$(($(ls "$TB_DIR"/valid*.bin 2>/dev/null | wc -l) + 1))
	head -c 300 /dev/urandom >"$TB_DIR/valid$n.bin"
	sha=$(sha256sum "$TB_DIR/valid$n.bin" | cut -d' ' -f1)
	if ! ag_send_iwf "valid$n" 200 --payload-file "$TB_DIR/valid$n.bin" --timeout 8 >/dev/null; then
		VALID_WHY="not answered 200: $(grep '^status=' "$TB_DIR/valid$n.out")"
		return 1
	fi
	tb_wait_for 5 grep -q "^acked id=[0-9]* sha256=$sha " "$TB_DIR/consumer.out" ||
		{ VALID_WHY="answered 200, not delivered within 5 s"; return 1; }
}
# valid_after NAME: valid_try, failing the test
valid_after() {
	valid_try || tb_fail "valid message after '$1' $VALID_WHY"
}
KAM=127.0.0.1:$TB_KAM_PORT

valid_after start
refuse truncated-multipart "$KAM" 400 'Bad Request \(Multipart' --raw-body-file "$TB_DIR/truncated.body" --content-type "$MP"
valid_after truncated-multipart
refuse wrong-boundary "$KAM" 400 'Bad Request \(Multipart' --content-type "multipart/mixed;boundary=not-the-one"
valid_after wrong-boundary
refuse no-close-delimiter "$KAM" 400 'Bad Request \(Multipart' --raw-body-file "$TB_DIR/no-close.body" --content-type "$MP"
refuse no-close-delimiter-crlf "$KAM" 400 'Bad Request \(Multipart' --raw-body-file "$TB_DIR/no-close-crlf.body" --content-type "$MP"
valid_after no-close-delimiter

hwm0=$(status_kb VmHWM)
t0=${EPOCHREALTIME/[.,]/}
refuse xml-bomb "$KAM" 400 'Bad Request \(mcptt-info: DOCTYPE' --raw-body-file "$TB_DIR/bomb.body" --content-type "$MP"
ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
refuse xml-xxe "$KAM" 400 'Bad Request \(mcptt-info: DOCTYPE' --raw-body-file "$TB_DIR/xxe.body" --content-type "$MP"
hwm1=$(status_kb VmHWM)
tb_log "XML bomb answered in $ms ms (sender's whole run); agent peak RSS $hwm0 -> $hwm1 kB"
[ "$ms" -lt 2000 ] || tb_fail "the XML bomb took $ms ms to answer"
[ $((hwm1 - hwm0)) -lt 8192 ] || tb_fail "the XML bomb grew the agent's peak RSS from $hwm0 to $hwm1 kB"
valid_after xml-bomb

refuse xml-non-utf8-uri "$KAM" 400 'Bad Request \(mcptt-info' --raw-body-file "$TB_DIR/xml-non-utf8.body" --content-type "$MP"
refuse kmf-ie-non-utf8 "$KAM" 400 'Bad Request \(.*' --raw-body-file "$TB_DIR/kmf-non-utf8.body" --content-type "$MP"
valid_after non-utf8-body
refuse from-non-utf8 "$KAM" 403 'Forbidden' --escapes --from 'sip:kmf\xff\xfe@iwf.test' --kmf-uri "$AG_KMF"
refuse pai-non-utf8 "$KAM" 403 'Forbidden' --escapes --pai 'sip:kmf\xc3\x28@iwf.test' --from sip:other@iwf.test --kmf-uri "$AG_KMF"
valid_after non-utf8-uri

# 1 MB: Kamailio refuses to carry it; the agent itself answers 413.
tb_iwf_send 1mb-via-kamailio --transport tcp --to "$AG_ID" --from "$AG_KMF" --timeout 8 \
	--raw-body-file "$TB_DIR/1mb.body" --content-type "$MP" >/dev/null
got=$(grep '^status=' "$TB_DIR/1mb-via-kamailio.out")
[[ $got != status=200* ]] || tb_fail "a 1 MB body was answered 200 through Kamailio"
tb_log "1 MB body through Kamailio: not carried, no answer ($(grep -c 'tcp_read_req\|buffer overrun\|too big\|Message too' "$TB_KAM_LOG") Kamailio log lines about it)"
refuse 1mb-direct "$DIRECT" 413 'Request Entity Too Large' --raw-body-file "$TB_DIR/1mb.body" --content-type "$MP" --timeout 15
valid_after 1mb
tb_pid_alive "$AG_PID" || tb_fail "the agent died"

# NUL bytes in header values: malformed SIP, 400 — and, above all, the
# connection it came on keeps working.  Each case is checked to the end
# and the failures reported together, so a failure says what broke after.
FAILS=()
# nul_case NAME PROXY yes|no [iwf-send args]: yes = closing the connection
# without an answer is also right (the NUL is in From, which a response
# must copy: RFC 3261 8.2.6.2), as long as it is closed, not left hanging
nul_case() {
	local name=$1 proxy=$2 may_close=$3 got t0 ms
	shift 3
	t0=${EPOCHREALTIME/[.,]/}
	tb_iwf_send "$name" --proxy "$proxy" --transport tcp --to "$AG_ID" --from "$AG_KMF" \
		--timeout 8 --expect 400 --escapes "$@" >/dev/null
	ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
	got=$(grep '^status=' "$TB_DIR/$name.out")
	if [[ $got =~ ^status=400\ reason=Bad\ Request ]]; then
		tb_log "$name -> ${got#status=} after $ms ms"
	elif [ "$may_close" = yes ] && [[ $got == status=timeout* ]] && [ "$ms" -lt 7000 ]; then
		tb_log "$name -> connection closed by the agent without an answer after $ms ms"
	else
		tb_log "$name -> ${got#status=} after $ms ms"
		FAILS+=("$name: expected 400, got '${got:-nothing}' after $ms ms")
	fi
	valid_try || FAILS+=("after $name a valid MESSAGE through Kamailio was $VALID_WHY (registration: $(ag_state))")
}
nul_case nul-subject-direct "$DIRECT" no --header 'Subject: key\x00material'
nul_case nul-subject "$KAM" no --header 'Subject: key\x00material'
nul_case nul-from-direct "$DIRECT" yes --from 'sip:kmf@iwf.test\x00;x=y' --kmf-uri "$AG_KMF"
[ ${#FAILS[@]} = 0 ] || tb_fail "NUL bytes in header values: $(printf '%s; ' "${FAILS[@]}")"

kill -TERM "$cpid"
tb_wait_pid "$cpid" 5 >/dev/null
! grep -q 'verified=0' "$TB_DIR/consumer.out" || tb_fail "a delivery failed its fingerprint"
n_valid=$(ls "$TB_DIR"/valid*.bin | wc -l)
[ "$(grep -c '^delivered ' "$TB_DIR/consumer.out")" = "$n_valid" ] ||
	tb_fail "the consumer got $(grep -c '^delivered ' "$TB_DIR/consumer.out") deliveries, $n_valid valid messages were sent"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "a refused message is in the spool"
ag_stop
tb_pass
