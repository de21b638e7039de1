#!/usr/bin/env bash
# make kernel-bench: the numbers of the kernel series' cover letter, measured
# in a virtme-ng VM on the "bench" kernel (scripts/kernel-build.sh bench: the
# patched source without KASAN/lockdep).  Not part of `make test`.
#
#   scripts/kernel-bench.sh [--runs N]	build what is missing, boot, measure,
#					summarise
#   scripts/kernel-bench.sh --summary DIR	re-print the summary of a run
#
# In the guest (--guest DIR, never on the host) tests/kernel/unified_bench
# runs N times (default 5), each run one process with every mode interleaved
# round by round:
#   udp  to 198.18.0.2 routed to a dummy netdev (the stack frees the pages at
#        transmit without copying them: zero-copy is really exercised), sizes
#        1 KiB, 4 KiB, 16 KiB, 64 KiB - 29 (65507, the largest UDP payload),
#        modes copy (IORING_OP_SEND), two-cqe (SEND_ZC), single (SEND_ZC |
#        IORING_SEND_ZC_SINGLE_CQE), 32 sends in flight;
#   tcp  over a veth pair to a sink in a network namespace, 64 KiB sends in
#        IOSQE_IO_LINK chains of 4 with MSG_WAITALL, modes two-cqe, single,
#        single-nop (see unified_bench.c).
# Results: build/kernel-bench/ (run<i>.udp.txt, run<i>.tcp.txt, summary.txt):
# per size, the ratios single/two-cqe and single/copy of sends/s and of CPU
# per send (user + system time of the sending thread, getrusage), as
# min/median/max over the runs, next to the median absolute values.
#
# Under TCG (the default; URING_ZC_VM_KVM=1 for KVM) absolute numbers are
# those of an emulated CPU: compare modes within a run, not with hardware.
#
# Environment: URING_ZC_CACHE (kernel cache, as kernel-build.sh; use a
# private one on a shared machine), URING_ZC_NICE (niceness of the kernel
# build, default 19), URING_ZC_VM_KVM, URING_ZC_VM_CPUS (2),
# URING_ZC_VM_MEMORY (2G), URING_ZC_BENCH_RUNS (5), URING_ZC_BENCH_MS (300,
# per cell and round), URING_ZC_BENCH_ROUNDS (3).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
OUT=$REPO/build/kernel-bench
RUNS=${URING_ZC_BENCH_RUNS:-5}
MS=${URING_ZC_BENCH_MS:-300}
ROUNDS=${URING_ZC_BENCH_ROUNDS:-3}
SIZES=1024,4096,16384,65507
BENCH=tests/kernel/unified_bench
# Addresses of RFC 2544's benchmarking range, only inside the guest.
UDP_NET=198.18.0
TCP_NET=198.19.0
TCP_PORT=5201

log() { printf 'kernel-bench: [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "kernel-bench: error: $*" >&2; exit 1; }

# ---- summary (host) -------------------------------------------------------------
summary() {	# dir
	python3 - "$1" <<'EOF'
import glob, os, re, statistics, sys

d = sys.argv[1]
def mmm(v):
    v = sorted(v)
    return "%.2f/%.2f/%.2f" % (v[0], statistics.median(v), v[-1]) if v else "-"

udp = {}	# size -> mode -> list of (rate, cpu) per run
head = None
for f in sorted(glob.glob(os.path.join(d, "run*.udp.txt"))):
    for line in open(f):
        if line.startswith("# unified_bench udp") and head is None:
            head = line.strip()
        m = re.match(r"^(copy|two-cqe|single)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            mode, size = m.group(1), int(m.group(2))
            rate, user, sys_ = float(m.group(3)), float(m.group(5)), float(m.group(6))
            udp.setdefault(size, {}).setdefault(mode, []).append((rate, user + sys_))
print("UDP (%s)" % (head or "?"))
print("%6s  %-8s %10s %12s | %-26s %-26s | %-26s %-26s" % (
    "bytes", "mode", "sends/s", "CPU us/send", "single/two-cqe sends/s", "single/two-cqe CPU/send",
    "single/copy sends/s", "single/copy CPU/send"))
for size in sorted(udp):
    by = udp[size]
    n = min(len(v) for v in by.values())
    ratio = {}
    for a, b in (("single", "two-cqe"), ("single", "copy")):
        if a in by and b in by:
            ratio[(a, b, 0)] = [by[a][i][0] / by[b][i][0] for i in range(n)]
            ratio[(a, b, 1)] = [by[a][i][1] / by[b][i][1] for i in range(n)]
    first = True
    for mode in ("copy", "two-cqe", "single"):
        if mode not in by:
            continue
        rate = statistics.median(x[0] for x in by[mode])
        cpu = statistics.median(x[1] for x in by[mode])
        extra = ""
        if first:
            extra = " | %-26s %-26s | %-26s %-26s" % tuple(
                mmm(ratio.get(k, [])) for k in (("single", "two-cqe", 0), ("single", "two-cqe", 1),
                                                 ("single", "copy", 0), ("single", "copy", 1)))
            first = False
        print("%6d  %-8s %10.0f %12.2f%s" % (size, mode, rate, cpu, extra))
print("(absolute values: medians over %d runs; ratios: min/median/max over the runs, each ratio within one run)" % n if udp else "no UDP results")

tcp = {}
head = None
for f in sorted(glob.glob(os.path.join(d, "run*.tcp.txt"))):
    for line in open(f):
        if line.startswith("# unified_bench tcp") and head is None:
            head = line.strip()
        m = re.match(r"^(copy|two-cqe|single-nop|single)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s+(\d+)", line)
        if m:
            tcp.setdefault(m.group(1), []).append([float(m.group(i)) for i in range(2, 11)])
print()
print("TCP (%s)" % (head or "?"))
print("%-10s %8s %9s %9s %11s %15s %15s %7s" % ("mode", "MB/s", "sends/s", "CQEs/send", "CPU us/send",
      "queued p50/p99", "released p50/99", "errors"))
for mode in ("copy", "two-cqe", "single", "single-nop"):
    if mode not in tcp:
        continue
    med = [statistics.median(r[i] for r in tcp[mode]) for i in range(9)]
    print("%-10s %8.1f %9.0f %9.2f %11.2f %7.0f/%-7.0f %7.0f/%-7.0f %7.0f" % (mode, *med))
if "two-cqe" in tcp:
    n = len(tcp["two-cqe"])
    for mode in ("copy", "single", "single-nop"):
        if mode in tcp and len(tcp[mode]) == n:
            print("%s/two-cqe: MB/s %s, CPU/send %s, queued p50 %s (min/median/max over %d runs)" % (
                mode, mmm([tcp[mode][i][0] / tcp["two-cqe"][i][0] for i in range(n)]),
                mmm([tcp[mode][i][3] / tcp["two-cqe"][i][3] for i in range(n)]),
                mmm([tcp[mode][i][4] / max(tcp["two-cqe"][i][4], 1) for i in range(n)]), n))
print("(medians over the runs; latencies in us: queued = chain submitted -> the sender may submit the next one, released = send submitted -> buffer reusable)")
EOF
}

# ---- guest ----------------------------------------------------------------------
guest() {	# dir
	local dir=$1 i rc=0 sink st
	[ "${URING_ZC_VM:-}" = 1 ] || die "--guest runs inside the VM (scripts/kernel-bench.sh boots it)"
	echo "@@BENCH-START $(uname -r)"
	grep -q 'CONFIG_KASAN=y' "/proc/config.gz" 2>/dev/null && echo "warning: KASAN kernel"
	ulimit -l unlimited 2>/dev/null || true
	# UDP: a dummy netdev; no ARP on it, the stack hands every skb to
	# dummy_xmit(), which frees it.
	ip link add uzbench0 type dummy &&
		ip link set uzbench0 up &&
		ip addr add "$UDP_NET.1/24" dev uzbench0 || { echo "dummy netdev setup failed"; return 1; }
	# TCP: a veth pair into a namespace holding the sink.
	ip netns add uzbench-peer &&
		ip link add uzbench1 type veth peer name uzbench2 netns uzbench-peer &&
		ip addr add "$TCP_NET.1/24" dev uzbench1 && ip link set uzbench1 up &&
		ip -n uzbench-peer addr add "$TCP_NET.2/24" dev uzbench2 &&
		ip -n uzbench-peer link set uzbench2 up &&
		ip -n uzbench-peer link set lo up || { echo "veth setup failed"; return 1; }
	ip netns exec uzbench-peer "$BENCH" sink --port "$TCP_PORT" --bind "$TCP_NET.2" &
	sink=$!
	sleep 1
	for i in $(seq "$RUNS"); do
		echo "== run $i/$RUNS: udp"
		"$BENCH" udp --dest "$UDP_NET.2:9" --sizes "$SIZES" --depth 32 --ms "$MS" --rounds "$ROUNDS" \
			--modes copy,two-cqe,single | tee "$dir/run$i.udp.txt" || rc=1
		echo "== run $i/$RUNS: tcp"
		"$BENCH" tcp --dest "$TCP_NET.2:$TCP_PORT" --size 65536 --bufs 16 --chain 4 --ms "$MS" \
			--rounds "$ROUNDS" | tee "$dir/run$i.tcp.txt" || rc=1
	done
	# The bench's failure paths: a connected UDP socket to a closed port on
	# loopback fails about every other send with ECONNREFUSED.  The run must
	# end (two-cqe: a failed send without F_MORE frees its slot), count each
	# failure once, and single must take exactly one CQE per send.
	echo "== failure paths: udp to a closed loopback port"
	ip link set lo up
	timeout 120 "$BENCH" udp --dest 127.0.0.1:9 --sizes 1024 --depth 32 --ms 200 --rounds 1 \
		--modes copy,two-cqe,single > "$dir/failpaths.txt" 2>&1
	st=$?
	if [ "$st" = 0 ]; then
		cat "$dir/failpaths.txt"
		awk '$1 ~ /^(copy|two-cqe|single)$/ { rows++
			if ($9 + 0 == 0) { print "failure paths: " $1 " saw no failed send"; bad = 1 }
			if ($1 == "single" && $4 != "1.00") { print "failure paths: single took " $4 " CQEs per send"; bad = 1 } }
			END { if (rows < 3) { print "failure paths: want 3 rows, got " rows; bad = 1 }; exit bad }' \
			"$dir/failpaths.txt" || rc=1
	else
		cat "$dir/failpaths.txt"
		echo "failure paths: unified_bench failed or hung (exit $st)"
		rc=1
	fi
	kill "$sink" 2>/dev/null
	wait "$sink" 2>/dev/null
	ip netns del uzbench-peer
	ip link del uzbench0
	echo "@@BENCH-DONE rc=$rc"
	return "$rc"
}

# ---- host -----------------------------------------------------------------------
host() {
	local img accel=(--disable-kvm) accel_name=TCG rc
	while [ $# -gt 0 ]; do
		case $1 in
		--runs) RUNS=${2:?--runs N}; shift 2 ;;
		*) die "unknown argument '$1' (see the top of $0)" ;;
		esac
	done
	nice -n "${URING_ZC_NICE:-19}" scripts/kernel-build.sh bench || die "building the bench kernel failed"
	img=$(scripts/kernel-build.sh --image bench) || die "no bench kernel"
	make -C tests/kernel >/dev/null || die "make -C tests/kernel failed"
	if [ "${URING_ZC_VM_KVM:-0}" = 1 ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		accel=(); accel_name=KVM
	fi
	rm -rf "$OUT"
	mkdir -p "$OUT"
	log "booting $img under $accel_name: $RUNS runs, ${MS} ms x $ROUNDS rounds per cell"
	local clock_args=() w
	if [ "$accel_name" = TCG ]; then
		while IFS= read -r w; do clock_args+=("--append=$w"); done < <(scripts/vm-clock.sh)
	fi
	timeout -k 20 "${URING_ZC_VM_TIMEOUT:-3000}" vng --run "$img" "${accel[@]}" \
		--cpus "${URING_ZC_VM_CPUS:-2}" --memory "${URING_ZC_VM_MEMORY:-2G}" \
		--force-9p --append="rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose" \
		"${clock_args[@]}" \
		--verbose --rwdir "$OUT" --cwd "$REPO" --name uring-zc-bench \
		--exec "env URING_ZC_VM=1 URING_ZC_BENCH_RUNS=$RUNS URING_ZC_BENCH_MS=$MS URING_ZC_BENCH_ROUNDS=$ROUNDS bash $(printf '%q' "$REPO/scripts/kernel-bench.sh") --guest $(printf '%q' "$OUT")" \
		</dev/null 2>"$OUT/console.log" | tee "$OUT/guest.log"
	rc=${PIPESTATUS[0]}
	grep -q '^@@BENCH-DONE rc=0' "$OUT/guest.log" || { tail -20 "$OUT/console.log"; die "the guest did not finish cleanly (vng exit $rc); logs in $OUT"; }
	{
		echo "# scripts/kernel-bench.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $accel_name guest," \
			"${URING_ZC_VM_CPUS:-2} vCPUs, kernel $(sed -n 's/^@@BENCH-START //p' "$OUT/guest.log")"
		summary "$OUT"
	} | tee "$OUT/summary.txt"
}

case ${1:-} in
--guest) guest "${2:?--guest DIR}" ;;
--summary) summary "${2:-$OUT}" ;;
*) host "$@" ;;
esac
