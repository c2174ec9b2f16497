#!/usr/bin/env bash
# The lmrsec demo (README command 1), on the real test bed:
#   Kamailio plays the MC service server, sipp plays the IWF/KMF,
#   lmrsec-agent is the device, examples/consumer the LMR crypto application.
# It registers, delivers one IWF key message to the consumer (fingerprint
# printed), sends one client-initiated message to the IWF and shows its 200,
# then stops everything. Nothing is left running.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
export top_builddir=${top_builddir:-$top_srcdir}
. "$top_srcdir/tests/integration/agent.sh"

step() { printf '\n==> %s\n' "$*"; }

tb_init demo
iwf_port=$(tb_free_port)
step "Starting the MC service server (Kamailio) with users alice and bob"
ag_setup --iwf-addr "127.0.0.1:$iwf_port"
echo "    Kamailio on 127.0.0.1:$TB_KAM_PORT, IWF/KMF $AG_KMF at 127.0.0.1:$iwf_port"

step "Starting lmrsec-agent for $AG_ID (digest auth, TCP)"
ag_start
ag_ctl status

step "Starting the LMR crypto application (examples/consumer) for TETRA keys"
"$AG_CONSUMER" --socket "$AG_SOCK" --count 1 TETRA >"$TB_DIR/consumer.out" 2>&1 &
consumer=$!
tb_track_pid "$consumer" consumer
tb_wait_for 5 sh -c "'$AG_CTL' --socket '$AG_SOCK' status | grep -q TETRA" ||
	tb_fail "the consumer did not subscribe"

step "The KMF sends a 32-byte TETRA key through the IWF (sipp UAC -> Kamailio -> agent)"
head -c 32 /dev/urandom >"$TB_DIR/key.bin"
"$TB_TESTBED_DIR/iwf-send" --dry-run --to "$AG_ID" --from "$AG_KMF" --lmr-type TETRA \
	--payload-file "$TB_DIR/key.bin" --write-iwdata "$TB_DIR/iwdata.bin" >/dev/null ||
	tb_fail "cannot build the interworking data"
echo "    key sha256 (at the KMF): $(sha256sum "$TB_DIR/key.bin" | cut -d' ' -f1)"
tb_sipp iwf-key "$(tb_free_port)" iwf-message-uac.xml -key target "alice@$TB_KAM_DOMAIN" \
	-key kmf "${AG_KMF#sip:}" -key iwdata iwdata.bin -key expected 200 \
	"127.0.0.1:$TB_KAM_PORT" || tb_fail "the IWF message was not answered 200"
echo "    sipp: 200 OK (the key is stored durably in the agent's spool)"
tb_wait_pid "$consumer" 10 || tb_fail "the consumer did not receive the key"
sed 's/^/    consumer: /' "$TB_DIR/consumer.out"

step "The device sends a client-initiated message to the KMF (agent -> Kamailio -> sipp UAS)"
tb_sipp_bg iwf-uas "$iwf_port" iwf-uas-200.xml
uas=$TB_LAST_PID
tb_sipp_wait_ready "$iwf_port" || tb_fail "the IWF UAS did not start"
printf 'key-ack-report' | ag_ctl send --lmr-type TETRA | sed 's/^/    lmrsecctl send: /'
[ "${PIPESTATUS[1]}" -eq 0 ] || tb_fail "the client-initiated message failed"
tb_wait_pid "$uas" 10 || tb_fail "the IWF UAS saw a missing header"
echo "    sipp UAS checked the MCPTT headers and answered 200"

step "Status, then stopping everything (SIGTERM unregisters the agent)"
ag_ctl status
ag_stop
tb_stop_all
tb_check_all_stopped
step "Demo complete"
tb_pass
