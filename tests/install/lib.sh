# shellcheck shell=bash
# Helpers for tests/install/*.sh: where the built things are.  These tests
# need no peers; they check what `make install` and the packages ship.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"

it_fail() { printf '# FAIL: %s\n' "$*" >&2; exit 1; }
it_skip() { printf '# SKIP: %s\n' "$*"; exit 77; }
it_pass() { printf '# PASS%s\n' "${*:+: $*}"; exit 0; }
it_log() { printf '# %s\n' "$*"; }

# it_pages                  every manual page, by its scdoc source: "name.section"
it_pages() {
	local f
	for f in "$top_srcdir"/man/*.scd; do
		f=${f##*/}
		echo "${f%.scd}"
	done
}

# it_page PAGE              path of the built roff of PAGE (builddir, else the
#                           one shipped in the tarball); fails when there is none
it_page() {
	local p
	for p in "$top_builddir/man/$1" "$top_srcdir/man/$1"; do
		[ -f "$p" ] && { echo "$p"; return 0; }
	done
	it_fail "man/$1 was not built from man/$1.scd (is it in MAN_PAGES in Makefile.am?)"
}

# it_render PAGE            the page as plain text, one paragraph per line
#                           (no hyphenation, no line breaks to speak of)
it_render() {
	groff -k -man -Tascii -P-cbou -rLL=2000n -rHY=0 "$(it_page "$1")" 2>/dev/null
}
