#!/usr/bin/env bash
# Issue 3: a bad configuration stops lmrsec-agent at start with exit 1 and
# one line naming the file, the key and the problem; so does a password file
# that others could read.  No Kamailio needed: the agent never gets that far.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init agent-config
[ -x "$AG_AGENT" ] || tb_skip "$AG_AGENT not built"

conf=$TB_DIR/agent.conf
good() {
	cat <<CONF
[identity]
mc-service-id = sip:alice@mc.test
[server]
registrar = sip:mc.test
expires = 600
transport = tcp
[auth]
username = alice
password-source = file:$TB_DIR/password
[lmr]
kmf-uri = sip:kmf@iwf.test
[socket]
path = $TB_DIR/agent.sock
[paths]
state-dir = $TB_DIR/state
CONF
}

# expect_refusal NAME PATTERN  run the agent on $conf: exit 1, one stderr line matching PATTERN
expect_refusal() {
	local name=$1 pattern=$2 rc lines
	timeout 10 "$AG_AGENT" --config "$conf" >"$TB_DIR/$name.out" 2>"$TB_DIR/$name.err"
	rc=$?
	[ "$rc" -eq 1 ] || tb_fail "$name: exit $rc, expected 1"
	lines=$(grep -vc '^$' "$TB_DIR/$name.err")
	[ "$lines" -eq 1 ] || tb_fail "$name: $lines lines on stderr, expected 1: $(cat "$TB_DIR/$name.err")"
	grep -qE -- "$pattern" "$TB_DIR/$name.err" ||
		tb_fail "$name: \"$(cat "$TB_DIR/$name.err")\" does not match /$pattern/"
	tb_log "$name: $(cat "$TB_DIR/$name.err")"
}

(umask 077 && echo secret >"$TB_DIR/password")

rm -f "$conf"
expect_refusal missing-file "$conf: .*No such file"

good | sed '/^mc-service-id/d' >"$conf"
expect_refusal missing-key "$conf: \\[identity\\] mc-service-id: .*missing"

good | sed 's|^registrar = .*|registrar = mc.test|' >"$conf"
expect_refusal malformed-uri "$conf: \\[server\\] registrar: .*mc\\.test"

good | sed 's|^transport = .*|transport = sctp|' >"$conf"
expect_refusal unknown-transport "$conf: \\[server\\] transport: .*sctp"

good | sed 's|^expires = .*|expires = ten|' >"$conf"
expect_refusal non-numeric-expires "$conf: \\[server\\] expires: .*ten"

good >"$conf"
chmod 0644 "$TB_DIR/password"
expect_refusal password-mode "$TB_DIR/password: .*0600"
chmod 0600 "$TB_DIR/password"
[ ! -e "$TB_DIR/agent.sock" ] || tb_fail "a refused start left a socket behind"
tb_pass
