#!/usr/bin/env bash
# The two test kernels of uring-zc, both Linux 7.2 from Debian:
#
#   scripts/kernel-build.sh {stock|patched|all}   build/fetch (or just confirm) them
#   scripts/kernel-build.sh --image {stock|patched|bench}
#	print what `vng --run` takes for that kernel (a kernel build directory,
#	or Debian's vmlinuz with its modules beside it); exit 1 if it is not
#	there or is out of date with respect to its inputs.
#   scripts/kernel-build.sh bench
#	the measuring kernel (not part of `all` nor of `make test`; see
#	`make kernel-bench`): the patched source with scripts/kernel.config
#	minus its debug checkers (KASAN, lockdep, atomic-sleep checks).
#   scripts/kernel-build.sh --stock-packages
#	print the Debian packages the stock kernel comes from (scripts/setup.sh
#	pins them by name).
#
# patched: Debian's linux-source-7.2 with patches/*.patch (the cover letter
# aside) applied with git am, configured by scripts/kernel.config on top of
# allnoconfig (KASAN, lockdep and only what the VM suites need), built with
# ccache.
# stock: by default (URING_ZC_STOCK=debian) Debian's own prebuilt kernel of
# the same upstream version and Debian revision as linux-source-7.2
# (linux-{binary,modules,base}-<abi>-amd64, fetched with
# apt-get download, never installed on the host): the kernel users run, and
# nothing to build.  Only the modules the fragment's options need are kept
# (so udev in the guest does not spend half a minute loading drivers for
# devices no test uses).  URING_ZC_STOCK=build builds the stock kernel from
# the pristine source with the patched kernel's config instead.
#
# Trees live outside the repository, under
#   ${URING_ZC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/uring-zc}/kernel/{stock,patched,stock-debian}
# and are built in place.  Each remembers the key of its last successful build
# (source package version, patches, config fragment, build recipe); an
# unchanged key costs nothing, a patch edit costs an incremental rebuild of
# the touched files plus a relink.
#
# bench: the patched tree's source and series, configured like patched but
# without the "debug checkers" section of scripts/kernel.config (KASAN and
# lockdep cost a multiple of the CPU per send and would drown the difference
# between send modes), with DEBUG_KERNEL, KASAN and PROVE_LOCKING pinned off.
# Build it in a cache of its own (URING_ZC_CACHE) when another kernel build
# may need the default one.
#
# Environment: URING_ZC_CACHE (cache root), URING_ZC_JOBS (make -j, default
# nproc), CCACHE_DIR (default <cache>/ccache), URING_ZC_STOCK (debian|build).
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
STOCK=${URING_ZC_STOCK:-debian}
DEB_FLAVOUR=amd64
# The modules of Debian's kernel that the options of scripts/kernel.config
# need (Debian builds them as modules; the fragment builds them in): the 9p
# root and overlayfs virtme-ng mounts, virtio net/block, loop + ext4, veth,
# dummy.  Their dependencies are kept too.
DEB_MODULES="9p 9pnet 9pnet_virtio overlay virtio_net virtio_blk loop ext4 veth dummy"
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
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
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
	if [ "$which" != stock ]; then
		# shellcheck disable=SC2046
		patches=$(sha_of $(patch_files))
	fi
	echo "src=$ver recipe=$RECIPE fragment=$(fragment_of "$which" | sha256sum | cut -c1-16) patches=$patches"
}

# The configuration fragment of a kernel, on stdout.  bench: everything from
# scripts/kernel.config's "debug checkers" heading on is replaced by the
# options that must stay (symbols, BUG) and the checkers pinned off.
fragment_of() {
	if [ "$1" != bench ]; then
		cat "$FRAGMENT"
		return
	fi
	sed '/^# ---- debug checkers/,$d' "$FRAGMENT"
	cat <<'EOF_BENCH'
# ---- bench: no debug checkers (scripts/kernel-build.sh bench) ----
# CONFIG_DEBUG_KERNEL is not set
# CONFIG_KASAN is not set
# CONFIG_PROVE_LOCKING is not set
# CONFIG_DEBUG_ATOMIC_SLEEP is not set
CONFIG_KALLSYMS=y
CONFIG_BUG=y
# (no DEBUG_INFO_* line: debug info needs DEBUG_KERNEL, so it is off)
# CONFIG_MODULES is not set
EOF_BENCH
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
	if [ "$which" != stock ]; then
		log "$which: recording the pristine source in git"
		git -C "$t" init -q
		git -C "$t" add -f -A .	# Debian's .gitignore ignores /*
		git "${GIT_ID[@]}" -C "$t" commit -q -m "Debian $SRC_PKG $ver"
		git -C "$t" tag uring-zc-base
	fi
	echo "$ver" > "$t/.uring-zc-src"
}

# Put exactly the current series on top of the pristine source of tree $1
# (patched or bench).
apply_patches() {
	local which=$1 t want have p n=0
	t=$(tree_of "$which")
	# shellcheck disable=SC2046
	want=$(sha_of $(patch_files))
	have=$(cat "$t/.uring-zc-patches" 2>/dev/null || true)
	[ "$want" = "$have" ] && return 0
	rm -f "$t/.uring-zc-patches"
	git -C "$t" am --abort >/dev/null 2>&1 || true
	git "${GIT_ID[@]}" -C "$t" checkout -q -f uring-zc-base
	for p in $(patch_files); do
		if ! git "${GIT_ID[@]}" -C "$t" am -q --keep-cr "$p" >"$KROOT/$which.am.log" 2>&1; then
			cat "$KROOT/$which.am.log" >&2
			git -C "$t" am --abort >/dev/null 2>&1 || true
			die "patches/${p##*/} does not apply to $SRC_PKG"
		fi
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || die "patches/ holds no patch besides the cover letter"
	log "$which: applied $n patch(es): $(git -C "$t" log --format=%s uring-zc-base..HEAD | tac | tr '\n' ';')"
	echo "$want" > "$t/.uring-zc-patches"
}

# "NAME VALUE" for each #define IORING_* in a header, value without spaces
# or comments.
defines_of() {
	sed -n 's|/\*.*||; s/^#[[:space:]]*define[[:space:]]\{1,\}\(IORING_[A-Z0-9_]*\)[[:space:]]\{1,\}\(.*\)$/\1 \2/p' "$1" |
		while read -r name val; do echo "$name ${val//[[:space:]]/}"; done
}

# "NAME VALUE" for each IO_URING_QUERY_* enum constant of the query header.
query_ops_of() {
	sed -n 's/^[[:space:]]*\(IO_URING_QUERY_[A-Z0-9_]*\)[[:space:]]*=[[:space:]]*\([0-9]*\),.*/\1 \2/p' "$1"
}

# The patched uapi headers must spell the values libzc/zc_uapi.h uses (its
# IORING_* defines by name, its ZC_IO_URING_QUERY_* ops against the query
# enum); the stock ones must not know them.
check_uapi() {
	local which=$1 hdr qhdr name val bad=0
	hdr=$(tree_of "$which")/include/uapi/linux/io_uring.h
	qhdr=$(tree_of "$which")/include/uapi/linux/io_uring/query.h
	# agree NAME VAL KVAL HEADER: the kernel header's value KVAL for NAME.
	agree() {
		# (return 0, never a bare return: under set -e a bare return
		# hands back the failed test before it and ends the script)
		if [ "$which" = stock ]; then
			[ -n "$3" ] || return 0
			echo "kernel-build: stock $4 already defines $1" >&2
		elif [ "$3" != "$2" ]; then
			echo "kernel-build: $1: libzc/zc_uapi.h says $2, patched kernel says '${3:-<missing>}'" >&2
		else
			return 0
		fi
		bad=1
	}
	while read -r name val; do
		name=${name#ZC_}
		agree "$name" "$val" "$(query_ops_of "$qhdr" | awk -v n="$name" '$1 == n { print $2 }')" "$qhdr"
	done < <(sed -n 's/^#[[:space:]]*define[[:space:]]\{1,\}\(ZC_IO_URING_QUERY_[A-Z0-9_]*\)[[:space:]]\{1,\}\([0-9]*\).*/\1 \2/p' "$UAPI_HEADER")
	while read -r name val; do
		agree "$name" "$val" "$(defines_of "$hdr" | awk -v n="$name" '$1 == n { print $2 }')" "$hdr"
	done < <(defines_of "$UAPI_HEADER")
	[ "$bad" = 0 ] || die "$which: include/uapi/linux/io_uring.h and libzc/zc_uapi.h disagree"
}

configure_tree() {
	local which=$1 t want line opt frag bad=()
	t=$(tree_of "$which")
	frag=$KROOT/$which.fragment
	fragment_of "$which" > "$frag"
	want="recipe=$RECIPE fragment=$(sha_of "$frag")"
	if [ -f "$t/.config" ] && [ "$(cat "$t/.uring-zc-config" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	rm -f "$t/.uring-zc-config"
	log "$which: configuring (allnoconfig + $frag)"
	rm -f "$t/.config"
	# allnoconfig with the fragment as KCONFIG_ALLCONFIG: every option the
	# fragment does not ask for (or need) stays off.
	(cd "$t" && scripts/kconfig/merge_config.sh -n "$frag" &&
		make olddefconfig) >"$KROOT/$which.config.log" 2>&1 ||
		{ tail -20 "$KROOT/$which.config.log" >&2; die "$which: configuring from $frag failed"; }
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
	done < "$frag"
	if [ ${#bad[@]} -gt 0 ]; then
		printf 'kernel-build: %s: option not in the final .config: %s\n' "$which" "${bad[@]}" >&2
		die "$which: $frag (from scripts/kernel.config) does not survive olddefconfig"
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
	[ "$which" = stock ] || apply_patches "$which"
	check_uapi "$which"
	configure_tree "$which"
	build_tree "$which"
	make -s -C "$t" kernelrelease > "$t/.uring-zc-release"
	echo "$key" > "$t/.uring-zc-key"
	log "$which: kernel $(cat "$t/.uring-zc-release") ready: $t (vng --run $t)"
}

# ---- stock = Debian's prebuilt kernel -----------------------------------------

# Debian's ABI name for source version $1 (7.2.13-1 -> 7.2.13+deb14-amd64),
# from apt's package lists.
deb_abi() {
	local up=${1%%-*} names
	names=$(apt-cache pkgnames "linux-binary-$up+" 2>/dev/null |
		grep -E "^linux-binary-${up//./\\.}\+[a-z0-9.]+-$DEB_FLAVOUR\$" | sort -u || true)
	[ -n "$names" ] || die "no Debian package linux-binary-$up+*-$DEB_FLAVOUR in apt's lists" \
		"(the prebuilt stock kernel): run 'make setup' (scripts/setup.sh), or build the" \
		"stock kernel from source with URING_ZC_STOCK=build"
	[ "$(echo "$names" | wc -l)" = 1 ] || die "several Debian stock kernels match: $(echo $names)"
	echo "${names#linux-binary-}"
}

deb_tree() { echo "$KROOT/stock-debian"; }

deb_key() {	# ver abi
	echo "debian=$2 src=$1 recipe=$RECIPE modules=$(echo "$DEB_MODULES" | sha256sum | cut -c1-16)"
}

deb_image() { echo "$(deb_tree)/usr/lib/modules/$1/vmlinuz"; }

deb_ok() {	# ver abi
	local t
	t=$(deb_tree)
	[ -f "$t/.uring-zc-key" ] && [ "$(cat "$t/.uring-zc-key")" = "$(deb_key "$1" "$2")" ] &&
		[ -f "$(deb_image "$2")" ]
}

# Keep the modules named in DEB_MODULES and what they depend on; drop the
# rest, so the guest's udev has nothing else to load.
deb_prune_modules() {	# root abi
	local root=$1 abi=$2 md keep m line dep n
	md=$root/lib/modules/$abi
	depmod -a -b "$root" "$abi"
	keep=$(mktemp)
	for m in $DEB_MODULES; do
		line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$md/modules.dep" | head -1)
		[ -n "$line" ] || { rm -f "$keep"; die "stock: Debian's kernel $abi has no module $m (DEB_MODULES)"; }
		for dep in $line; do echo "${dep%:}"; done
	done | sort -u > "$keep"
	n=$( (cd "$md" && find kernel -name '*.ko*' -type f | sort | comm -23 - "$keep" |
		tee >(xargs -r rm -f) | wc -l) )
	find "$md/kernel" -type d -empty -delete
	log "stock: kept $(wc -l < "$keep") of Debian's modules ($n dropped): $(sed 's|.*/||; s|\.ko.*||' "$keep" | tr '\n' ' ')"
	rm -f "$keep"
	depmod -a -b "$root" "$abi"
}

fetch_debian_stock() {	# ver
	local ver=$1 abi t tmp p
	abi=$(deb_abi "$ver")
	t=$(deb_tree)
	if deb_ok "$ver" "$abi"; then
		log "stock: up to date (Debian $abi $ver): $(deb_image "$abi")"
		return 0
	fi
	command -v depmod >/dev/null || die "depmod (kmod) missing: run 'make setup'"
	tmp=$t.tmp
	rm -rf "$t" "$tmp"
	mkdir -p "$tmp/debs" "$tmp/root"
	log "stock: fetching Debian's prebuilt kernel $abi $ver (apt-get download)"
	# Exactly the source's version: stock and patched are the same code.
	(cd "$tmp/debs" && apt-get -q -o APT::Sandbox::User=root download \
		"linux-binary-$abi=$ver" "linux-modules-$abi=$ver" "linux-base-$abi=$ver") >"$KROOT/stock.fetch.log" 2>&1 ||
		{ tail -5 "$KROOT/stock.fetch.log" >&2
		  die "stock: cannot download Debian's linux-binary-$abi=$ver (same version as $SRC_PKG);" \
		      "run 'make setup', or build the stock kernel with URING_ZC_STOCK=build"; }
	for p in "$tmp"/debs/*.deb; do
		dpkg-deb -x "$p" "$tmp/root"
	done
	rm -rf "$tmp/debs"
	[ -f "$tmp/root/usr/lib/modules/$abi/vmlinuz" ] || die "stock: no usr/lib/modules/$abi/vmlinuz in Debian's packages"
	deb_prune_modules "$tmp/root/usr" "$abi"
	mv "$tmp/root" "$t"
	rmdir "$tmp"
	echo "$abi" > "$t/.uring-zc-release"
	deb_key "$ver" "$abi" > "$t/.uring-zc-key"
	log "stock: Debian kernel $abi ready: $(deb_image "$abi")"
}

main() {
	local ver which t abi
	case ${1:-} in
	--image)
		which=${2:-}
		case $which in stock | patched | bench) ;; *) usage ;; esac
		ver=$(check_source)
		if [ "$which" = stock ] && [ "$STOCK" = debian ]; then
			abi=$(deb_abi "$ver")
			if ! deb_ok "$ver" "$abi"; then
				echo "kernel-build: Debian's stock kernel $abi is not fetched or out of date: run scripts/kernel-build.sh stock" >&2
				exit 1
			fi
			deb_image "$abi"
			exit 0
		fi
		t=$(tree_of "$which")
		if ! built_ok "$which" "$(key_of "$which" "$ver")"; then
			echo "kernel-build: the $which kernel is not built or out of date: run scripts/kernel-build.sh $which" >&2
			exit 1
		fi
		echo "$t"
		;;
	--stock-packages)
		ver=$(check_source)
		abi=$(deb_abi "$ver")
		echo "linux-binary-$abi linux-modules-$abi linux-base-$abi"
		;;
	bench)
		command -v ccache >/dev/null || die "ccache missing: run 'make setup'"
		ver=$(check_source)
		mkdir -p "$KROOT"
		exec 9>"$KROOT/.lock"
		if ! flock -n 9; then
			log "waiting for another kernel-build.sh to finish"
			flock 9
		fi
		build_one bench "$ver"
		;;
	stock | patched | all)
		case $STOCK in debian | build) ;; *) die "URING_ZC_STOCK=$STOCK: want debian or build" ;; esac
		command -v ccache >/dev/null || die "ccache missing: run 'make setup'"
		command -v vng >/dev/null || die "vng (virtme-ng) missing: run 'make setup'"
		ver=$(check_source)
		mkdir -p "$KROOT"
		exec 9>"$KROOT/.lock"
		if ! flock -n 9; then
			log "waiting for another kernel-build.sh to finish"
			flock 9
		fi
		if [ "$1" != patched ]; then
			if [ "$STOCK" = debian ]; then
				fetch_debian_stock "$ver"
			else
				build_one stock "$ver"
			fi
		fi
		[ "$1" = stock ] || build_one patched "$ver"
		;;
	*) usage ;;
	esac
}

main "$@"
