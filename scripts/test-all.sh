#!/usr/bin/env bash
# make test: every stage, even when one fails, then the wall time of each
# stage and one closing line that adds them up.  Each stage prints its own
# details.  After setup and build, two lanes run side by side:
#
#   background: kernels -> patch checks (checkpatch, W=1) -> VM suites
#   foreground: host C tests (plain | ASan+UBSan) -> vitest (this machine's
#               Node, then Node 24) -> the npm package on Node 20/22/24/26
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

# account NAME LOG RC SECS: pick a finished stage's counts from its output,
# add them up and keep its summary line.
account() {
	local name=$1 log=$2 rc=$3 secs=$4 p f
	# The suite's own closing counts: "N passed, N failed" (C, VM) or
	# vitest's "Tests  N passed | N failed".
	p=$(grep -aoE '([0-9]+) passed' "$log" | tail -n 1 | grep -oE '[0-9]+')
	f=$(grep -aoE '([0-9]+) failed' "$log" | tail -n 1 | grep -oE '[0-9]+')
	# Lines that name a failure, repeated in the closing summary, then from
	# vitest's "Failed Tests" report each error's line (an assertion, a
	# timeout, a thrown error) and its source line: what failed, not just
	# where (the CI record keeps only this summary).  Only from the report,
	# so the errors passing tests print on the way do not crowd it out.
	details+=("$({
		grep -aE '(^| )FAIL( |$)|^not ok|✗|×' "$log" | grep -av ' PASS ' | head -n 12
		awk '/Failed Tests [0-9]+/ { f = 1 } f && /(^|\] )[A-Za-z]*Error( \[[A-Z_]+\])?: |❯ tests\/[^ ]+:[0-9]+:[0-9]+/' "$log" | head -n 8
	} | cut -c1-400 | sed "s/^/    $name: /")")
	# The VM stage's own times: each VM, and each step in it.
	vmtimes=$(sed -nE 's/^vm-test: (stock|patched) +boot +PASS .* ([0-9]+)\.[0-9]+s after boot$/\1 boot \2 PASS/p; s/^vm-test: (stock|patched) +([a-z0-9-]+) +(PASS|FAIL|SKIP) .*\[([0-9]+)s\]$/\1 \2 \4 \3/p; s/^vm-test: (stock|patched) VM: ([0-9]+)s$/\1 (whole VM) \2 -/p' "$log" |
		awk '{ printf "             %-8s %-14s %4ds %s\n", $1, $2 == "(whole" ? "whole VM" : $2, $2 == "(whole" ? $4 : $3, $2 == "(whole" ? "" : ($NF == "PASS" ? "" : $NF) }')
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

# run NAME CMD...: run a stage in the foreground, time it, show and keep
# its output, pick its counts.
run() {
	local name=$1 log rc t0
	shift
	log=$(mktemp)
	echo "=== $name: $*"
	t0=$(date +%s)
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	account "$name" "$log" "$rc" $(( $(date +%s) - t0 ))
	rm -f "$log"
}

# lane NAME...: run stages in the background, one after another, beside
# the foreground ones; stage NAME is the function stage_NAME.  `finish NAME`
# waits for it and then shows its whole output (so stages running side by
# side do not interleave their lines) and counts it.
declare -A bg_dir
lane() {
	local name
	for name in "$@"; do
		bg_dir[$name]=$(mktemp -d)
		echo "=== $name: started in the background (its output follows when it ends)"
	done
	(
		for name in "$@"; do
			d=${bg_dir[$name]}
			t0=$(date +%s)
			"stage_$name" >"$d/log" 2>&1
			echo "$? $(( $(date +%s) - t0 ))" >"$d/rc.tmp"
			mv "$d/rc.tmp" "$d/rc"
		done
	) &
}
finish() {
	local name=$1 d=${bg_dir[$1]} rc secs off=0 size ended
	echo "=== $name (in the background so far; its output follows, live until it ends)"
	while :; do
		ended=0
		[ -f "$d/rc" ] && ended=1	# checked first: then the log is whole
		size=$(stat -c %s "$d/log" 2>/dev/null || echo 0)
		if [ "$size" -gt "$off" ]; then
			tail -c +$((off + 1)) "$d/log" | head -c $((size - off))
			off=$size
		fi
		[ "$ended" = 1 ] && break
		sleep 1
	done
	read -r rc secs <"$d/rc" || { rc=1 secs=0; }
	account "$name" "$d/log" "$rc" "$secs"
	rm -rf "$d"
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
# `tests` builds every test program, plain and ASan, so the runs below only
# run them.
run build "${zc_make[@]}" all tests

# The kernels, the patch checks and the VM suites take most of the time and
# most of the CPU (two TCG guests); the host suites spend much of theirs
# waiting (on delayed ACKs, peers, timers, child processes), so they run
# beside them.  Nothing the guests read changes meanwhile: the host stages
# write only to temporary directories, dist/ and libzc's prebuilt libraries,
# and the guests keep their own TMPDIR.
stage_kernel() { scripts/kernel-build.sh all; }
stage_patches() { scripts/patch-check.sh; }
stage_vm() { scripts/vm-test.sh; }
lane kernel patches vm
# The plain and ASan runs side by side, for the same reason.
stage_c-asan() { "${zc_make[@]}" test-asan; }
lane c-asan
run c-tests "${zc_make[@]}" test
finish c-asan
# Node 24 runs the same suites.  In the CI form the fuzzer hunts 10 s per
# ring setting on Node 20 and 5 s on Node 24 (30 s each in make test-full),
# Node 24's loops and volumes are a quarter of Node 20's (URING_ZC_SCALE:
# every test still runs; the VMs run at 0.1), and what Node's version does not change is checked on Node 20 only: the
# bench CLI's JSON shapes (bench, bench-file) and the declarations tsc
# builds (declarations); the package test runs the CLI and type-checks a
# consumer on Node 20/22/24/26.
if [ "${URING_ZC_FULL:-0}" = 1 ]; then
	run vitest npx vitest run
	run vitest-24 scripts/with-node.sh 24 npx vitest run
else
	run vitest env URING_ZC_FUZZ_SECONDS=10 npx vitest run
	run vitest-24 env URING_ZC_FUZZ_SECONDS=5 URING_ZC_SCALE=0.25 scripts/with-node.sh 24 npx vitest run \
		--exclude tests/ts/bench.test.ts --exclude tests/ts/bench-file.test.ts \
		--exclude tests/ts/declarations.test.ts
fi
run package scripts/package-test.sh
finish kernel
finish patches
finish vm
wait

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
