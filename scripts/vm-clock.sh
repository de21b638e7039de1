#!/usr/bin/env bash
# vm-clock.sh: the clock words for a TCG guest's kernel command line, one per
# line (scripts/vm-test.sh and scripts/kernel-bench.sh append each).
#
# tsc=reliable: a guest starved of host CPU (TCG guests side by side with the
# host suites) can fail the clocksource watchdog's skew check; the kernel then
# marks the TSC unstable and disables the sched_clock static key, and that
# code patch raced with TCG once: "Oops: int3" in sched_clock_cpu, a panic on
# Debian's stock kernel.  A TCG guest's TSC follows the host's clock; the skew
# the watchdog saw was the guest descheduled between its two reads, not a
# drifting counter.
#
# tsc_early_khz=<host TSC rate>: with the watchdog off nothing checks the
# guest's own TSC calibration, and one stock guest came up with its clock
# running 13x fast (uptime 7832 s after 571 s of wall time): its timeouts
# fired early and liburing's timeout tests failed.  Under TCG, RDTSC returns
# the host's counter, so the host's rate is the guest's; scripts/tsc-khz.c
# measures it and the guest skips calibration.  scripts/vm-guest.sh still
# checks its clock against the RTC before its first step.
#
# URING_ZC_TSC_KHZ=N passes N instead of the measured rate (to test that
# check: a rate 10x too low makes the guest's clock run 10x fast).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

echo tsc=reliable
[ "$(uname -m)" = x86_64 ] || exit 0
if [ -n "${URING_ZC_TSC_KHZ:-}" ]; then
	echo "tsc_early_khz=$URING_ZC_TSC_KHZ"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if cc -std=c11 -O2 -Wall -Wextra -Werror -o "$tmp/tsc-khz" "$REPO/scripts/tsc-khz.c" >&2 &&
	khz=$("$tmp/tsc-khz") && [ "$khz" -gt 100000 ]; then
	echo "tsc_early_khz=$khz"
else
	echo "vm-clock: could not measure the host's TSC rate; the guest calibrates its own" >&2
fi
