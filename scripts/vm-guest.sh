#!/usr/bin/env bash
# vm-guest.sh KERNEL OUTDIR: the test steps of one VM, run inside a virtme-ng
# guest by scripts/vm-test.sh (never on the host: it refuses to).
#
# KERNEL is "stock" or "patched"; OUTDIR is a host directory shared read-write
# with the guest, where step logs, vitest's JSON report, the benchmark table
# and the guest's dmesg land.  The repository itself is an overlay in the
# guest: writes to it (caches, build outputs) are discarded at power-off.
#
# Protocol on stdout (parsed by vm-test.sh; everything else is human output):
#   @@VM-CLOCK-BAD uptime=<s> real=<s>  (instead of all below: the clock runs fast)
#   @@VM-START <kernel-release> uptime=<seconds since boot>
#   @@STEP <name> <pass|fail|skip> <detail> [<seconds since begin>s]
#   @@VM-DONE
# Before each step the guest writes "uring-zc-vm: step <name> begin" into the
# kernel log so scripts/dmesg-check.py can say which step a splat came from.
#
# Environment (set by vm-test.sh): URING_ZC_VM=1, URING_ZC_KERNEL,
# URING_ZC_EXPECT_UNIFIED (1 on patched, 0 on stock), URING_ZC_SCALE (loop
# scale factor for tests, < 1 under TCG), URING_ZC_STEP_TIMEOUT (seconds),
# URING_ZC_FULL=1 under `make test-full` (steps that trim themselves for CI
# run their complete form).
set -uo pipefail
exec 2>&1

KERNEL=${1:?usage: vm-guest.sh stock|patched OUTDIR}
OUT=${2:?usage: vm-guest.sh stock|patched OUTDIR}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1

if [ "${URING_ZC_VM:-}" != 1 ] || [ ! -d /run/tmp ]; then
	echo "vm-guest.sh runs inside a virtme-ng VM; use scripts/vm-test.sh" >&2
	exit 2
fi

case $KERNEL in
stock) expect_flag=--expect-stock ;;
patched) expect_flag=--expect-unified ;;
*) echo "vm-guest: unknown kernel '$KERNEL'" >&2; exit 2 ;;
esac
STEP_TIMEOUT=${URING_ZC_STEP_TIMEOUT:-1800}
export URING_ZC_VM=1 URING_ZC_KERNEL=$KERNEL
export URING_ZC_EXPECT_UNIFIED=${URING_ZC_EXPECT_UNIFIED:-$([ "$KERNEL" = patched ] && echo 1 || echo 0)}
export URING_ZC_SCALE=${URING_ZC_SCALE:-0.1}
export CI=${CI:-1}	# no interactive/watch modes anywhere
export NO_COLOR=1 FORCE_COLOR=0	# plain logs
# A guest-private temp dir: the guest's /tmp overlays the host's /tmp, read
# over 9p with cache=loose, so files the host writes there during the run
# (tsx's transform cache, when anything runs tsx on the host meanwhile) can
# be seen half-written: tsx's lexer then crashed in child processes.
export TMPDIR=/run/tmp/uring-zc
mkdir -p "$TMPDIR"
# vitest timeouts for TCG (the suites' own defaults are sized for the host;
# the slowest test took 47 s in the stock VM, a hung one costs this much).
VITEST_TEST_TIMEOUT=${URING_ZC_VM_TEST_TIMEOUT_MS:-120000}
VITEST_HOOK_TIMEOUT=${URING_ZC_VM_HOOK_TIMEOUT_MS:-120000}

ulimit -n 65536 2>/dev/null || true

kmsg() { echo "uring-zc-vm: $*" > /dev/kmsg 2>/dev/null || true; }
result() {	# name status detail...  (the step's wall time is appended)
	local name=$1 st=$2
	shift 2
	echo "@@STEP $name $st $* [$((SECONDS - STEP_T0))s]"
}
banner() { printf '\n===== [%s] step %s: %s\n' "$KERNEL" "$1" "$2"; }

# run_logged NAME CMD...: run with the step timeout, output to the console and
# to $OUT/NAME.log.  Returns the command's status (124 on timeout).
run_logged() {
	local name=$1 rc
	shift
	timeout -k 10 "$STEP_TIMEOUT" "$@" 2>&1 | tee -a "$OUT/$name.log"
	rc=${PIPESTATUS[0]}
	[ "$rc" = 124 ] && echo "vm-guest: $name: timed out after ${STEP_TIMEOUT}s" | tee -a "$OUT/$name.log"
	return "$rc"
}

# Last "N passed, N failed" line of a log, or empty.
counts_of() {
	grep -aoE '[0-9]+ passed, [0-9]+ failed' "$1" 2>/dev/null | tail -1
}

STEP_T0=$SECONDS
begin() {	# name description
	STEP_T0=$SECONDS
	banner "$1" "$2"
	kmsg "step $1 begin"
	: > "$OUT/$1.log"
}

# ---- step: libzc's C tests (built on the host by vm-test.sh) ----------------
step_libzc_c() {
	local name=libzc-c rc c
	begin $name "libzc C tests (make -C libzc test)"
	if [ ! -f libzc/Makefile ]; then
		result $name skip "libzc/Makefile does not exist yet"
		return
	fi
	run_logged $name make -C libzc --no-print-directory test
	rc=$?
	c=$(counts_of "$OUT/$name.log")
	if [ "$rc" = 0 ]; then
		result $name pass "${c:-exit 0}"
	else
		result $name fail "exit $rc${c:+, $c} (log: $OUT/$name.log)"
	fi
}

# ---- step: the kernel patch tests, tests/kernel/* ----------------------------
# Every tests/kernel/<name>.c whose program is built runs with --expect-stock
# or --expect-unified; benchmarks (*bench*) run in their own step.
step_kernel_tests() {
	local name=kernel-tests src bin rc c p f np=0 nf=0 ran=0 failed=() missing=()
	begin $name "tests/kernel programs ($expect_flag)"
	if [ ! -d tests/kernel ]; then
		result $name skip "tests/kernel does not exist yet"
		return
	fi
	for src in tests/kernel/*.c; do
		[ -e "$src" ] || continue
		bin=${src%.c}
		case ${bin##*/} in *bench*) continue ;; esac
		if [ ! -x "$bin" ]; then
			# A helper source without a main() of its own is fine; a test
			# that did not build is not.
			grep -qE '^(int|static int)[[:space:]]+main[[:space:]]*\(' "$src" && missing+=("${bin##*/}")
			continue
		fi
		echo "--- $bin $expect_flag"
		: > "$OUT/$name.${bin##*/}.log"
		timeout -k 10 "$STEP_TIMEOUT" "$bin" "$expect_flag" 2>&1 | tee -a "$OUT/$name.${bin##*/}.log" "$OUT/$name.log"
		rc=${PIPESTATUS[0]}
		ran=$((ran + 1))
		c=$(counts_of "$OUT/$name.${bin##*/}.log")
		if [ -n "$c" ]; then
			p=${c%% passed*}; f=${c#*, }; f=${f%% failed*}
			np=$((np + p)); nf=$((nf + f))
		fi
		if [ "$rc" != 0 ]; then
			failed+=("${bin##*/}(exit $rc)")
		elif [ -z "$c" ]; then
			failed+=("${bin##*/}(no 'N passed, N failed' line)")
		fi
	done
	if [ "$ran" = 0 ] && [ ${#missing[@]} = 0 ]; then
		result $name skip "no test programs in tests/kernel"
	elif [ ${#failed[@]} -gt 0 ] || [ ${#missing[@]} -gt 0 ]; then
		result $name fail "$ran program(s), $np passed, $nf failed;${failed[*]:+ failed: ${failed[*]};}${missing[*]:+ not built: ${missing[*]}}"
	else
		result $name pass "$ran program(s), $np passed, $nf failed"
	fi
}

# ---- step: liburing's own test suite (scripts/liburing-suite.sh) --------------
# The guest step passes when the suite ran; whether a failure is a regression
# is decided on the host, against the other kernel (vm-test.sh).
step_liburing() {
	local name=liburing rc c set=${URING_ZC_LIBURING_SET:-}
	[ -n "$set" ] || { [ "${URING_ZC_FULL:-0}" = 1 ] && set=full || set=essential; }
	# its own per-test timeouts bound it; the step timeout is the backstop
	local STEP_TIMEOUT=$((STEP_TIMEOUT * 3))
	begin $name "liburing's test suite, set $set (compared with the other kernel on the host)"
	if ! scripts/liburing-suite.sh dir >/dev/null 2>&1; then
		result $name skip "liburing is not built (scripts/liburing-suite.sh build)"
		return
	fi
	run_logged $name scripts/liburing-suite.sh run "$OUT" "$set"
	rc=$?
	c=$(counts_of "$OUT/$name.log")
	if [ -s "$OUT/liburing.tsv" ] && { [ "$rc" = 0 ] || [ "$rc" = 1 ]; }; then
		result $name pass "ran: ${c:-no counts}; $(grep -c $'\tskip\t' "$OUT/liburing.tsv") skipped"
	else
		result $name fail "exit $rc${c:+, $c} (log: $OUT/$name.log)"
	fi
}

# ---- step: the kernel selftest io_uring_zerocopy_tx (scripts/kselftest.sh) ---
step_kselftest() {
	local name=kselftest rc c
	begin $name "tools/testing/selftests/net/io_uring_zerocopy_tx.sh"
	if ! scripts/kselftest.sh dir >/dev/null 2>&1; then
		result $name skip "the selftest is not built (scripts/kselftest.sh build)"
		return
	fi
	run_logged $name scripts/kselftest.sh run "$OUT"
	rc=$?
	c=$(counts_of "$OUT/$name.log")
	if [ "$rc" = 0 ]; then
		result $name pass "${c:-exit 0}$(grep -q 'single-CQE modes skipped' "$OUT/kselftest.log" && echo '; single-CQE modes skipped (no IORING_SEND_ZC_SINGLE_CQE)')"
	else
		result $name fail "exit $rc${c:+, $c} (log: $OUT/kselftest.log)"
	fi
}

# ---- step: the benchmark table for the cover letter (patched only) -----------
step_unified_bench() {
	local name=unified-bench rc
	begin $name "tests/kernel/unified_bench (table saved to $OUT/unified_bench.txt)"
	if [ ! -x tests/kernel/unified_bench ]; then
		result $name skip "tests/kernel/unified_bench is not built"
		return
	fi
	run_logged $name tests/kernel/unified_bench
	rc=$?
	cp "$OUT/$name.log" "$OUT/unified_bench.txt"
	if [ "$rc" = 0 ]; then
		result $name pass "table in $OUT/unified_bench.txt"
	else
		result $name fail "exit $rc (log: $OUT/$name.log)"
	fi
}

# ---- step: the vitest suites -------------------------------------------------
step_vitest() {
	local name=vitest rc summary split=
	# The CI of c5b523b took 1786 s for this step in the patched VM, and a
	# loaded host's 1806 s hit the 1800 s step timeout: half as much again.
	local STEP_TIMEOUT=$((STEP_TIMEOUT * 3 / 2))
	begin $name "vitest suites (URING_ZC_EXPECT_UNIFIED=$URING_ZC_EXPECT_UNIFIED URING_ZC_SCALE=$URING_ZC_SCALE)"
	if [ ! -x node_modules/.bin/vitest ]; then
		result $name skip "node_modules/.bin/vitest missing (run make setup on the host)"
		return
	fi
	if [ -z "$(find tests -name '*.test.ts' -not -path '*/node_modules/*' 2>/dev/null | head -1)" ]; then
		result $name skip "no *.test.ts suites under tests/ yet"
		return
	fi
	rm -f "$OUT/vitest.json"
	# The CI form (`make test`): files whose subject does not depend on the
	# kernel run on the host only (twice, Node 20 and 24): the ABI and
	# config checks, the loader, the bench JSON shapes, the option fuzzer,
	# the seccomp refusal and fallback, http/https/tls and the file server over
	# the socket layer (the socket, send, receive and sendFile paths they
	# use are tested here by their own files).  Under TCG they took 9 of the
	# step's 23 minutes.  `make test-full` (URING_ZC_FULL=1) runs them here.
	local host_only=(abi bench bench-file config declarations load fuzz options-fuzz fallback setup-errors http serve) excl=() f
	local patched_only=(errors fd-reuse leaks lifecycle memory recv-fair rings socket-receive validation)
	# The loop's sleep in the ring and libuv's idle metrics, the ring
	# watcher addon (its loading, fallback, worker threads and wakeups) and
	# its doorbell: the event loop's waits, not the send path the series
	# changes.  loop-wait and loop-idle took 337 of the patched VM's 1786 s
	# (CI of c5b523b); poll-watcher and doorbell 332 of its 1762 s (cold CI
	# of 8dcb969), the slowest files of the slowest guest.  The patched VM
	# still runs DEFER_TASKRUN's wakeups through tcp, defer-burst and
	# libzc's defer_leftover.
	local stock_only=(loop-wait loop-idle poll-watcher doorbell)
	if [ "${URING_ZC_FULL:-0}" != 1 ] && [ -z "${URING_ZC_VM_VITEST_FILES:-}" ]; then
		for f in "${host_only[@]}"; do
			excl+=(--exclude "tests/ts/$f.test.ts")
		done
		echo "vm-guest: CI form: on the host only: ${host_only[*]} (make test-full runs them here)"
		# The stock kernel runs the files whose path through the kernel
		# differs from the patched one's (the send paths: here libzc
		# joins the two CQEs of a zero-copy send itself) and the receive
		# suite on a distribution kernel.  The rest use the same io_uring
		# code as the patched VM, which runs every file, and run on the
		# host (6.18) too.
		if [ "$KERNEL" = stock ]; then
			for f in "${patched_only[@]}"; do
				excl+=(--exclude "tests/ts/$f.test.ts")
			done
			split="; patched VM only: ${patched_only[*]}"
		else
			for f in "${stock_only[@]}"; do
				excl+=(--exclude "tests/ts/$f.test.ts")
			done
			split="; stock VM only: ${stock_only[*]}"
		fi
		echo "vm-guest: CI form: ${split#; }"
	fi
	# shellcheck disable=SC2086	# a list of files, split on purpose
	# --no-isolate: the files share one worker's module cache.  Under TCG
	# importing the sources costs ~30 s per file when each file gets a
	# fresh worker (collect time); the suites do not depend on a fresh
	# process (they measure fds and pinned memory as deltas).
	# --no-cache: vitest's results cache lives in node_modules/.vite, which
	# the host's own vitest runs rewrite while the guests run beside them;
	# a half-written file there would fail this run's start.
	run_logged $name node_modules/.bin/vitest run --no-isolate --no-cache "${excl[@]}" ${URING_ZC_VM_VITEST_FILES:-} --reporter=default \
		--reporter=json --outputFile.json="$OUT/vitest.json" \
		--testTimeout="$VITEST_TEST_TIMEOUT" --hookTimeout="$VITEST_HOOK_TIMEOUT"
	rc=$?
	summary=$(node -e '
		const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
		// Per-file wall time under TCG, for test authors sizing their loops.
		for (const f of r.testResults)
			console.error(`vm-guest: vitest ${((f.endTime - f.startTime) / 1000).toFixed(1).padStart(6)}s ` +
				`${f.status.padEnd(6)} ${f.name.replace(process.cwd() + "/", "")}`);
		const files = r.testResults.length;
		const bad = r.testResults.filter((f) => f.status === "failed").length;
		console.log(`${files} file(s), ${r.numPassedTests} passed, ${r.numFailedTests} failed, ` +
			`${r.numPendingTests + r.numTodoTests} skipped` + (bad ? `, ${bad} file(s) failed` : ""));
	' "$OUT/vitest.json" 2>"$OUT/vitest-files.txt")
	cat "$OUT/vitest-files.txt"
	[ ${#excl[@]} -gt 0 ] && summary+="; host only (CI form): ${host_only[*]}"
	summary+=$split
	if [ "$rc" = 0 ]; then
		result $name pass "${summary:-exit 0}"
	else
		result $name fail "exit $rc${summary:+, $summary} (log: $OUT/$name.log)"
	fi
}

# ---- step: what the library reports about this kernel ------------------------
# `uring-zc probe --json` must say the unified completion is native exactly on
# the patched kernel (io_uring.unifiedNative), userspace merging on stock.
step_probe() {
	local name=probe rc want got
	begin $name "uring-zc probe --json (expects unifiedNative=$([ "$URING_ZC_EXPECT_UNIFIED" = 1 ] && echo true || echo false))"
	# vm-test.sh bundles the CLI on the host (build/vm-cli/cli.mjs); tsx is
	# the fallback.
	local cli=(node build/vm-cli/cli.mjs)
	if [ ! -f build/vm-cli/cli.mjs ]; then
		if [ ! -f ts/cli/main.ts ] || [ ! -x node_modules/.bin/tsx ]; then
			result $name skip "ts/cli/main.ts or node_modules/.bin/tsx missing"
			return
		fi
		cli=(node_modules/.bin/tsx ts/cli/main.ts)
	fi
	run_logged $name "${cli[@]}" probe --json
	rc=$?
	if [ "$rc" != 0 ]; then
		result $name fail "exit $rc (log: $OUT/$name.log)"
		return
	fi
	want=$([ "$URING_ZC_EXPECT_UNIFIED" = 1 ] && echo true || echo false)
	got=$(node -e '
		const t = require("fs").readFileSync(process.argv[1], "utf8");
		const j = JSON.parse(t.slice(t.indexOf("{")));
		console.log(`${j.io_uring.unifiedNative} ${j.caps.sendZcSingleCqe}`);
	' "$OUT/$name.log" 2>&1 | tail -1)
	if [ "$got" = "$want $want" ]; then
		result $name pass "unifiedNative=$want ($([ "$want" = true ] && echo native || echo userspace) unified completion)"
	else
		result $name fail "expected io_uring.unifiedNative and caps.sendZcSingleCqe $want, probe says: $got"
	fi
}

# The guest's clock against the host's: vm-test.sh passes the host's time at
# launch, and the host's clock now is the mtime of a file the guest touches
# in OUTDIR (a 9p share: the host's file system stamps it).  A clock that
# runs fast makes every timeout in the steps fire early
# (scripts/vm-clock.sh): stop before the first step, and vm-test.sh boots
# the guest again.
clock_check() {
	local stamp=$OUT/.clock-stamp up host real
	if [ -z "${URING_ZC_HOST_T0:-}" ] || ! touch "$stamp" 2>/dev/null ||
		! host=$(stat -c %Y "$stamp" 2>/dev/null); then
		echo "vm-guest: clock check skipped (no URING_ZC_HOST_T0, or $stamp cannot be written)"
		return 0
	fi
	rm -f "$stamp"
	up=$(cut -d. -f1 /proc/uptime)
	real=$(( host - URING_ZC_HOST_T0 ))
	echo "vm-guest: clock: uptime ${up}s, ${real}s since the host launched the guest (host clock)"
	if [ "$up" -gt $(( real * 3 / 2 + 30 )) ]; then
		echo "@@VM-CLOCK-BAD uptime=${up}s real=${real}s"
		return 1
	fi
}
if ! clock_check; then
	sync
	exit 0
fi
echo "@@VM-START $(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"
echo "vm-guest: kernel $(uname -rv), $(nproc) CPU(s), $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo)," \
     "uid $(id -u), node $(node --version 2>/dev/null || echo missing)"
echo "vm-guest: URING_ZC_KERNEL=$KERNEL URING_ZC_EXPECT_UNIFIED=$URING_ZC_EXPECT_UNIFIED URING_ZC_SCALE=$URING_ZC_SCALE"

# URING_ZC_VM_STEPS (vm-test.sh) picks steps while developing; default all.
want_step() { [ -z "${URING_ZC_VM_STEPS:-}" ] || [[ " $URING_ZC_VM_STEPS " == *" $1 "* ]]; }
# URING_ZC_VM_LANES=2 runs the vitest step beside libzc's C tests, the
# kernel ABI tests and the probe (each lane keeps about one guest CPU busy);
# liburing's suite and the selftest then run alone.  It is off by default:
# in a run on a heavily loaded machine (load 12-16) with two lanes, a
# sendFile truncation test on the read path and libzc's sendfile test hung
# or timed out, and liburing's link-timeout and recv-mshot-drain (a timer
# raced against an operation) failed when they shared the guest with
# vitest.  make test already runs the guests beside the host suites, so
# the guests' steps run one after another, each with the guest to itself.
lane=
if [ "${URING_ZC_VM_LANES:-1}" = 2 ] && want_step vitest; then
	step_vitest &
	lane=$!
fi
want_step libzc-c && step_libzc_c
want_step kernel-tests && step_kernel_tests
want_step probe && step_probe
if [ -n "$lane" ]; then
	wait "$lane"
else
	want_step vitest && step_vitest
fi
want_step liburing && step_liburing
want_step kselftest && step_kselftest
# The cover letter's benchmark (make kernel-bench measures it on a kernel
# without debug checkers): here only in make test-full, where it shows the
# program still runs on the debug kernel.
[ "$KERNEL" = patched ] && [ "${URING_ZC_FULL:-0}" = 1 ] && want_step unified-bench && step_unified_bench

kmsg "step (done) begin"
dmesg > "$OUT/dmesg.txt" 2>&1 || echo "vm-guest: dmesg failed" >&2
sync
echo "@@VM-DONE"
