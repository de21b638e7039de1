#!/usr/bin/env bash
# Fetch and unpack a Debian source package from a newer suite, with a deb-src
# source derived from this machine's own debian.sources (same archive, same
# keyring, only the type and suite changed), as scripts/apt-newer-suite.sh
# derives binary sources.
#
#   scripts/apt-source.sh SUITE PACKAGE VERSION DESTDIR
#
# Unpacks PACKAGE=VERSION into DESTDIR/<package>-<upstream version>/ (the
# .dsc and tarballs stay in DESTDIR) and prints that directory.  Nothing is
# fetched when it is already there.  Needs root (the apt source and apt-get
# update) unless the source is already unpacked.
set -euo pipefail

suite=${1:?usage: apt-source.sh SUITE PACKAGE VERSION DESTDIR}
pkg=${2:?usage: apt-source.sh SUITE PACKAGE VERSION DESTDIR}
ver=${3:?usage: apt-source.sh SUITE PACKAGE VERSION DESTDIR}
dest=${4:?usage: apt-source.sh SUITE PACKAGE VERSION DESTDIR}
upstream=${ver#*:}
upstream=${upstream%-*}
dir=$dest/$pkg-$upstream
stamp=$dir/.uring-zc-source

if [ "$(cat "$stamp" 2>/dev/null)" = "$pkg=$ver" ]; then
	echo "$dir"
	exit 0
fi

name=uring-zc-$suite-src
own=/etc/apt/sources.list.d/debian.sources
list=/etc/apt/sources.list.d/$name.sources
if [ "$(id -u)" != 0 ]; then
	echo "apt-source: needs root to add the $suite deb-src source; run: sudo $0 $*" >&2
	exit 1
fi
[ -r "$own" ] || { echo "apt-source: $own not found; cannot derive a source" >&2; exit 1; }
command -v dpkg-source >/dev/null || { echo "apt-source: dpkg-source missing: apt-get install dpkg-dev" >&2; exit 1; }

# First stanza whose Suites line has no "-security": the main archive.
new=$(awk -v s="$suite" '
	BEGIN { RS = ""; FS = "\n" }
	/Suites:/ && !/-security/ {
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^#/) continue
			if ($i ~ /^Types:/) $i = "Types: deb-src"
			if ($i ~ /^Suites:/) $i = "Suites: " s
			print $i
		}
		exit
	}' "$own")
[ -n "$new" ] || { echo "apt-source: no main-archive stanza in $own" >&2; exit 1; }

updated=/var/lib/apt/lists/.uring-zc-$suite-src-updated
if [ "$(cat "$list" 2>/dev/null)" != "$new" ] || [ ! -e "$updated" ]; then
	printf '%s\n' "$new" >"$list"
	apt-get update -qq >&2
	touch "$updated"
fi

mkdir -p "$dest"
rm -rf "$dir"
# apt-get source refuses to run as root into a directory _apt cannot write:
# download as root, then unpack ourselves.
(cd "$dest" && apt-get source -qq --download-only "$pkg=$ver" >&2) || {
	# The version may have left the suite's index: say so plainly.
	echo "apt-source: $pkg=$ver not available from $suite (apt-cache showsrc $pkg lists what is)" >&2
	exit 1
}
dsc=$(ls "$dest/${pkg}_${ver#*:}.dsc")
(cd "$dest" && dpkg-source -q -x "${dsc##*/}" "$dir" >&2)
echo "$pkg=$ver" >"$stamp"
echo "$dir"
