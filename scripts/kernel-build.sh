#!/usr/bin/env bash
# Build the two test kernels of uring-zc from Debian's linux-source-7.2:
#
#   scripts/kernel-build.sh {stock|patched|all}   build (or just confirm) them
#   scripts/kernel-build.sh --image {stock|patched}
#	print the kernel build directory (what `vng --run <dir>` takes; the
#	image is <dir>/arch/x86/boot/bzImage); exit 1 if it is not built or
#	is out of date with respect to its inputs.
#
# Both kernels share one config: scripts/kernel.config on top of allnoconfig.
# "patched" is the same source with patches/*.patch (the cover letter aside)
# applied with git am.  Trees live outside the repository, under
#   ${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}/kernel/{stock,patched}
# and are built in place, with ccache.  Each tree remembers the key of its
# last successful build (source package version, patches, config fragment,
# build recipe); an unchanged key costs nothing, a patch edit costs an
# incremental rebuild of the touched files plus a relink.
#
# Environment: URING_ZC_CACHE (cache root), URING_ZC_JOBS (make -j, default
# nproc), CCACHE_DIR (default <cache>/ccache).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}
KROOT=$CACHE/kernel
SRC_PKG=linux-source-7.2
SRC_TAR=/usr/src/linux-source-7.2.tar.xz
SRC_TOPDIR=linux-source-7.2
NEED_VERSION=7.2	# upstream series the patches are written against
FRAGMENT=$REPO/scripts/kernel.config
UAPI_HEADER=$REPO/libzc/zc_uapi.h
# Bump when the way a tree is configured or built changes.
RECIPE=4
JOBS=${URING_ZC_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
# Kernel sources are compiled from two trees; rewrite absolute paths below
# the cache so both hit the same ccache entries.
export CCACHE_BASEDIR=$KROOT
# Reproducible build stamps: keep init/version.c and friends cacheable.
export KBUILD_BUILD_USER=uring-zc KBUILD_BUILD_HOST=uring-zc
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 2026"
export KBUILD_BUILD_VERSION=1

GIT_ID=(-c user.name="uring-zc kernel-build" -c user.email=uring-zc@users.noreply.invalid
	-c core.autocrlf=false -c gc.auto=0 -c advice.detachedHead=false)

die() { echo "kernel-build: error: $*" >&2; exit 1; }
log() { printf 'kernel-build: [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

usage() {
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# The series without its cover letter, in order.
patch_files() {
	local p
	for p in "$REPO"/patches/*.patch; do
		[ -e "$p" ] || continue
		case ${p##*/} in 0000-*) continue ;; esac
		echo "$p"
	done
}

src_version() {
	dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || true
}

# Fail clearly when the exact source we need is not what is installed.
check_source() {
	local ver found
	ver=$(src_version)
	if [ -z "$ver" ] || [ ! -r "$SRC_TAR" ]; then
		found=$(dpkg-query -W -f='${Package} ${Version}\n' 'linux-source-*' 2>/dev/null |
			grep -v '^$' | paste -sd, - | sed 's/,/, /g' || true)
		die "need Debian package $SRC_PKG (Linux $NEED_VERSION.x, providing $SRC_TAR);" \
		    "found: ${found:-no linux-source package}. Run 'make setup' (scripts/setup.sh)."
	fi
	case $ver in
	"$NEED_VERSION".*) ;;
	*) die "need $SRC_PKG version $NEED_VERSION.x, found $ver" ;;
	esac
	echo "$ver"
}

sha_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# Build key of a kernel: everything its bzImage depends on.
key_of() {
	local which=$1 ver=$2 patches=none
	if [ "$which" = patched ]; then
		# shellcheck disable=SC2046
		patches=$(sha_of $(patch_files))
	fi
	echo "src=$ver recipe=$RECIPE fragment=$(sha_of "$FRAGMENT") patches=$patches"
}

tree_of() { echo "$KROOT/$1"; }

built_ok() {	# which key
	local t
	t=$(tree_of "$1")
	[ -f "$t/.uring-zc-key" ] && [ "$(cat "$t/.uring-zc-key")" = "$2" ] &&
		[ -f "$t/arch/x86/boot/bzImage" ]
}

# Extract a fresh tree for source version $2 (a git repository for "patched",
# so a changed series can be swapped in touching only the files it changes).
prepare_tree() {
	local which=$1 ver=$2 t tmp
	t=$(tree_of "$which")
	if [ -f "$t/.uring-zc-src" ] && [ "$(cat "$t/.uring-zc-src")" = "$ver" ]; then
		return 0
	fi
	log "$which: extracting $SRC_TAR ($SRC_PKG $ver)"
	rm -rf "$t" "$t.tmp"
	mkdir -p "$t.tmp"
	tar -xJf "$SRC_TAR" -C "$t.tmp"
	[ -f "$t.tmp/$SRC_TOPDIR/Makefile" ] || die "$SRC_TAR has no $SRC_TOPDIR/Makefile"
	mv "$t.tmp/$SRC_TOPDIR" "$t"
	rmdir "$t.tmp"
	if [ "$which" = patched ]; then
		log "$which: recording the pristine source in git"
		git -C "$t" init -q
		git -C "$t" add -f -A .	# Debian's .gitignore ignores /*
		git "${GIT_ID[@]}" -C "$t" commit -q -m "Debian $SRC_PKG $ver"
		git -C "$t" tag uring-zc-base
	fi
	echo "$ver" > "$t/.uring-zc-src"
}

# Put exactly the current series on top of the pristine source.
apply_patches() {
	local t want have p n=0
	t=$(tree_of patched)
	# shellcheck disable=SC2046
	want=$(sha_of $(patch_files))
	have=$(cat "$t/.uring-zc-patches" 2>/dev/null || true)
	[ "$want" = "$have" ] && return 0
	rm -f "$t/.uring-zc-patches"
	git -C "$t" am --abort >/dev/null 2>&1 || true
	git "${GIT_ID[@]}" -C "$t" checkout -q -f uring-zc-base
	for p in $(patch_files); do
		if ! git "${GIT_ID[@]}" -C "$t" am -q --keep-cr "$p" >"$KROOT/patched.am.log" 2>&1; then
			cat "$KROOT/patched.am.log" >&2
			git -C "$t" am --abort >/dev/null 2>&1 || true
			die "patches/${p##*/} does not apply to $SRC_PKG"
		fi
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || die "patches/ holds no patch besides the cover letter"
	log "patched: applied $n patch(es): $(git -C "$t" log --format=%s uring-zc-base..HEAD | tac | tr '\n' ';')"
	echo "$want" > "$t/.uring-zc-patches"
}

# "NAME VALUE" for each #define IORING_* in a header, value without spaces
# or comments.
defines_of() {
	sed -n 's|/\*.*||; s/^#[[:space:]]*define[[:space:]]\{1,\}\(IORING_[A-Z0-9_]*\)[[:space:]]\{1,\}\(.*\)$/\1 \2/p' "$1" |
		while read -r name val; do echo "$name ${val//[[:space:]]/}"; done
}

# The patched uapi header must spell the values libzc/zc_uapi.h uses; the
# stock one must not know them.
check_uapi() {
	local which=$1 hdr name val kval bad=0
	hdr=$(tree_of "$which")/include/uapi/linux/io_uring.h
	while read -r name val; do
		kval=$(defines_of "$hdr" | awk -v n="$name" '$1 == n { print $2 }')
		if [ "$which" = stock ]; then
			if [ -n "$kval" ]; then
				echo "kernel-build: stock $hdr already defines $name" >&2
				bad=1
			fi
		elif [ "$kval" != "$val" ]; then
			echo "kernel-build: $name: libzc/zc_uapi.h says $val, patched kernel says '${kval:-<missing>}'" >&2
			bad=1
		fi
	done < <(defines_of "$UAPI_HEADER")
	[ "$bad" = 0 ] || die "$which: include/uapi/linux/io_uring.h and libzc/zc_uapi.h disagree"
}

configure_tree() {
	local which=$1 t want line opt bad=()
	t=$(tree_of "$which")
	want="recipe=$RECIPE fragment=$(sha_of "$FRAGMENT")"
	if [ -f "$t/.config" ] && [ "$(cat "$t/.uring-zc-config" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	rm -f "$t/.uring-zc-config"
	log "$which: configuring (allnoconfig + scripts/kernel.config)"
	rm -f "$t/.config"
	# allnoconfig with the fragment as KCONFIG_ALLCONFIG: every option the
	# fragment does not ask for (or need) stays off.
	(cd "$t" && scripts/kconfig/merge_config.sh -n "$FRAGMENT" &&
		make olddefconfig) >"$KROOT/$which.config.log" 2>&1 ||
		{ tail -20 "$KROOT/$which.config.log" >&2; die "$which: configuring from $FRAGMENT failed"; }
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			grep -qxF "$line" "$t/.config" || bad+=("$line (have: $(grep "^${line%%=*}=" "$t/.config" || echo unset))")
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }; opt=${opt%% *}
			! grep -q "^$opt=" "$t/.config" || bad+=("$line (have: $(grep "^$opt=" "$t/.config"))")
			;;
		esac
	done < "$FRAGMENT"
	if [ ${#bad[@]} -gt 0 ]; then
		printf 'kernel-build: %s: option not in the final .config: %s\n' "$which" "${bad[@]}" >&2
		die "$which: scripts/kernel.config does not survive olddefconfig"
	fi
	echo "$want" > "$t/.uring-zc-config"
}

build_tree() {
	local which=$1 t start pid rc elapsed last
	t=$(tree_of "$which")
	log "$which: make -j$JOBS (log: $KROOT/$which.build.log)"
	start=$(date +%s)
	(cd "$t" && exec make -j"$JOBS" CC="ccache gcc" HOSTCC="ccache gcc") \
		>"$KROOT/$which.build.log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for _ in $(seq 60); do
			sleep 1
			kill -0 "$pid" 2>/dev/null || break
		done
		if kill -0 "$pid" 2>/dev/null; then
			elapsed=$(( $(date +%s) - start ))
			last=$(grep -E '^  [A-Z]' "$KROOT/$which.build.log" | tail -1 | sed 's/^ *//')
			log "$which: building, $((elapsed / 60))m$((elapsed % 60))s so far, at: $last"
		fi
	done
	rc=0
	wait "$pid" || rc=$?
	elapsed=$(( $(date +%s) - start ))
	if [ "$rc" != 0 ]; then
		echo "---- last lines of $KROOT/$which.build.log ----" >&2
		grep -E 'error|Error' "$KROOT/$which.build.log" | head -20 >&2 || true
		tail -40 "$KROOT/$which.build.log" >&2
		die "$which: kernel build failed after ${elapsed}s"
	fi
	log "$which: built in $((elapsed / 60))m$((elapsed % 60))s"
}

build_one() {
	local which=$1 ver=$2 key t
	key=$(key_of "$which" "$ver")
	t=$(tree_of "$which")
	if built_ok "$which" "$key"; then
		log "$which: up to date ($(cat "$t/.uring-zc-release")): $t"
		return 0
	fi
	prepare_tree "$which" "$ver"
	rm -f "$t/.uring-zc-key"
	[ "$which" = patched ] && apply_patches
	check_uapi "$which"
	configure_tree "$which"
	build_tree "$which"
	make -s -C "$t" kernelrelease > "$t/.uring-zc-release"
	echo "$key" > "$t/.uring-zc-key"
	log "$which: kernel $(cat "$t/.uring-zc-release") ready: $t (vng --run $t)"
}

main() {
	local ver which t
	case ${1:-} in
	--image)
		which=${2:-}
		case $which in stock | patched) ;; *) usage ;; esac
		ver=$(check_source)
		t=$(tree_of "$which")
		if ! built_ok "$which" "$(key_of "$which" "$ver")"; then
			echo "kernel-build: the $which kernel is not built or out of date: run scripts/kernel-build.sh $which" >&2
			exit 1
		fi
		echo "$t"
		;;
	stock | patched | all)
		command -v ccache >/dev/null || die "ccache missing: run 'make setup'"
		command -v vng >/dev/null || die "vng (virtme-ng) missing: run 'make setup'"
		ver=$(check_source)
		mkdir -p "$KROOT"
		exec 9>"$KROOT/.lock"
		if ! flock -n 9; then
			log "waiting for another kernel-build.sh to finish"
			flock 9
		fi
		if [ "$1" = all ]; then
			build_one stock "$ver"
			build_one patched "$ver"
		else
			build_one "$1" "$ver"
		fi
		;;
	*) usage ;;
	esac
}

main "$@"
