#!/usr/bin/env bash
# kernel-bench-guest.sh OUTDIR: the numbers of the kernel series' cover
# letter, inside a virtme-ng guest started by scripts/kernel-bench.sh (never
# on the host: it refuses to).
#
#  1. UDP to a dummy netdev: datagrams routed out of zcb-dummy0 are freed at
#     transmit, so zero-copy pages are never copied (what a NIC does, without
#     a NIC); copy vs two-CQE vs single-CQE sends, 1 KiB to 64 KiB.
#  2. TCP over a veth pair into a second network namespace where a sink reads
#     and discards: a stream sender in the three ways it can keep order
#     (unified_bench tcp), for a few buffer counts and chain lengths.
# Each command line is printed before it runs; OUTDIR/kernel-bench.txt gets
# everything.
#
# Environment: URING_ZC_BENCH_MS (ms per cell, default 1000),
# URING_ZC_BENCH_ROUNDS (default 5).
set -euo pipefail

OUT=${1:?usage: kernel-bench-guest.sh OUTDIR}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
if [ "${URING_ZC_VM:-}" != 1 ]; then
	echo "kernel-bench-guest.sh runs inside a virtme-ng VM; use scripts/kernel-bench.sh" >&2
	exit 2
fi
B=tests/kernel/unified_bench
MS=${URING_ZC_BENCH_MS:-1000}
ROUNDS=${URING_ZC_BENCH_ROUNDS:-5}
exec > >(tee "$OUT/kernel-bench.txt") 2>&1

run() {
	echo "\$ $*"
	"$@"
	echo
}

echo "# kernel $(uname -r), $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "# lockdep: $([ -e /proc/lockdep ] && echo on || echo off), KASAN: $(dmesg | grep -q 'KernelAddressSanitizer initialized' && echo on || echo off)"
ulimit -l unlimited 2>/dev/null || true

# ---- 1. UDP to a dummy netdev -------------------------------------------------
run ip link add zcb-dummy0 type dummy
# an MTU like loopback's: one skb per datagram, no fragmentation
run ip link set zcb-dummy0 mtu 65535 up
run ip addr add 10.77.0.1/24 dev zcb-dummy0
run "$B" udp --dest 10.77.0.2:9 --sizes 1024,4096,16384,32768,65000 --depth 32 \
	--ms "$MS" --rounds "$ROUNDS"
echo "# dummy tx counters: $(ip -s link show zcb-dummy0 | awk '/TX:/ {getline; print $1 " bytes, " $2 " packets, " $4 " dropped"}')"

# ---- 2. TCP over veth into a sink in another namespace -------------------------
run ip netns add zcb-peer
run ip link add zcb-v0 type veth peer name zcb-v1 netns zcb-peer
run ip addr add 10.78.0.1/24 dev zcb-v0
run ip link set zcb-v0 up
run ip -n zcb-peer addr add 10.78.0.2/24 dev zcb-v1
run ip -n zcb-peer link set zcb-v1 up
run ip -n zcb-peer link set lo up
echo "\$ ip netns exec zcb-peer $B sink --port 7777 --bind 10.78.0.2 &"
ip netns exec zcb-peer "$B" sink --port 7777 --bind 10.78.0.2 &
sink=$!
sleep 1
for cfg in "4 1" "16 4" "16 16"; do
	read -r bufs chain <<<"$cfg"
	run "$B" tcp --dest 10.78.0.2:7777 --size 65536 --bufs "$bufs" --chain "$chain" \
		--ms "$MS" --rounds "$ROUNDS"
done
kill "$sink" 2>/dev/null || true
wait "$sink" 2>/dev/null || true
ip netns del zcb-peer
ip link del zcb-dummy0
echo "# done"
