#!/usr/bin/env bash
# make kernel-bench: the numbers of the kernel series' cover letter, measured
# in a virtme-ng VM on the patched kernel built WITHOUT KASAN and lockdep
# (scripts/kernel-build.sh bench): UDP to a dummy netdev and TCP over veth,
# see scripts/kernel-bench-guest.sh for what runs and how.  Not part of
# `make test`.
#
#   scripts/kernel-bench.sh
#
# Results: build/bench/kernel-bench.txt (and console.log).  Under TCG (the
# default; nested KVM does not work on the project's machines) every number
# is an emulated one: compare modes within one run, not with native figures.
#
# Environment: URING_ZC_VM_KVM=1 (use KVM), URING_ZC_VM_CPUS (default 2),
# URING_ZC_VM_MEMORY (default 2G), URING_ZC_BENCH_MS, URING_ZC_BENCH_ROUNDS.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
OUT=$REPO/build/bench
mkdir -p "$OUT"

make -s -C tests/kernel || exit 1
img=$(scripts/kernel-build.sh --image bench) || {
	echo "kernel-bench: the bench kernel is not built: run scripts/kernel-build.sh bench" >&2
	exit 1
}
if grep -qE '^CONFIG_(KASAN|PROVE_LOCKING)=y' "$img/.config"; then
	echo "kernel-bench: $img has KASAN or lockdep on: not a bench kernel" >&2
	exit 1
fi
accel=(--disable-kvm)
[ "${URING_ZC_VM_KVM:-0}" = 1 ] && accel=()
envs=(URING_ZC_VM=1 "PATH=$PATH")
for v in URING_ZC_BENCH_MS URING_ZC_BENCH_ROUNDS; do
	[ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
cmd="env $(printf '%q ' "${envs[@]}")bash $(printf '%q' "$REPO/scripts/kernel-bench-guest.sh") $(printf '%q' "$OUT")"
echo "kernel-bench: booting $(cat "$img/.uring-zc-release" 2>/dev/null) ($img) under $([ ${#accel[@]} = 0 ] && echo KVM || echo TCG)"
timeout -k 20 3600 vng --run "$img" "${accel[@]}" --cpus "${URING_ZC_VM_CPUS:-2}" \
	--memory "${URING_ZC_VM_MEMORY:-2G}" --force-9p \
	--append="rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose" \
	--verbose --rwdir "$OUT" --cwd "$REPO" --name uring-zc-bench \
	--exec "$cmd" </dev/null 2>"$OUT/console.log"
rc=$?
echo "kernel-bench: exit $rc; results in $OUT/kernel-bench.txt"
exit "$rc"
