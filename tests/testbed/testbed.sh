# shellcheck shell=bash disable=SC2034
# (SC2034: the TB_* variables set here are this library's outputs.)
#
# lmrsec real-peer test bed: a bash library sourced by tests/integration/*.sh.
#
# It starts Kamailio (the MC service server stand-in), sipp scenarios and the
# small Python peers (iwf-send, sip-sink) on free 127.0.0.1 ports, each in
# the test's own work directory, and stops every process it started by PID
# when the test ends (never by name). On failure the work directory is kept
# and the tail of every log is printed; on success (or skip) it is removed.
#
#   . "$TB_TESTBED_DIR/testbed.sh"      # or any path to this file
#   tb_init selftest
#   tb_require kamailio sipp python3    # exit 77 (skip) when one is missing
#   tb_start_kamailio --users "alice:pw1 bob:pw2" --iwf-addr 127.0.0.1:$port
#   tb_sipp bob-reg "$(tb_free_port)" register-only-uac.xml ...
#   tb_pass
#
# Exit codes follow automake: 0 pass, 1 fail, 77 skip. Progress lines start
# with "# " so a CI log shows what happened. Each function is documented
# just above its definition (grep '^# tb_' testbed.sh lists them); names
# starting with tb__ are internal.

TB_TESTBED_DIR=${TB_TESTBED_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# The interpreter behind "python3", resolved once: a version-manager shim
# (pyenv) costs ~0.2 s per start, and the bed starts python3 often.
TB_PYTHON=${TB_PYTHON:-$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)}
TB_PYTHON=${TB_PYTHON:-python3}
# No __pycache__ in the source tree (it may be read-only under distcheck).
export PYTHONDONTWRITEBYTECODE=1

TB_DIR=
TB_T0=
TB_PIDS=()          # every process we started, stopped at exit
TB_PID_NAMES=()
TB_PID_STARTS=()    # their start times, to tell them from a reused PID
TB_PORTS_FILE=
TB_SIPP_TIMEOUT=${TB_SIPP_TIMEOUT:-20}
TB_LAST_PID=
TB_KAM_PID=
TB_KAM_PORT=
TB_KAM_DOMAIN=
TB_KAM_CHILD_PIDS=()

# --- messages and results ---------------------------------------------------

# tb_log MSG...            print a progress line "# [seconds since tb_init] MSG"
tb_log() {
	if [ -n "${TB_T0:-}" ] && [ -n "${EPOCHREALTIME:-}" ]; then
		printf '# [%6.2fs] %s\n' "$(tb__elapsed)" "$*"
	else
		printf '# %s\n' "$*"
	fi
}

tb__elapsed() {
	local now=${EPOCHREALTIME/[.,]/}
	local ms=$(((now - TB_T0) / 1000))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# tb_fail MSG...           print "# FAIL: MSG" and exit 1 (logs kept); from a
#                          subshell such as PORT=$(tb_free_port) it ends the
#                          test too
tb_fail() {
	printf '# FAIL: %s\n' "$*" >&2
	[ "${BASHPID:-$$}" = "$$" ] || kill -USR1 "$$" 2>/dev/null
	exit 1
}

# tb_pass [MSG...]         print "# PASS" and exit 0 (work dir removed)
tb_pass() {
	printf '# PASS%s\n' "${*:+: $*}"
	exit 0
}

# tb_skip REASON...        print "# SKIP: REASON" and exit 77
tb_skip() {
	printf '# SKIP: %s\n' "$*"
	exit 77
}

# tb_require BIN...        skip (77) unless every program is on PATH
tb_require() {
	local bin
	for bin in "$@"; do
		command -v "$bin" >/dev/null 2>&1 ||
			tb_skip "$bin not found in PATH (needed by this test)"
	done
}

# --- work directory and cleanup ---------------------------------------------

# tb_init [NAME]           make the work dir $TB_DIR under ${TMPDIR:-/tmp}
#                          and install the EXIT/INT/TERM cleanup
tb_init() {
	local name=${1:-test}
	[ -z "${EPOCHREALTIME:-}" ] || TB_T0=${EPOCHREALTIME/[.,]/}
	TB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lmrsec-tb-$name.XXXXXX") ||
		{ echo "# FAIL: cannot create a work directory" >&2; exit 1; }
	TB_PORTS_FILE=$TB_DIR/ports
	: >"$TB_PORTS_FILE"
	trap 'tb__cleanup $?' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 1' USR1
	tb_log "work directory $TB_DIR"
}

tb__cleanup() {
	local rc=$1 i f
	trap - EXIT INT TERM USR1
	for ((i = ${#TB_PIDS[@]} - 1; i >= 0; i--)); do
		tb__tracked_alive "$i" || continue
		tb_log "stopping ${TB_PID_NAMES[i]} (pid ${TB_PIDS[i]})"
		tb_stop_pid "${TB_PIDS[i]}"
	done
	[ -n "$TB_DIR" ] && [ -d "$TB_DIR" ] || exit "$rc"
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then
		rm -rf "$TB_DIR"
		exit "$rc"
	fi
	echo "# test failed (exit $rc); logs kept in $TB_DIR" >&2
	for f in "$TB_DIR"/*.log "$TB_DIR"/*.out; do
		[ -s "$f" ] || continue
		echo "# ---- tail of $f" >&2
		tail -n 40 "$f" | sed 's/^/#   /' >&2
	done
	exit "$rc"
}

# --- processes ----------------------------------------------------------------

# tb_track_pid PID NAME    stop PID at exit (done by every tb_*start* function)
tb_track_pid() {
	TB_PIDS+=("$1")
	TB_PID_NAMES+=("$2")
	TB_PID_STARTS+=("$(tb__start_time "$1")")
}

# The start time (clock ticks since boot) of PID, or nothing once it is gone.
tb__start_time() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
	# shellcheck disable=SC2086  # split the fields after "(comm)"
	set -- ${stat##*) }
	echo "${20}"
}

# tb__tracked_alive I      true while the I-th tracked process runs: the
#                          machine wraps PIDs quickly (tests of several
#                          people at once), so a PID that ended and was
#                          reaped may belong to someone else's process now
tb__tracked_alive() {
	[ -n "${TB_PID_STARTS[$1]}" ] && tb_pid_alive "${TB_PIDS[$1]}" &&
		[ "$(tb__start_time "${TB_PIDS[$1]}")" = "${TB_PID_STARTS[$1]}" ]
}

# tb_pid_alive PID         true while PID exists and is not a zombie
tb_pid_alive() {
	local stat state
	[ -n "$1" ] || return 1
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	# "pid (comm) S ...": the state follows the last ")".
	state=${stat##*) }
	state=${state%% *}
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# tb_stop_pid PID [SECONDS]  SIGTERM, wait up to SECONDS (default 5), then
#                          SIGKILL; reaps it when it is our child. 0 when gone.
tb_stop_pid() {
	local pid=$1 secs=${2:-5} n
	if tb_pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((n = 0; n < secs * 20; n++)); do
			tb_pid_alive "$pid" || break
			sleep 0.05
		done
		if tb_pid_alive "$pid"; then
			tb_log "pid $pid ignored SIGTERM, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null
			sleep 0.1
		fi
	fi
	wait "$pid" 2>/dev/null
	! tb_pid_alive "$pid"
}

# tb_wait_pid PID SECONDS  wait for our child PID to exit, at most SECONDS;
#                          returns its exit status, or 124 on timeout (then
#                          it is stopped)
tb_wait_pid() {
	local pid=$1 secs=$2 n
	for ((n = 0; n < secs * 20; n++)); do
		tb_pid_alive "$pid" || break
		sleep 0.05
	done
	if tb_pid_alive "$pid"; then
		tb_stop_pid "$pid"
		return 124
	fi
	wait "$pid"
}

# tb_wait_for SECONDS CMD...  run CMD every 0.1 s until it succeeds; 1 on timeout
tb_wait_for() {
	local secs=$1 n
	shift
	for ((n = 0; n < secs * 10; n++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# tb_check_all_stopped     fail unless every process started here is gone
tb_check_all_stopped() {
	local pid i left=
	for i in "${!TB_PIDS[@]}"; do
		tb__tracked_alive "$i" && left="$left ${TB_PIDS[i]}"
	done
	for pid in "${TB_KAM_CHILD_PIDS[@]}"; do
		tb_pid_alive "$pid" && left="$left $pid"
	done
	[ -z "$left" ] || tb_fail "processes still running:$left"
	tb_log "all ${#TB_PIDS[@]} started processes (+${#TB_KAM_CHILD_PIDS[@]} kamailio children) are gone"
}

# tb_stop_all              stop every started process (newest first)
tb_stop_all() {
	local i
	for ((i = ${#TB_PIDS[@]} - 1; i >= 0; i--)); do
		tb__tracked_alive "$i" || { wait "${TB_PIDS[i]}" 2>/dev/null; continue; }
		tb_stop_pid "${TB_PIDS[i]}" ||
			tb_log "WARNING: ${TB_PID_NAMES[i]} (pid ${TB_PIDS[i]}) did not stop"
	done
}

# --- ports --------------------------------------------------------------------

# tb_free_port [udp|tcp|both]  print a 127.0.0.1 port that is free (default:
#                          for both UDP and TCP), below the ephemeral range,
#                          never one handed out before in this test
tb_free_port() {
	local proto=${1:-both} port
	case $proto in
	udp | tcp | both) ;;
	*) tb_fail "tb_free_port: protocol must be udp, tcp or both, not '$proto'" ;;
	esac
	port=$("$TB_PYTHON" - "$proto" "$TB_PORTS_FILE" <<'EOF'
import random, socket, sys
proto, used_file = sys.argv[1], sys.argv[2]
try:
    used = set(open(used_file).read().split()) if used_file else set()
except OSError:
    used = set()
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
low = max(low, 12000)
kinds = {"udp": [socket.SOCK_DGRAM], "tcp": [socket.SOCK_STREAM],
         "both": [socket.SOCK_DGRAM, socket.SOCK_STREAM]}[proto]
rnd = random.SystemRandom()
for _ in range(500):
    port = rnd.randrange(10000, low)
    if str(port) in used:
        continue
    socks = []
    try:
        for kind in kinds:
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(port)
    sys.exit(0)
sys.exit(1)
EOF
	) || tb_fail "no free $proto port found"
	[ -n "$TB_PORTS_FILE" ] && echo "$port" >>"$TB_PORTS_FILE"
	echo "$port"
}

# tb_sip_ping PORT [udp|tcp] [SECONDS]  true when a SIP OPTIONS to
#                          127.0.0.1:PORT gets any response within SECONDS
tb_sip_ping() {
	"$TB_PYTHON" - "$1" "${2:-udp}" "${3:-1}" <<'EOF' 2>/dev/null
import socket, sys, os
port, proto, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.settimeout(secs)
s.bind(("127.0.0.1", 0))
lp = s.getsockname()[1]
tag = os.urandom(6).hex()
req = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
       "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-%s;rport\r\n"
       "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=%s\r\n"
       "To: <sip:127.0.0.1:%d>\r\nCall-ID: %s@probe\r\nCSeq: 1 OPTIONS\r\n"
       "Content-Length: 0\r\n\r\n"
       % (port, proto.upper(), lp, tag, tag, port, tag)).encode()
try:
    if kind == socket.SOCK_STREAM:
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        data = s.recv(4096)
    else:
        s.sendto(req, ("127.0.0.1", port))
        data = s.recv(4096)
except OSError:
    sys.exit(1)
sys.exit(0 if data.startswith(b"SIP/2.0 ") else 1)
EOF
}

# --- Kamailio -----------------------------------------------------------------

# tb_start_kamailio [OPTIONS]  generate the config from kamailio.cfg.in, start
#   Kamailio in the foreground (-DD -E) in $TB_DIR/kamailio and wait until it
#   answers OPTIONS on UDP and TCP. Options (defaults in brackets):
#     --users "u1:pw1 u2:pw2 ..."  users and plain passwords [alice:alice-pw bob:bob-pw]
#     --domain D                   served domain, digest realm [mc.test]
#     --iwf-uri URI                the IWF's own URI [sip:kmf@iwf.test]
#     --iwf-addr ADDR:PORT         where IWF-bound MESSAGEs go [127.0.0.1:9]
#     --iwf-transport udp|tcp      [udp]
#     --psi-uri URI                participating PSI also routed to the IWF [none]
#     --port N                     UDP+TCP port [a free one]
#     --tls-port N --tls-cert F --tls-key F [--tls-ca F]  add a TLS listener
#     --fr-timer MS [30000] --min-expires S [1] --max-expires S [3600]
#     --children N [2] --tcp-children N [2] --log-level N [2] --shm MB [256]
#   Sets TB_KAM_PORT, TB_KAM_PID, TB_KAM_CFG, TB_KAM_LOG, TB_KAM_DOMAIN,
#   TB_KAM_CHILD_PIDS. Fails the test (with the log) when it does not start.
tb_start_kamailio() {
	local users="alice:alice-pw bob:bob-pw" domain=mc.test
	local iwf_uri=sip:kmf@iwf.test iwf_addr=127.0.0.1:9 iwf_transport=udp
	local psi_uri='' port='' tls_port='' tls_cert='' tls_key='' tls_ca=''
	local fr_timer=30000 min_expires=1 max_expires=3600
	local children=2 tcp_children=2 log_level=2 shm=256
	while [ $# -gt 0 ]; do
		case $1 in
		--users) users=$2 ;;
		--domain) domain=$2 ;;
		--iwf-uri) iwf_uri=$2 ;;
		--iwf-addr) iwf_addr=$2 ;;
		--iwf-transport) iwf_transport=$2 ;;
		--psi-uri) psi_uri=$2 ;;
		--port) port=$2 ;;
		--tls-port) tls_port=$2 ;;
		--tls-cert) tls_cert=$2 ;;
		--tls-key) tls_key=$2 ;;
		--tls-ca) tls_ca=$2 ;;
		--fr-timer) fr_timer=$2 ;;
		--min-expires) min_expires=$2 ;;
		--max-expires) max_expires=$2 ;;
		--children) children=$2 ;;
		--tcp-children) tcp_children=$2 ;;
		--log-level) log_level=$2 ;;
		--shm) shm=$2 ;;
		*) tb_fail "tb_start_kamailio: unknown option $1" ;;
		esac
		[ $# -ge 2 ] || tb_fail "tb_start_kamailio: $1 needs a value"
		shift 2
	done
	tb_require kamailio python3
	[ -n "$TB_DIR" ] || tb_fail "tb_start_kamailio: call tb_init first"

	local dir=$TB_DIR/kamailio fixed_port=$port
	mkdir -p "$dir/run" || tb_fail "cannot create $dir"
	TB_KAM_CFG=$dir/kamailio.cfg
	TB_KAM_LOG=$TB_DIR/kamailio.log
	TB_KAM_DOMAIN=$domain
	[ -z "$tls_port" ] || tb__kamailio_tls_cfg "$dir/tls.cfg" "$tls_cert" "$tls_key" "$tls_ca"

	for _ in 1 2 3; do
		[ -n "$fixed_port" ] || port=$(tb_free_port both)
		"$TB_PYTHON" - "$TB_TESTBED_DIR/kamailio.cfg.in" "$TB_KAM_CFG" \
			PORT="$port" DOMAIN="$domain" RUNDIR="$dir/run" \
			IWF_URI="$iwf_uri" PSI_URI="$psi_uri" IWF_ADDR="$iwf_addr" \
			IWF_TRANSPORT="$iwf_transport" USERS="$users" \
			TLS_PORT="$tls_port" TLS_CFG="$dir/tls.cfg" FR_TIMER="$fr_timer" \
			MIN_EXPIRES="$min_expires" MAX_EXPIRES="$max_expires" \
			CHILDREN="$children" TCP_CHILDREN="$tcp_children" \
			LOG_LEVEL="$log_level" <<'EOF' || tb_fail "cannot generate the Kamailio config"
import re, sys
src, dst = sys.argv[1], sys.argv[2]
v = dict(a.split("=", 1) for a in sys.argv[3:])
def die(msg):
    sys.stderr.write("tb_start_kamailio: %s\n" % msg)
    sys.exit(1)
SAFE = re.compile(r"^[A-Za-z0-9._~!*+%&=$,;?/:@-]*$")
for k, val in v.items():
    if not SAFE.match(val.replace(" ", "")) :
        die("unsafe character in %s=%r" % (k, val))
def user_host(uri, what):
    m = re.match(r"^sips?:([^@;>]+)@([^;>:]+)", uri)
    if not m:
        die("%s %r is not sip:user@host" % (what, uri))
    return m.group(1), m.group(2)
v["IWF_USER"], v["IWF_HOST"] = user_host(v["IWF_URI"], "--iwf-uri")
# Without a PSI the IWF check is simply repeated.
v["PSI_USER"], v["PSI_HOST"] = user_host(v["PSI_URI"] or v["IWF_URI"], "--psi-uri")
if v["IWF_TRANSPORT"] not in ("udp", "tcp", "tls"):
    die("--iwf-transport must be udp, tcp or tls")
lines = []
for entry in v["USERS"].split():
    user, sep, pw = entry.partition(":")
    if not sep or not user or not pw or not re.match(r"^[A-Za-z0-9._-]+$", user):
        die("--users entry %r is not user:password" % entry)
    if '"' in pw or "\\" in pw or "$" in pw:
        die("password of %s must not contain quotes, backslashes or $" % user)
    lines.append('\t$sht(users=>%s) = "%s";' % (user, pw))
v["USERS"] = "\n".join(lines)
v["DEFINES"] = "#!define WITH_TLS" if v["TLS_PORT"] else ""
text = open(src).read()
text = re.sub(r"@([A-Z_]+)@", lambda m: v[m.group(1)] if m.group(1) in v
              else die("unknown placeholder @%s@" % m.group(1)), text)
open(dst, "w").write(text)
EOF
		tb_log "starting kamailio on 127.0.0.1:$port (udp+tcp${tls_port:+, tls $tls_port}), domain $domain, IWF $iwf_uri -> $iwf_addr/$iwf_transport"
		: >"$TB_KAM_LOG"
		kamailio -f "$TB_KAM_CFG" -DD -E -P "$dir/kamailio.pid" -Y "$dir/run" \
			-m "$shm" </dev/null >>"$TB_KAM_LOG" 2>&1 &
		TB_KAM_PID=$!
		TB_KAM_PORT=$port
		tb_track_pid "$TB_KAM_PID" kamailio
		if tb__kamailio_ready 10; then
			read -r -a TB_KAM_CHILD_PIDS <<<"$(ps -o pid= --ppid "$TB_KAM_PID" | tr '\n' ' ')"
			tb_log "kamailio ready (pid $TB_KAM_PID, ${#TB_KAM_CHILD_PIDS[@]} children)"
			return 0
		fi
		tb_stop_pid "$TB_KAM_PID"
		if [ -z "$fixed_port" ] && grep -qi 'address already in use' "$TB_KAM_LOG"; then
			tb_log "port $port was taken meanwhile, trying another"
			continue
		fi
		break
	done
	tb_fail "kamailio did not start (config $TB_KAM_CFG, log $TB_KAM_LOG)"
}

tb__kamailio_ready() {
	local secs=$1 n
	for ((n = 0; n < secs * 10; n++)); do
		tb_pid_alive "$TB_KAM_PID" || return 1
		if tb_sip_ping "$TB_KAM_PORT" udp 0.3 && tb_sip_ping "$TB_KAM_PORT" tcp 0.3; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

tb__kamailio_tls_cfg() {
	if [ ! -r "$2" ] || [ ! -r "$3" ]; then
		tb_fail "--tls-port needs readable --tls-cert and --tls-key"
	fi
	{
		echo "[server:default]"
		echo "method = TLSv1.2+"
		echo "verify_certificate = no"
		echo "require_certificate = no"
		echo "certificate = $2"
		echo "private_key = $3"
		[ -z "$4" ] || echo "ca_list = $4"
		echo
		echo "[client:default]"
		echo "method = TLSv1.2+"
		echo "verify_certificate = no"
		echo "require_certificate = no"
	} >"$1"
}

# tb_stop_kamailio         stop Kamailio and check its children are gone too
tb_stop_kamailio() {
	local pid
	[ -n "$TB_KAM_PID" ] || return 0
	tb_stop_pid "$TB_KAM_PID" 10 || tb_fail "kamailio (pid $TB_KAM_PID) did not stop"
	for pid in "${TB_KAM_CHILD_PIDS[@]}"; do
		tb_wait_for 5 eval '! tb_pid_alive '"$pid" ||
			tb_fail "kamailio child $pid still running"
	done
	tb_log "kamailio stopped"
}

# --- sipp -----------------------------------------------------------------------

# tb_scenario NAME         path of a scenario: NAME as given when it exists,
#                          else from tests/testbed/
tb_scenario() {
	if [ -e "$1" ]; then echo "$1"; else echo "$TB_TESTBED_DIR/$1"; fi
}

# tb_sipp_bg NAME PORT SCENARIO [SIPP ARGS...]  start sipp in the background
#   on 127.0.0.1:PORT with -nd -default_behaviors abortunexp -nostdin -m 1
#   -timeout $TB_SIPP_TIMEOUT s -timeout_error, traces in $TB_DIR/NAME.{msg,err,log}.log and screen output
#   in $TB_DIR/NAME.out. Pass the remote 127.0.0.1:PORT for a UAC, -key K V
#   for scenario keys; a later -m or -timeout wins. Sets TB_LAST_PID.
tb_sipp_bg() {
	local name=$1 port=$2 scen
	scen=$(tb_scenario "$3")
	shift 3
	tb_require sipp
	[ -r "$scen" ] || tb_fail "sipp scenario $scen not found"
	# sipp resolves [file name=...] relative to its working directory.
	# -nd alone would also turn off "abort on unexpected message": a call
	# answered 401/403 instead of 200 would then retransmit until -timeout.
	(cd "$TB_DIR" && exec sipp -nd -default_behaviors abortunexp -nostdin \
		-i 127.0.0.1 -p "$port" -sf "$scen" \
		-m 1 -timeout "${TB_SIPP_TIMEOUT}s" -timeout_error \
		-trace_msg -message_file "$TB_DIR/$name.msg.log" \
		-trace_err -error_file "$TB_DIR/$name.err.log" \
		-trace_logs -log_file "$TB_DIR/$name.log.log" \
		"$@" </dev/null >"$TB_DIR/$name.out" 2>&1) &
	TB_LAST_PID=$!
	tb_track_pid "$TB_LAST_PID" "sipp $name"
}

# tb_sipp NAME PORT SCENARIO [SIPP ARGS...]  run sipp to completion (as
#   tb_sipp_bg); returns sipp's exit status (0: every call succeeded)
tb_sipp() {
	local name=$1
	tb_sipp_bg "$@"
	tb_wait_pid "$TB_LAST_PID" $((TB_SIPP_TIMEOUT + 5))
	local rc=$?
	[ "$rc" -eq 0 ] || tb_log "sipp $name exited $rc (traces: $TB_DIR/$name.*)"
	return "$rc"
}

# tb_sipp_wait_ready PORT [udp|tcp]  wait (5 s) until a background sipp UAS
#   is bound to PORT
tb_sipp_wait_ready() {
	tb_wait_for 5 tb__port_bound "$1" "${2:-udp}"
}

tb__port_bound() {
	"$TB_PYTHON" - "$1" "$2" <<'EOF'
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[2] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

# tb_trace NAME            path of the sipp message trace of run NAME
tb_trace() {
	echo "$TB_DIR/$1.msg.log"
}

# tb_statuses FILE        the status codes of the responses in a sipp message
#                          trace, in order ("401 200"); a retransmission (same
#                          status, Via branch and CSeq) counts once
tb_statuses() {
	"$TB_PYTHON" - "$1" <<'EOF'
import re, sys
try:
    text = open(sys.argv[1], "rb").read().decode("latin-1")
except OSError:
    sys.exit(0)
seen, out = set(), []
# Entries start with a dashed line, then "UDP message received [n] bytes :"
# or "... message sent (n bytes):"; "Unexpected ... message received:" repeats
# one already logged.
for entry in re.split(r"(?m)^-{20,}.*$", text):
    head = entry.lstrip("\r\n").split("\n", 1)[0]
    if not re.search(r"message (received|sent)", head) or head.startswith("Unexpected"):
        continue
    m = re.search(r"(?m)^SIP/2\.0 (\d{3})", entry)
    if not m:
        continue
    branch = re.search(r"(?mi)^Via:.*?branch=([^;\s]+)", entry)
    cseq = re.search(r"(?mi)^CSeq:\s*(.*?)\s*$", entry)
    key = (m.group(1), branch and branch.group(1), cseq and cseq.group(1))
    if key not in seen:
        seen.add(key)
        out.append(m.group(1))
print(" ".join(out))
EOF
}

# tb_expect_statuses NAME "401 200"  fail unless the sipp run NAME saw exactly
#                          these responses
tb_expect_statuses() {
	local got
	got=$(tb_statuses "$(tb_trace "$1")")
	[ "$got" = "$2" ] || tb_fail "sipp $1: responses were '$got', expected '$2'"
	tb_log "sipp $1: responses $got"
}

# tb_count FILE REGEX      number of lines of FILE matching the ERE
tb_count() {
	grep -cE -- "$2" "$1" 2>/dev/null || true
}

# tb_assert_grep FILE REGEX WHAT  fail with WHAT unless FILE has a line matching
tb_assert_grep() {
	grep -qE -- "$2" "$1" 2>/dev/null || tb_fail "$3 (no /$2/ in $1)"
}

# --- the Python peers -----------------------------------------------------------

# tb_iwf_send NAME [iwf-send ARGS...]  run iwf-send (--proxy defaults to
#   Kamailio); output in $TB_DIR/NAME.out (also printed); returns its status
tb_iwf_send() {
	local name=$1 rc
	shift
	"$TB_PYTHON" "$TB_TESTBED_DIR/iwf-send" --proxy "127.0.0.1:$TB_KAM_PORT" "$@" \
		>"$TB_DIR/$name.out" 2>&1
	rc=$?
	sed 's/^/#   /' "$TB_DIR/$name.out"
	return "$rc"
}

# tb_sink_start NAME PORT [sip-sink ARGS...]  start sip-sink on PORT in the
#   background (bodies in $TB_DIR/NAME/, output $TB_DIR/NAME.out), wait until
#   it listens; sets TB_LAST_PID
tb_sink_start() {
	local name=$1 port=$2
	shift 2
	"$TB_PYTHON" "$TB_TESTBED_DIR/sip-sink" --port "$port" --out "$TB_DIR/$name" "$@" \
		</dev/null >"$TB_DIR/$name.out" 2>&1 &
	TB_LAST_PID=$!
	tb_track_pid "$TB_LAST_PID" "sip-sink $name"
	tb_wait_for 5 grep -q '^listening' "$TB_DIR/$name.out" ||
		tb_fail "sip-sink $name did not start"
}

# tb_value FILE KEY        print the value of KEY=VALUE (first match) in FILE
tb_value() {
	sed -n "s/^.*\\b$2=\\([^ ]*\\).*\$/\\1/p" "$1" | head -n 1
}
