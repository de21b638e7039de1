#!/usr/bin/env bash
# make test: every stage, one after another, even when one fails, then the
# wall time of each stage and one closing line that adds them up.  Each
# stage prints its own details.
#
#   setup -> build -> host C tests (plain, ASan+UBSan) -> vitest (this
#   machine's Node, then Node 24) -> the npm package on Node 20/22/24/26 ->
#   kernels -> patch checks (checkpatch, W=1) -> VM suites
#
# `make test-full` runs the same with URING_ZC_FULL=1: suites whose complete
# form is too slow for CI run it then (each suite says what it trims).
set -uo pipefail
cd "$(dirname "$0")/.."

total_pass=0 total_fail=0 failed=() vmtimes=
summary=()
details=()
t_all=$(date +%s)

# 754 -> "12m34s"
dur() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# run NAME CMD...: run a stage, time it, keep its output, pick its counts.
run() {
	local name=$1 log rc p f t0 secs
	shift
	log=$(mktemp)
	echo "=== $name: $*"
	t0=$(date +%s)
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	secs=$(( $(date +%s) - t0 ))
	# The suite's own closing counts: "N passed, N failed" (C, VM) or
	# vitest's "Tests  N passed | N failed".
	p=$(grep -aoE '([0-9]+) passed' "$log" | tail -n 1 | grep -oE '[0-9]+')
	f=$(grep -aoE '([0-9]+) failed' "$log" | tail -n 1 | grep -oE '[0-9]+')
	# Lines that name a failure, repeated in the closing summary.
	details+=("$(grep -aE '(^| )FAIL( |$)|^not ok|✗|×' "$log" | grep -av ' PASS ' | head -n 15 | sed "s/^/    $name: /")")
	# The VM stage's own times: each VM, and each step in it.
	vmtimes=$(sed -nE 's/^vm-test: (stock|patched) +boot +PASS .* ([0-9]+)\.[0-9]+s after boot$/\1 boot \2 PASS/p; s/^vm-test: (stock|patched) +([a-z0-9-]+) +(PASS|FAIL|SKIP) .*\[([0-9]+)s\]$/\1 \2 \4 \3/p; s/^vm-test: (stock|patched) VM: ([0-9]+)s$/\1 (whole VM) \2 -/p' "$log" |
		awk '{ printf "             %-8s %-14s %4ds %s\n", $1, $2 == "(whole" ? "whole VM" : $2, $2 == "(whole" ? $4 : $3, $2 == "(whole" ? "" : ($NF == "PASS" ? "" : $NF) }')
	rm -f "$log"
	p=${p:-0} f=${f:-0}
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1	# died without counting its failure
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	[ "$rc" = 0 ] || failed+=("$name")
	summary+=("$(printf '%-10s %8s %5s passed, %3s failed%s' "$name" "$(dur "$secs")" "$p" "$f" \
		"$([ "$rc" = 0 ] || echo "  (exit $rc)")")")
	# (the summary's printf indents the first line by two already)
	[ -n "$vmtimes" ] && summary+=("${vmtimes:2}")
}

run setup scripts/setup.sh
# libzc and its tests (plain and ASan) through ccache, two jobs: every CI
# run is a fresh clone compiling the same sources again.  Its own ccache
# directory, not exported: the kernel builds keep theirs.
zc_make=(make -C libzc -j"$(nproc)")
if command -v ccache >/dev/null; then
	zc_make=(env "CCACHE_DIR=${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}/ccache-libzc"
		"CCACHE_BASEDIR=$PWD" CCACHE_NOHASHDIR=1 "${zc_make[@]}" CC="ccache cc")
fi
run build "${zc_make[@]}" all
run c-tests "${zc_make[@]}" test
run c-asan "${zc_make[@]}" test-asan
run vitest npx vitest run
# Node 24 runs the same suites; in the CI form the fuzzer hunts 5 s per ring
# setting (30 s on Node 20) and the bench CLI's JSON shapes (bench,
# bench-file: Node's version does not change them; the package test runs the
# CLI on 20/22/24/26) are checked on Node 20 only.  make test-full runs all.
if [ "${URING_ZC_FULL:-0}" = 1 ]; then
	run vitest-24 scripts/with-node.sh 24 npx vitest run
else
	run vitest-24 env URING_ZC_FUZZ_SECONDS=5 scripts/with-node.sh 24 npx vitest run \
		--exclude tests/ts/bench.test.ts --exclude tests/ts/bench-file.test.ts
fi
run package scripts/package-test.sh
run kernel scripts/kernel-build.sh all
run patches scripts/patch-check.sh
run vm scripts/vm-test.sh

echo
echo "=== make test summary: wall time and counts per stage"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "  failed: ${failed[*]}"
	for d in "${details[@]}"; do
		[ -n "$d" ] && echo "$d"
	done
fi
echo "  total $(dur $(( $(date +%s) - t_all ))) (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "summary: $total_pass passed, $total_fail failed"
[ ${#failed[@]} = 0 ]
