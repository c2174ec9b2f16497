#!/usr/bin/env bash
# Issue 6: every manual page (man/*.scd, built to roff by make) renders
# without a single groff warning (`groff -k -ww -z -man`: what `man -l` runs,
# preconv included, as scdoc sources are UTF-8), has the NAME, DESCRIPTION
# and SEE ALSO sections (and SYNOPSIS but in section 7), and gives whatis(1)
# a clean entry (lexgrog, as lintian checks it).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/install/lib.sh"

command -v groff >/dev/null || it_skip "groff not found (Debian package groff-base)"
n=0
for page in $(it_pages); do
	roff=$(it_page "$page")
	out=$(groff -k -ww -z -man "$roff" 2>&1) || it_fail "$page: groff failed: $out"
	[ -z "$out" ] || it_fail "$page: groff warns: $out"
	text=$(it_render "$page")
	sections=(NAME DESCRIPTION 'SEE ALSO')
	[ "${page##*.}" = 7 ] || sections+=(SYNOPSIS)
	for section in "${sections[@]}"; do
		grep -qx "$section" <<<"$text" || it_fail "$page: no $section section"
	done
	name=${page%.*}
	grep -A1 -x NAME <<<"$text" | grep -q "^ *$name - " ||
		it_fail "$page: NAME is not \"$name - ...\""
	if command -v lexgrog >/dev/null; then
		lexgrog "$roff" >/dev/null 2>&1 || it_fail "$page: lexgrog cannot parse its NAME section"
	fi
	it_log "$page: clean"
	n=$((n + 1))
done
[ "$n" -ge 5 ] || it_fail "only $n manual pages found in man/"
it_pass "$n pages"
