#!/usr/bin/env bash
# Add a newer Debian suite as an apt source, derived from this machine's own
# debian.sources (same mirror, same keyring, only the suite changed), pinned so
# that nothing comes from it except the packages named on the command line.
#
# usage: apt-newer-suite.sh SUITE PKG...
set -euo pipefail

suite=$1; shift
name=uring-zc-$suite
own=/etc/apt/sources.list.d/debian.sources
list=/etc/apt/sources.list.d/$name.sources
pref=/etc/apt/preferences.d/$name

if [ "$(id -u)" != 0 ]; then
	echo "apt-newer-suite: needs root; run: sudo $0 $suite $*" >&2
	exit 1
fi
[ -r "$own" ] || { echo "apt-newer-suite: $own not found; cannot derive a source" >&2; exit 1; }

# First stanza whose Suites line has no "-security": that is the main archive.
new=$(awk -v s="$suite" '
	BEGIN { RS = ""; FS = "\n" }
	/Suites:/ && !/-security/ {
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^#/) continue
			if ($i ~ /^Suites:/) $i = "Suites: " s
			print $i
		}
		exit
	}' "$own")
[ -n "$new" ] || { echo "apt-newer-suite: no main-archive stanza in $own" >&2; exit 1; }

changed=0
if [ "$(cat "$list" 2>/dev/null)" != "$new" ]; then
	printf '%s\n' "$new" >"$list"
	changed=1
fi

{
	echo "# Written by uring-zc scripts/apt-newer-suite.sh: nothing from $suite by default."
	echo "Package: *"
	echo "Pin: release n=$suite"
	echo "Pin-Priority: 1"
	for p in "$@"; do
		echo
		echo "Package: $p"
		echo "Pin: release n=$suite"
		echo "Pin-Priority: 990"
	done
} >"$pref.new"
# Pins take effect without an update.
if ! cmp -s "$pref.new" "$pref"; then
	mv "$pref.new" "$pref"
else
	rm -f "$pref.new"
fi

stamp=/var/lib/apt/lists/.uring-zc-$suite-updated
if [ $changed = 1 ] || [ ! -e "$stamp" ]; then
	apt-get update -qq
	touch "$stamp"
fi
