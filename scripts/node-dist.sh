#!/usr/bin/env bash
# Print the path of a Node.js binary of one major version, fetched once from
# the npm registry (the package node-linux-<arch>@<major> ships it) and kept
# under the cache, outside the repository:
#   ${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}/node/node-linux-<arch>-<version>/bin/node
# A cached binary of that major is reused as it is (no network); delete the
# directory to take a newer release.
#
# usage: node-dist.sh MAJOR [x64|arm64]
set -euo pipefail

major=${1:?usage: node-dist.sh MAJOR [x64|arm64]}
arch=${2:-x64}
case $major in *[!0-9]*|'') echo "node-dist: \"$major\" is not a major version" >&2; exit 2 ;; esac
case $arch in x64|arm64) ;; *) echo "node-dist: arch \"$arch\" is not x64 or arm64" >&2; exit 2 ;; esac
cache=${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}/node
pkg=node-linux-$arch

cached() {
	local d
	d=$(ls -d "$cache/$pkg-$major".* 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/bin/node" ] && echo "$d/bin/node"
}

if ! cached; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.fetch-$pkg-$major.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	if ! (cd "$tmp" && npm pack "$pkg@$major" --silent >/dev/null); then
		echo "node-dist: \`npm pack $pkg@$major\` failed (is the npm registry reachable?)" >&2
		exit 1
	fi
	tgz=$(ls "$tmp"/"$pkg"-*.tgz)
	ver=${tgz##*/"$pkg"-}
	ver=${ver%.tgz}
	mkdir "$tmp/x"
	tar xzf "$tgz" -C "$tmp/x" package/bin/node package/package.json
	# Another run may have won the race; either copy is the same release.
	mv -T "$tmp/x/package" "$cache/$pkg-$ver" 2>/dev/null || [ -x "$cache/$pkg-$ver/bin/node" ]
	cached
fi
