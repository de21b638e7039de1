#!/usr/bin/env bash
# make setup: everything uring-zc needs on a Debian 12 + Node 20 machine.
# Idempotent: a second run only checks.  Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# From Debian 12 itself (nginx-light, wrk, curl: bench --file and the serve tests).
base_pkgs=(build-essential pkg-config ccache udev qemu-system-x86 flex bison bc
	   libelf-dev libssl-dev cpio rsync kmod iproute2 xz-utils python3 perl
	   gcc-aarch64-linux-gnu qemu-user-static
	   nginx-light wrk curl)
# From a newer suite, pinned to exactly these names (scripts/apt-newer-suite.sh):
# liburing >= 2.12 for the zcrx helpers, the kernel headers its headers need,
# the 7.2 kernel source and virtme-ng.
newer_suite=sid
newer_pkgs=(liburing-dev liburing2 linux-libc-dev linux-source-7.2 virtme-ng)
# The prebuilt linux-arm64-gnu libzc (make package) is cross-compiled against
# the arm64 liburing.a (multiarch, same pinned suite) and smoke-tested under
# qemu-user with an arm64 Node, which needs the arm64 libc and libstdc++.
arm64_pkgs=(liburing-dev:arm64 liburing2:arm64 libstdc++6:arm64)

missing=()
for p in "${base_pkgs[@]}" "${newer_pkgs[@]}" "${arm64_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
# An old liburing counts as missing.
if dpkg-query -W -f='${Version}' liburing-dev 2>/dev/null | grep -q '^2\.[0-9]-'; then
	missing+=(liburing-dev liburing2 linux-libc-dev)
fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing Debian packages: ${missing[*]}" >&2
		echo "setup: run as root:  sudo make setup" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	stamp=/var/lib/apt/lists/.uring-zc-base-updated
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		dpkg --add-architecture arm64	# new indexes for every source
		rm -f "$stamp" /var/lib/apt/lists/.uring-zc-"$newer_suite"-updated
	fi
	scripts/apt-newer-suite.sh "$newer_suite" "${newer_pkgs[@]}" liburing-dev:arm64 liburing2:arm64
	[ -e "$stamp" ] || { apt-get update -qq; touch "$stamp"; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${base_pkgs[@]}" "${newer_pkgs[@]}" "${arm64_pkgs[@]}"
	# bench --file starts nginx itself (temp config, ephemeral port): the
	# system service the package just enabled is not wanted.
	if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null &&
	   systemctl is-enabled nginx >/dev/null 2>&1; then
		systemctl disable --now nginx >/dev/null 2>&1 || true
	fi
fi

# The stock test kernel is Debian's prebuilt one of the source's version:
# scripts/kernel-build.sh downloads it (apt-get download; never installed on
# this machine).  Pin its packages by name too.
if [ "$(id -u)" = 0 ] && stock_pkgs=$(scripts/kernel-build.sh --stock-packages 2>/dev/null) &&
	! grep -qx "Package: ${stock_pkgs%% *}" "/etc/apt/preferences.d/uring-zc-$newer_suite" 2>/dev/null; then
	# shellcheck disable=SC2086
	scripts/apt-newer-suite.sh "$newer_suite" "${newer_pkgs[@]}" $stock_pkgs
fi

ver=$(pkg-config --modversion liburing)
case $ver in
2.1[2-9]*|2.[2-9][0-9]*|[3-9].*) ;;
*) echo "setup: liburing $ver is too old: libzc needs >= 2.12" >&2; exit 1 ;;
esac

# npm: reinstall only when the lock file changed.
if [ ! -e node_modules/.uring-zc-lock ] || ! cmp -s package-lock.json node_modules/.uring-zc-lock; then
	npm ci --no-audit --no-fund
	cp package-lock.json node_modules/.uring-zc-lock
fi
echo "setup: ok (liburing $ver, node $(node --version), kernel $(uname -r))"
