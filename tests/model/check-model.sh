#!/usr/bin/env bash
# Model check of the delivery protocol (tests/model/delivery.pml) with spin:
#   1. safety: assertions and invalid end states, exhaustively;
#   2. liveness: the no_loss LTL property under weak fairness;
#   3. the checker is not vacuous: four mutants of the model (a 200 before the
#      commit, a row removed on NACK, in-flight messages kept when the consumer
#      goes away, no duplicate check) must each be caught.
set -u
here=$(cd "$(dirname "$0")" && pwd)
model=$here/delivery.pml
command -v spin >/dev/null 2>&1 || { echo "# SKIP: spin not installed (Debian package spin)"; exit 77; }
command -v gcc >/dev/null 2>&1 || { echo "# SKIP: gcc not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lmrsec-model.XXXXXX")
trap 'rm -rf "$work"' EXIT

# verify NAME MODEL MODE: MODE safety|liveness; prints pan's summary; 0 when no error
verify() {
	local name=$1 pml=$2 mode=$3 dir=$work/$1
	mkdir -p "$dir" && cd "$dir" || return 2
	spin -a "$pml" >spin.out 2>&1 || { cat spin.out; return 2; }
	if [ "$mode" = safety ]; then
		gcc -O2 -w -DSAFETY -DNOCLAIM -o pan pan.c || return 2
		./pan -m200000 >pan.out 2>&1
	else
		gcc -O2 -w -DNFAIR=3 -o pan pan.c || return 2
		./pan -a -f -m200000 >pan.out 2>&1
	fi
	grep -E 'errors:|states, stored' pan.out | sed "s/^/# $name: /"
	grep -q 'errors: 0' pan.out
}

fail=0
verify safety "$model" safety || { echo "# FAIL: safety properties violated"; fail=1; }
verify liveness "$model" liveness || { echo "# FAIL: no_loss violated"; fail=1; }

# mutant NAME SED-EXPR MODE: the model with one bug must fail verification
mutant() {
	local name=$1 expr=$2 mode=$3
	sed -e "$expr" "$model" >"$work/$name.pml"
	cmp -s "$model" "$work/$name.pml" && { echo "# FAIL: mutant $name did not change the model"; fail=1; return; }
	if verify "$name" "$work/$name.pml" "$mode"; then
		echo "# FAIL: mutant $name ($mode) was not caught"; fail=1
	else
		echo "# mutant $name caught, as it must be"
	fi
}
mutant answer-before-commit 's|:: crashes < MAXCRASH -> crash()     /\* died before the commit: no 200 \*/|:: crashes < MAXCRASH -> sip_resp ! OK200, m; crash()|' safety
mutant remove-on-nack 's|from_consumer ? NACK, m -> in_flight\[m\] = false|from_consumer ? NACK, m -> in_flight[m] = false; spool_row[m] = false|' safety
mutant stuck-when-gone 's|for (j : 0 .. N - 1) { in_flight\[j\] = false } }|skip }|' liveness
mutant no-dedupe 's|:: seen\[m\] -> sip_resp ! OK200, m |:: false -> skip |; s|:: !seen\[m\] ->|:: true ->|' safety

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "# PASS: delivery model: no loss, no removal before ACK, no duplicate delivery"
