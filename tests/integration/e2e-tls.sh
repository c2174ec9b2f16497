#!/usr/bin/env bash
# Issue 5: transport = tls.
#  1. With the CA that signed Kamailio's certificate in certificate-dir (and
#     no agent certificate), the agent registers over TLS and receives a
#     message Kamailio relays over that TLS connection.
#  2. With another CA, the server is refused within 3 s, with a clear
#     reason in status and the log, retried on the backoff, and no SIP
#     request ever reaches Kamailio (no fallback to plain transport).
#  3. verify on and no cafile.pem: the agent does not start, and says why.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-tls
tb_require openssl

# --- a CA, a server certificate it signs (mc.test, 127.0.0.1), another CA
pki=$TB_DIR/pki
mkdir -p "$pki"
mkcert() {  # mkcert NAME SUBJECT [CA]: NAME.key, NAME.pem (self-signed without CA)
	local name=$1 subj=$2 ca=${3:-}
	if [ -z "$ca" ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$pki/$name.key" -out "$pki/$name.pem" -days 2 -subj "$subj" \
			-addext basicConstraints=critical,CA:TRUE 2>>"$pki/openssl.log"
	else
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subj" 2>>"$pki/openssl.log" &&
			printf 'subjectAltName=DNS:mc.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$pki/$name.ext" &&
			openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.pem" -CAkey "$pki/$ca.key" \
				-CAcreateserial -out "$pki/$name.pem" -days 2 -extfile "$pki/$name.ext" 2>>"$pki/openssl.log"
	fi || tb_fail "openssl could not make $name (see $pki/openssl.log)"
}
mkcert ca "/CN=lmrsec test CA"
mkcert other-ca "/CN=some other CA"
mkcert server "/CN=mc.test" ca
tb_log "made a CA, a server certificate it signed, and another CA"

tls_port=$(tb_free_port tcp)
ag_setup --transport tls --kamailio "--tls-port $tls_port --tls-cert $pki/server.pem --tls-key $pki/server.key --log-level 3"
tls_config() {  # tls_config CERTDIR: the agent talks TLS to Kamailio's TLS port
	ag_write_config tls "[tls]" "certificate-dir = $1"
	sed -i "s|^outbound-proxy = .*|outbound-proxy = sip:127.0.0.1:$tls_port;transport=tls|" "$AG_CONF"
}
# SIP requests Kamailio received (its debug log names each one).
requests() { grep -c 'receive_msg(): --- received sip message - request' "$TB_KAM_LOG"; }

# --- 1. the right CA: register, receive over TLS
mkdir -p "$AG_DIR/tls-good" "$AG_DIR/tls-other"
cp "$pki/ca.pem" "$AG_DIR/tls-good/cafile.pem"
cp "$pki/other-ca.pem" "$AG_DIR/tls-other/cafile.pem"
tls_config "$AG_DIR/tls-good"
ag_start
[ "$(ag_status_field registration.transport)" = tls ] || tb_fail "status does not show transport tls"
tb_assert_grep "$TB_KAM_LOG" "registrar: sip:alice@mc.test registered contact <sips:.* via tls" \
	"Kamailio did not see the REGISTER over TLS"
ag_send_iwf over-tls 200 || tb_fail "a message relayed over TLS was not accepted"
want=$(tb_value "$TB_DIR/over-tls.out" payload_sha256)
ag_receive "$TB_DIR/got" 1 || tb_fail "lmrsecctl receive failed"
got=$(sha256sum "$TB_DIR"/got/*.bin | cut -d' ' -f1)
[ "$got" = "$want" ] || tb_fail "payload received over TLS differs"
tb_assert_grep "$TB_KAM_LOG" "location: MESSAGE from .* relayed to sips:" \
	"Kamailio did not relay the MESSAGE to a TLS contact"
[ "$(requests)" -gt 0 ] || tb_fail "request probe sees nothing (log level?)"
tb_log "registered over TLS and received a message over it"
ag_stop

# --- 2. another CA: refused quickly, clearly, and nothing sent in plain
before=$(requests)
tls_config "$AG_DIR/tls-other"
t0=${EPOCHREALTIME/[.,]/}
ag_start --no-wait
ag_wait_state failed 3 || tb_fail "a server certificate from another CA was not refused within 3 s (state: $(ag_state))"
ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
reason=$(ag_status_field registration.last_reason)
case $reason in
*"certificate not trusted"*) ;;
*) tb_fail "status reason does not say the certificate is not trusted: '$reason'" ;;
esac
tb_assert_grep "$AG_LOG" "TLS handshake with sip:127.0.0.1:$tls_port;transport=tls refused: server certificate not trusted .*CA file $AG_DIR/tls-other/cafile.pem" \
	"no log line naming the server and the CA file"
tb_log "refused after $ms ms: $reason"
sleep 3  # a few more attempts on the backoff
[ "$(grep -c 'TLS handshake with .* refused' "$AG_LOG")" -ge 3 ] || tb_fail "no retries after the refusal"
[ "$(requests)" -eq "$before" ] || tb_fail "Kamailio received $(($(requests) - before)) SIP request(s): sent without TLS"
tb_log "no SIP request reached Kamailio in plain text"
ag_stop

# --- 3. verify on without cafile.pem: refused at start
rm "$AG_DIR/tls-other/cafile.pem"
"$AG_AGENT" --config "$AG_CONF" >/dev/null 2>"$TB_DIR/no-ca.err"
[ $? -eq 1 ] || tb_fail "the agent started without a CA file"
tb_assert_grep "$TB_DIR/no-ca.err" "\\[tls\\] certificate-dir: $AG_DIR/tls-other/cafile.pem: No such file" \
	"no clear error for the missing CA file"
tb_log "no CA file: $(grep "certificate-dir" "$TB_DIR/no-ca.err")"
tb_pass
