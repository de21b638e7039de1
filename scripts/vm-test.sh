#!/usr/bin/env bash
# make vm-test: run the uring-zc test suites inside virtme-ng VMs on the stock
# and the patched 7.2 kernel (scripts/kernel-build.sh: Debian's prebuilt stock
# kernel, our patched build; `make vm-test` gets them first).
#
#   scripts/vm-test.sh [stock|patched]...	(default: both)
#
# One boot per kernel runs every step of scripts/vm-guest.sh: libzc's C tests,
# the tests/kernel programs (--expect-stock / --expect-unified), the probe CLI,
# the vitest suites, liburing's suite, the kernel selftest and, on patched
# under make test-full, tests/kernel/unified_bench.  The guest's
# kernel log (its dmesg dump and the serial console) is then checked by
# scripts/dmesg-check.py: a KASAN/UBSAN report, lockdep splat, WARNING, BUG,
# Oops or panic fails the kernel's run.
#
# Counting: the final "N passed, N failed" line counts STEPS: the host steps
# (dmesg-check self-test, host builds) and, per kernel, boot, every guest
# step and the dmesg check.  Each step's line gives its own test-case counts.
# A skipped step counts in neither number but is listed with its reason; a
# kernel whose guest steps are all skipped fails; a kernel that is not built
# or does not boot and finish fails.
#
# Results: build/vm/<kernel>/ in the repository (shared read-write with the
# guest): guest.log (guest stdout), console.log (serial console = full kernel
# log), dmesg.txt, <step>.log, vitest.json, unified_bench.txt (patched).
#
# Environment:
#   URING_ZC_VM_KVM=1        use KVM (default: TCG, `vng --disable-kvm`; nested
#                            KVM hangs on the project's machines)
#   URING_ZC_VM_MEMORY=4G    guest memory (KASAN needs it)
#   URING_ZC_VM_CPUS=2       guest CPUs
#   URING_ZC_VM_PARALLEL=1   boot the kernels' VMs side by side (0: one after
#                            the other); their output lines carry [stock] /
#                            [patched] prefixes
#   URING_ZC_VM_TIMEOUT=3600 seconds one VM may take before it is killed
#   URING_ZC_SCALE           loop scale for tests in the guest (0.1 under
#                            TCG, 1 under KVM)
#   URING_ZC_STEP_TIMEOUT=1800            seconds per guest step (vitest: 1.5x, liburing: 3x)
#   URING_ZC_VM_TEST_TIMEOUT_MS=120000    vitest --testTimeout in the guest
#   URING_ZC_VM_HOOK_TIMEOUT_MS=120000    vitest --hookTimeout in the guest
#   URING_ZC_VM_STEPS="libzc-c vitest"  run only these guest steps (while
#                            developing; `make test` runs them all)
#   URING_ZC_VM_VITEST_FILES="tests/ts/a.test.ts ..."  only these vitest files
#   URING_ZC_VM_LANES=1      2: the guest runs its vitest step beside the C tests,
#                            kernel ABI tests and probe (default 1: one by one)
#   URING_ZC_LIBURING_SET=essential       liburing tests run in the guest
#                            (essential or full; default full under
#                            URING_ZC_FULL=1; scripts/liburing-suite.sh)
#   URING_ZC_LIBURING_TIMEOUT=300         seconds per liburing test
# The guest also sees URING_ZC_VM=1, URING_ZC_KERNEL=stock|patched and
# URING_ZC_EXPECT_UNIFIED=0|1 (tests assert the probe/mode with them).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
RESULTS=$REPO/build/vm
MEMORY=${URING_ZC_VM_MEMORY:-4G}
CPUS=${URING_ZC_VM_CPUS:-2}
VM_TIMEOUT=${URING_ZC_VM_TIMEOUT:-3600}
JOBS=${URING_ZC_JOBS:-2}
PARALLEL=${URING_ZC_VM_PARALLEL:-1}

log() { printf 'vm-test: [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ---- step bookkeeping ---------------------------------------------------------
# Each scope (host, stock, patched) appends "scope<TAB>name<TAB>status<TAB>detail"
# lines to its own file, so VMs running side by side can record.
steps_file() { echo "$RESULTS/steps.$1.tsv"; }
record() {	# scope name pass|fail|skip detail...
	local scope=$1 name=$2 st=$3
	shift 3
	printf '%s\t%s\t%s\t%s\n' "$scope" "$name" "$st" "$*" >> "$(steps_file "$scope")"
	printf 'vm-test: %-8s %-18s %s  %s\n' "$scope" "$name" "$(echo "$st" | tr a-z A-Z)" "$*"
}

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(stock patched)
for k in "${kernels[@]}"; do
	case $k in stock | patched) ;; *)
		echo "usage: scripts/vm-test.sh [stock|patched]..." >&2
		exit 2 ;;
	esac
done

use_kvm=0
if [ "${URING_ZC_VM_KVM:-0}" = 1 ]; then
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		use_kvm=1
	else
		log "URING_ZC_VM_KVM=1 but /dev/kvm is not usable: falling back to TCG"
	fi
fi
if [ "$use_kvm" = 1 ]; then
	accel=(); accel_name=KVM; scale=${URING_ZC_SCALE:-1}
else
	accel=(--disable-kvm); accel_name=TCG; scale=${URING_ZC_SCALE:-0.1}
fi

# ---- host steps ---------------------------------------------------------------
mkdir -p "$RESULTS"
rm -f "$RESULTS"/steps.*.tsv
log "dmesg matcher self-test"
if out=$(python3 scripts/dmesg-check.py --self-test 2>&1); then
	record host dmesg-selftest pass "$(echo "$out" | tail -1 | sed 's/^dmesg-check: self-test //')"
else
	echo "$out"
	record host dmesg-selftest fail "$(echo "$out" | tail -1)"
fi

# Build on the host what the guests run, so nothing compiles under TCG.
host_build() {	# name dir targets...
	local name=$1 dir=$2 lf
	shift 2
	lf=$RESULTS/host-$name.log
	if [ ! -f "$dir/Makefile" ]; then
		record host "$name" skip "$dir/Makefile does not exist yet"
		return
	fi
	log "building $dir ($*)"
	if make -C "$dir" -j"$JOBS" "$@" >"$lf" 2>&1; then
		record host "$name" pass "make -C $dir $*"
	else
		tail -30 "$lf"
		record host "$name" fail "make -C $dir $* failed (log: $lf)"
	fi
}
# libzc: the library and its test programs (the `test` target's
# prerequisites, without running them: `make -C libzc test` ran them on the
# host already in `make test`).
libzc_targets=()
if [ -f libzc/Makefile ]; then
	if make -C libzc -n tests >/dev/null 2>&1; then
		libzc_targets=(all tests)	# the library the vitest suites load, too
	else
		libzc_targets=()
	fi
fi
host_build build-libzc libzc "${libzc_targets[@]}"
host_build build-kernel-tests tests/kernel
# The CLI as one plain ESM file, so the guest's probe step is `node cli.mjs`
# (tsx transforms the sources at every start: a minute and more under TCG).
if [ -x node_modules/.bin/esbuild ] && [ -f ts/cli/main.ts ]; then
	log "bundling ts/cli/main.ts"
	if node_modules/.bin/esbuild ts/cli/main.ts --bundle --platform=node --format=esm \
		--target=node20 --packages=external --log-level=warning \
		--outfile=build/vm-cli/cli.mjs >"$RESULTS/host-build-cli.log" 2>&1; then
		record host build-cli pass "esbuild ts/cli/main.ts -> build/vm-cli/cli.mjs"
	else
		cat "$RESULTS/host-build-cli.log"
		record host build-cli fail "esbuild ts/cli/main.ts failed (log: $RESULTS/host-build-cli.log)"
	fi
fi

# host_step NAME CMD...: a build step whose output is a directory.
host_step() {
	local name=$1 lf
	shift
	lf=$RESULTS/host-$name.log
	log "$name: $*"
	if "$@" >"$lf" 2>&1; then
		record host "$name" pass "$* -> $(tail -1 "$lf")"
	else
		tail -20 "$lf"
		record host "$name" fail "$* failed (log: $lf)"
	fi
}
# liburing's own suite with patches/liburing/ (scripts/liburing-suite.sh)
# and the kernel selftest of the series, built from the patched tree.
host_step build-liburing scripts/liburing-suite.sh build
if scripts/kernel-build.sh --image patched >/dev/null 2>&1; then
	host_step build-kselftest scripts/kselftest.sh build
else
	record host build-kselftest skip "the patched kernel is not built (make kernel)"
fi

# ---- one VM per kernel --------------------------------------------------------
run_vm() {
	local k=$1 out img start rc secs guest_steps=0 guest_ran=0 line name st detail rel up
	out=$RESULTS/$k
	rm -rf "$out"
	mkdir -p "$out"
	if ! img=$(scripts/kernel-build.sh --image "$k" 2>"$out/image.err"); then
		record "$k" boot fail "kernel not built: $(cat "$out/image.err") (make kernel)"
		return
	fi
	log "$k: booting $img under $accel_name ($CPUS CPUs, $MEMORY, timeout ${VM_TIMEOUT}s)"
	local envs=(URING_ZC_VM=1 "URING_ZC_SCALE=$scale" "PATH=$PATH")
	local v
	for v in URING_ZC_EXPECT_UNIFIED URING_ZC_STEP_TIMEOUT URING_ZC_VM_TEST_TIMEOUT_MS URING_ZC_VM_HOOK_TIMEOUT_MS \
		 URING_ZC_FULL URING_ZC_VM_STEPS URING_ZC_VM_VITEST_FILES URING_ZC_VM_LANES \
		 URING_ZC_CACHE URING_ZC_LIBURING_SET URING_ZC_LIBURING_TIMEOUT; do
		[ -n "${!v:-}" ] && envs+=("$v=${!v}")
	done
	local cmd
	cmd="env $(printf '%q ' "${envs[@]}")bash $(printf '%q' "$REPO/scripts/vm-guest.sh") $k $(printf '%q' "$out")"
	local clock_args=() w attempt
	if [ "$use_kvm" = 0 ]; then
		while IFS= read -r w; do clock_args+=("--append=$w"); done < <(scripts/vm-clock.sh)
		log "$k: guest clock: ${clock_args[*]#--append=}"
	fi
	# A guest whose clock runs fast (vm-guest.sh compares it with the RTC
	# before its first step) stops at once; it is booted a second time.
	for attempt in 1 2; do
		start=$(date +%s)
		# --verbose sends the serial console (the whole kernel log, including a
		# panic that kills the guest before it can dump dmesg) to stderr.
		# The host root is shared over 9p (the only virtiofsd Debian 12 has is
		# qemu's C one, which vng cannot use); virtme mounts it without a page
		# cache, so every exec re-reads its binaries from the host: cache=loose
		# (the last rootflags= wins) makes boot ~2.5x and node startup ~3.5x
		# faster under TCG.  The root is read-only in the guest and nothing on
		# the host changes under it during a run.
		# The clock words (tsc=reliable, tsc_early_khz=) and why: scripts/vm-clock.sh.
		# timeout kills its whole process group (vng, virtme-run, qemu).
		timeout -k 20 "$VM_TIMEOUT" vng --run "$img" "${accel[@]}" --cpus "$CPUS" --memory "$MEMORY" \
			--force-9p --append="rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose" \
			"${clock_args[@]}" --verbose --overlay-rwdir "$REPO" --rwdir "$out" --cwd "$REPO" --name "uring-zc-$k" \
			--exec "env URING_ZC_HOST_T0=$start $cmd" </dev/null 2>"$out/console.log" |
			tee "$out/guest.log" | sed -u "s/^/  [$k] /"
		rc=${PIPESTATUS[0]}
		secs=$(( $(date +%s) - start ))
		[ "$attempt" = 2 ] && break
		if grep -qa '^@@VM-CLOCK-BAD' "$out/guest.log"; then
			log "$k: $(grep -a '^@@VM-CLOCK-BAD' "$out/guest.log" | head -1 | tr -d '\r'): booting it again"
			mv "$out/console.log" "$out/console.clock-bad.log"
			continue
		fi
		# A TCG guest that died of "Oops: int3" before its test script started
		# lost the emulator's race with the kernel's own code patching
		# (text_poke_bp: a vCPU still ran the breakpoint byte after the patch
		# was done; seen in Debian's stock 7.2.13 at 3 s of boot, in
		# sched_clock_idle_wakeup_event from the idle tick): nothing of ours
		# ran yet.  It is booted a second time; a second death fails the boot
		# step, and any later splat fails the dmesg step as always.
		if [ "$use_kvm" = 0 ] && ! grep -qa '^@@VM-START ' "$out/guest.log" &&
			grep -qa 'Oops: int3' "$out/console.log"; then
			log "$k: died in boot before its test script, 'Oops: int3' (TCG and kernel code patching; console kept as $out/console.int3.log): booting it again"
			mv "$out/console.log" "$out/console.int3.log"
			continue
		fi
		break
	done

	if ! line=$(grep -a '^@@VM-START ' "$out/guest.log" | head -1) || [ -z "$line" ]; then
		echo "---- $k: last lines of the serial console ($out/console.log) ----"
		tail -40 "$out/console.log"
		if line=$(grep -a '^@@VM-CLOCK-BAD' "$out/guest.log" | head -1 | tr -d '\r') && [ -n "$line" ]; then
			record "$k" boot fail "guest clock ran fast in both boots (${line#@@VM-CLOCK-BAD }; scripts/vm-clock.sh)"
		else
			record "$k" boot fail "guest never started its test script (vng exit $rc after ${secs}s)"
		fi
	else
		rel=$(echo "$line" | awk '{print $2}')
		up=$(echo "$line" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
		record "$k" boot pass "kernel $rel, test script started ${up}s after boot"
		while IFS= read -r line; do
			# "@@STEP name status detail..."
			read -r _ name st detail <<<"$line"
			case $st in pass | fail | skip) ;; *) continue ;; esac
			record "$k" "$name" "$st" "$detail"
			guest_steps=$((guest_steps + 1))
			[ "$st" = skip ] || guest_ran=$((guest_ran + 1))
		done < <(grep -a '^@@STEP ' "$out/guest.log" | tr -d '\r')
		if ! grep -qa '^@@VM-DONE' "$out/guest.log"; then
			echo "---- $k: last lines of the serial console ($out/console.log) ----"
			tail -40 "$out/console.log"
			if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
				record "$k" finish fail "VM killed after ${VM_TIMEOUT}s (URING_ZC_VM_TIMEOUT)"
			else
				record "$k" finish fail "guest stopped before finishing its steps (vng exit $rc after ${secs}s)"
			fi
		elif [ "$guest_steps" -gt 0 ] && [ "$guest_ran" = 0 ]; then
			record "$k" suite fail "every guest step was skipped: nothing was tested on $k"
		fi
	fi

	local files=()
	[ -s "$out/dmesg.txt" ] && files+=("$out/dmesg.txt")
	[ -s "$out/console.log" ] && files+=("$out/console.log")
	if [ ${#files[@]} = 0 ]; then
		record "$k" dmesg fail "no kernel log captured"
	elif python3 scripts/dmesg-check.py --label "$k" "${files[@]}" >"$out/dmesg-check.txt" 2>&1; then
		record "$k" dmesg pass "no KASAN/lockdep/WARNING/BUG/Oops in ${files[*]##*/}"
	else
		cat "$out/dmesg-check.txt"
		record "$k" dmesg fail "$(tail -1 "$out/dmesg-check.txt" | sed 's/^dmesg-check: //')"
	fi
	log "$k: VM took ${secs}s"
	echo "$secs" > "$out/seconds"
}

if [ "$PARALLEL" = 1 ] && [ ${#kernels[@]} -gt 1 ]; then
	log "running the ${kernels[*]} VMs side by side (URING_ZC_VM_PARALLEL=0: one after the other)"
	pids=()
	for k in "${kernels[@]}"; do
		run_vm "$k" &
		pids+=($!)
	done
	wait "${pids[@]}"
else
	for k in "${kernels[@]}"; do
		run_vm "$k"
	done
fi

# liburing: a test that passes on stock must pass on patched.
if [ -s "$RESULTS/patched/liburing.tsv" ]; then
	if scripts/liburing-suite.sh compare "$RESULTS/stock/liburing.tsv" \
		"$RESULTS/patched/liburing.tsv" >"$RESULTS/liburing-compare.txt" 2>&1; then
		record host liburing-compare pass "$(tail -1 "$RESULTS/liburing-compare.txt"); $(grep -c 'fixed by the series' "$RESULTS/liburing-compare.txt") fixed by the series"
	else
		grep -v '^liburing-suite: fixed' "$RESULTS/liburing-compare.txt"
		record host liburing-compare fail "$(grep -E 'REGRESSION|FAIL' "$RESULTS/liburing-compare.txt" | sed 's/^liburing-suite: //' | head -5 | paste -sd';' -)"
	fi
fi

# ---- summary ------------------------------------------------------------------
passed=0 failed=0 skipped=0
echo
echo "vm-test: summary ($accel_name, URING_ZC_SCALE=$scale; results in $RESULTS)"
for k in "${kernels[@]}"; do
	[ -s "$(steps_file "$k")" ] || record "$k" finish fail "the VM runner recorded nothing"
done
while IFS= read -r s; do
	IFS=$'\t' read -r scope name st detail <<<"$s"
	case $st in
	pass) passed=$((passed + 1)) ;;
	fail) failed=$((failed + 1)) ;;
	skip) skipped=$((skipped + 1)) ;;
	esac
	printf '  %-8s %-18s %-5s %s\n' "$scope" "$name" "$(echo "$st" | tr a-z A-Z)" "$detail"
done < <(for sc in host "${kernels[@]}"; do cat "$(steps_file "$sc")" 2>/dev/null; done)
for k in "${kernels[@]}"; do
	[ -f "$RESULTS/$k/seconds" ] && echo "vm-test: $k VM: $(cat "$RESULTS/$k/seconds")s"
done
[ -f "$RESULTS/patched/unified_bench.txt" ] &&
	echo "vm-test: unified_bench table: $RESULTS/patched/unified_bench.txt"
[ "$skipped" -gt 0 ] && echo "vm-test: $skipped step(s) skipped (reasons above); skips count in neither number"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
