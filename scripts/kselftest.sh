#!/usr/bin/env bash
# The kernel selftest the series extends, tools/testing/selftests/net/
# io_uring_zerocopy_tx.{c,sh} (its single-CQE modes -m 4..6 come with patch
# 5), built from the patched tree and run in the VMs.
#
#   scripts/kselftest.sh build
#	(host) build io_uring_zerocopy_tx and its receiver msg_zerocopy from
#	the patched tree that scripts/kernel-build.sh keeps, against that
#	tree's uapi headers; cached under the tree's build key.  Prints the
#	directory.
#   scripts/kselftest.sh dir
#	print the directory; exit 1 if it is not built or out of date.
#   scripts/kselftest.sh run OUTDIR [essential|full]
#	(guest, root) run io_uring_zerocopy_tx.sh over a veth pair between two
#	network namespaces.  full: the script's own automated run (IPv4 and
#	IPv6, UDP and TCP, every mode the kernel supports).  essential (the
#	default; `make test`, trimmed for CI's time under TCG: each run costs
#	15-50 s there): IPv4, UDP and TCP, mode 1 (zero-copy) and, where the
#	kernel has IORING_SEND_ZC_SINGLE_CQE, its single-CQE form 4.  One
#	"ok"/"FAIL" line per run, closing "N passed, N failed".  On a kernel
#	without the series the single-CQE modes are skipped (the binary is
#	asked with -Q).
#
# Environment: URING_ZC_CACHE (cache root, as scripts/kernel-build.sh);
# URING_ZC_FULL=1 makes full the default set.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}
OUT=$CACHE/kselftest
SRC=tools/testing/selftests/net

die() { echo "kselftest: error: $*" >&2; exit 2; }

tree() {
	"$REPO/scripts/kernel-build.sh" --image patched 2>/dev/null ||
		die "the patched kernel is not built: run scripts/kernel-build.sh patched"
}

key() { echo "$(cat "$(tree)/.uring-zc-key") gcc=$(gcc -dumpfullversion) recipe=1"; }

cmd_build() {
	local t hdr
	t=$(tree)
	mkdir -p "$OUT"
	if [ "$(cat "$OUT/.uring-zc-key" 2>/dev/null)" = "$(key)" ]; then
		echo "$OUT"
		return 0
	fi
	rm -f "$OUT/.uring-zc-key"
	hdr=$OUT/hdr
	# not while kernel-build.sh works on the tree
	exec 9>"$CACHE/kernel/.lock"
	flock 9
	make -s -C "$t" headers_install INSTALL_HDR_PATH="$hdr" >"$OUT/build.log" 2>&1 ||
		{ tail -20 "$OUT/build.log" >&2; die "headers_install failed"; }
	for p in io_uring_zerocopy_tx msg_zerocopy; do
		gcc -O2 -Wall -I"$t/tools/include" -isystem "$hdr/include" \
			-o "$OUT/$p" "$t/$SRC/$p.c" >>"$OUT/build.log" 2>&1 ||
			{ tail -20 "$OUT/build.log" >&2; die "$p failed to build"; }
	done
	cp "$t/$SRC/io_uring_zerocopy_tx.sh" "$OUT/"
	key > "$OUT/.uring-zc-key"
	echo "$OUT"
}

cmd_dir() {
	if [ "$(cat "$OUT/.uring-zc-key" 2>/dev/null)" != "$(key)" ]; then
		echo "kselftest: not built or out of date: run scripts/kselftest.sh build" >&2
		exit 1
	fi
	echo "$OUT"
}

cmd_run() {
	local out=${1:?usage: kselftest.sh run OUTDIR [essential|full]} set=${2:-}
	local d work rc np nf modes m proto
	[ -n "$set" ] || { [ "${URING_ZC_FULL:-0}" = 1 ] && set=full || set=essential; }
	d=$(cmd_dir) || exit 1
	work=$(mktemp -d "${TMPDIR:-/tmp}/kselftest.XXXXXX")
	cp "$d/io_uring_zerocopy_tx" "$d/msg_zerocopy" "$d/io_uring_zerocopy_tx.sh" "$work/"
	# The script starts the receiver, sleeps 0.2 s and sends: under TCG on
	# a loaded host the receiver may not have its socket yet (TCP:
	# "connect: Connection refused"; UDP: "send failed: Connection
	# refused", the ICMP port unreachable of a datagram that came too
	# early).  Wait until the receiver's namespace holds a listening TCP or
	# a bound UDP socket instead (the receiver is the only process there),
	# read from /proc/net: ss cannot see UDP sockets in a guest without
	# udp_diag, and its wait then ran out every time.
	cat >"$work/rx-ready.sh" <<-'EOF'
		# exit 0 once this network namespace holds a listening TCP socket
		# (state 0A) or an unconnected UDP one (07)
		for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
			[ -r "$f" ] && set -- "$@" "$f"
		done
		exec awk 'FNR > 1 && (FILENAME ~ /tcp/ ? $4 == "0A" : $4 == "07") { ok = 1 } END { exit !ok }' "$@"
	EOF
	# shellcheck disable=SC2016	# the script's own variables, expanded there
	sed -i 's/^\tsleep 0\.2$/\tfor _ in $(seq 300); do ip netns exec "${NS2}" sh .\/rx-ready.sh \&\& break; sleep 0.1; done/' \
		"$work/io_uring_zerocopy_tx.sh"
	grep -q 'rx-ready.sh' "$work/io_uring_zerocopy_tx.sh" ||
		echo "kselftest: note: the selftest script changed; its 0.2 s wait for the receiver is kept"
	# The receiver runs for -t 2 (2.6 s) from its start, the sender for
	# 1.2 s once it is up: a sender that needs more than about 1.2 s to
	# start (TCG on a loaded host) is still sending when the receiver
	# closes, and a UDP send then fails "Connection refused" (stock VM
	# beside others: ipv4 udp -m 1 and -m 2, rx=129, 485; and in make
	# test's essential UDP run at load 9).  The receiver gets -t 10 in the
	# full run (8 s more per run: 12 runs on stock, 24 on patched; under
	# load a patched run takes up to ~45 s: 1500 s for 24) and -t 5 in the
	# essential runs (3 s more each, 2 on stock, 4 on patched).
	local rx_secs=5
	[ "$set" = full ] && rx_secs=10
	sed -i 's/^\(\tip netns exec "${NS2}" "${BIN_RX}" "-${IP}"\) -t 2 -C 2 /\1 -t '"$rx_secs"' -C 2 /' \
		"$work/io_uring_zerocopy_tx.sh"
	grep -q '"${BIN_RX}" "-${IP}" -t '"$rx_secs"' ' "$work/io_uring_zerocopy_tx.sh" ||
		echo "kselftest: note: the selftest script changed; its receiver keeps -t 2"
	echo "kselftest: io_uring_zerocopy_tx.sh, set $set"
	rc=0
	case $set in
	full)
		(cd "$work" && timeout -k 10 1500 bash ./io_uring_zerocopy_tx.sh) >"$out/kselftest.log" 2>&1
		rc=$?
		grep -q '^OK. All tests passed' "$out/kselftest.log" || [ "$rc" != 0 ] || rc=1
		;;
	essential)
		modes="1"
		if (cd "$work" && ./io_uring_zerocopy_tx -Q) >/dev/null 2>&1; then
			modes="$modes 4"
		else
			echo "single-CQE modes skipped: no IORING_SEND_ZC_SINGLE_CQE" >"$out/kselftest.log"
		fi
		for m in $modes; do
			for proto in "udp -n 32" "tcp -n 1"; do
				# shellcheck disable=SC2086
				(cd "$work" && timeout -k 10 120 bash ./io_uring_zerocopy_tx.sh 4 \
					${proto%% *} -m "$m" -t 1 ${proto#* }) >>"$out/kselftest.log" 2>&1 ||
					{ rc=$?; echo "FAIL: ipv4 ${proto%% *} -m $m exited $rc" >>"$out/kselftest.log"; }
			done
		done
		;;
	*) rm -rf "$work"; die "unknown set '$set' (essential or full)" ;;
	esac
	sed 's/^/  /' "$out/kselftest.log"
	np=$(grep -c '^ok$' "$out/kselftest.log")
	nf=0
	if [ "$rc" != 0 ]; then
		nf=1
		echo "kselftest: FAIL io_uring_zerocopy_tx.sh exited $rc after $np passing run(s)"
	fi
	rm -rf "$work"
	echo "$np passed, $nf failed"
	[ "$nf" = 0 ]
}

case ${1:-} in
build) cmd_build ;;
dir) cmd_dir ;;
run) shift; cmd_run "$@" ;;
*) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
