#!/usr/bin/env bash
# Issue 3, test 7: `lmrsecctl send` makes the agent send a client-initiated
# MESSAGE through Kamailio (answering its 407 with the stored credentials)
# to the IWF. A sipp UAS checks the headers of DESIGN §2 and answers 200:
# lmrsecctl exits 0. A Python UAS checks the body: mcptt-info (request URI =
# KMF, calling user = us) and the interworking data (LMR type, KMF URI,
# payload bytes). A UAS answering 403: lmrsecctl exits 1 and prints 403.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-send
iwf_port=$(tb_free_port)
ag_setup --iwf-addr "127.0.0.1:$iwf_port"
ag_start
head -c 700 /dev/urandom >"$TB_DIR/key.bin"
want=$(sha256sum "$TB_DIR/key.bin" | cut -d' ' -f1)
challenges() { grep -c 'challenged for realm' "$AG_LOG"; }

# --- headers (sipp) and 200 -> exit 0
before=$(challenges)
tb_sipp_bg iwf-200 "$iwf_port" iwf-uas-200.xml
sipp_pid=$TB_LAST_PID
tb_sipp_wait_ready "$iwf_port" || tb_fail "sipp UAS did not start"
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" --timeout 10 >"$TB_DIR/send-200.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || tb_fail "lmrsecctl send exited $rc: $(cat "$TB_DIR/send-200.out")"
grep -q '^200' "$TB_DIR/send-200.out" || tb_fail "lmrsecctl did not print 200: $(cat "$TB_DIR/send-200.out")"
tb_wait_pid "$sipp_pid" 10 || tb_fail "sipp UAS found a missing or wrong header (see iwf-200 traces)"
[ "$(challenges)" -gt "$before" ] || tb_fail "the MESSAGE was not challenged (407) and answered"
tb_log "send -> 200 after a 407 challenge; sipp saw every DESIGN §2 header"

# --- body (Python UAS) -> exact payload and mcptt-info
tb_sink_start iwf-body "$iwf_port" --status 200 --count 1 --timeout 20
sink_pid=$TB_LAST_PID
printf 'stdin-payload' | ag_ctl send --lmr-type P25 --to "$AG_KMF" >"$TB_DIR/send-stdin.out" 2>&1 ||
	tb_fail "send from stdin failed: $(cat "$TB_DIR/send-stdin.out")"
tb_wait_pid "$sink_pid" 10 || tb_fail "sip-sink did not get the MESSAGE"
tb_assert_grep "$TB_DIR/iwf-body.out" "iwdata n=1 .*lmr_type=P25 kmf_uri=$AG_KMF .*payload_sha256=$(printf stdin-payload | sha256sum | cut -d' ' -f1)" \
	"interworking data wrong (stdin payload)"
body=$(ls "$TB_DIR"/iwf-body/*.body | head -n 1)
python3 - "$body" "$AG_KMF" "$AG_ID" <<'PY' || tb_fail "mcptt-info part wrong"
import re, sys
body = open(sys.argv[1], "rb").read().decode("latin-1")
kmf, me = sys.argv[2], sys.argv[3]
req = re.search(r"<mcptt-request-uri[^>]*>\s*<mcpttURI>([^<]*)</mcpttURI>", body)
calling = re.search(r"<mcptt-calling-user-id[^>]*>\s*<mcpttURI>([^<]*)</mcpttURI>", body)
assert req and req.group(1) == kmf, req
assert calling and calling.group(1) == me, calling
PY
grep -q "^MESSAGE sip:kmf@iwf.test" "$TB_DIR"/iwf-body/1.msg || tb_fail "Request-URI is not the KMF URI"
grep -qi "^From: .*<\?$AG_ID" "$TB_DIR"/iwf-body/1.msg || tb_fail "From is not our MC service ID"
grep -qi "^To: .*$AG_KMF" "$TB_DIR"/iwf-body/1.msg || tb_fail "To is not the KMF URI"
tb_log "body carries mcptt-info (KMF, us) and the exact payload"

# --- binary file payload arrives intact
tb_sink_start iwf-bin "$iwf_port" --status 200 --count 1 --timeout 20
sink_pid=$TB_LAST_PID
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" >/dev/null 2>&1 || tb_fail "binary send failed"
tb_wait_pid "$sink_pid" 10 || tb_fail "sip-sink did not get the binary MESSAGE"
tb_assert_grep "$TB_DIR/iwf-bin.out" "payload_sha256=$want" "binary payload not intact"

# --- 403 -> exit 1 with the status
tb_sipp_bg iwf-403 "$iwf_port" iwf-uas-403.xml
sipp_pid=$TB_LAST_PID
tb_sipp_wait_ready "$iwf_port" || tb_fail "sipp UAS (403) did not start"
ag_ctl send --lmr-type TETRA --file "$TB_DIR/key.bin" --timeout 10 >"$TB_DIR/send-403.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || tb_fail "lmrsecctl send exited $rc on a 403, expected 1"
grep -q '403' "$TB_DIR/send-403.out" || tb_fail "lmrsecctl did not print 403: $(cat "$TB_DIR/send-403.out")"
tb_wait_pid "$sipp_pid" 10 || tb_fail "sipp UAS (403) found a missing or wrong header"
tb_log "send -> 403: exit 1, printed $(head -n 1 "$TB_DIR/send-403.out")"
[ "$(ag_status_field counters.sent)" = 3 ] || tb_fail "sent counter is not 3"
ag_stop
tb_pass
