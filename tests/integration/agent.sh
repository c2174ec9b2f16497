# shellcheck shell=bash
#
# Helpers for integration tests that run the real lmrsec-agent against the
# test bed (tests/testbed/testbed.sh): write its configuration and password
# file, start and stop it by PID, and run lmrsecctl / the example consumer
# against its socket.
#
#   . "$top_srcdir/tests/integration/agent.sh"   # sources testbed.sh too
#   tb_init mytest
#   ag_setup                     # Kamailio + config for user alice
#   ag_start                     # agent registered, socket up
#   ag_ctl status --json
#
# Variables set: AG_DIR (agent home), AG_CONF, AG_SOCK, AG_STATE, AG_PID,
# AG_LOG, AG_SIP_PORT, AG_KMF (the KMF URI), AG_ID (our MC service ID).

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=../testbed/testbed.sh
. "$top_srcdir/tests/testbed/testbed.sh"

AG_AGENT=$top_builddir/agent/lmrsec-agent
AG_CTL=$top_builddir/cli/lmrsecctl
AG_CONSUMER=$top_builddir/examples/consumer
AG_PID=
AG_START_COUNT=0
# A command the agent runs under (e.g. "valgrind --tool=memcheck ..."), and
# the seconds ag_start / ag_stop wait: a slow wrapper widens them.
AG_WRAPPER=${AG_WRAPPER:-}
AG_START_TIMEOUT=${AG_START_TIMEOUT:-10}
AG_STOP_TIMEOUT=${AG_STOP_TIMEOUT:-15}

# ag_require                 skip unless the programs under test were built
ag_require() {
	tb_require kamailio sipp python3
	[ -x "$AG_AGENT" ] || tb_skip "$AG_AGENT not built"
	[ -x "$AG_CTL" ] || tb_skip "$AG_CTL not built"
}

# ag_setup [--transport T] [--password PW] [--iwf-addr A:P] [--kamailio "ARGS"]
#   Starts Kamailio (users alice, bob), writes the agent's configuration for
#   alice and a 0600 password file.  --password sets what the agent uses
#   (Kamailio always has alice-pw).
ag_setup() {
	local transport=tcp password=alice-pw iwf_addr=127.0.0.1:9 kam_args=
	while [ $# -gt 0 ]; do
		case $1 in
		--transport) transport=$2 ;;
		--password) password=$2 ;;
		--iwf-addr) iwf_addr=$2 ;;
		--kamailio) kam_args=$2 ;;
		*) tb_fail "ag_setup: unknown option $1" ;;
		esac
		shift 2
	done
	ag_require
	tb_start_kamailio --users "alice:alice-pw bob:bob-pw" --iwf-addr "$iwf_addr" \
		--iwf-transport udp $kam_args
	AG_DIR=$TB_DIR/agent
	AG_STATE=$AG_DIR/state
	AG_SOCK=$AG_DIR/run/agent.sock
	AG_CONF=$AG_DIR/agent.conf
	AG_LOG=$TB_DIR/agent.log
	AG_ID=sip:alice@$TB_KAM_DOMAIN
	AG_KMF=sip:kmf@iwf.test
	AG_SIP_PORT=$(tb_free_port)
	mkdir -p "$AG_DIR/run"
	(umask 077 && printf '%s\n' "$password" >"$AG_DIR/password")
	ag_write_config "$transport"
}

# ag_write_config TRANSPORT [extra lines appended to the file]
ag_write_config() {
	local transport=$1
	shift
	cat >"$AG_CONF" <<CONF
[identity]
mc-service-id = $AG_ID

[server]
registrar = sip:$TB_KAM_DOMAIN;transport=$transport
outbound-proxy = sip:127.0.0.1:$TB_KAM_PORT;transport=$transport
transport = $transport
expires = 60
local-address = 127.0.0.1
local-port = $AG_SIP_PORT

[auth]
username = alice
password-source = file:$AG_DIR/password

[lmr]
kmf-uri = $AG_KMF

[socket]
path = $AG_SOCK

[paths]
state-dir = $AG_STATE

[registration]
retry-min = 1
retry-max = 2
CONF
	local line
	for line in "$@"; do
		printf '%s\n' "$line" >>"$AG_CONF"
	done
}

# ag_start [--no-wait]       start the agent; waits until it is registered
ag_start() {
	AG_START_COUNT=$((AG_START_COUNT + 1))
	# shellcheck disable=SC2086  # AG_WRAPPER is a command line
	$AG_WRAPPER "$AG_AGENT" --config "$AG_CONF" --verbose </dev/null >>"$AG_LOG" 2>&1 &
	AG_PID=$!
	tb_track_pid "$AG_PID" "lmrsec-agent #$AG_START_COUNT"
	tb_log "lmrsec-agent started (pid $AG_PID)"
	[ "${1:-}" = --no-wait ] && return 0
	ag_wait_state registered "$AG_START_TIMEOUT" ||
		tb_fail "agent did not register within $AG_START_TIMEOUT s"
}

# ag_state                   print the registration state ("" if unreachable)
ag_state() {
	"$AG_CTL" --socket "$AG_SOCK" status --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["registration"]["state"])' 2>/dev/null
}

# ag_wait_state STATE SECONDS
ag_wait_state() {
	local want=$1 secs=$2 n
	for ((n = 0; n < secs * 10; n++)); do
		[ "$(ag_state)" = "$want" ] && { tb_log "agent is $want"; return 0; }
		tb_pid_alive "$AG_PID" || return 1
		sleep 0.1
	done
	return 1
}

# ag_ctl ARGS...             lmrsecctl against this agent's socket
ag_ctl() {
	"$AG_CTL" --socket "$AG_SOCK" "$@"
}

# ag_status_field EXPR       a field of `status --json`, e.g. registration.last_status
ag_status_field() {
	ag_ctl status --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# ag_stop                    SIGTERM and wait; fails the test on a non-zero exit
ag_stop() {
	local rc
	kill -TERM "$AG_PID"
	tb_wait_pid "$AG_PID" "$AG_STOP_TIMEOUT"
	rc=$?
	[ "$rc" -eq 0 ] || tb_fail "lmrsec-agent exited $rc after SIGTERM"
	tb_log "lmrsec-agent stopped cleanly"
}

# ag_kill9                   crash the agent
ag_kill9() {
	kill -KILL "$AG_PID"
	wait "$AG_PID" 2>/dev/null
	tb_log "lmrsec-agent killed with SIGKILL"
}

# ag_send_iwf NAME EXPECT [iwf-send args]   IWF message to alice via Kamailio
ag_send_iwf() {
	local name=$1 expect=$2
	shift 2
	tb_iwf_send "$name" --transport tcp --to "$AG_ID" --from "$AG_KMF" \
		--expect "$expect" "$@"
}

# ag_receive DIR COUNT [TIMEOUT]  lmrsecctl receive into DIR (ACKs each)
ag_receive() {
	mkdir -p "$1"
	ag_ctl receive --lmr-type '*' --count "$2" --timeout "${3:-5}" --output "$1"
}

# ag_spool_depth             messages in the spool, from status
ag_spool_depth() {
	ag_status_field spool.messages
}
