#!/usr/bin/env bash
# Upstream-readiness checks of the kernel series in patches/, on the patched
# tree that scripts/kernel-build.sh keeps (build it first):
#
#   scripts/patch-check.sh
#
#   1. scripts/checkpatch.pl --strict on every patch (cover letter aside):
#      no error, warning or check allowed.
#   2. W=1 build of io_uring/ at every commit of the series, so each patch
#      builds on its own (bisectable) without a new compiler warning.
#
# One "PASS"/"FAIL" line per check and a closing "N passed, N failed" line.
# The result is remembered in the tree under the series' build key: an
# unchanged series costs nothing.  The tree is left at the series' head.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}
KROOT=$CACHE/kernel
T=$KROOT/patched
JOBS=${URING_ZC_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export CCACHE_BASEDIR=$KROOT

# Fixes: tags name upstream commits.  The tree is Debian's source without
# history, so checkpatch cannot look them up (UNKNOWN_COMMIT_ID, ignored
# below); each must instead be one of these, id and subject as upstream has
# them (checked against the stable list archive when the tag was written).
KNOWN_UPSTREAM=(
	"6ae91ac9a6aa io_uring/net: don't skip notifs for failed requests"
)

pass=0 fail=0
ok() { printf 'patch-check: %-44s PASS  %s\n' "$1" "$2"; pass=$((pass + 1)); }
bad() { printf 'patch-check: %-44s FAIL  %s\n' "$1" "$2"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

key=$(cat "$T/.uring-zc-key" 2>/dev/null) || key=
if [ -z "$key" ] || ! "$REPO/scripts/kernel-build.sh" --image patched >/dev/null; then
	bad "patched tree" "not built or out of date: run scripts/kernel-build.sh patched"
	finish
fi
# checkpatch and gcc versions belong to the key: a new compiler may warn.
key="$key checker=$(sha256sum "$0" | cut -c1-16) gcc=$(gcc -dumpfullversion)"

mkdir -p "$KROOT"
exec 9>"$KROOT/.lock"
flock 9	# not while kernel-build.sh works on the tree

if [ "$(cat "$T/.uring-zc-patchcheck" 2>/dev/null)" = "$key" ]; then
	# Same series, same tools: replay the recorded verdict lines.
	sed -n 's/^patch-check: //p' "$T/.uring-zc-patchcheck.log" | while IFS= read -r l; do
		echo "patch-check: $l (cached)"
	done
	pass=$(grep -c ' PASS ' "$T/.uring-zc-patchcheck.log")
	fail=0
	finish
fi
rm -f "$T/.uring-zc-patchcheck"

report=$(mktemp)
trap 'rm -f "$report"' EXIT
{
	for p in "$REPO"/patches/*.patch; do
		name=${p##*/}
		case $name in 0000-*) continue ;; esac
		out=$(cd "$T" && ./scripts/checkpatch.pl --strict --quiet --ignore UNKNOWN_COMMIT_ID "$p" 2>&1 | grep -v '^$')
		if [ -n "$out" ]; then
			bad "checkpatch --strict $name" "$(echo "$out" | head -1)"
			echo "$out" | sed 's/^/    /'
		else
			ok "checkpatch --strict $name" "0 errors, 0 warnings, 0 checks"
		fi
		while IFS= read -r tag; do
			id=$(echo "$tag" | sed -n 's/^Fixes: \([0-9a-f]\{12\}\) ("\(.*\)")$/\1 \2/p')
			if [ -n "$id" ] && printf '%s\n' "${KNOWN_UPSTREAM[@]}" | grep -qxF "$id"; then
				ok "Fixes: tag of $name" "${id%% *} is upstream's \"${id#* }\""
			else
				bad "Fixes: tag of $name" "'$tag' is not a known upstream commit (KNOWN_UPSTREAM)"
			fi
		done < <(grep '^Fixes:' "$p")
	done

	head=$(git -C "$T" rev-parse HEAD)
	for c in $(git -C "$T" rev-list --reverse uring-zc-base..HEAD); do
		subj=$(git -C "$T" log -1 --format=%s "$c")
		git -C "$T" checkout -q "$c" || { bad "W=1 io_uring/ at $c" "checkout failed"; continue; }
		log=$KROOT/patched.w1.$(git -C "$T" rev-parse --short "$c").log
		if (cd "$T" && make -j"$JOBS" W=1 CC="ccache gcc" HOSTCC="ccache gcc" io_uring/) >"$log" 2>&1; then
			warn=$(grep -E '(warning|error):' "$log" || true)
			if [ -z "$warn" ]; then
				ok "W=1 io_uring/ after '${subj:0:30}'" "$(grep -c '^  CC' "$log") file(s) compiled, no warning"
			else
				bad "W=1 io_uring/ after '${subj:0:30}'" "$(echo "$warn" | wc -l) warning(s), log: $log"
				echo "$warn" | head -20 | sed 's/^/    /'
			fi
		else
			bad "W=1 io_uring/ after '${subj:0:30}'" "build failed, log: $log"
			grep -E 'error' "$log" | head -10 | sed 's/^/    /'
		fi
	done
	git -C "$T" checkout -q "$head"
} | tee "$report"

pass=$(grep -c ' PASS ' "$report")
fail=$(grep -c ' FAIL ' "$report")
if [ "$fail" = 0 ]; then
	cp "$report" "$T/.uring-zc-patchcheck.log"
	echo "$key" > "$T/.uring-zc-patchcheck"
fi
finish
