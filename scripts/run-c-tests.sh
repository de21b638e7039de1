#!/usr/bin/env bash
# Run C test binaries: usage run-c-tests.sh DIR NAME...
# Each test prints its own lines and exits 0 (pass), 77 (skip, reason on
# stdout) or anything else (fail).  Each line ends with the test's wall
# time; the run ends with "N passed, N failed".
set -u
dir=$1; shift
pass=0 fail=0 skip=0
for t in "$@"; do
	t0=$SECONDS
	out=$("$dir/$t" 2>&1); rc=$?
	took="[$((SECONDS - t0))s]"
	if [ $rc = 0 ]; then
		pass=$((pass + 1)); echo "PASS $t $took"
	elif [ $rc = 77 ]; then
		skip=$((skip + 1)); echo "SKIP $t: $(printf '%s' "$out" | tail -n 1) $took"
	else
		fail=$((fail + 1)); echo "FAIL $t (exit $rc) $took"; printf '%s\n' "$out" | tail -n 30 | sed 's/^/    /'
	fi
done
echo "c-tests ($dir): $pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
