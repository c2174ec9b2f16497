#!/usr/bin/env bash
# Issue 6: liblmrsec exports only lmrsec_* symbols (nm -D --defined-only),
# every function lmrsec.h declares is among them, and the library has a
# versioned SONAME (libtool -version-info), liblmrsec.so.0.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/install/lib.sh"

command -v nm >/dev/null || it_skip "nm not found (Debian package binutils)"
command -v readelf >/dev/null || it_skip "readelf not found (Debian package binutils)"
so=$top_builddir/libclient/.libs/liblmrsec.so
[ -e "$so" ] || it_fail "$so was not built"

# "ADDRESS TYPE NAME" for every defined dynamic symbol
exports=$(nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | sed 's/@.*//' | sort -u)
[ -n "$exports" ] || it_fail "nm lists no exported symbol in $so"
# The version node itself (LMRSEC_0) is an absolute symbol, not an export.
others=$(grep -v '^lmrsec_' <<<"$exports" | grep -vx 'LMRSEC_0')
[ -z "$others" ] || it_fail "liblmrsec exports symbols outside lmrsec_*: $(tr '\n' ' ' <<<"$others")"
it_log "$(wc -l <<<"$exports") symbols exported, all lmrsec_*"

declared=$(sed -e 's://.*$::' "$top_srcdir/libclient/lmrsec.h" |
	perl -0777 -pe 's:/\*.*?\*/::gs' | grep -o '\blmrsec_[a-z0-9_]*[[:space:]]*(' |
	tr -d ' \t(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exports"))
[ -z "$missing" ] || it_fail "declared in lmrsec.h but not exported: $(tr '\n' ' ' <<<"$missing")"
it_log "all $(wc -l <<<"$declared") functions of lmrsec.h are exported"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = liblmrsec.so.0 ] || it_fail "SONAME is '$soname', expected liblmrsec.so.0"
readelf -V "$so" | grep -q 'LMRSEC_0' || it_fail "symbols carry no version node LMRSEC_0"
it_pass "SONAME $soname"
