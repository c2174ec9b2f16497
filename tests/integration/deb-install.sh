#!/usr/bin/env bash
# Issue 6, Debian packaging: the packages build from a copy of the tree
# (packaging/build-deb, `dpkg-buildpackage -us -uc -b`) and lintian finds no
# error; they install on this machine (binaries, man pages, units, the
# conffile, the system user lmrsec); examples/consumer.c compiles against the
# INSTALLED `pkg-config lmrsec`; the INSTALLED agent (started directly with a
# test configuration, not as a service) registers with the test-bed
# Kamailio and hands an IWF key message to the compiled consumer, byte for
# byte; and purging leaves no package, conffile or spool behind.
#
# Needs root (it installs packages); skips with the reason otherwise, when
# LMRSEC_DEB_TEST=skip (.ci/run sets it for distcheck, whose suite repeats
# the main one), or when lmrsec packages are installed already (it would not
# remove someone's installation).  Runs of it on one machine take turns.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/agent.sh"

PKGS="lmrsec-agent lmrsecctl liblmrsec0 liblmrsec-dev"
LOCK=/run/lock/lmrsec-deb-install.lock

[ "${LMRSEC_DEB_TEST:-}" != skip ] ||
	tb_skip "LMRSEC_DEB_TEST=skip: the main test suite of this run builds and installs the packages"
[ "$(id -u)" -eq 0 ] || tb_skip "not root: installing packages needs root"
tb_require dpkg dpkg-buildpackage dh lintian apt-get pkg-config cc flock
ag_require

tb_init deb-install

exec 9>"$LOCK" || tb_fail "cannot open $LOCK"
flock -w 540 9 || tb_fail "another deb-install run held $LOCK for 9 minutes"

installed_pkgs() {
	dpkg-query -W -f='${binary:Package} ${db:Status-Abbrev}\n' $PKGS 2>/dev/null |
		awk '$2 != "un" && $2 != "pn" { print $1 " " $2 }'
}
[ -z "$(installed_pkgs)" ] ||
	tb_skip "lmrsec packages are installed on this machine already: $(installed_pkgs | tr '\n' ' ')"
user_existed=no
getent passwd lmrsec >/dev/null && user_existed=yes

we_installed=no
deb_purge() {
	[ "$we_installed" = yes ] || return 0
	we_installed=no
	tb_log "purging $PKGS"
	# shellcheck disable=SC2086
	apt-get purge -y -q -o DPkg::Lock::Timeout=120 $PKGS >"$TB_DIR/purge.log" 2>&1
	[ "$user_existed" = yes ] || deluser --system --quiet lmrsec >/dev/null 2>&1 || true
}
# Purge on any exit, before the test bed's own clean-up.
trap 'rc=$?; deb_purge; tb__cleanup $rc' EXIT

# --- build and lint ------------------------------------------------------------
tb_log "building the packages from a copy of $top_srcdir"
"$top_srcdir/packaging/build-deb" "$TB_DIR/debs" >"$TB_DIR/build-deb.log" 2>&1 ||
	tb_fail "packaging/build-deb failed (see build-deb.log)"
for p in $PKGS; do
	compgen -G "$TB_DIR/debs/${p}_*.deb" >/dev/null || tb_fail "no package $p was built"
done
lintian --fail-on error --no-tag-display-limit "$TB_DIR"/debs/*.changes >"$TB_DIR/lintian.out" 2>&1 ||
	{ sed 's/^/#   /' "$TB_DIR/lintian.out"; tb_fail "lintian reports errors"; }
tb_log "lintian: $(grep -c '^[EW]:' "$TB_DIR/lintian.out") errors and warnings"

# --- install -------------------------------------------------------------------
debs=()
for p in $PKGS; do debs+=("$(ls "$TB_DIR/debs/${p}_"*.deb)"); done
we_installed=yes
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 "${debs[@]}" \
	>"$TB_DIR/install.log" 2>&1 || tb_fail "the packages do not install (see install.log)"
for p in $PKGS; do
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p")" = "ii " ] || tb_fail "$p is not installed"
done
for f in /usr/sbin/lmrsec-agent /usr/bin/lmrsecctl /usr/include/lmrsec.h \
	/lib/systemd/system/lmrsec-agent.service /lib/systemd/system/lmrsec-agent.socket \
	/usr/lib/systemd/user/lmrsec-agent.service /etc/lmrsec/agent.conf; do
	[ -e "$f" ] || tb_fail "$f is not installed"
done
for page in lmrsec-agent.8 lmrsecctl.1 lmrsec.conf.5 liblmrsec.3 lmrsec-protocol.7; do
	man -w "${page%.*}" >/dev/null 2>&1 || tb_fail "man page ${page} is not installed"
done
dpkg-query -W -f='${Conffiles}\n' lmrsec-agent | grep -q '^ /etc/lmrsec/agent.conf ' ||
	tb_fail "/etc/lmrsec/agent.conf is not a conffile"
getent passwd lmrsec >/dev/null || tb_fail "the system user lmrsec was not created"
grep -q '^ExecStart=/usr/sbin/lmrsec-agent --config /etc/lmrsec/agent.conf$' \
	/lib/systemd/system/lmrsec-agent.service || tb_fail "the system unit does not run the installed agent"
/usr/bin/lmrsecctl --version | grep -q '^lmrsecctl ' || tb_fail "installed lmrsecctl does not run"
tb_log "installed: $(dpkg-query -W -f='${binary:Package}=${Version} ' $PKGS)"

# --- the example consumer against the installed library --------------------------
# shellcheck disable=SC2046
cc -Wall -Werror -o "$TB_DIR/consumer" "$top_srcdir/examples/consumer.c" \
	$(pkg-config --cflags --libs lmrsec) 2>"$TB_DIR/cc.log" ||
	{ sed 's/^/#   /' "$TB_DIR/cc.log"; tb_fail "examples/consumer.c does not build with pkg-config lmrsec"; }
lib=$(ldd "$TB_DIR/consumer" | awk '/liblmrsec/ { print $3 }')
[ "$(readlink -f "$lib")" = "$(readlink -f "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/liblmrsec.so.0")" ] ||
	tb_fail "the consumer is not linked to the installed liblmrsec (got '$lib')"
tb_log "examples/consumer.c built against the installed liblmrsec ($lib)"

# --- the installed agent against the test bed ------------------------------------
AG_AGENT=/usr/sbin/lmrsec-agent
AG_CTL=/usr/bin/lmrsecctl
AG_CONSUMER=$TB_DIR/consumer
ag_setup
ag_start
"$AG_CONSUMER" --socket "$AG_SOCK" --count 1 TETRA >"$TB_DIR/consumer.out" 2>&1 &
cpid=$!
tb_track_pid "$cpid" consumer
subscribed() { [ "$(ag_status_field consumers 2>/dev/null)" = "['TETRA']" ]; }
tb_wait_for 5 subscribed || tb_fail "the consumer did not subscribe"
head -c 2048 /dev/urandom >"$TB_DIR/key.bin"
want=$(sha256sum "$TB_DIR/key.bin" | cut -d' ' -f1)
ag_send_iwf key 200 --payload-file "$TB_DIR/key.bin" || tb_fail "IWF message not answered 200"
tb_wait_pid "$cpid" 10 || tb_fail "the consumer did not finish"
tb_assert_grep "$TB_DIR/consumer.out" "lmr-type=TETRA size=2048 sha256=$want \\(verified\\)" \
	"the consumer did not get exactly the bytes sent"
[ "$(ag_spool_depth)" = 0 ] || tb_fail "spool not empty after the consumer's ACK"
tb_assert_grep "$AG_LOG" "message [0-9]+ received: LMR type TETRA, 2048 bytes, sha256 $want" \
	"the agent's log has no line for the message received"
ag_stop
tb_stop_kamailio
tb_log "installed agent delivered sha256 $want to the consumer built on the installed library"

# --- purge -----------------------------------------------------------------------
deb_purge
grep -q "Purging configuration files for lmrsec-agent" "$TB_DIR/purge.log" ||
	{ sed 's/^/#   /' "$TB_DIR/purge.log"; tb_fail "lmrsec-agent was not purged"; }
[ -z "$(installed_pkgs)" ] || tb_fail "left after purge: $(installed_pkgs | tr '\n' ' ')"
if dpkg -l 'lmrsec*' 'liblmrsec*' 2>/dev/null | grep -E '^(ii|rc|iU|iF)'; then
	tb_fail "dpkg -l still lists lmrsec packages"
fi
for f in /etc/lmrsec /usr/sbin/lmrsec-agent /usr/bin/lmrsecctl /usr/include/lmrsec.h \
	/lib/systemd/system/lmrsec-agent.service /var/lib/lmrsec; do
	[ ! -e "$f" ] || tb_fail "$f is still there after purge"
done
tb_log "purged: no package, conffile or state left"
tb_pass
