#!/usr/bin/env bash
# Issue 3, test 8 / issue 5: a wrong SIP password leaves the agent up, in
# state "failed" with the SIP status in `status`; it retries on the backoff
# schedule (retry-min 1 s doubling to retry-max 4 s, up to 25 % jitter
# below), measured from the refused attempts in Kamailio's log, and shows
# the next attempt in status; once the password file is fixed, SIGHUP makes
# it register.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"
tb_init e2e-wrong-password
ag_setup --password not-alice-pw
sed -i 's/^retry-max = .*/retry-max = 4/' "$AG_CONF"
refused() { grep -c "auth: REGISTER from .* refused" "$TB_KAM_LOG"; }

# A watcher writes the time (µs) of each refused REGISTER to a file,
# polling Kamailio's log every 50 ms.
attempts=$TB_DIR/attempts
: >"$attempts"
(
	seen=0
	while :; do
		now=$(refused)
		while [ "$seen" -lt "$now" ]; do
			echo "${EPOCHREALTIME/[.,]/}" >>"$attempts"
			seen=$((seen + 1))
		done
		sleep 0.05
	done
) &
tb_track_pid $! "attempt watcher"
wait_attempts() {
	tb_wait_for "$2" eval '[ "$(wc -l <"$attempts")" -ge '"$1"' ]' ||
		tb_fail "only $(wc -l <"$attempts") of $1 REGISTER attempts"
}

ag_start --no-wait
wait_attempts 1 10
ag_wait_state failed 5 || tb_fail "agent did not report failed (state: $(ag_state))"
code=$(ag_status_field registration.last_status)
case $code in
401 | 403) tb_log "status shows last_status=$code ($(ag_status_field registration.last_reason))" ;;
*) tb_fail "last_status is $code, expected 401 or 403" ;;
esac
wait_attempts 3 10
# After the 3rd failure the next attempt is 3-4 s away: status says so
# (less the time this test took to ask).
next=$(ag_status_field registration.next_retry)
[ "$next" -ge 1 ] && [ "$next" -le 4 ] || tb_fail "status shows next_retry=$next s after the 3rd failure, expected 1..4"
wait_attempts 5 10
mapfile -t times <"$attempts"

# gaps in ms; expected: 1 s, 2 s, 4 s, 4 s (capped), each less up to 25 %
expect=(1000 2000 4000 4000)
for i in 0 1 2 3; do
	gap=$(((times[i + 1] - times[i]) / 1000))
	lo=$((expect[i] * 75 / 100 - 150)) hi=$((expect[i] + 500))
	tb_log "attempt $((i + 1)) -> $((i + 2)): ${gap} ms (expected $lo..$hi)"
	[ "$gap" -ge "$lo" ] && [ "$gap" -le "$hi" ] || tb_fail "backoff gap $((i + 1)) is $gap ms, expected $lo..$hi"
done
tb_pid_alive "$AG_PID" || tb_fail "agent died"

# Fix the password file; SIGHUP re-reads it and registers at once.
(umask 077 && echo alice-pw >"$AG_DIR/password")
kill -HUP "$AG_PID"
ag_wait_state registered 3 || tb_fail "not registered within 3 s of SIGHUP with the fixed password"
[ "$(ag_status_field registration.last_status)" = 200 ] || tb_fail "last_status is not 200 after recovery"
[ "$(ag_status_field registration.next_retry)" = 0 ] || tb_fail "a retry is still pending after recovery"
tb_log "recovered after the password file was fixed and SIGHUP sent"
ag_stop
tb_pass
