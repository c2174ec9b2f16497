#!/usr/bin/env bash
# Issue 6: lmrsec.h is usable from C++: a C++ file including it compiles
# warning-free as C++11 and C++17 (-Wall -Wextra -pedantic -Werror), links
# against liblmrsec (extern "C": no mangled names) and computes a known
# SHA-256 through it.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/install/lib.sh"

cxx=$(command -v g++ || command -v c++ || command -v clang++) ||
	it_skip "no C++ compiler (Debian package g++)"
so_dir=$top_builddir/libclient/.libs
[ -e "$so_dir/liblmrsec.so" ] || it_fail "$so_dir/liblmrsec.so was not built"
# A library built --enable-sanitizers needs the sanitizer runtimes first.
san=
readelf -d "$so_dir/liblmrsec.so" 2>/dev/null | grep -q 'libasan' &&
	san="-fsanitize=address,undefined"
dir=$(mktemp -d "${TMPDIR:-/tmp}/lmrsec-cxx.XXXXXX")
trap 'rm -rf "$dir"' EXIT

cat >"$dir/use.cc" <<'CXX'
#include <lmrsec.h>
#include <cstdio>
#include <cstring>

int main()
{
	uint8_t fp[32];
	char hex[65];
	struct lmrsec *c = nullptr;
	struct lmrsec_status st;

	lmrsec_sha256("abc", 3, fp);
	lmrsec_fingerprint_hex(fp, hex);
	std::memset(&st, 0, sizeof(st));
	(void)c;
	std::printf("%s %d %s\n", hex, lmrsec_lmr_type_valid("TETRA"),
		    lmrsec_strerror(-2) ? "ok" : "none");
	return 0;
}
CXX
for std in c++11 c++17; do
	"$cxx" -std=$std $san -Wall -Wextra -pedantic -Werror -I"$top_srcdir/libclient" \
		-o "$dir/use-$std" "$dir/use.cc" -L"$so_dir" -llmrsec 2>"$dir/cc.log" ||
		{ sed 's/^/#   /' "$dir/cc.log"; it_fail "lmrsec.h does not compile as $std"; }
	out=$(LD_LIBRARY_PATH=$so_dir "$dir/use-$std") || it_fail "the $std program failed"
	[ "$out" = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 1 ok" ] ||
		it_fail "the $std program printed '$out'"
	it_log "$std: compiles, links, SHA-256(\"abc\") right"
done
it_pass
